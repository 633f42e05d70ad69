"""graders.clusterplan: the online bring-up as data — every command and generated YAML checked here,
since the online path cannot run on the project's machines."""
from __future__ import annotations

import re

import pytest
import yaml

from graders import clusterplan as cp
from graders import versions

PINS = versions.pinned()


def _flat(steps):
    return [" ".join(s.argv) for s in steps]


def test_default_online_cni_is_the_offline_data_plane():
    """Node podCIDR addressing and REJECTed policy denials: what the offline CI proves is what students run."""
    assert cp.DEFAULT_CNI == "kube-router"
    assert cp.plan()[1].argv[-1].endswith("daemonset/kubeadm-kuberouter.yaml")


def test_default_plan_order_and_pins():
    steps = cp.plan()
    lines = _flat(steps)
    assert lines[0] == ("kind create cluster --name k8slab --config environment/kind/cluster.yaml --image "
                        + PINS["KIND_NODE_IMAGE"])
    assert "@sha256:" in PINS["KIND_NODE_IMAGE"]  # the node image is pinned by digest
    cni = f"cloudnativelabs/kube-router/{PINS['KUBE_ROUTER_VERSION']}/daemonset/kubeadm-kuberouter.yaml"
    order = [cni, "set image daemonset/kube-router", "wait --for=condition=Ready nodes --all", "deployment/coredns", "metallb-native.yaml",
             "IPAddressPool" , "standard-install.yaml", "traefik", "cert-manager.yaml"]
    text = "\n".join(f"{line} {s.stdin or ''}" for line, s in zip(lines, steps))
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), "steps out of order"
    for line in lines[1:]:
        if line.startswith("kubectl"):
            assert line.startswith("kubectl --context kind-k8slab ")


def test_every_url_is_pinned_https():
    for cni in cp.CNIS:
        for step in cp.plan(cni, addons=cp.ADDONS + ("ingress-nginx",)):
            for arg in step.argv:
                if arg.startswith("http"):
                    assert arg.startswith("https://")
                    assert "latest" not in arg and "master" not in arg and "/main/" not in arg, arg
                    assert re.search(r"/v?\d+\.\d+\.\d+/|controller-v\d", arg) or arg.startswith("https://helm.") \
                        or arg.startswith("https://traefik.github.io"), arg


@pytest.mark.parametrize("cni, marker, wait", [
    ("calico", "calico.yaml", "daemonset/calico-node"),
    ("canal", "canal.yaml", "daemonset/canal"),
    ("flannel", "kube-flannel.yml", "daemonset/kube-flannel-ds"),
    ("weave", "weave-daemonset-k8s-1.11.yaml", "daemonset/weave-net"),
    ("kube-router", "kubeadm-kuberouter.yaml", "daemonset/kube-router"),
    ("cilium", "cilium", "daemonset/cilium"),
])
def test_each_cni_installs_and_waits(cni, marker, wait):
    lines = _flat(cp.cni_steps(cni))
    assert any(marker in line for line in lines)
    assert any(wait in line and "rollout status" in line for line in lines)


def test_cilium_uses_pinned_helm_chart():
    (install, _) = cp.cni_steps("cilium")
    argv = list(install.argv)
    assert argv[:4] == ["helm", "upgrade", "--install", "cilium"]
    assert argv[argv.index("--version") + 1] == PINS["CILIUM_VERSION"]
    assert argv[argv.index("--kube-context") + 1] == "kind-k8slab-cilium"  # a cluster of its own


def test_kube_router_image_is_pinned():
    lines = _flat(cp.cni_steps("kube-router"))
    assert any(f"kube-router={PINS['KUBE_ROUTER_IMAGE_ONLINE']}" in line for line in lines)


def test_unknown_cni_is_rejected():
    with pytest.raises(ValueError, match="choose one of"):
        cp.cni_steps("bogus")


@pytest.mark.parametrize("subnet, pool", [
    ("172.18.0.0/16", "172.18.255.200-172.18.255.250"),
    ("172.29.0.0/24", "172.29.0.200-172.29.0.250"),
    ("10.89.0.0/20", "10.89.15.200-10.89.15.250"),
])
def test_metallb_pool_inside_subnet(subnet, pool):
    assert cp.metallb_pool_range(subnet) == pool


def test_metallb_pool_rejects_small_or_v6():
    with pytest.raises(ValueError):
        cp.metallb_pool_range("172.18.0.0/26")
    with pytest.raises(ValueError):
        cp.metallb_pool_range("fc00:f853:ccd:e793::/64")


def test_metallb_pool_yaml():
    docs = list(yaml.safe_load_all(cp.metallb_pool_yaml("172.18.0.0/16")))
    assert [d["kind"] for d in docs] == ["IPAddressPool", "L2Advertisement"]
    assert docs[0]["spec"]["addresses"] == ["172.18.255.200-172.18.255.250"]
    assert docs[1]["spec"]["ipAddressPools"] == [docs[0]["metadata"]["name"]]
    assert all(d["metadata"]["namespace"] == "metallb-system" for d in docs)
    step = next(s for s in cp.plan(subnet="172.18.0.0/16") if s.stdin)
    assert step.argv[-3:] == ("apply", "-f", "-") and "<<'EOF'" in step.pretty()


def test_traefik_chart_and_image_pinned():
    (step,) = cp.addon_steps("traefik", "172.18.0.0/16")
    argv = list(step.argv)
    assert argv[argv.index("--version") + 1] == PINS["TRAEFIK_CHART_VERSION"]
    assert f"image.tag={PINS['TRAEFIK_VERSION']}" in argv
    assert "ingressClass.isDefaultClass=true" in argv
    # the same three providers as the offline cluster (environment/offline/manifests/40-traefik.yaml)
    assert "providers.kubernetesGateway.enabled=true" in argv and "providers.kubernetesCRD.enabled=true" in argv


def test_offline_traefik_runs_the_same_providers_and_may_read_its_crds():
    import re
    from pathlib import Path

    import yaml

    text = (Path(cp.__file__).parents[1] / "environment/offline/manifests/40-traefik.yaml").read_text()
    docs = list(yaml.safe_load_all(re.sub(r"@[A-Z0-9_]+@", "pinned", text)))  # lib.sh fills in the pins
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--providers.kubernetesingress=true", "--providers.kubernetesgateway=true",
            "--providers.kubernetescrd=true"} <= set(args)
    role = next(d for d in docs if d and d["kind"] == "ClusterRole")
    crd_rules = [r for r in role["rules"] if r["apiGroups"] == ["traefik.io"]]
    assert crd_rules and "middlewares" in crd_rules[0]["resources"] and "watch" in crd_rules[0]["verbs"]


def test_without_addons_and_create_flag():
    steps = cp.plan("calico", addons=(), create=False)
    lines = _flat(steps)
    assert not any("kind create" in line for line in lines)
    assert not any("metallb" in line or "helm" in line for line in lines)


def test_missing_pin_names_the_key():
    with pytest.raises(KeyError, match="CALICO_VERSION"):
        cp.cni_steps("calico", pins={})


def test_cli_dry_run_and_offline_dispatch(capsys):
    assert cp.main(["cluster", "up", "--dry-run", "--subnet", "172.20.0.0/16"]) == 0
    out = capsys.readouterr().out
    assert "kube-router" in out and "172.20.255.200-172.20.255.250" in out
    assert cp.main(["cluster", "up", "--offline", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("environment/offline/cluster-up.sh")
    assert cp.main(["cluster", "up", "--bundle", "/tmp/b.tar", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("cluster-up.sh --bundle /tmp/b.tar")
    assert cp.main(["cluster", "up", "--offline", "--cni", "calico"]) == 2
    assert cp.main(["cluster", "up", "--offline", "--cni", "flannel+kube-router", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("K8SLAB_CNI=flannel+kube-router ") and line.endswith("environment/offline/cluster-up.sh")
    assert cp.main(["cluster", "up", "--cni", "flannel+kube-router", "--dry-run"]) == 2  # offline only


def test_another_cni_gets_a_cluster_of_its_own_beside_the_course_cluster(capsys):
    """Lab 02 compares two data planes side by side: `--cni flannel` must not replace the course cluster."""
    assert cp.cluster_name() == "k8slab" and cp.cluster_name("flannel") == "k8slab-flannel"
    lines = _flat(cp.plan("flannel", subnet="172.20.0.0/16"))
    assert any("kind create cluster --name k8slab-flannel" in line for line in lines)
    assert any("kube-flannel.yml" in line for line in lines)
    kubectls = [line for line in lines if line.startswith("kubectl --context")]
    assert kubectls and all(line.startswith("kubectl --context kind-k8slab-flannel ") for line in kubectls)
    assert not any("metallb" in line or "helm" in line for line in lines)  # core add-ons only: no pool collision
    assert any("config use-context kind-k8slab" in line for line in lines)  # kind switched it; give it back
    course = _flat(cp.plan("kube-router", subnet="172.20.0.0/16"))
    assert any("metallb" in line for line in course) and not any("use-context" in line for line in course)


def test_execute_stops_at_first_failure(tmp_path):
    lines = []
    steps = [cp.Step("ok", ("true",)), cp.Step("bad", ("false",)), cp.Step("never", ("true",))]
    assert cp.execute(steps, echo=lines.append) == 1
    assert any("[2/3] bad" in l for l in lines) and not any("never" in l for l in lines)
    assert any("failed (exit 1)" in l for l in lines)


def test_execute_feeds_stdin(tmp_path):
    out = tmp_path / "out"
    assert cp.execute([cp.Step("cat", ("sh", "-c", f"cat > {out}"), stdin="hello: world\n")], echo=lambda s: None) == 0
    assert out.read_text() == "hello: world\n"
