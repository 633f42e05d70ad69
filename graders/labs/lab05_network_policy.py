"""Grader of lab 05-network-policy: seven NetworkPolicy exercises and one of predictions over one small world.

The world (labs/05-network-policy/world.yaml) is the seed's diagram: web, api and db in ``production``, test in
``staging`` (labelled app=web, like the web frontend it tests). The grader creates it (the engine sets the
namespace labels lab.yaml declares); the learner submits only NetworkPolicies. Each exercise states its target
as a default plus exceptions (``Expect``, after the e2e tests' ``ExpectPeer``) over a reachability table whose
columns are a destination pod's serving port (``graders.netpol.truthtable.Column``): every port the statement
covers, not only the worked example's. Destinations the statement covers but the cluster lacks (another pod of
kube-system, db after its port moved, an address outside the cluster, a pod on a node that joins later) are
``imagined`` pods: judged statically, never probed -- but the outside address, which a listener container on the
cluster's docker network makes real during the live check.

Checks:
  static  the learner's policies + the world -> ``graders.netpol`` verdicts, compared with the target. Every
          wrong cell is explained (``graders.netpol.explain``) and every known mistake is named (``diagnose``),
          with the file:line of the policy at fault.
  live    deploy the world, read the real pod IPs, recompute the static table with them, probe every cell
          (batched: one exec per source pod; retried only while a cell disagrees), and show expected, static
          and live side by side. Static right but live different means the CNI is not enforcing (or has not
          programmed the policies yet) -- said so, never blamed on the learner.
  break-fix  (break-fix-lockdown) the starter is a realistic broken setup, not a skeleton: no static step, so
          whatever the policies say is applied and probed; the failure lists each wrong connection with what
          live traffic did and the command reproducing it. While the submission is still the setup as
          deployed (``DEPLOYED``), the causes are left out -- finding them is the exercise.
  predict  (an answers exercise; not in ``TARGETS``) the learner predicts connections under policies the grader
          ships (predict-policies.yaml), which it applies one at a time and probes; the facts are what the probes
          saw, and "not verifiable on this cluster" where the CNI does not enforce them.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graders import paths
from graders.errors import CheckFailed, K8sLabError
from graders.exercise import Exercise
from graders.manifests import Manifest
from graders.model import Evidence, Outcome, StepResult
from graders.netpol.addresses import AddressSet, address_grants, granted
from graders.netpol.cli import load_manifests
from graders.netpol.compile import Direction
from graders.netpol.explain import explain
from graders.netpol.fields import PolicyError
from graders.netpol.inventory import inventory_from_objects, pod_document
from graders.netpol.mistakes import Locate, locator, no_location, policy_mistakes, short, too_closed, too_open
from graders.netpol.observe import Cell, CellProbes, judge, observe
from graders.netpol.truthtable import Column, Expect, Reachability, outcome_of, side_by_side
from graders.netpol.verdicts import PolicyEngine
from graders.questions import Fact, Question, judge as judge_answers, not_observable, observed

LAB_ID = "05-network-policy"

PRODUCTION, STAGING, KUBE_SYSTEM = "production", "staging", "kube-system"
WEB, API, DB, TEST = "production/web", "production/api", "production/db", "staging/test"
KUBE_DNS = "kube-system/kube-dns"  # stands for every pod labelled k8s-app=kube-dns in kube-system
KUBE_DNS_SELECTOR = "k8s-app=kube-dns"
DNS_NAME = "kubernetes.default.svc.cluster.local"
SOURCES = (API, DB, WEB, TEST)

# The course cluster (kind): pod network 10.244.0.0/16, one /24 per node; the control-plane node registers
# first and owns 10.244.0.0/24. db is pinned to the control-plane node (world.yaml), the others are not.
POD_NETWORK = "10.244.0.0/16"
CONTROL_PLANE_RANGE = "10.244.0.0/24"

PROBE_ATTEMPTS = 5
PROBE_DEADLINE_S = 40.0
READY_TIMEOUT_S = 120.0


def lab_dir() -> Path:
    return paths.lab_dir(LAB_ID)


# ---- Targets: columns (destination pod + port) and expectations (default + exceptions) ---------------------


def is_dns(column: Column) -> bool:
    return column.pod == KUBE_DNS


@dataclass(frozen=True)
class AddressRule:
    """What a statement says about addresses that are not pods of the world, for one pod and direction: the
    addresses it may reach (EGRESS) or hear from (INGRESS) are ``within`` this set (``exactly``: all of them).
    Probes and imagined pods sample a few addresses; this covers every one (``graders.netpol.addresses``)."""

    pod: str
    direction: Direction
    within: str  # CIDR, optionally "CIDR except CIDR"
    exactly: bool = False

    @property
    def addresses(self) -> AddressSet:
        cidr, _, excepted = self.within.partition(" except ")
        return AddressSet.of(cidr) - (AddressSet.of(excepted) if excepted else AddressSet())

    def problems(self, engine: PolicyEngine, at: Locate = no_location) -> list[str]:
        """One sentence per way the learner's policies break this rule (none: they keep it)."""
        grants = address_grants(engine, self.pod, self.direction)
        allowed = granted(grants)
        verb = "reach" if self.direction is Direction.EGRESS else "accept connections from"
        found = []
        extra = allowed - self.addresses
        if extra:
            culprits = "; ".join(f"NetworkPolicy {g.policy}{at(g.policy, *g.path)}: {g.text}"
                                 for g in grants or () if g.addresses - self.addresses)
            by = f" ({culprits})" if culprits else " (no policy isolates it in this direction)"
            found.append(f"{self.pod} may {verb} addresses outside {self.within}: {extra.describe()}, for "
                         f"example {extra.example()}{by}; {ADDRESS_WHY[self.direction]}")
        missing = self.addresses - allowed if self.exactly else AddressSet()
        if missing:
            found.append(f"{self.pod} may not {verb} {missing.describe()}, for example {missing.example()}, "
                         f"although the exercise allows every address of {self.within}")
        on_some_ports = (self.addresses - missing - granted(grants, every_port=True)) if self.exactly else None
        if on_some_ports:
            culprits = "; ".join(f"NetworkPolicy {g.policy}{at(g.policy, *g.path)}: {g.text}"
                                 for g in grants or () if not g.all_ports)
            found.append(f"{self.pod} may {verb} {on_some_ports.describe()} on some ports only ({culprits}), "
                         f"although the exercise allows every address of {self.within} on every port")
        return found


ADDRESS_WHY = {
    Direction.EGRESS: "such an address is a machine outside the pod network (a node, the cloud's metadata "
                      "service, the internet) or, inside it, a range the exercise excludes; every address is judged, "
                      "not only the ones the probes can reach",
    Direction.INGRESS: "an ipBlock (or a rule with no `from`) admits clients outside the pod network too: node "
                       "addresses, and clients of a NodePort or LoadBalancer whose source address reaches the pod",
}


@dataclass(frozen=True)
class ExerciseTarget:
    """What an exercise asks for. Later expectations override earlier ones; ``by_address`` (ipBlock exercises)
    decides from the destination's addresses and overrides them all where it returns a bool. ``imagined`` pods
    stand for destinations the statement covers that the cluster does not have (another pod of kube-system, an
    address outside the cluster, db after a move): the static check judges their columns, probes never do."""

    statement: str
    direction: Direction | None  # the direction the exercise is about; None: both (see egress_sources)
    columns: tuple[Column, ...]
    expects: tuple[Expect, ...]
    default: bool = True
    by_address: Callable[[str, Column, tuple[str, ...]], bool | None] | None = None
    needs_dns: bool = False
    imagined: tuple[dict, ...] = ()
    egress_sources: tuple[str, ...] = ()  # direction None: the sources whose egress the target restricts
    break_fix: bool = False  # the starter is a broken setup to diagnose: its failure shows symptoms, not causes
    address_rules: tuple[AddressRule, ...] = ()  # what the statement says about every address, not only pods
    # Sources the statement covers but the world lacks (a pod of kube-system, of a namespace without labels, a
    # lookalike of web or api elsewhere, a new pod of production): judged statically, never probed.
    imagined_sources: tuple[dict, ...] = ()

    def cell_direction(self, source: str) -> Direction:
        """The direction a cell from ``source`` is about: the exercise's, or (both directions) Egress for the
        sources whose egress the target restricts and Ingress for the others."""
        if self.direction is not None:
            return self.direction
        return Direction.EGRESS if source in self.egress_sources else Direction.INGRESS

    @property
    def imagined_keys(self) -> frozenset[str]:
        return frozenset(_key(p) for p in self.imagined)

    @property
    def imagined_source_keys(self) -> tuple[str, ...]:
        return tuple(_key(p) for p in self.imagined_sources)

    def reachability(self, addresses: Mapping[str, tuple[str, ...]] | None = None, *,
                     live: bool = False) -> Reachability:
        """The expected table (``addresses``: "ns/pod" -> its IPs, for ``by_address``; ``live``: without the
        imagined columns but those that got a real address, the outside listener); nothing observed yet."""
        columns = self.columns
        if live:
            columns = tuple(c for c in columns if c.pod not in self.imagined_keys or (addresses or {}).get(c.pod))
        sources = SOURCES if live else (*SOURCES, *self.imagined_source_keys)
        table = Reachability(sources, self.default, columns).expect_all(self.expects)
        if self.by_address is not None and addresses is not None:
            for source, column in table.expected.pairs():
                decided = self.by_address(source, column, addresses.get(column.pod, ()))
                if decided is not None:
                    table.expected.set(source, column, outcome_of(decided))
        return table


def _key(pod: Mapping[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _imagined_pod(key: str, ip: str, labels: Mapping[str, str], ports: Sequence[tuple[str, int, str]]) -> dict:
    namespace, name = key.split("/")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"containers": [{"name": name, "image": "imagined",
                                     "ports": [{"name": n, "containerPort": p, "protocol": proto}
                                               for n, p, proto in ports]}]},
            "status": {"podIP": ip}}


WEB_80, API_8080, DB_5432, TEST_80 = Column(WEB, 80), Column(API, 8080), Column(DB, 5432), Column(TEST, 80)
BASIC = (WEB_80, API_8080, DB_5432, TEST_80)
API_PORTS = tuple(Column(API, port) for port in range(8080, 8085))  # v1..v4 and admin: what api serves
DB_PORTS = (DB_5432, Column(DB, 5433))  # postgres and replication
EVERY_PORT = (WEB_80, *API_PORTS, *DB_PORTS, TEST_80)  # every port a pod of the world serves
DNS_UDP, DNS_TCP = Column(KUBE_DNS, 53, "UDP"), Column(KUBE_DNS, 53, "TCP", show_protocol=True)
DNS_METRICS = Column(KUBE_DNS, 9153)  # CoreDNS serves its metrics there: not DNS

# Imagined destinations (never created, never contacted; their addresses only place them for ipBlocks).
OTHER_KUBE_SYSTEM = "kube-system/other-pod"  # any pod of kube-system that is not kube-dns, serving 53 too
DB_MOVED = "production/db-moved"  # db after a move to another port number: its port named postgres is 6432
OUTSIDE = "outside/host"  # an address outside the pod network (TEST-NET-1, RFC 5737)
NEW_NODE_POD = "production/pod-on-a-new-node"  # a pod on a node that joins later: 10.244.7.0/24
LOOKALIKE_DNS = "staging/kube-dns-lookalike"  # a pod of another namespace labelled k8s-app=kube-dns, serving 53
OTHER_PRODUCTION = "production/db-replica"  # another pod of production serving 5432 (not db)
WEB_NEXT = "production/web-next"  # web's next release: app=web, serving 80 and an admin port 8080
IMAGINED_WHY = {  # when a cell of an imagined pod is wrong this way (allowed? as the policies say): why it matters
    (OTHER_KUBE_SYSTEM, True): f"{OTHER_KUBE_SYSTEM} stands for any pod of kube-system that is not kube-dns: DNS "
                               f"is allowed to the kube-dns pods only",
    (DB_MOVED, False): f"{DB_MOVED} stands for db after its port moved (postgres is 6432 there): a rule that names "
                       f"db's port by number stops matching when the number changes; a named port is looked up on "
                       f"each destination pod",
    (OUTSIDE, True): f"{OUTSIDE} (192.0.2.10) stands for any address outside the cluster: api may reach the pod "
                     f"network {POD_NETWORK} only, so no ipBlock may be wider",
    (LOOKALIKE_DNS, True): f"{LOOKALIKE_DNS} is a pod of staging that carries the label {KUBE_DNS_SELECTOR}: "
                           f"anyone who may create pods in any namespace can give one that label, so a DNS peer "
                           f"must also select the namespace kube-system (namespaceSelector and podSelector in ONE "
                           f"peer) -- or api's DNS queries may go to a pod that answers what it likes",
    (OTHER_PRODUCTION, True): f"{OTHER_PRODUCTION} stands for any other pod of production serving 5432: api may "
                              f"reach db there, not every pod of its namespace",
    (WEB_NEXT, True): f"{WEB_NEXT} stands for web once it also serves an admin port (8080): only web's port 80 is "
                      f"open to anyone -- a rule that names a port nobody serves today opens it for tomorrow's "
                      f"release",
    (NEW_NODE_POD, False): f"{NEW_NODE_POD} (10.244.7.10) stands for a pod on a node that joins later: api may reach "
                           f"the whole pod network {POD_NETWORK} (but the except), not only today's node ranges",
}
IMAGINED_TWIN = {DB_MOVED: DB_5432, WEB_NEXT: WEB_80}
# Imagined sources, and why a connection from one that the policies let in is wrong.
MONITORING = "monitoring/prometheus"  # a namespace without an env label
WEB_ELSEWHERE = "default/web"  # app=web in a namespace that is not production (no env label either)
API_ELSEWHERE = "staging/api"  # app=api in staging
SOURCE_WHY = {
    OTHER_KUBE_SYSTEM: f"{OTHER_KUBE_SYSTEM} stands for any pod of kube-system (add-ons, or whatever an operator runs "
                       f"there): the statement lets no pod of it in",
    MONITORING: f"{MONITORING} stands for a pod of a namespace without an env label: a selector such as env NotIn "
                f"[staging], an empty namespaceSelector or one on another namespace's name lets it in",
    WEB_ELSEWHERE: f"{WEB_ELSEWHERE} carries app=web in another namespace: only production's web is the web of the "
                   f"statement -- a peer names the namespace AND the pods (in one item)",
    API_ELSEWHERE: f"{API_ELSEWHERE} carries app=api in staging: only production's api is the api of the statement",
    NEW_NODE_POD: f"{NEW_NODE_POD} stands for any other pod of production (a new workload, app=batch): the statement "
                  f"names the pods that may connect, not 'anything but db'",
}  # when the real twin's cell is wrong too, the twin's sentence says it all
OTHER_KUBE_SYSTEM_POD = _imagined_pod(OTHER_KUBE_SYSTEM, "10.244.1.53", {"app": "other"},
                                      (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")))
DB_MOVED_POD = _imagined_pod(DB_MOVED, "10.244.2.54", {"app": "db"},
                             (("postgres", 6432, "TCP"), ("replication", 6433, "TCP")))
OUTSIDE_POD = _imagined_pod(OUTSIDE, "192.0.2.10", {}, (("http", 80, "TCP"),))
LOOKALIKE_DNS_POD = _imagined_pod(LOOKALIKE_DNS, "10.244.2.55", {"k8s-app": "kube-dns"},
                                  (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")))
OTHER_PRODUCTION_POD = _imagined_pod(OTHER_PRODUCTION, "10.244.1.56", {"app": "db-replica"},
                                     (("postgres", 5432, "TCP"),))
NEW_NODE_POD_DOC = _imagined_pod(NEW_NODE_POD, "10.244.7.10", {"app": "batch"}, (("http", 80, "TCP"),))
WEB_NEXT_POD = _imagined_pod(WEB_NEXT, "10.244.1.60", {"app": "web"}, (("http", 80, "TCP"), ("admin", 8080, "TCP")))
MONITORING_POD = _imagined_pod(MONITORING, "10.244.2.57", {"app": "prometheus"}, (("web", 9090, "TCP"),))
WEB_ELSEWHERE_POD = _imagined_pod(WEB_ELSEWHERE, "10.244.1.58", {"app": "web"}, (("http", 80, "TCP"),))
API_ELSEWHERE_POD = _imagined_pod(API_ELSEWHERE, "10.244.2.59", {"app": "api"}, (("http", 8080, "TCP"),))
# every ingress statement of the lab ("only web", "nothing into production") covers these callers too
CALLERS_ELSEWHERE = (OTHER_KUBE_SYSTEM_POD, MONITORING_POD, WEB_ELSEWHERE_POD, API_ELSEWHERE_POD, NEW_NODE_POD_DOC)


# Port 53 anywhere but the kube-dns pods, and 5432 on another pod of production: "api reaches db and DNS only".
DNS_ELSEWHERE = (Column(OTHER_KUBE_SYSTEM, 53, "UDP"), Column(OTHER_KUBE_SYSTEM, 53, "TCP", show_protocol=True),
                 Column(LOOKALIKE_DNS, 53, "UDP"), Column(LOOKALIKE_DNS, 53, "TCP", show_protocol=True),
                 Column(OTHER_PRODUCTION, 5432))


def _in_pod_network_outside_control_plane(source: str, column: Column, ips: tuple[str, ...]) -> bool | None:
    """ipblock-except: api may reach an address inside 10.244.0.0/16 and outside 10.244.0.0/24."""
    if source != API or not ips:
        return None
    ip = ipaddress.ip_address(ips[0])
    return ip in ipaddress.ip_network(POD_NETWORK) and ip not in ipaddress.ip_network(CONTROL_PLANE_RANGE)


TARGETS: dict[str, ExerciseTarget] = {
    "default-deny-ingress": ExerciseTarget(
        "nothing reaches a pod of production, on any port; everything else stays open",
        Direction.INGRESS, EVERY_PORT,
        (Expect("", "production/", False),),
        address_rules=tuple(AddressRule(pod, Direction.INGRESS, POD_NETWORK) for pod in (WEB, API, DB)),
        imagined_sources=CALLERS_ELSEWHERE),
    "web-to-api": ExerciseTarget(
        "only production's web reaches api, only on 8080; api's other ports (8081-8084, admin 8084) stay closed; "
        "other pods stay open",
        Direction.INGRESS, (WEB_80, *API_PORTS, DB_5432, TEST_80),
        (Expect("", API, False), Expect(WEB, API, True, port=8080)),
        address_rules=(AddressRule(API, Direction.INGRESS, POD_NETWORK),), imagined_sources=CALLERS_ELSEWHERE),
    "seed-diagram": ExerciseTarget(
        "the seed's diagram: web -> api:8080 and api -> db:5432 allowed, nothing else into production, on any "
        "port (web -> db, staging's test -> api, api:8084, db:5433 denied); staging stays open",
        Direction.INGRESS, (*EVERY_PORT, Column(WEB_NEXT, 8080)),
        (Expect("", "production/", False), Expect(WEB, API, True, port=8080), Expect(API, DB, True, port=5432)),
        address_rules=tuple(AddressRule(pod, Direction.INGRESS, POD_NETWORK) for pod in (WEB, API, DB)),
        imagined=(WEB_NEXT_POD,), imagined_sources=CALLERS_ELSEWHERE),
    "api-egress-dns": ExerciseTarget(
        f"api connects to db:5432 and to DNS (the kube-dns pods, UDP and TCP 53) and nowhere else (not db:5433, "
        f"not kube-dns:9153, not {OTHER_KUBE_SYSTEM}:53, which stands for any other pod of kube-system, not "
        f"{LOOKALIKE_DNS}:53, a pod of another namespace carrying kube-dns's label, not {OTHER_PRODUCTION}:5432, "
        f"any other pod of production, and no address outside the pod network); everything else open",
        Direction.EGRESS, (*EVERY_PORT, DNS_UDP, DNS_TCP, DNS_METRICS, *DNS_ELSEWHERE),
        (Expect(API, "", False), Expect(API, DB, True, port=5432), Expect(API, KUBE_DNS, True, port=53)),
        needs_dns=True, imagined=(OTHER_KUBE_SYSTEM_POD, LOOKALIKE_DNS_POD, OTHER_PRODUCTION_POD),
        address_rules=(AddressRule(API, Direction.EGRESS, POD_NETWORK),)),
    "named-ports-range": ExerciseTarget(
        f"db accepts only api, only on its port named postgres (5432 today; {DB_MOVED} is db after a move, "
        f"where postgres is 6432); api accepts only web, only on 8080-8083; api's admin 8084 and db's "
        f"replication port stay closed; other pods stay open",
        Direction.INGRESS, (*EVERY_PORT, Column(DB_MOVED, 6432), Column(DB_MOVED, 6433)),
        (Expect("", API, False), *(Expect(WEB, API, True, port=port) for port in range(8080, 8084)),
         Expect("", "production/db", False), Expect(API, DB, True, port=5432),
         Expect("", DB_MOVED, False), Expect(API, DB_MOVED, True, port=6432)),
        imagined=(DB_MOVED_POD,), imagined_sources=CALLERS_ELSEWHERE,
        address_rules=tuple(AddressRule(pod, Direction.INGRESS, POD_NETWORK) for pod in (API, DB))),
    "ipblock-except": ExerciseTarget(
        f"api connects to addresses in {POD_NETWORK} except {CONTROL_PLANE_RANGE} (the control-plane node's "
        f"pods: db) and nowhere else ({OUTSIDE}, 192.0.2.10, stands for the world outside; {NEW_NODE_POD}, "
        f"10.244.7.10, for a node that joins later); everything else open",
        Direction.EGRESS, (*BASIC, Column(NEW_NODE_POD, 80), Column(OUTSIDE, 80)),
        (Expect(API, "", False), Expect(API, WEB, True), Expect(API, TEST, True)),
        by_address=_in_pod_network_outside_control_plane, imagined=(NEW_NODE_POD_DOC, OUTSIDE_POD),
        address_rules=(AddressRule(API, Direction.EGRESS, f"{POD_NETWORK} except {CONTROL_PLANE_RANGE}",
                                   exactly=True),)),
    "break-fix-lockdown": ExerciseTarget(
        f"the SEC-142 lockdown as its header says: into production only anyone -> web:80, web -> api:8080 "
        f"(production's web only) and api -> db:5432 (api only), no other port (api:8081-8084, db:5433); api "
        f"connects to db:5432 and to DNS (the kube-dns pods, UDP and TCP 53) and nowhere else (not web, not "
        f"staging, not kube-dns:9153, not {OTHER_KUBE_SYSTEM}:53, which stands for any other pod of "
        f"kube-system, not {LOOKALIKE_DNS}:53, a pod of another namespace carrying kube-dns's label, not "
        f"{OTHER_PRODUCTION}:5432, and no address outside the pod network); {WEB_NEXT}:8080 stands for a port web "
        f"serves in its next release; everything else open",
        None, (*EVERY_PORT, DNS_UDP, DNS_TCP, DNS_METRICS, *DNS_ELSEWHERE, Column(WEB_NEXT, 8080)),
        (Expect("", API, False), Expect(WEB, API, True, port=8080), Expect("", WEB_NEXT, False, port=8080),
         Expect("", DB, False), Expect(API, DB, True, port=5432), Expect("", OTHER_PRODUCTION, False),
         Expect(API, "", False), Expect(API, DB, True, port=5432), Expect(API, KUBE_DNS, True, port=53)),
        needs_dns=True, imagined=(OTHER_KUBE_SYSTEM_POD, LOOKALIKE_DNS_POD, OTHER_PRODUCTION_POD, WEB_NEXT_POD),
        egress_sources=(API,), break_fix=True, imagined_sources=CALLERS_ELSEWHERE,
        address_rules=(*(AddressRule(pod, Direction.INGRESS, POD_NETWORK) for pod in (API, DB)),
                       AddressRule(API, Direction.EGRESS, POD_NETWORK))),
}


# ---- The world as objects (pods with addresses): static from world.yaml, live from the cluster -------------


@functools.lru_cache(maxsize=2)
def _docs(name: str) -> tuple[dict, ...]:
    with open(lab_dir() / name, encoding="utf-8") as handle:
        return tuple(doc for doc in yaml.safe_load_all(handle) if doc)


def world_objects(exercise: str, addresses: Mapping[str, str] | None = None,
                  dns_pods: Sequence[dict] | None = None) -> list[dict]:
    """Namespaces and pods the static engine reasons about. ``addresses`` ("ns/pod" -> IP) replaces the typical
    addresses of world.yaml and keeps only the imagined pods it gives a real address (live, only what can be
    probed counts: the outside listener); ``dns_pods`` replaces cluster-dns.yaml's CoreDNS pods (the live ones)."""
    docs = [copy.deepcopy(d) for d in _docs("world.yaml")]
    target = TARGETS[exercise]
    extra = {_key(doc): doc for doc in (*target.imagined, *(target.imagined_sources if addresses is None else ()))}
    for key, doc in extra.items():
        if addresses is None or addresses.get(key):
            docs.append(copy.deepcopy(doc))
    return _placed(docs, addresses, dns_pods, TARGETS[exercise].needs_dns)


def _placed(docs: list[dict], addresses: Mapping[str, str] | None, dns_pods: Sequence[dict] | None,
            needs_dns: bool) -> list[dict]:
    """``docs`` with the pods' addresses (when given) and, when ``needs_dns``, the cluster's DNS pods."""
    for doc in docs:
        if doc.get("kind") == "Pod" and addresses is not None:
            key = f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
            doc["status"] = {"podIP": addresses[key]} if addresses.get(key) else {}
    if needs_dns:
        if dns_pods is None:
            docs.extend(copy.deepcopy(d) for d in _docs("cluster-dns.yaml"))
        else:
            docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUBE_SYSTEM}})
            docs.extend(dns_pods)
    return docs


def fixture_objects(image: str) -> list[dict]:
    """The pods the grader creates (world.yaml without status, with the pinned agnhost image); `ensure_pods`
    labels them as the grader's, so they stay running from one check to the next while unchanged."""
    pods = []
    for doc in _docs("world.yaml"):
        if doc.get("kind") != "Pod":
            continue
        pod = copy.deepcopy(doc)
        pod.pop("status", None)
        pod["spec"]["terminationGracePeriodSeconds"] = 0
        for container in pod["spec"]["containers"]:
            container["image"] = image
            container["imagePullPolicy"] = "IfNotPresent"
        pods.append(pod)
    return pods


# ---- Static evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class StaticReport:
    """The static verdict of one exercise: expected vs what the policies say, the named mistakes and the
    explanation (and one-line why) of every wrong cell."""

    exercise: str
    reachability: Reachability = field(compare=False)  # expected vs static
    diagnoses: tuple[str, ...] = ()
    explanations: tuple[str, ...] = ()
    whys: Mapping[Cell, str] = field(default_factory=dict, compare=False)
    engine: PolicyEngine | None = field(default=None, compare=False)
    address_problems: tuple[str, ...] = ()  # every address the statement covers, beyond the table's cells

    @property
    def cells(self) -> tuple[Cell, ...]:
        return tuple(self.reachability.expected.pairs())

    @property
    def wrong(self) -> tuple[Cell, ...]:
        return self.reachability.wrong_cells()

    @property
    def matches(self) -> bool:
        return self.reachability.matches and not self.address_problems

    def allowed(self, source: str, column: Column) -> bool:
        return self.reachability.observed.get(source, column) is Outcome.ALLOWED

    @property
    def message(self) -> str:
        statement = TARGETS[self.exercise].statement
        if self.matches:
            return f"the policies' matrix equals the target ({len(self.cells)} cells): {statement}"
        expected, static = self.reachability.expected, self.reachability.observed
        if not self.wrong:  # every cell right, some address wrong
            head = (f"all {len(self.cells)} cells match the target, but not every address the statement covers "
                    f"({statement}):")
            return "\n".join([head, *(f"- {d}" for d in (*self.address_problems, *self.diagnoses))])
        head = (f"{len(self.wrong)} of {len(self.cells)} cells differ from the target ({statement}): "
                + ", ".join(f"{s} -> {c.label} should be {expected.get(s, c).word} but is {static.get(s, c).word}"
                            for s, c in self.wrong))
        return "\n".join([head, *(f"- {d}" for d in (*self.address_problems, *self.diagnoses))])

    def __repr__(self) -> str:
        verdict = "matches the target" if self.matches else f"{len(self.wrong)} wrong cell(s)"
        return f"<static matrix of {self.exercise}: {len(self.cells)} cells, {verdict}>"


def destination_pods(engine: PolicyEngine, column: Column) -> list[str]:
    if is_dns(column):
        return [p.key for p in engine.pods if p.namespace == KUBE_SYSTEM and p.labels.get("k8s-app") == "kube-dns"]
    return [column.pod]


def _cell_allowed(engine: PolicyEngine, source: str, column: Column) -> bool:
    pods = destination_pods(engine, column)
    return bool(pods) and all(engine.is_allowed(source, pod, column.port, column.protocol) for pod in pods)


def evaluate(exercise: str, objects: Iterable[Manifest], addresses: Mapping[str, str] | None = None,
             dns_pods: Sequence[dict] | None = None) -> StaticReport:
    """Compute the static table of the learner's policies over the world and compare it with the target."""
    target = TARGETS[exercise]
    policies = [m for m in objects if m.kind == "NetworkPolicy"]
    try:
        engine = PolicyEngine(inventory_from_objects([*world_objects(exercise, addresses, dns_pods),
                                                      *(m.obj for m in policies)], default_namespace=PRODUCTION))
    except PolicyError as error:
        source = next((f"{m.where}: " for m in policies if m.obj is error.obj), "")
        raise CheckFailed(f"the policies cannot be evaluated: {source}{error.message}", hint=error.hint) from None
    table = target.reachability({p.key: p.ips for p in engine.pods}, live=addresses is not None)
    for source, column in table.expected.pairs():
        table.observe(source, column, _cell_allowed(engine, source, column))
    at = locator(policies, PRODUCTION)
    address_problems = tuple(p for rule in target.address_rules for p in rule.problems(engine, at))
    if table.matches and not address_problems:
        return StaticReport(exercise, table, engine=engine)
    wrong = table.wrong_cells()
    return StaticReport(exercise, table, diagnose(exercise, engine, table, at) if wrong else (),
                        tuple(_explain_cell(engine, s, c) for s, c in wrong),
                        {(s, c): _why(engine, s, c) for s, c in wrong}, engine, address_problems)


def evaluate_files(exercise: str, sources: Iterable[Path | str]) -> StaticReport:
    """``evaluate`` on YAML files or directories (tests and the notebook use it; no cluster)."""
    return evaluate(exercise, load_manifests([str(s) for s in sources]))


def grids(report: StaticReport, live: Reachability | None = None) -> str:
    """expected | static (| live), side by side."""
    tables = {"expected": report.reachability.expected, "static": report.reachability.observed}
    if live is not None:
        tables["live"] = live.observed
    return side_by_side(tables)


def preview(exercise: str, directory: Path | str | None = None, *, explain: bool = False) -> StaticReport:
    """Print what the files of an exercise do (static matrix next to the target), no cluster needed.

    ``directory`` defaults to ``./<exercise>/`` when it exists (the notebook's folder, also under nbgrader), else
    labs/05-network-policy/<exercise>/. ``check()`` shows the same grid and then sends real traffic.
    """
    if directory is None:
        directory = Path.cwd() / exercise if (Path.cwd() / exercise).is_dir() else lab_dir() / exercise
    folder = Path(directory)
    report = evaluate_files(exercise, [folder])
    print(f"{exercise}: {paths.relative(folder)} -- target: {TARGETS[exercise].statement}")
    print(grids(report))
    if report.matches:
        print(f"static: your policies draw the target ({len(report.cells)} cells); run check() for live traffic")
    else:
        print(report.message)
        if explain:
            print("\n" + "\n\n".join(report.explanations))
    return report


def _explain_cell(engine: PolicyEngine, source: str, column: Column) -> str:
    texts = []
    for pod in destination_pods(engine, column) or [column.pod]:
        try:
            texts.append(explain(engine, source, pod, column.port, column.protocol).text)
        except Exception as error:  # noqa: BLE001 -- an explanation is evidence, never the reason a check fails
            texts.append(f"{source} -> {pod}:{column.port}/{column.protocol}: "
                         f"(no explanation: {type(error).__name__}: {error})")
    return "\n".join(texts)


def _why(engine: PolicyEngine, source: str, column: Column) -> str:
    try:
        pod = (destination_pods(engine, column) or [column.pod])[0]
        return explain(engine, source, pod, column.port, column.protocol).summary
    except Exception:  # noqa: BLE001 -- as above
        return ""


# ---- Diagnosis: the mistake named in the learner's terms (lab.yaml quotes the sentences), with file:line ---


WRONG_DIRECTION = ", but this exercise is about"  # graders.netpol.mistakes: a policy isolating the other direction


def diagnose(exercise: str, engine: PolicyEngine, table: Reachability, at: Locate = no_location) -> tuple[str, ...]:
    """Every known mistake visible in these policies, each in one sentence that names it (and, through ``at``,
    the file:line of the policy at fault)."""
    target = TARGETS[exercise]
    found: dict[str, None] = {}  # each sentence once, in the order found

    def say(text: str) -> None:
        found.setdefault(text, None)

    def say_but_direction(text: str) -> None:  # an exercise about both directions: no policy has the wrong one
        if WRONG_DIRECTION not in text:
            say(text)

    isolated = {(column.pod if target.cell_direction(source) is Direction.INGRESS else source).split("/")[0]
                for (source, column), expected in table.expected.items() if expected is Outcome.BLOCKED}
    policy_mistakes(engine, target.direction or Direction.INGRESS, isolated, (PRODUCTION, STAGING), POD_NETWORK,
                    say if target.direction else say_but_direction, at)
    wrong = set(table.wrong_cells())
    for source, column in table.wrong_cells():  # what admits a blocked cell, what blocks an allowed one
        # an imagined caller's sentence only when the real callers get it right (else the column says it all)
        if (source in SOURCE_WHY and table.observed.get(source, column) is Outcome.ALLOWED
                and not any((real, column) in wrong for real in SOURCES)):
            say(SOURCE_WHY[source])
        why = IMAGINED_WHY.get((column.pod, table.observed.get(source, column) is Outcome.ALLOWED))
        twin = IMAGINED_TWIN.get(column.pod)
        if why and (twin is None or (source, twin) not in table.wrong_cells()):
            say(why)
        if table.observed.get(source, column) is not Outcome.ALLOWED and is_dns(column) and column.port == 53:
            _dns_blocked(engine, source, column, say)
            continue
        direction = target.cell_direction(source)
        for pod in destination_pods(engine, column) or [column.pod]:
            verdict = engine.evaluate(source, pod, column.port, column.protocol)
            if table.observed.get(source, column) is Outcome.ALLOWED:
                too_open(direction, verdict, say, at, _allowed_elsewhere(table, source, column))
            else:
                too_closed(direction, column.label, verdict, say, at)
    return tuple(found)


def _allowed_elsewhere(table: Reachability, source: str, column: Column) -> bool:
    """Whether ``source`` should reach another port of the pod(s) ``column`` names."""
    return any(expected is Outcome.ALLOWED and frm == source and to.pod == column.pod and to != column
               for (frm, to), expected in table.expected.items())


def _dns_blocked(engine: PolicyEngine, source: str, column: Column, say: Callable[[str], Any]) -> None:
    if column.protocol == "UDP":
        say(f"{source}'s egress is isolated and nothing allows DNS: name resolution fails (allow UDP and "
            f"TCP port 53 to the kube-dns pods, label {KUBE_DNS_SELECTOR}, in namespace kube-system)")
    elif _cell_allowed(engine, source, DNS_UDP):
        say(f"DNS over TCP port 53 is blocked for {source} (only UDP 53 is allowed): answers too large "
            f"for UDP, and resolvers that retry over TCP, fail")


# ---- Checks ------------------------------------------------------------------------------------------------

HINTS = {
    "default-deny-ingress": "a default deny selects every pod of its namespace and lists Ingress with no rules",
    "web-to-api": "in `from`, each dash starts a new peer (ORed); selectors inside one peer are ANDed",
    "seed-diagram": "deny everything into production first, then add one allowance per arrow of the diagram",
    "api-egress-dns": "once egress is isolated, DNS is just another destination: kube-dns pods, port 53, UDP and TCP",
    "named-ports-range": "a named port is looked up on the destination pod; endPort is inclusive",
    "ipblock-except": f"one ipBlock: cidr {POD_NETWORK} with an except for the control-plane node's range",
    "break-fix-lockdown": "start from one symptom: which policies select its source (egress) and its destination "
                          "(ingress)? Does a rule of each admit the other side on that port -- and only that side?",
}


def _short_label(column: Column) -> str:
    return column.short


def _static_failure(report: StaticReport) -> CheckFailed:
    matrix = report.reachability.to_matrix(why=lambda s, c: report.whys.get((s, c), ""), name=_short_label)
    evidence = [Evidence.matrix("expected vs static (what your policies say)", matrix)]
    if report.explanations:
        evidence.append(Evidence.text("why each wrong cell is what it is", "\n\n".join(report.explanations)))
    return CheckFailed(report.message, hint=HINTS[report.exercise], evidence=tuple(evidence))


def static_check(ctx) -> StepResult:
    report = evaluate(ctx.spec.id, ctx.objects)
    if not report.matches:
        raise _static_failure(report)
    return StepResult("static", True, report.message)


# ---- live ----------------------------------------------------------------------------------------------------


def deploy_world(ctx) -> dict[str, Any]:
    """Create (or find) the lab's pods, wait until ready, return {"ns/pod": V1Pod}. The namespaces already carry
    the labels lab.yaml declares (the engine sets them when it resets the namespaces)."""
    from graders.probe import agnhost_image

    cluster = ctx.cluster
    cluster.ensure_pods(fixture_objects(agnhost_image(cluster)))
    cluster.wait_ready([PRODUCTION, STAGING], timeout=READY_TIMEOUT_S)
    pods = {}
    for key in SOURCES:
        ns, name = key.split("/")
        pod = cluster.get_pod(ns, name)
        if pod is None or not pod.status or not pod.status.pod_ip:
            raise K8sLabError(f"Pod {key} of the lab's world has no IP after becoming ready")
        pods[key] = pod
    return pods


def live_dns_pods(cluster) -> list[dict]:
    return [pod_document(pod) for pod in cluster.list_pods(KUBE_SYSTEM, label_selector=KUBE_DNS_SELECTOR)
            if pod.status and pod.status.pod_ip and pod.status.phase == "Running"]


def _placement_problem(exercise: str, addresses: Mapping[str, str]) -> str:
    """ipblock-except states its target in addresses; say when this cluster does not place pods that way."""
    if exercise != "ipblock-except":
        return ""
    network, control = ipaddress.ip_network(POD_NETWORK), ipaddress.ip_network(CONTROL_PLANE_RANGE)
    problems = []
    for key, ip in addresses.items():
        address = ipaddress.ip_address(ip)
        inside = address in control
        if address not in network:
            problems.append(f"{key} has {ip}, outside the pod network {POD_NETWORK}")
        elif key == DB and not inside:
            problems.append(f"{key} has {ip}, outside the control-plane node's range {CONTROL_PLANE_RANGE}")
        elif key != DB and inside:
            problems.append(f"{key} has {ip}, inside {CONTROL_PLANE_RANGE}")
    return "; ".join(problems)


def _cell_probes(report: StaticReport, addresses: Mapping[str, str], dns_ips: Mapping[str, str]) -> CellProbes:
    """The probes of each cell, each with what the policies say it sees: DNS over UDP is a lookup, any other
    kube-dns cell one connection per kube-dns pod, any other cell one connection to the pod's port."""
    from graders.probe import ProbeSpec

    probes = {}
    for source, column in report.cells:
        static = report.allowed(source, column)
        if is_dns(column) and column.protocol == "UDP":
            probes[(source, column)] = [(ProbeSpec(source, "dns", DNS_NAME, label=column.label), static)]
        elif is_dns(column):
            probes[(source, column)] = [(ProbeSpec(source, column.protocol.lower(), ip, column.port,
                                                   label=f"{column.label}@{short(pod)}"),
                                         report.engine.is_allowed(source, pod, column.port, column.protocol))
                                        for pod, ip in sorted(dns_ips.items())]
        else:
            probes[(source, column)] = [(ProbeSpec(source, column.protocol.lower(), addresses[column.pod],
                                                   column.port, label=column.label), static)]
    return probes


@contextlib.contextmanager
def outside_destination(ctx) -> Iterator[tuple[dict[str, str], str]]:
    """For a target that imagines an address outside the cluster: a real one while the block runs (a listener
    on the cluster's docker network), as ({OUTSIDE: address}, ""); without Docker ({}, a note saying so)."""
    from graders import outside

    if OUTSIDE not in TARGETS[ctx.spec.id].imagined_keys:
        yield {}, ""
        return
    with contextlib.ExitStack() as stack:
        try:
            found = {OUTSIDE: stack.enter_context(outside.listener([80], ctx.cluster))}, ""
        except outside.OutsideUnavailable as error:
            found = {}, (f"the connection to an address outside the cluster ({OUTSIDE}) could not be sent: no "
                         f"listener outside the cluster ({error.message})")
        yield found


def split_by_type(docs: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(the NetworkPolicies that list both Ingress and Egress, each of them as two policies of one type): the same
    meaning by the specification, since policies add up per direction."""
    both, halves = [], []
    for doc in docs:
        spec = doc.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
        if doc.get("kind") != "NetworkPolicy" or not {"Ingress", "Egress"} <= set(types):
            continue
        both.append(dict(doc))
        for kind, rules in (("Ingress", "ingress"), ("Egress", "egress")):
            half = copy.deepcopy(dict(doc))
            half["metadata"] = {k: v for k, v in half["metadata"].items() if k in ("name", "namespace", "labels")}
            half["metadata"]["name"] = f"{doc['metadata']['name'][:50]}-{rules}"
            half["spec"] = {"podSelector": spec.get("podSelector") or {}, "policyTypes": [kind],
                            **({rules: spec[rules]} if rules in spec else {})}
            halves.append(half)
    return both, halves


def _judged(ctx, seen, probe_again, evidence_of) -> tuple[str, Any]:
    """judge(); but when the policies are right and the cluster does not enforce a policy that lists both Ingress
    and Egress (kube-router: its ingress part was skipped in held-out grading, while the same rules as two
    policies were enforced), apply them as two policies of one type each and probe again: passing then proves
    the learner's meaning live, and the message says what the grader did."""
    try:
        return judge(seen, evidence_of(seen), PROBE_ATTEMPTS), seen
    except CheckFailed as failed:
        both, halves = split_by_type(m.obj for m in ctx.objects)
        if not both or "your policies are right" not in failed.message:
            raise
        for doc in both:
            ctx.cluster.delete(doc)
        ctx.cluster.apply(halves)
        again = probe_again()
        try:
            message = judge(again, evidence_of(again), PROBE_ATTEMPTS)
        except CheckFailed:
            raise failed from None
        names = ", ".join(d["metadata"]["name"] for d in both)
        return (f"{message}. Note: the cluster did not enforce {names} as written (one policy listing both Ingress "
                f"and Egress); applied as two policies of one type each -- the same meaning by the NetworkPolicy "
                f"specification -- it enforced exactly what your policies say: a gap of the data plane, not your "
                f"mistake"), again


def live_check(ctx) -> StepResult:
    exercise = ctx.spec.id
    if TARGETS[exercise].break_fix:
        return break_fix_check(ctx)
    pods = deploy_world(ctx)
    addresses = {key: pod.status.pod_ip for key, pod in pods.items()}
    placement = _placement_problem(exercise, addresses)
    nodes = ", ".join(f"{key} on {pod.spec.node_name} ({pod.status.pod_ip})" for key, pod in pods.items())
    if placement:  # unproven is not passed: the points need live traffic that matches the target
        raise CheckFailed(f"not verifiable on this cluster: your policies' static check passed, but the live probes "
                          f"were NOT RUN because this exercise states its target in addresses (pod network "
                          f"{POD_NETWORK}, control-plane range {CONTROL_PLANE_RANGE}) and this cluster places pods "
                          f"differently ({placement}); this says nothing against your policies. Pods: {nodes}",
                          hint="grade it on the course's default cluster (kube-router, pod addresses from each "
                               "node's podCIDR): `make cluster-down cluster`",
                          evidence=(Evidence.text("placement", nodes),))
    dns_pods = live_dns_pods(ctx.cluster) if TARGETS[exercise].needs_dns else None
    with outside_destination(ctx) as (outside_address, note):
        addresses.update(outside_address)
        report = evaluate(exercise, ctx.objects, addresses, dns_pods)
        if not report.matches:  # the live addresses changed the verdict (ipBlock): the learner's policies are wrong
            raise _static_failure(report)
        dns_ips = {f"{KUBE_SYSTEM}/{p['metadata']['name']}": p["status"]["podIP"] for p in dns_pods or []}

        def probe_all():
            return observe(ctx.prober, report.reachability, _cell_probes(report, addresses, dns_ips),
                           functools.partial(_why, report.engine), attempts=PROBE_ATTEMPTS,
                           deadline_s=PROBE_DEADLINE_S, missing="no kube-dns pod to probe")

        def evidence_of(seen):
            return (Evidence.text("expected | static | live", grids(report, seen.live)),
                    Evidence.matrix("expected vs live", seen.matrix(name=_short_label)))
        message, seen = _judged(ctx, probe_all(), probe_all, evidence_of)
    evidence = evidence_of(seen)
    if note:  # unproven is not passed: "nowhere else" was never tried on the wire
        raise CheckFailed(f"not verifiable on this cluster: {message}, but {note}; this says nothing against your "
                          f"policies", hint="start Docker for the same user (`docker ps` must work) and check again",
                          evidence=evidence)
    return StepResult("live", True, message, evidence=evidence if getattr(ctx, "verbose", False) else ())


# ---- break-fix: the starter is a broken setup; its failure shows what cannot talk to what, live ---------------


def policy_fingerprint(docs: Iterable[Mapping[str, Any]], default_namespace: str = PRODUCTION) -> tuple:
    """What a set of NetworkPolicies means, without comments, layout, key order or document order: two
    submissions with the same fingerprint are the same policies."""
    return tuple(sorted((doc.get("metadata", {}).get("namespace") or default_namespace,
                         doc.get("metadata", {}).get("name", ""), json.dumps(doc.get("spec"), sort_keys=True))
                        for doc in docs if doc.get("kind") == "NetworkPolicy"))


def fingerprint_digest(docs: Iterable[Mapping[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(policy_fingerprint(docs)).encode()).hexdigest()


# The broken setup each break-fix exercise deploys, by digest: the starter files are the learner's own (edited in
# place), so the grader cannot read the pristine version from disk. tests/unit/test_lab05_break_fix.py keeps it
# equal to labs/05-network-policy/<exercise>/.
DEPLOYED = {"break-fix-lockdown": "d43df03c61088d784309c2cbb6efaa4a24966f6e26961836944e595495aa6f9d"}


def deployed_as_is(exercise: str, objects: Iterable[Manifest]) -> bool:
    """Whether the submission is still the broken setup the exercise starts from."""
    return fingerprint_digest(m.obj for m in objects) == DEPLOYED.get(exercise)


def symptom(source: str, column: Column, expected: Outcome, static: Outcome) -> str:
    """What a wrong cell means for the app, in words a colleague would report it with."""
    if is_dns(column) and column.port == 53 and static is Outcome.BLOCKED:
        if column.protocol == "UDP":
            return f"{short(source)} cannot resolve names (a lookup of {DNS_NAME} gets no answer)"
        return f"DNS over TCP from {short(source)} gets no answer (large answers and retries over TCP fail)"
    if static is Outcome.BLOCKED:
        return f"{short(source)} cannot open a connection it needs"
    return f"{short(source)} can open a connection that must be refused"


def symptom_lines(planned: StaticReport, report: StaticReport, seen) -> list[str]:
    """One line per wrong cell: the cell, what it means, and what live traffic did (with the command that
    reproduces it); a cell of an imagined destination is judged from the policies alone."""
    lines = []
    target = TARGETS[planned.exercise]
    imagined = target.imagined_keys | set(target.imagined_source_keys)
    cells = [(report, cell) for cell in report.wrong]
    cells += [(planned, cell) for cell in planned.wrong if cell[1].pod in imagined or cell[0] in imagined]
    for judged, (source, column) in cells:
        expected = judged.reachability.expected.get(source, column)
        static = judged.reachability.observed.get(source, column)
        line = (f"{source} -> {column.label} should be {expected.word} but is {static.word}: "
                f"{symptom(source, column, expected, static)}")
        if judged is planned:
            pod = source if source in imagined else column.pod
            line += f" ({pod} is imagined: judged from the policies, never probed)"
        else:
            live = seen.live.observed.get(source, column)
            agrees = "" if live is static else f", although the policies say {static.word}"
            command = seen.commands.get((source, column), "")
            line += f" (live probe: {live.word if live else 'not run'}{agrees}"
            line += f"; reproduce: {command})" if command else ")"
        lines.append(line)
    return lines


def break_fix_failure(planned: StaticReport, report: StaticReport, seen, evidence: Sequence[Evidence],
                      as_deployed: bool) -> CheckFailed:
    """The failure of a break-fix exercise. As deployed (the starter, unchanged): the symptoms only, so the
    learner has something to investigate and nothing given away; once edited: the symptoms and their causes."""
    lines = symptom_lines(planned, report, seen)
    what = "the setup as deployed is broken" if as_deployed else "the policies are not fixed yet"
    differ = (f"{len(lines)} connection(s) differ from what it must do" if lines
              else "every probed connection is right, but not every address")
    head = f"{what}: {differ} ({TARGETS[planned.exercise].statement})"
    lines += planned.address_problems  # every address, beyond the pods a probe reaches (judged from the policies)
    causes = () if as_deployed else tuple(dict.fromkeys((*planned.diagnoses, *report.diagnoses)))
    tail = ("investigate each symptom on the cluster (which policies select the pods on each side, and what "
            "their rules admit), fix the files, and check again" if as_deployed else "")
    message = "\n".join([head, *(f"- {line}" for line in lines), *(f"- {cause}" for cause in causes),
                         *([tail] if tail else [])])
    if not as_deployed and planned.explanations:
        evidence = (*evidence, Evidence.text("why each wrong cell is what it is", "\n\n".join(planned.explanations)))
    return CheckFailed(message, hint=HINTS[planned.exercise], evidence=tuple(evidence))


def break_fix_check(ctx) -> StepResult:
    """Deploy the world, apply the submission (however broken), probe every cell and judge. No static step
    before it: the symptoms a learner diagnoses are what live traffic does."""
    exercise = ctx.spec.id
    planned = evaluate(exercise, ctx.objects)  # the whole statement, imagined destinations included
    pods = deploy_world(ctx)
    addresses = {key: pod.status.pod_ip for key, pod in pods.items()}
    dns_pods = live_dns_pods(ctx.cluster) if TARGETS[exercise].needs_dns else None
    report = evaluate(exercise, ctx.objects, addresses, dns_pods)
    dns_ips = {f"{KUBE_SYSTEM}/{p['metadata']['name']}": p["status"]["podIP"] for p in dns_pods or []}
    seen = observe(ctx.prober, report.reachability, _cell_probes(report, addresses, dns_ips),
                   functools.partial(_why, report.engine), attempts=PROBE_ATTEMPTS, deadline_s=PROBE_DEADLINE_S,
                   missing="no kube-dns pod to probe")
    evidence = (Evidence.text("expected | static | live", grids(report, seen.live)),
                Evidence.matrix("expected vs live", seen.matrix(name=_short_label)))
    if not (planned.matches and report.matches):
        raise break_fix_failure(planned, report, seen, evidence, deployed_as_is(exercise, ctx.objects))
    message = judge(seen, evidence, PROBE_ATTEMPTS)
    return StepResult("live", True, message, evidence=evidence if getattr(ctx, "verbose", False) else ())


# ================================================================================ predict
# Predictions (an answers exercise, after lab 01's): the learner says what the cluster does under GIVEN policies,
# before seeing it. The policies are the grader's own (labs/05-network-policy/predict-policies.yaml, pinned by
# PREDICT_DIGEST); each question is one connection while one of them is applied alone. The grader first sends every
# question's connection with no policy at all (each must work: else there is nothing to compare with), then, policy
# by policy, applies it, sends its connections -- retrying while the cluster disagrees with what the policy says,
# since a CNI programs a new policy with a delay -- and deletes it. The facts are what the probes saw, trusted only
# where the cluster shows it enforces the policies: a connection a policy blocks that gets through anyway makes
# every question "not verifiable on this cluster" (no credit, never a pass), and stops the rounds.

PREDICT_POLICIES = "predict-policies.yaml"
# sha256 of policy_fingerprint(predict-policies.yaml): the questions are about its policies as shipped.
# tests/unit/test_lab05_predict.py keeps it equal to the file.
PREDICT_DIGEST = "b819c557c46aa7c6cc36c6aa47348b18e5c328759d564bb141f68659a3a0e906"
NO_POLICY = ""  # the first round: every question's connection with no policy applied
# Each round retries a connection while the cluster disagrees with the round's policy, until the deadline: a
# loaded kube-router took over 10 s to lift a deleted policy, so the rounds allow more attempts than the other
# exercises; and with three grading Jobs applying and deleting policies side by side (autograde --parallel 3 on
# the 2-core kind cluster, 2026-12-05) it took over 40 s twice in 14 runs, so a round waits up to
# PREDICT_DEADLINE_S (a round that agrees at once costs nothing more; after a round showing no enforcement, the
# rest is not sent, so a cluster that never enforces costs one round).
PREDICT_ATTEMPTS = 40
PREDICT_DEADLINE_S = 90.0
PREDICT_PAUSE_S = 1.0
ALLOW, BLOCK = Outcome.ALLOWED.word, Outcome.BLOCKED.word  # the two choices: "allowed", "blocked"
PredictCell = tuple[str, str, Column]  # (the given policy applied alone, or NO_POLICY; source; destination)


@dataclass(frozen=True)
class Prediction:
    """One question: a connection (``source`` -> ``column``; a DNS column is a lookup) while ``policy`` alone is
    applied, and ``why`` the cluster does what it does -- said to a wrong prediction (lab.yaml quotes it)."""

    question: Question
    policy: str
    source: str
    column: Column
    why: str

    @property
    def cell(self) -> PredictCell:
        return (self.policy, self.source, self.column)


def _prediction(question_id: str, policy: str, source: str, column: Column, asked: str, why: str) -> Prediction:
    return Prediction(Question(question_id, f"only {policy} applied: {asked}", "choice", (ALLOW, BLOCK)),
                      policy, source, column, why)


PREDICTS = (
    _prediction("deny_web_to_api", "default-deny-ingress", WEB, API_8080,
                "can production/web connect to production/api:8080?",
                "default-deny-ingress selects every pod of production, api included, and admits nothing: pods of "
                "the same namespace get no exception"),
    _prediction("deny_web_to_test", "default-deny-ingress", WEB, TEST_80,
                "can production/web connect to staging/test:80?",
                "no policy selects staging/test, so it accepts every connection; and an Ingress policy never "
                "limits what the pods it selects may send"),
    _prediction("two_peers_db_to_api", "allow-web-to-api-two-peers", DB, API_8080,
                "can production/db connect to production/api:8080?",
                "the two list items under `from` are two peers, ORed: the namespaceSelector item on its own admits "
                "every pod of a namespace labelled env=production, db included"),
    _prediction("one_peer_db_to_api", "allow-web-to-api-one-peer", DB, API_8080,
                "can production/db connect to production/api:8080?",
                "one list item is one peer whose selectors are ANDed: only pods labelled app=web in a namespace "
                "labelled env=production get in, and db is labelled app=db"),
    _prediction("deny_egress_api_dns", "api-deny-egress", API, DNS_UDP,
                "does a DNS lookup from production/api get its answer?",
                "api's egress is isolated and the policy has no egress rules: a DNS query to the kube-dns pods (UDP "
                "port 53) is a connection like any other, and nothing allows it"),
)
PREDICTIONS = tuple(p.question for p in PREDICTS)
# Connections sent besides the questions' own, shown next to them: what the same policy does to other pods
# (staging's test carries app=web too; an isolated api reaches nothing, db included).
PREDICT_EXTRA: dict[str, tuple[tuple[str, Column], ...]] = {
    "allow-web-to-api-two-peers": ((WEB, API_8080), (TEST, API_8080)),
    "allow-web-to-api-one-peer": ((WEB, API_8080), (TEST, API_8080)),
    "api-deny-egress": ((API, DB_5432),),
}


def predict_rounds() -> dict[str, tuple[tuple[str, Column], ...]]:
    """The connections of each round, in order: with no policy (every question's connection), then with each given
    policy alone (its questions' connections, then those shown next to them)."""
    rounds: dict[str, tuple[tuple[str, Column], ...]] = {
        NO_POLICY: tuple(dict.fromkeys((p.source, p.column) for p in PREDICTS))}
    for p in PREDICTS:
        rounds[p.policy] = tuple(dict.fromkeys((*rounds.get(p.policy, ()), (p.source, p.column))))
    for policy, extra in PREDICT_EXTRA.items():
        rounds[policy] = tuple(dict.fromkeys((*rounds[policy], *extra)))
    return rounds


def given_policies() -> dict[str, dict]:
    """The policies of predict-policies.yaml by name; a K8sLabError when the file is not as shipped."""
    docs = [doc for doc in _docs(PREDICT_POLICIES) if doc.get("kind") == "NetworkPolicy"]
    if fingerprint_digest(docs) != PREDICT_DIGEST:
        raise K8sLabError(f"labs/{LAB_ID}/{PREDICT_POLICIES} was changed: the questions of predict are about its "
                          f"policies as the course ships them, so the grader does not apply another version",
                          hint=f"restore it (git checkout -- labs/{LAB_ID}/{PREDICT_POLICIES}) and check again")
    return {doc["metadata"]["name"]: copy.deepcopy(doc) for doc in docs}


def connection(cell: PredictCell) -> str:
    """A cell's connection in words."""
    _, source, column = cell
    return f"a DNS lookup from {source}" if is_dns(column) else f"{source} -> {column.label}"


def predict_static(policies: Mapping[str, dict], addresses: Mapping[str, str] | None = None,
                   dns_pods: Sequence[dict] | None = None) -> dict[PredictCell, bool]:
    """What the given policies say about every connection of every round (pure: the world, its addresses and the
    kube-dns pods -- world.yaml's and cluster-dns.yaml's unless given -- and one policy at a time)."""
    world = _placed([copy.deepcopy(d) for d in _docs("world.yaml")], addresses, dns_pods, needs_dns=True)
    verdicts: dict[PredictCell, bool] = {}
    for policy, cells in predict_rounds().items():
        applied = [copy.deepcopy(policies[policy])] if policy else []
        engine = PolicyEngine(inventory_from_objects([*world, *applied], default_namespace=PRODUCTION))
        for source, column in cells:
            verdicts[(policy, source, column)] = _cell_allowed(engine, source, column)
    return verdicts


Seen = Mapping[PredictCell, tuple[Outcome, str, str]]  # per cell: what the probe saw, its detail, its command


def _unseen(cell: PredictCell, static: Mapping[PredictCell, bool], seen: Seen) -> str:
    """Why one cell proves nothing ("" when it does): not sent, a probe that could not run, a connection that does
    not work even with no policy, or one the cluster blocks although the policy allows it."""
    outcome, detail, _ = seen.get(cell, (Outcome.NOT_RUN, "the grader did not get to it", ""))
    what, policy = connection(cell), cell[0]
    if outcome is Outcome.NOT_RUN:
        return f"{what} was not sent ({detail})"
    if outcome is Outcome.FAILED:
        return f"the grader's probe of {what} could not run ({detail})"
    if not policy and outcome is not Outcome.ALLOWED:
        return (f"with no policy at all, {what} did not work ({detail}; retried for up to {PREDICT_DEADLINE_S:g} s), "
                f"so there is nothing to compare a policy's effect with")
    if policy and outcome is not outcome_of(static[cell]):
        return (f"the cluster blocked {what} although {policy} allows it ({detail}): something else blocks it, or the "
                f"CNI had not yet removed the policy of an earlier round")
    return ""


def leak(static: Mapping[PredictCell, bool], seen: Seen) -> str:
    """Why the cluster is not enforcing the given policies ("" when it is): a connection a policy blocks that the
    cluster let through, after retrying."""
    for cell, (outcome, _, _) in seen.items():
        if cell[0] and cell in static and not static[cell] and outcome is Outcome.ALLOWED:
            return (f"the cluster let {connection(cell)} through although {cell[0]} blocks it: the CNI does not "
                    f"enforce NetworkPolicy (Flannel, for one, never does) or had not programmed the policy after "
                    f"retrying for up to {PREDICT_DEADLINE_S:g} s")
    return ""


def prediction_facts(static: Mapping[PredictCell, bool], seen: Seen) -> dict[str, Fact]:
    """The facts of the predictions (pure): what the probes saw, for each question whose connection worked with no
    policy and behaved as its policy says; every question not observable when the cluster does not enforce."""
    leaked = leak(static, seen)
    if leaked:
        return {p.question.id: not_observable(leaked) for p in PREDICTS}
    facts: dict[str, Fact] = {}
    for p in PREDICTS:
        problem = _unseen((NO_POLICY, p.source, p.column), static, seen) or _unseen(p.cell, static, seen)
        if problem:
            facts[p.question.id] = not_observable(problem)
            continue
        allowed = seen[p.cell][0] is Outcome.ALLOWED
        right, wrong = (ALLOW, BLOCK) if allowed else (BLOCK, ALLOW)
        did = "let it through" if allowed else "blocked it"
        facts[p.question.id] = observed(right, because={wrong: f"you predicted {wrong}, but the cluster {did}: "
                                                               f"{p.why}"})
    return facts


def predict_evidence(static: Mapping[PredictCell, bool], seen: Seen) -> tuple[Evidence, ...]:
    """What the cluster did, round by round, next to what the policy says; then the command behind each row."""
    rows, commands = [], []
    for cell, allowed in static.items():
        outcome, detail, command = seen.get(cell, (Outcome.NOT_RUN, "", ""))
        says = outcome_of(allowed)
        did = outcome.word + (f" ({detail})" if detail and outcome is not says else "")
        rows.append((cell[0] or "(no policy)", connection(cell), says.word, did))
        if command:
            commands.append(f"{cell[0] or '(no policy)'}, {connection(cell)}:\n  {command}")
    table = Evidence.table("What the cluster did, round by round (one given policy applied at a time)",
                           ("applied", "connection", "the policy says", "the cluster did"), rows)
    return (table, Evidence.text("reproduce a row (while its policy is applied)", "\n".join(commands))) \
        if commands else (table,)


def _predict_spec(source: str, column: Column, addresses: Mapping[str, str]):
    from graders.probe import ProbeSpec

    if is_dns(column):
        return ProbeSpec(source, "dns", DNS_NAME, label=column.label)
    return ProbeSpec(source, column.protocol.lower(), addresses[column.pod], column.port, label=column.label)


def predict_observe(ctx, policies: Mapping[str, dict], addresses: Mapping[str, str], dns: bool,
                    static: Mapping[PredictCell, bool]) -> dict[PredictCell, tuple[Outcome, str, str]]:
    """Send every round's connections (the cluster side): apply the round's policy, probe until the cluster agrees
    with it (bounded), delete the policy. After a round whose blocked connection got through, the rest is not sent."""
    from graders.probe import probe_until

    seen: dict[PredictCell, tuple[Outcome, str, str]] = {}
    for policy, cells in predict_rounds().items():
        stopped = leak(static, seen)
        if stopped:
            seen.update({(policy, s, c): (Outcome.NOT_RUN, "not sent: an earlier round showed the cluster does not "
                                                           "enforce the policies", "") for s, c in cells})
            continue
        specs = {}
        for source, column in cells:
            if is_dns(column) and not dns:
                seen[(policy, source, column)] = (Outcome.NOT_RUN, f"no kube-dns pod ({KUBE_DNS_SELECTOR}) runs in "
                                                                   f"{KUBE_SYSTEM}", "")
            else:
                specs[(policy, source, column)] = _predict_spec(source, column, addresses)
        doc = policies[policy] if policy else None
        if doc is not None:
            ctx.cluster.apply([doc])
        try:
            want = {spec: outcome_of(static[cell]) for cell, spec in specs.items()}
            results = probe_until(ctx.prober, list(specs.values()), want, attempts=PREDICT_ATTEMPTS,
                                  deadline_s=PREDICT_DEADLINE_S, pause_s=PREDICT_PAUSE_S)
        finally:
            if doc is not None:
                ctx.cluster.delete(doc)
        seen.update({cell: (r.outcome, r.detail, r.command) for cell, r in zip(specs, results)})
    return seen


def predict_live(ctx) -> StepResult:
    policies = given_policies()
    pods = deploy_world(ctx)
    addresses = {key: pod.status.pod_ip for key, pod in pods.items()}
    dns_pods = live_dns_pods(ctx.cluster)
    static = predict_static(policies, addresses, dns_pods)
    seen = predict_observe(ctx, policies, addresses, bool(dns_pods), static)
    return judge_answers(ctx.answers, prediction_facts(static, seen), evidence=predict_evidence(static, seen),
                         hint=f"predict from the rules of sections 1-3 and 5 (a pod no policy selects, ORed peers, "
                              f"egress and DNS), then compare with the table; hint(\"{LAB_ID}\", \"predict\") "
                              f"gives more")


# A break-fix exercise has no static step: the broken setup is applied and probed, whatever its policies say.
EXERCISES = {exercise: Exercise(static=None if target.break_fix else static_check, live=live_check)
             for exercise, target in TARGETS.items()}
EXERCISES["predict"] = Exercise(live=predict_live, questions=PREDICTIONS)  # answers: no target matrix, no static
