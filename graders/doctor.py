"""Checks that this machine can run the course, one line per check, each failure with its fix.

    docker · tools · cluster reachable · nodes Ready · CoreDNS · pod-to-pod across nodes ·
    NetworkPolicy enforced (self-test) · LoadBalancer · Ingress

Cluster-side checks run in their own grader-owned namespace (`k8slab-doctor`) with two agnhost probe pods on
two different nodes, and delete it afterwards. Probes only target pods and services this run created.
Exit status is non-zero when any check FAILs; with no cluster the diagnosis is printed within 5 s.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from graders import paths, versions
from graders.autograding import autograding
from graders.cluster.names import pin_kubectl
from graders.errors import ClusterUnreachable, K8sLabError
from graders.model import Outcome
from graders.probe import (PROBE_LABEL, PROBE_NAME_LABEL, BatchRunner, ProbeResult, ProbeSpec, Runner, pod_ip,
                           probe_until, start_probe_pods, worker_nodes)

NAMESPACE = "k8slab-doctor"
CONNECT_TIMEOUT = 4.0
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
CLUSTER_NAME = "k8slab"
RETRY_PAUSE_S = 1.0  # between probe rounds; unit tests set 0


@dataclass(frozen=True)
class Check:
    """One line of the report."""
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self, colour: bool = False) -> str:
        tag = self.status
        if colour:
            tag = {PASS: "\033[32mPASS\033[0m", FAIL: "\033[31mFAIL\033[0m", SKIP: "\033[33mSKIP\033[0m"}[tag]
        text = f"{tag}  {self.name:<22} {self.detail}"
        if self.fix and self.status != PASS:
            text += f" — fix: {self.fix}"
        return text


@dataclass
class Env:
    """What the doctor looks at; unit tests replace each piece with a fake."""
    docker_version: Callable[[], str] = field(default=lambda: _docker_version())
    find_tool: Callable[[str], str | None] = field(default=lambda name: _find_tool(name))
    tool_version: Callable[[str, str], str] = field(default=lambda name, path: _tool_version(name, path))
    node_image: Callable[[], str] = field(default=lambda: _node_image())
    connect: Callable[[], object] = field(default=lambda: _connect())
    runner: Callable[[object], Runner] = field(default=lambda cluster: BatchRunner(cluster, timeout=10))
    # a client on the cluster's docker network, where the graders stand for "from outside"; None without docker
    outside: Callable[[object], Runner | None] = field(default=lambda cluster: _outside_runner(cluster))


# ---------------------------------------------------------------------- real environment
def _docker_version() -> str:
    """Docker server version, or raise with the reason."""
    import docker
    try:
        client = docker.from_env(timeout=3)
        return str(client.version().get("Version", "?"))
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(str(exc).splitlines()[0][:160]) from None


def _find_tool(name: str) -> str | None:
    """./bin (make setup), then PATH, then the offline build cache (make cluster OFFLINE=1)."""
    offline = paths.cache_dir() / f"offline-{versions.get('KUBERNETES_VERSION', '')}" / "bin" / name
    local = paths.repo_root() / "bin" / name
    for candidate in (str(local), shutil.which(name), str(offline)):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _tool_version(name: str, path: str) -> str:
    argv = {"kind": [path, "version"], "kubectl": [path, "version", "--client", "-o", "yaml"],
            "helm": [path, "version", "--short"]}[name]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    for token in out.replace('"', " ").split():
        if token.startswith("v") and token[1:2].isdigit():
            return token.split("+")[0]
    return out.strip().splitlines()[0][:40] if out.strip() else "?"


def _node_image() -> str:
    """Image of the kind control-plane container ('' when docker or the container is absent)."""
    try:
        import docker
        client = docker.from_env(timeout=3)
        container = client.containers.get(f"{CLUSTER_NAME}-control-plane")
        return (container.attrs.get("Config") or {}).get("Image", "")
    except Exception:  # noqa: BLE001 — only used to label the report
        return ""


def _outside_runner(cluster) -> Runner | None:
    from graders.outside import OutsideRunner
    try:
        return OutsideRunner(cluster, timeout=10)
    except K8sLabError:
        return None


def _connect():
    from graders.cluster import Cluster
    return Cluster.connect(timeout=CONNECT_TIMEOUT)


# ---------------------------------------------------------------------- checks
def check_docker(env: Env) -> Check:
    try:
        version = env.docker_version()
    except Exception as exc:  # noqa: BLE001
        return Check("docker", FAIL, f"the Docker daemon does not answer ({exc})",
                     "start Docker (`sudo systemctl start docker`; on a bare Debian/CI machine "
                     "`sudo environment/offline/host-setup.sh`)")
    return Check("docker", PASS, f"Docker {version} is running")


def check_tools(env: Env, offline: bool) -> list[Check]:
    out = []
    for name in ("kind", "kubectl", "helm"):
        path = env.find_tool(name)
        pinned = versions.get(f"{name.upper()}_VERSION", "")
        if path is None:
            if name == "helm" and offline:
                out.append(Check(name, SKIP, "not found; the offline cluster does not need it"))
                continue
            out.append(Check(name, FAIL, "not found in ./bin or PATH",
                             "`make setup` downloads the pinned version into ./bin (or `make cluster OFFLINE=1`)"))
            continue
        version = env.tool_version(name, path)
        root = str(paths.repo_root()) + os.sep
        where = "./" + path[len(root):] if path.startswith(root) else path
        note = f" (pinned {pinned})" if pinned and name != "kubectl" and version != pinned else ""
        out.append(Check(name, PASS, f"{version} at {where}{note}"))
    return out


def _doctor_pods(cluster) -> dict[str, str]:
    cluster.reset_namespaces([NAMESPACE])
    return start_probe_pods(cluster, NAMESPACE, ["doctor-a", "doctor-b"], spread=True,
                            labels={"app": "k8slab-doctor"}, timeout=90)


def run(env: Env | None = None, *, keep: bool = False, emit: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Run every check in order; `emit` is called as each line is known. Returns all lines."""
    env = env or Env()
    checks: list[Check] = []

    context = ""

    def add(check: Check) -> Check:
        if context:  # a learner may have several clusters: every command a fix shows names the one checked
            check = dataclasses.replace(check, fix=pin_kubectl(check.fix, context))
        checks.append(check)
        emit(check)
        return check

    add(check_docker(env))
    image = ""
    try:
        image = env.node_image()
    except Exception:  # noqa: BLE001
        pass
    offline = image.startswith("k8slab/node") or bool(os.environ.get("K8SLAB_OFFLINE"))
    for check in check_tools(env, offline):
        add(check)

    started = time.monotonic()
    try:
        cluster = env.connect()
    except ClusterUnreachable as exc:
        add(Check("cluster reachable", FAIL, exc.message, exc.hint))
        for name in ("nodes Ready", "CNI", "CoreDNS", "pod-to-pod", "NetworkPolicy", "LoadBalancer", "Ingress"):
            add(Check(name, SKIP, "needs a reachable cluster"))
        return checks
    context = cluster.context
    kind_label = f", offline node image {image}" if image.startswith("k8slab/node") else \
        (f", node image {image}" if image else "")
    add(Check("cluster reachable", PASS,
              f"context {cluster.context} answered in {time.monotonic() - started:.1f} s{kind_label}"))

    nodes_ok = add(check_nodes(cluster)).status == PASS
    cni_check, cni = check_cni(cluster)
    add(cni_check)
    if not nodes_ok and not _schedulable(cluster):
        for name in ("CoreDNS", "pod-to-pod", "NetworkPolicy", "LoadBalancer", "Ingress"):
            add(Check(name, SKIP, "no Ready node to run probe pods on"))
        return checks
    try:
        pods = _doctor_pods(cluster)
    except K8sLabError as exc:
        add(Check("CoreDNS", FAIL if nodes_ok else SKIP, f"could not start probe pods: {exc.message}",
                  exc.hint or "`kubectl get pods -n k8slab-doctor` and `kubectl describe pod` show why"))
        for name in ("pod-to-pod", "NetworkPolicy", "LoadBalancer", "Ingress"):
            add(Check(name, SKIP, "no probe pods"))
        _cleanup(cluster, keep)
        return checks
    try:
        runner = env.runner(cluster)
        add(check_dns(cluster, runner))
        reach = add(check_pod_to_pod(cluster, runner, pods))
        if reach.status == PASS:
            add(check_network_policy(cluster, runner, cni))
        else:
            add(Check("NetworkPolicy", SKIP, "pod-to-pod traffic fails, so enforcement cannot be told apart"))
        add(check_load_balancer(cluster, runner, env.outside(cluster)))
        add(check_ingress(cluster, runner))
    finally:
        _cleanup(cluster, keep)
    return checks


def _schedulable(cluster) -> list[str]:
    try:
        return worker_nodes(cluster)
    except K8sLabError:
        return []


def _cleanup(cluster, keep: bool) -> None:
    if keep:
        return
    try:
        cluster.delete_namespaces([NAMESPACE], wait=False)
    except K8sLabError:
        pass


def check_nodes(cluster) -> Check:
    try:
        nodes = cluster.list_nodes()
    except K8sLabError as exc:
        return Check("nodes Ready", FAIL, exc.message, exc.hint)
    not_ready = []
    for node in nodes:
        cond = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        if cond is None or cond.status != "True":
            why = (cond.message or cond.reason) if cond else "no Ready condition yet"
            not_ready.append(f"{node.metadata.name} ({why})")
    names = ", ".join(n.metadata.name for n in nodes)
    if not_ready:
        return Check("nodes Ready", FAIL, f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready; not Ready: "
                                          f"{'; '.join(not_ready)[:300]}",
                     "a node stays NotReady until the CNI runs: `kubectl get pods -n kube-system -o wide`; "
                     "otherwise recreate: `make cluster-down cluster`")
    if len(nodes) != 3:
        return Check("nodes Ready", FAIL, f"{len(nodes)} nodes ({names}); the course needs 1 control-plane + 2 "
                                          f"workers for cross-node traffic",
                     "`make cluster-down cluster` creates the course topology (environment/kind/cluster.yaml)")
    return Check("nodes Ready", PASS, f"3/3 Ready ({names})")


def check_dns(cluster, runner: Runner) -> Check:
    name = "kubernetes.default.svc.cluster.local"
    svc = cluster.get_service("default", "kubernetes")
    want = svc.spec.cluster_ip if svc is not None else ""
    spec = ProbeSpec(f"{NAMESPACE}/doctor-a", "dns", name)
    result = probe_until(runner, [spec], {spec: Outcome.ALLOWED}, attempts=3, deadline_s=10, pause_s=RETRY_PAUSE_S)[0]
    if result.outcome is Outcome.ALLOWED and (not want or want in result.addresses):
        return Check("CoreDNS", PASS, f"{name} -> {', '.join(result.addresses)} from a pod")
    return Check("CoreDNS", FAIL, f"{name} did not resolve{' to ' + want if want else ''} from a pod "
                                  f"({result.detail or ', '.join(result.addresses) or 'no answer'}); "
                                  f"reproduce: {result.command}",
                 "`kubectl get pods -n kube-system -l k8s-app=kube-dns`; CoreDNS needs a working CNI")


def check_pod_to_pod(cluster, runner: Runner, pods: dict[str, str]) -> Check:
    node_a, node_b = pods.get("doctor-a", ""), pods.get("doctor-b", "")
    ip_a, ip_b = pod_ip(cluster, NAMESPACE, "doctor-a"), pod_ip(cluster, NAMESPACE, "doctor-b")
    specs = [ProbeSpec(f"{NAMESPACE}/doctor-a", "http", ip_b, 8080, path="/hostname"),
             ProbeSpec(f"{NAMESPACE}/doctor-b", "http", ip_a, 8080, path="/hostname")]
    results = probe_until(runner, specs, lambda s: Outcome.ALLOWED, attempts=3, deadline_s=10,
                          pause_s=RETRY_PAUSE_S)
    where = f"{node_a} <-> {node_b}" if node_a != node_b else f"both on {node_a} (only one schedulable node)"
    bad = [r for r in results if r.outcome is not Outcome.ALLOWED]
    if bad:
        r = bad[0]
        return Check("pod-to-pod", FAIL, f"{r.describe()} ({where}); reproduce: {r.command}",
                     "the CNI does not route between nodes: `kubectl get pods -n kube-system -o wide` "
                     "(all CNI pods Running?), then `make cluster-down cluster`")
    cross = "across nodes " if node_a != node_b else ""
    return Check("pod-to-pod", PASS, f"HTTP {cross}{where} works both ways")


def _policy(name: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchExpressions": [{"key": PROBE_LABEL, "operator": "Exists"}]},
                     "policyTypes": ["Ingress"]}}


def check_cni(cluster) -> tuple[Check, "Cni | None"]:
    from graders.cni import identify
    cni = identify(cluster)
    if cni is None:
        return Check("CNI", SKIP, "none of the course's CNIs (kube-router, Calico, Cilium, Flannel, Canal, Weave) "
                                  "found by its pods"), None
    return Check("CNI", PASS, cni.describe()), cni


def check_network_policy(cluster, runner: Runner, cni=None) -> Check:
    """Self-test: a→b allowed, apply deny-all ingress, a→b must become blocked, delete the policy."""
    ip_b = pod_ip(cluster, NAMESPACE, "doctor-b")
    spec = ProbeSpec(f"{NAMESPACE}/doctor-a", "tcp", ip_b, 8080)
    policy = _policy("k8slab-doctor-deny")
    started = time.monotonic()
    cluster.apply([policy])
    try:
        result = probe_until(runner, [spec], {spec: Outcome.BLOCKED}, attempts=10, deadline_s=15,
                             pause_s=RETRY_PAUSE_S)[0]
    finally:
        try:
            cluster.delete(policy)
        except K8sLabError:
            pass
    took = time.monotonic() - started
    if result.outcome is Outcome.BLOCKED:
        return Check("NetworkPolicy", PASS, f"enforced: a deny-all policy blocked pod-to-pod TCP within {took:.1f} s "
                                            f"({result.detail.split(':')[0]})")
    if result.outcome is Outcome.ALLOWED and cni is not None and not cni.policy:
        # what the seed's table says of this CNI, measured: not a fault of the setup
        return Check("NetworkPolicy", SKIP, f"not enforced, as expected: {cni.name} has no NetworkPolicy engine "
                                            f"(traffic still flowed {took:.0f} s after a deny-all policy); lab 05 "
                                            f"needs a CNI that enforces, such as the course cluster's kube-router")
    if result.outcome is Outcome.ALLOWED:
        return Check("NetworkPolicy", FAIL, f"NOT enforced: traffic still flowed {took:.0f} s after a deny-all "
                                            f"ingress policy (the CNI ignores NetworkPolicy, as Flannel does); "
                                            f"reproduce: {result.command}",
                     "recreate the cluster with a policy-enforcing CNI: `make cluster-down cluster CNI=calico` "
                     "(offline: kube-router)")
    return Check("NetworkPolicy", FAIL, f"self-test probe could not run: {result.detail}",
                 "`make doctor` again; if it persists, `kubectl get pods -n k8slab-doctor`")


def check_load_balancer(cluster, runner: Runner, outside: Runner | None = None) -> Check:
    if "metallb-system" not in _namespaces(cluster):
        return Check("LoadBalancer", SKIP, "not probed: MetalLB is not installed (no metallb-system namespace)")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "doctor-lb", "namespace": NAMESPACE},
           "spec": {"type": "LoadBalancer", "selector": {PROBE_NAME_LABEL: "doctor-b"},
                    "ports": [{"port": 80, "targetPort": 8080}]}}
    cluster.apply([svc])
    ip = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not ip:
        current = cluster.get_service(NAMESPACE, "doctor-lb")
        ingress = (current.status.load_balancer.ingress or []) if current and current.status and \
            current.status.load_balancer else []
        ip = ingress[0].ip if ingress else ""
        if not ip:
            time.sleep(RETRY_PAUSE_S)
    if not ip:
        return Check("LoadBalancer", FAIL, "MetalLB gave a LoadBalancer Service no external IP within 20 s",
                     "`kubectl get ipaddresspools -n metallb-system` and the metallb controller logs")
    spec = ProbeSpec(f"{NAMESPACE}/doctor-a", "http", ip, 80, path="/hostname")
    result = probe_until(runner, [spec], {spec: Outcome.ALLOWED}, attempts=5, deadline_s=15, pause_s=RETRY_PAUSE_S)[0]
    if result.outcome is Outcome.ALLOWED:
        return _load_balancer_from_outside(ip, result, outside)
    return Check("LoadBalancer", FAIL,
                 f"external IP {ip} assigned but {result.describe()}; reproduce: {result.command}",
                 "MetalLB's speaker must run on every node: `kubectl get pods -n metallb-system -o wide`")


def _load_balancer_from_outside(ip: str, inside: ProbeResult, outside: Runner | None) -> Check:
    """Inside the cluster kube-proxy answers for a load-balancer IP by itself; from the docker network (where the
    graders' client stands, like a machine next to the nodes) the IP is reached only when a MetalLB speaker
    answers ARP for it. Speakers that started before their pool was known never do, and then only the outside
    probe tells."""
    reached = f"external IP {ip} assigned and reached from a pod ({inside.output.strip()})"
    if outside is None:
        return Check("LoadBalancer", PASS, f"{reached}; not probed from outside the cluster: no docker client")
    spec = ProbeSpec(getattr(outside, "source", "outside/docker-network"), "http", ip, 80, path="/hostname")
    result = probe_until(outside, [spec], {spec: Outcome.ALLOWED}, attempts=3, deadline_s=15, pause_s=RETRY_PAUSE_S)[0]
    if result.outcome is Outcome.ALLOWED:
        return Check("LoadBalancer", PASS, f"{reached} and from the cluster's docker network")
    return Check("LoadBalancer", FAIL,
                 f"{reached}, but not from the cluster's docker network ({result.describe()}): no MetalLB speaker "
                 f"answers ARP for {ip}, so every grader that sends requests from outside the cluster (labs 03 "
                 f"and 04) gets no answer; reproduce: {result.command}",
                 "restart the speakers so that they announce the IP again: "
                 "`kubectl -n metallb-system delete pod -l component=speaker`")


def check_ingress(cluster, runner: Runner) -> Check:
    classes = _ingress_classes(cluster)
    if not classes:
        return Check("Ingress", SKIP, "not probed: no ingress controller installed (no IngressClass)")
    controller = _controller_service(cluster)
    if controller is None:
        return Check("Ingress", SKIP, f"not probed: IngressClass {classes[0]} exists but no traefik/ingress-nginx "
                                      f"Service was found")
    ns, name, ip = controller
    if not _ready_endpoints(cluster, ns, name):
        return Check("Ingress", FAIL, f"the ingress controller Service {ns}/{name} has no ready pod behind it",
                     f"`kubectl get pods -n {ns}` and `kubectl describe pod -n {ns}` show why")
    host = "doctor.k8slab.test"
    objs = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "doctor-web", "namespace": NAMESPACE},
         "spec": {"selector": {PROBE_NAME_LABEL: "doctor-b"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "doctor", "namespace": NAMESPACE},
         "spec": {"ingressClassName": classes[0], "rules": [{"host": host, "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": "doctor-web", "port": {"number": 80}}}}]}}]}},
    ]
    cluster.apply(objs)
    spec = ProbeSpec(f"{NAMESPACE}/doctor-a", "http", ip, 80, host_header=host, path="/hostname")

    result = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        result = probe_until(runner, [spec], {spec: Outcome.ALLOWED}, attempts=1, deadline_s=5)[0]
        if result.outcome is Outcome.ALLOWED and result.output.strip() == "doctor-b":
            return Check("Ingress", PASS, f"{classes[0]} routed Host {host} via Service {ns}/{name} to the probe pod")
        time.sleep(RETRY_PAUSE_S)
    detail = result.describe() if result else "no probe ran"
    return Check("Ingress", FAIL, f"{classes[0]} did not route Host {host} to the probe pod within 20 s ({detail})",
                 f"`kubectl logs -n {ns} deploy/{name}`")


def _ready_endpoints(cluster, namespace: str, service: str) -> list[str]:
    try:
        return [e.ip for e in cluster.endpoints(namespace, service) if e.ready]
    except K8sLabError:
        return []


def _namespaces(cluster) -> set[str]:
    try:
        return cluster.namespace_names()
    except K8sLabError:
        return set()


def _ingress_classes(cluster) -> list[str]:
    try:
        return cluster.ingress_classes()
    except K8sLabError:
        return []


def _controller_service(cluster) -> tuple[str, str, str] | None:
    for selector in ("app.kubernetes.io/name=traefik", "app.kubernetes.io/name=ingress-nginx"):
        try:
            items = cluster.find_services(selector)
        except K8sLabError:
            continue
        for svc in items:
            if any(p.port == 80 for p in svc.spec.ports or []) and svc.spec.cluster_ip not in (None, "None"):
                return svc.metadata.namespace, svc.metadata.name, svc.spec.cluster_ip
    return None


# ---------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8slab doctor", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the k8slab-doctor namespace for inspection")


def run_cli(args: argparse.Namespace) -> int:
    if autograding():  # the autograder's kernel has no rights outside the submission's namespaces
        print("doctor: not run while the autograder executes this notebook (it checks the cluster itself)")
        return 0
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    checks = run(keep=getattr(args, "keep", False), emit=lambda c: print(c.line(colour), flush=True))
    failed = [c for c in checks if c.status == FAIL]
    passed = sum(c.status == PASS for c in checks)
    skipped = sum(c.status == SKIP for c in checks)
    print(f"doctor: {passed} passed, {len(failed)} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
