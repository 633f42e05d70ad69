"""Lab 05's break-fix exercise without a cluster: the starter is a broken setup whose failure shows symptoms
(what cannot talk to what, with the live outcome and a command to reproduce it) and gives no cause away; once
the learner edits it, the failure names the causes as every other exercise does.

The live check runs against a fake cluster and a simulated runner that enforces exactly what the policies say.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from graders import manifests, paths
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab05_network_policy as lab05
from graders.model import Outcome
from graders.netpol.compile import Direction
from graders.netpol.truthtable import Column
from graders.probe import SimulatedRunner
from graders.spec import load_lab

EXERCISE = "break-fix-lockdown"
SPEC = load_lab(lab05.LAB_ID, paths.repo_root()).exercise(EXERCISE)
ADDRESSES = {lab05.WEB: "10.244.1.4", lab05.API: "10.244.2.4", lab05.DB: "10.244.0.9", lab05.TEST: "10.244.2.5"}
POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "p", "namespace": "production"},
          "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"]}}


# ------------------------------------------------------------------------------------------------ pure parts


def test_policy_fingerprint_ignores_order_and_layout_but_not_meaning() -> None:
    other = {**POLICY, "metadata": {"name": "q"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    reordered = {"spec": {"policyTypes": ["Egress"], "podSelector": {"matchLabels": {"app": "api"}}},
                 "kind": "NetworkPolicy", "metadata": {"namespace": "production", "name": "p"}}
    assert lab05.policy_fingerprint([POLICY, other]) == lab05.policy_fingerprint([other, reordered])
    changed = {**POLICY, "spec": {**POLICY["spec"], "policyTypes": ["Ingress"]}}
    assert lab05.policy_fingerprint([POLICY]) != lab05.policy_fingerprint([changed])
    # no namespace means the lab's default namespace; other kinds do not count
    assert lab05.policy_fingerprint([{**POLICY, "metadata": {"name": "p"}}, {"kind": "ConfigMap"}]) == \
        lab05.policy_fingerprint([POLICY])


def test_symptom_says_what_the_app_sees() -> None:
    blocked, allowed = Outcome.BLOCKED, Outcome.ALLOWED
    assert "cannot resolve names" in lab05.symptom(lab05.API, lab05.DNS_UDP, allowed, blocked)
    assert "DNS over TCP" in lab05.symptom(lab05.API, lab05.DNS_TCP, allowed, blocked)
    assert "must be refused" in lab05.symptom(lab05.WEB, lab05.DB_5432, blocked, allowed)
    assert "cannot open a connection it needs" in lab05.symptom(lab05.API, lab05.DB_5432, allowed, blocked)


def test_a_target_about_both_directions_judges_each_cell_by_its_source() -> None:
    target = lab05.TARGETS[EXERCISE]
    assert target.direction is None and target.break_fix
    assert target.cell_direction(lab05.API) is Direction.EGRESS
    assert target.cell_direction(lab05.WEB) is Direction.INGRESS
    assert lab05.TARGETS["web-to-api"].cell_direction(lab05.API) is Direction.INGRESS


def test_target_names_every_path_of_the_statement() -> None:
    expected = lab05.TARGETS[EXERCISE].reachability().expected

    def allowed(source: str, column: Column) -> bool:
        return expected.get(source, column) is Outcome.ALLOWED

    assert allowed(lab05.TEST, lab05.WEB_80) and allowed(lab05.DB, lab05.WEB_80)  # anyone -> web:80
    assert allowed(lab05.WEB, lab05.API_8080) and not allowed(lab05.TEST, lab05.API_8080)
    assert not any(allowed(lab05.WEB, Column(lab05.API, port)) for port in range(8081, 8085))
    assert allowed(lab05.API, lab05.DB_5432) and not allowed(lab05.WEB, lab05.DB_5432)
    assert not allowed(lab05.API, Column(lab05.DB, 5433))
    assert allowed(lab05.API, lab05.DNS_UDP) and allowed(lab05.API, lab05.DNS_TCP)
    assert not allowed(lab05.API, lab05.DNS_METRICS) and not allowed(lab05.API, lab05.WEB_80)
    assert not allowed(lab05.API, Column(lab05.OTHER_KUBE_SYSTEM, 53, "UDP"))
    assert allowed(lab05.WEB, lab05.TEST_80) and allowed(lab05.WEB, lab05.DNS_METRICS)  # out of scope: open


def test_the_deployed_digest_is_the_starters() -> None:
    """The grader knows the broken setup by digest (the learner edits the starter files in place)."""
    from graders.netpol.cli import load_manifests

    starter = load_manifests([str(SPEC.starter_dir)])
    assert lab05.fingerprint_digest(m.obj for m in starter) == lab05.DEPLOYED[EXERCISE], (
        f"labs/05-network-policy/{EXERCISE}/ changed: set DEPLOYED[{EXERCISE!r}] in graders/labs/"
        f"lab05_network_policy.py to {lab05.fingerprint_digest(m.obj for m in starter)}")
    assert set(lab05.DEPLOYED) == {e for e, t in lab05.TARGETS.items() if t.break_fix}


def test_starter_is_recognised_as_deployed_and_a_fix_is_not() -> None:
    def parsed(directory: Path):
        return manifests.parse_submission([directory], allowed_kinds=SPEC.allowed_kinds,
                                          namespaces=SPEC.namespaces).manifests
    assert lab05.deployed_as_is(EXERCISE, parsed(SPEC.starter_dir))
    assert not lab05.deployed_as_is(EXERCISE, parsed(SPEC.solution_dir))
    assert not lab05.deployed_as_is(EXERCISE, parsed(SPEC.mistake_dir(SPEC.mistake("dns-only"))))


def test_starter_faults_are_the_two_the_story_tells() -> None:
    report = lab05.evaluate_files(EXERCISE, [SPEC.starter_dir])
    assert sorted((s, c.label) for s, c in report.wrong) == [
        (lab05.API, "kube-system/kube-dns:53/TCP"), (lab05.API, "kube-system/kube-dns:53/UDP"),
        (lab05.NEW_NODE_POD, "production/db:5432"),  # the ORed peers let in any pod of production: the imagined one
        (lab05.WEB, "production/db:5432")]
    assert any("nothing allows DNS" in d for d in report.diagnoses)
    assert any("ORed" in d for d in report.diagnoses)


# ------------------------------------------------------------------------------------------------ live, faked


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from graders import outside

    def unavailable(ports, cluster=None, client=None):
        raise outside.OutsideUnavailable("no docker in unit tests")
    monkeypatch.setattr(outside, "listener", unavailable)


def _v1pod(ns: str, name: str, ip: str, labels: dict | None = None, ports=()):
    containers = [SimpleNamespace(ports=[SimpleNamespace(name=n, container_port=p, protocol=proto)
                                         for n, p, proto in ports])]
    return SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=ns, labels=labels or {}),
                           status=SimpleNamespace(pod_ip=ip, phase="Running"),
                           spec=SimpleNamespace(node_name="k8slab-worker", containers=containers))


class LabCluster:
    """What the live check calls: the grader's pods, readiness, pod reads, the kube-dns pods."""

    context = "kind-fake"

    def ensure_pods(self, pods, timeout=60) -> None:
        return None

    def wait_ready(self, namespaces, timeout=90, poll=1.0, progress=None) -> None:
        return None

    def list_nodes(self):
        return []

    def get_pod(self, namespace: str, name: str):
        return _v1pod(namespace, name, ADDRESSES[f"{namespace}/{name}"])

    def list_pods(self, namespace=None, label_selector=None):
        dns = (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))
        return [_v1pod("kube-system", "coredns-1", "10.244.0.2", {"k8s-app": "kube-dns"}, dns),
                _v1pod("kube-system", "coredns-2", "10.244.0.3", {"k8s-app": "kube-dns"}, dns)]


def _ctx(directory: Path, truth=None) -> Ctx:
    found = manifests.parse_submission([directory], allowed_kinds=SPEC.allowed_kinds, namespaces=SPEC.namespaces)
    cluster = LabCluster()
    if truth is None:  # a CNI that enforces exactly what the policies say
        report = lab05.evaluate(EXERCISE, found.manifests, ADDRESSES, lab05.live_dns_pods(cluster))
        by_ip = {ip: pod.key for pod in report.engine.pods for ip in pod.ips}

        def truth(spec):
            if spec.kind == "dns":
                return report.allowed(spec.source, lab05.DNS_UDP)
            return report.engine.is_allowed(spec.source, by_ip[spec.target], spec.port, spec.kind.upper())
    return Ctx(spec=SPEC, objects=found.manifests, cluster=cluster,
               runner_factory=lambda c: SimulatedRunner(truth, context="kind-fake"))


def test_break_fix_has_no_static_step_so_the_broken_setup_is_applied_and_probed() -> None:
    checks = lab05.EXERCISES[EXERCISE]
    assert checks.static is None and checks.live is lab05.live_check


def test_solution_passes_live() -> None:
    result = lab05.live_check(_ctx(SPEC.solution_dir))
    assert result.passed and "matches the target" in result.message


def test_starter_failure_shows_symptoms_with_live_outcomes_and_gives_no_cause_away() -> None:
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx(SPEC.starter_dir))
    message = failed.value.message
    assert message.startswith("the setup as deployed is broken: 4 connection(s)")  # 3 probed, 1 imagined caller
    assert "production/api -> kube-system/kube-dns:53/UDP should be allowed but is blocked" in message
    assert "api cannot resolve names" in message
    assert "production/web -> production/db:5432 should be blocked but is allowed" in message
    assert "(live probe: blocked; reproduce: kubectl --context kind-fake exec" in message
    assert "(live probe: allowed; reproduce:" in message
    for cause in ("ORed", "nothing allows DNS", "k8s-app=kube-dns", "namespaceSelector", "lockdown.yaml:"):
        assert cause not in message, cause
    assert "investigate" in message and failed.value.hint == lab05.HINTS[EXERCISE]
    assert {e.kind for e in failed.value.evidence} == {"text", "matrix"}


def test_an_edited_but_wrong_setup_names_the_remaining_cause() -> None:
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx(SPEC.mistake_dir(SPEC.mistake("dns-only"))))
    message = failed.value.message
    assert message.startswith("the policies are not fixed yet: 2 connection(s)")  # web and the imagined new pod
    assert SPEC.mistake("dns-only").message in message
    assert any(e.title == "why each wrong cell is what it is" for e in failed.value.evidence)


def test_a_mistake_only_the_imagined_pod_reveals_fails_live_too() -> None:
    """DNS to every pod on port 53: the real pods all agree with the target; kube-system/other-pod does not."""
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx(SPEC.mistake_dir(SPEC.mistake("dns-to-anywhere"))))
    message = failed.value.message
    assert "kube-system/other-pod:53/UDP should be blocked but is allowed" in message
    assert "imagined: judged from the policies, never probed" in message
    assert SPEC.mistake("dns-to-anywhere").message in message


def test_a_cluster_that_does_not_enforce_is_shown_next_to_what_the_policies_say() -> None:
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx(SPEC.starter_dir, truth=lambda spec: True))
    assert "production/web -> production/db:5432 should be blocked but is allowed: web can open a connection " \
           "that must be refused (live probe: allowed; reproduce:" in failed.value.message
    dns = next(line for line in failed.value.message.splitlines() if "kube-dns:53/UDP" in line)
    assert "api cannot resolve names" in dns and "(live probe: allowed, although the policies say blocked" in dns
