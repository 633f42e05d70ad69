"""NetworkPolicy documents compiled into targets, rules, peers and ports that remember where they were written.

As in Cyclonus, a policy compiles into one ``PolicyTarget`` per policy type it has; each rule, peer and port
keeps its (1-based) position in the manifest so a verdict can name it.
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from graders.netpol.fields import PolicyError, object_ref, read_int, read_list, read_protocol
from graders.netpol.pods import Namespace, Pod
from graders.netpol.selectors import LabelSelector


class Direction(str, Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    @property
    def rules_key(self) -> str:
        return "ingress" if self is Direction.INGRESS else "egress"

    @property
    def peers_key(self) -> str:
        return "from" if self is Direction.INGRESS else "to"



class PeerMiss(str, Enum):
    """Why a peer does not match a pod (each value is a different fix for the learner)."""

    OTHER_NAMESPACE = "other-namespace"  # podSelector-only peer: selects pods of the policy's namespace only
    NAMESPACE_LABELS = "namespace-labels"
    POD_LABELS = "pod-labels"
    NO_IP = "no-ip"
    OUTSIDE_CIDR = "outside-cidr"
    IN_EXCEPT = "in-except"


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> tuple[int, int]:
    """(IP version, integer value); parsed once per address, since every ipBlock peer checks every pod."""
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


def _span(cidr: str) -> tuple[int, int, int]:
    """(IP version, first, last) of a CIDR as integers: containment becomes two comparisons."""
    network = ipaddress.ip_network(cidr, strict=False)
    return network.version, int(network.network_address), int(network.broadcast_address)


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr, strict=False)

    @functools.cached_property
    def _spans(self) -> tuple[tuple[int, int, int], tuple[tuple[int, int, int], ...]]:
        return _span(self.cidr), tuple(_span(e) for e in self.excepts)

    def miss(self, ips: tuple[str, ...]) -> PeerMiss | None:
        """None when one of the pod's IPs is inside ``cidr`` and outside every ``except``."""
        if not ips:
            return PeerMiss.NO_IP
        (version, first, last), excepts = self._spans
        worst = PeerMiss.OUTSIDE_CIDR
        for text in ips:
            ip_version, ip = _address(text)
            if ip_version != version or not first <= ip <= last:
                continue
            if any(ip_version == v and low <= ip <= high for v, low, high in excepts):
                worst = PeerMiss.IN_EXCEPT
                continue
            return None
        return worst

    def describe(self) -> str:
        return f"ipBlock {self.cidr}" + (f" except {', '.join(self.excepts)}" if self.excepts else "")


@dataclass(frozen=True)
class RulePeer:
    """One item of a rule's ``from``/``to`` list. Items are ORed; the selectors inside one item are ANDed."""

    index: int
    policy_namespace: str
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def miss(self, pod: Pod, namespace: Namespace) -> PeerMiss | None:
        """None when this peer matches the pod; otherwise the first reason it does not."""
        if self.ip_block is not None:
            return self.ip_block.miss(pod.ips)
        if self.namespace_selector is None:
            if pod.namespace != self.policy_namespace:
                return PeerMiss.OTHER_NAMESPACE
        elif not self.namespace_selector.matches(namespace.labels):
            return PeerMiss.NAMESPACE_LABELS
        if self.pod_selector is not None and not self.pod_selector.matches(pod.labels):
            return PeerMiss.POD_LABELS
        return None

    def describe(self) -> str:
        if self.ip_block is not None:
            return self.ip_block.describe()
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector.describe()}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector.describe()}")
        return " AND ".join(parts)


class PortMiss(str, Enum):
    PROTOCOL = "protocol"
    NUMBER = "number"
    NAMED_PORT_MISSING = "named-port-missing"  # the destination pod has no container port with that name/protocol
    NAMED_PORT_NUMBER = "named-port-number"  # the name resolves, but to another number


@dataclass(frozen=True)
class RulePort:
    """One ``ports`` item: number, name or range (``endPort``); protocol defaults to TCP."""

    index: int
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None

    def miss(self, port: int, protocol: str, destination: Pod) -> PortMiss | None:
        if protocol != self.protocol:
            return PortMiss.PROTOCOL
        if self.port is None:
            return None
        if isinstance(self.port, str):
            # Named ports always name a port of the destination pod, for ingress and egress alike.
            resolved = destination.named_port(self.port, self.protocol)
            if resolved is None:
                return PortMiss.NAMED_PORT_MISSING
            return None if resolved.port == port else PortMiss.NAMED_PORT_NUMBER
        high = self.end_port if self.end_port is not None else self.port
        return None if self.port <= port <= high else PortMiss.NUMBER

    def describe(self) -> str:
        if self.port is None:
            return f"all {self.protocol} ports"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    """One ``ingress``/``egress`` item. No peers: every peer; no ports: every port (absent and ``[]`` alike)."""

    direction: Direction
    index: int
    peers: tuple[RulePeer, ...] = ()
    ports: tuple[RulePort, ...] = ()

    @property
    def all_peers(self) -> bool:
        return not self.peers

    @property
    def all_ports(self) -> bool:
        return not self.ports

    def describe_ports(self) -> str:
        return "[" + ", ".join(p.describe() for p in self.ports) + "]" if self.ports else "all ports"


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PolicyTarget:
    """What one policy does in one direction: the pods it isolates and the rules that let traffic through.
    No rules: the selected pods are isolated and nothing is allowed (by this policy)."""

    policy: PolicyRef
    direction: Direction
    pod_selector: LabelSelector
    rules: tuple[Rule, ...] = ()

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.policy.namespace and self.pod_selector.matches(pod.labels)


@dataclass(frozen=True)
class Policy:
    """A compiled NetworkPolicy. ``ignored`` lists directions whose rules are written but left out of
    ``policyTypes`` (a classic mistake: egress rules with ``policyTypes: [Ingress]`` do nothing)."""

    ref: PolicyRef
    pod_selector: LabelSelector
    policy_types: tuple[Direction, ...]
    policy_types_given: bool
    targets: tuple[PolicyTarget, ...]
    ignored: tuple[Direction, ...] = ()

    def target(self, direction: Direction) -> PolicyTarget | None:
        return next((t for t in self.targets if t.direction is direction), None)



def _parse_ip_block(raw: Any, where: str) -> IPBlock:
    if not isinstance(raw, Mapping) or not raw.get("cidr"):
        raise ValueError(f"{where}: ipBlock needs a cidr")
    try:
        network = ipaddress.ip_network(str(raw["cidr"]), strict=False)
    except ValueError as err:
        raise ValueError(f"{where}.cidr: {err}") from None
    excepts = []
    for i, value in enumerate(read_list(raw.get("except"), f"{where}.except"), start=1):
        try:
            sub = ipaddress.ip_network(str(value), strict=False)
        except ValueError as err:
            raise ValueError(f"{where}.except[{i}]: {err}") from None
        if sub.version != network.version or not sub.subnet_of(network):  # type: ignore[arg-type]
            raise ValueError(f"{where}.except[{i}]: {value} is not inside cidr {raw['cidr']}")
        excepts.append(str(value))
    return IPBlock(str(raw["cidr"]), tuple(excepts))


def _parse_peer(raw: Any, index: int, namespace: str, where: str) -> RulePeer:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a peer must be a mapping")
    unknown = set(raw) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise ValueError(f"{where}: unknown peer field(s) {sorted(unknown)}")
    present = {k for k in ("podSelector", "namespaceSelector", "ipBlock") if raw.get(k) is not None}
    if not present:
        raise ValueError(f"{where}: a peer must set podSelector, namespaceSelector or ipBlock")
    if "ipBlock" in present and len(present) > 1:
        raise ValueError(f"{where}: ipBlock cannot be combined with a selector in the same peer")
    if "ipBlock" in present:
        return RulePeer(index, namespace, ip_block=_parse_ip_block(raw["ipBlock"], f"{where}.ipBlock"))
    pods = raw.get("podSelector")
    namespaces = raw.get("namespaceSelector")
    return RulePeer(
        index,
        namespace,
        pod_selector=None if pods is None else LabelSelector.parse(pods, f"{where}.podSelector"),
        namespace_selector=(None if namespaces is None
                            else LabelSelector.parse(namespaces, f"{where}.namespaceSelector")),
    )


def _parse_rule_port(raw: Any, index: int, where: str) -> RulePort:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a port must be a mapping")
    protocol = read_protocol(raw.get("protocol"), where)
    port = raw.get("port")
    end_port = raw.get("endPort")
    if isinstance(port, str) and port.isdigit():
        port = int(port)  # an IntOrString written as a quoted number
    if isinstance(port, str):
        if end_port is not None:
            raise ValueError(f"{where}: endPort needs a numeric port, not the named port {port!r}")
        return RulePort(index, protocol, port)
    if port is None:
        if end_port is not None:
            raise ValueError(f"{where}: endPort needs port")
        return RulePort(index, protocol)
    port = read_int(port, f"{where}.port")
    if end_port is not None:
        end_port = read_int(end_port, f"{where}.endPort")
        if end_port < port:
            raise ValueError(f"{where}: endPort {end_port} is below port {port}")
    return RulePort(index, protocol, port, end_port)


def _parse_rules(raw: Any, direction: Direction, namespace: str) -> tuple[Rule, ...]:
    rules = []
    key = direction.rules_key
    for r, item in enumerate(read_list(raw, f"spec.{key}"), start=1):
        where = f"spec.{key}[{r}]"
        if item is None:
            item = {}  # `- ` with nothing after it reads as null; Kubernetes treats it as `{}`
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: a rule must be a mapping")
        unknown = set(item) - {direction.peers_key, "ports"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)} (an {key} rule has "
                             f"'{direction.peers_key}' and 'ports')")
        peers = tuple(
            _parse_peer(p, i, namespace, f"{where}.{direction.peers_key}[{i}]")
            for i, p in enumerate(read_list(item.get(direction.peers_key), f"{where}.{direction.peers_key}"), start=1)
        )
        ports = tuple(
            _parse_rule_port(p, i, f"{where}.ports[{i}]")
            for i, p in enumerate(read_list(item.get("ports"), f"{where}.ports"), start=1)
        )
        rules.append(Rule(direction, r, peers, ports))
    return tuple(rules)


def compile_policy(obj: Mapping[str, Any], default_namespace: str = "default") -> Policy:
    """Compile one NetworkPolicy document. Raises PolicyError naming the policy and the field."""
    ref_text = object_ref(obj, default_namespace)
    try:
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ValueError("metadata.name is missing")
        ref = PolicyRef(meta.get("namespace") or default_namespace, str(meta["name"]))
        spec = obj.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise ValueError("spec must be a mapping")
        selector = LabelSelector.parse(spec.get("podSelector"), "spec.podSelector")
        ingress = _parse_rules(spec.get("ingress"), Direction.INGRESS, ref.namespace)
        egress = _parse_rules(spec.get("egress"), Direction.EGRESS, ref.namespace)
        given = spec.get("policyTypes")
        if not given:
            # The API server's defaulting (absent or []): Ingress always, Egress only when egress rules exist.
            types = (Direction.INGRESS, Direction.EGRESS) if egress else (Direction.INGRESS,)
        else:
            types = []
            for value in read_list(given, "spec.policyTypes"):
                if value not in ("Ingress", "Egress"):
                    raise ValueError(f"spec.policyTypes: {value!r} is not Ingress or Egress")
                if Direction(value) not in types:
                    types.append(Direction(value))
            types = tuple(types)
    except ValueError as err:
        raise PolicyError(f"{ref_text}: {err}", obj=obj) from None
    rules = {Direction.INGRESS: ingress, Direction.EGRESS: egress}
    targets = tuple(PolicyTarget(ref, d, selector, rules[d]) for d in types)
    ignored = tuple(d for d in Direction if rules[d] and d not in types)
    return Policy(ref, selector, types, bool(given), targets, ignored)

