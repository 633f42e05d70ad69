"""Lab specs: labs/<id>/lab.yaml, read into frozen dataclasses.

One declarative file per lab is read by the engine, the notebook build, nbgrader and the tests. Every
problem in a spec is reported at once, naming the file and the field ("exercises[1].mistakes[0].message").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders import paths
from graders.errors import SpecError, UsageError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LAB_KEYS = {"id", "title", "namespaces", "exercises", "description", "namespace_labels",
             "reuse_unchanged_workloads", "compare_with"}
# A label key: an optional DNS-subdomain prefix and a name; a value: empty or a name (both at most 63 characters).
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# Labels the grader or the API server sets on every namespace: a lab may not declare them.
_RESERVED_LABEL_PREFIXES = ("k8slab.dev/", "kubernetes.io/metadata.name")
_EXERCISE_KEYS = {"id", "title", "points", "files", "allowed_kinds", "mistakes", "namespaces", "ready_timeout",
                  "description", "submission", "requires", "shares"}
# What the learner submits: Kubernetes objects (applied and probed), or one YAML file of answers to questions that
# the grader checks against the live cluster (graders.questions: observation and predict exercises).
SUBMISSIONS = ("manifests", "answers")
# What an exercise may need of the cluster beyond the course's own add-ons (``requires``): "mesh", a service mesh
# (Istio or Linkerd, online only: graders/mesh.py). On a cluster without it the engine reports the exercise "not
# graded" with what to run -- never a pass, never a failure of the learner's files.
REQUIREMENTS = ("mesh",)
# What an exercise shares with every other run on the cluster (``shares``): grading runs side by side take turns at
# it (graders/cluster/claims.py).
SHARED = {
    "node-ports": "node ports (one Service per port in the whole cluster)",
    "ingress-routes": "the ingress controller's routes (a host and path rule is matched across every namespace)",
}
_MISTAKE_KEYS = {"id", "message", "description"}
DEFAULT_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class MistakeSpec:
    id: str
    message: str  # fragment the failure message must contain
    description: str = ""


@dataclass(frozen=True)
class ExerciseSpec:
    lab: str
    id: str
    title: str
    points: float
    files: tuple[str, ...]
    allowed_kinds: tuple[str, ...]
    namespaces: tuple[str, ...]  # grader-owned; the first is the default for objects without one
    mistakes: tuple[MistakeSpec, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    description: str = ""
    root: Path = Path(".")  # repository root the spec was loaded from
    submission: str = "manifests"  # or "answers" (see SUBMISSIONS)
    requires: tuple[str, ...] = ()  # of REQUIREMENTS: what the cluster must offer for this exercise to be graded
    shares: tuple[str, ...] = ()  # of SHARED: cluster-wide things runs side by side take turns at

    @property
    def default_namespace(self) -> str:
        return self.namespaces[0]

    @property
    def starter_dir(self) -> Path:
        return self.root / "labs" / self.lab / self.id

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.lab / self.id

    def mistake_dir(self, mistake: MistakeSpec | str) -> Path:
        mistake_id = mistake if isinstance(mistake, str) else mistake.id
        return self.root / "solutions" / self.lab / "mistakes" / self.id / mistake_id

    @property
    def alternative_dirs(self) -> tuple[Path, ...]:
        """Correct submissions written differently from the reference: solutions/<lab>/alternatives/<exercise>/*/
        (optional; the live tests grade each like the solution)."""
        folder = self.root / "solutions" / self.lab / "alternatives" / self.id
        return tuple(sorted(d for d in folder.iterdir() if d.is_dir())) if folder.is_dir() else ()

    def mistake(self, mistake_id: str) -> MistakeSpec:
        for mistake in self.mistakes:
            if mistake.id == mistake_id:
                return mistake
        raise UsageError(f"lab {self.lab}, exercise {self.id} has no mistake {mistake_id!r}")


@dataclass(frozen=True)
class LabSpec:
    id: str
    title: str
    namespaces: tuple[str, ...]
    exercises: tuple[ExerciseSpec, ...]
    file: Path
    description: str = ""
    # Labels the grader sets on its namespaces at reset (namespace -> labels), e.g. env=production for lab 05's
    # namespaceSelectors; the learner does not set them (namespaces are cluster-scoped).
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)
    # Keep a Deployment the next exercise applies unchanged (graders/workload_reuse.py): for labs whose checks never
    # change a backend's pods.
    reuse_unchanged_workloads: bool = False
    # Kube contexts of a second cluster the lab compares the graded one with (lab 02: the same policy on a CNI that
    # does not enforce it), in order of preference; graders.comparison picks the first that answers.
    compare_with: tuple[str, ...] = ()

    def exercise(self, exercise_id: str) -> ExerciseSpec:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(e.id for e in self.exercises)
        raise UsageError(f"lab {self.id} has no exercise {exercise_id!r} (exercises: {known})")

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def all_namespaces(self) -> tuple[str, ...]:
        ordered: dict[str, None] = {}
        for name in (*self.namespaces, *(ns for e in self.exercises for ns in e.namespaces)):
            ordered[name] = None
        return tuple(ordered)


def lab_ids(root: Path | None = None) -> list[str]:
    labs = (root / "labs") if root else paths.labs_dir()
    if not labs.is_dir():
        return []
    return sorted(d.name for d in labs.iterdir() if (d / "lab.yaml").is_file())


def load_lab(lab_id: str, root: Path | None = None) -> LabSpec:
    root = root or paths.repo_root()
    file = root / "labs" / lab_id / "lab.yaml"
    if not file.is_file():
        known = ", ".join(lab_ids(root)) or "none found"
        raise UsageError(f"unknown lab {lab_id!r}: {file} does not exist (labs: {known})")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise SpecError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from error
    return parse_lab(raw, file=file, root=root, expected_id=lab_id)


def all_labs(root: Path | None = None) -> list[LabSpec]:
    return [load_lab(lab_id, root) for lab_id in lab_ids(root)]


def parse_lab(raw: Any, *, file: Path, root: Path, expected_id: str | None = None) -> LabSpec:
    """Validate and convert a parsed lab.yaml; raises SpecError listing every problem."""
    problems = _Problems(file)
    if not isinstance(raw, dict):
        problems.add("", "must be a mapping with id, title, namespaces, exercises")
        problems.raise_if_any()
    problems.unknown_keys("", raw, _LAB_KEYS)
    lab_id = problems.string(raw, "id", "")
    if expected_id and lab_id and lab_id != expected_id:
        problems.add("id", f"is {lab_id!r} but the directory is {expected_id!r} (one lab id everywhere)")
    title = problems.string(raw, "title", "")
    namespaces = problems.namespaces(raw.get("namespaces"), "namespaces")
    exercises: list[ExerciseSpec] = []
    raw_exercises = raw.get("exercises")
    if not isinstance(raw_exercises, list) or not raw_exercises:
        problems.add("exercises", "must be a non-empty list")
        raw_exercises = []
    seen: set[str] = set()
    for index, item in enumerate(raw_exercises):
        exercise = _parse_exercise(item, f"exercises[{index}]", problems, lab_id, namespaces, root)
        if exercise is None:
            continue
        if exercise.id in seen:
            problems.add(f"exercises[{index}].id", f"duplicate exercise id {exercise.id!r}")
        seen.add(exercise.id)
        exercises.append(exercise)
    owned = {*namespaces, *(ns for e in exercises for ns in e.namespaces)}
    namespace_labels = problems.namespace_labels(raw.get("namespace_labels", {}), "namespace_labels", owned)
    reuse = raw.get("reuse_unchanged_workloads", False)
    if not isinstance(reuse, bool):
        problems.add("reuse_unchanged_workloads", f"must be true or false, got {reuse!r}")
    compare_with = raw.get("compare_with", [])
    if not isinstance(compare_with, list) or not all(isinstance(c, str) and c.strip() for c in compare_with):
        problems.add("compare_with", f"must be a list of kube context names (non-empty strings), got {compare_with!r}")
        compare_with = []
    problems.raise_if_any()
    return LabSpec(id=lab_id, title=title, namespaces=namespaces, exercises=tuple(exercises), file=file,
                   description=str(raw.get("description", "")), namespace_labels=namespace_labels,
                   reuse_unchanged_workloads=reuse is True, compare_with=tuple(c.strip() for c in compare_with))


def _parse_exercise(raw: Any, where: str, problems: "_Problems", lab_id: str, lab_namespaces: tuple[str, ...],
                    root: Path) -> ExerciseSpec | None:
    if not isinstance(raw, dict):
        problems.add(where, "must be a mapping")
        return None
    problems.unknown_keys(where, raw, _EXERCISE_KEYS)
    exercise_id = problems.string(raw, "id", where)
    if exercise_id and not _DNS_LABEL.match(exercise_id):
        problems.add(f"{where}.id", f"{exercise_id!r} must be lower-case letters, digits and '-' (it names a directory)")
    points = raw.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        problems.add(f"{where}.points", f"must be a positive number, got {points!r}")
        points = 0
    namespaces = problems.namespaces(raw["namespaces"], f"{where}.namespaces") if "namespaces" in raw else lab_namespaces
    ready_timeout = raw.get("ready_timeout", DEFAULT_READY_TIMEOUT)
    if isinstance(ready_timeout, bool) or not isinstance(ready_timeout, (int, float)) or ready_timeout <= 0:
        problems.add(f"{where}.ready_timeout", f"must be a positive number of seconds, got {ready_timeout!r}")
        ready_timeout = DEFAULT_READY_TIMEOUT
    mistakes: list[MistakeSpec] = []
    raw_mistakes = raw.get("mistakes", [])
    if not isinstance(raw_mistakes, list):
        problems.add(f"{where}.mistakes", "must be a list")
        raw_mistakes = []
    for index, item in enumerate(raw_mistakes):
        mistake_where = f"{where}.mistakes[{index}]"
        if not isinstance(item, dict):
            problems.add(mistake_where, "must be a mapping with id and message")
            continue
        problems.unknown_keys(mistake_where, item, _MISTAKE_KEYS)
        mistake = MistakeSpec(id=problems.string(item, "id", mistake_where),
                              message=problems.string(item, "message", mistake_where),
                              description=str(item.get("description", "")))
        if mistake.id in {m.id for m in mistakes}:
            problems.add(f"{mistake_where}.id", f"duplicate mistake id {mistake.id!r}")
        mistakes.append(mistake)
    submission = raw.get("submission", "manifests")
    files = problems.strings(raw, "files", where)
    if submission not in SUBMISSIONS:
        problems.add(f"{where}.submission", f"must be one of {', '.join(SUBMISSIONS)}, got {submission!r}")
    if submission == "answers":
        if len(files) > 1:
            problems.add(f"{where}.files", "an answers exercise has exactly one file (its answers)")
        if raw.get("allowed_kinds"):
            problems.add(f"{where}.allowed_kinds", "an answers exercise applies no objects: leave it out")
        allowed_kinds: tuple[str, ...] = ()
    else:
        allowed_kinds = problems.strings(raw, "allowed_kinds", where)
    requires = problems.chosen(raw, "requires", REQUIREMENTS, where)
    shares = problems.chosen(raw, "shares", tuple(SHARED), where)
    return ExerciseSpec(
        lab=lab_id, id=exercise_id, title=problems.string(raw, "title", where), points=float(points),
        files=files, allowed_kinds=allowed_kinds,
        namespaces=namespaces, mistakes=tuple(mistakes), ready_timeout=float(ready_timeout),
        description=str(raw.get("description", "")), root=root, submission=str(submission),
        requires=requires, shares=shares,
    )


class _Problems:
    """Collects spec problems so a spec author sees all of them in one run."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{field}: {message}" if field else message)

    def raise_if_any(self) -> None:
        if self.items:
            lines = "\n".join(f"  - {item}" for item in self.items)
            raise SpecError(f"invalid lab spec {self.file}:\n{lines}")

    def unknown_keys(self, where: str, raw: dict, allowed: set[str]) -> None:
        for key in sorted(set(raw) - allowed, key=str):
            self.add(_join(where, str(key)), f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def string(self, raw: dict, key: str, where: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            self.add(_join(where, key), f"must be a non-empty string, got {value!r}")
            return ""
        return value

    def strings(self, raw: dict, key: str, where: str) -> tuple[str, ...]:
        value = raw.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.add(_join(where, key), f"must be a non-empty list of strings, got {value!r}")
            return ()
        return tuple(value)

    def chosen(self, raw: dict, key: str, allowed: tuple[str, ...], where: str) -> tuple[str, ...]:
        """An optional word of ``allowed``, or a list of them (each once)."""
        value = raw.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or any(v not in allowed for v in value):
            self.add(_join(where, key), f"must be one of {', '.join(allowed)} (or a list of them), "
                                        f"got {raw.get(key)!r}")
            return ()
        return tuple(dict.fromkeys(value))

    def namespaces(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.add(where, "must be a non-empty list of namespace names")
            return ()
        for name in value:
            if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 63:
                self.add(where, f"{name!r} is not a valid namespace name")
        return tuple(str(name) for name in value)


    def namespace_labels(self, value: Any, where: str, owned: set[str]) -> dict[str, dict[str, str]]:
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            self.add(where, "must map namespace names to their labels ({name: {key: value}})")
            return {}
        for name, labels in value.items():
            here = f"{where}.{name}"
            if name not in owned:
                self.add(here, f"{name!r} is not one of the lab's namespaces ({', '.join(sorted(owned))})")
            for key, label in labels.items():
                if not _label_key_ok(key):
                    self.add(f"{here}.{key}", "is not a valid label key")
                elif str(key).startswith(_RESERVED_LABEL_PREFIXES):
                    self.add(f"{here}.{key}", "is set by the grader or the API server, not by a lab")
                if not isinstance(label, str) or (label and not _LABEL_NAME.match(label)):
                    self.add(f"{here}.{key}", f"{label!r} is not a valid label value (a string, quoted if it "
                                              f"looks like a number or a boolean)")
        return {str(name): {str(k): str(v) for k, v in labels.items()} for name, labels in value.items()}


def _label_key_ok(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and (not slash or bool(_LABEL_PREFIX.match(prefix)))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
