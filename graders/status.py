"""Start/end status lines for the steps of a grading run (kind's ``Status.Start`` / ``End``).

The engine reports progress through a ``Status``; front ends choose: a rich spinner and tick lines in a
terminal, one line updated in place in a notebook (``NotebookStatus``), nothing at all under nbgrader or in JSON
mode.
"""
from __future__ import annotations

from typing import Protocol


class Status(Protocol):
    def start(self, text: str) -> None: ...

    def end(self, ok: bool, detail: str = "") -> None: ...


class QuietStatus:
    """Says nothing (nbgrader, --json, unit tests)."""

    def start(self, text: str) -> None:
        pass

    def end(self, ok: bool, detail: str = "") -> None:
        pass


class RecordingStatus:
    """Keeps (text, ok) pairs; tests read them to check which steps ran."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bool | None]] = []
        self._current = ""

    def start(self, text: str) -> None:
        self._current = text
        self.events.append((text, None))

    def end(self, ok: bool, detail: str = "") -> None:
        self.events.append((self._current, ok))


class ConsoleStatus:
    """A spinner while a step runs, then one ✓/✗ line (rich). In a log (not a terminal) only the ✓/✗ lines
    appear. Notebooks use ``NotebookStatus``; should a notebook get this one anyway, a "…" line stands in for the
    spinner."""

    def __init__(self, console=None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._text = ""
        self._spinner = None

    def start(self, text: str) -> None:
        self._stop()
        self._text = text
        if self.console.is_terminal:
            self._spinner = self.console.status(text)
            self._spinner.start()
        elif self.console.is_jupyter:  # no spinner in a notebook: say what we wait for (a wait can take a minute)
            self.console.print(f" … {text}", highlight=False, style="dim")

    def end(self, ok: bool, detail: str = "") -> None:
        self._stop()
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        suffix = f" [dim]{detail}[/dim]" if detail else ""
        self.console.print(f" {mark} {self._text}{suffix}", highlight=False)

    def _stop(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None


class NotebookStatus:
    """One progress line in a notebook cell, updated in place while the steps run (an IPython display handle),
    so every step appears once: ``hello-pod: ✓ checking manifests · ✓ admission · ◌ apply and wait …``.

    ``finish(html, text)`` turns that same line into the result card: the cell ends with one output, the card.
    ``display`` publishes a MIME bundle and returns a handle with ``update(bundle)`` (IPython's
    ``display(bundle, raw=True, display_id=True)`` by default; tests pass a fake). Exercises finished earlier in
    the same run shrink to one mark each, so the line stays one line for a whole lab.
    """

    def __init__(self, display=None, clock=None) -> None:
        import time

        self._display = display or publish
        self._clock = clock or time.monotonic
        self._handle = None
        self._steps: list[tuple[str, str, bool, str, float]] = []  # (exercise, step, ok, detail, seconds)
        self._current: tuple[str, str, float] | None = None       # (exercise, step, started)

    def start(self, text: str) -> None:
        exercise, _, step = text.rpartition(": ")
        self._current = (exercise, step, self._clock())
        self._show(self._html(), self._text())

    def end(self, ok: bool, detail: str = "") -> None:
        if self._current is None:
            return
        exercise, step, started = self._current
        self._steps.append((exercise, step, ok, detail, self._clock() - started))
        self._current = None
        self._show(self._html(), self._text())

    def stopped(self, why: str = "interrupted") -> None:
        """Grading ended without a result (Ctrl-C, a crash): the line says where it stopped, not "running"."""
        if self._current is not None:
            self.end(False, why)

    def finish(self, html_card: str, text: str) -> None:
        """Replace the progress line by the result (the cell's only output from now on)."""
        self._show(html_card, text)

    # -- rendering -------------------------------------------------------------------------------------------

    def _show(self, html_text: str, text: str) -> None:
        bundle = {"text/html": html_text, "text/plain": text}
        if self._handle is None:
            self._handle = self._display(bundle)
        else:
            self._handle.update(bundle)

    def _exercise_now(self) -> str:
        if self._current is not None:
            return self._current[0]
        return self._steps[-1][0] if self._steps else ""

    def _parts(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
        """(earlier exercises as (mark, id)), (this exercise's steps as (mark, text, note)); mark "…" = running."""
        now = self._exercise_now()
        earlier: dict[str, bool] = {}
        steps: list[tuple[str, str, str]] = []
        for exercise, step, ok, detail, seconds in self._steps:
            if exercise != now:
                earlier[exercise] = earlier.get(exercise, True) and ok
                continue
            note = detail if not ok and detail else (f"{seconds:.0f} s" if seconds >= 2 else "")
            steps.append(("✓" if ok else "✗", step, note))
        if self._current is not None:
            steps.append(("…", self._current[1], ""))
        return [("✓" if ok else "✗", ex) for ex, ok in earlier.items()], steps

    def _text(self) -> str:
        earlier, steps = self._parts()
        head = " ".join(f"{mark} {ex}" for mark, ex in earlier)
        body = " · ".join(f"{mark} {step}" + (f" ({note})" if note else "") for mark, step, note in steps)
        now = self._exercise_now()
        return " | ".join(part for part in (head, f"{now}: {body}" if now else body) if part)

    def _html(self) -> str:
        from html import escape

        earlier, steps = self._parts()
        colour = {"✓": "#1a7f37", "✗": "#cf222e"}
        items = []
        for mark, ex in earlier:
            items.append(f'<span style="color:{colour[mark]}">{mark}</span> {escape(ex)}')
        now = self._exercise_now()
        rendered = []
        for mark, step, note in steps:
            if mark == "…":  # a CSS-only spinner: the line looks alive during a one-minute wait, no thread needed
                sign = ('<span style="display:inline-block;animation:k8slab-spin 1s linear infinite">◌</span>')
            else:
                sign = f'<span style="color:{colour[mark]}">{mark}</span>'
            extra = f' <span style="color:#57606a">({escape(note)})</span>' if note else ""
            rendered.append(f"{sign} {escape(step)}{extra}")
        current = (f"<b>{escape(now)}</b>: " if now else "") + " · ".join(rendered)
        line = " &nbsp;|&nbsp; ".join(part for part in (" ".join(items), current) if part)
        return ('<div class="k8slab-progress" style="font-family:system-ui,sans-serif;font-size:13px;'
                'color:#1f2328;background:#ffffff;padding:1px 6px;border-radius:4px;white-space:nowrap;'
                'overflow:hidden;text-overflow:ellipsis">'
                '<style>@keyframes k8slab-spin{to{transform:rotate(360deg)}}</style>' + line + "</div>")


def publish(bundle: dict):
    """Publish a MIME bundle with a display id; the returned handle's ``update(bundle)`` replaces it in place."""
    from IPython.display import display

    return _RawHandle(display(bundle, raw=True, display_id=True))


class _RawHandle:
    def __init__(self, handle) -> None:
        self._handle = handle

    def update(self, bundle: dict) -> None:
        self._handle.update(bundle, raw=True)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, VS Code, nbclient): there a display handle updates in place.
    A terminal IPython or plain Python gets the console status instead."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
