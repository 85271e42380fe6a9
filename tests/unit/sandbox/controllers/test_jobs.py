"""The Job controller in process: parallelism and completions, success and failure conditions
as 1.33 writes them, suspension, deadlines, cleanup and restart-safety."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.gc import GarbageCollector
from meshcanary.sandbox.controllers.jobs import JobController, job_finished
from meshcanary.sandbox.controllers.podtemplates import served_type

NS = "ns"


class Env(ControllerEnv[JobController]):
    def job(self) -> dict[str, Any]:
        entry = self.cluster.store.get("batch/jobs", NS, "work")
        assert entry is not None
        return entry.obj

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.job().get("status") or {}
        return status

    def pods(self, *phases: str) -> list[dict[str, Any]]:
        pods = [e.obj for e in self.cluster.store.list("/pods", NS)]
        return [p for p in pods if not phases or (p.get("status") or {}).get("phase") in phases]

    def active(self) -> list[dict[str, Any]]:
        return [
            p for p in self.pods("Pending", "Running") if not p["metadata"].get("deletionTimestamp")
        ]

    async def patch(self, skey: str, name: str, body: Any, sub: str = "") -> None:
        rt = served_type(self.cluster, skey)
        await self.cluster.patch(rt, NS, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)

    async def finish(self, pod: dict[str, Any], phase: str = "Succeeded") -> None:
        """What the kubelet reports when a pod's containers exit."""
        await self.patch("/pods", pod["metadata"]["name"], {"status": {"phase": phase}}, "status")
        await self.settle()

    async def run(self, pod: dict[str, Any]) -> None:
        """Bind the pod (so deleting it is graceful) and report it Running and Ready."""
        name = pod["metadata"]["name"]
        await self.patch("/pods", name, {"spec": {"nodeName": "node-1"}})
        ready = {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": now_rfc3339(self.clock.now()),
        }
        await self.patch(
            "/pods", name, {"status": {"phase": "Running", "conditions": [ready]}}, "status"
        )
        await self.settle()

    async def remove(self, pod: dict[str, Any]) -> None:
        """What the kubelet does once a terminating pod has stopped."""
        pods = served_type(self.cluster, "/pods")
        await self.cluster.delete(pods, NS, pod["metadata"]["name"], {"gracePeriodSeconds": 0})
        await self.settle()


def job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "work"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            },
            **spec,
        },
    }


@pytest.fixture
async def env() -> Env:
    return await Env.start(JobController, NS)


async def create(env: Env, body: dict[str, Any]) -> None:
    await env.cluster.create(served_type(env.cluster, "batch/jobs"), NS, body, OPTS)
    await env.settle()


def conditions(env: Env) -> list[tuple[str, str, str]]:
    return [
        (c["type"], c["status"], c.get("reason", "")) for c in env.status().get("conditions", [])
    ]


async def test_parallel_pods_run_to_the_completions(env: Env) -> None:
    await create(env, job(parallelism=2, completions=3))
    pods = env.pods()
    assert len(pods) == 2
    uid = env.job()["metadata"]["uid"]
    labels = pods[0]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "work"
    assert labels["batch.kubernetes.io/controller-uid"] == uid
    assert pods[0]["metadata"]["generateName"] == "work-"
    status = env.status()
    assert status["active"] == 2 and status["ready"] == 0 and status["terminating"] == 0
    assert status["startTime"] and status["uncountedTerminatedPods"] == {}
    await env.run(pods[0])
    assert env.status()["ready"] == 1

    await env.finish(pods[0])
    assert len(env.active()) == 2  # one more, for the third completion
    assert env.status()["succeeded"] == 1
    for pod in env.active():
        await env.finish(pod)
    assert len(env.pods()) == 3
    status = env.status()
    assert status["succeeded"] == 3 and "active" not in status and "failed" not in status
    assert conditions(env) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert status["conditions"][1]["message"] == "Reached expected number of succeeded pods"
    assert status["completionTime"] == status["conditions"][1]["lastTransitionTime"]
    assert job_finished(env.job()) == "Complete"


async def test_failures_past_the_backoff_limit_fail_the_job(env: Env) -> None:
    await create(env, job(parallelism=2, completions=4, backoffLimit=1))
    first, second = env.pods()
    await env.run(second)
    await env.finish(first, "Failed")
    assert env.status()["failed"] == 1 and len(env.active()) == 2  # replaced
    replacement = next(p for p in env.active() if p["metadata"]["uid"] != second["metadata"]["uid"])
    await env.finish(replacement, "Failed")
    # Two failures > backoffLimit 1: the running pod is deleted, counted, and waited for.
    assert conditions(env) == [("FailureTarget", "True", "BackoffLimitExceeded")]
    assert env.status()["failed"] == 3 and env.status()["terminating"] == 1
    await env.remove(second)
    assert conditions(env) == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert env.status()["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in env.status() and job_finished(env.job()) == "Failed"


async def test_a_pod_deleted_before_it_finished_counts_as_failed(env: Env) -> None:
    await create(env, job())
    [pod] = env.pods()
    await env.run(pod)
    await env.cluster.delete(served_type(env.cluster, "/pods"), NS, pod["metadata"]["name"])
    await env.settle()
    assert env.status()["failed"] == 1
    await env.remove(pod)
    assert env.status()["failed"] == 1 and len(env.active()) == 1


async def test_without_completions_the_first_success_ends_the_job(env: Env) -> None:
    await create(env, job(parallelism=2))
    first, second = env.pods()
    await env.finish(first)
    assert len(env.active()) == 1  # the other keeps running, nothing new starts
    assert job_finished(env.job()) is None
    await env.finish(second)
    assert job_finished(env.job()) == "Complete" and env.status()["succeeded"] == 2


async def test_lower_parallelism_deletes_surplus_pods_without_counting_them(env: Env) -> None:
    await create(env, job(parallelism=3, completions=3))
    for pod in env.pods():
        await env.run(pod)
    await env.patch("batch/jobs", "work", {"spec": {"parallelism": 1}})
    await env.settle()
    assert len(env.active()) == 1 and env.status()["terminating"] == 2
    assert "failed" not in env.status()


async def test_suspend_and_resume(env: Env) -> None:
    await create(env, job(parallelism=2, completions=2))
    started = env.status()["startTime"]
    await env.patch("batch/jobs", "work", {"spec": {"suspend": True}})
    await env.settle()
    assert env.active() == [] and "failed" not in env.status()
    assert conditions(env) == [("Suspended", "True", "JobSuspended")]
    await env.clock.advance(5)
    await env.patch("batch/jobs", "work", {"spec": {"suspend": False}})
    await env.settle()
    assert len(env.active()) == 2
    assert conditions(env) == [("Suspended", "False", "JobResumed")]
    assert env.status()["startTime"] != started


async def test_created_suspended_has_no_start_time(env: Env) -> None:
    await create(env, job(suspend=True))
    assert env.pods() == [] and "startTime" not in env.status()


async def test_active_deadline_fails_the_job_on_the_clock(env: Env) -> None:
    await create(env, job(activeDeadlineSeconds=30))
    [pod] = env.pods()
    await env.elapse(29)
    assert job_finished(env.job()) is None
    await env.elapse(2)
    assert conditions(env)[0] == ("FailureTarget", "True", "DeadlineExceeded")
    assert env.active() == []
    assert pod["metadata"]["name"] not in [p["metadata"]["name"] for p in env.pods()]
    assert job_finished(env.job()) == "Failed"


async def test_on_failure_restarts_count_against_the_backoff_limit(env: Env) -> None:
    body = job(backoffLimit=2)
    body["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    await create(env, body)
    [pod] = env.pods()
    statuses = [{"name": "c", "restartCount": 2, "ready": False, "image": "busybox"}]
    status = {"phase": "Running", "containerStatuses": statuses}
    await env.patch("/pods", pod["metadata"]["name"], {"status": status}, "status")
    await env.settle()
    assert conditions(env)[0] == ("FailureTarget", "True", "BackoffLimitExceeded")


async def test_pods_are_owned_so_the_garbage_collector_removes_them(env: Env) -> None:
    await create(env, job(parallelism=2, completions=2))
    gc = GarbageCollector(env.cluster, Context(clock=env.clock))
    await gc.resync()
    await env.cluster.delete(served_type(env.cluster, "batch/jobs"), NS, "work")
    await env.settle(gc)
    assert env.pods() == []


async def test_a_restarted_controller_neither_doubles_pods_nor_rewrites(env: Env) -> None:
    await create(env, job(parallelism=2, completions=4))
    await env.finish(env.pods()[0])
    rv = env.cluster.store.rv
    restarted = JobController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.cluster.store.rv == rv and len(env.active()) == 2
    assert env.status()["succeeded"] == 1
