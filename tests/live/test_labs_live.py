"""Live: for every exercise of every lab, on a real cluster — the solution passes, the starter fails, and each
known mistake fails with its own message. Discovered from labs/*/lab.yaml; ``--lab ID`` narrows it.

Without a cluster every test is skipped with one reason (the ``k8slab_cluster`` fixture of graders.pytest_plugin);
with ``K8SLAB_REQUIRE_CLUSTER=1`` (CI) they fail instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from graders import comparison, engine, paths, render, spec
from graders.cluster import FIXTURE_LABEL
from graders.workload_reuse import APPLIED_HASH
from observed import materialise, mesh_or_skip, mistake_applies_or_skip, second_cluster_or_skip

pytestmark = pytest.mark.live


CLEANUP = "no-grader-namespace-left"
ALTERNATIVE = "alternative-"  # a correct submission written differently from the reference: graded like it


@dataclass(frozen=True)
class Case:
    lab: str
    exercise: str
    variant: str  # "solution", "alternative-<name>", "starter", a mistake id, or CLEANUP
    directory: Path
    fragment: str = ""  # for mistakes: what the failure message must contain

    @property
    def id(self) -> str:
        return f"{self.lab}/{self.exercise}/{self.variant}"


def discover() -> list[Case]:
    cases: list[Case] = []
    for lab in spec.all_labs(paths.repo_root()):
        for ex in lab.exercises:
            cases.append(Case(lab.id, ex.id, "solution", ex.solution_dir))
            cases.extend(Case(lab.id, ex.id, f"{ALTERNATIVE}{d.name}", d) for d in ex.alternative_dirs)
            cases.append(Case(lab.id, ex.id, "starter", ex.starter_dir))
            cases.extend(Case(lab.id, ex.id, m.id, ex.mistake_dir(m), m.message) for m in ex.mistakes)
    return cases


def cleanup_case(cases: list[Case]) -> list[Case]:
    """A last case checking that every grading run above removed what it created, then deleting the namespaces. It is a case of the same
    test (not a second test) so that, without a cluster, pytest reports ONE skip reason, not two."""
    labs = sorted({c.lab for c in cases})
    return [Case(",".join(labs), "", CLEANUP, Path("."))] if cases else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        wanted = metafunc.config.getoption("lab")
        selected = [c for c in discover() if not wanted or c.lab in wanted]
        selected += cleanup_case(selected)
        metafunc.parametrize("case", selected, ids=[c.id for c in selected])


def _clean_second_clusters(lab_ids: list[str], graded: str) -> None:
    """A lab that compares with a second cluster (lab.yaml compare_with, graders.comparison) prepared its namespaces
    there too (emptied after each case, as on the graded cluster): they go as well."""
    for lab_id in lab_ids:
        lab = spec.load_lab(lab_id, paths.repo_root())
        second = comparison.find_for(lab.compare_with, graded) if lab.compare_with else None
        if second is None or isinstance(second, comparison.Missing):
            continue
        present = sorted(set(lab.all_namespaces) & set(second.owned_namespaces()))
        second.delete_namespaces(present, wait=True, timeout=90)
        assert not set(lab.all_namespaces) & set(second.owned_namespaces()), f"{second.context}: namespaces left"


def test_exercise_variant(case: Case, k8slab_cluster, tmp_path) -> None:
    if case.variant == CLEANUP:
        ours = {ns for lab in case.lab.split(",") for ns in spec.load_lab(lab, paths.repo_root()).all_namespaces}
        present = sorted(ours & set(k8slab_cluster.owned_namespaces()))
        # the grader's own pods (FIXTURE_LABEL) stay for the next check, and so do the Deployments a lab keeps for
        # reuse (stamped by graders/workload_reuse.py) with their pods; nothing else of a submission may
        kept = {(d.metadata.namespace, d.metadata.name) for ns in present for d in k8slab_cluster.list_deployments(ns)
                if APPLIED_HASH in (d.metadata.annotations or {})}

        def kept_pod(pod) -> bool:
            template = (pod.metadata.labels or {}).get("pod-template-hash", "")
            return bool(template) and any(ns == pod.metadata.namespace and pod.metadata.name.startswith(
                f"{name}-{template}-") for ns, name in kept)
        learners = [p for ns in present for p in k8slab_cluster.list_pods(ns)
                    if FIXTURE_LABEL not in (p.metadata.labels or {}) and not kept_pod(p)]
        left = [f"{kind} {ns}/{name}" for ns in present for kind, items in (
                    ("Pod", [p for p in learners if p.metadata.namespace == ns]),
                    ("Service", k8slab_cluster.list_services(ns)),
                    ("Deployment", [d for d in k8slab_cluster.list_deployments(ns)
                                    if (ns, d.metadata.name) not in kept]))
                for name in (i.metadata.name for i in items)]
        assert not left, f"grading runs left objects behind: {left}"
        k8slab_cluster.delete_namespaces(present, wait=True, timeout=90)
        assert not ours & set(k8slab_cluster.owned_namespaces())
        _clean_second_clusters(case.lab.split(","), k8slab_cluster.context)
        return
    second_cluster_or_skip(case.lab, k8slab_cluster.context)
    mistake_applies_or_skip(case.lab, case.exercise, case.variant, k8slab_cluster.context)
    # lab 06: a mesh must run (else one skip reason, the engine's "not graded"), and the variant be written for it
    mesh_or_skip(case.lab, k8slab_cluster, case.variant, case.directory)
    # "empty", as a notebook's check(): the namespaces and the grader's pods stay for the next case
    # an answers exercise's solution and mistakes are templates: filled with what this cluster shows
    exercise = spec.load_lab(case.lab, paths.repo_root()).exercise(case.exercise)
    directory = materialise(exercise, case.directory, k8slab_cluster.context, tmp_path / "submission")
    result = engine.grade(case.lab, case.exercise, directory, cluster=k8slab_cluster, teardown="empty")
    outcome = result.exercise(case.exercise)
    shown = render.exercise_text(outcome, verbose=True)
    if case.variant == "solution" or case.variant.startswith(ALTERNATIVE):
        assert outcome.passed and outcome.score == outcome.points, f"the {case.variant} fails:\n{shown}"
    elif case.variant == "starter":
        assert not outcome.passed, f"the starter files already pass:\n{shown}"
    else:
        assert not outcome.passed, f"mistake {case.variant} passes:\n{shown}"
        assert case.fragment in outcome.message, (
            f"mistake {case.variant} fails, but its message lacks {case.fragment!r}:\n{shown}")

