"""graders.cluster.diagnose_pod/diagnose_deployment name the pod and the cause."""
from __future__ import annotations

from kubernetes import client as k8s

from graders.cluster import diagnose_deployment, diagnose_pod


def _pod(phase="Running", statuses=(), conditions=(), containers=None):
    containers = containers or [k8s.V1Container(name="web", image="agnhost:2.56")]
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="web", namespace="ns"),
                     spec=k8s.V1PodSpec(containers=containers),
                     status=k8s.V1PodStatus(phase=phase, container_statuses=list(statuses),
                                            conditions=list(conditions)))


def _status(waiting=None, running=False, ready=False, restarts=0, last_exit=None, image="agnhost:2.56"):
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting[0], message=waiting[1]) if waiting else None,
        running=k8s.V1ContainerStateRunning() if running else None)
    last = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=last_exit)) \
        if last_exit is not None else None
    return k8s.V1ContainerStatus(name="web", image=image, image_id="", ready=ready, restart_count=restarts,
                                 state=state, last_state=last)


def test_image_pull_backoff_names_the_image():
    p = diagnose_pod(_pod("Pending", [_status(("ImagePullBackOff", "Back-off pulling image"), image="ngnix:1.27")]))
    assert p.reason == "ImagePullBackOff" and p.fatal
    assert "Pod ns/web" in p.message and "'ngnix:1.27'" in p.message


def test_unschedulable_quotes_the_scheduler():
    cond = k8s.V1PodCondition(type="PodScheduled", status="False", reason="Unschedulable",
                              message="0/3 nodes are available: 3 Insufficient cpu.")
    p = diagnose_pod(_pod("Pending", conditions=[cond]))
    assert p.reason == "Unschedulable" and "Insufficient cpu" in p.message and p.fatal


def test_crashloop_shows_last_log_lines():
    p = diagnose_pod(_pod("Running", [_status(("CrashLoopBackOff", "back-off"), restarts=3, last_exit=1)]),
                     logs=lambda c: "starting\nError: invalid argument \"http\" for \"--http-port\"\n")
    assert p.reason == "CrashLoopBackOff" and "exit code 1" in p.message and "--http-port" in p.message


def test_failing_readiness_probe_uses_event_message():
    probe = k8s.V1Probe(http_get=k8s.V1HTTPGetAction(path="/ready", port=8080))
    pod = _pod("Running", [_status(running=True)],
               conditions=[k8s.V1PodCondition(type="Ready", status="False")],
               containers=[k8s.V1Container(name="web", image="x:1", readiness_probe=probe)])
    event = k8s.CoreV1Event(metadata=k8s.V1ObjectMeta(name="e"), involved_object=k8s.V1ObjectReference(),
                            reason="Unhealthy", message="Readiness probe failed: HTTP probe failed with statuscode: 404")
    p = diagnose_pod(pod, events=lambda: [event])
    assert p.reason == "ReadinessProbe" and "httpGet /ready on port 8080" in p.message and "404" in p.message


def test_ready_pod_has_no_problem():
    pod = _pod("Running", [_status(running=True, ready=True)],
               conditions=[k8s.V1PodCondition(type="Ready", status="True")])
    assert diagnose_pod(pod) is None


def test_deployment_rollout():
    dep = k8s.V1Deployment(metadata=k8s.V1ObjectMeta(name="api", namespace="ns", generation=1),
                           spec=k8s.V1DeploymentSpec(replicas=2, selector=k8s.V1LabelSelector(),
                                                     template=k8s.V1PodTemplateSpec()),
                           status=k8s.V1DeploymentStatus(observed_generation=1, updated_replicas=2,
                                                         available_replicas=1, replicas=2))
    p = diagnose_deployment(dep)
    assert "Deployment ns/api: 1/2 replicas available" in p.message
    dep.status.available_replicas = 2
    assert diagnose_deployment(dep) is None


def test_statefulset_rollout_waits_for_every_ordinal():
    from graders.cluster.diagnosis import diagnose_statefulset

    sts = k8s.V1StatefulSet(metadata=k8s.V1ObjectMeta(name="web", namespace="ns", generation=1),
                            spec=k8s.V1StatefulSetSpec(replicas=2, selector=k8s.V1LabelSelector(),
                                                       service_name="web", template=k8s.V1PodTemplateSpec()),
                            status=k8s.V1StatefulSetStatus(observed_generation=1, replicas=1, ready_replicas=1))
    assert "StatefulSet ns/web: 1/2 replicas ready" in diagnose_statefulset(sts).message  # web-1 not created yet
    sts.status.replicas = sts.status.ready_replicas = 2
    assert diagnose_statefulset(sts) is None
    sts.status.observed_generation = 0
    assert "rollout not observed yet" in diagnose_statefulset(sts).message
