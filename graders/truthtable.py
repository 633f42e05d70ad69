"""From x to tables of reachability, after the Kubernetes e2e netpol ``truthtable.go`` and ``reachability.go``.

Cells are keyed by readable pod strings (``"x/a"``). A ``TruthTable`` of ``Outcome`` holds what was expected or
observed; ``compare()`` gives a third table of bools (True: the two agree). ``Reachability`` pairs an expected
and an observed table and is written as a default plus exceptions, never n x n literals::

    r = Reachability(pods, default=True)
    r.expect(Peer(), Peer(namespace="x"), False)        # nobody reaches namespace x ...
    r.expect(Peer(namespace="x"), Peer(namespace="x"), True)   # ... except x itself

Same-pod traffic (``x/a -> x/a``) is not part of the tables: it is always allowed and never probed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from graders.model import Matrix, MatrixCell, Outcome

Cell = Union[Outcome, bool]  # Outcome in expected/observed tables; bool (agree?) in a comparison
SAME_POD = "-"
CORNER = "from \\ to"
LEGEND = ". allowed  X blocked  ! probe failed  ? not run  - same pod"
COMPARISON_LEGEND = ". agrees  X differs  ? not comparable  - same pod"


def outcome_of(allowed: bool | Outcome) -> Outcome:
    if isinstance(allowed, Outcome):
        return allowed
    return Outcome.ALLOWED if allowed else Outcome.BLOCKED


def glyph(value: Cell | None) -> str:
    if value is None:
        return Outcome.NOT_RUN.glyph
    if isinstance(value, Outcome):
        return value.glyph
    return "." if value else "X"


class TruthTable:
    """A plain from x to table. Unset cells read as ``?``; the diagonal is not a cell."""

    def __init__(self, froms: Iterable[str], tos: Iterable[str] | None = None, default: Cell | None = None) -> None:
        self.froms = tuple(froms)
        self.tos = tuple(self.froms if tos is None else tos)
        self._cells: dict[tuple[str, str], Cell] = {}
        if default is not None:
            for key in self.pairs():
                self._cells[key] = default

    def pairs(self) -> Iterable[tuple[str, str]]:
        return ((f, t) for f in self.froms for t in self.tos if f != t)

    def _check(self, frm: str, to: str) -> None:
        if frm not in self.froms or to not in self.tos:
            raise KeyError(f"no cell {frm} -> {to} in this table")
        if frm == to:
            raise KeyError(f"{frm} -> {to} is same-pod traffic, which the table leaves out")

    def set(self, frm: str, to: str, value: Cell) -> None:
        self._check(frm, to)
        self._cells[(frm, to)] = value

    def get(self, frm: str, to: str) -> Cell | None:
        self._check(frm, to)
        return self._cells.get((frm, to))

    def items(self) -> Iterable[tuple[tuple[str, str], Cell | None]]:
        return ((key, self._cells.get(key)) for key in self.pairs())

    @property
    def is_complete(self) -> bool:
        """Every cell has a value, and none of them is 'not run'."""
        return all(v is not None and v is not Outcome.NOT_RUN for _, v in self.items())

    def compare(self, other: TruthTable) -> TruthTable:
        """A third table: True where both tables hold the same value, False where they differ, unset where
        either side has no value (so an incomplete observation never passes for agreement)."""
        result = TruthTable(self.froms, self.tos)
        for (frm, to), mine in self.items():
            if (frm, to) not in other._cells or mine is None:
                continue
            theirs = other._cells[(frm, to)]
            if mine is Outcome.NOT_RUN or theirs is Outcome.NOT_RUN:
                continue
            result._cells[(frm, to)] = mine == theirs
        return result

    def count(self, value: Cell) -> int:
        return sum(1 for _, v in self.items() if v == value and type(v) is type(value))

    def to_dict(self) -> dict[str, dict[str, Cell | None]]:
        return {f: {t: self._cells.get((f, t)) for t in self.tos if t != f} for f in self.froms}

    @classmethod
    def from_allowed(cls, allowed: Mapping[str, Mapping[str, bool]]) -> TruthTable:
        """From ``PolicyEngine.matrix()`` (or any ``{src: {dst: bool}}``) to a table of outcomes."""
        pods = list(dict.fromkeys([*allowed, *(d for row in allowed.values() for d in row)]))
        table = cls(pods)
        for src, row in allowed.items():
            for dst, value in row.items():
                if src != dst:
                    table.set(src, dst, outcome_of(value))
        return table

    def pretty(self, title: str = "", legend: str = LEGEND) -> str:
        """A grid with sources down the side and destinations across, one glyph per cell."""
        side = max([len(f) for f in self.froms] + [len(CORNER)])
        width = max([len(t) for t in self.tos] + [1])
        lines = [title] if title else []
        lines.append((f"{CORNER:<{side}}  " + " ".join(f"{t:^{width}}" for t in self.tos)).rstrip())
        for frm in self.froms:
            row = (SAME_POD if frm == to else glyph(self._cells.get((frm, to))) for to in self.tos)
            lines.append((f"{frm:<{side}}  " + " ".join(f"{g:^{width}}" for g in row)).rstrip())
        if legend:
            lines.append(legend)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pretty()


@dataclass(frozen=True)
class Peer:
    """Names pods like upstream's ``Peer``: an empty field means any namespace / any pod name."""

    namespace: str = ""
    pod: str = ""

    def matches(self, key: str) -> bool:
        namespace, _, pod = key.partition("/")
        return (not self.namespace or self.namespace == namespace) and (not self.pod or self.pod == pod)

    @classmethod
    def of(cls, spec: Peer | str) -> Peer:
        """``"x/a"`` is one pod, ``"x/"`` or ``"x"`` every pod of namespace x, ``"/a"`` pod a anywhere."""
        if isinstance(spec, Peer):
            return spec
        namespace, _, pod = spec.partition("/")
        return cls(namespace, pod)


class Reachability:
    """Expected and observed tables over one set of pods (``"ns/pod"`` strings)."""

    def __init__(self, pods: Iterable[str], default: bool = True) -> None:
        self.pods = tuple(pods)
        self.expected = TruthTable(self.pods, default=outcome_of(default))
        self.observed = TruthTable(self.pods)

    def expect(self, from_peer: Peer | str, to_peer: Peer | str, allowed: bool) -> Reachability:
        """Set every expected cell from a pod matching ``from_peer`` to one matching ``to_peer``."""
        frm, to = Peer.of(from_peer), Peer.of(to_peer)
        for src, dst in self.expected.pairs():
            if frm.matches(src) and to.matches(dst):
                self.expected.set(src, dst, outcome_of(allowed))
        return self

    def observe(self, frm: str, to: str, outcome: Outcome | bool) -> Reachability:
        self.observed.set(frm, to, outcome_of(outcome))
        return self

    def observe_all(self, allowed: Mapping[str, Mapping[str, bool | Outcome]]) -> Reachability:
        for src, row in allowed.items():
            for dst, value in row.items():
                if src != dst:
                    self.observe(src, dst, value)
        return self

    def comparison(self) -> TruthTable:
        return self.expected.compare(self.observed)

    def wrong_cells(self) -> tuple[tuple[str, str], ...]:
        """Cells observed differently from expected (unobserved cells are not 'wrong', they are incomplete)."""
        return tuple(key for key, agrees in self.comparison().items() if agrees is False)

    @property
    def is_complete(self) -> bool:
        return self.observed.is_complete

    @property
    def matches(self) -> bool:
        return self.is_complete and not self.wrong_cells()

    def summary(self) -> str:
        comparison = self.comparison()
        agree, differ = comparison.count(True), comparison.count(False)
        total = sum(1 for _ in comparison.pairs())
        text = f"{agree} of {total} cells as expected, {differ} wrong"
        return text if self.is_complete else text + f", {total - agree - differ} not observed"

    def pretty(self) -> str:
        return "\n\n".join([
            self.expected.pretty("Expected"),
            self.observed.pretty("Observed"),
            self.comparison().pretty(f"Comparison ({self.summary()})", COMPARISON_LEGEND),
        ])

    def to_matrix(self, why: Callable[[str, str], str] | None = None,
                  command: Callable[[str, str], str] | None = None) -> Matrix:
        """The ``graders.model.Matrix`` evidence; ``why``/``command`` fill wrong cells only (that is where a
        reader needs them, and explaining 400 right cells would bury the one wrong one)."""
        cells = []
        for (src, dst), expected in self.expected.items():
            observed = self.observed.get(src, dst) or Outcome.NOT_RUN
            expected = expected or Outcome.NOT_RUN
            wrong = observed is not Outcome.NOT_RUN and observed != expected
            cells.append(MatrixCell(
                src, dst, expected, observed,
                why=why(src, dst) if why and wrong else "",
                command=command(src, dst) if command and wrong else "",
            ))
        return Matrix(self.pods, self.pods, tuple(cells))
