"""Package cluster is the only module that talks to the Kubernetes API.

Everything else describes objects as plain dicts (graders.model, graders.manifests) and hands them here.
Every error names the object (`Kind ns/name`) and what we were doing, and wraps the API's own words.
Every wait is bounded in time; nothing outside namespaces labelled `k8slab.dev/owned=true` is ever
created, changed or deleted.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from graders.errors import ClusterError, ClusterUnreachable, NotReady

DEFAULT_CONTEXT = "kind-k8slab"
CONTEXT_ENV = "K8SLAB_CONTEXT"
OWNED_LABEL = "k8slab.dev/owned"
RUN_LABEL = "k8slab.dev/run"
FIELD_MANAGER = "k8slab"
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


def default_context() -> str:
    """The kube context graders use: $K8SLAB_CONTEXT, else kind's name for the course cluster."""
    return os.environ.get(CONTEXT_ENV) or DEFAULT_CONTEXT


def new_run_id() -> str:
    """A short id stamped on every namespace of one grading run (label k8slab.dev/run)."""
    return time.strftime("%H%M%S") + "-" + uuid.uuid4().hex[:6]


def obj_ref(obj: dict, default_ns: str | None = None) -> str:
    """`Kind ns/name` (or `Kind name` for cluster-scoped objects) for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or default_ns
    name = meta.get("name", "<unnamed>")
    return f"{obj.get('kind', '<no kind>')} {ns + '/' if ns else ''}{name}"


def _api_reason(exc) -> str:
    """The API server's own message from an ApiException body, else its reason."""
    try:
        body = yaml.safe_load(exc.body or "") or {}
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except yaml.YAMLError:
        pass
    return f"{exc.status} {exc.reason}".strip()


def _api_status_reason(exc) -> str:
    try:
        body = yaml.safe_load(exc.body or "") or {}
        return str(body.get("reason") or exc.status) if isinstance(body, dict) else str(exc.status)
    except yaml.YAMLError:
        return str(exc.status)


def _readiness_hint(problems: Sequence["PodProblem"]) -> str:
    reasons = {p.reason for p in problems}
    if reasons & _PULL:
        return ("check the image name and tag for typos; this cluster can only run images its nodes already "
                "have or can pull (`docker exec k8slab-worker crictl images`)")
    if "Unschedulable" in reasons:
        return "lower the resource requests, or remove a nodeSelector/affinity that no node matches"
    if "CrashLoopBackOff" in reasons:
        return "the container's command exits: check `command`/`args` and the log lines above"
    if "ReadinessProbe" in reasons:
        return "the readiness probe must point at a port and path the container actually serves"
    return "`kubectl get pods -A` and `kubectl describe pod` show more"


def _kubeconfig_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return str(Path.home() / ".kube" / "config")


def diagnose_unreachable(exc: BaseException, context: str, server: str, timeout: float) -> ClusterUnreachable:
    """Map a low-level failure while contacting the API server to a cause and a fix."""
    text = str(exc)
    reason = getattr(exc, "reason", None)
    full = f"{text} {reason or ''}"
    create = "create it with `make cluster` (or `make cluster OFFLINE=1` without internet), then `make doctor`"
    if getattr(exc, "status", None) in (401, 403):
        return ClusterUnreachable(
            f"the API server at {server} (context {context}) rejected our credentials ({exc.status})",
            hint="the kubeconfig entry is stale: `kind export kubeconfig --name k8slab`, or recreate with "
                "`make cluster-down cluster`")
    if "Connection refused" in full or "Errno 111" in full:
        return ClusterUnreachable(
            f"nothing listens at {server} (context {context}): connection refused — the kind cluster is "
            f"stopped or was deleted",
            hint="start the node containers (`docker start $(docker ps -aq --filter "
                 f"label=io.x-k8s.kind.cluster=k8slab)`) or {create}")
    if "CERTIFICATE_VERIFY_FAILED" in full or "SSLError" in full or "SSL" in type(reason).__name__:
        return ClusterUnreachable(
            f"TLS handshake with {server} (context {context}) failed: the kubeconfig belongs to an older cluster",
            hint="`kind export kubeconfig --name k8slab` refreshes it")
    if "timed out" in full.lower() or "timeout" in type(reason).__name__.lower() or isinstance(exc, TimeoutError):
        return ClusterUnreachable(
            f"no answer from the API server at {server} (context {context}) within {timeout:g} s",
            hint=f"check `docker ps` for the k8slab-control-plane container and `make doctor`; if it is gone, {create}")
    if "Name or service not known" in full or "nodename nor servname" in full:
        return ClusterUnreachable(
            f"the API server address in context {context} ({server}) does not resolve",
            hint="`kind export kubeconfig --name k8slab` rewrites it")
    return ClusterUnreachable(
        f"could not reach the API server at {server} (context {context}): {type(exc).__name__}: {text[:300]}",
        hint=f"run `make doctor`; if there is no cluster, {create}")


def preflight(context: str, timeout: float, path: str) -> str:
    """GET /version on the context's API server with the standard library only (no kubernetes import).
    Returns the server URL; raises ClusterUnreachable with a cause and a fix."""
    if not os.path.exists(path):
        raise ClusterUnreachable(
            f"no kubeconfig at {path}: no cluster has been created on this machine (or KUBECONFIG points "
            f"elsewhere)",
            hint="create the course cluster with `make cluster` (or `make cluster OFFLINE=1` without internet)")
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ClusterUnreachable(f"cannot read kubeconfig {path}: {exc}",
                                 hint="fix or remove the file, then `make cluster`") from None

    def entry(kind: str, name: str) -> dict:
        for item in config.get(kind) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return item.get(kind[:-1]) or {}
        return {}

    names = [c.get("name") for c in config.get("contexts") or [] if isinstance(c, dict)]
    if context not in names:
        raise ClusterUnreachable(
            f"kubeconfig {path} has no context {context!r} (it has: {', '.join(map(str, names)) or 'none'})",
            hint=f"create the course cluster with `make cluster`, or point {CONTEXT_ENV} at an existing context")
    ctx = entry("contexts", context)
    cluster, user = entry("clusters", ctx.get("cluster", "")), entry("users", ctx.get("user", ""))
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise ClusterUnreachable(f"context {context!r} in {path} has no usable server URL ({server!r})",
                                 hint="`kind export kubeconfig --name k8slab` rewrites it")
    try:
        _get_version(server, cluster, user, timeout)
    except ClusterUnreachable:
        raise
    except Exception as exc:  # noqa: BLE001 — every failure is mapped to a cause + fix
        raise diagnose_unreachable(exc, context, server, timeout) from None
    return server


def _get_version(server: str, cluster: dict, user: dict, timeout: float) -> None:
    import base64
    import http.client
    import ssl
    import tempfile
    from urllib.parse import urlsplit

    url = urlsplit(server)
    headers = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    if url.scheme == "http":
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    else:
        sslctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            sslctx.check_hostname = False
            sslctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            sslctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            sslctx.load_verify_locations(cafile=cluster["certificate-authority"])
        if cluster.get("tls-server-name"):
            sslctx.check_hostname = False  # the name is checked by the real client; /version is public
        cert, key = user.get("client-certificate-data"), user.get("client-key-data")
        if cert and key:
            with tempfile.TemporaryDirectory() as tmp:
                cert_file, key_file = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
                cert_file.write_bytes(base64.b64decode(cert))
                key_file.write_bytes(base64.b64decode(key))
                sslctx.load_cert_chain(cert_file, key_file)
        elif user.get("client-certificate") and user.get("client-key"):
            sslctx.load_cert_chain(user["client-certificate"], user["client-key"])
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout, context=sslctx)
    try:
        conn.request("GET", "/version", headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status in (401, 403):
        error = Exception(f"HTTP {response.status}")
        error.status = response.status  # type: ignore[attr-defined]
        raise error
    if response.status >= 500:
        raise RuntimeError(f"HTTP {response.status} {response.reason} from /version (API server starting?)")


@dataclass(frozen=True)
class PodProblem:
    """One pod that is not ready, with a readable cause."""
    pod: str            # "ns/name"
    reason: str         # ImagePullBackOff, Unschedulable, CrashLoopBackOff, ReadinessProbe, ...
    message: str        # full sentence naming the pod
    fatal: bool = False  # True when waiting longer cannot help

    def __str__(self) -> str:
        return self.message


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

    def _api(self, name: str):
        if name not in self._apis:
            self._apis[name] = getattr(k8s, name)(self.api_client)
        return self._apis[name]

    core = property(lambda self: self._api("CoreV1Api"))
    apps = property(lambda self: self._api("AppsV1Api"))
    discovery = property(lambda self: self._api("DiscoveryV1Api"))

    # ------------------------------------------------------------------ connecting
    @classmethod
    def connect(cls, context: str | None = None, timeout: float = 5, kubeconfig: str | None = None) -> "Cluster":
        """Check the API server of the kube context answers (within `timeout` s), then load the client.

        Raises ClusterUnreachable with a specific cause and fix; never hangs, never a raw traceback.
        """
        context = context or default_context()
        path = _kubeconfig_path(kubeconfig)
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
        cluster = cls(k8s.ApiClient(cfg), context, cfg.host, timeout)
        cluster.connect_seconds = time.monotonic() - started
        return cluster

    def _t(self, seconds: float | None = None):
        t = seconds or max(self.timeout, 10)
        return (self.timeout, t)

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
            try:
                self._dynamic = DynamicClient(self.api_client)
            except Exception as exc:  # noqa: BLE001
                raise self._err("discovering the API resources", exc) from None
        return self._dynamic

    def server_version(self) -> str:
        try:
            return k8s.VersionApi(self.api_client).get_code(_request_timeout=self._t()).git_version
        except Exception as exc:  # noqa: BLE001
            raise self._err("reading the server version", exc) from None

    # ------------------------------------------------------------------ namespaces
    def _get_namespace(self, name: str):
        try:
            return self.core.read_namespace(name, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 404:
                return None
            raise self._err(f"reading Namespace {name}", exc) from None

    def _check_owned(self, ns, action: str) -> None:
        labels = ns.metadata.labels or {}
        if labels.get(OWNED_LABEL) != "true":
            raise ClusterError(
                f"refusing to {action} Namespace {ns.metadata.name}: it exists but was not created by the grader "
                f"(no label {OWNED_LABEL}=true), so it may hold someone's work",
                ref=f"Namespace {ns.metadata.name}", reason="NotOwned",
                hint=f"delete or rename it yourself if it is disposable "
                     f"(`kubectl delete namespace {ns.metadata.name}`)")

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:
        """Create Namespace `name` labelled as ours; accept it if it already is ours; refuse otherwise."""
        existing = self._get_namespace(name)
        if existing is not None:
            self._check_owned(existing, "use")
            if existing.status and existing.status.phase == "Terminating":
                self._wait_namespace_gone(name, NAMESPACE_GONE_TIMEOUT)
            else:
                return
        labels = {OWNED_LABEL: "true"}
        if run_id:
            labels[RUN_LABEL] = run_id
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        try:
            self.core.create_namespace(body, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) != 409:
                raise self._err(f"creating Namespace {name}", exc) from None
        self._wait_default_service_account(name)

    def _wait_default_service_account(self, namespace: str, timeout: float = 15) -> None:
        """Pods are refused until the controller has created the namespace's `default` ServiceAccount
        (a fraction of a second after the namespace): wait for it so admission never races it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.core.read_namespaced_service_account("default", namespace, _request_timeout=self._t())
                return
            except Exception as exc:  # noqa: BLE001
                if getattr(exc, "status", None) != 404:
                    raise self._err(f"reading ServiceAccount {namespace}/default", exc) from None
            if time.monotonic() >= deadline:
                raise ClusterError(f"Namespace {namespace} has no ServiceAccount default after {timeout:g} s: the "
                                   f"controller-manager is not running (`kubectl get pods -n kube-system`)",
                                   ref=f"Namespace {namespace}")
            time.sleep(0.2)

    def _wait_namespace_gone(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._get_namespace(name) is None:
                return
            time.sleep(0.25)
        raise ClusterError(f"waiting for Namespace {name} to be deleted: still terminating after {timeout:g} s "
                           f"(a finalizer may be stuck: `kubectl get namespace {name} -o yaml`)")

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
                self.core.delete_collection_namespaced_pod(name, grace_period_seconds=0, _request_timeout=self._t())
            except Exception:  # noqa: BLE001 — the namespace deletion below still removes them
                pass
            try:
                self.core.delete_namespace(name, grace_period_seconds=0, _request_timeout=self._t())
            except Exception as exc:  # noqa: BLE001
                if getattr(exc, "status", None) != 404:
                    raise self._err(f"deleting Namespace {name}", exc) from None
            doomed.append(name)
        if wait:
            deadline = time.monotonic() + timeout
            for name in doomed:
                self._wait_namespace_gone(name, max(1.0, deadline - time.monotonic()))

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = ()) -> None:
        """A clean slate for one run: each namespace exists, is ours, carries `run_id`, and holds none of the
        objects a grading run makes. An existing namespace is emptied rather than recreated: emptying takes about
        a second, deleting a namespace 5-12 s (the namespace controller sweeps every API resource)."""
        for name in names:
            ns = self._get_namespace(name)
            if ns is None or (ns.status and ns.status.phase == "Terminating"):
                self.ensure_owned_namespace(name, run_id)
                continue
            self._check_owned(ns, "reset")
            self._claim_namespace(name, run_id)
        self._empty(names, kinds, EMPTY_TIMEOUT)  # ownership checked above

    def _claim_namespace(self, name: str, run_id: str | None) -> None:
        """Stamp this run's id on a namespace it reuses (see `check_run`)."""
        if not run_id:
            return
        try:
            self.core.patch_namespace(name, {"metadata": {"labels": {RUN_LABEL: run_id}}}, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            raise self._err(f"labelling Namespace {name} for run {run_id}", exc) from None

    def empty_namespaces(self, names: Sequence[str], kinds: Iterable[str] = (),
                         timeout: float = EMPTY_TIMEOUT) -> None:
        """Delete every object of RESET_KINDS (and of `kinds`, e.g. a lab's custom resources) in our namespaces and
        wait until they are gone. Workloads go first, so no controller recreates the pods deleted after them; pods
        go without grace, so a container that ignores SIGTERM costs nothing."""
        for name in names:
            self._require_owned(name)
        self._empty(names, kinds, timeout)

    def _empty(self, names: Sequence[str], kinds: Iterable[str], timeout: float) -> None:
        resources = self._resettable(tuple(kinds))
        deadline = time.monotonic() + timeout
        for name in names:
            for resource, selector in resources:
                self._delete_collection(resource, name, selector)
        while True:
            left = [f"{resource.kind} {name}/{item.metadata.name}" for name in names for resource, selector in resources
                    for item in self._remaining(resource, name, selector)]
            if not left:
                return
            if time.monotonic() >= deadline:
                raise ClusterError(f"emptying {', '.join(names)}: still there after {timeout:g} s: "
                                   f"{', '.join(left[:5])}{' ...' if len(left) > 5 else ''} (a finalizer may hold "
                                   f"it: `kubectl get {left[0].split()[0].lower()} -A -o yaml`)")
            for name in names:  # a ReplicaSet not yet collected may have recreated a pod
                for resource, selector in resources:
                    if resource.kind == "Pod":
                        self._delete_collection(resource, name, selector)
            time.sleep(0.2)

    def _resettable(self, extra: tuple[str, ...]) -> list[tuple[Any, str]]:
        """(API resource, field selector) for every kind to delete, in RESET_KINDS order, each once per group."""
        cached = self._reset_cache.get(extra)
        if cached is not None:
            return cached
        found: list[tuple[Any, str]] = []
        seen: set[tuple[str, str]] = set()
        for kind in (*RESET_KINDS, *extra):
            try:
                candidates = self.dynamic.resources.search(kind=kind)
            except Exception as exc:  # noqa: BLE001
                raise self._err(f"discovering the API resource of kind {kind}", exc) from None
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

    def _delete_collection(self, resource, namespace: str, selector: str) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                "gracePeriodSeconds": 0}
        # the dynamic client wants a selector for a collection delete: the namespace's own name matches all
        selector = selector or f"metadata.namespace={namespace}"
        try:
            resource.delete(namespace=namespace, field_selector=selector, body=body, _request_timeout=self._t(30))
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) in (404, 405):
                return
            raise self._err(f"deleting every {resource.kind} in Namespace {namespace}", exc) from None

    def _remaining(self, resource, namespace: str, selector: str) -> list:
        try:
            return list(resource.get(namespace=namespace, field_selector=selector or None,
                                     _request_timeout=self._t()).items)
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) in (404, 405):
                return []
            raise self._err(f"listing {resource.kind} in Namespace {namespace}", exc) from None

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
        try:
            items = self.core.list_namespace(label_selector=f"{OWNED_LABEL}=true", _request_timeout=self._t()).items
        except Exception as exc:  # noqa: BLE001
            raise self._err("listing grader-owned namespaces", exc) from None
        return sorted(ns.metadata.name for ns in items)

    # ------------------------------------------------------------------ apply
    def _resource(self, obj: dict):
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except Exception as exc:  # noqa: BLE001
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
                self._require_owned(ns)
            else:
                raise ClusterError(f"{doing} {obj_ref(obj)}: cluster-scoped objects are never applied by graders")
            kwargs = dict(body=obj, namespace=ns, field_manager=FIELD_MANAGER, force_conflicts=True,
                          _request_timeout=self._t(30))
            if dry_run:
                kwargs["dry_run"] = "All"
            try:
                applied = self.dynamic.server_side_apply(res, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise self._err(f"{doing} {obj_ref(obj)}", exc) from None
            out.append(applied.to_dict() if hasattr(applied, "to_dict") else applied)
        return out

    def _require_owned(self, ns: str) -> None:
        existing = self._get_namespace(ns)
        if existing is None:
            raise ClusterError(f"Namespace {ns} does not exist: graders only write into namespaces they created")
        self._check_owned(existing, "write into")

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
        self._require_owned(ns)
        try:
            self.dynamic.delete(res, name=obj["metadata"]["name"], namespace=ns, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 404:
                return
            raise self._err(f"deleting {obj_ref(obj)}", exc) from None

    # ------------------------------------------------------------------ reads
    def _list(self, doing: str, fn, namespace: str | None, **kw):
        try:
            if namespace is None:
                return fn[1](_request_timeout=self._t(), **kw).items
            return fn[0](namespace, _request_timeout=self._t(), **kw).items
        except Exception as exc:  # noqa: BLE001
            raise self._err(doing, exc) from None

    def list_pods(self, namespace: str | None = None, label_selector: str | None = None):
        kw = {"label_selector": label_selector} if label_selector else {}
        return self._list(f"listing Pods in {namespace or 'all namespaces'}",
                          (self.core.list_namespaced_pod, self.core.list_pod_for_all_namespaces), namespace, **kw)

    def get_pod(self, namespace: str, name: str):
        try:
            return self.core.read_namespaced_pod(name, namespace, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 404:
                return None
            raise self._err(f"reading Pod {namespace}/{name}", exc) from None

    def list_services(self, namespace: str):
        return self._list(f"listing Services in {namespace}",
                          (self.core.list_namespaced_service, None), namespace)

    def get_service(self, namespace: str, name: str):
        try:
            return self.core.read_namespaced_service(name, namespace, _request_timeout=self._t())
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 404:
                return None
            raise self._err(f"reading Service {namespace}/{name}", exc) from None

    def list_endpointslices(self, namespace: str, service: str | None = None):
        kw = {"label_selector": f"kubernetes.io/service-name={service}"} if service else {}
        return self._list(f"listing EndpointSlices in {namespace}",
                          (self.discovery.list_namespaced_endpoint_slice, None), namespace, **kw)

    def list_nodes(self):
        return self._list("listing Nodes", (None, self.core.list_node), None)

    def namespace_names(self) -> set[str]:
        try:
            return {ns.metadata.name for ns in self.core.list_namespace(_request_timeout=self._t()).items}
        except Exception as exc:  # noqa: BLE001
            raise self._err("listing Namespaces", exc) from None

    def ingress_classes(self) -> list[str]:
        """IngressClass names, the default class first."""
        try:
            items = k8s.NetworkingV1Api(self.api_client).list_ingress_class(_request_timeout=self._t()).items
        except Exception as exc:  # noqa: BLE001
            raise self._err("listing IngressClasses", exc) from None
        default = [c.metadata.name for c in items
                   if (c.metadata.annotations or {}).get("ingressclass.kubernetes.io/is-default-class") == "true"]
        return default + sorted(c.metadata.name for c in items if c.metadata.name not in default)

    def find_services(self, label_selector: str):
        """Services in all namespaces matching a label selector (read-only)."""
        return self._list(f"listing Services labelled {label_selector}",
                          (None, self.core.list_service_for_all_namespaces), None, label_selector=label_selector)

    def list_events(self, namespace: str, involved: str | None = None, kind: str = "Pod"):
        kw = {"field_selector": f"involvedObject.name={involved},involvedObject.kind={kind}"} if involved else {}
        return self._list(f"listing Events in {namespace}",
                          (self.core.list_namespaced_event, None), namespace, **kw)

    def list_deployments(self, namespace: str):
        return self._list(f"listing Deployments in {namespace}",
                          (self.apps.list_namespaced_deployment, None), namespace)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """Any object as a dict via the dynamic client; None when it does not exist."""
        res = self._resource({"apiVersion": api_version, "kind": kind})
        try:
            return self.dynamic.get(res, name=name, namespace=namespace, _request_timeout=self._t()).to_dict()
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status", None) == 404:
                return None
            raise self._err(f"reading {kind} {namespace + '/' if namespace else ''}{name}", exc) from None

    def pod_logs(self, namespace: str, name: str, container: str | None = None, previous: bool = False,
                 tail: int = 5) -> str:
        try:
            return self.core.read_namespaced_pod_log(name, namespace, container=container, previous=previous,
                                                     tail_lines=tail, _request_timeout=self._t())
        except Exception:  # noqa: BLE001 — logs are evidence, never the reason a check fails
            return ""

    # ------------------------------------------------------------------ readiness
    def diagnose_pod(self, pod, now: float | None = None) -> PodProblem | None:
        """Why this pod is not Ready (None when it is)."""
        return diagnose_pod(pod, events=lambda: self.list_events(pod.metadata.namespace, pod.metadata.name),
                            logs=lambda c: self.pod_logs(pod.metadata.namespace, pod.metadata.name, c,
                                                         previous=True) or
                            self.pod_logs(pod.metadata.namespace, pod.metadata.name, c))

    def wait_ready(self, namespaces: Sequence[str], timeout: float = 90, poll: float = 0.5,
                   progress=None) -> None:
        """Wait until every pod in `namespaces` is Ready and every Deployment rolled out.

        Stops early when a problem cannot heal by waiting (bad image, crash loop, unschedulable).
        Raises NotReady naming each pod and its cause.
        """
        deadline = time.monotonic() + timeout
        first_seen: dict[str, float] = {}
        while True:
            problems: list[PodProblem] = []
            for ns in namespaces:
                for dep in self.list_deployments(ns):
                    p = diagnose_deployment(dep)
                    if p:
                        problems.append(p)
                for pod in self.list_pods(ns):
                    p = self.diagnose_pod(pod)
                    if p:
                        problems.append(p)
            if not problems:
                return
            now = time.monotonic()
            for p in problems:
                first_seen.setdefault(_family(p), now)
            # a problem waiting cannot heal (bad image, crash loop, unschedulable) ends the wait once it has
            # persisted a few seconds (the scheduler retries, image pulls flip ErrImagePull <-> BackOff)
            stuck = [p for p in problems if p.fatal and now - first_seen[_family(p)] >= 3]
            if stuck or now >= deadline:
                shown = stuck or problems
                if not stuck:
                    head = f"not ready after {timeout:g} s"
                else:
                    head = "cannot become ready"
                error = NotReady(f"{head}: " + "; ".join(p.message for p in shown),
                                 diagnoses=[p.message for p in shown], hint=_readiness_hint(shown))
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
        try:
            resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=list(argv),
                          stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False, **kw)
        except Exception as exc:  # noqa: BLE001
            raise self._err(doing, exc) from None
        out: list[str] = []
        err: list[str] = []
        deadline = time.monotonic() + timeout
        timed_out = False
        try:
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
            status_text = resp.read_channel(ERROR_CHANNEL) if not timed_out else ""
        except Exception as exc:  # noqa: BLE001
            raise self._err(doing, exc) from None
        finally:
            try:
                resp.close()
            except Exception:  # noqa: BLE001
                pass
        stdout, stderr = "".join(out), "".join(err)
        if timed_out:
            return 124, stdout, stderr + f"\nk8slab: exec timed out after {timeout:g} s"
        rc, msg = parse_exec_status(status_text)
        if msg and not stderr.strip():  # the command's own words win; the API's only when it said nothing
            stderr = msg
        return rc, stdout, stderr


def parse_exec_status(text: str) -> tuple[int, str]:
    """(exit code, message) from the exec ERROR channel's Status document."""
    if not text:
        return 0, ""
    try:
        status = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return 126, text
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:  # the Status message ("command terminated with non-zero exit code …") is kept for the
                return int(cause.get("message")), str(status.get("message") or "")  # caller's stderr
            except (TypeError, ValueError):
                break
    # the command could not start (binary missing, container not running, ...)
    return 126, str(status.get("message") or text)


# ---------------------------------------------------------------------- diagnosis (pure, unit-tested)
_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}


def _family(problem: PodProblem) -> str:
    """Key under which a problem's age is tracked: image pull states flip, they are one problem."""
    reason = "image" if problem.reason in _PULL else problem.reason
    return f"{problem.pod} {reason}"


def _probe_text(probe) -> str:
    if probe is None:
        return "probe"
    if probe.http_get:
        return f"httpGet {probe.http_get.path or '/'} on port {probe.http_get.port}"
    if probe.tcp_socket:
        return f"tcpSocket on port {probe.tcp_socket.port}"
    action = getattr(probe, "var_exec", None) or getattr(probe, "_exec", None)
    if action is not None:
        return f"exec {' '.join(action.command or [])}"
    if getattr(probe, "grpc", None):
        return f"grpc on port {probe.grpc.port}"
    return "probe"


def diagnose_pod(pod, events=lambda: [], logs=lambda container: "") -> PodProblem | None:
    """Why `pod` (a V1Pod) is not Ready, as a PodProblem; None when Ready. `events`/`logs` are lazy."""
    ns, name = pod.metadata.namespace, pod.metadata.name
    ref = f"{ns}/{name}"
    status = pod.status
    phase = status.phase if status else None
    conds = {c.type: c for c in (status.conditions or [])} if status else {}
    if pod.metadata.deletion_timestamp:
        return PodProblem(ref, "Terminating", f"Pod {ref} is terminating")
    sched = conds.get("PodScheduled")
    if phase == "Pending" and sched is not None and sched.status == "False":
        return PodProblem(ref, "Unschedulable",
                          f"Pod {ref} is Pending: the scheduler cannot place it — {sched.message or sched.reason}",
                          fatal=sched.reason == "Unschedulable")
    if phase == "Pending" and sched is None and not (status.container_statuses or pod.spec.node_name):
        return PodProblem(ref, "NotScheduled", f"Pod {ref} is Pending: no scheduler has placed it yet "
                                               f"(is kube-scheduler running? `kubectl get pods -n kube-system`)")
    if phase in ("Succeeded", "Failed"):
        return PodProblem(ref, phase, f"Pod {ref} has exited ({phase}); a pod that serves traffic must keep "
                                      f"running — check its command and restartPolicy", fatal=True)
    specs = {c.name: c for c in (pod.spec.containers or [])}
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []) if status else []:
        st = cs.state
        waiting = st.waiting if st else None
        if waiting and waiting.reason in _PULL:
            return PodProblem(ref, waiting.reason,
                              f"Pod {ref}: container '{cs.name}' cannot pull image '{cs.image}' ({waiting.reason}): "
                              f"{(waiting.message or '').strip()[:200]}".rstrip(": "),
                              fatal=True)
        if waiting and waiting.reason == "CrashLoopBackOff" or (
                cs.restart_count and cs.last_state and cs.last_state.terminated and not cs.ready):
            term = cs.last_state.terminated if cs.last_state else None
            code = f"exit code {term.exit_code}" if term else "exited"
            tail = (logs(cs.name) or "").strip().splitlines()[-5:]
            log_part = f"; last log lines: {' | '.join(tail)}" if tail else "; it printed no logs"
            return PodProblem(ref, "CrashLoopBackOff",
                              f"Pod {ref}: container '{cs.name}' keeps crashing ({code}, {cs.restart_count} "
                              f"restarts){log_part}",
                              fatal=waiting is not None and waiting.reason == "CrashLoopBackOff")
        if waiting and waiting.reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
            return PodProblem(ref, waiting.reason, f"Pod {ref}: container '{cs.name}' cannot start "
                                                   f"({waiting.reason}): {waiting.message}", fatal=True)
    ready = conds.get("Ready")
    if phase == "Running" and ready is not None and ready.status == "True":
        return None
    if phase == "Running":
        for cs in status.container_statuses or []:
            spec = specs.get(cs.name)
            if cs.ready or not (cs.state and cs.state.running):
                continue
            if spec is not None and spec.readiness_probe is not None:
                evs = [e for e in events() if e.reason == "Unhealthy" and "eadiness" in (e.message or "")]
                msg = evs[-1].message.strip() if evs else "no probe result yet"
                return PodProblem(ref, "ReadinessProbe",
                                  f"Pod {ref}: container '{cs.name}' is running but its readiness probe "
                                  f"({_probe_text(spec.readiness_probe)}) fails: {msg}")
        return PodProblem(ref, "NotReady", f"Pod {ref} is running but not Ready yet")
    waiting_reasons = [cs.state.waiting.reason for cs in (status.container_statuses or [])
                       if cs.state and cs.state.waiting] if status else []
    detail = f" ({', '.join(r for r in waiting_reasons if r)})" if any(waiting_reasons) else ""
    return PodProblem(ref, "Pending", f"Pod {ref} is {phase or 'Pending'}{detail}")


def diagnose_deployment(dep) -> PodProblem | None:
    """Why a V1Deployment has not rolled out (None when it has)."""
    ref = f"{dep.metadata.namespace}/{dep.metadata.name}"
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    st = dep.status
    for c in (st.conditions or []) if st else []:
        if c.type == "ReplicaFailure" and c.status == "True":
            return PodProblem(ref, "ReplicaFailure", f"Deployment {ref} cannot create pods: {c.message}", fatal=True)
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            return PodProblem(ref, "ProgressDeadlineExceeded", f"Deployment {ref} rollout stalled: {c.message}",
                              fatal=True)
    if st is None or (st.observed_generation or 0) < (dep.metadata.generation or 0):
        return PodProblem(ref, "Rollout", f"Deployment {ref}: rollout not observed yet")
    updated, available = st.updated_replicas or 0, st.available_replicas or 0
    if updated < want or available < want or (st.replicas or 0) > want:
        return PodProblem(ref, "Rollout", f"Deployment {ref}: {available}/{want} replicas available, "
                                          f"{updated}/{want} updated")
    return None


def kubectl_exec_command(context: str, namespace: str, pod: str, argv: Sequence[str]) -> str:
    """A pasteable `kubectl exec` line reproducing a command (for humans; graders never run it)."""
    import shlex
    return (f"kubectl --context {shlex.quote(context)} exec -n {shlex.quote(namespace)} {shlex.quote(pod)} -- "
            + " ".join(shlex.quote(a) for a in argv))



def main(argv: Sequence[str] | None = None) -> int:
    """`python -m graders.cluster`: exit 0 when the course cluster answers, else print why (and the fix), exit 3.
    Used by the Makefile and CI scripts to decide whether live tests can run."""
    import sys
    try:
        cluster = Cluster.connect()
    except ClusterUnreachable as exc:
        print(f"no cluster: {exc.message}\n  fix: {exc.hint}", file=sys.stderr)
        return 3
    print(f"cluster answers: context {cluster.context} at {cluster.server}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
