"""How the class did: `k8slab course report DIR [--lab LAB]` writes one self-contained HTML page and a JSON file.

Two sources: the nbgrader gradebook (``DIR/gradebook.db``: every student's score per graded cell, including an
instructor's manual override and the written answers) and the records the safe autograder keeps of each verified
run (``DIR/k8slab/verified/<lab>/<student>.json``, written by graders.course.harness.record_verified: per
exercise score, passed, and the feedback text, whose "failed at <step>:" line names the step that failed).

Per exercise: the pass rate, a score histogram (matplotlib, SVG inline), the most frequent failure causes — a
known mistake of the lab (labs/<lab>/lab.yaml, matched by its message fragment) where one matches, else the step
that failed — and the students who failed at parse or admit, which is more often a setup problem (files in the
wrong folder, an old starter, a wrong apiVersion) than a misunderstanding of the lab.
"""
from __future__ import annotations

import html
import io
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from graders import spec
from graders.errors import SpecError, UsageError

SCHEMA = "k8slab.class-report/v1"
SETUP_STEPS = ("parse", "admit")
_FAILED_AT = re.compile(r"failed at (?P<step>[a-z]+)\s*:", re.IGNORECASE)
_BINS = 10


# ------------------------------------------------------------------------------------------------ the data

@dataclass(frozen=True)
class Attempt:
    """One student's result of one autograded exercise."""

    student: str
    exercise: str
    score: float
    points: float
    passed: bool
    failed_step: str = ""   # "" when passed; a step of graders.model.STEPS; "grader" when it could not run
    message: str = ""       # the feedback text (first lines are enough to classify it)
    verified: bool = True   # False: only the gradebook knows this result (autograded without the harness)


@dataclass(frozen=True)
class Cause:
    kind: str   # "mistake" (a known mistake of lab.yaml), "step" (the step that failed), "grader" (no result)
    id: str     # the mistake's id, or the step's name
    label: str  # what an instructor reads
    students: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.students)


@dataclass(frozen=True)
class ExerciseSummary:
    id: str
    title: str
    points: float
    scores: tuple[float, ...]
    passed: int
    causes: tuple[Cause, ...]
    unverified: int = 0

    @property
    def graded(self) -> int:
        return len(self.scores)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0

    @property
    def mean(self) -> float:
        return round(statistics.fmean(self.scores), 2) if self.scores else 0.0


@dataclass(frozen=True)
class SetupFailure:
    student: str
    exercise: str
    step: str
    message: str      # its first line
    mistake: str = ""  # the known mistake it matched, if any (then it is the lab's point, not setup)


@dataclass(frozen=True)
class AnswerSummary:
    id: str
    points: float
    marked: tuple[float, ...]
    unmarked: int


@dataclass(frozen=True)
class LabReport:
    lab: str
    title: str
    students: tuple[str, ...]
    points: float
    totals: tuple[float, ...]  # per student, autograded exercises and written answers (as the grades CSV)
    exercises: tuple[ExerciseSummary, ...]
    setup_failures: tuple[SetupFailure, ...]
    grader_failures: tuple[SetupFailure, ...]
    answers: tuple[AnswerSummary, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------------ reading

def failed_step(record: dict) -> str:
    """The step a verified record failed at: the feedback says "failed at <step>: …" (graders.render), the HTML
    "Failed at <step>:"; a record with an error could not be graded at all ("grader")."""
    if record.get("passed"):
        return ""
    if record.get("error"):
        return "grader"
    for text in (record.get("message") or "", record.get("html") or ""):
        match = _FAILED_AT.search(text)
        if match:
            return match["step"].lower()
    return "unknown"


def _failure_text(message: str) -> str:
    """The sentence after "failed at <step>:" (else the first line): what the student read first."""
    match = _FAILED_AT.search(message)
    text = message[match.end():] if match else message
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def verified_records(course_dir: Path, lab: str) -> dict[str, dict[str, dict]]:
    """{student: {exercise: record}} from DIR/k8slab/verified/<lab>/*.json (keys "<lab>/<exercise>")."""
    out: dict[str, dict[str, dict]] = {}
    folder = course_dir / "k8slab" / "verified" / lab
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written file must not hide the rest of the class
        out[path.stem] = {key.split("/", 1)[1]: value for key, value in records.items()
                          if isinstance(value, dict) and key.startswith(f"{lab}/")}
    return out


@dataclass(frozen=True)
class CellGrade:
    score: float | None  # None: needs a manual grade
    max_score: float
    written: bool        # a markdown cell: a written answer


def gradebook_grades(course_dir: Path, lab: str) -> dict[str, dict[str, CellGrade]] | None:
    """{student: {grade cell name: CellGrade}} of `lab` from the nbgrader gradebook; None without a gradebook."""
    if not (course_dir / "gradebook.db").is_file():
        return None
    from nbgrader.api import MissingEntry

    from graders.course.gradebook import open_gradebook

    out: dict[str, dict[str, CellGrade]] = {}
    with open_gradebook(course_dir) as gb:
        try:
            assignment = gb.find_assignment(lab)
        except MissingEntry:
            return None
        for notebook in assignment.notebooks:
            written = {c.name for c in notebook.grade_cells if c.cell_type == "markdown"}
            for submission in notebook.submissions:
                cells = out.setdefault(submission.student.id, {})
                for grade in submission.grades:
                    pending = grade.needs_manual_grade and grade.manual_score is None and grade.name in written
                    cells[grade.name] = CellGrade(None if pending else float(grade.score or 0.0),
                                                  float(grade.max_score or 0.0), grade.name in written)
    return out


def gradebook_labs(course_dir: Path) -> list[str]:
    if not (course_dir / "gradebook.db").is_file():
        return []
    from graders.course.gradebook import open_gradebook

    with open_gradebook(course_dir) as gb:
        return sorted(a.name for a in gb.assignments)


# ------------------------------------------------------------------------------------------------ judging

def lab_report(lab: str, records: dict[str, dict[str, dict]],
               grades: dict[str, dict[str, CellGrade]] | None = None, lab_spec: spec.LabSpec | None = None,
               top: int = 5) -> LabReport:
    """The class's picture of one lab from the verified records and (optionally) the gradebook."""
    grades = grades or {}
    notes = []
    if lab_spec is None:
        notes.append(f"labs/{lab}/lab.yaml not found: failure causes are grouped by step only")
    exercise_ids = [e.id for e in lab_spec.exercises] if lab_spec else sorted(
        {ex for recs in records.values() for ex in recs}
        | {name[:-len("-test")] for cells in grades.values() for name, g in cells.items()
           if not g.written and name.endswith("-test")})
    students = tuple(sorted(set(records) | set(grades)))
    unverified_students = sorted(set(grades) - set(records))
    if unverified_students:
        named = ", ".join(unverified_students[:8]) + ("…" if len(unverified_students) > 8 else "")
        notes.append(f"no verified record for {len(unverified_students)} student(s) ({named}): autograded without "
                     "`k8slab course autograde`, so only their scores are known, not why they failed")

    attempts: dict[str, list[Attempt]] = defaultdict(list)
    for student in students:
        for exercise in exercise_ids:
            attempt = _attempt(student, exercise, records.get(student, {}).get(exercise),
                               grades.get(student, {}).get(f"{exercise}-test"), lab_spec)
            if attempt is not None:
                attempts[exercise].append(attempt)

    summaries = []
    setup: list[SetupFailure] = []
    broken: list[SetupFailure] = []
    for exercise in exercise_ids:
        ex_spec = _exercise_spec(lab_spec, exercise)
        tries = attempts[exercise]
        points = ex_spec.points if ex_spec else max((a.points for a in tries), default=0.0)
        summaries.append(ExerciseSummary(
            id=exercise, title=ex_spec.title if ex_spec else exercise, points=points,
            scores=tuple(a.score for a in tries), passed=sum(a.passed for a in tries),
            causes=tuple(_causes(tries, ex_spec)[:top]), unverified=sum(not a.verified for a in tries)))
        for a in tries:
            if a.failed_step in SETUP_STEPS:
                mistake = _known_mistake(a, ex_spec)
                setup.append(SetupFailure(a.student, exercise, a.failed_step, _failure_text(a.message),
                                          mistake.id if mistake else ""))
            elif a.failed_step == "grader":
                broken.append(SetupFailure(a.student, exercise, "grader", _failure_text(a.message)))
    setup.sort(key=lambda f: (f.student, exercise_ids.index(f.exercise)))

    answers = _answers(grades)
    totals = [round(sum(a.score for tries in attempts.values() for a in tries if a.student == student)
                    + sum(g.score or 0.0 for g in grades.get(student, {}).values() if g.written), 2)
              for student in students]  # as the grades CSV adds them up
    points = sum(s.points for s in summaries) + sum(a.points for a in answers)
    return LabReport(lab=lab, title=lab_spec.title if lab_spec else lab, students=students, points=points,
                     totals=tuple(totals), exercises=tuple(summaries), setup_failures=tuple(setup),
                     grader_failures=tuple(broken), answers=answers, notes=tuple(notes))


def _answers(grades: dict[str, dict[str, CellGrade]]) -> tuple[AnswerSummary, ...]:
    """Written answers (markdown grade cells): how many are scored, how many wait for the instructor."""
    out = []
    for answer in sorted({name for cells in grades.values() for name, g in cells.items() if g.written}):
        cells = [grades[s][answer] for s in grades if answer in grades[s]]
        out.append(AnswerSummary(answer, max(c.max_score for c in cells),
                                 tuple(c.score for c in cells if c.score is not None),
                                 sum(c.score is None for c in cells)))
    return tuple(out)


def _exercise_spec(lab_spec, exercise: str):
    if lab_spec is None:
        return None
    try:
        return lab_spec.exercise(exercise)
    except UsageError:
        return None


def _attempt(student: str, exercise: str, record: dict | None, grade: CellGrade | None, lab_spec) -> Attempt | None:
    """The gradebook's score wins (an instructor may have overridden it); the record says why it was lost."""
    ex_spec = _exercise_spec(lab_spec, exercise)
    if record is None and grade is None:
        return None
    points = float(ex_spec.points if ex_spec else (grade.max_score if grade else record.get("points") or 0.0))
    if record is None:
        score = grade.score or 0.0
        passed = score >= points > 0
        return Attempt(student, exercise, score, points, passed, "" if passed else "unknown", "", verified=False)
    score = float(record.get("score") or 0.0)
    if grade is not None and grade.score is not None:
        score = grade.score
    passed = bool(record.get("passed")) if "passed" in record else score >= points > 0
    if grade is not None and grade.score is not None and grade.score >= points > 0:
        passed = True  # full marks in the gradebook (an override): the class report counts it as passed
    step = "" if passed else failed_step({**record, "passed": passed})
    return Attempt(student, exercise, max(0.0, min(score, points)), points, passed, step,
                   str(record.get("message") or ""))


def _known_mistake(attempt: Attempt, ex_spec):
    """The lab.yaml mistake whose message fragment the feedback contains (the longest fragment wins: the most
    specific), or None."""
    if ex_spec is None or not attempt.message:
        return None
    text = attempt.message.lower()
    found = [m for m in ex_spec.mistakes if m.message and m.message.lower() in text]
    return max(found, key=lambda m: len(m.message)) if found else None


def _causes(attempts: list[Attempt], ex_spec) -> list[Cause]:
    """Failed attempts grouped by known mistake (message fragment of lab.yaml), else by failed step; most
    frequent first."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    labels: dict[tuple[str, str], str] = {}
    examples: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for a in attempts:
        if a.passed:
            continue
        mistake = _known_mistake(a, ex_spec)
        if a.failed_step == "grader":
            key = ("grader", "grader")
            labels[key] = "the grader could not run (infrastructure, not the student)"
        elif mistake is not None:
            key = ("mistake", mistake.id)
            labels[key] = mistake.description or f'"{mistake.message}"'
        else:
            key = ("step", a.failed_step or "unknown")
            labels[key] = (f"failed at {a.failed_step}" if a.failed_step not in ("", "unknown")
                           else "failed (no verified record of why)" if not a.verified else "failed (step unknown)")
            if a.message:
                examples[key][_failure_text(a.message)[:160]] += 1
        groups[key].append(a.student)
    causes = []
    for key, students in groups.items():
        label = labels[key]
        if examples[key]:
            label += f' — most often: "{examples[key].most_common(1)[0][0]}"'
        causes.append(Cause(key[0], key[1], label, tuple(sorted(students))))
    causes.sort(key=lambda c: (-c.count, c.kind != "mistake", c.id))
    return causes


# ------------------------------------------------------------------------------------------------ plots

def histogram(scores, points: float, bins: int = _BINS) -> tuple[list[float], list[int]]:
    """(edges, counts) of `scores` over [0, points]; full marks fall into the last bin."""
    top = points if points > 0 else max(scores, default=1.0) or 1.0
    edges = [round(top * i / bins, 4) for i in range(bins + 1)]
    counts = [0] * bins
    for score in scores:
        index = min(bins - 1, max(0, int(score / top * bins))) if top else 0
        counts[index] += 1
    return edges, counts


def histogram_svg(scores, points: float, title: str, bins: int = _BINS) -> str:
    """A score histogram as an inline <svg> (matplotlib, object-oriented API: no pyplot state, no display)."""
    import matplotlib

    from matplotlib.figure import Figure

    edges, counts = histogram(scores, points, bins)
    with matplotlib.rc_context({"svg.hashsalt": "k8slab", "svg.fonttype": "none", "font.size": 9}):
        fig = Figure(figsize=(4.2, 2.2), dpi=100)
        ax = fig.add_subplot()
        widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
        colors = ["#1a7f37" if i == len(counts) - 1 else "#cf222e" if i == 0 else "#9a6700"
                  for i in range(len(counts))]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color=colors, edgecolor="white")
        ax.set_xlim(0, edges[-1])
        ax.set_xlabel(f"score (of {points:g})")
        ax.set_ylabel("students")
        ax.set_title(title, fontsize=9, loc="left")
        ax.yaxis.get_major_locator().set_params(integer=True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside an HTML page


# ------------------------------------------------------------------------------------------------ output

def to_dict(reports: list[LabReport], course_dir: Path | None = None) -> dict:
    labs = []
    for r in reports:
        edges, counts = histogram(r.totals, r.points)
        labs.append({
            "lab": r.lab, "title": r.title, "students": list(r.students), "points": r.points,
            "mean": round(statistics.fmean(r.totals), 2) if r.totals else 0.0,
            "median": statistics.median(r.totals) if r.totals else 0.0,
            "totals": dict(zip(r.students, r.totals)), "histogram": {"edges": edges, "counts": counts},
            "exercises": [{
                "id": e.id, "title": e.title, "points": e.points, "graded": e.graded, "passed": e.passed,
                "pass_rate": round(e.pass_rate, 4), "mean": e.mean, "unverified": e.unverified,
                "histogram": dict(zip(("edges", "counts"), histogram(e.scores, e.points))),
                "causes": [{"kind": c.kind, "id": c.id, "label": c.label, "count": c.count,
                            "students": list(c.students)} for c in e.causes],
            } for e in r.exercises],
            "setup_failures": [asdict(f) for f in r.setup_failures],
            "grader_failures": [asdict(f) for f in r.grader_failures],
            "answers": [{"id": a.id, "points": a.points, "marked": len(a.marked), "unmarked": a.unmarked,
                         "mean": round(statistics.fmean(a.marked), 2) if a.marked else None} for a in r.answers],
            "notes": list(r.notes),
        })
    return {"schema": SCHEMA, "course": str(course_dir) if course_dir else "",
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "labs": labs}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:14px;color:#1f2328;margin:24px;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:0 0 6px}.muted{color:#57606a}
.ex{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:12px 0;display:flex;gap:18px;flex-wrap:wrap}
.ex .plot{flex:0 0 auto}.ex .text{flex:1 1 380px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:10px;background:#1a7f37;vertical-align:middle}
.barbg{display:inline-block;width:120px;height:10px;background:#ffebe9;margin-right:6px;vertical-align:middle}
.note{background:#fff8c5;padding:6px 10px;border-radius:4px;margin:6px 0}
.kind{font-size:11px;border-radius:8px;padding:0 6px;background:#ddf4ff}.kind.step{background:#eaeef2}
.kind.grader{background:#ffebe9}
"""


def to_html(reports: list[LabReport], course_dir: Path | None = None) -> str:
    """One self-contained page: inline CSS and SVG, no scripts, no links."""
    e = _e
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Class report</title>"
             f"<style>{_CSS}</style></head><body><h1>Class report</h1>"
             f"<p class=\"muted\">{e(str(course_dir or ''))} · generated {generated}</p>"]
    if not reports:
        parts.append("<p>Nothing graded yet.</p>")
    for r in reports:
        mean = statistics.fmean(r.totals) if r.totals else 0.0
        parts.append(f"<h2>{e(r.lab)} — {e(r.title)}</h2>")
        parts.append(f"<p>{len(r.students)} student(s); mean {mean:.2f} of {r.points:g} points"
                     + (f", median {statistics.median(r.totals):g}" if r.totals else "") + "</p>")
        parts.extend(f'<div class="note">{e(n)}</div>' for n in r.notes)
        if r.totals:
            parts.append(f'<div class="plot">{histogram_svg(r.totals, r.points, "total score")}</div>')
        parts.append(_overview_table(r))
        for ex in r.exercises:
            parts.append(_exercise_html(ex))
        parts.append(_setup_html(r))
        if r.answers:
            rows = "".join(
                f"<tr><td>{e(a.id)}</td><td class=\"num\">{a.points:g}</td><td class=\"num\">{len(a.marked)}</td>"
                f"<td class=\"num\">{a.unmarked}</td><td class=\"num\">"
                f"{(f'{statistics.fmean(a.marked):.2f}' if a.marked else '—')}</td></tr>" for a in r.answers)
            parts.append("<h3>Written answers</h3><table><tr><th>answer</th><th>points</th><th>marked</th>"
                         f"<th>not marked yet</th><th>mean</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "".join(parts)


def _overview_table(r: LabReport) -> str:
    rows = []
    for ex in r.exercises:
        width = round(120 * ex.pass_rate)
        rows.append(f"<tr><td>{_e(ex.id)}</td><td class=\"num\">{ex.passed}/{ex.graded}</td>"
                    f"<td><span class=\"barbg\"><span class=\"bar\" style=\"width:{width}px\"></span></span>"
                    f"{ex.pass_rate:.0%}</td><td class=\"num\">{ex.mean:g}/{ex.points:g}</td></tr>")
    return ("<table><tr><th>exercise</th><th>passed</th><th>pass rate</th><th>mean score</th></tr>"
            + "".join(rows) + "</table>")


def _exercise_html(ex: ExerciseSummary) -> str:
    causes = "".join(
        f'<tr><td class="num">{c.count}</td><td><span class="kind {c.kind}">{_e(c.kind)}</span> {_e(c.id)}</td>'
        f"<td>{_e(c.label)}<div class=\"muted\">{_e(', '.join(c.students[:12]))}"
        f"{'…' if c.count > 12 else ''}</div></td></tr>" for c in ex.causes)
    cause_table = (f"<table><tr><th>students</th><th>cause</th><th>what they read / who</th></tr>{causes}</table>"
                   if causes else "<p>No failures.</p>")
    plot = histogram_svg(ex.scores, ex.points, ex.id) if ex.scores else "<p class=\"muted\">no results</p>"
    unverified = (f"<div class=\"muted\">{ex.unverified} result(s) without a verified record</div>"
                  if ex.unverified else "")
    return (f'<div class="ex" id="ex-{_e(ex.id)}"><div class="plot">{plot}</div><div class="text">'
            f"<h3>{_e(ex.id)} — {_e(ex.title)}</h3><p>passed {ex.passed} of {ex.graded} "
            f"({ex.pass_rate:.0%}), mean {ex.mean:g}/{ex.points:g}</p>{unverified}"
            f"<b>Most frequent failure causes</b>{cause_table}</div></div>")


def _setup_html(r: LabReport) -> str:
    parts = ["<h3>Failed at parse or admit — often a setup problem</h3>"]
    if not r.setup_failures:
        parts.append("<p>None.</p>")
    else:
        parts.append("<p class=\"muted\">Files in the wrong folder, an unedited starter, a YAML or apiVersion error: "
                     "worth a word with the student before reading the grade as a misunderstanding.</p>")
        students = len({f.student for f in r.setup_failures})
        rows = "".join(f"<tr><td>{_e(f.student)}</td><td>{_e(f.exercise)}</td><td>{_e(f.step)}</td>"
                       f"<td>{_e(f.mistake) or '—'}</td><td>{_e(f.message)}</td></tr>" for f in r.setup_failures)
        parts.append(f"<p>{students} student(s):</p><table><tr><th>student</th><th>exercise</th><th>step</th>"
                     f"<th>known mistake</th><th>first line</th></tr>{rows}</table>")
    if r.grader_failures:
        rows = "".join(f"<tr><td>{_e(f.student)}</td><td>{_e(f.exercise)}</td><td>{_e(f.message)}</td></tr>"
                       for f in r.grader_failures)
        parts.append("<h3>The grader could not run — regrade these</h3>"
                     f"<table><tr><th>student</th><th>exercise</th><th>why</th></tr>{rows}</table>")
    return "".join(parts)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------------------------ entry point

def class_labs(course_dir: Path) -> list[str]:
    """Every lab with something to report: in the gradebook or with verified records."""
    verified = course_dir / "k8slab" / "verified"
    found = set(gradebook_labs(course_dir))
    if verified.is_dir():
        found |= {d.name for d in verified.iterdir() if d.is_dir()}
    return sorted(found)


def build_reports(course_dir: Path, labs: list[str] | None = None, root: Path | None = None) -> list[LabReport]:
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise UsageError(f"{course_dir} is not a directory",
                         hint="give the course directory (`k8slab course build DIR`)")
    chosen = labs or class_labs(course_dir)
    if not chosen:
        raise UsageError(f"nothing graded in {course_dir}: no gradebook.db and no k8slab/verified/ records",
                         hint=f"autograde first: k8slab course autograde {course_dir} LAB")
    reports = []
    for lab in chosen:
        records = verified_records(course_dir, lab)
        grades = gradebook_grades(course_dir, lab)
        if not records and not grades:
            raise UsageError(f"no results of {lab} in {course_dir} (neither the gradebook nor k8slab/verified/{lab}/)",
                             hint=f"autograde it first: k8slab course autograde {course_dir} {lab}")
        try:
            lab_spec = spec.load_lab(lab, root)
        except (UsageError, SpecError):  # a course built from another checkout: report by step only
            lab_spec = None
        reports.append(lab_report(lab, records, grades, lab_spec))
    return reports


def write_report(course_dir: Path, labs: list[str] | None = None, out: Path | None = None,
                 root: Path | None = None) -> tuple[list[LabReport], Path, Path]:
    """Write the HTML page (default DIR/class-report.html) and the JSON next to it; returns the reports and
    both paths."""
    course_dir = Path(course_dir)
    reports = build_reports(course_dir, labs, root)
    html_path = Path(out) if out else course_dir / "class-report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_suffix(".html")
    json_path = html_path.with_suffix(".json")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(to_html(reports, course_dir), encoding="utf-8")
    json_path.write_text(json.dumps(to_dict(reports, course_dir), indent=2), encoding="utf-8")
    return reports, html_path, json_path


def summary_lines(reports: list[LabReport]) -> list[str]:
    """What the command prints: one line per exercise."""
    lines = []
    for r in reports:
        lines.append(f"{r.lab}: {len(r.students)} student(s), {len(r.setup_failures)} failure(s) at parse/admit")
        for ex in r.exercises:
            cause = f"; top cause: {ex.causes[0].id} ({ex.causes[0].count})" if ex.causes else ""
            lines.append(f"  {ex.id}: passed {ex.passed}/{ex.graded} ({ex.pass_rate:.0%}){cause}")
    return lines

