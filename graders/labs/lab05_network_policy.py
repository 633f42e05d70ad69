"""Grader of lab 05-network-policy: six NetworkPolicy exercises over one small world.

The world (labs/05-network-policy/world.yaml) is the seed's diagram: web, api and db in ``production``, test in
``staging`` (labelled app=web, like the web frontend it tests). The grader creates it; the learner submits only
NetworkPolicies. Each exercise states its target as a default plus exceptions (``Expect``, after the e2e
tests' ``ExpectPeer``) over *cells*: a source pod and a destination pod's serving port.

Checks:
  static  the learner's policies + the world -> ``graders.policy`` matrix, compared with the target. Every wrong
          cell is explained (``graders.explain``) and every known mistake is named (``diagnose``).
  live    deploy the world, read the real pod IPs, recompute the static matrix with them, probe every cell
          (batched: one exec per source pod; retried only while a cell disagrees), and show expected, static
          and live side by side. Static right but live different means the CNI is not enforcing (or has not
          programmed the policies yet) -- said so, never blamed on the learner.
"""
from __future__ import annotations

import copy
import functools
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders import paths
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.model import Evidence, Matrix, MatrixCell, Outcome, StepResult
from graders.labels import format_labels
from graders.policy import Direction, PolicyEngine, PolicyError, PortMiss, inventory_from_objects
from graders.truthtable import Peer

LAB_ID = "05-network-policy"

PRODUCTION, STAGING, KUBE_SYSTEM = "production", "staging", "kube-system"
WEB, API, DB, TEST = "production/web", "production/api", "production/db", "staging/test"
KUBE_DNS = "kube-system/kube-dns"  # stands for every pod labelled k8s-app=kube-dns in kube-system
KUBE_DNS_SELECTOR = "k8s-app=kube-dns"
DNS_NAME = "kubernetes.default.svc.cluster.local"
SOURCES = (API, DB, WEB, TEST)
# The grader's fixture sets these namespace labels; exercises rely on them (the learner does not set them).
NAMESPACE_LABELS = {PRODUCTION: {"env": "production"}, STAGING: {"env": "staging"}}

# The course cluster (kind): pod network 10.244.0.0/16, one /24 per node; the control-plane node registers
# first and owns 10.244.0.0/24. db is pinned to the control-plane node (world.yaml), the others are not.
POD_NETWORK = "10.244.0.0/16"
CONTROL_PLANE_RANGE = "10.244.0.0/24"

PROBE_ATTEMPTS = 5
PROBE_DEADLINE_S = 40.0
READY_TIMEOUT_S = 120.0


def lab_dir() -> Path:
    return paths.lab_dir(LAB_ID)


# --------------------------------------------------------------------------------------------------------------
# Targets: columns (destination pod + port) and expectations (default + exceptions)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A destination of the matrix: a pod's serving port. ``dns`` columns stand for every kube-dns pod."""

    pod: str
    port: int
    protocol: str = "TCP"

    @property
    def dns(self) -> bool:
        return self.pod == KUBE_DNS

    @property
    def label(self) -> str:
        """``production/api:8080`` (``kube-system/kube-dns:53/UDP``): in sentences."""
        return f"{self.pod}:{self.port}" + (f"/{self.protocol}" if self.protocol != "TCP" or self.dns else "")

    @property
    def short(self) -> str:
        """``api:8080``: a matrix column header (pod names are unique in this lab)."""
        return self.label.split("/", 1)[1]


@dataclass(frozen=True)
class Expect:
    """Cells from pods matching ``frm`` to columns whose pod matches ``to`` (and ``port``, when given) are
    ``allowed`` or not. Peers are e2e-style strings: "" any pod, "production/" a namespace, "production/api"."""

    frm: str
    to: str
    allowed: bool
    port: int | None = None

    def applies(self, source: str, column: Column) -> bool:
        return (Peer.of(self.frm).matches(source) and Peer.of(self.to).matches(column.pod)
                and (self.port is None or self.port == column.port))


@dataclass(frozen=True)
class Target:
    """What an exercise asks for. Later expectations override earlier ones; ``by_address`` (ipBlock exercises)
    decides from the destination's addresses and overrides them all where it returns a bool."""

    statement: str
    direction: Direction  # the direction the exercise is about
    columns: tuple[Column, ...]
    expects: tuple[Expect, ...]
    default: bool = True
    by_address: Callable[[str, Column, tuple[str, ...]], bool | None] | None = None
    needs_dns: bool = False

    def cells(self) -> list[tuple[str, Column]]:
        return [(s, c) for s in SOURCES for c in self.columns if s != c.pod]

    def expected(self, source: str, column: Column, addresses: Mapping[str, tuple[str, ...]] | None = None) -> bool:
        allowed = self.default
        for expect in self.expects:
            if expect.applies(source, column):
                allowed = expect.allowed
        if self.by_address is not None and addresses is not None:
            decided = self.by_address(source, column, addresses.get(column.pod, ()))
            if decided is not None:
                allowed = decided
        return allowed


def _col(pod: str, port: int, protocol: str = "TCP") -> Column:
    return Column(pod, port, protocol)


WEB_80, API_8080, DB_5432, TEST_80 = _col(WEB, 80), _col(API, 8080), _col(DB, 5432), _col(TEST, 80)
BASIC = (WEB_80, API_8080, DB_5432, TEST_80)
DNS_UDP, DNS_TCP = _col(KUBE_DNS, 53, "UDP"), _col(KUBE_DNS, 53, "TCP")


def _in_pod_network_outside_control_plane(source: str, column: Column, ips: tuple[str, ...]) -> bool | None:
    """ipblock-except: api may reach an address inside 10.244.0.0/16 and outside 10.244.0.0/24."""
    if source != API or not ips:
        return None
    ip = ipaddress.ip_address(ips[0])
    return ip in ipaddress.ip_network(POD_NETWORK) and ip not in ipaddress.ip_network(CONTROL_PLANE_RANGE)


TARGETS: dict[str, Target] = {
    "default-deny-ingress": Target(
        "nothing reaches a pod of production; everything else stays open",
        Direction.INGRESS, BASIC,
        (Expect("", "production/", False),)),
    "web-to-api": Target(
        "only production's web reaches api, only on 8080; api's admin port 8084 stays closed; other pods stay open",
        Direction.INGRESS, (WEB_80, API_8080, _col(API, 8084), DB_5432, TEST_80),
        (Expect("", API, False), Expect(WEB, API, True, port=8080))),
    "seed-diagram": Target(
        "the seed's diagram: web -> api:8080 and api -> db:5432 allowed, nothing else into production "
        "(web -> db and staging's test -> api denied); staging stays open",
        Direction.INGRESS, BASIC,
        (Expect("", "production/", False), Expect(WEB, API, True, port=8080), Expect(API, DB, True, port=5432))),
    "api-egress-dns": Target(
        "api connects to db:5432 and to DNS (kube-dns, UDP and TCP 53) and nowhere else; everything else open",
        Direction.EGRESS, (*BASIC, DNS_UDP, DNS_TCP),
        (Expect(API, "", False), Expect(API, DB, True, port=5432), Expect(API, "kube-system/", True)),
        needs_dns=True),
    "named-ports-range": Target(
        "db accepts only api, only on its port named postgres (5432); api accepts only web, only on 8080-8083; "
        "api's admin 8084 and db's replication 5433 stay closed; other pods stay open",
        Direction.INGRESS,
        (WEB_80, API_8080, _col(API, 8083), _col(API, 8084), DB_5432, _col(DB, 5433), TEST_80),
        (Expect("", API, False), Expect(WEB, API, True, port=8080), Expect(WEB, API, True, port=8083),
         Expect("", DB, False), Expect(API, DB, True, port=5432))),
    "ipblock-except": Target(
        f"api connects to addresses in {POD_NETWORK} except {CONTROL_PLANE_RANGE} (the control-plane node's "
        f"pods: db) and nowhere else; everything else open",
        Direction.EGRESS, BASIC,
        (Expect(API, "", False), Expect(API, WEB, True), Expect(API, TEST, True)),
        by_address=_in_pod_network_outside_control_plane),
}


# --------------------------------------------------------------------------------------------------------------
# The world as objects (pods with addresses): static from world.yaml, live from the cluster
# --------------------------------------------------------------------------------------------------------------


def _load_yaml(name: str) -> list[dict]:
    with open(lab_dir() / name, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


@functools.lru_cache(maxsize=1)
def _world_docs() -> tuple[dict, ...]:
    return tuple(_load_yaml("world.yaml"))


@functools.lru_cache(maxsize=1)
def _dns_docs() -> tuple[dict, ...]:
    return tuple(_load_yaml("cluster-dns.yaml"))


def world_objects(exercise: str, addresses: Mapping[str, str] | None = None,
                  dns_pods: Sequence[dict] | None = None) -> list[dict]:
    """Namespaces and pods the static engine reasons about. ``addresses`` ("ns/pod" -> IP) replaces the typical
    addresses of world.yaml; ``dns_pods`` replaces cluster-dns.yaml's CoreDNS pods (the live ones)."""
    docs = [copy.deepcopy(d) for d in _world_docs()]
    for doc in docs:
        if doc.get("kind") == "Pod" and addresses is not None:
            key = f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
            doc["status"] = {"podIP": addresses[key]} if addresses.get(key) else {}
    if TARGETS[exercise].needs_dns:
        if dns_pods is None:
            docs.extend(copy.deepcopy(d) for d in _dns_docs())
        else:
            docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUBE_SYSTEM}})
            docs.extend(dns_pods)
    return docs


def fixture_objects(image: str) -> list[dict]:
    """The pods the grader creates (world.yaml without status, with the pinned agnhost image)."""
    pods = []
    for doc in _world_docs():
        if doc.get("kind") != "Pod":
            continue
        pod = copy.deepcopy(doc)
        pod.pop("status", None)
        pod["metadata"].setdefault("labels", {})["k8slab.dev/fixture"] = "true"
        pod["spec"]["terminationGracePeriodSeconds"] = 0
        for container in pod["spec"]["containers"]:
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
        pods.append(pod)
    return pods


# --------------------------------------------------------------------------------------------------------------
# Static evaluation
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    source: str
    column: Column
    expected: bool
    static: bool
    live: Outcome | None = None
    why: str = ""
    command: str = ""

    @property
    def static_wrong(self) -> bool:
        return self.expected != self.static


@dataclass(frozen=True, repr=False)
class StaticReport:
    """The static verdict of one exercise: every cell, the named mistakes and the per-cell explanations."""

    exercise: str
    cells: tuple[CellResult, ...]
    diagnoses: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()
    engine: Any = field(default=None, compare=False, repr=False)

    @property
    def wrong(self) -> tuple[CellResult, ...]:
        return tuple(c for c in self.cells if c.static_wrong)

    @property
    def matches(self) -> bool:
        return not self.wrong

    @property
    def message(self) -> str:
        if self.matches:
            return f"the policies' matrix equals the target ({len(self.cells)} cells): {TARGETS[self.exercise].statement}"
        head = (f"{len(self.wrong)} of {len(self.cells)} cells differ from the target "
                f"({TARGETS[self.exercise].statement}): "
                + ", ".join(f"{c.source} -> {c.column.label} should be {_word(c.expected)} but is {_word(c.static)}"
                            for c in self.wrong))
        return "\n".join([head, *(f"- {d}" for d in self.diagnoses)])

    def allowed(self, source: str, column: Column) -> bool:
        return next(c.static for c in self.cells if c.source == source and c.column == column)

    def __repr__(self) -> str:
        verdict = "matches the target" if self.matches else f"{len(self.wrong)} wrong cell(s)"
        return f"<static matrix of {self.exercise}: {len(self.cells)} cells, {verdict}>"


def _word(allowed: bool) -> str:
    return "allowed" if allowed else "blocked"


def destination_pods(engine: PolicyEngine, column: Column) -> list[str]:
    if column.dns:
        return [p.key for p in engine.pods if p.namespace == KUBE_SYSTEM and p.labels.get("k8s-app") == "kube-dns"]
    return [column.pod]


def _cell_allowed(engine: PolicyEngine, source: str, column: Column) -> bool:
    pods = destination_pods(engine, column)
    return bool(pods) and all(engine.is_allowed(source, pod, column.port, column.protocol) for pod in pods)


def policy_objects(objects: Iterable[Any]) -> list[dict]:
    return [getattr(o, "obj", o) for o in objects if getattr(o, "obj", o).get("kind") == "NetworkPolicy"]


def evaluate(exercise: str, objects: Iterable[Any], addresses: Mapping[str, str] | None = None,
             dns_pods: Sequence[dict] | None = None) -> StaticReport:
    """Compute the static matrix of the learner's policies over the world and compare it with the target."""
    target = TARGETS[exercise]
    policies = policy_objects(objects)
    world = world_objects(exercise, addresses, dns_pods)
    try:
        engine = PolicyEngine(inventory_from_objects([*world, *policies], default_namespace=PRODUCTION))
    except PolicyError as error:
        raise CheckFailed(f"the policies cannot be evaluated: {error.message}", hint=error.hint) from None
    ips = {p.key: p.ips for p in engine.pods}
    cells = []
    for source, column in target.cells():
        expected = target.expected(source, column, ips)
        cells.append(CellResult(source, column, expected, _cell_allowed(engine, source, column)))
    report = StaticReport(exercise, tuple(cells), engine=engine)
    if report.matches:
        return report
    diagnoses = diagnose(exercise, engine, report.wrong)
    explanations = tuple(_explain_cell(engine, c) for c in report.wrong)
    cells = tuple(c if not c.static_wrong else _with_why(c, engine) for c in cells)
    return StaticReport(exercise, cells, diagnoses, explanations, engine)


def evaluate_files(exercise: str, sources: Iterable[Path | str]) -> StaticReport:
    """``evaluate`` on YAML files or directories (tests and the notebook use it; no cluster)."""
    docs: list[dict] = []
    for source in sources:
        path = Path(source)
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            docs.extend(d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d)
    return evaluate(exercise, docs)


def preview(exercise: str, directory: Path | str | None = None, *, explain: bool = False) -> StaticReport:
    """Print what the files of an exercise do (static matrix next to the target), no cluster needed.

    ``directory`` defaults to ``./<exercise>/`` when it exists (the notebook's folder, also under nbgrader), else
    labs/05-network-policy/<exercise>/. ``check()`` shows the same grid and then sends real traffic.
    """
    if directory is None:
        directory = Path.cwd() / exercise if (Path.cwd() / exercise).is_dir() else lab_dir() / exercise
    folder = Path(directory)
    report = evaluate_files(exercise, [folder])
    print(f"{exercise}: {paths.relative(folder)} -- target: {TARGETS[exercise].statement}")
    print(_two_grids(exercise, report.cells))
    if report.matches:
        print(f"static: your policies draw the target ({len(report.cells)} cells); run check() for live traffic")
    else:
        print("\n".join(report.message.splitlines()))
        if explain:
            print("\n" + "\n\n".join(report.explanations))
    return report


def _two_grids(exercise: str, cells: Sequence[CellResult]) -> str:
    """expected | static (no live column: nothing was probed)."""
    lines = side_by_side(exercise, cells).splitlines()
    out = []
    for line in lines:
        parts = line.split(" | ")
        out.append(" | ".join(parts[:2]) if len(parts) == 3 else line)
    return "\n".join(out)


def _explain_cell(engine: PolicyEngine, cell: CellResult) -> str:
    from graders.explain import explain

    texts = []
    for pod in destination_pods(engine, cell.column) or [cell.column.pod]:
        try:
            texts.append(explain(engine, cell.source, pod, cell.column.port, cell.column.protocol).text)
        except Exception as error:  # noqa: BLE001 -- an explanation is evidence, never the reason a check fails
            texts.append(f"{cell.source} -> {pod}:{cell.column.port}/{cell.column.protocol}: "
                         f"(no explanation: {type(error).__name__}: {error})")
    return "\n".join(texts)


def _with_why(cell: CellResult, engine: PolicyEngine) -> CellResult:
    from graders.explain import explain

    try:
        pod = (destination_pods(engine, cell.column) or [cell.column.pod])[0]
        why = explain(engine, cell.source, pod, cell.column.port, cell.column.protocol).summary
    except Exception:  # noqa: BLE001
        why = ""
    return CellResult(cell.source, cell.column, cell.expected, cell.static, cell.live, why, cell.command)


# --------------------------------------------------------------------------------------------------------------
# Diagnosis: name the mistake, in the learner's terms (fragments listed in lab.yaml)
# --------------------------------------------------------------------------------------------------------------

_TRAFFIC = {Direction.INGRESS: "incoming traffic (Ingress)", Direction.EGRESS: "outgoing traffic (Egress)"}


def _short(pod_key: str) -> str:
    return pod_key.split("/", 1)[1]


def _namespaces_text(engine: PolicyEngine) -> str:
    return "; ".join(f"{name}: {format_labels(ns.labels)}" for name, ns in engine.inventory.namespaces.items())


def _pod_ports_text(pod) -> str:
    return ", ".join(f"{p.name or '-'} {p.port}/{p.protocol}" for p in pod.ports) or "none declared"


def diagnose(exercise: str, engine: PolicyEngine, wrong: Sequence[CellResult]) -> tuple[str, ...]:
    """Every known mistake visible in these policies, each in one sentence that names it."""
    target = TARGETS[exercise]
    inventory = engine.inventory
    found: dict[str, None] = {}

    def say(text: str) -> None:
        found.setdefault(text, None)

    # Whole-policy mistakes: selectors that select nothing, directions left out or mixed up, wrong namespace.
    ips = {p.key: p.ips for p in engine.pods}
    blocked_namespaces = {(column.pod if target.direction is Direction.INGRESS else source).split("/")[0]
                          for source, column in target.cells() if not target.expected(source, column, ips)}
    for policy in inventory.policies:
        ref, ns = policy.ref, policy.ref.namespace
        pods_here = [p for p in inventory.pods if p.namespace == ns]
        if not any(policy.pod_selector.matches(p.labels) for p in pods_here):
            there = ", ".join(f"{p.name} ({format_labels(p.labels)})" for p in pods_here) or "none"
            say(f"NetworkPolicy {ref}: podSelector {policy.pod_selector.describe()} selects no pod in {ns} "
                f"(pods there: {there})")
        for direction in policy.ignored:
            types = ", ".join(d.value for d in policy.policy_types)
            say(f"NetworkPolicy {ref}: policyTypes [{types}] does not list {direction.value}: its "
                f"{direction.rules_key} rules are ignored")
        if target.direction not in policy.policy_types:
            types = ", ".join(d.value for d in policy.policy_types)
            say(f"NetworkPolicy {ref}: policyTypes [{types}] isolates "
                f"{' and '.join(_TRAFFIC[d] for d in policy.policy_types)}, but this exercise is about "
                f"{_TRAFFIC[target.direction]}")
        if ns not in blocked_namespaces and ns in (PRODUCTION, STAGING) and blocked_namespaces:
            say(f"NetworkPolicy {ref} is in namespace {ns}: a NetworkPolicy only selects pods in its own namespace, "
                f"and this exercise isolates pods of {', '.join(sorted(blocked_namespaces))}")
        for t in policy.targets:
            for rule in t.rules:
                for peer in rule.peers:
                    where = f"NetworkPolicy {ref}, {t.direction.rules_key} rule {rule.index}, peer {peer.index}"
                    _peer_matches_nothing(engine, where, peer, say)

    # Cell by cell: what admits a connection that should be blocked, what blocks one that should be allowed.
    for cell in wrong:
        for pod in destination_pods(engine, cell.column) or [cell.column.pod]:
            verdict = engine.evaluate(cell.source, pod, cell.column.port, cell.column.protocol)
            if cell.static:
                _too_open(engine, target, cell, verdict, say)
            else:
                _too_closed(engine, target, cell, verdict, say)
    return tuple(found)


def _peer_matches_nothing(engine: PolicyEngine, where: str, peer, say: Callable[[str], None]) -> None:
    inventory = engine.inventory
    if peer.ip_block is not None:
        block = peer.ip_block
        addresses = [ipaddress.ip_address(ip) for p in inventory.pods for ip in p.ips]
        if not any(a in block.network for a in addresses):
            say(f"{where}: ipBlock {block.cidr} contains no pod address (the pods' addresses are in the pod "
                f"network {POD_NETWORK}; Services' ClusterIPs are translated to pod addresses before policy applies)")
        for excepted in block.excepts:
            net = ipaddress.ip_network(excepted, strict=False)
            if not any(a in net for a in addresses):
                stale = (" (pods get a new address each time they are recreated; except a range that stays, such "
                         "as a node's pod range)" if net.subnet_of(ipaddress.ip_network(POD_NETWORK)) else "")
                say(f"{where}: except {excepted} matches no pod address{stale}")
        return
    if peer.namespace_selector is not None:
        namespaces = [n for n, ns in inventory.namespaces.items() if peer.namespace_selector.matches(ns.labels)]
        if not namespaces:
            say(f"{where}: namespaceSelector {peer.namespace_selector.describe()} matches no namespace (namespace "
                f"labels: {_namespaces_text(engine)}; every namespace carries kubernetes.io/metadata.name=<its name>)")
            return
    else:
        namespaces = [peer.policy_namespace]
    if peer.pod_selector is not None:
        pods = [p for p in inventory.pods if p.namespace in namespaces and peer.pod_selector.matches(p.labels)]
        if not pods:
            there = ", ".join(f"{p.key} ({format_labels(p.labels)})" for p in inventory.pods if p.namespace in namespaces)
            say(f"{where}: podSelector {peer.pod_selector.describe()} matches no pod in "
                f"{', '.join(namespaces)} (pods there: {there or 'none'})")


def _sides(verdict, direction: Direction):
    return verdict.ingress if direction is Direction.INGRESS else verdict.egress


def _too_open(engine, target: Target, cell: CellResult, verdict, say) -> None:
    """The cell should be blocked but is allowed: in the exercise's direction, who admits it?"""
    side = _sides(verdict, target.direction)
    subject = side.subject
    if not side.isolated:
        what = ("accepts connections from every pod" if target.direction is Direction.INGRESS
                else "may connect to every pod")
        say(f"{subject.key} is not selected by any {target.direction.value} policy, so it {what} "
            f"(policies only add allowances to the pods they select)")
        return
    dst = verdict.destination
    for admission in side.allowing:
        rule, peer, port_item = admission.rule, admission.peer, admission.port
        where = f"{admission.target.policy}, {rule.direction.rules_key} rule {rule.index}"
        if port_item is not None and port_item.end_port is not None and \
                port_item.port <= cell.column.port <= port_item.end_port:
            say(f"{where}: port range {port_item.describe()} also opens {cell.column.port}, which must stay closed")
        elif peer is None and rule.all_ports:
            who = "source" if rule.direction is Direction.INGRESS else "destination"
            say(f"an empty {rule.direction.rules_key} rule (`- {{}}`) in {admission.target.policy} allows every "
                f"{who} on every port")
        elif peer is None:
            say(f"{where} has no '{rule.direction.peers_key}': every pod may use {rule.describe_ports()}")
        elif peer.ip_block is not None:
            ip = ", ".join(dst.ips) or "no address"
            if not peer.ip_block.excepts:
                say(f"{where}: ipBlock {peer.ip_block.cidr} has no except: it admits {dst.key} ({ip})")
            else:
                say(f"{where}: {peer.ip_block.describe()} admits {dst.key} ({ip}): no except covers that address")
        elif peer.namespace_selector is not None and peer.namespace_selector.is_empty:
            src = verdict.source
            say(f"{where}, peer {peer.index}: namespaceSelector {{}} matches every namespace: "
                f"{src.key} ({format_labels(src.labels)}) may reach {_short(dst.key)}")
        elif peer.namespace_selector is not None and peer.pod_selector is None and len(rule.peers) > 1:
            say(f"{where}: peers in separate list items are ORed: every pod in a namespace labelled "
                f"{peer.namespace_selector.describe()} may reach {_short(dst.key)} (put podSelector and "
                f"namespaceSelector in ONE item to AND them)")
        elif peer.namespace_selector is not None and peer.pod_selector is None:
            say(f"{where}, peer {peer.index}: namespaceSelector {peer.namespace_selector.describe()} admits every "
                f"pod of the namespaces it matches, {verdict.source.key} included")
        else:
            say(f"{where}, peer {peer.index} ({peer.describe()}) admits {verdict.source.key} -> "
                f"{dst.key}:{cell.column.port}")


def _too_closed(engine, target: Target, cell: CellResult, verdict, say) -> None:
    """The cell should be allowed but is blocked: which side refuses it, and why?"""
    if cell.column.dns:
        if cell.column.protocol == "UDP":
            say(f"{cell.source}'s egress is isolated and nothing allows DNS: name resolution fails (allow UDP and "
                f"TCP port 53 to the kube-dns pods, label {KUBE_DNS_SELECTOR}, in namespace kube-system)")
        elif _cell_allowed(engine, cell.source, DNS_UDP):
            say(f"DNS over TCP port 53 is blocked for {cell.source} (only UDP 53 is allowed): answers too large "
                f"for UDP, and resolvers that retry over TCP, fail")
        return
    for side in (verdict.egress, verdict.ingress):
        if side.allowed:
            continue
        key = side.direction.rules_key
        other = side.peer.key
        if not any(t.rules for t in side.selecting):
            names = ", ".join(str(t.target.policy) for t in side.selecting)
            if side.direction is not target.direction:
                say(f"{names} isolate{'s' if len(side.selecting) == 1 else ''} {side.subject.key} for "
                    f"{side.direction.value} with no {key} rule: {cell.source} -> {cell.column.label} is refused")
            else:
                say(f"no {key} rule of the policies selecting {side.subject.key} ({names}) admits {other}: "
                    f"{'it has' if len(side.selecting) == 1 else 'they have'} no {key} rules at all")
            continue
        port_reasons = []
        for t in side.selecting:
            for rule in t.rules:
                if not rule.peer_ok:
                    continue
                for result in rule.ports:
                    port_reasons.append((t.target.policy, rule.rule, result))
        if not port_reasons:
            policies = ", ".join(str(t.target.policy) for t in side.selecting)
            say(f"no {key} rule of the policies selecting {side.subject.key} ({policies}) admits {other}")
            continue
        for policy, rule, result in port_reasons:
            item, miss = result.port, result.miss
            where = f"{policy}, {key} rule {rule.index}"
            dst = verdict.destination
            if miss is PortMiss.NAMED_PORT_MISSING:
                say(f"{where}: named port {item.port!r} is not a {item.protocol} container port of {dst.key} "
                    f"(its ports: {_pod_ports_text(dst)})")
            elif miss is PortMiss.NAMED_PORT_NUMBER:
                resolved = dst.named_port(item.port, item.protocol)
                say(f"{where}: named port {item.port!r} is {resolved.port}/{item.protocol} on {dst.key}, "
                    f"not {cell.column.port}")
            elif miss is PortMiss.PROTOCOL:
                say(f"{where} allows protocol {item.protocol}, but the connection is {cell.column.protocol}")
            elif miss is PortMiss.NUMBER:
                if item.end_port is not None:
                    say(f"{where}: port range {item.describe()} does not include {cell.column.port}")
                elif any(p.port == item.port for p in dst.ports) and cell.column.port > item.port:
                    say(f"{where}: port {item.port} without endPort is the single port {item.port}: it does not "
                        f"cover {cell.column.port}")
                else:
                    say(f"{where} allows port {item.describe()}, but {dst.key} listens on "
                        f"{cell.column.port}/{cell.column.protocol}")


# --------------------------------------------------------------------------------------------------------------
# Rendering: expected | static | live, side by side
# --------------------------------------------------------------------------------------------------------------


def _glyph(value: bool | Outcome | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, Outcome):
        return value.glyph
    return "." if value else "X"


def side_by_side(exercise: str, cells: Sequence[CellResult]) -> str:
    """Three grids (expected, static, live) next to each other, columns numbered (the matrix evidence marks
    the wrong cells and carries their explanations)."""
    target = TARGETS[exercise]
    labels = [c.label for c in target.columns]
    by_key = {(c.source, c.column.label): c for c in cells}
    side = max(len(s) for s in SOURCES)
    blocks = ("expected", "static", "live")
    header = " " * side + "  " + " | ".join(name.center(len(labels) * 2 + 1) for name in blocks)
    lines = [header]
    for i, label in enumerate(labels):  # vertical column labels would be unreadable; number them
        lines.append(f"{'':<{side}}  col {i + 1}: {label}")
    lines.append(" " * side + "  " + " | ".join(" ".join(str(i + 1)[-1] for i in range(len(labels))).center(
        len(labels) * 2 + 1) for _ in blocks))
    for source in SOURCES:
        parts = []
        for name in blocks:
            row = []
            for label in labels:
                cell = by_key.get((source, label))
                if cell is None:
                    row.append("-")
                elif name == "expected":
                    row.append(_glyph(cell.expected))
                elif name == "static":
                    row.append(_glyph(cell.static))
                else:
                    row.append(_glyph(cell.live))
            parts.append(" ".join(row).center(len(labels) * 2 + 1))
        lines.append(f"{source:<{side}}  " + " | ".join(parts))
    lines.append(". allowed  X blocked  ! probe failed  ? not run  - same pod")
    return "\n".join(lines)


def _matrix(cells: Sequence[CellResult], exercise: str, observed: str) -> Matrix:
    target = TARGETS[exercise]
    out = []
    for c in cells:
        seen = (Outcome.ALLOWED if c.static else Outcome.BLOCKED) if observed == "static" else (c.live or
                                                                                               Outcome.NOT_RUN)
        out.append(MatrixCell(c.source, c.column.short, Outcome.ALLOWED if c.expected else Outcome.BLOCKED, seen,
                              why=c.why, command=c.command))
    return Matrix(SOURCES, tuple(col.short for col in target.columns), tuple(out))


def _static_evidence(report: StaticReport) -> list[Evidence]:
    evidence = [Evidence.matrix("expected vs static (what your policies say)", _matrix(report.cells,
                                                                                      report.exercise, "static"))]
    if report.explanations:
        evidence.append(Evidence.text("why each wrong cell is what it is", "\n\n".join(report.explanations)))
    return evidence


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------


def _hint(exercise: str) -> str:
    return {
        "default-deny-ingress": "a default deny selects every pod of its namespace and lists Ingress with no rules",
        "web-to-api": "in `from`, each dash starts a new peer (ORed); selectors inside one peer are ANDed",
        "seed-diagram": "deny everything into production first, then add one allowance per arrow of the diagram",
        "api-egress-dns": "once egress is isolated, DNS is just another destination: kube-dns pods, port 53, UDP "
                          "and TCP",
        "named-ports-range": "a named port is looked up on the destination pod; endPort is inclusive",
        "ipblock-except": f"one ipBlock: cidr {POD_NETWORK} with an except for the control-plane node's range",
    }[exercise]


def static_check(ctx) -> StepResult:
    exercise = ctx.spec.id
    report = evaluate(exercise, ctx.objects)
    if not report.matches:
        raise CheckFailed(report.message, hint=_hint(exercise), evidence=tuple(_static_evidence(report)))
    return StepResult("static", True, report.message)


# ---- live ----------------------------------------------------------------------------------------------------


def _label_namespaces(cluster) -> None:
    """Set the lab's namespace labels (env=...) on the grader-owned namespaces."""
    for name, labels in NAMESPACE_LABELS.items():
        label = getattr(cluster, "label_namespace", None)
        if label is not None:
            label(name, labels)
            continue
        cluster.ensure_owned_namespace(name)  # refuses a namespace the grader does not own
        try:
            cluster.core.patch_namespace(name, {"metadata": {"labels": dict(labels)}})
        except Exception as error:  # noqa: BLE001
            raise K8sLabError(f"labelling Namespace {name} with {format_labels(labels)}: {error}") from None


def deploy_world(ctx) -> dict[str, Any]:
    """Create (or find) the lab's pods, wait until ready, return {"ns/pod": V1Pod}."""
    from graders.probe import agnhost_image

    cluster = ctx.cluster
    _label_namespaces(cluster)
    cluster.apply(fixture_objects(agnhost_image(cluster)))
    cluster.wait_ready([PRODUCTION, STAGING], timeout=READY_TIMEOUT_S)
    pods = {}
    for key in SOURCES:
        ns, name = key.split("/")
        pod = cluster.get_pod(ns, name)
        if pod is None or not pod.status or not pod.status.pod_ip:
            raise K8sLabError(f"Pod {key} of the lab's world has no IP after becoming ready")
        pods[key] = pod
    return pods


def live_dns_pods(cluster) -> list[dict]:
    pods = []
    for pod in cluster.list_pods(KUBE_SYSTEM, label_selector=KUBE_DNS_SELECTOR):
        if not pod.status or not pod.status.pod_ip or pod.status.phase != "Running":
            continue
        ports = [{"name": p.name, "containerPort": p.container_port, "protocol": p.protocol or "TCP"}
                 for c in pod.spec.containers for p in (c.ports or [])]
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": pod.metadata.name, "namespace": KUBE_SYSTEM,
                                  "labels": dict(pod.metadata.labels or {})},
                     "spec": {"containers": [{"name": "coredns", "ports": ports}]},
                     "status": {"podIP": pod.status.pod_ip}})
    return pods


def _placement_problem(exercise: str, addresses: Mapping[str, str]) -> str:
    """ipblock-except states its target in addresses; say when this cluster does not place pods that way."""
    if exercise != "ipblock-except":
        return ""
    network, control = ipaddress.ip_network(POD_NETWORK), ipaddress.ip_network(CONTROL_PLANE_RANGE)
    problems = []
    for key, ip in addresses.items():
        address = ipaddress.ip_address(ip)
        inside = address in control
        if address not in network:
            problems.append(f"{key} has {ip}, outside the pod network {POD_NETWORK}")
        elif key == DB and not inside:
            problems.append(f"{key} has {ip}, outside the control-plane node's range {CONTROL_PLANE_RANGE}")
        elif key != DB and inside:
            problems.append(f"{key} has {ip}, inside {CONTROL_PLANE_RANGE}")
    return "; ".join(problems)


def _probe_specs(cells: Sequence[CellResult], addresses: Mapping[str, str], dns_ips: Mapping[str, str],
                 engine: PolicyEngine) -> tuple[list, dict, dict]:
    """Probe specs per cell (a DNS-over-TCP cell has one TCP probe per kube-dns pod), the static outcome
    each probe should see, and which specs make up which cell."""
    from graders.probe import ProbeSpec

    specs, want, of_cell = [], {}, {}
    for cell in cells:
        column = cell.column
        parts = []
        if column.dns and column.protocol == "UDP":
            parts.append((ProbeSpec(cell.source, "dns", DNS_NAME, label=column.label), cell.static))
        elif column.dns:
            for pod, ip in sorted(dns_ips.items()):
                allowed = engine.is_allowed(cell.source, pod, 53, "TCP")
                parts.append((ProbeSpec(cell.source, "tcp", ip, 53, label=f"{column.label}@{_short(pod)}"), allowed))
        else:
            parts.append((ProbeSpec(cell.source, column.protocol.lower(), addresses[column.pod], column.port,
                                    label=column.label), cell.static))
        for spec, allowed in parts:
            specs.append(spec)
            want[spec] = Outcome.ALLOWED if allowed else Outcome.BLOCKED
        of_cell[(cell.source, column.label)] = [spec for spec, _ in parts]
    return specs, want, of_cell


def _combine(results: Sequence[Any]) -> tuple[Outcome, str, str]:
    """One cell from its probes: any failed probe -> FAILED; all allowed -> ALLOWED; else BLOCKED."""
    if not results:
        return Outcome.NOT_RUN, "no kube-dns pod to probe", ""
    for outcome in (Outcome.FAILED, Outcome.NOT_RUN, Outcome.BLOCKED):
        bad = [r for r in results if r.outcome is outcome]
        if bad:
            return outcome, bad[0].detail, bad[0].command
    return Outcome.ALLOWED, "", results[0].command


def live_check(ctx) -> StepResult:
    exercise = ctx.spec.id
    target = TARGETS[exercise]
    pods = deploy_world(ctx)
    addresses = {key: pod.status.pod_ip for key, pod in pods.items()}
    dns_pods = live_dns_pods(ctx.cluster) if target.needs_dns else None
    report = evaluate(exercise, ctx.objects, addresses, dns_pods)
    placement = _placement_problem(exercise, addresses)
    nodes = ", ".join(f"{key} on {pod.spec.node_name} ({pod.status.pod_ip})" for key, pod in pods.items())
    if placement:
        return StepResult("live", True,
                          f"static check passed; live probes NOT RUN: this exercise states its target in addresses "
                          f"(pod network {POD_NETWORK}, control-plane range {CONTROL_PLANE_RANGE}) and this cluster "
                          f"places pods differently ({placement}). Pods: {nodes}",
                          evidence=(Evidence.text("placement", nodes),))
    if not report.matches:  # the live addresses changed the verdict (ipBlock): the learner's policies are wrong
        raise CheckFailed(report.message, hint=_hint(exercise), evidence=tuple(_static_evidence(report)))
    dns_ips = {f"{KUBE_SYSTEM}/{p['metadata']['name']}": p["status"]["podIP"] for p in dns_pods or []}
    specs, want, of_cell = _probe_specs(report.cells, addresses, dns_ips, report.engine)
    from graders.probe import probe_until

    started = time.monotonic()
    results = probe_until(ctx.prober, specs, want, attempts=PROBE_ATTEMPTS, deadline_s=PROBE_DEADLINE_S)
    elapsed = time.monotonic() - started
    by_spec = dict(zip(specs, results))
    cells = []
    for cell in report.cells:
        outcome, detail, command = _combine([by_spec[s] for s in of_cell[(cell.source, cell.column.label)]])
        why = ""
        if outcome is not (Outcome.ALLOWED if cell.static else Outcome.BLOCKED):
            policies = _with_why(cell, report.engine).why  # what the policies say about this cell, and why
            why = "; ".join(part for part in (f"probe: {detail}" if detail else "", f"policies: {policies}")
                            if part)
        cells.append(CellResult(cell.source, cell.column, cell.expected, cell.static, outcome, why, command))
    grid = side_by_side(exercise, cells)
    evidence = [Evidence.text("expected | static | live", grid),
                Evidence.matrix("expected vs live", _matrix(cells, exercise, "live"))]
    failed = [c for c in cells if c.live in (Outcome.FAILED, Outcome.NOT_RUN)]
    differ = [c for c in cells if c.live not in (Outcome.FAILED, Outcome.NOT_RUN)
              and (c.live is Outcome.ALLOWED) != c.static]
    execs = len({s.source for s in specs})
    probes = f"{len(specs)} probes from {execs} pods, one exec per pod per round, {elapsed:.1f} s"
    if failed:
        raise CheckFailed(
            f"the grader's probes could not run for {len(failed)} cell(s) ("
            + "; ".join(f"{c.source} -> {c.column.label}: {c.why}" for c in failed)
            + "); this says nothing about your policies", hint="run `k8slab doctor`, then check again",
            evidence=tuple(evidence))
    if differ:
        words = "; ".join(f"{c.source} -> {c.column.label}: your policies say {_word(c.static)}, the cluster "
                          f"{'let it through' if c.live is Outcome.ALLOWED else 'blocked it'}" for c in differ)
        enforcing = any(c.live is Outcome.ALLOWED and not c.static for c in differ)
        cause = ("the CNI is not enforcing NetworkPolicy (Flannel, for one, never does) or has not programmed "
                 "these policies yet" if enforcing else
                 "the CNI has not programmed these policies yet, or blocks more than NetworkPolicy says")
        raise CheckFailed(
            f"your policies are right -- their matrix equals the target -- but after retrying for {elapsed:.0f} s "
            f"(up to {PROBE_ATTEMPTS} rounds of probes) the cluster disagrees on {len(differ)} cell(s): {words}. "
            f"This is not your mistake: {cause}.",
            hint="`k8slab doctor` checks whether the CNI enforces NetworkPolicy; the course cluster uses one that "
                 "does (Calico online, kube-router offline)", evidence=tuple(evidence))
    return StepResult("live", True, f"live traffic matches the target on all {len(cells)} cells ({probes})",
                      evidence=tuple(evidence) if getattr(ctx, "verbose", False) else ())


EXERCISES = {exercise: Exercise(static=static_check, live=live_check) for exercise in TARGETS}
