"""``MappedCluster``: the cluster as a lab's checks see it under a ``NamespaceMap`` -- in the lab's names.

Why: lab graders are written for fixed namespaces (lab 05 reads ``production/web``, builds ``api.production.svc``
names, applies its fixture pods into ``staging``). Grading many submissions at once gives each run real names of
its own; rather than teach every lab about them, the checks get this wrapper: every namespace argument and every
object sent goes to the real name, and everything read back (objects, models, exec output, errors) comes back in
the logical names. The engine's own steps use the unwrapped cluster with the real names.

Each ``ClusterAPI`` method is declared in ``SIGNATURES`` with what its parameters hold; a method not declared
there and not in ``PASS_THROUGH`` does not exist on the wrapper (AttributeError), so a new cluster method can
neither leak real names to a check nor bypass the mapping (tests/unit/test_nscluster.py enumerates them).
"""
from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from graders import nsview
from graders.cluster.api import ClusterAPI
from graders.errors import K8sLabError
from graders.nsmap import NamespaceMap

# What one parameter holds, and so how it is mapped on its way to the cluster.
NAMESPACE = "namespace"      # one namespace name
NAMESPACES = "namespaces"    # a sequence of namespace names
KEYED = "keyed"              # a mapping whose keys are namespace names
OBJECT = "object"            # one manifest (dict)
OBJECTS = "objects"          # a sequence of manifests
ARGV = "argv"                # a command run in a pod: DNS names inside it
MODEL = "model"              # something this wrapper handed out (a read pod): unwrapped again
CALLBACK = "callback"        # called back with what the cluster saw: given it in logical names

SIGNATURES: dict[str, dict[str, str]] = {
    # namespaces
    "ensure_owned_namespace": {"name": NAMESPACE},
    "reset_namespaces": {"names": NAMESPACES, "labels": KEYED, "keep_deployments": KEYED},
    "empty_namespaces": {"names": NAMESPACES, "keep_deployments": KEYED},
    "delete_namespaces": {"names": NAMESPACES},
    "owned_namespaces": {},
    "require_owned": {"name": NAMESPACE},
    "namespace_labels": {"name": NAMESPACE},
    "label_namespace": {"name": NAMESPACE},
    "check_run": {"namespaces": NAMESPACES},
    "namespace_names": {},
    # objects
    "dry_run": {"objs": OBJECTS},
    "apply": {"objs": OBJECTS},
    "ensure_pods": {"pods": OBJECTS},
    "delete": {"obj": OBJECT},
    "get": {"namespace": NAMESPACE},
    # reads
    "list_pods": {"namespace": NAMESPACE},
    "get_pod": {"namespace": NAMESPACE},
    "list_services": {"namespace": NAMESPACE},
    "get_service": {"namespace": NAMESPACE},
    "find_services": {},
    "list_endpointslices": {"namespace": NAMESPACE},
    "endpoints": {"namespace": NAMESPACE},
    "list_nodes": {},
    "node_addresses": {},
    "list_events": {"namespace": NAMESPACE},
    "list_deployments": {"namespace": NAMESPACE},
    "pod_logs": {"namespace": NAMESPACE},
    "ingress_classes": {},
    # readiness and exec
    "wait_ready": {"namespaces": NAMESPACES, "progress": CALLBACK},
    "diagnose_pod": {"pod": MODEL},
    "exec": {"namespace": NAMESPACE, "argv": ARGV},
}

# Attributes that name no namespace: read from the wrapped cluster as they are.
PASS_THROUGH = frozenset({"context", "server", "timeout", "connect_seconds", "server_version", "timeouts"})


class MappedCluster:
    """``cluster`` seen through ``nsmap`` (see the module doc). ``real`` is the wrapped cluster."""

    def __init__(self, cluster: ClusterAPI, nsmap: NamespaceMap) -> None:
        self.real = cluster
        self.nsmap = nsmap

    def __getattr__(self, name: str):
        if name in PASS_THROUGH:
            return getattr(self.real, name)
        raise AttributeError(f"{type(self).__name__} does not offer {name!r}: declare it in graders/nscluster.py "
                             f"(SIGNATURES, or PASS_THROUGH when it names no namespace)")

    # ---- each direction ----------------------------------------------------------------------------------

    def to_real(self, kind: str, value: Any) -> Any:
        nsmap = self.nsmap
        if value is None:
            return None
        if kind == NAMESPACE:
            return nsmap.real(value)
        if kind == NAMESPACES:
            return [nsmap.real(name) for name in value]
        if kind == KEYED:
            return {nsmap.real(name): item for name, item in value.items()}
        if kind == OBJECT:
            return nsmap.to_real(value)
        if kind == OBJECTS:
            return [nsmap.to_real(obj) for obj in value]
        if kind == ARGV:
            return [nsmap.dns_text_to_real(arg) for arg in value]
        if kind == MODEL:
            return value.wrapped if isinstance(value, LogicalView) else value
        if kind == CALLBACK:
            return lambda *args: value(*(self.to_logical(arg) for arg in args))
        raise ValueError(f"unknown parameter kind {kind!r}")

    def to_logical(self, value: Any) -> Any:
        """What the cluster returned, in logical names: plain data rebuilt, client models behind a view."""
        return logical(value, self._text)

    def _text(self, text: str) -> str:
        return self.nsmap.text_to_logical(text)

    def _error(self, error: K8sLabError) -> K8sLabError:
        """The same error, its words in logical names (a check may quote or match them)."""
        error.args = tuple(nsview.translate(arg, self._text) for arg in error.args)
        for key, value in vars(error).items():
            setattr(error, key, nsview.translate(value, self._text))
        return error


def _mapped(name: str, params: Mapping[str, str]) -> Callable:
    signature = inspect.signature(getattr(ClusterAPI, name))

    @functools.wraps(getattr(ClusterAPI, name))
    def method(self: MappedCluster, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        for param, kind in params.items():
            if param in bound.arguments:
                bound.arguments[param] = self.to_real(kind, bound.arguments[param])
        try:
            answer = getattr(self.real, name)(*bound.args[1:], **bound.kwargs)
        except K8sLabError as error:
            raise self._error(error) from None
        return self.to_logical(answer)

    return method


for _name, _params in SIGNATURES.items():
    setattr(MappedCluster, _name, _mapped(_name, _params))


class LogicalView:
    """A read-only view of a kubernetes client model (``V1Pod`` ...): attributes read as the model's, every
    string in logical names, nested models behind views too. ``wrapped`` is the model itself."""

    __slots__ = ("wrapped", "_text")

    def __init__(self, wrapped: Any, text: Callable[[str], str]) -> None:
        object.__setattr__(self, "wrapped", wrapped)
        object.__setattr__(self, "_text", text)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if callable(value) and not isinstance(value, type):
            raise AttributeError(f"{name}() of a cluster object is not offered to checks: read its fields")
        return logical(value, self._text)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("objects read from the cluster are read-only")

    def __eq__(self, other: object) -> bool:
        return self.wrapped == (other.wrapped if isinstance(other, LogicalView) else other)

    def __hash__(self) -> int:
        return hash(id(self.wrapped))

    def __repr__(self) -> str:
        return f"LogicalView({self.wrapped!r})"


_PLAIN = (int, float, bool, bytes, datetime.date, datetime.timedelta, enum.Enum)


def logical(value: Any, text: Callable[[str], str]) -> Any:
    """``value`` read from the cluster with ``text`` applied to its strings: containers and dataclasses (results
    such as ``Endpoint``) rebuilt, client models (anything else with attributes) behind a ``LogicalView``."""
    if value is None or isinstance(value, _PLAIN):
        return value
    # types decide, not attributes: a model may answer any attribute (the unit tests' fakes answer None)
    named_tuple = isinstance(value, tuple) and hasattr(type(value), "_fields")
    if isinstance(value, (str, set, frozenset)) or dataclasses.is_dataclass(value) or named_tuple:
        return nsview.translate(value, text)
    if isinstance(value, (list, tuple)):
        return type(value)(logical(item, text) for item in value)
    if isinstance(value, dict):
        return {logical(key, text): logical(item, text) for key, item in value.items()}
    return LogicalView(value, text)
