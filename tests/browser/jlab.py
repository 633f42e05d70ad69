"""Driving JupyterLab 4 in the browser the way a person does: open a notebook, click into a cell, Shift+Enter, or
Run > Run All Cells; then read what the page shows. Every wait is bounded."""
from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from browser_helpers import REPO, jupyter, server_env

DONE_PROMPT = re.compile(r"^\[\d+\]:?$")
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# JupyterLab's own settings for the test server: no news or update checks (they would leave loopback).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def copy_course(root: Path, solutions: dict[str, list[str]] | None = None) -> Path:
    """labs/, solutions/ and environment/ copied to ``root`` (the learner's notebooks included, as `make lab` would
    serve them); for {lab: [exercise, ...]} the starter files are replaced by the reference solution."""
    from graders import spec

    for folder in ("labs", "solutions", "environment"):
        shutil.copytree(REPO / folder, root / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", ".hints-seen.json"))
    for lab_id, exercises in (solutions or {}).items():
        lab = spec.load_lab(lab_id, REPO)
        for exercise in exercises:
            ex = lab.exercise(exercise)
            shutil.copytree(ex.solution_dir, root / "labs" / lab_id / exercise, dirs_exist_ok=True)
    return root


@contextmanager
def jupyterlab(course: Path, work: Path, log: Path):
    """`make lab`'s command (jupyter lab --notebook-dir=labs, --allow-root as root) on a test port with a token."""
    settings = work / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    args = [f"--notebook-dir={course / 'labs'}", f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={work / 'lab-workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    env = server_env({"K8SLAB_ROOT": str(course), "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime")})
    with jupyter("lab", course, args, env, log) as server:
        yield server


class Notebook:
    def __init__(self, driver, name: str) -> None:
        self.driver, self.name = driver, name

    # --------------------------------------------------------------------------------------------- page
    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what: str, predicate, timeout: float, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: {what} not seen within {timeout:.0f} s", pytrace=False)
            time.sleep(interval)

    def open(self, server, rel: str, cells: int, timeout: float = 120) -> None:
        """Open the notebook and wait (bounded) until all its ``cells`` are on the page and the kernel is idle."""
        self.driver.get(server.url(f"lab/tree/{rel}"))
        self.wait(f"the notebook's {cells} cells", lambda: self.js(
            f"return document.querySelectorAll('{PANEL} .jp-Notebook .jp-Cell').length") == cells, timeout)
        self.wait_kernel_idle(timeout)

    def kernel_status(self) -> str:
        return self.js(f"""
            const el = document.querySelector('{PANEL} .jp-Notebook-ExecutionIndicator');
            return el ? (el.getAttribute('data-status') || '') : '';""") or ""

    def wait_kernel_idle(self, timeout: float) -> None:
        self.wait("an idle kernel", lambda: self.kernel_status() == "idle", timeout)

    def cells(self):
        return self.driver.find_elements("css selector", f"{PANEL} .jp-Notebook .jp-Cell")

    def cell(self, index: int):
        return self.cells()[index]

    def prompt(self, index: int) -> str:
        return self.js("""const p = arguments[0].querySelector('.jp-InputPrompt');
                          return p ? p.textContent.trim() : '';""", self.cell(index))

    def outputs_text(self, index: int) -> str:
        return self.js("""return Array.from(arguments[0].querySelectorAll('.jp-OutputArea-output'))
                              .map(o => o.innerText).join('\\n');""", self.cell(index))

    # --------------------------------------------------------------------------------------------- running
    def run_cell(self, index: int, timeout: float) -> float:
        """Click into the cell's editor, press Shift+Enter, wait (bounded) until its prompt shows a number."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        cell = self.cell(index)
        self.js("arguments[0].scrollIntoView({block: 'center'});", cell)
        editor = cell.find_element("css selector", ".jp-InputArea-editor")
        editor.click()
        start = time.monotonic()
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        self.wait(f"cell {index} finishing (prompt {self.prompt(index)!r})",
                  lambda: DONE_PROMPT.match(self.prompt(index)), timeout)
        return time.monotonic() - start

    def run_all(self, per_cell_timeout: float, total_timeout: float) -> dict[int, float]:
        """Run > Run All Cells from the menu bar; returns seconds per code cell (each bounded by
        ``per_cell_timeout``: a cell still running after that is a hang)."""
        self.click_menu("Run", "runmenu:run-all")
        code = [i for i, c in enumerate(self.cells()) if "jp-CodeCell" in c.get_attribute("class")]
        timings: dict[int, float] = {}
        deadline = time.monotonic() + total_timeout
        for index in code:
            start = time.monotonic()
            while not DONE_PROMPT.match(self.prompt(index)):
                if self.tracebacks():  # Run All stops at an error: the cells after it would never run
                    pytest.fail(f"{self.name}: a cell raised: {self.tracebacks()[0]}", pytrace=False)
                now = time.monotonic()
                if now - start > per_cell_timeout or now > deadline:
                    pytest.fail(f"{self.name}: cell {index} still running after {now - start:.0f} s (a hang); "
                                f"source: {self.cell_source(index)[:200]!r}\noutput so far:\n"
                                f"{self.outputs_text(index)[-1500:]}", pytrace=False)
                time.sleep(0.5)
            timings[index] = time.monotonic() - start
        return timings

    def click_menu(self, menu: str, command: str) -> None:
        items = self.driver.find_elements("css selector", ".lm-MenuBar-item")
        [item] = [i for i in items if i.text.strip() == menu]
        item.click()
        entry = self.wait(f"menu entry {command}", lambda: self.driver.find_elements(
            "css selector", f".lm-Menu-item[data-command='{command}']"), 10)
        entry[0].click()

    def cell_source(self, index: int) -> str:
        return self.js("""const e = arguments[0].querySelector('.cm-content');
                          return e ? e.innerText : '';""", self.cell(index))

    # --------------------------------------------------------------------------------------------- reading
    def cards(self, index: int) -> list[str]:
        """Heads of the result cards (.k8slab .ex .head) the cell's output shows: '✓ hello-pod — ...'."""
        return self.js("""return Array.from(arguments[0].querySelectorAll('.jp-OutputArea-output .k8slab .ex .head'))
                              .map(h => h.innerText.trim());""", self.cell(index))

    def tracebacks(self) -> list[str]:
        """Outputs anywhere in the notebook that show a Python traceback (an error output or the word)."""
        return self.js(f"""
            return Array.from(document.querySelectorAll('{PANEL} .jp-OutputArea-output'))
              .filter(o => /Traceback|most recent call last/.test(o.innerText))
              .map(o => o.innerText.slice(0, 600));""")

    def mermaid_svgs(self) -> int:
        """Mermaid diagrams JupyterLab rendered as SVG in the markdown cells (JupyterLab 4 shows each as an
        <img> of an SVG data URL in .jp-RenderedMermaid; counted once the image has loaded with a size)."""
        return self.js(f"""
            return Array.from(document.querySelectorAll('{PANEL} .jp-MarkdownCell .jp-RenderedMermaid'))
              .filter(d => !d.classList.contains('jp-mod-warning'))
              .filter(d => d.querySelector('svg') || Array.from(d.querySelectorAll('img')).some(
                  i => i.src.startsWith('data:image/svg+xml') && i.complete && i.naturalWidth > 0)).length;""")

    def mermaid_errors(self) -> list[str]:
        """The errors JupyterLab shows for diagrams Mermaid could not parse."""
        return self.js(f"""
            return Array.from(document.querySelectorAll('{PANEL} .jp-RenderedMermaid.jp-mod-warning'))
              .map(d => d.innerText.slice(0, 400));""")

    def screenshot(self, index: int, path: Path) -> Path:
        """The cell (input and outputs); the window grows for the shot when the cell is taller than it."""
        cell = self.cell(index)
        size = self.driver.get_window_size()
        height = int(self.js("return arguments[0].getBoundingClientRect().height", cell))
        if height + 250 > size["height"]:
            self.driver.set_window_size(size["width"], min(height + 400, 4000))
        try:
            self.js("arguments[0].scrollIntoView({block: 'start'});", cell)
            time.sleep(0.5)
            path.parent.mkdir(parents=True, exist_ok=True)
            cell.screenshot(str(path))
        finally:
            self.driver.set_window_size(size["width"], size["height"])
        return path

    def page_screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path
