"""Which IPv4 addresses a pod's policies let it talk to by address alone -- every address, not sample points.

A probe answers for one address; a statement like "api reaches the pod network and nowhere else" covers four
billion. The rules that decide for an address that is not a pod (a node, a client outside the cluster, a pod of a
node that joins later) are the ipBlock peers and the rules with no peers at all, so the whole answer is a union
of CIDRs minus their excepts: a finite set of intervals, compared exactly with the target's. A difference is
reported as ranges plus one example address, so a message can name what is wrong without naming the fix.

Selector peers are left out on purpose: they match pods by labels, never an address outside the pod network,
and the pods they match are judged cell by cell elsewhere. Ports are left out too (an address reachable on any
port counts): "nowhere else" has no port.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from graders.netpol.compile import Direction, PolicyRef
from graders.netpol.verdicts import PolicyEngine

_LAST = (1 << 32) - 1
Interval = tuple[int, int]  # first and last address, inclusive
RECOGNISABLE = ("169.254.169.254", "8.8.8.8", "192.0.2.10", "10.0.0.10", "10.245.0.10", "172.16.0.10",
                "192.168.0.10", "203.0.113.10")


@dataclass(frozen=True)
class AddressSet:
    """A set of IPv4 addresses as sorted, disjoint, non-adjacent intervals."""

    intervals: tuple[Interval, ...] = ()

    @classmethod
    def of(cls, *cidrs: str) -> AddressSet:
        return cls.union_of(_interval(cidr) for cidr in cidrs)

    @classmethod
    def everything(cls) -> AddressSet:
        return cls(((0, _LAST),))

    @classmethod
    def union_of(cls, intervals: Iterable[Interval]) -> AddressSet:
        merged: list[list[int]] = []
        for first, last in sorted(i for i in intervals if i[0] <= i[1]):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        return cls(tuple((a, b) for a, b in merged))

    def __or__(self, other: AddressSet) -> AddressSet:
        return AddressSet.union_of((*self.intervals, *other.intervals))

    def __sub__(self, other: AddressSet) -> AddressSet:
        result = []
        for first, last in self.intervals:
            start = first
            for low, high in other.intervals:
                if high < start or low > last:
                    continue
                if low > start:
                    result.append((start, low - 1))
                start = max(start, high + 1)
                if start > last:
                    break
            if start <= last:
                result.append((start, last))
        return AddressSet(tuple(result))

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def __contains__(self, address: str) -> bool:
        value = int(ipaddress.IPv4Address(address))
        return any(first <= value <= last for first, last in self.intervals)

    def example(self) -> str:
        """An address of the set a reader recognises (the cloud metadata service, a public resolver, a private
        range, a documentation address), else the tenth of its first range."""
        for address in RECOGNISABLE:
            if address in self:
                return address
        first, last = self.intervals[0]
        return str(ipaddress.IPv4Address(min(first + 10, last)))

    def describe(self, limit: int = 3) -> str:
        """The set as CIDRs (``a.b.c.d/n``), the first ``limit`` of them, and how many more."""
        networks = [n for first, last in self.intervals
                    for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(first),
                                                               ipaddress.IPv4Address(last))]
        shown = ", ".join(str(n) for n in networks[:limit])
        return shown + (f" and {len(networks) - limit} more range(s)" if len(networks) > limit else "")


def _interval(cidr: str) -> Interval:
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        return (1, 0)  # empty: the course's clusters are IPv4 (an IPv6 block admits no IPv4 address)
    return int(network.network_address), int(network.broadcast_address)


@dataclass(frozen=True)
class Grant:
    """One piece of a policy that lets addresses through: an ipBlock peer, or a rule with no peers."""

    policy: PolicyRef
    path: tuple[str | int, ...]  # the field, for a file:line
    text: str
    addresses: AddressSet
    all_ports: bool = True  # False: only on the rule's ports


def address_grants(engine: PolicyEngine, pod: str, direction: Direction) -> list[Grant] | None:
    """What lets addresses reach ``pod`` (INGRESS) or leave it (EGRESS) in ``direction``, piece by piece; None
    while no policy isolates it in that direction (every address)."""
    subject = engine.pod(pod)
    targets = [t for t in engine.targets if t.direction is direction and t.selects(subject)]
    if not targets:
        return None
    peers_key = "to" if direction is Direction.EGRESS else "from"
    grants = []
    for target in targets:
        for rule in target.rules:
            path: tuple[str | int, ...] = ("spec", direction.rules_key, rule.index)
            on = "" if rule.all_ports else f" on {rule.describe_ports()} only"
            if rule.all_peers:
                grants.append(Grant(target.policy, path, f"{direction.rules_key} rule {rule.index + 1} has no "
                                    f"'{peers_key}' (every address){on}", AddressSet.everything(), rule.all_ports))
            for peer in rule.peers:
                if peer.ip_block is not None:
                    block = AddressSet.of(peer.ip_block.cidr) - AddressSet.of(*peer.ip_block.excepts)
                    grants.append(Grant(target.policy, (*path, peers_key, peer.index, "ipBlock"),
                                        peer.ip_block.describe() + on, block, rule.all_ports))
    return grants


def reachable_addresses(engine: PolicyEngine, pod: str, direction: Direction, *,
                        every_port: bool = False) -> AddressSet:
    """The addresses ``pod`` may connect to (EGRESS) or accept connections from (INGRESS) on some port (on every
    port, with ``every_port``), as far as its own namespace's policies decide by address: everything while no
    policy isolates it in ``direction``."""
    return granted(address_grants(engine, pod, direction), every_port=every_port)


def granted(grants: list[Grant] | None, *, every_port: bool = False) -> AddressSet:
    """The union of ``grants`` (only those on every port, with ``every_port``); everything for None (no isolation)."""
    if grants is None:
        return AddressSet.everything()
    allowed = AddressSet()
    for grant in grants:
        if grant.all_ports or not every_port:
            allowed = allowed | grant.addresses
    return allowed
