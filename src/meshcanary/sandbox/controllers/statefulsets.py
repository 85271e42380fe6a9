"""StatefulSets: stably named pods created and replaced in order, rolled from ControllerRevisions;
and the ControllerRevision history that the DaemonSet controller shares.

Why: a canary upgrade restarts every injected workload, stateful ones included, and a rehearsal
must see what a real cluster shows: `db-0`, `db-1`, ... created one at a time (OrderedReady) or
together (Parallel); a template change rolled out in reverse ordinal order, one pod at a time,
honouring `partition` (or left to manual deletes with OnDelete); and `kubectl rollout
status|restart|history|undo statefulset` answering from the same status fields and
ControllerRevisions kube-controller-manager keeps.

How: `reconcile` follows `stateful_set_control.go`. It finds (or creates, or re-numbers, on a
rollback) the revision of the current template; processes each ordinal in order, recreating
failed pods and creating missing ones at the current revision below the partition and at the
update revision above it, and in OrderedReady mode stops at the first pod not Running, Ready and
available; deletes pods past `replicas` from the highest ordinal; then deletes the
highest-ordinal pod not at the update revision, unless a pod above it is still unavailable. A
deleted pod is recreated by the reconciliation its deletion event brings. Status is counted from
the store after acting, and `currentRevision` becomes `updateRevision` once every pod is updated
and Ready.

Left out: PersistentVolumeClaims (the sandbox serves none; pods still get their claim volumes),
the alpha `maxUnavailable`, adoption of orphan pods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.podtemplates import (
    OwnerController,
    controller_ref,
    controller_uid,
    new_pod,
    object_key,
    pod_is_available,
    pod_is_ready,
    seconds_until_available,
    served_type,
    template_hash,
)

PODS = "/pods"
STATEFULSETS = "apps/statefulsets"
REVISIONS = "apps/controllerrevisions"
OPTIONS = WriteOptions(field_manager="statefulset-controller")
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"(.*)-([0-9]+)")


# -- ControllerRevision history (kube-controller-manager's pkg/controller/history) -------------


@dataclass(frozen=True)
class RevisionStyle:
    """How an owner kind names its revisions: StatefulSets hash the revision's data and label it
    `controller.kubernetes.io/hash`; DaemonSets hash the pod template and label it
    `controller-revision-hash`, the label their pods carry too."""

    owner_kind: str
    hash_label: str
    hash_template: bool


def revision_data(template: dict[str, Any]) -> dict[str, Any]:
    """A revision's `data`: the patch that puts `template` back (the controllers' `getPatch`)."""
    return {"spec": {"template": {**template, "$patch": "replace"}}}


def revision_template(revision: dict[str, Any]) -> dict[str, Any]:
    """The pod template a revision records."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


class History:
    """The ControllerRevisions of the owners of one kind."""

    def __init__(self, cluster: Cluster, style: RevisionStyle, options: WriteOptions) -> None:
        self.cluster = cluster
        self.style = style
        self.options = options
        self._type = served_type(cluster, REVISIONS)

    def revisions(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """`owner`'s revisions, oldest first."""
        namespace, _ = object_key(owner)
        uid = owner["metadata"]["uid"]
        mine = [
            entry.obj
            for entry in self.cluster.store.list(REVISIONS, namespace)
            if controller_uid(entry.obj) == uid
        ]
        return sorted(mine, key=lambda r: (int(r.get("revision") or 0), r["metadata"]["name"]))

    async def update_revision(
        self, owner: dict[str, Any], collisions: int | None
    ) -> tuple[dict[str, Any], int | None]:
        """The revision of `owner`'s template (created, or re-numbered as the newest when an
        older one matches: a rollback), and the collision count after naming it."""
        revisions = self.revisions(owner)
        data = revision_data(owner["spec"].get("template") or {})
        equal = [r for r in revisions if r.get("data") == data]
        if equal and equal[-1] is revisions[-1]:
            return revisions[-1], collisions
        number = int(revisions[-1].get("revision") or 0) + 1 if revisions else 1
        if equal:
            namespace, name = object_key(equal[-1])
            patch = orjson.dumps({"revision": number})
            result = await self.cluster.patch(
                self._type, namespace, name, PATCH_MERGE, patch, self.options
            )
            return result.obj, collisions
        return await self._create(owner, data, number, collisions)

    async def _create(
        self, owner: dict[str, Any], data: dict[str, Any], number: int, collisions: int | None
    ) -> tuple[dict[str, Any], int | None]:
        namespace, owner_name = object_key(owner)
        template = owner["spec"].get("template") or {}
        while True:
            digest = template_hash(template if self.style.hash_template else data, collisions)
            name = f"{owner_name[:223]}-{digest}"
            existing = self.cluster.store.get(REVISIONS, namespace, name)
            if existing is None:
                body = self._body(owner, name, digest, data, number)
                result = await self.cluster.create(self._type, namespace, body, self.options)
                return result.obj, collisions
            if (
                existing.obj.get("data") == data
                and controller_uid(existing.obj) == (owner["metadata"]["uid"])
            ):
                return existing.obj, collisions
            collisions = (collisions or 0) + 1

    def _body(
        self, owner: dict[str, Any], name: str, digest: str, data: dict[str, Any], number: int
    ) -> dict[str, Any]:
        template_meta = (owner["spec"].get("template") or {}).get("metadata") or {}
        meta: dict[str, Any] = {
            "name": name,
            "labels": {**(template_meta.get("labels") or {}), self.style.hash_label: digest},
            "ownerReferences": [controller_ref(owner, self.style.owner_kind)],
        }
        if owner["metadata"].get("annotations"):
            meta["annotations"] = dict(owner["metadata"]["annotations"])
        return {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": meta,
            "data": data,
            "revision": number,
        }

    async def truncate(self, owner: dict[str, Any], live: set[str]) -> None:
        """Delete the oldest revisions not in `live` beyond `spec.revisionHistoryLimit`."""
        limit = int(owner["spec"].get("revisionHistoryLimit", 10))
        history = [r for r in self.revisions(owner) if r["metadata"]["name"] not in live]
        for revision in history[: max(0, len(history) - limit)]:
            try:
                await self.cluster.delete(self._type, *object_key(revision))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise


# -- pods ------------------------------------------------------------------------------------


def ordinal_of(set_name: str, pod: dict[str, Any]) -> int | None:
    """The ordinal in a pod name `<set>-<ordinal>` (None for a name of another shape)."""
    match = _ORDINAL.fullmatch(pod["metadata"]["name"])
    if match is None or match.group(1) != set_name:
        return None
    return int(match.group(2))


def revision_of(pod: dict[str, Any]) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def _terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def running_and_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and pod_is_ready(pod)


def _available(pod: dict[str, Any], min_ready: int, now: datetime) -> bool:
    """Running and available, and not terminating (the negation of `isUnavailable`)."""
    return (
        running_and_ready(pod) and pod_is_available(pod, min_ready, now) and not _terminating(pod)
    )


@dataclass
class _Pass:
    """One reconciliation's view of a StatefulSet: its pods by ordinal and its revisions."""

    sts: dict[str, Any]
    current: dict[str, Any]
    update: dict[str, Any]
    replicas: dict[int, dict[str, Any] | None]
    condemned: list[dict[str, Any]]
    now: datetime

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.sts["spec"]
        return spec

    @property
    def monotonic(self) -> bool:
        return self.spec.get("podManagementPolicy") != "Parallel"

    @property
    def min_ready(self) -> int:
        return int(self.spec.get("minReadySeconds") or 0)

    @property
    def start(self) -> int:
        return int((self.spec.get("ordinals") or {}).get("start") or 0)

    def revision_for(self, ordinal: int) -> dict[str, Any]:
        """The revision a new pod gets: current below the partition, update from it on."""
        strategy = self.spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return self.update
        rolling = strategy.get("rollingUpdate")
        if rolling is None:
            bound = int((self.sts.get("status") or {}).get("currentReplicas") or 0)
        else:
            bound = int(rolling.get("partition") or 0)
        return self.current if ordinal < self.start + bound else self.update


class StatefulSetController(OwnerController):
    """Creates, replaces and deletes the pods of every StatefulSet, in order."""

    owner_skey = STATEFULSETS
    dependent_skey = PODS

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._pod_type = served_type(cluster, PODS)
        self._set_type = served_type(cluster, STATEFULSETS)
        style = RevisionStyle("StatefulSet", "controller.kubernetes.io/hash", hash_template=False)
        self.history = History(cluster, style, OPTIONS)

    async def reconcile(self, owner: dict[str, Any]) -> None:
        status = owner.get("status") or {}
        update, collisions = await self.history.update_revision(
            owner, int(status.get("collisionCount") or 0)
        )
        current = next(
            (
                r
                for r in self.history.revisions(owner)
                if r["metadata"]["name"] == status.get("currentRevision")
            ),
            update,
        )
        if not owner["metadata"].get("deletionTimestamp"):
            await self._converge(self._pass(owner, current, update))
        pods = self._members(owner)
        now = self.clock.now()
        new_status = statefulset_status(
            owner, pods, current["metadata"]["name"], update["metadata"]["name"], now
        )
        new_status["collisionCount"] = collisions or 0
        await self._write_status(owner, new_status)
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        await self.history.truncate(owner, live | {revision_of(pod) for pod in pods})
        self._recheck_availability(owner, pods, now)

    def _members(self, sts: dict[str, Any]) -> list[dict[str, Any]]:
        name = sts["metadata"]["name"]
        return [pod for pod in self.owned(sts) if ordinal_of(name, pod) is not None]

    def _pass(self, sts: dict[str, Any], current: dict[str, Any], update: dict[str, Any]) -> _Pass:
        start = int((sts["spec"].get("ordinals") or {}).get("start") or 0)
        count = int(sts["spec"].get("replicas", 1))
        replicas: dict[int, dict[str, Any] | None] = dict.fromkeys(range(start, start + count))
        condemned = []
        for pod in self._members(sts):
            ordinal = ordinal_of(sts["metadata"]["name"], pod)
            assert ordinal is not None
            if ordinal in replicas:
                replicas[ordinal] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: -(ordinal_of(sts["metadata"]["name"], p) or 0))
        return _Pass(sts, current, update, replicas, condemned, self.clock.now())

    # -- acting ----------------------------------------------------------------------------------

    async def _converge(self, step: _Pass) -> None:
        for ordinal, pod in step.replicas.items():
            if await self._process_replica(step, ordinal, pod) and step.monotonic:
                return
        first_unhealthy = next(
            (p for p in reversed(step.condemned) if not _available(p, step.min_ready, step.now)),
            None,
        )
        for pod in step.condemned:
            if await self._process_condemned(step, pod, first_unhealthy) and step.monotonic:
                return
        await self._roll(step)

    async def _process_replica(self, step: _Pass, ordinal: int, pod: dict[str, Any] | None) -> bool:
        """Act on one ordinal; whether an OrderedReady set must stop here."""
        if pod is None:
            await self._create_pod(step, ordinal)
            return True
        if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
            if not _terminating(pod):
                await self._delete_pod(pod)
            return True
        if not _available(pod, step.min_ready, step.now) and step.monotonic:
            return True
        labels = pod["metadata"].get("labels") or {}
        if labels.get(POD_NAME_LABEL) != pod["metadata"]["name"] and not _terminating(pod):
            await self._fix_identity(pod)
        return False

    async def _process_condemned(
        self, step: _Pass, pod: dict[str, Any], first_unhealthy: dict[str, Any] | None
    ) -> bool:
        """Scale down one pod past `replicas`; whether an OrderedReady set must stop here."""
        if _terminating(pod):
            return True
        healthy = _available(pod, step.min_ready, step.now)
        if step.monotonic and not healthy and pod is not first_unhealthy:
            return True
        await self._delete_pod(pod)
        return True

    async def _roll(self, step: _Pass) -> None:
        """Delete the highest-ordinal pod not at the update revision (one at a time)."""
        strategy = step.spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        update_name = step.update["metadata"]["name"]
        namespace, set_name = object_key(step.sts)
        for ordinal in sorted(step.replicas, reverse=True):
            if ordinal < step.start + partition:
                return
            entry = self.cluster.store.get(PODS, namespace, f"{set_name}-{ordinal}")
            if entry is None:
                return
            pod = entry.obj
            if revision_of(pod) != update_name and not _terminating(pod):
                await self._delete_pod(pod)
                return
            if not _available(pod, step.min_ready, step.now):
                return

    async def _create_pod(self, step: _Pass, ordinal: int) -> None:
        namespace, set_name = object_key(step.sts)
        name = f"{set_name}-{ordinal}"
        revision = step.revision_for(ordinal)
        labels = {
            REVISION_LABEL: revision["metadata"]["name"],
            POD_NAME_LABEL: name,
            POD_INDEX_LABEL: str(ordinal),
        }
        body = new_pod(step.sts, "StatefulSet", revision_template(revision), name, labels)
        spec = body["spec"]
        spec["hostname"] = name
        if step.spec.get("serviceName"):
            spec["subdomain"] = step.spec["serviceName"]
        _add_claim_volumes(spec, step.spec.get("volumeClaimTemplates") or [], set_name, ordinal)
        result = await self.cluster.create(self._pod_type, namespace, body, OPTIONS)
        self.dependents.observe(result.obj)

    async def _delete_pod(self, pod: dict[str, Any]) -> None:
        try:
            await self.cluster.delete(self._pod_type, *object_key(pod))
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    async def _fix_identity(self, pod: dict[str, Any]) -> None:
        """Restore the pod-name label someone removed (the controller's `updateIdentity`)."""
        patch = {"metadata": {"labels": {POD_NAME_LABEL: pod["metadata"]["name"]}}}
        await self.cluster.patch(
            self._pod_type, *object_key(pod), PATCH_MERGE, orjson.dumps(patch), OPTIONS
        )

    # -- status ----------------------------------------------------------------------------------

    async def _write_status(self, sts: dict[str, Any], status: dict[str, Any]) -> None:
        current = self.cluster.store.get(STATEFULSETS, *object_key(sts))
        if current is None or current.obj["metadata"].get("resourceVersion") != (
            sts["metadata"].get("resourceVersion")
        ):
            return  # changed meanwhile: its own event brings another reconciliation
        if status == sts.get("status"):
            return
        body = {**sts, "status": status}
        await self.cluster.update(self._set_type, *object_key(sts), body, OPTIONS, "status")

    def _recheck_availability(
        self, sts: dict[str, Any], pods: list[dict[str, Any]], now: datetime
    ) -> None:
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if min_ready <= 0:
            return
        waits = [w for pod in pods if (w := seconds_until_available(pod, min_ready, now))]
        if waits:
            self.queue.add_after(object_key(sts), min(waits))


def _add_claim_volumes(
    spec: dict[str, Any], claims: list[dict[str, Any]], set_name: str, ordinal: int
) -> None:
    """Point the pod's volumes named after claim templates at `<claim>-<set>-<ordinal>`."""
    if not claims:
        return
    names = {str((c.get("metadata") or {}).get("name", "")) for c in claims}
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
    for name in sorted(names):
        claim = {"claimName": f"{name}-{set_name}-{ordinal}"}
        volumes.append({"name": name, "persistentVolumeClaim": claim})
    spec["volumes"] = volumes


def statefulset_status(
    sts: dict[str, Any],
    pods: list[dict[str, Any]],
    current_revision: str,
    update_revision: str,
    now: datetime,
) -> dict[str, Any]:
    """The status kube-controller-manager writes for `sts` with these member pods."""
    min_ready = int(sts["spec"].get("minReadySeconds") or 0)
    live = [pod for pod in pods if not _terminating(pod)]
    ready = [pod for pod in pods if running_and_ready(pod)]
    status: dict[str, Any] = {
        "observedGeneration": int(sts["metadata"].get("generation") or 0),
        "replicas": len(pods),
        "readyReplicas": len(ready),
        "availableReplicas": sum(pod_is_available(pod, min_ready, now) for pod in ready),
        "currentReplicas": sum(revision_of(pod) == current_revision for pod in live),
        "updatedReplicas": sum(revision_of(pod) == update_revision for pod in live),
        "currentRevision": current_revision,
        "updateRevision": update_revision,
    }
    strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate" and (
        status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]
    ):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = update_revision
    for field in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        if not status[field]:
            del status[field]  # omitempty, as the Go type serializes
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status
