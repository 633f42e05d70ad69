"""Lab 02-cni: the seed's CNI comparison table, measured on two clusters side by side.

The course cluster (kube-router online and offline) is graded; a second cluster with another CNI (Flannel first,
found by ``graders.comparison``) is what it is compared with. Both get the same small world in namespace
``k8slab-cni``, created by the grader: ``web`` on the second worker, ``frontend`` and ``intruder`` on the first, so
every connection crosses nodes.

* ``identify`` — an observation exercise (graders.questions, like lab 01's read-the-network): which CNI each cluster
  runs, how the main cluster carries a packet to another node's pod, the pod MTU on the second cluster, and whether
  the second cluster's CNI enforces NetworkPolicy. Every fact is read live (``read_data_plane``): the CNI's agent
  pods, a host-network agent's routes and devices, the web pod's eth0, and a probe under the grader's own policy.
* ``enforce`` — NetworkPolicies realising frontend -> web allowed, intruder -> web blocked (lab02_cni_enforce.py).
* ``choose`` — which CNI fits each stated requirement, judged against ``SCENARIOS`` (static facts, no traffic);
  the written answer ``choose-why`` is marked by the instructor.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders import cni, comparison, probe
from graders.dataplane import (LINKS_SCRIPT, Crossing, agent_pod, crossing, node_mtu, parse_links, parse_proc_route,
                               pod_mtus, smallest,
                               read_in_pod)
from graders.errors import K8sLabError
from graders.exercise import Exercise
from graders.model import Evidence, Outcome, StepResult
from graders.probe import ProbeSpec, probe_until
from graders.questions import Fact, Question, judge as judge_answers, not_observable, observed

LAB_ID = "02-cni"
NS = "k8slab-cni"
WEB, FRONTEND, INTRUDER = "web", "frontend", "intruder"
PORT = probe.HTTP_PORT  # every world pod serves agnhost netexec here
AGENT = "k8slab-agent"  # the grader's host-network pod on the first worker: the node's routes and devices
GUARD_POLICY = "k8slab-only-frontend"  # the grader's own policy: does the CNI enforce it?
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
LOOPBACK_MTU = 65536
ENFORCE_ATTEMPTS, ENFORCE_DEADLINE_S = 6, 25.0  # a CNI programs a new policy within seconds: retry that long


# ================================================================================ the world
def workers_of(cluster) -> list[str]:
    return sorted(n.metadata.name for n in cluster.list_nodes()
                  if CONTROL_PLANE_LABEL not in (n.metadata.labels or {}))


def node_ips_of(cluster) -> dict[str, str]:
    return {n.metadata.name: next((a.address for a in (n.status.addresses or []) if a.type == "InternalIP"), "")
            for n in cluster.list_nodes()}


def world_pods(namespace: str, image: str, workers: Sequence[str]) -> list[dict]:
    """web on the second worker, frontend and intruder on the first: each connection of the lab crosses nodes."""
    first, second = workers[0], workers[1]
    return [probe.probe_pod(namespace, name, image, node=node, labels={"app": name})
            for name, node in ((WEB, second), (FRONTEND, first), (INTRUDER, first))]


def deploy_world(cluster, namespace: str = NS, *, agent: bool = False) -> tuple[dict[str, str], list[str]]:
    """Create (or reuse) the world's pods, and the agent when asked; wait until ready. Returns ({pod: IP}, workers);
    raises K8sLabError when the cluster lacks the two workers the lab needs."""
    workers = workers_of(cluster)
    if len(workers) < 2:
        raise K8sLabError(f"this lab needs two workers; the cluster of context {getattr(cluster, 'context', '?')} "
                          f"has {len(workers)} ({', '.join(workers) or 'none'})")
    image = probe.agnhost_image(cluster)
    pods = world_pods(namespace, image, workers)
    if agent:
        pods.append(agent_pod(namespace, AGENT, image, workers[0]))
    cluster.ensure_pods(pods)
    cluster.wait_ready([namespace], timeout=120)
    pending = cni.wait_settled(cluster, namespace, (WEB, FRONTEND, INTRUDER))
    if pending:
        raise K8sLabError(f"Cilium had not given pods {', '.join(pending)} their identities after "
                          f"{cni.CILIUM_SETTLE_S:.0f} s (kubectl -n {namespace} get ciliumendpoints): policies could "
                          f"not be probed on {getattr(cluster, 'context', '?')}")
    return {name: probe.pod_ip(cluster, namespace, name) for name in (WEB, FRONTEND, INTRUDER)}, workers


def guard_policy(namespace: str = NS) -> dict:
    """web accepts only frontend, on its serving port: the policy whose effect tells whether a CNI enforces."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": GUARD_POLICY, "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": {"app": WEB}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": FRONTEND}}}],
                                  "ports": [{"port": PORT, "protocol": "TCP"}]}]}}


# ================================================================================ reading a data plane
@dataclass(frozen=True)
class DataPlane:
    """What one cluster shows. ``enforces`` None: not probed, or the probes could not tell (``enforcement`` says
    why); ``problem`` is set when nothing could be read at all."""

    context: str
    cni: cni.Cni | None = None
    crossing: Crossing | None = None
    pod_mtu: int | None = None
    node_mtu: int | None = None
    enforces: bool | None = None
    enforcement: str = ""
    problem: str = ""


def enforcement_verdict(before: Mapping[str, Outcome], after: Mapping[str, Outcome]) -> tuple[bool | None, str]:
    """Whether the CNI enforces the guard policy (pure), from intruder's and frontend's connections to web with no
    policy (``before``) and under it (``after``): None when the probes cannot tell."""
    if Outcome.FAILED in (*before.values(), *after.values()):
        return None, "the grader's probes could not run"
    if before.get(INTRUDER) is not Outcome.ALLOWED or before.get(FRONTEND) is not Outcome.ALLOWED:
        return None, "with no policy at all, frontend or intruder could not reach web: nothing to compare with"
    if after.get(INTRUDER) is Outcome.ALLOWED:
        return False, f"under the grader's policy {GUARD_POLICY}, intruder still reached web"
    if after.get(FRONTEND) is not Outcome.ALLOWED:
        return None, f"under {GUARD_POLICY}, frontend could not reach web either: the cluster blocks more than it says"
    return True, f"under {GUARD_POLICY}, intruder was blocked and frontend still reached web"


def probe_enforcement(cluster, prober, namespace: str, ips: Mapping[str, str]) -> tuple[bool | None, str]:
    """Send frontend -> web and intruder -> web with no policy, then under the grader's guard policy (deleted
    afterwards), retrying while the cluster has not caught up with the policy."""
    specs = {name: ProbeSpec(f"{namespace}/{name}", "tcp", ips[WEB], PORT, label=f"{name} -> {WEB}")
             for name in (FRONTEND, INTRUDER)}
    first = probe_until(prober, list(specs.values()), lambda s: Outcome.ALLOWED, attempts=3, deadline_s=10)
    before = {name: r.outcome for name, r in zip(specs, first)}
    policy = guard_policy(namespace)
    cluster.apply([policy])
    try:
        want = {specs[FRONTEND]: Outcome.ALLOWED, specs[INTRUDER]: Outcome.BLOCKED}
        second = probe_until(prober, list(specs.values()), want, attempts=ENFORCE_ATTEMPTS,
                             deadline_s=ENFORCE_DEADLINE_S)
    finally:
        cluster.delete(policy)
    return enforcement_verdict(before, {name: r.outcome for name, r in zip(specs, second)})


def read_data_plane(cluster, prober, namespace: str = NS, *, enforcement: bool = False) -> DataPlane:
    """Every fact ``identify`` asks about, read from one cluster: the CNI's agent pods, the agent's routes and
    devices, the web pod's eth0 MTU and (``enforcement``) whether the guard policy blocks a probe."""
    context = str(getattr(cluster, "context", "") or "")
    try:
        ips, _ = deploy_world(cluster, namespace, agent=True)
    except K8sLabError as error:
        return DataPlane(context, problem=error.message)
    node_ips = node_ips_of(cluster)
    routes = parse_proc_route(read_in_pod(cluster, namespace, AGENT, ["cat", "/proc/net/route"]))
    links = parse_links(read_in_pod(cluster, namespace, AGENT, ["sh", "-c", LINKS_SCRIPT]))
    enforces, how = (probe_enforcement(cluster, prober, namespace, ips) if enforcement
                     else (None, "not probed on this cluster"))
    return DataPlane(context, cni.identify(cluster), crossing(routes, links, ips[WEB], list(node_ips.values())),
                     smallest(*pod_mtus(cluster, namespace, WEB, ips[FRONTEND])), node_mtu(links, routes), enforces,
                     how)


# ================================================================================ identify
ANSWERS_FILE = "answers.yaml"
ENCAPSULATIONS = ("vxlan", "geneve", "ipip", "routed", "host-gw", "ebpf")
YES_NO = ("yes", "no", "true", "false")
QUESTIONS = (
    Question("main_cni", "the CNI of the main (graded) cluster", "choice", cni.KEYS),
    Question("second_cni", "the CNI of the second cluster", "choice", cni.KEYS),
    Question("encapsulation", "on the main cluster: how a packet to a pod on another node leaves the node",
             "choice", ENCAPSULATIONS),
    Question("pod_mtu", f"on the second cluster: the MTU of a packet from pod {WEB} to a pod on another node (eth0's, "
                        f"or the route's when `ip route get` shows a smaller one)", "number"),
    Question("enforces", "does the second cluster's CNI enforce NetworkPolicy?", "choice", YES_NO),
)
SWAPPED = "the two clusters are swapped"
COMPOSITIONS = {
    "flannel": {
        "canal": "Canal is Flannel plus Calico's policy engine (canal or calico-node pods); this cluster runs Flannel "
                 "alone, with no policy engine beside it",
        "flannel+kube-router": "no kube-router runs beside Flannel on this cluster: Flannel alone",
    },
    "flannel+kube-router": {
        "flannel": "Flannel routes the pods here, but kube-router runs beside it as a firewall (DaemonSet "
                   "kube-router-firewall): the composition, not Flannel alone",
        "canal": "the same design as Canal (Flannel + a policy engine), but the policy engine here is kube-router, "
                 "not Calico: no canal or calico-node pods run",
        "kube-router": "kube-router runs here only as a firewall; the pod network is Flannel's (flannel.1)",
    },
}


def _cni_fact(plane: DataPlane, other: DataPlane | None, which: str) -> Fact:
    if plane.problem:
        return not_observable(plane.problem)
    if plane.cni is None:
        return not_observable(f"none of the course's CNIs has agent pods on the {which} cluster ({plane.context})")
    key = plane.cni.key
    because = dict(COMPOSITIONS.get(key, {}))
    if other is not None and other.cni is not None and other.cni.key != key:
        because[other.cni.key] = f"that is the CNI of the other cluster ({other.context}): {SWAPPED}"
    return observed(key, because=because,
                    explain=lambda answer: f"no {answer} agent pods run on the {which} cluster ({plane.context}); "
                                           f"the CNI's DaemonSet shows in `kubectl get pods -A`")


def _encapsulation_fact(plane: DataPlane) -> Fact:
    if plane.problem:
        return not_observable(plane.problem)
    found = plane.crossing
    if found is None or found.kind not in ("vxlan", "geneve", "ipip", "routed"):
        return not_observable(f"the grader could not classify the route ({found.how if found else 'not read'})")
    ebpf = ("eBPF is how Cilium processes packets on a node, not how they cross between nodes: ask which device the "
            "route leaves through")
    if found.kind == "routed":
        tunnel = (f"the main cluster's route to another node's pod has no tunnel device: it goes to the other node's "
                  f"own address on the node network — not every CNI encapsulates")
        return observed("routed", "host-gw", because={"vxlan": tunnel, "geneve": tunnel, "ipip": tunnel,
                                                      "ebpf": ebpf})
    routed = (f"the route leaves through {found.device}, a {found.kind.upper()} tunnel device: the packet is wrapped "
              f"in another packet between the nodes")
    other_tunnel = f"{found.device} is a {found.kind.upper()} device (`ip -d link show {found.device}` names its type)"
    because = {"routed": routed, "host-gw": routed, "ebpf": ebpf}
    because.update({k: other_tunnel for k in ("vxlan", "geneve", "ipip") if k != found.kind})
    return observed(found.kind, because=because)


def _mtu_fact(plane: DataPlane, main: DataPlane) -> Fact:
    if plane.problem:
        return not_observable(plane.problem)
    if plane.pod_mtu is None:
        return not_observable(f"could not read the MTU in pod {WEB} on {plane.context}")
    because = {LOOPBACK_MTU: "that is the MTU of lo, the loopback device; the question is about eth0"}
    if main.pod_mtu and main.pod_mtu != plane.pod_mtu:
        because[main.pod_mtu] = f"that is the pod MTU on the main cluster; the question is about the second one"
    if plane.node_mtu and plane.node_mtu != plane.pod_mtu:
        because[plane.node_mtu] = ("that is the MTU of the node's own network (the node's eth0); a pod's eth0 is "
                                   "smaller by the tunnel's headers (VXLAN adds 50 bytes): read it inside the pod")
    return observed(plane.pod_mtu, because=because)


def _enforces_fact(plane: DataPlane) -> Fact:
    if plane.problem:
        return not_observable(plane.problem)
    if plane.enforces is None:
        return not_observable(plane.enforcement)
    name = plane.cni.name if plane.cni else "its CNI"
    if plane.enforces:
        why = f"{plane.enforcement} on {plane.context}: {name} enforces NetworkPolicy"
        return observed("yes", "true", because={"no": why, "false": why})
    why = f"{plane.enforcement} on {plane.context}: {name} does not enforce NetworkPolicy (the API server accepts " \
          f"policies whatever the CNI does with them)"
    return observed("no", "false", because={"yes": why, "true": why})


def identify_facts(main: DataPlane, second: DataPlane | comparison.Missing) -> dict[str, Fact]:
    """The facts of ``identify`` (pure): the main cluster's CNI and encapsulation; the second cluster's CNI, pod MTU
    and enforcement — "not verifiable" with how to start a second cluster when there is none."""
    facts = {"main_cni": _cni_fact(main, second if isinstance(second, DataPlane) else None, "main"),
             "encapsulation": _encapsulation_fact(main)}
    if isinstance(second, comparison.Missing):
        facts.update({q: not_observable(second.message) for q in ("second_cni", "pod_mtu", "enforces")})
        return facts
    facts.update({"second_cni": _cni_fact(second, main, "second"), "pod_mtu": _mtu_fact(second, main),
                  "enforces": _enforces_fact(second)})
    return facts


def sources_evidence(main: str, second: str) -> Evidence:
    return Evidence.table("Where the grader read each fact", ("question", "read from"), [
        ("main_cni, second_cni", f"the CNI's agent pods on each cluster ({main}; {second})"),
        ("encapsulation", f"/proc/net/route and /sys/class/net on the first worker of {main} (host network), the "
                          f"route to pod {WEB} on the second worker"),
        ("pod_mtu", f"/sys/class/net/eth0/mtu and `ip route get <frontend>` inside pod {NS}/{WEB} on {second}"),
        ("enforces", f"intruder -> {WEB}:{PORT} on {second}, with no policy, then under the grader's {GUARD_POLICY}"),
    ])


def _second_prober(ctx, cluster):
    if ctx.runner_factory is not None:
        return ctx.runner_factory(cluster)
    return probe.BatchRunner(cluster)


def identify_live(ctx) -> StepResult:
    main = read_data_plane(ctx.cluster, ctx.prober, ctx.namespace())
    found = comparison.find(ctx)
    if isinstance(found, comparison.Missing):
        second: DataPlane | comparison.Missing = found
        second_name = "no second cluster"
    else:
        second_name = found.context
        with comparison.prepared(ctx, found, ctx.spec.namespaces, ("NetworkPolicy",)):
            second = read_data_plane(found, _second_prober(ctx, found), ctx.namespace(), enforcement=True)
    return judge_answers(ctx.answers, identify_facts(main, second),
                         evidence=(sources_evidence(main.context or "the main cluster", second_name),),
                         hint=f'each question says where to look (notebook section 2); hint("{LAB_ID}", "identify") '
                              f'gives more')


# ================================================================================ choose
@dataclass(frozen=True)
class Scenario:
    question: Question
    right: tuple[str, ...]
    because: Mapping[str, str]


def _scenario(qid: str, prompt: str, right: tuple[str, ...], because: Mapping[str, str]) -> Scenario:
    return Scenario(Question(qid, prompt, "choice", cni.KEYS), right, because)


NO_ENGINE = "Flannel has no NetworkPolicy engine: policies are accepted by the API server and silently not enforced"
ARCHIVED = "Weave Net's repository was archived in 2024: no fixes, no releases"
L4_ONLY = ("matches addresses, ports and labels (L3/L4): rules on HTTP methods and paths (L7) need Cilium's "
           "Envoy-based CiliumNetworkPolicy")
SCENARIOS = (
    _scenario("l7_policy", "the API team wants policies such as 'only GET /health from the monitoring pods'",
              ("cilium",), {"calico": f"Calico's policy {L4_ONLY}", "canal": f"Canal's (Calico's) policy {L4_ONLY}",
                            "kube-router": f"kube-router's iptables policy {L4_ONLY}", "flannel": NO_ENGINE,
                            "flannel+kube-router": f"kube-router's iptables policy {L4_ONLY}",
                            "weave": f"Weave Net's policy {L4_ONLY}; and {ARCHIVED}"}),
    _scenario("bgp_fabric", "pods routed without any overlay by BGP peering with the data centre's routers; the "
                            "network team audits every rule with iptables-save and needs cluster-wide policies",
              ("calico",), {"cilium": "Cilium keeps its policy in eBPF maps, not iptables: iptables-save shows none "
                                      "of it (it does speak BGP)",
                            "kube-router": "kube-router peers over BGP and enforces with iptables, but only namespaced "
                                           "NetworkPolicy: cluster-wide policy is Calico's GlobalNetworkPolicy",
                            "flannel": "Flannel does not speak BGP, and it has no NetworkPolicy engine",
                            "canal": "Canal routes with Flannel's VXLAN overlay, not BGP",
                            "flannel+kube-router": "Flannel's VXLAN overlay routes the pods here, not BGP",
                            "weave": f"Weave Net runs its own overlay, not BGP; and {ARCHIVED}"}),
    _scenario("no_policy_overlay", "a small training cluster on any network: the simplest overlay, no NetworkPolicy "
                                   "needed, as few moving parts as possible",
              ("flannel",), {k: "it ships a policy engine the scenario does not need: more moving parts than the "
                                "simplest overlay" for k in ("canal", "calico", "cilium", "flannel+kube-router")}
              | {"kube-router": "kube-router routes without an overlay and ships a policy engine the scenario does not "
                                "need", "weave": ARCHIVED}),
    _scenario("keep_flannel_add_policy", "a running Flannel cluster must start enforcing NetworkPolicy without "
                                         "changing how pods are routed",
              ("canal", "flannel+kube-router"),
              {"flannel": NO_ENGINE, "calico": "Calico alone replaces Flannel's routing; Canal keeps Flannel and adds "
                                               "Calico's policy engine",
               "cilium": "Cilium replaces Flannel's data plane instead of keeping it",
               "kube-router": "kube-router alone replaces Flannel's routing (run it in firewall mode beside Flannel: "
                              "that is the offline Canal)", "weave": f"Weave Net replaces Flannel; and {ARCHIVED}"}),
    _scenario("new_cluster_avoid", "which CNI of the table should a new cluster NOT adopt, because its project is no "
                                   "longer maintained?",
              ("weave",), {k: f"{k} is maintained (releases continue); {ARCHIVED}" for k in cni.KEYS if k != "weave"}
              | {"flannel": f"Flannel is maintained (flannel-io/flannel still releases); {ARCHIVED}"}),
)
CHOICES = tuple(s.question for s in SCENARIOS)


def choose_facts() -> dict[str, Fact]:
    """The facts of ``choose``: what the seed's table (brought up to date) says, no cluster involved."""
    return {s.question.id: observed(*s.right, because=s.because) for s in SCENARIOS}


def choose_check(ctx) -> StepResult:
    return judge_answers(ctx.answers, choose_facts(),
                         hint=f'match each requirement to a column of the table in notebook section 5; '
                              f'hint("{LAB_ID}", "choose") gives more')


EXERCISES = {
    "identify": Exercise(live=identify_live, questions=QUESTIONS),
    "choose": Exercise(live=choose_check, questions=CHOICES),
}
PARTS = ("lab02_cni_enforce", "lab02_cni_mtu")
