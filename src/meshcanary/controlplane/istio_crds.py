"""Istio's own CRDs, shared by every revision: which API versions each Istio minor serves, as data.

Why this exists. Every istiod revision in a cluster reads the same cluster-scoped CRDs
(VirtualService, AuthorizationPolicy, Telemetry, ...). Two control planes side by side means
one set of CRDs serving two Istio versions at once, so the set must serve what the *newest*
control plane needs. It must also stay usable by the oldest. Istio has never stopped serving an
API version between 1.13 and 1.31, so the newest minor's CRDs serve a superset of what older
minors need. What changes is what gets added: `security.istio.io/v1` AuthorizationPolicy and
RequestAuthentication from 1.17, `networking.istio.io/v1`, PeerAuthentication `v1` and
`telemetry.istio.io/v1` from 1.22. The storage version also moves: networking to `v1` in 1.27,
security to `v1` in 1.28.
A config object written as `networking.istio.io/v1` fails against CRDs older than 1.22. This
is why the operator installs Istio's CRDs itself instead of leaving them to whichever `istioctl`
ran last.

The rules `decide`/`plan` apply (the reason for each is in the docs of `decide`):

- install a missing CRD for the newest control plane's version;
- upgrade an installed CRD only when the newest version *adds* something: a served API version,
  a newer storage version, a short name or a printer column;
- never downgrade. A CRD labelled for a newer Istio, or one that stores a newer version than the
  newest control plane would, is left alone. A CRD installed for 1.17 stays as it is when only a
  1.15 control plane is left;
- never drop a version. A version the installed CRD serves or has stored
  (`status.storedVersions`) but the new definition lacks is carried over, served and not
  storage. Kubernetes rejects a CRD whose `spec.versions` misses a stored version, and clients
  still use the served ones;
- never delete. Nothing here produces a deletion: CRDs outlive control planes, because deleting
  a CRD deletes every VirtualService, AuthorizationPolicy, ... in the cluster.

Schemas are permissive on purpose: `spec` and `status` preserve unknown fields. Validating Istio
config is istiod's job (its validating webhook) and the job of meshcanary's analyzers. Faithful
OpenAPI schemas for 15 kinds and 18 minors would be megabytes of generated data. Names, short
names, categories, scope, served and storage versions, the status subresource and the printer
columns follow upstream, so `kubectl get vs` prints what it prints with Istio's own CRDs.

Sources. `istio/istio` at tag `1.<m>.0`, file `manifests/charts/base/crds/crd-all.gen.yaml`
(1.13-1.23) or `manifests/charts/base/files/crd-all.gen.yaml` (1.24-1.30, and 1.31.0-rc.0,
which changes nothing here). Every x.0 tag from 1.13.0 to 1.30.0 was read; the rows below are
the tags where something changed. `shared/reference/istio-upgrade-notes.md` ("Served API
versions") says the same. (1) networking: VirtualService, DestinationRule, Gateway,
ServiceEntry, Sidecar, WorkloadEntry, WorkloadGroup.

| kinds | since | served | storage | source |
| --- | --- | --- | --- | --- |
| networking (1) | 1.13 | v1alpha3 v1beta1 | v1alpha3 | CRD@1.13.0 |
| (same) | 1.22 | v1 v1alpha3 v1beta1 | v1beta1 | CRD@1.22.0 |
| (same) | 1.27 | v1 v1alpha3 v1beta1 | v1 | CRD@1.27.0 |
| EnvoyFilter | 1.13 | v1alpha3 | v1alpha3 | CRD@1.13.0 .. 1.30.0 |
| ProxyConfig | 1.13 | v1beta1 | v1beta1 | CRD@1.13.0 .. 1.30.0 |
| AuthorizationPolicy RequestAuthentication | 1.13 | v1beta1 | v1beta1 | CRD@1.13.0 |
| (same) | 1.17 | v1 v1beta1 | v1beta1 | CRD@1.17.0 (istio/api #2553) |
| (same) | 1.28 | v1 v1beta1 | v1 | CRD@1.28.0 |
| PeerAuthentication | 1.13 | v1beta1 | v1beta1 | CRD@1.13.0 |
| (same) | 1.22 | v1 v1beta1 | v1beta1 | CRD@1.22.0 |
| (same) | 1.28 | v1 v1beta1 | v1 | CRD@1.28.0 |
| Telemetry | 1.13 | v1alpha1 | v1alpha1 | CRD@1.13.0 |
| (same) | 1.22 | v1 v1alpha1 | v1alpha1 | CRD@1.22.0 (storage still v1alpha1 at 1.31.0-rc.0) |
| WasmPlugin | 1.13 | v1alpha1 | v1alpha1 | CRD@1.13.0 .. 1.30.0 |
| TrafficExtension | 1.30 | v1alpha1 | v1alpha1 | CRD@1.30.0 (new kind; supersedes WasmPlugin) |

Other details from the same files: AuthorizationPolicy gained the short name `ap` and the
printer column `Action` in 1.22. Short names otherwise are `vs dr gw se we wg pa ra telemetry`
from 1.13. Sidecar, EnvoyFilter, ProxyConfig, WasmPlugin and
TrafficExtension have none. Every kind is namespaced and has a status subresource in every
version.

Pure: no I/O. `istio_crds_sync.ensure` reads the cluster and applies `plan`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from meshcanary.mesh import versions
from meshcanary.mesh.versions import Version

Manifest = dict[str, Any]

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "meshcanary"
VERSION_LABEL: Final = "meshcanary.io/istio-crds-version"
"""The Istio version (x.y.z) a meshcanary-installed CRD was defined for."""

NETWORKING: Final = "networking.istio.io"
SECURITY: Final = "security.istio.io"
TELEMETRY: Final = "telemetry.istio.io"
EXTENSIONS: Final = "extensions.istio.io"
GROUPS: Final = (EXTENSIONS, NETWORKING, SECURITY, TELEMETRY)

_V1_13: Final = Version(1, 13)
_V1_17: Final = Version(1, 17)
_V1_22: Final = Version(1, 22)
_V1_27: Final = Version(1, 27)
_V1_28: Final = Version(1, 28)
_V1_30: Final = Version(1, 30)


@dataclass(frozen=True)
class Served:
    """From Istio `since` on (until the next entry): the API versions served and the stored one."""

    since: Version
    versions: tuple[str, ...]
    storage: str


@dataclass(frozen=True)
class Column:
    """An `additionalPrinterColumns` entry, as upstream declares it."""

    name: str
    type: str
    json_path: str
    description: str = ""

    def manifest(self) -> dict[str, str]:
        column = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        return column


@dataclass(frozen=True)
class IstioKind:
    """One of Istio's config kinds: its names, scope and served versions through the releases."""

    kind: str
    group: str
    plural: str
    history: tuple[Served, ...]
    short_names: tuple[str, ...] = ()
    short_names_since: Version = _V1_13
    columns: tuple[Column, ...] = ()
    columns_since: Version = _V1_13
    scope: str = "Namespaced"

    @property
    def name(self) -> str:
        """The CRD's name: `<plural>.<group>`."""
        return f"{self.plural}.{self.group}"

    @property
    def categories(self) -> list[str]:
        """`kubectl get istio-io` lists every kind; `networking-istio-io` one group."""
        return ["istio-io", self.group.replace(".", "-")]

    def served(self, version: Version) -> Served | None:
        """What Istio `version` defines for this kind; None when the kind does not exist yet."""
        found = None
        for entry in self.history:
            if entry.since <= version.minor_line:
                found = entry
        return found


_AGE: Final = Column("Age", "date", ".metadata.creationTimestamp", "When the object was created.")

_NETWORKING_HISTORY: Final = (
    Served(_V1_13, ("v1alpha3", "v1beta1"), "v1alpha3"),
    Served(_V1_22, ("v1", "v1alpha3", "v1beta1"), "v1beta1"),
    Served(_V1_27, ("v1", "v1alpha3", "v1beta1"), "v1"),
)
_AUTHZ_HISTORY: Final = (
    Served(_V1_13, ("v1beta1",), "v1beta1"),
    Served(_V1_17, ("v1", "v1beta1"), "v1beta1"),
    Served(_V1_28, ("v1", "v1beta1"), "v1"),
)
_PEER_AUTHENTICATION_HISTORY: Final = (
    Served(_V1_13, ("v1beta1",), "v1beta1"),
    Served(_V1_22, ("v1", "v1beta1"), "v1beta1"),
    Served(_V1_28, ("v1", "v1beta1"), "v1"),
)
_TELEMETRY_HISTORY: Final = (
    Served(_V1_13, ("v1alpha1",), "v1alpha1"),
    Served(_V1_22, ("v1", "v1alpha1"), "v1alpha1"),
)


def _only(version: str, since: Version = _V1_13) -> tuple[Served, ...]:
    return (Served(since, (version,), version),)


KINDS: Final[tuple[IstioKind, ...]] = (
    IstioKind(
        "VirtualService",
        NETWORKING,
        "virtualservices",
        _NETWORKING_HISTORY,
        short_names=("vs",),
        columns=(
            Column(
                "Gateways",
                "string",
                ".spec.gateways",
                "The names of gateways and sidecars that should apply these routes",
            ),
            Column(
                "Hosts", "string", ".spec.hosts", "The destination hosts to which traffic is sent"
            ),
            _AGE,
        ),
    ),
    IstioKind(
        "DestinationRule",
        NETWORKING,
        "destinationrules",
        _NETWORKING_HISTORY,
        short_names=("dr",),
        columns=(
            Column("Host", "string", ".spec.host", "The name of a service from the registry"),
            _AGE,
        ),
    ),
    IstioKind("Gateway", NETWORKING, "gateways", _NETWORKING_HISTORY, short_names=("gw",)),
    IstioKind(
        "ServiceEntry",
        NETWORKING,
        "serviceentries",
        _NETWORKING_HISTORY,
        short_names=("se",),
        columns=(
            Column("Hosts", "string", ".spec.hosts", "The hosts associated with the ServiceEntry"),
            Column(
                "Location",
                "string",
                ".spec.location",
                "Whether the service is external to the mesh or part of it",
            ),
            Column(
                "Resolution",
                "string",
                ".spec.resolution",
                "Service resolution mode for the hosts (NONE, STATIC, or DNS)",
            ),
            _AGE,
        ),
    ),
    IstioKind("Sidecar", NETWORKING, "sidecars", _NETWORKING_HISTORY),
    IstioKind("EnvoyFilter", NETWORKING, "envoyfilters", _only("v1alpha3")),
    IstioKind(
        "WorkloadEntry",
        NETWORKING,
        "workloadentries",
        _NETWORKING_HISTORY,
        short_names=("we",),
        columns=(
            _AGE,
            Column("Address", "string", ".spec.address", "Address of the network endpoint"),
        ),
    ),
    IstioKind(
        "WorkloadGroup",
        NETWORKING,
        "workloadgroups",
        _NETWORKING_HISTORY,
        short_names=("wg",),
        columns=(_AGE,),
    ),
    IstioKind("ProxyConfig", NETWORKING, "proxyconfigs", _only("v1beta1")),
    IstioKind(
        "AuthorizationPolicy",
        SECURITY,
        "authorizationpolicies",
        _AUTHZ_HISTORY,
        short_names=("ap",),
        short_names_since=_V1_22,
        columns=(Column("Action", "string", ".spec.action", "The operation to take."), _AGE),
        columns_since=_V1_22,
    ),
    IstioKind(
        "PeerAuthentication",
        SECURITY,
        "peerauthentications",
        _PEER_AUTHENTICATION_HISTORY,
        short_names=("pa",),
        columns=(
            Column("Mode", "string", ".spec.mtls.mode", "The mTLS mode used for peers."),
            _AGE,
        ),
    ),
    IstioKind(
        "RequestAuthentication",
        SECURITY,
        "requestauthentications",
        _AUTHZ_HISTORY,
        short_names=("ra",),
    ),
    IstioKind(
        "Telemetry",
        TELEMETRY,
        "telemetries",
        _TELEMETRY_HISTORY,
        short_names=("telemetry",),
        columns=(_AGE,),
    ),
    IstioKind("WasmPlugin", EXTENSIONS, "wasmplugins", _only("v1alpha1"), columns=(_AGE,)),
    IstioKind(
        "TrafficExtension",
        EXTENSIONS,
        "trafficextensions",
        _only("v1alpha1", since=_V1_30),
        columns=(_AGE,),
    ),
)
"""Istio's config kinds, in a fixed order (networking, security, telemetry, extensions)."""

_BY_NAME: Final = {kind.name: kind for kind in KINDS}


def names() -> list[str]:
    """The names of every CRD any supported Istio defines (`virtualservices.networking...`)."""
    return [kind.name for kind in KINDS]


def kind_named(name: str) -> IstioKind | None:
    """The kind a CRD name belongs to, if it is one of Istio's."""
    return _BY_NAME.get(name)


# -- definitions ----------------------------------------------------------------------------------


def definitions(version: Version) -> list[Manifest]:
    """The CRDs Istio `version` installs, as apiextensions.k8s.io/v1 manifests (new dicts).

    Raises ValueError for a version meshcanary has no data for (outside 1.13-1.30).
    """
    _check_supported(version)
    return [_definition(kind, version) for kind in KINDS if kind.served(version) is not None]


def definition(name: str, version: Version) -> Manifest | None:
    """One CRD as Istio `version` defines it; None if that version does not have it."""
    _check_supported(version)
    kind = _BY_NAME.get(name)
    if kind is None or kind.served(version) is None:
        return None
    return _definition(kind, version)


def _check_supported(version: Version) -> None:
    if not versions.is_supported(version):
        low, high = min(versions.SUPPORTED_MINORS), max(versions.SUPPORTED_MINORS)
        raise ValueError(
            f"Istio {version} is not supported: meshcanary knows Istio's CRDs for "
            f"{low.major}.{low.minor}-{high.major}.{high.minor}"
        )


def _definition(kind: IstioKind, version: Version) -> Manifest:
    served = kind.served(version)
    assert served is not None
    names: dict[str, Any] = {
        "categories": kind.categories,
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.kind.lower(),
    }
    if kind.short_names and version.minor_line >= kind.short_names_since:
        names["shortNames"] = list(kind.short_names)
    columns = kind.columns if version.minor_line >= kind.columns_since else ()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.name,
            "labels": {MANAGED_BY: MANAGER, VERSION_LABEL: str(version)},
        },
        "spec": {
            "group": kind.group,
            "names": names,
            "scope": kind.scope,
            "versions": [
                _version(kind, name, name == served.storage, columns)
                for name in sorted(served.versions)
            ],
        },
    }


def _version(
    kind: IstioKind, name: str, storage: bool, columns: Sequence[Column]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "served": True, "storage": storage}
    if columns:
        entry["additionalPrinterColumns"] = [column.manifest() for column in columns]
    entry["schema"] = {"openAPIV3Schema": _schema(kind)}
    entry["subresources"] = {"status": {}}
    return entry


def _schema(kind: IstioKind) -> dict[str, Any]:
    return {
        "description": (
            f"Istio {kind.kind}. meshcanary installs a permissive schema: istiod's validating "
            "webhook checks the spec."
        ),
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


# -- API version order ----------------------------------------------------------------------------

_API_VERSION: Final = re.compile(r"v([1-9]\d*)(?:(alpha|beta)([1-9]\d*))?")
_STABILITY: Final = {"alpha": 0, "beta": 1, None: 2}


def api_version_rank(name: str) -> tuple[int, int, int]:
    """Kubernetes' version priority as a sort key: v1 > v1beta2 > v1beta1 > v1alpha3 > v1alpha1.

    GA before beta before alpha, then the higher number. A name outside the Kubernetes
    convention ranks lowest (apiextensions sorts those alphabetically after every other).
    """
    match = _API_VERSION.fullmatch(name)
    if match is None:
        return (-1, 0, 0)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], int(major), int(minor or 0))


# -- planning -------------------------------------------------------------------------------------


class Action(StrEnum):
    """What `decide` does with one CRD."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    KEEP = "keep"


@dataclass(frozen=True)
class Decision:
    """What to do with one CRD, and why (a line for logs, Events and `ensure`'s result)."""

    name: str
    action: Action
    reason: str
    manifest: Manifest | None = None
    """What to apply (server-side) for INSTALL and UPGRADE; None for KEEP."""
    resource_version: str = ""
    """For UPGRADE: the installed CRD's resourceVersion the decision was made from."""

    def __str__(self) -> str:
        verb = {Action.INSTALL: "installed", Action.UPGRADE: "upgraded", Action.KEEP: "kept"}
        return f"{verb[self.action]} {self.name}: {self.reason}"


def decide(installed: Iterable[Mapping[str, Any]], newest: Version) -> list[Decision]:
    """One decision per CRD Istio `newest` defines, in `KINDS` order.

    `installed` is what the cluster has (API JSON of CRDs; others than Istio's are ignored), and
    `newest` the newest control plane's version. Per CRD:

    - absent from the cluster: INSTALL;
    - being deleted: KEEP (applying to it would race the API server's cleanup of its objects;
      the next call installs it afresh once it is gone);
    - labelled for an Istio newer than `newest`: KEEP (never downgrade);
    - storing a newer version than `newest` would: KEEP (never downgrade the storage version;
      this also covers CRDs installed by Helm or istioctl, which carry no label);
    - lacking something `newest` defines (a served version, the newer storage version, a short
      name, a printer column): UPGRADE, carrying over every version the installed CRD serves or
      has stored that `newest` does not define, as served and not storage;
    - otherwise: KEEP, even if the label names an older Istio (nothing would change but the
      label; an apply that changes nothing is churn on a shared, cluster-scoped object).

    Deterministic: the same inputs give the same decisions and manifests.
    """
    by_name = {_name(crd): crd for crd in installed}
    decisions = []
    for desired in definitions(newest):
        name = desired["metadata"]["name"]
        current = by_name.get(name)
        decisions.append(_decide(name, current, desired, newest))
    return decisions


def plan(installed: Iterable[Mapping[str, Any]], newest: Version) -> list[Manifest]:
    """The CRDs to apply (server-side) so Istio `newest` finds what it needs; see `decide`."""
    return [d.manifest for d in decide(installed, newest) if d.manifest is not None]


def _decide(
    name: str, current: Mapping[str, Any] | None, desired: Manifest, newest: Version
) -> Decision:
    if current is None:
        return Decision(name, Action.INSTALL, f"Istio {newest}: {_summary(desired)}", desired)
    if (current.get("metadata") or {}).get("deletionTimestamp"):
        return Decision(name, Action.KEEP, "it is being deleted")
    labelled = installed_for(current)
    if labelled is not None and labelled > newest:
        return Decision(name, Action.KEEP, f"installed for Istio {labelled}, newer than {newest}")
    current_storage, desired_storage = _storage(current), _storage(desired)
    if (
        current_storage is not None
        and desired_storage is not None
        and api_version_rank(current_storage) > api_version_rank(desired_storage)
    ):
        return Decision(
            name,
            Action.KEEP,
            f"stores {current_storage}, newer than Istio {newest}'s {desired_storage}",
        )
    additions = _additions(current, desired)
    if not additions:
        return Decision(name, Action.KEEP, f"already serves what Istio {newest} needs")
    reason = f"Istio {newest} adds {', '.join(additions)}"
    version = str((current.get("metadata") or {}).get("resourceVersion") or "")
    return Decision(name, Action.UPGRADE, reason, _carry_over(current, desired), version)


def installed_for(crd: Mapping[str, Any]) -> Version | None:
    """The Istio version a CRD's meshcanary label names; None when absent or unreadable."""
    label = ((crd.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL)
    if not isinstance(label, str):
        return None
    try:
        return versions.parse(label)
    except ValueError:
        return None


def _additions(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """What `desired` has that `current` lacks, as phrases ("serves v1", "short name ap")."""
    found: list[str] = []
    have = _served(current)
    found += [f"serves {v}" for v in sorted(_served(desired) - have, key=api_version_rank)]
    current_storage, desired_storage = _storage(current), _storage(desired)
    if desired_storage is not None and desired_storage != current_storage:
        found.append(f"stores {desired_storage}")
    short_names = set(_names(current).get("shortNames") or [])
    found += [
        f"short name {s}" for s in _names(desired).get("shortNames") or [] if s not in short_names
    ]
    found += [f"column {c}" for c in sorted(_columns(desired) - _columns(current))]
    return found


def _carry_over(current: Mapping[str, Any], desired: Manifest) -> Manifest:
    """`desired` plus every version `current` serves or stores that `desired` lacks.

    A carried version keeps the installed definition (schema, columns) and is served, never
    storage. Short names already installed are kept too: a user's `kubectl get ap` must not break.
    """
    upgraded = copy.deepcopy(desired)
    spec = upgraded["spec"]
    defined = {v["name"] for v in spec["versions"]}
    stored = set(((current.get("status") or {}).get("storedVersions")) or [])
    for entry in (current.get("spec") or {}).get("versions") or []:
        name = entry.get("name")
        if name in defined or not (entry.get("served") or name in stored):
            continue
        carried = copy.deepcopy(dict(entry))
        carried["served"] = True
        carried["storage"] = False
        spec["versions"].append(carried)
    spec["versions"].sort(key=lambda v: v["name"])
    short_names = list(spec["names"].get("shortNames") or [])
    short_names += [s for s in _names(current).get("shortNames") or [] if s not in short_names]
    if short_names:
        spec["names"]["shortNames"] = short_names
    return upgraded


def _summary(crd: Mapping[str, Any]) -> str:
    served = sorted(_served(crd), key=api_version_rank, reverse=True)
    return f"serves {', '.join(served)}; stores {_storage(crd)}"


def _name(crd: Mapping[str, Any]) -> str:
    return str((crd.get("metadata") or {}).get("name", ""))


def _names(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    return (crd.get("spec") or {}).get("names") or {}


def _versions(crd: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((crd.get("spec") or {}).get("versions") or [])


def _served(crd: Mapping[str, Any]) -> set[str]:
    return {str(v.get("name")) for v in _versions(crd) if v.get("served")}


def _storage(crd: Mapping[str, Any]) -> str | None:
    return next((str(v.get("name")) for v in _versions(crd) if v.get("storage")), None)


def _columns(crd: Mapping[str, Any]) -> set[str]:
    return {
        str(column.get("name"))
        for version in _versions(crd)
        if version.get("served")
        for column in version.get("additionalPrinterColumns") or []
    }
