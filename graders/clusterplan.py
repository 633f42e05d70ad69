"""The pinned versions turned into the exact commands that bring up the ONLINE course cluster.

The online path (students, instructors) is a list of `Step`s, kind-style: create the kind cluster, install the
CNI, wait for nodes, then MetalLB (with an address pool computed from the docker network's subnet), the
Gateway API CRDs, Traefik and cert-manager, waiting after each. `plan()` only builds data — unit tests check
every command and every generated YAML — and `execute()` runs it with visible progress.

The offline path (CI, air-gapped workshops) is environment/offline/cluster-up.sh; `k8slab cluster up
--offline` only dispatches to it. A service mesh (lab 06) is graders/meshplan.py: `k8slab cluster up --mesh istio` or,
on a running cluster, `k8slab cluster mesh istio` (online only).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import yaml

from graders import meshplan, paths
from graders.planstep import (CLUSTER_NAME, CONTEXT, WAIT, Step, _env_with_bin, execute, kubectl,  # noqa: F401
                              need, pins_or_pinned)

KIND_NETWORK = "kind"
# CNIs offered online. The default is the offline cluster's data plane, so that what the project's CI proves is what
# students run: pod addresses from each node's spec.podCIDR (one /24 per node) and NetworkPolicy enforced with
# REJECT (a blocked TCP connect is "refused"). Calico's own IPAM ignores podCIDR and its policy DROPs (a timeout).
# Flannel does NOT enforce policy.
CNIS = ("kube-router", "calico", "cilium", "flannel", "canal", "weave")
DEFAULT_CNI = "kube-router"
# Offline (environment/offline, built here): kube-router, Flannel, Flannel with kube-router's firewall as the
# stand-in for Canal, whose Calico half cannot be built from the Go proxy, and Cilium without Envoy (no L7 policy).
OFFLINE_CNIS = ("kube-router", "flannel", "flannel+kube-router", "cilium")
ADDONS = ("metallb", "gateway-api", "traefik", "cert-manager")


def cluster_name(cni: str = DEFAULT_CNI) -> str:
    """The course cluster runs the default CNI; every other CNI gets a cluster of its own beside it ("k8slab-calico"),
    as offline (environment/offline/lib.sh select_cni): lab 02 compares two data planes side by side, and the other
    labs keep grading the course cluster. A second cluster gets the core add-ons only (MetalLB's pool would collide
    with the course cluster's on the shared docker network "kind")."""
    return CLUSTER_NAME if cni == DEFAULT_CNI else f"{CLUSTER_NAME}-{cni}"


def context_of(name: str) -> str:
    return f"kind-{name}"


# ---------------------------------------------------------------------- CNI
@dataclass(frozen=True)
class _Manifest:
    """A CNI installed from one pinned upstream manifest, then waited for as a DaemonSet."""
    title: str
    pin: str            # versions.env key of the release
    url: str            # with {v}
    namespace: str
    daemonset: str


_RAW = "https://raw.githubusercontent.com"
_GH = "https://github.com"
_CNI_MANIFESTS = {
    "calico": _Manifest("Calico {v}", "CALICO_VERSION",
                        _RAW + "/projectcalico/calico/{v}/manifests/calico.yaml", "kube-system", "calico-node"),
    "canal": _Manifest("Canal (Flannel routing + Calico policy) {v}", "CALICO_VERSION",
                       _RAW + "/projectcalico/calico/{v}/manifests/canal.yaml", "kube-system", "canal"),
    "flannel": _Manifest("Flannel {v} (does NOT enforce NetworkPolicy)", "FLANNEL_VERSION",
                         "https://github.com/flannel-io/flannel/releases/download/{v}/kube-flannel.yml",
                         "kube-flannel", "kube-flannel-ds"),
    "weave": _Manifest("Weave Net {v} (archived upstream; for comparison only)", "WEAVE_VERSION",
                       "https://github.com/weaveworks/weave/releases/download/{v}/weave-daemonset-k8s-1.11.yaml",
                       "kube-system", "weave-net"),
    "kube-router": _Manifest("kube-router {v} (routing + NetworkPolicy; kube-proxy stays)", "KUBE_ROUTER_VERSION",
                             _RAW + "/cloudnativelabs/kube-router/{v}/daemonset/kubeadm-kuberouter.yaml",
                             "kube-system", "kube-router"),
}


def _rollout(namespace: str, daemonset: str, context: str = CONTEXT) -> Step:
    return Step(f"wait for {daemonset} on every node",
                kubectl("-n", namespace, "rollout", "status", f"daemonset/{daemonset}", f"--timeout={WAIT}",
                        context=context))


def cni_steps(cni: str, pins: Mapping[str, str] | None = None, context: str | None = None) -> list[Step]:
    """Install + wait steps for one CNI, at the pinned version, on its cluster (cluster_name)."""
    p = pins_or_pinned(pins)
    context = context or context_of(cluster_name(cni))
    if cni not in CNIS:
        raise ValueError(f"unknown CNI {cni!r}; choose one of: {', '.join(CNIS)}")
    if cni == "cilium":
        v = need(p, "CILIUM_VERSION")
        return [Step(f"CNI: Cilium {v} (helm)",
                     ("helm", "upgrade", "--install", "cilium", "cilium", "--repo", "https://helm.cilium.io/",
                      "--version", v, "--namespace", "kube-system", "--kube-context", context,
                      "--set", "ipam.mode=kubernetes", "--set", "image.pullPolicy=IfNotPresent", "--wait",
                      f"--timeout={WAIT}")),
                _rollout("kube-system", "cilium", context)]
    m = _CNI_MANIFESTS[cni]
    v = need(p, m.pin)
    steps = [Step(f"CNI: {m.title.format(v=v)}", kubectl("apply", "-f", m.url.format(v=v), context=context))]
    if cni == "kube-router":  # upstream's manifest names no tag: pin the image
        steps.append(Step("pin the kube-router image", kubectl("-n", "kube-system", "set", "image",
                                                               "daemonset/kube-router",
                                                               f"kube-router={need(p, 'KUBE_ROUTER_IMAGE_ONLINE')}",
                                                               context=context)))
    return steps + [_rollout(m.namespace, m.daemonset, context)]


# ---------------------------------------------------------------------- MetalLB pool
def metallb_pool_range(subnet: str) -> str:
    """An address range for MetalLB inside the kind docker network, clear of docker's own allocations:
    .200–.250 of the subnet's last /24 (e.g. 172.18.0.0/16 -> 172.18.255.200-172.18.255.250)."""
    net = ipaddress.ip_network(subnet, strict=False)
    if net.version != 4:
        raise ValueError(f"MetalLB pool: IPv4 subnet expected, got {subnet}")
    if net.prefixlen > 24:
        raise ValueError(f"MetalLB pool: subnet {subnet} is smaller than a /24; no room for a pool")
    last24 = ipaddress.ip_network(f"{net.broadcast_address}/24", strict=False)
    first = last24.network_address + 200
    last = last24.network_address + 250
    return f"{first}-{last}"


def metallb_pool_yaml(subnet: str) -> str:
    """IPAddressPool + L2Advertisement (namespace metallb-system) for the docker network's subnet."""
    docs = [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "k8slab", "namespace": "metallb-system"},
         "spec": {"addresses": [metallb_pool_range(subnet)]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
         "metadata": {"name": "k8slab", "namespace": "metallb-system"},
         "spec": {"ipAddressPools": ["k8slab"]}},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def docker_subnet(network: str = KIND_NETWORK) -> str:
    """The IPv4 subnet of a docker network (the one kind created), via the docker SDK."""
    import docker
    client = docker.from_env(timeout=5)
    for cfg in (client.networks.get(network).attrs.get("IPAM") or {}).get("Config") or []:
        subnet = cfg.get("Subnet", "")
        if subnet and ":" not in subnet:
            return subnet
    raise RuntimeError(f"docker network {network} has no IPv4 subnet")


# ---------------------------------------------------------------------- add-ons
def _available(namespace: str, deployment: str, what: str) -> Step:
    return Step(f"wait for {what}", kubectl("-n", namespace, "wait", "--for=condition=Available", deployment,
                                            *(["--all"] if deployment == "deployment" else []), f"--timeout={WAIT}"))


def addon_steps(addon: str, subnet: str, pins: Mapping[str, str] | None = None) -> list[Step]:
    p = pins_or_pinned(pins)
    if addon == "metallb":
        v = need(p, "METALLB_VERSION")
        return [
            Step(f"LoadBalancer: MetalLB {v}",
                 kubectl("apply", "-f", f"{_RAW}/metallb/metallb/{v}/config/manifests/metallb-native.yaml")),
            _available("metallb-system", "deployment/controller", "the MetalLB controller"),
            _rollout("metallb-system", "speaker"),
            Step(f"MetalLB address pool {metallb_pool_range(subnet)} (docker network {KIND_NETWORK}: {subnet})",
                 kubectl("apply", "-f", "-"), stdin=metallb_pool_yaml(subnet)),
        ]
    if addon == "gateway-api":
        v = need(p, "GATEWAY_API_VERSION")
        return [Step(f"Gateway API CRDs {v} (standard channel)",
                     kubectl("apply", "--server-side", "-f",
                             f"{_GH}/kubernetes-sigs/gateway-api/releases/download/{v}/standard-install.yaml"))]
    if addon == "traefik":
        chart = need(p, "TRAEFIK_CHART_VERSION")
        tag = need(p, "TRAEFIK_VERSION")
        return [Step(f"Ingress: Traefik {tag} (chart {chart}, default IngressClass, Gateway API and CRD providers)",
                     ("helm", "upgrade", "--install", "traefik", "traefik",
                      "--repo", "https://traefik.github.io/charts",
                      "--version", chart, "--namespace", "traefik", "--create-namespace", "--kube-context", CONTEXT,
                      "--set", f"image.tag={tag}", "--set", "service.type=LoadBalancer",
                      "--set", "ingressClass.isDefaultClass=true",
                      "--set", "providers.kubernetesGateway.enabled=true",
                      # Middleware (rate limits, redirects on an Ingress): the chart's default, pinned like offline
                      "--set", "providers.kubernetesCRD.enabled=true",
                      "--wait", f"--timeout={WAIT}"))]
    manifests = {  # add-ons installed from one release manifest, then waited for as Deployments
        "cert-manager": ("cert-manager {v}", "CERT_MANAGER_VERSION",
                         _GH + "/cert-manager/cert-manager/releases/download/{v}/cert-manager.yaml",
                         "cert-manager", "deployment"),
        "ingress-nginx": ("Ingress: ingress-nginx {v} (retired upstream; only for the annotation example)",
                          "INGRESS_NGINX_VERSION",
                          _RAW + "/kubernetes/ingress-nginx/{v}/deploy/static/provider/kind/deploy.yaml",
                          "ingress-nginx", "deployment/ingress-nginx-controller"),
    }
    if addon not in manifests:
        raise ValueError(f"unknown add-on {addon!r}; choose from: {', '.join(ADDONS + ('ingress-nginx',))}")
    title, pin, url, namespace, deployment = manifests[addon]
    v = need(p, pin)
    return [Step(title.format(v=v), kubectl("apply", "-f", url.format(v=v))),
            _available(namespace, deployment, addon)]


def create_steps(pins: Mapping[str, str] | None = None, config: str | None = None,
                 name: str = CLUSTER_NAME) -> list[Step]:
    p = pins_or_pinned(pins)
    cfg = config or "environment/kind/cluster.yaml"
    steps = [Step(f"kind cluster {name} (1 control-plane + 2 workers, default CNI disabled)",
                  ("kind", "create", "cluster", "--name", name, "--config", cfg, "--image", need(p, "KIND_NODE_IMAGE")))]
    if name != CLUSTER_NAME:  # kind makes the new cluster kubectl's current context: give it back to the course's
        steps.append(Step(f"kubectl's current context back to {CONTEXT} (use --context {context_of(name)} for {name})",
                          ("kubectl", "config", "use-context", CONTEXT), optional=True))
    return steps


def plan(cni: str = DEFAULT_CNI, addons: Sequence[str] = ADDONS, subnet: str = "172.18.0.0/16",
         pins: Mapping[str, str] | None = None, create: bool = True) -> list[Step]:
    """Every step of the online bring-up, in order. `subnet` is the kind docker network's (read after create).
    A CNI other than the default gets its own cluster (cluster_name) with the core add-ons only."""
    name = cluster_name(cni)
    context = context_of(name)
    steps = create_steps(pins, name=name) if create else []
    steps += cni_steps(cni, pins, context)
    steps += [Step("wait until every node is Ready", kubectl("wait", "--for=condition=Ready", "nodes", "--all",
                                                            f"--timeout={WAIT}", context=context)),
              Step("wait for CoreDNS", kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns",
                                               f"--timeout={WAIT}", context=context))]
    if name != CLUSTER_NAME:
        return steps
    ordered = [a for a in ("metallb", "gateway-api", "traefik", "cert-manager", "ingress-nginx") if a in addons]
    for addon in ordered:
        steps += addon_steps(addon, subnet, pins)
    return steps


# ---------------------------------------------------------------------- running
def cluster_exists(runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                   name: str = CLUSTER_NAME) -> bool:
    try:
        out = runner(["kind", "get", "clusters"], capture_output=True, text=True, timeout=20, env=_env_with_bin())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return name in (out.stdout or "").split()


def offline_command(bundle: str | None = None, script: str = "cluster-up.sh") -> list[str]:
    path = str(paths.environment_dir() / "offline" / script)
    return [path, "--bundle", bundle] if bundle else [path]


def _offline(args: argparse.Namespace, script: str) -> int:
    if getattr(args, "mesh", None):  # before a build that may take an hour: the mesh could not run there anyway
        print(f"error: {meshplan.OFFLINE_REASON}", file=sys.stderr)
        return 2
    cni = args.cni or DEFAULT_CNI
    if cni not in OFFLINE_CNIS:
        print(f"error: the offline clusters are {', '.join(OFFLINE_CNIS)}; --cni {cni} needs the online path (drop "
              f"--offline)", file=sys.stderr)
        return 2
    argv = offline_command(getattr(args, "bundle", None), script)
    prefix = f"K8SLAB_CNI={shlex.quote(cni)} " if cni != DEFAULT_CNI else ""
    if getattr(args, "dry_run", False):
        print(prefix + " ".join(shlex.quote(a) for a in argv))
        return 0
    return subprocess.call(argv, env={**os.environ, "K8SLAB_CNI": cni})


def cmd_up(args: argparse.Namespace) -> int:
    if args.offline or args.bundle:
        return _offline(args, "cluster-up.sh")
    cni = args.cni or DEFAULT_CNI
    if cni not in CNIS:
        print(f"error: --cni {cni} is offline only (the stand-in for Canal); online, use --cni canal", file=sys.stderr)
        return 2
    name = cluster_name(cni)
    addons = [a for a in ADDONS if a not in (args.without or [])] + (["ingress-nginx"] if args.ingress_nginx else [])
    mesh = getattr(args, "mesh", None)
    if mesh and name != CLUSTER_NAME:
        print(f"error: --mesh goes with the course cluster ({CLUSTER_NAME}), not with --cni {cni}", file=sys.stderr)
        return 2
    if args.dry_run:
        for step in plan(cni, addons, subnet=args.subnet or "172.18.0.0/16") + (meshplan.plan(mesh) if mesh else []):
            print(f"# {step.title}\n{step.pretty()}")
        if not args.subnet:
            print("# (the MetalLB pool is computed from the docker network 'kind' subnet once it exists)")
        return 0
    if cluster_exists(name=name):
        print(f"==> kind cluster {name} exists; installing/updating the add-ons only "
              f"(`make cluster-down{'' if name == CLUSTER_NAME else ' CNI=' + cni}` to start over)")
    else:
        rc = execute(create_steps(name=name))
        if rc:
            return rc
    try:
        subnet = args.subnet or docker_subnet()
    except Exception as exc:  # noqa: BLE001
        print(f"error: cannot read the subnet of docker network {KIND_NETWORK}: {exc}", file=sys.stderr)
        return 1
    rc = execute(plan(cni, addons, subnet=subnet, create=False))
    if rc or not mesh:
        return rc
    return execute(meshplan.plan(mesh), again=f"make mesh MESH={mesh}")


def cmd_down(args: argparse.Namespace) -> int:
    if args.offline:
        return _offline(args, "cluster-down.sh")
    argv = ["kind", "delete", "cluster", "--name", cluster_name(args.cni or DEFAULT_CNI)]
    print("$ " + " ".join(argv))
    try:
        return subprocess.call(argv, env=_env_with_bin())
    except FileNotFoundError:
        print("error: kind not found; run `make setup`", file=sys.stderr)
        return 127


def register(subparsers) -> None:
    """Adds `k8slab cluster up|down` (called by graders.cli)."""
    cluster = subparsers.add_parser("cluster", help="create or delete the course cluster (kind)")
    sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="create the cluster: kind + CNI + MetalLB + Gateway API + Traefik + cert-manager "
                                   "(+ a mesh with --mesh)")
    up.add_argument("--offline", action="store_true", help="build/start the offline cluster (environment/offline)")
    up.add_argument("--bundle", metavar="PATH", help="start the offline cluster from a bundle (no build, no network)")
    up.add_argument("--cni", choices=tuple(dict.fromkeys(CNIS + OFFLINE_CNIS)),
                    help=f"pod network (default {DEFAULT_CNI}, the course cluster '{CLUSTER_NAME}'; any other gets a "
                         f"cluster '{CLUSTER_NAME}-<cni>' of its own; offline: {', '.join(OFFLINE_CNIS)})")
    up.add_argument("--without", action="append", choices=ADDONS, help="skip an add-on (repeatable)")
    up.add_argument("--ingress-nginx", action="store_true", help="also install ingress-nginx (retired upstream)")
    up.add_argument("--subnet", help="docker network subnet for the MetalLB pool (default: read from docker)")
    up.add_argument("--mesh", choices=meshplan.MESHES,
                    help="then install a service mesh for lab 06 (online only; see `k8slab cluster mesh`)")
    up.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    up.set_defaults(func=cmd_up)
    meshplan.register(sub)
    down = sub.add_parser("down", help="delete the course cluster")
    down.add_argument("--offline", action="store_true", help="use environment/offline/cluster-down.sh")
    down.add_argument("--cni", choices=tuple(dict.fromkeys(CNIS + OFFLINE_CNIS)),
                      help="delete that CNI's cluster instead of the course cluster")
    down.set_defaults(func=cmd_down)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8slab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
