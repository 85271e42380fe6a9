"""The DaemonSet controller in process: a pod per eligible node, node changes, rolling updates
within maxUnavailable, status fields, revision history, cleanup and restart-safety."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.daemonsets import (
    GENERATION_LABEL,
    HASH_LABEL,
    DaemonSetController,
    max_unavailable,
    target_node,
)
from meshcanary.sandbox.controllers.gc import GarbageCollector
from meshcanary.sandbox.controllers.podtemplates import served_type

NS = "kube-system"


class Env(ControllerEnv[DaemonSetController]):
    def pods(self) -> list[dict[str, Any]]:
        return [e.obj for e in self.cluster.store.list("/pods", NS)]

    def live_pods(self) -> dict[str, dict[str, Any]]:
        """Pods not being deleted, by node."""
        pods = [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]
        return {target_node(p): p for p in pods}

    def terminating(self) -> list[str]:
        return sorted(target_node(p) for p in self.pods() if p["metadata"].get("deletionTimestamp"))

    def status(self) -> dict[str, Any]:
        entry = self.cluster.store.get("apps/daemonsets", NS, "agent")
        assert entry is not None
        status: dict[str, Any] = entry.obj.get("status") or {}
        return status

    async def patch(self, skey: str, ns: str, name: str, body: Any, sub: str = "") -> None:
        rt = served_type(self.cluster, skey)
        await self.cluster.patch(rt, ns, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)

    async def add_node(self, name: str, ready: bool = True, **labels: str) -> None:
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        body = {
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "status": {"conditions": [condition]},
        }
        await self.cluster.create(served_type(self.cluster, "/nodes"), "", body, OPTS)
        await self.settle()

    async def set_ready(self, pod: dict[str, Any], phase: str = "Running") -> None:
        """What the kubelet reports once the pod's containers run."""
        ready = {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": now_rfc3339(self.clock.now()),
        }
        status = {"phase": phase, "podIP": "10.244.1.1", "conditions": [ready]}
        await self.patch("/pods", NS, pod["metadata"]["name"], {"status": status}, "status")

    async def run_all(self) -> None:
        for pod in self.live_pods().values():
            if (pod.get("status") or {}).get("phase") != "Running":
                await self.set_ready(pod)
        await self.settle()

    async def remove_terminating(self) -> None:
        """What the kubelet does once terminating pods have stopped."""
        for pod in self.pods():
            if pod["metadata"].get("deletionTimestamp"):
                await self.cluster.delete(
                    served_type(self.cluster, "/pods"),
                    NS,
                    pod["metadata"]["name"],
                    {"gracePeriodSeconds": 0},
                )
        await self.settle()


def daemonset(**spec: Any) -> dict[str, Any]:
    labels = {"app": "agent"}
    template_spec = {"containers": [{"name": "c", "image": "agent:1"}], **spec.pop("pod", {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template_spec},
            **spec,
        },
    }


@pytest.fixture
async def env() -> Env:
    env = await Env.start(DaemonSetController, NS)
    for index in (1, 2, 3):
        await env.add_node(f"node-{index}")
    return env


async def create(env: Env, body: dict[str, Any]) -> None:
    await env.cluster.create(served_type(env.cluster, "apps/daemonsets"), NS, body, OPTS)
    await env.settle()


async def set_image(env: Env, image: str) -> None:
    container = {"name": "c", "image": image}
    body = {"spec": {"template": {"spec": {"containers": [container]}}}}
    await env.patch("apps/daemonsets", NS, "agent", body)
    await env.settle()


async def test_one_pinned_pod_per_node_with_daemon_tolerations(env: Env) -> None:
    await create(env, daemonset())
    pods = env.live_pods()
    assert sorted(pods) == ["node-1", "node-2", "node-3"]
    pod = pods["node-2"]
    assert pod["spec"]["nodeName"] == "node-2"
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}
    ]
    tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerated
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
    assert pod["metadata"]["generateName"] == "agent-"
    [revision] = [e.obj for e in env.cluster.store.list("apps/controllerrevisions", NS)]
    assert pod["metadata"]["labels"][HASH_LABEL] == revision["metadata"]["labels"][HASH_LABEL]
    assert revision["metadata"]["name"] == f"agent-{pod['metadata']['labels'][HASH_LABEL]}"
    assert pod["metadata"]["labels"][GENERATION_LABEL] == "1"
    assert env.status() == {
        "currentNumberScheduled": 3,
        "desiredNumberScheduled": 3,
        "numberMisscheduled": 0,
        "numberReady": 0,
        "observedGeneration": 1,
        "updatedNumberScheduled": 3,
        "numberUnavailable": 3,
    }
    await env.run_all()
    status = env.status()
    assert status["numberReady"] == status["numberAvailable"] == 3
    assert "numberUnavailable" not in status


async def test_nodes_coming_and_going(env: Env) -> None:
    await create(env, daemonset())
    await env.add_node("node-4")
    assert "node-4" in env.live_pods()
    await env.add_node("node-5", ready=False)
    assert "node-5" not in env.live_pods()  # NotReady nodes take no new daemon pods
    await env.patch("/nodes", "", "node-1", {"spec": {"unschedulable": True}})
    await env.settle()
    assert "node-1" in env.live_pods()  # cordoned nodes keep theirs: the controller tolerates it
    await env.cluster.delete(served_type(env.cluster, "/nodes"), "", "node-4")
    await env.settle()
    assert env.status()["desiredNumberScheduled"] == 3


async def test_node_selector_and_misscheduled_pods(env: Env) -> None:
    await env.patch("/nodes", "", "node-1", {"metadata": {"labels": {"role": "edge"}}})
    await create(env, daemonset(pod={"nodeSelector": {"role": "edge"}}))
    assert sorted(env.live_pods()) == ["node-1"]
    assert env.status()["desiredNumberScheduled"] == 1
    await env.patch("/nodes", "", "node-1", {"metadata": {"labels": {"role": None}}})
    await env.settle()
    assert env.terminating() == ["node-1"]  # the node no longer fits: its pod goes
    assert env.status()["desiredNumberScheduled"] == 0
    assert env.status()["numberMisscheduled"] == 1


async def test_rolling_update_respects_max_unavailable(env: Env) -> None:
    await create(env, daemonset())
    await env.run_all()
    await set_image(env, "agent:2")
    assert len(env.terminating()) == 1  # maxUnavailable defaults to 1
    assert "updatedNumberScheduled" not in env.status()  # omitempty: 0
    for _ in range(3):
        await env.remove_terminating()
        fresh = [
            p for p in env.live_pods().values() if p["spec"]["containers"][0]["image"] == "agent:2"
        ]
        assert fresh and env.terminating() == []  # recreated, not yet ready: nothing else goes
        for pod in fresh:
            if (pod.get("status") or {}).get("phase") != "Running":
                await env.set_ready(pod)
        await env.settle()
    status = env.status()
    assert status["updatedNumberScheduled"] == status["numberAvailable"] == 3
    assert {p["spec"]["containers"][0]["image"] for p in env.pods()} == {"agent:2"}
    assert len(list(env.cluster.store.list("apps/controllerrevisions", NS))) == 2


async def test_percentage_max_unavailable_rounds_up(env: Env) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}
    await create(env, daemonset(updateStrategy=strategy))
    await env.run_all()
    await set_image(env, "agent:2")
    assert len(env.terminating()) == 2
    assert max_unavailable(daemonset(updateStrategy=strategy), 3) == 2


async def test_on_delete_replaces_only_deleted_pods(env: Env) -> None:
    await create(env, daemonset(updateStrategy={"type": "OnDelete"}))
    await env.run_all()
    await set_image(env, "agent:2")
    assert env.terminating() == []
    victim = env.live_pods()["node-3"]["metadata"]["name"]
    await env.cluster.delete(
        served_type(env.cluster, "/pods"), NS, victim, {"gracePeriodSeconds": 0}
    )
    await env.settle()
    assert env.live_pods()["node-3"]["spec"]["containers"][0]["image"] == "agent:2"
    assert env.status()["updatedNumberScheduled"] == 1


async def test_failed_pod_is_replaced(env: Env) -> None:
    await create(env, daemonset())
    failed = env.live_pods()["node-1"]
    await env.set_ready(failed, phase="Failed")
    await env.settle()
    replacement = env.live_pods()["node-1"]
    assert replacement["metadata"]["uid"] != failed["metadata"]["uid"]


async def test_dependents_are_owned_so_the_garbage_collector_removes_them(env: Env) -> None:
    await create(env, daemonset())
    gc = GarbageCollector(env.cluster, Context(clock=env.clock))
    await gc.resync()
    await env.cluster.delete(served_type(env.cluster, "apps/daemonsets"), NS, "agent")
    await env.settle(gc)
    assert all(p["metadata"].get("deletionTimestamp") for p in env.pods())
    assert list(env.cluster.store.list("apps/controllerrevisions", NS)) == []


async def test_a_restarted_controller_changes_nothing_settled(env: Env) -> None:
    await create(env, daemonset())
    await env.run_all()
    rv = env.cluster.store.rv
    restarted = DaemonSetController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.cluster.store.rv == rv
    assert len(env.pods()) == 3
