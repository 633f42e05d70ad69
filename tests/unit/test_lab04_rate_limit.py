"""Lab 04 rate-limit without a cluster: the causes read from the files (every mistake named, no cause for the
solution and the alternatives), the burst's output parsed, and the judgement of made-up bursts (pure)."""
from __future__ import annotations

import pytest

from graders import manifests, spec
from graders.labs import lab04_ingress as lab

LAB = spec.load_lab("04-ingress")
EX = LAB.exercise("rate-limit")
NS = EX.default_namespace
APPS = {"api-1": "api", "api-2": "api", "front-1": "frontend"}


def _objects(directory):
    found = manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces)
    return found.manifests


def test_the_exercise_ships_five_mistakes_and_two_alternatives():
    assert len(EX.mistakes) >= 5 and len(EX.alternative_dirs) >= 2


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_right_answers_have_no_cause(directory):
    assert lab.rate_limit_causes(_objects(directory), NS) == []


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_mistake_is_named_by_a_cause_with_its_file_and_line(mistake):
    causes = lab.rate_limit_causes(_objects(EX.mistake_dir(mistake)), NS)
    text = " ".join(c.message for c in causes)
    assert mistake.message in text, text
    assert ".yaml:" in text


def test_the_starter_says_the_seeds_annotation_limits_nothing():
    text = " ".join(c.message for c in lab.rate_limit_causes(_objects(EX.starter_dir), NS))
    assert "nginx.ingress.kubernetes.io/rate-limit is an annotation for ingress-nginx" in text
    assert "no Middleware with a rateLimit" in text


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("500ms", 0.5), ("1m", 60.0), ("2", 2.0), ("x", None)])
def test_durations(text, seconds):
    assert lab.duration_s(text) == seconds


def _phase(name, start_s, seconds, passed, limited, app="api-1"):
    answers = (("200", app),) * passed + (("429", "Too Many Requests"),) * limited
    return lab.Phase(name, int(start_s * 1e9), int((start_s + seconds) * 1e9), answers)


def _burst(passed=12, limited=18, again=10, again_limited=5, front_limited=0, pause=1.0):
    return {"burst": _phase("burst", 0.0, 0.3, passed, limited),
            "refill": _phase("refill", 0.3 + pause, 0.1, again, again_limited),
            "frontend": _phase("frontend", 1.5 + pause, 0.2, 20 - front_limited, front_limited, app="front-1")}


def test_a_right_limit_passes_with_what_the_burst_showed():
    found, shown = lab.judge_rate_limit(_burst(), APPS)
    assert found == [] and "12 of 30 back-to-back requests to /api passed" in shown and "20 of 20" in shown


@pytest.mark.parametrize(("phases", "words"), [
    (_burst(passed=30, limited=0), "nothing limits /api"),
    (_burst(passed=25, limited=5), "lets about 15 through at most"),
    (_burst(passed=3, limited=27), "a burst of up to 10 requests at once must pass"),
    (_burst(again=0, again_limited=15), "a bucket refilled at 10 per second lets 8 to 13 through"),
    (_burst(front_limited=6), "the frontend must not be limited"),
])
def test_wrong_limits_are_told_by_what_the_client_saw(phases, words):
    found, _ = lab.judge_rate_limit(phases, APPS)
    assert any(words in f for f in found), found


def test_an_answer_from_the_wrong_backend_is_a_routing_symptom():
    phases = _burst()
    phases["burst"] = lab.Phase("burst", 0, int(0.3e9), (("200", "front-1"),) * 12 + (("429", "x"),) * 18)
    found, _ = lab.judge_rate_limit(phases, APPS)
    assert any("during the burst phase" in f and "frontend" in f for f in found), found


def test_the_burst_output_is_parsed_into_phases():
    output = ("== burst 1000000000\n200 api-1\n429 Too Many Requests\n== end 1300000000\n"
              "== refill 2300000000\n200 api-2\n== end 2400000000\n== frontend 2400000000\n200 front-1\n"
              "== end 2500000000\n")
    phases = lab.parse_phases(output)
    assert list(phases) == ["burst", "refill", "frontend"]
    assert phases["burst"].answers == (("200", "api-1"), ("429", "Too Many Requests"))
    assert phases["burst"].seconds == pytest.approx(0.3) and phases["refill"].passed_by(APPS, "api") == 1
    assert lab.judge_rate_limit({}, APPS)[0] == ["the grader's burst did not finish (no burst, refill, frontend "
                                                 "phase in its output)"]


def test_the_burst_is_one_bounded_script():
    script = lab.burst_spec("outside/kind", "172.18.0.200").script
    assert script.count("-m 2") == 1 and "sleep 1;" in script and "Host: app.example.com" in script
