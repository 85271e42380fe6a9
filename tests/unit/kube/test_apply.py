"""Apply order, object references, and apply/patch/prune requests as the API server sees them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from meshcanary.kube import apply, client, errors, resources
from meshcanary.kube.apply import ObjectRef

from .fakeapi import FakeApi, configmap, status

RETRY_FAST = apply.retry.Backoff(attempts=3, initial=0.0, jitter=0.0)


def manifest(kind: str, name: str, api_version: str = "v1", **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **metadata}}


def test_install_order_follows_helm_and_is_stable() -> None:
    manifests = [
        manifest("MutatingWebhookConfiguration", "hook", "admissionregistration.k8s.io/v1"),
        manifest("IstioControlPlane", "cp", "meshcanary.io/v1alpha1"),
        manifest("Deployment", "istiod", "apps/v1"),
        manifest("ConfigMap", "b"),
        manifest("Namespace", "istio-system"),
        manifest("ConfigMap", "a"),
        manifest("ServiceAccount", "istiod"),
        manifest("CustomResourceDefinition", "crd", "apiextensions.k8s.io/v1"),
    ]
    names = [m["metadata"]["name"] for m in apply.install_order(manifests)]
    assert names == ["istio-system", "istiod", "b", "a", "crd", "istiod", "hook", "cp"]
    reverse = [m["metadata"]["name"] for m in apply.uninstall_order(manifests)]
    assert reverse == ["cp", "hook", "istiod", "crd", "b", "a", "istiod", "istio-system"]


def test_object_refs() -> None:
    ref = apply.ref_of(manifest("ConfigMap", "a", namespace="ns"))
    assert ref == ObjectRef("ConfigMap", "ns", "a", "v1")
    assert str(ref) == "ConfigMap ns/a"
    assert str(apply.ref_of(manifest("Namespace", "ns"))) == "Namespace ns"
    hpa1 = apply.ref_of(manifest("HorizontalPodAutoscaler", "h", "autoscaling/v1", namespace="n"))
    hpa2 = apply.ref_of(
        {"metadata": {"name": "h", "namespace": "n"}},
        resources.raw(resources.HorizontalPodAutoscaler),
    )
    assert hpa1 != hpa2 and hpa1.identity == hpa2.identity == (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "n",
        "h",
    )


@pytest.mark.parametrize("metadata", [{}, {"name": ""}, {"name": 3}])
def test_refs_need_a_name(metadata: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidManifest, match=r"without metadata\.name"):
        apply.ref_of({"kind": "ConfigMap", "metadata": metadata})


async def test_apply_sends_server_side_apply(kubeconfig: Path, api: FakeApi) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        return httpx2.Response(200, json={**body, "metadata": {**body["metadata"], "uid": "u"}})

    api.on("PATCH", "/api/v1/namespaces/mesh", answer)
    api.on("PATCH", "/api/v1/namespaces/mesh/configmaps/c", answer)
    cm = {**manifest("ConfigMap", "c", namespace="mesh"), "data": {"k": "v"}}
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        applied = await apply.apply_manifests(kube, [cm, manifest("Namespace", "mesh")])
    assert [a["kind"] for a in applied] == ["Namespace", "ConfigMap"]
    assert applied[1]["data"] == {"k": "v"} and type(applied[1]) is dict
    request = api.requests[-1]
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert dict(request.url.params) == {"fieldManager": "meshcanary", "force": "true"}
    assert json.loads(request.content) == cm


async def test_apply_dry_run_and_retries(kubeconfig: Path, api: FakeApi) -> None:
    api.on(
        "PATCH",
        "/api/v1/namespaces/mesh/configmaps/c",
        lambda _: status(500, "InternalError", "etcd hiccup"),
        lambda r: httpx2.Response(200, json=json.loads(r.content)),
    )
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        await apply.apply_manifest(
            kube, manifest("ConfigMap", "c", namespace="mesh"), dry_run=True, backoff=RETRY_FAST
        )
    patches = api.params("/api/v1/namespaces/mesh/configmaps/c")
    assert len(patches) == 2
    assert patches[-1]["dryRun"] == "All"


async def test_apply_does_not_retry_invalid_objects(kubeconfig: Path, api: FakeApi) -> None:
    api.on("PATCH", "/api/v1/namespaces/mesh/configmaps/c", lambda _: status(422, "Invalid", "bad"))
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        with pytest.raises(errors.Invalid, match="bad"):
            await apply.apply_manifest(kube, manifest("ConfigMap", "c", namespace="mesh"))
    assert len(api.params("/api/v1/namespaces/mesh/configmaps/c")) == 1


async def test_apply_rejects_unknown_kinds_before_sending(kubeconfig: Path, api: FakeApi) -> None:
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        with pytest.raises(errors.UnknownKind):
            await apply.apply_manifests(kube, [manifest("Gizmo", "g", "example.com/v1")])
    assert len(api.requests) == 1  # the connection check only


async def test_merge_patch_of_custom_status(kubeconfig: Path, api: FakeApi) -> None:
    path = "/apis/meshcanary.io/v1alpha1/namespaces/istio-system/istiocontrolplanes/cp/status"
    api.on("PATCH", path, lambda r: httpx2.Response(200, json={"status": json.loads(r.content)}))
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        patched = await apply.merge_patch(
            kube,
            resources.IstioControlPlane,
            "cp",
            {"status": {"status": "Available"}},
            namespace="istio-system",
            status=True,
        )
    assert patched == {"status": {"status": {"status": "Available"}}}
    assert api.requests[-1].headers["content-type"] == "application/merge-patch+json"


async def test_delete_tolerates_missing_objects(kubeconfig: Path, api: FakeApi) -> None:
    api.on("DELETE", "/api/v1/namespaces/n/configmaps/gone", lambda _: status(404, "NotFound"))
    api.on(
        "DELETE",
        "/api/v1/namespaces/n/configmaps/here",
        lambda _: httpx2.Response(200, json={"kind": "Status", "status": "Success"}),
    )
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        assert not await apply.delete(kube, resources.ConfigMap, "gone", namespace="n")
        assert await apply.delete(kube, resources.ConfigMap, "here", namespace="n", dry_run=True)
    assert api.params("/api/v1/namespaces/n/configmaps/here") == [{"dryRun": "All"}]


async def test_prune_deletes_unkept_matches_only(kubeconfig: Path, api: FakeApi) -> None:
    listed = {
        "metadata": {"resourceVersion": "9"},
        "items": [configmap("keep", "1"), configmap("stale", "2"), configmap("gone", "3")],
    }
    api.on("GET", "/api/v1/configmaps", lambda _: httpx2.Response(200, json=listed))
    api.on(
        "DELETE", "/api/v1/namespaces/ns/configmaps/stale", lambda _: httpx2.Response(200, json={})
    )
    api.on("DELETE", "/api/v1/namespaces/ns/configmaps/gone", lambda _: status(404, "NotFound"))
    keep = [ObjectRef("ConfigMap", "ns", "keep", "v1")]
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        pruned = await apply.prune(kube, [resources.ConfigMap], {"owner": "cp"}, keep=keep)
    assert pruned == [ObjectRef("ConfigMap", "ns", "stale", "v1")]
    assert api.params("/api/v1/configmaps")[0]["labelSelector"] == "owner=cp"


async def test_prune_refuses_an_empty_selector(kubeconfig: Path, api: FakeApi) -> None:
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        with pytest.raises(ValueError, match="empty label selector"):
            await apply.prune(kube, [resources.ConfigMap], {})
