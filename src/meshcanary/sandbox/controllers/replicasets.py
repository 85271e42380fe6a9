"""The ReplicaSet controller: keeps `spec.replicas` active pods of a template, and counts them.

Why: Deployments roll out by scaling ReplicaSets, so `kubectl rollout status`, `kubectl scale` and
every Deployment condition rest on ReplicaSets creating, deleting and counting pods the way
kube-controller-manager's ReplicaSet controller does: pods named `<rs>-<5 random chars>`;
surplus pods chosen unscheduled, then pending, then not ready, then cheapest to delete, then
doubled up on a node, then most recently ready, then most restarted, then newest; terminating and
finished pods not counted; a pod available once Ready for longer than `minReadySeconds` (re-checked
on the clock when that moment comes); orphans matching the selector adopted and owned pods that
stop matching it released; a failed pod create or delete reported as a `ReplicaFailure` condition
and retried with backoff.

Pods are found through an index by controller uid and events are coalesced per ReplicaSet, so a
reconciliation costs O(pods of that ReplicaSet) however large the cluster. Pods this controller
creates enter the index as soon as the create returns (the role of kube-controller-manager's
"expectations"), so a reconciliation that runs before their events arrive never doubles them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.selectors import LabelSelector, label_selector_from_dict
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import (
    Key,
    OwnerIndex,
    WorkQueue,
    controller_ref,
    controller_uid,
    new_pod,
    object_key,
    other_owners,
    parse_time,
    pod_is_active,
    pod_is_available,
    pod_is_ready,
    ready_since,
    seconds_until_available,
    served_type,
    set_owners,
)

PODS = "/pods"
REPLICASETS = "apps/replicasets"
OPTIONS = WriteOptions(field_manager="replicaset-controller")
BURST_REPLICAS = 500
"""At most this many pods are created or deleted per reconciliation (as upstream)."""
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True)
class Failure:
    """Why creating or deleting pods failed (reported as the ReplicaFailure condition)."""

    reason: str
    message: str


@dataclass
class _Tracked:
    uid: str
    selector_spec: Any
    selector: LabelSelector


class ReplicaSetController(Controller):
    """Creates and deletes the pods of every ReplicaSet, and keeps its status counts."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._pod_type = served_type(cluster, PODS)
        self._rs_type = served_type(cluster, REPLICASETS)
        self._pods = OwnerIndex()
        self._tracked: dict[str, dict[str, _Tracked]] = {}
        self._by_uid: dict[str, Key] = {}
        self._candidates: dict[Key, set[str]] = {}
        self._backoff: dict[Key, float] = {}
        self.queue = WorkQueue(self, self._reconcile)

    # -- events ------------------------------------------------------------------------------

    async def resync(self) -> None:
        for entry in self.cluster.store.list(PODS):
            self._pods.observe(entry.obj)
        for entry in self.cluster.store.list(REPLICASETS):
            self._replicaset_changed(entry.obj, deleted=False)
        await self.queue.drain()

    async def handle(self, event: Event) -> None:
        if event.skey == PODS:
            self._pod_changed(event.entry.obj, event.type == "DELETED")
        elif event.skey == REPLICASETS:
            self._replicaset_changed(event.entry.obj, event.type == "DELETED")

    def _pod_changed(self, pod: dict[str, Any], deleted: bool) -> None:
        key = object_key(pod)
        was_orphan = self._pods.is_orphan(key)
        for uid in self._pods.observe(pod, deleted):
            owner = self._by_uid.get(uid)
            if owner is not None:
                self.queue.add(owner)
        if not was_orphan and self._pods.is_orphan(key):
            self._offer_orphan(pod)

    def _offer_orphan(self, pod: dict[str, Any]) -> None:
        """A pod no controller owns: every ReplicaSet whose selector matches may adopt it."""
        namespace, name = object_key(pod)
        labels = pod["metadata"].get("labels") or {}
        for rs_name, tracked in self._tracked.get(namespace, {}).items():
            if tracked.selector.matches(labels):
                self._candidates.setdefault((namespace, rs_name), set()).add(name)
                self.queue.add((namespace, rs_name))

    def _replicaset_changed(self, rs: dict[str, Any], deleted: bool) -> None:
        key = object_key(rs)
        namespace, name = key
        by_name = self._tracked.setdefault(namespace, {})
        if deleted:
            gone = by_name.pop(name, None)
            if gone is not None:
                self._by_uid.pop(gone.uid, None)
            self._candidates.pop(key, None)
            self._backoff.pop(key, None)
            return
        uid = rs["metadata"]["uid"]
        selector_spec = (rs.get("spec") or {}).get("selector")
        tracked = by_name.get(name)
        if tracked is None or tracked.uid != uid or tracked.selector_spec != selector_spec:
            selector = label_selector_from_dict(selector_spec)
            by_name[name] = _Tracked(uid, selector_spec, selector)
            self._candidates[key] = set(self._pods.orphans(namespace))
        self._by_uid[uid] = key
        self.queue.add(key)

    # -- reconciliation ----------------------------------------------------------------------

    async def _reconcile(self, key: Key) -> None:
        entry = self.cluster.store.get(REPLICASETS, *key)
        tracked = self._tracked.get(key[0], {}).get(key[1])
        if entry is None or tracked is None:
            return
        rs = entry.obj
        pods = await self._claim(rs, tracked.selector)
        failure = None
        if not rs["metadata"].get("deletionTimestamp"):
            pods, failure = await self._manage(rs, pods)
        await self._write_status(rs, pods, failure)
        self._recheck_later(key, rs, pods, failure)

    async def _claim(self, rs: dict[str, Any], selector: LabelSelector) -> list[dict[str, Any]]:
        """The active pods this ReplicaSet controls, after releasing and adopting."""
        meta = rs["metadata"]
        uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
        pods = []
        for pod in self._pod_objects(self._pods.owned(uid)):
            if not pod_is_active(pod):
                continue
            if selector.matches(pod["metadata"].get("labels") or {}):
                pods.append(pod)
            elif not deleting:
                await self._set_owners(pod, other_owners(pod, uid))
        namespace = meta.get("namespace", "")
        names = self._candidates.pop((namespace, meta["name"]), set())
        for pod in self._pod_objects((namespace, name) for name in sorted(names)):
            labels = pod["metadata"].get("labels") or {}
            if deleting or controller_uid(pod) or not pod_is_active(pod):
                continue
            if selector.matches(labels):
                owners = [*other_owners(pod, uid), controller_ref(rs, "ReplicaSet")]
                pods.append(await self._set_owners(pod, owners))
        return pods

    def _pod_objects(self, keys: Any) -> list[dict[str, Any]]:
        found = (self.cluster.store.get(PODS, ns, name) for ns, name in keys)
        return [entry.obj for entry in found if entry is not None]

    async def _set_owners(self, pod: dict[str, Any], owners: list[Any]) -> dict[str, Any]:
        stored = await set_owners(self.cluster, self._pod_type, pod, owners, OPTIONS)
        self._pods.observe(stored)
        return stored

    async def _manage(
        self, rs: dict[str, Any], pods: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Failure | None]:
        """Create or delete pods towards `spec.replicas`; the active pods afterwards."""
        diff = len(pods) - int(rs["spec"].get("replicas", 1))
        if diff < 0:
            return await self._create_pods(rs, pods, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete_pods(pods, min(diff, BURST_REPLICAS))
        return pods, None

    async def _create_pods(
        self, rs: dict[str, Any], pods: list[dict[str, Any]], count: int
    ) -> tuple[list[dict[str, Any]], Failure | None]:
        namespace, name = object_key(rs)
        template = rs["spec"].get("template") or {}
        pods = list(pods)
        for _ in range(count):
            body = new_pod(rs, "ReplicaSet", template, f"{name}-", {})
            try:
                result = await self.cluster.create(self._pod_type, namespace, body, OPTIONS)
            except errors.ApiError as exc:
                return pods, Failure("FailedCreate", exc.message)
            self._pods.observe(result.obj)
            pods.append(result.obj)
        return pods, None

    async def _delete_pods(
        self, pods: list[dict[str, Any]], count: int
    ) -> tuple[list[dict[str, Any]], Failure | None]:
        victims = deletion_order(pods)[:count]
        deleted: set[Key] = set()
        failure = None
        for pod in victims:
            try:
                await self.cluster.delete(self._pod_type, *object_key(pod))
            except errors.ApiError as exc:
                if exc.code != 404:
                    failure = Failure("FailedDelete", exc.message)
                    break
            deleted.add(object_key(pod))
        return [pod for pod in pods if object_key(pod) not in deleted], failure

    async def _write_status(
        self, rs: dict[str, Any], pods: list[dict[str, Any]], failure: Failure | None
    ) -> None:
        current = self.cluster.store.get(REPLICASETS, *object_key(rs))
        if current is None or current.obj is not rs:
            # Changed (a new stored object) while pods were written: its event brings another
            # reconciliation, and a status computed for the old spec must not claim the new one.
            return
        status = replica_set_status(rs, pods, self.clock.now(), failure)
        if status == rs.get("status"):
            return
        await self.cluster.update(
            self._rs_type, *object_key(rs), {**rs, "status": status}, OPTIONS, "status"
        )

    def _recheck_later(
        self, key: Key, rs: dict[str, Any], pods: list[dict[str, Any]], failure: Failure | None
    ) -> None:
        """Retry failed writes with backoff; re-count when a Ready pod becomes available."""
        if failure is not None:
            delay = self._backoff.get(key, RETRY_FIRST)
            self._backoff[key] = min(delay * 2, RETRY_MAX)
            self.queue.add_after(key, delay)
        else:
            self._backoff.pop(key, None)
        min_ready = int(rs["spec"].get("minReadySeconds") or 0)
        if min_ready <= 0:
            return
        now = self.clock.now()
        waits = [w for pod in pods if (w := seconds_until_available(pod, min_ready, now))]
        if waits:
            self.queue.add_after(key, min(waits))


def replica_set_status(
    rs: dict[str, Any], pods: list[dict[str, Any]], now: datetime, failure: Failure | None
) -> dict[str, Any]:
    """The status kube-controller-manager would write for `rs` owning the active `pods`."""
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    status = dict(rs.get("status") or {})
    status["replicas"] = len(pods)
    counts = {
        "fullyLabeledReplicas": sum(_has_labels(pod, template_labels) for pod in pods),
        "readyReplicas": sum(pod_is_ready(pod) for pod in pods),
        "availableReplicas": sum(pod_is_available(pod, min_ready, now) for pod in pods),
        "observedGeneration": int(rs["metadata"].get("generation") or 0),
    }
    for field, value in counts.items():
        if value:
            status[field] = value
        else:
            status.pop(field, None)  # omitempty, as the Go type serializes
    conditions = _failure_conditions(status.get("conditions") or [], failure, now)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


def _failure_conditions(
    conditions: list[dict[str, Any]], failure: Failure | None, now: datetime
) -> list[dict[str, Any]]:
    """Add a ReplicaFailure condition on failure (kept as first reported), drop it on success."""
    others = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    if failure is None:
        return others
    existing = [c for c in conditions if c.get("type") == "ReplicaFailure"]
    if existing:
        return conditions
    failed = {
        "type": "ReplicaFailure",
        "status": "True",
        "lastTransitionTime": now_rfc3339(now),
        "reason": failure.reason,
        "message": failure.message,
    }
    return [*others, failed]


def deletion_order(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods sorted most-deletable first, as upstream's `ActivePodsWithRanks` sorts them.

    The "doubled up" rank counts pods of the same ReplicaSet on a node (upstream also counts
    the pods of sibling ReplicaSets of the same Deployment).
    """
    per_node = Counter(_node(pod) for pod in pods if _node(pod))

    def rank(pod: dict[str, Any]) -> tuple[Any, ...]:
        node = _node(pod)
        ready = pod_is_ready(pod)
        since = ready_since(pod)
        created = parse_time(pod["metadata"].get("creationTimestamp"))
        return (
            bool(node),
            _PHASE_ORDER.get((pod.get("status") or {}).get("phase", ""), 0),
            ready,
            _deletion_cost(pod),
            -per_node[node] if node else 0,
            (-since.timestamp() if since else -math.inf) if ready else 0.0,
            -_restarts(pod),
            -created.timestamp() if created else -math.inf,
        )

    return sorted(pods, key=rank)


def _node(pod: dict[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _deletion_cost(pod: dict[str, Any]) -> int:
    raw = (pod["metadata"].get("annotations") or {}).get(DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except (TypeError, ValueError):
        return 0


def _restarts(pod: dict[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _has_labels(pod: dict[str, Any], labels: dict[str, Any]) -> bool:
    have = pod["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())
