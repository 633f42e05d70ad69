"""Lab 00-orientation, exercise predict, without a cluster: the pure facts against every answers file of the exercise,
and the live check against a simulated cluster (a fake that hands out pod IPs, writes EndpointSlices from the
Services' selectors like the controller, and a DNS answer from a SimulatedRunner). The live tests prove the same on
a real cluster."""
from __future__ import annotations

import itertools

import pytest
from fakes import FakeCluster

from graders import engine, questions, spec
from graders.cluster import Endpoint
from graders.errors import CheckFailed, SubmissionError
from graders.exercise import Ctx
from graders.labs import lab00_orientation as lab
from graders.model import Outcome
from graders.netpol.selectors import service_selects
from graders.probe import ProbeResult, ProbeSpec, SimulatedRunner

EX = spec.load_lab("00-orientation").exercise("predict")
NS = EX.default_namespace
CLUSTER_IP = "10.96.12.34"
RIGHT = lab.PredictSeen(ips=("10.244.1.5", "10.244.1.9"), web_endpoints=2, lonely_endpoints=0, lonely_resolves=True)


@pytest.fixture(autouse=True)
def short_dns_deadline(monkeypatch):
    monkeypatch.setattr(lab, "DNS_DEADLINE_S", 2.0)  # a lookup without the expected answer: retried 2 s, not 20


def answers_of(directory):
    return questions.parse_answers([directory], lab.PREDICTIONS, "predictions.yaml")


def judge(directory, seen=RIGHT):
    return questions.judge(answers_of(directory), lab.prediction_facts(seen))


# ---------------------------------------------------------------------- the facts (pure)
@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_right_predictions_pass(directory):
    assert judge(directory).passed


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_prediction_is_named_with_its_own_message(mistake):
    with pytest.raises((CheckFailed, SubmissionError)) as info:
        judge(EX.mistake_dir(mistake))
    assert mistake.message in info.value.message
    others = [m.message for m in EX.mistakes if m is not mistake]
    assert not [m for m in others if m in info.value.message], "each mistake has a message of its own"
    if isinstance(info.value, CheckFailed):
        assert info.value.credit == 0.75 and "predictions.yaml:" in info.value.message  # 3 of 4 right, file:line


def test_the_starter_is_read_but_earns_nothing():
    answers = answers_of(EX.starter_dir)
    assert set(answers) == {q.id for q in lab.PREDICTIONS} and all(a.value is None for a in answers.values())
    with pytest.raises(CheckFailed) as info:
        judge(EX.starter_dir)
    assert info.value.credit == 0 and "not answered yet" in info.value.message


def test_the_starter_lists_the_choices_of_each_question_in_a_comment():
    text = (EX.starter_dir / "predictions.yaml").read_text()
    for question in lab.PREDICTIONS:
        assert f"\n{question.id}:" in text
        assert all(choice in text for choice in question.choices)
    for name, labels in lab.WEB_PODS.items():  # the comment describes the grader's real pods
        assert name in text and all(f"{k}: {v}" in text for k, v in labels.items())


def test_no_choice_is_a_word_yaml_reads_as_a_boolean():
    import yaml
    for question in lab.PREDICTIONS:
        for choice in question.choices:
            assert isinstance(yaml.safe_load(f"a: {choice}")["a"], str), choice


def test_the_facts_come_from_the_cluster_not_from_the_course():
    """Whatever this cluster did is the right prediction: an allocator that hands the freed IP out again makes
    "same" right, and the solution then fails with why."""
    seen = lab.PredictSeen(ips=("10.244.1.5", "10.244.1.5"), web_endpoints=2, lonely_endpoints=0,
                           lonely_resolves=False)
    facts = lab.prediction_facts(seen)
    assert facts["recreated_pod_ip"].accepted == (lab.SAME,)
    assert facts["lonely_dns_name"].accepted == (lab.NOT_RESOLVES,)
    with pytest.raises(CheckFailed) as info:
        judge(EX.solution_dir, seen)
    assert "handed the freed address out again" in info.value.message
    assert "did not resolve on this cluster" in info.value.message and info.value.credit == 0.5


def test_an_experiment_that_could_not_run_is_never_a_pass():
    seen = lab.PredictSeen(ips=None, web_endpoints=2, lonely_endpoints=None, lonely_resolves=True,
                           missing={"recreated_pod_ip": "the deleted pod was still there after 60 s"})
    facts = lab.prediction_facts(seen)
    assert facts["recreated_pod_ip"].unobservable == "the deleted pod was still there after 60 s"
    assert "could not be read" in facts["lonely_endpoints"].unobservable  # a default reason, never empty
    with pytest.raises(CheckFailed) as info:
        judge(EX.solution_dir, seen)
    assert info.value.credit == 0.5 and info.value.message.count("not verifiable on this cluster") == 2


def _dns(outcome, output="", detail=""):
    spec_ = ProbeSpec(f"{NS}/{lab.DNS_SOURCE}", "dns", f"lonely.{NS}.svc.cluster.local")
    return ProbeResult(spec_, outcome, output=output, detail=detail)


@pytest.mark.parametrize("result, expected", [
    (_dns(Outcome.ALLOWED, f"Name: lonely\nAddress: {CLUSTER_IP}"), True),
    (_dns(Outcome.BLOCKED, "Name: lonely\nAddress: 10.96.0.99", "answered 10.96.0.99, expected x"), True),
    (_dns(Outcome.BLOCKED, detail="the name lonely does not exist (NXDOMAIN)"), False),
    (_dns(Outcome.BLOCKED, detail="no DNS server answered (DNS traffic dropped?)"), None),
    (_dns(Outcome.FAILED, detail="exec failed: pod not found"), None),
], ids=["clusterip", "another-address", "nxdomain", "no-server", "probe-failed"])
def test_what_a_lookup_says_about_the_name(result, expected):
    resolves, why = lab.name_resolves(result)
    assert resolves is expected
    assert bool(why) == (expected is None) and (not why or result.detail in why)


# ---------------------------------------------------------------------- the live check on a simulated cluster
class SimCluster(FakeCluster):
    """Pods get a UID and the next free IP of their node's range when created (``reuse_ips``: the lowest free one,
    like an allocator that hands a freed address out again); a Service's endpoints are the ready pods its selector
    picks, written by a simulated controller (``endpoints_for`` overrides them)."""

    def __init__(self, *, reuse_ips=False, stuck_pods=False, endpoints_for=None, **kw):
        super().__init__(**kw)
        self.reuse_ips, self.stuck_pods = reuse_ips, stuck_pods
        self.endpoints_for = dict(endpoints_for or {})
        self.uids = itertools.count(1)
        self.last_octet = 4

    def apply(self, objs):
        done = []
        for obj in objs:
            obj = dict(obj)
            meta = obj["metadata"] = {**obj["metadata"], "uid": f"uid-{next(self.uids)}"}
            if obj["kind"] == "Pod":
                node = (obj["spec"].get("nodeSelector") or {}).get("kubernetes.io/hostname", "k8slab-worker2")
                obj["spec"] = {**obj["spec"], "nodeName": node}
                obj["status"] = {"phase": "Running", "podIP": self._ip(done), "conditions": [{"type": "Ready",
                                                                                           "status": "True"}]}
            if obj["kind"] == "Service":
                obj["spec"] = {**obj["spec"], "clusterIP": CLUSTER_IP if meta["name"] == lab.LONELY_SERVICE
                               else "10.96.1.1"}
            done.append(obj)
        return super().apply(done)

    def _ip(self, batch):
        used = {o["status"]["podIP"] for o in (*self.objects.values(), *batch) if o["kind"] == "Pod"}
        if self.reuse_ips:
            return next(f"10.244.1.{n}" for n in itertools.count(5) if f"10.244.1.{n}" not in used)
        self.last_octet += 1
        return f"10.244.1.{self.last_octet}"

    def delete(self, obj):
        if self.stuck_pods:  # a finalizer, a node that does not answer: the pod stays
            self.calls.append(("delete", obj["metadata"]["name"]))
            return
        super().delete(obj)

    def endpoints(self, namespace, service):
        if service in self.endpoints_for:
            return self.endpoints_for[service]
        svc = self.get_service(namespace, service)
        if svc is None:
            return []
        return sorted((Endpoint(p.status.pod_ip, p.metadata.name, p.spec.node_name, True, (("http", 8080),))
                       for p in self.list_pods(namespace) if service_selects(svc.spec.selector, p.metadata.labels)),
                      key=lambda e: e.pod)

    def list_endpointslices(self, namespace, service=None):
        return [object()] if self.get_service(namespace, service) is not None else []


def dns_answer(spec_):
    if spec_.kind == "dns":
        return ProbeResult(spec_, Outcome.ALLOWED, output=f"Name: {spec_.target}\nAddress: {CLUSTER_IP}")
    return Outcome.BLOCKED


def live(directory, cluster=None, truth=dns_answer):
    cluster = cluster or SimCluster()
    cluster.ensure_owned_namespace(NS)
    ctx = Ctx(spec=EX, objects=(), cluster=cluster, runner_factory=lambda c: SimulatedRunner(truth),
              answers=answers_of(directory))
    return lab.predict_live(ctx), cluster


def test_the_solution_passes_on_a_simulated_cluster_and_the_table_shows_what_happened():
    result, cluster = live(EX.solution_dir)
    assert result.passed and "all 4 answers match" in result.message
    rows = dict(next(e for e in result.evidence if e.title == "What the cluster did").data.rows)
    recreated = next(v for k, v in rows.items() if k.startswith(f"Pod {lab.AGAIN_POD} deleted"))
    assert recreated.startswith("IP 10.244.1.5 before, 10.244.1.9 after")
    assert any(v.startswith("2: k8slab-web-1") and "k8slab-web-2" in v for v in rows.values())
    assert any(v.startswith("0: none") for v in rows.values())
    assert any(CLUSTER_IP in v and "ClusterIP" in v for v in rows.values())
    assert [c for c in cluster.calls if c[0] == "delete"] == [("delete", f"Pod {NS}/{lab.AGAIN_POD}")]
    again = cluster.get_pod(NS, lab.AGAIN_POD)
    assert again.spec.node_selector == {"kubernetes.io/hostname": again.spec.node_name}  # re-created on one node


@pytest.mark.parametrize("directory", EX.alternative_dirs, ids=lambda d: d.name)
def test_the_alternatives_pass_on_a_simulated_cluster(directory):
    assert live(directory)[0].passed


def test_a_cluster_that_hands_the_old_ip_out_again_makes_same_right():
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, SimCluster(reuse_ips=True))
    assert "recreated_pod_ip" in info.value.message and info.value.credit == 0.75
    assert live(EX.mistake_dir(EX.mistake("same-ip")), SimCluster(reuse_ips=True))[0].passed


def test_a_pod_that_will_not_go_away_makes_that_question_unverifiable(monkeypatch):
    monkeypatch.setattr(lab, "RECREATE_TIMEOUT_S", 0.2)
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, SimCluster(stuck_pods=True))
    assert "recreated_pod_ip" in info.value.message and "still there after 0.2 s" in info.value.message
    assert "not verifiable on this cluster" in info.value.message and info.value.credit == 0.75


def test_endpointslices_that_do_not_settle_are_not_a_fact(monkeypatch):
    monkeypatch.setattr(lab, "SETTLE_S", 0.2)
    lagging = {lab.WEB_SERVICE: [Endpoint("10.244.1.6", "k8slab-web-1", "k8slab-worker2", True, ())]}
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, SimCluster(endpoints_for=lagging))
    assert "web_endpoints" in info.value.message and "did not settle within 0.2 s" in info.value.message
    assert info.value.credit == 0.75


def test_a_lookup_that_could_not_run_is_not_a_fact():
    def no_exec(spec_):
        return ProbeResult(spec_, Outcome.FAILED, detail="exec failed: container not running")
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, truth=no_exec)
    assert "lonely_dns_name" in info.value.message and "exec failed" in info.value.message
    assert info.value.credit == 0.75


def test_a_name_that_does_not_resolve_is_observed_as_such():
    def nxdomain(spec_):
        return ProbeResult(spec_, Outcome.BLOCKED, detail=f"the name {spec_.target} does not exist (NXDOMAIN)")
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, truth=nxdomain)
    assert "did not resolve on this cluster" in info.value.message
    assert live(EX.mistake_dir(EX.mistake("no-dns-without-endpoints")), truth=nxdomain)[0].passed


def test_pods_that_cannot_start_leave_every_question_unverifiable_without_a_traceback():
    with pytest.raises(CheckFailed) as info:
        live(EX.solution_dir, SimCluster(not_ready=["Pod k8slab-web-1: image not found"]))
    assert info.value.credit == 0 and info.value.message.count("not verifiable on this cluster") == 4
    assert "image not found" in info.value.message


def test_the_engine_grades_the_solution_and_the_starter_with_the_simulated_cluster():
    runner = (lambda c: SimulatedRunner(dns_answer))
    solution = engine.grade("00-orientation", "predict", EX.solution_dir, cluster=SimCluster(),
                            runner_factory=runner, teardown="empty").exercise("predict")
    assert solution.passed and solution.score == solution.points
    starter = engine.grade("00-orientation", "predict", EX.starter_dir, cluster=SimCluster(),
                           runner_factory=runner, teardown="empty").exercise("predict")
    assert not starter.passed and starter.score == 0 and starter.failed_step == "live"
