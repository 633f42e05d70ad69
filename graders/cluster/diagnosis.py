"""Why a pod or Deployment is not ready, and what an exec's status channel said: pure functions of API objects."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import yaml

_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class PodProblem:
    """One pod that is not ready, with a readable cause."""
    pod: str            # "ns/name"
    reason: str         # ImagePullBackOff, Unschedulable, CrashLoopBackOff, ReadinessProbe, ...
    message: str        # full sentence naming the pod
    fatal: bool = False  # True when waiting longer cannot help

    def __str__(self) -> str:
        return self.message


def readiness_hint(problems: Sequence[PodProblem]) -> str:
    """The one fix to suggest for a set of readiness problems."""
    reasons = {p.reason for p in problems}
    if reasons & _PULL:
        return ("check the image name and tag for typos; this cluster can only run images its nodes already "
                "have or can pull (`docker exec k8slab-worker crictl images`)")
    if "Unschedulable" in reasons:
        return "lower the resource requests, or remove a nodeSelector/affinity that no node matches"
    if "CrashLoopBackOff" in reasons:
        return "the container's command exits: check `command`/`args` and the log lines above"
    if "ReadinessProbe" in reasons:
        return "the readiness probe must point at a port and path the container actually serves"
    return "`kubectl get pods -A` and `kubectl describe pod` show more"


def problem_family(problem: PodProblem) -> str:
    """Key under which a problem's age is tracked: image pull states flip, they are one problem."""
    reason = "image" if problem.reason in _PULL else problem.reason
    return f"{problem.pod} {reason}"


def _probe_text(probe) -> str:
    if probe is None:
        return "probe"
    if probe.http_get:
        return f"httpGet {probe.http_get.path or '/'} on port {probe.http_get.port}"
    if probe.tcp_socket:
        return f"tcpSocket on port {probe.tcp_socket.port}"
    action = getattr(probe, "var_exec", None) or getattr(probe, "_exec", None)
    if action is not None:
        return f"exec {' '.join(action.command or [])}"
    if getattr(probe, "grpc", None):
        return f"grpc on port {probe.grpc.port}"
    return "probe"


def diagnose_pod(pod, events: Callable[[], list] = lambda: [],
                 logs: Callable[[str], str] = lambda container: "") -> PodProblem | None:
    """Why `pod` (a V1Pod) is not Ready, as a PodProblem; None when Ready. `events`/`logs` are lazy."""
    ns, name = pod.metadata.namespace, pod.metadata.name
    ref = f"{ns}/{name}"
    status = pod.status
    phase = status.phase if status else None
    conds = {c.type: c for c in (status.conditions or [])} if status else {}
    if pod.metadata.deletion_timestamp:
        return PodProblem(ref, "Terminating", f"Pod {ref} is terminating")
    sched = conds.get("PodScheduled")
    if phase == "Pending" and sched is not None and sched.status == "False":
        return PodProblem(ref, "Unschedulable",
                          f"Pod {ref} is Pending: the scheduler cannot place it — {sched.message or sched.reason}",
                          fatal=sched.reason == "Unschedulable")
    if phase == "Pending" and sched is None and not (status.container_statuses or pod.spec.node_name):
        return PodProblem(ref, "NotScheduled", f"Pod {ref} is Pending: no scheduler has placed it yet "
                                               f"(is kube-scheduler running? `kubectl get pods -n kube-system`)")
    if phase in ("Succeeded", "Failed"):
        return PodProblem(ref, phase, f"Pod {ref} has exited ({phase}); a pod that serves traffic must keep "
                                      f"running — check its command and restartPolicy", fatal=True)
    specs = {c.name: c for c in (pod.spec.containers or [])}
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []) if status else []:
        st = cs.state
        waiting = st.waiting if st else None
        if waiting and waiting.reason in _PULL:
            return PodProblem(ref, waiting.reason,
                              f"Pod {ref}: container '{cs.name}' cannot pull image '{cs.image}' ({waiting.reason}): "
                              f"{(waiting.message or '').strip()[:200]}".rstrip(": "),
                              fatal=True)
        if waiting and waiting.reason == "CrashLoopBackOff" or (
                cs.restart_count and cs.last_state and cs.last_state.terminated and not cs.ready):
            term = cs.last_state.terminated if cs.last_state else None
            code = f"exit code {term.exit_code}" if term else "exited"
            tail = (logs(cs.name) or "").strip().splitlines()[-5:]
            log_part = f"; last log lines: {' | '.join(tail)}" if tail else "; it printed no logs"
            return PodProblem(ref, "CrashLoopBackOff",
                              f"Pod {ref}: container '{cs.name}' keeps crashing ({code}, {cs.restart_count} "
                              f"restarts){log_part}",
                              fatal=waiting is not None and waiting.reason == "CrashLoopBackOff")
        if waiting and waiting.reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
            return PodProblem(ref, waiting.reason, f"Pod {ref}: container '{cs.name}' cannot start "
                                                   f"({waiting.reason}): {waiting.message}", fatal=True)
    ready = conds.get("Ready")
    if phase == "Running" and ready is not None and ready.status == "True":
        return None
    if phase == "Running":
        for cs in status.container_statuses or []:
            spec = specs.get(cs.name)
            if cs.ready or not (cs.state and cs.state.running):
                continue
            if spec is not None and spec.readiness_probe is not None:
                evs = [e for e in events() if e.reason == "Unhealthy" and "eadiness" in (e.message or "")]
                msg = evs[-1].message.strip() if evs else "no probe result yet"
                return PodProblem(ref, "ReadinessProbe",
                                  f"Pod {ref}: container '{cs.name}' is running but its readiness probe "
                                  f"({_probe_text(spec.readiness_probe)}) fails: {msg}")
        return PodProblem(ref, "NotReady", f"Pod {ref} is running but not Ready yet")
    waiting_reasons = [cs.state.waiting.reason for cs in (status.container_statuses or [])
                       if cs.state and cs.state.waiting] if status else []
    detail = f" ({', '.join(r for r in waiting_reasons if r)})" if any(waiting_reasons) else ""
    return PodProblem(ref, "Pending", f"Pod {ref} is {phase or 'Pending'}{detail}")


def diagnose_deployment(dep) -> PodProblem | None:
    """Why a V1Deployment has not rolled out (None when it has)."""
    ref = f"{dep.metadata.namespace}/{dep.metadata.name}"
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    st = dep.status
    for c in (st.conditions or []) if st else []:
        if c.type == "ReplicaFailure" and c.status == "True":
            return PodProblem(ref, "ReplicaFailure", f"Deployment {ref} cannot create pods: {c.message}", fatal=True)
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            return PodProblem(ref, "ProgressDeadlineExceeded", f"Deployment {ref} rollout stalled: {c.message}",
                              fatal=True)
    if st is None or (st.observed_generation or 0) < (dep.metadata.generation or 0):
        return PodProblem(ref, "Rollout", f"Deployment {ref}: rollout not observed yet")
    updated, available = st.updated_replicas or 0, st.available_replicas or 0
    if updated < want or available < want or (st.replicas or 0) > want:
        return PodProblem(ref, "Rollout", f"Deployment {ref}: {available}/{want} replicas available, "
                                          f"{updated}/{want} updated")
    return None


def is_ready(pod) -> bool:
    """A V1Pod that serves: not being deleted, and its Ready condition True."""
    if pod.metadata.deletion_timestamp or not pod.status:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def diagnose_statefulset(sts) -> PodProblem | None:
    """Why a V1StatefulSet has not rolled out (None when it has). Its pods start one by one, so right after apply
    only web-0 (or nothing) exists: "every pod is ready" alone would pass too early."""
    ref = f"{sts.metadata.namespace}/{sts.metadata.name}"
    want = sts.spec.replicas if sts.spec.replicas is not None else 1
    st = sts.status
    if st is None or (st.observed_generation or 0) < (sts.metadata.generation or 0):
        return PodProblem(ref, "Rollout", f"StatefulSet {ref}: rollout not observed yet")
    ready, current = st.ready_replicas or 0, st.replicas or 0
    if ready < want or current != want:
        return PodProblem(ref, "Rollout", f"StatefulSet {ref}: {ready}/{want} replicas ready")
    return None


def parse_exec_status(text: str) -> tuple[int, str]:
    """(exit code, message) from the exec ERROR channel's Status document."""
    if not text:
        return 0, ""
    try:
        status = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return 126, text
    if status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:  # the Status message ("command terminated with non-zero exit code …") is kept for the
                return int(cause.get("message")), str(status.get("message") or "")  # caller's stderr
            except (TypeError, ValueError):
                break
    # the command could not start (binary missing, container not running, ...)
    return 126, str(status.get("message") or text)
