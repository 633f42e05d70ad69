"""graders.doctor: one line per check, a fix on every failure, non-zero exit on failure — with fakes only."""
from __future__ import annotations

from types import SimpleNamespace as NS

from graders import doctor
from graders.cluster import Endpoint
from graders.errors import ClusterUnreachable
from graders.model import Outcome
from graders.probe import SimulatedRunner
import pytest


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch):
    monkeypatch.setattr(doctor, "RETRY_PAUSE_S", 0.0)


def _node(name, ready=True, taint=False):
    return NS(metadata=NS(name=name),
              spec=NS(taints=[NS(effect="NoSchedule")] if taint else []),
              status=NS(conditions=[NS(type="Ready", status="True" if ready else "False", message="CNI not ready",
                                       reason="KubeletNotReady")], images=[]))


class FakeCluster:
    """The Cluster methods the doctor uses, in memory."""
    context = "kind-k8slab"

    def __init__(self, nodes=None, namespaces=(), ingress=False, cni="k8s-app=kube-router", config_maps=None):
        self.nodes = nodes or [_node("k8slab-control-plane", taint=True), _node("k8slab-worker"),
                               _node("k8slab-worker2")]
        self.cni = cni                      # the label selector of the CNI's agent pods, or None
        self.config_maps = config_maps or {}
        self.objects: dict[tuple[str, str], dict] = {}
        self.namespaces = set(namespaces)
        self.ingress = ingress
        self.deleted_namespaces = []
        self.policy_applied = False

    def list_nodes(self):
        return self.nodes

    def list_pods(self, namespace=None, label_selector=None):
        running = self.cni if isinstance(self.cni, tuple) else (self.cni,)
        return [NS(metadata=NS(name="agent"))] if label_selector and label_selector in running else []

    def get(self, api_version, kind, namespace, name):
        return self.config_maps.get((namespace, name)) if kind == "ConfigMap" else None

    def reset_namespaces(self, names, run_id=None, kinds=()):
        self.namespaces.update(names)

    def delete_namespaces(self, names, wait=True):
        self.deleted_namespaces += list(names)

    def ensure_pods(self, pods, timeout=60):  # the grader's own pods: created like any object here
        self.apply(pods)

    def apply(self, objs):
        for o in objs:
            self.objects[(o["kind"], o["metadata"]["name"])] = o
            if o["kind"] == "NetworkPolicy":
                self.policy_applied = True

    def delete(self, obj):
        self.objects.pop((obj["kind"], obj["metadata"]["name"]), None)

    def wait_ready(self, namespaces, timeout):
        pass

    def get_pod(self, ns, name):
        pod = self.objects[("Pod", name)]
        node = pod["spec"].get("nodeSelector", {}).get("kubernetes.io/hostname", "")
        ip = {"doctor-a": "10.244.1.2", "doctor-b": "10.244.2.2"}[name]
        return NS(spec=NS(node_name=node), status=NS(pod_ip=ip))

    def get_service(self, ns, name):
        if name == "kubernetes":
            return NS(spec=NS(cluster_ip="10.96.0.1"))
        return NS(status=NS(load_balancer=NS(ingress=[NS(ip="172.18.255.200")])))

    def endpoints(self, ns, service):
        return [Endpoint("10.244.1.9", "traefik-0", "k8slab-worker", True)]

    def namespace_names(self):
        return self.namespaces

    def ingress_classes(self):
        return ["traefik"] if self.ingress else []

    def find_services(self, selector):
        if self.ingress and "traefik" in selector:
            return [NS(metadata=NS(namespace="traefik", name="traefik"),
                       spec=NS(ports=[NS(port=80)], cluster_ip="10.96.7.7"))]
        return []


def _env(cluster, truth, docker_ok=True, tools=("kind", "kubectl", "helm"), outside=None):
    def docker_version():
        if not docker_ok:
            raise RuntimeError("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
        return "28.2.2"

    return doctor.Env(
        docker_version=docker_version,
        find_tool=lambda name: f"/usr/bin/{name}" if name in tools else None,
        tool_version=lambda name, path: {"kind": "v0.30.0", "kubectl": "v1.34.4", "helm": "v3.19.0"}[name],
        node_image=lambda: "k8slab/node:v1.34.4",
        connect=(lambda: cluster) if not isinstance(cluster, Exception) else (lambda: (_ for _ in ()).throw(cluster)),
        runner=lambda c: SimulatedRunner(truth),
        outside=lambda c: outside,
    )


def _healthy_truth(cluster):
    def truth(spec):
        if spec.kind == "dns":
            from graders.probe import ProbeResult
            return ProbeResult(spec, Outcome.ALLOWED, output="Name: kubernetes.default\nAddress: 10.96.0.1\n")
        if spec.kind == "tcp" and cluster.policy_applied and ("NetworkPolicy", "k8slab-doctor-deny") in cluster.objects:
            return Outcome.BLOCKED
        if spec.kind == "http":
            from graders.probe import ProbeResult
            return ProbeResult(spec, Outcome.ALLOWED, output="doctor-b")
        return Outcome.ALLOWED
    return truth


def _by_name(checks):
    return {c.name: c for c in checks}


def test_healthy_offline_cluster_all_pass_and_cleans_up():
    cluster = FakeCluster(namespaces={"metallb-system"}, ingress=True)
    checks = doctor.run(_env(cluster, _healthy_truth(cluster)))
    got = _by_name(checks)
    assert [c.status for c in checks].count(doctor.FAIL) == 0, [c.line() for c in checks]
    assert got["NetworkPolicy"].status == doctor.PASS and "enforced" in got["NetworkPolicy"].detail
    assert got["pod-to-pod"].detail.startswith("HTTP across nodes k8slab-worker <-> k8slab-worker2")
    assert "offline node image k8slab/node" in got["cluster reachable"].detail
    assert got["LoadBalancer"].status == doctor.PASS and got["Ingress"].status == doctor.PASS
    assert ("NetworkPolicy", "k8slab-doctor-deny") not in cluster.objects  # the self-test removed its policy
    assert cluster.deleted_namespaces == [doctor.NAMESPACE]


def test_policy_not_enforced_is_a_failure_with_the_fix():
    cluster = FakeCluster()
    checks = _by_name(doctor.run(_env(cluster, lambda s: Outcome.ALLOWED if s.kind != "dns" else Outcome.ALLOWED)))
    policy = checks["NetworkPolicy"]
    assert policy.status == doctor.FAIL and "NOT enforced" in policy.detail and "CNI=calico" in policy.fix
    assert "kubectl --context kind-k8slab exec" in policy.detail
    assert checks["LoadBalancer"].status == doctor.SKIP and "not probed" in checks["LoadBalancer"].detail
    assert checks["Ingress"].status == doctor.SKIP and "not probed" in checks["Ingress"].detail


def test_no_cluster_skips_the_rest_and_fails(capsys):
    unreachable = ClusterUnreachable("no kubeconfig at /root/.kube/config", hint="make cluster")
    checks = doctor.run(_env(unreachable, lambda s: True, docker_ok=False, tools=("kubectl",)))
    lines = [c.line() for c in checks]
    assert lines[0].startswith("FAIL  docker") and "fix:" in lines[0]
    assert any(l.startswith("FAIL  kind") and "make setup" in l for l in lines)
    assert any(l.startswith("SKIP  helm") for l in lines)  # offline cluster recognised: helm optional
    assert any(l.startswith("FAIL  cluster reachable") and "fix: make cluster" in l for l in lines)
    assert sum(l.startswith("SKIP") for l in lines) >= 6


def test_nodes_not_ready_and_wrong_count():
    bad = doctor.check_nodes(FakeCluster(nodes=[_node("a"), _node("b", ready=False), _node("c")]))
    assert bad.status == doctor.FAIL and "b (CNI not ready)" in bad.detail and bad.fix
    two = doctor.check_nodes(FakeCluster(nodes=[_node("a"), _node("b")]))
    assert two.status == doctor.FAIL and "2 nodes" in two.detail


def test_pod_to_pod_failure_names_the_probe():
    cluster = FakeCluster()
    checks = _by_name(doctor.run(_env(cluster, lambda s: s.kind == "dns")))
    assert checks["pod-to-pod"].status == doctor.FAIL and "blocked" in checks["pod-to-pod"].detail
    assert checks["NetworkPolicy"].status == doctor.SKIP
    # a learner may have several clusters: the fix's command names the one the doctor checked
    assert "`kubectl --context kind-k8slab get pods -n kube-system -o wide`" in checks["pod-to-pod"].fix


def test_pin_kubectl_pins_every_unpinned_command_once():
    from graders.cluster.names import pin_kubectl

    text = "`kubectl get pods` then `kubectl --context other logs x`"
    assert pin_kubectl(text, "kind-k8slab") == "`kubectl --context kind-k8slab get pods` then `kubectl --context other logs x`"
    assert pin_kubectl(text, "") == text


def test_cli_exit_code(monkeypatch, capsys):
    cluster = FakeCluster()
    env = _env(cluster, _healthy_truth(cluster))
    monkeypatch.setattr(doctor, "Env", lambda: env)
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("doctor: ") and "0 failed" in out


def test_doctor_does_not_run_under_the_autograder(monkeypatch, capsys):
    """The autograder's kernel may only touch the submission's namespaces: the doctor cell says so instead of
    printing Forbidden errors into the student's feedback."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(doctor, "run", lambda **kw: pytest.fail("the doctor ran under the autograder"))
    assert doctor.main([]) == 0
    assert "not run while the autograder executes this notebook" in capsys.readouterr().out


def test_lab_notebooks_skip_exploration_commands_under_the_autograder(monkeypatch, capsys):
    """Each lab notebook's run() helper (defined in its setup cell) prints what it would run instead."""
    from graders import paths

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("a command ran under the autograder"))
    for md in ("00-orientation/00-orientation.md", "03-services/03-services.md"):
        text = (paths.repo_root() / "labs" / md).read_text(encoding="utf-8")
        setup = next(cell for cell in text.split("```{code-cell} ipython3")[1:] if "def run(" in cell)
        namespace: dict = {}
        exec(setup.split("```")[0], namespace)  # noqa: S102 — our own notebook's setup cell
        namespace["run"]("kubectl", "get", "nodes")
        assert "(not run by the autograder) kubectl get nodes" in capsys.readouterr().out


def test_shell_lines_only_say_what_they_would_run_under_the_autograder(monkeypatch, capsys):
    """Lab 05 uses `!docker exec …` / `!kubectl …` lines; IPython runs them through shell.system, which the
    setup cell replaces while the autograder executes the notebook (and leaves alone otherwise)."""
    import IPython

    from graders.notebook import skip_shell_under_autograder

    def original(command):
        pytest.fail(f"ran {command}")

    shell = NS(system=original)
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    skip_shell_under_autograder()
    assert shell.system is original  # a learner's own notebook runs its shell lines
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    skip_shell_under_autograder()
    shell.system("docker exec k8slab-worker iptables-save")
    assert "(not run by the autograder) docker exec k8slab-worker iptables-save" in capsys.readouterr().out


def test_the_safe_autograders_sandbox_counts_as_autograding(monkeypatch):
    """Its kernel's environment is scrubbed: only K8SLAB_RESULTS_FILE tells the notebook it is being graded."""
    from graders.notebook import autograding

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("K8SLAB_RESULTS_FILE", raising=False)
    assert not autograding()
    monkeypatch.setenv("K8SLAB_RESULTS_FILE", "/k8slab/results.json")
    assert autograding()


def test_load_balancer_reached_inside_but_not_from_the_docker_network_names_the_speakers():
    """After a docker restart MetalLB's speakers may never answer ARP: pods still reach the IP (kube-proxy), the
    graders' outside client does not. The doctor must tell, with the restart that fixes it."""
    cluster = FakeCluster(namespaces={"metallb-system"}, ingress=True)
    unreachable = SimulatedRunner(lambda s: Outcome.FAILED)
    got = _by_name(doctor.run(_env(cluster, _healthy_truth(cluster), outside=unreachable)))
    lb = got["LoadBalancer"]
    assert lb.status == doctor.FAIL
    assert "not from the cluster's docker network" in lb.detail and "ARP for 172.18.255.200" in lb.detail
    assert "delete pod -l component=speaker" in lb.fix


def test_load_balancer_reached_from_the_docker_network_passes_and_says_so():
    cluster = FakeCluster(namespaces={"metallb-system"}, ingress=True)
    outside = SimulatedRunner(_healthy_truth(cluster))
    lb = _by_name(doctor.run(_env(cluster, _healthy_truth(cluster), outside=outside)))["LoadBalancer"]
    assert lb.status == doctor.PASS and lb.detail.endswith("and from the cluster's docker network")


def test_the_cni_is_named_with_how_it_crosses_nodes_and_whether_it_enforces():
    cluster = FakeCluster(namespaces={"metallb-system"}, ingress=True)
    cni = _by_name(doctor.run(_env(cluster, _healthy_truth(cluster))))["CNI"]
    assert cni.status == doctor.PASS and cni.detail.startswith("kube-router: routed")
    assert "has a NetworkPolicy engine" in cni.detail


def test_on_flannel_an_unenforced_policy_is_expected_not_a_failure():
    vxlan = {("kube-flannel", "kube-flannel-cfg"): {"data": {"net-conf.json": '{"Backend": {"Type": "vxlan"}}'}}}
    cluster = FakeCluster(cni="app=flannel", config_maps=vxlan)
    checks = _by_name(doctor.run(_env(cluster, lambda s: Outcome.ALLOWED)))
    assert checks["CNI"].detail.startswith("Flannel: VXLAN;") and "has NO NetworkPolicy engine" in checks["CNI"].detail
    policy = checks["NetworkPolicy"]
    assert policy.status == doctor.SKIP and "as expected: Flannel has no NetworkPolicy engine" in policy.detail


def test_flannel_with_kube_routers_firewall_is_canals_design_and_must_enforce():
    vxlan = {("kube-flannel", "kube-flannel-cfg"): {"data": {"net-conf.json": '{"Backend": {"Type": "vxlan"}}'}}}
    cluster = FakeCluster(cni=("app=flannel", "k8s-app=kube-router"), config_maps=vxlan)
    checks = _by_name(doctor.run(_env(cluster, lambda s: Outcome.ALLOWED)))
    assert checks["CNI"].detail.startswith("Flannel + kube-router (policy only; Canal's design): VXLAN;")
    assert "has a NetworkPolicy engine" in checks["CNI"].detail
    assert checks["NetworkPolicy"].status == doctor.FAIL  # an engine that lets traffic through is a fault here


def test_an_unknown_cni_is_said_and_an_unenforced_policy_stays_a_failure():
    cluster = FakeCluster(cni=None)
    checks = _by_name(doctor.run(_env(cluster, lambda s: Outcome.ALLOWED)))
    assert checks["CNI"].status == doctor.SKIP and checks["NetworkPolicy"].status == doctor.FAIL
