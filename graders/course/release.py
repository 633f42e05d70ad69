"""Proves a student release carries no solution (`k8slab course check-release DIR LAB`)."""
from __future__ import annotations

from pathlib import Path

import nbformat

from graders import hints, paths, spec
from graders.course import build


def release_leaks(course_dir: Path, lab: str, root: Path | None = None) -> list[str]:
    """Lines of the reference solutions (absent from the starters) found anywhere under release/<lab>/.

    Empty means the release carries no solution. Checked by the pipeline tests and `k8slab course check-release`."""
    root = root or paths.repo_root()
    lab_spec = spec.load_lab(lab, root)
    markers = (build.SOLUTION_MARK, "BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "REFERENCE_")
    # What students may see anyway: every starter of the lab and the notebook source. A released line equal to a
    # solution line that appears in none of them is solution content.
    lab_dir = root / "labs" / lab
    public: set[str] = set()
    # hints.yaml is not public in this sense: its last level is the answer, and a release never carries it.
    for path in lab_dir.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".md") and path.name != hints.HINTS_FILE:
            public.update(line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    secret: set[str] = set()
    for exercise in lab_spec.exercises:
        for name in exercise.files:
            sol = exercise.solution_dir / name
            if sol.is_file():
                secret.update(line.strip() for line in sol.read_text(encoding="utf-8").splitlines())
    answers = root / "solutions" / lab / "answers"
    for path in sorted(answers.glob("*.md")) if answers.is_dir() else ():
        secret.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    secret = {line for line in secret if len(line) > 12 and not line.startswith("#")} - public
    hits = []
    release = course_dir / "release" / lab
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(c.source for c in nb.cells)
        where = path.relative_to(course_dir)
        hits += [f"{where}: {m}" for m in markers if m in text]
        hits += [f"{where}: {line}" for line in sorted({x.strip() for x in text.splitlines()} & secret)]
    return hits
