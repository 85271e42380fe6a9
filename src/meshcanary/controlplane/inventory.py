"""Reading the mesh for the inventory views: one cluster-wide LIST per kind, concurrently.

A mesh has thousands of namespaces and tens of thousands of pods; a request per namespace (the
kubectl loop users write) costs minutes. `snapshot` lists each kind once, across the cluster,
paginated (`kube.listing.DEFAULT_LIMIT` per page), all kinds at the same time, and returns a
`mesh.inventory.MeshSnapshot` of plain API JSON for the pure views (`meshcanary.mesh.inventory`),
which drop finished pods.

Decision: pods are listed without a `status.phase!=Succeeded,...` field selector. The views
filter finished pods anyway, and in the sandbox the selector made the 20,000-pod LIST 25%
slower (every page re-filters the whole snapshot); on a cluster with many Completed Job pods
it would save bytes, so revisit with a real-cluster measurement.

A cluster without the IstioControlPlane CRD (plain upstream Istio) is fine: that listing is
empty. Transient failures (a dropped connection, 429, 5xx) retry the whole listing of that kind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final

from meshcanary.controlplane import render
from meshcanary.kube import apply, errors, listing, resources, retry
from meshcanary.kube.client import Client
from meshcanary.mesh import inventory, revisions

ISTIOD_LABELS: Final = {"app": "istiod"}
Object = dict[str, Any]


async def snapshot(
    client: Client, *, replicasets: bool = False, limit: int = listing.DEFAULT_LIMIT
) -> inventory.MeshSnapshot:
    """The mesh as it is now; with `replicasets`, also every ReplicaSet (for pod owners)."""
    reads: list[Awaitable[list[Object]]] = [
        _optional(_all(client, resources.IstioControlPlane, limit)),
        _all(client, resources.Deployment, limit, labels=ISTIOD_LABELS),
        _all(client, resources.MutatingWebhookConfiguration, limit),
        _all(client, resources.Namespace, limit),
        _all(client, resources.Pod, limit),
    ]
    if replicasets:
        reads.append(_all(client, resources.ReplicaSet, limit))
    found = await asyncio.gather(*reads)
    return inventory.MeshSnapshot(
        control_planes=found[0],
        istiods=found[1],
        webhook_configurations=found[2],
        namespaces=found[3],
        pods=found[4],
        replicasets=found[5] if replicasets else (),
    )


async def _all(client: Client, resource: Any, limit: int, **options: Any) -> list[Object]:
    """Every object of a kind as API JSON, the whole listing retried on transient errors."""
    raw = resources.raw(resource)

    async def read() -> list[Object]:
        found: list[Object] = []
        async for page in listing.pages(client, raw, limit=limit, **options):
            found.extend(dict(item) for item in page)
        return found

    result: list[Object] = await retry.call(read)
    return result


async def _optional(work: Awaitable[list[Object]]) -> list[Object]:
    """An empty list when the kind is not served (its CRD is not installed)."""
    try:
        return await work
    except errors.NotFound:
        return []


async def namespace_exists(client: Client, name: str) -> bool:
    """Whether a namespace exists (to tell a typo from an empty namespace)."""
    return await listing.get(client, resources.Namespace, name) is not None


async def revision_objects(client: Client, revision: str, namespace: str) -> list[Found]:
    """The objects still labelled `istio.io/rev=<revision>`, across the kinds `render` emits.

    Namespaced kinds are looked up in the control plane's `namespace`, cluster-scoped ones
    cluster-wide: one LIST per kind, concurrently.
    """
    labels = {revisions.REV_LABEL: revision}
    lookups = []
    for api_version, kind, namespaced in render.KINDS:
        resource = resources.for_manifest({"apiVersion": api_version, "kind": kind})
        where = namespace if namespaced else None
        lookups.append(_labelled(client, resource, labels, where))
    return [found for group in await asyncio.gather(*lookups) for found in group]


async def _labelled(
    client: Client, resource: Any, labels: dict[str, str], namespace: str | None
) -> list[Found]:
    found = await retry.call(
        lambda: listing.collect(client, resource, labels=labels, namespace=namespace)
    )
    return [Found(resource, apply.ref_of(dict(obj), resource)) for obj in found]


@dataclass(frozen=True)
class Found:
    """An object found in the cluster: the resource to address it with, and its reference."""

    resource: Any
    ref: apply.ObjectRef
