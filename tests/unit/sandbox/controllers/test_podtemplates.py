"""Pod templates to pods, readiness and availability, the owner index and the work queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.store import Store
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import (
    Key,
    OwnerIndex,
    WorkQueue,
    new_pod,
    pod_is_active,
    pod_is_available,
    pod_is_ready,
    safe_encode,
    seconds_until_available,
    template_hash,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}, "finalizers": ["f"]},
    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
}
OWNER: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u-1"},
}


def pod(ready: bool = True, since: datetime = T0, **meta: Any) -> dict[str, Any]:
    conditions = [
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": now_rfc3339(since),
        }
    ]
    return {
        "metadata": {"name": "p", **meta},
        "status": {"phase": "Running", "conditions": conditions},
    }


def owned_by(uid: str | None, name: str = "p") -> dict[str, Any]:
    refs = [{"uid": uid, "controller": True}] if uid else []
    return {"metadata": {"name": name, "namespace": "ns", "ownerReferences": refs}}


def test_template_hash_is_stable_and_safe() -> None:
    first = template_hash(TEMPLATE)
    assert first == template_hash(dict(reversed(list(TEMPLATE.items()))))
    assert 1 <= len(first) <= 10
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert template_hash(changed) != first
    assert template_hash(TEMPLATE, 1) not in (first, template_hash(TEMPLATE, 2))


def test_safe_encode_maps_each_byte_into_the_alphabet() -> None:
    # apimachinery: alphanums[b % 27] for each byte; "0" is byte 48 -> 48 % 27 = 21 -> "4".
    assert safe_encode("0") == "4"
    assert safe_encode("12") == "56"


def test_new_pod_copies_the_template_and_points_at_its_controller() -> None:
    body = new_pod(OWNER, "ReplicaSet", TEMPLATE, "web-abc-", {"pod-template-hash": "abc"})
    meta = body["metadata"]
    assert meta["generateName"] == "web-abc-" and "name" not in meta
    assert meta["namespace"] == "ns"
    assert meta["labels"] == {"app": "web", "pod-template-hash": "abc"}
    assert meta["annotations"] == {"a": "1"} and meta["finalizers"] == ["f"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-abc",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    body["spec"]["containers"][0]["image"] = "changed"
    assert TEMPLATE["spec"]["containers"][0]["image"] == "nginx"
    assert new_pod(OWNER, "StatefulSet", TEMPLATE, "web-0", {})["metadata"]["name"] == "web-0"


def test_readiness_availability_and_activity() -> None:
    assert pod_is_ready(pod()) and not pod_is_ready(pod(ready=False))
    assert not pod_is_ready({"metadata": {}, "status": {}})
    assert pod_is_available(pod(), 0, T0)
    # Available means Ready for *longer* than minReadySeconds.
    assert not pod_is_available(pod(), 5, T0 + timedelta(seconds=5))
    assert pod_is_available(pod(), 5, T0 + timedelta(seconds=5.5))
    assert not pod_is_available(pod(ready=False), 0, T0)
    assert pod_is_active(pod())
    assert not pod_is_active(pod(deletionTimestamp="2026-01-01T00:00:00Z"))
    assert not pod_is_active({"metadata": {}, "status": {"phase": "Succeeded"}})


def test_seconds_until_available() -> None:
    assert seconds_until_available(pod(), 5, T0 + timedelta(seconds=6)) == 0.0
    assert seconds_until_available(pod(ready=False), 5, T0) is None
    wait = seconds_until_available(pod(), 5, T0 + timedelta(seconds=2))
    assert wait is not None and 3 < wait < 3.1


def test_owner_index_follows_adoption_release_and_deletion() -> None:
    index = OwnerIndex()
    assert index.observe(owned_by(None)) == set()
    assert index.orphans("ns") == ["p"] and index.is_orphan(("ns", "p"))
    assert index.observe(owned_by("a")) == {"a"}
    assert index.owned("a") == [("ns", "p")] and index.orphans("ns") == []
    assert index.observe(owned_by("b")) == {"a", "b"}
    assert index.owned("a") == [] and index.owned("b") == [("ns", "p")]
    assert index.observe(owned_by("b"), deleted=True) == {"b"}
    assert index.owned("b") == [] and not index.is_orphan(("ns", "p"))


async def test_work_queue_coalesces_and_dedupes_timed_rechecks() -> None:
    clock = FakeClock()
    controller = Controller(Cluster(Store(None)), Context(clock=clock))
    seen: list[Key] = []

    async def reconcile(key: Key) -> None:
        seen.append(key)

    queue = WorkQueue(controller, reconcile)
    for _ in range(50):
        queue.add(("ns", "a"))
    queue.add(("ns", "b"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen == [("ns", "a"), ("ns", "b")]
    seen.clear()
    queue.add_after(("ns", "a"), 10)
    queue.add_after(("ns", "a"), 20)  # a later re-check than one pending adds nothing
    queue.add_after(("ns", "a"), 5)
    await asyncio.sleep(0)  # let the timers start sleeping on the fake clock
    await clock.advance(5)
    assert seen == [("ns", "a")]
    await clock.advance(100)
    assert seen == [("ns", "a"), ("ns", "a")]  # the 10s wake; the 20s one was never scheduled


async def test_one_failing_key_does_not_strand_the_others() -> None:
    controller = Controller(Cluster(Store(None)), Context(clock=FakeClock()))
    seen: list[Key] = []

    async def reconcile(key: Key) -> None:
        if key[1] == "bad":
            raise RuntimeError("boom")
        seen.append(key)

    queue = WorkQueue(controller, reconcile)
    queue.add(("ns", "bad"))
    queue.add(("ns", "good"))
    await queue.drain()
    assert seen == [("ns", "good")]
