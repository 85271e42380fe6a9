"""The verbs' Kubernetes semantics, in process: metadata, conflicts, status, deletion, CRDs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, PATCH_STRATEGIC, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Store

OPTS = WriteOptions(field_manager="test")


@pytest.fixture
async def cluster() -> Cluster:
    cluster = Cluster(Store(None))
    await cluster.create(rt(cluster, "", "namespaces"), "", {"metadata": {"name": "ns"}}, OPTS)
    return cluster


def rt(cluster: Cluster, group: str, plural: str, version: str = "v1") -> ResourceType:
    found = cluster.registry.get(group, version, plural)
    assert found is not None
    return found


def deployment(name: str = "web", replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }


async def api_error(awaitable: Any) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        await awaitable
    return caught.value


async def test_create_stamps_metadata_and_defaults(cluster: Cluster) -> None:
    created = (
        await cluster.create(rt(cluster, "apps", "deployments"), "ns", deployment(), OPTS)
    ).obj
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and meta["namespace"] == "ns"
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "status" not in created


async def test_create_twice_is_already_exists(cluster: Cluster) -> None:
    deployments = rt(cluster, "apps", "deployments")
    await cluster.create(deployments, "ns", deployment(), OPTS)
    error = await api_error(cluster.create(deployments, "ns", deployment(), OPTS))
    assert (error.code, error.reason) == (409, "AlreadyExists")


async def test_create_in_a_missing_namespace_is_not_found(cluster: Cluster) -> None:
    error = await api_error(
        cluster.create(rt(cluster, "apps", "deployments"), "nope", deployment(), OPTS)
    )
    assert error.code == 404 and 'namespaces "nope" not found' in error.message


async def test_generate_name(cluster: Cluster) -> None:
    body = {"metadata": {"generateName": "cfg-"}, "data": {}}
    created = (await cluster.create(rt(cluster, "", "configmaps"), "ns", body, OPTS)).obj
    assert created["metadata"]["name"].startswith("cfg-")
    assert len(created["metadata"]["name"]) == len("cfg-") + 5


async def test_invalid_names_are_rejected(cluster: Cluster) -> None:
    error = await api_error(
        cluster.create(
            rt(cluster, "", "configmaps"), "ns", {"metadata": {"name": "Bad_Name"}}, OPTS
        )
    )
    assert error.code == 422 and "metadata.name" in error.message


async def test_update_with_a_stale_version_conflicts(cluster: Cluster) -> None:
    deployments = rt(cluster, "apps", "deployments")
    created = (await cluster.create(deployments, "ns", deployment(), OPTS)).obj
    fresh = {**created, "spec": {**created["spec"], "replicas": 2}}
    await cluster.update(deployments, "ns", "web", fresh, OPTS)
    stale = {**created, "spec": {**created["spec"], "replicas": 3}}
    error = await api_error(cluster.update(deployments, "ns", "web", stale, OPTS))
    assert (error.code, error.reason) == (409, "Conflict")


async def test_generation_moves_only_with_the_spec(cluster: Cluster) -> None:
    deployments = rt(cluster, "apps", "deployments")
    await cluster.create(deployments, "ns", deployment(), OPTS)
    labelled = await cluster.patch(
        deployments, "ns", "web", PATCH_MERGE, b'{"metadata":{"labels":{"a":"b"}}}', OPTS
    )
    assert labelled.obj["metadata"]["generation"] == 1
    scaled = await cluster.patch(
        deployments, "ns", "web", PATCH_MERGE, b'{"spec":{"replicas":4}}', OPTS
    )
    assert scaled.obj["metadata"]["generation"] == 2


async def test_a_write_that_changes_nothing_is_not_stored(cluster: Cluster) -> None:
    deployments = rt(cluster, "apps", "deployments")
    created = (await cluster.create(deployments, "ns", deployment(), OPTS)).obj
    again = await cluster.patch(
        deployments, "ns", "web", PATCH_MERGE, b'{"spec":{"replicas":1}}', OPTS
    )
    assert again.obj["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_status_is_written_only_through_its_subresource(cluster: Cluster) -> None:
    deployments = rt(cluster, "apps", "deployments")
    await cluster.create(deployments, "ns", deployment(), OPTS)
    ignored = await cluster.patch(
        deployments, "ns", "web", PATCH_MERGE, b'{"status":{"replicas":9}}', OPTS
    )
    assert "status" not in ignored.obj
    status = b'{"status":{"replicas":9},"spec":{"replicas":7}}'
    written = await cluster.patch(deployments, "ns", "web", PATCH_MERGE, status, OPTS, "status")
    assert written.obj["status"] == {"replicas": 9}
    assert written.obj["spec"]["replicas"] == 1


async def test_strategic_merge_is_refused_for_custom_resources(cluster: Cluster) -> None:
    await cluster.create(
        rt(cluster, "apiextensions.k8s.io", "customresourcedefinitions"), "", crd(), OPTS
    )
    widgets = rt(cluster, "example.com", "widgets")
    await cluster.create(widgets, "ns", {"metadata": {"name": "w"}, "spec": {"size": 1}}, OPTS)
    error = await api_error(cluster.patch(widgets, "ns", "w", PATCH_STRATEGIC, b"{}", OPTS))
    assert error.code == 415


def crd() -> dict[str, Any]:
    return {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer"},
                                        "color": {"type": "string", "default": "red"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


async def test_a_crd_serves_its_resource_with_defaults(cluster: Cluster) -> None:
    crds = rt(cluster, "apiextensions.k8s.io", "customresourcedefinitions")
    created = (await cluster.create(crds, "", crd(), OPTS)).obj
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    widgets = rt(cluster, "example.com", "widgets")
    widget = (
        await cluster.create(
            widgets, "ns", {"metadata": {"name": "w"}, "spec": {"size": 1, "extra": True}}, OPTS
        )
    ).obj
    assert widget["spec"] == {"size": 1, "color": "red"}
    error = await api_error(
        cluster.create(widgets, "ns", {"metadata": {"name": "x"}, "spec": {"size": "big"}}, OPTS)
    )
    assert error.code == 422 and "spec.size" in error.message


async def test_strict_field_validation_names_unknown_fields(cluster: Cluster) -> None:
    await cluster.create(
        rt(cluster, "apiextensions.k8s.io", "customresourcedefinitions"), "", crd(), OPTS
    )
    strict = WriteOptions(field_manager="t", field_validation="Strict")
    error = await api_error(
        cluster.create(
            rt(cluster, "example.com", "widgets"),
            "ns",
            {"metadata": {"name": "w"}, "spec": {"size": 1, "shape": "round"}},
            strict,
        )
    )
    assert error.code == 400 and 'unknown field "spec.shape"' in error.message


async def test_finalizers_hold_an_object_until_removed(cluster: Cluster) -> None:
    configmaps = rt(cluster, "", "configmaps")
    body = {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    await cluster.create(configmaps, "ns", body, OPTS)
    marked = (await cluster.delete(configmaps, "ns", "held")).obj
    assert marked["metadata"]["deletionTimestamp"]
    assert cluster.store.get("/configmaps", "ns", "held") is not None
    patch = orjson.dumps({"metadata": {"finalizers": None}})
    await cluster.patch(configmaps, "ns", "held", PATCH_MERGE, patch, OPTS)
    assert cluster.store.get("/configmaps", "ns", "held") is None


async def test_running_pods_terminate_gracefully(cluster: Cluster) -> None:
    pods = rt(cluster, "", "pods")
    body = {
        "metadata": {"name": "p"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]},
    }
    await cluster.create(pods, "ns", body, OPTS)
    marked = (await cluster.delete(pods, "ns", "p")).obj
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    await cluster.delete(pods, "ns", "p", {"gracePeriodSeconds": 0})
    assert cluster.store.get("/pods", "ns", "p") is None


async def test_delete_preconditions(cluster: Cluster) -> None:
    configmaps = rt(cluster, "", "configmaps")
    await cluster.create(configmaps, "ns", {"metadata": {"name": "c"}}, OPTS)
    error = await api_error(
        cluster.delete(configmaps, "ns", "c", {"preconditions": {"uid": "other"}})
    )
    assert error.code == 409


async def test_deleting_a_namespace_marks_it_terminating(cluster: Cluster) -> None:
    namespaces = rt(cluster, "", "namespaces")
    marked = (await cluster.delete(namespaces, "", "ns")).obj
    assert marked["status"]["phase"] == "Terminating"
    error = await api_error(
        cluster.create(rt(cluster, "", "configmaps"), "ns", {"metadata": {"name": "late"}}, OPTS)
    )
    assert error.code == 403


async def test_dry_run_stores_nothing(cluster: Cluster) -> None:
    dry = WriteOptions(field_manager="t", dry_run=True)
    await cluster.create(rt(cluster, "", "configmaps"), "ns", {"metadata": {"name": "d"}}, dry)
    assert cluster.store.get("/configmaps", "ns", "d") is None
