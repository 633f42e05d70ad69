#!/usr/bin/env bash
# Builds every container image of the offline cluster locally (FROM the debootstrap base image or
# FROM scratch), with the fixed tags from versions.env, then saves them into one archive that the
# node image preloads into containerd. Nothing is pulled. Cached by a content label per image.
source "$(dirname "$0")/lib.sh"
export DOCKER_BUILDKIT=0   # the classic builder works with local-only base images and no registry

CTX_ROOT="$BUILD_DIR/image-ctx"
IMAGES_TAR="$BUILD_DIR/images.tar"
built=()

# image TAG FROM ENTRYPOINT_JSON FILE... [-- EXTRA_DOCKERFILE_LINES]
image() {
  local tag="$1" from="$2" entry="$3"; shift 3
  local files=() extra=""
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; extra="$*"; break; fi
    files+=("$1"); shift
  done
  local name; name="$(echo "$tag" | tr '/:' '__')"
  local ctx="$CTX_ROOT/$name"; rm -rf "$ctx"; mkdir -p "$ctx"
  {
    echo "FROM $from"
    for f in "${files[@]}"; do
      local src="${f%%=*}" dst="${f#*=}"
      if [ ! -e "$src" ]; then
        # K8SLAB_PARTIAL=1 (development only): skip images whose binary is not built yet
        [ "${K8SLAB_PARTIAL:-0}" = 1 ] && { echo "skipping $tag (missing $src)"; rm -rf "$ctx"; return 0; }
        die "missing $src (run build-binaries.sh first)"
      fi
      ln "$src" "$ctx/$(basename "$src")" 2>/dev/null || cp "$src" "$ctx/$(basename "$src")"
      echo "COPY $(basename "$src") $dst"
    done
    [ -n "$extra" ] && printf '%b\n' "$extra"
    echo "ENTRYPOINT $entry"
  } > "$ctx/Dockerfile"
  local fromid; fromid="$( [ "$from" = scratch ] && echo scratch || docker image inspect -f '{{.Id}}' "$from")"
  local key; key="$( (cat "$ctx/Dockerfile"; echo "$fromid"; for f in "$ctx"/*; do sha256sum "$f" | cut -c1-64; done) | sha256sum | cut -c1-16)"
  built+=("$tag")
  if [ "$(docker image inspect -f '{{index .Config.Labels "k8slab.key"}}' "$tag" 2>/dev/null)" = "$key" ]; then
    rm -rf "$ctx"; return 0
  fi
  echo "LABEL k8slab.key=$key" >> "$ctx/Dockerfile"
  step "image $tag"
  docker build -q -t "$tag" "$ctx" >"$LOG_DIR/image-build.log" 2>&1 \
    || { cat "$LOG_DIR/image-build.log"; die "docker build $tag failed (context $ctx)"; }
  rm -rf "$ctx"
}

B="$BIN_DIR" F="$OFFLINE_DIR/files"
IPT='RUN for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -sf iptables-wrapper /usr/sbin/$n; done'
K="registry.k8s.io"

image "$PAUSE_IMAGE" scratch '["/pause"]' "$B/pause=/pause" -- 'USER 65535:65535'
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$K/$c:$KUBERNETES_VERSION" "$BASE_IMAGE" "[\"/usr/local/bin/$c\"]" "$B/$c=/usr/local/bin/$c"
done
image "$K/kube-proxy:$KUBERNETES_VERSION" "$BASE_IMAGE" '["/usr/local/bin/kube-proxy"]' \
  "$B/kube-proxy=/usr/local/bin/kube-proxy" "$F/iptables-wrapper=/usr/sbin/iptables-wrapper" -- "$IPT"
image "$ETCD_IMAGE" "$BASE_IMAGE" '["/usr/local/bin/etcd"]' "$B/etcd=/usr/local/bin/etcd" "$B/etcdctl=/usr/local/bin/etcdctl"
image "$COREDNS_IMAGE" "$BASE_IMAGE" '["/coredns"]' "$B/coredns=/coredns" -- 'EXPOSE 53 53/udp'
# Probe image: like upstream's agnhost (2.56 at Kubernetes v1.34) plus the same tools (curl, nslookup/dig, nc, ip).
image "$AGNHOST_IMAGE_OFFLINE" "$BASE_IMAGE" '["/agnhost"]' "$B/agnhost=/agnhost" -- \
  'RUN mkdir /uploads && ln -s agnhost /agnhost-2 && useradd -u 1000 -M -s /bin/sh user-defined-in-image\nCMD ["pause"]'
# Learner manifests name the upstream agnhost tag; the offline build answers to it too (docs/architecture.md).
docker tag "$AGNHOST_IMAGE_OFFLINE" "$AGNHOST_IMAGE_ONLINE"; built+=("$AGNHOST_IMAGE_ONLINE")
# Lab 02's don't-fragment pings (iputils ping; build-rootfs.sh imports it as it is).
docker image inspect "$NETPROBE_IMAGE_OFFLINE" >/dev/null 2>&1 || "$OFFLINE_DIR/build-rootfs.sh"
built+=("$NETPROBE_IMAGE_OFFLINE")
image "$KUBE_ROUTER_IMAGE" "$BASE_IMAGE" '["/usr/local/bin/kube-router"]' \
  "$B/kube-router=/usr/local/bin/kube-router" "$F/iptables-wrapper=/usr/sbin/iptables-wrapper" -- "$IPT"
image "$METALLB_CONTROLLER_IMAGE" "$BASE_IMAGE" '["/controller"]' "$B/metallb-controller=/controller"
image "$METALLB_SPEAKER_IMAGE" "$BASE_IMAGE" '["/speaker"]' "$B/metallb-speaker=/speaker"
image "$TRAEFIK_IMAGE" "$BASE_IMAGE" '["/usr/local/bin/traefik"]' "$B/traefik=/usr/local/bin/traefik" -- 'EXPOSE 80 443'
# Our own cert-manager controller main (build-binaries.sh build_cert_manager); runs as uid 1000 like upstream's.
image "$CERT_MANAGER_CONTROLLER_IMAGE" "$BASE_IMAGE" '["/usr/local/bin/cert-manager-controller"]' \
  "$B/cert-manager-controller=/usr/local/bin/cert-manager-controller" -- 'USER 1000:1000'

# Flannel (second cluster k8slab-flannel, `make cluster OFFLINE=1 CNI=flannel`): only when `build-binaries.sh flannel`
# has run, so the default build does not need it. One image holds flanneld and the flannel CNI plugin, which the
# DaemonSet's init container copies into the node's /opt/cni/bin (as upstream's flannel-cni-plugin image does).
# Kept out of images.tar (and so of the node image): cluster-up.sh loads it into that cluster's nodes only.
if [ -x "$B/flanneld" ] && [ -x "$B/cni-flannel" ]; then
  image "$FLANNEL_IMAGE" "$BASE_IMAGE" '["/opt/bin/flanneld"]' "$B/flanneld=/opt/bin/flanneld" "$B/cni-flannel=/flannel" \
    "$F/iptables-wrapper=/usr/sbin/iptables-wrapper" -- "$IPT"
  unset 'built[-1]'
fi

# Cilium (second cluster k8slab-cilium, `make cluster OFFLINE=1 CNI=cilium`): only when `build-binaries.sh cilium`
# has run. As upstream's cilium image (images/cilium/Dockerfile) minus Envoy and the Hubble CLI, on a base with
# clang-19 (build-rootfs.sh cilium); the operator image holds upstream's generic variant. Kept out of images.tar.
if [ -x "$B/cilium-agent" ] && [ -x "$B/cilium-operator-generic" ] && [ -f "$B/cilium-files.tar" ]; then
  docker image inspect "$CILIUM_BASE_IMAGE" >/dev/null 2>&1 || "$OFFLINE_DIR/build-rootfs.sh" cilium
  cilium_bins=()
  for b in cilium-agent cilium-dbg cilium-health cilium-health-responder cilium-mount cilium-sysctlfix; do
    cilium_bins+=("$B/$b=/usr/bin/$b")
  done
  image "$CILIUM_IMAGE" "$CILIUM_BASE_IMAGE" '["/usr/bin/cilium-agent"]' "${cilium_bins[@]}" \
    "$B/cilium-cni=/opt/cni/bin/cilium-cni" "$B/cilium-files.tar=/tmp/cilium-files.tar" \
    "$F/iptables-wrapper=/usr/sbin/iptables-wrapper" -- "$IPT" \
    '\nRUN tar -C / -xf /tmp/cilium-files.tar && rm /tmp/cilium-files.tar && ln -sf clang-19 /usr/bin/clang' \
    '\nRUN mkdir -p /home/cilium\nWORKDIR /home/cilium\nENV INITSYSTEM=SYSTEMD'
  unset 'built[-1]'
  image "$CILIUM_OPERATOR_IMAGE" "$BASE_IMAGE" '["/usr/bin/cilium-operator-generic"]' \
    "$B/cilium-operator-generic=/usr/bin/cilium-operator-generic"
  unset 'built[-1]'
fi

# One archive of all images, re-saved only when an image changed.
ids="$(for t in "${built[@]}"; do docker image inspect -f '{{.Id}}' "$t"; done | sha256sum | cut -c1-16)"
if [ "$(cat "$IMAGES_TAR.key" 2>/dev/null)" != "$ids" ] || [ ! -f "$IMAGES_TAR" ]; then
  step "saving ${#built[@]} images to $IMAGES_TAR"
  docker save -o "$IMAGES_TAR.tmp" "${built[@]}"
  mv "$IMAGES_TAR.tmp" "$IMAGES_TAR"; echo "$ids" > "$IMAGES_TAR.key"
fi
printf '%s\n' "${built[@]}" > "$BUILD_DIR/images.list"
step "images ready: ${#built[@]} in $IMAGES_TAR ($(du -h "$IMAGES_TAR" | cut -f1))"
