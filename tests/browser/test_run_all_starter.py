"""What a student meets first: each lab notebook run top to bottom in JupyterLab (Run > Run All Cells) with the
*starter* files, as released. No cell may hang (each is bounded), raise, or show a Python traceback; the checks
report ✗ with a reason, never an error. Timings per cell are printed (-s) for the CI budget.

Run All takes one to two minutes per lab (every check() cell grades on the live cluster; measured 2026-12-03:
03 96 s, 04 107 s, 05 36 s): every lab runs by default; K8SLAB_BROWSER_RUN_ALL (a list of lab ids) or --lab
narrows it.
"""
from __future__ import annotations

import os
import time

import nbformat
import pytest

from browser_helpers import REPO
from jlab import Notebook, copy_course, jupyterlab

# 02-cni is left out for now: its checks need a second cluster (graders.comparison), which the CI browser stage does
# not start, and autograde does not yet support a second context. 06-service-mesh too: it needs a mesh, which the CI
# cluster cannot have; without one its notebook runs top to bottom with every check "not graded"
# (tests/unit/test_lab06_notebook_offline.py proves that in a real kernel).
ALL_LABS = ["00-orientation", "01-pod-network", "03-services", "04-ingress", "05-network-policy"]
PER_CELL_TIMEOUT = 300  # s: a check() with starter files waits at most its ready_timeout (120 s) plus probing
TOTAL_TIMEOUT = 1800


def _labs() -> list[str]:
    wanted = os.environ.get("K8SLAB_BROWSER_RUN_ALL", "").strip()
    return ALL_LABS if wanted in ("", "all") else wanted.split()


@pytest.fixture(scope="module")
def starter_server(browser, tmp_path_factory, artifacts, k8slab_cluster):
    work = tmp_path_factory.mktemp("starter")
    course = copy_course(work / "course")  # the starters as released, no solution
    with jupyterlab(course, work, artifacts / "jupyterlab-starter.log") as server:
        yield server


@pytest.mark.parametrize("lab", _labs())
def test_run_all_with_the_starter_files(lab, browser, starter_server, artifacts, request):
    chosen = request.config.getoption("lab") or []
    if chosen and lab not in chosen:
        pytest.skip(f"not selected by --lab {' '.join(chosen)}")
    source = nbformat.read(REPO / "labs" / lab / f"{lab}.ipynb", as_version=4)
    nb = Notebook(browser, f"{lab} (Run All, starter files)")
    t0 = time.monotonic()
    nb.open(starter_server, f"{lab}/{lab}.ipynb", cells=len(source.cells))
    try:
        timings = nb.run_all(PER_CELL_TIMEOUT, TOTAL_TIMEOUT)
    finally:
        nb.page_screenshot(artifacts / f"{lab}-run-all-starter.png")
    assert not nb.tracebacks(), f"{lab}: a traceback is shown: {nb.tracebacks()}"
    checks = [i for i, c in enumerate(source.cells) if c.cell_type == "code" and c.source.startswith("check(")]
    for index in checks:
        cards = nb.cards(index)
        assert cards, f"{lab}: cell {index} ({source.cells[index].source!r}) shows no result card: " \
                      f"{nb.outputs_text(index)[-800:]}"
    total = time.monotonic() - t0
    slowest = sorted(timings.items(), key=lambda kv: -kv[1])[:5]
    print(f"\n{lab}: Run All {total:.0f} s ({len(timings)} code cells); slowest: " +
          ", ".join(f"cell {i} {s:.0f} s ({source.cells[i].source.splitlines()[0][:50]!r})" for i, s in slowest))
    with open(artifacts / "run-all-timings.txt", "a") as out:
        out.write(f"{lab}\t{total:.1f}\t" + " ".join(f"{i}:{s:.1f}" for i, s in timings.items()) + "\n")
