"""MappedCluster and MappedRunner: what a check sends goes out in real names, what it reads comes back in logical
ones -- and no method of the cluster or the probe runners a lab may call is left unmapped."""
from __future__ import annotations

import ast
import dataclasses
import inspect
from types import SimpleNamespace

import pytest
from fakes import FakeCluster

from graders import outside, probe
from graders.cluster import ClusterAPI, Cluster, Endpoint
from graders.errors import ClusterError, NotReady
from graders.exercise import Ctx
from graders.model import Outcome
from graders.nscluster import PASS_THROUGH, SIGNATURES, LogicalView, MappedCluster
from graders.nsmap import NamespaceMap
from graders.nsprobe import _UNSENT, MappedRunner
from graders.paths import repo_root
from graders.probe import ProbeResult, ProbeSpec, SimulatedRunner
from graders.spec import load_lab

RUN = "r1"
NSMAP = NamespaceMap.for_run(["production", "staging"], RUN)
PROD, STAGING = NSMAP.real("production"), NSMAP.real("staging")


def _public(cls) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


# ------------------------------------------------------------------------------------------------ coverage


def test_every_method_of_the_cluster_protocol_is_mapped() -> None:
    protocol = {name for name in _public(ClusterAPI) if callable(getattr(ClusterAPI, name))}
    assert protocol == set(SIGNATURES), "declare each ClusterAPI method in graders/nscluster.py SIGNATURES"
    assert all(name in vars(MappedCluster) for name in SIGNATURES)


# parameters that carry a namespace, an object or a command, wherever they appear in the protocol
_CARRIERS = {"namespace", "namespaces", "names", "objs", "obj", "pods", "labels", "keep_deployments", "argv",
             "progress", "pod"}
# ... except where the same word holds something else
_NOT_CARRIERS = {("exec", "pod"),  # a pod's name; its namespace is the parameter before
                 ("label_namespace", "labels")}  # one namespace's labels (env=production): set as the lab wrote them


@pytest.mark.parametrize("method", sorted(SIGNATURES))
def test_each_parameter_that_carries_a_name_is_declared(method: str) -> None:
    parameters = set(inspect.signature(getattr(ClusterAPI, method)).parameters) - {"self"}
    declared = set(SIGNATURES[method])
    assert declared <= parameters, f"{method}: SIGNATURES names parameters the protocol does not have"
    carriers = {p for p in parameters & _CARRIERS if (method, p) not in _NOT_CARRIERS}
    if "namespace" in method or method == "require_owned":
        carriers |= parameters & {"name"}
    assert carriers <= declared, f"{method}: {sorted(carriers - declared)} reach the cluster unmapped"


def test_the_real_cluster_offers_checks_nothing_the_wrapper_does_not_know() -> None:
    """Cluster's public attributes beyond the protocol are the admin's (api(), call(), dynamic...): the wrapper
    refuses them instead of handing a check an unmapped door."""
    for name in _public(Cluster) - set(SIGNATURES) - PASS_THROUGH:
        with pytest.raises(AttributeError, match="does not offer"):
            getattr(MappedCluster(FakeCluster(), NSMAP), name)


def _cluster_calls_in(path) -> set[str]:
    """Attributes read from anything called ``cluster`` (``cluster.x``, ``ctx.cluster.x``) in a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name == "cluster":
                found.add(node.attr)
    return found


def test_every_cluster_attribute_the_lab_graders_use_is_mapped_or_passed_through() -> None:
    modules = [*sorted((repo_root() / "graders" / "labs").glob("*.py")), repo_root() / "graders" / "probe.py",
               repo_root() / "graders" / "workloads.py"]
    used = set().union(*(_cluster_calls_in(p) for p in modules))
    # ``cluster.host/domain/nameservers`` are lab 01's ClusterDns (its own dataclass, also named cluster)
    used -= {"host", "domain", "nameservers", "local"}
    assert used, "the scan found nothing: it no longer sees the labs' calls"
    assert used <= set(SIGNATURES) | PASS_THROUGH, sorted(used - set(SIGNATURES) - PASS_THROUGH)


def test_every_method_of_the_probe_runners_is_mapped() -> None:
    runners = (probe.SimulatedRunner, probe.KubeRunner, probe.BatchRunner, outside.OutsideRunner)
    methods = {name for cls in runners for name in _public(cls) if callable(getattr(cls, name))}
    assert methods <= set(vars(MappedRunner)), sorted(methods - set(vars(MappedRunner)))


def test_probe_spec_fields_left_unmapped_exist_and_name_no_namespace() -> None:
    fields = {f.name for f in dataclasses.fields(ProbeSpec)}
    assert _UNSENT <= fields and not _UNSENT & {"source", "target", "host_header", "expect"}


# ------------------------------------------------------------------------------------------------ behaviour


def _pod(namespace: str, name: str, **status) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": {}},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "dnsConfig": {"searches": [f"{namespace}.svc.cluster.local"]}},
            "status": {"podIP": "10.0.0.1", **status}}


def _mapped() -> tuple[FakeCluster, MappedCluster]:
    fake = FakeCluster()
    mapped = MappedCluster(fake, NSMAP)
    mapped.reset_namespaces(["production", "staging"], "run", labels={"production": {"env": "production"}})
    return fake, mapped


def test_writes_go_to_the_real_namespaces_and_reads_come_back_logical() -> None:
    fake, mapped = _mapped()
    assert set(fake.namespaces) == {PROD, STAGING} and fake.namespaces[PROD]["env"] == "production"
    mapped.ensure_pods([_pod("production", "web")])
    mapped.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "staging"},
                   "spec": {"type": "ExternalName", "externalName": "db.production.svc.cluster.local"}}])
    assert f"Pod {PROD}/web" in fake.objects and f"Service {STAGING}/db" in fake.objects
    assert fake.objects[f"Service {STAGING}/db"]["spec"]["externalName"] == f"db.{PROD}.svc.cluster.local"
    pod = mapped.get_pod("production", "web")
    assert isinstance(pod, LogicalView) and pod.metadata.namespace == "production"
    assert pod.spec.dns_config.searches == ["production.svc.cluster.local"]
    assert [p.metadata.name for p in mapped.list_pods("production")] == ["web"]
    assert mapped.get("v1", "Service", "staging", "db")["spec"]["externalName"] == "db.production.svc.cluster.local"
    assert mapped.namespace_labels("production")["env"] == "production"
    assert mapped.owned_namespaces() == ["production", "staging"] and mapped.namespace_names() == {"production",
                                                                                                 "staging"}
    mapped.delete({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "staging"}})
    assert f"Service {STAGING}/db" not in fake.objects
    mapped.wait_ready(["production"])
    assert fake.calls[-1] == ("wait_ready", (PROD,), 90)


def test_a_read_model_goes_back_unwrapped_and_its_diagnosis_reads_logical() -> None:
    fake, mapped = _mapped()
    seen = []
    fake.diagnose_pod = lambda pod: seen.append(pod) or None  # type: ignore[method-assign]
    mapped.ensure_pods([_pod("production", "web")])
    pod = mapped.get_pod("production", "web")
    mapped.diagnose_pod(pod)
    assert seen and not isinstance(seen[0], LogicalView) and seen[0].metadata.namespace == PROD
    with pytest.raises(AttributeError, match="read-only"):
        pod.metadata = None


def test_exec_maps_the_namespace_and_dns_names_in_the_command_and_the_output_back() -> None:
    fake, mapped = _mapped()
    fake.exec = lambda ns, pod, argv, timeout=10, container=None: (  # type: ignore[method-assign]
        0, f"ran in {ns}: {' '.join(argv)}\nsearch {PROD}.svc.cluster.local", "")
    rc, out, _ = mapped.exec("production", "web", ["sh", "-c", "nslookup api.staging.svc.cluster.local"])
    assert rc == 0 and out == ("ran in production: sh -c nslookup api.staging.svc.cluster.local\n"
                               "search production.svc.cluster.local")


def test_errors_from_the_cluster_read_logical() -> None:
    fake, mapped = _mapped()

    def fail(*args, **kwargs):
        raise NotReady(f"Pod {PROD}/web is not ready", diagnoses=[f"Pod {PROD}/web: ImagePullBackOff"],
                       hint=f"kubectl describe pod -n {PROD} web")
    fake.wait_ready = fail  # type: ignore[method-assign]
    with pytest.raises(NotReady) as caught:
        mapped.wait_ready(["production"])
    error = caught.value
    assert (error.message, error.diagnoses, error.hint) == (
        "Pod production/web is not ready", ("Pod production/web: ImagePullBackOff",),
        "kubectl describe pod -n production web")
    assert str(error).startswith("Pod production/web is not ready")
    with pytest.raises(ClusterError, match="Namespace default does not exist"):
        mapped.require_owned("default")


def test_endpoints_and_callbacks_come_back_logical() -> None:
    fake, mapped = _mapped()
    fake.service_endpoints[f"{PROD}/api"] = [Endpoint("10.0.0.2", "api-0", "w1", True)]
    assert mapped.endpoints("production", "api") == [Endpoint("10.0.0.2", "api-0", "w1", True)]
    seen = []

    def progress_of_real(namespaces, timeout=90, poll=0.5, progress=None):
        progress([SimpleNamespace(pod=f"{PROD}/web")])
    fake.wait_ready = progress_of_real  # type: ignore[method-assign]
    mapped.wait_ready(["production"], progress=seen.append)
    assert seen[0][0].pod == "production/web"


def test_unknown_attributes_are_refused_and_plain_ones_passed_through() -> None:
    _, mapped = _mapped()
    assert mapped.context == "kind-fake"
    with pytest.raises(AttributeError, match="does not offer"):
        mapped.objects  # noqa: B018 - the fake's own store is no part of ClusterAPI


# ------------------------------------------------------------------------------------------------ probes


def test_a_mapped_runner_sends_real_specs_and_returns_the_check_own_specs() -> None:
    sent = []

    def truth(spec):
        sent.append(spec)
        return ProbeResult(spec, Outcome.BLOCKED, output=f"Server: x\nName: {spec.target}",
                           detail=f"no answer from {spec.target}")
    runner = MappedRunner(SimulatedRunner(truth, context="kind-x"), NSMAP)
    specs = [ProbeSpec("production/web", "dns", "api.staging.svc.cluster.local", expect=("db.staging",)),
             ProbeSpec("staging/test", "http", "api.production", 80, host_header="api.production.svc"),
             ProbeSpec("production/web", "tcp", "10.0.0.1", 8080, label="production/api:8080")]
    results = runner.run(specs)
    assert [s.source for s in sent] == [f"{PROD}/web", f"{STAGING}/test", f"{PROD}/web"]
    assert sent[0].target == f"api.{STAGING}.svc.cluster.local" and sent[0].expect == (f"db.{STAGING}",)
    assert sent[1].target == f"api.{PROD}" and sent[1].host_header == f"api.{PROD}.svc"
    assert sent[2].label == "production/api:8080" and sent[2].target == "10.0.0.1"
    assert [r.spec for r in results] == specs  # probe_until keys its expectations on these
    assert f"exec -n {PROD} web" in results[0].command or "exec -n production web" in results[0].command
    for result in results:
        assert RUN not in result.command + result.output + result.detail
    assert results[0].detail == "no answer from api.staging.svc.cluster.local"


def test_the_check_context_probes_through_the_map_when_its_cluster_is_mapped() -> None:
    fake = FakeCluster()
    spec = load_lab("05-network-policy", repo_root()).exercise("web-to-api")
    built = []

    def factory(cluster):
        built.append(cluster)
        return SimulatedRunner(lambda s: True)
    mapped = Ctx(spec=spec, objects=(), cluster=MappedCluster(fake, NSMAP), runner_factory=factory).prober
    plain = Ctx(spec=spec, objects=(), cluster=fake, runner_factory=factory).prober
    assert isinstance(mapped, MappedRunner) and built[0] is fake  # the runner itself talks to the real cluster
    assert isinstance(plain, SimulatedRunner)
