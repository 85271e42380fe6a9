"""The /openapi/v3 index and documents, checked against what kubectl 1.33 reads from them."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from meshcanary.sandbox.apiserver import openapi
from meshcanary.sandbox.apiserver.registry import Registry

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An Istio control plane.",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"revision": {"type": "string", "description": "Revision name."}},
        }
    },
}


def make_crd(schema: dict[str, Any] | None = None, scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "metadata": {"name": "istiocontrolplanes.meshcanary.io"},
        "spec": {
            "group": "meshcanary.io",
            "scope": scope,
            "names": {"plural": "istiocontrolplanes", "kind": "IstioControlPlane"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema or SCHEMA)},
                }
            ],
        },
    }


@pytest.fixture
def registry() -> Registry:
    reg = Registry.with_builtins()
    reg.set_crd(make_crd())
    return reg


def url_of(registry: Registry, path: str) -> str:
    return str(openapi.index(registry)["paths"][path]["serverRelativeURL"])


def patch_ops(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    ops = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    return [op for op in ops if op["x-kubernetes-group-version-kind"]["kind"] == kind]


def test_index_lists_core_groups_and_crd_groups(registry: Registry) -> None:
    paths = openapi.index(registry)["paths"]
    assert next(iter(paths)) == "api/v1"
    for path in (
        "api/v1",
        "apis/apps/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/meshcanary.io/v1alpha1",
        "apis/autoscaling/v2",
    ):
        assert paths[path]["serverRelativeURL"].startswith(f"/openapi/v3/{path}?hash=")


def test_hash_changes_when_a_crd_schema_changes(registry: Registry) -> None:
    before = url_of(registry, "apis/meshcanary.io/v1alpha1")
    core = url_of(registry, "api/v1")
    assert url_of(registry, "apis/meshcanary.io/v1alpha1") == before  # stable
    changed = copy.deepcopy(SCHEMA)
    changed["properties"]["spec"]["properties"]["replicas"] = {"type": "integer"}
    registry.set_crd(make_crd(changed))
    assert url_of(registry, "apis/meshcanary.io/v1alpha1") != before
    assert url_of(registry, "api/v1") == core


def test_removed_crd_group_leaves_the_index(registry: Registry) -> None:
    registry.remove_crd("istiocontrolplanes.meshcanary.io")
    assert "apis/meshcanary.io/v1alpha1" not in openapi.index(registry)["paths"]
    assert openapi.document(registry, "apis/meshcanary.io/v1alpha1") is None


@pytest.mark.parametrize("path", ["apis/nope.io/v1", "api/v2", "apis/apps", "bogus", ""])
def test_unserved_group_versions_have_no_document(registry: Registry, path: str) -> None:
    assert openapi.document(registry, path) is None


def test_document_shape(registry: Registry) -> None:
    doc = openapi.document(registry, "apis/apps/v1")
    assert doc is not None
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["title"] == "Kubernetes"
    assert "/apis/apps/v1/namespaces/{namespace}/deployments" in doc["paths"]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in doc["paths"]
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    json.dumps(doc)  # plain JSON all the way down


def test_patch_operation_declares_field_validation_and_gvk(registry: Registry) -> None:
    doc = openapi.document(registry, "apis/apps/v1")
    assert doc is not None
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert patch["x-kubernetes-action"] == "patch"
    assert {
        "name": "fieldValidation",
        "in": "query",
        "description": patch["parameters"][2]["description"],
        "schema": {"type": "string", "uniqueItems": True},
    } in patch["parameters"]
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace"]


def test_every_write_operation_carries_field_validation(registry: Registry) -> None:
    for path in openapi.index(registry)["paths"]:
        doc = openapi.document(registry, path)
        assert doc is not None
        for item in doc["paths"].values():
            for method in ("post", "put", "patch"):
                if method in item:
                    names = [p["name"] for p in item[method]["parameters"]]
                    assert "fieldValidation" in names, (path, method)


def test_namespace_and_crd_patch_operations_exist(registry: Registry) -> None:
    # kubectl checks these two when it has no document for a custom resource's group-version.
    core = openapi.document(registry, "api/v1")
    ext = openapi.document(registry, "apis/apiextensions.k8s.io/v1")
    assert core is not None and ext is not None
    assert "/api/v1/namespaces/{name}" in core["paths"]
    assert patch_ops(core, "Namespace")
    assert "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}" in ext["paths"]
    assert patch_ops(ext, "CustomResourceDefinition")


def test_operations_per_path(registry: Registry) -> None:
    doc = openapi.document(registry, "api/v1")
    assert doc is not None
    collection = doc["paths"]["/api/v1/namespaces/{namespace}/pods"]
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert {k for k in collection if k != "parameters"} == {"get", "post", "delete"}
    assert {k for k in item if k != "parameters"} == {"get", "put", "patch", "delete"}
    actions = {m: op["x-kubernetes-action"] for m, op in collection.items() if m != "parameters"}
    assert actions == {"get": "list", "post": "post", "delete": "deletecollection"}


def test_builtin_patch_does_not_advertise_strategic_merge(registry: Registry) -> None:
    # With no patch metadata in the permissive schemas, advertising SMP would make kubectl apply
    # compute list-replacing patches from OpenAPI v3; without it, it uses its compiled-in types.
    doc = openapi.document(registry, "apis/apps/v1")
    assert doc is not None
    for op in patch_ops(doc, "Deployment"):
        content = op["requestBody"]["content"]
        assert "application/strategic-merge-patch+json" not in content
        assert "application/merge-patch+json" in content


def test_builtin_component_is_permissive(registry: Registry) -> None:
    doc = openapi.document(registry, "api/v1")
    assert doc is not None
    pod = doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["type"] == "object"
    assert pod["x-kubernetes-preserve-unknown-fields"] is True
    assert set(pod["properties"]) == {"apiVersion", "kind", "metadata"}
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("apis/rbac.authorization.k8s.io/v1", "io.k8s.api.rbac.v1.ClusterRole"),
        ("apis/coordination.k8s.io/v1", "io.k8s.api.coordination.v1.Lease"),
        (
            "apis/apiextensions.k8s.io/v1",
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
        ("apis/meshcanary.io/v1alpha1", "io.meshcanary.v1alpha1.IstioControlPlane"),
    ],
)
def test_component_names(registry: Registry, path: str, name: str) -> None:
    doc = openapi.document(registry, path)
    assert doc is not None
    assert name in doc["components"]["schemas"]


def test_crd_component_is_its_openapi_schema(registry: Registry) -> None:
    doc = openapi.document(registry, "apis/meshcanary.io/v1alpha1")
    assert doc is not None
    component = dict(doc["components"]["schemas"]["io.meshcanary.v1alpha1.IstioControlPlane"])
    gvk = component.pop("x-kubernetes-group-version-kind")
    assert gvk == [{"group": "meshcanary.io", "version": "v1alpha1", "kind": "IstioControlPlane"}]
    assert component == SCHEMA
    patch = patch_ops(doc, "IstioControlPlane")
    assert len(patch) == 1
    assert "application/strategic-merge-patch+json" not in patch[0]["requestBody"]["content"]


def test_crd_schema_is_copied_not_shared(registry: Registry) -> None:
    doc = openapi.document(registry, "apis/meshcanary.io/v1alpha1")
    assert doc is not None
    rt = registry.get("meshcanary.io", "v1alpha1", "istiocontrolplanes")
    assert rt is not None and rt.schema is not None
    assert "x-kubernetes-group-version-kind" not in rt.schema


def test_cluster_scoped_custom_resource_paths() -> None:
    reg = Registry.with_builtins()
    reg.set_crd(make_crd(scope="Cluster"))
    doc = openapi.document(reg, "apis/meshcanary.io/v1alpha1")
    assert doc is not None
    assert set(doc["paths"]) == {
        "/apis/meshcanary.io/v1alpha1/istiocontrolplanes",
        "/apis/meshcanary.io/v1alpha1/istiocontrolplanes/{name}",
    }


def test_list_components_are_referenced(registry: Registry) -> None:
    doc = openapi.document(registry, "apis/apps/v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    for item in doc["paths"].values():
        for method, op in item.items():
            if method == "parameters":
                continue
            ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.removeprefix("#/components/schemas/") in schemas


def test_documents_are_cached_until_the_types_change(registry: Registry) -> None:
    openapi.document(registry, "api/v1")
    start = time.perf_counter()
    for _ in range(200):
        openapi.index(registry)
    assert time.perf_counter() - start < 1.0
    first = openapi.document(registry, "apis/meshcanary.io/v1alpha1")
    registry.set_crd(make_crd())  # same content, new ResourceType objects
    second = openapi.document(registry, "apis/meshcanary.io/v1alpha1")
    assert first == second
