"""CRD deletion: every custom resource of the CRD is deleted before the CRD itself goes.

A real apiextensions-apiserver holds a deleted CRD with the `customresourcecleanup` finalizer
until its instances are gone (instances with finalizers wait for their controllers), then stops
serving the resource.
"""

from __future__ import annotations

from typing import Any

import orjson

from meshcanary.sandbox.apiserver import cluster as verbs
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Controller

OPTIONS = verbs.WriteOptions(field_manager="apiextensions-apiserver")


class CrdCleanup(Controller):
    async def resync(self) -> None:
        for entry in self.cluster.store.list(verbs.CRDS):
            await self._reconcile(entry.obj)

    async def handle(self, event: Event) -> None:
        if event.skey == verbs.CRDS and event.type != "DELETED":
            await self._reconcile(event.entry.obj)
        elif event.type == "DELETED":
            group, _, plural = event.skey.partition("/")
            entry = self.cluster.store.get(verbs.CRDS, "", f"{plural}.{group}")
            if entry is not None:
                await self._reconcile(entry.obj)

    async def _reconcile(self, crd: dict[str, Any]) -> None:
        meta = crd["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        if verbs.CRD_CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            return
        spec = crd.get("spec") or {}
        rts = self.cluster.registry.versions_of(
            spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        )
        remaining = 0
        if rts:
            rt = rts[0]
            for entry in self.cluster.store.list(rt.storage_key):
                remaining += 1
                obj_meta = entry.obj["metadata"]
                if not obj_meta.get("deletionTimestamp"):
                    await self.cluster.delete(rt, obj_meta.get("namespace", ""), obj_meta["name"])
            remaining = self.cluster.store.count(rt.storage_key)
        if remaining:
            return
        crd_type = self.cluster.types_for(verbs.CRDS)
        assert crd_type is not None
        finalizers = [f for f in meta.get("finalizers") or [] if f != verbs.CRD_CLEANUP_FINALIZER]
        await self.cluster.patch(
            crd_type,
            "",
            meta["name"],
            verbs.PATCH_MERGE,
            orjson.dumps({"metadata": {"finalizers": finalizers or None}}),
            OPTIONS,
        )
