"""Generate `smp_keys.json`, the strategic-merge-patch table of the sandbox API server.

Strategic merge patch needs to know, for every field of a built-in kind, whether it is a list
that merges (and by which key), a map that must be replaced or keys retained, and which
definition its value has so the walker can descend. Kubernetes publishes exactly that in its
OpenAPI definitions (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`). This script
reads the v1.33 definitions that ship with `kubernetes-validate` (a build/test-time dependency;
the runtime never imports it) and writes a compact table:

    {
      "source": "...",
      "kinds": {"<apiVersion>": {"<Kind>": "<definition>"}},
      "defs": {"<definition>": {"<field>": {"s": strategy, "k": mergeKey, "r": ref, "m": ref}}}
    }

`s` is the raw patch strategy ("merge", "replace", "retainKeys", "merge,retainKeys"), `k` the
merge key, `r` the definition of the field's value (an object, or the items of an array), `m`
the definition of the values of a map field. Every member is omitted when empty. Only fields
that matter to SMP are kept: those with a strategy, and those whose value definition
(transitively) contains one. Only definitions reachable from a root kind are kept.

Usage: .venv/bin/python scripts/gen_smp_keys.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]

SCHEMA_VERSION = "v1.33.0-local"
OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "src"
    / "meshcanary"
    / "sandbox"
    / "apiserver"
    / "smp_keys.json"
)
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
REF_PREFIX = "#/$defs/"

Field = dict[str, str]
Table = dict[str, dict[str, Field]]


def load_definitions() -> dict[str, Any]:
    """The raw `$defs` of the v1.33 schema bundled with kubernetes-validate."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / SCHEMA_VERSION
    with (base / "_definitions.json").open(encoding="utf-8") as fh:
        defs: dict[str, Any] = json.load(fh)["$defs"]
    return defs


def short_names(names: list[str]) -> dict[str, str]:
    """Map full definition names to `group.version.Kind` (last three dotted parts), if unique."""
    short = {name: ".".join(name.split(".")[-3:]) for name in names}
    if len(set(short.values())) != len(short):
        raise SystemExit("short definition names collide; extend short_names()")
    return short


def ref_target(prop: dict[str, Any]) -> str | None:
    """The definition a `$ref` property points at, or None."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return ref[len(REF_PREFIX) :]
    return None


def raw_field(prop: dict[str, Any]) -> Field:
    """The SMP-relevant facts of one property, with full definition names."""
    field: Field = {}
    if strategy := prop.get("x-kubernetes-patch-strategy"):
        field["s"] = strategy
    if merge_key := prop.get("x-kubernetes-patch-merge-key"):
        field["k"] = merge_key
    items = prop.get("items")
    values = prop.get("additionalProperties")
    ref = ref_target(prop) or (ref_target(items) if isinstance(items, dict) else None)
    if ref:
        field["r"] = ref
    elif isinstance(values, dict) and (ref := ref_target(values)):
        field["m"] = ref
    return field


def raw_table(defs: dict[str, Any]) -> Table:
    """Every definition with the SMP facts of every property that has any."""
    table: Table = {}
    for name, definition in defs.items():
        props = definition.get("properties") or {}
        fields = {key: raw_field(prop) for key, prop in props.items()}
        table[name] = {key: field for key, field in fields.items() if field}
    return table


def relevant_definitions(table: Table) -> set[str]:
    """Definitions that contain a patch strategy somewhere below them (fixpoint)."""
    relevant = {name for name, fields in table.items() if any("s" in f for f in fields.values())}
    changed = True
    while changed:
        changed = False
        for name, fields in table.items():
            if name not in relevant and any(_child(f) in relevant for f in fields.values()):
                relevant.add(name)
                changed = True
    return relevant


def _child(field: Field) -> str | None:
    return field.get("r") or field.get("m")


def root_kinds(defs: dict[str, Any]) -> dict[str, dict[str, str]]:
    """apiVersion -> kind -> definition, for every built-in kind with ObjectMeta metadata."""
    kinds: dict[str, dict[str, str]] = {}
    for name, definition in defs.items():
        metadata = (definition.get("properties") or {}).get("metadata") or {}
        if ref_target(metadata) != OBJECT_META:
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group, version = gvk["group"], gvk["version"]
            api_version = f"{group}/{version}" if group else version
            kinds.setdefault(api_version, {})[gvk["kind"]] = name
    return kinds


def prune(table: Table, relevant: set[str], roots: set[str]) -> Table:
    """Keep only relevant fields, of definitions reachable from the roots."""
    pruned: Table = {}
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in pruned:
            continue
        fields: dict[str, Field] = {}
        for key, field in table[name].items():
            child = _child(field)
            if "s" not in field and child not in relevant:
                continue
            if child not in relevant:
                field = {k: v for k, v in field.items() if k not in ("r", "m")}
            fields[key] = field
            if child in relevant:
                pending.append(child)
        pruned[name] = fields
    return pruned


def rename(table: Table, kinds: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The final document, with short definition names and sorted keys."""
    short = short_names(sorted(table))

    def field(f: Field) -> Field:
        return {k: (short[v] if k in ("r", "m") else v) for k, v in sorted(f.items())}

    defs = {
        short[name]: {key: field(f) for key, f in sorted(fields.items())}
        for name, fields in sorted(table.items())
    }
    roots = {
        api_version: {kind: short[name] for kind, name in sorted(by_kind.items())}
        for api_version, by_kind in sorted(kinds.items())
    }
    return {
        "source": f"kubernetes-validate {SCHEMA_VERSION}/_definitions.json",
        "kinds": roots,
        "defs": defs,
    }


def build() -> str:
    """The JSON text of the table."""
    defs = load_definitions()
    table = raw_table(defs)
    kinds = root_kinds(defs)
    roots = {name for by_kind in kinds.values() for name in by_kind.values()}
    pruned = prune(table, relevant_definitions(table), roots)
    return json.dumps(rename(pruned, kinds), separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    text = build()
    from generated_file import write_or_check  # scripts/, this script's folder

    return write_or_check(OUTPUT, text, args.check)


if __name__ == "__main__":
    sys.exit(main())
