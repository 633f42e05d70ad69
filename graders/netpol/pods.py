"""The things policies talk about: namespaces and pods (a workload's template stands for its pods)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    declared: bool = True  # False: only referenced by a pod or policy; exists with just the name label


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()  # status.podIP(s); a pod with no IP never matches an ipBlock
    ports: tuple[ContainerPort, ...] = ()
    kind: str = "Pod"  # or the workload kind whose template it stands for

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> ContainerPort | None:
        return next((p for p in self.ports if p.name == name and p.protocol == protocol), None)
