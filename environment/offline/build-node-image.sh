#!/usr/bin/env bash
# Assembles the offline kind node image $OFFLINE_NODE_IMAGE: the debootstrap node rootfs + kind
# v$KIND_VERSION's base-image files (read from the kind Go module at build time, not stored in this
# repo) + our containerd config and runc wrapper + kubelet/kubeadm/kubectl + every cluster image
# preloaded into containerd (ctr import), so that `kind create cluster` pulls nothing.
source "$(dirname "$0")/lib.sh"
export DOCKER_BUILDKIT=0

IMAGES_TAR="$BUILD_DIR/images.tar"
[ -f "$IMAGES_TAR" ] || die "missing $IMAGES_TAR (run build-images.sh)"
CTX="$BUILD_DIR/node-ctx"; rm -rf "$CTX"; mkdir -p "$CTX"

# Manifests rendered with the pinned image tags (also used by cluster-up.sh and the bundle).
render_manifests "$CTX/manifests"

KIND_DIR="$(cd "$BUILD_DIR" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
KB="$KIND_DIR/images/base/files"
[ -f "$KB/usr/local/bin/entrypoint" ] || die "kind module has no images/base/files ($KIND_DIR)"
mkdir -p "$CTX/root/usr/local/bin" "$CTX/root/kind/bin" "$CTX/root/kind/manifests" "$CTX/root/etc/containerd" \
         "$CTX/root/etc/systemd/system/kubelet.service.d" "$CTX/root/etc/sysctl.d" "$CTX/root/etc/default" \
         "$CTX/root/usr/bin" "$CTX/root/usr/local/sbin"
cp "$KB"/kind/bin/*.sh "$CTX/root/kind/bin/"
cp "$KB"/etc/systemd/system/{kubelet.service,kubelet.slice,undo-mount-hacks.service} "$CTX/root/etc/systemd/system/"
cp "$KB"/etc/systemd/system/kubelet.service.d/*.conf "$CTX/root/etc/systemd/system/kubelet.service.d/"
cp "$KB"/etc/sysctl.d/*.conf "$CTX/root/etc/sysctl.d/"
cp "$KB"/etc/default/kubelet "$KB"/etc/crictl.yaml "$CTX/root/etc/" 2>/dev/null || true
mv "$CTX/root/etc/kubelet" "$CTX/root/etc/default/kubelet"
# Debian installs containerd in /usr/bin; kind's unit expects /usr/local/bin.
sed 's#^ExecStart=/usr/local/bin/containerd#ExecStart=/usr/bin/containerd#' \
  "$KB/etc/systemd/system/containerd.service" > "$CTX/root/etc/systemd/system/containerd.service"
# kind's entrypoint, with one fix: on an --internal docker network there is no default route, so the
# "docker host IP" used for DNS falls back to the network's gateway (first address of eth0's subnet).
python3 - "$KB/usr/local/bin/entrypoint" "$CTX/root/usr/local/bin/entrypoint" <<'PY'
import sys
src = open(sys.argv[1]).read()
anchor = "    docker_host_ip=$(ip -4 route show default | cut -d' ' -f3)\n  fi\n"
assert anchor in src, "kind entrypoint changed: DNS fallback anchor not found"
fix = anchor + r'''  # k8slab: internal docker network (no default route) -> use the network gateway (first address)
  if [[ -z "${docker_host_ip}" ]]; then
    local cidr addr plen a b c d ipn mask gw
    cidr="$(ip -4 -o addr show dev eth0 | awk '{print $4}' | head -n1)"
    addr="${cidr%/*}"; plen="${cidr#*/}"
    IFS=. read -r a b c d <<<"$addr"
    ipn=$(( (a<<24) | (b<<16) | (c<<8) | d )); mask=$(( (0xffffffff << (32-plen)) & 0xffffffff ))
    gw=$(( (ipn & mask) + 1 ))
    docker_host_ip="$(( (gw>>24)&255 )).$(( (gw>>16)&255 )).$(( (gw>>8)&255 )).$(( gw&255 ))"
    log_info "no default route (internal network): using gateway ${docker_host_ip} for DNS"
  fi
'''
open(sys.argv[2], "w").write(src.replace(anchor, fix, 1))
PY
chmod 0755 "$CTX/root/usr/local/bin/entrypoint" "$CTX/root/kind/bin/"*.sh
# Our own pieces.
sed "s#@PAUSE_IMAGE@#$PAUSE_IMAGE#" "$OFFLINE_DIR/files/containerd-config.toml" > "$CTX/root/etc/containerd/config.toml"
install -m 0755 "$OFFLINE_DIR/files/runc-wrapper" "$CTX/root/usr/local/sbin/runc-k8slab"
cp "$OFFLINE_DIR/files/99-k8slab-bridge.conf" "$CTX/root/etc/sysctl.d/"
cp "$OFFLINE_DIR/files/default-storage.yaml" "$CTX/root/kind/manifests/default-storage.yaml"
cp "$CTX/manifests/10-kube-router.yaml" "$CTX/root/kind/manifests/default-cni.yaml"
printf '%s' "$KUBERNETES_VERSION" > "$CTX/root/kind/version"
for b in kubelet kubeadm kubectl; do ln "$BIN_DIR/$b" "$CTX/root/usr/bin/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$CTX/root/usr/bin/$b"; done
ln "$BIN_DIR/crictl" "$CTX/root/usr/local/bin/crictl" 2>/dev/null || cp "$BIN_DIR/crictl" "$CTX/root/usr/local/bin/crictl"

cat > "$CTX/Dockerfile" <<DOCKERFILE
FROM $NODE_ROOTFS_IMAGE
COPY root/ /
RUN set -e; chmod 0755 /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /usr/local/bin/crictl; \\
    ln -sf /lib/systemd/systemd /sbin/init; ln -sf /usr/bin/containerd /usr/local/bin/containerd; \\
    mkdir -p /opt/cni/bin /etc/cni/net.d /etc/kubernetes/manifests /var/lib/kubelet; \\
    for p in /usr/lib/cni/*; do ln -sf "\$p" /opt/cni/bin/; done; \\
    ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json; \\
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete; \\
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
          /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
          /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*; \\
    echo ReadKMsg=no >> /etc/systemd/journald.conf; \\
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service; \\
    systemctl mask systemd-binfmt.service; \\
    update-alternatives --set iptables /usr/sbin/iptables-nft; update-alternatives --set ip6tables /usr/sbin/ip6tables-nft
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
DOCKERFILE

key="$( (cat "$CTX/Dockerfile"; docker image inspect -f '{{.Id}}' "$NODE_ROOTFS_IMAGE"; cat "$IMAGES_TAR.key"
         find "$CTX/root" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "k8slab.key"}}' "$OFFLINE_NODE_IMAGE" 2>/dev/null)" = "$key" ]; then
  step "node image $OFFLINE_NODE_IMAGE is up to date"; rm -rf "$CTX"; exit 0
fi
step "node image stage 1: rootfs + kind files + binaries"
docker build -q -t "$OFFLINE_NODE_IMAGE-stage" "$CTX" >"$LOG_DIR/node-image-build.log" 2>&1 \
  || { cat "$LOG_DIR/node-image-build.log"; die "node image build failed"; }

step "node image stage 2: preloading $(wc -l < "$BUILD_DIR/images.list") images into containerd"
cid="$(docker run -d --privileged --entrypoint sleep "$OFFLINE_NODE_IMAGE-stage" infinity)"
trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
docker cp "$IMAGES_TAR" "$cid:/images.tar"
docker exec "$cid" bash -ec '
  containerd >/tmp/containerd.log 2>&1 &
  for i in $(seq 1 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done
  ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests /images.tar >/dev/null
  ctr --namespace=k8s.io images list -q | grep -v "^sha256:" | sort
  kill %1; wait || true
  rm -f /images.tar /tmp/containerd.log'
# The label makes `kind create cluster` accept a control plane without published ports (an internal
# network publishes none): kind reads the API endpoint from it instead of the port mapping. cluster-up.sh
# then writes the kubeconfig with the control-plane container's real address.
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
  --change 'LABEL desktop.docker.io/ports/6443/tcp=127.0.0.1:6443' \
  --change "LABEL k8slab.key=$key" "$cid" "$OFFLINE_NODE_IMAGE" >/dev/null
docker rm -f "$cid" >/dev/null; trap - EXIT
docker rmi "$OFFLINE_NODE_IMAGE-stage" >/dev/null 2>&1 || true
rm -rf "$CTX"
step "node image $OFFLINE_NODE_IMAGE ready ($(docker image inspect -f '{{.Size}}' "$OFFLINE_NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
