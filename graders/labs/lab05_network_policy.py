"""Grader of lab 05-network-policy: six NetworkPolicy exercises over one small world.

The world (labs/05-network-policy/world.yaml) is the seed's diagram: web, api and db in ``production``, test in
``staging`` (labelled app=web, like the web frontend it tests). The grader creates it (the engine sets the
namespace labels lab.yaml declares); the learner submits only NetworkPolicies. Each exercise states its target
as a default plus exceptions (``Expect``, after the e2e tests' ``ExpectPeer``) over a reachability table whose
columns are a destination pod's serving port (``graders.netpol.truthtable.Column``).

Checks:
  static  the learner's policies + the world -> ``graders.netpol`` verdicts, compared with the target. Every
          wrong cell is explained (``graders.netpol.explain``) and every known mistake is named (``diagnose``),
          with the file:line of the policy at fault.
  live    deploy the world, read the real pod IPs, recompute the static table with them, probe every cell
          (batched: one exec per source pod; retried only while a cell disagrees), and show expected, static
          and live side by side. Static right but live different means the CNI is not enforcing (or has not
          programmed the policies yet) -- said so, never blamed on the learner.
"""
from __future__ import annotations

import copy
import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders import paths
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.netpol.cli import load_manifests
from graders.netpol.compile import Direction
from graders.netpol.explain import explain
from graders.netpol.fields import PolicyError
from graders.netpol.inventory import inventory_from_objects, pod_document
from graders.netpol.mistakes import Locate, locator, no_location, policy_mistakes, short, too_closed, too_open
from graders.netpol.observe import Cell, CellProbes, judge, observe
from graders.netpol.truthtable import Column, Expect, Reachability, outcome_of, side_by_side
from graders.netpol.verdicts import PolicyEngine

LAB_ID = "05-network-policy"

PRODUCTION, STAGING, KUBE_SYSTEM = "production", "staging", "kube-system"
WEB, API, DB, TEST = "production/web", "production/api", "production/db", "staging/test"
KUBE_DNS = "kube-system/kube-dns"  # stands for every pod labelled k8s-app=kube-dns in kube-system
KUBE_DNS_SELECTOR = "k8s-app=kube-dns"
DNS_NAME = "kubernetes.default.svc.cluster.local"
SOURCES = (API, DB, WEB, TEST)

# The course cluster (kind): pod network 10.244.0.0/16, one /24 per node; the control-plane node registers
# first and owns 10.244.0.0/24. db is pinned to the control-plane node (world.yaml), the others are not.
POD_NETWORK = "10.244.0.0/16"
CONTROL_PLANE_RANGE = "10.244.0.0/24"

PROBE_ATTEMPTS = 5
PROBE_DEADLINE_S = 40.0
READY_TIMEOUT_S = 120.0


def lab_dir() -> Path:
    return paths.lab_dir(LAB_ID)


# ---- Targets: columns (destination pod + port) and expectations (default + exceptions) ---------------------


def is_dns(column: Column) -> bool:
    return column.pod == KUBE_DNS


@dataclass(frozen=True)
class ExerciseTarget:
    """What an exercise asks for. Later expectations override earlier ones; ``by_address`` (ipBlock exercises)
    decides from the destination's addresses and overrides them all where it returns a bool."""

    statement: str
    direction: Direction  # the direction the exercise is about
    columns: tuple[Column, ...]
    expects: tuple[Expect, ...]
    default: bool = True
    by_address: Callable[[str, Column, tuple[str, ...]], bool | None] | None = None
    needs_dns: bool = False

    def reachability(self, addresses: Mapping[str, tuple[str, ...]] | None = None) -> Reachability:
        """The expected table (``addresses``: "ns/pod" -> its IPs, for ``by_address``); nothing observed yet."""
        table = Reachability(SOURCES, self.default, self.columns).expect_all(self.expects)
        if self.by_address is not None and addresses is not None:
            for source, column in table.expected.pairs():
                decided = self.by_address(source, column, addresses.get(column.pod, ()))
                if decided is not None:
                    table.expected.set(source, column, outcome_of(decided))
        return table


WEB_80, API_8080, DB_5432, TEST_80 = Column(WEB, 80), Column(API, 8080), Column(DB, 5432), Column(TEST, 80)
BASIC = (WEB_80, API_8080, DB_5432, TEST_80)
DNS_UDP, DNS_TCP = Column(KUBE_DNS, 53, "UDP"), Column(KUBE_DNS, 53, "TCP", show_protocol=True)


def _in_pod_network_outside_control_plane(source: str, column: Column, ips: tuple[str, ...]) -> bool | None:
    """ipblock-except: api may reach an address inside 10.244.0.0/16 and outside 10.244.0.0/24."""
    if source != API or not ips:
        return None
    ip = ipaddress.ip_address(ips[0])
    return ip in ipaddress.ip_network(POD_NETWORK) and ip not in ipaddress.ip_network(CONTROL_PLANE_RANGE)


TARGETS: dict[str, ExerciseTarget] = {
    "default-deny-ingress": ExerciseTarget(
        "nothing reaches a pod of production; everything else stays open",
        Direction.INGRESS, BASIC,
        (Expect("", "production/", False),)),
    "web-to-api": ExerciseTarget(
        "only production's web reaches api, only on 8080; api's admin port 8084 stays closed; other pods stay open",
        Direction.INGRESS, (WEB_80, API_8080, Column(API, 8084), DB_5432, TEST_80),
        (Expect("", API, False), Expect(WEB, API, True, port=8080))),
    "seed-diagram": ExerciseTarget(
        "the seed's diagram: web -> api:8080 and api -> db:5432 allowed, nothing else into production "
        "(web -> db and staging's test -> api denied); staging stays open",
        Direction.INGRESS, BASIC,
        (Expect("", "production/", False), Expect(WEB, API, True, port=8080), Expect(API, DB, True, port=5432))),
    "api-egress-dns": ExerciseTarget(
        "api connects to db:5432 and to DNS (kube-dns, UDP and TCP 53) and nowhere else; everything else open",
        Direction.EGRESS, (*BASIC, DNS_UDP, DNS_TCP),
        (Expect(API, "", False), Expect(API, DB, True, port=5432), Expect(API, "kube-system/", True)),
        needs_dns=True),
    "named-ports-range": ExerciseTarget(
        "db accepts only api, only on its port named postgres (5432); api accepts only web, only on 8080-8083; "
        "api's admin 8084 and db's replication 5433 stay closed; other pods stay open",
        Direction.INGRESS,
        (WEB_80, API_8080, Column(API, 8083), Column(API, 8084), DB_5432, Column(DB, 5433), TEST_80),
        (Expect("", API, False), Expect(WEB, API, True, port=8080), Expect(WEB, API, True, port=8083),
         Expect("", DB, False), Expect(API, DB, True, port=5432))),
    "ipblock-except": ExerciseTarget(
        f"api connects to addresses in {POD_NETWORK} except {CONTROL_PLANE_RANGE} (the control-plane node's "
        f"pods: db) and nowhere else; everything else open",
        Direction.EGRESS, BASIC,
        (Expect(API, "", False), Expect(API, WEB, True), Expect(API, TEST, True)),
        by_address=_in_pod_network_outside_control_plane),
}


# ---- The world as objects (pods with addresses): static from world.yaml, live from the cluster -------------


@functools.lru_cache(maxsize=2)
def _docs(name: str) -> tuple[dict, ...]:
    with open(lab_dir() / name, encoding="utf-8") as handle:
        return tuple(doc for doc in yaml.safe_load_all(handle) if doc)


def world_objects(exercise: str, addresses: Mapping[str, str] | None = None,
                  dns_pods: Sequence[dict] | None = None) -> list[dict]:
    """Namespaces and pods the static engine reasons about. ``addresses`` ("ns/pod" -> IP) replaces the typical
    addresses of world.yaml; ``dns_pods`` replaces cluster-dns.yaml's CoreDNS pods (the live ones)."""
    docs = [copy.deepcopy(d) for d in _docs("world.yaml")]
    for doc in docs:
        if doc.get("kind") == "Pod" and addresses is not None:
            key = f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
            doc["status"] = {"podIP": addresses[key]} if addresses.get(key) else {}
    if TARGETS[exercise].needs_dns:
        if dns_pods is None:
            docs.extend(copy.deepcopy(d) for d in _docs("cluster-dns.yaml"))
        else:
            docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUBE_SYSTEM}})
            docs.extend(dns_pods)
    return docs


def fixture_objects(image: str) -> list[dict]:
    """The pods the grader creates (world.yaml without status, with the pinned agnhost image); `ensure_pods`
    labels them as the grader's, so they stay running from one check to the next while unchanged."""
    pods = []
    for doc in _docs("world.yaml"):
        if doc.get("kind") != "Pod":
            continue
        pod = copy.deepcopy(doc)
        pod.pop("status", None)
        pod["spec"]["terminationGracePeriodSeconds"] = 0
        for container in pod["spec"]["containers"]:
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
        pods.append(pod)
    return pods


# ---- Static evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class StaticReport:
    """The static verdict of one exercise: expected vs what the policies say, the named mistakes and the
    explanation (and one-line why) of every wrong cell."""

    exercise: str
    reachability: Reachability = field(compare=False)  # expected vs static
    diagnoses: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()
    whys: Mapping[Cell, str] = field(default_factory=dict, compare=False)
    engine: PolicyEngine | None = field(default=None, compare=False)

    @property
    def cells(self) -> tuple[Cell, ...]:
        return tuple(self.reachability.expected.pairs())

    @property
    def wrong(self) -> tuple[Cell, ...]:
        return self.reachability.wrong_cells()

    @property
    def matches(self) -> bool:
        return self.reachability.matches

    def allowed(self, source: str, column: Column) -> bool:
        return self.reachability.observed.get(source, column) is Outcome.ALLOWED

    @property
    def message(self) -> str:
        statement = TARGETS[self.exercise].statement
        if self.matches:
            return f"the policies' matrix equals the target ({len(self.cells)} cells): {statement}"
        expected, static = self.reachability.expected, self.reachability.observed
        head = (f"{len(self.wrong)} of {len(self.cells)} cells differ from the target ({statement}): "
                + ", ".join(f"{s} -> {c.label} should be {expected.get(s, c).word} but is {static.get(s, c).word}"
                            for s, c in self.wrong))
        return "\n".join([head, *(f"- {d}" for d in self.diagnoses)])

    def __repr__(self) -> str:
        verdict = "matches the target" if self.matches else f"{len(self.wrong)} wrong cell(s)"
        return f"<static matrix of {self.exercise}: {len(self.cells)} cells, {verdict}>"


def destination_pods(engine: PolicyEngine, column: Column) -> list[str]:
    if is_dns(column):
        return [p.key for p in engine.pods if p.namespace == KUBE_SYSTEM and p.labels.get("k8s-app") == "kube-dns"]
    return [column.pod]


def _cell_allowed(engine: PolicyEngine, source: str, column: Column) -> bool:
    pods = destination_pods(engine, column)
    return bool(pods) and all(engine.is_allowed(source, pod, column.port, column.protocol) for pod in pods)


def evaluate(exercise: str, objects: Iterable[Manifest], addresses: Mapping[str, str] | None = None,
             dns_pods: Sequence[dict] | None = None) -> StaticReport:
    """Compute the static table of the learner's policies over the world and compare it with the target."""
    target = TARGETS[exercise]
    policies = [m for m in objects if m.kind == "NetworkPolicy"]
    try:
        engine = PolicyEngine(inventory_from_objects([*world_objects(exercise, addresses, dns_pods),
                                                      *(m.obj for m in policies)], default_namespace=PRODUCTION))
    except PolicyError as error:
        source = next((f"{m.where}: " for m in policies if m.obj is error.obj), "")
        raise CheckFailed(f"the policies cannot be evaluated: {source}{error.message}", hint=error.hint) from None
    table = target.reachability({p.key: p.ips for p in engine.pods})
    for source, column in table.expected.pairs():
        table.observe(source, column, _cell_allowed(engine, source, column))
    if table.matches:
        return StaticReport(exercise, table, engine=engine)
    wrong = table.wrong_cells()
    return StaticReport(exercise, table, diagnose(exercise, engine, table, locator(policies, PRODUCTION)),
                        tuple(_explain_cell(engine, s, c) for s, c in wrong),
                        {(s, c): _why(engine, s, c) for s, c in wrong}, engine)


def evaluate_files(exercise: str, sources: Iterable[Path | str]) -> StaticReport:
    """``evaluate`` on YAML files or directories (tests and the notebook use it; no cluster)."""
    return evaluate(exercise, load_manifests([str(s) for s in sources]))


def grids(report: StaticReport, live: Reachability | None = None) -> str:
    """expected | static (| live), side by side."""
    tables = {"expected": report.reachability.expected, "static": report.reachability.observed}
    if live is not None:
        tables["live"] = live.observed
    return side_by_side(tables)


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
    print(grids(report))
    if report.matches:
        print(f"static: your policies draw the target ({len(report.cells)} cells); run check() for live traffic")
    else:
        print(report.message)
        if explain:
            print("\n" + "\n\n".join(report.explanations))
    return report


def _explain_cell(engine: PolicyEngine, source: str, column: Column) -> str:
    texts = []
    for pod in destination_pods(engine, column) or [column.pod]:
        try:
            texts.append(explain(engine, source, pod, column.port, column.protocol).text)
        except Exception as error:  # noqa: BLE001 -- an explanation is evidence, never the reason a check fails
            texts.append(f"{source} -> {pod}:{column.port}/{column.protocol}: "
                         f"(no explanation: {type(error).__name__}: {error})")
    return "\n".join(texts)


def _why(engine: PolicyEngine, source: str, column: Column) -> str:
    try:
        pod = (destination_pods(engine, column) or [column.pod])[0]
        return explain(engine, source, pod, column.port, column.protocol).summary
    except Exception:  # noqa: BLE001 -- as above
        return ""


# ---- Diagnosis: the mistake named in the learner's terms (lab.yaml quotes the sentences), with file:line ---


def diagnose(exercise: str, engine: PolicyEngine, table: Reachability, at: Locate = no_location) -> tuple[str, ...]:
    """Every known mistake visible in these policies, each in one sentence that names it (and, through ``at``,
    the file:line of the policy at fault)."""
    direction = TARGETS[exercise].direction
    found: dict[str, None] = {}  # each sentence once, in the order found

    def say(text: str) -> None:
        found.setdefault(text, None)

    isolated = {(column.pod if direction is Direction.INGRESS else source).split("/")[0]
                for (source, column), expected in table.expected.items() if expected is Outcome.BLOCKED}
    policy_mistakes(engine, direction, isolated, (PRODUCTION, STAGING), POD_NETWORK, say, at)
    for source, column in table.wrong_cells():  # what admits a blocked cell, what blocks an allowed one
        if table.observed.get(source, column) is not Outcome.ALLOWED and is_dns(column):
            _dns_blocked(engine, source, column, say)
            continue
        for pod in destination_pods(engine, column) or [column.pod]:
            verdict = engine.evaluate(source, pod, column.port, column.protocol)
            if table.observed.get(source, column) is Outcome.ALLOWED:
                too_open(direction, verdict, say, at)
            else:
                too_closed(direction, column.label, verdict, say, at)
    return tuple(found)


def _dns_blocked(engine: PolicyEngine, source: str, column: Column, say: Callable[[str], Any]) -> None:
    if column.protocol == "UDP":
        say(f"{source}'s egress is isolated and nothing allows DNS: name resolution fails (allow UDP and "
            f"TCP port 53 to the kube-dns pods, label {KUBE_DNS_SELECTOR}, in namespace kube-system)")
    elif _cell_allowed(engine, source, DNS_UDP):
        say(f"DNS over TCP port 53 is blocked for {source} (only UDP 53 is allowed): answers too large "
            f"for UDP, and resolvers that retry over TCP, fail")


# ---- Checks ------------------------------------------------------------------------------------------------

HINTS = {
    "default-deny-ingress": "a default deny selects every pod of its namespace and lists Ingress with no rules",
    "web-to-api": "in `from`, each dash starts a new peer (ORed); selectors inside one peer are ANDed",
    "seed-diagram": "deny everything into production first, then add one allowance per arrow of the diagram",
    "api-egress-dns": "once egress is isolated, DNS is just another destination: kube-dns pods, port 53, UDP and TCP",
    "named-ports-range": "a named port is looked up on the destination pod; endPort is inclusive",
    "ipblock-except": f"one ipBlock: cidr {POD_NETWORK} with an except for the control-plane node's range",
}


def _short_label(column: Column) -> str:
    return column.short


def _static_failure(report: StaticReport) -> CheckFailed:
    matrix = report.reachability.to_matrix(why=lambda s, c: report.whys.get((s, c), ""), name=_short_label)
    evidence = [Evidence.matrix("expected vs static (what your policies say)", matrix)]
    if report.explanations:
        evidence.append(Evidence.text("why each wrong cell is what it is", "\n\n".join(report.explanations)))
    return CheckFailed(report.message, hint=HINTS[report.exercise], evidence=tuple(evidence))


def static_check(ctx) -> StepResult:
    report = evaluate(ctx.spec.id, ctx.objects)
    if not report.matches:
        raise _static_failure(report)
    return StepResult("static", True, report.message)


# ---- live ----------------------------------------------------------------------------------------------------


def deploy_world(ctx) -> dict[str, Any]:
    """Create (or find) the lab's pods, wait until ready, return {"ns/pod": V1Pod}. The namespaces already carry
    the labels lab.yaml declares (the engine sets them when it resets the namespaces)."""
    from graders.probe import agnhost_image

    cluster = ctx.cluster
    cluster.ensure_pods(fixture_objects(agnhost_image(cluster)))
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
    return [pod_document(pod) for pod in cluster.list_pods(KUBE_SYSTEM, label_selector=KUBE_DNS_SELECTOR)
            if pod.status and pod.status.pod_ip and pod.status.phase == "Running"]


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


def _cell_probes(report: StaticReport, addresses: Mapping[str, str], dns_ips: Mapping[str, str]) -> CellProbes:
    """The probes of each cell, each with what the policies say it sees: DNS over UDP is a lookup, DNS over TCP
    one connection per kube-dns pod, any other cell one connection to the pod's port."""
    from graders.probe import ProbeSpec

    probes = {}
    for source, column in report.cells:
        static = report.allowed(source, column)
        if is_dns(column) and column.protocol == "UDP":
            probes[(source, column)] = [(ProbeSpec(source, "dns", DNS_NAME, label=column.label), static)]
        elif is_dns(column):
            probes[(source, column)] = [(ProbeSpec(source, "tcp", ip, 53, label=f"{column.label}@{short(pod)}"),
                                         report.engine.is_allowed(source, pod, 53, "TCP"))
                                        for pod, ip in sorted(dns_ips.items())]
        else:
            probes[(source, column)] = [(ProbeSpec(source, column.protocol.lower(), addresses[column.pod],
                                                   column.port, label=column.label), static)]
    return probes


def live_check(ctx) -> StepResult:
    exercise = ctx.spec.id
    pods = deploy_world(ctx)
    addresses = {key: pod.status.pod_ip for key, pod in pods.items()}
    dns_pods = live_dns_pods(ctx.cluster) if TARGETS[exercise].needs_dns else None
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
        raise _static_failure(report)
    dns_ips = {f"{KUBE_SYSTEM}/{p['metadata']['name']}": p["status"]["podIP"] for p in dns_pods or []}
    seen = observe(ctx.prober, report.reachability, _cell_probes(report, addresses, dns_ips),
                   functools.partial(_why, report.engine), attempts=PROBE_ATTEMPTS, deadline_s=PROBE_DEADLINE_S,
                   missing="no kube-dns pod to probe")
    evidence = (Evidence.text("expected | static | live", grids(report, seen.live)),
                Evidence.matrix("expected vs live", seen.matrix(name=_short_label)))
    message = judge(seen, evidence, PROBE_ATTEMPTS)
    return StepResult("live", True, message, evidence=evidence if getattr(ctx, "verbose", False) else ())


EXERCISES = {exercise: Exercise(static=static_check, live=live_check) for exercise in TARGETS}
