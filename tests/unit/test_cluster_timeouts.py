"""A stalled API server cannot hang the dynamic client's discovery: requests that take no `_request_timeout=`
get the connection's default timeout (graders.cluster.client.default_request_timeout)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from graders.cluster.client import Cluster, default_request_timeout
from graders.errors import ClusterError


@pytest.fixture
def stalled_server():
    """A loopback server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_discovery_on_a_stalled_server_fails_within_the_timeout(stalled_server):
    import kubernetes.client as k8s

    cfg = k8s.Configuration()
    cfg.host = stalled_server
    cfg.retries = 0
    api_client = k8s.ApiClient(cfg)
    default_request_timeout(api_client, connect=1, read=1)
    cluster = Cluster(api_client, "stalled", stalled_server, timeout=1)
    started = time.monotonic()
    with pytest.raises(ClusterError) as info:
        cluster.dynamic  # noqa: B018 — discovery happens on first use
    assert time.monotonic() - started < 8
    assert "discovering the API resources" in info.value.message
