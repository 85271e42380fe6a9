"""The cluster's nodes: `settings.nodes` Ready Nodes `node-1`..`node-N`, as a kind cluster has.

Pods need nodes to be scheduled to, DaemonSets count nodes, and `kubectl get nodes` should look
like a small real cluster (Ready, no role, v1.33, an InternalIP each). The nodes are registered at
start (`resync`), as each kubelet registers its node: missing ones are created, a registered node
whose Ready condition is not True is reported Ready again, and each gets its Lease in
kube-node-lease. Changes made while the sandbox runs are left alone, so a rehearsal can cordon a
node or patch it NotReady to simulate trouble (the scheduler then avoids it); the next start
heals it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

import orjson

from meshcanary.sandbox.apiserver.cluster import NAMESPACES, PATCH_MERGE, WriteOptions
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.controllers.base import Controller

NODES: Final = "/nodes"
LEASES: Final = "coordination.k8s.io/leases"
LEASE_NAMESPACE: Final = "kube-node-lease"
KUBELET_VERSION: Final = "v1.33.4"
RUNTIME_VERSION: Final = "containerd://1.7.27"
OS_IMAGE: Final = "Debian GNU/Linux 12 (bookworm)"
KERNEL_VERSION: Final = "6.8.0-57-generic"
RESOURCES: Final = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
OPTIONS: Final = WriteOptions(field_manager="kubelet")

_CONDITIONS: Final = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_name(index: int) -> str:
    return f"node-{index}"


def node_ip(index: int) -> str:
    """node-1 is 172.18.0.2, node-2 172.18.0.3, ... (kind's docker network)."""
    return f"172.18.0.{index + 1}"


def node_conditions(now: datetime) -> list[dict[str, Any]]:
    stamp = now_rfc3339(now)
    return [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, status, reason, message in _CONDITIONS
    ]


def _id(name: str, purpose: str) -> str:
    return hashlib.sha256(f"{name}/{purpose}".encode()).hexdigest()[:32]


def node_body(index: int, now: datetime) -> dict[str, Any]:
    """A Node as a registering kubelet creates it, status included."""
    name = node_name(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
        "status": {
            "capacity": dict(RESOURCES),
            "allocatable": dict(RESOURCES),
            "conditions": node_conditions(now),
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _id(name, "machine"),
                "systemUUID": _id(name, "system"),
                "bootID": _id(name, "boot"),
                "kernelVersion": KERNEL_VERSION,
                "osImage": OS_IMAGE,
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def lease_body(node: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The node's heartbeat Lease, owned by the Node (so it goes when the node does)."""
    name = node["metadata"]["name"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": 40,
            "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def _is_ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


class NodeController(Controller):
    """Registers the configured nodes (and their Leases) each time the sandbox starts."""

    async def resync(self) -> None:
        now = self.clock.now()
        for index in range(1, self.settings.nodes + 1):
            node = await self._ensure_node(index, now)
            await self._ensure_lease(node, now)

    async def _ensure_node(self, index: int, now: datetime) -> dict[str, Any]:
        rt = self.cluster.types_for(NODES)
        assert rt is not None
        entry = self.cluster.store.get(NODES, "", node_name(index))
        if entry is None:
            return (await self.cluster.create(rt, "", node_body(index, now), OPTIONS)).obj
        if _is_ready(entry.obj):
            return entry.obj
        patch = orjson.dumps({"status": {"conditions": node_conditions(now)}})
        result = await self.cluster.patch(
            rt, "", node_name(index), PATCH_MERGE, patch, OPTIONS, "status"
        )
        return result.obj

    async def _ensure_lease(self, node: dict[str, Any], now: datetime) -> None:
        rt = self.cluster.types_for(LEASES)
        if rt is None or self.cluster.store.get(NAMESPACES, "", LEASE_NAMESPACE) is None:
            return
        body = lease_body(node, now)
        name = node["metadata"]["name"]
        if self.cluster.store.get(LEASES, LEASE_NAMESPACE, name) is None:
            await self.cluster.create(rt, LEASE_NAMESPACE, body, OPTIONS)
            return
        owners = body["metadata"]["ownerReferences"]
        patch = orjson.dumps({"metadata": {"ownerReferences": owners}, "spec": body["spec"]})
        await self.cluster.patch(rt, LEASE_NAMESPACE, name, PATCH_MERGE, patch, OPTIONS)
