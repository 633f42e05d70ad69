"""Reading a node's data plane from inside a host-network pod: its routes, its network devices, and from both how a
packet to another node's pods leaves the node (a tunnel device, or routed to the other node's address).

Everything here is pure text parsing but ``agent_pod`` (the grader's host-network pod manifest); the lab modules run
the commands and hand the text over, so every data plane (kube-router, Flannel, Calico, Cilium) is unit-tested on
real /proc and /sys output. Read from /proc and /sys rather than `ip route` / `ip -d link` because every image has
`cat` and `sh`, and the upstream probe image is not guaranteed to ship iproute2.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders import probe
from graders.errors import ClusterError


def agent_pod(namespace: str, name: str, image: str, node: str) -> dict:
    """A host-network pod of the grader's, pinned to ``node``: a program in the node's network namespace."""
    manifest = probe.probe_pod(namespace, name, image, node=node)
    spec = manifest["spec"]
    spec["hostNetwork"] = True
    spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    container = spec["containers"][0]
    container["args"] = ["pause"]  # nothing listens: a host-network server would take a port of the node
    del container["ports"], container["readinessProbe"]
    return manifest


def route_mtu(text: str) -> int | None:
    """The MTU `ip route get <address>` shows for the route ("... cache mtu 1450"), None when it shows none."""
    found = re.search(r"\bmtu (\d+)", text)
    return int(found.group(1)) if found else None


def pod_mtus(cluster, ns: str, pod: str, towards: str) -> tuple[int | None, int | None]:
    """(eth0's MTU, the route's MTU towards ``towards``) inside a pod; None where it could not be read or the route
    sets none. Cilium keeps eth0 at 1500 and puts its tunnel's 50 bytes on the pod's route."""
    eth0 = read_in_pod(cluster, ns, pod, ["cat", "/sys/class/net/eth0/mtu"]).strip()
    return (int(eth0) if eth0.isdigit() else None,
            route_mtu(read_in_pod(cluster, ns, pod, ["ip", "route", "get", towards])))


def smallest(*mtus: int | None) -> int | None:
    """The MTU a packet actually gets: the smallest one known."""
    known = [m for m in mtus if m]
    return min(known) if known else None


def read_in_pod(cluster, ns: str, pod: str, argv: Sequence[str]) -> str:
    """What a command printed in a pod (``cat /proc/net/route``...); "" when it failed or the pod cannot be reached:
    the caller reports what it could not read."""
    try:
        rc, out, _ = cluster.exec(ns, pod, list(argv), timeout=10)
    except ClusterError:
        return ""
    return out if rc == 0 else ""


# ---------------------------------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class Route:
    """One line of a node's main routing table (/proc/net/route)."""

    destination: ipaddress.IPv4Network
    gateway: str | None  # None: no next hop (the destination is on the device's link, or it is a tunnel)
    device: str
    metric: int = 0


def parse_proc_route(text: str) -> list[Route]:
    """/proc/net/route: hex, little-endian IPv4 fields."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, gateway, mask = (ipaddress.IPv4Address(bytes.fromhex(f)[::-1]) for f in (fields[1], fields[2], fields[7]))
            network = ipaddress.IPv4Network(f"{dest}/{mask}")
            metric = int(fields[6])
        except ValueError:
            continue
        routes.append(Route(network, None if int(gateway) == 0 else str(gateway), fields[0], metric))
    return routes


def route_to(routes: Sequence[Route], address: str) -> Route | None:
    """The route the kernel picks for ``address``: the longest matching prefix, then the lowest metric."""
    ip = ipaddress.IPv4Address(address)
    matching = [r for r in routes if ip in r.destination]
    return max(matching, key=lambda r: (r.destination.prefixlen, -r.metric), default=None)


# ---------------------------------------------------------------------------------------------------- links
# One line per device: name, ARP hardware type, MTU, DEVTYPE from its uevent ("-" when a value is absent). Plain sh
# (no sed or awk): the offline probe image is built here and guaranteed nothing more.
LINKS_SCRIPT = (
    'for d in /sys/class/net/*; do n=${d##*/}; t=$(cat "$d/type" 2>/dev/null); m=$(cat "$d/mtu" 2>/dev/null); '
    'dt=-; while read -r l; do case "$l" in DEVTYPE=*) dt=${l#DEVTYPE=};; esac; done < "$d/uevent"; '
    'echo "$n ${t:--} ${m:--} $dt"; done'
)
ARPHRD_ETHER, ARPHRD_TUNNEL, ARPHRD_LOOPBACK = 1, 768, 772  # linux/if_arp.h; 768 is an IPIP tunnel


@dataclass(frozen=True)
class Link:
    """One network device of a node, as /sys/class/net shows it."""

    name: str
    arp_type: int | None
    mtu: int | None
    devtype: str = ""  # "vxlan", "geneve", "bridge", "veth"...; "" when the kernel sets none (eth0 of a kind node)


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_links(text: str) -> dict[str, Link]:
    """LINKS_SCRIPT's output, by device name; lines that are not four fields are skipped (a device that vanished
    between listing and reading)."""
    links = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 4:
            continue
        name, arp_type, mtu, devtype = fields
        links[name] = Link(name, _number(arp_type), _number(mtu), "" if devtype == "-" else devtype.lower())
    return links


def node_mtu(links: Mapping[str, Link], routes: Sequence[Route]) -> int | None:
    """The MTU of the node's own network: the device of its default route (eth0 on a kind node)."""
    default = next((r for r in routes if r.destination.prefixlen == 0), None)
    link = links.get(default.device if default else "eth0") or links.get("eth0")
    return link.mtu if link else None


# ---------------------------------------------------------------------------------------------------- crossing
ENCAPSULATIONS = ("vxlan", "geneve", "ipip", "routed")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Crossing:
    """How a packet to another node's pod leaves this node: ``kind`` one of ENCAPSULATIONS (or UNKNOWN), through
    ``device``, and ``how`` in a sentence a learner can check with `ip route get` and `ip -d link`."""

    kind: str
    device: str
    how: str

    @property
    def tunnel(self) -> bool:
        return self.kind in ("vxlan", "geneve", "ipip")


def crossing(routes: Sequence[Route], links: Mapping[str, Link], destination: str,
             node_ips: Sequence[str]) -> Crossing:
    """Classify the route to ``destination`` (a pod IP on another node): by the device it leaves through — VXLAN
    or Geneve by the device's DEVTYPE, IP-in-IP by its ARP type; Cilium's cilium_host hands the packet to an eBPF
    program that tunnels on cilium_vxlan/cilium_geneve when they exist — or "routed" when the next hop is another
    node's own address and no tunnel device is involved."""
    route = route_to(routes, destination)
    if route is None:
        return Crossing(UNKNOWN, "", f"no route on the node matches {destination}")
    via = f"{destination} -> {route.destination} via {route.gateway or 'no gateway'} dev {route.device}"
    if route.device.startswith("cilium_"):
        for device, kind in (("cilium_vxlan", "vxlan"), ("cilium_geneve", "geneve")):
            if device in links:
                return Crossing(kind, device, f"{via}: Cilium's eBPF program on cilium_host encapsulates the packet "
                                              f"on {device} ({kind.upper()})")
        return Crossing("routed", route.device, f"{via}: Cilium in native-routing mode (no cilium_vxlan or "
                                                f"cilium_geneve device)")
    link = links.get(route.device)
    if link is not None and link.devtype in ("vxlan", "geneve"):
        return Crossing(link.devtype, route.device, f"{via}: {route.device} is a {link.devtype.upper()} device "
                                                    f"(DEVTYPE={link.devtype})")
    if link is not None and link.arp_type == ARPHRD_TUNNEL:
        return Crossing("ipip", route.device, f"{via}: {route.device} is an IP-in-IP tunnel (ARP type 768)")
    if route.gateway and route.gateway in node_ips:
        return Crossing("routed", route.device, f"{via}: the next hop is another node's own address, no tunnel "
                                                f"device")
    return Crossing(UNKNOWN, route.device, f"{via}: neither a tunnel device nor another node's address")
