"""graders.cluster.runs.KubeRuns read back from API objects: what a Job and its pod say becomes one JobState; a
run's cleanup covers every place it put an object."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from graders import paths, spec
from graders.cluster.runs import KubeRuns, _places
from graders.course import jobs


class Api:
    def __init__(self, job, pods):
        self.job, self.pods = job, pods

    def read_namespaced_job(self, name, namespace, **kw):
        return self.job


class Cluster:
    def __init__(self, job, pods):
        self.batch = Api(job, pods)

    def call(self, doing, fn, *args, tolerate=(), **kw):
        return fn(*args, **kw)

    def api(self, name):
        return self.batch

    def timeouts(self, seconds=None):
        return 5, 10

    def list_pods(self, namespace, selector):
        return self.batch.pods


def job(*conditions):
    return NS(status=NS(conditions=[NS(type=t, status="True", reason=r, message=m) for t, r, m in conditions]))


def pod(reason=None, terminated=None, waiting=None):
    state = NS(terminated=terminated, waiting=NS(reason=waiting) if waiting else None)
    return NS(metadata=NS(name="grade-abc", creation_timestamp=1), status=NS(reason=reason,
                                                                               container_statuses=[NS(state=state)]))


@pytest.mark.parametrize("the_job, pods, expected", [
    (None, [], (True, True, "JobMissing", None, "")),
    (job(), [pod(waiting="ContainerCreating")], (False, False, "ContainerCreating", None, "grade-abc")),
    (job(), [pod(waiting="ImagePullBackOff")], (False, False, "ImagePullBackOff", None, "grade-abc")),
    (job(("Complete", None, "")), [pod(terminated=NS(exit_code=0, reason="Completed"))],
     (True, False, "", 0, "grade-abc")),
    (job(("Failed", "BackoffLimitExceeded", "")), [pod(terminated=NS(exit_code=1, reason="Error"))],
     (True, True, "BackoffLimitExceeded", 1, "grade-abc")),
    (job(("Failed", "BackoffLimitExceeded", "")), [pod(terminated=NS(exit_code=137, reason="OOMKilled"))],
     (True, True, "OOMKilled", 137, "grade-abc")),
    (job(("Failed", "BackoffLimitExceeded", "")), [pod(reason="Evicted")], (True, True, "Evicted", None, "grade-abc")),
    (job(("Failed", "DeadlineExceeded", "active too long")), [], (True, True, "DeadlineExceeded", None, "")),
])
def test_job_state(the_job, pods, expected):
    state = KubeRuns(Cluster(the_job, pods)).job_state("k8slab-job-x", "grade")
    assert (state.finished, state.failed, state.reason, state.exit_code, state.pod) == expected
    assert state.stuck == (expected[2] == "ImagePullBackOff")


def test_cleanup_places_are_the_run_objects_outside_its_namespaces():
    run = jobs.Run(spec.load_lab("05-network-policy", paths.repo_root()), "ann-05-abc123", image="x:1")
    places = _places(jobs.objects(run))
    assert ("v1", "Namespace", None) in places
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", None) in places
    assert ("rbac.authorization.k8s.io/v1", "Role", "kube-system") in places
    assert not [p for p in places if p[2] and p[2] != "kube-system"]  # the rest goes with the run's namespaces
