"""Label and field selectors behave like apimachinery's: syntax, semantics, errors, printing."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.sandbox.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    label_selector_from_dict,
    label_selector_to_string,
    parse_field_selector,
    parse_label_selector,
)

WEB = {"app": "web", "tier": "front", "istio.io/rev": "1-22"}

# --- label selector strings: every operator -------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app=db", WEB, False),
        ("app==web", WEB, True),
        ("app==db", WEB, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("app in (db,web)", WEB, True),
        ("app in (db,cache)", WEB, False),
        ("app notin (db,cache)", WEB, True),
        ("app notin (db,web)", WEB, False),
        ("app", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!app", WEB, False),
        ("istio.io/rev=1-22", WEB, True),
        ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
        ("app=web,tier=front", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("app=web,!missing,tier in (front),istio.io/rev", WEB, True),
    ],
)
def test_every_operator(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("selector", ["app!=web", "app notin (web)", "!app"])
def test_negative_operators_match_when_the_key_is_absent(selector: str) -> None:
    assert parse_label_selector(selector).matches({"other": "x"})
    assert parse_label_selector(selector).matches({})
    assert parse_label_selector(selector).matches(None)


@pytest.mark.parametrize("selector", ["app=web", "app==web", "app in (web)", "app"])
def test_positive_operators_need_the_key(selector: str) -> None:
    assert not parse_label_selector(selector).matches({"other": "web"})
    assert not parse_label_selector(selector).matches(None)


def test_empty_values() -> None:
    assert parse_label_selector("app=").matches({"app": ""})
    assert not parse_label_selector("app=").matches({})
    assert not parse_label_selector("app!=").matches({"app": ""})
    assert parse_label_selector("app!=").matches({})
    assert parse_label_selector("app in ()").matches({"app": ""})
    assert parse_label_selector("app in (,web)").matches({"app": ""})
    assert parse_label_selector("app in (,web)").matches({"app": "web"})
    assert str(parse_label_selector("x in (foo,,baz),y,z notin ()")) == (
        "x in (,baz,foo),y,z notin ()"
    )


def test_in_and_notin_are_ordinary_words_as_keys_and_values() -> None:
    selector = parse_label_selector("in in (in, notin),notin notin (in)")
    assert selector.matches({"in": "notin", "notin": "x"})
    assert not selector.matches({"in": "notin", "notin": "in"})
    assert parse_label_selector("in").matches({"in": "x"})
    assert parse_label_selector("!notin").matches({})


def test_numeric_comparisons() -> None:
    greater = parse_label_selector("replicas>2")
    assert greater.matches({"replicas": "3"})
    assert not greater.matches({"replicas": "2"})
    assert not greater.matches({"replicas": "three"})
    assert not greater.matches({})
    assert parse_label_selector("replicas<2").matches({"replicas": "-5"})
    assert not parse_label_selector("replicas<2").matches({"replicas": "1_0"})
    with pytest.raises(SelectorError, match="must be an integer"):
        parse_label_selector("replicas>two")


@pytest.mark.parametrize(
    "selector",
    [
        "  app = web ,  tier  in ( front , back )  ",
        "app=web,tier in (front,back)",
        "\tapp==web,\n tier in(front,back)",
        "app=web , tier notin (x) , ! missing",
    ],
)
def test_whitespace_is_allowed_around_tokens(selector: str) -> None:
    assert parse_label_selector(selector).matches(WEB)


@pytest.mark.parametrize("selector", [None, "", "   ", "\t\n"])
def test_empty_selects_everything(selector: str | None) -> None:
    parsed = parse_label_selector(selector)
    assert parsed.is_empty()
    assert parsed.matches(WEB)
    assert parsed.matches(None)
    assert str(parsed) == ""


def test_is_empty_is_false_with_requirements() -> None:
    assert not parse_label_selector("app").is_empty()


def test_parse_sorts_by_key_and_prints_canonically() -> None:
    parsed = parse_label_selector("tier in (b, a, b), app == web, !zone, app")
    assert str(parsed) == "app==web,app,tier in (a,b),!zone"


# --- invalid label selector strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("in (a", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a in (b))", "found ')', expected: ',' or 'end of string'"),
        ("a in ((b)", "found '(', expected: ',', ')' or identifier"),
        ("a=(b)", "found '(', expected: identifier"),
        ("a b", "found 'b', expected: in, notin"),
        ("!", "found '', expected: identifier"),
        (",a", "found ',', expected: !, identifier"),
        ("app=we b", "found 'b', expected: ',' or 'end of string'"),
    ],
)
def test_syntax_errors_read_like_apimachinery(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_label_selector(selector)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "selector",
    [
        "app=wéb",
        "app=-web",
        "app=" + "v" * 64,
        "ap$p=web",
        "-app",
        "a/b/c",
        "/app",
        "Istio.IO/rev",
        "example.com/",
        "x" * 64,
        "app in (a,-b)",
        "app\x0bx",
    ],
)
def test_bad_keys_and_values_are_rejected(selector: str) -> None:
    with pytest.raises(SelectorError, match="Invalid value"):
        parse_label_selector(selector)


@pytest.mark.parametrize("selector", ["app=\ud800", "\ud800", "a in (\n\ud800)"])
def test_error_messages_are_one_line_and_encodable(selector: str) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_label_selector(selector)
    assert "\n" not in str(raised.value)
    str(raised.value).encode("utf-8")
    with pytest.raises(SelectorError) as raised:
        parse_field_selector(f"spec.x={selector}\n", ())
    assert "\n" not in str(raised.value)
    str(raised.value).encode("utf-8")


def test_long_valid_keys_and_values_are_accepted() -> None:
    key = "a" * 200 + ".example.com/" + "n" * 63
    assert parse_label_selector(f"{key}={'v' * 63}").matches({key: "v" * 63})


SELECTOR_ALPHABET = "=!(),<> \t\nabin-_./09zé\\"


@given(st.text() | st.text(alphabet=SELECTOR_ALPHABET))
def test_random_text_raises_only_selector_error(text: str) -> None:
    try:
        parsed = parse_label_selector(text)
    except SelectorError as error:
        assert str(error) and "\n" not in str(error)
        str(error).encode("utf-8")
        return
    # Whatever parses prints to a string that parses back to the same selector.
    assert parse_label_selector(str(parsed)) == parsed


# --- metav1.LabelSelector objects -----------------------------------------------------------------


def test_dict_selector_matches_labels_and_expressions() -> None:
    selector = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
                {"key": "istio.io/rev", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert selector.matches(WEB)
    assert not selector.matches({**WEB, "zone": "a"})
    assert not selector.matches({**WEB, "legacy": "yes"})
    assert not selector.matches({"app": "web", "tier": "front"})


@pytest.mark.parametrize("selector", [None, {}, {"matchLabels": {}, "matchExpressions": []}])
def test_empty_dict_selector_selects_everything(selector: dict[str, Any] | None) -> None:
    compiled = label_selector_from_dict(selector)
    assert compiled.is_empty()
    assert compiled.matches(WEB)
    assert label_selector_to_string(selector) == ""


def test_to_string_is_apimachinery_canonical_form() -> None:
    selector = {
        "matchLabels": {"tier": "x", "app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "istio.io/rev", "operator": "Exists"},
        ],
    }
    assert label_selector_to_string(selector) == (
        "app=web,!canary,env notin (prod),istio.io/rev,tier=x,tier in (a,b)"
    )
    assert label_selector_to_string({"matchLabels": {"app": "web"}}) == "app=web"


def test_duplicate_values_print_once_so_the_string_reparses() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["", "", ""]}]}
    assert label_selector_to_string(selector) == "a notin ()"
    duplicated = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b", "", "b"]}]}
    assert label_selector_to_string(duplicated) == "a in (,b)"
    assert parse_label_selector("a in (,b)") == label_selector_from_dict(duplicated)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, '"Gt" is not'),
        ({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}, '"in" is not'),
        ({"matchExpressions": [{"key": "a"}]}, '"" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}, "can't be"),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "values set must be empty for exists and does not exist",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "name part must be non-empty"),
        ({"matchLabels": {"app": "-web"}}, 'values[0][app]: Invalid value: "-web"'),
        ({"matchLabels": {"bad key": "web"}}, 'key: Invalid value: "bad key"'),
        ({"matchLabels": ["app"]}, "matchLabels must map"),
        ({"matchLabels": {"app": 1}}, "matchLabels must map"),
        ({"matchExpressions": {"key": "a"}}, "matchExpressions must be a list"),
        ({"matchExpressions": ["a"]}, "entries must be objects"),
        ({"matchExpressions": [{"key": 1, "operator": "Exists"}]}, "key must be a string"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}, "list of str"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}, "list of str"),
    ],
)
def test_bad_dict_selectors_raise_selector_error(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        label_selector_from_dict(selector)
    assert message in str(raised.value)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(SelectorError) as raised:
        label_selector_from_dict({"matchExpressions": [{"key": "-a", "operator": "In"}]})
    message = str(raised.value)
    assert message.startswith("[key: Invalid value")
    assert "values set can't be empty" in message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
SELECTOR_JSON = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": JSON | st.dictionaries(st.text(max_size=5), JSON),
        "matchExpressions": JSON
        | st.lists(
            st.fixed_dictionaries(
                {}, optional={"key": JSON, "operator": JSON, "values": JSON | st.lists(JSON)}
            )
        ),
    },
)


@given(JSON | SELECTOR_JSON)
def test_random_dicts_raise_only_selector_error(selector: Any) -> None:
    with contextlib.suppress(SelectorError):
        label_selector_from_dict(selector)


# --- property: dict form, string form and a naive oracle agree ------------------------------------

KEYS = ["app", "tier", "in", "notin", "istio.io/rev", "app.kubernetes.io/name", "a-b_c.d"]
VALUES = ["", "web", "a", "b", "in", "notin", "v1.2_3-x", "0"]
LABELS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES))
SET_EXPRESSIONS = st.fixed_dictionaries(
    {
        "key": st.sampled_from(KEYS),
        "operator": st.sampled_from(["In", "NotIn"]),
        "values": st.lists(st.sampled_from(VALUES), min_size=1, max_size=4),
    }
)
PRESENCE_EXPRESSIONS: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"key": st.sampled_from(KEYS), "operator": st.sampled_from(["Exists", "DoesNotExist"])},
    optional={"values": st.just(list[str]()) | st.none()},
)
DICT_SELECTORS = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": LABELS,
        "matchExpressions": st.lists(SET_EXPRESSIONS | PRESENCE_EXPRESSIONS, max_size=4),
    },
)


def oracle(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """The documented metav1.LabelSelector semantics, written as plainly as possible."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        present, values = key in labels, expression.get("values") or []
        held = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not held:
            return False
    return True


@given(DICT_SELECTORS, st.lists(LABELS, min_size=1, max_size=8))
def test_string_form_matches_exactly_like_the_dict_form(
    selector: dict[str, Any], label_sets: list[dict[str, str]]
) -> None:
    from_dict = label_selector_from_dict(selector)
    reparsed = parse_label_selector(label_selector_to_string(selector))
    for labels in label_sets:
        expected = oracle(selector, labels)
        assert from_dict.matches(labels) is expected
        assert reparsed.matches(labels) is expected


@given(DICT_SELECTORS)
def test_canonical_string_is_a_fixed_point(selector: dict[str, Any]) -> None:
    text = label_selector_to_string(selector)
    assert str(parse_label_selector(text)) == text
    assert parse_label_selector(text) == label_selector_from_dict(selector)


@given(
    st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), min_size=1, max_size=4),
    st.lists(st.sampled_from(["", " ", "\t", "  \n"]), min_size=4, max_size=4),
    LABELS,
)
def test_whitespace_never_changes_meaning(
    pairs: list[tuple[str, str]], gaps: list[str], labels: dict[str, str]
) -> None:
    tight = ",".join(f"{key}!={value}" for key, value in pairs)
    first, second, third, fourth = gaps
    loose = ",".join(f"{first}{key}{second}!={third}{value}{fourth}" for key, value in pairs)
    assert parse_label_selector(loose) == parse_label_selector(tight)
    assert parse_label_selector(loose).matches(labels) is all(
        labels.get(key) != value for key, value in pairs
    )


# --- field selectors ------------------------------------------------------------------------------

POD_FIELDS = ["status.phase", "spec.nodeName", "spec.hostNetwork", "spec.restartPolicy"]
RUNNING = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "hostNetwork": False},
    "status": {"phase": "Running"},
}
PENDING = {"metadata": {"name": "web-2", "namespace": "default"}, "status": {"phase": "Pending"}}


def pods(text: str | None) -> FieldSelector:
    return parse_field_selector(text, POD_FIELDS)


@pytest.mark.parametrize(
    ("selector", "running", "pending"),
    [
        ("status.phase=Running", True, False),
        ("status.phase==Running", True, False),
        ("status.phase!=Running", False, True),
        ("spec.nodeName=node-1", True, False),
        ("spec.nodeName=", False, True),
        ("spec.nodeName!=", True, False),
        ("metadata.name!=x", True, True),
        ("metadata.name!=web-1", False, True),
        ("metadata.name=web-2", False, True),
        ("metadata.namespace=default", True, True),
        ("metadata.namespace=default,status.phase=Pending", False, True),
        ("spec.hostNetwork=false", True, False),
        ("spec.restartPolicy=", True, True),
    ],
)
def test_field_selectors_on_pods(selector: str, running: bool, pending: bool) -> None:
    parsed = pods(selector)
    assert parsed.matches(RUNNING) is running
    assert parsed.matches(PENDING) is pending


def test_field_selectors_on_events() -> None:
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "web-1"}}
    parsed = parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.name=web-1",
        [
            "involvedObject.kind",
            "involvedObject.name",
        ],
    )
    assert parsed.matches(event)
    assert not parsed.matches({"metadata": {"name": "e"}})


def test_walking_through_a_non_object_compares_as_empty() -> None:
    assert pods("spec.nodeName=").matches({"spec": "oops"})
    assert pods("spec.nodeName=").matches({"spec": None})
    assert pods("status.phase=").matches({"status": {"phase": ["Running"]}})


@pytest.mark.parametrize(
    ("selector", "value"),
    [
        (r"metadata.name=a\,b", "a,b"),
        (r"metadata.name=a\=b", "a=b"),
        (r"metadata.name=a\\b", "a\\b"),
        (r"metadata.name=a\\", "a\\"),
    ],
)
def test_field_values_unescape(selector: str, value: str) -> None:
    assert pods(selector).matches({"metadata": {"name": value}})
    assert not pods(selector).matches({"metadata": {"name": "ab"}})


def test_escaped_comma_does_not_split_terms() -> None:
    parsed = pods(r"status.phase=Running,metadata.name=web\,1")
    assert [(r.path, r.operator, r.value) for r in parsed.requirements] == [
        ("metadata.name", "=", "web,1"),
        ("status.phase", "=", "Running"),
    ]


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("spec.foo=x", "field label not supported: spec.foo"),
        ("metadata.labels=x", "field label not supported: metadata.labels"),
        ("=x", "field label not supported: "),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a,b", "invalid selector: 'metadata.name=a,b'; can't understand 'b'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: '='"),
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        pods(selector)
    assert str(raised.value) == message


def test_unsupported_field_message_is_exact() -> None:
    with pytest.raises(SelectorError) as raised:
        parse_field_selector("status.phase=Running", [])
    assert str(raised.value) == "field label not supported: status.phase"


@pytest.mark.parametrize("selector", [None, "", ",", ",,"])
def test_empty_field_selector_selects_everything(selector: str | None) -> None:
    parsed = pods(selector)
    assert parsed.is_empty()
    assert parsed.matches(RUNNING)
    assert parsed.matches({})


def test_metadata_fields_are_always_supported() -> None:
    parsed = parse_field_selector("metadata.name=web-1,metadata.namespace=default", ())
    assert parsed.matches(RUNNING)
    assert not parsed.is_empty()


@given(st.text() | st.text(alphabet="=!,\\ abmetadn.ps"))
def test_random_field_selectors_raise_only_selector_error(text: str) -> None:
    try:
        parsed = parse_field_selector(text, POD_FIELDS)
    except SelectorError as error:
        assert "\n" not in str(error)
        str(error).encode("utf-8")
        return
    assert isinstance(parsed.matches(RUNNING), bool)


def test_selectors_are_hashable_values() -> None:
    assert parse_label_selector("a=b,c") == parse_label_selector("c , a=b")
    assert hash(parse_label_selector("a=b")) == hash(parse_label_selector(" a = b "))
    assert isinstance(parse_label_selector("a"), LabelSelector)
    assert pods("status.phase=Running") == pods("status.phase=Running")
