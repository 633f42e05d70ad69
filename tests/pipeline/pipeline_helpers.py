"""Helpers for the nbgrader pipeline tests (marker `pipeline`; the live ones also `live`).

The offline tests build a course from tests/pipeline/fixture (a two-exercise demo lab) and from every real lab
that has a notebook source; the live ones need the kind-k8slab cluster and skip with one reason otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from observed import materialise

REPO = Path(__file__).resolve().parents[2]
FIXTURE_ROOT = Path(__file__).resolve().parent / "fixture"
DEMO = "99-demo"


def course_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("K8SLAB_RESULTS_FILE", None)
    env.update(extra or {})
    return env


def nbgrader(course_dir: Path, *args: str, extra_env: dict | None = None, check: bool = True):
    nb = Path(sys.executable).with_name("nbgrader")
    proc = subprocess.run([str(nb), *args], cwd=course_dir, env=course_env(extra_env), capture_output=True,
                          text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def build_course(course_dir: Path, root: Path, labs: list[str] | None = None, diagrams: bool = False):
    from graders.course.build import build

    return build(course_dir, labs, root=root, render_diagrams=diagrams)


def hand_in(course_dir: Path, lab: str, student: str, files: dict[str, Path] | None = None,
            edit=None) -> Path:
    """A student's submission as nbgrader collect leaves it: the released lab folder, some files replaced
    (``files``: "exercise/name" -> source file) and optionally the notebook edited (``edit(nb)``)."""
    dest = course_dir / "submitted" / student / lab
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(course_dir / "release" / lab, dest)
    for rel, src in (files or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest / rel)
    if edit is not None:
        path = dest / f"{lab}.ipynb"
        nb = nbformat.read(path, as_version=4)
        edit(nb)
        nbformat.write(nb, path)
    (dest / "timestamp.txt").write_text("2026-11-26 10:00:00.000000 UTC")
    return dest


def solution_files(lab_spec, only: set[str] | None = None, context: str | None = None) -> dict[str, Path]:
    """{"<exercise>/<file>": path} of the reference solution. An answers exercise's solution is a template filled
    with what the cluster behind ``context`` shows (tests/observed.py); without a context it is left out."""
    out = {}
    for exercise in lab_spec.exercises:
        if only is not None and exercise.id not in only:
            continue
        directory = exercise.solution_dir
        if exercise.submission == "answers":
            if context is None:
                continue
            directory = materialise(exercise, directory, context, Path(tempfile.mkdtemp(prefix="k8slab-answers-")))
        for name in exercise.files:
            out[f"{exercise.id}/{name}"] = directory / name
    return out


def generated_class(lab_spec, context: str, size: int, distinct: int | None = None) -> dict[str, dict]:
    """``size`` submissions: the solution, the last known mistake, the starter, then alternatives and known
    mistakes by turns. student -> files ("exercise/name" -> source). The
    parallel autograder's live test and benchmark.

    With ``distinct`` < ``size``, only that many different answers are handed in, each by size/distinct students
    named next to each other (``s00a-sol``, ``s00b-sol``): classmates with the same answer, graded at the same time
    under the same logical namespaces, must each get that answer's grade (see :func:`answer_of`)."""
    full = solution_files(lab_spec, context=context)
    kinds: list[tuple[str, dict]] = [("sol", full)]
    for exercise in lab_spec.exercises:
        for alt in exercise.alternative_dirs:
            files = dict(full)
            files.update({f"{exercise.id}/{p.name}": p for p in alt.iterdir() if p.name in exercise.files})
            kinds.append((f"alt-{exercise.id}-{alt.name}", files))
    starter = ("starter", {})
    for exercise in lab_spec.exercises:
        for mistake in exercise.mistakes:
            files = dict(full)
            files.update({f"{exercise.id}/{name}": exercise.mistake_dir(mistake) / name for name in exercise.files
                          if (exercise.mistake_dir(mistake) / name).is_file()})
            kinds.append((f"mis-{exercise.id}-{mistake.id}", files))
    alternatives = [k for k in kinds[1:-1] if k[0].startswith("alt-")]
    mistakes = [k for k in kinds[1:-1] if k[0].startswith("mis-")]
    # alternatives and mistakes take turns, so that a small class has both
    mixed = [k for pair in zip(alternatives, mistakes) for k in pair]
    n = min(len(alternatives), len(mistakes))
    picked = [kinds[0], kinds[-1], starter, *mixed, *alternatives[n:], *mistakes[n:]]
    if not distinct or distinct >= size:
        return {f"s{i:02d}-{name}"[:40]: files for i, (name, files) in enumerate(picked[i % len(picked)]
                                                                               for i in range(size))}
    answers = [picked[i % len(picked)] for i in range(distinct)]
    return {f"s{i % distinct:02d}{chr(ord('a') + i // distinct)}-{answers[i % distinct][0]}"[:40]:
            answers[i % distinct][1] for i in range(size)}


def answer_of(student: str) -> str:
    """The first student who handed in the same answer: ``s00b-sol`` -> ``s00a-sol``; itself when it has no twin."""
    head, _, name = student.partition("-")
    return f"{head[:3]}a-{name}"[:40] if len(head) == 4 else student


def zip_lab(folder: Path, zip_path: Path) -> None:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))


def add_student_cell(nb, source: str, index: int = 1) -> None:
    """A cell the student added (no nbgrader metadata): nbgrader keeps and runs it."""
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))


def read_csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def records_file(path: Path, records: dict) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path
