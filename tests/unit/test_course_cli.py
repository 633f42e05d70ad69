"""`python -m graders.course COMMAND` (what mk/course.mk runs) and `k8slab course COMMAND` take the same commands."""
from __future__ import annotations

import subprocess
import sys

import pytest

from graders.course import cli as course_cli
from graders.cli import main as k8slab_main

COMMANDS = ("build", "check-release", "autograde", "answers", "mark", "grades")


@pytest.mark.parametrize("command", COMMANDS)
def test_module_entry_point_accepts_every_course_command(command, capsys):
    with pytest.raises(SystemExit) as done:
        course_cli.main([command, "--help"])
    assert done.value.code == 0
    assert f"python -m graders.course {command}" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_k8slab_course_accepts_the_same_commands(command, capsys):
    with pytest.raises(SystemExit) as done:
        k8slab_main(["course", command, "--help"])
    assert done.value.code == 0
    assert f"k8slab course {command}" in capsys.readouterr().out


def test_make_course_target_command_line_works(tmp_path):
    """mk/course.mk's `course` target, as a subprocess: builds a course directory from the repository's labs."""
    done = subprocess.run([sys.executable, "-m", "graders.course", "build", str(tmp_path / "course"),
                           "--lab", "00-orientation", "--no-diagrams"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "course" / "source" / "00-orientation" / "00-orientation.ipynb").is_file()


def test_check_cells_with_options_show_the_verified_record_under_safe_autograde(tmp_path, monkeypatch):
    """Lab 05's locked cells call check(..., keep=True); the safe autograder rewrites check( to show(, which must
    accept the same arguments (a TypeError there would put a traceback into the student's feedback)."""
    import json

    from graders.autograding import RESULTS_ENV
    from graders.course import runtime

    records = tmp_path / "results.json"
    records.write_text(json.dumps({"05-network-policy/seed-diagram": {"score": 3.0, "html": "<p>ok</p>"}}))
    monkeypatch.setenv(RESULTS_ENV, str(records))
    shown = []
    monkeypatch.setattr(runtime, "_show", shown.append)
    assert runtime.show("05-network-policy", "seed-diagram", keep=True) is None
    runtime.show("05-network-policy", "seed-diagram", "some/dir", verbose=True)
    assert [r["html"] for r in shown] == ["<p>ok</p>", "<p>ok</p>"]
