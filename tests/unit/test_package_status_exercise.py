"""Packaging (pyproject), the public names, status lines and the Ctx a lab check receives."""
from __future__ import annotations

import io
import re
import tomllib

import pytest

import graders
from graders import paths
from graders.errors import CheckFailed, UsageError
from graders.exercise import Ctx
from graders.manifests import Manifest
from graders.spec import ExerciseSpec
from graders.status import ConsoleStatus, QuietStatus

RUNTIME = ["kubernetes", "pyyaml", "pytest", "jupyterlab", "nbgrader", "docker", "kubernetes-validate", "rich",
           "jupytext"]


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((paths.repo_root() / "pyproject.toml").read_text())


def test_pyproject_installs_the_package_the_console_script_and_the_plugin(project):
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["project"]["scripts"] == {"k8slab": "graders.cli:main"}
    assert project["project"]["entry-points"]["pytest11"] == {"k8slab": "graders.pytest_plugin"}


def test_runtime_dependencies_have_compatible_ranges(project):
    declared = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower(): d for d in project["project"]["dependencies"]}
    for name in RUNTIME:
        assert name in declared, f"{name} is not a dependency"
        assert ">=" in declared[name] and "<" in declared[name].replace("<=", ""), f"{declared[name]}: no range"


def test_pytest_configuration(project):
    ini = project["tool"]["pytest"]["ini_options"]
    assert {m.split(":")[0] for m in ini["markers"]} >= {"live", "pipeline"}
    assert ini["testpaths"] == ["tests"]


def test_public_names():
    for name in graders.__all__:
        assert hasattr(graders, name), name
    assert {"grade", "check", "scored", "Exercise", "Ctx", "CheckFailed"} <= set(graders.__all__)


def console_status(jupyter: bool = False):
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, force_jupyter=jupyter, width=100)
    if jupyter:  # rich renders to IPython in Jupyter mode; keep the text for the test
        console.is_jupyter = True
        console.print = lambda text, **kw: buffer.write(str(text) + "\n")
    return ConsoleStatus(console), buffer


def test_console_status_prints_one_line_per_step():
    status, buffer = console_status()
    status.start("hello-pod: checking manifests")
    status.end(True)
    status.start("hello-pod: live traffic")
    status.end(False, "1 cell differs")
    assert buffer.getvalue().splitlines() == [" ✓ hello-pod: checking manifests",
                                              " ✗ hello-pod: live traffic 1 cell differs"]


def test_console_status_in_a_notebook_says_what_it_waits_for():
    status, buffer = console_status(jupyter=True)
    status.start("hello-pod: apply and wait until ready")
    status.end(True)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == " … hello-pod: apply and wait until ready"
    assert "✓" in lines[1]


def test_quiet_status_says_nothing(capsys):
    QuietStatus().start("x")
    QuietStatus().end(False)
    assert capsys.readouterr() == ("", "")


def ctx() -> Ctx:
    spec = ExerciseSpec(lab="99-fake", id="e", title="t", points=1, files=("a.yaml",), allowed_kinds=("Pod",),
                        namespaces=("k8slab-a", "k8slab-b"))
    objects = (Manifest({"kind": "Pod", "metadata": {"name": "web", "namespace": "k8slab-a"}}, "a.yaml", 1),
               Manifest({"kind": "Service", "metadata": {"name": "web", "namespace": "k8slab-a"}}, "a.yaml", 9))
    return Ctx(spec=spec, objects=objects, cluster=None, runner_factory=lambda cluster: "runner")


def test_ctx_helpers():
    c = ctx()
    assert c.namespace() == "k8slab-a" and c.namespace("k8slab-b") == "k8slab-b"
    with pytest.raises(UsageError, match="does not own namespace 'default'"):
        c.namespace("default")
    assert [m.line for m in c.objects_of("Service")] == [9]
    assert c.find("Pod", "web").line == 1 and c.find("Pod", "api") is None
    assert c.prober == "runner" and c.prober is c.prober
    assert c.ok("fine").passed
    with pytest.raises(CheckFailed) as error:
        c.fail("wrong", hint="look", credit=0.5)
    assert (error.value.message, error.value.hint, error.value.credit) == ("wrong", "look", 0.5)
