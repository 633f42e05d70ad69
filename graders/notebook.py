"""What lab notebooks call: ``check()`` grades the learner's files and shows the result card in the cell;
``run()`` and ``wait_for()`` make exploration cells bounded — every command has its own timeout, and a cell whose
premise is not met yet waits a few seconds, then says so instead of hanging or printing "(no output)".

In a notebook a ``check(...)`` cell has exactly one output: a progress line updated in place while the steps
run (graders.status.NotebookStatus), which then becomes the HTML result card. The returned ``CheckResult`` does
not show the card a second time as the cell's Out[]; shown later (``result`` alone in a cell) it shows the card.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from graders.autograding import autograding  # lab notebooks import it from here
from graders.errors import K8sLabError
from graders.model import LabResult
from graders.status import NotebookStatus, in_notebook

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, repr=False)
class CheckResult(LabResult):
    """A LabResult that knows its card. ``passed``, ``score``, ``points`` and ``exercise(id)`` work as on any
    LabResult; in plain Python its repr is one line; in a notebook it displays as the card, except as the Out[]
    of the cell whose check() already showed that card (which would repeat it)."""

    card: str = dataclasses.field(default="", compare=False)       # the HTML card check() displayed
    card_text: str = dataclasses.field(default="", compare=False)  # the same as plain text
    shown_in: int | None = dataclasses.field(default=None, compare=False)  # execution count of that cell

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "not passed yet"
        return f"<{self.lab}: {self.score:g}/{self.points:g} points, {verdict}>"

    def _ipython_display_(self) -> None:
        if self.shown_in is not None and self.shown_in == _execution_count():
            return  # this cell's output is the card already
        from graders import render

        html = self.card or render.to_html(self)
        _display_html(html, fallback=self.card_text or render.to_text(self, color=False))


def check(lab: str, exercise: str | None = None, submission: Path | str | None = None, *,
          verbose: bool = False, keep: bool = False) -> CheckResult | None:
    """Grade labs/<lab>/<exercise>/ (or ``submission``) on the cluster and display the result.

    Returns the result; returns None after displaying the diagnosis when grading could not run at all
    (no cluster, unknown exercise) — a notebook cell should explain, not raise a traceback.
    """
    from graders import engine, render
    from graders.status import ConsoleStatus

    progress = NotebookStatus() if in_notebook() else None
    try:
        # "empty": the next check() reuses the namespaces and the grader's running probe pods (a re-check in seconds)
        result = engine.grade(lab, exercise, submission, keep=keep, verbose=verbose, teardown="empty",
                              status=progress or ConsoleStatus(_console()))
    except K8sLabError as error:
        _show(progress, render.error_html(error), str(error))
        return None
    except BaseException:  # Ctrl-C or a crash: the progress line must not keep saying "running"
        if progress is not None:
            progress.stopped()
        raise
    html = render.to_html(result, verbose=verbose)
    text = render.to_text(result, verbose=verbose, color=False)
    _show(progress, html, text)
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(LabResult)}
    return CheckResult(**fields, card=html, card_text=text, shown_in=_execution_count())


def _show(progress: NotebookStatus | None, html: str, text: str) -> None:
    if progress is not None:
        progress.finish(html, text)  # the progress line becomes the card: one output per check
    else:
        _display_html(html, fallback=text)


# ------------------------------------------------------------------------------------------- exploration cells

class Printed(str):
    """What run() returns: the command's stdout, already printed. A notebook does not echo it as Out[]."""

    returncode: int = 0

    def _ipython_display_(self) -> None:
        pass


DEFAULT_TIMEOUT = 30.0  # seconds; a command that states its own --timeout=… gets that plus _GRACE


def run(*argv: str, timeout: float | None = None, capture: bool = False, quiet: bool = False, wait: float = 0.0,
        until: Callable[[str], object] | None = None, missing: str = "") -> Printed:
    """Run a command (no shell, so the same on Linux, macOS and Windows) for at most ``timeout`` seconds and
    print what it printed; return its stdout. Never raises: a failing command prints why, in one sentence.
    The default timeout is 30 s, or the command's own ``--timeout=90s`` (kubectl wait, rollout status) + 10 s.

    ``wait`` (seconds): repeat the command until its output shows what the cell is about — ``until(stdout)``
    is true, by default "it succeeded and printed something" — for a Service that kube-proxy has not synced
    yet, a pod still starting. ``missing`` says what it means when that never happens ("with the starter
    files the Service selects no pod"). ``capture=True`` or ``quiet=True``: print nothing, only return.
    Network commands inside should carry their own short timeout too (``curl -m 3``, ``nc -w 2``).
    """
    if autograding():  # the autograder runs the learner's files in its own namespaces, not these experiments
        if not (capture or quiet):
            print("(not run by the autograder)", *argv)
        return Printed("")
    silent = capture or quiet
    timeout = timeout if timeout is not None else _own_timeout(argv)
    if wait > 0:
        accept = until or (lambda out: out.strip())
        seen: list[tuple[int | None, str, str]] = []

        def attempt():
            seen.append(_execute(argv, timeout))
            rc, out, _ = seen[-1]
            return rc == 0 and accept(out)

        ready = wait_for(f"an answer from {_describe(argv)}", attempt, timeout=wait, missing=missing, quiet=silent,
                         interval=min(1.0, max(0.1, wait / 5)))
        rc, out, err = seen[-1] if seen else (None, "", "")
        if not silent and (ready or out.strip() or err.strip()):  # wait_for() has already said what is missing
            print(_report(argv, rc, out, err, missing if ready else "", quiet_on_empty=not ready))
    else:
        rc, out, err = _execute(argv, timeout)
        if not silent:
            print(_report(argv, rc, out, err, missing))
    printed = Printed(out if rc == 0 or not capture else "")
    printed.returncode = -1 if rc is None else rc
    return printed


_GRACE = 10.0
_TIMEOUT_FLAG = re.compile(r"--(?:timeout|request-timeout)=(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def _own_timeout(argv) -> float:
    """The command's own --timeout=… (kubectl's units) plus a grace period, else DEFAULT_TIMEOUT."""
    for arg in argv:
        match = _TIMEOUT_FLAG.match(arg)
        if match:
            scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2] or "s"]
            return float(match[1]) * scale + _GRACE
    return DEFAULT_TIMEOUT


def wait_for(description: str, predicate: Callable[[], T], *, timeout: float = 20.0, interval: float = 1.0,
             missing: str = "", quiet: bool = False) -> T | None:
    """Wait at most ``timeout`` seconds until ``predicate()`` returns something truthy — what the next lines
    of the cell show exists — and return it. While waiting, one line says what for (updated in place in a
    notebook). When it never comes true: one sentence naming ``description`` and ``missing`` (the likely
    reason), and None — the cell goes on instead of hanging. An exception from ``predicate`` counts as "not
    yet"; the last one is named. Under the autograder nothing runs and None is returned at once."""
    if autograding():
        if not quiet:
            print("(not run by the autograder) waiting for", description)
        return None
    line = _WaitLine(description, quiet)
    started = time.monotonic()
    error: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 — a probe that fails is "not there yet"; reported if it lasts
            value, error = None, exc
        waited = time.monotonic() - started
        if value:
            line.done(waited)
            return value
        if waited + interval > timeout:
            break
        line.waiting(waited)
        time.sleep(interval)
    reason = missing or (f"last error: {error}" if error else "")
    line.failed(timeout, reason)
    return None


class _WaitLine:
    """The one line wait_for() shows: in a notebook updated in place; elsewhere only the outcome, printed."""

    def __init__(self, description: str, quiet: bool) -> None:
        self.description = description
        self.quiet = quiet
        self.handle = None

    def _say(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if in_notebook():
            from graders.status import publish

            bundle = {"text/plain": text}
            if self.handle is None:
                self.handle = publish(bundle)
            else:
                self.handle.update(bundle)
        elif final:
            print(text)

    def waiting(self, seconds: float) -> None:
        self._say(f"… waiting for {self.description} ({seconds:.0f} s)", final=False)

    def done(self, seconds: float) -> None:
        if seconds >= 1 or self.handle is not None:  # nothing to say when it was there at once
            self._say(f"✓ {self.description} (after {seconds:.0f} s)", final=True)

    def failed(self, timeout: float, reason: str) -> None:
        text = f"✗ {self.description}: still missing after {timeout:g} s"
        self._say(text + (f" — {reason}" if reason else ""), final=True)


def _execute(argv: tuple[str, ...], timeout: float) -> tuple[int | None, str, str]:
    """(returncode, stdout, stderr); returncode None when the command could not start or ran out of time."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return None, _as_text(exc.stdout), f"no answer within {timeout:g} s"
    except OSError as exc:
        return None, "", f"could not start {argv[0]}: {exc.strerror or exc}"
    return done.returncode, done.stdout, done.stderr


def _report(argv, rc: int | None, out: str, err: str, missing: str, quiet_on_empty: bool = False) -> str:
    """What a run() prints: the command's output, else one sentence saying why there is none."""
    text = (out + err).rstrip()
    if rc == 0:
        if text or quiet_on_empty:
            return text
        sentence = f"({_describe(argv)} printed nothing)"
    elif rc is None:  # did not start, or ran out of time: err holds our sentence
        sentence = (out.rstrip() + "\n" if out.strip() else "") + f"{_describe(argv)}: {err}"
    else:
        sentence = text if err.strip() else (text + "\n" if text else "") + f"({_describe(argv)} exited with {rc})"
    return sentence + (f" — {missing}" if missing else "")


_SUBCOMMANDS = {"exec", "get", "apply", "run", "wait", "delete", "create", "describe", "logs", "ps", "inspect",
                "rollout", "label", "port-forward", "debug"}
_TOOLS = {"curl", "nslookup", "dig", "nc", "sh", "ip", "iptables-save", "nft", "wget", "ping", "tcpdump", "cat"}


def _describe(argv) -> str:
    """A short name of the command for messages: "kubectl exec … curl", "docker exec … sh"."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return "the command"
    head = Path(words[0]).name
    if head in ("kubectl", "docker"):
        sub = next((w for w in words[1:] if w in _SUBCOMMANDS), "")
        tail = next((Path(w).name for w in words[2:] if Path(w).name in _TOOLS), "")
        return " ".join(part for part in (head, sub, "…" if tail else "", tail) if part)
    return head


def _as_text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# ------------------------------------------------------------------------------------------------- autograder

def skip_shell_under_autograder() -> None:
    """While the autograder executes the notebook, make `!command` lines print what they would run: its kernel
    has no docker and no rights outside the submission's namespaces, so they could only print errors into the
    student's feedback. Outside the autograder this does nothing."""
    if not autograding():
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.system = lambda command: print("(not run by the autograder)", command)


# ------------------------------------------------------------------------------------------------- display

def _console():
    from rich.console import Console

    return Console(highlight=False)


def _execution_count() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


def _display_html(html: str, *, fallback: str) -> None:
    """HTML in a notebook (with the text alongside for front ends without HTML); the text anywhere else."""
    if not in_notebook():  # plain python or a terminal IPython: HTML would print as a repr
        print(fallback)
        return
    from IPython.display import display

    display({"text/html": html, "text/plain": fallback}, raw=True)
