"""Reading what the analyzers need: the only module of `validate` that does I/O.

One paginated, cluster-wide LIST per kind, all at once: the mesh snapshot
(`controlplane.inventory.snapshot`), every Istio config kind, and the validating webhook
configurations; then the Services of the namespaces webhooks point at (one LIST per namespace,
usually just istio-system), to tell a live istiod from a dangling webhook. A kind whose CRD is not
installed lists as empty (a cluster need not have Telemetry or WorkloadEntry).

Config kinds are listed at API versions every supported Istio serves (v1beta1, EnvoyFilter
v1alpha3, Telemetry v1alpha1), so the same code reads 1.13 and 1.30 clusters; the version a
user wrote is recovered from `managedFields` by the config analyzers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final

from meshcanary.controlplane import inventory
from meshcanary.kube import errors, listing, resources, retry
from meshcanary.kube.client import Client
from meshcanary.validate import state
from meshcanary.validate.snapshot import ValidationSnapshot

Object = dict[str, Any]
_NET: Final = "networking.istio.io"
_SEC: Final = "security.istio.io"
CONFIG_KINDS: Final[tuple[tuple[str, str, str, str], ...]] = (
    (_NET, "v1beta1", "VirtualService", "virtualservices"),
    (_NET, "v1beta1", "DestinationRule", "destinationrules"),
    (_NET, "v1beta1", "Gateway", "gateways"),
    (_NET, "v1beta1", "ServiceEntry", "serviceentries"),
    (_NET, "v1beta1", "Sidecar", "sidecars"),
    (_NET, "v1alpha3", "EnvoyFilter", "envoyfilters"),
    (_NET, "v1beta1", "WorkloadEntry", "workloadentries"),
    (_SEC, "v1beta1", "AuthorizationPolicy", "authorizationpolicies"),
    (_SEC, "v1beta1", "PeerAuthentication", "peerauthentications"),
    (_SEC, "v1beta1", "RequestAuthentication", "requestauthentications"),
    ("telemetry.istio.io", "v1alpha1", "Telemetry", "telemetries"),
)
"""(group, version, kind, plural) of every Istio kind read, in a fixed order."""


async def snapshot(client: Client, *, limit: int = listing.DEFAULT_LIMIT) -> ValidationSnapshot:
    """Everything the analyzers read, as it is now."""
    mesh, config, validating = await asyncio.gather(
        inventory.snapshot(client, limit=limit),
        _config(client, limit),
        _all(client, resources.raw(resources.ValidatingWebhookConfiguration), limit),
    )
    namespaces = _service_namespaces([*mesh.webhook_configurations, *validating], mesh.istiods)
    services = await asyncio.gather(*(_services(client, ns, limit) for ns in namespaces))
    return ValidationSnapshot(
        mesh=mesh,
        config=config,
        validating_webhook_configurations=validating,
        services=[service for group in services for service in group],
    )


async def _config(client: Client, limit: int) -> list[Object]:
    lists = await asyncio.gather(*(_kind(client, kind, limit) for kind in CONFIG_KINDS))
    return [obj for group in lists for obj in group]


async def _kind(client: Client, kind: tuple[str, str, str, str], limit: int) -> list[Object]:
    group, version, name, plural = kind
    resource = resources.custom(group, version, name, plural)
    try:
        found = await _all(client, resource, limit)
    except errors.NotFound:
        return []
    for obj in found:
        obj.setdefault("kind", name)
        obj.setdefault("apiVersion", f"{group}/{version}")
    return found


async def _all(client: Client, resource: Any, limit: int, **options: Any) -> list[Object]:
    async def read() -> list[Object]:
        found: list[Object] = []
        async for page in listing.pages(client, resource, limit=limit, **options):
            found.extend(dict(item) for item in page)
        return found

    result: list[Object] = await retry.call(read)
    return result


async def _services(client: Client, namespace: str, limit: int) -> list[Object]:
    return await _all(client, resources.raw(resources.Service), limit, namespace=namespace)


def _service_namespaces(
    configurations: Sequence[Mapping[str, Any]], istiods: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Namespaces whose Services webhooks call, and istiod's own."""
    found = {
        service.partition("/")[0]
        for configuration in configurations
        for service in state.webhook_services(configuration)
    }
    found |= {str((d.get("metadata") or {}).get("namespace", "")) for d in istiods}
    return sorted(ns for ns in found if ns)
