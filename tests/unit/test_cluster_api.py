"""graders.cluster: the real Cluster and the unit tests' FakeCluster both implement ClusterAPI, and the methods
that replaced lab code (endpoints, node addresses, namespace labels, RBAC grants) behave, on mocked API objects."""
from __future__ import annotations

import inspect
from types import SimpleNamespace as NS

import pytest
from fakes import FakeCluster

from graders.cluster import FIXTURE_LABEL, OWNED_LABEL, RUN_LABEL, Cluster, ClusterAPI, Endpoint, rbac, stamp_fixture
from graders.errors import ClusterError


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(ClusterAPI).items()
            if callable(fn) and not name.startswith("_")}


def test_the_protocol_lists_what_the_engine_labs_probes_and_doctor_call():
    names = set(_protocol_methods())
    assert {"reset_namespaces", "dry_run", "apply", "wait_ready", "check_run", "endpoints", "node_addresses",
            "label_namespace", "require_owned", "namespace_labels", "exec", "diagnose_pod"} <= names
    assert "context" in ClusterAPI.__annotations__


def _prepared():
    from graders.cluster.prepared import PreparedCluster

    return PreparedCluster(FakeCluster())


IMPLEMENTATIONS = {"Cluster": lambda: _cluster(), "FakeCluster": FakeCluster,  # _cluster: below
                   "PreparedCluster": _prepared}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_implementations_have_every_protocol_method_with_the_same_parameters(implementation):
    instance = IMPLEMENTATIONS[implementation]()
    assert isinstance(instance, ClusterAPI)
    for name, wanted in _protocol_methods().items():
        method = getattr(instance, name, None)
        assert callable(method), f"{implementation}.{name} is missing"
        have = inspect.signature(method).parameters
        assert list(have) == list(wanted.parameters)[1:], f"{implementation}.{name}: {list(have)}"  # [1:]: self
        for param in wanted.parameters.values():  # a default in the protocol must be a default everywhere
            if param.default is not inspect.Parameter.empty:
                assert have[param.name].default is not inspect.Parameter.empty, f"{implementation}.{name}"


# ---------------------------------------------------------------------- the real Cluster on mocked API objects
class _Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.reason, self.body = status, "", ""


class _Core:
    """CoreV1Api in memory: namespaces with labels, a default ServiceAccount in each, patches recorded."""

    def __init__(self, namespaces: dict[str, dict | None]) -> None:
        self.namespaces = dict(namespaces)
        self.patches: list[tuple[str, dict]] = []
        self.created: list[dict] = []

    def read_namespace(self, name, **kw):
        if name not in self.namespaces:
            raise _Status(404)
        return NS(metadata=NS(name=name, labels=self.namespaces[name]), status=NS(phase="Active"))

    def patch_namespace(self, name, body, **kw):
        self.patches.append((name, body))
        self.namespaces[name] = {**(self.namespaces[name] or {}), **body["metadata"]["labels"]}

    def create_namespace(self, body, **kw):
        self.created.append(body)
        self.namespaces[body["metadata"]["name"]] = dict(body["metadata"]["labels"])

    def read_namespaced_service_account(self, name, namespace, **kw):
        return NS(metadata=NS(name=name))

    def list_node(self, **kw):
        def node(name, *addresses):
            return NS(metadata=NS(name=name), status=NS(addresses=[NS(type=t, address=a) for t, a in addresses]))
        return NS(items=[node("worker2", ("InternalIP", "172.18.0.4"), ("Hostname", "worker2")),
                         node("control-plane", ("InternalIP", "172.18.0.2")),
                         node("odd", ("Hostname", "odd"))])

    def create_namespaced_service_account_token(self, name, namespace, body, **kw):
        if name != "submission":
            raise _Status(404)
        return NS(status=NS(token=f"token-{body['spec']['expirationSeconds']}"))


class _Discovery:
    def __init__(self, slices):
        self.slices = slices
        self.selectors: list[str] = []

    def list_namespaced_endpoint_slice(self, namespace, label_selector="", **kw):
        self.selectors.append(label_selector)
        return NS(items=self.slices)


def _cluster(**apis) -> Cluster:
    cluster = Cluster.__new__(Cluster)
    cluster._apis = apis
    cluster._reset_cache = {(): []}  # nothing to empty: the namespaces hold no objects here
    cluster.timeout, cluster.server, cluster.context = 5, "https://x", "kind-k8slab"
    return cluster


def _endpoint(ip, pod=None, node="w", ready=True, conditions=True):
    return NS(addresses=[ip], node_name=node, conditions=NS(ready=ready) if conditions else None,
              target_ref=NS(name=pod) if pod else None)


def test_endpoints_reads_every_slice_of_the_service_sorted_by_pod():
    slices = [NS(ports=[NS(name="http", port=8080), NS(name=None, port=None)],
                 endpoints=[_endpoint("10.0.0.9", "web-b", ready=False), _endpoint("10.0.0.3", "web-a")]),
              NS(ports=None, endpoints=[_endpoint("10.0.0.5", conditions=False),
                                        _endpoint("10.0.0.7", "web-c", node=None, ready=None)])]
    discovery = _Discovery(slices)
    got = _cluster(DiscoveryV1Api=discovery).endpoints("ns", "web")
    assert discovery.selectors == ["kubernetes.io/service-name=web"]
    assert got == [Endpoint("10.0.0.5", "", "w", True, ()),  # no pod: sorted by its address
                   Endpoint("10.0.0.3", "web-a", "w", True, (("http", 8080),)),
                   Endpoint("10.0.0.9", "web-b", "w", False, (("http", 8080),)),
                   Endpoint("10.0.0.7", "web-c", "", True, ())]  # ready unset counts as ready


def test_node_addresses_are_internal_ips_sorted_by_node():
    assert _cluster(CoreV1Api=_Core({})).node_addresses() == [("control-plane", "172.18.0.2"),
                                                              ("worker2", "172.18.0.4")]


def test_label_namespace_patches_only_namespaces_we_own():
    core = _Core({"k8slab-a": {OWNED_LABEL: "true"}, "payments": {"team": "x"}})
    cluster = _cluster(CoreV1Api=core)
    cluster.label_namespace("k8slab-a", {"team": "frontend"})
    assert core.patches == [("k8slab-a", {"metadata": {"labels": {"team": "frontend"}}})]
    assert cluster.namespace_labels("k8slab-a") == {OWNED_LABEL: "true", "team": "frontend"}
    with pytest.raises(ClusterError) as info:
        cluster.label_namespace("payments", {"team": "frontend"})
    assert info.value.reason == "NotOwned" and len(core.patches) == 1
    with pytest.raises(ClusterError, match="does not exist"):
        cluster.label_namespace("missing", {"team": "frontend"})
    assert cluster.namespace_labels("missing") is None


def test_reset_sets_the_labels_of_each_namespace_when_creating_and_when_reusing():
    core = _Core({"k8slab-old": {OWNED_LABEL: "true", RUN_LABEL: "before"}})
    cluster = _cluster(CoreV1Api=core)
    cluster.reset_namespaces(["k8slab-old", "k8slab-new", "k8slab-plain"], "run-1",
                             labels={"k8slab-old": {"team": "a"}, "k8slab-new": {"team": "b", OWNED_LABEL: "no"}})
    assert core.patches == [("k8slab-old", {"metadata": {"labels": {"team": "a", RUN_LABEL: "run-1"}}})]
    created = {b["metadata"]["name"]: b["metadata"]["labels"] for b in core.created}
    assert created == {"k8slab-new": {"team": "b", OWNED_LABEL: "true", RUN_LABEL: "run-1"},  # ours wins
                       "k8slab-plain": {OWNED_LABEL: "true", RUN_LABEL: "run-1"}}


def test_reset_refuses_a_namespace_we_do_not_own():
    core = _Core({"payments": None})
    with pytest.raises(ClusterError) as info:
        _cluster(CoreV1Api=core).reset_namespaces(["payments"], "run-1", labels={"payments": {"team": "a"}})
    assert "refusing to reset Namespace payments" in info.value.message and core.patches == []


def test_api_errors_name_what_we_were_doing_and_tolerated_statuses_return_none():
    cluster = _cluster()

    def gone():
        raise _Status(404)

    assert cluster.call("reading Pod a/b", gone, tolerate=(404,)) is None
    with pytest.raises(ClusterError, match="^reading Pod a/b: _Status: HTTP 404"):
        cluster.call("reading Pod a/b", gone)
    with pytest.raises(ClusterError, match="lost contact with the API server at https://x"):
        cluster.call("listing Pods", lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")))


# ---------------------------------------------------------------------- rbac (the autograder's admin calls)
class _Rbac:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def create_namespaced_role(self, namespace, body, **kw):
        self.calls.append(("create Role", namespace, body["metadata"]["name"]))
        raise _Status(409)  # exists already: kept

    def create_cluster_role_binding(self, body, **kw):
        self.calls.append(("create ClusterRoleBinding", body["metadata"]["name"]))

    def delete_namespaced_role_binding(self, name, namespace, **kw):
        self.calls.append(("delete RoleBinding", namespace, name))
        raise _Status(404)

    def delete_cluster_role(self, name, **kw):
        raise _Status(500)


def test_grants_create_and_delete_tolerate_what_exists_or_is_gone():
    api = _Rbac()
    cluster = _cluster(RbacAuthorizationV1Api=api)
    rbac.create_grant(cluster, "Role", {"metadata": {"name": "r", "namespace": "ns"}, "rules": []})
    rbac.create_grant(cluster, "ClusterRoleBinding", {"metadata": {"name": "crb"}})
    rbac.delete_grant(cluster, "RoleBinding", "rb", "ns")
    assert api.calls == [("create Role", "ns", "r"), ("create ClusterRoleBinding", "crb"),
                         ("delete RoleBinding", "ns", "rb")]
    with pytest.raises(ClusterError, match="^deleting ClusterRole reader: "):
        rbac.delete_grant(cluster, "ClusterRole", "reader")


def test_access_review_and_token():
    authz = NS(create_subject_access_review=lambda review, **kw: NS(status=NS(allowed=review["spec"]["ok"])))
    cluster = _cluster(AuthorizationV1Api=authz, CoreV1Api=_Core({}))
    assert rbac.access_allowed(cluster, {"spec": {"ok": True}}) is True
    assert rbac.access_allowed(cluster, {"spec": {"ok": False}}) is False
    assert rbac.service_account_token(cluster, "k8slab-autograde", "submission", 600) == "token-600"
    assert rbac.service_account_token(cluster, "k8slab-autograde", "not-yet", 600) is None


# ---------------------------------------------------------------------- fixture pods kept between checks
class _PodCore(_Core):
    """_Core with pods: reads, deletes (immediate), and the pods apply created."""

    def __init__(self, pods: dict[str, object]) -> None:
        super().__init__({"k8slab-a": {OWNED_LABEL: "true"}})
        self.pods = dict(pods)
        self.deleted: list[str] = []

    def read_namespaced_pod(self, name, namespace, **kw):
        if name not in self.pods:
            raise _Status(404)
        return self.pods[name]

    def delete_namespaced_pod(self, name, namespace, **kw):
        self.deleted.append(name)
        self.pods.pop(name, None)


def _running(stamp: str, ready: bool = True, deleting: bool = False):
    return NS(metadata=NS(labels={FIXTURE_LABEL: stamp}, deletion_timestamp="now" if deleting else None),
              status=NS(conditions=[NS(type="Ready", status="True" if ready else "False")]))


def _probe_pod(name: str, node: str = "w1") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "k8slab-a"},
            "spec": {"nodeName": node, "containers": [{"name": "p", "image": "agnhost"}]}}


def test_ensure_pods_reuses_an_unchanged_ready_fixture_and_replaces_the_others(monkeypatch):
    same, moved, sick, gone = (_probe_pod("same"), _probe_pod("moved", node="w2"), _probe_pod("sick"),
                               _probe_pod("gone"))
    stamp = {name: stamp_fixture(pod)["metadata"]["labels"][FIXTURE_LABEL]
             for name, pod in (("same", same), ("moved", moved), ("sick", sick))}
    core = _PodCore({"same": _running(stamp["same"]),
                     "moved": _running(stamp_fixture(_probe_pod("moved", node="w1"))["metadata"]["labels"][
                         FIXTURE_LABEL]),  # was placed on another node: its manifest changed
                     "sick": _running(stamp["sick"], ready=False)})
    cluster = _cluster(CoreV1Api=core)
    applied: list[dict] = []
    monkeypatch.setattr(cluster, "apply", lambda objs: applied.extend(objs) or list(objs))
    cluster.ensure_pods([same, moved, sick, gone])
    assert sorted(core.deleted) == ["moved", "sick"]
    assert [p["metadata"]["name"] for p in applied] == ["moved", "sick", "gone"]
    assert all(p["metadata"]["labels"][FIXTURE_LABEL] for p in applied)
    assert applied[0]["metadata"]["labels"][FIXTURE_LABEL] != stamp["same"]


def test_stamp_fixture_is_a_hash_of_the_manifest_and_leaves_the_input_alone():
    pod = _probe_pod("p")
    a, b = stamp_fixture(pod), stamp_fixture(stamp_fixture(pod))
    assert a == b and "labels" not in pod["metadata"]
    assert stamp_fixture(_probe_pod("p", node="w2"))["metadata"]["labels"][FIXTURE_LABEL] != \
        a["metadata"]["labels"][FIXTURE_LABEL]


def test_ensure_pods_refuses_a_namespace_we_do_not_own():
    cluster = _cluster(CoreV1Api=_PodCore({}))
    pod = _probe_pod("p")
    pod["metadata"]["namespace"] = "payments"
    with pytest.raises(ClusterError):
        cluster.ensure_pods([pod])


class _Resource:
    """A dynamic-client resource recording collection deletes and answering lists."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.deletes: list[dict] = []

    def delete(self, **kw):
        self.deletes.append(kw)

    def get(self, **kw):
        return NS(items=[])


@pytest.mark.parametrize("keep", [True, False])
def test_emptying_spares_fixture_pods_only_when_asked(keep):
    pods = _Resource("Pod")
    cluster = _cluster(CoreV1Api=_Core({"k8slab-a": {OWNED_LABEL: "true"}}))
    cluster._reset_cache = {(): [(pods, "")]}
    cluster.empty_namespaces(["k8slab-a"], keep_fixtures=keep)
    assert pods.deletes[0]["label_selector"] == (f"!{FIXTURE_LABEL}" if keep else None)
