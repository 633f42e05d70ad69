"""Result model: outcomes, matrices, credit and totals."""
from __future__ import annotations

from graders.model import (Evidence, ExerciseResult, LabResult, Matrix, MatrixCell, Outcome, StepResult, Table)

A, B = "x/a", "x/b"


def test_outcomes_have_one_glyph_and_a_word():
    assert [o.glyph for o in Outcome] == [".", "X", "!", "?"]
    assert Outcome.FAILED.word == "probe failed"


def test_matrix_wrong_unobserved_and_complete():
    cells = (MatrixCell(A, B, Outcome.ALLOWED, Outcome.BLOCKED, why="deny-all", command="kubectl exec ..."),
             MatrixCell(B, A, Outcome.BLOCKED, Outcome.NOT_RUN))
    matrix = Matrix((A, B), (A, B), cells)
    assert matrix.cell(A, B).why == "deny-all" and matrix.cell(A, A) is None
    assert matrix.wrong_cells == (cells[0],)
    assert matrix.unobserved_cells == (cells[1],)
    assert not matrix.complete
    observed = Matrix((A, B), (A, B), (cells[0], MatrixCell(B, A, Outcome.BLOCKED, Outcome.BLOCKED)))
    assert observed.complete  # same-pod cells are never probed


def test_step_credit_defaults_and_clamps():
    assert StepResult("live", True).effective_credit == 1
    assert StepResult("live", False).effective_credit == 0
    assert StepResult("live", False, credit=0.25).effective_credit == 0.25
    assert StepResult("live", False, credit=7).effective_credit == 1


def test_evidence_constructors():
    table = Evidence.table("pods", ["name", "ip"], [("a", 1)])
    assert table.kind == "table" and table.data == Table(("name", "ip"), (("a", "1"),))
    assert Evidence.text("t", "x").data == "x" and Evidence.command("c", "kubectl get pods").kind == "command"


def test_lab_result_totals():
    def result(exercise, score, points, passed):
        return ExerciseResult("00-x", exercise, exercise, points, score, passed, "")

    lab = LabResult("00-x", (result("a", 2, 2, True), result("b", 1.5, 3, False)))
    assert lab.score == 3.5 and lab.points == 5 and not lab.passed
    assert lab.exercise("b").score == 1.5
    assert not LabResult("00-x").passed
    assert ExerciseResult("l", "e", "t", 1, 0, False, "m", steps=(StepResult("parse", True),
                                                                StepResult("admit", False))).failed_step == "admit"
