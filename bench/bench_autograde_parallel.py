"""Class-scale autograding (issue 15): submissions per minute of the serial autograder and of `--parallel N`
(grading Jobs, N at once) on the same generated class, in one run, on the cluster of the current context.

    bench_autograde_parallel.py [--lab 03-services] [--class 8] [--n 1,2,4,8]

The class is the live test's (tests/pipeline/pipeline_helpers.generated_class: the solution, alternatives, the
starter, known mistakes). Each mode grades a fresh copy of the released course: the serial path
(graders.course.harness.autograde), then each N (graders.course.dispatch.autograde_parallel). Every mode must
give every student the serial path's grade; a mode that differs fails the benchmark. It prints each mode's
minutes, submissions per minute and ratio to serial, the mean Job time and, from it, what a class of 300 needs
on a real cluster. Needs the grading image in the nodes (`make grader-image`): skipped saying so without it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import loadavg

from graders import paths, spec
from graders.cluster import Cluster
from graders.errors import ClusterUnreachable

sys.path.insert(0, str(paths.repo_root() / "tests" / "pipeline"))
sys.path.insert(0, str(paths.repo_root() / "tests"))
from pipeline_helpers import REPO, build_course, generated_class, hand_in, nbgrader  # noqa: E402

CLASS_OF = 300


def _image_in_nodes(context: str) -> str:
    """Why the grading image cannot run here ("" when it is in every node)."""
    import subprocess

    from graders import versions
    from graders.course import jobs

    image = versions.get(jobs.GRADER_IMAGE_PIN)
    cluster = context.removeprefix("kind-")
    try:
        nodes = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter",
                                f"label=io.x-k8s.kind.cluster={cluster}"], capture_output=True, text=True,
                               timeout=20, check=True).stdout.split()
        missing = [n for n in nodes if image.split(":")[0] not in subprocess.run(
            ["docker", "exec", n, "crictl", "images", "-o", "json"], capture_output=True, text=True,
            timeout=30).stdout]
    except (OSError, subprocess.SubprocessError) as error:
        return f"could not ask the nodes of {cluster} ({error})"
    if not nodes or missing:
        return f"grading image {image} not in the nodes {missing or '(none found)'}: run `make grader-image`"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="03-services")
    parser.add_argument("--class", dest="size", type=int, default=int(os.environ.get("K8SLAB_BENCH_CLASS", "8")))
    parser.add_argument("--n", default=os.environ.get("K8SLAB_BENCH_N", "1,2,4,8"))
    args = parser.parse_args()
    ns = [int(n) for n in args.n.split(",") if n.strip()]
    try:
        cluster = Cluster.connect(timeout=5)
    except ClusterUnreachable as exc:
        print(f"bench_autograde_parallel: skipped, no cluster ({exc.message})")
        return 0
    why = _image_in_nodes(cluster.context)
    if why:
        print(f"bench_autograde_parallel: skipped, {why}")
        return 0
    from graders.course import dispatch, harness

    lab_spec = spec.load_lab(args.lab)
    work = Path(tempfile.mkdtemp(prefix="k8slab-bench-class-"))
    try:
        released = work / "released"
        build_course(released, REPO, [args.lab])
        nbgrader(released, "generate_assignment", args.lab)
        submissions = generated_class(lab_spec, cluster.context, args.size)
        for student, files in submissions.items():
            hand_in(released, args.lab, student, files)
        print(f"bench_autograde_parallel: {args.lab}, a class of {len(submissions)}, on {cluster.context} "
              f"(load {loadavg()})")

        rows = []
        serial_dir = work / "serial"
        shutil.copytree(released, serial_dir)
        started = time.monotonic()
        serial = {r.student: r.total for r in harness.autograde(serial_dir, args.lab, say=lambda _l: None)}
        rows.append(("serial", time.monotonic() - started, None, 0))
        job_seconds: dict[int, list[float]] = {}
        for n in ns:
            folder = work / f"parallel-{n}"
            shutil.copytree(released, folder)
            summary = dispatch.autograde_parallel(folder, args.lab, n, say=lambda _l: None)
            got = {o.student: o.result.total if o.result else None for o in summary.outcomes}
            if got != serial:
                differ = {s: (serial.get(s), got.get(s)) for s in set(serial) | set(got) if serial.get(s) != got.get(s)}
                print(f"  --parallel {n}: grades differ from the serial path's (serial, parallel): {differ}")
                return 1
            if summary.pending_serial:
                print(f"  --parallel {n}: {len(summary.pending_serial)} listed for a serial regrade: the comparison "
                      "would not be fair")
                return 1
            job_seconds[n] = [o.job_seconds for o in summary.outcomes if o.job_seconds]
            rows.append((f"--parallel {n}", summary.seconds, n, len(summary.leftovers)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    size = len(submissions)
    serial_s = rows[0][1]
    print(f"  {'mode':<14} {'minutes':>8} {'subs/min':>9} {'vs serial':>10}")
    for name, seconds, _n, _left in rows:
        print(f"  {name:<14} {seconds / 60:8.1f} {size / (seconds / 60):9.2f} {serial_s / seconds:9.2f}x")
    best = max(rows[1:], key=lambda r: size / r[1])
    print(f"  fastest: {best[0]} ({serial_s / best[1]:.2f}x serial); load after: {loadavg()}")
    # a Job's cost alone: measured at the smallest N (at larger N the Jobs share this machine's two cores)
    alone = job_seconds.get(min(job_seconds), []) if job_seconds else []
    mean_job = statistics.mean(alone) if alone else 0.0
    # A Job asks 100m CPU and may use 1 CPU (graders/course/jobs.py RESOURCES); on a real cluster, one Job per core
    # at once is the measured-safe density, so the class needs CLASS_OF * mean_job / cores seconds.
    for cores in (8, 32, 96):
        print(f"  a class of {CLASS_OF} on a cluster with {cores} cores for grading Jobs (one Job per core): "
              f"~{CLASS_OF * mean_job / cores / 60:.0f} min of Jobs (a Job alone {mean_job:.0f} s here); the "
              f"notebook steps on the instructor's machine come on top, one at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
