"""Lets an instructor grade the written answers of a lab from the command line.

Labs ask a few questions in words (markdown cells with metadata ``k8slab.answer``; the build makes them nbgrader
manually graded cells). Autograding leaves them "needs manual grade". `k8slab course answers DIR LAB` prints
every autograded student's answers next to the reference; `k8slab course mark DIR LAB STUDENT ANSWER POINTS`
records a score (and an optional comment) in the gradebook, where nbgrader's formgrader would put it, so
`k8slab course grades` and the feedback include it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graders.course.gradebook import existing_gradebook
from graders.errors import UsageError


@dataclass(frozen=True)
class Answer:
    student: str
    answer: str          # the cell's grade id, e.g. web-to-api-why
    text: str            # what the student wrote
    points: float
    score: float | None  # None until an instructor marks it
    comment: str = ""


def answers(course_dir: Path, lab: str) -> list[Answer]:
    """Every written answer of every autograded submission of `lab`, ordered by student then cell."""
    found = []
    with existing_gradebook(course_dir) as gb:
        try:
            assignment = gb.find_assignment(lab)
        except Exception:  # noqa: BLE001 — nbgrader raises MissingEntry
            raise UsageError(f"the gradebook has no assignment {lab}") from None
        for notebook in assignment.notebooks:
            cells = {c.name: c for c in notebook.grade_cells if c.cell_type == "markdown"}
            for submission in sorted(notebook.submissions, key=lambda s: s.student.id):
                student = submission.student.id
                for grade in sorted(submission.grades, key=lambda g: g.name):
                    if grade.name not in cells:
                        continue
                    comment = next((c.manual_comment or "" for c in submission.comments if c.name == grade.name), "")
                    text = _answer_text(course_dir, lab, student, notebook.name, grade.name)
                    found.append(Answer(student, grade.name, text, float(cells[grade.name].max_score),
                                        grade.manual_score, comment))
    return found


def _answer_text(course_dir: Path, lab: str, student: str, notebook: str, cell_id: str) -> str:
    """The answer as submitted (the autograded copy of the student's notebook)."""
    import nbformat

    path = course_dir / "autograded" / student / lab / f"{notebook}.ipynb"
    if not path.is_file():
        return ""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if (cell.metadata.get("nbgrader") or {}).get("grade_id") == cell_id:
            return cell.source.strip()
    return ""


def mark(course_dir: Path, lab: str, student: str, answer: str, points: float, comment: str = "") -> Answer:
    """Record the instructor's score for one written answer (0 <= points <= the cell's points)."""
    with existing_gradebook(course_dir) as gb:
        try:
            grade = gb.find_grade(answer, lab, lab, student)
        except Exception:  # noqa: BLE001 — MissingEntry
            raise UsageError(f"no written answer {answer!r} of {student} in {lab} (see `k8slab course answers "
                             f"{course_dir} {lab}`)") from None
        if grade.cell.cell_type != "markdown":
            raise UsageError(f"{answer} is an autograded cell, not a written answer: its score comes from the cluster")
        top = float(grade.max_score)
        if not 0 <= points <= top:
            raise UsageError(f"{answer} is worth {top:g} point(s): give a score between 0 and {top:g}, not {points:g}")
        grade.manual_score = points
        grade.needs_manual_grade = False
        if comment:
            gb.find_comment(answer, lab, lab, student).manual_comment = comment
        gb.db.commit()
        return Answer(student, answer, "", top, points, comment)


def print_answers(items: list[Answer]) -> None:
    if not items:
        print("no written answers to grade (is the lab autograded?)")
        return
    for item in items:
        state = "not marked yet" if item.score is None else f"{item.score:g}/{item.points:g}"
        print(f"== {item.student} · {item.answer} ({state})")
        print(item.text or "(no answer)")
        print()
    pending = sum(item.score is None for item in items)
    print(f"{len(items)} answers, {pending} not marked yet: "
          f"k8slab course mark DIR LAB STUDENT ANSWER POINTS [--comment TEXT]")
