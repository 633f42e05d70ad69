"""graders.cluster, graders.probe and graders.doctor against a real cluster.

Everything runs in the grader-owned namespace `k8slab-live-probe` (deleted afterwards); probes only target the
pods this module starts (and the cluster's own DNS service for the lookup)."""
from __future__ import annotations

import time

import pytest

from graders import doctor, engine, paths, spec
from graders.errors import ClusterError, NotReady
from graders.model import Outcome
from graders.probe import BatchRunner, KubeRunner, ProbeSpec, pod_ip, start_probe_pods

pytestmark = pytest.mark.live
NS = "k8slab-live-probe"


@pytest.fixture(scope="module")
def pods(k8slab_cluster):
    k8slab_cluster.reset_namespaces([NS])
    placed = start_probe_pods(k8slab_cluster, NS, ["probe-a", "probe-b"])
    yield placed
    k8slab_cluster.delete_namespaces([NS], wait=False)


def _specs(cluster):
    a, b = f"{NS}/probe-a", f"{NS}/probe-b"
    ip_a, ip_b = pod_ip(cluster, NS, "probe-a"), pod_ip(cluster, NS, "probe-b")
    return [
        (ProbeSpec(a, "tcp", ip_b, 8080), Outcome.ALLOWED),
        (ProbeSpec(a, "tcp", ip_b, 9999), Outcome.BLOCKED),          # refused: nothing listens
        (ProbeSpec(a, "udp", ip_b, 8081), Outcome.ALLOWED),
        (ProbeSpec(a, "http", ip_b, 8080, path="/hostname"), Outcome.ALLOWED),
        (ProbeSpec(b, "clientip", ip_a, 8080), Outcome.ALLOWED),
        (ProbeSpec(b, "dns", "kubernetes.default.svc.cluster.local"), Outcome.ALLOWED),
        (ProbeSpec(f"{NS}/no-such-pod", "tcp", ip_b, 8080), Outcome.FAILED),  # exec fails: never "blocked"
        (ProbeSpec(a, "sctp", ip_b, 9), Outcome.NOT_RUN),
    ]


@pytest.mark.parametrize("runner_cls", [BatchRunner, KubeRunner])
def test_runners_observe_the_truth(k8slab_cluster, pods, runner_cls):
    cases = _specs(k8slab_cluster)
    results = runner_cls(k8slab_cluster).run([s for s, _ in cases])
    got = {r.spec.target_label + "@" + r.spec.source: r for r in results}
    for (spec, want), result in zip(cases, results):
        assert result.outcome is want, f"{result.describe()} (want {want.word}); {result.command}"
    http = results[3]
    assert http.output.strip() == "probe-b"
    assert results[4].client_ip == pod_ip(k8slab_cluster, NS, "probe-b")  # pod-to-pod: no SNAT
    assert results[5].addresses, results[5].output
    assert len(got) == len(cases)


def test_batch_is_one_exec_per_source(k8slab_cluster, pods):
    runner = BatchRunner(k8slab_cluster)
    cases = [c for c in _specs(k8slab_cluster) if c[0].kind != "sctp"]
    runner.run([s for s, _ in cases])
    assert runner.execs == 3  # probe-a, probe-b, no-such-pod


def test_exec_is_bounded(k8slab_cluster, pods):
    started = time.monotonic()
    rc, out, err = k8slab_cluster.exec(NS, "probe-a", ["sh", "-c", "echo started; sleep 30"], timeout=2)
    assert rc == 124 and "started" in out and "timed out" in err
    assert time.monotonic() - started < 6


def test_exec_reports_exit_codes(k8slab_cluster, pods):
    assert k8slab_cluster.exec(NS, "probe-a", ["sh", "-c", "echo hi; exit 3"], timeout=10)[:2] == (3, "hi\n")
    rc, _, err = k8slab_cluster.exec(NS, "probe-a", ["/no/such/binary"], timeout=10)
    assert rc != 0 and err


def test_exec_in_missing_pod_names_it(k8slab_cluster, pods):
    with pytest.raises(ClusterError, match=f"Pod {NS}/ghost"):
        k8slab_cluster.exec(NS, "ghost", ["true"], timeout=5)


def test_wait_ready_names_a_bad_image(k8slab_cluster, pods):
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad-image", "namespace": NS},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:0.0.0-nope"}]}}
    k8slab_cluster.apply([bad])
    try:
        with pytest.raises(NotReady) as info:
            k8slab_cluster.wait_ready([NS], timeout=90)
        assert "Pod k8slab-live-probe/bad-image" in info.value.message
        assert "agnhost:0.0.0-nope" in info.value.message and "cannot pull image" in info.value.message
    finally:
        k8slab_cluster.delete(bad)


def test_dry_run_reports_the_api_servers_words(k8slab_cluster, pods):
    invalid = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad", "namespace": NS},
               "spec": {"ports": [{"port": 70000}]}}
    with pytest.raises(ClusterError) as info:
        k8slab_cluster.dry_run([invalid])
    assert "Service k8slab-live-probe/bad" in info.value.message and "spec.ports[0].port" in info.value.message
    assert k8slab_cluster.get_service(NS, "bad") is None  # a dry-run persists nothing


def test_doctor_passes_on_the_course_cluster(k8slab_cluster):  # the fixture skips without a cluster
    checks = doctor.run()
    failed = [c.line() for c in checks if c.status == doctor.FAIL and c.name not in ("kind", "helm")]
    assert not failed, "\n".join(failed)
    names = {c.name: c.status for c in checks}
    assert names["NetworkPolicy"] == doctor.PASS and names["pod-to-pod"] == doctor.PASS


def test_node_addresses_and_namespace_labels(k8slab_cluster, pods):
    nodes = k8slab_cluster.node_addresses()
    assert len(nodes) == len(k8slab_cluster.list_nodes()) and nodes == sorted(nodes) and all(ip for _, ip in nodes)
    k8slab_cluster.label_namespace(NS, {"k8slab.dev/test": "labelled"})
    assert k8slab_cluster.namespace_labels(NS)["k8slab.dev/test"] == "labelled"
    assert k8slab_cluster.namespace_labels("k8slab-no-such-namespace") is None
    with pytest.raises(ClusterError) as info:
        k8slab_cluster.label_namespace("default", {"k8slab.dev/test": "labelled"})
    assert info.value.reason == "NotOwned"


RESET_NS = "k8slab-live-reset"


def test_reset_empties_a_used_namespace_and_keeps_what_kubernetes_put_there(k8slab_cluster, pods):
    from graders.probe import agnhost_image

    image = agnhost_image(k8slab_cluster)
    k8slab_cluster.reset_namespaces([RESET_NS], "first", labels={RESET_NS: {"team": "first"}})
    labels = {"app": "busy"}
    k8slab_cluster.apply([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "busy", "namespace": RESET_NS},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"containers": [{"name": "c", "image": image, "args": ["netexec", "--http-port=8080"]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "busy", "namespace": RESET_NS},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny",
                                                                                      "namespace": RESET_NS},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "left", "namespace": RESET_NS}, "data": {}},
    ])
    try:
        k8slab_cluster.wait_ready([RESET_NS], timeout=90)
        deadline = time.monotonic() + 30  # EndpointSlices follow pod readiness with a lag
        while len([e for e in k8slab_cluster.endpoints(RESET_NS, "busy") if e.ready]) < 2:
            assert time.monotonic() < deadline, k8slab_cluster.endpoints(RESET_NS, "busy")
            time.sleep(0.5)
        endpoints = k8slab_cluster.endpoints(RESET_NS, "busy")
        assert [e.pod for e in endpoints] == sorted(p.metadata.name for p in k8slab_cluster.list_pods(RESET_NS))
        assert all(e.node and e.ports == (("", 8080),) for e in endpoints)
        started = time.monotonic()
        k8slab_cluster.reset_namespaces([RESET_NS], "second", labels={RESET_NS: {"team": "second"}})
        took = time.monotonic() - started
        assert not k8slab_cluster.list_pods(RESET_NS) and not k8slab_cluster.list_deployments(RESET_NS)
        assert not k8slab_cluster.list_services(RESET_NS)
        assert k8slab_cluster.get("networking.k8s.io/v1", "NetworkPolicy", RESET_NS, "deny") is None
        assert k8slab_cluster.get("v1", "ConfigMap", RESET_NS, "left") is None
        assert k8slab_cluster.get("v1", "ConfigMap", RESET_NS, "kube-root-ca.crt") is not None
        assert k8slab_cluster.get("v1", "ServiceAccount", RESET_NS, "default") is not None
        labels = k8slab_cluster.namespace_labels(RESET_NS)
        assert labels["k8slab.dev/run"] == "second" and labels["team"] == "second"
        assert took < 30, f"emptying took {took:.1f} s"
    finally:
        k8slab_cluster.delete_namespaces([RESET_NS], wait=False)


def test_grading_deletes_its_namespaces_afterwards(k8slab_cluster):
    lab = spec.load_lab("00-orientation", paths.repo_root())
    ex = lab.exercises[0]
    result = engine.grade(lab.id, ex.id, ex.solution_dir, cluster=k8slab_cluster)
    assert result.passed, result.exercise(ex.id).message
    deadline = time.monotonic() + 90
    while set(ex.namespaces) & set(k8slab_cluster.owned_namespaces()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not set(ex.namespaces) & set(k8slab_cluster.owned_namespaces())
