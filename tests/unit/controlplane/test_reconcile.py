"""The reconcile engine against a real (in-process) sandbox API server.

The sandbox's `serve` runs in the test's event loop with an in-memory store, its controllers and
its simulated istiod, so the engine's requests, server-side apply semantics, the Deployment
controller making istiod available and the injection webhook are the real ones, without a
subprocess. `cluster` (a connected client) is also used by `test_deletion.py` and the operator
tests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.controlplane import crd, reconcile, render, spec
from meshcanary.kube import apply, client, listing, resources
from meshcanary.kube.client import Client
from meshcanary.sandbox import server
from meshcanary.sandbox.settings import Settings

NS = "istio-system"
TOKEN = "unit-test-token"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WAIT = 20.0


def control_plane(name: str = "cp-v113x", **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "meshcanary.io/v1alpha1",
        "kind": "IstioControlPlane",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"version": "1.13.9", **fields},
    }


def write_kubeconfig(path: Path, port: int) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "unit", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "unit", "user": {"token": TOKEN}}],
        "contexts": [{"name": "unit", "context": {"cluster": "unit", "user": "unit"}}],
        "current-context": "unit",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Client]:
    """A client of a fresh in-process sandbox with the CRD and the istio-system namespace."""
    sock = server.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    stop, ready = asyncio.Event(), asyncio.Event()
    config = server.ServerConfig(database=None, token=TOKEN, settings=Settings(nodes=1))
    task = asyncio.create_task(server.serve(config, sock, lambda _: ready.set(), stop))
    await asyncio.wait_for(ready.wait(), WAIT)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port)
    try:
        async with client.session(str(kubeconfig), field_manager="unit-test") as connected:
            assert await reconcile.ensure_crd(connected)
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
            await apply.apply_manifests(connected, [namespace])
            yield connected
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        sock.close()


async def create(kube: Client, resource: dict[str, Any]) -> dict[str, Any]:
    return await apply.apply_manifest(kube, resource)


async def until(
    kube: Client, resource: dict[str, Any], state: str, *, timeout: float = WAIT
) -> reconcile.ReconcileOutcome:
    """Reconcile until the status is `state` (istiod needs the controllers to become ready)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = await reconcile.reconcile(kube, resource, now=NOW)
        if outcome.status and outcome.status["status"] == state:
            return outcome
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {state} after {timeout}s: {outcome}")
        await asyncio.sleep(0.05)


async def labelled(kube: Client, revision: str) -> dict[str, list[str]]:
    """Names of the objects labelled for `revision`, by kind (every kind of render.KINDS)."""
    found: dict[str, list[str]] = {}
    namespaced, cluster_scoped = reconcile.kinds()
    for kind in [*namespaced, *cluster_scoped]:
        objects = await listing.collect(
            kube, resources.raw(kind), labels={"istio.io/rev": revision}
        )
        if objects:
            found[resources.kind_of(kind)] = sorted(o["metadata"]["name"] for o in objects)
    return found


async def versions(kube: Client, revision: str) -> dict[str, str]:
    found: dict[str, str] = {}
    namespaced, cluster_scoped = reconcile.kinds()
    for kind in [*namespaced, *cluster_scoped]:
        for obj in await listing.collect(
            kube, resources.raw(kind), labels={"istio.io/rev": revision}
        ):
            found[f"{resources.kind_of(kind)}/{obj['metadata']['name']}"] = obj["metadata"][
                "resourceVersion"
            ]
    return found


async def events(kube: Client, name: str) -> list[tuple[str, str]]:
    listed = await listing.collect(
        kube,
        resources.for_manifest({"apiVersion": "v1", "kind": "Event"}),
        namespace=NS,
        fields={"involvedObject.name": name},
    )
    listed.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(e["type"], e["reason"]) for e in listed]


async def read(kube: Client, name: str = "cp-v113x") -> dict[str, Any]:
    found = await listing.get(kube, resources.IstioControlPlane, name, namespace=NS)
    assert found is not None
    return found


# -- installing and the status ----------------------------------------------------------------


async def test_a_control_plane_is_installed_and_becomes_available(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    first = await reconcile.reconcile(cluster, resource, now=NOW)
    assert first.status is not None and first.status["status"] == "Reconciling"
    assert first.written and [t.reason for t in first.transitions] == ["Reconciling"]
    cp = spec.parse(resource)
    assert {ref.name for ref in first.applied} == {m["metadata"]["name"] for m in render.render(cp)}
    assert await labelled(cluster, cp.revision) == {
        "ClusterRole": ["istiod-cp-v113x-istio-system"],
        "ClusterRoleBinding": ["istiod-cp-v113x-istio-system"],
        "ConfigMap": ["istio-cp-v113x", "istio-sidecar-injector-cp-v113x"],
        "Deployment": ["istiod-cp-v113x"],
        "MutatingWebhookConfiguration": ["istio-sidecar-injector-cp-v113x-istio-system"],
        "PodDisruptionBudget": ["istiod-cp-v113x"],
        "Role": ["istiod-cp-v113x"],
        "RoleBinding": ["istiod-cp-v113x"],
        "Service": ["istiod-cp-v113x"],
        "ServiceAccount": ["istiod-cp-v113x"],
        "ValidatingWebhookConfiguration": ["istio-validator-cp-v113x-istio-system"],
    }

    available = await until(cluster, resource, "Available")
    assert available.status is not None
    assert available.status["errorMessage"] == "" and available.status["observedGeneration"] == 1
    stored = (await read(cluster))["status"]
    assert {k: stored.get(k) for k in available.status} == dict(available.status)
    assert await events(cluster, "cp-v113x") == [("Normal", "Reconciling"), ("Normal", "Available")]


async def test_a_second_pass_changes_nothing(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    before = await versions(cluster, "cp-v113x.istio-system")
    posted = await events(cluster, "cp-v113x")
    status_version = (await read(cluster))["metadata"]["resourceVersion"]

    again = await reconcile.reconcile(cluster, resource, now=NOW)

    assert not again.written and again.transitions == () and again.pruned == ()
    assert await versions(cluster, "cp-v113x.istio-system") == before
    assert await events(cluster, "cp-v113x") == posted
    assert (await read(cluster))["metadata"]["resourceVersion"] == status_version


async def test_live_proxies_and_selecting_namespaces_are_counted(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    shop = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio.io/rev": "cp-v113x.istio-system"}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    await apply.apply_manifests(cluster, [shop, pod])
    outcome = await reconcile.reconcile(cluster, resource, now=NOW)
    assert outcome.status is not None
    assert outcome.status["proxies"] == 1 and outcome.status["namespaces"] == ["shop"]
    assert outcome.written and outcome.transitions == (), "a count is not a transition"


async def test_drift_is_corrected(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    webhook = "istio-sidecar-injector-cp-v113x-istio-system"
    await apply.delete(cluster, resources.MutatingWebhookConfiguration, webhook)
    await apply.merge_patch(
        cluster, resources.Deployment, "istiod-cp-v113x", {"spec": {"replicas": 3}}, namespace=NS
    )
    await reconcile.reconcile(cluster, resource, now=NOW)
    assert await listing.get(cluster, resources.MutatingWebhookConfiguration, webhook)
    istiod = await listing.get(cluster, resources.Deployment, "istiod-cp-v113x", namespace=NS)
    assert istiod is not None and istiod["spec"]["replicas"] == 1


async def test_objects_no_longer_rendered_are_pruned(cluster: Client) -> None:
    resource = await create(cluster, control_plane(meshExpansion={"enabled": True}))
    await reconcile.reconcile(cluster, resource, now=NOW)
    gateway = "istio-meshexpansion-cp-v113x"
    assert await listing.get(cluster, resources.Service, gateway, namespace=NS)

    await create(cluster, control_plane(mode="PASSIVE", meshExpansion={"enabled": False}))
    outcome = await reconcile.reconcile(cluster, resource, now=NOW)

    assert sorted(str(ref) for ref in outcome.pruned) == [
        "Deployment istio-system/istio-meshexpansion-cp-v113x",
        "Service istio-system/istio-meshexpansion-cp-v113x",
        "ServiceAccount istio-system/istio-meshexpansion-cp-v113x",
        "ValidatingWebhookConfiguration istio-validator-cp-v113x-istio-system",
    ]
    assert await listing.get(cluster, resources.Service, gateway, namespace=NS) is None


async def test_a_spec_change_rolls_istiod(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    await create(cluster, control_plane(version="1.13.10"))
    rolled = await reconcile.reconcile(cluster, resource, now=NOW)
    assert rolled.status is not None and rolled.status["status"] == "Reconciling"
    assert rolled.status["observedGeneration"] == 2 and rolled.status["version"] == "1.13.10"
    await until(cluster, resource, "Available")
    istiod = await listing.get(cluster, resources.Deployment, "istiod-cp-v113x", namespace=NS)
    assert istiod is not None
    assert istiod["spec"]["template"]["spec"]["containers"][0]["image"].endswith("pilot:1.13.10")


# -- failures ---------------------------------------------------------------------------------


async def test_an_unsupported_version_fails_without_applying(cluster: Client) -> None:
    resource = await create(cluster, control_plane(version="1.99.0"))
    outcome = await reconcile.reconcile(cluster, resource, now=NOW)
    assert outcome.status is not None and outcome.status["status"] == "ReconcileFailed"
    assert outcome.status["errorMessage"] == (
        "spec.version: Istio 1.99.0 is not supported (supported: 1.13-1.30)"
    )
    assert outcome.applied == ()
    assert await labelled(cluster, "cp-v113x.istio-system") == {}
    assert await events(cluster, "cp-v113x") == [("Warning", "ReconcileFailed")]


async def test_a_bad_spec_leaves_a_running_istiod_alone(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    await create(cluster, control_plane(version="1.99.0"))
    outcome = await reconcile.reconcile(cluster, resource, now=NOW)
    assert outcome.status is not None and outcome.status["status"] == "ReconcileFailed"
    assert await listing.get(cluster, resources.Deployment, "istiod-cp-v113x", namespace=NS)


async def test_an_overlapping_webhook_is_refused_before_applying(cluster: Client) -> None:
    foreign = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "old-injector"},
        "webhooks": [
            {
                "name": "rev.namespace.sidecar-injector.istio.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "clientConfig": {"url": "https://injector.example/inject"},
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "istio.io/rev",
                            "operator": "In",
                            "values": ["cp-v113x.istio-system"],
                        }
                    ]
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
            }
        ],
    }
    await apply.apply_manifests(cluster, [foreign])
    resource = await create(cluster, control_plane())
    outcome = await reconcile.reconcile(cluster, resource, now=NOW)
    assert outcome.status is not None and outcome.status["status"] == "ReconcileFailed"
    assert "MutatingWebhookConfiguration old-injector" in outcome.status["errorMessage"]
    assert "IST0139" in outcome.status["errorMessage"]
    assert outcome.applied == ()
    assert await labelled(cluster, "cp-v113x.istio-system") == {}


async def test_a_deleted_resource_is_left_alone(cluster: Client) -> None:
    outcome = await reconcile.reconcile(cluster, control_plane("gone"), now=NOW)
    assert outcome == reconcile.ReconcileOutcome(status=None)


async def test_an_unreachable_cluster_is_a_transient_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply.retry.Backoff, "delay", lambda *_: 0.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "down", port)
    async with client.session(str(kubeconfig), check=False, timeout=1.0) as down:
        with pytest.raises(reconcile.TransientError, match="reading the cluster: cannot connect"):
            await reconcile.reconcile(down, control_plane(), now=NOW)


# -- the CRD ----------------------------------------------------------------------------------


async def test_the_crd_is_installed_only_when_missing(cluster: Client) -> None:
    assert not await reconcile.ensure_crd(cluster), "the fixture installed it already"
    stored = await listing.get(cluster, resources.CustomResourceDefinition, crd.NAME)
    assert stored is not None


def test_status_changes_are_detected_key_by_key() -> None:
    status: Any = {"status": "Available", "gatewayAddress": None, "proxies": 2}
    assert not reconcile.status_changed({"status": "Available", "proxies": 2, "kopf": {}}, status)
    assert reconcile.status_changed({"status": "Available", "proxies": 3}, status)
    assert reconcile.status_changed(None, status)
