"""Lab 04 migrate: the grader's Ingress version, the host-free answers, the comparison and the causes read from the
files — pure, no cluster (the live cases are in tests/live)."""
from __future__ import annotations

import base64

import pytest
import yaml

from graders import paths, spec
from graders.labs import lab04_ingress as ing
from graders.labs import lab04_ingress_migrate as mig
from graders.manifests import parse_submission
from graders.model import Outcome
from graders.probe import ProbeResult

NS = "k8slab-ingress"


def _exercise():
    return spec.load_lab("04-ingress", paths.repo_root()).exercise("migrate")


def objects(directory):
    return parse_submission([directory], allowed_kinds=_exercise().allowed_kinds, namespaces=[NS]).manifests


def test_the_reference_is_the_ingress_version_for_its_own_host_with_prefixed_names(tmp_path):
    docs = mig.reference_objects(NS, "CERT", "KEY")
    assert all(d["metadata"]["name"].startswith(mig.REFERENCE_PREFIX) and d["metadata"]["namespace"] == NS
               for d in docs)
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert secret["type"] == "kubernetes.io/tls" and base64.b64decode(secret["data"]["tls.crt"]) == b"CERT"
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert {r["host"] for d in ingresses for r in d["spec"]["rules"]} == {mig.REFERENCE_HOST}
    http = next(d for d in ingresses if d["metadata"]["name"].endswith("http"))
    assert http["metadata"]["annotations"][ing.MIDDLEWARES_ANNOTATION] == \
        f"{NS}-{mig.REFERENCE_PREFIX}https-redirect@kubernetescrd"
    # the reference is what exercise tls accepts: no cause in it, read as a tls submission would be
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump_all(docs))
    tls = spec.load_lab("04-ingress", paths.repo_root()).exercise("tls")
    read = parse_submission([tmp_path], allowed_kinds=tls.allowed_kinds, namespaces=[NS]).manifests
    assert ing.redirect_causes(read, NS) == [] and ing.tls_causes(read) == []


def _result(request, output, outcome=Outcome.ALLOWED, detail=""):
    spec_ = ing.plain_http_spec("outside/kind", "172.18.0.200", request.path)
    return ProbeResult(spec_, outcome, output=output, detail=detail)


def test_answers_do_not_depend_on_the_host_asked():
    http = mig.Request("http", "/api")
    a = mig.answer(http, _result(http, "301 https://ingress.example.com/api"), {}, mig.REFERENCE_HOST)
    b = mig.answer(http, _result(http, "308 https://app.example.com:443/api"), {}, ing.HOST)
    assert a == b == mig.expected_answer(http)
    c = mig.answer(http, _result(http, "302 https://app.example.com/api"), {}, ing.HOST)
    assert c != a and c.startswith("302")


def test_differences_name_the_request_and_both_answers():
    reference = {r: mig.expected_answer(r) for r in mig.REQUESTS}
    assert mig.differences(reference, reference) == [] and mig.reference_faults(reference) == []
    yours = dict(reference)
    http_api = mig.Request("http", "/api")
    yours[http_api] = ing.API
    [found] = mig.differences(reference, yours)
    assert found.startswith("http://app.example.com/api: the Ingress version answered a permanent redirect")
    assert found.endswith("your Gateway the api (api-service)")


def test_a_reference_that_misbehaves_is_reported_as_such():
    reference = {r: mig.expected_answer(r) for r in mig.REQUESTS}
    reference[mig.Request("https", "/apiary")] = ing.API
    [fault] = mig.reference_faults(reference)
    assert "https://ingress.example.com/apiary got the api" in fault


def test_solution_and_alternatives_show_no_cause():
    ex = _exercise()
    for directory in (ex.solution_dir, *ex.alternative_dirs):
        assert mig.migrate_causes(objects(directory), NS) == [], directory


@pytest.mark.parametrize("mistake", [m.id for m in _exercise().mistakes])
def test_each_mistake_is_named_from_the_files(mistake):
    ex = _exercise()
    m = next(m for m in ex.mistakes if m.id == mistake)
    causes = mig.migrate_causes(objects(ex.mistake_dir(m)), NS)
    assert any(m.message in c.message for c in causes), [c.message for c in causes]


def test_the_starter_lacks_https_and_the_redirect():
    messages = " ".join(c.message for c in mig.migrate_causes(objects(_exercise().starter_dir), NS))
    assert "has no HTTPS listener" in messages and "nothing redirects plain HTTP" in messages
