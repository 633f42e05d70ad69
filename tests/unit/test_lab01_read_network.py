"""Lab 01 read-the-network without a cluster: routing tables read from /proc, the facts of three data planes, and
every template of the exercise (solution, alternatives, mistakes) filled with example values and judged against
the same example network. The live proof (values read by kubectl and `ip route get`) is tests/live."""
from __future__ import annotations

from pathlib import Path

import pytest
from observed import EXAMPLE_VALUES, materialise_example

from graders import engine, questions, spec
from graders.errors import CheckFailed, SubmissionError
from graders.labs import lab01_pod_network as lab

EX = spec.load_lab("01-pod-network").exercise("read-the-network")
W1, W2 = "k8slab-worker", "k8slab-worker2"
IPS = {"k8slab-control-plane": "172.18.0.4", W1: "172.18.0.2", W2: "172.18.0.3"}


def proc_route(*rows: tuple[str, str, str, str]) -> str:
    """/proc/net/route text for (device, destination, gateway, mask) rows."""
    def hexed(ip: str) -> str:
        return bytes(int(part) for part in ip.split("."))[::-1].hex().upper()

    head = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT"
    return "\n".join([head, *(f"{d}\t{hexed(dst)}\t{hexed(gw)}\t0003\t0\t0\t0\t{hexed(mask)}\t0\t0\t0"
                              for d, dst, gw, mask in rows)])


KUBE_ROUTER_W1 = proc_route(("eth0", "0.0.0.0", "172.18.0.1", "0.0.0.0"),
                            ("eth0", "172.18.0.0", "0.0.0.0", "255.255.0.0"),
                            ("kube-bridge", "10.244.1.0", "0.0.0.0", "255.255.255.0"),
                            ("eth0", "10.244.2.0", "172.18.0.3", "255.255.255.0"),
                            ("eth0", "10.244.0.0", "172.18.0.4", "255.255.255.0"))
KUBE_ROUTER_W2 = proc_route(("eth0", "0.0.0.0", "172.18.0.1", "0.0.0.0"),
                            ("kube-bridge", "10.244.2.0", "0.0.0.0", "255.255.255.0"),
                            ("eth0", "10.244.1.0", "172.18.0.2", "255.255.255.0"))


def test_proc_route_is_read_with_its_little_endian_fields():
    routes = lab.parse_proc_route(KUBE_ROUTER_W1)
    assert lab.Route(lab.ipaddress.IPv4Network("10.244.2.0/24"), "172.18.0.3", "eth0") in routes
    assert routes[1].gateway is None and str(routes[1].destination) == "172.18.0.0/16"


def test_route_to_takes_the_longest_prefix():
    routes = lab.parse_proc_route(KUBE_ROUTER_W1)
    assert lab.route_to(routes, "10.244.2.7").gateway == "172.18.0.3"
    assert lab.route_to(routes, "10.244.1.9").device == "kube-bridge"
    assert str(lab.route_to(routes, "8.8.8.8").destination) == "0.0.0.0/0"


@pytest.mark.parametrize("routes_elsewhere, pod_cidr, expected", [
    # kube-router / Flannel host-gw: a route via the node's address
    (KUBE_ROUTER_W1, "10.244.2.0/24", {"10.244.2.0/24"}),
    # Flannel VXLAN: "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink" — the gateway lies inside the range
    (proc_route(("flannel.1", "10.244.2.0", "10.244.2.0", "255.255.255.0")), "10.244.2.0/24", {"10.244.2.0/24"}),
    # Calico IP-in-IP: its own /26 blocks, whatever spec.podCIDR says
    (proc_route(("tunl0", "10.244.171.64", "172.18.0.3", "255.255.255.192")), "10.244.2.0/24", {"10.244.171.64/26"}),
    # no route says anything (eBPF routing): the node's spec.podCIDR
    (proc_route(("eth0", "0.0.0.0", "172.18.0.1", "0.0.0.0")), "10.244.2.0/24", {"10.244.2.0/24"}),
])
def test_pod_range_of_a_node_on_each_data_plane(routes_elsewhere, pod_cidr, expected):
    assert lab.pod_ranges_of("172.18.0.3", pod_cidr, lab.parse_proc_route(routes_elsewhere)) == expected


def example_facts(**change) -> dict:
    args = dict(workers=[W1, W2], node_ips=IPS, pod_cidrs={W1: "10.244.1.0/24", W2: "10.244.2.0/24"},
                routes={W1: lab.parse_proc_route(KUBE_ROUTER_W1), W2: lab.parse_proc_route(KUBE_ROUTER_W2)},
                whereami_ip="10.244.2.5", whereami_node=W2, mtu=1500)
    args.update(change)
    return lab.network_facts(**args)


def grade(directory: Path, tmp_path: Path, facts=None):
    filled = materialise_example(EX, directory, tmp_path / "filled")
    answers = questions.parse_answers([filled], lab.QUESTIONS, "answers.yaml")
    return questions.judge(answers, facts or example_facts())


@pytest.mark.parametrize("directory", [EX.solution_dir, *EX.alternative_dirs], ids=lambda d: d.name)
def test_solution_and_alternatives_match_the_example_network(directory, tmp_path):
    assert grade(directory, tmp_path).passed


@pytest.mark.parametrize("mistake", EX.mistakes, ids=lambda m: m.id)
def test_each_mistake_fails_with_its_message(mistake, tmp_path):
    with pytest.raises((CheckFailed, SubmissionError)) as info:
        grade(EX.mistake_dir(mistake), tmp_path)
    assert mistake.message in info.value.message
    # a first failure explains the cause without handing over the cluster's values
    if isinstance(info.value, CheckFailed):
        for secret in ("10.244.2.0/24", "172.18.0.3") if mistake.id != "swapped-ranges" else ():
            assert secret not in info.value.message.split("—", 1)[1], mistake.id


def test_the_starter_is_read_but_earns_nothing(tmp_path):
    answers = questions.parse_answers([EX.starter_dir], lab.QUESTIONS, "answers.yaml")
    assert all(a.value is None for a in answers.values())
    with pytest.raises(CheckFailed) as info:
        questions.judge(answers, example_facts())
    assert info.value.credit == 0 and "not answered yet" in info.value.message


def test_half_right_earns_half(tmp_path):
    filled = materialise_example(EX, EX.solution_dir, tmp_path)
    text = (filled / "answers.yaml").read_text()
    for key in ("pod_mtu: 1500", "whereami_node: k8slab-worker2", "route_device: eth0"):
        text = text.replace(key, key.split(":")[0] + ":")
    (filled / "answers.yaml").write_text(text)
    with pytest.raises(CheckFailed) as info:
        grade(filled, tmp_path / "again")
    assert info.value.credit == pytest.approx(0.5)


def test_a_question_the_cluster_cannot_show_earns_nothing_and_says_why(tmp_path):
    with pytest.raises(CheckFailed) as info:
        grade(EX.solution_dir, tmp_path, example_facts(mtu=None))
    assert "not verifiable on this cluster" in info.value.message and info.value.credit == pytest.approx(5 / 6)


def test_one_worker_makes_nothing_verifiable():
    facts = lab.network_facts([W1], IPS, {}, {}, "", "", None)
    assert all(f.unobservable.startswith("this lab needs two workers") for f in facts.values())


def test_a_route_without_next_hop_is_answered_none(tmp_path):
    tunnel = proc_route(("tunl0", "10.244.2.0", "0.0.0.0", "255.255.255.0"))
    facts = example_facts(routes={W1: lab.parse_proc_route(tunnel), W2: []})
    assert facts["route_next_hop"].accepted == (questions.NO_NEXT_HOP,)
    assert facts["route_device"].accepted == ("tunl0",)


@pytest.mark.parametrize("kind, raw, problem", [
    ("cidr", "10.244.1.7", "is one address"),
    ("cidr", "10.244.1.7/24", "host bits set"),
    ("cidr", "ten", "not an address range"),
    ("number", "15oo", "not a whole number"),
    ("ip-or-node", "a b", "neither an IP address nor a node name"),
    ("number", [1500], "single value"),
    ("number", True, "read this answer as the boolean true"),
])
def test_badly_written_answers_are_named(kind, raw, problem):
    with pytest.raises(ValueError, match=problem):
        questions.normalise(questions.Question("q", "?", kind), raw)


@pytest.mark.parametrize("choices, raw, read", [
    (("yes", "no"), True, "yes"), (("yes", "no"), False, "no"), (("true", "false"), False, "false"),
    (("on", "off"), True, "on"),
])
def test_an_unquoted_yes_or_no_is_the_choice_it_spells(choices, raw, read):
    assert questions.normalise(questions.Question("q", "?", "choice", choices), raw) == read


def test_an_unquoted_boolean_that_is_no_choice_says_how_yaml_read_it():
    with pytest.raises(ValueError, match=r"boolean false .* \(pod-ip \| node-ip\)"):
        questions.normalise(questions.Question("q", "?", "choice", ("pod-ip", "node-ip")), False)


def test_unknown_and_missing_questions_are_reported_with_lines(tmp_path):
    (tmp_path / "answers.yaml").write_text("worker_pod_range: 10.244.1.0/24\npod_mtuu: 1500\n")
    with pytest.raises(SubmissionError) as info:
        questions.parse_answers([tmp_path], lab.QUESTIONS, "answers.yaml")
    text = info.value.message
    assert "answers.yaml:2" in text and "'pod_mtuu' is not a question" in text and "questions missing" in text


def test_the_engine_reads_answers_offline_and_says_how_many(tmp_path):
    filled = materialise_example(EX, EX.solution_dir, tmp_path)
    step, found = engine._parse_answers(EX, [filled], lab.EXERCISES["read-the-network"])
    assert step.passed and step.message == "6 of 6 questions answered" and len(found) == 6
    (tmp_path / "answers.yaml").write_text("[not, a, mapping]")
    step, found = engine._parse_answers(EX, [tmp_path], lab.EXERCISES["read-the-network"])
    assert not step.passed and found is None and "mapping" in step.message


def test_example_values_cover_every_placeholder():
    import re
    used = {m for d in (EX.solution_dir, *EX.alternative_dirs, *(EX.mistake_dir(m) for m in EX.mistakes))
            for m in re.findall(r"\$\{([a-z0-9_]+)\}", (d / "answers.yaml").read_text())}
    assert used <= set(EXAMPLE_VALUES[(EX.lab, EX.id)])


# ---------------------------------------------------------------------- predict
PREDICT = spec.load_lab("01-pod-network").exercise("predict")
NODE_IPS = list(IPS.values())


def prediction_facts(same="10.244.1.2", cross="10.244.1.2", agent="172.18.0.2"):
    return lab.prediction_facts({"same_node_source": (same, "10.244.1.2"),
                                 "cross_node_source": (cross, "10.244.1.2")}, NODE_IPS, agent, "172.18.0.2")


def judge_predictions(directory, facts=None):
    answers = questions.parse_answers([directory], lab.PREDICTIONS, "predictions.yaml")
    return questions.judge(answers, facts or prediction_facts())


@pytest.mark.parametrize("directory", [PREDICT.solution_dir, *PREDICT.alternative_dirs], ids=lambda d: d.name)
def test_right_predictions_pass(directory):
    assert judge_predictions(directory).passed


@pytest.mark.parametrize("mistake", PREDICT.mistakes, ids=lambda m: m.id)
def test_each_wrong_prediction_is_named(mistake):
    with pytest.raises((CheckFailed, SubmissionError)) as info:
        judge_predictions(PREDICT.mistake_dir(mistake))
    assert mistake.message in info.value.message


def test_a_cluster_that_nats_makes_node_ip_the_right_prediction():
    facts = prediction_facts(cross="172.18.0.2")
    assert facts["cross_node_source"].accepted == (lab.NODE_IP,)
    assert lab.source_seen("10.9.9.9", "10.244.1.2", NODE_IPS) == lab.OTHER


def test_a_probe_that_did_not_connect_is_not_verifiable():
    facts = prediction_facts(same="")
    assert "did not connect" in facts["same_node_source"].unobservable


def test_the_predictions_starter_earns_nothing():
    with pytest.raises(CheckFailed) as info:
        judge_predictions(PREDICT.starter_dir)
    assert info.value.credit == 0
