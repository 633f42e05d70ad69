"""What a learner sees in a notebook: one progress line updated in place, then only the result card (no text copy,
no Out[] repr); exploration helpers that are bounded and say why a premise is not met; `make lab` as root."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fakelab import LAB_ID
from graders import notebook, status
from graders.status import NotebookStatus

REPO = Path(__file__).resolve().parents[2]


class FakeHandle:
    """Stands in for IPython's DisplayHandle: remembers every bundle it showed."""

    def __init__(self, bundle: dict) -> None:
        self.shown = [bundle]

    def update(self, bundle: dict) -> None:
        self.shown.append(bundle)

    @property
    def now(self) -> dict:
        return self.shown[-1]


class FakeDisplay:
    """Stands in for `display(bundle, raw=True, display_id=True)`: each call is one output of the cell."""

    def __init__(self) -> None:
        self.outputs: list[FakeHandle] = []

    def __call__(self, bundle: dict) -> FakeHandle:
        self.outputs.append(FakeHandle(bundle))
        return self.outputs[-1]


@pytest.fixture
def kernel(monkeypatch):
    """check() believes it runs in a Jupyter kernel at execution count 7; outputs go to a FakeDisplay."""
    shown = FakeDisplay()
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    monkeypatch.setattr(status, "publish", shown)
    monkeypatch.setattr(notebook, "_execution_count", lambda: 7)
    direct = []
    monkeypatch.setattr(notebook, "_display_html", lambda html, fallback: direct.append(html))
    shown.direct = direct
    return shown


# ----------------------------------------------------------------------------------------------- progress line

def test_progress_is_one_output_updated_in_place_each_step_once():
    shown = FakeDisplay()
    clock = iter([0, 0.5, 1, 13, 14, 15]).__next__
    progress = NotebookStatus(display=shown, clock=clock)
    progress.start("hello-pod: checking manifests")
    progress.end(True)
    progress.start("hello-pod: apply and wait until ready")
    progress.end(True)
    progress.start("hello-pod: live traffic")
    assert len(shown.outputs) == 1, "one output, updated in place"
    line = shown.outputs[0].now["text/plain"]
    assert line == "hello-pod: ✓ checking manifests · ✓ apply and wait until ready (12 s) · … live traffic"
    assert line.count("checking manifests") == 1
    html = shown.outputs[0].now["text/html"]
    assert "animation:k8slab-spin" in html and "\n" not in html.split("</style>", 1)[1]
    progress.end(False, "1 cell differs")
    assert shown.outputs[0].now["text/plain"].endswith("✗ live traffic (1 cell differs)")
    progress.finish("<div>CARD</div>", "card")
    assert shown.outputs[0].now == {"text/html": "<div>CARD</div>", "text/plain": "card"}
    assert len(shown.outputs) == 1


def test_progress_of_a_whole_lab_stays_one_line():
    shown = FakeDisplay()
    progress = NotebookStatus(display=shown, clock=lambda: 0)
    for exercise, ok in (("a", True), ("b", False)):
        progress.start(f"{exercise}: checking manifests")
        progress.end(ok)
    progress.start("c: admission (server-side dry-run)")
    assert shown.outputs[0].now["text/plain"] == "✓ a ✗ b | c: … admission (server-side dry-run)"


def test_progress_says_where_an_interrupted_run_stopped():
    shown = FakeDisplay()
    progress = NotebookStatus(display=shown, clock=lambda: 0)
    progress.start("hello-pod: waiting for another grading run on kind-k8slab")
    progress.start("hello-pod: live traffic")  # a start without end replaces the line's running step
    progress.stopped()
    assert shown.outputs[0].now["text/plain"] == "hello-pod: ✗ live traffic (interrupted)"


# ----------------------------------------------------------------------------------------------- check() in a kernel

def test_check_in_a_notebook_has_one_output_the_card(course, fake_connect, kernel):
    result = notebook.check(LAB_ID, "hello-pod")
    assert len(kernel.outputs) == 1 and kernel.direct == [], "progress line and card are the same output"
    handle = kernel.outputs[0]
    assert len(handle.shown) >= 3, "the steps updated the line before the card replaced it"
    plain = [b["text/plain"] for b in handle.shown[:-1]]
    assert any("… checking manifests" in p for p in plain) and any("✓ checking manifests" in p for p in plain)
    card = handle.now
    assert card["text/html"].startswith('<div class="k8slab">') and "selects no pod" in card["text/html"]
    assert "✗ hello-pod" in card["text/plain"], "front ends without HTML get the text, in the same output"
    # the return value: usable, and not echoed again as this cell's Out[]
    assert not result.passed and result.score == 0 and result.points == 2
    assert result.exercise("hello-pod").failed_step
    assert result.card == card["text/html"] and result.shown_in == 7
    result._ipython_display_()
    assert kernel.direct == [], "no second card in the same cell"


def test_a_check_result_shown_in_a_later_cell_shows_its_card(course, fake_connect, kernel, monkeypatch):
    result = notebook.check(LAB_ID, "hello-pod")
    monkeypatch.setattr(notebook, "_execution_count", lambda: 8)
    result._ipython_display_()
    assert kernel.direct == [result.card]
    assert repr(result) == "<99-fake: 0/2 points, not passed yet>"  # plain Python keeps the one-line repr


def test_check_without_a_cluster_in_a_notebook_shows_only_the_diagnosis(course, no_cluster, kernel):
    assert notebook.check(LAB_ID, "hello-pod") is None
    assert len(kernel.outputs) == 1 and "make cluster" in kernel.outputs[0].now["text/html"]
    assert "Traceback" not in kernel.outputs[0].now["text/html"]


def test_check_interrupted_in_a_notebook_does_not_leave_a_spinner(course, kernel, monkeypatch):
    from graders import engine

    def grade(*args, status, **kwargs):
        status.start("hello-pod: live traffic")
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "grade", grade)
    with pytest.raises(KeyboardInterrupt):
        notebook.check(LAB_ID, "hello-pod")
    assert kernel.outputs[0].now["text/plain"] == "hello-pod: ✗ live traffic (interrupted)"


def test_check_outside_a_notebook_prints_the_text_once(course, fake_connect, capsys):
    result = notebook.check(LAB_ID, "hello-pod")
    out = capsys.readouterr().out
    assert out.count("✗ hello-pod — ") == 1 and "<div" not in out
    assert result.shown_in is None


@pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("ipykernel", "nbclient")),
                    reason="no Jupyter kernel installed")
def test_in_a_real_kernel_a_check_cell_outputs_only_the_card(course, tmp_path):
    """The real thing: nbclient runs a notebook whose check() grades against the fake cluster. The cell's
    saved outputs (what JupyterLab, VS Code and nbgrader's feedback show) are one display_data: the card."""
    import nbclient
    import nbformat

    setup = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import graders.cluster
        from fakelab import fake_module
        from fakes import FakeCluster
        sys.modules["graders.labs.lab99_fake"] = fake_module()
        shared = FakeCluster()
        graders.cluster.Cluster.connect = staticmethod(lambda *a, **k: shared)
        from graders.notebook import check, run
        """)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup),
                nbformat.v4.new_code_cell(f'check("{LAB_ID}", "hello-pod")'),
                nbformat.v4.new_code_cell(f'result = check("{LAB_ID}", "hello-pod")\nresult.passed'),
                nbformat.v4.new_code_cell("result"),
                nbformat.v4.new_code_cell('run(sys.executable, "-c", "print(42)")'),
                nbformat.v4.new_code_cell('from graders.nbgrader import feedback\n'
                                          'print("selects no pod" in feedback(result.exercise("hello-pod")))')]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    check_cell, assigned, later, ran, feedback = nb.cells[1:]
    assert [o.output_type for o in check_cell.outputs] == ["display_data"]
    assert check_cell.outputs[0].data["text/html"].startswith('<div class="k8slab">')
    assert "selects no pod" in check_cell.outputs[0].data["text/html"]
    assert "✗ hello-pod" in check_cell.outputs[0].data["text/plain"], "the text goes with the card, not beside it"
    assert [o.output_type for o in assigned.outputs] == ["display_data", "execute_result"]
    assert assigned.outputs[1].data["text/plain"] == "False"
    assert [o.output_type for o in later.outputs] == ["display_data"], "shown again when asked in a later cell"
    assert [(o.output_type, o.get("text")) for o in ran.outputs] == [("stream", "42\n")], "run() echoes no Out[]"
    # rich, left to itself, displays text in a kernel instead of returning it: nbgrader's feedback would be empty
    assert [(o.output_type, o.get("text")) for o in feedback.outputs] == [("stream", "True\n")]


# ----------------------------------------------------------------------------------------------- exploration helpers

PY = sys.executable


def test_run_prints_output_and_returns_it_without_an_out_echo(capsys):
    out = notebook.run(PY, "-c", "print('hello')")
    assert out == "hello\n" and out.returncode == 0
    assert capsys.readouterr().out == "hello\n"
    assert out._ipython_display_() is None  # a bare run(...) cell shows the output once, not again as Out[]


def test_a_command_that_hangs_is_stopped_by_its_own_timeout(capsys):
    started = time.monotonic()
    out = notebook.run(PY, "-c", "import time; time.sleep(30)", timeout=0.5,
                       missing="nothing answers: with the starter files the Service selects no pod")
    assert time.monotonic() - started < 5
    text = capsys.readouterr().out
    assert "no answer within 0.5 s" in text and "the Service selects no pod" in text
    assert "Traceback" not in text and "TimeoutExpired" not in text
    assert out == "" and out.returncode == -1


def test_a_failing_command_says_so_in_one_sentence(capsys):
    notebook.run(PY, "-c", "import sys; sys.exit(3)")
    assert capsys.readouterr().out.strip() == f"({Path(PY).name} exited with 3)"
    notebook.run("/nonexistent/kubectl", "get", "pods")
    assert "kubectl get: could not start /nonexistent/kubectl" in capsys.readouterr().out


def test_a_command_with_no_output_says_so(capsys):
    notebook.run(PY, "-c", "pass")
    assert "printed nothing" in capsys.readouterr().out


def test_run_waits_until_the_premise_is_met(tmp_path, capsys):
    """kube-proxy writes its rules a moment after the Service exists: the cell retries instead of printing
    "(no output)"."""
    counter = tmp_path / "n"
    script = (f"import pathlib; p = pathlib.Path({str(counter)!r}); n = int(p.read_text() or 0) if p.exists() else 0; "
              "p.write_text(str(n + 1)); print('KUBE-SVC rule' if n >= 2 else '', end='')")
    out = notebook.run(PY, "-c", script, wait=5)
    assert out == "KUBE-SVC rule" and counter.read_text() == "3"
    assert capsys.readouterr().out.splitlines()[-1] == "KUBE-SVC rule"


def test_run_wait_gives_up_with_the_reason(capsys):
    started = time.monotonic()
    out = notebook.run(PY, "-c", "print('0 endpoints')", wait=0.6, until=lambda text: "10.244." in text,
                       missing="the Service selects no ready pod yet (exercise 1 fixes that)")
    assert time.monotonic() - started < 3
    text = capsys.readouterr().out
    assert (f"✗ an answer from {Path(PY).name}: still missing after 0.6 s — the Service selects no ready pod yet"
            in text)
    assert "0 endpoints" in text, "what it did see is shown too"
    assert out == "0 endpoints\n"


def test_wait_for_returns_the_value_or_none_with_a_sentence(capsys):
    calls = []

    def appears_third_time():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection refused")
        return "10.96.0.10" if len(calls) >= 3 else ""

    assert notebook.wait_for("the ClusterIP", appears_third_time, timeout=5, interval=0.05) == "10.96.0.10"
    assert notebook.wait_for("a pod", lambda: None, timeout=0.2, interval=0.05, missing="none was created") is None
    assert "✗ a pod: still missing after 0.2 s — none was created" in capsys.readouterr().out

    def broken():
        raise RuntimeError("no such host")

    assert notebook.wait_for("DNS", broken, timeout=0.1, interval=0.05) is None
    assert "last error: no such host" in capsys.readouterr().out


def test_wait_for_in_a_notebook_updates_one_line(monkeypatch):
    shown = FakeDisplay()
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    monkeypatch.setattr(status, "publish", shown)
    values = iter(["", "", "ready"])
    assert notebook.wait_for("the endpoints", lambda: next(values), timeout=5, interval=0.01) == "ready"
    assert len(shown.outputs) == 1
    assert [b["text/plain"].split(" (")[0] for b in shown.outputs[0].shown] == \
        ["… waiting for the endpoints"] * 2 + ["✓ the endpoints"]


def test_under_the_autograder_nothing_runs_and_nothing_waits(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    started = time.monotonic()
    assert notebook.run(PY, "-c", "print(1)", wait=10) == ""
    assert notebook.wait_for("x", lambda: None, timeout=10) is None
    assert time.monotonic() - started < 1
    assert "(not run by the autograder)" in capsys.readouterr().out


def test_describe_names_the_tool_not_the_flags():
    assert notebook._describe(("kubectl", "--context", "kind-k8slab", "exec", "k8slab-client", "--", "curl", "-s",
                               "-m", "3", "http://api-service/hostname")) == "kubectl exec … curl"
    assert notebook._describe(("docker", "exec", "k8slab-worker", "sh", "-c", "iptables-save")) == "docker exec … sh"


# ----------------------------------------------------------------------------------------------- make lab as root

def _root_flag(tmp_path: Path, uid: int) -> str:
    fake = tmp_path / f"uid{uid}"
    fake.mkdir()
    (fake / "id").write_text(f"#!/bin/sh\n[ \"$1\" = -u ] && echo {uid} || exec /usr/bin/id \"$@\"\n")
    (fake / "id").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["make", "-s", "--no-print-directory", "--eval",
                           'k8slab-show-root-flag: ; @echo "[$(JUPYTER_ROOT_FLAG)]"', "k8slab-show-root-flag"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(not Path("/usr/bin/make").exists() and not Path("/bin/make").exists(), reason="no make")
def test_make_lab_passes_allow_root_only_to_root(tmp_path):
    assert _root_flag(tmp_path, 0) == "[--allow-root]"
    assert _root_flag(tmp_path, 1000) == "[]"
    recipe = (REPO / "Makefile").read_text()
    assert "jupyter lab --notebook-dir=labs $(JUPYTER_ROOT_FLAG)" in recipe


def test_a_command_that_states_its_timeout_gets_it_plus_grace():
    assert notebook._own_timeout(("kubectl", "wait", "--for=condition=Ready", "pod/x", "--timeout=90s")) == 100
    assert notebook._own_timeout(("kubectl", "rollout", "status", "sts/web", "--timeout=2m")) == 130
    assert notebook._own_timeout(("kubectl", "get", "pods")) == notebook.DEFAULT_TIMEOUT == 30


def test_checking_a_whole_lab_is_still_one_output(course, fake_connect, kernel):
    result = notebook.check(LAB_ID)
    assert len(kernel.outputs) == 1 and [e.exercise for e in result.exercises] == ["hello-pod", "expose"]
    lines = [b["text/plain"] for b in kernel.outputs[0].shown[:-1]]
    assert all("\n" not in line for line in lines)
    assert any(line.startswith(("✓ hello-pod | expose:", "✗ hello-pod | expose:")) for line in lines), lines
    assert "expose" in kernel.outputs[0].now["text/html"] and "hello-pod" in kernel.outputs[0].now["text/html"]


def test_the_card_reads_the_same_on_every_front_end():
    """JupyterLab, VS Code notebooks and nbgrader's feedback HTML show a text/html output as it is: the card must
    need nothing from its host -- no script, nothing fetched, and its own background, since a dark theme (VS
    Code's default) keeps a dark output background under the card's dark text."""
    import re

    from graders import render
    from graders.model import ExerciseResult, LabResult, StepResult

    failed = ExerciseResult(lab="00-orientation", exercise="hello-pod", title="Hello", points=1.0, score=0.0,
                            passed=False, message="selects no pod", hint="look at the labels",
                            steps=(StepResult("static", False, "selects no pod"),))
    html = render.to_html(LabResult(lab="00-orientation", exercises=(failed,)))
    assert "<script" not in html.lower() and not re.search(r"(src|href)\s*=", html) and "url(" not in html
    card = re.search(r"\.k8slab\{([^}]*)\}", html).group(1).replace("\n", "")
    rules = dict(rule.split(":", 1) for rule in card.split(";") if rule)
    assert rules["color"] == "#1f2328" and rules["background"] == "#ffffff"
    assert "selects no pod" in html
