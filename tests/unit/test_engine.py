"""The engine: steps in order, stopping at the first failing level; namespaces reset and deleted; scores."""
from __future__ import annotations

import time

import pytest

from fakelab import LAB_ID, NAMESPACE, pod, write
from fakes import FakeCluster
from graders import engine
from graders.errors import ClusterUnreachable, SpecError, UsageError
from graders.status import RecordingStatus


def solution(course, exercise):
    return course / "solutions" / LAB_ID / exercise


def mistake(course, exercise, name):
    return course / "solutions" / LAB_ID / "mistakes" / exercise / name


def test_solution_passes_every_step_and_scores_full_points(course, cluster):
    result = engine.grade(LAB_ID, "expose", solution(course, "expose"), cluster=cluster)
    outcome = result.exercise("expose")
    assert outcome.passed
    assert outcome.score == outcome.points == 3
    assert [s.step for s in outcome.steps] == ["parse", "admit", "apply", "static", "live"]
    assert result.passed and result.score == 3


def test_whole_lab_from_a_directory_of_exercise_subdirectories(course, cluster):
    result = engine.grade(LAB_ID, submission=course / "solutions" / LAB_ID, cluster=cluster)
    assert [e.exercise for e in result.exercises] == ["hello-pod", "expose"]
    assert result.passed and result.score == result.points == 5


def test_default_submission_is_the_learners_starter_files_which_fail(course, cluster):
    result = engine.grade(LAB_ID, cluster=cluster)
    assert not result.passed
    hello = result.exercise("hello-pod")
    assert hello.failed_step == "live"
    assert "selects no pod" in hello.message
    assert hello.hint == "look at metadata.labels of your pod"
    assert hello.score == 0


def test_failure_at_static_stops_before_live_and_keeps_the_matrix(course, cluster):
    outcome = engine.grade(LAB_ID, "expose", mistake(course, "expose", "no-selector"), cluster=cluster).exercise("expose")
    assert [s.step for s in outcome.steps] == ["parse", "admit", "apply", "static"]
    assert outcome.evidence[0].kind == "matrix"
    assert outcome.evidence[0].data.wrong_cells[0].command.startswith("kubectl exec")


def test_partial_credit_from_a_failing_step(course, cluster):
    outcome = engine.grade(LAB_ID, "expose", mistake(course, "expose", "wrong-port"), cluster=cluster).exercise("expose")
    assert not outcome.passed
    assert outcome.score == 1.5  # 3 points x credit 0.5
    assert "port 8080" in outcome.message


def test_rejected_submission_never_touches_the_cluster(course, cluster):
    outcome = engine.grade(LAB_ID, "hello-pod", mistake(course, "hello-pod", "latest-image"),
                           cluster=cluster).exercise("hello-pod")
    assert outcome.failed_step == "parse"
    assert ":latest" in outcome.message
    assert "Pod k8slab-fake/web (" in outcome.message and "pod.yaml:10" in outcome.message
    assert cluster.calls == []


def test_parse_failure_needs_no_cluster_at_all(course, no_cluster):
    result = engine.grade(LAB_ID, "hello-pod", mistake(course, "hello-pod", "latest-image"))
    assert result.exercise("hello-pod").failed_step == "parse"


def test_no_cluster_raises_unreachable_with_a_fix_quickly(course, no_cluster):
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as error:
        engine.grade(LAB_ID)
    assert time.monotonic() - started < 5
    assert "make cluster" in error.value.hint


def test_namespaces_are_reset_before_and_deleted_after(course, cluster):
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster)
    names = [call[0] for call in cluster.calls]
    assert names[0] == "reset_namespaces"
    assert names[-1] == "delete_namespaces"
    assert names.index("dry_run") < names.index("apply") < names.index("wait_ready")
    assert cluster.owned_namespaces() == []


def test_a_whole_lab_empties_shared_namespaces_between_exercises_and_deletes_them_once(course, cluster):
    """Deleting a namespace costs 5-12 s on a real cluster, emptying it ~1 s: exercises sharing a namespace
    start from an emptied one, and it is deleted only after the last exercise that uses it."""
    result = engine.grade(LAB_ID, submission=course / "solutions" / LAB_ID, cluster=cluster)
    assert result.passed
    names = [call[0] for call in cluster.calls]
    assert names.count("reset_namespaces") == 2
    assert names.count("delete_namespaces") == 1 and names[-1] == "delete_namespaces"
    assert names[-2] == "empty_namespaces"
    assert cluster.owned_namespaces() == []


def test_objects_of_one_exercise_are_gone_when_the_next_starts(course, cluster):
    def in_namespace():
        return sorted(ref for ref, obj in cluster.objects.items() if obj["metadata"].get("namespace") == NAMESPACE)

    around_resets = []
    real_reset = cluster.reset_namespaces

    def reset(names, run_id=None, kinds=(), labels=None, keep_fixtures=False, keep_deployments=None):
        before = in_namespace()
        real_reset(names, run_id, kinds, labels, keep_fixtures, keep_deployments)
        around_resets.append((before, in_namespace()))

    cluster.reset_namespaces = reset
    engine.grade(LAB_ID, submission=course / "solutions" / LAB_ID, cluster=cluster)
    assert len(around_resets) == 2
    (_, after_first), (before_second, after_second) = around_resets
    assert before_second, "the first exercise left its objects for the reset to remove"
    assert after_first == after_second == []


def test_teardown_empty_keeps_the_namespace_but_removes_every_object(course, cluster):
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, teardown="empty")
    assert cluster.owned_namespaces() == [NAMESPACE]
    assert not [k for k, v in cluster.objects.items() if v["metadata"].get("namespace") == NAMESPACE]
    assert "delete_namespaces" not in [call[0] for call in cluster.calls]


def test_the_graders_own_pods_survive_resets_and_empty_teardown_but_not_delete(course, cluster):
    """A check reuses the probe pods an earlier check left (teardown "empty", as check() in a notebook does);
    the learner's objects never survive a reset; "delete" removes everything with the namespace."""
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "k8slab-probe", "namespace": NAMESPACE},
             "spec": {"containers": [{"name": "probe", "image": "agnhost"}]}}
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, teardown="empty")
    cluster.ensure_pods([probe])  # as a lab's live step does
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, teardown="empty")
    left = [k for k, v in cluster.objects.items() if v["metadata"].get("namespace") == NAMESPACE]
    assert left == [f"Pod {NAMESPACE}/k8slab-probe"]
    cluster.ensure_pods([probe])
    assert cluster.reused == [f"Pod {NAMESPACE}/k8slab-probe"]
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster)  # teardown "delete"
    assert cluster.owned_namespaces() == []
    assert not [k for k, v in cluster.objects.items() if v["metadata"].get("namespace") == NAMESPACE]


def test_unknown_teardown_is_a_usage_error(course, cluster):
    with pytest.raises(UsageError, match="teardown must be one of delete, empty, keep"):
        engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, teardown="later")


def test_keep_leaves_the_namespaces_for_inspection(course, cluster):
    outcome = engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster,
                           keep=True).exercise("hello-pod")
    assert cluster.owned_namespaces() == [NAMESPACE]
    assert any(e.title == "kept for inspection" for e in outcome.evidence)


def test_namespaces_are_deleted_even_when_a_step_fails(course, cluster):
    engine.grade(LAB_ID, "hello-pod", mistake(course, "hello-pod", "wrong-label"), cluster=cluster)
    assert cluster.owned_namespaces() == []


def test_admission_rejections_are_all_reported_with_file_and_line(course):
    cluster = FakeCluster(rejections={
        f"Service {NAMESPACE}/web": "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the "
                                    "valid range. The range of valid ports is 30000-32767",
        f"Pod {NAMESPACE}/web": "spec.containers[0].image: Required value"})
    outcome = engine.grade(LAB_ID, "expose", solution(course, "expose"), cluster=cluster).exercise("expose")
    assert outcome.failed_step == "admit"
    assert "2 problems" in outcome.message
    assert f"Service {NAMESPACE}/web (" in outcome.message and "service.yaml:13" in outcome.message
    assert "30000-32767" in outcome.message
    assert "rejected by the API server: spec.ports[0].nodePort: Invalid value" in outcome.message
    assert "dry-run applying" not in outcome.message  # the cluster's "what we were doing" prefix is dropped
    assert ("apply", ) not in [c[:1] for c in cluster.calls]


def test_readiness_diagnosis_names_the_pod(course):
    cluster = FakeCluster(not_ready=[f"Pod {NAMESPACE}/web: container 'web' cannot pull image 'agnhost:9' "
                                     f"(ImagePullBackOff)"])
    outcome = engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster).exercise("hello-pod")
    assert outcome.failed_step == "apply"
    assert "ImagePullBackOff" in outcome.message
    assert outcome.hint
    assert outcome.evidence[0].kind == "table"


def test_a_bug_in_a_check_is_reported_as_not_the_learners_fault(course, cluster, monkeypatch):
    import sys

    def broken(ctx):
        raise ZeroDivisionError("oops")

    module = sys.modules["graders.labs.lab99_fake"]
    monkeypatch.setitem(module.EXERCISES, "hello-pod", type(module.EXERCISES["hello-pod"])(live=broken))
    outcome = engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster,
                           verbose=True).exercise("hello-pod")
    assert "not in your manifests" in outcome.message
    assert "ZeroDivisionError" in outcome.message
    assert any(e.title == "traceback" for e in outcome.evidence)
    assert cluster.owned_namespaces() == []


def test_status_reports_start_and_end_of_each_step(course, cluster):
    status = RecordingStatus()
    engine.grade(LAB_ID, "expose", solution(course, "expose"), cluster=cluster, status=status)
    ended = [text for text, ok in status.events if ok is True]
    assert ended == ["expose: checking manifests", "expose: admission (server-side dry-run)",
                     "expose: apply and wait until ready", "expose: what the manifests should do",
                     "expose: live traffic"]


def test_single_exercise_files_given_directly(course, cluster, tmp_path):
    write(tmp_path / "mine" / "pod.yaml", pod())
    assert engine.grade(LAB_ID, "hello-pod", tmp_path / "mine", cluster=cluster).passed


def test_single_exercise_file_given_directly(course, cluster, tmp_path):
    file = write(tmp_path / "pod.yaml", pod())
    assert engine.grade(LAB_ID, "hello-pod", file, cluster=cluster).passed


def test_lab_submission_missing_an_exercise_directory_fails_only_that_exercise(course, cluster, tmp_path):
    write(tmp_path / "sub" / "hello-pod" / "pod.yaml", pod())
    result = engine.grade(LAB_ID, submission=tmp_path / "sub", cluster=cluster)
    assert result.exercise("hello-pod").passed
    expose = result.exercise("expose")
    assert expose.failed_step == "parse" and "does not exist" in expose.message


def test_missing_submission_is_a_usage_error(course, cluster, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        engine.grade(LAB_ID, submission=tmp_path / "nope", cluster=cluster)


def test_unknown_lab_and_exercise_are_usage_errors(course, cluster):
    with pytest.raises(UsageError, match="unknown lab"):
        engine.grade("42-nothing", cluster=cluster)
    with pytest.raises(UsageError, match="no exercise 'nope'"):
        engine.grade(LAB_ID, "nope", cluster=cluster)


def test_exercise_without_a_check_is_a_spec_error(course, cluster, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules["graders.labs.lab99_fake"].EXERCISES, "expose")
    with pytest.raises(SpecError, match="no check for expose"):
        engine.grade(LAB_ID, cluster=cluster)


def test_objects_without_namespace_land_in_the_default_owned_namespace(course, cluster):
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, keep=True)
    assert f"Pod {NAMESPACE}/web" in cluster.objects


def test_simulated_runner_is_injected_as_the_prober(course, cluster, monkeypatch):
    import sys

    from graders.exercise import Exercise
    from graders.model import Outcome
    from graders.probe import ProbeSpec, SimulatedRunner

    seen = []

    def live(ctx):
        results = ctx.prober.run([ProbeSpec(f"{ctx.namespace()}/client", "tcp", "web", 8080)])
        seen.extend(results)
        if results[0].outcome is not Outcome.ALLOWED:
            ctx.fail("blocked")

    monkeypatch.setitem(sys.modules["graders.labs.lab99_fake"].EXERCISES, "hello-pod", Exercise(live=live))
    result = engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster,
                          runner_factory=lambda c: SimulatedRunner(lambda spec: True, context="kind-fake"))
    assert result.passed
    assert seen[0].command.startswith("kubectl --context kind-fake exec")


def test_a_run_whose_namespaces_were_taken_over_says_so_instead_of_its_verdict(course, cluster):
    """Another grading run (another machine: the local run lock cannot see it) reset our namespace mid-run:
    whatever was observed belongs to that run, so the exercise fails with the takeover, for every lab."""
    from graders.errors import ClusterError

    def check_run(namespaces, run_id):
        raise ClusterError(f"Namespace {namespaces[0]} was taken over by another grading run while this one was "
                           f"running", hint="run one check of a lab at a time")

    cluster.check_run = check_run
    outcome = engine.grade(LAB_ID, "expose", solution(course, "expose"), cluster=cluster).exercise("expose")
    assert not outcome.passed and outcome.failed_step == "live"
    assert "taken over by another grading run" in outcome.message
    assert cluster.owned_namespaces() == []  # still torn down


def test_a_run_that_kept_its_namespaces_keeps_its_verdict(course, cluster):
    seen = []
    cluster.check_run = lambda namespaces, run_id: seen.append((tuple(namespaces), run_id))
    assert engine.grade(LAB_ID, "expose", solution(course, "expose"), cluster=cluster).exercise("expose").passed
    assert len(seen) == 1 and seen[0][0] == (NAMESPACE,) and seen[0][1]


def test_namespace_labels_of_the_lab_spec_are_set_at_reset(course, cluster):
    """A lab's namespaceSelectors rely on labels the grader sets (lab 05: env=production): the engine passes
    the spec's `namespace_labels` to the cluster's reset, so no lab module labels namespaces itself."""
    spec_file = course / "labs" / LAB_ID / "lab.yaml"
    write(spec_file, spec_file.read_text().replace("exercises:\n", f"namespace_labels:\n  {NAMESPACE}: {{env: test}}\n"
                                                                   "exercises:\n", 1))
    engine.grade(LAB_ID, "hello-pod", solution(course, "hello-pod"), cluster=cluster, keep=True)
    assert cluster.namespaces[NAMESPACE]["env"] == "test"
    assert cluster.namespaces[NAMESPACE]["k8slab.dev/owned"] == "true"
