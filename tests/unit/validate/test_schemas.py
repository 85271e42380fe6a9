"""Schema validation: per kind, a valid resource passes and a broken one fails as expected."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.validate.builders import obj

from meshcanary.validate import schemas

VALID: dict[str, dict[str, Any]] = {
    "VirtualService": {
        "hosts": ["reviews"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/"}, "headers": {"x": {"exact": "y"}}}],
                "route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 100}],
                "timeout": "1.5s",
                "retries": {"attempts": 3, "perTryTimeout": "2s"},
            }
        ],
        "tls": [{"match": [{"sniHosts": ["a"]}], "route": [{"destination": {"host": "a"}}]}],
    },
    "DestinationRule": {
        "host": "reviews",
        "trafficPolicy": {
            "loadBalancer": {"simple": "ROUND_ROBIN"},
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
    },
    "Gateway": {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": ["*"],
                "tls": {"mode": "SIMPLE", "credentialName": "cert"},
            }
        ],
    },
    "ServiceEntry": {
        "hosts": ["api.example.com"],
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
    },
    "Sidecar": {
        "egress": [{"hosts": ["./*", "istio-system/*"]}],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
    },
    "EnvoyFilter": {
        "priority": 10,
        "configPatches": [
            {
                "applyTo": "HTTP_FILTER",
                "match": {"context": "SIDECAR_INBOUND", "proxy": {"proxyVersion": "^1\\.17.*"}},
                "patch": {"operation": "INSERT_FIRST", "value": {"name": "x"}},
            }
        ],
    },
    "AuthorizationPolicy": {
        "selector": {"matchLabels": {"app": "web"}},
        "action": "DENY",
        "rules": [
            {"from": [{"source": {"namespaces": ["x"]}}], "when": [{"key": "k", "values": ["v"]}]}
        ],
    },
    "PeerAuthentication": {
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {"8080": {"mode": "DISABLE"}},
    },
    "RequestAuthentication": {"jwtRules": [{"issuer": "https://issuer", "jwksUri": "https://j"}]},
    "Telemetry": {
        "accessLogging": [{"providers": [{"name": "envoy"}], "match": {"mode": "CLIENT"}}],
        "metrics": [{"providers": [{"name": "prometheus"}], "reportingInterval": "10s"}],
    },
    "WorkloadEntry": {"address": "10.0.0.1", "ports": {"http": 8080}, "labels": {"app": "vm"}},
}

BROKEN: list[tuple[str, dict[str, Any], str]] = [
    ("VirtualService", {"hosts": "reviews"}, "MC0301"),
    ("VirtualService", {"hosts": ["a"], "http": [{"timeout": "soon"}]}, "MC0301"),
    ("VirtualService", {"hosts": ["a"], "tls": [{"route": []}]}, "MC0302"),
    ("DestinationRule", {"trafficPolicy": {}}, "MC0302"),
    (
        "DestinationRule",
        {"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}},
        "MC0303",
    ),
    ("Gateway", {"servers": [{"hosts": ["*"]}]}, "MC0302"),
    (
        "Gateway",
        {"servers": [{"port": {"number": "80", "protocol": "HTTP"}, "hosts": ["*"]}]},
        "MC0301",
    ),
    ("ServiceEntry", {"hosts": ["a"], "resolution": "MAGIC"}, "MC0303"),
    ("Sidecar", {"egress": [{"port": {"number": 80, "protocol": "HTTP"}}]}, "MC0302"),
    ("EnvoyFilter", {"configPatches": [{"patch": {"operation": "PREPEND"}}]}, "MC0303"),
    ("AuthorizationPolicy", {"action": "allow"}, "MC0303"),
    ("PeerAuthentication", {"mtls": {"mode": "ON"}}, "MC0303"),
    ("RequestAuthentication", {"jwtRules": [{"jwksUri": "x"}]}, "MC0302"),
    ("Telemetry", {"accessLogging": [{"disabled": "yes"}]}, "MC0301"),
    ("WorkloadEntry", {"address": "a", "ports": {"http": "8080"}}, "MC0301"),
    ("WorkloadEntry", {"adress": "a"}, "MC0304"),
]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_resources_pass(kind: str) -> None:
    assert schemas.analyze([obj(kind, VALID[kind])]) == []


@pytest.mark.parametrize(("kind", "spec", "code"), BROKEN)
def test_broken_resources_fail(kind: str, spec: dict[str, Any], code: str) -> None:
    assert code in [f.code for f in schemas.analyze([obj(kind, spec)])]


def test_every_kind_of_the_brief_has_a_spec_and_tests() -> None:
    kinds = {
        "VirtualService",
        "DestinationRule",
        "Gateway",
        "ServiceEntry",
        "Sidecar",
        "EnvoyFilter",
        "AuthorizationPolicy",
        "PeerAuthentication",
        "RequestAuthentication",
        "Telemetry",
        "WorkloadEntry",
    }
    assert set(schemas.SPECS) == kinds == set(VALID) == {kind for kind, _, _ in BROKEN}


def test_unknown_field_is_a_warning_and_names_the_path() -> None:
    [found] = schemas.analyze([obj("VirtualService", {"hosts": ["a"], "htpp": []})])
    assert (found.code, found.severity) == ("MC0304", "Warning")
    assert "spec.htpp" in found.message


def test_booleans_are_not_integers_and_other_kinds_are_ignored() -> None:
    assert schemas.analyze([obj("WorkloadEntry", {"weight": True})])[0].code == "MC0301"
    assert schemas.analyze([obj("WasmPlugin", {"anything": 1})]) == []
