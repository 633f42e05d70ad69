"""NetworkPolicy semantics as data: pods, namespaces and policies in; verdicts that name their source out.

The shape follows Cyclonus: every ``networking.k8s.io/v1`` NetworkPolicy compiles into one ``Target`` per
policy type it has. A target remembers the policy it came from, and each of its rules and peers remembers its
(1-based) position in the manifest. Evaluating a connection returns the pieces that allow it and the targets
that select a pod without admitting the connection -- never a bare bool -- so ``graders.explain`` only has to
put the verdict into words.

Two ways in:
  * ``PolicyEngine.evaluate(src, dst, port, protocol)`` -> ``Verdict`` with every detail (one connection);
  * ``PolicyEngine.matrix(port, protocol)`` -> ``{src: {dst: bool}}`` for every ordered pair of distinct pods,
    computed from per-policy selections that are worked out once (bitsets over pod indices), not per pair.
Both follow the same rules; the unit tests check they agree.
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graders.errors import K8sLabError

PROTOCOLS = ("TCP", "UDP", "SCTP")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Kinds whose pod template stands for its pods: one representative pod "<ns>/<workload-name>" each.
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class PolicyError(K8sLabError):
    """An object cannot be read as Kubernetes would read it. The message names the object (``Kind ns/name``);
    ``obj`` is the raw document so a front end can add the file and line it came from."""

    def __init__(self, message: str, *, obj: Mapping[str, Any] | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.obj = obj


class UnknownPod(PolicyError):
    """A pod named by the caller ("ns/name") is not among the pods the manifests describe."""


class Direction(str, Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    @property
    def rules_key(self) -> str:
        return "ingress" if self is Direction.INGRESS else "egress"

    @property
    def peers_key(self) -> str:
        return "from" if self is Direction.INGRESS else "to"


# --------------------------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` item."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            # As in k8s.io/apimachinery: a pod without the key is "not in" any set.
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def describe(self) -> str:
        """kubectl's selector syntax: ``env in (a,b)``, ``env notin (a)``, ``env``, ``!env``."""
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        return f"{self.key} {self.operator.lower()} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """``matchLabels`` AND ``matchExpressions``; with neither it selects everything (``{}``)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )

    def unmet(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The parts of this selector the labels fail, in words (``app=web``, ``env in (a)``)."""
        parts = [f"{k}={v}" for k, v in self.match_labels if labels.get(k) != v]
        return (*parts, *(r.describe() for r in self.match_expressions if not r.matches(labels)))

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels] + [r.describe() for r in self.match_expressions]
        return ",".join(parts) or "{}"

    @classmethod
    def parse(cls, raw: Any, where: str) -> LabelSelector:
        """Read a metav1.LabelSelector; ``None`` (absent) is the caller's business, ``{}`` selects everything."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: a label selector must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise ValueError(f"{where}: unknown selector field(s) {sorted(unknown)} (use matchLabels/matchExpressions)")
        labels = raw.get("matchLabels") or {}
        if not isinstance(labels, Mapping):
            raise ValueError(f"{where}.matchLabels: must be a mapping of label to value")
        expressions = []
        for i, expr in enumerate(raw.get("matchExpressions") or [], start=1):
            here = f"{where}.matchExpressions[{i}]"
            if not isinstance(expr, Mapping) or "key" not in expr or "operator" not in expr:
                raise ValueError(f"{here}: needs 'key' and 'operator'")
            operator = expr["operator"]
            if operator not in SELECTOR_OPERATORS:
                raise ValueError(f"{here}: operator {operator!r} is not one of {', '.join(SELECTOR_OPERATORS)}")
            values = tuple(str(v) for v in (expr.get("values") or ()))
            if operator in ("In", "NotIn") and not values:
                raise ValueError(f"{here}: operator {operator} needs at least one value")
            if operator in ("Exists", "DoesNotExist") and values:
                raise ValueError(f"{here}: operator {operator} takes no values")
            expressions.append(Requirement(str(expr["key"]), operator, values))
        return cls(tuple((str(k), _label_value(v)) for k, v in labels.items()), tuple(expressions))


def _label_value(value: Any) -> str:
    # YAML turns `env: true` or `tier: 1` into bool/int; Kubernetes would reject them, we compare as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --------------------------------------------------------------------------------------------------------------
# The things policies talk about: namespaces and pods
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    declared: bool = True  # False: only referenced by a pod or policy; exists with just the name label


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()  # status.podIP(s); a pod with no IP never matches an ipBlock
    ports: tuple[ContainerPort, ...] = ()
    kind: str = "Pod"  # or the workload kind whose template it stands for

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> ContainerPort | None:
        return next((p for p in self.ports if p.name == name and p.protocol == protocol), None)


# --------------------------------------------------------------------------------------------------------------
# Compiled policy pieces: ipBlock, peer, port, rule, target
# --------------------------------------------------------------------------------------------------------------


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
class Peer:
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
    peers: tuple[Peer, ...] = ()
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
class Target:
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
    targets: tuple[Target, ...]
    ignored: tuple[Direction, ...] = ()

    def target(self, direction: Direction) -> Target | None:
        return next((t for t in self.targets if t.direction is direction), None)


# --------------------------------------------------------------------------------------------------------------
# Reading objects
# --------------------------------------------------------------------------------------------------------------


def _ref_of(obj: Mapping[str, Any], default_namespace: str) -> str:
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or default_namespace, meta.get("name", "<no name>")
    return f"{obj.get('kind', '<no kind>')} {namespace}/{name}"


def _int(value: Any, where: str, low: int = 1, high: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{where}: {value} is outside {low}..{high}")
    return value


def _protocol(value: Any, where: str) -> str:
    protocol = "TCP" if value is None else value
    if protocol not in PROTOCOLS:
        raise ValueError(f"{where}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    return protocol


def _list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _parse_ip_block(raw: Any, where: str) -> IPBlock:
    if not isinstance(raw, Mapping) or not raw.get("cidr"):
        raise ValueError(f"{where}: ipBlock needs a cidr")
    try:
        network = ipaddress.ip_network(str(raw["cidr"]), strict=False)
    except ValueError as err:
        raise ValueError(f"{where}.cidr: {err}") from None
    excepts = []
    for i, value in enumerate(_list(raw.get("except"), f"{where}.except"), start=1):
        try:
            sub = ipaddress.ip_network(str(value), strict=False)
        except ValueError as err:
            raise ValueError(f"{where}.except[{i}]: {err}") from None
        if sub.version != network.version or not sub.subnet_of(network):  # type: ignore[arg-type]
            raise ValueError(f"{where}.except[{i}]: {value} is not inside cidr {raw['cidr']}")
        excepts.append(str(value))
    return IPBlock(str(raw["cidr"]), tuple(excepts))


def _parse_peer(raw: Any, index: int, namespace: str, where: str) -> Peer:
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
        return Peer(index, namespace, ip_block=_parse_ip_block(raw["ipBlock"], f"{where}.ipBlock"))
    pods = raw.get("podSelector")
    namespaces = raw.get("namespaceSelector")
    return Peer(
        index,
        namespace,
        pod_selector=None if pods is None else LabelSelector.parse(pods, f"{where}.podSelector"),
        namespace_selector=(None if namespaces is None
                            else LabelSelector.parse(namespaces, f"{where}.namespaceSelector")),
    )


def _parse_rule_port(raw: Any, index: int, where: str) -> RulePort:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a port must be a mapping")
    protocol = _protocol(raw.get("protocol"), where)
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
    port = _int(port, f"{where}.port")
    if end_port is not None:
        end_port = _int(end_port, f"{where}.endPort")
        if end_port < port:
            raise ValueError(f"{where}: endPort {end_port} is below port {port}")
    return RulePort(index, protocol, port, end_port)


def _parse_rules(raw: Any, direction: Direction, namespace: str) -> tuple[Rule, ...]:
    rules = []
    key = direction.rules_key
    for r, item in enumerate(_list(raw, f"spec.{key}"), start=1):
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
            for i, p in enumerate(_list(item.get(direction.peers_key), f"{where}.{direction.peers_key}"), start=1)
        )
        ports = tuple(
            _parse_rule_port(p, i, f"{where}.ports[{i}]")
            for i, p in enumerate(_list(item.get("ports"), f"{where}.ports"), start=1)
        )
        rules.append(Rule(direction, r, peers, ports))
    return tuple(rules)


def compile_policy(obj: Mapping[str, Any], default_namespace: str = "default") -> Policy:
    """Compile one NetworkPolicy document. Raises PolicyError naming the policy and the field."""
    ref_text = _ref_of(obj, default_namespace)
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
            for value in _list(given, "spec.policyTypes"):
                if value not in ("Ingress", "Egress"):
                    raise ValueError(f"spec.policyTypes: {value!r} is not Ingress or Egress")
                if Direction(value) not in types:
                    types.append(Direction(value))
            types = tuple(types)
    except ValueError as err:
        raise PolicyError(f"{ref_text}: {err}", obj=obj) from None
    rules = {Direction.INGRESS: ingress, Direction.EGRESS: egress}
    targets = tuple(Target(ref, d, selector, rules[d]) for d in types)
    ignored = tuple(d for d in Direction if rules[d] and d not in types)
    return Policy(ref, selector, types, bool(given), targets, ignored)


def _ports_of(spec: Mapping[str, Any], where: str) -> tuple[ContainerPort, ...]:
    ports = []
    for c, container in enumerate(_list(spec.get("containers"), f"{where}.containers"), start=1):
        if not isinstance(container, Mapping):
            continue
        for p, port in enumerate(_list(container.get("ports"), f"{where}.containers[{c}].ports"), start=1):
            here = f"{where}.containers[{c}].ports[{p}]"
            if not isinstance(port, Mapping) or "containerPort" not in port:
                raise ValueError(f"{here}: needs containerPort")
            ports.append(ContainerPort(
                _int(port["containerPort"], f"{here}.containerPort"),
                _protocol(port.get("protocol"), here),
                str(port.get("name") or ""),
            ))
    return tuple(ports)


def _pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


def pod_from_object(obj: Mapping[str, Any], default_namespace: str = "default") -> Pod:
    """A Pod, or the one representative pod of a workload (named after the workload, with its template's
    labels and container ports; it has no IP, so ipBlock rules never match it)."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    try:
        if not meta.get("name"):
            raise ValueError("metadata.name is missing")
        if kind == "Pod":
            labels, spec = meta.get("labels") or {}, obj.get("spec") or {}
            status = obj.get("status") or {}
            ips = [status.get("podIP")] + [i.get("ip") for i in _list(status.get("podIPs"), "status.podIPs")
                                           if isinstance(i, Mapping)]
            ips = tuple(dict.fromkeys(str(ip) for ip in ips if ip))
            for ip in ips:
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    raise ValueError(f"status.podIP: {ip!r} is not an IP address") from None
            where = "spec"
        else:
            template = _pod_template(obj)
            labels, spec, ips = (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}, ()
            where = "spec.template.spec"
        if not isinstance(labels, Mapping):
            raise ValueError("labels must be a mapping")
        return Pod(
            namespace=meta.get("namespace") or default_namespace,
            name=str(meta["name"]),
            labels={str(k): _label_value(v) for k, v in labels.items()},
            ips=ips,
            ports=_ports_of(spec, where),
            kind=str(kind),
        )
    except ValueError as err:
        raise PolicyError(f"{_ref_of(obj, default_namespace)}: {err}", obj=obj) from None


@dataclass(frozen=True)
class Inventory:
    """Everything the engine reasons about. Pods are sorted by ``ns/name`` so every matrix has one order."""

    namespaces: Mapping[str, Namespace]
    pods: tuple[Pod, ...]
    policies: tuple[Policy, ...]

    def namespace_of(self, pod: Pod) -> Namespace:
        return self.namespaces[pod.namespace]


def inventory_from_objects(objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> Inventory:
    """Read Namespace, Pod, workload and NetworkPolicy documents; every other kind is ignored.

    Every namespace carries ``kubernetes.io/metadata.name=<name>`` (the API server sets it, so we do too);
    namespaces that pods or policies live in but no document declares exist with just that label.
    """
    declared: dict[str, dict[str, str]] = {}
    pods: dict[str, Pod] = {}
    policies: dict[str, Policy] = {}
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Namespace":
            meta = obj.get("metadata") or {}
            if not meta.get("name"):
                raise PolicyError(f"{_ref_of(obj, '')}: metadata.name is missing", obj=obj)
            labels = meta.get("labels") or {}
            declared[meta["name"]] = {str(k): _label_value(v) for k, v in labels.items()}
        elif kind == "Pod" or kind in WORKLOAD_KINDS:
            pod = pod_from_object(obj, default_namespace)
            if pod.key in pods:
                first = pods[pod.key]
                raise PolicyError(f"{kind} {pod.key}: a second pod named {pod.key} (the first came from "
                                  f"{first.kind} {pod.key}); pod and workload names must be unique", obj=obj)
            pods[pod.key] = pod
        elif kind == "NetworkPolicy":
            policy = compile_policy(obj, default_namespace)
            if str(policy.ref) in policies:
                raise PolicyError(f"NetworkPolicy {policy.ref}: defined twice", obj=obj)
            policies[str(policy.ref)] = policy
    names = set(declared) | {p.namespace for p in pods.values()} | {p.ref.namespace for p in policies.values()}
    namespaces = {
        name: Namespace(name, {**declared.get(name, {}), NAMESPACE_NAME_LABEL: name}, name in declared)
        for name in sorted(names)
    }
    ordered = tuple(sorted(pods.values(), key=lambda p: (p.namespace, p.name)))
    return Inventory(namespaces, ordered, tuple(policies.values()))


# --------------------------------------------------------------------------------------------------------------
# Verdicts: the allowing and denying pieces of one connection
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerResult:
    peer: Peer
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

    target: Target
    rule: Rule
    peer: Peer | None
    port: RulePort | None


@dataclass(frozen=True)
class TargetResult:
    target: Target
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


# --------------------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------------------


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
        self._targets_of: dict[Direction, list[list[Target]]] = {
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

    def _peer_mask(self, peer: Peer) -> int:
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
        """Every piece that bears on one connection, for ``graders.explain`` to put into words."""
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
