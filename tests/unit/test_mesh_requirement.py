"""`requires: mesh` (graders/spec.py, graders/mesh.py, graders/engine.py): on a cluster without a service mesh every
such exercise is reported "not graded: needs the online cluster with a mesh" — never a pass, never a crash, never a
failure of the learner's files, and nothing is applied; with a mesh it is graded as usual."""
from __future__ import annotations

import json

import pytest

from fakelab import LAB_ID, LAB_YAML, NAMESPACE
from fakes import FakeCluster
from graders import cli, engine, mesh, nbgrader, render, spec
from graders.errors import ClusterError, GradingError, SpecError

MESH_LAB_YAML = LAB_YAML.replace("    allowed_kinds: [Pod]\n", "    allowed_kinds: [Pod]\n    requires: mesh\n", 1) \
    .replace("    allowed_kinds: [Pod, Service]\n", "    allowed_kinds: [Pod, Service]\n    requires: [mesh]\n", 1)


def control_plane(namespace: str, name: str, *images: str, ready: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": f"c{i}", "image": image}
                                                          for i, image in enumerate(images)]}}},
            "status": {"readyReplicas": ready}}


def with_mesh(cluster: FakeCluster, which: str = "istio") -> FakeCluster:
    if which == "istio":
        obj = control_plane("istio-system", "istiod", "docker.io/istio/pilot:1.28.3")
    else:
        obj = control_plane("linkerd", "linkerd-destination", "cr.l5d.io/linkerd/proxy:edge-25.11.3",
                            "cr.l5d.io/linkerd/controller:edge-25.11.3")
        obj["spec"]["template"]["spec"]["containers"][0]["name"] = "linkerd-proxy"
    cluster.objects[f"Deployment {obj['metadata']['namespace']}/{obj['metadata']['name']}"] = obj
    return cluster


@pytest.fixture
def mesh_course(course):
    (course / "labs" / LAB_ID / "lab.yaml").write_text(MESH_LAB_YAML)
    return course


# ------------------------------------------------------------------------------------------------ spec
def test_requires_is_read_as_a_string_or_a_list(mesh_course):
    lab = spec.load_lab(LAB_ID)
    assert [ex.requires for ex in lab.exercises] == [("mesh",), ("mesh",)]


def test_an_unknown_requirement_is_a_spec_error_naming_the_field(mesh_course):
    (mesh_course / "labs" / LAB_ID / "lab.yaml").write_text(MESH_LAB_YAML.replace("requires: mesh", "requires: gpu"))
    with pytest.raises(SpecError, match=r"exercises\[0\]\.requires: must be one of mesh"):
        spec.load_lab(LAB_ID)


def test_the_course_labs_that_require_a_mesh_are_exactly_the_mesh_lab():
    needing = {lab.id for lab in spec.all_labs() for ex in lab.exercises if ex.requires}
    assert needing == {"06-service-mesh"}
    assert all(ex.requires == ("mesh",) for ex in spec.load_lab("06-service-mesh").exercises)


# ------------------------------------------------------------------------------------------------ detect
def test_detect_istio_and_its_version():
    found = mesh.detect(with_mesh(FakeCluster(), "istio"))
    assert isinstance(found, mesh.Mesh) and found.name == "istio" and found.version == "1.28.3"
    assert found.proxy == "istio-proxy" and found.title == "Istio 1.28.3"


def test_detect_linkerd_reads_the_controller_not_its_own_proxy():
    found = mesh.detect(with_mesh(FakeCluster(), "linkerd"))
    assert found.name == "linkerd" and found.version == "edge-25.11.3" and found.proxy == "linkerd-proxy"


def test_no_control_plane_or_an_unready_one_is_no_mesh():
    assert mesh.detect(FakeCluster()) is None
    cluster = with_mesh(FakeCluster())
    cluster.objects["Deployment istio-system/istiod"]["status"] = {"readyReplicas": 0}
    assert mesh.detect(cluster) is None and mesh.unmet(cluster) == mesh.NEEDS_MESH


def test_namespaces_that_cannot_be_read_leave_it_undetermined_and_grading_goes_ahead():
    class Forbidden(FakeCluster):
        def get(self, api_version, kind, namespace, name):
            raise ClusterError(f"reading {kind} {namespace}/{name}: forbidden", reason="Forbidden")

    found = mesh.detect(Forbidden())
    assert isinstance(found, mesh.Undetermined) and "forbidden" in found.reason
    assert mesh.unmet(Forbidden()) == ""


def test_the_message_says_what_the_issue_promises():
    assert mesh.NEEDS_MESH.startswith("not graded: needs the online cluster with a mesh (Istio or Linkerd) — run "
                                      "`make mesh MESH=istio`")


# ------------------------------------------------------------------------------------------------ variants
@pytest.mark.parametrize("name, objects, meshes", [
    ("solution", [], {"istio", "linkerd"}),
    ("istio-permissive", [], {"istio"}),
    ("linkerd-default-policy", [], {"linkerd"}),
    ("solution", [{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication"}], {"istio"}),
    ("solution", [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"}], {"istio", "linkerd"}),
    ("linkerd-server", [{"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server"}], {"linkerd"}),
    ("linkerd-x", [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy"}], set()),
])
def test_which_mesh_a_variant_is_written_for(name, objects, meshes):
    assert mesh.written_for(name, objects) == meshes


# ------------------------------------------------------------------------------------------------ engine
def test_without_a_mesh_every_exercise_is_not_graded_and_nothing_is_applied(mesh_course):
    cluster = FakeCluster()
    result = engine.grade(LAB_ID, submission=mesh_course / "solutions" / LAB_ID, cluster=cluster)
    assert [e.ungraded for e in result.exercises] == [mesh.NEEDS_MESH, mesh.NEEDS_MESH]
    for outcome in result.exercises:
        assert not outcome.passed and outcome.score == 0 and outcome.message == mesh.NEEDS_MESH
        assert [s.step for s in outcome.steps] == ["parse", "requires"] and outcome.steps[0].passed
        assert outcome.hint == mesh.NEEDS_MESH_HINT
    assert not result.passed and result.ungraded == result.exercises and result.failed == ()
    changed = [c for c in cluster.calls if c[0] != "exec"]
    assert changed == [] and NAMESPACE not in cluster.namespaces, "nothing may be touched without a mesh"


def test_a_file_that_fails_the_offline_checks_still_fails_as_usual(mesh_course):
    result = engine.grade(LAB_ID, "hello-pod", mesh_course / "solutions" / LAB_ID / "mistakes" / "hello-pod" /
                          "latest-image", cluster=FakeCluster())
    outcome = result.exercise("hello-pod")
    assert outcome.failed_step == "parse" and not outcome.ungraded and ":latest" in outcome.message


def test_with_a_mesh_the_exercises_are_graded(mesh_course):
    result = engine.grade(LAB_ID, submission=mesh_course / "solutions" / LAB_ID, cluster=with_mesh(FakeCluster()))
    assert result.passed and all(e.graded for e in result.exercises)


# ------------------------------------------------------------------------------------------------ front ends
def test_front_ends_say_not_graded_never_failed(mesh_course, fake_connect, capsys):
    result = engine.grade(LAB_ID, submission=mesh_course / "solutions" / LAB_ID, cluster=FakeCluster())
    text = render.to_text(result, color=False)
    assert "– hello-pod" in text and "failed at" not in text and "NOT GRADED 99-fake: 0/5 points" in text
    html = render.to_html(result)
    assert "NOT GRADED" in html and "Failed at" not in html and "not graded: needs the online cluster" in html
    data = json.loads(render.to_json(result))
    assert [e["graded"] for e in data["exercises"]] == [False, False]
    assert cli.exit_code(result) == cli.EXIT_NOT_GRADED == 5
    assert cli.main(["grade", LAB_ID, "--submission", str(mesh_course / "solutions" / LAB_ID)]) == 5
    assert "NOT GRADED" in capsys.readouterr().out


def test_nbgrader_says_it_could_not_grade(mesh_course, fake_connect):
    with pytest.raises(GradingError, match="could not be graded: not graded: needs the online cluster with a mesh"):
        nbgrader.scored(LAB_ID, "hello-pod", 2)
