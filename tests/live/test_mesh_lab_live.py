"""Live, on the cluster `make test` finds: lab 06 (service mesh) on a cluster WITHOUT a mesh — the offline cluster of
the project's CI — is reported "not graded: needs the online cluster with a mesh" for every exercise, through every
front end: never a pass, never a crash, never a failure of the learner's files, and nothing is created on the
cluster. On a cluster with a mesh this test skips: tests/live/test_labs_live.py grades the lab for real there.
"""
from __future__ import annotations

import pytest

from graders import cli, engine, mesh, nbgrader, paths, render, spec
from graders.errors import GradingError

pytestmark = pytest.mark.live

LAB = "06-service-mesh"


@pytest.fixture
def no_mesh(k8slab_cluster):
    found = mesh.detect(k8slab_cluster)
    if isinstance(found, mesh.Mesh):
        pytest.skip(f"{k8slab_cluster.context} runs {found.title}: lab 06 is graded for real by test_labs_live.py")
    assert found is None, f"the cluster's control-plane namespaces could not be read: {found.reason}"
    return k8slab_cluster


@pytest.mark.parametrize("files", ["solutions", "starters"])
def test_every_exercise_is_not_graded_and_nothing_is_created(no_mesh, files):
    lab = spec.load_lab(LAB, paths.repo_root())
    before = set(no_mesh.owned_namespaces())
    submission = paths.repo_root() / "solutions" / LAB if files == "solutions" else None  # None: labs/<lab>/
    result = engine.grade(LAB, submission=submission, cluster=no_mesh)
    assert [e.exercise for e in result.exercises] == [ex.id for ex in lab.exercises]
    for outcome in result.exercises:
        shown = render.exercise_text(outcome, verbose=True)
        assert outcome.ungraded == mesh.NEEDS_MESH and outcome.message == mesh.NEEDS_MESH, shown
        assert not outcome.passed and outcome.score == 0 and outcome.failed_step == "requires", shown
        assert outcome.steps[0].step == "parse" and outcome.steps[0].passed, shown  # the files are fine
    assert render.verdict_word(result) == "NOT GRADED" and cli.exit_code(result) == cli.EXIT_NOT_GRADED
    assert set(no_mesh.owned_namespaces()) == before, "a lab that cannot be graded must not touch the cluster"


def test_the_cli_exits_5_and_says_why(no_mesh, capsys):
    assert cli.main(["grade", LAB, "--exercise", "join", "--context", no_mesh.context]) == cli.EXIT_NOT_GRADED
    out = capsys.readouterr().out
    assert "not graded: needs the online cluster with a mesh" in out and "NOT GRADED" in out


def test_nbgrader_says_it_could_not_grade(no_mesh, monkeypatch):
    monkeypatch.setenv("K8SLAB_CONTEXT", no_mesh.context)
    with pytest.raises(GradingError, match="could not be graded: not graded: needs the online cluster with a mesh"):
        nbgrader.scored(LAB, "strict-mtls", 2)
