"""The store: durable writes, one global resourceVersion, the event log and its 410 horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshcanary.sandbox.apiserver import store as store_module
from meshcanary.sandbox.apiserver.store import Store


def stamped(store: Store, name: str, **data: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": str(store.next_rv())}, "data": data}


def test_writes_survive_reopening(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = Store(db)
    first.put("/configmaps", "default", "a", stamped(first, "a", x=1))
    first.put("/configmaps", "default", "b", stamped(first, "b"))
    first.remove("/configmaps", "default", "b", stamped(first, "b"))
    rv = first.rv
    first.close()
    again = Store(db)
    assert [e.obj["metadata"]["name"] for e in again.list("/configmaps")] == ["a"]
    assert again.rv == rv
    assert again.get("/configmaps", "default", "a") is not None


def test_resource_versions_are_global_and_strictly_increasing() -> None:
    store = Store(None)
    rvs = []
    for skey, name in [("/pods", "a"), ("apps/deployments", "b"), ("/pods", "a")]:
        rvs.append(store.put(skey, "ns", name, stamped(store, name)).rv)
    assert rvs == sorted(set(rvs)) and len(rvs) == 3


def test_a_write_must_carry_the_next_version() -> None:
    store = Store(None)
    with pytest.raises(RuntimeError):
        store.put("/pods", "ns", "a", {"metadata": {"name": "a", "resourceVersion": "99"}})


def test_list_is_sorted_by_namespace_then_name() -> None:
    store = Store(None)
    for ns, name in [("b", "x"), ("a", "z"), ("a", "y")]:
        store.put("/pods", ns, name, stamped(store, name))
    assert [(e.obj["metadata"]["name"]) for e in store.list("/pods")] == ["y", "z", "x"]
    assert [(e.obj["metadata"]["name"]) for e in store.list("/pods", "a")] == ["y", "z"]
    assert store.count("/pods") == 3 and store.count("/pods", "b") == 1


def test_events_since_replays_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "EVENT_LOG_SIZE", 3)
    store = Store(None)
    start = store.rv
    for i in range(2):
        store.put("/pods", "ns", f"p{i}", stamped(store, f"p{i}"))
    replay = store.events_since("/pods", start)
    assert replay is not None and [e.type for e in replay] == ["ADDED", "ADDED"]
    for i in range(5):
        store.put("/pods", "ns", "p0", stamped(store, "p0", i=i))
    assert store.events_since("/pods", start) is None
    assert store.events_since("/pods", store.rv - 1) is not None


async def test_subscribers_get_events_with_the_previous_state() -> None:
    store = Store(None)
    subscription = store.subscribe("/pods")
    store.put("/pods", "ns", "a", stamped(store, "a", v=1))
    store.put("/pods", "ns", "a", stamped(store, "a", v=2))
    first, second = subscription.queue.get_nowait(), subscription.queue.get_nowait()
    assert (first.type, first.old) == ("ADDED", None)
    assert second.type == "MODIFIED" and second.old is not None
    assert second.old["data"] == {"v": 1} and second.entry.obj["data"] == {"v": 2}
    store.unsubscribe(subscription)
    store.put("/pods", "ns", "b", stamped(store, "b"))
    assert subscription.queue.empty()


def test_superseded_versions_keep_only_their_bytes() -> None:
    store = Store(None)
    store.put("/pods", "ns", "a", stamped(store, "a", v=1))
    old = store.get("/pods", "ns", "a")
    assert old is not None
    store.put("/pods", "ns", "a", stamped(store, "a", v=2))
    assert old._obj is None and old.obj["data"] == {"v": 1}
