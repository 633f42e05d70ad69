#!/usr/bin/env bash
# Builds the grading image K8SLAB_GRADER_IMAGE (issue 15: one Kubernetes Job per submission, graders/course/jobs.py)
# and loads it into the nodes of kind cluster ${K8SLAB_CLUSTER:-k8slab}. No registry: FROM the python base image
# build-rootfs.sh makes from Debian packages; the grader's dependencies copied from this checkout's virtualenv
# (graders/course/grader_image.py writes the context: graders/, labs/, versions.env; never solutions/).
#   build-grader-image.sh            build (cached by content) and load into the cluster's nodes
#   build-grader-image.sh --no-load  build only (an instructor then pushes it to the registry their cluster uses)
source "$(dirname "$0")/lib.sh"
export DOCKER_BUILDKIT=0   # the classic builder works with local-only base images and no registry

LOAD=1
case "${1:-}" in --no-load) LOAD=0 ;; "") ;; -h|--help) sed -n '2,7p' "$0"; exit 0 ;; *) die "unknown argument $1" ;; esac
CLUSTER="${K8SLAB_CLUSTER:-k8slab}"
PY="${K8SLAB_PYTHON:-$REPO_ROOT/.venv/bin/python}"
[ -x "$PY" ] || die "no virtualenv at $PY: run \`make setup\` first (its packages go into the image)"

"$OFFLINE_DIR/build-rootfs.sh" python
CTX="$BUILD_DIR/grader-image-ctx"
step "build context $CTX"
PYTHONPATH="$REPO_ROOT" "$PY" -m graders.course.grader_image "$CTX" --base "$GRADER_BASE_IMAGE"

# Cached like build-images.sh: a content key over the context and the base image, kept as a label.
key="$( (docker image inspect -f '{{.Id}}' "$GRADER_BASE_IMAGE"; cd "$CTX" && find . -type f -print0 | sort -z \
  | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
if [ "$(docker image inspect -f '{{index .Config.Labels "k8slab.key"}}' "$K8SLAB_GRADER_IMAGE" 2>/dev/null)" = "$key" ]; then
  step "image $K8SLAB_GRADER_IMAGE is up to date"
  rebuilt=0
else
  echo "LABEL k8slab.key=$key" >> "$CTX/Dockerfile"
  step "image $K8SLAB_GRADER_IMAGE"
  docker build -q -t "$K8SLAB_GRADER_IMAGE" "$CTX" >"$LOG_DIR/grader-image-build.log" 2>&1 \
    || { cat "$LOG_DIR/grader-image-build.log"; die "docker build $K8SLAB_GRADER_IMAGE failed (context $CTX)"; }
  rebuilt=1
fi
rm -rf "$CTX"
# The smoke test the Job relies on: the image lists the labs as uid 65534, from K8SLAB_ROOT.
docker run --rm --network none "$K8SLAB_GRADER_IMAGE" labs >/dev/null \
  || die "$K8SLAB_GRADER_IMAGE does not run \`k8slab labs\`"

[ "$LOAD" = 1 ] || exit 0
if [ "$rebuilt" = 1 ]; then  # the pin's tag stays across rebuilds: a node that has the old one must drop it first
  for node in $(docker ps --format '{{.Names}}' --filter "label=io.x-k8s.kind.cluster=$CLUSTER"); do
    docker exec "$node" ctr -n k8s.io images rm "$(ctr_ref "$K8SLAB_GRADER_IMAGE")" >/dev/null 2>&1 || true
  done
fi
load_images "$CLUSTER" "$K8SLAB_GRADER_IMAGE"
step "grading image $K8SLAB_GRADER_IMAGE ready in the nodes of $CLUSTER"
