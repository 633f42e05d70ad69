"""Lab 01-pod-network, exercise dns-search, without a cluster: the kubelet's resolv.conf reckoned from a pod's
dnsPolicy/dnsConfig, the judgements, and the live check on a fake cluster whose "kubelet" writes resolv.conf files
and whose lookups a small glibc-like resolver answers. The real-cluster proof is tests/live."""
from __future__ import annotations

import copy

import pytest

from fakes import FakeCluster, ref_of
from graders import manifests, probe, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab01_pod_network as lab
from graders.model import Outcome
from graders.probe import ProbeResult, SimulatedRunner

LAB = spec.load_lab("01-pod-network")
DNS = LAB.exercise("dns-search")
NS_ = DNS.namespaces[0]
W1 = "k8slab-worker"
CLUSTER_DNS = ("10.96.0.10",)
DB_IP, API_IP = "10.96.200.7", "10.96.0.1"
OWN = (f"{NS_}.svc.cluster.local", "svc.cluster.local", "cluster.local")
DATA = "k8slab-pod-network-data.svc.cluster.local"
NODE = lab.Resolver(("172.18.0.1",), ("corp.example",), ("edns0",))  # a node resolver with a search domain
CLUSTER = lab.ClusterDns(CLUSTER_DNS, "cluster.local", NODE)


def _pod(policy=None, host_network=None, **config):
    spec_ = {k: v for k, v in (("dnsPolicy", policy), ("hostNetwork", host_network)) if v is not None}
    if config:
        spec_["dnsConfig"] = config
    return {"metadata": {"name": "client", "namespace": NS_}, "spec": spec_}


# ---------------------------------------------------------------------- resolv.conf and the kubelet's reckoning
def test_parse_resolv_conf_and_render_round_trip():
    text = f"search {' '.join(OWN)} x.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5 edns0\n"
    found = lab.parse_resolv_conf(text)
    assert found == lab.Resolver(CLUSTER_DNS, (*OWN, "x.svc.cluster.local"), ("ndots:5", "edns0"))
    assert lab.parse_resolv_conf(found.text()) == found


@pytest.mark.parametrize("options, ndots", [
    ((), 1),                        # glibc's own default
    (("ndots:5",), 5),
    (("ndots:5", "ndots:2"), 2),    # the last one wins
    (("ndots:40",), 15),            # capped
    (("ndots:",), 0),               # atoi("") is 0
    (("ndots",), 1),                # not "ndots:": ignored
    (("edns0", "ndots:0"), 0),
])
def test_ndots_as_glibc_reads_it(options, ndots):
    assert lab.Resolver(options=options).ndots == ndots


@pytest.mark.parametrize("pod, policy", [
    (_pod(), "ClusterFirst"),
    (_pod("ClusterFirstWithHostNet"), "ClusterFirst"),
    (_pod("ClusterFirst", True), "Default"),   # on the host network ClusterFirst falls back to the node's resolver
    (_pod("Default"), "Default"),
    (_pod("None", nameservers=["10.96.0.10"]), "None"),
])
def test_effective_policy(pod, policy):
    assert lab.PodDns.of(pod).effective_policy == policy


@pytest.mark.parametrize("pod, expected", [
    (_pod(), lab.Resolver(CLUSTER_DNS, (*OWN, "corp.example"), ("ndots:5",))),
    (_pod(searches=[DATA]), lab.Resolver(CLUSTER_DNS, (*OWN, "corp.example", DATA), ("ndots:5",))),
    # a domain already in the list is not repeated; an option of the same name replaces the kubelet's
    (_pod("ClusterFirst", searches=[OWN[0]], options=[{"name": "ndots", "value": "2"}, {"name": "edns0"}]),
     lab.Resolver(CLUSTER_DNS, (*OWN, "corp.example"), ("ndots:2", "edns0"))),
    (_pod(options=[{"name": "ndots"}]), lab.Resolver(CLUSTER_DNS, (*OWN, "corp.example"), ("ndots",))),
    # None: dnsConfig alone, no ndots option at all (so glibc's default 1)
    (_pod("None", nameservers=["10.96.0.10"], searches=[DATA]), lab.Resolver(CLUSTER_DNS, (DATA,), ())),
    # Default: the node's resolver, dnsConfig appended
    (_pod("Default", searches=[DATA]), lab.Resolver(NODE.nameservers, ("corp.example", DATA), ("edns0",))),
    # at most three nameservers
    (_pod(nameservers=["1.1.1.1", "2.2.2.2", "3.3.3.3"]),
     lab.Resolver(("10.96.0.10", "1.1.1.1", "2.2.2.2"), (*OWN, "corp.example"), ("ndots:5",))),
])
def test_effective_resolver_is_what_the_kubelet_writes(pod, expected):
    found = lab.effective_resolver(lab.PodDns.of(pod), NS_, CLUSTER)
    assert found.same_as(expected), found


def test_cluster_dns_is_learned_from_a_clusterfirst_pod_without_dns_config():
    reference = lab.effective_resolver(lab.PodDns(), NS_, CLUSTER)
    learned = lab.ClusterDns.learned(reference, NS_)
    assert learned.nameservers == CLUSTER_DNS and learned.domain == "cluster.local"
    assert learned.host.searches == ("corp.example",)
    assert lab.ClusterDns.learned(reference, NS_, NODE).host == NODE


def test_the_mirror_pod_copies_the_dns_settings_and_pins_the_node():
    dns = lab.PodDns.of(_pod("None", nameservers=["10.96.0.10"], searches=[DATA],
                             options=[{"name": "ndots", "value": "2"}, {"name": "edns0"}]))
    pod = lab.mirror_pod(NS_, lab.MIRROR_POD, "img:1", W1, dns.spec_fields())
    assert pod["spec"]["dnsPolicy"] == "None"
    assert pod["spec"]["dnsConfig"] == {"nameservers": ["10.96.0.10"], "searches": [DATA],
                                        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": W1}
    assert pod["metadata"]["labels"][probe.PROBE_LABEL] == "true"  # not one of the learner's pods
    assert lab.PodDns.of(pod) == dns


# ---------------------------------------------------------------------- judgements
def _settings(pod):
    dns = lab.PodDns.of(pod)
    return lab.judge_settings(dns, lab.effective_resolver(dns, NS_, CLUSTER), CLUSTER_DNS)[0]


@pytest.mark.parametrize("pod, fragment", [
    (_pod(searches=[DATA]), ""),
    # db (no dot) is still searched first, but kubernetes.default (one dot) is not by musl and nslookup
    (_pod(searches=[DATA], options=[{"name": "ndots", "value": "1"}]), "never try the search list"),
    (_pod(searches=[DATA], options=[{"name": "ndots", "value": "2"}]), ""),
    (_pod(searches=[DATA], nameservers=["8.8.8.8"]), ""),  # asked only when the cluster DNS does not answer
    (_pod(searches=[DATA], options=[{"name": "ndots", "value": "0"}]), "every name counts as complete"),
    # written as a bare `ndots`, which resolvers ignore: their default ndots 1 applies
    (_pod(searches=[DATA], options=[{"name": "ndots", "value": ""}]), "never try the search list"),
    (_pod("Default", searches=[DATA]), "not the cluster DNS"),
    (_pod("None", nameservers=["172.18.0.1"], searches=[DATA]), "with dnsPolicy None a pod asks only"),
    (_pod(searches=[DATA], nameservers=["8.8.8.8"], options=[{"name": "rotate"}]), "asks its nameservers in turn"),
])
def test_judge_settings(pod, fragment):
    found = _settings(pod)
    assert (fragment in found) if fragment else found == "", found


def _lookup(name, answer=None, expect=()):
    spec_ = lab.ProbeSpec(f"{NS_}/{lab.MIRROR_POD}", "dns", name, expect=expect)
    if answer is None:
        rc, text = 1, f"** server can't find {name}: NXDOMAIN"
    else:
        rc, text = 0, f"Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\t{name}\nAddress: {answer}\n"
    outcome, detail = probe.classify(spec_, rc, text)
    return ProbeResult(spec_, outcome, output=text, detail=detail)


@pytest.mark.parametrize("searches, db, api, fragment", [
    ((*OWN, DATA), DB_IP, API_IP, ""),
    ((*OWN, "k8slab-pod-network-dat.svc.cluster.local"), None, API_IP, "which has no Service db"),
    (OWN, None, API_IP, "no search domain leads to namespace k8slab-pod-network-data"),
    ((DATA,), DB_IP, None, "kubernetes.default no longer resolves"),
    ((*OWN, DATA), "10.96.9.9", API_IP, "finds another db first"),  # a Service db of the client's own namespace
])
def test_judge_lookups(searches, db, api, fragment):
    resolver = lab.Resolver(CLUSTER_DNS, searches, ("ndots:5",))
    found, _ = lab.judge_lookups(resolver, _lookup("db", db, (DB_IP,)), _lookup("kubernetes.default", api), NS_)
    assert (fragment in found) if fragment else found == "", found


def test_tampering_names_what_the_container_changed():
    kubelet = lab.Resolver(CLUSTER_DNS, OWN, ("ndots:5", "edns0"))
    assert lab.tampering(None, kubelet) == ""
    assert lab.tampering(lab.Resolver(CLUSTER_DNS, OWN, ("edns0", "ndots:5")), kubelet) == ""  # order is no change
    note = lab.tampering(lab.Resolver(CLUSTER_DNS, (*OWN, DATA), ("ndots:5", "edns0")), kubelet)
    assert "changed inside the container" in note and DATA in note and "nameserver" not in note


# ---------------------------------------------------------------------- the live check on a fake cluster
ZONE = {f"db.{DATA}": DB_IP, "kubernetes.default.svc.cluster.local": API_IP}


def resolve(name: str, resolver: lab.Resolver) -> str | None:
    """glibc's order: a name with fewer dots than ndots is tried with each search domain first, then as it is;
    any other name as it is first (what the cluster DNS has is ZONE; nothing outside answers)."""
    if not resolver.nameservers or resolver.nameservers[0] not in CLUSTER_DNS:
        return None
    searched = [f"{name}.{domain}" for domain in resolver.searches]
    order = searched + [name] if name.count(".") < resolver.ndots else [name] + searched
    return next((ZONE[n] for n in order if n in ZONE), None)


class DnsCluster(FakeCluster):
    """The submission's objects as the API server holds them (pods on W1, Service db with its ClusterIP), a
    "kubelet" that writes each pod's resolv.conf from its spec, and a client container that may rewrite its own."""

    def __init__(self, directory, rewrites_own=False):
        super().__init__()
        for name in DNS.namespaces:
            self.ensure_owned_namespace(name)
        found = manifests.parse_submission([directory], allowed_kinds=DNS.allowed_kinds, namespaces=DNS.namespaces)
        for m in found.manifests:
            obj = copy.deepcopy(m.obj)
            obj["spec"].update({"nodeName": W1} if m.kind == "Pod" else {"clusterIP": DB_IP})
            self.objects[ref_of(obj)] = obj
        self.rewrites_own = rewrites_own

    def resolver_of(self, pod: str) -> lab.Resolver:
        return lab.effective_resolver(lab.PodDns.of(self.get("v1", "Pod", NS_, pod)), NS_, CLUSTER)

    def exec(self, namespace, pod, argv, timeout=10, container=None):
        self.calls.append(("exec", f"{namespace}/{pod}", tuple(argv)))
        assert argv == ["cat", "/etc/resolv.conf"], argv  # the only command the check runs itself
        resolver = self.resolver_of(pod)
        if pod == lab.CLIENT and self.rewrites_own:
            resolver = lab.Resolver(resolver.nameservers, (*resolver.searches, DATA), resolver.options)
        return 0, resolver.text() + "\n", ""


def _truth(cluster, sources):
    def answer(spec_):
        sources.append(spec_.source)
        found = resolve(spec_.target, cluster.resolver_of(spec_.pod))
        rc, text = (1, f"** server can't find {spec_.target}: NXDOMAIN") if found is None else \
            (0, f"Name:\t{spec_.target}\nAddress: {found}\n")
        outcome, detail = probe.classify(spec_, rc, text)
        return ProbeResult(spec_, outcome, output=text, detail=detail)
    return answer


@pytest.fixture(autouse=True)
def no_pause_between_probe_rounds(monkeypatch):
    monkeypatch.setattr(probe.time, "sleep", lambda seconds: None)


def _grade(directory, rewrites_own=False):
    cluster = DnsCluster(directory, rewrites_own)
    found = manifests.parse_submission([directory], allowed_kinds=DNS.allowed_kinds, namespaces=DNS.namespaces)
    sources: list[str] = []
    ctx = Ctx(spec=DNS, objects=found.manifests, cluster=cluster,
              runner_factory=lambda c: SimulatedRunner(_truth(cluster, sources)))
    return cluster, sources, ctx


@pytest.mark.parametrize("directory", [DNS.solution_dir, *DNS.alternative_dirs], ids=lambda d: d.name)
def test_correct_submissions_pass_with_lookups_from_the_graders_pod_only(directory):
    cluster, sources, ctx = _grade(directory)
    result = lab.dns_search_live(ctx)
    assert result.passed, result.message
    assert sources and set(sources) == {f"{NS_}/{lab.MIRROR_POD}"}
    mirror = cluster.get("v1", "Pod", NS_, lab.MIRROR_POD)
    assert lab.PodDns.of(mirror) == lab.PodDns.of(cluster.get("v1", "Pod", NS_, lab.CLIENT))
    assert mirror["spec"]["nodeSelector"] == {"kubernetes.io/hostname": W1}


@pytest.mark.parametrize("mistake", DNS.mistakes, ids=lambda m: m.id)
def test_every_known_mistake_fails_with_its_lab_yaml_message(mistake):
    # the fake's client rewrites its own file where the mistake's container does
    rewrites = "resolv.conf" in (DNS.mistake_dir(mistake) / "client.yaml").read_text().split("apiVersion")[1]
    cluster, sources, ctx = _grade(DNS.mistake_dir(mistake), rewrites_own=rewrites)
    with pytest.raises(CheckFailed) as info:
        lab.dns_search_live(ctx)
    assert mistake.message in info.value.message
    assert set(sources) <= {f"{NS_}/{lab.MIRROR_POD}"}


def test_the_starter_fails():
    _, _, ctx = _grade(DNS.starter_dir)
    with pytest.raises(CheckFailed, match="no search domain leads to namespace"):
        lab.dns_search_live(ctx)


def test_a_rewritten_resolv_conf_on_top_of_correct_settings_passes_with_a_note():
    _, _, ctx = _grade(DNS.solution_dir, rewrites_own=True)
    result = lab.dns_search_live(ctx)
    assert result.passed and any("changed inside the container" in str(e.data) for e in result.evidence)


def test_dns_policy_default_is_reckoned_from_the_nodes_resolver():
    cluster, _, ctx = _grade(DNS.mistake_dir(DNS.mistake("node-dns")))
    with pytest.raises(CheckFailed, match="asks 172.18.0.1 — not the cluster DNS"):
        lab.dns_search_live(ctx)
    assert cluster.get("v1", "Pod", NS_, lab.NODE_DNS_POD)["spec"]["dnsPolicy"] == "Default"
