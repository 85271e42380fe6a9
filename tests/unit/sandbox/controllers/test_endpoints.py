"""The Endpoints controller in process: ready and not-ready addresses, port resolution and
repacking, headless Services, cleanup, user-managed Endpoints and restart-safety."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.endpoints import (
    HEADLESS_LABEL,
    OVER_CAPACITY,
    TRIGGER_TIME,
    EndpointsController,
    go_rfc3339_nano,
    truncate,
)
from meshcanary.sandbox.controllers.podtemplates import served_type

NS = "ns"


class Env(ControllerEnv[EndpointsController]):
    def endpoints(self, name: str = "web") -> dict[str, Any] | None:
        entry = self.cluster.store.get("/endpoints", NS, name)
        return entry.obj if entry is not None else None

    def subsets(self, name: str = "web") -> list[dict[str, Any]]:
        found = self.endpoints(name)
        assert found is not None
        subsets: list[dict[str, Any]] = found.get("subsets") or []
        return subsets

    async def create(self, skey: str, body: dict[str, Any]) -> None:
        await self.cluster.create(served_type(self.cluster, skey), NS, body, OPTS)
        await self.settle()

    async def patch(self, skey: str, name: str, body: Any, sub: str = "") -> None:
        rt = served_type(self.cluster, skey)
        await self.cluster.patch(rt, NS, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)
        await self.settle()

    async def pod(self, name: str, ip: str | None, ready: bool, **extra: Any) -> None:
        """A pod as the scheduler and kubelet leave it: bound, Running, with an IP."""
        ports = extra.pop("ports", [{"name": "http", "containerPort": 8080}])
        body = {
            "metadata": {"name": name, "labels": extra.pop("labels", {"app": "web"})},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}], **extra},
        }
        await self.create("/pods", body)
        await self.patch("/pods", name, {"spec": {"nodeName": "node-1"}})
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        status: dict[str, Any] = {"phase": "Running", "conditions": [condition]}
        if ip:
            status["podIP"] = ip
        await self.patch("/pods", name, {"status": status}, "status")


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": ports, **spec},
    }


@pytest.fixture
async def env() -> Env:
    return await Env.start(
        EndpointsController, NS, FakeClock(datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC))
    )


def ips(subset: dict[str, Any], field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


async def test_ready_and_not_ready_pods_with_named_target_ports(env: Env) -> None:
    await env.create("/services", service())
    endpoints = env.endpoints()
    assert endpoints is not None and "subsets" not in endpoints
    assert endpoints["metadata"]["labels"] == {"tier": "front"}
    assert endpoints["metadata"]["annotations"][TRIGGER_TIME] == "2026-01-01T12:00:00.25Z"
    await env.pod("a", "10.244.0.3", ready=True)
    await env.pod("b", "10.244.0.2", ready=False)
    await env.pod("c", None, ready=False)  # no IP yet: not an endpoint at all
    await env.pod("d", "10.244.0.4", ready=True, labels={"app": "other"})
    [subset] = env.subsets()
    assert ips(subset) == ["10.244.0.3"] and ips(subset, "notReadyAddresses") == ["10.244.0.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    address = subset["addresses"][0]
    assert address["nodeName"] == "node-1"
    pod = env.cluster.store.get("/pods", NS, "a")
    assert pod is not None
    assert address["targetRef"] == {
        "kind": "Pod",
        "namespace": NS,
        "name": "a",
        "uid": pod.obj["metadata"]["uid"],
    }


async def test_pods_follow_readiness_labels_and_deletion(env: Env) -> None:
    await env.create("/services", service())
    await env.pod("a", "10.244.0.2", ready=False)
    await env.patch(
        "/pods", "a", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "status"
    )
    assert ips(env.subsets()[0]) == ["10.244.0.2"]
    await env.cluster.delete(served_type(env.cluster, "/pods"), NS, "a")  # graceful: terminating
    await env.settle()
    assert env.subsets() == []
    await env.pod("b", "10.244.0.3", ready=True)
    await env.patch("/pods", "b", {"metadata": {"labels": {"app": "gone"}}})
    assert env.subsets() == []


async def test_ports_resolve_per_pod_and_repack_into_subsets(env: Env) -> None:
    ports = [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "metrics", "port": 9090, "targetPort": 9090, "appProtocol": "http"},
    ]
    await env.create("/services", service(ports=ports))
    await env.pod("a", "10.244.0.2", ready=True)
    await env.pod("b", "10.244.0.3", ready=True, ports=[{"name": "web", "containerPort": 8080}])
    both, metrics_only = sorted(env.subsets(), key=lambda s: len(s["ports"]), reverse=True)
    assert ips(both) == ["10.244.0.2", "10.244.0.3"]
    assert both["ports"] == [
        {"name": "metrics", "port": 9090, "protocol": "TCP", "appProtocol": "http"}
    ]
    assert ips(metrics_only) == ["10.244.0.2"]
    assert metrics_only["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


async def test_headless_service_sets_hostnames_and_the_headless_label(env: Env) -> None:
    await env.create("/services", service(clusterIP="None", ports=[]))
    await env.pod("web-0", "10.244.0.5", ready=True, hostname="web-0", subdomain="web")
    endpoints = env.endpoints()
    assert endpoints is not None and endpoints["metadata"]["labels"][HEADLESS_LABEL] == ""
    [subset] = env.subsets()
    assert subset["addresses"][0]["hostname"] == "web-0" and "ports" not in subset


async def test_publish_not_ready_addresses(env: Env) -> None:
    await env.create("/services", service(publishNotReadyAddresses=True))
    await env.pod("a", "10.244.0.2", ready=False)
    assert ips(env.subsets()[0]) == ["10.244.0.2"]


async def test_endpoints_go_with_their_service(env: Env) -> None:
    await env.create("/services", service())
    await env.cluster.delete(served_type(env.cluster, "/services"), NS, "web")
    await env.settle()
    assert env.endpoints() is None


async def test_services_without_a_selector_leave_endpoints_alone(env: Env) -> None:
    manual = {"metadata": {"name": "ext"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}]}]}
    await env.create("/endpoints", manual)
    body = service("ext")
    del body["spec"]["selector"]
    body["spec"]["ports"] = [{"port": 80}]
    await env.create("/services", body)
    assert ips(env.subsets("ext")[0]) == ["192.0.2.1"]


async def test_unrelated_changes_write_nothing(env: Env) -> None:
    await env.create("/services", service())
    await env.pod("a", "10.244.0.2", ready=True)
    endpoints = env.endpoints()
    assert endpoints is not None
    before = endpoints["metadata"]["resourceVersion"]
    await env.patch("/pods", "a", {"metadata": {"annotations": {"note": "x"}}})
    await env.patch("/services", "web", {"status": {"loadBalancer": {}}}, "status")
    endpoints = env.endpoints()
    assert endpoints is not None and endpoints["metadata"]["resourceVersion"] == before


async def test_someone_elses_edit_is_reverted(env: Env) -> None:
    await env.create("/services", service())
    await env.pod("a", "10.244.0.2", ready=True)
    await env.patch("/endpoints", "web", {"subsets": None})
    assert ips(env.subsets()[0]) == ["10.244.0.2"]


async def test_a_restart_removes_leftovers_and_rewrites_nothing(env: Env) -> None:
    await env.create("/services", service())
    await env.pod("a", "10.244.0.2", ready=True)
    await env.create("/endpoints", {"metadata": {"name": "orphan"}})
    rv = env.cluster.store.rv
    restarted = EndpointsController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.endpoints("orphan") is None
    assert env.cluster.store.rv == rv + 1  # only that delete


def test_truncation_keeps_ready_addresses_first() -> None:
    def addresses(count: int, prefix: str) -> list[dict[str, Any]]:
        return [{"ip": f"{prefix}.{i}"} for i in range(count)]

    subsets = [
        {"addresses": addresses(600, "a"), "notReadyAddresses": addresses(300, "b")},
        {"addresses": addresses(200, "c"), "notReadyAddresses": addresses(100, "d")},
    ]
    assert truncate(subsets)
    assert [len(s["addresses"]) for s in subsets] == [600, 200]
    assert sum(len(s.get("notReadyAddresses", [])) for s in subsets) == 200
    assert not truncate([{"addresses": addresses(1000, "e")}])
    many = [{"addresses": addresses(1500, "f"), "notReadyAddresses": addresses(5, "g")}]
    assert (
        truncate(many) and len(many[0]["addresses"]) == 1000 and "notReadyAddresses" not in many[0]
    )
    assert OVER_CAPACITY.endswith("over-capacity")


def test_trigger_time_is_go_rfc3339_nano() -> None:
    assert go_rfc3339_nano(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"
    assert (
        go_rfc3339_nano(datetime(2026, 1, 1, 0, 0, 0, 120000, tzinfo=UTC))
        == "2026-01-01T00:00:00.12Z"
    )
