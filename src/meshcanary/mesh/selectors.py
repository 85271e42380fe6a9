"""metav1.LabelSelector in its dict form, evaluated exactly as the API server does.

Webhook `namespaceSelector`/`objectSelector`s decide which pods Istio injects, so the injection
model (`mesh.injection`) stands on this. Only the structured form (`matchLabels` and
`matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`) exists here: that is what
webhooks, Deployments and our own CRDs carry. Semantics follow apimachinery's
`LabelSelectorAsSelector`: a missing (None) selector matches everything, as the API server treats
an unset webhook selector; an empty one `{}` matches everything too; `NotIn` matches objects
without the key. Invalid selectors (unknown operator, `In` without values, `Exists` with values)
raise `ValueError`, as the API server rejects them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

EQUALS: Final = "="
"""A `matchLabels` entry (rendered `key=value`, unlike a one-value `In`)."""
IN: Final = "In"
NOT_IN: Final = "NotIn"
EXISTS: Final = "Exists"
DOES_NOT_EXIST: Final = "DoesNotExist"
OPERATORS: Final = frozenset({IN, NOT_IN, EXISTS, DOES_NOT_EXIST})

Selector = Mapping[str, Any]
"""A metav1.LabelSelector as API JSON: `{"matchLabels": {...}, "matchExpressions": [...]}`."""


@dataclass(frozen=True)
class Requirement:
    """One validated condition on one label key."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (IN, EQUALS):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.operator == EQUALS:
            return f"{self.key}={self.values[0]}"
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        word = "in" if self.operator == IN else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


def requirements(selector: Selector | None) -> list[Requirement]:
    """The selector's conditions, validated, in the order they are written."""
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        raise ValueError(f"a label selector must be a mapping, not {type(selector).__name__}")
    return [*_from_match_labels(selector.get("matchLabels")), *_from_expressions(selector)]


def matches(selector: Selector | None, labels: Mapping[str, str] | None) -> bool:
    """Whether `labels` satisfy `selector` (None selects everything, as webhooks do)."""
    present = labels or {}
    return all(requirement.matches(present) for requirement in requirements(selector))


def to_string(selector: Selector | None) -> str:
    """kubectl's rendering: requirements sorted by key, `<none>` when there are none.

    `{"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}`
    renders as `a=b,!c`.
    """
    rendered = [str(r) for r in sorted(requirements(selector), key=lambda r: r.key)]
    return ",".join(rendered) if rendered else "<none>"


def _from_match_labels(match_labels: Any) -> Iterator[Requirement]:
    if match_labels is None:
        return
    if not isinstance(match_labels, Mapping):
        raise ValueError("matchLabels must be a mapping of label keys to values")
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise ValueError(f"matchLabels[{key!r}] must be a string")
        yield Requirement(str(key), EQUALS, (value,))


def _from_expressions(selector: Selector) -> Iterator[Requirement]:
    expressions = selector.get("matchExpressions")
    if expressions is None:
        return
    if isinstance(expressions, str | bytes) or not isinstance(expressions, Sequence):
        raise ValueError("matchExpressions must be a list")
    for expression in expressions:
        yield _requirement(expression)


def _requirement(expression: Any) -> Requirement:
    if not isinstance(expression, Mapping):
        raise ValueError("each matchExpressions entry must be a mapping")
    key, operator = expression.get("key"), expression.get("operator")
    if not isinstance(key, str) or not key:
        raise ValueError("a matchExpressions entry needs a non-empty key")
    if operator not in OPERATORS:
        raise ValueError(
            f"{key}: operator {operator!r} is not one of In, NotIn, Exists, DoesNotExist"
        )
    values = _values(key, expression.get("values"))
    if operator in (IN, NOT_IN) and not values:
        raise ValueError(f"{key}: operator {operator} needs at least one value")
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        raise ValueError(f"{key}: operator {operator} takes no values")
    return Requirement(key, operator, tuple(sorted(set(values))))


def _values(key: str, values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{key}: values must be a list of strings")
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"{key}: values must be strings")
    return list(values)
