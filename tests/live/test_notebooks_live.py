"""Live: each lab notebook runs top to bottom on the cluster with the reference solutions in place.

The notebook runs in a throwaway copy of the course (K8SLAB_ROOT points the grader at it), so the learner's own
files in labs/ are never touched; every `check()` cell must report a pass.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from graders import notebook_build, paths, spec
from observed import materialise, mesh_or_skip, second_cluster_or_skip, variant_for

pytestmark = pytest.mark.live

LABS_WITH_NOTEBOOKS = [lab.id for lab in spec.all_labs(paths.repo_root())
                       if notebook_build.source_path(lab.id).exists()]


def course_with_solutions(root: Path, lab: spec.LabSpec, context: str, mesh_name: str | None = None) -> Path:
    """A copy of labs/, solutions/ and environment/ where the lab's starter files are replaced by the solutions
    (an answers exercise's filled in with what the cluster shows; lab 06's the variant written for the cluster's
    mesh)."""
    for folder in ("labs", "solutions", "environment"):
        shutil.copytree(paths.repo_root() / folder, root / folder, ignore=shutil.ignore_patterns("*.ipynb"))
    for ex in lab.exercises:
        target = root / "labs" / lab.id / ex.id
        shutil.copytree(variant_for(ex, mesh_name), target, dirs_exist_ok=True)
        materialise(ex, target, context, target)
    return root / "labs" / lab.id


@pytest.mark.parametrize("lab_id", LABS_WITH_NOTEBOOKS)
def test_notebook_runs_top_to_bottom_with_solutions(lab_id, tmp_path, k8slab_cluster, monkeypatch, request):
    chosen = request.config.getoption("lab") or []
    if chosen and lab_id not in chosen:
        pytest.skip(f"not selected by --lab {' '.join(chosen)}")
    second_cluster_or_skip(lab_id, k8slab_cluster.context)
    found = mesh_or_skip(lab_id, k8slab_cluster)  # lab 06 without a mesh: tests/unit/test_lab06_notebook_offline.py
    lab = spec.load_lab(lab_id, paths.repo_root())
    lab_dir = course_with_solutions(tmp_path, lab, k8slab_cluster.context, found.name if found else None)
    nb = notebook_build.render(lab_id)
    monkeypatch.setenv("K8SLAB_ROOT", str(tmp_path))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(lab_dir)}})
    try:
        client.execute(env=dict(os.environ))
    except CellExecutionError as error:
        pytest.fail(f"{lab_id}: a cell raised:\n{str(error)[-3000:]}")
    not_passed = [cell.source for cell in nb.cells if cell.cell_type == "code"
                  for out in cell.get("outputs", [])
                  if "not passed yet" in str(out.get("data", {}).get("text/plain", ""))]
    assert not not_passed, f"{lab_id}: with the solutions in place these checks did not pass: {not_passed}"
