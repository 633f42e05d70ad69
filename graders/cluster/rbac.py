"""The safe autograder's admin calls: RBAC objects, access reviews and ServiceAccount tokens.

Only the instructor's harness uses these, with the admin connection, to give one submission namespace-scoped
credentials (graders.course.grants). They are the one place graders write outside owned namespaces (a ClusterRole
and its binding to read Nodes, a Role in kube-system to read cluster DNS), so they live apart from `Cluster`.
"""
from __future__ import annotations

from pathlib import Path

from graders.cluster.client import Cluster

# kind -> (API group client, create method, delete method); the namespaced ones take the namespace after the body /
# name, as the typed client does.
_GRANT_CALLS = {
    "Role": ("RbacAuthorizationV1Api", "create_namespaced_role", "delete_namespaced_role"),
    "RoleBinding": ("RbacAuthorizationV1Api", "create_namespaced_role_binding", "delete_namespaced_role_binding"),
    "ClusterRole": ("RbacAuthorizationV1Api", "create_cluster_role", "delete_cluster_role"),
    "ClusterRoleBinding": ("RbacAuthorizationV1Api", "create_cluster_role_binding", "delete_cluster_role_binding"),
    "ServiceAccount": ("CoreV1Api", "create_namespaced_service_account", "delete_namespaced_service_account"),
}


def _ref(kind: str, name: str, namespace: str | None) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def create_grant(cluster: Cluster, kind: str, body: dict) -> None:
    """Create a Role, RoleBinding, ClusterRole, ClusterRoleBinding or ServiceAccount from `body` (its namespace in
    `metadata.namespace` for the namespaced kinds); one that already exists is left as it is."""
    group, create, _ = _GRANT_CALLS[kind]
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    args = (namespace, body) if namespace else (body,)
    cluster.call(f"creating {_ref(kind, meta.get('name', ''), namespace)}", getattr(cluster.api(group), create),
                 *args, _request_timeout=cluster.timeouts(), tolerate=(409,))


def delete_grant(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> None:
    """Delete one object of a kind `create_grant` makes; a missing one (or one already going) is fine."""
    group, _, delete = _GRANT_CALLS[kind]
    args = (name, namespace) if namespace else (name,)
    cluster.call(f"deleting {_ref(kind, name, namespace)}", getattr(cluster.api(group), delete), *args,
                 _request_timeout=cluster.timeouts(), tolerate=(404, 409))


def access_allowed(cluster: Cluster, review: dict) -> bool:
    """Whether the API server's authorizer allows what a SubjectAccessReview (a dict) asks."""
    answer = cluster.call("asking the authorizer (SubjectAccessReview)",
                          cluster.api("AuthorizationV1Api").create_subject_access_review, review,
                          _request_timeout=cluster.timeouts())
    return bool(answer.status.allowed)


def service_account_token(cluster: Cluster, namespace: str, name: str, seconds: int) -> str | None:
    """A bearer token for ServiceAccount namespace/name valid `seconds` (TokenRequest); None while the
    ServiceAccount does not exist yet."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"expirationSeconds": seconds}}
    answer = cluster.call(f"requesting a token for ServiceAccount {namespace}/{name}",
                          cluster.core.create_namespaced_service_account_token, name, namespace, request,
                          _request_timeout=cluster.timeouts(), tolerate=(404,))
    return answer.status.token if answer is not None else None


def ca_certificate(cluster: Cluster) -> bytes:
    """The PEM of the certificate authority this connection trusts; empty when it verifies nothing."""
    path = cluster.api_client.configuration.ssl_ca_cert
    return Path(path).read_bytes() if path else b""
