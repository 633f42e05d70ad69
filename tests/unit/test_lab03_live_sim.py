"""Lab 03-services' live checks against a simulated cluster: no API server, no docker.

``SimWorld`` turns the submitted manifests into what Kubernetes would make of them (pods on two workers, Services
with ClusterIPs / node ports / an LB IP, EndpointSlices of the ready selected pods with per-pod resolved ports, a
CNAME for ExternalName, readiness that follows /tmp/ready when an exec probe checks it) and answers probes the way
kube-proxy, CoreDNS and the containers would (a request to a port nobody listens on is refused). The live checks
run unchanged on it: every solution passes, and the mistakes that the static step would catch first are caught
by the live step too, with the same fragment (so a submission that slips past static is still explained).
The real-cluster proof is tests/live (generic, from the spec).
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace as NS

import pytest

from graders import manifests, outside, spec
from graders.cluster import Endpoint
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import _kit as kit
from graders.labs import lab03_services as lab
from graders.model import Outcome
from graders.netpol.selectors import service_selects
from graders.probe import PROBE_LABEL, ProbeResult, SimulatedRunner, classify
from graders.workloads import workloads

LAB = spec.load_lab("03-services")
NAMESPACE = LAB.namespaces[0]
NODES = [("k8slab-control-plane", "172.29.0.2"), ("k8slab-worker", "172.29.0.3"), ("k8slab-worker2", "172.29.0.4")]
LB_IP = "172.29.0.200"


class SimWorld:
    """A tiny model of the cluster after `apply` + `wait_ready` of one submission (see module doc)."""

    def __init__(self, found: list[manifests.Manifest], *, lb_controller: bool = True):
        self.context = "kind-k8slab"
        self.ns = NAMESPACE
        self.pods: dict[str, NS] = {}
        # pod name -> {"listen": set | None, "named": {}, "probe": dict | None, "file": bool}
        self.meta: dict[str, dict] = {}
        self.services: dict[str, NS] = {}
        self.applied: list[dict] = []
        self.execs: list[tuple] = []
        self._rr = itertools.count()
        ips = itertools.count(10)
        for wl in workloads(found):
            for i in range(wl.replicas):
                name = f"{wl.name}-{i}" if wl.kind != "Pod" else wl.name
                node = NODES[1 + (len(self.pods) % 2)][0]
                ip = f"10.244.{1 + len(self.pods) % 2}.{next(ips)}"
                container = wl.containers[0]
                probe_spec = container.get("readinessProbe")
                self.pods[name] = NS(
                    metadata=NS(name=name, labels=dict(wl.labels), deletion_timestamp=None, namespace=self.ns),
                    spec=NS(node_name=node, containers=[NS(name=container.get("name"),
                                                           readiness_probe=probe_spec)]),
                    status=NS(pod_ip=ip, phase="Running", conditions=[NS(type="Ready", status="True")],
                              container_statuses=[NS(state=NS(running=True))]))
                self.meta[name] = {"listen": wl.serving()[0], "named": wl.named_ports(), "probe": probe_spec,
                                   "file": True}
        node_ports = itertools.count(31000)
        for n, obj in enumerate(m.obj for m in found if m.kind == "Service"):
            sp = obj.get("spec") or {}
            kind = sp.get("type") or "ClusterIP"
            ports = [NS(port=p["port"], target_port=kit.target_of(p), name=p.get("name"),
                        node_port=p.get("nodePort") or (next(node_ports) if kind in ("NodePort", "LoadBalancer")
                                                        else None))
                     for p in sp.get("ports") or []]
            lb_class = sp.get("loadBalancerClass")  # MetalLB serves Services without a class only
            ingress = [NS(ip=LB_IP, hostname=None)] if kind == "LoadBalancer" and lb_controller and not lb_class \
                else []
            self.services[obj["metadata"]["name"]] = NS(
                metadata=NS(name=obj["metadata"]["name"]),
                spec=NS(type=kind, selector=sp.get("selector"), ports=ports, external_name=sp.get("externalName"),
                        cluster_ip=None if kind == "ExternalName" else sp.get("clusterIP") or f"10.96.0.{100 + n}",
                        session_affinity=sp.get("sessionAffinity", "None"),
                        external_traffic_policy=sp.get("externalTrafficPolicy", "Cluster"),
                        internal_traffic_policy=sp.get("internalTrafficPolicy", "Cluster"),
                        load_balancer_class=lb_class, publish_not_ready_addresses=sp.get("publishNotReadyAddresses")),
                status=NS(load_balancer=NS(ingress=ingress)))

    # ---------------------------------------------------------------- what the real Cluster offers
    def get_service(self, ns, name):
        return self.services.get(name)

    def list_pods(self, ns=None, label_selector=None):
        return list(self.pods.values())

    def get_pod(self, ns, name):
        return self.pods.get(name)

    def list_nodes(self):
        return [NS(metadata=NS(name=n), status=NS(images=[])) for n, _ in NODES]

    def node_addresses(self):
        return sorted(NODES)

    def diagnose_pod(self, pod):
        return None

    def ensure_pods(self, pods, timeout=60):  # the grader's own pods: created like any object here
        self.apply(pods)

    def apply(self, objs):
        for obj in objs:
            self.applied.append(obj)
            name = obj["metadata"]["name"]
            self.pods[name] = NS(
                metadata=NS(name=name, labels=dict(obj["metadata"].get("labels") or {}), deletion_timestamp=None,
                            namespace=self.ns),
                spec=NS(node_name="k8slab-worker", containers=[]),
                status=NS(pod_ip="10.244.1.250", phase="Running", conditions=[NS(type="Ready", status="True")],
                          container_statuses=[NS(state=NS(running=True))]))
        return objs

    def _ready(self, name) -> bool:
        meta = self.meta.get(name)
        if meta is None:
            return True
        probe_spec = meta["probe"] or {}
        watches_file = lab.READY_FILE in " ".join(map(str, (probe_spec.get("exec") or {}).get("command") or []))
        return meta["file"] or not watches_file

    def _serves(self, svc, name) -> bool:
        """A ready endpoint: the pod is ready, or the Service publishes not-ready addresses."""
        return self._ready(name) or bool(svc.spec.publish_not_ready_addresses)

    def _selected(self, svc):
        return [p for n, p in self.pods.items()
                if n in self.meta and service_selects(svc.spec.selector, p.metadata.labels)]

    def _resolve(self, pod_name, target):
        return self.meta[pod_name]["named"].get(target) if isinstance(target, str) else target

    def endpoints(self, ns, service):
        svc = self.services.get(service)
        if svc is None or not svc.spec.selector:
            return []
        out = []
        for pod in self._selected(svc):
            resolved = [self._resolve(pod.metadata.name, p.target_port) for p in svc.spec.ports]
            if svc.spec.ports and None in resolved:
                continue  # a named targetPort the pod does not have: left out, like the EndpointSlice controller
            out.append(Endpoint(pod.status.pod_ip, pod.metadata.name, pod.spec.node_name,
                                self._serves(svc, pod.metadata.name),
                                tuple((p.name or "", r) for p, r in zip(svc.spec.ports, resolved))))
        return sorted(out, key=lambda e: e.pod)

    def exec(self, ns, pod, argv, timeout=10):
        self.execs.append((pod, tuple(argv)))
        if argv[:2] == ["rm", "-f"] and pod in self.meta:
            self.meta[pod]["file"] = False
            self.pods[pod].status.conditions = [NS(type="Ready", status=str(self._ready(pod)))]
            return 0, "", ""
        if argv[:1] == ["touch"] and pod in self.meta:
            self.meta[pod]["file"] = True
            return 0, "", ""
        return 127, "", "not simulated"

    # ---------------------------------------------------------------- what a probe sees
    def _service_for(self, host):
        for name, svc in self.services.items():
            names = {name, f"{name}.{self.ns}", f"{name}.{self.ns}.svc.cluster.local"}
            if host in names or host == svc.spec.cluster_ip:
                return svc
        return None

    def http(self, host, port, *, outside_client=False) -> tuple[Outcome, str, str]:
        svc = None
        if host in {ip for _, ip in NODES}:
            svc = next((s for s in self.services.values() for p in s.spec.ports if p.node_port == port), None)
            sport = next((p for p in (svc.spec.ports if svc else []) if p.node_port == port), None)
        elif host == LB_IP:
            svc = next((s for s in self.services.values() if s.status.load_balancer.ingress), None)
            sport = next((p for p in (svc.spec.ports if svc else []) if p.port == port), None)
        else:
            if outside_client:
                return Outcome.BLOCKED, "", "timed out: packets were dropped or nothing answered"
            svc = self._service_for(host)
            if svc is None and not host[0].isdigit():
                return Outcome.FAILED, "", "curl exit 6: the target name does not resolve"
            sport = next((p for p in (svc.spec.ports if svc else []) if p.port == port), None)
        if svc is None or sport is None:
            return Outcome.BLOCKED, "", "connection refused or unreachable"
        ready = [p for p in self._selected(svc) if self._serves(svc, p.metadata.name)
                 and self._resolve(p.metadata.name, sport.target_port) is not None]
        node = next((name for name, ip in NODES if ip == host), None)
        if node is not None and svc.spec.external_traffic_policy == "Local":
            ready = [p for p in ready if p.spec.node_name == node]
            if not ready:
                return Outcome.BLOCKED, "", "timed out: packets were dropped or nothing answered"
        if not ready:
            return Outcome.BLOCKED, "", "connection refused or unreachable"
        # ClientIP affinity: every request of the one client lands on the same pod
        pod = ready[0] if svc.spec.session_affinity == "ClientIP" else ready[next(self._rr) % len(ready)]
        listen = self.meta[pod.metadata.name]["listen"]
        if listen is not None and self._resolve(pod.metadata.name, sport.target_port) not in listen:
            return Outcome.BLOCKED, "", "connection refused or unreachable"
        return Outcome.ALLOWED, pod.metadata.name, ""

    def dns(self, spec_) -> tuple[int, str]:
        """(exit code, output) of the probe's nslookup or dig, as CoreDNS would answer."""
        svc = self._service_for(spec_.target)
        if svc is None:
            return 1, f"** server can't find {spec_.target}: NXDOMAIN"
        if spec_.record == "CNAME":
            fqdn = f"{svc.metadata.name}.{self.ns}.svc.cluster.local"
            return 0, f"{fqdn}.\t5\tIN\tCNAME\t{svc.spec.external_name}.\n" if svc.spec.external_name else ""
        ips = ([p.status.pod_ip for p in self._selected(svc) if self._serves(svc, p.metadata.name)]
               if svc.spec.cluster_ip == "None" else [svc.spec.cluster_ip])
        return 0, "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n" + "".join(
            f"Name:\t{spec_.target}\nAddress: {ip}\n" for ip in ips)

    def truth(self, spec_, *, outside_client=False):
        if spec_.kind == "dns":
            rc, text = self.dns(spec_)
            outcome, detail = classify(spec_, rc, text)
            return ProbeResult(spec_, outcome, output=text, detail=detail, rc=rc)
        outcome, output, detail = self.http(spec_.target, spec_.port, outside_client=outside_client)
        return ProbeResult(spec_, outcome, output=output, detail=detail)


class FakeOutside:
    """Stands in for graders.outside.OutsideRunner: a client on the docker network (node and LB IPs only)."""

    world: SimWorld | None = None

    def __init__(self, cluster=None, **kw):
        self.network = "k8slab"
        self.source = "outside/k8slab"

    def run(self, specs):
        out = []
        for s in specs:
            r = self.world.truth(s, outside_client=True)
            out.append(ProbeResult(s, r.outcome, output=r.output, detail=r.detail,
                                   command=outside.reproduce_command(s, "k8slab", "k8slab/agnhost:v1.34.4")))
        return out


LIVE = {ex.id: lab.EXERCISES[ex.id].live for ex in LAB.exercises}


def _ctx(ex, directory, monkeypatch, **world_kw):
    found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    world = SimWorld(found.manifests, **world_kw)
    FakeOutside.world = world
    monkeypatch.setattr(outside, "OutsideRunner", FakeOutside)
    monkeypatch.setattr(lab.time, "sleep", lambda s: None)
    monkeypatch.setattr(kit, "ENDPOINTS_SETTLE", 0.05)
    ctx = Ctx(spec=ex, objects=found.manifests, cluster=world,
              runner_factory=lambda cluster: SimulatedRunner(world.truth, context=world.context))
    return ctx, world


# answers exercises (predict) have no manifests to simulate: tests/unit/test_lab03_predict.py runs them
MANIFEST_EXERCISES = [e for e in LAB.exercises if e.submission != "answers"]


@pytest.mark.parametrize("ex", [pytest.param(e, id=e.id) for e in MANIFEST_EXERCISES])
def test_solution_passes_live_on_the_simulated_cluster(ex, monkeypatch):
    ctx, world = _ctx(ex, ex.solution_dir, monkeypatch)
    result = LIVE[ex.id](ctx)
    assert result.passed, result.message
    assert any(a["metadata"]["name"] == kit.CLIENT_POD for a in world.applied) or ex.id in ("nodeport",
                                                                                           "loadbalancer")
    assert all(PROBE_LABEL in a["metadata"]["labels"] for a in world.applied)


# Mistakes that static catches first; the live step must catch them too, with the same fragment.
LIVE_ALSO = [
    ("clusterip", "selector-typo"), ("clusterip", "container-other-port"), ("clusterip", "wrong-service-name"),
    ("headless", "not-headless"), ("headless", "headless-selector-typo"),
    ("nodeport", "selector-typo"),
    ("loadbalancer", "selector-typo"), ("loadbalancer", "type-nodeport"), ("loadbalancer", "wrong-targetport"),
    ("externalname", "wrong-host"), ("externalname", "wrong-service-name"),
]


@pytest.mark.parametrize("key", LIVE_ALSO, ids=["/".join(k) for k in LIVE_ALSO])
def test_live_step_explains_mistakes_static_would_catch_first(key, monkeypatch):
    ex = LAB.exercise(key[0])
    mistake = ex.mistake(key[1])
    ctx, _ = _ctx(ex, ex.mistake_dir(mistake), monkeypatch)
    with pytest.raises(CheckFailed) as caught:
        LIVE[ex.id](ctx)
    assert mistake.message in caught.value.message, caught.value.message


def test_clusterip_reports_the_distribution_over_all_paths(monkeypatch):
    ex = LAB.exercise("clusterip")
    ctx, _ = _ctx(ex, ex.solution_dir, monkeypatch)
    result = LIVE["clusterip"](ctx)
    assert "48/48 requests answered, spread over 3 replicas (api-0 16, api-1 16, api-2 16)" in result.message
    table = result.evidence[0].data
    assert table.columns[2:] == ("ClusterIP 10.96.0.100:80", "api-service:80", f"api-service.{NAMESPACE}:80",
                                 f"api-service.{NAMESPACE}.svc.cluster.local:80", "total")


def test_headless_port_name_missing_in_one_workload_is_caught_live(monkeypatch):
    ex = LAB.exercise("headless")
    ctx, _ = _ctx(ex, ex.mistake_dir("port-name-undefined"), monkeypatch)
    with pytest.raises(CheckFailed) as caught:
        LIVE["headless"](ctx)
    assert "api-v2-0" in caught.value.message and "not ready endpoints" in caught.value.message


def test_readiness_without_probe_keeps_the_sick_pod_in_the_endpoints(monkeypatch):
    ex = LAB.exercise("readiness")
    ctx, world = _ctx(ex, ex.mistake_dir("no-readiness-probe"), monkeypatch)
    monkeypatch.setattr(lab, "LEAVE_DEADLINE", 0.01)
    with pytest.raises(CheckFailed) as caught:
        LIVE["readiness"](ctx)
    assert "still a ready endpoint" in caught.value.message and "no readinessProbe" in caught.value.message
    assert ("api-0", ("rm", "-f", lab.READY_FILE)) in world.execs


def test_readiness_solution_heals_the_pod_and_reports_the_time(monkeypatch):
    ex = LAB.exercise("readiness")
    ctx, world = _ctx(ex, ex.solution_dir, monkeypatch)
    result = LIVE["readiness"](ctx)
    assert "left the endpoints within" in result.message and "got none of the next 36 requests" in result.message
    assert world.execs[-1] == ("api-0", ("touch", lab.READY_FILE))


def test_loadbalancer_without_controller_says_pending(monkeypatch):
    ex = LAB.exercise("loadbalancer")
    ctx, _ = _ctx(ex, ex.solution_dir, monkeypatch, lb_controller=False)
    monkeypatch.setattr(lab, "LB_IP_TIMEOUT", 0.01)
    with pytest.raises(CheckFailed, match="no external IP"):
        LIVE["loadbalancer"](ctx)


def test_loadbalancer_shows_nodeport_and_clusterip_too(monkeypatch):
    ex = LAB.exercise("loadbalancer")
    ctx, _ = _ctx(ex, ex.solution_dir, monkeypatch)
    result = LIVE["loadbalancer"](ctx)
    assert f"external IP {LB_IP}" in result.message and "ClusterIP 10.96.0.100" in result.message
    assert "NodePort 31000 answers too" in result.message
    assert result.evidence[0].data.rows[0] == ("type", "LoadBalancer")


def test_nodeport_answers_on_every_node_from_outside(monkeypatch):
    ex = LAB.exercise("nodeport")
    ctx, _ = _ctx(ex, ex.solution_dir, monkeypatch)
    result = LIVE["nodeport"](ctx)
    assert "answered on all 3 nodes" in result.message and "outside the cluster" in result.message
    assert "docker run --rm --network k8slab" in result.evidence[-1].data


def test_nodeport_falls_back_inside_when_docker_is_unavailable(monkeypatch):
    ex = LAB.exercise("nodeport")
    ctx, world = _ctx(ex, ex.solution_dir, monkeypatch)

    def no_docker(*a, **kw):
        raise outside.OutsideUnavailable("cannot talk to Docker from Python")
    monkeypatch.setattr(outside, "OutsideRunner", no_docker)
    result = LIVE["nodeport"](ctx)
    assert "inside the cluster" in result.message and "Note:" in result.message


# Right files, wrong behaviour: a Service field that changes who handles the traffic. Static cannot tell; the
# live step fails, and names the field, not only the symptom.
LIVE_ONLY = [("clusterip", "session-affinity"), ("nodeport", "external-traffic-local"),
             ("loadbalancer", "load-balancer-class"), ("readiness", "probe-always-passes"),
             ("readiness", "publish-not-ready")]


@pytest.mark.parametrize("key", LIVE_ONLY, ids=["/".join(k) for k in LIVE_ONLY])
def test_live_only_mistakes_fail_live_naming_the_cause(key, monkeypatch):
    ex = LAB.exercise(key[0])
    mistake = ex.mistake(key[1])
    ctx, _ = _ctx(ex, ex.mistake_dir(mistake), monkeypatch)
    monkeypatch.setattr(lab, "LEAVE_DEADLINE", 0.01)
    monkeypatch.setattr(lab, "LB_CLASS_TIMEOUT", 0.01)
    assert lab.EXERCISES[ex.id].static(ctx).passed
    with pytest.raises(CheckFailed) as caught:
        LIVE[ex.id](ctx)
    assert mistake.message in caught.value.message, caught.value.message
    assert caught.value.hint


def test_publish_not_ready_says_the_probe_worked(monkeypatch):
    ex = LAB.exercise("readiness")
    ctx, _ = _ctx(ex, ex.mistake_dir("publish-not-ready"), monkeypatch)
    monkeypatch.setattr(lab, "LEAVE_DEADLINE", 0.01)
    with pytest.raises(CheckFailed) as caught:
        LIVE["readiness"](ctx)
    assert "the pod itself is not ready" in caught.value.message and "keeps passing" not in caught.value.message


def test_a_failure_without_redirecting_fields_is_left_as_it_is(monkeypatch):
    ex = LAB.exercise("clusterip")
    ctx, _ = _ctx(ex, ex.mistake_dir("container-other-port"), monkeypatch)
    with pytest.raises(CheckFailed) as caught:
        LIVE["clusterip"](ctx)
    assert "Likely cause" not in caught.value.message


ALTERNATIVES = [pytest.param(ex, d, id=f"{ex.id}/{d.name}") for ex in MANIFEST_EXERCISES for d in ex.alternative_dirs]


@pytest.mark.parametrize("ex,directory", ALTERNATIVES)
def test_alternatives_pass_static_and_live_on_the_simulated_cluster(ex, directory, monkeypatch):
    ctx, _ = _ctx(ex, directory, monkeypatch)
    assert lab.EXERCISES[ex.id].static(ctx).passed
    assert LIVE[ex.id](ctx).passed
