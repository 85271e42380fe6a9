"""The scheduler: spreading by pod count, placement rules, Unschedulable, retries and resync."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Store
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.nodes import node_body
from meshcanary.sandbox.controllers.scheduler import (
    NodeInfo,
    Scheduler,
    misfit,
    tolerates,
    unschedulable_message,
)
from meshcanary.sandbox.settings import Settings

OPTS = WriteOptions(field_manager="test")
Obj = dict[str, Any]


class Harness:
    """A cluster with nodes and a running scheduler (no kubelet: pods stay Pending)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.cluster = Cluster(Store(None))
        self.clock = FakeClock()
        self.scheduler = Scheduler(self.cluster, Context(settings or Settings(), self.clock))
        self.task: asyncio.Task[None] | None = None

    def rt(self, plural: str) -> ResourceType:
        rt = self.cluster.registry.get("", "v1", plural)
        assert rt is not None
        return rt

    async def settle(self) -> None:
        """Loop turns (no clock time) until the scheduler has drained its queue."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def nodes(self, count: int) -> None:
        for index in range(1, count + 1):
            await self.cluster.create(
                self.rt("nodes"), "", node_body(index, self.clock.now()), OPTS
            )

    async def patch_node(self, name: str, patch: Obj, subresource: str = "") -> None:
        await self.cluster.patch(
            self.rt("nodes"), "", name, PATCH_MERGE, orjson.dumps(patch), OPTS, subresource
        )

    async def pod(self, name: str, **spec: Any) -> None:
        body = {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec},
        }
        await self.cluster.create(self.rt("pods"), "default", body, OPTS)

    def get(self, name: str) -> Obj:
        entry = self.cluster.store.get("/pods", "default", name)
        assert entry is not None
        return entry.obj

    def node_of(self, name: str) -> str | None:
        return self.get(name)["spec"].get("nodeName")

    def scheduled(self, name: str) -> Obj:
        conditions = self.get(name)["status"].get("conditions") or []
        return next(c for c in conditions if c["type"] == "PodScheduled")

    async def start(self) -> None:
        self.task = asyncio.create_task(self.scheduler.run())
        await self.settle()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.cluster.create(h.rt("namespaces"), "", {"metadata": {"name": "default"}}, OPTS)
    await h.nodes(3)
    await h.start()
    yield h
    await h.stop()


async def test_pods_spread_over_the_nodes_with_fewest_pods(harness: Harness) -> None:
    for i in range(9):
        await harness.pod(f"p{i}")
    await harness.settle()
    placed = Counter(harness.node_of(f"p{i}") for i in range(9))
    assert placed == {"node-1": 3, "node-2": 3, "node-3": 3}
    assert harness.scheduled("p0")["status"] == "True"
    assert harness.scheduler.counts == placed


async def test_pods_already_bound_count_and_finished_ones_do_not(harness: Harness) -> None:
    await harness.pod("pinned-1", nodeName="node-1")
    await harness.pod("pinned-2", nodeName="node-1")
    await harness.pod("next")
    await harness.settle()
    assert harness.node_of("next") == "node-2"
    status = {"status": {"phase": "Succeeded"}}
    for name in ("pinned-1", "pinned-2"):
        await harness.cluster.patch(
            harness.rt("pods"), "default", name, PATCH_MERGE, orjson.dumps(status), OPTS, "status"
        )
    await harness.pod("after")
    await harness.settle()
    assert harness.node_of("after") == "node-1"


async def test_node_selector_is_honoured(harness: Harness) -> None:
    await harness.patch_node("node-3", {"metadata": {"labels": {"disk": "ssd"}}})
    await harness.settle()
    for i in range(3):
        await harness.pod(f"p{i}", nodeSelector={"disk": "ssd"})
    await harness.settle()
    assert {harness.node_of(f"p{i}") for i in range(3)} == {"node-3"}


async def test_unschedulable_then_scheduled_once_a_node_fits(harness: Harness) -> None:
    await harness.pod("gpu", nodeSelector={"gpu": "yes"})
    await harness.settle()
    assert harness.node_of("gpu") is None
    condition = harness.scheduled("gpu")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        " preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    events = [e.obj for e in harness.cluster.store.list("/events", "default")]
    assert [(e["reason"], e["type"]) for e in events] == [("FailedScheduling", "Warning")]

    await harness.patch_node("node-2", {"metadata": {"labels": {"gpu": "yes"}}})
    await harness.settle()
    assert harness.node_of("gpu") == "node-2"
    assert harness.scheduled("gpu")["status"] == "True"


async def test_cordoned_and_not_ready_nodes_are_skipped(harness: Harness) -> None:
    await harness.patch_node("node-1", {"spec": {"unschedulable": True}})
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    await harness.patch_node("node-2", not_ready, "status")
    await harness.settle()
    for i in range(3):
        await harness.pod(f"p{i}")
    await harness.settle()
    assert {harness.node_of(f"p{i}") for i in range(3)} == {"node-3"}


async def test_taints_need_tolerations(harness: Harness) -> None:
    taint = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
    for name in ("node-1", "node-2"):
        await harness.patch_node(name, {"spec": {"taints": [taint]}})
    await harness.settle()
    await harness.pod("plain")
    await harness.pod("tolerant", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    await harness.pod("tolerant-2", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    await harness.settle()
    assert harness.node_of("plain") == "node-3"
    assert harness.node_of("tolerant") in ("node-1", "node-2")


async def test_required_node_affinity_by_name(harness: Harness) -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    await harness.pod("ds-pod", affinity=affinity)
    await harness.settle()
    assert harness.node_of("ds-pod") == "node-2"


async def test_pods_of_another_scheduler_are_left_alone(harness: Harness) -> None:
    await harness.pod("custom", schedulerName="my-scheduler")
    await harness.settle()
    assert harness.node_of("custom") is None
    assert not harness.get("custom")["status"].get("conditions")


async def test_resync_rebuilds_counts_and_schedules_what_is_pending() -> None:
    h = Harness()
    await h.cluster.create(h.rt("namespaces"), "", {"metadata": {"name": "default"}}, OPTS)
    await h.nodes(2)
    await h.pod("a", nodeName="node-1")
    await h.pod("b")
    await h.start()
    assert h.node_of("b") == "node-2"
    assert h.scheduler.counts == {"node-1": 1, "node-2": 1}
    await h.stop()


async def test_schedule_delay_is_waited_on_the_clock() -> None:
    h = Harness(Settings(pod_schedule_delay=2))
    await h.cluster.create(h.rt("namespaces"), "", {"metadata": {"name": "default"}}, OPTS)
    await h.nodes(1)
    await h.start()
    await h.pod("p")
    await h.settle()
    await h.clock.advance(1.9)
    assert h.node_of("p") is None
    await h.clock.advance(0.1)
    await h.settle()
    assert h.node_of("p") == "node-1"
    assert h.scheduled("p")["lastTransitionTime"] == "2026-01-01T00:00:02Z"
    await h.stop()


# -- the pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "hit"),
    [
        ({"operator": "Exists"}, True),
        ({"key": "k", "operator": "Exists"}, True),
        ({"key": "k", "value": "v"}, True),
        ({"key": "k", "value": "other"}, False),
        ({"key": "k", "value": "v", "effect": "NoExecute"}, False),
        ({"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerations(toleration: Obj, hit: bool) -> None:
    assert tolerates([toleration], {"key": "k", "value": "v", "effect": "NoSchedule"}) == hit


def test_misfit_reasons() -> None:
    pod: Obj = {"spec": {}}
    node = node_body(1, FakeClock().now())
    assert misfit(pod, NodeInfo.of(node)) is None
    node["spec"]["taints"] = [{"key": "a", "value": "b", "effect": "NoExecute"}]
    assert misfit(pod, NodeInfo.of(node)) == "node(s) had untolerated taint {a: b}"
    node["spec"]["taints"] = [{"key": "a", "effect": "PreferNoSchedule"}]
    assert misfit(pod, NodeInfo.of(node)) is None
    expression = {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["linux"]}
    term = {"matchExpressions": [expression]}
    pod["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    assert misfit(pod, NodeInfo.of(node)) == "node(s) didn't match Pod's node affinity/selector"


def test_unschedulable_message_lists_reasons_in_order() -> None:
    reasons = Counter({"node(s) were unschedulable": 1, "node(s) had untolerated taint {a: }": 2})
    assert unschedulable_message(3, reasons).startswith(
        "0/3 nodes are available: 2 node(s) had untolerated taint {a: }, 1 node(s) were"
        " unschedulable. preemption:"
    )
    assert unschedulable_message(0, Counter()) == "no nodes available to schedule pods"
