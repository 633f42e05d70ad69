"""Keep a Deployment that the next submission applies unchanged, instead of deleting and restarting it.

Why: grading a whole lab runs its exercises one after another in one namespace, each from a clean slate; when
they share their backends (lab 04: the same api and frontend in eight exercises), most of a run's time went into
deleting those pods and waiting for identical new ones (about 3 s an exercise on the course's 2-core machine).
A Deployment is kept only when the object the submission applies is exactly the one running -- the engine stamps
every Deployment it applies with a hash of its content -- and that Deployment is fully rolled out and ready.
Labs opt in (lab.yaml ``reuse_unchanged_workloads: true``) when no check of theirs changes a backend's pods.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

APPLIED_HASH = "k8slab.dev/applied-hash"   # on the Deployment's metadata only: its pods never show it


def content_hash(obj: Mapping[str, Any]) -> str:
    """A hash of what the submission asks for (the stamp itself left out)."""
    plain = json.loads(json.dumps(obj))
    meta = plain.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    annotations.pop(APPLIED_HASH, None)
    if not annotations:
        meta.pop("annotations", None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:32]


def stamped(obj: Mapping[str, Any]) -> dict:
    """The object with its content hash in an annotation (a copy; the submission's object is not changed)."""
    out = json.loads(json.dumps(obj))
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH: content_hash(obj)}
    return out


def rolled_out(live: Mapping[str, Any]) -> bool:
    """Every replica of the current template updated, ready and available, and the controller caught up."""
    meta, spec, status = live.get("metadata") or {}, live.get("spec") or {}, live.get("status") or {}
    want = spec.get("replicas", 1)
    return (status.get("observedGeneration", 0) >= meta.get("generation", 1)
            and all(status.get(k, 0) == want for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                       "availableReplicas")))


def reusable(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether the running Deployment ``live`` is the one ``wanted`` would create, and ready to serve."""
    if not live:
        return False
    stamp = ((live.get("metadata") or {}).get("annotations") or {}).get(APPLIED_HASH)
    return stamp == content_hash(wanted) and rolled_out(live)


def keep(deployments: Sequence[tuple[str, str, Mapping[str, Any]]], get) -> dict[str, list[str]]:
    """{namespace: [name]} of the submission's Deployments ((namespace, name, object)) that run unchanged;
    ``get(namespace, name)`` reads the live object (None when absent)."""
    kept: dict[str, list[str]] = {}
    for namespace, name, obj in deployments:
        if reusable(get(namespace, name), obj):
            kept.setdefault(namespace, []).append(name)
    return kept
