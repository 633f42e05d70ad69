"""Whole-lab grading time (issue 5: < 60 s for 03-services on the offline cluster), measured two ways in one run:

* one `grade` call for the whole lab: exercises sharing a namespace start from an emptied one (~1 s), and the
  namespace is deleted once at the end (without waiting for the namespace controller);
* one `grade` call per exercise, as a learner's notebook does: each deletes its namespace, so the next one's
  reset waits for the namespace controller (5-12 s) -- what every exercise cost before emptying existed.

Each includes apply, readiness wait, static checks, live probes and teardown; the reference solutions must pass.
Usage: bench_lab_grading.py [LAB ...] (default 03-services 05-network-policy).
"""
from __future__ import annotations

import sys
import time

from _common import bench_cluster, loadavg

from graders import engine, spec

GOAL_S = 60.0


def _grade(cluster, lab: str, exercise: str | None = None) -> tuple[float, float, float]:
    started = time.monotonic()
    result = engine.grade(lab, exercise, spec.load_lab(lab).exercise(exercise).solution_dir if exercise else
                          spec.load_lab(lab).exercises[0].solution_dir.parent, cluster=cluster)
    elapsed = time.monotonic() - started
    if not result.passed:
        failed = [e for e in result.exercises if not e.passed]
        raise SystemExit(f"bench_lab_grading: the reference solution of {lab} fails: "
                         f"{failed[0].exercise}: {failed[0].message}")
    return elapsed, result.score, result.points


def main(argv: list[str]) -> int:
    labs = argv or ["03-services", "05-network-policy"]
    namespaces = sorted({ns for lab in labs for ns in spec.load_lab(lab).all_namespaces})
    with bench_cluster("bench_lab_grading", namespaces) as cluster:
        if cluster is None:
            return 0
        print(f"bench_lab_grading: load average at start {loadavg()}")
        worst = 0.0
        for lab in labs:
            whole, score, points = _grade(cluster, lab)
            per_exercise = sum(_grade(cluster, lab, ex.id)[0] for ex in spec.load_lab(lab).exercises)
            worst = max(worst, whole)
            print(f"  {lab}: whole lab {whole:.1f} s ({score:g}/{points:g} points; goal < {GOAL_S:.0f} s)  "
                  f"one call per exercise {per_exercise:.1f} s  ratio {per_exercise / whole:.1f}x")
        print(f"bench_lab_grading: slowest whole lab {worst:.1f} s -> {'OK' if worst < GOAL_S else 'OVER GOAL'}; "
              f"load average at end {loadavg()}")
        return 0  # a report, not a test: a busy machine must not fail `make bench`


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
