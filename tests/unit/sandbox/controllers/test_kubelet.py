"""The simulated kubelet in-process: nodes, scheduler and kubelet running on a FakeClock,
pods moving through their stages with exact timestamps, faults, and a restart mid-way."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Store
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context, Controller
from meshcanary.sandbox.controllers.kubelet import Kubelet, PodIPs
from meshcanary.sandbox.controllers.nodes import NodeController
from meshcanary.sandbox.controllers.scheduler import Scheduler
from meshcanary.sandbox.settings import Settings

OPTS = WriteOptions(field_manager="test")
PROXY_115 = "docker.io/istio/proxyv2:1.15.3"
PROXY_116 = "docker.io/istio/proxyv2:1.16.0"
SETTINGS = Settings(
    nodes=2,
    pod_start_delay=2,
    pod_ready_delay=3,
    pod_termination_delay=1,
    job_duration=4,
    jitter=0,
)


async def settle() -> None:
    """Let every controller drain its queue: their work is synchronous between awaits, so a
    bounded number of loop turns (no clock time) reaches quiescence."""
    for _ in range(50):
        await asyncio.sleep(0)


class Sim:
    """A store-backed cluster with the node, scheduler and kubelet controllers running."""

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.cluster = Cluster(Store(None))
        self.clock = FakeClock()
        self.context = Context(settings, self.clock)
        self.tasks: list[asyncio.Task[None]] = []
        self.kubelet = Kubelet(self.cluster, self.context, random.Random(0))

    def rt(self, plural: str, group: str = "", version: str = "v1") -> ResourceType:
        rt = self.cluster.registry.get(group, version, plural)
        assert rt is not None
        return rt

    async def start(self, kubelet: Kubelet | None = None) -> None:
        self.kubelet = kubelet or self.kubelet
        controllers: list[Controller] = [
            NodeController(self.cluster, self.context),
            Scheduler(self.cluster, self.context),
            self.kubelet,
        ]
        self.tasks = [asyncio.create_task(c.run()) for c in controllers]
        await settle()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def advance(self, seconds: float) -> None:
        await settle()
        await self.clock.advance(seconds)
        await settle()

    async def namespace(self, name: str, **labels: str) -> None:
        await self.cluster.create(
            self.rt("namespaces"), "", {"metadata": {"name": name, "labels": labels}}, OPTS
        )

    async def pod(
        self,
        name: str,
        namespace: str = "default",
        proxy: str | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        containers = [{"name": "app", "image": "nginx:1.27"}]
        if proxy:
            containers.append({"name": "istio-proxy", "image": proxy})
        meta: dict[str, Any] = {"name": name}
        spec: dict[str, Any] = {"containers": containers}
        if owner:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "batch/v1",
                    "kind": owner,
                    "name": "j",
                    "uid": "j",
                    "controller": True,
                }
            ]
            spec["restartPolicy"] = "Never"
        body = {"metadata": meta, "spec": spec}
        return (await self.cluster.create(self.rt("pods"), namespace, body, OPTS)).obj

    async def fault(self, name: str, **pod_spec: Any) -> None:
        body = {"metadata": {"name": name}, "spec": {"pod": pod_spec}}
        await self.cluster.create(self.rt("faults", "sandbox.meshcanary.io"), "", body, OPTS)

    async def clear_fault(self, name: str) -> None:
        await self.cluster.delete(self.rt("faults", "sandbox.meshcanary.io"), "", name)

    def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        entry = self.cluster.store.get("/pods", namespace, name)
        return entry.obj if entry is not None else None

    def node_of(self, name: str) -> str | None:
        pod = self.get(name)
        assert pod is not None
        return pod["spec"].get("nodeName")

    def status(self, name: str, namespace: str = "default") -> dict[str, Any]:
        pod = self.get(name, namespace)
        assert pod is not None
        return dict(pod["status"])

    def condition(self, name: str, kind: str, namespace: str = "default") -> dict[str, Any]:
        return next(c for c in self.status(name, namespace)["conditions"] if c["type"] == kind)

    def ready(self, name: str, namespace: str = "default") -> bool:
        return bool(self.condition(name, "Ready", namespace)["status"] == "True")

    def events(self, reason: str) -> list[dict[str, Any]]:
        entries = self.cluster.store.list("/events")
        return [e.obj for e in entries if e.obj["reason"] == reason]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    sim = Sim()
    await sim.namespace("default")
    await sim.start()
    yield sim
    await sim.stop()


# -- the default lifecycle -----------------------------------------------------------------------


async def test_pending_to_running_to_ready_with_exact_timestamps(sim: Sim) -> None:
    await sim.pod("web")
    await settle()
    pod = sim.get("web")
    assert pod is not None
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["status"]["phase"] == "Pending"
    assert sim.condition("web", "PodScheduled")["lastTransitionTime"] == "2026-01-01T00:00:00Z"

    await sim.advance(1.9)
    assert sim.status("web")["phase"] == "Pending"
    await sim.advance(0.1)
    status = sim.status("web")
    assert status["phase"] == "Running"
    assert status["startTime"] == "2026-01-01T00:00:02Z"
    assert status["hostIP"] == "172.18.0.2"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.244.0.0/16")
    assert status["containerStatuses"][0]["state"]["running"]["startedAt"] == (
        "2026-01-01T00:00:02Z"
    )
    assert not sim.ready("web")

    await sim.advance(2.9)
    assert not sim.ready("web")
    await sim.advance(0.1)
    assert sim.ready("web")
    assert sim.condition("web", "Ready")["lastTransitionTime"] == "2026-01-01T00:00:05Z"
    assert sim.condition("web", "ContainersReady")["lastTransitionTime"] == "2026-01-01T00:00:05Z"
    assert sim.status("web")["containerStatuses"][0]["ready"] is True
    assert sim.kubelet.armed("default", "web") is None
    started = sim.events("Started")
    assert [e["involvedObject"]["name"] for e in started] == ["web"]
    assert started[0]["source"] == {"component": "kubelet", "host": "node-1"}
    assert [e["message"] for e in sim.events("Scheduled")] == [
        "Successfully assigned default/web to node-1"
    ]


async def test_pods_get_unique_ips(sim: Sim) -> None:
    for i in range(20):
        await sim.pod(f"p{i}")
    await sim.advance(2)
    ips = {sim.status(f"p{i}")["podIP"] for i in range(20)}
    assert len(ips) == 20


async def test_job_pods_complete(sim: Sim) -> None:
    await sim.pod("job-x", owner="Job")
    await sim.advance(5)
    assert sim.ready("job-x")
    await sim.advance(3.9)
    assert sim.status("job-x")["phase"] == "Running"
    await sim.advance(0.1)
    status = sim.status("job-x")
    assert status["phase"] == "Succeeded"
    assert sim.condition("job-x", "Ready")["reason"] == "PodCompleted"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


async def test_graceful_deletion_removes_the_pod_after_the_termination_delay(sim: Sim) -> None:
    await sim.pod("web")
    await sim.advance(5)
    watch = sim.cluster.store.subscribe("/pods")
    await sim.cluster.delete(sim.rt("pods"), "default", "web")
    pod = sim.get("web")
    assert pod is not None and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    await sim.advance(0.9)
    assert sim.get("web") is not None
    await sim.advance(0.1)
    assert sim.get("web") is None
    kinds = [watch.queue.get_nowait().type for _ in range(watch.queue.qsize())]
    assert kinds == ["MODIFIED", "DELETED"]
    assert [e["message"] for e in sim.events("Killing")] == ["Stopping container app"]


async def test_a_pod_deleted_while_starting_is_never_started(sim: Sim) -> None:
    await sim.pod("web")
    await settle()
    await sim.cluster.delete(sim.rt("pods"), "default", "web")
    await sim.advance(1)
    assert sim.get("web") is None
    assert not sim.events("Started")


async def test_a_recreated_pod_of_the_same_name_starts_afresh(sim: Sim) -> None:
    await sim.pod("db-0")
    await sim.advance(1)
    await sim.cluster.delete(sim.rt("pods"), "default", "db-0", {"gracePeriodSeconds": 0})
    await sim.pod("db-0")
    await sim.advance(1.5)
    assert sim.status("db-0")["phase"] == "Pending"
    await sim.advance(0.5)
    assert sim.status("db-0")["phase"] == "Running"


# -- faults ----------------------------------------------------------------------------------------


async def test_never_ready_hits_the_matching_proxy_version_in_selected_namespaces(
    sim: Sim,
) -> None:
    await sim.namespace("payments", team="payments")
    await sim.namespace("search", team="search")
    await sim.fault(
        "bad-proxy",
        effect="NeverReady",
        proxyVersion="1.15.*",
        namespaceSelector={"matchLabels": {"team": "payments"}},
    )
    await sim.pod("old", "payments", proxy=PROXY_115)
    await sim.pod("new", "payments", proxy=PROXY_116)
    await sim.pod("elsewhere", "search", proxy=PROXY_115)
    await sim.advance(60)
    assert not sim.ready("old", "payments")
    assert sim.condition("old", "Ready", "payments")["message"] == (
        "containers with unready status: [istio-proxy]"
    )
    assert sim.ready("new", "payments")
    assert sim.ready("elsewhere", "search")

    await sim.clear_fault("bad-proxy")
    await sim.advance(3)
    assert sim.ready("old", "payments")


async def test_relabelling_a_namespace_into_a_fault_hits_its_starting_pods(sim: Sim) -> None:
    await sim.fault("f", effect="NeverReady", namespaceSelector={"matchLabels": {"bad": "yes"}})
    await sim.namespace("shop")
    await sim.pod("web", "shop")
    await sim.advance(2)
    rt = sim.rt("namespaces")
    await sim.cluster.patch(
        rt,
        "",
        "shop",
        "application/merge-patch+json",
        b'{"metadata":{"labels":{"bad":"yes"}}}',
        OPTS,
    )
    await sim.advance(10)
    assert not sim.ready("web", "shop")
    await sim.cluster.patch(
        rt,
        "",
        "shop",
        "application/merge-patch+json",
        b'{"metadata":{"labels":{"bad":null}}}',
        OPTS,
    )
    await sim.advance(3)
    assert sim.ready("web", "shop")


async def test_crash_loop_restarts_with_growing_back_off(sim: Sim) -> None:
    await sim.fault("crash", effect="CrashLoop", proxyVersion="1.15.*")
    await sim.pod("web", proxy=PROXY_115)
    await sim.advance(2 + 3)  # running, then crashes when it would have become ready
    proxy = sim.status("web")["containerStatuses"][1]
    assert proxy["restartCount"] == 1
    assert proxy["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert proxy["lastState"]["terminated"]["exitCode"] == 1
    crashes = [5.0]
    for _ in range(3):  # each run lasts 3 s; back-off 3 s, then 6 s capped at 5 s
        before = sim.status("web")["containerStatuses"][1]["restartCount"]
        while sim.status("web")["containerStatuses"][1]["restartCount"] == before:
            await sim.advance(0.5)
        crashes.append((sim.clock.now() - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds())
    assert [b - a for a, b in itertools.pairwise(crashes)] == [6.0, 8.0, 8.0]
    assert not sim.ready("web")
    backoff = sim.events("BackOff")
    assert len(backoff) == 1 and backoff[0]["count"] == 4
    assert backoff[0]["type"] == "Warning"


async def test_slow_start_is_ready_only_after_its_delay(sim: Sim) -> None:
    await sim.fault("slow", effect="SlowStart", startDelaySeconds=20)
    await sim.pod("web")
    await sim.advance(2 + 19.9)
    assert not sim.ready("web")
    await sim.advance(0.1)
    assert sim.ready("web")


async def test_a_pod_ready_before_the_fault_stays_ready(sim: Sim) -> None:
    await sim.pod("before", proxy=PROXY_115)
    await sim.advance(5)
    await sim.fault("crash", effect="CrashLoop")
    await sim.pod("after", proxy=PROXY_115)
    await sim.advance(30)
    assert sim.ready("before")
    assert sim.status("before")["containerStatuses"][1]["restartCount"] == 0
    assert not sim.ready("after")


# -- restart-safety --------------------------------------------------------------------------------


async def test_resync_after_a_crash_picks_every_pod_up_where_it_is(sim: Sim) -> None:
    await sim.pod("running")
    await sim.advance(2)
    await sim.pod("terminating")
    await sim.advance(5)
    await sim.cluster.delete(sim.rt("pods"), "default", "terminating")
    await sim.stop()  # the crash: every timer is lost

    await sim.pod("pending")
    assert sim.node_of("pending") is None
    used = sim.status("running")["podIP"]
    await sim.start(Kubelet(sim.cluster, sim.context))
    assert sim.node_of("pending")
    await sim.advance(1)
    assert sim.get("terminating") is None
    await sim.advance(2)
    assert sim.ready("running")
    assert sim.status("pending")["podIP"] != used
    await sim.advance(3)
    assert sim.ready("pending")


# -- pieces ----------------------------------------------------------------------------------------


def test_pod_ips_are_reused_only_after_release() -> None:
    ips = PodIPs(ipaddress.ip_network("10.0.0.0/29"))  # 5 usable: .2 to .6
    ips.reserve("10.0.0.3")
    got = [ips.allocate() for _ in range(4)]
    assert got == ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(RuntimeError):
        ips.allocate()
    ips.release("10.0.0.4")
    ips.release("not an ip")
    assert ips.allocate() == "10.0.0.4"


async def test_many_pods_at_once_become_ready_spread_evenly() -> None:
    sim = Sim(Settings(nodes=3, pod_start_delay=0, pod_ready_delay=0, jitter=0))
    await sim.namespace("default")
    await sim.start()
    began = time.perf_counter()
    for i in range(300):
        await sim.pod(f"p{i}")
    for _ in range(3):
        await sim.advance(0)
    elapsed = time.perf_counter() - began
    await sim.stop()
    assert all(sim.ready(f"p{i}") for i in range(300))
    nodes = Counter(sim.node_of(f"p{i}") for i in range(300))
    assert nodes == {"node-1": 100, "node-2": 100, "node-3": 100}
    assert elapsed < 10  # ~1.5 s; per-event scans of all pods would make this quadratic
