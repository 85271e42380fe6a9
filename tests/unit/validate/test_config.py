"""Config analyzers: each code triggered by a fixture, and not by its corrected twin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.validate.builders import obj

from meshcanary.mesh.versions import Version, parse
from meshcanary.validate import config, facts

V115 = parse("1.15.3")
V117 = parse("1.17")


def codes(objects: list[dict[str, Any]], current: Version | None, target: Version) -> list[str]:
    return sorted(f.code for f in config.analyze(objects, current, target))


def envoy_filter(patch: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return obj("EnvoyFilter", {"configPatches": [patch], **spec})


def relative(proxy_version: str | None = "^1\\.1[5-9].*", operation: str = "INSERT_BEFORE"):
    match: dict[str, Any] = {"context": "SIDECAR_INBOUND"}
    if proxy_version is not None:
        match["proxy"] = {"proxyVersion": proxy_version}
    return {"applyTo": "HTTP_FILTER", "match": match, "patch": {"operation": operation}}


def test_unknown_target_is_a_warning() -> None:
    assert codes([], V115, parse("1.40")) == ["MC0001"]
    assert codes([], V115, V117) == []


@pytest.mark.parametrize(
    ("kind", "bad", "good", "code", "target"),
    [
        (
            "Gateway",
            {"servers": [{"tls": {"mode": "ISTIO_MUTUAL", "credentialName": "c"}}]},
            {"servers": [{"tls": {"mode": "MUTUAL", "credentialName": "c"}}]},
            "MC0101",
            "1.17",
        ),
        (
            "DestinationRule",
            {"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "LEAST_CONN"}}},
            {"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}},
            "MC0102",
            "1.17",
        ),
        (
            "Gateway",
            {"servers": [{"port": {"number": 80, "targetPort": 8080}}]},
            {"servers": [{"port": {"number": 80}}]},
            "MC0102",
            "1.17",
        ),
        (
            "DestinationRule",
            {"host": "a", "trafficPolicy": {"tls": {"mode": "SIMPLE"}, "loadBalancer": {}}},
            {
                "host": "a",
                "trafficPolicy": {
                    "tls": {"mode": "SIMPLE", "sni": "a", "caCertificates": "/ca"},
                    "loadBalancer": {},
                },
            },
            "MC0104",
            "1.21",
        ),
    ],
)
def test_field_facts(
    kind: str, bad: dict[str, Any], good: dict[str, Any], code: str, target: str
) -> None:
    assert code in codes([obj(kind, bad)], V115, parse(target))
    assert code not in codes([obj(kind, good)], V115, parse(target))


def test_changed_default_only_when_the_upgrade_crosses_it() -> None:
    no_lb = [obj("DestinationRule", {"host": "a"})]
    assert codes(no_lb, parse("1.13"), parse("1.14")) == ["MC0104"]
    assert codes(no_lb, parse("1.14"), parse("1.15")) == []
    assert codes(no_lb, None, parse("1.15")) == []


def test_deprecated_only_from_its_release() -> None:
    least_conn = [
        obj(
            "DestinationRule",
            {"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "LEAST_CONN"}}},
        )
    ]
    assert "MC0102" not in codes(least_conn, parse("1.13"), parse("1.13"))


def test_api_version_not_served_by_target() -> None:
    applied = json.dumps({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"})
    annotations = {config.LAST_APPLIED: applied}
    v1 = obj("VirtualService", {}, annotations=annotations)
    assert codes([v1], V115, V117) == ["MC0103"]
    assert codes([v1], V115, parse("1.22")) == []
    managed = obj(
        "AuthorizationPolicy",
        {},
        managedFields=[{"apiVersion": "security.istio.io/v1", "manager": "kubectl"}],
    )
    assert codes([managed], parse("1.15"), parse("1.16")) == ["MC0103"]
    assert codes([managed], parse("1.15"), V117) == []


def test_relative_patch_with_proxy_version() -> None:
    assert codes([envoy_filter(relative())], V115, V117) == ["MC0105"]
    assert codes([envoy_filter(relative(), priority=10)], V115, V117) == []
    assert codes([envoy_filter(relative(None))], V115, V117) == []
    assert codes([envoy_filter(relative(operation="INSERT_FIRST"))], V115, V117) == []


def test_proxy_version_that_misses_the_target() -> None:
    narrow = envoy_filter({**relative("^1\\.15.*"), "patch": {"operation": "MERGE"}})
    wide = envoy_filter({**relative("^1\\.1[5-9].*"), "patch": {"operation": "MERGE"}})
    assert codes([narrow], V115, V117) == ["MC0106"]
    assert codes([wide], V115, V117) == []
    assert codes([narrow], None, V117) == []


def test_renamed_and_removed_filter_names() -> None:
    def named(name: str) -> dict[str, Any]:
        match = {"listener": {"filterChain": {"filter": {"name": name}}}}
        return envoy_filter(
            {"applyTo": "HTTP_FILTER", "match": match, "patch": {"operation": "MERGE"}}
        )

    old = named("envoy.http_connection_manager")
    assert codes([old], V115, V117) == []  # still matched before 1.19
    found = config.analyze([old], V115, parse("1.19"))
    assert [f.code for f in found] == ["MC0107"]
    assert "envoy.filters.network.http_connection_manager" in found[0].fix
    assert (
        codes([named("envoy.filters.network.http_connection_manager")], V115, parse("1.19")) == []
    )
    assert codes([named("sni_verifier")], parse("1.19"), parse("1.20")) == ["MC0107"]


def test_xds_v2_type_urls() -> None:
    def typed(url: str) -> dict[str, Any]:
        value = {"name": "lua", "typed_config": {"@type": url}}
        return envoy_filter(
            {"applyTo": "HTTP_FILTER", "patch": {"operation": "ADD", "value": value}}
        )

    v2 = typed("type.googleapis.com/envoy.config.filter.http.lua.v2.Lua")
    v3 = typed("type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")
    assert codes([v2], parse("1.17"), parse("1.19")) == ["MC0108"]
    assert codes([v2], V115, V117) == []
    assert codes([v3], parse("1.17"), parse("1.19")) == []


def test_untyped_config() -> None:
    value = {"name": "envoy.filters.http.lua", "config": {"inlineCode": "x"}}
    untyped = envoy_filter(
        {"applyTo": "HTTP_FILTER", "patch": {"operation": "ADD", "value": value}}
    )
    typed_value = {"name": "envoy.filters.http.lua", "typed_config": {"@type": "t/x.v3.Lua"}}
    typed = envoy_filter(
        {"applyTo": "HTTP_FILTER", "patch": {"operation": "ADD", "value": typed_value}}
    )
    assert codes([untyped], parse("1.17"), parse("1.19")) == ["MC0109"]
    assert codes([typed], parse("1.17"), parse("1.19")) == []


def test_every_fact_cites_a_source_and_a_known_kind() -> None:
    from meshcanary.validate import schemas

    for fact in facts.FIELD_FACTS:
        assert fact.source and fact.kind in schemas.SPECS
    for rename in facts.FILTER_RENAMES:
        assert rename.source


def test_lookup_and_holds() -> None:
    value = {"a": [{"b": 1}, {"b": 2}, {}]}
    assert facts.lookup(value, "a[*].b") == [1, 2]
    assert facts.holds(value, {"a[*].b": (1,)})
    assert facts.holds({}, {"x": facts.ABSENT})
    assert not facts.holds({"x": 0}, {"x": facts.ABSENT})
