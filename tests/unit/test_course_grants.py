"""The safe autograder's per-submission credentials (graders.course.grants), against a recording cluster: which
namespaces, RBAC objects and token it asks graders.cluster for, and that it grants nothing beyond them."""
from __future__ import annotations

import pytest

from graders.course import grants as grants_module
from graders.course.grants import HOLDING_NS, NODE_READER, ROLE, SERVICE_ACCOUNT, SYSTEM_READER, Grants


class AdminCluster:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def delete_namespaces(self, names, wait=True, timeout=90):
        self.calls.append(("delete_namespaces", tuple(names)))

    def ensure_owned_namespace(self, name, run_id=None):
        self.calls.append(("ensure_owned_namespace", name, run_id))

    def label_namespace(self, name, labels):
        self.calls.append(("label_namespace", name, dict(labels)))


@pytest.fixture
def rbac(monkeypatch):
    """graders.cluster.rbac, recorded: every grant created or deleted, reviews always allowed, a token."""
    seen: list[tuple] = []

    class Recorder:
        @staticmethod
        def create_grant(cluster, kind, body):
            seen.append(("create", kind, body))

        @staticmethod
        def delete_grant(cluster, kind, name, namespace=None):
            seen.append(("delete", kind, name, namespace))

        @staticmethod
        def access_allowed(cluster, review):
            seen.append(("review", review["spec"]["resourceAttributes"]["namespace"]))
            return True

        @staticmethod
        def service_account_token(cluster, namespace, name, seconds):
            return f"token-of-{namespace}/{name}-{seconds}"

    monkeypatch.setattr(grants_module, "rbac", Recorder)
    return seen


def test_create_scopes_one_submission_and_returns_its_token(rbac):
    cluster = AdminCluster()
    token = Grants(cluster, ["lab-a", "lab-b"], "run-1", {"lab-a": {"env": "production"}}).create()
    assert token == f"token-of-{HOLDING_NS}/{SERVICE_ACCOUNT}-3600"
    assert ("label_namespace", "lab-a", {"env": "production"}) in cluster.calls
    assert [c for c in cluster.calls if c[0] == "ensure_owned_namespace"] == [
        ("ensure_owned_namespace", HOLDING_NS, "run-1"), ("ensure_owned_namespace", "lab-a", "run-1"),
        ("ensure_owned_namespace", "lab-b", "run-1")]
    created = {(kind, body["metadata"]["name"], body["metadata"].get("namespace")): body
               for op, kind, body in (c for c in rbac if c[0] == "create")}
    assert set(created) == {
        ("ServiceAccount", SERVICE_ACCOUNT, HOLDING_NS),
        ("ClusterRole", NODE_READER, None), ("ClusterRoleBinding", NODE_READER, None),
        ("Role", SYSTEM_READER, "kube-system"), ("RoleBinding", SYSTEM_READER, "kube-system"),
        ("Role", ROLE, "lab-a"), ("RoleBinding", ROLE, "lab-a"), ("Role", ROLE, "lab-b"), ("RoleBinding", ROLE, "lab-b")}
    for (kind, name, namespace), body in created.items():
        if kind.endswith("Binding"):
            assert body["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": HOLDING_NS}]
            assert body["roleRef"]["kind"] == kind[: -len("Binding")] and body["roleRef"]["name"] == name
    groups = {g for (kind, _, _), body in created.items() if "rules" in body for r in body["rules"]
              for g in r["apiGroups"]}
    assert not any(g.startswith("rbac.") for g in groups), "a submission never gets RBAC rights"
    assert created[("ClusterRole", NODE_READER, None)]["rules"][0]["verbs"] == ["get", "list", "watch"]
    assert ("review", "lab-a") in rbac and ("review", "lab-b") in rbac


def test_delete_removes_every_credential_and_namespace(rbac):
    cluster = AdminCluster()
    Grants(cluster, ["lab-a"], "run-1").delete()
    assert [c for c in rbac if c[0] == "delete"] == [
        ("delete", "ClusterRoleBinding", NODE_READER, None), ("delete", "ClusterRole", NODE_READER, None),
        ("delete", "RoleBinding", SYSTEM_READER, "kube-system"), ("delete", "Role", SYSTEM_READER, "kube-system")]
    assert cluster.calls == [("delete_namespaces", ("lab-a", HOLDING_NS))]


class FlannelAdminCluster(AdminCluster):
    """An admin connection to a cluster whose CNI runs its agents in kube-flannel."""

    def namespace_labels(self, name):
        return {} if name in ("kube-system", "kube-flannel") else None


@pytest.mark.parametrize("flannel", [True, False])
def test_a_lab_that_compares_clusters_may_read_the_cni_agents_where_they_run(rbac, flannel):
    """lab 02 identifies each cluster's CNI from its agent pods (graders.cni.AGENT_NAMESPACES): read-only Pods in
    kube-flannel, where that namespace exists (a Role needs its namespace); kube-system is readable already."""
    cluster = FlannelAdminCluster() if flannel else AdminCluster()
    if not flannel:
        cluster.namespace_labels = lambda name: None
    Grants(cluster, ["lab-a"], "run-1", read_cni_agents=True).create()
    created = {(kind, body["metadata"]["name"], body["metadata"].get("namespace")): body
               for op, kind, body in (c for c in rbac if c[0] == "create")}
    readers = {key for key in created if key[1] == grants_module.CNI_READER}
    assert readers == ({("Role", grants_module.CNI_READER, "kube-flannel"),
                        ("RoleBinding", grants_module.CNI_READER, "kube-flannel")} if flannel else set())
    if flannel:
        assert created[("Role", grants_module.CNI_READER, "kube-flannel")]["rules"] == [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    rbac.clear()
    Grants(cluster, ["lab-a"], "run-1", read_cni_agents=True).delete()
    assert ("delete", "RoleBinding", grants_module.CNI_READER, "kube-flannel") in rbac
    assert ("delete", "Role", grants_module.CNI_READER, "kube-flannel") in rbac


def test_a_lab_that_compares_nothing_reads_no_cni_agents(rbac):
    Grants(FlannelAdminCluster(), ["lab-a"], "run-1").create()
    assert not any(c[2]["metadata"]["name"] == grants_module.CNI_READER for c in rbac if c[0] == "create")


def test_the_scoped_kubeconfig_has_one_context_or_one_per_cluster(monkeypatch):
    import base64

    from graders.course.grants import COMPARE_CONTEXT, SCRATCH_CONTEXT, scoped_kubeconfig

    monkeypatch.setattr(grants_module.rbac, "ca_certificate", lambda cluster: cluster.ca)
    first, second = AdminCluster(), AdminCluster()
    first.ca, second.ca = b"CA-1", b""
    one = scoped_kubeconfig(first, "t1", "https://a:6443", "lab-a")
    assert one == {"apiVersion": "v1", "kind": "Config", "current-context": SCRATCH_CONTEXT,
                   "clusters": [{"name": SCRATCH_CONTEXT, "cluster": {
                       "server": "https://a:6443", "certificate-authority-data": base64.b64encode(b"CA-1").decode()}}],
                   "users": [{"name": SCRATCH_CONTEXT, "user": {"token": "t1"}}],
                   "contexts": [{"name": SCRATCH_CONTEXT, "context": {"cluster": SCRATCH_CONTEXT,
                                                                      "user": SCRATCH_CONTEXT, "namespace": "lab-a"}}]}
    two = scoped_kubeconfig(first, "t1", "https://a:6443", "lab-a", compare=(second, "t2", "https://b:7443"))
    assert two["current-context"] == SCRATCH_CONTEXT
    assert two["clusters"][0] == one["clusters"][0] and two["users"][0] == one["users"][0]
    assert two["clusters"][1] == {"name": COMPARE_CONTEXT, "cluster": {"server": "https://b:7443",
                                                                       "insecure-skip-tls-verify": True}}
    assert two["users"][1] == {"name": COMPARE_CONTEXT, "user": {"token": "t2"}}
    assert two["contexts"][1] == {"name": COMPARE_CONTEXT, "context": {"cluster": COMPARE_CONTEXT,
                                                                       "user": COMPARE_CONTEXT, "namespace": "lab-a"}}
