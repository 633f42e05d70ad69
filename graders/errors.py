"""Exceptions of the grading engine, each named for what happened.

Every message names the object it is about (``Kind ns/name``) and, where we know it, the file and line
the object came from; errors that wrap a cause say what we were doing when it happened.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class K8sLabError(Exception):
    """Base of every error the engine raises on purpose. Front ends print ``str(error)``, never a traceback.

    ``hint`` is the one line that tells the reader what to do next.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class SpecError(K8sLabError):
    """A lab spec (labs/<id>/lab.yaml) or a lab grader module is missing or malformed."""


class UsageError(K8sLabError):
    """The caller asked for something that does not exist (unknown lab, exercise, missing directory)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submitted manifest: which object, where, and what."""

    message: str
    file: str = ""
    line: int = 0
    ref: str = ""  # "Kind ns/name", empty when the document has no identity yet

    @property
    def where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        if self.ref and self.where:
            return f"{self.ref} ({self.where}): {self.message}"
        if self.ref or self.where:
            return f"{self.ref or self.where}: {self.message}"
        return self.message


class SubmissionError(K8sLabError):
    """A submission was rejected before anything touched the cluster. Holds ALL problems found, not the first."""

    def __init__(self, problems: Sequence[Problem], *, hint: str = "") -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the submitted manifests:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]), hint=hint)


class ClusterUnreachable(K8sLabError):
    """No Kubernetes API server answered (within the connect timeout). ``hint`` says how to fix it."""


class ClusterError(K8sLabError):
    """A call to the cluster failed. ``ref`` names the object ("Pod ns/name") when there is one;
    ``reason`` is the API server's reason (e.g. "Invalid", "Forbidden") when it gave one."""

    def __init__(self, message: str, *, ref: str = "", reason: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.ref = ref
        self.reason = reason


class NotReady(ClusterError):
    """Workloads did not become ready in time. ``diagnoses`` holds one line per pod that is not ready
    (e.g. "Pod ns/web: ImagePullBackOff — image 'ngnix:1.27' not found")."""

    def __init__(self, message: str, *, diagnoses: Sequence[str] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.diagnoses = tuple(diagnoses)


class CheckFailed(K8sLabError):
    """Raised by a lab's static or live check: the submission does not do what the exercise asks.

    ``evidence`` is a tuple of ``graders.model.Evidence``; ``credit`` (0..1) allows partial credit.
    """

    def __init__(self, message: str, *, hint: str = "", evidence: Sequence[object] = (), credit: float = 0.0) -> None:
        super().__init__(message, hint=hint)
        self.evidence = tuple(evidence)
        self.credit = credit


class GradingError(Exception):
    """Raised by ``graders.scored`` (nbgrader) when an exercise fails. Its message is written for the student:
    what is wrong, why, and a hint. Deliberately not a K8sLabError: nbgrader shows it verbatim."""
