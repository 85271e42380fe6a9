"""The renderer: golden files, Kubernetes schema validity, names, selectors and ownership."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from tests.unit.controlplane.cases import CASES, FULL, MINIMAL, PASSIVE, REV, UID
from tests.unit.controlplane.conftest import Golden

from meshcanary.controlplane import render, spec
from meshcanary.mesh import injection, selectors


def rendered(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return render.render(spec.parse(resource))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


# -- golden files and schema validity -------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, golden: Golden) -> None:
    golden(case, rendered(CASES[case]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_validates_against_kubernetes_1_33(case: str) -> None:
    for obj in rendered(CASES[case]):
        kubernetes_validate.validate(obj, "1.33", strict=True)


def test_validation_really_catches_mistakes() -> None:
    """Guards the test above: strict validation rejects an unknown field in a rendered object."""
    deployment = copy.deepcopy(one(rendered(MINIMAL), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)


def test_render_is_deterministic_and_shares_nothing() -> None:
    cp = spec.parse(FULL)
    first = render.render(cp)
    first[0]["metadata"]["labels"]["mutated"] = "yes"
    istiod = one(first, "Deployment", "istiod-cp-v115x")
    istiod["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0
    assert json.dumps(render.render(cp)) == json.dumps(rendered(FULL))
    assert render.RESTRICTED["runAsUser"] == 1337
    assert "mutated" not in render.render(cp)[0]["metadata"]["labels"]


# -- names, labels, ownership ---------------------------------------------------------------------


def test_objects_are_named_as_istio_operator_v2_names_them() -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered(MINIMAL)}
    assert names == {
        ("ServiceAccount", "istiod-cp-v113x"),
        ("Role", "istiod-cp-v113x"),
        ("RoleBinding", "istiod-cp-v113x"),
        ("Service", "istiod-cp-v113x"),
        ("Deployment", "istiod-cp-v113x"),
        ("PodDisruptionBudget", "istiod-cp-v113x"),
        ("ConfigMap", "istio-cp-v113x"),
        ("ConfigMap", "istio-sidecar-injector-cp-v113x"),
        ("ClusterRole", "istiod-cp-v113x-istio-system"),
        ("ClusterRoleBinding", "istiod-cp-v113x-istio-system"),
        ("MutatingWebhookConfiguration", "istio-sidecar-injector-cp-v113x-istio-system"),
        ("ValidatingWebhookConfiguration", "istio-validator-cp-v113x-istio-system"),
    }


def test_every_object_is_labelled_with_the_revision_and_its_owner() -> None:
    for obj in rendered(FULL):
        labels = obj["metadata"]["labels"]
        assert labels["istio.io/rev"] == "cp-v115x.istio-system"
        assert labels["app.kubernetes.io/managed-by"] == "meshcanary"
        assert labels["meshcanary.io/control-plane"] == "cp-v115x"
        selected = dict(part.split("=") for part in render.selector(spec.parse(FULL)).split(","))
        assert selected.items() <= labels.items()


def test_namespaced_objects_are_owned_and_cluster_scoped_ones_are_not() -> None:
    namespaced = {kind for _, kind, is_namespaced in render.KINDS if is_namespaced}
    for obj in rendered(MINIMAL):
        meta = obj["metadata"]
        if obj["kind"] in namespaced:
            assert meta["namespace"] == "istio-system"
            assert meta["ownerReferences"] == [
                {
                    "apiVersion": "meshcanary.io/v1alpha1",
                    "kind": "IstioControlPlane",
                    "name": "cp-v113x",
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        else:
            assert "namespace" not in meta
            assert "ownerReferences" not in meta


def test_without_a_uid_nothing_gets_an_owner_reference() -> None:
    assert all("ownerReferences" not in o["metadata"] for o in rendered(PASSIVE))


def test_kinds_lists_every_rendered_kind() -> None:
    known = {(api, kind) for api, kind, _ in render.KINDS}
    for case in CASES.values():
        assert {(o["apiVersion"], o["kind"]) for o in rendered(case)} <= known


def test_webhooks_come_after_the_istiod_they_call() -> None:
    kinds = [o["kind"] for o in rendered(FULL)]
    last_deployment = max(i for i, kind in enumerate(kinds) if kind == "Deployment")
    assert kinds.index("MutatingWebhookConfiguration") > last_deployment
    assert kinds[-1] == "ValidatingWebhookConfiguration"


# -- istiod ---------------------------------------------------------------------------------------


def test_istiod_deployment() -> None:
    deployment = one(rendered(MINIMAL), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "istiod", "istio.io/rev": REV}}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == {
        "app": "istiod",
        "istio": "istiod",
        "istio.io/rev": REV,
        "sidecar.istio.io/inject": "false",
    }
    pod = template["spec"]
    assert pod["serviceAccountName"] == "istiod-cp-v113x"
    (container,) = pod["containers"]
    assert container["image"] == "docker.io/istio/pilot:1.13.9"
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REVISION"] == REV
    assert env["ISTIOD_ADDR"] == "istiod-cp-v113x.istio-system.svc:15012"
    assert env["INJECTION_WEBHOOK_CONFIG_NAME"] == "istio-sidecar-injector-cp-v113x-istio-system"
    assert env["VALIDATION_WEBHOOK_CONFIG_NAME"] == "istio-validator-cp-v113x-istio-system"
    assert env["CLUSTER_ID"] == "Kubernetes"
    assert container["resources"] == render.DEFAULT_ISTIOD_RESOURCES
    assert "imagePullPolicy" not in container
    assert "nodeSelector" not in pod and "tolerations" not in pod


def test_istiod_deployment_follows_the_spec() -> None:
    deployment = one(rendered(FULL), "Deployment", "istiod-cp-v115x")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "registry.example.com/istio/pilot:1.15.3-distroless"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "zone": "b"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "istio"}]
    assert pod["imagePullSecrets"] == [{"name": "pull-secret"}]


def test_spec_env_replaces_a_default_in_place_and_appends_the_rest() -> None:
    (container,) = one(rendered(FULL), "Deployment", "istiod-cp-v115x")["spec"]["template"]["spec"][
        "containers"
    ]
    names = [e["name"] for e in container["env"]]
    assert names.count("PILOT_ENABLE_ANALYSIS") == 1
    assert names[-1] == "PILOT_TRACE_SAMPLING"
    analysis = next(e for e in container["env"] if e["name"] == "PILOT_ENABLE_ANALYSIS")
    assert analysis["value"] == "true"
    assert names.index("PILOT_ENABLE_ANALYSIS") < names.index("ENABLE_CA_SERVER")


def test_istiod_service_ports_and_selector() -> None:
    service = one(rendered(MINIMAL), "Service")
    ports = {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {
        ("grpc-xds", 15010, 15010),
        ("https-dns", 15012, 15012),
        ("https-webhook", 443, 15017),
        ("http-monitoring", 15014, 15014),
    }
    assert service["spec"]["selector"] == {"app": "istiod", "istio.io/rev": REV}
    assert "clusterIP" not in service["spec"]


def test_pdb_selects_istiod_of_this_revision_only() -> None:
    pdb = one(rendered(MINIMAL), "PodDisruptionBudget")
    assert pdb["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": REV}},
    }


def test_cluster_role_binding_grants_the_istiod_service_account() -> None:
    objects = rendered(MINIMAL)
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "istiod-cp-v113x", "namespace": "istio-system"}
    ]


def test_istiod_may_patch_only_its_own_webhook_configurations() -> None:
    rules = one(rendered(MINIMAL), "ClusterRole")["rules"]
    writes = [r for r in rules if "admissionregistration.k8s.io" in r["apiGroups"]]
    patching = [r for r in writes if "patch" in r["verbs"]]
    assert patching == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            "verbs": ["patch", "update"],
            "resourceNames": [
                "istio-sidecar-injector-cp-v113x-istio-system",
                "istio-validator-cp-v113x-istio-system",
            ],
        }
    ]


# -- configuration --------------------------------------------------------------------------------


def values(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(one(objects, "ConfigMap", name)["data"]["values"])
    return result


def sandbox_proxy_image(values: dict[str, Any]) -> str:
    """How istiod (and the sandbox's simulated istiod) composes `.ProxyImage` from values."""
    glob = values["global"]
    image = glob["proxy"]["image"]
    return image if "/" in image else f"{glob['hub']}/{image}:{glob['tag']}"


def test_injector_values_name_the_proxy_image() -> None:
    minimal = values(rendered(MINIMAL), "istio-sidecar-injector-cp-v113x")
    assert minimal["global"]["hub"] == "docker.io/istio"
    assert minimal["global"]["tag"] == "1.13.9"
    assert minimal["global"]["proxy"]["image"] == "proxyv2"
    assert minimal["revision"] == REV
    assert minimal["global"]["proxy"]["logLevel"] == "warning"
    assert minimal["global"]["multiCluster"]["clusterName"] == "Kubernetes"
    assert minimal["global"]["network"] == "network1"
    assert sandbox_proxy_image(minimal) == "docker.io/istio/proxyv2:1.13.9"
    full = values(rendered(FULL), "istio-sidecar-injector-cp-v115x")
    assert sandbox_proxy_image(full) == "registry.example.com/custom/proxy:1.15.3"
    assert full["global"]["proxy"]["logLevel"] == "info"
    assert full["global"]["meshID"] == "mesh1"


def test_injector_config_is_the_injection_policy() -> None:
    config = one(rendered(MINIMAL), "ConfigMap", "istio-sidecar-injector-cp-v113x")["data"]
    parsed = __import__("yaml").safe_load(config["config"])
    assert parsed["policy"] == "enabled"
    assert parsed["defaultTemplates"] == ["sidecar"]


def test_mesh_config_merges_the_spec_over_the_defaults() -> None:
    import yaml

    mesh = yaml.safe_load(one(rendered(FULL), "ConfigMap", "istio-cp-v115x")["data"]["mesh"])
    assert mesh["accessLogFile"] == "/dev/stdout"
    assert mesh["defaultConfig"] == {
        "discoveryAddress": "istiod-cp-v115x.istio-system.svc:15012",
        "holdApplicationUntilProxyStarts": True,
        "meshId": "mesh1",
        "proxyMetadata": {},
    }
    assert mesh["rootNamespace"] == "istio-system"


def test_merge_merges_maps_and_replaces_everything_else() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert render.merge(base, {"a": {"c": [3]}, "d": {"e": 1}}) == {
        "a": {"b": 1, "c": [3]},
        "d": {"e": 1},
    }
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}


# -- webhooks -------------------------------------------------------------------------------------


def test_injection_webhooks_have_the_revision_selectors() -> None:
    mwc = one(rendered(MINIMAL), "MutatingWebhookConfiguration")
    by_namespace, by_object = mwc["webhooks"]
    assert by_namespace["name"] == "rev.namespace.sidecar-injector.istio.io"
    assert by_namespace["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "istio.io/rev", "operator": "In", "values": [REV]},
            {"key": "istio-injection", "operator": "DoesNotExist"},
        ]
    }
    assert by_namespace["objectSelector"] == {
        "matchExpressions": [
            {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
        ]
    }
    assert by_object["name"] == "rev.object.sidecar-injector.istio.io"
    assert by_object["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "istio.io/rev", "operator": "DoesNotExist"},
            {"key": "istio-injection", "operator": "DoesNotExist"},
        ]
    }
    assert by_object["objectSelector"] == {
        "matchExpressions": [
            {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]},
            {"key": "istio.io/rev", "operator": "In", "values": [REV]},
        ]
    }
    for webhook in mwc["webhooks"]:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["sideEffects"] == "None"
        assert webhook["reinvocationPolicy"] == "Never"
        assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert webhook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
            }
        ]
        assert webhook["clientConfig"] == {
            "service": {
                "name": "istiod-cp-v113x",
                "namespace": "istio-system",
                "path": "/inject",
                "port": 443,
            }
        }
        assert "caBundle" not in webhook["clientConfig"]


@pytest.mark.parametrize(
    ("namespace_labels", "pod_labels", "injected"),
    [
        ({"istio.io/rev": REV}, {}, True),
        ({"istio.io/rev": REV}, {"sidecar.istio.io/inject": "false"}, False),
        ({"istio.io/rev": REV, "istio-injection": "enabled"}, {}, False),
        ({"istio.io/rev": "cp-v115x.istio-system"}, {"istio.io/rev": REV}, False),
        ({}, {"istio.io/rev": REV}, True),
        ({}, {"istio.io/rev": REV, "sidecar.istio.io/inject": "false"}, False),
        ({"istio-injection": "disabled"}, {"istio.io/rev": REV}, False),
        ({}, {}, False),
    ],
)
def test_webhooks_inject_exactly_where_istio_says(
    namespace_labels: dict[str, str], pod_labels: dict[str, str], injected: bool
) -> None:
    mwc = one(rendered(MINIMAL), "MutatingWebhookConfiguration")
    webhooks = injection.webhooks_from_configuration(mwc)
    assert {w.revision for w in webhooks} == {REV}
    firing = injection.injecting_webhooks(webhooks, namespace_labels, pod_labels)
    assert len(firing) == (1 if injected else 0)


def test_istio_pods_are_never_sent_to_an_injection_webhook() -> None:
    """An istiod pod sent to its own webhook (failurePolicy Fail) could never start."""
    objects = rendered(FULL)
    webhooks = injection.webhooks_from_configuration(one(objects, "MutatingWebhookConfiguration"))
    for deployment in by_kind(objects, "Deployment"):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selectors.matches(deployment["spec"]["selector"], pod_labels)
        for namespace_labels in ({}, {"istio.io/rev": "cp-v115x.istio-system"}):
            assert injection.injecting_webhooks(webhooks, namespace_labels, pod_labels) == []


def test_validation_webhook() -> None:
    vwc = one(rendered(MINIMAL), "ValidatingWebhookConfiguration")
    (webhook,) = vwc["webhooks"]
    assert webhook["name"] == "rev.validation.istio.io"
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["objectSelector"] == {
        "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [REV]}]
    }
    assert webhook["clientConfig"]["service"]["path"] == "/validate"
    assert set(webhook["rules"][0]["apiGroups"]) == {
        "networking.istio.io",
        "security.istio.io",
        "telemetry.istio.io",
        "extensions.istio.io",
    }


# -- modes and mesh expansion ---------------------------------------------------------------------


def test_passive_mode_injects_only() -> None:
    objects = rendered(PASSIVE)
    assert by_kind(objects, "ValidatingWebhookConfiguration") == []
    assert one(objects, "Service")["spec"]["clusterIP"] == "None"
    assert len(by_kind(objects, "MutatingWebhookConfiguration")) == 1
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VALIDATION_WEBHOOK_CONFIG_NAME"] == ""
    patching = [r for r in one(objects, "ClusterRole")["rules"] if "resourceNames" in r]
    assert patching[0]["resourceNames"] == ["istio-sidecar-injector-cp-passive-istio-system"]


def test_no_gateway_without_mesh_expansion() -> None:
    names = [o["metadata"]["name"] for o in rendered(MINIMAL)]
    assert not any(name.startswith("istio-meshexpansion") for name in names)


def test_mesh_expansion_gateway() -> None:
    objects = rendered(FULL)
    deployment = one(objects, "Deployment", "istio-meshexpansion-cp-v115x")
    service = one(objects, "Service", "istio-meshexpansion-cp-v115x")
    one(objects, "ServiceAccount", "istio-meshexpansion-cp-v115x")
    assert service["spec"]["type"] == "LoadBalancer"
    ports = {(p["name"], p["port"]) for p in service["spec"]["ports"]}
    assert ports == {
        ("status-port", 15021),
        ("tls", 15443),
        ("tcp-istiod", 15012),
        ("tcp-webhook", 15017),
    }
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selectors.matches({"matchLabels": service["spec"]["selector"]}, pod_labels)
    istiod = one(objects, "Service", "istiod-cp-v115x")
    assert not selectors.matches({"matchLabels": istiod["spec"]["selector"]}, pod_labels)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/custom/proxy:1.15.3"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CA_ADDR"] == "istiod-cp-v115x.istio-system.svc:15012"
    assert env["ISTIO_META_NETWORK"] == "network2"
    pod = deployment["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod, "istiod's scheduling settings are istiod's only"
    assert pod["imagePullSecrets"] == [{"name": "pull-secret"}]
