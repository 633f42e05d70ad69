"""Lab 05 predict without a cluster: the given policies (pinned), the facts built from what probes saw (pure), and
the live check end to end on a fake cluster whose simulated CNI enforces exactly what the policies say -- or
nothing at all. The live proof on a real cluster is tests/live/test_labs_live.py (-k predict)."""
from __future__ import annotations

import copy
import re

import pytest
import yaml
from fakes import FakeCluster

from graders import engine, paths, questions
from graders.errors import CheckFailed, K8sLabError, SubmissionError
from graders.labs import lab05_network_policy as lab05
from graders.model import Outcome
from graders.netpol.inventory import inventory_from_objects
from graders.netpol.verdicts import PolicyEngine
from graders.probe import ProbeResult, SimulatedRunner
from graders.spec import load_lab

ROOT = paths.repo_root()
EX = load_lab(lab05.LAB_ID, ROOT).exercise("predict")
ADDRESSES = {lab05.WEB: "10.244.1.4", lab05.API: "10.244.2.4", lab05.DB: "10.244.0.9", lab05.TEST: "10.244.2.5"}
DNS_IPS = {"coredns-1": "10.244.0.2", "coredns-2": "10.244.0.3"}
DNS_QUESTION = "deny_egress_api_dns"


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated cluster answers at once: no pause between rounds of probes (their number stays bounded)."""
    monkeypatch.setattr(lab05, "PREDICT_PAUSE_S", 0.0)


def static() -> dict:
    return lab05.predict_static(lab05.given_policies())


def as_the_policies_say(verdicts: dict) -> dict:
    return {cell: (Outcome.ALLOWED if allowed else Outcome.BLOCKED, "simulated", "kubectl ...")
            for cell, allowed in verdicts.items()}


def judge_file(directory, facts):
    answers = questions.parse_answers([directory], lab05.PREDICTIONS, "predictions.yaml")
    return questions.judge(answers, facts)


# ------------------------------------------------------------------------------------------------ the spec


def test_the_exercise_is_an_answers_exercise_outside_the_target_matrices() -> None:
    assert EX.submission == "answers" and EX.files == ("predictions.yaml",)
    assert "predict" not in lab05.TARGETS and "predict" not in lab05.DEPLOYED
    checks = lab05.EXERCISES["predict"]
    assert checks.static is None and checks.live is lab05.predict_live and checks.questions == lab05.PREDICTIONS
    assert 2 <= len(lab05.PREDICTIONS) <= 5 and len(EX.mistakes) >= 4 and len(EX.alternative_dirs) >= 2
    assert all(q.kind == "choice" and q.choices == ("allowed", "blocked") for q in lab05.PREDICTIONS)


def test_the_given_policies_are_pinned_and_every_round_names_one_of_them() -> None:
    policies = lab05.given_policies()
    docs = [d for d in yaml.safe_load_all((lab05.lab_dir() / lab05.PREDICT_POLICIES).read_text()) if d]
    assert lab05.fingerprint_digest(docs) == lab05.PREDICT_DIGEST, "update PREDICT_DIGEST with the file"
    rounds = lab05.predict_rounds()
    assert list(rounds)[0] == lab05.NO_POLICY and set(rounds) - {lab05.NO_POLICY} == set(policies)
    assert set(lab05.PREDICT_EXTRA) <= set(policies)
    # the first round sends every question's connection once, with no policy
    assert set(rounds[lab05.NO_POLICY]) == {(p.source, p.column) for p in lab05.PREDICTS}


def test_a_changed_policies_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    original = lab05._docs

    def edited(name: str):
        docs = [copy.deepcopy(d) for d in original(name)]
        if name == lab05.PREDICT_POLICIES:
            docs[0]["spec"]["podSelector"] = {"matchLabels": {"app": "db"}}
        return tuple(docs)
    monkeypatch.setattr(lab05, "_docs", edited)
    with pytest.raises(K8sLabError, match="was changed") as error:
        lab05.given_policies()
    assert "git checkout" in error.value.hint


def test_the_starter_asks_every_question_with_its_choices_and_answers_none() -> None:
    text = (EX.starter_dir / "predictions.yaml").read_text()
    answers = questions.parse_answers([EX.starter_dir], lab05.PREDICTIONS, "predictions.yaml")
    assert set(answers) == {q.id for q in lab05.PREDICTIONS} and all(a.value is None for a in answers.values())
    assert text.count("allowed | blocked") + text.count("allowed (it is answered) | blocked") == len(answers)
    for p in lab05.PREDICTS:  # each question names the one policy it is about
        assert re.search(rf"Only {p.policy} is applied\..*\n(.*\n)*?{p.question.id}:", text), p.question.id


# ------------------------------------------------------------------------------------------------ facts (pure)


def test_the_policies_say_what_the_solution_predicts() -> None:
    """The course's answers are the policy engine's verdicts on the given policies (world.yaml's addresses)."""
    verdicts = static()
    by_question = {p.question.id: verdicts[p.cell] for p in lab05.PREDICTS}
    solution = yaml.safe_load((EX.solution_dir / "predictions.yaml").read_text())
    assert {k: "allowed" if v else "blocked" for k, v in by_question.items()} == solution
    # the first round: with no policy every connection is allowed
    assert all(allowed for (policy, _, _), allowed in verdicts.items() if policy == lab05.NO_POLICY)
    # what is shown next to the questions: staging's test (app=web too) gets in under neither peer version
    assert verdicts[("allow-web-to-api-two-peers", lab05.TEST, lab05.API_8080)] is False
    assert verdicts[("allow-web-to-api-one-peer", lab05.WEB, lab05.API_8080)] is True


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_right_predictions_pass(directory) -> None:
    verdicts = static()
    assert judge_file(directory, lab05.prediction_facts(verdicts, as_the_policies_say(verdicts))).passed


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_prediction_is_named(mistake) -> None:
    verdicts = static()
    with pytest.raises((CheckFailed, SubmissionError)) as info:
        judge_file(EX.mistake_dir(mistake), lab05.prediction_facts(verdicts, as_the_policies_say(verdicts)))
    assert mistake.message in info.value.message
    if isinstance(info.value, CheckFailed):  # one wrong of five: partial credit, and the file:line of the answer
        assert info.value.credit == pytest.approx(0.8)
        assert re.search(r"\(predictions\.yaml:\d+\): you predicted", info.value.message)


def test_the_starter_earns_nothing() -> None:
    verdicts = static()
    with pytest.raises(CheckFailed) as info:
        judge_file(EX.starter_dir, lab05.prediction_facts(verdicts, as_the_policies_say(verdicts)))
    assert info.value.credit == 0 and "not answered yet" in info.value.message


def test_a_cluster_that_does_not_enforce_verifies_nothing() -> None:
    """Everything allowed (Flannel): even the connections the policies allow prove nothing, so no question
    earns credit -- and the solution is told why, never passed."""
    verdicts = static()
    seen = {cell: (Outcome.ALLOWED, "", "") for cell in verdicts}
    facts = lab05.prediction_facts(verdicts, seen)
    assert all(f.unobservable and "does not enforce NetworkPolicy" in f.unobservable for f in facts.values())
    with pytest.raises(CheckFailed) as info:
        judge_file(EX.solution_dir, facts)
    assert info.value.credit == 0 and "not verifiable on this cluster" in info.value.message


def test_a_probe_that_could_not_run_makes_only_its_question_unverifiable() -> None:
    verdicts = static()
    seen = as_the_policies_say(verdicts)
    seen[("api-deny-egress", lab05.API, lab05.DNS_UDP)] = (Outcome.FAILED, "exec failed: pod gone", "")
    facts = lab05.prediction_facts(verdicts, seen)
    assert "could not run (exec failed: pod gone)" in facts[DNS_QUESTION].unobservable
    assert all(not f.unobservable for q, f in facts.items() if q != DNS_QUESTION)
    with pytest.raises(CheckFailed) as info:
        judge_file(EX.solution_dir, facts)
    assert info.value.credit == pytest.approx(0.8) and "not verifiable on this cluster" in info.value.message


def test_a_connection_that_fails_with_no_policy_proves_nothing() -> None:
    """DNS broken on the cluster: "blocked" under api-deny-egress would be right for the wrong reason."""
    verdicts = static()
    seen = as_the_policies_say(verdicts)
    seen[(lab05.NO_POLICY, lab05.API, lab05.DNS_UDP)] = (Outcome.BLOCKED, "no DNS server answered", "")
    facts = lab05.prediction_facts(verdicts, seen)
    assert "with no policy at all, a DNS lookup from production/api did not work" in facts[DNS_QUESTION].unobservable


def test_a_connection_the_policy_allows_but_the_cluster_blocks_is_not_verifiable() -> None:
    verdicts = static()
    seen = as_the_policies_say(verdicts)
    seen[("default-deny-ingress", lab05.WEB, lab05.TEST_80)] = (Outcome.BLOCKED, "timed out", "")
    facts = lab05.prediction_facts(verdicts, seen)
    assert "although default-deny-ingress allows it" in facts["deny_web_to_test"].unobservable
    assert not facts["deny_web_to_api"].unobservable


def test_the_table_shows_every_round_with_what_the_policy_says_and_the_cluster_did() -> None:
    verdicts = static()
    seen = as_the_policies_say(verdicts)
    seen[("default-deny-ingress", lab05.WEB, lab05.TEST_80)] = (Outcome.BLOCKED, "timed out", "cmd")
    table, commands = lab05.predict_evidence(verdicts, seen)
    rows = table.data.rows
    assert len(rows) == len(verdicts) and rows[0][0] == "(no policy)"
    assert ("default-deny-ingress", "production/web -> staging/test:80", "allowed", "blocked (timed out)") in rows
    assert commands.kind == "text" and "production/web -> staging/test:80:\n  cmd" in commands.data


# ------------------------------------------------------------------------------------------------ live, faked


class PredictCluster(FakeCluster):
    """A fake cluster whose pods get addresses and which has two kube-dns pods."""

    def __init__(self, dns: bool = True) -> None:
        super().__init__()
        for name, ip in DNS_IPS.items() if dns else ():
            self.objects[f"Pod kube-system/{name}"] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
                "spec": {"containers": [{"name": "coredns", "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}]},
                "status": {"podIP": ip, "phase": "Running"}}

    def ensure_pods(self, pods, timeout=60):
        super().ensure_pods(pods)
        for pod in pods:
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            self.objects[f"Pod {key}"]["status"] = {"podIP": ADDRESSES[key], "phase": "Running"}

    def policies(self) -> list[dict]:
        return [o for o in self.objects.values() if o["kind"] == "NetworkPolicy"]


def enforcing(cluster: PredictCluster):
    """A CNI that does exactly what the policies applied right now say."""
    def truth(spec):
        world = lab05._placed([copy.deepcopy(d) for d in lab05._docs("world.yaml")], ADDRESSES,
                              [o for o in cluster.objects.values() if o["metadata"]["namespace"] == "kube-system"],
                              needs_dns=True)
        engine_ = PolicyEngine(inventory_from_objects([*world, *cluster.policies()], default_namespace="production"))
        if spec.kind == "dns":
            return lab05._cell_allowed(engine_, spec.source, lab05.DNS_UDP)
        by_ip = {ip: key for key, ip in ADDRESSES.items()}
        return engine_.is_allowed(spec.source, by_ip[spec.target], spec.port, "TCP")
    return truth


def grade(directory, cluster: PredictCluster, truth):
    result = engine.grade(lab05.LAB_ID, "predict", directory, cluster=cluster, teardown="empty",
                          runner_factory=lambda c: SimulatedRunner(truth, context="kind-fake"))
    return result.exercise("predict")


def test_live_the_solution_passes_when_the_cluster_enforces_the_policies() -> None:
    cluster = PredictCluster()
    outcome = grade(EX.solution_dir, cluster, enforcing(cluster))
    assert outcome.passed and outcome.score == outcome.points, outcome.message
    applied = [c[1] for c in cluster.calls if c[0] == "apply" and c[1][0].startswith("NetworkPolicy")]
    deleted = [c[1] for c in cluster.calls if c[0] == "delete"]
    names = [f"NetworkPolicy production/{name}" for name in lab05.given_policies()]
    assert [a[0] for a in applied] == names and deleted == names  # one policy at a time, each removed again
    assert not cluster.policies()
    assert {ref for c in cluster.calls if c[0] == "ensure_pods" for ref in c[1]} == {
        "Pod production/web", "Pod production/api", "Pod production/db", "Pod staging/test"}


@pytest.mark.parametrize("mistake", [m for m in EX.mistakes if m.id != "not-a-choice"], ids=lambda m: m.id)
def test_live_each_mistake_fails_with_its_message(mistake) -> None:
    cluster = PredictCluster()
    outcome = grade(EX.mistake_dir(mistake), cluster, enforcing(cluster))
    assert not outcome.passed and mistake.message in outcome.message
    assert 0 < outcome.score < outcome.points


def test_live_a_cluster_that_enforces_nothing_stops_after_the_first_policy_and_verifies_nothing() -> None:
    cluster = PredictCluster()
    sent = []

    def everything_allowed(spec):
        sent.append(spec)
        return True
    outcome = grade(EX.solution_dir, cluster, everything_allowed)
    assert not outcome.passed and outcome.score == 0
    assert "not verifiable on this cluster" in outcome.message and "does not enforce NetworkPolicy" in outcome.message
    applied = [c[1][0] for c in cluster.calls if c[0] == "apply" and c[1][0].startswith("NetworkPolicy")]
    assert applied == ["NetworkPolicy production/default-deny-ingress"] and not cluster.policies()
    table = next(e for e in outcome.evidence if e.kind == "table" and "round by round" in e.title)
    assert any("not sent" in row[3] for row in table.data.rows)
    # bounded: a few rounds of probes for the one policy that was tried, nothing after it
    assert len(sent) <= len(lab05.predict_rounds()[lab05.NO_POLICY]) + lab05.PREDICT_ATTEMPTS * 2


def test_live_a_policy_the_cni_lifts_late_is_waited_for() -> None:
    """Seen live under load: a deleted policy still blocked db -> api for over 10 s into the next check. The
    first round retries (bounded) until the connection works, so the late CNI costs time, not the verdict."""
    cluster = PredictCluster()
    truth, late = enforcing(cluster), {"left": 8}

    def lingering(spec):
        if spec.source == lab05.DB and not cluster.policies() and late["left"] > 0:
            late["left"] -= 1
            return False
        return truth(spec)
    outcome = grade(EX.solution_dir, cluster, lingering)
    assert outcome.passed and late["left"] == 0, outcome.message


def test_live_without_kube_dns_the_dns_question_is_not_verifiable() -> None:
    cluster = PredictCluster(dns=False)
    outcome = grade(EX.solution_dir, cluster, enforcing(cluster))
    assert not outcome.passed and outcome.score == pytest.approx(0.8)
    assert "no kube-dns pod" in outcome.message and DNS_QUESTION in outcome.message


def test_live_a_probe_result_that_failed_is_never_read_as_blocked() -> None:
    cluster = PredictCluster()
    truth = enforcing(cluster)

    def failing_dns(spec):
        if spec.kind == "dns":
            return ProbeResult(spec, Outcome.FAILED, detail="the probe command could not run")
        return truth(spec)
    outcome = grade(EX.solution_dir, cluster, failing_dns)
    assert not outcome.passed and "could not run" in outcome.message and DNS_QUESTION in outcome.message


# ------------------------------------------------------------------------------------------------ notebook, hints


def test_the_notebook_asks_for_predictions_before_the_first_exercise() -> None:
    source = (ROOT / "labs" / lab05.LAB_ID / f"{lab05.LAB_ID}.md").read_text(encoding="utf-8")
    at = source.index('check("05-network-policy", "predict")')
    assert at < source.index('check("05-network-policy", "default-deny-ingress")')
    assert 'hint("05-network-policy", "predict")' in source and "predict-policies.yaml" in source


def test_mistake_messages_are_the_graders_own_words() -> None:
    whys = " ".join(p.why for p in lab05.PREDICTS)
    for mistake in EX.mistakes:
        assert mistake.message in whys or mistake.id == "not-a-choice", mistake.id
