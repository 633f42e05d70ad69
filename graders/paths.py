"""Where things live: the repository root and the per-lab directories (one lab id everywhere).

The root is the checkout the package was installed from (editable install), or ``$K8SLAB_ROOT`` when set —
tests and nbgrader point it elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    override = os.environ.get("K8SLAB_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    return _PACKAGE_DIR.parent


def labs_dir() -> Path:
    return repo_root() / "labs"


def solutions_dir() -> Path:
    return repo_root() / "solutions"


def environment_dir() -> Path:
    return repo_root() / "environment"


def versions_file() -> Path:
    return environment_dir() / "versions.env"


def cache_dir() -> Path:
    """The machine-wide cache (offline build, tools, locks): ``$K8SLAB_CACHE`` or ~/.cache/k8slab."""
    return Path(os.environ.get("K8SLAB_CACHE") or Path.home() / ".cache" / "k8slab")


def lab_dir(lab_id: str) -> Path:
    return labs_dir() / lab_id


def spec_file(lab_id: str) -> Path:
    return lab_dir(lab_id) / "lab.yaml"


def relative(path: Path | str) -> str:
    """A path as the learner should read it: relative to the repository or the cwd when possible."""
    path = Path(path)
    for base in (Path.cwd(), repo_root()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)
