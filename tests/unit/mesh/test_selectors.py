"""Label selectors in dict form match and print exactly as apimachinery's do."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import selectors
from meshcanary.sandbox.apiserver import selectors as oracle

WEB = {"app": "web", "istio.io/rev": "1-22"}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        entry["values"] = list(values)
    return entry


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, WEB, True),
        (None, None, True),
        ({}, WEB, True),
        ({"matchLabels": {}}, None, True),
        ({"matchLabels": {"app": "web"}}, WEB, True),
        ({"matchLabels": {"app": "db"}}, WEB, False),
        ({"matchLabels": {"app": "web", "tier": "x"}}, WEB, False),
        ({"matchLabels": {"app": "web"}}, None, False),
        ({"matchExpressions": [expr("app", "In", "db", "web")]}, WEB, True),
        ({"matchExpressions": [expr("app", "In", "db")]}, WEB, False),
        ({"matchExpressions": [expr("tier", "In", "x")]}, WEB, False),
        ({"matchExpressions": [expr("app", "NotIn", "db")]}, WEB, True),
        ({"matchExpressions": [expr("app", "NotIn", "web")]}, WEB, False),
        ({"matchExpressions": [expr("tier", "NotIn", "x")]}, WEB, True),
        ({"matchExpressions": [expr("app", "Exists")]}, WEB, True),
        ({"matchExpressions": [expr("tier", "Exists")]}, WEB, False),
        ({"matchExpressions": [expr("tier", "DoesNotExist")]}, WEB, True),
        ({"matchExpressions": [expr("app", "DoesNotExist")]}, WEB, False),
        ({"matchExpressions": [expr("app", "DoesNotExist")]}, None, True),
        (
            {"matchLabels": {"app": "web"}, "matchExpressions": [expr("istio.io/rev", "In", "x")]},
            WEB,
            False,
        ),
        ({"matchExpressions": [expr("app", "Exists"), expr("istio.io/rev", "Exists")]}, WEB, True),
    ],
)
def test_matches(selector: Any, labels: dict[str, str] | None, expected: bool) -> None:
    assert selectors.matches(selector, labels) is expected


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [expr("a", "Equals", "b")]}, "operator 'Equals'"),
        ({"matchExpressions": [expr("a", "In")]}, "needs at least one value"),
        ({"matchExpressions": [expr("a", "NotIn")]}, "needs at least one value"),
        ({"matchExpressions": [expr("a", "Exists", "b")]}, "takes no values"),
        ({"matchExpressions": [expr("a", "DoesNotExist", "b")]}, "takes no values"),
        ({"matchExpressions": [{"operator": "Exists"}]}, "non-empty key"),
        ({"matchExpressions": "a=b"}, "must be a list"),
        ({"matchExpressions": ["a"]}, "must be a mapping"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": "b"}]}, "list of strings"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}, "strings"),
        ({"matchLabels": ["a"]}, "matchLabels must be a mapping"),
        ({"matchLabels": {"a": 1}}, "must be a string"),
        ("app=web", "must be a mapping"),
    ],
)
def test_invalid_selectors_are_rejected(selector: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        selectors.matches(selector, WEB)


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        ({"matchExpressions": [expr("a", "In", "y", "x")]}, "a in (x,y)"),
        ({"matchExpressions": [expr("a", "In", "x")]}, "a in (x)"),
        ({"matchExpressions": [expr("a", "NotIn", "x", "x")]}, "a notin (x)"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [expr("istio.io/rev", "DoesNotExist"), expr("b", "Exists")],
            },
            "app=web,b,!istio.io/rev",
        ),
    ],
)
def test_to_string(selector: Any, text: str) -> None:
    assert selectors.to_string(selector) == text


# -- differential: the sandbox's independent apimachinery port is the oracle ----------------------

KEYS = st.sampled_from(["app", "tier", "istio.io/rev", "istio-injection"])
VALUES = st.sampled_from(["a", "b", "c", "enabled"])
LABELS = st.dictionaries(KEYS, VALUES, max_size=4)


@st.composite
def expressions(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(sorted(selectors.OPERATORS)))
    key = draw(KEYS)
    if operator in (selectors.EXISTS, selectors.DOES_NOT_EXIST):
        return expr(key, operator)
    return expr(key, operator, *draw(st.lists(VALUES, min_size=1, max_size=3)))


SELECTORS = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(KEYS, VALUES, max_size=2),
        "matchExpressions": st.lists(expressions(), max_size=3),
    },
)


@given(SELECTORS, LABELS)
def test_matches_agrees_with_apimachinery_semantics(
    selector: dict[str, Any], labels: dict[str, str]
) -> None:
    expected = oracle.label_selector_from_dict(selector).matches(labels)
    assert selectors.matches(selector, labels) is expected


@given(SELECTORS)
def test_to_string_agrees_with_apimachinery(selector: dict[str, Any]) -> None:
    expected = oracle.label_selector_to_string(selector) or "<none>"
    assert selectors.to_string(selector) == expected


@given(SELECTORS, LABELS)
def test_a_selector_is_the_conjunction_of_its_requirements(
    selector: dict[str, Any], labels: dict[str, str]
) -> None:
    each = [
        selectors.matches({"matchLabels": {k: v}}, labels)
        for k, v in (selector.get("matchLabels") or {}).items()
    ] + [
        selectors.matches({"matchExpressions": [e]}, labels)
        for e in selector.get("matchExpressions") or []
    ]
    assert selectors.matches(selector, labels) is all(each)


@given(KEYS, st.lists(VALUES, min_size=1, max_size=3), LABELS)
def test_not_in_is_the_negation_of_in(key: str, values: list[str], labels: dict[str, str]) -> None:
    is_in = selectors.matches({"matchExpressions": [expr(key, "In", *values)]}, labels)
    not_in = selectors.matches({"matchExpressions": [expr(key, "NotIn", *values)]}, labels)
    assert is_in is not not_in


@given(KEYS, LABELS)
def test_exists_is_the_negation_of_does_not_exist(key: str, labels: dict[str, str]) -> None:
    exists = selectors.matches({"matchExpressions": [expr(key, "Exists")]}, labels)
    absent = selectors.matches({"matchExpressions": [expr(key, "DoesNotExist")]}, labels)
    assert exists is not absent
    assert exists is (key in labels)
