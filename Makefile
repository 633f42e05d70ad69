# Kubernetes Networking Labs — every task a learner, an instructor or CI runs. `make help` lists them.
# Recipes stay one or two lines; the logic lives in graders/ (Python) and environment/ (shell).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Every pinned version (tools, node image, add-ons) comes from this one file.
include environment/versions.env

VENV ?= .venv
PY := $(VENV)/bin/python
K8SLAB := $(PY) -m graders.cli
PYTEST := $(PY) -m pytest
export PATH := $(CURDIR)/bin:$(PATH)
CNI ?= kube-router
OFFLINE ?=
BUNDLE ?=
LAB ?=
MESH ?=
K8SLAB_CACHE ?= $(HOME)/.cache/k8slab
export K8SLAB_CACHE

################################################################################
# ================================== Help ======================================

# List every target with the comment line above it (this Makefile and the files it includes).
help:
	@awk '/^# / {if (!inc) c = substr($$0, 3); inc = 1; next} \
		/^[a-zA-Z][a-zA-Z_-]*:([^=]|$$)/ {n = $$1; sub(/:.*/, "", n); \
		printf "  %-18s %s\n", n, (c == "" ? "(see " FILENAME ")" : c)} {c = ""; inc = 0}' $(MAKEFILE_LIST)

################################################################################
# ================================== Setup =====================================

# Python venv with the course package + pinned kind/kubectl/helm in ./bin (sha256-verified)
setup: venv tools

# create .venv and `pip install -e .` (re-runs when pyproject.toml changes)
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e . $(if $(wildcard constraints.txt),-c constraints.txt)
	@touch $@

# pinned kind, kubectl, helm into ./bin (links the offline build's when cached)
tools:
	environment/tools.sh

################################################################################
# ================================= Cluster ====================================

# create the kind cluster (CNI=kube-router|calico|cilium|flannel|canal|weave; OFFLINE=1: kube-router|flannel|flannel+kube-router|cilium; BUNDLE=path; MESH=istio|linkerd, online only)
cluster: venv
ifneq ($(OFFLINE)$(BUNDLE),)
	$(if $(MESH),$(K8SLAB) cluster mesh $(MESH) --offline)
	K8SLAB_CNI=$(CNI) environment/offline/cluster-up.sh $(if $(BUNDLE),--bundle $(BUNDLE))
else
	$(K8SLAB) cluster up --cni $(CNI) $(if $(MESH),--mesh $(MESH))
endif

# install lab 06's service mesh on the online course cluster (MESH=istio|linkerd; DRY_RUN=1 prints every command)
mesh: venv
	@test -n "$(MESH)" || { echo "usage: make mesh MESH=istio|linkerd  (DRY_RUN=1 prints every command)"; exit 2; }
	$(K8SLAB) cluster mesh $(MESH) $(if $(OFFLINE)$(BUNDLE),--offline) $(if $(DRY_RUN),--dry-run)

# the mesh's own CLI into ./bin for looking around (MESH=istio: istioctl, MESH=linkerd: linkerd), sha256-verified
mesh-tools:
	MESH=$(MESH) environment/tools.sh mesh

# delete the course cluster, or with CNI=... that CNI's own cluster (online or offline)
cluster-down:
	@if [ -n "$(OFFLINE)" ] || ! command -v kind >/dev/null; then K8SLAB_CNI=$(CNI) environment/offline/cluster-down.sh; \
	else $(K8SLAB) cluster down --cni $(CNI); fi

# write the offline bundle for air-gapped workshops (BUNDLE=path, default in the cache)
bundle:
	environment/offline/bundle.sh $(BUNDLE)

# build the grading image (K8SLAB_GRADER_IMAGE) for `k8slab course autograde --parallel` and load it into kind's nodes
grader-image: venv
	environment/offline/build-grader-image.sh

################################################################################
# ================================== Labs ======================================

# JupyterLab refuses to start as root ("Running as root is not recommended") without --allow-root: pass it only
# when the effective uid is 0 (containers, workshop VMs), never to a normal user.
JUPYTER_ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root)

# create the cluster if none answers, build missing notebooks (never overwrites yours), open JupyterLab
lab: venv
	@$(PY) -m graders.cluster || { echo "==> creating the cluster"; $(MAKE) cluster; }
	@$(VENV)/bin/k8slab notebooks build
	$(VENV)/bin/jupyter lab --notebook-dir=labs $(JUPYTER_ROOT_FLAG)

# grade your files for one lab with pytest (LAB=00-orientation)
grade: venv
	@test -n "$(LAB)" || { echo "usage: make grade LAB=<id>  (labs: $$(ls labs | tr '\n' ' '))"; exit 2; }
	$(PYTEST) -p no:cacheprovider -q labs/$(LAB)/lab.yaml

# check Docker, tools, cluster, DNS, pod network, NetworkPolicy enforcement, LB and ingress
doctor: venv
	$(K8SLAB) doctor

################################################################################
# ================================= Testing ====================================

# unit tests, then live tests when a cluster answers (in CI, CI=true, a cluster is required)
test: venv
	environment/test.sh

# measured ratios — batched vs naive probing (live), static policy engine scaling
bench: venv
	$(PY) bench/bench_static.py
	$(PY) bench/bench_probe.py
	$(PY) bench/bench_netpol_live.py
	$(PY) bench/bench_lab_grading.py
	$(PY) bench/bench_recheck.py
	$(PY) bench/bench_autograde_parallel.py
	$(PY) bench/bench_cluster.py $(BENCH_ARGS)

# every check (tests, spec consistency, shell syntax, make help); keeps going, one summary line
verify: venv
	environment/verify.sh

################################################################################
# ================================= Cleanup ====================================

# remove caches and build outputs (never your lab files, the venv or ./bin)
clean:
	rm -rf .pytest_cache build course *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf
	find labs -name .ipynb_checkpoints -type d -print0 | xargs -0 rm -rf

# clean, then also remove .venv and ./bin (the offline build cache stays)
distclean: clean
	rm -rf $(VENV) bin

.PHONY: help setup venv tools cluster cluster-down mesh mesh-tools bundle grader-image lab grade doctor test bench verify clean distclean

# The instructor path (nbgrader): course, course-release, course-autograde, ... (see README).
-include mk/course.mk

# class report (DIR=course, LAB= for one lab): pass rates, score histograms, failure causes -> DIR/class-report.html
course-report: venv
	$(K8SLAB) course report $(or $(DIR),$(COURSE_DIR),course) $(if $(LAB),--lab $(LAB)) $(if $(OUT),--out $(OUT))

.PHONY: course-report

# browser tests: JupyterLab and formgrader in headless Chromium (apt: chromium chromium-driver), live cluster
browser-deps: venv
	$(PY) -m pip install -q -e '.[browser]' $(if $(wildcard constraints.txt),-c constraints.txt)

browser-test: browser-deps
	$(PYTEST) -p no:cacheprovider -m browser tests/browser $(if $(LAB),--lab $(LAB))

.PHONY: browser-deps browser-test
