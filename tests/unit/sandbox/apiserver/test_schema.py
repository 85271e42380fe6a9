"""Structural schemas: pruning, defaulting, validation messages and CRD checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshcanary.sandbox.apiserver.schema import FieldIssue, prepare, validate, validate_crd


def wrap(spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec_schema}}


def obj(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}


def messages(spec_schema: dict[str, Any], spec: Any) -> list[tuple[str, str]]:
    return [(i.path, i.message) for i in validate(obj(spec), wrap(spec_schema))]


SCHEMA = wrap(
    {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "ACTIVE"},
            "nested": {
                "type": "object",
                "default": {},
                "properties": {"level": {"type": "string", "default": "info"}},
            },
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string", "default": "TCP"},
                    },
                },
            },
            "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "port": {"x-kubernetes-int-or-string": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "additionalProperties": True},
            "note": {"type": "string", "nullable": True, "default": "n"},
        },
    }
)


# --------------------------------------------------------------------------- prepare


def test_prepare_prunes_unknown_fields_and_reports_their_paths() -> None:
    body = obj({"replicas": 2, "bogus": 1, "ports": [{"name": "http", "extra": True}]})
    body["status"] = {"x": 1}
    out, pruned = prepare(body, SCHEMA)
    assert "bogus" not in out["spec"]
    assert out["spec"]["ports"] == [{"name": "http", "protocol": "TCP"}]
    assert "status" not in out
    assert sorted(pruned) == ["spec.bogus", "spec.ports[0].extra", "status"]


def test_prepare_keeps_root_meta_fields_without_touching_metadata() -> None:
    body = obj({})
    body["metadata"] = {"name": "t", "labels": {"a": "b"}, "anything": [1]}
    out, pruned = prepare(body, SCHEMA)
    assert out["apiVersion"] == "x.io/v1" and out["kind"] == "Thing"
    assert out["metadata"] == body["metadata"]
    assert pruned == []


def test_prepare_applies_nested_defaults() -> None:
    out, _ = prepare(obj({}), SCHEMA)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["mode"] == "ACTIVE"
    assert out["spec"]["nested"] == {"level": "info"}


def test_prepare_does_not_override_present_values() -> None:
    out, _ = prepare(obj({"replicas": 0, "mode": "", "nested": {"level": "debug"}}), SCHEMA)
    assert out["spec"]["replicas"] == 0
    assert out["spec"]["mode"] == ""
    assert out["spec"]["nested"] == {"level": "debug"}


def test_prepare_defaults_in_array_items() -> None:
    out, _ = prepare(obj({"ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}]}), SCHEMA)
    assert out["spec"]["ports"] == [
        {"name": "a", "protocol": "TCP"},
        {"name": "b", "protocol": "UDP"},
    ]


def test_prepare_nulls_on_non_nullable_fields_are_defaulted_or_dropped() -> None:
    out, pruned = prepare(obj({"replicas": None, "ports": None, "note": None}), SCHEMA)
    assert out["spec"]["replicas"] == 1  # defaulted
    assert "ports" not in out["spec"]  # no default: dropped, not reported as unknown
    assert out["spec"]["note"] is None  # nullable: kept, not defaulted
    assert pruned == []


def test_prepare_preserve_unknown_fields_keeps_the_subtree() -> None:
    out, pruned = prepare(obj({"values": {"a": {"b": [1, {"c": 2}]}}}), SCHEMA)
    assert out["spec"]["values"] == {"a": {"b": [1, {"c": 2}]}}
    assert pruned == []


def test_prepare_preserve_unknown_still_prunes_known_properties() -> None:
    schema = wrap(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
        }
    )
    out, pruned = prepare(obj({"other": 1, "known": {"a": "x", "b": "y"}}), schema)
    assert out["spec"] == {"other": 1, "known": {"a": "x"}}
    assert pruned == ["spec.known.b"]


def test_prepare_int_or_string_and_additional_properties() -> None:
    spec = {"port": "http", "labels": {"a": "b"}, "free": {"x": {"y": 1}}}
    out, pruned = prepare(obj(spec), SCHEMA)
    assert out["spec"]["port"] == "http"
    assert out["spec"]["labels"] == {"a": "b"}
    assert out["spec"]["free"] == {"x": {"y": 1}}
    assert pruned == []


def test_prepare_additional_properties_schema_prunes_inside_values() -> None:
    schema = wrap(
        {
            "type": "object",
            "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
    )
    out, pruned = prepare(obj({"k": {"a": "1", "b": "2"}}), schema)
    assert out["spec"] == {"k": {"a": "1"}}
    assert pruned == ["spec.k.b"]


def test_prepare_embedded_resource_keeps_its_meta_fields() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                }
            },
        }
    )
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "x": 1}
    out, pruned = prepare(obj({"template": template}), schema)
    assert out["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {},
    }
    assert pruned == ["spec.template.x"]


def test_prepare_never_mutates_its_input() -> None:
    body = obj({"bogus": 1, "ports": [{"name": "a", "x": 1}], "replicas": None})
    before = copy.deepcopy(body)
    prepare(body, SCHEMA)
    assert body == before


def test_prepare_without_schema_or_with_preserve_unknown() -> None:
    body = obj({"bogus": 1})
    assert prepare(body, None) == (body, [])
    out, pruned = prepare(body, SCHEMA, preserve_unknown=True)
    assert out["spec"]["bogus"] == 1 and out["spec"]["replicas"] == 1
    assert pruned == []


# --------------------------------------------------------------------------- validate


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        (
            {"type": "integer"},
            "string",
            'Invalid value: "string": spec.v in body must be of type integer: "string"',
        ),
        (
            {"type": "integer"},
            True,
            'Invalid value: "boolean": spec.v in body must be of type integer: "boolean"',
        ),
        (
            {"type": "integer"},
            1.5,
            'Invalid value: "number": spec.v in body must be of type integer: "number"',
        ),
        (
            {"type": "string"},
            {"a": 1},
            'Invalid value: "object": spec.v in body must be of type string: "object"',
        ),
        (
            {"type": "object"},
            [1],
            'Invalid value: "array": spec.v in body must be of type object: "array"',
        ),
        (
            {"type": "boolean"},
            "true",
            'Invalid value: "string": spec.v in body must be of type boolean: "string"',
        ),
        (
            {"x-kubernetes-int-or-string": True},
            True,
            'Invalid value: "boolean": spec.v in body must be of type integer,string: "boolean"',
        ),
    ],
)
def test_type_errors(schema: dict[str, Any], value: Any, expected: str) -> None:
    spec = {"type": "object", "properties": {"v": schema}}
    assert messages(spec, {"v": value}) == [("spec.v", expected)]


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, 3),
        ({"type": "integer"}, 3.0),
        ({"type": "number"}, 3),
        ({"type": "number"}, 3.5),
        ({"x-kubernetes-int-or-string": True}, 8080),
        ({"x-kubernetes-int-or-string": True}, "http"),
        ({"x-kubernetes-preserve-unknown-fields": True}, {"any": ["thing"]}),
        ({"type": "string", "nullable": True}, None),
    ],
)
def test_accepted_values(schema: dict[str, Any], value: Any) -> None:
    assert messages({"type": "object", "properties": {"v": schema}}, {"v": value}) == []


def test_null_on_non_nullable_is_a_type_error() -> None:
    spec = {"type": "array", "items": {"type": "string"}}
    assert messages(spec, ["a", None]) == [
        ("spec[1]", 'Invalid value: "null": spec[1] in body must be of type string: "null"')
    ]


def test_enum() -> None:
    spec = {
        "type": "object",
        "properties": {"mode": {"type": "string", "enum": ["ACTIVE", "PASSIVE"]}},
    }
    assert messages(spec, {"mode": "FOO"}) == [
        ("spec.mode", 'Unsupported value: "FOO": supported values: "ACTIVE", "PASSIVE"')
    ]
    assert messages(spec, {"mode": "PASSIVE"}) == []


def test_enum_of_numbers() -> None:
    spec = {"type": "integer", "enum": [1, 2]}
    assert messages(spec, 3) == [("spec", 'Unsupported value: 3: supported values: "1", "2"')]
    assert messages(spec, 2) == []


def test_pattern_uses_search_semantics() -> None:
    version = {"type": "string", "pattern": r"^1\.[0-9]+\.[0-9]+$"}
    spec = {"type": "object", "properties": {"version": version}}
    assert messages(spec, {"version": "1.x"}) == [
        (
            "spec.version",
            r"""Invalid value: "1.x": spec.version in body should match '^1\.[0-9]+\.[0-9]+$'""",
        )
    ]
    assert messages(spec, {"version": "1.22.3"}) == []
    assert messages({"type": "string", "pattern": "b"}, "abc") == []


def test_string_lengths() -> None:
    spec = {"type": "string", "minLength": 3, "maxLength": 5}
    assert messages(spec, "ab") == [
        ("spec", 'Invalid value: "ab": spec in body should be at least 3 chars long')
    ]
    assert messages(spec, "abcdef") == [("spec", "Too long: may not be longer than 5")]
    assert messages(spec, "abcd") == []


@pytest.mark.parametrize(
    ("schema", "value", "detail"),
    [
        ({"maximum": 10}, 11, "should be less than or equal to 10"),
        ({"maximum": 10, "exclusiveMaximum": True}, 10, "should be less than 10"),
        ({"minimum": 1}, 0, "should be greater than or equal to 1"),
        ({"minimum": 1, "exclusiveMinimum": True}, 1, "should be greater than 1"),
        ({"minimum": 0.5}, 0.25, "should be greater than or equal to 0.5"),
        ({"multipleOf": 5}, 12, "should be a multiple of 5"),
    ],
)
def test_numeric_bounds(schema: dict[str, Any], value: Any, detail: str) -> None:
    spec = {"type": "number", **schema}
    rendered = str(value)
    assert messages(spec, value) == [("spec", f"Invalid value: {rendered}: spec in body {detail}")]


def test_numeric_bounds_pass() -> None:
    spec = {"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.1}
    assert messages(spec, 0.3) == []
    assert messages(spec, 10) == []


def test_array_sizes_and_unique_items() -> None:
    spec = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}
    assert messages(spec, []) == [
        ("spec", "Invalid value: 0: spec in body should have at least 1 items")
    ]
    assert messages(spec, ["a", "b", "c"]) == [("spec", "Too many: 3: must have at most 2 items")]
    unique = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    assert messages(unique, [1, 2, 1]) == [
        ("spec", 'Invalid value: "": spec in body shouldn\'t contain duplicates')
    ]
    assert messages(unique, [1, 2, 3]) == []


def test_array_items_are_validated_with_indexed_paths() -> None:
    ports = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 3}},
        },
    }
    spec = {"type": "object", "properties": {"ports": ports}}
    assert messages(spec, {"ports": [{"name": "http"}, {}]}) == [
        ("spec.ports[0].name", "Too long: may not be longer than 3"),
        ("spec.ports[1].name", "Required value"),
    ]


def test_required() -> None:
    spec = {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}}}
    assert messages(spec, {"a": "x"}) == [("spec.b", "Required value")]


def test_required_at_root_and_missing_spec() -> None:
    schema = {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}
    body = {"apiVersion": "x.io/v1", "kind": "T", "metadata": {"name": "n"}}
    assert validate(body, schema) == [FieldIssue("spec", "Required value")]


def test_metadata_is_not_validated() -> None:
    schema = {"type": "object", "properties": {"metadata": {"type": "object", "maxProperties": 0}}}
    assert validate({"metadata": {"name": "n", "labels": {}}}, schema) == []


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-05-01T10:00:00Z", "yesterday"),
        ("date", "2024-05-01", "2024-13-01"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "not-a-uuid"),
    ],
)
def test_string_formats(fmt: str, good: str, bad: str) -> None:
    spec = {"type": "string", "format": fmt}
    assert messages(spec, good) == []
    assert messages(spec, bad) == [
        ("spec", f'Invalid value: "{bad}": spec in body must be of type {fmt}: "{bad}"')
    ]


def test_integer_formats_and_unknown_formats() -> None:
    assert messages({"type": "integer", "format": "int32"}, 2**31 - 1) == []
    assert messages({"type": "integer", "format": "int32"}, 2**31) == [
        ("spec", 'Invalid value: 2147483648: spec in body must be of type int32: "2147483648"')
    ]
    assert messages({"type": "integer", "format": "int64"}, 2**40) == []
    assert messages({"type": "string", "format": "whatever"}, "x") == []


def test_additional_properties_schema() -> None:
    spec = {"type": "object", "additionalProperties": {"type": "string"}}
    assert messages(spec, {"a": "x", "b": 1}) == [
        ("spec.b", 'Invalid value: "integer": spec.b in body must be of type string: "integer"')
    ]


def test_list_type_set() -> None:
    spec = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    assert messages(spec, ["a", "b", "a", "a"]) == [("spec[2]", 'Duplicate value: "a"')]
    assert messages(spec, ["a", "b"]) == []


def test_list_type_map() -> None:
    spec = {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name", "port"],
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
    value = [{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"name": "a", "port": 1, "x": 0}]
    assert messages(spec, value) == [
        ("spec[2]", 'Duplicate value: map[string]interface {}{"name":"a", "port":1}')
    ]


def test_junctors() -> None:
    any_of = {"anyOf": [{"minimum": 10}, {"maximum": 0}], "type": "integer"}
    assert messages(any_of, 5) == [
        ("spec", 'Invalid value: "": "spec" must validate at least one schema (anyOf)')
    ]
    assert messages(any_of, 11) == []
    one_of = {"oneOf": [{"minimum": 0}, {"maximum": 10}], "type": "integer"}
    assert messages(one_of, 5) == [
        ("spec", 'Invalid value: "": "spec" must validate one and only one schema (oneOf)')
    ]
    assert messages(one_of, 11) == []
    not_ = {"not": {"enum": ["x"]}, "type": "string"}
    assert messages(not_, "x") == [
        ("spec", 'Invalid value: "": "spec" must not validate the schema (not)')
    ]
    all_of = {"allOf": [{"minLength": 2}], "type": "string"}
    assert messages(all_of, "a") == [
        ("spec", 'Invalid value: "a": spec in body should be at least 2 chars long')
    ]


def test_cel_rules_are_ignored() -> None:
    spec = {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 100"}]}
    assert messages(spec, 1) == []


def test_validate_without_schema() -> None:
    assert validate(obj({"anything": 1}), None) == []


def test_prepare_then_validate_accepts_a_defaulted_object() -> None:
    out, _ = prepare(obj({"port": 80}), SCHEMA)
    assert validate(out, SCHEMA) == []


# --------------------------------------------------------------------------- validate_crd


def crd(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": "meshcanary.io",
        "scope": "Namespaced",
        "names": {"plural": "istiocontrolplanes", "kind": "IstioControlPlane"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "revision": {"type": "string"},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "values": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            }
                        },
                    }
                },
            }
        ],
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "istiocontrolplanes.meshcanary.io"},
        "spec": spec,
    }


def crd_messages(doc: dict[str, Any]) -> list[str]:
    return [f"{i.path}: {i.message}" for i in validate_crd(doc)]


def version(name: str, *, storage: bool = True, schema: Any = None) -> dict[str, Any]:
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {"openAPIV3Schema": schema or {"type": "object"}},
    }


def test_valid_crd() -> None:
    assert validate_crd(crd()) == []


def test_crd_name_must_be_plural_dot_group() -> None:
    doc = crd()
    doc["metadata"]["name"] = "wrong.meshcanary.io"
    assert crd_messages(doc) == [
        'metadata.name: Invalid value: "wrong.meshcanary.io": '
        'must be spec.names.plural+"."+spec.group'
    ]
    doc["metadata"] = {}
    assert crd_messages(doc) == ["metadata.name: Required value: name or generateName is required"]


def test_crd_group() -> None:
    doc = crd(group="")
    doc["metadata"]["name"] = "istiocontrolplanes."
    assert "spec.group: Required value" in crd_messages(doc)
    doc = crd(group="meshcanary")
    doc["metadata"]["name"] = "istiocontrolplanes.meshcanary"
    assert crd_messages(doc) == [
        'spec.group: Invalid value: "meshcanary": should be a domain with at least one dot'
    ]


def test_crd_scope() -> None:
    assert crd_messages(crd(scope="Global")) == [
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'
    ]
    assert crd_messages(crd(scope="")) == ["spec.scope: Required value"]


def test_crd_names() -> None:
    doc = crd(names={"plural": "IstioControlPlanes"})
    doc["metadata"]["name"] = "IstioControlPlanes.meshcanary.io"
    found = crd_messages(doc)
    assert "spec.names.kind: Required value" in found
    assert any(
        m.startswith('spec.names.plural: Invalid value: "IstioControlPlanes": a DNS-1035 label')
        for m in found
    )
    doc = crd(names={"kind": "IstioControlPlane"})
    doc["metadata"]["name"] = ".meshcanary.io"
    assert "spec.names.plural: Required value" in crd_messages(doc)


def test_crd_versions_storage_and_names() -> None:
    assert crd_messages(crd(versions=[])) == [
        "spec.versions: Invalid value: []string{}: "
        "must have exactly one version marked as storage version"
    ]
    two = crd(versions=[version("v1"), version("v2")])
    assert crd_messages(two) == [
        'spec.versions: Invalid value: []string{"v1", "v2"}: '
        "must have exactly one version marked as storage version"
    ]
    dup = crd(versions=[version("v1"), version("v1", storage=False)])
    assert crd_messages(dup) == [
        'spec.versions: Invalid value: []string{"v1", "v1"}: must contain unique version names'
    ]
    bad = crd(versions=[version("V1")])
    assert crd_messages(bad)[0].startswith('spec.versions[0].name: Invalid value: "V1": a DNS-1035')


def test_crd_schema_required() -> None:
    doc = crd(versions=[{"name": "v1", "served": True, "storage": True}])
    assert crd_messages(doc) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    ]


def test_crd_schema_must_be_structural() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "properties": {"a": {"type": "array"}, "b": {"type": "array", "items": {}}},
            },
            "status": {"type": "thing"},
        },
    }
    p = "spec.versions[0].schema.openAPIV3Schema.properties"
    assert sorted(crd_messages(crd(versions=[version("v1", schema=schema)]))) == sorted(
        [
            f"{p}[spec].type: Required value: must not be empty for specified object fields",
            f"{p}[spec].properties[a].items: Required value: must be specified",
            f"{p}[spec].properties[b].items.type: "
            "Required value: must not be empty for specified array items",
            f'{p}[status].type: Unsupported value: "thing": supported values: "array", '
            '"boolean", "integer", "number", "object", "string"',
        ]
    )


def test_crd_root_must_be_object() -> None:
    root = "spec.versions[0].schema.openAPIV3Schema"
    assert crd_messages(crd(versions=[version("v1", schema={"type": "string"})])) == [
        f'{root}.type: Invalid value: "string": must be object at the root'
    ]
    assert crd_messages(crd(versions=[version("v1", schema={"description": "x"})])) == [
        f"{root}.type: Required value: must not be empty at the root"
    ]


def test_crd_schema_forbidden_constructs() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "b": {"type": "string", "anyOf": [{"type": "string"}]},
            "c": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "d": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
        },
    }
    p = "spec.versions[0].schema.openAPIV3Schema.properties"
    assert crd_messages(crd(versions=[version("v1", schema=schema)])) == [
        f"{p}[a].uniqueItems: Forbidden: "
        "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        f"{p}[b].anyOf[0].type: Forbidden: must be empty to be structural",
        f"{p}[d].additionalProperties: Forbidden: "
        "additionalProperties and properties are mutual exclusive",
    ]


def test_crd_preserve_unknown_fields_must_be_false() -> None:
    assert crd_messages(crd(preserveUnknownFields=True)) == [
        "spec.preserveUnknownFields: Invalid value: true: must be false"
    ]
