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
from pathlib import Path

from graders.autograding import PREPARED_ENV
from graders.cluster import Cluster
from graders.cluster.prepared import PreparedCluster
from graders.errors import GradingError
from graders.nbgrader import record


def _prepared_cluster() -> PreparedCluster:
    """The scoped kubeconfig's cluster (its context is $K8SLAB_CONTEXT, set by the harness)."""
    return PreparedCluster(Cluster.connect(timeout=10))


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
            out[key] = record(result, exercise.id, exercise.points)
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
