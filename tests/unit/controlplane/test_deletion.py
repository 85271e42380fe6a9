"""Guarded deletion: who still depends on a control plane, the refusal, and the cleanup."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshcanary.controlplane import deletion, reconcile, spec
from meshcanary.kube import apply
from meshcanary.kube.client import Client

from .test_reconcile import NOW, cluster, control_plane, create, labelled, until

__all__ = ["cluster"]  # the in-process sandbox fixture

REV = "cp-v113x.istio-system"
CP = spec.parse(control_plane())


def pod(namespace: str, name: str, revision: str | None, phase: str = "Running") -> dict[str, Any]:
    containers = [{"name": "app", "image": "nginx"}]
    annotations = {}
    if revision is not None:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.13.9"})
        annotations = {
            "istio.io/rev": revision,
            "sidecar.istio.io/status": json.dumps({"revision": revision}),
        }
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"containers": containers},
        "status": {"phase": phase},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


# -- blockers (pure) --------------------------------------------------------------------------


def test_live_proxies_are_counted_per_namespace_busiest_first() -> None:
    pods = [
        *(pod("shop", f"s{i}", REV) for i in range(8)),
        *(pod("cart", f"c{i}", REV) for i in range(4)),
        pod("cart", "done", REV, phase="Succeeded"),
        pod("cart", "crashed", REV, phase="Failed"),
        pod("cart", "pending", REV, phase="Pending"),
        pod("other", "newer", "cp-v115x.istio-system"),
        pod("plain", "no-sidecar", None),
    ]
    blockers = deletion.deletion_blockers(CP, pods, [])
    assert blockers.proxies_by_namespace == {"shop": 8, "cart": 5}
    assert list(blockers.proxies_by_namespace) == ["shop", "cart"]
    assert blockers.proxies == 13 and blockers.control_plane == "cp-v113x"
    assert blockers


def test_selecting_namespaces_follow_istio_precedence() -> None:
    namespaces = [
        namespace("shop", **{"istio.io/rev": REV}),
        namespace("cart", **{"istio.io/rev": REV}),
        namespace("legacy", **{"istio.io/rev": REV, "istio-injection": "enabled"}),
        namespace("moved", **{"istio.io/rev": "cp-v115x.istio-system"}),
        namespace("plain"),
    ]
    blockers = deletion.deletion_blockers(CP, [], namespaces)
    assert blockers.selecting_namespaces == ["cart", "shop"]
    assert blockers.proxies_by_namespace == {}


def test_nothing_depends_on_an_unused_control_plane() -> None:
    blockers = deletion.deletion_blockers(CP, [pod("x", "done", REV, "Succeeded")], [])
    assert not blockers
    assert blockers == deletion.Blockers(control_plane="cp-v113x")


@pytest.mark.parametrize(
    ("blockers", "message"),
    [
        (
            deletion.Blockers({"shop": 8, "cart": 4}, ["cart", "shop"], "cp-v113x"),
            "istiocontrolplane cp-v113x still serves 12 live proxies (shop: 8, cart: 4) and is "
            "selected by namespaces cart, shop; migrate them first, or annotate "
            "meshcanary.io/force-delete=true",
        ),
        (
            deletion.Blockers({"shop": 1}, [], "cp-v113x"),
            "istiocontrolplane cp-v113x still serves 1 live proxy (shop: 1); migrate them first, "
            "or annotate meshcanary.io/force-delete=true",
        ),
        (
            deletion.Blockers({}, ["shop"], "cp-v113x"),
            "istiocontrolplane cp-v113x is still selected by namespace shop; migrate them first, "
            "or annotate meshcanary.io/force-delete=true",
        ),
    ],
)
def test_the_refusal_names_namespaces_and_counts(blockers: deletion.Blockers, message: str) -> None:
    assert deletion.refusal_message(blockers) == message


@pytest.mark.parametrize(
    ("annotations", "forced"),
    [
        ({deletion.FORCE_ANNOTATION: "true"}, True),
        ({deletion.FORCE_ANNOTATION: "True"}, True),
        ({deletion.FORCE_ANNOTATION: "false"}, False),
        ({deletion.FORCE_ANNOTATION: "yes"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_the_force_annotation(annotations: dict[str, str] | None, forced: bool) -> None:
    resource = control_plane()
    resource["metadata"]["annotations"] = annotations
    assert deletion.is_forced(resource) is forced


def test_a_resource_with_a_broken_spec_can_still_be_deleted() -> None:
    broken = control_plane(version="1.99.0")
    cp = deletion.target(broken)
    assert cp is not None and cp.revision == REV and cp.name == "cp-v113x"
    nameless = {"metadata": {"name": "Bad_Name", "namespace": "istio-system"}, "spec": {}}
    assert deletion.target(nameless) is None


# -- against the cluster ----------------------------------------------------------------------


async def workload(kube: Client, name: str = "shop") -> None:
    labelled_namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"istio.io/rev": REV}},
    }
    web = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": name},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    await apply.apply_manifests(kube, [labelled_namespace, web])


async def test_the_refusal_reads_the_cluster(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    assert await deletion.refusal(cluster, resource) is None
    await workload(cluster)
    assert await deletion.refusal(cluster, resource) == (
        "istiocontrolplane cp-v113x still serves 1 live proxy (shop: 1) and is selected by "
        "namespace shop; migrate them first, or annotate meshcanary.io/force-delete=true"
    )
    forced = control_plane()
    forced["metadata"]["annotations"] = {deletion.FORCE_ANNOTATION: "true"}
    assert await deletion.refusal(cluster, forced) is None


async def test_cleanup_removes_every_object_of_the_revision(cluster: Client) -> None:
    resource = await create(cluster, control_plane(meshExpansion={"enabled": True}))
    other = await create(cluster, control_plane("cp-v115x", version="1.15.3"))
    await reconcile.reconcile(cluster, resource, now=NOW)
    await reconcile.reconcile(cluster, other, now=NOW)
    before = await labelled(cluster, REV)

    deleted = await deletion.cleanup(cluster, CP)

    assert sorted(ref.name for ref in deleted) == sorted(n for ns in before.values() for n in ns)
    assert [ref.kind for ref in deleted][:2] == [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ], "webhooks first: never a webhook pointing at a deleted istiod"
    assert await labelled(cluster, REV) == {}
    assert await labelled(cluster, "cp-v115x.istio-system"), "the other revision is untouched"
    assert await deletion.cleanup(cluster, CP) == [], "idempotent"
