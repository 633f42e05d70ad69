"""Lab 03's predict exercise without a cluster.

* the pure judgement: the reference solution and every alternative pass against the facts a sound cluster shows;
  every mistake fails with its own fragment; the starter earns nothing; a question the cluster could not show is
  "not verifiable on this cluster" and earns nothing, even when the answer is the expected one;
* the facts follow the cluster, never the solution: a cluster that behaves otherwise makes another answer right;
* the classifiers of DNS answers and node-port requests, and the grader's own objects;
* ``predict_live`` end to end on a simulated cluster (EndpointSlices that follow readiness, CoreDNS answers built
  from them, a node port that answers on every node): the solution passes, the pod made unready is deleted
  afterwards, and an experiment that cannot run makes its questions not verifiable.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from graders import outside, questions, spec
from graders.cluster import Endpoint
from graders.errors import CheckFailed, SubmissionError
from graders.exercise import Ctx
from graders.labs import _kit as kit
from graders.labs import lab03_services as lab
from graders.model import Outcome
from graders.netpol.selectors import service_selects
from graders.probe import PROBE_NAME_LABEL, ProbeResult, ProbeSpec, SimulatedRunner, classify

EX = spec.load_lab("03-services").exercise("predict")
NAMESPACE = EX.default_namespace
SOUND = lab.PredictRun(ready_endpoints=2, headless_addresses=2, node_port_answered=True, alias=lab.CNAME)


def answers_of(directory):
    return questions.parse_answers([directory], lab.PREDICTIONS, "predictions.yaml")


def judge(directory, run: lab.PredictRun = SOUND):
    return questions.judge(answers_of(directory), lab.prediction_facts(run))


# ---------------------------------------------------------------------- the judgement (pure)
def test_the_spec_is_an_answers_exercise_with_its_own_fragment_per_mistake():
    assert EX.submission == "answers" and EX.files == ("predictions.yaml",)
    assert lab.EXERCISES["predict"].questions == lab.PREDICTIONS
    assert lab.EXERCISES["predict"].live is lab.predict_live
    fragments = [m.message for m in EX.mistakes]
    assert len(EX.mistakes) >= 4 and len(set(fragments)) == len(fragments)
    assert len(EX.alternative_dirs) >= 2


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_right_predictions_pass(directory):
    result = judge(directory)
    assert result.passed, result.message
    assert "all 4 answers match" in result.message


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_wrong_prediction_is_named(mistake):
    try:
        judge(EX.mistake_dir(mistake))
    except CheckFailed as failed:
        assert mistake.message in failed.message, failed.message
        assert failed.credit == pytest.approx(0.75), "one wrong answer of four"
        assert "predictions.yaml:" in failed.message, "the wrong answer is cited with its line"
        return
    except SubmissionError as rejected:  # not-a-number: the parse step names it
        assert mistake.message in rejected.message, rejected.message
        return
    pytest.fail(f"mistake {mistake.id} passes")


def test_the_starter_earns_nothing_and_says_what_is_missing():
    with pytest.raises(CheckFailed) as caught:
        judge(EX.starter_dir)
    assert caught.value.credit == 0.0
    assert caught.value.message.count("not answered yet") == 4


def test_the_starter_lists_every_question_with_its_choices():
    text = (EX.starter_dir / "predictions.yaml").read_text()
    for question in lab.PREDICTIONS:
        assert f"\n{question.id}:\n" in text
        for choice in question.choices:
            assert choice in text
    assert "${" not in text


def test_what_is_not_observable_earns_nothing_and_says_why():
    run = lab.PredictRun(ready_endpoints=None, headless_addresses=2, node_port_answered=None, alias=lab.CNAME,
                         why_not={"ready_endpoints": "k8slab-web-c was still ready 10 s after ...",
                                  "node_port_other_node": "the cluster has a single node: ..."})
    with pytest.raises(CheckFailed) as caught:
        judge(EX.solution_dir, run)
    message = caught.value.message
    assert message.count("not verifiable on this cluster") == 2
    assert "was still ready" in message and "single node" in message
    assert caught.value.credit == pytest.approx(0.5)


def test_a_missing_reason_still_says_not_verifiable():
    facts = lab.prediction_facts(lab.PredictRun())
    assert all(f.unobservable for f in facts.values())
    with pytest.raises(CheckFailed) as caught:
        questions.judge(answers_of(EX.solution_dir), facts)
    assert caught.value.credit == 0.0 and caught.value.message.count("not verifiable on this cluster") == 4


def test_the_facts_come_from_the_cluster_not_from_the_solution():
    """A cluster that publishes not-ready addresses and drops node ports where no pod runs: other answers win."""
    odd = lab.PredictRun(ready_endpoints=3, headless_addresses=3, node_port_answered=False, alias=lab.CNAME)
    facts = lab.prediction_facts(odd)
    assert facts["ready_endpoints"].accepted == (3,) and facts["headless_addresses"].accepted == (3,)
    assert facts["node_port_other_node"].accepted == (lab.NOT_ANSWERED,)
    with pytest.raises(CheckFailed) as caught:
        judge(EX.solution_dir, odd)
    message = caught.value.message
    assert "see the table" in message and "did not answer its node port" in message
    # the model's reasons are not given when the cluster did something else
    assert "ready: false" not in message and "externalTrafficPolicy" not in message


def test_an_alias_without_cname_is_judged_as_observed():
    facts = lab.prediction_facts(lab.PredictRun(alias=lab.OWN_IP, ready_endpoints=2, headless_addresses=2,
                                                node_port_answered=True))
    assert facts["external_name_answer"].accepted == (lab.OWN_IP,)


def test_other_wrong_numbers_are_explained_without_the_value():
    facts = lab.prediction_facts(SOUND)
    why = facts["ready_endpoints"].explain(7)
    assert "selects 3 pods" in why and "2" not in why


# ---------------------------------------------------------------------- classifiers (pure)
def _dns(target: str, rc: int, text: str, record: str = "", expect=()) -> ProbeResult:
    s = ProbeSpec(f"{NAMESPACE}/k8slab-client", "dns", target, record=record, expect=tuple(expect))
    outcome, detail = classify(s, rc, text)
    return ProbeResult(s, outcome, output=text, detail=detail)


def nslookup_text(name: str, addresses) -> str:
    lines = ["Server:\t\t10.96.0.10", "Address:\t10.96.0.10#53", ""]
    for a in addresses:
        lines += [f"Name:\t{name}", f"Address: {a}"]
    return "\n".join(lines) + "\n"


def test_address_count():
    name = f"k8slab-web-headless.{NAMESPACE}.svc.cluster.local"
    assert lab.address_count(_dns(name, 0, nslookup_text(name, ["10.244.1.5", "10.244.2.6"]))) == (2, "")
    # more addresses than expected are still counted (the cluster answered)
    assert lab.address_count(_dns(name, 0, nslookup_text(name, ["10.244.1.5"] * 1 + ["10.244.2.6", "10.244.2.7"]),
                                  expect=["10.244.1.5", "10.244.2.6"]))[0] == 3
    assert lab.address_count(_dns(name, 1, f"** server can't find {name}: NXDOMAIN")) == (0, "")
    count, why = lab.address_count(_dns(name, 1, ";; connection timed out; no servers could be reached"))
    assert count is None and "no answer" in why
    count, why = lab.address_count(_dns(name, 127, "sh: nslookup: not found"))
    assert count is None and "could not run" in why
    assert lab.address_count(None)[0] is None


def test_alias_answer():
    alias = f"k8slab-alias.{NAMESPACE}.svc.cluster.local"
    target = f"k8slab-web.{NAMESPACE}.svc.cluster.local"
    cname = _dns(alias, 0, f"{alias}. 5 IN CNAME {target}.\n", record="CNAME", expect=[target])
    none = _dns(alias, 0, "", record="CNAME", expect=[target])
    addresses = _dns(alias, 0, nslookup_text(alias, ["10.96.0.77"]))
    nxdomain = _dns(alias, 1, f"** server can't find {alias}: NXDOMAIN")
    assert lab.alias_answer(cname, addresses) == (lab.CNAME, "")
    assert lab.alias_answer(none, addresses) == (lab.OWN_IP, "")
    assert lab.alias_answer(none, nxdomain) == (lab.NXDOMAIN, "")
    silent = _dns(alias, 9, ";; connection timed out; no servers could be reached", record="CNAME")
    kind, why = lab.alias_answer(silent, addresses)
    assert kind is None and "no answer" in why


def test_node_port_answer():
    s = ProbeSpec("outside/kind", "http", "172.18.0.4", 31234, path="/hostname")
    ok, refused = ProbeResult(s, Outcome.ALLOWED, output="k8slab-web-a"), ProbeResult(s, Outcome.BLOCKED, detail="x")
    failed = ProbeResult(s, Outcome.FAILED, detail="docker is not reachable")
    assert lab.node_port_answer([refused, ok]) == (True, "")
    assert lab.node_port_answer([refused, refused]) == (False, "")
    answered, why = lab.node_port_answer([refused, failed])
    assert answered is None and "docker is not reachable" in why
    assert lab.node_port_answer([])[0] is None


# ---------------------------------------------------------------------- the grader's objects
def test_only_the_pod_made_unready_has_an_exec_readiness_probe():
    pods = {name: lab.predict_pod(NAMESPACE, name, "agnhost:x", "k8slab-worker") for name in lab.PREDICT_PODS}
    for name, pod in pods.items():
        assert pod["metadata"]["labels"][lab.PREDICT_LABEL] == "web"
        assert pod["metadata"]["name"].startswith("k8slab-"), "no learner pod may take a k8slab- name"
        probe_spec = pod["spec"]["containers"][0]["readinessProbe"]
        assert ("exec" in probe_spec) == (name == lab.UNREADY_POD)
    command = " ".join(pods[lab.UNREADY_POD]["spec"]["containers"][0]["command"])
    assert f"touch {lab.READY_FILE}" in command and "exec /agnhost netexec --http-port=8080" in command


def test_the_services_select_the_grader_pods_only():
    services = {s["metadata"]["name"]: s["spec"] for s in lab.predict_services(NAMESPACE)}
    assert services[lab.PREDICT_SERVICE]["selector"] == {lab.PREDICT_LABEL: "web"}
    assert services[lab.PREDICT_HEADLESS]["clusterIP"] == "None"
    solo = services[lab.PREDICT_NODEPORT]
    assert solo["type"] == "NodePort" and solo["externalTrafficPolicy"] == "Cluster"
    assert solo["selector"] == {PROBE_NAME_LABEL: lab.SOLO_POD} and "nodePort" not in solo["ports"][0]
    alias = services[lab.PREDICT_ALIAS]
    assert alias["type"] == "ExternalName"
    assert alias["externalName"] == f"{lab.PREDICT_SERVICE}.{NAMESPACE}.svc.cluster.local", "nothing leaves"
    for spec_ in services.values():  # every selector key is the grader's own: no learner label matches
        assert all(key.startswith("k8slab.dev/") for key in spec_.get("selector", {}))


# ---------------------------------------------------------------------- predict_live on a simulated cluster
NODES = [("k8slab-control-plane", "172.29.0.2"), ("k8slab-worker", "172.29.0.3"), ("k8slab-worker2", "172.29.0.4")]
NODE_PORT = 31234


class SimCluster:
    """Pods, Services and EndpointSlices that follow readiness; exec `rm /tmp/ready` makes a pod unready."""

    def __init__(self, nodes=NODES, *, rm_works=True, publish_not_ready=False):
        self.context = "kind-k8slab"
        self.nodes = list(nodes)
        self.pods: dict[str, NS] = {}
        self.services: dict[str, dict] = {}
        self.ready: dict[str, bool] = {}
        self.calls: list[tuple] = []
        self.rm_works = rm_works
        self.publish_not_ready = publish_not_ready

    def list_nodes(self):
        return [NS(metadata=NS(name=n, labels={}), spec=NS(taints=[]),
                   status=NS(images=[], conditions=[NS(type="Ready", status="True")])) for n, _ in self.nodes]

    def node_addresses(self):
        return sorted(self.nodes)

    def ensure_pods(self, pods, timeout=60):
        self.apply(pods)

    def apply(self, objs):
        for obj in objs:
            self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
            name = obj["metadata"]["name"]
            if obj["kind"] == "Service":
                self.services[name] = obj
                continue
            node = (obj["spec"].get("nodeSelector") or {}).get("kubernetes.io/hostname", "k8slab-worker")
            self.pods[name] = NS(metadata=NS(name=name, labels=dict(obj["metadata"]["labels"]),
                                             deletion_timestamp=None),
                                 spec=NS(node_name=node),
                                 status=NS(pod_ip=f"10.244.0.{10 + len(self.pods)}", conditions=[],
                                           container_statuses=[NS(state=NS(running=True))]))
            self.ready[name] = True
        return objs

    def wait_ready(self, namespaces, timeout=90, poll=0.5, progress=None):
        self.calls.append(("wait_ready",))

    def get_pod(self, ns, name):
        pod = self.pods.get(name)
        if pod is not None:
            pod.status.conditions = [NS(type="Ready", status="True" if self.ready[name] else "False")]
        return pod

    def diagnose_pod(self, pod):
        return None

    def get_service(self, ns, name):
        obj = self.services.get(name)
        if obj is None:
            return None
        sp = obj["spec"]
        ports = [NS(port=p["port"], node_port=NODE_PORT if sp.get("type") == "NodePort" else None)
                 for p in sp.get("ports") or []]
        return NS(spec=NS(type=sp.get("type", "ClusterIP"), ports=ports, cluster_ip=sp.get("clusterIP")))

    def endpoints(self, ns, service):
        selector = self.services[service]["spec"].get("selector") or {}
        return [Endpoint(pod.status.pod_ip, name, pod.spec.node_name, self.ready[name] or self.publish_not_ready,
                         (("http", 8080),))
                for name, pod in sorted(self.pods.items()) if service_selects(selector, pod.metadata.labels)]

    def exec(self, namespace, pod, argv, timeout=10, container=None):
        self.calls.append(("exec", pod, tuple(argv)))
        if argv[:2] == ["rm", "-f"]:
            if not self.rm_works:
                return 1, "", "rm: cannot remove"
            self.ready[pod] = False
        return 0, "", ""

    def delete(self, obj):
        self.calls.append(("delete", obj["kind"], obj["metadata"]["name"]))
        self.pods.pop(obj["metadata"]["name"], None)

    # what CoreDNS and kube-proxy answer
    def truth(self, s: ProbeSpec):
        if s.kind == "dns":
            name = s.target.split(".")[0]
            svc = self.services.get(name)
            if svc is not None and svc["spec"].get("type") == "ExternalName":
                target = svc["spec"]["externalName"]
                text = f"{s.target}. 5 IN CNAME {target}.\n" if s.record == "CNAME" else \
                    f"{s.target}\tcanonical name = {target}.\n" + nslookup_text(target, ["10.96.0.50"])
                return _result(s, 0, text)
            ready = [e.ip for e in self.endpoints(NAMESPACE, name) if e.ready]
            return _result(s, 0, nslookup_text(s.target, ready))
        if s.kind == "http":
            return ProbeResult(s, Outcome.ALLOWED, output=lab.SOLO_POD)
        raise AssertionError(s)


def _result(s: ProbeSpec, rc: int, text: str) -> ProbeResult:
    outcome, detail = classify(s, rc, text)
    return ProbeResult(s, outcome, output=text, detail=detail)


class NoDocker:
    def __init__(self, *a, **kw):
        raise outside.OutsideUnavailable("docker is not reachable (test)")


def live(monkeypatch, cluster: SimCluster, directory=EX.solution_dir):
    monkeypatch.setattr(outside, "OutsideRunner", NoDocker)
    monkeypatch.setattr(lab.time, "sleep", lambda s: None)
    monkeypatch.setattr(kit.time, "sleep", lambda s: None)
    monkeypatch.setattr(lab, "UNREADY_TIMEOUT", 0.05)
    monkeypatch.setattr(kit, "ENDPOINTS_SETTLE", 0.05)
    ctx = Ctx(spec=EX, objects=(), cluster=cluster, answers=answers_of(directory),
              runner_factory=lambda c: SimulatedRunner(cluster.truth, context=cluster.context))
    return lab.predict_live(ctx)


def test_the_solution_passes_live_and_the_unready_pod_is_removed(monkeypatch):
    cluster = SimCluster()
    result = live(monkeypatch, cluster)
    assert result.passed, result.message
    rows = dict(result.evidence[1].data.rows)
    assert any("2 ready endpoints (3 listed" in v for v in rows.values()), rows
    assert ("exec", lab.UNREADY_POD, ("rm", "-f", lab.READY_FILE)) in cluster.calls
    assert cluster.calls[-1] == ("delete", "Pod", lab.UNREADY_POD), "no unready grader pod is left behind"
    applied = {c[2] for c in cluster.calls if c[:2] == ("apply", "Service")}
    assert applied == {lab.PREDICT_SERVICE, lab.PREDICT_HEADLESS, lab.PREDICT_NODEPORT, lab.PREDICT_ALIAS}
    # k8slab-web-a alone on node A; the node port is asked on another node
    assert cluster.pods[lab.SOLO_POD].spec.node_name != cluster.pods["k8slab-web-b"].spec.node_name


def test_a_mistake_fails_live_with_its_fragment(monkeypatch):
    mistake = EX.mistake("nodeport-only-where-the-pod-runs")
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, SimCluster(), EX.mistake_dir(mistake))
    assert mistake.message in caught.value.message


def test_a_pod_that_cannot_be_made_unready_leaves_its_questions_not_verifiable(monkeypatch):
    cluster = SimCluster(rm_works=False)
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, cluster)
    message = caught.value.message
    assert message.count("not verifiable on this cluster: the grader could not make k8slab-web-c unready") == 2
    assert caught.value.credit == pytest.approx(0.5)
    assert cluster.calls[-1] == ("delete", "Pod", lab.UNREADY_POD)


def test_a_single_node_cluster_cannot_show_the_node_port_question(monkeypatch):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, SimCluster(nodes=NODES[:1]))
    assert "node_port_other_node" in caught.value.message
    assert "not verifiable on this cluster: the cluster has a single node" in caught.value.message


def test_a_cluster_that_publishes_not_ready_pods_makes_3_right(monkeypatch):
    cluster = SimCluster(publish_not_ready=True)
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, cluster, EX.solution_dir)
    assert "ready_endpoints" in caught.value.message and "headless_addresses" in caught.value.message
    assert caught.value.credit == pytest.approx(0.5)


def test_no_ready_node_is_not_verifiable(monkeypatch):
    with pytest.raises(CheckFailed) as caught:
        live(monkeypatch, SimCluster(nodes=[]))
    assert caught.value.message.startswith("not verifiable on this cluster")
