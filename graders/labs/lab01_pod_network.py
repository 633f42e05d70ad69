"""Lab 01-pod-network: the Kubernetes network model, proven with real packets.

* ``four-pods`` — the model's diagram: pods a, b on one worker and c, d on the other (placed any correct way).
  Every pod asks every other pod's netexec for ``/clientip`` by pod IP: the request must arrive, and the server
  must see the client's own pod IP (no NAT). A host-network agent of the grader on each worker (a pod of the
  grader's, not subject to the submission policy) reaches the pods of its node.
* ``shared-netns`` — one pod, two containers: the sidecar's own output must show that the app saw its requests
  come from loopback, and every container sees the pod's IP.
* ``stable-names`` — a StatefulSet behind a headless Service: ``web-0.web.<ns>.svc.cluster.local`` resolves to
  web-0's IP; the grader deletes web-0 and shows the name following the replacement pod to its new IP.
* ``dns-search`` — from the learner's own pod, the short name ``db`` resolves to a Service in another namespace
  (a search domain from dnsConfig) while ``kubernetes.default`` still resolves; the pod's resolv.conf explains.

The judgements on probe results and logs are pure functions (unit-tested); the check functions gather facts.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders import probe
from graders.errors import CheckFailed, ClusterError
from graders.exercise import Exercise
from graders.labs._kit import (HOSTNAME_PATH, is_ready, learner_pods, pods_evidence, probe_failed, problem,
                               require_service, selector_finding)
from graders.model import Evidence, Matrix, MatrixCell, Outcome, StepResult
from graders.probe import ProbeResult, ProbeSpec, probe_until, start_probe_pods
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


def agent_pod(namespace: str, name: str, image: str, node: str) -> dict:
    """A host-network pod of the grader's, pinned to ``node``: a program in the node's network namespace."""
    manifest = probe.probe_pod(namespace, name, image, node=node)
    spec = manifest["spec"]
    spec["hostNetwork"] = True
    spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    container = spec["containers"][0]
    container["args"] = ["pause"]  # nothing listens: a host-network server would take a port of the node
    del container["ports"], container["readinessProbe"]
    return manifest


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
                      hint=f"serviceName: {WEB} (the governing Service's name)")
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


def _resolve(ctx, source: str, fqdn: str, ip: str, when: str) -> ProbeResult:
    dns = ProbeSpec(source, "dns", fqdn, label=f"dns {fqdn}", expect=(ip,))
    result = probe_until(ctx.prober, [dns], {dns: Outcome.ALLOWED}, attempts=12, deadline_s=30)[0]
    if result.outcome is Outcome.FAILED:
        raise probe_failed(result, fqdn)
    if result.outcome is not Outcome.ALLOWED:
        raise CheckFailed(f"{when}, {fqdn} did not resolve to {POD0}'s IP {ip} ({result.detail})",
                          hint=f"the headless Service {WEB} must select the StatefulSet's pods, and the "
                               f"StatefulSet's serviceName must be {WEB}",
                          evidence=(Evidence.command("Reproduce", result.command),))
    return result


def _get_by_name(ctx, source: str, fqdn: str, when: str) -> ProbeResult:
    http = ProbeSpec(source, "http", fqdn, PORT, path=HOSTNAME_PATH, label=f"{fqdn}:{PORT}")
    result = probe_until(ctx.prober, [http], {http: Outcome.ALLOWED}, attempts=3, deadline_s=10)[0]
    reproduce = Evidence.command("Reproduce", result.command)
    if result.outcome is Outcome.FAILED:
        raise probe_failed(result, fqdn)
    if result.outcome is not Outcome.ALLOWED:
        what = "nothing accepts connections on port" if "refused" in result.detail else "no answer on port"
        raise CheckFailed(f"{when}, {fqdn} resolves, but {what} {PORT} in Pod {POD0} ({result.detail})",
                          hint=f"the pods must serve HTTP on {PORT}: agnhost `netexec --http-port={PORT}`",
                          evidence=(reproduce,))
    answer = result.output.strip()
    if answer != POD0:
        raise CheckFailed(f"{when}, {fqdn}:{PORT}/hostname answered {answer[:60]!r}, not {POD0}", evidence=(reproduce,))
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


# ================================================================================ dns-search
DATA_NS = "k8slab-pod-network-data"
CLIENT = "client"
SHORT_NAME = "db"
CLUSTER_NAME = "kubernetes.default"  # resolves only through the cluster's own search domains
SVC_SUFFIX = ".svc.cluster.local"


@dataclass(frozen=True)
class Resolver:
    """A pod's /etc/resolv.conf: what the kubelet made of dnsPolicy and dnsConfig."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> Resolver:
    fields: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in fields:
            fields[words[0]].extend(words[1:])
    return Resolver(tuple(fields["nameserver"]), tuple(fields["search"]), tuple(fields["options"]))


def judge_dns(resolver: Resolver, short: ProbeResult, cluster_name: ProbeResult, cluster_dns: str,
              own_namespace: str) -> tuple[str, str]:
    """(message, hint) of why the client's lookups are not what the exercise asks; ("", "") when they are."""
    search = " ".join(resolver.searches) or "(none)"
    if cluster_dns not in resolver.nameservers:
        return (f"Pod {CLIENT} asks {', '.join(resolver.nameservers) or 'no nameserver'} — not the cluster DNS "
                f"{cluster_dns}: with dnsPolicy Default a pod uses its node's resolver, which knows no Service names",
                "keep the default dnsPolicy (ClusterFirst) and add the search domain with dnsConfig.searches")
    if short.outcome is not Outcome.ALLOWED:
        wanted = f"{DATA_NS}{SVC_SUFFIX}"
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
                f"{wanted} ({short.detail})", f"`kubectl get svc -n {DATA_NS}` — is Service {SHORT_NAME} there?")
    if cluster_name.outcome is not Outcome.ALLOWED:
        return (f"{CLUSTER_NAME} no longer resolves from Pod {CLIENT} (search list: {search}): the cluster's own "
                f"search domains are gone", "dnsPolicy None replaces the resolver configuration; with the default "
                                            "ClusterFirst, dnsConfig.searches are added to the cluster's domains")
    return "", ""


def _resolv_conf(cluster, ns: str, pod: str) -> str:
    rc, conf, err = cluster.exec(ns, pod, ["cat", "/etc/resolv.conf"], timeout=5)
    if rc != 0:
        raise CheckFailed(f"the grader could not read /etc/resolv.conf in Pod {ns}/{pod} ({err.strip()[:120]}); "
                          f"this says nothing about your manifests", hint="keep the agnhost image for the client")
    return conf


def _answer(result: ProbeResult) -> str:
    if result.outcome is Outcome.NOT_RUN:
        return "not asked: the pod does not use the cluster DNS"
    return ", ".join(result.addresses) or "no address (the name does not resolve)"


def dns_search_live(ctx) -> StepResult:
    ns = ctx.namespace()
    cluster = ctx.cluster
    if cluster.get_pod(ns, CLIENT) is None:
        raise CheckFailed(f"no Pod named {CLIENT} in namespace {ns}", hint=f"metadata.name: {CLIENT}",
                          evidence=(pods_evidence(learner_pods(cluster, ns)),))
    db = cluster.get_service(ctx.namespace(DATA_NS), SHORT_NAME)
    if db is None:
        raise CheckFailed(f"no Service {SHORT_NAME} in namespace {DATA_NS}: data.yaml is given — keep it as it is")
    conf = _resolv_conf(cluster, ns, CLIENT)
    resolver = parse_resolv_conf(conf)
    # The cluster DNS is whatever a ClusterFirst pod of the grader's asks (the grader reads nothing outside its
    # namespaces: an autograder's credentials stop there).
    start_probe_pods(cluster, ns, [PROBE_POD])
    cluster_dns = next(iter(parse_resolv_conf(_resolv_conf(cluster, ns, PROBE_POD)).nameservers), "")
    source = f"{ns}/{CLIENT}"
    short = ProbeSpec(source, "dns", SHORT_NAME, label=f"dns {SHORT_NAME}", expect=(db.spec.cluster_ip,))
    whole = ProbeSpec(source, "dns", CLUSTER_NAME, label=f"dns {CLUSTER_NAME}")
    conf_table = Evidence.text(f"/etc/resolv.conf of Pod {ns}/{CLIENT}", conf.strip())
    results = (probe_until(ctx.prober, [short, whole], lambda s: Outcome.ALLOWED, attempts=2, deadline_s=10)
               if cluster_dns in resolver.nameservers else [ProbeResult(short, Outcome.NOT_RUN),
                                                            ProbeResult(whole, Outcome.NOT_RUN)])
    failed = next((r for r in results if r.outcome is Outcome.FAILED), None)
    if failed is not None:
        raise probe_failed(failed, failed.spec.target, (conf_table,))
    message, hint = judge_dns(resolver, results[0], results[1], cluster_dns, ns)
    lookups = Evidence.table(f"Lookups from Pod {CLIENT}", ("name", "outcome", "answer"),
                             [(r.spec.target, r.outcome.word, _answer(r)) for r in results])
    if message:
        evidence = [conf_table, lookups] + [Evidence.command("Reproduce", r.command) for r in results
                                            if r.outcome is Outcome.BLOCKED][:1]
        raise CheckFailed(message, hint=hint, evidence=tuple(evidence))
    return StepResult("live", True,
                      f"from Pod {CLIENT}, the short name {SHORT_NAME} resolves to Service {DATA_NS}/{SHORT_NAME} "
                      f"({db.spec.cluster_ip}) and {CLUSTER_NAME} still resolves",
                      evidence=(conf_table, lookups))

EXERCISES = {
    "four-pods": Exercise(live=four_pods_live),
    "shared-netns": Exercise(live=shared_netns_live),
    "stable-names": Exercise(static=stable_names_static, live=stable_names_live),
    "dns-search": Exercise(live=dns_search_live),
}
