"""Lab 02, exercise mtu-cost: what encapsulation costs, measured with don't-fragment pings.

The learner finds, on each cluster, the largest ICMP payload (``ping -M do -s N``) that goes from a pod on the first
worker to pod web on the second worker without being fragmented, and from the two numbers what the second cluster's
tunnel costs per packet. The grader measures the same thing from its own pod ``pinger`` (iputils' ping: neither
agnhost image can forbid fragmenting). It starts from the MTU the kernel will use towards web — eth0's, or the
route's when the route sets a smaller one (Cilium keeps eth0 at 1500 and puts its tunnel's cost on the route) — and
checks the size on both sides of the edge; when the path is smaller still, it searches the edge in a bounded number
of pings. Every ping goes to the grader's own pod ``web``, in the lab's namespace.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from graders import comparison, probe, versions
from graders.dataplane import pod_mtus, smallest
from graders.errors import K8sLabError
from graders.exercise import Exercise
from graders.labs import lab02_cni as lab
from graders.model import Evidence, StepResult
from graders.questions import Fact, Question, judge as judge_answers, not_observable, observed, verdicts

PINGER = "pinger"
IP_ICMP_HEADERS = 28            # what `ping -s N` adds on the wire: a 20-byte IPv4 header and an 8-byte ICMP header
VXLAN_OVERHEAD = 50             # outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14
SMALL = 56                      # ping's default payload: if this does not get through, nothing can be measured
MAX_SEARCH_PINGS = 12           # a binary search over 0..65507 needs 16; between 56 and an MTU, 11 are enough
PING_TIMEOUT_S = 30             # one exec of at most a few pings, each at most ~1.2 s (-c 2 -i 0.2 -W 1)

QUESTIONS = (
    Question("main_payload", "on the main cluster: the largest `ping -M do -s N` payload from a pod on the first "
                             "worker to pod web that gets through", "number"),
    Question("second_payload", "the same on the second cluster", "number"),
    Question("overhead", "how many bytes per packet the second cluster's encapsulation costs (main minus second)",
             "number"),
)
ANSWERS_FILE = "mtu.yaml"


def netprobe_image(cluster) -> str:
    """iputils' ping: the offline build's image on a cluster built offline (its agnhost is ours), else the pinned
    upstream debugging image."""
    if probe.agnhost_image(cluster).startswith("k8slab/"):
        return versions.get("NETPROBE_IMAGE_OFFLINE", "k8slab/netprobe:bookworm")
    return versions.get("NETPROBE_IMAGE_ONLINE", "docker.io/nicolaka/netshoot:v0.13")


def pinger_pod(namespace: str, image: str, node: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PINGER, "namespace": namespace,
                     "labels": {probe.PROBE_LABEL: "true", probe.PROBE_NAME_LABEL: PINGER, "app": PINGER}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "ping", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "infinity"],
                            "securityContext": {"allowPrivilegeEscalation": False}}],
        },
    }


# ================================================================================ measuring (pure, given a ping)
def ping_script(target: str, sizes: Iterable[int]) -> str:
    """One shell line that tries each payload size once with fragmenting forbidden and prints "<size> ok|no"."""
    tries = " ".join(str(int(s)) for s in sizes)
    return (f"for s in {tries}; do if ping -M do -c 2 -i 0.2 -W 1 -s $s {shlex.quote(target)} >/dev/null 2>&1; "
            f"then echo \"$s ok\"; else echo \"$s no\"; fi; done")


def parse_pings(text: str) -> dict[int, bool]:
    return {int(m.group(1)): m.group(2) == "ok" for m in re.finditer(r"^(\d+) (ok|no)$", text, re.M)}


@dataclass(frozen=True)
class Edge:
    """The largest payload that got through (None: could not be measured, ``problem`` says why), every size tried
    with its result (for the evidence), and the MTUs the pinger's kernel showed: eth0's and the route's to web (None
    when the route sets none)."""

    largest: int | None
    tried: Mapping[int, bool]
    eth0_mtu: int | None = None
    route_mtu: int | None = None
    problem: str = ""

    @property
    def path_mtu(self) -> int | None:
        return smallest(self.eth0_mtu, self.route_mtu)


def find_edge(ping: Callable[[list[int]], dict[int, bool]], eth0_mtu: int, via_route: int | None = None) -> Edge:
    """The largest payload ``ping`` gets through: first at the kernel's own limit (the smaller of eth0's and the
    route's MTU, less 28) and one byte above it; if even that is too big for the path, a binary search between 56
    bytes and it, at most MAX_SEARCH_PINGS pings."""
    mtus = dict(eth0_mtu=eth0_mtu, route_mtu=via_route)
    top = smallest(eth0_mtu, via_route) - IP_ICMP_HEADERS
    tried = dict(ping([SMALL, top, top + 1]))
    if not tried.get(SMALL):
        return Edge(None, tried, **mtus, problem=f"even a {SMALL}-byte ping from {PINGER} to {lab.WEB} got no answer "
                                                  f"(a NetworkPolicy left in the namespace? the ping could not run?)")
    if tried.get(top + 1):
        return Edge(None, tried, **mtus, problem=f"a {top + 1}-byte payload got through although the MTU towards "
                                                  f"{lab.WEB} is {top + IP_ICMP_HEADERS}: the ping did not forbid "
                                                  f"fragmenting")
    if tried.get(top):
        return Edge(top, tried, **mtus)
    low, high = SMALL, top  # low gets through, high does not
    for _ in range(MAX_SEARCH_PINGS):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        tried.update(ping([middle]))
        low, high = (middle, high) if tried.get(middle) else (low, middle)
    if high - low > 1:
        return Edge(None, tried, **mtus, problem=f"no edge found in {MAX_SEARCH_PINGS} pings")
    return Edge(low, tried, **mtus)


# ================================================================================ facts (pure)
MTU_NOT_PAYLOAD = ("that is {what}, the largest IP packet; `ping -s` sets the ICMP payload, which is {n} bytes "
                   "less (a 20-byte IP header and an 8-byte ICMP header)")
ROUTE_IS_SMALLER = ("eth0 would allow that much, but the route to web has a smaller MTU (`ip route get <web's IP>` "
                    "shows it): this CNI puts its tunnel's cost on the route, not on eth0")
SWAPPED = "that is what the other cluster lets through: the two clusters are swapped"
HEADERS = ("28 bytes are the IP and ICMP headers, which every ping carries on both clusters; the cost of the "
           "encapsulation is the difference between the two clusters' payloads")
NO_INNER_ETHERNET = ("outer IP (20) + UDP (8) + VXLAN (8) is 36, but VXLAN also carries the pod's own Ethernet "
                     "header (14 bytes) inside the tunnel")


def _payload_fact(edge: Edge | None, other: Edge | None, which: str) -> Fact:
    if edge is None or edge.largest is None:
        return not_observable(edge.problem if edge else "not measured")
    because: dict = {}
    if edge.eth0_mtu:
        because[edge.eth0_mtu] = MTU_NOT_PAYLOAD.format(what="eth0's MTU", n=IP_ICMP_HEADERS)
        if edge.route_mtu and edge.route_mtu < edge.eth0_mtu:
            because[edge.eth0_mtu - IP_ICMP_HEADERS] = ROUTE_IS_SMALLER
    if edge.route_mtu and edge.route_mtu not in because:
        because[edge.route_mtu] = MTU_NOT_PAYLOAD.format(what="the route's MTU", n=IP_ICMP_HEADERS)
    if other is not None and other.largest is not None and other.largest != edge.largest:
        because.setdefault(other.largest, SWAPPED)  # eth0's edge explained by the route says more than "swapped"
        if other.path_mtu and other.path_mtu not in because:
            because[other.path_mtu] = (f"{MTU_NOT_PAYLOAD.format(what='an MTU', n=IP_ICMP_HEADERS)}; and it is the "
                                       f"other cluster's")
    because.pop(edge.largest, None)
    return observed(edge.largest, because=because,
                    explain=lambda answer: (f"a {answer}-byte payload does not get through on the {which} cluster"
                                            if answer > edge.largest else
                                            f"larger payloads than {answer} bytes get through on the {which} cluster"
                                            f" (try `ping -M do -s` one byte more)"))


def _overhead_fact(main: Edge | None, second: Edge | None) -> Fact:
    if main is None or second is None or main.largest is None or second.largest is None:
        return not_observable("needs both clusters' payloads measured")
    cost = main.largest - second.largest
    because: dict = {IP_ICMP_HEADERS: HEADERS}
    if cost == VXLAN_OVERHEAD:
        because[VXLAN_OVERHEAD - 14] = NO_INNER_ETHERNET
    return observed(cost, because={k: v for k, v in because.items() if k != cost},
                    explain=lambda answer: "the cost is the main cluster's largest payload minus the second one's")


def mtu_facts(main: Edge, second: Edge | comparison.Missing) -> dict[str, Fact]:
    if isinstance(second, comparison.Missing):
        return {"main_payload": _payload_fact(main, None, "main"),
                "second_payload": not_observable(second.message), "overhead": not_observable(second.message)}
    return {"main_payload": _payload_fact(main, second, "main"),
            "second_payload": _payload_fact(second, main, "second"),
            "overhead": _overhead_fact(main, second)}


def edge_rows(context: str, edge: Edge, *, sizes: bool) -> list[tuple[str, str, str]]:
    """The pings the grader sent on one cluster. Their sizes give the answer away, so they are shown only once
    every answer is right (``sizes``); before that, only how many were sent and whether the edge was found."""
    if not edge.tried:
        return [(context, "-", edge.problem or "not measured")]
    if sizes:
        return [(context, str(size), "got through" if ok else "did not get through")
                for size, ok in sorted(edge.tried.items())]
    found = "edge found" if edge.largest is not None else edge.problem
    return [(context, f"{len(edge.tried)} sizes tried", found)]


# ================================================================================ live
def measure(cluster, namespace: str) -> Edge:
    """The world and the grader's pinger on ``cluster`` (pinger on the first worker, web on the second); the edge
    from pinger to web."""
    try:
        ips, workers = lab.deploy_world(cluster, namespace)
        cluster.ensure_pods([pinger_pod(namespace, netprobe_image(cluster), workers[0])])
        cluster.wait_ready([namespace], timeout=120)
    except K8sLabError as error:
        return Edge(None, {}, problem=error.message)
    eth0, via_route = pod_mtus(cluster, namespace, PINGER, ips[lab.WEB])
    if eth0 is None:
        return Edge(None, {}, problem=f"could not read eth0's MTU in the grader's pod {PINGER}")

    def ping(sizes: list[int]) -> dict[int, bool]:
        try:
            rc, out, _ = cluster.exec(namespace, PINGER, ["sh", "-c", ping_script(ips[lab.WEB], sizes)],
                                      timeout=PING_TIMEOUT_S)
        except K8sLabError:
            return {}
        return parse_pings(out) if rc == 0 else {}

    return find_edge(ping, eth0, via_route)


def mtu_live(ctx) -> StepResult:
    main = measure(ctx.cluster, ctx.namespace())
    found = comparison.find(ctx)
    measured = [(getattr(ctx.cluster, "context", "") or "main", main)]
    if isinstance(found, comparison.Missing):
        second: Edge | comparison.Missing = found
    else:
        with comparison.prepared(ctx, found, ctx.spec.namespaces, ("NetworkPolicy",)):
            second = measure(found, ctx.namespace())
        measured.append((found.context, second))
    facts = mtu_facts(main, second)
    all_right = all(v.right for v in verdicts(ctx.answers, facts))
    rows = [row for context, edge in measured for row in edge_rows(context, edge, sizes=all_right)]
    evidence = Evidence.table(f"Don't-fragment pings from {PINGER} (first worker) to {lab.WEB} (second worker)",
                              ("cluster", "payload (bytes)", "result"), rows)
    return judge_answers(ctx.answers, facts, evidence=(evidence,),
                         hint=f'ping -M do -s N from a pod on the first worker (notebook section 4); '
                              f'hint("{lab.LAB_ID}", "mtu-cost") gives more')


EXERCISES = {"mtu-cost": Exercise(live=mtu_live, questions=QUESTIONS)}
