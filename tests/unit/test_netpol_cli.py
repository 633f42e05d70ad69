"""``k8slab matrix`` / ``k8slab explain`` (graders.netpol.cli): the exact command-line contract.

    k8slab matrix PATH... [--port PORT] [--protocol TCP|UDP|SCTP] [--json]
    k8slab explain PATH... --from NS/POD --to NS/POD [--port P] [--protocol X]
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graders.netpol import cli as netpol_cli

REPO = Path(__file__).resolve().parents[2]

MODEL = "\n---\n".join(
    [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {{ns: {ns}}}" for ns in "xyz"]
    + [textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: {pod}
          namespace: {ns}
          labels: {{pod: {pod}}}
        spec:
          containers:
          - name: cont-80-tcp
            image: agnhost:2.56
            ports:
            - {{containerPort: 80, name: serve-80-tcp}}
            - {{containerPort: 81, name: serve-81-tcp}}
        status:
          podIP: 10.1.{i + 1}.{j + 1}
        """) for i, ns in enumerate("xyz") for j, pod in enumerate("abc")]
)
PODS = [f"{ns}/{pod}" for ns in "xyz" for pod in "abc"]

DENY_INGRESS_X = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-ingress
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

SEED = """\
apiVersion: v1
kind: Namespace
metadata:
  name: production
  labels: {env: production}
---
apiVersion: v1
kind: Namespace
metadata:
  name: staging
  labels: {env: staging}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: production}
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: production}
spec:
  template:
    metadata:
      labels: {app: api}
    spec:
      containers: [{name: api, image: "api:1", ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: test, namespace: staging, labels: {app: test}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web-to-api
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: api
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: web
        - namespaceSelector:
            matchLabels:
              env: production
      ports:
        - port: 8080
          protocol: TCP
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(argv: list[str]) -> tuple[int, str, str]:
    """Run through a tiny k8slab-like parser built with add_parsers, as graders.cli will."""
    parser = argparse.ArgumentParser(prog="k8slab")
    subparsers = parser.add_subparsers(dest="command", required=True)
    netpol_cli.add_parsers(subparsers)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    func = {"matrix": netpol_cli.run_matrix, "explain": netpol_cli.run_explain}[args.command]
    assert args.func is func
    code = func(args, out, err)
    return code, out.getvalue(), err.getvalue()


def matrix_json(*argv: str) -> dict:
    code, out, err = run(["matrix", *argv, "--json"])
    assert (code, err) == (0, "")
    return json.loads(out)


class TestMatrixJson:
    def test_contract_shape_and_defaults(self, tmp_path):
        doc = matrix_json(write(tmp_path, "model.yaml", MODEL))
        assert list(doc) == ["port", "protocol", "pods", "allowed"]
        assert (doc["port"], doc["protocol"], doc["pods"]) == (80, "TCP", PODS)
        assert set(doc["allowed"]) == set(PODS)
        for src, row in doc["allowed"].items():
            assert set(row) == set(PODS) - {src}  # every ordered pair of distinct pods, no same-pod cell
            assert all(isinstance(v, bool) for v in row.values())
        assert all(all(row.values()) for row in doc["allowed"].values())  # no policy: all allowed

    def test_default_deny_ingress_from_a_directory_of_files(self, tmp_path):
        write(tmp_path, "model.yaml", MODEL)
        write(tmp_path, "policy.yml", DENY_INGRESS_X)
        write(tmp_path, "notes.txt", "not yaml: [")  # directories contribute only *.yaml / *.yml
        doc = matrix_json(str(tmp_path))
        for src, row in doc["allowed"].items():
            for dst, allowed in row.items():
                assert allowed is (not dst.startswith("x/")), (src, dst)

    def test_files_given_separately(self, tmp_path):
        doc = matrix_json(write(tmp_path, "a.yaml", MODEL), write(tmp_path, "b.yaml", DENY_INGRESS_X))
        assert doc["allowed"]["y/a"]["x/a"] is False

    def test_port_and_protocol(self, tmp_path):
        named = DENY_INGRESS_X.replace("deny-ingress", "allow-81").replace(
            "policyTypes: [Ingress]", "ingress: [{ports: [{port: serve-81-tcp}]}]")
        paths = [write(tmp_path, "m.yaml", MODEL), write(tmp_path, "p.yaml", named)]
        doc = matrix_json(*paths, "--port", "81")
        assert doc["port"] == 81 and doc["allowed"]["y/a"]["x/a"] is True
        doc = matrix_json(*paths, "--port", "81", "--protocol", "udp")
        assert doc["protocol"] == "UDP" and doc["allowed"]["y/a"]["x/a"] is False
        assert matrix_json(*paths)["allowed"]["y/a"]["x/a"] is False

    def test_seed_workloads_and_or_peers(self, tmp_path):
        doc = matrix_json(write(tmp_path, "seed.yaml", SEED), "--port", "8080")
        assert doc["pods"] == ["production/api", "production/web", "staging/test"]
        assert doc["allowed"]["production/web"]["production/api"] is True
        assert doc["allowed"]["staging/test"]["production/api"] is False


class TestMatrixGrid:
    def test_readable_grid(self, tmp_path):
        code, out, err = run(["matrix", write(tmp_path, "m.yaml", MODEL), write(tmp_path, "p.yaml", DENY_INGRESS_X)])
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0] == "Reachability on port 80/TCP (rows: from, columns: to)"
        assert lines[1].split()[-9:] == PODS
        assert lines[2].split() == ["x/a", "-", "X", "X", ".", ".", ".", ".", ".", "."]
        assert lines[5].split() == ["y/a", "X", "X", "X", "-", ".", ".", ".", ".", "."]
        assert ". allowed" in lines[-1]

    def test_no_pods(self, tmp_path):
        code, out, _ = run(["matrix", write(tmp_path, "p.yaml", DENY_INGRESS_X)])
        assert code == 0 and "no pods" in out


class TestExplain:
    def test_explains_an_allowed_cell(self, tmp_path):
        code, out, err = run(["explain", write(tmp_path, "seed.yaml", SEED), "--from", "production/web",
                              "--to", "production/api", "--port", "8080"])
        assert (code, err) == (0, "")
        assert out.splitlines()[0] == "production/web -> production/api on 8080/TCP: ALLOWED"
        assert "allowed by production/allow-web-to-api, ingress rule 1, peer 1: podSelector app=web" in out

    def test_explains_a_blocked_cell(self, tmp_path):
        code, out, _ = run(["explain", write(tmp_path, "seed.yaml", SEED), "--from", "staging/test",
                            "--to", "production/api", "--port", "8080", "--protocol", "TCP"])
        assert code == 0
        assert "BLOCKED by the destination's ingress" in out
        assert "no rule's peer matches the source" in out

    def test_defaults_to_port_80(self, tmp_path):
        _, out, _ = run(["explain", write(tmp_path, "seed.yaml", SEED), "--from", "production/web",
                         "--to", "production/api"])
        assert "on 80/TCP: BLOCKED" in out and "not in rule ports [8080/TCP]" in out


class TestBadInput:
    def assert_one_error(self, argv: list[str], *fragments: str) -> str:
        code, out, err = run(argv)
        assert code == 2 and out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert "Traceback" not in err
        for fragment in fragments:
            assert fragment in lines[0], lines[0]
        return lines[0]

    def test_broken_yaml_names_file_and_line(self, tmp_path):
        path = write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n")
        line = self.assert_one_error(["matrix", path], "broken.yaml:", "invalid YAML")
        assert line.startswith("k8slab matrix: error: ")

    def test_missing_path(self, tmp_path):
        self.assert_one_error(["matrix", str(tmp_path / "nope.yaml")], "nope.yaml does not exist")

    def test_directory_without_yaml(self, tmp_path):
        (tmp_path / "empty").mkdir()
        self.assert_one_error(["matrix", str(tmp_path / "empty")], "no *.yaml or *.yml files")

    def test_invalid_policy_names_object_file_and_line(self, tmp_path):
        bad = DENY_INGRESS_X.replace("podSelector: {}", "podSelector:\n    matchExpressions:\n"
                                     "    - {key: app, operator: Equal, values: [web]}")
        path = write(tmp_path, "p.yaml", MODEL + "\n---\n" + bad)
        line = self.assert_one_error(["matrix", path], "p.yaml:", "NetworkPolicy x/deny-ingress",
                                     "operator 'Equal' is not one of")
        document_line = (MODEL + "\n---\n").count("\n") + 1
        assert f"p.yaml:{document_line}:" in line

    def test_document_that_is_not_an_object(self, tmp_path):
        self.assert_one_error(["matrix", write(tmp_path, "l.yaml", "- a\n- b\n")], "l.yaml:1", "Kubernetes object")

    def test_unknown_from_pod(self, tmp_path):
        self.assert_one_error(["explain", write(tmp_path, "m.yaml", MODEL), "--from", "x/q", "--to", "x/a"],
                              "k8slab explain: error: unknown pod 'x/q'")

    def test_from_without_namespace(self, tmp_path):
        self.assert_one_error(["explain", write(tmp_path, "m.yaml", MODEL), "--from", "a", "--to", "x/a"],
                              "--from 'a': expected NS/POD")

    def test_same_pod(self, tmp_path):
        self.assert_one_error(["explain", write(tmp_path, "m.yaml", MODEL), "--from", "x/a", "--to", "x/a"],
                              "same-pod traffic")

    @pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "http"], ["--protocol", "ICMP"]])
    def test_bad_flags_exit_2(self, tmp_path, argv, capsys):
        with pytest.raises(SystemExit) as info:
            run(["matrix", write(tmp_path, "m.yaml", MODEL), *argv])
        assert info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


class TestAsAProgram:
    """``python -m graders.netpol_cli`` end to end, as the external checks run it."""

    def program(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "graders.netpol_cli", *argv], cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    def test_matrix_json(self, tmp_path):
        done = self.program("matrix", write(tmp_path, "m.yaml", MODEL), write(tmp_path, "p.yaml", DENY_INGRESS_X),
                            "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["allowed"]["z/c"]["x/b"] is False and doc["allowed"]["x/b"]["z/c"] is True

    def test_error_exit_status_and_single_line(self, tmp_path):
        done = self.program("explain", write(tmp_path, "m.yaml", MODEL), "--from", "x/a", "--to", "q/q")
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "unknown pod 'q/q'" in done.stderr
