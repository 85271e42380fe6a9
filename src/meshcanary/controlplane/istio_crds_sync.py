"""Keeping Istio's shared CRDs right for the control planes that run: read, plan, apply.

The operator calls `ensure(client, [versions of its IstioControlPlanes])`; the newest version
decides. `istio_crds.decide` installs what is missing, upgrades
what the newest control plane serves more of, and never downgrades or deletes. The function is
safe to call with a partial list (say, only the version of the control plane being reconciled):
a CRD already installed for a newer Istio is left alone. A stale caller can therefore never
undo a newer one.

Concurrency. Within one process, calls are serialised: two reconciles of different control
planes cannot interleave a read with the other's write. Across processes (two operator
replicas are kept apart by kopf peering; the CLI may run at the same time), an upgrade is
applied with the resourceVersion it was planned from as a precondition. If another writer got
there first, the API server answers 409 and the whole read-plan-apply round starts again from
a fresh read (`kube.retry`). A missing CRD cannot be preconditioned; two writers installing it
at once apply the same or a newer definition, and the next round settles it.

I/O goes through `meshcanary.kube` only: server-side apply, forced, under the caller's field
manager (`meshcanary` by default; the operator passes its own). A CRD installed by Helm or
istioctl is taken over field by field when, and only when, it must be upgraded.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

from meshcanary.controlplane import istio_crds
from meshcanary.kube import apply, listing, resources, retry
from meshcanary.kube import client as kube_client
from meshcanary.kube.client import Client
from meshcanary.mesh.versions import Version

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def installed(
    client: Client, *, backoff: retry.Backoff = retry.DEFAULT
) -> list[dict[str, Any]]:
    """Istio's CRDs as the cluster has them (API JSON); other CRDs are left out."""
    names = set(istio_crds.names())
    crds = resources.raw(resources.CustomResourceDefinition)

    async def read() -> list[dict[str, Any]]:
        found = await listing.collect(client, crds)
        return [dict(crd) for crd in found if crd.get("metadata", {}).get("name") in names]

    return await retry.call(read, backoff=backoff)


async def ensure(
    client: Client,
    control_plane_versions: Sequence[Version],
    *,
    field_manager: str = kube_client.FIELD_MANAGER,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> list[str]:
    """Bring Istio's CRDs up to the newest of `control_plane_versions`; what changed.

    One line per CRD installed or upgraded (`installed virtualservices.networking.istio.io:
    Istio 1.15.3: serves v1beta1, v1alpha3; stores v1alpha3`); empty when nothing changed, and
    when there is no control plane (CRDs are never deleted). With `dry_run` the server checks
    every apply without persisting, and the lines say what would change. Raises ValueError for a
    version meshcanary has no CRD data for, and KubeError when the cluster refuses.
    """
    if not control_plane_versions:
        return []
    newest = max(control_plane_versions)
    istio_crds.definitions(newest)  # fail on an unsupported version before any request
    changed: list[str] = []

    async def round_trip() -> None:
        current = await installed(client, backoff=retry.NEVER)  # this round is retried
        decisions = istio_crds.decide(current, newest)
        for decision in decisions:
            if decision.manifest is None:
                continue
            await apply.apply_manifest(
                client,
                _preconditioned(decision),
                field_manager=field_manager,
                dry_run=dry_run,
                backoff=retry.NEVER,
            )
            changed.append(str(decision))

    async with _lock():
        await retry.call(round_trip, backoff=backoff)
    return changed


def _preconditioned(decision: istio_crds.Decision) -> dict[str, Any]:
    """An upgrade carries the resourceVersion it was planned from (409 if it moved on)."""
    assert decision.manifest is not None
    manifest = dict(decision.manifest)
    if decision.action is istio_crds.Action.UPGRADE and decision.resource_version:
        manifest["metadata"] = {
            **manifest["metadata"],
            "resourceVersion": decision.resource_version,
        }
    return manifest


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock
