#!/usr/bin/env python3
"""Cluster cost: idle memory of the kind nodes per cluster (docker stats), and the cluster-up time from cache.

Every running k8slab cluster is reported (the course cluster and the second clusters of lab 02: one per offline
CNI), each with its share of the course cluster's memory. Options, off by default because they create clusters:
  --recreate          delete and re-create the course cluster (about 2 minutes warm) and time it;
  --cni CNI[,CNI]     start each offline second cluster (flannel, flannel+kube-router, cilium) not running, time
                      its cluster-up, let it settle, report its idle memory, and delete it again (issue 14).
`make bench` reports memory; `make bench BENCH_ARGS="--cni flannel,flannel+kube-router"` adds the second clusters.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "environment" / "offline"
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
KIND_LABEL = "io.x-k8s.kind.cluster"
COURSE_CLUSTER = "k8slab"
SECOND_CLUSTERS = {"flannel": "k8slab-flannel", "flannel+kube-router": "k8slab-flannel-kube-router",
                   "cilium": "k8slab-cilium"}
SETTLE_S = 45   # after cluster-up, before reading "idle" memory: the control plane's start-up burst passes


def _bytes(text: str) -> float:
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit]
    return float(text)


def _docker(*argv: str) -> str:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=60, check=True).stdout


def node_memory() -> dict[str, dict[str, float]]:
    """{kind cluster: {node container: bytes used}} for the k8slab clusters that run."""
    cluster_of = {}
    for line in _docker("ps", "--format", f'{{{{.Names}}}} {{{{.Label "{KIND_LABEL}"}}}}').splitlines():
        name, _, cluster = line.partition(" ")
        if cluster.startswith(COURSE_CLUSTER):
            cluster_of[name] = cluster
    usage: dict[str, dict[str, float]] = {}
    for line in _docker("stats", "--no-stream", "--format", "{{json .}}").splitlines():
        row = json.loads(line)
        if row["Name"] in cluster_of:
            usage.setdefault(cluster_of[row["Name"]], {})[row["Name"]] = _bytes(row["MemUsage"].split("/")[0].strip())
    return usage


def report(usage: dict[str, dict[str, float]]) -> None:
    course = sum(usage.get(COURSE_CLUSTER, {}).values())
    for cluster, nodes in sorted(usage.items()):
        total = sum(nodes.values())
        share = f", {total / course:.2f}x the course cluster" if course and cluster != COURSE_CLUSTER else ""
        print(f"  {cluster}: {total / 1024**2:.0f} MiB over {len(nodes)} nodes{share}")
        for name, used in sorted(nodes.items()):
            print(f"    {name:42s} {used / 1024**2:7.0f} MiB")


def _make_cluster(cni: str, down: bool = False) -> float:
    script = OFFLINE / ("cluster-down.sh" if down else "cluster-up.sh")
    started = time.monotonic()
    subprocess.run([str(script)], check=True, env={**os.environ, "K8SLAB_CNI": cni}, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def second_clusters(cnis: list[str]) -> None:
    running = set(node_memory())
    for cni in cnis:
        cluster = SECOND_CLUSTERS.get(cni)
        if cluster is None:
            print(f"  --cni {cni}: not an offline second cluster (offered: {', '.join(SECOND_CLUSTERS)})")
            continue
        if cluster in running:
            print(f"  {cluster}: already running, memory above (cluster-up not timed)")
            continue
        up = _make_cluster(cni)
        time.sleep(SETTLE_S)
        print(f"  {cluster}: cluster-up from cache {up:.0f} s; idle memory {SETTLE_S} s later:")
        report({k: v for k, v in node_memory().items() if k in (cluster, COURSE_CLUSTER)})
        _make_cluster(cni, down=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recreate", action="store_true", help="also time cluster-down + cluster-up from cache")
    parser.add_argument("--cni", default="", help="comma-separated offline second clusters to start, measure, delete")
    args = parser.parse_args()
    try:
        usage = node_memory()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"bench_cluster: skipped, docker not answering ({exc})")
        return 0
    if not usage:
        print("bench_cluster: skipped, no k8slab cluster running")
        return 0
    print("bench_cluster: idle memory of the kind nodes, per cluster")
    report(usage)
    if args.cni:
        second_clusters([c for c in args.cni.split(",") if c])
    if args.recreate:
        _make_cluster("kube-router", down=True)
        print(f"  {COURSE_CLUSTER}: cluster-up from cache: {_make_cluster('kube-router'):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
