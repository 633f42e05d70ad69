"""Lab 02, exercise enforce: the same NetworkPolicies on two data planes.

The learner writes NetworkPolicies in ``k8slab-cni`` so that web accepts frontend only: frontend -> web allowed,
intruder -> web blocked, intruder -> frontend still allowed. Two imagined callers are judged statically, never
probed: ``newcomer`` (any other pod of the namespace: "frontend only", not "anything but intruder") and a pod
labelled app=frontend in another namespace.

  static  the world + the policies -> graders.netpol verdicts against the target; every wrong cell explained and
          every known mistake named with its file:line (graders.netpol.mistakes).
  live    the world on the graded cluster, its real addresses, every cell probed (graders.netpol.observe.judge:
          right policies that the cluster does not enforce are never blamed on the learner). Then the same
          objects on the second cluster (graders.comparison): its result is shown, never graded — that Flannel
          lets intruder through is the lesson, not the learner's mistake.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from graders import comparison
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.labs import lab02_cni as lab
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.netpol.compile import Direction
from graders.netpol.explain import explain
from graders.netpol.fields import PolicyError
from graders.netpol.inventory import inventory_from_objects
from graders.netpol.mistakes import Locate, locator, no_location, policy_mistakes, short, too_closed, too_open
from graders.netpol.observe import Observation, judge, observe
from graders.netpol.truthtable import Column, Expect, Reachability, side_by_side
from graders.netpol.verdicts import PolicyEngine

NS = lab.NS
PORT = lab.PORT
WEB, FRONTEND, INTRUDER = (f"{NS}/{name}" for name in (lab.WEB, lab.FRONTEND, lab.INTRUDER))
NEWCOMER = f"{NS}/newcomer"
ELSEWHERE_NS = "k8slab-cni-elsewhere"
ELSEWHERE = f"{ELSEWHERE_NS}/frontend"
SOURCES = (FRONTEND, INTRUDER)
IMAGINED = {NEWCOMER: "newcomer", ELSEWHERE: "frontend"}  # imagined source -> its app label
COLUMNS = (Column(WEB, PORT), Column(FRONTEND, PORT))
EXPECTS = (Expect("", WEB, False), Expect(FRONTEND, WEB, True))
POD_NETWORK = "10.244.0.0/16"
# Typical addresses for the static check without a cluster; the live check uses the real ones.
EXAMPLE_IPS = {WEB: "10.244.2.10", FRONTEND: "10.244.1.10", INTRUDER: "10.244.1.11", NEWCOMER: "10.244.1.12",
               ELSEWHERE: "10.244.2.13"}
STATEMENT = (f"web accepts frontend only, on {PORT}: frontend -> web allowed, intruder -> web blocked, intruder -> "
             f"frontend allowed ({NEWCOMER} stands for any other pod of {NS}, {ELSEWHERE} for a pod labelled "
             f"app=frontend in another namespace: both blocked from web)")
SOURCE_WHY = {
    NEWCOMER: f"{NEWCOMER} stands for any other pod of {NS}: the statement names who may reach web (frontend), not "
              f"who may not (intruder)",
    ELSEWHERE: f"{ELSEWHERE} carries app=frontend in another namespace: only the frontend of {NS} is the statement's "
               f"frontend (a podSelector alone selects pods of the policy's own namespace)",
}
HINT = "select web's pods, isolate their Ingress, and admit only the frontend pods of this namespace on web's port"
PROBE_ATTEMPTS, PROBE_DEADLINE_S = 5, 30.0
COMPARE_ATTEMPTS, COMPARE_DEADLINE_S = 3, 12.0  # the second cluster is shown, not graded: do not wait long


def world_docs(addresses: Mapping[str, str] | None = None) -> list[dict]:
    """The namespace and pods the static engine reasons about: the real world (``addresses``: "ns/pod" -> IP from
    the cluster) or, without addresses, the world plus the imagined callers at EXAMPLE_IPS."""
    pods = lab.world_pods(NS, "agnhost", ("worker", "worker2"))
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
    if addresses is None:
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ELSEWHERE_NS}})
        pods += [lab.probe.probe_pod(key.split("/")[0], key.split("/")[1], "agnhost", labels={"app": app})
                 for key, app in IMAGINED.items()]
    ips = EXAMPLE_IPS if addresses is None else addresses
    for pod in pods:
        meta = pod["metadata"]
        pod["status"] = {"podIP": ips.get(f"{meta['namespace']}/{meta['name']}", "")}
    return docs + pods


@dataclass(frozen=True, repr=False)
class Report:
    """Expected vs what the policies say, the named mistakes and the explanation of every wrong cell."""

    reachability: Reachability = field(compare=False)
    engine: PolicyEngine | None = field(default=None, compare=False)
    diagnoses: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()
    whys: Mapping = field(default_factory=dict, compare=False)

    @property
    def matches(self) -> bool:
        return self.reachability.matches

    @property
    def cells(self) -> tuple:
        return tuple(self.reachability.expected.pairs())

    @property
    def message(self) -> str:
        if self.matches:
            return f"the policies' matrix equals the target ({len(self.cells)} cells): {STATEMENT}"
        expected, static = self.reachability.expected, self.reachability.observed
        wrong = self.reachability.wrong_cells()
        head = (f"{len(wrong)} of {len(self.cells)} cells differ from the target ({STATEMENT}): "
                + ", ".join(f"{s} -> {c.label} should be {expected.get(s, c).word} but is {static.get(s, c).word}"
                            for s, c in wrong))
        return "\n".join([head, *(f"- {d}" for d in self.diagnoses)])


def evaluate(objects: Iterable[Manifest], addresses: Mapping[str, str] | None = None) -> Report:
    """The static table of the learner's policies over the world, compared with the target."""
    policies = [m for m in objects if m.kind == "NetworkPolicy"]
    try:
        engine = PolicyEngine(inventory_from_objects([*world_docs(addresses), *(m.obj for m in policies)],
                                                     default_namespace=NS))
    except PolicyError as error:
        source = next((f"{m.where}: " for m in policies if m.obj is error.obj), "")
        raise CheckFailed(f"the policies cannot be evaluated: {source}{error.message}", hint=error.hint) from None
    sources = SOURCES if addresses is not None else (*SOURCES, *IMAGINED)
    table = Reachability(sources, True, COLUMNS).expect_all(EXPECTS)
    for source, column in table.expected.pairs():
        table.observe(source, column, engine.is_allowed(source, column.pod, column.port, column.protocol))
    wrong = table.wrong_cells()
    if not wrong:
        return Report(table, engine)
    return Report(table, engine, diagnose(engine, table, locator(policies, NS)),
                  tuple(explain(engine, s, c.pod, c.port, c.protocol).text for s, c in wrong),
                  {(s, c): explain(engine, s, c.pod, c.port, c.protocol).summary for s, c in wrong})


def diagnose(engine: PolicyEngine, table: Reachability, at: Locate = no_location) -> tuple[str, ...]:
    """Every known mistake these policies show, one sentence each (lab.yaml quotes them)."""
    found: dict[str, None] = {}

    def say(text: str) -> None:
        found.setdefault(text, None)

    policy_mistakes(engine, Direction.INGRESS, {NS}, (NS,), POD_NETWORK, say, at)
    wrong = table.wrong_cells()
    for source, column in wrong:
        allowed = table.observed.get(source, column) is Outcome.ALLOWED
        if source in SOURCE_WHY and allowed and not any((real, column) in wrong for real in SOURCES):
            say(SOURCE_WHY[source])
        verdict = engine.evaluate(source, column.pod, column.port, column.protocol)
        if allowed:
            too_open(Direction.INGRESS, verdict, say, at)
            continue
        if column.pod != WEB:
            for target in verdict.ingress.selecting:
                policy = target.target.policy
                say(f"NetworkPolicy {policy}{at(policy, 'spec', 'podSelector')} also isolates {column.pod}: the "
                    f"statement restricts who reaches web only; connections to {short(column.pod)} must stay open")
        too_closed(Direction.INGRESS, column.label, verdict, say, at)
    return tuple(found)


def _static_failure(report: Report) -> CheckFailed:
    matrix = report.reachability.to_matrix(why=lambda s, c: report.whys.get((s, c), ""), name=lambda c: c.short)
    evidence = [Evidence.matrix("expected vs static (what your policies say)", matrix)]
    if report.explanations:
        evidence.append(Evidence.text("why each wrong cell is what it is", "\n\n".join(report.explanations)))
    return CheckFailed(report.message, hint=HINT, evidence=tuple(evidence))


def enforce_static(ctx) -> StepResult:
    report = evaluate(ctx.objects)
    if not report.matches:
        raise _static_failure(report)
    return StepResult("static", True, report.message)


# ---- live ----------------------------------------------------------------------------------------------------
def _probe(cluster, prober, objects: Sequence[Manifest], attempts: int, deadline_s: float) -> tuple[Report, Observation]:
    """The world on ``cluster`` (the policies already applied), the static table with its real addresses, and every
    cell probed."""
    from graders.probe import ProbeSpec

    ips, _ = lab.deploy_world(cluster, NS)
    addresses = {f"{NS}/{name}": ip for name, ip in ips.items()}
    report = evaluate(objects, addresses)
    probes = {(s, c): [(ProbeSpec(s, "tcp", addresses[c.pod], c.port, label=c.label),
                        report.reachability.observed.get(s, c) is Outcome.ALLOWED)]
              for s, c in report.cells}

    def why(source: str, column: Column) -> str:
        return explain(report.engine, source, column.pod, column.port, column.protocol).summary
    return report, observe(prober, report.reachability, probes, why, attempts=attempts, deadline_s=deadline_s)


def grids(report: Report, seen: Observation | None = None, live: str = "live") -> str:
    tables = {"expected": report.reachability.expected, "static": report.reachability.observed}
    if seen is not None:
        tables[live] = seen.live.observed
    return side_by_side(tables)


def compare_summary(main: str, second: str, seen: Observation) -> str:
    """One line: what the second cluster did with policies that are right and enforced on the main one (pure)."""
    cells = dict(seen.live.observed.items())
    says = {cell: seen.static.observed.get(*cell) for cell in cells}
    failed = [c for c, outcome in cells.items() if outcome in (Outcome.FAILED, Outcome.NOT_RUN)]
    through = [c for c, outcome in cells.items() if outcome is Outcome.ALLOWED and says[c] is Outcome.BLOCKED]
    closed = [c for c, outcome in cells.items() if outcome is Outcome.BLOCKED and says[c] is Outcome.ALLOWED]
    head = f"static ✓, live ✓ on {main}"
    if failed:
        return f"{head}; on {second}: not probed (the grader's probes could not run there)"
    if through:
        cells_text = ", ".join(f"{short(s)} -> {short(c.pod)}" for s, c in through)
        return (f"{head}; static ✓, live ✗ on {second} (the CNI does not enforce: {cells_text} got through) — the "
                f"same objects, another data plane; this is not your mistake")
    if closed:
        return f"{head}; static ✓, live ✗ on {second} (it blocked connections your policies allow)"
    return f"{head}; static ✓, live ✓ on {second} (its CNI enforces them too)"


def compare_on_second(ctx) -> tuple[str, tuple[Evidence, ...]]:
    """The learner's objects on the second cluster: a summary line and its grid; never a failure."""
    main = getattr(ctx.cluster, "context", "") or "the graded cluster"
    found = comparison.find(ctx)
    if isinstance(found, comparison.Missing):
        return f"static ✓, live ✓ on {main}; second cluster {found.message}", ()
    prober = lab._second_prober(ctx, found)
    try:
        with comparison.prepared(ctx, found, ctx.spec.namespaces, ctx.spec.allowed_kinds) as notes:
            found.apply([m.obj for m in ctx.objects])
            report, seen = _probe(found, prober, ctx.objects, COMPARE_ATTEMPTS, COMPARE_DEADLINE_S)
    except K8sLabError as error:
        return f"static ✓, live ✓ on {main}; on {found.context}: not probed ({error.message})", ()
    summary = compare_summary(main, found.context, seen)
    evidence = (Evidence.text(f"expected | static | live on {found.context}", grids(report, seen)),)
    if notes:
        evidence += (Evidence.text("note", "; ".join(notes)),)
    return summary, evidence


def enforce_live(ctx) -> StepResult:
    report, seen = _probe(ctx.cluster, ctx.prober, ctx.objects, PROBE_ATTEMPTS, PROBE_DEADLINE_S)
    if not report.matches:  # the real addresses changed the verdict: the learner's policies are wrong
        raise _static_failure(report)
    evidence = (Evidence.text("expected | static | live", grids(report, seen)),
                Evidence.matrix("expected vs live", seen.matrix(name=lambda c: c.short)))
    message = judge(seen, evidence, PROBE_ATTEMPTS)
    summary, compared = compare_on_second(ctx)
    return StepResult("live", True, f"{message}. {summary}", evidence=(*evidence, *compared))


EXERCISES = {"enforce": Exercise(static=enforce_static, live=enforce_live)}
