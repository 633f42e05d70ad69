"""`Cluster`: the one client of the Kubernetes API (and of pod exec) that graders use.

Every error names the object (`Kind ns/name`) and what we were doing, and wraps the API's own words. Every wait is
bounded in time; nothing outside namespaces labelled `k8slab.dev/owned=true` is ever created, changed or deleted.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml

from graders.cluster.api import Endpoint
from graders.cluster.diagnosis import (PodProblem, diagnose_deployment, diagnose_pod, diagnose_statefulset,
                                       is_ready, parse_exec_status, problem_family, readiness_hint)
from graders.cluster.names import (FIELD_MANAGER, FIXTURE_LABEL, OWNED_LABEL, RUN_LABEL, obj_ref, pin_kubectl,
                                   stamp_fixture)
from graders.cluster.preflight import default_context, kubeconfig_path, preflight
from graders.errors import ClusterError, ClusterUnreachable, NotReady

# How long a namespace may take to disappear before a reset gives up.
NAMESPACE_GONE_TIMEOUT = 90
# How long emptying a namespace for the next run may take (pods are deleted without grace).
EMPTY_TIMEOUT = 60
# What a grading run can leave in its namespaces: the kinds a submission may hold, what controllers make from them,
# and the grader's own probe pods. Workloads come before Pods so that nothing recreates a deleted pod.
RESET_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "ReplicationController",
               "Pod", "Service", "EndpointSlice", "NetworkPolicy", "Ingress", "ConfigMap", "Secret", "ServiceAccount",
               "PersistentVolumeClaim", "HorizontalPodAutoscaler", "PodDisruptionBudget")
# Objects Kubernetes itself keeps in every namespace: never deleted by a reset.
KEPT_OBJECTS = {"ServiceAccount": "default", "ConfigMap": "kube-root-ca.crt"}

# The kubernetes client takes seconds to import; it is loaded only once a cluster has answered (see
# `preflight`), so "no cluster" is diagnosed well inside the 5 s budget.
k8s: Any = None
ApiException: type[Exception] = type("ApiException", (Exception,), {"status": 0, "body": "", "reason": ""})


def _load_client():
    """Import the official client on first use and bind `k8s` / `ApiException`."""
    global k8s, ApiException
    if k8s is None:
        import urllib3
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException as real_api_exception
        urllib3.disable_warnings()
        k8s, ApiException = client, real_api_exception
    return k8s


def _api_body(exc) -> dict:
    try:
        body = yaml.safe_load(exc.body or "") or {}
    except yaml.YAMLError:
        return {}
    return body if isinstance(body, dict) else {}


def _api_reason(exc) -> str:
    """The API server's own message from an ApiException body, else its reason."""
    return str(_api_body(exc).get("message") or f"{exc.status} {exc.reason}".strip())


def _api_status_reason(exc) -> str:
    return str(_api_body(exc).get("reason") or exc.status)


def _reusable(pod, stamp: str) -> bool:
    """A kept fixture pod can serve again: same manifest, not being deleted, Ready."""
    return (pod.metadata.labels or {}).get(FIXTURE_LABEL) == stamp and is_ready(pod)


def _terminating(ns) -> bool:
    return bool(ns.status and ns.status.phase == "Terminating")


def default_request_timeout(api_client, connect: float, read: float) -> None:
    """A timeout for the requests that cannot take `_request_timeout=`: the dynamic client's API discovery
    (/apis, /openapi). The REST client passes "no timeout" to urllib3 explicitly when a call names none, so the
    default is filled in at that one entry point; calls that pass their own timeout still win. Without it a
    stalled API server hangs discovery forever."""
    rest = getattr(api_client, "rest_client", None)
    if rest is None:
        return
    send = rest.request

    def request(method, url, *args, _request_timeout=None, **kwargs):
        return send(method, url, *args, _request_timeout=_request_timeout or (connect, read), **kwargs)

    rest.request = request


def _spared(keep_fixtures: bool, deployments: Sequence[str], template_hashes: Sequence[str]):
    """(kind, field selector) -> (field selector, label selector) of what a reset deletes in one namespace: all of
    the kind but the grader's fixture pods (`keep_fixtures`) and the kept Deployments, their ReplicaSets and pods."""
    keep_hash = f"pod-template-hash notin ({','.join(template_hashes)})" if template_hashes else ""

    def select(kind: str, field: str) -> tuple[str, str | None]:
        if kind == "Deployment":
            field = ",".join(part for part in (field, *(f"metadata.name!={d}" for d in deployments)) if part)
        labels = [f"!{FIXTURE_LABEL}"] if kind == "Pod" and keep_fixtures else []
        if kind in ("Pod", "ReplicaSet") and keep_hash:
            labels.append(keep_hash)
        return field, ",".join(labels) or None
    return select


class Cluster:
    """A connection to one cluster (one kube context). Create with `Cluster.connect()`."""

    def __init__(self, api_client, context: str, server: str, timeout: float = 5):
        _load_client()
        self.api_client = api_client
        self.context = context
        self.server = server
        self.timeout = timeout
        self._dynamic = None
        self._apis: dict[str, Any] = {}
        self._reset_cache: dict[tuple[str, ...], list[tuple[Any, str]]] = {}

    def api(self, name: str):
        """The typed API group client `kubernetes.client.<name>` (e.g. "CoreV1Api") on this connection."""
        if name not in self._apis:
            self._apis[name] = getattr(k8s, name)(self.api_client)
        return self._apis[name]

    core = property(lambda self: self.api("CoreV1Api"))
    apps = property(lambda self: self.api("AppsV1Api"))
    discovery = property(lambda self: self.api("DiscoveryV1Api"))

    # ------------------------------------------------------------------ connecting
    @classmethod
    def connect(cls, context: str | None = None, timeout: float = 5, kubeconfig: str | None = None) -> "Cluster":
        """Check the API server of the kube context answers (within `timeout` s), then load the client.

        Raises ClusterUnreachable with a specific cause and fix; never hangs, never a raw traceback.
        """
        context = context or default_context()
        path = kubeconfig_path(kubeconfig)
        started = time.monotonic()
        preflight(context, timeout, path)
        _load_client()
        from kubernetes import config as k8s_config
        cfg = k8s.Configuration()
        try:
            k8s_config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                        persist_config=False)
        except Exception as exc:  # noqa: BLE001 — ConfigException, OSError, ValueError
            raise ClusterUnreachable(f"cannot load context {context!r} from {path}: {exc}",
                                     hint="`kind export kubeconfig --name k8slab` rewrites it") from None
        cfg.retries = 0  # a refused connection must fail now, not after urllib3's 3 retries
        api_client = k8s.ApiClient(cfg)
        default_request_timeout(api_client, timeout, max(timeout, 10))  # as timeouts(): one read, not a whole call
        cluster = cls(api_client, context, cfg.host, timeout)
        cluster.connect_seconds = time.monotonic() - started
        return cluster

    def timeouts(self, seconds: float | None = None) -> tuple[float, float]:
        """(connect, read) timeout for one request: `_request_timeout=` of every API call."""
        return self.timeout, seconds or max(self.timeout, 10)

    def call(self, doing: str, fn: Callable, *args, tolerate: Iterable[int] = (), **kwargs):
        """`fn(*args, **kwargs)`; an API status in `tolerate` (e.g. 404 for "gone already") returns None, any other
        failure becomes a ClusterError saying what we were `doing`. Pass `_request_timeout=self.timeouts()` to API
        calls: nothing waits unbounded."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 — every failure is worded; none escapes raw
            if getattr(exc, "status", None) in tuple(tolerate):
                return None
            raise self._err(doing, exc) from None

    def _err(self, doing: str, exc: Exception) -> ClusterError:
        if isinstance(exc, ApiException):  # noqa — bound to the real class by _load_client
            return ClusterError(f"{doing}: {_api_reason(exc)}", reason=_api_status_reason(exc))
        if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
            return ClusterError(f"{doing}: lost contact with the API server at {self.server} ({exc})")
        return ClusterError(f"{doing}: {type(exc).__name__}: {exc}")

    @property
    def dynamic(self):
        """The dynamic client (discovery on first use)."""
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient
            self._dynamic = self.call("discovering the API resources", DynamicClient, self.api_client)
        return self._dynamic

    def server_version(self) -> str:
        return self.call("reading the server version", k8s.VersionApi(self.api_client).get_code,
                         _request_timeout=self.timeouts()).git_version

    # ------------------------------------------------------------------ namespaces
    def _get_namespace(self, name: str):
        return self.call(f"reading Namespace {name}", self.core.read_namespace, name,
                         _request_timeout=self.timeouts(), tolerate=(404,))

    def _check_owned(self, ns, action: str) -> None:
        labels = ns.metadata.labels or {}
        if labels.get(OWNED_LABEL) != "true":
            raise ClusterError(
                f"refusing to {action} Namespace {ns.metadata.name}: it exists but was not created by the grader "
                f"(no label {OWNED_LABEL}=true), so it may hold someone's work",
                ref=f"Namespace {ns.metadata.name}", reason="NotOwned",
                hint=f"delete or rename it yourself if it is disposable "
                     f"(`kubectl --context {self.context} delete namespace {ns.metadata.name}`)")

    def require_owned(self, name: str) -> None:
        """Raise ClusterError unless Namespace `name` exists and carries k8slab.dev/owned=true."""
        existing = self._get_namespace(name)
        if existing is None:
            raise ClusterError(f"Namespace {name} does not exist: graders only write into namespaces they created")
        self._check_owned(existing, "write into")

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The labels of Namespace `name`; None when there is no such namespace."""
        ns = self._get_namespace(name)
        return None if ns is None else dict(ns.metadata.labels or {})

    def label_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """Set labels on one of our namespaces (a lab's namespaceSelectors match them)."""
        self.require_owned(name)
        self._patch_labels(name, labels, f"labelling Namespace {name}")

    def _patch_labels(self, name: str, labels: Mapping[str, str], doing: str) -> None:
        self.call(doing, self.core.patch_namespace, name, {"metadata": {"labels": dict(labels)}},
                  _request_timeout=self.timeouts())

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:
        """Create Namespace `name` labelled as ours; accept it if it already is ours; refuse otherwise."""
        self._ensure_owned(name, run_id, {})

    def _ensure_owned(self, name: str, run_id: str | None, labels: Mapping[str, str]) -> None:
        existing = self._get_namespace(name)
        if existing is not None:
            self._check_owned(existing, "use")
            if not _terminating(existing):
                return
            self._wait_namespace_gone(name, NAMESPACE_GONE_TIMEOUT)
        labels = {**labels, OWNED_LABEL: "true", **({RUN_LABEL: run_id} if run_id else {})}
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        self.call(f"creating Namespace {name}", self.core.create_namespace, body, _request_timeout=self.timeouts(),
                  tolerate=(409,))
        self._wait_default_service_account(name)

    def _wait_default_service_account(self, namespace: str, timeout: float = 15) -> None:
        """Pods are refused until the controller has created the namespace's `default` ServiceAccount
        (a fraction of a second after the namespace): wait for it so admission never races it."""
        deadline = time.monotonic() + timeout
        while self.call(f"reading ServiceAccount {namespace}/default", self.core.read_namespaced_service_account,
                        "default", namespace, _request_timeout=self.timeouts(), tolerate=(404,)) is None:
            if time.monotonic() >= deadline:
                raise ClusterError(f"Namespace {namespace} has no ServiceAccount default after {timeout:g} s: the "
                                   f"controller-manager is not running "
                                   f"(`kubectl --context {self.context} get pods -n kube-system`)",
                                   ref=f"Namespace {namespace}")
            time.sleep(0.2)

    def _wait_namespace_gone(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._get_namespace(name) is None:
                return
            time.sleep(0.25)
        raise ClusterError(f"waiting for Namespace {name} to be deleted: still terminating after {timeout:g} s "
                           f"(a finalizer may be stuck: "
                           f"`kubectl --context {self.context} get namespace {name} -o yaml`)")

    def delete_namespaces(self, names: Iterable[str], wait: bool = True,
                          timeout: float = NAMESPACE_GONE_TIMEOUT) -> None:
        """Delete our namespaces (refusing any without the owned label); optionally wait until gone."""
        doomed = []
        for name in names:
            ns = self._get_namespace(name)
            if ns is None:
                continue
            self._check_owned(ns, "delete")
            try:  # pods first, without grace: a namespace waits for its pods' grace periods otherwise
                self.call(f"deleting the Pods in Namespace {name}", self.core.delete_collection_namespaced_pod, name,
                          grace_period_seconds=0, _request_timeout=self.timeouts())
            except ClusterError:  # the namespace deletion below still removes them
                pass
            self.call(f"deleting Namespace {name}", self.core.delete_namespace, name, grace_period_seconds=0,
                      _request_timeout=self.timeouts(), tolerate=(404,))
            doomed.append(name)
        if wait:
            deadline = time.monotonic() + timeout
            for name in doomed:
                self._wait_namespace_gone(name, max(1.0, deadline - time.monotonic()))

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = (),
                         labels: Mapping[str, Mapping[str, str]] | None = None, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        """A clean slate for one run: each namespace exists, is ours, carries `run_id` and the `labels` given for
        it, and holds none of the objects a grading run makes (but the grader's own pods with `keep_fixtures`,
        and the Deployments named in `keep_deployments` {namespace: [name]} with their ReplicaSets and pods: the
        engine keeps one that the next submission applies unchanged, see graders/workload_reuse.py).
        An existing namespace is emptied rather than recreated: emptying takes about a second, deleting a
        namespace 5-12 s (the namespace controller sweeps every API resource)."""
        for name in names:
            wanted = dict((labels or {}).get(name) or {})
            ns = self._get_namespace(name)
            if ns is None or _terminating(ns):
                self._ensure_owned(name, run_id, wanted)
                continue
            self._check_owned(ns, "reset")
            if run_id:  # stamp this run on the namespace it reuses (see `check_run`)
                self._patch_labels(name, {**wanted, RUN_LABEL: run_id},
                                   f"labelling Namespace {name} for run {run_id}")
            elif wanted:
                self._patch_labels(name, wanted, f"labelling Namespace {name}")
        self._empty(names, kinds, EMPTY_TIMEOUT, keep_fixtures, keep_deployments or {})  # ownership checked above

    def empty_namespaces(self, names: Sequence[str], kinds: Iterable[str] = (),
                         timeout: float = EMPTY_TIMEOUT, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        """Delete every object of RESET_KINDS (and of `kinds`, e.g. a lab's custom resources) in our namespaces and
        wait until they are gone; with `keep_fixtures`, the grader's own pods (FIXTURE_LABEL) stay for the next run,
        and so do the Deployments named in `keep_deployments` (as in reset_namespaces).
        Workloads go first, so no controller recreates the pods deleted after them; pods go without grace, so a
        container that ignores SIGTERM costs nothing."""
        for name in names:
            self.require_owned(name)
        self._empty(names, kinds, timeout, keep_fixtures, keep_deployments or {})

    def _empty(self, names: Sequence[str], kinds: Iterable[str], timeout: float, keep_fixtures: bool,
               keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:
        resources = self._resettable(tuple(kinds))
        spared = {name: _spared(keep_fixtures, *self._kept(name, (keep_deployments or {}).get(name) or ()))
                  for name in names}

        def selectors(resource, namespace: str, selector: str) -> tuple[str, str | None]:
            return spared[namespace](resource.kind, selector)

        deadline = time.monotonic() + timeout
        for name in names:
            for resource, selector in resources:
                self._delete_collection(resource, name, *selectors(resource, name, selector))
        while True:
            left = [f"{resource.kind} {name}/{item.metadata.name}" for name in names for resource, selector in resources
                    for item in self._remaining(resource, name, *selectors(resource, name, selector))]
            if not left:
                return
            if time.monotonic() >= deadline:
                raise ClusterError(f"emptying {', '.join(names)}: still there after {timeout:g} s: "
                                   f"{', '.join(left[:5])}{' ...' if len(left) > 5 else ''} (a finalizer may hold "
                                   f"it: `kubectl --context {self.context} get {left[0].split()[0].lower()} -A "
                                   f"-o yaml`)")
            for name in names:  # a ReplicaSet not yet collected may have recreated a pod
                for resource, selector in resources:
                    if resource.kind == "Pod":
                        self._delete_collection(resource, name, *selectors(resource, name, selector))
            time.sleep(0.2)

    def _kept(self, namespace: str, deployments: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the Deployments to keep, the pod-template-hash of every ReplicaSet they own): a reset spares those
        ReplicaSets and their pods by that label, which Kubernetes itself puts on both."""
        if not deployments:
            return (), ()
        found = self._list(f"listing ReplicaSets in Namespace {namespace}", self.apps.list_namespaced_replica_set,
                           namespace)
        hashes = sorted({(rs.metadata.labels or {}).get("pod-template-hash", "") for rs in found
                         if any(o.kind == "Deployment" and o.name in deployments
                                for o in rs.metadata.owner_references or [])} - {""})
        return tuple(sorted(deployments)), tuple(hashes)

    def _resettable(self, extra: tuple[str, ...]) -> list[tuple[Any, str]]:
        """(API resource, field selector) for every kind to delete, in RESET_KINDS order, each once per group."""
        cached = self._reset_cache.get(extra)
        if cached is not None:
            return cached
        found: list[tuple[Any, str]] = []
        seen: set[tuple[str, str]] = set()
        for kind in (*RESET_KINDS, *extra):
            candidates = self.call(f"discovering the API resource of kind {kind}", self.dynamic.resources.search,
                                   kind=kind)
            for res in sorted(candidates, key=lambda r: not getattr(r, "preferred", False)):
                verbs = set(getattr(res, "verbs", None) or ())
                if not res.namespaced or "/" in res.name or not {"list", "deletecollection"} <= verbs:
                    continue
                if (res.group, res.name) in seen:
                    continue
                seen.add((res.group, res.name))
                keep = KEPT_OBJECTS.get(kind)
                found.append((res, f"metadata.name!={keep}" if keep else ""))
        self._reset_cache[extra] = found
        return found

    def _delete_collection(self, resource, namespace: str, selector: str, labels: str | None = None) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                "gracePeriodSeconds": 0}
        # the dynamic client wants a selector for a collection delete: the namespace's own name matches all
        self.call(f"deleting every {resource.kind} in Namespace {namespace}", resource.delete, namespace=namespace,
                  field_selector=selector or f"metadata.namespace={namespace}", label_selector=labels, body=body,
                  _request_timeout=self.timeouts(30), tolerate=(404, 405))

    def _remaining(self, resource, namespace: str, selector: str, labels: str | None = None) -> list:
        found = self.call(f"listing {resource.kind} in Namespace {namespace}", resource.get, namespace=namespace,
                          field_selector=selector or None, label_selector=labels, _request_timeout=self.timeouts(),
                          tolerate=(404, 405))
        return list(found.items) if found is not None else []

    def ensure_pods(self, pods: Sequence[dict], timeout: float = EMPTY_TIMEOUT) -> None:
        """Create the grader's own pods (probe, client, world), each stamped with FIXTURE_LABEL. A pod that already
        runs Ready with the same stamp is reused (a reset with `keep_fixtures` left it); one with another stamp or
        not Ready is replaced: a pod's spec cannot change in place. Callers still `wait_ready` afterwards."""
        wanted = [stamp_fixture(pod) for pod in pods]
        stale: list[tuple[str, str]] = []
        missing: list[dict] = []
        for pod in wanted:
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            self.require_owned(ns)
            live = self.get_pod(ns, name)
            if live is not None and _reusable(live, pod["metadata"]["labels"][FIXTURE_LABEL]):
                continue
            if live is not None and FIXTURE_LABEL not in (live.metadata.labels or {}):
                # never delete what the grader did not create: a submission's pod took the grader's pod name
                raise ClusterError(f"Pod {ns}/{name} is not the grader's: a submitted pod uses the name the grader "
                                   f"gives its own {name} pod; rename yours", ref=f"Pod {ns}/{name}",
                                   reason="NameTaken")
            if live is not None:
                self.call(f"replacing Pod {ns}/{name}", self.core.delete_namespaced_pod, name, ns,
                          grace_period_seconds=0, _request_timeout=self.timeouts(), tolerate=(404,))
                stale.append((ns, name))
            missing.append(pod)
        deadline = time.monotonic() + timeout
        for ns, name in stale:
            while self.get_pod(ns, name) is not None:
                if time.monotonic() >= deadline:
                    raise ClusterError(f"replacing Pod {ns}/{name}: the old pod is still there after {timeout:g} s")
                time.sleep(0.2)
        if missing:
            self.apply(missing)

    def check_run(self, namespaces: Sequence[str], run_id: str) -> None:
        """Raise ClusterError when another grading run has reset one of our namespaces (its `k8slab.dev/run`
        label changed): two checks of the same lab at once would otherwise delete each other's objects."""
        if not run_id:
            return
        for name in namespaces:
            ns = self._get_namespace(name)
            found = ((ns.metadata.labels or {}).get(RUN_LABEL, "") if ns is not None else "")
            if found != run_id:
                now = f"run {found}" if found else ("nothing (it was deleted)" if ns is None else "an unlabelled run")
                raise ClusterError(
                    f"Namespace {name} was taken over by another grading run while this one was running (it now "
                    f"belongs to {now}, not run {run_id}): two checks of the same lab ran at once",
                    ref=f"Namespace {name}", reason="Concurrent",
                    hint="run one check of a lab at a time (wait for the other notebook cell or terminal), then "
                         "grade again")

    def owned_namespaces(self) -> list[str]:
        return sorted(ns.metadata.name for ns in self._list("listing grader-owned namespaces", self.core.list_namespace,
                                                            label_selector=f"{OWNED_LABEL}=true"))

    def namespace_names(self) -> set[str]:
        return {ns.metadata.name for ns in self._list("listing Namespaces", self.core.list_namespace)}

    # ------------------------------------------------------------------ apply
    def _resource(self, obj: dict):
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except Exception as exc:  # noqa: BLE001 — the usual cause is a missing CRD
            raise ClusterError(f"{obj_ref(obj)}: the cluster does not serve {obj.get('apiVersion')} "
                               f"{obj.get('kind')} ({exc}); is the CRD installed?") from None

    def _ssa(self, objs: Sequence[dict], dry_run: bool) -> list[dict]:
        out = []
        doing = "admission check (server-side dry-run) of" if dry_run else "applying"
        for obj in objs:
            res = self._resource(obj)
            ns = (obj.get("metadata") or {}).get("namespace")
            if res.namespaced and not ns:
                raise ClusterError(f"{doing} {obj_ref(obj)}: no namespace set (the loader fills the default)")
            if res.namespaced:
                self.require_owned(ns)
            else:
                raise ClusterError(f"{doing} {obj_ref(obj)}: cluster-scoped objects are never applied by graders")
            kwargs = dict(body=obj, namespace=ns, field_manager=FIELD_MANAGER, force_conflicts=True,
                          _request_timeout=self.timeouts(30))
            if dry_run:
                kwargs["dry_run"] = "All"
            applied = self.call(f"{doing} {obj_ref(obj)}", self.dynamic.server_side_apply, res, **kwargs)
            out.append(applied.to_dict() if hasattr(applied, "to_dict") else applied)
        return out

    def dry_run(self, objs: Sequence[dict]) -> list[dict]:
        """Server-side dry-run apply of every object (admission, defaulting, validation); nothing persists."""
        return self._ssa(objs, dry_run=True)

    def apply(self, objs: Sequence[dict]) -> list[dict]:
        """Server-side apply (field manager `k8slab`) into owned namespaces only."""
        return self._ssa(objs, dry_run=False)

    def delete(self, obj: dict) -> None:
        """Delete one namespaced object (owned namespaces only); a missing object is fine."""
        res = self._resource(obj)
        ns = obj["metadata"].get("namespace")
        self.require_owned(ns)
        self.call(f"deleting {obj_ref(obj)}", self.dynamic.delete, res, name=obj["metadata"]["name"], namespace=ns,
                  _request_timeout=self.timeouts(), tolerate=(404,))

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """Any object as a dict via the dynamic client; None when it does not exist."""
        res = self._resource({"apiVersion": api_version, "kind": kind})
        found = self.call(f"reading {kind} {namespace + '/' if namespace else ''}{name}", self.dynamic.get, res,
                          name=name, namespace=namespace, _request_timeout=self.timeouts(), tolerate=(404,))
        return found.to_dict() if found is not None else None

    # ------------------------------------------------------------------ reads
    def _list(self, doing: str, fn, *args, **kwargs) -> list:
        return self.call(doing, fn, *args, _request_timeout=self.timeouts(), **kwargs).items

    def _read(self, doing: str, fn, name: str, namespace: str):
        """One namespaced object as the typed client returns it; None when it does not exist."""
        return self.call(doing, fn, name, namespace, _request_timeout=self.timeouts(), tolerate=(404,))

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None) -> list:
        kw = {"label_selector": label_selector} if label_selector else {}
        doing = f"listing Pods in {namespace or 'all namespaces'}"
        if namespace is None:
            return self._list(doing, self.core.list_pod_for_all_namespaces, **kw)
        return self._list(doing, self.core.list_namespaced_pod, namespace, **kw)

    def get_pod(self, namespace: str, name: str):
        return self._read(f"reading Pod {namespace}/{name}", self.core.read_namespaced_pod, name, namespace)

    def list_services(self, namespace: str) -> list:
        return self._list(f"listing Services in {namespace}", self.core.list_namespaced_service, namespace)

    def get_service(self, namespace: str, name: str):
        return self._read(f"reading Service {namespace}/{name}", self.core.read_namespaced_service, name, namespace)

    def find_services(self, label_selector: str) -> list:
        """Services in all namespaces matching a label selector (read-only)."""
        return self._list(f"listing Services labelled {label_selector}", self.core.list_service_for_all_namespaces,
                          label_selector=label_selector)

    def list_endpointslices(self, namespace: str, service: str | None = None) -> list:
        kw = {"label_selector": f"kubernetes.io/service-name={service}"} if service else {}
        return self._list(f"listing EndpointSlices in {namespace}", self.discovery.list_namespaced_endpoint_slice,
                          namespace, **kw)

    def endpoints(self, namespace: str, service: str) -> list[Endpoint]:
        """Every address of the Service's EndpointSlices, by pod (else address). An endpoint without conditions,
        or whose `ready` is unset, counts as ready (what kube-proxy does)."""
        out: list[Endpoint] = []
        for sl in self.list_endpointslices(namespace, service) or []:
            ports = tuple((p.name or "", p.port) for p in (sl.ports or []) if p.port is not None)
            for ep in sl.endpoints or []:
                cond = ep.conditions
                ready = cond is None or cond.ready is not False
                pod = ep.target_ref.name if ep.target_ref is not None else ""
                out.extend(Endpoint(address, pod, ep.node_name or "", ready, ports) for address in ep.addresses or [])
        return sorted(out, key=lambda e: e.pod or e.ip)

    def list_nodes(self) -> list:
        return self._list("listing Nodes", self.core.list_node)

    def node_addresses(self) -> list[tuple[str, str]]:
        """(node name, InternalIP) of every node that has one, sorted."""
        out = []
        for node in self.list_nodes():
            ip = next((a.address for a in (node.status.addresses or []) if a.type == "InternalIP"), "")
            if ip:
                out.append((node.metadata.name, ip))
        return sorted(out)

    def list_events(self, namespace: str, involved: str | None = None, kind: str = "Pod") -> list:
        kw = {"field_selector": f"involvedObject.name={involved},involvedObject.kind={kind}"} if involved else {}
        return self._list(f"listing Events in {namespace}", self.core.list_namespaced_event, namespace, **kw)

    def list_deployments(self, namespace: str) -> list:
        return self._list(f"listing Deployments in {namespace}", self.apps.list_namespaced_deployment, namespace)

    def ingress_classes(self) -> list[str]:
        """IngressClass names, the default class first."""
        items = self._list("listing IngressClasses", self.api("NetworkingV1Api").list_ingress_class)
        default = [c.metadata.name for c in items
                   if (c.metadata.annotations or {}).get("ingressclass.kubernetes.io/is-default-class") == "true"]
        return default + sorted(c.metadata.name for c in items if c.metadata.name not in default)

    def pod_logs(self, namespace: str, name: str, container: str | None = None, previous: bool = False,
                 tail: int = 5) -> str:
        try:
            return self.call(f"reading the log of Pod {namespace}/{name}", self.core.read_namespaced_pod_log, name,
                             namespace, container=container, previous=previous, tail_lines=tail,
                             _request_timeout=self.timeouts())
        except ClusterError:  # logs are evidence, never the reason a check fails
            return ""

    # ------------------------------------------------------------------ readiness
    def diagnose_pod(self, pod) -> PodProblem | None:
        """Why this pod is not Ready (None when it is)."""
        ns, name = pod.metadata.namespace, pod.metadata.name
        return diagnose_pod(pod, events=lambda: self.list_events(ns, name),
                            logs=lambda c: self.pod_logs(ns, name, c, previous=True) or self.pod_logs(ns, name, c))

    def wait_ready(self, namespaces: Sequence[str], timeout: float = 90, poll: float = 0.5,
                   progress: Callable[[list], None] | None = None) -> None:
        """Wait until every pod in `namespaces` is Ready and every Deployment and StatefulSet rolled out.

        Stops early when a problem cannot heal by waiting (bad image, crash loop, unschedulable).
        Raises NotReady naming each pod and its cause.
        """
        deadline = time.monotonic() + timeout
        first_seen: dict[str, float] = {}
        while True:
            problems: list[PodProblem] = []
            for ns in namespaces:
                problems += [p for p in map(diagnose_deployment, self.list_deployments(ns)) if p]
                problems += [p for p in map(diagnose_statefulset, self._list(
                    f"listing StatefulSets in {ns}", self.apps.list_namespaced_stateful_set, ns)) if p]
                problems += [p for p in map(self.diagnose_pod, self.list_pods(ns)) if p]
            if not problems:
                return
            now = time.monotonic()
            for p in problems:
                first_seen.setdefault(problem_family(p), now)
            # a problem waiting cannot heal (bad image, crash loop, unschedulable) ends the wait once it has
            # persisted a few seconds (the scheduler retries, image pulls flip ErrImagePull <-> BackOff)
            stuck = [p for p in problems if p.fatal and now - first_seen[problem_family(p)] >= 3]
            if stuck or now >= deadline:
                shown = stuck or problems
                head = "cannot become ready" if stuck else f"not ready after {timeout:g} s"
                error = NotReady(f"{head}: " + "; ".join(p.message for p in shown),
                                 diagnoses=[p.message for p in shown], hint=pin_kubectl(readiness_hint(shown), self.context))
                error.problems = tuple(shown)
                raise error
            if progress:
                progress(problems)
            time.sleep(min(poll, max(0.0, deadline - now)))

    # ------------------------------------------------------------------ exec
    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: float = 10,
             container: str | None = None) -> tuple[int, str, str]:
        """Run argv in a pod; returns (rc, stdout, stderr). Bounded: after `timeout` s returns rc 124
        with whatever output arrived. Raises ClusterError when the exec cannot start."""
        import websocket
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL

        websocket.setdefaulttimeout(max(self.timeout, 5))
        kw = {"container": container} if container else {}
        doing = f"running `{' '.join(argv)[:80]}` in Pod {namespace}/{pod}"
        # kubernetes.stream patches `request` on the ApiClient it is given for the duration of the call: a
        # private client per exec keeps concurrent execs (BatchRunner threads) and other calls apart.
        core = k8s.CoreV1Api(k8s.ApiClient(self.api_client.configuration))
        resp = self.call(doing, stream, core.connect_get_namespaced_pod_exec, pod, namespace, command=list(argv),
                         stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False, **kw)
        try:
            timed_out, stdout, stderr, status_text = self.call(doing, _read_exec, resp, timeout, ERROR_CHANNEL)
        finally:
            try:
                resp.close()
            except Exception:  # noqa: BLE001 — closing a dead stream has nothing left to tell
                pass
        if timed_out:
            return 124, stdout, stderr + f"\nk8slab: exec timed out after {timeout:g} s"
        rc, msg = parse_exec_status(status_text)
        if msg and not stderr.strip():  # the command's own words win; the API's only when it said nothing
            stderr = msg
        return rc, stdout, stderr


def _read_exec(resp, timeout: float, error_channel: int) -> tuple[bool, str, str, str]:
    """(timed out, stdout, stderr, status document) of an exec stream, reading for at most `timeout` s."""
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    while resp.is_open():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        resp.update(timeout=min(remaining, 1.0))
        if resp.peek_stdout():
            out.append(resp.read_stdout())
        if resp.peek_stderr():
            err.append(resp.read_stderr())
    if resp.peek_stdout():
        out.append(resp.read_stdout())
    if resp.peek_stderr():
        err.append(resp.read_stderr())
    return timed_out, "".join(out), "".join(err), resp.read_channel(error_channel) if not timed_out else ""
