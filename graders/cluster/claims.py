"""What is cluster-wide in an exercise, taken in turns when grading runs go side by side (`autograde --parallel`).

Run-unique namespaces (graders.nsmap) keep two submissions apart, except where the cluster has one of a thing
for everybody: a node port (lab 03 asks for nodePort 30080 exactly; a second Service asking for it is refused),
or the ingress controller's routes (two Ingresses for the same host and path in two namespaces: the controller
sends each request to one of them). An exercise names such things in lab.yaml (``shares: [node-ports]``); under
a namespace map the engine holds a **Lease** (coordination.k8s.io) per name while the exercise runs and until its
namespaces are emptied again, so the runs that share it take turns at that exercise and nowhere else. Kubernetes
is the arbiter, as it is the scheduler: Jobs on any node see the same Leases.

A holder that dies keeps a Lease until it expires (LEASE_S, longer than any one exercise); waiting is bounded
(WAIT_S) and a run that could not get its turn says so, naming the holder, instead of grading anything.
Single-student grading (plain namespaces) never takes a Lease: the local run lock (graders.runlock) already
lets one run at a time touch the lab's namespaces.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence

from graders.errors import ClusterError
from graders.spec import SHARED

NAMESPACE = "k8slab-claims"  # the Leases live here (created by the dispatcher, owned by the grader)
LEASE_S = 300   # longer than any one exercise takes; a holder that died frees its claim after this
WAIT_S = 600    # how long a run waits for its turn
POLL_S = 1.0
RULES = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
          "verbs": ["get", "create", "update", "delete"]}]


def lease_name(shared: str) -> str:
    return f"k8slab-{shared}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _expired(lease, now: dt.datetime) -> bool:
    spec = lease.spec
    renewed = spec.renew_time or spec.acquire_time
    if renewed is None:
        return True
    return renewed + dt.timedelta(seconds=spec.lease_duration_seconds or LEASE_S) < now


class Claims:
    """Leases through the Kubernetes client (``api``: a CoordinationV1Api); ``clock``/``sleep`` for the tests."""

    def __init__(self, api, holder: str, *, wait_s: float = WAIT_S, poll_s: float = POLL_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], dt.datetime] = _now):
        self.api, self.holder, self.wait_s, self.poll_s = api, holder, wait_s, poll_s
        self.clock, self.sleep, self.now = clock, sleep, now

    def _body(self, name: str, resource_version: str | None = None):
        from kubernetes import client as k8s

        now = self.now()
        return k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=name, namespace=NAMESPACE, resource_version=resource_version,
                                      labels={"k8slab.dev/owned": "true"}),
            spec=k8s.V1LeaseSpec(holder_identity=self.holder, lease_duration_seconds=LEASE_S, acquire_time=now,
                                 renew_time=now))

    def acquire(self, shared: str) -> float:
        """Take the Lease of ``shared``; the seconds waited. ClusterError after WAIT_S, naming the holder."""
        from kubernetes.client.exceptions import ApiException

        name, started, holder = lease_name(shared), self.clock(), ""
        while True:
            try:
                self.api.create_namespaced_lease(NAMESPACE, self._body(name))
                return self.clock() - started
            except ApiException as error:
                if error.status != 409:
                    raise ClusterError(f"taking the Lease {NAMESPACE}/{name} failed: {error.status} {error.reason}")
            try:
                lease = self.api.read_namespaced_lease(name, NAMESPACE)
                holder = lease.spec.holder_identity or ""
                if holder == self.holder or _expired(lease, self.now()):
                    self.api.replace_namespaced_lease(name, NAMESPACE,
                                                      self._body(name, lease.metadata.resource_version))
                    return self.clock() - started
            except ApiException as error:
                if error.status not in (404, 409):  # gone meanwhile, or another run took it first: try again
                    raise ClusterError(f"reading the Lease {NAMESPACE}/{name} failed: {error.status} {error.reason}")
            if self.clock() - started > self.wait_s:
                raise ClusterError(f"waited {self.wait_s:g} s for {SHARED.get(shared, shared)}: another grading run "
                                   f"({holder or 'unknown'}) holds it",
                                   hint="grade this submission again when the other runs are done")
            self.sleep(self.poll_s)

    def release(self, shared: str) -> None:
        """Give the Lease back if this run still holds it (best effort: it expires anyway)."""
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        name = lease_name(shared)
        try:
            lease = self.api.read_namespaced_lease(name, NAMESPACE)
            if lease.spec.holder_identity == self.holder:
                self.api.delete_namespaced_lease(name, NAMESPACE, body=k8s.V1DeleteOptions(
                    preconditions=k8s.V1Preconditions(resource_version=lease.metadata.resource_version)))
        except ApiException:
            pass

    @contextlib.contextmanager
    def held(self, shared: Sequence[str], on_wait: Callable[[str, float], None] = lambda _s, _w: None
             ) -> Iterator[None]:
        """Hold every Lease of ``shared`` (taken in sorted order, so that two runs never wait for each other)."""
        taken: list[str] = []
        try:
            for name in sorted(set(shared)):
                waited = self.acquire(name)
                taken.append(name)
                if waited >= 1:
                    on_wait(name, waited)
            yield
        finally:
            for name in reversed(taken):
                self.release(name)


def for_cluster(cluster, holder: str) -> Claims:
    """Claims through ``cluster``'s API client (graders.cluster.Cluster or a MappedCluster around one)."""
    from kubernetes import client as k8s

    api_client = getattr(cluster, "api_client", None)
    if api_client is None:
        raise ClusterError("this cluster connection cannot take Leases (no Kubernetes API client)")
    return Claims(k8s.CoordinationV1Api(api_client), holder)
