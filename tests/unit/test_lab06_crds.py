"""Every manifest of lab 06 (starters, solutions, alternatives, mistakes) checked offline against the REAL CRD
schemas of the versions the course pins (tests/crds.py: Istio's from istio.io/api, Gateway API's from
sigs.k8s.io/gateway-api, both from the Go module proxy, their go.sum hashes pinned in environment/versions.env).
Built-in kinds are checked by the parse step itself (tests/unit/test_spec_consistency.py). Linkerd's
policy.linkerd.io kinds cannot be obtained from any source these machines reach: they are listed, not validated."""
from __future__ import annotations

import pytest

from crds import NOT_OBTAINABLE, catalog_or_skip, sources
from graders import manifests, paths, spec
from graders.manifests import CLUSTER_SCOPED_KINDS

LAB = spec.load_lab("06-service-mesh", paths.repo_root())


def _directories(lab):
    for ex in lab.exercises:
        yield f"{ex.id}/starter", ex.starter_dir
        yield f"{ex.id}/solution", ex.solution_dir
        for d in ex.alternative_dirs:
            yield f"{ex.id}/alternative-{d.name}", d
        for m in ex.mistakes:
            yield f"{ex.id}/{m.id}", ex.mistake_dir(m)


def _custom(objs):
    return [m for m in objs if "." in m.api_version.split("/")[0]]


@pytest.mark.parametrize("name, directory", list(_directories(LAB)), ids=[n for n, _ in _directories(LAB)])
def test_every_custom_resource_of_lab06_matches_its_crd(name, directory):
    catalog = catalog_or_skip()
    for m in _custom(manifests.load([directory])):
        group = m.api_version.split("/")[0]
        if group in NOT_OBTAINABLE:
            continue
        schema = catalog.get(m.api_version, m.kind)
        assert schema is not None, f"{m.label}: no CRD for {m.api_version} {m.kind} in {sorted(sources())}"
        report = schema.validate(m.obj)
        assert not report.problems, f"{m.label}: " + "; ".join(f"{p.where}: {p.message}" for p in report.problems)


def test_the_kinds_lab06_uses_are_known_and_linkerds_are_named_as_not_validated():
    catalog = catalog_or_skip()
    used = {(m.api_version, m.kind) for _, d in _directories(LAB) for m in _custom(manifests.load([d]))}
    validated = {k for k in used if k[0].split("/")[0] not in NOT_OBTAINABLE}
    assert validated == {("security.istio.io/v1", "PeerAuthentication"), ("security.istio.io/v1", "AuthorizationPolicy"),
                         ("networking.istio.io/v1", "VirtualService"), ("gateway.networking.k8s.io/v1", "HTTPRoute")}
    assert validated <= catalog.kinds()
    assert {k[1] for k in used - validated} == {"Server", "AuthorizationPolicy", "MeshTLSAuthentication"}
    assert not {k[1] for k in used} & CLUSTER_SCOPED_KINDS


def test_lab04s_gateway_api_routes_match_the_same_crd():
    """The course's other Gateway API lab, checked against the same pinned HTTPRoute CRD (its solutions and
    alternatives; its mistake port-missing is the one the API server's CEL rule refuses)."""
    catalog = catalog_or_skip()
    lab04 = spec.load_lab("04-ingress", paths.repo_root())
    for ex in (e for e in lab04.exercises if e.submission == "manifests"):
        for directory in (ex.solution_dir, *ex.alternative_dirs):
            for m in manifests.load([directory]) if directory.is_dir() else []:
                if m.kind == "HTTPRoute":
                    problems = catalog.get(m.api_version, m.kind).validate(m.obj).problems
                    assert not problems, f"{m.label}: {problems}"
    missing_port = manifests.load([lab04.exercise("gateway-canary").mistake_dir("port-missing")])
    problems = [p for m in missing_port if m.kind == "HTTPRoute"
                for p in catalog.get(m.api_version, m.kind).validate(m.obj).problems]
    assert any("needs a port" in p.message for p in problems)
