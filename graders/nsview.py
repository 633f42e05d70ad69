"""Results in the lab's namespace names: whatever a grading run under a ``NamespaceMap`` says, a learner reads
``production``, never ``production-<run>``.

Why a walk over every field instead of translating the fields we know: a message, hint, table cell, matrix label,
``why`` or reproduce command added to graders.model later is covered without anyone remembering to add it here.
Strings are translated with ``NamespaceMap.text_to_logical`` (whole names only); frozen dataclasses, tuples,
lists and dicts are rebuilt around them; anything else (enums, numbers) is kept. A value that nothing in changes
is returned as it is -- with the identity map, the very same object.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from graders.nsmap import NamespaceMap

T = TypeVar("T")


def to_logical(value: T, nsmap: NamespaceMap | None) -> T:
    """``value`` (a LabResult, ExerciseResult, Evidence, ProbeResult, a string...) with every real namespace
    name of ``nsmap`` replaced by its logical name."""
    if nsmap is None or nsmap.is_identity:
        return value
    return translate(value, nsmap.text_to_logical)


def translate(value: Any, text: Callable[[str], str]) -> Any:
    """``value`` with ``text`` applied to every string in it (dict keys too), rebuilt only where one changed."""
    if isinstance(value, str):
        return text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = translate(old, text)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, (tuple, list)):
        items = [translate(item, text) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        pairs = [(translate(k, text), translate(v, text)) for k, v in value.items()]
        if all(k is ok and v is ov for (k, v), (ok, ov) in zip(pairs, value.items())):
            return value
        return type(value)(pairs)
    if isinstance(value, (set, frozenset)):
        return type(value)(translate(item, text) for item in value)
    return value
