"""`k8slab course autograde DIR LAB --parallel N`: each submission's grading run as a Kubernetes Job, N at once.

The cluster schedules the work (issue 15); this module only feeds it and collects:

1. **Choose** the students as the serial path does (graders.course.harness.choose_students); skip those already
   graded (``already_graded``: verified records with no "could not run"), unless --force.
2. **Start** at most N runs: one run's objects (graders.course.jobs.objects: its own namespaces, credentials for
   them only, the submission as a read-only ConfigMap, the Job) created through `RunsAPI`. The run id comes from
   student and lab, so a re-run finds (and first deletes) what an interrupted run left.
3. **Poll**, bounded: every call has its timeout (graders.cluster.runs), every run a deadline of its Job's
   activeDeadlineSeconds plus SLACK_S; a pod that cannot start (image pull) ends its run at once.
4. **Collect** (`collect`): the grader's log, its result line (graders.resultline) -> the records; no result line
   -> every exercise recorded as not graded, with why (failed, timed out, evicted, out of memory). Never lost.
5. **Delete** the run's objects by its label (namespaces included) as soon as it ends, and on any exit: Ctrl-C or
   an error mid-run deletes every run still going. The end waits, bounded, until they are gone.
6. **Record** exactly as the serial path does (harness.record_graded_elsewhere: the notebook through nbgrader,
   then record_verified), on one thread beside the Jobs: the gradebook is one SQLite file, one writer.

A Job cannot start a client outside the cluster itself. On a kind cluster the dispatcher starts one relay for the
batch (graders.outside_relay: a container on the cluster's docker network, where the serial path's client runs)
and every Job sends its outside probes through it. Without one (a cluster that is not kind here, no grading image
in the local docker) the Job refuses those probes (graders.outside.IN_JOB_ENV): such a submission is recorded and
listed for a serial regrade (graders.course.regrade). Nor can it reach a second cluster: a lab that compares two
(lab.yaml ``compare_with``, lab 02) is refused at once (``refuse_parallel``) and graded serially.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from graders import resultline, spec, versions
from graders.cluster.runs import JobState, KubeRuns
from graders.course import jobs, regrade
from graders.course.harness import (Harness, SubmissionResult, already_graded, choose_students, complete_records,
                                    error_text)
from graders.errors import UsageError
from graders.manifests import YAML_SUFFIXES
from graders.nsmap import run_suffix
from graders.outside_relay import Relay

SLACK_S = 120        # beyond the Job's own deadline: scheduling, pulling the image, the log being read
POLL_S = 2.0         # between two rounds of job_state calls when nothing finished
CLEANUP_S = 120      # at the end: how long the runs' namespaces may take to disappear
RBAC_WAIT_S = 30     # how long a run's new Roles may take to reach the authorizer before its Job starts
MAX_FILES_BYTES = 900 * 1024  # a ConfigMap holds 1 MiB, keys and metadata included

GRADED, FAILED, TIMED_OUT, SKIPPED = "graded", "failed", "timed out", "skipped"


class RunsAPI(Protocol):
    """The cluster as the dispatcher uses it (graders.cluster.runs.KubeRuns; a fake in the unit tests)."""

    def create(self, objs: Sequence[dict]) -> None: ...

    def allowed(self, review: dict) -> bool: ...

    def job_state(self, namespace: str, name: str) -> JobState: ...

    def pod_log(self, namespace: str, pod: str, container: str) -> str: ...

    def delete(self, objs: Sequence[dict], selector: str) -> None: ...

    def remaining(self, objs: Sequence[dict], selector: str) -> list[str]: ...


# (student, records, force) -> the recorded result: harness.Harness.record_graded_elsewhere
Recorder = Callable[[str, dict, bool], SubmissionResult]


def run_id(student: str, lab: str) -> str:
    """Stable for one student and lab (a re-run finds an interrupted run's leftovers), DNS-safe, distinct: the
    hash keeps apart students whose ids look alike once cut and cleaned (``Ann.B`` and ``ann-b``)."""
    digest = hashlib.sha256(f"{lab}\0{student}".encode()).hexdigest()[:6]
    stem = re.sub(r"[^a-z0-9]+", "-", student.lower())[:20].strip("-")
    return run_suffix(f"{stem}-{lab.split('-')[0]}-{digest}")


def submission_files(folder: Path, lab_spec) -> dict[str, str]:
    """What the grader reads of a submission (graders.engine.sources_for, graders.manifests): each exercise
    folder's *.yaml / *.yml, as text. Links are left out as the serial path's pristine copy leaves them out; the
    notebook is not needed (the grader grades files). ValueError when it would not fit in a ConfigMap."""
    files: dict[str, str] = {}
    for exercise in lab_spec.exercises:
        directory = folder / exercise.id
        if not directory.is_dir() or directory.is_symlink():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in YAML_SUFFIXES and path.is_file() and not path.is_symlink():
                files[f"{exercise.id}/{path.name}"] = path.read_bytes()[:MAX_FILES_BYTES + 1].decode("utf-8", "replace")
    size = sum(len(k) + len(v.encode()) for k, v in files.items())
    if size > MAX_FILES_BYTES:
        raise ValueError(f"the submitted manifests are {size // 1024} KiB; a grading Job takes at most "
                         f"{MAX_FILES_BYTES // 1024} KiB (grade this one serially)")
    return files


@dataclass(frozen=True)
class Collected:
    """One run's outcome: ``records`` for every exercise, as the serial path's verify step writes them."""

    status: str
    records: dict
    reason: str = ""
    not_probed: tuple[str, ...] = ()


def collect(run: jobs.Run, state: JobState | None, log: str, timed_out: bool) -> Collected:
    """The records of a run that ended, from its log's result line; without one, why not (never a traceback)."""
    payload = resultline.parse_log(run.mark, log or "")
    if payload is not None and payload.get("run") != run.run_id:
        payload = None  # not this run's line
    if payload is not None and isinstance(payload.get("records"), dict):
        records = complete_records(run.lab, dict(payload["records"]), "the grading run wrote no record for it")
        failed = any(isinstance(r, dict) and r.get("error") for r in records.values())
        return Collected(FAILED if failed else GRADED, records,
                         not_probed=tuple(str(r) for r in payload.get("not_probed") or ()))
    status, reason = FAILED, _no_result_reason(run, state, timed_out)
    if payload is not None and isinstance(payload.get("error"), dict):
        reason = f"the grader could not run: {payload['error'].get('type')}: {payload['error'].get('message')}"
    elif timed_out or (state is not None and state.reason == "DeadlineExceeded"):
        status = TIMED_OUT
    return Collected(status, complete_records(run.lab, {}, reason), reason)


def _no_result_reason(run: jobs.Run, state: JobState | None, timed_out: bool) -> str:
    if timed_out or state is None:
        return f"the grading Job did not finish within {run.deadline_s + SLACK_S} s (its deadline and {SLACK_S} s)"
    detail = f" ({state.message})" if state.message else ""
    if state.reason == "DeadlineExceeded":
        return f"the grading Job was stopped at its deadline of {run.deadline_s} s{detail}"
    if state.reason == "Evicted":
        return f"the grading pod was evicted by its node{detail}; grade it again"
    if state.reason == "OOMKilled":
        return f"the grading pod ran out of memory (limit {jobs.RESOURCES['limits']['memory']})"
    if state.stuck:
        return (f"the grading pod could not start: {state.waiting} (image {jobs.grader_image(run)}; "
                f"`make grader-image` builds it and loads it into kind's nodes)")
    code = f"exit code {state.exit_code}" if state.exit_code is not None else "no exit code"
    return f"the grading Job ended without a result line ({code}, {state.reason or 'no reason given'}){detail}"


@dataclass
class StudentOutcome:
    student: str
    status: str
    result: SubmissionResult | None = None
    serial: str = ""  # why this submission waits for a serial regrade
    job_seconds: float = 0.0


@dataclass
class Summary:
    lab: str
    parallel: int
    outcomes: list[StudentOutcome] = field(default_factory=list)
    seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    pending_serial: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.leftovers and all(o.status in (GRADED, SKIPPED) and not (o.result and o.result.error)
                                          for o in self.outcomes)

    def lines(self, course_dir: Path) -> list[str]:
        ran = len(self.outcomes) - self.count(SKIPPED)
        rate = ran / (self.seconds / 60) if self.seconds > 0 else 0.0
        out = [f"{self.lab} --parallel {self.parallel}: {self.count(GRADED)} graded, {self.count(FAILED)} failed, "
               f"{self.count(TIMED_OUT)} timed out, {self.count(SKIPPED)} skipped (already graded) in "
               f"{self.seconds:.0f} s: {rate:.1f} submissions per minute"]
        if self.pending_serial:
            out.append(f"{len(self.pending_serial)} submission(s) need a serial regrade (checks from outside the "
                       f"cluster were not probed inside a Job): "
                       f"{regrade.command(course_dir, self.lab, sorted(self.pending_serial))}")
        if self.leftovers:
            out.append(f"NOT deleted within {CLEANUP_S} s: {', '.join(self.leftovers[:10])}"
                       + (" ..." if len(self.leftovers) > 10 else ""))
        return out


@dataclass
class _Active:
    student: str
    run: jobs.Run
    objs: list[dict]
    started: float
    deadline: float


class Dispatcher:
    """Runs the loop of the module doc for one lab. ``runs``: the cluster; ``record``: the serial path's recording
    (tests pass fakes of both); ``clock``/``sleep``/``say``: time and output, replaceable in tests."""

    def __init__(self, course_dir: Path, lab_spec, runs: RunsAPI, record: Recorder, parallel: int, *,
                 force: bool = False, image: str = "", deadline_s: int = jobs.DEADLINE_S, poll_s: float = POLL_S,
                 relay: Relay | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] = print) -> None:
        if parallel < 1:
            raise ValueError("--parallel takes a number of Jobs >= 1")
        self.course_dir, self.lab, self.runs, self.record = course_dir, lab_spec, runs, record
        self.parallel, self.force, self.image, self.deadline_s, self.poll_s = parallel, force, image, deadline_s, poll_s
        self.clock, self.sleep, self.say = clock, sleep, say
        self.relay = relay
        self.deleted: list[_Active] = []

    # ---------------------------------------------------------------------------------------------- the loop
    def run(self, students: Sequence[str]) -> Summary:
        started = self.clock()
        summary = Summary(self.lab.id, self.parallel)
        queue: deque[str] = deque()
        for student in students:
            if not self.force and already_graded(self.course_dir, self.lab.id, student):
                summary.outcomes.append(StudentOutcome(student, SKIPPED))
                self.say(f"{student} {self.lab.id}: already graded, skipped (--force regrades)")
            else:
                queue.append(student)
        if queue and jobs.shares(self.lab):
            self.runs.create([jobs.claims_namespace()])  # for the Leases of what the runs take turns at
        active: dict[str, _Active] = {}
        recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k8slab-record")
        recordings: list[Future] = []
        try:
            while queue or active:
                while queue and len(active) < self.parallel:
                    student = queue.popleft()
                    begun = self._start(student)
                    if isinstance(begun, _Active):
                        active[student] = begun
                    else:
                        recordings.append(recorder.submit(self._record, summary, student, begun, 0.0))
                ended = self._poll(active)
                for item, collected in ended:
                    del active[item.student]
                    self._delete(item)
                    recordings.append(recorder.submit(self._record, summary, item.student, collected,
                                                      self.clock() - item.started))
                if not ended and active:
                    self.sleep(self.poll_s)
            recorder.shutdown(wait=True)
        except BaseException:
            # Ctrl-C or a bug mid-run: nothing a run created may stay behind; runs not recorded yet are graded again
            # by the next run (they have no verified records)
            for item in list(active.values()):
                self._delete(item)
            recorder.shutdown(wait=True, cancel_futures=True)
            self.say(f"interrupted: deleted the objects of {len(active)} running grading Job(s); "
                     "their namespaces disappear within a minute")
            raise
        for future in recordings:
            future.result()  # _record catches everything; this only surfaces a bug in it
        summary.leftovers = self._wait_gone()
        summary.seconds = self.clock() - started
        summary.pending_serial = regrade.pending(self.course_dir, self.lab.id)
        return summary

    def _start(self, student: str) -> _Active | Collected:
        """Create one run's objects (after deleting an earlier run's of the same id); a Collected failure when it
        cannot start."""
        folder = self.course_dir / "submitted" / student / self.lab.id
        try:
            run = jobs.Run(self.lab, run_id(student, self.lab.id), submission_files(folder, self.lab),
                           mark=f"@@k8slab-result-{secrets.token_hex(6)}@@", image=self.image,
                           deadline_s=self.deadline_s, relay=self.relay)
            objs = jobs.objects(run)
        except Exception as exc:  # noqa: BLE001 — recorded for this student, the batch goes on
            reason = f"could not prepare the grading run: {error_text(exc)}"
            return Collected(FAILED, complete_records(self.lab, {}, reason), reason)
        item = _Active(student, run, objs, self.clock(), self.clock() + run.deadline_s + SLACK_S)
        try:
            left = self._leftovers(item)
            if left:
                raise RuntimeError(f"an earlier run of the same id is still being deleted ({', '.join(left[:3])})")
            prepared = [obj for obj in objs if obj["kind"] != "Job"]
            self.runs.create(prepared)
            self._wait_authorized(item.run)
            self.runs.create([obj for obj in objs if obj["kind"] == "Job"])
        except Exception as exc:  # noqa: BLE001
            self._delete(item)
            reason = f"could not create the grading Job: {error_text(exc)}"
            return Collected(FAILED, complete_records(self.lab, {}, reason), reason)
        self.say(f"{student} {self.lab.id}: Job {run.holding}/{jobs.JOB_NAME} started")
        return item

    def _wait_authorized(self, run: jobs.Run) -> None:
        """Bounded: until the authorizer allows the run's ServiceAccount what its Roles grant, so that the grader
        never starts into a 403 it would report as the student's failure."""
        deadline = self.clock() + RBAC_WAIT_S
        for review in jobs.authorization_checks(run):
            while not self.runs.allowed(review):
                if self.clock() > deadline:
                    ns = review["spec"]["resourceAttributes"]["namespace"]
                    raise RuntimeError(f"the run's Role in {ns} did not take effect within {RBAC_WAIT_S} s")
                self.sleep(0.2)

    def _leftovers(self, item: _Active) -> list[str]:
        """What an interrupted earlier run with this id left: deleted, and waited for (bounded)."""
        left = self.runs.remaining(item.objs, item.run.selector)
        if left:
            self.runs.delete(item.objs, item.run.selector)
            deadline = self.clock() + CLEANUP_S
            while left and self.clock() < deadline:
                self.sleep(self.poll_s)
                left = self.runs.remaining(item.objs, item.run.selector)
        return left

    def _poll(self, active: dict[str, _Active]) -> list[tuple[_Active, Collected]]:
        """One round: the runs that ended (finished, stuck, or past their deadline), with what they gave."""
        ended = []
        for item in list(active.values()):
            timed_out = self.clock() > item.deadline
            try:
                state = self.runs.job_state(item.run.holding, jobs.JOB_NAME)
            except Exception:  # noqa: BLE001 — a lost poll is retried next round; the deadline bounds it
                state = None
            if state is None and not timed_out:
                continue
            if state is not None and not (state.finished or state.stuck or timed_out):
                continue
            log = ""
            if state is not None and state.pod:
                try:
                    log = self.runs.pod_log(item.run.holding, state.pod, jobs.CONTAINER)
                except Exception:  # noqa: BLE001 — then there is no result line, and collect says so
                    log = ""
            ended.append((item, collect(item.run, state, log, timed_out and not (state and state.finished))))
        return ended

    def _delete(self, item: _Active) -> None:
        try:
            self.runs.delete(item.objs, item.run.selector)
        except Exception as exc:  # noqa: BLE001 — what is left is listed at the end (remaining)
            self.say(f"{item.student}: deleting the run's objects failed ({error_text(exc)}); checked again at the end")
        self.deleted.append(item)

    def _wait_gone(self) -> list[str]:
        """Bounded: what of the deleted runs is still there after CLEANUP_S (deleted again on each look)."""
        deadline = self.clock() + CLEANUP_S
        while True:
            left = []
            for item in self.deleted:
                try:
                    found = self.runs.remaining(item.objs, item.run.selector)
                    if found:
                        self.runs.delete(item.objs, item.run.selector)
                except Exception as exc:  # noqa: BLE001
                    found = [f"{item.run.holding} (could not be listed: {error_text(exc)})"]
                left += found
            if not left or self.clock() >= deadline:
                return left
            self.sleep(self.poll_s)

    # ------------------------------------------------------------------------------------------- recording
    def _record(self, summary: Summary, student: str, collected: Collected, job_seconds: float) -> None:
        """On the recording thread: the serial path's recording, then the student's progress line."""
        try:
            result = self.record(student, collected.records, self.force)
        except Exception as exc:  # noqa: BLE001 — the recorder catches its own; this is a last guard
            result = SubmissionResult(student, self.lab.id, error=f"recording failed: {error_text(exc)}")
        serial = ""
        if collected.not_probed:
            serial = "; ".join(collected.not_probed)
            regrade.mark(self.course_dir, self.lab.id, student, serial)
        elif collected.status == GRADED:
            regrade.clear(self.course_dir, self.lab.id, student)
        summary.outcomes.append(StudentOutcome(student, collected.status, result, serial, job_seconds))
        done = len(summary.outcomes)
        line = f"[{done}] {result.summary()} [Job {job_seconds:.0f} s]"
        if collected.status != GRADED:
            line += f"\n  {collected.status.upper()}: {collected.reason}"
        if serial:
            line += "\n  SERIAL REGRADE: checks from outside the cluster were not probed inside the Job"
        self.say(line)


def refuse_parallel(lab: str, compare_context: str | None = None) -> None:
    """A UsageError, before anything connects, for what the Jobs cannot grade: a lab that compares two clusters
    (lab.yaml ``compare_with``). A Job runs inside the graded cluster: a second kind cluster's API server listens on
    the host's loopback, which no pod reaches, and the Job's credentials stop at the graded cluster."""
    lab_spec = spec.load_lab(lab)
    if lab_spec.compare_with:
        raise UsageError(f"--parallel cannot grade {lab}: it compares the graded cluster with a second one "
                         f"({', '.join(lab_spec.compare_with[:2])}, ...), and grading Jobs run inside the graded "
                         f"cluster, with no route to the second cluster's API server",
                         hint=f"grade it serially, both clusters running: k8slab course autograde DIR {lab} "
                              f"(without --parallel)")
    if compare_context:
        raise UsageError("--compare-context works with the serial autograder only (without --parallel)")


def autograde_parallel(course_dir: Path, lab: str, parallel: int, students: list[str] | None = None,
                       boundary: str = "auto", context: str | None = None, force: bool = False,
                       say: Callable[[str], None] = print) -> Summary:
    """`k8slab course autograde DIR LAB --parallel N`: the serial path's students, harness (admin connection,
    notebook boundary, recording) and gradebook; the grading itself in Jobs on the cluster of ``context``."""
    refuse_parallel(lab)
    chosen = choose_students(course_dir, lab, students)
    harness = Harness(course_dir, lab, context, boundary)
    with contextlib.ExitStack() as stack:
        relay = _start_relay(stack, harness.context, say)
        dispatcher = Dispatcher(course_dir, harness.lab_spec, KubeRuns(harness.admin),
                                harness.record_graded_elsewhere, parallel, force=force, say=say, relay=relay)
        return dispatcher.run(chosen)


def _start_relay(stack: contextlib.ExitStack, context: str, say: Callable[[str], None]) -> Relay | None:
    """The batch's client outside the cluster when the graded cluster is a kind cluster of this machine (context
    ``kind-NAME``); else None, said once (such submissions are then listed for a serial regrade)."""
    from graders import outside

    if not context.startswith("kind-"):
        say(f"no outside relay: {context} is not a kind cluster of this machine; checks from outside the cluster "
            "will be listed for a serial regrade")
        return None
    try:
        relay = stack.enter_context(outside.relay(versions.get(jobs.GRADER_IMAGE_PIN) or "", context[len("kind-"):]))
    except outside.OutsideUnavailable as error:
        say(f"no outside relay ({error.message}): checks from outside the cluster will be listed for a serial regrade")
        return None
    say(f"outside relay {relay.address} on docker network {relay.network}: the Jobs' checks from outside the "
        f"cluster leave from there, as the serial path's do")
    return relay
