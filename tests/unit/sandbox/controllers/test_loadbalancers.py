"""The LoadBalancer controller in process: allocation from 203.0.113.0/24, requested IPs,
release on deletion and type change, exhaustion, other implementations and restart-safety."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
import pytest
from controller_env import OPTS, ControllerEnv

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE
from meshcanary.sandbox.controllers import loadbalancers
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.loadbalancers import LoadBalancerController
from meshcanary.sandbox.controllers.podtemplates import served_type

NS = "ns"


class Env(ControllerEnv[LoadBalancerController]):
    def ingress(self, name: str) -> list[dict[str, Any]] | None:
        entry = self.cluster.store.get("/services", NS, name)
        assert entry is not None
        balancer = (entry.obj.get("status") or {}).get("loadBalancer") or {}
        ingress: list[dict[str, Any]] | None = balancer.get("ingress")
        return ingress

    def ip(self, name: str) -> str | None:
        ingress = self.ingress(name)
        return str(ingress[0]["ip"]) if ingress else None

    async def service(self, name: str, kind: str = "LoadBalancer", **spec: Any) -> None:
        body = {"metadata": {"name": name}, "spec": {"type": kind, "ports": [{"port": 80}], **spec}}
        await self.cluster.create(served_type(self.cluster, "/services"), NS, body, OPTS)
        await self.settle()

    async def delete(self, name: str) -> None:
        await self.cluster.delete(served_type(self.cluster, "/services"), NS, name)
        await self.settle()

    async def patch(self, name: str, body: Any, sub: str = "") -> None:
        rt = served_type(self.cluster, "/services")
        await self.cluster.patch(rt, NS, name, PATCH_MERGE, orjson.dumps(body), OPTS, sub)
        await self.settle()


@pytest.fixture
async def env() -> Env:
    return await Env.start(LoadBalancerController, NS)


async def test_each_load_balancer_gets_its_own_address(env: Env) -> None:
    await env.service("gw")
    await env.service("gw2")
    await env.service("internal", kind="ClusterIP")
    assert env.ingress("gw") == [{"ip": "203.0.113.1", "ipMode": "VIP"}]
    assert env.ip("gw2") == "203.0.113.2"
    assert env.ingress("internal") is None


async def test_requested_address_is_honoured_when_free_and_in_the_pool(env: Env) -> None:
    await env.service("gw", loadBalancerIP="203.0.113.50")
    await env.service("clash", loadBalancerIP="203.0.113.50")
    await env.service("outside", loadBalancerIP="198.51.100.7")
    assert env.ip("gw") == "203.0.113.50"
    assert env.ip("clash") == "203.0.113.1"
    assert env.ip("outside") == "203.0.113.2"


async def test_deleting_a_service_frees_its_address(env: Env) -> None:
    await env.service("gw")
    await env.service("gw2")
    await env.delete("gw")
    await env.service("gw3")
    assert env.ip("gw3") == "203.0.113.1"


async def test_leaving_the_load_balancer_type_clears_the_status(env: Env) -> None:
    await env.service("gw")
    await env.patch("gw", {"spec": {"type": "ClusterIP"}})
    assert env.ingress("gw") is None
    await env.service("next")
    assert env.ip("next") == "203.0.113.1"


async def test_an_exhausted_pool_leaves_services_pending_until_an_address_frees(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loadbalancers, "POOL", ipaddress.ip_network("203.0.113.0/30"))
    await env.service("a")
    await env.service("b")
    await env.service("c")
    assert (env.ip("a"), env.ip("b"), env.ip("c")) == ("203.0.113.1", "203.0.113.2", None)
    await env.delete("a")
    assert env.ip("c") == "203.0.113.1"


async def test_services_of_another_load_balancer_class_are_ignored(env: Env) -> None:
    await env.service("gw", loadBalancerClass="example.com/other")
    assert env.ingress("gw") is None


async def test_a_restart_keeps_every_address(env: Env) -> None:
    await env.service("gw")
    await env.service("gw2", loadBalancerIP="203.0.113.9")
    rv = env.cluster.store.rv
    restarted = LoadBalancerController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.cluster.store.rv == rv
    assert (env.ip("gw"), env.ip("gw2")) == ("203.0.113.1", "203.0.113.9")
    await env.cluster.create(
        served_type(env.cluster, "/services"),
        NS,
        {"metadata": {"name": "late"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        OPTS,
    )
    await restarted.resync()
    assert env.ip("late") == "203.0.113.2"


async def test_a_duplicate_after_a_crash_goes_to_the_older_service(env: Env) -> None:
    await env.service("a")
    await env.service("b")
    # Written while no controller watched (as if just before a crash), never settled.
    duplicate = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}}
    rt = served_type(env.cluster, "/services")
    await env.cluster.patch(rt, NS, "b", PATCH_MERGE, orjson.dumps(duplicate), OPTS, "status")
    assert env.ip("b") == "203.0.113.1"
    restarted = LoadBalancerController(env.cluster, Context(clock=env.clock))
    await restarted.resync()
    assert env.ip("a") == "203.0.113.1"  # created first (same second: by name)
    assert env.ip("b") == "203.0.113.2"
