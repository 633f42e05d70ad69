"""A fake cluster for unit tests: the public methods of graders.cluster.Cluster, in memory, recording calls.

``test_fakes.py`` checks the method names and parameters stay in step with the real Cluster.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from graders.errors import ClusterError, NotReady

OWNED_LABEL = "k8slab.dev/owned"


def ref_of(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


class FakeCluster:
    """In-memory stand-in. ``rejections`` maps "Kind ns/name" to the API server's message for dry-run/apply;
    ``not_ready`` lists diagnoses wait_ready raises; ``foreign`` namespaces exist but are not ours."""

    def __init__(self, *, rejections: dict[str, str] | None = None, not_ready: Sequence[str] = (),
                 foreign: Iterable[str] = (), context: str = "kind-fake") -> None:
        self.context = context
        self.server = "https://127.0.0.1:6443"
        self.timeout = 5
        self.rejections = dict(rejections or {})
        self.not_ready = list(not_ready)
        self.namespaces: dict[str, dict[str, str]] = {name: {} for name in foreign}
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple] = []

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

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:
        self.calls.append(("ensure_owned_namespace", name))
        self._check_owned(name, "use")
        self.namespaces[name] = {OWNED_LABEL: "true", "k8slab.dev/run": run_id or ""}

    def delete_namespaces(self, names: Iterable[str], wait: bool = True, timeout: float = 90) -> None:
        names = list(names)
        self.calls.append(("delete_namespaces", tuple(names)))
        for name in names:
            if name not in self.namespaces:
                continue
            self._check_owned(name, "delete")
            del self.namespaces[name]
            self.objects = {k: v for k, v in self.objects.items() if v["metadata"].get("namespace") != name}

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = ()) -> None:
        """Like the real one: an existing namespace of ours is emptied and relabelled, a missing one created."""
        self.calls.append(("reset_namespaces", tuple(names)))
        for name in names:
            self.ensure_owned_namespace(name, run_id)
        self._empty(names)

    def empty_namespaces(self, names: Sequence[str], kinds: Iterable[str] = (), timeout: float = 60) -> None:
        self.calls.append(("empty_namespaces", tuple(names)))
        for name in names:
            if name not in self.namespaces:
                raise ClusterError(f"Namespace {name} does not exist: graders only write into namespaces they created")
            self._check_owned(name, "empty")
        self._empty(names)

    def _empty(self, names: Sequence[str]) -> None:
        self.objects = {k: v for k, v in self.objects.items() if v["metadata"].get("namespace") not in names}

    def owned_namespaces(self) -> list[str]:
        return sorted(n for n, labels in self.namespaces.items() if labels.get(OWNED_LABEL) == "true")

    # --- apply
    def _admit(self, objs: Sequence[dict], doing: str) -> None:
        for obj in objs:
            namespace = obj["metadata"].get("namespace")
            if namespace not in self.namespaces:
                raise ClusterError(f"Namespace {namespace} does not exist: graders only write into namespaces they created")
            self._check_owned(namespace, "write into")
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

    def wait_ready(self, namespaces: Sequence[str], timeout: float = 90, poll: float = 1.0, progress=None) -> None:
        self.calls.append(("wait_ready", tuple(namespaces), timeout))
        if self.not_ready:
            raise NotReady("cannot become ready: " + "; ".join(self.not_ready), diagnoses=self.not_ready,
                           hint="check the image name and tag for typos")

    # --- reads
    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        return self.objects.get(f"{kind} {namespace + '/' if namespace else ''}{name}")

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None):
        return [o for o in self.objects.values() if o["kind"] == "Pod"
                and (namespace is None or o["metadata"].get("namespace") == namespace)]

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: float = 10,
             container: str | None = None) -> tuple[int, str, str]:
        self.calls.append(("exec", f"{namespace}/{pod}", tuple(argv)))
        return 0, "", ""
