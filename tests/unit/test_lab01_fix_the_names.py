"""Lab 01 fix-the-names (break-fix) without a cluster: the static step on the starter, solution, alternatives and
the mistakes it can name offline. The rest (readiness, the API server's template check, DNS) is proven live."""
from __future__ import annotations

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab01_pod_network as lab

EX = spec.load_lab("01-pod-network").exercise("fix-the-names")


def static(directory):
    found = manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces)
    return lab.fix_the_names_static(Ctx(spec=EX, objects=found.manifests, cluster=None))


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_fixes_pass_the_static_step(directory):
    assert static(directory).passed


@pytest.mark.parametrize("mistake", ["probe-only", "probe-removed", "made-clusterip"])
def test_mistakes_named_offline(mistake):
    with pytest.raises(CheckFailed) as info:
        static(EX.mistake_dir(mistake))
    assert EX.mistake(mistake).message in info.value.message


def test_the_starter_is_broken_without_todo_markers():
    text = "".join(p.read_text() for p in EX.starter_dir.glob("*.yaml"))
    assert "TODO" not in text
    with pytest.raises(CheckFailed, match="selects no pod"):
        static(EX.starter_dir)
