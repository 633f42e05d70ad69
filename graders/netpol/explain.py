"""Why one connection is allowed or blocked, in words.

Nothing is decided here: ``PolicyEngine.evaluate`` returns a ``Verdict`` naming every policy, rule, peer and
port that bears on the connection, and this module only renders it (as Cyclonus's ``explain.go`` does).
The wording aims at the mistakes learners make: separate peers are ORed, a podSelector-only peer never leaves
the policy's namespace, a namespaceSelector needs a label the namespace really has, a named port must exist
on the destination pod, and rules left out of ``policyTypes`` do nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from graders.labels import format_labels
from graders.netpol.compile import Direction, PeerMiss, PolicyTarget, PortMiss
from graders.netpol.verdicts import (
    Admission,
    DirectionVerdict,
    PeerResult,
    PolicyEngine,
    PortResult,
    RuleResult,
    TargetResult,
    Verdict,
)


@dataclass(frozen=True)
class Explanation:
    verdict: Verdict
    summary: str  # one line, fit for a matrix cell's ``why``
    lines: tuple[str, ...]  # the full account, headline first

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return self.text


def explain(engine: PolicyEngine, source: str, destination: str, port: int = 80,
            protocol: str = "TCP") -> Explanation:
    """Evaluate ``source -> destination`` on ``port/protocol`` and put the verdict into words."""
    return explain_verdict(engine.evaluate(source, destination, port, protocol))


def explain_verdict(verdict: Verdict) -> Explanation:
    src, dst = verdict.source.key, verdict.destination.key
    lines = [f"{src} -> {dst} on {verdict.port}/{verdict.protocol}: {_headline(verdict)}"]
    for side in (verdict.egress, verdict.ingress):
        lines.extend(_direction_lines(side, verdict))
    return Explanation(verdict, _summary(verdict), tuple(lines))


def _headline(verdict: Verdict) -> str:
    if verdict.allowed:
        return "ALLOWED"
    blocked_by = [label for side, label in ((verdict.egress, "the source's egress"),
                                            (verdict.ingress, "the destination's ingress")) if not side.allowed]
    return "BLOCKED by " + " and ".join(blocked_by)


def _role(side: DirectionVerdict) -> tuple[str, str]:
    """(what the subject is, what the peer is) for this side: the source's egress, the destination's ingress."""
    return ("source", "destination") if side.direction is Direction.EGRESS else ("destination", "source")


def _summary(verdict: Verdict) -> str:
    if verdict.allowed:
        pieces = [_admission_words(side.allowing[0]) for side in (verdict.egress, verdict.ingress)
                  if side.isolated]
        return "allowed: " + ("; ".join(pieces) if pieces else "no NetworkPolicy selects either pod")
    reasons = []
    for side in (verdict.egress, verdict.ingress):
        if not side.allowed:
            # The most telling piece: a policy with rules that came close, else a deny-everything policy.
            target = next((t for t in side.denying if t.rules), side.denying[0])
            lines = _denial_lines(target, side, verdict)
            reasons.append(lines[0].rstrip(":") + (f" ({lines[1].strip()})" if len(lines) == 2 else ""))
    return "blocked: " + "; ".join(reasons)


def _admission_words(admission: Admission) -> str:
    target, rule = admission.target, admission.rule
    where = f"{target.policy}, {target.direction.rules_key} rule {rule.index}"
    if admission.peer is None:
        what = f"no '{target.direction.peers_key}', so every peer"
    else:
        what = f"peer {admission.peer.index}: {admission.peer.describe()}"
    text = f"allowed by {where}, {what}"
    if admission.peer is not None and len(rule.peers) > 1:
        text += " — peers in separate list items are ORed"
    elif admission.peer is not None and admission.peer.namespace_selector and admission.peer.pod_selector:
        text += " — namespaceSelector and podSelector in one peer are ANDed"
    if rule.all_ports:
        text += " (all ports)"
    return text


def _direction_lines(side: DirectionVerdict, verdict: Verdict) -> list[str]:
    subject_role, peer_role = _role(side)
    head = f"{side.direction.value} of the {subject_role} {side.subject.key}:"
    lines = []
    if not side.isolated:
        lines.append(f"{head} no NetworkPolicy selects it for {side.direction.value}, so every "
                     f"{peer_role} is allowed.")
        for result in side.not_selecting:
            if not result.target.rules or result.admits:
                # Deny-style policies and would-be admitters that miss the pod: both look like label typos.
                lines.append(f"  note: {result.target.policy} is an {side.direction.value} policy in "
                             f"{side.subject.namespace}, but {_selector_miss(result.target, side)}")
    else:
        names = ", ".join(str(t.target.policy) for t in side.selecting)
        verdict_word = "allowed" if side.allowed else "blocked"
        lines.append(f"{head} selected for {side.direction.value} by {names}; {verdict_word}.")
        for admission in side.allowing:
            lines.append(f"  {_admission_words(admission)}")
        for target in side.denying:
            lines.extend(f"  {line}" for line in _denial_lines(target, side, verdict))
        if not side.allowed:
            # A policy whose rules would admit this connection but whose podSelector misses the pod is
            # usually a label typo; name it, since that is the rule the learner believes is working.
            for result in side.near_misses:
                lines.append(f"  note: {result.target.policy} would admit this connection, but it does not select "
                             f"the {subject_role}: {_selector_miss(result.target, side)}")
    for policy in side.ignored:
        types = ", ".join(d.value for d in policy.policy_types)
        lines.append(f"  note: {policy.ref} has {side.direction.rules_key} rules, but its policyTypes [{types}] "
                     f"leave {side.direction.value} out, so those rules do nothing")
    return lines


def _selector_miss(target: PolicyTarget, side: DirectionVerdict) -> str:
    unmet = ", ".join(target.pod_selector.unmet(side.subject.labels))
    return (f"its podSelector {target.pod_selector.describe()} does not match labels "
            f"{format_labels(side.subject.labels)} (unmet: {unmet})")


def _denial_lines(target: TargetResult, side: DirectionVerdict, verdict: Verdict) -> list[str]:
    subject_role, peer_role = _role(side)
    policy, direction = target.target.policy, side.direction.value
    if not target.rules:
        if len(side.selecting) == 1:
            note = ""
        elif side.allowed:
            note = " by itself; policies only add allowances, and another policy admits this connection"
        else:
            note = " by itself; policies only add allowances, and none of the others admits this connection either"
        return [f"policy {policy} selects the {subject_role} for {direction} and has no "
                f"{side.direction.rules_key} rules, so it allows nothing{note}"]
    if side.allowed:
        # Another policy admits the connection; this one simply does not add anything for it.
        return [f"policy {policy} selects the {subject_role} for {direction} but does not admit this connection "
                f"(harmless: another policy does)"]
    if not any(r.peer_ok for r in target.rules):
        lead = f"policy {policy} selects the {subject_role} for {direction} but no rule's peer matches the {peer_role}"
    elif not any(r.port_ok for r in target.rules):
        lead = f"policy {policy} selects the {subject_role} for {direction} but no rule allows port " \
               f"{verdict.port}/{verdict.protocol}"
    else:
        lead = f"policy {policy} selects the {subject_role} for {direction} but no rule matches both the " \
               f"{peer_role} and port {verdict.port}/{verdict.protocol}"
    return [f"{lead}:"] + [f"  {_rule_words(r, side, verdict)}" for r in target.rules]


def _rule_words(result: RuleResult, side: DirectionVerdict, verdict: Verdict) -> str:
    rule = result.rule
    if rule.all_peers:
        peers = f"no '{side.direction.peers_key}', so every {_role(side)[1]} matches"
    elif result.peer_ok:
        matched = [str(p.peer.index) for p in result.peers if p.matched]
        peers = f"peer {matched[0]} matches" if len(matched) == 1 else f"peers {', '.join(matched)} match"
    else:
        peers = "; ".join(_peer_words(p, side) for p in result.peers)
    text = peers
    if not result.port_ok:
        ports = f"port {verdict.port}/{verdict.protocol} not in rule ports {rule.describe_ports()}"
        details = [d for d in (_named_port_words(p, verdict) for p in result.ports) if d]
        ports += f" ({'; '.join(details)})" if details else ""
        # "peer 1 matches, but port ..." reads as one thought; two misses read as a list.
        text = f"{peers}, but {ports}" if result.peer_ok else f"{peers}; {ports}"
    return f"{side.direction.rules_key} rule {rule.index}: {text}"


def _peer_words(result: PeerResult, side: DirectionVerdict) -> str:
    peer, pod = result.peer, side.peer
    head = f"peer {peer.index} {peer.describe()}"
    labels = format_labels(pod.labels)
    if result.miss is PeerMiss.OTHER_NAMESPACE:
        return (f"{head} only selects pods in namespace {peer.policy_namespace} (it has no namespaceSelector), "
                f"and {pod.key} is in {pod.namespace}")
    if result.miss is PeerMiss.NAMESPACE_LABELS:
        return (f"{head} does not match namespace {pod.namespace} (labels "
                f"{format_labels(side.peer_namespace.labels if side.peer_namespace else {})})")
    if result.miss is PeerMiss.POD_LABELS:
        if peer.namespace_selector is not None:
            return (f"{head}: namespace {pod.namespace} matches, but podSelector {peer.pod_selector.describe()} "
                    f"does not match labels {labels}")
        return f"{head} does not match labels {labels}"
    if result.miss is PeerMiss.NO_IP:
        return f"{head}: {pod.key} has no IP (status.podIP), so no ipBlock can match it"
    if result.miss is PeerMiss.IN_EXCEPT:
        return f"{head}: {', '.join(pod.ips)} is inside the cidr but excluded by except"
    return f"{head} does not contain {', '.join(pod.ips)}"


def _named_port_words(result: PortResult, verdict: Verdict) -> str:
    item, dst = result.port, verdict.destination
    if result.miss is PortMiss.NAMED_PORT_MISSING:
        return f"named port {item.port!r} is not a {item.protocol} container port of {dst.key}"
    if result.miss is PortMiss.NAMED_PORT_NUMBER:
        resolved = dst.named_port(item.port, item.protocol)
        return f"named port {item.port!r} is {resolved.port}/{item.protocol} on {dst.key}, not {verdict.port}"
    return ""
