"""graders.meshplan: lab 06's service mesh on the online cluster, as data — every command checked here, since no
machine of the project reaches the chart repositories (the plan has not run in the project's CI)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from graders import clusterplan as cp
from graders import meshplan as mp
from graders import versions

PINS = versions.pinned()


def _lines(steps):
    return [" ".join(s.argv) for s in steps]


def test_the_pins_exist_and_name_the_versions_the_lab_was_written_for():
    assert PINS["ISTIO_VERSION"].startswith("1.28.")
    assert PINS["LINKERD_VERSION"].startswith("edge-") and PINS["LINKERD_CHART_VERSION"] == \
        PINS["LINKERD_VERSION"].removeprefix("edge-").replace("25.", "2025.", 1)
    assert PINS["ISTIO_API_MODULE_VERSION"] == "v" + PINS["ISTIO_VERSION"]
    for key in ("ISTIO_BASE_CHART_SHA256", "ISTIO_ISTIOD_CHART_SHA256", "LINKERD_CRDS_CHART_SHA256",
                "LINKERD_CONTROL_PLANE_CHART_SHA256", *(f"{cli}_SHA256_{os_}_{arch}" for cli in ("ISTIOCTL", "LINKERD_CLI")
                                                        for os_ in ("linux", "darwin") for arch in ("amd64", "arm64"))):
        value = PINS[key]
        # a real digest, or the marker that says where to read it: never a made-up value
        assert len(value) == 64 and int(value, 16) >= 0 or value.startswith(mp.UNVERIFIED + "-fill-in-from-"), key


def test_istio_plan_pulls_verifies_and_installs_that_very_file(tmp_path):
    steps = mp.plan("istio", cache=tmp_path)
    lines = _lines(steps)
    v = PINS["ISTIO_VERSION"]
    order = ["docker inspect", "get deployment/linkerd-destination", f"helm pull base --repo "
             f"{PINS['ISTIO_CHARTS_REPO']} --version {v}", "verify", "upgrade --install istio-base",
             f"helm pull istiod", "verify", "upgrade --install istiod", "rollout status deployment/istiod"]
    positions, start = [], 0
    for marker in order:
        start = next(i for i in range(start, len(lines)) if marker in lines[i])
        positions.append(start)
        start += 1
    assert positions == sorted(positions)
    for chart, key in (("base", "ISTIO_BASE_CHART_SHA256"), ("istiod", "ISTIO_ISTIOD_CHART_SHA256")):
        archive = str(tmp_path / "mesh" / "charts" / f"{chart}-{v}.tgz")
        verify = next(s for s in steps if s.argv[-2:] == (archive, key))
        install = next(s for s in steps if archive in s.argv and s.argv[:3] == ("helm", "upgrade", "--install"))
        assert steps.index(verify) < steps.index(install)
        assert "--kube-context" in install.argv and install.argv[install.argv.index("--kube-context") + 1] == cp.CONTEXT
    istiod = next(s for s in steps if "istiod" in s.argv and "upgrade" in s.argv)
    assert "pilot.resources.requests.memory=256Mi" in istiod.argv  # a laptop's kind cluster, not 2 GiB


def test_linkerd_plan_makes_its_identity_then_installs_the_edge_charts(tmp_path):
    steps = mp.plan("linkerd", cache=tmp_path)
    lines = _lines(steps)
    identity = tmp_path / "mesh" / "linkerd-identity"
    first = next(i for i, s in enumerate(steps) if s.argv[:2] == ("sh", "-c") and "openssl" in s.argv[2])
    crds = next(i for i, line in enumerate(lines) if "upgrade --install linkerd-crds" in line)
    control = next(i for i, line in enumerate(lines) if "upgrade --install linkerd-control-plane" in line)
    assert first < crds < control
    assert "installGatewayAPI=false" in steps[crds].argv, "the course cluster brings Gateway API's CRDs itself"
    argv = steps[control].argv
    assert argv[argv.index("--set-file") + 1] == f"identityTrustAnchorsPEM={identity / 'ca.crt'}"
    assert f"identity.issuer.tls.keyPEM={identity / 'issuer.key'}" in argv
    assert f"--version {PINS['LINKERD_CHART_VERSION']}" in lines[control - 2]
    assert any("rollout status deployment/linkerd-destination" in line for line in lines[control:])
    assert "get deployment/istiod" in lines[1]


def test_every_url_is_pinned_https():
    for mesh in mp.MESHES:
        for step in mp.plan(mesh):
            for arg in step.argv:
                if arg.startswith("http"):
                    assert arg.startswith("https://") and "latest" not in arg, arg
            if step.argv[:2] == ("helm", "pull"):
                assert step.argv[step.argv.index("--version") + 1] in (PINS["ISTIO_VERSION"],
                                                                        PINS["LINKERD_CHART_VERSION"])


def test_a_missing_pin_names_the_key():
    with pytest.raises(KeyError, match="LINKERD_VERSION"):
        mp.plan("linkerd", pins={})
    with pytest.raises(ValueError, match="choose one of: istio, linkerd"):
        mp.plan("consul")


# ---------------------------------------------------------------------------------------------- checksums
def test_verify_accepts_the_pinned_digest_and_refuses_anything_else(tmp_path):
    archive = tmp_path / "base-1.28.3.tgz"
    archive.write_bytes(b"chart bytes")
    digest = mp.sha256_of(archive)
    assert mp.verify(archive, "K", {"K": digest}, trust=False)[0] == 0
    code, text = mp.verify(archive, "K", {"K": "0" * 64}, trust=False)
    assert code == 1 and "sha256 mismatch" in text and digest in text
    assert mp.verify(tmp_path / "missing.tgz", "K", {"K": digest}, trust=False)[0] == 1


def test_an_unverified_pin_stops_the_plan_unless_trusted(tmp_path, monkeypatch):
    archive = tmp_path / "istiod-1.28.3.tgz"
    archive.write_bytes(b"chart")
    pins = {"K": "UNVERIFIED-fill-in-from-the-chart-repository-index.yaml"}
    code, text = mp.verify(archive, "K", pins, trust=False)
    assert code == 1 and "not been verified yet" in text and f"K={mp.sha256_of(archive)}" in text
    code, text = mp.verify(archive, "K", pins, trust=True)
    assert code == 0 and text.startswith("warning:") and f"K={mp.sha256_of(archive)}" in text
    monkeypatch.setenv(mp.TRUST_ENV, "1")
    assert mp.verify(archive, "K", pins)[0] == 0


def test_verify_is_a_command_the_plan_runs(tmp_path, capsys):
    archive = tmp_path / "x.tgz"
    archive.write_bytes(b"x")
    assert mp.main(["verify", str(archive), "ISTIO_BASE_CHART_SHA256"]) == 1  # UNVERIFIED in versions.env
    assert "not been verified yet" in capsys.readouterr().err
    assert mp.main(["nonsense"]) == 2


# ---------------------------------------------------------------------------------------------- guards
def _fake_tool(tmp_path: Path, name: str, script: str) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_the_offline_cluster_is_refused_with_the_reason(tmp_path):
    env = _fake_tool(tmp_path, "docker", "echo k8slab/node:v1.34.4")
    done = subprocess.run(list(mp.online_guard().argv), env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "no service mesh on the offline cluster" in done.stderr
    env = _fake_tool(tmp_path, "docker", "echo kindest/node:v1.34.0")
    assert subprocess.run(list(mp.online_guard().argv), env=env).returncode == 0


def test_a_second_mesh_is_refused(tmp_path):
    env = _fake_tool(tmp_path, "kubectl", "exit 0")  # the other mesh's control plane exists
    done = subprocess.run(list(mp.other_mesh_guard("istio").argv), env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "linkerd already runs on this cluster" in done.stderr
    env = _fake_tool(tmp_path, "kubectl", "exit 1")
    assert subprocess.run(list(mp.other_mesh_guard("linkerd").argv), env=env).returncode == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_linkerd_identity_is_made_once_and_kept(tmp_path):
    script = mp.linkerd_identity_script(tmp_path / "id")
    assert subprocess.run(["sh", "-c", script], capture_output=True).returncode == 0
    anchor = (tmp_path / "id" / "ca.crt").read_bytes()
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "id" / "issuer.crt"), "-noout", "-text"],
                          capture_output=True, text=True).stdout
    assert "CN = identity.linkerd.cluster.local" in text and "prime256v1" in text and "CA:TRUE, pathlen:0" in text
    assert subprocess.run(["sh", "-c", script], capture_output=True).returncode == 0
    assert (tmp_path / "id" / "ca.crt").read_bytes() == anchor, "a re-run keeps the mesh's trust anchor"


# ---------------------------------------------------------------------------------------------- CLI
def test_dry_run_prints_every_command(capsys):
    assert cp.main(["cluster", "mesh", "istio", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n# ") + out.startswith("# ") == len(mp.plan("istio"))
    assert "helm upgrade --install istiod" in out and "graders.meshplan verify" in out


def test_cluster_up_with_a_mesh_installs_it_last(capsys):
    assert cp.main(["cluster", "up", "--mesh", "linkerd", "--dry-run", "--subnet", "172.20.0.0/16"]) == 0
    out = capsys.readouterr().out
    assert out.index("cert-manager") < out.index("linkerd-control-plane")


def test_offline_paths_refuse_a_mesh_before_building_anything(capsys):
    assert cp.main(["cluster", "mesh", "istio", "--offline"]) == 2
    assert "no service mesh on the offline cluster" in capsys.readouterr().err
    assert cp.main(["cluster", "up", "--offline", "--mesh", "istio", "--dry-run"]) == 2
    assert "Envoy" in capsys.readouterr().err
    assert cp.main(["cluster", "up", "--cni", "calico", "--mesh", "istio", "--dry-run"]) == 2


def test_make_mesh_dispatches_to_the_plan():
    out = subprocess.run(["make", "-n", "mesh", "MESH=linkerd", "DRY_RUN=1", "VENV=/nonexistent"],
                         cwd=Path(cp.__file__).parents[1], capture_output=True, text=True).stdout
    assert "cluster mesh linkerd  --dry-run" in out
    out = subprocess.run(["make", "-n", "cluster", "OFFLINE=1", "MESH=istio", "VENV=/nonexistent"],
                         cwd=Path(cp.__file__).parents[1], capture_output=True, text=True).stdout
    assert out.index("cluster mesh istio --offline") < out.index("cluster-up.sh")
