"""Tests of the sandbox API server's patch engine: RFC 7386, RFC 6902 and strategic merge."""

from __future__ import annotations

import copy
import importlib.util
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcanary.sandbox.apiserver.patching import (
    PatchError,
    PatchTestFailed,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    strategic_merge_supported,
)

# --------------------------------------------------------------------------- helpers


def canonical(value: Any) -> str:
    """A representation where 1, 1.0 and True differ (Python's == conflates them)."""
    return json.dumps(value, sort_keys=True)


def directive_keys(value: Any) -> list[str]:
    """Every `$`-prefixed key anywhere in a JSON value."""
    if isinstance(value, dict):
        found = [k for k in value if k.startswith("$")]
        return found + [k for v in value.values() for k in directive_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in directive_keys(v)]
    return []


def smp(original: dict[str, Any], patch: dict[str, Any], kind: str = "Deployment") -> Any:
    api_version = "v1" if kind in ("Pod", "Service", "ConfigMap", "Node") else "apps/v1"
    before = copy.deepcopy((original, patch))
    result = apply_strategic_merge_patch(original, patch, api_version, kind)
    assert (original, patch) == before, "inputs were mutated"
    assert directive_keys(result) == [], "directives leaked into the result"
    return result


def deployment(
    containers: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:  # a minimal apps/v1 Deployment
    pod_spec = {"containers": containers, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5"},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec},
        },
    }


def pod_spec(obj: dict[str, Any]) -> Any:
    return obj["spec"]["template"]["spec"]


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


# --------------------------------------------------------------------------- RFC 7386


RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert apply_merge_patch(target, patch) == expected
    assert (target, patch) == before


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    target: dict[str, Any] = {"keep": {"x": [1]}}
    patch: dict[str, Any] = {"new": {"y": [2]}}
    result = apply_merge_patch(target, patch)
    result["keep"]["x"].append(9)
    result["new"]["y"].append(9)
    assert target == {"keep": {"x": [1]}}
    assert patch == {"new": {"y": [2]}}


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
keys = st.sampled_from(["a", "b", "c", "d", "metadata", "spec", "x.y/z"]) | st.text(max_size=4)


def json_values(*, null_in_maps: bool) -> st.SearchStrategy[Any]:
    """JSON documents; merge patch cannot express a null member, so allow excluding them."""
    leaf = json_scalars if null_in_maps else json_scalars.filter(lambda v: v is not None)

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        # Lists are replaced wholesale, so they may hold anything, nulls included.
        anything = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3), max_leaves=4)
        return st.lists(anything, max_size=3) | st.dictionaries(keys, children, max_size=4)

    return st.recursive(leaf, extend, max_leaves=12)


json_objects = st.dictionaries(keys, json_values(null_in_maps=False), max_size=5)


def create_merge_patch(source: Any, target: Any) -> Any:
    """The RFC 7386 patch that turns `source` into `target` (`target` has no null members)."""
    if not isinstance(source, dict) or not isinstance(target, dict):
        return copy.deepcopy(target)
    patch: dict[str, Any] = {key: None for key in source if key not in target}
    for key, value in target.items():
        if key not in source:
            patch[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(source[key], dict):
            sub = create_merge_patch(source[key], value)
            if sub:
                patch[key] = sub
        elif canonical(value) != canonical(source[key]):
            patch[key] = copy.deepcopy(value)
    return patch


@given(json_objects, json_objects)
@settings(max_examples=300)
def test_merge_patch_round_trips_a_diff(source: dict[str, Any], target: dict[str, Any]) -> None:
    patch = create_merge_patch(source, target)
    before = copy.deepcopy((source, patch))
    assert canonical(apply_merge_patch(source, patch)) == canonical(target)
    assert canonical((source, patch)) == canonical(before)


# --------------------------------------------------------------------------- RFC 6902


RFC6902_EXAMPLES = [
    # A.1 adding an object member
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    # A.2 adding an array element
    (
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    # A.3 removing an object member
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    # A.4 removing an array element
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    # A.5 replacing a value
    (
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    # A.6 moving a value
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    # A.7 moving an array element
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    # A.8 testing a value: success
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    # A.10 adding a nested member object
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    # A.11 ignoring unrecognized elements
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    # A.14 ~ escape ordering
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    # A.16 adding an array value
    (
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    # copy, root replacement, slash escape, numbers compare by value
    (
        {"a": {"b": [1]}},
        [{"op": "copy", "from": "/a", "path": "/c"}],
        {"a": {"b": [1]}, "c": {"b": [1]}},
    ),
    ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ({}, [{"op": "add", "path": "/a~1b", "value": 1}], {"a/b": 1}),
    ({"n": 1}, [{"op": "test", "path": "/n", "value": 1.0}], {"n": 1}),
    ({"a": [1, 2]}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": [1, 2]}),
]


@pytest.mark.parametrize(("doc", "ops", "expected"), RFC6902_EXAMPLES)
def test_json_patch_rfc6902_examples(doc: Any, ops: list[Any], expected: Any) -> None:
    before = copy.deepcopy((doc, ops))
    assert apply_json_patch(doc, ops) == expected
    assert (doc, ops) == before


@pytest.mark.parametrize(
    ("doc", "ops"),
    [
        # A.9 testing a value: error
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
        # A.15 comparing strings and numbers
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),
        # booleans are not numbers
        ({"n": 1}, [{"op": "test", "path": "/n", "value": True}]),
        ({"a": {"b": 1}}, [{"op": "test", "path": "/a", "value": {"b": 1, "c": 2}}]),
        ({}, [{"op": "test", "path": "/missing", "value": None}]),
    ],
)
def test_json_patch_failed_test_raises(doc: Any, ops: list[Any]) -> None:
    with pytest.raises(PatchTestFailed) as info:
        apply_json_patch(doc, ops)
    assert info.value.code == 422


@pytest.mark.parametrize(
    ("doc", "ops", "code"),
    [
        # A.12 adding to a nonexistent target
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], 422),
        ({"a": 1}, [{"op": "remove", "path": "/b"}], 422),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], 422),
        ({"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}], 422),
        ({"a": [1]}, [{"op": "remove", "path": "/a/-"}], 422),
        ({"a": [1]}, [{"op": "replace", "path": "/a/01", "value": 2}], 422),
        ({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 422),
        ({"a": 1}, [{"op": "remove", "path": ""}], 422),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}], 400),
        ({"a": 1}, [{"path": "/a"}], 400),
        ({"a": 1}, [{"op": "add", "path": "/b"}], 400),
        ({"a": 1}, [{"op": "move", "path": "/b"}], 400),
        ({"a": 1}, [{"op": "add", "path": "b", "value": 1}], 400),
        ({"a": 1}, [{"op": "add", "path": "/~2", "value": 1}], 400),
        ({"a": 1}, {"op": "add", "path": "/b", "value": 1}, 400),
        ({"a": 1}, ["add"], 400),
    ],
)
def test_json_patch_errors(doc: Any, ops: Any, code: int) -> None:
    with pytest.raises(PatchError) as info:
        apply_json_patch(doc, ops)
    assert info.value.code == code
    assert not isinstance(info.value, PatchTestFailed)


def test_json_patch_is_atomic_and_never_mutates() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "remove", "path": "/b/c"},
        {"op": "test", "path": "/a/0", "value": 99},
    ]
    with pytest.raises(PatchTestFailed):
        apply_json_patch(doc, ops)
    assert doc == {"a": [1, 2], "b": {"c": 1}}


def test_json_patch_kopf_finalizer_write_guarded_by_resource_version() -> None:
    obj = deployment([{"name": "c", "image": "x"}])
    obj["metadata"]["finalizers"] = ["other.example.com/cleanup"]
    finalizers = ["other.example.com/cleanup", "kopf.zalando.org/KopfFinalizerMarker"]
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "replace", "path": "/metadata/finalizers", "value": finalizers},
    ]
    assert apply_json_patch(obj, ops)["metadata"]["finalizers"] == finalizers
    stale = [{**ops[0], "value": "4"}, ops[1]]
    with pytest.raises(PatchTestFailed):
        apply_json_patch(obj, stale)


def test_json_patch_add_value_is_copied() -> None:
    value = {"k": [1]}
    result = apply_json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    result["v"]["k"].append(2)
    assert value == {"k": [1]}


# --------------------------------------------------------------------------- SMP table


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", kind)
        for kind in (
            "Pod",
            "Service",
            "Endpoints",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Namespace",
            "Node",
            "Event",
        )
    ]
    + [
        ("apps/v1", kind)
        for kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ControllerRevision")
    ]
    + [
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("coordination.k8s.io/v1", "Lease"),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ],
)
def test_builtin_kinds_support_strategic_merge(api_version: str, kind: str) -> None:
    assert strategic_merge_supported(api_version, kind)
    patch = {"metadata": {"ownerReferences": [{"uid": "u2", "name": "b"}]}}
    original = {"metadata": {"name": "n", "ownerReferences": [{"uid": "u1", "name": "a"}]}}
    result = apply_strategic_merge_patch(original, patch, api_version, kind)
    assert names(result["metadata"]["ownerReferences"], "uid") == ["u2", "u1"]


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("istio.io/v1", "VirtualService"),
        ("example.com/v1", "Widget"),
        ("apps/v1", "Pod"),
        ("v1", "Deployment"),
        ("v1", "PodList"),
    ],
)
def test_custom_and_unknown_kinds_do_not_support_strategic_merge(
    api_version: str, kind: str
) -> None:
    assert not strategic_merge_supported(api_version, kind)
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch({}, {}, api_version, kind)
    assert info.value.code == 415


def test_smp_table_is_small_and_up_to_date() -> None:
    script = Path(__file__).parents[4] / "scripts" / "gen_smp_keys.py"
    spec = importlib.util.spec_from_file_location("gen_smp_keys", script)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    table = (files("meshcanary.sandbox.apiserver") / "smp_keys.json").read_text(encoding="utf-8")
    assert len(table.encode()) < 200_000
    assert table == generator.build(), "smp_keys.json is stale: run scripts/gen_smp_keys.py"


# --------------------------------------------------------------------------- SMP: lists


def test_smp_set_image_merges_containers_by_name() -> None:
    original = deployment(
        [
            {"name": "c", "image": "old", "args": ["--a"]},
            {"name": "sidecar", "image": "proxy:1"},
        ]
    )
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    result = smp(original, patch)
    assert pod_spec(result)["containers"] == [
        {"name": "c", "image": "x", "args": ["--a"]},
        {"name": "sidecar", "image": "proxy:1"},
    ]
    assert result["metadata"] == original["metadata"]


def test_smp_adds_unmatched_list_elements_before_server_only_ones() -> None:
    # Like apimachinery (and the kubectl patch docs): without $setElementOrder, patch items the
    # server does not know yet are placed before the server-only items.
    original = deployment([{"name": "a", "image": "a"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b"}]}}}}
    assert names(pod_spec(smp(original, patch))["containers"]) == ["b", "a"]


def test_smp_env_merges_by_name_and_ports_by_container_port() -> None:
    original = deployment(
        [
            {
                "name": "c",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
            }
        ]
    )
    container = {
        "name": "c",
        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
        "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 9090}],
    }
    patch = {"spec": {"template": {"spec": {"containers": [container]}}}}
    merged = pod_spec(smp(original, patch))["containers"][0]
    assert merged["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert merged["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 443, "name": "https"},
        {"containerPort": 9090},
    ]


def test_smp_lists_without_strategy_are_replaced() -> None:
    original = deployment([{"name": "c", "args": ["--a", "--b"], "command": ["run"]}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["--c"]}]}}}}
    merged = pod_spec(smp(original, patch))["containers"][0]
    assert merged == {"name": "c", "args": ["--c"], "command": ["run"]}


def test_smp_unknown_fields_behave_like_merge_patch() -> None:
    original = {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}, "extra": [1, 2]}
    patch = {"data": {"a": None, "c": "3"}, "extra": [3]}
    result = smp(original, patch, "ConfigMap")
    assert result == {"metadata": {"name": "cm"}, "data": {"b": "2", "c": "3"}, "extra": [3]}


def test_smp_patch_delete_removes_element_by_key() -> None:
    original = deployment([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}}
    assert names(pod_spec(smp(original, patch))["containers"]) == ["a", "c"]


def test_smp_patch_delete_removes_all_duplicates() -> None:
    original = deployment([{"name": "a"}, {"name": "a"}, {"name": "b", "image": "x"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}}
    assert pod_spec(smp(original, patch))["containers"] == [{"name": "b", "image": "x"}]


def test_smp_patch_replace_in_list_replaces_the_whole_list() -> None:
    original = deployment([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    containers = [{"name": "z", "image": "z"}, {"$patch": "replace"}]
    patch = {"spec": {"template": {"spec": {"containers": containers}}}}
    assert pod_spec(smp(original, patch))["containers"] == [{"name": "z", "image": "z"}]


def test_smp_patch_replace_alone_empties_the_list() -> None:
    original = deployment([{"name": "a"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}]}}}}
    assert pod_spec(smp(original, patch))["containers"] == []


def test_smp_patch_replace_in_map_replaces_the_map() -> None:
    original = deployment([{"name": "c"}])
    original["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "front"}
    labels = {"$patch": "replace", "app": "api"}
    patch = {"spec": {"template": {"metadata": {"labels": labels}}}}
    assert smp(original, patch)["spec"]["template"]["metadata"]["labels"] == {"app": "api"}


def test_smp_patch_delete_in_map_empties_it() -> None:
    # Kubernetes leaves an empty map behind (apimachinery "delete map from nested map").
    original = deployment([{"name": "c"}])
    original["metadata"]["annotations"] = {"a": "1"}
    patch = {"metadata": {"annotations": {"$patch": "delete"}}}
    assert smp(original, patch)["metadata"]["annotations"] == {}


def test_smp_patch_merge_directive_is_a_no_op() -> None:
    original = {"metadata": {"labels": {"a": "1"}}}
    patch = {"metadata": {"labels": {"$patch": "merge", "b": "2"}}}
    assert smp(original, patch, "Pod") == {"metadata": {"labels": {"a": "1", "b": "2"}}}


def test_smp_unknown_directive_is_malformed() -> None:
    with pytest.raises(PatchError) as info:
        smp({"metadata": {}}, {"metadata": {"$patch": "explode"}}, "Pod")
    assert info.value.code == 400


def test_smp_primitive_merge_list_is_unioned() -> None:
    original = {"metadata": {"name": "p", "finalizers": ["a", "b"]}}
    patch = {"metadata": {"finalizers": ["b", "c"]}}
    assert smp(original, patch, "Pod")["metadata"]["finalizers"] == ["a", "b", "c"]


def test_smp_delete_from_primitive_list() -> None:
    original = {"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}
    assert smp(original, patch, "Pod")["metadata"]["finalizers"] == ["a", "c"]


def test_smp_delete_from_missing_primitive_list_is_a_no_op() -> None:
    original = {"metadata": {"name": "p"}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert smp(original, patch, "Pod") == {"metadata": {"name": "p"}}


def test_smp_owner_references_merge_by_uid() -> None:
    original = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "controller": True}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "1", "controller": False}, {"uid": "2"}]}}
    refs = smp(original, patch, "Pod")["metadata"]["ownerReferences"]
    assert refs == [{"uid": "1", "name": "a", "controller": False}, {"uid": "2"}]


def test_smp_patch_order_wins_for_patched_elements() -> None:
    # apimachinery "preserve the order from the patch in a merging list 2"
    original = deployment([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])
    containers = [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]
    patch = {"spec": {"template": {"spec": {"containers": containers}}}}
    assert names(pod_spec(smp(original, patch))["containers"]) == ["2", "3", "1"]


def test_smp_set_element_order_reorders_the_list() -> None:
    original = deployment([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    order = [{"name": "c"}, {"name": "a"}, {"name": "b"}]
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": order}}}}
    assert names(pod_spec(smp(original, patch))["containers"]) == ["c", "a", "b"]


def test_smp_set_element_order_keeps_unlisted_server_items() -> None:
    original = deployment([{"name": "a"}, {"name": "injected"}, {"name": "b"}])
    spec = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "new"}],
        "containers": [{"name": "a", "image": "a2"}, {"name": "new"}],
    }
    result = pod_spec(smp(original, {"spec": {"template": {"spec": spec}}}))["containers"]
    # Listed items follow the directive; a server-only item is inserted before the first listed
    # item that came after it on the server.
    assert names(result) == ["injected", "b", "a", "new"]
    assert result[2] == {"name": "a", "image": "a2"}


def test_smp_set_element_order_on_primitive_list() -> None:
    original = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}}
    assert smp(original, patch, "Pod")["metadata"]["finalizers"] == ["c", "b", "a"]


def test_smp_set_element_order_must_agree_with_the_patch_list() -> None:
    original = deployment([{"name": "1"}, {"name": "3"}, {"name": "2"}])
    spec = {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
    }
    with pytest.raises(PatchError) as info:
        smp(original, {"spec": {"template": {"spec": spec}}})
    assert info.value.code == 422


def test_smp_merge_list_element_without_merge_key_fails() -> None:
    original = deployment([{"name": "a"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(PatchError) as info:
        smp(original, patch)
    assert info.value.code == 422


def test_smp_new_list_runs_nested_directives() -> None:
    original = {"metadata": {"name": "p"}, "spec": {}}
    app = {
        "name": "a",
        "$setElementOrder/env": [{"name": "X"}],
        "env": [{"name": "X", "value": None}, {"name": "Y", "$patch": "delete"}],
    }
    spec = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "b", "args": None}, app],
    }
    result = smp(original, {"spec": spec}, "Pod")
    assert result["spec"]["containers"] == [{"name": "b"}, {"name": "a", "env": [{"name": "X"}]}]


# --------------------------------------------------------------------------- SMP: maps


def test_smp_null_deletes_a_key() -> None:
    original = deployment([{"name": "c"}], nodeSelector={"disk": "ssd"}, hostNetwork=True)
    patch = {"spec": {"template": {"spec": {"nodeSelector": None, "dnsPolicy": None}}}}
    spec = pod_spec(smp(original, patch))
    assert "nodeSelector" not in spec
    assert "dnsPolicy" not in spec
    assert spec["hostNetwork"] is True


def test_smp_rollout_restart() -> None:
    original = deployment([{"name": "c", "image": "x"}])
    original["spec"]["template"]["metadata"]["annotations"] = {"keep": "me"}
    annotation = {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
    patch = {"spec": {"template": {"metadata": {"annotations": annotation}}}}
    result = smp(original, patch)
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"keep": "me", **annotation},
    }
    assert pod_spec(result) == pod_spec(original)


def test_smp_retain_keys_on_deployment_strategy() -> None:
    original = deployment([{"name": "c"}])
    original["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(original, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_rejects_patch_keys_not_retained() -> None:
    original = deployment([{"name": "c"}])
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}
    with pytest.raises(PatchError) as info:
        smp(original, patch)
    assert info.value.code == 400


def test_smp_volumes_merge_by_name_with_retain_keys() -> None:
    volumes = [
        {"name": "config", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
    ]
    original = deployment([{"name": "c"}], volumes=volumes)
    patched_volume = {
        "$retainKeys": ["configMap", "name"],
        "name": "config",
        "configMap": {"name": "cfg"},
    }
    patch = {"spec": {"template": {"spec": {"volumes": [patched_volume]}}}}
    assert pod_spec(smp(original, patch))["volumes"] == [
        {"name": "config", "configMap": {"name": "cfg"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
    ]


def test_smp_replace_strategy_map_is_replaced() -> None:
    original = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    patch: dict[str, Any] = {"spec": {"selector": {"matchExpressions": []}}}
    result = apply_strategic_merge_patch(original, patch, "policy/v1", "PodDisruptionBudget")
    assert result["spec"] == {"selector": {"matchExpressions": []}, "minAvailable": 1}


def test_smp_type_change_takes_the_patch_value() -> None:
    original = {"spec": {"ports": [{"port": 80}]}}
    patch = {"spec": {"ports": {"weird": None, "x": 1}}}
    assert smp(original, patch, "Service")["spec"]["ports"] == {"x": 1}


def test_smp_service_ports_merge_by_port() -> None:
    original = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    assert smp(original, patch, "Service")["spec"]["ports"] == [
        {"port": 80, "targetPort": 9090},
        {"port": 443},
    ]


def test_smp_lists_of_lists_are_rejected() -> None:
    original = {"metadata": {"finalizers": ["a"]}}
    with pytest.raises(PatchError):
        smp(original, {"metadata": {"finalizers": [["b"]]}}, "Pod")


# --------------------------------------------------------------------------- SMP: kubectl apply


def test_smp_kubectl_client_side_apply_three_way_patch() -> None:
    last_applied = "{...}"  # the annotation body is opaque to the patch engine
    live = deployment(
        [
            {
                "name": "app",
                "image": "app:v1",
                "args": ["--port=8080", "--verbose"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
            },
            {"name": "sidecar", "image": "sidecar:1"},
            {"name": "istio-proxy", "image": "proxyv2:1.22"},  # injected, not applied
        ],
        volumes=[{"name": "config", "emptyDir": {}}],
        dnsPolicy="ClusterFirst",
    )
    live["metadata"]["annotations"] = {"other-controller/owned": "yes"}
    live["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    # What kubectl apply sends after: image bump, env B removed and C added, sidecar removed,
    # args changed, the volume switched from emptyDir to a configMap, a finalizer dropped.
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
            "$setElementOrder/finalizers": ["example.com/a"],
            "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "$setElementOrder/volumes": [{"name": "config"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                            "args": ["--port=9090"],
                            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                            "image": "app:v2",
                            "name": "app",
                        },
                        {"$patch": "delete", "name": "sidecar"},
                    ],
                    "volumes": [
                        {
                            "$retainKeys": ["configMap", "name"],
                            "configMap": {"name": "app-config"},
                            "emptyDir": None,
                            "name": "config",
                        }
                    ],
                }
            }
        },
    }
    result = smp(live, patch)
    assert result["metadata"]["annotations"] == {
        "other-controller/owned": "yes",
        "kubectl.kubernetes.io/last-applied-configuration": last_applied,
    }
    assert result["metadata"]["finalizers"] == ["example.com/a"]
    spec = pod_spec(result)
    assert spec["containers"] == [
        {
            "name": "app",
            "image": "app:v2",
            "args": ["--port=9090"],
            "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
        },
        {"name": "istio-proxy", "image": "proxyv2:1.22"},
    ]
    assert spec["volumes"] == [{"name": "config", "configMap": {"name": "app-config"}}]
    assert spec["dnsPolicy"] == "ClusterFirst"


# --------------------------------------------------------------------------- SMP: properties


smp_scalars = st.booleans() | st.integers() | st.text(max_size=5)
SCHEMA_KEYS = ("metadata", "spec", "template", "labels", "annotations", "strategy", "containers")
LIST_KEYS = ("finalizers", "ownerReferences", "volumes", "env", "replicas", "a", "b")
smp_keys = st.sampled_from([*SCHEMA_KEYS, *LIST_KEYS]) | st.text(max_size=4).filter(
    lambda k: not k.startswith("$")
)
list_free_patches = st.recursive(
    smp_scalars | st.none(),
    lambda children: st.dictionaries(smp_keys, children, max_size=4),
    max_leaves=12,
)
originals = st.dictionaries(
    smp_keys,
    st.recursive(
        smp_scalars | st.none(),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(smp_keys, children, max_size=4)
        ),
        max_leaves=12,
    ),
    max_size=5,
)


@given(originals, st.dictionaries(smp_keys, list_free_patches, max_size=5))
@settings(max_examples=300)
def test_smp_without_lists_or_directives_equals_merge_patch(
    original: dict[str, Any], patch: dict[str, Any]
) -> None:
    before = copy.deepcopy((original, patch))
    result = apply_strategic_merge_patch(original, patch, "apps/v1", "Deployment")
    assert canonical(result) == canonical(apply_merge_patch(original, patch))
    assert canonical((original, patch)) == canonical(before)
