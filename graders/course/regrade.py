"""Which submissions an autograder could not grade fully and the serial one must regrade.

A grading Job cannot start a client outside the cluster (graders.outside.IN_JOB_ENV): checks of labs 03, 04 and 05
that need one are not probed in the Job. Nor can the serial autograder compare with a second cluster that does not
answer (lab 02, graders.course.harness): those checks are "not probed". Either way the records are still recorded
(the student has a grade, whose messages say what was not probed), and the student is listed here, in
``DIR/k8slab/serial-regrade/<lab>.json`` ({student: reason}), until the serial autograder (`k8slab course autograde
DIR LAB --student S --force`) grades it again fully. The list survives re-runs: a resumed parallel run skips such a
student as graded, and still names it.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path


def _file(course_dir: Path, lab: str) -> Path:
    return course_dir / "k8slab" / "serial-regrade" / f"{lab}.json"


def pending(course_dir: Path, lab: str) -> dict[str, str]:
    """{student: why} of every submission of `lab` waiting for a serial regrade."""
    try:
        data = json.loads(_file(course_dir, lab).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(course_dir: Path, lab: str, students: dict[str, str]) -> None:
    path = _file(course_dir, lab)
    if not students:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(students.items())), indent=2), encoding="utf-8")


def mark(course_dir: Path, lab: str, student: str, reason: str) -> None:
    _write(course_dir, lab, {**pending(course_dir, lab), student: reason})


def clear(course_dir: Path, lab: str, student: str) -> None:
    students = pending(course_dir, lab)
    if students.pop(student, None) is not None:
        _write(course_dir, lab, students)


def command(course_dir: Path, lab: str, students: list[str]) -> str:
    """The serial command that regrades `students`."""
    named = " ".join(f"--student {shlex.quote(s)}" for s in students)
    return f"k8slab course autograde {shlex.quote(str(course_dir))} {lab} {named} --force"
