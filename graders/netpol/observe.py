"""A reachability table observed with probes, and what a disagreement with the policies means.

A cell is one or more probes (a DNS-over-TCP cell probes every kube-dns pod). ``observe`` runs them all -- batched
by the runner, re-run only while a probe disagrees with the policies, since a CNI programs new policies with a
delay -- and combines each cell's probes into one outcome. ``judge`` words the result: a probe that could not run
is the grader's problem, and a cluster that disagrees with right policies is the CNI's, never the learner's.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from graders.errors import CheckFailed
from graders.model import Evidence, Matrix, Outcome
from graders.netpol.truthtable import Destination, Reachability, outcome_of
from graders.probe import ProbeResult, ProbeSpec, Runner, probe_until

Cell = tuple[str, Destination]
CellProbes = Mapping[Cell, Sequence[tuple[ProbeSpec, bool]]]  # each probe with what the policies say it sees


@dataclass(frozen=True)
class Observation:
    static: Reachability  # expected vs what the policies say (they agree: only right policies are probed)
    live: Reachability  # expected vs what the probes saw
    whys: Mapping[Cell, str]  # where a cell's probes disagree with the policies: what each side says
    commands: Mapping[Cell, str]  # the command reproducing each cell's (first telling) probe
    probes: int
    sources: int
    elapsed: float

    def matrix(self, name: Callable[[Destination], str] = str) -> Matrix:
        return self.live.to_matrix(why=lambda s, d: self.whys.get((s, d), ""),
                                   command=lambda s, d: self.commands.get((s, d), ""), name=name)

    @property
    def summary(self) -> str:
        return (f"{self.probes} probes from {self.sources} pods, one exec per pod per round, "
                f"{self.elapsed:.1f} s")


def combine(results: Sequence[ProbeResult], missing: str) -> tuple[Outcome, str, str]:
    """One cell from its probes: any failed probe -> FAILED; all allowed -> ALLOWED; else BLOCKED. Returns the
    outcome, the telling probe's detail and its command; ``missing`` is the detail when there was nothing to probe."""
    if not results:
        return Outcome.NOT_RUN, missing, ""
    for outcome in (Outcome.FAILED, Outcome.NOT_RUN, Outcome.BLOCKED):
        bad = [r for r in results if r.outcome is outcome]
        if bad:
            return outcome, bad[0].detail, bad[0].command
    return Outcome.ALLOWED, "", results[0].command


def observe(runner: Runner, static: Reachability, probes: CellProbes, policies_why: Callable[[str, Destination], str],
            *, attempts: int, deadline_s: float, missing: str = "no pod to probe") -> Observation:
    """Probe every cell of ``static`` (``probes`` in its cell order); ``policies_why`` says in one line why the
    policies decide a cell as they do, for the cells the cluster decides otherwise."""
    specs = [spec for parts in probes.values() for spec, _ in parts]
    want = {spec: outcome_of(allowed) for parts in probes.values() for spec, allowed in parts}
    started = time.monotonic()
    results = dict(zip(specs, probe_until(runner, specs, want, attempts=attempts, deadline_s=deadline_s)))
    elapsed = time.monotonic() - started
    live, whys, commands = static.with_observed(), {}, {}
    for cell, parts in probes.items():
        outcome, detail, commands[cell] = combine([results[spec] for spec, _ in parts], missing)
        live.observe(*cell, outcome)
        if outcome is not static.observed.get(*cell):
            whys[cell] = "; ".join(part for part in (f"probe: {detail}" if detail else "",
                                                     f"policies: {policies_why(*cell)}") if part)
    return Observation(static, live, whys, commands, len(specs), len({s.source for s in specs}), elapsed)


def judge(observation: Observation, evidence: Sequence[Evidence], attempts: int) -> str:
    """The success message; raises CheckFailed (with ``evidence``) when probes failed or the cluster disagrees."""
    seen = dict(observation.live.observed.items())
    says = {cell: observation.static.observed.get(*cell) for cell in seen}
    failed = [c for c, outcome in seen.items() if outcome in (Outcome.FAILED, Outcome.NOT_RUN)]
    differ = [c for c, outcome in seen.items() if c not in failed and outcome is not says[c]]
    if failed:
        raise CheckFailed(
            f"the grader's probes could not run for {len(failed)} cell(s) ("
            + "; ".join(f"{s} -> {d}: {observation.whys[(s, d)]}" for s, d in failed)
            + "); this says nothing about your policies", hint="run `k8slab doctor`, then check again",
            evidence=tuple(evidence))
    if differ:
        words = "; ".join(f"{s} -> {d}: your policies say {says[(s, d)].word}, the cluster "
                          f"{'let it through' if seen[(s, d)] is Outcome.ALLOWED else 'blocked it'}" for s, d in differ)
        enforcing = any(seen[c] is Outcome.ALLOWED for c in differ)
        cause = ("the CNI is not enforcing NetworkPolicy (Flannel, for one, never does) or has not programmed "
                 "these policies yet" if enforcing else
                 "the CNI has not programmed these policies yet, or blocks more than NetworkPolicy says")
        raise CheckFailed(
            f"your policies are right -- their matrix equals the target -- but after retrying for "
            f"{observation.elapsed:.0f} s (up to {attempts} rounds of probes) the cluster disagrees on {len(differ)} "
            f"cell(s): {words}. This is not your mistake: {cause}.",
            hint="`k8slab doctor` checks whether the CNI enforces NetworkPolicy; the course cluster uses one that "
                 "does (kube-router, online and offline)", evidence=tuple(evidence))
    return f"live traffic matches the target on all {len(seen)} cells ({observation.summary})"
