"""What the live benchmarks share: connect or skip, fresh grader-owned namespaces, timed rounds, load average."""
from __future__ import annotations

import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graders.cluster import Cluster  # noqa: E402
from graders.errors import ClusterUnreachable  # noqa: E402


@contextmanager
def bench_cluster(name: str, namespaces: Sequence[str]) -> Iterator[Cluster | None]:
    """The cluster with `namespaces` freshly (re)created, deleted again on the way out; None (after saying
    "skipped") when no cluster answers, so the caller returns 0: there is nothing to measure."""
    try:
        cluster = Cluster.connect()
    except ClusterUnreachable as exc:
        print(f"{name}: skipped, no cluster ({exc.message})")
        yield None
        return
    cluster.reset_namespaces(list(namespaces))
    try:
        yield cluster
    finally:
        cluster.delete_namespaces(list(namespaces), wait=False)


def timed_rounds(runners: Mapping[str, object], specs: Sequence, rounds: int
                 ) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list]]:
    """Run every runner on `specs` once per round (interleaved). Returns the median seconds per runner, all
    the seconds, and the last results per runner."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    results: dict[str, list] = {}
    for _ in range(rounds):
        for name, runner in runners.items():
            started = time.monotonic()
            results[name] = runner.run(specs)
            times[name].append(time.monotonic() - started)
    return {name: statistics.median(values) for name, values in times.items()}, times, results


def loadavg() -> str:
    """The 1/5/15-minute load average (the benchmarks share the CPUs with whatever else runs)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"
