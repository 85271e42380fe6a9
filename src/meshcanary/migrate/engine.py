"""Migrating namespaces to a control plane, and back: the engine the CLI and upgrades share.

Order of business, chosen so that nothing changes unless everything can:

1. resolve the target (an IstioControlPlane `<name>[.<namespace>]`, or an istiod Deployment of
   any other install: SMM-style `istiod-<cp>` or upstream `istiod-<rev>` / `istiod`) and require
   it Available: IstioControlPlane status `Available`, or istiod with an available replica.
   Restarting pods towards an istiod that cannot inject would break them (failurePolicy Fail).
2. read every namespace and plan it; an unknown namespace fails the whole command.
3. run the namespaces, at most `parallel` at a time: relabel (one request), restart, wait,
   verify, recording progress on the namespace at each step boundary.

Interruption (Ctrl-C cancels the task): a step is either not sent or sent whole (the relabel is
one merge patch), the record says `interrupted` and at which step, and re-running the same
command resumes: planning is from the cluster's state, so done work is skipped and a namespace
that is already there reports "nothing to do".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from meshcanary.kube import errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.mesh import revisions
from meshcanary.migrate import plan, records, steps

DEFAULT_TIMEOUT: Final = 300.0
DEFAULT_PARALLEL: Final = 4
AVAILABLE: Final = "Available"
RESUME_HINT: Final = "re-run the same command to resume; finished work is not repeated"

T = TypeVar("T")


class MigrationError(Exception):
    """A migration refused before changing anything; `usage` errors are the user's input."""

    usage = False


class TargetNotFound(MigrationError):
    usage = True


class NamespaceNotFound(MigrationError):
    usage = True


class NoPreviousRevision(MigrationError):
    usage = True


class TargetUnavailable(MigrationError):
    """The target exists but cannot inject yet: a check failed (exit 1), not a usage error."""


@dataclass(frozen=True)
class Target:
    """A control plane namespaces can be moved to."""

    revision: str
    """The `istio.io/rev` value selecting it."""
    source: str
    """Where it was found, for messages: `IstioControlPlane istio-system/cp-b`."""
    available: bool
    reason: str = ""


class Outcome(StrEnum):
    MIGRATED = "migrated"
    NOTHING_TO_DO = "nothing to do"
    PLANNED = "planned"
    RESTARTED = "restarted, not verified"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class NamespaceResult:
    """What happened to one namespace (or, in a dry run, what would)."""

    namespace: str
    target: str
    previous: str | None
    outcome: Outcome
    plan: plan.MigrationPlan
    stragglers: tuple[str, ...] = ()
    message: str = ""
    seconds: float = 0.0
    rollout_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether this namespace needs no further attention."""
        return self.outcome not in (Outcome.FAILED, Outcome.INTERRUPTED)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    timeout: float = DEFAULT_TIMEOUT
    parallel: int = DEFAULT_PARALLEL
    wait: bool = True
    progress: steps.Progress = field(default=steps.no_progress)


# -- entry points --------------------------------------------------------------------------------


async def migrate(
    client: Client,
    namespaces: Sequence[str],
    target: str,
    *,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    parallel: int = DEFAULT_PARALLEL,
    wait: bool = True,
    progress: steps.Progress = steps.no_progress,
    cp_namespace: str = revisions.DEFAULT_ISTIO_NAMESPACE,
) -> list[NamespaceResult]:
    """Move `namespaces` to the control plane `target`; one result per namespace, in order."""
    options = Options(dry_run, timeout, max(1, parallel), wait, progress)
    resolved = await require_available(client, target, cp_namespace)
    observed = await observe_all(client, namespaces, options.parallel)
    targets = {name: resolved.revision for name in namespaces}
    return await run_all(client, observed, targets, options)


async def rollback(
    client: Client,
    namespaces: Sequence[str],
    *,
    to: str | None = None,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    parallel: int = DEFAULT_PARALLEL,
    wait: bool = True,
    progress: steps.Progress = steps.no_progress,
    cp_namespace: str = revisions.DEFAULT_ISTIO_NAMESPACE,
) -> list[NamespaceResult]:
    """Move `namespaces` back to their recorded previous revision (or to `to`).

    Rollback is a migration whose target comes from the namespace: the same checks, restart,
    wait and verify, and it records the revision it leaves, so a rollback can be undone too.
    """
    options = Options(dry_run, timeout, max(1, parallel), wait, progress)
    observed = await observe_all(client, namespaces, options.parallel)
    wanted = {name: _rollback_spec(ns, to) for name, (ns, _) in observed.items()}
    resolved = {
        spec: await require_available(client, spec, cp_namespace) for spec in set(wanted.values())
    }
    targets = {name: resolved[spec].revision for name, spec in wanted.items()}
    return await run_all(client, observed, targets, options)


def _rollback_spec(namespace: Mapping[str, Any], to: str | None) -> str:
    try:
        return plan.rollback_target(namespace, to)
    except plan.NoPreviousRevision as error:
        raise NoPreviousRevision(str(error)) from None


# -- the target ----------------------------------------------------------------------------------


def split_spec(spec: str, cp_namespace: str) -> tuple[str, str]:
    """`<name>.<namespace>` or `<name>` (in `cp_namespace`) as (name, namespace)."""
    name, dot, namespace = spec.partition(".")
    if not name or (dot and not namespace) or "." in namespace:
        raise TargetNotFound(f"{spec!r} is not a control plane: use <name> or <name>.<namespace>")
    return name, namespace or cp_namespace


async def resolve_target(
    client: Client, spec: str, cp_namespace: str = revisions.DEFAULT_ISTIO_NAMESPACE
) -> Target:
    """Find the control plane `spec` names: an IstioControlPlane, else an istiod Deployment."""
    name, namespace = split_spec(spec, cp_namespace)
    resource = await listing.get(client, resources.IstioControlPlane, name, namespace=namespace)
    if resource is not None:
        return _from_control_plane(resource, name, namespace)
    istiod = "istiod" if name == revisions.DEFAULT_REVISION else f"istiod-{name}"
    deployment = await listing.get(client, resources.Deployment, istiod, namespace=namespace)
    if deployment is not None:
        return _from_istiod(deployment, name, namespace, "." in spec)
    raise TargetNotFound(
        f"control plane {spec!r} not found: no IstioControlPlane {namespace}/{name} "
        f"and no Deployment {namespace}/{istiod}"
    )


def _from_control_plane(resource: Mapping[str, Any], name: str, namespace: str) -> Target:
    status = resource.get("status") or {}
    revision = (
        status.get("revision") or revisions.RevisionRef.for_control_plane(name, namespace).value
    )
    state = str(status.get("status") or "Reconciling")
    reason = f"status is {state}" + (
        f": {status['errorMessage']}" if status.get("errorMessage") else ""
    )
    return Target(
        str(revision), f"IstioControlPlane {namespace}/{name}", state == AVAILABLE, reason
    )


def _from_istiod(deployment: Mapping[str, Any], name: str, namespace: str, smm: bool) -> Target:
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    revision = labels.get(revisions.REV_LABEL) or (f"{name}.{namespace}" if smm else name)
    available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
    istiod = deployment["metadata"]["name"]
    reason = f"Deployment {namespace}/{istiod} has {available} available replicas"
    return Target(str(revision), f"Deployment {namespace}/{istiod}", available > 0, reason)


async def require_available(client: Client, spec: str, cp_namespace: str) -> Target:
    """The resolved target; TargetUnavailable unless it can inject right now."""
    target = await resolve_target(client, spec, cp_namespace)
    if not target.available:
        raise TargetUnavailable(
            f"control plane {spec!r} ({target.source}) is not Available: {target.reason}; "
            "nothing was changed"
        )
    return target


# -- namespaces ----------------------------------------------------------------------------------

Observed = tuple[dict[str, Any], plan.Workloads]


async def observe_all(
    client: Client, namespaces: Sequence[str], parallel: int
) -> dict[str, Observed]:
    """Every namespace and its workloads; NamespaceNotFound names all the missing ones."""
    found = await bounded(parallel, [_observe(client, name) for name in namespaces])
    missing = [name for name, item in zip(namespaces, found, strict=True) if item is None]
    if missing:
        raise NamespaceNotFound(f"namespace not found: {', '.join(missing)}; nothing was changed")
    return {name: item for name, item in zip(namespaces, found, strict=True) if item is not None}


async def _observe(client: Client, namespace: str) -> Observed | None:
    try:
        return await steps.observe(client, namespace)
    except errors.NotFound:
        return None


async def run_all(
    client: Client, observed: Mapping[str, Observed], targets: Mapping[str, str], options: Options
) -> list[NamespaceResult]:
    """Plan each namespace, then (unless a dry run) migrate them `options.parallel` at a time."""
    plans = [plan.plan_namespace(ns, work, targets[name]) for name, (ns, work) in observed.items()]
    if options.dry_run:
        return [_planned(p) for p in plans]
    runs = [run_namespace(client, observed[p.namespace][0], p, options) for p in plans]
    return await bounded(options.parallel, runs)


def _planned(migration: plan.MigrationPlan) -> NamespaceResult:
    outcome = Outcome.NOTHING_TO_DO if migration.nothing_to_do else Outcome.PLANNED
    return NamespaceResult(
        migration.namespace,
        migration.target,
        migration.previous_revision,
        outcome,
        migration,
        migration.stragglers,
    )


async def bounded(parallel: int, work: Iterable[Awaitable[T]]) -> list[T]:
    """Await all of `work` with at most `parallel` running at once; results in order."""
    gate = asyncio.Semaphore(parallel)

    async def gated(item: Awaitable[T]) -> T:
        async with gate:
            return await item

    return list(await asyncio.gather(*(gated(item) for item in work)))


# -- one namespace -------------------------------------------------------------------------------


@dataclass
class _Run:
    """One namespace's run in progress: its record and clock."""

    client: Client
    namespace: Mapping[str, Any]
    migration: plan.MigrationPlan
    options: Options
    record: records.MigrationRecord
    started: float = field(default_factory=time.monotonic)
    rollout_seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.migration.namespace

    def report(self, step: records.Step, message: str = "", done: int = 0, total: int = 0) -> None:
        self.options.progress(steps.StepProgress(self.name, step, message, done, total))

    async def step(self, step: records.Step) -> None:
        self.record = self.record.at(step)
        self.report(step)
        if step is not records.Step.RELABEL:
            await records.write(self.client, self.name, self.record)

    def result(
        self, outcome: Outcome, message: str = "", stragglers: Sequence[str] = ()
    ) -> NamespaceResult:
        return NamespaceResult(
            self.name,
            self.migration.target,
            self.migration.previous_revision or self.record.source,
            outcome,
            self.migration,
            tuple(stragglers),
            message,
            time.monotonic() - self.started,
            self.rollout_seconds,
        )


async def run_namespace(
    client: Client, namespace: Mapping[str, Any], migration: plan.MigrationPlan, options: Options
) -> NamespaceResult:
    """Migrate one planned namespace: relabel, restart, wait, verify; record every step."""
    if migration.nothing_to_do:
        await _close_record(client, namespace, migration.target)
        options.progress(
            steps.StepProgress(migration.namespace, records.Step.DONE, "nothing to do")
        )
        return _planned(migration)
    source = plan.selected_revision(namespace)
    record = records.start(migration.target, source, datetime.now(UTC))
    run = _Run(client, namespace, migration, options, record)
    try:
        return await _execute(run)
    except asyncio.CancelledError:
        await _finish(
            run, records.Result.INTERRUPTED, f"interrupted at {run.record.step}; {RESUME_HINT}"
        )
        raise
    except (steps.StepFailed, errors.KubeError) as failure:
        await _finish(run, records.Result.FAILED, str(failure))
        return run.result(Outcome.FAILED, str(failure))


async def _close_record(client: Client, namespace: Mapping[str, Any], target: str) -> None:
    """Mark an unfinished record for `target` succeeded once the namespace is verified there.

    A run that failed on a straggler the user then removed (or that was interrupted after its
    pods were replaced) leaves a record saying so; the re-run that finds nothing to do closes
    it. A record already `succeeded` is left alone, so a repeated run writes nothing.
    """
    record = records.read(namespace)
    if record is None or record.target != target or record.result == records.Result.SUCCEEDED:
        return
    done = record.at(records.Step.DONE).finished(
        records.Result.SUCCEEDED, datetime.now(UTC), f"every live pod runs {target}"
    )
    await records.write(client, str(namespace["metadata"]["name"]), done)


async def _execute(run: _Run) -> NamespaceResult:
    migration = run.migration
    begin = f"migrating to {migration.target} from {run.record.source or 'no revision'}"
    await records.post_event(run.client, run.namespace, "MigrationStarted", begin, warning=False)
    await run.step(records.Step.RELABEL)
    await steps.relabel(run.client, migration, run.record)
    await run.step(records.Step.RESTART)
    await steps.restart(run.client, run.name, migration.controllers, progress=run.options.progress)
    if not run.options.wait:
        note = "not waited for (--no-wait): run again to verify"
        await _finish(run, records.Result.UNVERIFIED, note)
        return run.result(Outcome.RESTARTED, note, migration.stragglers)
    return await _wait_and_verify(run)


async def _wait_and_verify(run: _Run) -> NamespaceResult:
    await run.step(records.Step.WAIT)
    rollout = time.monotonic()
    controllers = run.migration.controllers
    await steps.wait_rollouts(
        run.client,
        run.name,
        controllers,
        timeout=run.options.timeout,
        progress=run.options.progress,
    )
    run.rollout_seconds = time.monotonic() - rollout
    await run.step(records.Step.VERIFY)
    left = await steps.verify(
        run.client, run.name, run.migration.target, timeout=run.options.timeout
    )
    if left:
        message = f"{len(left)} live pods do not run {run.migration.target}: {', '.join(left)}"
        await _finish(run, records.Result.FAILED, message)
        return run.result(Outcome.FAILED, message, left)
    await _finish(run, records.Result.SUCCEEDED, f"every live pod runs {run.migration.target}")
    return run.result(Outcome.MIGRATED)


async def _finish(run: _Run, result: records.Result, message: str) -> None:
    """Write the final record and Event; best effort, bounded, even while being cancelled."""
    run.record = (
        run.record.at(records.Step.DONE) if result is records.Result.SUCCEEDED else run.record
    )
    run.record = run.record.finished(result, datetime.now(UTC), message)
    run.report(records.Step.DONE, message)
    warning = result is not records.Result.SUCCEEDED
    reason = f"Migration{result.value.capitalize()}"
    with contextlib.suppress(errors.KubeError, TimeoutError, asyncio.CancelledError):
        async with asyncio.timeout(5):
            await records.write(run.client, run.name, run.record)
            await records.post_event(run.client, run.namespace, reason, message, warning=warning)
