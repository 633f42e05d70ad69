"""graders.netpol.addresses: every address a pod's policies admit, exactly (no sampling)."""
from __future__ import annotations

import pytest

from graders.netpol.addresses import AddressSet, reachable_addresses
from graders.netpol.compile import Direction
from graders.netpol.verdicts import PolicyEngine

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api", "namespace": "p", "labels": {"app": "api"}},
       "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"podIP": "10.244.1.5"}}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "p"}}


def _engine(*rules: dict, types=("Egress",)) -> PolicyEngine:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "pol", "namespace": "p"},
              "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": list(types),
                       "egress": list(rules)}}
    return PolicyEngine.from_objects([NAMESPACE, POD, policy], default_namespace="p")


def test_set_algebra_merges_subtracts_and_describes_as_cidrs() -> None:
    pods = AddressSet.of("10.244.0.0/16") - AddressSet.of("10.244.0.0/24")
    assert "10.244.1.1" in pods and "10.244.0.9" not in pods and "10.245.0.0" not in pods
    assert pods.describe(limit=2) == "10.244.1.0/24, 10.244.2.0/23 and 6 more range(s)"
    assert AddressSet.of("10.0.0.0/25", "10.0.0.128/25") == AddressSet.of("10.0.0.0/24")  # adjacent ranges merge
    assert not (AddressSet.of("10.0.0.0/24") - AddressSet.of("0.0.0.0/0"))
    assert AddressSet.of("::/0") == AddressSet()  # an IPv6 block holds no IPv4 address


@pytest.mark.parametrize(("cidr", "example"), [("0.0.0.0/0", "169.254.169.254"), ("10.0.0.0/8", "10.0.0.10"),
                                               ("203.0.113.7/32", "203.0.113.7"), ("1.2.3.0/30", "1.2.3.3")])
def test_example_is_an_address_a_reader_recognises_when_the_set_has_one(cidr: str, example: str) -> None:
    assert AddressSet.of(cidr).example() == example


def test_reachable_addresses_is_the_union_of_ipblocks_minus_their_excepts() -> None:
    engine = _engine({"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.0.0/24"]}},
                             {"podSelector": {}}]},  # a selector peer admits pods, never an address outside
                     {"to": [{"ipBlock": {"cidr": "203.0.113.7/32"}}], "ports": [{"port": 443}]})
    assert reachable_addresses(engine, "p/api", Direction.EGRESS) == (
        AddressSet.of("10.244.0.0/16", "203.0.113.7/32") - AddressSet.of("10.244.0.0/24"))


def test_a_rule_without_peers_or_no_isolation_admits_every_address() -> None:
    assert reachable_addresses(_engine({"ports": [{"port": 53, "protocol": "UDP"}]}), "p/api",
                               Direction.EGRESS) == AddressSet.everything()
    assert reachable_addresses(_engine(types=("Egress",)), "p/api", Direction.EGRESS) == AddressSet()
    assert reachable_addresses(_engine(types=("Egress",)), "p/api", Direction.INGRESS) == AddressSet.everything()
