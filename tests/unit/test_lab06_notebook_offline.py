"""Lab 06's notebook runs top to bottom without a mesh — as on the offline cluster — in a real Jupyter kernel: no
cell raises, the cells that look around are skipped with a sentence, and every check cell shows the exercise
"not graded: needs the online cluster with a mesh" (the cluster here is a fake one without a mesh: no real cluster
is contacted). The same notebook with a mesh and the solutions in place is tests/live/test_notebooks_live.py."""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

from graders import mesh, notebook_build, paths

LAB = "06-service-mesh"


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("ipykernel", "nbclient")),
                    reason="no Jupyter kernel installed")
def test_the_notebook_runs_top_to_bottom_on_a_cluster_without_a_mesh(tmp_path):
    import nbclient
    import nbformat

    setup = textwrap.dedent(f"""\
        import os, sys
        sys.path[:0] = [{str(paths.repo_root())!r}, {str(Path(__file__).parent)!r}]  # this checkout's graders
        os.environ["K8SLAB_CACHE"] = {str(tmp_path / "cache")!r}
        import graders.cluster
        from fakes import FakeCluster
        shared = FakeCluster(context="kind-k8slab")   # a cluster that answers and runs no mesh
        graders.cluster.Cluster.connect = staticmethod(lambda *a, **k: shared)
        """)
    nb = notebook_build.render(LAB)
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(paths.labs_dir() / LAB)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    checks = [c for c in code if c.source.startswith(f'check("{LAB}"')]
    assert len(checks) == 6
    for cell in checks:
        shown = " ".join(str(o.get("data", {}).get("text/html", "")) for o in cell.outputs)  # the card
        assert mesh.NEEDS_MESH in shown and "NOT GRADED" in shown, (cell.source, shown)
        assert "failed at" not in shown
    printed = "".join(o.get("text", "") for c in code for o in c.get("outputs", []) if o.output_type == "stream")
    assert "runs no mesh" in printed and "nothing deleted" in printed
