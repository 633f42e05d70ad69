"""Lab 03-services: ClusterIP, targetPort by name + headless, NodePort, LoadBalancer, ExternalName, readiness.

Every exercise is graded by behaviour, at the highest step of the evidence ladder that explains a failure:

* **static** (no traffic) reads the learner's manifests the way the API server and the EndpointSlice controller
  will: which pods a Service's selector picks (and, when none, which labels do exist), which port a (named)
  targetPort resolves to in each selected pod template and whether that container listens there (agnhost
  ``netexec --http-port``), the Service type, nodePort, externalName and the readiness probe's timing.
* **break-fix** starts from a broken setup (the starter, deployed as is): the Service catalog has no endpoints.
  Judged like the rest by traffic; its failure shows only the symptom while the files are unchanged, and the
  symptom with every cause the files show once they were edited.
* **live** looks at what the cluster really does: the EndpointSlices must list exactly the ready pods the
  selector picks; HTTP ``GET /hostname`` through every path (ClusterIP, the three DNS names, the named port,
  every node's NodePort and the load-balancer IP *from outside the cluster*) must reach the selected pods, with
  the distribution over replicas reported; DNS answers are read (the headless A records, the ExternalName
  CNAME); and a pod whose readiness probe starts failing must turn ready=false in the EndpointSlice and stop
  receiving traffic.
  When a live check fails, it also names any field of the Service that hands the traffic to other pods or another
  controller (sessionAffinity, internal/externalTrafficPolicy, loadBalancerClass, publishNotReadyAddresses).

Probes are batched: all in-cluster requests of one check run in one exec in the grader's client pod (started
at the beginning of the live step, overlapping the API reads); all outside requests run in one short-lived
container on the cluster's docker network (``graders.outside``).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graders import probe
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.labels import format_labels
from graders.labs import _kit
from graders.labs._kit import (
    HOSTNAME_PATH, Finding, Spread, as_deployed, context_of, kubectl, symptom_and_causes,
    check_service, endpoints_evidence, expect_endpoints, explain_service_rejection,
    http_specs, is_ready, judge_outside, judge_spread, learner_pods, live_service, naming_traffic_fields,
    outside_vantage, pods_evidence, port_field, problem, require_cluster_ip, require_port, require_service,
    run_spread, selected, selector_finding, selector_of, service_ports, service_summary, service_table, service_type,
    spread_evidence, start_client, target_of, wait_client, workloads_evidence)
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.netpol.selectors import service_selects
from graders.probe import ProbeResult
from graders.questions import Fact, Question, judge as judge_answers, not_observable, observed, seen_fact
from graders.workloads import Workload, cite, workloads

LAB_ID = "03-services"

CLUSTER_DOMAIN = "cluster.local"
NODE_PORT_RANGE = (30000, 32767)
EXTERNAL_HOST = "db.prod.example.com"
# First-failure hints point at the field and the concept; the line to type is hint()'s last level (hints.yaml).
NODEPORT_HINT = ("`type` decides where a Service is reachable; the node-port type also takes a nodePort on its "
                 "port entry")
LOADBALANCER_HINT = ("`type` decides where a Service is reachable; one type asks the cluster's load balancer "
                     "(MetalLB) for an external IP")
EXTERNALNAME_HINT = "an alias for an outside host is a Service type of its own, with the host's name in one field"
EXTERNAL_HOST_HINT = ("externalName holds the outside host's name exactly as the exercise gives it: no scheme, port "
                      "or path")
READY_FILE = "/tmp/ready"
MAX_UNREADY_SECONDS = 5       # the readiness exercise's target: a sick pod turns ready=false in the EndpointSlice within 5 s
LEAVE_DEADLINE = 10.0         # how long the live check waits for it (target + probe/slice/kube-proxy lag)
REQUESTS_PER_TARGET = 12      # per address; 4 addresses x 12 = 48 requests: P(a replica never hit) ~ 1e-8
SPREAD_REQUESTS = 36          # to one address: P(one of 3 replicas never hit) = 3 x (2/3)^36 ~ 1e-6
LB_IP_TIMEOUT = 20.0
LB_CLASS_TIMEOUT = 5.0        # with a loadBalancerClass MetalLB never answers: no need to wait the full time
API_PODS = {"app": "api"}     # the headless exercise's Services must reach every pod of both versions


def _answered(spec: probe.ProbeSpec) -> Outcome:
    """What every probe of this lab expects (for ``probe_until``)."""
    return Outcome.ALLOWED


# ================================================================================ static (the files)
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


def static_clusterip(ms: Sequence[Manifest], namespace: str) -> str:
    svc = require_service(ms, "api-service",
                          f"pods reach it by the DNS names api-service, api-service.{namespace} and "
                          f"api-service.{namespace}.svc.{CLUSTER_DOMAIN}, which all come from the Service's name")
    wls = workloads(ms)
    check_service(svc, wls, namespace)
    require_cluster_ip(svc)
    port = require_port(svc, 80, "the exercise asks for port 80")
    if target_of(port) != 8080 and isinstance(target_of(port), int):
        raise problem(svc, port_field(svc, port, "targetPort"),
                      f"forwards port 80 to {target_of(port)}; the api pods serve 8080", hint="targetPort: 8080")
    return service_summary(svc, wls)


def _require_every_version(svc: Manifest, wls: Sequence[Workload], namespace: str) -> None:
    """The Service must select pods, and every api pod (v1 and v2) among them."""
    finding = selector_finding(svc, wls, namespace)
    if finding is not None:
        raise CheckFailed(finding.message, hint=finding.hint, evidence=(workloads_evidence(wls),))
    left_out = [w.ref for w in wls if service_selects(API_PODS, w.labels) and w not in selected(svc, wls)]
    if left_out:
        raise problem(svc, ("spec", "selector"),
                      f"selects {format_labels(svc.obj['spec']['selector'])}, which leaves out the pods of "
                      f"{', '.join(left_out)}: the exercise asks for every api pod ({format_labels(API_PODS)}), both "
                      f"versions, behind one Service",
                      hint="select only the label(s) both versions share")


def static_headless(ms: Sequence[Manifest], namespace: str) -> str:
    wls = workloads(ms)
    named = require_service(ms, "api-named", "the exercise's first Service is api-named")
    _require_every_version(named, wls, namespace)
    port = require_port(named, 80, "the exercise asks for port 80")
    if not isinstance(target_of(port), str):
        # before the port check: a number can only be right for one version, and "listen on 9090" would break v1
        raise problem(named, port_field(named, port, "targetPort"),
                      f"forwards port 80 to the number {target_of(port)}; the exercise asks for the port's name: the "
                      f"v1 pods listen on 8080 and the api-v2 pod on 9090, and a number is the same port in every "
                      f"pod, while a name is resolved per pod",
                      hint="give the containerPort of both Deployments the same `name`, and use that name as "
                           "targetPort")
    check_service(named, wls, namespace)
    if (named.obj.get("spec") or {}).get("clusterIP") == "None":
        raise problem(named, ("spec", "clusterIP"),
                      "is headless too: a headless Service has no virtual IP, so nothing translates its port 80 to "
                      "the pods' named port -- clients reach the pods' own IPs on the port they ask for, and port 80 "
                      "answers nowhere", hint="only the second Service of this exercise is headless")
    headless = require_service(ms, "api-headless", "the exercise's second Service is api-headless")
    _require_every_version(headless, wls, namespace)
    check_service(headless, wls, namespace)
    if (headless.obj.get("spec") or {}).get("publishNotReadyAddresses") is True:
        # every pod of this exercise is ready, so DNS cannot show the difference: judged from the field that makes it
        raise problem(headless, ("spec", "publishNotReadyAddresses"),
                      "publishes not-ready addresses too: its DNS name would also answer with pods that fail their "
                      "readiness probe, while the exercise asks for the ready pods only",
                      hint="readiness decides who is in DNS unless the Service says otherwise")
    if (headless.obj.get("spec") or {}).get("clusterIP") != "None":
        raise problem(headless, ("spec",),
                      "is not headless: without clusterIP: None it gets one virtual IP, and its DNS name answers "
                      "with that single IP instead of the IPs of the ready pods", hint="add clusterIP: None under spec")
    return f"{service_summary(named, wls)}; api-headless is headless (clusterIP: None)"


def static_nodeport(ms: Sequence[Manifest], namespace: str) -> str:
    svc = require_service(ms, "api-nodeport", "the exercise's Service is api-nodeport")
    wls = workloads(ms)
    check_service(svc, wls, namespace)
    kind = service_type(svc)
    if kind not in ("NodePort", "LoadBalancer"):
        implicit = " (the default when `type` is left out)" if not (svc.obj.get("spec") or {}).get("type") else ""
        raise problem(svc, ("spec", "type"), f"is type {kind}{implicit}: it gets a ClusterIP but opens no port on "
                                             f"the nodes; the exercise asks for type NodePort",
                      hint=NODEPORT_HINT)
    port = require_port(svc, 80, "the exercise asks for port 80")
    node_port = port.get("nodePort")
    where = port_field(svc, port, "nodePort")
    low, high = NODE_PORT_RANGE
    if node_port is None:
        raise problem(svc, where, f"sets no nodePort, so the API server picks a random one in {low}-{high}; the "
                                  f"exercise asks for nodePort 30080",
                      hint="a port entry may name its node port itself, next to port and targetPort")
    if not isinstance(node_port, int) or not low <= node_port <= high:
        raise problem(svc, where, explain_node_port_range(node_port),
                      hint="the exercise names a node port inside that range")
    if node_port != 30080:
        raise problem(svc, where, f"opens node port {node_port}; the exercise asks for nodePort 30080",
                      hint="compare the port entry's nodePort with the number the exercise names")
    return f"{service_summary(svc, wls)}; type {kind}, nodePort {node_port} on every node"


def explain_node_port_range(node_port: Any) -> str:
    low, high = NODE_PORT_RANGE
    return (f"nodePort {node_port} is outside the node-port range {low}-{high}: the API server refuses it. A NodePort "
            f"is opened on every node, so Kubernetes keeps these ports in their own range (kube-apiserver "
            f"--service-node-port-range, default {low}-{high}) where they cannot collide with ports the nodes' own "
            f"daemons use (22, 80, 443, 6443, 10250, ...)")


def static_loadbalancer(ms: Sequence[Manifest], namespace: str) -> str:
    svc = require_service(ms, "api-lb", "the exercise's Service is api-lb")
    wls = workloads(ms)
    check_service(svc, wls, namespace)
    kind = service_type(svc)
    if kind != "LoadBalancer":
        what = {"NodePort": "it opens node ports but gets no external IP",
                "ClusterIP": "it is reachable only inside the cluster"}.get(kind, "it gets no external IP")
        raise problem(svc, ("spec", "type"), f"is type {kind}: {what}; the exercise asks for type LoadBalancer",
                      hint=LOADBALANCER_HINT)
    require_port(svc, 80, "the exercise asks for port 80")
    return f"{service_summary(svc, wls)}; type LoadBalancer"


def static_externalname(ms: Sequence[Manifest], namespace: str) -> str:
    svc = require_service(ms, "external-db",
                          f"pods look up the name external-db (external-db.{namespace}.svc.{CLUSTER_DOMAIN}), "
                          f"which comes from the Service's name")
    kind = service_type(svc)
    spec = svc.obj.get("spec") or {}
    if kind != "ExternalName":
        raise problem(svc, ("spec", "type"), f"is type {kind}; an alias for an outside host is type ExternalName",
                      hint=EXTERNALNAME_HINT)
    host = str(spec.get("externalName") or "")
    where = ("spec", "externalName")
    if "://" in host or "/" in host or ":" in host:
        raise problem(svc, where, explain_external_name(host), hint=EXTERNAL_HOST_HINT)
    if host.rstrip(".").lower() != EXTERNAL_HOST:
        raise problem(svc, where, f"points to {host or '(nothing)'}; the exercise asks for "
                                  f"{EXTERNAL_HOST}", hint=EXTERNAL_HOST_HINT)
    if spec.get("selector"):
        return f"external-db is a CNAME for {host} (its selector is ignored: ExternalName Services have no endpoints)"
    return f"external-db is type ExternalName, a CNAME for {host}"


def explain_external_name(host: str) -> str:
    what = ("a URL" if "://" in host else "a name with a path" if "/" in host
            else "a host name with a port" if ":" in host else "not a lowercase host name")
    return (f"externalName {host!r} is {what}, not a bare host name: DNS can only alias a name to another name (a "
            f"CNAME), so the API server requires a lowercase RFC 1123 host name — no scheme (http://), port or path; "
            f"the client picks the protocol and port")


def static_readiness(ms: Sequence[Manifest], namespace: str) -> str:
    svc = require_service(ms, "api-service", "the exercise's Service is api-service")
    wls = workloads(ms)
    check_service(svc, wls, namespace)
    windows = []
    for wl in selected(svc, wls):
        for index, container in enumerate(wl.containers):
            cname = container.get("name", "?")
            ready = container.get("readinessProbe")
            if not isinstance(ready, dict):
                if isinstance(container.get("livenessProbe"), dict):
                    raise CheckFailed(
                        f"{wl.cite('containers', index, 'livenessProbe')}: container {cname} has a livenessProbe "
                        f"but no readinessProbe: a failing livenessProbe restarts the container, it does not take "
                        f"the pod out of the Service's endpoints; only a readinessProbe does",
                        hint="rename livenessProbe to readinessProbe (a pod may have both; this exercise needs "
                             "readiness)")
                raise CheckFailed(
                    f"{wl.cite('containers', index)}: container {cname} has no readinessProbe: Kubernetes then counts "
                    f"a running container as ready, so a pod whose app is broken ({READY_FILE} gone) keeps receiving "
                    f"traffic",
                    hint=f"add a readinessProbe that fails when {READY_FILE} is missing (exec: cat {READY_FILE})")
            window = probe_window(ready)
            if window > MAX_UNREADY_SECONDS:
                period = ready.get("periodSeconds", 10)
                failures = ready.get("failureThreshold", 3)
                defaults = ", both defaults" if "periodSeconds" not in ready and "failureThreshold" not in ready else ""
                raise CheckFailed(
                    f"{wl.cite('containers', index, 'readinessProbe')}: the readinessProbe ({_probe_text(ready)}) "
                    f"takes up to {window:g} s to notice a sick pod (periodSeconds {period} x failureThreshold "
                    f"{failures}{defaults}); a broken pod stays an endpoint for up to {window:g} s, the exercise asks "
                    f"for at most {MAX_UNREADY_SECONDS} s",
                    hint="set periodSeconds and failureThreshold so that their product is at most "
                         f"{MAX_UNREADY_SECONDS} (e.g. 1 and 1)")
            windows.append(f"{wl.ref}: {_probe_text(ready)}, noticed within {window:g} s")
    return f"{service_summary(svc, wls)}; readiness: {'; '.join(windows)}"


def explain_admission(message: str) -> str:
    """A lab-specific explanation of an API-server rejection (for an engine hook; empty when nothing to add)."""
    m = re.search(r"nodePort: Invalid value: (\d+): provided port is not in the valid range", message)
    if m:
        return explain_node_port_range(int(m.group(1)))
    if "may not be used when `type` is 'ClusterIP'" in message:
        return ("without `type` a Service is ClusterIP, which opens no node port, so nodePort is refused: add "
                "type: NodePort")
    if "`selector` does not match template `labels`" in message:
        return ("a Deployment finds its pods by spec.selector.matchLabels, so its pod template must carry every "
                "label the selector lists: relabel the pods in both places (spec.selector.matchLabels is immutable "
                "on an existing Deployment: on a real cluster delete and re-create it), or change the Service's "
                "selector instead")
    m = re.search(r'externalName: Invalid value: "([^"]*)"', message)
    if m:
        return explain_external_name(m.group(1))
    return explain_service_rejection(message)


def _static(fn):
    def step(ctx) -> StepResult:
        return StepResult("static", True, fn(ctx.objects, ctx.spec.default_namespace))
    step.__name__ = fn.__name__
    return step


# ================================================================================ live (the cluster)
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
    spread = run_spread(ctx.prober, http_specs(source, targets, REQUESTS_PER_TARGET), reach=pods)
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    summary = judge_spread(spread, pods, what="api-service by ClusterIP and by its 3 DNS names",
                           target_port=port.target_port if port else None, evidence=(ep_evidence,),
                           context=context_of(ctx))
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
    headless = live_service(ctx.cluster, ns, "api-headless")
    if headless.spec.cluster_ip != "None":
        raise CheckFailed(f"Service api-headless has ClusterIP {headless.spec.cluster_ip}, so it is not headless; "
                          f"set clusterIP: None", hint="clusterIP: None (it cannot be changed on an existing Service)")
    h_ready, h_pods, h_evidence = expect_endpoints(ctx, "api-headless")
    fqdn = f"api-headless.{ns}.svc.{CLUSTER_DOMAIN}"
    want = sorted(e.ip for e in h_ready)
    wait_client(ctx)
    dns_spec = probe.ProbeSpec(source, "dns", fqdn, label=f"DNS {fqdn}", expect=tuple(want))
    specs = [dns_spec, *http_specs(source, [("api-named:80", "api-named", 80)], SPREAD_REQUESTS)]
    results = probe.probe_until(ctx.prober, specs, _answered, attempts=3, deadline_s=15, pause_s=1.0)
    dns, http = results[0], Spread(results[1:])
    if not set(pods) <= set(http.answers()):  # kube-proxy may not have programmed every endpoint yet
        http = run_spread(ctx.prober, specs[1:], reach=pods)
    if dns.outcome is Outcome.BLOCKED and dns.addresses:  # CoreDNS caches an answer up to 5 s: an earlier run's
        dns = probe.probe_until(ctx.prober, [dns_spec], _answered, attempts=3, deadline_s=10, pause_s=2.0)[0]
    ports = {e.pod: "/".join(str(p) for _, p in e.ports) for e in ready}
    summary = judge_spread(http, pods, what="api-named (targetPort by name)", evidence=(ep_evidence,),
                           context=context_of(ctx))
    got = sorted(dns.addresses)
    dns_table = Evidence.table(f"DNS answer for {fqdn}", ("address", "pod"),
                               [(a, next((e.pod for e in h_ready if e.ip == a), "(not a ready pod)")) for a in got])
    reproduce = Evidence.command("Reproduce", dns.command)
    if not got:
        raise CheckFailed(f"the DNS lookup of {fqdn} failed ({dns.detail})",
                          hint="a headless Service with ready endpoints has A records for each pod",
                          evidence=(h_evidence, reproduce))
    if dns.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"{fqdn} answers with {', '.join(got)}; the ready pods are {', '.join(want)}: a headless "
                          f"Service's DNS name must list every ready pod", evidence=(dns_table, h_evidence, reproduce))
    port_text = ", ".join(f"{pod} on {port}" for pod, port in sorted(ports.items()))
    return StepResult("live", True,
                      f"api-named resolves targetPort by name per pod ({port_text}) and {summary}; {fqdn} answers "
                      f"with the {len(got)} ready pod IPs {', '.join(got)}",
                      evidence=(dns_table, spread_evidence(http, pods, "api-named: which pod answered"),
                                ep_evidence, reproduce))


def nodeport_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-nodeport")
    svc = ctx.cluster.get_service(ns, "api-nodeport")
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    node_port = port.node_port if port is not None else None
    if svc.spec.type not in ("NodePort", "LoadBalancer") or not node_port:
        raise CheckFailed(f"Service api-nodeport is type {svc.spec.type} and has no node port",
                          hint=NODEPORT_HINT)
    nodes = ctx.cluster.node_addresses()
    vantage = outside_vantage(ctx)
    specs = [vantage.http(ip, node_port, f"{name} {ip}:{node_port}") for name, ip in nodes for _ in range(3)]
    results = probe.probe_until(vantage.runner, specs, _answered, attempts=2, deadline_s=15, pause_s=1)
    table = judge_outside(results, pods, f"NodePort {node_port} on every node", (service_table(svc), ep_evidence),
                          target_port=port.target_port, namespace=ns, context=context_of(ctx))
    answered = Counter(r.output.strip() for r in results)
    return StepResult("live", True,
                      f"NodePort {node_port} answered on all {len(nodes)} nodes "
                      f"({', '.join(ip for _, ip in nodes)}) from {vantage.where}: {len(results)} requests reached "
                      f"{len(answered)} of the {len(pods)} api pods" + (f". Note: {vantage.note}" if vantage.note else ""),
                      evidence=(table, service_table(svc), ep_evidence, Evidence.command("Try it", results[0].command)))


def loadbalancer_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-lb")
    svc = live_service(ctx.cluster, ns, "api-lb")
    wait = LB_CLASS_TIMEOUT if getattr(svc.spec, "load_balancer_class", None) else LB_IP_TIMEOUT
    deadline = time.monotonic() + wait
    while True:
        svc = ctx.cluster.get_service(ns, "api-lb")
        ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
        external = next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), "")
        if external or time.monotonic() >= deadline or svc.spec.type != "LoadBalancer":
            break
        time.sleep(0.5)
    table = service_table(svc, external)
    if svc.spec.type != "LoadBalancer":
        raise CheckFailed(f"Service api-lb is type {svc.spec.type}; the exercise asks for type LoadBalancer",
                          hint=LOADBALANCER_HINT, evidence=(table,))
    if not external:
        raise CheckFailed(
            f"Service api-lb has no external IP after {wait:g} s (EXTERNAL-IP <pending>): no load-balancer "
            f"controller assigned one. On the course cluster MetalLB does that",
            hint=f"`{kubectl('-n metallb-system get pods', context_of(ctx))}` and "
                 f"`{kubectl('get ipaddresspools -A', context_of(ctx))}`; `make doctor` checks it",
            evidence=(table,))
    port = next((p for p in svc.spec.ports or [] if p.port == 80), None)
    vantage = outside_vantage(ctx)
    specs = [vantage.http(external, 80, f"LB {external}:80") for _ in range(6)]
    nodes = ctx.cluster.node_addresses()
    extra = []
    if port is not None and port.node_port and nodes:
        extra = [vantage.http(nodes[0][1], port.node_port, f"NodePort {nodes[0][1]}:{port.node_port} (also allocated)")]
    # A load-balancer IP just (re)assigned may take a few seconds to be reached: MetalLB answers ARP for it from the
    # node it elects, and a client that knew the address from an earlier Service (autograde --parallel hands the
    # pool's addresses from run to run) still sends to the old node until then: a request lost then is retried.
    results = probe.probe_until(vantage.runner, specs + extra, _answered, attempts=4, deadline_s=20, pause_s=1.5)
    lb_results, np_results = results[:len(specs)], results[len(specs):]
    outside_table = judge_outside(lb_results, pods, f"load-balancer IP {external}", (table, ep_evidence),
                                  target_port=port.target_port if port is not None else None, namespace=ns,
                                  context=context_of(ctx))
    answered = Counter(r.output.strip() for r in lb_results)
    also = ""
    if np_results:
        r = np_results[0]
        also = (f"; its NodePort {port.node_port} answers too ({r.output.strip()})" if r.outcome is Outcome.ALLOWED
                else f"; its NodePort {port.node_port} did not answer ({r.detail})")
    return StepResult("live", True,
                      f"api-lb got external IP {external}; from {vantage.where} {len(lb_results)} requests to "
                      f"{external}:80 reached {len(answered)} of the {len(pods)} api pods. It also has ClusterIP "
                      f"{svc.spec.cluster_ip} and NodePort {port.node_port if port else '-'}{also}"
                      + (f". Note: {vantage.note}" if vantage.note else ""),
                      evidence=(table, outside_table, ep_evidence, Evidence.command("Try it", lb_results[0].command)))


def externalname_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    source = start_client(ctx)
    svc = live_service(ctx.cluster, ns, "external-db")
    if svc.spec.type != "ExternalName":
        raise CheckFailed(f"Service external-db is type {svc.spec.type}, not ExternalName", hint=EXTERNALNAME_HINT)
    fqdn = f"external-db.{ns}.svc.{CLUSTER_DOMAIN}"
    wait_client(ctx)
    # A CNAME query is answered by CoreDNS's kubernetes plugin itself: nothing is forwarded, nothing leaves.
    specs = [probe.ProbeSpec(source, "dns", name, record="CNAME", expect=(EXTERNAL_HOST,), label=f"{name} CNAME")
             for name in (fqdn, "external-db")]
    # CoreDNS caches answers up to 5 s: an earlier run's answer may still be served
    results = probe.probe_until(ctx.prober, specs, _answered, attempts=3, deadline_s=15, pause_s=2.0)
    reproduce = Evidence.command("Reproduce", results[0].command)
    rows = [(r.spec.target_label, ", ".join(f"{o} -> {t}" for o, t in r.records) or r.detail or "no answer")
            for r in results]
    table = Evidence.table("DNS answers inside the cluster (CNAME queries)", ("query", "answer"), rows)
    targets = {t.lower() for r in results for t in r.answers}
    failed = next((r for r in results if r.outcome is Outcome.FAILED), None)
    if failed is not None and not targets:
        raise CheckFailed(f"the grader's DNS lookup in {source} could not run ({failed.detail}); this says nothing "
                          f"about your manifests", hint="run `make doctor`", evidence=(reproduce,))
    if not targets:
        raise CheckFailed(f"a DNS lookup of {fqdn} inside the cluster returned no CNAME",
                          hint="an ExternalName Service is answered as a CNAME to spec.externalName",
                          evidence=(table, reproduce))
    if targets != {EXTERNAL_HOST}:
        raise CheckFailed(f"inside the cluster, external-db points to {', '.join(sorted(targets))} (CNAME); the "
                          f"exercise asks for {EXTERNAL_HOST}", hint=EXTERNAL_HOST_HINT,
                          evidence=(table, reproduce))
    return StepResult("live", True,
                      f"inside the cluster, {fqdn} (and the short name external-db) is a CNAME for {EXTERNAL_HOST}: "
                      f"no ClusterIP, no endpoints, no proxying — the client resolves the real host itself "
                      f"(only the DNS answer was read; no traffic left the cluster)",
                      evidence=(table, reproduce))


def readiness_live(ctx) -> StepResult:
    from graders.cluster import kubectl_exec_command

    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    source = start_client(ctx)
    ready, pods, ep_evidence = expect_endpoints(ctx, "api-service")
    wait_client(ctx)
    target = [("api-service:80", "api-service", 80)]
    before = run_spread(ctx.prober, http_specs(source, target, SPREAD_REQUESTS), reach=pods)
    summary = judge_spread(before, pods, what="api-service, all pods healthy", evidence=(ep_evidence,),
                           context=context_of(ctx))
    victim = sorted(pods)[0]
    rc, _, err = cluster.exec(ns, victim, ["rm", "-f", READY_FILE], timeout=10)
    if rc != 0:
        raise CheckFailed(f"could not remove {READY_FILE} in Pod {ns}/{victim} (exit {rc}: {err.strip()[:200]}); the "
                          f"container must run a shell image with {READY_FILE} (keep the starter's command)",
                          hint=f"keep `touch {READY_FILE} && exec /agnhost netexec ...` as the container's command")
    started = time.monotonic()
    left_after = None
    while time.monotonic() - started < LEAVE_DEADLINE:
        if not any(e.pod == victim and e.ready for e in cluster.endpoints(ns, "api-service")):
            left_after = time.monotonic() - started
            break
        time.sleep(0.25)
    ev_after = endpoints_evidence("api-service", cluster.endpoints(ns, "api-service"))
    if left_after is None:
        pod = cluster.get_pod(ns, victim)
        spec_probe = next((c.readiness_probe for c in pod.spec.containers if c.readiness_probe is not None), None)
        what = "it has no readinessProbe" if spec_probe is None else \
            "the pod itself is not ready (its probe noticed), yet the Service still lists it as a ready endpoint" \
            if not is_ready(pod) else \
            "its readinessProbe keeps passing: it must check the app's state (here: that " + READY_FILE + " exists)"
        raise CheckFailed(
            f"Pod {victim} is still a ready endpoint of api-service {LEAVE_DEADLINE:g} s after its {READY_FILE} was "
            f"removed: {what}, so it keeps receiving traffic",
            hint=f"readinessProbe: exec: command: [cat, {READY_FILE}] with periodSeconds: 1, failureThreshold: 1",
            evidence=(ev_after, Evidence.command("Make a pod sick yourself", kubectl_exec_command(
                cluster.context, ns, victim, ["rm", READY_FILE]))))
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
                                 require_all=True, context=context_of(ctx))
    cluster.exec(ns, victim, ["touch", READY_FILE], timeout=10)  # heal it; the next reset removes it anyway
    return StepResult("live", True,
                      f"before: {summary}. After {READY_FILE} was removed in {victim}, it left the endpoints within "
                      f"{left_after:.1f} s and got none of the next {len(after.results)} requests "
                      f"({after_summary})",
                      evidence=(spread_evidence(before, pods, "before: which replica answered"),
                                spread_evidence(after, pods, f"after {victim} became unready"), ev_after))


# ================================================================================ break-fix (a broken setup)
# The starter is the catalog as a colleague deployed it: the Service `catalog` has no endpoints (its selector asks
# for tier: api, the pods are tier: backend) and, behind that, sends to port 80 where catalog-api serves 8080.
# Judged by traffic like every exercise; what the failure says depends on whether the files were changed: as
# deployed, only what users see (the learner diagnoses it with kubectl); once edited, the symptom and its causes.
CATALOG = "catalog"                 # the Service; the shop's frontend calls http://catalog/ (port 80)
CATALOG_API = "catalog-api"         # the Deployment whose pods must answer
CATALOG_WORKER = "catalog-worker"   # the feed importer: shares app: catalog, serves nothing, must keep running
CATALOG_URL = f"http://{CATALOG}/"
BREAK_FIX_REQUESTS = 24             # to one address: P(one of 2 replicas never hit) = 2 x (1/2)^24 ~ 1e-7
BREAK_FIX_FILES = "break-fix/"


def static_break_fix(ms: Sequence[Manifest], namespace: str) -> str:
    """What the shop relies on besides the fix: the name catalog, port 80, and both Deployments. The starter has
    all of them, so this step passes for it and the live step shows the symptom."""
    svc = require_service(ms, CATALOG, f"the shop's frontend calls {CATALOG_URL}; the name comes from the "
                                       f"Service's metadata.name, so renaming it breaks every client")
    require_port(svc, 80, f"the frontend calls {CATALOG_URL}, which is port 80 of the Service; the port the pods "
                          f"listen on belongs in targetPort, not in port")
    wls = workloads(ms)
    for name, role in ((CATALOG_API, "serves the catalog"), (CATALOG_WORKER, "imports the supplier feeds")):
        if not any(w.kind == "Deployment" and w.name == name for w in wls):
            raise CheckFailed(f"Deployment {namespace}/{name} is missing from your files: it {role}, and a fix of "
                              f"the Service must keep it running (removing what gets in the way breaks something "
                              f"else)",
                              hint=f"keep {name} as deployed and change the Service (or the catalog-api pods' "
                                   f"labels) instead")
    return (f"Service {CATALOG} (port 80) and Deployments {CATALOG_API} and {CATALOG_WORKER} are in your files; "
            f"whether the frontend gets answers is judged by traffic")


def _workload(wls: Sequence[Workload], name: str) -> Workload | None:
    return next((w for w in wls if w.kind == "Deployment" and w.name == name), None)


def break_fix_causes(ms: Sequence[Manifest], namespace: str, context: str | None = None) -> list[Finding]:
    """Why the frontend gets no (or not only right) answers, read from the files: the selector first (no pod, the
    wrong pods, too many pods), then whether catalog-api listens where the Service sends. Empty when the files
    show no cause (then the live evidence has to speak). ``context``: the kube context graded, for the commands
    in the hints (None: the course's)."""
    svc = next((m for m in ms if m.kind == "Service" and m.name == CATALOG), None)
    wls = workloads(ms)
    api = _workload(wls, CATALOG_API)
    if svc is None or api is None:
        return []
    causes: list[Finding] = []
    finding = selector_finding(svc, wls, namespace)
    chosen = selected(svc, wls)
    selector = format_labels(selector_of(svc))
    if finding is not None:
        causes.append(finding)
    elif api not in chosen:
        causes.append(Finding(
            f"{cite(svc, ('spec', 'selector'))}: selects {selector}, which picks the pods of "
            f"{', '.join(w.ref for w in chosen)} but not those of {api.ref} ({format_labels(api.labels)}), the pods "
            f"that serve the catalog",
            hint="spec.selector must list labels every catalog-api pod carries (its pod template's labels)"))
    others = [w for w in chosen if w is not api]
    if api in chosen and others:
        what = "; ".join(f"{w.ref} ({format_labels(w.labels)}"
                         f"{', ' + w.serving()[1] if w.serving()[0] is not None else ''})" for w in others)
        causes.append(Finding(
            f"{cite(svc, ('spec', 'selector'))}: selects {selector}, which also selects the pods of {what}: "
            f"they become endpoints of {CATALOG} too and get their share of the requests, which they cannot answer. "
            f"A selector must pick exactly the pods that serve, so it needs the label that tells them apart",
            hint="add the label that only the catalog-api pods carry to the selector (compare "
                 f"`{kubectl(f'-n {namespace} get pods --show-labels', context)}`)"))
    port = next((p for p in service_ports(svc) if p.get("port") == 80), None)
    if port is not None:
        cause = _target_port_cause(svc, port, api)
        if cause is not None:
            causes.append(cause)
    return causes


def _target_port_cause(svc: Manifest, port: dict, api: Workload) -> Finding | None:
    """Whether the Service's port 80 lands on a port the catalog-api pods serve (whether or not they are selected:
    a learner who fixed only the selector should hear about this one too)."""
    target = target_of(port)
    where = cite(svc, port_field(svc, port, "targetPort" if "targetPort" in port else "port"))
    if isinstance(target, str):
        resolved = api.named_ports().get(target)
        if resolved is None:
            return Finding(f"{where}: targetPort {target!r} names no container port of the pods of "
                           f"{api.cite('containers')} (their ports: {api.port_list()}), so they are left out of the "
                           f"endpoints", hint="a named targetPort must equal the `name` of a containerPort")
    else:
        resolved = target
    listening, how = api.serving()
    if listening is None or resolved in listening:
        return None
    serving = ", ".join(map(str, sorted(listening))) or "no port"
    via = f"targetPort {target!r} = {resolved}" if isinstance(target, str) else f"targetPort {target}"
    return Finding(f"{where}: sends port 80 to {via}, but the pods of {api.cite('containers')} are not listening "
                   f"on port {resolved}: they serve {serving} ({how}), so every connection that reaches them is "
                   f"refused", hint="targetPort is the port the container listens on (its containerPort); port (80) "
                                    "is the one clients use")


def break_fix_symptoms(total: int, answers: Counter, failures: Sequence[str], api_pods: Collection[str],
                       endpoint_pods: Collection[str], worker_pods: int, worker_expected: bool) -> list[str]:
    """What users and operators see, in words (empty when the catalog works): requests to http://catalog/ that
    fail or reach the wrong pods, api pods that never answer, pods of the wrong kind among the endpoints, and a
    feed importer that no longer runs. Pure, so the wording is unit-tested."""
    out = []
    if not api_pods:
        out.append(f"Deployment {CATALOG_API} has no ready pod, so nothing can serve the catalog")
    if failures:
        reasons = Counter(failures).most_common()
        why = "; ".join(f"{n} x {reason}" if len(reasons) > 1 else reason for reason, n in reasons)
        answered = sum(answers.values())
        rest = f"; the other {answered} were answered" if answered else ""
        although = (f", although the {len(api_pods)} {CATALOG_API} pod{'s are' if len(api_pods) > 1 else ' is'} "
                    f"Running and Ready") if api_pods and not answered else ""
        out.append(f"{len(failures)} of {total} requests to {CATALOG_URL} from a pod in the namespace failed "
                   f"({why}){rest}{although}")
    strangers = sorted(set(answers) - set(api_pods))
    if strangers:
        out.append(f"requests to {CATALOG_URL} were answered by {', '.join(s[:60] for s in strangers)}, which is "
                   f"not a {CATALOG_API} pod")
    silent = sorted(set(api_pods) - set(answers))
    if silent and answers:
        out.append(f"{CATALOG_API} pod{'s' if len(silent) > 1 else ''} {', '.join(silent)} never answered")
    unlisted = sorted(set(api_pods) - set(endpoint_pods))
    if unlisted and not failures:
        out.append(f"Service {CATALOG} does not list {', '.join(unlisted)} as ready endpoints")
    foreign = sorted(set(endpoint_pods) - set(api_pods))
    if foreign:
        out.append(f"Service {CATALOG} also lists {', '.join(foreign)} as ready endpoints, which are not "
                   f"{CATALOG_API} pods")
    if worker_expected and not worker_pods:
        out.append(f"Deployment {CATALOG_WORKER} runs no ready pod: the supplier feeds are no longer imported")
    return out


def break_fix_failure(symptoms: Sequence[str], *, deployed: bool, causes: Sequence[Finding],
                      namespace: str, context: str | None = None) -> tuple[str, str]:
    """(message, hint) of a failing break-fix check. As deployed: the symptom and where to start, no cause. Once
    edited: the symptom and every cause the files show. ``context``: the kube context graded, for the commands
    in the hint (None: the course's)."""
    symptom = "; ".join(symptoms)
    if deployed:
        return (f"The shop's frontend cannot use the catalog: {symptom}. Nothing in {BREAK_FIX_FILES} has changed "
                f"yet: this is the setup as it was deployed. Find out why on the cluster, fix the files, check again",
                f"follow one request: the Service {CATALOG} "
                f"(`{kubectl(f'-n {namespace} get service {CATALOG} -o wide', context)}`), the endpoints it has "
                f"(`{kubectl(f'-n {namespace} get endpointslices -l kubernetes.io/service-name={CATALOG}', context)}`"
                "), "
                f"the pods that should be behind it and the port they listen on")
    if not causes:
        return (f"{symptom}", f"`{kubectl(f'-n {namespace} get service,endpointslices,pods -o wide', context)}` "
                              f"shows where the Service sends the requests")
    return symptom_and_causes(symptom, causes)


# deployed_digest of labs/03-services/break-fix/ (tests/unit/test_lab03_break_fix.py keeps it equal to the files)
BREAK_FIX_DIGEST = "678cfd1bd33a441d793bf89eac44012e029456472c13b706ce9ac7719327e3cd"


def break_fix_live(ctx) -> StepResult:
    ns = ctx.spec.default_namespace
    cluster = ctx.cluster
    source = start_client(ctx)
    wls = workloads(ctx.objects)
    api_wl, worker_wl = _workload(wls, CATALOG_API), _workload(wls, CATALOG_WORKER)  # both there: static says so
    selector = live_service(cluster, ns, CATALOG).spec.selector or {}
    deadline = time.monotonic() + _kit.ENDPOINTS_SETTLE
    while True:  # EndpointSlices may trail pod readiness by a moment
        pods = learner_pods(cluster, ns)
        api = {p.metadata.name: p for p in pods if service_selects(api_wl.labels, p.metadata.labels) and is_ready(p)}
        chosen = {p.metadata.name for p in pods if selector and service_selects(selector, p.metadata.labels)
                  and is_ready(p)}
        eps = cluster.endpoints(ns, CATALOG)
        ready_eps = {e.pod or e.ip for e in eps if e.ready}
        if ready_eps == chosen or time.monotonic() >= deadline:
            break
        time.sleep(0.3)
    workers = [p for p in pods if service_selects(worker_wl.labels, p.metadata.labels) and is_ready(p)]
    wait_client(ctx)
    specs = http_specs(source, [(CATALOG_URL, CATALOG, 80)], BREAK_FIX_REQUESTS)
    # with ready endpoints kube-proxy may need a moment to program them: retry rounds until every api pod answered
    spread = run_spread(ctx.prober, specs, reach=api, rounds=3 if ready_eps else 1)
    answers = spread.answers()
    symptoms = break_fix_symptoms(len(spread.results), answers, [r.detail or "no answer" for r in spread.failures()],
                                  api, ready_eps, len(workers), worker_wl.replicas > 0)
    table = spread_evidence(spread, api, f"Which pod answered GET {CATALOG_URL}hostname")
    reproduce = Evidence.command("Reproduce", probe.reproduce_command(specs[0], cluster.context))
    if not symptoms:
        spread_text = ", ".join(f"{name} {answers.get(name, 0)}" for name in sorted(api))
        return StepResult("live", True,
                          f"the frontend's requests to {CATALOG_URL} work again: {sum(answers.values())}/"
                          f"{len(spread.results)} answered by the {len(api)} {CATALOG_API} pods ({spread_text}); "
                          f"Service {CATALOG}'s endpoints are exactly those pods, and {CATALOG_WORKER} still runs",
                          evidence=(table, endpoints_evidence(CATALOG, eps), reproduce))
    deployed = as_deployed(ctx.objects, BREAK_FIX_DIGEST)
    causes = [] if deployed else break_fix_causes(ctx.objects, ns, context_of(ctx))
    message, hint = break_fix_failure(symptoms, deployed=deployed, causes=causes, namespace=ns,
                                      context=context_of(ctx))
    evidence = (table, reproduce) if deployed else (table, endpoints_evidence(CATALOG, eps), pods_evidence(pods),
                                                    reproduce)
    raise CheckFailed(message, hint=hint, evidence=evidence)


# ================================================================================ predict (before the exercises)
# Predictions (an answers exercise): the learner says what four kinds of Service will do, the grader makes it happen
# with pods and Services of its own in the lab's namespace and compares. Nothing is stored with the course: every
# fact is read off the cluster at grading time (EndpointSlices, DNS answers, a request to a node port).
PREDICT_LABEL = "k8slab.dev/predict"        # the grader's own label: no learner selector can carry a k8slab.dev/ key
PREDICT_PODS = ("k8slab-web-a", "k8slab-web-b", "k8slab-web-c")  # a on node A; b, c on node B (when there is one)
SOLO_POD, UNREADY_POD = PREDICT_PODS[0], PREDICT_PODS[2]
PREDICT_SERVICE = "k8slab-web"              # ClusterIP over the three pods
PREDICT_HEADLESS = "k8slab-web-headless"    # the same pods, clusterIP: None
PREDICT_NODEPORT = "k8slab-solo"            # NodePort over k8slab-web-a only (externalTrafficPolicy: Cluster)
PREDICT_ALIAS = "k8slab-alias"              # ExternalName for k8slab-web's own DNS name: nothing leaves the cluster
UNREADY_TIMEOUT = 10.0                      # readiness probe every 1 s, 1 failure: unready within ~2 s
ANSWERED, NOT_ANSWERED = "answered", "not-answered"
CNAME, OWN_IP, NXDOMAIN = "cname", "own-ip", "nxdomain"
PREDICTIONS = (
    Question("ready_endpoints", f"{PREDICT_SERVICE} selects 3 pods and one of them fails its readiness probe: how "
                                f"many ready endpoints does the Service have?", "number"),
    Question("headless_addresses", f"{PREDICT_HEADLESS} (clusterIP: None) selects the same 3 pods, one unready: how "
                                   f"many addresses does its DNS name resolve to?", "number"),
    Question("node_port_other_node", f"{PREDICT_NODEPORT} (NodePort) selects one pod, on node A: does its node port "
                                     f"on node B (no pod of it there) answer?", "choice", (ANSWERED, NOT_ANSWERED)),
    Question("external_name_answer", f"what does the cluster DNS answer for the ExternalName Service {PREDICT_ALIAS}?",
             "choice", (CNAME, OWN_IP, NXDOMAIN)),
)


@dataclass(frozen=True)
class PredictRun:
    """What the experiments showed; None where it could not be observed (``why_not[question]`` says why)."""

    selected: int = len(PREDICT_PODS)
    unready: int = 1
    ready_endpoints: int | None = None
    headless_addresses: int | None = None
    node_port_answered: bool | None = None
    alias: str | None = None  # CNAME, OWN_IP or NXDOMAIN
    why_not: Mapping[str, str] = field(default_factory=dict)


NOT_RUN = "the grader's experiment did not run"


def _not_seen(run: PredictRun, question: str) -> Fact:
    return not_observable(run.why_not.get(question) or NOT_RUN)


def _count_fact(run: PredictRun, count: int, because: Mapping[int, str], what: str) -> Fact:
    """A number fact; the reasons in ``because`` hold only when the cluster did what the model says."""
    if count != run.selected - run.unready:  # an unusual cluster: the table shows what it did, no more can be said
        return observed(count, explain=lambda _: f"not what the cluster showed for {what} (see the table)")
    return observed(count, because={k: v for k, v in because.items() if k != count},
                    explain=lambda _: f"the Service selects {run.selected} pods and {run.unready} of them is not "
                                      f"ready")


def prediction_facts(run: PredictRun) -> dict[str, Fact]:
    """The facts of the predictions (pure): each question's right answer as this cluster showed it, and why each
    wrong one is wrong, in words that teach the model."""
    facts: dict[str, Fact] = {}
    if run.ready_endpoints is None:
        facts["ready_endpoints"] = _not_seen(run, "ready_endpoints")
    else:
        facts["ready_endpoints"] = _count_fact(run, run.ready_endpoints, {
            run.selected: "the unready pod stays in the EndpointSlice but with ready: false, and a Service sends "
                          "traffic to ready endpoints only",
            0: "one unready pod does not take the others out: each pod's readiness counts on its own",
        }, f"the ready endpoints of {PREDICT_SERVICE}")
    if run.headless_addresses is None:
        facts["headless_addresses"] = _not_seen(run, "headless_addresses")
    else:
        facts["headless_addresses"] = _count_fact(run, run.headless_addresses, {
            1: "a headless Service (clusterIP: None) has no virtual IP: its name resolves to the pods' own IPs, one "
               "A record per ready pod",
            run.selected: "only ready pods are published in DNS: the unready pod's address is left out of the "
                          "headless name's answer",
            0: "a headless Service's name does resolve: to the IPs of its ready pods",
        }, f"the DNS name of {PREDICT_HEADLESS}")
    if run.node_port_answered is None:
        facts["node_port_other_node"] = _not_seen(run, "node_port_other_node")
    elif run.node_port_answered:
        facts["node_port_other_node"] = observed(ANSWERED, because={
            NOT_ANSWERED: "with externalTrafficPolicy: Cluster (the default) every node accepts the node port and "
                          "forwards the request to a ready pod on any node"})
    else:
        facts["node_port_other_node"] = observed(NOT_ANSWERED, because={
            ANSWERED: "on this cluster the node that runs no pod of the Service did not answer its node port"})
    facts["external_name_answer"] = seen_fact(run.alias, CNAME, {
        OWN_IP: "an ExternalName Service gets no ClusterIP of its own: the cluster DNS answers its name with a CNAME "
                "to spec.externalName",
        NXDOMAIN: "an ExternalName Service does have a DNS name inside the cluster: a CNAME to spec.externalName, "
                  "which the client then resolves in turn"},
        unseen=run.why_not.get("external_name_answer") or NOT_RUN, who="this cluster's DNS")
    return facts


def address_count(result: ProbeResult | None) -> tuple[int | None, str]:
    """How many addresses a name resolved to, or (None, why) when the lookup cannot tell."""
    if result is None:
        return None, "the grader's DNS lookup did not run"
    if result.outcome is Outcome.FAILED:
        return None, f"the grader's DNS lookup could not run ({result.detail})"
    if result.addresses:
        return len(result.addresses), ""
    if "NXDOMAIN" in result.detail:
        return 0, ""
    return None, f"the grader's DNS lookup got no answer ({result.detail or 'no output'})"


def alias_answer(cname: ProbeResult | None, lookup: ProbeResult | None) -> tuple[str | None, str]:
    """What the DNS answered for the ExternalName Service: CNAME, OWN_IP (an address, no CNAME) or NXDOMAIN."""
    if cname is None or lookup is None:
        return None, "the grader's DNS lookup did not run"
    if cname.records:
        return CNAME, ""
    if cname.outcome is Outcome.FAILED or not cname.detail.startswith("no CNAME record"):
        return None, f"the grader's CNAME query got no answer ({cname.detail or 'no output'})"
    if lookup.addresses:
        return OWN_IP, ""
    if lookup.outcome is Outcome.BLOCKED and "NXDOMAIN" in lookup.detail:
        return NXDOMAIN, ""
    return None, f"the grader's DNS lookup got no answer ({lookup.detail or 'no output'})"


def node_port_answer(results: Sequence[ProbeResult]) -> tuple[bool | None, str]:
    """Whether requests to a node port answered; (None, why) when no request could run."""
    if any(r.outcome is Outcome.ALLOWED for r in results):
        return True, ""
    failed = next((r for r in results if r.outcome is not Outcome.BLOCKED), None)
    if failed is not None or not results:
        return None, f"the grader's request could not run ({failed.detail if failed else 'no request'})"
    return False, ""


def predict_pod(namespace: str, name: str, image: str, node: str) -> dict:
    """A grader's web pod (netexec). The one to be made unready is ready while /tmp/ready exists: an exec probe
    every second, so only that pod has one, and it is deleted after each check (no exec loop left running)."""
    pod = probe.probe_pod(namespace, name, image, node=node, labels={PREDICT_LABEL: "web"})
    if name != UNREADY_POD:
        return pod
    container = pod["spec"]["containers"][0]
    container.pop("args", None)
    container["command"] = ["sh", "-c", f"touch {READY_FILE} && exec /agnhost netexec --http-port={probe.HTTP_PORT} "
                                        f"--udp-port={probe.UDP_PORT}"]
    container["readinessProbe"] = {"exec": {"command": ["cat", READY_FILE]}, "periodSeconds": 1,
                                   "failureThreshold": 1}
    return pod


def predict_services(namespace: str) -> list[dict]:
    """The grader's four Services: ClusterIP, headless, NodePort over one pod, ExternalName."""
    def service(name: str, spec: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                "spec": spec}

    web = {PREDICT_LABEL: "web"}
    ports = [{"name": "http", "port": 80, "targetPort": probe.HTTP_PORT, "protocol": "TCP"}]
    return [service(PREDICT_SERVICE, {"selector": web, "ports": ports}),
            service(PREDICT_HEADLESS, {"clusterIP": "None", "selector": web, "ports": ports}),
            service(PREDICT_NODEPORT, {"type": "NodePort", "externalTrafficPolicy": "Cluster",
                                       "selector": {probe.PROBE_NAME_LABEL: SOLO_POD}, "ports": ports}),
            service(PREDICT_ALIAS, {"type": "ExternalName",
                                    "externalName": f"{PREDICT_SERVICE}.{namespace}.svc.{CLUSTER_DOMAIN}"})]


def _wait_pod(cluster, ns: str, name: str, ready: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        pod = cluster.get_pod(ns, name)
        if pod is not None and is_ready(pod) == ready:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def _settled_endpoints(cluster, ns: str, service: str, want: set[str], timeout: float | None = None):
    """The Service's endpoints once its ready ones are the pods ``want`` (EndpointSlices trail pod readiness by a
    moment), or as they are after ``timeout`` s: what is counted is what the cluster shows then."""
    deadline = time.monotonic() + (_kit.ENDPOINTS_SETTLE if timeout is None else timeout)
    while True:
        eps = cluster.endpoints(ns, service)
        if {e.pod for e in eps if e.ready} == want or time.monotonic() >= deadline:
            return eps
        time.sleep(0.3)


def _remove_unready(cluster, ns: str) -> None:
    """Delete the pod made unready: a grader's pod must not stay unready (every later check waits for all pods of
    the namespace to be ready); the next predict check creates it again."""
    try:
        cluster.delete({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": UNREADY_POD, "namespace": ns}})
    except K8sLabError:
        pass


def _unready_experiment(ctx, why_not: dict) -> tuple[list, list]:
    """Make k8slab-web-c unready; returns the settled endpoints of the ClusterIP and the headless Service."""
    cluster, ns = ctx.cluster, ctx.namespace()
    _settled_endpoints(cluster, ns, PREDICT_SERVICE, set(PREDICT_PODS))  # the starting point: all three ready
    rc, _, err = cluster.exec(ns, UNREADY_POD, ["rm", "-f", READY_FILE], timeout=10)
    reason = ""
    if rc != 0:
        reason = f"the grader could not make {UNREADY_POD} unready (exit {rc}: {err.strip()[:200]})"
    elif not _wait_pod(cluster, ns, UNREADY_POD, False, UNREADY_TIMEOUT):
        reason = f"{UNREADY_POD} was still ready {UNREADY_TIMEOUT:g} s after its readiness check started failing"
    if reason:
        why_not.update(ready_endpoints=reason, headless_addresses=reason)
        return [], []
    ready = {name for name in PREDICT_PODS if (pod := cluster.get_pod(ns, name)) is not None and is_ready(pod)}
    return (_settled_endpoints(cluster, ns, PREDICT_SERVICE, ready),
            _settled_endpoints(cluster, ns, PREDICT_HEADLESS, ready))


def _fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def predict_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    nodes = probe.worker_nodes(cluster)
    if not nodes:
        raise CheckFailed("not verifiable on this cluster: no node is ready to run the grader's pods",
                          hint="run `make doctor`, then check again")
    node_a, node_b = nodes[0], (nodes[1] if len(nodes) > 1 else "")
    placement = dict(zip(PREDICT_PODS, (node_a, node_b or node_a, node_b or node_a)))
    try:
        image = probe.agnhost_image(cluster)
        cluster.ensure_pods([predict_pod(ns, name, image, node) for name, node in placement.items()])
        source = start_client(ctx)
        cluster.apply(predict_services(ns))
        cluster.wait_ready([ns], timeout=60)
        wait_client(ctx)
    except K8sLabError as error:
        raise CheckFailed(f"not verifiable on this cluster: the grader could not set up its experiment "
                          f"({error.message})", hint="run `make doctor`, then check again") from None
    why_not: dict[str, str] = {}
    headless, alias = _fqdn(PREDICT_HEADLESS, ns), _fqdn(PREDICT_ALIAS, ns)
    try:
        eps, headless_eps = _unready_experiment(ctx, why_not)
        dns = [probe.ProbeSpec(source, "dns", alias, record="CNAME", expect=(_fqdn(PREDICT_SERVICE, ns),),
                               label=f"CNAME {alias}"),
               probe.ProbeSpec(source, "dns", alias, label=f"DNS {alias}")]
        if "headless_addresses" not in why_not:
            dns.append(probe.ProbeSpec(source, "dns", headless, label=f"DNS {headless}",
                                       expect=tuple(sorted(e.ip for e in headless_eps if e.ready))))
        # CoreDNS caches an answer up to 5 s (an earlier run's): ask again while it differs from the EndpointSlices
        by_label = {r.spec.target_label: r for r in probe.probe_until(ctx.prober, dns, _answered, attempts=4,
                                                                      deadline_s=15, pause_s=2.0)}
        node_rows, np_results = _node_port_experiment(ctx, node_a, node_b, why_not)
    except K8sLabError as error:
        raise CheckFailed(f"not verifiable on this cluster: the grader's experiment could not run ({error.message})",
                          hint="run `make doctor`, then check again") from None
    finally:
        _remove_unready(cluster, ns)
    headless_result = by_label.get(f"DNS {headless}")
    cname_result, lookup_result = by_label[f"CNAME {alias}"], by_label[f"DNS {alias}"]
    ready_count = None if "ready_endpoints" in why_not else len([e for e in eps if e.ready])
    headless_count = None
    if "headless_addresses" not in why_not:
        headless_count, why_not["headless_addresses"] = address_count(headless_result)
    alias_kind, why_not["external_name_answer"] = alias_answer(cname_result, lookup_result)
    answered = None
    if "node_port_other_node" not in why_not:
        answered, why_not["node_port_other_node"] = node_port_answer(np_results)
    why_not = {key: reason for key, reason in why_not.items() if reason}
    run = PredictRun(ready_endpoints=ready_count, headless_addresses=headless_count, node_port_answered=answered,
                     alias=alias_kind, why_not=why_not)
    rows = [
        (f"{PREDICT_SERVICE} selects {', '.join(PREDICT_PODS)}; {UNREADY_POD} made unready (rm {READY_FILE})",
         why_not.get("ready_endpoints") or f"{ready_count} ready endpoints ({len(eps)} listed in its EndpointSlices)"),
        (f"nslookup {headless}", why_not.get("headless_addresses") or
         f"{headless_count} addresses: {', '.join(headless_result.addresses) or '(none)'}"),
        *node_rows,
        (f"dig -t CNAME {alias}", why_not.get("external_name_answer") or
         (", ".join(f"CNAME {target}" for _, target in cname_result.records) or
          f"no CNAME; nslookup: {', '.join(lookup_result.addresses) or lookup_result.detail}")),
    ]
    evidence = [Evidence.table("What the cluster did", ("experiment", "result"), rows)]
    if eps:
        evidence.append(endpoints_evidence(PREDICT_SERVICE, eps))
    evidence.append(Evidence.command("Look yourself (the grader's DNS lookup)",
                                     (headless_result or cname_result).command))
    return judge_answers(ctx.answers, prediction_facts(run), evidence=evidence,
                         hint=f'predict from what each kind of Service does (the three parts at the top of the '
                              f'notebook), then read the table; hint("{LAB_ID}", "predict") gives more')


def _node_port_experiment(ctx, node_a: str, node_b: str, why_not: dict) -> tuple[list, list]:
    """Requests to k8slab-solo's node port on node B (judged) and on node A (shown), from outside the cluster.
    Returns (table rows, the results on node B)."""
    svc = ctx.cluster.get_service(ctx.namespace(), PREDICT_NODEPORT)
    port = next((p.node_port for p in (svc.spec.ports or []) if p.node_port), None) if svc is not None else None
    addresses = dict(ctx.cluster.node_addresses())
    if not node_b or not addresses.get(node_b):
        why_not["node_port_other_node"] = "the cluster has a single node: no node is without the Service's pod"
        return [], []
    if not port:
        why_not["node_port_other_node"] = f"Service {PREDICT_NODEPORT} got no node port"
        return [], []
    vantage = outside_vantage(ctx)
    judged = [vantage.http(addresses[node_b], port, f"node B {node_b} {addresses[node_b]}:{port}") for _ in range(3)]
    shown = [vantage.http(addresses[node_a], port, f"node A {node_a} {addresses[node_a]}:{port}")] \
        if addresses.get(node_a) else []
    results = probe.probe_until(vantage.runner, judged + shown, _answered, attempts=3, deadline_s=12, pause_s=1.0)
    rows = []
    for label in dict.fromkeys(r.spec.target_label for r in results):
        mine = [r for r in results if r.spec.target_label == label]
        ok = [r.output.strip()[:60] for r in mine if r.outcome is Outcome.ALLOWED]
        rows.append((f"{PREDICT_NODEPORT}'s NodePort on {label} (its only pod, {SOLO_POD}, is on node A), from "
                     f"{vantage.where}",
                     f"answered {len(ok)}/{len(mine)}, by {', '.join(sorted(set(ok)))}" if ok
                     else f"no answer ({mine[0].detail})"))
    return rows, results[:len(judged)]


# a failing live check also names the Service fields that hand the traffic to other pods or another controller
EXERCISES = {
    "clusterip": Exercise(static=_static(static_clusterip),
                          live=naming_traffic_fields(clusterip_live, "api-service")),
    "headless": Exercise(static=_static(static_headless),
                         live=naming_traffic_fields(headless_live, "api-named", "api-headless")),
    "nodeport": Exercise(static=_static(static_nodeport),
                         live=naming_traffic_fields(nodeport_live, "api-nodeport")),
    "loadbalancer": Exercise(static=_static(static_loadbalancer),
                             live=naming_traffic_fields(loadbalancer_live, "api-lb")),
    "externalname": Exercise(static=_static(static_externalname), live=externalname_live),
    "readiness": Exercise(static=_static(static_readiness),
                          live=naming_traffic_fields(readiness_live, "api-service")),
    "break-fix": Exercise(static=_static(static_break_fix), live=naming_traffic_fields(break_fix_live, CATALOG)),
    "predict": Exercise(live=predict_live, questions=PREDICTIONS),
}
