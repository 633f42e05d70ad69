"""Lab 00-orientation without a cluster: static step on every file set, and the live step's messages with a
fake cluster + SimulatedRunner (the live tests prove the same on a real cluster)."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab00_orientation as lab
from graders.model import Outcome
from graders.probe import ProbeResult, SimulatedRunner

LAB = spec.load_lab("00-orientation")
POD_EX, SVC_EX = LAB.exercise("hello-pod"), LAB.exercise("hello-service")


def _ctx(ex, directory, cluster=None, truth=None):
    found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    factory = (lambda c: SimulatedRunner(truth)) if truth else None
    return Ctx(spec=ex, objects=found.manifests, cluster=cluster, runner_factory=factory)


# ---------------------------------------------------------------------- static (hello-service)
def test_solution_passes_static():
    result = lab.hello_service_static(_ctx(SVC_EX, SVC_EX.solution_dir))
    assert result.passed and "selects app=hello" in result.message


def test_starter_fails_static_with_a_reason():
    with pytest.raises(CheckFailed, match="has no selector"):
        lab.hello_service_static(_ctx(SVC_EX, SVC_EX.starter_dir))


SCHEMA_REJECTS = {"matchlabels-selector"}  # refused offline by the schema: explained at the parse step


@pytest.mark.parametrize("mistake", [m.id for m in SVC_EX.mistakes if m.id not in SCHEMA_REJECTS])
def test_service_mistakes_named_by_static(mistake):
    m = SVC_EX.mistake(mistake)
    with pytest.raises(CheckFailed) as info:
        lab.hello_service_static(_ctx(SVC_EX, SVC_EX.mistake_dir(m)))
    assert m.message in info.value.message
    if mistake == "selector-typo":
        assert "app=hello (Pod hello)" in info.value.message  # shows the labels that DO exist
    assert f"Service {SVC_EX.namespaces[0]}/hello (solutions/00-orientation/mistakes/hello-service/{mistake}/" \
           in info.value.message or mistake == "wrong-name", "a static failure cites file:line"


# ---------------------------------------------------------------------- live (hello-pod) with fakes
def _v1pod(obj, ip, node):
    meta = obj["metadata"]
    return NS(metadata=NS(name=meta["name"], namespace=meta["namespace"], labels=meta.get("labels") or {},
                          deletion_timestamp=None),
              spec=NS(node_name=node),
              status=NS(phase="Running", pod_ip=ip, conditions=[NS(type="Ready", status="True")]))


class FakeCluster:
    context = "kind-k8slab"

    def __init__(self, ctx_objects):
        self.pods = [_v1pod(m.obj, f"10.244.1.{i + 5}", "k8slab-worker")
                     for i, m in enumerate(ctx_objects) if m.kind == "Pod"]
        self.applied = []

    def list_pods(self, ns):
        return list(self.pods)

    def list_nodes(self):
        return [NS(metadata=NS(name=n), spec=NS(taints=[]),
                   status=NS(conditions=[NS(type="Ready", status="True")], images=[]))
                for n in ("k8slab-worker", "k8slab-worker2")]

    def ensure_pods(self, pods, timeout=60):  # the grader's own pods: created like any object here
        self.apply(pods)

    def apply(self, objs):
        self.applied += objs
        for o in objs:
            self.pods.append(_v1pod(o, "10.244.2.9", o["spec"]["nodeSelector"]["kubernetes.io/hostname"]))

    def wait_ready(self, namespaces, timeout):
        pass

    def get_pod(self, ns, name):
        return next(p for p in self.pods if p.metadata.name == name)


def _live_pod(directory, truth):
    ctx = _ctx(POD_EX, directory, truth=truth)
    cluster = FakeCluster(ctx.objects)
    ctx = Ctx(spec=ctx.spec, objects=ctx.objects, cluster=cluster, runner_factory=ctx.runner_factory)
    return ctx, cluster


def _answer_hostname(spec):
    return ProbeResult(spec, Outcome.ALLOWED, output="hello")


def test_hello_pod_solution_passes_from_the_other_node():
    ctx, cluster = _live_pod(POD_EX.solution_dir, _answer_hostname)
    result = lab.hello_pod_live(ctx)
    assert result.passed and "10.244.1.5:8080" in result.message
    probe = cluster.applied[0]
    assert probe["spec"]["nodeSelector"]["kubernetes.io/hostname"] == "k8slab-worker2"  # not the pod's node


def test_label_typo_names_the_labels_that_exist():
    ctx, _ = _live_pod(POD_EX.mistake_dir("label-typo"), _answer_hostname)
    with pytest.raises(CheckFailed) as info:
        lab.hello_pod_live(ctx)
    assert "no Pod labelled app=hello" in info.value.message and "hello has app=helo" in info.value.message


def test_wrong_port_says_where_the_container_listens():
    refused = lambda s: ProbeResult(s, Outcome.BLOCKED, detail="connection refused or unreachable")  # noqa: E731
    ctx, _ = _live_pod(POD_EX.mistake_dir("wrong-port"), refused)
    with pytest.raises(CheckFailed) as info:
        lab.hello_pod_live(ctx)
    msg = info.value.message
    assert "nothing accepts connections on port 8080" in msg and "listens on 9090" in msg
    assert info.value.evidence[0].data.startswith("kubectl --context kind-k8slab exec -n k8slab-orientation")


def test_failed_probe_is_not_blamed_on_the_learner():
    failed = lambda s: ProbeResult(s, Outcome.FAILED, detail="exec failed: pod not found")  # noqa: E731
    ctx, _ = _live_pod(POD_EX.solution_dir, failed)
    with pytest.raises(CheckFailed, match="says nothing about your manifests"):
        lab.hello_pod_live(ctx)


def test_a_deployment_style_selector_is_explained_at_the_parse_step():
    from graders import engine

    mistake = SVC_EX.mistake("matchlabels-selector")
    step, found = engine._parse(SVC_EX, [SVC_EX.mistake_dir(mistake)], lab.explain_admission)
    assert found is None and mistake.message in step.message and "spec.selector.matchLabels" in step.message


def test_two_labelled_pods_are_one_too_many():
    mistake = POD_EX.mistake("two-pods")
    ctx, _ = _live_pod(POD_EX.mistake_dir(mistake), _answer_hostname)
    with pytest.raises(CheckFailed) as info:
        lab.hello_pod_live(ctx)
    assert mistake.message in info.value.message and "hello-copy" in info.value.message


def test_every_exercise_has_five_mistakes_and_two_alternatives():
    for ex in LAB.exercises:
        assert len(ex.mistakes) >= 5 and len(ex.alternative_dirs) >= 2, ex.id


@pytest.mark.parametrize("directory", SVC_EX.alternative_dirs, ids=lambda d: d.name)
def test_service_alternatives_pass_static(directory):
    assert lab.hello_service_static(_ctx(SVC_EX, directory)).passed


@pytest.mark.parametrize("directory", POD_EX.alternative_dirs, ids=lambda d: d.name)
def test_pod_alternatives_pass_live_with_fakes(directory):
    ctx, _ = _live_pod(directory, _answer_hostname)
    assert lab.hello_pod_live(ctx).passed


def test_hello_service_failures_name_a_field_that_changes_who_handles_the_traffic():
    """internalTrafficPolicy: Local drops a request from a probe pod on another node: the failure must name the
    field, not only the symptom (the note itself is tested with lab 03: test_traffic_fields_*)."""
    from types import SimpleNamespace

    def unanswered(ctx):
        raise CheckFailed("an HTTP request to hello.k8slab-orientation:80 was not answered (timeout)")
    local = SimpleNamespace(spec=SimpleNamespace(internal_traffic_policy="Local", type="ClusterIP"))
    ctx = SimpleNamespace(spec=SimpleNamespace(default_namespace="k8slab-orientation"),
                          cluster=SimpleNamespace(get_service=lambda ns, name: local if name == "hello" else None))
    assert lab.EXERCISES["hello-service"].live.__wrapped__ is lab.hello_service_live  # the live check is wrapped
    with pytest.raises(CheckFailed) as info:
        lab.naming_traffic_fields(unanswered, lab.SERVICE_NAME)(ctx)  # ... as here
    assert "internalTrafficPolicy: Local" in info.value.message and "not answered" in info.value.message
