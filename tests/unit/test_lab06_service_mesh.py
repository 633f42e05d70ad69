"""Lab 06-service-mesh against simulated probe outcomes (tests/unit/meshsim.py: a cluster with Istio or Linkerd,
no API server, no proxy): through the engine, for each mesh, every reference solution and alternative written for
it passes with full points, the starter fails, and every known mistake fails with its own message — and on a
cluster without a mesh every exercise is "not graded". Then the pure parts: identities, summaries, verdicts."""
from __future__ import annotations

import pytest

from graders import engine, manifests, mesh, paths, spec
from graders.labs import lab06_service_mesh as lab
from graders.model import Outcome
from graders.probe import ProbeResult, ProbeSpec, SimulatedRunner
from meshsim import MeshWorld

LAB = spec.load_lab(lab.LAB_ID, paths.repo_root())
MESHES = ("istio", "linkerd")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch, tmp_path):
    """A simulated mesh has no configuration to propagate: no second round of requests, no pause; and the run lock
    is this test's own (a real cluster's grading runs on this machine are not waited for)."""
    monkeypatch.setattr(lab, "SETTLE_S", 0.0)
    monkeypatch.setattr(lab, "PAUSE_S", 0.0)
    monkeypatch.setenv("K8SLAB_CACHE", str(tmp_path / "cache"))


def objects(directory):
    return manifests.load([directory])


def variants():
    for ex in LAB.exercises:
        named = [("solution", ex.solution_dir, ""), ("starter", ex.starter_dir, ""),
                 *((f"alternative-{d.name}", d, "") for d in ex.alternative_dirs),
                 *((m.id, ex.mistake_dir(m), m.message) for m in ex.mistakes)]
        for variant, directory, fragment in named:
            name = directory.name if variant.startswith("alternative-") or fragment else variant
            for which in sorted(mesh.written_for(name, objects(directory))):
                yield pytest.param(ex.id, variant, directory, fragment, which, id=f"{ex.id}/{variant}/{which}")


def grade(exercise: str, directory, which: str | None):
    world = MeshWorld(which)
    result = engine.grade(LAB.id, exercise, directory, cluster=world, teardown="empty",
                          runner_factory=lambda _cluster: SimulatedRunner(world.truth, context=world.context))
    return result.exercise(exercise)


@pytest.mark.parametrize("exercise, variant, directory, fragment, which", list(variants()))
def test_every_variant_on_the_mesh_it_is_written_for(exercise, variant, directory, fragment, which):
    from graders import render

    outcome = grade(exercise, directory, which)
    shown = render.exercise_text(outcome, verbose=True)
    assert outcome.graded, shown
    if variant == "solution" or variant.startswith("alternative-"):
        assert outcome.passed and outcome.score == outcome.points, f"{variant} fails on {which}:\n{shown}"
    elif variant == "starter":
        assert not outcome.passed and outcome.failed_step in ("static", "live"), f"the starter passes:\n{shown}"
    else:
        assert not outcome.passed, f"mistake {variant} passes on {which}:\n{shown}"
        assert fragment in outcome.message, f"mistake {variant} on {which} lacks {fragment!r}:\n{shown}"


def test_every_mesh_has_a_correct_variant_of_every_exercise():
    for ex in LAB.exercises:
        dirs = [("solution", ex.solution_dir), *((d.name, d) for d in ex.alternative_dirs)]
        covered = set().union(*(mesh.written_for(n, objects(d)) for n, d in dirs))
        assert covered == set(MESHES), f"{ex.id}: correct variants only for {covered}"


def test_variant_names_agree_with_the_api_groups_they_use():
    """A variant that uses a mesh's own kinds is named for that mesh (or is the reference solution)."""
    for ex in LAB.exercises:
        for directory in (*ex.alternative_dirs, *(ex.mistake_dir(m) for m in ex.mistakes)):
            used = mesh.api_meshes(objects(directory))
            assert mesh.written_for(directory.name, objects(directory)), directory
            if used:
                assert mesh.variant_meshes(directory.name) == used, f"{directory}: name it {sorted(used)[0]}-..."


@pytest.mark.parametrize("exercise", [ex.id for ex in LAB.exercises])
def test_without_a_mesh_every_exercise_is_not_graded(exercise):
    world = MeshWorld(None)
    outcome = grade(exercise, LAB.exercise(exercise).solution_dir, None)
    assert outcome.ungraded == mesh.NEEDS_MESH and not outcome.passed and outcome.score == 0
    assert [c for c in world.calls if c[0] != "exec"] == []


def test_a_kind_of_the_other_mesh_is_explained_at_admission():
    ex = LAB.exercise("strict-mtls")
    outcome = grade(ex.id, ex.solution_dir, "linkerd")  # Istio's PeerAuthentication on a Linkerd cluster
    assert outcome.failed_step == "admit" and "that kind is Istio's" in outcome.message


# ------------------------------------------------------------------------------------------------ pure parts
def test_identity_from_istio_takes_the_immediate_caller():
    xfcc = ('By=spiffe://cluster.local/ns/x/sa/gw;Hash=1;URI=spiffe://cluster.local/ns/y/sa/first,'
            'By=spiffe://cluster.local/ns/k8slab-mesh/sa/api;Hash=2;Subject="";URI=spiffe://cluster.local/ns/k8slab-mesh/sa/web')
    assert lab.identity_of({"X-Forwarded-Client-Cert": [xfcc]}) == lab.Identity("k8slab-mesh", "web")


def test_identity_from_linkerd_and_none_without_a_proxy():
    assert lab.identity_of({"L5d-Client-Id": ["web.k8slab-mesh.serviceaccount.identity.linkerd.cluster.local"]}) \
        == lab.Identity("k8slab-mesh", "web")
    assert lab.identity_of({"Accept": ["*/*"]}) is None


def _result(output, outcome=Outcome.ALLOWED):
    return ProbeResult(ProbeSpec("k8slab-mesh/p", "http", "api"), outcome, output=output)


def test_summaries_are_read_back():
    assert lab.parse_one(_result('200 0.0031 {"Accept": ["*/*"]}')) == lab.Answer(200, 0.0031, '{"Accept": ["*/*"]}')
    assert lab.parse_one(_result("000 2.001 ")).status == 0
    assert lab.parse_one(_result("", Outcome.FAILED)) is None
    assert lab.parse_answers("    180 api-v1-x 200\n     17 api-v2-y 200\n      3  000\n") == \
        {("api-v1-x", 200): 180, ("api-v2-y", 200): 17, ("", 0): 3}
    timing = lab.parse_timing("codes 200:38 000:2\ntimes n=40 p50=0.004 p90=0.01 p99=2.9 max=3.001")
    assert timing.successes == 38 and timing.slowest == 3.001 and timing.codes_text() == "2 x no answer, 38 x 200"


@pytest.mark.parametrize("want, answer, symptom", [
    ("refused", lab.Answer(200, 0.01, '{"Accept": ["*/*"]}'), "in plaintext, but must be refused"),
    ("refused", lab.Answer(0), ""),
    ("refused", lab.Answer(403, 0.01, "RBAC: access denied"), ""),
    ("identity", lab.Answer(200, 0.01, '{"Accept": ["*/*"]}'), "carried no client identity"),
    ("identity", lab.Answer(403, 0.01, "RBAC: access denied"), "HTTP 403: 'RBAC: access denied', but must be answered"),
    ("plaintext", lab.Answer(0), ""),
])
def test_each_expectation_is_judged_in_words(want, answer, symptom):
    expect = lab.Expect("k8slab-outsider", "api", want, lab.Identity("k8slab-mesh", "default"))
    said = lab.judge(expect, answer)
    assert (symptom in said) if symptom else said == ""


@pytest.mark.parametrize("v2, ok", [(20, True), (6, True), (40, True), (5, False), (41, False), (67, False)])
def test_the_canary_count_is_judged_against_the_stated_range(v2, ok):
    passed, sentence = lab.judge_canary({"v1": 200 - v2, "v2": v2}, 200)
    assert passed is ok and (ok or "outside the range 6-40" in sentence)


def test_the_flaky_backend_must_stay_flaky():
    ex = LAB.exercise("resilience")
    fixed = objects(ex.solution_dir)
    assert lab.resilience_causes(fixed, "istio") == []
    assert lab.resilience_causes(objects(ex.alternative_dirs[1]), "linkerd") == []


def test_the_cost_compares_the_same_container_only():
    ex = LAB.exercise("cost")
    assert lab.same_container_problem(objects(ex.solution_dir)) is None
    problem = lab.same_container_problem(objects(ex.mistake_dir("different-container")))
    assert "only the mesh may differ" in problem.message and "echo.yaml:" in problem.message


def test_memory_readings_of_both_proxies():
    assert lab.parse_memory("server.memory_physical_size: 44040192\n") == 44040192
    assert lab.parse_memory("process_resident_memory_bytes 1.1534336e+07\n") == 11534336
    assert lab.parse_memory("") is None


def test_the_scripts_summarise_in_the_pod():
    timing = lab.requests("k8slab-mesh/web-0", "flaky.k8slab-mesh.svc.cluster.local", summary="timing", count=40,
                          deadline_s=3.0, container="web")
    script = timing.argv()[2]
    assert "'http://flaky.k8slab-mesh.svc.cluster.local:80/header#[1-40]'" in script and "-m 3 " in script
    assert "sort -k2 -n | awk" in script and timing.timeout_s >= 120 and timing.container == "web"
    assert "| sort | uniq -c" in lab.requests("a/b", "api", summary="answers", count=200).argv()[2]
