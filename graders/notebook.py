"""``check()`` for lab notebooks: grade the learner's files and show the result as HTML in the cell."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from graders.autograding import autograding  # lab notebooks import it from here
from graders.errors import K8sLabError
from graders.model import LabResult


@dataclasses.dataclass(frozen=True, repr=False)
class CheckResult(LabResult):
    """A LabResult whose repr is one line, so the cell's Out[] does not repeat the HTML above it."""

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "not passed yet"
        return f"<{self.lab}: {self.score:g}/{self.points:g} points, {verdict}>"


def check(lab: str, exercise: str | None = None, submission: Path | str | None = None, *,
          verbose: bool = False, keep: bool = False) -> CheckResult | None:
    """Grade labs/<lab>/<exercise>/ (or ``submission``) on the cluster and display the result.

    Returns the result; returns None after displaying the diagnosis when grading could not run at all
    (no cluster, unknown exercise) — a notebook cell should explain, not raise a traceback.
    """
    from graders import engine, render
    from graders.status import ConsoleStatus

    try:
        # "empty": the next check() reuses the namespaces and the grader's running probe pods (a re-check in seconds)
        result = engine.grade(lab, exercise, submission, keep=keep, verbose=verbose, teardown="empty",
                              status=ConsoleStatus(_console()))
    except K8sLabError as error:
        _display_html(render.error_html(error), fallback=str(error))
        return None
    _display_html(render.to_html(result, verbose=verbose), fallback=render.to_text(result, color=False))
    return CheckResult(**{f.name: getattr(result, f.name) for f in dataclasses.fields(LabResult)})


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


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _display_html(html: str, *, fallback: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        print(fallback)
        return
    if get_ipython() is None:  # plain python: HTML would print as a repr
        print(fallback)
        return
    display(HTML(html))
