"""What a lab grader module codes against: ``Exercise`` (its checks) and ``Ctx`` (what a check may use).

A lab module (graders/labs/labNN_name.py) defines ``LAB_ID`` and ``EXERCISES = {"id": Exercise(static, live)}``.
A check is ``fn(ctx) -> StepResult | None``; it fails by raising ``CheckFailed`` (or ``ctx.fail(...)``), which
keeps checks reading like sentences: look, compare, fail with what is wrong and a hint.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from graders.cluster import ClusterAPI
from graders.errors import CheckFailed, UsageError
from graders.manifests import Manifest
from graders.model import Evidence, StepResult
from graders.spec import ExerciseSpec

if TYPE_CHECKING:
    from graders.probe import Runner
    from graders.questions import Answer, Question

StepFn = Callable[["Ctx"], "StepResult | None"]


@dataclass(frozen=True)
class Exercise:
    """The checks of one exercise: ``static`` (optional, no traffic) and ``live`` (real probes)."""

    static: StepFn | None = None
    live: StepFn | None = None
    questions: tuple["Question", ...] = ()  # an answers exercise's questions (graders.questions)


@dataclass(frozen=True)
class Ctx:
    """Everything a check may use. ``objects`` are the learner's manifests, namespaces already filled in."""

    spec: ExerciseSpec
    objects: tuple[Manifest, ...]
    cluster: ClusterAPI
    run_id: str = ""
    verbose: bool = False
    runner_factory: Callable[[ClusterAPI], "Runner"] | None = None  # tests inject a SimulatedRunner here
    answers: Mapping[str, "Answer"] = field(default_factory=dict)  # an answers exercise's, by question id
    # what happens to the namespaces afterwards (graders.engine.TEARDOWNS): a check that prepares namespaces on a
    # second cluster (graders.comparison) leaves them the same way
    teardown: str = "delete"

    @functools.cached_property
    def prober(self) -> "Runner":
        """The probe runner for this run (batched: one exec per source pod), built on first use. Under a
        namespace map (``cluster`` is a ``MappedCluster``) it probes the real cluster through a ``MappedRunner``:
        the check's specs and results stay in the lab's names."""
        from graders.nscluster import MappedCluster

        mapped = self.cluster if isinstance(self.cluster, MappedCluster) else None
        cluster = mapped.real if mapped is not None else self.cluster
        if self.runner_factory is not None:
            runner = self.runner_factory(cluster)
        else:
            from graders.probe import BatchRunner

            runner = BatchRunner(cluster)
        if mapped is None:
            return runner
        from graders.nsprobe import MappedRunner

        return MappedRunner(runner, mapped.nsmap)

    def namespace(self, name: str | None = None) -> str:
        """The name of an owned namespace (the default one when ``name`` is None), as the lab spells it: under a
        namespace map ``cluster`` and ``prober`` turn it into the run's real one."""
        if name is None:
            return self.spec.default_namespace
        if name not in self.spec.namespaces:
            raise UsageError(f"exercise {self.spec.id} does not own namespace {name!r} "
                             f"(owned: {', '.join(self.spec.namespaces)})")
        return name

    def objects_of(self, kind: str) -> list[Manifest]:
        return [m for m in self.objects if m.kind == kind]

    def find(self, kind: str, name: str) -> Manifest | None:
        return next((m for m in self.objects if m.kind == kind and m.name == name), None)

    def fail(self, message: str, *, hint: str = "", evidence: tuple[Evidence, ...] | list[Evidence] = (),
             credit: float = 0.0) -> NoReturn:
        raise CheckFailed(message, hint=hint, evidence=tuple(evidence), credit=credit)

    @staticmethod
    def ok(message: str = "", *, evidence: tuple[Evidence, ...] | list[Evidence] = ()) -> StepResult:
        """A passed step (the engine fills in the step name)."""
        return StepResult(step="", passed=True, message=message, evidence=tuple(evidence))
