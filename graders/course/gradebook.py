"""The course's nbgrader gradebook (``DIR/gradebook.db``): opening it, and exporting the grades CSV."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graders.errors import K8sLabError, UsageError

COURSE_ID = "k8slab"


def gradebook_url(course_dir: Path) -> str:
    return "sqlite:///" + str(course_dir / "gradebook.db")


def open_gradebook(course_dir: Path):
    """nbgrader's Gradebook of the course (a context manager); the database must exist (autograde creates it)."""
    from nbgrader.api import Gradebook

    return Gradebook(gradebook_url(course_dir), course_id=COURSE_ID)


def existing_gradebook(course_dir: Path):
    """The gradebook of a course that was autograded at least once; a UsageError saying so otherwise."""
    db = course_dir / "gradebook.db"
    if not db.is_file():
        raise UsageError(f"{db} does not exist: autograde the lab first (`k8slab course autograde {course_dir} LAB`)")
    return open_gradebook(course_dir)


def nbgrader_executable() -> str:
    """The nbgrader next to this Python (the virtualenv's), else the one on PATH."""
    nbgrader = Path(sys.executable).with_name("nbgrader")
    return str(nbgrader) if nbgrader.exists() else "nbgrader"


def export_grades(course_dir: Path, to: Path | None = None) -> Path:
    """`nbgrader export` to CSV (one row per student and assignment)."""
    to = (to or course_dir / "grades.csv").resolve()
    proc = subprocess.run([nbgrader_executable(), "export", "--to", str(to)],
                          cwd=course_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise K8sLabError(f"nbgrader export failed: {proc.stderr.strip()[-500:]}")
    return to
