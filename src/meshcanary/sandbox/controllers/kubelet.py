"""The simulated kubelet: moves every pod bound to a node through the stages of `stages.py`.

A rehearsal of a canary upgrade needs pods that start, become Ready, finish, crash and go away
on their own, with realistic status fields, but no containers. Like kwok managing all nodes,
this controller runs every pod bound to a node (whichever node it names): for each pod event it
picks the stage the pod is in (a pure function of the stored pod and the faults that select it)
and arms one timer for it on the injected clock; when the timer fires it re-reads the pod, checks
the stage still applies, and writes the stage's next status through the `status` subresource (or
deletes the pod with gracePeriodSeconds 0). Transitions are recorded as Events (Started,
BackOff, Killing), so `kubectl describe pod` tells the story.

Work per pod event is O(1): a stage lookup and at most one timer; timers are keyed by pod and
re-armed only when the stage changes, so its own writes never loop. Everything it needs lives in
the store, so after a restart `resync` picks every pod up where it is: pod IPs in use are read
back from the pods, and each pod simply gets the timer of its current stage again.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import random
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import NAMESPACES, PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.clock import Clock
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.stages import (
    FAULTS,
    FaultSpec,
    NextStatus,
    Pod,
    PodFault,
    Stage,
    StatusContext,
    event_message,
    is_ready,
    next_status,
    parse_faults,
    pod_fault_effect,
    select_stage,
)

log = logging.getLogger(__name__)

PODS: Final = "/pods"
NODES: Final = "/nodes"
EVENTS: Final = "/events"
POD_CIDR: Final = ipaddress.ip_network("10.244.0.0/16")
RETRY_SECONDS: Final = 1.0
OPTIONS: Final = WriteOptions(field_manager="kubelet")

PodKey = tuple[str, str]


class PodIPs:
    """Pod IPs of a cluster-wide CIDR, each held by at most one pod (kept from the pods)."""

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network = POD_CIDR) -> None:
        self._base = int(network.network_address)
        self._size = network.num_addresses
        self._used: set[int] = set()
        self._next = 2

    def reserve(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is not None:
            self._used.add(offset)

    def release(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is not None:
            self._used.discard(offset)

    def allocate(self) -> str:
        usable = self._size - 3  # not the network address, .1 (the gateway) or broadcast
        for _ in range(usable):
            offset = self._next
            self._next = 2 + (self._next - 1) % usable
            if offset not in self._used:
                self._used.add(offset)
                return str(ipaddress.ip_address(self._base + offset))
        raise RuntimeError("the pod network has no free address left")

    def _offset(self, ip: str) -> int | None:
        try:
            offset = int(ipaddress.ip_address(ip)) - self._base
        except ValueError:
            return None
        return offset if 0 < offset < self._size else None


class EventRecorder:
    """Core/v1 Events about pods, one per (pod, reason) with a count, as client-go aggregates."""

    def __init__(self, cluster: Cluster, component: str, clock: Clock) -> None:
        self.cluster = cluster
        self.component = component
        self.clock = clock
        self._options = WriteOptions(field_manager=component)

    async def record(
        self, pod: Pod, reason: str, message: str, type_: str = "Normal", host: str = ""
    ) -> None:
        """Create or bump the Event; failures (a terminating namespace) are only logged."""
        rt = self.cluster.types_for(EVENTS)
        meta = pod["metadata"]
        namespace, uid = meta.get("namespace", ""), str(meta.get("uid", ""))
        suffix = hashlib.sha256(f"{uid}/{reason}".encode()).hexdigest()[:16]
        name = f"{meta['name'][:200]}.{suffix}"
        stamp = now_rfc3339(self.clock.now())
        try:
            if rt is None:
                return
            existing = self.cluster.store.get(EVENTS, namespace, name)
            if existing is not None:
                count = int(existing.obj.get("count") or 1) + 1
                bump = {"count": count, "lastTimestamp": stamp, "message": message}
                await self.cluster.patch(
                    rt, namespace, name, PATCH_MERGE, orjson.dumps(bump), self._options
                )
                return
            body = self._event(pod, name, reason, message, type_, host, stamp)
            await self.cluster.create(rt, namespace, body, self._options)
        except errors.ApiError as exc:
            log.debug("event %s/%s not recorded: %s", namespace, name, exc.message)

    def _event(
        self, pod: Pod, name: str, reason: str, message: str, type_: str, host: str, stamp: str
    ) -> dict[str, Any]:
        meta = pod["metadata"]
        source = {"component": self.component, **({"host": host} if host else {})}
        return {
            "metadata": {"name": name, "namespace": meta.get("namespace", "")},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": host,
        }


@dataclass(frozen=True, eq=False)
class _Timer:
    """The one timer a pod has armed: for which pod (uid) and which stage. Compared by identity."""

    uid: str
    stage: str


def _key(pod: Pod) -> PodKey:
    meta = pod["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _may_change_with_faults(pod: Pod) -> bool:
    """A Running pod not yet Ready: a fault added or removed may send it to another stage."""
    status = pod.get("status") or {}
    return (
        status.get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
        and not is_ready(pod)
    )


class Kubelet(Controller):
    """Applies the stage table to every pod bound to a node."""

    def __init__(
        self, cluster: Cluster, context: Context | None = None, rng: random.Random | None = None
    ) -> None:
        super().__init__(cluster, context)
        self.rng = rng or random.Random()
        self.ips = PodIPs()
        self.events = EventRecorder(cluster, "kubelet", self.clock)
        self._timers: dict[PodKey, _Timer] = {}
        self._stuck: set[PodKey] = set()
        self._faults: tuple[FaultSpec, ...] | None = None

    def armed(self, namespace: str, name: str) -> str | None:
        """The stage whose timer the pod is waiting on (None when it waits for nothing)."""
        timer = self._timers.get((namespace, name))
        return timer.stage if timer is not None else None

    async def resync(self) -> None:
        self._faults = None
        pods = self.cluster.store.list(PODS)
        for entry in pods:
            self.ips.reserve((entry.obj.get("status") or {}).get("podIP") or "")
        for entry in pods:
            self._plan(entry.obj)

    async def handle(self, event: Event) -> None:
        if event.skey == PODS:
            self._on_pod(event)
        elif event.skey == FAULTS:
            self._faults = None
            self._replan_stuck(None)
        elif event.skey == NAMESPACES and event.type == "MODIFIED" and self._fault_specs():
            old_labels = (event.old or {}).get("metadata", {}).get("labels")
            if event.entry.obj["metadata"].get("labels") != old_labels:
                self._replan_stuck(event.entry.obj["metadata"]["name"])

    def _on_pod(self, event: Event) -> None:
        key = (event.namespace, event.entry.obj["metadata"]["name"])
        if event.type == "DELETED":
            self._timers.pop(key, None)
            self._stuck.discard(key)
            self.ips.release((event.entry.obj.get("status") or {}).get("podIP") or "")
            return
        entry = self.cluster.store.get(PODS, *key)
        if entry is not None:  # else it is gone already; its DELETED event follows
            self._plan(entry.obj)

    # -- planning ------------------------------------------------------------------------------

    def _fault_specs(self) -> tuple[FaultSpec, ...]:
        if self._faults is None:
            self._faults = parse_faults(e.obj for e in self.cluster.store.list(FAULTS))
        return self._faults

    def _fault_of(self, pod: Pod) -> PodFault | None:
        specs = self._fault_specs()
        if not specs:
            return None
        namespace = self.cluster.store.get(NAMESPACES, "", pod["metadata"].get("namespace", ""))
        labels = namespace.obj["metadata"].get("labels") if namespace is not None else None
        return pod_fault_effect(pod, labels, specs)

    def _plan(self, pod: Pod) -> None:
        """Arm the timer of the pod's current stage, unless it is armed already."""
        key = _key(pod)
        fault = self._fault_of(pod)
        stage = select_stage(pod, fault)
        if stage is None:
            self._timers.pop(key, None)
            if _may_change_with_faults(pod):
                self._stuck.add(key)
            else:
                self._stuck.discard(key)
            return
        self._stuck.discard(key)
        uid = str(pod["metadata"].get("uid", ""))
        armed = self._timers.get(key)
        if armed is not None and armed.uid == uid and armed.stage == stage.name:
            return
        timer = _Timer(uid, stage.name)
        self._timers[key] = timer
        seconds = stage.delay.seconds(self.settings, pod, fault, self.rng)
        self.later(seconds, functools.partial(self._fire, key, timer))

    def _replan_stuck(self, namespace: str | None) -> None:
        for key in list(self._stuck):
            if namespace is None or key[0] == namespace:
                self._replan(key)

    def _replan(self, key: PodKey) -> None:
        entry = self.cluster.store.get(PODS, *key)
        if entry is not None:
            self._plan(entry.obj)

    async def _replan_later(self, key: PodKey) -> None:
        self._replan(key)

    # -- acting ----------------------------------------------------------------------------------

    async def _fire(self, key: PodKey, timer: _Timer) -> None:
        if self._timers.get(key) is not timer:
            return  # superseded by a newer timer, or the pod is gone
        del self._timers[key]
        entry = self.cluster.store.get(PODS, *key)
        if entry is None or entry.obj["metadata"].get("uid") != timer.uid:
            return
        pod = entry.obj
        fault = self._fault_of(pod)
        stage = select_stage(pod, fault)
        if stage is None or stage.name != timer.stage:
            self._plan(pod)
            return
        try:
            await self._apply(pod, stage, fault)
        except errors.ApiError as exc:
            if exc.code == 404:
                return
            log.debug("kubelet: %s on %s/%s: %s", stage.name, *key, exc.message)
            self.later(RETRY_SECONDS, functools.partial(self._replan_later, key))

    async def _apply(self, pod: Pod, stage: Stage, fault: PodFault | None) -> None:
        change = stage.next
        if change.delete:
            await self._record(pod, change, fault)
            await self._delete(pod)
        elif await self._write_status(pod, change, fault):
            await self._record(pod, change, fault)

    async def _record(self, pod: Pod, change: NextStatus, fault: PodFault | None) -> None:
        if change.event is not None:
            host = str((pod.get("spec") or {}).get("nodeName") or "")
            message = event_message(change.event, pod, fault)
            await self.events.record(pod, change.event.reason, message, change.event.type, host)

    async def _delete(self, pod: Pod) -> None:
        rt = self.cluster.types_for(PODS)
        assert rt is not None
        namespace, name = _key(pod)
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}}
        await self.cluster.delete(rt, namespace, name, options)

    async def _write_status(self, pod: Pod, change: NextStatus, fault: PodFault | None) -> bool:
        """Write the next status; whether anything changed."""
        ctx = StatusContext(now=self.clock.now(), fault=fault)
        allocated = ""
        if change.start:
            ip = (pod.get("status") or {}).get("podIP") or ""
            if not ip:
                ip = allocated = self.ips.allocate()
            ctx = replace(ctx, pod_ip=ip, host_ip=self._host_ip(pod))
        status = next_status(pod, change, ctx)
        if status == pod.get("status"):
            return False
        rt = self.cluster.types_for(PODS)
        assert rt is not None
        namespace, name = _key(pod)
        body = {
            "metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
            "status": status,
        }
        try:
            await self.cluster.patch(
                rt, namespace, name, PATCH_MERGE, orjson.dumps(body), OPTIONS, "status"
            )
        except errors.ApiError:
            self.ips.release(allocated)
            raise
        return True

    def _host_ip(self, pod: Pod) -> str:
        node = self.cluster.store.get(NODES, "", (pod.get("spec") or {}).get("nodeName") or "")
        if node is None:
            return ""
        for address in (node.obj.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address.get("address", ""))
        return ""
