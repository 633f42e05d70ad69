"""Rendering of results: coloured text (rich), self-contained HTML, JSON. No grading logic lives here.

Matrices follow the e2e netpol tests: expected, observed and comparison side by side, then every wrong cell in
words with why and the command that reproduces it. Evidence of a passed exercise is shown only when verbose.
"""
from __future__ import annotations

import html
import io
import json
from typing import Any

from rich.columns import Columns
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from graders.model import Evidence, ExerciseResult, LabResult, Matrix, MatrixCell, Outcome, StepResult, Table
from graders.netpol.truthtable import COMPARISON_ENTRIES, CORNER, LEGEND, SAME_POD, legend

JSON_SCHEMA = "k8slab.result/v1"
_GLYPH_STYLE = {Outcome.ALLOWED: "green", Outcome.BLOCKED: "red", Outcome.FAILED: "magenta", Outcome.NOT_RUN: "yellow"}


def _points(value: float) -> str:
    return f"{value:g}"


# ------------------------------------------------------------------------------------------------ text

def to_text(result: LabResult, *, verbose: bool = False, color: bool = True, width: int = 110) -> str:
    """The result as terminal text (ANSI colours when ``color``)."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False,
                      force_jupyter=False)  # in a kernel rich would display the text instead of returning it
    print_result(result, console, verbose=verbose)
    return buffer.getvalue()


def verdict_word(result: LabResult) -> str:
    """PASS, FAIL, or NOT GRADED: nothing failed, but this cluster could not grade some exercise (ungraded)."""
    if result.passed:
        return "PASS"
    return "NOT GRADED" if result.ungraded and not result.failed else "FAIL"


_VERDICT_STYLE = {"PASS": "green", "FAIL": "red", "NOT GRADED": "yellow"}


def print_result(result: LabResult, console: Console, *, verbose: bool = False) -> None:
    for exercise in result.exercises:
        console.print(exercise_renderable(exercise, verbose=verbose))
    word = verdict_word(result)
    mark = f"[{_VERDICT_STYLE[word]}]{word}[/{_VERDICT_STYLE[word]}]"
    console.print(f"{mark} {escape(result.lab)}: {_points(result.score)}/{_points(result.points)} points")


def exercise_text(exercise: ExerciseResult, *, verbose: bool = False, color: bool = False, width: int = 110,
                  wrap: bool = True) -> str:
    """The exercise report as text. ``wrap=False`` keeps each sentence on one line (tables still fit ``width``):
    for feedback a notebook or a browser wraps itself, where a hard break would split a mistake's message."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False,
                      force_jupyter=False)  # in a kernel rich would display the text instead of returning it
    console.print(exercise_renderable(exercise, verbose=verbose), soft_wrap=not wrap)
    return buffer.getvalue()


def exercise_renderable(exercise: ExerciseResult, *, verbose: bool = False) -> Group:
    mark = "[green]✓[/green]" if exercise.passed else "[yellow]–[/yellow]" if exercise.ungraded else "[red]✗[/red]"
    parts: list[Any] = [Text.from_markup(
        f"{mark} [bold]{escape(exercise.exercise)}[/bold] — {escape(exercise.title)}  "
        f"[dim]{_points(exercise.score)}/{_points(exercise.points)}[/dim]")]
    if exercise.ungraded:  # the cluster lacks what the exercise needs: not a failure of the learner's files
        parts.append(Text("  ", style="yellow") + Text(exercise.message))
        if exercise.hint:
            parts.append(Text("  hint: ", style="yellow") + Text(exercise.hint))
    elif not exercise.passed:
        parts.append(Text(f"  failed at {exercise.failed_step}: ", style="red") + Text(exercise.message))
        if exercise.hint:
            parts.append(Text("  hint: ", style="yellow") + Text(exercise.hint))
    elif exercise.message and verbose:
        parts.append(Text(f"  {exercise.message}", style="dim"))
    if verbose:
        parts.extend(Text(f"  {_step_line(step)}", style="dim") for step in exercise.steps)
    if not exercise.passed or verbose:
        parts.extend(evidence_renderable(e) for e in exercise.evidence)
    return Group(*parts)


def _step_line(step: StepResult) -> str:
    return f"{'✓' if step.passed else '✗'} {step.step}: {step.message.splitlines()[0] if step.message else ''}"


def evidence_renderable(evidence: Evidence) -> Any:
    title = Text(f"  {evidence.title}", style="bold")
    if evidence.kind == "matrix" and isinstance(evidence.data, Matrix):
        return Group(title, _matrix_renderable(evidence.data))
    if evidence.kind == "table" and isinstance(evidence.data, Table):
        table = RichTable(*evidence.data.columns)
        for row in evidence.data.rows:
            table.add_row(*(escape(cell) for cell in row))
        return Group(title, table)
    if evidence.kind == "command":
        return Group(title, Text(f"    $ {evidence.data}", style="cyan"))
    return Group(title, Text("    " + str(evidence.data).replace("\n", "\n    ")))


def _matrix_renderable(matrix: Matrix) -> Group:
    grids = Columns([_grid(matrix, "expected", lambda c: Text(c.expected.glyph, style=_GLYPH_STYLE[c.expected])),
                     _grid(matrix, "observed", lambda c: Text(c.observed.glyph, style=_GLYPH_STYLE[c.observed])),
                     _grid(matrix, "comparison", _comparison_glyph)], padding=(0, 3))
    agrees_differs = legend(COMPARISON_ENTRIES[:2])
    lines: list[Any] = [grids, Text(f"  {LEGEND}   (comparison: {agrees_differs})", style="dim")]
    for cell in matrix.wrong_cells:
        lines.append(Text(f"  {wrong_cell_sentence(cell)}", style="red"))
        if cell.why:
            lines.append(Text(f"      why: {cell.why}"))
        if cell.command:
            lines.append(Text(f"      reproduce: {cell.command}", style="cyan"))
    return Group(*lines)


def _comparison_glyph(cell: MatrixCell) -> Text:
    if cell.observed is Outcome.NOT_RUN:
        return Text("?", style="yellow")
    return Text(".", style="green") if cell.correct else Text("X", style="bold red")


def _grid(matrix: Matrix, title: str, glyph) -> RichTable:
    grid = RichTable(title=title, show_header=True, box=None, pad_edge=False, padding=(0, 1))
    grid.add_column(CORNER, style="dim")
    for target in matrix.targets:
        grid.add_column(escape(target), justify="center")
    for source in matrix.sources:
        row: list[Any] = [escape(source)]
        for target in matrix.targets:
            cell = matrix.cell(source, target)
            row.append(glyph(cell) if cell else Text(SAME_POD if source == target else "?", style="dim"))
        grid.add_row(*row)
    return grid


def wrong_cell_sentence(cell: MatrixCell) -> str:
    """"x/a -> y/b: expected allowed, was instead BLOCKED" — a mismatch in words."""
    return f"{cell.source} -> {cell.target}: expected {cell.expected.word}, was instead {cell.observed.word.upper()}"


# ------------------------------------------------------------------------------------------------ html

# The card brings its own background: dark themes (VS Code's default, JupyterLab Dark) keep their dark output
# background, on which the card's dark text would vanish.
_CSS = """
.k8slab{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:14px;line-height:1.4;color:#1f2328;
background:#ffffff;color-scheme:light;padding:2px 8px;border-radius:6px}
.k8slab .ex{border:1px solid #d0d7de;border-left:6px solid #1a7f37;border-radius:6px;padding:8px 12px;margin:8px 0}
.k8slab .ex.fail{border-left-color:#cf222e}.k8slab .ex.skip{border-left-color:#9a6700}
.k8slab .head{font-weight:600}.k8slab .score{float:right;color:#57606a}
.k8slab .msg{white-space:pre-wrap;margin:4px 0}.k8slab .hint{background:#fff8c5;padding:4px 8px;border-radius:4px}
.k8slab table{border-collapse:collapse;margin:4px 12px 4px 0;display:inline-table;vertical-align:top}
.k8slab td,.k8slab th{border:1px solid #d0d7de;padding:2px 6px;text-align:center;font-family:ui-monospace,monospace}
.k8slab caption{font-weight:600;text-align:left}
.k8slab .allowed{background:#dafbe1}.k8slab .blocked{background:#ffebe9}.k8slab .failed{background:#fbefff}
.k8slab .not_run{background:#fff8c5}.k8slab .wrong{outline:3px solid #cf222e;font-weight:700}
.k8slab pre{background:#f6f8fa;padding:6px 8px;border-radius:4px;white-space:pre-wrap;margin:2px 0}
.k8slab .total{font-weight:600;margin-top:6px}.k8slab .ok{color:#1a7f37}.k8slab .bad{color:#cf222e}
.k8slab .skip{color:#9a6700}
.k8slab details{margin:4px 0}
"""


def to_html(result: LabResult, *, verbose: bool = False) -> str:
    """A self-contained HTML fragment (inline CSS, no scripts): notebooks and nbgrader feedback."""
    body = "".join(exercise_html(e, verbose=verbose) for e in result.exercises)
    word = verdict_word(result)
    verdict = f'<span class="{_HTML_VERDICT[word]}">{word}</span>'
    total = (f'<div class="total">{verdict} {_e(result.lab)}: {_points(result.score)}/{_points(result.points)} '
             f'points</div>')
    return f'<div class="k8slab"><style>{_CSS}</style>{body}{total}</div>'


_HTML_VERDICT = {"PASS": "ok", "FAIL": "bad", "NOT GRADED": "skip"}


def exercise_html(exercise: ExerciseResult, *, verbose: bool = False) -> str:
    mark = "✓" if exercise.passed else "–" if exercise.ungraded else "✗"
    kind = "" if exercise.passed else " skip" if exercise.ungraded else " fail"
    parts = [f'<div class="ex{kind}"><div class="head">{mark} {_e(exercise.exercise)} — '
             f'{_e(exercise.title)}<span class="score">{_points(exercise.score)}/{_points(exercise.points)}</span></div>']
    if exercise.ungraded:
        parts.append(f'<div class="msg">{_e(exercise.message)}</div>')
        if exercise.hint:
            parts.append(f'<div class="hint"><b>Hint:</b> {_e(exercise.hint)}</div>')
    elif not exercise.passed:
        parts.append(f'<div class="msg"><b>Failed at {_e(exercise.failed_step or "")}:</b> {_e(exercise.message)}</div>')
        if exercise.hint:
            parts.append(f'<div class="hint"><b>Hint:</b> {_e(exercise.hint)}</div>')
    elif exercise.message:
        parts.append(f'<div class="msg">{_e(exercise.message)}</div>')
    evidence = "".join(evidence_html(e) for e in exercise.evidence)
    if evidence and not exercise.passed:
        parts.append(evidence)
    elif evidence and verbose:
        parts.append(f"<details><summary>evidence</summary>{evidence}</details>")
    parts.append("</div>")
    return "".join(parts)


def evidence_html(evidence: Evidence) -> str:
    title = f"<div><b>{_e(evidence.title)}</b></div>"
    if evidence.kind == "matrix" and isinstance(evidence.data, Matrix):
        return title + _matrix_html(evidence.data)
    if evidence.kind == "table" and isinstance(evidence.data, Table):
        head = "".join(f"<th>{_e(c)}</th>" for c in evidence.data.columns)
        rows = "".join("<tr>" + "".join(f'<td style="text-align:left">{_e(c)}</td>' for c in row) + "</tr>"
                       for row in evidence.data.rows)
        return f"{title}<table><tr>{head}</tr>{rows}</table>"
    if evidence.kind == "command":
        return f"{title}<pre>$ {_e(str(evidence.data))}</pre>"
    return f"{title}<pre>{_e(str(evidence.data))}</pre>"


def _matrix_html(matrix: Matrix) -> str:
    def grid(caption: str, pick) -> str:
        head = f"<th>{_e(CORNER)}</th>" + "".join(f"<th>{_e(t)}</th>" for t in matrix.targets)
        rows = []
        for source in matrix.sources:
            cells = [f"<th>{_e(source)}</th>"]
            for target in matrix.targets:
                cell = matrix.cell(source, target)
                if cell is None:
                    cells.append(f"<td>{SAME_POD if source == target else '?'}</td>")
                    continue
                outcome = pick(cell)
                wrong = " wrong" if cell in matrix.wrong_cells and caption == "observed" else ""
                tip = f' title="{_e(cell.why)}"' if cell.why else ""
                cells.append(f'<td class="{outcome.name.lower()}{wrong}"{tip}>{_e(outcome.glyph)}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{''.join(rows)}</table>"

    parts = [grid("expected", lambda c: c.expected), grid("observed", lambda c: c.observed),
             f'<div style="color:#57606a">{_e(legend(separator=" · "))}</div>']
    wrong = matrix.wrong_cells
    if wrong:
        items = []
        for cell in wrong:
            why = f"<div>why: {_e(cell.why)}</div>" if cell.why else ""
            command = f"<pre>$ {_e(cell.command)}</pre>" if cell.command else ""
            items.append(f'<li><span class="bad">{_e(wrong_cell_sentence(cell))}</span>{why}{command}</li>')
        parts.append(f"<ul>{''.join(items)}</ul>")
    return "".join(parts)


def error_html(error: BaseException) -> str:
    """An engine error (no cluster, unknown lab, bad spec) for a notebook cell."""
    hint = getattr(error, "hint", "")
    message = getattr(error, "message", str(error))
    hint_html = f'<div class="hint"><b>Fix:</b> {_e(hint)}</div>' if hint else ""
    return (f'<div class="k8slab"><style>{_CSS}</style><div class="ex fail"><div class="msg">{_e(message)}</div>'
            f"{hint_html}</div></div>")


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------------------------ json

def to_dict(result: LabResult) -> dict[str, Any]:
    """A stable, documented shape (``schema``: k8slab.result/v1); additions only within v1."""
    return {
        "schema": JSON_SCHEMA,
        "lab": result.lab,
        "title": result.title,
        "passed": result.passed,
        "score": result.score,
        "points": result.points,
        "exercises": [_exercise_dict(e) for e in result.exercises],
    }


def to_json(result: LabResult, *, indent: int | None = 2) -> str:
    return json.dumps(to_dict(result), indent=indent, ensure_ascii=False)


def error_json(error: BaseException) -> str:
    """Grading could not run (no cluster, unknown lab): ``{"schema", "error": {"type", "message", "hint"}}``."""
    return json.dumps({"schema": JSON_SCHEMA, "error": {"type": type(error).__name__,
                                                        "message": getattr(error, "message", str(error)),
                                                        "hint": getattr(error, "hint", "")}},
                      indent=2, ensure_ascii=False)


def _exercise_dict(exercise: ExerciseResult) -> dict[str, Any]:
    return {
        "id": exercise.exercise,
        "title": exercise.title,
        "passed": exercise.passed,
        "graded": exercise.graded,  # false: this cluster could not grade it (the message says what it needs)
        "score": exercise.score,
        "points": exercise.points,
        "failed_step": exercise.failed_step,
        "message": exercise.message,
        "hint": exercise.hint,
        "steps": [{"step": s.step, "passed": s.passed, "message": s.message, "hint": s.hint,
                   "credit": s.effective_credit, "evidence": [_evidence_dict(e) for e in s.evidence]}
                  for s in exercise.steps],
        "evidence": [_evidence_dict(e) for e in exercise.evidence],
    }


def _evidence_dict(evidence: Evidence) -> dict[str, Any]:
    data: Any = evidence.data
    if isinstance(data, Matrix):
        data = {"sources": list(data.sources), "targets": list(data.targets),
                "cells": [{"source": c.source, "target": c.target, "expected": c.expected.name.lower(),
                           "observed": c.observed.name.lower(), "correct": c.correct, "why": c.why,
                           "command": c.command} for c in data.cells]}
    elif isinstance(data, Table):
        data = {"columns": list(data.columns), "rows": [list(r) for r in data.rows]}
    return {"kind": evidence.kind, "title": evidence.title, "data": data}
