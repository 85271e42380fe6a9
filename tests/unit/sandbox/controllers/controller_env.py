"""The in-process harness the single-controller tests share: a fresh cluster with one
namespace, one controller watching every store event, and a fake clock to move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Self, TypeVar

from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.store import ALL_KEYS, Store, Subscription
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import served_type

OPTS = WriteOptions(field_manager="test")

C = TypeVar("C", bound=Controller)


@dataclass
class ControllerEnv(Generic[C]):
    cluster: Cluster
    clock: FakeClock
    controller: C
    events: Subscription

    @classmethod
    async def start(cls, kind: type[C], ns: str, clock: FakeClock | None = None) -> Self:
        """A new cluster holding namespace `ns`, and a resynced `kind` controller on it."""
        cluster = Cluster(Store(None))
        events = cluster.store.subscribe(ALL_KEYS)
        if clock is None:
            clock = FakeClock(datetime.now(UTC))
        controller = kind(cluster, Context(clock=clock))
        await cluster.create(
            served_type(cluster, "/namespaces"), "", {"metadata": {"name": ns}}, OPTS
        )
        await controller.resync()
        return cls(cluster, clock, controller, events)

    async def settle(self, *others: Controller) -> None:
        """Feed every store event to the controllers and drain their queues until quiet."""
        controllers = (self.controller, *others)
        while True:
            while not self.events.queue.empty():
                event = self.events.queue.get_nowait()
                for controller in controllers:
                    await controller._guarded(controller.handle(event))
            await self.controller.queue.drain()
            if self.events.queue.empty():
                return

    async def elapse(self, seconds: float) -> None:
        """Let pending timers arm (their tasks start), move the clock, then settle."""
        await self.clock.advance(0)
        await self.clock.advance(seconds)
        await self.settle()
