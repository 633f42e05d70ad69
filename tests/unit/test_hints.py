"""Progressive hints (graders/hints.py): one more level per call, progress kept per lab, and the hint texts of
every lab consistent with its lab.yaml, its solutions and its notebook."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from fakelab import LAB_ID, write
from graders import hints, notebook_build, paths, spec
from graders.errors import ClusterUnreachable, UsageError

FAKE_HINTS = """
hello-pod:
  - "idea: labels"
  - "where: `metadata.labels`"
  - "answer: `app: web`"
expose:
  - one
  - two
  - live
"""

# Exercises whose hints may exist before lab.yaml lists them: added in parallel, so the hints land first.
# Once lab.yaml lists one, the normal checks apply to it (>= 3 levels, no literal answer in levels 1-2).
PENDING_EXERCISES: dict[tuple[str, str], str] = {}
# Exercises allowed to have no hints (none today): each entry needs its reason.
NO_HINTS_NEEDED: dict[tuple[str, str], str] = {}


@pytest.fixture
def fake(course: Path) -> Path:
    write(course / "labs" / LAB_ID / "hints.yaml", FAKE_HINTS)
    return course


def _state(root: Path) -> Path:
    return root / "labs" / LAB_ID / hints.STATE_FILE


# ---------------------------------------------------------------------- progression and state
def test_each_call_reveals_one_more_level_then_repeats_the_last(fake):
    shown = [hints.next_hint(LAB_ID, "hello-pod") for _ in range(5)]
    assert [h.level for h in shown] == [1, 2, 3, 3, 3]
    assert [h.repeated for h in shown] == [False, False, False, True, True]
    assert shown[0].text == "idea: labels" and shown[2].text == "answer: `app: web`"
    assert [h.kind for h in shown[:3]] == ["the idea", "where to look", "the answer"]
    assert "again for the next level" in shown[0].to_text()
    assert "last one again" in shown[3].to_text() and "last one again" not in shown[2].to_text()


def test_progress_is_kept_per_exercise_in_the_lab_folder_only(fake):
    exercise_dirs = {p: p.read_bytes() for p in (fake / "labs" / LAB_ID).rglob("*") if p.is_file()
                     and p.parent.name in ("hello-pod", "expose")}
    hints.next_hint(LAB_ID, "hello-pod")
    hints.next_hint(LAB_ID, "hello-pod")
    assert json.loads(_state(fake).read_text()) == {"hello-pod": 2}
    assert hints.next_hint(LAB_ID, "expose").level == 1  # another exercise starts at level 1
    assert hints.next_hint(LAB_ID, "hello-pod").level == 3  # and does not disturb this one
    assert {p: p.read_bytes() for p in exercise_dirs} == exercise_dirs  # the learner's files are untouched
    assert not [p for p in (fake / "labs" / LAB_ID).rglob("*.tmp")]  # no temporary file left behind


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '"text"', '{"hello-pod": "two", "expose": -3}', "",
                                     '{"hello-pod": true}'])
def test_a_corrupt_state_file_counts_as_nothing_seen(fake, content):
    _state(fake).write_text(content)
    assert hints.next_hint(LAB_ID, "hello-pod").level == 1
    assert json.loads(_state(fake).read_text())["hello-pod"] == 1


def test_a_missing_state_file_starts_at_level_one_and_a_read_only_folder_still_gives_the_hint(fake, monkeypatch):
    assert not _state(fake).exists()
    monkeypatch.setattr(hints, "state_path", lambda _lab: fake / "no-such-dir" / hints.STATE_FILE)
    assert hints.next_hint(LAB_ID, "hello-pod").level == 1
    assert hints.next_hint(LAB_ID, "hello-pod").level == 1  # nothing could be saved: it starts over, no error


# ---------------------------------------------------------------------- unknown ids and bad files
def test_unknown_lab_and_exercise_are_usage_errors_naming_what_exists(fake):
    with pytest.raises(UsageError, match="unknown lab '98-nope'"):
        hints.next_hint("98-nope", "hello-pod")
    with pytest.raises(UsageError, match=r"has no exercise 'hello'.*hello-pod, expose"):
        hints.next_hint(LAB_ID, "hello")
    write(fake / "labs" / LAB_ID / "hints.yaml", "hello-pod: [a, b, c]\n")
    with pytest.raises(UsageError, match="no hints for exercise 'expose' yet"):
        hints.next_hint(LAB_ID, "expose")
    (fake / "labs" / LAB_ID / "hints.yaml").unlink()
    with pytest.raises(UsageError, match="has no hints yet"):
        hints.next_hint(LAB_ID, "hello-pod")


def test_hint_shows_the_error_in_one_message_without_a_traceback(fake, capsys):
    assert hints.hint("98-nope", "hello-pod") is None
    assert hints.hint(LAB_ID, "hello") is None
    out = capsys.readouterr()
    assert "unknown lab '98-nope'" in out.out and "has no exercise 'hello'" in out.out
    assert "Traceback" not in out.out + out.err


def test_a_malformed_hints_file_names_itself(fake):
    from graders.errors import SpecError

    write(fake / "labs" / LAB_ID / "hints.yaml", "hello-pod: [a, '']\n")
    with pytest.raises(SpecError, match="hints.yaml: 'hello-pod' must be a non-empty list"):
        hints.next_hint(LAB_ID, "hello-pod")


# ---------------------------------------------------------------------- live level
def _to_live_level(exercise: str = "expose") -> hints.Hint:
    hints.next_hint(LAB_ID, exercise)
    hints.next_hint(LAB_ID, exercise)
    return hints.next_hint(LAB_ID, exercise)


def test_live_level_without_live_hint_says_so_in_one_line(fake):
    shown = _to_live_level()
    assert shown.level == 3 and "has no live_hint()" in shown.text and "\n" not in shown.text


def test_live_level_asks_the_lab_module(fake, monkeypatch):
    module = sys.modules["graders.labs.lab99_fake"]
    asked = []
    monkeypatch.setattr(module, "live_hint", lambda exercise: asked.append(exercise) or "node: **w2**\nmtu: 1500",
                        raising=False)
    shown = _to_live_level()
    assert asked == ["expose"] and shown.text == "node: **w2**\nmtu: 1500"
    assert "<strong>w2</strong><br" in shown.to_html()  # a live hint's lines stay lines
    assert hints.next_hint(LAB_ID, "expose").repeated and asked == ["expose", "expose"]  # computed again


def test_live_level_turns_a_lab_error_into_one_line(fake, monkeypatch):
    def unreachable(exercise):
        raise ClusterUnreachable("nothing listens at https://127.0.0.1:6443\n(context kind-k8slab)",
                                 hint="create it with `make cluster`")

    monkeypatch.setattr(sys.modules["graders.labs.lab99_fake"], "live_hint", unreachable, raising=False)
    text = _to_live_level().text
    assert "nothing listens at https://127.0.0.1:6443 (context kind-k8slab)" in text
    assert "make cluster" in text and "\n" not in text


def test_live_level_survives_a_bug_in_live_hint(fake, monkeypatch):
    monkeypatch.setattr(sys.modules["graders.labs.lab99_fake"], "live_hint",
                        lambda exercise: 1 / 0, raising=False)
    assert "ZeroDivisionError" in _to_live_level().text


# ---------------------------------------------------------------------- front ends
def test_hint_prints_plain_text_outside_jupyter(fake, capsys):
    hints.hint(LAB_ID, "hello-pod")
    out = capsys.readouterr().out
    assert out.startswith(f"Hint 1 of 3 for {LAB_ID} / hello-pod") and "idea: labels" in out
    assert "<" not in out


def test_hint_is_silent_under_the_autograder_and_advances_nothing(fake, capsys, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert hints.hint(LAB_ID, "hello-pod") is None
    assert capsys.readouterr().out == "" and not _state(fake).exists()


def test_html_renders_markdown_and_escapes_the_title(fake):
    write(fake / "labs" / LAB_ID / "hints.yaml", "hello-pod: ['a <b> and `code`', two, three]\n")
    markup = hints.next_hint(LAB_ID, "hello-pod").to_html()
    assert "<code>code</code>" in markup and "<b>" not in markup and "<script" not in markup


def test_cli_hint_subcommand(fake, capsys):
    from graders import cli

    assert cli.main(["hint", LAB_ID, "hello-pod"]) == cli.EXIT_PASS
    assert "Hint 1 of 3" in capsys.readouterr().out
    assert cli.main(["hint", LAB_ID, "nope"]) == cli.EXIT_USAGE
    assert "has no exercise 'nope'" in capsys.readouterr().err


def test_hint_is_exported_like_check():
    from graders import check, hint

    assert hint is hints.hint and callable(check)


# ---------------------------------------------------------------------- every lab's hints
ROOT = paths.repo_root()
LABS = spec.all_labs(ROOT)


def _hints_of(lab_id: str) -> dict:
    file = ROOT / "labs" / lab_id / hints.HINTS_FILE
    return yaml.safe_load(file.read_text(encoding="utf-8")) if file.is_file() else {}


def _lines(directory: Path, names) -> set[str]:
    """Non-trivial lines of an exercise's files: stripped, inline comments cut, at least 12 characters."""
    lines = set()
    for name in names:
        file = directory / name
        if not file.is_file():
            continue
        for raw in file.read_text(encoding="utf-8").splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if len(line) >= 12 and not line.startswith("#"):
                lines.add(line)
    return lines


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_exercise_has_at_least_three_levels_and_no_hint_is_for_an_unknown_exercise(lab):
    levels = _hints_of(lab.id)
    exercises = {ex.id for ex in lab.exercises}
    for exercise in sorted(exercises):
        if (lab.id, exercise) in NO_HINTS_NEEDED:
            continue
        assert len(levels.get(exercise) or []) >= 3, f"labs/{lab.id}/hints.yaml: {exercise} needs >= 3 levels"
    unknown = set(levels) - exercises - {e for (lab_id, e) in PENDING_EXERCISES if lab_id == lab.id}
    assert not unknown, f"labs/{lab.id}/hints.yaml has hints for exercises lab.yaml lacks: {sorted(unknown)}"
    assert hints.load_hints(lab.id)  # the runtime loader accepts the file


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_levels_one_and_two_quote_no_line_of_the_solution(lab):
    levels = _hints_of(lab.id)
    for ex in lab.exercises:
        secret = _lines(ex.solution_dir, ex.files) - _lines(ex.starter_dir, ex.files)
        for number, text in enumerate((levels.get(ex.id) or [])[:2], start=1):
            leaked = sorted(line for line in secret if line in text)
            assert not leaked, f"labs/{lab.id}/hints.yaml: {ex.id} level {number} quotes the solution: {leaked}"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_commands_name_the_course_context_and_run_on_every_system(lab):
    """A learner with several clusters must not run a hint's kubectl against the wrong one, and a command must
    paste into PowerShell and cmd as well as into a POSIX shell: no pipes, no backslash line continuations."""
    for exercise, levels in _hints_of(lab.id).items():
        for number, text in enumerate(levels, start=1):
            where = f"labs/{lab.id}/hints.yaml: {exercise} level {number}"
            bare = re.findall(r"\bkubectl (?!--context kind-k8slab\b)\S+", text)
            assert not bare, f"{where}: kubectl without --context kind-k8slab: {bare}"
            code = re.findall(r"`([^`\n]*kubectl[^`\n]*)`", text)
            assert not [c for c in code if "|" in c], f"{where}: a pipe in a command: {code}"
            continued = [line for line in text.splitlines() if "kubectl" in line and line.rstrip().endswith("\\")]
            assert not continued, f"{where}: a backslash line continuation: {continued}"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_live_levels_only_where_the_lab_can_answer_them_or_say_why(lab):
    for exercise, levels in _hints_of(lab.id).items():
        assert all(text.strip() != hints.LIVE for text in levels[:2]), \
            f"{lab.id}/{exercise}: a live level must come after the idea and where to look"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_the_notebook_tells_about_each_hint_but_never_calls_it(lab):
    nb = notebook_build.render(lab.id)
    text = "\n".join(c.source for c in nb.cells)
    for ex in lab.exercises:
        if ex.id in _hints_of(lab.id):
            assert f'hint("{lab.id}", "{ex.id}")' in text, f"{lab.id}.md does not mention the hint for {ex.id}"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"^\s*hint\(", code, re.MULTILINE), "a notebook run top to bottom must not advance hints"
