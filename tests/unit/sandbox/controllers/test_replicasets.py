"""The ReplicaSet controller: pods created and deleted towards spec.replicas, and counted.

`Harness` (also used by the Deployment tests) runs controllers in-process over an in-memory
cluster on a fake clock and stands in for the kubelet: it schedules pods, makes them Ready and
removes terminating ones, one explicit step at a time, so a test can look between steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import ALL_KEYS, Store
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import controller_uid, pod_is_ready
from meshcanary.sandbox.controllers.replicasets import ReplicaSetController, deletion_order

NS = "default"
KUBELET = WriteOptions(field_manager="test-kubelet")


def template(app: str = "web", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {"app": app}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


class Harness:
    """Controllers over one cluster; every store event is fed to each of them in turn."""

    def __init__(self, *kinds: type[Controller], path: Path | None = None) -> None:
        self.clock = FakeClock()
        self.cluster = Cluster(Store(path))
        self.context = Context(clock=self.clock)
        self.kinds = kinds
        self.controllers = [kind(self.cluster, self.context) for kind in kinds]
        self.events = self.cluster.store.subscribe(ALL_KEYS)
        self.checks: list[Callable[[], None]] = []
        """Invariants asserted whenever the controllers have settled."""

    def rt(self, group: str, plural: str) -> ResourceType:
        rt = self.cluster.registry.get(group, "v1", plural)
        assert rt is not None
        return rt

    async def start(self) -> None:
        if self.cluster.store.get("/namespaces", "", NS) is None:
            await self.cluster.create(
                self.rt("", "namespaces"), "", {"metadata": {"name": NS}}, KUBELET
            )
        await self.restart()

    async def restart(self) -> None:
        """Fresh controllers that know only what is stored: what a crash and restart leaves."""
        self.controllers = [kind(self.cluster, self.context) for kind in self.kinds]
        for controller in self.controllers:
            await controller.resync()
        await self.settle()

    async def settle(self) -> None:
        """Feed events and drain work queues until nothing more happens."""
        for _ in range(500):
            for _ in range(3):
                await asyncio.sleep(0)  # let delayed work start waiting on the fake clock
            if self.events.queue.empty():
                for check in self.checks:
                    check()
                return
            while not self.events.queue.empty():
                event = self.events.queue.get_nowait()
                for controller in self.controllers:
                    await controller.handle(event)
            for controller in self.controllers:
                queue = getattr(controller, "queue", None)
                if queue is not None:
                    await queue.drain()
        raise AssertionError("the controllers never settled")

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.settle()

    # -- objects -----------------------------------------------------------------------------

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": "apps/v1", "kind": _KINDS[plural], **body}
        result = await self.cluster.create(self.rt("apps", plural), NS, body, KUBELET)
        await self.settle()
        return result.obj

    async def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        group = "" if plural == "pods" else "apps"
        raw = orjson.dumps(patch)
        await self.cluster.patch(self.rt(group, plural), NS, name, PATCH_MERGE, raw, KUBELET)
        await self.settle()

    def get(self, plural: str, name: str) -> dict[str, Any]:
        entry = self.cluster.store.get(_SKEYS[plural], NS, name)
        assert entry is not None, f"{plural}/{name} is gone"
        return entry.obj

    def all(self, plural: str) -> list[dict[str, Any]]:
        return [entry.obj for entry in self.cluster.store.list(_SKEYS[plural], NS)]

    def pods(
        self, owner: dict[str, Any] | None = None, active: bool = False
    ) -> list[dict[str, Any]]:
        found = self.all("pods")
        if owner is not None:
            found = [p for p in found if controller_uid(p) == owner["metadata"]["uid"]]
        if active:
            found = [p for p in found if not p["metadata"].get("deletionTimestamp")]
        return found

    # -- the kubelet's part ------------------------------------------------------------------

    async def run_pods(self, ready: bool = True, limit: int | None = None) -> None:
        """Schedule pending pods onto a node, mark them Running (and Ready)."""
        waiting = [p["metadata"]["name"] for p in self.pods(active=True) if not pod_is_ready(p)]
        for name in waiting[:limit]:
            entry = self.cluster.store.get("/pods", NS, name)
            if entry is None or entry.obj["metadata"].get("deletionTimestamp"):
                continue  # the controllers changed their mind while earlier pods started
            await self.patch("pods", name, {"spec": {"nodeName": "node-1"}})
            await self.set_ready(name, ready)

    async def set_ready(self, name: str, ready: bool) -> None:
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": now_rfc3339(self.clock.now()),
        }
        status = {"status": {"phase": "Running", "conditions": [condition]}}
        raw = orjson.dumps(status)
        pods = self.rt("", "pods")
        await self.cluster.patch(pods, NS, name, PATCH_MERGE, raw, KUBELET, subresource="status")
        await self.settle()

    async def finish_terminating(self) -> None:
        """Remove the pods that are shutting down (the kubelet's final delete)."""
        for pod in self.pods():
            if pod["metadata"].get("deletionTimestamp"):
                name = pod["metadata"]["name"]
                await self.cluster.delete(self.rt("", "pods"), NS, name, {"gracePeriodSeconds": 0})
        await self.settle()


_KINDS = {"replicasets": "ReplicaSet", "deployments": "Deployment"}
_SKEYS = {"replicasets": "apps/replicasets", "deployments": "apps/deployments", "pods": "/pods"}


def replica_set(name: str = "web", replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(),
            **spec,
        },
    }


@pytest.fixture
async def harness() -> Harness:
    h = Harness(ReplicaSetController)
    await h.start()
    return h


async def test_scale_up_creates_named_labelled_owned_pods(harness: Harness) -> None:
    rs = await harness.create("replicasets", replica_set(replicas=3))
    pods = harness.pods(rs)
    assert len(pods) == 3
    for pod in pods:
        meta = pod["metadata"]
        assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
        assert meta["generateName"] == "web-"
        assert meta["labels"] == {"app": "web"}
        assert meta["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert meta["ownerReferences"][0]["blockOwnerDeletion"] is True
    status = harness.get("replicasets", "web")["status"]
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}


async def test_status_counts_ready_and_available_pods(harness: Harness) -> None:
    await harness.create("replicasets", replica_set(replicas=3))
    await harness.run_pods(limit=2)
    await harness.run_pods(ready=False)
    status = harness.get("replicasets", "web")["status"]
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 2
    assert status["replicas"] == 3


async def test_scale_down_deletes_not_ready_pods_first(harness: Harness) -> None:
    rs = await harness.create("replicasets", replica_set(replicas=3))
    await harness.run_pods(limit=2)
    not_ready = {p["metadata"]["name"] for p in harness.pods() if not pod_is_ready(p)}
    await harness.patch("replicasets", "web", {"spec": {"replicas": 2}})
    assert {p["metadata"]["name"] for p in harness.pods()} & not_ready == set()
    await harness.patch("replicasets", "web", {"spec": {"replicas": 1}})
    # A scheduled pod is terminating until its kubelet removes it; it no longer counts.
    assert len(harness.pods(rs)) == 2 and len(harness.pods(rs, active=True)) == 1
    status = harness.get("replicasets", "web")["status"]
    assert status["replicas"] == 1 and status["readyReplicas"] == 1
    await harness.finish_terminating()
    assert len(harness.pods(rs)) == 1


async def test_terminating_and_deleted_pods_are_replaced(harness: Harness) -> None:
    rs = await harness.create("replicasets", replica_set(replicas=2))
    await harness.run_pods()
    victim = harness.pods(rs)[0]["metadata"]["name"]
    await harness.cluster.delete(harness.rt("", "pods"), NS, victim)
    await harness.settle()
    assert len(harness.pods(rs, active=True)) == 2
    assert harness.get("replicasets", "web")["status"]["replicas"] == 2


async def test_available_only_after_min_ready_seconds(harness: Harness) -> None:
    await harness.create("replicasets", replica_set(replicas=2, minReadySeconds=10))
    await harness.run_pods()
    status = harness.get("replicasets", "web")["status"]
    assert status["readyReplicas"] == 2 and "availableReplicas" not in status
    await harness.advance(9)
    assert "availableReplicas" not in harness.get("replicasets", "web")["status"]
    await harness.advance(2)  # no event comes: the controller's own re-check counts them
    assert harness.get("replicasets", "web")["status"]["availableReplicas"] == 2


async def test_orphans_are_adopted_and_mismatches_released(harness: Harness) -> None:
    pods = harness.rt("", "pods")
    orphan = {"metadata": {"name": "stray", "labels": {"app": "web"}}, "spec": template()["spec"]}
    await harness.cluster.create(pods, NS, orphan, KUBELET)
    rs = await harness.create("replicasets", replica_set(replicas=2))
    assert controller_uid(harness.get("pods", "stray")) == rs["metadata"]["uid"]
    assert len(harness.pods(rs)) == 2
    await harness.patch("pods", "stray", {"metadata": {"labels": {"app": "other"}}})
    assert controller_uid(harness.get("pods", "stray")) is None
    assert len(harness.pods(rs)) == 2


async def test_a_failed_create_is_reported_and_retried(harness: Harness) -> None:
    denying = True

    async def deny(op: str, rt: ResourceType, obj: dict[str, Any], *_: Any) -> dict[str, Any]:
        if denying and op == "CREATE" and rt.plural == "pods":
            raise errors.forbidden('admission webhook "inject" denied the request')
        return obj

    harness.cluster.admission.append(deny)
    await harness.create("replicasets", replica_set(replicas=2))
    failure = harness.get("replicasets", "web")["status"]["conditions"][0]
    assert (failure["type"], failure["reason"]) == ("ReplicaFailure", "FailedCreate")
    assert "denied the request" in failure["message"]
    denying = False
    await harness.advance(1)
    status = harness.get("replicasets", "web")["status"]
    assert status["replicas"] == 2 and "conditions" not in status


def test_deletion_order_prefers_unscheduled_pending_unready_and_newest() -> None:
    def pod(
        name: str, node: str = "n", phase: str = "Running", ready: bool = True, **meta: Any
    ) -> dict[str, Any]:
        condition = {
            "type": "Ready",
            "status": str(ready),
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        return {
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z", **meta},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [condition]},
        }

    pods = [
        pod("old-ready"),
        pod("new-ready", creationTimestamp="2026-01-02T00:00:00Z"),
        pod("not-ready", ready=False),
        pod("pending", phase="Pending", ready=False),
        pod("unscheduled", node="", phase="Pending", ready=False),
        pod("expensive", annotations={"controller.kubernetes.io/pod-deletion-cost": "100"}),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready", "expensive"]
