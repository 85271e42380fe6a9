"""Structural schemas of custom resources: pruning, defaulting, validation, and CRD checks.

kube-apiserver runs every custom-resource write through a fixed pipeline, and real clients depend
on each step: unknown fields are dropped (and, with `fieldValidation=Strict`, reported — which is
how kubectl 1.33 validates), `default:` values are filled in (operators such as kopf read them
back), and the result is validated with errors a user can act on. This module reproduces that
pipeline for the sandbox, with messages shaped like kube-apiserver's `field.Error` bodies
(`Required value`, `Unsupported value: "FOO": supported values: "A", "B"`, `Invalid value: ...`),
because people and tests match on them.

`validate_crd` checks a CustomResourceDefinition itself, so that a bad CRD gets a clear 422
instead of a resource type that silently prunes everything.

Deliberately left out: `x-kubernetes-validations` (CEL rules) are ignored silently — evaluating
CEL is out of scope, so objects that a real server would reject on a CEL rule are accepted here.
ObjectMeta at the root (and in embedded resources) is neither pruned nor validated here; the
server validates metadata on its own.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

Node = dict[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
EMBEDDED = "x-kubernetes-embedded-resource"
INT_OR_STRING = "x-kubernetes-int-or-string"
LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"

ROOT_META = frozenset({"apiVersion", "kind", "metadata"})


@dataclass(frozen=True)
class FieldIssue:
    """One validation failure: the field path and kube-apiserver's message body for it."""

    path: str
    message: str


# --------------------------------------------------------------------------- paths and rendering


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _quote(text: str) -> str:
    """Go's `%q`, close enough: a JSON string literal."""
    return json.dumps(text, ensure_ascii=False)


def _go_float(number: float) -> str:
    """Go's `%v` for a float64: shortest digits, exponent form below 1e-4 or from 1e6 up."""
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    parsed = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, parsed.digits)).rstrip("0") or "0"
    point = len(parsed.digits) + int(parsed.exponent)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_value(value: Any) -> str:
    """A bad value as `field.Error` prints it: strings quoted, scalars bare, compounds as `%#v`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _quote(value)
    return _go_syntax(value)


def _go_syntax(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{_quote(k)}:{_go_syntax(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_syntax(v) for v in value) + "}"
    if value is None:
        return "interface {}(nil)"
    return _go_value(value)


def _limit(number: Any) -> str:
    """A schema limit (a float64 in kube-openapi) as `%v` prints it."""
    return _go_float(float(number))


def _invalid(value: Any, detail: str) -> str:
    return f"Invalid value: {_go_value(value)}: {detail}"


def _unsupported(value: Any, allowed: Iterable[Any]) -> str:
    shown = (a if isinstance(a, str) else json.dumps(a, separators=(",", ":")) for a in allowed)
    return f"Unsupported value: {_go_value(value)}: supported values: " + ", ".join(
        _quote(s) for s in shown
    )


def _required(detail: str = "") -> str:
    return f"Required value: {detail}" if detail else "Required value"


def _forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


# --------------------------------------------------------------------------- JSON helpers


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return _is_int(value) or isinstance(value, float)


def _json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_int(value):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _canonical(value: Any) -> str:
    """A key equal for JSON-equal values (1 == 1.0, but true != 1)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, separators=(",", ":"))


def _as_dict(value: Any) -> Node:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------- prepare


def prepare(
    obj: dict[str, Any], schema: dict[str, Any] | None, *, preserve_unknown: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Prune unknown fields and apply defaults, as kube-apiserver does before validating.

    Returns a new object and the paths of the pruned fields (for `fieldValidation=Strict`
    errors and `Warn` warnings). `obj` is never mutated. With `preserve_unknown` (a CRD's legacy
    `spec.preserveUnknownFields: true`) nothing is pruned; defaults still apply.
    """
    out = copy.deepcopy(obj)
    if not isinstance(schema, dict):
        return out, []
    pruned: list[str] = []
    if not preserve_unknown:
        _prune_object(out, schema, "", pruned, preserve=bool(schema.get(PRESERVE)), root=True)
    _default_object(out, schema, skip=frozenset({"metadata"}))
    return out, pruned


def _prune(value: Any, node: Node | None, path: str, pruned: list[str], preserve: bool) -> None:
    """Kubernetes' pruning algorithm (structural/pruning), recording each dropped field."""
    if node is None:
        if not preserve:
            _prune_all(value, path, pruned)
        return
    preserve = bool(node.get(PRESERVE))
    if isinstance(value, dict):
        _prune_object(value, node, path, pruned, preserve=preserve)
    elif isinstance(value, list):
        items = node.get("items")
        item_node = items if isinstance(items, dict) else None
        for i, item in enumerate(value):
            _prune_item(item, item_node, _index(path, i), pruned, preserve)


def _prune_item(item: Any, node: Node | None, path: str, pruned: list[str], preserve: bool) -> None:
    # Under x-kubernetes-preserve-unknown-fields, array items keep their unknown fields too.
    if preserve and node is not None and not node.get(PRESERVE):
        node = {**node, PRESERVE: True}
    _prune(item, node, path, pruned, preserve)


def _prune_all(value: Any, path: str, pruned: list[str]) -> None:
    """No schema at all for an object: every key goes (arrays are searched for objects)."""
    if isinstance(value, dict):
        for key in list(value):
            pruned.append(_child(path, key))
            del value[key]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _prune_all(item, _index(path, i), pruned)


def _keeps_meta(node: Node, key: str, value: Any, root: bool) -> bool:
    """apiVersion/kind/metadata survive at the root and in embedded resources."""
    if key not in ROOT_META:
        return False
    if root:
        return True
    if not node.get(EMBEDDED):
        return False
    return isinstance(value, dict) if key == "metadata" else isinstance(value, str)


def _prune_object(
    obj: dict[str, Any],
    node: Node,
    path: str,
    pruned: list[str],
    *,
    preserve: bool,
    root: bool = False,
) -> None:
    props = _as_dict(node.get("properties"))
    extra = node.get("additionalProperties")
    for key in list(obj):
        if _keeps_meta(node, key, obj[key], root):
            continue
        if key in props and isinstance(props[key], dict):
            _prune(obj[key], props[key], _child(path, key), pruned, False)
        elif isinstance(extra, dict):
            _prune(obj[key], extra, _child(path, key), pruned, False)
        elif not (preserve or extra is True):
            pruned.append(_child(path, key))
            del obj[key]


def _default_value(node: Node) -> Any:
    return copy.deepcopy(node["default"])


def _has_default(node: Node) -> bool:
    return node.get("default") is not None


def _apply_defaults(value: Any, node: Any) -> None:
    if not isinstance(node, dict):
        return
    if isinstance(value, dict):
        _default_object(value, node)
    elif isinstance(value, list):
        _default_list(value, node.get("items"))


def _default_object(obj: dict[str, Any], node: Node, skip: frozenset[str] = frozenset()) -> None:
    """Fill absent fields from `default:`; replace or drop nulls the schema does not allow."""
    props = _as_dict(node.get("properties"))
    extra = node.get("additionalProperties")
    for key, sub in props.items():
        if key not in skip and key not in obj and isinstance(sub, dict) and _has_default(sub):
            obj[key] = _default_value(sub)
    for key in list(obj):
        sub = props.get(key, extra)
        if key in skip or not isinstance(sub, dict):
            continue
        if obj[key] is None and not sub.get("nullable"):
            if not _has_default(sub):
                del obj[key]
                continue
            obj[key] = _default_value(sub)
        _apply_defaults(obj[key], sub)


def _default_list(items: list[Any], node: Any) -> None:
    if not isinstance(node, dict):
        return
    for i, item in enumerate(items):
        if item is None and not node.get("nullable") and _has_default(node):
            items[i] = _default_value(node)
        _apply_defaults(items[i], node)


# --------------------------------------------------------------------------- validate


def validate(obj: dict[str, Any], schema: dict[str, Any] | None) -> list[FieldIssue]:
    """Validate an object against an OpenAPI v3 structural schema, as kube-apiserver does.

    Run it on the output of `prepare`. Metadata at the root is skipped; CEL rules
    (`x-kubernetes-validations`) are ignored.
    """
    if not isinstance(schema, dict):
        return []
    issues: list[FieldIssue] = []
    _validate(obj, schema, "", issues)
    return issues


Check = Callable[[Any, Node, str, list[FieldIssue]], None]


def _validate(value: Any, node: Any, path: str, issues: list[FieldIssue]) -> None:
    if not isinstance(node, dict):
        return
    if not _type_ok(value, node, path, issues) or value is None:
        return
    for check in _CHECKS:
        check(value, node, path, issues)


def _declared_types(node: Node) -> tuple[str, ...]:
    if node.get(INT_OR_STRING):
        return ("integer", "string")
    kind = node.get("type")
    return (kind,) if isinstance(kind, str) and kind else ()


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return _is_int(value) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return _is_number(value)
    return _json_type(value) == kind


def _type_ok(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> bool:
    types = _declared_types(node)
    if value is None:
        ok = bool(node.get("nullable")) or not types
    else:
        ok = not types or any(_is_type(value, t) for t in types)
    if not ok:
        actual = _json_type(value)
        detail = f"{path} in body must be of type {','.join(types)}: {_quote(actual)}"
        issues.append(FieldIssue(path, _invalid(actual, detail)))
    return ok


def _check_enum(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    allowed = node.get("enum")
    if not isinstance(allowed, list):
        return
    if _canonical(value) not in {_canonical(a) for a in allowed}:
        issues.append(FieldIssue(path, _unsupported(value, allowed)))


_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_FORMATS: dict[str, re.Pattern[str]] = {
    "date": re.compile(_DATE),
    "date-time": re.compile(
        _DATE + r"[Tt ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"
    ),
    "uuid": re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),
}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _check_format(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    """The formats kube-openapi checks that matter here; unknown formats pass, as in k8s."""
    fmt = node.get("format")
    if isinstance(value, str) and fmt in _FORMATS:
        ok = _FORMATS[fmt].fullmatch(value) is not None
    elif _is_int(value) and fmt in _INT_RANGES:
        low, high = _INT_RANGES[fmt]
        ok = low <= value <= high
    else:
        return
    if not ok:
        detail = f"{path} in body must be of type {fmt}: {_quote(str(value))}"
        issues.append(FieldIssue(path, _invalid(value, detail)))


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _check_string(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    if not isinstance(value, str):
        return
    max_len, min_len, pattern = node.get("maxLength"), node.get("minLength"), node.get("pattern")
    if _is_int(max_len) and len(value) > max_len:
        issues.append(FieldIssue(path, f"Too long: may not be longer than {max_len}"))
    if _is_int(min_len) and len(value) < min_len:
        detail = f"{path} in body should be at least {min_len} chars long"
        issues.append(FieldIssue(path, _invalid(value, detail)))
    regex = _regex(pattern) if isinstance(pattern, str) else None
    if regex is not None and regex.search(value) is None:
        detail = f"{path} in body should match '{pattern}'"
        issues.append(FieldIssue(path, _invalid(value, detail)))


def _near_integer(quotient: float) -> bool:
    """kube-openapi's multipleOf test tolerates float rounding (0.3 / 0.1 is a multiple)."""
    return abs(quotient - round(quotient)) <= 1e-9 * max(1.0, abs(quotient))


def _number_failures(value: float, node: Node) -> Iterable[str]:
    maximum, minimum = node.get("maximum"), node.get("minimum")
    if _is_number(maximum):
        if node.get("exclusiveMaximum") and value >= maximum:
            yield f"should be less than {_limit(maximum)}"
        elif value > maximum:
            yield f"should be less than or equal to {_limit(maximum)}"
    if _is_number(minimum):
        if node.get("exclusiveMinimum") and value <= minimum:
            yield f"should be greater than {_limit(minimum)}"
        elif value < minimum:
            yield f"should be greater than or equal to {_limit(minimum)}"
    factor = node.get("multipleOf")
    if _is_number(factor) and factor and not _near_integer(value / factor):
        yield f"should be a multiple of {_limit(factor)}"


def _check_number(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    if not _is_number(value):
        return
    for failure in _number_failures(value, node):
        issues.append(FieldIssue(path, _invalid(value, f"{path} in body {failure}")))


def _check_array(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    if not isinstance(value, list):
        return
    max_items, min_items = node.get("maxItems"), node.get("minItems")
    if _is_int(max_items) and len(value) > max_items:
        issues.append(
            FieldIssue(path, f"Too many: {len(value)}: must have at most {max_items} items")
        )
    if _is_int(min_items) and len(value) < min_items:
        detail = f"{path} in body should have at least {min_items} items"
        issues.append(FieldIssue(path, _invalid(len(value), detail)))
    if node.get("uniqueItems") and _duplicates(value):
        detail = f"{path} in body shouldn't contain duplicates"
        issues.append(FieldIssue(path, _invalid("", detail)))
    for i, item in enumerate(value):
        _validate(item, node.get("items"), _index(path, i), issues)


def _duplicates(values: list[Any]) -> list[int]:
    """Indexes of the second appearance of each repeated value (as k8s reports them)."""
    seen: dict[str, int] = {}
    out = []
    for i, value in enumerate(values):
        key = _canonical(value)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            out.append(i)
    return out


def _check_list_type(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    if not isinstance(value, list):
        return
    if node.get(LIST_TYPE) == "set":
        for i in _duplicates(value):
            issues.append(FieldIssue(_index(path, i), f"Duplicate value: {_go_value(value[i])}"))
    elif node.get(LIST_TYPE) == "map":
        keys = [str(k) for k in _as_list(node.get(LIST_MAP_KEYS))]
        entries = [{k: item[k] for k in keys if k in item} for item in _objects(value)]
        for i in _duplicates(entries):
            issues.append(FieldIssue(_index(path, i), f"Duplicate value: {_go_syntax(entries[i])}"))


def _objects(values: list[Any]) -> list[Node]:
    """List-map entries; a null (or malformed) entry counts as one with no keys, as in k8s."""
    return [v if isinstance(v, dict) else {} for v in values]


def _check_object(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    if not isinstance(value, dict):
        return
    skip_meta = not path or bool(node.get(EMBEDDED))
    for name in _as_list(node.get("required")):
        if name not in value:
            issues.append(FieldIssue(_child(path, str(name)), _required()))
    props = _as_dict(node.get("properties"))
    extra = node.get("additionalProperties")
    for key, item in value.items():
        if skip_meta and key == "metadata":
            continue
        sub = props.get(key, extra)
        _validate(item, sub, _child(path, key), issues)
    max_props = node.get("maxProperties")
    if _is_int(max_props) and len(value) > max_props:
        issues.append(
            FieldIssue(path, f"Too many: {len(value)}: must have at most {max_props} items")
        )


def _passes(value: Any, node: Any, path: str) -> bool:
    found: list[FieldIssue] = []
    _validate(value, node, path, found)
    return not found


def _check_junctors(value: Any, node: Node, path: str, issues: list[FieldIssue]) -> None:
    """allOf/anyOf/oneOf/not, reported the way kube-openapi words them."""
    for sub in _as_list(node.get("allOf")):
        _validate(value, sub, path, issues)
    failures = []
    any_of = _as_list(node.get("anyOf"))
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        failures.append("must validate at least one schema (anyOf)")
    one_of = _as_list(node.get("oneOf"))
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        failures.append("must validate one and only one schema (oneOf)")
    if isinstance(node.get("not"), dict) and _passes(value, node["not"], path):
        failures.append("must not validate the schema (not)")
    for failure in failures:
        issues.append(FieldIssue(path, _invalid("", f"{_quote(path)} {failure}")))


_CHECKS: tuple[Check, ...] = (
    _check_enum,
    _check_format,
    _check_string,
    _check_number,
    _check_array,
    _check_list_type,
    _check_object,
    _check_junctors,
)


# --------------------------------------------------------------------------- validate_crd

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_ROOT, _ITEM, _FIELD = "root", "item", "field"
_EMPTY_TYPE = {
    _ROOT: "must not be empty at the root",
    _ITEM: "must not be empty for specified array items",
    _FIELD: "must not be empty for specified object fields",
}
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def _dns1035(value: str) -> str | None:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035.fullmatch(value):
        errors.append(_DNS1035_MSG)
    return ",".join(errors) or None


def _dns1123_subdomain(value: str) -> str | None:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(_DNS1123_SUBDOMAIN_MSG)
    return ",".join(errors) or None


def validate_crd(crd: dict[str, Any]) -> list[FieldIssue]:
    """Check a CustomResourceDefinition (apiextensions.k8s.io/v1) as kube-apiserver does on create.

    Covers the name, group, scope, names, versions, and that each version's schema is present and
    structural; not conversion webhooks, printer columns, CEL rules, or default values.
    """
    spec = _as_dict(crd.get("spec"))
    names = _as_dict(spec.get("names"))
    issues = _crd_name_issues(_as_dict(crd.get("metadata")), spec, names)
    issues += _group_issues(spec.get("group"))
    issues += _scope_issues(spec.get("scope"))
    issues += _names_issues(names)
    issues += _versions_issues(_as_list(spec.get("versions")))
    if spec.get("preserveUnknownFields") is True:
        issues.append(FieldIssue("spec.preserveUnknownFields", _invalid(True, "must be false")))
    return issues


def _crd_name_issues(metadata: Node, spec: Node, names: Node) -> list[FieldIssue]:
    name = metadata.get("name")
    if not name:
        return [FieldIssue("metadata.name", _required("name or generateName is required"))]
    expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
    if name != expected:
        detail = 'must be spec.names.plural+"."+spec.group'
        return [FieldIssue("metadata.name", _invalid(name, detail))]
    return []


def _group_issues(group: Any) -> list[FieldIssue]:
    if not group:
        return [FieldIssue("spec.group", _required())]
    error = _dns1123_subdomain(str(group))
    if error is None and "." not in str(group):
        error = "should be a domain with at least one dot"
    return [FieldIssue("spec.group", _invalid(group, error))] if error else []


def _scope_issues(scope: Any) -> list[FieldIssue]:
    if not scope:
        return [FieldIssue("spec.scope", _required())]
    if scope not in ("Cluster", "Namespaced"):
        return [FieldIssue("spec.scope", _unsupported(scope, ["Cluster", "Namespaced"]))]
    return []


def _names_issues(names: Node) -> list[FieldIssue]:
    issues = [
        FieldIssue(f"spec.names.{key}", _required())
        for key in ("plural", "kind")
        if not names.get(key)
    ]
    for key in ("plural", "singular"):
        value = names.get(key)
        error = _dns1035(str(value)) if value else None
        if error:
            issues.append(FieldIssue(f"spec.names.{key}", _invalid(value, error)))
    for key in ("kind", "listKind"):
        value = names.get(key)
        error = _dns1035(str(value).lower()) if value else None
        if error:
            detail = "may have mixed case, but should otherwise match: " + error
            issues.append(FieldIssue(f"spec.names.{key}", _invalid(value, detail)))
    return issues


def _versions_issues(versions: list[Any]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    seen: list[str] = []
    storage = 0
    for i, raw in enumerate(versions):
        version = _as_dict(raw)
        name = str(version.get("name") or "")
        seen.append(name)
        storage += bool(version.get("storage"))
        error = _dns1035(name)
        if error:
            issues.append(FieldIssue(f"spec.versions[{i}].name", _invalid(name, error)))
        issues += _version_schema_issues(version, f"spec.versions[{i}].schema.openAPIV3Schema")
    shown = "[]string{" + ", ".join(_quote(n) for n in seen) + "}"
    if len(set(seen)) != len(seen):
        issues.append(
            FieldIssue(
                "spec.versions", f"Invalid value: {shown}: must contain unique version names"
            )
        )
    if storage != 1:
        detail = "must have exactly one version marked as storage version"
        issues.append(FieldIssue("spec.versions", f"Invalid value: {shown}: {detail}"))
    return issues


def _version_schema_issues(version: Node, path: str) -> list[FieldIssue]:
    schema = _as_dict(version.get("schema")).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        return [FieldIssue(path, _required("schemas are required"))]
    return _structural_issues(schema, path, _ROOT)


def _structural_issues(node: Node, path: str, level: str) -> list[FieldIssue]:
    """The structural-schema rules (apiextensions schema/validation.go), the ones that matter."""
    issues = _type_issues(node, path, level)
    issues += _keyword_issues(node, path, level)
    issues += _junctor_issues(node, path)
    for key, sub in _as_dict(node.get("properties")).items():
        issues += _structural_issues(_as_dict(sub), f"{path}.properties[{key}]", _FIELD)
    if isinstance(node.get("items"), dict):
        issues += _structural_issues(node["items"], f"{path}.items", _ITEM)
    if isinstance(node.get("additionalProperties"), dict):
        issues += _structural_issues(
            node["additionalProperties"], f"{path}.additionalProperties", _FIELD
        )
    return issues


def _type_issues(node: Node, path: str, level: str) -> list[FieldIssue]:
    kind = node.get("type")
    at = f"{path}.type"
    issues = []
    if node.get(EMBEDDED) and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        issues.append(FieldIssue(at, _invalid(kind, detail) if kind else _required(detail)))
    elif not kind and not (node.get(INT_OR_STRING) or node.get(PRESERVE)):
        issues.append(FieldIssue(at, _required(_EMPTY_TYPE[level])))
    if kind and kind not in _SCHEMA_TYPES:
        issues.append(FieldIssue(at, _unsupported(kind, _SCHEMA_TYPES)))
    if level == _ROOT and kind and kind != "object":
        issues.append(FieldIssue(at, _invalid(kind, "must be object at the root")))
    if kind == "array" and not isinstance(node.get("items"), dict):
        issues.append(FieldIssue(f"{path}.items", _required("must be specified")))
    return issues


def _keyword_issues(node: Node, path: str, level: str) -> list[FieldIssue]:
    issues = []
    extra = f"{path}.additionalProperties"
    if "additionalProperties" in node and level == _ROOT:
        issues.append(FieldIssue(extra, _forbidden("must not be used at the root")))
    if "additionalProperties" in node and "properties" in node:
        detail = "additionalProperties and properties are mutual exclusive"
        issues.append(FieldIssue(extra, _forbidden(detail)))
    if node.get("uniqueItems") is True:
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        issues.append(FieldIssue(f"{path}.uniqueItems", _forbidden(detail)))
    if node.get(INT_OR_STRING) and node.get(PRESERVE):
        detail = "must be false if x-kubernetes-int-or-string is true"
        issues.append(FieldIssue(f"{path}.{PRESERVE}", _invalid(True, detail)))
    if node.get(LIST_TYPE) == "map" and not node.get(LIST_MAP_KEYS):
        detail = "must not be empty if x-kubernetes-list-type is map"
        issues.append(FieldIssue(f"{path}.{LIST_MAP_KEYS}", _required(detail)))
    pattern = node.get("pattern")
    if isinstance(pattern, str) and _regex(pattern) is None:
        detail = "must be a valid regular expression, but isn't"
        issues.append(FieldIssue(f"{path}.pattern", _invalid(pattern, detail)))
    return issues


def _junctor_issues(node: Node, path: str) -> list[FieldIssue]:
    """Value validations under allOf/anyOf/oneOf/not may not declare types or defaults."""
    issues: list[FieldIssue] = []
    any_of = _as_list(node.get("anyOf"))
    if any_of != _INT_OR_STRING_ANY_OF:
        for i, sub in enumerate(any_of):
            issues += _nested_issues(_as_dict(sub), f"{path}.anyOf[{i}]")
    for i, sub in enumerate(_as_list(node.get("allOf"))):
        if i == 0 and _as_list(_as_dict(sub).get("anyOf")) == _INT_OR_STRING_ANY_OF:
            continue
        issues += _nested_issues(_as_dict(sub), f"{path}.allOf[{i}]")
    for i, sub in enumerate(_as_list(node.get("oneOf"))):
        issues += _nested_issues(_as_dict(sub), f"{path}.oneOf[{i}]")
    if isinstance(node.get("not"), dict):
        issues += _nested_issues(node["not"], f"{path}.not")
    return issues


def _nested_issues(node: Node, path: str) -> list[FieldIssue]:
    issues = []
    if node.get("type"):
        issues.append(FieldIssue(f"{path}.type", _forbidden("must be empty to be structural")))
    if "default" in node:
        issues.append(
            FieldIssue(f"{path}.default", _forbidden("must be undefined to be structural"))
        )
    for key, sub in _as_dict(node.get("properties")).items():
        issues += _nested_issues(_as_dict(sub), f"{path}.properties[{key}]")
    if isinstance(node.get("items"), dict):
        issues += _nested_issues(node["items"], f"{path}.items")
    return issues + _junctor_issues(node, path)
