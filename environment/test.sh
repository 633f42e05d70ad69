#!/usr/bin/env bash
# `make test`: the project's own tests. First everything that needs no cluster (unit, offline pipeline), then the
# live tests (`-m live`) when the kind-k8slab cluster answers. In CI (CI=true) a cluster MUST answer: the live
# tests are then required, and no test collected is a failure, not a pass.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
cd "$ROOT"
say() { printf '\n\033[1m==> %s\033[0m  (%s)\n' "$*" "$(date +%H:%M:%S)"; }
in_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
# CI minutes left now (K8SLAB_CI_MINUTES_LEFT was measured when this script started); 999 outside CI
minutes_left() { echo $(( ${K8SLAB_CI_MINUTES_LEFT:-999} - SECONDS / 60 )); }

# pytest_stage NAME ARGS...: run pytest; exit 5 (nothing collected) is reported as such, never as a pass.
pytest_stage() {
  local name="$1"; shift
  "$PY" -m pytest -p no:cacheprovider "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then
    echo "error: $name: pytest collected no tests ($*)" >&2
  fi
  return $rc
}

# tests/unit and tests/pipeline each have their own conftest.py: one pytest run per directory.
say "unit tests (no cluster needed)"
pytest_stage "unit tests" -m "not live" tests/unit || exit $?
say "offline pipeline tests (nbgrader, no cluster needed)"
pytest_stage "offline pipeline tests" -m "not live" tests/pipeline || exit $?

say "live tests (real cluster, real traffic)"
if in_ci; then
  export K8SLAB_REQUIRE_CLUSTER=1
elif ! reason="$("$PY" -m graders.cluster 2>&1)"; then
  echo "LIVE TESTS SKIPPED (one loud line): $reason" | head -1
  echo "  create a cluster with \`make cluster\` (or \`make cluster OFFLINE=1\`), then run \`make test\` again"
  exit 0
fi
# CI gives a run 90 minutes. On a cold machine the offline build alone takes ~60-77 of them, so .ci/run passes the
# minutes left (K8SLAB_CI_MINUTES_LEFT); with too few for the whole live tier, run the smallest real proof (the
# cluster tests and lab 00 end to end) and say loudly what was left out.
LIVE_ARGS=(); PIPELINE_ALLOWED=1
LATER_STAGES_MIN=18
# Lab 02 compares two data planes (issue 14): in CI its second cluster (Flannel) is started for its own stage after
# the live tier and deleted after it (three more nodes would slow every other stage on two cores). Measured
# 2026-12-04: the Flannel cluster 3 min from a warm cache, the lab 02 live tests 7.5 min (43 passed, the notebook
# top to bottom included; ~4 min of it a notebook cell that hung, fixed since), its nbgrader pipeline 3.5 min,
# deleting the cluster 10 s. 2026-12-05, with exercise mtu-cost added: the Flannel cluster 71 s, the live tests
# 4.4 min (55 passed), the pipeline 3.7 min. Outside CI, lab 02's live tests run in the live tier when a second
# cluster answers, and skip saying which to start when none does.
LAB02_STAGE=0; LAB02_STAGE_MIN=13
if in_ci && [ "${K8SLAB_CI_LAB02:-1}" = 1 ]; then LAB02_STAGE=1; LATER_STAGES_MIN=$(( LATER_STAGES_MIN + LAB02_STAGE_MIN )); fi
# The parallel autograder's live test (issue 15), in the pipeline stage; its minutes are kept from the live tier's
# deadline too. Measured 2026-12-05: 14.8 min for labs 03 and 05 with a class of 6 each and a malicious one (lab 03
# serial 5.4 min, --parallel 3 3.1 min; lab 05 serial 4.1, --parallel 3 2.3 min; the rest building the courses and
# the feedback), 17.5 min in a second run; `make grader-image` 1.3 min. With the class of 12 (6 answers): 18.8 min
# (lab 03 serial 7 in 5.3 min, Jobs 13 in 5.4; lab 05 serial 7 in 3.8, Jobs 13 in 3.6). Labs 03 and 05 leave the
# serial pipeline when it runs (~6 min saved there).
# A class of 12 per lab (issue 15's "done when"): 6 different answers, each handed in by two students (twins graded
# by the Jobs at the same time, each answer once by the serial path for the comparison).
PARALLEL_CLASS="${K8SLAB_PARALLEL_CLASS:-12}"; PARALLEL_DISTINCT="${K8SLAB_PARALLEL_DISTINCT:-6}"
PARALLEL_N="${K8SLAB_PARALLEL_N:-3}"; PARALLEL_STAGE_MIN=21
if in_ci && [ -n "${K8SLAB_PARALLEL_LABS-x}" ]; then LATER_STAGES_MIN=$(( LATER_STAGES_MIN + PARALLEL_STAGE_MIN - 6 )); fi
# The live tier alone (399 cases, five labs) took 51.6 min on 2026-12-03 (37.5 min for 369 cases the stop before);
# the pipeline and browser stages shrink below when the minutes left would not cover them.
if [ -n "${K8SLAB_CI_MINUTES_LEFT:-}" ] && [ "${K8SLAB_CI_MINUTES_LEFT}" -lt 75 ]; then
  echo "LIVE TIER REDUCED: only ${K8SLAB_CI_MINUTES_LEFT} min left after the cluster build (cold cache);" \
       "running tests/live for 00-orientation only, no live pipeline. A warm-cache run covers every lab."
  LIVE_ARGS=(--lab 00-orientation); PIPELINE_ALLOWED=0
  if [ "$LAB02_STAGE" = 1 ]; then
    echo "LAB 02 STAGE SKIPPED: no time for a second cluster after a cold build"
    LAB02_STAGE=0; LATER_STAGES_MIN=$(( LATER_STAGES_MIN - LAB02_STAGE_MIN ))
  fi
fi
# The live tier must leave the stages after it their minimum (lab 00's pipeline and browser tests, ~12 min): past
# that deadline, live cases not yet started are skipped and counted loudly (graders/pytest_plugin.py).
if [ -n "${K8SLAB_CI_MINUTES_LEFT:-}" ]; then
  export K8SLAB_TEST_DEADLINE=$(( $(date +%s) + ($(minutes_left) - LATER_STAGES_MIN) * 60 ))
  echo "live tests may start until $(date -d "@$K8SLAB_TEST_DEADLINE" +%H:%M:%S) ($LATER_STAGES_MIN min kept for the stages after)"
fi
pytest_stage "live tests" -m live tests/live "${LIVE_ARGS[@]}" || exit $?
unset K8SLAB_TEST_DEADLINE
if [ "$LAB02_STAGE" = 1 ]; then
  say "lab 02 on two data planes: a second cluster (Flannel, VXLAN, no policy) beside kube-router"
  if [ "$(minutes_left)" -lt $(( LAB02_STAGE_MIN + 12 )) ]; then
    echo "LAB 02 STAGE SKIPPED: $(minutes_left) min left, it needs ~$LAB02_STAGE_MIN and the stages after it ~12"
  else
    make cluster OFFLINE=1 CNI=flannel || exit $?
    K8SLAB_REQUIRE_SECOND_CLUSTER=1 pytest_stage "lab 02 live tests" -m live tests/live --lab 02-cni
    rc=$?
    # its nbgrader pipeline too, while the second cluster runs (the safe autograder grants on both clusters)
    if [ $rc -eq 0 ] && [ "$PIPELINE_ALLOWED" = 1 ]; then
      K8SLAB_REQUIRE_SECOND_CLUSTER=1 pytest_stage "lab 02 live pipeline" -m live tests/pipeline/test_course_live.py \
        --lab 02-cni
      rc=$?
    fi
    make cluster-down OFFLINE=1 CNI=flannel || echo "warning: could not delete the Flannel cluster"
    [ $rc -eq 0 ] || exit $rc
  fi
fi
if [ "$PIPELINE_ALLOWED" = 1 ]; then
  say "live pipeline tests (nbgrader against the cluster)"
  # Every lab with a notebook: solution full, stub 0, a mistake partial with its message, grades CSV. 02-cni's runs
  # in the lab 02 stage above, while its second cluster is up; 06-service-mesh is not listed: it needs a mesh, which
  # this cluster cannot have (tests/live/test_mesh_lab_live.py asserts that every one of its checks says so instead).
  PIPELINE_LABS="${K8SLAB_PIPELINE_LABS:-00-orientation 01-pod-network 03-services 04-ingress 05-network-policy}"
  # The parallel autograder (issue 15) first: a generated class of labs 03 and 05 (the solution, the last known
  # mistake, the starter, alternatives, more mistakes; K8SLAB_PARALLEL_CLASS each, plus a malicious one) graded
  # serially and as grading Jobs PARALLEL_N at once, through the outside relay: same grades, nothing left. It
  # covers what the serial pipeline test checks for those labs (solution full, starter 0, a mistake's message in
  # its feedback, the malicious one 0), so the serial pipeline then skips them.
  PARALLEL_LABS="${K8SLAB_PARALLEL_LABS-03-services 05-network-policy}"
  if [ -n "$PARALLEL_LABS" ] && [ "$(minutes_left)" -lt $(( PARALLEL_STAGE_MIN + 12 )) ]; then
    echo "PARALLEL AUTOGRADE LIVE TEST SKIPPED: $(minutes_left) min left, it needs ~$PARALLEL_STAGE_MIN and the" \
         "stages after it ~12; labs 03 and 05 go through the serial pipeline instead"
    PARALLEL_LABS=""
  fi
  if [ -n "$PARALLEL_LABS" ]; then
    say "parallel autograde (grading Jobs, $PARALLEL_N at once, a class of $PARALLEL_CLASS per lab, $PARALLEL_DISTINCT" \
        "different answers): $PARALLEL_LABS"
    make grader-image || exit $?
    plab_args=(); for lab in $PARALLEL_LABS; do plab_args+=(--lab "$lab"); done
    K8SLAB_REQUIRE_GRADER_IMAGE=1 K8SLAB_PARALLEL_CLASS=$PARALLEL_CLASS K8SLAB_PARALLEL_N=$PARALLEL_N \
      K8SLAB_PARALLEL_DISTINCT=$PARALLEL_DISTINCT \
      pytest_stage "parallel autograde live" -m live tests/pipeline/test_course_parallel_live.py "${plab_args[@]}" \
      || exit $?
    kept=""; for lab in $PIPELINE_LABS; do case " $PARALLEL_LABS " in *" $lab "*) ;; *) kept="$kept $lab" ;; esac; done
    PIPELINE_LABS="${kept# }"
    # The grading image is in the nodes now: the serial pipeline's labs go through the parallel path as well
    # (issue 15: the pipeline through the Jobs, so that more labs fit CI).
    export K8SLAB_PIPELINE_PARALLEL=$PARALLEL_N
  else
    echo "PARALLEL AUTOGRADE LIVE TEST NOT RUN (K8SLAB_PARALLEL_LABS is empty, or no time: see above)"
  fi
  # Measured 2026-12-03 with one grading process per submission: 00 2.2 min, 01 3.8, 03 3.2, 04 5.4, 05 2.7, the
  # malicious submission 1.0: ~19 min for all, then at least ~9 min of browser tests. With less CI time left than
  # that, lab 04 (the longest: eight exercises, Ingress and Gateway API); with less still, the quickest real proof
  # (lab 00). Through the Jobs (K8SLAB_PIPELINE_PARALLEL, 2026-12-05): 00 1.0 min, 01 1.8, 04 4.1, malicious 0.8.
  # Through the Jobs the three labs take ~8 min, not ~12: the reductions below start 6 min later.
  JOBS_SAVE=0; [ -n "${K8SLAB_PIPELINE_PARALLEL:-}" ] && JOBS_SAVE=6
  if [ "$(minutes_left)" -lt 12 ]; then
    echo "LIVE PIPELINE SKIPPED: $(minutes_left) min left; the browser tests need the rest"; PIPELINE_LABS=""
  elif [ "$(minutes_left)" -lt $(( 19 - JOBS_SAVE )) ]; then
    echo "LIVE PIPELINE REDUCED: $(minutes_left) min left; 00-orientation only"; PIPELINE_LABS="00-orientation"
  elif [ "$(minutes_left)" -lt $(( 24 - JOBS_SAVE )) ]; then
    echo "LIVE PIPELINE REDUCED: $(minutes_left) min left; 04-ingress only"; PIPELINE_LABS="04-ingress"
  fi
  if [ -n "$PIPELINE_LABS" ]; then
    echo "LIVE PIPELINE covers: $PIPELINE_LABS (set K8SLAB_PIPELINE_LABS to change)"
    lab_args=(); for lab in $PIPELINE_LABS; do lab_args+=(--lab "$lab"); done
    pytest_stage "live pipeline tests" -m live tests/pipeline "${lab_args[@]}" \
      --deselect tests/pipeline/test_course_parallel_live.py || exit $?
  fi
fi

say "browser tests (JupyterLab and formgrader in headless Chromium, loopback only)"
# Required in CI (.ci/run installs chromium + chromium-driver and Selenium); elsewhere skipped loudly without them.
if ! in_ci && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null \
                  && "$PY" -c 'import selenium' 2>/dev/null; }; then
  echo "BROWSER TESTS SKIPPED (one loud line): needs chromium + chromium-driver (apt) and \`make browser-deps\`"
  exit 0
fi
BROWSER_ARGS=(); [ "$PIPELINE_ALLOWED" = 1 ] || BROWSER_ARGS=(--lab 00-orientation)
if [ "$(minutes_left)" -lt 9 ]; then
  echo "BROWSER TESTS REDUCED: $(minutes_left) min left; 00-orientation only"; BROWSER_ARGS=(--lab 00-orientation)
fi
# Run All with the starters runs every check cell live: ~14 min for the five labs (measured 2026-12-03; lab 04's
# nine exercises alone ~5 min), the whole browser stage ~20 min, ~8 min with Run All for lab 00 only. With less
# than BROWSER_FULL_MIN minutes of CI left, only lab 00's notebook runs top to bottom (the student and instructor
# paths still run for every lab).
BROWSER_FULL_MIN=28
if [ "$(minutes_left)" -lt $BROWSER_FULL_MIN ]; then
  echo "BROWSER RUN ALL REDUCED: $(minutes_left) min left; Run All for 00-orientation only"
  export K8SLAB_BROWSER_RUN_ALL="00-orientation"
fi
pytest_stage "browser tests" -m browser tests/browser "${BROWSER_ARGS[@]}" || exit $?
