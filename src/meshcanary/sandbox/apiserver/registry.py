"""The resource types the sandbox serves: built-ins, and those CustomResourceDefinitions add.

A `ResourceType` is everything the server needs to know about one group/version/resource: its
names for discovery, its scope, its subresources, and (for custom resources) the schema and the
printer columns of the CRD version that defines it. Storage is keyed by group and plural, not
version, so every served version of a CRD reads and writes the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD version."""

    name: str
    type: str
    json_path: str
    description: str = ""
    format: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ScalePaths:
    """Where the `/scale` subresource reads and writes replicas (CRD `subresources.scale`)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    scale: ScalePaths | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: dict[str, Any] | None = None
    preserve_unknown_fields: bool = False
    crd_name: str | None = None
    storage_version: str | None = None
    verbs: tuple[str, ...] = STANDARD_VERBS
    field_selectors: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_key(self) -> str:
        """The part of a storage key shared by every version of this resource."""
        return f"{self.group}/{self.plural}"

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def qualified(self) -> str:
        """`plural.group` (or `plural` for the core group), as error messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: Iterable[str] = (),
    categories: Iterable[str] = (),
    status: bool = False,
    scale: bool = False,
    fields: Iterable[str] = (),
) -> ResourceType:
    subresources = {"status"} if status else set()
    if scale:
        subresources.add("scale")
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=tuple(short),
        categories=tuple(categories),
        subresources=frozenset(subresources),
        scale=ScalePaths(label_selector=".status.selector") if scale else None,
        field_selectors=tuple(fields),
    )


ALL = ("all",)
BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short=["ns"],
        status=True,
        fields=["status.phase"],
    ),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        short=["po"],
        categories=ALL,
        status=True,
        fields=[
            "status.phase",
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.podIP",
            "spec.restartPolicy",
            "spec.schedulerName",
        ],
    ),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        short=["svc"],
        categories=ALL,
        status=True,
        fields=["spec.type", "spec.clusterIP"],
    ),
    _builtin("", "v1", "endpoints", "Endpoints", short=["ep"]),
    _builtin("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    _builtin("", "v1", "secrets", "Secret", fields=["type"]),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"]),
    _builtin(
        "",
        "v1",
        "events",
        "Event",
        short=["ev"],
        fields=[
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "reason",
            "type",
            "source",
        ],
    ),
    _builtin(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short=["no"],
        status=True,
        fields=["spec.unschedulable"],
    ),
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=["deploy"],
        categories=ALL,
        status=True,
        scale=True,
    ),
    _builtin(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short=["rs"],
        categories=ALL,
        status=True,
        scale=True,
        fields=["status.replicas"],
    ),
    _builtin(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        short=["sts"],
        categories=ALL,
        status=True,
        scale=True,
    ),
    _builtin("apps", "v1", "daemonsets", "DaemonSet", short=["ds"], categories=ALL, status=True),
    _builtin("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _builtin(
        "batch", "v1", "jobs", "Job", categories=ALL, status=True, fields=["status.successful"]
    ),
    _builtin("batch", "v1", "cronjobs", "CronJob", short=["cj"], categories=ALL, status=True),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
        categories=["api-extensions"],
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        categories=["api-extensions"],
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=["crd", "crds"],
        categories=["api-extensions"],
        status=True,
    ),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    _builtin(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"], status=True
    ),
    _builtin(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=["hpa"],
        categories=ALL,
        status=True,
    ),
    # The sandbox's own fault injection (sandbox/faults.py): served with no CRD to install.
    _builtin("sandbox.meshcanary.io", "v1", "faults", "Fault", namespaced=False),
)


def _printer_columns(version: dict[str, Any]) -> tuple[PrinterColumn, ...]:
    return tuple(
        PrinterColumn(
            name=str(col.get("name", "")),
            type=str(col.get("type", "string")),
            json_path=str(col.get("jsonPath", "")),
            description=str(col.get("description", "")),
            format=str(col.get("format", "")),
            priority=int(col.get("priority", 0) or 0),
        )
        for col in version.get("additionalPrinterColumns") or ()
    )


def _scale_paths(subresources: dict[str, Any]) -> ScalePaths | None:
    scale = subresources.get("scale")
    if not isinstance(scale, dict):
        return None
    return ScalePaths(
        spec_replicas=str(scale.get("specReplicasPath", ".spec.replicas")),
        status_replicas=str(scale.get("statusReplicasPath", ".status.replicas")),
        label_selector=scale.get("labelSelectorPath"),
    )


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CRD serves: one per version with `served: true`."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = spec.get("versions") or []
    storage = next((v.get("name") for v in versions if v.get("storage")), None)
    types = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=str(spec.get("group", "")),
                version=str(version.get("name", "")),
                plural=str(names.get("plural", "")),
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                kind=str(names.get("kind", "")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subresources),
                scale=_scale_paths(subresources),
                printer_columns=_printer_columns(version),
                schema=schema if isinstance(schema, dict) else None,
                preserve_unknown_fields=bool(spec.get("preserveUnknownFields", False)),
                crd_name=str((crd.get("metadata") or {}).get("name", "")),
                storage_version=storage,
            )
        )
    return types


@dataclass
class Registry:
    """Every resource type currently served, built-ins first, then those of established CRDs."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for rt in BUILTINS:
            registry._types[(rt.group, rt.version, rt.plural)] = rt
        return registry

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions, preferred first, core group excluded."""
        out: dict[str, list[str]] = {}
        for rt in self._types.values():
            if rt.group:
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return {group: sorted(vs, key=version_priority) for group, vs in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.version == version]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.plural == plural]

    def set_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Serve (or re-serve, after an update) the versions a CRD defines."""
        name = str((crd.get("metadata") or {}).get("name", ""))
        self.remove_crd(name)
        types = types_from_crd(crd)
        for rt in types:
            self._types[(rt.group, rt.version, rt.plural)] = rt
        return types

    def remove_crd(self, crd_name: str) -> None:
        for key, rt in list(self._types.items()):
            if rt.crd_name == crd_name:
                del self._types[key]


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major = int(match.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor)
