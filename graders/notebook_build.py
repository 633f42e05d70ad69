"""Builds the learner's notebooks (labs/<id>/<id>.ipynb) from their reviewable MyST sources (labs/<id>/<id>.md).

The .ipynb is committed so a learner needs nothing but JupyterLab; `k8slab notebooks build` writes one only where
none exists (or with --force), because the learner's notebook holds their answers and must never be overwritten.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from graders import paths, spec as specs
from graders.errors import SpecError

if TYPE_CHECKING:  # imported where used: the grading image (graders.course.grader_image) has no nbformat
    import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def source_path(lab_id: str) -> Path:
    return paths.lab_dir(lab_id) / f"{lab_id}.md"


def notebook_path(lab_id: str) -> Path:
    return paths.lab_dir(lab_id) / f"{lab_id}.ipynb"


def render(lab_id: str) -> "nbformat.NotebookNode":
    """The notebook as built from its source, with stable cell ids so a rebuild of an unchanged source is equal."""
    import jupytext  # imported here: grading must not pay for it
    import nbformat

    source = source_path(lab_id)
    if not source.is_file():
        raise SpecError(f"lab {lab_id} has no notebook source {paths.relative(source)}")
    try:
        nb = jupytext.read(source, fmt="md:myst")
    except Exception as exc:  # noqa: BLE001 — jupytext raises many types; name the file instead
        raise SpecError(f"cannot read notebook source {paths.relative(source)}: {exc}") from None
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells):
        digest = hashlib.sha1(cell.source.encode()).hexdigest()[:8]
        cell["id"] = f"{cell.cell_type[:4]}-{index:02d}-{digest}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def build(lab_id: str, *, force: bool = False) -> tuple[Path, bool]:
    """Write labs/<id>/<id>.ipynb unless it exists; returns (path, written)."""
    target = notebook_path(lab_id)
    if target.exists() and not force:
        return target, False
    import nbformat

    nbformat.write(render(lab_id), target)
    return target, True


def is_current(lab_id: str) -> bool:
    """True when the committed notebook's cells equal a fresh build of its source (outputs ignored)."""
    target = notebook_path(lab_id)
    if not target.exists():
        return False
    import nbformat

    built = render(lab_id)
    committed = nbformat.read(target, as_version=4)
    return [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells]


def register(subparsers) -> None:
    parser = subparsers.add_parser("notebooks", help="build the lab notebooks from their MyST sources")
    parser.add_argument("action", choices=["build", "check"], help="build: write missing .ipynb; check: report stale")
    parser.add_argument("labs", nargs="*", metavar="LAB", help="lab ids (default: every lab)")
    parser.add_argument("--force", action="store_true", help="overwrite existing notebooks (loses learner edits!)")
    parser.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    lab_ids = args.labs or [lab.id for lab in specs.all_labs()]
    stale = []
    for lab_id in lab_ids:
        if not source_path(lab_id).exists():
            print(f"{lab_id}: no notebook source yet ({paths.relative(source_path(lab_id))})")
            continue
        if args.action == "check":
            if not is_current(lab_id):
                stale.append(lab_id)
                print(f"{lab_id}: {paths.relative(notebook_path(lab_id))} is missing or older than its source; "
                      f"run `k8slab notebooks build --force {lab_id}`")
            continue
        path, written = build(lab_id, force=args.force)
        print(f"{lab_id}: {'wrote' if written else 'kept (exists; --force overwrites)'} {paths.relative(path)}")
    return 1 if stale else 0
