"""Custom resources checked offline against their CustomResourceDefinition, as the API server would.

A CRD's ``openAPIV3Schema`` (a structural schema) becomes a strict JSON Schema: a field the schema does not declare is
an error (the API server prunes or, with strict field validation, refuses it), ``nullable`` and
``x-kubernetes-int-or-string`` are spelled out, ``x-kubernetes-preserve-unknown-fields`` keeps a subtree open. CEL
rules (``x-kubernetes-validations``) are not JSON Schema: the few this course's manifests depend on are evaluated here
(``KNOWN_RULES``: a Service backend needs a port, durations, a backend timeout within the request timeout); every
other rule is counted in ``Report.unchecked_rules`` and left to the API server.

Pure: no cluster, no download. Where the CRDs come from is the caller's business (tests/crds.py reads them from the
Go module proxy at the pinned versions).
"""
from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(text: Any) -> float | None:
    """A Go duration ("500ms", "1m30s", "0.5s") in seconds; None when it is not one."""
    if not isinstance(text, str) or not _DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))


def _backend_port(node: Mapping) -> str:
    if (node.get("group") or "") == "" and node.get("kind", "Service") == "Service" and "port" not in node:
        return "a backendRef to a Service needs a port (the API server refuses one without)"
    return ""


def _at_least_1ms(node: Any) -> str:
    seconds = duration_s(node)
    return "" if seconds is not None and seconds >= 0.001 else f"{node!r} is not a duration of at least 1ms (like 500ms)"


def _backend_within_request(node: Mapping) -> str:
    request, backend = duration_s(node.get("request")), duration_s(node.get("backendRequest"))
    if request and backend and backend > request:
        return "timeouts.backendRequest must not be longer than timeouts.request"
    return ""


# CEL rules evaluated offline, by their exact text in the CRDs: each returns "" or what is wrong.
KNOWN_RULES: Mapping[str, Callable[[Any], str]] = {
    "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true": _backend_port,
    "duration(self) >= duration('1ms')": _at_least_1ms,
    "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && "
    "duration(self.backendRequest) > duration(self.request))": _backend_within_request,
}


def _strict(schema: Any) -> Any:
    """A structural schema as strict JSON Schema (a new dict; the CRD is not changed)."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in ("x-kubernetes-validations", "description")}
    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _strict(sub) for name, sub in out[key].items()}
    for key in ("items", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_strict(s) for s in out[key]]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        out.pop(key)
    return out


def _rules(schema: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """(schema path, rule) of every CEL rule; a path holds "*" for any list item or map value."""
    found: list[tuple[tuple, str]] = []
    if not isinstance(schema, dict):
        return found
    for rule in schema.get("x-kubernetes-validations") or []:
        found.append((path, rule.get("rule", "")))
    for name, sub in (schema.get("properties") or {}).items():
        found += _rules(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        found += _rules(schema["items"], (*path, "*"))
    if isinstance(schema.get("additionalProperties"), dict):
        found += _rules(schema["additionalProperties"], (*path, "**"))
    return found


def _nodes(obj: Any, pattern: tuple, at: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    """(path, value) of every node of ``obj`` a rule path matches."""
    if not pattern:
        yield at, obj
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(obj, list):
        for index, item in enumerate(obj):
            yield from _nodes(item, rest, (*at, index))
    elif head == "**" and isinstance(obj, dict):
        for key, value in obj.items():
            yield from _nodes(value, rest, (*at, key))
    elif isinstance(obj, dict) and head in obj:
        yield from _nodes(obj[head], rest, (*at, head))


@dataclass(frozen=True)
class Problem:
    path: tuple
    message: str

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.path) or "(top level)"


@dataclass(frozen=True)
class Report:
    problems: tuple[Problem, ...] = ()
    unchecked_rules: int = 0  # CEL rules of the schema that apply here and were left to the API server
    checked_rules: int = 0


@dataclass(frozen=True)
class Schema:
    """One CRD version: validates objects of its group, version and kind."""

    group: str
    version: str
    kind: str
    schema: Mapping = field(repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @functools.cached_property
    def _validator(self):
        import jsonschema

        strict = _strict(copy.deepcopy(dict(self.schema)))
        props = strict.setdefault("properties", {})
        props["apiVersion"] = {"const": self.api_version}
        props["kind"] = {"const": self.kind}
        props["metadata"] = {"type": "object", "required": ["name"]}
        strict.setdefault("additionalProperties", False)
        return jsonschema.validators.Draft7Validator(strict)

    @functools.cached_property
    def _rules(self) -> list[tuple[tuple, str]]:
        return _rules(self.schema)

    def validate(self, obj: Mapping) -> Report:
        problems = [Problem(tuple(e.absolute_path), e.message[:300])
                    for e in sorted(self._validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])]
        checked = unchecked = 0
        for path, rule in self._rules:
            for at, node in _nodes(obj, path):
                check = KNOWN_RULES.get(" ".join(rule.split()))
                if check is None:
                    unchecked += 1
                    continue
                checked += 1
                why = check(node)
                if why:
                    problems.append(Problem(at, why))
        return Report(tuple(problems), unchecked, checked)


def schemas_from(crd: Mapping) -> list[Schema]:
    """Every served version of one CRD document."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    return [Schema(group, v["name"], kind, (v.get("schema") or {}).get("openAPIV3Schema") or {})
            for v in spec.get("versions") or [] if v.get("served", True)]


class Catalog:
    """Schemas by (apiVersion, kind), from CRD documents."""

    def __init__(self, crds: Iterable[Mapping]) -> None:
        self.schemas = {(s.api_version, s.kind): s for crd in crds if crd and crd.get("kind") ==
                        "CustomResourceDefinition" for s in schemas_from(crd)}

    def kinds(self) -> set[tuple[str, str]]:
        return set(self.schemas)

    def get(self, api_version: str, kind: str) -> Schema | None:
        return self.schemas.get((api_version, kind))
