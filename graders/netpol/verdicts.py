"""Verdicts: which policy pieces allow a connection and which targets select a pod without admitting it.

``PolicyEngine.evaluate(src, dst, port, protocol)`` returns a ``Verdict`` with every detail of one connection --
never a bare bool -- so ``graders.netpol.explain`` only has to put it into words; ``PolicyEngine.matrix(port,
protocol)`` returns ``{src: {dst: bool}}`` for every ordered pair of distinct pods, from per-policy selections
worked out once (bitsets over pod indices), not per pair. Both follow the same rules; the unit tests check
they agree.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graders.netpol.compile import Direction, PeerMiss, Policy, PolicyTarget, PortMiss, Rule, RulePeer, RulePort
from graders.netpol.fields import PROTOCOLS, PolicyError
from graders.netpol.inventory import Inventory, inventory_from_objects
from graders.netpol.pods import Namespace, Pod
from graders.netpol.selectors import LabelSelector


class UnknownPod(PolicyError):
    """A pod named by the caller ("ns/name") is not among the pods the manifests describe."""



@dataclass(frozen=True)
class PeerResult:
    peer: RulePeer
    miss: PeerMiss | None

    @property
    def matched(self) -> bool:
        return self.miss is None


@dataclass(frozen=True)
class PortResult:
    port: RulePort
    miss: PortMiss | None

    @property
    def matched(self) -> bool:
        return self.miss is None


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    peers: tuple[PeerResult, ...]
    ports: tuple[PortResult, ...]

    @property
    def peer_ok(self) -> bool:
        return self.rule.all_peers or any(p.matched for p in self.peers)

    @property
    def port_ok(self) -> bool:
        return self.rule.all_ports or any(p.matched for p in self.ports)

    @property
    def admits(self) -> bool:
        return self.peer_ok and self.port_ok


@dataclass(frozen=True)
class Admission:
    """The piece that lets a connection through: target (policy + direction), rule, and the peer and port
    items that matched (None when the rule has no peers / no ports, i.e. all of them)."""

    target: PolicyTarget
    rule: Rule
    peer: RulePeer | None
    port: RulePort | None


@dataclass(frozen=True)
class TargetResult:
    target: PolicyTarget
    rules: tuple[RuleResult, ...]

    @property
    def admissions(self) -> tuple[Admission, ...]:
        out = []
        for r in self.rules:
            if not r.admits:
                continue
            peers = [p.peer for p in r.peers if p.matched] or [None]
            port = next((p.port for p in r.ports if p.matched), None)
            out.extend(Admission(self.target, r.rule, peer, port) for peer in peers)
        return tuple(out)

    @property
    def admits(self) -> bool:
        return any(r.admits for r in self.rules)


@dataclass(frozen=True)
class DirectionVerdict:
    """One side of a connection: the source's egress or the destination's ingress.

    ``subject`` is the pod the policies select; ``peer`` the pod at the other end. No selecting target means
    the subject is not isolated in this direction and everything is allowed.
    """

    direction: Direction
    subject: Pod
    peer: Pod
    selecting: tuple[TargetResult, ...]
    peer_namespace: Namespace | None = None  # the peer's namespace, labels included, for namespaceSelector words
    # Targets in the subject's namespace, for this direction, whose podSelector misses the subject -- with
    # their rules evaluated anyway: one that would admit the connection is usually a label typo.
    not_selecting: tuple[TargetResult, ...] = ()
    # Policies in the subject's namespace with rules for this direction that policyTypes leaves out.
    ignored: tuple[Policy, ...] = ()

    @property
    def isolated(self) -> bool:
        return bool(self.selecting)

    @property
    def allowing(self) -> tuple[Admission, ...]:
        return tuple(a for t in self.selecting for a in t.admissions)

    @property
    def denying(self) -> tuple[TargetResult, ...]:
        return tuple(t for t in self.selecting if not t.admits)

    @property
    def allowed(self) -> bool:
        return not self.selecting or any(t.admits for t in self.selecting)

    @property
    def near_misses(self) -> tuple[TargetResult, ...]:
        """Targets that would admit the connection if their podSelector matched the subject."""
        return tuple(t for t in self.not_selecting if t.admits)


@dataclass(frozen=True)
class Verdict:
    source: Pod
    destination: Pod
    port: int
    protocol: str
    egress: DirectionVerdict
    ingress: DirectionVerdict

    @property
    def allowed(self) -> bool:
        # Policies on both ends must agree: the source may send AND the destination may receive.
        return self.egress.allowed and self.ingress.allowed


def check_query(port: int, protocol: str) -> tuple[int, str]:
    """Validate a (port, protocol) question; raises PolicyError in words."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise PolicyError(f"port {port!r} is not a number in 1..65535")
    protocol = str(protocol).upper()
    if protocol not in PROTOCOLS:
        raise PolicyError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return port, protocol


_NO_POD = Pod("", "")  # stands in for the destination when a port item is not named


class PolicyEngine:
    """Answers reachability questions about one Inventory.

    Selections (which pods a target isolates, which pods a peer matches) are computed once, as bitsets over
    pod indices, so a whole matrix is a few set operations per pod rather than a policy walk per pair.
    """

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.pods = inventory.pods
        self._index = {p.key: i for i, p in enumerate(self.pods)}
        self._all = (1 << len(self.pods)) - 1
        self._selector_cache: dict[tuple[str | None, LabelSelector | None, LabelSelector | None], int] = {}
        self.targets = tuple(t for p in inventory.policies for t in p.targets)
        self._selected = {id(t): self._pods_matching(t.policy.namespace, None, t.pod_selector) for t in self.targets}
        self._peer_masks = {id(peer): self._peer_mask(peer)
                            for t in self.targets for r in t.rules for peer in r.peers}
        self._targets_of: dict[Direction, list[list[PolicyTarget]]] = {
            d: [[t for t in self.targets if t.direction is d and self._selected[id(t)] >> i & 1]
                for i in range(len(self.pods))]
            for d in Direction
        }

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> PolicyEngine:
        return cls(inventory_from_objects(objects, default_namespace))

    # ---- precomputation -------------------------------------------------------------------------------------

    def _pods_matching(self, namespace: str | None, namespace_selector: LabelSelector | None,
                       pod_selector: LabelSelector | None) -> int:
        """Bitset of pods in ``namespace`` (or in namespaces matching ``namespace_selector``) matching
        ``pod_selector`` (None: any pod)."""
        key = (namespace, namespace_selector, pod_selector)
        if key not in self._selector_cache:
            namespaces = self.inventory.namespaces
            ns_ok = {n: (n == namespace) if namespace is not None else namespace_selector.matches(ns.labels)
                     for n, ns in namespaces.items()}
            mask = 0
            for i, pod in enumerate(self.pods):
                if ns_ok[pod.namespace] and (pod_selector is None or pod_selector.matches(pod.labels)):
                    mask |= 1 << i
            self._selector_cache[key] = mask
        return self._selector_cache[key]

    def _peer_mask(self, peer: RulePeer) -> int:
        if peer.ip_block is not None:
            mask = 0
            for i, pod in enumerate(self.pods):
                if peer.ip_block.miss(pod.ips) is None:
                    mask |= 1 << i
            return mask
        if peer.namespace_selector is None:
            return self._pods_matching(peer.policy_namespace, None, peer.pod_selector)
        return self._pods_matching(None, peer.namespace_selector, peer.pod_selector)

    def _port_mask(self, rule: Rule, port: int, protocol: str) -> int:
        """Destinations for which some port item of the rule matches (named ports depend on the pod)."""
        if rule.all_ports:
            return self._all
        mask = 0
        for item in rule.ports:
            if isinstance(item.port, str):
                for i, pod in enumerate(self.pods):
                    if item.miss(port, protocol, pod) is None:
                        mask |= 1 << i
            elif item.miss(port, protocol, _NO_POD) is None:  # a number or range matches every destination
                return self._all
        return mask

    def _rule_peers(self, rule: Rule) -> int:
        if rule.all_peers:
            return self._all
        mask = 0
        for peer in rule.peers:
            mask |= self._peer_masks[id(peer)]
        return mask

    # ---- questions ------------------------------------------------------------------------------------------

    def pod(self, key: str) -> Pod:
        if key not in self._index:
            known = ", ".join(self._index) or "none"
            raise UnknownPod(f"unknown pod {key!r} (pods in the manifests: {known})")
        return self.pods[self._index[key]]

    def matrix(self, port: int = 80, protocol: str = "TCP") -> dict[str, dict[str, bool]]:
        """``{src: {dst: allowed}}`` for every ordered pair of distinct pods (same-pod traffic is left out)."""
        port, protocol = check_query(port, protocol)
        n = len(self.pods)
        port_masks: dict[int, int] = {}
        peer_masks: dict[int, int] = {}
        for t in self.targets:
            for r in t.rules:
                port_masks[id(r)] = self._port_mask(r, port, protocol)
                peer_masks[id(r)] = self._rule_peers(r)
        # sources[d]: who may reach pod d through its ingress; destinations[s]: whom s may reach by egress.
        sources = []
        for d in range(n):
            targets = self._targets_of[Direction.INGRESS][d]
            if not targets:
                sources.append(self._all)
                continue
            mask = 0
            for t in targets:
                for r in t.rules:
                    if port_masks[id(r)] >> d & 1:
                        mask |= peer_masks[id(r)]
            sources.append(mask)
        destinations = []
        for s in range(n):
            targets = self._targets_of[Direction.EGRESS][s]
            if not targets:
                destinations.append(self._all)
                continue
            mask = 0
            for t in targets:
                for r in t.rules:
                    mask |= peer_masks[id(r)] & port_masks[id(r)]
            destinations.append(mask)
        keys = [p.key for p in self.pods]
        return {
            keys[s]: {keys[d]: bool(destinations[s] >> d & 1 and sources[d] >> s & 1) for d in range(n) if d != s}
            for s in range(n)
        }

    def is_allowed(self, source: str, destination: str, port: int = 80, protocol: str = "TCP") -> bool:
        return self.evaluate(source, destination, port, protocol).allowed

    def evaluate(self, source: str, destination: str, port: int = 80, protocol: str = "TCP") -> Verdict:
        """Every piece that bears on one connection, for ``graders.netpol.explain`` to put into words."""
        port, protocol = check_query(port, protocol)
        src, dst = self.pod(source), self.pod(destination)
        return Verdict(
            src, dst, port, protocol,
            egress=self._direction(Direction.EGRESS, src, dst, port, protocol),
            ingress=self._direction(Direction.INGRESS, dst, src, port, protocol),
        )

    def _direction(self, direction: Direction, subject: Pod, peer: Pod, port: int, protocol: str) -> DirectionVerdict:
        destination = peer if direction is Direction.EGRESS else subject
        peer_ns = self.inventory.namespaces[peer.namespace]
        selecting, not_selecting = [], []
        for t in self.targets:
            if t.direction is not direction or t.policy.namespace != subject.namespace:
                continue
            rules = tuple(
                RuleResult(
                    r,
                    tuple(PeerResult(p, p.miss(peer, peer_ns)) for p in r.peers),
                    tuple(PortResult(p, p.miss(port, protocol, destination)) for p in r.ports),
                )
                for r in t.rules
            )
            (selecting if t.selects(subject) else not_selecting).append(TargetResult(t, rules))
        ignored = tuple(p for p in self.inventory.policies
                        if direction in p.ignored and p.ref.namespace == subject.namespace
                        and p.pod_selector.matches(subject.labels))
        return DirectionVerdict(direction, subject, peer, tuple(selecting), peer_ns, tuple(not_selecting), ignored)
