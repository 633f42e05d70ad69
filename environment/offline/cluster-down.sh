#!/usr/bin/env bash
# Deletes the offline cluster "k8slab" (and with --network also its internal docker network);
# K8SLAB_CNI=flannel, flannel+kube-router or cilium (make cluster-down OFFLINE=1 CNI=...): that second cluster and its network.
# Cached builds and images are kept; remove $K8SLAB_CACHE (~/.cache/k8slab) to start cold.
source "$(dirname "$0")/lib.sh"
KIND="$BIN_DIR/kind"; command -v "$KIND" >/dev/null || KIND="$(command -v kind || true)"
[ -n "$KIND" ] || die "kind not found (build it with build-binaries.sh core-addons)"
select_cni "${K8SLAB_CNI:-kube-router}" || die "K8SLAB_CNI=$K8SLAB_CNI: the offline clusters are $OFFLINE_CNIS"
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "deleting kind cluster $CLUSTER"
  "$KIND" delete cluster --name "$CLUSTER"
else
  step "cluster $CLUSTER does not exist"
fi
if [ "${1:-}" = "--network" ] && docker network inspect "$K8SLAB_NETWORK" >/dev/null 2>&1; then
  step "removing docker network $K8SLAB_NETWORK (and its DOCKER-USER rule)"
  BRIDGE="br-$(docker network inspect -f '{{.Id}}' "$K8SLAB_NETWORK" | cut -c1-12)"
  $SUDO iptables -D DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "k8slab: node-to-node pod routing" -j ACCEPT 2>/dev/null || true
  docker network rm "$K8SLAB_NETWORK" >/dev/null
fi
