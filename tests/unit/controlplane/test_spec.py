"""The spec model: defaults (the same as the CRD's), the checks a schema cannot make."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.controlplane.cases import FULL, MINIMAL

from meshcanary.controlplane import crd, spec
from meshcanary.sandbox.apiserver import schema as sandbox_schema


def resource(name: str = "cp", namespace: str = "istio-system", **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"version": "1.15.3", **fields},
    }


def problems(resource: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(spec.SpecError) as caught:
        spec.parse(resource)
    return caught.value.problems


def test_minimal_resource_gets_every_default() -> None:
    cp = spec.parse(MINIMAL)
    assert cp.name == "cp-v113x" and cp.namespace == "istio-system"
    assert cp.uid == MINIMAL["metadata"]["uid"]
    assert cp.generation == 1
    assert cp.revision == "cp-v113x.istio-system"
    assert cp.mode is spec.Mode.ACTIVE
    assert cp.network == "network1"
    assert cp.mesh_expansion is False
    assert cp.images == spec.Images(hub="docker.io/istio", tag="1.13.9")
    assert cp.istiod == spec.IstiodDeployment()
    assert cp.istiod.replicas == 1
    assert cp.proxy == spec.Proxy(image="proxyv2", log_level="warning")
    assert cp.mesh_config == {}
    assert cp.cluster_id == "Kubernetes"
    assert cp.mesh_id is None
    assert cp.pilot_image == "docker.io/istio/pilot:1.13.9"
    assert cp.proxy_image == "docker.io/istio/proxyv2:1.13.9"


def test_full_resource() -> None:
    cp = spec.parse(FULL)
    assert cp.network == "network2"
    assert cp.mesh_expansion is True
    assert cp.images == spec.Images(
        hub="registry.example.com/istio",
        tag="1.15.3-distroless",
        pull_policy="IfNotPresent",
        pull_secrets=("pull-secret",),
    )
    assert cp.istiod.replicas == 2
    assert cp.istiod.node_selector == {"zone": "b", "kubernetes.io/os": "linux"}
    assert [e["name"] for e in cp.istiod.env] == ["PILOT_ENABLE_ANALYSIS", "PILOT_TRACE_SAMPLING"]
    assert cp.proxy.log_level == "info"
    assert cp.proxy_image == "registry.example.com/custom/proxy:1.15.3"
    assert cp.cluster_id == "east"
    assert cp.mesh_id == "mesh1"


def test_a_proxy_image_name_lives_under_the_hub() -> None:
    cp = spec.parse(resource(proxy={"image": "proxyv2-distroless"}))
    assert cp.proxy_image == "docker.io/istio/proxyv2-distroless:1.15.3"


@pytest.mark.parametrize("case", [MINIMAL, FULL])
def test_defaults_are_those_the_api_server_applies_from_the_crd(case: dict[str, Any]) -> None:
    """parse() of a raw resource == parse() of the same resource after CRD defaulting."""
    schema = crd.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    defaulted, pruned = sandbox_schema.prepare(copy.deepcopy(case), schema)
    assert pruned == []
    assert sandbox_schema.validate(defaulted, schema) == []
    assert spec.parse(defaulted) == spec.parse(case)
    assert defaulted["spec"]["meshExpansion"]["enabled"] is case["spec"].get(
        "meshExpansion", {}
    ).get("enabled", False)


def test_a_missing_version_or_name_is_reported() -> None:
    assert problems({"metadata": {"namespace": "istio-system"}, "spec": {}}) == (
        "metadata.name: Required value",
        "spec.version: Required value",
    )


@pytest.mark.parametrize("version", ["1.9.9", "1.12.9", "1.31.0"])
def test_unsupported_versions_are_refused(version: str) -> None:
    (problem,) = problems(resource(version=version))
    assert problem == f"spec.version: Istio {version} is not supported (supported: 1.13-1.30)"


def test_a_malformed_version_is_refused() -> None:
    assert problems(resource(version="1.15")) == (
        "spec.version: '1.15' is not a version of the form 1.x.y",
    )


@pytest.mark.parametrize("version", ["1.13.0", "1.15.3", "1.30.2"])
def test_supported_versions_parse(version: str) -> None:
    assert spec.parse(resource(version=version)).images.tag == version


def test_a_dotted_name_is_refused_because_it_would_share_objects() -> None:
    (problem,) = problems(resource(name="cp.v115"))
    assert "must not contain dots" in problem


def test_a_revision_longer_than_a_label_value_is_refused() -> None:
    (problem,) = problems(resource(name="c" * 40, namespace="n" * 30))
    assert problem.startswith("metadata.name: revision")
    assert "63" in problem


def test_the_expansion_gateway_name_must_fit_a_service_name() -> None:
    name = "c" * 45  # istiod-<45> fits 63, istio-meshexpansion-<45> does not
    spec.parse(resource(name=name))
    (problem,) = problems(resource(name=name, meshExpansion={"enabled": True}))
    assert "istio-meshexpansion-" in problem and "longer than 63" in problem


def test_bad_image_references_are_refused() -> None:
    found = problems(
        resource(
            containerImageConfiguration={"hub": "docker.io/istio/", "tag": "a/b"},
            proxy={"image": "proxy v2"},
        )
    )
    assert found == (
        "spec.containerImageConfiguration.tag: 'a/b' is not a valid image tag",
        "spec.containerImageConfiguration.hub: 'docker.io/istio/' is not an image repository "
        "prefix",
        "spec.proxy.image: 'proxy v2' is not an image reference",
    )


def test_wrong_types_and_values_are_all_reported_at_once() -> None:
    found = problems(
        resource(
            mode="FOO",
            meshExpansion={"enabled": "yes"},
            istiod={"deployment": {"replicas": "2", "env": "X=1"}},
            proxy={"logLevel": "loud"},
            meshConfig=["not", "a", "map"],
            containerImageConfiguration={"imagePullPolicy": "Sometimes"},
        )
    )
    assert found == (
        'spec.mode: Unsupported value: "FOO": supported values: "ACTIVE", "PASSIVE"',
        "spec.meshExpansion.enabled: must be a boolean",
        "spec.containerImageConfiguration.imagePullPolicy: Unsupported value: 'Sometimes'",
        "spec.istiod.deployment.replicas: must be an integer",
        "spec.istiod.deployment.env: must be a list of objects",
        "spec.proxy.logLevel: Unsupported value: 'loud'",
        "spec.meshConfig: must be an object",
    )


def test_negative_replicas_are_refused() -> None:
    assert problems(resource(istiod={"deployment": {"replicas": -1}})) == (
        "spec.istiod.deployment.replicas: Invalid value: -1: must be >= 0",
    )


def test_zero_replicas_are_allowed() -> None:
    assert spec.parse(resource(istiod={"deployment": {"replicas": 0}})).istiod.replicas == 0


def test_spec_error_message_joins_the_problems() -> None:
    with pytest.raises(spec.SpecError, match=r"spec\.version: Required value"):
        spec.parse({"metadata": {"name": "cp", "namespace": "ns"}})


def test_supported_range() -> None:
    assert spec.supported_range() == "1.13-1.30"
