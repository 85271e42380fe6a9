"""Garbage collection by ownerReferences: background, foreground and orphan deletion.

Mirrors kube-controller-manager's garbage collector: dependents whose owners are all gone are
deleted; an owner deleted with `propagationPolicy: Orphan` carries the `orphan` finalizer until its
dependents no longer reference it; one deleted with `Foreground` carries `foregroundDeletion` until
its dependents are gone. An index from owner uid to dependents keeps each step proportional to the
number of dependents, not to the size of the cluster.
"""

from __future__ import annotations

from typing import Any

import orjson

from meshcanary.sandbox.apiserver import cluster as verbs
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller

Ref = tuple[str, str, str]
GC_OPTIONS = WriteOptions(field_manager="generic-garbage-collector")


class GarbageCollector(Controller):
    """Deletes or orphans dependents as their owners go away."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._dependents: dict[str, set[Ref]] = {}
        self._uids: dict[str, Ref] = {}

    async def resync(self) -> None:
        for skey in self.cluster.store.skeys():
            for entry in self.cluster.store.list(skey):
                self._index(skey, entry.obj)
        for skey in self.cluster.store.skeys():
            for entry in list(self.cluster.store.list(skey)):
                await self._reconcile(skey, entry.obj)
        for owner_uid in list(self._dependents):
            if owner_uid not in self._uids:
                await self._owner_gone(owner_uid)

    async def handle(self, event: Event) -> None:
        obj = event.entry.obj
        old = event.old
        if old is not None:
            self._unindex(event.skey, old)
        if event.type == "DELETED":
            await self._owner_gone(obj["metadata"].get("uid", ""))
            await self._recheck_owners(obj)
            return
        self._index(event.skey, obj)
        await self._reconcile(event.skey, obj)

    # -- index -------------------------------------------------------------------------------

    def _index(self, skey: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ref = (skey, meta.get("namespace", ""), meta["name"])
        self._uids[meta.get("uid", "")] = ref
        for owner in meta.get("ownerReferences") or []:
            self._dependents.setdefault(owner.get("uid", ""), set()).add(ref)

    def _unindex(self, skey: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ref = (skey, meta.get("namespace", ""), meta["name"])
        self._uids.pop(meta.get("uid", ""), None)
        for owner in meta.get("ownerReferences") or []:
            dependents = self._dependents.get(owner.get("uid", ""))
            if dependents is not None:
                dependents.discard(ref)
                if not dependents:
                    del self._dependents[owner.get("uid", "")]

    def _live_dependents(self, uid: str) -> list[dict[str, Any]]:
        out = []
        for skey, ns, name in sorted(self._dependents.get(uid, ())):
            entry = self.cluster.store.get(skey, ns, name)
            if entry is not None:
                out.append(entry.obj)
        return out

    # -- reactions ---------------------------------------------------------------------------

    async def _reconcile(self, skey: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp"):
            return
        if verbs.ORPHAN_FINALIZER in finalizers:
            await self._orphan(skey, obj)
        elif verbs.FOREGROUND_FINALIZER in finalizers:
            await self._delete_in_foreground(skey, obj)

    async def _orphan(self, skey: str, owner: dict[str, Any]) -> None:
        uid = owner["metadata"]["uid"]
        for dependent in self._live_dependents(uid):
            refs = [
                r for r in dependent["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            await self._patch(dependent, {"metadata": {"ownerReferences": refs or None}})
        await self._drop_finalizer(skey, owner, verbs.ORPHAN_FINALIZER)

    async def _delete_in_foreground(self, skey: str, owner: dict[str, Any]) -> None:
        dependents = self._live_dependents(owner["metadata"]["uid"])
        for dependent in dependents:
            if not dependent["metadata"].get("deletionTimestamp"):
                await self._delete(dependent, "Foreground")
        if not self._live_dependents(owner["metadata"]["uid"]):
            await self._drop_finalizer(skey, owner, verbs.FOREGROUND_FINALIZER)

    async def _owner_gone(self, uid: str) -> None:
        """Dependents none of whose owners still exist are deleted in the background."""
        for dependent in self._live_dependents(uid):
            owners = dependent["metadata"].get("ownerReferences") or []
            if all(ref.get("uid") not in self._uids for ref in owners):
                if not dependent["metadata"].get("deletionTimestamp"):
                    await self._delete(dependent, "Background")
            else:
                refs = [r for r in owners if r.get("uid") in self._uids]
                await self._patch(dependent, {"metadata": {"ownerReferences": refs}})

    async def _recheck_owners(self, dependent: dict[str, Any]) -> None:
        """A dependent went away: an owner waiting in foreground deletion may now finish."""
        for ref in dependent["metadata"].get("ownerReferences") or []:
            owner_ref = self._uids.get(ref.get("uid", ""))
            if owner_ref is None:
                continue
            entry = self.cluster.store.get(*owner_ref)
            if entry is not None:
                await self._reconcile(owner_ref[0], entry.obj)

    # -- writes ------------------------------------------------------------------------------

    def _type(self, obj: dict[str, Any]) -> ResourceType | None:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        return self.cluster.registry.by_kind(api_version, kind)

    async def _patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> None:
        rt = self._type(obj)
        if rt is None:
            return
        meta = obj["metadata"]
        await self.cluster.patch(
            rt,
            meta.get("namespace", ""),
            meta["name"],
            verbs.PATCH_MERGE,
            orjson.dumps(patch),
            GC_OPTIONS,
        )

    async def _delete(self, obj: dict[str, Any], policy: str) -> None:
        rt = self._type(obj)
        if rt is None:
            return
        meta = obj["metadata"]
        await self.cluster.delete(
            rt, meta.get("namespace", ""), meta["name"], {"propagationPolicy": policy}
        )

    async def _drop_finalizer(self, skey: str, obj: dict[str, Any], finalizer: str) -> None:
        remaining = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        await self._patch(obj, {"metadata": {"finalizers": remaining or None}})
