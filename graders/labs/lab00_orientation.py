"""Lab 00-orientation: a labelled pod reached on its pod IP, then a ClusterIP Service reached by DNS name.

Checks look at behaviour: the grader's own probe pod (agnhost) sends HTTP to the learner's pod and to the
Service's DNS name and compares the answer (`/hostname`) with the pod's name. Static steps explain, from the
submitted manifests alone, the wrong selector / port before any traffic is sent. The break-fix exercise starts
from a broken setup (the starter): while the files are unchanged its failure shows only what users see; once
edited, the symptom and every cause the files show.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence

from graders.errors import CheckFailed
from graders.exercise import Exercise
from graders.labels import pods_with_labels
from graders.labs._kit import (HOSTNAME_PATH, Finding, as_deployed,
                               check_service, expect_endpoints, explain_service_rejection,
                               is_ready, learner_pods, live_service, pods_evidence, port_findings, probe_failed,
                               require_cluster_ip, require_port, require_service, selector_finding, service_summary)
from graders.manifests import Manifest
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


# ---------------------------------------------------------------------- break-fix (a broken setup)
# The starter is the welcome page as deployed: its Service is called welcome-page (so http://welcome/ does not
# resolve) and selects app: welcome, while the pod is labelled run: welcome (no endpoints). Judged by traffic;
# while the files are unchanged the failure shows only the symptom, once edited the symptom and its causes.
WELCOME = "welcome"                  # the name everyone in the namespace uses: http://welcome/ (port 80)
WELCOME_URL = f"http://{WELCOME}/"
WELCOME_REQUESTS = 6
BREAK_FIX_FILES = "break-fix/"


def break_fix_causes(ms: Sequence[Manifest], namespace: str) -> list[Finding]:
    """Why http://welcome/ does not reach the pod, read from the files: the Service's name (the DNS name), its
    port 80, its selector and its targetPort. When no Service is called welcome but there is exactly one Service,
    that one's selector and ports are judged too, so both of the starter's faults are named at once."""
    services = [m for m in ms if m.kind == "Service"]
    svc = next((s for s in services if s.name == WELCOME), None)
    causes: list[Finding] = []
    if svc is None:
        found = ", ".join(s.name or "?" for s in services) or "none"
        causes.append(Finding(
            f"no Service named {WELCOME} in your files (Services found: {found}): the name in {WELCOME_URL} is "
            f"looked up in the cluster's DNS, which knows a Service by its metadata.name "
            f"({WELCOME}.{namespace}.svc.cluster.local), so a Service with any other name cannot answer it",
            hint=f"metadata.name: {WELCOME} (a Service cannot be renamed in place: create it under the new name)"))
        if len(services) != 1:
            return causes
        svc = services[0]
    wls = workloads(ms)
    try:
        require_port(svc, SERVICE_PORT, f"{WELCOME_URL} means port {SERVICE_PORT}; the port the pod listens on "
                                        f"belongs in targetPort")
    except CheckFailed as error:
        causes.append(Finding(error.message, error.hint))
        return causes
    for finding in [selector_finding(svc, wls, namespace), *port_findings(svc, wls)]:
        if finding is not None:
            causes.append(finding)
    return causes


def _unresolved(result) -> bool:
    """A request that failed while looking the name up: curl says "Could not resolve host" (exit 6), or, when the
    lookup of an unknown name walks the search domains out to an upstream server that never answers, "Resolving
    timed out" (exit 28, which the probe classifies as a plain timeout)."""
    text = f"{result.detail or ''}\n{result.output or ''}".lower()
    return result.outcome is not Outcome.ALLOWED and ("does not resolve" in text or "resolving timed out" in text
                                                       or "could not resolve" in text)


def break_fix_symptoms(results: Sequence, ready_pods: Collection[str]) -> list[str]:
    """What people in the namespace see when they open http://welcome/, in words (empty when it works)."""
    total = len(results)
    out = []
    if not ready_pods:
        out.append("no pod of yours is Running and Ready, so nothing can serve the welcome page")
    unresolved = [r for r in results if _unresolved(r)]
    failed = [r for r in results if r.outcome is not Outcome.ALLOWED and r not in unresolved]
    if unresolved:
        said = next((line.strip() for r in unresolved for line in (r.output or "").splitlines()
                     if "resolv" in line.lower()), "could not resolve host")
        out.append(f"the name {WELCOME} does not resolve from a pod in the namespace: {len(unresolved)} of {total} "
                   f"requests to {WELCOME_URL} failed at the DNS lookup ({said})")
    if failed:
        reasons = Counter(r.detail or "no answer" for r in failed).most_common()
        why = "; ".join(f"{n} x {reason}" if len(reasons) > 1 else reason for reason, n in reasons)
        although = (f", although pod {', '.join(sorted(ready_pods))} is Running and Ready"
                    if len(ready_pods) == 1 else "")
        out.append(f"{len(failed)} of {total} requests to {WELCOME_URL} failed ({why}){although}")
    strangers = sorted({r.output.strip()[:60] for r in results if r.outcome is Outcome.ALLOWED}
                       - set(ready_pods))
    if strangers:
        out.append(f"{WELCOME_URL} was answered by {', '.join(strangers)}, which is not your pod")
    return out


def break_fix_failure(symptoms: Sequence[str], *, deployed: bool, causes: Sequence[Finding],
                      namespace: str) -> tuple[str, str]:
    """(message, hint): as deployed the symptom and where to start, no cause; once edited every cause too."""
    symptom = "; ".join(symptoms)
    if deployed:
        return (f"The welcome page is down: {symptom}. Nothing in {BREAK_FIX_FILES} has changed yet: this is the "
                f"setup as it was deployed. Find out why on the cluster, fix the files, check again",
                f"start where the request starts: which name it asks for and which Services exist (`kubectl -n "
                f"{namespace} get services`), then what each Service sends to (`kubectl -n {namespace} get "
                f"endpointslices`) and the pod behind it")
    if not causes:
        return symptom, f"`kubectl -n {namespace} get services,endpointslices,pods -o wide`"
    if len(causes) == 1:
        return f"{symptom}. Cause: {causes[0].message}", causes[0].hint
    listed = " ".join(f"({n}) {c.message}" for n, c in enumerate(causes, 1))
    return f"{symptom}. {len(causes)} causes: {listed}", " ".join(f"({n}) {c.hint}" for n, c in enumerate(causes, 1))


def break_fix_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    start_probe_pods(cluster, ns, [PROBE_POD])
    source = f"{ns}/{PROBE_POD}"
    pods = learner_pods(cluster, ns)
    ready = {p.metadata.name for p in pods if is_ready(p)}
    specs = [ProbeSpec(source, "http", WELCOME, SERVICE_PORT, path=HOSTNAME_PATH, label=WELCOME_URL)
             for _ in range(WELCOME_REQUESTS)]
    # CoreDNS caches "no such name" for a few seconds and kube-proxy programs a new Service a moment after its
    # endpoints: ask again while a request fails
    results = probe_until(ctx.prober, specs, lambda s: Outcome.ALLOWED, attempts=6, deadline_s=20)
    broken = next((r for r in results if r.outcome is Outcome.FAILED and "does not resolve" not in r.detail), None)
    if broken is not None:
        raise probe_failed(broken, WELCOME_URL)
    answers = Counter(r.output.strip() for r in results if r.outcome is Outcome.ALLOWED)
    table = Evidence.table(f"GET {WELCOME_URL}hostname from {source}", ("answered by / reason", "requests"),
                           [(name, str(n)) for name, n in sorted(answers.items())]
                           + [(reason, str(n)) for reason, n in sorted(Counter(
                               r.detail or "no answer" for r in results if r.outcome is not Outcome.ALLOWED).items())])
    reproduce = Evidence.command("Reproduce", results[0].command)
    symptoms = break_fix_symptoms(results, ready)
    if not symptoms:
        return StepResult("live", True,
                          f"{WELCOME_URL} works again: {len(results)} of {len(results)} requests from {source} were "
                          f"answered by your pod {', '.join(sorted(answers))}", evidence=(table, reproduce))
    deployed = as_deployed(ctx.objects, ctx.spec.starter_dir)
    causes = [] if deployed else break_fix_causes(ctx.objects, ns)
    message, hint = break_fix_failure(symptoms, deployed=deployed, causes=causes, namespace=ns)
    evidence = (table, reproduce) if deployed else (table, pods_evidence(pods), reproduce)
    raise CheckFailed(message, hint=hint, evidence=evidence)


def explain_admission(message: str) -> str:
    """The engine's hook: why the schema or API server refuses a Service ("" when there is nothing to add)."""
    if re.search(r"metadata\.name: Invalid value: \"[^\"]*\..*DNS-1035 label", message):
        return ("a Service's name is a single DNS label (lowercase letters, digits and '-', no dots): the cluster "
                "DNS adds the namespace itself, so Service welcome in this namespace already answers to "
                "welcome, welcome.<namespace> and welcome.<namespace>.svc.cluster.local")
    return explain_service_rejection(message)



EXERCISES = {
    "hello-pod": Exercise(static=None, live=hello_pod_live),
    "hello-service": Exercise(static=hello_service_static, live=hello_service_live),
    "break-fix": Exercise(static=None, live=break_fix_live),
}
