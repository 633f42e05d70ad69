"""pytest plugin (entry point ``pytest11: k8slab``): grade labs as pytest items, and share one cluster.

* ``pytest labs/<id>/lab.yaml`` (what ``make grade LAB=<id>`` runs) turns each exercise of the spec into a test
  item that grades the learner's files; a failure shows the exercise's text, matrices included.
* Options: ``--lab`` (only these labs; also filters the project's live tests), ``--k8s-context``,
  ``--submission``. Markers ``live`` and ``pipeline``. The report header shows the context and pinned versions.
* Fixture ``k8slab_cluster``: one connection per session; skips (one reason, printed loudly once) when no
  cluster answers, or fails when ``K8SLAB_REQUIRE_CLUSTER=1`` (CI).
* ``K8SLAB_TEST_DEADLINE`` (epoch seconds, set by environment/test.sh in CI): a live test not started by then is
  skipped, and the summary says loudly how many -- CI's 90 minutes must also cover the stages after this one.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from graders.errors import ClusterUnreachable, K8sLabError

REQUIRE_CLUSTER_ENV = "K8SLAB_REQUIRE_CLUSTER"
_CLUSTER = pytest.StashKey[Any]()
_UNREACHABLE = pytest.StashKey[ClusterUnreachable]()
_SKIPPED = pytest.StashKey[bool]()  # the k8slab_cluster fixture skipped tests for want of a cluster
DEADLINE_ENV = "K8SLAB_TEST_DEADLINE"
_OVER_BUDGET = pytest.StashKey[list]()  # live tests skipped because the deadline had passed


class ExerciseFailed(Exception):
    """An exercise did not pass; carries its ExerciseResult for ``repr_failure``."""

    def __init__(self, result) -> None:
        super().__init__(result.message)
        self.result = result


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k8slab", "Kubernetes Networking Labs")
    group.addoption("--lab", action="append", default=[], metavar="LAB",
                    help="grade / test only this lab id (repeatable), e.g. --lab 00-orientation")
    group.addoption("--k8s-context", default=None, metavar="CTX",
                    help="kube context to grade on (default $K8SLAB_CONTEXT or kind-k8slab)")
    group.addoption("--submission", default=None, metavar="DIR",
                    help="grade the files in DIR (per-exercise subdirectories) instead of labs/<lab>/")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: needs a real cluster (solution passes, starter and mistakes fail); "
                   "skipped when no cluster answers unless K8SLAB_REQUIRE_CLUSTER=1. Example: pytest -m live")
    config.addinivalue_line(
        "markers", "pipeline: nbgrader end to end (generate, autograde, export). Example: pytest -m pipeline")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from graders import versions
    from graders.cluster import default_context
    from graders.paths import repo_root

    context = config.getoption("k8s_context") or default_context()
    pinned = versions.pinned()
    lines = [f"k8slab: context {context}, Kubernetes {pinned.get('KUBERNETES_VERSION', '?')}, "
             f"kind {pinned.get('KIND_VERSION', '?')} (pinned in environment/versions.env), root {repo_root()}"]
    if config.getoption("lab"):
        lines.append(f"k8slab: labs {', '.join(config.getoption('lab'))}")
    return lines


def selected_labs(config: pytest.Config) -> list[str]:
    """The --lab values (empty: all labs)."""
    return list(config.getoption("lab") or [])


def session_cluster(config: pytest.Config):
    """The cluster for this session, connected once; raises the same ClusterUnreachable on every call."""
    if _CLUSTER in config.stash:
        return config.stash[_CLUSTER]
    if _UNREACHABLE in config.stash:
        raise config.stash[_UNREACHABLE]
    from graders.cluster import Cluster

    try:
        cluster = Cluster.connect(config.getoption("k8s_context"), timeout=5)
    except ClusterUnreachable as error:
        config.stash[_UNREACHABLE] = error
        raise
    config.stash[_CLUSTER] = cluster
    return cluster


@pytest.fixture(scope="session")
def k8slab_cluster(pytestconfig: pytest.Config):
    """A connected graders.cluster.Cluster; skip (or fail under K8SLAB_REQUIRE_CLUSTER=1) without one."""
    try:
        return session_cluster(pytestconfig)
    except ClusterUnreachable as error:
        reason = f"no cluster answers, live tests not run: {error.message} (fix: {error.hint})"
        if os.environ.get(REQUIRE_CLUSTER_ENV) == "1":
            pytest.fail(f"{REQUIRE_CLUSTER_ENV}=1 but {reason}", pytrace=False)
        pytestconfig.stash[_SKIPPED] = True
        pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Past K8SLAB_TEST_DEADLINE, a live test is skipped rather than started (see the module doc)."""
    deadline = os.environ.get(DEADLINE_ENV, "")
    if not deadline or item.get_closest_marker("live") is None:
        return
    try:
        passed = time.time() > float(deadline)
    except ValueError:
        return
    if passed:
        item.config.stash.setdefault(_OVER_BUDGET, []).append(item.nodeid)
        pytest.skip(f"CI time budget: not started before {DEADLINE_ENV}; the stages after this one need the rest")


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    over = config.stash.get(_OVER_BUDGET, [])
    if over:
        terminalreporter.write_sep("!", f"CI TIME BUDGET: {len(over)} LIVE TESTS NOT RUN", red=True, bold=True)
        terminalreporter.write_line(f"first not run: {over[0]}; last: {over[-1]}")
    if config.stash.get(_SKIPPED, False):
        error = config.stash[_UNREACHABLE]
        terminalreporter.write_sep("!", "LIVE TESTS SKIPPED: NO CLUSTER", red=True, bold=True)
        terminalreporter.write_line(f"{error.message}\nfix: {error.hint}")


# ------------------------------------------------------------------------- lab specs as test items

def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name == "lab.yaml" and file_path.parent.parent.name == "labs":
        wanted = selected_labs(parent.config)
        if not wanted or file_path.parent.name in wanted:
            return LabSpecFile.from_parent(parent, path=file_path)
    return None


class LabSpecFile(pytest.File):
    """labs/<id>/lab.yaml: one item per exercise, grading the learner's files."""

    def collect(self):
        from graders import spec

        lab = spec.load_lab(self.path.parent.name, root=self.path.parents[2])
        for exercise in lab.exercises:
            item = ExerciseItem.from_parent(self, name=exercise.id, lab=lab.id, exercise=exercise.id)
            item.add_marker(pytest.mark.live)
            yield item


class ExerciseItem(pytest.Item):
    def __init__(self, *, lab: str, exercise: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lab = lab
        self.exercise = exercise

    def runtest(self) -> None:
        from graders import engine

        cluster = session_cluster(self.config)
        submission = self.config.getoption("submission")
        result = engine.grade(self.lab, self.exercise, Path(submission) / self.exercise if submission else None,
                              cluster=cluster, verbose=self.config.getoption("verbose") > 0)
        outcome = result.exercise(self.exercise)
        self.user_properties.append(("score", f"{outcome.score:g}/{outcome.points:g}"))
        if outcome.ungraded:  # the cluster lacks what the exercise needs (a mesh): neither a pass nor a failure
            pytest.skip(outcome.message)
        if not outcome.passed:
            raise ExerciseFailed(outcome)

    def repr_failure(self, excinfo, style=None):
        from graders import render

        if isinstance(excinfo.value, ExerciseFailed):
            return render.exercise_text(excinfo.value.result, color=False, verbose=self.config.getoption("verbose") > 0)
        if isinstance(excinfo.value, K8sLabError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"{self.lab} :: {self.exercise}"
