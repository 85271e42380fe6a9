"""Findings and the registry of their stable codes.

A finding is typed data (severity, code, resource, message, fix) so the CLI, the upgrade
pre-flight and the dashboard render and count the same thing. Codes never change meaning once
published: users grep for them, silence them and search the docs for them, so each has its cause,
fix and upstream `istioctl analyze` analogue here, and `docs/validation.md` is generated from this
table (`scripts/gen_validation_docs.py`). Numbering: MC00xx about the run itself, MC01xx
configuration against the target version, MC02xx mesh state, MC03xx resource schemas.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final


class Severity(enum.StrEnum):
    """Error blocks an automated upgrade; Warning needs a look; Info is for the record."""

    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"

    @property
    def rank(self) -> int:
        """Sort order: errors first."""
        return _RANKS[self]


_RANKS: Final = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, order=True)
class Resource:
    """What a finding is about; `namespace` is empty for cluster-scoped objects."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


@dataclass(frozen=True)
class Finding:
    """One problem found, with what to do about it."""

    severity: Severity
    code: str
    resource: Resource
    message: str
    fix: str

    def sort_key(self) -> tuple[int, str, Resource, str]:
        """Deterministic order: severity, code, resource, message."""
        return (self.severity.rank, self.code, self.resource, self.message)


@dataclass(frozen=True)
class Code:
    """A documented finding code: default severity, cause, generic fix, upstream analogue."""

    code: str
    title: str
    severity: Severity
    cause: str
    fix: str
    upstream: str = ""


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_ALL: Final[tuple[Code, ...]] = (
    Code(
        "MC0001",
        "UnknownTargetVersion",
        _W,
        "The target version is outside the Istio minors meshcanary has upgrade facts for, so "
        "version-specific checks could not all run.",
        "Pick a target between 1.13 and 1.30, or review the upstream upgrade notes by hand.",
    ),
    Code(
        "MC0101",
        "RemovedField",
        _E,
        "A field or value the target version removed or rejects is set.",
        "Remove the field or use its replacement named in the message before upgrading.",
        "IST0002",
    ),
    Code(
        "MC0102",
        "DeprecatedField",
        _W,
        "A field or value deprecated in the target version is set; it still works but will go.",
        "Move to the replacement named in the message.",
        "IST0002",
    ),
    Code(
        "MC0103",
        "ApiVersionNotServed",
        _E,
        "The resource was written with an API version the target version's CRDs do not serve "
        "(for example networking.istio.io/v1 before 1.22); re-applying it will fail.",
        "Write the resource with an API version the target serves (v1beta1 works from 1.13).",
    ),
    Code(
        "MC0104",
        "ChangedDefault",
        _W,
        "The resource relies on a default that changes between the current and target versions.",
        "Set the field explicitly, or pin the old defaults with `compatibilityVersion` (1.21+).",
        "IST0169",
    ),
    Code(
        "MC0105",
        "EnvoyFilterRelativePatchWithProxyVersion",
        _W,
        "An EnvoyFilter without priority uses a relative patch (INSERT_BEFORE, INSERT_AFTER, "
        "REPLACE) and a proxyVersion match: during the upgrade it may apply to one proxy version "
        "and not the other, in a different order.",
        "Set spec.priority, or use INSERT_FIRST / ADD, or drop the proxyVersion match.",
        "IST0155",
    ),
    Code(
        "MC0106",
        "EnvoyFilterProxyVersionMissesTarget",
        _E,
        "An EnvoyFilter's proxyVersion regex matches the current proxies but not the target "
        "version: the patch silently stops applying once proxies are migrated.",
        "Widen the regex to match the target version (or add a filter for it) before migrating.",
    ),
    Code(
        "MC0107",
        "EnvoyFilterRenamedFilter",
        _E,
        "An EnvoyFilter matches or inserts a filter by a name the target version no longer knows "
        "(deprecated names are not matched from 1.19; some Istio filters were removed in 1.20).",
        "Use the canonical name given in the message (e.g. "
        "envoy.filters.network.http_connection_manager).",
        "IST0133",
    ),
    Code(
        "MC0108",
        "EnvoyFilterXdsV2",
        _E,
        "An EnvoyFilter uses an xDS v2 type URL; from 1.19 these are rejected.",
        "Use the v3 type URL (type.googleapis.com/envoy.extensions....v3....).",
        "IST0133",
    ),
    Code(
        "MC0109",
        "EnvoyFilterUntypedConfig",
        _E,
        "An EnvoyFilter configures an extension with `config` (by name) instead of "
        "`typed_config`; from 1.19 lookup by name is gone.",
        "Replace `config` with `typed_config` carrying an `@type`.",
        "IST0133",
    ),
    Code(
        "MC0201",
        "NamespaceMultipleInjectionLabels",
        _W,
        "The namespace carries both `istio-injection` and `istio.io/rev`; `istio-injection` wins, "
        "so relabelling `istio.io/rev` for a migration changes nothing.",
        "Remove the `istio-injection` label: `kubectl label ns <ns> istio-injection-`.",
        "IST0123",
    ),
    Code(
        "MC0202",
        "InjectionWebhooksOverlap",
        _E,
        "More than one injection webhook matches pods of the namespace: pods get injected twice "
        "(or by the wrong revision).",
        "Fix the webhooks' selectors (e.g. a revision tag and the default webhook both match), or "
        "delete the stale MutatingWebhookConfiguration.",
        "IST0139",
    ),
    Code(
        "MC0203",
        "NamespaceRevisionMissing",
        _E,
        "The namespace's labels select a revision no injection webhook serves: new pods there get "
        "no sidecar.",
        "Label the namespace with an installed revision (`meshcanary cp list`), or install it.",
    ),
    Code(
        "MC0204",
        "WebhookServiceMissing",
        _E,
        "An Istio validating or injection webhook calls an istiod Service that does not exist "
        "(its revision was uninstalled); with failurePolicy Fail every matching request fails.",
        "Delete the stale webhook configuration, or point it at a running istiod.",
        "IST0139",
    ),
    Code(
        "MC0205",
        "ProxyNewerThanControlPlane",
        _E,
        "A proxy runs a newer minor than the control plane it is attached to (a "
        "`sidecar.istio.io/proxyImage` override, or a control plane downgraded in place); Istio "
        "never supports proxies ahead of istiod.",
        "Remove the proxyImage override or move the namespace to a control plane at least as new, "
        "then restart the pods.",
    ),
    Code(
        "MC0206",
        "UpgradeJumpTooLarge",
        _E,
        "The target is more minors ahead of a control plane than one upgrade may jump "
        "(revision-based: 2, in-place: 1).",
        "Upgrade through an intermediate minor first.",
    ),
    Code(
        "MC0207",
        "ProxySkewExceeded",
        _E,
        "A proxy is more than one minor behind its control plane, outside Istio's supported skew.",
        "Restart the pods so they get the control plane's proxy.",
    ),
    Code(
        "MC0208",
        "PodsNeedRestart",
        _W,
        "Pods run a different revision than their namespace now selects (the namespace was "
        "relabelled but the pods were not restarted).",
        "Restart the namespace's workloads (`meshcanary migrate` does it), then verify.",
        "IST0158",
    ),
    Code(
        "MC0209",
        "BarePod",
        _W,
        "A meshed pod has no controller, so a migration cannot restart it onto the new revision.",
        "Recreate the pod yourself after relabelling, or run it under a Deployment.",
    ),
    Code(
        "MC0301",
        "SchemaWrongType",
        _E,
        "A field has the wrong type (a string where a list is expected, ...); istiod rejects or "
        "ignores the resource.",
        "Fix the field's type as the message says.",
        "IST0106",
    ),
    Code(
        "MC0302",
        "SchemaMissingRequired",
        _E,
        "A required field is missing.",
        "Add the field.",
        "IST0106",
    ),
    Code(
        "MC0303",
        "SchemaInvalidEnum",
        _E,
        "A field has a value outside its allowed set.",
        "Use one of the allowed values listed in the message.",
        "IST0106",
    ),
    Code(
        "MC0304",
        "SchemaUnknownField",
        _W,
        "A field Istio does not define (often a typo or a field from another version) is set; "
        "it is ignored.",
        "Remove or correct the field.",
    ),
)

CODES: Final[dict[str, Code]] = {code.code: code for code in _ALL}
"""Every code, by code, in numeric order."""


def finding(
    code: str,
    resource: Resource,
    message: str,
    fix: str | None = None,
    severity: Severity | None = None,
) -> Finding:
    """A finding of a registered `code`, its severity and fix defaulting to the registry's."""
    registered = CODES[code]
    return Finding(
        severity=severity or registered.severity,
        code=code,
        resource=resource,
        message=message,
        fix=fix or registered.fix,
    )


def of(obj: Mapping[str, Any], default_kind: str = "") -> Resource:
    """The Resource an API object (JSON) is: kind, namespace, name."""
    meta = obj.get("metadata") or {}
    return Resource(
        str(obj.get("kind") or default_kind),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )
