#!/usr/bin/env bash
# Brings up the offline course cluster "k8slab" (1 control-plane + 2 workers, kube-router, kube-proxy,
# CoreDNS, MetalLB, Traefik) on an --internal docker network, from locally built images only.
#   cluster-up.sh                 build what the cache lacks (Go module proxy + Debian), then start
#   cluster-up.sh --bundle PATH   start from a bundle made by bundle.sh: no build, no download
#   K8SLAB_CNI=flannel cluster-up.sh   a second cluster "k8slab-flannel" beside it (issue 14, lab 02-cni);
#   K8SLAB_CNI=flannel+kube-router      "k8slab-flannel-kube-router": Flannel + kube-router's NetworkPolicy only
#   K8SLAB_CNI=cilium                   "k8slab-cilium": Cilium (eBPF, VXLAN; no Envoy), kube-proxy kept
# Idempotent: with the cluster already up it only re-checks it (and fixes the kubeconfig).
source "$(dirname "$0")/lib.sh"

BUNDLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE="$2"; shift 2 ;;
    --bundle=*) BUNDLE="${1#--bundle=}"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
# K8SLAB_CNI (`make cluster OFFLINE=1 CNI=...`): kube-router is the course cluster "k8slab". Flannel is a second
# cluster with its own name, internal network and manifests folder, so the course cluster is never touched; it gets
# the core add-ons only (MetalLB's pool lies in k8slab's subnet) and does not become kubectl's current context.
CNI="${K8SLAB_CNI:-kube-router}"
CNI_IMAGES=()   # images not in the node image, loaded into this cluster's nodes after creation
select_cni "$CNI" || die "K8SLAB_CNI=$CNI: the offline cluster offers $OFFLINE_CNIS; other CNIs need the online path (make cluster CNI=$CNI without OFFLINE=1)"
if [ "$CNI" != kube-router ]; then
  CNI_IMAGES=("$FLANNEL_IMAGE"); K8SLAB_ADDONS=core
  [ "$CNI" != cilium ] || CNI_IMAGES=("$CILIUM_IMAGE" "$CILIUM_OPERATOR_IMAGE")
fi
CONTEXT="kind-$CLUSTER"
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }

step "host setup (docker engine, runc wrapper)"
K8SLAB_NO_DEBOOTSTRAP=$([ -n "$BUNDLE" ] && echo 1 || echo 0) "$OFFLINE_DIR/host-setup.sh"

MANIFESTS="$BUILD_DIR/manifests"; [ "$CLUSTER" = k8slab ] || MANIFESTS="$BUILD_DIR/manifests-$CLUSTER"
if [ -n "$BUNDLE" ]; then
  [ -f "$BUNDLE" ] || die "bundle $BUNDLE not found"
  step "loading bundle $BUNDLE"
  tmp="$BUILD_DIR/bundle-extract"; rm -rf "$tmp"; mkdir -p "$tmp"
  tar -C "$tmp" -xf "$BUNDLE"
  grep -qx "KUBERNETES_VERSION=$KUBERNETES_VERSION" "$tmp/versions.env" \
    || die "bundle was built for another version (see $tmp/versions.env)"
  if ! docker image inspect "$OFFLINE_NODE_IMAGE" >/dev/null 2>&1 \
     || [ "$(docker image inspect -f '{{.Id}}' "$OFFLINE_NODE_IMAGE")" != "$(cat "$tmp/node-image.id")" ]; then
    step "docker load node image (this takes a minute)"
    docker load -i "$tmp/node-image.tar" | tail -1
  fi
  cp -f "$tmp"/bin/* "$BIN_DIR/"
  rm -rf "$MANIFESTS"; cp -r "$tmp/manifests" "$MANIFESTS"
  if [ "$CNI" != kube-router ]; then
    [ -f "$tmp/cni-images.tar" ] || die "K8SLAB_CNI=$CNI: this bundle holds no second-cluster images (bundle.sh after building them)"
    step "docker load the second cluster's CNI images"
    docker load -i "$tmp/cni-images.tar" | tail -3
    for i in "${CNI_IMAGES[@]}"; do docker image inspect "$i" >/dev/null 2>&1 || die "this bundle lacks $i"; done
    [ "$CNI" != cilium ] || [ -f "$MANIFESTS/cni/cilium.yaml" ] || die "this bundle lacks Cilium's rendered chart"
  fi
  rm -rf "$tmp"
elif [ "${K8SLAB_SKIP_BUILD:-0}" = 1 ]; then
  docker image inspect "$OFFLINE_NODE_IMAGE" >/dev/null 2>&1 || die "K8SLAB_SKIP_BUILD=1 but $OFFLINE_NODE_IMAGE is missing"
  for i in "${CNI_IMAGES[@]}"; do
    docker image inspect "$i" >/dev/null 2>&1 || die "K8SLAB_SKIP_BUILD=1 but $i is missing (build-binaries.sh $CNI_BUILD, then build-images.sh)"
  done
  rm -rf "$MANIFESTS"; render_manifests "$MANIFESTS"
else
  step "building (cached in $BUILD_DIR; logs in $LOG_DIR)"
  # debootstrap is network/disk bound: run it beside the (CPU bound) Go builds.
  "$OFFLINE_DIR/build-rootfs.sh" > "$LOG_DIR/build-rootfs.log" 2>&1 &
  rootfs_pid=$!
  "$OFFLINE_DIR/build-binaries.sh" all
  wait "$rootfs_pid" || { cat "$LOG_DIR/build-rootfs.log"; die "rootfs build failed"; }
  cat "$LOG_DIR/build-rootfs.log"
  [ -z "$CNI_BUILD" ] || "$OFFLINE_DIR/build-binaries.sh" "$CNI_BUILD"
  "$OFFLINE_DIR/build-images.sh"
  "$OFFLINE_DIR/build-node-image.sh"
  rm -rf "$MANIFESTS"; render_manifests "$MANIFESTS"
fi
KIND="$BIN_DIR/kind"; KUBECTL="$BIN_DIR/kubectl"
export PATH="$BIN_DIR:$PATH"
k() { "$KUBECTL" --context "$CONTEXT" "$@"; }

# The cluster network: internal (no route out of this machine).
if ! docker network inspect "$K8SLAB_NETWORK" >/dev/null 2>&1; then
  step "creating internal docker network $K8SLAB_NETWORK ($K8SLAB_NETWORK_SUBNET)"
  docker network create --internal --driver bridge --subnet "$K8SLAB_NETWORK_SUBNET" \
    --ip-range "$K8SLAB_NETWORK_IP_RANGE" "$K8SLAB_NETWORK" >/dev/null
fi
[ "$(docker network inspect -f '{{.Internal}}' "$K8SLAB_NETWORK")" = true ] \
  || die "docker network $K8SLAB_NETWORK exists but is not --internal; remove it (cluster-down.sh --network)"

# Pod IPs are routed between the nodes over this bridge (kube-router, no overlay), but docker's isolation
# rules for an internal network drop forwarded packets whose source/destination lie outside the
# network's subnet. Accept traffic that enters AND leaves this same bridge (node to node on this
# machine); nothing is allowed out of it. Flannel needs no rule: its VXLAN packets carry node IPs.
BRIDGE="$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$K8SLAB_NETWORK")"
[ -n "$BRIDGE" ] && [ "$BRIDGE" != "<no value>" ] || BRIDGE="br-$(docker network inspect -f '{{.Id}}' "$K8SLAB_NETWORK" | cut -c1-12)"
RULE=(-i "$BRIDGE" -o "$BRIDGE" -m comment --comment "k8slab: node-to-node pod routing" -j ACCEPT)
if [ "$CNI" = kube-router ] && ! $SUDO iptables -C DOCKER-USER "${RULE[@]}" 2>/dev/null; then
  step "host firewall: allow pod traffic between the nodes on $BRIDGE (same bridge in and out)"
  $SUDO iptables -I DOCKER-USER 1 "${RULE[@]}"
fi

# A cluster created from an older node image lacks the images added to the build since (a new add-on): load
# just those into each node, instead of asking for a new cluster.
load_missing_images() {
  [ -f "$BUILD_DIR/images.list" ] || return 0
  load_images "$CLUSTER" $(cat "$BUILD_DIR/images.list") "${CNI_IMAGES[@]}"
}
nodes_running() { [ "$(docker ps -q --filter "label=io.x-k8s.kind.cluster=$CLUSTER" | wc -l)" -ge 3 ]; }
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  if ! nodes_running; then
    step "starting stopped node containers"
    docker start $(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$CLUSTER") >/dev/null
  fi
  step "cluster $CLUSTER exists: verifying"
  load_missing_images
else
  step "kind create cluster $CLUSTER (image $OFFLINE_NODE_IMAGE)"
  # A second cluster's kubeconfig from kind goes to a scratch file (kind would make it the current context); the
  # context is written below from the node's admin.conf either way.
  kind_kubeconfig=(); [ "$CLUSTER" = k8slab ] || kind_kubeconfig=(--kubeconfig "$BUILD_DIR/kind-$CLUSTER.kubeconfig")
  KIND_EXPERIMENTAL_DOCKER_NETWORK="$K8SLAB_NETWORK" "$KIND" create cluster --name "$CLUSTER" \
    --config "$REPO_ROOT/environment/kind/cluster.yaml" --image "$OFFLINE_NODE_IMAGE" --wait 0s ${K8SLAB_RETAIN:+--retain} \
    "${kind_kubeconfig[@]}"
  rm -f "$BUILD_DIR/kind-$CLUSTER.kubeconfig"
  [ ${#CNI_IMAGES[@]} -eq 0 ] || load_missing_images
fi

# An internal network publishes no ports, so the API server is reached at the control-plane container's
# own address. The kubeconfig entry (cluster/user/context "kind-k8slab", as kind names them) is written
# from the node's admin.conf; kind's own export would point at the image's placeholder endpoint.
cp_ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$K8SLAB_NETWORK\").IPAddress}}" "$CLUSTER-control-plane")"
[ -n "$cp_ip" ] || die "cannot find the control-plane IP on $K8SLAB_NETWORK"
kc="$BUILD_DIR/kubeconfig-$CLUSTER.d"; rm -rf "$kc"; mkdir -p "$kc"
docker exec "$CLUSTER-control-plane" cat /etc/kubernetes/admin.conf > "$kc/admin.conf"
for f in certificate-authority-data:clusters[0].cluster client-certificate-data:users[0].user client-key-data:users[0].user; do
  "$KUBECTL" --kubeconfig "$kc/admin.conf" config view --raw -o "jsonpath={.${f#*:}.${f%%:*}}" | base64 -d > "$kc/${f%%:*}"
done
"$KUBECTL" config set-cluster "$CONTEXT" --server="https://$cp_ip:6443" \
  --certificate-authority="$kc/certificate-authority-data" --embed-certs=true >/dev/null
"$KUBECTL" config set-credentials "$CONTEXT" --client-certificate="$kc/client-certificate-data" \
  --client-key="$kc/client-key-data" --embed-certs=true >/dev/null
"$KUBECTL" config set-context "$CONTEXT" --cluster="$CONTEXT" --user="$CONTEXT" >/dev/null
[ "$CLUSTER" != k8slab ] || "$KUBECTL" config use-context "$CONTEXT" >/dev/null
rm -rf "$kc"
for i in $(seq 1 60); do k get --raw /readyz >/dev/null 2>&1 && break; sleep 2; done
k get --raw /readyz >/dev/null || die "API server at https://$cp_ip:6443 not ready"
step "API server ready at https://$cp_ip:6443 (context $CONTEXT) [$(elapsed)]"

# wait_for DESCRIPTION TIMEOUT COMMAND...: retry with a progress line.
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local start; start=$(date +%s)
  while ! "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
      printf '\n'; echo "timed out after ${timeout}s waiting for $what" >&2; return 1
    fi
    printf '\r    waiting for %s ... %ss ' "$what" "$(( $(date +%s) - start ))"; sleep 3
  done
  printf '\r    %s: ok (%ss)          \n' "$what" "$(( $(date +%s) - start ))"
}
apply() { k apply --server-side --force-conflicts -f "$1" >/dev/null; }
rollout() { k -n "$1" rollout status "$2" --timeout=5s; }
nodes_ready() { [ "$(k get nodes --no-headers 2>/dev/null | awk '$2=="Ready"' | wc -l)" -ge 3 ]; }
crds_established() { k wait --for=condition=Established --timeout=5s "$@"; }
pool_ok() { apply "$MANIFESTS/31-metallb-pool.yaml"; }
lb_ip() { [ -n "$(k -n traefik get svc traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" ]; }

if [ "$CNI" = cilium ]; then
  step "add-ons: Cilium $CILIUM_VERSION (eBPF data plane, VXLAN between nodes, NetworkPolicy; no Envoy: no L7 policy)"
  # The agent writes two host-wide sysctls from its privileged pod (pkg/datapath/loader/base.go):
  # kernel.unprivileged_bpf_disabled=1 and kernel.timer_migration=0. Said here, since they outlive the cluster.
  echo "    note: Cilium's agent sets the host's kernel.unprivileged_bpf_disabled=1 (unprivileged BPF stays off until reboot)"
  [ -n "$BUNDLE" ] || render_cilium "$MANIFESTS/cni/cilium.yaml"   # a bundle carries it rendered
  apply "$MANIFESTS/cni/cilium.yaml"
  wait_for "Cilium operator" 300 rollout kube-system deployment/cilium-operator
  wait_for "Cilium agent on every node (compiles its datapath at start)" 600 rollout kube-system daemonset/cilium
elif [ "$CNI" != kube-router ]; then
  step "add-ons: flannel (VXLAN overlay; no NetworkPolicy engine)"
  apply "$MANIFESTS/cni/flannel.yaml"
  wait_for "flannel on every node" 300 rollout kube-flannel daemonset/kube-flannel-ds
  if [ "$CNI" = flannel+kube-router ]; then
    step "add-ons: kube-router firewall only (NetworkPolicy beside Flannel, as Canal adds Calico's)"
    apply "$MANIFESTS/cni/kube-router-firewall.yaml"
    wait_for "kube-router firewall on every node" 300 rollout kube-system daemonset/kube-router-firewall
  fi
else
  step "add-ons: kube-router (routing + NetworkPolicy)"
  apply "$MANIFESTS/10-kube-router.yaml"
  wait_for "kube-router on every node" 300 rollout kube-system daemonset/kube-router
fi
wait_for "3 nodes Ready" 300 nodes_ready
# Outside names get NXDOMAIN at once, as from an online cluster's upstream (see the manifest for why). Applying
# an unchanged ConfigMap keeps its resourceVersion: CoreDNS restarts only when its Corefile really changed.
corefile_version() { k -n kube-system get configmap coredns -o jsonpath='{.metadata.resourceVersion}'; }
before="$(corefile_version)"; apply "$MANIFESTS/15-coredns-offline.yaml"
if [ "$(corefile_version)" != "$before" ]; then
  step "CoreDNS: NXDOMAIN for names outside the cluster (no upstream on an internal network)"
  k -n kube-system rollout restart deployment/coredns >/dev/null
fi
wait_for "CoreDNS" 300 rollout kube-system deployment/coredns
wait_for "kube-proxy" 120 rollout kube-system daemonset/kube-proxy
if [ "${K8SLAB_ADDONS:-all}" = core ]; then   # kube-router + kube-proxy + CoreDNS only
  step "cluster $CLUSTER is up with core add-ons only (K8SLAB_ADDONS=core) [$(elapsed)]"; k get nodes -o wide
  echo "kubectl context: $CONTEXT  (kubectl binary: $KUBECTL)"; exit 0
fi
step "add-ons: Gateway API CRDs, MetalLB, Traefik"
apply "$MANIFESTS/05-gateway-api-crds.yaml"
apply "$MANIFESTS/06-traefik-crds.yaml"
apply "$MANIFESTS/20-metallb-crds.yaml"
wait_for "CRDs established" 120 crds_established crd/ipaddresspools.metallb.io crd/l2advertisements.metallb.io crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io crd/middlewares.traefik.io
apply "$MANIFESTS/30-metallb.yaml"
wait_for "MetalLB pool" 60 pool_ok
apply "$MANIFESTS/40-traefik.yaml"
wait_for "MetalLB controller" 300 rollout metallb-system deployment/controller
wait_for "MetalLB speakers" 300 rollout metallb-system daemonset/speaker
wait_for "Traefik" 300 rollout traefik deployment/traefik
wait_for "Traefik LoadBalancer IP" 120 lb_ip
# The grader's client sits on the docker network and reaches Traefik by ARP for the MetalLB IP. After a docker
# restart (a laptop that slept, a rebooted machine) speakers can come up before their pool is known and never
# answer ARP, although the Service shows its IP: check from the network itself, restart the speakers once if not.
lb_answers() {
  local ip; ip="$(k -n traefik get svc traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
  docker run --rm --network "$K8SLAB_NETWORK" --entrypoint curl "$AGNHOST_IMAGE_OFFLINE" -s -o /dev/null -m 2 \
    -w '%{http_code}' "http://$ip/" | grep -qv '^000$'
}
if ! wait_for "Traefik answering on its LoadBalancer IP" 20 lb_answers; then
  step "MetalLB speakers do not answer for the IP: restarting them once"
  k -n metallb-system delete pod -l component=speaker --wait=true >/dev/null
  wait_for "MetalLB speakers" 120 rollout metallb-system daemonset/speaker
  wait_for "Traefik answering on its LoadBalancer IP" 60 lb_answers || die "Traefik's LoadBalancer IP does not answer on network $K8SLAB_NETWORK"
fi

step "add-ons: cert-manager controller (selfSigned and CA issuers, ingress-shim; no webhook, no ACME)"
apply "$MANIFESTS/49-cert-manager-crds.yaml"
wait_for "cert-manager CRDs established" 120 crds_established crd/certificates.cert-manager.io crd/certificaterequests.cert-manager.io crd/issuers.cert-manager.io crd/clusterissuers.cert-manager.io
apply "$MANIFESTS/50-cert-manager.yaml"
wait_for "cert-manager controller" 300 rollout cert-manager deployment/cert-manager

step "cluster $CLUSTER is up [$(elapsed)]"
k get nodes -o wide
echo "Traefik LoadBalancer: $(k -n traefik get svc traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
echo "kubectl context: $CONTEXT  (kubectl binary: $KUBECTL)"
