"""Known NetworkPolicy mistakes, each named in one sentence in the learner's terms and pointing at the policy
(file:line) that makes it. A lab grader asks what its target's wrong cells reveal; lab.yaml's mistake messages
quote these sentences, so their wording is a contract.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from graders.labels import format_labels
from graders.manifests import Manifest
from graders.netpol.compile import Direction, PolicyRef, PortMiss, RulePeer
from graders.netpol.pods import Pod
from graders.netpol.verdicts import PolicyEngine, Verdict

Say = Callable[[str], None]
Locate = Callable[..., str]  # (PolicyRef, *field path) -> " (file:line)", or "" for a policy not from a file
TRAFFIC = {Direction.INGRESS: "incoming traffic (Ingress)", Direction.EGRESS: "outgoing traffic (Egress)"}


def no_location(ref: PolicyRef, *path: Any) -> str:
    return ""


def locator(policies: Sequence[Manifest], default_namespace: str) -> Locate:
    """Where each policy was written: `` (file:line)`` of a field (the policy's first line at worst)."""
    by_ref = {f"{m.namespace or default_namespace}/{m.name}": m for m in policies}

    def at(ref: PolicyRef, *path: Any) -> str:
        found = by_ref.get(str(ref))
        return f" ({found.file}:{found.line_of(path)})" if found else ""
    return at


def short(pod_key: str) -> str:
    return pod_key.split("/", 1)[1]


def pod_ports_text(pod: Pod) -> str:
    return ", ".join(f"{p.name or '-'} {p.port}/{p.protocol}" for p in pod.ports) or "none declared"


def policy_mistakes(engine: PolicyEngine, direction: Direction, isolated_namespaces: set[str],
                    lab_namespaces: Sequence[str], pod_network: str, say: Say, at: Locate = no_location) -> None:
    """Whole-policy mistakes: selectors that select nothing, directions left out or mixed up (``direction`` is
    the one the lab is about), a policy outside the namespaces the lab isolates, peers that match nothing."""
    inventory = engine.inventory
    for policy in inventory.policies:
        ref, ns = policy.ref, policy.ref.namespace
        pods_here = [p for p in inventory.pods if p.namespace == ns]
        if not any(policy.pod_selector.matches(p.labels) for p in pods_here):
            there = ", ".join(f"{p.name} ({format_labels(p.labels)})" for p in pods_here) or "none"
            say(f"NetworkPolicy {ref}{at(ref, 'spec', 'podSelector')}: podSelector {policy.pod_selector.describe()} "
                f"selects no pod in {ns} (pods there: {there})")
        types = ", ".join(d.value for d in policy.policy_types)
        for ignored in policy.ignored:
            say(f"NetworkPolicy {ref}{at(ref, 'spec', 'policyTypes')}: policyTypes [{types}] does not list "
                f"{ignored.value}: its {ignored.rules_key} rules are ignored")
        if direction not in policy.policy_types:
            say(f"NetworkPolicy {ref}{at(ref, 'spec', 'policyTypes')}: policyTypes [{types}] isolates "
                f"{' and '.join(TRAFFIC[d] for d in policy.policy_types)}, but this exercise is about "
                f"{TRAFFIC[direction]}")
        if ns not in isolated_namespaces and ns in lab_namespaces and isolated_namespaces:
            say(f"NetworkPolicy {ref}{at(ref, 'metadata', 'namespace')} is in namespace {ns}: a NetworkPolicy only "
                f"selects pods in its own namespace, and this exercise isolates pods of "
                f"{', '.join(sorted(isolated_namespaces))}")
        for t in policy.targets:
            key, peers_key = t.direction.rules_key, t.direction.peers_key
            for rule in t.rules:
                for peer in rule.peers:
                    where = (f"NetworkPolicy {ref}, {key} rule {rule.index}, peer {peer.index}"
                             f"{at(ref, 'spec', key, rule.index - 1, peers_key, peer.index - 1)}")
                    peer_matches_nothing(engine, where, peer, pod_network, say)


def _namespaces_text(engine: PolicyEngine) -> str:
    return "; ".join(f"{name}: {format_labels(ns.labels)}" for name, ns in engine.inventory.namespaces.items())


def peer_matches_nothing(engine: PolicyEngine, where: str, peer: RulePeer, pod_network: str, say: Say) -> None:
    """A peer that matches no pod: an ipBlock or except outside every pod address, selectors matching nothing."""
    inventory = engine.inventory
    if peer.ip_block is not None:
        block = peer.ip_block
        addresses = [ipaddress.ip_address(ip) for p in inventory.pods for ip in p.ips]
        if not any(a in block.network for a in addresses):
            say(f"{where}: ipBlock {block.cidr} contains no pod address (the pods' addresses are in the pod "
                f"network {pod_network}; Services' ClusterIPs are translated to pod addresses before policy applies)")
        for excepted in block.excepts:
            net = ipaddress.ip_network(excepted, strict=False)
            if not any(a in net for a in addresses):
                stale = (" (pods get a new address each time they are recreated; except a range that stays, such "
                         "as a node's pod range)" if net.subnet_of(ipaddress.ip_network(pod_network)) else "")
                say(f"{where}: except {excepted} matches no pod address{stale}")
        return
    if peer.namespace_selector is not None:
        namespaces = [n for n, ns in inventory.namespaces.items() if peer.namespace_selector.matches(ns.labels)]
        if not namespaces:
            say(f"{where}: namespaceSelector {peer.namespace_selector.describe()} matches no namespace (namespace "
                f"labels: {_namespaces_text(engine)}; every namespace carries kubernetes.io/metadata.name=<its name>)")
            return
    else:
        namespaces = [peer.policy_namespace]
    if peer.pod_selector is not None:
        pods = [p for p in inventory.pods if p.namespace in namespaces and peer.pod_selector.matches(p.labels)]
        if not pods:
            there = ", ".join(f"{p.key} ({format_labels(p.labels)})" for p in inventory.pods
                              if p.namespace in namespaces)
            say(f"{where}: podSelector {peer.pod_selector.describe()} matches no pod in "
                f"{', '.join(namespaces)} (pods there: {there or 'none'})")


def too_open(direction: Direction, verdict: Verdict, say: Say, at: Locate = no_location,
             other_port_allowed: bool = False) -> None:
    """The connection should be blocked but is allowed: in the ``direction`` a lab is about, who admits it?
    ``other_port_allowed``: the source should reach another port of the destination, so a rule that admits it
    on every port is wrong in its ports, not its peers."""
    side, port = (verdict.ingress if direction is Direction.INGRESS else verdict.egress), verdict.port
    if not side.isolated:
        what = ("accepts connections from every pod" if direction is Direction.INGRESS
                else "may connect to every pod")
        say(f"{side.subject.key} is not selected by any {direction.value} policy, so it {what} "
            f"(policies only add allowances to the pods they select)")
        return
    src, dst = verdict.source, verdict.destination
    for admission in side.allowing:
        rule, peer, port_item, policy = admission.rule, admission.peer, admission.port, admission.target.policy
        key = rule.direction.rules_key
        location = at(policy, "spec", key, rule.index - 1)
        where = f"{policy}, {key} rule {rule.index}{location}"
        if port_item is not None and port_item.end_port is not None and \
                port_item.port <= port <= port_item.end_port:
            say(f"{where}: port range {port_item.describe()} also opens {port}, which must stay closed")
        elif peer is None and rule.all_ports:
            who = "source" if rule.direction is Direction.INGRESS else "destination"
            say(f"an empty {key} rule (`- {{}}`) in {policy}{location} allows every {who} on every port")
        elif peer is None:
            say(f"{where} has no '{rule.direction.peers_key}': every pod may use {rule.describe_ports()}")
        elif peer.ip_block is not None:
            ip = ", ".join(dst.ips) or "no address"
            if not peer.ip_block.excepts:
                say(f"{where}: ipBlock {peer.ip_block.cidr} has no except: it admits {dst.key} ({ip})")
            else:
                say(f"{where}: {peer.ip_block.describe()} admits {dst.key} ({ip}): no except covers that address")
        elif peer.namespace_selector is not None and peer.namespace_selector.is_empty:
            say(f"{where}, peer {peer.index}: namespaceSelector {{}} matches every namespace: "
                f"{src.key} ({format_labels(src.labels)}) may reach {short(dst.key)}")
        elif peer.namespace_selector is not None and peer.pod_selector is None and len(rule.peers) > 1:
            say(f"{where}: peers in separate list items are ORed: every pod in a namespace labelled "
                f"{peer.namespace_selector.describe()} may reach {short(dst.key)} (put podSelector and "
                f"namespaceSelector in ONE item to AND them)")
        elif peer.namespace_selector is not None and peer.pod_selector is None:
            say(f"{where}, peer {peer.index}: namespaceSelector {peer.namespace_selector.describe()} admits every "
                f"pod of the namespaces it matches, {src.key} included")
        elif rule.all_ports and other_port_allowed:
            say(f"{where} has no 'ports': it opens every port of {dst.key} to {peer.describe()}, not only the allowed ones")
        else:
            say(f"{where}, peer {peer.index} ({peer.describe()}) admits {src.key} -> {dst.key}:{port}")


def too_closed(direction: Direction, label: str, verdict: Verdict, say: Say, at: Locate = no_location) -> None:
    """The connection (``label`` names its destination port) should be allowed but is blocked: which side
    refuses it, and why?"""
    source, port, protocol = verdict.source.key, verdict.port, verdict.protocol
    dst = verdict.destination
    for side in (verdict.egress, verdict.ingress):
        if side.allowed:
            continue
        key = side.direction.rules_key
        other = side.peer.key
        policies = ", ".join(str(t.target.policy) for t in side.selecting)
        if not any(t.rules for t in side.selecting):
            if side.direction is not direction:
                say(f"{policies} isolate{'s' if len(side.selecting) == 1 else ''} {side.subject.key} for "
                    f"{side.direction.value} with no {key} rule: {source} -> {label} is refused")
            else:
                say(f"no {key} rule of the policies selecting {side.subject.key} ({policies}) admits {other}: "
                    f"{'it has' if len(side.selecting) == 1 else 'they have'} no {key} rules at all")
            continue
        port_reasons = [(t.target.policy, rule.rule, result) for t in side.selecting for rule in t.rules
                        if rule.peer_ok for result in rule.ports]
        if not port_reasons:
            say(f"no {key} rule of the policies selecting {side.subject.key} ({policies}) admits {other}")
            continue
        for policy, rule, result in port_reasons:
            item, miss = result.port, result.miss
            location = at(policy, "spec", key, rule.index - 1, "ports", item.index - 1)
            where = f"{policy}, {key} rule {rule.index}{location}"
            if miss is PortMiss.NAMED_PORT_MISSING:
                say(f"{where}: named port {item.port!r} is not a {item.protocol} container port of {dst.key} "
                    f"(its ports: {pod_ports_text(dst)})")
            elif miss is PortMiss.NAMED_PORT_NUMBER:
                resolved = dst.named_port(item.port, item.protocol)
                say(f"{where}: named port {item.port!r} is {resolved.port}/{item.protocol} on {dst.key}, "
                    f"not {port}")
            elif miss is PortMiss.PROTOCOL:
                say(f"{where} allows protocol {item.protocol}, but the connection is {protocol}")
            elif miss is PortMiss.NUMBER:
                if item.end_port is not None:
                    say(f"{where}: port range {item.describe()} does not include {port}")
                elif any(p.port == item.port for p in dst.ports) and port > item.port:
                    say(f"{where}: port {item.port} without endPort is the single port {item.port}: it does not "
                        f"cover {port}")
                else:
                    say(f"{where} allows port {item.describe()}, but {dst.key} listens on "
                        f"{port}/{protocol}")
