"""graders.cluster: every way of not reaching a cluster becomes ClusterUnreachable with a cause and a fix,
within the connect timeout — never a hang or a traceback."""
from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
import yaml

from graders import cluster as cl
from graders.errors import ClusterError, ClusterUnreachable


def _kubeconfig(tmp_path, server: str, context: str = "kind-k8slab"):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    return str(path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_diagnosed_fast(tmp_path):
    config = _kubeconfig(tmp_path, f"https://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as info:
        cl.Cluster.connect("kind-k8slab", timeout=5, kubeconfig=config)
    assert time.monotonic() - started < 5
    assert "connection refused" in info.value.message
    assert "make cluster" in info.value.hint


def test_silent_server_times_out_within_the_budget(tmp_path):
    # a listener that accepts and never answers: the read must time out, not hang
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    config = _kubeconfig(tmp_path, f"https://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        with pytest.raises(ClusterUnreachable) as info:
            cl.Cluster.connect("kind-k8slab", timeout=1.5, kubeconfig=config)
    finally:
        server.close()
    assert time.monotonic() - started < 5
    assert "1.5 s" in info.value.message or "timed out" in info.value.message.lower()


def test_missing_kubeconfig(tmp_path):
    with pytest.raises(ClusterUnreachable) as info:
        cl.Cluster.connect(kubeconfig=str(tmp_path / "nope"))
    assert "no kubeconfig" in info.value.message and "make cluster" in info.value.hint


def test_unknown_context_lists_the_known_ones(tmp_path, monkeypatch):
    config = _kubeconfig(tmp_path, "https://127.0.0.1:1", context="other")
    monkeypatch.delenv("K8SLAB_CONTEXT", raising=False)
    with pytest.raises(ClusterUnreachable) as info:
        cl.Cluster.connect(kubeconfig=config)
    assert "'kind-k8slab'" in info.value.message and "other" in info.value.message


def test_context_env_override(monkeypatch):
    monkeypatch.setenv("K8SLAB_CONTEXT", "kind-other")
    assert cl.default_context() == "kind-other"
    monkeypatch.delenv("K8SLAB_CONTEXT")
    assert cl.default_context() == "kind-k8slab"


@pytest.mark.parametrize("exc, words", [
    (OSError("HTTPSConnection: Failed to establish a new connection: [Errno 111] Connection refused"), "refused"),
    (TimeoutError("timed out"), "within"),
    (OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "TLS"),
    (OSError("[Errno -2] Name or service not known"), "does not resolve"),
    (RuntimeError("weird"), "could not reach"),
])
def test_diagnosis_mapping(exc, words):
    error = cl.diagnose_unreachable(exc, "kind-k8slab", "https://127.0.0.1:6443", 5)
    assert words in error.message and error.hint


def test_exec_status_parsing():
    assert cl.parse_exec_status("") == (0, "")
    assert cl.parse_exec_status("status: Success\nmetadata: {}") == (0, "")
    failure = ("status: Failure\nreason: NonZeroExitCode\nmessage: 'command terminated with non-zero exit code'\n"
               "details: {causes: [{reason: ExitCode, message: '7'}]}")
    assert cl.parse_exec_status(failure) == (7, "command terminated with non-zero exit code")
    rc, msg = cl.parse_exec_status("status: Failure\nmessage: 'exec: \"curl\": executable file not found'")
    assert rc == 126 and "curl" in msg


# ---------------------------------------------------------------------- namespaces: refuse what is not ours
class _FakeCore:
    def __init__(self, labels):
        self.labels = labels
        self.deleted = []

    def read_namespace(self, name, **kw):
        return SimpleNamespace(metadata=SimpleNamespace(name=name, labels=self.labels),
                               status=SimpleNamespace(phase="Active"))

    def delete_namespace(self, name, **kw):
        self.deleted.append(name)

    def delete_collection_namespaced_pod(self, name, **kw):
        pass


def _fake_cluster(labels):
    c = cl.Cluster.__new__(cl.Cluster)
    c._apis = {"CoreV1Api": _FakeCore(labels)}
    c.timeout, c.server, c.context = 5, "https://x", "kind-k8slab"
    return c


def test_refuses_to_delete_a_namespace_without_the_label():
    c = _fake_cluster({"team": "prod"})
    with pytest.raises(ClusterError) as info:
        c.delete_namespaces(["payments"], wait=False)
    assert "refusing to delete Namespace payments" in info.value.message
    assert "k8slab.dev/owned=true" in info.value.message
    assert c.core.deleted == []


def test_deletes_owned_namespace():
    c = _fake_cluster({"k8slab.dev/owned": "true"})
    c.delete_namespaces(["k8slab-x"], wait=False)
    assert c.core.deleted == ["k8slab-x"]


def test_apply_refuses_unowned_namespace():
    c = _fake_cluster(None)
    c._resource = lambda obj: SimpleNamespace(namespaced=True)
    with pytest.raises(ClusterError) as info:
        c.apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default"}}])
    assert "refusing to write into Namespace default" in info.value.message


def test_check_run_detects_a_concurrent_grading_run():
    c = _fake_cluster({"k8slab.dev/owned": "true", "k8slab.dev/run": "other"})
    c.check_run(["k8slab-x"], "")  # no run id: nothing to compare
    with pytest.raises(ClusterError) as info:
        c.check_run(["k8slab-x"], "mine")
    assert "taken over by another grading run" in info.value.message and "run other" in info.value.message
    c2 = _fake_cluster({"k8slab.dev/owned": "true", "k8slab.dev/run": "mine"})
    c2.check_run(["k8slab-x"], "mine")
