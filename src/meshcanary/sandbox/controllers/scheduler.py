"""The default scheduler: binds each pending pod to the Ready, schedulable node with fewest pods.

Nothing runs in the sandbox until a pod has a node, and a canary rehearsal wants pods spread and
placement rules (nodeSelector, required node affinity, taints and tolerations, cordoned or
NotReady nodes) honoured, with the real answer when nothing fits: condition PodScheduled False,
reason Unschedulable, and kube-scheduler's "0/N nodes are available: ..." message. Resources
(requests, the nodes' `pods` capacity) are not accounted: a sandbox of 3 nodes must hold
thousands of pods.

The sandbox binds by setting `spec.nodeName` with a patch (the API server allows it while the
pod has no node; a real scheduler posts pods/binding), then writes PodScheduled True through the
status subresource. Per-node pod counts are kept incrementally from pod events, so choosing a
node costs O(nodes), never a scan of the pods; unschedulable pods are retried when a node
changes. `resync` rebuilds the counts from the store and schedules whatever is still pending.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.store import Entry, Event
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.kubelet import NODES, PODS, EventRecorder
from meshcanary.sandbox.controllers.stages import Condition, Pod, set_condition

SCHEDULER_NAME: Final = "default-scheduler"
OPTIONS: Final = WriteOptions(field_manager=SCHEDULER_NAME)
NOT_READY_TAINT: Final = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT: Final = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
MISMATCH: Final = "node(s) didn't match Pod's node affinity/selector"
CORDONED: Final = "node(s) were unschedulable"

PodKey = tuple[str, str]


@dataclass(frozen=True)
class NodeInfo:
    """What scheduling needs of a node; NotReady and cordoned nodes carry the taints the node
    lifecycle controller would give them."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> NodeInfo:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        taints = list(spec.get("taints") or [])
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if not ready:
            taints.append(NOT_READY_TAINT)
        if spec.get("unschedulable"):
            taints.append(UNSCHEDULABLE_TAINT)
        labels = dict(node["metadata"].get("labels") or {})
        return cls(node["metadata"]["name"], labels, tuple(taints))


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether some toleration tolerates `taint` (v1.Toleration.ToleratesTaint)."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        if (toleration.get("operator") or "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def _requirement(req: Mapping[str, Any], value: str | None) -> bool:
    operator, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def _term_matches(term: Mapping[str, Any], node: NodeInfo) -> bool:
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node
    return all(_requirement(e, node.labels.get(e.get("key", ""))) for e in expressions) and all(
        _requirement(f, node.name if f.get("key") == "metadata.name" else None) for f in fields
    )


def selects_node(pod: Pod, node: NodeInfo) -> bool:
    """spec.nodeSelector and required node affinity (terms ORed, requirements ANDed)."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(term, node) for term in terms)


def misfit(pod: Pod, node: NodeInfo) -> str | None:
    """Why `pod` cannot go to `node`, in kube-scheduler's words (None: it fits)."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node.taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not tolerates(tolerations, taint):
            if taint.get("key") == UNSCHEDULABLE_TAINT["key"]:
                return CORDONED
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None if selects_node(pod, node) else MISMATCH


def unschedulable_message(nodes: int, reasons: Counter[str]) -> str:
    if not nodes:
        return "no nodes available to schedule pods"
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return (
        f"0/{nodes} nodes are available: {parts}. preemption: 0/{nodes} nodes are available:"
        f" {nodes} Preemption is not helpful for scheduling."
    )


def _natural(name: str) -> tuple[Any, ...]:
    """node-2 before node-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _key(pod: Pod) -> PodKey:
    return pod["metadata"].get("namespace", ""), pod["metadata"]["name"]


def wants_scheduling(pod: Pod) -> bool:
    spec, meta = pod.get("spec") or {}, pod["metadata"]
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
        and not meta.get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
    )


def _bound_node(pod: Pod) -> str | None:
    """The node the pod occupies: bound and not finished."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return (pod.get("spec") or {}).get("nodeName") or None


class Scheduler(Controller):
    """Places pods on nodes, spreading them by pod count."""

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self.events = EventRecorder(cluster, SCHEDULER_NAME, self.clock)
        self._nodes: dict[str, NodeInfo] = {}
        self._placed: dict[PodKey, str] = {}
        self.counts: Counter[str] = Counter()
        self._unschedulable: set[PodKey] = set()
        self._queued: set[PodKey] = set()

    async def resync(self) -> None:
        self._nodes = {e.obj["metadata"]["name"]: NodeInfo.of(e.obj) for e in self._list(NODES)}
        pods = self._list(PODS)
        for entry in pods:
            self._place(_key(entry.obj), _bound_node(entry.obj))
        for entry in pods:
            if wants_scheduling(entry.obj):
                await self._enqueue(entry.obj)

    async def handle(self, event: Event) -> None:
        if event.skey == NODES:
            await self._on_node(event.entry.obj["metadata"]["name"])
        elif event.skey == PODS:
            await self._on_pod(event)

    def _list(self, skey: str) -> list[Entry]:
        return self.cluster.store.list(skey)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _place(self, key: PodKey, node: str | None) -> None:
        old = self._placed.get(key)
        if old == node:
            return
        if old is not None:
            self.counts[old] -= 1
        if node is None:
            self._placed.pop(key, None)
        else:
            self._placed[key] = node
            self.counts[node] += 1

    async def _on_node(self, name: str) -> None:
        entry = self.cluster.store.get(NODES, "", name)
        before = self._nodes.get(name)
        if entry is None:
            self._nodes.pop(name, None)
        else:
            self._nodes[name] = NodeInfo.of(entry.obj)
        if self._nodes.get(name) != before:
            await self._retry_unschedulable()

    async def _on_pod(self, event: Event) -> None:
        key = (event.namespace, event.entry.obj["metadata"]["name"])
        if event.type == "DELETED":
            self._place(key, None)
            self._unschedulable.discard(key)
            return
        entry = self.cluster.store.get(PODS, *key)
        if entry is None:
            return
        self._place(key, _bound_node(entry.obj))
        if wants_scheduling(entry.obj):
            await self._enqueue(entry.obj)
        else:
            self._unschedulable.discard(key)

    async def _enqueue(self, pod: Pod) -> None:
        delay = self.settings.pod_schedule_delay
        if delay <= 0:
            await self._schedule(pod)
            return
        key = _key(pod)
        if key not in self._queued:
            self._queued.add(key)
            self.later(delay, functools.partial(self._schedule_queued, key))

    async def _schedule_queued(self, key: PodKey) -> None:
        self._queued.discard(key)
        entry = self.cluster.store.get(PODS, *key)
        if entry is not None and wants_scheduling(entry.obj):
            await self._schedule(entry.obj)

    async def _retry_unschedulable(self) -> None:
        for key in sorted(self._unschedulable):
            entry = self.cluster.store.get(PODS, *key)
            if entry is not None and wants_scheduling(entry.obj):
                await self._schedule(entry.obj)
            else:
                self._unschedulable.discard(key)

    # -- deciding and writing ----------------------------------------------------------------------

    def choose(self, pod: Pod) -> tuple[str | None, Counter[str]]:
        """The fitting node with the fewest pods (ties: by name), and why the others failed."""
        fits: list[str] = []
        reasons: Counter[str] = Counter()
        for info in self._nodes.values():
            reason = misfit(pod, info)
            if reason is None:
                fits.append(info.name)
            else:
                reasons[reason] += 1
        if not fits:
            return None, reasons
        return min(fits, key=lambda name: (self.counts[name], _natural(name))), reasons

    async def _schedule(self, pod: Pod) -> None:
        node, reasons = self.choose(pod)
        if node is None:
            await self._mark_unschedulable(pod, unschedulable_message(len(self._nodes), reasons))
        else:
            await self._bind(pod, node)

    async def _bind(self, pod: Pod, node: str) -> None:
        key = _key(pod)
        rt = self.cluster.types_for(PODS)
        assert rt is not None
        self._place(key, node)
        self._unschedulable.discard(key)
        body = {"metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]}}
        body["spec"] = {"nodeName": node}
        try:
            bound = await self.cluster.patch(rt, *key, PATCH_MERGE, orjson.dumps(body), OPTIONS)
        except errors.ApiError:
            self._place(key, None)
            raise
        await self._set_scheduled(bound.obj, Condition("PodScheduled", "True"))
        message = f"Successfully assigned {key[0]}/{key[1]} to {node}"
        await self.events.record(bound.obj, "Scheduled", message)

    async def _mark_unschedulable(self, pod: Pod, message: str) -> None:
        self._unschedulable.add(_key(pod))
        if await self._set_scheduled(
            pod, Condition("PodScheduled", "False", "Unschedulable", message)
        ):
            await self.events.record(pod, "FailedScheduling", message, "Warning")

    async def _set_scheduled(self, pod: Pod, wanted: Condition) -> bool:
        """Set the PodScheduled condition unless it already says this; whether it wrote."""
        conditions = (pod.get("status") or {}).get("conditions") or []
        for condition in conditions:
            if condition.get("type") == wanted.type and (
                condition.get("status"),
                condition.get("reason", ""),
                condition.get("message", ""),
            ) == (wanted.status, wanted.reason, wanted.message):
                return False
        rt = self.cluster.types_for(PODS)
        assert rt is not None
        patch = {"status": {"conditions": set_condition(conditions, wanted, self.clock.now())}}
        await self.cluster.patch(
            rt, *_key(pod), PATCH_MERGE, orjson.dumps(patch), OPTIONS, "status"
        )
        return True
