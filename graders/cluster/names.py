"""The labels, ids and object references every grading run writes and every message uses."""
from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import time
import uuid
from collections.abc import Sequence

# A namespace carrying OWNED_LABEL=true was created by the grader: the only kind graders write into or delete.
OWNED_LABEL = "k8slab.dev/owned"
# The id of the grading run that last reset a namespace (see `Cluster.check_run`).
RUN_LABEL = "k8slab.dev/run"
FIELD_MANAGER = "k8slab"
# On the grader's own pods (probe, client and world pods): the hash of the pod's manifest. A reset keeps such
# pods, and the next run reuses a pod whose hash is unchanged instead of starting it again (seconds saved per
# check). Submissions may not carry k8slab.dev/ keys (graders.manifests), so a learner's pod never survives a reset.
FIXTURE_LABEL = "k8slab.dev/fixture"


def stamp_fixture(pod: dict) -> dict:
    """A copy of `pod` labelled with FIXTURE_LABEL = a hash of everything else in it."""
    stamped = copy.deepcopy(pod)
    labels = stamped.setdefault("metadata", {}).setdefault("labels", {})
    labels.pop(FIXTURE_LABEL, None)
    digest = hashlib.sha256(json.dumps(stamped, sort_keys=True, default=str).encode()).hexdigest()[:16]
    labels[FIXTURE_LABEL] = digest
    return stamped


def new_run_id(owner: str = "") -> str:
    """A short id stamped on every namespace of one grading run (label k8slab.dev/run); ``owner`` (a label-safe
    word such as a student id, cut to 20 characters) says whose run it is."""
    middle = f"{owner[:20].strip('-_.')}-" if owner.strip("-_.") else ""
    return f"{time.strftime('%H%M%S')}-{middle}{uuid.uuid4().hex[:6]}"


def obj_ref(obj: dict, default_ns: str | None = None) -> str:
    """`Kind ns/name` (or `Kind name` for cluster-scoped objects) for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or default_ns
    name = meta.get("name", "<unnamed>")
    return f"{obj.get('kind', '<no kind>')} {ns + '/' if ns else ''}{name}"


def kubectl_command(args: str, context: str) -> str:
    """A kubectl line for a message, pinned to the kube context it is about (a learner may have several)."""
    return f"kubectl --context {shlex.quote(context)} {args}"


def pin_kubectl(text: str, context: str) -> str:
    """Every `kubectl ...` in a message, pinned to ``context`` (those already pinned stay as they are)."""
    return re.sub(r"\bkubectl (?!--context)", f"kubectl --context {shlex.quote(context)} ", text) if context else text


def kubectl_exec_command(context: str, namespace: str, pod: str, argv: Sequence[str], container: str = "") -> str:
    """A pasteable `kubectl exec` line reproducing a command (for humans; graders never run it); ``container`` for a
    pod with several (a meshed pod's proxy)."""
    chosen = f"-c {shlex.quote(container)} " if container else ""
    return (f"kubectl --context {shlex.quote(context)} exec -n {shlex.quote(namespace)} {shlex.quote(pod)} {chosen}-- "
            + " ".join(shlex.quote(a) for a in argv))
