"""Fixtures of the nbgrader pipeline tests; every test here is marked `pipeline` (see pipeline_helpers)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline_helpers import DEMO, FIXTURE_ROOT, build_course, nbgrader


# fixture/ is a tiny course repository (labs/99-demo/lab.yaml), not tests for the lab.yaml collector.
collect_ignore = ["fixture"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.pipeline)


@pytest.fixture(scope="session")
def _released_demo(tmp_path_factory) -> Path:
    course_dir = tmp_path_factory.mktemp("released") / "course"
    build_course(course_dir, FIXTURE_ROOT)
    nbgrader(course_dir, "generate_assignment", DEMO)
    return course_dir


@pytest.fixture
def demo_course(_released_demo: Path, tmp_path: Path) -> Path:
    """The demo lab built and released (generate_assignment) — a private copy of one session-wide build."""
    course_dir = tmp_path / "course"
    shutil.copytree(_released_demo, course_dir)
    return course_dir


@pytest.fixture
def demo_spec():
    from graders import spec

    return spec.load_lab(DEMO, FIXTURE_ROOT)
