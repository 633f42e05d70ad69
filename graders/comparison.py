"""The second cluster a lab compares the graded one with (lab 02: the same policy on a CNI that does not enforce it).

``find`` picks the first context of the lab's ``compare_with`` that the kubeconfig has and that answers within a
short timeout, never the graded context itself; ``$K8SLAB_COMPARE_CONTEXT`` names one explicitly. Connections are
cached per process: a notebook checks several exercises, each comparing on the same cluster. When no second cluster
answers, ``find`` returns a ``Missing`` whose ``message`` says how to start one: a comparison that was not made is
"not probed", never a pass and never a traceback.

``prepared`` gives the lab its namespaces on the second cluster as the engine gives them on the first: reset with
the run's id under the same per-context run lock, and torn down afterwards as ``ctx.teardown`` says.

Under the safe autograder (graders.course.harness) the grading run's kubeconfig holds a scoped context for the second
cluster too, named in ``$K8SLAB_COMPARE_CONTEXT``; the harness created the lab's namespaces there as on the first
cluster ($K8SLAB_NAMESPACES_PREPARED), so the connection is a ``PreparedCluster`` that never creates or deletes them.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from graders import runlock
from graders.autograding import PREPARED_ENV
from graders.errors import K8sLabError

ENV = "K8SLAB_COMPARE_CONTEXT"
CONNECT_TIMEOUT = 3.0  # a second cluster that is not running must not slow every check down
START_IT = "start it with `make cluster OFFLINE=1 CNI=flannel` or online `make cluster CNI=flannel`"
NO_SECOND = "not probed: no second cluster"  # how every record of a comparison that was not made begins

_connections: dict[str, object] = {}


@dataclass(frozen=True)
class Missing:
    """No second cluster answered: which contexts were tried and why each was passed over."""

    tried: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        why = f" (tried {'; '.join(self.reasons)})" if self.reasons else ""
        return f"{NO_SECOND} ({START_IT}){why}"


def kube_contexts(kubeconfig: str | None = None) -> list[str]:
    """The context names of the kubeconfig ($KUBECONFIG's first file, else ~/.kube/config); [] when unreadable."""
    from graders.cluster.preflight import kubeconfig_path  # standard library and yaml only

    try:
        config = yaml.safe_load(Path(kubeconfig_path(kubeconfig)).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    return [str(c.get("name")) for c in config.get("contexts") or [] if isinstance(c, dict) and c.get("name")]


def candidates(listed: Sequence[str], graded: str | None, present: Iterable[str]) -> tuple[list[str], list[str]]:
    """(contexts to try in order, why others were passed over). The environment's choice replaces the list; the
    graded context is never its own comparison."""
    chosen = os.environ.get(ENV, "").strip()
    wanted = [chosen] if chosen else list(dict.fromkeys(listed))
    present = set(present)
    out, skipped = [], []
    for context in wanted:
        if context == graded:
            skipped.append(f"{context}: the graded cluster itself")
        elif context not in present:
            skipped.append(f"{context}: not in the kubeconfig")
        else:
            out.append(context)
    return out, skipped


def _connect(context: str, timeout: float):
    from graders.cluster import Cluster

    cluster = Cluster.connect(context, timeout=timeout)
    if os.environ.get(PREPARED_ENV):  # the safe autograder's scoped credentials: its harness made the namespaces
        from graders.cluster.prepared import PreparedCluster

        return PreparedCluster(cluster)
    return cluster


def find_for(listed: Sequence[str], graded: str | None, *, connect: Callable[[str, float], object] | None = None,
             present: Iterable[str] | None = None, timeout: float = CONNECT_TIMEOUT):
    """The first listed context that answers, as a connected cluster; or ``Missing``."""
    contexts, reasons = candidates(listed, graded, kube_contexts() if present is None else present)
    for context in contexts:
        if context in _connections:
            return _connections[context]
        try:
            cluster = (connect or _connect)(context, timeout)
        except K8sLabError as error:
            reasons.append(f"{context}: {error.message}")
            continue
        _connections[context] = cluster
        return cluster
    return Missing(tuple(dict.fromkeys(os.environ.get(ENV, "").split() or listed)), tuple(reasons))


def find(ctx, **kwargs):
    """``find_for`` with the lab's ``compare_with`` and the graded cluster's context."""
    from graders import spec

    listed = spec.load_lab(ctx.spec.lab, ctx.spec.root).compare_with
    return find_for(listed, getattr(ctx.cluster, "context", None), **kwargs)


def forget() -> None:
    """Drop the cached connections (tests; a notebook whose second cluster was recreated)."""
    _connections.clear()


@contextlib.contextmanager
def prepared(ctx, second, namespaces: Sequence[str], kinds: Iterable[str] = ()) -> Iterator[list[str]]:
    """The lab's ``namespaces`` on the ``second`` cluster, reset and stamped with this run's id, for the ``with``
    block; afterwards emptied and deleted, emptied (the grader's pods stay) or kept, as ``ctx.teardown`` says.
    Yields a list the block may read after it ends: a note when the cleanup failed."""
    kinds = tuple(kinds)
    notes: list[str] = []
    with runlock.exclusive(second.context):
        second.reset_namespaces(list(namespaces), ctx.run_id or None, kinds=kinds, keep_fixtures=True)
        try:
            yield notes
        finally:
            teardown = getattr(ctx, "teardown", "delete")
            try:
                if teardown != "keep":
                    second.empty_namespaces(list(namespaces), kinds=kinds, keep_fixtures=teardown == "empty")
                if teardown == "delete":
                    second.delete_namespaces(list(namespaces), wait=False)
            except K8sLabError as error:
                notes.append(f"cleanup on {second.context} failed: {error.message}")
