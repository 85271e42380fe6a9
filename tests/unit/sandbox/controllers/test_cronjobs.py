"""The CronJob controller in process: schedule parsing, Jobs on the fake clock, concurrency
policies, suspension, history limits, status and restart-safety."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver import metadata
from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.cronjobs import (
    SCHEDULED_ANNOTATION,
    CronJobController,
    Schedule,
    ScheduleError,
)
from meshcanary.sandbox.controllers.podtemplates import served_type

NS = "ns"
START = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)  # a Monday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/15 * * * *", "2026-03-02T10:07:00", "2026-03-02T10:15:00"),
        ("5,35 9-17 * * *", "2026-03-02T17:40:00", "2026-03-03T09:05:00"),
        ("0 0 * * MON-FRI", "2026-03-06T12:00:00", "2026-03-09T00:00:00"),
        ("0 12 1 JAN,jul *", "2026-03-02T00:00:00", "2026-07-01T12:00:00"),
        ("30 6 10/10 * *", "2026-03-02T00:00:00", "2026-03-10T06:30:00"),
        ("@hourly", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
        ("@daily", "2026-12-31T23:59:00", "2027-01-01T00:00:00"),
        ("0 0 29 2 *", "2026-03-02T00:00:00", "2028-02-29T00:00:00"),
        # Day of month and day of week both restricted: either one runs (the 13th, or Fridays).
        ("0 0 13 * 5", "2026-03-02T00:00:00", "2026-03-06T00:00:00"),
        # A step on `*` counts as unrestricted: both must match (robfig/cron).
        ("0 0 */2 * 5", "2026-03-02T00:00:00", "2026-03-13T00:00:00"),
    ],
)
def test_next_schedule_time(schedule: str, after: str, expected: str) -> None:
    assert Schedule.parse(schedule).next_after(at(after), UTC) == at(expected)


def test_latest_time_and_time_zones() -> None:
    schedule = Schedule.parse("0 9 * * *")
    assert schedule.latest_at_or_before(at("2026-03-02T09:00:00"), UTC) == at("2026-03-02T09:00:00")
    assert schedule.latest_at_or_before(at("2026-03-02T08:59:59"), UTC) == at("2026-03-01T09:00:00")
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in March, before the switch to summer time
    assert schedule.next_after(at("2026-03-02T00:00:00"), berlin) == at("2026-03-02T08:00:00")


@pytest.mark.parametrize("bad", ["* * * *", "60 * * * *", "* * * * 7", "*/0 * * * *", "x * * * *"])
def test_invalid_schedules_are_rejected(bad: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(bad)


# -- the controller ----------------------------------------------------------------------------


class Env(ControllerEnv[CronJobController]):
    async def elapse_to(self, moment: datetime) -> None:
        """Let pending timers arm (their tasks start), move the clock, then settle."""
        await self.clock.advance(0)
        await self.clock.advance((moment - self.clock.now()).total_seconds())
        await self.settle()

    def cronjob(self) -> dict[str, Any]:
        entry = self.cluster.store.get("batch/cronjobs", NS, "tick")
        assert entry is not None
        return entry.obj

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.cronjob().get("status") or {}
        return status

    def jobs(self) -> list[dict[str, Any]]:
        return [e.obj for e in self.cluster.store.list("batch/jobs", NS)]

    def job_names(self) -> list[str]:
        return [j["metadata"]["name"] for j in self.jobs()]

    async def patch(self, skey: str, name: str, body: Any, sub: str = "") -> None:
        rt = served_type(self.cluster, skey)
        await self.cluster.patch(rt, NS, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)
        await self.settle()

    async def end_job(self, name: str, outcome: str = "Complete") -> None:
        """What the job controller writes when a Job ends."""
        now = metadata.now_rfc3339(self.clock.now())
        conditions = [{"type": outcome, "status": "True", "lastTransitionTime": now}]
        status: dict[str, Any] = {"conditions": conditions, "startTime": now}
        if outcome == "Complete":
            status["completionTime"] = now
        await self.patch("batch/jobs", name, {"status": status}, "status")


def minutes(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def cronjob(schedule: str = "*/5 * * * *", **spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "b"}]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": template}},
            **spec,
        },
    }


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> Env:
    clock = FakeClock(START)
    stamp = metadata.now_rfc3339
    monkeypatch.setattr(metadata, "now_rfc3339", lambda now=None: stamp(now or clock.now()))
    return await Env.start(CronJobController, NS, clock)


async def create(env: Env, body: dict[str, Any]) -> None:
    await env.cluster.create(served_type(env.cluster, "batch/cronjobs"), NS, body, OPTS)
    await env.settle()


async def test_a_job_is_created_at_each_schedule_time(env: Env) -> None:
    await create(env, cronjob())
    assert env.jobs() == []
    first = at("2026-03-02T10:05:00")
    await env.elapse_to(first)
    [job] = env.jobs()
    assert job["metadata"]["name"] == f"tick-{minutes(first)}"
    assert job["metadata"]["labels"]["team"] == "a"
    assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == "2026-03-02T10:05:00Z"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "CronJob" and owner["controller"] is True
    status = env.status()
    assert status["lastScheduleTime"] == "2026-03-02T10:05:00Z"
    assert [ref["name"] for ref in status["active"]] == [job["metadata"]["name"]]
    assert status["active"][0]["uid"] == job["metadata"]["uid"]
    await env.elapse_to(at("2026-03-02T10:10:00"))
    assert len(env.jobs()) == 2 and len(env.status()["active"]) == 2  # Allow: they overlap


async def test_finished_jobs_leave_active_and_set_last_successful_time(env: Env) -> None:
    await create(env, cronjob())
    await env.elapse_to(at("2026-03-02T10:05:00"))
    await env.elapse_to(at("2026-03-02T10:06:00"))
    await env.end_job(env.job_names()[0])
    status = env.status()
    assert "active" not in status
    assert status["lastSuccessfulTime"] == "2026-03-02T10:06:00Z"


async def test_forbid_skips_while_a_job_runs_then_catches_up(env: Env) -> None:
    await create(env, cronjob(concurrencyPolicy="Forbid"))
    await env.elapse_to(at("2026-03-02T10:05:00"))
    await env.elapse_to(at("2026-03-02T10:10:00"))
    assert len(env.jobs()) == 1
    await env.elapse_to(at("2026-03-02T10:12:00"))
    await env.end_job(env.job_names()[0])
    # The missed 10:10 run starts as soon as the running one is done.
    assert env.job_names()[1] == f"tick-{minutes(at('2026-03-02T10:10:00'))}"
    assert env.status()["lastScheduleTime"] == "2026-03-02T10:10:00Z"


async def test_replace_deletes_the_running_job(env: Env) -> None:
    await create(env, cronjob(concurrencyPolicy="Replace"))
    await env.elapse_to(at("2026-03-02T10:05:00"))
    await env.elapse_to(at("2026-03-02T10:10:00"))
    assert env.job_names() == [f"tick-{minutes(at('2026-03-02T10:10:00'))}"]
    assert [ref["name"] for ref in env.status()["active"]] == env.job_names()


async def test_suspended_cronjobs_create_nothing(env: Env) -> None:
    await create(env, cronjob(suspend=True))
    await env.elapse_to(at("2026-03-02T10:20:00"))
    assert env.jobs() == []
    await env.patch("batch/cronjobs", "tick", {"spec": {"suspend": False}})
    # Resumed: the most recent missed time runs once, as upstream (no startingDeadlineSeconds).
    assert env.job_names() == [f"tick-{minutes(at('2026-03-02T10:20:00'))}"]


async def test_starting_deadline_drops_runs_too_late_to_start(env: Env) -> None:
    await create(env, cronjob(suspend=True, startingDeadlineSeconds=60))
    await env.elapse_to(at("2026-03-02T10:07:00"))
    await env.patch("batch/cronjobs", "tick", {"spec": {"suspend": False}})
    assert env.jobs() == []


async def test_history_limits_prune_the_oldest_finished_jobs(env: Env) -> None:
    body = cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1)
    await create(env, body)
    for minute in (5, 10, 15):
        await env.elapse_to(at(f"2026-03-02T10:{minute:02d}:00"))
        await env.end_job(env.job_names()[-1])
    assert env.job_names() == [f"tick-{minutes(at('2026-03-02T10:15:00'))}"]
    await env.elapse_to(at("2026-03-02T10:20:00"))
    await env.end_job(env.job_names()[-1], "Failed")
    assert len(env.jobs()) == 2  # one succeeded, one failed


async def test_time_zone_shifts_the_schedule_and_the_annotation(env: Env) -> None:
    await create(env, cronjob("0 12 * * *", timeZone="Europe/Berlin"))
    await env.elapse_to(at("2026-03-02T11:00:00"))
    [job] = env.jobs()
    assert job["metadata"]["annotations"][SCHEDULED_ANNOTATION] == "2026-03-02T12:00:00+01:00"


async def test_a_restarted_controller_does_not_run_a_time_twice(env: Env) -> None:
    await create(env, cronjob())
    await env.elapse_to(at("2026-03-02T10:05:00"))
    rv = env.cluster.store.rv
    restarted = CronJobController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.cluster.store.rv == rv and len(env.jobs()) == 1


async def test_an_active_job_missing_from_status_is_listed_again(env: Env) -> None:
    await create(env, cronjob())
    await env.elapse_to(at("2026-03-02T10:05:00"))
    # As after a crash between creating the Job and recording it in the status.
    await env.patch("batch/cronjobs", "tick", {"status": {"active": None}}, "status")
    assert [ref["name"] for ref in env.status()["active"]] == env.job_names()
