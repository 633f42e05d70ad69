"""Unit-test fixtures: a throwaway course checkout (labs/, solutions/, a grader module) and a fake cluster."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Imported before pytester snapshots sys.modules: modules first imported inside an in-process pytest run are
# dropped afterwards, and a second copy would defeat monkeypatches and rich's isinstance checks.
import graders.cluster  # noqa: F401
import graders.pytest_plugin  # noqa: F401
import graders.render  # noqa: F401
import graders.status  # noqa: F401
from fakelab import LAB_ID, LAB_YAML, fake_module, pod, service, write
from fakes import FakeCluster


@pytest.fixture(autouse=True)
def _no_controller_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake clusters have no Traefik to wait for (lab 04's CONTROLLER_SETTLE; its own test sets it back)."""
    from graders.labs import lab04_ingress

    monkeypatch.setattr(lab04_ingress, "CONTROLLER_SETTLE", 0.0)


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A complete fake checkout at K8SLAB_ROOT with lab 99-fake and its grader module registered."""
    root = tmp_path / "course"
    write(root / "labs" / LAB_ID / "lab.yaml", LAB_YAML)
    write(root / "labs" / LAB_ID / "hello-pod" / "pod.yaml", pod(label="CHANGE-ME"))
    write(root / "labs" / LAB_ID / "expose" / "service.yaml", service(selector="CHANGE-ME"))
    solutions = root / "solutions" / LAB_ID
    write(solutions / "hello-pod" / "pod.yaml", pod())
    write(solutions / "expose" / "service.yaml", service())
    write(solutions / "mistakes" / "hello-pod" / "wrong-label" / "pod.yaml", pod(label="api"))
    write(solutions / "mistakes" / "hello-pod" / "latest-image" / "pod.yaml", pod(image="nginx:latest"))
    write(solutions / "mistakes" / "expose" / "wrong-port" / "service.yaml", service(port=80))
    write(solutions / "mistakes" / "expose" / "no-selector" / "service.yaml", service(selector="api"))
    write(root / "environment" / "versions.env", "KUBERNETES_VERSION=v1.34.4\nKIND_VERSION=v0.30.0\n")
    monkeypatch.setenv("K8SLAB_ROOT", str(root))
    monkeypatch.setenv("K8SLAB_CACHE", str(tmp_path / "cache"))  # run locks live there
    monkeypatch.setitem(sys.modules, "graders.labs.lab99_fake", fake_module())
    from graders import versions

    versions.pinned.cache_clear()
    yield root
    versions.pinned.cache_clear()


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch):
    """Cluster.connect raises ClusterUnreachable, as with no kind cluster running."""
    from graders.errors import ClusterUnreachable

    cluster_module = sys.modules["graders.cluster"]

    def connect(context=None, timeout=5, kubeconfig=None):
        raise ClusterUnreachable("nothing listens at https://127.0.0.1:6443 (context kind-k8slab)",
                                 hint="create it with `make cluster`")

    monkeypatch.setattr(cluster_module.Cluster, "connect", staticmethod(connect))


@pytest.fixture
def fake_connect(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """Cluster.connect returns one shared FakeCluster (for front ends that connect themselves)."""
    cluster_module = sys.modules["graders.cluster"]
    shared = FakeCluster()
    monkeypatch.setattr(cluster_module.Cluster, "connect", staticmethod(lambda *a, **k: shared))
    return shared
