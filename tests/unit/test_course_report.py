"""`k8slab course report`: a generated class of 60 synthetic results (deterministic), read back as pass rates,
histograms, failure causes matched to the lab's known mistakes, and the students who failed at parse/admit."""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from fakelab import LAB_ID
from graders import nbgrader, render
from graders.course import cli as course_cli
from graders.course import report
from graders.errors import UsageError
from graders.model import ExerciseResult, StepResult

POINTS = {"hello-pod": 2.0, "expose": 3.0}
TITLES = {"hello-pod": "Run a labelled pod", "expose": "Expose it with a Service"}
# Failure messages by the known mistakes of tests/unit/fakelab.py's lab.yaml (fragments quoted there).
MISTAKE_MESSAGES = {
    "hello-pod": {"wrong-label": ("live", "Service k8slab-fake/web selects no pod: no pod is labelled app=web"),
                  "latest-image": ("parse", "Pod k8slab-fake/web (pod.yaml:9): image nginx:latest uses :latest")},
    "expose": {"wrong-port": ("live", "nothing answers on port 8080 of pod web"),
               "no-selector": ("static", "Service k8slab-fake/web selects no pod (service.yaml:12)")},
}
OTHER = {"parse": "pod.yaml:3: mapping values are not allowed here",
         "admit": "Pod k8slab-fake/web (pod.yaml:1): the API server rejected it: spec.containers: Required value",
         "apply": "pod web is not ready: readiness probe failed"}


def exercise_text(exercise: str, step: str, message: str, score: float) -> str:
    """The feedback text exactly as graders.nbgrader.feedback words it (what verify.py records)."""
    steps = tuple(StepResult(s, True) for s in ("parse", "admit", "apply", "static", "live")
                  [:("parse", "admit", "apply", "static", "live").index(step)]) + (StepResult(step, False, message),)
    outcome = ExerciseResult(lab=LAB_ID, exercise=exercise, title=TITLES[exercise], points=POINTS[exercise],
                             score=score, passed=False, message=message, hint="look again", steps=steps)
    return nbgrader.feedback(outcome)


def generate_class(n: int = 60, seed: int = 16):
    """{student: {"<lab>/<exercise>": record}} and what each attempt really was: ("pass"|"mistake"|"other"|
    "grader", detail, step)."""
    rng = random.Random(seed)
    records, truth = {}, {}
    for i in range(n):
        student = f"s{i:02d}"
        records[student], truth[student] = {}, {}
        for exercise in POINTS:
            roll = rng.random()
            points = POINTS[exercise]
            if roll < 0.45:
                records[student][f"{LAB_ID}/{exercise}"] = {"score": points, "points": points, "passed": True,
                                                             "message": "", "html": "<p>ok</p>", "error": ""}
                truth[student][exercise] = ("pass", "", "")
                continue
            if roll < 0.75:
                mistake = rng.choice(sorted(MISTAKE_MESSAGES[exercise]))
                step, message = MISTAKE_MESSAGES[exercise][mistake]
                truth[student][exercise] = ("mistake", mistake, step)
            elif roll < 0.95:
                step = rng.choice(sorted(OTHER))
                message = OTHER[step]
                truth[student][exercise] = ("other", step, step)
            else:
                records[student][f"{LAB_ID}/{exercise}"] = {
                    "score": 0.0, "points": points, "passed": False, "html": "",
                    "message": "the grader could not run", "error": "ConnectionResetError: peer reset"}
                truth[student][exercise] = ("grader", "", "grader")
                continue
            score = round(rng.choice([0.0, 0.0, 0.5, 0.25]) * points, 2) if step == "live" else 0.0
            records[student][f"{LAB_ID}/{exercise}"] = {
                "score": score, "points": points, "passed": False, "error": "",
                "message": exercise_text(exercise, step, message, score), "html": ""}
    return records, truth


@pytest.fixture
def klass(course: Path, tmp_path: Path):
    """A course directory whose k8slab/verified/ holds the generated class (as harness.record_verified writes)."""
    course_dir = tmp_path / "course-dir"
    folder = course_dir / "k8slab" / "verified" / LAB_ID
    folder.mkdir(parents=True)
    records, truth = generate_class()
    for student, recs in records.items():
        (folder / f"{student}.json").write_text(json.dumps(recs), encoding="utf-8")
    return course_dir, records, truth


def test_failed_step_is_read_from_the_recorded_feedback():
    text = exercise_text("hello-pod", "admit", "the API server rejected it", 0.0)
    assert "failed at admit:" in text
    assert report.failed_step({"passed": False, "message": text}) == "admit"
    assert report.failed_step({"passed": False, "message": "", "html": "<b>Failed at apply:</b> not ready"}) == "apply"
    assert report.failed_step({"passed": False, "message": "x", "error": "boom"}) == "grader"
    assert report.failed_step({"passed": False, "message": "no Service named hello"}) == "unknown"
    assert report.failed_step({"passed": True, "message": ""}) == ""
    # the HTML card check() shows has the same line
    outcome = ExerciseResult(lab=LAB_ID, exercise="hello-pod", title="t", points=2, score=0, passed=False,
                             message="m", hint="", steps=(StepResult("static", False, "m"),))
    assert report.failed_step({"passed": False, "html": render.exercise_html(outcome)}) == "static"


def test_sixty_students_pass_rates_causes_and_setup_failures(klass):
    course_dir, records, truth = klass
    [lab] = report.build_reports(course_dir)
    assert lab.lab == LAB_ID and len(lab.students) == 60 and lab.points == 5
    for ex in lab.exercises:
        outcomes = [truth[s][ex.id] for s in sorted(truth)]
        assert ex.graded == 60
        assert ex.passed == sum(o[0] == "pass" for o in outcomes)
        assert ex.pass_rate == pytest.approx(ex.passed / 60)
        expected = Counter()
        for kind, detail, _ in outcomes:
            if kind == "mistake":
                expected[("mistake", detail)] += 1
            elif kind == "other":
                expected[("step", detail)] += 1
            elif kind == "grader":
                expected[("grader", "grader")] += 1
        got = {(c.kind, c.id): c.count for c in ex.causes}
        top = sorted(expected.values(), reverse=True)[:5]
        assert sorted(got.values(), reverse=True) == top, "the five most frequent causes, counted right"
        assert all(expected[key] == count for key, count in got.items())
        assert [c.count for c in ex.causes] == sorted((c.count for c in ex.causes), reverse=True)
        # a mistake is named by its id in lab.yaml; its students are exactly those who made it
        for cause in ex.causes:
            if cause.kind == "mistake":
                assert set(cause.students) == {s for s in truth if truth[s][ex.id][:2] == ("mistake", cause.id)}
            if cause.kind == "step":
                assert cause.label.startswith(f"failed at {cause.id}") and "most often" in cause.label
    setup = {(f.student, f.exercise, f.step) for f in lab.setup_failures}
    assert setup == {(s, ex, o[2]) for s in truth for ex, o in truth[s].items() if o[2] in ("parse", "admit")}
    assert {(f.student, f.exercise) for f in lab.grader_failures} == \
        {(s, ex) for s in truth for ex, o in truth[s].items() if o[0] == "grader"}
    assert all(f.message and "failed at" not in f.message for f in lab.setup_failures)
    for f in lab.setup_failures:  # a known mistake caught at parse is the lab's point, and says so
        kind, detail, _ = truth[f.student][f.exercise]
        assert f.mistake == (detail if kind == "mistake" else "")
    assert [f.student for f in lab.setup_failures] == sorted(f.student for f in lab.setup_failures)


def test_histograms_cover_every_score(klass):
    course_dir, records, _ = klass
    [lab] = report.build_reports(course_dir)
    for ex in lab.exercises:
        edges, counts = report.histogram(ex.scores, ex.points)
        assert sum(counts) == 60 and edges[0] == 0 and edges[-1] == ex.points and len(edges) == len(counts) + 1
        assert counts[-1] == sum(1 for s in ex.scores if s >= ex.points * 0.9) >= ex.passed
        assert counts[0] == sum(1 for s in ex.scores if s < ex.points / 10)
    assert report.histogram([0, 1, 2, 2], 2, bins=2) == ([0.0, 1.0, 2.0], [1, 3])
    assert sum(report.histogram(lab.totals, lab.points)[1]) == 60


def test_histogram_svg_is_inline_and_deterministic():
    svg = report.histogram_svg([0, 0.5, 2, 2, 2], 2, "hello-pod")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert svg == report.histogram_svg([0, 0.5, 2, 2, 2], 2, "hello-pod")  # no dates, fixed ids
    assert "hello-pod" in svg  # text stays text (svg.fonttype none): searchable, small


def test_report_command_writes_a_self_contained_page_and_json(klass, capsys):
    course_dir, _, truth = klass
    out = course_dir / "reports" / "class.html"
    assert course_cli.main(["report", str(course_dir), "--lab", LAB_ID, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{LAB_ID}: 60 student(s)" in printed and "hello-pod: passed" in printed and "class.json" in printed
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3  # total + one per exercise
    assert "<script" not in page.lower()
    external = [u for u in re.findall(r'(?:src|href)="([^"#][^"]*)"', page)]
    assert external == [], "no external resources: the page must open from a mail attachment"
    assert "wrong-label" in page and "Failed at parse or admit" in page
    some_setup_student = next(s for s in sorted(truth) if any(o[2] == "parse" for o in truth[s].values()))
    assert some_setup_student in page
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["schema"] == report.SCHEMA
    [lab] = data["labs"]
    assert [e["id"] for e in lab["exercises"]] == ["hello-pod", "expose"]
    hello = lab["exercises"][0]
    assert hello["graded"] == 60 and sum(hello["histogram"]["counts"]) == 60
    assert {c["kind"] for c in hello["causes"]} <= {"mistake", "step", "grader"}
    assert len(lab["totals"]) == 60


def test_default_output_is_in_the_course_directory(klass):
    course_dir, _, _ = klass
    reports, html_path, json_path = report.write_report(course_dir)
    assert html_path == course_dir / "class-report.html" and json_path == course_dir / "class-report.json"
    assert html_path.is_file() and json_path.is_file() and len(reports) == 1


def test_the_gradebook_score_wins_and_answers_are_summarised(course):
    from graders import spec

    records = {"ann": {"hello-pod": {"score": 0.0, "points": 2, "passed": False, "error": "",
                                     "message": exercise_text("hello-pod", "live", "x selects no pod", 0.0)}}}
    grades = {"ann": {"hello-pod-test": report.CellGrade(2.0, 2.0, False),  # an instructor's override
                      "hello-why": report.CellGrade(None, 1.0, True)},
              "ben": {"hello-pod-test": report.CellGrade(1.0, 2.0, False),
                      "hello-why": report.CellGrade(0.5, 1.0, True)}}
    lab = report.lab_report(LAB_ID, records, grades, spec.load_lab(LAB_ID))
    hello = lab.exercises[0]
    assert hello.scores == (2.0, 1.0) and hello.passed == 1 and hello.unverified == 1
    assert [(c.kind, c.id) for c in hello.causes] == [("step", "unknown")]  # ben: no record of why
    assert lab.answers[0].id == "hello-why" and lab.answers[0].unmarked == 1 and lab.answers[0].marked == (0.5,)
    assert dict(zip(lab.students, lab.totals)) == {"ann": 2.0, "ben": 1.5}
    assert any("no verified record for 1 student(s) (ben)" in n for n in lab.notes)


def test_without_the_lab_spec_causes_are_grouped_by_step(tmp_path):
    records = {"ann": {"x": {"score": 0, "points": 1, "passed": False, "message": "  failed at parse: bad yaml"}},
               "bo": {"x": {"score": 1, "points": 1, "passed": True, "message": ""}}}
    lab = report.lab_report("42-gone", records)
    [ex] = lab.exercises
    assert (ex.points, ex.passed, ex.graded) == (1, 1, 2)
    assert [(c.kind, c.id, c.students) for c in ex.causes] == [("step", "parse", ("ann",))]
    assert lab.notes and "lab.yaml not found" in lab.notes[0]


def test_nothing_to_report_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="nothing graded"):
        report.build_reports(tmp_path / "empty")
    with pytest.raises(UsageError, match="no results of 00-orientation"):
        report.build_reports(tmp_path / "empty", ["00-orientation"])
    assert course_cli.main(["report", str(tmp_path / "missing")]) == 2
