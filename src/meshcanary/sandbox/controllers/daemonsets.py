"""DaemonSets: one pod on every node that should run it, rolled node by node.

Why: istio-cni and ztunnel are DaemonSets, and a canary upgrade of them must look as on a real
cluster: a pod pinned to each eligible node, replaced at most `maxUnavailable` nodes at a time,
with the status counts `kubectl rollout status daemonset` waits on and the ControllerRevisions
`kubectl rollout history|undo` read.

How: `reconcile` follows kube-controller-manager's `daemon_controller.go` and `update.go`. A node
should run the pod when the template, with the tolerations the controller adds to every daemon
pod (not-ready and unreachable NoExecute, the pressure and unschedulable NoSchedule taints),
fits it by the scheduler's own rules (`scheduler.misfit`): so cordoned nodes keep their daemon
pods, and NotReady nodes get none but keep the ones they have. Each pod is pinned twice, as the
real controller pins it by node affinity and the scheduler then binds it: required node
affinity on `metadata.name` and `spec.nodeName`. Failed pods are deleted and recreated, extra
pods on a node are deleted (the oldest stays), and pods on nodes that should not run them are
deleted. A RollingUpdate then deletes old pods: unavailable ones at once, available ones while
fewer than `maxUnavailable` (int or percent of the desired count, rounded up) nodes are
unavailable; the next pass recreates them at the new revision once they are gone.

Pods carry `controller-revision-hash` (the revision's template hash) and
`pod-template-generation` (the `deprecated.daemonset.template.generation` annotation, else
`metadata.generation`); a pod is updated when its hash matches. Left out: `maxSurge` (treated as
0), failed-pod backoff, and deleting pods of nodes that no longer exist (PodGC's job).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.store import Event
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.podtemplates import (
    OwnerController,
    new_pod,
    object_key,
    parse_time,
    pod_is_available,
    pod_is_ready,
    seconds_until_available,
    served_type,
)
from meshcanary.sandbox.controllers.scheduler import NodeInfo, misfit, tolerates
from meshcanary.sandbox.controllers.statefulsets import History, RevisionStyle

PODS = "/pods"
NODES = "/nodes"
DAEMONSETS = "apps/daemonsets"
OPTIONS = WriteOptions(field_manager="daemonset-controller")
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def daemon_pod_spec(template: dict[str, Any]) -> dict[str, Any]:
    """The template's pod spec with the tolerations every daemon pod gets."""
    spec = dict(template.get("spec") or {})
    tolerations = list(spec.get("tolerations") or [])
    wanted = DAEMON_TOLERATIONS + ((HOST_NETWORK_TOLERATION,) if spec.get("hostNetwork") else ())
    present = {(t.get("key"), t.get("effect")) for t in tolerations}
    for key, effect in wanted:
        if (key, effect) not in present:
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    spec["tolerations"] = tolerations
    return spec


def node_fit(node: NodeInfo, pod_spec: dict[str, Any]) -> tuple[bool, bool]:
    """(should run a daemon pod, may keep running one): `NodeShouldRunDaemonPod`."""
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != node.name:
        return False, False
    pod = {"spec": pod_spec}
    if misfit(pod, node) is None:
        return True, True
    if misfit({"spec": {**pod_spec, "tolerations": [{"operator": "Exists"}]}}, node):
        return False, False  # the node selector or affinity excludes the node
    tolerations = pod_spec.get("tolerations") or []
    evicting = [
        t for t in node.taints if t.get("effect") == "NoExecute" and not tolerates(tolerations, t)
    ]
    return False, not evicting


def pinned_affinity(affinity: dict[str, Any] | None, node: str) -> dict[str, Any]:
    """`affinity` with its required node terms replaced by "this node" (the controller's
    `ReplaceDaemonSetPodNodeNameNodeAffinity`)."""
    affinity = dict(affinity or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    requirement = {"key": "metadata.name", "operator": "In", "values": [node]}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [requirement]}]
    }
    affinity["nodeAffinity"] = node_affinity
    return affinity


def target_node(pod: dict[str, Any]) -> str:
    """The node a daemon pod is for: its nodeName, else its pinned node affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            values = field.get("values") or []
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and values:
                return str(values[0])
    return ""


def _terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _oldest_first(pod: dict[str, Any]) -> tuple[bool, float, str]:
    """`podByCreationTimestampAndPhase`: bound pods first, then oldest, then by name."""
    created = parse_time(pod["metadata"].get("creationTimestamp"))
    return (
        not (pod.get("spec") or {}).get("nodeName"),
        created.timestamp() if created else math.inf,
        pod["metadata"]["name"],
    )


def _updated(pod: dict[str, Any], digest: str) -> bool:
    return (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == digest


class DaemonSetController(OwnerController):
    """Keeps one pod of every DaemonSet on each node that should run it."""

    owner_skey = DAEMONSETS
    dependent_skey = PODS

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._pod_type = served_type(cluster, PODS)
        self._set_type = served_type(cluster, DAEMONSETS)
        self.history = History(
            cluster, RevisionStyle("DaemonSet", HASH_LABEL, hash_template=True), OPTIONS
        )

    async def other_event(self, event: Event) -> None:
        if event.skey != NODES:
            return
        before = NodeInfo.of(event.old) if event.old is not None else None
        after = None if event.type == "DELETED" else NodeInfo.of(event.entry.obj)
        if before != after:
            self.requeue_all()

    def _nodes(self) -> list[NodeInfo]:
        return [NodeInfo.of(entry.obj) for entry in self.cluster.store.list(NODES)]

    def _by_node(self, ds: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in self.owned(ds):
            by_node.setdefault(target_node(pod), []).append(pod)
        return by_node

    async def reconcile(self, owner: dict[str, Any]) -> None:
        if owner["metadata"].get("deletionTimestamp"):
            return
        status = owner.get("status") or {}
        revision, collisions = await self.history.update_revision(
            owner, status.get("collisionCount")
        )
        digest = str(revision["metadata"]["labels"][HASH_LABEL])
        nodes = self._nodes()
        pod_spec = daemon_pod_spec(owner["spec"].get("template") or {})
        fits = {node.name: node_fit(node, pod_spec) for node in nodes}
        await self._manage(owner, fits, digest)
        strategy = owner["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            await self._roll(owner, fits, digest)
        by_node = self._by_node(owner)
        await self.history.truncate(owner, self._live_revisions(owner, revision, by_node))
        now = self.clock.now()
        new_status = daemonset_status(owner, fits, by_node, digest, now)
        if collisions is not None:
            new_status["collisionCount"] = collisions
        await self._write_status(owner, new_status)
        self._recheck_availability(owner, by_node, now)

    def _live_revisions(
        self,
        ds: dict[str, Any],
        revision: dict[str, Any],
        by_node: dict[str, list[dict[str, Any]]],
    ) -> set[str]:
        """The current revision and those some pod still runs (kept by history truncation)."""
        in_use = {
            (pod["metadata"].get("labels") or {}).get(HASH_LABEL)
            for pods in by_node.values()
            for pod in pods
        }
        return {revision["metadata"]["name"]} | {
            r["metadata"]["name"]
            for r in self.history.revisions(ds)
            if (r["metadata"].get("labels") or {}).get(HASH_LABEL) in in_use
        }

    # -- acting ----------------------------------------------------------------------------------

    async def _manage(
        self, ds: dict[str, Any], fits: dict[str, tuple[bool, bool]], digest: str
    ) -> None:
        """Create missing daemon pods; delete failed, extra and misplaced ones."""
        by_node = self._by_node(ds)
        for node, (should_run, may_keep) in fits.items():
            pods = by_node.get(node, [])
            alive = [pod for pod in pods if not _terminating(pod)]
            if should_run and not pods:
                await self._create_pod(ds, node, digest)
            elif may_keep:
                failed = [p for p in alive if (p.get("status") or {}).get("phase") == "Failed"]
                running = sorted((p for p in alive if p not in failed), key=_oldest_first)
                await self._delete_pods(failed + running[1:])
            else:
                await self._delete_pods(alive)

    async def _roll(
        self, ds: dict[str, Any], fits: dict[str, tuple[bool, bool]], digest: str
    ) -> None:
        """Delete old pods within `maxUnavailable` (the controller's `rollingUpdate`, no surge)."""
        now = self.clock.now()
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        desired = sum(should_run for should_run, _ in fits.values())
        allowed = max_unavailable(ds, desired)
        unavailable = 0
        replace: list[dict[str, Any]] = []
        candidates: list[dict[str, Any]] = []
        for _, pods in sorted(self._by_node(ds).items()):
            alive = [pod for pod in pods if not _terminating(pod)]
            new = [pod for pod in alive if _updated(pod, digest)]
            old = [pod for pod in alive if not _updated(pod, digest)]
            if len(new) > 1 or len(old) > 1 or len(new) == len(old):
                unavailable += 1  # nothing, or both: the manage pass settles this node
            elif new:
                unavailable += not pod_is_available(new[0], min_ready, now)
            elif not pod_is_available(old[0], min_ready, now):
                replace.append(old[0])
            elif unavailable < allowed:
                candidates.append(old[0])
        budget = min(max(allowed - unavailable, 0), len(candidates))
        await self._delete_pods(replace + candidates[:budget])

    async def _create_pod(self, ds: dict[str, Any], node: str, digest: str) -> None:
        namespace, name = object_key(ds)
        meta = ds["metadata"]
        generation = (meta.get("annotations") or {}).get(TEMPLATE_GENERATION)
        labels = {
            HASH_LABEL: digest,
            GENERATION_LABEL: str(generation or meta.get("generation", 1)),
        }
        template = ds["spec"].get("template") or {}
        body = new_pod(ds, "DaemonSet", template, f"{name}-", labels)
        spec = body["spec"] = daemon_pod_spec(body)
        spec["affinity"] = pinned_affinity(spec.get("affinity"), node)
        spec["nodeName"] = node
        result = await self.cluster.create(self._pod_type, namespace, body, OPTIONS)
        self.dependents.observe(result.obj)

    async def _delete_pods(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            try:
                await self.cluster.delete(self._pod_type, *object_key(pod))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise

    # -- status ----------------------------------------------------------------------------------

    async def _write_status(self, ds: dict[str, Any], status: dict[str, Any]) -> None:
        current = self.cluster.store.get(DAEMONSETS, *object_key(ds))
        if current is None or current.obj["metadata"].get("resourceVersion") != (
            ds["metadata"].get("resourceVersion")
        ):
            return  # changed meanwhile: its own event brings another reconciliation
        if status == ds.get("status"):
            return
        body = {**ds, "status": status}
        await self.cluster.update(self._set_type, *object_key(ds), body, OPTIONS, "status")

    def _recheck_availability(
        self, ds: dict[str, Any], by_node: dict[str, list[dict[str, Any]]], now: datetime
    ) -> None:
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        if min_ready <= 0:
            return
        pods = [pod for pods in by_node.values() for pod in pods]
        waits = [w for pod in pods if (w := seconds_until_available(pod, min_ready, now))]
        if waits:
            self.queue.add_after(object_key(ds), min(waits))


def max_unavailable(ds: dict[str, Any], desired: int) -> int:
    """`rollingUpdate.maxUnavailable` as a count (percentages of `desired` rounded up), at
    least 1 when there is anything to update, as the controller falls back to."""
    rolling = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        count = math.ceil(desired * int(value[:-1]) / 100)
    else:
        count = int(value)
    return max(count, 1) if desired else count


def daemonset_status(
    ds: dict[str, Any],
    fits: dict[str, tuple[bool, bool]],
    by_node: dict[str, list[dict[str, Any]]],
    digest: str,
    now: datetime,
) -> dict[str, Any]:
    """The status kube-controller-manager writes (`updateDaemonSetStatus`)."""
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    counts = dict.fromkeys(
        ("desired", "current", "misscheduled", "ready", "available", "updated"), 0
    )
    for node, (should_run, _) in fits.items():
        pods = by_node.get(node, [])
        if not should_run:
            counts["misscheduled"] += bool(pods)
            continue
        counts["desired"] += 1
        if not pods:
            continue
        counts["current"] += 1
        pod = min(pods, key=_oldest_first)
        counts["ready"] += pod_is_ready(pod)
        counts["available"] += pod_is_available(pod, min_ready, now)
        counts["updated"] += _updated(pod, digest)
    status: dict[str, Any] = {
        "currentNumberScheduled": counts["current"],
        "desiredNumberScheduled": counts["desired"],
        "numberMisscheduled": counts["misscheduled"],
        "numberReady": counts["ready"],
        "observedGeneration": int(ds["metadata"].get("generation") or 0),
    }
    optional = {
        "updatedNumberScheduled": counts["updated"],
        "numberAvailable": counts["available"],
        "numberUnavailable": counts["desired"] - counts["available"],
    }
    status.update({field: value for field, value in optional.items() if value})  # omitempty
    conditions = (ds.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status
