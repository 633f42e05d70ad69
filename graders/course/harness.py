"""Autogrades nbgrader submissions without trusting them (`k8slab course autograde DIR LAB`).

For each submission, one at a time:

1. **Scope.** graders.course.grants: fresh grader namespaces, a ServiceAccount bound to them only, a short-lived
   token and a kubeconfig holding only that token.
2. **Verify.** graders.course.verify, in a separate process with a scrubbed environment and only that
   kubeconfig, grades a pristine copy of the submitted files, one exercise at a time (namespaces reset by the
   harness in between). These records are the grades; the harness keeps them out of the student's reach.
3. **Run the notebook.** `nbgrader autograde` (trusted, on the host, owner of the gradebook) executes the
   notebook through the kernel spec ``k8slab-sandbox`` (graders.course.sandbox). The test cells display the
   verified records (graders.course.runtime); `check()` calls are shown from them too
   (graders.course.feedback.PrecomputedChecks), so nothing is graded twice.
4. **Record.** Write the verified scores into the gradebook (overriding whatever the notebook printed; a
   difference is reported as possible tampering), then delete the namespaces, the bindings and the token's
   ServiceAccount.

A lab that compares two clusters (lab.yaml ``compare_with``: lab 02) gets step 1 on the second cluster too, with the
instructor's admin connection to it (``find_second``: the first of ``compare_with`` the admin kubeconfig has and that
answers, or ``--compare-context``); the grading run's kubeconfig holds both scoped contexts and
``$K8SLAB_COMPARE_CONTEXT`` names the second one, so graders.comparison finds it and nothing else. The notebook's
kernel gets the graded cluster's context only (its cells show the records). Both grants are deleted after each
submission, on an error or Ctrl-C too. With no second cluster answering at the start, the run says so once, grades
anyway (those checks record "not probed", never a pass) and lists every student for a regrade
(graders.course.regrade).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from graders import comparison, paths, spec
from graders.autograding import PREPARED_ENV
from graders.cluster import CONTEXT_ENV, Cluster, default_context, new_run_id
from graders.course import regrade
from graders.course.gradebook import nbgrader_executable, open_gradebook
from graders.course.grants import COMPARE_CONTEXT, SCRATCH_CONTEXT, Grants, delete_all, scoped_kubeconfig
from graders.course.sandbox import (SANDBOX_KERNEL, docker_usable, ensure_sandbox_image, kernel_spec,
                                    kind_control_plane, remove_container, scrubbed_env)
from graders.errors import K8sLabError, UsageError

VERIFY_TIMEOUT = 1800   # seconds for one submission's whole grading run (lab 04, the longest: ~1 min)
SECOND_TIMEOUT = 10     # seconds to connect to the second cluster of a lab that compares two, at the start


@dataclass
class SubmissionResult:
    student: str
    lab: str
    scores: dict[str, float] = field(default_factory=dict)       # verified, written to the gradebook
    notebook: dict[str, float | None] = field(default_factory=dict)  # what nbgrader computed from the notebook
    points: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    tampered: list[str] = field(default_factory=list)
    boundary: str = ""
    error: str = ""
    seconds: float = 0.0
    regrade: str = ""  # why this submission must be graded again (its lab's second cluster did not answer)

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    def summary(self) -> str:
        head = f"{self.student} {self.lab}: {self.total:g}/{sum(self.points.values()):g}"
        parts = [f"{ex} {s:g}/{self.points.get(ex, 0):g}" for ex, s in self.scores.items()]
        line = f"{head} ({', '.join(parts)}) [{self.boundary}, {self.seconds:.0f} s]"
        if self.tampered:
            line += "\n  WARNING notebook output differs from the verified grade (recorded the verified one): " + \
                    "; ".join(self.tampered)
        if self.error:
            line += f"\n  ERROR {self.error}"
        if self.regrade:
            line += f"\n  REGRADE once the second cluster runs: {self.regrade}"
        return line


def _safe_id(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:40].strip("-") or "student"


def find_second(lab_spec, graded: Cluster, explicit: str | None = None):
    """The instructor's admin connection to the second cluster of a lab that compares two (lab.yaml
    ``compare_with``), or ``comparison.Missing`` saying which contexts were tried and why none was taken; None for a
    lab that compares nothing. ``explicit`` (--compare-context) replaces the list and must answer (a UsageError
    otherwise: a context named on purpose that does not answer is a mistake to fix before grading a class)."""
    if not lab_spec.compare_with:
        return None
    connect = lambda context, timeout: Cluster.connect(context, timeout=timeout)  # noqa: E731
    if explicit:
        if explicit == graded.context:
            raise UsageError(f"--compare-context {explicit} is the graded context itself",
                             hint=f"name the second cluster's context ({', '.join(lab_spec.compare_with)})")
        try:
            found = connect(explicit, SECOND_TIMEOUT)
        except K8sLabError as error:
            raise UsageError(f"--compare-context {explicit} does not answer: {error.message}",
                             hint=comparison.START_IT) from None
    else:
        found = comparison.find_for(lab_spec.compare_with, graded.context, connect=connect, timeout=SECOND_TIMEOUT)
        if isinstance(found, comparison.Missing):
            return found
    if found.server == graded.server:  # two names for one cluster: its grants would collide with the first's
        return comparison.Missing((found.context,), (f"{found.context}: the same API server as the graded context "
                                                     f"{graded.context} ({graded.server})",))
    return found


def start_lines(lab_spec, second) -> list[str]:
    """What the run says before the first submission about the lab's second cluster (nothing for other labs)."""
    if second is None:
        return []
    if not isinstance(second, comparison.Missing):
        return [f"{lab_spec.id} compares two clusters: the second is {second.context} ({second.server}); each "
                f"submission gets the same scoped credentials there, deleted after it"]
    tried = "; ".join(second.reasons) or ", ".join(second.tried) or "none listed"
    return [f"WARNING: {lab_spec.id} compares two clusters and NO SECOND CLUSTER ANSWERS (tried: {tried}).",
            "  Grading anyway: the checks that need it record \"not probed\" (never a pass), and every student is "
            "listed for a regrade.",
            f"  To grade fully: {comparison.START_IT} (or name a running one with --compare-context CONTEXT), "
            "then run the regrade command printed at the end."]


def regrade_lines(course_dir: Path, lab: str, results: list["SubmissionResult"]) -> list[str]:
    """The closing line naming the students graded without their lab's second cluster, with the command that
    regrades them (empty when there are none)."""
    waiting = sorted(r.student for r in results if r.regrade)
    if not waiting:
        return []
    return [f"{len(waiting)} submission(s) of {lab} were graded without the second cluster (\"not probed\"); once it "
            f"runs, regrade them: {regrade.command(course_dir, lab, waiting)}"]


class Harness:
    def __init__(self, course_dir: Path, lab: str, context: str | None, boundary: str,
                 compare_context: str | None = None) -> None:
        self.course_dir = course_dir
        self.lab = lab
        self.lab_spec = spec.load_lab(lab)
        if compare_context and not self.lab_spec.compare_with:
            raise UsageError(f"--compare-context: lab {lab} compares nothing (its lab.yaml has no compare_with)")
        self.context = context or default_context()
        self.admin = Cluster.connect(self.context, timeout=10)
        found = find_second(self.lab_spec, self.admin, compare_context)
        # the admin connection to the second cluster, or why there is none (comparison.Missing); both None: no compare
        self.second = None if found is None or isinstance(found, comparison.Missing) else found
        self.second_missing = found if isinstance(found, comparison.Missing) else None
        self.control_plane = kind_control_plane(self.context) if docker_usable() else None
        if boundary == "auto":
            boundary = "docker" if self.control_plane else ""
            if not boundary:
                raise UsageError("no docker (or no kind control-plane container for context "
                                 f"{self.context}) to isolate submissions",
                                 hint="fix docker, or accept the weaker boundary with --boundary process")
        if boundary == "docker" and not self.control_plane:
            raise UsageError(f"--boundary docker needs the kind control-plane container of {self.context}")
        self.boundary = boundary
        if boundary == "docker":
            ensure_sandbox_image()

    def _verify(self, work: Path, pristine: Path, kubeconfig_host: Path, compare: bool = False) -> dict:
        """Every exercise of the submission in ONE trusted grading process, as a notebook's checks run them: each
        starts from its namespaces emptied by the engine (the same clean slate a learner's check() gets), and the
        namespaces were created fresh for this submission (Grants.create) and are deleted after it, so nothing of
        one submission meets the next. One process instead of one per exercise with the namespaces deleted and
        recreated in between: lab 04's eight exercises spent ~8 s each waiting for the namespace controller.
        ``compare``: the kubeconfig holds the second cluster's scoped context too, and graders.comparison is told
        its name (without it, a lab's comparison finds no second cluster there and reports "not probed")."""
        out = work / "verify.json"
        env = scrubbed_env({"HOME": str(work / "verify-home"), "KUBECONFIG": str(kubeconfig_host),
                             CONTEXT_ENV: SCRATCH_CONTEXT, PREPARED_ENV: "1",
                             **({comparison.ENV: COMPARE_CONTEXT} if compare else {})})
        (work / "verify-home").mkdir(exist_ok=True)
        try:
            proc = subprocess.run([sys.executable, "-m", "graders.course.verify", "--lab", self.lab,
                                   "--submission", str(pristine), "--out", str(out)],
                                  env=env, cwd=str(work), capture_output=True, text=True, timeout=VERIFY_TIMEOUT)
            failure = (proc.stderr.strip()[-2000:] or "no output") if proc.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            failure = f"the grading run did not finish within {VERIFY_TIMEOUT} s"
        records = json.loads(out.read_text(encoding="utf-8")) if out.exists() and not failure else {}
        return complete_records(self.lab_spec, records, failure)

    def new_result(self, student: str) -> SubmissionResult:
        return SubmissionResult(student, self.lab, boundary=self.boundary,
                                points={ex.id: ex.points for ex in self.lab_spec.exercises})

    def grade(self, student: str, force: bool) -> SubmissionResult:
        started = time.monotonic()
        result = self.new_result(student)
        submitted = self.course_dir / "submitted" / student / self.lab
        run_id = new_run_id(_safe_id(student))
        # the graded cluster's grant, and the same on the second cluster of a lab that compares two
        grants = [Grants.for_lab(cluster, self.lab_spec, run_id)
                  for cluster in (self.admin, self.second) if cluster is not None]
        namespace = self.lab_spec.all_namespaces[0]
        with tempfile.TemporaryDirectory(prefix="k8slab-autograde-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o700)
            pristine = work / "submission"
            try:
                shutil.copytree(submitted, pristine, ignore=_untrusted_copy_skips)
                tokens = [g.create() for g in grants]
                token = tokens[0]
                compare = (self.second, tokens[1], self.second.server) if self.second is not None else None
                host_cfg = work / "kubeconfig-host"
                host_cfg.write_text(yaml.safe_dump(scoped_kubeconfig(self.admin, token, self.admin.server,
                                                                     namespace, compare=compare)))
                records = self._verify(work, pristine, host_cfg, compare=compare is not None)
                if compare is not None:  # the notebook shows the records: it never gets the second cluster's token,
                    host_cfg.unlink()    # not even as a file its kernel could read behind --boundary process
                if self.boundary == "docker":
                    server = f"https://{self.control_plane[0]}:6443"
                    kcfg = work / "kubeconfig"
                    kcfg.write_text(yaml.safe_dump(scoped_kubeconfig(self.admin, token, server, namespace)))
                elif compare is not None:
                    kcfg = work / "kubeconfig-kernel"
                    kcfg.write_text(yaml.safe_dump(scoped_kubeconfig(self.admin, token, self.admin.server,
                                                                     namespace)))
                else:
                    kcfg = host_cfg
                if host_cfg.exists():
                    os.chmod(host_cfg, 0o644)
                self.notebook_and_record(work, student, records, kcfg, result, force)
                result.regrade = self._regrade_reason(records)
                if result.regrade:
                    regrade.mark(self.course_dir, self.lab, student, result.regrade)
                else:
                    regrade.clear(self.course_dir, self.lab, student)  # graded serially: outside view, both clusters
            except Exception as exc:  # noqa: BLE001 — one broken submission or hiccup must not stop the batch
                result.error = error_text(exc)
            finally:
                for failure in delete_all(grants):  # every cluster's, on Ctrl-C too
                    result.error = (result.error + "; " if result.error else "") + failure
        result.seconds = time.monotonic() - started
        return result

    def _regrade_reason(self, records: dict) -> str:
        """Why a submission of a lab that compares two clusters was not graded fully ("" when it was): no second
        cluster answered at the start, or the grading run could not reach it (its records say "not probed")."""
        if self.second_missing is not None:
            return "no second cluster answered when the run started: its comparisons say \"not probed\""
        if self.second is not None and any(comparison.NO_SECOND in str((rec or {}).get("message", ""))
                                           for rec in records.values()):
            return f"the second cluster ({self.second.context}) did not answer the grading run"
        return ""

    def notebook_and_record(self, work: Path, student: str, records: dict, kubeconfig: Path,
                            result: SubmissionResult, force: bool) -> None:
        """The step after grading, the same for the serial run and the parallel dispatcher
        (graders.course.dispatch): `nbgrader autograde` runs the notebook behind the boundary, its check and test
        cells showing ``records``, then the verified scores go into the gradebook (record_verified)."""
        container = f"k8slab-autograde-{_safe_id(student)}-{os.getpid()}"
        results = work / "results.json"
        results.write_text(json.dumps(records), encoding="utf-8")
        for path in (kubeconfig, results):
            os.chmod(path, 0o644)  # read-only mounts; the container runs without DAC override
        try:
            network = self.control_plane[1] if self.control_plane else ""
            jupyter = kernel_spec(work, self.boundary, kubeconfig, results, container, network)
            proc = nbgrader_autograde(self.course_dir, self.lab, student, jupyter, force)
            log = self.course_dir / "k8slab" / "autograde-logs" / self.lab
            log.mkdir(parents=True, exist_ok=True)
            (log / f"{student}.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
            if proc.returncode != 0:
                result.error = f"nbgrader autograde failed (log: {paths.relative(log / (student + '.log'))}): " + \
                               (proc.stderr.strip().splitlines() or ["?"])[-1]
            record_verified(self.course_dir, self.lab_spec, student, records, result)
        finally:
            if self.boundary == "docker":
                remove_container(container)

    def record_graded_elsewhere(self, student: str, records: dict, force: bool) -> SubmissionResult:
        """``notebook_and_record`` for records a grading Job produced: the notebook's kernel gets a kubeconfig
        with no credentials at all (its check and test cells only show the records; the run's namespaces are
        gone by now). A student recorded before (a failed run being retried) has an autograded notebook that
        nbgrader would keep: it is run again, so the feedback shows the new records."""
        started = time.monotonic()
        result = self.new_result(student)
        force = force or verified_file(self.course_dir, self.lab, student).exists()
        with tempfile.TemporaryDirectory(prefix="k8slab-autograde-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o700)
            kubeconfig = work / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(NO_CLUSTER_KUBECONFIG), encoding="utf-8")
            try:
                self.notebook_and_record(work, student, records, kubeconfig, result, force)
            except Exception as exc:  # noqa: BLE001 — as in grade(): recorded, the batch goes on
                result.error = error_text(exc)
        result.seconds = time.monotonic() - started
        return result


# A kube context that reaches nothing (no server answers on port 1) and holds no credential: what the notebook of a
# submission graded by a Job gets, so a cell that still calls the cluster fails at once instead of hanging.
NO_CLUSTER_KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": SCRATCH_CONTEXT,
    "clusters": [{"name": SCRATCH_CONTEXT, "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": SCRATCH_CONTEXT, "user": {}}],
    "contexts": [{"name": SCRATCH_CONTEXT, "context": {"cluster": SCRATCH_CONTEXT, "user": SCRATCH_CONTEXT}}]}


def error_text(exc: BaseException) -> str:
    """One line for a submission's error: our own errors as their message, anything else with its type."""
    return str(exc) if isinstance(exc, K8sLabError) else f"{type(exc).__name__}: {exc}"


def complete_records(lab_spec, records: dict, failure: str) -> dict:
    """``records`` with one for every exercise of the lab: an exercise the grading run wrote nothing for is recorded
    as not graded, with why (``failure``, else "no record for this exercise") -- never a silent 0."""
    for exercise in lab_spec.exercises:
        records.setdefault(f"{lab_spec.id}/{exercise.id}", {
            "score": 0.0, "points": exercise.points, "passed": False, "html": "",
            "message": "the grader could not run", "error": failure or "no record for this exercise"})
    return records


def verified_file(course_dir: Path, lab: str, student: str) -> Path:
    """The instructor-side copy of a student's verified records (record_verified writes it)."""
    return course_dir / "k8slab" / "verified" / lab / f"{student}.json"


def already_graded(course_dir: Path, lab: str, student: str) -> bool:
    """Whether a re-run may skip this student: its verified records exist and none says the grader could not run
    (a crash or a timeout is recorded, and retried by the next run)."""
    path = verified_file(course_dir, lab, student)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(records, dict) and bool(records) and \
        not any(isinstance(r, dict) and r.get("error") for r in records.values())


def _untrusted_copy_skips(directory: str, names: list[str]) -> set[str]:
    """What the pristine copy of a submission leaves out: notebook checkpoints, and every symbolic link — a link to
    /dev/zero would make the trusted grader read forever, one to a file of the instructor's would leak it."""
    return {name for name in names
            if name == ".ipynb_checkpoints" or os.path.islink(os.path.join(directory, name))}


_AUTOGRADE_PREPROCESSORS = [
    "graders.course.feedback.PrecomputedChecks",
    "nbgrader.preprocessors.Execute",
    "graders.course.feedback.RestoreSources",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


def nbgrader_autograde(course_dir: Path, lab: str, student: str, jupyter: Path | None, force: bool,
                       extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`nbgrader autograde LAB --student S` on the host (it owns the gradebook); with `jupyter` the kernel is the
    sandboxed one and check() cells show the verified records."""
    argv = [nbgrader_executable(), "autograde", lab, "--student", student]
    env = dict(os.environ, PYTHONPATH=str(paths.repo_root()), **(extra_env or {}))
    if jupyter is not None:
        argv += [f"--Execute.kernel_name={SANDBOX_KERNEL}",
                 "--Autograde.autograde_preprocessors=" + json.dumps(_AUTOGRADE_PREPROCESSORS)]
        env["JUPYTER_PATH"] = str(jupyter)
    if force:
        argv.append("--force")
    return subprocess.run(argv, cwd=course_dir, env=env, capture_output=True, text=True, timeout=7200)


def record_verified(course_dir: Path, lab_spec, student: str, records: dict, result: SubmissionResult) -> None:
    """Verified scores into the gradebook (over the notebook's own), and an instructor-side copy."""
    from nbgrader.api import MissingEntry

    verified = verified_file(course_dir, lab_spec.id, student)
    verified.parent.mkdir(parents=True, exist_ok=True)
    verified.write_text(json.dumps(records, indent=2), encoding="utf-8")
    for ex in lab_spec.exercises:
        rec = records.get(f"{lab_spec.id}/{ex.id}", {})
        result.scores[ex.id] = max(0.0, min(float(rec.get("score") or 0.0), ex.points))
        result.messages[ex.id] = rec.get("message", "")
        if rec.get("error"):
            result.error = (result.error + "; " if result.error else "") + f"{ex.id}: {rec['error'][-300:]}"
    with open_gradebook(course_dir) as gb:
        try:
            gb.find_submission(lab_spec.id, student)
        except MissingEntry:
            # The notebook could not be executed (e.g. it killed its kernel): the verified grade is still
            # recorded, on a blank submission.
            gb.update_or_create_student(student)
            gb.add_submission(lab_spec.id, student)
            result.error = result.error or "the notebook did not run; recorded the verified grade without it"
        for ex in lab_spec.exercises:
            try:
                grade = gb.find_grade(f"{ex.id}-test", lab_spec.id, lab_spec.id, student)
            except MissingEntry:
                result.error = (result.error + "; " if result.error else "") + f"no grade cell {ex.id}-test"
                continue
            result.notebook[ex.id] = grade.auto_score
            if grade.auto_score is None or abs(grade.auto_score - result.scores[ex.id]) > 1e-6:
                result.tampered.append(f"{ex.id}: notebook {grade.auto_score} vs verified {result.scores[ex.id]:g}")
            grade.auto_score = result.scores[ex.id]
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()


def submitted_students(course_dir: Path, lab: str) -> list[str]:
    base = course_dir / "submitted"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if (d / lab).is_dir())


def choose_students(course_dir: Path, lab: str, students: list[str] | None = None) -> list[str]:
    """Every (or the named) student with a submission of `lab`; a UsageError for a course directory that is none,
    a named student without a submission, or no submission at all."""
    if not (course_dir / "nbgrader_config.py").is_file():
        raise UsageError(f"{course_dir} is not a course directory (no nbgrader_config.py)",
                         hint="create it with `k8slab course build DIR`")
    available = submitted_students(course_dir, lab)
    chosen = students or available
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise UsageError(f"no submission of {lab} for {', '.join(missing)} under {course_dir / 'submitted'}",
                         hint=f"collect first: nbgrader collect {lab} (exchange) or nbgrader zip_collect {lab}")
    if not chosen:
        raise UsageError(f"no submissions of {lab} under {course_dir / 'submitted'}")
    return chosen


def autograde(course_dir: Path, lab: str, students: list[str] | None = None, boundary: str = "auto",
              context: str | None = None, force: bool = False, compare_context: str | None = None,
              say: Callable[[str], None] = print) -> list[SubmissionResult]:
    """Grade every (or the named) submission of `lab`, one at a time; returns one result per student. A lab that
    compares two clusters says first (``say``) which second cluster it grades with, or loudly that there is none."""
    chosen = choose_students(course_dir, lab, students)
    harness = Harness(course_dir, lab, context, boundary, compare_context)
    for line in start_lines(harness.lab_spec, harness.second if harness.second is not None else
                            harness.second_missing):
        say(line)
    results = []
    for student in chosen:
        results.append(harness.grade(student, force))
    return results
