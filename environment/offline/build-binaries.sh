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

# go_install NAME MODULE@VERSION PACKAGE: a module whose go.mod has no local replaces builds directly.
go_install() {
  local name="$1" modver="$2" pkg="$3"
  [ -x "$BIN_DIR/$name" ] && return 0
  step "building $name ($modver)"
  local gobin="$BUILD_DIR/gobin-$name"
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "$pkg@${modver#*@}"
  mv "$gobin"/* "$BIN_DIR/$name"; rmdir "$gobin"
}

build_addons() {
  go_install etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
  go_install coredns "github.com/coredns/coredns@$COREDNS_VERSION" github.com/coredns/coredns
  go_install kube-router "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  go_install crictl "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  go_install kind "sigs.k8s.io/kind@$KIND_VERSION" sigs.k8s.io/kind
  go_install metallb-controller "go.universe.tf/metallb@$METALLB_VERSION" go.universe.tf/metallb/controller
  go_install metallb-speaker "go.universe.tf/metallb@$METALLB_VERSION" go.universe.tf/metallb/speaker
  go_install traefik "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" github.com/traefik/traefik/v3/cmd/traefik
}

case "${1:-all}" in
  kubernetes) build_kubernetes ;;
  addons) build_addons ;;
  all) build_kubernetes; build_addons ;;
  *) die "usage: $0 [kubernetes|addons|all]" ;;
esac
step "binaries ready in $BIN_DIR"
