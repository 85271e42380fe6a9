"""Revision discovery from the store: both naming styles, injector values, readiness."""

from __future__ import annotations

import pytest
from istio_mesh_builder import ISTIO_NS, OPTS, Mesh

from meshcanary.sandbox.istio import revisions
from meshcanary.sandbox.istio.revisions import Image, Revision


async def test_finds_an_smm_style_revision(mesh: Mesh) -> None:
    await mesh.istiod("istiod-cp-v115x", "cp-v115x.istio-system")
    assert revisions.find_revisions(mesh.cluster) == [
        Revision(
            rev="cp-v115x.istio-system",
            namespace=ISTIO_NS,
            deployment="istiod-cp-v115x",
            version="1.15.3",
            hub="docker.io/istio",
            proxy_image="docker.io/istio/proxyv2:1.15.3",
            ready=True,
            smm_style=True,
        )
    ]


async def test_finds_upstream_revisions_including_default(mesh: Mesh) -> None:
    await mesh.istiod("istiod", "default", image="gcr.io/istio-release/pilot:1.14.6")
    await mesh.istiod("istiod-1-16-2", "1-16-2", image="gcr.io/istio-release/pilot:1.16.2")
    found = {r.rev: r for r in revisions.find_revisions(mesh.cluster)}
    assert set(found) == {"default", "1-16-2"}
    assert found["default"].deployment == "istiod"
    assert found["default"].proxy_image == "gcr.io/istio-release/proxyv2:1.14.6"
    assert found["1-16-2"].version == "1.16.2"
    assert not found["1-16-2"].smm_style
    assert found["1-16-2"].discovery_address == "istiod-1-16-2.istio-system.svc:15012"


async def test_ignores_deployments_that_are_not_istiod(mesh: Mesh) -> None:
    await mesh.istiod("istiod-canary", "canary", image="docker.io/istio/proxyv2:1.16.0")
    await mesh.istiod("web", "canary", image="docker.io/istio/pilot-ish:1.16.0")
    assert revisions.find_revisions(mesh.cluster) == []


@pytest.mark.parametrize(
    ("configmap", "values", "proxy_image"),
    [
        (
            "istio-sidecar-injector-cp-v115x",
            {"global": {"hub": "registry.example/mesh", "tag": "1.15.4"}},
            "registry.example/mesh/proxyv2:1.15.4",
        ),
        (
            "istio-sidecar-injector-cp-v115x",
            {"global": {"proxy": {"image": "registry.example/custom/envoy:1.15.3-patched"}}},
            "registry.example/custom/envoy:1.15.3-patched",
        ),
        (
            "istio-sidecar-injector-cp-v115x",
            {"global": {"proxy": {"image": "proxyv2-distroless"}}},
            "docker.io/istio/proxyv2-distroless:1.15.3",
        ),
        (
            "istio-sidecar-injector-other",
            {"global": {"tag": "9.9.9"}},
            "docker.io/istio/proxyv2:1.15.3",
        ),
    ],
)
async def test_the_injector_configmap_decides_the_proxy_image(
    mesh: Mesh, configmap: str, values: dict[str, object], proxy_image: str
) -> None:
    await mesh.istiod("istiod-cp-v115x", "cp-v115x.istio-system")
    await mesh.injector_values(configmap, values)
    [revision] = revisions.find_revisions(mesh.cluster)
    assert revision.proxy_image == proxy_image
    assert revision.version == "1.15.3"


async def test_upstream_injector_configmap_names(mesh: Mesh) -> None:
    await mesh.istiod("istiod", "default")
    await mesh.istiod("istiod-1-16-2", "1-16-2", image="docker.io/istio/pilot:1.16.2")
    await mesh.injector_values("istio-sidecar-injector", {"global": {"tag": "1.15.3-distroless"}})
    await mesh.injector_values(
        "istio-sidecar-injector-1-16-2",
        {"global": {"hub": "mirror.local/istio", "multiCluster": {"clusterName": "east"}}},
    )
    found = {r.rev: r for r in revisions.find_revisions(mesh.cluster)}
    assert found["default"].proxy_image == "docker.io/istio/proxyv2:1.15.3-distroless"
    assert found["1-16-2"].proxy_image == "mirror.local/istio/proxyv2:1.16.2"
    assert (found["default"].cluster_id, found["1-16-2"].cluster_id) == ("Kubernetes", "east")


async def test_unreadable_injector_values_fall_back_to_the_pilot_image(mesh: Mesh) -> None:
    await mesh.istiod("istiod", "default")
    body = {"metadata": {"name": "istio-sidecar-injector"}, "data": {"values": "{not: [json"}}
    await mesh.cluster.create(mesh.rt("", "configmaps"), ISTIO_NS, body, OPTS)
    [revision] = revisions.find_revisions(mesh.cluster)
    assert revision.proxy_image == "docker.io/istio/proxyv2:1.15.3"


async def test_an_istiod_without_a_ready_pod_is_not_ready(mesh: Mesh) -> None:
    await mesh.istiod("istiod-cp-v116x", "cp-v116x.istio-system", ready=False)
    [revision] = revisions.find_revisions(mesh.cluster)
    assert not revision.ready
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "istiod-cp-v116x") is None


async def test_a_terminating_istiod_pod_does_not_count(mesh: Mesh) -> None:
    pod = await mesh.istiod("istiod-cp-v116x", "cp-v116x.istio-system")
    await mesh.cluster.delete(mesh.rt("", "pods"), ISTIO_NS, pod["metadata"]["name"])
    stored = mesh.cluster.store.get("/pods", ISTIO_NS, pod["metadata"]["name"])
    assert stored is not None and stored.obj["metadata"]["deletionTimestamp"]
    [revision] = revisions.find_revisions(mesh.cluster)
    assert not revision.ready


async def test_revision_for_service(mesh: Mesh) -> None:
    await mesh.istiod("istiod-cp-v115x", "cp-v115x.istio-system")
    await mesh.istiod("istiod-cp-v117x", "cp-v117x.istio-system", image="hub/pilot:1.17.1")
    found = revisions.revision_for_service(mesh.cluster, ISTIO_NS, "istiod-cp-v117x")
    assert found is not None and (found.rev, found.version) == ("cp-v117x.istio-system", "1.17.1")
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "missing") is None
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "istiod-cp-v117x", 443)
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "istiod-cp-v117x", 8443) is None


async def test_a_service_selecting_other_pods_has_no_revision(mesh: Mesh) -> None:
    await mesh.istiod("istiod", "default")
    await mesh.service("lookalike", {"app": "web"})
    await mesh.pod("web-1", {"app": "web"}, [{"name": "web", "image": "docker.io/istio/pilot:1"}])
    await mesh.service("no-selector", {})
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "lookalike") is None
    assert revisions.revision_for_service(mesh.cluster, ISTIO_NS, "no-selector") is None


@pytest.mark.parametrize(
    ("ref", "image"),
    [
        ("docker.io/istio/pilot:1.15.3", Image("docker.io/istio", "pilot", "1.15.3")),
        ("localhost:5000/istio/pilot", Image("localhost:5000/istio", "pilot", "latest")),
        ("gcr.io/x/pilot:1.2@sha256:abc", Image("gcr.io/x", "pilot", "1.2")),
    ],
)
def test_parse_image(ref: str, image: Image) -> None:
    assert revisions.parse_image(ref) == image


def test_proxy_image_of_a_hubless_pilot() -> None:
    assert revisions.proxy_image({}, revisions.parse_image("pilot:1.15.3")) == "proxyv2:1.15.3"
