#!/usr/bin/env bash
# Writes one archive for air-gapped workshops: the node image (which already contains every cluster
# image: control plane, CoreDNS, kube-router, MetalLB, Traefik, agnhost), the host binaries (kind,
# kubectl), the rendered add-on manifests and versions.env; and, for lab 02's second clusters, the images of every
# other CNI built here (Flannel, Cilium) with Cilium's rendered chart. Start from it with
#   environment/offline/cluster-up.sh --bundle PATH     (no build, no download; K8SLAB_CNI=... for a second cluster)
# Usage: bundle.sh [PATH]   (default: $CACHE_ROOT/k8slab-offline-<k8s>.tar)
source "$(dirname "$0")/lib.sh"
OUT="${1:-$CACHE_ROOT/k8slab-offline-$KUBERNETES_VERSION.tar}"
docker image inspect "$OFFLINE_NODE_IMAGE" >/dev/null 2>&1 \
  || die "$OFFLINE_NODE_IMAGE not built yet (run cluster-up.sh or build-node-image.sh first)"
tmp="$BUILD_DIR/bundle-staging"; rm -rf "$tmp"; mkdir -p "$tmp/bin"
step "bundle: node image $OFFLINE_NODE_IMAGE"
docker save -o "$tmp/node-image.tar" "$OFFLINE_NODE_IMAGE"
docker image inspect -f '{{.Id}}' "$OFFLINE_NODE_IMAGE" > "$tmp/node-image.id"
for b in kind kubectl; do cp "$BIN_DIR/$b" "$tmp/bin/"; done
render_manifests "$tmp/manifests"
cp "$REPO_ROOT/environment/versions.env" "$tmp/"
cp "$BUILD_DIR/images.list" "$tmp/" 2>/dev/null || true
cni_images=()
for i in "$FLANNEL_IMAGE" "$CILIUM_IMAGE" "$CILIUM_OPERATOR_IMAGE"; do
  docker image inspect "$i" >/dev/null 2>&1 && cni_images+=("$i")
done
if [ ${#cni_images[@]} -gt 0 ]; then
  step "bundle: second-cluster CNI images ${cni_images[*]}"
  docker save -o "$tmp/cni-images.tar" "${cni_images[@]}"
fi
if [ -x "$BIN_DIR/helm" ] && docker image inspect "$CILIUM_IMAGE" >/dev/null 2>&1; then
  render_cilium "$tmp/manifests/cni/cilium.yaml"
fi
step "bundle: writing $OUT"
mkdir -p "$(dirname "$OUT")"
tar -C "$tmp" -cf "$OUT.tmp" . && mv "$OUT.tmp" "$OUT"
rm -rf "$tmp"
step "bundle ready: $OUT ($(du -h "$OUT" | cut -f1))"
