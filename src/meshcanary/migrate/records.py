"""What a migration leaves on the namespace: the previous revision, its progress, and Events.

State lives in the cluster, on the namespace it describes, so a crashed or interrupted run,
a later wave-based upgrade and the dashboard's timeline all read the same truth:

- `meshcanary.io/previous-revision`: the revision selected before; rollback's default target.
- `meshcanary.io/migration`: JSON `{target, from, step, startedAt, finishedAt, result}`, updated
  at every step boundary. `result` is `running` until the run ends (`succeeded`, `failed`,
  `interrupted`), so a reader can tell a finished run from one to resume.
- a core/v1 Event on the namespace at start and finish, for `kubectl get events` and
  `kubectl describe namespace`. Events are best effort (like client-go's recorder): a lost Event
  never fails a migration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from meshcanary.kube import apply, errors, resources
from meshcanary.kube.client import Client
from meshcanary.migrate import plan

PREVIOUS_ANNOTATION: Final = plan.PREVIOUS_ANNOTATION
MIGRATION_ANNOTATION: Final = "meshcanary.io/migration"
COMPONENT: Final = "meshcanary-migrate"

log = logging.getLogger(__name__)


class Step(StrEnum):
    """The engine's steps, in order; recorded as the last step started."""

    CHECK = "check"
    RELABEL = "relabel"
    RESTART = "restart"
    WAIT = "wait"
    VERIFY = "verify"
    DONE = "done"


class Result(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNVERIFIED = "unverified"
    """Restarted without waiting (`--no-wait`): a later run verifies."""


@dataclass(frozen=True)
class MigrationRecord:
    """The progress annotation's content (JSON keys are camelCase as in Kubernetes)."""

    target: str
    source: str | None
    step: str
    started_at: str
    finished_at: str | None = None
    result: str = Result.RUNNING
    message: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(
            {
                "target": data["target"],
                "from": data["source"],
                "step": data["step"],
                "startedAt": data["started_at"],
                "finishedAt": data["finished_at"],
                "result": data["result"],
                "message": data["message"],
            },
            sort_keys=False,
        )

    def at(self, step: Step) -> MigrationRecord:
        return replace(self, step=str(step))

    def finished(self, result: Result, now: datetime, message: str = "") -> MigrationRecord:
        return replace(self, result=str(result), finished_at=timestamp(now), message=message)


def start(target: str, source: str | None, now: datetime) -> MigrationRecord:
    """A new record of a run beginning now."""
    return MigrationRecord(target, source, str(Step.CHECK), timestamp(now))


def read(namespace: Mapping[str, Any]) -> MigrationRecord | None:
    """The record on a namespace (API JSON), or None when absent or unreadable."""
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(MIGRATION_ANNOTATION)
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("target"), str):
        return None
    return MigrationRecord(
        target=data["target"],
        source=data.get("from"),
        step=str(data.get("step", "")),
        started_at=str(data.get("startedAt", "")),
        finished_at=data.get("finishedAt"),
        result=str(data.get("result", "")),
        message=str(data.get("message", "")),
    )


def annotation_patch(record: MigrationRecord, previous: str | None = None) -> dict[str, str]:
    """The annotation patch for a record (and the previous revision, when there is one)."""
    patch = {MIGRATION_ANNOTATION: record.to_json()}
    if previous is not None:
        patch[PREVIOUS_ANNOTATION] = previous
    return patch


async def write(client: Client, namespace: str, record: MigrationRecord) -> None:
    """Store the record on the namespace (one merge patch of one annotation)."""
    patch = {"metadata": {"annotations": annotation_patch(record)}}
    await apply.merge_patch(client, resources.Namespace, namespace, patch)


async def post_event(
    client: Client, namespace: Mapping[str, Any], reason: str, message: str, *, warning: bool
) -> None:
    """Post an Event on the namespace; failures are logged, never raised."""
    try:
        await apply.create(client, event(namespace, reason, message, warning, datetime.now(UTC)))
    except errors.KubeError as error:
        log.warning("cannot post Event %s: %s", reason, error)


def event(
    namespace: Mapping[str, Any], reason: str, message: str, warning: bool, now: datetime
) -> dict[str, Any]:
    """A core/v1 Event about a namespace (Events of a namespace live in that namespace)."""
    meta = namespace.get("metadata") or {}
    name = str(meta.get("name", ""))
    stamp = timestamp(now)
    involved = {"apiVersion": "v1", "kind": "Namespace", "name": name, "uid": meta.get("uid")}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": name},
        "involvedObject": {key: value for key, value in involved.items() if value},
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC, seconds precision, as Kubernetes writes times."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
