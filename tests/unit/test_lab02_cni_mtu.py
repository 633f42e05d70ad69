"""Lab 02 mtu-cost without a cluster: the edge search against simulated paths (the pod's own MTU, a path smaller
than the pod's MTU, pings that never answer, a ping that fragments anyway), the script and its output, and the
facts judged against every template (solution, alternatives, mistakes) filled with example values."""
from __future__ import annotations

from pathlib import Path

import pytest
from observed import EXAMPLE_VALUES, materialise_example

from graders import comparison, dataplane, questions, spec
from graders.errors import CheckFailed
from graders.labs import lab02_cni_mtu as mtu

LAB = spec.load_lab("02-cni")
EX = LAB.exercise("mtu-cost")


def path_of(pod_mtu: int, path_mtu: int | None = None, *, answers: bool = True, fragments: bool = False):
    """A ping through a pod of MTU ``pod_mtu`` over a path of ``path_mtu``: a payload gets an answer when its packet
    (payload + 28) fits both. Records every batch it was asked."""
    limit = min(pod_mtu, path_mtu or pod_mtu)
    asked: list[list[int]] = []

    def ping(sizes: list[int]) -> dict[int, bool]:
        asked.append(list(sizes))
        return {s: answers and (fragments or s + mtu.IP_ICMP_HEADERS <= limit) for s in sizes}

    return ping, asked


@pytest.mark.parametrize("pod_mtu", [1500, 1450, 9000, 1280])
def test_the_edge_at_the_pod_mtu_takes_one_batch(pod_mtu):
    ping, asked = path_of(pod_mtu)
    edge = mtu.find_edge(ping, pod_mtu)
    assert edge.largest == pod_mtu - 28 and not edge.problem
    assert asked == [[56, pod_mtu - 28, pod_mtu - 27]]


@pytest.mark.parametrize("path_mtu", [1450, 1400, 1281, 100])
def test_a_path_smaller_than_the_pod_is_searched_within_the_bound(path_mtu):
    """A pod left at 1500 over a VXLAN path of 1450 (a misconfigured overlay): the edge is the path's."""
    ping, asked = path_of(1500, path_mtu)
    edge = mtu.find_edge(ping, 1500)
    assert edge.largest == path_mtu - 28
    assert len(asked) <= 1 + mtu.MAX_SEARCH_PINGS
    assert edge.tried[edge.largest] and not edge.tried.get(edge.largest + 1, False)


def test_no_answer_at_all_is_not_measured_never_zero():
    ping, _ = path_of(1500, answers=False)
    edge = mtu.find_edge(ping, 1500)
    assert edge.largest is None and "56-byte ping" in edge.problem and "no answer" in edge.problem


def test_a_ping_that_fragments_anyway_is_refused():
    ping, _ = path_of(1500, fragments=True)
    edge = mtu.find_edge(ping, 1500)
    assert edge.largest is None and "did not forbid fragmenting" in edge.problem


def test_the_script_quotes_its_target_and_its_output_parses():
    script = mtu.ping_script("10.244.2.5; rm -rf /", [56, 1472])
    assert "'10.244.2.5; rm -rf /'" in script and "ping -M do" in script and "for s in 56 1472;" in script
    assert mtu.parse_pings("56 ok\n1472 ok\n1473 no\nnoise\n") == {56: True, 1472: True, 1473: False}


def test_the_pinger_runs_on_the_given_node_with_iputils():
    pod = mtu.pinger_pod("k8slab-cni", "k8slab/netprobe:bookworm", "k8slab-worker")
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "k8slab-worker"}
    assert pod["spec"]["containers"][0]["image"] == "k8slab/netprobe:bookworm"
    assert pod["spec"]["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False}


# ---------------------------------------------------------------------- facts, on the course's two clusters
ROUTED = mtu.Edge(1472, {56: True, 1472: True, 1473: False}, 1500)
VXLAN = mtu.Edge(1422, {56: True, 1422: True, 1423: False}, 1450)
CILIUM = mtu.Edge(1422, {56: True, 1422: True, 1423: False}, 1500, 1450)   # eth0 1500, the route 1450


def judge(directory: Path, tmp_path: Path, main=ROUTED, second=VXLAN):
    filled = materialise_example(EX, directory, tmp_path / "filled")
    answers = questions.parse_answers([filled], mtu.QUESTIONS, mtu.ANSWERS_FILE)
    return questions.judge(answers, mtu.mtu_facts(main, second))


def test_the_route_mtu_is_read_from_ip_route_get():
    shown = "10.244.2.76 via 10.244.1.164 dev eth0 src 10.244.1.239 uid 0 \n    cache mtu 1450 \n"
    assert dataplane.route_mtu(shown) == 1450
    assert dataplane.route_mtu("10.244.2.5 dev eth0 src 10.244.1.4 uid 0 \n    cache \n") is None


def test_a_route_smaller_than_eth0_is_where_the_search_starts():
    """Cilium keeps eth0 at 1500 and sets mtu 1450 on the pod's route: one batch, at the route's edge."""
    ping, asked = path_of(1450)
    edge = mtu.find_edge(ping, 1500, 1450)
    assert edge.largest == 1422 and edge.path_mtu == 1450 and asked == [[56, 1422, 1423]]


def test_on_cilium_eth0s_edge_and_both_mtus_are_explained(tmp_path):
    facts = mtu.mtu_facts(ROUTED, CILIUM)
    because = facts["second_payload"].because
    assert "puts its tunnel's cost on the route" in because[1472]   # eth0 - 28: what a learner who skips the route gets
    assert "eth0's MTU" in because[1500] and "the route's MTU" in because[1450]
    assert facts["second_payload"].accepted == (1422,)


def test_the_solution_and_every_alternative_pass(tmp_path):
    assert judge(EX.solution_dir, tmp_path).passed
    assert len(EX.alternative_dirs) >= 2
    for i, alternative in enumerate(EX.alternative_dirs):
        assert judge(alternative, tmp_path / str(i)).passed, alternative.name


def test_the_starter_fails_as_not_answered(tmp_path):
    with pytest.raises(CheckFailed) as failed:
        judge(EX.starter_dir, tmp_path)
    assert failed.value.message.count("not answered yet") == 3


@pytest.mark.parametrize("mistake", [m.id for m in EX.mistakes])
def test_each_mistake_fails_naming_it(mistake, tmp_path):
    expected = next(m.message for m in EX.mistakes if m.id == mistake)
    with pytest.raises(CheckFailed) as failed:
        judge(EX.mistake_dir(mistake), tmp_path)
    assert expected in failed.value.message
    assert "1472" not in failed.value.message and "1422" not in failed.value.message  # the values stay hidden


def test_every_placeholder_has_an_example_value():
    values = EXAMPLE_VALUES[("02-cni", "mtu-cost")]
    assert values["overhead"] == mtu.VXLAN_OVERHEAD and values["main_payload"] == 1472


def test_a_wrong_number_says_which_side_of_the_edge_it_is(tmp_path):
    facts = mtu.mtu_facts(ROUTED, VXLAN)
    assert "does not get through" in facts["main_payload"].explain(1480)
    assert "one byte more" in facts["second_payload"].explain(1400)


def test_without_a_second_cluster_its_answers_are_not_verifiable(tmp_path):
    missing = comparison.Missing(("kind-k8slab-flannel",))
    facts = mtu.mtu_facts(ROUTED, missing)
    assert facts["main_payload"].accepted == (1472,)
    assert "no second cluster" in facts["second_payload"].unobservable
    assert "no second cluster" in facts["overhead"].unobservable


def test_an_unmeasured_cluster_is_not_verifiable_with_the_reason():
    unmeasured = mtu.Edge(None, {}, problem="this lab needs two workers")
    facts = mtu.mtu_facts(ROUTED, unmeasured)
    assert facts["second_payload"].unobservable == "this lab needs two workers"
    assert facts["overhead"].unobservable


def test_the_sizes_tried_are_shown_only_once_every_answer_is_right():
    """The grader's pings sit on both sides of the edge: listing them before the answers are right gives them away."""
    hidden = mtu.edge_rows("kind-k8slab", ROUTED, sizes=False)
    assert hidden == [("kind-k8slab", "3 sizes tried", "edge found")]
    assert not any("1472" in cell for row in hidden for cell in row)
    shown = mtu.edge_rows("kind-k8slab", ROUTED, sizes=True)
    assert ("kind-k8slab", "1472", "got through") in shown and ("kind-k8slab", "1473", "did not get through") in shown
    assert mtu.edge_rows("kind-x", mtu.Edge(None, {}, problem="no pods"), sizes=True) == [("kind-x", "-", "no pods")]


def test_a_number_written_with_leading_zeros_is_read_as_written_not_as_yaml_octal(tmp_path):
    """YAML 1.1 reads an unquoted 0050 as octal (40): a learner who pads 50 must not be graded on 40."""
    (tmp_path / mtu.ANSWERS_FILE).write_text("overhead: 0050\nmain_payload: 1472\nsecond_payload: 01422\n")
    answers = questions.parse_answers([tmp_path], mtu.QUESTIONS, mtu.ANSWERS_FILE)
    assert (answers["overhead"].value, answers["second_payload"].value) == (50, 1422)
    assert questions.judge(answers, mtu.mtu_facts(ROUTED, VXLAN)).passed
    (tmp_path / mtu.ANSWERS_FILE).write_text("overhead: 0o62\nmain_payload: '0050'\nsecond_payload: 1422\n")
    with pytest.raises(Exception, match="not a whole number"):   # a YAML-1.2 octal literal is still no answer
        questions.parse_answers([tmp_path], mtu.QUESTIONS, mtu.ANSWERS_FILE)
