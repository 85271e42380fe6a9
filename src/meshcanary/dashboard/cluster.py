"""The dashboard's view of a real cluster: read the mesh, watch for changes, run actions.

Why watches and not polling: a page must show a change within 2 s, and polling a mesh of
20,000 pods every second would load the API server for nothing. Each watched kind (pods,
namespaces, IstioControlPlanes, Events, istiod Deployments, injection webhooks) only says
"something changed"; the server debounces those signals and re-reads the whole mesh once
(`controlplane.inventory.snapshot`: one paginated LIST per kind), so the page always shows one
consistent moment rather than a stream of partial updates.

A watch starts from the resourceVersion of a one-object LIST (so nothing in between is missed,
without listing everything twice), renews itself when the server ends it, relists after 410
Gone, and backs off on other failures, as client-go's reflector does. A kind the cluster does
not serve (no IstioControlPlane CRD on a plain Istio cluster) is retried slowly, in case the
CRD is installed later.

Only the kube layer imports lightkube; the client object is used through its methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from meshcanary.controlplane import inventory as cp_inventory
from meshcanary.dashboard import state
from meshcanary.kube import errors, listing, resources, retry
from meshcanary.kube.client import Client
from meshcanary.mesh import inventory, versions
from meshcanary.migrate import engine, steps
from meshcanary.validate import engine as analyzers
from meshcanary.validate import gather
from meshcanary.validate.snapshot import ValidationSnapshot

WATCH_SECONDS: Final = 290
UNSERVED_RETRY: Final = 30.0
WATCH_BACKOFF: Final = retry.Backoff(attempts=1_000_000, initial=0.2, maximum=10.0)
EVENT = resources.for_manifest({"apiVersion": "v1", "kind": "Event"})

log = logging.getLogger(__name__)
Changed = Callable[[], None]


class ClusterSource:
    """Everything the server needs from a cluster, behind one small interface (fakeable)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def read(self) -> tuple[inventory.MeshSnapshot, list[dict[str, Any]], state.Model]:
        """The mesh, every Event and the validation findings, read concurrently.

        `validate.gather` reads the mesh snapshot too, so one reading serves every page.
        """
        found, events = await asyncio.gather(
            gather.snapshot(self.client),
            retry.call(lambda: listing.collect(self.client, EVENT)),
        )
        return found.mesh, [dict(event) for event in events], validate(found)

    async def watch(self, changed: Changed) -> None:
        """Call `changed` on every change of a watched kind, until cancelled."""
        kinds: list[tuple[Any, dict[str, Any] | None]] = [
            (resources.raw(resources.Pod), None),
            (resources.raw(resources.Namespace), None),
            (resources.IstioControlPlane, None),
            (EVENT, None),
            (resources.raw(resources.Deployment), dict(cp_inventory.ISTIOD_LABELS)),
            (resources.raw(resources.MutatingWebhookConfiguration), None),
        ]
        async with asyncio.TaskGroup() as group:
            for resource, labels in kinds:
                group.create_task(watch_kind(self.client, resource, changed, labels))

    async def migrate(self, namespace: str, to: str, progress: steps.Progress) -> str:
        """Migrate one namespace; the outcome as one line."""
        results = await engine.migrate(self.client, [namespace], to, progress=progress)
        return _outcome(results)

    async def rollback(self, namespace: str, to: str | None, progress: steps.Progress) -> str:
        """Roll one namespace back (to its recorded previous revision unless `to`)."""
        results = await engine.rollback(self.client, [namespace], to=to, progress=progress)
        return _outcome(results)


def _outcome(results: Sequence[engine.NamespaceResult]) -> str:
    return "; ".join(
        f"{r.namespace}: {r.outcome}" + (f" ({r.message})" if r.message else "") for r in results
    )


def validate(snapshot: ValidationSnapshot) -> state.Model:
    """Findings against the newest control plane's version (where an upgrade is heading)."""
    target = _newest_version(snapshot.mesh)
    try:
        findings = analyzers.analyze(snapshot, target)
    except Exception as error:  # a broken analyzer must not take the dashboard down
        log.exception("validation failed")
        return state.validation_unavailable(f"validation failed: {error}")
    return state.validation(findings, str(target) if target is not None else None)


def _newest_version(snapshot: inventory.MeshSnapshot) -> versions.Version | None:
    found = []
    for row in inventory.control_planes(snapshot):
        with contextlib.suppress(ValueError):
            found.append(versions.parse(row.version))
    return max(found) if found else None


# -- watching -------------------------------------------------------------------------------------


async def watch_kind(
    client: Client, resource: Any, changed: Changed, labels: dict[str, Any] | None = None
) -> None:
    """Signal `changed` on every event of `resource` (cluster-wide), forever."""
    failures = 0
    while True:
        try:
            version = await _list_version(client, resource, labels)
            changed()
            async for _event in _watch(client, resource, labels, version):
                failures = 0
                changed()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failure = errors.translate(error) if not isinstance(error, errors.KubeError) else error
            if failure is None:
                raise
            failures += 1
            await asyncio.sleep(_pause(failures, failure))


def _pause(failures: int, failure: errors.KubeError) -> float:
    if isinstance(failure, errors.NotFound):
        return UNSERVED_RETRY
    if isinstance(failure, errors.Gone):
        return 0.0
    return WATCH_BACKOFF.delay(failures, failure)


def _namespace(resource: Any) -> str | None:
    return listing.ALL_NAMESPACES if resources.is_namespaced(resource) else None


async def _list_version(client: Client, resource: Any, labels: dict[str, Any] | None) -> str:
    """Where a watch starts: the resourceVersion of a LIST limited to one object."""
    with errors.translated():
        found = client.list(resource, namespace=_namespace(resource), labels=labels, chunk_size=1)
        stream: Any = aiter(found)
        async with contextlib.aclosing(stream):
            async for _item in stream:
                break
        return str(found.resourceVersion)


def _watch(client: Client, resource: Any, labels: dict[str, Any] | None, version: str) -> Any:
    return client.watch(
        resource,
        namespace=_namespace(resource),
        labels=labels,
        resource_version=version,
        server_timeout=WATCH_SECONDS,
    )
