"""How grading code knows an autograder is executing the notebook: the environment variables that say so.

Imported by the engine side (`notebook`, `nbgrader`, `doctor`) and the instructor side (`graders.course`) alike,
so it imports nothing of either.
"""
from __future__ import annotations

import os

NBGRADER_ENV = "NBGRADER_EXECUTION"  # set by nbgrader while it executes a notebook
RESULTS_ENV = "K8SLAB_RESULTS_FILE"  # the safe autograder's verified records (graders.course.runtime reads them)
PREPARED_ENV = "K8SLAB_NAMESPACES_PREPARED"  # the harness created the grader namespaces; credentials are scoped


def autograding() -> bool:
    """True while nbgrader executes the notebook: its kernel may only touch the submission's own namespaces, so
    exploration cells (kubectl, docker, the doctor) say what they would have run instead of failing."""
    # the safe autograder's sandboxed kernel gets a scrubbed environment: RESULTS_ENV, not NBGRADER_ENV
    return bool(os.environ.get(NBGRADER_ENV) or os.environ.get(RESULTS_ENV))
