#!/usr/bin/env bash
# Deletes the offline cluster "k8slab" (and with --network also its internal docker network).
# Cached builds and images are kept; remove $K8SLAB_CACHE (~/.cache/k8slab) to start cold.
source "$(dirname "$0")/lib.sh"
KIND="$BIN_DIR/kind"; command -v "$KIND" >/dev/null || KIND="$(command -v kind || true)"
[ -n "$KIND" ] || die "kind not found (build it with build-binaries.sh core-addons)"
if "$KIND" get clusters 2>/dev/null | grep -qx k8slab; then
  step "deleting kind cluster k8slab"
  "$KIND" delete cluster --name k8slab
else
  step "cluster k8slab does not exist"
fi
if [ "${1:-}" = "--network" ] && docker network inspect "$K8SLAB_NETWORK" >/dev/null 2>&1; then
  step "removing docker network $K8SLAB_NETWORK (and its DOCKER-USER rule)"
  BRIDGE="br-$(docker network inspect -f '{{.Id}}' "$K8SLAB_NETWORK" | cut -c1-12)"
  $SUDO iptables -D DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "k8slab: node-to-node pod routing" -j ACCEPT 2>/dev/null || true
  docker network rm "$K8SLAB_NETWORK" >/dev/null
fi
