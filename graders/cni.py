"""Which CNI a cluster runs, how it carries pod traffic between nodes, and whether it has a NetworkPolicy engine:
read from the CNI's own pods and configuration, as a learner would (`kubectl get pods -A`, its ConfigMap).

The seed's comparison table, for the course's six: Calico (BGP or IP-in-IP/VXLAN, policy), Cilium (eBPF, VXLAN or
native routing, policy incl. L7), Flannel (VXLAN or host-gw, no policy), Weave (its own mesh, policy; archived),
Canal (Flannel's routing with Calico's policy), and kube-router, the course's default (routed from each node's
podCIDR, policy with iptables/ipsets).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from graders.errors import K8sLabError


# What a learner writes for each CNI (lab 02's answers are compared by key, not by display name): the course's six
# and the offline Canal-like composition.
KEYS = ("canal", "cilium", "calico", "weave", "flannel", "kube-router", "flannel+kube-router")


@dataclass(frozen=True)
class Cni:
    name: str
    encapsulation: str      # how a packet crosses nodes
    policy: bool            # whether it ships a NetworkPolicy engine
    where: str              # where its configuration lives, for the learner to look
    key: str = ""           # one of KEYS

    def describe(self) -> str:
        enforces = "has a NetworkPolicy engine" if self.policy else "has NO NetworkPolicy engine"
        return f"{self.name}: {self.encapsulation}; {enforces} (configuration: {self.where})"


# (label selector of its agent pods, name, default encapsulation, policy, where, key) -- the first found wins, so a
# composition (Canal) comes before its parts
_KNOWN = (
    ("k8s-app=canal", "Canal (Flannel + Calico policy)", "VXLAN (Flannel)", True, "ConfigMap kube-system/canal-config",
     "canal"),
    ("k8s-app=cilium", "Cilium", "VXLAN tunnel (default; native routing if configured)", True,
     "ConfigMap kube-system/cilium-config", "cilium"),
    ("k8s-app=calico-node", "Calico", "IP-in-IP or VXLAN per IPPool (BGP-routed when neither)", True,
     "IPPool objects (`kubectl get ippools`)", "calico"),
    ("name=weave-net", "Weave Net (archived upstream)", "its own overlay (sleeve or fast-datapath VXLAN)", True,
     "DaemonSet kube-system/weave-net", "weave"),
    ("app=flannel", "Flannel", "VXLAN (default backend)", False, "ConfigMap kube-flannel/kube-flannel-cfg", "flannel"),
    ("k8s-app=kube-router", "kube-router", "routed: each node's podCIDR via the node's own IP, no overlay", True,
     "DaemonSet kube-system/kube-router", "kube-router"),
)


def _flannel_backend(cluster) -> str | None:
    for namespace in ("kube-flannel", "kube-system"):
        try:
            cm = cluster.get("v1", "ConfigMap", namespace, "kube-flannel-cfg")
        except K8sLabError:
            cm = None
        if cm:
            try:
                backend = json.loads((cm.get("data") or {}).get("net-conf.json", "{}")).get("Backend", {})
            except ValueError:
                return None
            return str(backend.get("Type", "")) or None
    return None


def _cilium_mode(cluster) -> str | None:
    """How Cilium carries pods between nodes, from its ConfigMap: routing-mode "tunnel" (tunnel-protocol vxlan or
    geneve) or "native" (routed)."""
    try:
        cm = cluster.get("v1", "ConfigMap", "kube-system", "cilium-config")
    except K8sLabError:
        return None
    data = (cm or {}).get("data") or {}
    mode = data.get("routing-mode") or ("tunnel" if data.get("tunnel-protocol") else "")
    if mode == "native":
        return "native routing (no overlay); eBPF on every node"
    if mode == "tunnel":
        protocol = data.get("tunnel-protocol") or "vxlan"
        return f"{protocol.upper()} tunnel (cilium_{protocol}); eBPF on every node"
    return None


# Where the course's CNIs run their agent pods: Flannel in kube-flannel (its upstream and offline manifests), every
# other one in kube-system (environment/offline/manifests/cni, graders/clusterplan.py). Read one namespace at a time
# when the credentials may not list pods cluster-wide: the safe autograder grants exactly these (graders.course.grants).
AGENT_NAMESPACES = ("kube-system", "kube-flannel")


def _runs(cluster, selector: str) -> bool:
    try:
        return bool(cluster.list_pods(None, label_selector=selector))
    except K8sLabError:
        pass
    for namespace in AGENT_NAMESPACES:
        try:
            if cluster.list_pods(namespace, label_selector=selector):
                return True
        except K8sLabError:
            continue
    return False


def identify(cluster) -> Cni | None:
    """The CNI whose agent pods run on the cluster (None when none of the course's six is found). Flannel with
    kube-router beside it is the course's offline Canal: Flannel routes, kube-router enforces policy only."""
    for selector, name, encapsulation, policy, where, key in _KNOWN:
        if not _runs(cluster, selector):
            continue
        if key == "cilium":
            encapsulation = _cilium_mode(cluster) or encapsulation
        if name == "Flannel":
            backend = _flannel_backend(cluster)
            if backend:
                encapsulation = {"vxlan": "VXLAN", "host-gw": "host-gw (routed, no overlay)"}.get(backend, backend)
            if _runs(cluster, "k8s-app=kube-router"):
                return Cni("Flannel + kube-router (policy only; Canal's design)", encapsulation, True,
                           f"{where}; DaemonSet kube-system/kube-router-firewall", "flannel+kube-router")
        return Cni(name, encapsulation, policy, where, key)
    return None


# ---------------------------------------------------------------------------------------------- Cilium identities
# Cilium gives every pod a security identity made of its labels AND its namespace's labels, and applies no policy
# change to a pod whose identity is being replaced. The grader re-stamps its namespaces for each run (a new
# k8slab.dev/run label), so on a Cilium cluster every pod of the namespace gets a new identity; measured here
# 10-20 s ("Resolving identity labels" to "Identity of endpoint changed" in the agent's log), during which a new
# NetworkPolicy is not enforced. The grader waits for that to settle before it probes.
CILIUM_SETTLE_S = 90.0
_NS_LABEL = "k8s:io.cilium.k8s.namespace.labels."


def runs_cilium(cluster) -> bool:
    try:
        return bool(cluster.list_pods("kube-system", label_selector="k8s-app=cilium"))
    except K8sLabError:
        return False


def cilium_pending(cluster, namespace: str, pods: Sequence[str]) -> list[str]:
    """The pods whose CiliumEndpoint is not ready yet, or whose identity does not carry the namespace's current
    labels (pure reads; a pod whose endpoint cannot be read counts as pending)."""
    wanted = {f"{_NS_LABEL}{k}={v}" for k, v in (cluster.namespace_labels(namespace) or {}).items()}
    pending = []
    for pod in pods:
        try:
            cep = cluster.get("cilium.io/v2", "CiliumEndpoint", namespace, pod)
        except K8sLabError:
            cep = None
        status = (cep or {}).get("status") or {}
        labels = set(((status.get("identity") or {}).get("labels")) or ())
        if status.get("state") != "ready" or not wanted <= labels:
            pending.append(pod)
    return pending


def wait_settled(cluster, namespace: str, pods: Sequence[str], timeout: float = CILIUM_SETTLE_S,
                 poll: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """On a Cilium cluster, wait (bounded) until every pod's identity matches its namespace's labels; [] when settled
    or when the cluster does not run Cilium, else the pods still pending at the deadline."""
    if not runs_cilium(cluster):
        return []
    deadline = clock() + timeout
    pending = cilium_pending(cluster, namespace, pods)
    while pending and clock() < deadline:
        sleep(poll)
        pending = cilium_pending(cluster, namespace, pods)
    return pending
