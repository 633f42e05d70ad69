"""The parallel autograder (graders.course.dispatch) against a fake cluster that runs each grading Job in its head:
the real `k8slab grade --run --result-line` produces the log of a Job that grades, scripted fates the rest
(crash, no result line, deadline, eviction, out of memory, an image that cannot be pulled, a Job that hangs).

What must hold: never more than N Jobs alive; every student recorded whatever its Job did, with a clear reason;
a re-run skips what is graded and retries what is not; every run's objects deleted (on an error or Ctrl-C mid-run
too); the records are those of the serial path for the same submission."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from fakelab import LAB_ID, write
from graders import cli, outside, resultline, spec
from graders.cluster.runs import JobState
from graders.course import dispatch, harness, jobs, regrade
from graders.course.gradebook import COURSE_ID, gradebook_url
from graders.course.harness import SubmissionResult

IMAGE = "k8slab/grader:test"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeRuns:
    """Creates, runs and deletes grading runs. ``fates``: student stem -> what its Job does; a grading Job runs the
    real CLI on the files of its ConfigMap (through the fake cluster of `fake_connect`)."""

    def __init__(self, fates: dict[str, str], polls: int = 2) -> None:
        self.fates, self.polls = fates, polls
        self.alive: dict[str, dict] = {}  # selector -> {objs, polls, log, state}
        self.max_alive = 0
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.fail_create: set[str] = set()
        self.raise_in_state: BaseException | None = None
        self.pending: dict[str, list[dict]] = {}  # holding namespace -> objects created before the Job
        self.denials: dict[str, int] = {}
        self.rbac_lag = {"rbac-slow": 5}
        self.jobs_created_when_allowed: list[bool] = []

    @staticmethod
    def _job(objs):
        return next(o for o in objs if o["kind"] == "Job")

    def _fate(self, objs) -> str:
        ns = self._job(objs)["metadata"]["namespace"]
        return next((fate for stem, fate in self.fates.items() if ns.startswith(f"k8slab-job-{stem}-")), "pass")

    def create(self, objs):
        """The dispatcher creates a run's objects first, then (once its Roles are in force) the Job alone."""
        if not any(o["kind"] == "Job" for o in objs):
            holding = next(o for o in objs if o["kind"] == "ServiceAccount")["metadata"]["namespace"]
            self.pending[holding] = list(objs)
            self.denials[holding] = 0
            return
        job = self._job(objs)
        holding = job["metadata"]["namespace"]
        objs = [*self.pending.pop(holding, []), *objs]
        selector = ",".join(f"{k}={v}" for k, v in job["metadata"]["labels"].items())
        if self._fate(objs) in self.fail_create:
            raise RuntimeError("admission webhook denied the Job")
        self.jobs_created_when_allowed.append(self.denials.get(holding, 0) >= self.rbac_lag.get(self._fate(objs), 0))
        self.alive[selector] = {"objs": objs, "polls": 0, "ns": holding}
        self.created.append(holding)
        self.max_alive = max(self.max_alive, len(self.alive))

    def allowed(self, review):
        """A run's Roles reach the authorizer after ``rbac_lag[fate]`` denied reviews (never, for 'rbac-never')."""
        user = review["spec"]["user"]  # system:serviceaccount:<holding>:grader
        holding = user.split(":")[2]
        fate = next((fate for stem, fate in self.fates.items() if holding.startswith(f"k8slab-job-{stem}-")), "pass")
        if fate == "rbac-never" or self.denials[holding] < self.rbac_lag.get(fate, 0):
            self.denials[holding] += 1
            return False
        return True

    def _entry(self, namespace):
        return next(e for e in self.alive.values() if e["ns"] == namespace)

    def job_state(self, namespace, name):
        if self.raise_in_state is not None:
            raise self.raise_in_state
        entry = self._entry(namespace)
        entry["polls"] += 1
        fate = self._fate(entry["objs"])
        if fate == "flaky" and entry["polls"] == 1:
            raise ConnectionError("the API server did not answer")
        if fate == "hang" or entry["polls"] < self.polls:
            return JobState(False, pod="grade-x")
        if fate == "stuck":
            return JobState(False, pod="grade-x", waiting="ImagePullBackOff")
        if fate == "deadline":
            return JobState(True, True, "DeadlineExceeded", "Job was active longer than specified deadline")
        if fate == "evicted":
            return JobState(True, True, "Evicted", "The node was low on resource: memory.", pod="grade-x")
        if fate == "oom":
            return JobState(True, True, "OOMKilled", pod="grade-x", exit_code=137)
        if fate == "silent":
            return JobState(True, True, "BackoffLimitExceeded", pod="grade-x", exit_code=2)
        return JobState(True, fate != "pass", pod="grade-x", exit_code=0 if fate == "pass" else 1)

    def pod_log(self, namespace, pod, container):
        entry = self._entry(namespace)
        fate = self._fate(entry["objs"])
        if fate in ("silent", "oom", "evicted"):
            return "Traceback (most recent call last):\n  ...\n"
        if fate in ("stuck", "hang"):  # never started; or still grading when the dispatcher gave up
            return "" if fate == "stuck" else "grading web-to-api ...\n"
        command = self._job(entry["objs"])["spec"]["template"]["spec"]["containers"][0]["command"]
        run, mark = command[command.index("--run") + 1], command[command.index("--result-line") + 1]
        if fate == "crash":
            return resultline.format_line(mark, resultline.error_payload(LAB_ID, run, RuntimeError("boom")))
        if fate == "forged":
            return resultline.format_line(mark, {"schema": resultline.SCHEMA, "run": "someone-else", "records": {}})
        return grade_in_job(entry["objs"], run, mark, not_probed=fate == "outside")

    def delete(self, objs, selector):
        holding = next(o for o in objs if o["kind"] == "ServiceAccount")["metadata"]["namespace"]
        if self.pending.pop(holding, None) is not None:
            self.deleted.append(holding)
        if self.alive.pop(selector, None) is not None:
            self.deleted.append(self._job(objs)["metadata"]["namespace"])

    def remaining(self, objs, selector):
        holding = next(o for o in objs if o["kind"] == "ServiceAccount")["metadata"]["namespace"]
        if holding in self.pending:
            return [f"Namespace {holding}"]
        return [f"Namespace {self.alive[selector]['ns']}"] if selector in self.alive else []


def grade_in_job(objs, run: str, mark: str, not_probed: bool = False) -> str:
    """What the Job's container prints: the real CLI on the ConfigMap's files, mounted back at their paths."""
    config = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "submission")
    job = next(o for o in objs if o["kind"] == "Job")
    [volume] = [v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "submission"]
    paths = {item["key"]: item["path"] for item in volume["configMap"]["items"]}
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        for key, text in config["data"].items():
            write(Path(tmp) / paths[key], text)
        if not_probed:
            outside._refused.append(outside.IN_JOB_REASON)
        try:
            with contextlib.redirect_stdout(out):
                cli.main(["grade", LAB_ID, "--submission", tmp, "--run", run, "--result-line", mark])
        finally:
            outside._refused.clear()
    return out.getvalue()


@pytest.fixture
def course_dir(course, tmp_path):
    """An nbgrader course directory with submissions of the fake lab: stem of each student -> solution or not."""
    root = tmp_path / "class"
    write(root / "nbgrader_config.py", "c = get_config()\n")
    return root


def hand_in(course, course_dir, student, good=True):
    solution = course / "solutions" / LAB_ID
    for ex, name in (("hello-pod", "pod.yaml"), ("expose", "service.yaml")):
        source = solution / ex / name if good else solution / "mistakes" / ex / ("wrong-label" if ex == "hello-pod"
                                                                                    else "wrong-port") / name
        write(course_dir / "submitted" / student / LAB_ID / ex / name, source.read_text())
    write(course_dir / "submitted" / student / LAB_ID / f"{LAB_ID}.ipynb", "{}")  # not shipped to the Job


class Recorded:
    """The recorder: what the dispatcher hands the serial path's recording; writes the verified file as
    record_verified does, so resumability sees it."""

    def __init__(self, course_dir) -> None:
        self.course_dir = course_dir
        self.calls: dict[str, dict] = {}

    def __call__(self, student, records, force):
        self.calls[student] = records
        path = harness.verified_file(self.course_dir, LAB_ID, student)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records))
        result = SubmissionResult(student, LAB_ID)
        for key, rec in records.items():
            result.scores[key.split("/")[1]] = rec["score"]
            if rec.get("error"):
                result.error = rec["error"]
        return result


def dispatcher(course_dir, runs, record, parallel=2, clock=None, **kw):
    clock = clock or Clock()
    lines: list[str] = []
    d = dispatch.Dispatcher(course_dir, spec.load_lab(LAB_ID), runs, record, parallel, image=IMAGE, clock=clock,
                            sleep=clock.sleep, say=lines.append, **kw)
    d.lines = lines
    return d


def students(course, course_dir, fates: dict[str, str]) -> list[str]:
    for student, fate in fates.items():
        hand_in(course, course_dir, student, good=fate != "fail")
    return list(fates)


def fates_of(course_dir, fates):
    """FakeRuns keys fates by the run's stem (what run_id makes of the student)."""
    return {dispatch.run_id(s, LAB_ID).rsplit("-", 2)[0]: f for s, f in fates.items()}


# ---------------------------------------------------------------------------------------------------- tests
def test_never_more_than_n_jobs_alive_and_every_student_graded(course, course_dir, fake_connect):
    fates = {f"s{i}": ("pass" if i % 3 else "fail") for i in range(7)}
    runs = FakeRuns(fates_of(course_dir, fates), polls=3)
    record = Recorded(course_dir)
    summary = dispatcher(course_dir, runs, record, parallel=3).run(students(course, course_dir, fates))
    assert runs.max_alive == 3
    assert sorted(record.calls) == sorted(fates)
    assert summary.count(dispatch.GRADED) == 7 and summary.ok
    totals = {s: sum(r["score"] for r in record.calls[s].values()) for s in fates}
    assert {s for s, t in totals.items() if t == 5.0} == {s for s, f in fates.items() if f == "pass"}
    assert sorted(runs.deleted) == sorted(runs.created) and not runs.alive


@pytest.mark.parametrize("fate, status, words", [
    ("crash", dispatch.FAILED, "the grader could not run: RuntimeError: boom"),
    ("silent", dispatch.FAILED, "without a result line (exit code 2, BackoffLimitExceeded)"),
    ("deadline", dispatch.TIMED_OUT, f"stopped at its deadline of {jobs.DEADLINE_S} s"),
    ("evicted", dispatch.FAILED, "evicted by its node (The node was low on resource: memory.)"),
    ("oom", dispatch.FAILED, "ran out of memory (limit 768Mi)"),
    ("stuck", dispatch.FAILED, f"could not start: ImagePullBackOff (image {IMAGE}"),
    ("hang", dispatch.TIMED_OUT, f"did not finish within {jobs.DEADLINE_S + dispatch.SLACK_S} s"),
    ("forged", dispatch.FAILED, "without a result line"),
])
def test_every_failure_is_recorded_for_every_exercise_with_its_reason(course, course_dir, fake_connect, fate,
                                                                        status, words):
    fates = {"alice": fate, "bob": "pass"}
    runs = FakeRuns(fates_of(course_dir, fates))
    record = Recorded(course_dir)
    d = dispatcher(course_dir, runs, record)
    summary = d.run(students(course, course_dir, fates))
    alice = record.calls["alice"]
    assert set(alice) == {f"{LAB_ID}/hello-pod", f"{LAB_ID}/expose"}
    assert all(r["score"] == 0.0 and words in r["error"] and r["message"] == "the grader could not run"
               for r in alice.values()), alice
    assert {o.student: o.status for o in summary.outcomes} == {"alice": status, "bob": dispatch.GRADED}
    assert not summary.ok and not runs.alive
    assert any(status.upper() in line and words in line for line in d.lines)
    assert "Traceback" not in "\n".join(d.lines)


def test_a_lost_poll_is_retried_and_a_create_failure_recorded(course, course_dir, fake_connect):
    fates = {"flaky": "flaky", "denied": "denied"}
    runs = FakeRuns(fates_of(course_dir, fates))
    runs.fail_create = {"denied"}
    record = Recorded(course_dir)
    summary = dispatcher(course_dir, runs, record).run(students(course, course_dir, fates))
    statuses = {o.student: o.status for o in summary.outcomes}
    assert statuses == {"flaky": dispatch.GRADED, "denied": dispatch.FAILED}
    assert "could not create the grading Job: RuntimeError: admission webhook denied" in \
        record.calls["denied"][f"{LAB_ID}/expose"]["error"]


def test_the_job_starts_only_once_its_roles_are_in_force(course, course_dir, fake_connect):
    """RBAC reaches the authorizer through a cache: a Job started first would grade into 403s (the student's
    failure, wrongly). A Role that never takes effect fails that run alone, with why, and leaves nothing."""
    fates = {"slow": "rbac-slow", "never": "rbac-never", "ok": "pass"}
    runs = FakeRuns(fates_of(course_dir, fates))
    record = Recorded(course_dir)
    d = dispatcher(course_dir, runs, record)
    d.clock = clock = Clock()
    d.sleep = clock.sleep
    summary = d.run(students(course, course_dir, fates))
    assert {o.student: o.status for o in summary.outcomes} == {
        "slow": dispatch.GRADED, "never": dispatch.FAILED, "ok": dispatch.GRADED}
    assert runs.jobs_created_when_allowed == [True, True]  # slow and ok; never got no Job
    assert any(runs.denials[ns] == 5 for ns in runs.denials)
    assert f"did not take effect within {dispatch.RBAC_WAIT_S} s" in record.calls["never"][f"{LAB_ID}/expose"]["error"]
    assert not runs.alive and not runs.pending


def test_a_rerun_skips_what_is_graded_and_retries_what_is_not(course, course_dir, fake_connect):
    fates = {"ann": "pass", "ben": "deadline", "cat": "fail"}
    names = students(course, course_dir, fates)
    record = Recorded(course_dir)
    dispatcher(course_dir, FakeRuns(fates_of(course_dir, fates)), record).run(names)
    again = FakeRuns(fates_of(course_dir, {}))  # this time every Job grades
    record2 = Recorded(course_dir)
    d = dispatcher(course_dir, again, record2)
    summary = d.run(names)
    assert sorted(record2.calls) == ["ben"]  # the timed-out one; a failing submission is graded, not retried
    assert {o.student: o.status for o in summary.outcomes} == {
        "ann": dispatch.SKIPPED, "cat": dispatch.SKIPPED, "ben": dispatch.GRADED}
    assert summary.lines(course_dir)[0].startswith(f"{LAB_ID} --parallel 2: 1 graded, 0 failed, 0 timed out, "
                                                   "2 skipped")
    forced = Recorded(course_dir)
    dispatcher(course_dir, FakeRuns(fates_of(course_dir, {})), forced, force=True).run(names)
    assert sorted(forced.calls) == ["ann", "ben", "cat"]


def test_run_ids_are_stable_dns_safe_and_distinct():
    ids = {dispatch.run_id(s, "05-network-policy") for s in ("Ann.B", "ann-b", "ANN_B", "x" * 80, "ünï")}
    assert len(ids) == 5
    for run in ids:
        assert run == dispatch.run_id(next(s for s in ("Ann.B", "ann-b", "ANN_B", "x" * 80, "ünï")
                                           if dispatch.run_id(s, "05-network-policy") == run), "05-network-policy")
        assert len(run) <= 40 and run.replace("-", "").isalnum() and run == run.lower()
    assert dispatch.run_id("ann", "05-network-policy") != dispatch.run_id("ann", "03-services")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), RuntimeError("a bug mid-run")])
def test_cleanup_always_happens(course, course_dir, fake_connect, interrupt):
    fates = {f"s{i}": "hang" for i in range(4)}
    runs = FakeRuns(fates_of(course_dir, fates))
    d = dispatcher(course_dir, runs, Recorded(course_dir), parallel=3)
    names = students(course, course_dir, fates)
    clock = Clock()
    calls = {"n": 0}

    def sleep(seconds):
        calls["n"] += 1
        if calls["n"] == 3:
            raise interrupt
        clock.sleep(seconds)

    d.sleep, d.clock = sleep, clock
    with pytest.raises(type(interrupt)):
        d.run(names)
    assert len(runs.created) == 3 and not runs.alive and sorted(runs.deleted) == sorted(runs.created)
    assert any("interrupted: deleted the objects of 3 running" in line for line in d.lines)


def test_leftovers_of_an_interrupted_run_are_deleted_before_the_same_run_starts(course, course_dir, fake_connect):
    fates = {"ann": "pass"}
    names = students(course, course_dir, fates)
    runs = FakeRuns(fates_of(course_dir, fates))
    run = jobs.Run(spec.load_lab(LAB_ID), dispatch.run_id("ann", LAB_ID))
    runs.alive[run.selector] = {"objs": jobs.objects(jobs.Run(run.lab, run.run_id, image=IMAGE)), "polls": 0,
                                "ns": run.holding}
    summary = dispatcher(course_dir, runs, Recorded(course_dir)).run(names)
    assert runs.deleted[0] == run.holding and summary.count(dispatch.GRADED) == 1 and not runs.alive


def test_the_job_gets_the_manifests_only(course, course_dir):
    hand_in(course, course_dir, "ann")
    folder = course_dir / "submitted" / "ann" / LAB_ID
    (folder / "hello-pod" / "link.yaml").symlink_to("/etc/passwd")
    write(folder / "hello-pod" / "notes.txt", "x")
    files = dispatch.submission_files(folder, spec.load_lab(LAB_ID))
    assert sorted(files) == ["expose/service.yaml", "hello-pod/pod.yaml"]
    write(folder / "expose" / "huge.yaml", "x" * (dispatch.MAX_FILES_BYTES + 10))
    with pytest.raises(ValueError, match="grade this one serially"):
        dispatch.submission_files(folder, spec.load_lab(LAB_ID))


def test_a_submission_not_probed_from_outside_is_listed_for_a_serial_regrade(course, course_dir, fake_connect):
    fates = {"ann": "outside", "ben": "pass"}
    record = Recorded(course_dir)
    d = dispatcher(course_dir, FakeRuns(fates_of(course_dir, fates)), record)
    summary = d.run(students(course, course_dir, fates))
    assert regrade.pending(course_dir, LAB_ID) == {"ann": outside.IN_JOB_REASON}
    assert summary.pending_serial == {"ann": outside.IN_JOB_REASON}
    [line] = [line for line in summary.lines(course_dir) if "serial regrade" in line]
    assert f"k8slab course autograde {course_dir} {LAB_ID} --student ann --force" in line
    assert record.calls["ann"][f"{LAB_ID}/hello-pod"]["score"] == 2.0  # recorded meanwhile, never lost
    # a re-run skips it as graded and still names it; the serial regrade clears it
    assert dispatcher(course_dir, FakeRuns({}), Recorded(course_dir)).run(["ann"]).pending_serial
    regrade.clear(course_dir, LAB_ID, "ann")
    assert regrade.pending(course_dir, LAB_ID) == {}


def test_inside_a_job_outside_clients_are_refused_without_docker(monkeypatch):
    monkeypatch.setenv(outside.IN_JOB_ENV, outside.IN_JOB_REASON)
    monkeypatch.setattr(outside, "_refused", [])
    with pytest.raises(outside.OutsideUnavailable, match="not probed inside a Job"):
        outside.OutsideRunner()
    with pytest.raises(outside.OutsideUnavailable), outside.listener([80]):
        pass
    assert outside.refusals() == (outside.IN_JOB_REASON,)
    env = {e["name"]: e.get("value") for e in jobs.job(jobs.Run(spec.load_lab("05-network-policy"), "a-1",
                                                                  image=IMAGE))["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env[outside.IN_JOB_ENV] == outside.IN_JOB_REASON


# ------------------------------------------------------------------------- the same records as the serial path
def test_records_are_the_serial_paths_for_the_same_submission(course, course_dir, fake_connect):
    """The serial path's trusted run (graders.course.verify) and a Job's result line, for one submission: the
    records the gradebook gets are the same, exercise by exercise."""
    from graders.course import verify

    fates = {"ann": "pass", "cat": "fail"}
    record = Recorded(course_dir)
    dispatcher(course_dir, FakeRuns(fates_of(course_dir, fates)), record).run(students(course, course_dir, fates))
    for student in fates:
        serial = verify.verify(LAB_ID, course_dir / "submitted" / student / LAB_ID)
        serial = harness.complete_records(spec.load_lab(LAB_ID), serial, "")
        for key, rec in serial.items():
            job = record.calls[student][key]
            assert {k: job[k] for k in ("score", "points", "passed", "message", "error")} == \
                   {k: rec[k] for k in ("score", "points", "passed", "message", "error")}, (student, key)


def test_the_gradebook_gets_what_the_serial_path_writes(course, course_dir, fake_connect, monkeypatch):
    """The production recorder (Harness.record_graded_elsewhere) is the serial path's notebook + record_verified:
    same records in -> same gradebook rows and verified file out."""
    import subprocess

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # nbgrader's alembic
    lab = spec.load_lab(LAB_ID)
    with Gradebook(gradebook_url(course_dir), course_id=COURSE_ID) as gb:
        gb.add_assignment(LAB_ID)
        gb.add_notebook(LAB_ID, LAB_ID)
        for ex in lab.exercises:
            gb.add_grade_cell(f"{ex.id}-test", LAB_ID, LAB_ID, max_score=ex.points, cell_type="code")
    ran = []
    monkeypatch.setattr(harness, "nbgrader_autograde", lambda course, lab_id, student, jupyter, force:
                        ran.append((student, force, jupyter is not None)) or
                        subprocess.CompletedProcess([], 0, "", ""))
    h = object.__new__(harness.Harness)
    h.course_dir, h.lab, h.lab_spec, h.boundary, h.control_plane = course_dir, LAB_ID, lab, "process", None
    fates = {"ann": "fail"}
    summary = dispatcher(course_dir, FakeRuns(fates_of(course_dir, fates)), h.record_graded_elsewhere).run(
        students(course, course_dir, fates))
    job_records = json.loads(harness.verified_file(course_dir, LAB_ID, "ann").read_text())
    serial = harness.SubmissionResult("bob", LAB_ID, points={e.id: e.points for e in lab.exercises})
    harness.record_verified(course_dir, lab, "bob", job_records, serial)
    with Gradebook(gradebook_url(course_dir), course_id=COURSE_ID) as gb:
        rows = {s: {ex.id: gb.find_grade(f"{ex.id}-test", LAB_ID, LAB_ID, s).score for ex in lab.exercises}
                for s in ("ann", "bob")}
    assert rows["ann"] == rows["bob"] == {"hello-pod": 0.0, "expose": 1.5}
    [outcome] = summary.outcomes
    assert outcome.result.scores == serial.scores and ran == [("ann", False, True)]
