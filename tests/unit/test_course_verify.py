"""The safe autograder's trusted run (graders.course.verify): its prepared cluster wraps a real one, and its
records score and word an exercise exactly as graders.nbgrader does."""
from __future__ import annotations

import pytest

from fakelab import LAB_ID, write
from graders import engine, nbgrader
from graders.cluster import OWNED_LABEL, RUN_LABEL, ClusterAPI
from graders.cluster.prepared import PreparedCluster
from graders.nbgrader import record as _record
from graders.errors import ClusterError


class ScopedCluster:
    """What namespace-scoped credentials see: namespaces the harness created, which they may not create,
    relabel or delete. Records every call."""

    def __init__(self, namespaces: dict[str, dict[str, str]]) -> None:
        self.namespaces = namespaces
        self.calls: list[tuple] = []

    def require_owned(self, name):
        self.calls.append(("require_owned", name))
        if self.namespaces.get(name, {}).get(OWNED_LABEL) != "true":
            raise ClusterError(f"Namespace {name} does not exist: graders only write into namespaces they created")

    def namespace_labels(self, name):
        return self.namespaces.get(name)

    def empty_namespaces(self, names, kinds=(), timeout=60, keep_fixtures=False, keep_deployments=None):
        self.calls.append(("empty_namespaces", tuple(names), tuple(kinds)))
        self.kept = keep_deployments

    def list_pods(self, namespace=None, label_selector=None):
        return [f"pod in {namespace}"]

    def __getattr__(self, name):  # any cluster-scoped write would land here
        raise AssertionError(f"the prepared cluster called {name} with namespace-scoped credentials")


OURS = {OWNED_LABEL: "true", RUN_LABEL: "harness-run"}


@pytest.fixture
def scoped():
    return ScopedCluster({"lab-a": dict(OURS, env="production"), "lab-b": dict(OURS)})


def test_reset_only_checks_and_empties_the_harness_namespaces(scoped):
    PreparedCluster(scoped).reset_namespaces(["lab-a", "lab-b"], "grader-run", kinds=["NetworkPolicy"],
                                             labels={"lab-a": {"env": "production"}})
    assert scoped.calls == [("require_owned", "lab-a"), ("require_owned", "lab-b"),
                            ("empty_namespaces", ("lab-a", "lab-b"), ("NetworkPolicy",))]


def test_reset_keeps_a_submissions_unchanged_deployment_for_its_next_exercise(scoped):
    """Safe within one submission: the harness creates the namespaces fresh for each submission."""
    PreparedCluster(scoped).reset_namespaces(["lab-a"], "grader-run", keep_deployments={"lab-a": ["api"]})
    assert scoped.kept == {"lab-a": ["api"]}


def test_namespaces_are_never_created_relabelled_or_deleted(scoped):
    prepared = PreparedCluster(scoped)
    prepared.ensure_owned_namespace("lab-a", "grader-run")
    prepared.delete_namespaces(["lab-a", "lab-b"])
    prepared.check_run(["lab-a", "lab-b"], "grader-run")  # the harness's run id, not the grader's: still ours
    assert [c[0] for c in scoped.calls] == ["require_owned"] * 3


def test_a_namespace_the_harness_did_not_create_is_refused(scoped):
    with pytest.raises(ClusterError, match="does not exist"):
        PreparedCluster(scoped).ensure_owned_namespace("elsewhere")
    with pytest.raises(ClusterError, match="does not exist"):
        PreparedCluster(scoped).check_run(["lab-a", "elsewhere"], "grader-run")


def test_namespace_labels_are_checked_not_written(scoped):
    prepared = PreparedCluster(scoped)
    prepared.label_namespace("lab-a", {"env": "production"})
    with pytest.raises(ClusterError, match="lacks the labels {'env': 'staging'}"):
        prepared.label_namespace("lab-b", {"env": "staging"})
    with pytest.raises(ClusterError, match="lacks the labels"):
        prepared.reset_namespaces(["lab-b"], labels={"lab-b": {"env": "staging"}})


def test_everything_else_is_the_wrapped_clusters(scoped):
    assert PreparedCluster(scoped).list_pods("lab-a") == ["pod in lab-a"]


@pytest.mark.parametrize("case", ["passed", "partial", "failed"])
def test_records_score_and_word_exercises_like_nbgrader(course, fake_connect, case):
    exercise = "hello-pod" if case != "partial" else "expose"
    if case == "passed":
        write(course / "labs" / LAB_ID / exercise / "pod.yaml",
              (course / "solutions" / LAB_ID / exercise / "pod.yaml").read_text())
    if case == "partial":
        write(course / "labs" / LAB_ID / exercise / "service.yaml",
              (course / "solutions" / LAB_ID / "mistakes" / exercise / "wrong-port" / "service.yaml").read_text())
    result = engine.grade(LAB_ID, exercise)
    outcome = result.exercise(exercise)
    record = _record(result, exercise, 6)
    assert record["score"] == nbgrader.score_of(outcome, 6) == {"passed": 6.0, "partial": 3.0, "failed": 0.0}[case]
    assert record["message"] == nbgrader.feedback(outcome)
    assert record["passed"] is outcome.passed and record["html"].startswith('<div class="k8slab">')


def test_the_engine_grades_through_the_prepared_cluster_without_namespace_writes(course, cluster):
    """The trusted run end to end on the shared fake: the harness made the namespaces; grading the solution
    passes and never creates, relabels or deletes a Namespace."""
    from graders import spec

    for name in spec.load_lab(LAB_ID).all_namespaces:
        cluster.namespaces[name] = dict(OURS)
    prepared = PreparedCluster(cluster)
    assert isinstance(prepared, ClusterAPI)
    result = engine.grade(LAB_ID, submission=course / "solutions" / LAB_ID, cluster=prepared)
    assert result.passed
    assert not {c[0] for c in cluster.calls} & {"ensure_owned_namespace", "reset_namespaces", "delete_namespaces"}


def test_the_pristine_copy_of_a_submission_skips_symlinks_and_checkpoints(tmp_path):
    """A link to /dev/zero would make the trusted grader read forever; one to the instructor's files would leak."""
    import shutil

    from graders.course.harness import _untrusted_copy_skips

    submitted = tmp_path / "submitted"
    (submitted / "hello-pod" / ".ipynb_checkpoints").mkdir(parents=True)
    (submitted / "hello-pod" / "pod.yaml").write_text("kind: Pod\n")
    (submitted / "hello-pod" / "zero.yaml").symlink_to("/dev/zero")
    (submitted / "secrets").symlink_to(tmp_path, target_is_directory=True)
    shutil.copytree(submitted, tmp_path / "pristine", ignore=_untrusted_copy_skips)
    copied = sorted(p.relative_to(tmp_path / "pristine").as_posix() for p in (tmp_path / "pristine").rglob("*"))
    assert copied == ["hello-pod", "hello-pod/pod.yaml"]
