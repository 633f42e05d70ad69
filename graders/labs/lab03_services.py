"""Lab 03-services: ClusterIP, targetPort by name + headless, NodePort, LoadBalancer, ExternalName, readiness.

Every exercise is graded by behaviour, at the highest step of the evidence ladder that explains a failure:

* **static** (no traffic) reads the learner's manifests the way the API server and the EndpointSlice controller
  will: which pods a Service's selector picks (and, when none, which labels do exist), which port a (named)
  targetPort resolves to in each selected pod template and whether that container listens there (agnhost
  ``netexec --http-port``), the Service type, nodePort, externalName and the readiness probe's timing.
* **live** looks at what the cluster really does: the EndpointSlices must list exactly the ready pods the
  selector picks; HTTP ``GET /hostname`` through every path (ClusterIP, the three DNS names, the named port,
  every node's NodePort and the load-balancer IP *from outside the cluster*) must reach the selected pods, with
  the distribution over replicas reported; DNS answers are read (the headless A records, the ExternalName
  CNAME); and a pod whose readiness probe starts failing must leave the endpoints and stop receiving traffic.

Probes are batched: all in-cluster requests of one check run in one exec in the grader's client pod (started
at the beginning of the live step, overlapping the API reads); all outside requests run in one short-lived
container on the cluster's docker network (``graders.outside``).
"""
from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graders import probe
from graders.errors import CheckFailed
from graders.labels import format_labels, pods_with_labels
from graders.exercise import Exercise
from graders.model import Evidence, Outcome, StepResult

LAB_ID = "03-services"

CLIENT_POD = "k8slab-client"
HOSTNAME_PATH = "/hostname"
CLUSTER_DOMAIN = "cluster.local"
NODE_PORT_RANGE = (30000, 32767)
EXTERNAL_HOST = "db.prod.example.com"
READY_FILE = "/tmp/ready"
MAX_UNREADY_SECONDS = 5       # the readiness exercise's target: a sick pod leaves the endpoints within 5 s
LEAVE_DEADLINE = 10.0         # how long the live check waits for it (target + probe/slice/kube-proxy lag)
REQUESTS_PER_TARGET = 12      # per address; 4 addresses x 12 = 48 requests: P(a replica never hit) ~ 1e-8
SPREAD_REQUESTS = 36          # to one address: P(one of 3 replicas never hit) = 3 x (2/3)^36 ~ 1e-6
LB_IP_TIMEOUT = 20.0
ENDPOINTS_SETTLE = 8.0        # EndpointSlices may trail pod readiness by a moment: how long a mismatch may last
CLIENT_TIMEOUT = 60.0


# ================================================================================ manifests (pure)
def _objects(ctx) -> list[dict]:
    return [getattr(m, "obj", m) for m in ctx.objects]


def selects(selector: dict | None, labels: dict | None) -> bool:
    """A Service selector (a plain map) selects a pod when every key/value matches. An empty one selects nothing
    (Kubernetes then manages no endpoints at all)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Workload:
    """The pods one submitted object will create: a Deployment's template or a bare Pod."""

    kind: str
    name: str
    labels: dict
    replicas: int
    pod_spec: dict

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def containers(self) -> list[dict]:
        return [c for c in self.pod_spec.get("containers") or [] if isinstance(c, dict)]

    def named_ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for c in self.containers for p in c.get("ports") or []
                if isinstance(p, dict) and p.get("name") and isinstance(p.get("containerPort"), int)}

    def declared_ports(self) -> list[tuple[int, str]]:
        return [(p["containerPort"], str(p.get("name") or "")) for c in self.containers for p in c.get("ports") or []
                if isinstance(p, dict) and isinstance(p.get("containerPort"), int)]

    def listening(self) -> tuple[set[int] | None, str]:
        """The TCP ports the pods serve, when the command says so (agnhost), else (None, "")."""
        ports: set[int] = set()
        how: list[str] = []
        for container in self.containers:
            found, why = listen_ports(container)
            if found is None:
                return None, ""
            ports |= found
            how.append(why)
        return (ports, "; ".join(h for h in how if h)) if self.containers else (None, "")

    def port_list(self) -> str:
        ports = self.declared_ports()
        return ", ".join(f"{p} ({n or 'unnamed'})" for p, n in ports) or "none declared"


def workloads(objs: Iterable[dict]) -> list[Workload]:
    out: list[Workload] = []
    for obj in objs:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        if kind == "Pod":
            out.append(Workload("Pod", meta.get("name", "?"), dict(meta.get("labels") or {}), 1,
                                obj.get("spec") or {}))
        elif kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            spec = obj.get("spec") or {}
            template = spec.get("template") or {}
            replicas = spec.get("replicas", 1)
            out.append(Workload(kind, meta.get("name", "?"),
                                dict((template.get("metadata") or {}).get("labels") or {}),
                                replicas if isinstance(replicas, int) else 1, template.get("spec") or {}))
    return out


def _flag(tokens: Sequence[str], name: str) -> str | None:
    for i, token in enumerate(tokens):
        if token.startswith(f"{name}="):
            return token.split("=", 1)[1]
        if token == name and i + 1 < len(tokens):
            return tokens[i + 1]
    return None


def listen_ports(container: dict) -> tuple[set[int] | None, str]:
    """Ports an agnhost container listens on, read from its command line; (None, "") when unknown.

    ``netexec`` serves HTTP on --http-port (default 8080); ``serve-hostname`` on --port (default 9376);
    ``porter`` on each SERVE_PORT_<n> env var; ``pause`` on nothing. A ``sh -c "... agnhost netexec ..."``
    command line is read too.
    """
    image = str(container.get("image") or "")
    raw = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    tokens: list[str] = []
    for arg in raw:
        try:
            tokens.extend(shlex.split(arg) if " " in arg else [arg])
        except ValueError:
            tokens.append(arg)
    if "agnhost" not in image and not any(t.endswith("agnhost") for t in tokens):
        return None, ""
    sub = next((t for t in tokens if t in ("netexec", "serve-hostname", "porter", "pause")), None)
    if sub == "netexec":
        value = _flag(tokens, "--http-port")
        if value is None:
            return {8080}, "agnhost netexec serves HTTP on 8080 (its default)"
        if value.isdigit():
            return {int(value)}, f"agnhost netexec --http-port={value}"
        return None, ""
    if sub == "serve-hostname":
        value = _flag(tokens, "--port") or "9376"
        return ({int(value)}, f"agnhost serve-hostname --port={value}") if value.isdigit() else (None, "")
    if sub == "porter":
        ports = {int(m.group(1)) for e in container.get("env") or [] if isinstance(e, dict)
                 for m in [re.match(r"^SERVE_PORT_(\d+)$", str(e.get("name", "")))] if m}
        return ports, "agnhost porter (SERVE_PORT_* variables)"
    if sub == "pause":
        return set(), "agnhost pause serves nothing"
    return None, ""


def service_ports(svc: dict) -> list[dict]:
    return [p for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, dict)]


def target_of(port: dict) -> int | str:
    """A Service port's targetPort; Kubernetes defaults it to the port itself."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, str) and target.isdigit():
        return int(target)
    return target


def service_type(svc: dict) -> str:
    return str((svc.get("spec") or {}).get("type") or "ClusterIP")


@dataclass(frozen=True)
class Finding:
    message: str
    hint: str = ""


def selector_finding(svc: dict, wls: Sequence[Workload], namespace: str) -> Finding | None:
    """Why a Service selects no pod (None when it selects some)."""
    name = (svc.get("metadata") or {}).get("name", "?")
    selector = (svc.get("spec") or {}).get("selector") or {}
    existing = "; ".join(f"{format_labels(w.labels)} ({w.ref})" for w in wls) or "there are no pods at all"
    if not selector:
        return Finding(f"Service {name} has no selector, so it selects no pod and Kubernetes gives it no endpoints. "
                       f"Labels that exist: {existing}",
                       hint="spec.selector must list labels your pods carry (see the pod template's labels)")
    if not any(selects(selector, w.labels) for w in wls):
        return Finding(f"Service {name} selects {format_labels(selector)}, which selects no pod in {namespace}: "
                       f"every key and value must equal a pod's label, so the Service gets no endpoints. "
                       f"Labels that exist: {existing}",
                       hint="compare spec.selector with the pod template's metadata.labels, key and value")
    return None


def port_findings(svc: dict, wls: Sequence[Workload]) -> list[Finding]:
    """Where each Service port's targetPort lands in each selected workload, and whether anything listens there."""
    name = (svc.get("metadata") or {}).get("name", "?")
    selector = (svc.get("spec") or {}).get("selector") or {}
    chosen = [w for w in wls if selects(selector, w.labels)]
    out: list[Finding] = []
    for port in service_ports(svc):
        number = port.get("port")
        target = target_of(port)
        for wl in chosen:
            if isinstance(target, str):
                named = wl.named_ports()
                if target not in named:
                    out.append(Finding(
                        f"Service {name}: targetPort {target!r} names no container port in the pods of {wl.ref} "
                        f"(their ports: {wl.port_list()}), so those pods are left out of port {number}'s endpoints",
                        hint=f"a named targetPort must equal a container port's `name`: add `name: {target}` to "
                             f"the containerPort of every workload the Service selects"))
                    continue
                resolved = named[target]
            else:
                resolved = target
            listening, how = wl.listening()
            if listening is None or resolved in listening:
                continue
            serving = ", ".join(map(str, sorted(listening))) or "no port"
            via = f"targetPort {target!r} = {resolved}" if isinstance(target, str) else f"targetPort {target}"
            message = (f"Service {name} sends port {number} to {via}, but the pods of {wl.ref} are not listening on "
                       f"port {resolved}: they serve {serving} ({how}), so every connection would be refused")
            hint = "targetPort is the port the container listens on; port is the one clients use on the Service"
            if isinstance(target, int) and number in listening and number != resolved:
                message += (f". port and targetPort look swapped: `port` ({number}) is what clients connect to on "
                            f"the Service, `targetPort` is where the container listens ({serving})")
                hint = f"swap them: port: {target}, targetPort: {number}"
            out.append(Finding(message, hint))
    return out


def probe_window(probe_spec: dict) -> float:
    """Worst-case seconds from 'the check starts failing' to 'the pod is marked not ready'."""
    period = probe_spec.get("periodSeconds", 10)
    failures = probe_spec.get("failureThreshold", 3)
    period = period if isinstance(period, (int, float)) and period > 0 else 10
    failures = failures if isinstance(failures, (int, float)) and failures > 0 else 3
    return float(period * failures)


def _probe_text(p: dict) -> str:
    if "exec" in p:
        return "exec " + " ".join(map(str, (p.get("exec") or {}).get("command") or []))
    if "httpGet" in p:
        h = p.get("httpGet") or {}
        return f"httpGet {h.get('path', '/')} on port {h.get('port')}"
    if "tcpSocket" in p:
        return f"tcpSocket on port {(p.get('tcpSocket') or {}).get('port')}"
    return "probe"


# ---------------------------------------------------------------------------- per-exercise static rules
def _find_service(objs: Sequence[dict], name: str, namespace: str, why: str) -> dict:
    services = [o for o in objs if o.get("kind") == "Service"]
    svc = next((s for s in services if (s.get("metadata") or {}).get("name") == name), None)
    if svc is None:
        found = ", ".join((s.get("metadata") or {}).get("name", "?") for s in services) or "none"
        raise CheckFailed(f"no Service named {name} in your files (Services found: {found}): {why}",
                          hint=f"set metadata.name: {name}")
    return svc


def _raise(finding: Finding | None, evidence: Sequence[Evidence] = ()) -> None:
    if finding is not None:
        raise CheckFailed(finding.message, hint=finding.hint, evidence=tuple(evidence))


def _workloads_evidence(wls: Sequence[Workload]) -> Evidence:
    rows = []
    for w in wls:
        listening, how = w.listening()
        rows.append((w.ref, str(w.replicas), format_labels(w.labels), w.port_list(),
                     how if listening is not None else "unknown (not agnhost)"))
    return Evidence.table("Pods your files create", ("workload", "replicas", "labels", "container ports", "serves"),
                          rows)


def check_service(svc: dict, wls: Sequence[Workload], namespace: str) -> None:
    """The generic rules every selector-based Service must pass: it selects pods and reaches a listening port."""
    evidence = (_workloads_evidence(wls),)
    _raise(selector_finding(svc, wls, namespace), evidence)
    for finding in port_findings(svc, wls):
        _raise(finding, evidence)


def _require_port(svc: dict, number: int) -> dict:
    name = svc["metadata"].get("name")
    port = next((p for p in service_ports(svc) if p.get("port") == number), None)
    if port is None:
        have = ", ".join(str(p.get("port")) for p in service_ports(svc)) or "none"
        raise CheckFailed(f"Service {name} does not expose port {number} (its ports: {have}); the exercise asks "
                          f"for port {number}",
                          hint="`port` is what clients use; `targetPort` is where the pod listens")
    return port


def _summary(svc: dict, wls: Sequence[Workload]) -> str:
    selector = (svc.get("spec") or {}).get("selector") or {}
    chosen = [w for w in wls if selects(selector, w.labels)]
    pods = ", ".join(f"{w.replicas} x {w.ref}" for w in chosen)
    ports = ", ".join(f"{p.get('port')}->{target_of(p)}" for p in service_ports(svc))
    return f"Service {svc['metadata'].get('name')} selects {format_labels(selector)} ({pods}) and forwards {ports}"


def static_clusterip(objs: Sequence[dict], namespace: str) -> str:
    svc = _find_service(objs, "api-service", namespace,
                        f"pods reach it by the DNS names api-service, api-service.{namespace} and "
                        f"api-service.{namespace}.svc.{CLUSTER_DOMAIN}, which all come from the Service's name")
    wls = workloads(objs)
    check_service(svc, wls, namespace)
    if service_type(svc) != "ClusterIP":
        raise CheckFailed(f"Service api-service is type {service_type(svc)}; this exercise asks for a ClusterIP "
                          f"Service (the default type)", hint="type: ClusterIP, or leave type out")
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        raise CheckFailed("Service api-service is headless (clusterIP: None): it gets no virtual IP, so there is no "
                          "ClusterIP to reach", hint="remove clusterIP: None")
    port = _require_port(svc, 80)
    if target_of(port) != 8080 and isinstance(target_of(port), int):
        raise CheckFailed(f"Service api-service forwards port 80 to {target_of(port)}; the api pods serve 8080",
                          hint="targetPort: 8080")
    return _summary(svc, wls)


def static_headless(objs: Sequence[dict], namespace: str) -> str:
    wls = workloads(objs)
    named = _find_service(objs, "api-named", namespace, "the exercise's first Service is api-named")
    check_service(named, wls, namespace)
    port = _require_port(named, 80)
    if not isinstance(target_of(port), str):
        raise CheckFailed(
            f"Service api-named forwards port 80 to the number {target_of(port)}; the exercise asks for the port's "
            f"name: the v1 pods listen on 8080 and the api-v2 pod on 9090, and only a name is resolved per pod",
            hint="name the containerPort in both Deployments (e.g. name: http) and use targetPort: http")
    headless = _find_service(objs, "api-headless", namespace, "the exercise's second Service is api-headless")
    check_service(headless, wls, namespace)
    if (headless.get("spec") or {}).get("clusterIP") != "None":
        raise CheckFailed(
            "Service api-headless is not headless: without clusterIP: None it gets one virtual IP, and its DNS name "
            "answers with that single IP instead of the IPs of the ready pods",
            hint="add clusterIP: None under spec")
    return f"{_summary(named, wls)}; api-headless is headless (clusterIP: None)"


def static_nodeport(objs: Sequence[dict], namespace: str) -> str:
    svc = _find_service(objs, "api-nodeport", namespace, "the exercise's Service is api-nodeport")
    wls = workloads(objs)
    check_service(svc, wls, namespace)
    kind = service_type(svc)
    if kind not in ("NodePort", "LoadBalancer"):
        implicit = " (the default when `type` is left out)" if not (svc.get("spec") or {}).get("type") else ""
        raise CheckFailed(f"Service api-nodeport is type {kind}{implicit}: it gets a ClusterIP but opens no port on "
                          f"the nodes; the exercise asks for type NodePort",
                          hint="type: NodePort, and nodePort: 30080 on the port")
    port = _require_port(svc, 80)
    node_port = port.get("nodePort")
    low, high = NODE_PORT_RANGE
    if node_port is None:
        raise CheckFailed(f"api-nodeport sets no nodePort, so the API server picks a random one in {low}-{high}; "
                          f"the exercise asks for nodePort 30080", hint="nodePort: 30080 next to port and targetPort")
    if not isinstance(node_port, int) or not low <= node_port <= high:
        raise CheckFailed(explain_node_port_range(node_port), hint="nodePort: 30080")
    if node_port != 30080:
        raise CheckFailed(f"api-nodeport opens node port {node_port}; the exercise asks for nodePort 30080",
                          hint="nodePort: 30080")
    return f"{_summary(svc, wls)}; type {kind}, nodePort {node_port} on every node"


def explain_node_port_range(node_port: Any) -> str:
    low, high = NODE_PORT_RANGE
    return (f"nodePort {node_port} is outside the node-port range {low}-{high}: the API server refuses it. A NodePort "
            f"is opened on every node, so Kubernetes keeps these ports in their own range (kube-apiserver "
            f"--service-node-port-range, default {low}-{high}) where they cannot collide with ports the nodes' own "
            f"daemons use (22, 80, 443, 6443, 10250, ...)")


def static_loadbalancer(objs: Sequence[dict], namespace: str) -> str:
    svc = _find_service(objs, "api-lb", namespace, "the exercise's Service is api-lb")
    wls = workloads(objs)
    check_service(svc, wls, namespace)
    kind = service_type(svc)
    if kind != "LoadBalancer":
        what = {"NodePort": "it opens node ports but gets no external IP",
                "ClusterIP": "it is reachable only inside the cluster"}.get(kind, "it gets no external IP")
        raise CheckFailed(f"Service api-lb is type {kind}: {what}; the exercise asks for type LoadBalancer",
                          hint="type: LoadBalancer")
    _require_port(svc, 80)
    return f"{_summary(svc, wls)}; type LoadBalancer"


def static_externalname(objs: Sequence[dict], namespace: str) -> str:
    svc = _find_service(objs, "external-db", namespace,
                        f"pods look up the name external-db (external-db.{namespace}.svc.{CLUSTER_DOMAIN}), "
                        f"which comes from the Service's name")
    kind = service_type(svc)
    spec = svc.get("spec") or {}
    if kind != "ExternalName":
        raise CheckFailed(f"Service external-db is type {kind}; an alias for an outside host is type ExternalName",
                          hint="type: ExternalName and externalName: " + EXTERNAL_HOST)
    host = str(spec.get("externalName") or "")
    if "://" in host or "/" in host or ":" in host:
        raise CheckFailed(explain_external_name(host), hint=f"externalName: {EXTERNAL_HOST}")
    if host.rstrip(".").lower() != EXTERNAL_HOST:
        raise CheckFailed(f"external-db points to {host or '(nothing)'}; the exercise asks for {EXTERNAL_HOST}",
                          hint=f"externalName: {EXTERNAL_HOST}")
    if spec.get("selector"):
        return f"external-db is a CNAME for {host} (its selector is ignored: ExternalName Services have no endpoints)"
    return f"external-db is type ExternalName, a CNAME for {host}"


def explain_external_name(host: str) -> str:
    return (f"externalName {host!r} is a URL, not a host name: DNS can only alias a name to another name (a CNAME), "
            f"so the API server requires a lowercase RFC 1123 host name — no scheme (http://), port or path; the "
            f"client picks the protocol and port")


def static_readiness(objs: Sequence[dict], namespace: str) -> str:
    svc = _find_service(objs, "api-service", namespace, "the exercise's Service is api-service")
    wls = workloads(objs)
    check_service(svc, wls, namespace)
    selector = (svc.get("spec") or {}).get("selector") or {}
    windows = []
    for wl in (w for w in wls if selects(selector, w.labels)):
        for container in wl.containers:
            cname = container.get("name", "?")
            ready = container.get("readinessProbe")
            if not isinstance(ready, dict):
                if isinstance(container.get("livenessProbe"), dict):
                    raise CheckFailed(
                        f"container {cname} of {wl.ref} has a livenessProbe but no readinessProbe: a failing "
                        f"livenessProbe restarts the container, it does not take the pod out of the Service's "
                        f"endpoints; only a readinessProbe does",
                        hint="rename livenessProbe to readinessProbe (a pod may have both; this exercise needs "
                             "readiness)")
                raise CheckFailed(
                    f"container {cname} of {wl.ref} has no readinessProbe: Kubernetes then counts a running "
                    f"container as ready, so a pod whose app is broken ({READY_FILE} gone) keeps receiving traffic",
                    hint=f"add a readinessProbe that fails when {READY_FILE} is missing (exec: cat {READY_FILE})")
            window = probe_window(ready)
            if window > MAX_UNREADY_SECONDS:
                period = ready.get("periodSeconds", 10)
                failures = ready.get("failureThreshold", 3)
                defaults = ", both defaults" if "periodSeconds" not in ready and "failureThreshold" not in ready else ""
                raise CheckFailed(
                    f"the readinessProbe of {wl.ref} ({_probe_text(ready)}) takes up to {window:g} s to notice a "
                    f"sick pod (periodSeconds {period} x failureThreshold {failures}{defaults}); "
                    f"a broken pod stays an endpoint for up to {window:g} s, the exercise asks for at most "
                    f"{MAX_UNREADY_SECONDS} s",
                    hint="set periodSeconds and failureThreshold so that their product is at most "
                         f"{MAX_UNREADY_SECONDS} (e.g. 1 and 1)")
            windows.append(f"{wl.ref}: {_probe_text(ready)}, noticed within {window:g} s")
    return f"{_summary(svc, wls)}; readiness: {'; '.join(windows)}"


def explain_admission(message: str) -> str:
    """A lab-specific explanation of an API-server rejection (for an engine hook; empty when nothing to add)."""
    m = re.search(r"nodePort: Invalid value: (\d+): provided port is not in the valid range", message)
    if m:
        return explain_node_port_range(int(m.group(1)))
    if "may not be used when `type` is 'ClusterIP'" in message:
        return ("without `type` a Service is ClusterIP, which opens no node port, so nodePort is refused: add "
                "type: NodePort")
    m = re.search(r'externalName: Invalid value: "([^"]*)"', message)
    if m:
        return explain_external_name(m.group(1))
    return ""


# ================================================================================ live (cluster)
@dataclass(frozen=True)
class Endpoint:
    ip: str
    pod: str
    node: str
    ready: bool
    ports: tuple[tuple[str, int], ...] = ()


def read_endpoints(cluster, namespace: str, service: str) -> list[Endpoint]:
    out: list[Endpoint] = []
    for sl in cluster.list_endpointslices(namespace, service) or []:
        ports = tuple((p.name or "", p.port) for p in (sl.ports or []) if p.port is not None)
        for ep in sl.endpoints or []:
            cond = ep.conditions
            ready = cond is None or cond.ready is not False
            pod = ep.target_ref.name if ep.target_ref is not None else ""
            for address in ep.addresses or []:
                out.append(Endpoint(address, pod, ep.node_name or "", ready, ports))
    return sorted(out, key=lambda e: e.pod or e.ip)


def _is_ready(pod) -> bool:
    if pod.metadata.deletion_timestamp or not pod.status:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def learner_pods(cluster, namespace: str) -> list:
    return [p for p in cluster.list_pods(namespace) if not (p.metadata.labels or {}).get(probe.PROBE_LABEL)]


def _pods_evidence(pods, title: str = "Pods in the namespace") -> Evidence:
    rows = [(p.metadata.name, format_labels(p.metadata.labels), "yes" if _is_ready(p) else "no",
             (p.status.pod_ip or "") if p.status else "", p.spec.node_name or "") for p in pods]
    return Evidence.table(title, ("pod", "labels", "ready", "IP", "node"), rows)


def _endpoints_evidence(service: str, eps: Sequence[Endpoint]) -> Evidence:
    rows = [(e.pod or "-", e.ip, e.node or "-", "yes" if e.ready else "no",
             ", ".join(f"{n or '-'}={p}" for n, p in e.ports) or "-") for e in eps]
    return Evidence.table(f"EndpointSlices of Service {service}", ("pod", "address", "node", "ready", "ports"), rows)


def expect_endpoints(ctx, service: str,
                     timeout: float | None = None) -> tuple[list[Endpoint], dict[str, Any], Evidence]:
    """The Service's ready endpoints must be exactly the ready pods its selector picks (EndpointSlices can lag
    pod readiness by a moment: poll briefly). Returns (ready endpoints, {pod name: pod}, evidence)."""
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    svc = cluster.get_service(ns, service)
    if svc is None:
        raise CheckFailed(f"no Service named {service} in namespace {ns}", hint=f"metadata.name: {service}")
    selector = svc.spec.selector or {}
    deadline = time.monotonic() + (ENDPOINTS_SETTLE if timeout is None else timeout)
    while True:
        pods = learner_pods(cluster, ns)
        chosen = {p.metadata.name: p for p in pods if selects(selector, p.metadata.labels) and _is_ready(p)}
        eps = read_endpoints(cluster, ns, service)
        ready = [e for e in eps if e.ready]
        if (chosen and {e.pod for e in ready} == set(chosen)) or time.monotonic() >= deadline:
            break
        if not chosen and pods and all(_is_ready(p) for p in pods):
            break  # nothing selected and nothing still starting: waiting cannot help
        time.sleep(0.3)
    evidence = _endpoints_evidence(service, eps)
    if not chosen:
        existing = pods_with_labels(pods, none="no pods")
        raise CheckFailed(
            f"Service {service} selects {format_labels(selector) if selector else '(no selector)'}, which selects no "
            f"pod that is ready, so it has no endpoints. Labels that exist: {existing}",
            hint=f"`kubectl get pods -n {ns} --show-labels` and `kubectl get endpointslices -n {ns}`",
            evidence=(_pods_evidence(pods), evidence))
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
            hint="a named targetPort must exist in every selected pod; `kubectl describe endpointslices -n "
                 f"{ns} -l kubernetes.io/service-name={service}`",
            evidence=(_pods_evidence(pods), evidence))
    return ready, chosen, evidence


# ------------------------------------------------------------------------- the grader's client pod
def start_client(ctx) -> str:
    """Create the grader's client pod (agnhost: sh, curl, nslookup, dig) without waiting; returns "ns/name"."""
    ns = ctx.spec.default_namespace
    image = probe.agnhost_image(ctx.cluster)
    ctx.cluster.apply([probe.probe_pod(ns, CLIENT_POD, image)])
    return f"{ns}/{CLIENT_POD}"


def wait_client(ctx, timeout: float = CLIENT_TIMEOUT) -> str:
    """Wait until the client container runs (exec works then; Ready is not needed)."""
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


# ------------------------------------------------------------------------- HTTP spread
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


def run_spread(runner, specs: Sequence[probe.ProbeSpec], deadline_s: float = 15.0) -> Spread:
    """Run the requests; retry only the failed ones (a DNS answer cached from an earlier run lives up to 5 s)."""
    results = probe.probe_until(runner, specs, lambda s: Outcome.ALLOWED, attempts=3, deadline_s=deadline_s,
                                pause_s=1.0)
    return Spread(list(results))


def spread_evidence(spread: Spread, pods: dict[str, Any], title: str) -> Evidence:
    targets = list(spread.by_target())
    names = sorted(set(pods) | set(spread.answers()))
    rows = []
    for name in names:
        pod = pods.get(name)
        node = pod.spec.node_name if pod is not None else "(not a selected pod)"
        counts = [str(spread.answers(t).get(name, 0)) for t in targets]
        rows.append((name, node or "-", *counts, str(spread.answers().get(name, 0))))
    failed = [str(len(spread.failures(t))) for t in targets]
    if any(f != "0" for f in failed):
        rows.append(("(no answer)", "-", *failed, str(len(spread.failures()))))
    return Evidence.table(title, ("answered by", "node", *targets, "total"), rows)


def judge_spread(spread: Spread, pods: dict[str, Any], *, what: str, target_port: Any = None,
                 evidence: Sequence[Evidence] = (), require_all: bool = True) -> str:
    """Fail unless every request was answered by a selected pod and (``require_all``) every pod answered.
    Returns a one-line distribution summary."""
    table = spread_evidence(spread, pods, f"Which replica answered GET {HOSTNAME_PATH} ({what})")
    ev = (table, *evidence)
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
            raise CheckFailed(f"the grader's probe to {target} could not run ({detail}); this says nothing about "
                              f"your manifests", hint="run `make doctor`, then grade again", evidence=(*ev, reproduce))
        if "refused" in detail and target_port is not None:
            raise CheckFailed(
                f"{len(bad)} of {len(results)} requests to {target} were refused although the Service has "
                f"endpoints: the pods are not listening on port {target_port} (the targetPort)",
                hint="targetPort must be the port the container serves", evidence=(*ev, reproduce))
        raise CheckFailed(f"{len(bad)} of {len(results)} requests to {target} failed: {detail}",
                          hint="`kubectl get endpointslices` shows where the Service sends traffic",
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


# ------------------------------------------------------------------------- outside the cluster
def node_addresses(cluster) -> list[tuple[str, str]]:
    out = []
    for node in cluster.list_nodes():
        ip = next((a.address for a in (node.status.addresses or []) if a.type == "InternalIP"), "")
        if ip:
            out.append((node.metadata.name, ip))
    return sorted(out)


def outside_runner(ctx):
    """(runner, note): the docker client on the cluster's network, or — when Python cannot reach Docker — the
    grader's client pod inside the cluster, with a note saying so."""
    from graders import outside

    try:
        return outside.OutsideRunner(ctx.cluster), ""
    except outside.OutsideUnavailable as error:
        start_client(ctx)
        source = wait_client(ctx)
        note = (f"could not start a client outside the cluster ({error.message}); probed from the grader's pod "
                f"{source} instead")

        class _Inside:
            def __init__(self, runner):
                self.runner = runner

            def spec(self, kind, target, port=None, path="/", label=""):
                return probe.ProbeSpec(source, kind, target, port, path=path, label=label)

            def run(self, specs):
                return self.runner.run(specs)

        return _Inside(ctx.prober), note


# ================================================================================ exercises
def _static(fn):
    def step(ctx) -> StepResult:
        return StepResult("static", True, fn(_objects(ctx), ctx.spec.default_namespace))
    step.__name__ = fn.__name__
    return step


def clusterip_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    source = start_client(ctx)
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-service")
    svc = ctx.cluster.get_service(ns, "api-service")
    ip = svc.spec.cluster_ip
    targets = [(f"ClusterIP {ip}:80", ip, 80), ("api-service:80", "api-service", 80),
               (f"api-service.{ns}:80", f"api-service.{ns}", 80),
               (f"api-service.{ns}.svc.{CLUSTER_DOMAIN}:80", f"api-service.{ns}.svc.{CLUSTER_DOMAIN}", 80)]
    wait_client(ctx)
    spread = run_spread(ctx.prober, http_specs(source, targets, REQUESTS_PER_TARGET))
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    summary = judge_spread(spread, pods, what="api-service by ClusterIP and by its 3 DNS names",
                           target_port=port.target_port if port else None, evidence=(ep_evidence,))
    return StepResult("live", True,
                      f"api-service ({ip}) has {len(ready)} ready endpoints = the 3 api pods, and answered by "
                      f"ClusterIP and by api-service, api-service.{ns}, api-service.{ns}.svc.{CLUSTER_DOMAIN}: "
                      f"{summary}",
                      evidence=(spread_evidence(spread, pods, f"Which replica answered GET {HOSTNAME_PATH}"),
                                ep_evidence,
                                Evidence.command("Try it", probe.reproduce_command(
                                    http_specs(source, targets[1:2], 1)[0], ctx.cluster.context))))


def headless_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    source = start_client(ctx)
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-named")
    headless = ctx.cluster.get_service(ns, "api-headless")
    if headless is None:
        raise CheckFailed(f"no Service named api-headless in namespace {ns}", hint="metadata.name: api-headless")
    if headless.spec.cluster_ip != "None":
        raise CheckFailed(f"Service api-headless has ClusterIP {headless.spec.cluster_ip}, so it is not headless; "
                          f"set clusterIP: None", hint="clusterIP: None (it cannot be changed on an existing Service)")
    h_ready, h_pods, h_evidence = expect_endpoints(ctx, "api-headless")
    fqdn = f"api-headless.{ns}.svc.{CLUSTER_DOMAIN}"
    wait_client(ctx)
    dns_spec = probe.ProbeSpec(source, "dns", fqdn, label=f"DNS {fqdn}")
    specs = [dns_spec, *http_specs(source, [("api-named:80", "api-named", 80)], SPREAD_REQUESTS)]
    results = probe.probe_until(ctx.prober, specs, lambda s: Outcome.ALLOWED, attempts=3, deadline_s=15,
                                pause_s=1.0)
    dns, http = results[0], results[1:]
    want = sorted(e.ip for e in h_ready)
    for _ in range(3):  # CoreDNS caches an answer up to 5 s: one from an earlier run may still be served
        if dns.outcome is not Outcome.ALLOWED or sorted(dns.addresses) == want:
            break
        time.sleep(2.0)
        dns = ctx.prober.run([dns_spec])[0]
    ports = {e.pod: "/".join(str(p) for _, p in e.ports) for e in ready}
    summary = judge_spread(Spread(list(http)), pods, what="api-named (targetPort by name)", evidence=(ep_evidence,))
    got = sorted(dns.addresses)
    dns_table = Evidence.table(f"DNS answer for {fqdn}", ("address", "pod"),
                               [(a, next((e.pod for e in h_ready if e.ip == a), "(not a ready pod)")) for a in got])
    reproduce = Evidence.command("Reproduce", dns.command)
    if dns.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"the DNS lookup of {fqdn} failed ({dns.detail})",
                          hint="a headless Service with ready endpoints has A records for each pod",
                          evidence=(h_evidence, reproduce))
    if got != want:
        raise CheckFailed(f"{fqdn} answers with {', '.join(got) or 'no address'}; the ready pods are "
                          f"{', '.join(want)}: a headless Service's DNS name must list every ready pod",
                          evidence=(dns_table, h_evidence, reproduce))
    port_text = ", ".join(f"{pod} on {port}" for pod, port in sorted(ports.items()))
    return StepResult("live", True,
                      f"api-named resolves targetPort by name per pod ({port_text}) and {summary}; {fqdn} answers "
                      f"with the {len(got)} ready pod IPs {', '.join(got)}",
                      evidence=(dns_table, spread_evidence(Spread(list(http)), pods, "api-named: which pod answered"),
                                ep_evidence, reproduce))


def _service_table(svc, external: str = "") -> Evidence:
    rows = [("type", svc.spec.type), ("ClusterIP", svc.spec.cluster_ip or "-")]
    for p in svc.spec.ports or []:
        rows.append((f"port {p.port}", f"targetPort {p.target_port}, nodePort {p.node_port or '-'}"))
    if svc.spec.type == "LoadBalancer":
        rows.append(("external IP", external or "<pending>"))
    return Evidence.table(f"Service {svc.metadata.name}: what Kubernetes allocated", ("field", "value"), rows)


def _judge_outside(results, pods: dict, label_of, what: str, evidence: Sequence[Evidence],
                   target_port: Any = None) -> list[Evidence]:
    """Rows (address, outcome, answered by) and raise on the first address that did not reach a selected pod."""
    rows = []
    by_target: dict[str, list] = {}
    for r in results:
        by_target.setdefault(r.spec.target_label, []).append(r)
    failure = None
    for target, rs in by_target.items():
        ok = [r for r in rs if r.outcome is Outcome.ALLOWED and r.output.strip() in pods]
        answered = Counter(r.output.strip()[:60] for r in rs if r.outcome is Outcome.ALLOWED)
        bad = [r for r in rs if r not in ok]
        rows.append((label_of(target), f"{len(ok)}/{len(rs)}",
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
        raise CheckFailed(f"{label_of(target)}: {nbad} of {total} requests from outside the cluster failed ({reason})",
                          hint="`kubectl get svc,endpointslices -n <namespace>`; the Reproduce line runs the same "
                               "request from a container on the cluster's docker network",
                          evidence=(table, *evidence, Evidence.command("Reproduce", first.command)))
    return [table]


def nodeport_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-nodeport")
    svc = ctx.cluster.get_service(ns, "api-nodeport")
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    node_port = port.node_port if port is not None else None
    if svc.spec.type not in ("NodePort", "LoadBalancer") or not node_port:
        raise CheckFailed(f"Service api-nodeport is type {svc.spec.type} and has no node port",
                          hint="type: NodePort, nodePort: 30080")
    nodes = node_addresses(ctx.cluster)
    runner, note = outside_runner(ctx)
    specs = [runner.spec("http", ip, node_port, path=HOSTNAME_PATH, label=f"{name} {ip}:{node_port}")
             for name, ip in nodes for _ in range(3)]
    results = probe.probe_until(runner, specs, lambda s: Outcome.ALLOWED, attempts=2, deadline_s=15, pause_s=1)
    evidence = _judge_outside(results, pods, lambda t: t, f"NodePort {node_port} on every node",
                              (_service_table(svc), ep_evidence), target_port=port.target_port)
    answered = Counter(r.output.strip() for r in results)
    where = "outside the cluster (a container on the docker network)" if not note else "inside the cluster"
    return StepResult("live", True,
                      f"NodePort {node_port} answered on all {len(nodes)} nodes "
                      f"({', '.join(ip for _, ip in nodes)}) from {where}: {len(results)} requests reached "
                      f"{len(answered)} of the {len(pods)} api pods" + (f". Note: {note}" if note else ""),
                      evidence=(*evidence, _service_table(svc), ep_evidence,
                                Evidence.command("Try it", results[0].command)))


def loadbalancer_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-lb")
    deadline = time.monotonic() + LB_IP_TIMEOUT
    while True:
        svc = ctx.cluster.get_service(ns, "api-lb")
        ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
        external = next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), "")
        if external or time.monotonic() >= deadline or svc.spec.type != "LoadBalancer":
            break
        time.sleep(0.5)
    table = _service_table(svc, external)
    if svc.spec.type != "LoadBalancer":
        raise CheckFailed(f"Service api-lb is type {svc.spec.type}; the exercise asks for type LoadBalancer",
                          hint="type: LoadBalancer", evidence=(table,))
    if not external:
        raise CheckFailed(
            f"Service api-lb has no external IP after {LB_IP_TIMEOUT:g} s (EXTERNAL-IP <pending>): no load-balancer "
            f"controller assigned one. On the course cluster MetalLB does that",
            hint="`kubectl -n metallb-system get pods` and `kubectl get ipaddresspools -A`; `make doctor` checks it",
            evidence=(table,))
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    runner, note = outside_runner(ctx)
    specs = [runner.spec("http", external, 80, path=HOSTNAME_PATH, label=f"LB {external}:80") for _ in range(6)]
    nodes = node_addresses(ctx.cluster)
    extra = []
    if port is not None and port.node_port and nodes:
        extra = [runner.spec("http", nodes[0][1], port.node_port, path=HOSTNAME_PATH,
                             label=f"NodePort {nodes[0][1]}:{port.node_port} (also allocated)")]
    results = probe.probe_until(runner, specs + extra, lambda s: Outcome.ALLOWED, attempts=2, deadline_s=15,
                                pause_s=1)
    lb_results, np_results = results[:len(specs)], results[len(specs):]
    evidence = _judge_outside(lb_results, pods, lambda t: t, f"load-balancer IP {external}", (table, ep_evidence),
                              target_port=port.target_port if port is not None else None)
    answered = Counter(r.output.strip() for r in lb_results)
    also = ""
    if np_results:
        r = np_results[0]
        also = (f"; its NodePort {port.node_port} answers too ({r.output.strip()})" if r.outcome is Outcome.ALLOWED
                else f"; its NodePort {port.node_port} did not answer ({r.detail})")
    where = "outside the cluster (a container on the docker network)" if not note else "inside the cluster"
    return StepResult("live", True,
                      f"api-lb got external IP {external}; from {where} {len(lb_results)} requests to "
                      f"{external}:80 reached {len(answered)} of the {len(pods)} api pods. It also has ClusterIP "
                      f"{svc.spec.cluster_ip} and NodePort {port.node_port if port else '-'}{also}"
                      + (f". Note: {note}" if note else ""),
                      evidence=(table, *evidence, ep_evidence, Evidence.command("Try it", lb_results[0].command)))


def dig_argv(name: str, qtype: str = "CNAME", search: bool = False) -> list[str]:
    return ["dig", "+noall", "+answer", "+time=2", "+tries=2", *(["+search"] if search else []), "-t", qtype, name]


def parse_dig_answer(text: str, qtype: str = "CNAME") -> list[tuple[str, str]]:
    """(owner, data) pairs of the answer records of one type, from `dig +noall +answer` (or nslookup's
    `canonical name =` lines)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[2] == "IN" and fields[3] == qtype:
            out.append((fields[0].rstrip("."), fields[4].rstrip(".")))
        elif qtype == "CNAME" and "canonical name =" in line:
            owner, _, target = line.partition("canonical name =")
            out.append((owner.strip().rstrip("."), target.strip().rstrip(".")))
    return out


def externalname_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    source = start_client(ctx)
    svc = cluster.get_service(ns, "external-db")
    if svc is None:
        raise CheckFailed(f"no Service named external-db in namespace {ns}", hint="metadata.name: external-db")
    if svc.spec.type != "ExternalName":
        raise CheckFailed(f"Service external-db is type {svc.spec.type}, not ExternalName", hint="type: ExternalName")
    fqdn = f"external-db.{ns}.svc.{CLUSTER_DOMAIN}"
    pod = wait_client(ctx).split("/", 1)[1]
    # A CNAME query is answered by CoreDNS's kubernetes plugin itself: nothing is forwarded, nothing leaves.
    queries = [dig_argv(fqdn), dig_argv("external-db", search=True)]
    script = "; ".join(" ".join(shlex.quote(a) for a in q) + " 2>&1 || nslookup -type=CNAME "
                       + shlex.quote(q[-1]) + " 2>&1; echo @k8slab-end" for q in queries)
    for attempt in range(3):  # CoreDNS caches answers up to 5 s: an earlier run's answer may still be served
        rc, out, err = cluster.exec(ns, pod, ["sh", "-c", script], timeout=15)
        blocks = out.split("@k8slab-end")
        found = {t.lower() for block in blocks[:2] for _, t in parse_dig_answer(block)}
        if found == {EXTERNAL_HOST} or attempt == 2:
            break
        time.sleep(2.0)
    reproduce = Evidence.command("Reproduce", _kubectl_exec(cluster, ns, pod, queries[0]))
    answers = [parse_dig_answer(b) for b in blocks[:2]]
    rows = [(" ".join(q[-4:] if "+search" in q else q[-3:]),
             ", ".join(f"{o} -> {t}" for o, t in a) or (b.strip().splitlines()[-1][:80] if b.strip() else "no answer"))
            for q, a, b in zip(queries, answers, blocks)]
    table = Evidence.table("DNS answers inside the cluster (CNAME queries)", ("query", "answer"), rows)
    if rc not in (0, 1) and not any(answers):
        raise CheckFailed(f"the grader's DNS lookup in {source} could not run (exit {rc}: {(err or out)[-200:]}); "
                          f"this says nothing about your manifests", hint="run `make doctor`", evidence=(reproduce,))
    targets = {t.lower() for a in answers for _, t in a}
    if not targets:
        raise CheckFailed(f"a DNS lookup of {fqdn} inside the cluster returned no CNAME",
                          hint="an ExternalName Service is answered as a CNAME to spec.externalName",
                          evidence=(table, reproduce))
    if targets != {EXTERNAL_HOST}:
        raise CheckFailed(f"inside the cluster, external-db points to {', '.join(sorted(targets))} (CNAME); the "
                          f"exercise asks for {EXTERNAL_HOST}", hint=f"externalName: {EXTERNAL_HOST}",
                          evidence=(table, reproduce))
    return StepResult("live", True,
                      f"inside the cluster, {fqdn} (and the short name external-db) is a CNAME for {EXTERNAL_HOST}: "
                      f"no ClusterIP, no endpoints, no proxying — the client resolves the real host itself "
                      f"(only the DNS answer was read; no traffic left the cluster)",
                      evidence=(table, reproduce))


def _kubectl_exec(cluster, ns: str, pod: str, argv: Sequence[str]) -> str:
    from graders.cluster import kubectl_exec_command

    return kubectl_exec_command(cluster.context, ns, pod, argv)


def readiness_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    source = start_client(ctx)
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-service")
    wait_client(ctx)
    target = [("api-service:80", "api-service", 80)]
    before = run_spread(ctx.prober, http_specs(source, target, SPREAD_REQUESTS))
    summary = judge_spread(before, pods, what="api-service, all pods healthy", evidence=(ep_evidence,))
    victim = sorted(pods)[0]
    rc, _, err = cluster.exec(ns, victim, ["rm", "-f", READY_FILE], timeout=10)
    if rc != 0:
        raise CheckFailed(f"could not remove {READY_FILE} in Pod {ns}/{victim} (exit {rc}: {err.strip()[:200]}); the "
                          f"container must run a shell image with {READY_FILE} (keep the starter's command)",
                          hint=f"keep `touch {READY_FILE} && exec /agnhost netexec ...` as the container's command")
    started = time.monotonic()
    left_after = None
    while time.monotonic() - started < LEAVE_DEADLINE:
        eps = read_endpoints(cluster, ns, "api-service")
        if not any(e.pod == victim and e.ready for e in eps):
            left_after = time.monotonic() - started
            break
        time.sleep(0.25)
    eps = read_endpoints(cluster, ns, "api-service")
    ev_after = _endpoints_evidence("api-service", eps)
    if left_after is None:
        spec_probe = next((c.readiness_probe for c in cluster.get_pod(ns, victim).spec.containers
                           if c.readiness_probe is not None), None)
        what = "it has no readinessProbe" if spec_probe is None else \
            "its readinessProbe keeps passing: it must check the app's state (here: that " + READY_FILE + " exists)"
        raise CheckFailed(
            f"Pod {victim} is still a ready endpoint of api-service {LEAVE_DEADLINE:g} s after its {READY_FILE} was "
            f"removed: {what}, so it keeps receiving traffic",
            hint=f"readinessProbe: exec: command: [cat, {READY_FILE}] with periodSeconds: 1, failureThreshold: 1",
            evidence=(ev_after, Evidence.command("Make a pod sick yourself",
                                                 _kubectl_exec(cluster, ns, victim, ["rm", READY_FILE]))))
    healthy = {name: pod for name, pod in pods.items() if name != victim}
    after = Spread()
    for _ in range(4):  # kube-proxy may need a moment to drop the endpoint from its rules: retry while it gets traffic
        after = run_spread(ctx.prober, http_specs(source, target, SPREAD_REQUESTS))
        if not after.answers().get(victim):
            break
        time.sleep(1.0)
    hits = after.answers().get(victim, 0)
    if hits:
        raise CheckFailed(f"Pod {victim} left the endpoints after {left_after:.1f} s but still received {hits} of "
                          f"{len(after.results)} requests: kube-proxy did not update its rules",
                          hint="`make doctor`", evidence=(spread_evidence(after, pods, "after the pod became unready"),
                                                          ev_after))
    after_summary = judge_spread(after, healthy, what=f"api-service with {victim} unready", evidence=(ev_after,),
                                 require_all=True)
    cluster.exec(ns, victim, ["touch", READY_FILE], timeout=10)  # heal it; the namespace is deleted next anyway
    return StepResult("live", True,
                      f"before: {summary}. After {READY_FILE} was removed in {victim}, it left the endpoints within "
                      f"{left_after:.1f} s and got none of the next {len(after.results)} requests "
                      f"({after_summary})",
                      evidence=(spread_evidence(before, pods, "before: which replica answered"),
                                spread_evidence(after, pods, f"after {victim} became unready"), ev_after))


EXERCISES = {
    "clusterip": Exercise(static=_static(static_clusterip), live=clusterip_live),
    "headless": Exercise(static=_static(static_headless), live=headless_live),
    "nodeport": Exercise(static=_static(static_nodeport), live=nodeport_live),
    "loadbalancer": Exercise(static=_static(static_loadbalancer), live=loadbalancer_live),
    "externalname": Exercise(static=_static(static_externalname), live=externalname_live),
    "readiness": Exercise(static=_static(static_readiness), live=readiness_live),
}
