"""The Deployment controller: rolls a Deployment's pod template out through its ReplicaSets.

Why: a canary upgrade is rehearsed with `kubectl rollout restart`, `rollout status`, `rollout undo`,
`rollout history` and `scale`, and those only behave as on a real cluster if Deployments move the
way kube-controller-manager's deployment controller moves them. So this follows its sync loop
step for step (`syncDeployment`, `rolloutRolling`, `rolloutRecreate`, `sync`/`scale`,
`syncRolloutStatus`, `cleanupDeployment`, `getNewReplicaSet`): the ReplicaSet of the current
template is `<deployment>-<pod-template-hash>`; revisions, desired/max replicas and copied
annotations are kept on ReplicaSets as upstream keeps them (so `rollout undo` and `history` find
what they look for); RollingUpdate honours maxSurge (rounded up) and maxUnavailable (rounded
down; both zero means one); Recreate waits for every old pod to be gone; paused Deployments only
scale; scaling mid-rollout is proportional; old ReplicaSets beyond `revisionHistoryLimit` are
deleted; status counts and the Available / Progressing / ReplicaFailure conditions are computed
as upstream computes them, with ProgressDeadlineExceeded measured on the injected clock.

ReplicaSets and pods are indexed by their controller's uid and events are coalesced per
Deployment, so a reconciliation costs O(ReplicaSets and pods of that Deployment). Everything is
derived from stored objects, so `resync()` after a crash picks a rollout up where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import NAMESPACES, PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.selectors import label_selector_from_dict
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.podtemplates import (
    POD_TEMPLATE_HASH,
    Key,
    OwnerIndex,
    WorkQueue,
    controller_ref,
    controller_uid,
    object_key,
    other_owners,
    parse_time,
    served_type,
    set_owners,
    template_hash,
)
from meshcanary.sandbox.controllers.replicasets import PODS, REPLICASETS

Obj = dict[str, Any]

DEPLOYMENTS = "apps/deployments"
OPTIONS = WriteOptions(field_manager="deployment-controller")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
"""Deployment annotations never copied to its ReplicaSets (upstream's annotationsToSkip)."""
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"
RS_CREATE_ERROR = "ReplicaSetCreateError"
DEADLINE_SLACK = 0.01
"""Timing out needs `lastUpdateTime + deadline < now`, strictly: wake a moment after."""


# -- quantities ------------------------------------------------------------------------------


def replicas(obj: Obj | None) -> int:
    """`spec.replicas` of a Deployment or ReplicaSet (0 for no object)."""
    if obj is None:
        return 0
    return int((obj.get("spec") or {}).get("replicas", 1))


def status_count(obj: Obj | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def revision(rs: Obj) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def creation_order(rs: Obj) -> tuple[str, str]:
    """Upstream's ReplicaSetsByCreationTimestamp: oldest first, ties by name."""
    meta = rs["metadata"]
    return (str(meta.get("creationTimestamp", "")), str(meta["name"]))


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (`3` or `"25%"`) resolved against `total` (GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "")
    if not text.endswith("%"):
        return int(text) if text.lstrip("-").isdigit() else 0
    try:
        percent = int(text[:-1])
    except ValueError:
        return 0
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def is_rolling(d: Obj) -> bool:
    strategy = (d.get("spec") or {}).get("strategy") or {}
    return bool(strategy.get("type", "RollingUpdate") == "RollingUpdate")


def _rolling_update(d: Obj) -> Obj:
    rolling: Obj = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both zero would deadlock, so then (0, 1)."""
    rolling = _rolling_update(d)
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 0), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas(d))


def has_deadline(d: Obj) -> bool:
    seconds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return seconds is not None and seconds != NO_DEADLINE


def new_rs_replicas(d: Obj, all_rs: list[Obj], new_rs: Obj) -> int:
    """How far the new ReplicaSet may scale up now (NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    surge = scaled_value(_rolling_update(d).get("maxSurge"), replicas(d), round_up=True)
    ceiling = replicas(d) + surge
    current = sum(replicas(rs) for rs in all_rs)
    if current >= ceiling:
        return replicas(new_rs)
    step = min(ceiling - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + step


# -- templates and annotations -----------------------------------------------------------------


def _without_hash(template: Obj) -> Obj:
    """A template minus the pod-template-hash label; empty maps dropped (Semantic.DeepEqual)."""
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != POD_TEMPLATE_HASH}
    meta["labels"] = labels
    meta = {k: v for k, v in meta.items() if v not in ({}, [], None)}
    out = {k: v for k, v in template.items() if k != "metadata"}
    if meta:
        out["metadata"] = meta
    return out


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return _without_hash(a) == _without_hash(b)


def find_new(d: Obj, rs_list: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (FindNewReplicaSet)."""
    template = (d.get("spec") or {}).get("template") or {}
    for rs in sorted(rs_list, key=creation_order):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def set_replicas_annotations(notes: dict[str, str], desired: int, maximum: int) -> bool:
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if notes.get(key) != value:
            notes[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, notes: dict[str, str], new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations and raise the revision (SetNewReplicaSetAnnotations).

    A ReplicaSet that already had a lower revision is being rolled back to: its old revisions
    go to `revision-history`, trimmed to 2,000 characters.
    """
    changed = False
    for key, value in annotations_of(d).items():
        if key not in NOT_COPIED and notes.get(key) != value:
            notes[key] = value
            changed = True
    old_text = notes.get(REVISION)
    try:
        old = int(old_text) if old_text is not None else 0
    except ValueError:
        return changed
    if old < new_revision:
        notes[REVISION] = str(new_revision)
        changed = True
        if old_text is not None:
            _push_revision_history(notes, old_text)
    if not exists and set_replicas_annotations(notes, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def _push_revision_history(notes: dict[str, str], old_revision: str) -> None:
    history = [r for r in notes.get(REVISION_HISTORY, "").split(",") if r]
    history.append(old_revision)
    while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
        history.pop(0)
    notes[REVISION_HISTORY] = ",".join(history)


def set_deployment_revision(d: Obj, value: str) -> bool:
    notes = d["metadata"].setdefault("annotations", {})
    if notes.get(REVISION) == value:
        return False
    notes[REVISION] = value
    return True


# -- conditions and status ---------------------------------------------------------------------


def new_condition(kind: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = now_rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def set_condition(status: Obj, condition: Obj) -> None:
    """Upstream's SetDeploymentCondition: same status and reason is no change; the transition
    time only moves when the status does; the condition goes to the end of the list."""
    current = get_condition(status, condition["type"])
    if current is not None and (current["status"], current.get("reason")) == (
        condition["status"],
        condition.get("reason"),
    ):
        return
    if current is not None and current["status"] == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status["conditions"] = [*(status.get("conditions") or []), condition]


def remove_condition(status: Obj, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def calculate_status(all_rs: list[Obj], new_rs: Obj | None, d: Obj, now: datetime) -> Obj:
    """Counts summed over the ReplicaSets, plus the Available condition (calculateStatus)."""
    available = sum(status_count(rs, "availableReplicas") for rs in all_rs)
    counts = {
        "observedGeneration": int(d["metadata"].get("generation") or 0),
        "replicas": sum(status_count(rs, "replicas") for rs in all_rs),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(replicas(rs) for rs in all_rs) - available, 0),
    }
    status: Obj = {k: v for k, v in counts.items() if v}  # omitempty, as the Go type serializes
    old_status = d.get("status") or {}
    if old_status.get("conditions"):
        status["conditions"] = [dict(c) for c in old_status["conditions"]]
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        message = "Deployment has minimum availability."
        condition = new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", message, now)
    else:
        message = "Deployment does not have minimum availability."
        condition = new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable", message, now)
    set_condition(status, condition)
    return status


def _count(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (
        _count(status, "updatedReplicas") == want
        and _count(status, "replicas") == want
        and _count(status, "availableReplicas") == want
        and _count(status, "observedGeneration") >= int(d["metadata"].get("generation") or 0)
    )


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}
    old_leftover = _count(old, "replicas") - _count(old, "updatedReplicas")
    new_leftover = _count(new, "replicas") - _count(new, "updatedReplicas")
    return (
        _count(new, "updatedReplicas") > _count(old, "updatedReplicas")
        or new_leftover < old_leftover
        or _count(new, "readyReplicas") > _count(old, "readyReplicas")
        or _count(new, "availableReplicas") > _count(old, "availableReplicas")
    )


def progress_due(d: Obj, condition: Obj | None) -> datetime | None:
    """When a Progressing condition with no further progress times out."""
    if condition is None or not has_deadline(d):
        return None
    since = parse_time(condition.get("lastUpdateTime"))
    if since is None:
        return None
    return since + timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    due = progress_due(d, condition)
    return due is not None and due < now


def replica_failures(all_rs: list[Obj], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any (getReplicaFailures)."""

    def failures(rs: Obj) -> list[Obj]:
        return [
            {
                "type": REPLICA_FAILURE,
                "status": c.get("status"),
                "lastUpdateTime": c.get("lastTransitionTime"),
                "lastTransitionTime": c.get("lastTransitionTime"),
                "reason": c.get("reason"),
                "message": c.get("message"),
            }
            for c in (rs.get("status") or {}).get("conditions") or []
            if c.get("type") == REPLICA_FAILURE
        ]

    found = failures(new_rs) if new_rs is not None else []
    return found or [c for rs in all_rs for c in failures(rs)]


# -- scaling -----------------------------------------------------------------------------------


def find_active_or_latest(new_rs: Obj | None, old: list[Obj]) -> Obj | None:
    """The only ReplicaSet with pods, or the newest when none has any (FindActiveOrLatest)."""
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=creation_order, reverse=True)
    candidates = [*newest_first, *([new_rs] if new_rs is not None else [])]
    active = [rs for rs in candidates if replicas(rs) > 0]
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    want = replicas(d)
    return (
        replicas(rs) == want and desired == want and status_count(rs, "availableReplicas") == want
    )


def _round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def rs_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """This ReplicaSet's share of a scaling of the whole Deployment (GetReplicaSetProportion)."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(d) == 0:
        fraction = -replicas(rs)
    else:
        try:
            before = int(annotations_of(rs).get(MAX_REPLICAS, ""))
        except ValueError:
            before = 0
        before = before or status_count(d, "replicas")
        if before == 0:
            return 0
        after = replicas(d) + max_surge(d)
        fraction = _round_half_away(replicas(rs) * after / before) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active: list[Obj]) -> list[tuple[Obj, int]]:
    """New sizes for the active ReplicaSets when a rolling Deployment is scaled mid-rollout:
    each gets its share, leftovers go to the largest (newest on ties when scaling up, oldest
    when scaling down)."""
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - sum(replicas(rs) for rs in active)
    ordered = sorted(active, key=creation_order, reverse=to_add > 0)
    ordered.sort(key=lambda rs: -replicas(rs))
    sizes, added = [], 0
    for rs in ordered:
        share = rs_proportion(rs, d, to_add, added) if to_add else 0
        sizes.append(replicas(rs) + share)
        added += share
    if ordered and to_add:
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return list(zip(ordered, sizes, strict=True))


# -- the controller ----------------------------------------------------------------------------


@dataclass
class _Sync:
    """One reconciliation's view: the Deployment (a working copy) and its ReplicaSets, kept
    current as this controller writes them."""

    d: Obj
    rs_list: list[Obj]
    new_uid: str | None = None

    @property
    def key(self) -> Key:
        return object_key(self.d)

    @property
    def new(self) -> Obj | None:
        return next((rs for rs in self.rs_list if rs["metadata"]["uid"] == self.new_uid), None)

    @property
    def old(self) -> list[Obj]:
        return [rs for rs in self.rs_list if rs["metadata"]["uid"] != self.new_uid]

    def replace(self, rs: Obj) -> None:
        uid = rs["metadata"]["uid"]
        self.rs_list = [rs if r["metadata"]["uid"] == uid else r for r in self.rs_list]


def _copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


class DeploymentController(Controller):
    """Rolls Deployments out by creating, scaling and deleting their ReplicaSets."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._deploy_type = served_type(cluster, DEPLOYMENTS)
        self._rs_type = served_type(cluster, REPLICASETS)
        self._replicasets = OwnerIndex()
        self._pods = OwnerIndex()
        self._deployments: dict[str, Key] = {}
        self._rs_keys: dict[str, Key] = {}
        self.queue = WorkQueue(self, self._reconcile)

    # -- events ------------------------------------------------------------------------------

    async def resync(self) -> None:
        for entry in self.cluster.store.list(PODS):
            self._pods.observe(entry.obj)
        for entry in self.cluster.store.list(REPLICASETS):
            self._replicasets.observe(entry.obj)
            self._rs_keys[entry.obj["metadata"]["uid"]] = object_key(entry.obj)
        for entry in self.cluster.store.list(DEPLOYMENTS):
            self._deployment_changed(entry.obj, deleted=False)
        await self.queue.drain()

    async def handle(self, event: Event) -> None:
        deleted = event.type == "DELETED"
        if event.skey == PODS:
            self._pod_changed(event.entry.obj, deleted)
        elif event.skey == REPLICASETS:
            self._replicaset_changed(event.entry.obj, deleted)
        elif event.skey == DEPLOYMENTS:
            self._deployment_changed(event.entry.obj, deleted)

    def _deployment_changed(self, d: Obj, deleted: bool) -> None:
        uid = d["metadata"]["uid"]
        if deleted:
            self._deployments.pop(uid, None)
            return
        self._deployments[uid] = object_key(d)
        self.queue.add(object_key(d))

    def _replicaset_changed(self, rs: Obj, deleted: bool) -> None:
        key, uid = object_key(rs), rs["metadata"]["uid"]
        if deleted:
            self._rs_keys.pop(uid, None)
        else:
            self._rs_keys[uid] = key
        for owner in self._replicasets.observe(rs, deleted):
            self._queue_uid(owner)
        if not deleted and self._replicasets.is_orphan(key):
            self._queue_adopters(rs)

    def _pod_changed(self, pod: Obj, deleted: bool) -> None:
        owners = self._pods.observe(pod, deleted)
        if not deleted:
            return
        # Recreate waits until every old pod is gone, which no ReplicaSet status reports.
        for rs_uid in owners:
            rs_key = self._rs_keys.get(rs_uid)
            rs = self.cluster.store.get(REPLICASETS, *rs_key) if rs_key else None
            d_key = self._deployments.get(controller_uid(rs.obj) or "") if rs else None
            d = self.cluster.store.get(DEPLOYMENTS, *d_key) if d_key else None
            if d is not None and not is_rolling(d.obj):
                self.queue.add(object_key(d.obj))

    def _queue_uid(self, uid: str) -> None:
        key = self._deployments.get(uid)
        if key is not None:
            self.queue.add(key)

    def _queue_adopters(self, rs: Obj) -> None:
        namespace = rs["metadata"].get("namespace", "")
        labels = rs["metadata"].get("labels") or {}
        for entry in self.cluster.store.list(DEPLOYMENTS, namespace):
            selector = (entry.obj.get("spec") or {}).get("selector")
            if label_selector_from_dict(selector).matches(labels):
                self.queue.add(object_key(entry.obj))

    # -- the sync loop -----------------------------------------------------------------------

    async def _reconcile(self, key: Key) -> None:
        entry = self.cluster.store.get(DEPLOYMENTS, *key)
        if entry is None:
            return
        s = _Sync(_copy(entry.obj), await self._claim_replicasets(entry.obj))
        if s.d["metadata"].get("deletionTimestamp"):
            await self._sync_revision(s, create=False)
            await self._sync_status(s)
            return
        await self._check_paused_conditions(s)
        if s.d["spec"].get("paused") or await self._is_scaling_event(s):
            await self._sync_scale(s)
        elif is_rolling(s.d):
            await self._rollout_rolling(s)
        else:
            await self._rollout_recreate(s)

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        """Its ReplicaSets: owned ones still matching, and matching orphans adopted."""
        meta = d["metadata"]
        uid, namespace = meta["uid"], meta.get("namespace", "")
        deleting = bool(meta.get("deletionTimestamp"))
        selector = label_selector_from_dict((d.get("spec") or {}).get("selector"))
        claimed = []
        for rs in self._rs_objects(self._replicasets.owned(uid)):
            if selector.matches(rs["metadata"].get("labels") or {}):
                claimed.append(rs)
            elif not deleting:
                await self._set_owners(rs, other_owners(rs, uid))
        orphans = self._rs_objects((namespace, n) for n in self._replicasets.orphans(namespace))
        for rs in orphans:
            labels = rs["metadata"].get("labels") or {}
            if deleting or rs["metadata"].get("deletionTimestamp") or not selector.matches(labels):
                continue
            owners = [*other_owners(rs, uid), controller_ref(d, "Deployment")]
            claimed.append(await self._set_owners(rs, owners))
        return claimed

    def _rs_objects(self, keys: Any) -> list[Obj]:
        found = (self.cluster.store.get(REPLICASETS, ns, name) for ns, name in keys)
        return [entry.obj for entry in found if entry is not None]

    async def _check_paused_conditions(self, s: _Sync) -> None:
        """Progressing is Unknown/DeploymentPaused while paused, DeploymentResumed after."""
        if not has_deadline(s.d):
            return
        status = s.d.setdefault("status", {})
        current = get_condition(status, PROGRESSING)
        if current is not None and current.get("reason") == TIMED_OUT:
            return
        was_paused = current is not None and current.get("reason") == PAUSED
        paused = bool(s.d["spec"].get("paused"))
        if paused == was_paused:
            return
        now = self.clock.now()
        if paused:
            condition = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
        else:
            condition = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
        set_condition(status, condition)
        await self._save(s)

    async def _is_scaling_event(self, s: _Sync) -> bool:
        """Whether an active ReplicaSet was sized for another `spec.replicas`."""
        await self._sync_revision(s, create=False)
        want = str(replicas(s.d))
        for rs in s.rs_list:
            desired = annotations_of(rs).get(DESIRED_REPLICAS)
            if replicas(rs) > 0 and desired is not None and desired != want:
                return True
        return False

    async def _sync_scale(self, s: _Sync) -> None:
        """Scaling, or a paused Deployment: resize without rolling anything out."""
        await self._sync_revision(s, create=False)
        await self._scale(s)
        if s.d["spec"].get("paused"):
            await self._cleanup(s)
        await self._sync_status(s)

    async def _rollout_rolling(self, s: _Sync) -> None:
        await self._sync_revision(s, create=True)
        if await self._scale_up_new(s) or await self._scale_down_old(s):
            await self._sync_rollout_status(s)
            return
        if deployment_complete(s.d, s.d.get("status") or {}):
            await self._cleanup(s)
        await self._sync_rollout_status(s)

    async def _rollout_recreate(self, s: _Sync) -> None:
        """Old ReplicaSets to zero, wait for every old pod to go, then the new one up."""
        await self._sync_revision(s, create=False)
        scaled = False
        for rs in s.old:
            if replicas(rs) > 0:
                scaled = await self._scale_rs(s, rs, 0) or scaled
        if scaled or self._old_pods_running(s):
            await self._sync_rollout_status(s)
            return
        if s.new is None:
            await self._sync_revision(s, create=True)
        new_rs = s.new
        if new_rs is not None:
            await self._scale_rs(s, new_rs, replicas(s.d))
        if deployment_complete(s.d, s.d.get("status") or {}):
            await self._cleanup(s)
        await self._sync_rollout_status(s)

    def _old_pods_running(self, s: _Sync) -> bool:
        if any(status_count(rs, "replicas") for rs in s.old):
            return True
        for rs in s.old:
            for key in self._pods.owned(rs["metadata"]["uid"]):
                pod = self.cluster.store.get(PODS, *key)
                phase = (pod.obj.get("status") or {}).get("phase") if pod else "Succeeded"
                if phase not in ("Succeeded", "Failed"):
                    return True
        return False

    # -- the new ReplicaSet and revisions ----------------------------------------------------

    async def _sync_revision(self, s: _Sync, create: bool) -> None:
        """Find (or create) the new ReplicaSet and bring revisions up to date
        (getAllReplicaSetsAndSyncRevision)."""
        found = find_new(s.d, s.rs_list)
        s.new_uid = found["metadata"]["uid"] if found is not None else None
        new_revision = max((revision(rs) for rs in s.old), default=0) + 1
        if found is not None:
            await self._refresh_new(s, found, new_revision)
        elif create:
            await self._create_new(s, new_revision)

    async def _refresh_new(self, s: _Sync, rs: Obj, new_revision: int) -> None:
        notes = annotations_of(rs)
        changed = set_new_rs_annotations(s.d, notes, new_revision, exists=True)
        min_ready = int(s.d["spec"].get("minReadySeconds") or 0)
        spec: Obj = {}
        if int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
            spec["minReadySeconds"] = min_ready
        if changed or spec:
            await self._patch_rs(s, rs, {"metadata": {"annotations": notes}, "spec": spec})
            return
        needs_update = set_deployment_revision(s.d, annotations_of(rs).get(REVISION, ""))
        status = s.d.setdefault("status", {})
        if has_deadline(s.d) and get_condition(status, PROGRESSING) is None:
            message = f'Found new replica set "{rs["metadata"]["name"]}"'
            now = self.clock.now()
            set_condition(status, new_condition(PROGRESSING, "True", FOUND_NEW_RS, message, now))
            needs_update = True
        if needs_update:
            await self._save(s)

    def _new_rs_body(self, s: _Sync, new_revision: int) -> Obj:
        d = s.d
        template = _copy(d["spec"].get("template") or {})
        pod_hash = template_hash(template, (d.get("status") or {}).get("collisionCount"))
        labels = {**(template.get("metadata") or {}).get("labels", {}), POD_TEMPLATE_HASH: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = _copy(d["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
        spec: Obj = {"replicas": 0, "selector": selector, "template": template}
        if d["spec"].get("minReadySeconds"):
            spec["minReadySeconds"] = d["spec"]["minReadySeconds"]
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{pod_hash}",
                "namespace": d["metadata"].get("namespace", ""),
                "labels": dict(labels),
                "ownerReferences": [controller_ref(d, "Deployment")],
            },
            "spec": spec,
        }
        spec["replicas"] = new_rs_replicas(d, [*s.old, rs], rs)
        notes: dict[str, str] = {}
        set_new_rs_annotations(d, notes, new_revision, exists=False)
        rs["metadata"]["annotations"] = notes
        return rs

    async def _create_new(self, s: _Sync, new_revision: int) -> None:
        body = self._new_rs_body(s, new_revision)
        created, existed = await self._create_rs(s, body)
        self._replicasets.observe(created)
        self._rs_keys[created["metadata"]["uid"]] = object_key(created)
        s.new_uid = created["metadata"]["uid"]
        if s.new is None:
            s.rs_list.append(created)
        needs_update = set_deployment_revision(s.d, str(new_revision))
        if not existed and has_deadline(s.d):
            message = f'Created new replica set "{created["metadata"]["name"]}"'
            now = self.clock.now()
            condition = new_condition(PROGRESSING, "True", NEW_RS_CREATED, message, now)
            set_condition(s.d.setdefault("status", {}), condition)
            needs_update = True
        if needs_update:
            await self._save(s)

    async def _create_rs(self, s: _Sync, body: Obj) -> tuple[Obj, bool]:
        """Create the new ReplicaSet; (it, whether it already existed). A different ReplicaSet
        holding the name is a hash collision: `collisionCount` goes up and the next sync
        hashes anew."""
        namespace, name = object_key(body)
        try:
            result = await self.cluster.create(self._rs_type, namespace, body, OPTIONS)
        except errors.ApiError as exc:
            status = s.d.setdefault("status", {})
            if exc.reason == "AlreadyExists":
                entry = self.cluster.store.get(REPLICASETS, namespace, name)
                existing = entry.obj if entry is not None else None
                if existing is not None and self._is_ours(s.d, existing):
                    return existing, True
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self._save(s)
            elif has_deadline(s.d) and not self._namespace_terminating(namespace):
                message = f'Failed to create new replica set "{name}": {exc.message}'
                now = self.clock.now()
                condition = new_condition(PROGRESSING, "False", RS_CREATE_ERROR, message, now)
                set_condition(status, condition)
                await self._save(s)
            raise
        return result.obj, False

    def _namespace_terminating(self, namespace: str) -> bool:
        entry = self.cluster.store.get(NAMESPACES, "", namespace)
        return entry is None or bool(entry.obj["metadata"].get("deletionTimestamp"))

    @staticmethod
    def _is_ours(d: Obj, rs: Obj) -> bool:
        template = (rs.get("spec") or {}).get("template") or {}
        return controller_uid(rs) == d["metadata"]["uid"] and equal_ignore_hash(
            d["spec"].get("template") or {}, template
        )

    # -- scaling -----------------------------------------------------------------------------

    async def _scale_up_new(self, s: _Sync) -> bool:
        """reconcileNewReplicaSet: the new ReplicaSet up within maxSurge (or down to size)."""
        new_rs = s.new
        if new_rs is None or replicas(new_rs) == replicas(s.d):
            return False
        if replicas(new_rs) > replicas(s.d):
            return await self._scale_rs(s, new_rs, replicas(s.d))
        return await self._scale_rs(s, new_rs, new_rs_replicas(s.d, s.rs_list, new_rs))

    async def _scale_down_old(self, s: _Sync) -> bool:
        """reconcileOldReplicaSets: unhealthy old pods first, then old ReplicaSets down as far
        as maxUnavailable allows."""
        if sum(replicas(rs) for rs in s.old) == 0:
            return False
        min_available = replicas(s.d) - max_unavailable(s.d)
        new_rs = s.new
        new_unavailable = replicas(new_rs) - status_count(new_rs, "availableReplicas")
        budget = sum(replicas(rs) for rs in s.rs_list) - min_available - new_unavailable
        if budget <= 0:
            return False
        cleaned = await self._scale_down_unhealthy(s, budget)
        available = sum(status_count(rs, "availableReplicas") for rs in s.rs_list)
        return await self._scale_down_available(s, available - min_available) or cleaned

    async def _scale_down_unhealthy(self, s: _Sync, budget: int) -> bool:
        done = 0
        for rs in sorted(s.old, key=creation_order):
            if done >= budget:
                break
            unhealthy = replicas(rs) - status_count(rs, "availableReplicas")
            if replicas(rs) == 0 or unhealthy <= 0:
                continue
            step = min(budget - done, unhealthy)
            await self._scale_rs(s, rs, replicas(rs) - step)
            done += step
        return done > 0

    async def _scale_down_available(self, s: _Sync, budget: int) -> bool:
        done = 0
        for rs in sorted(s.old, key=creation_order):
            if done >= budget:
                break
            if replicas(rs) == 0:
                continue
            step = min(replicas(rs), budget - done)
            await self._scale_rs(s, rs, replicas(rs) - step)
            done += step
        return done > 0

    async def _scale(self, s: _Sync) -> None:
        """Upstream's `scale`: one active ReplicaSet takes the new size; a saturated new one
        retires the old; otherwise every active one gets its proportion."""
        want = replicas(s.d)
        target = find_active_or_latest(s.new, s.old)
        if target is not None:
            await self._scale_rs(s, target, want)
            return
        if is_saturated(s.d, s.new):
            for rs in s.old:
                if replicas(rs) > 0:
                    await self._scale_rs(s, rs, 0)
            return
        if is_rolling(s.d):
            active = [rs for rs in s.rs_list if replicas(rs) > 0]
            for rs, size in proportional_sizes(s.d, active):
                await self._scale_rs(s, rs, size, annotate=True)

    async def _scale_rs(self, s: _Sync, rs: Obj, size: int, annotate: bool = False) -> bool:
        """Resize one ReplicaSet, stamping desired/max replicas; whether its size changed."""
        resize = replicas(rs) != size
        if not resize and not annotate:
            return False
        notes = annotations_of(rs)
        d = s.d
        relabel = set_replicas_annotations(notes, replicas(d), replicas(d) + max_surge(d))
        if resize or relabel:
            patch = {"metadata": {"annotations": notes}, "spec": {"replicas": size}}
            await self._patch_rs(s, rs, patch)
        return resize

    async def _cleanup(self, s: _Sync) -> None:
        """Delete the oldest idle ReplicaSets beyond `revisionHistoryLimit`."""
        limit = s.d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in s.old if not rs["metadata"].get("deletionTimestamp")]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        alive.sort(key=lambda rs: (revision(rs), creation_order(rs)))
        for rs in alive[:excess]:
            generation = int(rs["metadata"].get("generation") or 0)
            busy = status_count(rs, "replicas") or replicas(rs)
            if busy or generation > status_count(rs, "observedGeneration"):
                continue
            try:
                await self.cluster.delete(self._rs_type, *object_key(rs))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise

    # -- status ------------------------------------------------------------------------------

    async def _sync_status(self, s: _Sync) -> None:
        """syncDeploymentStatus: counts and Available only (scaling, paused, deleting)."""
        status = calculate_status(s.rs_list, s.new, s.d, self.clock.now())
        if status != (s.d.get("status") or {}):
            s.d["status"] = status
            await self._save(s)

    async def _sync_rollout_status(self, s: _Sync) -> None:
        """syncRolloutStatus: counts, Available, and Progressing judged against the deadline."""
        now = self.clock.now()
        d = s.d
        status = calculate_status(s.rs_list, s.new, d, now)
        if not has_deadline(d):
            remove_condition(status, PROGRESSING)
        current = get_condition(d.get("status") or {}, PROGRESSING)
        settled = (
            _count(status, "replicas") == _count(status, "updatedReplicas")
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        if has_deadline(d) and not settled:
            self._judge_progress(s, status, current, now)
        failures = replica_failures(s.rs_list, s.new)
        if failures:
            set_condition(status, failures[0])
        else:
            remove_condition(status, REPLICA_FAILURE)
        if status == (d.get("status") or {}):
            self._requeue_stuck(s, status, now)
            return
        d["status"] = status
        await self._save(s)

    def _judge_progress(self, s: _Sync, status: Obj, current: Obj | None, now: datetime) -> None:
        d, new_rs = s.d, s.new
        subject = (
            f'ReplicaSet "{new_rs["metadata"]["name"]}"'
            if new_rs is not None
            else f'Deployment "{d["metadata"]["name"]}"'
        )
        if deployment_complete(d, status):
            message = f"{subject} has successfully progressed."
            set_condition(
                status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now)
            )
        elif deployment_progressing(d, status):
            message = f"{subject} is progressing."
            condition = new_condition(PROGRESSING, "True", RS_UPDATED, message, now)
            if current is not None:
                if current["status"] == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, condition)
        elif deployment_timed_out(d, status, now):
            message = f"{subject} has timed out progressing."
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, message, now))

    def _requeue_stuck(self, s: _Sync, status: Obj, now: datetime) -> None:
        """No progress this time: look again when the progress deadline would pass."""
        current = get_condition(s.d.get("status") or {}, PROGRESSING)
        if current is None or current.get("reason") == TIMED_OUT:
            return
        if deployment_complete(s.d, status):
            return
        due = progress_due(s.d, current)
        if due is not None:
            wait = max((due - now).total_seconds(), 0.0)
            self.queue.add_after(s.key, wait + DEADLINE_SLACK)

    # -- writes ------------------------------------------------------------------------------

    async def _save(self, s: _Sync) -> None:
        """Write the working copy's revision annotation and status where they differ from the
        stored Deployment (409 when it changed since it was read: its event retries)."""
        d = s.d
        namespace, name = s.key
        entry = self.cluster.store.get(DEPLOYMENTS, namespace, name)
        if entry is None:
            raise errors.not_found("deployments", "apps", name)
        current = entry.obj
        rv = d["metadata"]["resourceVersion"]
        if current["metadata"]["resourceVersion"] != rv:
            raise errors.conflict("deployments", "apps", name, "the object has been modified")
        wanted = annotations_of(d).get(REVISION)
        if wanted is not None and wanted != annotations_of(current).get(REVISION):
            patch = {"metadata": {"annotations": {REVISION: wanted}, "resourceVersion": rv}}
            raw = orjson.dumps(patch)
            patched = await self.cluster.patch(
                self._deploy_type, namespace, name, PATCH_MERGE, raw, OPTIONS
            )
            current = patched.obj
        if d.get("status") != current.get("status"):
            body = {**current, "status": d.get("status") or {}}
            result = await self.cluster.update(
                self._deploy_type, namespace, name, body, OPTIONS, "status"
            )
            current = result.obj
        s.d = _copy(current)

    async def _patch_rs(self, s: _Sync, rs: Obj, patch: Obj) -> None:
        namespace, name = object_key(rs)
        old_notes = annotations_of(rs)
        meta = patch.setdefault("metadata", {})
        notes = meta.pop("annotations", {})
        changed = {k: v for k, v in notes.items() if old_notes.get(k) != v}
        if changed:
            meta["annotations"] = changed
        meta["resourceVersion"] = rs["metadata"]["resourceVersion"]
        if not patch.get("spec"):
            patch.pop("spec", None)
        raw = orjson.dumps(patch)
        result = await self.cluster.patch(self._rs_type, namespace, name, PATCH_MERGE, raw, OPTIONS)
        self._replicasets.observe(result.obj)
        s.replace(result.obj)

    async def _set_owners(self, rs: Obj, owners: list[Any]) -> Obj:
        stored = await set_owners(self.cluster, self._rs_type, rs, owners, OPTIONS)
        self._replicasets.observe(stored)
        return stored
