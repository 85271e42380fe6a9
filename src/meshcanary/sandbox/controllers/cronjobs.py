"""CronJobs: a Job from `jobTemplate` at each time of a cron schedule, on the injected clock.

Why: clusters under a canary upgrade run periodic work (certificate rotation, backups, mesh
health probes), and a rehearsal should see those Jobs appear, overlap or not as
`concurrencyPolicy` says, and be pruned, as on a real cluster, in accelerated time when the
clock is fake.

How, as kube-controller-manager's `cronjob_controllerv2.go`: at each reconciliation the most
recent schedule time after `lastScheduleTime` (or the creation time, and no earlier than
`startingDeadlineSeconds` ago) that is not in the future is due; missed earlier times are
skipped, as upstream does. A due time makes the Job `<name>-<unix minutes>` (an existing Job of
that name means it was made already), unless the policy is Forbid and a Job is still active;
Replace deletes the active ones first. `status.active` lists the unfinished Jobs the CronJob
owns (so a crash between creating a Job and writing the status loses nothing),
`lastSuccessfulTime` follows their completions, and finished Jobs beyond the history limits are
deleted, oldest start first. The next reconciliation is queued for the next schedule time;
`suspend` stops scheduling.

Schedules: five fields (minute, hour, day of month, month, day of week) with `*`, `?`, lists,
ranges, steps and JAN-DEC / SUN-SAT names, or @yearly, @annually, @monthly, @weekly, @daily,
@midnight, @hourly; as in robfig/cron, when day of month and day of week are both restricted
(neither starts with `*` or `?`) a day matching either runs. `spec.timeZone` names an IANA zone
(UTC when unset); the Job gets the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation
in that zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.jobs import job_finished
from meshcanary.sandbox.controllers.podtemplates import (
    OwnerController,
    controller_ref,
    object_key,
    parse_time,
    served_type,
)

JOBS = "batch/jobs"
CRONJOBS = "batch/cronjobs"
OPTIONS = WriteOptions(field_manager="cronjob-controller")
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SEARCH_YEARS = 5
_MINUTE = timedelta(minutes=1)


class ScheduleError(ValueError):
    """A schedule this parser (and robfig/cron) rejects."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    def value(self, token: str) -> int:
        lowered = token.lower()
        if lowered in self.names:
            return self.names[lowered]
        if not token.isdigit():
            raise ScheduleError(f"failed to parse int from {token!r} in the {self.name} field")
        return int(token)

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for part in text.split(","):
            values.update(self._part(part))
        return frozenset(values)

    def _part(self, part: str) -> range:
        span, slash, step_text = part.partition("/")
        step = self.value(step_text) if slash else 1
        if span in ("*", "?"):
            low, high = self.low, self.high
        elif "-" in span:
            first, _, last = span.partition("-")
            low, high = self.value(first), self.value(last)
        else:
            low = self.value(span)
            high = self.high if slash else low
        if step < 1 or low < self.low or high > self.high or low > high:
            raise ScheduleError(f"{part!r} is out of range in the {self.name} field")
        return range(low, high + 1, step)


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    _Field("day of week", 0, 6, {name: i for i, name in enumerate(_WEEKDAYS)}),
)


@dataclass(frozen=True)
class Schedule:
    """A parsed cron schedule, matched in local wall-clock time."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    """Day of month or day of week starts with `*` or `?`: both must then match."""

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = MACROS.get(text.strip().lower(), text)
        fields = text.split()
        if len(fields) != 5:
            raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: {text!r}")
        minutes, hours, days, months, weekdays = (
            spec.parse(field) for spec, field in zip(_FIELDS, fields, strict=True)
        )
        any_day = fields[2].startswith(("*", "?")) or fields[4].startswith(("*", "?"))
        return cls(minutes, hours, days, months, weekdays, any_day)

    def _day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days
        in_week = (moment.weekday() + 1) % 7 in self.weekdays
        return in_month and in_week if self.any_day else in_month or in_week

    def next_after(self, moment: datetime, zone: tzinfo) -> datetime | None:
        """The first schedule time strictly after `moment` (UTC; None if none within years)."""
        local = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        return self._search(local + _MINUTE, zone, forward=True)

    def latest_at_or_before(self, moment: datetime, zone: tzinfo) -> datetime | None:
        """The last schedule time not after `moment` (UTC; None if none within years)."""
        local = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        return self._search(local, zone, forward=False)

    def _search(self, local: datetime, zone: tzinfo, forward: bool) -> datetime | None:
        """Walk from `local` to the nearest match, skipping whole months, days and hours."""
        start_year = local.year
        while abs(local.year - start_year) <= _SEARCH_YEARS:
            if local.month not in self.months:
                month = local.replace(day=1, hour=0, minute=0)
                local = _next_month(month) if forward else month - _MINUTE
            elif not self._day_matches(local):
                day = local.replace(hour=0, minute=0)
                local = day + timedelta(days=1) if forward else day - _MINUTE
            elif local.hour not in self.hours:
                hour = local.replace(minute=0)
                local = hour + timedelta(hours=1) if forward else hour - _MINUTE
            elif local.minute not in self.minutes:
                local = local + _MINUTE if forward else local - _MINUTE
            else:
                return local.replace(tzinfo=zone).astimezone(UTC)
        return None


def _next_month(first: datetime) -> datetime:
    return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)


def time_zone(name: str | None) -> tzinfo | None:
    """The IANA zone `name` (UTC when unset; None when unknown)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339 rendering: "Z" for UTC, else the offset."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    sign, offset = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    return f"{text}{sign}{hours:02d}:{rest // 60:02d}"


def job_name(cronjob: dict[str, Any], scheduled: datetime) -> str:
    """`<cronjob>-<scheduled time in unix minutes>`: one name per schedule time."""
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: dict[str, Any], scheduled: datetime, zone: tzinfo) -> dict[str, Any]:
    """The Job a CronJob creates for `scheduled` (`getJobFromTemplate2`)."""
    template = cronjob["spec"].get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = rfc3339(scheduled.astimezone(zone))
    meta: dict[str, Any] = {
        "name": job_name(cronjob, scheduled),
        "annotations": annotations,
        "ownerReferences": [controller_ref(cronjob, "CronJob")],
    }
    if template_meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])
    spec: dict[str, Any] = orjson.loads(orjson.dumps(template.get("spec") or {}))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def _reference(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def _start_order(job: dict[str, Any]) -> tuple[bool, float, str]:
    """Oldest start first, Jobs never started last (upstream's `byJobStartTime`)."""
    started = parse_time((job.get("status") or {}).get("startTime"))
    return (started is None, started.timestamp() if started else 0.0, job["metadata"]["name"])


class CronJobController(OwnerController):
    """Creates the Jobs of every CronJob on schedule and keeps its status."""

    owner_skey = CRONJOBS
    dependent_skey = JOBS

    def __init__(self, cluster: Cluster, context: Context | None = None) -> None:
        super().__init__(cluster, context)
        self._job_type = served_type(cluster, JOBS)
        self._cron_type = served_type(cluster, CRONJOBS)

    async def reconcile(self, owner: dict[str, Any]) -> None:
        now = self.clock.now()
        status = dict(owner.get("status") or {})
        self._track(owner, status)
        plan = None if owner["spec"].get("suspend") else _plan(owner)
        if plan is not None and not owner["metadata"].get("deletionTimestamp"):
            await self._run_due(owner, status, *plan, now)
        await self._prune(owner)
        await self._write_status(owner, status)
        if plan is not None:
            upcoming = plan[0].next_after(now, plan[1])
            if upcoming is not None:
                self.queue.add_after(object_key(owner), (upcoming - now).total_seconds())

    def _track(self, cronjob: dict[str, Any], status: dict[str, Any]) -> None:
        """`active`: the owned Jobs still running; `lastSuccessfulTime`: the latest completion."""
        jobs = self.owned(cronjob)
        running = {job["metadata"]["uid"]: job for job in jobs if not job_finished(job)}
        active = [ref for ref in status.get("active") or [] if ref.get("uid") in running]
        listed = {ref["uid"] for ref in active}
        active += [_reference(job) for uid, job in running.items() if uid not in listed]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        completions = [
            parse_time((job.get("status") or {}).get("completionTime"))
            for job in jobs
            if job_finished(job) == "Complete"
        ]
        completions.append(parse_time(status.get("lastSuccessfulTime")))
        latest = max((moment for moment in completions if moment is not None), default=None)
        if latest is not None:
            status["lastSuccessfulTime"] = now_rfc3339(latest)

    async def _run_due(
        self,
        cronjob: dict[str, Any],
        status: dict[str, Any],
        schedule: Schedule,
        zone: tzinfo,
        now: datetime,
    ) -> None:
        """Create the Job of the most recent unstarted schedule time, if one is due."""
        scheduled = _due_time(cronjob, status, schedule, zone, now)
        if scheduled is None:
            return
        namespace, _ = object_key(cronjob)
        if self.cluster.store.get(JOBS, namespace, job_name(cronjob, scheduled)) is not None:
            return
        policy = cronjob["spec"].get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            return
        if policy == "Replace":
            await self._delete_jobs(namespace, [ref["name"] for ref in status.get("active") or []])
            status.pop("active", None)
        body = job_from_template(cronjob, scheduled, zone)
        created = await self.cluster.create(self._job_type, namespace, body, OPTIONS)
        self.dependents.observe(created.obj)
        status["active"] = [*(status.get("active") or []), _reference(created.obj)]
        status["lastScheduleTime"] = now_rfc3339(scheduled)

    async def _prune(self, cronjob: dict[str, Any]) -> None:
        """Delete finished Jobs beyond the history limits, oldest start first."""
        spec, jobs = cronjob["spec"], self.owned(cronjob)
        limits = (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit"))
        for outcome, field in limits:
            if spec.get(field) is None:
                continue
            finished = sorted((j for j in jobs if job_finished(j) == outcome), key=_start_order)
            surplus = finished[: max(0, len(finished) - int(spec[field]))]
            await self._delete_jobs(
                object_key(cronjob)[0], [j["metadata"]["name"] for j in surplus]
            )

    async def _delete_jobs(self, namespace: str, names: list[str]) -> None:
        for name in names:
            try:
                await self.cluster.delete(
                    self._job_type, namespace, name, {"propagationPolicy": "Background"}
                )
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise

    async def _write_status(self, cronjob: dict[str, Any], status: dict[str, Any]) -> None:
        current = self.cluster.store.get(CRONJOBS, *object_key(cronjob))
        if current is None or current.obj["metadata"].get("resourceVersion") != (
            cronjob["metadata"].get("resourceVersion")
        ):
            return  # changed meanwhile: its own event brings another reconciliation
        if status == (cronjob.get("status") or {}):
            return
        body = {**cronjob, "status": status}
        await self.cluster.update(self._cron_type, *object_key(cronjob), body, OPTIONS, "status")


def _plan(cronjob: dict[str, Any]) -> tuple[Schedule, tzinfo] | None:
    """The CronJob's schedule and zone (None when either is invalid: nothing is scheduled)."""
    zone = time_zone(cronjob["spec"].get("timeZone"))
    try:
        schedule = Schedule.parse(str(cronjob["spec"].get("schedule") or ""))
    except ScheduleError:
        return None
    return None if zone is None else (schedule, zone)


def _due_time(
    cronjob: dict[str, Any],
    status: dict[str, Any],
    schedule: Schedule,
    zone: tzinfo,
    now: datetime,
) -> datetime | None:
    """The most recent schedule time in (last schedule or creation, now], within the deadline."""
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(
        cronjob["metadata"].get("creationTimestamp")
    )
    deadline = cronjob["spec"].get("startingDeadlineSeconds")
    if deadline is not None:
        window_start = now - timedelta(seconds=int(deadline))
        earliest = max(earliest, window_start) if earliest else window_start
    latest = schedule.latest_at_or_before(now, zone)
    if latest is None or (earliest is not None and latest <= earliest):
        return None
    return latest
