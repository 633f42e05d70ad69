"""The grading engine: one ``grade()`` every front end calls, returning the same ``LabResult``.

Per exercise it runs kind-style steps, each with a start/end status, stopping at the first failing level:

    parse   offline: YAML (file:line), schema, safety policy            graders.manifests
    admit   owned namespaces reset, server-side dry-run of every object  graders.cluster
    apply   server-side apply, readiness wait with a diagnosis           graders.cluster
    static  what the manifests should do, computed without traffic      lab module (optional)
    live    real probes compared with the exercise's target              lab module

An exercise whose spec ``requires`` what the cluster lacks (a service mesh, graders/mesh.py) stops after parse and
is reported "not graded" (``ExerciseResult.ungraded``) with what to run: nothing is applied, no namespace touched.

Nothing touches the cluster before ``parse`` passes; the connection is opened in the background meanwhile, so
"no cluster" is diagnosed within the connect timeout even when parsing is slow. Each exercise starts in emptied
namespaces (emptying takes ~1 s, recreating a namespace 5-12 s) that still hold the grader's own pods (probe, client,
world pods: reused while their manifest is unchanged, see ``Cluster.ensure_pods``). After the last exercise that
uses a namespace it is emptied and deleted (``teardown="delete"``: `k8slab grade`, nbgrader), emptied of the
learner's objects only (``"empty"``: a notebook's ``check()`` and test suites — the next check starts in seconds),
or kept to inspect (``"keep"``).
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from graders import labs, manifests, mesh, nsview, questions, runlock, workload_reuse
from graders import spec as specs
from graders.cluster import ClusterAPI, claims, new_run_id
from graders.cluster.names import pin_kubectl
from graders.errors import (CheckFailed, ClusterError, K8sLabError, NotReady, Problem, SpecError, SubmissionError,
                            UsageError)
from graders.exercise import Ctx, Exercise
from graders.model import Evidence, ExerciseResult, LabResult, StepResult
from graders.nscluster import MappedCluster
from graders.nsmap import NamespaceMap
from graders.status import QuietStatus, Status

# Connecting must leave time to print the diagnosis inside the 5 s the course promises.
CONNECT_TIMEOUT = 4.0
_NOT_YOUR_FAULT = "the grader itself failed (a bug in the course, not in your manifests)"


TEARDOWNS = ("delete", "empty", "keep")


@dataclass(frozen=True)
class Options:
    teardown: str = "delete"
    verbose: bool = False
    runner_factory: Callable[[Any], Any] | None = None
    reset_kinds: tuple[str, ...] = ()  # every kind the lab's submissions may hold: what a reset must remove
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # the lab spec's, set at reset
    explain: Callable[[str], str] | None = None  # the lab module's optional explain_admission(message) -> str
    reuse_workloads: bool = False  # keep Deployments a submission applies unchanged (graders/workload_reuse.py)
    namespace_map: NamespaceMap = field(default_factory=NamespaceMap.identity)  # the lab's names -> the run's

    # The engine's own steps speak the run's real names; with the identity map these change (and copy) nothing.

    def real_namespaces(self, logical: Sequence[str]) -> list[str]:
        return [self.namespace_map.real(name) for name in logical]

    def real_object(self, obj: dict) -> dict:
        return obj if self.namespace_map.is_identity else self.namespace_map.to_real(obj)

    def real_labels(self, namespaces: Sequence[str]) -> Mapping[str, Mapping[str, str]]:
        """The lab's namespace labels (env=production) for the real namespaces, each also labelled with its
        logical name (nsmap.LOGICAL_LABEL) so that a person or a cleanup can tell what a real namespace is."""
        if self.namespace_map.is_identity:
            return self.namespace_labels
        return {real: self.namespace_map.labels_for(real, self.namespace_labels) for real in namespaces}

    def run_lock_scope(self) -> str:
        """Runs under different maps own different namespaces: they need not wait for each other."""
        reals = sorted(self.namespace_map.logical_to_real.values())
        return "" if self.namespace_map.is_identity else "-".join(reals)


def grade(lab_id: str, exercise: str | None = None, submission: Path | str | None = None, *, keep: bool = False,
          verbose: bool = False, cluster: ClusterAPI | None = None, context: str | None = None,
          status: Status | None = None, connect_timeout: float = CONNECT_TIMEOUT,
          runner_factory: Callable[[Any], Any] | None = None, teardown: str = "delete",
          reuse_workloads: bool | None = None, namespace_map: NamespaceMap | None = None) -> LabResult:
    """Grade one exercise (or every exercise) of a lab.

    ``submission``: None reads the learner's files in labs/<lab>/<exercise>/; a directory holding per-exercise
    subdirectories; or, with ``exercise`` given, the exercise's files themselves (a directory or one file).
    ``cluster``: an already connected cluster (pytest reuses one); otherwise one is connected for ``context``.
    ``teardown``: what happens to the namespaces afterwards (see the module doc); ``keep=True`` means "keep".
    ``reuse_workloads``: None follows the lab's ``reuse_unchanged_workloads``; the benchmark measures both.
    ``namespace_map``: the run's real namespaces (``NamespaceMap.for_run``) when many runs share one cluster;
    None keeps the lab's names. Either way the result speaks the lab's names (graders.nsview).

    Raises UsageError/SpecError for bad arguments or specs and ClusterUnreachable when a step needs the
    cluster and none answers; every failure of the learner's manifests is a failed ExerciseResult instead.
    """
    status = status or QuietStatus()
    if teardown not in TEARDOWNS:
        raise UsageError(f"teardown must be one of {', '.join(TEARDOWNS)}, not {teardown!r}")
    lab = specs.load_lab(lab_id)
    kinds = tuple(dict.fromkeys(kind for ex in lab.exercises for kind in ex.allowed_kinds))
    options = Options(teardown="keep" if keep else teardown, verbose=verbose, runner_factory=runner_factory,
                      reset_kinds=kinds, namespace_labels=lab.namespace_labels,
                      reuse_workloads=lab.reuse_unchanged_workloads if reuse_workloads is None else reuse_workloads,
                      explain=getattr(labs.load(lab_id), "explain_admission", None),
                      namespace_map=namespace_map or NamespaceMap.identity())
    checks = labs.exercises(lab_id)
    selected = [lab.exercise(exercise)] if exercise else list(lab.exercises)
    unchecked = [ex.id for ex in selected if ex.id not in checks]
    if unchecked:
        raise SpecError(f"graders/labs/{labs.module_name(lab.id)}.py has no check for {', '.join(unchecked)}")
    if submission is not None and not Path(submission).exists():
        raise UsageError(f"submission {submission} does not exist")
    connection = _Connection(cluster, context, connect_timeout)

    parsed: dict[str, StepResult] = {}
    submissions: dict[str, manifests.Submission | Mapping[str, questions.Answer]] = {}
    for ex in selected:
        sources = sources_for(ex, submission, single=exercise is not None)
        if ex.submission == "answers":
            status.start(f"{ex.id}: reading your answers")
            step, found = _parse_answers(ex, sources, checks[ex.id])
        else:
            status.start(f"{ex.id}: checking manifests")
            step, found = _parse(ex, sources, options.explain)
        status.end(step.passed, "" if step.passed else "rejected before touching the cluster")
        parsed[ex.id] = step
        if found is not None:
            submissions[ex.id] = found

    results: list[ExerciseResult] = []
    to_run = [ex for ex in selected if ex.id in submissions]
    # what the cluster lacks for an exercise (spec ``requires``: a mesh): not graded, nothing applied
    unmet = unmet_requirements([ex for ex in to_run if ex.requires], connection.get) if any(
        ex.requires for ex in to_run) else {}
    to_run = [ex for ex in to_run if ex.id not in unmet]
    for ex in selected:
        if ex.id not in submissions:
            results.append(_result(ex, [parsed[ex.id]]))
            continue
        if ex.id in unmet:
            results.append(_ungraded(ex, parsed[ex.id], *unmet[ex.id]))
            continue
        later = {ns for other in to_run[to_run.index(ex) + 1:] for ns in other.namespaces}
        done_with = [ns for ns in ex.namespaces if ns not in later]  # the next exercise's reset empties the rest
        live_cluster = connection.get()  # raises ClusterUnreachable with a fix
        context = getattr(live_cluster, "context", "")
        with runlock.exclusive(context, scope=options.run_lock_scope(),
                               on_wait=lambda: status.start(f"{ex.id}: waiting for another grading run "
                                                            f"on {context} to finish")):
            steps = [parsed[ex.id], *_run_on_cluster(ex, submissions[ex.id], checks[ex.id], live_cluster,
                                                     status, options, done_with)]
        results.append(_result(ex, steps))
    return nsview.to_logical(LabResult(lab=lab.id, title=lab.title, exercises=tuple(results)), options.namespace_map)


def unmet_requirements(exercises: Sequence[specs.ExerciseSpec],
                       cluster_of: Callable[[], ClusterAPI]) -> dict[str, tuple[str, str]]:
    """{exercise id: (why it cannot be graded on this cluster, what to do)} for the exercises whose ``requires``
    the cluster does not meet (each requirement is looked up once). ``cluster_of`` connects (raises
    ClusterUnreachable)."""
    found: dict[str, tuple[str, str]] = {}
    looked: dict[str, str] = {}
    for ex in exercises:
        for requirement in ex.requires:
            if requirement not in looked:
                looked[requirement] = mesh.unmet(cluster_of()) if requirement == "mesh" else ""
            if looked[requirement]:
                found[ex.id] = (looked[requirement], mesh.NEEDS_MESH_HINT if requirement == "mesh" else "")
                break
    return found


def _ungraded(ex: specs.ExerciseSpec, parsed: StepResult, reason: str, hint: str) -> ExerciseResult:
    """An exercise this cluster cannot grade: its files passed the offline checks; nothing was applied."""
    step = StepResult("requires", False, reason, hint=hint)
    return ExerciseResult(ex.lab, ex.id, ex.title, ex.points, 0.0, False, reason, hint=hint, steps=(parsed, step),
                          ungraded=reason)


def sources_for(ex: specs.ExerciseSpec, submission: Path | str | None, *, single: bool) -> list[Path]:
    """Where the files of one exercise are (see ``grade``)."""
    if submission is None:
        return [ex.starter_dir]
    base = Path(submission)
    if (base / ex.id).is_dir():
        return [base / ex.id]
    if single:
        return [base]
    return [base / ex.id]  # missing: parse reports it as the exercise's problem, other exercises still run


# ------------------------------------------------------------------------------------------ steps

def _parse(ex: specs.ExerciseSpec, sources: Sequence[Path],
           explain: Callable[[str], str] | None = None) -> tuple[StepResult, manifests.Submission | None]:
    try:
        found = manifests.parse_submission(sources, allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    except SubmissionError as error:
        # the offline schema stands in for the API server: the lab explains its rejections the same way
        explained = SubmissionError([replace(p, message=p.message + _why(p.message, explain)) for p in error.problems])
        return StepResult("parse", False, explained.message, hint=_parse_hint(error.problems)), None
    count = len(found.manifests)
    evidence = tuple(Evidence.text("note", note) for note in found.notes)
    return StepResult("parse", True, f"{count} object{'s' if count != 1 else ''} valid (schema {found.schema_version})",
                      evidence=evidence), found


def _parse_answers(ex: specs.ExerciseSpec, sources: Sequence[Path],
                   checks: Exercise) -> tuple[StepResult, Mapping[str, questions.Answer] | None]:
    try:
        found = questions.parse_answers(sources, checks.questions, ex.files[0])
    except SubmissionError as error:
        return StepResult("parse", False, error.message,
                          hint="each line above names the question, the file and line, and what to change"), None
    answered = sum(a.value is not None for a in found.values())
    return StepResult("parse", True, f"{answered} of {len(found)} questions answered"), found


def _run_on_cluster(ex: specs.ExerciseSpec, found: manifests.Submission | Mapping[str, questions.Answer],
                    checks: Exercise, cluster: ClusterAPI, status: Status, options: Options,
                    done_with: Sequence[str]) -> list[StepResult]:
    """admit -> apply -> static -> live (answers: live only), stopping at the first failure; then `done_with`
    is torn down."""
    run_id = new_run_id()  # stamped on the namespaces (label k8slab.dev/run) to tell runs apart
    # the checks speak the lab's names; under a map they see the cluster (and probe it) through the map
    seen = cluster if options.namespace_map.is_identity else MappedCluster(cluster, options.namespace_map)
    plan: list[tuple[str, str, Callable[[], StepResult | None]]]
    if isinstance(found, manifests.Submission):
        ctx = Ctx(spec=ex, objects=found.manifests, cluster=seen, run_id=run_id, verbose=options.verbose,
                  runner_factory=options.runner_factory, teardown=options.teardown)
        plan = [
            ("admit", "admission (server-side dry-run)", lambda: _admit(ex, found, cluster, run_id, options)),
            ("apply", "apply and wait until ready", lambda: _apply(ex, found, cluster, options)),
        ]
        if checks.static is not None:
            plan.append(("static", "what the manifests should do", lambda: checks.static(ctx)))
    else:
        ctx = Ctx(spec=ex, objects=(), cluster=seen, run_id=run_id, verbose=options.verbose,
                  runner_factory=options.runner_factory, answers=found, teardown=options.teardown)
        plan = [("admit", "the grader's namespaces", lambda: _reset_only(ex, cluster, run_id, options))]
    if checks.live is not None:
        text = "your answers against the cluster" if ctx.answers else "live traffic"
        plan.append(("live", text, lambda: checks.live(ctx)))
    steps: list[StepResult] = []
    try:
        with _turn(ex, cluster, options, found):
            try:
                for name, text, run in plan:
                    status.start(f"{ex.id}: {text}")
                    step = _run_step(name, run, options.verbose)
                    status.end(step.passed)
                    steps.append(step)
                    if not step.passed:
                        break
                if len(steps) > 1:  # past admit: the namespaces carry our run id unless another run took them over
                    steps[-1] = _unless_taken_over(steps[-1], options.real_namespaces(ex.namespaces), cluster, run_id)
            finally:
                cleanup = _teardown(ex, cluster, options, done_with, found)
                if cleanup is not None and steps:
                    steps[-1] = replace(steps[-1], evidence=(*steps[-1].evidence, cleanup))
    except ClusterError as error:  # only taking a turn raises here: every step catches its own
        if steps:
            raise
        return [StepResult("admit", False, f"could not run: {error.message}", hint=error.hint)]
    return steps


@contextlib.contextmanager
def _turn(ex: specs.ExerciseSpec, cluster: ClusterAPI, options: Options,
          found: manifests.Submission | Mapping[str, questions.Answer]) -> Iterator[None]:
    """Runs side by side (a namespace map) take turns at what the exercise shares cluster-wide (lab.yaml
    ``shares``: graders.cluster.claims), until its namespaces are emptied again, so that the next run finds the node port
    or the route free. Single-student grading needs no turn (graders.runlock)."""
    if not ex.shares or options.namespace_map.is_identity:
        yield
        return
    turns = claims.for_cluster(cluster, options.namespace_map.real(ex.default_namespace))
    with turns.held(ex.shares):
        try:
            yield
        finally:
            with contextlib.suppress(K8sLabError):
                cluster.empty_namespaces(options.real_namespaces(ex.namespaces), kinds=options.reset_kinds,
                                         keep_fixtures=True, keep_deployments=_reusable(found, cluster, options))


def _unless_taken_over(step: StepResult, namespaces: list[str], cluster: ClusterAPI, run_id: str) -> StepResult:
    """Whatever this run observed is void if another grading run reset its namespaces meanwhile (a second
    notebook or terminal on another machine, which the local run lock cannot see): say so instead."""
    try:
        cluster.check_run(namespaces, run_id)
    except ClusterError as error:
        return StepResult(step.step, False, error.message, hint=error.hint)
    return step


def _run_step(name: str, run: Callable[[], StepResult | None], verbose: bool) -> StepResult:
    """Run one step; turn what it raises into a StepResult (a learner never sees a traceback)."""
    try:
        result = run()
    except CheckFailed as error:
        return StepResult(name, False, error.message, hint=error.hint, evidence=error.evidence, credit=error.credit)
    except NotReady as error:
        rows = [(line,) for line in error.diagnoses]
        evidence = (Evidence.table("pods that are not ready", ("diagnosis",), rows),) if rows else ()
        return StepResult(name, False, error.message, hint=error.hint, evidence=evidence)
    except K8sLabError as error:
        return StepResult(name, False, error.message, hint=error.hint)
    except Exception as error:  # noqa: BLE001 — a bug in a check must still produce a readable result
        evidence = (Evidence.text("traceback", traceback.format_exc()),) if verbose else ()
        return StepResult(name, False, f"{_NOT_YOUR_FAULT}: {type(error).__name__}: {error}",
                          hint="tell your instructor; run with --verbose for the traceback", evidence=evidence)
    if result is None:
        return StepResult(name, True)
    return replace(result, step=name)


def _reusable(found: manifests.Submission | Mapping[str, questions.Answer], cluster: ClusterAPI,
              options: Options) -> dict[str, list[str]]:
    """{namespace: [Deployment]} that run exactly as the submission applies them, for a lab that reuses them."""
    if not options.reuse_workloads or not isinstance(found, manifests.Submission):
        return {}
    nsmap = options.namespace_map
    return workload_reuse.keep([(nsmap.real(m.namespace), m.name, options.real_object(m.obj))
                                for m in found.manifests if m.kind == "Deployment"],
                               lambda ns, name: cluster.get("apps/v1", "Deployment", ns, name))


def _admit(ex: specs.ExerciseSpec, found: manifests.Submission, cluster: ClusterAPI, run_id: str,
           options: Options) -> StepResult:
    kept = _reusable(found, cluster, options)
    namespaces = options.real_namespaces(ex.namespaces)
    cluster.reset_namespaces(namespaces, run_id, kinds=options.reset_kinds, labels=options.real_labels(namespaces),
                             keep_fixtures=True, keep_deployments=kept)
    problems: list[Problem] = []
    for manifest in found.manifests:  # one object at a time, so every rejection is reported, not the first
        try:
            cluster.dry_run([options.real_object(manifest.obj)])
        except ClusterError as error:
            # the API server names the object by its real namespace; we name it as the learner wrote it
            words = _strip_ref(options.namespace_map.text_to_logical(error.message), manifest)
            problems.append(manifest.problem(f"rejected by the API server: {words}{_why(words, options.explain)}"))
    if problems:
        error = SubmissionError(problems)
        raise CheckFailed(error.message, hint="the API server's own words are above: fix that field and re-run")
    return StepResult("admit", True, f"the API server accepts all {len(found.manifests)} objects")


def _reset_only(ex: specs.ExerciseSpec, cluster: ClusterAPI, run_id: str, options: Options) -> StepResult:
    """An answers exercise applies nothing, but its namespaces are reset and stamped like any other run: the
    grader's pods that its facts come from live there."""
    namespaces = options.real_namespaces(ex.namespaces)
    cluster.reset_namespaces(namespaces, run_id, kinds=options.reset_kinds, labels=options.real_labels(namespaces),
                             keep_fixtures=True)
    return StepResult("admit", True, f"namespaces ready: {', '.join(ex.namespaces)}")


def _apply(ex: specs.ExerciseSpec, found: manifests.Submission, cluster: ClusterAPI,
           options: Options) -> StepResult:
    reuse = options.reuse_workloads
    objects = [options.real_object(m.obj) for m in found.manifests]
    cluster.apply([workload_reuse.stamped(obj) if reuse and m.kind == "Deployment" else obj
                   for m, obj in zip(found.manifests, objects)])
    cluster.wait_ready(options.real_namespaces(ex.namespaces), timeout=ex.ready_timeout)
    return StepResult("apply", True, "applied; every pod is ready")


def _teardown(ex: specs.ExerciseSpec, cluster: ClusterAPI, options: Options, done_with: Sequence[str],
              found: manifests.Submission | Mapping[str, questions.Answer]) -> Evidence | None:
    if options.teardown == "keep":
        inspect = pin_kubectl(f"kubectl get all -n {options.namespace_map.real(ex.default_namespace)}",
                              getattr(cluster, "context", "") or "")
        kept = ", ".join(options.real_namespaces(ex.namespaces))
        return Evidence.text("kept for inspection", f"namespaces kept: {kept} ({inspect})")
    if not done_with:
        return None
    try:
        # "empty" keeps the grader's own pods for the next check, and in a lab that reuses workloads the
        # submission's running Deployments (a re-check with the same backends skips restarting them); "delete"
        # removes the namespace, pods and all
        empty = options.teardown == "empty"
        namespaces = options.real_namespaces(done_with)
        cluster.empty_namespaces(namespaces, kinds=options.reset_kinds, keep_fixtures=empty,
                                 keep_deployments=_reusable(found, cluster, options) if empty else None)
        if options.teardown == "delete":
            # the namespace controller finishes in the background; the next run's reset waits for it if needed
            cluster.delete_namespaces(namespaces, wait=False)
    except K8sLabError as error:
        return Evidence.text("cleanup failed", str(error))
    return None


# ----------------------------------------------------------------------------------------- results

def _result(ex: specs.ExerciseSpec, steps: list[StepResult]) -> ExerciseResult:
    failed = next((s for s in steps if not s.passed), None)
    credit = math.prod(s.effective_credit for s in steps)
    score = round(ex.points * credit, 2)
    if failed is None:
        last = steps[-1]
        evidence = tuple(e for s in steps for e in s.evidence)
        return ExerciseResult(ex.lab, ex.id, ex.title, ex.points, score, True, last.message or "passed",
                              steps=tuple(steps), evidence=evidence)
    return ExerciseResult(ex.lab, ex.id, ex.title, ex.points, score, False, failed.message, hint=failed.hint,
                          steps=tuple(steps), evidence=failed.evidence)


def _parse_hint(problems: Sequence[Problem]) -> str:
    text = " ".join(p.message for p in problems)
    if "invalid YAML" in text:
        return "YAML is indentation-sensitive: look at the line named above and the one before it"
    if "schema" in text:
        return "a field name or value does not exist in this Kubernetes version: check its spelling and nesting"
    return "each line above names the object, the file and line, and what to change"


def _why(rejection: str, explain: Callable[[str], str] | None) -> str:
    """The lab's explanation of a rejection, to follow its words (empty when the lab has none for it)."""
    because = explain(rejection) if explain is not None else ""
    return f" — why: {because}" if because else ""


def _strip_ref(message: str, manifest: manifests.Manifest) -> str:
    """The API server's words without the "<what we were doing> Kind ns/name: " prefix: we name the object
    ourselves, with its file and line."""
    marker = f"{manifest.ref}: "
    return message.split(marker, 1)[1] if marker in message else message


# -------------------------------------------------------------------------------------- connecting

class _Connection:
    """Connects in the background from the moment grading starts; ``get`` waits for it only when needed.

    ``timeout`` bounds the whole attempt, importing the kubernetes client included (seconds on a busy machine)."""

    def __init__(self, cluster: ClusterAPI, context: str | None, timeout: float) -> None:
        self._cluster = cluster
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if cluster is None:
            deadline = time.monotonic() + timeout
            # daemon: when every submission is rejected offline, nobody waits for a slow connect
            self._thread = threading.Thread(target=self._connect, args=(context, deadline), daemon=True,
                                            name="k8slab-connect")
            self._thread.start()

    def _connect(self, context: str | None, deadline: float) -> None:
        try:
            from graders.cluster import Cluster

            self._cluster = Cluster.connect(context, timeout=max(1.0, deadline - time.monotonic()))
        except BaseException as error:  # noqa: BLE001 — re-raised in the caller's thread by get()
            self._error = error

    def get(self) -> ClusterAPI:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        return self._cluster

