"""A fake cluster for unit tests: `graders.cluster.ClusterAPI` in memory, recording the calls that change something.

``test_cluster_api.py`` checks it keeps the protocol's (and the real Cluster's) method names and parameters.
Objects are stored as the dicts that were applied; reads return them as attribute views (``pod.status.pod_ip``),
like the kubernetes client's models, where an unset field reads as None.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from graders.cluster import FIXTURE_LABEL, OWNED_LABEL, RUN_LABEL, Endpoint, PodProblem, diagnose_pod, stamp_fixture
from graders.errors import ClusterError, NotReady


def ref_of(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def _snake(key: str) -> str:
    """podIP -> pod_ip, nodeName -> node_name: the client's attribute names for the API's field names."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key)).lower()


class Model:
    """A dict read like a kubernetes client model: snake_case attributes, None for what is not set."""

    def __init__(self, data: Mapping) -> None:
        self._data = {_snake(key): value for key, value in data.items()}

    def __getattr__(self, name: str):
        value = self._data.get(name)
        if isinstance(value, Mapping):
            return Model(value) if name not in ("labels", "annotations", "selector", "node_selector") else dict(value)
        if isinstance(value, list):
            return [Model(v) if isinstance(v, Mapping) else v for v in value]
        return value


class FakeCluster:
    """In-memory stand-in. ``rejections`` maps "Kind ns/name" to the API server's message for dry-run/apply;
    ``not_ready`` lists diagnoses wait_ready raises; ``foreign`` namespaces exist but are not ours; ``nodes``
    are (name, InternalIP); ``service_endpoints`` maps "ns/service" to its endpoints."""

    def __init__(self, *, rejections: dict[str, str] | None = None, not_ready: Sequence[str] = (),
                 foreign: Iterable[str] = (), context: str = "kind-fake",
                 nodes: Sequence[tuple[str, str]] = (("k8slab-control-plane", "172.18.0.2"),
                                                     ("k8slab-worker", "172.18.0.3"),
                                                     ("k8slab-worker2", "172.18.0.4")),
                 service_endpoints: Mapping[str, Sequence[Endpoint]] | None = None) -> None:
        self.context = context
        self.server = "https://127.0.0.1:6443"
        self.timeout = 5
        self.rejections = dict(rejections or {})
        self.not_ready = list(not_ready)
        self.namespaces: dict[str, dict[str, str]] = {name: {} for name in foreign}
        self.objects: dict[str, dict] = {}
        self.nodes = list(nodes)
        self.service_endpoints = {key: list(eps) for key, eps in (service_endpoints or {}).items()}
        self.calls: list[tuple] = []
        self.reused: list[str] = []  # fixture pods ensure_pods kept from an earlier run

    # --- connecting
    @classmethod
    def connect(cls, context: str | None = None, timeout: float = 5, kubeconfig: str | None = None) -> "FakeCluster":
        return cls(context=context or "kind-fake")

    def server_version(self) -> str:
        return "v1.34.4"

    # --- namespaces
    def _check_owned(self, name: str, action: str) -> None:
        if name in self.namespaces and self.namespaces[name].get(OWNED_LABEL) != "true":
            raise ClusterError(f"refusing to {action} Namespace {name}: not created by the grader",
                               ref=f"Namespace {name}", reason="NotOwned")

    def require_owned(self, name: str) -> None:
        if name not in self.namespaces:
            raise ClusterError(f"Namespace {name} does not exist: graders only write into namespaces they created")
        self._check_owned(name, "write into")

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        return dict(self.namespaces[name]) if name in self.namespaces else None

    def label_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        self.calls.append(("label_namespace", name, dict(labels)))
        self.require_owned(name)
        self.namespaces[name].update(labels)

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:
        self.calls.append(("ensure_owned_namespace", name))
        self._check_owned(name, "use")
        self.namespaces.setdefault(name, {OWNED_LABEL: "true", RUN_LABEL: run_id or ""})

    def delete_namespaces(self, names: Iterable[str], wait: bool = True, timeout: float = 90) -> None:
        names = list(names)
        self.calls.append(("delete_namespaces", tuple(names)))
        for name in names:
            if name not in self.namespaces:
                continue
            self._check_owned(name, "delete")
            del self.namespaces[name]
            self.objects = {k: v for k, v in self.objects.items() if v["metadata"].get("namespace") != name}

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = (),
                         labels: Mapping[str, Mapping[str, str]] | None = None, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        """Like the real one: an existing namespace of ours is emptied and relabelled, a missing one created; the
        Deployments of `keep_deployments` stay (their pods are not modelled here)."""
        self.calls.append(("reset_namespaces", tuple(names)))
        self.kept_deployments = dict(keep_deployments or {})
        for name in names:
            self.ensure_owned_namespace(name, run_id)
            self.namespaces[name].update({**((labels or {}).get(name) or {}), RUN_LABEL: run_id or ""})
        self._empty(names, keep_fixtures, self.kept_deployments)

    def empty_namespaces(self, names: Sequence[str], kinds: Iterable[str] = (), timeout: float = 60,
                         keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        self.calls.append(("empty_namespaces", tuple(names)))
        for name in names:
            self.require_owned(name)
        self._empty(names, keep_fixtures, keep_deployments)

    def _empty(self, names: Sequence[str], keep_fixtures: bool = False,
               keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        def kept(obj: dict) -> bool:
            meta = obj["metadata"]
            return meta.get("namespace") not in names or (
                keep_fixtures and FIXTURE_LABEL in (meta.get("labels") or {})) or (
                obj.get("kind") == "Deployment"
                and meta.get("name") in (keep_deployments or {}).get(meta.get("namespace"), ()))
        self.objects = {k: v for k, v in self.objects.items() if kept(v)}

    def ensure_pods(self, pods: Sequence[dict], timeout: float = 60) -> None:
        """Like the real one: an unchanged fixture pod is kept (and counted in `reused`), others (re)applied."""
        self.calls.append(("ensure_pods", tuple(ref_of(p) for p in pods)))
        fresh = []
        for pod in map(stamp_fixture, pods):
            live = self.objects.get(ref_of(pod))
            if live is not None and live["metadata"]["labels"].get(FIXTURE_LABEL) == \
                    pod["metadata"]["labels"][FIXTURE_LABEL]:
                self.reused.append(ref_of(pod))
                continue
            fresh.append(pod)
        if fresh:
            self.apply(fresh)

    def owned_namespaces(self) -> list[str]:
        return sorted(n for n, labels in self.namespaces.items() if labels.get(OWNED_LABEL) == "true")

    def check_run(self, namespaces: Sequence[str], run_id: str) -> None:
        for name in namespaces if run_id else ():
            if (self.namespaces.get(name) or {}).get(RUN_LABEL) != run_id:
                raise ClusterError(f"Namespace {name} was taken over by another grading run", reason="Concurrent")

    def namespace_names(self) -> set[str]:
        return set(self.namespaces)

    # --- apply
    def _admit(self, objs: Sequence[dict], doing: str) -> None:
        for obj in objs:
            self.require_owned(obj["metadata"].get("namespace"))
            if ref_of(obj) in self.rejections:
                raise ClusterError(f"{doing} {ref_of(obj)}: {self.rejections[ref_of(obj)]}", reason="Invalid")

    def dry_run(self, objs: Sequence[dict]) -> list[dict]:
        self.calls.append(("dry_run", tuple(ref_of(o) for o in objs)))
        self._admit(objs, "dry-run applying")
        return list(objs)

    def apply(self, objs: Sequence[dict]) -> list[dict]:
        self.calls.append(("apply", tuple(ref_of(o) for o in objs)))
        self._admit(objs, "applying")
        for obj in objs:
            self.objects[ref_of(obj)] = obj
        return list(objs)

    def delete(self, obj: dict) -> None:
        self.calls.append(("delete", ref_of(obj)))
        self.objects.pop(ref_of(obj), None)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        return self.objects.get(f"{kind} {namespace + '/' if namespace else ''}{name}")

    # --- reads
    def _of_kind(self, kind: str, namespace: str | None) -> list[Model]:
        return [Model(o) for o in self.objects.values()
                if o["kind"] == kind and namespace in (None, o["metadata"].get("namespace"))]

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list:
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [p for p in self._of_kind("Pod", namespace)
                if all((p.metadata.labels or {}).get(k) == v for k, v in wanted.items())]

    def get_pod(self, namespace: str, name: str):
        obj = self.get("v1", "Pod", namespace, name)
        return Model(obj) if obj is not None else None

    def list_services(self, namespace: str) -> list:
        return self._of_kind("Service", namespace)

    def get_service(self, namespace: str, name: str):
        obj = self.get("v1", "Service", namespace, name)
        return Model(obj) if obj is not None else None

    def find_services(self, label_selector: str) -> list:
        wanted = dict(term.split("=", 1) for term in label_selector.split(","))
        return [s for s in self._of_kind("Service", None)
                if all((s.metadata.labels or {}).get(k) == v for k, v in wanted.items())]

    def list_endpointslices(self, namespace: str, service: str | None = None) -> list:
        return [Model({"metadata": {"name": key.split("/", 1)[1], "namespace": namespace},
                       "endpoints": [{"addresses": [e.ip], "nodeName": e.node, "conditions": {"ready": e.ready},
                                      "targetRef": {"kind": "Pod", "name": e.pod} if e.pod else None}
                                     for e in eps]})
                for key, eps in self.service_endpoints.items()
                if key.split("/", 1)[0] == namespace and service in (None, key.split("/", 1)[1])]

    def endpoints(self, namespace: str, service: str) -> list[Endpoint]:
        return sorted(self.service_endpoints.get(f"{namespace}/{service}", []), key=lambda e: e.pod or e.ip)

    def list_nodes(self) -> list:
        return [Model({"metadata": {"name": name}, "spec": {"taints": []},
                       "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                                  "conditions": [{"type": "Ready", "status": "True"}], "images": []}})
                for name, ip in self.nodes]

    def node_addresses(self) -> list[tuple[str, str]]:
        return sorted(self.nodes)

    def list_events(self, namespace: str, involved: str | None = None, kind: str = "Pod") -> list:
        return []

    def list_deployments(self, namespace: str) -> list:
        return self._of_kind("Deployment", namespace)

    def pod_logs(self, namespace: str, name: str, container: str | None = None, previous: bool = False,
                 tail: int = 5) -> str:
        return ""

    def ingress_classes(self) -> list[str]:
        return []

    # --- readiness and exec
    def wait_ready(self, namespaces: Sequence[str], timeout: float = 90, poll: float = 0.5,
                   progress: Callable[[list], None] | None = None) -> None:
        self.calls.append(("wait_ready", tuple(namespaces), timeout))
        if self.not_ready:
            raise NotReady("cannot become ready: " + "; ".join(self.not_ready), diagnoses=self.not_ready,
                           hint="check the image name and tag for typos")

    def diagnose_pod(self, pod) -> PodProblem | None:
        return diagnose_pod(pod)

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: float = 10,
             container: str | None = None) -> tuple[int, str, str]:
        self.calls.append(("exec", f"{namespace}/{pod}", tuple(argv)))
        return 0, "", ""
