"""The dashboard on a real (in-process) sandbox: watches push a cluster change within 2 s."""

from __future__ import annotations

import asyncio
import json

from tests.unit.controlplane.test_reconcile import cluster as sandbox_cluster

from meshcanary.dashboard import cluster, server
from meshcanary.kube import apply
from meshcanary.kube.client import Client

__all__ = ["sandbox_cluster"]


async def test_a_relabelled_namespace_reaches_subscribers_within_two_seconds(
    sandbox_cluster: Client,
) -> None:
    dashboard = server.Dashboard(cluster.ClusterSource(sandbox_cluster), server.Settings())
    await dashboard.start()
    try:
        await dashboard.wait_ready(10)
        await asyncio.sleep(0.5)  # the watches are established
        assert dashboard.models["validation"]["available"] is True
        with dashboard.subscription() as queue:
            namespace = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "late", "labels": {"istio.io/rev": "cp-x.istio-system"}},
            }
            loop = asyncio.get_running_loop()
            started = loop.time()
            await apply.apply_manifests(sandbox_cluster, [namespace])
            while True:
                message = await asyncio.wait_for(queue.get(), 2 - (loop.time() - started))
                data = json.loads(message.split("data: ", 1)[1])
                names = [row["name"] for row in data["namespaces"]["namespaces"]]
                if "late" in names:
                    break
            late = next(r for r in data["namespaces"]["namespaces"] if r["name"] == "late")
            assert late["revision"] == "MISSING/cp-x.istio-system"
    finally:
        await dashboard.stop()
