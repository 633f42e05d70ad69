"""Lab 04's gateway-routing exercise without a cluster.

* ``routing_causes`` (read from the files): nothing for the solution and alternatives, both missing features for
  the starter, each mistake's own fragment where the files show it;
* ``redirect_problem``: the asked 301 to /new passes as an absolute, scheme-relative (Traefik's) or relative
  Location; a 302, a path kept as /old, an unreachable port each say what is wrong;
* the probes: a header request carries its header, the redirect is read without being followed;
* ``gateway_routing_live`` with a simulated controller answering as Traefik did for each variant.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab04_ingress as lab
from graders.model import Outcome
from graders.probe import ProbeResult

EX = spec.load_lab("04-ingress").exercise("gateway-routing")
NAMESPACE = EX.default_namespace
APPS = {"api-1": lab.API, "canary-1": lab.CANARY, "frontend-1": lab.FRONTEND}
CORRECT_REDIRECT = (301, "//app.example.com/new")     # what Traefik v3.5 writes without scheme or port
# what Traefik answered on the course cluster, per variant: ({route label: backend}, (status, Location))
SEEN = {
    "gateway-routing": ({r.label: lab.API for r in lab.ROUTING_ROUTES if r.accept == {lab.CANARY}},
                        (200, "")),
    "header-value-true": ({r.label: lab.API for r in lab.ROUTING_ROUTES if r.accept == {lab.CANARY}},
                          CORRECT_REDIRECT),
    "separate-matches": ({f"{lab.HOST}/api": lab.CANARY, f"{lab.HOST}/api/v1": lab.CANARY}, CORRECT_REDIRECT),
    "weighted-canary": ({r.label: lab.API for r in lab.ROUTING_ROUTES if r.accept == {lab.CANARY}},
                        CORRECT_REDIRECT),
    "redirect-302": ({}, (302, "http://app.example.com/new")),
    "redirect-no-path": ({}, (301, "//app.example.com/old")),
}


def _objects(directory):
    return manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces).manifests


def test_the_spec_has_enough_variants():
    assert len(EX.mistakes) >= 5 and len(EX.alternative_dirs) >= 2
    assert lab.EXERCISES["gateway-routing"].live is lab.gateway_routing_live
    assert set(SEEN) == {"gateway-routing"} | {m.id for m in EX.mistakes}


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_solution_and_alternatives_show_no_cause(directory):
    assert lab.routing_causes(_objects(directory), NAMESPACE) == []


def test_the_starter_lacks_both_features():
    text = " ".join(c.message for c in lab.routing_causes(_objects(EX.starter_dir), NAMESPACE))
    assert "matches the header X-Canary" in text and "no rule in your files has a RequestRedirect" in text


@pytest.mark.parametrize("location", ["http://app.example.com/new", "//app.example.com/new", "/new",
                                      "http://app.example.com:80/new"])
def test_a_permanent_redirect_to_new_passes(location):
    assert lab.redirect_problem(301, location) == ""


@pytest.mark.parametrize("status, location, fragment", [
    (302, "http://app.example.com/new", "302 is a temporary redirect"),
    (301, "http://app.example.com/old", "/old again"),
    (301, "http://app.example.com:8000/new", "port 8000"),
    (301, "https://app.example.com/new", "port 443"),
    (301, "http://www.example.com/new", "another host"),
    (301, "", "no Location header"),
    (200, "", "not a redirect"),
    (None, "connection refused", "no HTTP answer"),
])
def test_a_wrong_redirect_says_what_is_wrong(status, location, fragment):
    assert fragment in lab.redirect_problem(status, location)


def test_the_probes_send_the_header_and_do_not_follow_the_redirect():
    route = next(r for r in lab.ROUTING_ROUTES if r.header)
    script = lab.header_spec("docker/outside", "172.18.0.240", route).script
    assert f"-H '{lab.CANARY_HEADER}'" in script and "-m 2" in script
    redirect = lab.redirect_spec("docker/outside", "172.18.0.240").script
    assert " -L" not in redirect and "-m 2" in redirect and "ocation" in redirect
    ok = ProbeResult(lab.redirect_spec("docker/outside", "172.18.0.240"), Outcome.ALLOWED,
                     output="301 //app.example.com/new\n")
    assert lab.parse_redirect(ok) == (301, "//app.example.com/new")
    assert lab.parse_redirect(ProbeResult(ok.spec, Outcome.ALLOWED, output="000 ")) == (None, "000")


def test_labels_tell_header_requests_apart():
    labels = [r.label for r in lab.ROUTING_ROUTES]
    assert len(labels) == len(set(labels))


# ---------------------------------------------------------------------- gateway_routing_live, simulated
class Traefik:
    def __init__(self, wrong: dict, redirect: tuple):
        self.wrong, self.redirect = wrong, redirect

    def run(self, specs):
        out = []
        for s in specs:
            if s.label.endswith("(redirect)"):
                out.append(ProbeResult(s, Outcome.ALLOWED, output=f"{self.redirect[0]} {self.redirect[1]}"))
                continue
            route = next(r for r in lab.ROUTING_ROUTES if r.label == s.label)
            app = self.wrong.get(route.label, next(iter(route.accept)))
            body = {lab.API: "api-1", lab.CANARY: "canary-1", lab.FRONTEND: "frontend-1",
                    lab.NOT_FOUND: lab.NOT_FOUND_BODY}[app]
            out.append(ProbeResult(s, Outcome.ALLOWED, output=body))
        return out


def live(monkeypatch, directory, wrong, redirect):
    monkeypatch.setattr(lab, "controller_address", lambda ctx, objects=None: "172.18.0.240")
    monkeypatch.setattr(lab, "backend_apps", lambda ctx: APPS)
    monkeypatch.setattr(lab, "outside_vantage", lambda ctx: NS(runner=Traefik(wrong, redirect),
                                                               source="docker/outside", where="outside the cluster",
                                                               note=""))
    monkeypatch.setattr(lab, "ROUTES_DEADLINE", 0.0)
    monkeypatch.setattr(lab, "_status_rows", lambda ctx, kind, api_version: [])
    cluster = NS(context="kind-k8slab")
    return lab.gateway_routing_live(Ctx(spec=EX, objects=tuple(_objects(directory)), cluster=cluster))


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_mistake_fails_with_its_fragment(monkeypatch, mistake):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.mistake_dir(mistake), *SEEN[mistake.id])
    assert mistake.message in caught.value.message, caught.value.message


def test_the_starter_fails_naming_both_missing_features(monkeypatch):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.starter_dir, *SEEN["gateway-routing"])
    assert "X-Canary" in caught.value.message and "RequestRedirect" in caught.value.message


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_the_solutions_pass(monkeypatch, directory):
    result = live(monkeypatch, directory, {}, CORRECT_REDIRECT)
    assert result.passed and "301" in result.message
