"""The reconcile engine: one call makes the cluster match an IstioControlPlane and tells the truth.

The operator's handlers are thin: everything they do to a control plane is `reconcile` (and
`deletion` when it goes away), so a test, or a CLI command, can run exactly what the operator
runs. One call:

1. re-reads the resource (the caller's copy may be stale; its status is the "before" that
   decides whether the status changed and which transitions deserve an Event);
2. parses the spec; a `spec.SpecError` ends as `ReconcileFailed` with its message and nothing is
   applied, so a typo in the version never tears down a running istiod;
3. checks the other revisions' injection webhooks *before* applying ours: a webhook that would
   inject the same pods twice (IST0139) is refused, `ReconcileFailed` naming the other
   configuration;
4. server-side applies every rendered object (field manager `meshcanary-operator`, forced, so a
   drifted field is put back) and prunes the objects with this revision's labels, of the kinds
   in `render.KINDS`, that are no longer rendered. An unchanged object is a no-op on the server
   (same resourceVersion), which is what makes a restarted operator do no duplicate work;
5. observes what the status is made of: istiod's Deployment and the expansion gateway's Service
   (from the apply answers), the live pods injected by this revision (one paginated LIST across
   the cluster, narrowed server-side to pods that are not Succeeded/Failed, and kept only when
   their annotations name this revision, so memory stays small with 10,000 pods), the namespaces
   labelled for it, and every MutatingWebhookConfiguration;
6. computes the status (`status.compute_status`, pure) and writes it through the status
   subresource with a merge patch only when it changed, then posts one Event per transition.

Errors are typed once, here: a spec or overlap problem is a *status*, not an exception (retrying
cannot help until someone edits something). An API failure that may pass (`KubeError.transient`:
unreachable server, 409, 429, 5xx) after `kube.retry`'s own attempts is raised as
`TransientError`, after recording `ReconcileFailed` when it happened while applying; the operator
turns it into `kopf.TemporaryError` with a backoff. Any other API failure (403, 422...) while
applying is recorded as `ReconcileFailed` with its message; while observing it is raised as
`ReconcileError`, because a status computed without the pods would claim zero proxies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, TypeVar

from meshcanary.controlplane import crd, events, istio_crds_sync, render, spec, status
from meshcanary.kube import apply, errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.mesh import proxies, revisions, versions

FIELD_MANAGER: Final = "meshcanary-operator"
FINISHED_PHASES: Final = ("Succeeded", "Failed")
CRD_WAIT: Final = 30.0

T = TypeVar("T")
Object = dict[str, Any]
Status = status.Status
Transition = status.Transition


class ReconcileError(Exception):
    """The reconcile could not finish; `transient` says whether trying again later may help."""

    transient: ClassVar[bool] = False


class TransientError(ReconcileError):
    """An API failure that may pass (unreachable, throttled, conflict, 5xx): retry with backoff."""

    transient = True


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one reconcile did and found."""

    status: Status | None
    """The status the resource now has; None when the resource is gone or being deleted."""
    transitions: tuple[Transition, ...] = ()
    """The transitions of this status write (each was posted as an Event)."""
    written: bool = False
    """Whether the status changed and was written."""
    applied: tuple[apply.ObjectRef, ...] = ()
    pruned: tuple[apply.ObjectRef, ...] = ()
    crds: tuple[str, ...] = ()
    """Istio CRDs installed or upgraded by this pass, one line each."""


@dataclass
class _Install:
    crds: list[str] = field(default_factory=list)
    applied: list[Object] = field(default_factory=list)
    pruned: list[apply.ObjectRef] = field(default_factory=list)
    error: errors.KubeError | None = None


async def reconcile(
    client: Client, resource: Mapping[str, Any], *, now: datetime
) -> ReconcileOutcome:
    """Make the cluster match `resource` (an IstioControlPlane) and write its true status."""
    current = await _reread(client, resource)
    if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
        return ReconcileOutcome(status=None)
    try:
        cp: spec.ControlPlane | None = spec.parse(current)
    except spec.SpecError:
        cp = None
    webhooks = await _observed(
        listing.collect(client, _raw(resources.MutatingWebhookConfiguration))
    )
    install = _Install()
    if cp is not None and not status.overlaps(cp, webhooks):
        install = await _install(client, cp)
    observed = await _observe(client, current, cp, install, webhooks, now)
    result = status.compute_status(current, observed)
    written = await _write_status(client, current, result.status)
    transitions = result.transitions if written else ()
    if transitions:
        await events.record(client, current, transitions, now=now)
    if install.error is not None and install.error.transient:
        raise TransientError(f"applying {_display(current)}: {install.error}") from install.error
    return ReconcileOutcome(
        status=result.status,
        transitions=transitions,
        written=written,
        applied=tuple(apply.ref_of(obj) for obj in install.applied),
        pruned=tuple(install.pruned),
        crds=tuple(install.crds),
    )


# -- reading ----------------------------------------------------------------------------------


async def _reread(client: Client, resource: Mapping[str, Any]) -> Object | None:
    meta = resource.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not isinstance(namespace, str):
        raise ReconcileError("an IstioControlPlane needs metadata.name and metadata.namespace")
    return await _observed(
        listing.get(client, resources.IstioControlPlane, name, namespace=namespace)
    )


async def _observed(reading: Awaitable[T]) -> T:
    """Await a read, typing its failure: transient or not, a read never becomes a status."""
    try:
        return await reading
    except errors.KubeError as error:
        cls = TransientError if error.transient else ReconcileError
        raise cls(f"reading the cluster: {error}") from error


def _raw(resource: type[Any]) -> Any:
    return resources.raw(resource)


# -- applying and pruning ---------------------------------------------------------------------


async def _install(client: Client, cp: spec.ControlPlane) -> _Install:
    """Apply the rendered objects, then prune ours that are no longer rendered."""
    manifests = render.render(cp)
    install = _Install()
    try:
        # Istio's shared CRDs first: istiod needs them, and they only ever move forward
        # (`ensure` never downgrades), so each control plane may ask for its own version.
        install.crds = await istio_crds_sync.ensure(
            client, [versions.parse(cp.version)], field_manager=FIELD_MANAGER
        )
        install.applied = await apply.apply_manifests(
            client, manifests, field_manager=FIELD_MANAGER, force=True
        )
        install.pruned = await prune(client, cp, keep=[apply.ref_of(m) for m in manifests])
    except errors.KubeError as error:
        install.error = error
    return install


def kinds() -> tuple[list[type[Any]], list[type[Any]]]:
    """The resources of `render.KINDS`: (namespaced, cluster-scoped)."""
    namespaced: list[type[Any]] = []
    cluster: list[type[Any]] = []
    for api_version, kind, is_namespaced in render.KINDS:
        resource = resources.for_manifest({"apiVersion": api_version, "kind": kind})
        (namespaced if is_namespaced else cluster).append(resource)
    return namespaced, cluster


async def prune(
    client: Client, cp: spec.ControlPlane, *, keep: Sequence[apply.ObjectRef] = ()
) -> list[apply.ObjectRef]:
    """Delete the objects labelled for `cp` (kinds of `render.KINDS`) that are not in `keep`.

    Namespaced kinds are listed in the control plane's namespace only, cluster-scoped ones
    cluster-wide; webhook configurations go first (uninstall order).
    """
    namespaced, cluster = kinds()
    labels = render.labels(cp)
    pruned = await apply.prune(client, cluster, labels, keep=keep)
    pruned += await apply.prune(client, namespaced, labels, keep=keep, namespace=cp.namespace)
    return pruned


# -- observing --------------------------------------------------------------------------------


async def _observe(
    client: Client,
    current: Mapping[str, Any],
    cp: spec.ControlPlane | None,
    install: _Install,
    webhooks: Sequence[Object],
    now: datetime,
) -> status.Observed:
    revision = cp.revision if cp is not None else _fallback_revision(current)
    istiod = gateway = None
    if cp is not None:
        istiod_name = revisions.istiod_name(cp.ref)
        istiod = await _find(client, install, resources.Deployment, istiod_name, cp)
        if cp.mesh_expansion:
            gateway = await _find(
                client, install, resources.Service, render.expansion_gateway_name(cp), cp
            )
    return status.Observed(
        istiod=istiod,
        gateway_service=gateway,
        pods=await revision_pods(client, revision),
        namespaces=await labelled_namespaces(client, revision if cp is not None else None),
        webhook_configurations=webhooks,
        apply_error=f"applying the install: {install.error}" if install.error else None,
        now=now,
    )


def _fallback_revision(resource: Mapping[str, Any]) -> str:
    """The revision of a resource whose spec does not parse (its name may still be fine)."""
    meta = resource.get("metadata") or {}
    return f"{meta.get('name')}.{meta.get('namespace')}"


async def _find(
    client: Client, install: _Install, resource: type[Any], name: str, cp: spec.ControlPlane
) -> Object | None:
    """An object as the apply answered it (it carries the status), else as read now."""
    kind = resources.kind_of(resource)
    for obj in install.applied:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == kind and meta.get("name") == name:
            return obj
    return await _observed(listing.get(client, resource, name, namespace=cp.namespace))


async def revision_pods(client: Client, revision: str) -> list[Object]:
    """The pods that are not Succeeded/Failed and whose annotations name `revision`.

    One paginated LIST across the cluster (pod annotations cannot be selected server-side; the
    phase can). Pods of other revisions are dropped page by page.
    """
    fields = {"status.phase": listing.not_in(list(FINISHED_PHASES))}

    async def read() -> list[Object]:
        found: list[Object] = []
        async for page in listing.pods(client, fields=fields):
            found.extend(pod for pod in page if _revision_of(pod) == revision)
        return found

    return await _observed(read())


def _revision_of(pod: Mapping[str, Any]) -> str | None:
    return proxies.revision_of(pod.get("metadata") or {})


async def labelled_namespaces(client: Client, revision: str | None) -> list[Object]:
    """Namespaces labelled `istio.io/rev=<revision>` (all of them when `revision` is None)."""
    labels = {revisions.REV_LABEL: revision} if revision else None
    return await _observed(listing.collect(client, _raw(resources.Namespace), labels=labels))


# -- writing the status -----------------------------------------------------------------------


def status_changed(previous: Mapping[str, Any] | None, new: status.Status) -> bool:
    """Whether writing `new` would change anything (an absent key equals None)."""
    before = previous or {}
    return any(before.get(key) != value for key, value in new.items())


async def _write_status(client: Client, current: Mapping[str, Any], new: status.Status) -> bool:
    if not status_changed(current.get("status"), new):
        return False
    meta = current.get("metadata") or {}
    patch = apply.merge_patch(
        client,
        resources.IstioControlPlane,
        str(meta["name"]),
        {"status": dict(new)},
        namespace=str(meta["namespace"]),
        status=True,
    )
    try:
        await _observed(patch)
    except ReconcileError as error:
        if isinstance(error.__cause__, errors.NotFound):
            return False  # deleted meanwhile: nothing to tell
        raise
    return True


def _display(resource: Mapping[str, Any]) -> str:
    meta = resource.get("metadata") or {}
    return f"istiocontrolplane {meta.get('namespace')}/{meta.get('name')}"


# -- prerequisites ----------------------------------------------------------------------------


async def ensure_crd(client: Client, *, timeout: float = CRD_WAIT) -> bool:
    """Install the IstioControlPlane CRD if it is missing and wait until it is Established.

    An existing CRD is left alone (it may be newer than this binary). True when installed.
    """
    definition = crd.definition()
    name = definition["metadata"]["name"]
    existing = await _observed(listing.get(client, resources.CustomResourceDefinition, name))
    if existing is not None:
        return False
    await _observed(apply.apply_manifest(client, definition, field_manager=FIELD_MANAGER))
    await _observed(
        listing.watch_until(
            client,
            _raw(resources.CustomResourceDefinition),
            None,
            name,
            _established,
            timeout,
        )
    )
    return True


def _established(obj: Any) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
