#!/usr/bin/env python3
"""Live 9x9 NetworkPolicy matrix (issue 4 §4): batched (one exec per source pod) vs naive (one exec per pair).

The upstream e2e model: pods a, b, c in three namespaces x, y, z (here k8slab-bench-x/y/z, grader-owned), one
TCP port. Both runners probe the same 72 ordered pairs, only toward pods this run created; a default-deny
policy in namespace x makes the matrix non-trivial, and both runners must observe the same table. Prints both
wall times and the ratio (goal >= 10x and < 5 s for batched), then deletes the namespaces.
Without a cluster it says so and exits 0 (nothing to measure).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from _common import bench_cluster, loadavg, timed_rounds

from graders.probe import (BatchRunner, KubeRunner, ProbeResult, ProbeSpec, classify, pod_ip, reproduce_command,
                           start_probe_pods)

NAMESPACES = ("k8slab-bench-x", "k8slab-bench-y", "k8slab-bench-z")
PODS = ("a", "b", "c")
PORT = 8080
DENY_X = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "default-deny-ingress", "namespace": NAMESPACES[0]},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


class KubectlRunner:
    """The baseline the issue names: one `kubectl exec` process per pair, one after another (as a person or a
    shell-script test would do it)."""

    def __init__(self, context: str):
        self.context = context

    def run(self, specs):
        return [self._one(spec) for spec in specs]

    def _one(self, spec: ProbeSpec) -> ProbeResult:
        argv = ["kubectl", "--context", self.context, "exec", "-n", spec.namespace, spec.pod, "--", *spec.argv()]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        outcome, detail = classify(spec, done.returncode, done.stdout + "\n" + done.stderr)
        return ProbeResult(spec, outcome, detail=detail, command=reproduce_command(spec, self.context))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-naive", action="store_true", help="skip the slow `kubectl exec` per pair baseline")
    args = parser.parse_args()
    with bench_cluster("bench_netpol_live", NAMESPACES) as cluster:
        if cluster is None:
            return 0
        for ns in NAMESPACES:
            start_probe_pods(cluster, ns, PODS)
        cluster.apply([DENY_X])
        time.sleep(3)  # let the CNI program the policy before either runner measures
        ips = {(ns, p): pod_ip(cluster, ns, p) for ns in NAMESPACES for p in PODS}
        specs = [ProbeSpec(f"{src[0]}/{src[1]}", "tcp", ips[dst], PORT)
                 for src in ips for dst in ips if src != dst]
        runners = {"batched": BatchRunner(cluster, workers=len(ips)), "api-exec": KubeRunner(cluster)}
        if shutil.which("kubectl") and not args.no_naive:
            runners["naive"] = KubectlRunner(cluster.context)
        load = loadavg()
        median, times, results = timed_rounds(runners, specs, args.rounds)
        tables = {name: [r.outcome.value for r in got] for name, got in results.items()}
        batched = median["batched"]
        agree = all(table == tables["batched"] for table in tables.values())
        print(f"bench_netpol_live: 9x9 model, {len(specs)} TCP probes on port {PORT}, median of {args.rounds} rounds; "
              f"load average {load} -> {loadavg()}")
        print(f"  batched  (one API exec per source pod, concurrent): {batched:6.2f} s  ({len(ips)} execs)  goal < 5 s"
              f"  rounds {' '.join(f'{t:.2f}' for t in times['batched'])}")
        print(f"  api-exec (one API exec per pair, sequential):       {median['api-exec']:6.2f} s  "
              f"({len(specs)} execs)  ratio {median['api-exec'] / batched:.1f}x")
        if "naive" in median:
            print(f"  naive    (one `kubectl exec` per pair, sequential): {median['naive']:6.2f} s  "
                  f"({len(specs)} processes)  ratio {median['naive'] / batched:.1f}x  goal >= 10x")
        print(f"  every runner saw the same table: {agree}")
        return 0 if agree else 1

if __name__ == "__main__":
    sys.exit(main())
