"""The trusted grading run of the safe autograder (``python -m graders.course.verify``).

graders.course.harness starts it in a separate process, with a scrubbed environment and only the submission's
namespace-scoped kubeconfig, on a pristine copy of the submitted files, before the student's notebook executes.
It grades every exercise with `graders.engine.grade` and writes one JSON record per exercise (score, message, the
HTML the notebook shows). The harness keeps that file out of the student's reach and writes its scores into the
gradebook itself; graders.course.runtime only displays them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from graders.autograding import PREPARED_ENV
from graders.cluster import Cluster, ClusterAPI
from graders.errors import ClusterError, GradingError


class PreparedCluster:
    """A cluster whose namespaces the harness created (as admin) while the credentials here are namespace-scoped.

    Creating, labelling or deleting a Namespace is cluster-scoped and this ServiceAccount may not do it, so those
    become checks that the namespace is ours. Emptying a namespace between exercises needs only namespaced rights
    and runs as usual; the harness deletes the namespaces after the submission. Everything else is the wrapped
    cluster's."""

    def __init__(self, cluster: ClusterAPI) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:  # noqa: ARG002
        self._cluster.require_owned(name)

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = (),
                         labels: Mapping[str, Mapping[str, str]] | None = None, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:  # noqa: ARG002
        # keeping an unchanged Deployment between the exercises of ONE submission is safe: the harness creates
        # the namespaces fresh for each submission and deletes them after it
        for name in names:
            self._cluster.require_owned(name)
            if labels and labels.get(name):
                self.label_namespace(name, labels[name])
        self._cluster.empty_namespaces(names, kinds, keep_fixtures=keep_fixtures, keep_deployments=keep_deployments)

    def delete_namespaces(self, names: Iterable[str], wait: bool = True, timeout: float = 0) -> None:  # noqa: ARG002
        return None

    def check_run(self, namespaces: Sequence[str], run_id: str) -> None:  # noqa: ARG002
        """The harness labelled these namespaces with its own run id and grades one submission at a time, so
        the grader's run id never matches; what matters is that they are still ours."""
        for name in namespaces:
            self._cluster.require_owned(name)

    def label_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """The harness set the lab's namespace labels; check they are there."""
        have = self._cluster.namespace_labels(name) or {}
        missing = {k: v for k, v in labels.items() if have.get(k) != v}
        if missing:
            raise ClusterError(f"Namespace {name} lacks the labels {missing} the harness should have set")


def _prepared_cluster() -> PreparedCluster:
    """The scoped kubeconfig's cluster (its context is $K8SLAB_CONTEXT, set by the harness)."""
    return PreparedCluster(Cluster.connect(timeout=10))


def _record(lab_result, exercise: str, points: float) -> dict:
    """Score and message exactly as graders.nbgrader.scored words them; HTML exactly as check() shows it."""
    from graders import render
    from graders.nbgrader import feedback, score_of

    outcome = lab_result.exercise(exercise)
    try:
        html = render.to_html(lab_result)
    except Exception:  # noqa: BLE001 — a rendering bug must not lose the score
        html = ""
    return {"score": score_of(outcome, points), "points": float(points), "passed": bool(outcome.passed),
            "message": feedback(outcome), "html": html, "error": ""}


def verify(lab: str, submission: Path, exercises: list[str] | None = None) -> dict:
    """Grade every (or the named) exercise of `lab` from the files in `submission` (the lab folder)."""
    from graders import engine, spec

    lab_spec = spec.load_lab(lab)
    try:
        cluster = _prepared_cluster() if os.environ.get(PREPARED_ENV) else None
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
            # "empty", as a notebook's check(): the grader's pods (and a lab's unchanged Deployments) stay for the
            # next exercise; the harness deletes the namespaces after the submission
            result = engine.grade(lab, exercise.id, submission=submission, cluster=cluster, teardown="empty")
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
    parser = argparse.ArgumentParser(prog="python -m graders.course.verify",
                                     description="grade a submitted lab folder; write the JSON records")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--submission", type=Path, required=True)
    parser.add_argument("--exercise", action="append", dest="exercises")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    records = verify(args.lab, args.submission, args.exercises)
    args.out.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
