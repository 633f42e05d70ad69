"""nbgrader pipeline without a cluster: course build, release without solutions, config, zip_collect, the scoring
contract of the generated test cells, feedback HTML, grades CSV, the monkey-patch defence and the sandbox kernel."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from pipeline_helpers import (DEMO, FIXTURE_ROOT, REPO, add_student_cell, build_course, hand_in, nbgrader, read_csv,
                      records_file, solution_files, zip_lab)
from graders import spec
from graders.course import answers, build, feedback, harness, mermaid, report, sandbox
from graders.course import cli as course_cli
from graders.course.release import release_leaks


def _real_labs_with_notebooks() -> list[str]:
    return [lab for lab in spec.lab_ids(REPO) if (REPO / "labs" / lab / f"{lab}.md").is_file()]


def _nb_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# ----------------------------------------------------------------------------------------------------- build
@pytest.mark.parametrize("root,lab", [(FIXTURE_ROOT, DEMO)] + [(REPO, lab) for lab in _real_labs_with_notebooks()])
def test_source_notebook_has_generated_nbgrader_metadata(tmp_path, root, lab):
    report = build_course(tmp_path / "course", root, [lab])
    lab_spec = spec.load_lab(lab, root)
    nb = nbformat.read(report.labs[0].notebook, as_version=4)
    nbformat.validate(nb)
    ids = [_nb_meta(c).get("grade_id") for c in nb.cells if _nb_meta(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
    assert all(_nb_meta(c).get("schema_version") == 3 for c in nb.cells if _nb_meta(c))
    tests = {_nb_meta(c)["grade_id"]: c for c in nb.cells if _nb_meta(c).get("grade") and c.cell_type == "code"}
    assert set(tests) == {f"{e.id}-test" for e in lab_spec.exercises}
    # Written answers: manually graded markdown cells carrying the reference answer (removed from the release).
    for cell in nb.cells:
        if cell.cell_type == "markdown" and _nb_meta(cell).get("grade"):
            meta = _nb_meta(cell)
            assert meta["solution"] is True and meta["locked"] is False and meta["points"] > 0
            reference = root / "solutions" / lab / "answers" / f"{meta['grade_id']}.md"
            assert cell.source == reference.read_text().strip()
    for exercise in lab_spec.exercises:
        cell = tests[f"{exercise.id}-test"]
        assert _nb_meta(cell)["points"] == exercise.points
        assert _nb_meta(cell)["locked"] is True
        hidden = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1]
        assert f"scored({lab!r}, {exercise.id!r}, {exercise.points:g})" in hidden
        answer = next(c for c in nb.cells if _nb_meta(c).get("grade_id") == f"{exercise.id}-answer")
        assert _nb_meta(answer)["solution"] is True and "### BEGIN SOLUTION" in answer.source
    # Every cell of the lab's own source is locked, except those tagged `scratch`.
    for cell in nb.cells:
        if "scratch" in cell.metadata.get("tags", []):
            assert not _nb_meta(cell)
        elif not _nb_meta(cell).get("solution"):
            assert _nb_meta(cell).get("locked") is True, cell.source[:80]
    course_dir = tmp_path / "course"
    for rel in build.student_files(lab_spec):
        assert (course_dir / "source" / lab / rel).read_bytes() == (root / "labs" / lab / rel).read_bytes()


def test_graded_cells_follow_the_exercise_check_cell(tmp_path):
    report = build_course(tmp_path / "course", FIXTURE_ROOT)
    sources = [c.source for c in nbformat.read(report.labs[0].notebook, as_version=4).cells]
    check_at = next(i for i, s in enumerate(sources) if s.startswith('check("99-demo", "hello")'))
    assert "Graded: Run a labelled pod" in sources[check_at + 1]
    assert "### BEGIN SOLUTION" in sources[check_at + 2] and "hello-solution-marker" in sources[check_at + 2]
    assert "scored('99-demo', 'hello', 2)" in sources[check_at + 3]
    # an exercise without a check cell gets its graded cells at the end
    assert "scored('99-demo', 'second', 3)" in sources[-1]


def test_nbgrader_config_values(tmp_path, demo_spec):
    build_course(tmp_path / "course", FIXTURE_ROOT)
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path / "course")).load_config()
    assert cfg.Execute.timeout >= 300
    assert cfg.CourseDirectory.course_id == "k8slab"
    assert cfg.CourseDirectory.db_url == f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}"
    assert cfg.Autograde.exclude_overwriting == {DEMO: ["hello/pod.yaml", "second/svc.yaml"]}
    assert {".ipynb", ".yaml", ".yml"} <= set(cfg.FileNameCollectorPlugin.valid_ext)
    assert "graders.course.feedback.MermaidImages" in cfg.GenerateFeedback.preprocessors
    assert "NotImplementedError" not in cfg.ClearSolutions.code_stub["python"]


# ----------------------------------------------------------------------------------------------------- release
def test_release_contains_no_solution(demo_course, demo_spec):
    release = demo_course / "release" / DEMO
    assert release_leaks(demo_course, DEMO, FIXTURE_ROOT) == []
    everything = "\n".join(p.read_text(errors="replace") for p in release.rglob("*") if p.is_file())
    for marker in ("hello-solution-marker", "--http-port=8080", "BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "scored("):
        assert marker not in everything
    # the starters are released as they are
    assert (release / "hello" / "pod.yaml").read_bytes() == (FIXTURE_ROOT / "labs" / DEMO / "hello" / "pod.yaml").read_bytes()
    # generate_assignment left nothing behind in source/
    assert sorted(p.relative_to(demo_course / "source") for p in (demo_course / "source").rglob("*") if p.is_file()) \
        == sorted(Path(DEMO) / r for r in [f"{DEMO}.ipynb", "hello/pod.yaml", "second/svc.yaml"])


def test_release_leak_check_catches_a_leak(demo_course):
    (demo_course / "release" / DEMO / "notes.yaml").write_text("    app: hello-solution-marker\n")
    assert release_leaks(demo_course, DEMO, FIXTURE_ROOT)


# ----------------------------------------------------------------------------------------------------- collect
def test_zip_collect_takes_notebooks_and_manifests(demo_course, demo_spec, tmp_path):
    archive = demo_course / "downloaded" / DEMO / "archive"
    archive.mkdir(parents=True)
    for student in ("alice", "bob"):
        work = tmp_path / student / DEMO
        shutil.copytree(demo_course / "release" / DEMO, work)
        zip_lab(work, archive / f"{student}.zip")
    nbgrader(demo_course, "zip_collect", DEMO)
    for student in ("alice", "bob"):
        got = demo_course / "submitted" / student / DEMO
        assert (got / f"{DEMO}.ipynb").is_file()
        assert (got / "hello" / "pod.yaml").is_file() and (got / "second" / "svc.yaml").is_file()


def test_exchange_release_fetch_submit_collect_for_two_fake_students(demo_course, demo_spec, tmp_path):
    """The JupyterHub path on one machine: the exchange names a student by their Unix user, or by `--student`
    (what docs/instructors.md tells an instructor to use for a dry run with fake students)."""
    exchange = tmp_path / "exchange"
    env = {"K8SLAB_EXCHANGE": str(exchange)}
    nbgrader(demo_course, "release_assignment", DEMO, extra_env=env)
    for student, files in (("alice", solution_files(demo_spec)), ("bob", {})):
        home = tmp_path / student
        home.mkdir()
        student_args = ("--course", "k8slab", f"--Exchange.root={exchange}", f"--Exchange.cache={home / 'cache'}")
        nbgrader(home, "fetch_assignment", DEMO, *student_args)
        for rel, src in files.items():
            shutil.copy(src, home / DEMO / rel)
        nbgrader(home, "submit", DEMO, *student_args, "--student", student)
    nbgrader(demo_course, "collect", DEMO, extra_env=env)
    for student in ("alice", "bob"):
        got = demo_course / "submitted" / student / DEMO
        assert (got / f"{DEMO}.ipynb").is_file() and (got / "timestamp.txt").is_file()
    solution = (demo_spec.exercises[0].solution_dir / "pod.yaml").read_text()
    assert (demo_course / "submitted" / "alice" / DEMO / "hello" / "pod.yaml").read_text() == solution
    assert (demo_course / "submitted" / "bob" / DEMO / "hello" / "pod.yaml").read_text() != solution


# ----------------------------------------------------------------------------------------------------- grading
RECORDS = {
    "alice": {f"{DEMO}/hello": {"score": 2.0, "html": "<p>hello: passed</p>", "message": "passed"},
              f"{DEMO}/second": {"score": 3.0, "html": "<p>second: passed</p>", "message": "passed"}},
    "bob": {f"{DEMO}/hello": {"score": 2.0, "html": "<p>hello: passed</p>", "message": "passed"},
            f"{DEMO}/second": {"score": 1.5, "html": "<table class='matrix'><td>X</td></table>",
                               "message": "Service k8slab-demo/hello selects no pod"}},
    "carol": {f"{DEMO}/hello": {"score": 0.0, "html": "", "message": "nothing accepts connections on port 8080"},
              f"{DEMO}/second": {"score": 0.0, "html": "", "message": "no Service named hello"}},
}


def test_test_cells_score_feedback_and_grades_csv(demo_course, demo_spec, tmp_path):
    """The generated test cells under nbgrader: full, partial (message on stdout) and zero (message, no
    traceback); the feedback HTML shows the messages and diagrams; the CSV has the totals."""
    for student, records in RECORDS.items():
        hand_in(demo_course, DEMO, student, solution_files(demo_spec))
        results = records_file(tmp_path / f"{student}.json", records)
        nbgrader(demo_course, "autograde", DEMO, "--student", student, extra_env={"K8SLAB_RESULTS_FILE": str(results)})
    nbgrader(demo_course, "generate_feedback", DEMO)
    html = {s: (demo_course / "feedback" / s / DEMO / f"{DEMO}.html").read_text() for s in RECORDS}
    assert "Partial credit (1.5/3): Service k8slab-demo/hello selects no pod" in html["bob"]
    assert "<table class='matrix'>" in html["bob"] or "<table class=\"matrix\">" in html["bob"]
    assert "nothing accepts connections on port 8080" in html["carol"]
    assert "course/runtime.py" not in html["carol"], "the feedback shows the message, not grader internals"
    for page in html.values():
        assert "cdnjs.cloudflare.com" not in page and "<script src=\"http" not in page, "feedback works offline"
        assert 'class="mermaid"' not in page
        assert 'alt="diagram"' in page or 'class="k8slab-diagram"' in page
    out = tmp_path / "grades.csv"
    nbgrader(demo_course, "export", "--to", str(out))
    rows = {r["student_id"]: r for r in read_csv(out)}
    assert {s: float(rows[s]["score"]) for s in RECORDS} == {"alice": 5.0, "bob": 3.5, "carol": 0.0}
    assert all(float(r["max_score"]) == 6.0 for r in rows.values())  # 5 autograded + 1 written answer
    # The class report (k8slab course report): the gradebook plus the verified records the harness keeps.
    for student, records in RECORDS.items():
        harness.record_verified(demo_course, demo_spec, student, records, harness.SubmissionResult(
            student, DEMO, points={e.id: e.points for e in demo_spec.exercises}))
    reports, page, data = report.write_report(demo_course, [DEMO], root=FIXTURE_ROOT)
    [lab] = reports
    assert lab.students == ("alice", "bob", "carol") and lab.totals == (5.0, 3.5, 0.0) and lab.points == 6
    hello, second = lab.exercises
    assert (hello.passed, hello.graded, second.passed) == (2, 3, 1)
    assert [(c.kind, c.id, c.students) for c in hello.causes] == [("mistake", "wrong-port", ("carol",))]
    assert [a.id for a in lab.answers] == ["hello-why"] and lab.answers[0].marked == (0.0, 0.0, 0.0)  # left blank
    assert "wrong-port" in page.read_text() and json.loads(data.read_text())["labs"][0]["lab"] == DEMO


def test_a_course_built_before_the_course_package_still_grades(demo_spec, tmp_path):
    """Courses released before graders/course/ existed keep the old import paths: the hidden test cells the
    gradebook restores say `from graders.course_runtime import scored`, and their nbgrader_config.py names
    `graders.course_feedback.MermaidImages`. Both compatibility modules must keep such a course grading."""
    course_dir = tmp_path / "course"
    build_course(course_dir, FIXTURE_ROOT)
    notebook = course_dir / "source" / DEMO / f"{DEMO}.ipynb"
    assert build.TEST_IMPORT in notebook.read_text()
    notebook.write_text(notebook.read_text().replace(build.TEST_IMPORT, "from graders.course_runtime import scored"))
    config = course_dir / "nbgrader_config.py"
    config.write_text(config.read_text().replace("graders.course.feedback.MermaidImages",
                                                 "graders.course_feedback.MermaidImages"))
    nbgrader(course_dir, "generate_assignment", DEMO)
    hand_in(course_dir, DEMO, "bob", solution_files(demo_spec))
    nbgrader(course_dir, "autograde", DEMO, "--student", "bob",
             extra_env={"K8SLAB_RESULTS_FILE": str(records_file(tmp_path / "bob.json", RECORDS["bob"]))})
    graded = (course_dir / "autograded" / "bob" / DEMO / f"{DEMO}.ipynb").read_text()
    assert "from graders.course_runtime import scored" in graded
    nbgrader(course_dir, "generate_feedback", DEMO)
    page = (course_dir / "feedback" / "bob" / DEMO / f"{DEMO}.html").read_text()
    assert "Partial credit (1.5/3): Service k8slab-demo/hello selects no pod" in page and 'class="mermaid"' not in page
    out = tmp_path / "grades.csv"
    nbgrader(course_dir, "export", "--to", str(out))
    assert float(read_csv(out)[0]["score"]) == 3.5


def _write_answer(text):
    def edit(nb):
        cell = next(c for c in nb.cells if _nb_meta(c).get("grade_id") == "hello-why")
        cell.source = text
    return edit


def test_written_answers_are_listed_marked_and_counted(demo_course, demo_spec, tmp_path, capsys):
    """The instructor's command-line path for answers in words: autograde leaves them unmarked, `course answers`
    shows them, `course mark` scores them (bounded by the cell's points), the CSV and feedback include it."""
    from graders.errors import UsageError

    released = nbformat.read(demo_course / "release" / DEMO / f"{DEMO}.ipynb", as_version=4)
    blank = next(c for c in released.cells if _nb_meta(c).get("grade_id") == "hello-why")
    assert "stable virtual IP" not in blank.source  # the reference answer stays with the instructor
    hand_in(demo_course, DEMO, "alice", solution_files(demo_spec),
            edit=_write_answer("IPs change when pods restart; a Service gives a stable name."))
    nbgrader(demo_course, "autograde", DEMO, "--student", "alice",
             extra_env={"K8SLAB_RESULTS_FILE": str(records_file(tmp_path / "a.json", RECORDS["alice"]))})
    [item] = answers.answers(demo_course, DEMO)
    assert (item.student, item.answer, item.points, item.score) == ("alice", "hello-why", 1.0, None)
    assert "a Service gives a stable name" in item.text
    assert course_cli.main(["answers", str(demo_course), DEMO]) == 0
    assert "not marked yet" in capsys.readouterr().out
    with pytest.raises(UsageError, match="between 0 and 1"):
        answers.mark(demo_course, DEMO, "alice", "hello-why", 2)
    with pytest.raises(UsageError, match="autograded cell"):
        answers.mark(demo_course, DEMO, "alice", "hello-test", 1)
    assert course_cli.main(["mark", str(demo_course), DEMO, "alice", "hello-why", "0.5", "--comment", "why stable?"]) == 0
    [item] = answers.answers(demo_course, DEMO)
    assert (item.score, item.comment) == (0.5, "why stable?")
    out = tmp_path / "grades.csv"
    nbgrader(demo_course, "export", "--to", str(out))
    assert float(read_csv(out)[0]["score"]) == 5.5


def test_monkeypatched_scored_cannot_change_the_recorded_grade(demo_course, demo_spec, tmp_path):
    """The student's notebook replaces scored() with one returning full points: nbgrader believes it, the
    harness records the verified score and reports the difference."""
    attack = ("import graders, graders.course.runtime, graders.nbgrader\n"
              "fake = lambda lab, exercise, points: float(points)\n"
              "graders.scored = graders.nbgrader.scored = graders.course.runtime.scored = fake")
    hand_in(demo_course, DEMO, "mallory", edit=lambda nb: add_student_cell(nb, attack))
    records = RECORDS["carol"]
    nbgrader(demo_course, "autograde", DEMO, "--student", "mallory",
             extra_env={"K8SLAB_RESULTS_FILE": str(records_file(tmp_path / "m.json", records))})
    result = harness.SubmissionResult("mallory", DEMO, points={e.id: e.points for e in demo_spec.exercises})
    harness.record_verified(demo_course, demo_spec, "mallory", records, result)
    assert result.notebook == {"hello": 2.0, "second": 3.0}, "the patch did fool the notebook"
    assert result.scores == {"hello": 0.0, "second": 0.0} and len(result.tampered) == 2
    out = tmp_path / "grades.csv"
    nbgrader(demo_course, "export", "--to", str(out))
    assert float(read_csv(out)[0]["score"]) == 0.0
    assert json.loads((demo_course / "k8slab" / "verified" / DEMO / "mallory.json").read_text()) == records


def test_grade_is_recorded_when_the_notebook_kills_its_kernel(demo_course, demo_spec, tmp_path):
    hand_in(demo_course, DEMO, "kim", edit=lambda nb: add_student_cell(nb, "import os\nos._exit(1)"))
    records = RECORDS["bob"]
    proc = nbgrader(demo_course, "autograde", DEMO, "--student", "kim", check=False,
                    extra_env={"K8SLAB_RESULTS_FILE": str(records_file(tmp_path / "k.json", records))})
    result = harness.SubmissionResult("kim", DEMO, points={e.id: e.points for e in demo_spec.exercises})
    harness.record_verified(demo_course, demo_spec, "kim", records, result)
    assert result.scores == {"hello": 2.0, "second": 1.5}
    out = tmp_path / "grades.csv"
    nbgrader(demo_course, "export", "--to", str(out))
    assert [(r["student_id"], float(r["score"])) for r in read_csv(out)] == [("kim", 3.5)], proc.stdout[-2000:]


# ----------------------------------------------------------------------------------------------------- feedback
@pytest.mark.skipif(mermaid.MermaidRenderer().name.startswith("text"),
                    reason="mermaid-cli + chromium not installed (make -f mk/course.mk course-tools): PNG path not tested")
def test_build_renders_diagrams_to_png(tmp_path):
    report = build_course(tmp_path / "course", FIXTURE_ROOT, diagrams=True)
    assert report.labs[0].diagrams == 1
    pngs = list((tmp_path / "course" / "k8slab" / "mermaid").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nb = nbformat.read(report.labs[0].notebook, as_version=4)
    out, _ = feedback.MermaidImages(image_dir=str(pngs[0].parent)).preprocess_cell(nb.cells[0], {}, 0)
    assert 'src="data:image/png;base64,' in out.source


def test_mermaid_outline_and_preprocessor(tmp_path):
    body = "graph LR\n    Client[Client] -->|ClusterIP| Svc[Service<br/>hello:80]\n    Svc --> P1[Pod hello]\n"
    assert mermaid.outline(body) == "Client --ClusterIP--> Service hello:80\nService hello:80 --> Pod hello"
    cell = nbformat.v4.new_markdown_cell(f"Look:\n\n```mermaid\n{body}```\n\nDone.")
    pre = feedback.MermaidImages(image_dir=str(tmp_path))
    out, _ = pre.preprocess_cell(cell, {}, 0)
    assert "```mermaid" not in out.source and "Client --ClusterIP--&gt; Service" in out.source
    assert out.source.startswith("Look:") and out.source.endswith("Done.")


def test_check_cells_show_verified_results_during_safe_autograde():
    cell = nbformat.v4.new_code_cell('check("05-network-policy", "web-to-api")')
    cell.metadata["nbgrader"] = {"locked": True}
    swapped, _ = feedback.PrecomputedChecks().preprocess_cell(cell, {}, 0)
    assert '_k8slab_show("05-network-policy", "web-to-api")' in swapped.source
    restored, _ = feedback.RestoreSources().preprocess_cell(swapped, {}, 0)
    assert restored.source == 'check("05-network-policy", "web-to-api")'


# ----------------------------------------------------------------------------------------------------- boundary
SNOOP = r'''
import os, pathlib, json
root = pathlib.Path(os.environ.get("PYTHONPATH", "/nonexistent").split(":")[0])
probe = {
    "solutions": (root / "solutions").exists(),
    "gradebook": os.path.exists(COURSE + "/gradebook.db"),
    "admin_kubeconfig": os.path.exists(os.path.expanduser("~root/.kube/config")) or os.path.exists("/root/.kube/config"),
    "kubeconfig": os.environ.get("KUBECONFIG"),
    "results_writable": os.access(os.environ.get("K8SLAB_RESULTS_FILE", "/"), os.W_OK),
    "docker_socket": os.path.exists("/var/run/docker.sock"),
}
print("SNOOP " + json.dumps(probe))
'''


@pytest.mark.skipif(not sandbox.docker_usable(), reason="docker is not usable here: sandbox kernel not tested")
def test_sandbox_kernel_sees_only_the_submission(demo_course, demo_spec, tmp_path):
    """The notebook's kernel runs in the throwaway container: no solutions, no gradebook, no admin kubeconfig,
    no docker socket, read-only results; the verified scores are shown and recorded."""
    sandbox.ensure_sandbox_image()
    hand_in(demo_course, DEMO, "eve", edit=lambda nb: add_student_cell(nb, f"COURSE = {str(demo_course)!r}\n" + SNOOP))
    work = tmp_path / "work"
    work.mkdir()
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    results = records_file(work / "results.json", RECORDS["bob"])
    container, network = "k8slab-autograde-test-eve", "k8slab-sandbox-test"
    # like the course cluster's network: --internal, so no published ports (the launcher relays the kernel's)
    subprocess.run(["docker", "network", "create", "--internal", network], capture_output=True)
    jupyter = sandbox.kernel_spec(work, "docker", kubeconfig, results, container, network)
    try:
        proc = harness.nbgrader_autograde(demo_course, DEMO, "eve", jupyter, force=True)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(demo_course / "autograded" / "eve" / DEMO / f"{DEMO}.ipynb", as_version=4)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    snoop = json.loads(re.search(r"SNOOP (\{.*\})", text).group(1))
    assert snoop == {"solutions": False, "gradebook": False, "admin_kubeconfig": False,
                     "kubeconfig": "/k8slab/kubeconfig", "results_writable": False, "docker_socket": False}
    result = harness.SubmissionResult("eve", DEMO, points={e.id: e.points for e in demo_spec.exercises})
    harness.record_verified(demo_course, demo_spec, "eve", RECORDS["bob"], result)
    assert result.scores == result.notebook == {"hello": 2.0, "second": 1.5} and not result.tampered


@pytest.mark.parametrize("lab", _real_labs_with_notebooks())
def test_real_lab_release_has_no_solution(tmp_path, lab):
    """The real labs: the instructor notebook carries each reference solution; the release carries none."""
    lab_spec = spec.load_lab(lab, REPO)
    course_dir = tmp_path / "course"
    report = build_course(course_dir, REPO, [lab])
    source = "\n".join(c.source for c in nbformat.read(report.labs[0].notebook, as_version=4).cells)
    for exercise in lab_spec.exercises:
        for name in exercise.files:
            if (exercise.solution_dir / name).is_file():
                assert (exercise.solution_dir / name).read_text().strip().splitlines()[-1] in source
    nbgrader(course_dir, "generate_assignment", lab)
    assert release_leaks(course_dir, lab, REPO) == []
    released = {p.relative_to(course_dir / "release" / lab).as_posix()
                for p in (course_dir / "release" / lab).rglob("*") if p.is_file()}
    assets = {p.relative_to(REPO / "labs" / lab).as_posix() for d in build.LAB_ASSET_DIRS
              for p in (REPO / "labs" / lab / d).rglob("*") if p.is_file()}
    assert released == {f"{lab}.ipynb", *build.student_files(lab_spec), *assets}
    assert "hints.yaml" not in released, "the last hint level is the answer"
