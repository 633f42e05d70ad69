#!/usr/bin/env python3
"""Live probing benchmark: one exec per probe (KubeRunner) vs one exec per source pod (BatchRunner).

Starts 3 agnhost probe pods (spread over the nodes) in its own grader-owned namespace `k8slab-bench`, builds
the full 3x3 matrix of TCP + HTTP probes between them (18 probes, only to pods this run created), runs it with
both runners, prints both wall times and the ratio, and deletes the namespace. Without a cluster it says so
and exits 0 (nothing to measure).

Usage: python bench/bench_probe.py [--rounds N]
"""
from __future__ import annotations

import argparse
import sys

from _common import bench_cluster, loadavg, timed_rounds

from graders.model import Outcome
from graders.probe import BatchRunner, KubeRunner, ProbeSpec, pod_ip, start_probe_pods

NAMESPACE = "k8slab-bench"
PODS = ("bench-a", "bench-b", "bench-c")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_cluster("bench_probe", [NAMESPACE]) as cluster:
        if cluster is None:
            return 0
        placed = start_probe_pods(cluster, NAMESPACE, PODS)
        ips = {name: pod_ip(cluster, NAMESPACE, name) for name in PODS}
        specs = [ProbeSpec(f"{NAMESPACE}/{src}", kind, ips[dst], 8080, path="/hostname")
                 for src in PODS for dst in PODS for kind in ("tcp", "http")]
        load = loadavg()
        runners = {"naive": KubeRunner(cluster), "batched": BatchRunner(cluster)}
        median, _, results = timed_rounds(runners, specs, args.rounds)
        for name, got in results.items():
            wrong = [r.describe() for r in got if r.outcome is not Outcome.ALLOWED]
            if wrong:
                print(f"bench_probe: {name}: {len(wrong)} probes not allowed, e.g. {wrong[0]}")
        naive, batched = median["naive"], median["batched"]
        print(f"bench_probe: {len(specs)} probes between {len(PODS)} pods on nodes "
              f"{', '.join(sorted(set(placed.values())))}; median of {args.rounds} rounds; "
              f"load average {load} -> {loadavg()}")
        print(f"  naive   (exec per probe):      {naive:6.2f} s  ({len(specs)} execs)")
        print(f"  batched (exec per source pod): {batched:6.2f} s  ({len(PODS)} execs)")
        print(f"  ratio naive/batched: {naive / batched:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
