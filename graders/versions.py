"""Pinned versions, read from environment/versions.env (KEY=VALUE, ``#`` comments) — the one pinned file."""
from __future__ import annotations

import functools
import re
from pathlib import Path

from graders import paths
from graders.errors import SpecError

_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\S*)$")


def parse(text: str, source: str = "versions.env") -> dict[str, str]:
    """Parse KEY=VALUE lines. A malformed line is an error naming ``source:line`` (never skipped silently:
    a typo there would pin nothing)."""
    versions: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise SpecError(f"{source}:{number}: expected KEY=VALUE without spaces or quotes, got {raw!r}")
        versions[match["key"]] = match["value"]
    return versions


def load(path: Path | None = None) -> dict[str, str]:
    path = path or paths.versions_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"cannot read pinned versions from {path}: {error.strerror}") from error
    return parse(text, source=str(path))


@functools.lru_cache(maxsize=1)
def pinned() -> dict[str, str]:
    """The pinned versions of this checkout (cached; empty when the file is missing, e.g. a bare install)."""
    try:
        return load()
    except SpecError:
        return {}


def get(key: str, default: str = "") -> str:
    return pinned().get(key, default)


def kubernetes_minor(version: str | None = None) -> str:
    """"v1.34.4" -> "1.34" (the schema version kubernetes-validate understands)."""
    version = version if version is not None else get("KUBERNETES_VERSION", "")
    match = re.match(r"^v?(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else ""
