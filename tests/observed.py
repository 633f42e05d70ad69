"""Reference answers of answers exercises (graders.questions), observed on a live cluster by another route than the
grader's: kubectl for the API, `docker exec <node> ip route get` for routes. The grader reads routes from
/proc/net/route in its host-network pods and computes the longest-prefix match itself, so a solution that passes
here is evidence that both readings agree, not that the grader agrees with itself.

Solution, alternative and mistake directories of an answers exercise hold templates (``${name}``); ``materialise``
copies one with every placeholder filled in.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from graders import comparison, engine, manifests, mesh, questions, spec

NAMESPACE = "k8slab-pod-network"
WHEREAMI = "k8slab-whereami"


def _run(*argv: str, timeout: float = 30) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


@functools.lru_cache(maxsize=None)
def lab01_values(context: str) -> dict[str, str]:
    """Every placeholder of lab 01 read-the-network's templates, for the cluster behind ``context``."""
    lab = spec.load_lab("01-pod-network")
    ex = lab.exercise("read-the-network")
    # grading the starter once creates the grader's pods the questions are about (they stay: teardown "empty")
    engine.grade(lab.id, ex.id, ex.starter_dir, context=context, teardown="empty")
    kubectl = ("kubectl", "--context", context)
    nodes = json.loads(_run(*kubectl, "get", "nodes", "-o", "json"))["items"]
    workers = sorted(n["metadata"]["name"] for n in nodes
                     if "node-role.kubernetes.io/control-plane" not in n["metadata"].get("labels", {}))
    first, second = workers
    address = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
               for n in nodes}
    cidr = {n["metadata"]["name"]: n["spec"].get("podCIDR", "") for n in nodes}
    pod = json.loads(_run(*kubectl, "-n", NAMESPACE, "get", "pod", WHEREAMI, "-o", "json"))
    route = _run("docker", "exec", first, "ip", "route", "get", pod["status"]["podIP"])
    via = re.search(r"\bvia (\S+)", route)
    device = re.search(r"\bdev (\S+)", route).group(1)
    next_hop = via.group(1) if via else questions.NO_NEXT_HOP
    mtu = _run(*kubectl, "-n", NAMESPACE, "exec", WHEREAMI, "--", "cat", "/sys/class/net/eth0/mtu").strip()
    first_range = ipaddress.ip_network(cidr[first])
    return {
        "worker_pod_range": cidr[first], "worker2_pod_range": cidr[second],
        "worker_pod_range_host": f"{first_range.network_address + 1}/{first_range.prefixlen}",
        "pod_network": str(ipaddress.ip_network(cidr[first]).supernet(new_prefix=16)),
        "route_device": device, "route_device_upper": device.upper(),
        "next_hop_ip": next_hop,
        "next_hop_node": next((n for n, ip in address.items() if ip == next_hop), next_hop),
        "mtu": mtu, "whereami_node": pod["spec"]["nodeName"],
        "whereami_node_upper": pod["spec"]["nodeName"].upper(),
        "first_worker": first, "first_worker_ip": address[first],
    }


# What each CNI's file in /etc/cni/net.d is called (the first match names the CNI; Canal before Flannel and Calico)
CNI_FILES = (("canal", "canal"), ("cilium", "cilium"), ("calico", "calico"), ("weave", "weave"),
             ("flannel", "flannel"), ("kuberouter", "kube-router"), ("kube-router", "kube-router"))


def _cni_of(node: str) -> str:
    files = _run("docker", "exec", node, "ls", "/etc/cni/net.d").split()
    # the offline Canal-like composition keeps Flannel's file; kube-router runs beside it as a firewall DaemonSet
    names = " ".join(files).lower()
    return next((k for part, k in CNI_FILES if part in names), "")


def _kube_router_firewall(context: str) -> bool:
    out = _run("kubectl", "--context", context, "get", "pods", "-A", "-l", "k8s-app=kube-router", "-o", "name")
    return bool(out.strip())


def _node_values(context: str) -> dict[str, str]:
    """The CNI, how a packet to web leaves the first worker, web's eth0 MTU and the node's, read with docker exec
    and kubectl (not through the grader's host-network pod and /sys parsing)."""
    kubectl = ("kubectl", "--context", context)
    cluster = context.removeprefix("kind-")
    first = f"{cluster}-worker"
    key = _cni_of(first)
    if key == "flannel" and _kube_router_firewall(context):
        key = "flannel+kube-router"
    web_ip = _run(*kubectl, "-n", LAB02_NS, "get", "pod", "web", "-o", "jsonpath={.status.podIP}").strip()
    route = _run("docker", "exec", first, "ip", "route", "get", web_ip)
    device = re.search(r"\bdev (\S+)", route).group(1)
    link = _run("docker", "exec", first, "ip", "-d", "link", "show", device)
    if device.startswith("cilium_"):
        links = _run("docker", "exec", first, "ip", "-o", "link")
        encapsulation = "vxlan" if "cilium_vxlan" in links else "geneve" if "cilium_geneve" in links else "routed"
    elif re.search(r"\bvxlan id\b", link):
        encapsulation = "vxlan"
    elif re.search(r"\bgeneve id\b", link):
        encapsulation = "geneve"
    elif re.search(r"\bipip\b", link):
        encapsulation = "ipip"
    else:
        encapsulation = "routed" if re.search(r"\bvia \S+", route) else "unknown"
    # web's path MTU to a pod on the other node: eth0's, or its route's when smaller (Cilium's route says 1450)
    frontend_ip = _run(*kubectl, "-n", LAB02_NS, "get", "pod", "frontend", "-o", "jsonpath={.status.podIP}").strip()
    eth0 = int(_run(*kubectl, "-n", LAB02_NS, "exec", "web", "--", "cat", "/sys/class/net/eth0/mtu").strip())
    route = _run(*kubectl, "-n", LAB02_NS, "exec", "web", "--", "ip", "route", "get", frontend_ip)
    via = re.search(r"\bmtu (\d+)", route)
    pod_mtu = str(min(eth0, int(via.group(1))) if via else eth0)
    node_mtu = re.search(r"\bmtu (\d+)", _run("docker", "exec", first, "ip", "link", "show", "eth0")).group(1)
    return {"cni": key, "encapsulation": encapsulation, "pod_mtu": pod_mtu, "node_mtu": node_mtu}


ENFORCING = {"kube-router": True, "calico": True, "cilium": True, "canal": True, "weave": True,
             "flannel+kube-router": True, "flannel": False}
LAB02_NS = "k8slab-cni"


def _lab02_fill(main: dict[str, str], second: dict[str, str]) -> dict[str, str]:
    """Every placeholder of lab 02 identify's templates from what each cluster showed."""
    enforces = ENFORCING[second["cni"]]
    return {
        "main_cni": main["cni"], "second_cni": second["cni"],
        "main_cni_upper": main["cni"].upper(), "second_cni_upper": second["cni"].upper(),
        "encapsulation": main["encapsulation"], "encapsulation_upper": main["encapsulation"].upper(),
        "encapsulation_alias": "host-gw" if main["encapsulation"] == "routed" else main["encapsulation"],
        "pod_mtu": second["pod_mtu"], "node_mtu": second["node_mtu"],
        "enforces": "yes" if enforces else "no", "enforces_bool": "true" if enforces else "false",
        "enforces_word": "Yes" if enforces else "No",
    }


def _lab02_clusters(exercise: str, context: str) -> tuple[str, str]:
    """(main, second) contexts of lab 02, after grading ``exercise``'s starter once: that creates the world pods on
    both clusters (they stay: teardown "empty"). Without a second cluster the placeholders cannot be filled."""
    lab = spec.load_lab("02-cni")
    second = comparison.find_for(lab.compare_with, context)
    if isinstance(second, comparison.Missing):
        raise RuntimeError(f"lab 02 {exercise} needs a second cluster: {second.message}")
    ex = lab.exercise(exercise)
    engine.grade(lab.id, ex.id, ex.starter_dir, context=context, teardown="empty")
    return context, second.context


@functools.lru_cache(maxsize=None)
def lab02_values(context: str) -> dict[str, str]:
    """Every placeholder of lab 02 identify's templates, for the cluster behind ``context`` and the second cluster
    the grader compares it with (graders.comparison)."""
    main, second = _lab02_clusters("identify", context)
    return _lab02_fill(_node_values(main), _node_values(second))


def _lab02_mtu_fill(main_mtu: int, second_mtu: int) -> dict[str, int]:
    """Every placeholder of lab 02 mtu-cost's templates from the pods' path MTUs: the largest don't-fragment ping
    payload is the MTU less 28 bytes of IP and ICMP headers (the grader finds it with pings instead)."""
    main, second = main_mtu - 28, second_mtu - 28
    return {"main_payload": main, "second_payload": second, "overhead": main - second,
            "main_mtu": main_mtu, "second_mtu": second_mtu, "overhead_without_inner_ethernet": main - second - 14}


@functools.lru_cache(maxsize=None)
def lab02_mtu_values(context: str) -> dict[str, int]:
    """lab 02 mtu-cost's placeholders, from the MTU pod web sends with on both clusters (kubectl exec: eth0's, or the
    route's), never from pings."""
    main, second = _lab02_clusters("mtu-cost", context)
    return _lab02_mtu_fill(int(_node_values(main)["pod_mtu"]), int(_node_values(second)["pod_mtu"]))


# Mistakes written for one second cluster: on another CNI the same answer is right (Cilium does enforce), so the
# case cannot fail there and is skipped, saying so. {(lab, exercise, mistake): the second cluster's CNI key}
SECOND_CNI_OF_MISTAKE = {("02-cni", "identify", "flannel-enforces"): "flannel",
                         ("02-cni", "identify", "canal-for-flannel"): "flannel"}


def mistake_applies_or_skip(lab_id: str, exercise: str, variant: str, graded: str) -> None:
    needs = SECOND_CNI_OF_MISTAKE.get((lab_id, exercise, variant))
    if needs is None:
        return
    second = comparison.find_for(spec.load_lab(lab_id).compare_with, graded)
    if isinstance(second, comparison.Missing):
        return
    key = _cni_of(f"{second.context.removeprefix('kind-')}-worker")
    if key == "flannel" and _kube_router_firewall(second.context):
        key = "flannel+kube-router"
    if key != needs:
        pytest.skip(f"mistake {variant} is written for a {needs} second cluster; {second.context} runs {key or '?'}")


VALUES = {("01-pod-network", "read-the-network"): lab01_values, ("02-cni", "identify"): lab02_values,
          ("02-cni", "mtu-cost"): lab02_mtu_values}


def materialise(ex: spec.ExerciseSpec, directory: Path, context: str, target: Path) -> Path:
    """``directory`` as a submission: unchanged for a manifests exercise, its templates filled for an answers one
    (the starter has no placeholders and is copied as it is)."""
    if ex.submission != "answers":
        return directory
    fill = VALUES.get((ex.lab, ex.id))  # predictions have no placeholders: what is right does not vary
    values = fill(context) if fill else {}
    if Path(directory).resolve() != Path(target).resolve():  # the notebook test fills a copy in place
        shutil.copytree(directory, target, dirs_exist_ok=True)
    for file in target.glob("*.yaml"):
        file.write_text(questions.render_answers(file.read_text(), values))
    return target


# What a cluster built from the course's plan typically shows: the offline tests fill the templates with these and
# grade them against the same network, given to the lab's pure judgement (tests/unit/test_lab01_read_network.py).
EXAMPLE_VALUES = {
    ("01-pod-network", "read-the-network"): {
        "worker_pod_range": "10.244.1.0/24", "worker2_pod_range": "10.244.2.0/24",
        "worker_pod_range_host": "10.244.1.1/24", "pod_network": "10.244.0.0/16",
        "route_device": "eth0", "route_device_upper": "ETH0", "next_hop_ip": "172.18.0.3",
        "next_hop_node": "k8slab-worker2", "mtu": "1500", "whereami_node": "k8slab-worker2",
        "whereami_node_upper": "K8SLAB-WORKER2", "first_worker": "k8slab-worker", "first_worker_ip": "172.18.0.2",
    },
    # the course cluster (kube-router, routed) compared with offline Flannel (VXLAN, pods' eth0 1450, no policy)
    ("02-cni", "identify"): _lab02_fill({"cni": "kube-router", "encapsulation": "routed", "pod_mtu": "1500",
                                         "node_mtu": "1500"},
                                        {"cni": "flannel", "encapsulation": "vxlan", "pod_mtu": "1450",
                                         "node_mtu": "1500"}),
    ("02-cni", "mtu-cost"): _lab02_mtu_fill(1500, 1450),
}


def materialise_example(ex: spec.ExerciseSpec, directory: Path, target: Path) -> Path:
    """Like ``materialise``, with EXAMPLE_VALUES instead of a live cluster's."""
    if ex.submission != "answers":
        return directory
    shutil.copytree(directory, target, dirs_exist_ok=True)
    for file in target.glob("*.yaml"):
        file.write_text(questions.render_answers(file.read_text(), EXAMPLE_VALUES.get((ex.lab, ex.id), {})))
    return target


def second_cluster_or_skip(lab_id: str, graded: str | None):
    """A lab that compares two clusters (lab.yaml ``compare_with``) cannot be proven with one: its live tests skip,
    saying which cluster to start, unless K8SLAB_REQUIRE_SECOND_CLUSTER=1 makes that a failure. Returns the second
    cluster, or None for a lab that compares nothing."""
    lab = spec.load_lab(lab_id)
    if not lab.compare_with:
        return None
    second = comparison.find_for(lab.compare_with, graded)
    if isinstance(second, comparison.Missing):
        reason = f"{lab_id} compares two clusters: {second.message}"
        if os.environ.get("K8SLAB_REQUIRE_SECOND_CLUSTER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return second


@functools.lru_cache(maxsize=None)
def _mesh_on(context: str, cluster) -> "mesh.Mesh | mesh.Undetermined | None":
    return mesh.detect(cluster)


def mesh_or_skip(lab_id: str, cluster, variant: str = "", directory: Path | None = None):
    """A lab whose exercises ``requires: mesh`` (lab 06) cannot be proven on a cluster without one — the offline
    cluster of the project's CI: its live tests skip with the engine's own words (tests/live/test_mesh_lab_live.py
    asserts that outcome there), unless K8SLAB_REQUIRE_MESH=1 makes that a failure. On a cluster with a mesh, a
    variant written for the other mesh (graders.mesh.written_for: an istio-... directory on Linkerd) is skipped.
    Returns the mesh, or None for a lab that needs none."""
    lab = spec.load_lab(lab_id)
    if not any("mesh" in ex.requires for ex in lab.exercises):
        return None
    found = _mesh_on(cluster.context, cluster)
    if not isinstance(found, mesh.Mesh):
        reason = f"{lab_id}: {mesh.NEEDS_MESH}" + (f" ({found.reason})" if isinstance(found, mesh.Undetermined) else "")
        if os.environ.get("K8SLAB_REQUIRE_MESH") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    if directory is not None and variant not in ("", "starter"):
        name = variant.removeprefix("alternative-")
        meant = mesh.written_for(name, manifests.load([directory]))
        if found.name not in meant:
            pytest.skip(f"{lab_id}: {variant} is written for {', '.join(sorted(meant))}; this cluster runs {found.title}")
    return found


def variant_for(ex: spec.ExerciseSpec, mesh_name: str | None) -> Path:
    """The correct submission of ``ex`` to use on a cluster running ``mesh_name``: the reference solution, or the
    first alternative written for that mesh (a lab without a mesh: the reference solution)."""
    if not mesh_name:
        return ex.solution_dir
    for name, directory in (("solution", ex.solution_dir), *((d.name, d) for d in ex.alternative_dirs)):
        if mesh_name in mesh.written_for(name, manifests.load([directory])):
            return directory
    raise RuntimeError(f"{ex.lab}/{ex.id} has no correct variant for {mesh_name}")
