"""Notebook check() and nbgrader scored(): same grading, their own presentation contracts."""
from __future__ import annotations

import logging
import sys
import warnings

import pytest

from fakelab import LAB_ID, pod, write
from graders import nbgrader, notebook
from graders.errors import GradingError


@pytest.fixture
def shown(monkeypatch):
    seen = []
    monkeypatch.setattr(notebook, "_display_html", lambda html, fallback: seen.append(html))
    return seen


def test_check_grades_the_learners_files_and_displays_html(course, fake_connect, shown):
    result = notebook.check(LAB_ID, "hello-pod")
    assert result is not None and not result.passed
    assert "selects no pod" in shown[0] and shown[0].startswith('<div class="k8slab">')
    assert repr(result) == "<99-fake: 0/2 points, not passed yet>"


def test_check_with_a_submission(course, fake_connect, shown):
    result = notebook.check(LAB_ID, "hello-pod", course / "solutions" / LAB_ID / "hello-pod")
    assert result.passed and result.score == 2


def test_check_without_a_cluster_displays_the_diagnosis_and_returns_none(course, no_cluster, shown):
    assert notebook.check(LAB_ID) is None
    assert "make cluster" in shown[0]


def test_check_outside_ipython_prints_text(course, fake_connect, capsys):
    notebook.check(LAB_ID, "hello-pod")
    assert "✗ hello-pod" in capsys.readouterr().out


def test_scored_returns_full_points_when_passing(course, fake_connect, monkeypatch):
    write(course / "labs" / LAB_ID / "hello-pod" / "pod.yaml", pod())
    assert nbgrader.scored(LAB_ID, "hello-pod", 5) == 5.0


def test_scored_raises_a_readable_error_and_writes_nothing_to_stderr(course, fake_connect, capfd):
    with pytest.raises(GradingError) as error:
        nbgrader.scored(LAB_ID, "hello-pod", 2)
    text = str(error.value)
    assert "hello-pod" in text and "selects no pod" in text and "hint: look at metadata.labels" in text
    assert "\x1b[" not in text
    assert capfd.readouterr().err == ""


def test_scored_silences_logging_warnings_and_stderr(course, fake_connect, capfd, monkeypatch):
    import graders.labs

    module = sys.modules["graders.labs.lab99_fake"]
    original = module.EXERCISES["hello-pod"].live

    def noisy(ctx):
        logging.getLogger("kubernetes").error("noise")
        warnings.warn("InsecureRequestWarning: unverified HTTPS request")
        print("to stderr", file=sys.stderr)
        return original(ctx)

    monkeypatch.setitem(module.EXERCISES, "hello-pod", type(module.EXERCISES["hello-pod"])(live=noisy))
    write(course / "labs" / LAB_ID / "hello-pod" / "pod.yaml", pod())
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert nbgrader.scored(LAB_ID, "hello-pod", 2) == 2.0
    assert capfd.readouterr().err == ""
    assert logging.root.manager.disable == logging.NOTSET  # restored afterwards


def test_scored_gives_partial_credit_with_feedback_on_stdout(course, fake_connect, capfd):
    write(course / "labs" / LAB_ID / "expose" / "service.yaml",
          (course / "solutions" / LAB_ID / "mistakes" / "expose" / "wrong-port" / "service.yaml").read_text())
    assert nbgrader.scored(LAB_ID, "expose", 6) == 3.0
    captured = capfd.readouterr()
    assert "nothing listens on port 80" in captured.out and captured.err == ""


def test_scored_without_cluster_raises_a_grading_error(course, no_cluster, capfd):
    with pytest.raises(GradingError, match="no Kubernetes cluster answered.*make cluster"):
        nbgrader.scored(LAB_ID, "hello-pod", 2)
    assert capfd.readouterr().err == ""


def test_scored_under_nbgrader_reads_the_notebooks_folder(course, fake_connect, tmp_path, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GradingError, match="no folder hello-pod/ next to this notebook"):
        nbgrader.scored(LAB_ID, "hello-pod", 2)
    write(tmp_path / "hello-pod" / "pod.yaml", pod())
    assert nbgrader.scored(LAB_ID, "hello-pod", 2) == 2.0


def test_scored_unknown_exercise_is_a_grading_error(course, fake_connect):
    with pytest.raises(GradingError, match="could not be graded: lab 99-fake has no exercise"):
        nbgrader.scored(LAB_ID, "nope", 2)


def test_score_of_scales_the_exercise_score_to_the_cell_points():
    from graders.model import ExerciseResult

    def outcome(score, passed):
        return ExerciseResult("l", "e", "t", 4, score, passed, "m")

    assert nbgrader.score_of(outcome(4, True), 10) == 10.0
    assert nbgrader.score_of(outcome(1, False), 10) == 2.5
    assert nbgrader.score_of(outcome(0, False), 10) == 0.0
    assert nbgrader.score_of(outcome(9, False), 10) == 10.0  # clamped
    assert nbgrader.feedback(outcome(0, False)).startswith("✗ e — t  0/4")


def test_one_autograding_test_for_notebooks_and_the_doctor():
    """Lab notebooks import autograding from graders.notebook; the doctor asks the same low-level module."""
    from graders import autograding, doctor

    assert notebook.autograding is doctor.autograding is autograding.autograding
