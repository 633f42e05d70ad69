"""A first failure explains the cause; it never hands over the answer (issue 11 §4: progressive hints do that,
one level per `hint()` call, and the last level is the answer).

For every exercise with a static step, in every lab: the starter and each known mistake are checked offline, and
the failure's message and hint must not contain a field of the reference solution as the learner would type it
(`targetPort: 8080`, `clusterIP: None`, `--http-port=8080`): the cause ("the api pods serve 8080") is told, the
line to paste is not.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from graders import labs, manifests, spec
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Ctx

TRIVIAL = {"", "true", "false", "none", "null", "tcp", "udp", "v1", "apps/v1", "networking.k8s.io/v1"}
STRUCTURAL = {"apiVersion", "kind", "name", "namespace", "protocol", "image", "app", "version"}


def _leaves(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, str(k))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and item.startswith("--"):
                yield "", item  # a command-line flag, as typed
            else:
                yield from _leaves(item, key)
    elif key:
        yield key, str(node)


def solution_lines(ex: spec.ExerciseSpec) -> set[str]:
    """The solution's fields the learner would type, one "key: value" each (and each `--flag=value`)."""
    lines = set()
    for path in sorted(Path(ex.solution_dir).rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for key, value in _leaves(doc or {}):
                if key in STRUCTURAL or value.lower() in TRIVIAL:
                    continue
                lines.add(value if not key else f"{key}: {value}")
    return lines


def _cases():
    for lab_id in spec.lab_ids():
        lab = spec.load_lab(lab_id)
        checks = labs.exercises(lab_id)
        for ex in lab.exercises:
            if ex.submission == "answers" or checks[ex.id].static is None:
                continue
            yield pytest.param(lab_id, ex, None, id=f"{lab_id}:{ex.id}:starter")
            for mistake in ex.mistakes:
                yield pytest.param(lab_id, ex, mistake, id=f"{lab_id}:{ex.id}:{mistake.id}")


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize(("lab_id", "ex", "mistake"), list(_cases()))
def test_a_failure_explains_without_handing_over_the_solution(lab_id, ex, mistake) -> None:
    directory = ex.starter_dir if mistake is None else ex.mistake_dir(mistake)
    try:
        found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    except K8sLabError:
        return  # rejected by the parse step, whose words are the schema's
    if not found.manifests:
        return
    ctx = Ctx(spec=ex, objects=found.manifests, cluster=None)
    try:
        labs.exercises(lab_id)[ex.id].static(ctx)
    except CheckFailed as failed:
        said = _normal(f"{failed.message}\n{failed.hint}")
        theirs = _normal("\n".join(p.read_text(encoding="utf-8") for p in Path(directory).rglob("*.y*ml")))
        # a fact of the learner's own files (the port their container serves) is the cause, not a handed-over fix
        given = sorted(line for line in solution_lines(ex) if _normal(line) in said and _normal(line) not in theirs)
        assert not given, f"the failure hands over the solution's {given}: {said}"
