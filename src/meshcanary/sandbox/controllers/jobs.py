"""Jobs: pods run to completion, `parallelism` at a time, until `completions` succeed or the
failures pass `backoffLimit`.

Why: charts and upgrade hooks (Istio's included) run Jobs, and `kubectl wait
--for=condition=complete` must end as on a real cluster. The simulated kubelet finishes pods
(Succeeded after `settings.job_duration`); this controller creates them and keeps the status.

How, as kube-controller-manager 1.33's job controller: keep `min(parallelism, completions -
succeeded)` pods active (with `completions` unset: `parallelism`, until one succeeds); delete
surplus pods, and every active pod while `suspend` is set (condition Suspended; resuming resets
`startTime`). Failures are pods in phase Failed or deleted before they succeeded. When the
failures pass `backoffLimit` (or OnFailure restarts reach it) or `activeDeadlineSeconds` has
passed, the interim condition FailureTarget is added and the active pods deleted; once no pod is
active or terminating, Failed follows. Success is SuccessCriteriaMet, then Complete with
`completionTime` once nothing is terminating; both carry reason CompletionsReached.

Counting: `succeeded` and `failed` never decrease. Upstream makes counting exact with a
`batch.kubernetes.io/job-tracking` finalizer on every pod and `uncountedTerminatedPods`; here
the counts are the larger of the recorded ones and what the pods show, which is exact as long as
finished pods stay until their Job goes (the sandbox never removes them), and restart-safe.
Pods this controller deletes for surplus or suspension are not failures (upstream drops their
finalizer first); it remembers them only while they terminate, so a restart in that window may
count them. Left out: Indexed completion mode, podFailurePolicy, successPolicy, backoff delays
between retries, ttlSecondsAfterFinished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.podtemplates import (
    OwnerController,
    new_pod,
    object_key,
    parse_time,
    pod_is_active,
    pod_is_ready,
    served_type,
)
from meshcanary.sandbox.controllers.replicasets import deletion_order

PODS = "/pods"
JOBS = "batch/jobs"
OPTIONS = WriteOptions(field_manager="job-controller")
MAX_POD_CHANGES = 500
"""At most this many pods are created or deleted per reconciliation (as upstream)."""


@dataclass(frozen=True)
class Verdict:
    """How a Job ends: the final condition type, its interim one, and why."""

    final: str
    reason: str
    message: str

    @property
    def interim(self) -> str:
        return "SuccessCriteriaMet" if self.final == "Complete" else "FailureTarget"


COMPLETIONS_REACHED = Verdict(
    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
)
BACKOFF_EXCEEDED = Verdict(
    "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
)
DEADLINE_EXCEEDED = Verdict(
    "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
)


def find_condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The condition of type `kind` with status True, if any."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def job_finished(job: dict[str, Any]) -> str | None:
    """ "Complete" or "Failed" once the Job has that condition (`IsJobFinished`), else None."""
    status = job.get("status") or {}
    return next((k for k in ("Complete", "Failed") if find_condition(status, k)), None)


def _condition(kind: str, status: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    stamp = now_rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _terminating(pod: dict[str, Any]) -> bool:
    """Being deleted and not finished (`controller.CountTerminatingPods`)."""
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) not in (
        "Succeeded",
        "Failed",
    )


class JobController(OwnerController):
    """Runs the pods of every Job and keeps its status and conditions."""

    owner_skey = JOBS
    dependent_skey = PODS

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._pod_type = served_type(cluster, PODS)
        self._job_type = served_type(cluster, JOBS)
        self._removed: dict[str, set[str]] = {}
        """Per Job uid, the uids of pods deleted as surplus or for suspension (not failures)."""

    async def reconcile(self, owner: dict[str, Any]) -> None:
        if owner["metadata"].get("deletionTimestamp") or job_finished(owner):
            self._removed.pop(owner["metadata"]["uid"], None)
            return
        now = self.clock.now()
        status = dict(owner.get("status") or {})
        suspended = bool(owner["spec"].get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = now_rfc3339(now)
        self._count(owner, status)
        verdict = self._failure(owner, status, now)
        if verdict is None and find_condition(status, "SuccessCriteriaMet"):
            verdict = COMPLETIONS_REACHED
        if verdict is None:
            await self._manage(owner, status)
            verdict = COMPLETIONS_REACHED if self._complete(owner, status) else None
            if verdict is None:
                _suspension(status, suspended, now)
        elif verdict.final == "Failed":
            await self._fail_active(owner, status)
        self._finish(owner, status, verdict, now)
        await self._write_status(owner, status)
        self._recheck_deadline(owner, status, now)

    # -- counting and deciding -------------------------------------------------------------------

    def _count(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        """Raise `succeeded` and `failed` to what the pods show (they never go down)."""
        pods = self.owned(job)
        uid = job["metadata"]["uid"]
        removed = self._removed.pop(uid, set()) & {pod["metadata"]["uid"] for pod in pods}
        if removed:
            self._removed[uid] = removed
        succeeded = sum(_phase(pod) == "Succeeded" for pod in pods)
        failed = sum(
            _phase(pod) == "Failed" or (_terminating(pod) and pod["metadata"]["uid"] not in removed)
            for pod in pods
        )
        status["succeeded"] = max(int(status.get("succeeded") or 0), succeeded)
        status["failed"] = max(int(status.get("failed") or 0), failed)

    def _failure(
        self, job: dict[str, Any], status: dict[str, Any], now: datetime
    ) -> Verdict | None:
        """Why the Job fails, if it does (an earlier FailureTarget stands)."""
        target = find_condition(status, "FailureTarget")
        if target is not None:
            return Verdict("Failed", str(target.get("reason", "")), str(target.get("message", "")))
        if find_condition(status, "SuccessCriteriaMet"):
            return None
        spec = job["spec"]
        limit = int(spec.get("backoffLimit", 6))
        if status["failed"] > limit or _restarts_past_limit(spec, self.owned(job), limit):
            return BACKOFF_EXCEEDED
        remaining = _deadline_remaining(job, status, now)
        if remaining is not None and remaining <= 0:
            return DEADLINE_EXCEEDED
        return None

    def _complete(self, job: dict[str, Any], status: dict[str, Any]) -> bool:
        active = sum(pod_is_active(pod) for pod in self.owned(job))
        completions = job["spec"].get("completions")
        if completions is None:
            return status["succeeded"] > 0 and active == 0
        return status["succeeded"] >= int(completions) and active == 0

    # -- acting ----------------------------------------------------------------------------------

    async def _manage(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        """Create or delete pods towards the number that should be active."""
        pods = self.owned(job)
        active = [pod for pod in pods if pod_is_active(pod)]
        spec = job["spec"]
        if spec.get("suspend"):
            await self._delete(job, active, counted=False)
            return
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = len(active) if status["succeeded"] > 0 else parallelism
        else:
            want = max(0, min(int(completions) - status["succeeded"], parallelism))
        if len(active) > want:
            surplus = deletion_order(active)[: min(len(active) - want, MAX_POD_CHANGES)]
            await self._delete(job, surplus, counted=False)
            return
        if spec.get("podReplacementPolicy") == "Failed":
            want -= sum(_terminating(pod) for pod in pods)
        for _ in range(min(want - len(active), MAX_POD_CHANGES)):
            await self._create_pod(job)

    async def _fail_active(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        """A failing Job's active pods are deleted and count as failed (as upstream)."""
        active = [pod for pod in self.owned(job) if pod_is_active(pod)]
        await self._delete(job, active, counted=True)
        status["failed"] += len(active)

    async def _create_pod(self, job: dict[str, Any]) -> None:
        namespace, name = object_key(job)
        body = new_pod(job, "Job", job["spec"].get("template") or {}, f"{name}-", {})
        result = await self.cluster.create(self._pod_type, namespace, body, OPTIONS)
        self.dependents.observe(result.obj)

    async def _delete(self, job: dict[str, Any], pods: list[dict[str, Any]], counted: bool) -> None:
        removed = self._removed.setdefault(job["metadata"]["uid"], set())
        for pod in pods:
            if not counted:
                removed.add(pod["metadata"]["uid"])
            try:
                await self.cluster.delete(self._pod_type, *object_key(pod))
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise

    # -- status ----------------------------------------------------------------------------------

    def _finish(
        self, job: dict[str, Any], status: dict[str, Any], verdict: Verdict | None, now: datetime
    ) -> None:
        """Counts of the pods as they are now, and the interim and final conditions."""
        pods = self.owned(job)
        active = [pod for pod in pods if pod_is_active(pod)]
        status["active"] = len(active)
        status["ready"] = sum(pod_is_ready(pod) for pod in active)
        status["terminating"] = sum(_terminating(pod) for pod in pods)
        status["uncountedTerminatedPods"] = status.get("uncountedTerminatedPods") or {}
        if verdict is not None:
            conditions = list(status.get("conditions") or [])
            if not find_condition(status, verdict.interim):
                conditions.append(
                    _condition(verdict.interim, "True", verdict.reason, verdict.message, now)
                )
            if not active and not status["terminating"]:
                final = _condition(verdict.final, "True", verdict.reason, verdict.message, now)
                conditions.append(final)
                if verdict.final == "Complete":
                    status["completionTime"] = final["lastTransitionTime"]
            status["conditions"] = conditions
        for field in ("active", "succeeded", "failed"):
            if not status[field]:
                del status[field]  # omitempty, as the Go type serializes

    async def _write_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        current = self.cluster.store.get(JOBS, *object_key(job))
        if current is None or current.obj["metadata"].get("resourceVersion") != (
            job["metadata"].get("resourceVersion")
        ):
            return  # changed meanwhile: its own event brings another reconciliation
        if status == job.get("status"):
            return
        body = {**job, "status": status}
        await self.cluster.update(self._job_type, *object_key(job), body, OPTIONS, "status")

    def _recheck_deadline(self, job: dict[str, Any], status: dict[str, Any], now: datetime) -> None:
        """Come back when `activeDeadlineSeconds` runs out, unless the Job is already ending."""
        if find_condition(status, "FailureTarget") or find_condition(status, "SuccessCriteriaMet"):
            return
        remaining = _deadline_remaining(job, status, now)
        if remaining is not None and remaining > 0:
            self.queue.add_after(object_key(job), remaining)


def _suspension(status: dict[str, Any], suspended: bool, now: datetime) -> None:
    """Keep the Suspended condition in step with `spec.suspend` (`ensureJobConditionStatus`);
    resuming restarts the clock of `activeDeadlineSeconds`."""
    conditions = list(status.get("conditions") or [])
    existing = next((c for c in conditions if c.get("type") == "Suspended"), None)
    wanted = "True" if suspended else "False"
    if (existing is None and not suspended) or (existing or {}).get("status") == wanted:
        return
    reason, message = (
        ("JobSuspended", "Job suspended") if suspended else ("JobResumed", "Job resumed")
    )
    condition = _condition("Suspended", wanted, reason, message, now)
    if existing is None:
        conditions.append(condition)
    else:
        conditions[conditions.index(existing)] = condition
    if not suspended:
        status["startTime"] = now_rfc3339(now)
    status["conditions"] = conditions


def _deadline_remaining(job: dict[str, Any], status: dict[str, Any], now: datetime) -> float | None:
    """Seconds left of `activeDeadlineSeconds` (None when it does not apply)."""
    deadline = job["spec"].get("activeDeadlineSeconds")
    started = parse_time(status.get("startTime"))
    if deadline is None or started is None or job["spec"].get("suspend"):
        return None
    return float(deadline) - (now - started).total_seconds()


def _restarts_past_limit(spec: dict[str, Any], pods: list[dict[str, Any]], limit: int) -> bool:
    """OnFailure pods restart in place: their restarts count against `backoffLimit`."""
    if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if _phase(pod) in ("Running", "Pending"):
            status = pod.get("status") or {}
            for key in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(int(s.get("restartCount") or 0) for s in status.get(key) or [])
    return restarts > 0 if limit == 0 else restarts >= limit
