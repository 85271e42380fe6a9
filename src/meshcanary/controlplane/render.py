"""A revision's istiod install, rendered from an `IstioControlPlane`: pure data, no cluster.

`render(cp)` returns every object of the revision `<cp>.<ns>`, named as istio-operator v2 names
them (names come from `mesh.revisions`, the one place that knows them):

- in the control plane's namespace: ServiceAccount, Role, RoleBinding, Service,
  Deployment and PodDisruptionBudget `istiod-<cp>`; ConfigMaps `istio-<cp>` (mesh config) and
  `istio-sidecar-injector-<cp>` (injection `values` and `config`); with mesh expansion, the
  gateway's ServiceAccount, Deployment and LoadBalancer Service `istio-meshexpansion-<cp>`;
- cluster-scoped: ClusterRole and ClusterRoleBinding `istiod-<cp>-<ns>`,
  MutatingWebhookConfiguration `istio-sidecar-injector-<cp>-<ns>` (the two revision webhooks)
  and, in ACTIVE mode only, ValidatingWebhookConfiguration `istio-validator-<cp>-<ns>`.

PASSIVE mode renders injection only, as istio-operator v2 does: a headless Service and no
validation webhook (istiod's `VALIDATION_WEBHOOK_CONFIG_NAME` is empty).

Ownership. Every object is labelled `istio.io/rev: <cp>.<ns>`,
`app.kubernetes.io/managed-by: meshcanary` and `meshcanary.io/control-plane: <cp>`, so the
operator can find (and prune) them with `selector(cp)`. Namespaced objects carry an
ownerReference to the IstioControlPlane (when its uid is known), so Kubernetes' garbage collector
removes them with it. Cluster-scoped objects cannot: an ownerReference from a cluster-scoped
object to a namespaced owner is unresolvable, and the garbage collector would delete the object
at once (or never, depending on the version). They are found by label and removed by the
operator's finalizer; without that, a deleted control plane would leave a webhook pointing at a
Service that no longer exists, which blocks pod creation (`failurePolicy: Fail`) or, for the
validator, leaves Istio config unvalidated (istio/istio #37512).

What is deliberately not rendered: `caBundle` of the webhooks (istiod patches its own CA into
the configurations named by `INJECTION_WEBHOOK_CONFIG_NAME` / `VALIDATION_WEBHOOK_CONFIG_NAME`;
apply without it so the two writers do not fight), the Istio release's sidecar injection
templates (the `config` key names the default template; a real cluster needs the release's
`templates`), an HPA, and the Istio Gateway/VirtualService objects that route the expansion
gateway's ports to istiod (they need Istio's CRDs, installed separately).

Output is deterministic: a fixed object order (dependencies first, webhooks last, so a webhook
never exists before the istiod it calls), and ConfigMap payloads dumped with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import yaml

from meshcanary.controlplane import spec
from meshcanary.mesh import injection, revisions

Manifest = dict[str, Any]

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "meshcanary"
CONTROL_PLANE_LABEL: Final = "meshcanary.io/control-plane"
ISTIOD_APP: Final = "istiod"
GATEWAY_APP: Final = "istio-meshexpansion-gateway"

NAMESPACE_WEBHOOK: Final = "rev.namespace.sidecar-injector.istio.io"
OBJECT_WEBHOOK: Final = "rev.object.sidecar-injector.istio.io"
VALIDATION_WEBHOOK: Final = "rev.validation.istio.io"

XDS_PORT: Final = 15010
XDS_TLS_PORT: Final = 15012
WEBHOOK_PORT: Final = 15017
MONITORING_PORT: Final = 15014
DEBUG_PORT: Final = 8080

KINDS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("v1", "ServiceAccount", True),
    ("v1", "ConfigMap", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io/v1", "Role", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("v1", "Service", True),
    ("apps/v1", "Deployment", True),
    ("policy/v1", "PodDisruptionBudget", True),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", False),
)
"""Every (apiVersion, kind, namespaced) `render` can emit, in apply order: what to prune."""

DEFAULT_ISTIOD_RESOURCES: Final = {"requests": {"cpu": "500m", "memory": "2048Mi"}}
DEFAULT_PROXY_RESOURCES: Final = {
    "limits": {"cpu": "2000m", "memory": "1024Mi"},
    "requests": {"cpu": "100m", "memory": "128Mi"},
}
ISTIO_API_GROUPS: Final = (
    "extensions.istio.io",
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
)
RESTRICTED: Final = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsGroup": 1337,
    "runAsNonRoot": True,
    "runAsUser": 1337,
}
"""The container securityContext of istiod and the gateway (Pod Security "restricted")."""


def render(cp: spec.ControlPlane) -> list[Manifest]:
    """Every object of `cp`'s revision, in apply order (new dicts, sharing nothing)."""
    objects = [
        service_account(cp),
        mesh_config(cp),
        injector_config(cp),
        cluster_role(cp),
        cluster_role_binding(cp),
        role(cp),
        role_binding(cp),
        istiod_service(cp),
        istiod_deployment(cp),
        pod_disruption_budget(cp),
    ]
    if cp.mesh_expansion:
        objects += [gateway_service_account(cp), gateway_deployment(cp), gateway_service(cp)]
    objects.append(injection_webhooks(cp))
    if cp.mode is spec.Mode.ACTIVE:
        objects.append(validation_webhook(cp))
    return _fresh(objects)


def labels(cp: spec.ControlPlane) -> dict[str, str]:
    """The labels every rendered object carries (also what `selector` matches)."""
    return {
        MANAGED_BY: MANAGER,
        CONTROL_PLANE_LABEL: cp.name,
        revisions.REV_LABEL: cp.revision,
    }


def selector(cp: spec.ControlPlane) -> str:
    """A label selector (`kubectl -l` syntax) matching exactly the objects of `cp`."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels(cp).items()))


def expansion_gateway_name(cp: spec.ControlPlane) -> str:
    return f"{spec.GATEWAY_PREFIX}-{cp.ref.cp_name}"


# -- istiod ---------------------------------------------------------------------------------------


def service_account(cp: spec.ControlPlane) -> Manifest:
    return _object("v1", "ServiceAccount", _metadata(cp, _istiod(cp), app=ISTIOD_APP))


def role(cp: spec.ControlPlane) -> Manifest:
    rules = [
        _rule(["networking.istio.io"], ["gateways"], ["create"]),
        _rule([""], ["secrets"], ["create", "delete", "get", "list", "update", "watch"]),
        _rule([""], ["configmaps"], ["delete"]),
        _rule(["coordination.k8s.io"], ["leases"], ["create", "get", "patch", "update"]),
    ]
    meta = _metadata(cp, _istiod(cp), app=ISTIOD_APP)
    return _object("rbac.authorization.k8s.io/v1", "Role", meta, rules=rules)


def role_binding(cp: spec.ControlPlane) -> Manifest:
    return _object(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        _metadata(cp, _istiod(cp), app=ISTIOD_APP),
        roleRef=_role_ref("Role", _istiod(cp)),
        subjects=[_subject(cp)],
    )


def cluster_role(cp: spec.ControlPlane) -> Manifest:
    meta = _metadata(cp, revisions.cluster_role_name(cp.ref), app=ISTIOD_APP, namespaced=False)
    return _object("rbac.authorization.k8s.io/v1", "ClusterRole", meta, rules=_cluster_rules(cp))


def cluster_role_binding(cp: spec.ControlPlane) -> Manifest:
    name = revisions.cluster_role_name(cp.ref)
    return _object(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        _metadata(cp, name, app=ISTIOD_APP, namespaced=False),
        roleRef=_role_ref("ClusterRole", name),
        subjects=[_subject(cp)],
    )


def _cluster_rules(cp: spec.ControlPlane) -> list[dict[str, Any]]:
    """upstream istiod's ClusterRole; webhook writes only on this revision's configurations."""
    read = ["get", "list", "watch"]
    own_webhooks = [revisions.mutating_webhook_name(cp.ref)]
    if cp.mode is spec.Mode.ACTIVE:
        own_webhooks.append(revisions.validating_webhook_name(cp.ref))
    istio_groups = [*sorted({*ISTIO_API_GROUPS, "config.istio.io"})]
    gateway_groups = ["gateway.networking.k8s.io", "networking.x-k8s.io"]
    return [
        _rule(["admissionregistration.k8s.io"], _WEBHOOK_KINDS, read),
        _rule(["admissionregistration.k8s.io"], _WEBHOOK_KINDS, ["patch", "update"], own_webhooks),
        _rule(istio_groups, ["*"], read),
        _rule(["networking.istio.io"], _WORKLOAD_ENTRIES, [*read, "create", "delete", "patch"]),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], read),
        _rule([""], ["endpoints", "namespaces", "nodes", "pods", "services"], read),
        _rule([""], ["secrets"], read),
        _rule([""], ["configmaps"], [*read, "create", "update"]),
        _rule(["discovery.k8s.io"], ["endpointslices"], read),
        _rule(["networking.k8s.io"], ["ingressclasses", "ingresses"], read),
        _rule(["networking.k8s.io"], ["ingresses/status"], ["*"]),
        _rule(
            ["certificates.k8s.io"], _CSR_RESOURCES, ["create", "delete", "get", "update", "watch"]
        ),
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        _rule(gateway_groups, ["*"], [*read, "patch", "update"]),
    ]


_WEBHOOK_KINDS: Final = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]
_WORKLOAD_ENTRIES: Final = ["workloadentries", "workloadentries/status"]
_CSR_RESOURCES: Final = [
    "certificatesigningrequests",
    "certificatesigningrequests/approval",
    "certificatesigningrequests/status",
]


def istiod_service(cp: spec.ControlPlane) -> Manifest:
    ports = [
        _service_port("grpc-xds", XDS_PORT),
        _service_port("https-dns", XDS_TLS_PORT),
        _service_port("https-webhook", 443, WEBHOOK_PORT),
        _service_port("http-monitoring", MONITORING_PORT),
    ]
    body: dict[str, Any] = {"ports": ports, "selector": _istiod_selector(cp), "type": "ClusterIP"}
    if cp.mode is spec.Mode.PASSIVE:
        body["clusterIP"] = "None"
    meta = _metadata(cp, _istiod(cp), app=ISTIOD_APP, extra={"istio": "istiod"})
    return _object("v1", "Service", meta, spec=body)


def istiod_deployment(cp: spec.ControlPlane) -> Manifest:
    meta = _metadata(cp, _istiod(cp), app=ISTIOD_APP, extra={"istio": "istiod"})
    body = {
        "replicas": cp.istiod.replicas,
        "selector": {"matchLabels": _istiod_selector(cp)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"},
        },
        "template": {
            "metadata": {
                "labels": {**_no_injection(), **_istiod_selector(cp), "istio": "istiod"},
                "annotations": {
                    injection.INJECT_LABEL: "false",
                    "prometheus.io/port": str(MONITORING_PORT),
                    "prometheus.io/scrape": "true",
                },
            },
            "spec": _istiod_pod_spec(cp),
        },
    }
    return _object("apps/v1", "Deployment", meta, spec=body)


def _istiod_pod_spec(cp: spec.ControlPlane) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "serviceAccountName": _istiod(cp),
        "containers": [_discovery_container(cp)],
        "volumes": [
            {"name": "local-certs", "emptyDir": {"medium": "Memory"}},
            _token_volume(),
            {"name": "cacerts", "secret": {"secretName": "cacerts", "optional": True}},
            _configmap_volume("config-volume", revisions.mesh_config_name(cp.ref)),
            _configmap_volume("inject", revisions.injector_configmap_name(cp.ref)),
        ],
    }
    return {**pod, **_scheduling(cp)}


def _discovery_container(cp: spec.ControlPlane) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "discovery",
        "image": cp.pilot_image,
        "args": [
            "discovery",
            f"--monitoringAddr=:{MONITORING_PORT}",
            "--log_output_level=default:info",
            "--domain",
            "cluster.local",
            "--keepaliveMaxServerConnectionAge",
            "30m",
        ],
        "ports": [
            _container_port("http-debug", DEBUG_PORT),
            _container_port("grpc-xds", XDS_PORT),
            _container_port("tls-xds", XDS_TLS_PORT),
            _container_port("https-webhooks", WEBHOOK_PORT),
            _container_port("http-monitoring", MONITORING_PORT),
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": DEBUG_PORT},
            "initialDelaySeconds": 1,
            "periodSeconds": 3,
            "timeoutSeconds": 5,
        },
        "env": _istiod_env(cp),
        "resources": dict(cp.istiod.resources or DEFAULT_ISTIOD_RESOURCES),
        "securityContext": RESTRICTED,
        "volumeMounts": [
            {"name": "local-certs", "mountPath": "/var/run/secrets/istio-dns"},
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
            {"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": True},
            {"name": "config-volume", "mountPath": "/etc/istio/config"},
            {"name": "inject", "mountPath": "/var/lib/istio/inject", "readOnly": True},
        ],
    }
    if cp.images.pull_policy:
        container["imagePullPolicy"] = cp.images.pull_policy
    return container


def _istiod_env(cp: spec.ControlPlane) -> list[Mapping[str, Any]]:
    """istiod's environment; a `spec.istiod.deployment.env` entry replaces one of the same name.

    Besides upstream's variables, the names istio-operator v2's istiod reads to find this
    revision's ConfigMaps and webhook configurations, so several istiods share one namespace.
    """
    validator = revisions.validating_webhook_name(cp.ref) if cp.mode is spec.Mode.ACTIVE else ""
    env: dict[str, Mapping[str, Any]] = {}
    for item in [
        _env("REVISION", cp.revision),
        _env("JWT_POLICY", "third-party-jwt"),
        _env("PILOT_CERT_PROVIDER", "istiod"),
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _env("CLUSTER_ID", cp.cluster_id),
        _env("ISTIOD_ADDR", revisions.istiod_address(cp.ref)),
        _env("PILOT_ENABLE_ANALYSIS", "false"),
        _env("ENABLE_CA_SERVER", "true"),
        _env("INJECTION_WEBHOOK_CONFIG_NAME", revisions.mutating_webhook_name(cp.ref)),
        _env("VALIDATION_WEBHOOK_CONFIG_NAME", validator),
        _env("MESHCONFIG_CONFIGMAP_NAME", revisions.mesh_config_name(cp.ref)),
        _env("INJECTOR_CONFIGMAP_NAME", revisions.injector_configmap_name(cp.ref)),
        *cp.istiod.env,
    ]:
        env[str(item["name"])] = item
    return list(env.values())


def pod_disruption_budget(cp: spec.ControlPlane) -> Manifest:
    """`minAvailable: 1`, as upstream: with one replica, voluntary evictions of istiod wait."""
    body = {"minAvailable": 1, "selector": {"matchLabels": _istiod_selector(cp)}}
    meta = _metadata(cp, _istiod(cp), app=ISTIOD_APP, extra={"istio": "istiod"})
    return _object("policy/v1", "PodDisruptionBudget", meta, spec=body)


# -- configuration --------------------------------------------------------------------------------


def mesh_config(cp: spec.ControlPlane) -> Manifest:
    """`istio-<cp>`: `mesh` is spec.meshConfig merged over the defaults (maps merge, lists
    are replaced), `meshNetworks` is empty (no multi-network gateways are rendered)."""
    mesh = merge(default_mesh_config(cp), cp.mesh_config)
    data = {"mesh": _yaml(mesh), "meshNetworks": _yaml({"networks": {}})}
    meta = _metadata(cp, revisions.mesh_config_name(cp.ref), extra={"istio": "meshconfig"})
    return _object("v1", "ConfigMap", meta, data=data)


def default_mesh_config(cp: spec.ControlPlane) -> dict[str, Any]:
    default_config: dict[str, Any] = {
        "discoveryAddress": revisions.istiod_address(cp.ref),
        "proxyMetadata": {},
    }
    if cp.mesh_id:
        default_config["meshId"] = cp.mesh_id
    return {
        "defaultConfig": default_config,
        "enablePrometheusMerge": True,
        "rootNamespace": cp.namespace,
        "trustDomain": "cluster.local",
    }


def injector_config(cp: spec.ControlPlane) -> Manifest:
    """`istio-sidecar-injector-<cp>`: `values` (JSON) as the injection template reads them,
    and `config`, the injection policy naming the default template."""
    data = {
        "config": _injection_policy(cp),
        "values": json.dumps(injector_values(cp), indent=2, sort_keys=True),
    }
    meta = _metadata(
        cp, revisions.injector_configmap_name(cp.ref), extra={"istio": "sidecar-injector"}
    )
    return _object("v1", "ConfigMap", meta, data=data)


def injector_values(cp: spec.ControlPlane) -> dict[str, Any]:
    """The Helm-style values istiod hands the template: `.Values.global.proxy.image` etc.

    `global.proxy.image` is a name under `global.hub` (`proxyv2`) or a full reference, exactly
    as istiod composes `.ProxyImage`; the sandbox's simulated istiod reads the same keys.
    """
    return {
        "global": {
            "hub": cp.images.hub,
            "tag": cp.images.tag,
            "imagePullPolicy": cp.images.pull_policy or "",
            "imagePullSecrets": list(cp.images.pull_secrets),
            "istioNamespace": cp.namespace,
            "jwtPolicy": "third-party-jwt",
            "logging": {"level": "default:info"},
            "meshID": cp.mesh_id or "",
            "multiCluster": {"clusterName": cp.cluster_id},
            "network": cp.network,
            "pilotCertProvider": "istiod",
            "proxy": {
                "clusterDomain": "cluster.local",
                "image": cp.proxy.image,
                "logLevel": cp.proxy.log_level,
                "resources": dict(cp.proxy.resources or DEFAULT_PROXY_RESOURCES),
                "statusPort": 15020,
            },
            "proxy_init": {"image": spec.DEFAULT_PROXY_IMAGE},
        },
        "istio_cni": {"enabled": False},
        "revision": cp.revision,
        "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": True},
        "version": cp.version,
    }


def _injection_policy(cp: spec.ControlPlane) -> str:
    summary = (
        f"# Injection policy of revision {cp.revision} (Istio {cp.version}): template "
        f"'sidecar' adds istio-proxy and istio-init ({cp.proxy_image}).\n"
    )
    policy = {
        "alwaysInjectSelector": [],
        "defaultTemplates": ["sidecar"],
        "injectedAnnotations": {},
        "neverInjectSelector": [],
        "policy": "enabled",
    }
    return summary + _yaml(policy)


# -- webhooks -------------------------------------------------------------------------------------


def injection_webhooks(cp: spec.ControlPlane) -> Manifest:
    """The two revision webhooks: namespace label first, then pod label in unlabelled ones."""
    rev = cp.revision
    not_opted_out = _expression(injection.INJECT_LABEL, "NotIn", ["false"])
    no_legacy_label = _expression(injection.INJECTION_LABEL, "DoesNotExist")
    by_namespace = {
        "namespaceSelector": {
            "matchExpressions": [_expression(revisions.REV_LABEL, "In", [rev]), no_legacy_label]
        },
        "objectSelector": {"matchExpressions": [not_opted_out]},
    }
    by_object = {
        "namespaceSelector": {
            "matchExpressions": [_expression(revisions.REV_LABEL, "DoesNotExist"), no_legacy_label]
        },
        "objectSelector": {
            "matchExpressions": [not_opted_out, _expression(revisions.REV_LABEL, "In", [rev])]
        },
    }
    webhooks = [
        {"name": NAMESPACE_WEBHOOK, **_injection_call(cp), **by_namespace},
        {"name": OBJECT_WEBHOOK, **_injection_call(cp), **by_object},
    ]
    meta = _metadata(
        cp, revisions.mutating_webhook_name(cp.ref), app="sidecar-injector", namespaced=False
    )
    return _object(
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", meta, webhooks=webhooks
    )


def _injection_call(cp: spec.ControlPlane) -> dict[str, Any]:
    return {
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": _webhook_service(cp, "/inject")},
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
            }
        ],
        "sideEffects": "None",
    }


def validation_webhook(cp: spec.ControlPlane) -> Manifest:
    """Validation of Istio config labelled for this revision; `Ignore` so that an istiod being
    down never blocks config writes."""
    webhook = {
        "name": VALIDATION_WEBHOOK,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": _webhook_service(cp, "/validate")},
        "failurePolicy": "Ignore",
        "objectSelector": {
            "matchExpressions": [_expression(revisions.REV_LABEL, "In", [cp.revision])]
        },
        "rules": [
            {
                "apiGroups": list(ISTIO_API_GROUPS),
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["*"],
            }
        ],
        "sideEffects": "None",
    }
    meta = _metadata(cp, revisions.validating_webhook_name(cp.ref), app="istiod", namespaced=False)
    return _object(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        meta,
        webhooks=[webhook],
    )


def _webhook_service(cp: spec.ControlPlane, path: str) -> dict[str, Any]:
    return {"name": _istiod(cp), "namespace": cp.namespace, "path": path, "port": 443}


# -- mesh expansion gateway -----------------------------------------------------------------------


def gateway_service_account(cp: spec.ControlPlane) -> Manifest:
    meta = _metadata(cp, expansion_gateway_name(cp), app=GATEWAY_APP)
    return _object("v1", "ServiceAccount", meta)


def gateway_deployment(cp: spec.ControlPlane) -> Manifest:
    meta = _metadata(cp, expansion_gateway_name(cp), app=GATEWAY_APP, extra=_gateway_extra())
    body = {
        "replicas": 1,
        "selector": {"matchLabels": _gateway_selector(cp)},
        "template": {
            "metadata": {
                "labels": {**_no_injection(), **_gateway_selector(cp), **_gateway_extra()},
                "annotations": {injection.INJECT_LABEL: "false"},
            },
            "spec": {
                "serviceAccountName": expansion_gateway_name(cp),
                "containers": [_gateway_container(cp)],
                "volumes": [
                    _token_volume(),
                    {"name": "istio-envoy", "emptyDir": {}},
                    {"name": "istio-data", "emptyDir": {}},
                    _configmap_volume("istiod-ca-cert", "istio-ca-root-cert"),
                ],
                **_pull_secrets(cp),
            },
        },
    }
    return _object("apps/v1", "Deployment", meta, spec=body)


def _gateway_container(cp: spec.ControlPlane) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "istio-proxy",
        "image": cp.proxy_image,
        "args": [
            "proxy",
            "router",
            "--domain",
            "$(POD_NAMESPACE).svc.cluster.local",
            f"--proxyLogLevel={cp.proxy.log_level}",
            "--log_output_level=default:info",
        ],
        "ports": [
            _container_port("status-port", 15021),
            _container_port("tls", 15443),
            _container_port("tcp-istiod", XDS_TLS_PORT),
            _container_port("tcp-webhook", WEBHOOK_PORT),
            _container_port("http-envoy-prom", 15090),
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021},
            "initialDelaySeconds": 1,
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "env": _gateway_env(cp),
        "resources": dict(cp.proxy.resources or DEFAULT_PROXY_RESOURCES),
        "securityContext": RESTRICTED,
        "volumeMounts": [
            {"name": "istio-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True},
            {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
            {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
            {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio", "readOnly": True},
        ],
    }
    if cp.images.pull_policy:
        container["imagePullPolicy"] = cp.images.pull_policy
    return container


def _gateway_env(cp: spec.ControlPlane) -> list[Mapping[str, Any]]:
    address = revisions.istiod_address(cp.ref)
    return [
        _env("PILOT_CERT_PROVIDER", "istiod"),
        _env("CA_ADDR", address),
        _env("PROXY_CONFIG", json.dumps({"discoveryAddress": address}, sort_keys=True)),
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("INSTANCE_IP", "status.podIP"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _env("ISTIO_META_CLUSTER_ID", cp.cluster_id),
        _env("ISTIO_META_NETWORK", cp.network),
        _env("ISTIO_META_REQUESTED_NETWORK_VIEW", cp.network),
        _env("ISTIO_META_ROUTER_MODE", "sni-dnat"),
        _env("ISTIO_META_WORKLOAD_NAME", expansion_gateway_name(cp)),
    ]


def gateway_service(cp: spec.ControlPlane) -> Manifest:
    ports = [
        _service_port("status-port", 15021),
        _service_port("tls", 15443),
        _service_port("tcp-istiod", XDS_TLS_PORT),
        _service_port("tcp-webhook", WEBHOOK_PORT),
    ]
    body = {"ports": ports, "selector": _gateway_selector(cp), "type": "LoadBalancer"}
    meta = _metadata(cp, expansion_gateway_name(cp), app=GATEWAY_APP, extra=_gateway_extra())
    return _object("v1", "Service", meta, spec=body)


def _gateway_selector(cp: spec.ControlPlane) -> dict[str, str]:
    return {"app": GATEWAY_APP, revisions.REV_LABEL: cp.revision}


def _gateway_extra() -> dict[str, str]:
    return {"istio": "meshexpansiongateway"}


# -- building blocks ------------------------------------------------------------------------------


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A deep merge: mappings merge key by key, anything else in `override` replaces."""
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = merge(current, value)
        else:
            out[key] = value
    return out


def _fresh(objects: list[Manifest]) -> list[Manifest]:
    """A JSON round trip: new dicts and lists throughout, no aliasing between objects (which
    would leak mutations and make YAML dumps use anchors), and proof that all of it is JSON."""
    fresh: list[Manifest] = json.loads(json.dumps(objects))
    return fresh


def _object(api_version: str, kind: str, metadata: Manifest, **body: Any) -> Manifest:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def _metadata(
    cp: spec.ControlPlane,
    name: str,
    *,
    app: str | None = None,
    extra: Mapping[str, str] | None = None,
    namespaced: bool = True,
) -> Manifest:
    all_labels = {**({"app": app} if app else {}), **(extra or {}), **labels(cp)}
    meta: Manifest = {"name": name, "labels": dict(sorted(all_labels.items()))}
    if namespaced:
        meta["namespace"] = cp.namespace
        if cp.uid:
            meta["ownerReferences"] = [_owner_reference(cp)]
    return meta


def _owner_reference(cp: spec.ControlPlane) -> dict[str, Any]:
    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "name": cp.name,
        "uid": cp.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _istiod(cp: spec.ControlPlane) -> str:
    return revisions.istiod_name(cp.ref)


def _istiod_selector(cp: spec.ControlPlane) -> dict[str, str]:
    return {"app": ISTIOD_APP, revisions.REV_LABEL: cp.revision}


def _no_injection() -> dict[str, str]:
    """Pod label keeping istio's own pods out of every injection webhook's objectSelector:
    without it, an istiod pod labelled `istio.io/rev` in an unlabelled namespace would be sent
    to its own (not yet running) webhook, and with `failurePolicy: Fail` never be created."""
    return {injection.INJECT_LABEL: "false"}


def _scheduling(cp: spec.ControlPlane) -> dict[str, Any]:
    """istiod's node selector and tolerations (`spec.istiod.deployment`), and pull secrets."""
    out = _pull_secrets(cp)
    if cp.istiod.node_selector:
        out["nodeSelector"] = dict(sorted(cp.istiod.node_selector.items()))
    if cp.istiod.tolerations:
        out["tolerations"] = [dict(t) for t in cp.istiod.tolerations]
    return out


def _pull_secrets(cp: spec.ControlPlane) -> dict[str, Any]:
    if not cp.images.pull_secrets:
        return {}
    return {"imagePullSecrets": [{"name": name} for name in cp.images.pull_secrets]}


def _rule(
    groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def _subject(cp: spec.ControlPlane) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": _istiod(cp), "namespace": cp.namespace}


def _expression(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        expression["values"] = values
    return expression


def _service_port(name: str, port: int, target: int | None = None) -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": "TCP", "targetPort": target or port}


def _container_port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _token_volume() -> dict[str, Any]:
    token = {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}
    return {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": token}]}}


def _configmap_volume(name: str, configmap: str) -> dict[str, Any]:
    return {"name": name, "configMap": {"name": configmap}}


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)
