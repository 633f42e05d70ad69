"""Lab 03's break-fix exercise without a cluster: the broken catalog as deployed, the fix, and the wrong fixes.

* static passes for the starter (the symptom must come from traffic) and stops only the fixes that break what
  the shop relies on: the name catalog, port 80, the feed importer;
* ``as_deployed`` tells the unchanged starter from an edited submission (comments do not count);
* ``break_fix_causes`` names each fault the files show, the starter's two at once;
* on the simulated cluster of test_lab03_live_sim the starter fails with the symptom only (no selector, label,
  port number or field named), each wrong fix that reaches the cluster fails naming its cause, and the solution
  and alternatives pass;
* the wording of the symptoms (``break_fix_symptoms``) and of the failure (``break_fix_failure``).
"""
from __future__ import annotations

import shutil
from collections import Counter

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.labs import lab03_services as lab
from graders.labs._kit import Finding

LAB = spec.load_lab("03-services")
EX = LAB.exercise("break-fix")
NS = EX.default_namespace
STATIC_MISTAKES = {"port-instead-of-targetport", "worker-removed"}   # break what the shop relies on: no traffic needed
ADMISSION_MISTAKES = {"template-labels-only"}                        # the API server refuses the Deployment
LIVE_MISTAKES = sorted({m.id for m in EX.mistakes} - STATIC_MISTAKES - ADMISSION_MISTAKES)
# words that would give the starter's faults away
GIVEAWAYS = ("selector", "tier", "label", "targetPort", "8080", "port 80 ", "backend", "not listening")


def _objects(directory):
    return manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces).manifests


def _static(directory) -> str:
    return lab.static_break_fix(_objects(directory), NS)


def test_the_exercise_is_registered_with_a_static_and_a_live_check():
    assert lab.EXERCISES["break-fix"].static is not None and lab.EXERCISES["break-fix"].live is not None
    assert len(EX.mistakes) >= 5 and len(EX.alternative_dirs) >= 2


def test_the_starter_has_no_todo_and_passes_static():
    for name in EX.files:
        assert "TODO" not in (EX.starter_dir / name).read_text()
    assert _static(EX.starter_dir)


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_solution_and_alternatives_pass_static(directory):
    assert "judged by traffic" in _static(directory)


@pytest.mark.parametrize("mistake", sorted(STATIC_MISTAKES))
def test_fixes_that_break_the_shop_fail_static_with_their_fragment(mistake):
    with pytest.raises(CheckFailed) as caught:
        _static(EX.mistake_dir(mistake))
    assert EX.mistake(mistake).message in caught.value.message, caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("mistake", LIVE_MISTAKES)
def test_wrong_fixes_that_reach_the_cluster_pass_static(mistake):
    assert _static(EX.mistake_dir(mistake))


def test_relabelled_template_is_refused_and_explained():
    api = ('Deployment.apps "catalog-api" is invalid: spec.template.metadata.labels: Invalid value: '
           'map[string]string{"app":"catalog", "tier":"api", "version":"v2"}: `selector` does not match template '
           '`labels`')
    explanation = lab.explain_admission(api)
    assert EX.mistake("template-labels-only").message in api
    assert "matchLabels" in explanation and "immutable" in explanation


def test_as_deployed_is_the_starter_unchanged_comments_aside(tmp_path):
    assert lab.as_deployed(_objects(EX.starter_dir), lab.BREAK_FIX_DIGEST), "the pin must equal the starter files"
    assert not lab.as_deployed(_objects(EX.solution_dir), lab.BREAK_FIX_DIGEST)
    copy = tmp_path / "break-fix"
    shutil.copytree(EX.starter_dir, copy)
    service = copy / "service.yaml"
    service.write_text("# looked at it, changed nothing\n" + service.read_text().replace("  ports:", "  ports:  # 80"))
    assert lab.as_deployed(_objects(copy), lab.BREAK_FIX_DIGEST)
    service.write_text(service.read_text().replace("  labels:\n    app: catalog\n", "  labels:\n    app: shop\n", 1))
    assert not lab.as_deployed(_objects(copy), lab.BREAK_FIX_DIGEST), "an edit in place is seen"


def test_the_starters_two_faults_are_both_named_once_edited():
    causes = lab.break_fix_causes(_objects(EX.starter_dir), NS)
    assert len(causes) == 2
    assert "selects no pod" in causes[0].message and "tier=backend" in causes[0].message
    assert "not listening on port 80" in causes[1].message and "8080" in causes[1].message
    assert all(c.hint for c in causes)


@pytest.mark.parametrize("mistake", LIVE_MISTAKES)
def test_each_live_mistake_has_its_cause_in_the_files(mistake):
    causes = lab.break_fix_causes(_objects(EX.mistake_dir(mistake)), NS)
    assert len(causes) == 1
    assert EX.mistake(mistake).message in causes[0].message


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_fixed_files_show_no_cause(directory):
    assert lab.break_fix_causes(_objects(directory), NS) == []


def test_a_selector_that_picks_only_the_worker_says_so(tmp_path):
    copy = tmp_path / "break-fix"
    shutil.copytree(EX.solution_dir, copy)
    service = copy / "service.yaml"
    service.write_text(service.read_text().replace("tier: backend", "tier: worker"))
    causes = lab.break_fix_causes(_objects(copy), NS)
    assert "but not those of Deployment catalog-api" in causes[0].message


def test_a_named_targetport_the_pods_lack_is_named(tmp_path):
    copy = tmp_path / "break-fix"
    shutil.copytree(EX.alternative_dirs[0], copy)
    service = copy / "service.yaml"
    service.write_text(service.read_text().replace("targetPort: http", "targetPort: web"))
    causes = lab.break_fix_causes(_objects(copy), NS)
    assert len(causes) == 1 and "targetPort 'web' names no container port" in causes[0].message


# ---------------------------------------------------------------------------- the symptoms, in words
API = {"catalog-api-0": object(), "catalog-api-1": object()}


def test_no_symptom_when_every_request_reaches_the_api_pods():
    answers = Counter({"catalog-api-0": 12, "catalog-api-1": 12})
    assert lab.break_fix_symptoms(24, answers, [], API, set(API), 1, True) == []


def test_refused_requests_with_ready_pods_are_the_symptom():
    symptoms = lab.break_fix_symptoms(24, Counter(), ["connection refused or unreachable"] * 24, API, set(), 1, True)
    assert symptoms == ["24 of 24 requests to http://catalog/ from a pod in the namespace failed (connection "
                        "refused or unreachable), although the 2 catalog-api pods are Running and Ready"]


def test_a_worker_among_the_endpoints_shows_as_partial_failures_and_a_foreign_endpoint():
    answers = Counter({"catalog-api-0": 8, "catalog-api-1": 8})
    symptoms = lab.break_fix_symptoms(24, answers, ["connection refused or unreachable"] * 8, API,
                                      {*API, "catalog-worker-0"}, 1, True)
    assert "8 of 24 requests" in symptoms[0] and "the other 16 were answered" in symptoms[0]
    assert symptoms[1] == ("Service catalog also lists catalog-worker-0 as ready endpoints, which are not "
                           "catalog-api pods")


def test_strangers_silent_replicas_unlisted_pods_and_a_stopped_worker_are_named():
    symptoms = lab.break_fix_symptoms(24, Counter({"catalog-api-0": 20, "other": 4}), [], API, {"catalog-api-0"}, 0,
                                      True)
    text = " | ".join(symptoms)
    assert "answered by other, which is not a catalog-api pod" in text
    assert "catalog-api pod catalog-api-1 never answered" in text
    assert "does not list catalog-api-1 as ready endpoints" in text
    assert "catalog-worker runs no ready pod" in text
    assert lab.break_fix_symptoms(24, Counter(), ["x"] * 24, {}, set(), 1, True)[0].startswith(
        "Deployment catalog-api has no ready pod")


def test_the_failure_as_deployed_gives_the_symptom_and_where_to_look_but_no_cause():
    symptoms = ["24 of 24 requests to http://catalog/ failed (connection refused)"]
    message, hint = lab.break_fix_failure(symptoms, deployed=True, causes=[Finding("the cause", "the fix")],
                                          namespace=NS)
    assert "the cause" not in message and "the fix" not in hint
    assert "Nothing in break-fix/ has changed yet" in message and "endpointslices" in hint
    _, hint = lab.break_fix_failure(symptoms, deployed=True, causes=[], namespace=NS, context="other")
    assert f"`kubectl --context other -n {NS} get endpointslices -l kubernetes.io/service-name=catalog`" in hint
    assert "`kubectl -n" not in hint


def test_the_failure_once_edited_lists_every_cause():
    message, hint = lab.break_fix_failure(["s"], deployed=False, causes=[Finding("a", "fa"), Finding("b", "fb")],
                                          namespace=NS)
    assert message == "s. 2 causes: (1) a (2) b" and hint == "(1) fa (2) fb"
    assert lab.break_fix_failure(["s"], deployed=False, causes=[Finding("a", "fa")], namespace=NS) == (
        "s. Cause: a", "fa")


# ---------------------------------------------------------------------------- live, on the simulated cluster
@pytest.fixture
def sim(monkeypatch):
    import test_lab03_live_sim as sim_module  # tests/unit is on sys.path (rootdir imports)

    def run(directory):
        ctx, world = sim_module._ctx(EX, directory, monkeypatch)
        return lab.EXERCISES["break-fix"].live(ctx), world
    return run


def test_live_starter_shows_the_symptom_and_gives_nothing_away(sim):
    with pytest.raises(CheckFailed) as caught:
        sim(EX.starter_dir)
    message = caught.value.message
    assert message.startswith("The shop's frontend cannot use the catalog: 24 of 24 requests to http://catalog/")
    assert "although the 2 catalog-api pods are Running and Ready" in message
    assert not [word for word in GIVEAWAYS if word in message + caught.value.hint], message
    assert caught.value.evidence[-1].kind == "command" and "curl" in caught.value.evidence[-1].data


@pytest.mark.parametrize("mistake", LIVE_MISTAKES)
def test_live_wrong_fixes_fail_naming_their_cause(sim, mistake):
    with pytest.raises(CheckFailed) as caught:
        sim(EX.mistake_dir(mistake))
    assert EX.mistake(mistake).message in caught.value.message, caught.value.message
    assert "Nothing in break-fix/" not in caught.value.message and caught.value.hint


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_live_fixes_pass(sim, directory):
    result, _ = sim(directory)
    assert result.passed and "24/24 answered by the 2 catalog-api pods" in result.message, result.message
