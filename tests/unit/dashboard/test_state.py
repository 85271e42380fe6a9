"""Page models from a snapshot: MESH numbers, namespaces, and a timeline that survives restarts."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from tests.unit.dashboard import fakes

from meshcanary.dashboard import cluster, state
from meshcanary.mesh import inventory
from meshcanary.migrate import records
from meshcanary.validate import findings
from meshcanary.validate.snapshot import ValidationSnapshot


def event(
    kind: str, name: str, reason: str, when: str, message: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.1", "namespace": extra.get("namespace", name)},
        "involvedObject": {"kind": kind, "name": name, "namespace": extra.get("namespace", "")},
        "reason": reason,
        "message": message,
        "type": extra.get("type", "Normal"),
        "lastTimestamp": when,
    }


def test_mesh_counts_live_proxies_per_control_plane_and_version() -> None:
    model = state.mesh(fakes.snapshot())
    rows = {row["revision"]: row for row in model["controlPlanes"]}
    assert rows[fakes.A]["proxies"] == 3 and rows[fakes.B]["proxies"] == 1
    assert rows[fakes.A]["mode"] == "ACTIVE" and rows[fakes.A]["gatewayAddresses"] == ["10.0.0.1"]
    assert rows[fakes.A]["namespaces"] == ["odd", "shop"]
    assert model["proxies"] == [
        {"revision": fakes.A, "version": "1.15.3", "proxies": 3},
        {"revision": fakes.B, "version": "1.17.2", "proxies": 1},
    ]
    assert model["progress"]["namespaces"] == 3
    assert model["progress"]["namespacesSettled"] == 3
    assert model["progress"]["migrations"] == {"failed": 1}


def test_progress_counts_namespaces_that_need_a_restart() -> None:
    snapshot = fakes.snapshot()
    moved = [fakes.namespace("shop", fakes.B), *snapshot.namespaces[1:]]
    progress = state.progress(replace(snapshot, namespaces=moved))
    assert progress["namespacesSettled"] == 2
    assert progress["proxiesNeedingRestart"] == 2


def test_namespaces_offer_targets_the_engine_can_resolve() -> None:
    model = state.namespaces(fakes.snapshot())
    assert model["targets"] == [fakes.A, fakes.B]
    shop = next(row for row in model["namespaces"] if row["name"] == "shop")
    assert shop["revision"] == fakes.A and shop["needsRestart"] == 0 and shop["livePods"] == 2
    istiod = inventory.ControlPlaneRow(
        "istiod-canary",
        "istio-system",
        "1.17.2",
        "Available",
        "canary",
        0,
        [],
        [],
        inventory.DEPLOYMENT,
    )
    assert state.target_spec(istiod) == "canary.istio-system"
    webhook_only = replace(istiod, source=inventory.WEBHOOK)
    assert state.target_spec(webhook_only) is None


def test_timeline_from_events_and_records_without_duplicates() -> None:
    """Events and the migration annotation tell the same story once; records outlive Events."""
    snapshot = fakes.snapshot()
    shop_record = records.MigrationRecord(
        fakes.B,
        fakes.A,
        "done",
        "2026-01-02T10:00:00Z",
        "2026-01-02T10:01:00Z",
        "succeeded",
        "every live pod runs cp-b.istio-system",
    ).to_json()
    namespaces = [
        fakes.namespace("shop", fakes.B, {records.MIGRATION_ANNOTATION: shop_record}),
        *snapshot.namespaces[1:],
    ]
    events = [
        event("Namespace", "shop", "MigrationStarted", "2026-01-02T10:00:01Z", "migrating to cp-b"),
        event(
            "IstioControlPlane",
            "cp-b",
            "Available",
            "2026-01-01T09:00:00Z",
            "Reconciling -> Available",
            namespace="istio-system",
        ),
        event("Pod", "web-1", "Scheduled", "2026-01-02T10:00:02Z", namespace="shop"),
    ]
    entries = state.timeline(replace(snapshot, namespaces=namespaces), events)["entries"]
    summary = [(e["time"], e["subject"], e["title"]) for e in entries]
    assert ("2026-01-02T10:01:00Z", "shop", "MigrationSucceeded") in summary
    assert [s for s in summary if s[1:] == ("shop", "MigrationStarted")] == [
        ("2026-01-02T10:00:01Z", "shop", "MigrationStarted")
    ]
    assert ("2026-01-01T09:00:00Z", "istio-system/cp-b", "Available") in summary
    assert not any(e["title"] == "Scheduled" for e in entries)
    odd = [e for e in entries if e["subject"] == "odd"]
    assert [e["title"] for e in odd] == ["MigrationFailed", "MigrationStarted"]
    assert odd[0]["message"] == fakes.SCRIPT and odd[0]["level"] == "warning"
    created = [e for e in entries if e["title"] == "Created"]
    assert {e["subject"] for e in created} == {"istio-system/cp-a", "istio-system/cp-b"}
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)


def test_timeline_survives_without_any_event() -> None:
    """A restarted dashboard on a cluster whose Events expired still shows the migrations."""
    entries = state.timeline(fakes.snapshot(), [])["entries"]
    assert {(e["subject"], e["title"]) for e in entries if e["category"] == "migration"} == {
        ("odd", "MigrationStarted"),
        ("odd", "MigrationFailed"),
    }


def test_validation_runs_the_analyzers_against_the_newest_control_plane() -> None:
    model = cluster.validate(ValidationSnapshot(mesh=fakes.snapshot()))
    assert model["available"] is True and model["target"] == "1.17.2"
    assert all(
        set(row) == {"severity", "code", "subject", "message", "advice"}
        for row in model["findings"]
    )


def test_findings_become_rows() -> None:
    found = findings.Finding(
        findings.Severity.ERROR,
        "MC0201",
        findings.Resource("Namespace", "", "a"),
        "twice",
        "fix it",
    )
    model = state.validation([found], "1.17.2")
    assert model["findings"] == [
        {
            "severity": "error",
            "code": "MC0201",
            "subject": "Namespace/a",
            "message": "twice",
            "advice": "fix it",
        }
    ]
    assert json.loads(json.dumps(model)) == model
