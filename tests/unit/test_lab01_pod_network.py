"""Lab 01-pod-network without a cluster: the judgements (placement, probe results, sidecar output) as pure
functions, the static step on every file set, and the four-pods live check on a simulated cluster whose probes a
SimulatedRunner answers. The real-cluster proof is tests/live (solutions, alternatives, starters, mistakes)."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab01_pod_network as lab
from graders.model import Outcome
from graders.probe import PROBE_LABEL, ProbeResult, SimulatedRunner

LAB = spec.load_lab("01-pod-network")
FOUR, NAMES = LAB.exercise("four-pods"), LAB.exercise("stable-names")
NS_ = LAB.namespaces[0]
CP, W1, W2 = "k8slab-control-plane", "k8slab-worker", "k8slab-worker2"


def _ctx(ex, directory, cluster=None, truth=None):
    found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    factory = (lambda c: SimulatedRunner(truth)) if truth else None
    return Ctx(spec=ex, objects=found.manifests, cluster=cluster, runner_factory=factory)


# ---------------------------------------------------------------------- four-pods: placement
@pytest.mark.parametrize("nodes, fragment", [
    ({"a": W1, "b": W1, "c": W2, "d": W2}, ""),
    ({"a": W2, "b": W2, "c": W1, "d": W1}, ""),
    ({"a": W1, "b": W1, "c": W1, "d": W1}, "must run on the other worker"),
    ({"a": W1, "b": W2, "c": W1, "d": W2}, "must share a worker"),
    ({"a": CP, "b": CP, "c": W2, "d": W2}, "runs on the control-plane node"),
])
def test_placement(nodes, fragment):
    found = lab.placement_problem(nodes, {CP})
    assert (fragment in found) if fragment else found == ""


# ---------------------------------------------------------------------- four-pods: probe judgement
IPS = {"a": "10.244.1.2", "b": "10.244.1.3", "c": "10.244.2.2", "d": "10.244.2.3"}
AGENTS = {"k8slab-agent-1": W1, "k8slab-agent-2": W2}


def _results(outcome=lambda s, d: (Outcome.ALLOWED, ""), seen=lambda s: IPS[s], agent=Outcome.ALLOWED):
    out = []
    for src in lab.FOUR:
        for dst in lab.FOUR:
            if src != dst:
                spec_ = lab.ProbeSpec(f"{NS_}/{src}", "clientip", IPS[dst], 8080, label=dst)
                result, detail = outcome(src, dst)
                out.append(ProbeResult(spec_, result, output=f"{seen(src)}:40000", detail=detail, command="cmd"))
    for name in AGENTS:
        spec_ = lab.ProbeSpec(f"{NS_}/{name}", "http", IPS["a"], 8080, label="a")
        out.append(ProbeResult(spec_, agent, output="a", detail="" if agent is Outcome.ALLOWED else "timed out"))
    return out


def test_every_clause_holding_is_no_verdict():
    assert lab.judge_four_pods(_results(), IPS, AGENTS) == lab.Verdict()


def test_a_pod_that_serves_nothing_is_named_once_with_every_client():
    refused = lambda s, d: (Outcome.BLOCKED, "connection refused: ...") if d == "d" else (Outcome.ALLOWED, "")
    verdict = lab.judge_four_pods(_results(refused), IPS, AGENTS)
    assert "nothing accepts connections on port 8080 in Pod d" in verdict.message
    assert "a, b, c" in verdict.message


def test_nat_is_caught_even_when_every_request_arrives():
    verdict = lab.judge_four_pods(_results(seen=lambda s: "172.29.0.2" if s == "a" else IPS[s]), IPS, AGENTS)
    assert "NATed" in verdict.message and "172.29.0.2" in verdict.message


def test_an_agent_that_cannot_reach_its_pods_fails():
    verdict = lab.judge_four_pods(_results(agent=Outcome.BLOCKED), IPS, AGENTS)
    assert "node agent on k8slab-worker" in verdict.message


def test_a_probe_that_could_not_run_is_the_graders_problem():
    failed = lambda s, d: (Outcome.FAILED, "exec failed") if s == "b" else (Outcome.ALLOWED, "")
    verdict = lab.judge_four_pods(_results(failed), IPS, AGENTS)
    assert verdict.probe_could_not_run and verdict.result.spec.pod == "b"


def test_agent_pod_is_host_network_pinned_and_serves_nothing():
    pod = lab.agent_pod(NS_, "k8slab-agent-1", "img", W1)
    assert pod["spec"]["hostNetwork"] is True and pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": W1}
    assert pod["spec"]["containers"][0]["args"] == ["pause"] and "ports" not in pod["spec"]["containers"][0]
    assert pod["metadata"]["labels"][PROBE_LABEL] == "true"  # learner_pods() leaves it out


# ---------------------------------------------------------------------- four-pods: simulated live run
class SimCluster:
    """Pods of the submitted files placed where their nodeSelector says (else spread), two workers."""

    context = "kind-k8slab"

    def __init__(self, directory, nodes_of=None):
        found = manifests.parse_submission([directory], allowed_kinds=FOUR.allowed_kinds, namespaces=FOUR.namespaces)
        self.pods = []
        for i, m in enumerate(found.manifests):
            selector = (m.obj["spec"].get("nodeSelector") or {}).get("kubernetes.io/hostname")
            node = (nodes_of or {}).get(m.name) or selector or (W1, W2)[i % 2]
            ip = f"10.244.{1 + (node == W2)}.{10 + i}"
            self.pods.append(NS(metadata=NS(name=m.name, labels=m.labels, deletion_timestamp=None),
                                spec=NS(node_name=node), status=NS(pod_ip=ip, conditions=[
                                    NS(type="Ready", status="True")])))
        self.applied = []

    def list_pods(self, namespace):
        return self.pods

    def list_nodes(self):
        return [NS(metadata=NS(name=name, labels=labels), status=None)
                for name, labels in ((CP, {lab.CONTROL_PLANE_LABEL: ""}), (W1, {}), (W2, {}))]

    def apply(self, objs):
        self.applied.extend(objs)

    def ensure_pods(self, pods, timeout=60):  # the grader's own pods: created like any object here
        self.apply(pods)

    def wait_ready(self, namespaces, timeout=90):
        pass

    def ip(self, name):
        return next(p.status.pod_ip for p in self.pods if p.metadata.name == name)


def _truth(cluster, refuse=()):
    def answer(spec_):
        if spec_.kind == "clientip":
            if spec_.label in refuse:
                return ProbeResult(spec_, Outcome.BLOCKED, detail="connection refused: ...")
            return ProbeResult(spec_, Outcome.ALLOWED, output=f"{cluster.ip(spec_.pod)}:5555")
        return ProbeResult(spec_, Outcome.ALLOWED, output=spec_.label)
    return answer


def test_solution_passes_the_simulated_live_check_and_starts_one_agent_per_worker():
    cluster = SimCluster(FOUR.solution_dir)
    result = lab.four_pods_live(_ctx(FOUR, FOUR.solution_dir, cluster, _truth(cluster)))
    assert result.passed and "no NAT" in result.message
    assert sorted(p["spec"]["nodeSelector"]["kubernetes.io/hostname"] for p in cluster.applied) == [W1, W2]


@pytest.mark.parametrize("mistake", ["all-on-one-node", "pairs-split", "missing-pod"])
def test_placement_mistakes_fail_the_simulated_live_check_with_their_message(mistake):
    directory = FOUR.mistake_dir(mistake)
    cluster = SimCluster(directory)
    with pytest.raises(CheckFailed) as info:
        lab.four_pods_live(_ctx(FOUR, directory, cluster, _truth(cluster)))
    assert FOUR.mistake(mistake).message in info.value.message


def test_wrong_port_mistake_fails_the_simulated_live_check_with_its_message():
    directory = FOUR.mistake_dir("wrong-port")
    cluster = SimCluster(directory)
    with pytest.raises(CheckFailed) as info:
        lab.four_pods_live(_ctx(FOUR, directory, cluster, _truth(cluster, refuse={"d"})))
    assert FOUR.mistake("wrong-port").message in info.value.message


# ---------------------------------------------------------------------- shared-netns: the sidecar's output
@pytest.mark.parametrize("log, kind, value", [
    ("127.0.0.1:41234", "client", "127.0.0.1"),
    ("[::1]:41234", "client", "::1"),
    ("10.244.1.5:41234", "client", "10.244.1.5"),
    ("curl: (6) Could not resolve host: app", "unresolved", "app"),
    ("curl: (28) Resolving timed out after 2000 milliseconds", "unresolved", ""),
    ("curl: (7) Failed to connect to localhost port 80 after 0 ms: Couldn't connect to server", "refused", None),
    ("I1202 13:44:23.860850       1 log.go:244] GET /clientip", None, None),
])
def test_classify_line(log, kind, value):
    found = lab.classify_line("sidecar", log)
    assert (found.kind if found else None) == kind
    if value is not None:
        assert found.value == value


@pytest.mark.parametrize("logs, fragment", [
    ({"app": "GET /clientip", "sidecar": "curl: (7) Failed to connect\n127.0.0.1:5000"}, ""),
    ({"sidecar": "10.244.1.5:5000"}, "not over loopback"),
    ({"sidecar": "curl: (6) Could not resolve host: app"}, "does not resolve"),
    ({"sidecar": "curl: (7) Failed to connect to localhost port 80: Couldn't connect to server"}, "connection refused"),
    ({"app": "started", "sidecar": ""}, "printed an answer"),
])
def test_judge_sidecar_uses_the_latest_telling_line(logs, fragment):
    message, _ = lab.judge_sidecar(lab.last_lines(logs), "10.244.1.5")
    assert (fragment in message) if fragment else message == ""


# ---------------------------------------------------------------------- stable-names: static
def test_stable_names_solution_and_alternatives_pass_static():
    for directory in (NAMES.solution_dir, *NAMES.alternative_dirs):
        assert lab.stable_names_static(_ctx(NAMES, directory)).passed, directory


def test_stable_names_starter_fails_static():
    with pytest.raises(CheckFailed, match="not headless"):
        lab.stable_names_static(_ctx(NAMES, NAMES.starter_dir))


@pytest.mark.parametrize("mistake", ["not-headless", "service-name-mismatch", "selector-typo"])
def test_stable_names_mistakes_named_by_static(mistake):
    with pytest.raises(CheckFailed) as info:
        lab.stable_names_static(_ctx(NAMES, NAMES.mistake_dir(mistake)))
    assert NAMES.mistake(mistake).message in info.value.message


def test_every_exercise_has_two_alternatives_that_pass_the_offline_checks():
    for ex in LAB.exercises:
        assert len(ex.alternative_dirs) >= 2, ex.id
        for directory in ex.alternative_dirs:
            assert {p.name for p in directory.glob("*.yaml")} == set(ex.files), directory
            if ex.submission == "answers":  # templates: tests/unit/test_lab01_read_network.py fills and grades them
                continue
            manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)


# dns-search: tests/unit/test_lab01_dns_search.py


def test_a_statefulset_scaled_to_zero_is_a_named_failure_not_a_grader_crash():
    class Zero:
        def get(self, api_version, kind, namespace, name):
            return {"spec": {"replicas": 0}}

    with pytest.raises(CheckFailed, match="replicas: 0, so web-0 never exists"):
        lab._wait_rollout(Zero(), "ns", timeout=1)
