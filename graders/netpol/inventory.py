"""Namespaces, pods and policies read from their documents (Namespace, Pod, workloads, NetworkPolicy)."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graders.netpol.compile import Policy, compile_policy
from graders.netpol.fields import PolicyError, object_ref, read_int, read_list, read_protocol
from graders.netpol.pods import ContainerPort, Namespace, Pod
from graders.netpol.selectors import label_value

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Kinds whose pod template stands for its pods: one representative pod "<ns>/<workload-name>" each.
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController")


def _ports_of(spec: Mapping[str, Any], where: str) -> tuple[ContainerPort, ...]:
    ports = []
    for c, container in enumerate(read_list(spec.get("containers"), f"{where}.containers"), start=1):
        if not isinstance(container, Mapping):
            continue
        for p, port in enumerate(read_list(container.get("ports"), f"{where}.containers[{c}].ports"), start=1):
            here = f"{where}.containers[{c}].ports[{p}]"
            if not isinstance(port, Mapping) or "containerPort" not in port:
                raise ValueError(f"{here}: needs containerPort")
            ports.append(ContainerPort(
                read_int(port["containerPort"], f"{here}.containerPort"),
                read_protocol(port.get("protocol"), here),
                str(port.get("name") or ""),
            ))
    return tuple(ports)


def _pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


def pod_from_object(obj: Mapping[str, Any], default_namespace: str = "default") -> Pod:
    """A Pod, or the one representative pod of a workload (named after the workload, with its template's
    labels and container ports; it has no IP, so ipBlock rules never match it)."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    try:
        if not meta.get("name"):
            raise ValueError("metadata.name is missing")
        if kind == "Pod":
            labels, spec = meta.get("labels") or {}, obj.get("spec") or {}
            status = obj.get("status") or {}
            ips = [status.get("podIP")] + [i.get("ip") for i in read_list(status.get("podIPs"), "status.podIPs")
                                           if isinstance(i, Mapping)]
            ips = tuple(dict.fromkeys(str(ip) for ip in ips if ip))
            for ip in ips:
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    raise ValueError(f"status.podIP: {ip!r} is not an IP address") from None
            where = "spec"
        else:
            template = _pod_template(obj)
            labels, spec, ips = (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}, ()
            where = "spec.template.spec"
        if not isinstance(labels, Mapping):
            raise ValueError("labels must be a mapping")
        return Pod(
            namespace=meta.get("namespace") or default_namespace,
            name=str(meta["name"]),
            labels={str(k): label_value(v) for k, v in labels.items()},
            ips=ips,
            ports=_ports_of(spec, where),
            kind=str(kind),
        )
    except ValueError as err:
        raise PolicyError(f"{object_ref(obj, default_namespace)}: {err}", obj=obj) from None


@dataclass(frozen=True)
class Inventory:
    """Everything the engine reasons about. Pods are sorted by ``ns/name`` so every matrix has one order."""

    namespaces: Mapping[str, Namespace]
    pods: tuple[Pod, ...]
    policies: tuple[Policy, ...]

    def namespace_of(self, pod: Pod) -> Namespace:
        return self.namespaces[pod.namespace]


def inventory_from_objects(objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> Inventory:
    """Read Namespace, Pod, workload and NetworkPolicy documents; every other kind is ignored.

    Every namespace carries ``kubernetes.io/metadata.name=<name>`` (the API server sets it, so we do too);
    namespaces that pods or policies live in but no document declares exist with just that label.
    """
    declared: dict[str, dict[str, str]] = {}
    pods: dict[str, Pod] = {}
    policies: dict[str, Policy] = {}
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Namespace":
            meta = obj.get("metadata") or {}
            if not meta.get("name"):
                raise PolicyError(f"{object_ref(obj, '')}: metadata.name is missing", obj=obj)
            labels = meta.get("labels") or {}
            declared[meta["name"]] = {str(k): label_value(v) for k, v in labels.items()}
        elif kind == "Pod" or kind in WORKLOAD_KINDS:
            pod = pod_from_object(obj, default_namespace)
            if pod.key in pods:
                first = pods[pod.key]
                raise PolicyError(f"{kind} {pod.key}: a second pod named {pod.key} (the first came from "
                                  f"{first.kind} {pod.key}); pod and workload names must be unique", obj=obj)
            pods[pod.key] = pod
        elif kind == "NetworkPolicy":
            policy = compile_policy(obj, default_namespace)
            if str(policy.ref) in policies:
                raise PolicyError(f"NetworkPolicy {policy.ref}: defined twice", obj=obj)
            policies[str(policy.ref)] = policy
    names = set(declared) | {p.namespace for p in pods.values()} | {p.ref.namespace for p in policies.values()}
    namespaces = {
        name: Namespace(name, {**declared.get(name, {}), NAMESPACE_NAME_LABEL: name}, name in declared)
        for name in sorted(names)
    }
    ordered = tuple(sorted(pods.values(), key=lambda p: (p.namespace, p.name)))
    return Inventory(namespaces, ordered, tuple(policies.values()))


def pod_document(pod: Any) -> dict:
    """A live pod (the API client's ``V1Pod``) as the document ``pod_from_object`` reads: labels, container
    ports and its address."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
                         "labels": dict(pod.metadata.labels or {})},
            "spec": {"containers": [{"ports": [{"name": p.name, "containerPort": p.container_port,
                                                "protocol": p.protocol or "TCP"} for p in (c.ports or [])]}
                                    for c in pod.spec.containers]},
            "status": {"podIP": pod.status.pod_ip}}
