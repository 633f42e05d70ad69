#!/usr/bin/env bash
# Prepares this machine to run the offline kind cluster: docker engine + debootstrap present, a runc
# wrapper as docker's default runtime (drops CAP_SYS_RESOURCE when this VM lacks it, so `--privileged`
# kind nodes start), dockerd running. Idempotent; needs root (or sudo).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '\033[1m==> %s\033[0m  (%s)\n' "$*" "$(date +%H:%M:%S)"; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
[ "${K8SLAB_NO_DEBOOTSTRAP:-0}" = 1 ] && need_pkgs=("${need_pkgs[@]/debootstrap}")
if [ -n "${need_pkgs[*]// /}" ]; then
  say "installing ${need_pkgs[*]} from the machine's apt sources"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ${need_pkgs[*]}
fi

WRAPPER=/usr/local/sbin/runc-k8slab
if ! cmp -s "$HERE/files/runc-wrapper" "$WRAPPER" 2>/dev/null; then
  say "installing runc wrapper $WRAPPER"
  $SUDO install -m 0755 "$HERE/files/runc-wrapper" "$WRAPPER"
fi

# daemon.json: keep existing keys, set the wrapper as default runtime.
want="$(python3 - "$WRAPPER" <<'PY'
import json, os, sys
p = "/etc/docker/daemon.json"
cfg = {}
if os.path.exists(p):
    try: cfg = json.load(open(p))
    except Exception: cfg = {}
cfg.setdefault("runtimes", {})["k8slab-runc"] = {"path": sys.argv[1]}
cfg["default-runtime"] = "k8slab-runc"
print(json.dumps(cfg, indent=2, sort_keys=True))
PY
)"
changed=0
if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]; then
  say "writing /etc/docker/daemon.json (default runtime k8slab-runc)"
  $SUDO mkdir -p /etc/docker
  printf '%s\n' "$want" | $SUDO tee /etc/docker/daemon.json >/dev/null
  changed=1
fi

running() { docker info >/dev/null 2>&1; }
if running && [ "$changed" = 1 ]; then
  # A daemon started by us (pidfile) is restarted to pick up the runtime; systemd-managed via systemctl.
  if command -v systemctl >/dev/null && systemctl is-active -q docker 2>/dev/null; then
    $SUDO systemctl restart docker
  elif [ -f /var/run/docker.pid ]; then
    say "restarting dockerd to load the new runtime"
    $SUDO kill "$(cat /var/run/docker.pid)"; for _ in $(seq 1 30); do running || break; sleep 1; done
  fi
fi
if ! running; then
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker || true
  fi
fi
if ! running; then
  say "starting dockerd in the background (log: /var/log/k8slab-dockerd.log)"
  $SUDO setsid sh -c 'nohup dockerd >/var/log/k8slab-dockerd.log 2>&1 &' </dev/null
fi
for i in $(seq 1 60); do running && break; sleep 1; done
running || { echo "error: docker did not come up; see /var/log/k8slab-dockerd.log" >&2; exit 1; }
rt="$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)"
[ "$rt" = k8slab-runc ] || echo "warning: docker default runtime is '$rt', not k8slab-runc" >&2
# kind nodes need these for many pods (inotify) — best effort, harmless when already higher.
for kv in fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512; do
  k="${kv%%=*}"; v="${kv#*=}"
  [ "$(sysctl -n "$k" 2>/dev/null || echo 0)" -ge "$v" ] || $SUDO sysctl -qw "$kv" || true
done
say "docker ready (server $(docker version --format '{{.Server.Version}}'), runtime $rt)"
