"""What every workload controller (ReplicaSet, StatefulSet, DaemonSet, Job) shares: pod templates
to pods, pod readiness, an owner index and a coalescing work queue.

Kept in one place so that all of them stamp pods the way kube-controller-manager's
`GetPodFromTemplate` does (labels, annotations and finalizers from the template, a controller
ownerReference, the spec copied), judge pods by the same readiness and availability rules
(`podutil.IsPodReady`, `IsPodAvailable`, `controller.IsPodActive`), and name template revisions
with the same kind of hash.

`template_hash` follows `controller.ComputeHash`: FNV-32a over the template plus the collision
count (8 little-endian bytes), the decimal rendering of the sum passed through
`rand.SafeEncodeString`. Kubernetes feeds FNV a `spew` dump of the Go struct, which cannot be
reproduced from JSON, so this hashes canonical JSON (sorted keys) instead: the hashes have the
same shape and stability as real ones (same alphabet, up to 10 characters, a new value for a new
template or collision count) but are not bit-identical to a real cluster's.

`OwnerIndex` and `WorkQueue` keep each controller's work per event proportional to the objects of
one owner (20,000 pods is a normal cluster): dependents are found by their controller's uid, not
by scanning, and a burst of events for one owner is reconciled once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller

Key = tuple[str, str]
"""(namespace, name) of an object of a known storage key."""

POD_TEMPLATE_HASH = "pod-template-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def _fnv32a(data: bytes, seed: int = _FNV32_OFFSET) -> int:
    value = seed
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """apimachinery's `rand.SafeEncodeString`: each byte mapped into a vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """The pod-template-hash of `template` (see the module docstring for exactness)."""
    value = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), value)
    return safe_encode(str(value))


def controller_ref(owner: dict[str, Any], owner_kind: str) -> dict[str, Any]:
    """The ownerReference a workload controller puts on what it creates."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner_kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of `obj`'s controlling owner, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def other_owners(obj: dict[str, Any], uid: str) -> list[Any]:
    """`obj`'s ownerReferences except the one to `uid` (what releasing it leaves)."""
    return [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]


async def set_owners(
    cluster: Cluster, rt: ResourceType, obj: dict[str, Any], owners: list[Any], opts: WriteOptions
) -> dict[str, Any]:
    """Replace `obj`'s ownerReferences (adopting or releasing it); the object as stored.

    Guarded by `obj`'s resourceVersion, so a decision taken on a stale copy fails with 409."""
    namespace, name = object_key(obj)
    meta = {
        "ownerReferences": owners or None,
        "resourceVersion": obj["metadata"]["resourceVersion"],
    }
    raw = orjson.dumps({"metadata": meta})
    result = await cluster.patch(rt, namespace, name, PATCH_MERGE, raw, opts)
    return result.obj


def new_pod(
    owner: dict[str, Any],
    owner_kind: str,
    template: dict[str, Any],
    name: str,
    extra_labels: dict[str, str],
) -> dict[str, Any]:
    """A Pod body from `template`, controlled by `owner`, in the owner's namespace.

    A `name` ending in "-" (never a valid object name) is used as `generateName`, so the API
    server picks the suffix, as it does for ReplicaSet, DaemonSet and Job pods.
    """
    template_meta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "namespace": owner["metadata"].get("namespace", ""),
        "labels": {**(template_meta.get("labels") or {}), **extra_labels},
        "ownerReferences": [controller_ref(owner, owner_kind)],
    }
    meta["generateName" if name.endswith("-") else "name"] = name
    for key in ("annotations", "finalizers"):
        if template_meta.get(key):
            meta[key] = orjson.loads(orjson.dumps(template_meta[key]))
    spec: dict[str, Any] = orjson.loads(orjson.dumps(template.get("spec") or {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _ready_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: dict[str, Any]) -> datetime | None:
    """When a Ready pod last became Ready (None when not Ready or never stamped)."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def parse_time(stamp: Any) -> datetime | None:
    """An RFC 3339 timestamp as stored in an object (None when absent or malformed)."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_until_available(
    pod: dict[str, Any], min_ready_seconds: int, now: datetime
) -> float | None:
    """How long until a Ready pod counts as available (0 when it does; None when not Ready).

    Availability is strict ("Ready for longer than"), so a positive answer is a moment past it.
    """
    if pod_is_available(pod, min_ready_seconds, now):
        return 0.0
    since = ready_since(pod)
    if since is None:
        return None
    due = since + timedelta(seconds=min_ready_seconds)
    return max(0.0, (due - now).total_seconds()) + 0.001


def pod_is_available(pod: dict[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and Ready for longer than `min_ready_seconds` (`podutil.IsPodAvailable`)."""
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def pod_is_active(pod: dict[str, Any]) -> bool:
    """Not terminating and not finished (`controller.IsPodActive`)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (str(meta.get("namespace", "")), str(meta["name"]))


class OwnerIndex:
    """The objects of one storage key by their controller's uid; the orphans by namespace."""

    def __init__(self) -> None:
        self._owner_of: dict[Key, str] = {}
        self._owned: dict[str, set[Key]] = {}
        self._orphans: dict[str, set[str]] = {}

    def observe(self, obj: dict[str, Any], deleted: bool = False) -> set[str]:
        """Record `obj` as it now is (or its removal); the controller uids it moved between."""
        key = object_key(obj)
        before = self._owner_of.pop(key, None)
        if before is not None:
            self._unlink(key, before)
        after = None if deleted else controller_uid(obj) or ""
        if after is not None:
            self._owner_of[key] = after
            if after:
                self._owned.setdefault(after, set()).add(key)
            else:
                self._orphans.setdefault(key[0], set()).add(key[1])
        return {uid for uid in (before, after) if uid}

    def _unlink(self, key: Key, uid: str) -> None:
        if uid:
            owned = self._owned.get(uid, set())
            owned.discard(key)
            if not owned:
                self._owned.pop(uid, None)
            return
        orphans = self._orphans.get(key[0], set())
        orphans.discard(key[1])
        if not orphans:
            self._orphans.pop(key[0], None)

    def owned(self, uid: str) -> list[Key]:
        """Keys of the objects `uid` controls, sorted."""
        return sorted(self._owned.get(uid, ()))

    def orphans(self, namespace: str) -> list[str]:
        """Names of the objects in `namespace` that no controller owns, sorted."""
        return sorted(self._orphans.get(namespace, ()))

    def is_orphan(self, key: Key) -> bool:
        return self._owner_of.get(key) == ""


class WorkQueue:
    """Coalesces reconciliation: a key marked many times before the queue drains is reconciled
    once; timed re-checks are deduplicated to the earliest one pending per key."""

    def __init__(self, controller: Controller, reconcile: Callable[[Key], Awaitable[None]]) -> None:
        self._controller = controller
        self._reconcile = reconcile
        self._dirty: dict[Key, None] = {}
        self._scheduled = False
        self._due: dict[Key, datetime] = {}

    def add(self, key: Key) -> None:
        self._dirty[key] = None
        if not self._scheduled:
            self._scheduled = True
            self._controller.later(0, self.drain)

    def add_after(self, key: Key, seconds: float) -> None:
        """Reconcile `key` again after `seconds` of clock time."""
        due = self._controller.clock.now() + timedelta(seconds=seconds)
        pending = self._due.get(key)
        if pending is not None and pending <= due:
            return
        self._due[key] = due

        async def wake() -> None:
            if self._due.get(key) == due:
                del self._due[key]
            self.add(key)

        self._controller.later(seconds, wake)

    async def drain(self) -> None:
        """Reconcile every marked key (including keys marked while draining), oldest first."""
        self._scheduled = False
        while self._dirty:
            key = next(iter(self._dirty))
            del self._dirty[key]
            # One failing key must not strand the others: each is guarded on its own.
            await self._controller._guarded(self._reconcile(key))


class OwnerController(Controller):
    """A controller of one kind of owner and the objects it controls (StatefulSet and pods,
    CronJob and Jobs, ...): dependents indexed by controller uid, owners reconciled through a
    coalescing `WorkQueue`, so an event costs O(1) and a reconciliation O(dependents of one owner).

    Subclasses set `owner_skey` and `dependent_skey` and implement `reconcile`; `other_event`
    sees the events of every other storage key. Dependents a subclass creates should be passed
    to `self.dependents.observe` at once, so a reconciliation before their event never doubles
    them.
    """

    owner_skey: str = ""
    dependent_skey: str = ""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self.dependents = OwnerIndex()
        self._owner_keys: dict[str, Key] = {}
        self.queue = WorkQueue(self, self._reconcile_key)

    async def resync(self) -> None:
        for entry in self.cluster.store.list(self.dependent_skey):
            self.dependents.observe(entry.obj)
        for entry in self.cluster.store.list(self.owner_skey):
            self._owner_changed(entry.obj, deleted=False)
        await self.queue.drain()

    async def handle(self, event: Event) -> None:
        deleted = event.type == "DELETED"
        if event.skey == self.dependent_skey:
            for uid in self.dependents.observe(event.entry.obj, deleted):
                key = self._owner_keys.get(uid)
                if key is not None:
                    self.queue.add(key)
        elif event.skey == self.owner_skey:
            self._owner_changed(event.entry.obj, deleted)
        else:
            await self.other_event(event)

    async def other_event(self, event: Event) -> None:
        """An event of neither the owners' nor the dependents' storage key."""

    def _owner_changed(self, owner: dict[str, Any], deleted: bool) -> None:
        uid = str(owner["metadata"].get("uid", ""))
        if deleted:
            self._owner_keys.pop(uid, None)
            return
        self._owner_keys[uid] = object_key(owner)
        self.queue.add(object_key(owner))

    def requeue_all(self) -> None:
        for key in self._owner_keys.values():
            self.queue.add(key)

    def owned(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """The stored dependents `owner` controls, sorted by key."""
        store = self.cluster.store
        found = (
            store.get(self.dependent_skey, *key)
            for key in self.dependents.owned(str(owner["metadata"].get("uid", "")))
        )
        return [entry.obj for entry in found if entry is not None]

    async def _reconcile_key(self, key: Key) -> None:
        entry = self.cluster.store.get(self.owner_skey, *key)
        if entry is not None:
            await self.reconcile(entry.obj)

    async def reconcile(self, owner: dict[str, Any]) -> None:
        """Converge one owner and its dependents, and write its status."""
        raise NotImplementedError


def served_type(cluster: Cluster, skey: str) -> ResourceType:
    """The served type stored under `skey` (every built-in type is served)."""
    rt = cluster.types_for(skey)
    if rt is None:
        raise RuntimeError(f"no served type is stored under {skey!r}")
    return rt
