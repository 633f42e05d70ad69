"""Lab 02-cni without a cluster: /sys and /proc text of three data planes read into how a packet crosses nodes; the
facts of identify on two example clusters, with every template (solution, alternatives, mistakes) filled with example
values; choose against its scenarios; enforce's static step on every file set; the second cluster (found, missing,
prepared and torn down) and the comparison line; the live checks on simulated clusters. The real-cluster proof is
tests/live."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from fakes import FakeCluster, Model, ref_of
from observed import EXAMPLE_VALUES, materialise_example

from graders import cni, comparison, dataplane, manifests, questions, spec
from graders.errors import CheckFailed, ClusterError, ClusterUnreachable, SpecError
from graders.exercise import Ctx
from graders.labs import lab02_cni as lab
from graders.labs import lab02_cni_enforce as enforce
from graders.model import Outcome
from graders.probe import SimulatedRunner

LAB = spec.load_lab("02-cni")
IDENTIFY, ENFORCE, CHOOSE = (LAB.exercise(e) for e in ("identify", "enforce", "choose"))
W1, W2, CP = "k8slab-worker", "k8slab-worker2", "k8slab-control-plane"
NODE_IPS = ["172.18.0.2", "172.18.0.3", "172.18.0.4"]


def proc_route(*rows: tuple[str, str, str, str]) -> str:
    """/proc/net/route text for (device, destination, gateway, mask) rows."""
    def hexed(ip: str) -> str:
        return ipaddress.IPv4Address(ip).packed[::-1].hex().upper()

    head = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT"
    return "\n".join([head, *(f"{d}\t{hexed(dst)}\t{hexed(gw)}\t0003\t0\t0\t0\t{hexed(mask)}\t0\t0\t0"
                              for d, dst, gw, mask in rows)])


# What LINKS_SCRIPT prints on each data plane's first worker (name, ARP type, MTU, DEVTYPE)
FLANNEL_LINKS = "lo 772 65536 -\neth0 1 1500 -\nflannel.1 1 1450 vxlan\ncni0 1 1450 bridge\nveth1a2b3c 1 1450 -\n"
KUBE_ROUTER_LINKS = "lo 772 65536 -\neth0 1 1500 -\nkube-bridge 1 1500 bridge\nveth99 1 1500 -\n"
CILIUM_LINKS = ("lo 772 65536 -\neth0 1 1500 -\ncilium_net 1 1500 -\ncilium_host 1 1500 -\n"
                "cilium_vxlan 1 1500 vxlan\nlxc_health 1 1500 -\n")
CALICO_IPIP_LINKS = "lo 772 65536 -\neth0 1 1500 -\ntunl0 768 1480 -\ncali12345 1 1480 -\n"
DEFAULT = ("eth0", "0.0.0.0", "172.18.0.1", "0.0.0.0")
FLANNEL_ROUTES = proc_route(DEFAULT, ("flannel.1", "10.244.2.0", "10.244.2.0", "255.255.255.0"),
                            ("cni0", "10.244.1.0", "0.0.0.0", "255.255.255.0"))
KUBE_ROUTER_ROUTES = proc_route(DEFAULT, ("eth0", "10.244.2.0", "172.18.0.3", "255.255.255.0"),
                                ("kube-bridge", "10.244.1.0", "0.0.0.0", "255.255.255.0"))
CILIUM_ROUTES = proc_route(DEFAULT, ("cilium_host", "10.244.2.0", "10.244.1.193", "255.255.255.0"))
CALICO_ROUTES = proc_route(DEFAULT, ("tunl0", "10.244.171.64", "172.18.0.3", "255.255.255.192"))


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    """Simulated probes that disagree with the policies are retried with pauses: not worth waiting for here."""
    from graders import probe

    monkeypatch.setattr(probe.time, "sleep", lambda seconds: None)


# ---------------------------------------------------------------------- dataplane: links and the crossing
def test_links_are_read_with_their_type_mtu_and_devtype():
    links = dataplane.parse_links(FLANNEL_LINKS + "half a line\n")
    assert links["flannel.1"] == dataplane.Link("flannel.1", 1, 1450, "vxlan")
    assert links["eth0"].devtype == "" and links["lo"].arp_type == dataplane.ARPHRD_LOOPBACK
    assert "half" not in links


def test_links_script_reads_sys_with_plain_sh():
    for needed in ("/sys/class/net/*", "/type", "/mtu", "/uevent", "DEVTYPE="):
        assert needed in dataplane.LINKS_SCRIPT
    assert "sed" not in dataplane.LINKS_SCRIPT and "awk" not in dataplane.LINKS_SCRIPT


@pytest.mark.parametrize("routes, links, target, kind, device", [
    (FLANNEL_ROUTES, FLANNEL_LINKS, "10.244.2.7", "vxlan", "flannel.1"),
    (KUBE_ROUTER_ROUTES, KUBE_ROUTER_LINKS, "10.244.2.7", "routed", "eth0"),
    (CILIUM_ROUTES, CILIUM_LINKS, "10.244.2.7", "vxlan", "cilium_vxlan"),
    (CILIUM_ROUTES, CILIUM_LINKS.replace("cilium_vxlan", "cilium_geneve"), "10.244.2.7", "geneve", "cilium_geneve"),
    (CILIUM_ROUTES, CILIUM_LINKS.replace("cilium_vxlan 1 1500 vxlan\n", ""), "10.244.2.7", "routed", "cilium_host"),
    (CALICO_ROUTES, CALICO_IPIP_LINKS, "10.244.171.70", "ipip", "tunl0"),
])
def test_how_a_packet_crosses_nodes_on_each_data_plane(routes, links, target, kind, device):
    found = dataplane.crossing(dataplane.parse_proc_route(routes), dataplane.parse_links(links), target, NODE_IPS)
    assert (found.kind, found.device) == (kind, device)
    assert found.tunnel == (kind != "routed")
    assert device in found.how


def test_a_route_that_is_neither_tunnel_nor_node_is_unknown():
    routes = dataplane.parse_proc_route(proc_route(DEFAULT))  # only the default route: to the docker gateway
    found = dataplane.crossing(routes, dataplane.parse_links(KUBE_ROUTER_LINKS), "10.244.2.7", NODE_IPS)
    assert found.kind == dataplane.UNKNOWN and "neither a tunnel device" in found.how
    assert dataplane.crossing([], {}, "10.244.2.7", NODE_IPS).kind == dataplane.UNKNOWN


def test_node_mtu_is_the_default_routes_device():
    routes = dataplane.parse_proc_route(FLANNEL_ROUTES)
    assert dataplane.node_mtu(dataplane.parse_links(FLANNEL_LINKS), routes) == 1500
    assert dataplane.node_mtu({}, routes) is None


def test_lab01_still_reads_routes_from_the_same_code():
    from graders.labs import lab01_pod_network as lab01

    assert lab01.parse_proc_route is dataplane.parse_proc_route and lab01.agent_pod is dataplane.agent_pod


# ---------------------------------------------------------------------- cni keys
def test_every_cni_has_a_key_of_the_course():
    assert set(cni.KEYS) == {"canal", "cilium", "calico", "weave", "flannel", "kube-router", "flannel+kube-router"}
    assert {row[-1] for row in cni._KNOWN} <= set(cni.KEYS)


def agent(cluster: FakeCluster, name: str, label: str) -> None:
    """A CNI's agent pod in kube-system (not a namespace of the grader's: put, not applied)."""
    key, value = label.split("=")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system",
                                                           "labels": {key: value}}}
    cluster.objects[ref_of(pod)] = pod


def test_identify_names_the_offline_canal_by_its_key():
    cluster = FakeCluster()
    agent(cluster, "flannel-1", "app=flannel")
    agent(cluster, "kr-1", "k8s-app=kube-router")
    assert cni.identify(cluster).key == "flannel+kube-router"


@pytest.mark.parametrize("data, says", [
    ({"routing-mode": "tunnel", "tunnel-protocol": "vxlan"}, "VXLAN tunnel (cilium_vxlan)"),
    ({"routing-mode": "tunnel", "tunnel-protocol": "geneve"}, "GENEVE tunnel (cilium_geneve)"),
    ({"routing-mode": "native"}, "native routing (no overlay)"),
    ({}, "VXLAN tunnel (default; native routing if configured)"),   # no ConfigMap keys: the table's default
])
def test_identify_reads_how_cilium_crosses_nodes_from_its_configmap(data, says):
    cluster = FakeCluster()
    agent(cluster, "cilium-1", "k8s-app=cilium")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": "kube-system"},
          "data": data}
    cluster.objects[ref_of(cm)] = cm
    found = cni.identify(cluster)
    assert found.key == "cilium" and found.policy and found.encapsulation.startswith(says)


class ScopedReader(FakeCluster):
    """What the safe autograder's credentials may read: Pods of the CNI namespaces, never all namespaces at once."""

    def list_pods(self, namespace=None, label_selector=None):
        if namespace not in cni.AGENT_NAMESPACES:
            raise ClusterError(f"listing Pods in {namespace or 'all namespaces'}: Forbidden")
        return super().list_pods(namespace, label_selector)


@pytest.mark.parametrize("namespace, label, key", [("kube-flannel", "app=flannel", "flannel"),
                                                   ("kube-system", "k8s-app=kube-router", "kube-router")])
def test_identify_reads_the_cni_namespaces_one_by_one_with_scoped_credentials(namespace, label, key):
    """Under the safe autograder (graders.course.grants) the grader may not list pods cluster-wide: the CNI is still
    named, from the namespaces its agents run in."""
    cluster = ScopedReader()
    name, value = label.split("=")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent-1", "namespace": namespace,
                                                           "labels": {name: value}}}
    cluster.objects[ref_of(pod)] = pod
    assert cni.identify(cluster).key == key


# ---------------------------------------------------------------------- identify: facts and templates
MAIN = lab.DataPlane("kind-k8slab", cni.Cni("kube-router", "routed", True, "", "kube-router"),
                     dataplane.Crossing("routed", "eth0", "via 172.18.0.3"), 1500, 1500, None, "not probed")
SECOND = lab.DataPlane("kind-k8slab-flannel", cni.Cni("Flannel", "VXLAN", False, "", "flannel"),
                       dataplane.Crossing("vxlan", "flannel.1", "flannel.1"), 1450, 1500, False,
                       "under the grader's policy k8slab-only-frontend, intruder still reached web")


def grade_identify(directory: Path, tmp_path: Path, second=SECOND, main=MAIN):
    filled = materialise_example(IDENTIFY, directory, tmp_path / "filled")
    answers = questions.parse_answers([filled], lab.QUESTIONS, "answers.yaml")
    return questions.judge(answers, lab.identify_facts(main, second))


def test_identify_solution_and_alternatives_pass(tmp_path):
    for index, directory in enumerate((IDENTIFY.solution_dir, *IDENTIFY.alternative_dirs)):
        assert grade_identify(directory, tmp_path / str(index)).passed, directory


def test_identify_starter_fails_as_unanswered(tmp_path):
    with pytest.raises(CheckFailed, match="not answered yet"):
        grade_identify(IDENTIFY.starter_dir, tmp_path)


@pytest.mark.parametrize("mistake", IDENTIFY.mistakes, ids=lambda m: m.id)
def test_each_identify_mistake_fails_with_its_message(mistake, tmp_path):
    with pytest.raises(CheckFailed) as failed:
        grade_identify(IDENTIFY.mistake_dir(mistake), tmp_path)
    assert mistake.message in failed.value.message
    assert failed.value.credit < 1


def test_identify_never_shows_the_value_of_a_wrong_answer(tmp_path):
    with pytest.raises(CheckFailed) as failed:
        grade_identify(IDENTIFY.mistake_dir("node-mtu"), tmp_path)
    assert "1450" not in failed.value.message


def test_without_a_second_cluster_its_questions_are_not_probed(tmp_path):
    missing = comparison.Missing(("kind-k8slab-flannel",), ("kind-k8slab-flannel: not in the kubeconfig",))
    with pytest.raises(CheckFailed) as failed:
        grade_identify(IDENTIFY.solution_dir, tmp_path, second=missing)
    text = failed.value.message
    assert "not probed: no second cluster" in text and "make cluster OFFLINE=1 CNI=flannel" in text
    assert "make cluster CNI=flannel" in text and failed.value.credit == pytest.approx(2 / 5)


def test_a_flannel_plus_kube_router_second_cluster_enforces_and_is_not_flannel():
    composed = lab.DataPlane("kind-k8slab-flannel-kube-router",
                             cni.Cni("Flannel + kube-router", "VXLAN", True, "", "flannel+kube-router"),
                             SECOND.crossing, 1450, 1500, True, "under the policy, intruder was blocked")
    facts = lab.identify_facts(MAIN, composed)
    assert facts["enforces"].accepted == ("yes", "true")
    assert "kube-router runs beside it as a firewall" in facts["second_cni"].because["flannel"]
    assert "not Calico" in facts["second_cni"].because["canal"]


def test_a_tunnelling_main_cluster_is_not_routed():
    main = lab.DataPlane("kind-k8slab", MAIN.cni, dataplane.Crossing("vxlan", "flannel.1", "x"), 1450, 1500)
    fact = lab.identify_facts(main, SECOND)["encapsulation"]
    assert fact.accepted == ("vxlan",) and "tunnel device" in fact.because["routed"]
    unknown = lab.DataPlane("kind-k8slab", MAIN.cni, dataplane.Crossing("unknown", "weave", "weave bridge"))
    assert "could not classify" in lab.identify_facts(unknown, SECOND)["encapsulation"].unobservable


def test_a_cluster_without_two_workers_says_so_for_each_question():
    broken = lab.DataPlane("kind-k8slab", problem="this lab needs two workers")
    facts = lab.identify_facts(broken, SECOND)
    assert facts["main_cni"].unobservable == facts["encapsulation"].unobservable == "this lab needs two workers"


@pytest.mark.parametrize("before, after, verdict", [
    ({"frontend": Outcome.ALLOWED, "intruder": Outcome.ALLOWED},
     {"frontend": Outcome.ALLOWED, "intruder": Outcome.BLOCKED}, True),
    ({"frontend": Outcome.ALLOWED, "intruder": Outcome.ALLOWED},
     {"frontend": Outcome.ALLOWED, "intruder": Outcome.ALLOWED}, False),
    ({"frontend": Outcome.ALLOWED, "intruder": Outcome.BLOCKED},
     {"frontend": Outcome.ALLOWED, "intruder": Outcome.BLOCKED}, None),  # nothing to compare with
    ({"frontend": Outcome.ALLOWED, "intruder": Outcome.ALLOWED},
     {"frontend": Outcome.BLOCKED, "intruder": Outcome.BLOCKED}, None),  # blocks more than it says
    ({"frontend": Outcome.FAILED, "intruder": Outcome.ALLOWED},
     {"frontend": Outcome.ALLOWED, "intruder": Outcome.BLOCKED}, None),
])
def test_enforcement_verdict(before, after, verdict):
    assert lab.enforcement_verdict(before, after)[0] is verdict


# ---------------------------------------------------------------------- reading a data plane (simulated cluster)
class WorldCluster(FakeCluster):
    """The fake with labelled nodes, pods that get an address when created, and the node's /proc and /sys text."""

    def __init__(self, context: str, routes: str, links: str, mtu: str, agents: dict[str, str] | None = None):
        super().__init__(context=context, nodes=((CP, "172.18.0.4"), (W1, "172.18.0.2"), (W2, "172.18.0.3")))
        self.texts = {"route": routes, "links": links, "mtu": mtu}
        self.ensure_owned_namespace(lab.NS)  # the engine's reset made it (on the second cluster: comparison.prepared)
        for name, label in (agents or {}).items():
            agent(self, name, label)

    def list_nodes(self) -> list:
        return [Model({"metadata": {"name": name, "labels": {lab.CONTROL_PLANE_LABEL: ""} if name == CP else {}},
                       "spec": {"taints": []}, "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                                                          "images": []}}) for name, ip in self.nodes]

    def ensure_pods(self, pods, timeout=60) -> None:
        ips = {"web": "10.244.2.7", "frontend": "10.244.1.5", "intruder": "10.244.1.6"}
        super().ensure_pods([{**p, "status": {"podIP": ips.get(p["metadata"]["name"], "172.18.0.2"),
                                              "phase": "Running"}} for p in pods])

    def exec(self, namespace, pod, argv, timeout=10, container=None):
        super().exec(namespace, pod, argv, timeout, container)
        key = "route" if argv[-1] == "/proc/net/route" else "mtu" if argv[-1].endswith("/mtu") else "links"
        return 0, self.texts[key], ""


def kube_router_cluster() -> WorldCluster:
    return WorldCluster("kind-k8slab", KUBE_ROUTER_ROUTES, KUBE_ROUTER_LINKS, "1500\n",
                        {"kube-router-1": "k8s-app=kube-router"})


def flannel_cluster() -> WorldCluster:
    return WorldCluster("kind-k8slab-flannel", FLANNEL_ROUTES, FLANNEL_LINKS, "1450\n", {"flannel-1": "app=flannel"})


def test_read_data_plane_on_a_simulated_flannel_cluster():
    cluster = flannel_cluster()
    runner = SimulatedRunner(lambda s: True)  # Flannel: everything gets through, policy or not
    plane = lab.read_data_plane(cluster, runner, enforcement=True)
    assert plane.cni.key == "flannel" and plane.crossing.kind == "vxlan"
    assert (plane.pod_mtu, plane.node_mtu, plane.enforces) == (1450, 1500, False)
    assert ("delete", f"NetworkPolicy {lab.NS}/{lab.GUARD_POLICY}") in [c[:2] for c in cluster.calls] or \
        cluster.get("networking.k8s.io/v1", "NetworkPolicy", lab.NS, lab.GUARD_POLICY) is None


def test_read_data_plane_without_two_workers_reports_the_problem():
    cluster = FakeCluster(context="kind-small", nodes=((CP, "172.18.0.4"),))
    plane = lab.read_data_plane(cluster, SimulatedRunner(lambda s: True))
    assert "needs two workers" in plane.problem


def _answers_ctx(ex, directory: Path, cluster, tmp_path: Path, truth=lambda s: True) -> Ctx:
    filled = materialise_example(ex, directory, tmp_path / "filled")
    answers = questions.parse_answers([filled], lab.EXERCISES[ex.id].questions, ex.files[0])
    return Ctx(spec=ex, objects=(), cluster=cluster, answers=answers, run_id="run-1", teardown="empty",
               runner_factory=lambda c: SimulatedRunner(truth))


def test_identify_live_on_two_simulated_clusters(tmp_path, monkeypatch):
    second = flannel_cluster()
    monkeypatch.setattr(comparison, "find", lambda ctx, **kw: second)
    monkeypatch.setattr(comparison.runlock, "exclusive", _no_lock)
    result = lab.identify_live(_answers_ctx(IDENTIFY, IDENTIFY.solution_dir, kube_router_cluster(), tmp_path))
    assert result.passed
    assert ("reset_namespaces", (lab.NS,)) in second.calls and ("empty_namespaces", (lab.NS,)) in second.calls


def test_identify_live_without_a_second_cluster_is_not_probed_never_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(comparison, "find", lambda ctx, **kw: comparison.Missing(("kind-k8slab-flannel",)))
    with pytest.raises(CheckFailed) as failed:
        lab.identify_live(_answers_ctx(IDENTIFY, IDENTIFY.solution_dir, kube_router_cluster(), tmp_path))
    assert "not probed: no second cluster" in failed.value.message


# ---------------------------------------------------------------------- choose
def grade_choose(directory: Path, tmp_path: Path):
    answers = questions.parse_answers([materialise_example(CHOOSE, directory, tmp_path / "filled")], lab.CHOICES,
                                      "choices.yaml")
    return questions.judge(answers, lab.choose_facts())


def test_choose_solution_and_alternatives_pass(tmp_path):
    for index, directory in enumerate((CHOOSE.solution_dir, *CHOOSE.alternative_dirs)):
        assert grade_choose(directory, tmp_path / str(index)).passed, directory


@pytest.mark.parametrize("mistake", CHOOSE.mistakes, ids=lambda m: m.id)
def test_each_choose_mistake_fails_with_its_message(mistake, tmp_path):
    with pytest.raises(CheckFailed) as failed:
        grade_choose(CHOOSE.mistake_dir(mistake), tmp_path)
    assert mistake.message in failed.value.message


def test_every_wrong_choice_is_explained():
    for scenario in lab.SCENARIOS:
        wrong = set(cni.KEYS) - set(scenario.right)
        assert wrong <= set(scenario.because), f"{scenario.question.id}: no reason for {wrong - set(scenario.because)}"


def test_weave_is_taught_as_archived():
    assert "archived in 2024" in lab.ARCHIVED
    assert lab.choose_facts()["new_cluster_avoid"].accepted == ("weave",)


# ---------------------------------------------------------------------- enforce: static
def _objects(directory: Path):
    return manifests.parse_submission([directory], allowed_kinds=ENFORCE.allowed_kinds,
                                      namespaces=ENFORCE.namespaces).manifests


def test_enforce_solution_and_alternatives_match_the_target():
    for directory in (ENFORCE.solution_dir, *ENFORCE.alternative_dirs):
        report = enforce.evaluate(_objects(directory))
        assert report.matches, f"{directory}: {report.message}"


def test_enforce_starter_fails():
    with pytest.raises(CheckFailed, match="cells differ from the target"):
        enforce.enforce_static(Ctx(spec=ENFORCE, objects=_objects(ENFORCE.starter_dir), cluster=None))


@pytest.mark.parametrize("mistake", ENFORCE.mistakes, ids=lambda m: m.id)
def test_each_enforce_mistake_fails_statically_with_its_message(mistake):
    with pytest.raises(CheckFailed) as failed:
        enforce.enforce_static(Ctx(spec=ENFORCE, objects=_objects(ENFORCE.mistake_dir(mistake)), cluster=None))
    assert mistake.message in failed.value.message


def test_an_egress_policy_on_intruder_is_not_frontend_only(tmp_path):
    """intruder's egress restricted to frontend draws the three real cells right; the imagined newcomer shows that
    web still accepts anyone else."""
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: intruder-out, namespace: k8slab-cni}\n"
        "spec:\n  podSelector: {matchLabels: {app: intruder}}\n  policyTypes: [Egress]\n"
        "  egress: [{to: [{podSelector: {matchLabels: {app: frontend}}}]}]\n")
    report = enforce.evaluate(_objects(tmp_path))
    assert not report.matches and enforce.NEWCOMER in {s for s, _ in report.reachability.wrong_cells()}
    assert any("any other pod of k8slab-cni" in d for d in report.diagnoses)


# ---------------------------------------------------------------------- enforce: live, and the comparison
def _seen(through: bool):
    table = enforce.Reachability(enforce.SOURCES, True, enforce.COLUMNS).expect_all(enforce.EXPECTS)
    for s, c in table.expected.pairs():
        table.observe(s, c, table.expected.get(s, c))
    live = table.with_observed()
    for s, c in table.expected.pairs():
        live.observe(s, c, Outcome.ALLOWED if through else table.expected.get(s, c))
    return enforce.Observation(table, live, {}, {}, 3, 2, 1.0)


def test_compare_summary_names_the_cni_that_does_not_enforce():
    line = enforce.compare_summary("kind-k8slab", "kind-k8slab-flannel", _seen(through=True))
    assert line.startswith("static ✓, live ✓ on kind-k8slab; static ✓, live ✗ on kind-k8slab-flannel (the CNI does "
                           "not enforce: intruder -> web got through)")
    assert "not your mistake" in line
    assert "live ✓ on kind-k8slab-flannel (its CNI enforces" in enforce.compare_summary(
        "kind-k8slab", "kind-k8slab-flannel", _seen(through=False))


def _no_lock(context, **kw):
    import contextlib
    return contextlib.nullcontext()


def _enforce_ctx(cluster, truth):
    return Ctx(spec=ENFORCE, objects=_objects(ENFORCE.solution_dir), cluster=cluster, run_id="run-1",
               teardown="delete", runner_factory=lambda c: SimulatedRunner(lambda s: truth(c, s)))


def _enforcing(cluster, spec_) -> bool:
    """kube-router enforces the solution (intruder -> web blocked); Flannel lets everything through."""
    return cluster.context == "kind-k8slab-flannel" or not (spec_.pod == "intruder" and spec_.target == "10.244.2.7")


def test_enforce_live_passes_on_the_main_cluster_and_shows_flannel_letting_intruder_through(monkeypatch):
    second = flannel_cluster()
    monkeypatch.setattr(comparison, "find", lambda ctx, **kw: second)
    monkeypatch.setattr(comparison.runlock, "exclusive", _no_lock)
    result = enforce.enforce_live(_enforce_ctx(kube_router_cluster(), _enforcing))
    assert result.passed
    assert "live ✗ on kind-k8slab-flannel (the CNI does not enforce" in result.message
    assert ("delete_namespaces", (lab.NS,)) in second.calls  # teardown "delete" on the second cluster too


def test_enforce_live_without_a_second_cluster_passes_and_says_not_probed(monkeypatch):
    monkeypatch.setattr(comparison, "find", lambda ctx, **kw: comparison.Missing(("kind-k8slab-flannel",)))
    result = enforce.enforce_live(_enforce_ctx(kube_router_cluster(), _enforcing))
    assert result.passed and "not probed: no second cluster" in result.message


def test_enforce_live_on_a_main_cluster_that_does_not_enforce_blames_the_cni(monkeypatch):
    monkeypatch.setattr(comparison, "find", lambda ctx, **kw: comparison.Missing())
    with pytest.raises(CheckFailed, match="This is not your mistake"):
        enforce.enforce_live(_enforce_ctx(kube_router_cluster(), lambda c, s: True))


# ---------------------------------------------------------------------- comparison: finding the second cluster
@pytest.fixture(autouse=True)
def _fresh_connections(monkeypatch):
    monkeypatch.delenv(comparison.ENV, raising=False)
    comparison.forget()
    yield
    comparison.forget()


def test_under_the_safe_autograder_the_second_cluster_is_prepared_by_the_harness(monkeypatch):
    """$K8SLAB_NAMESPACES_PREPARED: the harness created the lab's namespaces on the second cluster too, and the
    scoped credentials may not: the connection never creates, relabels or deletes a namespace."""
    import sys

    from graders.autograding import PREPARED_ENV
    from graders.cluster.prepared import PreparedCluster

    second = FakeCluster(context="k8slab-submission-compare")
    monkeypatch.setattr(sys.modules["graders.cluster"].Cluster, "connect", staticmethod(lambda *a, **k: second))
    monkeypatch.setenv(comparison.ENV, "k8slab-submission-compare")
    assert comparison.find_for(LAB.compare_with, "k8slab-submission", present=["k8slab-submission-compare"]) is second
    comparison.forget()
    monkeypatch.setenv(PREPARED_ENV, "1")
    found = comparison.find_for(LAB.compare_with, "k8slab-submission", present=["k8slab-submission-compare"])
    assert isinstance(found, PreparedCluster) and found.context == "k8slab-submission-compare"


def test_no_second_cluster_in_the_kubeconfig_is_missing_with_how_to_start_one():
    found = comparison.find_for(LAB.compare_with, "kind-k8slab", present=["kind-k8slab"],
                                connect=lambda c, t: pytest.fail("nothing to connect"))
    assert isinstance(found, comparison.Missing)
    assert found.message.startswith("not probed: no second cluster (start it with `make cluster OFFLINE=1 "
                                    "CNI=flannel` or online `make cluster CNI=flannel`)")
    assert "kind-k8slab-flannel: not in the kubeconfig" in found.message


def test_the_first_listed_context_that_answers_is_used_and_cached():
    tried = []

    def connect(context, timeout):
        tried.append(context)
        if context == "kind-k8slab-flannel":
            raise ClusterUnreachable("nothing listens at https://127.0.0.1:1234")
        return FakeCluster(context=context)

    present = ["kind-k8slab", "kind-k8slab-flannel", "kind-k8slab-cilium"]
    found = comparison.find_for(LAB.compare_with, "kind-k8slab", present=present, connect=connect)
    assert found.context == "kind-k8slab-cilium" and tried == ["kind-k8slab-flannel", "kind-k8slab-cilium"]
    tried.clear()
    again = comparison.find_for(LAB.compare_with, "kind-k8slab", present=present, connect=connect)
    assert again is found and tried == ["kind-k8slab-flannel"]  # a cluster that answered is not connected again


def test_the_graded_context_is_never_its_own_comparison_and_the_environment_overrides(monkeypatch):
    monkeypatch.setenv(comparison.ENV, "kind-other")
    found = comparison.find_for(LAB.compare_with, "kind-k8slab", present=["kind-other", "kind-k8slab-flannel"],
                                connect=lambda c, t: FakeCluster(context=c))
    assert found.context == "kind-other"
    comparison.forget()
    monkeypatch.setenv(comparison.ENV, "kind-k8slab")
    found = comparison.find_for(LAB.compare_with, "kind-k8slab", present=["kind-k8slab"],
                                connect=lambda c, t: FakeCluster(context=c))
    assert isinstance(found, comparison.Missing) and "the graded cluster itself" in found.message


def test_kube_contexts_reads_the_kubeconfig(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("contexts:\n- name: kind-k8slab\n- name: kind-k8slab-flannel\n")
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert comparison.kube_contexts() == ["kind-k8slab", "kind-k8slab-flannel"]
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert comparison.kube_contexts() == []


@pytest.mark.parametrize("teardown, calls", [
    ("delete", ["reset_namespaces", "empty_namespaces", "delete_namespaces"]),
    ("empty", ["reset_namespaces", "empty_namespaces"]),
    ("keep", ["reset_namespaces"]),
])
def test_prepared_resets_with_the_run_id_and_tears_down_as_the_run_says(teardown, calls, monkeypatch):
    monkeypatch.setattr(comparison.runlock, "exclusive", _no_lock)
    second = FakeCluster(context="kind-k8slab-flannel")
    ctx = Ctx(spec=ENFORCE, objects=(), cluster=None, run_id="run-7", teardown=teardown)
    with comparison.prepared(ctx, second, [lab.NS], ["NetworkPolicy"]) as notes:
        assert second.namespaces[lab.NS]["k8slab.dev/run"] == "run-7"
    assert [c[0] for c in second.calls if c[0].endswith("namespaces")] == calls and notes == []


def test_prepared_holds_the_second_contexts_run_lock(monkeypatch):
    held = []
    import contextlib

    @contextlib.contextmanager
    def exclusive(context, **kw):
        held.append(context)
        yield
    monkeypatch.setattr(comparison.runlock, "exclusive", exclusive)
    with comparison.prepared(Ctx(spec=ENFORCE, objects=(), cluster=None), FakeCluster(context="kind-x"), [lab.NS]):
        pass
    assert held == ["kind-x"]


# ---------------------------------------------------------------------- the spec
def _spec(tmp_path: Path, compare_with) -> spec.LabSpec:
    raw = {"id": "02-cni", "title": "t", "namespaces": ["a"], "compare_with": compare_with,
           "exercises": [{"id": "e", "title": "t", "points": 1, "files": ["f.yaml"], "allowed_kinds": ["Pod"]}]}
    return spec.parse_lab(raw, file=tmp_path / "lab.yaml", root=tmp_path)


def test_compare_with_is_a_list_of_context_names(tmp_path):
    assert _spec(tmp_path, ["kind-k8slab-flannel", "kind-x"]).compare_with == ("kind-k8slab-flannel", "kind-x")
    assert LAB.compare_with[0] == "kind-k8slab-flannel"
    for bad in ("kind-k8slab-flannel", [""], [3], {"a": 1}):
        with pytest.raises(SpecError, match="compare_with"):
            _spec(tmp_path, bad)


def test_example_values_fill_every_placeholder():
    values = EXAMPLE_VALUES[("02-cni", "identify")]
    assert values["second_cni"] == "flannel" and values["pod_mtu"] == "1450" and values["enforces"] == "no"


# ---------------------------------------------------------------------- Cilium identities settle before probing
def cilium_world(run: str, seen_run: str, state: str = "ready") -> FakeCluster:
    """A Cilium cluster whose namespace is stamped ``run`` while its CiliumEndpoints still carry ``seen_run``."""
    cluster = FakeCluster()
    agent(cluster, "cilium-1", "k8s-app=cilium")
    cluster.namespace_labels = lambda name: {"k8slab.dev/run": run}
    for pod in (lab.WEB, lab.FRONTEND, lab.INTRUDER):
        cep = {"apiVersion": "cilium.io/v2", "kind": "CiliumEndpoint", "metadata": {"name": pod, "namespace": lab.NS},
               "status": {"state": state, "identity": {"id": 7, "labels": [
                   f"k8s:io.cilium.k8s.namespace.labels.k8slab.dev/run={seen_run}", f"k8s:app={pod}"]}}}
        cluster.objects[ref_of(cep)] = cep
    return cluster


def test_on_cilium_the_grader_waits_for_identities_with_the_new_run_label():
    cluster = cilium_world("run-2", "run-1")
    ticks = iter(range(0, 1000, 5))
    slept = []

    def sleep(seconds):  # the agent catches up after three polls
        slept.append(seconds)
        if len(slept) == 3:
            for ref, obj in list(cluster.objects.items()):
                if obj.get("kind") == "CiliumEndpoint":
                    obj["status"]["identity"]["labels"][0] = "k8s:io.cilium.k8s.namespace.labels.k8slab.dev/run=run-2"

    pods = (lab.WEB, lab.FRONTEND, lab.INTRUDER)
    assert cni.wait_settled(cluster, lab.NS, pods, clock=lambda: next(ticks), sleep=sleep) == []
    assert len(slept) == 3


def test_on_cilium_identities_that_never_settle_are_named_within_the_bound():
    cluster = cilium_world("run-2", "run-1", state="waiting-for-identity")
    ticks = iter(range(0, 1000, 10))
    pending = cni.wait_settled(cluster, lab.NS, (lab.WEB,), timeout=30, clock=lambda: next(ticks), sleep=lambda s: None)
    assert pending == [lab.WEB]


def test_without_cilium_nothing_is_waited_for():
    cluster = FakeCluster()
    agent(cluster, "kr-1", "k8s-app=kube-router")
    assert cni.wait_settled(cluster, lab.NS, (lab.WEB,), sleep=lambda s: pytest.fail("waited")) == []
