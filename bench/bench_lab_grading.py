"""Whole-lab grading time (issue 5: < 60 s for 03-services on the offline cluster), measured two ways in one run:

* one `grade` call for the whole lab: exercises sharing a namespace start from an emptied one (~1 s), and the
  namespace is deleted once at the end (without waiting for the namespace controller);
* one `grade` call per exercise, as a learner's notebook does: each deletes its namespace, so the next one's
  reset waits for the namespace controller (5-12 s) -- what every exercise cost before emptying existed.
* for a lab that keeps unchanged Deployments (lab.yaml reuse_unchanged_workloads), the whole lab once more with
  every Deployment restarted for each exercise: the ratio is what graders/workload_reuse.py saves.

Each includes apply, readiness wait, static checks, live probes and teardown; the reference solutions must pass.
Usage: bench_lab_grading.py [LAB ...] (default 01-pod-network 03-services 04-ingress 05-network-policy).
An answers exercise's reference answers are read off the cluster first (tests/observed.py), outside the timing.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_cluster, loadavg

from graders import engine, paths, spec

sys.path.insert(0, str(paths.repo_root() / "tests"))
from observed import materialise  # noqa: E402 — tests/ is not a package

GOAL_S = 60.0


def _solutions(cluster, lab: str, root: Path) -> Path:
    """The lab's reference solutions as one submission folder, answers exercises filled in for this cluster."""
    for ex in spec.load_lab(lab).exercises:
        shutil.copytree(ex.solution_dir, root / ex.id)
        materialise(ex, root / ex.id, cluster.context, root / ex.id)
    return root


def _grade(cluster, lab: str, submission: Path, exercise: str | None = None,
           reuse: bool | None = None) -> tuple[float, float, float]:
    started = time.monotonic()
    result = engine.grade(lab, exercise, submission / exercise if exercise else submission, cluster=cluster,
                          reuse_workloads=reuse)
    elapsed = time.monotonic() - started
    if not result.passed:
        failed = [e for e in result.exercises if not e.passed]
        raise SystemExit(f"bench_lab_grading: the reference solution of {lab} fails: "
                         f"{failed[0].exercise}: {failed[0].message}")
    return elapsed, result.score, result.points


def main(argv: list[str]) -> int:
    labs = argv or ["01-pod-network", "03-services", "04-ingress", "05-network-policy"]
    namespaces = sorted({ns for lab in labs for ns in spec.load_lab(lab).all_namespaces})
    with bench_cluster("bench_lab_grading", namespaces) as cluster:
        if cluster is None:
            return 0
        print(f"bench_lab_grading: load average at start {loadavg()}")
        worst = 0.0
        for lab in labs:
            submission = _solutions(cluster, lab, Path(tempfile.mkdtemp(prefix="k8slab-bench-")) / lab)
            whole, score, points = _grade(cluster, lab, submission)
            per_exercise = sum(_grade(cluster, lab, submission, ex.id)[0] for ex in spec.load_lab(lab).exercises)
            worst = max(worst, whole)
            print(f"  {lab}: whole lab {whole:.1f} s ({score:g}/{points:g} points; goal < {GOAL_S:.0f} s)  "
                  f"one call per exercise {per_exercise:.1f} s  ratio {per_exercise / whole:.1f}x")
            if spec.load_lab(lab).reuse_unchanged_workloads:
                # the same whole-lab run restarting every Deployment, as before graders/workload_reuse.py
                restarting = _grade(cluster, lab, submission, reuse=False)[0]
                print(f"  {lab}: whole lab restarting unchanged Deployments {restarting:.1f} s, keeping them "
                      f"{whole:.1f} s  ratio {restarting / whole:.2f}x")
        print(f"bench_lab_grading: slowest whole lab {worst:.1f} s -> {'OK' if worst < GOAL_S else 'OVER GOAL'}; "
              f"load average at end {loadavg()}")
        return 0  # a report, not a test: a busy machine must not fail `make bench`


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
