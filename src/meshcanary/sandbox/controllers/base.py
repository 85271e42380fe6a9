"""The controller loop: a full resync on start, then one store event at a time.

Every controller sees every store event (filtering by storage key is its first step) and acts
through the `Cluster` verbs, so its writes reach watches exactly as a real controller's do.
Delayed work (a pod becoming Ready after a while, a CronJob's next run) goes through `later()`,
which waits on the injected clock; pending work is cancelled when the controller stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.apiserver.store import ALL_KEYS, Event
from meshcanary.sandbox.clock import Clock, RealClock
from meshcanary.sandbox.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What every controller shares: the cluster's knobs and the clock."""

    settings: Settings = field(default_factory=Settings)
    clock: Clock = field(default_factory=RealClock)


class Controller:
    """Subclasses implement `resync` (reconcile everything) and `handle` (one event)."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        self.cluster = cluster
        self.context = context or Context()
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def settings(self) -> Settings:
        return self.context.settings

    async def resync(self) -> None:
        """Reconcile whatever a crash or restart may have left half done."""

    async def handle(self, event: Event) -> None:
        """React to one change."""

    def later(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` after `seconds` of clock time (errors are logged, never raised)."""

        async def wait_then_run() -> None:
            await self.clock.sleep(seconds)
            await self._guarded(step())

        task = asyncio.create_task(wait_then_run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def run(self) -> None:
        subscription = self.cluster.store.subscribe(ALL_KEYS)
        try:
            await self._guarded(self.resync())
            while True:
                event = await subscription.queue.get()
                await self._guarded(self.handle(event))
        finally:
            self.cluster.store.unsubscribe(subscription)
            for task in list(self._pending):
                task.cancel()

    async def _guarded(self, step: Awaitable[None]) -> None:
        try:
            await step
        except errors.ApiError as exc:
            # Conflicts and not-founds are races with clients; the next event retries.
            log.debug("%s: %s", type(self).__name__, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", type(self).__name__)
