"""``MappedRunner``: probes written in the lab's namespace names, sent in the run's real ones.

Why: a check builds ``ProbeSpec("production/web", "dns", "api.production.svc.cluster.local", expect=(...))`` and
matches results against its specs (``probe_until`` keys on them). Under a ``NamespaceMap`` the probe must leave
from the real pod and ask for the real names; the check must get back results of ITS specs whose output, detail
and reproduce command read in the lab's names.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from graders.nsmap import NamespaceMap
from graders.probe import ProbeResult, ProbeSpec, Runner

# ProbeSpec fields sent as they are: they name no namespace a probe could reach (``label`` is what the matrix
# shows, in the lab's names already). Every other string field is mapped -- a new field is mapped by default.
_UNSENT = frozenset({"kind", "label", "record", "path", "container"})


class MappedRunner:
    """``runner`` (which talks to the real cluster) seen through ``nsmap``."""

    def __init__(self, runner: Runner, nsmap: NamespaceMap) -> None:
        self.runner = runner
        self.nsmap = nsmap

    def __getattr__(self, name: str):
        # counters a benchmark reads (execs, calls, runs, seconds): numbers, no names
        value = getattr(self.runner, name)
        if callable(value) or isinstance(value, str):
            raise AttributeError(f"MappedRunner does not offer {name!r}: map it in graders/nsprobe.py")
        return value

    def run(self, specs: Sequence[ProbeSpec]) -> list[ProbeResult]:
        sent = [self.spec_to_real(spec) for spec in specs]
        return [self.result_to_logical(result, spec) for result, spec in zip(self.runner.run(sent), specs)]

    def spec_to_real(self, spec: ProbeSpec) -> ProbeSpec:
        nsmap = self.nsmap
        changes: dict[str, object] = {"source": nsmap.key_to_real(spec.source)}
        for f in dataclasses.fields(spec):
            value = getattr(spec, f.name)
            if f.name in _UNSENT or f.name == "source" or not f.init:
                continue
            if isinstance(value, str):
                changes[f.name] = nsmap.dns_text_to_real(value)
            elif isinstance(value, tuple):
                changes[f.name] = tuple(nsmap.dns_text_to_real(v) if isinstance(v, str) else v for v in value)
        return dataclasses.replace(spec, **changes)

    def result_to_logical(self, result: ProbeResult, spec: ProbeSpec) -> ProbeResult:
        text = self.nsmap.text_to_logical
        return dataclasses.replace(result, spec=spec, output=text(result.output), detail=text(result.detail),
                                   command=text(result.command))
