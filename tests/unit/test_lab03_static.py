"""Lab 03-services without a cluster: everything the static step (and the pure parts of the live step) can prove.

* the spec is complete: every exercise has starter, solution and mistake files;
* every solution parses offline and passes the static step; every starter fails before any traffic;
* every mistake is caught with its own message fragment — the ones the API server rejects (nodePort range,
  nodePort without type, a URL as externalName) are *also* explained by the lab's own rules, so the explanation
  is proven here even though on a cluster the API's words come first;
* every static failure cites the offending object and field as ``Kind ns/name (file:line)``;
* the pure helpers the live step relies on: served ports, the spread judgement (refused -> "not listening",
  strangers, silent replicas), the outside client's container handling (always removed).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed, ClusterError
from graders.labs import _kit as kit
from graders.labs import lab03_services as lab
from graders.manifests import Manifest
from graders.model import Outcome
from graders.probe import ProbeResult, ProbeSpec
from graders.workloads import served_ports, workloads

LAB = spec.load_lab("03-services")
STATIC = {
    "clusterip": lab.static_clusterip,
    "headless": lab.static_headless,
    "nodeport": lab.static_nodeport,
    "loadbalancer": lab.static_loadbalancer,
    "externalname": lab.static_externalname,
    "readiness": lab.static_readiness,
}
# Judged from the symptom on the cluster (its starter is valid, it is what was deployed): the static step has
# nothing to say; tests/unit/test_lab03_break_fix.py and the live suite prove it. predict is an answers exercise
# (no manifests, no static step): tests/unit/test_lab03_predict.py.
JUDGED_LIVE = {"break-fix", "predict"}
# Rejected by the API server on a cluster (the engine shows its words, then the lab's explain_admission).
API_REJECTS = {("nodeport", "nodeport-out-of-range"), ("nodeport", "type-missing"),
               ("externalname", "url-not-hostname"), ("externalname", "type-missing"),
               ("externalname", "host-with-port")}
# Rejected offline by the schema (the parse step), explained by the same hook.
SCHEMA_REJECTS = {("clusterip", "matchlabels-selector")}
# Files that look right; only the live step sees the behaviour (tests/unit/test_lab03_live_sim.py).
LIVE_ONLY = {("clusterip", "session-affinity"), ("nodeport", "external-traffic-local"),
             ("loadbalancer", "load-balancer-class"), ("readiness", "probe-always-passes"),
             ("readiness", "publish-not-ready")}
# What the API server says for those (kubernetes validation / port allocator), for explain_admission.
API_MESSAGES = {
    ("nodeport", "nodeport-out-of-range"):
        'Service "api-nodeport" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in '
        'the valid range. The range of valid ports is 30000-32767',
    ("nodeport", "type-missing"):
        "Service \"api-nodeport\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is "
        "'ClusterIP'",
    ("externalname", "url-not-hostname"):
        'Service "external-db" is invalid: spec.externalName: Invalid value: "http://db.prod.example.com": a '
        "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
    ("externalname", "type-missing"): 'Service "external-db" is invalid: spec.ports: Required value',
    ("externalname", "host-with-port"):
        'Service "external-db" is invalid: spec.externalName: Invalid value: "db.prod.example.com:5432": a '
        "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
}


def _manifests(ex, directory):
    found = manifests.parse_submission([directory], allowed_kinds=ex.allowed_kinds, namespaces=ex.namespaces)
    return found.manifests


def _static(ex, directory) -> str:
    return STATIC[ex.id](_manifests(ex, directory), ex.default_namespace)


EXERCISES = [pytest.param(ex, id=ex.id) for ex in LAB.exercises if ex.id not in JUDGED_LIVE]
MISTAKES = [pytest.param(ex, m, id=f"{ex.id}/{m.id}") for ex in LAB.exercises for m in ex.mistakes
            if ex.id not in JUDGED_LIVE and (ex.id, m.id) not in SCHEMA_REJECTS | LIVE_ONLY | {("externalname", "type-missing")}]


def test_every_exercise_has_a_static_and_a_live_check():
    assert set(lab.EXERCISES) == {ex.id for ex in LAB.exercises}
    for ex in LAB.exercises:
        assert lab.EXERCISES[ex.id].live is not None
        # an answers exercise has no manifests, so nothing for a static step to read
        assert (lab.EXERCISES[ex.id].static is not None) == (ex.submission != "answers"), ex.id
    assert lab.LAB_ID == LAB.id == "03-services"


@pytest.mark.parametrize("ex", EXERCISES)
def test_files_exist_for_starter_solution_and_every_mistake(ex):
    assert len(ex.mistakes) >= 5, "every clause of the statement is guarded by a mistake"
    assert len(ex.alternative_dirs) >= 2, "right answers written differently from the reference"
    for directory in [ex.starter_dir, ex.solution_dir, *(ex.mistake_dir(m) for m in ex.mistakes),
                      *ex.alternative_dirs]:
        for name in ex.files:
            assert (directory / name).is_file(), f"missing {directory / name}"
    fragments = [m.message for m in ex.mistakes]
    assert len(set(fragments)) == len(fragments), "each mistake has its own message"


@pytest.mark.parametrize("ex", EXERCISES)
def test_solution_passes_static(ex):
    summary = _static(ex, ex.solution_dir)
    assert summary


@pytest.mark.parametrize("ex", EXERCISES)
def test_starter_fails_before_any_traffic(ex):
    with pytest.raises(CheckFailed):
        _static(ex, ex.starter_dir)


@pytest.mark.parametrize("ex,mistake", MISTAKES)
def test_mistake_fails_static_with_its_fragment(ex, mistake):
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.mistake_dir(mistake))
    assert mistake.message in caught.value.message, caught.value.message
    assert caught.value.hint, "every failure says what to do next"


@pytest.mark.parametrize("key", sorted(API_REJECTS))
def test_api_rejections_carry_the_fragment_and_get_explained(key):
    ex = LAB.exercise(key[0])
    fragment = ex.mistake(key[1]).message
    explanation = lab.explain_admission(API_MESSAGES[key])
    assert explanation
    assert fragment in API_MESSAGES[key] + explanation, "the engine shows the API's words, then the explanation"
    if key[1] == "nodeport-out-of-range":
        assert "30000-32767" in explanation and "every node" in explanation


def test_the_engine_puts_the_explanation_after_the_api_servers_words():
    from graders import engine

    ex = LAB.exercise("externalname")

    class Refusing:
        def reset_namespaces(self, *a, **kw):
            pass

        def dry_run(self, objs):
            raise ClusterError(f"dry-run of Service {ex.default_namespace}/external-db: "
                               + API_MESSAGES[("externalname", "type-missing")])

    found = manifests.parse_submission([ex.mistake_dir("type-missing")], allowed_kinds=ex.allowed_kinds,
                                       namespaces=ex.namespaces)
    with pytest.raises(CheckFailed) as caught:
        engine._admit(ex, found, Refusing(), "run", engine.Options(explain=lab.explain_admission))
    message = caught.value.message
    assert "rejected by the API server: " in message and "spec.ports: Required value — why: " in message
    assert "only type ExternalName" in message


def test_a_deployment_style_selector_is_named_at_the_parse_step():
    from graders import engine

    ex = LAB.exercise("clusterip")
    mistake = ex.mistake("matchlabels-selector")
    step, found = engine._parse(ex, [ex.mistake_dir(mistake)], lab.explain_admission)
    assert found is None and not step.passed
    assert "spec.selector.matchLabels" in step.message and mistake.message in step.message
    # the API server's own words for the same object (when the schema is skipped) get the same explanation
    assert mistake.message in lab.explain_admission(
        'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal object into Go struct '
        "field ServiceSpec.spec.selector of type string")


@pytest.mark.parametrize("key", sorted(LIVE_ONLY))
def test_live_only_mistakes_pass_static(key):
    ex = LAB.exercise(key[0])
    assert _static(ex, ex.mistake_dir(ex.mistake(key[1])))


@pytest.mark.parametrize("ex,directory", [pytest.param(ex, d, id=f"{ex.id}/{d.name}") for ex in LAB.exercises
                                          if ex.id not in JUDGED_LIVE for d in ex.alternative_dirs])
def test_alternatives_pass_static(ex, directory):
    assert _static(ex, directory)


def test_headless_starter_names_the_port_name_not_the_v2_port():
    """The starter's numeric targetPort must be answered with "use the name", never "listen on 8080/9090"."""
    ex = LAB.exercise("headless")
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.starter_dir)
    assert "asks for the port's name" in caught.value.message
    assert "not listening" not in caught.value.message and "9090" not in caught.value.hint


def test_headless_services_must_select_both_versions():
    ex = LAB.exercise("headless")
    ms = _manifests(ex, ex.solution_dir)
    headless = next(m for m in ms if m.name == "api-headless")
    headless.obj["spec"]["selector"] = {"app": "api", "version": "v2"}
    with pytest.raises(CheckFailed) as caught:
        lab.static_headless(ms, ex.default_namespace)
    assert "api-headless" in caught.value.message and "leaves out the pods of Deployment api" in caught.value.message


def test_selector_typo_shows_the_labels_that_exist():
    ex = LAB.exercise("clusterip")
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.mistake_dir("selector-typo"))
    assert "app=apii" in caught.value.message and "app=api (Deployment api)" in caught.value.message


@pytest.mark.parametrize("key,cited", [
    (("clusterip", "selector-typo"), "Service k8slab-services/api-service (solutions/03-services/mistakes/clusterip/"
                                     "selector-typo/service.yaml:"),
    (("clusterip", "container-other-port"), "the pods of Deployment k8slab-services/api (solutions/03-services/"
                                            "mistakes/clusterip/container-other-port/deployment.yaml:"),
    (("readiness", "liveness-instead"), "Deployment k8slab-services/api (solutions/03-services/mistakes/"
                                              "readiness/liveness-instead/deployment.yaml:"),
])
def test_static_failures_cite_file_and_line(key, cited):
    ex = LAB.exercise(key[0])
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.mistake_dir(ex.mistake(key[1])))
    assert cited in caught.value.message, caught.value.message


def test_swapped_ports_name_the_cause_not_the_lines_to_type():
    ex = LAB.exercise("clusterip")
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.mistake_dir("port-targetport-swapped"))
    assert "look swapped" in caught.value.message and "swap the two values" in caught.value.hint
    assert "port: 80" not in caught.value.hint and "targetPort: 8080" not in caught.value.hint


def test_headless_starter_explains_why_a_number_misses_the_v2_pod():
    ex = LAB.exercise("headless")
    with pytest.raises(CheckFailed) as caught:
        _static(ex, ex.starter_dir)
    assert "api-v2" in caught.value.message and "9090" in caught.value.message


# ------------------------------------------------------------------------------ helpers (pure)
def _container(args, image="registry.k8s.io/e2e-test-images/agnhost:2.56", command=None, env=None):
    c = {"name": "c", "image": image, "args": args}
    if command:
        c["command"] = command
    if env:
        c["env"] = env
    return c


@pytest.mark.parametrize("container,ports", [
    (_container(["netexec"]), {8080}),
    (_container(["netexec", "--http-port=9090"]), {9090}),
    (_container(["netexec", "--http-port", "7000"]), {7000}),
    (_container(["touch /tmp/ready && exec /agnhost netexec --http-port=8081"], command=["/bin/sh", "-c"]), {8081}),
    (_container(["pause"]), set()),
    (_container(["porter"], env=[{"name": "SERVE_PORT_80", "value": "x"}]), {80}),
    (_container(["serve-hostname"]), {9376}),
    (_container([], image="nginx:1.27"), None),
    (_container(["netexec", "--http-port=http"]), None),
])
def test_served_ports(container, ports):
    assert served_ports(container)[0] == ports


def test_unknown_images_are_never_failed_statically():
    svc = Manifest({"kind": "Service", "metadata": {"name": "s"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 1234}]}}, "s.yaml", 1)
    pod = Manifest({"kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                             "ports": [{"containerPort": 80}]}]}}, "p.yaml", 1)
    assert kit.port_findings(svc, workloads([pod])) == []
    assert kit.selector_finding(svc, workloads([pod]), "ns") is None


def test_an_empty_selector_selects_nothing():
    svc = Manifest({"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}, "s.yaml", 3)
    pod = Manifest({"kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {}}, "p.yaml", 1)
    finding = kit.selector_finding(svc, workloads([pod]), "ns")
    assert finding.message.startswith("Service s (s.yaml:3): has no selector")


def test_probe_window_defaults_and_values():
    assert lab.probe_window({}) == 30
    assert lab.probe_window({"periodSeconds": 1, "failureThreshold": 1}) == 1
    assert lab.probe_window({"periodSeconds": 2}) == 6


def test_explain_admission_is_silent_for_other_errors():
    assert lab.explain_admission("spec.selector: Invalid value") == ""


# ------------------------------------------------------------------------------ live judgement (no cluster)
def _pod(name, node="k8slab-worker"):
    return SimpleNamespace(metadata=SimpleNamespace(name=name), spec=SimpleNamespace(node_name=node))


def _result(target, outcome, output="", detail=""):
    spec_ = ProbeSpec("ns/k8slab-client", "http", target, 80, path="/hostname", label=f"{target}:80")
    return ProbeResult(spec_, outcome, output=output, detail=detail, command=f"kubectl exec ... curl {target}")


PODS = {"api-a": _pod("api-a"), "api-b": _pod("api-b"), "api-c": _pod("api-c", "k8slab-worker2")}


def test_judge_spread_reports_the_distribution():
    results = [_result(t, Outcome.ALLOWED, name) for t in ("10.96.0.7", "api-service")
               for name in ("api-a", "api-b", "api-c", "api-a")]
    text = kit.judge_spread(kit.Spread(results), PODS, what="api-service")
    assert "8/8 requests answered, spread over 3 replicas (api-a 4, api-b 2, api-c 2)" in text
    table = kit.spread_evidence(kit.Spread(results), PODS, "t").data
    assert table.columns == ("answered by", "node", "10.96.0.7:80", "api-service:80", "total")
    assert ("api-a", "k8slab-worker", "2", "2", "4") in table.rows


def test_judge_spread_refused_means_not_listening_on_the_target_port():
    results = [_result("api-service", Outcome.BLOCKED, detail="connection refused or unreachable")] * 3
    with pytest.raises(CheckFailed) as caught:
        kit.judge_spread(kit.Spread(results), PODS, what="api-service", target_port=8080)
    assert "not listening on port 8080" in caught.value.message
    assert any(e.kind == "command" for e in caught.value.evidence), "a failure prints the reproduce command"


def test_judge_spread_names_replicas_that_never_answered():
    results = [_result("api-service", Outcome.ALLOWED, "api-a")] * 10
    with pytest.raises(CheckFailed) as caught:
        kit.judge_spread(kit.Spread(results), PODS, what="api-service")
    assert "never reached api-b, api-c" in caught.value.message


def test_judge_spread_rejects_answers_from_pods_not_selected():
    results = [_result("api-service", Outcome.ALLOWED, "intruder")]
    with pytest.raises(CheckFailed, match="not one of the selected pods"):
        kit.judge_spread(kit.Spread(results), PODS, what="api-service", require_all=False)


# ------------------------------------------------------------------------------ outside client (fake docker)
class _FakeContainer:
    def __init__(self, rc=0, out=b"", hang=False):
        self.rc, self.out, self.hang, self.removed = rc, out, hang, False

    def wait(self, timeout):
        if self.hang:
            raise TimeoutError("read timed out")
        return {"StatusCode": self.rc}

    def logs(self, stdout=True, stderr=False):
        return self.out if stdout else b""

    def remove(self, force=False):
        self.removed = True


class _FakeDocker:
    def __init__(self, container):
        self.container = container
        self.runs = []
        self.containers = self

    def run(self, image, **kw):
        self.runs.append((image, kw))
        return self.container


def test_outside_container_is_removed_and_reports_a_timeout():
    from graders import outside

    slow = _FakeContainer(hang=True)
    rc, _, err = outside.run_script("sleep 99", network="k8slab", image="img", timeout=1, client=_FakeDocker(slow))
    assert rc == 124 and "timed out" in err and slow.removed
    done = _FakeContainer(out=b"@k8slab 0 0 api-a\n")
    fake = _FakeDocker(done)
    rc, out, _ = outside.run_script("true", network="k8slab", image="img", client=fake)
    assert rc == 0 and done.removed
    image, kw = fake.runs[0]
    assert kw["network"] == "k8slab" and kw["entrypoint"] == ["sh", "-c"] and kw["labels"][outside.CLIENT_LABEL]


def test_outside_reproduce_command_works_in_any_shell():
    from graders import outside

    spec_ = ProbeSpec("outside/k8slab", "http", "172.29.0.3", 30080, path="/hostname")
    line = outside.reproduce_command(spec_, "k8slab", "k8slab/agnhost:v1.34.4")
    assert line == ("docker run --rm --network k8slab --entrypoint curl k8slab/agnhost:v1.34.4 -sS -m 2 "
                    "http://172.29.0.3:30080/hostname")


def test_traffic_fields_name_only_what_differs_from_the_default():
    def svc(**spec):
        return SimpleNamespace(spec=SimpleNamespace(**spec))
    assert kit.traffic_fields(svc(type="NodePort", session_affinity="None", external_traffic_policy="Cluster")) == []
    notes = kit.traffic_fields(svc(type="ClusterIP", internal_traffic_policy="Local",
                                   external_traffic_policy="Local"))  # ignored for ClusterIP: no outside path
    assert len(notes) == 1 and notes[0].startswith("spec.internalTrafficPolicy: Local")


def test_run_spread_resends_while_a_ready_replica_has_not_answered(monkeypatch):
    """kube-proxy programs new endpoints a moment after the EndpointSlice lists them: a round that reached one
    replica only is sent again, and the last round is judged."""
    monkeypatch.setattr(kit.time, "sleep", lambda s: None)
    rounds = iter([["api-a"] * 3, ["api-a", "api-b", "api-c"]])

    class Runner:
        def run(self, specs):
            return [_result(s.target, Outcome.ALLOWED, output=who) for s, who in zip(specs, next(rounds))]

    specs = kit.http_specs("ns/k8slab-client", [("svc:80", "svc", 80)], 3)
    spread = kit.run_spread(Runner(), specs, reach=PODS)
    assert set(spread.answers()) == set(PODS)
