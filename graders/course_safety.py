"""Package course_safety autogrades nbgrader submissions without trusting them.

For each submission, one at a time (`autograde`):

1. **Scope.** With the instructor's admin kubeconfig, (re)create the lab's grader namespaces (label
   k8slab.dev/owned=true) and a holding namespace ``k8slab-autograde`` with a ServiceAccount; bind a Role in each
   lab namespace (namespaced workloads, networking, pods/exec — no RBAC, no quota, no other namespace) plus
   read-only Nodes and read-only Pods/Services in kube-system (cluster DNS); mint a short-lived token (TokenRequest) and write a kubeconfig holding only that token.
2. **Verify.** In a separate process with a scrubbed environment and only that kubeconfig, grade a pristine
   copy of the submitted files, one exercise at a time (namespaces reset by the harness in between). These
   records are the grades; the harness keeps them out of the student's reach.
3. **Run the notebook.** `nbgrader autograde` (trusted, on the host, owner of the gradebook) executes the
   notebook through the kernel spec ``k8slab-sandbox`` (graders.course_sandbox): the kernel runs in a throwaway
   docker container on the cluster's network with only the submission folder, the scoped kubeconfig and the
   verified records mounted. The test cells display the verified records; `check()` calls are shown from them
   too (graders.course_feedback.PrecomputedChecks), so nothing is graded twice.
4. **Record.** Write the verified scores into the gradebook (overriding whatever the notebook printed; a
   difference is reported as possible tampering), then delete the namespaces, the binding and the token's
   ServiceAccount.

This module calls the Kubernetes API directly for the RBAC objects and the TokenRequest (graders.cluster covers
what graders do to submissions, not what the harness does to credentials).
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from graders import paths
from graders.errors import K8sLabError, UsageError

HOLDING_NS = "k8slab-autograde"
SERVICE_ACCOUNT = "submission"
ROLE = "k8slab-submission"
NODE_READER = "k8slab-autograde-node-reader"
# Graders look at cluster DNS (lab 05 probes the kube-dns pods): read-only pods/services in kube-system.
SYSTEM_READ_NS = "kube-system"
SYSTEM_READER = "k8slab-autograde-system-reader"
OWNED_LABEL = "k8slab.dev/owned"
RUN_LABEL = "k8slab.dev/run"
SANDBOX_KERNEL = "k8slab-sandbox"
SANDBOX_IMAGE = "k8slab/autograde-sandbox:1"
TOKEN_SECONDS = 3600
SCRATCH_CONTEXT = "k8slab-submission"

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
]


@dataclass
class SubmissionResult:
    student: str
    lab: str
    scores: dict[str, float] = field(default_factory=dict)       # verified, written to the gradebook
    notebook: dict[str, float | None] = field(default_factory=dict)  # what nbgrader computed from the notebook
    points: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    tampered: list[str] = field(default_factory=list)
    boundary: str = ""
    error: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    def summary(self) -> str:
        head = f"{self.student} {self.lab}: {self.total:g}/{sum(self.points.values()):g}"
        parts = [f"{ex} {s:g}/{self.points.get(ex, 0):g}" for ex, s in self.scores.items()]
        line = f"{head} ({', '.join(parts)}) [{self.boundary}, {self.seconds:.0f} s]"
        if self.tampered:
            line += "\n  WARNING notebook output differs from the verified grade (recorded the verified one): " + \
                    "; ".join(self.tampered)
        if self.error:
            line += f"\n  ERROR {self.error}"
        return line


# --------------------------------------------------------------------------- credentials
class Grants:
    """The namespaces, ServiceAccount, RBAC and token of one submission, created and removed as admin."""

    def __init__(self, cluster, namespaces: list[str], run_id: str,
                 namespace_labels: dict[str, dict[str, str]] | None = None) -> None:
        from kubernetes import client as k8s

        self.namespace_labels = namespace_labels or {}
        self.cluster = cluster
        self.namespaces = namespaces
        self.run_id = run_id
        self.core = k8s.CoreV1Api(cluster.api_client)
        self.rbac = k8s.RbacAuthorizationV1Api(cluster.api_client)
        self.k8s = k8s

    def _labels(self) -> dict:
        return {OWNED_LABEL: "true", RUN_LABEL: self.run_id}

    def _ignore(self, call, *args, ok=(404, 409), **kwargs):
        from kubernetes.client.exceptions import ApiException

        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            if exc.status not in ok:
                raise K8sLabError(f"{call.__name__}: {exc.status} {exc.reason}: {(exc.body or '')[:300]}") from None
            return None
        except Exception as exc:  # noqa: BLE001 — connection failures: name the call, keep grading others
            raise K8sLabError(f"{call.__name__}: lost contact with the API server ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None

    def reset_namespaces(self) -> None:
        """Fresh lab namespaces with the submission's Role bound in each (admin: delete, wait, create)."""
        self.cluster.delete_namespaces(self.namespaces, wait=True)
        for ns in self.namespaces:
            self.cluster.ensure_owned_namespace(ns, self.run_id)
            if self.namespace_labels.get(ns):  # labels the lab's grader sets (namespaces are cluster-scoped)
                self._ignore(self.core.patch_namespace, ns, {"metadata": {"labels": dict(self.namespace_labels[ns])}},
                             ok=())
            rules = NAMESPACED_RULES + [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns],
                                         "verbs": ["get"]}]
            meta = {"name": ROLE, "namespace": ns, "labels": self._labels()}
            self._ignore(self.rbac.create_namespaced_role, ns, {"metadata": meta, "rules": rules}, ok=(409,))
            self._ignore(self.rbac.create_namespaced_role_binding, ns, {
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": HOLDING_NS}]},
                ok=(409,))
        self.wait_authorized()

    def wait_authorized(self, timeout: float = 20) -> None:
        """RBAC changes reach the API server's authorizer through a cache: wait until the submission's identity
        may create pods in each of its namespaces (SubjectAccessReview) before anything uses the token."""
        from kubernetes import client as k8s

        authz = k8s.AuthorizationV1Api(self.cluster.api_client)
        user = f"system:serviceaccount:{HOLDING_NS}:{SERVICE_ACCOUNT}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{HOLDING_NS}", "system:authenticated"]
        deadline = time.monotonic() + timeout
        for ns in self.namespaces:
            for verb, resource, name in (("create", "pods", ""), ("get", "namespaces", ns)):
                review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                          "spec": {"user": user, "groups": groups,
                                   "resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource,
                                                          "name": name}}}
                while True:
                    answer = self._ignore(authz.create_subject_access_review, review, ok=())
                    if answer is not None and answer.status.allowed:
                        break
                    if time.monotonic() > deadline:
                        raise K8sLabError(f"the submission's Role in {ns} did not take effect within {timeout:g} s")
                    time.sleep(0.2)

    def create(self) -> str:
        """Everything for one submission; returns the bearer token."""
        self.cluster.delete_namespaces([HOLDING_NS], wait=True)
        self.cluster.ensure_owned_namespace(HOLDING_NS, self.run_id)
        self._ignore(self.core.create_namespaced_service_account, HOLDING_NS,
                     {"metadata": {"name": SERVICE_ACCOUNT, "labels": self._labels()}}, ok=(409,))
        self._ignore(self.rbac.delete_cluster_role_binding, NODE_READER)
        self._ignore(self.rbac.create_cluster_role, {
            "metadata": {"name": NODE_READER, "labels": {OWNED_LABEL: "true"}},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]}, ok=(409,))
        self._ignore(self.rbac.create_cluster_role_binding, {
            "metadata": {"name": NODE_READER, "labels": self._labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NODE_READER},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": HOLDING_NS}]}, ok=(409,))
        system_meta = {"name": SYSTEM_READER, "namespace": SYSTEM_READ_NS, "labels": self._labels()}
        self._ignore(self.rbac.create_namespaced_role, SYSTEM_READ_NS, {"metadata": system_meta, "rules": [
            {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}]}, ok=(409,))
        self._ignore(self.rbac.create_namespaced_role_binding, SYSTEM_READ_NS, {
            "metadata": system_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SYSTEM_READER},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": HOLDING_NS}]}, ok=(409,))
        self.reset_namespaces()
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": TOKEN_SECONDS}}
        for _ in range(20):  # the ServiceAccount may take a moment to be usable
            token = self._ignore(self.core.create_namespaced_service_account_token, SERVICE_ACCOUNT, HOLDING_NS,
                                 request, ok=(404,))
            if token is not None:
                return token.status.token
            time.sleep(0.5)
        raise K8sLabError(f"could not mint a token for ServiceAccount {HOLDING_NS}/{SERVICE_ACCOUNT}")

    def delete(self) -> None:
        """Remove the submission's namespaces and every credential object (the token dies with its SA)."""
        self._ignore(self.rbac.delete_cluster_role_binding, NODE_READER)
        self._ignore(self.rbac.delete_cluster_role, NODE_READER)
        self._ignore(self.rbac.delete_namespaced_role_binding, SYSTEM_READER, SYSTEM_READ_NS)
        self._ignore(self.rbac.delete_namespaced_role, SYSTEM_READER, SYSTEM_READ_NS)
        self.cluster.delete_namespaces([*self.namespaces, HOLDING_NS], wait=True)


def scoped_kubeconfig(cluster, token: str, server: str, namespace: str = "default") -> dict:
    cfg = cluster.api_client.configuration
    ca = Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert else b""
    entry = {"server": server}
    if ca:
        entry["certificate-authority-data"] = base64.b64encode(ca).decode()
    else:
        entry["insecure-skip-tls-verify"] = True
    return {"apiVersion": "v1", "kind": "Config", "current-context": SCRATCH_CONTEXT,
            "clusters": [{"name": SCRATCH_CONTEXT, "cluster": entry}],
            "users": [{"name": SCRATCH_CONTEXT, "user": {"token": token}}],
            "contexts": [{"name": SCRATCH_CONTEXT, "context": {"cluster": SCRATCH_CONTEXT, "user": SCRATCH_CONTEXT,
                                                               "namespace": namespace}}]}


# --------------------------------------------------------------------------- boundary
def _docker(*argv: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=check, **kw)


def docker_usable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return _docker("info", "--format", "{{.ServerVersion}}", timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def kind_control_plane(context: str) -> tuple[str, str] | None:
    """(container name, docker network) of the kind control plane behind `context` ("kind-<name>")."""
    name = context[5:] if context.startswith("kind-") else context
    out = _docker("ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--filter",
                  "label=io.x-k8s.kind.role=control-plane", "--format", "{{.Names}}")
    names = out.stdout.split()
    if out.returncode != 0 or not names:
        return None
    nets = _docker("inspect", names[0], "--format", "{{json .NetworkSettings.Networks}}")
    networks = list(json.loads(nets.stdout or "{}"))
    network = "k8slab" if "k8slab" in networks else (networks[0] if networks else "")
    return names[0], network


def ensure_sandbox_image() -> str:
    """An empty image (a few directories, /etc/passwd, the merged-/usr symlinks): the container gets its Python
    and tools from read-only bind mounts of the host, so nothing is downloaded and nothing is built."""
    if _docker("image", "inspect", SANDBOX_IMAGE).returncode == 0:
        return SANDBOX_IMAGE
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("tmp", "k8slab", "etc", "proc", "sys", "dev", "root", "work", "usr", "home", "var", "run"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for link in ("bin", "lib", "lib64", "sbin"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/tmp/home:/bin/sh\nnobody:x:65534:65534::/tmp:/bin/sh\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = subprocess.run(["docker", "import", "-", SANDBOX_IMAGE], input=buf.getvalue(), capture_output=True)
    if proc.returncode != 0:
        raise K8sLabError(f"creating the sandbox image {SANDBOX_IMAGE}: {proc.stderr.decode()[-300:]}")
    return SANDBOX_IMAGE


def runtime_mounts() -> list[str]:
    """Read-only host paths the kernel needs: the OS userland, the Python installation and virtualenv, and the
    grader package and lab specs — never solutions/, the gradebook or the instructor's home."""
    root = paths.repo_root()
    mounts = ["/usr", "/etc/ssl", "/etc/alternatives", sys.prefix, sys.base_prefix,
              str(root / "graders"), str(root / "labs"), str(root / "environment")]
    mounts += [p for p in sys.path if p and Path(p).is_dir() and "site-packages" in p]
    out: list[str] = []
    for m in sorted(set(os.path.realpath(x) for x in mounts if Path(x).exists())):
        if any(m == o or m.startswith(o + "/") for o in out):
            continue
        out.append(m)
    return out


def _scrubbed_env(extra: dict | None = None) -> dict:
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "PYTHONPATH": str(paths.repo_root()), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------- one submission
def _safe_id(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:40].strip("-") or "student"


class _Harness:
    def __init__(self, course_dir: Path, lab: str, context: str | None, boundary: str) -> None:
        from graders import spec
        from graders.cluster import Cluster, default_context

        self.course_dir = course_dir
        self.lab = lab
        self.lab_spec = spec.load_lab(lab)
        self.context = context or default_context()
        self.admin = Cluster.connect(self.context, timeout=10)
        self.control_plane = kind_control_plane(self.context) if docker_usable() else None
        if boundary == "auto":
            boundary = "docker" if self.control_plane else ""
            if not boundary:
                raise UsageError("no docker (or no kind control-plane container for context "
                                 f"{self.context}) to isolate submissions",
                                 hint="fix docker, or accept the weaker boundary with --boundary process")
        if boundary == "docker" and not self.control_plane:
            raise UsageError(f"--boundary docker needs the kind control-plane container of {self.context}")
        self.boundary = boundary
        if boundary == "docker":
            ensure_sandbox_image()

    def _verify(self, work: Path, pristine: Path, kubeconfig_host: Path, grants: Grants) -> dict:
        records: dict = {}
        for index, exercise in enumerate(self.lab_spec.exercises):
            if index:
                grants.reset_namespaces()
            out = work / f"verify-{exercise.id}.json"
            env = _scrubbed_env({"HOME": str(work / "verify-home"), "KUBECONFIG": str(kubeconfig_host),
                                 "K8SLAB_CONTEXT": SCRATCH_CONTEXT, "K8SLAB_NAMESPACES_PREPARED": "1"})
            (work / "verify-home").mkdir(exist_ok=True)
            proc = subprocess.run([sys.executable, "-m", "graders.course_runtime", "verify", "--lab", self.lab,
                                   "--submission", str(pristine), "--exercise", exercise.id, "--out", str(out)],
                                  env=env, cwd=str(work), capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0 or not out.exists():
                records[f"{self.lab}/{exercise.id}"] = {
                    "score": 0.0, "points": exercise.points, "passed": False, "html": "",
                    "message": "the grader could not run", "error": proc.stderr.strip()[-2000:] or "no output"}
            else:
                records.update(json.loads(out.read_text(encoding="utf-8")))
        return records

    def grade(self, student: str, force: bool) -> SubmissionResult:
        started = time.monotonic()
        result = SubmissionResult(student, self.lab, boundary=self.boundary)
        for ex in self.lab_spec.exercises:
            result.points[ex.id] = ex.points
        submitted = self.course_dir / "submitted" / student / self.lab
        run_id = time.strftime("%H%M%S") + "-" + _safe_id(student)[:20]
        container = f"k8slab-autograde-{_safe_id(student)}-{os.getpid()}"
        grants = Grants(self.admin, list(self.lab_spec.all_namespaces), run_id, lab_namespace_labels(self.lab))
        with tempfile.TemporaryDirectory(prefix="k8slab-autograde-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o700)
            pristine = work / "submission"
            shutil.copytree(submitted, pristine, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            try:
                token = grants.create()
                host_cfg = work / "kubeconfig-host"
                host_cfg.write_text(yaml.safe_dump(scoped_kubeconfig(self.admin, token, self.admin.server,
                                                                     self.lab_spec.all_namespaces[0])))
                records = self._verify(work, pristine, host_cfg, grants)
                results = work / "results.json"
                results.write_text(json.dumps(records), encoding="utf-8")
                if self.boundary == "docker":
                    server = f"https://{self.control_plane[0]}:6443"
                    kcfg = work / "kubeconfig"
                    kcfg.write_text(yaml.safe_dump(scoped_kubeconfig(self.admin, token, server,
                                                                self.lab_spec.all_namespaces[0])))
                else:
                    kcfg = host_cfg
                for path in (kcfg, results, host_cfg):
                    os.chmod(path, 0o644)  # read-only mounts; the container runs without DAC override
                network = self.control_plane[1] if self.control_plane else ""
                jupyter = kernel_spec(work, self.boundary, kcfg, results, container, network)
                proc = nbgrader_autograde(self.course_dir, self.lab, student, jupyter, force)
                log = self.course_dir / "k8slab" / "autograde-logs" / self.lab
                log.mkdir(parents=True, exist_ok=True)
                (log / f"{student}.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
                if proc.returncode != 0:
                    result.error = f"nbgrader autograde failed (log: {paths.relative(log / (student + '.log'))}): " + \
                                   (proc.stderr.strip().splitlines() or ["?"])[-1]
                record_verified(self.course_dir, self.lab_spec, student, records, result)
            except Exception as exc:  # noqa: BLE001 — one broken submission or hiccup must not stop the batch
                result.error = str(exc) if isinstance(exc, K8sLabError) else f"{type(exc).__name__}: {exc}"
            finally:
                if self.boundary == "docker":
                    _docker("rm", "-f", container)
                try:
                    grants.delete()
                except Exception as exc:  # noqa: BLE001
                    result.error = (result.error + "; " if result.error else "") + f"cleanup: {exc}"
        result.seconds = time.monotonic() - started
        return result

_AUTOGRADE_PREPROCESSORS = [
    "graders.course_feedback.PrecomputedChecks",
    "nbgrader.preprocessors.Execute",
    "graders.course_feedback.RestoreSources",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


def kernel_spec(work: Path, boundary: str, kubeconfig: Path, results: Path, container: str, network: str) -> Path:
    """A JUPYTER_PATH holding the `k8slab-sandbox` kernel spec (graders.course_sandbox with this config)."""
    jupyter = work / "jupyter"
    kdir = jupyter / "kernels" / SANDBOX_KERNEL
    kdir.mkdir(parents=True, exist_ok=True)
    cfg = {"mode": boundary, "workdir": str(work), "kubeconfig": str(kubeconfig), "results": str(results),
           "python": sys.executable, "container": container, "image": SANDBOX_IMAGE, "network": network,
           "ro_mounts": runtime_mounts(), "path": _scrubbed_env()["PATH"],
           "env": {k: v for k, v in _scrubbed_env({"K8SLAB_CONTEXT": SCRATCH_CONTEXT,
                                                    "K8SLAB_NAMESPACES_PREPARED": "1"}).items() if k != "PATH"}}
    (work / "sandbox.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "graders.course_sandbox", str(work / "sandbox.json"), "{connection_file}"],
        "display_name": "k8slab sandbox", "language": "python", "interrupt_mode": "signal"}), encoding="utf-8")
    return jupyter


def nbgrader_autograde(course_dir: Path, lab: str, student: str, jupyter: Path | None, force: bool,
                       extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`nbgrader autograde LAB --student S` on the host (it owns the gradebook); with `jupyter` the kernel is the
    sandboxed one and check() cells show the verified records."""
    nbgrader = Path(sys.executable).with_name("nbgrader")
    argv = [str(nbgrader) if nbgrader.exists() else "nbgrader", "autograde", lab, "--student", student]
    env = dict(os.environ, PYTHONPATH=str(paths.repo_root()), **(extra_env or {}))
    if jupyter is not None:
        argv += [f"--Execute.kernel_name={SANDBOX_KERNEL}",
                 "--Autograde.autograde_preprocessors=" + json.dumps(_AUTOGRADE_PREPROCESSORS)]
        env["JUPYTER_PATH"] = str(jupyter)
    if force:
        argv.append("--force")
    return subprocess.run(argv, cwd=course_dir, env=env, capture_output=True, text=True, timeout=7200)


def record_verified(course_dir: Path, lab_spec, student: str, records: dict, result: SubmissionResult) -> None:
    """Verified scores into the gradebook (over the notebook's own), and an instructor-side copy."""
    from nbgrader.api import Gradebook, MissingEntry

    verified_dir = course_dir / "k8slab" / "verified" / lab_spec.id
    verified_dir.mkdir(parents=True, exist_ok=True)
    (verified_dir / f"{student}.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    for ex in lab_spec.exercises:
        rec = records.get(f"{lab_spec.id}/{ex.id}", {})
        result.scores[ex.id] = max(0.0, min(float(rec.get("score") or 0.0), ex.points))
        result.messages[ex.id] = rec.get("message", "")
        if rec.get("error"):
            result.error = (result.error + "; " if result.error else "") + f"{ex.id}: {rec['error'][-300:]}"
    db_url = "sqlite:///" + str(course_dir / "gradebook.db")
    with Gradebook(db_url, course_id=_course_id(course_dir)) as gb:
        try:
            gb.find_submission(lab_spec.id, student)
        except MissingEntry:
            # The notebook could not be executed (e.g. it killed its kernel): the verified grade is still
            # recorded, on a blank submission.
            gb.update_or_create_student(student)
            gb.add_submission(lab_spec.id, student)
            result.error = result.error or "the notebook did not run; recorded the verified grade without it"
        for ex in lab_spec.exercises:
            try:
                grade = gb.find_grade(f"{ex.id}-test", lab_spec.id, lab_spec.id, student)
            except MissingEntry:
                result.error = (result.error + "; " if result.error else "") + f"no grade cell {ex.id}-test"
                continue
            result.notebook[ex.id] = grade.auto_score
            if grade.auto_score is None or abs(grade.auto_score - result.scores[ex.id]) > 1e-6:
                result.tampered.append(f"{ex.id}: notebook {grade.auto_score} vs verified {result.scores[ex.id]:g}")
            grade.auto_score = result.scores[ex.id]
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()


def lab_namespace_labels(lab: str) -> dict[str, dict[str, str]]:
    """`NAMESPACE_LABELS` of the lab's grader module (e.g. env=production for lab 05), set by the harness because
    labelling a Namespace is beyond a submission's credentials."""
    import importlib

    from graders import labs

    try:
        module = importlib.import_module(f"graders.labs.{labs.module_name(lab)}")
    except ImportError:
        return {}
    return {ns: dict(labels) for ns, labels in (getattr(module, "NAMESPACE_LABELS", None) or {}).items()}


def _course_id(course_dir: Path) -> str:
    from graders.course import COURSE_ID

    return COURSE_ID


def submitted_students(course_dir: Path, lab: str) -> list[str]:
    base = course_dir / "submitted"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if (d / lab).is_dir())


def autograde(course_dir: Path, lab: str, students: list[str] | None = None, boundary: str = "auto",
              context: str | None = None, force: bool = False) -> list[SubmissionResult]:
    """Grade every (or the named) submission of `lab`, one at a time; returns one result per student."""
    if not (course_dir / "nbgrader_config.py").is_file():
        raise UsageError(f"{course_dir} is not a course directory (no nbgrader_config.py)",
                         hint="create it with `k8slab course build DIR`")
    available = submitted_students(course_dir, lab)
    chosen = students or available
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise UsageError(f"no submission of {lab} for {', '.join(missing)} under {course_dir / 'submitted'}",
                         hint=f"collect first: nbgrader collect {lab} (exchange) or nbgrader zip_collect {lab}")
    if not chosen:
        raise UsageError(f"no submissions of {lab} under {course_dir / 'submitted'}")
    harness = _Harness(course_dir, lab, context, boundary)
    results = []
    for student in chosen:
        results.append(harness.grade(student, force))
    return results


def export_grades(course_dir: Path, to: Path | None = None) -> Path:
    """`nbgrader export` to CSV (one row per student and assignment)."""
    to = (to or course_dir / "grades.csv").resolve()
    nbgrader = Path(sys.executable).with_name("nbgrader")
    proc = subprocess.run([str(nbgrader) if nbgrader.exists() else "nbgrader", "export", "--to", str(to)],
                          cwd=course_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise K8sLabError(f"nbgrader export failed: {proc.stderr.strip()[-500:]}")
    return to
