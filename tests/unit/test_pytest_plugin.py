"""The pytest plugin: lab specs as test items with readable failures, options, markers, header, the cluster fixture."""
from __future__ import annotations

import importlib.metadata

import pytest

from fakelab import LAB_ID


def plugin_args() -> list[str]:
    """Load the plugin explicitly unless the installed entry point already does."""
    installed = any(ep.value == "graders.pytest_plugin" for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "graders.pytest_plugin"]


def run(pytester, *args):
    return pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider", *args)


def test_markers_are_documented(pytester):
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.live: needs a real cluster*K8SLAB_REQUIRE_CLUSTER=1*",
                                 "@pytest.mark.pipeline: nbgrader end to end*"])


def test_options_are_in_help(pytester):
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["*Kubernetes Networking Labs*", "*--lab=LAB*", "*--k8s-context=CTX*",
                                 "*--submission=DIR*"])


def test_header_shows_context_and_pinned_versions(pytester, course, monkeypatch):
    monkeypatch.delenv("K8SLAB_CONTEXT", raising=False)
    result = run(pytester, "--k8s-context", "kind-other", "--lab", LAB_ID)
    result.stdout.fnmatch_lines(["k8slab: context kind-other, Kubernetes v1.34.4, kind v0.30.0*",
                                 f"k8slab: labs {LAB_ID}"])


def test_lab_spec_items_fail_with_the_exercise_text(pytester, course, fake_connect):
    result = run(pytester, str(course / "labs" / LAB_ID / "lab.yaml"))
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*✗ hello-pod — Run a labelled pod  0/2*",
                                 "*failed at live: the label app=web selects no pod*",
                                 "*hint: look at metadata.labels of your pod*"])
    assert "Traceback" not in result.stdout.str() and "raise ExerciseFailed" not in result.stdout.str()


def test_lab_spec_items_pass_with_a_submission(pytester, course, fake_connect):
    result = run(pytester, str(course / "labs" / LAB_ID / "lab.yaml"), "--submission",
                 str(course / "solutions" / LAB_ID), "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*{LAB_ID}/lab.yaml::hello-pod PASSED*"])


def test_matrix_diff_is_in_the_failure(pytester, course, fake_connect, tmp_path):
    submission = tmp_path / "sub"
    (submission / "expose").mkdir(parents=True)
    (submission / "expose" / "service.yaml").write_text(
        (course / "solutions" / LAB_ID / "mistakes" / "expose" / "no-selector" / "service.yaml").read_text())
    result = run(pytester, str(course / "labs" / LAB_ID / "lab.yaml"), "--submission", str(submission),
                 "-k", "expose")
    result.stdout.fnmatch_lines(["*expected*observed*comparison*",
                                 "*k8slab-fake/client -> svc/web:80: expected allowed, was instead BLOCKED*",
                                 "*reproduce: kubectl exec -n k8slab-fake client -- curl web*"])


def test_lab_filter(pytester, course, fake_connect):
    result = run(pytester, str(course / "labs"), "--lab", "00-other")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_no_cluster_fails_lab_items_with_the_diagnosis(pytester, course, no_cluster):
    result = run(pytester, str(course / "labs" / LAB_ID / "lab.yaml"))
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*nothing listens at https://127.0.0.1:6443*", "*hint: create it with `make cluster`*"])
    assert "LIVE TESTS SKIPPED" not in result.stdout.str()  # nothing was skipped: the learner's items failed


LIVE_TEST = """
import pytest

@pytest.mark.live
@pytest.mark.parametrize("n", range(3))
def test_live(k8slab_cluster, n):
    assert k8slab_cluster.context
"""


def test_cluster_fixture_skips_with_one_loud_reason(pytester, course, no_cluster, monkeypatch):
    monkeypatch.delenv("K8SLAB_REQUIRE_CLUSTER", raising=False)
    pytester.makepyfile(test_live=LIVE_TEST)
    result = run(pytester, "-rs")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*LIVE TESTS SKIPPED: NO CLUSTER*",
                                 "SKIPPED [[]3[]] *no cluster answers, live tests not run: nothing listens*"])


def test_cluster_fixture_fails_when_a_cluster_is_required(pytester, course, no_cluster, monkeypatch):
    monkeypatch.setenv("K8SLAB_REQUIRE_CLUSTER", "1")
    pytester.makepyfile(test_live=LIVE_TEST)
    result = run(pytester)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*K8SLAB_REQUIRE_CLUSTER=1 but no cluster answers*"])


def test_cluster_fixture_connects_once(pytester, course, fake_connect):
    pytester.makepyfile(test_live=LIVE_TEST)
    run(pytester).assert_outcomes(passed=3)


def test_past_the_deadline_live_tests_are_skipped_loudly_and_others_still_run(pytester, course, fake_connect,
                                                                            monkeypatch):
    monkeypatch.setenv("K8SLAB_TEST_DEADLINE", "1")   # long past
    pytester.makepyfile(test_live=LIVE_TEST + "\n\ndef test_offline():\n    assert True\n")
    result = run(pytester, "-rs")
    result.assert_outcomes(skipped=3, passed=1)
    result.stdout.fnmatch_lines(["*CI TIME BUDGET: 3 LIVE TESTS NOT RUN*", "*CI time budget: not started before*"])


def test_before_the_deadline_live_tests_run(pytester, course, fake_connect, monkeypatch):
    monkeypatch.setenv("K8SLAB_TEST_DEADLINE", "99999999999")
    pytester.makepyfile(test_live=LIVE_TEST)
    run(pytester).assert_outcomes(passed=3)
