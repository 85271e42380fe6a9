"""Node registration: node-1..node-N with a kind-like status, their Leases, healing on resync."""

from __future__ import annotations

from typing import Any

import orjson

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.store import Store
from meshcanary.sandbox.clock import FakeClock
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.controllers.nodes import LEASES, NODES, NodeController
from meshcanary.sandbox.settings import Settings

OPTS = WriteOptions(field_manager="test")


async def registered(
    nodes: int = 3, lease_namespace: bool = True
) -> tuple[Cluster, NodeController]:
    cluster = Cluster(Store(None))
    if lease_namespace:
        rt = cluster.registry.get("", "v1", "namespaces")
        assert rt is not None
        await cluster.create(rt, "", {"metadata": {"name": "kube-node-lease"}}, OPTS)
    controller = NodeController(cluster, Context(Settings(nodes=nodes), FakeClock()))
    await controller.resync()
    return cluster, controller


def node(cluster: Cluster, name: str) -> dict[str, Any]:
    entry = cluster.store.get(NODES, "", name)
    assert entry is not None
    return entry.obj


async def test_resync_registers_the_configured_nodes() -> None:
    cluster, _ = await registered(3)
    assert [e.obj["metadata"]["name"] for e in cluster.store.list(NODES)] == [
        "node-1",
        "node-2",
        "node-3",
    ]
    first = node(cluster, "node-1")
    labels = first["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "node-1"
    assert (labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == ("linux", "amd64")
    assert not any(key.startswith("node-role.kubernetes.io/") for key in labels)
    status = first["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "Ready": "True",
    }
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "172.18.0.2"},
        {"type": "Hostname", "address": "node-1"},
    ]
    assert node(cluster, "node-3")["status"]["addresses"][0]["address"] == "172.18.0.4"
    assert status["capacity"]["cpu"] == status["allocatable"]["cpu"] == "8"
    assert (status["capacity"]["memory"], status["capacity"]["pods"]) == ("32Gi", "110")
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.33.4"
    assert info["containerRuntimeVersion"].startswith("containerd://1.7.")
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")
    assert info["osImage"] and info["kernelVersion"]


async def test_each_node_has_a_lease_owned_by_it() -> None:
    cluster, _ = await registered(2)
    leases = [e.obj for e in cluster.store.list(LEASES, "kube-node-lease")]
    assert [lease["spec"]["holderIdentity"] for lease in leases] == ["node-1", "node-2"]
    owner = leases[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("Node", node(cluster, "node-1")["metadata"]["uid"])
    assert leases[0]["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z"


async def test_without_the_lease_namespace_only_nodes_are_registered() -> None:
    cluster, _ = await registered(1, lease_namespace=False)
    assert cluster.store.count(NODES) == 1
    assert cluster.store.count(LEASES) == 0


async def test_resync_is_idempotent_and_heals_a_not_ready_node() -> None:
    cluster, controller = await registered(2)
    rv = cluster.store.rv
    await controller.resync()
    assert cluster.store.rv == rv  # nothing to do: nothing written

    rt = cluster.registry.get("", "v1", "nodes")
    assert rt is not None
    broken = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    await cluster.patch(rt, "", "node-2", PATCH_MERGE, orjson.dumps(broken), OPTS, "status")
    await cluster.delete(rt, "", "node-1")
    await controller.resync()
    for name in ("node-1", "node-2"):
        ready = [c for c in node(cluster, name)["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
