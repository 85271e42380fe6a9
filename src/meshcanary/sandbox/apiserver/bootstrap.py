"""Objects every cluster has from its first second: the system namespaces and `kubernetes` Service.

A real control plane creates these at start-up; clients assume them (the `default` namespace
above all), so the sandbox creates whichever are missing each time it starts.
"""

from __future__ import annotations

from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
OPTIONS = WriteOptions(field_manager="kube-apiserver")


async def ensure_system_objects(cluster: Cluster) -> None:
    namespaces = cluster.registry.get("", "v1", "namespaces")
    services = cluster.registry.get("", "v1", "services")
    assert namespaces is not None and services is not None
    for name in SYSTEM_NAMESPACES:
        if cluster.store.get(namespaces.storage_key, "", name) is None:
            await cluster.create(namespaces, "", {"metadata": {"name": name}}, OPTIONS)
    if cluster.store.get(services.storage_key, "default", "kubernetes") is None:
        service = {
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
            },
        }
        try:
            await cluster.create(services, "default", service, OPTIONS)
        except errors.ApiError as exc:
            if exc.code != 409:
                raise
