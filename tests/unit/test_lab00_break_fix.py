"""Lab 00's break-fix exercise without a cluster: the welcome page as deployed, the fix, and the wrong fixes.

* ``as_deployed`` tells the unchanged starter from an edited submission (comments do not count);
* ``break_fix_causes`` names each fault the files show (the starter's two at once: the Service's name and its
  selector) and one cause per wrong fix;
* the symptoms in words (``break_fix_symptoms``), and a failure that, as deployed, names no cause;
* the live check on a tiny simulated cluster: the starter fails with the symptom only, wrong fixes that reach
  the cluster name their cause, solution and alternatives pass;
* the API server's refusal of a dotted Service name gets explained.
"""
from __future__ import annotations

import shutil
from types import SimpleNamespace as NS

import pytest

from graders import manifests, spec
from graders.errors import CheckFailed
from graders.exercise import Ctx
from graders.labs import lab00_orientation as lab
from graders.labs._kit import Finding, target_of
from graders.model import Outcome
from graders.netpol.selectors import service_selects
from graders.probe import PROBE_LABEL, ProbeResult, ProbeSpec, SimulatedRunner
from graders.workloads import workloads

LAB = spec.load_lab("00-orientation")
EX = LAB.exercise("break-fix")
NS_NAME = EX.default_namespace
ADMISSION_MISTAKES = {"name-with-namespace"}
LIVE_MISTAKES = sorted({m.id for m in EX.mistakes} - ADMISSION_MISTAKES)
GIVEAWAYS = ("welcome-page", "selector", "label", "run=", "app=", "metadata.name", "rename")


def _objects(directory):
    return manifests.parse_submission([directory], allowed_kinds=EX.allowed_kinds, namespaces=EX.namespaces).manifests


def test_registered_live_only_with_enough_variants():
    assert lab.EXERCISES["break-fix"].live is not None
    assert len(EX.mistakes) >= 5 and len(EX.alternative_dirs) >= 2
    for name in EX.files:
        assert "TODO" not in (EX.starter_dir / name).read_text()


def test_as_deployed_is_the_starter_unchanged_comments_aside(tmp_path):
    assert lab.as_deployed(_objects(EX.starter_dir), lab.BREAK_FIX_DIGEST), "the pin must equal the starter files"
    assert not lab.as_deployed(_objects(EX.solution_dir), lab.BREAK_FIX_DIGEST)
    copy = tmp_path / "break-fix"
    shutil.copytree(EX.starter_dir, copy)
    (copy / "pod.yaml").write_text("# had a look\n" + (copy / "pod.yaml").read_text())
    assert lab.as_deployed(_objects(copy), lab.BREAK_FIX_DIGEST)


def test_an_edit_in_place_is_seen_although_the_starter_files_are_the_edited_ones():
    """The learner edits labs/00-orientation/break-fix/ itself: the grader compares with the pinned digest, not
    with the files on disk (which ARE the submission, so they would always look as deployed)."""
    for directory in (EX.solution_dir, *(EX.mistake_dir(m) for m in EX.mistakes)):
        assert not lab.as_deployed(_objects(directory), lab.BREAK_FIX_DIGEST), directory


def test_the_starters_two_faults_are_both_named_once_edited():
    causes = lab.break_fix_causes(_objects(EX.starter_dir), NS_NAME)
    assert len(causes) == 2
    assert "no Service named welcome" in causes[0].message and "welcome-page" in causes[0].message
    assert "selects no pod" in causes[1].message and "run=welcome" in causes[1].message


@pytest.mark.parametrize("mistake", LIVE_MISTAKES)
def test_each_wrong_fix_has_its_cause_in_the_files(mistake):
    causes = lab.break_fix_causes(_objects(EX.mistake_dir(mistake)), NS_NAME)
    assert len(causes) == 1 and EX.mistake(mistake).message in causes[0].message, causes


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_fixed_files_show_no_cause(directory):
    assert lab.break_fix_causes(_objects(directory), NS_NAME) == []


def test_a_dotted_service_name_is_explained():
    api = ('Service "welcome.k8slab-orientation" is invalid: metadata.name: Invalid value: '
           '"welcome.k8slab-orientation": a DNS-1035 label must consist of lower case alphanumeric characters or '
           "'-', start with an alphabetic character, and end with an alphanumeric character")
    assert EX.mistake("name-with-namespace").message in api
    assert "single DNS label" in lab.explain_admission(api)
    assert lab.explain_admission("spec.ports: Required value")  # the Service explanations of the kit still apply


def _result(outcome, output="", detail=""):
    return ProbeResult(ProbeSpec("ns/p", "http", "welcome", 80), outcome, output=output, detail=detail)


def test_symptoms_in_words():
    unresolved = [_result(Outcome.FAILED, detail="curl exit 6: the target name does not resolve")] * 6
    assert lab.break_fix_symptoms(unresolved, {"welcome"}) == [
        "the name welcome does not resolve from a pod in the namespace: 6 of 6 requests to http://welcome/ failed "
        "at the DNS lookup (could not resolve host)"]
    # an unknown short name can also time out: the lookup walks the search domains out to an upstream resolver
    slow = [_result(Outcome.BLOCKED, output="curl: (28) Resolving timed out after 2000 milliseconds",
                    detail="timed out: packets were dropped or nothing answered")] * 6
    assert lab.break_fix_symptoms(slow, {"welcome"}) == [
        "the name welcome does not resolve from a pod in the namespace: 6 of 6 requests to http://welcome/ failed "
        "at the DNS lookup (curl: (28) Resolving timed out after 2000 milliseconds)"]
    refused = [_result(Outcome.BLOCKED, detail="connection refused or unreachable")] * 6
    assert lab.break_fix_symptoms(refused, {"welcome"}) == [
        "6 of 6 requests to http://welcome/ failed (connection refused or unreachable), although pod welcome is "
        "Running and Ready"]
    assert lab.break_fix_symptoms([_result(Outcome.ALLOWED, "welcome")] * 6, {"welcome"}) == []
    stranger = lab.break_fix_symptoms([_result(Outcome.ALLOWED, "other")], {"welcome"})
    assert stranger == ["http://welcome/ was answered by other, which is not your pod"]
    assert lab.break_fix_symptoms([], set())[0].startswith("no pod of yours is Running and Ready")


def test_the_failure_as_deployed_names_no_cause():
    message, hint = lab.break_fix_failure(["s"], deployed=True, causes=[Finding("cause", "fix")], namespace=NS_NAME)
    assert "cause" not in message and "fix" not in hint.replace("fix the files", "")
    assert "Nothing in break-fix/ has changed yet" in message and "get services" in hint
    assert "`kubectl --context " in hint  # the course's context ($K8SLAB_CONTEXT) when none is given
    _, hint = lab.break_fix_failure(["s"], deployed=True, causes=[], namespace=NS_NAME, context="other")
    assert f"`kubectl --context other -n {NS_NAME} get services`" in hint and "`kubectl -n" not in hint
    assert lab.break_fix_failure(["s"], deployed=False, causes=[Finding("a", "b")], namespace=NS_NAME) == (
        "s. Cause: a", "b")


# ---------------------------------------------------------------------------- live, on a tiny simulated cluster
class World:
    """The submitted Pod(s) and Services after apply: DNS by Service name, endpoints by selector, and a request
    refused unless the selected pod listens on the resolved targetPort."""

    context = "kind-k8slab"

    def __init__(self, found):
        self.pods = {}
        self.serving = {}
        for wl in workloads(found):
            self.pods[wl.name] = NS(metadata=NS(name=wl.name, labels=dict(wl.labels), namespace=NS_NAME,
                                                deletion_timestamp=None),
                                    spec=NS(node_name="k8slab-worker", containers=[]),
                                    status=NS(pod_ip="10.244.1.5", phase="Running",
                                              conditions=[NS(type="Ready", status="True")],
                                              container_statuses=[NS(state=NS(running=True))]))
            self.serving[wl.name] = (wl.serving()[0], wl.named_ports())
        self.services = {m.name: m.obj.get("spec") or {} for m in found if m.kind == "Service"}

    def list_pods(self, ns=None, label_selector=None):
        return list(self.pods.values())

    def ensure_pods(self, pods, timeout=60):
        for obj in pods:
            name = obj["metadata"]["name"]
            self.pods[name] = NS(metadata=NS(name=name, labels={PROBE_LABEL: "true"}, namespace=NS_NAME,
                                             deletion_timestamp=None), spec=NS(node_name="k8slab-worker2"),
                                 status=NS(pod_ip="10.244.2.9", phase="Running",
                                           conditions=[NS(type="Ready", status="True")]))

    def list_nodes(self):
        return [NS(metadata=NS(name="k8slab-worker", labels={}), status=NS(images=[]), spec=NS(taints=None))]

    def truth(self, s):
        svc = self.services.get(s.target)
        if svc is None:
            return ProbeResult(s, Outcome.FAILED, detail="curl exit 6: the target name does not resolve")
        port = next((p for p in svc.get("ports") or [] if p.get("port") == s.port), None)
        for name, (listening, named) in self.serving.items():
            pod = self.pods[name]
            if port is None or not service_selects(svc.get("selector"), pod.metadata.labels):
                continue
            target = target_of(port)
            target = named.get(target) if isinstance(target, str) else target
            if listening is None or target in listening:
                return ProbeResult(s, Outcome.ALLOWED, output=name)
        return ProbeResult(s, Outcome.BLOCKED, detail="connection refused or unreachable")


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setattr(lab, "start_probe_pods", lambda cluster, ns, names, **kw: {n: "k8slab-worker2" for n in names})
    monkeypatch.setattr("graders.probe.time.sleep", lambda s: None)

    def run(directory):
        found = _objects(directory)
        world = World(found)
        ctx = Ctx(spec=EX, objects=found, cluster=world,
                  runner_factory=lambda cluster: SimulatedRunner(world.truth, context=world.context))
        return lab.EXERCISES["break-fix"].live(ctx)
    return run


def test_live_starter_shows_the_symptom_and_gives_nothing_away(live):
    with pytest.raises(CheckFailed) as caught:
        live(EX.starter_dir)
    text = caught.value.message + " " + caught.value.hint
    assert caught.value.message.startswith("The welcome page is down: the name welcome does not resolve")
    assert not [w for w in GIVEAWAYS if w in text], text


@pytest.mark.parametrize("mistake", LIVE_MISTAKES)
def test_live_wrong_fixes_name_their_cause(live, mistake):
    with pytest.raises(CheckFailed) as caught:
        live(EX.mistake_dir(mistake))
    assert EX.mistake(mistake).message in caught.value.message, caught.value.message


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_live_fixes_pass(live, directory):
    result = live(directory)
    assert result.passed and "6 of 6 requests" in result.message
