"""Label selectors (``metav1.LabelSelector``) and Service selectors, read and matched as Kubernetes does."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` item."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            # As in k8s.io/apimachinery: a pod without the key is "not in" any set.
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def describe(self) -> str:
        """kubectl's selector syntax: ``env in (a,b)``, ``env notin (a)``, ``env``, ``!env``."""
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        return f"{self.key} {self.operator.lower()} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """``matchLabels`` AND ``matchExpressions``; with neither it selects everything (``{}``)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )

    def unmet(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The parts of this selector the labels fail, in words (``app=web``, ``env in (a)``)."""
        parts = [f"{k}={v}" for k, v in self.match_labels if labels.get(k) != v]
        return (*parts, *(r.describe() for r in self.match_expressions if not r.matches(labels)))

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels] + [r.describe() for r in self.match_expressions]
        return ",".join(parts) or "{}"

    @classmethod
    def parse(cls, raw: Any, where: str) -> LabelSelector:
        """Read a metav1.LabelSelector; ``None`` (absent) is the caller's business, ``{}`` selects everything."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: a label selector must be a mapping, got {type(raw).__name__}")
        unknown = set(raw) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise ValueError(f"{where}: unknown selector field(s) {sorted(unknown)} (use matchLabels/matchExpressions)")
        labels = raw.get("matchLabels") or {}
        if not isinstance(labels, Mapping):
            raise ValueError(f"{where}.matchLabels: must be a mapping of label to value")
        expressions = []
        for i, expr in enumerate(raw.get("matchExpressions") or [], start=1):
            here = f"{where}.matchExpressions[{i}]"
            if not isinstance(expr, Mapping) or "key" not in expr or "operator" not in expr:
                raise ValueError(f"{here}: needs 'key' and 'operator'")
            operator = expr["operator"]
            if operator not in SELECTOR_OPERATORS:
                raise ValueError(f"{here}: operator {operator!r} is not one of {', '.join(SELECTOR_OPERATORS)}")
            values = tuple(str(v) for v in (expr.get("values") or ()))
            if operator in ("In", "NotIn") and not values:
                raise ValueError(f"{here}: operator {operator} needs at least one value")
            if operator in ("Exists", "DoesNotExist") and values:
                raise ValueError(f"{here}: operator {operator} takes no values")
            expressions.append(Requirement(str(expr["key"]), operator, values))
        return cls(tuple((str(k), label_value(v)) for k, v in labels.items()), tuple(expressions))


def label_value(value: Any) -> str:
    # YAML turns `env: true` or `tier: 1` into bool/int; Kubernetes would reject them, we compare as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)



def service_selects(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """A Service's selector (a plain map) selects a pod when every key/value matches. Unlike a LabelSelector,
    an empty one selects nothing: Kubernetes then manages no endpoints at all."""
    if not selector:
        return False
    return LabelSelector(tuple((str(k), label_value(v)) for k, v in selector.items())).matches(labels or {})
