"""nbconvert preprocessors that make nbgrader's feedback show what the notebook showed.

`MermaidImages` (generate_feedback) swaps Mermaid fences for the diagrams rendered at build time
(graders.course.mermaid). Locked markdown cells are restored from the gradebook at autograde, so the diagram
text, and so its hash, is exactly what the build saw. `PrecomputedChecks` and `RestoreSources` (safe autograding
only) make `check(...)` cells show the verified result instead of grading again.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

from graders.course.mermaid import MERMAID_FENCE, diagram_key, outline


class MermaidImages(Preprocessor):
    """nbconvert preprocessor (used by nbgrader generate_feedback): Mermaid fences -> pre-rendered images."""

    enabled = Bool(True).tag(config=True)  # nbconvert registers preprocessors disabled by default

    image_dir = Unicode("", help="directory holding <key>.png / <key>.txt written by `k8slab course build`").tag(config=True)

    def _replacement(self, body: str) -> str:
        key = diagram_key(body)
        folder = Path(self.image_dir) if self.image_dir else None
        if folder is not None and (folder / f"{key}.png").exists():
            data = base64.b64encode((folder / f"{key}.png").read_bytes()).decode()
            return f'<img alt="diagram" style="max-width:100%" src="data:image/png;base64,{data}"/>'
        text = (folder / f"{key}.txt").read_text(encoding="utf-8") if folder and (folder / f"{key}.txt").exists() \
            else outline(body)
        return f'<pre class="k8slab-diagram" title="diagram (text outline)">{html.escape(text)}</pre>'

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "mermaid" in cell.source:
            cell.source = MERMAID_FENCE.sub(lambda m: self._replacement(m["body"]), cell.source)
        return cell, resources


_CHECK = re.compile(r"(?<![\w.])(?:graders\.)?check\(")
_ORIGINAL = "k8slab_original_source"


class PrecomputedChecks(Preprocessor):
    """Safe autograding only (graders.course.harness puts it before Execute): locked cells that call
    `check(...)` show the verified result instead of grading again (`graders.course.runtime.show`)."""

    enabled = Bool(True).tag(config=True)  # nbconvert registers preprocessors disabled by default

    def preprocess_cell(self, cell, resources, index):
        locked = cell.metadata.get("nbgrader", {}).get("locked", False)
        if cell.cell_type == "code" and locked and _CHECK.search(cell.source):
            cell.metadata[_ORIGINAL] = cell.source
            cell.source = "from graders.course.runtime import show as _k8slab_show\n" + \
                _CHECK.sub("_k8slab_show(", cell.source)
        return cell, resources


class RestoreSources(Preprocessor):
    """After Execute: put back the source PrecomputedChecks replaced, so feedback shows the cell as written."""

    enabled = Bool(True).tag(config=True)  # nbconvert registers preprocessors disabled by default

    def preprocess_cell(self, cell, resources, index):
        original = cell.metadata.pop(_ORIGINAL, None)
        if original is not None:
            cell.source = original
        return cell, resources
