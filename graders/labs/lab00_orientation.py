"""Lab 00-orientation: a labelled pod reached on its pod IP, then a ClusterIP Service reached by DNS name.

Checks look at behaviour: the grader's own probe pod (agnhost) sends HTTP to the learner's pod and to the
Service's DNS name and compares the answer (`/hostname`) with the pod's name. Static steps explain, from the
submitted manifests alone, the wrong selector / port before any traffic is sent. The break-fix exercise starts
from a broken setup (the starter): while the files are unchanged its failure shows only what users see; once
edited, the symptom and every cause the files show. The predict exercise (answers, no manifests) has the learner
say what the cluster will do before the exercises; the grader then runs each experiment with pods and Services of
its own and judges the predictions by what the cluster did.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from graders import probe
from graders.errors import CheckFailed, ClusterError, K8sLabError
from graders.exercise import Exercise
from graders.labels import format_labels, pods_with_labels
from graders.labs._kit import (HOSTNAME_PATH, Finding, as_deployed, context_of, kubectl, symptom_and_causes,
                               check_service, expect_endpoints, explain_service_rejection,
                               is_ready, learner_pods, live_service, naming_traffic_fields, pods_evidence,
                               port_findings, probe_failed,
                               require_cluster_ip, require_port, require_service, selector_finding, service_summary)
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.netpol.selectors import service_selects
from graders.probe import ProbeResult, ProbeSpec, probe_until, start_probe_pods
from graders.questions import Fact, Question, judge as judge_answers, not_observable, observed
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
    # from another node than the pod's: a Service that only works on its pod's node (internalTrafficPolicy: Local)
    # must not pass because the probe happened to land next to the pod
    nodes = {getattr(getattr(p, "spec", None), "node_name", None) for p in backends.values()}
    start_probe_pods(cluster, ns, [PROBE_POD], avoid_node=next(iter(nodes)) if len(nodes) == 1 else None)
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
                      namespace: str, context: str | None = None) -> tuple[str, str]:
    """(message, hint): as deployed the symptom and where to start, no cause; once edited every cause too.
    ``context``: the kube context graded, for the commands in the hint (None: the course's)."""
    symptom = "; ".join(symptoms)
    if deployed:
        return (f"The welcome page is down: {symptom}. Nothing in {BREAK_FIX_FILES} has changed yet: this is the "
                f"setup as it was deployed. Find out why on the cluster, fix the files, check again",
                f"start where the request starts: which name it asks for and which Services exist "
                f"(`{kubectl(f'-n {namespace} get services', context)}`), then what each Service sends to "
                f"(`{kubectl(f'-n {namespace} get endpointslices', context)}`) and the pod behind it")
    if not causes:
        return symptom, f"`{kubectl(f'-n {namespace} get services,endpointslices,pods -o wide', context)}`"
    return symptom_and_causes(symptom, causes)


# deployed_digest of labs/00-orientation/break-fix/ (tests/unit/test_lab00_break_fix.py keeps it equal to the files)
BREAK_FIX_DIGEST = "1f0ff1c747886889563e241a32daaefbab43d3e1681a4a87bb5b9bf70df235c7"


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
    deployed = as_deployed(ctx.objects, BREAK_FIX_DIGEST)
    causes = [] if deployed else break_fix_causes(ctx.objects, ns)
    message, hint = break_fix_failure(symptoms, deployed=deployed, causes=causes, namespace=ns,
                                      context=context_of(ctx))
    evidence = (table, reproduce) if deployed else (table, pods_evidence(pods), reproduce)
    raise CheckFailed(message, hint=hint, evidence=evidence)


def explain_admission(message: str) -> str:
    """The engine's hook: why the schema or API server refuses a Service ("" when there is nothing to add)."""
    if re.search(r"metadata\.name: Invalid value: \"[^\"]*\..*DNS-1035 label", message):
        return ("a Service's name is a single DNS label (lowercase letters, digits and '-', no dots): the cluster "
                "DNS adds the namespace itself, so Service welcome in this namespace already answers to "
                "welcome, welcome.<namespace> and welcome.<namespace>.svc.cluster.local")
    return explain_service_rejection(message)



# ---------------------------------------------------------------------- predict (an answers exercise)
# Before the exercises the learner predicts what the cluster will do; the grader then makes it happen with pods and
# Services of its own in the lab's namespace and compares. Every fact comes from what this cluster did (its IPAM,
# its EndpointSlice controller, its DNS), never from the course; a question whose experiment could not run earns
# nothing and says why. ``prediction_facts`` is pure (unit-tested); ``predict_live`` gathers what it judges.
AGAIN_POD = "k8slab-again"  # deleted and created again from the same manifest, pinned to one node
WEB_PODS = {"k8slab-web-1": {"app": "web"},  # the grader's pods around Service web: two it selects, one it does not
            "k8slab-web-2": {"app": "web", "version": "v2"},
            "k8slab-website": {"app": "website"}}
WEB_SERVICE, WEB_SELECTOR = "web", {"app": "web"}
LONELY_SERVICE, LONELY_SELECTOR = "lonely", {"app": "lonely"}  # no pod carries app=lonely
DNS_SOURCE = "k8slab-website"  # the pod the name lookup runs in
SAME, DIFFERENT = "same", "different"
RESOLVES, NOT_RESOLVES = "resolves", "does-not-resolve"  # not yes/no: YAML reads an unquoted yes as true
PREDICT_READY_S = 90.0  # the grader's pods becoming ready (the first time an image may still be pulled)
RECREATE_TIMEOUT_S = 60.0  # the deleted pod gone, and its successor given an IP
SETTLE_S = 20.0  # how long EndpointSlices may trail the pods before an endpoint count is void
DNS_DEADLINE_S = 20.0  # how long CoreDNS may take to learn of the new Service
PREDICTIONS = (
    Question("recreated_pod_ip", f"the grader deletes pod {AGAIN_POD} and creates it again from the same manifest, "
                                 f"on the same node: does the new pod get the IP the old one had?",
             "choice", (SAME, DIFFERENT)),
    Question("web_endpoints", f"how many ready endpoints does Service {WEB_SERVICE} (selector "
                              f"{format_labels(WEB_SELECTOR)}) have?", "number"),
    Question("lonely_endpoints", f"how many endpoints does Service {LONELY_SERVICE} (selector "
                                 f"{format_labels(LONELY_SELECTOR)}, a label no pod carries) have?", "number"),
    Question("lonely_dns_name", f"asked from a pod, does the DNS name of Service {LONELY_SERVICE} resolve?",
             "choice", (RESOLVES, NOT_RESOLVES)),
)


@dataclass(frozen=True)
class PredictSeen:
    """What the experiments showed; a value is None when its experiment could not run (``missing`` says why)."""

    ips: tuple[str, str] | None = None  # the pod's IP before the grader deleted it, and its successor's
    web_endpoints: int | None = None  # ready addresses in Service web's EndpointSlices
    lonely_endpoints: int | None = None  # addresses, ready or not, in Service lonely's EndpointSlices
    lonely_resolves: bool | None = None  # whether the Service's DNS name resolved (to anything) from a pod
    missing: Mapping[str, str] = field(default_factory=dict)  # question id -> why it could not be observed


def prediction_facts(seen: PredictSeen) -> dict[str, Fact]:
    """The fact of each prediction (pure): the answer the cluster gave, and why each other answer is wrong."""
    def void(question: str, default: str) -> Fact:
        return not_observable(seen.missing.get(question) or default)

    facts: dict[str, Fact] = {}
    if seen.ips is None:
        facts["recreated_pod_ip"] = void("recreated_pod_ip", f"the grader could not re-create its pod {AGAIN_POD}")
    else:
        kind = SAME if seen.ips[0] == seen.ips[1] else DIFFERENT
        why = {SAME: "a pod created again from the same manifest is a new pod (a new UID), and the CNI gave it a new "
                     "address: a pod IP lasts one pod's life, which is why clients use a Service's name instead",
               DIFFERENT: "this cluster gave the new pod the very address its predecessor had (its IP allocator "
                          "handed the freed address out again): nothing promises either, so never rely on a pod IP"}
        facts["recreated_pod_ip"] = observed(kind, because={k: v for k, v in why.items() if k != kind})

    if seen.web_endpoints is None:
        facts["web_endpoints"] = void("web_endpoints", f"the EndpointSlices of Service {WEB_SERVICE} could not be read")
    else:
        def web_why(answer: int, count: int = seen.web_endpoints) -> str:
            if answer < count:
                return ("a Service selects every ready pod that carries all the labels of its selector: labels a pod "
                        "has beyond those (version: v2) do not keep it out")
            return ("a label value must be equal to the selector's, not similar: app: website is not app: web, and a "
                    "pod without the label is never selected")
        facts["web_endpoints"] = observed(seen.web_endpoints, explain=web_why)

    if seen.lonely_endpoints is None:
        facts["lonely_endpoints"] = void("lonely_endpoints",
                                         f"the EndpointSlices of Service {LONELY_SERVICE} could not be read")
    else:
        def lonely_why(answer: int, count: int = seen.lonely_endpoints) -> str:
            if answer > count:
                return (f"a Service's endpoints are the ready pods whose labels match its selector, and no pod carries "
                        f"{format_labels(LONELY_SELECTOR)}: a Service never falls back to other pods")
            return (f"the EndpointSlices of Service {LONELY_SERVICE} list more addresses than that: pods carrying "
                    f"{format_labels(LONELY_SELECTOR)} ran in the namespace")
        facts["lonely_endpoints"] = observed(seen.lonely_endpoints, explain=lonely_why)

    if seen.lonely_resolves is None:
        facts["lonely_dns_name"] = void("lonely_dns_name", "the grader's DNS lookup did not complete")
    else:
        kind = RESOLVES if seen.lonely_resolves else NOT_RESOLVES
        why = {NOT_RESOLVES: "a ClusterIP Service's DNS name comes from the Service itself (its name and its "
                             "ClusterIP), not from its endpoints: the name resolves with nothing behind it, and only "
                             "the connections fail",
               RESOLVES: "the name did not resolve on this cluster (NXDOMAIN) although the Service exists: its DNS "
                         "does not answer for Services the way Kubernetes specifies (`make doctor` checks CoreDNS)"}
        facts["lonely_dns_name"] = observed(kind, because={k: v for k, v in why.items() if k != kind})
    return facts


def name_resolves(result: ProbeResult) -> tuple[bool | None, str]:
    """(whether the lookup found the name, why not known): any address is an answer, NXDOMAIN is "no", anything
    else (no DNS server answered, the probe could not run) says nothing about the name (pure)."""
    if result.outcome is Outcome.ALLOWED or result.addresses:
        return True, ""
    if result.outcome is Outcome.BLOCKED and "NXDOMAIN" in result.detail:
        return False, ""
    return None, f"the grader's lookup of {result.spec.target} from {result.spec.source} did not complete " \
                 f"({result.detail or result.outcome.word})"


def _predict_service(namespace: str, name: str, selector: Mapping[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ClusterIP", "selector": dict(selector),
                     "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": probe.HTTP_PORT}]}}


def _recreate(cluster, namespace: str, manifest: dict) -> tuple:
    """Delete the grader's pod and create it again from the same manifest: (the old pod, its successor once it has
    an IP). Raises ClusterError saying which part did not happen in time."""
    before = cluster.get_pod(namespace, AGAIN_POD)
    if before is None or not before.status or not before.status.pod_ip:
        raise ClusterError(f"the grader's Pod {namespace}/{AGAIN_POD} has no IP to compare with")
    cluster.delete({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": AGAIN_POD, "namespace": namespace}})
    deadline = time.monotonic() + RECREATE_TIMEOUT_S
    while (pod := cluster.get_pod(namespace, AGAIN_POD)) is not None and pod.metadata.uid == before.metadata.uid:
        if time.monotonic() >= deadline:
            raise ClusterError(f"the grader deleted Pod {namespace}/{AGAIN_POD}, and it was still there after "
                               f"{RECREATE_TIMEOUT_S:g} s")
        time.sleep(0.3)
    cluster.ensure_pods([manifest])
    while True:
        after = cluster.get_pod(namespace, AGAIN_POD)
        if after is not None and after.metadata.uid != before.metadata.uid and after.status and after.status.pod_ip:
            return before, after
        if time.monotonic() >= deadline:
            why = cluster.diagnose_pod(after) if after is not None else None
            raise ClusterError(f"the grader's Pod {namespace}/{AGAIN_POD}, created again, had no IP after "
                               f"{RECREATE_TIMEOUT_S:g} s ({why or 'no pod'})")
        time.sleep(0.3)


def _settled_endpoints(cluster, namespace: str, selectors: Mapping[str, Mapping[str, str]],
                       timeout: float) -> dict[str, tuple[list, bool]]:
    """{Service: (its endpoints, settled)}: settled once it has an EndpointSlice and its ready endpoints are exactly
    the ready pods its selector picks (the controller trails the pods by a moment); read until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pods = cluster.list_pods(namespace)
        out: dict[str, tuple[list, bool]] = {}
        for service, selector in selectors.items():
            chosen = {p.metadata.name for p in pods if service_selects(selector, p.metadata.labels) and is_ready(p)}
            eps = cluster.endpoints(namespace, service)
            settled = bool(cluster.list_endpointslices(namespace, service)) and \
                {e.pod or e.ip for e in eps if e.ready} == chosen
            out[service] = (eps, settled)
        if all(settled for _, settled in out.values()) or time.monotonic() >= deadline:
            return out
        time.sleep(0.5)


def _app_labels(labels: Mapping[str, str] | None) -> str:
    """A pod's labels without the grader's own bookkeeping (k8slab.dev/...)."""
    return format_labels({k: v for k, v in (labels or {}).items() if not k.startswith("k8slab.dev/")})


def predict_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    image = probe.agnhost_image(cluster)
    workers = probe.worker_nodes(cluster)
    node = workers[0] if workers else None
    again = probe.probe_pod(ns, AGAIN_POD, image, node=node)
    missing: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    seen: dict = {}
    try:
        cluster.ensure_pods([again, *(probe.probe_pod(ns, name, image, labels=labels)
                                      for name, labels in WEB_PODS.items())])
        cluster.apply([_predict_service(ns, WEB_SERVICE, WEB_SELECTOR),
                       _predict_service(ns, LONELY_SERVICE, LONELY_SELECTOR)])
        cluster.wait_ready([ns], timeout=PREDICT_READY_S)
    except K8sLabError as error:  # nothing can be observed: every question says why
        reason = f"the grader's own pods and Services could not be set up ({error.message})"
        facts = prediction_facts(PredictSeen(missing={q.id: reason for q in PREDICTIONS}))
        return judge_answers(ctx.answers, facts, hint="`make doctor` checks the cluster; then check again")

    try:
        before, after = _recreate(cluster, ns, again)
        seen["ips"] = (before.status.pod_ip, after.status.pod_ip)
        rows.append((f"Pod {AGAIN_POD} deleted and created again from the same manifest (node "
                     f"{after.spec.node_name or node or '?'})",
                     f"IP {before.status.pod_ip} before, {after.status.pod_ip} after (pod uid "
                     f"{str(before.metadata.uid)[:8]} -> {str(after.metadata.uid)[:8]})"))
    except K8sLabError as error:
        missing["recreated_pod_ip"] = error.message
        rows.append((f"Pod {AGAIN_POD} deleted and created again", f"could not run: {error.message}"))

    try:
        settled = _settled_endpoints(cluster, ns, {WEB_SERVICE: WEB_SELECTOR, LONELY_SERVICE: LONELY_SELECTOR},
                                     SETTLE_S)
    except K8sLabError as error:
        settled = {}
        missing["web_endpoints"] = missing["lonely_endpoints"] = error.message
    for service, selector, key, ready_only in ((WEB_SERVICE, WEB_SELECTOR, "web_endpoints", True),
                                               (LONELY_SERVICE, LONELY_SELECTOR, "lonely_endpoints", False)):
        what = f"Service {service} (selector {format_labels(selector)}): {'ready ' if ready_only else ''}endpoints"
        if service not in settled:
            rows.append((what, "could not be read"))
            continue
        eps, ok = settled[service]
        counted = [e for e in eps if e.ready or not ready_only]
        listed = ", ".join(f"{e.pod or '-'} {e.ip}" for e in counted) or "none"
        if ok:
            seen[key] = len(counted)
            rows.append((what, f"{len(counted)}: {listed}"))
        else:
            missing[key] = (f"the EndpointSlices of Service {service} did not settle within {SETTLE_S:g} s (they "
                            f"listed {listed})")
            rows.append((what, f"not settled after {SETTLE_S:g} s: {listed}"))

    fqdn = f"{LONELY_SERVICE}.{ns}.svc.cluster.local"
    svc = cluster.get_service(ns, LONELY_SERVICE)
    cluster_ip = (svc.spec.cluster_ip or "") if svc is not None else ""
    # CoreDNS learns of a new Service a moment after it exists: ask until the answer is its ClusterIP
    expect = (cluster_ip,) if cluster_ip and cluster_ip != "None" else ()
    # the trailing dot makes the name absolute: no walk through the search list (whose last domains may belong to
    # an upstream server that never answers), so a name that does not exist is a plain NXDOMAIN
    lookup = ProbeSpec(f"{ns}/{DNS_SOURCE}", "dns", f"{fqdn}.", label=f"dns {fqdn}", expect=expect)
    result = probe_until(ctx.prober, [lookup], {lookup: Outcome.ALLOWED}, attempts=8, deadline_s=DNS_DEADLINE_S)[0]
    resolves, why = name_resolves(result)
    if resolves is None:
        missing["lonely_dns_name"] = why
    else:
        seen["lonely_resolves"] = resolves
    answer = ", ".join(result.addresses) if result.addresses else (result.detail or result.outcome.word)
    rows.append((f"DNS lookup of {fqdn} from {DNS_SOURCE}",
                 f"{answer} (the Service's ClusterIP is {cluster_ip or 'unknown'})"))

    facts = prediction_facts(PredictSeen(**seen, missing=missing))
    pods = [p for p in cluster.list_pods(ns) if p.metadata.name in (AGAIN_POD, *WEB_PODS)]
    pod_rows = [(p.metadata.name, _app_labels(p.metadata.labels), (p.status.pod_ip or "") if p.status else "",
                 p.spec.node_name or "") for p in pods]
    return judge_answers(
        ctx.answers, facts,
        hint="predict from what a pod, a label selector and a Service are (the notebook's text), then compare with "
             "the tables: what the cluster did",
        evidence=(Evidence.table("What the cluster did", ("experiment", "result"), rows),
                  Evidence.table("The grader's pods", ("pod", "labels", "IP", "node"), pod_rows),
                  Evidence.command("Reproduce the lookup", result.command)))



EXERCISES = {
    "hello-pod": Exercise(static=None, live=hello_pod_live),
    # a field that changes who handles the traffic (internalTrafficPolicy: Local, ...) is named, not only the symptom
    "hello-service": Exercise(static=hello_service_static,
                              live=naming_traffic_fields(hello_service_live, SERVICE_NAME)),
    "break-fix": Exercise(static=None, live=break_fix_live),
    "predict": Exercise(live=predict_live, questions=PREDICTIONS),
}
