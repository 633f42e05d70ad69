"""The learner's notebooks are built from their MyST sources, stay in sync, and are never overwritten."""
from __future__ import annotations

import nbformat
import pytest

from graders import notebook_build, paths, spec

LABS = [lab.id for lab in spec.all_labs(paths.repo_root())]


@pytest.mark.parametrize("lab_id", LABS)
def test_every_lab_has_a_notebook_source_with_a_check_cell_per_exercise(lab_id):
    nb = notebook_build.render(lab_id)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for ex in spec.load_lab(lab_id).exercises:
        assert f'"{ex.id}"' in code, f"{lab_id}.md has no check cell for exercise {ex.id}"
    assert any("mermaid" in c.source for c in nb.cells if c.cell_type == "markdown"), "no Mermaid diagram"


@pytest.mark.parametrize("lab_id", LABS)
def test_committed_notebook_matches_its_source(lab_id):
    assert notebook_build.is_current(lab_id), (
        f"labs/{lab_id}/{lab_id}.ipynb is missing or stale: run `k8slab notebooks build --force {lab_id}`")


def test_render_is_deterministic():
    first, second = notebook_build.render(LABS[0]), notebook_build.render(LABS[0])
    assert [c.id for c in first.cells] == [c.id for c in second.cells]


def test_build_never_overwrites_an_existing_notebook(tmp_path, monkeypatch):
    lab_id = LABS[0]
    target = tmp_path / f"{lab_id}.ipynb"
    learner = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("my answer")])
    nbformat.write(learner, target)
    monkeypatch.setattr(notebook_build, "notebook_path", lambda _lab: target)
    path, written = notebook_build.build(lab_id)
    assert not written and "my answer" in path.read_text()
    path, written = notebook_build.build(lab_id, force=True)
    assert written and "my answer" not in path.read_text()
