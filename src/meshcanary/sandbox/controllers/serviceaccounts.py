"""Every namespace gets a `default` ServiceAccount, as the serviceaccounts controller ensures.

Pods name `default` implicitly, and a real cluster refuses pods whose service account is missing,
so the sandbox keeps one in every active namespace.
"""

from __future__ import annotations

from typing import Any

from meshcanary.sandbox.apiserver.cluster import NAMESPACES, WriteOptions
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Controller

SERVICE_ACCOUNTS = "/serviceaccounts"
OPTIONS = WriteOptions(field_manager="kube-controller-manager")


class ServiceAccountController(Controller):
    async def resync(self) -> None:
        for entry in self.cluster.store.list(NAMESPACES):
            await self._ensure(entry.obj)

    async def handle(self, event: Event) -> None:
        if event.type == "DELETED":
            if event.skey == SERVICE_ACCOUNTS and event.entry.obj["metadata"]["name"] == "default":
                namespace = self.cluster.store.get(NAMESPACES, "", event.namespace)
                if namespace is not None:
                    await self._ensure(namespace.obj)
            return
        if event.skey == NAMESPACES:
            await self._ensure(event.entry.obj)

    async def _ensure(self, namespace: dict[str, Any]) -> None:
        meta = namespace["metadata"]
        if meta.get("deletionTimestamp"):
            return
        if self.cluster.store.get(SERVICE_ACCOUNTS, meta["name"], "default") is not None:
            return
        rt = self.cluster.types_for(SERVICE_ACCOUNTS)
        assert rt is not None
        await self.cluster.create(rt, meta["name"], {"metadata": {"name": "default"}}, OPTIONS)
