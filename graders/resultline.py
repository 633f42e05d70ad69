"""One grading run's outcome as ONE line of a log: ``<MARK> <json>``.

Why: a grading Job (graders.course.jobs) has no file the dispatcher can read back -- its root filesystem is
read-only and the pod is gone soon after -- but its log is kept with the Job. ``k8slab grade --result-line MARK``
prints this line last; the dispatcher reads the grader container's log (no submitted object can write to it),
takes the last line with the mark it chose, and records the gradebook entries from it exactly as the serial path
does. A run that could not grade prints an error line instead, so a crash is recorded as such and never lost; no
line at all (killed at the deadline) is the dispatcher's "timed out".
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from graders.errors import UsageError

SCHEMA = "k8slab.resultline/v1"


def result_payload(lab_result, lab_spec, run: str) -> dict[str, Any]:
    """The gradebook records of every graded exercise (graders.nbgrader.record), the full result, and why outside
    clients were refused (graders.outside.refusals: the dispatcher marks the submission for serial regrading)."""
    from graders import outside, render
    from graders.nbgrader import record

    graded = {e.exercise for e in lab_result.exercises}
    records = {f"{lab_spec.id}/{ex.id}": record(lab_result, ex.id, ex.points)
               for ex in lab_spec.exercises if ex.id in graded}
    return {"schema": SCHEMA, "lab": lab_spec.id, "run": run, "records": records, "result": render.to_dict(lab_result),
            "not_probed": list(outside.refusals())}


def error_payload(lab: str, run: str, error: BaseException) -> dict[str, Any]:
    return {"schema": SCHEMA, "lab": lab, "run": run,
            "error": {"type": type(error).__name__, "message": str(error)}}


def check_mark(mark: str) -> str:
    if not mark or any(c.isspace() for c in mark):
        raise UsageError(f"a result-line mark must be one word without spaces, got {mark!r}")
    return mark


def format_line(mark: str, payload: Mapping[str, Any]) -> str:
    """``mark`` and the payload as compact JSON, on one line whatever the messages hold (JSON escapes newlines)."""
    check_mark(mark)
    return f"{mark} {json.dumps(payload, separators=(',', ':'), ensure_ascii=True)}"


def parse_log(mark: str, log: str) -> dict[str, Any] | None:
    """The payload of the LAST line of ``log`` that starts with ``mark`` (None when there is none, or when it is
    not a payload of this schema: a Job killed mid-line)."""
    for line in reversed(log.splitlines()):
        if line.startswith(f"{mark} "):
            try:
                payload = json.loads(line[len(mark) + 1:])
            except ValueError:
                return None
            return payload if isinstance(payload, dict) and payload.get("schema") == SCHEMA else None
    return None
