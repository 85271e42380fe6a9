"""Mesh-state analyzers: is the mesh in a state a migration can safely start from?

Pure functions over a `ValidationSnapshot`. They catch the traps a canary upgrade falls into:
labels that do not select what users think (IST0123, a revision that does not exist), webhooks
that inject twice or call an istiod that is gone (IST0139), proxies outside Istio's skew rules
(never newer than istiod; at most one minor behind), an upgrade jump larger than Istio supports,
pods still waiting for a restart (IST0158) and bare pods no migration can restart.

Scope: with a namespace filter, a finding is kept when it is about one of those namespaces or
about a control plane serving one; cluster-wide objects (webhook configurations) are reported
only for the whole mesh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from meshcanary.mesh import injection, inventory, proxies, revisions, versions
from meshcanary.mesh.versions import Version
from meshcanary.validate.findings import Finding, Resource, finding
from meshcanary.validate.snapshot import ValidationSnapshot

Object = Mapping[str, Any]
DATAPLANE_MODE: Final = "istio.io/dataplane-mode"
PROXY_IMAGE: Final = "sidecar.istio.io/proxyImage"
ISTIO_WEBHOOK_SUFFIX: Final = ".istio.io"
EXAMPLES: Final = 3
"""How many pod names a grouped finding quotes."""
_SOURCE_KINDS: Final = {
    inventory.OPERATOR: "IstioControlPlane",
    inventory.DEPLOYMENT: "Deployment",
    inventory.WEBHOOK: "MutatingWebhookConfiguration",
}


@dataclass(frozen=True)
class Context:
    """What the state analyzers are asked: the target, the mode and the namespace scope."""

    target: Version | None = None
    in_place: bool = False
    scope: frozenset[str] | None = None

    def covers(self, namespace: str) -> bool:
        return self.scope is None or namespace in self.scope

    def covers_any(self, namespaces: Iterable[str]) -> bool:
        return self.scope is None or any(ns in self.scope for ns in namespaces)


Analyzer = Callable[[ValidationSnapshot, Context], Iterable[Finding]]


def analyze(snapshot: ValidationSnapshot, context: Context) -> list[Finding]:
    """Every state finding."""
    return [found for analyzer in ANALYZERS for found in analyzer(snapshot, context)]


def _meta(obj: Object) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Object) -> str:
    return str(_meta(obj).get("name", ""))


def _namespace_resource(name: str) -> Resource:
    return Resource("Namespace", "", name)


def _scoped_namespaces(snapshot: ValidationSnapshot, context: Context) -> Iterator[Object]:
    for namespace in snapshot.mesh.namespaces:
        if context.covers(_name(namespace)):
            yield namespace


def _examples(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:EXAMPLES])
    return shown + (f" and {len(names) - EXAMPLES} more" if len(names) > EXAMPLES else "")


# -- labels and webhooks --------------------------------------------------------------------------


def multiple_injection_labels(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """IST0123: `istio-injection` together with `istio.io/rev` (or the dataplane mode)."""
    for namespace in _scoped_namespaces(snapshot, context):
        labels = _meta(namespace).get("labels") or {}
        if injection.INJECTION_LABEL not in labels:
            continue
        others = [key for key in (revisions.REV_LABEL, DATAPLANE_MODE) if key in labels]
        if others:
            shown = ", ".join(f"{key}={labels[key]}" for key in others)
            message = (
                f"{injection.INJECTION_LABEL}={labels[injection.INJECTION_LABEL]} together with "
                f"{shown}: {injection.INJECTION_LABEL} wins"
            )
            yield finding("MC0201", _namespace_resource(_name(namespace)), message)


def webhook_overlaps(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """IST0139: several injection webhooks fire for a pod of the namespace."""
    webhooks = injection.webhooks_from_configurations(snapshot.mesh.webhook_configurations)
    pod_labels = _pod_label_sets(snapshot.mesh.pods)
    for namespace in _scoped_namespaces(snapshot, context):
        name = _name(namespace)
        labels = _meta(namespace).get("labels") or {}
        for candidate in [{}, *pod_labels.get(name, [])]:
            fired = injection.injecting_webhooks(webhooks, labels, candidate)
            if len(fired) > 1:
                yield _overlap(name, fired)
                break


def _pod_label_sets(pods: Sequence[Object]) -> dict[str, list[dict[str, str]]]:
    """Distinct label sets of live pods, per namespace."""
    seen: dict[str, dict[frozenset[tuple[str, str]], dict[str, str]]] = defaultdict(dict)
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in proxies.FINISHED_PHASES:
            continue
        labels = dict(_meta(pod).get("labels") or {})
        seen[str(_meta(pod).get("namespace", ""))][frozenset(labels.items())] = labels
    return {namespace: list(sets.values()) for namespace, sets in seen.items()}


def _overlap(namespace: str, fired: Sequence[injection.InjectionWebhook]) -> Finding:
    names = ", ".join(sorted(f"{w.configuration}/{w.name} ({w.revision})" for w in fired))
    message = f"{len(fired)} injection webhooks match its pods: {names}"
    return finding("MC0202", _namespace_resource(namespace), message)


def missing_revisions(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """A namespace label selecting a revision that no injection webhook serves."""
    for name, selection in sorted(inventory.selections(snapshot.mesh).items()):
        revision = selection.revision or ""
        if context.covers(name) and revision.startswith(inventory.MISSING_PREFIX):
            missing = revision.removeprefix(inventory.MISSING_PREFIX)
            message = f"selects revision {missing}, which is not installed ({selection.reason})"
            yield finding("MC0203", _namespace_resource(name), message)


def dangling_webhooks(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """Istio validating and injection webhooks whose istiod Service does not exist."""
    if context.scope is not None:
        return
    services = {f"{_meta(s).get('namespace', '')}/{_name(s)}" for s in snapshot.services}
    kinds = (
        ("ValidatingWebhookConfiguration", snapshot.validating_webhook_configurations),
        ("MutatingWebhookConfiguration", snapshot.mesh.webhook_configurations),
    )
    for kind, configurations in kinds:
        for configuration in configurations:
            missing = sorted(set(_missing_services(configuration, services)))
            if missing:
                message = f"calls istiod Service {', '.join(missing)}, which does not exist"
                yield finding("MC0204", Resource(kind, "", _name(configuration)), message)


def webhook_services(configuration: Object) -> list[str]:
    """`namespace/name` of the Services an Istio webhook configuration's webhooks call."""
    found = []
    for webhook in configuration.get("webhooks") or []:
        if not str(webhook.get("name", "")).endswith(ISTIO_WEBHOOK_SUFFIX):
            continue
        service = (webhook.get("clientConfig") or {}).get("service")
        if service:
            found.append(f"{service.get('namespace', '')}/{service.get('name', '')}")
    return found


def _missing_services(configuration: Object, services: set[str]) -> Iterator[str]:
    for service in webhook_services(configuration):
        if service not in services:
            yield service


# -- versions -------------------------------------------------------------------------------------


def _control_plane_resource(row: inventory.ControlPlaneRow) -> Resource:
    kind = _SOURCE_KINDS.get(row.source, row.source)
    namespace = "" if row.source == inventory.WEBHOOK else row.namespace
    return Resource(kind, namespace, row.name)


def upgrade_jumps(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """Control planes the target is too far ahead of (revision-based: 2 minors, in-place: 1)."""
    if context.target is None:
        return
    limit = (
        versions.MAX_IN_PLACE_UPGRADE_MINORS
        if context.in_place
        else versions.MAX_REVISION_UPGRADE_MINORS
    )
    mode = "an in-place" if context.in_place else "a revision-based"
    for row in snapshot.control_planes:
        current = snapshot.versions_by_revision.get(row.revision)
        if current is None or not context.covers_any([row.namespace, *row.namespaces]):
            continue
        jump = context.target.minors_after(current)
        if jump is not None and jump > limit:
            message = (
                f"revision {row.revision} runs {current}; {context.target} is {jump} minors "
                f"ahead, {mode} upgrade may jump {limit}"
            )
            yield finding("MC0206", _control_plane_resource(row), message)


@dataclass(frozen=True)
class _Skew:
    namespace: str
    revision: str
    proxy: Version
    control_plane: Version
    override: bool


def proxy_skew(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """Proxies newer than their control plane (MC0205), or more than one minor behind (MC0207)."""
    groups: dict[_Skew, list[str]] = defaultdict(list)
    for pod in snapshot.mesh.pods:
        skew = _skew(pod, snapshot.versions_by_revision)
        if skew is not None and context.covers(skew.namespace):
            groups[skew].append(_name(pod))
    for skew, pods in sorted(groups.items(), key=lambda kv: _skew_key(kv[0])):
        yield _skew_finding(skew, pods)


def _skew_key(skew: _Skew) -> tuple[str, str, Version, bool]:
    return (skew.namespace, skew.revision, skew.proxy, skew.override)


def _skew(pod: Object, control_planes: Mapping[str, Version]) -> _Skew | None:
    proxy = proxies.proxy_from_pod(pod)
    if proxy is None or not proxy.live or proxy.version is None or proxy.revision is None:
        return None
    control_plane = control_planes.get(proxy.revision)
    if control_plane is None or versions.proxy_skew_ok(control_plane, proxy.version):
        return None
    if control_plane.minors_after(proxy.version) is None:
        return None
    override = PROXY_IMAGE in (_meta(pod).get("annotations") or {})
    return _Skew(
        proxy.namespace,
        proxy.revision,
        proxy.version.minor_line,
        control_plane.minor_line,
        override,
    )


def _skew_finding(skew: _Skew, pods: Sequence[str]) -> Finding:
    resource = _namespace_resource(skew.namespace)
    head = (
        f"{len(pods)} pod(s) ({_examples(pods)}) run proxy {_minor(skew.proxy)} under "
        f"revision {skew.revision} ({_minor(skew.control_plane)})"
    )
    if skew.proxy > skew.control_plane:
        why = f"a {PROXY_IMAGE} override" if skew.override else "a control plane downgraded"
        return finding("MC0205", resource, f"{head}: proxy newer than istiod ({why})")
    return finding("MC0207", resource, f"{head}: more than one minor behind")


def _minor(version: Version) -> str:
    return f"{version.major}.{version.minor}"


# -- workloads ------------------------------------------------------------------------------------


def pods_need_restart(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """IST0158: live pods that do not run the revision their namespace selects."""
    for row in inventory.namespaces(snapshot.mesh, context.scope):
        if row.needs_restart:
            message = (
                f"{row.needs_restart} of {row.live_pods} live pod(s) do not run revision "
                f"{row.revision}, which the namespace selects"
            )
            yield finding("MC0208", _namespace_resource(row.namespace), message)


def bare_pods(snapshot: ValidationSnapshot, context: Context) -> Iterator[Finding]:
    """Meshed live pods without a controller: a migration cannot restart them."""
    selected = inventory.selections(snapshot.mesh)
    for pod in snapshot.mesh.pods:
        meta = _meta(pod)
        namespace = str(meta.get("namespace", ""))
        if not context.covers(namespace) or meta.get("ownerReferences"):
            continue
        if (pod.get("status") or {}).get("phase") in proxies.FINISHED_PHASES:
            continue
        selection = selected.get(namespace)
        meshed = proxies.proxy_from_pod(pod) is not None
        if meshed or (selection is not None and selection.serving is not None):
            message = "bare pod (no controller): a migration cannot restart it"
            yield finding("MC0209", Resource("Pod", namespace, _name(pod)), message)


ANALYZERS: Final[tuple[Analyzer, ...]] = (
    multiple_injection_labels,
    webhook_overlaps,
    missing_revisions,
    dangling_webhooks,
    upgrade_jumps,
    proxy_skew,
    pods_need_restart,
    bare_pods,
)
