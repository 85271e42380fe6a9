"""The migration's steps: each one idempotent, awaitable on its own, and reporting progress.

A later wave-based upgrade drives these same functions, so each takes what it needs explicitly
(no hidden state) and doing it twice leaves the cluster as doing it once:

- `observe`: read the namespace and its workloads (3 namespaced LISTs: pods, ReplicaSets, Jobs).
- `relabel`: ONE merge patch of the namespace setting `istio.io/rev`, removing `istio-injection`
  and writing the records in the same request, so a label set is never half-written.
- `restart`: the strategic merge patch `kubectl rollout restart` sends
  (`spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`); an orphan
  ReplicaSet has no rollout, so its straggler pods are deleted and it recreates them.
- `wait_rollouts`: watches each controller (no polling) until `kubectl rollout status` would
  say done; `ProgressDeadlineExceeded` fails at once; the whole wait has a timeout.
- `verify`: every live pod runs the target; stragglers are named. Old pods still terminating
  after a rollout are waited for (by watch) rather than reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from meshcanary.kube import apply, errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.migrate import plan, records

RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"

_KINDS: Final[Mapping[str, Any]] = {
    "Deployment": resources.Deployment,
    "StatefulSet": resources.StatefulSet,
    "DaemonSet": resources.DaemonSet,
    "ReplicaSet": resources.ReplicaSet,
}


class StepFailed(Exception):
    """A step could not complete (rollout failed or timed out); the message says which."""


@dataclass(frozen=True)
class StepProgress:
    """One observable moment of a namespace's migration."""

    namespace: str
    step: records.Step
    message: str = ""
    done: int = 0
    total: int = 0


class Progress(Protocol):
    """Receives progress; must not block (a CLI updates a bar, an operator logs)."""

    def __call__(self, event: StepProgress) -> None: ...


def no_progress(event: StepProgress) -> None:
    """A Progress that ignores everything."""


# -- observe -------------------------------------------------------------------------------------


async def observe(client: Client, namespace: str) -> tuple[dict[str, Any], plan.Workloads]:
    """The namespace (API JSON) and its workloads; NotFound when the namespace does not exist."""
    found = await listing.get(client, resources.Namespace, namespace)
    if found is None:
        raise errors.NotFound(f'namespaces "{namespace}" not found', code=404)
    pods, replicasets, jobs = await asyncio.gather(
        _list(client, resources.Pod, namespace),
        _list(client, resources.ReplicaSet, namespace),
        _list(client, resources.Job, namespace),
    )
    return found, plan.Workloads(pods=pods, replicasets=replicasets, jobs=jobs)


async def _list(client: Client, resource: Any, namespace: str) -> list[dict[str, Any]]:
    return [
        dict(obj)
        for obj in await listing.collect(client, resources.raw(resource), namespace=namespace)
    ]


# -- relabel -------------------------------------------------------------------------------------


def relabel_patch(migration: plan.MigrationPlan, record: records.MigrationRecord) -> dict[str, Any]:
    """The namespace merge patch: labels, the previous revision and the progress record."""
    notes = records.annotation_patch(record, migration.previous_revision)
    return {"metadata": {"labels": migration.label_patch, "annotations": notes}}


async def relabel(
    client: Client, migration: plan.MigrationPlan, record: records.MigrationRecord
) -> None:
    """Point the namespace at the target in one request (labels and records together)."""
    patch = relabel_patch(migration, record)
    await apply.merge_patch(client, resources.Namespace, migration.namespace, patch)


# -- restart -------------------------------------------------------------------------------------


def restart_patch(now: datetime) -> dict[str, Any]:
    """The patch `kubectl rollout restart` sends, with an RFC 3339 timestamp of now.

    kubectl stamps whole seconds; a migration followed by a rollback within the same second
    would then send the very same template, which changes nothing and restarts nothing. The
    stamp keeps microseconds so every restart is a new template.
    """
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


async def restart(
    client: Client,
    namespace: str,
    controllers: Sequence[plan.Controller],
    *,
    progress: Progress = no_progress,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Restart each controller; report each one as it is done."""
    for done, controller in enumerate(controllers, start=1):
        await restart_one(client, namespace, controller, now())
        message = f"restarted {controller}"
        progress(StepProgress(namespace, records.Step.RESTART, message, done, len(controllers)))


async def restart_one(
    client: Client, namespace: str, controller: plan.Controller, now: datetime
) -> None:
    """One `rollout restart`, or for an orphan ReplicaSet the deletion of its straggler pods."""
    if controller.kind == "ReplicaSet":
        for pod in controller.pods:
            await apply.delete(client, resources.Pod, pod, namespace=namespace)
        return
    resource = _KINDS[controller.kind]
    await apply.strategic_patch(
        client, resource, controller.name, restart_patch(now), namespace=namespace
    )


# -- wait ----------------------------------------------------------------------------------------


def rollout_state(kind: str, obj: Mapping[str, Any] | None) -> str | None:
    """None when the rollout is complete, else why not (`kubectl rollout status`'s rules).

    Raises StepFailed for a Deployment past its progress deadline, or a vanished object.
    """
    if obj is None:
        raise StepFailed(f"{kind.lower()} was deleted during the rollout")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "waiting for the controller to observe the new spec"
    rules = {
        "Deployment": _deployment_state,
        "StatefulSet": _statefulset_state,
        "DaemonSet": _daemonset_state,
        "ReplicaSet": _replicaset_state,
    }
    return rules[kind](spec, status)


def _deployment_state(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == PROGRESS_DEADLINE_EXCEEDED
        ):
            raise StepFailed(f"exceeded its progress deadline: {condition.get('message', '')}")
    want = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    if updated < want:
        return f"{updated} of {want} updated replicas"
    if int(status.get("replicas") or 0) > updated:
        return f"{int(status.get('replicas') or 0) - updated} old replicas pending termination"
    if int(status.get("availableReplicas") or 0) < updated:
        return f"{status.get('availableReplicas') or 0} of {updated} updated replicas available"
    return None


def _statefulset_state(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    if ready < want:
        return f"{ready} of {want} pods ready"
    strategy = spec.get("updateStrategy") or {}
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    if partition:
        updated = int(status.get("updatedReplicas") or 0)
        return None if updated >= want - partition else f"{updated} of {want} pods updated"
    if status.get("updateRevision") != status.get("currentRevision"):
        return f"{status.get('updatedReplicas') or 0} of {want} pods updated"
    return None


def _daemonset_state(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    if updated < desired:
        return f"{updated} of {desired} updated pods scheduled"
    available = int(status.get("numberAvailable") or 0)
    if available < desired:
        return f"{available} of {desired} updated pods available"
    return None


def _replicaset_state(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    want = int(spec.get("replicas", 1))
    available = int(status.get("availableReplicas") or 0)
    return None if available >= want else f"{available} of {want} pods available"


async def wait_rollouts(
    client: Client,
    namespace: str,
    controllers: Sequence[plan.Controller],
    *,
    timeout: float,
    progress: Progress = no_progress,
) -> None:
    """Watch every controller until its rollout completes (all at once, one timeout)."""
    total, finished = len(controllers), 0
    progress(StepProgress(namespace, records.Step.WAIT, "waiting for rollouts", 0, total))

    async def one(controller: plan.Controller) -> None:
        nonlocal finished
        await _wait_one(client, namespace, controller, timeout)
        finished += 1
        message = f"{controller} rolled out"
        progress(StepProgress(namespace, records.Step.WAIT, message, finished, total))

    try:
        async with asyncio.TaskGroup() as group:
            for controller in controllers:
                group.create_task(one(controller))
    except* StepFailed as failures:
        raise failures.exceptions[0] from None
    except* errors.KubeError as failures:
        raise StepFailed(str(failures.exceptions[0])) from None


async def _wait_one(
    client: Client, namespace: str, controller: plan.Controller, timeout: float
) -> None:
    resource = resources.raw(_KINDS[controller.kind])

    def complete(obj: Any) -> bool:
        try:
            return rollout_state(controller.kind, obj) is None
        except StepFailed as failure:
            raise StepFailed(f"{controller}: {failure}") from None

    try:
        await listing.watch_until(
            client, resource, namespace, controller.name, complete, timeout=timeout
        )
    except errors.WaitTimeout as error:
        raise StepFailed(f"{controller}: rollout not complete after {timeout:g}s") from error


# -- verify --------------------------------------------------------------------------------------


async def verify(client: Client, namespace: str, target: str, *, timeout: float) -> list[str]:
    """Names of live pods not running `target` (empty: verified).

    Pods already terminating are waited for (a watch each) before the final count, since a
    rollout that `kubectl rollout status` calls complete may still be draining old pods.
    """
    pods = await _list(client, resources.Pod, namespace)
    leaving = [_name(p) for p in pods if _terminating(p) and plan.is_straggler(p, target)]
    if leaving:
        await _wait_gone(client, namespace, leaving, timeout)
        pods = await _list(client, resources.Pod, namespace)
    return plan.stragglers(pods, target)


async def _wait_gone(client: Client, namespace: str, pods: Sequence[str], timeout: float) -> None:
    raw = resources.raw(resources.Pod)
    waits = [
        listing.watch_until(client, raw, namespace, pod, _gone, timeout=timeout) for pod in pods
    ]
    try:
        await asyncio.gather(*waits)
    except errors.WaitTimeout:
        return


def _gone(obj: Any) -> bool:
    return obj is None


def _terminating(pod: Mapping[str, Any]) -> bool:
    return (pod.get("metadata") or {}).get("deletionTimestamp") is not None


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))
