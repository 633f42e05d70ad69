"""The only code that talks to the Kubernetes API (and runs commands in pods); see docs/architecture.md.

`preflight` (is there a cluster? standard library only) · `client` (`Cluster`) · `diagnosis` (why pods are not
ready) · `api` (`ClusterAPI`, the protocol everything else is written against) · `rbac` (the autograder's admin
calls) · `names` (labels, run ids, object references).
"""
from graders.cluster.api import ClusterAPI, Endpoint
from graders.cluster.client import EMPTY_TIMEOUT, KEPT_OBJECTS, NAMESPACE_GONE_TIMEOUT, RESET_KINDS, Cluster
from graders.cluster.diagnosis import (PodProblem, diagnose_deployment, diagnose_pod, is_ready, parse_exec_status,
                                       readiness_hint)
from graders.cluster.names import (FIELD_MANAGER, FIXTURE_LABEL, OWNED_LABEL, RUN_LABEL, kubectl_exec_command,
                                   new_run_id, obj_ref, stamp_fixture)
from graders.cluster.preflight import CONTEXT_ENV, DEFAULT_CONTEXT, default_context, diagnose_unreachable, preflight

__all__ = ["CONTEXT_ENV", "DEFAULT_CONTEXT", "EMPTY_TIMEOUT", "FIELD_MANAGER", "FIXTURE_LABEL", "KEPT_OBJECTS",
           "NAMESPACE_GONE_TIMEOUT", "OWNED_LABEL", "RESET_KINDS", "RUN_LABEL", "Cluster", "ClusterAPI", "Endpoint",
           "PodProblem", "default_context", "diagnose_deployment", "diagnose_pod", "diagnose_unreachable", "is_ready",
           "kubectl_exec_command", "new_run_id", "obj_ref", "parse_exec_status", "preflight", "readiness_hint",
           "stamp_fixture"]
