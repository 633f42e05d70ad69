"""The engine under a NamespaceMap, with fake clusters: everything that reaches the cluster is in the run's real
names, everything in the result (messages, hints, matrices, reproduce commands) in the lab's; the identity map
grades exactly as the plain path does.

Lab 05 (production/staging, NetworkPolicies whose verdicts depend on namespace labels and names) runs on a fake
CNI that enforces the applied policies in the REAL names; lab 03 (Services reached by their DNS names) on
test_lab03_live_sim's simulated world, answering only the real DNS names.
"""
from __future__ import annotations

import copy
import re

import pytest
from fakes import FakeCluster
from test_lab03_live_sim import FakeOutside, SimWorld
from test_lab05_predict import ADDRESSES, DNS_IPS, PredictCluster

from graders import engine, manifests, outside, paths, render
from graders.cluster import RUN_LABEL
from graders.labs import _kit as kit
from graders.labs import lab03_services as lab03
from graders.labs import lab05_network_policy as lab05
from graders.netpol.inventory import inventory_from_objects
from graders.netpol.verdicts import PolicyEngine
from graders.nsmap import LOGICAL_LABEL, NamespaceMap
from graders.probe import SimulatedRunner
from graders.spec import load_lab

ROOT = paths.repo_root()
RUN = "s7-ab12cd"
LAB05 = load_lab(lab05.LAB_ID, ROOT)
NSMAP = NamespaceMap.for_run(LAB05.all_namespaces, RUN)


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(ports, cluster=None, client=None):
        raise outside.OutsideUnavailable("no docker in unit tests")
    monkeypatch.setattr(outside, "listener", unavailable)


class Lab05Cluster(PredictCluster):
    """test_lab05_predict's cluster (two kube-dns pods, the lab's addresses), under whatever real name a pod was
    created; ``rejections`` and ``not_ready`` as FakeCluster's."""

    def __init__(self, nsmap: NamespaceMap, rejections=None, not_ready=()) -> None:
        super().__init__()
        self.nsmap = nsmap
        self.rejections, self.not_ready = dict(rejections or {}), list(not_ready)

    def ensure_pods(self, pods, timeout=60):
        FakeCluster.ensure_pods(self, pods)
        for pod in pods:
            real = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            self.objects[f"Pod {real}"]["status"] = {"podIP": ADDRESSES[self.nsmap.text_to_logical(real)],
                                                     "phase": "Running"}


def enforcing(cluster: Lab05Cluster, sent: list):
    """A CNI that enforces the policies applied right now, in the names the cluster holds (the real ones)."""
    nsmap = cluster.nsmap

    def truth(spec):
        sent.append(spec)
        dns = [o for o in cluster.objects.values() if o["metadata"]["namespace"] == "kube-system"]
        world = [nsmap.to_real(d) for d in lab05._placed([copy.deepcopy(d) for d in lab05._docs("world.yaml")],
                                                          ADDRESSES, dns, needs_dns=True)]
        for doc in world:  # the namespaces as the engine labelled them
            if doc["kind"] == "Namespace":
                doc["metadata"]["labels"] = dict(cluster.namespaces.get(doc["metadata"]["name"], {}))
        policy_engine = PolicyEngine(inventory_from_objects([*world, *cluster.policies()],
                                                            default_namespace=nsmap.real("production")))
        if spec.kind == "dns":
            return lab05._cell_allowed(policy_engine, spec.source, lab05.DNS_UDP)
        by_ip = {ip: nsmap.key_to_real(key) for key, ip in ADDRESSES.items()}
        by_ip.update({ip: f"kube-system/{name}" for name, ip in DNS_IPS.items()})
        return policy_engine.is_allowed(spec.source, by_ip[spec.target], spec.port, spec.kind.upper())
    return truth


def grade05(directory, nsmap: NamespaceMap | None, exercise: str = "web-to-api", **cluster_kwargs):
    cluster = Lab05Cluster(nsmap or NamespaceMap.identity(), **cluster_kwargs)
    sent: list = []
    result = engine.grade(lab05.LAB_ID, exercise, directory, cluster=cluster, teardown="empty",
                          namespace_map=nsmap,
                          runner_factory=lambda c: SimulatedRunner(enforcing(cluster, sent), context="kind-fake"))
    return result, cluster, sent


def reals(nsmap: NamespaceMap) -> set[str]:
    return {real for logical, real in nsmap.logical_to_real.items() if real != logical}


def logical_names_sent(cluster: FakeCluster, nsmap: NamespaceMap) -> list[str]:
    """Every namespace the fake cluster was told about that is a lab (logical) name: must be none."""
    logical = set(nsmap.logical_to_real)
    found = [ns for ns in cluster.namespaces if ns in logical]
    found += [ref for ref, obj in cluster.objects.items() if obj["metadata"].get("namespace") in logical]
    for call in cluster.calls:
        for part in call[1:]:
            for item in part if isinstance(part, tuple) else (part,):
                text = str(item)
                if re.search(r"(?:^|\s)(%s)/" % "|".join(map(re.escape, logical)), text) or text in logical:
                    found.append(f"{call[0]}: {text}")
    return found


def no_real_name(text: str, nsmap: NamespaceMap) -> list[str]:
    return [real for real in reals(nsmap) if real in text]


# ------------------------------------------------------------------------------------------------ lab 05


def test_lab05_solution_passes_under_a_map_with_everything_real_on_the_cluster() -> None:
    ex = LAB05.exercise("web-to-api")
    result, cluster, sent = grade05(ex.solution_dir, NSMAP)
    outcome = result.exercise("web-to-api")
    assert outcome.passed, outcome.message
    assert logical_names_sent(cluster, NSMAP) == []
    assert set(cluster.owned_namespaces()) == reals(NSMAP)
    assert cluster.namespaces[NSMAP.real("production")]["env"] == "production"  # the lab's labels, real namespace
    assert cluster.namespaces[NSMAP.real("staging")][LOGICAL_LABEL] == "staging"
    assert sent and all(spec.source.split("/")[0] in reals(NSMAP) for spec in sent)
    assert {p["metadata"]["namespace"] for p in cluster.policies()} <= reals(NSMAP) or not cluster.policies()


@pytest.mark.parametrize("mistake", ["env-notin-staging", "or-peers", "namespace-label-missing"])
def test_lab05_mistakes_read_in_the_lab_names(mistake: str) -> None:
    ex = LAB05.exercise("web-to-api")
    result, cluster, _ = grade05(ex.mistake_dir(ex.mistake(mistake)), NSMAP)
    plain, _, _ = grade05(ex.mistake_dir(ex.mistake(mistake)), None)
    outcome = result.exercise("web-to-api")
    assert not outcome.passed and ex.mistake(mistake).message in outcome.message
    text = render.to_json(result, indent=None) + render.to_text(result, verbose=True, color=False)
    assert no_real_name(text, NSMAP) == [] and "production/" in text
    assert logical_names_sent(cluster, NSMAP) == []
    assert result == plain, "under a map the learner reads exactly what the plain run says"


def test_lab05_reproduce_commands_and_matrices_name_the_logical_namespaces() -> None:
    """The starter of break-fix-lockdown fails live: its matrix, why and reproduce lines are full of names."""
    ex = LAB05.exercise("break-fix-lockdown")
    result, cluster, sent = grade05(ex.starter_dir, NSMAP, ex.id)
    outcome = result.exercise(ex.id)
    assert not outcome.passed and "reproduce: kubectl --context kind-fake exec -n production" in outcome.message
    cells = [c for e in outcome.evidence if e.kind == "matrix" for c in e.data.cells]
    assert cells and all(c.source.startswith(("production/", "staging/")) for c in cells)
    assert all(no_real_name(c.command + c.why, NSMAP) == [] for c in cells)
    assert sent and all(spec.source.split("/")[0] in reals(NSMAP) for spec in sent)
    assert logical_names_sent(cluster, NSMAP) == []


def test_the_engine_own_words_about_real_objects_read_in_the_lab_names() -> None:
    """What the engine itself reports -- the API server's rejection, pods that are not ready -- is about the
    real objects; the learner reads the names they wrote."""
    ex = LAB05.exercise("web-to-api")
    real = NSMAP.real("production")
    rejected, _, _ = grade05(ex.solution_dir, NSMAP, rejections={
        f"NetworkPolicy {real}/allow-web-to-api": f'NetworkPolicy.networking.k8s.io "allow-web-to-api" is invalid: '
                                                  f'metadata.namespace: {real} is being terminated'})
    outcome = rejected.exercise("web-to-api")
    assert outcome.failed_step == "admit"
    assert "metadata.namespace: production is being terminated" in outcome.message, outcome.message
    assert no_real_name(render.to_json(rejected), NSMAP) == []
    stuck, _, _ = grade05(ex.solution_dir, NSMAP, not_ready=[f"Pod {real}/web: ImagePullBackOff (kubectl describe "
                                                             f"pod -n {real} web)"])
    outcome = stuck.exercise("web-to-api")
    assert outcome.failed_step == "apply"
    rows = [cell for e in outcome.evidence if e.kind == "table" for row in e.data.rows for cell in row]
    assert "Pod production/web: ImagePullBackOff (kubectl describe pod -n production web)" in rows
    assert no_real_name(render.to_json(stuck), NSMAP) == []


def test_lab05_the_identity_map_is_the_plain_path() -> None:
    ex = LAB05.exercise("web-to-api")
    for directory in (ex.solution_dir, ex.mistake_dir(ex.mistakes[0])):
        plain, plain_cluster, _ = grade05(directory, None)
        same, same_cluster, _ = grade05(directory, NamespaceMap.identity())
        assert render.to_json(same) == render.to_json(plain)
        def labels(cluster):  # each run stamps its own run id
            return {ns: {k: v for k, v in lbl.items() if k != RUN_LABEL} for ns, lbl in cluster.namespaces.items()}
        assert labels(same_cluster) == labels(plain_cluster)  # no logical-name label without a map
        assert [c for c in same_cluster.calls] == [c for c in plain_cluster.calls]


# ------------------------------------------------------------------------------------------------ lab 03

LAB03 = load_lab("03-services", ROOT)
NSMAP03 = NamespaceMap.for_run(LAB03.all_namespaces, RUN)


class Lab03Cluster(FakeCluster):
    """The engine's steps on FakeCluster; what the checks read and probe from test_lab03_live_sim's SimWorld,
    which lives in the real namespace and answers only its real DNS names."""

    def __init__(self, world: SimWorld) -> None:
        super().__init__(context=world.context, nodes=tuple((n, ip) for n, ip in world.node_addresses()))
        self.world = world

    def ensure_pods(self, pods, timeout=60):
        super().ensure_pods(pods)
        self.world.apply(pods)

    def get_service(self, namespace, name):
        return self.world.get_service(namespace, name) if namespace == self.world.ns else None

    def get_pod(self, namespace, name):
        return self.world.get_pod(namespace, name) if namespace == self.world.ns else None

    def list_pods(self, namespace=None, label_selector=None):
        return self.world.list_pods(namespace) if namespace in (None, self.world.ns) else []

    def endpoints(self, namespace, service):
        return self.world.endpoints(namespace, service) if namespace == self.world.ns else []

    def exec(self, namespace, pod, argv, timeout=10, container=None):
        self.calls.append(("exec", f"{namespace}/{pod}", tuple(argv)))
        return self.world.exec(namespace, pod, argv, timeout)


def grade03(exercise: str, directory, nsmap: NamespaceMap | None, monkeypatch: pytest.MonkeyPatch):
    ex = LAB03.exercise(exercise)
    found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    world = SimWorld(found.manifests)
    world.ns = (nsmap or NamespaceMap.identity()).real(world.ns)
    FakeOutside.world = world
    monkeypatch.setattr(outside, "OutsideRunner", FakeOutside)
    monkeypatch.setattr(lab03.time, "sleep", lambda s: None)
    monkeypatch.setattr(kit, "ENDPOINTS_SETTLE", 0.05)
    cluster = Lab03Cluster(world)
    sent: list = []

    def truth(spec):
        sent.append(spec)
        return world.truth(spec)
    result = engine.grade(LAB03.id, exercise, directory, cluster=cluster, teardown="empty", namespace_map=nsmap,
                          runner_factory=lambda c: SimulatedRunner(truth, context=world.context))
    return result.exercise(exercise), cluster, sent


@pytest.mark.parametrize("exercise", ["clusterip", "headless"])
def test_lab03_solutions_reach_services_by_their_real_dns_names(exercise: str, monkeypatch) -> None:
    outcome, cluster, sent = grade03(exercise, LAB03.exercise(exercise).solution_dir, NSMAP03, monkeypatch)
    assert outcome.passed, outcome.message
    real = NSMAP03.real(LAB03.namespaces[0])
    named = [s.target for s in sent if not s.target[0].isdigit()]
    assert named and all(real in name.split(".") for name in named if "." in name)
    assert logical_names_sent(cluster, NSMAP03) == []
    text = render.to_text(render_result(outcome), verbose=True, color=False)
    assert no_real_name(text, NSMAP03) == []


def render_result(outcome):
    from graders.model import LabResult

    return LabResult(lab=LAB03.id, exercises=(outcome,))


def test_lab03_a_mistake_reads_as_in_the_plain_run(monkeypatch) -> None:
    ex = LAB03.exercise("clusterip")
    directory = ex.mistake_dir(ex.mistake("session-affinity"))
    mapped, cluster, _ = grade03("clusterip", directory, NSMAP03, monkeypatch)
    plain, _, _ = grade03("clusterip", directory, None, monkeypatch)
    assert not mapped.passed and ex.mistake("session-affinity").message in mapped.message
    assert mapped == plain
    assert logical_names_sent(cluster, NSMAP03) == []
