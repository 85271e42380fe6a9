"""The demo's control planes and applications, as data (JSON documents kubectl applies).

bookshop has eight services, one of them a StatefulSet and one a DaemonSet, so the migration has
every kind of controller to restart; payments is small, the first to move and the one rolled back.
"""

from __future__ import annotations

import json
from typing import Any

ISTIO_NAMESPACE = "istio-system"
OLD, NEW = ("cp-v113x", "1.13.9"), ("cp-v115x", "1.15.3")
APPS: dict[str, list[tuple[str, str, int]]] = {
    "payments": [("Deployment", "checkout", 2), ("Deployment", "ledger", 1)],
    "bookshop": [
        ("Deployment", "productpage", 2),
        ("Deployment", "details", 1),
        ("Deployment", "reviews-v1", 1),
        ("Deployment", "reviews-v2", 1),
        ("Deployment", "ratings", 1),
        ("Deployment", "catalog", 1),
        ("StatefulSet", "db", 2),
        ("DaemonSet", "log-agent", 0),
    ],
}


def control_plane(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "meshcanary.io/v1alpha1",
        "kind": "IstioControlPlane",
        "metadata": {"name": name, "namespace": ISTIO_NAMESPACE},
        "spec": {
            "version": version,
            "mode": "ACTIVE",
            "networkName": "network1",
            "meshExpansion": {"enabled": True},
        },
    }


def namespace(name: str, revision: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"istio.io/rev": revision}},
    }


def workload(kind: str, name: str, replicas: int, ns: str) -> list[dict[str, Any]]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": name,
                        "image": f"example.com/{name}:1.0",
                        "ports": [{"containerPort": 8080}],
                    },
                ]
            },
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    controller = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    return [controller, service]


def manifest(objects: list[dict[str, Any]]) -> str:
    return "\n---\n".join(json.dumps(obj) for obj in objects)


def app_manifest(ns: str) -> str:
    objects: list[dict[str, Any]] = []
    for kind, name, replicas in APPS[ns]:
        objects += workload(kind, name, replicas, ns)
    return manifest(objects)
