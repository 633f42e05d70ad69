"""graders.nsview: a result in real names reads in the lab's names, every field of it; the identity map (and a
result with nothing to translate) hands back the very same objects."""
from __future__ import annotations

import dataclasses
import typing

from graders import model, nsview
from graders.model import (Evidence, ExerciseResult, LabResult, Matrix, MatrixCell, Outcome, StepResult, Table)
from graders.nsmap import NamespaceMap

NSMAP = NamespaceMap.for_run(["production", "staging"], "r1")
PROD, STAGING = NSMAP.real("production"), NSMAP.real("staging")


def _result(prod: str, staging: str) -> LabResult:
    cell = MatrixCell(f"{prod}/web", f"{staging}/api:8080/tcp", Outcome.BLOCKED, Outcome.ALLOWED,
                      why=f"allowed by {prod}/allow-web-to-api: namespaceSelector "
                          f"kubernetes.io/metadata.name={staging}",
                      command=f"kubectl --context kind-k8slab exec -n {prod} web -- nc -vz api.{staging}.svc 8080")
    matrix = Matrix((f"{prod}/web",), (f"{staging}/api:8080/tcp",), (cell,))
    evidence = (Evidence.matrix(f"expected vs live ({prod})", matrix),
                Evidence.table("pods", ("pod", "namespace"), [("web", prod), ("api", staging)]),
                Evidence.text("traffic", f"{prod}/web -> {staging}/api"),
                Evidence.command("Reproduce", f"kubectl -n {staging} get pods"))
    step = StepResult("live", False, f"{prod}/web reaches {staging}/api", hint=f"look at -n {prod}",
                      evidence=evidence, credit=0.5)
    exercise = ExerciseResult("05-network-policy", "web-to-api", "Only web reaches api", 4, 2, False,
                              f"{prod}/web reaches {staging}/api", hint=f"look at -n {prod}",
                              steps=(StepResult("parse", True, "1 object valid"), step), evidence=evidence)
    # an exercise this cluster could not grade (spec `requires`): its reason is text like any other
    ungraded = ExerciseResult("05-network-policy", "default-deny", "Default deny", 2, 0, False,
                              f"not graded in {prod}", steps=(StepResult("requires", False, f"not graded in {prod}"),),
                              ungraded=f"not graded in {prod}")
    return LabResult("05-network-policy", (exercise, ungraded), title="Network Policy")


def test_every_string_of_a_result_reads_in_the_lab_names() -> None:
    assert nsview.to_logical(_result(PROD, STAGING), NSMAP) == _result("production", "staging")


def test_the_identity_map_returns_the_very_same_object() -> None:
    result = _result("production", "staging")
    assert nsview.to_logical(result, NamespaceMap.identity()) is result
    assert nsview.to_logical(result, None) is result


def test_a_result_with_nothing_to_translate_is_not_copied() -> None:
    result = _result("production", "staging")
    assert nsview.to_logical(result, NSMAP) is result
    assert nsview.to_logical(result.exercises[0].evidence, NSMAP) is result.exercises[0].evidence


def test_numbers_outcomes_and_step_names_stay_as_they_are() -> None:
    logical = nsview.to_logical(_result(PROD, STAGING), NSMAP).exercises[0]
    assert (logical.points, logical.score, logical.steps[1].credit) == (4, 2, 0.5)
    assert logical.steps[1].step == "live" and logical.evidence[0].data.cells[0].observed is Outcome.ALLOWED


def _string_fields(cls, seen: set) -> set[str]:
    """Every ``Class.field`` of graders.model that can hold text, through nested result types."""
    if cls in seen or not dataclasses.is_dataclass(cls):
        return set()
    seen.add(cls)
    hints = typing.get_type_hints(cls, vars(model))
    found = set()
    for f in dataclasses.fields(cls):
        text = repr(hints[f.name])
        if "str" in text or "EvidenceData" in text or "Union" in text:
            found.add(f"{cls.__name__}.{f.name}")
        for arg in typing.get_args(hints[f.name]) or (hints[f.name],):
            for inner in typing.get_args(arg) or (arg,):
                found |= _string_fields(inner, seen)
    return found


def test_the_example_result_fills_every_text_field_of_the_model() -> None:
    """A field added to graders.model is translated by the generic walk; this keeps the example above honest
    about covering them all (add the new field to _result when this fails)."""
    fields = _string_fields(LabResult, set()) | _string_fields(Matrix, set()) | _string_fields(Table, set())
    filled = set()

    def visit(value) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                inner = getattr(value, f.name)
                if isinstance(inner, (str, tuple, Table, Matrix)) and inner != "" and inner != ():
                    filled.add(f"{type(value).__name__}.{f.name}")
                visit(inner)
        elif isinstance(value, tuple):
            for item in value:
                visit(item)
    visit(_result(PROD, STAGING))
    assert fields <= filled, sorted(fields - filled)
