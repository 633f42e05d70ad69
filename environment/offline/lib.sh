#!/usr/bin/env bash
# Shared helpers for the offline build scripts: pinned versions, cache paths, progress lines.
set -euo pipefail
OFFLINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$OFFLINE_DIR/../.." && pwd)"
# shellcheck disable=SC1091
source "$REPO_ROOT/environment/versions.env"
CACHE_ROOT="${K8SLAB_CACHE:-$HOME/.cache/k8slab}"
# Keyed by the pinned Kubernetes version: a version bump builds into a fresh folder.
BUILD_DIR="$CACHE_ROOT/offline-$KUBERNETES_VERSION"
BIN_DIR="$BUILD_DIR/bin"
mkdir -p "$BIN_DIR"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

step() { printf '\033[1m==> %s\033[0m  (%s)\n' "$*" "$(date +%H:%M:%S)"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

LOG_DIR="$CACHE_ROOT/logs"; mkdir -p "$LOG_DIR"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# The Debian mirror this machine's apt already uses (never hard-coded): first bookworm "main" URI
# from /etc/apt/sources.list (one-line format) or /etc/apt/sources.list.d/*.sources (deb822).
debian_mirror() {
  [ -n "${K8SLAB_DEBIAN_MIRROR:-}" ] && { echo "$K8SLAB_DEBIAN_MIRROR"; return; }
  python3 - <<'PY'
import glob, re, sys
cands = []
for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try: lines = open(p).read().splitlines()
    except OSError: continue
    for l in lines:
        m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", l)
        if m: cands.append((m.group(2), [m.group(3)], m.group(4).split()))
for p in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(p).read()):
        f = {}
        for l in block.splitlines():
            if l.startswith("#") or ":" not in l: continue
            k, v = l.split(":", 1); f[k.strip().lower()] = v.split()
        if "deb" in f.get("types", []) and f.get("uris"):
            for u in f["uris"]: cands.append((u, f.get("suites", []), f.get("components", [])))
for uri, suites, comps in cands:
    if "bookworm" in suites and "main" in comps and "security" not in uri:
        print(uri.rstrip("/")); sys.exit(0)
sys.exit("no Debian bookworm main source found in /etc/apt/sources.list*; set K8SLAB_DEBIAN_MIRROR")
PY
}

# select_cni CNI: the cluster, docker network and build of each offline CNI (`make cluster OFFLINE=1 CNI=...`,
# issue 14). kube-router is the course cluster "k8slab"; each other one is a second cluster with its own name and
# internal network, so two can run side by side for comparison and the course cluster is never touched.
# Sets CLUSTER, CNI_BUILD (the extra build-binaries.sh target, or "") and, for a second cluster, K8SLAB_NETWORK*.
select_cni() {
  CNI_BUILD=""
  case "$1" in
    kube-router) CLUSTER=k8slab; return 0 ;;
    flannel) CLUSTER=k8slab-flannel; CNI_BUILD=flannel
      K8SLAB_NETWORK="$K8SLAB_FLANNEL_NETWORK" K8SLAB_NETWORK_SUBNET="$K8SLAB_FLANNEL_NETWORK_SUBNET"
      K8SLAB_NETWORK_IP_RANGE="$K8SLAB_FLANNEL_NETWORK_IP_RANGE" ;;
    flannel+kube-router) CLUSTER=k8slab-flannel-kube-router; CNI_BUILD=flannel
      K8SLAB_NETWORK="$K8SLAB_FLANNEL_KR_NETWORK" K8SLAB_NETWORK_SUBNET="$K8SLAB_FLANNEL_KR_NETWORK_SUBNET"
      K8SLAB_NETWORK_IP_RANGE="$K8SLAB_FLANNEL_KR_NETWORK_IP_RANGE" ;;
    cilium) CLUSTER=k8slab-cilium; CNI_BUILD=cilium
      K8SLAB_NETWORK="$K8SLAB_CILIUM_NETWORK" K8SLAB_NETWORK_SUBNET="$K8SLAB_CILIUM_NETWORK_SUBNET"
      K8SLAB_NETWORK_IP_RANGE="$K8SLAB_CILIUM_NETWORK_IP_RANGE" ;;
    *) return 1 ;;
  esac
}
OFFLINE_CNIS="kube-router, flannel, flannel+kube-router or cilium"

# load_images CLUSTER TAG...: each local docker image a node of kind cluster CLUSTER lacks, imported into its
# containerd (cluster-up.sh for add-ons added since the node image was made; build-grader-image.sh for the grader).
ctr_ref() { case "${1%%/*}" in *.*|*:*|localhost) echo "$1" ;; *) [[ "$1" == */* ]] && echo "docker.io/$1" || echo "docker.io/library/$1" ;; esac; }
load_images() {
  local cluster="$1"; shift
  local node tag have missing
  for node in $(docker ps --format '{{.Names}}' --filter "label=io.x-k8s.kind.cluster=$cluster"); do
    have="$(docker exec "$node" ctr -n k8s.io images ls -q 2>/dev/null)" || continue
    missing=()
    for tag in "$@"; do
      [ -n "$tag" ] && ! grep -qxF "$(ctr_ref "$tag")" <<<"$have" && missing+=("$tag")
    done
    [ ${#missing[@]} -eq 0 ] && continue
    step "loading ${#missing[@]} new image(s) into $node: ${missing[*]}"
    docker save "${missing[@]}" | docker exec -i "$node" ctr -n k8s.io images import - >/dev/null
    # Pinned, so kubelet's image GC never removes what no registry can restore. The node's ctr (containerd 1.6,
    # Debian) has no `import --label`: label after the import.
    for tag in "${missing[@]}"; do
      docker exec "$node" ctr -n k8s.io images label "$(ctr_ref "$tag")" io.cri-containerd.pinned=pinned >/dev/null
    done
  done
}

cat_yaml() { local f; for f in "$@"; do echo "---"; cat "$f"; echo; done; }

# render_manifests DIR: our add-on manifests with @KEY@ replaced by the versions.env value.
render_manifests() {
  local out="$1"; mkdir -p "$out"
  local f
  # CRDs are read from the pinned Go modules (not stored in this repo).
  local mdir
  mdir="$(go mod download -json "go.universe.tf/metallb@$METALLB_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cat_yaml "$mdir"/config/crd/bases/*.yaml > "$out/20-metallb-crds.yaml"
  mdir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cat_yaml "$mdir"/config/crd/standard/*.yaml > "$out/05-gateway-api-crds.yaml"
  # Traefik's own CRDs (Middleware, ...: rate limits and redirects on an Ingress), as its release documents them.
  mdir="$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cat_yaml "$mdir"/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml > "$out/06-traefik-crds.yaml"
  # cert-manager's CRDs (Helm-templated in deploy/crds): fixed label values, template comment lines dropped.
  mdir="$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cat_yaml "$mdir"/deploy/crds/crd-*.yaml | sed -e "s/'{{ template \"cert-manager.name\" . }}'/cert-manager/" \
    -e "s/'{{ .Release.Name }}'/cert-manager/" | grep -v '{{' > "$out/49-cert-manager-crds.yaml"
  # manifests/cni/ (other CNIs, issue 14) renders into $out/cni/: cluster-up.sh applies top-level files by name only.
  mkdir -p "$out/cni"
  for f in "$OFFLINE_DIR"/manifests/*.yaml "$OFFLINE_DIR"/manifests/cni/*.yaml; do
    python3 - "$REPO_ROOT/environment/versions.env" "$f" > "$out/${f#"$OFFLINE_DIR/manifests/"}" <<'PY'
import re, sys
env = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines() if re.match(r"^[A-Z0-9_]+=", l))
def sub(m):
    if m.group(1) not in env: sys.exit("unknown placeholder @%s@ in %s" % (m.group(1), sys.argv[2]))
    return env[m.group(1)]
sys.stdout.write(re.sub(r"@([A-Z0-9_]+)@", sub, open(sys.argv[2]).read()))
PY
  done
}

# render_cilium OUT: Cilium's own Helm chart (install/kubernetes/cilium in the pinned module) rendered with
# manifests/cni/cilium-values.yaml (already rendered into $MANIFESTS/cni by render_manifests) by the Helm that
# build-binaries.sh cilium built: what upstream's `helm install` applies, with nothing pulled.
render_cilium() {
  local out="$1" dir
  dir="$(GOMODCACHE="$CACHE_ROOT/cilium-go/mod" GOFLAGS=-mod=mod go mod download -json "github.com/cilium/cilium@v$CILIUM_VERSION" \
         | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  "$BIN_DIR/helm" template cilium "$dir/install/kubernetes/cilium" --namespace kube-system \
    --kube-version "$KUBERNETES_VERSION" -f "$(dirname "$out")/cilium-values.yaml" > "$out.tmp"
  mv "$out.tmp" "$out"
}
