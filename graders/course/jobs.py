"""One submission's grading run as Kubernetes objects: what the dispatcher (``k8slab course autograde --parallel``)
creates as admin, lets the scheduler run, reads the result of from the Job's log, and deletes.

Why Jobs: 300 students x six labs serially is days (issue 15); the cluster that grades is already a scheduler.
Each run gets its own namespaces (graders.nsmap: ``production-<run>``), so runs of one lab no longer collide,
and the same boundary the serial safe autograder draws (graders.course.grants): a ServiceAccount bound only in
those namespaces, plus read-only Nodes and read-only Pods/Services in kube-system. The grader runs in a holding
namespace of its own where it may do nothing; the submission reaches it as a read-only ConfigMap, never as code
that runs: the grader applies the files and probes what they do.

Pure: functions returning dicts (tests/unit/test_course_jobs.py). Applying, waiting and collecting is the
dispatcher's.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from graders import outside, versions
from graders.autograding import PREPARED_ENV
from graders.cluster import CONTEXT_ENV, OWNED_LABEL, RUN_LABEL, claims
from graders.course.grants import NODE_RULES, SYSTEM_READ_NS, SYSTEM_RULES, access_reviews, grant, namespace_rules
from graders.nsmap import NamespaceMap, run_suffix
from graders.outside_relay import Relay
from graders.spec import LabSpec

RBAC_API = "rbac.authorization.k8s.io/v1"
JOB_LABEL = "k8slab.dev/grading-job"  # on every object of every run: what a cleanup lists
GRADER_IMAGE_PIN = "K8SLAB_GRADER_IMAGE"
SERVICE_ACCOUNT = "grader"
CONTAINER = "grade"
JOB_NAME = "grade"  # one Job per run, in the run's own holding namespace
IN_CLUSTER_CONTEXT = "k8slab-in-cluster"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SUBMISSION_DIR = "/k8slab/submission"
KUBECONFIG_DIR = "/k8slab/kubeconfig"
DEADLINE_S = 900  # one lab's whole run; lab 04, the longest, takes ~1 min on an idle kind cluster
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"},
             "limits": {"cpu": "1", "memory": "768Mi", "ephemeral-storage": "256Mi"}}
_KEY = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass(frozen=True)
class Run:
    """One submission of one lab. ``files``: path under the lab folder (``web-to-api/allow.yaml``) -> text."""

    lab: LabSpec
    run_id: str
    files: Mapping[str, str] = field(default_factory=dict)
    mark: str = "@@k8slab-result@@"
    image: str = ""  # default: the pin K8SLAB_GRADER_IMAGE
    deadline_s: int = DEADLINE_S
    relay: Relay | None = None  # the batch's client outside the cluster (graders.outside_relay); None: refused

    @property
    def nsmap(self) -> NamespaceMap:
        return NamespaceMap.for_run(self.lab.all_namespaces, self.run_id)

    @property
    def suffix(self) -> str:
        """The run id as the namespaces carry it (lower case, DNS-safe)."""
        return run_suffix(self.run_id)

    @property
    def holding(self) -> str:
        """The namespace the Job itself runs in (its ServiceAccount, the ConfigMaps): nothing is granted there."""
        return f"k8slab-job-{self.suffix}"

    @property
    def labels(self) -> dict[str, str]:
        return {JOB_LABEL: "true", RUN_LABEL: self.suffix}

    @property
    def selector(self) -> str:
        """The label selector of every object of this run (what a cleanup lists)."""
        return ",".join(f"{key}={value}" for key, value in self.labels.items())


def objects(run: Run) -> list[dict]:
    """Every object of one run, in the order to create them (namespaces first, the Job last)."""
    return [*namespaces(run), service_account(run), *grants(run), submission_config_map(run),
            kubeconfig_config_map(run), job(run)]


def namespaces(run: Run) -> list[dict]:
    """The holding namespace and the run's real lab namespaces, created as the grader's (owned) with the lab's
    labels and their logical name -- PreparedCluster checks those labels instead of setting them."""
    lab = [_namespace(real, {OWNED_LABEL: "true", **run.labels,
                             **run.nsmap.labels_for(real, run.lab.namespace_labels)})
           for real in (run.nsmap.real(ns) for ns in run.lab.all_namespaces)]
    return [_namespace(run.holding, run.labels), *lab]


def _namespace(name: str, labels: Mapping[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}


def service_account(run: Run) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": run.holding, "labels": run.labels}}


def grants(run: Run) -> list[dict]:
    """What the serial safe autograder grants a submission (graders.course.grants), for this run's namespaces:
    a Role in each, read-only kube-system Pods/Services, read-only Nodes. Cluster-scoped and kube-system objects
    carry the run in their names, so that two runs never share (or delete) one."""
    wanted = [("Role", "k8slab-grader", real, namespace_rules(real))
              for real in (run.nsmap.real(ns) for ns in run.lab.all_namespaces)]
    wanted += [("Role", f"k8slab-grader-system-reader-{run.suffix}", SYSTEM_READ_NS, SYSTEM_RULES),
               ("ClusterRole", f"k8slab-grader-node-reader-{run.suffix}", None, NODE_RULES)]
    if shares(run.lab):  # its Leases, to take turns with the other runs (graders.cluster.claims)
        wanted.append(("Role", f"k8slab-grader-claims-{run.suffix}", claims.NAMESPACE, claims.RULES))
    out = []
    for kind, name, namespace, rules in wanted:
        role, binding = grant(kind, name, namespace, rules, (run.holding, SERVICE_ACCOUNT), run.labels, run.labels)
        out += [{"apiVersion": RBAC_API, "kind": kind, **role}, {"apiVersion": RBAC_API, "kind": f"{kind}Binding",
                                                                 **binding}]
    return out


def shares(lab: LabSpec) -> bool:
    """Whether an exercise of the lab takes turns at something cluster-wide (lab.yaml ``shares``)."""
    return any(exercise.shares for exercise in lab.exercises)


def claims_namespace() -> dict:
    """Where the runs' Leases live: created once by the dispatcher (not a run's: no run label, never deleted with
    one), the grader's own."""
    return _namespace(claims.NAMESPACE, {OWNED_LABEL: "true"})


def authorization_checks(run: Run) -> list[dict]:
    """What must be allowed before the Job starts: the run's Roles in force for its ServiceAccount in every lab
    namespace (the authorizer learns of new RBAC objects through a cache; a grader that starts first gets 403)."""
    return access_reviews(run.holding, SERVICE_ACCOUNT, [run.nsmap.real(ns) for ns in run.lab.all_namespaces])


def submission_key(path: str) -> str:
    """A ConfigMap key for a file path (keys allow no '/'): the volume's ``items`` put it back at ``path``."""
    return _KEY.sub("_", path.replace("/", "__"))


def submission_config_map(run: Run) -> dict:
    keys = {submission_key(path): path for path in run.files}
    if len(keys) != len(run.files):
        raise ValueError(f"two submitted paths of run {run.run_id} map to one ConfigMap key: {sorted(run.files)}")
    return {"apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
            "metadata": {"name": "submission", "namespace": run.holding, "labels": run.labels},
            "data": {key: run.files[path] for key, path in keys.items()}}


def kubeconfig(run: Run) -> dict:
    """A kube context for the pod's own ServiceAccount: the token and CA the kubelet mounts, read from their files
    (the kubelet rotates the token), the API server by its in-cluster name."""
    return {"apiVersion": "v1", "kind": "Config", "current-context": IN_CLUSTER_CONTEXT,
            "clusters": [{"name": IN_CLUSTER_CONTEXT, "cluster": {
                "server": "https://kubernetes.default.svc", "certificate-authority": f"{SA_DIR}/ca.crt"}}],
            "users": [{"name": IN_CLUSTER_CONTEXT, "user": {"tokenFile": f"{SA_DIR}/token"}}],
            "contexts": [{"name": IN_CLUSTER_CONTEXT, "context": {
                "cluster": IN_CLUSTER_CONTEXT, "user": IN_CLUSTER_CONTEXT,
                "namespace": run.nsmap.real(run.lab.all_namespaces[0])}}]}


def kubeconfig_config_map(run: Run) -> dict:
    import yaml

    return {"apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
            "metadata": {"name": "kubeconfig", "namespace": run.holding, "labels": run.labels},
            "data": {"config": yaml.safe_dump(kubeconfig(run), sort_keys=False)}}


def command(run: Run) -> list[str]:
    """`k8slab grade LAB --run ID --result-line MARK` on the mounted files (graders.cli)."""
    return ["python", "-m", "graders.cli", "grade", run.lab.id, "--submission", SUBMISSION_DIR, "--run", run.run_id,
            "--result-line", run.mark]


def grader_image(run: Run) -> str:
    image = run.image or versions.get(GRADER_IMAGE_PIN)
    if not image:
        raise ValueError(f"no grading image: pin {GRADER_IMAGE_PIN} in environment/versions.env")
    return image


def job(run: Run) -> dict:
    """Runs once (backoffLimit 0: a crash is a result, not a retry that grades twice), bounded in time, as nobody:
    no capabilities, no privilege escalation, a read-only root with a small writable /tmp, limited CPU and memory."""
    container = {
        "name": CONTAINER, "image": grader_image(run), "imagePullPolicy": "IfNotPresent",
        "command": command(run),
        "env": [{"name": "KUBECONFIG", "value": f"{KUBECONFIG_DIR}/config"},
                {"name": CONTEXT_ENV, "value": IN_CLUSTER_CONTEXT},
                {"name": PREPARED_ENV, "value": "1"},
                {"name": outside.IN_JOB_ENV, "value": outside.IN_JOB_REASON},
                {"name": "HOME", "value": "/tmp"},
                {"name": "K8SLAB_CACHE", "value": "/tmp/k8slab-cache"},
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                *(run.relay.env() if run.relay else [])],
        "resources": RESOURCES,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "privileged": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "submission", "mountPath": SUBMISSION_DIR, "readOnly": True},
                         {"name": "kubeconfig", "mountPath": KUBECONFIG_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    items = [{"key": submission_key(path), "path": path} for path in sorted(run.files)]
    pod = {
        "metadata": {"labels": run.labels},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT, "automountServiceAccountToken": True, "restartPolicy": "Never",
            "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "submission", "configMap": {"name": "submission", "items": items,
                                                             "defaultMode": 0o444}},
                        {"name": "kubeconfig", "configMap": {"name": "kubeconfig", "defaultMode": 0o444}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "128Mi"}}],
        },
    }
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": JOB_NAME, "namespace": run.holding, "labels": run.labels},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": int(run.deadline_s), "template": pod}}
