"""Lab specs: dataclasses, paths, and every problem of a bad spec reported at once."""
from __future__ import annotations

import pytest

from fakelab import LAB_ID, NAMESPACE, write
from graders import spec
from graders.errors import SpecError, UsageError


def test_load_lab_reads_exercises_mistakes_and_paths(course):
    lab = spec.load_lab(LAB_ID)
    assert lab.id == LAB_ID and lab.namespaces == (NAMESPACE,)
    assert [e.id for e in lab.exercises] == ["hello-pod", "expose"]
    hello = lab.exercise("hello-pod")
    assert hello.points == 2 and hello.files == ("pod.yaml",) and hello.allowed_kinds == ("Pod",)
    assert hello.namespaces == (NAMESPACE,) and hello.default_namespace == NAMESPACE
    assert [m.id for m in hello.mistakes] == ["wrong-label", "latest-image"]
    assert hello.starter_dir == course / "labs" / LAB_ID / "hello-pod"
    assert hello.solution_dir == course / "solutions" / LAB_ID / "hello-pod"
    assert hello.mistake_dir("wrong-label") == course / "solutions" / LAB_ID / "mistakes" / "hello-pod" / "wrong-label"
    assert hello.mistake_dir(hello.mistakes[0]) == hello.mistake_dir("wrong-label")
    assert hello.mistake("latest-image").message == ":latest"
    assert lab.points == 5 and lab.all_namespaces == (NAMESPACE,)


def test_all_labs_and_lab_ids(course):
    write(course / "labs" / "not-a-lab" / "README.md", "no spec here")
    assert spec.lab_ids() == [LAB_ID]
    assert [lab.id for lab in spec.all_labs()] == [LAB_ID]


def test_unknown_lab_and_exercise(course):
    with pytest.raises(UsageError, match=f"unknown lab '01-nope'.*labs: {LAB_ID}"):
        spec.load_lab("01-nope")
    with pytest.raises(UsageError, match="no exercise 'nope' .*hello-pod, expose"):
        spec.load_lab(LAB_ID).exercise("nope")
    with pytest.raises(UsageError, match="no mistake"):
        spec.load_lab(LAB_ID).exercise("hello-pod").mistake("nope")


def test_exercise_namespaces_override_the_labs(course):
    text = (course / "labs" / LAB_ID / "lab.yaml").read_text().replace(
        "    allowed_kinds: [Pod]\n", "    allowed_kinds: [Pod]\n    namespaces: [k8slab-a, k8slab-b]\n", 1)
    write(course / "labs" / LAB_ID / "lab.yaml", text)
    lab = spec.load_lab(LAB_ID)
    assert lab.exercise("hello-pod").namespaces == ("k8slab-a", "k8slab-b")
    assert lab.all_namespaces == (NAMESPACE, "k8slab-a", "k8slab-b")


BAD = """
id: 99-other
title: ""
namespaces: [Bad_Name]
colour: blue
exercises:
  - id: One
    title: x
    points: -1
    files: []
    allowed_kinds: [Pod]
    mistakes:
      - id: m
      - id: m
        message: y
  - id: One
    title: y
    points: true
    files: [a.yaml]
    allowed_kinds: Pod
    ready_timeout: 0
"""


def test_every_problem_of_a_bad_spec_is_reported_with_its_field(course):
    write(course / "labs" / LAB_ID / "lab.yaml", BAD)
    with pytest.raises(SpecError) as error:
        spec.load_lab(LAB_ID)
    text = str(error.value)
    for fragment in ["lab.yaml", "id: is '99-other' but the directory is '99-fake'", "title: must be a non-empty",
                     "'Bad_Name' is not a valid namespace", "colour: unknown field", "exercises[0].id: 'One' must be",
                     "exercises[0].points: must be a positive number", "exercises[0].files: must be a non-empty list",
                     "exercises[0].mistakes[0].message: must be a non-empty string",
                     "exercises[0].mistakes[1].id: duplicate mistake id 'm'", "exercises[1].id: duplicate exercise id",
                     "exercises[1].points: must be a positive number, got True",
                     "exercises[1].allowed_kinds: must be a non-empty list", "exercises[1].ready_timeout"]:
        assert fragment in text, fragment


def test_broken_spec_yaml_names_the_line(course):
    write(course / "labs" / LAB_ID / "lab.yaml", "id: 99-fake\nexercises: [\n")
    with pytest.raises(SpecError, match=r"lab.yaml:3: invalid YAML"):
        spec.load_lab(LAB_ID)


def test_spec_that_is_not_a_mapping(course):
    write(course / "labs" / LAB_ID / "lab.yaml", "- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        spec.load_lab(LAB_ID)


def _with_namespace_labels(course, block: str):
    text = (course / "labs" / LAB_ID / "lab.yaml").read_text()
    text = text.replace("exercises:\n", f"namespace_labels:\n{block}exercises:\n", 1)
    write(course / "labs" / LAB_ID / "lab.yaml", text)
    return spec.load_lab(LAB_ID)


def test_namespace_labels_are_optional_and_read_per_namespace(course):
    assert spec.load_lab(LAB_ID).namespace_labels == {}
    lab = _with_namespace_labels(course, f"  {NAMESPACE}: {{env: production, example.com/tier: '1'}}\n")
    assert lab.namespace_labels == {NAMESPACE: {"env": "production", "example.com/tier": "1"}}


def test_lab05_declares_the_labels_its_world_relies_on():
    import yaml

    from graders import paths

    lab = spec.load_lab("05-network-policy", paths.repo_root())
    world = yaml.safe_load_all((paths.repo_root() / "labs" / lab.id / "world.yaml").read_text(encoding="utf-8"))
    declared = {d["metadata"]["name"]: d["metadata"]["labels"] for d in world if d and d["kind"] == "Namespace"}
    assert lab.namespace_labels == declared == {"production": {"env": "production"}, "staging": {"env": "staging"}}


@pytest.mark.parametrize(("block", "fragment"), [
    ("  - env\n", "namespace_labels: must map namespace names to their labels"),
    ("  elsewhere: {env: x}\n", "namespace_labels.elsewhere: 'elsewhere' is not one of the lab's namespaces"),
    (f"  {NAMESPACE}: {{'bad key!': x}}\n", "is not a valid label key"),
    (f"  {NAMESPACE}: {{env: 1}}\n", "1 is not a valid label value"),
    (f"  {NAMESPACE}: {{k8slab.dev/owned: 'false'}}\n", "is set by the grader or the API server"),
])
def test_bad_namespace_labels_name_the_field(course, block, fragment):
    with pytest.raises(SpecError) as error:
        _with_namespace_labels(course, block)
    assert fragment in str(error.value)
