"""Test helper: a store with istiod revisions in it, built through the API verbs as clients do.

Imported by the tests of `meshcanary.sandbox.istio` (pytest puts this folder on sys.path); the
`mesh` fixture itself lives in the folder's conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from meshcanary.sandbox.apiserver.cluster import PATCH_MERGE, Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Store

OPTS = WriteOptions(field_manager="test")
ISTIO_NS = "istio-system"


@dataclass
class Mesh:
    """Creates istiod Deployments, Services, pods and injector ConfigMaps in a cluster."""

    cluster: Cluster

    def rt(self, group: str, plural: str) -> ResourceType:
        found = self.cluster.registry.get(group, "v1", plural)
        assert found is not None
        return found

    async def namespace(self, name: str) -> None:
        await self.cluster.create(self.rt("", "namespaces"), "", {"metadata": {"name": name}}, OPTS)

    async def istiod(
        self,
        name: str,
        rev: str,
        image: str = "docker.io/istio/pilot:1.15.3",
        ready: bool = True,
        namespace: str = ISTIO_NS,
    ) -> dict[str, Any]:
        """Deployment + Service `name` and one pod; returns the pod."""
        labels = {"app": "istiod", "istio.io/rev": rev}
        containers = [{"name": "discovery", "image": image}]
        template = {"metadata": {"labels": labels}, "spec": {"containers": containers}}
        deployment = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": template},
        }
        await self.cluster.create(self.rt("apps", "deployments"), namespace, deployment, OPTS)
        await self.service(name, labels, namespace)
        return await self.pod(f"{name}-7d9c-abcde", labels, containers, ready, namespace)

    async def service(self, name: str, selector: dict[str, str], namespace: str = ISTIO_NS) -> None:
        ports = [
            {"name": "https-webhook", "port": 443, "targetPort": 15017},
            {"name": "grpc-xds", "port": 15012},
        ]
        body = {"metadata": {"name": name}, "spec": {"selector": selector, "ports": ports}}
        await self.cluster.create(self.rt("", "services"), namespace, body, OPTS)

    async def pod(
        self,
        name: str,
        labels: dict[str, str],
        containers: list[dict[str, Any]],
        ready: bool = True,
        namespace: str = ISTIO_NS,
    ) -> dict[str, Any]:
        body = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": containers, "nodeName": "node-1"},
        }
        pod = (await self.cluster.create(self.rt("", "pods"), namespace, body, OPTS)).obj
        return await self.set_ready(pod, ready)

    async def set_ready(self, pod: dict[str, Any], ready: bool) -> dict[str, Any]:
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        status = {"status": {"phase": "Running", "conditions": [condition]}}
        meta = pod["metadata"]
        result = await self.cluster.patch(
            self.rt("", "pods"),
            meta["namespace"],
            meta["name"],
            PATCH_MERGE,
            orjson.dumps(status),
            OPTS,
            subresource="status",
        )
        return result.obj

    async def injector_values(self, name: str, values: dict[str, Any]) -> None:
        body = {"metadata": {"name": name}, "data": {"values": orjson.dumps(values).decode()}}
        await self.cluster.create(self.rt("", "configmaps"), ISTIO_NS, body, OPTS)


async def new_mesh() -> Mesh:
    """An empty cluster with the istio-system namespace."""
    mesh = Mesh(Cluster(Store(None)))
    await mesh.namespace(ISTIO_NS)
    return mesh
