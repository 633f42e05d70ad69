"""What lab grader modules share, so that a lab module holds its own judgement only.

* **Services in the submitted files** (static): find the Service an exercise asks for, the port it must expose,
  the pods its selector picks and whether its targetPort lands on a port those pods serve — every problem cited
  ``Kind ns/name (file:line)`` like the parse step's.
* **The cluster** (live): the learner's pods and their table, a Service's ready endpoints compared with the ready
  pods its selector picks, the grader's client pod, GET /hostname spread over replicas, and requests from
  outside the cluster (``graders.outside``, or the client pod when Docker cannot be reached).
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graders import manifests, outside, probe
from graders.cluster import is_ready  # noqa: F401 — lab modules take it from the toolkit
from graders.errors import CheckFailed, K8sLabError
from graders.labels import format_labels, pods_with_labels
from graders.manifests import Manifest
from graders.model import Evidence, Outcome
from graders.netpol.selectors import service_selects
from graders.workloads import Workload, cite

if TYPE_CHECKING:  # the cluster package loads the Kubernetes client, which costs seconds: not at import time
    from graders.cluster import Endpoint

HOSTNAME_PATH = "/hostname"
CLIENT_POD = "k8slab-client"
CLIENT_TIMEOUT = 60.0
ENDPOINTS_SETTLE = 8.0  # EndpointSlices may trail pod readiness by a moment: how long a mismatch may last


def kubectl(args: str, context: str | None = None) -> str:
    """A kubectl command line for a message or hint, pinned to the kube context that was graded (``None``: the
    course's, or $K8SLAB_CONTEXT), so a learner with several clusters runs it against the right one."""
    from graders.cluster import default_context  # preflight only: standard library
    from graders.cluster.names import kubectl_command
    return kubectl_command(args, context or default_context())


def context_of(ctx) -> str | None:
    """The kube context of a grading run (None when the cluster is a test double without one)."""
    context = getattr(getattr(ctx, "cluster", None), "context", None)
    return context if isinstance(context, str) and context else None


# ================================================================================ Services in the files
def service_ports(svc: Manifest) -> list[dict]:
    return [p for p in (svc.obj.get("spec") or {}).get("ports") or [] if isinstance(p, dict)]


def target_of(port: dict) -> int | str:
    """A Service port's targetPort; Kubernetes defaults it to the port itself."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, str) and target.isdigit():
        return int(target)
    return target


def service_type(svc: Manifest) -> str:
    return str((svc.obj.get("spec") or {}).get("type") or "ClusterIP")


def selector_of(svc: Manifest) -> dict:
    return (svc.obj.get("spec") or {}).get("selector") or {}


def selected(svc: Manifest, wls: Sequence[Workload]) -> list[Workload]:
    return [w for w in wls if service_selects(selector_of(svc), w.labels)]


def require_service(manifests: Sequence[Manifest], name: str, why: str) -> Manifest:
    """The Service called ``name`` in the files; fails naming the Services there are and ``why`` the name matters."""
    services = [m for m in manifests if m.kind == "Service"]
    svc = next((s for s in services if s.name == name), None)
    if svc is None:
        found = ", ".join(s.name or "?" for s in services) or "none"
        raise CheckFailed(f"no Service named {name} in your files (Services found: {found}): {why}",
                          hint=f"set metadata.name: {name}")
    return svc


def require_port(svc: Manifest, number: int, why: str) -> dict:
    """The Service port ``number`` (the one clients use); fails listing the ports there are."""
    ports = service_ports(svc)
    port = next((p for p in ports if p.get("port") == number), None)
    if port is None:
        have = ", ".join(str(p.get("port")) for p in ports) or "none"
        raise problem(svc, ("spec", "ports"), f"does not expose port {number} (its ports: {have}); {why}",
                      hint="`port` is what clients use; `targetPort` is where the pod listens")
    return port


def require_cluster_ip(svc: Manifest) -> None:
    """The Service must be a plain ClusterIP Service: one virtual IP, reachable inside the cluster only."""
    if service_type(svc) != "ClusterIP":
        raise problem(svc, ("spec", "type"), f"is type {service_type(svc)}; this exercise asks for a ClusterIP "
                                             f"Service (the default type)",
                      hint="`type` decides where a Service is reachable; the in-cluster type is the default")
    if (svc.obj.get("spec") or {}).get("clusterIP") == "None":
        raise problem(svc, ("spec", "clusterIP"), "is headless (clusterIP: None): it gets no virtual IP, so there "
                                                  "is no ClusterIP to reach", hint="remove clusterIP: None")


def problem(manifest: Manifest, path: Sequence, message: str, hint: str = "") -> CheckFailed:
    """A failure about one field of a submitted object: ``Kind ns/name (file:line): message``."""
    return CheckFailed(f"{cite(manifest, path)}: {message}", hint=hint)


def port_field(svc: Manifest, port: dict, name: str) -> tuple:
    """The path of one field of a Service port, for ``problem``."""
    return ("spec", "ports", service_ports(svc).index(port), name)


@dataclass(frozen=True)
class Finding:
    message: str
    hint: str = ""


def selector_finding(svc: Manifest, wls: Sequence[Workload], namespace: str) -> Finding | None:
    """Why a Service selects no pod (None when it selects some)."""
    selector = selector_of(svc)
    existing = "; ".join(f"{format_labels(w.labels)} ({w.ref})" for w in wls) or "there are no pods at all"
    if not selector:
        return Finding(f"{cite(svc, ('spec',))}: has no selector, so it selects no pod and Kubernetes gives it no "
                       f"endpoints. Labels that exist: {existing}",
                       hint="spec.selector must list labels your pods carry (see the pod template's labels)")
    if not selected(svc, wls):
        return Finding(f"{cite(svc, ('spec', 'selector'))}: selects {format_labels(selector)}, which selects no pod "
                       f"in {namespace}: every key and value must equal a pod's label, so the Service gets no "
                       f"endpoints. Labels that exist: {existing}",
                       hint="compare spec.selector with the pod template's metadata.labels, key and value")
    return None


def port_findings(svc: Manifest, wls: Sequence[Workload]) -> list[Finding]:
    """Where each Service port's targetPort lands in each selected workload, and whether anything listens there."""
    out: list[Finding] = []
    for index, port in enumerate(service_ports(svc)):
        number = port.get("port")
        target = target_of(port)
        where = cite(svc, ("spec", "ports", index, "targetPort"))
        chosen = selected(svc, wls)
        for wl in chosen:
            if isinstance(target, str):
                named = wl.named_ports()
                if target not in named:
                    out.append(Finding(
                        f"{where}: targetPort {target!r} names no container port in the pods of "
                        f"{wl.cite('containers')} (their ports: {wl.port_list()}), so those pods are left out of "
                        f"port {number}'s endpoints",
                        hint=f"a named targetPort must equal a container port's `name`: add `name: {target}` to "
                             f"the containerPort of every workload the Service selects"))
                    continue
                resolved = named[target]
            else:
                resolved = target
            listening, how = wl.serving()
            if listening is None or resolved in listening:
                continue
            serving = ", ".join(map(str, sorted(listening))) or "no port"
            others = [w for w in chosen if w is not wl and _listens(w, target, resolved)]
            if others:  # the port is right for the others: the selector is what is too wide
                out.append(Finding(
                    f"{cite(svc, ('spec', 'selector'))}: selects {format_labels(selector_of(svc))}, which also "
                    f"selects the pods of {wl.cite('metadata')} (labels {format_labels(wl.labels)}), which serve "
                    f"{serving}, not {resolved} like {', '.join(w.ref for w in others)}: connections sent there "
                    f"are refused",
                    hint="a Service sends traffic to every ready pod its selector matches: add a label that only "
                         "the intended pods carry"))
                continue
            via = f"targetPort {target!r} = {resolved}" if isinstance(target, str) else f"targetPort {target}"
            message = (f"{where}: sends port {number} to {via}, but the pods of {wl.cite('containers')} are not "
                       f"listening on port {resolved}: they serve {serving} ({how}), so every connection would be "
                       f"refused")
            hint = "targetPort is the port the container listens on; port is the one clients use on the Service"
            if isinstance(target, int) and number in listening and number != resolved:
                message += (f". port and targetPort look swapped: `port` ({number}) is what clients connect to on "
                            f"the Service, `targetPort` is where the container listens ({serving})")
                hint = "swap the two values: `port` is what clients use, `targetPort` is where the container listens"
            out.append(Finding(message, hint))
    return out


def _listens(wl: Workload, target, resolved) -> bool:
    """Whether ``wl``'s pods serve the Service port's target (by name when it is a name)."""
    if isinstance(target, str) and target not in wl.named_ports():
        return False
    listening, _ = wl.serving()
    port = wl.named_ports()[target] if isinstance(target, str) else resolved
    return listening is not None and port in listening


def workloads_evidence(wls: Sequence[Workload]) -> Evidence:
    rows = []
    for w in wls:
        listening, how = w.serving()
        rows.append((w.ref, str(w.replicas), format_labels(w.labels), w.port_list(),
                     how if listening is not None else "unknown (not agnhost)"))
    return Evidence.table("Pods your files create", ("workload", "replicas", "labels", "container ports", "serves"),
                          rows)


def check_service(svc: Manifest, wls: Sequence[Workload], namespace: str) -> None:
    """The rules every selector-based Service must pass: it selects pods and reaches a port they serve."""
    evidence = (workloads_evidence(wls),)
    for finding in [selector_finding(svc, wls, namespace), *port_findings(svc, wls)]:
        if finding is not None:
            raise CheckFailed(finding.message, hint=finding.hint, evidence=evidence)


def explain_service_rejection(message: str) -> str:
    """Why the schema or the API server refuses a Service a learner often writes (empty when nothing to add)."""
    if re.search(r"spec\.selector\.(matchLabels|matchExpressions)\b", message) or \
            re.search(r"ServiceSpec\.spec\.selector of type string", message):
        return ("a Service's spec.selector is a plain map of labels (key: value), not a label selector: "
                "matchLabels/matchExpressions belong to Deployments, ReplicaSets and NetworkPolicies. A Service "
                "selects the pods that carry every listed label")
    if re.search(r"spec\.ports: Required value", message):
        return ("a Service without `type` is a ClusterIP Service, and every ClusterIP, NodePort or LoadBalancer "
                "Service needs at least one port; only type ExternalName (a DNS alias) has none")
    return ""


def service_summary(svc: Manifest, wls: Sequence[Workload]) -> str:
    pods = ", ".join(f"{w.replicas} x {w.ref}" for w in selected(svc, wls))
    ports = ", ".join(f"{p.get('port')}->{target_of(p)}" for p in service_ports(svc))
    return f"Service {svc.name} selects {format_labels(selector_of(svc))} ({pods}) and forwards {ports}"


# ================================================================================ the cluster
def learner_pods(cluster, namespace: str) -> list:
    """The pods of the namespace except the grader's own probe and client pods."""
    return [p for p in cluster.list_pods(namespace) if not (p.metadata.labels or {}).get(probe.PROBE_LABEL)]


def pods_evidence(pods, title: str = "Pods in the namespace") -> Evidence:
    rows = [(p.metadata.name, format_labels(p.metadata.labels), "yes" if is_ready(p) else "no",
             (p.status.pod_ip or "") if p.status else "", p.spec.node_name or "") for p in pods]
    return Evidence.table(title, ("pod", "labels", "ready", "IP", "node"), rows)


def endpoints_evidence(service: str, eps: Sequence[Endpoint]) -> Evidence:
    rows = [(e.pod or "-", e.ip, e.node or "-", "yes" if e.ready else "no",
             ", ".join(f"{n or '-'}={p}" for n, p in e.ports) or "-") for e in eps]
    return Evidence.table(f"EndpointSlices of Service {service}", ("pod", "address", "node", "ready", "ports"), rows)


def live_service(cluster, namespace: str, name: str):
    """The Service as the cluster has it; fails when there is none."""
    svc = cluster.get_service(namespace, name)
    if svc is None:
        raise CheckFailed(f"no Service named {name} in namespace {namespace}", hint=f"metadata.name: {name}")
    return svc


def expect_endpoints(ctx, service: str,
                     timeout: float | None = None) -> tuple[list[Endpoint], dict[str, Any], Evidence]:
    """The Service's ready endpoints must be exactly the ready pods its selector picks (EndpointSlices can lag
    pod readiness by a moment: poll briefly). Returns (ready endpoints, {pod name: pod}, evidence)."""
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    context = context_of(ctx)
    selector = live_service(cluster, ns, service).spec.selector or {}
    deadline = time.monotonic() + (ENDPOINTS_SETTLE if timeout is None else timeout)
    while True:
        pods = learner_pods(cluster, ns)
        chosen = {p.metadata.name: p for p in pods if service_selects(selector, p.metadata.labels) and is_ready(p)}
        eps = cluster.endpoints(ns, service)
        ready = [e for e in eps if e.ready]
        if (chosen and {e.pod for e in ready} == set(chosen)) or time.monotonic() >= deadline:
            break
        if not chosen and pods and all(is_ready(p) for p in pods):
            break  # nothing selected and nothing still starting: waiting cannot help
        time.sleep(0.3)
    evidence = endpoints_evidence(service, eps)
    if not chosen:
        raise CheckFailed(
            f"Service {service} selects {format_labels(selector) if selector else '(no selector)'}, which selects no "
            f"pod that is ready, so it has no endpoints. Labels that exist: {pods_with_labels(pods, none='no pods')}",
            hint=f"`{kubectl(f'-n {ns} get pods --show-labels', context)}` and "
                 f"`{kubectl(f'-n {ns} get endpointslices', context)}`",
            evidence=(pods_evidence(pods), evidence))
    missing = sorted(set(chosen) - {e.pod for e in ready})
    extra = sorted({e.pod or e.ip for e in ready} - set(chosen))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"ready pods {', '.join(missing)} are selected but are not ready endpoints")
        if extra:
            parts.append(f"endpoints {', '.join(extra)} are not ready pods the selector picks")
        raise CheckFailed(
            f"Service {service}: {'; '.join(parts)}",
            hint="a named targetPort must exist in every selected pod; "
                 f"`{kubectl(f'-n {ns} describe endpointslices -l kubernetes.io/service-name={service}', context)}`",
            evidence=(pods_evidence(pods), evidence))
    return ready, chosen, evidence


def traffic_fields(svc) -> list[str]:
    """The fields of a live Service that change which pods (or which controller) handle its traffic, set to
    something other than their default, each with what it does."""
    def value(name: str):  # the unit tests' simulated Services carry only the fields they use
        return getattr(svc.spec, name, None)

    notes = []
    if value("session_affinity") == "ClientIP":
        notes.append("spec.sessionAffinity: ClientIP pins each client IP to one pod: every request from one client "
                     "goes to the same replica")
    if value("internal_traffic_policy") == "Local":
        notes.append("spec.internalTrafficPolicy: Local sends traffic from inside the cluster only to pods on the "
                     "client's own node (and drops it when there is none)")
    if value("external_traffic_policy") == "Local" and value("type") in ("NodePort", "LoadBalancer"):
        notes.append("spec.externalTrafficPolicy: Local makes a node forward its node port (or the load-balancer "
                     "IP) only to pods on that same node: a node with no selected pod drops the request")
    if value("load_balancer_class"):
        notes.append(f"spec.loadBalancerClass: {value('load_balancer_class')} hands the Service to the controller of "
                     f"that class only; MetalLB (the course's controller) serves Services without a class")
    if value("publish_not_ready_addresses"):
        notes.append("spec.publishNotReadyAddresses: true lists not-ready pods as ready endpoints, so they keep "
                     "receiving traffic")
    return notes


def naming_traffic_fields(check: Callable, *services: str) -> Callable:
    """A live check that, when it fails, names each field of ``services`` that changes who handles the traffic
    (the symptom alone — "a node did not answer" — hides the cause)."""
    @functools.wraps(check)
    def run(ctx):
        try:
            return check(ctx)
        except CheckFailed as error:
            notes = [n for name in services
                     for svc in [ctx.cluster.get_service(ctx.spec.default_namespace, name)] if svc is not None
                     for n in traffic_fields(svc) if _field_name(n) not in error.message]
            if not notes:
                raise
            fields = ", ".join(_field_name(n) for n in notes)
            raise CheckFailed(f"{error.message}. Likely cause: {'; '.join(notes)}",
                              hint=f"leave {fields} at the default unless the exercise asks for it",
                              evidence=error.evidence, credit=error.credit) from error
    return run


def _field_name(note: str) -> str:
    """"sessionAffinity" of "spec.sessionAffinity: ClientIP pins ...": a message naming it needs no note."""
    return note.split(":", 1)[0].removeprefix("spec.")


def service_table(svc, external: str = "") -> Evidence:
    """What Kubernetes allocated for a Service: type, ClusterIP, node ports, external IP."""
    rows = [("type", svc.spec.type), ("ClusterIP", svc.spec.cluster_ip or "-")]
    for p in svc.spec.ports or []:
        rows.append((f"port {p.port}", f"targetPort {p.target_port}, nodePort {p.node_port or '-'}"))
    if svc.spec.type == "LoadBalancer":
        rows.append(("external IP", external or "<pending>"))
    return Evidence.table(f"Service {svc.metadata.name}: what Kubernetes allocated", ("field", "value"), rows)


def probe_failed(result: probe.ProbeResult, what: str, evidence: Sequence[Evidence] = ()) -> CheckFailed:
    """A probe that could not run is the grader's problem, not the learner's: say so."""
    return CheckFailed(
        f"the grader's probe from {result.spec.source} to {what} could not run ({result.detail}); this says "
        f"nothing about your manifests",
        hint="run `make doctor` to check the cluster, then grade again",
        evidence=(*evidence, Evidence.command("Reproduce", result.command)))


# ---------------------------------------------------------------------------- the grader's client pod
def start_client(ctx) -> str:
    """Create the grader's client pod (agnhost: sh, curl, nslookup, dig) without waiting; returns "ns/name"."""
    ns = ctx.spec.default_namespace
    ctx.cluster.ensure_pods([probe.probe_pod(ns, CLIENT_POD, probe.agnhost_image(ctx.cluster))])
    return f"{ns}/{CLIENT_POD}"


def wait_client(ctx, timeout: float = CLIENT_TIMEOUT) -> str:
    """Wait until the client container runs (exec works then; Ready is not needed); returns "ns/name"."""
    ns = ctx.spec.default_namespace
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = ctx.cluster.get_pod(ns, CLIENT_POD)
        statuses = (pod.status.container_statuses or []) if pod is not None and pod.status else []
        if statuses and all(s.state and s.state.running for s in statuses):
            return f"{ns}/{CLIENT_POD}"
        problem = ctx.cluster.diagnose_pod(pod) if pod is not None else None
        if problem is not None and problem.fatal:
            break
        time.sleep(0.3)
    why = ctx.cluster.diagnose_pod(pod) if pod is not None else None
    raise CheckFailed(f"the grader's client pod {ns}/{CLIENT_POD} did not start within {timeout:g} s "
                      f"({why or 'no pod'}); this says nothing about your manifests",
                      hint="run `make doctor` to check the cluster, then grade again")


# ---------------------------------------------------------------------------- GET /hostname spread
@dataclass
class Spread:
    """Answers of repeated GET /hostname requests to one or more addresses."""

    results: list = field(default_factory=list)

    def by_target(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for r in self.results:
            out.setdefault(r.spec.target_label, []).append(r)
        return out

    def answers(self, target: str | None = None) -> Counter:
        return Counter(r.output.strip() for r in self.results if r.outcome is Outcome.ALLOWED
                       and (target is None or r.spec.target_label == target))

    def failures(self, target: str | None = None) -> list:
        return [r for r in self.results if r.outcome is not Outcome.ALLOWED
                and (target is None or r.spec.target_label == target)]


def http_specs(source: str, targets: Sequence[tuple[str, str, int]], count: int) -> list[probe.ProbeSpec]:
    """`count` GET /hostname probes per (label, host, port)."""
    return [probe.ProbeSpec(source, "http", host, port, path=HOSTNAME_PATH, label=label)
            for label, host, port in targets for _ in range(count)]


def run_spread(runner: probe.Runner, specs: Sequence[probe.ProbeSpec], deadline_s: float = 15.0, *,
               reach: Collection[str] = (), rounds: int = 3) -> Spread:
    """Run the requests; retry only the failed ones (a DNS answer cached from an earlier run lives up to 5 s).

    kube-proxy programs a new Service's endpoints a moment (its minimum sync period, ~1 s) after the EndpointSlice
    lists them ready, so while a pod of ``reach`` has not answered, the whole round is sent again (at most
    ``rounds``); the last round is the one judged.
    """
    def send() -> Spread:
        return Spread(probe.probe_until(runner, specs, lambda s: Outcome.ALLOWED, attempts=3, deadline_s=deadline_s,
                                        pause_s=1.0))

    spread = send()
    for _ in range(rounds - 1):
        if set(reach) <= set(spread.answers()):
            break
        time.sleep(1.0)
        spread = send()
    return spread


def spread_evidence(spread: Spread, pods: dict[str, Any], title: str) -> Evidence:
    targets = list(spread.by_target())
    rows = []
    for name in sorted(set(pods) | set(spread.answers())):
        pod = pods.get(name)
        node = pod.spec.node_name if pod is not None else "(not a selected pod)"
        counts = [str(spread.answers(t).get(name, 0)) for t in targets]
        rows.append((name, node or "-", *counts, str(spread.answers().get(name, 0))))
    failed = [str(len(spread.failures(t))) for t in targets]
    if any(f != "0" for f in failed):
        rows.append(("(no answer)", "-", *failed, str(len(spread.failures()))))
    return Evidence.table(title, ("answered by", "node", *targets, "total"), rows)


def judge_spread(spread: Spread, pods: dict[str, Any], *, what: str, target_port: Any = None,
                 evidence: Sequence[Evidence] = (), require_all: bool = True, context: str | None = None) -> str:
    """Fail unless every request was answered by a selected pod and (``require_all``) every pod answered.
    Returns a one-line distribution summary. ``context``: the kube context graded (for the commands in hints)."""
    ev = (spread_evidence(spread, pods, f"Which replica answered GET {HOSTNAME_PATH} ({what})"), *evidence)
    for target, results in spread.by_target().items():
        bad = [r for r in results if r.outcome is not Outcome.ALLOWED]
        if not bad:
            continue
        first = bad[0]
        reproduce = Evidence.command("Reproduce", first.command)
        detail = first.detail or "no answer"
        if "does not resolve" in detail:
            raise CheckFailed(f"the name in {target} does not resolve from a pod in the namespace ({detail})",
                              hint="the DNS name comes from the Service's metadata.name",
                              evidence=(*ev, reproduce))
        if first.outcome is Outcome.FAILED and "exec" in detail:
            raise probe_failed(first, target, ev)
        if "refused" in detail and target_port is not None:
            raise CheckFailed(
                f"{len(bad)} of {len(results)} requests to {target} were refused although the Service has "
                f"endpoints: the pods are not listening on port {target_port} (the targetPort)",
                hint="targetPort must be the port the container serves", evidence=(*ev, reproduce))
        raise CheckFailed(f"{len(bad)} of {len(results)} requests to {target} failed: {detail}",
                          hint=f"`{kubectl(f'-n {first.spec.namespace} get endpointslices', context)}` shows "
                               "where the Service sends traffic",
                          evidence=(*ev, reproduce))
    answers = spread.answers()
    strangers = sorted(set(answers) - set(pods))
    if strangers:
        raise CheckFailed(f"requests to {what} were answered by {', '.join(s[:60] for s in strangers)}, which is not "
                          f"one of the selected pods ({', '.join(sorted(pods))})", evidence=ev)
    silent = sorted(set(pods) - set(answers))
    if require_all and silent:
        raise CheckFailed(
            f"{sum(answers.values())} requests to {what} never reached {', '.join(silent)}: the Service should spread "
            f"them over all {len(pods)} ready replicas",
            hint="every ready pod the selector picks must be an endpoint", evidence=ev)
    spread_text = ", ".join(f"{name} {answers.get(name, 0)}" for name in sorted(pods))
    return f"{sum(answers.values())}/{len(spread.results)} requests answered, spread over {len(pods)} replicas " \
           f"({spread_text})"


# ---------------------------------------------------------------------------- outside the cluster
@dataclass(frozen=True)
class Vantage:
    """Where requests come from: a runner and the source its specs name. ``note`` says why it is not the place
    the check asked for (empty when it is)."""

    runner: probe.Runner
    source: str
    note: str = ""

    @property
    def where(self) -> str:
        return "inside the cluster" if self.note else "outside the cluster (a container on the docker network)"

    def http(self, target: str, port: int, label: str) -> probe.ProbeSpec:
        return probe.ProbeSpec(self.source, "http", target, port, path=HOSTNAME_PATH, label=label)


def outside_vantage(ctx) -> Vantage:
    """A client on the cluster's docker network, or — when Python cannot reach Docker — the grader's client pod
    inside the cluster, with a note saying so."""
    try:
        runner = outside.runner(ctx.cluster)
        return Vantage(runner, runner.source)
    except outside.OutsideUnavailable as error:
        start_client(ctx)
        source = wait_client(ctx)
        return Vantage(ctx.prober, source, f"could not start a client outside the cluster ({error.message}); "
                                           f"probed from the grader's pod {source} instead")


def judge_outside(results: Sequence[probe.ProbeResult], pods: dict, what: str, evidence: Sequence[Evidence],
                  target_port: Any = None, *, namespace: str = "<namespace>", context: str | None = None) -> Evidence:
    """A table (address, answered, by whom); fails on the first address that did not reach a selected pod.
    ``namespace`` and ``context`` (the Service's namespace, the kube context graded) go into the hint's command."""
    rows = []
    by_target: dict[str, list] = {}
    for r in results:
        by_target.setdefault(r.spec.target_label, []).append(r)
    failure = None
    for target, rs in by_target.items():
        ok = [r for r in rs if r.outcome is Outcome.ALLOWED and r.output.strip() in pods]
        answered = Counter(r.output.strip()[:60] for r in rs if r.outcome is Outcome.ALLOWED)
        bad = [r for r in rs if r not in ok]
        rows.append((target, f"{len(ok)}/{len(rs)}",
                     ", ".join(f"{k} {v}" for k, v in sorted(answered.items())) or (bad[0].detail if bad else "-")))
        if bad and failure is None:
            failure = (target, bad[0], len(bad), len(rs))
    table = Evidence.table(f"Requests from outside the cluster ({what})", ("address", "answered", "by / reason"), rows)
    if failure is not None:
        target, first, nbad, total = failure
        reason = first.detail if first.outcome is not Outcome.ALLOWED else \
            f"answered by {first.output.strip()[:60]!r}, not one of the selected pods"
        if "refused" in reason and target_port is not None and pods:
            reason += (f"; the Service has {len(pods)} ready endpoints, so the pods are not listening on port "
                       f"{target_port} (the targetPort)")
        raise CheckFailed(f"{target}: {nbad} of {total} requests from outside the cluster failed ({reason})",
                          hint=f"`{kubectl(f'-n {namespace} get svc,endpointslices', context)}`; the Reproduce "
                               "line runs the same request from a container on the cluster's docker network",
                          evidence=(table, *evidence, Evidence.command("Reproduce", first.command)))
    return table


# ---------------------------------------------------------------------- break-fix exercises
def deployed_digest(objects: Iterable[Manifest]) -> str:
    """What a set of objects is as deployed, as a digest: comments, layout, order and namespace do not count."""
    docs = []
    for m in objects:
        meta = {k: v for k, v in (m.obj.get("metadata") or {}).items() if k != "namespace"}
        docs.append(json.dumps({**m.obj, "metadata": meta}, sort_keys=True, default=str))
    return hashlib.sha256(json.dumps(sorted(docs)).encode()).hexdigest()


def as_deployed(objects: Iterable[Manifest], digest: str) -> bool:
    """Whether a break-fix submission is still the broken setup it starts from. ``digest`` is the pinned
    ``deployed_digest`` of the starter files: a learner edits those files in place, so the grader cannot read the
    pristine setup from disk (a unit test of each lab keeps the pin equal to its starter)."""
    return deployed_digest(objects) == digest


def symptom_and_causes(symptom: str, causes: Sequence[Finding]) -> tuple[str, str]:
    """(message, hint) of an edited break-fix submission that still fails: the symptom, then every cause the
    files still show, numbered, each hint under the same number."""
    if len(causes) == 1:
        return f"{symptom}. Cause: {causes[0].message}", causes[0].hint
    listed = " ".join(f"({n}) {c.message}" for n, c in enumerate(causes, 1))
    return f"{symptom}. {len(causes)} causes: {listed}", " ".join(f"({n}) {c.hint}" for n, c in enumerate(causes, 1))
