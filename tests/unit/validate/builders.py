"""Builders of API JSON for the validation tests: an SMM-style mesh with one or two revisions."""

from __future__ import annotations

import json
from typing import Any

from meshcanary.mesh import inventory
from meshcanary.validate.snapshot import ValidationSnapshot

ISTIO = "istio-system"
NOT_OPTED_OUT = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}


def rev(cp: str) -> str:
    return f"{cp}.{ISTIO}"


def control_plane(cp: str, version: str) -> dict[str, Any]:
    return {
        "kind": "IstioControlPlane",
        "metadata": {"name": cp, "namespace": ISTIO},
        "spec": {"version": version},
        "status": {"status": "Available"},
    }


def webhook_configuration(cp: str, service: str | None = None) -> dict[str, Any]:
    """The revision's `rev.namespace` injection webhook (enough for namespace selection)."""
    client = {"service": {"name": service or f"istiod-{cp}", "namespace": ISTIO}}
    selected = {"key": "istio.io/rev", "operator": "In", "values": [rev(cp)]}
    no_legacy = {"key": "istio-injection", "operator": "DoesNotExist"}
    return {
        "metadata": {
            "name": f"istio-sidecar-injector-{cp}-{ISTIO}",
            "labels": {"istio.io/rev": rev(cp)},
        },
        "webhooks": [
            {
                "name": "rev.namespace.sidecar-injector.istio.io",
                "clientConfig": client,
                "namespaceSelector": {"matchExpressions": [selected, no_legacy]},
                "objectSelector": {"matchExpressions": [NOT_OPTED_OUT]},
            }
        ],
    }


def catch_all_webhook(name: str, cp: str) -> dict[str, Any]:
    """An injection webhook with no selectors: it fires everywhere (a stale, broken config)."""
    client = {"service": {"name": f"istiod-{cp}", "namespace": ISTIO}}
    return {
        "metadata": {"name": name, "labels": {"istio.io/rev": rev(cp)}},
        "webhooks": [{"name": "namespace.sidecar-injector.istio.io", "clientConfig": client}],
    }


def validating_webhook(name: str, service: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "rev.validation.istio.io",
                "clientConfig": {"service": {"name": service, "namespace": ISTIO}},
            }
        ],
    }


def service(name: str, namespace: str = ISTIO) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": dict(labels)}}


def pod(
    namespace: str,
    name: str,
    cp: str | None = None,
    version: str = "1.15.3",
    *,
    owned: bool = True,
    annotations: dict[str, str] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    """A pod, injected by `cp` with proxy `version` when `cp` is given."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    containers: list[dict[str, Any]] = [{"name": "app", "image": "nginx"}]
    extra = dict(annotations or {})
    if cp is not None:
        extra["istio.io/rev"] = rev(cp)
        extra["sidecar.istio.io/status"] = json.dumps({"revision": rev(cp)})
        containers.append({"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{version}"})
    meta["annotations"] = extra
    if owned:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": f"{name}-rs", "controller": True}]
    return {"metadata": meta, "spec": {"containers": containers}, "status": {"phase": phase}}


def mesh(
    *cps: tuple[str, str],
    namespaces: list[dict[str, Any]] | None = None,
    pods: list[dict[str, Any]] | None = None,
    webhooks: list[dict[str, Any]] | None = None,
    config: list[dict[str, Any]] | None = None,
    validating: list[dict[str, Any]] | None = None,
    services: list[dict[str, Any]] | None = None,
) -> ValidationSnapshot:
    """A snapshot with control planes `(cp, version)`, their webhooks and istiod Services."""
    return ValidationSnapshot(
        mesh=inventory.MeshSnapshot(
            control_planes=[control_plane(cp, version) for cp, version in cps],
            webhook_configurations=[webhook_configuration(cp) for cp, _ in cps] + (webhooks or []),
            namespaces=namespaces or [],
            pods=pods or [],
        ),
        config=config or [],
        validating_webhook_configurations=validating or [],
        services=[service(f"istiod-{cp}") for cp, _ in cps] + (services or []),
    )


def obj(
    kind: str, spec: dict[str, Any], name: str = "x", ns: str = "app", **meta: Any
) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": ns, **meta}, "spec": spec}
