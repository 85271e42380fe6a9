"""The controller loop: a full resync on start, then one store event at a time."""

from __future__ import annotations

import asyncio
import logging

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.apiserver.store import ALL_KEYS, Event

log = logging.getLogger(__name__)


class Controller:
    """Subclasses implement `resync` (reconcile everything) and `handle` (one event)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def resync(self) -> None:
        """Reconcile whatever a crash or restart may have left half done."""

    async def handle(self, event: Event) -> None:
        """React to one change."""

    async def run(self) -> None:
        subscription = self.cluster.store.subscribe(ALL_KEYS)
        try:
            await self._guarded(self.resync())
            while True:
                event = await subscription.queue.get()
                await self._guarded(self.handle(event))
        finally:
            self.cluster.store.unsubscribe(subscription)

    async def _guarded(self, step: object) -> None:
        try:
            await step  # type: ignore[misc]
        except errors.ApiError as exc:
            # Conflicts and not-founds are races with clients; the next event retries.
            log.debug("%s: %s", type(self).__name__, exc.message)
        except Exception:
            log.exception("%s failed", type(self).__name__)


async def settle() -> None:
    """Let queued controller work run (tests of in-process behaviour use it)."""
    for _ in range(5):
        await asyncio.sleep(0)
