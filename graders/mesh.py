"""The service mesh on a cluster, and the mesh a submission is written for.

Lab 06 runs only where a mesh runs: Istio (``istiod`` in ``istio-system``) or Linkerd (``linkerd-destination`` in
``linkerd``), installed online by ``make mesh MESH=istio|linkerd`` (graders/meshplan.py). The offline cluster has
none, and cannot have one: no mesh data plane can be built from the sources it is built from (Envoy needs Bazel and
is not in Debian; linkerd2-proxy and ztunnel are Rust projects not published as crates). ``detect`` says which mesh
answers; an exercise whose spec says ``requires: mesh`` is reported "not graded" by the engine on a cluster without
one (``NEEDS_MESH``): never a pass, never a failure of the learner's files, and nothing is applied.

``variant_meshes`` says which mesh a solution, alternative or mistake directory is written for (by its name: an
``istio-...`` variant works on Istio only; the others on either): the live tests grade a variant only on the mesh it
is written for. ``api_meshes`` lists the meshes whose API groups a submission uses (a unit test holds the names to
it).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graders.errors import K8sLabError

ISTIO, LINKERD = "istio", "linkerd"


@dataclass(frozen=True)
class MeshKind:
    """One mesh as this course installs and recognises it."""

    name: str           # "istio" | "linkerd": MESH= of `make mesh`
    title: str          # "Istio"
    namespace: str      # where its control plane runs
    deployment: str     # the control-plane Deployment whose readiness says the mesh answers
    proxy: str          # the container the injector adds to a meshed pod
    groups: tuple[str, ...]  # API groups of its own resources (suffixes)


KINDS = (MeshKind(ISTIO, "Istio", "istio-system", "istiod", "istio-proxy", (".istio.io",)),
         MeshKind(LINKERD, "Linkerd", "linkerd", "linkerd-destination", "linkerd-proxy", (".linkerd.io",)))
BY_NAME = {k.name: k for k in KINDS}
PROXIES = frozenset(k.proxy for k in KINDS)

# What the engine reports for every exercise with ``requires: mesh`` on a cluster without a mesh.
NEEDS_MESH = ("not graded: needs the online cluster with a mesh (Istio or Linkerd) — run `make mesh MESH=istio` "
              "(or `make mesh MESH=linkerd`) on the course cluster made online with `make cluster`")
NEEDS_MESH_HINT = ("this cluster runs no mesh control plane (no istiod in istio-system, no linkerd-destination in "
                   "linkerd). The offline cluster cannot have one: no mesh data plane (Envoy, linkerd2-proxy, "
                   "ztunnel) can be built from the sources it is built from. Your files passed the offline checks; "
                   "nothing was applied")


@dataclass(frozen=True)
class Mesh:
    """The mesh that answers on a cluster."""

    kind: MeshKind
    version: str = ""   # the control plane's image tag ("1.28.3", "edge-25.11.3"); "" when unreadable

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def proxy(self) -> str:
        return self.kind.proxy

    @property
    def title(self) -> str:
        return f"{self.kind.title} {self.version}".strip()


@dataclass(frozen=True)
class Undetermined:
    """The control planes' namespaces could not be read (an autograder's namespace-scoped credentials): grading goes
    ahead, and the live checks tell what they see."""

    reason: str


def _ready(deployment: Mapping) -> bool:
    status = deployment.get("status") or {}
    return int(status.get("readyReplicas") or status.get("availableReplicas") or 0) >= 1


def _version(deployment: Mapping) -> str:
    """The tag of the control plane's own image (not an injected proxy's, which a Linkerd pod lists first)."""
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for container in sorted(containers, key=lambda c: str(c.get("name")) in PROXIES):
        image = str(container.get("image") or "").split("@", 1)[0]
        tail = image.rsplit("/", 1)[-1]
        if ":" in tail:
            return tail.rsplit(":", 1)[1]
    return ""


def detect(cluster) -> Mesh | Undetermined | None:
    """The mesh whose control plane is ready on ``cluster`` (Istio first if, unusually, both are); None when neither
    runs; Undetermined when neither namespace could be read."""
    errors = []
    for kind in KINDS:
        try:
            found = cluster.get("apps/v1", "Deployment", kind.namespace, kind.deployment)
        except K8sLabError as error:
            errors.append(f"{kind.namespace}/{kind.deployment}: {error.message}")
            continue
        if found and _ready(found):
            return Mesh(kind, _version(found))
    if len(errors) == len(KINDS):
        return Undetermined("; ".join(errors))
    return None


def unmet(cluster) -> str:
    """Why ``cluster`` cannot grade an exercise that requires a mesh ("" when it can, or when it cannot tell)."""
    return NEEDS_MESH if detect(cluster) is None else ""


# ------------------------------------------------------------------------------------------ submissions
def api_meshes(objects: Iterable[Any]) -> frozenset[str]:
    """The meshes whose own API groups (``*.istio.io``, ``*.linkerd.io``) a submission's objects use: such a
    submission can be admitted only where that mesh's CRDs are installed. ``objects``: manifests or dicts."""
    docs = [getattr(o, "obj", o) for o in objects]
    return frozenset(kind.name for d in docs for kind in KINDS
                     if any(str(d.get("apiVersion", "")).split("/", 1)[0].endswith(g) for g in kind.groups))


def variant_meshes(name: str) -> frozenset[str]:
    """The meshes a solution variant is written for, by its directory name: ``istio-...`` or ``linkerd-...`` for one
    mesh (its objects, labels or annotations mean something to that mesh only), anything else for either (a
    reference solution, the starter, a mistake that fails the same way on both)."""
    for kind in KINDS:
        if name == kind.name or name.startswith(kind.name + "-"):
            return frozenset({kind.name})
    return frozenset(BY_NAME)


def written_for(name: str, objects: Iterable[Any]) -> frozenset[str]:
    """The meshes a variant directory ``name`` holding ``objects`` works on: those its name allows, narrowed to the
    meshes whose API groups it uses (a reference solution made of Istio resources is Istio's). Empty means the
    name and the files disagree (a unit test keeps that from happening)."""
    used = api_meshes(objects)
    named = variant_meshes(name)
    return named & used if used else named
