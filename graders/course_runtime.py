"""Package course_runtime is what the autograder test cells call, and the trusted grading run behind them.

Two halves, so that nothing running inside a student's kernel can change a recorded score:

* `verify` (``python -m graders.course_runtime verify``) runs in a process the harness starts, on a pristine
  copy of the submitted files, before the student's notebook executes. It grades every exercise with
  `graders.engine.grade` and writes one JSON record per exercise (score, message, the HTML the notebook shows).
  The harness keeps that file and writes its scores into the gradebook itself (graders.course_safety).
* `scored(lab, exercise, points)` is what the generated test cells call. Under the harness
  (``K8SLAB_RESULTS_FILE`` set) it only displays the verified record — same HTML as `check()` — and returns
  its score or raises; it never touches the cluster. Without the harness (a plain `nbgrader autograde`) it is
  `graders.nbgrader.scored`. A monkey-patched `scored` changes what the notebook displays, never the gradebook.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from graders.errors import GradingError

RESULTS_ENV = "K8SLAB_RESULTS_FILE"
PREPARED_ENV = "K8SLAB_NAMESPACES_PREPARED"


class FeedbackError(GradingError):
    """A GradingError that IPython shows as its message only (no traceback of grader internals)."""

    def _render_traceback_(self) -> list[str]:
        return [f"GradingError: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


def _records() -> dict:
    path = os.environ.get(RESULTS_ENV, "")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _show(record: dict) -> None:
    html = record.get("html")
    if not html:
        return
    try:
        from IPython.display import HTML, display
    except ImportError:  # outside IPython there is nothing to display
        return
    display(HTML(html))


def precomputed(lab: str, exercise: str) -> dict | None:
    """The verified record for one exercise when running under the safe autograder, else None."""
    if not os.environ.get(RESULTS_ENV):
        return None
    record = _records().get(f"{lab}/{exercise}")
    if record is None:
        return {"score": 0.0, "message": f"the autograder has no result for {lab}/{exercise}", "html": ""}
    return record


def scored(lab: str, exercise: str, points: float) -> float:
    """nbgrader test-cell entry point: a bare float in [0, points], or a FeedbackError with the reason."""
    record = precomputed(lab, exercise)
    if record is None:
        from graders.nbgrader import scored as live_scored

        return live_scored(lab, exercise, points)
    _show(record)
    score = max(0.0, min(float(record.get("score") or 0.0), float(points)))
    if score <= 0.0:
        raise FeedbackError(record.get("message") or f"{lab}/{exercise} did not pass")
    if score < float(points) and record.get("message"):
        print(f"Partial credit ({score:g}/{float(points):g}): {record['message']}")  # stdout, never stderr
    return score


def show(lab: str, exercise: str | None = None, submission=None, **options):  # noqa: ARG001
    """Stand-in for `check()` during safe autograding: display the verified result (no cluster access).
    Takes check()'s other arguments (``keep=True``, ``verbose=True``, a submission) and ignores them: the
    verified run already graded the submitted files once."""
    if exercise is None:
        for key, record in _records().items():
            if key.startswith(f"{lab}/"):
                _show(record)
        return None
    record = precomputed(lab, exercise)
    if record is not None:
        _show(record)
    return None


# --------------------------------------------------------------------------- trusted grading run
def _prepared_cluster(context: str | None):
    """A Cluster whose namespaces were created by the harness (admin) while the credentials here are
    namespace-scoped: creating, labelling or deleting a Namespace is cluster-scoped and this ServiceAccount may
    not do it, so those become checks that the namespace is ours. Emptying a namespace between exercises needs only
    namespaced rights and runs as usual; the harness deletes the namespaces after the submission."""
    from graders.cluster import Cluster

    class PreparedCluster(Cluster):
        def _claim_namespace(self, name, run_id):  # noqa: ARG002
            return None

        def delete_namespaces(self, names, wait=True, timeout=0):  # noqa: ARG002
            return None

        def ensure_owned_namespace(self, name, run_id=None):  # noqa: ARG002
            self._require_owned(name)

        def check_run(self, namespaces, run_id):  # noqa: ARG002
            """The harness labelled these namespaces with its own run id and grades one submission at a time, so
            the grader's run id never matches; what matters is that they are still ours."""
            for name in namespaces:
                self._require_owned(name)

        def label_namespace(self, name, labels):
            """The harness set the lab's namespace labels; check they are there."""
            from graders.errors import ClusterError

            ns = self._get_namespace(name)
            have = (ns.metadata.labels or {}) if ns is not None else {}
            missing = {k: v for k, v in labels.items() if have.get(k) != v}
            if missing:
                raise ClusterError(f"Namespace {name} lacks the labels {missing} the harness should have set")

    return PreparedCluster.connect(context, timeout=10)


def _record(lab_result, exercise: str, points: float) -> dict:
    """Score and message exactly as graders.nbgrader.scored computes them; HTML exactly as check() shows it."""
    from graders import render

    outcome = lab_result.exercise(exercise)
    ratio = 0.0 if not outcome.points else max(0.0, min(1.0, outcome.score / outcome.points))
    score = float(points) if outcome.passed else round(ratio * float(points), 2)
    try:
        html = render.to_html(lab_result)
    except Exception:  # noqa: BLE001 — a rendering bug must not lose the score
        html = ""
    return {"score": score, "points": float(points), "passed": bool(outcome.passed),
            "message": render.exercise_text(outcome, color=False, wrap=False).rstrip(), "html": html, "error": ""}


def verify(lab: str, submission: Path, exercises: list[str] | None = None) -> dict:
    """Grade every (or the named) exercise of `lab` from the files in `submission` (the lab folder)."""
    from graders import engine, spec

    lab_spec = spec.load_lab(lab)
    try:
        cluster = _prepared_cluster(os.environ.get("K8SLAB_CONTEXT")) if os.environ.get(PREPARED_ENV) else None
    except Exception as exc:  # noqa: BLE001 — recorded per exercise, never a silent 0
        return {f"{lab}/{e.id}": {"score": 0.0, "points": e.points, "passed": False, "html": "",
                                  "message": f"the grader could not reach the cluster: {exc}", "error": str(exc)}
                for e in lab_spec.exercises if not exercises or e.id in exercises}
    out: dict[str, dict] = {}
    for exercise in lab_spec.exercises:
        if exercises and exercise.id not in exercises:
            continue
        key = f"{lab}/{exercise.id}"
        try:
            result = engine.grade(lab, exercise.id, submission=submission, cluster=cluster)
            out[key] = _record(result, exercise.id, exercise.points)
        except GradingError as exc:
            out[key] = {"score": 0.0, "points": exercise.points, "passed": False, "message": str(exc), "html": "",
                        "error": ""}
        except Exception as exc:  # noqa: BLE001 — an infrastructure failure is recorded, never a silent 0
            out[key] = {"score": 0.0, "points": exercise.points, "passed": False,
                        "message": f"the grader could not run: {type(exc).__name__}: {exc}", "html": "",
                        "error": "".join(traceback.format_exception_only(type(exc), exc)).strip()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graders.course_runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="grade a submitted lab folder; write the JSON records")
    p.add_argument("--lab", required=True)
    p.add_argument("--submission", type=Path, required=True)
    p.add_argument("--exercise", action="append", dest="exercises")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    records = verify(args.lab, args.submission, args.exercises)
    args.out.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
