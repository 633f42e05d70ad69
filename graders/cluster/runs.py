"""The parallel autograder's admin calls (graders.course.dispatch): create one grading run's objects, read its Job
and its pod's log, delete every object of a run by its label.

Like graders.cluster.rbac these write outside owned namespaces (the run's Namespaces, a ClusterRole, a Role in
kube-system), so they live apart from `Cluster`, which never does. Every call is bounded by the connection's
timeouts; none waits for the cluster -- the dispatcher polls.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from graders.cluster import rbac
from graders.cluster.client import Cluster
from graders.cluster.names import FIELD_MANAGER, obj_ref

# A pod stuck in one of these will never start: waiting for the Job's deadline would only waste it.
STUCK_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
                           "CreateContainerConfigError", "CreateContainerError"})


@dataclass(frozen=True)
class JobState:
    """What the dispatcher needs to know of one grading Job, read in one poll.

    ``finished``: the Job has a Complete or Failed condition (or is gone). ``reason``: the Failed condition's
    (DeadlineExceeded, BackoffLimitExceeded, ...), else the pod's (Evicted) or its container's (OOMKilled, or a
    waiting reason such as ImagePullBackOff). ``pod``: the Job's pod, "" before it has one (or after it is deleted).
    """

    finished: bool
    failed: bool = False
    reason: str = ""
    message: str = ""
    pod: str = ""
    exit_code: int | None = None
    waiting: str = ""  # the container's waiting reason while it has not started

    @property
    def stuck(self) -> bool:
        return not self.finished and self.waiting in STUCK_REASONS


def _places(objs: Iterable[dict]) -> list[tuple[str, str, str | None]]:
    """(apiVersion, kind, namespace) of the objects that do not go away with the run's own namespaces: those,
    cluster-scoped or elsewhere, must be deleted one by one (a run's namespaces are the Namespace objects)."""
    objs = list(objs)
    own = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
    places = {(o["apiVersion"], o["kind"], o["metadata"].get("namespace")) for o in objs
              if o["metadata"].get("namespace") not in own}
    return sorted(places, key=lambda p: (p[0], p[1], p[2] or ""))


class KubeRuns:
    """`graders.course.dispatch.RunsAPI` on a real cluster, with the instructor's admin connection."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def create(self, objs: Sequence[dict]) -> None:
        """Server-side apply of each object in order (namespaces first): an object left by an interrupted earlier
        run of the same id is taken over, not a conflict."""
        for obj in objs:
            res = self.cluster._resource(obj)
            namespace = obj["metadata"].get("namespace")
            self.cluster.call(f"creating {obj_ref(obj)}", self.cluster.dynamic.server_side_apply, res, body=obj,
                              namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True,
                              _request_timeout=self.cluster.timeouts(30))

    def allowed(self, review: dict) -> bool:
        """Whether the authorizer allows what a SubjectAccessReview asks (graders.course.jobs.authorization_checks)."""
        return rbac.access_allowed(self.cluster, review)

    def job_state(self, namespace: str, name: str) -> JobState:
        job = self.cluster.call(f"reading Job {namespace}/{name}", self.cluster.api("BatchV1Api").read_namespaced_job,
                                name, namespace, _request_timeout=self.cluster.timeouts(), tolerate=(404,))
        if job is None:
            return JobState(True, True, "JobMissing", f"Job {namespace}/{name} no longer exists")
        pods = self.cluster.list_pods(namespace, f"job-name={name}")
        pod = max(pods, key=lambda p: p.metadata.creation_timestamp, default=None)
        terminated, waiting = None, ""
        for status in (pod.status.container_statuses or []) if pod is not None and pod.status else []:
            terminated = terminated or (status.state.terminated if status.state else None)
            waiting = waiting or (status.state.waiting.reason if status.state and status.state.waiting else "")
        pod_reason = (pod.status.reason or "") if pod is not None and pod.status else ""
        container_reason = terminated.reason if terminated is not None and terminated.reason not in (
            None, "Error", "Completed") else ""
        common = dict(pod=pod.metadata.name if pod is not None else "",
                      exit_code=terminated.exit_code if terminated is not None else None, waiting=waiting)
        for condition in (job.status.conditions or []) if job.status else []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return JobState(True, **common)
            if condition.type == "Failed":
                reason = pod_reason or container_reason or condition.reason or "Failed"
                if condition.reason == "DeadlineExceeded":
                    reason = "DeadlineExceeded"
                return JobState(True, True, reason, condition.message or "", **common)
        return JobState(False, reason=pod_reason or container_reason or waiting, **common)

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        """The container's whole log ("" when the pod is gone: the dispatcher then says no result line came)."""
        return self.cluster.call(f"reading the log of Pod {namespace}/{pod}",
                                 self.cluster.core.read_namespaced_pod_log, pod, namespace, container=container,
                                 _request_timeout=self.cluster.timeouts(60), tolerate=(404, 400)) or ""

    def delete(self, objs: Sequence[dict], selector: str) -> None:
        """Delete every object carrying ``selector`` where the run put objects (`_places`): the run's namespaces
        take what is inside them along. Does not wait; `remaining` says what is still there."""
        for api_version, kind, namespace in _places(objs):
            for name in self._names(api_version, kind, namespace, selector):
                res = self.cluster._resource({"apiVersion": api_version, "kind": kind})
                self.cluster.call(f"deleting {kind} {name}", self.cluster.dynamic.delete, res, name=name,
                                  namespace=namespace, _request_timeout=self.cluster.timeouts(),
                                  tolerate=(404, 409))

    def remaining(self, objs: Sequence[dict], selector: str) -> list[str]:
        """`Kind [namespace/]name` of each object of the run still there (a namespace being deleted counts)."""
        return [f"{kind} {namespace + '/' if namespace else ''}{name}" for api_version, kind, namespace in _places(objs)
                for name in self._names(api_version, kind, namespace, selector)]

    def _names(self, api_version: str, kind: str, namespace: str | None, selector: str) -> list[str]:
        res = self.cluster._resource({"apiVersion": api_version, "kind": kind})
        found = self.cluster.call(f"listing {kind} labelled {selector}", self.cluster.dynamic.get, res,
                                  namespace=namespace, label_selector=selector,
                                  _request_timeout=self.cluster.timeouts())
        return sorted(item.metadata.name for item in (found.items if found is not None else []))
