"""A fake mesh for dashboard tests: two control planes, labelled namespaces, sidecar pods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from tests.e2e import istio_manifests

from meshcanary.dashboard import state
from meshcanary.mesh import inventory
from meshcanary.migrate import records, steps

A, B = "cp-a.istio-system", "cp-b.istio-system"
SCRIPT = "<script>alert(1)</script>"


def control_plane(name: str, version: str, created: str) -> dict[str, Any]:
    return {
        "apiVersion": "meshcanary.io/v1alpha1",
        "kind": "IstioControlPlane",
        "metadata": {"name": name, "namespace": "istio-system", "creationTimestamp": created},
        "spec": {"version": version, "mode": "ACTIVE", "networkName": "network1"},
        "status": {"status": "Available", "gatewayAddress": ["10.0.0.1"]},
    }


def namespace(
    name: str, revision: str | None, annotations: dict[str, str] | None = None, **labels: str
) -> dict[str, Any]:
    all_labels = dict(labels)
    if revision:
        all_labels["istio.io/rev"] = revision
    meta: dict[str, Any] = {"name": name, "labels": all_labels, "annotations": annotations or {}}
    return {"metadata": meta}


def pod(ns: str, name: str, revision: str, version: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "annotations": {"istio.io/rev": revision}},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx"},
                {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{version}"},
            ]
        },
        "status": {"phase": phase},
    }


def record(target: str, result: str, started: str, finished: str | None, message: str) -> str:
    return records.MigrationRecord(target, A, "done", started, finished, result, message).to_json()


def snapshot() -> inventory.MeshSnapshot:
    """cp-a serves shop (2 pods) and odd (1); cp-b serves billing (1); a finished pod ignored."""
    note = {
        records.MIGRATION_ANNOTATION: record(
            B, "failed", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z", SCRIPT
        )
    }
    return inventory.MeshSnapshot(
        control_planes=[
            control_plane("cp-a", "1.15.3", "2025-12-01T00:00:00Z"),
            control_plane("cp-b", "1.17.2", "2025-12-02T00:00:00Z"),
        ],
        webhook_configurations=[
            istio_manifests.injection_webhooks("inj-a", A, "istiod-cp-a"),
            istio_manifests.injection_webhooks("inj-b", B, "istiod-cp-b"),
        ],
        namespaces=[
            namespace("shop", A),
            namespace("odd", A, note, team=SCRIPT),
            namespace("billing", B),
        ],
        pods=[
            pod("shop", "web-1", A, "1.15.3"),
            pod("shop", "web-2", A, "1.15.3"),
            pod("odd", "job-1", A, "1.15.3", phase="Succeeded"),
            pod("odd", "web-1", A, "1.15.3"),
            pod("billing", "web-1", B, "1.17.2"),
        ],
    )


class FakeSource:
    """A `server.Source` that serves a fixed snapshot and records the actions asked of it."""

    def __init__(self) -> None:
        self.snapshot = snapshot()
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, str | None]] = []
        self.reads = 0
        self.validation = state.validation_unavailable("no analyzers in this test")
        self.release = asyncio.Event()
        self._changed: Callable[[], None] | None = None

    async def read(self) -> tuple[inventory.MeshSnapshot, list[dict[str, Any]], state.Model]:
        self.reads += 1
        return self.snapshot, self.events, self.validation

    async def watch(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        await asyncio.Event().wait()

    def change(self, snapshot: inventory.MeshSnapshot) -> None:
        """What a watch event does: new cluster state, and a signal."""
        self.snapshot = snapshot
        assert self._changed is not None
        self._changed()

    async def migrate(self, namespace: str, to: str, progress: steps.Progress) -> str:
        self.calls.append(("migrate", namespace, to))
        progress(steps.StepProgress(namespace, records.Step.RESTART, "deployment/web"))
        await self.release.wait()
        return f"{namespace}: migrated"

    async def rollback(self, namespace: str, to: str | None, progress: steps.Progress) -> str:
        self.calls.append(("rollback", namespace, to))
        return f"{namespace}: migrated"


def as_json(value: Any) -> str:
    return json.dumps(value)
