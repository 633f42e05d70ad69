# =====================================================================================================================
# Instructor path with nbgrader (docs/instructors.md). Included from the Makefile: `include mk/course.mk`.
# Usable alone too: `make -f mk/course.mk course COURSE_DIR=/srv/k8slab-course`.
# =====================================================================================================================

COURSE_DIR ?= course
COURSE_LAB ?= 00-orientation
COURSE_VENV ?= .venv
COURSE_PY ?= $(COURSE_VENV)/bin/python
COURSE_NBGRADER ?= $(COURSE_VENV)/bin/nbgrader
K8SLAB_CACHE ?= $(HOME)/.cache/k8slab
MERMAID_CLI_VERSION ?= 11.17.0

.PHONY: course course-release course-autograde course-answers course-feedback course-grades course-tools course-test course-test-live

# Build (or refresh) the nbgrader course directory from labs/: source notebooks, starters, nbgrader_config.py.
course:
	$(COURSE_PY) -m graders.course build $(COURSE_DIR)

# Generate the student version of one lab and prove it carries no solution.
course-release: course
	cd $(COURSE_DIR) && PATH=$(abspath $(COURSE_VENV))/bin:$$PATH $(abspath $(COURSE_NBGRADER)) generate_assignment $(COURSE_LAB) --force
	$(COURSE_PY) -m graders.course check-release $(COURSE_DIR) $(COURSE_LAB)

# Autograde every collected submission of COURSE_LAB safely (namespace-scoped token, throwaway container).
course-autograde:
	$(COURSE_PY) -m graders.course autograde $(COURSE_DIR) $(COURSE_LAB)

# Every student's written answers of COURSE_LAB, to mark with `k8slab course mark` (docs/instructors.md).
course-answers:
	$(COURSE_PY) -m graders.course answers $(COURSE_DIR) $(COURSE_LAB)

# Feedback HTML for every autograded submission of COURSE_LAB.
course-feedback:
	cd $(COURSE_DIR) && PATH=$(abspath $(COURSE_VENV))/bin:$$PATH $(abspath $(COURSE_NBGRADER)) generate_feedback $(COURSE_LAB) --force

# Grades CSV (COURSE_DIR/grades.csv).
course-grades:
	$(COURSE_PY) -m graders.course grades $(COURSE_DIR)

# Diagram renderer for the feedback HTML: Debian's chromium + @mermaid-js/mermaid-cli (npm, no browser download).
# Optional: without it the feedback shows a text outline of each diagram.
course-tools:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium fonts-dejavu-core)
	mkdir -p $(K8SLAB_CACHE)/mermaid-cli
	cd $(K8SLAB_CACHE)/mermaid-cli && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund \
		@mermaid-js/mermaid-cli@$(MERMAID_CLI_VERSION)

# The nbgrader pipeline tests: offline ones always; live ones when the kind-k8slab cluster answers.
course-test:
	$(COURSE_PY) -m pytest -m "pipeline and not live" tests/pipeline
# The live nbgrader pipeline tests (need the kind-k8slab cluster).
course-test-live:
	$(COURSE_PY) -m pytest -m "pipeline and live" tests/pipeline
