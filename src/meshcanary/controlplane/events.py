"""Kubernetes Events for an IstioControlPlane's status transitions.

`kubectl describe istiocontrolplane` and `kubectl get events` are where people look first, so
every transition `status.compute_status` reports (Reconciling -> Available, a new failure
message...) becomes one core/v1 Event on the resource. The engine posts them right after the
status write that made the transition, and only then: an unchanged status posts nothing, which
is what keeps a restarted operator from repeating Events.

Events are posted here through the kube layer rather than with kopf's `kopf.event`, so the engine
posts the same Events whether the operator or a test runs it. Like client-go's event recorder,
posting is best effort: a failure is logged, never raised, since a lost Event must not fail a
reconcile whose real work (objects, status) is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from meshcanary.controlplane import status
from meshcanary.kube import apply, errors
from meshcanary.kube.client import Client

COMPONENT: Final = "meshcanary-operator"
MAX_MESSAGE: Final = 1024
"""The API server rejects longer Event messages."""

log = logging.getLogger(__name__)


def manifest(
    resource: Mapping[str, Any],
    transition: status.Transition,
    *,
    now: datetime,
    component: str = COMPONENT,
) -> dict[str, Any]:
    """The core/v1 Event (with `generateName`) telling `transition` of `resource`."""
    meta = resource.get("metadata") or {}
    stamp = _timestamp(now)
    involved = {
        "apiVersion": resource.get("apiVersion"),
        "kind": resource.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {key: value for key, value in involved.items() if value},
        "type": transition.type,
        "reason": transition.reason,
        "message": _shorten(transition.message or transition.reason),
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def record(
    client: Client,
    resource: Mapping[str, Any],
    transitions: Iterable[status.Transition],
    *,
    now: datetime,
) -> int:
    """Post one Event per transition; how many were posted (failures are logged)."""
    posted = 0
    for transition in transitions:
        try:
            await apply.create(client, manifest(resource, transition, now=now))
        except errors.KubeError as error:
            log.warning("cannot post Event %s: %s", transition.reason, error)
            continue
        posted += 1
    return posted


def _timestamp(now: datetime) -> str:
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shorten(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
