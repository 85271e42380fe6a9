"""The resource types the product talks about, so no other layer needs to import lightkube.

Three families:

- Built-in kinds (Pod, Deployment, MutatingWebhookConfiguration...) re-exported from lightkube as
  typed models, for code that wants attribute access.
- Raw twins (`raw(Pod)`): the same endpoints decoded as plain dicts (API JSON, nothing dropped,
  no model conversion). The pure domain (`meshcanary.mesh`) takes API JSON, and a dict twin lists
  10,000 pods without building 10,000 models.
- Custom resources as lightkube generic (dict-based) resources: our `IstioControlPlane`
  (`meshcanary.io/v1alpha1`, namespaced, with a status subresource) and Istio's config kinds.

`for_manifest` maps a rendered manifest's apiVersion/kind to the resource to send it to. Custom
resources take merge patches only (`PatchType.MERGE`): API servers answer 415 to strategic merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from lightkube.core import resource as lkr
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericGlobalStatus,
    GenericNamespacedResource,
    GenericNamespacedStatus,
    create_global_resource,
    create_namespaced_resource,
)
from lightkube.resources.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet, Deployment, ReplicaSet, StatefulSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    Pod,
    Secret,
    Service,
    ServiceAccount,
)
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.rbac_authorization_v1 import (
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
)

from meshcanary.kube import errors

__all__ = [
    "AuthorizationPolicy",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "CronJob",
    "CustomResourceDefinition",
    "DaemonSet",
    "Deployment",
    "DestinationRule",
    "EnvoyFilter",
    "Gateway",
    "HorizontalPodAutoscaler",
    "IstioControlPlane",
    "Job",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PeerAuthentication",
    "Pod",
    "PodDisruptionBudget",
    "ReplicaSet",
    "Role",
    "RoleBinding",
    "Secret",
    "Service",
    "ServiceAccount",
    "ServiceEntry",
    "Sidecar",
    "StatefulSet",
    "ValidatingWebhookConfiguration",
    "VirtualService",
]

ResourceType: TypeAlias = type[lkr.NamespacedResource] | type[lkr.GlobalResource]
"""Any resource class this layer accepts (typed model, raw twin or generic)."""
RawResource: TypeAlias = type[GenericNamespacedResource] | type[GenericGlobalResource]
"""A dict-decoded resource class."""

_RAW: dict[Any, Any] = {}
_STATUS: dict[Any, Any] = {}

GROUP: Final = "meshcanary.io"
VERSION: Final = "v1alpha1"

IstioControlPlane = create_namespaced_resource(
    GROUP, VERSION, "IstioControlPlane", "istiocontrolplanes"
)
"""`istiocontrolplanes.meshcanary.io`: one per revision; `IstioControlPlane.Status` for status."""


def custom(group: str, version: str, kind: str, plural: str) -> type[GenericNamespacedResource]:
    """A generic (dict-based) resource for a namespaced custom kind; one class per kind."""
    return create_namespaced_resource(group, version, kind, plural)


def custom_global(group: str, version: str, kind: str, plural: str) -> type[GenericGlobalResource]:
    """A generic (dict-based) resource for a cluster-scoped custom kind; one class per kind."""
    return create_global_resource(group, version, kind, plural)


ISTIO_NETWORKING: Final = "networking.istio.io"
ISTIO_SECURITY: Final = "security.istio.io"

VirtualService = custom(ISTIO_NETWORKING, "v1beta1", "VirtualService", "virtualservices")
DestinationRule = custom(ISTIO_NETWORKING, "v1beta1", "DestinationRule", "destinationrules")
Gateway = custom(ISTIO_NETWORKING, "v1beta1", "Gateway", "gateways")
ServiceEntry = custom(ISTIO_NETWORKING, "v1beta1", "ServiceEntry", "serviceentries")
Sidecar = custom(ISTIO_NETWORKING, "v1beta1", "Sidecar", "sidecars")
EnvoyFilter = custom(ISTIO_NETWORKING, "v1alpha3", "EnvoyFilter", "envoyfilters")
PeerAuthentication = custom(ISTIO_SECURITY, "v1beta1", "PeerAuthentication", "peerauthentications")
AuthorizationPolicy = custom(
    ISTIO_SECURITY, "v1beta1", "AuthorizationPolicy", "authorizationpolicies"
)
"""Istio config kinds at the API versions served by every Istio meshcanary supports (1.13+)."""


def is_namespaced(resource: type[Any]) -> bool:
    """Whether objects of this resource live in a namespace."""
    return issubclass(resource, lkr.NamespacedResource)


def kind_of(resource: type[Any]) -> str:
    """The resource's kind, e.g. `Deployment`."""
    return str(lkr.api_info(resource).resource.kind)


def api_version_of(resource: type[Any]) -> str:
    """The resource's apiVersion, e.g. `apps/v1`."""
    return str(lkr.api_info(resource).resource.api_version)


def is_raw(resource: ResourceType) -> bool:
    """Whether objects of this resource decode as plain dicts."""
    return issubclass(resource, GenericNamespacedResource | GenericGlobalResource)


def raw(resource: ResourceType) -> RawResource:
    """The dict-decoded twin of a typed resource (generic resources are their own twin).

    The twin is not registered in lightkube's registry, so typed loading stays unaffected.
    """
    if is_raw(resource):
        return resource  # type: ignore[return-value]
    twin = _RAW.get(resource)
    if twin is None:
        base = GenericNamespacedResource if is_namespaced(resource) else GenericGlobalResource
        info = lkr.api_info(resource)
        twin = type(resource.__name__, (base,), {"_api_info": info, "__module__": __name__})
        _RAW[resource] = twin
    return twin


def for_manifest(manifest: Mapping[str, Any]) -> RawResource:
    """The dict-decoded resource a manifest (`apiVersion`, `kind`) is sent to.

    Built-in kinds load from lightkube's models; custom kinds must have been declared (here, or
    with `custom`); anything else raises UnknownKind.
    """
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise errors.InvalidManifest("a manifest needs string apiVersion and kind")
    registered = resource_registry.get(api_version, kind)
    if registered is not None and is_raw(registered):
        return registered  # type: ignore[return-value]
    try:
        typed = resource_registry.load(api_version, kind)
    except (LoadResourceError, ValueError) as error:
        raise errors.UnknownKind(
            f"no resource definition for {kind} ({api_version}); declare it with resources.custom"
        ) from error
    return raw(typed)


def status_of(resource: ResourceType) -> Any:
    """The dict-decoded `status` subresource of a resource, for status patches."""
    cached = _STATUS.get(resource)
    if cached is not None:
        return cached
    info = lkr.api_info(resource)
    base = GenericNamespacedStatus if is_namespaced(resource) else GenericGlobalStatus
    api_info = lkr.ApiInfo(
        resource=info.resource,
        parent=info.resource,
        plural=info.plural,
        verbs=["get", "patch", "put"],
        action="status",
    )
    name = f"{info.resource.kind}Status"
    status = type(name, (base,), {"_api_info": api_info, "__module__": __name__})
    _STATUS[resource] = status
    return status
