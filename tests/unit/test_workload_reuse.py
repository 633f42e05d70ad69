"""graders.workload_reuse and the reset that keeps what it names: a Deployment is kept only when the submission
applies exactly the running one and it is rolled out; everything else is still reset."""
from __future__ import annotations

import copy

from fakes import FakeCluster

from graders import engine, workload_reuse
from graders.cluster.client import _spared
from graders.manifests import parse_submission

NS = "k8slab-ingress"
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": NS},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                       "template": {"metadata": {"labels": {"app": "api"}},
                                    "spec": {"containers": [{"name": "api", "image": "registry.k8s.io/e2e-test-images/agnhost:2.56"}]}}}}


def live(obj=DEPLOYMENT, ready=2, generation=1, observed=1):
    out = workload_reuse.stamped(obj)
    out["metadata"]["generation"] = generation
    out["status"] = {"observedGeneration": observed, "replicas": 2, "updatedReplicas": 2, "readyReplicas": ready,
                     "availableReplicas": ready}
    return out


def test_the_stamp_is_the_content_and_leaves_the_submission_alone():
    original = copy.deepcopy(DEPLOYMENT)
    stamped = workload_reuse.stamped(DEPLOYMENT)
    assert DEPLOYMENT == original
    assert stamped["metadata"]["annotations"][workload_reuse.APPLIED_HASH] == workload_reuse.content_hash(DEPLOYMENT)
    assert workload_reuse.content_hash(stamped) == workload_reuse.content_hash(DEPLOYMENT)  # the stamp does not count
    assert "annotations" not in stamped["spec"]["template"]["metadata"]   # pods never carry it


def test_only_the_same_object_rolled_out_and_ready_is_kept():
    assert workload_reuse.reusable(live(), DEPLOYMENT)
    other = copy.deepcopy(DEPLOYMENT)
    other["spec"]["replicas"] = 3
    assert not workload_reuse.reusable(live(), other)
    assert not workload_reuse.reusable(live(ready=1), DEPLOYMENT)
    assert not workload_reuse.reusable(live(generation=2, observed=1), DEPLOYMENT)
    unstamped = live()
    del unstamped["metadata"]["annotations"]
    assert not workload_reuse.reusable(unstamped, DEPLOYMENT) and not workload_reuse.reusable(None, DEPLOYMENT)


def test_keep_names_the_unchanged_deployments_per_namespace():
    running = {(NS, "api"): live()}
    changed = copy.deepcopy(DEPLOYMENT)
    changed["metadata"]["name"] = "frontend"
    got = workload_reuse.keep([(NS, "api", DEPLOYMENT), (NS, "frontend", changed)],
                              lambda ns, name: running.get((ns, name)))
    assert got == {NS: ["api"]}


def test_the_reset_spares_the_kept_deployments_their_replicasets_and_pods_and_nothing_else():
    select = _spared(True, ("api",), ("5d9f", "7c4b"))
    assert select("Deployment", "") == ("metadata.name!=api", None)
    assert select("ReplicaSet", "") == ("", "pod-template-hash notin (5d9f,7c4b)")
    assert select("Pod", "") == ("", "!k8slab.dev/fixture,pod-template-hash notin (5d9f,7c4b)")
    assert select("Service", "") == ("", None)
    assert select("ServiceAccount", "metadata.name!=default") == ("metadata.name!=default", None)
    nothing_kept = _spared(False, (), ())
    assert nothing_kept("Pod", "") == ("", None) and nothing_kept("Deployment", "") == ("", None)


def _submission(tmp_path, obj):
    import yaml
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(obj))
    return parse_submission([tmp_path], allowed_kinds=["Deployment"], namespaces=[NS])


def test_the_engine_keeps_an_unchanged_deployment_only_when_the_lab_opts_in(tmp_path):
    from graders import spec
    ex = spec.load_lab("04-ingress").exercise("host-path")
    found = _submission(tmp_path, {k: v for k, v in DEPLOYMENT.items()})
    for reuse in (True, False):
        cluster = FakeCluster()
        cluster.ensure_owned_namespace(NS, "run")
        options = engine.Options(reuse_workloads=reuse)
        engine._apply(ex, found, cluster, options)
        applied = cluster.get("apps/v1", "Deployment", NS, "api")
        assert (workload_reuse.APPLIED_HASH in (applied["metadata"].get("annotations") or {})) is reuse
        applied["metadata"]["generation"] = 1
        applied["status"] = live()["status"]
        engine._admit(ex, found, cluster, "run2", options)
        assert cluster.kept_deployments == ({NS: ["api"]} if reuse else {})
        assert (cluster.get("apps/v1", "Deployment", NS, "api") is not None) is reuse


def test_an_empty_teardown_keeps_the_running_deployment_only_when_the_lab_opts_in(tmp_path):
    """A notebook's check() empties its namespace afterwards ("empty"): a lab that reuses workloads keeps the
    submission's rolled-out Deployments there, so a re-check with the same backends does not restart them; a
    "delete" teardown and a lab that does not opt in keep nothing."""
    from graders import spec
    ex = spec.load_lab("04-ingress").exercise("host-path")
    found = _submission(tmp_path, {k: v for k, v in DEPLOYMENT.items()})
    for reuse, teardown in ((True, "empty"), (False, "empty"), (True, "delete")):
        cluster = FakeCluster()
        cluster.ensure_owned_namespace(NS, "run")
        options = engine.Options(reuse_workloads=reuse, teardown=teardown)
        engine._apply(ex, found, cluster, options)
        applied = cluster.get("apps/v1", "Deployment", NS, "api")
        applied["metadata"]["generation"] = 1
        applied["status"] = live()["status"]
        engine._teardown(ex, cluster, options, [NS], found)
        kept = cluster.get("apps/v1", "Deployment", NS, "api") is not None
        assert kept is (reuse and teardown == "empty"), (reuse, teardown)
