"""What a student waits for: one `check(lab, exercise)` in a notebook, measured two ways in the same run.

A student checks an exercise, edits a file, checks again. Per exercise of each lab this replays that: the starter
(fails), then the reference solution (passes), as two separate `grade` calls, each timed on its own:

* today's path (``teardown="delete"``, what `k8slab grade` does): every check deletes its namespaces at the end,
  so the next check waits for the namespace controller, then recreates every pod, the grader's own included;
* the notebook's path (``teardown="empty"``): a check empties the learner's objects but keeps the namespaces and
  the grader's fixture pods (probe, client and world pods, reused while their spec is unchanged).

Verdicts must be the same on both paths (the bench stops if they differ). Usage: bench_recheck.py [LAB ...]
(default 00-orientation 03-services 05-network-policy).
"""
from __future__ import annotations

import statistics
import sys
import time

from _common import bench_cluster, loadavg

from graders import engine, spec

GOAL_MEDIAN_S = 5.0
PATHS = ("delete", "empty")


def _check(cluster, lab: str, exercise, submission, teardown: str) -> tuple[float, bool]:
    started = time.monotonic()
    result = engine.grade(lab, exercise.id, submission, cluster=cluster, teardown=teardown)
    return time.monotonic() - started, result.passed


def _replay(cluster, labs: list[str], teardown: str) -> tuple[list[float], list[tuple[str, bool]]]:
    """Starter then solution, exercise by exercise: the seconds of every check and its verdict."""
    seconds: list[float] = []
    verdicts: list[tuple[str, bool]] = []
    for lab in labs:
        for exercise in spec.load_lab(lab).exercises:
            for what, submission in (("starter", exercise.starter_dir), ("solution", exercise.solution_dir)):
                elapsed, passed = _check(cluster, lab, exercise, submission, teardown)
                seconds.append(elapsed)
                verdicts.append((f"{lab}/{exercise.id} {what}", passed))
    return seconds, verdicts


def main(argv: list[str]) -> int:
    labs = argv or ["00-orientation", "03-services", "05-network-policy"]
    namespaces = sorted({ns for lab in labs for ns in spec.load_lab(lab).all_namespaces})
    with bench_cluster("bench_recheck", namespaces) as cluster:
        if cluster is None:
            return 0
        print(f"bench_recheck: load average at start {loadavg()}")
        medians: dict[str, float] = {}
        verdicts: dict[str, list[tuple[str, bool]]] = {}
        for teardown in PATHS:
            seconds, verdicts[teardown] = _replay(cluster, labs, teardown)
            medians[teardown] = statistics.median(seconds)
            print(f"  {teardown:>6}: {len(seconds)} checks, median {medians[teardown]:.1f} s, "
                  f"p90 {sorted(seconds)[int(0.9 * (len(seconds) - 1))]:.1f} s, total {sum(seconds):.0f} s")
        differ = [(a, b) for a, b in zip(verdicts["delete"], verdicts["empty"]) if a != b]
        if differ:
            raise SystemExit(f"bench_recheck: the two paths disagree: {differ}")
        expected = [(name, name.endswith("solution")) for name, _ in verdicts["empty"]]
        if verdicts["empty"] != expected:
            raise SystemExit(f"bench_recheck: a starter passed or a solution failed: "
                             f"{[v for v, e in zip(verdicts['empty'], expected) if v != e]}")
        ratio = medians["delete"] / medians["empty"]
        print(f"bench_recheck: median check {medians['empty']:.1f} s (empty) vs {medians['delete']:.1f} s today "
              f"({ratio:.1f}x); goal < {GOAL_MEDIAN_S:.0f} s -> "
              f"{'OK' if medians['empty'] < GOAL_MEDIAN_S else 'OVER GOAL'}; verdicts identical; "
              f"load average at end {loadavg()}")
        return 0  # a report, not a test: a busy machine must not fail `make bench`


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
