"""The three PATCH flavours of the Kubernetes API: JSON merge, JSON patch and strategic merge.

Real clients pick the flavour per call, and each has semantics they rely on: kopf guards its
finalizer writes with a JSON-patch `test` of `resourceVersion`; `kubectl set image`, `rollout
restart` and client-side `apply` send strategic merge patches that only work if lists like
`containers` merge by `name` instead of being replaced, and `apply` adds directives
(`$setElementOrder/...`, `$retainKeys`, `$deleteFromPrimitiveList/...`, `$patch`) that must be
executed, never stored. So this module follows RFC 7386, RFC 6902 and
k8s.io/apimachinery/pkg/util/strategicpatch (server side: parallel lists merged, unmatched nulls
ignored) closely.

Everything here is a pure function on JSON values (dict/list/str/int/float/bool/None): inputs
are never mutated and results share no containers with them. Failures raise `PatchError` with
the HTTP code the server should answer (400 malformed patch, 422 patch that cannot apply, 415
strategic merge on a kind without a schema); `PatchTestFailed` marks a failed JSON-patch `test`.

Strategic merge needs per-field patch metadata. It lives in `smp_keys.json`, generated from the
Kubernetes v1.33 OpenAPI definitions by `scripts/gen_smp_keys.py`, and loaded lazily once:

    {"kinds": {apiVersion: {kind: definition}},
     "defs": {definition: {field: {"s": strategy, "k": mergeKey, "r": ref, "m": mapValueRef}}}}

`r` is the definition of an object field or of an array's items, `m` that of a map's values.
Fields absent from the table behave like JSON merge patch (maps merge, lists are replaced).

One deliberate leniency: `$patch: merge` (rejected by Kubernetes) is accepted as a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Final

import orjson

__all__ = [
    "PatchError",
    "PatchTestFailed",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "strategic_merge_supported",
]

JSONDict = dict[str, Any]

DIRECTIVE: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ORDER_PREFIX: Final = "$setElementOrder/"
DELETE_PRIMITIVE_PREFIX: Final = "$deleteFromPrimitiveList/"
_MALFORMED_PREFIXES: Final = ("$setElementOrder", "$deleteFromPrimitiveList")


class PatchError(Exception):
    """Malformed patch or a path that does not apply -> HTTP 422 (or 400 for malformed)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PatchTestFailed(PatchError):
    """A JSON-patch `test` op failed -> HTTP 422."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 422)


def _malformed(message: str) -> PatchError:
    return PatchError(message, 400)


# --------------------------------------------------------------------------- JSON values


def _clone(value: Any) -> Any:
    """A deep copy of a JSON value: an orjson round trip, ~5x faster than a Python walk.

    JSON has no NaN or infinity (the HTTP layer refuses them), so the round trip is exact.
    """
    if isinstance(value, dict | list):
        try:
            return orjson.loads(orjson.dumps(value))
        except (orjson.JSONEncodeError, TypeError):
            return _clone_walk(value)
    return value


def _clone_walk(value: Any) -> Any:
    """The slow path, for values orjson cannot encode (non-string keys, huge integers)."""
    if isinstance(value, dict):
        return {key: _clone_walk(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone_walk(item) for item in value]
    return value


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, but booleans are not numbers (unlike Python's `==`)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)


# --------------------------------------------------------------------------- RFC 7386


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; returns a new document."""
    return _merge_patch_into(_clone(target), patch)


def _merge_patch_into(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch on a private `target`, which may be reused for the result."""
    if not isinstance(patch, dict):
        return _clone(patch)
    result: JSONDict = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch_into(result.get(key), value)
    return result


# --------------------------------------------------------------------------- RFC 6902


def _parse_pointer(pointer: Any) -> list[str]:
    """Split an RFC 6901 JSON pointer into unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise _malformed(f"JSON pointer must be a string, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _malformed(f"JSON pointer {pointer!r} must start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise _malformed(f"JSON pointer {pointer!r} has an invalid '~' escape")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def _array_index(token: str, length: int, *, allow_end: bool) -> int:
    """The list index a token names; `-` (append) and `length` only when adding."""
    if allow_end and token == "-":
        return length
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchError(f"array index {index} out of bounds (length {length})")
    return index


def _child(container: Any, token: str, pointer: str) -> Any:
    """Step one token down; the referenced location must exist."""
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"path {pointer!r} does not exist")
        return container[token]
    if isinstance(container, list):
        return container[_array_index(token, len(container), allow_end=False)]
    raise PatchError(f"path {pointer!r} does not exist")


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    for token in tokens:
        doc = _child(doc, token, pointer)
    return doc


def _op_add(doc: Any, tokens: list[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}: parent is not a container")
    return doc


def _op_remove(doc: Any, tokens: list[str], pointer: str) -> tuple[Any, Any]:
    """Remove the value at `tokens`; returns (new document, removed value)."""
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    removed = _child(parent, last, pointer)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[_array_index(last, len(parent), allow_end=False)]
    return doc, removed


def _op_replace(doc: Any, tokens: list[str], value: Any, pointer: str) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    _child(parent, last, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent[_array_index(last, len(parent), allow_end=False)] = value
    return doc


def _op_test(doc: Any, tokens: list[str], value: Any, pointer: str) -> None:
    try:
        actual = _resolve(doc, tokens, pointer)
    except PatchError as exc:
        raise PatchTestFailed(f"test failed: {exc}") from exc
    if not _json_equal(actual, value):
        raise PatchTestFailed(f"test failed: value at {pointer!r} is {actual!r}, not {value!r}")


def _member(op: JSONDict, name: str) -> Any:
    if name not in op:
        raise _malformed(f"operation {op.get('op')!r} is missing {name!r}")
    return op[name]


def _apply_op(doc: Any, op: Any) -> Any:
    """Apply one RFC 6902 operation to `doc` (a private copy, mutated in place)."""
    if not isinstance(op, dict):
        raise _malformed(f"JSON patch operation must be an object, got {op!r}")
    kind = op.get("op")
    pointer = _member(op, "path")
    path = _parse_pointer(pointer)
    if kind == "add":
        return _op_add(doc, path, _clone(_member(op, "value")), pointer)
    if kind == "remove":
        return _op_remove(doc, path, pointer)[0]
    if kind == "replace":
        return _op_replace(doc, path, _clone(_member(op, "value")), pointer)
    if kind == "test":
        _op_test(doc, path, _member(op, "value"), pointer)
        return doc
    if kind in ("move", "copy"):
        source_pointer = _member(op, "from")
        source = _parse_pointer(source_pointer)
        if kind == "copy":
            return _op_add(doc, path, _clone(_resolve(doc, source, source_pointer)), pointer)
        if path[: len(source)] == source and len(path) > len(source):
            raise PatchError(f"cannot move {source_pointer!r} into its own child {pointer!r}")
        doc, moved = _op_remove(doc, source, source_pointer)
        return _op_add(doc, path, moved, pointer)
    raise _malformed(f"unknown JSON patch operation {kind!r}")


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations); returns a new document."""
    if not isinstance(ops, list):
        raise _malformed("JSON patch must be a list of operations")
    result = _clone(doc)
    for op in ops:
        result = _apply_op(result, op)
    return result


# --------------------------------------------------------------------------- SMP metadata


@dataclass(frozen=True, slots=True)
class _Schema:
    """Where the strategic-merge walker is: a definition, or a map of that definition's values."""

    name: str | None = None
    map_values: bool = False

    def field(self, key: str) -> _Field:
        if self.name is None:
            return _PLAIN
        if self.map_values:
            return _Field(schema=_Schema(self.name))
        return _definition(self.name).get(key, _PLAIN)


@dataclass(frozen=True, slots=True)
class _Field:
    """Patch metadata of one field; `schema` describes its value (or its list's items)."""

    strategy: str = ""
    merge_key: str = ""
    schema: _Schema = _Schema()

    @property
    def merges(self) -> bool:
        return self.strategy == "merge"


_PLAIN: Final = _Field()


@cache
def _table() -> JSONDict:
    resource = files("meshcanary.sandbox.apiserver") / "smp_keys.json"
    table: JSONDict = json.loads(resource.read_text(encoding="utf-8"))
    return table


def _parse_field(raw: dict[str, str]) -> _Field:
    # "retainKeys" needs no flag: like apimachinery, `$retainKeys` is honoured wherever it is sent.
    others = [s for s in raw.get("s", "").split(",") if s and s != "retainKeys"]
    if "r" in raw:
        schema = _Schema(raw["r"])
    elif "m" in raw:
        schema = _Schema(raw["m"], map_values=True)
    else:
        schema = _Schema()
    return _Field(
        strategy=others[0] if others else "",
        merge_key=raw.get("k", ""),
        schema=schema,
    )


@cache
def _definition(name: str) -> dict[str, _Field]:
    raw: dict[str, dict[str, str]] = _table()["defs"].get(name, {})
    return {key: _parse_field(value) for key, value in raw.items()}


def _root_schema(api_version: str, kind: str) -> _Schema | None:
    name = _table()["kinds"].get(api_version, {}).get(kind)
    return _Schema(name) if isinstance(name, str) else None


def strategic_merge_supported(api_version: str, kind: str) -> bool:
    """Whether `kind` is a built-in with patch metadata (custom resources are not: 415)."""
    return _root_schema(api_version, kind) is not None


# --------------------------------------------------------------------------- SMP: maps


def apply_strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], api_version: str, kind: str
) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to an object of a built-in kind."""
    schema = _root_schema(api_version, kind)
    if schema is None:
        raise PatchError(f"strategic merge patch is not supported for {api_version} {kind}", 415)
    if not isinstance(patch, dict):
        raise _malformed("strategic merge patch must be a JSON object")
    base = original if isinstance(original, dict) else {}
    return _merge_map(_clone(base), _clone(patch), schema)


def _merge_map(original: JSONDict, patch: JSONDict, schema: _Schema) -> JSONDict:
    """Merge `patch` into `original` in place (both private copies) and return the result."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise _malformed(f"unknown patch directive {DIRECTIVE}: {directive!r}")
    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)
    for key, value in patch.items():
        _merge_key(original, key, value, schema)
    return original


def _merge_key(original: JSONDict, key: str, value: Any, schema: _Schema) -> None:
    """Merge one patch member; maps recurse, merge lists merge, anything else is replaced."""
    if key.startswith(DELETE_PRIMITIVE_PREFIX):
        _delete_from_primitive_list(original, key[len(DELETE_PRIMITIVE_PREFIX) :], value)
        return
    if key in _MALFORMED_PREFIXES:
        raise _malformed(f"directive {key!r} needs a field name: {key}/<field>")
    if value is None:
        original.pop(key, None)
        return
    field = schema.field(key)
    current = original.get(key)
    if isinstance(current, dict) and isinstance(value, dict) and field.strategy != "replace":
        original[key] = _merge_map(current, value, field.schema)
    elif isinstance(current, list) and isinstance(value, list) and field.merges:
        original[key] = _merge_list(current, value, field)
    else:
        original[key] = _fresh(value, field)


def _fresh(value: Any, field: _Field) -> Any:
    """A patch value with no counterpart in the original: directives run, nulls dropped."""
    if isinstance(value, dict):
        return _merge_map({}, value, field.schema)
    if isinstance(value, list):
        if field.merges:
            return _merge_list([], value, field)
        element = _Field(schema=field.schema)
        return [_fresh(item, element) for item in value]
    return value


def _apply_retain_keys(original: JSONDict, patch: JSONDict) -> None:
    """`$retainKeys`: drop keys of `original` not listed; the patch may only set listed keys."""
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not isinstance(retained, list) or not all(isinstance(k, str) for k in retained):
        raise _malformed(f"{RETAIN_KEYS} must be a list of field names")
    keep = set(retained)
    for key, value in patch.items():
        if value is None or key.startswith(_MALFORMED_PREFIXES) or key == DIRECTIVE:
            continue
        if key not in keep:
            raise _malformed(f"field {key!r} is set by the patch but missing from {RETAIN_KEYS}")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _delete_from_primitive_list(original: JSONDict, key: str, values: Any) -> None:
    if not isinstance(values, list):
        raise _malformed(f"{DELETE_PRIMITIVE_PREFIX}{key} must be a list")
    current = original.get(key)
    if isinstance(current, list):
        original[key] = [item for item in current if not _contains(values, item)]


def _contains(items: Iterable[Any], value: Any) -> bool:
    return any(_json_equal(item, value) for item in items)


# --------------------------------------------------------------------------- SMP: lists


def _merge_list(original: list[Any], patch: list[Any], field: _Field) -> list[Any]:
    """Merge a list whose strategy is `merge` (by `field.merge_key` for lists of maps)."""
    if not original and not patch:
        return original
    if _element_kind(original, patch) is not dict:
        return _order(_dedupe(original + patch), patch, original, "")
    key = field.merge_key
    if not key:
        raise PatchError("cannot merge a list of objects without a merge key")
    replaced, original, patch = _split_list_directives(original, patch, key)
    if replaced:
        return [_merge_map({}, item, field.schema) for item in patch]
    merged = _merge_elements(original, patch, key, field.schema)
    return _order(merged, patch, original, key)


def _element_kind(*lists: list[Any]) -> type:
    """The common element type of the lists (maps, or one scalar type); lists of lists fail."""
    kinds = {_kind(item) for items in lists for item in items}
    if list in kinds:
        raise PatchError("strategic merge patch does not support lists of lists")
    if len(kinds) > 1:
        raise PatchError("list element types are not identical")
    return kinds.pop()


def _kind(value: Any) -> type:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    return type(value)


def _dedupe(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if not _contains(unique, item):
            unique.append(item)
    return unique


def _split_list_directives(
    original: list[Any], patch: list[Any], key: str
) -> tuple[bool, list[Any], list[Any]]:
    """Run `$patch` list elements: delete by key, replace the list, merge (a no-op).

    Returns (replace, original without deleted elements, patch without directive elements).
    """
    plain: list[Any] = []
    replace = False
    for item in patch:
        directive = item.pop(DIRECTIVE, None)
        if directive is None:
            plain.append(item)
        elif directive == "merge":
            if item:
                plain.append(item)
        elif directive == "delete":
            original = [o for o in original if not _same_key(o, _merge_value(item, key), key)]
        elif directive == "replace":
            replace = True
        else:
            raise _malformed(f"unknown patch directive {DIRECTIVE}: {directive!r}")
    return replace, original, plain


def _merge_value(item: JSONDict, key: str) -> Any:
    if key not in item:
        raise PatchError(f"list element {item!r} has no merge key {key!r}")
    return item[key]


def _same_key(item: Any, value: Any, key: str) -> bool:
    return isinstance(item, dict) and key in item and _json_equal(item[key], value)


def _merge_elements(original: list[Any], patch: list[Any], key: str, schema: _Schema) -> list[Any]:
    """Merge patch elements into original elements with the same key; append the others."""
    merged = list(original)
    for item in patch:
        value = _merge_value(item, key)
        index = next((i for i, o in enumerate(merged) if _same_key(o, value, key)), None)
        if index is None:
            merged.append(_merge_map({}, item, schema))
        else:
            merged[index] = _merge_map(merged[index], item, schema)
    return merged


# --------------------------------------------------------------------------- SMP: ordering


def _index(items: list[Any], value: Any, key: str) -> int:
    """Position of `value` in `items`, comparing merge-key values when `key` is set."""
    for position, item in enumerate(items):
        if key:
            if isinstance(value, dict) and _same_key(item, value.get(key), key):
                return position
        elif _json_equal(item, value):
            return position
    return -1


def _order(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], key: str
) -> list[Any]:
    """Order a merged list like Kubernetes: patch items in patch order, server-only items in
    their original order, interleaved by their original positions where both are known."""
    in_patch = [item for item in merged if _index(patch_order, item, key) >= 0]
    server_only = [item for item in merged if _index(patch_order, item, key) < 0]
    in_patch.sort(key=_position_in(patch_order, key))
    server_only.sort(key=_position_in(server_order, key))
    return _interleave(server_only, in_patch, server_order, key)


def _position_in(order: list[Any], key: str) -> Callable[[Any], int]:
    return lambda item: _index(order, item, key)


def _interleave(left: list[Any], right: list[Any], server_order: list[Any], key: str) -> list[Any]:
    """Merge two sorted lists; a left item goes first only if it precedes in the server list."""
    result: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            take_left = True
        elif i >= len(left):
            take_left = False
        else:
            li, ri = _index(server_order, left[i], key), _index(server_order, right[j], key)
            take_left = 0 <= li < ri
        if take_left:
            result.append(left[i])
            i += 1
        else:
            result.append(right[j])
            j += 1
    return result


def _apply_element_orders(original: JSONDict, patch: JSONDict, schema: _Schema) -> None:
    """Run every `$setElementOrder/<field>`: merge that field now and fix its order."""
    for directive in [k for k in patch if k.startswith(SET_ORDER_PREFIX)]:
        order = patch.pop(directive)
        name = directive[len(SET_ORDER_PREFIX) :]
        if not isinstance(order, list):
            raise _malformed(f"{directive} must be a list")
        _set_element_order(original, patch, name, order, schema.field(name))


def _set_element_order(
    original: JSONDict, patch: JSONDict, name: str, order: list[Any], field: _Field
) -> None:
    current = original.get(name)
    current_list = current if isinstance(current, list) else None
    patch_list = patch.get(name)
    if not isinstance(patch_list, list):
        patch_list = None
    if current_list is None and patch_list is None:
        return
    key = field.merge_key
    if patch_list is not None:
        del patch[name]
        _check_order(patch_list, order, key)
        if current_list is not None and field.merges:
            merged = _merge_list(current_list, patch_list, field)
        else:
            merged = _fresh(patch_list, field)
    else:
        merged = current_list or []
    listed = [item for item in merged if _index(order, item, key) >= 0]
    server_only = [item for item in merged if _index(order, item, key) < 0]
    original[name] = _normalize(listed, server_only, order, current_list or [], key)


def _normalize(
    listed: list[Any], server_only: list[Any], order: list[Any], server: list[Any], key: str
) -> list[Any]:
    listed.sort(key=_position_in(order, key))
    server_only.sort(key=_position_in(server, key))
    return _interleave(server_only, listed, server, key)


def _check_order(patch_list: list[Any], order: list[Any], key: str) -> None:
    """The patch list's items must appear in `$setElementOrder` and in the same relative order."""
    items = [i for i in patch_list if not (isinstance(i, dict) and DIRECTIVE in i)]
    position = 0
    for expected in order:
        if position < len(items) and _index([expected], items[position], key) == 0:
            position += 1
    if position < len(items):
        raise PatchError(f"the order of the patch list doesn't match {SET_ORDER_PREFIX} list")
