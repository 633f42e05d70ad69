"""The student path in a real browser: JupyterLab started as `make lab` starts it, each lab's notebook opened, the
setup cell and one `check(...)` cell run against the live cluster, and what a person sees asserted in the page:
the result card (✓ or ✗), lab 05's coloured reachability matrices, every Mermaid diagram rendered as SVG, and no
Python traceback anywhere. Screenshots: build/test-artifacts/browser/.

Everything runs in a throwaway copy of the course (K8SLAB_ROOT points the graders at it): the learner's notebooks
and files in labs/ are never touched.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import nbformat
import pytest

from browser_helpers import REPO, skip_or_fail
from jlab import Notebook, copy_course, jupyterlab


@dataclass(frozen=True)
class Case:
    lab: str
    exercise: str
    solution: bool  # True: the reference solution is in place, the check must pass; False: the starter, it fails


CASES = [
    Case("00-orientation", "hello-pod", solution=True),
    Case("01-pod-network", "four-pods", solution=True),
    Case("03-services", "clusterip", solution=False),
    Case("04-ingress", "host-path", solution=True),
    Case("05-network-policy", "default-deny-ingress", solution=False),
]
CHECK_TIMEOUT = 420  # s: one check (connect, apply, wait for pods, probe), the run lock's wait included
SETUP_TIMEOUT = 120
# rgb() of the matrix cells' backgrounds in graders/render.py's CSS (allowed green, blocked red)
ALLOWED_BG, BLOCKED_BG = "rgb(218, 251, 225)", "rgb(255, 235, 233)"


def _code_cells(lab: str) -> list[tuple[int, str]]:
    nb = nbformat.read(REPO / "labs" / lab / f"{lab}.ipynb", as_version=4)
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _mermaid_fences(lab: str) -> int:
    nb = nbformat.read(REPO / "labs" / lab / f"{lab}.ipynb", as_version=4)
    return sum(len(re.findall(r"^```+\s*\{?mermaid\}?", c.source, re.M)) for c in nb.cells if c.cell_type == "markdown")


@pytest.fixture(scope="module")
def lab_server(browser, tmp_path_factory, artifacts, k8slab_cluster):
    work = tmp_path_factory.mktemp("student")
    course = copy_course(work / "course", {c.lab: [c.exercise] for c in CASES if c.solution})
    with jupyterlab(course, work, artifacts / "jupyterlab-student.log") as server:
        yield server


@pytest.mark.parametrize("case", CASES, ids=[c.lab for c in CASES])
def test_setup_and_one_check_as_a_student_sees_them(case, browser, lab_server, artifacts, request):
    chosen = request.config.getoption("lab") or []
    if chosen and case.lab not in chosen:
        pytest.skip(f"not selected by --lab {' '.join(chosen)}")
    nb = Notebook(browser, case.lab)
    if not (REPO / "labs" / case.lab / f"{case.lab}.ipynb").exists():
        skip_or_fail(f"labs/{case.lab}/{case.lab}.ipynb is missing (k8slab notebooks build)")
    t0 = time.monotonic()
    source = nbformat.read(REPO / "labs" / case.lab / f"{case.lab}.ipynb", as_version=4)
    nb.open(lab_server, f"{case.lab}/{case.lab}.ipynb", cells=len(source.cells))
    open_s = time.monotonic() - t0
    code = _code_cells(case.lab)
    setup = code[0][0]
    check_src = f'check("{case.lab}", "{case.exercise}")'
    [check] = [i for i, src in code if src.strip() == check_src]

    setup_s = nb.run_cell(setup, SETUP_TIMEOUT)
    check_s = nb.run_cell(check, CHECK_TIMEOUT)
    shot = nb.screenshot(check, artifacts / f"{case.lab}-{case.exercise}-{'pass' if case.solution else 'fail'}.png")
    nb.page_screenshot(artifacts / f"{case.lab}-page.png")

    cards = nb.cards(check)
    text = nb.outputs_text(check)
    assert len(cards) == 1, f"{case.lab}: expected one result card for {case.exercise}, saw {cards}\n{text[-2000:]}"
    mark = "✓" if case.solution else "✗"
    assert cards[0].startswith(f"{mark} {case.exercise}"), f"{case.lab}: card {cards[0]!r}, expected {mark}"
    assert "not passed yet" not in text and "points, passed>" not in text, "the result's repr is shown too"
    assert not nb.tracebacks(), f"{case.lab}: a traceback is shown: {nb.tracebacks()}"
    if case.lab == "05-network-policy":
        _assert_coloured_matrix(nb, check, text)

    # Mermaid: every ```mermaid fence of the markdown is an SVG diagram on the page (JupyterLab 4 renders them).
    fences = _mermaid_fences(case.lab)
    try:
        nb.wait(f"{fences} Mermaid diagrams as SVG", lambda: nb.mermaid_svgs() >= fences, 60)
    except pytest.fail.Exception:
        nb.page_screenshot(artifacts / f"{case.lab}-mermaid.png")
        pytest.fail(f"{case.lab}: {nb.mermaid_svgs()} of {fences} Mermaid diagrams render as SVG; JupyterLab "
                    f"shows: {nb.mermaid_errors() or 'no error (still rendering)'}", pytrace=False)
    print(f"{case.lab}: open {open_s:.1f} s, "
          f"setup {setup_s:.1f} s, check {case.exercise} {check_s:.1f} s; {fences} Mermaid SVGs; {shot.name}")


def _assert_coloured_matrix(nb: Notebook, check: int, text: str) -> None:
    """Lab 05's failing check shows the reachability matrices side by side, cells coloured by outcome."""
    found = nb.js("""
        const root = arguments[0];
        const captions = Array.from(root.querySelectorAll('.k8slab table caption')).map(c => c.innerText.trim());
        const bg = sel => Array.from(root.querySelectorAll(sel)).map(td => getComputedStyle(td).backgroundColor);
        return {captions: captions, allowed: bg('.k8slab td.allowed'), blocked: bg('.k8slab td.blocked'),
                wrong: root.querySelectorAll('.k8slab td.wrong').length};""", nb.cell(check))
    assert {"expected", "observed"} <= set(found["captions"]) or \
        {"expected", "static"} <= set(found["captions"]), f"matrix captions: {found['captions']}\n{text[-2000:]}"
    assert found["allowed"] and set(found["allowed"]) == {ALLOWED_BG}, found
    assert found["blocked"] and set(found["blocked"]) == {BLOCKED_BG}, found
    assert found["wrong"] > 0, "the cells that differ from the target are outlined"
