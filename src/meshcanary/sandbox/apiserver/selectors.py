"""Label and field selectors, parsed, printed and matched the way kube-apiserver does it.

Why this exists: kubectl, the kubernetes Python client and kopf send `?labelSelector=` and
`?fieldSelector=` on every LIST and WATCH, and workload controllers resolve `spec.selector`
(a `metav1.LabelSelector`) to pods and publish it as the `/scale` subresource's
`status.selector`. A client behaves differently against the sandbox whenever the sandbox accepts,
rejects, matches or prints a selector differently from a real cluster, so this module follows
apimachinery's `labels.Parse`, `fields.ParseSelector` and `metav1.LabelSelectorAsSelector`
closely, error text included (the HTTP layer answers a `SelectorError` as 400 BadRequest).

Why it is shaped like this: a LIST may filter 20,000 objects, so all validation happens once at
parse time and each selector is compiled into plain tuples; `matches` does only dict look-ups and
comparisons, never a regex.

Beyond the brief, the string syntax also accepts apimachinery's numeric `key>N` and `key<N`,
because a real kube-apiserver accepts them too.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_selector_from_dict",
    "label_selector_to_string",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """Invalid selector; str(e) is a clear one-line message like kube-apiserver's (HTTP 400)."""

    def __init__(self, message: str) -> None:
        # Messages quote the client's text: keep them one line and encodable as UTF-8 JSON.
        safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(safe.replace("\r", "\\r").replace("\n", "\\n"))


# Operators, spelled as apimachinery's `selection.Operator` values.
_IN: Final = "in"
_NOT_IN: Final = "notin"
_EQUALS: Final = "="
_DOUBLE_EQUALS: Final = "=="
_NOT_EQUALS: Final = "!="
_EXISTS: Final = "exists"
_DOES_NOT_EXIST: Final = "!"
_GREATER: Final = "gt"
_LESS: Final = "lt"

_BINARY_OPERATORS: Final = (_IN, _NOT_IN, _EQUALS, _DOUBLE_EQUALS, _NOT_EQUALS, _GREATER, _LESS)
_SET_OPERATORS: Final = frozenset({_IN, _NOT_IN})
_UNARY_OPERATORS: Final = frozenset({_EXISTS, _DOES_NOT_EXIST})
_EXACT_OPERATORS: Final = frozenset({_EQUALS, _DOUBLE_EQUALS, _NOT_EQUALS})
_NUMERIC_OPERATORS: Final = frozenset({_GREATER, _LESS})
_PRINTED_OPERATOR: Final = {
    _EQUALS: "=",
    _DOUBLE_EQUALS: "==",
    _NOT_EQUALS: "!=",
    _GREATER: ">",
    _LESS: "<",
}
_DICT_OPERATORS: Final = {
    "In": _IN,
    "NotIn": _NOT_IN,
    "Exists": _EXISTS,
    "DoesNotExist": _DOES_NOT_EXIST,
}

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


# --- validation (apimachinery util/validation), run at parse time only ---------------------------

_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE_FMT: Final = f"({_NAME_FMT})?"
_DNS1123_FMT: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_RE: Final = re.compile(_NAME_FMT)
_VALUE_RE: Final = re.compile(_VALUE_FMT)
_DNS1123_RE: Final = re.compile(_DNS1123_FMT)
_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_NAME_EXAMPLES: Final = ("MyName", "my.name", "123-abc")
_DNS1123_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _too_long(text: str, limit: int) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _prefix_errors(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part must be non-empty"]
    errors = []
    if _too_long(prefix, 253):
        errors.append("prefix part must be no more than 253 characters")
    if not _DNS1123_RE.fullmatch(prefix):
        errors.append("prefix part " + _regex_error(_DNS1123_MSG, _DNS1123_FMT, "example.com"))
    return errors


def _name_errors(name: str) -> list[str]:
    errors = []
    if not name:
        errors.append("name part must be non-empty")
    elif _too_long(name, 63):
        errors.append("name part must be no more than 63 characters")
    if not _NAME_RE.fullmatch(name):
        errors.append("name part " + _regex_error(_NAME_MSG, _NAME_FMT, *_NAME_EXAMPLES))
    return errors


def _label_key_errors(key: str) -> list[str]:
    parts = key.split("/")
    if len(parts) > 2:
        shape = _regex_error(_NAME_MSG, _NAME_FMT, *_NAME_EXAMPLES)
        return [
            f"a valid label key {shape} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errors = _prefix_errors(parts[0]) if len(parts) == 2 else []
    return errors + _name_errors(parts[-1])


def _label_value_errors(value: str) -> list[str]:
    errors = []
    if _too_long(value, 63):
        errors.append("must be no more than 63 characters")
    if not _VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _shown(bad: object) -> str:
    return json.dumps(bad, ensure_ascii=False, separators=(",", ":"))


def _invalid(path: str, bad: object, detail: str) -> str:
    """A `field.Invalid` error rendered as apimachinery prints it."""
    return f"{path}: Invalid value: {_shown(bad)}: {detail}"


def _aggregate(errors: Sequence[str]) -> str:
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def _go_int(text: str) -> int | None:
    """`strconv.ParseInt(text, 10, 64)`, or None where Go would fail."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


# --- label requirements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One validated label requirement: `key`, an apimachinery operator name, its values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        """The requirement as apimachinery's `Requirement.String()` prints it."""
        if self.operator in _UNARY_OPERATORS:
            return ("!" if self.operator == _DOES_NOT_EXIST else "") + self.key
        values = ",".join(sorted(set(self.values)))
        if self.operator in _SET_OPERATORS:
            return f"{self.key} {self.operator} ({values})"
        return f"{self.key}{_PRINTED_OPERATOR[self.operator]}{values}"


def _value_count_error(operator: str, values: tuple[str, ...]) -> str | None:
    if operator in _SET_OPERATORS:
        ok, detail = bool(values), "for 'in', 'notin' operators, values set can't be empty"
    elif operator in _UNARY_OPERATORS:
        ok, detail = not values, "values set must be empty for exists and does not exist"
    elif operator in _EXACT_OPERATORS:
        ok, detail = len(values) == 1, "exact-match compatibility requires one single value"
    else:
        ok, detail = len(values) == 1, "for 'Gt', 'Lt' operators, exactly one value is required"
    return None if ok else _invalid("values", list(values), detail)


def _values_errors(key: str, operator: str, values: tuple[str, ...]) -> list[str]:
    errors = []
    for index, value in enumerate(values):
        if operator in _NUMERIC_OPERATORS and _go_int(value) is None:
            detail = "for 'Gt', 'Lt' operators, the value must be an integer"
            errors.append(_invalid(f"values[{index}]", value, detail))
        problems = _label_value_errors(value)
        if problems:
            errors.append(_invalid(f"values[{index}][{key}]", value, "; ".join(problems)))
    return errors


def _new_requirement(key: str, operator: str, values: tuple[str, ...]) -> Requirement:
    """apimachinery's `labels.NewRequirement`: validate everything, report every problem."""
    errors = []
    key_problems = _label_key_errors(key)
    if key_problems:
        errors.append(_invalid("key", key, "; ".join(key_problems)))
    count_error = _value_count_error(operator, values)
    if count_error:
        errors.append(count_error)
    errors += _values_errors(key, operator, values)
    if errors:
        raise SelectorError(_aggregate(errors))
    # Sorted and deduplicated, unlike apimachinery, which prints duplicates: its own parser
    # rejects the `k in (,,)` that three empty values would print as.
    return Requirement(key, operator, tuple(sorted(set(values))))


# --- label selectors ------------------------------------------------------------------------------

_NO_LABELS: Final[Mapping[str, str]] = {}
_Pairs = tuple[tuple[str, str], ...]
_Sets = tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An AND of label requirements, compiled into flat tuples for cheap `matches` calls."""

    requirements: tuple[Requirement, ...] = ()
    _equal: _Pairs = field(init=False, repr=False, compare=False)
    _not_equal: _Pairs = field(init=False, repr=False, compare=False)
    _in: _Sets = field(init=False, repr=False, compare=False)
    _not_in: _Sets = field(init=False, repr=False, compare=False)
    _exists: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _absent: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _numeric: tuple[tuple[str, int, bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, compiled in _compile(self.requirements).items():
            object.__setattr__(self, name, compiled)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels is selected (None means no labels)."""
        if labels is None:
            labels = _NO_LABELS
        get = labels.get
        for key, value in self._equal:
            if get(key) != value:
                return False
        for key, value in self._not_equal:
            if get(key) == value:
                return False
        for key, allowed in self._in:
            if get(key) not in allowed:
                return False
        for key, denied in self._not_in:
            if get(key) in denied:
                return False
        return self._matches_remaining(labels)

    def _matches_remaining(self, labels: Mapping[str, str]) -> bool:
        for key in self._exists:
            if key not in labels:
                return False
        for key in self._absent:
            if key in labels:
                return False
        for key, bound, greater in self._numeric:
            if not _compare(labels.get(key), bound, greater):
                return False
        return True

    def is_empty(self) -> bool:
        """True when the selector has no requirements, so it matches everything."""
        return not self.requirements

    def __str__(self) -> str:
        """The canonical string form, as apimachinery's `Selector.String()` prints it."""
        return ",".join(str(requirement) for requirement in self.requirements)


def _compare(value: str | None, bound: int, greater: bool) -> bool:
    number = None if value is None else _go_int(value)
    if number is None:
        return False
    return number > bound if greater else number < bound


def _compile(requirements: Iterable[Requirement]) -> dict[str, tuple[Any, ...]]:
    """Sort requirements into per-operator tuples; single-value sets become plain equality."""
    slots = ("_equal", "_not_equal", "_in", "_not_in", "_exists", "_absent", "_numeric")
    plan: dict[str, list[Any]] = {slot: [] for slot in slots}
    for requirement in requirements:
        slot, entry = _compiled_entry(requirement)
        plan[slot].append(entry)
    return {name: tuple(entries) for name, entries in plan.items()}


def _compiled_entry(requirement: Requirement) -> tuple[str, Any]:
    key, operator, values = requirement.key, requirement.operator, requirement.values
    if operator in _UNARY_OPERATORS:
        return ("_exists" if operator == _EXISTS else "_absent"), key
    if operator in _NUMERIC_OPERATORS:
        return "_numeric", (key, _go_int(values[0]), operator == _GREATER)
    positive = operator not in (_NOT_EQUALS, _NOT_IN)
    if len(set(values)) == 1:
        return ("_equal" if positive else "_not_equal"), (key, values[0])
    return ("_in" if positive else "_not_in"), (key, frozenset(values))


# --- the `?labelSelector=` string syntax (apimachinery labels.Parse) ------------------------------


class _Tok(enum.Enum):
    EOS = "end of string"
    IDENT = "identifier"
    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    NOT = "!"
    GREATER = ">"
    LESS = "<"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","


_SYMBOLS: Final = {
    token.value: token
    for token in _Tok
    if token not in (_Tok.EOS, _Tok.IDENT, _Tok.IN, _Tok.NOT_IN)
}
_KEYWORDS: Final = {"in": _Tok.IN, "notin": _Tok.NOT_IN}
_SPECIAL: Final = frozenset("=!(),<>")
_BLANK: Final = frozenset(" \t\r\n")
_OPERATOR_TOKENS: Final = {
    _Tok.IN: _IN,
    _Tok.NOT_IN: _NOT_IN,
    _Tok.EQUALS: _EQUALS,
    _Tok.DOUBLE_EQUALS: _DOUBLE_EQUALS,
    _Tok.NOT_EQUALS: _NOT_EQUALS,
    _Tok.GREATER: _GREATER,
    _Tok.LESS: _LESS,
}
_STARTS_REQUIREMENT: Final = (_Tok.IDENT, _Tok.NOT)
_Item = tuple[_Tok, str]


def _next_token(text: str, pos: int) -> tuple[_Tok, str, int]:
    end = len(text)
    while pos < end and text[pos] in _BLANK:
        pos += 1
    if pos == end:
        return _Tok.EOS, "", pos
    if text[pos] in _SPECIAL:
        literal = text[pos : pos + 2]
        if literal not in _SYMBOLS:
            literal = text[pos]
        return _SYMBOLS[literal], literal, pos + len(literal)
    stop = pos
    while stop < end and text[stop] not in _SPECIAL and text[stop] not in _BLANK:
        stop += 1
    word = text[pos:stop]
    return _KEYWORDS.get(word, _Tok.IDENT), word, stop


def _lex(text: str) -> list[_Item]:
    items: list[_Item] = []
    pos = 0
    while True:
        token, literal, pos = _next_token(text, pos)
        items.append((token, literal))
        if token is _Tok.EOS:
            return items


class _LabelParser:
    """A transcription of apimachinery's recursive-descent label selector parser."""

    def __init__(self, text: str) -> None:
        self._items = _lex(text)
        self._pos = 0

    def _peek(self, as_value: bool = True) -> _Item:
        token, literal = self._items[min(self._pos, len(self._items) - 1)]
        if as_value and token in (_Tok.IN, _Tok.NOT_IN):
            token = _Tok.IDENT  # `in` and `notin` are plain words where a key or value goes
        return token, literal

    def _take(self, as_value: bool = True) -> _Item:
        item = self._peek(as_value)
        self._pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self._peek()
            if token is _Tok.EOS:
                return requirements
            if token not in _STARTS_REQUIREMENT:
                expected = "!, identifier, or 'end of string'"
                raise SelectorError(f"found '{literal}', expected: {expected}")
            requirements.append(self._requirement())
            if self._at_end_after_requirement():
                return requirements

    def _at_end_after_requirement(self) -> bool:
        token, literal = self._take()
        if token is _Tok.EOS:
            return True
        if token is not _Tok.COMMA:
            raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
        token, literal = self._peek()
        if token not in _STARTS_REQUIREMENT:
            raise SelectorError(f"found '{literal}', expected: identifier after ','")
        return False

    def _requirement(self) -> Requirement:
        try:
            return self._parse_requirement()
        except SelectorError as error:
            raise SelectorError(f"unable to parse requirement: {error}") from None

    def _parse_requirement(self) -> Requirement:
        key, operator = self._key_and_inferred_operator()
        if operator is not None:
            return _new_requirement(key, operator, ())
        operator = self._operator()
        values = self._set_values() if operator in _SET_OPERATORS else self._exact_value()
        return _new_requirement(key, operator, tuple(values))

    def _key_and_inferred_operator(self) -> tuple[str, str | None]:
        operator = None
        token, literal = self._take()
        if token is _Tok.NOT:
            operator = _DOES_NOT_EXIST
            token, literal = self._take()
        if token is not _Tok.IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        problems = _label_key_errors(literal)
        if problems:
            raise SelectorError(_invalid("key", literal, "; ".join(problems)))
        if operator is None and self._peek()[0] in (_Tok.EOS, _Tok.COMMA):
            operator = _EXISTS
        return literal, operator

    def _operator(self) -> str:
        token, literal = self._take(as_value=False)
        operator = _OPERATOR_TOKENS.get(token)
        if operator is None:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operator

    def _exact_value(self) -> set[str]:
        token, literal = self._peek()
        if token in (_Tok.EOS, _Tok.COMMA):
            return {""}
        token, literal = self._take()
        if token is not _Tok.IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}

    def _set_values(self) -> set[str]:
        token, literal = self._take()
        if token is not _Tok.OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        token, literal = self._peek()
        if token is _Tok.CLOSE:
            self._take()
            return {""}
        if token not in (_Tok.IDENT, _Tok.COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifier_list()
        self._take()  # the ')' that ended the list
        return values

    def _identifier_list(self) -> set[str]:
        """Comma-separated, possibly empty values; returns with ')' as the next token."""
        values: set[str] = set()
        while True:
            token, literal = self._take()
            if token is _Tok.IDENT:
                values.add(literal)
                token, literal = self._peek()
                if token is _Tok.CLOSE:
                    return values
                if token is not _Tok.COMMA:
                    raise SelectorError(f"found '{literal}', expected: ',' or ')'")
            elif token is _Tok.COMMA:
                if self._empty_values_after_comma(values):
                    return values
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def _empty_values_after_comma(self, values: set[str]) -> bool:
        if not values:
            values.add("")  # "(,"
        token = self._peek()[0]
        if token is _Tok.CLOSE:
            values.add("")  # ",)"
            return True
        if token is _Tok.COMMA:
            self._take()
            values.add("")  # ",,"
        return False


def _by_key(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=attrgetter("key")))


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the `?labelSelector=` syntax; None or "" selects everything."""
    if not text:
        return LabelSelector()
    if not isinstance(text, str):
        raise SelectorError(f"label selector must be a string, not {type(text).__name__}")
    return LabelSelector(_by_key(_LabelParser(text).parse()))


# --- metav1.LabelSelector objects -----------------------------------------------------------------


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise SelectorError(f"{what} must be a list of strings")
    if not all(isinstance(item, str) for item in value):
        raise SelectorError(f"{what} must be a list of strings")
    return tuple(value)


def _match_labels(selector: Mapping[str, Any]) -> list[Requirement]:
    labels = selector.get("matchLabels")
    if labels is None:
        return []
    if not isinstance(labels, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in labels.items()
    ):
        raise SelectorError("matchLabels must map label keys to string values")
    return [_new_requirement(key, _EQUALS, (value,)) for key, value in sorted(labels.items())]


def _match_expression(expression: object) -> Requirement:
    if not isinstance(expression, Mapping):
        raise SelectorError("matchExpressions entries must be objects")
    key = expression.get("key", "")
    operator = expression.get("operator", "")
    if not isinstance(key, str):
        raise SelectorError("matchExpressions key must be a string")
    if not isinstance(operator, str) or operator not in _DICT_OPERATORS:
        raise SelectorError(f"{_shown(operator)} is not a valid label selector operator")
    values = _strings(expression.get("values"), "matchExpressions values")
    return _new_requirement(key, _DICT_OPERATORS[operator], values)


def _match_expressions(selector: Mapping[str, Any]) -> list[Requirement]:
    expressions = selector.get("matchExpressions")
    if expressions is None:
        return []
    if isinstance(expressions, str | bytes | Mapping) or not isinstance(expressions, Sequence):
        raise SelectorError("matchExpressions must be a list")
    return [_match_expression(expression) for expression in expressions]


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Compile a `metav1.LabelSelector` ({matchLabels, matchExpressions}); None selects all."""
    if sel is None:
        return LabelSelector()
    if not isinstance(sel, Mapping):
        raise SelectorError("label selector must be an object")
    return LabelSelector(_by_key(_match_labels(sel) + _match_expressions(sel)))


def label_selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """The canonical string of a `metav1.LabelSelector`, e.g. "app=web,tier in (a,b)"."""
    return str(label_selector_from_dict(sel))


# --- field selectors (apimachinery fields.ParseSelector) ------------------------------------------

_ALWAYS_SUPPORTED: Final = frozenset({"metadata.name", "metadata.namespace"})
_FIELD_OPERATORS: Final = ("!=", "==", "=")
_ESCAPABLE: Final = frozenset("\\,=")


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`path` (dotted, into the object) compared with `operator` ("=" or "!=") to `value`."""

    path: str
    operator: str
    value: str


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of field requirements; a missing field compares as ""."""

    requirements: tuple[FieldRequirement, ...] = ()
    _checks: tuple[tuple[tuple[str, ...], str, bool], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        checks = tuple(
            (tuple(r.path.split(".")), r.value, r.operator == "!=") for r in self.requirements
        )
        object.__setattr__(self, "_checks", checks)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether every requirement holds for this object."""
        for parts, value, negated in self._checks:
            if (_field_value(obj, parts) == value) is negated:
                return False
        return True

    def is_empty(self) -> bool:
        """True when the selector has no requirements, so it matches everything."""
        return not self.requirements


def _field_value(obj: Mapping[str, Any], parts: tuple[str, ...]) -> str:
    current: Any = obj
    try:
        for part in parts:
            current = current.get(part)
    except AttributeError:  # walked into a missing field or a non-object
        return ""
    if isinstance(current, str):
        return current
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current) if isinstance(current, int | float) else ""


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash."""
    terms, start, escaped = [], 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the first operator; the field name itself has no escaping."""
    for index in range(len(term)):
        for operator in _FIELD_OPERATORS:
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape(value: str) -> str:
    chars, escaped = [], False
    for char in value:
        if escaped:
            if char not in _ESCAPABLE:
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _ESCAPABLE:
            raise SelectorError(f"invalid field selector: unescaped character in value: '{char}'")
        else:
            chars.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(chars)


def _field_requirement(text: str, term: str) -> FieldRequirement:
    split = _split_term(term)
    if split is None:
        raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
    path, operator, raw = split
    return FieldRequirement(path, "!=" if operator == "!=" else "=", _unescape(raw))


def parse_field_selector(text: str | None, supported: Iterable[str]) -> FieldSelector:
    """Parse `?fieldSelector=`; fields other than metadata.name/namespace must be `supported`."""
    if not text:
        return FieldSelector()
    if not isinstance(text, str):
        raise SelectorError(f"field selector must be a string, not {type(text).__name__}")
    terms = sorted(term for term in _split_terms(text) if term)
    requirements = tuple(_field_requirement(text, term) for term in terms)
    allowed = _ALWAYS_SUPPORTED | ({supported} if isinstance(supported, str) else set(supported))
    for requirement in requirements:
        if requirement.path not in allowed:
            raise SelectorError(f"field label not supported: {requirement.path}")
    return FieldSelector(requirements)
