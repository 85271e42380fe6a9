"""Namespace deletion: Terminating -> every object inside deleted -> the namespace is gone.

What the namespace controller does in a real cluster: once a namespace has a deletionTimestamp,
delete its contents (their own finalizers still hold them), and only when nothing is left clear
`spec.finalizers` so the namespace itself disappears (and `kubectl delete ns` returns).
"""

from __future__ import annotations

from typing import Any

from meshcanary.sandbox.apiserver.cluster import NAMESPACES
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Controller


class NamespaceController(Controller):
    async def resync(self) -> None:
        for entry in self.cluster.store.list(NAMESPACES):
            await self._reconcile(entry.obj)

    async def handle(self, event: Event) -> None:
        if event.skey == NAMESPACES:
            if event.type != "DELETED":
                await self._reconcile(event.entry.obj)
            return
        namespace = event.namespace
        if event.type == "DELETED" and namespace:
            entry = self.cluster.store.get(NAMESPACES, "", namespace)
            if entry is not None:
                await self._reconcile(entry.obj)

    async def _reconcile(self, ns: dict[str, Any]) -> None:
        meta = ns["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        name = meta["name"]
        remaining = 0
        for rt in self.cluster.namespaced_types():
            for entry in self.cluster.store.list(rt.storage_key, name):
                remaining += 1
                if not entry.obj["metadata"].get("deletionTimestamp"):
                    await self.cluster.delete(
                        rt, name, entry.obj["metadata"]["name"], {"propagationPolicy": "Background"}
                    )
        if remaining == 0 or not self._has_content(name):
            await self.cluster.finalize_namespace(name)

    def _has_content(self, name: str) -> bool:
        return any(
            self.cluster.store.count(rt.storage_key, name) for rt in self.cluster.namespaced_types()
        )
