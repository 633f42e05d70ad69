"""Progressive hints: ``hint(lab, exercise)`` in a notebook reveals one more level per call.

Level 1 names the concept, level 2 the field or the place to look, the last level the answer. The texts live in
``labs/<lab>/hints.yaml`` (exercise id -> list of Markdown strings); a level whose text is exactly ``live`` asks
the lab's grader module for a hint computed from the cluster (``live_hint(exercise_id) -> str``, optional).
How many levels a learner has seen is kept per lab in ``labs/<lab>/.hints-seen.json`` — never in the exercise
folders, whose files are the learner's submission.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from graders import paths
from graders.autograding import autograding
from graders.errors import K8sLabError, SpecError, UsageError

HINTS_FILE = "hints.yaml"
STATE_FILE = ".hints-seen.json"
LIVE = "live"  # a level with exactly this text is computed by the lab module's live_hint(exercise_id)


def hints_path(lab_id: str) -> Path:
    return paths.lab_dir(lab_id) / HINTS_FILE


def state_path(lab_id: str) -> Path:
    return paths.lab_dir(lab_id) / STATE_FILE


# ---------------------------------------------------------------------- the texts
def load_hints(lab_id: str) -> dict[str, tuple[str, ...]]:
    """Every exercise's levels from labs/<lab>/hints.yaml. UsageError for an unknown lab, SpecError for a
    malformed file (naming it and the entry)."""
    from graders import spec

    spec.load_lab(lab_id)  # an unknown lab is the caller's mistake: its message lists the labs there are
    file = hints_path(lab_id)
    if not file.is_file():
        raise UsageError(f"lab {lab_id} has no hints yet ({paths.relative(file)} does not exist)")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"cannot read {paths.relative(file)}: {error}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{paths.relative(file)} must map exercise ids to lists of hint texts")
    hints: dict[str, tuple[str, ...]] = {}
    for exercise, levels in raw.items():
        if not (isinstance(levels, list) and levels and all(isinstance(t, str) and t.strip() for t in levels)):
            raise SpecError(f"{paths.relative(file)}: {exercise!r} must be a non-empty list of non-empty strings")
        hints[str(exercise)] = tuple(levels)
    return hints


def levels_of(lab_id: str, exercise: str) -> tuple[str, ...]:
    hints = load_hints(lab_id)
    if exercise in hints:
        return hints[exercise]
    from graders import spec

    known = [e.id for e in spec.load_lab(lab_id).exercises]
    if exercise in known:
        raise UsageError(f"lab {lab_id} has no hints for exercise {exercise!r} yet")
    raise UsageError(f"lab {lab_id} has no exercise {exercise!r} (exercises: {', '.join(known)})")


# ---------------------------------------------------------------------- what the learner has seen
def read_seen(lab_id: str) -> dict[str, int]:
    """Levels seen per exercise; a missing, unreadable or corrupt file counts as nothing seen."""
    try:
        raw = json.loads(state_path(lab_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and type(v) is int and v >= 0}


def write_seen(lab_id: str, seen: dict[str, int]) -> None:
    """Atomically (a half-written file would lose every exercise's progress). A read-only lab folder is not an
    error: the learner still gets the hint, only the next call starts over."""
    target = state_path(lab_id)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".hints-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(seen, handle, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------------- one hint
@dataclass(frozen=True)
class Hint:
    lab: str
    exercise: str
    level: int      # 1-based
    total: int
    text: str       # Markdown
    repeated: bool  # the learner had already seen every level: this is the last one again
    live: bool = False  # computed by the lab's live_hint(): plain lines, each kept on its own line

    @property
    def kind(self) -> str:
        if self.level == self.total:
            return "the answer"
        return "the idea" if self.level == 1 else "where to look"

    @property
    def title(self) -> str:
        return f"Hint {self.level} of {self.total} for {self.lab} / {self.exercise} — {self.kind}"

    @property
    def footer(self) -> str:
        if self.repeated:
            return "You have seen every hint for this exercise: this is the last one again."
        if self.level < self.total:
            return f"Call hint(\"{self.lab}\", \"{self.exercise}\") again for the next level."
        return "That was the last level."

    def to_text(self) -> str:
        return f"{self.title}\n\n{self.text.strip()}\n\n({self.footer})"

    def to_html(self) -> str:
        from markdown_it import MarkdownIt  # rich's dependency: present wherever the graders run

        body = MarkdownIt("commonmark", {"html": False, "breaks": self.live}).render(self.text)
        return (f'<div style="border-left:4px solid #3b82f6;padding:0.3em 1em;margin:0.5em 0">'
                f"<p><strong>{html.escape(self.title)}</strong></p>{body}"
                f'<p style="color:#666"><em>{html.escape(self.footer)}</em></p></div>')


def next_hint(lab_id: str, exercise: str) -> Hint:
    """The next level the learner has not seen (the last one again once all are seen), recorded as seen."""
    levels = levels_of(lab_id, exercise)
    seen = read_seen(lab_id)
    already = seen.get(exercise, 0)
    level = min(already + 1, len(levels))
    seen[exercise] = max(already, level)
    write_seen(lab_id, seen)
    text = levels[level - 1]
    live = text.strip() == LIVE
    if live:
        text = live_text(lab_id, exercise)
    return Hint(lab_id, exercise, level, len(levels), text, repeated=already >= len(levels), live=live)


def live_text(lab_id: str, exercise: str) -> str:
    """The lab module's live_hint(exercise), or one line saying why there is none."""
    from graders import labs

    try:
        function = getattr(labs.load(lab_id), "live_hint", None)
        if function is None:
            return f"No live hint for {lab_id} yet: the grader module has no live_hint(). Run the check: its " \
                   f"message names what is wrong."
        text = function(exercise)
    except K8sLabError as error:
        return f"The live hint could not be computed: {_one_line(error)}"
    except Exception as error:  # noqa: BLE001 — a bug in the hint must not cost the learner a traceback
        return f"The live hint failed (a bug in the grader, not in your files): {type(error).__name__}: {error}"
    if not isinstance(text, str) or not text.strip():
        return f"The live hint for {exercise} came back empty: run the check instead."
    return text


def _one_line(error: K8sLabError) -> str:
    line = " ".join(error.message.split())
    return f"{line} — {error.hint}" if error.hint else line


# ---------------------------------------------------------------------- front ends
def hint(lab: str, exercise: str) -> None:
    """Show the next hint for one exercise: HTML in Jupyter, plain text elsewhere; nothing under the autograder.

    Each call reveals one more level (the idea, where to look, the answer); after the last it repeats it."""
    if autograding():  # a graded run must not print hints into the student's feedback
        return None
    try:
        shown = next_hint(lab, exercise)
    except K8sLabError as error:
        _display(f'<p style="color:#b91c1c">{html.escape(str(error))}</p>', fallback=str(error))
        return None
    _display(shown.to_html(), fallback=shown.to_text())
    return None


def _display(markup: str, *, fallback: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        print(fallback)
        return
    if get_ipython() is None:  # plain python: HTML would print as a repr
        print(fallback)
        return
    display(HTML(markup))


def register(subparsers) -> None:
    """`k8slab hint <lab> <exercise>`: the same levels, the same progress, as plain text."""
    parser = subparsers.add_parser("hint", help="show the next hint for an exercise (one more level per call)",
                                   description="Level 1: the idea; level 2: where to look; last: the answer.")
    parser.add_argument("lab", help="lab id, e.g. 00-orientation")
    parser.add_argument("exercise", help="exercise id, e.g. hello-pod")
    parser.set_defaults(func=_cmd)


def _cmd(args) -> int:
    print(next_hint(args.lab, args.exercise).to_text())
    return 0
