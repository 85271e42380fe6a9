"""Guarded deletion: a control plane that still serves proxies, or that a namespace still selects,
is not deleted by accident, and one that is deleted leaves nothing behind.

Deleting the istiod of a revision that pods still use breaks them the next time they need a
certificate or a config push, and a namespace still labelled for it can no longer create pods
(its injection webhook calls an istiod that is gone, `failurePolicy: Fail`). istio-operator v2
deletes without looking; `istioctl uninstall --revision` only warns. Here:

- `deletion_blockers` (pure) says what depends on a control plane: live proxies injected by its
  revision, per namespace (Succeeded/Failed pods do not count, terminating ones do until they
  are gone, as in `mesh.proxies`), and the namespaces whose labels select it (Istio's precedence:
  an `istio-injection` label wins over `istio.io/rev`);
- `refusal_message` says it in one line that names namespaces and counts, and how to proceed:
  migrate them, or annotate the resource `meshcanary.io/force-delete=true`;
- `refusal` reads the cluster and decides for one resource; the operator's validating admission
  webhook calls it on DELETE (so a plain `kubectl delete istiocontrolplanes ...` is refused), and
  its finalizer calls it again before cleaning up, in case the deletion got past a webhook that
  was not running: the resource then stays Terminating, its istiod still serving, until the
  proxies are migrated or the force annotation is set;
- `cleanup` deletes every object of the revision, namespaced and cluster-scoped, found by label
  (webhook configurations first, so nothing is left pointing at a deleted istiod, istio/istio
  #37512), and waits until they are gone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from meshcanary.controlplane import reconcile, spec, status
from meshcanary.kube import apply, errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.mesh import proxies, revisions

FORCE_ANNOTATION: Final = "meshcanary.io/force-delete"
CLEANUP_WAIT: Final = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class Blockers:
    """What still depends on a control plane; falsy when nothing does."""

    proxies_by_namespace: dict[str, int] = field(default_factory=dict)
    """Live proxies of the revision, per namespace."""
    selecting_namespaces: list[str] = field(default_factory=list)
    """Namespaces whose labels select the revision, sorted."""
    control_plane: str = ""
    """The IstioControlPlane's name, for messages."""

    @property
    def proxies(self) -> int:
        return sum(self.proxies_by_namespace.values())

    def __bool__(self) -> bool:
        return bool(self.proxies_by_namespace or self.selecting_namespaces)


def deletion_blockers(
    cp: spec.ControlPlane,
    pods: Iterable[Mapping[str, Any]],
    namespaces: Iterable[Mapping[str, Any]],
) -> Blockers:
    """The live proxies (per namespace) and the selecting namespaces of `cp`'s revision."""
    counts = Counter(
        proxy.namespace
        for proxy in proxies.proxies_from_pods(pods)
        if proxy.live and proxy.revision == cp.revision
    )
    return Blockers(
        proxies_by_namespace=dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        selecting_namespaces=status.selecting_namespaces(cp.revision, namespaces),
        control_plane=cp.name,
    )


def refusal_message(blockers: Blockers) -> str:
    """One line: what still depends on the control plane, and the two ways forward."""
    parts = []
    if blockers.proxies_by_namespace:
        per_namespace = ", ".join(f"{ns}: {n}" for ns, n in blockers.proxies_by_namespace.items())
        noun = "live proxy" if blockers.proxies == 1 else "live proxies"
        parts.append(f"still serves {blockers.proxies} {noun} ({per_namespace})")
    if blockers.selecting_namespaces:
        noun = "namespace" if len(blockers.selecting_namespaces) == 1 else "namespaces"
        still = "" if blockers.proxies_by_namespace else "still "
        names = ", ".join(blockers.selecting_namespaces)
        parts.append(f"is {still}selected by {noun} {names}")
    return (
        f"istiocontrolplane {blockers.control_plane} {' and '.join(parts)}; migrate them first, "
        f"or annotate {FORCE_ANNOTATION}=true"
    )


def is_forced(resource: Mapping[str, Any]) -> bool:
    """Whether the resource carries `meshcanary.io/force-delete: "true"`."""
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(FORCE_ANNOTATION, "")).lower() == "true"


def target(resource: Mapping[str, Any]) -> spec.ControlPlane | None:
    """The control plane a resource names, even when its spec does not parse any more.

    Deletion needs only the name, namespace and revision; None when those cannot form a
    revision (then nothing was ever rendered for it).
    """
    try:
        return spec.parse(resource)
    except spec.SpecError:
        pass
    meta = resource.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    try:
        revisions.RevisionRef.for_control_plane(name, namespace)
    except ValueError:
        return None
    images = spec.Images(hub=spec.DEFAULT_HUB, tag="")
    return spec.ControlPlane(name=name, namespace=namespace, version="", images=images)


async def find_blockers(client: Client, cp: spec.ControlPlane) -> Blockers:
    """`deletion_blockers` over the cluster as it is now (one LIST of live pods)."""
    pods = await reconcile.revision_pods(client, cp.revision)
    namespaces = await reconcile.labelled_namespaces(client, cp.revision)
    return deletion_blockers(cp, pods, namespaces)


async def refusal(client: Client, resource: Mapping[str, Any]) -> str | None:
    """Why `resource` must not be deleted now, or None (forced, or nothing depends on it)."""
    if is_forced(resource):
        return None
    cp = target(resource)
    if cp is None:
        return None
    blockers = await find_blockers(client, cp)
    return refusal_message(blockers) if blockers else None


async def cleanup(
    client: Client, cp: spec.ControlPlane, *, timeout: float = CLEANUP_WAIT
) -> list[apply.ObjectRef]:
    """Delete every object labelled for `cp`'s revision and wait until they are gone.

    Returns what was deleted. Raises `reconcile.TransientError` (retry) when the API fails
    transiently or an object is still there after `timeout` seconds.
    """
    deleted: list[apply.ObjectRef] = await _typed(reconcile.prune(client, cp))
    for ref in deleted:
        resource = resources.for_manifest({"apiVersion": ref.api_version, "kind": ref.kind})
        await _typed(
            listing.watch_until(client, resource, ref.namespace, ref.name, _gone, timeout=timeout)
        )
    return deleted


def _gone(obj: Any) -> bool:
    return obj is None


async def _typed(work: Awaitable[T]) -> T:
    """Await `work`; a KubeError becomes a TransientError (retry) or a ReconcileError."""
    try:
        return await work
    except errors.KubeError as error:
        retry = error.transient or isinstance(error, errors.WaitTimeout)
        cls = reconcile.TransientError if retry else reconcile.ReconcileError
        raise cls(f"cleaning up: {error}") from error
