"""The instructor path in a real browser: nbgrader's formgrader (a Jupyter server extension, on loopback with a
token) lists the autograded submissions of a course, and one student's feedback HTML shows the mistake's message
and the lab's diagram.

The course is the offline pipeline's demo course (tests/pipeline/fixture, lab 99-demo), autograded from recorded
results (K8SLAB_RESULTS_FILE) exactly as tests/pipeline/test_course_offline.py does: no cluster traffic, seconds
instead of minutes. Diagrams are rendered to PNG when mermaid-cli is installed (`make -f mk/course.mk
course-tools`); otherwise the feedback shows the text outline, and this test says which one it saw.
"""
from __future__ import annotations

import json
import sys

import pytest

from browser_helpers import REPO, jupyter, server_env

sys.path.insert(0, str(REPO / "tests" / "pipeline"))
from pipeline_helpers import (DEMO, FIXTURE_ROOT, build_course, hand_in, nbgrader, records_file,  # noqa: E402
                              solution_files)

MISTAKE = "nothing accepts connections on port 8080"  # 99-demo hello's known mistake wrong-port (lab.yaml)
WAIT = 60


def _record(exercise: str, title: str, points: float, score: float, message: str, step: str = "") -> dict:
    """A verified-run record as graders.course.verify writes it, its card drawn by graders.render (the same HTML
    check() shows in the notebook)."""
    from graders import render
    from graders.model import ExerciseResult, LabResult, StepResult

    steps = (StepResult(step, False, message),) if step else ()
    ex = ExerciseResult(DEMO, exercise, title, points, score, score == points, message, steps=steps)
    return {"score": score, "html": render.to_html(LabResult(DEMO, (ex,))), "message": message}


RECORDS = {
    "alice": {f"{DEMO}/hello": _record("hello", "Run a labelled pod", 2, 2.0, "passed"),
              f"{DEMO}/second": _record("second", "A second exercise", 3, 3.0, "passed")},
    "carol": {f"{DEMO}/hello": _record("hello", "Run a labelled pod", 2, 0.0, MISTAKE, "live"),
              f"{DEMO}/second": _record("second", "A second exercise", 3, 0.0, "no Service named hello", "admit")},
}


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    from graders import spec

    work = tmp_path_factory.mktemp("instructor")
    course = work / "course"
    report = build_course(course, FIXTURE_ROOT, diagrams=True)
    nbgrader(course, "generate_assignment", DEMO)
    from graders.course import harness

    # the safe autograder's preprocessors: check() cells show the verified record instead of grading again
    preprocessors = "--Autograde.autograde_preprocessors=" + json.dumps(harness._AUTOGRADE_PREPROCESSORS)
    demo = spec.load_lab(DEMO, FIXTURE_ROOT)
    for student, records in RECORDS.items():
        hand_in(course, DEMO, student, solution_files(demo))
        results = records_file(work / f"{student}.json", records)
        nbgrader(course, "autograde", DEMO, "--student", student, preprocessors,
                 extra_env={"K8SLAB_RESULTS_FILE": str(results)})
    nbgrader(course, "generate_feedback", DEMO)
    pngs = sorted((course / "k8slab" / "mermaid").glob("*.png"))
    return course, report, pngs


@pytest.fixture(scope="module")
def formgrader(graded_course, artifacts, tmp_path_factory):
    course, _, _ = graded_course
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = server_env({"JUPYTER_RUNTIME_DIR": str(runtime)})
    with jupyter("server", course, [f"--ServerApp.root_dir={course}"], env,
                 artifacts / "formgrader.log") as server:
        yield server


def _wait(driver, what: str, script: str, timeout: float = WAIT):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"formgrader: {what} not seen within {timeout} s; page text:\n"
                        f"{driver.execute_script('return document.body.innerText')[:2000]}", pytrace=False)
        time.sleep(0.5)


def test_formgrader_lists_the_autograded_submissions(browser, formgrader, artifacts):
    browser.get(formgrader.url("formgrader/manage_assignments"))
    _wait(browser, f"assignment {DEMO} in Manage Assignments",
          f"return document.body.innerText.includes('{DEMO}') && document.querySelectorAll('tbody tr').length > 0")
    browser.save_screenshot(str(artifacts / "formgrader-assignments.png"))
    browser.get(formgrader.url(f"formgrader/manage_submissions/{DEMO}"))
    rows = _wait(browser, "a row per autograded submission", """
        const rows = Array.from(document.querySelectorAll('tbody tr')).map(r => r.innerText);
        return rows.filter(r => /alice|carol/.test(r)).length >= 2 ? rows : null;""")
    browser.save_screenshot(str(artifacts / "formgrader-submissions.png"))
    text = "\n".join(rows)
    assert "alice" in text and "carol" in text, rows
    by_student = {s: next(r for r in rows if s in r) for s in RECORDS}
    # autograded: alice has the 5 autograded points, carol none (the written answer, 1 point, is not marked yet)
    assert "5" in by_student["alice"] and "0" in by_student["carol"], by_student


def test_feedback_shows_the_mistake_and_the_diagram(browser, formgrader, graded_course, artifacts):
    course, report, pngs = graded_course
    page = course / "feedback" / "carol" / DEMO / f"{DEMO}.html"
    assert page.is_file(), "nbgrader generate_feedback wrote no feedback for carol"
    browser.get(formgrader.url(f"files/feedback/carol/{DEMO}/{DEMO}.html"))
    _wait(browser, "the feedback page", "return document.body && document.body.innerText.length > 100")
    _wait(browser, f"the mistake's message {MISTAKE!r}",
          f"return document.body.innerText.includes({MISTAKE!r})")
    found = browser.execute_script("""
        const imgs = Array.from(document.querySelectorAll('img[alt="diagram"]'))
            .map(i => ({loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width}));
        const outlines = Array.from(document.querySelectorAll('pre.k8slab-diagram'))
            .map(p => p.getBoundingClientRect().height > 0);
        const cards = Array.from(document.querySelectorAll('.k8slab .ex .head')).map(h => h.innerText.trim());
        const tb = /Traceback \\(most recent call last\\)/.test(document.body.innerText);
        return {imgs, outlines, cards, traceback: tb, mermaid: document.querySelectorAll('.mermaid').length};""")
    first = browser.find_elements("css selector", 'img[alt="diagram"], pre.k8slab-diagram')
    if first:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", first[0])
    browser.save_screenshot(str(artifacts / "feedback-carol.png"))
    assert not found["traceback"], "the feedback shows a traceback"
    assert any(card.startswith("✗ hello") for card in found["cards"]), found["cards"]
    assert "unknown lab" not in browser.execute_script("return document.body.innerText")
    assert found["mermaid"] == 0, "an unrendered mermaid block in the feedback"
    if pngs:
        assert found["imgs"] and all(i["loaded"] and i["width"] > 50 for i in found["imgs"]), found
        print(f"feedback: {len(found['imgs'])} diagram image(s) shown (rendered by {report.diagram_renderer})"
              if hasattr(report, "diagram_renderer") else f"feedback: {len(found['imgs'])} diagram image(s) shown")
    else:
        assert found["outlines"] and all(found["outlines"]), found
        print("feedback: diagram shown as its text outline (no mermaid-cli: `make -f mk/course.mk course-tools` "
              "renders PNG images)")
