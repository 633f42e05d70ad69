"""Kubernetes Networking Labs graders: one ``grade()`` behind every front end.

Public names (everything else is an implementation detail of its module):

* ``grade`` — the engine (returns a ``LabResult``); ``check`` and ``hint`` — notebooks; ``scored`` — nbgrader.
* ``Exercise``, ``Ctx``, ``CheckFailed``, ``StepResult``, ``Evidence``, ``Outcome`` — for lab grader modules.
"""
from graders._startup import import_jsonschema_quickly

import_jsonschema_quickly()  # before anything imports nbformat or kubernetes-validate (seconds saved)

from graders.engine import grade  # noqa: E402
from graders.errors import CheckFailed, GradingError, K8sLabError  # noqa: E402
from graders.exercise import Ctx, Exercise  # noqa: E402
from graders.model import Evidence, ExerciseResult, LabResult, Matrix, MatrixCell, Outcome, StepResult  # noqa: E402
from graders.hints import hint  # noqa: E402
from graders.nbgrader import scored  # noqa: E402
from graders.notebook import check  # noqa: E402

__all__ = ["grade", "check", "hint", "scored", "Exercise", "Ctx", "CheckFailed", "GradingError", "K8sLabError",
           "StepResult", "Evidence", "Outcome", "Matrix", "MatrixCell", "ExerciseResult", "LabResult"]
