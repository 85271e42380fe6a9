"""The migration engine against a real in-process sandbox: rollouts, injection and records.

Two SMM-style revisions (hand-written istiod installs, tests/e2e/istio_manifests.py) run in the
sandbox; its simulated istiod injects once its Deployment's pod is Ready, so a restarted pod
really comes back with the new revision's proxy, and a bare pod really stays behind.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.e2e import istio_manifests
from tests.e2e.istio_manifests import workload
from tests.unit.controlplane.test_reconcile import cluster

from meshcanary.kube import apply, errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.mesh import proxies
from meshcanary.migrate import engine, plan, records, steps

__all__ = ["cluster"]

A = "cp-a.istio-system"
B = "cp-b.istio-system"
WAIT = 30.0


async def install_revisions(kube: Client) -> None:
    """cp-a (1.13.9) and cp-b (1.15.3), both Available.

    Each istiod runs before its webhook exists: its own pod carries `istio.io/rev`, which its
    `rev.object` webhook would match (failing closed while istiod has no endpoint).
    """
    for cp, version in (("cp-a", "1.13.9"), ("cp-b", "1.15.3")):
        objects = istio_manifests.smm_revision(cp, version)
        webhooks = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
        await apply.apply_manifests(kube, [o for o in objects if o not in webhooks])
        await listing.watch_until(
            kube,
            resources.raw(resources.Deployment),
            "istio-system",
            f"istiod-{cp}",
            lambda d: bool(d and (d.get("status") or {}).get("availableReplicas")),
            timeout=WAIT,
        )
        await apply.apply_manifests(kube, webhooks)


def bare_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
    }


async def namespace_on(
    kube: Client, name: str, revision: str, objects: list[dict[str, Any]], pods: int
) -> None:
    """A namespace labelled for `revision` whose `pods` pods are Ready and injected."""
    labels = {"istio.io/rev": revision}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    await apply.apply_manifests(kube, [ns])
    for obj in objects:
        obj["metadata"]["namespace"] = name
        await apply.apply_manifest(kube, obj)
    await until_pods(kube, name, pods, revision)


async def pod_revisions(kube: Client, namespace: str) -> dict[str, str | None]:
    pods = await listing.collect(kube, resources.raw(resources.Pod), namespace=namespace)
    found = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in proxies.FINISHED_PHASES:
            continue
        proxy = proxies.proxy_from_pod(pod)
        found[pod["metadata"]["name"]] = proxy.revision if proxy else None
    return found


async def until_pods(kube: Client, namespace: str, count: int, revision: str) -> None:
    for _ in range(400):
        pods = await listing.collect(kube, resources.raw(resources.Pod), namespace=namespace)
        ready = [p for p in pods if proxies.proxy_from_pod(p) and proxies.proxy_from_pod(p).ready]  # type: ignore[union-attr]
        if len(ready) >= count and all(
            proxies.revision_of(p["metadata"]) == revision for p in ready
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{namespace}: pods never ready on {revision}")


async def namespace(kube: Client, name: str) -> dict[str, Any]:
    found = await listing.get(kube, resources.Namespace, name)
    assert found is not None
    return found


STACK = [
    ("Deployment", "web", 2),
    ("StatefulSet", "db", 1),
    ("DaemonSet", "agent", 1),
]


def stack() -> list[dict[str, Any]]:
    return [workload(kind, name, replicas) for kind, name, replicas in STACK]


# -- tests ---------------------------------------------------------------------------------------


async def test_migrate_restarts_every_controller_and_verifies(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, stack(), pods=4)
    events: list[steps.StepProgress] = []

    [result] = await engine.migrate(cluster, ["shop"], "cp-b", timeout=WAIT, progress=events.append)

    assert result.outcome is engine.Outcome.MIGRATED, result.message
    assert result.previous == A
    assert {str(c) for c in result.plan.controllers} == {
        "deployment/web",
        "statefulset/db",
        "daemonset/agent",
    }
    assert set((await pod_revisions(cluster, "shop")).values()) == {B}
    ns = await namespace(cluster, "shop")
    assert ns["metadata"]["labels"]["istio.io/rev"] == B
    assert ns["metadata"]["annotations"][records.PREVIOUS_ANNOTATION] == A
    record = records.read(ns)
    assert record is not None
    assert (record.target, record.source, record.result, record.step) == (
        B,
        A,
        "succeeded",
        "done",
    )
    assert [e.step for e in events][-1] is records.Step.DONE


async def test_second_run_is_a_no_op(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, stack(), pods=4)
    await engine.migrate(cluster, ["shop"], "cp-b", timeout=WAIT)
    before = (await namespace(cluster, "shop"))["metadata"]["resourceVersion"]

    [again] = await engine.migrate(cluster, ["shop"], B, timeout=WAIT)

    assert again.outcome is engine.Outcome.NOTHING_TO_DO
    assert (await namespace(cluster, "shop"))["metadata"]["resourceVersion"] == before


async def test_dry_run_changes_nothing(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, [workload("Deployment", "web")], pods=1)
    ns = await namespace(cluster, "shop")
    web = await listing.get(cluster, resources.Deployment, "web", namespace="shop")
    assert web is not None

    [result] = await engine.migrate(cluster, ["shop"], "cp-b", dry_run=True)

    assert result.outcome is engine.Outcome.PLANNED
    assert result.plan.label_patch == {"istio.io/rev": B}
    after = await listing.get(cluster, resources.Deployment, "web", namespace="shop")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == web["metadata"]["resourceVersion"]
    rv = (await namespace(cluster, "shop"))["metadata"]["resourceVersion"]
    assert rv == ns["metadata"]["resourceVersion"]


async def test_bare_pod_is_named_and_fails_verification(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "lab", A, [workload("Deployment", "web"), bare_pod("debug")], 2)

    [result] = await engine.migrate(cluster, ["lab"], "cp-b", timeout=WAIT)

    assert result.outcome is engine.Outcome.FAILED
    assert result.stragglers == ("debug",)
    assert [(u.pod, u.kind) for u in result.plan.unrestartable] == [("debug", "Pod")]
    revisions_now = await pod_revisions(cluster, "lab")
    assert revisions_now.pop("debug") == A
    assert set(revisions_now.values()) == {B}
    record = records.read(await namespace(cluster, "lab"))
    assert record is not None and record.result == "failed"

    await apply.delete(cluster, resources.Pod, "debug", namespace="lab")
    await listing.watch_until(
        cluster, resources.raw(resources.Pod), "lab", "debug", lambda p: p is None, timeout=WAIT
    )
    [rerun] = await engine.migrate(cluster, ["lab"], "cp-b", timeout=WAIT)
    assert rerun.outcome is engine.Outcome.NOTHING_TO_DO
    closed = await namespace(cluster, "lab")
    assert records.read(closed).result == "succeeded"  # type: ignore[union-attr]
    await engine.migrate(cluster, ["lab"], "cp-b", timeout=WAIT)
    rv = closed["metadata"]["resourceVersion"]
    assert (await namespace(cluster, "lab"))["metadata"]["resourceVersion"] == rv


async def test_rollback_returns_to_the_recorded_revision(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, [workload("Deployment", "web", 2)], pods=2)
    await engine.migrate(cluster, ["shop"], "cp-b", timeout=WAIT)

    [result] = await engine.rollback(cluster, ["shop"], timeout=WAIT)

    assert result.outcome is engine.Outcome.MIGRATED, result.message
    assert result.target == A
    assert set((await pod_revisions(cluster, "shop")).values()) == {A}
    ns = await namespace(cluster, "shop")
    assert ns["metadata"]["annotations"][records.PREVIOUS_ANNOTATION] == B


async def test_target_not_available_changes_nothing(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, [workload("Deployment", "web")], pods=1)
    await apply.merge_patch(
        cluster,
        resources.Deployment,
        "istiod-cp-b",
        {"spec": {"replicas": 0}},
        namespace="istio-system",
    )
    await listing.watch_until(
        cluster,
        resources.raw(resources.Deployment),
        "istio-system",
        "istiod-cp-b",
        lambda d: not (d or {}).get("status", {}).get("availableReplicas"),
        timeout=WAIT,
    )
    before = (await namespace(cluster, "shop"))["metadata"]["resourceVersion"]

    with pytest.raises(engine.TargetUnavailable, match="not Available"):
        await engine.migrate(cluster, ["shop"], "cp-b", timeout=WAIT)

    assert (await namespace(cluster, "shop"))["metadata"]["resourceVersion"] == before


async def test_unknown_inputs_are_usage_errors(cluster: Client) -> None:
    await install_revisions(cluster)
    with pytest.raises(engine.TargetNotFound):
        await engine.migrate(cluster, ["default"], "cp-zzz")
    with pytest.raises(engine.NamespaceNotFound, match="nope"):
        await engine.migrate(cluster, ["default", "nope"], "cp-b")
    with pytest.raises(engine.NoPreviousRevision):
        await engine.rollback(cluster, ["default"])


async def test_parallel_namespaces_and_istio_injection_removal(cluster: Client) -> None:
    await install_revisions(cluster)
    names = [f"team-{i}" for i in range(4)]
    for name in names:
        await namespace_on(cluster, name, A, [workload("Deployment", "web")], pods=1)
    await apply.merge_patch(
        cluster,
        resources.Namespace,
        "team-0",
        {"metadata": {"labels": {"istio-injection": "disabled"}}},
    )

    results = await engine.migrate(cluster, names, "cp-b", parallel=2, timeout=WAIT)

    assert [r.outcome for r in results] == [engine.Outcome.MIGRATED] * 4
    labels = (await namespace(cluster, "team-0"))["metadata"]["labels"]
    assert "istio-injection" not in labels and labels["istio.io/rev"] == B


async def test_interrupted_run_is_recorded_and_resumable(cluster: Client) -> None:
    await install_revisions(cluster)
    await namespace_on(cluster, "shop", A, [workload("Deployment", "web", 2)], pods=2)
    started = asyncio.Event()

    def progress(event: steps.StepProgress) -> None:
        if event.step is records.Step.WAIT:
            started.set()

    task = asyncio.create_task(engine.migrate(cluster, ["shop"], "cp-b", progress=progress))
    await asyncio.wait_for(started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ns = await namespace(cluster, "shop")
    record = records.read(ns)
    assert record is not None and record.result == "interrupted"
    assert ns["metadata"]["labels"]["istio.io/rev"] == B

    [resumed] = await engine.migrate(cluster, ["shop"], "cp-b", timeout=WAIT)

    assert resumed.outcome in (engine.Outcome.MIGRATED, engine.Outcome.NOTHING_TO_DO)
    assert set((await pod_revisions(cluster, "shop")).values()) == {B}
    final = records.read(await namespace(cluster, "shop"))
    assert final is not None and final.result == "succeeded"


def test_rollout_state_follows_kubectl_rules() -> None:
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 3},
    }
    assert steps.rollout_state("Deployment", deployment) == "1 old replicas pending termination"
    deployment["status"] |= {"replicas": 2, "availableReplicas": 2}
    assert steps.rollout_state("Deployment", deployment) is None
    deployment["status"]["conditions"] = [
        {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
    ]
    with pytest.raises(steps.StepFailed, match="progress deadline"):
        steps.rollout_state("Deployment", deployment)
    sts = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 1,
            "updateRevision": "b",
            "currentRevision": "a",
        },
    }
    assert steps.rollout_state("StatefulSet", sts) is not None
    sts["status"]["currentRevision"] = "b"
    assert steps.rollout_state("StatefulSet", sts) is None
    ds = {
        "metadata": {},
        "spec": {},
        "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2},
    }
    assert steps.rollout_state("DaemonSet", ds) == "2 of 3 updated pods available"


def test_record_round_trips_as_json() -> None:
    from datetime import UTC, datetime

    record = records.start(B, A, datetime(2026, 1, 1, tzinfo=UTC)).at(records.Step.WAIT)
    data = json.loads(record.to_json())
    assert data == {
        "target": B,
        "from": A,
        "step": "wait",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": None,
        "result": "running",
        "message": "",
    }
    ns = {"metadata": {"annotations": {records.MIGRATION_ANNOTATION: record.to_json()}}}
    assert records.read(ns) == record
    assert records.read({"metadata": {"annotations": {records.MIGRATION_ANNOTATION: "{"}}}) is None


def test_errors_map_to_usage_or_check() -> None:
    assert engine.TargetNotFound.usage and engine.NamespaceNotFound.usage
    assert not engine.TargetUnavailable.usage
    assert issubclass(errors.WaitTimeout, errors.KubeError)
    assert plan.PREVIOUS_ANNOTATION == records.PREVIOUS_ANNOTATION
