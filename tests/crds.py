"""The CRDs lab 06's manifests are validated against offline, read from the Go module proxy at the pinned versions —
the way the offline build reads Gateway API's, MetalLB's and cert-manager's (environment/offline/lib.sh): not stored
in this repository, cached by Go in its module cache, each module checked by `go mod download` against
sum.golang.org and here against the go.sum hash pinned in environment/versions.env.

* Istio: istio.io/api at ISTIO_API_MODULE_VERSION (the tag of ISTIO_VERSION), kubernetes/customresourcedefinitions.gen.yaml
* Gateway API: sigs.k8s.io/gateway-api at GATEWAY_API_VERSION, config/crd/standard (the channel the course installs)
* Linkerd (policy.linkerd.io): not obtainable — the proxy refuses github.com/linkerd/linkerd2 — so not validated here.

Without Go or the proxy the tests that need them skip with the reason; in CI (CI=true) or with
K8SLAB_REQUIRE_CRDS=1 they fail instead: CI must prove the manifests against the real schemas.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from graders import crdschema, versions

NOT_OBTAINABLE = {"policy.linkerd.io": "the Go module proxy refuses github.com/linkerd/linkerd2 (no other reachable "
                                       "source ships Linkerd's CRDs): the API server checks them at admission"}


class Unavailable(Exception):
    pass


def module_dir(module: str, version: str, expected_sum: str) -> Path:
    """The module's directory in Go's module cache, downloaded if needed; its go.sum hash must be the pinned one."""
    go = shutil.which("go")
    if go is None:
        raise Unavailable("no `go` command: the CRDs come from the Go module proxy")
    with tempfile.TemporaryDirectory() as empty:  # outside any go.mod
        done = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=empty, capture_output=True,
                              text=True, timeout=600)
    try:
        info = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    if done.returncode != 0 or not info.get("Dir"):
        raise Unavailable(f"go mod download {module}@{version} failed: "
                          f"{info.get('Error') or done.stderr.strip()[-300:]}")
    if info.get("Sum") != expected_sum:
        raise AssertionError(f"{module}@{version} has go.sum hash {info.get('Sum')}, but environment/versions.env "
                             f"pins {expected_sum}: not the module the schemas were reviewed from")
    return Path(info["Dir"])


@functools.lru_cache(maxsize=1)
def sources() -> dict[str, Path]:
    """{what: file} of the CRD files used, read from the pinned modules."""
    pins = versions.pinned()
    istio = module_dir("istio.io/api", pins["ISTIO_API_MODULE_VERSION"], pins["ISTIO_API_MODULE_SUM"])
    gateway = module_dir("sigs.k8s.io/gateway-api", pins["GATEWAY_API_VERSION"], pins["GATEWAY_API_MODULE_SUM"])
    return {"istio": istio / "kubernetes" / "customresourcedefinitions.gen.yaml",
            "gateway-api": gateway / "config" / "crd" / "standard" / "gateway.networking.k8s.io_httproutes.yaml"}


@functools.lru_cache(maxsize=1)
def catalog() -> crdschema.Catalog:
    docs = [d for path in sources().values() for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return crdschema.Catalog(docs)


def catalog_or_skip() -> crdschema.Catalog:
    try:
        return catalog()
    except Unavailable as error:
        reason = f"CRD schemas not obtainable here: {error}"
        if os.environ.get("CI") in ("true", "1") or os.environ.get("K8SLAB_REQUIRE_CRDS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
