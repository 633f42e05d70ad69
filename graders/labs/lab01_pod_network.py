"""Lab 01-pod-network: the Kubernetes network model, proven with real packets.

* ``four-pods`` — the model's diagram: pods a, b on one worker and c, d on the other (placed any correct way).
  Every pod asks every other pod's netexec for ``/clientip`` by pod IP: the request must arrive, and the server
  must see the client's own pod IP (no NAT). A host-network agent of the grader on each worker (a pod of the
  grader's, not subject to the submission policy) reaches the pods of its node.
* ``shared-netns`` — one pod, two containers: the sidecar's own output must show that the app saw its requests
  come from loopback, and every container sees the pod's IP.
* ``stable-names`` — a StatefulSet behind a headless Service: ``web-0.web.<ns>.svc.cluster.local`` resolves to
  web-0's IP; the grader deletes web-0 and shows the name following the replacement pod to its new IP.
* ``dns-search`` — with the client pod's DNS settings (dnsPolicy, dnsConfig: read from its spec, never from its
  container), the short name ``db`` resolves to a Service in another namespace through the search list (ndots
  at least 1) while ``kubernetes.default`` still resolves; the lookups run in a grader's pod with the same settings.

The judgements on probe results and logs are pure functions (unit-tested); the check functions gather facts.
"""
from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders import probe
from graders.dataplane import Route, agent_pod, parse_proc_route, read_in_pod, route_to  # noqa: F401 — tests reach them here
from graders.errors import CheckFailed, ClusterError
from graders.exercise import Exercise
from graders.labs._kit import (HOSTNAME_PATH, context_of, is_ready, kubectl, learner_pods, pods_evidence,
                               probe_failed, problem, require_service, selector_finding)
from graders.model import Evidence, Matrix, MatrixCell, Outcome, StepResult
from graders.probe import ProbeResult, ProbeSpec, probe_until, start_probe_pods
from graders.questions import NO_NEXT_HOP, Fact, Question, judge as judge_answers, not_observable, observed
from graders.workloads import workloads

LAB_ID = "01-pod-network"
PORT = 8080
PROBE_POD = "k8slab-probe"
AGENT_PREFIX = "k8slab-agent-"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


# ================================================================================ four-pods
PAIRS = (("a", "b"), ("c", "d"))
FOUR = tuple(name for pair in PAIRS for name in pair)


def placement_problem(nodes: Mapping[str, str], control_plane: set[str]) -> str:
    """Why {pod: node} is not the diagram ("" when it is): a, b share a worker, c, d share the other."""
    for name in FOUR:
        if nodes[name] in control_plane:
            return (f"Pod {name} runs on the control-plane node {nodes[name]}: the diagram puts every pod on a worker "
                    f"(the control-plane's taint keeps ordinary pods away; yours tolerates it or is pinned there)")
    for first, second in PAIRS:
        if nodes[first] != nodes[second]:
            return (f"Pods {first} and {second} must share a worker: {first} runs on {nodes[first]}, {second} on "
                    f"{nodes[second]}")
    (a, _), (c, _) = PAIRS
    if nodes[a] == nodes[c]:
        return (f"Pods c and d must run on the other worker: all four run on {nodes[a]}, so no packet crosses "
                f"between nodes")
    return ""


@dataclass(frozen=True)
class Verdict:
    """What the probes of four-pods say: a failure message and hint (no result when every clause holds)."""

    message: str = ""
    hint: str = ""
    result: ProbeResult | None = None  # the probe that shows it
    probe_could_not_run: bool = False  # the grader's problem, not the learner's


def judge_four_pods(results: Sequence[ProbeResult], ips: Mapping[str, str], agents: Mapping[str, str]) -> Verdict:
    """Pod -> pod clientip probes must be answered and show the client's own pod IP; agent -> pod HTTP
    probes must be answered. ``ips`` {pod: IP}; ``agents`` {agent pod: node}. Refused targets are named
    together, since one pod that serves nothing fails every cell of its column."""
    pod_probes = [r for r in results if r.spec.kind == "clientip"]
    agent_probes = [r for r in results if r.spec.kind == "http"]
    failed = next((r for r in results if r.outcome is Outcome.FAILED), None)
    if failed is not None:
        return Verdict(result=failed, probe_could_not_run=True)
    refused: dict[str, list[str]] = {}
    for r in pod_probes:
        if r.outcome is Outcome.BLOCKED and "refused" in r.detail:
            refused.setdefault(r.spec.label, []).append(r.spec.pod)
    if refused:
        target = sorted(refused)[0]
        first = next(r for r in pod_probes if r.spec.label == target and r.outcome is Outcome.BLOCKED)
        return Verdict(
            f"nothing accepts connections on port {PORT} in Pod {target} ({ips.get(target, '?')}): requests from "
            f"{', '.join(sorted(refused[target]))} were refused",
            f"every pod must run agnhost `netexec --http-port={PORT}`", first)
    blocked = next((r for r in pod_probes if r.outcome is not Outcome.ALLOWED), None)
    if blocked is not None:
        return Verdict(f"Pod {blocked.spec.pod} cannot reach Pod {blocked.spec.label} at {blocked.spec.target}:{PORT} "
                       f"({blocked.detail}): the model says every pod reaches every pod directly",
                       "`make doctor` checks pod-to-pod traffic across nodes", blocked)
    for r in pod_probes:
        if r.client_ip != ips.get(r.spec.pod):
            return Verdict(f"Pod {r.spec.label} saw the request of Pod {r.spec.pod} come from {r.client_ip or '?'}, "
                           f"not from {r.spec.pod}'s pod IP {ips.get(r.spec.pod)}: the packet was NATed on the way",
                           "the CNI must route pod to pod without masquerading (`iptables -t nat -S` on the node)", r)
    for r in agent_probes:
        if r.outcome is not Outcome.ALLOWED:
            return Verdict(f"the node agent on {agents.get(r.spec.pod, '?')} could not reach Pod {r.spec.label} on "
                           f"its own node ({r.detail})", "`make doctor` checks node-to-pod traffic", r)
    return Verdict()


def _control_plane_nodes(cluster) -> set[str]:
    return {n.metadata.name for n in cluster.list_nodes() if CONTROL_PLANE_LABEL in (n.metadata.labels or {})}


def _reachability(results: Sequence[ProbeResult], ips: Mapping[str, str]) -> Evidence:
    cells = []
    for r in results:
        if r.spec.kind != "clientip":
            continue
        why = f"server saw {r.client_ip}" if r.outcome is Outcome.ALLOWED else r.detail
        if r.outcome is Outcome.ALLOWED and r.client_ip != ips.get(r.spec.pod):
            why += " (NAT!)"
        cells.append(MatrixCell(r.spec.pod, r.spec.label, Outcome.ALLOWED, r.outcome, why, r.command))
    return Evidence.matrix("Pod to pod by pod IP (GET /clientip)", Matrix(FOUR, FOUR, tuple(cells)))


def _clientip_table(results: Sequence[ProbeResult], ips: Mapping[str, str]) -> Evidence:
    rows = [(r.spec.pod, ips.get(r.spec.pod, "?"), r.spec.label, r.client_ip or "-",
             "yes" if r.client_ip == ips.get(r.spec.pod) else "NO")
            for r in results if r.spec.kind == "clientip" and r.outcome is Outcome.ALLOWED]
    return Evidence.table("What each server saw (agnhost /clientip)",
                          ("client", "client's pod IP", "server", "server saw", "same"), rows)


def four_pods_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    pods = {p.metadata.name: p for p in learner_pods(cluster, ns)}
    table = pods_evidence(list(pods.values()))
    for name in FOUR:
        if name not in pods:
            raise CheckFailed(f"no Pod named {name} in namespace {ns}: the diagram has four pods, a and b on one "
                              f"worker, c and d on the other (pods there: {', '.join(sorted(pods)) or 'none'})",
                              hint="metadata.name of the four pods: a, b, c, d", evidence=(table,))
    nodes = {name: pods[name].spec.node_name for name in FOUR}
    wrong = placement_problem(nodes, _control_plane_nodes(cluster))
    if wrong:
        raise CheckFailed(wrong, hint="pin each pair with nodeSelector `kubernetes.io/hostname: <worker>`, or keep "
                                      "pairs together with podAffinity and apart with podAntiAffinity",
                          evidence=(table,))
    ips = {name: pods[name].status.pod_ip for name in FOUR}
    image = probe.agnhost_image(cluster)
    agents = {f"{AGENT_PREFIX}{i + 1}": nodes[pair[0]] for i, pair in enumerate(PAIRS)}
    cluster.ensure_pods([agent_pod(ns, name, image, node) for name, node in agents.items()])
    cluster.wait_ready([ns], timeout=60)
    specs = [ProbeSpec(f"{ns}/{src}", "clientip", ips[dst], PORT, label=dst)
             for src in FOUR for dst in FOUR if src != dst]
    specs += [ProbeSpec(f"{ns}/{agent}", "http", ips[dst], PORT, path=HOSTNAME_PATH, label=dst)
              for agent, node in agents.items() for dst in FOUR if nodes[dst] == node]
    results = probe_until(ctx.prober, specs, lambda s: Outcome.ALLOWED, attempts=3, deadline_s=15)
    evidence = (_reachability(results, ips), _clientip_table(results, ips), table)
    verdict = judge_four_pods(results, ips, agents)
    if verdict.probe_could_not_run:
        raise probe_failed(verdict.result, verdict.result.spec.label, evidence)
    if verdict.result is not None:
        raise CheckFailed(verdict.message, hint=verdict.hint,
                          evidence=(*evidence, Evidence.command("Reproduce", verdict.result.command)))
    agent_rows = [(r.spec.pod, agents[r.spec.pod], r.spec.label, r.output.strip()[:40]) for r in results
                  if r.spec.kind == "http"]
    return StepResult("live", True,
                      f"a, b on {nodes['a']} and c, d on {nodes['c']}; all 12 pod-to-pod requests arrived by pod IP, "
                      f"each server saw the client's own pod IP (no NAT), and each node's agent reached its pods",
                      evidence=(*evidence, Evidence.table("Node agents (hostNetwork) to the pods of their node",
                                                          ("agent", "node", "pod", "answered"), agent_rows)))


# ================================================================================ shared-netns
DUO = "duo"
_CLIENT_LINE = re.compile(r"^\[?([0-9a-fA-F:.]+?)\]?:(\d+)$")
_UNRESOLVED = re.compile(r"Could not resolve host: (\S+)")
SIDECAR_WAIT_S = 8.0


@dataclass(frozen=True)
class LogLine:
    """One line of a container's output that says what a request to the app gave."""

    container: str
    kind: str  # "client" (the app's /clientip answer), "unresolved", "refused", "timeout"
    value: str  # the client address, the unresolved name, or the line


def classify_line(container: str, line: str) -> LogLine | None:
    line = line.strip()
    match = _CLIENT_LINE.match(line)
    if match:
        return LogLine(container, "client", match.group(1))
    match = _UNRESOLVED.search(line)
    if match:
        return LogLine(container, "unresolved", match.group(1))
    if "Resolving timed out" in line:  # a name that walks the whole search list can outlast curl's -m
        return LogLine(container, "unresolved", "")
    if "Failed to connect" in line or "Couldn't connect" in line or "refused" in line.lower():
        return LogLine(container, "refused", line)
    if "timed out" in line.lower():
        return LogLine(container, "timeout", line)
    return None


def last_lines(logs: Mapping[str, str]) -> list[LogLine]:
    """The latest telling line of each container's log ({container: log text})."""
    out = []
    for container, text in logs.items():
        found = [c for c in (classify_line(container, ln) for ln in text.splitlines()) if c is not None]
        if found:
            out.append(found[-1])
    return out


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "0:0:0:0:0:0:0:1")


def judge_sidecar(lines: Sequence[LogLine], pod_ip: str) -> tuple[str, str]:
    """(message, hint) of why the sidecar's output does not show loopback traffic; ("", "") when it does."""
    if any(line.kind == "client" and is_loopback(line.value) for line in lines):
        return "", ""
    by_kind = {line.kind: line for line in reversed(lines)}
    if "client" in by_kind:
        line = by_kind["client"]
        own = " (the pod's own IP)" if line.value == pod_ip else ""
        return (f"the app saw the requests of container {line.container} come from {line.value}{own}, not over "
                f"loopback: the sidecar used a name or address that leaves through eth0",
                "containers of one pod share the network namespace: ask http://localhost:8080 (or 127.0.0.1)")
    if "unresolved" in by_kind:
        name = by_kind["unresolved"].value
        named = f"the name {name}" if name else "the host name in its URL"
        return (f"the requests of container {by_kind['unresolved'].container} fail: {named} does not resolve "
                f"(no Service of that name exists — and none is needed inside one pod)",
                "containers of one pod reach each other on localhost")
    if "refused" in by_kind:
        line = by_kind["refused"]
        return (f"the requests of container {line.container} to the app fail with connection refused "
                f"({line.value[:120]}): nothing listens where it asks; the app serves port {PORT}",
                f"ask http://localhost:{PORT}/clientip")
    if "timeout" in by_kind:
        line = by_kind["timeout"]
        return (f"the requests of container {line.container} time out ({line.value[:120]})",
                f"ask http://localhost:{PORT}/clientip")
    return (f"no container of Pod {DUO} printed an answer of the app's /clientip (an address like 127.0.0.1:41234)",
            "the sidecar must print each answer on its own line: `curl -sS http://localhost:8080/clientip; echo`")


def _containers(pod) -> list[str]:
    """The pod's long-running containers: app containers and native sidecars (restartPolicy: Always)."""
    native = [c.name for c in pod.spec.init_containers or [] if getattr(c, "restart_policy", None) == "Always"]
    return native + [c.name for c in pod.spec.containers or []]


def _addresses(cluster, ns: str, containers: Sequence[str]) -> dict[str, str]:
    """{container: the addresses it sees on its interfaces} (`hostname -I`; "?" where it cannot run)."""
    seen = {}
    for name in containers:
        try:
            rc, out, _ = cluster.exec(ns, DUO, ["hostname", "-I"], timeout=5, container=name)
        except ClusterError:
            rc, out = 1, ""
        seen[name] = out.strip() if rc == 0 else "?"
    return seen


def shared_netns_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    pods = learner_pods(cluster, ns)
    table = pods_evidence(pods)
    pod = next((p for p in pods if p.metadata.name == DUO), None)
    if pod is None:
        raise CheckFailed(f"no Pod named {DUO} in namespace {ns} (pods there: "
                          f"{', '.join(p.metadata.name for p in pods) or 'none'})",
                          hint=f"metadata.name: {DUO}", evidence=(table,))
    containers = _containers(pod)
    if len(containers) < 2:
        others = [p.metadata.name for p in pods if p.metadata.name != DUO]
        extra = (f"; {', '.join(others)} is another pod, with a network namespace — and a localhost — of its own"
                 if others else "")
        only = containers[0] if containers else "-"
        raise CheckFailed(f"Pod {DUO} has only one container ({only}): the sidecar must run in the same pod to "
                          f"share its network namespace{extra}",
                          hint="add the sidecar to spec.containers of the same Pod", evidence=(table,))
    ip = pod.status.pod_ip
    placed = start_probe_pods(cluster, ns, [PROBE_POD], avoid_node=pod.spec.node_name)
    spec = ProbeSpec(f"{ns}/{PROBE_POD}", "http", ip, PORT, path=HOSTNAME_PATH, label=f"{DUO}:{PORT}")
    reached = probe_until(ctx.prober, [spec], {spec: Outcome.ALLOWED}, attempts=3, deadline_s=15)[0]
    reproduce = Evidence.command("Reproduce", reached.command)
    if reached.outcome is Outcome.FAILED:
        raise probe_failed(reached, f"Pod {ns}/{DUO}")
    if reached.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"nothing accepts connections on port {PORT} in Pod {ns}/{DUO} at {ip} (from {PROBE_POD} on "
                          f"{placed.get(PROBE_POD) or '?'}): {reached.detail}",
                          hint=f"the app container runs agnhost `netexec --http-port={PORT}`", evidence=(reproduce,))
    deadline = time.monotonic() + SIDECAR_WAIT_S
    while True:
        logs = {name: cluster.pod_logs(ns, DUO, name, tail=5) for name in containers}
        lines = last_lines(logs)
        message, hint = judge_sidecar(lines, ip)
        if not message or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    log_table = Evidence.table("The last lines each container printed", ("container", "log (last lines)"),
                               [(name, " | ".join(text.strip().splitlines()[-3:]) or "(nothing)")
                                for name, text in logs.items()])
    if message:
        raise CheckFailed(message, hint=hint, evidence=(log_table, table))
    seen = _addresses(cluster, ns, containers)
    addr_table = Evidence.table(f"Addresses each container sees (`hostname -I`); the pod IP is {ip}",
                                ("container", "addresses"), list(seen.items()))
    apart = [name for name, text in seen.items() if text != "?" and ip not in text.split()]
    if apart:
        raise CheckFailed(f"containers {', '.join(apart)} do not see the pod IP {ip}", evidence=(addr_table,))
    loop = next(line for line in lines if line.kind == "client" and is_loopback(line.value))
    every = "both" if len(containers) == 2 else f"all {len(containers)}"
    return StepResult("live", True,
                      f"the app answered on the pod IP {ip}:{PORT} from another node; container {loop.container} "
                      f"reached it over loopback (the app saw {loop.value}); {every} containers share the pod's "
                      f"network namespace",
                      evidence=(log_table, addr_table))


# ================================================================================ stable-names
WEB = "web"
POD0 = f"{WEB}-0"
REPLACE_TIMEOUT_S = 60.0


def stable_names_static(ctx) -> StepResult:
    ns = ctx.namespace()
    statefulsets = ctx.objects_of("StatefulSet")
    sts = ctx.find("StatefulSet", WEB)
    if sts is None:
        found = ", ".join(s.name for s in statefulsets) or "none"
        raise CheckFailed(f"no StatefulSet named {WEB} in your files (found: {found}): its pods are named "
                          f"{WEB}-0, {WEB}-1, …", hint=f"metadata.name: {WEB}")
    svc = require_service(ctx.objects, WEB, f"the pods' DNS names are <pod>.{WEB}.{ns}.svc.cluster.local")
    cluster_ip = (svc.obj.get("spec") or {}).get("clusterIP")
    if cluster_ip != "None":
        shown = cluster_ip or "unset, so Kubernetes allocates a virtual IP"
        raise problem(svc, ("spec",), f"is not headless (clusterIP: {shown}): its name answers with one virtual IP, "
                                      f"and the pods get no DNS records of their own",
                      hint="set spec.clusterIP: None")
    service_name = (sts.obj.get("spec") or {}).get("serviceName")
    if service_name != WEB:
        raise problem(sts, ("spec", "serviceName"),
                      f"serviceName: {service_name!r} does not name the headless Service {WEB}, so the pods get no "
                      f"names like {POD0}.{WEB}.{ns}.svc.cluster.local",
                      hint="a StatefulSet's serviceName must name its governing headless Service: compare it with "
                           "that Service's metadata.name")
    finding = selector_finding(svc, workloads(ctx.objects), ns)
    if finding is not None:
        raise CheckFailed(finding.message, hint=finding.hint)
    return StepResult("static", True, f"StatefulSet {WEB} is governed by the headless Service {WEB}, which selects "
                                      f"its pods")


def _wait_rollout(cluster, ns: str, timeout: float) -> list:
    """The StatefulSet's pods once web-0 … web-<n-1> are all Ready (they start one after the other, and the
    engine's readiness wait only sees pods that exist already)."""
    sts = cluster.get("apps/v1", "StatefulSet", ns, WEB) or {}
    replicas = (sts.get("spec") or {}).get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 1:
        raise CheckFailed(f"StatefulSet {WEB} has replicas: {replicas}, so {WEB}-0 never exists and its name has "
                          f"nothing to resolve to", hint="a stable name needs at least one pod: replicas ≥ 1")
    names = [f"{WEB}-{i}" for i in range(replicas)]
    deadline = time.monotonic() + timeout
    while True:
        pods = {p.metadata.name: p for p in learner_pods(cluster, ns)}
        waiting = [n for n in names if n not in pods or not is_ready(pods[n])]
        if not waiting:
            return [pods[n] for n in names]
        problems = [cluster.diagnose_pod(pods[n]) for n in waiting if n in pods]
        fatal = [p for p in problems if p is not None and p.fatal]
        if fatal or time.monotonic() >= deadline:
            why = "; ".join(str(p) for p in (fatal or [p for p in problems if p is not None])) or \
                f"{', '.join(waiting)} not created yet"
            raise CheckFailed(f"StatefulSet {WEB} did not bring up {', '.join(waiting)} within {timeout:g} s: {why}",
                              hint="a StatefulSet starts its pods in order: each waits until the previous one is Ready",
                              evidence=(pods_evidence(list(pods.values())),))
        time.sleep(0.5)


def _wait_replacement(cluster, ns: str, old_uid: str):
    """The new web-0 once it is Ready (the StatefulSet recreates it under the same name)."""
    deadline = time.monotonic() + REPLACE_TIMEOUT_S
    pod = None
    while time.monotonic() < deadline:
        pod = cluster.get_pod(ns, POD0)
        if pod is not None and pod.metadata.uid != old_uid and is_ready(pod) and pod.status.pod_ip:
            return pod
        time.sleep(0.5)
    problem_ = cluster.diagnose_pod(pod) if pod is not None and pod.metadata.uid != old_uid else None
    raise CheckFailed(f"after the grader deleted {POD0}, the StatefulSet did not bring a Ready {POD0} back within "
                      f"{REPLACE_TIMEOUT_S:g} s ({problem_ or 'the old pod is still terminating or no pod'})",
                      hint="a readiness probe that passes, and a short terminationGracePeriodSeconds, help")


def _resolve(ctx, source: str, fqdn: str, ip: str, when: str, pod: str = POD0) -> ProbeResult:
    dns = ProbeSpec(source, "dns", fqdn, label=f"dns {fqdn}", expect=(ip,))
    result = probe_until(ctx.prober, [dns], {dns: Outcome.ALLOWED}, attempts=12, deadline_s=30)[0]
    if result.outcome is Outcome.FAILED:
        raise probe_failed(result, fqdn)
    if result.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"{when}, {fqdn} did not resolve to {pod}'s IP {ip} ({result.detail})",
                          hint=f"the headless Service {WEB} must select the StatefulSet's pods, and the "
                               f"StatefulSet's serviceName must be {WEB}",
                          evidence=(Evidence.command("Reproduce", result.command),))
    return result


def _get_by_name(ctx, source: str, fqdn: str, when: str, pod: str = POD0) -> ProbeResult:
    http = ProbeSpec(source, "http", fqdn, PORT, path=HOSTNAME_PATH, label=f"{fqdn}:{PORT}")
    result = probe_until(ctx.prober, [http], {http: Outcome.ALLOWED}, attempts=3, deadline_s=10)[0]
    reproduce = Evidence.command("Reproduce", result.command)
    if result.outcome is Outcome.FAILED:
        raise probe_failed(result, fqdn)
    if result.outcome is not Outcome.ALLOWED:
        what = "nothing accepts connections on port" if "refused" in result.detail else "no answer on port"
        raise CheckFailed(f"{when}, {fqdn} resolves, but {what} {PORT} in Pod {pod} ({result.detail})",
                          hint=f"the pods must serve HTTP on {PORT}: agnhost `netexec --http-port={PORT}`",
                          evidence=(reproduce,))
    answer = result.output.strip()
    if answer != pod:
        raise CheckFailed(f"{when}, {fqdn}:{PORT}/hostname answered {answer[:60]!r}, not {pod}", evidence=(reproduce,))
    return result


def stable_names_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    before = _wait_rollout(cluster, ns, ctx.spec.ready_timeout)[0]
    start_probe_pods(cluster, ns, [PROBE_POD], avoid_node=before.spec.node_name)
    source = f"{ns}/{PROBE_POD}"
    fqdn = f"{POD0}.{WEB}.{ns}.svc.cluster.local"
    _resolve(ctx, source, fqdn, before.status.pod_ip, "before the grader deleted it")
    _get_by_name(ctx, source, fqdn, "before the grader deleted it")
    cluster.delete({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD0, "namespace": ns}})
    after = _wait_replacement(cluster, ns, before.metadata.uid)
    resolved = _resolve(ctx, source, fqdn, after.status.pod_ip, f"after {POD0} was replaced")
    _get_by_name(ctx, source, fqdn, f"after {POD0} was replaced")
    rows = [("before", before.metadata.uid[:8], before.spec.node_name, before.status.pod_ip),
            ("after the grader deleted it", after.metadata.uid[:8], after.spec.node_name, after.status.pod_ip)]
    table = Evidence.table(f"{POD0}: one name, two pods", ("", "pod uid", "node", "IP (what the name resolved to)"),
                           rows)
    same = before.status.pod_ip == after.status.pod_ip
    moved = (f"the replacement happened to get the same IP {after.status.pod_ip}" if same else
             f"its IP changed from {before.status.pod_ip} to {after.status.pod_ip}")
    return StepResult("live", True,
                      f"{fqdn} resolved to {POD0}'s IP and reached it; the grader deleted {POD0}: {moved}, and the "
                      f"name followed it",
                      evidence=(table, Evidence.command("Reproduce", resolved.command)))


# ================================================================================ fix-the-names (break-fix)
# A colleague's StatefulSet behind a headless Service, deployed broken: clients get NXDOMAIN for web-0's name.
# The starter holds two faults (a readiness probe on a port nothing serves, so no pod is ever Ready and the
# headless Service publishes no record; a Service selector that matches no pod). Judged like stable-names, plus
# the clause the statement adds: the readiness probe stays, since it is what keeps a pod out of DNS until it serves.
def _without_readiness(ctx) -> list[str]:
    sts = ctx.find("StatefulSet", WEB)
    spec = ((sts.obj.get("spec") or {}).get("template") or {}).get("spec") or {} if sts else {}
    return [c.get("name", "?") for c in spec.get("containers") or [] if not c.get("readinessProbe")]


def fix_the_names_static(ctx) -> StepResult:
    stable_names_static(ctx)
    bare = _without_readiness(ctx)
    if bare:
        sts = ctx.find("StatefulSet", WEB)
        raise problem(sts, ("spec", "template", "spec", "containers"),
                      f"container {', '.join(bare)} keeps no readiness probe: the names would resolve, but a pod "
                      f"that does not serve yet would be in DNS too (the statement keeps the probe; fix what it "
                      f"tests instead)", hint="point the probe at the port and path the container serves")
    return StepResult("static", True, f"the headless Service {WEB} selects the StatefulSet's pods, each with a "
                                      f"readiness probe")


def fix_the_names_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    pods = _wait_rollout(cluster, ns, ctx.spec.ready_timeout)
    start_probe_pods(cluster, ns, [PROBE_POD], avoid_node=pods[0].spec.node_name)
    source = f"{ns}/{PROBE_POD}"
    rows = []
    for pod in pods:
        fqdn = f"{pod.metadata.name}.{WEB}.{ns}.svc.cluster.local"
        resolved = _resolve(ctx, source, fqdn, pod.status.pod_ip, "with your fix", pod=pod.metadata.name)
        _get_by_name(ctx, source, fqdn, "with your fix", pod=pod.metadata.name)
        rows.append((fqdn, pod.status.pod_ip, "answers HTTP on 8080"))
    return StepResult("live", True, f"every pod's name resolves to its own IP and answers HTTP: {len(pods)} of "
                                    f"{len(pods)}",
                      evidence=(Evidence.table("Names, as the grader's probe pod resolved them",
                                               ("name", "resolved to", "HTTP"), rows),
                                Evidence.command("Reproduce", resolved.command)))


# ================================================================================ dns-search
# The verdict never comes from the learner's container: its image and command could doctor resolv.conf, nslookup
# or dig. The grader reads the pod's DNS settings from its spec (the API server's copy), works out the
# resolv.conf the kubelet writes for them, and runs the lookups from a pod of its own created with exactly the
# same dnsPolicy and dnsConfig, in the same namespace, on the same node: the same search list and options, the
# grader's binaries. The client's own /etc/resolv.conf is read as evidence only.
DATA_NS = "k8slab-pod-network-data"
CLIENT = "client"
MIRROR_POD = "k8slab-dns-mirror"  # the grader's pod with the client's DNS settings: its lookups are the verdict
NODE_DNS_POD = "k8slab-dns-node"  # the grader's pod with dnsPolicy Default: the node's own resolver
SHORT_NAME = "db"
CLUSTER_NAME = "kubernetes.default"  # resolves only through the cluster's own search domains
# The lowest ndots for which every resolver (glibc, musl, BIND's nslookup) completes CLUSTER_NAME through the
# search list: musl and nslookup never search a name that has at least ndots dots.
MIN_NDOTS = CLUSTER_NAME.count(".") + 1
SVC_SUFFIX = ".svc.cluster.local"
KUBELET_NDOTS = 5  # the option the kubelet writes for every ClusterFirst pod
RESOLVER_NDOTS = 1  # glibc's own default, when no option sets it (dnsPolicy None or Default without one)
MAX_NDOTS = 15  # glibc caps ndots here
MAX_NAMESERVERS = 3  # the kubelet keeps the first three (glibc reads no more)
MAX_SEARCHES = 32  # the kubelet's limit on search domains


def _unique(items) -> tuple[str, ...]:
    """In order, without repeats (the kubelet's omitDuplicates)."""
    return tuple(dict.fromkeys(items))


def _atoi(text: str) -> int:
    """C's atoi: the leading (signed) digits, 0 when there are none — how glibc reads `ndots:`."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class Resolver:
    """A pod's /etc/resolv.conf: what the kubelet made of dnsPolicy and dnsConfig."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    @property
    def ndots(self) -> int:
        """A name with fewer dots than this is tried with each search domain first, any other name as it is
        first. glibc reads each `ndots:N` in order (the last wins) and caps N at 15; a bare `ndots` is ignored."""
        value = RESOLVER_NDOTS
        for option in self.options:
            if option.startswith("ndots:"):
                value = min(_atoi(option[len("ndots:"):]), MAX_NDOTS)
        return max(value, 0)

    def same_as(self, other: "Resolver") -> bool:
        """The same configuration: the order of options means nothing (the kubelet merges them through a map)."""
        return (self.nameservers, self.searches, sorted(self.options)) == \
            (other.nameservers, other.searches, sorted(other.options))

    def text(self) -> str:
        lines = [f"search {' '.join(self.searches)}"] if self.searches else []
        lines += [f"nameserver {server}" for server in self.nameservers]
        return "\n".join(lines + ([f"options {' '.join(self.options)}"] if self.options else []))


def parse_resolv_conf(text: str) -> Resolver:
    fields: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in fields:
            fields[words[0]].extend(words[1:])
    return Resolver(tuple(fields["nameserver"]), tuple(fields["search"]), tuple(fields["options"]))


@dataclass(frozen=True)
class PodDns:
    """A pod's DNS settings as its spec states them: dnsPolicy, hostNetwork and dnsConfig."""

    policy: str = "ClusterFirst"
    host_network: bool = False
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()  # (name, value or None)

    @classmethod
    def of(cls, pod: Mapping) -> "PodDns":
        """From a pod object as the API returns it (camelCase fields)."""
        spec = pod.get("spec") or {}
        config = spec.get("dnsConfig") or {}
        return cls(spec.get("dnsPolicy") or "ClusterFirst", bool(spec.get("hostNetwork")),
                   tuple(config.get("nameservers") or ()), tuple(config.get("searches") or ()),
                   tuple((o.get("name") or "", o.get("value")) for o in config.get("options") or ()))

    @property
    def effective_policy(self) -> str:
        """What the kubelet does: ClusterFirstWithHostNet is ClusterFirst, and ClusterFirst on the host network
        falls back to Default (the node's resolver)."""
        if self.policy == "ClusterFirstWithHostNet" or (self.policy == "ClusterFirst" and not self.host_network):
            return "ClusterFirst"
        return "Default" if self.policy == "ClusterFirst" else self.policy

    def spec_fields(self) -> dict:
        """dnsPolicy and dnsConfig as a pod spec writes them: what the grader's mirror pod copies."""
        config: dict = {}
        if self.nameservers:
            config["nameservers"] = list(self.nameservers)
        if self.searches:
            config["searches"] = list(self.searches)
        if self.options:
            config["options"] = [{"name": n, **({"value": v} if v is not None else {})} for n, v in self.options]
        return {"dnsPolicy": self.policy, **({"dnsConfig": config} if config else {})}

    def rows(self) -> list[tuple[str, str]]:
        options = ", ".join(n if v is None else f"{n}: {v}" for n, v in self.options)
        return [("dnsPolicy", self.policy), ("dnsConfig.nameservers", ", ".join(self.nameservers) or "-"),
                ("dnsConfig.searches", ", ".join(self.searches) or "-"), ("dnsConfig.options", options or "-")]


@dataclass(frozen=True)
class ClusterDns:
    """What the kubelet adds: the cluster DNS servers and domain, and the node's own resolver."""

    nameservers: tuple[str, ...]
    domain: str = "cluster.local"
    host: Resolver = Resolver()  # the node's resolv.conf (a ClusterFirst pod gets its search domains too)

    @classmethod
    def learned(cls, reference: Resolver, namespace: str, node: Resolver | None = None) -> "ClusterDns":
        """From the resolv.conf of a ClusterFirst pod without dnsConfig in ``namespace`` (the grader's probe pod):
        its nameservers are the cluster DNS, its first search domain is <namespace>.svc.<domain>, and the domains
        after the cluster's three are the node's. ``node``: the resolv.conf of a dnsPolicy Default pod, when known."""
        prefix = f"{namespace}.svc."
        first = reference.searches[0] if reference.searches else ""
        domain = first[len(prefix):] if first.startswith(prefix) else "cluster.local"
        own = (f"{namespace}.svc.{domain}", f"svc.{domain}", domain)
        host = node if node is not None else Resolver(searches=tuple(s for s in reference.searches if s not in own))
        return cls(reference.nameservers, domain, host)


def effective_resolver(dns: PodDns, namespace: str, cluster: ClusterDns) -> Resolver:
    """The resolv.conf the kubelet writes for a pod with these settings (kubelet network/dns GetPodDNS): None
    starts empty, Default from the node's resolver, ClusterFirst from the cluster DNS with the search domains
    <ns>.svc.<domain> svc.<domain> <domain> (then the node's) and ndots:5; dnsConfig's nameservers and searches
    are appended without repeats, its options replace those of the same name; at most 3 nameservers."""
    policy = dns.effective_policy
    if policy == "None":
        base = Resolver()
    elif policy == "Default":
        base = cluster.host
    else:
        d = cluster.domain
        base = Resolver(cluster.nameservers, _unique((f"{namespace}.svc.{d}", f"svc.{d}", d, *cluster.host.searches)),
                        (f"ndots:{KUBELET_NDOTS}",))
    options: dict[str, str] = {}
    for option in base.options:
        name, _, value = option.partition(":")
        options[name] = value
    for name, value in dns.options:
        options[name] = value or ""
    return Resolver(_unique(base.nameservers + dns.nameservers)[:MAX_NAMESERVERS],
                    _unique(base.searches + dns.searches)[:MAX_SEARCHES],
                    tuple(f"{name}:{value}" if value else name for name, value in options.items()))


def judge_settings(dns: PodDns, resolver: Resolver, cluster_dns: Sequence[str]) -> tuple[str, str]:
    """(message, hint) of what is wrong with the resolver configuration before any lookup: the server it asks,
    and whether a short name is completed by the search list first; ("", "") when both are right."""
    asked = resolver.nameservers
    others = [server for server in asked if server not in cluster_dns]
    cluster = ", ".join(cluster_dns) or "?"
    policy = dns.effective_policy
    why = {"Default": "with dnsPolicy Default a pod uses its node's resolver, which knows no Service names",
           "None": "with dnsPolicy None a pod asks only the nameservers of its dnsConfig"}.get(
        policy, "dnsConfig.nameservers come after the cluster DNS")
    hint = "keep the default dnsPolicy (ClusterFirst) and add the search domain with dnsConfig.searches"
    if not asked or asked[0] not in cluster_dns:
        return (f"Pod {CLIENT} asks {', '.join(asked) or 'no nameserver'} — not the cluster DNS {cluster}: {why}",
                hint)
    if others and "rotate" in resolver.options:
        return (f"Pod {CLIENT} asks its nameservers in turn (options rotate), and {others[0]} is not the cluster DNS "
                f"{cluster}: every other lookup goes to a server that knows no Service names", hint)
    if resolver.ndots < 1:
        return (f"with ndots {resolver.ndots} (dnsConfig.options) every name counts as complete, even the short name "
                f"{SHORT_NAME}: Pod {CLIENT}'s resolver first asks for `{SHORT_NAME}.` as a top-level name — which "
                f"the cluster DNS forwards to the servers outside the cluster — and then tries the search list "
                f"(glibc) or gives up (musl, nslookup)",
                f"names with fewer dots than ndots are the ones the search list completes first: leave ndots out "
                f"(ClusterFirst gives 5) or keep it at {MIN_NDOTS} or more")
    # Only where the search list could complete the cluster name at all; without the cluster's domains that is
    # the cause to name (judge_lookups).
    if resolver.ndots < MIN_NDOTS and any(d.startswith("svc.") for d in resolver.searches):
        dots = CLUSTER_NAME.count(".")
        return (f"with ndots {resolver.ndots} (dnsConfig.options) the cluster name {CLUSTER_NAME} ({dots} dot) counts as "
                f"complete: musl (Alpine-based images) and nslookup ask for it only as the top-level name "
                f"`{CLUSTER_NAME}.`, which does not exist, and never try the search list (glibc tries it after that "
                f"fails), so whether it resolves would depend on the C library of each image",
                f"the search list is applied to names with fewer dots than ndots: leave ndots out (ClusterFirst "
                f"gives 5) or keep it at {MIN_NDOTS} or more, above the dots of every cluster name a pod uses")
    return "", ""


def judge_lookups(resolver: Resolver, short: ProbeResult, cluster_name: ProbeResult,
                  own_namespace: str, context: str | None = None) -> tuple[str, str]:
    """(message, hint) of why the lookups with the client's settings are not what the exercise asks; ("", "")
    when they are. ``context``: the kube context graded, for the command in a hint (None: the course's)."""
    search = " ".join(resolver.searches) or "(none)"
    wanted = f"{DATA_NS}{SVC_SUFFIX}"
    if short.outcome is not Outcome.ALLOWED:
        if short.answers:
            expected = ", ".join(short.spec.expect)
            return (f"the short name {SHORT_NAME} resolves to {', '.join(short.answers)} with Pod {CLIENT}'s DNS "
                    f"settings, not to Service {DATA_NS}/{SHORT_NAME} ({expected}): a search domain tried before "
                    f"{wanted} finds another {SHORT_NAME} first (search list: {search})",
                    "the search domains are tried in order: the first that has the name wins")
        strays = [d for d in resolver.searches if d.endswith(SVC_SUFFIX)
                  and d[:-len(SVC_SUFFIX)] not in (own_namespace, DATA_NS) and "." not in d[:-len(SVC_SUFFIX)]]
        if strays:
            return (f"the search domain {strays[0]} leads to namespace {strays[0][:-len(SVC_SUFFIX)]}, which has no "
                    f"Service {SHORT_NAME}, so `{SHORT_NAME}` does not resolve from Pod {CLIENT}",
                    f"compare the domain with the namespace of Service {SHORT_NAME}, letter by letter")
        if wanted not in resolver.searches:
            return (f"the short name {SHORT_NAME} does not resolve from Pod {CLIENT}: no search domain leads to "
                    f"namespace {DATA_NS} (search list: {search})",
                    "a Service's name lives under <namespace>.svc.cluster.local: add that domain to "
                    "spec.dnsConfig.searches")
        return (f"the short name {SHORT_NAME} does not resolve from Pod {CLIENT} although the search list has "
                f"{wanted} ({short.detail})",
                f"`{kubectl(f'-n {DATA_NS} get svc', context)}` — is Service {SHORT_NAME} there?")
    if cluster_name.outcome is not Outcome.ALLOWED:
        return (f"{CLUSTER_NAME} no longer resolves from Pod {CLIENT} (search list: {search}): the cluster's own "
                f"search domains are gone", "dnsPolicy None replaces the resolver configuration; with the default "
                                            "ClusterFirst, dnsConfig.searches are added to the cluster's domains")
    return "", ""


def tampering(own: Resolver | None, kubelet: Resolver) -> str:
    """What the client's own /etc/resolv.conf says that the kubelet did not write for its settings ("" when it
    is the kubelet's, or could not be read)."""
    if own is None or own.same_as(kubelet):
        return ""
    changed = [f"{what} {' '.join(mine) or '(none)'} instead of {' '.join(theirs) or '(none)'}"
               for what, mine, theirs in (("search", own.searches, kubelet.searches),
                                          ("nameserver", own.nameservers, kubelet.nameservers),
                                          ("options", sorted(own.options), sorted(kubelet.options)))
               if list(mine) != list(theirs)]
    return (f"Pod {CLIENT}'s own /etc/resolv.conf says {'; '.join(changed)}: the file was changed inside the "
            f"container. The kubelet writes it from the pod's dnsPolicy and dnsConfig, so the grader judges those, "
            f"with lookups from a pod of its own")


def mirror_pod(namespace: str, name: str, image: str, node: str | None, dns: Mapping) -> dict:
    """A pod of the grader's with the given dnsPolicy/dnsConfig (``dns``), pinned to ``node``: it resolves
    names exactly as a pod with those settings there does, with the grader's own tools."""
    manifest = probe.probe_pod(namespace, name, image, node=node)
    spec = manifest["spec"]
    spec.update(dns)
    container = spec["containers"][0]
    container["args"] = ["pause"]  # it only runs lookups
    del container["ports"], container["readinessProbe"]
    return manifest


def _resolv_conf(cluster, ns: str, pod: str) -> str:
    rc, conf, err = cluster.exec(ns, pod, ["cat", "/etc/resolv.conf"], timeout=5)
    if rc != 0:
        raise CheckFailed(f"the grader could not read /etc/resolv.conf in its Pod {ns}/{pod} "
                          f"({err.strip()[:120]}); this says nothing about your manifests",
                          hint="run `make doctor` to check the cluster, then grade again")
    return conf


def _own_resolv_conf(cluster, ns: str) -> str | None:
    """The client's own /etc/resolv.conf, or None when its image cannot show it (evidence only)."""
    try:
        rc, conf, _ = cluster.exec(ns, CLIENT, ["cat", "/etc/resolv.conf"], timeout=5)
    except ClusterError:
        return None
    return conf if rc == 0 else None


def _answer(result: ProbeResult) -> str:
    if result.outcome is Outcome.NOT_RUN:
        return "not asked: " + (result.detail or "the settings are wrong already")
    return ", ".join(result.answers) or "no address (the name does not resolve)"


def dns_search_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    client = cluster.get("v1", "Pod", ns, CLIENT)
    if client is None:
        raise CheckFailed(f"no Pod named {CLIENT} in namespace {ns}", hint=f"metadata.name: {CLIENT}",
                          evidence=(pods_evidence(learner_pods(cluster, ns)),))
    db = cluster.get_service(ctx.namespace(DATA_NS), SHORT_NAME)
    if db is None:
        raise CheckFailed(f"no Service {SHORT_NAME} in namespace {DATA_NS}: data.yaml is given — keep it as it is")
    dns = PodDns.of(client)
    image = probe.agnhost_image(cluster)
    node = (client.get("spec") or {}).get("nodeName")
    grader_pods = [mirror_pod(ns, MIRROR_POD, image, node, dns.spec_fields())]
    if dns.effective_policy == "Default":  # the node's resolver is what such a pod starts from
        grader_pods.append(mirror_pod(ns, NODE_DNS_POD, image, node, {"dnsPolicy": "Default"}))
    cluster.ensure_pods(grader_pods)
    # The cluster DNS and domain are whatever a ClusterFirst pod of the grader's gets (the grader reads nothing
    # outside its namespaces: an autograder's credentials stop there). This also waits for the pods above.
    start_probe_pods(cluster, ns, [PROBE_POD])
    node_conf = parse_resolv_conf(_resolv_conf(cluster, ns, NODE_DNS_POD)) if len(grader_pods) > 1 else None
    cluster_dns = ClusterDns.learned(parse_resolv_conf(_resolv_conf(cluster, ns, PROBE_POD)), ns, node_conf)
    reckoned = effective_resolver(dns, ns, cluster_dns)
    mirror_text = _resolv_conf(cluster, ns, MIRROR_POD)
    kubelet = parse_resolv_conf(mirror_text)  # what the lookups below use: the judge, should the reckoning differ
    own_text = _own_resolv_conf(cluster, ns)
    evidence = [Evidence.table(f"DNS settings in Pod {ns}/{CLIENT}'s spec", ("field", "value"), dns.rows()),
                Evidence.text(f"/etc/resolv.conf the kubelet wrote for these settings (the grader's Pod {MIRROR_POD}, "
                              f"same namespace and node)", mirror_text.strip())]
    if not reckoned.same_as(kubelet):
        evidence.append(Evidence.text("The grader's own reckoning of that file differs (the kubelet's is judged)",
                                      reckoned.text()))
    evidence.append(Evidence.text(f"/etc/resolv.conf inside Pod {CLIENT} (evidence only, not judged)",
                                  own_text.strip() if own_text is not None else "(the client's image cannot show it)"))
    note = tampering(parse_resolv_conf(own_text) if own_text is not None else None, kubelet)
    source = f"{ns}/{MIRROR_POD}"
    short = ProbeSpec(source, "dns", SHORT_NAME, label=f"dns {SHORT_NAME}", expect=(db.spec.cluster_ip,))
    whole = ProbeSpec(source, "dns", CLUSTER_NAME, label=f"dns {CLUSTER_NAME}")
    message, hint = judge_settings(dns, kubelet, cluster_dns.nameservers)
    if message:
        results = [ProbeResult(short, Outcome.NOT_RUN), ProbeResult(whole, Outcome.NOT_RUN)]
    else:
        results = probe_until(ctx.prober, [short, whole], lambda s: Outcome.ALLOWED, attempts=2, deadline_s=10)
        failed = next((r for r in results if r.outcome is Outcome.FAILED), None)
        if failed is not None:
            raise probe_failed(failed, failed.spec.target, tuple(evidence))
        message, hint = judge_lookups(kubelet, results[0], results[1], ns, context_of(ctx))
    evidence.insert(1, Evidence.table(f"Lookups with Pod {CLIENT}'s DNS settings (from the grader's Pod {MIRROR_POD})",
                                      ("name", "outcome", "answer"),
                                      [(r.spec.target, r.outcome.word, _answer(r)) for r in results]))
    if message:
        evidence += [Evidence.command("Reproduce", r.command) for r in results if r.outcome is Outcome.BLOCKED][:1]
        raise CheckFailed(f"{message}. {note}" if note else message, hint=hint, evidence=tuple(evidence))
    if note:
        evidence.append(Evidence.text("Note", note))
    return StepResult("live", True,
                      f"with Pod {CLIENT}'s DNS settings (dnsPolicy {dns.policy}, ndots {kubelet.ndots}), the short "
                      f"name {SHORT_NAME} resolves to Service {DATA_NS}/{SHORT_NAME} ({db.spec.cluster_ip}) and "
                      f"{CLUSTER_NAME} still resolves — looked up by the grader's own pod with the same settings",
                      evidence=tuple(evidence))


# ================================================================================ read-the-network
# An answers exercise (graders.questions): the learner reads values off the live cluster into answers.yaml.
WHEREAMI = "k8slab-whereami"
ANSWERS_FILE = "answers.yaml"
QUESTIONS = (
    Question("worker_pod_range", "the pod range of the first worker (k8slab-worker)", "cidr"),
    Question("worker2_pod_range", "the pod range of the second worker (k8slab-worker2)", "cidr"),
    Question("route_device", f"on the first worker, the device of the route to pod {WHEREAMI}", "name"),
    Question("route_next_hop", f"on the first worker, the next hop of the route to pod {WHEREAMI}", "ip-or-node"),
    Question("pod_mtu", f"the MTU of eth0 inside pod {WHEREAMI}", "number"),
    Question("whereami_node", f"the node that runs pod {WHEREAMI}", "name"),
)


def pod_ranges_of(node_ip: str, pod_cidr: str | None, routes_elsewhere: Sequence[Route]) -> set[str]:
    """The ranges another node routes towards this node — via its address (routing CNIs: kube-router, Calico BGP,
    Flannel host-gw) or via a gateway inside the range itself (Flannel VXLAN's onlink routes) — and, when no route
    says otherwise, the node's spec.podCIDR (CNIs that take their ranges from it)."""
    routed = {str(r.destination) for r in routes_elsewhere
              if r.gateway and r.destination.prefixlen > 0
              and (r.gateway == node_ip or ipaddress.IPv4Address(r.gateway) in r.destination)}
    if routed:
        return routed
    return {pod_cidr} if pod_cidr else set()


def network_facts(workers: Sequence[str], node_ips: Mapping[str, str], pod_cidrs: Mapping[str, str | None],
                  routes: Mapping[str, Sequence[Route]], whereami_ip: str, whereami_node: str,
                  mtu: int | None) -> dict[str, Fact]:
    """What the cluster shows for each question (pure: every input read by the live step). ``routes`` {node:
    its routing table}; two workers expected, the first being the one whose route is asked about."""
    if len(workers) != 2:
        why = f"this lab needs two workers, the cluster has {len(workers)} ({', '.join(workers) or 'none'})"
        return {q.id: not_observable(why) for q in QUESTIONS}
    first, second = workers
    facts: dict[str, Fact] = {}
    ranges_of = {first: pod_ranges_of(node_ips.get(first, ""), pod_cidrs.get(first), routes.get(second, ())),
                 second: pod_ranges_of(node_ips.get(second, ""), pod_cidrs.get(second), routes.get(first, ()))}
    everyone = [ipaddress.ip_network(r) for rs in ranges_of.values() for r in rs]

    def too_wide(answer: str) -> str:
        network = ipaddress.ip_network(answer)
        if len(everyone) > 1 and all(r.subnet_of(network) for r in everyone if r.version == network.version):
            return ("that is the whole pod network, shared by every node: each node owns one slice of it, and that "
                    "slice is the answer")
        return ""

    for key, node, other in (("worker_pod_range", first, second), ("worker2_pod_range", second, first)):
        because = {r: f"that is the range of the other worker, {other}" for r in ranges_of[other] - ranges_of[node]}
        facts[key] = (observed(*sorted(ranges_of[node]), because=because, explain=too_wide) if ranges_of[node] else
                      not_observable(f"{node} has no spec.podCIDR and no other node routes a range to it"))
    route = route_to(routes.get(first, ()), whereami_ip) if whereami_ip else None
    if route is None:
        unknown = not_observable(f"no route on {first} matches pod {WHEREAMI}'s IP ({whereami_ip or 'none yet'})")
        facts["route_device"] = facts["route_next_hop"] = unknown
    else:
        facts["route_device"] = observed(route.device.lower())
        owner = next((n for n, ip in node_ips.items() if ip == route.gateway), None)
        hops = (route.gateway, owner) if route.gateway else (NO_NEXT_HOP,)
        because = {ip: f"that is {n}'s own address; the next hop is where {first} sends the packet"
                   for n, ip in node_ips.items() if n == first}
        because.update({first: f"that is the node the route is on; the next hop is where {first} sends the packet"})
        facts["route_next_hop"] = observed(*hops, because=because)
    loopback = {65536: "that is the MTU of lo, the loopback device; the question is about eth0"}
    facts["pod_mtu"] = observed(mtu, because=loopback) if mtu else not_observable(f"could not read eth0's MTU in pod {WHEREAMI}")
    wrong_node = {n: f"{WHEREAMI} does not run on {n}" for n in (*workers, *node_ips) if n != whereami_node}
    facts["whereami_node"] = (observed(whereami_node, because=wrong_node) if whereami_node else
                              not_observable(f"pod {WHEREAMI} is not scheduled"))
    return facts


def whereami_pod(namespace: str, image: str, node: str) -> dict:
    """The pod the questions are about: an ordinary pod on the second worker (pinned, so every cluster built from
    the course's plan gives the same answer to "which node"; its IP and routes are read live)."""
    return probe.probe_pod(namespace, WHEREAMI, image, node=node)


def read_network_facts(ctx) -> tuple[dict[str, Fact], Evidence]:
    """Gather the facts: nodes from the API; routes from a host-network agent on each worker; the MTU from inside
    the whereami pod. Returns them with a table of where each came from (no values of wrong answers)."""
    ns = ctx.namespace()
    cluster = ctx.cluster
    nodes = {n.metadata.name: n for n in cluster.list_nodes()}
    workers = sorted(name for name, n in nodes.items() if CONTROL_PLANE_LABEL not in (n.metadata.labels or {}))
    node_ips = {name: next((a.address for a in (n.status.addresses or []) if a.type == "InternalIP"), "")
                for name, n in nodes.items()}
    pod_cidrs = {name: n.spec.pod_cidr for name, n in nodes.items()}
    image = probe.agnhost_image(cluster)
    agents = {node: f"{AGENT_PREFIX}{node.rsplit('-', 1)[-1]}" for node in workers}
    pods = [agent_pod(ns, name, image, node) for node, name in agents.items()]
    if len(workers) >= 2:
        pods.append(whereami_pod(ns, image, workers[1]))
    cluster.ensure_pods(pods)
    cluster.wait_ready([ns], timeout=60)
    routes = {node: parse_proc_route(read_in_pod(cluster, ns, agent, ["cat", "/proc/net/route"]))
              for node, agent in agents.items()}
    whereami = cluster.get_pod(ns, WHEREAMI) if len(workers) >= 2 else None
    ip = (whereami.status.pod_ip or "") if whereami is not None and whereami.status else ""
    mtu_text = read_in_pod(cluster, ns, WHEREAMI, ["cat", "/sys/class/net/eth0/mtu"]).strip() if whereami else ""
    facts = network_facts(workers, node_ips, pod_cidrs, routes, ip,
                          whereami.spec.node_name if whereami is not None else "",
                          int(mtu_text) if mtu_text.isdigit() else None)
    sources = Evidence.table("Where the grader read each fact", ("question", "read from"), [
        ("worker_pod_range, worker2_pod_range", "each node's spec.podCIDR, and the other worker's routes to it"),
        ("route_device, route_next_hop", f"/proc/net/route on {workers[0] if workers else '?'} (host network), "
                                         f"the route matching {WHEREAMI}'s IP"),
        ("pod_mtu", f"/sys/class/net/eth0/mtu inside {WHEREAMI}"),
        ("whereami_node", f"Pod {ns}/{WHEREAMI} spec.nodeName"),
    ])
    return facts, sources


def read_the_network_live(ctx) -> StepResult:
    facts, sources = read_network_facts(ctx)
    return judge_answers(ctx.answers, facts, evidence=(sources,),
                         hint=f'each question says where to look (notebook section 4); hint("{LAB_ID}", '
                              f'"read-the-network") gives more, and its last level reads the values live')


def live_hint(exercise_id: str) -> str:
    """The last level of hint() for read-the-network: the values, read live now."""
    if exercise_id != "read-the-network":
        return ""
    from graders.cluster import Cluster
    from graders.exercise import Ctx
    from graders.spec import load_lab

    ex = load_lab(LAB_ID).exercise(exercise_id)
    cluster = Cluster.connect(None, timeout=5)
    cluster.ensure_owned_namespace(ex.default_namespace)
    facts, _ = read_network_facts(Ctx(spec=ex, objects=(), cluster=cluster))
    lines = [f"{q.id}: {' or '.join(str(v) for v in facts[q.id].accepted) or facts[q.id].unobservable}"
             for q in QUESTIONS]
    return "What this cluster shows right now:\n" + "\n".join(lines)


# ================================================================================ predict
# Predictions (an answers exercise): the learner says what the cluster will do, the grader makes it happen with
# pods of its own and compares. Choices, not free text: a prediction is about the model, not about addresses.
PREDICT_PODS = ("k8slab-p1", "k8slab-p2", "k8slab-p3")  # p1, p2 on the first worker; p3 on the second
POD_IP, NODE_IP, OTHER = "pod-ip", "node-ip", "other"
PREDICTIONS = (
    Question("same_node_source", "p1 asks p2 (same node) for /clientip: which source address does p2 see?",
             "choice", (POD_IP, NODE_IP, OTHER)),
    Question("cross_node_source", "p1 asks p3 (the other worker) for /clientip: which source address does p3 see?",
             "choice", (POD_IP, NODE_IP, OTHER)),
    Question("host_network_ip", "which IP does a pod with hostNetwork: true get?", "choice", (NODE_IP, POD_IP)),
)
_WHY = {
    POD_IP: "the server saw the client pod's own IP: pods reach each other without NAT",
    NODE_IP: "the server saw the client's node address: the packet was NATed",
    OTHER: "the server saw an address that is neither the client pod's nor a node's",
}


def source_seen(seen: str, client_pod_ip: str, node_ips: Sequence[str]) -> str:
    """Classify the source address a server saw."""
    if seen == client_pod_ip:
        return POD_IP
    return NODE_IP if seen in node_ips else OTHER


def prediction_facts(seen: Mapping[str, tuple[str, str]], node_ips: Sequence[str], agent_ip: str,
                     agent_node_ip: str) -> dict[str, Fact]:
    """Facts of the predictions (pure). ``seen`` {question: (what the server saw, the client pod's IP)}; an empty
    'seen' means the probe could not connect (then there is nothing to compare with)."""
    facts: dict[str, Fact] = {}
    for key, where in (("same_node_source", "on the same node"), ("cross_node_source", "across nodes")):
        observed_ip, client_ip = seen.get(key, ("", ""))
        if not observed_ip:
            facts[key] = not_observable(f"the grader's probe {where} did not connect")
            continue
        kind = source_seen(observed_ip, client_ip, node_ips)
        facts[key] = observed(kind, because={k: f"you predicted {k}, but {_WHY[kind]} ({where})"
                                             for k in (POD_IP, NODE_IP, OTHER) if k != kind})
    if not agent_ip:
        facts["host_network_ip"] = not_observable("the grader's host-network pod has no IP yet")
    else:
        kind = NODE_IP if agent_ip == agent_node_ip else POD_IP
        why = {POD_IP: "a host-network pod shares its node's network namespace, so its IP is the node's address",
               NODE_IP: "this cluster gave the host-network pod an address that is not its node's"}
        facts["host_network_ip"] = observed(kind, because={k: v for k, v in why.items() if k != kind})
    return facts


def predict_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    nodes = {n.metadata.name: n for n in cluster.list_nodes()}
    workers = sorted(name for name, n in nodes.items() if CONTROL_PLANE_LABEL not in (n.metadata.labels or {}))
    if len(workers) < 2:
        raise CheckFailed(f"not verifiable on this cluster: the predictions need two workers, it has {len(workers)}")
    node_ips = {name: next((a.address for a in (n.status.addresses or []) if a.type == "InternalIP"), "")
                for name, n in nodes.items()}
    image = probe.agnhost_image(cluster)
    first, second = workers[0], workers[1]
    agent = f"{AGENT_PREFIX}{first.rsplit('-', 1)[-1]}"
    placement = dict(zip(PREDICT_PODS, (first, first, second)))
    cluster.ensure_pods([*(probe.probe_pod(ns, name, image, node=node) for name, node in placement.items()),
                         agent_pod(ns, agent, image, first)])
    cluster.wait_ready([ns], timeout=60)
    ips = {name: probe.pod_ip(cluster, ns, name) for name in (*PREDICT_PODS, agent)}
    p1, p2, p3 = PREDICT_PODS
    specs = {"same_node_source": ProbeSpec(f"{ns}/{p1}", "clientip", ips[p2], PORT, label=p2),
             "cross_node_source": ProbeSpec(f"{ns}/{p1}", "clientip", ips[p3], PORT, label=p3)}
    results = probe_until(ctx.prober, list(specs.values()), lambda s: Outcome.ALLOWED, attempts=3, deadline_s=15)
    by_spec = {r.spec: r for r in results}
    seen = {key: ((by_spec[s].client_ip or "") if by_spec[s].outcome is Outcome.ALLOWED else "", ips[p1])
            for key, s in specs.items()}
    facts = prediction_facts(seen, [ip for ip in node_ips.values() if ip], ips[agent], node_ips[first])
    table = Evidence.table("What the cluster did", ("experiment", "result"), [
        (f"{p1} ({ips[p1]}) -> {p2} on the same node", seen["same_node_source"][0] or "did not connect"),
        (f"{p1} ({ips[p1]}) -> {p3} on {second}", seen["cross_node_source"][0] or "did not connect"),
        (f"host-network pod {agent} on {first} ({node_ips[first]})", ips[agent] or "no IP"),
    ])
    return judge_answers(ctx.answers, facts, evidence=(table,),
                         hint="predict from the network model's rules (top of the notebook), then look at the table")


EXERCISES = {
    "four-pods": Exercise(live=four_pods_live),
    "shared-netns": Exercise(live=shared_netns_live),
    "stable-names": Exercise(static=stable_names_static, live=stable_names_live),
    "fix-the-names": Exercise(static=fix_the_names_static, live=fix_the_names_live),
    "read-the-network": Exercise(live=read_the_network_live, questions=QUESTIONS),
    "dns-search": Exercise(live=dns_search_live),
    "predict": Exercise(live=predict_live, questions=PREDICTIONS),
}
