"""graders.netpol.explain: every verdict in words — which policies select each side, which rule and peer admit, or why
none does. The phrases tested here are the ones learners read for the lab's named mistakes."""
from __future__ import annotations

import pytest

from graders.netpol.explain import explain, explain_verdict
from graders.netpol.inventory import NAMESPACE_NAME_LABEL
from graders.netpol.verdicts import PolicyEngine


def ns(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def app(namespace: str, name: str, port: int | None = None, port_name: str = "http", ip: str | None = None) -> dict:
    containers = [{"name": name, "image": "app:1",
                   "ports": [{"containerPort": port, "name": port_name}] if port else []}]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
           "spec": {"containers": containers}}
    if ip:
        pod["status"] = {"podIP": ip}
    return pod


def netpol(name: str, spec: dict, namespace: str = "production") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def match(**labels: str) -> dict:
    return {"matchLabels": labels}


DEFAULT_DENY = netpol("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
SEED_ALLOW = netpol("allow-web-to-api", {
    "podSelector": match(app="api"), "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"podSelector": match(app="web")}, {"namespaceSelector": match(env="production")}],
                 "ports": [{"port": 8080, "protocol": "TCP"}]}]})


def world(*policies: dict) -> PolicyEngine:
    return PolicyEngine.from_objects([
        ns("production", env="production"), ns("staging", env="staging"),
        app("production", "web", ip="10.0.1.1"), app("production", "api", 8080, ip="10.0.1.2"),
        app("production", "db", 5432, port_name="postgres", ip="10.0.1.3"), app("production", "test"),
        app("staging", "test", ip="10.0.2.1"),
        *policies,
    ])


class TestAllowed:
    def test_no_policy_at_all(self):
        result = explain(world(), "production/web", "production/api", 8080)
        assert result.allowed
        assert result.lines[0] == "production/web -> production/api on 8080/TCP: ALLOWED"
        assert "no NetworkPolicy selects it for Egress, so every destination is allowed" in result.text
        assert "no NetworkPolicy selects it for Ingress, so every source is allowed" in result.text
        assert result.summary == "allowed: no NetworkPolicy selects either pod"

    def test_or_peers_name_the_peer_that_admits_and_say_they_are_ored(self):
        result = explain(world(DEFAULT_DENY, SEED_ALLOW), "production/db", "production/api", 8080)
        assert result.allowed
        expected = ("allowed by production/allow-web-to-api, ingress rule 1, peer 2: namespaceSelector "
                    "env=production — peers in separate list items are ORed")
        assert expected in result.text
        assert result.summary == f"allowed: {expected}"

    def test_the_deny_policy_is_shown_as_harmless_when_another_admits(self):
        result = explain(world(DEFAULT_DENY, SEED_ALLOW), "production/web", "production/api", 8080)
        assert "selected for Ingress by production/default-deny-ingress, production/allow-web-to-api; allowed" \
            in result.text
        assert "policies only add allowances, and another policy admits this connection" in result.text

    def test_and_peer_says_selectors_are_anded(self):
        policy = netpol("web-only", {"podSelector": match(app="api"), "ingress": [{"from": [
            {"namespaceSelector": match(env="production"), "podSelector": match(app="web")}]}]})
        result = explain(world(policy), "production/web", "production/api")
        assert ("allowed by production/web-only, ingress rule 1, peer 1: namespaceSelector env=production AND "
                "podSelector app=web — namespaceSelector and podSelector in one peer are ANDed (all ports)") \
            in result.text

    def test_rule_without_from_admits_every_peer(self):
        policy = netpol("any", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080}]}]})
        result = explain(world(policy), "staging/test", "production/api", 8080)
        assert "allowed by production/any, ingress rule 1, no 'from', so every peer" in result.text


class TestBlocked:
    def test_peer_does_not_match_the_source_labels(self):
        web_only = netpol("allow-web-to-api", {"podSelector": match(app="api"), "ingress": [
            {"from": [{"podSelector": match(app="web")}], "ports": [{"port": 8080}]}]})
        result = explain(world(web_only), "production/test", "production/api", 8080)
        assert not result.allowed
        assert result.lines[0] == "production/test -> production/api on 8080/TCP: BLOCKED by the destination's ingress"
        text = result.text
        assert ("policy production/allow-web-to-api selects the destination for Ingress but no rule's peer matches "
                "the source:") in text
        assert "peer 1 podSelector app=web does not match labels app=test" in text

    def test_podselector_only_peer_does_not_reach_other_namespaces(self):
        result = explain(world(SEED_ALLOW), "staging/test", "production/api", 8080)
        assert ("peer 1 podSelector app=web only selects pods in namespace production (it has no namespaceSelector),"
                " and staging/test is in staging") in result.text
        assert ("peer 2 namespaceSelector env=production does not match namespace staging (labels "
                f"env=staging,{NAMESPACE_NAME_LABEL}=staging)") in result.text

    def test_wrong_port(self):
        policy = netpol("web-80", {"podSelector": match(app="api"), "ingress": [
            {"from": [{"podSelector": match(app="web")}], "ports": [{"port": 80}]}]})
        result = explain(world(policy), "production/web", "production/api", 8080)
        assert "policy production/web-80 selects the destination for Ingress but no rule allows port 8080/TCP" \
            in result.text
        assert "ingress rule 1: peer 1 matches, but port 8080/TCP not in rule ports [80/TCP]" in result.text
        assert "port 8080/TCP not in rule ports [80/TCP]" in result.summary

    def test_named_port_missing_on_the_destination(self):
        policy = netpol("named", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
        result = explain(world(policy), "production/web", "production/db", 5432)
        assert "named port 'http' is not a TCP container port of production/db" in result.text

    def test_named_port_resolving_to_another_number(self):
        policy = netpol("named", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})
        result = explain(world(policy), "production/web", "production/api", 80)
        assert "named port 'http' is 8080/TCP on production/api, not 80" in result.text

    def test_wrong_protocol(self):
        policy = netpol("udp", {"podSelector": {}, "ingress": [{"ports": [{"port": 8080, "protocol": "UDP"}]}]})
        result = explain(world(policy), "production/web", "production/api", 8080)
        assert "port 8080/TCP not in rule ports [8080/UDP]" in result.text

    def test_port_range_in_words(self):
        policy = netpol("range", {"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8079}]}]})
        result = explain(world(policy), "production/web", "production/api", 8080)
        assert "port 8080/TCP not in rule ports [8000-8079/TCP]" in result.text

    def test_deny_all_policy_allows_nothing(self):
        result = explain(world(DEFAULT_DENY), "production/web", "production/db", 5432)
        assert ("policy production/default-deny-ingress selects the destination for Ingress and has no ingress "
                "rules, so it allows nothing") in result.text
        assert result.summary.startswith("blocked: policy production/default-deny-ingress")

    def test_several_denials_each_get_a_line(self):
        result = explain(world(DEFAULT_DENY, SEED_ALLOW), "staging/test", "production/api", 8080)
        assert "none of the others admits this connection either" in result.text
        assert "allow-web-to-api selects the destination for Ingress" in result.summary

    def test_egress_side_blocks(self):
        policy = netpol("api-egress", {"podSelector": match(app="web"), "policyTypes": ["Egress"], "egress": [
            {"to": [{"podSelector": match(app="api")}]}]})
        result = explain(world(policy), "production/web", "production/db", 5432)
        assert result.lines[0].endswith("BLOCKED by the source's egress")
        assert ("policy production/api-egress selects the source for Egress but no rule's peer matches the "
                "destination") in result.text
        assert "egress rule 1: peer 1 podSelector app=api does not match labels app=db" in result.text

    def test_both_sides_block(self):
        egress = netpol("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}, namespace="staging")
        result = explain(world(egress, DEFAULT_DENY), "staging/test", "production/db", 5432)
        assert result.lines[0].endswith("BLOCKED by the source's egress and the destination's ingress")
        assert result.summary.count("policy") == 2

    @pytest.mark.parametrize(("ip_block", "words"), [
        ({"cidr": "10.0.9.0/24"}, "peer 1 ipBlock 10.0.9.0/24 does not contain 10.0.1.3"),
        ({"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]},
         "peer 1 ipBlock 10.0.0.0/16 except 10.0.1.0/24: 10.0.1.3 is inside the cidr but excluded by except"),
    ])
    def test_ip_block_reasons(self, ip_block, words):
        policy = netpol("cidr", {"podSelector": match(app="web"), "policyTypes": ["Egress"],
                                 "egress": [{"to": [{"ipBlock": ip_block}]}]})
        assert words in explain(world(policy), "production/web", "production/db", 5432).text

    def test_pod_without_ip(self):
        policy = netpol("cidr", {"podSelector": match(app="web"), "policyTypes": ["Egress"],
                                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
        result = explain(world(policy), "production/web", "production/test")
        assert "production/test has no IP (status.podIP), so no ipBlock can match it" in result.text


class TestMistakeHints:
    def test_label_typo_in_the_policy_selector_is_named(self):
        typo = netpol("api-to-db", {"podSelector": match(app="dbb"), "ingress": [
            {"from": [{"podSelector": match(app="api")}], "ports": [{"port": 5432}]}]})
        result = explain(world(DEFAULT_DENY, typo), "production/api", "production/db", 5432)
        assert ("note: production/api-to-db would admit this connection, but it does not select the destination: "
                "its podSelector app=dbb does not match labels app=db (unmet: app=dbb)") in result.text

    def test_unrelated_policies_are_not_mentioned(self):
        result = explain(world(DEFAULT_DENY, SEED_ALLOW), "production/api", "production/db", 5432)
        assert "allow-web-to-api" not in result.text

    def test_egress_rules_left_out_of_policy_types(self):
        policy = netpol("egress-forgotten", {"podSelector": match(app="web"), "policyTypes": ["Ingress"],
                                             "ingress": [{}], "egress": [{"to": [{"podSelector": match(app="api")}]}]})
        result = explain(world(policy), "production/web", "production/db")
        assert result.allowed
        assert ("note: production/egress-forgotten has egress rules, but its policyTypes [Ingress] leave Egress "
                "out, so those rules do nothing") in result.text

    def test_not_isolated_side_names_a_deny_policy_that_misses_the_pod(self):
        typo = netpol("deny-typo", {"podSelector": match(app="apii"), "policyTypes": ["Ingress"]})
        result = explain(world(typo), "production/web", "production/api")
        assert result.allowed
        assert "production/deny-typo is an Ingress policy in production, but its podSelector app=apii" in result.text


def test_explain_verdict_renders_a_given_verdict():
    engine = world(DEFAULT_DENY)
    verdict = engine.evaluate("production/web", "production/db", 5432)
    result = explain_verdict(verdict)
    assert result.verdict is verdict and not result.allowed and str(result) == result.text
