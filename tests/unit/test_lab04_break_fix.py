"""Lab 04's break-fix exercise without a cluster: the shop's broken routing as deployed, the fix, the wrong fixes.

* ``as_deployed`` tells the unchanged starter (pinned by BREAK_FIX_DIGEST) from an edited submission (comments and
  namespaces do not count);
* ``ingress_causes`` names both faults of the starter, none for the solution and alternatives, and each wrong
  fix's own cause with its fragment;
* ``break_fix_live`` with a simulated controller answering as Traefik does for each variant: the starter fails
  with the symptoms only (no port, name or pathType given away), an edited submission with symptoms and causes,
  the solution passes;
* the wording of the failure (``break_fix_failure``).
"""
from __future__ import annotations

import functools
import re
import shutil
from types import SimpleNamespace as NS

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab04_ingress as lab
from graders.labs._kit import Finding
from graders.model import Outcome
from graders.probe import ProbeResult

EX = spec.load_lab("04-ingress").exercise("break-fix")
NAMESPACE = EX.default_namespace
# words that would give the starter's faults away at its first failure
GIVEAWAYS = ("port", "named", "web", "Exact", "pathType", "Prefix")
APPS = {"api-1": lab.API, "api-2": lab.API, "frontend-1": lab.FRONTEND}
# what Traefik answers, per variant: {path: backend} for app.example.com (unknown hosts always get its 404)
ALL_FRONTEND = {"/api": lab.FRONTEND, "/api/v1": lab.FRONTEND}
SEEN = {
    "break-fix": ALL_FRONTEND, "pathtype-only": ALL_FRONTEND, "port-number-8080": ALL_FRONTEND,
    "port-name-only": {"/api/v1": lab.FRONTEND},
    "prefix-api-no-slash": {"/apiary": lab.API},
    "priority-removed": {"/api": lab.FRONTEND},
}


def _objects(directory):
    return manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces).manifests


def test_the_spec_has_no_todo_starter_and_enough_variants():
    assert len(EX.mistakes) >= 5 and len(EX.alternative_dirs) >= 2
    assert lab.EXERCISES["break-fix"].live is lab.break_fix_live
    for path in EX.starter_dir.glob("*.yaml"):
        assert "TODO" not in path.read_text()


def test_the_digest_is_the_starter_and_edits_change_it(tmp_path):
    assert lab.as_deployed(_objects(EX.starter_dir), lab.BREAK_FIX_DIGEST), "the pin must equal the starter"
    copy = tmp_path / "copy"
    shutil.copytree(EX.starter_dir, copy)
    text = (copy / "ingress.yaml").read_text()
    (copy / "ingress.yaml").write_text("# a comment of my own\n" + text)
    assert lab.as_deployed(_objects(copy), lab.BREAK_FIX_DIGEST), "comments do not count"
    (copy / "ingress.yaml").write_text(text.replace("pathType: Exact", "pathType: Prefix"))
    assert not lab.as_deployed(_objects(copy), lab.BREAK_FIX_DIGEST)
    for directory in (EX.solution_dir, *EX.alternative_dirs, *(EX.mistake_dir(m) for m in EX.mistakes)):
        assert not lab.as_deployed(_objects(directory), lab.BREAK_FIX_DIGEST), directory


def test_the_starter_shows_both_faults_in_the_files():
    text = " ".join(c.message for c in lab.ingress_causes(_objects(EX.starter_dir), [lab.COURSE_CLASS]))
    assert "has no port named http" in text and "pathType Exact matches the path /api/" in text


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_solution_and_alternatives_show_no_cause(directory):
    assert lab.ingress_causes(_objects(directory), [lab.COURSE_CLASS]) == []


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_fix_has_a_cause_with_its_fragment(mistake):
    causes = lab.ingress_causes(_objects(EX.mistake_dir(mistake)), [lab.COURSE_CLASS])
    assert any(mistake.message in c.message for c in causes), [c.message for c in causes]


# ---------------------------------------------------------------------- break_fix_live, simulated
class Traefik:
    def __init__(self, wrong: dict):
        self.wrong = wrong

    def run(self, specs):
        out = []
        for s in specs:
            route = next(r for r in lab.HOST_PATH_ROUTES if r.label == s.label)
            app = self.wrong.get(route.path, next(iter(route.accept))) if route.host == lab.HOST else lab.NOT_FOUND
            body = {lab.API: "api-1", lab.FRONTEND: "frontend-1", lab.NOT_FOUND: lab.NOT_FOUND_BODY}[app]
            out.append(ProbeResult(s, Outcome.ALLOWED, output=body))
        return out


def live(monkeypatch, directory, wrong):
    monkeypatch.setattr(lab, "controller_address", lambda ctx, objects=None: "172.18.0.240")
    monkeypatch.setattr(lab, "backend_apps", lambda ctx: APPS)
    monkeypatch.setattr(lab, "known_ingress_classes", lambda cluster: [lab.COURSE_CLASS])
    monkeypatch.setattr(lab, "outside_vantage", lambda ctx: NS(runner=Traefik(wrong), source="docker/outside",
                                                               where="outside the cluster", note=""))
    monkeypatch.setattr(lab, "send_until_right", functools.partial(lab.send_until_right, deadline_s=0.0))
    cluster = NS(context="kind-k8slab")
    return lab.break_fix_live(Ctx(spec=EX, objects=tuple(_objects(directory)), cluster=cluster))


def test_the_starter_fails_with_the_symptoms_only(monkeypatch):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.starter_dir, SEEN["break-fix"])
    message = caught.value.message
    assert "(/api, /api/v1) got the frontend" in message and "has changed yet" in message
    assert not [w for w in GIVEAWAYS if re.search(rf"\b{w}\b", message)], message
    assert "--context kind-k8slab" in caught.value.hint and "logs deploy/traefik" in caught.value.hint


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_fix_fails_naming_its_cause(monkeypatch, mistake):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, EX.mistake_dir(mistake), SEEN[mistake.id])
    assert mistake.message in caught.value.message and "has changed yet" not in caught.value.message


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_the_fixes_pass(monkeypatch, directory):
    assert live(monkeypatch, directory, {}).passed


def test_the_failure_wording():
    found = ["every request for app.example.com (/api, /api/v1) got the frontend (frontend-service)"]
    message, hint = lab.break_fix_failure(found, deployed=True, causes=[], namespace=NAMESPACE)
    assert message.startswith("Users of http://app.example.com report") and "describe ingress" in hint
    message, hint = lab.break_fix_failure(found, deployed=False, causes=[], namespace=NAMESPACE)
    assert message == found[0] and "describe ingress" in hint
    causes = [Finding("cause one", "hint one"), Finding("cause two", "hint two")]
    message, hint = lab.break_fix_failure(found, deployed=False, causes=causes, namespace=NAMESPACE)
    assert "2 causes: (1) cause one (2) cause two" in message and hint == "(1) hint one (2) hint two"
