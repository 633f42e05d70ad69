"""NetworkPolicy semantics (graders.netpol): the Kubernetes e2e model and cases, then each rule of the API.

The e2e cases follow test/e2e/network/netpol/network_policy.go: namespaces x, y, z (labels ns=x|y|z) and pods
a, b, c in each (labels pod=a|b|c), serving 80 and 81 over TCP, UDP and SCTP with ports named
``serve-<port>-<proto>``. Expectations are written as upstream writes them: a default plus exceptions.
"""
from __future__ import annotations

import copy

import pytest

from graders.netpol.compile import Direction, PeerMiss, PortMiss, compile_policy
from graders.netpol.fields import PolicyError
from graders.netpol.inventory import NAMESPACE_NAME_LABEL, inventory_from_objects
from graders.netpol.selectors import LabelSelector, Requirement
from graders.netpol.truthtable import PodPattern, Reachability
from graders.netpol.verdicts import PolicyEngine, UnknownPod

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
MODEL_PODS = tuple(f"{ns}/{pod}" for ns in NAMESPACES for pod in POD_NAMES)


def pod_ip(namespace: str, pod: str) -> str:
    """x/a -> 10.1.1.1 ... z/c -> 10.1.3.3: every model pod is inside 10.1.0.0/16."""
    return f"10.1.{NAMESPACES.index(namespace) + 1}.{POD_NAMES.index(pod) + 1}"


def model_objects(ipv6: bool = False) -> list[dict]:
    objects: list[dict] = []
    for ns in NAMESPACES:
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"ns": ns}}})
        for pod in POD_NAMES:
            containers = [
                {"name": f"cont-{port}-{proto.lower()}", "image": "agnhost",
                 "ports": [{"containerPort": port, "name": f"serve-{port}-{proto.lower()}", "protocol": proto}]}
                for port in (80, 81) for proto in ("TCP", "UDP", "SCTP")
            ]
            ip = pod_ip(ns, pod)
            if ipv6:
                ip = f"fd00:1:{NAMESPACES.index(ns) + 1}::{POD_NAMES.index(pod) + 1}"
            objects.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": {"pod": pod}},
                "spec": {"containers": containers},
                "status": {"podIP": ip},
            })
    return objects


def netpol(name: str, spec: dict, namespace: str = "x") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def labels(**kv: str) -> dict:
    return {"matchLabels": dict(kv)}


def expression(key: str, operator: str, *values: str) -> dict:
    item = {"key": key, "operator": operator}
    if values:
        item["values"] = list(values)
    return {"matchExpressions": [item]}


def engine_for(*policies: dict, objects: list[dict] | None = None) -> PolicyEngine:
    return PolicyEngine.from_objects([*(objects if objects is not None else model_objects()), *policies])


def check(engine: PolicyEngine, reachability: Reachability, port: int = 80, protocol: str = "TCP") -> None:
    """Compare the engine's matrix with the expectation; on failure show the three tables, like upstream."""
    matrix = engine.matrix(port, protocol)
    reachability.observe_all(matrix)
    assert reachability.is_complete
    assert not reachability.wrong_cells(), f"on {port}/{protocol}:\n{reachability.pretty()}"
    # The fast matrix and the detailed per-connection evaluation must never disagree.
    for src, row in matrix.items():
        for dst, allowed in row.items():
            assert engine.evaluate(src, dst, port, protocol).allowed == allowed, (src, dst, port, protocol)


def expect(default: bool = True) -> Reachability:
    return Reachability(MODEL_PODS, default=default)


X, Y, Z = PodPattern(namespace="x"), PodPattern(namespace="y"), PodPattern(namespace="z")
ANY = PodPattern()


def pod(ns: str, name: str) -> PodPattern:
    return PodPattern(ns, name)


# ------------------------------------------------------------------------------------------------------------
# Upstream e2e cases (titles from test/e2e/network/netpol/network_policy.go)
# ------------------------------------------------------------------------------------------------------------


class TestUpstreamE2E:
    def test_no_policy_allows_everything(self):
        check(engine_for(), expect(True))

    def test_should_support_a_default_deny_ingress_policy(self):
        engine = engine_for(netpol("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}))
        check(engine, expect().expect(ANY, X, False))

    def test_should_support_a_default_deny_all_policy(self):
        engine = engine_for(netpol("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
        check(engine, expect().expect(ANY, X, False).expect(X, ANY, False))

    def test_should_enforce_policy_to_allow_traffic_from_pods_within_server_namespace_based_on_podselector(self):
        engine = engine_for(netpol("x-a-allows-x-b", {
            "podSelector": labels(pod="a"), "ingress": [{"from": [{"podSelector": labels(pod="b")}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(pod("x", "b"), pod("x", "a"), True))

    def test_should_enforce_policy_to_allow_ingress_traffic_for_a_target(self):
        deny = netpol("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
        allow_a = netpol("allow-ingress-to-pod-a", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"port": 80}]}]})
        engine = engine_for(deny, allow_a)
        check(engine, expect().expect(ANY, X, False).expect(ANY, pod("x", "a"), True))
        check(engine, expect().expect(ANY, X, False), port=81)

    def test_should_enforce_policy_to_allow_ingress_traffic_from_pods_in_all_namespaces(self):
        engine = engine_for(netpol("allow-from-all-ns", {
            "podSelector": labels(pod="a"), "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
        check(engine, expect(True))

    def test_should_enforce_policy_to_allow_traffic_only_from_a_different_namespace_based_on_namespaceselector(self):
        engine = engine_for(netpol("allow-client-a-via-ns-selector", {
            "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": labels(ns="y")}]}]}))
        check(engine, expect().expect(X, X, False).expect(Z, X, False))

    def test_should_enforce_policy_based_on_podselector_with_matchexpressions(self):
        engine = engine_for(netpol("x-a-allows-x-b", {
            "podSelector": labels(pod="a"), "ingress": [{"from": [{"podSelector": expression("pod", "In", "b")}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(pod("x", "b"), pod("x", "a"), True))

    def test_should_enforce_policy_based_on_namespaceselector_with_matchexpressions(self):
        engine = engine_for(netpol("allow-ns-y-matchselector", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": expression("ns", "In", "y")}]}]}))
        check(engine, expect().expect(X, pod("x", "a"), False).expect(Z, pod("x", "a"), False))

    def test_should_enforce_policy_based_on_podselector_or_namespaceselector(self):
        engine = engine_for(netpol("allow-ns-not-x-or-pod-b", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": expression("ns", "NotIn", "x")},
                                  {"podSelector": labels(pod="b")}]}]}))
        check(engine, expect().expect(pod("x", "c"), pod("x", "a"), False))

    def test_should_enforce_policy_based_on_podselector_and_namespaceselector(self):
        engine = engine_for(netpol("allow-ns-not-x-and-pod-b", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": expression("ns", "NotIn", "x"),
                                   "podSelector": labels(pod="b")}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False)
              .expect(pod("y", "b"), pod("x", "a"), True).expect(pod("z", "b"), pod("x", "a"), True))

    def test_should_enforce_policy_based_on_multiple_podselectors_and_namespaceselectors(self):
        engine = engine_for(netpol("allow-ns-not-x-and-pod-b-or-c", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": expression("ns", "NotIn", "x"),
                                   "podSelector": expression("pod", "In", "b", "c")}]}]}))
        check(engine, expect().expect(X, pod("x", "a"), False)
              .expect(pod("y", "a"), pod("x", "a"), False).expect(pod("z", "a"), pod("x", "a"), False))

    def test_should_enforce_policy_based_on_any_podselectors(self):
        engine = engine_for(netpol("allow-pod-b-or-c", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"podSelector": labels(pod="b")}, {"podSelector": labels(pod="c")}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False)
              .expect(pod("x", "b"), pod("x", "a"), True).expect(pod("x", "c"), pod("x", "a"), True))

    def test_should_enforce_policy_to_allow_traffic_only_from_a_pod_in_a_different_namespace_based_on_both(self):
        engine = engine_for(netpol("allow-ns-y-pod-a", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="a")}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(pod("y", "a"), pod("x", "a"), True))

    def test_should_enforce_policy_based_on_ports(self):
        engine = engine_for(netpol("allow-ns-y-port-81", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": labels(ns="y")}], "ports": [{"port": 81}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=80)
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(Y, pod("x", "a"), True), port=81)

    def test_should_enforce_multiple_stacked_policies_with_overlapping_podselectors(self):
        port_81 = netpol("allow-ns-y-port-81", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": labels(ns="y")}], "ports": [{"port": 81}]}]})
        port_80 = netpol("allow-ns-y-port-80", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": labels(ns="y")}], "ports": [{"port": 80}]}]})
        only_81 = engine_for(port_81)
        check(only_81, expect().expect(ANY, pod("x", "a"), False), port=80)
        both = engine_for(port_81, port_80)
        for port in (80, 81):
            check(both, expect().expect(ANY, pod("x", "a"), False).expect(Y, pod("x", "a"), True), port=port)

    def test_should_support_allow_all_policy(self):
        engine = engine_for(netpol("allow-all", {"podSelector": {}, "ingress": [{}]}))
        for port in (80, 81):
            check(engine, expect(True), port=port)

    def test_should_allow_ingress_access_on_one_named_port(self):
        engine = engine_for(netpol("allow-all-ingress-on-81", {
            "podSelector": {}, "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}))
        check(engine, expect(True), port=81)
        check(engine, expect().expect(ANY, X, False), port=80)

    def test_should_allow_ingress_access_from_namespace_on_one_named_port(self):
        engine = engine_for(netpol("allow-ns-y-80", {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": labels(ns="y")}], "ports": [{"port": "serve-80-tcp"}]}]}))
        check(engine, expect().expect(X, X, False).expect(Z, X, False), port=80)
        check(engine, expect().expect(ANY, X, False), port=81)

    def test_should_allow_egress_access_on_one_named_port(self):
        engine = engine_for(netpol("allow-egress-on-80", {
            "podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "serve-80-tcp"}]}]}))
        check(engine, expect(True), port=80)
        check(engine, expect().expect(X, ANY, False), port=81)

    def test_should_enforce_updated_policy(self):
        allow_all = netpol("allow-all-mutate-to-deny-all", {"podSelector": {}, "ingress": [{}]})
        check(engine_for(allow_all), expect(True), port=81)
        updated = copy.deepcopy(allow_all)
        updated["spec"]["ingress"] = []
        check(engine_for(updated), expect().expect(ANY, X, False), port=81)

    def test_should_allow_ingress_access_from_updated_namespace(self):
        policy = netpol("allow-client-a-via-ns-selector", {
            "podSelector": labels(pod="a"), "ingress": [{"from": [{"namespaceSelector": labels(ns2="updated")}]}]})
        check(engine_for(policy), expect().expect(ANY, pod("x", "a"), False))
        objects = model_objects()
        next(o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "y")[
            "metadata"]["labels"]["ns2"] = "updated"
        check(engine_for(policy, objects=objects),
              expect().expect(ANY, pod("x", "a"), False).expect(Y, pod("x", "a"), True))

    def test_should_allow_ingress_access_from_updated_pod(self):
        policy = netpol("allow-client-a-via-pod-selector", {
            "podSelector": labels(pod="a"), "ingress": [{"from": [{"podSelector": labels(pod="b", pod2="updated")}]}]})
        check(engine_for(policy), expect().expect(ANY, pod("x", "a"), False))
        objects = model_objects()
        next(o for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == "x"
             and o["metadata"]["name"] == "b")["metadata"]["labels"]["pod2"] = "updated"
        check(engine_for(policy, objects=objects),
              expect().expect(ANY, pod("x", "a"), False).expect(pod("x", "b"), pod("x", "a"), True))

    def test_should_deny_ingress_access_to_updated_pod(self):
        policy = netpol("deny-ingress-via-label-selector", {
            "podSelector": labels(target="isolated"), "policyTypes": ["Ingress"]})
        check(engine_for(policy), expect(True))
        objects = model_objects()
        next(o for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"] == "x"
             and o["metadata"]["name"] == "a")["metadata"]["labels"]["target"] = "isolated"
        check(engine_for(policy, objects=objects), expect().expect(ANY, pod("x", "a"), False))

    def test_should_deny_ingress_from_pods_on_other_namespaces(self):
        engine = engine_for(netpol("deny-empty-policy", {
            "podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}))
        check(engine, expect().expect(Y, X, False).expect(Z, X, False))

    def test_should_deny_egress_from_pods_based_on_podselector(self):
        engine = engine_for(netpol("deny-egress-pod-a", {"podSelector": labels(pod="a"), "policyTypes": ["Egress"]}))
        check(engine, expect().expect(pod("x", "a"), ANY, False))

    def test_should_deny_egress_from_all_pods_in_a_namespace(self):
        engine = engine_for(netpol("deny-egress-ns-x", {"podSelector": {}, "policyTypes": ["Egress"]}))
        check(engine, expect().expect(X, ANY, False))

    def test_should_work_with_ingress_egress_specified_together(self):
        engine = engine_for(netpol("allow-client-a-via-pod-selector", {
            "podSelector": labels(pod="a"),
            "ingress": [{"from": [{"podSelector": labels(pod="b")}]}],
            "egress": [{"ports": [{"port": 80}]}],
            "policyTypes": ["Ingress", "Egress"]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(pod("x", "b"), pod("x", "a"), True), port=80)
        check(engine, expect().expect(ANY, pod("x", "a"), False).expect(pod("x", "b"), pod("x", "a"), True)
              .expect(pod("x", "a"), ANY, False), port=81)

    def test_should_support_denying_of_egress_traffic_on_the_client_side_even_if_the_server_allows_it(self):
        egress = netpol("allow-to-ns-y-pod-a", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="a")}]}]})
        server_allows = [netpol(f"allow-all-to-{ns}", {"podSelector": {}, "ingress": [{}]}, namespace=ns)
                         for ns in ("y", "z")]
        check(engine_for(egress, *server_allows),
              expect().expect(pod("x", "a"), ANY, False).expect(pod("x", "a"), pod("y", "a"), True))

    def test_should_enforce_egress_policy_allowing_traffic_to_a_server_in_a_different_namespace(self):
        engine = engine_for(netpol("allow-to-ns-y-pod-a", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="a")}]}]}))
        check(engine, expect().expect(pod("x", "a"), ANY, False).expect(pod("x", "a"), pod("y", "a"), True))

    def test_should_enforce_ingress_policy_allowing_any_port_traffic_to_a_server_on_a_specific_protocol(self):
        engine = engine_for(netpol("allow-ingress-by-proto", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"protocol": "TCP"}]}]}))
        check(engine, expect(True), port=80, protocol="TCP")
        check(engine, expect(True), port=81, protocol="TCP")
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=80, protocol="UDP")

    def test_should_not_allow_access_by_tcp_when_a_policy_specifies_only_udp(self):
        engine = engine_for(netpol("allow-only-udp-ingress-on-port-81", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"port": 81, "protocol": "UDP"}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=81, protocol="TCP")
        check(engine, expect(True), port=81, protocol="UDP")

    def test_should_properly_isolate_pods_selected_by_a_policy_allowing_sctp(self):
        engine = engine_for(netpol("allow-only-sctp-ingress-on-port-80", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"port": 80, "protocol": "SCTP"}]}]}))
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=80, protocol="TCP")
        check(engine, expect(True), port=80, protocol="SCTP")

    def test_should_allow_egress_access_to_server_in_cidr_block(self):
        engine = engine_for(netpol("allow-client-a-via-cidr-egress-rule", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": f"{pod_ip('y', 'b')}/32"}}]}]}))
        check(engine, expect().expect(pod("x", "a"), ANY, False).expect(pod("x", "a"), pod("y", "b"), True))

    def test_should_enforce_except_clause_while_egress_access_to_server_in_cidr_block(self):
        engine = engine_for(netpol("deny-client-a-via-except-cidr-egress-rule", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": [f"{pod_ip('x', 'b')}/32"]}}]}]}))
        check(engine, expect().expect(pod("x", "a"), pod("x", "b"), False))

    def test_should_ensure_an_ip_overlapping_both_cidr_and_except_is_allowed(self):
        except_b = netpol("deny-client-a-via-except-cidr-egress-rule", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": [f"{pod_ip('x', 'b')}/32"]}}]}]})
        check(engine_for(except_b), expect().expect(pod("x", "a"), pod("x", "b"), False))
        allow_b = netpol("allow-client-a-via-cidr-egress-rule", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": f"{pod_ip('x', 'b')}/32"}}]}]})
        check(engine_for(except_b, allow_b), expect(True))

    def test_should_enforce_ingress_and_egress_policies_independently_based_on_podselector(self):
        deny_egress_a = netpol("deny-egress-pod-a", {"podSelector": labels(pod="a"), "policyTypes": ["Egress"]})
        deny_ingress_b = netpol("deny-ingress-pod-b", {"podSelector": labels(pod="b"), "policyTypes": ["Ingress"]})
        check(engine_for(deny_egress_a, deny_ingress_b),
              expect().expect(pod("x", "a"), ANY, False).expect(ANY, pod("x", "b"), False))

    def test_should_enforce_policy_to_allow_traffic_based_on_namespaceselector_using_default_ns_label(self):
        engine = engine_for(netpol("allow-client-a-via-ns-selector-for-immutable-ns-label", {
            "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": labels(**{NAMESPACE_NAME_LABEL: "y"})}]}]}))
        check(engine, expect().expect(X, X, False).expect(Z, X, False))

    def test_should_enforce_multiple_ingress_policies_with_ingress_allow_all_policy_taking_precedence(self):
        only_80 = netpol("allow-ingress-port-80", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"port": 80}]}]})
        check(engine_for(only_80), expect().expect(ANY, pod("x", "a"), False), port=81)
        allow_all = netpol("allow-all", {"podSelector": {}, "ingress": [{}]})
        check(engine_for(only_80, allow_all), expect(True), port=81)

    def test_should_enforce_multiple_egress_policies_with_egress_allow_all_policy_taking_precedence(self):
        only_80 = netpol("allow-egress-port-80", {"podSelector": labels(pod="a"), "policyTypes": ["Egress"],
                                                       "egress": [{"ports": [{"port": 80}]}]})
        check(engine_for(only_80), expect().expect(pod("x", "a"), ANY, False), port=81)
        allow_all = netpol("allow-all", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})
        check(engine_for(only_80, allow_all), expect(True), port=81)

    def test_should_stop_enforcing_policies_after_they_are_deleted(self):
        check(engine_for(netpol("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})),
              expect().expect(ANY, X, False).expect(X, ANY, False))
        check(engine_for(), expect(True))

    def test_should_allow_ingress_access_on_a_port_range_with_endport(self):
        engine = engine_for(netpol("allow-ingress-80-81", {
            "podSelector": labels(pod="a"), "ingress": [{"ports": [{"port": 80, "endPort": 81}]}]}))
        for port in (80, 81):
            check(engine, expect(True), port=port)
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=82)
        check(engine, expect().expect(ANY, pod("x", "a"), False), port=79)

    def test_should_allow_egress_access_on_a_port_range_with_endport(self):
        engine = engine_for(netpol("allow-egress-81-9000", {
            "podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 81, "endPort": 9000}]}]}))
        check(engine, expect().expect(X, ANY, False), port=80)
        check(engine, expect(True), port=81)
        check(engine, expect(True), port=9000)

    def test_ipv6_cidr_and_except(self):
        engine = engine_for(netpol("v6", {
            "podSelector": labels(pod="a"), "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "fd00:1:2::/48", "except": ["fd00:1:2::2/128"]}}]}]}),
            objects=model_objects(ipv6=True))
        check(engine, expect().expect(pod("x", "a"), ANY, False)
              .expect(pod("x", "a"), Y, True).expect(pod("x", "a"), pod("y", "b"), False))

    def test_all_cases_together_match_pair_by_pair_evaluation(self):
        """Many overlapping policies in all three namespaces: matrix() and evaluate() agree on every cell."""
        policies = [
            netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace="y"),
            netpol("egress-named", {"podSelector": labels(pod="b"), "egress": [
                {"to": [{"namespaceSelector": expression("ns", "NotIn", "y")}], "ports": [{"port": "serve-81-tcp"}]}]},
                namespace="y"),
            netpol("in", {"podSelector": expression("pod", "Exists"), "ingress": [
                {"from": [{"podSelector": expression("pod", "DoesNotExist")}, {"ipBlock": {"cidr": "10.1.2.0/24"}}]}]},
                namespace="z"),
            netpol("range", {"podSelector": labels(pod="c"), "ingress": [{"ports": [{"port": 81, "endPort": 90}]}]}),
        ]
        engine = engine_for(*policies)
        for port in (80, 81, 85):
            for protocol in ("TCP", "UDP"):
                matrix = engine.matrix(port, protocol)
                for src, row in matrix.items():
                    for dst, allowed in row.items():
                        assert engine.evaluate(src, dst, port, protocol).allowed == allowed


# ------------------------------------------------------------------------------------------------------------
# The seed's example (../shared/seeds/): separate peers are ORed
# ------------------------------------------------------------------------------------------------------------


def seed_objects(peers_in_one_item: bool = False) -> list[dict]:
    def ns(name, **lab):
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": lab}}

    def app(namespace, name, port=None):
        spec = {"containers": [{"name": name, "image": "x:1",
                                "ports": [{"containerPort": port, "name": "http"}] if port else []}]}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}}, "spec": spec}

    peers = ([{"podSelector": labels(app="web"), "namespaceSelector": labels(env="production")}]
             if peers_in_one_item else
             [{"podSelector": labels(app="web")}, {"namespaceSelector": labels(env="production")}])
    return [
        ns("production", env="production"), ns("staging", env="staging"), ns("batch", env="production"),
        app("production", "web"), app("production", "api", 8080), app("production", "db", 5432),
        app("staging", "test"), app("batch", "report"),
        netpol("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="production"),
        netpol("allow-web-to-api", {
            "podSelector": labels(app="api"), "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"port": 8080, "protocol": "TCP"}]}]}, namespace="production"),
    ]


class TestSeedExample:
    def test_separate_peers_let_every_pod_of_an_env_production_namespace_reach_the_api(self):
        matrix = PolicyEngine.from_objects(seed_objects()).matrix(8080)
        assert matrix["production/web"]["production/api"]
        assert matrix["production/db"]["production/api"]  # wider than the diagram: OR, not AND
        assert matrix["batch/report"]["production/api"]  # another namespace labelled env=production
        assert not matrix["staging/test"]["production/api"]

    def test_peers_in_one_item_admit_only_web_pods_of_env_production_namespaces(self):
        matrix = PolicyEngine.from_objects(seed_objects(peers_in_one_item=True)).matrix(8080)
        assert matrix["production/web"]["production/api"]
        assert not matrix["production/db"]["production/api"]
        assert not matrix["batch/report"]["production/api"]
        assert not matrix["staging/test"]["production/api"]

    def test_default_deny_blocks_the_rest_of_production(self):
        engine = PolicyEngine.from_objects(seed_objects())
        assert not engine.matrix(5432)["production/web"]["production/db"]
        assert not engine.matrix(5432)["production/api"]["production/db"]
        assert engine.matrix(80)["production/web"]["staging/test"]  # staging has no policy

    def test_verdict_names_the_allowing_rule_and_peer(self):
        verdict = PolicyEngine.from_objects(seed_objects()).evaluate("production/db", "production/api", 8080)
        assert verdict.allowed and not verdict.egress.isolated
        [admission] = verdict.ingress.allowing
        assert str(admission.target.policy) == "production/allow-web-to-api"
        assert (admission.rule.index, admission.peer.index, admission.port.index) == (1, 2, 1)
        assert [str(t.target.policy) for t in verdict.ingress.denying] == ["production/default-deny-ingress"]


# ------------------------------------------------------------------------------------------------------------
# Semantics, one rule at a time
# ------------------------------------------------------------------------------------------------------------


def small(*policies: dict, extra: tuple[dict, ...] = ()) -> PolicyEngine:
    objects = [
        {"kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "one"}}},
        {"kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"app": "p"}},
         "spec": {"containers": [{"ports": [{"containerPort": 8080, "name": "http"},
                                            {"containerPort": 53, "name": "dns", "protocol": "UDP"}]}]},
         "status": {"podIP": "10.0.0.1"}},
        {"kind": "Pod", "metadata": {"name": "q", "namespace": "a", "labels": {"app": "q"}},
         "status": {"podIP": "10.0.0.2"}},
        {"kind": "Pod", "metadata": {"name": "r", "namespace": "b", "labels": {"app": "r"}}},
        *extra, *policies,
    ]
    return PolicyEngine.from_objects(objects)


class TestPolicyTypes:
    def test_absent_policytypes_mean_ingress_only_when_no_egress_rules(self):
        policy = compile_policy(netpol("p", {"podSelector": {}}))
        assert policy.policy_types == (Direction.INGRESS,) and not policy.policy_types_given

    def test_absent_policytypes_include_egress_when_egress_rules_are_written(self):
        policy = compile_policy(netpol("p", {"podSelector": {}, "egress": [{}]}))
        assert policy.policy_types == (Direction.INGRESS, Direction.EGRESS)

    def test_empty_policytypes_list_is_defaulted_like_an_absent_one(self):
        policy = compile_policy(netpol("p", {"podSelector": {}, "policyTypes": [], "egress": [{}]}))
        assert policy.policy_types == (Direction.INGRESS, Direction.EGRESS) and not policy.policy_types_given

    def test_egress_rules_without_policytypes_also_isolate_ingress(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"), "egress": [{}]}, namespace="a"))
        assert engine.is_allowed("a/p", "b/r") and not engine.is_allowed("a/q", "a/p")

    def test_empty_egress_list_does_not_add_egress(self):
        assert compile_policy(netpol("p", {"podSelector": {}, "egress": []})).policy_types == (Direction.INGRESS,)

    def test_egress_only_policy_leaves_ingress_open(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"), "policyTypes": ["Egress"]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p") and not engine.is_allowed("a/p", "a/q")

    def test_rules_left_out_of_policytypes_are_ignored_and_reported(self):
        policy = compile_policy(netpol("p", {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}))
        assert policy.ignored == (Direction.EGRESS,)
        assert policy.target(Direction.EGRESS) is None

    def test_ingress_rules_ignored_when_policytypes_is_egress(self):
        engine = small(netpol("p", {"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}],
                                    "egress": [{"to": [{"podSelector": labels(app="q")}]}]}, namespace="a"))
        assert engine.is_allowed("b/r", "a/p")
        assert engine.is_allowed("a/p", "a/q") and not engine.is_allowed("a/p", "b/r")

    def test_connection_needs_source_egress_and_destination_ingress(self):
        engine = small(
            netpol("out", {"podSelector": labels(app="p"), "egress": [{"to": [{"podSelector": labels(app="q")}]}],
                           "policyTypes": ["Egress"]}, namespace="a"),
            netpol("in", {"podSelector": labels(app="q"), "ingress": [{"from": [{"podSelector": labels(app="r")}]}]},
                   namespace="a"),
        )
        verdict = engine.evaluate("a/p", "a/q")
        assert verdict.egress.allowed and not verdict.ingress.allowed and not verdict.allowed


class TestRuleLists:
    @pytest.mark.parametrize("ingress", [None, []], ids=["absent", "empty"])
    def test_absent_or_empty_ingress_denies_all(self, ingress):
        spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
        if ingress is not None:
            spec["ingress"] = ingress
        assert not small(netpol("p", spec, namespace="a")).is_allowed("a/q", "a/p")

    def test_empty_rule_allows_all(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{}]}, namespace="a"))
        assert engine.is_allowed("b/r", "a/p", 1, "UDP")

    def test_null_rule_reads_as_empty_rule(self):
        assert small(netpol("p", {"podSelector": {}, "ingress": [None]}, namespace="a")).is_allowed("b/r", "a/p")

    @pytest.mark.parametrize("peers", [None, []], ids=["absent", "empty"])
    def test_absent_or_empty_from_means_every_source(self, peers):
        rule = {"ports": [{"port": 8080}]}
        if peers is not None:
            rule["from"] = peers
        engine = small(netpol("p", {"podSelector": {}, "ingress": [rule]}, namespace="a"))
        assert engine.is_allowed("b/r", "a/p", 8080) and not engine.is_allowed("b/r", "a/p", 80)

    @pytest.mark.parametrize("ports", [None, []], ids=["absent", "empty"])
    def test_absent_or_empty_ports_mean_every_port(self, ports):
        rule = {"from": [{"podSelector": {}}]}
        if ports is not None:
            rule["ports"] = ports
        engine = small(netpol("p", {"podSelector": {}, "ingress": [rule]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p", 1234, "SCTP")

    def test_several_policies_union(self):
        engine = small(
            netpol("one", {"podSelector": labels(app="p"), "ingress": [{"from": [{"podSelector": labels(app="q")}]}]},
                   namespace="a"),
            netpol("two", {"podSelector": labels(app="p"), "ingress": [{"from": [{"namespaceSelector": {}}]}]},
                   namespace="a"),
        )
        verdict = engine.evaluate("b/r", "a/p")
        assert verdict.allowed
        assert [str(a.target.policy) for a in verdict.ingress.allowing] == ["a/two"]

    def test_policy_only_selects_pods_in_its_own_namespace(self):
        engine = small(netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="b"))
        assert engine.is_allowed("a/q", "a/p") and not engine.is_allowed("a/q", "b/r")


class TestPeers:
    def test_pod_selector_alone_stays_in_the_policy_namespace(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"),
                                    "ingress": [{"from": [{"podSelector": {}}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p") and not engine.is_allowed("b/r", "a/p")
        [rule] = engine.evaluate("b/r", "a/p").ingress.selecting[0].rules
        assert rule.peers[0].miss is PeerMiss.OTHER_NAMESPACE

    def test_namespace_selector_alone_selects_every_pod_of_matching_namespaces(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"),
                                    "ingress": [{"from": [{"namespaceSelector": labels(team="one")}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p") and not engine.is_allowed("b/r", "a/p")

    def test_empty_namespace_selector_selects_all_namespaces(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"),
                                    "ingress": [{"from": [{"namespaceSelector": {}}]}]}, namespace="a"))
        assert engine.is_allowed("b/r", "a/p")

    def test_both_selectors_in_one_peer_are_anded(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"), "ingress": [{"from": [
            {"namespaceSelector": {}, "podSelector": labels(app="r")}]}]}, namespace="a"))
        assert engine.is_allowed("b/r", "a/p") and not engine.is_allowed("a/q", "a/p")
        [rule] = engine.evaluate("a/q", "a/p").ingress.selecting[0].rules
        assert rule.peers[0].miss is PeerMiss.POD_LABELS

    def test_undeclared_namespace_has_only_its_name_label(self):
        engine = small()
        assert engine.inventory.namespaces["b"].labels == {NAMESPACE_NAME_LABEL: "b"}
        assert not engine.inventory.namespaces["b"].declared
        assert engine.inventory.namespaces["a"].labels == {"team": "one", NAMESPACE_NAME_LABEL: "a"}

    def test_name_label_is_added_and_cannot_be_overridden(self):
        inventory = inventory_from_objects([
            {"kind": "Namespace", "metadata": {"name": "a", "labels": {NAMESPACE_NAME_LABEL: "other"}}}])
        assert inventory.namespaces["a"].labels[NAMESPACE_NAME_LABEL] == "a"

    def test_namespace_selector_on_a_label_the_namespace_lacks_matches_nothing(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"),
                                    "ingress": [{"from": [{"namespaceSelector": labels(name="b")}]}]}, namespace="a"))
        assert not engine.is_allowed("b/r", "a/p")
        [rule] = engine.evaluate("b/r", "a/p").ingress.selecting[0].rules
        assert rule.peers[0].miss is PeerMiss.NAMESPACE_LABELS

    def test_ip_block_matches_pod_ip_and_honours_except(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"), "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.2/32"]}}]}]}, namespace="a"))
        assert not engine.is_allowed("a/q", "a/p")
        [rule] = engine.evaluate("a/q", "a/p").ingress.selecting[0].rules
        assert rule.peers[0].miss is PeerMiss.IN_EXCEPT

    def test_pod_without_ip_never_matches_an_ip_block(self):
        engine = small(netpol("p", {"podSelector": labels(app="p"), "ingress": [{"from": [
            {"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p") and not engine.is_allowed("b/r", "a/p")
        [rule] = engine.evaluate("b/r", "a/p").ingress.selecting[0].rules
        assert rule.peers[0].miss is PeerMiss.NO_IP

    def test_ipv4_block_does_not_match_ipv6_pod(self):
        engine = small(
            netpol("p", {"podSelector": labels(app="p"), "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
                   namespace="a"),
            extra=({"kind": "Pod", "metadata": {"name": "v6", "namespace": "a"}, "status": {"podIP": "fd00::1"}},))
        assert not engine.is_allowed("a/v6", "a/p")
        assert engine.evaluate("a/v6", "a/p").ingress.selecting[0].rules[0].peers[0].miss is PeerMiss.OUTSIDE_CIDR

    def test_ip_block_network_is_public(self):
        # graders.labs.lab05_network_policy reads it to say which addresses a block admits
        block = compile_policy(netpol("p", {"podSelector": {}, "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}}]}]})).targets[0].rules[0].peers[0].ip_block
        assert str(block.network) == "10.1.0.0/16" and block.excepts == ("10.1.2.0/24",)

    def test_pod_ips_list_is_read(self):
        engine = small(
            netpol("p", {"podSelector": labels(app="p"), "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]},
                   namespace="a"),
            extra=({"kind": "Pod", "metadata": {"name": "dual", "namespace": "a"},
                    "status": {"podIP": "10.9.9.9", "podIPs": [{"ip": "10.9.9.9"}, {"ip": "fd00::9"}]}},))
        assert engine.is_allowed("a/dual", "a/p")


class TestSelectors:
    @pytest.mark.parametrize(("requirement", "labels_", "matches"), [
        (Requirement("env", "In", ("a", "b")), {"env": "b"}, True),
        (Requirement("env", "In", ("a",)), {}, False),
        (Requirement("env", "NotIn", ("a",)), {"env": "b"}, True),
        (Requirement("env", "NotIn", ("a",)), {}, True),  # a missing key is "not in" any set
        (Requirement("env", "NotIn", ("a",)), {"env": "a"}, False),
        (Requirement("env", "Exists"), {"env": ""}, True),
        (Requirement("env", "Exists"), {}, False),
        (Requirement("env", "DoesNotExist"), {}, True),
        (Requirement("env", "DoesNotExist"), {"env": "x"}, False),
    ])
    def test_match_expressions(self, requirement, labels_, matches):
        assert requirement.matches(labels_) is matches

    def test_match_labels_and_expressions_are_anded(self):
        selector = LabelSelector.parse({"matchLabels": {"app": "web"},
                                        "matchExpressions": [{"key": "tier", "operator": "Exists"}]}, "s")
        assert selector.matches({"app": "web", "tier": "1"})
        assert not selector.matches({"app": "web"})
        assert selector.unmet({"app": "api"}) == ("app=web", "tier")
        assert selector.describe() == "app=web,tier"

    def test_empty_selector_matches_everything(self):
        assert LabelSelector.parse({}, "s").matches({}) and LabelSelector.parse(None, "s").is_empty

    @pytest.mark.parametrize(("expression_", "message"), [
        ({"key": "a", "operator": "Equals", "values": ["x"]}, "is not one of"),
        ({"key": "a", "operator": "In"}, "needs at least one value"),
        ({"key": "a", "operator": "Exists", "values": ["x"]}, "takes no values"),
        ({"operator": "In", "values": ["x"]}, "needs 'key' and 'operator'"),
    ])
    def test_bad_expressions_are_errors_naming_the_policy(self, expression_, message):
        with pytest.raises(PolicyError, match=message) as info:
            compile_policy(netpol("bad", {"podSelector": {"matchExpressions": [expression_]}}))
        assert "NetworkPolicy x/bad" in str(info.value)


class TestPorts:
    def test_named_port_resolves_against_the_destination_pod(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p", 8080)
        assert not engine.is_allowed("a/q", "a/p", 80)
        # a/q declares no port named http: nothing matches it
        assert not engine.is_allowed("a/p", "a/q", 8080)
        miss = engine.evaluate("a/p", "a/q", 8080).ingress.selecting[0].rules[0].ports[0].miss
        assert miss is PortMiss.NAMED_PORT_MISSING
        miss = engine.evaluate("a/q", "a/p", 80).ingress.selecting[0].rules[0].ports[0].miss
        assert miss is PortMiss.NAMED_PORT_NUMBER

    def test_named_port_protocol_must_match(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "dns"}]}]}, namespace="a"))
        assert not engine.is_allowed("a/q", "a/p", 53, "TCP")  # rule defaults to TCP; dns is a UDP port
        udp = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "dns", "protocol": "UDP"}]}]},
                           namespace="a"))
        assert udp.is_allowed("a/q", "a/p", 53, "UDP")

    def test_egress_named_port_resolves_against_the_destination(self):
        engine = small(netpol("p", {"podSelector": labels(app="q"), "egress": [{"ports": [{"port": "http"}]}]},
                              namespace="a"))
        assert engine.is_allowed("a/q", "a/p", 8080) and not engine.is_allowed("a/q", "b/r", 8080)

    def test_workload_named_ports_come_from_the_template(self):
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "a"},
                      "spec": {"template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [
                          {"name": "api", "ports": [{"containerPort": 9090, "name": "metrics"}]}]}}}}
        engine = small(netpol("p", {"podSelector": labels(app="api"), "ingress": [{"ports": [{"port": "metrics"}]}]},
                              namespace="a"), extra=(deployment,))
        assert engine.is_allowed("a/q", "a/api", 9090) and not engine.is_allowed("a/q", "a/api", 8080)

    def test_port_range_is_inclusive(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8080}]}]},
                              namespace="a"))
        assert [engine.is_allowed("a/q", "a/p", port) for port in (7999, 8000, 8080, 8081)] == [
            False, True, True, False]

    def test_protocol_defaults_to_tcp(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 53}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p", 53, "TCP") and not engine.is_allowed("a/q", "a/p", 53, "UDP")

    def test_quoted_number_is_a_number(self):
        engine = small(netpol("p", {"podSelector": {}, "ingress": [{"ports": [{"port": "8080"}]}]}, namespace="a"))
        assert engine.is_allowed("a/q", "a/p", 8080)

    @pytest.mark.parametrize(("port", "message"), [
        ({"port": 80, "endPort": 79}, "below port"),
        ({"port": "http", "endPort": 90}, "needs a numeric port"),
        ({"endPort": 90}, "endPort needs port"),
        ({"port": 70000}, "outside 1..65535"),
        ({"port": 80, "protocol": "ICMP"}, "not one of TCP, UDP, SCTP"),
    ])
    def test_bad_ports_are_errors(self, port, message):
        with pytest.raises(PolicyError, match=message):
            compile_policy(netpol("bad", {"podSelector": {}, "ingress": [{"ports": [port]}]}))

    def test_dns_egress_allowance_needs_udp_and_tcp(self):
        kube_dns = {"kind": "Pod", "metadata": {"name": "coredns", "namespace": "kube-system",
                                                "labels": {"k8s-app": "kube-dns"}}}
        dns_peer = {"namespaceSelector": labels(**{NAMESPACE_NAME_LABEL: "kube-system"}),
                    "podSelector": labels(**{"k8s-app": "kube-dns"})}
        engine = small(netpol("dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [dns_peer], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]},
            namespace="a"), extra=(kube_dns,))
        assert engine.is_allowed("a/p", "kube-system/coredns", 53, "UDP")
        assert engine.is_allowed("a/p", "kube-system/coredns", 53, "TCP")
        assert not engine.is_allowed("a/p", "kube-system/coredns", 80)
        assert not engine.is_allowed("a/p", "a/q", 53, "UDP")


class TestInventory:
    def test_workloads_give_one_representative_pod(self):
        kinds = {
            "Deployment": {"template": {"metadata": {"labels": {"app": "d"}}}},
            "StatefulSet": {"template": {"metadata": {"labels": {"app": "s"}}}},
            "DaemonSet": {"template": {"metadata": {"labels": {"app": "ds"}}}},
            "ReplicaSet": {"template": {"metadata": {"labels": {"app": "rs"}}}},
            "Job": {"template": {"metadata": {"labels": {"app": "j"}}}},
            "CronJob": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "cj"}}}}}},
        }
        objects = [{"kind": k, "metadata": {"name": k.lower(), "namespace": "w"}, "spec": spec}
                   for k, spec in kinds.items()]
        objects.append({"kind": "Service", "metadata": {"name": "ignored", "namespace": "w"}})
        inventory = inventory_from_objects(objects)
        assert {p.key: p.labels["app"] for p in inventory.pods} == {
            "w/cronjob": "cj", "w/daemonset": "ds", "w/deployment": "d", "w/job": "j", "w/replicaset": "rs",
            "w/statefulset": "s"}
        assert all(p.ips == () for p in inventory.pods)

    def test_objects_without_namespace_go_to_the_default_namespace(self):
        inventory = inventory_from_objects([{"kind": "Pod", "metadata": {"name": "p"}}], default_namespace="lab")
        assert inventory.pods[0].key == "lab/p" and "lab" in inventory.namespaces

    def test_pods_are_sorted(self):
        engine = engine_for()
        assert [p.key for p in engine.pods] == list(MODEL_PODS)

    def test_duplicate_pod_names_are_an_error(self):
        with pytest.raises(PolicyError, match="a second pod named a/web"):
            inventory_from_objects([
                {"kind": "Pod", "metadata": {"name": "web", "namespace": "a"}},
                {"kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}, "spec": {}}])

    def test_duplicate_policy_is_an_error(self):
        with pytest.raises(PolicyError, match="NetworkPolicy x/p: defined twice"):
            inventory_from_objects([netpol("p", {"podSelector": {}}), netpol("p", {"podSelector": {}})])

    @pytest.mark.parametrize(("peer", "message"), [
        ({}, "must set podSelector, namespaceSelector or ipBlock"),
        ({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}, "cannot be combined"),
        ({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}, "is not inside cidr"),
        ({"ipBlock": {"cidr": "banana"}}, "does not appear to be an IPv4 or IPv6 network"),
        ({"podselector": {}}, "unknown peer field"),
    ])
    def test_bad_peers_are_errors_naming_policy_and_field(self, peer, message):
        with pytest.raises(PolicyError, match=message) as info:
            compile_policy(netpol("bad", {"podSelector": {}, "ingress": [{"from": [peer]}]}))
        assert "NetworkPolicy x/bad: spec.ingress[1].from[1]" in str(info.value)
        assert info.value.obj["metadata"]["name"] == "bad"

    def test_bad_pod_ip_is_an_error(self):
        with pytest.raises(PolicyError, match="Pod a/p: status.podIP"):
            inventory_from_objects([{"kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                                     "status": {"podIP": "10.0.0.300"}}])

    def test_unknown_pod_lists_the_known_ones(self):
        with pytest.raises(UnknownPod, match="unknown pod 'x/q'.*x/a"):
            engine_for().evaluate("x/q", "x/a")

    @pytest.mark.parametrize(("port", "protocol"), [(0, "TCP"), (80, "ICMP")])
    def test_bad_question_is_an_error(self, port, protocol):
        with pytest.raises(PolicyError):
            engine_for().matrix(port, protocol)

    def test_matrix_leaves_out_same_pod_traffic(self):
        matrix = engine_for().matrix()
        assert all(src not in row for src, row in matrix.items())
        assert sum(len(row) for row in matrix.values()) == 9 * 8

    def test_lowercase_protocol_is_accepted(self):
        assert engine_for().matrix(80, "udp")["x/a"]["x/b"]

    def test_no_pods_gives_an_empty_matrix(self):
        assert PolicyEngine.from_objects([netpol("p", {"podSelector": {}})]).matrix() == {}


class TestServiceSelects:
    """A Service's selector is a plain map matched with the same code as LabelSelector, but selects nothing
    when empty (Kubernetes then manages no endpoints)."""

    @pytest.mark.parametrize(("selector", "labels", "selected"), [
        ({"app": "web"}, {"app": "web", "tier": "1"}, True),
        ({"app": "web", "tier": "2"}, {"app": "web", "tier": "1"}, False),
        ({"app": "web"}, None, False),
        ({}, {"app": "web"}, False),
        (None, {"app": "web"}, False),
    ])
    def test_service_selects(self, selector, labels, selected):
        from graders.netpol.selectors import service_selects

        assert service_selects(selector, labels) is selected


def test_a_live_pod_reads_as_the_document_the_engine_reads():
    from types import SimpleNamespace as NS

    from graders.netpol.inventory import pod_document, pod_from_object

    live = NS(metadata=NS(name="coredns-1", namespace="kube-system", labels={"k8s-app": "kube-dns"}),
              spec=NS(containers=[NS(ports=[NS(name="dns", container_port=53, protocol="UDP"),
                                            NS(name="dns-tcp", container_port=53, protocol=None)])]),
              status=NS(pod_ip="10.244.0.2"))
    pod = pod_from_object(pod_document(live))
    assert pod.key == "kube-system/coredns-1" and pod.ips == ("10.244.0.2",)
    assert pod.named_port("dns-tcp", "TCP").port == 53 and pod.labels == {"k8s-app": "kube-dns"}
