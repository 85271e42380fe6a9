"""Durable object storage with a global resourceVersion and watch fan-out.

The store knows keys and bytes, not Kubernetes semantics (those live in `cluster.py`). Every
object lives in memory (reads and LISTs never touch the disk) and in SQLite in WAL mode; each write
is committed before it is acknowledged, so `kill -9` loses nothing a client was told succeeded.
Each write gets the next resourceVersion from one global counter, as etcd revisions do, and lands
in a bounded in-memory event log from which watches resume; a watch older than the log gets 410.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

EVENT_LOG_SIZE = 20_000
ALL_KEYS = "*"
"""Subscribe to this key to receive every event (the in-process controllers do)."""

Key = tuple[str, str, str]
"""(storage key `group/plural`, namespace or "", name)."""


class Entry:
    """A stored object: its JSON encoding (LISTs join these bytes) and, while current, its dict.

    A superseded version only lives on in the event log, where it keeps just its bytes and is
    parsed again on demand: a parsed pod costs ~20 KB of Python objects, its JSON ~2 KB.
    """

    __slots__ = ("_obj", "_raw")

    def __init__(self, obj: dict[str, Any] | None, raw: bytes | None = None) -> None:
        if obj is None and raw is None:
            raise ValueError("an entry needs an object or its encoding")
        self._obj = obj
        self._raw = raw

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is not None:
            return self._obj
        assert self._raw is not None
        parsed: dict[str, Any] = orjson.loads(self._raw)
        return parsed

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self._obj)
        return self._raw

    def demote(self) -> None:
        """Keep only the bytes (the object has been superseded)."""
        self.raw  # noqa: B018 - encode before dropping the dict
        self._obj = None

    @property
    def rv(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])


@dataclass(frozen=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the object before and after."""

    rv: int
    type: str
    skey: str
    namespace: str
    entry: Entry
    previous: Entry | None

    @property
    def old(self) -> dict[str, Any] | None:
        """The object before this change (None for ADDED)."""
        return self.previous.obj if self.previous is not None else None


@dataclass(eq=False)
class Subscription:
    """A watcher's queue of events for one storage key."""

    skey: str
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)


class Store:
    """In-memory objects backed by SQLite (WAL), with a resumable event log."""

    def __init__(self, path: Path | None = None) -> None:
        self._db = _open(path)
        self._objects: dict[str, dict[str, dict[str, Entry]]] = {}
        self._log: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self._subscriptions: dict[str, set[Subscription]] = {}
        self.rv = self._load()
        self._compacted = self.rv

    # -- reads -------------------------------------------------------------------------------

    def get(self, skey: str, namespace: str, name: str) -> Entry | None:
        return self._objects.get(skey, {}).get(namespace, {}).get(name)

    def list(self, skey: str, namespace: str | None = None) -> builtins.list[Entry]:
        """Entries sorted by (namespace, name); all namespaces when `namespace` is None."""
        by_ns = self._objects.get(skey, {})
        if namespace is not None:
            bucket = by_ns.get(namespace, {})
            return [bucket[name] for name in sorted(bucket)]
        return [by_ns[ns][name] for ns in sorted(by_ns) for name in sorted(by_ns[ns])]

    def count(self, skey: str, namespace: str | None = None) -> int:
        by_ns = self._objects.get(skey, {})
        if namespace is not None:
            return len(by_ns.get(namespace, {}))
        return sum(len(bucket) for bucket in by_ns.values())

    def skeys(self) -> builtins.list[str]:
        return [skey for skey, by_ns in self._objects.items() if any(by_ns.values())]

    def namespaces_with_objects(self, skey: str) -> Iterator[str]:
        return (ns for ns, bucket in self._objects.get(skey, {}).items() if bucket)

    # -- writes ------------------------------------------------------------------------------

    def next_rv(self) -> int:
        """The resourceVersion the next write will get (callers stamp it into the object)."""
        return self.rv + 1

    def put(self, skey: str, namespace: str, name: str, obj: dict[str, Any]) -> Entry:
        """Store `obj` (already stamped with `next_rv()`), durably, and notify watchers."""
        rv = int(obj["metadata"]["resourceVersion"])
        if rv != self.rv + 1:
            raise RuntimeError(f"resourceVersion {rv} is not the next one ({self.rv + 1})")
        entry = Entry(obj)
        previous = self.get(skey, namespace, name)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO objects (skey, ns, name, data) VALUES (?, ?, ?, ?)",
                (skey, namespace, name, entry.raw),
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (rv,))
        self._objects.setdefault(skey, {}).setdefault(namespace, {})[name] = entry
        self.rv = rv
        kind = "MODIFIED" if previous is not None else "ADDED"
        if previous is not None:
            previous.demote()
        self._publish(Event(rv, kind, skey, namespace, entry, previous))
        return entry

    def remove(self, skey: str, namespace: str, name: str, final: dict[str, Any]) -> Entry:
        """Delete an object durably; `final` is its last state, stamped with `next_rv()`."""
        rv = int(final["metadata"]["resourceVersion"])
        previous = self.get(skey, namespace, name)
        with self._db:
            self._db.execute(
                "DELETE FROM objects WHERE skey = ? AND ns = ? AND name = ?",
                (skey, namespace, name),
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (rv,))
        bucket = self._objects.get(skey, {}).get(namespace, {})
        bucket.pop(name, None)
        self.rv = rv
        entry = Entry(final)
        if previous is not None:
            previous.demote()
        self._publish(Event(rv, "DELETED", skey, namespace, entry, previous))
        return entry

    def close(self) -> None:
        self._db.close()

    # -- watch -------------------------------------------------------------------------------

    def subscribe(self, skey: str) -> Subscription:
        subscription = Subscription(skey)
        self._subscriptions.setdefault(skey, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.get(subscription.skey, set()).discard(subscription)

    def events_since(self, skey: str, rv: int) -> builtins.list[Event] | None:
        """Logged events for `skey` after `rv`, or None when `rv` is older than the log."""
        if rv < self._compacted:
            return None
        return [event for event in self._log if event.rv > rv and event.skey == skey]

    def _publish(self, event: Event) -> None:
        if len(self._log) == self._log.maxlen:
            self._compacted = self._log[0].rv
        self._log.append(event)
        for subscription in self._subscriptions.get(event.skey, ()):
            subscription.queue.put_nowait(event)
        for subscription in self._subscriptions.get(ALL_KEYS, ()):
            subscription.queue.put_nowait(event)

    # -- persistence -------------------------------------------------------------------------

    def _load(self) -> int:
        for skey, namespace, name, data in self._db.execute(
            "SELECT skey, ns, name, data FROM objects"
        ):
            entry = Entry(orjson.loads(data), bytes(data))
            self._objects.setdefault(skey, {}).setdefault(namespace, {})[name] = entry
        row = self._db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
        return int(row[0])


def _open(path: Path | None) -> sqlite3.Connection:
    """Open (and create) the database; WAL + synchronous=NORMAL survives a killed process."""
    db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
    db.isolation_level = "DEFERRED"
    if path:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    with db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS objects (skey TEXT NOT NULL, ns TEXT NOT NULL,"
            " name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (skey, ns, name))"
            " WITHOUT ROWID"
        )
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('rv', 1)")
    return db
