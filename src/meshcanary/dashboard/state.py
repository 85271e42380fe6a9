"""The dashboard's page models: plain JSON-ready dicts built from one `MeshSnapshot` and Events.

Everything here is pure, so each page's content is unit-tested without a server or a cluster,
and the server only decides *when* to rebuild (on a watched change) and *whom* to push to.

Why the timeline is rebuilt from the cluster on every refresh rather than kept in memory: a
dashboard is restarted often (a laptop sleeps, a port-forward drops), and the story of an
upgrade must survive that. Its sources are what the cluster keeps:

- Kubernetes Events: the operator's IstioControlPlane status transitions and the migrate
  engine's `MigrationStarted` / `MigrationSucceeded` / `MigrationFailed` / ... on namespaces.
- The `meshcanary.io/migration` annotation on each namespace (migrate/records.py): Events expire
  after an hour on a real cluster, the record does not, so a migration whose Events are gone is
  still on the timeline.
- `creationTimestamp` of control planes (IstioControlPlane resources and istiod Deployments).

Strings from the cluster go into the models unchanged: escaping is the browser's job
(`textContent`), and JSON encoding keeps them inert in the API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

from meshcanary.mesh import inventory, proxies, versions
from meshcanary.migrate import records

Object = Mapping[str, Any]
Model = dict[str, Any]

MIGRATION_REASON_PREFIX: Final = "Migration"
CONTROL_PLANE_KIND: Final = "IstioControlPlane"
NAMESPACE_KIND: Final = "Namespace"
SAME_MOMENT_SECONDS: Final = 5.0
"""An Event and a record entry this close in time, same namespace and phase, are one entry."""
TIMELINE_LIMIT: Final = 500


def _meta(obj: Object) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Object) -> str:
    return str(_meta(obj).get("name", ""))


# -- MESH -----------------------------------------------------------------------------------------


def mesh(snapshot: inventory.MeshSnapshot) -> Model:
    """The MESH page: the seed's control plane columns, a proxy chart and migration progress."""
    custom = {(_meta(cp).get("namespace"), _name(cp)): cp for cp in snapshot.control_planes}
    istiods = {(_meta(d).get("namespace"), _name(d)): d for d in snapshot.istiods}
    rows = [
        _control_plane(
            row, custom.get((row.namespace, row.name)), istiods.get((row.namespace, row.name))
        )
        for row in inventory.control_planes(snapshot)
    ]
    return {
        "controlPlanes": rows,
        "proxies": proxy_chart(snapshot.pods),
        "progress": progress(snapshot),
    }


def _control_plane(
    row: inventory.ControlPlaneRow, resource: Object | None, istiod: Object | None
) -> Model:
    """One row: our inventory's numbers plus the seed's printer columns of the resource.

    Without an IstioControlPlane (another install's istiod Deployment), only the age is known.
    """
    spec = (resource or {}).get("spec") or {}
    status = (resource or {}).get("status") or {}
    created = _meta(resource or istiod or {}).get("creationTimestamp")
    return {
        "name": row.name,
        "namespace": row.namespace,
        "revision": row.revision,
        "mode": str(spec.get("mode") or ""),
        "network": str(spec.get("networkName") or ""),
        "status": row.status,
        "meshExpansion": bool((spec.get("meshExpansion") or {}).get("enabled", False)),
        "gatewayAddresses": _addresses(status.get("gatewayAddress")),
        "error": str(status.get("errorMessage") or ""),
        "created": str(created) if created else None,
        "version": row.version,
        "proxies": row.proxies,
        "namespaces": list(row.namespaces),
        "tags": list(row.tags),
        "source": row.source,
    }


def _addresses(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)] if value else []


def proxy_chart(pods: Iterable[Object]) -> list[Model]:
    """Live proxies counted by (revision, proxy version), the chart's bars, sorted."""
    counts: Counter[tuple[str, str]] = Counter()
    for proxy in proxies.proxies_from_pods(pods):
        if proxy.live:
            version = str(proxy.version) if proxy.version is not None else "<unknown>"
            counts[(proxy.revision or proxies.UNKNOWN_REVISION, version)] += 1
    return [
        {"revision": revision, "version": version, "proxies": count}
        for (revision, version), count in sorted(counts.items(), key=_chart_order)
    ]


def _chart_order(item: tuple[tuple[str, str], int]) -> tuple[str, tuple[int, ...]]:
    (revision, version), _ = item
    try:
        parsed = versions.parse(version)
    except ValueError:
        return revision, (9999,)
    return revision, (parsed.major, parsed.minor, parsed.patch)


def progress(snapshot: inventory.MeshSnapshot) -> Model:
    """How far the mesh is from "every meshed pod runs its namespace's revision".

    A namespace is settled when it selects a serving revision and no live pod there needs a
    restart; the proxies figure is the same rule per pod. Migration records add what is running
    or failed right now.
    """
    rows = [row for row in inventory.namespaces(snapshot) if row.revision is not None]
    results = Counter(
        record.result
        for record in (records.read(ns) for ns in snapshot.namespaces)
        if record is not None
    )
    pods = sum(row.live_pods - row.without_sidecar for row in rows)
    stale = sum(row.needs_restart for row in rows)
    return {
        "namespaces": len(rows),
        "namespacesSettled": sum(1 for row in rows if row.needs_restart == 0),
        "proxies": pods,
        "proxiesNeedingRestart": stale,
        "migrations": dict(sorted(results.items())),
    }


# -- Namespaces -----------------------------------------------------------------------------------


def namespaces(snapshot: inventory.MeshSnapshot) -> Model:
    """The Namespaces page: selection, pod revisions, NEEDS RESTART and the last migration."""
    by_name = {_name(ns): ns for ns in snapshot.namespaces}
    rows = [
        _namespace(row, by_name.get(row.namespace, {})) for row in inventory.namespaces(snapshot)
    ]
    targets = [
        spec for spec in map(target_spec, inventory.control_planes(snapshot)) if spec is not None
    ]
    return {"namespaces": rows, "targets": targets}


def target_spec(row: inventory.ControlPlaneRow) -> str | None:
    """How `migrate.engine` names a control plane to migrate to; None if it cannot be one.

    An IstioControlPlane is `<name>.<namespace>`; an istiod Deployment `istiod-<cp>` (or plain
    `istiod`, the default revision) is found by the engine as `<cp>.<namespace>`. A revision
    known only from webhooks has no istiod: migrating there would break pods.
    """
    if row.source == inventory.OPERATOR:
        return f"{row.name}.{row.namespace}"
    if row.source == inventory.DEPLOYMENT:
        name = row.name.removeprefix("istiod-") if row.name != "istiod" else "default"
        return f"{name}.{row.namespace}"
    return None


def _namespace(row: inventory.NamespaceRow, namespace: Object) -> Model:
    record = records.read(namespace)
    annotations = _meta(namespace).get("annotations") or {}
    return {
        "name": row.namespace,
        "labels": {str(k): str(v) for k, v in (_meta(namespace).get("labels") or {}).items()},
        "revision": row.revision,
        "reason": row.reason,
        "podRevisions": [asdict(count) for count in row.pod_revisions],
        "needsRestart": row.needs_restart,
        "withoutSidecar": row.without_sidecar,
        "livePods": row.live_pods,
        "conflict": row.conflict,
        "previousRevision": annotations.get(records.PREVIOUS_ANNOTATION),
        "migration": _record(record) if record is not None else None,
    }


def _record(record: records.MigrationRecord) -> Model:
    return {
        "target": record.target,
        "from": record.source,
        "step": record.step,
        "startedAt": record.started_at,
        "finishedAt": record.finished_at,
        "result": record.result,
        "message": record.message,
    }


# -- Timeline -------------------------------------------------------------------------------------


def timeline(snapshot: inventory.MeshSnapshot, events: Sequence[Object]) -> Model:
    """What changed when, newest first, from Events, migration records and creation times."""
    from_events = [entry for entry in (_from_event(e) for e in events) if entry is not None]
    entries = from_events + _from_records(snapshot.namespaces, from_events)
    entries += _created(snapshot)
    entries.sort(key=lambda entry: (entry["time"] or "", entry["title"]), reverse=True)
    return {"entries": entries[:TIMELINE_LIMIT]}


def _entry(
    time: str | None, category: str, subject: str, title: str, message: str, level: str
) -> Model:
    return {
        "time": time,
        "category": category,
        "subject": subject,
        "title": title,
        "message": message,
        "level": level,
    }


def _from_event(event: Object) -> Model | None:
    """An Event worth showing: a control plane's, or a migration's on a namespace."""
    involved = event.get("involvedObject") or {}
    kind, reason = str(involved.get("kind", "")), str(event.get("reason", ""))
    if kind == CONTROL_PLANE_KIND:
        category = "control-plane"
        subject = f"{involved.get('namespace', '')}/{involved.get('name', '')}"
    elif kind == NAMESPACE_KIND and reason.startswith(MIGRATION_REASON_PREFIX):
        category, subject = "migration", str(involved.get("name", ""))
    else:
        return None
    level = "warning" if event.get("type") == "Warning" else "info"
    return _entry(
        _event_time(event), category, subject, reason, str(event.get("message", "")), level
    )


def _event_time(event: Object) -> str | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if event.get(key):
            return str(event[key])
    created = _meta(event).get("creationTimestamp")
    return str(created) if created else None


def _from_records(namespaces: Iterable[Object], seen: Sequence[Model]) -> list[Model]:
    """Start and finish of each namespace's last migration, unless an Event already says so."""
    entries = []
    for namespace in namespaces:
        record = records.read(namespace)
        if record is None:
            continue
        name = _name(namespace)
        source = record.source or "no revision"
        started = _entry(
            record.started_at,
            "migration",
            name,
            "MigrationStarted",
            f"migrating to {record.target} from {source}",
            "info",
        )
        entries.append(started)
        if record.finished_at:
            title = f"Migration{record.result.capitalize()}"
            level = "info" if record.result == records.Result.SUCCEEDED else "warning"
            entries.append(
                _entry(record.finished_at, "migration", name, title, record.message, level)
            )
    return [entry for entry in entries if not _already(entry, seen)]


def _already(entry: Model, seen: Sequence[Model]) -> bool:
    moment = _parse_time(entry["time"])
    for other in seen:
        if other["subject"] != entry["subject"] or other["title"] != entry["title"]:
            continue
        when = _parse_time(other["time"])
        if (
            moment is None
            or when is None
            or abs((moment - when).total_seconds()) <= (SAME_MOMENT_SECONDS)
        ):
            return True
    return False


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _created(snapshot: inventory.MeshSnapshot) -> list[Model]:
    """A "created" entry per control plane resource and per istiod Deployment."""
    entries = []
    for resource in snapshot.control_planes:
        meta = _meta(resource)
        subject = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        version = str((resource.get("spec") or {}).get("version") or "")
        message = f"IstioControlPlane created (Istio {version})" if version else ""
        entries.append(
            _entry(
                meta.get("creationTimestamp"), "control-plane", subject, "Created", message, "info"
            )
        )
    for deployment in snapshot.istiods:
        meta = _meta(deployment)
        subject = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        revision = inventory.istiod_revision(deployment)
        version = inventory.istiod_version(deployment) or "<unknown>"
        message = f"istiod for revision {revision} (Istio {version})"
        entries.append(
            _entry(
                meta.get("creationTimestamp"), "control-plane", subject, "Created", message, "info"
            )
        )
    return entries


# -- Validation -----------------------------------------------------------------------------------


def validation_unavailable(reason: str) -> Model:
    """The honest state of a Validation page without analyzers: no findings are invented."""
    return {"available": False, "reason": reason, "findings": [], "target": None}


def validation(findings: Iterable[Any], target: str | None) -> Model:
    """Findings of `meshcanary.validate`, worst first as the engine sorts them, as rows."""
    return {
        "available": True,
        "reason": "",
        "target": target,
        "findings": [_finding(finding) for finding in findings],
    }


def _finding(finding: Any) -> Model:
    """A `validate.findings.Finding` (or a mapping of the same fields) as a row."""
    data = finding if isinstance(finding, Mapping) else vars(finding)
    return {
        "severity": str(data.get("severity", "info")).lower(),
        "code": str(data.get("code", "")),
        "subject": str(data.get("resource") or data.get("subject") or ""),
        "message": str(data.get("message", "")),
        "advice": str(data.get("fix") or data.get("advice") or ""),
    }
