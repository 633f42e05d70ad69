#!/usr/bin/env python3
"""Static NetworkPolicy engine benchmark: how long a whole reachability matrix takes, and how it grows.

Targets (issue 4, section 4): the e2e 9x9 model < 50 ms; 200 pods x 50 policies < 2 s. Each measurement is the
median of several runs of the whole path a check takes -- read objects, compile policies, compute the matrix
-- so the numbers are what ``k8slab matrix`` costs apart from YAML parsing and process start.

Usage: python bench/bench_static.py [--repeat N]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graders.netpol.verdicts import PolicyEngine  # noqa: E402

TARGET_MODEL_MS = 50.0
TARGET_LARGE_S = 2.0


def e2e_model() -> list[dict]:
    """Namespaces x, y, z x pods a, b, c, plus the upstream default-deny-ingress and an AND/OR policy pair."""
    objects: list[dict] = []
    for i, ns in enumerate("xyz"):
        objects.append({"kind": "Namespace", "metadata": {"name": ns, "labels": {"ns": ns}}})
        for j, pod in enumerate("abc"):
            objects.append({"kind": "Pod", "metadata": {"name": pod, "namespace": ns, "labels": {"pod": pod}},
                            "spec": {"containers": [{"ports": [{"containerPort": 80, "name": "serve-80-tcp"},
                                                               {"containerPort": 81, "name": "serve-81-tcp"}]}]},
                            "status": {"podIP": f"10.1.{i + 1}.{j + 1}"}})
    objects += [
        _netpol("x", "deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        _netpol("x", "allow-and", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [
            {"namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "NotIn", "values": ["x"]}]},
             "podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        _netpol("y", "allow-or", {"podSelector": {}, "ingress": [{"from": [
            {"podSelector": {"matchLabels": {"pod": "b"}}}, {"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
            "ports": [{"port": "serve-80-tcp"}]}]}),
    ]
    return objects


def _netpol(namespace: str, name: str, spec: dict) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def synthetic(pods: int, policies: int, namespaces: int = 10, seed: int = 4) -> list[dict]:
    """A mixed, deterministic workload: every peer kind (pod, namespace, AND, ipBlock with except), named
    ports, ranges, ingress and egress, matchExpressions of every operator."""
    rng = random.Random(seed)
    apps, tiers, envs = [f"app{i}" for i in range(12)], ["web", "api", "db", "cache"], ["prod", "staging", "dev"]
    objects: list[dict] = []
    for n in range(namespaces):
        objects.append({"kind": "Namespace", "metadata": {"name": f"ns{n}", "labels": {
            "env": envs[n % len(envs)], "team": f"t{n % 4}"}}})
    for p in range(pods):
        objects.append({
            "kind": "Pod",
            "metadata": {"name": f"pod{p}", "namespace": f"ns{p % namespaces}",
                         "labels": {"app": rng.choice(apps), "tier": rng.choice(tiers), "v": str(p % 3)}},
            "spec": {"containers": [{"ports": [{"containerPort": 80, "name": "http"},
                                               {"containerPort": 8080 + p % 3, "name": "alt"}]}]},
            "status": {"podIP": f"10.{p // 250}.{p % 250}.{1 + p % 7}"},
        })

    def selector() -> dict:
        choice = rng.random()
        if choice < 0.15:
            return {}
        if choice < 0.6:
            return {"matchLabels": {"tier": rng.choice(tiers)}}
        operator = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        expression = {"key": rng.choice(["app", "tier", "v"]), "operator": operator}
        if operator in ("In", "NotIn"):
            expression["values"] = rng.sample(apps + tiers + ["0", "1", "2"], 3)
        return {"matchExpressions": [expression]}

    def peer() -> dict:
        choice = rng.random()
        if choice < 0.35:
            return {"podSelector": selector()}
        if choice < 0.6:
            return {"namespaceSelector": {"matchLabels": {"env": rng.choice(envs)}}}
        if choice < 0.85:
            return {"namespaceSelector": {"matchLabels": {"team": f"t{rng.randrange(4)}"}}, "podSelector": selector()}
        return {"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"10.0.{rng.randrange(250)}.0/24"]}}

    def ports() -> list[dict]:
        choice = rng.random()
        if choice < 0.3:
            return []
        if choice < 0.6:
            return [{"port": 80}]
        if choice < 0.8:
            return [{"port": rng.choice(["http", "alt"])}]
        return [{"port": 8000, "endPort": 8090, "protocol": "TCP"}]

    for i in range(policies):
        rules = [{"from" if i % 3 else "to": [peer() for _ in range(rng.randint(1, 3))], "ports": ports()}
                 for _ in range(rng.randint(0, 3))]
        spec: dict = {"podSelector": selector()}
        if i % 3:
            spec["ingress"] = rules
        else:
            spec["egress"], spec["policyTypes"] = rules, ["Egress"]
        objects.append(_netpol(f"ns{i % namespaces}", f"pol{i}", spec))
    return objects


def measure(objects: list[dict], repeat: int, port: int = 80) -> tuple[float, float, int]:
    """(median seconds for build+matrix, median seconds for matrix alone, cells)."""
    totals, matrices, cells = [], [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        engine = PolicyEngine.from_objects(objects)
        built = time.perf_counter()
        matrix = engine.matrix(port)
        end = time.perf_counter()
        totals.append(end - start)
        matrices.append(end - built)
        cells = sum(len(row) for row in matrix.values())
    return statistics.median(totals), statistics.median(matrices), cells


def per_pair(objects: list[dict], port: int = 80) -> float:
    """The naive way, for the ratio: one full evaluate() (a walk over every policy) per ordered pair."""
    engine = PolicyEngine.from_objects(objects)
    keys = [p.key for p in engine.pods]
    start = time.perf_counter()
    for src in keys:
        for dst in keys:
            if src != dst:
                engine.evaluate(src, dst, port)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows: list[tuple[str, ...]] = []
    ok = True

    total, matrix_only, cells = measure(e2e_model(), max(args.repeat, 20))
    passed = total * 1000 < TARGET_MODEL_MS
    ok &= passed
    rows.append(("e2e model 9 pods x 3 policies", str(cells), f"{total * 1000:.2f} ms", f"{matrix_only * 1000:.2f} ms",
                 f"< {TARGET_MODEL_MS:.0f} ms", "ok" if passed else "SLOW"))

    total, matrix_only, cells = measure(synthetic(200, 50), args.repeat)
    passed = total < TARGET_LARGE_S
    ok &= passed
    rows.append(("200 pods x 50 policies", str(cells), f"{total * 1000:.1f} ms", f"{matrix_only * 1000:.1f} ms",
                 f"< {TARGET_LARGE_S:.0f} s", "ok" if passed else "SLOW"))

    growth: list[tuple[str, ...]] = []
    previous = None
    for pods in (50, 100, 200, 400, 800):
        total, matrix_only, cells = measure(synthetic(pods, 50), args.repeat)
        ratio = f"x{total / previous:.2f}" if previous else "-"
        growth.append((f"{pods} pods x 50 policies", str(cells), f"{total * 1000:.1f} ms",
                       f"{matrix_only * 1000:.1f} ms", ratio))
        previous = total
    previous = None
    for policies in (25, 50, 100, 200):
        total, matrix_only, cells = measure(synthetic(200, policies), args.repeat)
        ratio = f"x{total / previous:.2f}" if previous else "-"
        growth.append((f"200 pods x {policies} policies", str(cells), f"{total * 1000:.1f} ms",
                       f"{matrix_only * 1000:.1f} ms", ratio))
        previous = total

    objects = synthetic(60, 50)
    naive = per_pair(objects)
    fast, _, cells = measure(objects, args.repeat)

    print(_table("Static engine vs targets (median, build = read + compile + matrix)",
                 ("case", "cells", "build+matrix", "matrix only", "target", "result"), rows))
    print()
    print(_table("Growth (ratio = time / previous row; cells grow as pods^2)",
                 ("case", "cells", "build+matrix", "matrix only", "ratio"), growth))
    print()
    print(_table("Whole matrix vs one evaluate() per pair (60 pods x 50 policies)",
                 ("method", "cells", "time", "speed-up"),
                 [("evaluate() per pair", str(cells), f"{naive * 1000:.1f} ms", "x1"),
                  ("matrix() bitsets", str(cells), f"{fast * 1000:.1f} ms", f"x{naive / fast:.0f}")]))
    print()
    print("static bench:", "all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    render = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                 for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([title, line, render(header), line, *(render(r) for r in rows), line])


if __name__ == "__main__":
    sys.exit(main())
