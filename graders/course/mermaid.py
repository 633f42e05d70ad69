"""Mermaid diagrams for nbgrader's feedback, which cannot render them (JupyterLab renders ```mermaid fences).

At course build time every diagram is rendered once (`MermaidRenderer`: @mermaid-js/mermaid-cli with a system
Chromium when installed — see `make -f mk/course.mk course-tools` — otherwise a text outline of the graph),
stored as k8slab/mermaid/<sha256 of the diagram>.{png,txt}; graders.course.feedback.MermaidImages swaps each
fence for that image (or the outline) at `nbgrader generate_feedback`.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from graders import paths

# Matches ```mermaid fences (JupyterLab renders these) and MyST ```{mermaid} directives.
MERMAID_FENCE = re.compile(r"^```+\s*\{?mermaid\}?[^\n]*\n(?P<body>.*?)^```+\s*$", re.M | re.S)
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def tools_dir() -> Path:
    """Where `make -f mk/course.mk course-tools` installs mermaid-cli."""
    return paths.cache_dir() / "mermaid-cli"


def diagram_key(body: str) -> str:
    return hashlib.sha256(body.strip().encode("utf-8")).hexdigest()[:16]


def _mmdc() -> str | None:
    found = shutil.which("mmdc")
    if found:
        return found
    local = tools_dir() / "node_modules" / ".bin" / "mmdc"
    return str(local) if local.exists() else None


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class MermaidRenderer:
    """Renders Mermaid source to PNG (mermaid-cli + Chromium) or, failing that, a text outline."""

    def __init__(self) -> None:
        self.mmdc = _mmdc()
        self.chromium = _chromium()
        self.name = "mmdc (PNG)" if self.mmdc and self.chromium else "text fallback (install: make -f mk/course.mk course-tools)"
        self.errors: list[str] = []

    def render_many(self, bodies: list[str], out_dir: Path) -> int:
        """Render every diagram (text outline always; PNG with one browser start for all). Returns PNGs made."""
        out_dir.mkdir(parents=True, exist_ok=True)
        todo: dict[str, str] = {}
        for body in bodies:
            key = diagram_key(body)
            (out_dir / f"{key}.txt").write_text(outline(body), encoding="utf-8")
            if not (out_dir / f"{key}.png").exists():
                todo[key] = body
        if not todo or not (self.mmdc and self.chromium):
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "diagrams.md"
            src.write_text("\n\n".join(f"```mermaid\n{body.strip()}\n```" for body in todo.values()) + "\n",
                           encoding="utf-8")
            cfg = Path(tmp) / "puppeteer.json"
            cfg.write_text(json.dumps({"executablePath": self.chromium,
                                       "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}))
            try:
                proc = subprocess.run([self.mmdc, "-i", str(src), "-o", str(Path(tmp) / "out.md"), "-e", "png",
                                       "-p", str(cfg), "-b", "white", "-s", "2", "-q"],
                                      capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.errors.append(f"mmdc: {exc}")
                return 0
            if proc.returncode != 0:
                self.errors.append(f"mmdc failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            made = 0
            for index, key in enumerate(todo, start=1):
                png = Path(tmp) / f"out-{index}.png"
                if png.exists():
                    shutil.copy(png, out_dir / f"{key}.png")
                    made += 1
            return made


_EDGE = re.compile(r"\s*(?P<a>[A-Za-z0-9_]+(?:\s*[\[\(\{][^\]\)\}]*[\]\)\}]+)?)\s*"
                   r"(?P<arrow>-->|---|-\.->|==>|--[ox]|->>|-->>|-\.-)\s*(?:\|(?P<label>[^|]*)\|\s*)?"
                   r"(?P<b>[A-Za-z0-9_]+(?:\s*[\[\(\{][^\]\)\}]*[\]\)\}]+)?)")


def _clean(label: str) -> str:
    return re.sub(r"<br\s*/?>", " ", label).strip().strip('"')


def outline(body: str) -> str:
    """A text outline of a Mermaid graph: one line per edge with node labels ("Client -> Service: ClusterIP")."""
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in body.splitlines():
        for token in re.finditer(r"([A-Za-z0-9_]+)\s*(\[\[?|\(\(?|\{)([^\]\)\}]*)", line):
            labels.setdefault(token.group(1), _clean(token.group(3)))
        match = _EDGE.match(line)
        if match:
            a = re.match(r"[A-Za-z0-9_]+", match["a"]).group(0)
            b = re.match(r"[A-Za-z0-9_]+", match["b"]).group(0)
            edges.append((a, b, _clean(match["label"] or "")))
    if not edges:
        return body.strip()
    lines = []
    for a, b, label in edges:
        arrow = f" --{label}--> " if label else " --> "
        lines.append(f"{labels.get(a) or a}{arrow}{labels.get(b) or b}")
    return "\n".join(lines)
