"""From x to tables of reachability, after the Kubernetes e2e netpol ``truthtable.go`` and ``reachability.go``,
and the glyphs and legends every matrix of the course is drawn with.

Rows are pods (``"x/a"``); columns are pods too, or a pod's port over one protocol (``Column``) when a table is
about more than one port. A ``TruthTable`` of ``Outcome`` holds what was expected or observed; ``compare()``
gives a third table of bools (True: the two agree). ``Reachability`` pairs an expected and an observed table
and is written as a default plus exceptions, never n x n literals::

    r = Reachability(pods, default=True)
    r.expect(PodPattern(), PodPattern(namespace="x"), False)                # nobody reaches namespace x ...
    r.expect(PodPattern(namespace="x"), PodPattern(namespace="x"), True)    # ... except x itself

Same-pod traffic (``x/a -> x/a``) is not part of the tables: it is always allowed and never probed.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from graders.model import Matrix, MatrixCell, Outcome

Cell = Union[Outcome, bool]  # Outcome in expected/observed tables; bool (agree?) in a comparison
SAME_POD = "-"
CORNER = "from \\ to"
LEGEND_ENTRIES = (*((o.glyph, o.word) for o in Outcome), (SAME_POD, "same pod"))
COMPARISON_ENTRIES = ((".", "agrees"), ("X", "differs"), ("?", "not comparable"), (SAME_POD, "same pod"))


def legend(entries: Iterable[tuple[str, str]] = LEGEND_ENTRIES, separator: str = "  ") -> str:
    """``. allowed  X blocked  ! probe failed  ? not run  - same pod``."""
    return separator.join(f"{g} {word}" for g, word in entries)


LEGEND = legend()
COMPARISON_LEGEND = legend(COMPARISON_ENTRIES)


@dataclass(frozen=True)
class Column:
    """A destination of a table about several ports: one port of one pod, over one protocol."""

    pod: str
    port: int
    protocol: str = "TCP"
    show_protocol: bool = False  # name the protocol even when it is TCP (next to a UDP column of the same port)

    @property
    def label(self) -> str:
        """``x/a:8080``, ``kube-system/kube-dns:53/UDP``."""
        shown = self.protocol != "TCP" or self.show_protocol
        return f"{self.pod}:{self.port}" + (f"/{self.protocol}" if shown else "")

    @property
    def short(self) -> str:
        """``a:8080``: a matrix header, where pod names are unique."""
        return self.label.split("/", 1)[1]

    def __str__(self) -> str:
        return self.label


Destination = Union[str, Column]


def pod_of(destination: Destination) -> str:
    return destination.pod if isinstance(destination, Column) else destination


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

    def __init__(self, froms: Iterable[str], tos: Iterable[Destination] | None = None,
                 default: Cell | None = None) -> None:
        self.froms = tuple(froms)
        self.tos = tuple(self.froms if tos is None else tos)
        self._cells: dict[tuple[str, str], Cell] = {}
        if default is not None:
            for key in self.pairs():
                self._cells[key] = default

    def pairs(self) -> Iterable[tuple[str, Destination]]:
        return ((f, t) for f in self.froms for t in self.tos if f != pod_of(t))

    def _check(self, frm: str, to: Destination) -> None:
        if frm not in self.froms or to not in self.tos:
            raise KeyError(f"no cell {frm} -> {to} in this table")
        if frm == pod_of(to):
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

    def to_dict(self) -> dict[str, dict[Destination, Cell | None]]:
        return {f: {t: self._cells.get((f, t)) for t in self.tos if pod_of(t) != f} for f in self.froms}

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
        width = max([len(str(t)) for t in self.tos] + [1])
        lines = [title] if title else []
        lines.append((f"{CORNER:<{side}}  " + " ".join(f"{str(t):^{width}}" for t in self.tos)).rstrip())
        for frm in self.froms:
            row = (self.glyph_at(frm, to) for to in self.tos)
            lines.append((f"{frm:<{side}}  " + " ".join(f"{g:^{width}}" for g in row)).rstrip())
        if legend:
            lines.append(legend)
        return "\n".join(lines)

    def glyph_at(self, frm: str, to: Destination) -> str:
        return SAME_POD if frm == pod_of(to) else glyph(self._cells.get((frm, to)))

    def __str__(self) -> str:
        return self.pretty()


def side_by_side(tables: Mapping[str, TruthTable]) -> str:
    """Tables over the same rows and columns next to each other (``expected | static | live``), columns numbered
    and listed underneath the titles: several grids of long vertical labels would be unreadable."""
    first = next(iter(tables.values()))
    columns, count = first.tos, len(first.tos)
    side = max(len(f) for f in first.froms)
    width = count * 2 + 1
    lines = [" " * side + "  " + " | ".join(title.center(width) for title in tables)]
    lines.extend(f"{'':<{side}}  col {i + 1}: {column}" for i, column in enumerate(columns))
    numbers = " ".join(str(i + 1)[-1] for i in range(count)).center(width)
    lines.append(" " * side + "  " + " | ".join(numbers for _ in tables))
    for frm in first.froms:
        rows = (" ".join(table.glyph_at(frm, to) for to in columns).center(width) for table in tables.values())
        lines.append(f"{frm:<{side}}  " + " | ".join(rows))
    lines.append(LEGEND)
    return "\n".join(lines)


@dataclass(frozen=True)
class PodPattern:
    """Names pods like upstream's ``PodPattern``: an empty field means any namespace / any pod name."""

    namespace: str = ""
    pod: str = ""

    def matches(self, key: str) -> bool:
        """Whether the pod ``"ns/name"`` is one of the pods this pattern names."""
        namespace, _, pod = key.partition("/")
        return (not self.namespace or self.namespace == namespace) and (not self.pod or self.pod == pod)

    @classmethod
    def of(cls, spec: PodPattern | str) -> PodPattern:
        """``"x/a"`` is one pod, ``"x/"`` or ``"x"`` every pod of namespace x, ``"/a"`` pod a anywhere."""
        if isinstance(spec, PodPattern):
            return spec
        namespace, _, pod = spec.partition("/")
        return cls(namespace, pod)


@dataclass(frozen=True)
class Expect:
    """One exception to a table's default: cells from pods matching ``frm`` to pods matching ``to`` (on
    ``port``, when given and the columns are ``Column``s) are ``allowed`` or not."""

    frm: PodPattern | str
    to: PodPattern | str
    allowed: bool
    port: int | None = None


class Reachability:
    """Expected and observed tables over one set of pods (``"ns/pod"`` strings) and destinations (the same
    pods, or ``Column``s)."""

    def __init__(self, pods: Iterable[str], default: bool = True,
                 columns: Iterable[Destination] | None = None) -> None:
        self.pods = tuple(pods)
        self.columns = self.pods if columns is None else tuple(columns)
        self.expected = TruthTable(self.pods, self.columns, default=outcome_of(default))
        self.observed = TruthTable(self.pods, self.columns)

    def expect(self, from_peer: PodPattern | str, to_peer: PodPattern | str, allowed: bool,
               port: int | None = None) -> Reachability:
        """Set every expected cell from a pod matching ``from_peer`` to one matching ``to_peer`` (on ``port``)."""
        frm, to = PodPattern.of(from_peer), PodPattern.of(to_peer)
        for src, dst in self.expected.pairs():
            on_port = port is None or getattr(dst, "port", None) == port
            if frm.matches(src) and to.matches(pod_of(dst)) and on_port:
                self.expected.set(src, dst, outcome_of(allowed))
        return self

    def expect_all(self, expectations: Iterable[Expect]) -> Reachability:
        """Apply exceptions in order: a later one overrides an earlier one where both apply."""
        for e in expectations:
            self.expect(e.frm, e.to, e.allowed, e.port)
        return self

    def with_observed(self) -> Reachability:
        """The same expectations with nothing observed yet (a second observation of the same target)."""
        other = copy.copy(self)
        other.observed = TruthTable(self.pods, self.columns)
        return other

    def observe(self, frm: str, to: Destination, outcome: Outcome | bool) -> Reachability:
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

    def wrong_cells(self) -> tuple[tuple[str, Destination], ...]:
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

    def to_matrix(self, why: Callable[[str, Destination], str] | None = None,
                  command: Callable[[str, Destination], str] | None = None,
                  name: Callable[[Destination], str] = str) -> Matrix:
        """The ``graders.model.Matrix`` evidence, targets named by ``name``. ``why``/``command`` are asked about
        every cell and answer "" where there is nothing to say: a reader needs them at wrong cells, and
        explaining 400 right cells would bury the one wrong one."""
        cells = []
        for (src, dst), expected in self.expected.items():
            cells.append(MatrixCell(
                src, name(dst), expected or Outcome.NOT_RUN, self.observed.get(src, dst) or Outcome.NOT_RUN,
                why=why(src, dst) if why else "", command=command(src, dst) if command else "",
            ))
        return Matrix(self.pods, tuple(name(c) for c in self.columns), tuple(cells))
