"""Result model: frozen dataclasses every check produces and every front end renders. No I/O, no API calls.

The shapes follow the Kubernetes e2e netpol tests: an ``Outcome`` per probe (one glyph each), a from x to
``Matrix`` of expected vs observed cells where each wrong cell carries *why* and the command reproducing it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Union

# The evidence ladder, in the order the engine runs it (see docs/architecture.md).
STEPS = ("parse", "admit", "apply", "static", "live")


class Outcome(enum.Enum):
    """What one probe saw. An enum, not a bool: a probe that could not run is not a block."""

    ALLOWED = "."
    BLOCKED = "X"
    FAILED = "!"  # the probe itself could not run (exec failed, pod missing) — never read as "blocked"
    NOT_RUN = "?"  # not probed (e.g. an earlier step failed); the cell's ``why`` says which

    @property
    def glyph(self) -> str:
        return self.value

    @property
    def word(self) -> str:
        return {"ALLOWED": "allowed", "BLOCKED": "blocked", "FAILED": "probe failed", "NOT_RUN": "not run"}[self.name]


@dataclass(frozen=True)
class Table:
    """A plain table: column headers and rows of strings."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class MatrixCell:
    """One from -> to cell of a reachability matrix."""

    source: str  # readable pod string, "ns/pod"
    target: str  # "ns/pod" or "ns/pod:port/proto"
    expected: Outcome
    observed: Outcome
    why: str = ""  # explanation of the observed (or expected) outcome, e.g. the policy rule that allowed it
    command: str = ""  # pasteable command reproducing the observation

    @property
    def correct(self) -> bool:
        return self.expected == self.observed


@dataclass(frozen=True)
class Matrix:
    """Expected vs observed from x to table. ``sources``/``targets`` fix the display order."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    cells: tuple[MatrixCell, ...]

    def cell(self, source: str, target: str) -> MatrixCell | None:
        return next((c for c in self.cells if c.source == source and c.target == target), None)

    @property
    def wrong_cells(self) -> tuple[MatrixCell, ...]:
        """Observed cells that differ from the expectation (unobserved ones are not "wrong", just unknown)."""
        return tuple(c for c in self.cells if c.observed is not Outcome.NOT_RUN and not c.correct)

    @property
    def unobserved_cells(self) -> tuple[MatrixCell, ...]:
        return tuple(c for c in self.cells if c.observed is Outcome.NOT_RUN)

    @property
    def complete(self) -> bool:
        """Every source x target pair (except same-pod ones, never probed) has a cell that was observed."""
        seen = {(c.source, c.target) for c in self.cells if c.observed is not Outcome.NOT_RUN}
        return all((s, t) in seen for s in self.sources for t in self.targets if s != t)


EvidenceKind = Literal["table", "matrix", "text", "command"]
EvidenceData = Union[Table, Matrix, str]


@dataclass(frozen=True)
class Evidence:
    """Something a learner can look at to see why: a table, a matrix, a text block or a command to paste."""

    kind: EvidenceKind
    title: str
    data: EvidenceData

    @classmethod
    def text(cls, title: str, text: str) -> "Evidence":
        return cls("text", title, text)

    @classmethod
    def command(cls, title: str, command: str) -> "Evidence":
        return cls("command", title, command)

    @classmethod
    def table(cls, title: str, columns: tuple[str, ...] | list[str], rows) -> "Evidence":
        return cls("table", title, Table(tuple(columns), tuple(tuple(str(v) for v in row) for row in rows)))

    @classmethod
    def matrix(cls, title: str, matrix: Matrix) -> "Evidence":
        return cls("matrix", title, matrix)


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step of the ladder. ``credit`` in [0, 1] allows partial credit; when None it is
    1 for a passed step and 0 for a failed one."""

    step: str
    passed: bool
    message: str = ""
    hint: str = ""
    evidence: tuple[Evidence, ...] = ()
    credit: float | None = None

    @property
    def effective_credit(self) -> float:
        if self.credit is None:
            return 1.0 if self.passed else 0.0
        return min(1.0, max(0.0, float(self.credit)))


@dataclass(frozen=True)
class ExerciseResult:
    lab: str
    exercise: str
    title: str
    points: float
    score: float
    passed: bool
    message: str
    hint: str = ""
    steps: tuple[StepResult, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    # Why this cluster cannot grade the exercise at all ("" = it was graded): a requirement of the exercise
    # (spec ``requires``, e.g. a service mesh) that the cluster lacks. Not passed, 0 points, and not a failure of
    # the learner's files either: front ends say "not graded", pytest skips.
    ungraded: str = ""

    @property
    def failed_step(self) -> str | None:
        return next((s.step for s in self.steps if not s.passed), None)

    @property
    def graded(self) -> bool:
        return not self.ungraded


@dataclass(frozen=True)
class LabResult:
    lab: str
    exercises: tuple[ExerciseResult, ...] = field(default_factory=tuple)
    title: str = ""

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.exercises), 2)

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def passed(self) -> bool:
        return bool(self.exercises) and all(e.passed for e in self.exercises)

    @property
    def ungraded(self) -> tuple[ExerciseResult, ...]:
        """The exercises this cluster could not grade (ExerciseResult.ungraded)."""
        return tuple(e for e in self.exercises if e.ungraded)

    @property
    def failed(self) -> tuple[ExerciseResult, ...]:
        """The exercises graded and not passed."""
        return tuple(e for e in self.exercises if not e.passed and not e.ungraded)

    def exercise(self, exercise_id: str) -> ExerciseResult:
        for result in self.exercises:
            if result.exercise == exercise_id:
                return result
        raise KeyError(exercise_id)
