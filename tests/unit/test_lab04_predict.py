"""Lab 04's predict exercise without a cluster.

* the pure judgement: the reference solution and every alternative pass against the facts a sound Traefik shows;
  every mistake fails with its own fragment; the starter earns nothing; a question the grader could not observe is
  "not verifiable on this cluster" and earns nothing, even when the answer is the expected one;
* the facts follow the cluster, never the solution: a controller that behaves otherwise makes another answer right;
* the grader's fixtures are pinned by PREDICT_DIGEST, its pods answer every path, the classifiers of answers;
* ``predict_live`` end to end with a simulated controller: the solution passes; a controller that never serves
  the grader's objects makes the questions not verifiable.
"""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace as NS

import pytest

from graders import questions, spec
from graders.errors import CheckFailed, K8sLabError, SubmissionError
from graders.exercise import Ctx
from graders.labs import lab04_ingress as lab
from graders.model import Outcome
from graders.probe import ProbeResult

EX = spec.load_lab("04-ingress").exercise("predict")
SOUND = lab.PredictRun(apiary=lab.API_CHOICE, unknown_status=404, seed=lab.NOT_SERVED, canary_count=21)


def answers_of(directory):
    return questions.parse_answers([directory], lab.PREDICTIONS, "predictions.yaml")


def judge(directory, run: lab.PredictRun = SOUND):
    return questions.judge(answers_of(directory), lab.prediction_facts(run))


# ---------------------------------------------------------------------- the judgement (pure)
def test_the_spec_is_an_answers_exercise_with_its_own_fragment_per_mistake():
    assert EX.submission == "answers" and EX.files == ("predictions.yaml",)
    assert lab.EXERCISES["predict"].questions == lab.PREDICTIONS
    assert lab.EXERCISES["predict"].live is lab.predict_live
    fragments = [m.message for m in EX.mistakes]
    assert len(EX.mistakes) >= 5 and len(set(fragments)) == len(fragments)
    assert len(EX.alternative_dirs) >= 2
    assert 2 <= len(lab.PREDICTIONS) <= 5


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_right_predictions_pass(directory):
    result = judge(directory)
    assert result.passed, result.message
    assert "all 4 answers match" in result.message


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_prediction_is_named(mistake):
    try:
        judge(EX.mistake_dir(mistake))
    except CheckFailed as failed:
        assert mistake.message in failed.message, failed.message
        assert failed.credit == pytest.approx(0.75), "one wrong answer of four"
        assert "predictions.yaml:" in failed.message, "the wrong answer is cited with its line"
        return
    except SubmissionError as rejected:  # status-in-words: the parse step names it
        assert mistake.message in rejected.message, rejected.message
        return
    pytest.fail(f"mistake {mistake.id} passes")


def test_the_starter_earns_nothing_and_lists_every_question_with_its_choices():
    with pytest.raises(CheckFailed) as caught:
        judge(EX.starter_dir)
    assert caught.value.credit == 0.0
    assert caught.value.message.count("not answered yet") == 4
    text = (EX.starter_dir / "predictions.yaml").read_text()
    for question in lab.PREDICTIONS:
        assert f"\n{question.id}:\n" in text
        for choice in question.choices:
            assert choice in text


def test_what_is_not_observable_earns_nothing_and_says_why():
    run = lab.PredictRun(apiary=None, unknown_status=404, seed=None, canary_count=None,
                         why_not={"apiary_backend": "the grader's Ingress k8slab-predict was not served within 20 s",
                                  "seed_ingress": "the grader's Ingress k8slab-predict was not served within 20 s"})
    with pytest.raises(CheckFailed) as caught:
        judge(EX.solution_dir, run)
    message = caught.value.message
    assert message.count("not verifiable on this cluster") == 3
    assert "was not served within 20 s" in message
    assert "could not observe it" in message, "a missing reason still says why"
    assert caught.value.credit == pytest.approx(0.25)


def test_the_facts_come_from_the_cluster_not_from_the_solution():
    """A controller that matches Prefix element-wise, serves every class and splits evenly makes those right."""
    other = lab.PredictRun(apiary=lab.WEB_CHOICE, unknown_status=404, seed=lab.SERVED, canary_count=100)
    facts = lab.prediction_facts(other)
    assert facts["apiary_backend"].accepted == (lab.WEB_CHOICE,)
    assert facts["seed_ingress"].accepted == (lab.SERVED,)
    assert facts["canary_share"].accepted == ("about-half",)
    with pytest.raises(CheckFailed) as caught:
        judge(EX.solution_dir, other)
    assert "not what this controller answered" in caught.value.message
    assert "not the share this controller sent" in caught.value.message


def test_wrong_answers_never_show_the_observed_value():
    for mistake in EX.mistakes:
        try:
            judge(EX.mistake_dir(mistake))
        except CheckFailed as failed:
            wrong = failed.message.split("—", 1)[1]
            assert "about-10" not in wrong and "not-found" not in wrong.replace("seed_ingress", "")
        except SubmissionError:
            pass


@pytest.mark.parametrize("count, choice", [(0, "none"), (5, "none"), (6, "about-10"), (20, "about-10"),
                                           (50, "about-10"), (51, "about-half"), (100, "about-half"),
                                           (151, "nearly-all"), (200, "nearly-all")])
def test_share_choice_covers_every_count(count, choice):
    assert lab.share_choice(count) == choice


def test_a_true_ten_percent_canary_lands_in_about_10_almost_always():
    from math import comb
    n, p = lab.PREDICT_CANARY_REQUESTS, 0.1
    inside = dict(lab.SHARES)["about-10"]
    miss = sum(comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1) if k not in inside)
    assert miss < 1 / 20000


# ---------------------------------------------------------------------- the grader's objects and classifiers
def test_the_fixtures_are_pinned_and_a_changed_copy_is_refused():
    docs = lab.fixture_docs()
    kinds = Counter(d["kind"] for d in docs)
    assert kinds == {"Service": 3, "Ingress": 2, "Gateway": 1, "HTTPRoute": 1}
    assert all("namespace" not in d["metadata"] for d in docs), "the grader puts them in its namespace"
    text = (lab.paths.lab_dir(lab.LAB_ID) / lab.PREDICT_FIXTURES).read_text().replace("weight: 10", "weight: 50")
    with pytest.raises(K8sLabError, match="was changed"):
        lab.fixture_docs(text)


def test_the_grader_pods_answer_every_path_with_their_name():
    pod = lab.predict_pod("k8slab-ingress", "k8slab-pr-api", "api", "agnhost:test")
    args = pod["spec"]["containers"][0]["args"]
    assert "--http-override=/hostname" in args and pod["metadata"]["labels"][lab.PREDICT_LABEL] == "api"


def result(output: str, outcome: Outcome = Outcome.ALLOWED, detail: str = "") -> ProbeResult:
    spec_ = lab.status_spec("docker/outside", "172.18.0.240", lab.HOST, "/apiary")
    return ProbeResult(spec_, outcome, detail=detail, output=output)


def test_split_status_and_who():
    assert lab.split_status(result("k8slab-pr-api 200")) == ("k8slab-pr-api", 200)
    assert lab.split_status(result("404 page not found 404")) == ("404 page not found", 404)
    assert lab.split_status(result(" 000")) [1] is None
    assert lab.split_status(result("", Outcome.FAILED, "connection refused")) == ("connection refused", None)
    assert lab.who("k8slab-pr-api", 200) == lab.API_CHOICE
    assert lab.who("k8slab-pr-web", 200) == lab.WEB_CHOICE
    assert lab.who("404 page not found", 404) == lab.NOT_FOUND_CHOICE
    assert lab.who("refused", None) == lab.NO_ANSWER
    assert lab.who("Bad Gateway", 502).startswith("HTTP 502")


# ---------------------------------------------------------------------- predict_live, simulated
class Controller:
    """Answers the grader's scripts like Traefik with the fixtures applied (``serves``: False = never picks them up)."""

    def __init__(self, serves: bool = True, v2: int = 20):
        self.serves, self.v2 = serves, v2

    def run(self, specs):
        out = []
        for s in specs:
            if s.label.startswith(f"{lab.PREDICT_CANARY_REQUESTS} x"):
                text = (f"  {lab.PREDICT_CANARY_REQUESTS - self.v2} k8slab-pr-api\n  {self.v2} k8slab-pr-v2\n"
                        if self.serves else f"  {lab.PREDICT_CANARY_REQUESTS} 404 page not found\n")
            elif self.serves and s.host_header == lab.HOST:
                text = "k8slab-pr-api 200"          # /api and /apiary: Traefik's string prefix
            else:
                text = "404 page not found 404"
            out.append(ProbeResult(s, Outcome.ALLOWED, output=text))
        return out


class Cluster:
    context = "kind-k8slab"

    def __init__(self):
        self.applied = []

    def ensure_pods(self, pods):
        self.applied += pods

    def apply(self, objs):
        self.applied += objs

    def wait_ready(self, namespaces, timeout=60):
        pass


def live(monkeypatch, directory, controller):
    monkeypatch.setattr(lab.probe, "agnhost_image", lambda cluster: "agnhost:test")
    monkeypatch.setattr(lab, "controller_address", lambda ctx, objects=None: "172.18.0.240")
    monkeypatch.setattr(lab, "outside_vantage", lambda ctx: NS(runner=controller, source="docker/outside",
                                                               where="outside the cluster", note=""))
    monkeypatch.setattr(lab, "PREDICT_DEADLINE", 0.1)
    monkeypatch.setattr(lab.time, "sleep", lambda s: None)
    cluster = Cluster()
    ctx = Ctx(spec=EX, objects=(), cluster=cluster, answers=answers_of(directory))
    return lab.predict_live(ctx), cluster


def test_predict_live_passes_the_solution(monkeypatch):
    outcome, cluster = live(monkeypatch, EX.solution_dir, Controller())
    assert outcome.passed, outcome.message
    kinds = Counter(o["kind"] for o in cluster.applied)
    assert kinds["Pod"] == 3 and kinds["Ingress"] == 2 and kinds["HTTPRoute"] == 1
    assert all(o["metadata"]["namespace"] == EX.default_namespace for o in cluster.applied)


def test_predict_live_names_a_wrong_prediction(monkeypatch):
    mistake = next(m for m in EX.mistakes if m.id == "canary-even-split")
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.mistake_dir(mistake), Controller())
    assert mistake.message in caught.value.message


def test_a_controller_that_serves_nothing_makes_the_questions_not_verifiable(monkeypatch):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.solution_dir, Controller(serves=False))
    message = caught.value.message
    assert message.count("not verifiable on this cluster") == 3, message   # the unknown host's 404 is still seen
    assert "was not served within" in message


def test_a_few_lost_requests_do_not_void_the_canary_count(monkeypatch):
    class Lossy(Controller):
        def run(self, specs):
            if specs[0].label.startswith(f"{lab.PREDICT_CANARY_REQUESTS} x"):
                return [ProbeResult(specs[0], Outcome.ALLOWED,
                                    output=f"  2 \n  178 k8slab-pr-api\n  {self.v2} k8slab-pr-v2\n")]
            return super().run(specs)
    outcome, _ = live(monkeypatch, EX.solution_dir, Lossy())
    assert outcome.passed, outcome.message


def test_answers_from_elsewhere_make_the_canary_not_verifiable(monkeypatch):
    class Strangers(Controller):
        def run(self, specs):
            if specs[0].label.startswith(f"{lab.PREDICT_CANARY_REQUESTS} x"):
                return [ProbeResult(specs[0], Outcome.ALLOWED,
                                    output="  150 k8slab-pr-api\n  20 k8slab-pr-v2\n  30 404 page not found\n")]
            return super().run(specs)
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.solution_dir, Strangers())
    assert "canary_share" in caught.value.message and "not verifiable" in caught.value.message
