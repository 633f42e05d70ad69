"""Start/end status lines for the steps of a grading run (kind's ``Status.Start`` / ``End``).

The engine reports progress through a ``Status``; front ends choose: a rich spinner and tick lines in a
terminal, nothing at all under nbgrader or in JSON mode.
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
    """A spinner while a step runs, then one ✓/✗ line (rich). In a notebook a "…" line replaces the spinner;
    in a log (not a terminal) only the ✓/✗ lines appear."""

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
