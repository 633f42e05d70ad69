"""The credentials of one submission under the safe autograder, created and removed with the admin's cluster.

With the instructor's admin kubeconfig, (re)create the lab's grader namespaces (label k8slab.dev/owned=true) and
a holding namespace ``k8slab-autograde`` with a ServiceAccount; bind a Role in each lab namespace (namespaced
workloads, networking, pods/exec — no RBAC, no quota, no other namespace) plus read-only Nodes and read-only
Pods/Services in kube-system (cluster DNS); mint a short-lived token (TokenRequest) and write a kubeconfig
holding only that token.

A lab that compares two clusters (lab.yaml ``compare_with``: lab 02) gets the same grant on each cluster, made with
the instructor's admin connection to that cluster (``for_lab``), plus read-only Pods where the CNI's agents run
(graders.cni.AGENT_NAMESPACES: the grader identifies each cluster's CNI from them); the kubeconfig then holds a
second context, ``COMPARE_CONTEXT``, with that cluster's server, CA and token. ``delete_all`` removes every cluster's.
"""
from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence

from graders import cni
from graders.cluster import OWNED_LABEL, RUN_LABEL, Cluster, rbac
from graders.errors import K8sLabError

HOLDING_NS = "k8slab-autograde"
SERVICE_ACCOUNT = "submission"
ROLE = "k8slab-submission"
NODE_READER = "k8slab-autograde-node-reader"
# Graders look at cluster DNS (lab 05 probes the kube-dns pods): read-only pods/services in kube-system.
SYSTEM_READ_NS = "kube-system"
SYSTEM_READER = "k8slab-autograde-system-reader"
# Labs that compare clusters identify each one's CNI from its agent pods: read-only pods in the CNI namespaces
# beyond kube-system (Flannel's kube-flannel), where they exist.
CNI_READER = "k8slab-autograde-cni-reader"
CNI_READ_NS = tuple(ns for ns in cni.AGENT_NAMESPACES if ns != SYSTEM_READ_NS)
TOKEN_SECONDS = 3600
SCRATCH_CONTEXT = "k8slab-submission"
COMPARE_CONTEXT = "k8slab-submission-compare"  # the second cluster's scoped context (labs with compare_with)

# What a submission's credentials may do inside each of its grader namespaces. Deliberately no rbac.*, no
# resourcequotas/limitranges, nothing cluster-scoped.
NAMESPACED_RULES = [
    {"apiGroups": [""], "verbs": ["*"],
     "resources": ["pods", "pods/log", "pods/exec", "pods/attach", "pods/portforward", "pods/status", "services",
                   "endpoints", "configmaps", "secrets", "serviceaccounts", "events", "persistentvolumeclaims",
                   "replicationcontrollers"]},
    {"apiGroups": ["apps", "batch", "networking.k8s.io", "discovery.k8s.io", "policy", "autoscaling",
                   "gateway.networking.k8s.io", "cert-manager.io", "traefik.io", "traefik.containo.us"],
     "resources": ["*"], "verbs": ["*"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    # Cilium's view of the namespace's pods: lab 02 waits for their identities before it probes (graders.cni)
    {"apiGroups": ["cilium.io"], "resources": ["ciliumendpoints"], "verbs": ["get", "list", "watch"]},
]
READ_ONLY = ["get", "list", "watch"]
NODE_RULES = [{"apiGroups": [""], "resources": ["nodes"], "verbs": READ_ONLY}]  # cluster-wide, read-only
SYSTEM_RULES = [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": READ_ONLY},  # in SYSTEM_READ_NS
                # how Cilium carries pods between nodes (graders.cni): its own ConfigMap, nothing else of kube-system
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cilium-config"], "verbs": ["get"]}]
CNI_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": READ_ONLY}]  # in CNI_READ_NS


def namespace_rules(namespace: str) -> list[dict]:
    """The Role of one grader namespace: NAMESPACED_RULES, and reading that Namespace itself (its labels)."""
    return NAMESPACED_RULES + [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace],
                                "verbs": ["get"]}]


def grant(kind: str, name: str, namespace: str | None, rules: list[dict], account: tuple[str, str],
          labels: Mapping[str, str], role_labels: Mapping[str, str] | None = None) -> tuple[dict, dict]:
    """(Role or ClusterRole with ``rules``, its binding to ServiceAccount ``account`` = (namespace, name)), both
    named ``name`` (in ``namespace`` unless cluster-scoped); ``role_labels`` for the ClusterRole when given."""
    meta = {"name": name, "labels": dict(labels), **({"namespace": namespace} if namespace else {})}
    role_meta = meta if namespace or role_labels is None else {"name": name, "labels": dict(role_labels)}
    binding = {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}]}
    return {"metadata": role_meta, "rules": rules}, binding


class Grants:
    """The namespaces, ServiceAccount, RBAC and token of one submission, created and removed as admin (the
    RBAC and token calls are graders.cluster.rbac's)."""

    def __init__(self, cluster: Cluster, namespaces: list[str], run_id: str,
                 namespace_labels: Mapping[str, Mapping[str, str]] | None = None, *,
                 read_cni_agents: bool = False) -> None:
        self.namespace_labels = namespace_labels or {}
        self.cluster = cluster
        self.namespaces = namespaces
        self.run_id = run_id
        self.read_cni_agents = read_cni_agents

    @classmethod
    def for_lab(cls, cluster: Cluster, lab_spec, run_id: str) -> "Grants":
        """One submission's grant on ``cluster`` (the graded one, or the second of a lab that compares two)."""
        return cls(cluster, list(lab_spec.all_namespaces), run_id, lab_spec.namespace_labels,
                   read_cni_agents=bool(lab_spec.compare_with))

    @property
    def context(self) -> str:
        return str(getattr(self.cluster, "context", "") or "?")

    def _labels(self) -> dict:
        return {OWNED_LABEL: "true", RUN_LABEL: self.run_id}

    def _bind(self, kind: str, name: str, namespace: str | None, rules: list[dict]) -> None:
        """A Role (or ClusterRole) with `rules` bound to the submission's ServiceAccount."""
        role, binding = grant(kind, name, namespace, rules, (HOLDING_NS, SERVICE_ACCOUNT), self._labels(),
                              {OWNED_LABEL: "true"})
        rbac.create_grant(self.cluster, kind, role)
        rbac.create_grant(self.cluster, f"{kind}Binding", binding)

    def reset_namespaces(self) -> None:
        """Fresh lab namespaces with the submission's Role bound in each (admin: delete, wait, create)."""
        self.cluster.delete_namespaces(self.namespaces, wait=True)
        for ns in self.namespaces:
            self.cluster.ensure_owned_namespace(ns, self.run_id)
            if self.namespace_labels.get(ns):  # labels the lab's grader needs (namespaces are cluster-scoped)
                self.cluster.label_namespace(ns, self.namespace_labels[ns])
            self._bind("Role", ROLE, ns, namespace_rules(ns))
        self.wait_authorized()

    def wait_authorized(self, timeout: float = 20) -> None:
        """RBAC changes reach the API server's authorizer through a cache: wait until the submission's identity
        may create pods in each of its namespaces (SubjectAccessReview) before anything uses the token."""
        deadline = time.monotonic() + timeout
        for review in access_reviews(HOLDING_NS, SERVICE_ACCOUNT, self.namespaces):
            while not rbac.access_allowed(self.cluster, review):
                if time.monotonic() > deadline:
                    ns = review["spec"]["resourceAttributes"]["namespace"]
                    raise K8sLabError(f"the submission's Role in {ns} did not take effect within {timeout:g} s")
                time.sleep(0.2)

    def create(self) -> str:
        """Everything for one submission; returns the bearer token."""
        self.cluster.delete_namespaces([HOLDING_NS], wait=True)
        self.cluster.ensure_owned_namespace(HOLDING_NS, self.run_id)
        rbac.create_grant(self.cluster, "ServiceAccount",
                          {"metadata": {"name": SERVICE_ACCOUNT, "namespace": HOLDING_NS, "labels": self._labels()}})
        rbac.delete_grant(self.cluster, "ClusterRoleBinding", NODE_READER)
        self._bind("ClusterRole", NODE_READER, None, NODE_RULES)
        self._bind("Role", SYSTEM_READER, SYSTEM_READ_NS, SYSTEM_RULES)
        for ns in CNI_READ_NS if self.read_cni_agents else ():
            if self.cluster.namespace_labels(ns) is not None:  # a Role needs its namespace: Flannel's clusters only
                self._bind("Role", CNI_READER, ns, CNI_RULES)
        self.reset_namespaces()
        for _ in range(20):  # the ServiceAccount may take a moment to be usable
            token = rbac.service_account_token(self.cluster, HOLDING_NS, SERVICE_ACCOUNT, TOKEN_SECONDS)
            if token is not None:
                return token
            time.sleep(0.5)
        raise K8sLabError(f"could not mint a token for ServiceAccount {HOLDING_NS}/{SERVICE_ACCOUNT}")

    def delete(self) -> None:
        """Remove the submission's namespaces and every credential object (the token dies with its SA)."""
        rbac.delete_grant(self.cluster, "ClusterRoleBinding", NODE_READER)
        rbac.delete_grant(self.cluster, "ClusterRole", NODE_READER)
        rbac.delete_grant(self.cluster, "RoleBinding", SYSTEM_READER, SYSTEM_READ_NS)
        rbac.delete_grant(self.cluster, "Role", SYSTEM_READER, SYSTEM_READ_NS)
        for ns in CNI_READ_NS if self.read_cni_agents else ():
            rbac.delete_grant(self.cluster, "RoleBinding", CNI_READER, ns)
            rbac.delete_grant(self.cluster, "Role", CNI_READER, ns)
        self.cluster.delete_namespaces([*self.namespaces, HOLDING_NS], wait=True)


def delete_all(grants: Sequence[Grants]) -> list[str]:
    """``delete`` on every cluster, each even when an earlier one failed or was interrupted (Ctrl-C); returns what
    failed, one line per cluster (an interruption goes on once every cluster has been cleaned)."""
    failures: list[str] = []

    def from_(index: int) -> None:
        if index == len(grants):
            return
        try:
            grants[index].delete()
        except Exception as exc:  # noqa: BLE001 — reported with the submission; the next cluster is still cleaned
            failures.append(f"cleanup on {grants[index].context}: {exc}")
        finally:
            from_(index + 1)

    from_(0)
    return failures


def access_reviews(sa_namespace: str, service_account: str, namespaces) -> list[dict]:
    """SubjectAccessReviews asking whether a ServiceAccount's Role is in force in each namespace: it may create pods
    there and read the namespace itself (what every grading run does first)."""
    user = f"system:serviceaccount:{sa_namespace}:{service_account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"]
    return [{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {"user": user, "groups": groups,
                      "resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource, "name": name}}}
            for ns in namespaces
            for verb, resource, name in (("create", "pods", ""), ("get", "namespaces", ns))]


def _entries(name: str, cluster: Cluster, token: str, server: str, namespace: str) -> tuple[dict, dict, dict]:
    """(cluster, user, context) entries of one scoped context: ``server`` with the CA ``cluster`` trusts, the token."""
    ca = rbac.ca_certificate(cluster)
    entry = {"server": server}
    if ca:
        entry["certificate-authority-data"] = base64.b64encode(ca).decode()
    else:
        entry["insecure-skip-tls-verify"] = True
    return ({"name": name, "cluster": entry}, {"name": name, "user": {"token": token}},
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}})


def scoped_kubeconfig(cluster: Cluster, token: str, server: str, namespace: str = "default",
                      compare: tuple[Cluster, str, str] | None = None) -> dict:
    """A kubeconfig holding only the submission's token(s): context SCRATCH_CONTEXT (current) for the graded
    cluster and, with ``compare`` = (second cluster, its token, its server), COMPARE_CONTEXT for the second."""
    scoped = [(SCRATCH_CONTEXT, cluster, token, server)]
    if compare is not None:
        scoped.append((COMPARE_CONTEXT, *compare))
    entries = [_entries(name, c, t, s, namespace) for name, c, t, s in scoped]
    return {"apiVersion": "v1", "kind": "Config", "current-context": SCRATCH_CONTEXT,
            "clusters": [e[0] for e in entries], "users": [e[1] for e in entries], "contexts": [e[2] for e in entries]}
