"""graders.nsmap without a cluster: logical namespace names <-> real, run-unique ones (issue 15).

Every rewrite both ways, idempotence, inputs left alone, 63-character cutting, the identity map, lab 05's
solutions giving the same verdicts in a renamed world, and real grader messages turned back to logical names.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from graders import paths
from graders.labs import lab05_network_policy as lab05
from graders.model import Outcome
from graders.netpol.explain import explain
from graders.netpol.verdicts import PolicyEngine
from graders.nsmap import LOGICAL_LABEL, MAX_NAME, NAME_LABEL, NamespaceMap
from graders.probe import ProbeResult, ProbeSpec, reproduce_command
from graders.spec import load_lab

ROOT = paths.repo_root()
RUN = "ab12cd"
NSMAP = NamespaceMap.for_run(["production", "staging"], RUN)
PROD, STAGING = "production-ab12cd", "staging-ab12cd"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


# ------------------------------------------------------------------------------------------------ names


def test_for_run_appends_the_run_id_and_names_go_both_ways() -> None:
    assert dict(NSMAP.logical_to_real) == {"production": PROD, "staging": STAGING}
    assert NSMAP.real("production") == PROD and NSMAP.logical(PROD) == "production"
    assert NSMAP.key_to_real("staging/test") == f"{STAGING}/test"
    assert not NSMAP.is_identity


def test_unknown_names_pass_through() -> None:
    assert NSMAP.real("kube-system") == "kube-system" and NSMAP.logical("kube-system") == "kube-system"
    assert NSMAP.real(PROD) == PROD and NSMAP.logical("production") == "production"
    assert NSMAP.key_to_real("default/web") == "default/web" and NSMAP.key_to_real("production/") == f"{PROD}/"


def test_run_ids_with_capitals_underscores_and_dots_still_make_dns_labels() -> None:
    nsmap = NamespaceMap.for_run(["production"], "104512-Alice_B.x-ab12cd")
    assert nsmap.real("production") == "production-104512-alice-b-x-ab12cd"


@pytest.mark.parametrize("run_id", ["", "__", "x" * 41])
def test_a_run_id_that_cannot_make_a_name_is_refused(run_id: str) -> None:
    with pytest.raises(ValueError):
        NamespaceMap.for_run(["production"], run_id)


def test_long_names_are_cut_to_63_characters_and_stay_distinct() -> None:
    common = "k8slab-" + "a" * 50
    names = [common + "-one", common + "-two", common, "k8slab-pod-network", "k8slab-pod-network-data"]
    run_id = "104512-some-student-id-ab12cd"
    nsmap = NamespaceMap.for_run(names, run_id)
    reals = [nsmap.real(n) for n in names]
    assert len(set(reals)) == len(names)
    for logical, real in zip(names, reals):
        assert len(real) <= MAX_NAME and DNS_LABEL.fullmatch(real), real
        assert real.endswith(f"-{run_id}"), "the run id is never cut: it is what tells runs apart"
        assert nsmap.logical(real) == logical
    assert nsmap.real("k8slab-pod-network") == f"k8slab-pod-network-{run_id}"  # short enough: not cut
    assert NamespaceMap.for_run(names, run_id) == nsmap, "the same run always gets the same names"
    other = NamespaceMap.for_run(names, "104512-some-student-id-ffffff")
    assert not set(reals) & {other.real(n) for n in names}, "two runs never share a namespace"


def test_a_cut_name_ending_in_a_dash_is_still_a_dns_label() -> None:
    logical = "a" * 24 + "-" + "b" * 30  # with a 30-character run id, the cut falls right after the dash
    real = NamespaceMap.for_run([logical], "x" * 30).real(logical)
    assert len(real) <= MAX_NAME and DNS_LABEL.fullmatch(real) and "--" not in real


@pytest.mark.parametrize("mapping", [
    {"production": "same", "staging": "same"},  # not invertible
    {"production": "staging", "staging": "staging-x"},  # a real name that is another logical name
    {"Production": "production-x"},  # not a DNS label
    {"production": "p" * 64},
])
def test_maps_that_would_mislabel_messages_are_refused(mapping: dict) -> None:
    with pytest.raises(ValueError):
        NamespaceMap(mapping)


def test_the_map_is_frozen_and_compares_by_content() -> None:
    with pytest.raises(AttributeError):
        NSMAP.logical_to_real = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        NSMAP.logical_to_real["production"] = "x"  # type: ignore[index]
    assert NSMAP == NamespaceMap({"production": PROD, "staging": STAGING})
    assert hash(NSMAP) == hash(NamespaceMap({"staging": STAGING, "production": PROD}))


def test_labels_for_carries_the_lab_labels_and_the_logical_name() -> None:
    lab = load_lab("05-network-policy", ROOT)
    assert NSMAP.labels_for(PROD, lab.namespace_labels) == {"env": "production", LOGICAL_LABEL: "production"}
    assert NSMAP.labels_for(STAGING, lab.namespace_labels) == {"env": "staging", LOGICAL_LABEL: "staging"}
    identity = NamespaceMap.identity()
    assert identity.labels_for("production", lab.namespace_labels) == {"env": "production",
                                                                        LOGICAL_LABEL: "production"}
    assert NSMAP.labels_for("kube-system", lab.namespace_labels) == {LOGICAL_LABEL: "kube-system"}


# ------------------------------------------------------------------------------------------------ DNS


@pytest.mark.parametrize("logical, real", [
    ("api.production", f"api.{PROD}"),
    ("api.production.svc", f"api.{PROD}.svc"),
    ("api.production.svc.cluster.local", f"api.{PROD}.svc.cluster.local"),
    ("api.production.svc.cluster.local.", f"api.{PROD}.svc.cluster.local."),
    ("api.production.", f"api.{PROD}."),
    ("_http._tcp.api.production.svc.cluster.local", f"_http._tcp.api.{PROD}.svc.cluster.local"),
    ("10-244-1-10.production.pod.cluster.local", f"10-244-1-10.{PROD}.pod.cluster.local"),
    ("svc.production.svc.cluster.local", f"svc.{PROD}.svc.cluster.local"),  # a Service named svc
    ("production.svc.cluster.local", f"{PROD}.svc.cluster.local"),  # a search domain
])
def test_cluster_dns_names_both_ways(logical: str, real: str) -> None:
    assert NSMAP.dns_to_real(logical) == real
    assert NSMAP.dns_to_logical(real) == logical
    assert NSMAP.dns_to_real(real) == real, "mapping twice = once"


@pytest.mark.parametrize("host", [
    "example.com", "api.example.com", "production.example.com", "api.production.example.com", "production",
    "api.kube-system.svc.cluster.local", "svc.cluster.local", "cluster.local", "", "10.96.0.10",
])
def test_other_names_are_left_alone(host: str) -> None:
    assert NSMAP.dns_to_real(host) == host and NSMAP.dns_to_logical(host) == host


# ------------------------------------------------------------------------------------------------ objects


def _netpol(peers: list[dict], direction: str = "ingress") -> dict:
    key = "from" if direction == "ingress" else "to"
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "production"},
            "spec": {"podSelector": {}, "policyTypes": [direction.title()], direction: [{key: peers}]}}


def _by_name(value: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {NAME_LABEL: value}}, "podSelector": {"matchLabels": {"app": "web"}}}


def _expression(operator: str, values: list[str]) -> dict:
    return {"namespaceSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": operator, "values": values}]}}


def _route(namespace: str) -> dict:
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "namespace": namespace,
                                                                         "port": 80}}}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": namespace},
            "spec": {"parentRefs": [{"name": "gw", "namespace": namespace}],
                     "rules": [{"filters": [mirror],
                                "backendRefs": [{"name": "api", "namespace": namespace, "port": 80,
                                                 "filters": [copy.deepcopy(mirror)]}]}]}}


def _gateway(namespace: str) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": namespace},
            "spec": {"gatewayClassName": "traefik", "listeners": [{
                "name": "web", "port": 80, "protocol": "HTTPS",
                "tls": {"certificateRefs": [{"name": "cert", "namespace": namespace}]},
                "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
                    "matchLabels": {NAME_LABEL: namespace},
                    "matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": [namespace, "other"]}]}}},
            }]}}


def _grant(namespace: str) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "staging"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}],
                     "to": [{"group": "", "kind": "Service"}]}}


def _external(host: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "staging"},
            "spec": {"type": "ExternalName", "externalName": host}}


def _pod(searches: list[str], kind: str = "Pod") -> dict:
    spec = {"dnsConfig": {"searches": searches}, "containers": [{"name": "c", "image": "i"}]}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "production"},
                "spec": spec}
    template = {"metadata": {"labels": {"app": "c"}}, "spec": spec}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "c"},
            "spec": {"selector": {"matchLabels": {"app": "c"}}, "template": template}}


def _ingress(middlewares: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "namespace": "production",
                         "annotations": {"traefik.ingress.kubernetes.io/router.middlewares": middlewares}},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "api", "port": {"number": 80}}}}]}}]}}


def _renamed(obj: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


# (logical object, the object on the cluster): every field that names a namespace, one case each
PAIRS = {
    "metadata.namespace": (
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "staging"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": STAGING}}),
    "Namespace name": (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "production", "labels": {"env": "production"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROD, "labels": {"env": "production"}}}),
    "ingress peer matchLabels": (
        _netpol([_by_name("staging")]), {**_netpol([_by_name(STAGING)]), "metadata": {"name": "p", "namespace": PROD}}),
    "egress peer matchExpressions In": (
        _netpol([_expression("In", ["production", "kube-system"])], "egress"),
        {**_netpol([_expression("In", [PROD, "kube-system"])], "egress"),
         "metadata": {"name": "p", "namespace": PROD}}),
    "peer matchExpressions NotIn": (
        _netpol([_expression("NotIn", ["staging"])]),
        {**_netpol([_expression("NotIn", [STAGING])]), "metadata": {"name": "p", "namespace": PROD}}),
    "externalName <svc>.<ns>.svc.cluster.local": (
        _external("api.production.svc.cluster.local"), {**_external(f"api.{PROD}.svc.cluster.local"),
                                                         "metadata": {"name": "db", "namespace": STAGING}}),
    "externalName <svc>.<ns>": (
        _external("api.production"), {**_external(f"api.{PROD}"), "metadata": {"name": "db", "namespace": STAGING}}),
    "Pod dnsConfig.searches": (
        _pod(["staging.svc.cluster.local", "svc.cluster.local", "example.com"]),
        {**_pod([f"{STAGING}.svc.cluster.local", "svc.cluster.local", "example.com"]),
         "metadata": {"name": "client", "namespace": PROD}}),
    "Deployment template searches": (_pod(["staging.svc.cluster.local"], "Deployment"),
                                     _pod([f"{STAGING}.svc.cluster.local"], "Deployment")),
    "StatefulSet template searches": (_pod(["staging.svc"], "StatefulSet"), _pod([f"{STAGING}.svc"], "StatefulSet")),
    "CronJob template searches": (_pod(["staging.svc"], "CronJob"), _pod([f"{STAGING}.svc"], "CronJob")),
    "HTTPRoute parentRefs, backendRefs, requestMirror": (_route("staging"), _route(STAGING)),
    "Gateway allowedRoutes selector, certificateRefs": (_gateway("production"), _gateway(PROD)),
    "ReferenceGrant from": (_grant("production"),
                            {**_grant(PROD), "metadata": {"name": "g", "namespace": STAGING}}),
    "Traefik middlewares annotation": (
        _ingress("production-rate-limit@kubernetescrd, staging-auth@kubernetescrd,other-x@kubernetescrd"),
        {**_ingress(f"{PROD}-rate-limit@kubernetescrd, {STAGING}-auth@kubernetescrd,other-x@kubernetescrd"),
         "metadata": {"name": "i", "namespace": PROD, "annotations": {
             "traefik.ingress.kubernetes.io/router.middlewares":
                 f"{PROD}-rate-limit@kubernetescrd, {STAGING}-auth@kubernetescrd,other-x@kubernetescrd"}}}),
}


@pytest.mark.parametrize("case", list(PAIRS))
def test_every_field_that_names_a_namespace_both_ways(case: str) -> None:
    logical, real = PAIRS[case]
    before = copy.deepcopy(logical)
    assert NSMAP.to_real(logical) == real
    assert NSMAP.to_logical(real) == logical
    assert logical == before, "the input is never changed"
    assert NSMAP.to_real(real) == real and NSMAP.to_logical(logical) == logical, "mapping twice = once"
    assert NamespaceMap.identity().to_real(logical) == logical


def test_to_real_returns_a_copy_that_shares_nothing_with_the_input() -> None:
    logical = _netpol([_by_name("staging")])
    real = NSMAP.to_real(logical)
    real["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"] = "changed"
    assert logical["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"] == "web"


# Fields that hold a namespace's name as text but do not name a namespace: never touched.
UNTOUCHED = {
    "namespace labels other than its name": _netpol([{"namespaceSelector": {"matchLabels": {"env": "production",
                                                                                            "name": "production"}}}]),
    "expressions on other keys, Exists": _netpol([{"namespaceSelector": {"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["production"]}, {"key": NAME_LABEL, "operator": "Exists"}]}}]),
    "pod labels": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "production", "labels": {
        "app": "production", NAME_LABEL: "production"}}, "spec": {"containers": [{"name": "production",
                                                                                   "image": "i", "env": [
            {"name": "HOST", "value": "api.production.svc.cluster.local"}]}]}},
    "podSelector on the name label": _netpol([{"podSelector": {"matchLabels": {NAME_LABEL: "production"}}}]),
    "external host": _external("api.production.example.com"),
    "namespaceSelector outside a NetworkPolicy peer": {"apiVersion": "v1", "kind": "ConfigMap",
                                                       "metadata": {"name": "c"},
                                                       "data": {"namespaceSelector": "production"}},
    "middlewares of the other provider": _ingress("production-x@file"),
    "an Ingress backend (no namespace)": _ingress("")
}


@pytest.mark.parametrize("case", list(UNTOUCHED))
def test_fields_that_do_not_name_a_namespace_are_left_alone(case: str) -> None:
    obj = UNTOUCHED[case]
    meta_ns = (obj.get("metadata") or {}).get("namespace")
    real = NSMAP.to_real(obj)
    expected = copy.deepcopy(obj)
    if meta_ns:
        expected["metadata"]["namespace"] = NSMAP.real(meta_ns)
    assert real == expected


def test_objects_without_a_namespace_get_none() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}]}}
    assert NSMAP.to_real(obj) == obj and "namespace" not in NSMAP.to_real(obj)["metadata"]


def test_malformed_fields_are_passed_through_not_crashed_on() -> None:
    weird = {"kind": "NetworkPolicy", "metadata": None, "spec": {"ingress": [None, {"from": "x"},
                                                                            {"from": [{"namespaceSelector": []}]}]}}
    assert NSMAP.to_real(weird) == weird
    assert NSMAP.to_real({"kind": "HTTPRoute", "spec": {"rules": [{"backendRefs": None}]}})["spec"]["rules"] == [
        {"backendRefs": None}]


def test_middleware_prefixes_pick_the_longest_namespace() -> None:
    nsmap = NamespaceMap.for_run(["k8slab-pod-network", "k8slab-pod-network-data"], RUN)
    logical = _ingress("k8slab-pod-network-data-limit@kubernetescrd,k8slab-pod-network-limit@kubernetescrd")
    real = nsmap.to_real(logical)["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
    assert real == (f"k8slab-pod-network-data-{RUN}-limit@kubernetescrd,"
                    f"k8slab-pod-network-{RUN}-limit@kubernetescrd")
    assert nsmap.to_logical(nsmap.to_real(logical)) == logical


def _solution_documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((ROOT / "solutions").rglob("*.y*ml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if isinstance(doc, dict) and "kind" in doc:
                found.append((f"{path.relative_to(ROOT)}#{index}", doc))
    return found


def test_every_solution_object_survives_a_round_trip_and_the_identity_map() -> None:
    docs = _solution_documents()
    assert len(docs) > 100
    lab_namespaces = sorted({ns for lab in ("00-orientation", "01-pod-network", "03-services", "04-ingress",
                                            "05-network-policy") for ns in load_lab(lab, ROOT).all_namespaces})
    nsmap = NamespaceMap.for_run(lab_namespaces, RUN)
    identity = NamespaceMap.identity()
    for where, doc in docs:
        real = nsmap.to_real(doc)
        assert nsmap.to_logical(real) == doc, where
        assert nsmap.to_real(real) == real, where
        assert identity.to_real(doc) == doc and identity.to_logical(doc) == doc, where


def test_the_dns_search_solution_points_at_the_real_data_namespace() -> None:
    nsmap = NamespaceMap.for_run(load_lab("01-pod-network", ROOT).all_namespaces, RUN)
    doc = yaml.safe_load((ROOT / "solutions/01-pod-network/dns-search/client.yaml").read_text(encoding="utf-8"))
    assert nsmap.to_real(doc)["spec"]["dnsConfig"]["searches"] == [f"k8slab-pod-network-data-{RUN}.svc.cluster.local"]


# ------------------------------------------------------------------------------------- NetworkPolicy verdicts


def _pod_doc(key: str, labels: dict, ip: str, ports: list[tuple[str, int, str]]) -> dict:
    namespace, name = key.split("/")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": name, "ports": [{"name": n, "containerPort": p, "protocol": proto}
                                                             for n, p, proto in ports]}]},
            "status": {"podIP": ip}}


def _small_world() -> list[dict]:
    """Like labs/05-network-policy/world.yaml, plus what the mistakes trip on: api in staging, web in default,
    an unlabelled monitoring namespace and kube-system's DNS. Namespace labels are the lab's, as the grader sets."""
    labels = load_lab("05-network-policy", ROOT).namespace_labels
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": ns, "labels": dict(labels.get(ns, {}))}}
                  for ns in ("production", "staging", "default", "monitoring", "kube-system")]
    http = [("http", 80, "TCP")]
    api = [("http", 8080, "TCP"), ("v2", 8081, "TCP"), ("v3", 8082, "TCP"), ("v4", 8083, "TCP")]
    return [*namespaces,
            _pod_doc("production/web", {"app": "web"}, "10.244.1.10", http),
            _pod_doc("production/api", {"app": "api"}, "10.244.2.10", api),
            _pod_doc("production/db", {"app": "db"}, "10.244.0.10", [("postgres", 5432, "TCP")]),
            _pod_doc("staging/test", {"app": "web", "role": "test"}, "10.244.1.11", http),
            _pod_doc("staging/api", {"app": "api"}, "10.244.2.11", api),
            _pod_doc("default/web", {"app": "web"}, "10.244.1.12", http),
            _pod_doc("monitoring/prometheus", {"app": "prometheus"}, "10.244.2.12", [("web", 9090, "TCP")]),
            _pod_doc("kube-system/coredns", {"k8s-app": "kube-dns"}, "10.244.0.2",
                     [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")])]


QUERIES = [(80, "TCP"), (8080, "TCP"), (8081, "TCP"), (8083, "TCP"), (5432, "TCP"), (53, "UDP"), (53, "TCP")]


def _policies(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    policies = [copy.deepcopy(d) for d in docs if d.get("kind") == "NetworkPolicy"]
    for policy in policies:  # what parse_submission does: the exercise's first namespace is the default
        policy.setdefault("metadata", {}).setdefault("namespace", "production")
    return policies


def _matrices(objects: list[dict], nsmap: NamespaceMap | None = None) -> dict:
    engine = PolicyEngine.from_objects(objects)
    back = nsmap.text_to_logical if nsmap else (lambda key: key)
    return {query: {back(s): {back(d): ok for d, ok in row.items()} for s, row in engine.matrix(*query).items()}
            for query in QUERIES}


POLICY_FILES = sorted(p for p in (ROOT / "solutions" / "05-network-policy").rglob("*.yaml")
                      if "kind: NetworkPolicy" in p.read_text(encoding="utf-8"))


def test_lab05_has_solutions_mistakes_and_alternatives_to_check() -> None:
    parts = {p.relative_to(ROOT / "solutions" / "05-network-policy").parts[0] for p in POLICY_FILES}
    assert {"mistakes", "alternatives", "web-to-api", "break-fix-lockdown"} <= parts
    assert len(POLICY_FILES) >= 60


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: str(p.relative_to(ROOT / "solutions")))
def test_a_policy_gives_the_same_verdicts_in_a_renamed_world(path: Path) -> None:
    world, policies = _small_world(), _policies(path)
    expected = _matrices([*world, *policies])
    renamed = _matrices([NSMAP.to_real(o) for o in (*world, *policies)], NSMAP)
    assert renamed == expected


def test_the_rename_matters_a_policy_naming_its_namespace_breaks_without_it() -> None:
    """Renaming metadata.namespace alone (the naive mapping) changes lockdown.yaml's verdict: db would no longer
    admit api, because its peer still names namespace production, which no longer exists."""
    world, policies = _small_world(), _policies(ROOT / "solutions/05-network-policy/break-fix-lockdown/lockdown.yaml")
    naive = [_renamed(o, ("metadata", "namespace"), NSMAP.real(o["metadata"]["namespace"]))
             if o["metadata"].get("namespace") else NSMAP.to_real(o) for o in (*world, *policies)]
    engine = PolicyEngine.from_objects(naive)
    assert PolicyEngine.from_objects([*world, *policies]).is_allowed("production/api", "production/db", 5432)
    assert not engine.is_allowed(f"{PROD}/api", f"{PROD}/db", 5432)
    assert PolicyEngine.from_objects([NSMAP.to_real(o) for o in (*world, *policies)]).is_allowed(
        f"{PROD}/api", f"{PROD}/db", 5432)


@pytest.mark.parametrize("exercise", [e for e in lab05.TARGETS if lab05.TARGETS[e] is not None])
def test_the_lab05_world_with_its_imagined_pods_gives_the_same_verdicts(exercise: str) -> None:
    """The lab's own static world (world.yaml, cluster DNS, the pods it imagines) and each exercise's solution."""
    world = lab05.world_objects(exercise)
    policies = _policies(ROOT / "solutions" / "05-network-policy" / exercise / load_lab(
        "05-network-policy", ROOT).exercise(exercise).files[0])
    assert _matrices([NSMAP.to_real(o) for o in (*world, *policies)], NSMAP) == _matrices([*world, *policies])


def test_explanations_of_the_renamed_world_read_as_the_logical_ones() -> None:
    """The words the static engine writes (peers, selectors, namespace names) come back identical."""
    world = _small_world()
    for name in ("break-fix-lockdown/lockdown.yaml", "mistakes/web-to-api/env-notin-staging/allow-web-to-api.yaml",
                 "mistakes/break-fix-lockdown/dns-only/lockdown.yaml"):
        policies = _policies(ROOT / "solutions" / "05-network-policy" / name)
        logical = PolicyEngine.from_objects([*world, *policies])
        real = PolicyEngine.from_objects([NSMAP.to_real(o) for o in (*world, *policies)])
        for src, dst, port, proto in [("production/web", "production/db", 5432, "TCP"),
                                      ("staging/api", "production/api", 8080, "TCP"),
                                      ("production/api", "kube-system/coredns", 53, "UDP")]:
            words = explain(real, NSMAP.key_to_real(src), NSMAP.key_to_real(dst), port, proto).text
            assert NSMAP.text_to_logical(words) == explain(logical, src, dst, port, proto).text, name


# ------------------------------------------------------------------------------------------------ messages


def test_reproduce_commands_and_probe_descriptions_name_the_logical_namespaces() -> None:
    spec = ProbeSpec(NSMAP.key_to_real(lab05.WEB), "tcp", "10.244.2.10", 8080, label=NSMAP.key_to_real(lab05.API))
    command = reproduce_command(spec, "kind-k8slab")
    assert f"exec -n {PROD} web" in command
    assert NSMAP.text_to_logical(command) == reproduce_command(
        ProbeSpec(lab05.WEB, "tcp", "10.244.2.10", 8080), "kind-k8slab")
    result = ProbeResult(spec, Outcome.BLOCKED, detail="timed out")
    assert NSMAP.text_to_logical(result.describe()) == "production/web -> production/api: blocked (timed out)"


@pytest.mark.parametrize("real, logical", [
    (f"kubectl --context kind-k8slab exec -n {PROD} api -- nslookup -timeout=2 -retry=2 kubernetes.default",
     "kubectl --context kind-k8slab exec -n production api -- nslookup -timeout=2 -retry=2 kubernetes.default"),
    (f"kubectl --context kind-k8slab --namespace {STAGING} get pods; kubectl --context kind-k8slab "
     f"--namespace={PROD} get networkpolicy",
     "kubectl --context kind-k8slab --namespace staging get pods; kubectl --context kind-k8slab "
     "--namespace=production get networkpolicy"),
    (f"{PROD}/web -> {PROD}/api:8080/tcp", "production/web -> production/api:8080/tcp"),
    (f"dns:api.{PROD}.svc.cluster.local", "dns:api.production.svc.cluster.local"),
    (f"router.middlewares names `{PROD}-api-rate-limit@kubernetescrd`, which does not exist",
     "router.middlewares names `production-api-rate-limit@kubernetescrd`, which does not exist"),
    (f"peers in separate list items are ORed: every pod in a namespace labelled {NAME_LABEL}={PROD} may reach db",
     f"peers in separate list items are ORed: every pod in a namespace labelled {NAME_LABEL}=production may reach "
     "db"),
    (f"NetworkPolicy {PROD}/allow-web-to-api: namespaceSelector env=production matches no namespace ('{STAGING}').",
     "NetworkPolicy production/allow-web-to-api: namespaceSelector env=production matches no namespace ('staging')."),
])
def test_text_to_logical_on_grader_lines(real: str, logical: str) -> None:
    assert NSMAP.text_to_logical(real) == logical
    assert NSMAP.text_to_logical(logical) == logical, "mapping twice = once"


def test_text_to_logical_on_lab05_messages() -> None:
    """lab 05's own words, as the grader would write them about the real pods, read exactly as today."""
    for key, why in [*lab05.SOURCE_WHY.items(), *((k, w) for (k, _), w in lab05.IMAGINED_WHY.items())]:
        namespace = key.split("/")[0]
        real = why.replace(key, NSMAP.key_to_real(key))  # the pod key is what the engine fills in
        assert (real != why) == (namespace in ("production", "staging"))
        assert NSMAP.text_to_logical(real) == why


@pytest.mark.parametrize("text", [
    f"{PROD}-2/web", f"x{PROD}", f"{PROD}x", f"{PROD}_old", f"my-{PROD}", "production/web", "env=production",
    f"{RUN}", "staging-ab12c", "",
])
def test_text_to_logical_replaces_whole_names_only(text: str) -> None:
    assert NSMAP.text_to_logical(text) == text


def test_a_namespace_whose_name_begins_another_stays_apart() -> None:
    nsmap = NamespaceMap.for_run(["k8slab-pod-network", "k8slab-pod-network-data"], RUN)
    text = (f"db.k8slab-pod-network-data-{RUN}.svc.cluster.local from k8slab-pod-network-{RUN}/client "
            f"(kubectl --context kind-k8slab -n k8slab-pod-network-data-{RUN} get svc)")
    assert nsmap.text_to_logical(text) == ("db.k8slab-pod-network-data.svc.cluster.local from k8slab-pod-network/"
                                           "client (kubectl --context kind-k8slab -n k8slab-pod-network-data get svc)")


def test_the_identity_map_changes_no_text() -> None:
    identity = NamespaceMap.identity()
    for text in ("kubectl --context kind-k8slab exec -n production api -- true", f"{PROD}/web", ""):
        assert identity.text_to_logical(text) == text
        assert identity.dns_to_real(text) == text and identity.dns_to_logical(text) == text
    assert identity.real("production") == "production" and identity.key_to_real("production/web") == "production/web"
    assert identity.is_identity and NamespaceMap({"production": "production"}).is_identity
