"""How every message writes a set of labels: ``app=web,env=prod``, sorted."""
from __future__ import annotations

from collections.abc import Mapping


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``app=web,env=prod`` (sorted), or ``(no labels)`` so an empty set still reads as something."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "(no labels)"


def pods_with_labels(pods, none: str = "none") -> str:
    """``web-1 has app=web; db-0 has app=db``: what a selector could have matched, for "selects nothing" messages."""
    return "; ".join(f"{p.metadata.name} has {format_labels(p.metadata.labels)}" for p in pods) or none
