"""Resource definitions: our CRD, dict twins of built-ins, and manifests mapped to endpoints."""

from __future__ import annotations

import pytest
from lightkube.core import resource as lkr
from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

from meshcanary.kube import errors, resources


def test_istio_control_plane_resource() -> None:
    info = lkr.api_info(resources.IstioControlPlane)
    assert (info.resource.group, info.resource.version, info.resource.kind, info.plural) == (
        "meshcanary.io",
        "v1alpha1",
        "IstioControlPlane",
        "istiocontrolplanes",
    )
    assert resources.is_namespaced(resources.IstioControlPlane)
    assert resources.is_raw(resources.IstioControlPlane)
    status = lkr.api_info(resources.IstioControlPlane.Status)
    assert (status.action, status.plural) == ("status", "istiocontrolplanes")


def test_custom_kinds_are_one_class_per_kind() -> None:
    again = resources.custom("networking.istio.io", "v1beta1", "VirtualService", "virtualservices")
    assert again is resources.VirtualService
    cluster = resources.custom_global("example.com", "v1", "Widget", "widgets")
    assert issubclass(cluster, GenericGlobalResource)
    assert not resources.is_namespaced(cluster)


def test_raw_twins_share_endpoints_but_decode_dicts() -> None:
    twin = resources.raw(resources.Pod)
    assert twin is resources.raw(resources.Pod)
    assert issubclass(twin, GenericNamespacedResource) and issubclass(twin, dict)
    assert lkr.api_info(twin) is lkr.api_info(resources.Pod)
    assert twin.__name__ == "Pod"
    global_twin = resources.raw(resources.MutatingWebhookConfiguration)
    assert issubclass(global_twin, GenericGlobalResource)
    assert resources.raw(resources.IstioControlPlane) is resources.IstioControlPlane


@pytest.mark.parametrize(
    ("resource", "kind", "api_version", "namespaced"),
    [
        (resources.Pod, "Pod", "v1", True),
        (resources.Deployment, "Deployment", "apps/v1", True),
        (resources.Namespace, "Namespace", "v1", False),
        (
            resources.MutatingWebhookConfiguration,
            "MutatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            False,
        ),
        (resources.ClusterRole, "ClusterRole", "rbac.authorization.k8s.io/v1", False),
        (resources.EnvoyFilter, "EnvoyFilter", "networking.istio.io/v1alpha3", True),
    ],
)
def test_kind_and_version(resource: type, kind: str, api_version: str, namespaced: bool) -> None:
    assert resources.kind_of(resource) == kind
    assert resources.api_version_of(resource) == api_version
    assert resources.is_namespaced(resource) is namespaced
    assert resources.kind_of(resources.raw(resource)) == kind


@pytest.mark.parametrize(
    ("api_version", "kind", "plural"),
    [
        ("v1", "ConfigMap", "configmaps"),
        ("apps/v1", "Deployment", "deployments"),
        ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", None),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", None),
        ("meshcanary.io/v1alpha1", "IstioControlPlane", "istiocontrolplanes"),
    ],
)
def test_for_manifest(api_version: str, kind: str, plural: str | None) -> None:
    resource = resources.for_manifest({"apiVersion": api_version, "kind": kind})
    assert resources.is_raw(resource)
    assert resources.kind_of(resource) == kind
    assert resources.api_version_of(resource) == api_version
    if plural:
        assert lkr.api_info(resource).plural == plural


@pytest.mark.parametrize(
    "manifest",
    [
        {"apiVersion": "example.com/v1", "kind": "Unknown"},
        {"apiVersion": "v1", "kind": "NoSuchKind"},
        {"apiVersion": "nosuchgroup/v1", "kind": "Thing"},
    ],
)
def test_unknown_kinds(manifest: dict[str, str]) -> None:
    with pytest.raises(errors.UnknownKind, match="no resource definition"):
        resources.for_manifest(manifest)


def test_manifest_without_kind() -> None:
    with pytest.raises(errors.InvalidManifest):
        resources.for_manifest({"kind": "ConfigMap"})


def test_status_subresource_of_any_resource() -> None:
    status = resources.status_of(resources.Deployment)
    info = lkr.api_info(status)
    assert (info.action, info.plural, info.parent) == (
        "status",
        "deployments",
        lkr.api_info(resources.Deployment).resource,
    )
    assert resources.status_of(resources.Deployment) is status
    assert issubclass(resources.status_of(resources.Namespace), dict)
