"""Old import paths that course directories built before graders/course/ existed still use (kept on purpose).

A released course keeps its hidden test cells in the gradebook and restores them at every autograde, so their
`from graders.course_runtime import scored` must keep grading; its nbgrader_config.py names
`graders.course_feedback.MermaidImages`. tests/pipeline/test_course_offline.py runs such a course end to end.
"""
from __future__ import annotations

import json

import nbformat
import pytest
from traitlets.utils.importstring import import_item

from graders.autograding import RESULTS_ENV
from graders.errors import GradingError

# A hidden test cell exactly as the build wrote it before graders/course/ (graders/course.py, TEST_IMPORT).
OLD_TEST_CELL = ("# Autograder test for exercise {ex} (2 points). It grades the files in {ex}/ on a live cluster;\n"
                 "# run check(\"99-demo\", \"{ex}\") above to see the same result now.\n"
                 "### BEGIN HIDDEN TESTS\n"
                 "from graders.course_runtime import scored\n"
                 "RESULT = scored('99-demo', '{ex}', 2)\n"
                 "### END HIDDEN TESTS")


@pytest.fixture
def records(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"99-demo/full": {"score": 2.0, "message": "passed", "html": ""},
                                "99-demo/half": {"score": 1.0, "message": "one of two", "html": ""},
                                "99-demo/none": {"score": 0.0, "message": "selects no pod", "html": ""}}))
    monkeypatch.setenv(RESULTS_ENV, str(path))


def _run(exercise: str) -> float:
    namespace: dict = {}
    exec(OLD_TEST_CELL.format(ex=exercise), namespace)  # noqa: S102 — the cell a gradebook restores
    return namespace["RESULT"]


def test_an_old_test_cell_grades_with_the_verified_records(records, capsys):
    assert _run("full") == 2.0
    assert _run("half") == 1.0
    assert "Partial credit (1/2): one of two" in capsys.readouterr().out
    with pytest.raises(GradingError, match="selects no pod"):
        _run("none")


def test_an_old_course_config_loads_the_mermaid_preprocessor(tmp_path):
    preprocessor = import_item("graders.course_feedback.MermaidImages")(image_dir=str(tmp_path))
    cell = nbformat.v4.new_markdown_cell("```mermaid\ngraph LR\n  a[Client] --> b[Pod]\n```\n")
    out, _ = preprocessor.preprocess_cell(cell, {}, 0)
    assert "```mermaid" not in out.source and "Client --&gt; Pod" in out.source
