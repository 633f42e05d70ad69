"""environment/offline/lib.sh select_cni: every offline CNI has its own cluster, its own --internal docker network
and subnet (so two run side by side, issue 14), and an unknown CNI is refused, naming the offered ones."""
from __future__ import annotations

import ipaddress
import subprocess

from graders import paths

LIB = paths.repo_root() / "environment" / "offline" / "lib.sh"


def _select(cni: str) -> subprocess.CompletedProcess:
    script = (f'source "{LIB}"; select_cni "$1" || {{ echo "offered: $OFFLINE_CNIS"; exit 3; }}; '
              'echo "$CLUSTER|$K8SLAB_NETWORK|$K8SLAB_NETWORK_SUBNET|$K8SLAB_NETWORK_IP_RANGE|$CNI_BUILD"')
    return subprocess.run(["bash", "-c", script, "select", cni], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "K8SLAB_CACHE": "/tmp/k8slab-test-cache"})


def test_each_offline_cni_has_its_own_cluster_network_and_subnet():
    seen = {}
    for cni in ("kube-router", "flannel", "flannel+kube-router", "cilium"):
        proc = _select(cni)
        assert proc.returncode == 0, proc.stderr
        seen[cni] = proc.stdout.strip().split("|")
    assert seen["kube-router"][0] == "k8slab" and seen["kube-router"][4] == ""
    assert seen["flannel+kube-router"][0] == "k8slab-flannel-kube-router" and seen["flannel+kube-router"][4] == "flannel"
    assert seen["cilium"][0] == "k8slab-cilium" and seen["cilium"][4] == "cilium"
    assert len({s[0] for s in seen.values()}) == len({s[1] for s in seen.values()}) == 4
    subnets = [ipaddress.ip_network(s[2]) for s in seen.values()]
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])
    assert all(ipaddress.ip_network(s[3]).subnet_of(ipaddress.ip_network(s[2])) for s in seen.values())


def test_an_unknown_offline_cni_is_refused_naming_the_offered_ones():
    proc = _select("calico")
    assert proc.returncode == 3 and "flannel+kube-router" in proc.stdout
