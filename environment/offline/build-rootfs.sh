#!/usr/bin/env bash
# Builds two Debian bookworm root filesystems with debootstrap (mirror read from this machine's apt
# sources) and imports them as local docker images; cached as tarballs in the build cache.
#   base: minbase + network tools  -> $BASE_IMAGE  (FROM for every image we build)
#   probe: base + iputils' ping and tracepath -> $NETPROBE_IMAGE_OFFLINE (lab 02's don't-fragment pings: `ping -M do`,
#          which neither agnhost's busybox nor our agnhost image has)
#   node: minbase + systemd/containerd/runc/iptables/CNI plugins -> $NODE_ROOTFS_IMAGE
#   build-rootfs.sh python: base + python3 -> $GRADER_BASE_IMAGE (the grading image's FROM; not built by default)
#   build-rootfs.sh cilium: base + clang-19 and bpftool -> $CILIUM_BASE_IMAGE (the agent compiles its datapath at
#                            start-up, with -nostdinc: no libc headers needed; upstream's image ships LLVM 19.1.7 too)
source "$(dirname "$0")/lib.sh"

ROOTFS_DIR="$CACHE_ROOT/rootfs-$DEBIAN_SUITE"
mkdir -p "$ROOTFS_DIR/debs"
BASE_PKGS="ca-certificates,iptables,ipset,iproute2,conntrack,curl,dnsutils,netcat-openbsd,procps,kmod"
NODE_PKGS="systemd,dbus,containerd,runc,iptables,nftables,ipset,iproute2,conntrack,ethtool,socat,mount,util-linux,kmod,ca-certificates,containernetworking-plugins,libseccomp2,procps,curl,jq,pigz,bash,libcap2-bin,hostname,less,ebtables"

build_tar() {  # build_tar NAME PACKAGES -> $ROOTFS_DIR/NAME.tar
  local name="$1" pkgs="$2" out="$ROOTFS_DIR/$1.tar"
  local key; key="$(printf '%s|%s|%s' "$DEBIAN_SUITE" "$pkgs" "$(debian_mirror)" | sha256sum | cut -c1-12)"
  if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then return 0; fi
  local dir="$ROOTFS_DIR/$name.dir"
  $SUDO rm -rf "$dir"
  step "debootstrap $DEBIAN_SUITE ($name) from $(debian_mirror)"
  $SUDO debootstrap --variant=minbase --cache-dir="$ROOTFS_DIR/debs" --include="$pkgs" \
    "$DEBIAN_SUITE" "$dir" "$(debian_mirror)" >"$LOG_DIR/debootstrap-$name.log" 2>&1 \
    || die "debootstrap failed, see $LOG_DIR/debootstrap-$name.log"
  # Slim down: apt lists, caches, docs, man pages.
  $SUDO rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/usr/share/doc/* \
    "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*.log
  # An image resolves via docker's/kubelet's resolv.conf; an empty one here avoids leaking the host's.
  : | $SUDO tee "$dir/etc/resolv.conf" >/dev/null
  $SUDO tar -C "$dir" --numeric-owner -cf "$out.tmp" .
  mv "$out.tmp" "$out"; echo "$key" > "$out.key"
  $SUDO rm -rf "$dir"
}

import_image() {  # import_image NAME TAG [docker import --change ...]
  local name="$1" tag="$2"; shift 2
  local key; key="$(cat "$ROOTFS_DIR/$name.tar.key")"
  if [ "$(docker image inspect -f '{{index .Config.Labels "k8slab.rootfs"}}' "$tag" 2>/dev/null)" = "$key" ]; then return 0; fi
  step "docker import $tag"
  docker import --change "LABEL k8slab.rootfs=$key" "$@" "$ROOTFS_DIR/$name.tar" "$tag" >/dev/null
}

if [ "${1:-}" = python ]; then
  build_tar python "$BASE_PKGS,python3"
  import_image python "$GRADER_BASE_IMAGE" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  step "python base image ready: $GRADER_BASE_IMAGE"
  exit 0
fi
if [ "${1:-}" = cilium ]; then
  build_tar cilium "$BASE_PKGS,clang-19,bpftool"
  import_image cilium "$CILIUM_BASE_IMAGE" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  step "cilium base image ready: $CILIUM_BASE_IMAGE"
  exit 0
fi
build_tar base "$BASE_PKGS"
build_tar probe "$BASE_PKGS,iputils-ping,iputils-tracepath"
build_tar node "$NODE_PKGS"
import_image base "$BASE_IMAGE" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
import_image probe "$NETPROBE_IMAGE_OFFLINE" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sleep", "infinity"]'
import_image node "$NODE_ROOTFS_IMAGE"
step "rootfs images ready: $BASE_IMAGE $NETPROBE_IMAGE_OFFLINE $NODE_ROOTFS_IMAGE"
