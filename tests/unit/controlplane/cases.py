"""The IstioControlPlane resources the controlplane tests share: minimal, full, passive."""

from __future__ import annotations

from typing import Any

REV = "cp-v113x.istio-system"
UID = "5b4f3c2a-0000-4000-8000-000000000113"

MINIMAL: dict[str, Any] = {
    "apiVersion": "meshcanary.io/v1alpha1",
    "kind": "IstioControlPlane",
    "metadata": {"name": "cp-v113x", "namespace": "istio-system", "uid": UID, "generation": 1},
    "spec": {"version": "1.13.9"},
}

FULL: dict[str, Any] = {
    "apiVersion": "meshcanary.io/v1alpha1",
    "kind": "IstioControlPlane",
    "metadata": {
        "name": "cp-v115x",
        "namespace": "istio-system",
        "uid": "uid-115",
        "generation": 4,
    },
    "spec": {
        "version": "1.15.3",
        "mode": "ACTIVE",
        "networkName": "network2",
        "meshExpansion": {"enabled": True},
        "containerImageConfiguration": {
            "hub": "registry.example.com/istio",
            "tag": "1.15.3-distroless",
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecrets": [{"name": "pull-secret"}],
        },
        "istiod": {
            "deployment": {
                "replicas": 2,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                "env": [
                    {"name": "PILOT_ENABLE_ANALYSIS", "value": "true"},
                    {"name": "PILOT_TRACE_SAMPLING", "value": "5"},
                ],
                "nodeSelector": {"zone": "b", "kubernetes.io/os": "linux"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "istio"}],
            }
        },
        "proxy": {
            "image": "registry.example.com/custom/proxy:1.15.3",
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
            "logLevel": "info",
        },
        "meshConfig": {
            "accessLogFile": "/dev/stdout",
            "defaultConfig": {"holdApplicationUntilProxyStarts": True},
        },
        "clusterID": "east",
        "meshID": "mesh1",
    },
}

PASSIVE: dict[str, Any] = {
    "metadata": {"name": "cp-passive", "namespace": "istio-system"},
    "spec": {"version": "1.15.3", "mode": "PASSIVE"},
}

CASES = {"active-minimal": MINIMAL, "active-full": FULL, "passive": PASSIVE}
