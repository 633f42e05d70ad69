#!/usr/bin/env bash
# Installs the pinned kind, kubectl and helm into ./bin (`make setup`); with `tools.sh mesh` and MESH=istio|linkerd,
# that mesh's own CLI instead (istioctl or linkerd: `make mesh-tools MESH=...`, optional, online). Idempotent: a tool
# already at the pinned version is kept. Downloads are sha256-verified against environment/versions.env; a checksum mismatch is an
# error. When the offline build cache (~/.cache/k8slab, $K8SLAB_CACHE) holds kind/kubectl built from source,
# those are linked instead of downloading. A download that fails (no internet) is reported in ONE line that
# points to the offline path, and setup goes on.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/environment/versions.env"
BIN="$ROOT/bin"
CACHE_BIN="${K8SLAB_CACHE:-$HOME/.cache/k8slab}/offline-$KUBERNETES_VERSION/bin"
OS="$(uname -s | tr '[:upper:]' '[:lower:]')"
ARCH="$(uname -m)"; case "$ARCH" in x86_64) ARCH=amd64 ;; aarch64|arm64) ARCH=arm64 ;; esac
mkdir -p "$BIN"
missing=()

say() { printf '==> %s\n' "$*"; }
stamp_ok() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
sha_of() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1 || shasum -a 256 "$1" | cut -d' ' -f1; }

# fetch URL DEST: download with bounded time and retries; returns non-zero on failure, prints nothing on failure.
fetch() { curl -fsSL --connect-timeout 10 --max-time 300 --retry 2 -o "$2" "$1" 2>/dev/null; }

# verify FILE KEY: the sha256 of FILE must equal ${KEY} from versions.env. A pin still marked UNVERIFIED (no source
# the project reaches had the digest) is refused unless K8SLAB_TRUST_UNPINNED=1, which prints the digest to pin.
verify() {
  local file="$1" key="$2" want="${!2:-}"
  if [ -z "$want" ]; then
    echo "error: environment/versions.env has no $key: refusing to install an unverified binary" >&2
    rm -f "$file"; exit 1
  fi
  local got; got="$(sha_of "$file")"
  case "$want" in UNVERIFIED*)
    if [ "${K8SLAB_TRUST_UNPINNED:-}" = 1 ]; then
      echo "warning: $key is not pinned yet; installing anyway (K8SLAB_TRUST_UNPINNED=1). Pin it once you trust it: $key=$got" >&2
      return 0
    fi
    echo "error: $key in environment/versions.env is not verified yet: compare $got with the release's .sha256 file and pin it ($key=$got), or set K8SLAB_TRUST_UNPINNED=1" >&2
    rm -f "$file"; exit 1;;
  esac
  if [ "$got" != "$want" ]; then
    echo "error: sha256 mismatch for $(basename "$file"): got $got, pinned $want ($key). Not installed." >&2
    rm -f "$file"; exit 1
  fi
}

# link_cached NAME VERSION: use the offline build's binary (built from source at the pinned version).
link_cached() {
  local name="$1" version="$2"
  [ -x "$CACHE_BIN/$name" ] || return 1
  ln -sf "$CACHE_BIN/$name" "$BIN/$name"
  echo "$version" > "$BIN/.$name.version"
  say "$name $version: linked from the offline build cache ($CACHE_BIN)"
}

install_binary() {  # install_binary NAME VERSION URL SHA_KEY
  local name="$1" version="$2" url="$3" key="$4"
  stamp_ok "$name" "$version" && { say "$name $version: already installed"; return 0; }
  link_cached "$name" "$version" && return 0
  local tmp="$BIN/.$name.download"
  if ! fetch "$url" "$tmp"; then
    rm -f "$tmp"; missing+=("$name"); return 0
  fi
  verify "$tmp" "$key"
  chmod +x "$tmp"; mv "$tmp" "$BIN/$name"; echo "$version" > "$BIN/.$name.version"
  say "$name $version: installed (sha256 verified)"
}

install_helm() {
  local version="$HELM_VERSION" key="HELM_SHA256_${OS}_${ARCH}"
  stamp_ok helm "$version" && { say "helm $version: already installed"; return 0; }
  local tmp="$BIN/.helm.tar.gz"
  if ! fetch "https://get.helm.sh/helm-$version-$OS-$ARCH.tar.gz" "$tmp"; then
    rm -f "$tmp"; missing+=("helm"); return 0
  fi
  verify "$tmp" "$key"
  tar -xzf "$tmp" -C "$BIN" --strip-components=1 "$OS-$ARCH/helm"
  rm -f "$tmp"; echo "$version" > "$BIN/.helm.version"
  say "helm $version: installed (sha256 verified)"
}

# install_mesh_cli: istioctl (MESH=istio) or linkerd (MESH=linkerd) at the pinned versions, for looking around in
# lab 06 (grading needs neither: the mesh is installed from Helm charts, graders/meshplan.py).
install_mesh_cli() {
  local file
  case "${MESH:-}" in
    istio)
      local plat="$OS-$ARCH"; [ "$OS" = darwin ] && plat="osx$([ "$ARCH" = arm64 ] && echo -arm64)"
      file="istioctl-$ISTIO_VERSION-$plat.tar.gz"
      stamp_ok istioctl "$ISTIO_VERSION" && { say "istioctl $ISTIO_VERSION: already installed"; return 0; }
      if ! fetch "https://github.com/istio/istio/releases/download/$ISTIO_VERSION/$file" "$BIN/.istioctl.tgz"; then
        rm -f "$BIN/.istioctl.tgz"; echo "error: could not download $file (no internet access?)" >&2; exit 1
      fi
      verify "$BIN/.istioctl.tgz" "ISTIOCTL_SHA256_${OS}_${ARCH}"
      tar -xzf "$BIN/.istioctl.tgz" -C "$BIN" istioctl && rm -f "$BIN/.istioctl.tgz"
      echo "$ISTIO_VERSION" > "$BIN/.istioctl.version"; say "istioctl $ISTIO_VERSION: installed";;
    linkerd)
      local plat="$OS-$ARCH"; [ "$plat" = darwin-amd64 ] && plat=darwin
      file="linkerd2-cli-$LINKERD_VERSION-$plat"
      install_binary linkerd "$LINKERD_VERSION" \
        "https://github.com/linkerd/linkerd2/releases/download/$LINKERD_VERSION/$file" "LINKERD_CLI_SHA256_${OS}_${ARCH}"
      [ ${#missing[@]} -eq 0 ] || { echo "error: could not download $file (no internet access?)" >&2; exit 1; };;
    *) echo "usage: MESH=istio|linkerd environment/tools.sh mesh" >&2; exit 2;;
  esac
}
if [ "${1:-}" = mesh ]; then
  install_mesh_cli
  exit 0
fi

install_binary kind "$KIND_VERSION" "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$OS-$ARCH" "KIND_SHA256_${OS}_${ARCH}"
install_binary kubectl "$KUBERNETES_VERSION" "https://dl.k8s.io/release/$KUBERNETES_VERSION/bin/$OS/$ARCH/kubectl" \
  "KUBECTL_SHA256_${OS}_${ARCH}"
install_helm

if [ ${#missing[@]} -gt 0 ]; then
  echo "warning: could not download ${missing[*]} (no internet access?) — use the offline cluster instead: make cluster OFFLINE=1"
fi
