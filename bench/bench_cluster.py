#!/usr/bin/env python3
"""Cluster cost: idle memory of the kind nodes (docker stats), and with --recreate the cluster-up time from cache.

--recreate deletes and re-creates the offline cluster (about 2 minutes warm), so it is off by default: `make
bench` reports memory; `make bench BENCH_ARGS=--recreate` adds the start time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _bytes(text: str) -> float:
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit]
    return float(text)


def node_memory() -> dict[str, float]:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}"], capture_output=True,
                         text=True, timeout=60)
    usage = {}
    for line in out.stdout.splitlines():
        row = json.loads(line)
        if row["Name"].startswith("k8slab-"):
            usage[row["Name"]] = _bytes(row["MemUsage"].split("/")[0].strip())
    return usage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recreate", action="store_true", help="also time cluster-down + cluster-up from cache")
    args = parser.parse_args()
    try:
        usage = node_memory()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"bench_cluster: skipped, docker not answering ({exc})")
        return 0
    if not usage:
        print("bench_cluster: skipped, no k8slab cluster running")
        return 0
    total = sum(usage.values())
    print("bench_cluster: idle memory of the kind nodes")
    for name, used in sorted(usage.items()):
        print(f"  {name:24s} {used / 1024**2:7.0f} MiB  ({used / total:4.0%} of the cluster)")
    print(f"  {'total':24s} {total / 1024**2:7.0f} MiB")
    if args.recreate:
        offline = ROOT / "environment" / "offline"
        subprocess.run([str(offline / "cluster-down.sh")], check=True)
        started = time.monotonic()
        subprocess.run([str(offline / "cluster-up.sh")], check=True)
        print(f"  cluster-up from cache: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
