"""Lab 05-network-policy without a cluster: every exercise's solution draws the target matrix, its starter does not,
and every known mistake fails with the message fragment lab.yaml promises -- all from the static engine.

The live proof (solution passes, starter and mistakes fail, on a real cluster) is the generic tests/live suite;
here the live check runs against a fake cluster and a simulated runner, to pin down what it says when the
cluster agrees, when the CNI does not enforce, and when pods are not placed as the ipBlock exercise assumes.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from graders import paths
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab05_network_policy as lab05
from graders.model import Outcome
from graders.probe import SimulatedRunner
from graders.spec import load_lab

ROOT = paths.repo_root()
LAB = load_lab(lab05.LAB_ID, ROOT)
# Answers exercises (predict) have no target matrix and no static step: tests/unit/test_lab05_predict.py
JUDGED_BY_ANSWERS = {ex.id for ex in LAB.exercises if ex.submission == "answers"}
EXERCISES = [ex.id for ex in LAB.exercises if ex.id not in JUDGED_BY_ANSWERS]
MISTAKES = [(ex.id, m.id) for ex in LAB.exercises if ex.id not in JUDGED_BY_ANSWERS for m in ex.mistakes]
ALTERNATIVES = [(ex.id, d) for ex in LAB.exercises if ex.id not in JUDGED_BY_ANSWERS for d in ex.alternative_dirs]


def report_for(directory: Path, exercise: str) -> lab05.StaticReport:
    assert directory.is_dir(), f"{directory} is missing"
    return lab05.evaluate_files(exercise, [directory])


# ------------------------------------------------------------------------------------------------ the spec


def test_every_exercise_has_a_target_and_the_spec_lists_every_target() -> None:
    assert JUDGED_BY_ANSWERS == {"predict"}
    assert set(EXERCISES) == set(lab05.TARGETS) == set(lab05.EXERCISES) - JUDGED_BY_ANSWERS


@pytest.mark.parametrize("exercise", EXERCISES)
def test_exercise_has_starter_solution_five_mistakes_and_two_alternatives(exercise: str) -> None:
    spec = LAB.exercise(exercise)
    assert spec.allowed_kinds == ("NetworkPolicy",)
    assert len(spec.mistakes) >= 5 and len(spec.alternative_dirs) >= 2
    for directory in (spec.starter_dir, spec.solution_dir, *(spec.mistake_dir(m) for m in spec.mistakes)):
        for name in spec.files:
            assert (directory / name).is_file(), f"{directory / name} is missing"


def test_mistake_messages_are_distinct_within_an_exercise() -> None:
    for ex in LAB.exercises:
        messages = [m.message for m in ex.mistakes]
        assert len(messages) == len(set(messages)), ex.id


def test_the_issue_mistake_families_are_covered() -> None:
    messages = " | ".join(m.message for ex in LAB.exercises for m in ex.mistakes)
    for family in ("ORed", "does not list Egress", "named port", "matches no pod", "matches no namespace",
                   "nothing allows DNS", "port 80/TCP, but"):
        assert family in messages, family


# ------------------------------------------------------------------------------------------------ static


@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_matrix_equals_the_target(exercise: str) -> None:
    report = report_for(LAB.exercise(exercise).solution_dir, exercise)
    assert report.matches, report.message
    assert report.cells and not report.diagnoses


@pytest.mark.parametrize(("exercise", "directory"), ALTERNATIVES, ids=[f"{e}/{d.name}" for e, d in ALTERNATIVES])
def test_alternative_written_differently_draws_the_target_too(exercise: str, directory: Path) -> None:
    report = report_for(directory, exercise)
    assert report.matches, report.message


@pytest.mark.parametrize("exercise", EXERCISES)
def test_target_covers_every_port_the_statement_covers(exercise: str) -> None:
    """"Only on 8080", "nothing else into production": every port a destination pod serves is a column (a
    policy with no ports, or a range, opens the ports next to the one the worked example shows)."""
    labels = {c.label for c in lab05.TARGETS[exercise].columns}
    served = {"production/api:8080", "production/api:8081", "production/api:8082", "production/api:8083",
              "production/api:8084", "production/db:5432", "production/db:5433"}
    wanted = {"ipblock-except": {"production/db:5432", "outside/host:80"},
              "web-to-api": {c for c in served if c.startswith("production/api")}}.get(exercise, served)
    assert wanted <= labels, wanted - labels


def test_imagined_destinations_are_judged_statically_and_never_probed() -> None:
    """A pod of kube-system that is not kube-dns, db after a move, an address outside the cluster: the static
    table has their columns, the live table (real pods only) does not."""
    for exercise, target in lab05.TARGETS.items():
        imagined = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in target.imagined}
        static = {c.pod for c in target.reachability().columns}
        live = {c.pod for c in target.reachability(live=True).columns}
        assert imagined <= static and not imagined & live, exercise
    assert {lab05.OTHER_KUBE_SYSTEM, lab05.DB_MOVED, lab05.OUTSIDE} <= {
        p for t in lab05.TARGETS.values() for p in (f"{d['metadata']['namespace']}/{d['metadata']['name']}"
                                                    for d in t.imagined)}


def test_a_rule_without_ports_is_named_as_such_only_where_another_port_is_allowed() -> None:
    """No ports on the api -> db rule: the peer is right, its ports are missing. No ports on a rule whose peer
    admits pods that may use no port at all: the peer is at fault, not the ports."""
    spec = LAB.exercise("seed-diagram")
    assert "has no 'ports'" in report_for(spec.mistake_dir(spec.mistake("no-ports")), "seed-diagram").message
    deny = LAB.exercise("default-deny-ingress")
    message = report_for(deny.mistake_dir(deny.mistake("from-own-namespace")), "default-deny-ingress").message
    assert "has no 'ports'" not in message and "admits production/" in message


def test_dns_metrics_port_is_probed_on_every_kube_dns_pod() -> None:
    cluster = LabCluster(ADDRESSES)
    report = lab05.evaluate("api-egress-dns", _ctx("api-egress-dns", LAB.exercise("api-egress-dns").solution_dir,
                                                    cluster, lambda s: True).objects,
                            ADDRESSES, lab05.live_dns_pods(cluster))
    probes = lab05._cell_probes(report, ADDRESSES, {"kube-system/coredns-1": "10.244.0.2",
                                                    "kube-system/coredns-2": "10.244.0.3"})
    metrics = probes[(lab05.API, lab05.DNS_METRICS)]
    assert [(spec.kind, spec.target, spec.port, allowed) for spec, allowed in metrics] == [
        ("tcp", "10.244.0.2", 9153, False), ("tcp", "10.244.0.3", 9153, False)]
    assert not any(lab05.OTHER_KUBE_SYSTEM in column.pod for _, column in probes)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_starter_matrix_differs_from_the_target(exercise: str) -> None:
    report = report_for(LAB.exercise(exercise).starter_dir, exercise)
    assert not report.matches
    assert report.diagnoses, f"the starter of {exercise} fails without saying why:\n{report.message}"


@pytest.mark.parametrize(("exercise", "mistake"), MISTAKES, ids=[f"{e}/{m}" for e, m in MISTAKES])
def test_mistake_fails_and_names_itself(exercise: str, mistake: str) -> None:
    spec = LAB.exercise(exercise)
    report = report_for(spec.mistake_dir(mistake), exercise)
    assert not report.matches, f"mistake {mistake} passes the static check"
    fragment = spec.mistake(mistake).message
    assert fragment in report.message, f"{fragment!r} not in:\n{report.message}"
    # every wrong cell is explained (graders.netpol.explain) and carries a one-line why
    assert len(report.explanations) == len(report.wrong)
    for (source, column), text in zip(report.wrong, report.explanations):
        assert source in text and (column.pod in text or lab05.is_dns(column))
        assert report.whys[(source, column)]


@pytest.mark.parametrize(("exercise", "mistake", "field"), [
    ("web-to-api", "or-peers", "- from:"),
    ("api-egress-dns", "policy-types-missing-egress", "policyTypes:"),
    ("named-ports-range", "named-port-typo", "- port: postgresql"),
    ("default-deny-ingress", "wrong-namespace", "namespace: staging"),
])
def test_a_mistake_names_the_file_and_line_of_the_field_at_fault(exercise: str, mistake: str, field: str) -> None:
    """Through the engine's parser each policy knows the line of every field; the sentence naming the mistake
    points at the one at fault."""
    import re

    from graders import manifests

    spec = LAB.exercise(exercise)
    found = manifests.parse_submission([spec.mistake_dir(mistake)], allowed_kinds=spec.allowed_kinds,
                                       namespaces=spec.namespaces)
    with pytest.raises(CheckFailed) as failed:
        lab05.static_check(Ctx(spec=spec, objects=found.manifests, cluster=None))
    sentence = next(line for line in failed.value.message.splitlines() if spec.mistake(mistake).message in line)
    file, line = re.search(r"\(([^() ]+\.yaml):(\d+)\)", sentence).groups()
    assert (ROOT / file).read_text(encoding="utf-8").splitlines()[int(line) - 1].strip() == field


def test_seed_allow_web_to_api_is_wider_than_its_name() -> None:
    """The seed's own policy lets production's db reach api -- and any other pod of production (the imagined new
    workload): separate peers are ORed."""
    report = report_for(LAB.exercise("web-to-api").starter_dir, "web-to-api")
    assert [(source, column.label) for source, column in report.wrong] == [
        (lab05.DB, "production/api:8080"), (lab05.NEW_NODE_POD, "production/api:8080")]
    assert "peers in separate list items are ORed" in report.explanations[0]


def test_ipblock_target_follows_the_addresses() -> None:
    """The ipBlock exercise's target is stated in addresses: move db out of 10.244.0.0/24 and api may reach it."""
    target = lab05.TARGETS["ipblock-except"]

    def expected(source, column, addresses) -> bool:
        return target.reachability(addresses).expected.get(source, column) is Outcome.ALLOWED

    addresses = {lab05.WEB: ("10.244.1.5",), lab05.DB: ("10.244.0.7",), lab05.TEST: ("10.244.2.9",)}
    assert expected(lab05.API, lab05.DB_5432, addresses) is False
    assert expected(lab05.API, lab05.WEB_80, addresses) is True
    moved = {**addresses, lab05.DB: ("10.244.2.7",)}
    assert expected(lab05.API, lab05.DB_5432, moved) is True
    assert expected(lab05.WEB, lab05.DB_5432, addresses) is True  # only api's egress is restricted


def test_side_by_side_grid_shows_three_matrices() -> None:
    report = report_for(LAB.exercise("seed-diagram").starter_dir, "seed-diagram")
    grid = lab05.grids(report, report.reachability.with_observed())
    assert "expected" in grid and "static" in grid and "live" in grid
    assert "production/db" in grid and "col 2: production/api:8080" in grid


# ------------------------------------------------------------------------------------------------ live, faked


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never start containers: the outside listener is unavailable unless a test provides one."""
    from graders import outside

    def unavailable(ports, cluster=None, client=None):
        raise outside.OutsideUnavailable("no docker in unit tests")
    monkeypatch.setattr(outside, "listener", unavailable)


class _Pod(SimpleNamespace):
    pass


def _v1pod(ns: str, name: str, ip: str, node: str, labels: dict | None = None, ports=()):
    containers = [SimpleNamespace(ports=[SimpleNamespace(name=n, container_port=p, protocol=proto)
                                         for n, p, proto in ports])]
    return _Pod(metadata=SimpleNamespace(name=name, namespace=ns, labels=labels or {}),
                status=SimpleNamespace(pod_ip=ip, phase="Running"),
                spec=SimpleNamespace(node_name=node, containers=containers))


class LabCluster:
    """Just what the lab's live check calls: apply, wait, read pods (with addresses), list kube-dns. Namespace
    labels are the engine's business (lab.yaml's namespace_labels, set at reset): the lab never labels."""

    context = "kind-fake"

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = addresses
        self.applied: list[dict] = []

    def apply(self, objs):
        self.applied.extend(objs)
        return list(objs)

    def ensure_pods(self, pods, timeout=60):  # the grader's own pods: created like any object here
        self.apply(pods)

    def wait_ready(self, namespaces, timeout=90, poll=1.0, progress=None) -> None:
        return None

    def list_nodes(self):
        return []

    def get_pod(self, namespace: str, name: str):
        ip = self.addresses[f"{namespace}/{name}"]
        node = "k8slab-control-plane" if ip.startswith("10.244.0.") else "k8slab-worker"
        return _v1pod(namespace, name, ip, node)

    def list_pods(self, namespace=None, label_selector=None):
        dns = (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))
        return [_v1pod("kube-system", "coredns-1", "10.244.0.2", "cp", {"k8s-app": "kube-dns"}, dns),
                _v1pod("kube-system", "coredns-2", "10.244.0.3", "cp", {"k8s-app": "kube-dns"}, dns)]


ADDRESSES = {lab05.WEB: "10.244.1.4", lab05.API: "10.244.2.4", lab05.DB: "10.244.0.9", lab05.TEST: "10.244.2.5"}


def _ctx(exercise: str, directory: Path, cluster: LabCluster, truth) -> Ctx:
    from graders import manifests

    spec = LAB.exercise(exercise)
    found = manifests.parse_submission([directory], allowed_kinds=spec.allowed_kinds, namespaces=spec.namespaces)
    return Ctx(spec=spec, objects=found.manifests, cluster=cluster,
               runner_factory=lambda c: SimulatedRunner(truth, context="kind-fake"))


def _as_the_policies_say(exercise: str, directory: Path, cluster: LabCluster):
    """A CNI that enforces exactly what the static engine says (by probe target address and port)."""
    report = lab05.evaluate(exercise, _ctx(exercise, directory, cluster, lambda s: True).objects,
                            ADDRESSES, lab05.live_dns_pods(cluster) if lab05.TARGETS[exercise].needs_dns else None)
    engine = report.engine
    by_ip = {ip: pod.key for pod in engine.pods for ip in pod.ips}

    def truth(spec):
        if spec.kind == "dns":
            return report.allowed(spec.source, lab05.DNS_UDP)
        protocol = {"tcp": "TCP", "udp": "UDP"}[spec.kind]
        return engine.is_allowed(spec.source, by_ip[spec.target], spec.port, protocol)

    return truth


@pytest.mark.parametrize("exercise", EXERCISES)
def test_live_check_passes_when_the_cluster_enforces_the_solution(exercise: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from graders import outside

    @contextlib.contextmanager
    def listener(ports, cluster=None, client=None):
        yield "172.18.0.77"
    monkeypatch.setattr(outside, "listener", listener)
    cluster = LabCluster(ADDRESSES)
    directory = LAB.exercise(exercise).solution_dir
    policies_say = _as_the_policies_say(exercise, directory, cluster)

    def truth(spec):  # the outside listener: every solution keeps api away from it, nothing else is isolated
        return spec.source != lab05.API if spec.target == "172.18.0.77" else policies_say(spec)
    ctx = _ctx(exercise, directory, cluster, truth)
    result = lab05.live_check(ctx)
    assert result.passed, result.message
    assert "matches the target" in result.message
    assert {p["metadata"]["name"] for p in cluster.applied} == {"web", "api", "db", "test"}
    assert all(":latest" not in c["image"] for p in cluster.applied for c in p["spec"]["containers"])


def test_split_by_type_keeps_the_meaning_one_direction_per_policy() -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "deny", "namespace": "production", "annotations": {"a": "b"}},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}}
    both, halves = lab05.split_by_type([policy, {**policy, "spec": {"podSelector": {}}}])
    assert both == [policy]
    assert [(h["metadata"]["name"], h["spec"]) for h in halves] == [
        ("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        ("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})]
    assert lab05.evaluate("default-deny-ingress", _as_manifests(halves)).matches


def _as_manifests(docs):
    from graders.manifests import Manifest
    return [Manifest(obj=d, file="x.yaml", line=1) for d in docs]


def test_a_right_policy_with_both_types_is_proven_as_two_when_the_cni_skips_it() -> None:
    """kube-router left the ingress part of a policy listing both Ingress and Egress unenforced (held-out grading,
    3 runs), while the same rules as two policies were enforced: the grader proves the learner's meaning with the
    two, and says so; when even those are not enforced, the CNI is blamed as before."""
    directory = LAB.exercise("default-deny-ingress").alternative_dirs
    directory = next(d for d in directory if d.name == "both-types-egress-open")

    class SplittingCluster(LabCluster):
        deleted: list = []

        def delete(self, obj):
            self.deleted.append(obj["metadata"]["name"])

    cluster = SplittingCluster(ADDRESSES)
    policies_say = _as_the_policies_say("default-deny-ingress", directory, cluster)

    def truth(spec):  # enforced only once the grader applied the two halves
        split = any(o.get("kind") == "NetworkPolicy" for o in cluster.applied)
        return policies_say(spec) if split else True
    result = lab05.live_check(_ctx("default-deny-ingress", directory, cluster, truth))
    assert result.passed and "applied as two policies of one type each" in result.message
    assert cluster.deleted == ["default-deny-ingress"]
    assert sorted(o["metadata"]["name"] for o in cluster.applied if o["kind"] == "NetworkPolicy") == [
        "default-deny-ingress-egress", "default-deny-ingress-ingress"]
    cluster = SplittingCluster(ADDRESSES)
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx("default-deny-ingress", directory, cluster, lambda spec: True))
    assert "not your mistake" in failed.value.message


def test_live_check_blames_the_cni_not_the_learner_when_nothing_is_enforced() -> None:
    cluster = LabCluster(ADDRESSES)
    ctx = _ctx("seed-diagram", LAB.exercise("seed-diagram").solution_dir, cluster, lambda spec: True)
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(ctx)
    text = failed.value.message
    assert "your policies are right" in text and "not your mistake" in text and "not enforcing" in text
    assert {e.kind for e in failed.value.evidence} == {"text", "matrix"}
    matrix = next(e.data for e in failed.value.evidence if e.kind == "matrix")
    wrong = matrix.wrong_cells
    assert wrong and all(c.command.startswith("kubectl --context") for c in wrong)  # every wrong cell: reproduce


def test_live_check_reports_probes_that_could_not_run_as_the_graders_problem() -> None:
    cluster = LabCluster(ADDRESSES)
    ctx = _ctx("default-deny-ingress", LAB.exercise("default-deny-ingress").solution_dir, cluster,
               lambda spec: Outcome.FAILED)
    with pytest.raises(CheckFailed, match="says nothing about your policies"):
        lab05.live_check(ctx)


def test_ipblock_unverifiable_on_a_cluster_that_places_pods_differently_earns_no_points() -> None:
    """Static right but no live proof (e.g. Calico's IPAM ignores node pod ranges): a result, never a pass."""
    placed = {**ADDRESSES, lab05.DB: "192.168.7.3"}
    cluster = LabCluster(placed)
    ctx = _ctx("ipblock-except", LAB.exercise("ipblock-except").solution_dir, cluster, lambda spec: True)
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(ctx)
    message = failed.value.message
    assert "not verifiable on this cluster" in message and "NOT RUN" in message and "192.168.7.3" in message
    assert failed.value.credit == 0.0 and "nothing against your policies" in message


def test_ipblock_probes_a_real_address_outside_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """"Nowhere else", live: api -> a listener on the cluster's docker network must be blocked, and is probed."""
    import contextlib

    from graders import outside

    listening = []

    @contextlib.contextmanager
    def listener(ports, cluster=None, client=None):
        listening.append(list(ports))
        yield "172.18.0.77"
        listening.append("removed")
    monkeypatch.setattr(outside, "listener", listener)
    probed = []

    def truth(spec):
        probed.append((spec.source, spec.target, spec.port))
        if spec.source != lab05.API:
            return True
        return spec.target in (ADDRESSES[lab05.WEB], ADDRESSES[lab05.TEST])

    cluster = LabCluster(ADDRESSES)
    result = lab05.live_check(_ctx("ipblock-except", LAB.exercise("ipblock-except").solution_dir, cluster, truth))
    assert result.passed, result.message
    assert listening == [[80], "removed"]
    assert (lab05.API, "172.18.0.77", 80) in probed and "not verifiable" not in result.message


def test_ipblock_without_docker_is_not_verifiable_and_gets_no_credit() -> None:
    """"Nowhere else" never tried on the wire is unproven: no points, and no blame on the policies."""
    cluster = LabCluster(ADDRESSES)
    directory = LAB.exercise("ipblock-except").solution_dir
    with pytest.raises(CheckFailed) as failed:
        lab05.live_check(_ctx("ipblock-except", directory, cluster,
                              _as_the_policies_say("ipblock-except", directory, cluster)))
    message = failed.value.message
    assert message.startswith("not verifiable on this cluster") and "outside/host" in message
    assert "nothing against your policies" in message and failed.value.credit == 0.0


# ------------------------------------------------------------------------------------------------ notebook


def test_preview_prints_the_static_grid_of_the_learners_files(capsys: pytest.CaptureFixture[str]) -> None:
    report = lab05.preview("web-to-api")  # the starter in labs/: the seed's ORed peers
    out = capsys.readouterr().out
    assert not report.matches and "expected" in out and "static" in out and "ORed" in out
    assert repr(report).startswith("<static matrix of web-to-api")


def test_notebook_teaches_and_checks_every_exercise() -> None:
    source = (ROOT / "labs" / lab05.LAB_ID / f"{lab05.LAB_ID}.md").read_text(encoding="utf-8")
    for exercise in EXERCISES:
        assert f'check("{lab05.LAB_ID}", "{exercise}")' in source, exercise
    assert source.count("```mermaid") >= 4
    for topic in ("KUBE-NWPLCY", "docker exec", "matrix", "explain", "policies only add",
                  "set by the grader", '"tags": ["answer"'):
        assert topic.lower() in source.lower(), topic
