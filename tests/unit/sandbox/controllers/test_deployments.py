"""The Deployment controller: ReplicaSets per template, rolling and recreate rollouts, pause,
undo, history cleanup, progress deadlines and restart safety, judged the way kubectl judges."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_replicasets import NS, Harness, template

from meshcanary.sandbox.apiserver.cluster import PATCH_JSON, PATCH_MERGE, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.apiserver.store import ALL_KEYS, Store
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.deployments import (
    DeploymentController,
    fenceposts,
    max_surge,
    max_unavailable,
    scaled_value,
)
from meshcanary.sandbox.controllers.podtemplates import pod_is_active, pod_is_ready, template_hash
from meshcanary.sandbox.controllers.replicasets import ReplicaSetController

REVISION = "deployment.kubernetes.io/revision"


def deployment(replicas: int = 4, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(),
            **spec,
        },
    }


def rollout_status(d: dict[str, Any]) -> str:
    """kubectl rollout status's verdict: "done", "waiting" or "error"."""
    status = d.get("status") or {}
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "waiting"
    for condition in status.get("conditions") or []:
        if condition["type"] == "Progressing" and condition["reason"] == "ProgressDeadlineExceeded":
            return "error"
    updated = status.get("updatedReplicas", 0)
    if updated < d["spec"]["replicas"] or status.get("replicas", 0) > updated:
        return "waiting"
    return "done" if status.get("availableReplicas", 0) >= updated else "waiting"


def condition(d: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in d["status"]["conditions"] if c["type"] == kind]
    assert found, f"no {kind} condition in {d['status']}"
    return found[0]


def replica_sets(h: Harness) -> list[dict[str, Any]]:
    return sorted(h.all("replicasets"), key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))


def restart_patch(stamp: str) -> dict[str, Any]:
    """What `kubectl rollout restart` sends."""
    notes = {"kubectl.kubernetes.io/restartedAt": stamp}
    return {"spec": {"template": {"metadata": {"annotations": notes}}}}


async def roll_to_completion(h: Harness) -> None:
    """Play the kubelet until `kubectl rollout status` says done."""
    for _ in range(50):
        await h.run_pods()
        await h.finish_terminating()
        if rollout_status(h.get("deployments", "web")) == "done":
            return
    raise AssertionError(f"the rollout never completed: {h.get('deployments', 'web')['status']}")


@pytest.fixture
async def harness() -> Harness:
    h = Harness(ReplicaSetController, DeploymentController)
    await h.start()
    return h


def test_surge_rounds_up_and_unavailable_rounds_down() -> None:
    assert scaled_value("25%", 10, round_up=True) == 3
    assert scaled_value("25%", 10, round_up=False) == 2
    assert scaled_value(2, 10, round_up=True) == 2
    d = deployment(replicas=4)
    d["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
    }
    assert fenceposts(d) == (0, 1)  # both zero would never progress
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "50%", "maxUnavailable": 9}
    assert (max_surge(d), max_unavailable(d)) == (2, 4)  # unavailable capped at replicas
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert (max_surge(d), max_unavailable(d)) == (0, 0)


async def test_a_new_deployment_gets_a_hashed_replica_set_and_pods(harness: Harness) -> None:
    await harness.create("deployments", deployment(replicas=4))
    [rs] = harness.all("replicasets")
    pod_hash = rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"] == {
        REVISION: "1",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5",
    }
    assert all(p["metadata"]["labels"]["pod-template-hash"] == pod_hash for p in harness.pods())
    d = harness.get("deployments", "web")
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert condition(d, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert condition(d, "Progressing")["reason"] == "ReplicaSetUpdated"
    assert rollout_status(d) == "waiting"
    await roll_to_completion(harness)
    d = harness.get("deployments", "web")
    assert d["status"] == {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 4,
        "readyReplicas": 4,
        "availableReplicas": 4,
        "conditions": d["status"]["conditions"],
    }
    assert condition(d, "Available")["status"] == "True"
    progressing = condition(d, "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'


async def test_rollout_restart_surges_and_drains_within_bounds(harness: Harness) -> None:
    await harness.create("deployments", deployment(replicas=4))
    await roll_to_completion(harness)
    [old] = harness.all("replicasets")
    await harness.patch("deployments", "web", restart_patch("2026-01-01T00:00:00Z"))
    d = harness.get("deployments", "web")
    assert rollout_status(d) == "waiting"
    new = next(
        rs for rs in harness.all("replicasets") if rs["metadata"]["uid"] != old["metadata"]["uid"]
    )
    # 25% of 4: one pod over and one short. The old ReplicaSet gives up one pod, which makes
    # room (in spec.replicas) for a second new one within the surge.
    assert (
        new["spec"]["replicas"],
        harness.get("replicasets", old["metadata"]["name"])["spec"]["replicas"],
    ) == (2, 3)
    assert (
        condition(d, "Progressing")["message"]
        == f'ReplicaSet "{new["metadata"]["name"]}" is progressing.'
    )

    seen: set[tuple[int, ...]] = set()

    def within_bounds() -> None:
        active = [p for p in harness.pods() if pod_is_active(p)]
        assert len(active) <= 5
        assert sum(pod_is_ready(p) for p in active) >= 3
        sizes = tuple(rs["spec"]["replicas"] for rs in replica_sets(harness))
        assert sum(sizes) <= 5
        seen.add(sizes)

    harness.checks.append(within_bounds)
    await roll_to_completion(harness)
    assert {(3, 2), (2, 3), (1, 4)} <= seen  # one pod at a time
    old, new = replica_sets(harness)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    assert new["metadata"]["annotations"][REVISION] == "2"
    d = harness.get("deployments", "web")
    assert d["metadata"]["annotations"][REVISION] == "2"
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"] == 2
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in harness.pods()} == {
        new["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    }


async def test_recreate_waits_for_every_old_pod_to_go(harness: Harness) -> None:
    await harness.create("deployments", deployment(replicas=3, strategy={"type": "Recreate"}))
    await roll_to_completion(harness)
    await harness.patch("deployments", "web", restart_patch("now"))
    [old] = harness.all("replicasets")
    assert old["spec"]["replicas"] == 0
    assert harness.pods() and not any(pod_is_active(p) for p in harness.pods())
    await harness.finish_terminating()
    old, new = replica_sets(harness)
    assert new["spec"]["replicas"] == 3
    await roll_to_completion(harness)
    assert (
        condition(harness.get("deployments", "web"), "Progressing")["reason"]
        == "NewReplicaSetAvailable"
    )


async def test_a_paused_deployment_scales_but_does_not_roll(harness: Harness) -> None:
    await harness.create("deployments", deployment(replicas=2))
    await roll_to_completion(harness)
    await harness.patch("deployments", "web", {"spec": {"paused": True}})
    progressing = condition(harness.get("deployments", "web"), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    await harness.patch("deployments", "web", restart_patch("now"))
    await harness.patch("deployments", "web", {"spec": {"replicas": 3}})
    [rs] = harness.all("replicasets")
    assert rs["spec"]["replicas"] == 3
    d = harness.get("deployments", "web")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    await harness.patch("deployments", "web", {"spec": {"paused": False}})
    await roll_to_completion(harness)
    assert len(harness.all("replicasets")) == 2
    assert harness.get("deployments", "web")["metadata"]["annotations"][REVISION] == "2"


async def test_rollout_undo_brings_the_old_replica_set_back_as_the_next_revision(
    harness: Harness,
) -> None:
    annotated = deployment(replicas=2)
    annotated["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    await harness.create("deployments", annotated)
    await roll_to_completion(harness)
    await harness.patch(
        "deployments",
        "web",
        {
            "metadata": {"annotations": {"kubernetes.io/change-cause": "second"}},
            **restart_patch("x"),
        },
    )
    await roll_to_completion(harness)
    first, second = replica_sets(harness)
    assert first["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
    assert second["metadata"]["annotations"]["kubernetes.io/change-cause"] == "second"
    # What `kubectl rollout undo` sends: revision 1's template, hash label removed.
    old_template = orjson.loads(orjson.dumps(first["spec"]["template"]))
    del old_template["metadata"]["labels"]["pod-template-hash"]
    undo = [{"op": "replace", "path": "/spec/template", "value": old_template}]
    deployments = harness.rt("apps", "deployments")
    raw = orjson.dumps(undo)
    await harness.cluster.patch(
        deployments, NS, "web", PATCH_JSON, raw, WriteOptions(field_manager="kubectl")
    )
    await harness.settle()
    await roll_to_completion(harness)
    assert len(harness.all("replicasets")) == 2
    second, first = replica_sets(harness)
    assert first["metadata"]["annotations"][REVISION] == "3"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert (first["spec"]["replicas"], second["spec"]["replicas"]) == (2, 0)
    assert harness.get("deployments", "web")["metadata"]["annotations"][REVISION] == "3"


async def test_revision_history_limit_deletes_the_oldest_idle_replica_sets(
    harness: Harness,
) -> None:
    await harness.create("deployments", deployment(replicas=1, revisionHistoryLimit=1))
    await roll_to_completion(harness)
    for n in range(3):
        await harness.patch("deployments", "web", restart_patch(str(n)))
        await roll_to_completion(harness)
        await harness.settle()
    revisions = [rs["metadata"]["annotations"][REVISION] for rs in replica_sets(harness)]
    assert revisions == ["3", "4"]


async def test_no_progress_within_the_deadline_is_progress_deadline_exceeded(
    harness: Harness,
) -> None:
    await harness.create("deployments", deployment(replicas=2, progressDeadlineSeconds=30))
    await harness.run_pods(ready=False)
    await harness.advance(29)
    d = harness.get("deployments", "web")
    assert condition(d, "Progressing")["reason"] == "ReplicaSetUpdated"
    await harness.advance(2)
    d = harness.get("deployments", "web")
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"].endswith("has timed out progressing.")
    assert rollout_status(d) == "error"
    for pod in harness.pods():
        await harness.set_ready(pod["metadata"]["name"], True)
    d = harness.get("deployments", "web")
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert rollout_status(d) == "done"


async def test_scaling_mid_rollout_is_proportional(harness: Harness) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    await harness.create("deployments", deployment(replicas=10, strategy=strategy))
    await roll_to_completion(harness)
    await harness.patch("deployments", "web", restart_patch("bad image"))  # never becomes Ready
    old, new = replica_sets(harness)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (8, 5)
    await harness.patch("deployments", "web", {"spec": {"replicas": 15}})
    old, new = replica_sets(harness)
    # The Kubernetes documentation's example: 3 more for the old, 2 for the new.
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (11, 7)
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "15"


async def test_a_name_taken_by_a_foreign_replica_set_bumps_the_collision_count(
    harness: Harness,
) -> None:
    deployments = harness.rt("apps", "deployments")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment(replicas=1)}
    dry = await harness.cluster.create(deployments, NS, body, WriteOptions(dry_run=True))
    taken = f"web-{template_hash(dry.obj['spec']['template'])}"
    squatter = {
        "metadata": {"name": taken, "labels": {"app": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": template("other"),
        },
    }
    await harness.create("replicasets", squatter)
    await harness.create("deployments", deployment(replicas=1))
    assert harness.get("deployments", "web")["status"]["collisionCount"] == 1
    [ours] = [rs for rs in harness.all("replicasets") if rs["metadata"]["name"] != taken]
    assert ours["spec"]["replicas"] == 1
    await roll_to_completion(harness)


async def test_a_restarted_controller_finishes_a_half_done_rollout(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = Harness(ReplicaSetController, DeploymentController, path=db)
    await first.start()
    await first.create("deployments", deployment(replicas=4))
    await roll_to_completion(first)
    await first.patch("deployments", "web", restart_patch("now"))
    await first.run_pods()
    await first.finish_terminating()
    first.cluster.store.close()  # the crash: only what was stored survives

    again = Harness(ReplicaSetController, DeploymentController, path=db)
    again.clock = first.clock
    again.context = Context(clock=first.clock)
    await again.start()
    assert len(again.all("replicasets")) == 2
    assert len([p for p in again.pods() if pod_is_active(p)]) <= 5
    await roll_to_completion(again)
    old, new = replica_sets(again)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert len(again.pods()) == 4


# -- with the controllers running as tasks and events flowing ------------------------------------


@contextlib.asynccontextmanager
async def running(harness: Harness) -> AsyncIterator[None]:
    """The controllers' own loops, plus a kubelet that answers pod events at once."""
    tasks = [asyncio.create_task(c.run()) for c in harness.controllers]
    tasks.append(asyncio.create_task(instant_kubelet(harness)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def instant_kubelet(h: Harness) -> None:
    subscription = h.cluster.store.subscribe("/pods")
    pods = h.rt("", "pods")
    opts = WriteOptions(field_manager="kubelet")
    while True:
        event = await subscription.queue.get()
        pod, name = event.entry.obj, event.entry.obj["metadata"]["name"]
        if event.type == "DELETED":
            continue
        if pod["metadata"].get("deletionTimestamp"):
            await h.cluster.delete(pods, NS, name, {"gracePeriodSeconds": 0})
        elif not pod["spec"].get("nodeName"):
            await h.cluster.patch(pods, NS, name, PATCH_MERGE, b'{"spec":{"nodeName":"n"}}', opts)
        elif not pod_is_ready(pod):
            ready = {"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}
            raw = orjson.dumps({"status": {"phase": "Running", "conditions": [ready]}})
            await h.cluster.patch(pods, NS, name, PATCH_MERGE, raw, opts, subresource="status")


async def until_done(store: Store) -> None:
    subscription = store.subscribe(ALL_KEYS)
    try:
        while True:
            entry = store.get("apps/deployments", NS, "web")
            if entry is not None and rollout_status(entry.obj) == "done":
                return
            await subscription.queue.get()
    finally:
        store.unsubscribe(subscription)


async def test_controller_loops_roll_out_as_events_flow() -> None:
    harness = Harness(ReplicaSetController, DeploymentController)
    await harness.start()
    async with running(harness):
        deployments = harness.rt("apps", "deployments")
        body = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment(replicas=5)}
        await harness.cluster.create(deployments, NS, body, WriteOptions())
        await asyncio.wait_for(until_done(harness.cluster.store), 10)
        raw = orjson.dumps(restart_patch("now"))
        await harness.cluster.patch(deployments, NS, "web", PATCH_MERGE, raw, WriteOptions())
        await asyncio.wait_for(until_done(harness.cluster.store), 10)
    old, new = replica_sets(harness)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 5)
    assert len(harness.pods()) == 5
