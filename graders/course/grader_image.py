"""The build context of the grading image (K8SLAB_GRADER_IMAGE) that graders.course.jobs runs as each Job.

``python -m graders.course.grader_image DIR --base IMAGE`` writes DIR/Dockerfile, DIR/app (what `k8slab grade`
reads: the graders package, the labs' specs and fixtures, versions.env) and DIR/site-packages (the grader's
runtime dependencies, copied from this virtualenv: the versions CI ran, and no registry needed, so the offline
path builds it too). environment/offline/build-grader-image.sh builds it on a Python base image from Debian
packages and loads it into kind's nodes (`make grader-image`).

What goes in is chosen, not filtered out of everything: files git tracks (never an instructor's untracked
kubeconfig, gradebook or course folder), only under graders/ and labs/ plus versions.env; never solutions/
(reference answers and mistakes), tests/ or notebooks; and no file whose name says credential even if tracked by
mistake. labs/ is what students get anyway (the release).
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path, PurePath

from graders import paths, versions

APP = "/opt/k8slab/app"
SITE = "/opt/k8slab/site-packages"
INCLUDED = ("graders/", "labs/", "environment/versions.env", "pyproject.toml")
EXCLUDED_DIRS = ("solutions/", "tests/", ".ci/", "docs/")
EXCLUDED_NAMES = ("*.ipynb", "*.md", "kubeconfig*", "*.kubeconfig", "*.db", "id_rsa*", "id_ed25519*", ".netrc",
                  "*.env", ".env*", "__pycache__")
KEPT_ENV = "environment/versions.env"  # the one .env file the grader needs (the pins)
# What `k8slab grade` imports beyond the standard library (tests/unit/test_grader_image.py keeps it honest);
# their own requirements follow from their metadata.
# jsonschema's format checkers are optional imports: present in the virtualenv CI runs, so present in the image.
RUNTIME = ("kubernetes", "PyYAML", "rich", "kubernetes-validate", "jsonschema[format-nongpl]")
NEVER = ("nbgrader", "jupyterlab", "notebook", "docker", "pytest", "matplotlib", "selenium", "k8slab")


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0") if p)


def wanted(path: str) -> bool:
    if path.startswith(EXCLUDED_DIRS) or not path.startswith(INCLUDED):
        return False
    if path == KEPT_ENV:
        return True
    return not any(fnmatch.fnmatch(part, pattern) for part in path.split("/") for pattern in EXCLUDED_NAMES)


def app_files(root: Path) -> list[str]:
    return [p for p in tracked_files(root) if wanted(p) and (root / p).is_file() and not (root / p).is_symlink()]


def _requirements(dist: md.Distribution, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """(name, extras) of what ``dist`` requires on this platform, with the extras it was asked for
    (kubernetes-validate needs ``jsonschema[format-nongpl]``: the format checkers' packages)."""
    from packaging.requirements import Requirement  # packaging comes with every virtualenv's pip

    out = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        out.append((req.name, frozenset(req.extras)))
    return out


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(roots: Iterable[str] = RUNTIME) -> list[md.Distribution]:
    """The installed distributions of ``roots`` and everything they require (extras included), once each."""
    seen: dict[str, md.Distribution] = {}
    asked: set[tuple[str, frozenset[str]]] = set()
    from packaging.requirements import Requirement

    todo = [(req.name, frozenset(req.extras)) for req in map(Requirement, roots)]
    while todo:
        name, extras = todo.pop()
        key = _canonical(name)
        if (key, extras) in asked:
            continue
        asked.add((key, extras))
        try:
            dist = seen.get(key) or md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed in {sys.prefix}: `make setup` first") from None
        seen[key] = dist
        todo += _requirements(dist, extras)
    return sorted(seen.values(), key=lambda d: _canonical(d.metadata["Name"]))


def schema_dirs_kept(kubernetes_minor: str) -> frozenset[str]:
    """kubernetes-validate ships schemas for thirteen Kubernetes versions, twice (~108 MB): the grader validates
    against one, the strict schema of the pinned minor (graders.manifests.choose_schema_version; its fallback
    rules choose among what is present, so the pin's own directory is what the image needs)."""
    from graders import manifests

    chosen, _ = manifests.choose_schema_version(kubernetes_minor)
    return frozenset(f"v{full}-local-strict" for full in manifests._kubernetes_validate().all_versions()
                     if manifests._minor(full) == chosen)


def _unused_schema(file: PurePath, kept: frozenset[str]) -> bool:
    parts = file.parts
    return (len(parts) > 2 and parts[0] == "kubernetes_validate" and parts[1] == "kubernetes-json-schema"
            and parts[2] not in kept)


def copy_distribution(dist: md.Distribution, site: Path, schemas: frozenset[str] | None = None) -> int:
    """Copy one distribution's installed files (its RECORD) below ``site``; returns how many. Scripts and files
    outside site-packages (bin/, share/) are left out: the grader imports, it runs no console script.
    ``schemas``: the kubernetes-validate schema directories to keep (None: all)."""
    copied = 0
    for file in dist.files or []:
        source = Path(dist.locate_file(file)).resolve()
        if file.parts[0] == ".." or "__pycache__" in file.parts or not source.is_file():
            continue
        if schemas is not None and _unused_schema(file, schemas):
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied += 1
    return copied


def dockerfile(base: str) -> str:
    major, minor = sys.version_info[:2]
    return "\n".join([
        f"FROM {base}",
        # binary wheels in site-packages were built for this Python: the image's must be the same minor version
        f"RUN python3 -c 'import sys; assert sys.version_info[:2] == ({major}, {minor}), sys.version' "
        f"&& ln -sf python3 /usr/bin/python",
        f"COPY site-packages {SITE}",
        f"COPY app {APP}",
        f"ENV PYTHONPATH={APP}:{SITE} K8SLAB_ROOT={APP} PYTHONDONTWRITEBYTECODE=1 HOME=/tmp",
        "USER 65534:65534",
        "WORKDIR /tmp",
        'ENTRYPOINT ["python", "-m", "graders.cli"]',
        'CMD ["labs"]',
        "",
    ])


def write_context(dest: Path, base: str, root: Path | None = None) -> dict[str, int]:
    """DIR/Dockerfile, DIR/app, DIR/site-packages; returns counts for the build log."""
    root = root or paths.repo_root()
    if dest.exists():
        shutil.rmtree(dest)
    app, site = dest / "app", dest / "site-packages"
    files = app_files(root)
    for rel in files:
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, app / rel)
    dists = runtime_distributions()
    schemas = schema_dirs_kept(versions.kubernetes_minor(None))
    copied = sum(copy_distribution(d, site, schemas) for d in dists)
    (dest / "Dockerfile").write_text(dockerfile(base), encoding="utf-8")
    return {"app files": len(files), "distributions": len(dists), "site-packages files": copied}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graders.course.grader_image",
                                     description="write the grading image's build context")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--base", required=True, help="an image with python3 (the offline path's python base)")
    args = parser.parse_args(argv)
    counts = write_context(args.dest, args.base)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
