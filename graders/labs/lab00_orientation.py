"""Lab 00-orientation: a labelled pod reached on its pod IP, then a ClusterIP Service reached by DNS name.

Checks look at behaviour: the grader's own probe pod (agnhost) sends HTTP to the learner's pod and to the
Service's DNS name and compares the answer (`/hostname`) with the pod's name. Static steps explain, from the
submitted manifests alone, the wrong selector / port before any traffic is sent.
"""
from __future__ import annotations

from graders.errors import CheckFailed
from graders.exercise import Exercise
from graders.labels import pods_with_labels
from graders.labs._kit import (HOSTNAME_PATH, check_service, expect_endpoints, explain_service_rejection,
                               learner_pods, live_service, pods_evidence, probe_failed, require_cluster_ip,
                               require_port, require_service, service_summary)
from graders.model import Evidence, Outcome, StepResult
from graders.probe import ProbeSpec, probe_until, start_probe_pods
from graders.workloads import workloads

LAB_ID = "00-orientation"
APP_LABEL = ("app", "hello")
POD_PORT = 8080
SERVICE_NAME = "hello"
SERVICE_PORT = 80
PROBE_POD = "k8slab-probe"


# ---------------------------------------------------------------------- hello-pod
def _listening_note(ctx, pod_name: str) -> str:
    """" Your container listens on 9090 (how)." when the submitted Pod serves elsewhere than POD_PORT: from
    agnhost's command line, else its declared containerPorts."""
    wl = next((w for w in workloads(ctx.objects) if w.kind == "Pod" and w.name == pod_name), None)
    if wl is None:
        return ""
    served, how = wl.serving()
    if served is None:
        served, how = {p for p, _ in wl.declared_ports()}, "its declared containerPorts"
    if not served or POD_PORT in served:
        return ""
    return f" Your container listens on {', '.join(map(str, sorted(served)))} ({how})."


def hello_pod_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    pods = learner_pods(ctx.cluster, ns)
    key, value = APP_LABEL
    hello = [p for p in pods if (p.metadata.labels or {}).get(key) == value]
    if not hello:
        raise CheckFailed(
            f"no Pod labelled {key}={value} in namespace {ns}: the grader (like a Service) finds your pod by "
            f"this label, so it cannot find it. Pods there: {pods_with_labels(pods)}",
            hint=f"under metadata.labels write `{key}: {value}` — check the spelling of both key and value",
            evidence=(pods_evidence(pods),))
    if len(hello) > 1:
        raise CheckFailed(
            f"{len(hello)} Pods are labelled {key}={value} ({', '.join(p.metadata.name for p in hello)}); the "
            f"exercise asks for exactly one", hint="keep one Pod with that label", evidence=(pods_evidence(pods),))
    pod = hello[0]
    name, ip = pod.metadata.name, pod.status.pod_ip
    placed = start_probe_pods(ctx.cluster, ns, [PROBE_POD], avoid_node=pod.spec.node_name)
    spec = ProbeSpec(f"{ns}/{PROBE_POD}", "http", ip, POD_PORT, path=HOSTNAME_PATH, label=f"{ns}/{name}:{POD_PORT}")
    result = probe_until(ctx.prober, [spec], {spec: Outcome.ALLOWED}, attempts=3, deadline_s=15)[0]
    route = f"Pod {ns}/{name} at {ip}:{POD_PORT} (from {PROBE_POD} on node {placed.get(PROBE_POD) or '?'}, " \
            f"your pod on {pod.spec.node_name})"
    reproduce = Evidence.command("Reproduce", result.command)
    if result.outcome is Outcome.FAILED:
        raise probe_failed(result, route)
    if result.outcome is Outcome.BLOCKED:
        listens = _listening_note(ctx, name)
        if "refused" in result.detail:
            msg = f"nothing accepts connections on port {POD_PORT} in Pod {ns}/{name}: an HTTP request to {route} " \
                  f"was refused.{listens}"
        else:
            msg = f"an HTTP request to {route} got no answer ({result.detail}).{listens}"
        raise CheckFailed(msg, hint=f"the container must serve HTTP on {POD_PORT}: agnhost `netexec "
                                    f"--http-port={POD_PORT}`", evidence=(reproduce,))
    answer = result.output.strip()
    if answer != name:
        raise CheckFailed(f"{route} answered /hostname with {answer[:80]!r}, not the pod's name {name!r}: "
                          f"something other than agnhost netexec is serving", evidence=(reproduce,))
    return StepResult("live", True,
                      f"reached Pod {ns}/{name} on its pod IP {ip}:{POD_PORT} from another node; it answered "
                      f"/hostname with {name!r}",
                      evidence=(reproduce,))


# ---------------------------------------------------------------------- hello-service
def hello_service_static(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    svc = require_service(ctx.objects, SERVICE_NAME, f"other pods reach it by the DNS name {SERVICE_NAME}.{ns}, "
                                                     f"which comes from the Service's name")
    require_port(svc, SERVICE_PORT, f"clients connect to {SERVICE_NAME}.{ns}:{SERVICE_PORT}")
    require_cluster_ip(svc)
    wls = workloads(ctx.objects)
    check_service(svc, wls, ns)
    return StepResult("static", True, service_summary(svc, wls))


def hello_service_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    svc = live_service(cluster, ns, SERVICE_NAME)
    ready, backends, _ = expect_endpoints(ctx, SERVICE_NAME)
    start_probe_pods(cluster, ns, [PROBE_POD])
    source = f"{ns}/{PROBE_POD}"
    fqdn = f"{SERVICE_NAME}.{ns}"
    cluster_ip = svc.spec.cluster_ip
    # CoreDNS caches answers (a previous run's ClusterIP, or "no such name") and kube-proxy programs a new Service
    # a moment after its endpoints are ready: ask until the answer is this Service's ClusterIP and HTTP answers
    expect = (cluster_ip,) if cluster_ip and cluster_ip != "None" else ()
    dns = ProbeSpec(source, "dns", fqdn, label=f"dns {fqdn}", expect=expect)
    http = ProbeSpec(source, "http", fqdn, SERVICE_PORT, path=HOSTNAME_PATH, label=f"{fqdn}:{SERVICE_PORT}")
    results = probe_until(ctx.prober, [dns, http], {dns: Outcome.ALLOWED, http: Outcome.ALLOWED},
                          attempts=6, deadline_s=20)
    dns_r, http_r = results
    table = Evidence.table("Probes", ("probe", "outcome", "answer / reason"),
                           [(r.spec.target_label, r.outcome.word, (r.output.strip() if r.outcome is Outcome.ALLOWED
                                                                   else r.detail)[:80]) for r in results])
    for r in results:
        if r.outcome is Outcome.FAILED:
            raise probe_failed(r, r.spec.target_label)
    if dns_r.outcome is not Outcome.ALLOWED:
        raise CheckFailed(
            f"the name {fqdn} did not resolve to the Service's ClusterIP {cluster_ip} from a pod "
            f"({dns_r.detail or 'answer: ' + ', '.join(dns_r.addresses)})",
            hint="`make doctor` checks that CoreDNS answers",
            evidence=(table, Evidence.command("Reproduce", dns_r.command)))
    if http_r.outcome is not Outcome.ALLOWED:
        ports = ", ".join(f"{p.port}->{p.target_port}" for p in svc.spec.ports or [])
        raise CheckFailed(
            f"an HTTP request to {fqdn}:{SERVICE_PORT} was not answered ({http_r.detail}); the Service's ports are "
            f"{ports} and its endpoints {', '.join(sorted(e.ip for e in ready))}",
            hint="targetPort must be the port the container serves",
            evidence=(table, Evidence.command("Reproduce", http_r.command)))
    answer = http_r.output.strip()
    if answer not in backends:
        raise CheckFailed(f"{fqdn}:{SERVICE_PORT} answered /hostname with {answer[:80]!r}, which is not one of the "
                          f"selected pods ({', '.join(backends)})", evidence=(table,))
    return StepResult("live", True,
                      f"{fqdn} resolves to {cluster_ip}, and HTTP to {fqdn}:{SERVICE_PORT} reached pod {answer}",
                      evidence=(table,))


explain_admission = explain_service_rejection  # the engine's hook: why the schema or API server refuses a Service

EXERCISES = {
    "hello-pod": Exercise(static=None, live=hello_pod_live),
    "hello-service": Exercise(static=hello_service_static, live=hello_service_live),
}
