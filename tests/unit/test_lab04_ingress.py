"""Lab 04-ingress: the pure judgement — who answered a request, what the client sees, the causes read from the
files (each known mistake's cause carries its lab.yaml fragment; the solution and alternatives have none) and the
canary's statistical bound."""
from __future__ import annotations

from collections import Counter

import pytest

from graders import manifests, paths, spec
from graders.labs import lab04_ingress as lab
from graders.model import Outcome
from graders.probe import ProbeResult, ProbeSpec

LAB = spec.load_lab(lab.LAB_ID, paths.repo_root())
NS = LAB.default_namespace if hasattr(LAB, "default_namespace") else LAB.namespaces[0]
APPS = {"api-6d8f-abcde": lab.API, "api-canary-7c9-xyz": lab.CANARY, "frontend-5b7-qwert": lab.FRONTEND}
CLASSES = ["traefik"]


def objects(directory):
    return [m.with_namespace(NS) for m in manifests.load([directory])]


def observed_for(routes, answer_of):
    return {r: Counter({answer_of(r): lab.REPEAT}) for r in routes}


def right(route):
    return sorted(route.accept)[0]


# ---------------------------------------------------------------------------- answers
def test_the_body_tells_which_backend_answered():
    assert lab.classify_body("api-6d8f-abcde\n", APPS) == lab.API
    assert lab.classify_body("404 page not found", APPS) == lab.NOT_FOUND
    assert "no ready endpoint" in lab.classify_body("Service Unavailable", APPS)
    assert lab.classify_body("", APPS) == "an empty answer"


def test_a_request_that_got_no_answer_says_why():
    spec_ = ProbeSpec("outside/kind", "http", "172.18.0.200", 80, host_header=lab.HOST, path="/api", label="x")
    result = ProbeResult(spec_, Outcome.BLOCKED, detail="connection refused or unreachable")
    assert lab.who_answered(result, APPS) == "no answer (connection refused or unreachable)"


def test_right_answers_have_no_symptom():
    assert lab.symptoms(observed_for(lab.HOST_PATH_ROUTES, right)) == []
    assert lab.symptoms(observed_for(lab.GATEWAY_ROUTES, right)) == []


def test_the_canary_may_answer_the_api_requests_of_the_gateway_exercise():
    mixed = {r: Counter({lab.API: 2, lab.CANARY: 1}) if lab.API in r.accept else Counter({right(r): 3})
             for r in lab.GATEWAY_ROUTES}
    assert lab.symptoms(mixed) == []


def test_every_request_for_the_host_getting_404_is_one_symptom():
    observed = observed_for(lab.HOST_PATH_ROUTES, lambda r: lab.NOT_FOUND)
    [only] = lab.symptoms(observed)
    assert "every request for app.example.com" in only and "404" in only


def test_a_wrong_backend_is_named_with_the_rule_it_breaks():
    observed = observed_for(lab.HOST_PATH_ROUTES, lambda r: lab.FRONTEND if r.path.startswith("/api") else right(r))
    found = lab.symptoms(observed)
    assert any("app.example.com/api/v1 was answered by the frontend" in s and "Prefix /api matches" in s
               for s in found)
    assert not any("/apiary" in s for s in found)


def test_unknown_host_reaching_a_backend_is_a_symptom():
    observed = observed_for(lab.HOST_PATH_ROUTES,
                            lambda r: lab.FRONTEND if r.host == lab.UNKNOWN_HOST and r.path == "/" else
                            lab.API if r.host == lab.UNKNOWN_HOST else right(r))
    found = lab.symptoms(observed)
    assert len(found) == 2 and all(lab.UNKNOWN_HOST in s for s in found)


# ---------------------------------------------------------------------------- causes in the files
def _exercise(exercise_id):
    return LAB.exercise(exercise_id)


@pytest.mark.parametrize("exercise_id", ["host-path", "gateway-canary"])
def test_solution_and_alternatives_show_no_cause(exercise_id):
    ex = _exercise(exercise_id)
    for directory in (ex.solution_dir, *ex.alternative_dirs):
        objs = objects(directory)
        causes = lab.ingress_causes(objs, CLASSES) + lab.gateway_causes(objs, NS)
        assert causes == [], f"{directory}: {[c.message for c in causes]}"


@pytest.mark.parametrize("mistake", [m.id for m in LAB.exercise("host-path").mistakes])
def test_each_host_path_mistake_has_a_cause_with_its_fragment(mistake):
    ex = _exercise("host-path")
    m = next(m for m in ex.mistakes if m.id == mistake)
    causes = lab.ingress_causes(objects(ex.mistake_dir(m)), CLASSES)
    assert any(m.message in c.message for c in causes), [c.message for c in causes]
    assert all("ingress.yaml:" in c.message for c in causes)  # cited with file:line


@pytest.mark.parametrize("mistake", ["parent-missing", "listener-hostname", "listener-port-80"])
def test_gateway_mistakes_read_from_the_files_carry_their_fragment(mistake):
    ex = _exercise("gateway-canary")
    m = next(m for m in ex.mistakes if m.id == mistake)
    causes = lab.gateway_causes(objects(ex.mistake_dir(m)), NS)
    assert any(m.message in c.message for c in causes), [c.message for c in causes]


def test_a_failure_lists_several_causes_numbered():
    error = lab.failure(["symptom"], [lab.Finding("first", "h1"), lab.Finding("second", "h2")], "fallback")
    assert error.message == "symptom. 2 causes: (1) first (2) second" and error.hint == "(1) h1 (2) h2"
    assert lab.failure(["symptom"], [], "look here").hint == "look here"


# ---------------------------------------------------------------------------- the canary
def test_declared_share_from_the_weights():
    ex = _exercise("gateway-canary")
    assert lab.declared_canary_share(objects(ex.solution_dir)) == pytest.approx(0.10)
    weights = next(m for m in ex.mistakes if m.id == "weights-50-50")
    assert lab.declared_canary_share(objects(ex.mistake_dir(weights))) == pytest.approx(0.5)
    for alternative in ex.alternative_dirs:
        assert lab.declared_canary_share(objects(alternative)) == pytest.approx(0.10)


@pytest.mark.parametrize("canary,ok", [(20, True), (6, True), (40, True), (5, False), (41, False), (100, False),
                                       (0, False)])
def test_the_canary_count_is_judged_against_the_stated_range(canary, ok):
    passed, sentence = lab.judge_canary(Counter({lab.CANARY: canary, lab.API: 200 - canary}), 200)
    assert passed is ok
    if not ok:
        assert "outside the range 6-40" in sentence and "probability" in sentence


def test_the_canary_failure_names_the_declared_weights():
    _, sentence = lab.judge_canary(Counter({lab.CANARY: 100, lab.API: 100}), 200, declared=0.5)
    assert "Your weights give the canary 50 %" in sentence


def test_other_answers_among_the_canary_requests_fail():
    passed, sentence = lab.judge_canary(Counter({lab.CANARY: 20, lab.API: 170, lab.FRONTEND: 10}), 200)
    assert not passed and "10 got another answer" in sentence


def test_the_stated_bound_matches_the_binomial_tails():
    from math import comb
    n, p = lab.CANARY_REQUESTS, lab.CANARY_SHARE
    low, high = lab.CANARY_RANGE
    pmf = [comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
    assert sum(pmf[:low]) + sum(pmf[high + 1:]) < 1 / 20000


def test_counts_parse_uniq_output():
    out = "    180 api-6d8f-abcde\n     18 api-canary-7c9-xyz\n      2 \n"
    assert lab.parse_counts(out, APPS) == Counter({lab.API: 180, lab.CANARY: 18, "no answer": 2})


def test_counting_probe_is_one_bounded_curl():
    argv = lab.counting_spec("outside/kind", "172.18.0.200").argv()
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == ("curl -s -m 1 -H 'Host: app.example.com' -w '\\n' 'http://172.18.0.200:80/api#[1-200]' "
                       "| sort | uniq -c")  # every request bounded (-m 1), one line each, 200 of them


def test_admission_explains_a_backend_ref_without_port():
    text = lab.explain_admission('spec.rules[0].backendRefs[1]: Invalid value: "object": Must have port for '
                                 'Service reference')
    assert "port" in text and "no default" in text
    assert lab.explain_admission("something else") == ""


# ---------------------------------------------------------------------------- TLS
CERT_OK = {"Subject": "O = k8slab, CN = app.example.com", "Issuer": "O = k8slab, CN = k8slab course CA",
           "X509v3 Subject Alternative Name": "DNS:app.example.com", "Expire date": "Nov 29 18:51:34 2036 GMT"}


def test_tls_solution_and_alternatives_show_no_cause_in_the_files():
    ex = _exercise("tls")
    for directory in (ex.solution_dir, *ex.alternative_dirs):
        objs = objects(directory)
        assert lab.tls_causes(objs) == [] and lab.ingress_causes(objs, CLASSES) == [], directory


@pytest.mark.parametrize("mistake", ["secret-name-mismatch", "cluster-issuer-only", "no-router-tls"])
def test_tls_mistakes_read_from_the_files_carry_their_fragment(mistake):
    ex = _exercise("tls")
    m = next(m for m in ex.mistakes if m.id == mistake)
    causes = lab.tls_causes(objects(ex.mistake_dir(m)))
    assert any(m.message in c.message for c in causes), [c.message for c in causes]


def test_the_starter_has_no_tls_section_yet():
    causes = lab.tls_causes(objects(_exercise("tls").starter_dir))
    assert any("has no tls section" in c.message for c in causes)


def test_certificate_fields_from_curl_certinfo():
    out = ("Subject:O = k8slab, CN = app.example.com\nIssuer:O = k8slab, CN = k8slab course CA\n"
           "X509v3 Subject Alternative Name:DNS:app.example.com, DNS:api.example.com\n"
           "Start date:Dec  2 18:51:34 2026 GMT\nExpire date:Nov 29 18:51:34 2036 GMT\nSubject:CN = the CA itself\n")
    info = lab.parse_certificate(out)
    assert info["Subject"] == "O = k8slab, CN = app.example.com"  # the leaf, not a later certificate of the chain
    assert lab.certificate_names(info) == ["app.example.com", "api.example.com"]
    assert lab.certificate_causes(info) == []


def test_a_certificate_for_another_host_is_named():
    info = {**CERT_OK, "X509v3 Subject Alternative Name": "DNS:www.example.com"}
    [cause] = lab.certificate_causes(info)
    assert "for www.example.com" in cause.message and "not app.example.com" in cause.message


def test_a_wildcard_certificate_covers_the_host():
    assert lab.certificate_causes({**CERT_OK, "X509v3 Subject Alternative Name": "DNS:*.example.com"}) == []


def test_traefiks_default_certificate_is_recognised():
    info = {"Subject": "CN = TRAEFIK DEFAULT CERT", "Issuer": "CN = TRAEFIK DEFAULT CERT",
            "X509v3 Subject Alternative Name": "DNS:a1b2.traefik.default"}
    [cause] = lab.certificate_causes(info)
    assert "default certificate" in cause.message


def test_another_issuer_is_named():
    [cause] = lab.certificate_causes({**CERT_OK, "Issuer": "CN = somebody"})
    assert "issued by CN = somebody" in cause.message


def test_plain_http_probe_reads_the_location_without_following_it():
    spec_ = lab.plain_http_spec("outside/kind", "172.18.0.200", "/api/v1?page=2")
    script = spec_.argv()[2]
    assert "Host: app.example.com" in script and "'http://172.18.0.200:80/api/v1?page=2'" in script
    assert "-L" not in script.split()
    moved = ProbeResult(spec_, Outcome.ALLOWED, output="301 https://app.example.com/api/v1?page=2")
    assert lab.parse_redirect(moved) == (301, "https://app.example.com/api/v1?page=2")


@pytest.mark.parametrize("status, location", [(301, "https://app.example.com/api/v1?page=2"),
                                              (308, "https://app.example.com:443/api/v1?page=2")])
def test_a_permanent_redirect_to_the_same_https_url_is_right(status, location):
    assert lab.https_redirect_problem("/api/v1?page=2", status, location) == ""


@pytest.mark.parametrize("status, location, fragment", [
    (404, "", "no plain-HTTP route"),
    (200, "", "served over plain HTTP"),
    (302, "https://app.example.com/", "temporary redirect"),
    (301, "http://app.example.com/", "not an https:// address"),
    (301, "https://app.example.com:8443/", "port 8443"),
    (301, "https://www.example.com/", "another host"),
    (None, "Connection timed out", "no HTTP answer"),
])
def test_each_wrong_answer_to_plain_http_is_named(status, location, fragment):
    assert fragment in lab.https_redirect_problem("/", status, location)


def test_a_redirect_that_drops_the_path_is_named():
    problem = lab.https_redirect_problem("/api/v1?page=2", 301, "https://app.example.com/")
    assert "loses the path and query" in problem


def test_tls_solution_and_alternatives_have_no_redirect_cause():
    ex = _exercise("tls")
    for directory in (ex.solution_dir, *ex.alternative_dirs):
        assert lab.redirect_causes(objects(directory), "k8slab-ingress") == [], directory


@pytest.mark.parametrize("mistake", ["redirect-temporary", "redirect-port-8443", "redirect-on-https-routes",
                                     "http-served-plain"])
def test_redirect_mistakes_read_from_the_files_carry_their_fragment(mistake):
    ex = _exercise("tls")
    m = next(m for m in ex.mistakes if m.id == mistake)
    causes = lab.redirect_causes(objects(ex.mistake_dir(m)), "k8slab-ingress")
    assert any(m.message in c.message for c in causes), [c.message for c in causes]


def test_the_starter_has_no_redirect_yet():
    causes = lab.redirect_causes(objects(_exercise("tls").starter_dir), "k8slab-ingress")
    assert any("no Middleware with a redirectScheme" in c.message for c in causes)


def test_https_probe_verifies_against_the_ca_with_sni():
    route = lab.TLS_ROUTES[0]
    script = lab.https_spec("outside/kind", "172.18.0.200", route, "-----BEGIN CERTIFICATE-----\nX\n").argv()[2]
    assert "--resolve app.example.com:443:172.18.0.200 https://app.example.com/api" in script
    assert "--cacert /tmp/ca.$$.pem" in script and "-k" not in script.split()


def test_one_reason_for_every_request_is_said_once():
    reason = "no answer (curl exit 60: curl: (60) SSL certificate problem: self-signed certificate)"
    observed = {r: Counter({reason: 2}) for r in lab.TLS_ROUTES}
    [only] = lab.symptoms(observed)
    assert only.startswith("every request for app.example.com (/api, /api/v1, /apiary, /, /about)") or \
        "every request for app.example.com" in only
    assert "self-signed" in only


def test_a_secret_holding_the_certificate_of_another_host_is_named():
    certs = paths.repo_root() / "labs" / lab.LAB_ID / "certs"
    known = {c.name[:-4]: c.read_text() for c in certs.glob("*.crt")}
    ex = _exercise("tls")
    wrong = next(m for m in ex.mistakes if m.id == "san-other-host")
    [cause] = lab.secret_certificate_causes(objects(ex.mistake_dir(wrong)), known)
    assert "www.example.com" in cause.message and "SNI" in cause.message
    for directory in (ex.solution_dir, *ex.alternative_dirs):
        assert lab.secret_certificate_causes(objects(directory), known) == []


def test_the_same_redirect_fault_on_every_path_is_said_once():
    specs = [lab.plain_http_spec("outside/kind", "172.18.0.200", p) for p in lab.HTTPS_REDIRECT_PATHS]
    problems, rows = lab.judge_https_redirects([ProbeResult(s, Outcome.ALLOWED, output="404 ") for s in specs])
    assert len(problems) == 1 and len(rows) == 2
    assert problems[0].startswith("http://app.example.com/ and http://app.example.com/api/v1?page=2 got 404")
    problems, _ = lab.judge_https_redirects([ProbeResult(specs[0], Outcome.ALLOWED, output="301 https://app.example.com/"),
                                             ProbeResult(specs[1], Outcome.ALLOWED, output="302 https://app.example.com/")])
    assert len(problems) == 1 and "temporary" in problems[0] and "loses the path" in problems[0]


def test_a_redirect_middleware_named_without_its_namespace_is_named_as_rate_limit_names_it(tmp_path):
    """Written by a held-out student: router.middlewares: to-tls@kubernetescrd -- Traefik drops the router."""
    import shutil
    ex = _exercise("tls")
    for f in ex.solution_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    text = (tmp_path / "redirect.yaml").read_text()
    (tmp_path / "redirect.yaml").write_text(text.replace("k8slab-ingress-https-redirect@", "https-redirect@"))
    causes = lab.redirect_causes(objects(tmp_path), "k8slab-ingress")
    assert any("is not how Traefik names a Middleware" in c.message for c in causes), [c.message for c in causes]


def test_no_request_before_the_controller_settled(monkeypatch):
    """Traefik serves the previous check's routes for up to its 2 s throttle: a check sends nothing before
    CONTROLLER_SETTLE after apply (a starter checked right after a solution passed with the solution's routes)."""
    clock = {"now": 100.0}
    slept = []
    monkeypatch.setattr(lab.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(lab.time, "sleep", lambda s: slept.append(s))
    monkeypatch.setattr(lab, "CONTROLLER_SETTLE", 3.0)
    clock["now"] = 101.0   # one second went into finding the address and the client
    lab.settle(100.0)
    assert slept == [2.0]
    clock["now"] = 104.5   # already later than that: no wait
    lab.settle(100.0)
    assert slept == [2.0, 0.0]
