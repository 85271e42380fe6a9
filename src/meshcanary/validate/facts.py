"""Version facts the config analyzers apply, as data, each citing its source.

Sources are the keys of `shared/reference/istio-upgrade-notes.md` (`UN-1.x` upgrade notes,
`CN-1.x` change notes, `RN@tag:file` release notes, `API` istio/api protos, `MSG` analyzer
messages). A new Istio release means new rows here, not new code.

Field facts say where a field lives (`paths`, dotted, `[*]` for every list item) and when it
matters (`when`: sub-path -> a value, a tuple of values, `PRESENT` or `ABSENT`). `effect` decides
when a fact applies across an upgrade from `current` to `target`:

- REMOVED / DEPRECATED: whenever the target is at or after `since` (the config will not work, or
  is on its way out, on the target);
- DEFAULT_CHANGED: only when the upgrade crosses `since` (current < since <= target), since a
  mesh already past it already runs with the new default.

API versions the target does not serve are not repeated here: `controlplane.istio_crds` holds
that table for the CRD installer and the analyzers alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from meshcanary.mesh.versions import Version


class Presence(enum.Enum):
    """`when` conditions that test existence rather than a value."""

    PRESENT = "present"
    ABSENT = "absent"


PRESENT: Final = Presence.PRESENT
ABSENT: Final = Presence.ABSENT

Condition = Presence | str | int | bool | tuple[str, ...]


class Effect(enum.StrEnum):
    REMOVED = "removed"
    DEPRECATED = "deprecated"
    DEFAULT_CHANGED = "default-changed"


@dataclass(frozen=True)
class FieldFact:
    """A field (or value) whose meaning changes at Istio `since`."""

    kind: str
    paths: tuple[str, ...]
    when: Mapping[str, Condition] = field(hash=False)
    since: Version
    effect: Effect
    message: str
    fix: str
    source: str

    def applies(self, current: Version | None, target: Version) -> bool:
        """Whether an upgrade from `current` (None: unknown) to `target` is affected."""
        if target.minor_line < self.since:
            return False
        if self.effect is Effect.DEFAULT_CHANGED:
            return current is not None and current.minor_line < self.since
        return True


@dataclass(frozen=True)
class FilterRename:
    """An Envoy filter name the target no longer matches; `new` None: the filter is gone."""

    old: str
    new: str | None
    since: Version
    source: str


V = Version
_DR_TLS_PATHS: Final = (
    "spec.trafficPolicy.tls",
    "spec.trafficPolicy.portLevelSettings[*].tls",
    "spec.subsets[*].trafficPolicy.tls",
)
_DR_LB_PATHS: Final = (
    "spec.trafficPolicy.loadBalancer",
    "spec.trafficPolicy.portLevelSettings[*].loadBalancer",
    "spec.subsets[*].trafficPolicy.loadBalancer",
)

FIELD_FACTS: Final[tuple[FieldFact, ...]] = (
    FieldFact(
        "Gateway",
        ("spec.servers[*].tls",),
        {"mode": "ISTIO_MUTUAL", "credentialName": PRESENT},
        V(1, 13),
        Effect.REMOVED,
        "tls.mode ISTIO_MUTUAL with credentialName is rejected",
        "Use mode MUTUAL with credentialName, or ISTIO_MUTUAL without it.",
        "CN-1.13",
    ),
    FieldFact(
        "DestinationRule",
        _DR_LB_PATHS,
        {"simple": "LEAST_CONN"},
        V(1, 14),
        Effect.DEPRECATED,
        "loadBalancer.simple LEAST_CONN is deprecated",
        "Use LEAST_REQUEST.",
        "API 1.13.0->1.14.0",
    ),
    FieldFact(
        "DestinationRule",
        ("spec",),
        {"trafficPolicy.loadBalancer": ABSENT},
        V(1, 14),
        Effect.DEFAULT_CHANGED,
        "no loadBalancer set: the default changes from ROUND_ROBIN to LEAST_REQUEST",
        "Set trafficPolicy.loadBalancer.simple: ROUND_ROBIN to keep the old behaviour.",
        "CN-1.14",
    ),
    FieldFact(
        "DestinationRule",
        tuple(p + ".consistentHash" for p in _DR_LB_PATHS),
        {"minimumRingSize": PRESENT},
        V(1, 16),
        Effect.DEPRECATED,
        "consistentHash.minimumRingSize is deprecated",
        "Use consistentHash.ringHash.minimumRingSize.",
        "API 1.16",
    ),
    FieldFact(
        "Gateway",
        ("spec.servers[*].port",),
        {"targetPort": PRESENT},
        V(1, 17),
        Effect.DEPRECATED,
        "port.targetPort is deprecated",
        "Remove targetPort; the gateway's Service maps ports.",
        "API 1.17",
    ),
    FieldFact(
        "Sidecar",
        ("spec.ingress[*].port", "spec.egress[*].port"),
        {"targetPort": PRESENT},
        V(1, 17),
        Effect.DEPRECATED,
        "port.targetPort is deprecated",
        "Remove targetPort.",
        "API 1.17",
    ),
    FieldFact(
        "VirtualService",
        ("spec.http[*].fault.delay", "spec.http[*].fault.abort"),
        {"percent": PRESENT},
        V(1, 13),
        Effect.DEPRECATED,
        "fault percent is deprecated",
        "Use percentage.value.",
        "MSG IST0002",
    ),
    FieldFact(
        "Sidecar",
        ("spec.outboundTrafficPolicy",),
        {"egressProxy": PRESENT},
        V(1, 13),
        Effect.DEPRECATED,
        "outboundTrafficPolicy.egressProxy is ignored",
        "Route egress traffic with a VirtualService and an egress gateway.",
        "MSG IST0002",
    ),
    FieldFact(
        "EnvoyFilter",
        ("spec.configPatches[*]",),
        {"applyTo": "BOOTSTRAP"},
        V(1, 21),
        Effect.DEPRECATED,
        "applyTo BOOTSTRAP is deprecated",
        "Use ProxyConfig or mesh config for bootstrap settings.",
        "API 1.21; RN@1.21.0:bds-removal.yaml",
    ),
    FieldFact(
        "DestinationRule",
        _DR_TLS_PATHS,
        {"mode": ("SIMPLE", "MUTUAL"), "sni": ABSENT},
        V(1, 21),
        Effect.DEFAULT_CHANGED,
        "TLS origination without sni: auto SNI now sends the Host as SNI (ENABLE_AUTO_SNI)",
        "Set tls.sni explicitly.",
        "UN-1.21",
    ),
    FieldFact(
        "DestinationRule",
        _DR_TLS_PATHS,
        {
            "mode": ("SIMPLE", "MUTUAL"),
            "caCertificates": ABSENT,
            "credentialName": ABSENT,
            "insecureSkipVerify": ABSENT,
        },
        V(1, 21),
        Effect.DEFAULT_CHANGED,
        "TLS without caCertificates/credentialName: the server certificate is now verified "
        "against the OS CAs (VERIFY_CERTIFICATE_AT_CLIENT)",
        "Set caCertificates or credentialName, or insecureSkipVerify: true to opt out.",
        "UN-1.21",
    ),
    FieldFact(
        "Telemetry",
        ("spec.metrics[*]",),
        {"reportingInterval": PRESENT},
        V(1, 22),
        Effect.DEPRECATED,
        "metrics.reportingInterval was not promoted to telemetry.istio.io/v1",
        "Drop it before moving the resource to v1.",
        "blog/2024/v1-apis",
    ),
    FieldFact(
        "Telemetry",
        ("spec.accessLogging[*]",),
        {"filter": PRESENT},
        V(1, 22),
        Effect.DEPRECATED,
        "accessLogging.filter was not promoted to telemetry.istio.io/v1",
        "Drop it before moving the resource to v1.",
        "blog/2024/v1-apis",
    ),
    FieldFact(
        "Telemetry",
        ("spec.tracing[*]",),
        {"useRequestIdForTraceSampling": PRESENT},
        V(1, 22),
        Effect.DEPRECATED,
        "tracing.useRequestIdForTraceSampling was not promoted to telemetry.istio.io/v1",
        "Drop it before moving the resource to v1.",
        "blog/2024/v1-apis",
    ),
    FieldFact(
        "ServiceEntry",
        ("spec",),
        {"resolution": "NONE", "ports[*].targetPort": PRESENT},
        V(1, 22),
        Effect.DEFAULT_CHANGED,
        "resolution NONE now honours targetPort",
        "Check the targetPort values, or remove them.",
        "UN-1.22",
    ),
    FieldFact(
        "ServiceEntry",
        ("spec",),
        {"addresses": ABSENT, "resolution": ("DNS", "DNS_ROUND_ROBIN")},
        V(1, 25),
        Effect.DEFAULT_CHANGED,
        "no addresses: an address is now auto-allocated (PILOT_ENABLE_IP_AUTOALLOCATE)",
        "Set addresses explicitly if clients depend on the old behaviour.",
        "RN@1.25.0:ip-allocation-v2-default.yaml",
    ),
    FieldFact(
        "VirtualService",
        ("spec.http[*]",),
        {"mirror": PRESENT},
        V(1, 28),
        Effect.DEFAULT_CHANGED,
        "mirrored requests no longer get the -shadow Host suffix (DISABLE_SHADOW_HOST_SUFFIX)",
        "Update receivers that rely on the -shadow suffix.",
        "FEAT 1.28; route.go",
    ),
    FieldFact(
        "DestinationRule",
        ("spec.trafficPolicy",),
        {"retryBudget": PRESENT},
        V(1, 30),
        Effect.DEFAULT_CHANGED,
        "the retryBudget default percent is corrected from 0.2% to 20%",
        "Set retryBudget.percent explicitly.",
        "RN@1.30.0:retry-budget-percent.yaml",
    ),
)
"""Fields and values whose meaning changes between releases."""

_DEPRECATED_GO: Final = "UN-1.19; pkg/config/xds/deprecated.go@1.18.0"
_V119: Final = V(1, 19)
_V120: Final = V(1, 20)

FILTER_RENAMES: Final[tuple[FilterRename, ...]] = (
    FilterRename(
        "envoy.http_connection_manager",
        "envoy.filters.network.http_connection_manager",
        _V119,
        _DEPRECATED_GO,
    ),
    FilterRename("envoy.tcp_proxy", "envoy.filters.network.tcp_proxy", _V119, _DEPRECATED_GO),
    FilterRename("envoy.router", "envoy.filters.http.router", _V119, _DEPRECATED_GO),
    FilterRename("envoy.cors", "envoy.filters.http.cors", _V119, _DEPRECATED_GO),
    FilterRename("envoy.fault", "envoy.filters.http.fault", _V119, _DEPRECATED_GO),
    FilterRename("envoy.lua", "envoy.filters.http.lua", _V119, _DEPRECATED_GO),
    FilterRename("envoy.ext_authz", "envoy.filters.http.ext_authz", _V119, _DEPRECATED_GO),
    FilterRename("envoy.rate_limit", "envoy.filters.http.ratelimit", _V119, _DEPRECATED_GO),
    FilterRename("envoy.ratelimit", "envoy.filters.network.ratelimit", _V119, _DEPRECATED_GO),
    FilterRename("envoy.buffer", "envoy.filters.http.buffer", _V119, _DEPRECATED_GO),
    FilterRename("envoy.csrf", "envoy.filters.http.csrf", _V119, _DEPRECATED_GO),
    FilterRename("envoy.gzip", "envoy.filters.http.gzip", _V119, _DEPRECATED_GO),
    FilterRename("envoy.health_check", "envoy.filters.http.health_check", _V119, _DEPRECATED_GO),
    FilterRename(
        "envoy.listener.tls_inspector",
        "envoy.filters.listener.tls_inspector",
        _V119,
        _DEPRECATED_GO,
    ),
    FilterRename(
        "envoy.listener.original_dst", "envoy.filters.listener.original_dst", _V119, _DEPRECATED_GO
    ),
    FilterRename(
        "envoy.listener.http_inspector",
        "envoy.filters.listener.http_inspector",
        _V119,
        _DEPRECATED_GO,
    ),
    FilterRename(
        "envoy.listener.proxy_protocol",
        "envoy.filters.listener.proxy_protocol",
        _V119,
        _DEPRECATED_GO,
    ),
    FilterRename("envoy.mongo_proxy", "envoy.filters.network.mongo_proxy", _V119, _DEPRECATED_GO),
    FilterRename("envoy.redis_proxy", "envoy.filters.network.redis_proxy", _V119, _DEPRECATED_GO),
    FilterRename("forward_downstream_sni", None, _V120, "RN@1.20.0:envoy-filter-removal.yaml"),
    FilterRename("tcp_cluster_rewrite", None, _V120, "RN@1.20.0:envoy-filter-removal.yaml"),
    FilterRename("sni_verifier", None, _V120, "RN@1.20.0:envoy-filter-removal.yaml"),
)
"""Envoy filter names EnvoyFilters may no longer use (the full map is in deprecated.go)."""

XDS_V2_SINCE: Final = _V119
XDS_V2_SOURCE: Final = "RN@1.19.0:drop-xds-v2.yaml"
XDS_V2_MARKERS: Final = (".v2.", ".v2alpha.", "envoy.api.v2", "envoy.config.filter.")
"""Substrings of xDS v2 type URLs (`envoy.config.filter.*` is the v2 filter package)."""
UNTYPED_CONFIG_SINCE: Final = _V119
UNTYPED_CONFIG_SOURCE: Final = "UN-1.19"

RELATIVE_OPERATIONS: Final = frozenset({"INSERT_BEFORE", "INSERT_AFTER", "REPLACE"})
"""Patch operations whose result depends on other filters being there (IST0155; MSG)."""


def renames_by_name() -> dict[str, FilterRename]:
    """FILTER_RENAMES keyed by the old name."""
    return {rename.old: rename for rename in FILTER_RENAMES}


def facts_for(kind: str) -> list[FieldFact]:
    """The field facts about one kind."""
    return [fact for fact in FIELD_FACTS if fact.kind == kind]


def lookup(obj: Any, path: str) -> list[Any]:
    """Every value at a dotted `path` (`[*]` expands lists, a missing step yields nothing)."""
    found = [obj]
    for step in path.split("."):
        expand = step.endswith("[*]")
        key = step.removesuffix("[*]")
        nxt: list[Any] = []
        for value in found:
            child = value.get(key) if isinstance(value, Mapping) else None
            if child is None:
                continue
            if expand:
                nxt.extend(child if isinstance(child, list) else [])
            else:
                nxt.append(child)
        found = nxt
    return found


def holds(value: Any, when: Mapping[str, Condition]) -> bool:
    """Whether every condition of `when` holds at `value`."""
    return all(_condition(lookup(value, path), wanted) for path, wanted in when.items())


def _condition(found: list[Any], wanted: Condition) -> bool:
    if wanted is ABSENT:
        return not found
    if wanted is PRESENT:
        return bool(found)
    if isinstance(wanted, tuple):
        return any(item in wanted for item in found)
    return wanted in found
