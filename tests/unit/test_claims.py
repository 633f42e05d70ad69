"""Taking turns at what is cluster-wide (graders/cluster/claims.py): Leases through a fake CoordinationV1Api, and
the engine holding them only under a namespace map."""
from __future__ import annotations

import datetime as dt

import pytest
from kubernetes.client.exceptions import ApiException

from graders import spec
from graders.cluster import claims
from graders.errors import ClusterError

T0 = dt.datetime(2026, 12, 5, 7, 0, tzinfo=dt.timezone.utc)


class FakeLeases:
    """Leases by name with resourceVersions, as the API server keeps them (create 409s, replace checks the version)."""

    def __init__(self):
        self.leases: dict[str, object] = {}
        self.version = 0
        self.calls: list[str] = []

    def _store(self, body):
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.leases[body.metadata.name] = body
        return body

    def create_namespaced_lease(self, namespace, body):
        assert namespace == claims.NAMESPACE
        self.calls.append(f"create {body.spec.holder_identity}")
        if body.metadata.name in self.leases:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(body)

    def read_namespaced_lease(self, name, namespace):
        if name not in self.leases:
            raise ApiException(status=404, reason="NotFound")
        return self.leases[name]

    def replace_namespaced_lease(self, name, namespace, body):
        self.calls.append(f"replace {body.spec.holder_identity}")
        if self.leases[name].metadata.resource_version != body.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    def delete_namespaced_lease(self, name, namespace, body):
        self.calls.append(f"delete {self.leases[name].spec.holder_identity}")
        assert body.preconditions.resource_version == self.leases[name].metadata.resource_version
        del self.leases[name]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s

    def now(self):
        return T0 + dt.timedelta(seconds=self.t)


def claims_for(api, holder, clock, wait_s=30):
    return claims.Claims(api, holder, wait_s=wait_s, poll_s=1, clock=clock, sleep=clock.sleep, now=clock.now)


def test_a_free_claim_is_taken_and_given_back():
    api, clock = FakeLeases(), Clock()
    with claims_for(api, "run-a", clock).held(["node-ports"]):
        assert api.leases["k8slab-node-ports"].spec.holder_identity == "run-a"
    assert api.leases == {} and api.calls == ["create run-a", "delete run-a"]


def test_a_held_claim_is_waited_for_then_named_when_the_wait_runs_out():
    api, clock = FakeLeases(), Clock()
    first = claims_for(api, "run-a", clock)
    first.acquire("node-ports")
    with pytest.raises(ClusterError, match=r"waited 30 s for node ports .*another grading run \(run-a\) holds it"):
        claims_for(api, "run-b", clock).acquire("node-ports")
    assert clock.t >= 30  # it waited, bounded
    first.release("node-ports")
    assert claims_for(api, "run-b", clock).acquire("node-ports") == 0
    assert api.leases["k8slab-node-ports"].spec.holder_identity == "run-b"


def test_a_dead_holders_claim_is_taken_over_after_it_expires():
    api, clock = FakeLeases(), Clock()
    claims_for(api, "run-dead", clock).acquire("ingress-routes")  # never released: its Job was killed
    clock.t += claims.LEASE_S + 1
    assert claims_for(api, "run-b", clock).acquire("ingress-routes") == 0
    assert api.leases["k8slab-ingress-routes"].spec.holder_identity == "run-b"


def test_release_leaves_a_claim_another_run_holds():
    api, clock = FakeLeases(), Clock()
    claims_for(api, "run-a", clock).acquire("node-ports")
    claims_for(api, "run-b", clock).release("node-ports")
    assert api.leases["k8slab-node-ports"].spec.holder_identity == "run-a"


def test_claims_are_taken_in_one_order_and_all_given_back_on_error():
    api, clock = FakeLeases(), Clock()
    with pytest.raises(RuntimeError):
        with claims_for(api, "run-a", clock).held(["node-ports", "ingress-routes"]):
            assert [c for c in api.calls if c.startswith("create")] == ["create run-a"] * 2
            assert list(api.leases) == ["k8slab-ingress-routes", "k8slab-node-ports"]  # sorted: no deadlock
            raise RuntimeError("the exercise failed")
    assert api.leases == {}


def test_lab_specs_name_known_shared_things_only(tmp_path):
    lab = spec.load_lab("03-services")
    assert [e.id for e in lab.exercises if e.shares] == ["nodeport"]
    assert all(e.shares == ("ingress-routes",) for e in spec.load_lab("04-ingress").exercises)
    assert not any(e.shares for e in spec.load_lab("05-network-policy").exercises)


def test_the_engine_takes_a_turn_only_under_a_namespace_map(monkeypatch):
    from graders import engine
    from graders.nsmap import NamespaceMap

    taken = []

    class Turns:
        def held(self, shared):
            import contextlib

            @contextlib.contextmanager
            def hold():
                taken.append(tuple(shared))
                yield
            return hold()

    class Cluster:
        emptied = []

        def empty_namespaces(self, names, **_kw):
            self.emptied.append(list(names))

    monkeypatch.setattr(claims, "for_cluster", lambda cluster, holder: Turns())
    monkeypatch.setattr(engine, "_reusable", lambda *a: {})
    ex = next(e for e in spec.load_lab("03-services").exercises if e.id == "nodeport")
    with engine._turn(ex, Cluster(), engine.Options(), None):
        pass
    assert taken == []  # plain names: the run lock already serialises
    mapped = engine.Options(namespace_map=NamespaceMap.for_run(("k8slab-services",), "r1"))
    with engine._turn(ex, Cluster(), mapped, None):
        pass
    assert taken == [("node-ports",)]
    assert Cluster.emptied and Cluster.emptied[-1] == mapped.real_namespaces(ex.namespaces)
