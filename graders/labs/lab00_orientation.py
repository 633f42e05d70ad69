"""Lab 00-orientation: a labelled pod reached on its pod IP, then a ClusterIP Service reached by DNS name.

Checks look at behaviour: the grader's own probe pod (agnhost) sends HTTP to the learner's pod and to the
Service's DNS name and compares the answer (`/hostname`) with the pod's name. Static steps explain, from the
submitted manifests alone, the wrong selector / port before any traffic is sent.
"""
from __future__ import annotations

import re

from graders.errors import CheckFailed
from graders.labels import format_labels, format_selector, pods_with_labels
from graders.exercise import Exercise
from graders.model import Evidence, Outcome, StepResult
from graders.probe import PROBE_LABEL, ProbeSpec, probe_until, start_probe_pods

LAB_ID = "00-orientation"
APP_LABEL = ("app", "hello")
POD_PORT = 8080
SERVICE_NAME = "hello"
SERVICE_PORT = 80
PROBE_POD = "k8slab-probe"


# ---------------------------------------------------------------------- helpers
def _objects(ctx) -> list[dict]:
    return [getattr(m, "obj", m) for m in ctx.objects]


def _served_ports(pod_spec: dict) -> tuple[set[int], dict[str, int], str]:
    """(ports the pod listens on, named ports, how we know) — from agnhost netexec args when present,
    else the declared containerPorts."""
    named: dict[str, int] = {}
    declared: set[int] = set()
    from_args: set[int] = set()
    how = []
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            if isinstance(p.get("containerPort"), int):
                declared.add(p["containerPort"])
                if p.get("name"):
                    named[p["name"]] = p["containerPort"]
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        if "netexec" in args:
            port = 8080  # netexec's default
            for a in args:
                m = re.match(r"^--http-port=(\d+)$", a)
                if m:
                    port = int(m.group(1))
            from_args.add(port)
            how.append(f"`netexec --http-port={port}`")
    if from_args:
        return from_args, named, " and ".join(how)
    return declared, named, "its declared containerPorts" if declared else ""


def _pods_table(pods) -> Evidence:
    rows = [(p.metadata.name, format_labels(p.metadata.labels), p.status.phase if p.status else "",
             (p.status.pod_ip or "") if p.status else "", p.spec.node_name or "") for p in pods]
    return Evidence.table("Pods in the namespace", ("pod", "labels", "phase", "IP", "node"), rows)


def _learner_pods(ctx, ns: str):
    return [p for p in ctx.cluster.list_pods(ns) if not (p.metadata.labels or {}).get(PROBE_LABEL)]


def _runner(ctx):
    return ctx.prober


def _probe_failed(result, what: str) -> CheckFailed:
    """A probe that could not run is the grader's problem, not the learner's: say so."""
    return CheckFailed(
        f"the grader's probe from {result.spec.source} to {what} could not run ({result.detail}); this says "
        f"nothing about your manifests",
        hint="run `make doctor` to check the cluster, then grade again",
        evidence=(Evidence.command("Reproduce", result.command),))


# ---------------------------------------------------------------------- hello-pod
def hello_pod_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    pods = _learner_pods(ctx, ns)
    key, value = APP_LABEL
    hello = [p for p in pods if (p.metadata.labels or {}).get(key) == value]
    if not hello:
        seen = pods_with_labels(pods)
        raise CheckFailed(
            f"no Pod labelled {key}={value} in namespace {ns}: the grader (like a Service) finds your pod by "
            f"this label, so it cannot find it. Pods there: {seen}",
            hint=f"under metadata.labels write `{key}: {value}` — check the spelling of both key and value",
            evidence=(_pods_table(pods),))
    if len(hello) > 1:
        raise CheckFailed(
            f"{len(hello)} Pods are labelled {key}={value} ({', '.join(p.metadata.name for p in hello)}); the "
            f"exercise asks for exactly one", hint="keep one Pod with that label", evidence=(_pods_table(pods),))
    pod = hello[0]
    name, ip = pod.metadata.name, pod.status.pod_ip
    placed = start_probe_pods(ctx.cluster, ns, [PROBE_POD], avoid_node=pod.spec.node_name)
    spec = ProbeSpec(f"{ns}/{PROBE_POD}", "http", ip, POD_PORT, path="/hostname", label=f"{ns}/{name}:{POD_PORT}")
    result = probe_until(_runner(ctx), [spec], {spec: Outcome.ALLOWED}, attempts=3, deadline_s=15)[0]
    route = f"Pod {ns}/{name} at {ip}:{POD_PORT} (from {PROBE_POD} on node {placed.get(PROBE_POD) or '?'}, " \
            f"your pod on {pod.spec.node_name})"
    reproduce = Evidence.command("Reproduce", result.command)
    if result.outcome is Outcome.FAILED:
        raise _probe_failed(result, route)
    if result.outcome is Outcome.BLOCKED:
        submitted = next((o for o in _objects(ctx) if o.get("kind") == "Pod"
                          and o["metadata"].get("name") == name), {})
        served, _, how = _served_ports(submitted.get("spec") or {})
        listens = (f" Your container listens on {', '.join(map(str, sorted(served)))} ({how})."
                   if served and POD_PORT not in served else "")
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
    objs = _objects(ctx)
    ns = ctx.spec.default_namespace
    services = [o for o in objs if o.get("kind") == "Service"]
    svc = next((s for s in services if s["metadata"].get("name") == SERVICE_NAME), None)
    if svc is None:
        found = ", ".join(s["metadata"].get("name", "?") for s in services) or "none"
        raise CheckFailed(
            f"no Service named {SERVICE_NAME} in your files (Services found: {found}): other pods reach it by the DNS "
            f"name {SERVICE_NAME}.{ns}, which comes from the Service's name",
            hint=f"set metadata.name: {SERVICE_NAME}")
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    port = next((p for p in ports if p.get("port") == SERVICE_PORT), None)
    if port is None:
        have = ", ".join(str(p.get("port")) for p in ports) or "none"
        raise CheckFailed(
            f"Service {SERVICE_NAME} does not expose port {SERVICE_PORT} (its ports: {have}): clients connect to "
            f"{SERVICE_NAME}.{ns}:{SERVICE_PORT}",
            hint="`port` is what clients use; `targetPort` is where the pod listens")
    selector = spec.get("selector") or {}
    pods = [o for o in objs if o.get("kind") == "Pod"]
    pod_rows = [(p["metadata"].get("name", "?"), format_labels(p["metadata"].get("labels"))) for p in pods]
    pods_evidence = Evidence.table("Pods in your files", ("pod", "labels"), pod_rows)
    if not selector:
        raise CheckFailed(
            f"Service {SERVICE_NAME} has no selector, so it selects no pod and Kubernetes gives it no endpoints",
            hint="spec.selector must list labels your pod carries", evidence=(pods_evidence,))
    chosen = [p for p in pods
              if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
    if not chosen:
        existing = "; ".join(f"{n} has {lab}" for n, lab in pod_rows) or "no pods"
        raise CheckFailed(
            f"Service {SERVICE_NAME} selects {format_selector(selector)}, which selects no pod: every selector label "
            f"must match exactly. Labels that exist: {existing}",
            hint="compare the selector with the pod's metadata.labels, key and value", evidence=(pods_evidence,))
    target = port.get("targetPort", port.get("port"))
    for pod in chosen:
        served, named, how = _served_ports(pod.get("spec") or {})
        pname = pod["metadata"].get("name")
        if isinstance(target, str):
            if target not in named:
                raise CheckFailed(
                    f"Service {SERVICE_NAME} forwards port {SERVICE_PORT} to targetPort {target!r}, but Pod {pname} "
                    f"has no port named {target!r} (its named ports: "
                    f"{', '.join(f'{k}={v}' for k, v in named.items()) or 'none'})",
                    hint="a named targetPort must equal a containerPort's name")
            target_num = named[target]
        else:
            target_num = target
        if served and target_num not in served:
            raise CheckFailed(
                f"Service {SERVICE_NAME} forwards port {SERVICE_PORT} to targetPort {target}, but Pod {pname} listens "
                f"on {', '.join(map(str, sorted(served)))} ({how}): connections would be refused",
                hint=f"targetPort must be the port the container serves ({POD_PORT})")
    names = ", ".join(p["metadata"].get("name", "?") for p in chosen)
    return StepResult("static", True,
                      f"Service {SERVICE_NAME} selects {format_selector(selector)} (pods: {names}) and forwards port "
                      f"{SERVICE_PORT} to {target}")


def hello_service_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    svc = cluster.get_service(ns, SERVICE_NAME)
    if svc is None:
        raise CheckFailed(f"no Service named {SERVICE_NAME} in namespace {ns}", hint=f"metadata.name: {SERVICE_NAME}")
    pods = _learner_pods(ctx, ns)
    ready = []
    for sl in cluster.list_endpointslices(ns, SERVICE_NAME):
        for ep in sl.endpoints or []:
            if ep.conditions is None or ep.conditions.ready is not False:
                ready.extend(ep.addresses or [])
    selector = svc.spec.selector or {}
    if not ready:
        raise CheckFailed(
            f"Service {ns}/{SERVICE_NAME} has no ready endpoints: its selector {format_selector(selector) or '(none)'} "
            f"selects no ready pod. Labels that exist: "
            + ("; ".join(f"{p.metadata.name} has {format_labels(p.metadata.labels)}" for p in pods) or "no pods"),
            hint="`kubectl get endpointslices -n " + ns + "` shows what the Service points at",
            evidence=(_pods_table(pods),))
    backends = {p.status.pod_ip: p.metadata.name for p in pods if p.status and p.status.pod_ip in ready}
    start_probe_pods(cluster, ns, [PROBE_POD])
    source = f"{ns}/{PROBE_POD}"
    fqdn = f"{SERVICE_NAME}.{ns}"
    dns = ProbeSpec(source, "dns", fqdn, label=f"dns {fqdn}")
    http = ProbeSpec(source, "http", fqdn, SERVICE_PORT, path="/hostname", label=f"{fqdn}:{SERVICE_PORT}")
    results = probe_until(_runner(ctx), [dns, http], {dns: Outcome.ALLOWED, http: Outcome.ALLOWED},
                          attempts=3, deadline_s=15)
    dns_r, http_r = results
    table = Evidence.table("Probes", ("probe", "outcome", "answer / reason"),
                           [(r.spec.target_label, r.outcome.word, (r.output.strip() if r.outcome is Outcome.ALLOWED
                                                                   else r.detail)[:80]) for r in results])
    for r in results:
        if r.outcome is Outcome.FAILED:
            raise _probe_failed(r, r.spec.target_label)
    cluster_ip = svc.spec.cluster_ip
    if dns_r.outcome is not Outcome.ALLOWED or (cluster_ip and cluster_ip != "None"
                                                and cluster_ip not in dns_r.addresses):
        raise CheckFailed(
            f"the name {fqdn} did not resolve to the Service's ClusterIP {cluster_ip} from a pod "
            f"({dns_r.detail or 'answer: ' + ', '.join(dns_r.addresses)})",
            hint="`make doctor` checks that CoreDNS answers",
            evidence=(table, Evidence.command("Reproduce", dns_r.command)))
    if http_r.outcome is not Outcome.ALLOWED:
        ports = ", ".join(f"{p.port}->{p.target_port}" for p in svc.spec.ports or [])
        raise CheckFailed(
            f"an HTTP request to {fqdn}:{SERVICE_PORT} was not answered ({http_r.detail}); the Service's ports are "
            f"{ports} and its endpoints {', '.join(sorted(ready))}",
            hint="targetPort must be the port the container serves",
            evidence=(table, Evidence.command("Reproduce", http_r.command)))
    answer = http_r.output.strip()
    if answer not in backends.values():
        raise CheckFailed(f"{fqdn}:{SERVICE_PORT} answered /hostname with {answer[:80]!r}, which is not one of the "
                          f"selected pods ({', '.join(backends.values())})", evidence=(table,))
    return StepResult("live", True,
                      f"{fqdn} resolves to {cluster_ip}, and HTTP to {fqdn}:{SERVICE_PORT} reached pod {answer}",
                      evidence=(table,))


EXERCISES = {
    "hello-pod": Exercise(static=None, live=hello_pod_live),
    "hello-service": Exercise(static=hello_service_static, live=hello_service_live),
}
