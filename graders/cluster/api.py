"""What graders may ask of a cluster: the `ClusterAPI` protocol and the small results it returns.

The real `Cluster`, the autograder's prepared cluster and the unit tests' fakes all implement it; the engine, the
lab modules, the probes and the doctor are written against it. Objects returned by the `list_*`/`get_*` reads are
the kubernetes client's models (`V1Pod`, `V1Service`, ...), read by attribute.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from graders.cluster.diagnosis import PodProblem


@dataclass(frozen=True)
class Endpoint:
    """One address behind a Service, from its EndpointSlices."""
    ip: str
    pod: str                 # the target pod's name, "" when the endpoint is not a pod
    node: str
    ready: bool
    ports: tuple[tuple[str, int], ...] = ()   # (port name, port) of the slice


@runtime_checkable
class ClusterAPI(Protocol):
    """A connection to one cluster. Every write is refused outside namespaces labelled k8slab.dev/owned=true;
    every error is a `graders.errors.ClusterError` naming the object and what we were doing."""

    context: str

    # namespaces
    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None: ...

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = (),
                         labels: Mapping[str, Mapping[str, str]] | None = None, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None: ...

    def empty_namespaces(self, names: Sequence[str], kinds: Iterable[str] = (), timeout: float = 60,
                         keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None: ...

    def delete_namespaces(self, names: Iterable[str], wait: bool = True, timeout: float = 90) -> None: ...

    def owned_namespaces(self) -> list[str]: ...

    def require_owned(self, name: str) -> None: ...

    def namespace_labels(self, name: str) -> dict[str, str] | None: ...

    def label_namespace(self, name: str, labels: Mapping[str, str]) -> None: ...

    def check_run(self, namespaces: Sequence[str], run_id: str) -> None: ...

    def namespace_names(self) -> set[str]: ...

    # objects
    def dry_run(self, objs: Sequence[dict]) -> list[dict]: ...

    def apply(self, objs: Sequence[dict]) -> list[dict]: ...

    def ensure_pods(self, pods: Sequence[dict], timeout: float = 60) -> None: ...

    def delete(self, obj: dict) -> None: ...

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None: ...

    # reads
    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list: ...

    def get_pod(self, namespace: str, name: str) -> Any: ...

    def list_services(self, namespace: str) -> list: ...

    def get_service(self, namespace: str, name: str) -> Any: ...

    def find_services(self, label_selector: str) -> list: ...

    def list_endpointslices(self, namespace: str, service: str | None = None) -> list: ...

    def endpoints(self, namespace: str, service: str) -> list[Endpoint]: ...

    def list_nodes(self) -> list: ...

    def node_addresses(self) -> list[tuple[str, str]]: ...

    def list_events(self, namespace: str, involved: str | None = None, kind: str = "Pod") -> list: ...

    def list_deployments(self, namespace: str) -> list: ...

    def pod_logs(self, namespace: str, name: str, container: str | None = None, previous: bool = False,
                 tail: int = 5) -> str: ...

    def ingress_classes(self) -> list[str]: ...

    # readiness and exec
    def wait_ready(self, namespaces: Sequence[str], timeout: float = 90, poll: float = 0.5,
                   progress: Callable[[list], None] | None = None) -> None: ...

    def diagnose_pod(self, pod: Any) -> PodProblem | None: ...

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: float = 10,
             container: str | None = None) -> tuple[int, str, str]: ...
