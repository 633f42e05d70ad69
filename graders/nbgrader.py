"""``scored()`` for nbgrader autograder cells: a float in [0, points], or a student-readable GradingError.

nbgrader gives 0 points to a cell that wrote anything to stderr, so grading runs with stderr, logging and
warnings captured (the kubernetes client warns about TLS, urllib3 about retries). A partial score is returned
(nbgrader reads the cell's value as partial credit); a zero score raises, so the feedback shows why.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from graders.autograding import NBGRADER_ENV
from graders.errors import ClusterUnreachable, GradingError, K8sLabError
from graders.model import ExerciseResult


def submission_dir(lab: str, exercise: str) -> Path | None:
    """Under nbgrader the files sit next to the autograded notebook (``<cwd>/<exercise>/``); otherwise
    None, i.e. the learner's labs/<lab>/<exercise>/."""
    if os.environ.get(NBGRADER_ENV):
        return Path.cwd() / exercise
    return None


def scored(lab: str, exercise: str, points: float) -> float:
    from graders import engine, render

    with _silenced():
        submission = submission_dir(lab, exercise)
        if submission is not None and not submission.is_dir():
            raise GradingError(f"{lab} / {exercise}: no folder {exercise}/ next to this notebook, so there is "
                               f"nothing to grade. Put your manifests in {exercise}/ and run again.")
        try:
            result = engine.grade(lab, exercise, submission)
        except ClusterUnreachable as error:
            raise GradingError(f"{lab} / {exercise} could not be graded: no Kubernetes cluster answered. "
                               f"{error.message}. Fix: {error.hint}") from None
        except K8sLabError as error:
            raise GradingError(f"{lab} / {exercise} could not be graded: {error}") from None
        outcome = result.exercise(exercise)
        _display(render.to_html(result))
    if outcome.ungraded:  # this cluster cannot grade it (no mesh): say so, as when no cluster answers
        raise GradingError(f"{lab} / {exercise} could not be graded: {outcome.message}. {outcome.hint}".strip())
    if outcome.passed:
        return float(points)
    score = score_of(outcome, points)
    if score <= 0:
        raise GradingError(feedback(outcome))
    print(feedback(outcome))  # stdout: shown in the feedback; stderr would zero the cell
    return score


def score_of(outcome: ExerciseResult, points: float) -> float:
    """The nbgrader score of one exercise: ``points`` when passed, else its share of ``points`` (0.01 steps)."""
    if outcome.passed:
        return float(points)
    ratio = 0.0 if not outcome.points else max(0.0, min(1.0, outcome.score / outcome.points))
    return round(ratio * float(points), 2)


def record(lab_result, exercise: str, points: float) -> dict:
    """One exercise's record for a gradebook (the safe autograder's verify run, a grading Job's result line):
    score and message exactly as ``scored`` words them; HTML exactly as check() shows it."""
    from graders import render

    outcome = lab_result.exercise(exercise)
    try:
        html = render.to_html(lab_result)
    except Exception:  # noqa: BLE001 — a rendering bug must not lose the score
        html = ""
    return {"score": score_of(outcome, points), "points": float(points), "passed": bool(outcome.passed),
            "message": feedback(outcome), "html": html, "error": ""}


def feedback(outcome: ExerciseResult) -> str:
    """What the student reads: the exercise report as plain text (what, why, hint, matrices)."""
    from graders import render

    return render.exercise_text(outcome, color=False, wrap=False).rstrip()


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Capture everything that could reach stderr while grading."""
    previous_disable = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)


def _display(html: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(HTML(html))
