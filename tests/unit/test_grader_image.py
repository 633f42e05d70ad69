"""The grading image's build context (graders.course.grader_image), checked without docker: what goes in (tracked
graders/ and labs/ files, versions.env), what never does (solutions, tests, notebooks, credentials, untracked
files), the dependencies a grading run imports and nothing of the instructor's tools, and how it runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fakelab import write
from graders import paths
from graders.course import grader_image

REPO = paths.repo_root()
# Imported when installed, skipped when not (a guarded import): present in a virtualenv with the browser tests'
# Selenium, never needed by a grading Job. The image's own modules import without them (test below, python -S).
OPTIONAL_IMPORTS = {"pysocks": "requests.adapters tries urllib3.contrib.socks (a SOCKS proxy); Jobs use none"}


def _git_repo(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for rel in ("graders/__init__.py", "graders/labs/lab01.py", "labs/01-x/lab.yaml", "labs/01-x/world.yaml",
                "labs/01-x/01-x.ipynb", "labs/01-x/01-x.md", "labs/04-y/certs/ca.key", "solutions/01-x/a/pod.yaml",
                "solutions/01-x/mistakes/a/b/pod.yaml", "tests/unit/test_x.py", "environment/versions.env",
                "environment/secret.env", "environment/kind/cluster.yaml", "labs/01-x/kubeconfig",
                "labs/01-x/gradebook.db", "pyproject.toml", "docs/x.md"):
        write(root / rel, "x\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    write(root / "labs" / "01-x" / "untracked.yaml", "instructor's scratch\n")
    write(root / "graders" / "local_settings.py", "TOKEN = 'x'\n")
    return root


def test_the_context_holds_tracked_grader_and_lab_files_only(tmp_path):
    files = grader_image.app_files(_git_repo(tmp_path))
    assert files == ["environment/versions.env", "graders/__init__.py", "graders/labs/lab01.py",
                     "labs/01-x/lab.yaml", "labs/01-x/world.yaml", "labs/04-y/certs/ca.key", "pyproject.toml"]


def test_the_real_checkout_ships_every_lab_spec_and_no_solution():
    files = grader_image.app_files(REPO)
    specs = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "labs").glob("*/lab.yaml"))
    assert specs and set(specs) <= set(files)
    assert not [f for f in files if f.startswith(("solutions/", "tests/")) or f.endswith(".ipynb")]
    assert "graders/cli.py" in files and "environment/versions.env" in files


def test_the_runtime_dependencies_are_what_grading_imports_and_no_instructor_tool():
    names = {grader_image._canonical(d.metadata["Name"]) for d in grader_image.runtime_distributions()}
    assert not names & {grader_image._canonical(n) for n in grader_image.NEVER}
    probe = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
import graders.cli, graders.engine, graders.resultline, graders.cluster.client as c, graders.cluster.prepared, graders.labs
c._load_client()
from kubernetes.dynamic import DynamicClient
import kubernetes_validate
for m in pkgutil.iter_modules(graders.labs.__path__):
    importlib.import_module("graders.labs." + m.name)
import importlib.metadata as md
owners = md.packages_distributions()
top = {n.split(".")[0] for n in set(sys.modules) - before}
print(json.dumps(sorted({d for t in top for d in owners.get(t, []) if d != "k8slab"})))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd=str(REPO))
    imported = {grader_image._canonical(n) for n in json.loads(out.stdout)} - set(OPTIONAL_IMPORTS)
    assert imported <= names, f"imported by grading but not in the image: {sorted(imported - names)}"


def test_the_image_runs_the_cli_as_nobody_with_the_labs_at_k8slab_root(tmp_path, monkeypatch):
    text = grader_image.dockerfile("k8slab/python-base:bookworm")
    lines = text.splitlines()
    assert lines[0] == "FROM k8slab/python-base:bookworm"
    assert "USER 65534:65534" in lines and f"K8SLAB_ROOT={grader_image.APP}" in text
    assert f"sys.version_info[:2] == ({sys.version_info[0]}, {sys.version_info[1]})" in text
    assert "ln -sf python3 /usr/bin/python" in text  # the Job's command starts with `python`
    monkeypatch.setenv("K8SLAB_ROOT", grader_image.APP)
    assert paths.labs_dir() == Path(grader_image.APP) / "labs"


def test_the_loader_is_the_offline_paths_own():
    script = (REPO / "environment" / "offline" / "build-grader-image.sh").read_text()
    assert 'source "$(dirname "$0")/lib.sh"' in script and "load_images " in script
    assert "load_images()" in (REPO / "environment" / "offline" / "lib.sh").read_text()
    assert "load_images()" not in (REPO / "environment" / "offline" / "cluster-up.sh").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "grader-image: venv\n\tenvironment/offline/build-grader-image.sh" in makefile


def test_the_image_keeps_only_the_pinned_schema_and_validates_with_it(tmp_path):
    """kubernetes-validate's 26 schema directories (~108 MB) become one: the pinned minor's strict schema. The
    context's own site-packages alone (python -S: no virtualenv) still validates a manifest, typos included."""
    counts = grader_image.write_context(tmp_path / "ctx", "k8slab/python-base:bookworm")
    assert counts["site-packages files"] > 100
    schemas = tmp_path / "ctx" / "site-packages" / "kubernetes_validate" / "kubernetes-json-schema"
    minor = grader_image.versions.kubernetes_minor(None)
    assert [p.name for p in schemas.iterdir()] == [f"v{minor}.0-local-strict"]
    size = sum(f.stat().st_size for f in schemas.rglob("*") if f.is_file())
    assert size < 15_000_000, size
    probe = """
from graders import manifests
import pathlib
pathlib.Path("svc.yaml").write_text("apiVersion: v1\\nkind: Service\\nmetadata: {name: s}\\nspec: {ports: [{port: 80}], slector: {}}\\n")
[m] = manifests.load(["svc.yaml"])
version, note = manifests.choose_schema_version(manifests.versions.kubernetes_minor(None))
import graders.cluster.client as c
c._load_client()
from kubernetes.dynamic import DynamicClient  # what a grading Job imports to reach the API server
problems, unknown = manifests.check_schema([m], version)
print(version, note == "", [p.message for p in problems])
"""
    ctx = tmp_path / "ctx"
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": f"{ctx / 'app'}:{ctx / 'site-packages'}", "K8SLAB_ROOT": str(ctx / "app"),
                              "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"{minor} True [") and "slector" in out.stdout, out.stdout
    # what build-grader-image.sh runs as its smoke test, and the Job's own command line: the CLI's every
    # subcommand parser is built with the image's modules only (no nbformat, jupytext, nbgrader)
    for argv in (["labs"], ["grade", "--help"]):
        cli = subprocess.run([sys.executable, "-S", "-m", "graders.cli", *argv], capture_output=True, text=True,
                             timeout=120, env={"PYTHONPATH": f"{ctx / 'app'}:{ctx / 'site-packages'}",
                                               "K8SLAB_ROOT": str(ctx / "app"), "PATH": "/usr/bin:/bin",
                                               "HOME": str(tmp_path)}, cwd=str(tmp_path))
        assert cli.returncode == 0 and "Traceback" not in cli.stderr, (argv, cli.stderr[-2000:])
