#!/usr/bin/env bash
# `make verify`: every check the project has, in one go (kind's verify/all.sh). Keeps going after a failure and
# ends with ONE summary line: "verify: N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
cd "$ROOT"
passed=0; failed=0; failures=()

check() {  # check NAME COMMAND...
  local name="$1"; shift
  printf '==> %s\n' "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

shell_syntax() {
  local rc=0 f
  for f in .ci/run environment/*.sh environment/offline/*.sh; do
    [ -f "$f" ] && { bash -n "$f" || { echo "syntax error in $f"; rc=1; }; }
  done
  if command -v shellcheck >/dev/null; then
    shellcheck -S error .ci/run environment/*.sh environment/offline/*.sh || rc=1
  fi
  return $rc
}

make_help_complete() {  # every target of the Makefile has a description line in `make help`
  local targets missing
  targets="$(grep -oE '^[a-z][a-z_-]*:' Makefile | tr -d ':' | sort -u)"
  missing="$(for t in $targets; do make -s help | grep -qE "^  $t " || echo "$t"; done)"
  [ -z "$missing" ] || { echo "targets without a help line: $missing"; return 1; }
  make -s help | grep -q '(see ' && { echo "a target has no comment above it:"; make -s help | grep '(see '; return 1; }
  return 0
}

python_compiles() { "$PY" -m compileall -q graders tests bench >/dev/null; }
pinned_versions_parse() { "$PY" -c 'from graders import versions; v = versions.load(); assert v["KUBERNETES_VERSION"]'; }
no_cluster_diagnosis_fast() {  # with an empty kubeconfig, doctor must diagnose within 5 s and exit non-zero
  local t0 rc
  t0=$(date +%s)
  KUBECONFIG=/nonexistent/kubeconfig timeout 10 "$PY" -m graders.cli doctor >/dev/null; rc=$?
  [ $rc -ne 0 ] && [ $(( $(date +%s) - t0 )) -le 5 ]
}

check "shell scripts parse" shell_syntax
check "make help lists every target" make_help_complete
check "python compiles" python_compiles
check "versions.env parses" pinned_versions_parse
check "no-cluster diagnosis within 5 s" no_cluster_diagnosis_fast
check "unit tests" "$PY" -m pytest -p no:cacheprovider -q -m "not live" tests/unit
check "offline pipeline tests" "$PY" -m pytest -p no:cacheprovider -q -m "not live" tests/pipeline
if "$PY" -m graders.cluster >/dev/null 2>&1; then
  check "live tests" "$PY" -m pytest -p no:cacheprovider -q -m live tests/live
fi
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "verify: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
