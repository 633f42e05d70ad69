"""Small modules: pinned versions, paths, error formatting, the lab registry."""
from __future__ import annotations

import types

import pytest

from graders import labs, paths, versions
from graders.errors import ClusterError, K8sLabError, NotReady, Problem, SpecError, SubmissionError
from graders.exercise import Exercise


def test_versions_parse_key_values_and_comments():
    text = "# pinned\n\nKUBERNETES_VERSION=v1.34.4\nKIND_NODE_IMAGE=kindest/node:v1.34.0@sha256:abc\n"
    assert versions.parse(text) == {"KUBERNETES_VERSION": "v1.34.4", "KIND_NODE_IMAGE": "kindest/node:v1.34.0@sha256:abc"}


@pytest.mark.parametrize("line", ["KIND = v1", "KIND=\"v1\" x", "export KIND=v1", "=v1"])
def test_versions_malformed_line_names_file_and_line(line):
    with pytest.raises(SpecError, match=r"versions.env:2: expected KEY=VALUE"):
        versions.parse(f"A=1\n{line}\n", source="versions.env")


def test_versions_read_from_the_checkout(course):
    assert versions.get("KUBERNETES_VERSION") == "v1.34.4"
    assert versions.get("MISSING", "fallback") == "fallback"
    assert versions.kubernetes_minor() == "1.34"


def test_missing_versions_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read pinned versions"):
        versions.load(tmp_path / "versions.env")


@pytest.mark.parametrize("given, minor", [("v1.34.4", "1.34"), ("1.35.0", "1.35"), ("v1.9", "1.9"), ("latest", "")])
def test_kubernetes_minor(given, minor):
    assert versions.kubernetes_minor(given) == minor


def test_the_repository_pins_the_versions_the_engine_needs():
    pinned = versions.load(paths.repo_root() / "environment" / "versions.env")
    assert versions.kubernetes_minor(pinned["KUBERNETES_VERSION"])


def test_offline_add_on_images_are_tagged_with_the_version_they_are_built_from():
    """Our offline images carry the upstream version they are built from: a bump of one without the other would
    run an old build under a new name (or the reverse)."""
    pins = versions.load(paths.repo_root() / "environment" / "versions.env")
    for image, version in (("CERT_MANAGER_CONTROLLER_IMAGE", "CERT_MANAGER_VERSION"),
                           ("TRAEFIK_IMAGE", "TRAEFIK_VERSION"), ("KUBE_ROUTER_IMAGE", "KUBE_ROUTER_VERSION"),
                           ("METALLB_CONTROLLER_IMAGE", "METALLB_VERSION"), ("FLANNEL_IMAGE", "FLANNEL_VERSION")):
        assert pins[image].rsplit(":", 1)[1] == pins[version], image


def test_paths_follow_k8slab_root(course):
    assert paths.repo_root() == course.resolve()
    assert paths.lab_dir("99-fake") == course.resolve() / "labs" / "99-fake"
    assert paths.spec_file("99-fake").name == "lab.yaml"
    assert paths.versions_file() == course.resolve() / "environment" / "versions.env"
    assert paths.relative(course / "labs" / "x.yaml") == "labs/x.yaml"


def test_paths_default_to_the_checkout(monkeypatch):
    monkeypatch.delenv("K8SLAB_ROOT", raising=False)
    assert (paths.repo_root() / "graders" / "paths.py").is_file()


def test_problem_and_submission_error_formatting():
    full = Problem("privileged: true is not allowed", file="pod.yaml", line=12, ref="Pod ns/web")
    assert str(full) == "Pod ns/web (pod.yaml:12): privileged: true is not allowed"
    assert str(Problem("bad", file="a.yaml")) == "a.yaml: bad"
    assert str(Problem("empty")) == "empty"
    error = SubmissionError([full, Problem("x", file="b.yaml", line=1)])
    assert error.message.splitlines() == ["2 problems in the submitted manifests:",
                                          "  - Pod ns/web (pod.yaml:12): privileged: true is not allowed",
                                          "  - b.yaml:1: x"]
    assert SubmissionError([full]).message.startswith("1 problem in")


def test_errors_carry_a_hint_and_their_object():
    error = ClusterError("applying Pod ns/web: forbidden", ref="Pod ns/web", reason="Forbidden", hint="ask")
    assert str(error) == "applying Pod ns/web: forbidden\n  hint: ask"
    assert isinstance(NotReady("x", diagnoses=["a"]), K8sLabError)
    assert NotReady("x", diagnoses=["a"]).diagnoses == ("a",)


def test_lab_module_names_follow_the_lab_id():
    assert labs.module_name("05-network-policy") == "lab05_network_policy"
    assert labs.module_name("00-orientation") == "lab00_orientation"
    with pytest.raises(SpecError, match="must look like NN-name"):
        labs.module_name("network-policy")


def test_lab_registry_checks_lab_id_and_exercises(monkeypatch):
    import sys

    with pytest.raises(SpecError, match="has no grader module graders/labs/lab98_missing.py"):
        labs.load("98-missing")
    wrong = types.ModuleType("graders.labs.lab97_wrong")
    wrong.LAB_ID = "97-other"
    monkeypatch.setitem(sys.modules, "graders.labs.lab97_wrong", wrong)
    with pytest.raises(SpecError, match="LAB_ID is '97-other'"):
        labs.load("97-wrong")
    wrong.LAB_ID = "97-wrong"
    wrong.EXERCISES = {"a": lambda ctx: None}
    with pytest.raises(SpecError, match="EXERCISES must be a dict"):
        labs.load("97-wrong")
    wrong.EXERCISES = {"a": Exercise(live=lambda ctx: None)}
    assert labs.exercises("97-wrong")["a"].live is not None
