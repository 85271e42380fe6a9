"""The mesh at a glance: control planes, namespaces and proxies, computed from one snapshot.

`meshcanary cp list`, `ns list` and `proxies` (and later the dashboard) show views of the same
`MeshSnapshot`: plain API JSON of IstioControlPlanes, istiod Deployments, mutating webhook
configurations, namespaces, pods (and, for owners, ReplicaSets), read with one cluster-wide LIST
per kind. Everything here is pure so each rule is unit-tested without a cluster.

Why not just read labels: what a namespace really gets is decided by the injection webhooks that
exist (`injection.injecting_webhooks`), so a namespace's revision is the revision of the
webhooks that fire for a pod without labels there. That resolves revision tags to their
revision, applies Istio's precedence (`istio-injection=enabled` beats `istio.io/rev`), and
exposes a label naming a revision that has no webhook: `MISSING/<rev>`, as `istioctl x injector
list` prints it. Control planes come from IstioControlPlane resources *and* from istiod
Deployments and webhooks of other installs (istioctl/Helm), so upstream revisions are listed
too, with the tags pointing at them. Finished pods (Succeeded/Failed) never count as proxies.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from meshcanary.mesh import injection, proxies, revisions, versions

Object = Mapping[str, Any]
MISSING_PREFIX: Final = "MISSING/"
OPERATOR: Final = "IstioControlPlane"
"""`ControlPlaneRow.source` of a revision managed by an IstioControlPlane resource."""
DEPLOYMENT: Final = "Deployment"
"""`source` of a revision found only through its istiod Deployment (istioctl, Helm)."""
WEBHOOK: Final = "MutatingWebhookConfiguration"
"""`source` of a revision found only through injection webhooks (its istiod is gone)."""
NO_ISTIOD: Final = "NoIstiod"
POD_TEMPLATE_HASH: Final = "pod-template-hash"


@dataclass(frozen=True)
class MeshSnapshot:
    """API JSON of everything the views need, as listed at one moment."""

    control_planes: Sequence[Object] = ()
    istiods: Sequence[Object] = ()
    webhook_configurations: Sequence[Object] = ()
    namespaces: Sequence[Object] = ()
    pods: Sequence[Object] = ()
    replicasets: Sequence[Object] = ()
    """Optional: only `proxies` needs them, to name a pod's Deployment exactly."""


@dataclass(frozen=True)
class ControlPlaneRow:
    name: str
    namespace: str
    version: str
    status: str
    revision: str
    proxies: int
    namespaces: list[str]
    tags: list[str]
    source: str


@dataclass(frozen=True)
class RevisionCount:
    revision: str
    pods: int
    versions: list[str]


@dataclass(frozen=True)
class NamespaceRow:
    namespace: str
    revision: str | None
    """The revision the labels select (`MISSING/<rev>` when no webhook serves it), or None."""
    reason: str
    pod_revisions: list[RevisionCount]
    needs_restart: int
    without_sidecar: int
    live_pods: int
    conflict: bool = False
    """Both `istio-injection` and `istio.io/rev` on the namespace (IST0123)."""


@dataclass(frozen=True)
class ProxyRow:
    namespace: str
    pod: str
    owner: str
    revision: str
    version: str
    ready: bool
    matches: bool | None
    """Pod revision == the namespace's current selection; None when it selects nothing."""


# -- shared derivations ---------------------------------------------------------------------------


def _meta(obj: Object) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Object) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _webhooks(snapshot: MeshSnapshot) -> list[injection.InjectionWebhook]:
    return injection.webhooks_from_configurations(snapshot.webhook_configurations)


def _is_live(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") not in proxies.FINISHED_PHASES


@dataclass(frozen=True)
class Selection:
    """What a namespace's labels select, resolved against the webhooks that exist."""

    revision: str | None
    """The revision that injects, `MISSING/<rev>`, several joined by `,` (IST0139), or None."""
    reason: str
    conflict: bool

    @property
    def serving(self) -> str | None:
        """The revision pods should run, None if nothing (or nothing that exists) is selected."""
        if self.revision is None or self.revision.startswith(MISSING_PREFIX):
            return None
        return self.revision


def select(
    webhooks: Sequence[injection.InjectionWebhook], labels: Mapping[str, str] | None
) -> Selection:
    """The revision a pod without labels gets in a namespace with `labels`.

    The webhooks that fire decide; when none fires but the labels ask for a revision,
    that revision is reported as `MISSING/<rev>`.
    """
    by_labels = injection.namespace_selection(labels)
    fired = injection.injecting_revisions(webhooks, labels, {})
    if fired:
        reason = by_labels.reason
        if len(fired) > 1:
            reason += f"; several revisions inject ({injection.IST0139})"
        return Selection(",".join(fired), reason, by_labels.conflict)
    if by_labels.revision is not None:
        reason = f"{by_labels.reason}; no injection webhook serves it"
        return Selection(MISSING_PREFIX + by_labels.revision, reason, by_labels.conflict)
    return Selection(None, by_labels.reason, by_labels.conflict)


def selections(snapshot: MeshSnapshot) -> dict[str, Selection]:
    """Every namespace's selection, by namespace name."""
    webhooks = _webhooks(snapshot)
    return {
        str(_meta(ns).get("name", "")): select(webhooks, _labels(ns)) for ns in snapshot.namespaces
    }


def _live_proxies(pods: Iterable[Object]) -> list[proxies.Proxy]:
    return [p for p in proxies.proxies_from_pods(pods) if p.live]


def _version_text(version: versions.Version | None) -> str:
    return str(version) if version is not None else "<unknown>"


# -- control planes -------------------------------------------------------------------------------


@dataclass
class _Found:
    """A revision being assembled from the resources that reveal it."""

    name: str
    namespace: str
    revision: str
    source: str
    version: str = ""
    status: str = ""
    tags: set[str] = field(default_factory=set)


def control_planes(snapshot: MeshSnapshot) -> list[ControlPlaneRow]:
    """Every revision in the cluster, whatever installed it, with its proxies and namespaces."""
    found: dict[str, _Found] = {}
    for resource in snapshot.control_planes:
        _add_control_plane(found, resource)
    for deployment in snapshot.istiods:
        _add_istiod(found, deployment)
    webhooks = _webhooks(snapshot)
    _add_webhook_revisions(found, webhooks)
    counts = proxies.count_by_revision(_live_proxies(snapshot.pods))
    attached = _namespaces_by_revision(selections(snapshot))
    return [
        ControlPlaneRow(
            name=item.name,
            namespace=item.namespace,
            version=item.version or "<unknown>",
            status=item.status or "Pending",
            revision=revision,
            proxies=counts.get(revision, 0),
            namespaces=attached.get(revision, []),
            tags=sorted(item.tags),
            source=item.source,
        )
        for revision, item in sorted(found.items(), key=lambda kv: (kv[1].namespace, kv[1].name))
    ]


def _add_control_plane(found: dict[str, _Found], resource: Object) -> None:
    meta = _meta(resource)
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
    try:
        revision = revisions.RevisionRef.for_control_plane(name, namespace).value
    except ValueError:
        return
    status = resource.get("status") or {}
    found[revision] = _Found(
        name=name,
        namespace=namespace,
        revision=revision,
        source=OPERATOR,
        version=str((resource.get("spec") or {}).get("version") or status.get("version") or ""),
        status=str(status.get("status") or ""),
    )


def _add_istiod(found: dict[str, _Found], deployment: Object) -> None:
    meta = _meta(deployment)
    revision = istiod_revision(deployment)
    item = found.get(revision)
    if item is None:
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        item = found[revision] = _Found(name, namespace, revision, DEPLOYMENT)
    item.status = item.status or deployment_status(deployment)
    item.version = item.version or istiod_version(deployment)


def istiod_revision(deployment: Object) -> str:
    """An istiod Deployment's revision: its `istio.io/rev` label, else its name's suffix.

    `istiod-<rev>` serves `<rev>`; a plain `istiod` is upstream's default revision.
    """
    label = _labels(deployment).get(revisions.REV_LABEL)
    if label:
        return str(label)
    name = str(_meta(deployment).get("name", ""))
    suffix = name.removeprefix("istiod-") if name.startswith("istiod-") else ""
    return suffix or revisions.DEFAULT_REVISION


def istiod_version(deployment: Object) -> str:
    """The Istio version of an istiod Deployment: the tag of its `discovery` container image."""
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = template.get("containers") or []
    preferred = [c for c in containers if c.get("name") == "discovery"] or containers
    for container in preferred:
        version = versions.proxy_version_from_image(str(container.get("image", "")))
        if version is not None:
            return str(version)
    return ""


def deployment_status(deployment: Object) -> str:
    """`Available` when at least one istiod replica is available, else `Unavailable`."""
    status = deployment.get("status") or {}
    return "Available" if int(status.get("availableReplicas") or 0) > 0 else "Unavailable"


def _add_webhook_revisions(
    found: dict[str, _Found], webhooks: Iterable[injection.InjectionWebhook]
) -> None:
    for webhook in webhooks:
        item = found.get(webhook.revision)
        if item is None:
            namespace = (webhook.service or "/").split("/")[0]
            item = found[webhook.revision] = _Found(
                webhook.configuration, namespace, webhook.revision, WEBHOOK, status=NO_ISTIOD
            )
        if webhook.tag:
            item.tags.add(webhook.tag)


def _namespaces_by_revision(selected: Mapping[str, Selection]) -> dict[str, list[str]]:
    attached: dict[str, list[str]] = defaultdict(list)
    for namespace, selection in sorted(selected.items()):
        for revision in (selection.serving or "").split(","):
            if revision:
                attached[revision].append(namespace)
    return attached


# -- namespaces -----------------------------------------------------------------------------------


def namespaces(snapshot: MeshSnapshot, only: Iterable[str] | None = None) -> list[NamespaceRow]:
    """Per namespace: what its labels select, what its pods run, and what needs a restart."""
    wanted = set(only) if only is not None else None
    selected = selections(snapshot)
    pods_by_namespace: dict[str, list[Object]] = defaultdict(list)
    for pod in snapshot.pods:
        if _is_live(pod):
            pods_by_namespace[str(_meta(pod).get("namespace", ""))].append(pod)
    return [
        _namespace_row(name, selection, pods_by_namespace.get(name, []))
        for name, selection in sorted(selected.items())
        if wanted is None or name in wanted
    ]


def _namespace_row(name: str, selection: Selection, pods: Sequence[Object]) -> NamespaceRow:
    sidecars = [(pod, proxies.proxy_from_pod(pod)) for pod in pods]
    found = [proxy for _, proxy in sidecars if proxy is not None]
    return NamespaceRow(
        namespace=name,
        revision=selection.revision,
        reason=selection.reason,
        pod_revisions=_pod_revisions(found),
        needs_restart=_needs_restart(selection, sidecars),
        without_sidecar=len(pods) - len(found),
        live_pods=len(pods),
        conflict=selection.conflict,
    )


def _pod_revisions(found: Iterable[proxies.Proxy]) -> list[RevisionCount]:
    counts: Counter[str] = Counter()
    seen: dict[str, set[str]] = defaultdict(set)
    for proxy in found:
        revision = proxy.revision or proxies.UNKNOWN_REVISION
        counts[revision] += 1
        seen[revision].add(_version_text(proxy.version))
    return [
        RevisionCount(revision, counts[revision], sorted(seen[revision]))
        for revision in sorted(counts)
    ]


def _needs_restart(
    selection: Selection, sidecars: Iterable[tuple[Object, proxies.Proxy | None]]
) -> int:
    """Live pods a restart would change: another revision, or no sidecar where one is due.

    Nothing needs a restart when the namespace selects nothing or a missing revision (a
    restart would not give the pods a proxy), nor for pods that opt out of injection.
    """
    target = selection.serving
    if target is None:
        return 0
    due = set(target.split(","))
    count = 0
    for pod, proxy in sidecars:
        if proxy is None:
            count += not opted_out(pod)
        elif proxy.revision not in due:
            count += 1
    return count


def opted_out(pod: Object) -> bool:
    """Whether a pod declines injection (`sidecar.istio.io/inject=false` label or annotation)."""
    meta = _meta(pod)
    values = (
        (meta.get("labels") or {}).get(injection.INJECT_LABEL),
        (meta.get("annotations") or {}).get(injection.INJECT_LABEL),
    )
    return "false" in values


# -- proxies --------------------------------------------------------------------------------------


def proxies_view(snapshot: MeshSnapshot, only: Iterable[str] | None = None) -> list[ProxyRow]:
    """Each live pod with a sidecar (optionally only in `only` namespaces), sorted."""
    wanted = set(only) if only is not None else None
    selected = selections(snapshot)
    owners = _replicaset_owners(snapshot.replicasets)
    rows = []
    for pod in snapshot.pods:
        proxy = proxies.proxy_from_pod(pod)
        if proxy is None or not proxy.live:
            continue
        if wanted is not None and proxy.namespace not in wanted:
            continue
        selection = selected.get(proxy.namespace)
        rows.append(_proxy_row(proxy, owner_of(pod, owners), selection))
    return sorted(rows, key=lambda row: (row.namespace, row.pod))


def _proxy_row(proxy: proxies.Proxy, owner: str, selection: Selection | None) -> ProxyRow:
    target = selection.serving if selection is not None else None
    revision = proxy.revision or proxies.UNKNOWN_REVISION
    return ProxyRow(
        namespace=proxy.namespace,
        pod=proxy.pod,
        owner=owner,
        revision=revision,
        version=_version_text(proxy.version),
        ready=proxy.ready,
        matches=None if target is None else revision in target.split(","),
    )


def _replicaset_owners(replicasets: Iterable[Object]) -> dict[tuple[str, str], str]:
    """`(namespace, replicaset) -> kind/name` of its controller; orphans map to themselves."""
    owners = {}
    for rs in replicasets:
        meta = _meta(rs)
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        owners[key] = f"replicaset/{key[1]}"
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                owners[key] = f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"
    return owners


def owner_of(pod: Object, replicaset_owners: Mapping[tuple[str, str], str] | None = None) -> str:
    """`kind/name` of the workload that owns a pod; a ReplicaSet is resolved to its Deployment.

    From the listed ReplicaSets' owner references when known, else by Kubernetes' naming: a
    Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`. `<none>` for a bare pod.
    """
    meta = _meta(pod)
    kind, name = None, None
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if kind is None or name is None:
        return "<none>"
    if kind != "ReplicaSet":
        return f"{kind.lower()}/{name}"
    namespace = str(meta.get("namespace", ""))
    if replicaset_owners and (namespace, name) in replicaset_owners:
        return replicaset_owners[(namespace, name)]
    pod_hash = _labels(pod).get(POD_TEMPLATE_HASH)
    if pod_hash and name.endswith(f"-{pod_hash}"):
        return f"deployment/{name.removesuffix(f'-{pod_hash}')}"
    return f"replicaset/{name}"
