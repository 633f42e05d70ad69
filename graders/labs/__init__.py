"""Registry of lab grader modules: lab id -> module (``05-network-policy`` -> ``lab05_network_policy``).

Each module defines ``LAB_ID`` (the lab id, checked here) and ``EXERCISES: dict[str, Exercise]``. A lab whose
grader grows past one module lists the others in ``PARTS`` (``lab04_ingress_migrate``: named after the lab's
module, so that the lab id finds every part); their ``EXERCISES`` join the lab's.
"""
from __future__ import annotations

import importlib
import re
from types import ModuleType

from graders.errors import SpecError
from graders.exercise import Exercise

_LAB_ID = re.compile(r"^(?P<number>\d{2})-(?P<name>[a-z0-9-]+)$")


def module_name(lab_id: str) -> str:
    match = _LAB_ID.match(lab_id)
    if not match:
        raise SpecError(f"lab id {lab_id!r} must look like NN-name (e.g. 05-network-policy)")
    return f"lab{match['number']}_{match['name'].replace('-', '_')}"


def load(lab_id: str) -> ModuleType:
    """The grader module of a lab, checked for LAB_ID and EXERCISES."""
    name = f"{__name__}.{module_name(lab_id)}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            raise SpecError(f"lab {lab_id} has no grader module graders/labs/{module_name(lab_id)}.py") from None
        raise SpecError(f"importing the grader module {name} failed: {error}") from error
    if getattr(module, "LAB_ID", None) != lab_id:
        raise SpecError(f"{name}.LAB_ID is {getattr(module, 'LAB_ID', None)!r}, expected {lab_id!r}")
    exercises = getattr(module, "EXERCISES", None)
    if not isinstance(exercises, dict) or not all(isinstance(e, Exercise) for e in exercises.values()):
        raise SpecError(f"{name}.EXERCISES must be a dict of exercise id -> graders.Exercise")
    for part in getattr(module, "PARTS", ()):
        if not part.startswith(f"{module_name(lab_id)}_"):
            raise SpecError(f"{name}.PARTS: {part!r} must be named {module_name(lab_id)}_<what>")
        extra = getattr(importlib.import_module(f"{__name__}.{part}"), "EXERCISES", None)
        if not isinstance(extra, dict) or not all(isinstance(e, Exercise) for e in extra.values()):
            raise SpecError(f"{__name__}.{part}.EXERCISES must be a dict of exercise id -> graders.Exercise")
        exercises.update(extra)
    return module


def exercises(lab_id: str) -> dict[str, Exercise]:
    return load(lab_id).EXERCISES
