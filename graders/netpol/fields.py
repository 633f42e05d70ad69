"""Fields of Kubernetes documents read as the API server reads them; errors name the object and the field."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graders.errors import K8sLabError

PROTOCOLS = ("TCP", "UDP", "SCTP")


class PolicyError(K8sLabError):
    """An object cannot be read as Kubernetes would read it. The message names the object (``Kind ns/name``);
    ``obj`` is the raw document so a front end can add the file and line it came from."""

    def __init__(self, message: str, *, obj: Mapping[str, Any] | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.obj = obj



def object_ref(obj: Mapping[str, Any], default_namespace: str) -> str:
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or default_namespace, meta.get("name", "<no name>")
    return f"{obj.get('kind', '<no kind>')} {namespace}/{name}"


def read_int(value: Any, where: str, low: int = 1, high: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{where}: {value} is outside {low}..{high}")
    return value


def read_protocol(value: Any, where: str) -> str:
    protocol = "TCP" if value is None else value
    if protocol not in PROTOCOLS:
        raise ValueError(f"{where}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return protocol


def read_list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return value
