"""Is there a cluster? Answered with the standard library only, before the kubernetes client is imported.

The official client takes ~3 s to import, so `Cluster.connect` loads it only once `/version` answered: "no cluster"
is diagnosed well inside the connect budget, with a cause and a fix.
"""
from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from graders.errors import ClusterUnreachable

DEFAULT_CONTEXT = "kind-k8slab"
CONTEXT_ENV = "K8SLAB_CONTEXT"


def default_context() -> str:
    """The kube context graders use: $K8SLAB_CONTEXT, else kind's name for the course cluster."""
    return os.environ.get(CONTEXT_ENV) or DEFAULT_CONTEXT


def kubeconfig_path(explicit: str | None) -> str:
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
    url = urlsplit(server)
    headers = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    if url.scheme == "http":
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=timeout,
                                           context=_tls_context(cluster, user))
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


def _tls_context(cluster: dict, user: dict) -> ssl.SSLContext:
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
    return sslctx
