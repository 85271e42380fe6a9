"""Writing to a cluster: server-side apply of rendered manifests, pruning, patches, deletes.

The controlplane renderer produces a revision's install as a list of plain manifests (dicts);
`apply_manifests` sends each with server-side apply under the field manager `meshcanary`,
forcing ownership of the fields we render (a drifted field is put back, as the operator must).
Applying an unchanged manifest again is a no-op on the server: same resourceVersion, no
generation bump. Manifests go in Helm's install order (namespaces and CRDs first, webhooks
last) and are removed in the reverse order, so a webhook never points at an istiod that is not
there yet or any more.

`prune` deletes what carries our labels but was not (re)applied: `kubectl apply --prune`
without its surprises, since it refuses an empty selector and only touches the kinds it is
given. Every request goes through `retry.call`; every error is a KubeError.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lightkube import AsyncClient
from lightkube.types import PatchType

from meshcanary.kube import client as kube_client
from meshcanary.kube import errors, listing, resources, retry

Manifest = Mapping[str, Any]

INSTALL_ORDER: Final = (
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
"""Helm's `InstallOrder` (pkg/releaseutil/kind_sorter.go); other kinds (custom resources) last."""
_RANK: Final = {kind: rank for rank, kind in enumerate(INSTALL_ORDER)}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which object: enough to find it again and to print it."""

    kind: str
    namespace: str | None
    name: str
    api_version: str = ""

    @property
    def identity(self) -> tuple[str, str, str | None, str]:
        """(group, kind, namespace, name): the same object whatever version it was read at."""
        group = self.api_version.rpartition("/")[0]
        return group, self.kind, self.namespace, self.name

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def ref_of(obj: Mapping[str, Any], resource: type[Any] | None = None) -> ObjectRef:
    """The reference of an object or manifest (apiVersion/kind from `resource` if given)."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise errors.InvalidManifest(f"{obj.get('kind', 'object')} without metadata.name")
    api_version = resources.api_version_of(resource) if resource else obj.get("apiVersion", "")
    kind = resources.kind_of(resource) if resource else obj.get("kind", "")
    return ObjectRef(str(kind), metadata.get("namespace"), name, str(api_version))


def install_order(manifests: Iterable[Manifest]) -> list[Manifest]:
    """Manifests sorted for applying: by Helm's kind order, stable within a kind."""
    return sorted(manifests, key=lambda m: _RANK.get(str(m.get("kind")), len(_RANK)))


def uninstall_order(manifests: Iterable[Manifest]) -> list[Manifest]:
    """Manifests sorted for deleting: the reverse kind order, stable within a kind."""
    return sorted(manifests, key=lambda m: -_RANK.get(str(m.get("kind")), len(_RANK)))


async def apply_manifests(
    client: AsyncClient,
    manifests: Iterable[Manifest],
    *,
    field_manager: str = kube_client.FIELD_MANAGER,
    force: bool = True,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> list[dict[str, Any]]:
    """Server-side apply each manifest, in install order; the server's objects, as dicts.

    With `dry_run` the server validates and answers without persisting (`dryRun=All`).
    """
    applied = []
    for manifest in install_order(manifests):
        applied.append(
            await apply_manifest(
                client,
                manifest,
                field_manager=field_manager,
                force=force,
                dry_run=dry_run,
                backoff=backoff,
            )
        )
    return applied


async def apply_manifest(
    client: AsyncClient,
    manifest: Manifest,
    *,
    field_manager: str = kube_client.FIELD_MANAGER,
    force: bool = True,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> dict[str, Any]:
    """Server-side apply one manifest; the object as the server now has it."""
    resource = resources.for_manifest(manifest)
    ref = ref_of(manifest)
    body = dict(manifest)

    async def send() -> Any:
        return await client.patch(
            resource,
            ref.name,
            body,
            namespace=ref.namespace,
            patch_type=PatchType.APPLY,
            field_manager=field_manager,
            force=force,
            dry_run=dry_run,
        )

    return dict(await retry.call(send, backoff=backoff))


async def create(
    client: AsyncClient,
    manifest: Manifest,
    *,
    field_manager: str = kube_client.FIELD_MANAGER,
    backoff: retry.Backoff = retry.DEFAULT,
) -> dict[str, Any]:
    """Create one object (POST), e.g. an Event with `metadata.generateName`; the server's copy.

    Unlike `apply_manifest` it needs no name and fails with AlreadyExists if the name is taken.
    """
    resource = resources.for_manifest(manifest)
    body = resource.from_dict(dict(manifest))

    async def send() -> Any:
        return await client.create(body, field_manager=field_manager)

    return dict(await retry.call(send, backoff=backoff))


async def merge_patch(
    client: AsyncClient,
    resource: type[Any],
    name: str,
    patch: Mapping[str, Any],
    *,
    namespace: str | None = None,
    status: bool = False,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> dict[str, Any]:
    """A JSON merge patch (the one patch type custom resources accept); `status` patches the
    status subresource. Returns the patched object as a dict."""
    target = resources.status_of(resource) if status else resources.raw(resource)
    return await _patch(
        client,
        target,
        name,
        patch,
        backoff,
        namespace=namespace,
        patch_type=PatchType.MERGE,
        dry_run=dry_run,
    )


async def strategic_patch(
    client: AsyncClient,
    resource: type[Any],
    name: str,
    patch: Mapping[str, Any],
    *,
    namespace: str | None = None,
    field_manager: str = kube_client.FIELD_MANAGER,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> dict[str, Any]:
    """A strategic merge patch (built-in kinds only), as `kubectl rollout restart` sends one.
    Returns the patched object as a dict."""
    return await _patch(
        client,
        resources.raw(resource),
        name,
        patch,
        backoff,
        namespace=namespace,
        patch_type=PatchType.STRATEGIC,
        field_manager=field_manager,
        dry_run=dry_run,
    )


async def _patch(
    client: AsyncClient,
    target: type[Any],
    name: str,
    patch: Mapping[str, Any],
    backoff: retry.Backoff,
    **options: Any,
) -> dict[str, Any]:
    """One PATCH of `target` (`options`: namespace, patch_type, ...), retried; the result."""

    async def send() -> Any:
        return await client.patch(target, name, dict(patch), **options)

    return dict(await retry.call(send, backoff=backoff))


async def delete(
    client: AsyncClient,
    resource: type[Any],
    name: str,
    *,
    namespace: str | None = None,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> bool:
    """Delete one object (background propagation); False if it was already gone."""

    async def send() -> None:
        await client.delete(resource, name, namespace=namespace, dry_run=dry_run)

    try:
        await retry.call(send, backoff=backoff)
    except errors.NotFound:
        return False
    return True


async def prune(
    client: AsyncClient,
    kinds: Sequence[type[Any]],
    labels: listing.Labels,
    *,
    keep: Collection[ObjectRef] = (),
    namespace: str | None = None,
    dry_run: bool = False,
    backoff: retry.Backoff = retry.DEFAULT,
) -> list[ObjectRef]:
    """Delete objects of `kinds` that match `labels` and are not in `keep`; what was deleted.

    Kinds are pruned in uninstall order (webhooks before the istiod they call). `namespace`
    None covers all namespaces. With `dry_run` the server checks each delete without doing it,
    and the result lists what would go. An empty selector is refused: it would match everything.
    """
    if not labels:
        raise ValueError("refusing to prune with an empty label selector")
    kept = {ref.identity for ref in keep}
    deleted: list[ObjectRef] = []
    for resource in sorted(kinds, key=lambda r: -_RANK.get(resources.kind_of(r), len(_RANK))):
        for ref in await _matching(client, resource, labels, namespace):
            if ref.identity in kept:
                continue
            if await delete(
                client,
                resource,
                ref.name,
                namespace=ref.namespace,
                dry_run=dry_run,
                backoff=backoff,
            ):
                deleted.append(ref)
    return deleted


async def _matching(
    client: AsyncClient, resource: type[Any], labels: listing.Labels, namespace: str | None
) -> list[ObjectRef]:
    raw = resources.raw(resource)
    found: list[ObjectRef] = []
    async for page in listing.pages(client, raw, namespace=namespace, labels=labels):
        found.extend(ref_of(obj, resource) for obj in page)
    return found
