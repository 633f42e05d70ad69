"""``PreparedCluster``: grading with namespace-scoped credentials in namespaces an admin prepared.

The safe autograder (graders.course.verify) and a grading Job (graders.course.jobs) both run the engine with
credentials that stop at the submission's namespaces; the admin side created and labelled those namespaces
beforehand and deletes them afterwards. Lives with the cluster code because the engine's own front end
(`k8slab grade --run`, in a Job) needs it, and the engine side never imports graders.course.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from graders.cluster.api import ClusterAPI
from graders.errors import ClusterError


class PreparedCluster:
    """A cluster whose namespaces the harness created (as admin) while the credentials here are namespace-scoped.

    Creating, labelling or deleting a Namespace is cluster-scoped and this ServiceAccount may not do it, so those
    become checks that the namespace is ours. Emptying a namespace between exercises needs only namespaced rights
    and runs as usual; the harness deletes the namespaces after the submission. Everything else is the wrapped
    cluster's."""

    def __init__(self, cluster: ClusterAPI) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    def ensure_owned_namespace(self, name: str, run_id: str | None = None) -> None:  # noqa: ARG002
        self._cluster.require_owned(name)

    def reset_namespaces(self, names: Sequence[str], run_id: str | None = None, kinds: Iterable[str] = (),
                         labels: Mapping[str, Mapping[str, str]] | None = None, keep_fixtures: bool = False,
                         keep_deployments: Mapping[str, Sequence[str]] | None = None) -> None:  # noqa: ARG002
        # keeping an unchanged Deployment between the exercises of ONE submission is safe: the harness creates
        # the namespaces fresh for each submission and deletes them after it
        for name in names:
            self._cluster.require_owned(name)
            if labels and labels.get(name):
                self.label_namespace(name, labels[name])
        self._cluster.empty_namespaces(names, kinds, keep_fixtures=keep_fixtures, keep_deployments=keep_deployments)

    def delete_namespaces(self, names: Iterable[str], wait: bool = True, timeout: float = 0) -> None:  # noqa: ARG002
        return None

    def check_run(self, namespaces: Sequence[str], run_id: str) -> None:  # noqa: ARG002
        """The harness labelled these namespaces with its own run id and grades one submission at a time, so
        the grader's run id never matches; what matters is that they are still ours."""
        for name in namespaces:
            self._cluster.require_owned(name)

    def label_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """The harness set the lab's namespace labels; check they are there."""
        have = self._cluster.namespace_labels(name) or {}
        missing = {k: v for k, v in labels.items() if have.get(k) != v}
        if missing:
            raise ClusterError(f"Namespace {name} lacks the labels {missing} the harness should have set")
