"""Which control plane injects a pod: the API server's decision, and Istio's label precedence.

Injection is not decided by istiod but by the API server, which calls every mutating webhook whose
`namespaceSelector` matches the pod's namespace and whose `objectSelector` matches the pod. Istio
encodes its precedence rules in those selectors (upstream chart and istio-operator v2 alike):

- `rev.namespace.sidecar-injector.istio.io`: namespace `istio.io/rev In [<rev>]` and no
  `istio-injection` label; pod not `sidecar.istio.io/inject=false`.
- `rev.object.sidecar-injector.istio.io`: namespace with neither label; pod `istio.io/rev=<rev>`.
- default revision only: `namespace.sidecar-injector.istio.io` (namespace
  `istio-injection=enabled`) and `object.sidecar-injector.istio.io` (pod
  `sidecar.istio.io/inject=true` without `istio.io/rev`, namespace with neither label).

Hence the traps users hit: `istio-injection=enabled` beats `istio.io/rev` (and with no default
revision installed, the namespace gets no sidecar at all, istio/istio #36114); a namespace label
beats a pod label; `istio-injection=disabled` plus a pod `istio.io/rev` injects nothing; two
webhooks matching one pod inject twice (analyzer IST0139); both labels on a namespace are flagged
(IST0123).

`injecting_webhooks` replays the API server's decision over the webhooks found in the cluster —
the truth. `namespace_selection` and `pod_selection` give the label-level view Istio documents,
used when no webhook exists yet (planning a migration, or a label naming a missing revision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from meshcanary.mesh import revisions, selectors

INJECTION_LABEL: Final = "istio-injection"
"""The legacy namespace label: `enabled` selects the default revision, `disabled` opts out."""
INJECT_LABEL: Final = "sidecar.istio.io/inject"
"""The pod label opting in (`true`, default revision) or out (`false`)."""
WEBHOOK_SUFFIX: Final = "sidecar-injector.istio.io"
"""Every Istio injection webhook's name ends with this."""
ENABLED: Final = "enabled"
DISABLED: Final = "disabled"
IST0123: Final = "IST0123"
"""Analyzer code: a namespace carries both `istio-injection` and `istio.io/rev`."""
IST0139: Final = "IST0139"
"""Analyzer code: more than one injection webhook matches a pod (double injection)."""

Labels = Mapping[str, str]


@dataclass(frozen=True)
class InjectionWebhook:
    """One Istio injection webhook of a MutatingWebhookConfiguration.

    `revision` is the revision that injects (the injected pod's `istio.io/rev` annotation);
    `tag` names the revision tag when the configuration belongs to one (`istio.io/tag`), in
    which case the selectors match the tag's name rather than the revision's.
    """

    configuration: str
    name: str
    revision: str
    namespace_selector: Mapping[str, Any] | None = field(default=None, hash=False)
    object_selector: Mapping[str, Any] | None = field(default=None, hash=False)
    service: str | None = None
    """`<namespace>/<name>` of the istiod Service called, None for a `url` webhook."""
    tag: str | None = None

    def matches(self, namespace_labels: Labels | None, pod_labels: Labels | None) -> bool:
        """Whether the API server calls this webhook for such a pod in such a namespace."""
        return selectors.matches(self.namespace_selector, namespace_labels) and selectors.matches(
            self.object_selector, pod_labels
        )


def is_injection_webhook(name: str) -> bool:
    """Whether a webhook name is one of Istio's injection webhooks."""
    return name == WEBHOOK_SUFFIX or name.endswith("." + WEBHOOK_SUFFIX)


def webhooks_from_configuration(mwc: Mapping[str, Any]) -> list[InjectionWebhook]:
    """The Istio injection webhooks in one MutatingWebhookConfiguration (API JSON).

    Other webhooks are skipped. The revision comes from the configuration's `istio.io/rev`
    label when it is a tag's (labelled `istio.io/tag`); otherwise from the webhook's
    `istio.io/rev In [...]` selector, then the configuration's `istio.io/rev` label, then
    `default` (the upstream default revision's `namespace.`/`object.` webhooks carry neither).
    """
    metadata = mwc.get("metadata") or {}
    config_labels: Labels = metadata.get("labels") or {}
    name = str(metadata.get("name", ""))
    tag = config_labels.get(revisions.TAG_LABEL)
    found = []
    for webhook in mwc.get("webhooks") or []:
        if is_injection_webhook(str(webhook.get("name", ""))):
            found.append(_webhook(name, webhook, config_labels, tag))
    return found


def webhooks_from_configurations(mwcs: Iterable[Mapping[str, Any]]) -> list[InjectionWebhook]:
    """All Istio injection webhooks of many MutatingWebhookConfigurations."""
    return [webhook for mwc in mwcs for webhook in webhooks_from_configuration(mwc)]


def _webhook(
    configuration: str, webhook: Mapping[str, Any], config_labels: Labels, tag: str | None
) -> InjectionWebhook:
    namespace_selector = webhook.get("namespaceSelector")
    object_selector = webhook.get("objectSelector")
    revision = (
        (config_labels.get(revisions.REV_LABEL) if tag else None)
        or _selected_revision(namespace_selector)
        or _selected_revision(object_selector)
        or config_labels.get(revisions.REV_LABEL)
        or revisions.DEFAULT_REVISION
    )
    return InjectionWebhook(
        configuration=configuration,
        name=str(webhook.get("name")),
        revision=revision,
        namespace_selector=namespace_selector,
        object_selector=object_selector,
        service=_service(webhook.get("clientConfig") or {}),
        tag=tag,
    )


def _selected_revision(selector: Mapping[str, Any] | None) -> str | None:
    """The value an `istio.io/rev` In / matchLabels requirement asks for, if any."""
    for requirement in selectors.requirements(selector):
        if requirement.key == revisions.REV_LABEL and requirement.operator in (
            selectors.IN,
            selectors.EQUALS,
        ):
            return requirement.values[0]
    return None


def _service(client_config: Mapping[str, Any]) -> str | None:
    service = client_config.get("service")
    if not service:
        return None
    return f"{service.get('namespace', '')}/{service.get('name', '')}"


def injecting_webhooks(
    webhooks: Iterable[InjectionWebhook], namespace_labels: Labels | None, pod_labels: Labels | None
) -> list[InjectionWebhook]:
    """The webhooks the API server would call for a new pod: 0 none, 1 injected, >1 IST0139.

    This is the API server's view; istiod itself still declines pods labelled or annotated
    `sidecar.istio.io/inject=false` where a webhook's selector lets them through (istio-operator
    v2's `rev.object` webhook has no such clause).
    """
    return [webhook for webhook in webhooks if webhook.matches(namespace_labels, pod_labels)]


def injecting_revisions(
    webhooks: Iterable[InjectionWebhook], namespace_labels: Labels | None, pod_labels: Labels | None
) -> list[str]:
    """The distinct revisions whose webhooks fire for such a pod, sorted."""
    return sorted({w.revision for w in injecting_webhooks(webhooks, namespace_labels, pod_labels)})


# -- the label-level view -------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceSelection:
    """The revision a namespace's labels select for its pods, and why.

    `revision` None means the namespace selects nothing (pods may still opt in by label when the
    namespace carries neither label). `conflict` flags both labels at once (IST0123).
    """

    revision: str | None
    reason: str
    conflict: bool = False


@dataclass(frozen=True)
class PodSelection:
    """The revision that should inject a pod, from its namespace's and its own labels."""

    revision: str | None
    reason: str
    namespace: NamespaceSelection


def namespace_selection(namespace_labels: Labels | None) -> NamespaceSelection:
    """Istio's precedence over a namespace's labels.

    `istio-injection=enabled` selects the default revision and beats `istio.io/rev`;
    `istio-injection=disabled` (or any other value) selects nothing; otherwise `istio.io/rev`
    selects its revision. Both labels together are flagged as a conflict (IST0123).
    """
    labels = namespace_labels or {}
    injection = labels.get(INJECTION_LABEL)
    rev = labels.get(revisions.REV_LABEL)
    if injection is None:
        if rev is None:
            return NamespaceSelection(None, "no injection label on the namespace")
        return NamespaceSelection(rev, f"{revisions.REV_LABEL}={rev}")
    return _legacy_selection(injection, rev)


def _legacy_selection(injection: str, rev: str | None) -> NamespaceSelection:
    ignored = f"; {revisions.REV_LABEL}={rev} is ignored ({IST0123})" if rev is not None else ""
    conflict = rev is not None
    if injection == ENABLED:
        reason = f"{INJECTION_LABEL}=enabled selects the default revision{ignored}"
        return NamespaceSelection(revisions.DEFAULT_REVISION, reason, conflict)
    if injection == DISABLED:
        return NamespaceSelection(None, f"{INJECTION_LABEL}=disabled{ignored}", conflict)
    reason = f"{INJECTION_LABEL}={injection} is neither enabled nor disabled: no webhook matches"
    return NamespaceSelection(None, reason + ignored, conflict)


def pod_selection(namespace_labels: Labels | None, pod_labels: Labels | None) -> PodSelection:
    """Istio's precedence over a namespace's and a pod's labels together.

    A namespace label beats a pod label; `sidecar.istio.io/inject=false` on the pod opts out
    everywhere; in a namespace with neither label a pod's `istio.io/rev` selects that revision
    and `sidecar.istio.io/inject=true` selects the default revision.
    """
    selected = namespace_selection(namespace_labels)
    labels = pod_labels or {}
    if labels.get(INJECT_LABEL) == "false":
        return PodSelection(None, f"pod has {INJECT_LABEL}=false", selected)
    if _namespace_labelled(namespace_labels):
        return PodSelection(selected.revision, f"namespace: {selected.reason}", selected)
    return _pod_label_selection(labels, selected)


def _namespace_labelled(namespace_labels: Labels | None) -> bool:
    labels = namespace_labels or {}
    return INJECTION_LABEL in labels or revisions.REV_LABEL in labels


def _pod_label_selection(labels: Labels, selected: NamespaceSelection) -> PodSelection:
    rev = labels.get(revisions.REV_LABEL)
    if rev is not None:
        return PodSelection(rev, f"pod label {revisions.REV_LABEL}={rev}", selected)
    if labels.get(INJECT_LABEL) == "true":
        reason = f"pod label {INJECT_LABEL}=true selects the default revision"
        return PodSelection(revisions.DEFAULT_REVISION, reason, selected)
    return PodSelection(None, "neither the namespace nor the pod asks for injection", selected)
