"""Hand-written istiod installs for e2e tests, shaped like istio-operator v2's (SMM-style) output.

Deliberately independent of meshcanary's own renderer: the sandbox must behave like a cluster
with any Istio install, not only ours.
"""

from __future__ import annotations

import json
from typing import Any

ISTIO_NS = "istio-system"


def smm_revision(cp: str, version: str, namespace: str = ISTIO_NS) -> list[dict[str, object]]:
    """istiod-<cp> Deployment and Service plus the revision's injection webhooks."""
    rev = f"{cp}.{namespace}"
    labels = {"app": "istiod", "istio": "istiod", "istio.io/rev": rev}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"istiod-{cp}", "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"sidecar.istio.io/inject": "false"},
                    },
                    "spec": {
                        "containers": [
                            {"name": "discovery", "image": f"docker.io/istio/pilot:{version}"}
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"istiod-{cp}", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [
                    {"name": "https-webhook", "port": 443, "targetPort": 15017},
                    {"name": "grpc-xds", "port": 15010},
                ],
            },
        },
        injection_webhooks(
            f"istio-sidecar-injector-{cp}-{namespace}", rev, f"istiod-{cp}", namespace
        ),
    ]


def injection_webhooks(
    name: str, rev: str, service: str, namespace: str = ISTIO_NS
) -> dict[str, object]:
    """The two revision webhooks of istio-operator v2 / the upstream chart."""
    client = {"service": {"name": service, "namespace": namespace, "path": "/inject", "port": 443}}
    common = {
        "clientConfig": client,
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"istio.io/rev": rev}},
        "webhooks": [
            {
                **common,
                "name": "rev.namespace.sidecar-injector.istio.io",
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "istio.io/rev", "operator": "In", "values": [rev]},
                        {"key": "istio-injection", "operator": "DoesNotExist"},
                    ]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
                    ]
                },
            },
            {
                **common,
                "name": "rev.object.sidecar-injector.istio.io",
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "istio.io/rev", "operator": "DoesNotExist"},
                        {"key": "istio-injection", "operator": "DoesNotExist"},
                    ]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {
                            "key": "sidecar.istio.io/inject",
                            "operator": "NotIn",
                            "values": ["false"],
                        },
                        {"key": "istio.io/rev", "operator": "In", "values": [rev]},
                    ]
                },
            },
        ],
    }


def as_manifest(objects: list[dict[str, object]]) -> str:
    """A YAML stream of JSON documents (kubectl validates a `v1 List` only through the
    OpenAPI v2 document, which the sandbox does not serve)."""
    return "\n---\n".join(json.dumps(obj) for obj in objects)


def workload(
    kind: str, name: str, replicas: int = 1, pod_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A Deployment, StatefulSet or DaemonSet of one nginx container, selected by `app=<name>`."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": {**labels, **(pod_labels or {})}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def app(name: str, replicas: int = 2, pod_labels: dict[str, str] | None = None) -> str:
    return json.dumps(workload("Deployment", name, replicas, pod_labels))
