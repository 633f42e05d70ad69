#!/usr/bin/env bash
# Builds every Go binary the offline cluster needs from the Go module proxy, into the cache.
# Kubernetes' own go.mod replaces its staging modules with local paths, so `go install pkg@version`
# refuses it; a generated wrapper module replaces them with their published v0.x versions instead.
source "$(dirname "$0")/lib.sh"

build_kubernetes() {
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  local mod="$BUILD_DIR/gomod/kubernetes"
  mkdir -p "$mod"
  if [ ! -f "$mod/go.mod" ]; then
    step "Kubernetes $KUBERNETES_VERSION: resolving modules (staging at $staging)"
    (cd "$mod"
     printf 'module k8slab.local/kubernetes-build\n\ngo 1.24.0\n' > go.mod
     # Read the staging list from Kubernetes' own go.mod so a version bump needs no edit here.
     curl_mod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
     sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$curl_mod" | while read -r m; do
       go mod edit -replace "$m=$m@$staging"
     done
     go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
     go get "k8s.io/kubernetes/cmd/kubelet@$KUBERNETES_VERSION" >/dev/null)
  fi
  local v="k8s.io/component-base/version" c="k8s.io/client-go/pkg/version" ld=""
  for p in $v $c; do
    ld="$ld -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z -X $p.gitCommit=k8slab-offline"
  done
  local cmds="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"
  for cmd in $cmds agnhost; do
    [ -x "$BIN_DIR/$cmd" ] && continue
    local pkg="k8s.io/kubernetes/cmd/$cmd"; [ "$cmd" = agnhost ] && pkg="k8s.io/kubernetes/test/images/agnhost"
    step "building $cmd"
    (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w $ld" -o "$BIN_DIR/$cmd.tmp" "$pkg")
    mv "$BIN_DIR/$cmd.tmp" "$BIN_DIR/$cmd"
  done
}

# go_install NAME MODULE@VERSION PACKAGE: a module whose go.mod has no replace directives builds directly.
go_install() {
  local name="$1" modver="$2" pkg="$3"
  [ -x "$BIN_DIR/$name" ] && return 0
  [ "${K8SLAB_RESOLVE_ONLY:-0}" = 1 ] && return 0
  step "building $name ($modver)"
  local gobin="$BUILD_DIR/gobin-$name"
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w ${4:-}" "$pkg@${modver#*@}" 2>&1 | tail -20
  mv "$gobin"/* "$BIN_DIR/$name"; rmdir "$gobin"
}

# wrapper_module NAME MODULE VERSION [PACKAGE]: for modules whose go.mod has replace directives (`go install
# pkg@v` refuses them), a generated wrapper module in $BUILD_DIR/gomod/NAME that requires MODULE@VERSION and copies
# its non-local replaces and excludes; local ones (monorepo siblings, e.g. etcd's ../api) become
# "<path> => <path>@VERSION"; PACKAGE's dependencies are resolved with `go get`. Once per version (an empty
# .ready is a wrapper made before the version was recorded).
wrapper_module() {
  local name="$1" module="$2" version="$3" pkg="${4:-}"
  local mod="$BUILD_DIR/gomod/$name"
  [ -f "$mod/.ready" ] && case "$(cat "$mod/.ready")" in ""|"$module@$version") return 0 ;; esac
  step "$name $version: resolving modules"
  rm -rf "$mod"; mkdir -p "$mod"
  local gomod
  gomod="$(cd "$mod" && go mod download -json "$module@$version" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
  (cd "$mod"
   printf 'module k8slab.local/%s-build\n\ngo 1.24.0\n' "$name" > go.mod
   go mod edit -json "$gomod" | python3 -c '
import json, sys
d = json.load(sys.stdin); ver = sys.argv[1]
for r in d.get("Replace") or []:
    old, new = r["Old"], r["New"]
    o = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    if new["Path"].startswith((".", "/")):
        if "FORBIDDEN" in new["Path"]: continue
        print("-replace=%s=%s@%s" % (o, old["Path"], ver))
    else:
        print("-replace=%s=%s@%s" % (o, new["Path"], new["Version"]))
for e in d.get("Exclude") or []:
    print("-exclude=%s@%s" % (e["Path"], e["Version"]))
' "$version" | xargs -r go mod edit
   go mod edit -require "$module@$version"
   [ -z "$pkg" ] || go get "$pkg@$version" >/dev/null)
  echo "$module@$version" > "$mod/.ready"
}

# wrapper_build NAME MODULE VERSION PACKAGE [LDFLAGS]: a package of a module with replace directives.
wrapper_build() {
  local name="$1" module="$2" version="$3" pkg="$4" ld="${5:-}"
  [ -x "$BIN_DIR/$name" ] && return 0
  wrapper_module "$name" "$module" "$version" "$pkg"
  [ "${K8SLAB_RESOLVE_ONLY:-0}" = 1 ] && return 0
  step "building $name ($module@$version)"
  (cd "$BUILD_DIR/gomod/$name" && go build -mod=mod -trimpath -ldflags "-s -w $ld" -o "$BIN_DIR/$name.tmp" "$pkg")
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
}

# Our own small programs (environment/offline/src/*), e.g. the pod sandbox "pause".
build_local() {
  local name="$1"
  [ -x "$BIN_DIR/$name" ] && [ "$BIN_DIR/$name" -nt "$OFFLINE_DIR/src/$name/main.go" ] && return 0
  [ "${K8SLAB_RESOLVE_ONLY:-0}" = 1 ] && return 0
  step "building $name (environment/offline/src/$name)"
  (cd "$OFFLINE_DIR/src/$name" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/$name" .)
}

# cert-manager's controller binary is in the nested module .../cmd/controller, which the Go proxy does not serve;
# only the root module is. Our own main (src/cert-manager-controller) wires the root module's exported control
# loops, built inside a wrapper module of the root module.
build_cert_manager() {
  local name=cert-manager-controller module=github.com/cert-manager/cert-manager
  local src="$OFFLINE_DIR/src/$name/main.go" mod="$BUILD_DIR/gomod/$name"
  [ -x "$BIN_DIR/$name" ] && [ "$BIN_DIR/$name" -nt "$src" ] && return 0
  wrapper_module "$name" "$module" "$CERT_MANAGER_VERSION"
  [ "${K8SLAB_RESOLVE_ONLY:-0}" = 1 ] && return 0
  step "building $name ($module@$CERT_MANAGER_VERSION, environment/offline/src/$name)"
  cp "$src" "$mod/main.go"
  # pkg/util/version.go reports this as the controller's version (User-Agent, logs).
  (cd "$mod" && go build -mod=mod -trimpath \
     -ldflags "-s -w -X $module/pkg/util.AppVersion=$CERT_MANAGER_VERSION -X $module/pkg/util.AppGitCommit=k8slab-offline" \
     -o "$BIN_DIR/$name.tmp" .)
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
}

build_core_addons() {
  build_local pause
  wrapper_build etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  wrapper_build etcdctl go.etcd.io/etcd/etcdctl/v3 "$ETCD_VERSION" go.etcd.io/etcd/etcdctl/v3
  go_install coredns "github.com/coredns/coredns@$COREDNS_VERSION" github.com/coredns/coredns
  go_install kube-router "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
  go_install crictl "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  go_install kind "sigs.k8s.io/kind@$KIND_VERSION" sigs.k8s.io/kind
}

build_lb_ingress() {
  go_install metallb-controller "go.universe.tf/metallb@$METALLB_VERSION" go.universe.tf/metallb/controller
  go_install metallb-speaker "go.universe.tf/metallb@$METALLB_VERSION" go.universe.tf/metallb/speaker
  wrapper_build traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" github.com/traefik/traefik/v3/cmd/traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
}

build_addons() { build_core_addons; build_lb_ingress; build_cert_manager; }

# Flannel (issue 14, `make cluster OFFLINE=1 CNI=flannel`): only on request, never part of `all`, so the default
# cluster's build is unchanged. flanneld's main.go imports every backend, and the tencentvpc one needs
# github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc, which the Go proxy does not serve: flannel's own
# main.go, minus that import, is built inside a wrapper module of the root module (like cert-manager above). The udp
# backend goes too: on amd64 it needs cgo (upstream's Makefile enables cgo for it alone), our builds are static.
# The course uses vxlan; tencentvpc and udp are not offered offline.
# Its CNI plugin's module (github.com/flannel-io/cni-plugin) is not served either; containernetworking/plugins v0.9.1
# is the last release that still ships plugins/meta/flannel. The bridge, host-local, loopback and portmap plugins
# it delegates to are already in the node image (Debian's containernetworking-plugins, /opt/cni/bin).
build_flannel() {
  local name=flanneld module=github.com/flannel-io/flannel mod="$BUILD_DIR/gomod/flanneld"
  if [ ! -x "$BIN_DIR/$name" ]; then
    wrapper_module "$name" "$module" "$FLANNEL_VERSION"
    if [ "${K8SLAB_RESOLVE_ONLY:-0}" != 1 ]; then
      step "building $name ($module@$FLANNEL_VERSION, without the tencentvpc and udp backends)"
      local dir; dir="$(cd "$mod" && go mod download -json "$module@$FLANNEL_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
      grep -vE '"github.com/flannel-io/flannel/pkg/backend/(tencentvpc|udp)"' "$dir/main.go" > "$mod/main.go"
      (cd "$mod" && go build -mod=mod -trimpath \
         -ldflags "-s -w -X $module/pkg/version.Version=$FLANNEL_VERSION" -o "$BIN_DIR/$name.tmp" .)
      mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
    fi
  fi
  go_install cni-flannel "github.com/containernetworking/plugins@$FLANNEL_CNI_PLUGINS_VERSION" \
    github.com/containernetworking/plugins/plugins/meta/flannel \
    "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$FLANNEL_CNI_PLUGINS_VERSION"
}

# Cilium (issue 14, `make cluster OFFLINE=1 CNI=cilium`): only on request, never part of `all`. Its go.mod replaces
# gobgp/v3 and controller-tools with forks the proxy serves, so every binary is built in one wrapper module, with its
# own module and build caches (630 MB of modules, 2.8 GB of build cache: kept apart from the course's). The agent's
# image holds what upstream's cilium image holds minus Envoy (C++, not buildable here: no L7 policy) and Hubble's
# CLI; the operator is upstream's "generic" variant (tag ipam_provider_operator); Helm renders the chart from the
# module (cluster-up.sh), as upstream installs it. Measured: see environment/offline/MEASUREMENTS.md.
build_cilium() {
  export GOMODCACHE="$CACHE_ROOT/cilium-go/mod" GOCACHE="$CACHE_ROOT/cilium-go/build"
  local module=github.com/cilium/cilium v="v$CILIUM_VERSION" mod="$BUILD_DIR/gomod/cilium"
  local ld="-X '$module/pkg/version.ciliumVersion=$CILIUM_VERSION k8slab-offline 1970-01-01T00:00:00Z'"
  wrapper_module cilium "$module" "$v" "$module/daemon"
  [ "${K8SLAB_RESOLVE_ONLY:-0}" = 1 ] && return 0
  local spec name pkg tags
  for spec in cilium-agent:daemon cilium-dbg:cilium-dbg cilium-health:cilium-health \
              cilium-health-responder:cilium-health/responder cilium-mount:tools/mount \
              cilium-sysctlfix:tools/sysctlfix cilium-cni:plugins/cilium-cni cilium-operator-generic:operator; do
    name="${spec%%:*}" pkg="$module/${spec#*:}" tags=osusergo
    [ -x "$BIN_DIR/$name" ] && continue
    [ "$name" = cilium-operator-generic ] && tags=osusergo,ipam_provider_operator
    step "building $name ($module@$v)"
    (cd "$mod" && go build -mod=mod -trimpath -tags "$tags" -ldflags "-s -w $ld" -o "$BIN_DIR/$name.tmp" "$pkg")
    mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
  done
  # The BPF sources the agent compiles at start-up (upstream's `make install-bpf`: /var/lib/cilium/bpf) and the
  # DaemonSet's init scripts, as one tar that build-images.sh unpacks into the image's root.
  if [ ! -f "$BIN_DIR/cilium-files.tar" ]; then
    local dir tmp="$BUILD_DIR/cilium-files"
    dir="$(cd "$mod" && go mod download -json "$module@$v" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$tmp"; mkdir -p "$tmp/var/lib/cilium"
    cp -r "$dir/bpf" "$tmp/var/lib/cilium/bpf"
    for f in images/cilium/init-container.sh plugins/cilium-cni/install-plugin.sh plugins/cilium-cni/cni-uninstall.sh; do
      cp "$dir/$f" "$tmp/"
    done
    chmod -R u+w,go-w "$tmp"; chmod 0755 "$tmp"/*.sh
    tar -C "$tmp" --owner=0 --group=0 -cf "$BIN_DIR/cilium-files.tar.tmp" .
    mv "$BIN_DIR/cilium-files.tar.tmp" "$BIN_DIR/cilium-files.tar"; rm -rf "$tmp"
  fi
  go_install helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm
}

case "${1:-all}" in
  kubernetes) build_kubernetes ;;
  addons) build_addons ;;
  core-addons) build_core_addons ;;
  lb-ingress) build_lb_ingress ;;
  cert-manager) build_cert_manager ;;
  flannel) build_flannel ;;
  cilium) build_cilium ;;
  all) build_kubernetes; build_addons ;;
  *) die "usage: $0 [kubernetes|addons|core-addons|lb-ingress|cert-manager|flannel|cilium|all]" ;;
esac
step "binaries ready in $BIN_DIR"
