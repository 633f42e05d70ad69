"""Builds the nbgrader course directory from labs/ and the lab specs (`k8slab course build DIR`).

For every lab with a spec and a notebook source (labs/<id>/<id>.md) it writes:

    DIR/nbgrader_config.py            course id, gradebook, timeouts, protected student files, zip_collect rules
    DIR/source/<lab>/<lab>.ipynb      the instructor notebook, nbgrader metadata generated here (never by hand)
    DIR/source/<lab>/<exercise>/...   starter manifests (the files a student edits and submits)
    DIR/k8slab/mermaid/<sha>.png|txt  pre-rendered diagrams the feedback HTML shows instead of Mermaid source

Every cell of the lab notebook is locked (read-only, restored from the gradebook at autograde). After each
exercise's `check(...)` cell the build adds three cells: a locked heading, a solution region (the reference
solution, stripped from the release) and a locked autograder test cell whose hidden part calls
`scored("<lab>", "<exercise>", points)` (graders.course.runtime). The student's answer is the manifest files,
which `Autograde.exclude_overwriting` protects from being replaced by the starters.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from graders import paths, spec
from graders.course import mermaid
from graders.course.gradebook import COURSE_ID
from graders.errors import K8sLabError, UsageError

SCHEMA_VERSION = 3
EXECUTE_TIMEOUT = 300
CODE_STUB = ("# Your notes and experiments for this exercise (not graded).\n"
             "# Your answer is the YAML in this exercise's folder: edit it, then run the check cell above.")
# Lab folders the notebook reads by a path relative to itself (04-ingress: the course CA's certificates), so
# a release must carry them next to the notebook. Everything else a notebook reads comes from the installed repo.
LAB_ASSET_DIRS = ("certs",)
SOLUTION_MARK = "Reference solution (instructor copy"
TEST_IMPORT = "from graders.course.runtime import scored"
_CHECK_CALL = r"""check\(\s*["']{lab}["']\s*,\s*["'](?P<ex>[A-Za-z0-9-]+)["']"""


@dataclass
class BuiltLab:
    lab: str
    notebook: Path
    exercises: list[str]
    student_files: list[str]          # relative to source/<lab>/, e.g. "hello-pod/pod.yaml"
    missing_solutions: list[str] = field(default_factory=list)
    diagrams: int = 0


@dataclass
class BuildReport:
    course_dir: Path
    labs: list[BuiltLab]
    skipped: list[str]                # "lab: reason"
    mermaid_renderer: str             # "mmdc" or "text fallback"


# --------------------------------------------------------------------------- notebook generation
def _nbgrader_meta(grade_id: str, *, locked: bool = False, solution: bool = False, grade: bool = False,
                   points: float | None = None, task: bool = False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": task}
    if grade:
        meta["points"] = points
    return meta


def _read_source(md: Path) -> nbformat.NotebookNode:
    import jupytext  # imported here: `k8slab grade` must not pay for it

    try:
        return jupytext.read(md, fmt="md:myst")
    except Exception as exc:  # noqa: BLE001 — jupytext raises many types; name the file
        raise K8sLabError(f"reading notebook source {paths.relative(md)}: {type(exc).__name__}: {exc}",
                          hint="the source must be jupytext MyST markdown (`jupytext --to myst` writes it)") from None


def _solution_literal(files: dict[str, str]) -> str:
    lines = []
    for name, text in files.items():
        if "'''" in text or text.endswith("\\"):
            lines.append(f"    {name!r}: {text!r},")
        else:
            lines.append(f"    {name!r}: '''\\\n{text}''',")
    return "\n".join(lines)


def exercise_cells(lab: str, exercise, solution_files: dict[str, str]) -> list[nbformat.NotebookNode]:
    """The three cells the build adds for one exercise: heading, solution region, autograder test."""
    ex = exercise.id
    points = float(exercise.points)
    pts = f"{points:g} point{'s' if points != 1 else ''}"
    files = ", ".join(f"`{ex}/{f}`" for f in exercise.files)
    if getattr(exercise, "submission", "manifests") == "answers":
        how = ("The autograder checks each answer against what *its* cluster shows when it grades, exactly like the "
               "check cell does on yours. Values that differ from one cluster to another (which worker got which pod "
               "range, node addresses) are judged on the grading cluster: answer from the cluster you are graded on.")
    else:
        how = ("The autograder applies *your files* in a fresh namespace and scores the cluster's behaviour, exactly "
               "like the check cell does.")
    heading = nbformat.v4.new_markdown_cell(
        f"#### Graded: {exercise.title} ({pts})\n\n"
        f"Your answer is {files}. Edit the file{'s' if len(exercise.files) > 1 else ''}, run "
        f"`check(\"{lab}\", \"{ex}\")` until it passes, then submit. {how}")
    heading.metadata["nbgrader"] = _nbgrader_meta(f"{ex}-heading", locked=True)
    var = "REFERENCE_" + re.sub(r"\W", "_", ex).upper()
    if solution_files:
        body = f"{var} = {{\n{_solution_literal(solution_files)}\n}}"
    else:
        body = f"{var} = {{}}  # no reference solution found in solutions/{lab}/{ex}/ at build time"
    answer = nbformat.v4.new_code_cell(
        f"# Exercise {ex}: notes and experiments.\n"
        f"### BEGIN SOLUTION\n"
        f"# {SOLUTION_MARK} — removed from the student release).\n"
        f"{body}\n"
        f"### END SOLUTION")
    answer.metadata["nbgrader"] = _nbgrader_meta(f"{ex}-answer", solution=True)
    test = nbformat.v4.new_code_cell(
        f"# Autograder test for exercise {ex} ({pts}). It grades the files in {ex}/ on a live cluster;\n"
        f"# run check(\"{lab}\", \"{ex}\") above to see the same result now.\n"
        f"### BEGIN HIDDEN TESTS\n"
        f"{TEST_IMPORT}\n"
        f"scored({lab!r}, {ex!r}, {points:g})\n"
        f"### END HIDDEN TESTS")
    test.metadata["nbgrader"] = _nbgrader_meta(f"{ex}-test", locked=True, grade=True, points=points)
    return [heading, answer, test]


def answer_of(cell) -> tuple[str, float] | None:
    """(answer id, points) of a markdown cell the learner answers in words (metadata ``k8slab.answer``), else None."""
    meta = cell.metadata.get("k8slab") or {}
    if cell.cell_type != "markdown" or not meta.get("answer"):
        return None
    return str(meta["answer"]), float(meta.get("points", 1))


def _read_answer(lab_spec, answer: str) -> str | None:
    path = lab_spec.file.parents[2] / "solutions" / lab_spec.id / "answers" / f"{answer}.md"  # root/labs/<id>/lab.yaml
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _read_solution(exercise) -> dict[str, str]:
    out = {}
    for name in exercise.files:
        path = exercise.solution_dir / name
        if path.is_file():
            out[name] = path.read_text(encoding="utf-8")
    return out


def source_notebook(lab_spec, md: Path) -> tuple[nbformat.NotebookNode, list[str]]:
    """The instructor notebook for one lab: every source cell locked, exercise cells added after each check.

    Returns the notebook and the exercises whose reference solution was missing."""
    nb = _read_source(md)
    lab = lab_spec.id
    check_re = re.compile(_CHECK_CALL.format(lab=re.escape(lab)))
    exercises = {e.id: e for e in lab_spec.exercises}
    # The last cell that checks each exercise: the graded cells go right after it.
    anchor: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for match in check_re.finditer(cell.source):
                if match["ex"] in exercises:
                    anchor[match["ex"]] = index
    missing: list[str] = []
    added: dict[int, list] = {}
    tail: list = []
    for exercise in lab_spec.exercises:
        solution = _read_solution(exercise)
        if len(solution) < len(exercise.files):
            missing.append(exercise.id)
        cells = exercise_cells(lab, exercise, solution)
        if exercise.id in anchor:
            added.setdefault(anchor[exercise.id], []).extend(cells)
        else:
            tail.extend(cells)
    out = []
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("nbgrader", None)  # metadata is generated here, never trusted from the source
        tags = cell.metadata.get("tags", [])
        answer = answer_of(cell)
        if answer is not None:  # a written answer: the instructor grades it (`k8slab course answers|mark`)
            reference = _read_answer(lab_spec, answer[0])
            if reference is None:
                missing.append(f"answer {answer[0]}")
                reference = f"(no reference answer in solutions/{lab}/answers/{answer[0]}.md at build time)"
            cell.source = reference  # nbgrader replaces it with "YOUR ANSWER HERE" in the release
            cell.metadata["nbgrader"] = _nbgrader_meta(answer[0], solution=True, grade=True, points=answer[1])
        elif "scratch" not in tags:  # a cell tagged `scratch` stays editable and ungraded
            cell.metadata["nbgrader"] = _nbgrader_meta(f"{_short(lab)}-cell-{index:03d}", locked=True)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        out.append(cell)
        out.extend(added.get(index, []))
    out.extend(tail)
    nb.cells = out
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:  # nbformat 4.5 wants ids; jupytext may not set them
        cell.setdefault("id", _cell_id(cell))
    nbformat.validate(nb)
    return nb, missing


def _short(lab: str) -> str:
    return lab.split("-", 1)[0] or lab


def _cell_id(cell) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return grade_id or hashlib.sha1(cell.source.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- course directory
def student_files(lab_spec) -> list[str]:
    return [f"{e.id}/{name}" for e in lab_spec.exercises for name in e.files]


# The feedback HTML loads no script from the internet (no lab text uses TeX math).
OFFLINE_MATHJAX = """{%- macro mathjax(url="") -%}
<!-- MathJax is not loaded: the course's feedback works offline (written by k8slab course build) -->
{%- endmacro %}
"""


def config_text(labs: list[BuiltLab], *, timeout: int = EXECUTE_TIMEOUT, root: Path | None = None) -> str:
    exclude = {b.lab: b.student_files for b in labs}
    root = root or paths.repo_root()
    return f'''"""nbgrader configuration for the Kubernetes Networking Labs course — written by `k8slab course build`.

Rebuilding the course rewrites this file; put local changes in nbgrader_config_local.py (loaded last).
"""
import os
import sys

c = get_config()  # noqa: F821 — provided by nbgrader
_here = os.path.dirname(os.path.abspath(__file__))
# The `graders` package (feedback preprocessors, the test cells' runtime) comes from the course repository.
_repo = os.environ.get("K8SLAB_ROOT", {str(root)!r})
try:
    import graders  # noqa: F401
except ImportError:
    sys.path.insert(0, _repo)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_repo, os.environ.get("PYTHONPATH")) if p)

c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.root = _here
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "gradebook.db")
# `nbgrader release_assignment` / `collect` on one machine: K8SLAB_EXCHANGE overrides (default /srv/nbgrader/exchange
# is what a shared JupyterHub uses).
c.Exchange.root = os.environ.get("K8SLAB_EXCHANGE", os.path.join(_here, "exchange"))
c.Exchange.path_includes_course = True

# Live grading applies manifests and waits for pods: nbgrader's default 30 s per cell is far too short.
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True

# The student's answer is these manifests: autograde must grade them, not replace them with the starters.
c.Autograde.exclude_overwriting = {json.dumps(exclude, indent=4)}

# zip_collect (LMS hand-in): each archive is downloaded/<lab>/archive/<student-id>.zip holding the lab folder
# (or its contents); keep notebooks AND manifests.
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.FileNameCollectorPlugin"
c.FileNameCollectorPlugin.valid_ext = [".ipynb", ".yaml", ".yml"]
c.FileNameCollectorPlugin.named_regexp = (
    r".*/extracted/(?P<student_id>[A-Za-z0-9_.@-]+)/(?:[0-9][0-9]-[a-z0-9-]+/)?(?!\\.ipynb_checkpoints/)(?P<file_id>[^.].*)"
)

# Released solution cells say where the answer goes instead of raising NotImplementedError.
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = "Your notes (not graded)."

# Feedback pages work offline (workshops, air-gapped classes): nbgrader's feedback template loads MathJax from a
# CDN with no way to configure the URL, so a template directory of the course's own, searched first, replaces
# just that macro (k8slab/templates/feedback/mathjax.html.j2); everything else is nbgrader's feedback template.
import nbgrader as _nbgrader  # noqa: E402
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(_here, "k8slab", "templates"),
    os.path.join(os.path.dirname(_nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]

# Feedback: replace Mermaid source (which the feedback HTML cannot render) by the diagrams rendered at build time.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "graders.course.feedback.MermaidImages",
]
c.MermaidImages.image_dir = os.path.join(_here, "k8slab", "mermaid")

_local = os.path.join(_here, "nbgrader_config_local.py")
if os.path.exists(_local):
    exec(compile(open(_local).read(), _local, "exec"))  # noqa: S102 — the instructor's own overrides
'''


def _lab_specs(root: Path, only: list[str] | None):
    ids = spec.lab_ids(root)
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise UsageError(f"unknown lab(s) {', '.join(unknown)} (labs with a lab.yaml: {', '.join(ids) or 'none'})")
        ids = [i for i in ids if i in only]
    return [spec.load_lab(i, root) for i in ids]


def build(course_dir: Path, labs: list[str] | None = None, root: Path | None = None,
          render_diagrams: bool = True) -> BuildReport:
    """Create or refresh an nbgrader course directory. Only source/<lab>/, k8slab/ and nbgrader_config.py are
    written: the gradebook, release/, submitted/, autograded/ and feedback/ are never touched."""
    root = (root or paths.repo_root()).resolve()
    course_dir = course_dir.resolve()
    protected = [root / "labs", root / "solutions", root / "graders"]
    if course_dir == root or any(course_dir == p or p in course_dir.parents for p in protected):
        raise UsageError(f"refusing to build the course at {course_dir}: it would write into the repository's own "
                         f"labs, solutions or code", hint="use a separate directory, e.g. `course/`")
    built: list[BuiltLab] = []
    skipped: list[str] = []
    renderer = mermaid.MermaidRenderer() if render_diagrams else None
    all_diagrams: list[str] = []
    for lab_spec in _lab_specs(root, labs):
        md = root / "labs" / lab_spec.id / f"{lab_spec.id}.md"
        if not md.is_file():
            skipped.append(f"{lab_spec.id}: no notebook source {paths.relative(md)}")
            continue
        nb, missing = source_notebook(lab_spec, md)
        lab_src = course_dir / "source" / lab_spec.id
        if lab_src.exists():
            shutil.rmtree(lab_src)
        lab_src.mkdir(parents=True)
        notebook = lab_src / f"{lab_spec.id}.ipynb"
        nbformat.write(nb, notebook)
        for exercise in lab_spec.exercises:
            for name in exercise.files:
                starter = exercise.starter_dir / name
                if not starter.is_file():
                    raise UsageError(f"lab {lab_spec.id}, exercise {exercise.id}: starter file "
                                     f"{paths.relative(starter)} is missing (lab.yaml lists it)")
                dest = lab_src / exercise.id / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(starter, dest)
        for asset in LAB_ASSET_DIRS:
            if (root / "labs" / lab_spec.id / asset).is_dir():
                shutil.copytree(root / "labs" / lab_spec.id / asset, lab_src / asset)
        bodies = [m["body"] for cell in nb.cells if cell.cell_type == "markdown"
                  for m in mermaid.MERMAID_FENCE.finditer(cell.source)]
        all_diagrams.extend(bodies)
        diagrams = len(bodies)
        built.append(BuiltLab(lab_spec.id, notebook, [e.id for e in lab_spec.exercises], student_files(lab_spec),
                              missing, diagrams))
    if not built:
        raise UsageError("no lab to build: every lab needs labs/<id>/lab.yaml and labs/<id>/<id>.md"
                         + (" (" + "; ".join(skipped) + ")" if skipped else ""))
    if renderer is not None:
        renderer.render_many(all_diagrams, course_dir / "k8slab" / "mermaid")
    # The config lists every lab in source/, including ones built earlier with --lab.
    all_labs = list(built)
    for other in sorted((course_dir / "source").iterdir()):
        if other.is_dir() and other.name not in {b.lab for b in built}:
            try:
                lab_spec = spec.load_lab(other.name, root)
            except K8sLabError:
                continue
            all_labs.append(BuiltLab(other.name, other / f"{other.name}.ipynb", [e.id for e in lab_spec.exercises],
                                     student_files(lab_spec)))
    (course_dir / "nbgrader_config.py").write_text(config_text(all_labs, root=root), encoding="utf-8")
    meta = course_dir / "k8slab"
    meta.mkdir(exist_ok=True)
    offline_mathjax = meta / "templates" / "feedback" / "mathjax.html.j2"
    offline_mathjax.parent.mkdir(parents=True, exist_ok=True)
    offline_mathjax.write_text(OFFLINE_MATHJAX, encoding="utf-8")
    (meta / "course.json").write_text(json.dumps({
        "repo_root": str(root),
        "labs": {b.lab: {"exercises": b.exercises, "student_files": b.student_files} for b in all_labs},
    }, indent=2), encoding="utf-8")
    (course_dir / ".gitignore").write_text("gradebook.db\nexchange/\nsubmitted/\nautograded/\nfeedback/\n"
                                           "downloaded/\n", encoding="utf-8")
    return BuildReport(course_dir, built, skipped, renderer.name if renderer else "disabled")
