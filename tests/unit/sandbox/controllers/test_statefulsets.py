"""The StatefulSet controller in process: ordered creation, scaling, rolling updates with
partition and OnDelete, revision history, status fields, cleanup and restart-safety."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.gc import GarbageCollector
from meshcanary.sandbox.controllers.podtemplates import served_type
from meshcanary.sandbox.controllers.statefulsets import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    StatefulSetController,
    revision_template,
)

NS = "ns"


class Env(ControllerEnv[StatefulSetController]):
    def get(self, skey: str, name: str) -> dict[str, Any] | None:
        entry = self.cluster.store.get(skey, NS, name)
        return entry.obj if entry is not None else None

    def sts(self) -> dict[str, Any]:
        found = self.get("apps/statefulsets", "web")
        assert found is not None
        return found

    def pod_names(self) -> list[str]:
        return [e.obj["metadata"]["name"] for e in self.cluster.store.list("/pods", NS)]

    def revisions(self) -> list[dict[str, Any]]:
        return [e.obj for e in self.cluster.store.list("apps/controllerrevisions", NS)]

    async def patch(self, skey: str, name: str, body: dict[str, Any], sub: str = "") -> None:
        rt = served_type(self.cluster, skey)
        await self.cluster.patch(rt, NS, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)

    async def run_pod(self, name: str) -> None:
        """What the scheduler and kubelet do: bind the pod, then report it Running and Ready."""
        await self.patch("/pods", name, {"spec": {"nodeName": "node-1"}})
        ready = {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": now_rfc3339(self.clock.now()),
        }
        status = {"phase": "Running", "podIP": "10.244.0.9", "conditions": [ready]}
        await self.patch("/pods", name, {"status": status}, "status")

    async def remove_pod(self, name: str) -> None:
        """What the kubelet does once a terminating pod has stopped."""
        await self.cluster.delete(
            served_type(self.cluster, "/pods"), NS, name, {"gracePeriodSeconds": 0}
        )

    async def run_all(self) -> None:
        """Run pods as they appear until the set stops creating them."""
        while True:
            pending = [
                e.obj["metadata"]["name"]
                for e in self.cluster.store.list("/pods", NS)
                if (e.obj.get("status") or {}).get("phase") != "Running"
            ]
            if not pending:
                return
            for name in pending:
                await self.run_pod(name)
            await self.settle()


def statefulset(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
            **spec,
        },
    }


@pytest.fixture
async def env() -> Env:
    return await Env.start(StatefulSetController, NS)


async def create(env: Env, body: dict[str, Any]) -> None:
    await env.cluster.create(served_type(env.cluster, "apps/statefulsets"), NS, body, OPTS)
    await env.settle()


async def set_image(env: Env, image: str) -> None:
    template = env.sts()["spec"]["template"]
    container = {**template["spec"]["containers"][0], "image": image}
    await env.patch(
        "apps/statefulsets", "web", {"spec": {"template": {"spec": {"containers": [container]}}}}
    )
    await env.settle()


async def test_ordered_ready_creates_one_pod_at_a_time_with_identity(env: Env) -> None:
    await create(env, statefulset())
    assert env.pod_names() == ["web-0"]
    pod = env.get("/pods", "web-0")
    assert pod is not None
    revision = env.revisions()[0]
    labels = pod["metadata"]["labels"]
    assert labels[REVISION_LABEL] == revision["metadata"]["name"]
    assert labels[POD_NAME_LABEL] == "web-0" and labels[POD_INDEX_LABEL] == "0"
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"

    await env.run_pod("web-0")
    await env.settle()
    assert env.pod_names() == ["web-0", "web-1"]
    await env.run_all()
    status = env.sts()["status"]
    assert env.pod_names() == ["web-0", "web-1", "web-2"]
    assert status["replicas"] == status["readyReplicas"] == status["availableReplicas"] == 3
    assert status["currentReplicas"] == status["updatedReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"] == revision["metadata"]["name"]
    assert status["observedGeneration"] == 1 and status["collisionCount"] == 0


async def test_revision_records_the_template_as_a_replace_patch(env: Env) -> None:
    await create(env, statefulset(replicas=0))
    [revision] = env.revisions()
    assert revision["revision"] == 1
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision_template(revision) == env.sts()["spec"]["template"]
    assert revision["metadata"]["name"].startswith("web-")
    hash_label = revision["metadata"]["labels"]["controller.kubernetes.io/hash"]
    assert revision["metadata"]["name"] == f"web-{hash_label}"
    assert revision["metadata"]["labels"]["app"] == "web"
    assert env.sts()["status"] == {
        "observedGeneration": 1,
        "replicas": 0,
        "availableReplicas": 0,
        "currentRevision": revision["metadata"]["name"],
        "updateRevision": revision["metadata"]["name"],
        "collisionCount": 0,
    }


async def test_parallel_creates_every_pod_at_once(env: Env) -> None:
    await create(env, statefulset(podManagementPolicy="Parallel"))
    assert env.pod_names() == ["web-0", "web-1", "web-2"]
    assert env.sts()["status"]["replicas"] == 3
    assert "readyReplicas" not in env.sts()["status"]


async def test_scale_down_removes_the_highest_ordinal_first(env: Env) -> None:
    await create(env, statefulset())
    await env.run_all()
    await env.patch("apps/statefulsets", "web", {"spec": {"replicas": 1}})
    await env.settle()
    web2 = env.get("/pods", "web-2")
    assert web2 is not None and web2["metadata"].get("deletionTimestamp")
    web1 = env.get("/pods", "web-1")
    assert web1 is not None and not web1["metadata"].get("deletionTimestamp")
    await env.remove_pod("web-2")
    await env.settle()
    web1 = env.get("/pods", "web-1")
    assert web1 is not None and web1["metadata"].get("deletionTimestamp")
    await env.remove_pod("web-1")
    await env.settle()
    assert env.pod_names() == ["web-0"]
    assert env.sts()["status"]["replicas"] == 1


async def test_rolling_update_goes_in_reverse_ordinal_order_one_pod_at_a_time(env: Env) -> None:
    await create(env, statefulset())
    await env.run_all()
    old = env.sts()["status"]["currentRevision"]
    await set_image(env, "nginx:2")
    status = env.sts()["status"]
    new = status["updateRevision"]
    assert new != old and status["currentRevision"] == old
    assert status["observedGeneration"] == 2
    for name in ("web-2", "web-1", "web-0"):
        pod = env.get("/pods", name)
        assert pod is not None and pod["metadata"].get("deletionTimestamp")
        others = [n for n in env.pod_names() if n != name]
        assert all(
            not (env.get("/pods", n) or {})["metadata"].get("deletionTimestamp") for n in others
        )
        await env.remove_pod(name)
        await env.settle()
        recreated = env.get("/pods", name)
        assert recreated is not None and recreated["metadata"]["labels"][REVISION_LABEL] == new
        assert recreated["spec"]["containers"][0]["image"] == "nginx:2"
        await env.run_pod(name)
        await env.settle()
    status = env.sts()["status"]
    assert status["currentRevision"] == status["updateRevision"] == new
    assert status["currentReplicas"] == status["updatedReplicas"] == 3
    assert [r["revision"] for r in env.revisions() if r["metadata"]["name"] == new] == [2]


async def test_partition_keeps_lower_ordinals_at_the_current_revision(env: Env) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    await create(env, statefulset(updateStrategy=strategy))
    await env.run_all()
    old = env.sts()["status"]["currentRevision"]
    await set_image(env, "nginx:2")
    await env.remove_pod("web-2")
    await env.settle()
    await env.run_pod("web-2")
    await env.settle()
    status = env.sts()["status"]
    assert status["updatedReplicas"] == 1 and status["currentReplicas"] == 2
    assert status["currentRevision"] == old != status["updateRevision"]
    assert all(
        not (env.get("/pods", n) or {})["metadata"].get("deletionTimestamp")
        for n in env.pod_names()
    )
    # A lower-ordinal pod that dies comes back at the current revision, below the partition.
    await env.remove_pod("web-0")
    await env.settle()
    web0 = env.get("/pods", "web-0")
    assert web0 is not None and web0["metadata"]["labels"][REVISION_LABEL] == old


async def test_on_delete_waits_for_manual_deletion(env: Env) -> None:
    await create(env, statefulset(updateStrategy={"type": "OnDelete"}))
    await env.run_all()
    await set_image(env, "nginx:2")
    assert all(
        not (env.get("/pods", n) or {})["metadata"].get("deletionTimestamp")
        for n in env.pod_names()
    )
    new = env.sts()["status"]["updateRevision"]
    await env.remove_pod("web-1")
    await env.settle()
    web1 = env.get("/pods", "web-1")
    assert web1 is not None and web1["metadata"]["labels"][REVISION_LABEL] == new


async def test_rollback_renumbers_the_matching_revision(env: Env) -> None:
    await create(env, statefulset(replicas=0))
    first = env.sts()["status"]["updateRevision"]
    await set_image(env, "nginx:2")
    await set_image(env, "nginx:1")
    revisions = {r["metadata"]["name"]: r["revision"] for r in env.revisions()}
    assert len(revisions) == 2 and revisions[first] == 3
    assert env.sts()["status"]["updateRevision"] == first


async def test_history_is_truncated_to_the_limit(env: Env) -> None:
    await create(env, statefulset(replicas=0, revisionHistoryLimit=1))
    for tag in ("2", "3", "4"):
        await set_image(env, f"nginx:{tag}")
    images = sorted(revision_template(r)["spec"]["containers"][0]["image"] for r in env.revisions())
    assert images == ["nginx:3", "nginx:4"]


async def test_failed_pod_is_replaced(env: Env) -> None:
    await create(env, statefulset(replicas=1))
    await env.run_pod("web-0")
    await env.settle()
    uid = (env.get("/pods", "web-0") or {})["metadata"]["uid"]
    await env.patch("/pods", "web-0", {"status": {"phase": "Failed"}}, "status")
    await env.settle()
    replacement = env.get("/pods", "web-0")
    assert replacement is not None and replacement["metadata"]["uid"] != uid


async def test_dependents_are_owned_so_the_garbage_collector_removes_them(env: Env) -> None:
    await create(env, statefulset(podManagementPolicy="Parallel"))
    gc = GarbageCollector(env.cluster, Context(clock=env.clock))
    await gc.resync()
    assert env.pod_names() and env.revisions()
    await env.cluster.delete(served_type(env.cluster, "apps/statefulsets"), NS, "web")
    await env.settle(gc)
    assert env.pod_names() == [] and env.revisions() == []


async def test_a_restarted_controller_picks_up_where_it_was(env: Env) -> None:
    await create(env, statefulset())
    await env.run_pod("web-0")
    restarted = StatefulSetController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.pod_names() == ["web-0", "web-1"]  # the ready web-0 lets web-1 in
    assert len(env.revisions()) == 1
    rv = env.cluster.store.rv
    again = StatefulSetController(env.cluster, Context(clock=env.clock))
    await again.resync()
    assert env.cluster.store.rv == rv  # nothing left to do: no write


async def test_min_ready_seconds_delays_availability_on_the_clock(env: Env) -> None:
    await create(env, statefulset(replicas=1, minReadySeconds=10))
    await env.run_pod("web-0")
    await env.settle()
    assert env.sts()["status"]["availableReplicas"] == 0
    assert env.sts()["status"]["readyReplicas"] == 1
    await env.elapse(11)
    assert env.sts()["status"]["availableReplicas"] == 1
