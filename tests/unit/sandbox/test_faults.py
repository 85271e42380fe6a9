"""Faults in process: validation of every field, admission, request matching, the seeded
fraction, and API faults as HTTP clients see them (status bodies, latency, dropped watches)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from meshcanary.cli.app import app as cli
from meshcanary.sandbox import faults
from meshcanary.sandbox.apiserver import errors, http
from meshcanary.sandbox.apiserver.cluster import Cluster, WriteOptions
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Store

OPTS = WriteOptions(field_manager="test")
TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fault(name: str = "f", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": faults.API_VERSION,
        "kind": faults.KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def api(**fields: Any) -> dict[str, Any]:
    return fault(api=fields)


def pod(**fields: Any) -> dict[str, Any]:
    return fault(pod=fields)


def rt(cluster: Cluster, group: str, plural: str) -> ResourceType:
    found = cluster.registry.get(group, "v1", plural)
    assert found is not None
    return found


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        pod(effect="NeverReady"),
        pod(effect="CrashLoop", proxyVersion="1.15.*", podSelector={"matchLabels": {"a": "b"}}),
        pod(
            effect="SlowStart",
            startDelaySeconds=5,
            namespaceSelector={"matchExpressions": [{"key": "team", "operator": "Exists"}]},
        ),
        api(effect="Error"),
        api(effect="Error", code=409, fraction=0.1, verbs=["create"], resources=["pods"]),
        api(effect="Error", code=429, namespaces=["default"], resources=["deployments.apps"]),
        api(effect="Latency", latencyMs=250, resources=["pods/status"]),
        api(effect="DropWatch", afterSeconds=0.5, verbs=["watch", "list"]),
        api(effect="DropWatch", fraction=1),
    ],
)
def test_valid_faults_have_no_causes(obj: dict[str, Any]) -> None:
    assert faults.validate(obj) == []


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"metadata": {"name": "f"}}, "spec", "Required value"),
    (fault(), "spec", "exactly one of spec.pod or spec.api"),
    (fault(pod={"effect": "NeverReady"}, api={"effect": "Error"}), "spec.api", "Forbidden"),
    (fault(pod="NeverReady"), "spec.pod", "must be an object"),
    (fault(api=[]), "spec.api", "must be an object"),
    (fault(api={"effect": "Error"}, extra=1), "spec.extra", "unknown field"),
    (pod(), "spec.pod.effect", "Required value"),
    (pod(effect="Sleepy"), "spec.pod.effect", 'Unsupported value: "Sleepy"'),
    (pod(effect="NeverReady", proxyVersion=""), "spec.pod.proxyVersion", "glob on an image tag"),
    (pod(effect="NeverReady", proxyVersion="1.15 *"), "spec.pod.proxyVersion", "Invalid value"),
    (pod(effect="NeverReady", proxyVersion=115), "spec.pod.proxyVersion", "Invalid value: 115"),
    (
        pod(effect="NeverReady", namespaceSelector={"matchLabels": {"team": "a b"}}),
        "spec.pod.namespaceSelector",
        "Invalid value",
    ),
    (
        pod(
            effect="NeverReady", podSelector={"matchExpressions": [{"key": "a", "operator": "Is"}]}
        ),
        "spec.pod.podSelector",
        "not a valid label selector operator",
    ),
    (pod(effect="NeverReady", podSelector="app=web"), "spec.pod.podSelector", "must be an object"),
    (
        pod(effect="NeverReady", startDelaySeconds=5),
        "spec.pod.startDelaySeconds",
        "only valid when effect is SlowStart",
    ),
    (pod(effect="SlowStart", startDelaySeconds=0), "spec.pod.startDelaySeconds", "at least 1"),
    (pod(effect="SlowStart", startDelaySeconds=1.5), "spec.pod.startDelaySeconds", "an integer"),
    (pod(effect="SlowStart", startDelaySeconds="30"), "spec.pod.startDelaySeconds", "an integer"),
    (pod(effect="NeverReady", fraction=0.5), "spec.pod.fraction", "unknown field"),
    (api(), "spec.api.effect", "Required value"),
    (api(effect="Timeout"), "spec.api.effect", "Unsupported value"),
    (
        api(effect="Error", code=404),
        "spec.api.code",
        'Unsupported value: 404: supported values: "500"',
    ),
    (api(effect="Error", code="500"), "spec.api.code", 'Unsupported value: "500"'),
    (api(effect="Error", code=500.0), "spec.api.code", "Unsupported value: 500.0"),
    (
        api(effect="Latency", latencyMs=5, code=500),
        "spec.api.code",
        "only valid when effect is Error",
    ),
    (api(effect="Error", fraction=0), "spec.api.fraction", "greater than 0 and at most 1"),
    (api(effect="Error", fraction=1.5), "spec.api.fraction", "greater than 0 and at most 1"),
    (api(effect="Error", fraction=True), "spec.api.fraction", "must be a number"),
    (api(effect="Error", fraction="10%"), "spec.api.fraction", "must be a number"),
    (api(effect="Latency"), "spec.api.latencyMs", "Required value"),
    (api(effect="Latency", latencyMs=0), "spec.api.latencyMs", "at least 1"),
    (api(effect="Latency", latencyMs=2.5), "spec.api.latencyMs", "an integer"),
    (api(effect="Latency", latencyMs=10**9), "spec.api.latencyMs", "at most 600000"),
    (api(effect="Error", latencyMs=5), "spec.api.latencyMs", "only valid when effect is Latency"),
    (api(effect="DropWatch", afterSeconds=0), "spec.api.afterSeconds", "greater than 0"),
    (api(effect="DropWatch", afterSeconds=-1), "spec.api.afterSeconds", "greater than 0"),
    (api(effect="Error", afterSeconds=1), "spec.api.afterSeconds", "effect is DropWatch"),
    (api(effect="Error", verbs=[]), "spec.api.verbs", "non-empty list"),
    (api(effect="Error", verbs="get"), "spec.api.verbs", "non-empty list"),
    (api(effect="Error", verbs=["get", "fetch"]), "spec.api.verbs[1]", 'Invalid value: "fetch"'),
    (api(effect="Error", verbs=["get", "get"]), "spec.api.verbs[1]", 'Duplicate value: "get"'),
    (
        api(effect="DropWatch", verbs=["list"]),
        "spec.api.verbs",
        'must include "watch" for a DropWatch fault',
    ),
    (api(effect="Error", resources=["Pods"]), "spec.api.resources[0]", "resource plural"),
    (api(effect="Error", resources=[3]), "spec.api.resources[0]", "must be a string"),
    (api(effect="Error", resources=["faults"]), "spec.api.resources[0]", "exempt"),
    (
        api(effect="Error", resources=["faults.sandbox.meshcanary.io/status"]),
        "spec.api.resources[0]",
        "exempt",
    ),
    (api(effect="Error", namespaces=["Bad_NS"]), "spec.api.namespaces[0]", "RFC 1123"),
    (api(effect="Error", namespaces=[]), "spec.api.namespaces", "non-empty list"),
    (api(effect="Error", selector={}), "spec.api.selector", "unknown field"),
]


@pytest.mark.parametrize(("obj", "path", "message"), INVALID)
def test_each_bad_field_is_named(obj: dict[str, Any], path: str, message: str) -> None:
    causes = faults.validate(obj)
    assert any(p == path and message in m for p, m in causes), causes


def test_every_problem_is_reported_at_once() -> None:
    causes = faults.validate(api(effect="Error", code=1, fraction=2, verbs=["x"]))
    assert [p for p, _ in causes] == ["spec.api.code", "spec.api.fraction", "spec.api.verbs[0]"]


def test_an_invalid_effect_does_not_also_blame_effect_specific_fields() -> None:
    assert [p for p, _ in faults.validate(api(effect="Nope", code=500))] == ["spec.api.effect"]


@pytest.mark.parametrize(
    ("obj", "family", "expected"),
    [
        (pod(effect="SlowStart"), "pod", {"startDelaySeconds": 30}),
        (pod(effect="NeverReady"), "pod", {}),
        (api(effect="Error"), "api", {"code": 500, "fraction": 1}),
        (api(effect="Latency", latencyMs=5), "api", {"fraction": 1, "latencyMs": 5}),
        (api(effect="DropWatch"), "api", {"afterSeconds": 1, "fraction": 1}),
    ],
)
def test_defaults_fill_the_effect_fields(
    obj: dict[str, Any], family: str, expected: dict[str, Any]
) -> None:
    body = faults.with_defaults(obj)["spec"][family]
    assert {k: v for k, v in body.items() if k != "effect"} == expected


def test_parse_gives_the_model_with_defaults() -> None:
    parsed = faults.parse(pod(effect="SlowStart", proxyVersion="1.2*"))
    assert isinstance(parsed, faults.PodFault)
    assert (parsed.effect, parsed.proxy_version, parsed.start_delay_seconds) == (
        "SlowStart",
        "1.2*",
        30,
    )
    error = faults.parse(api(effect="Error", verbs=["get"]))
    assert isinstance(error, faults.ApiFault)
    assert (error.code, error.fraction, error.verbs) == (500, 1.0, frozenset({"get"}))
    with pytest.raises(faults.InvalidFault, match=r"spec\.api\.effect"):
        faults.parse(api())


# -- admission ----------------------------------------------------------------------------------


@pytest.fixture
async def cluster() -> Cluster:
    cluster = Cluster(Store(None))
    cluster.admission.append(faults.admit)
    for name in ("ns", "other"):
        await cluster.create(rt(cluster, "", "namespaces"), "", {"metadata": {"name": name}}, OPTS)
    return cluster


def faults_rt(cluster: Cluster) -> ResourceType:
    return rt(cluster, faults.GROUP, faults.PLURAL)


async def test_faults_are_a_cluster_scoped_builtin(cluster: Cluster) -> None:
    found = faults_rt(cluster)
    assert (found.kind, found.namespaced, found.is_custom) == ("Fault", False, False)
    assert found.storage_key == faults.STORAGE_KEY


async def test_an_invalid_fault_is_refused_with_422_naming_the_field(cluster: Cluster) -> None:
    with pytest.raises(errors.ApiError) as caught:
        await cluster.create(faults_rt(cluster), "", api(effect="Error", code=404), OPTS)
    error = caught.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.details is not None
    assert [c["field"] for c in error.details["causes"]] == ["spec.api.code"]
    assert 'Fault.sandbox.meshcanary.io "f" is invalid: spec.api.code' in error.message
    assert cluster.store.list(faults.STORAGE_KEY) == []


async def test_a_valid_fault_is_stored_with_its_defaults(cluster: Cluster) -> None:
    created = await cluster.create(faults_rt(cluster), "", api(effect="DropWatch"), OPTS)
    assert created.obj["spec"]["api"] == {"effect": "DropWatch", "fraction": 1, "afterSeconds": 1}


async def test_updates_are_validated_and_metadata_writes_pass(cluster: Cluster) -> None:
    frt = faults_rt(cluster)
    stored = (await cluster.create(frt, "", api(effect="Error"), OPTS)).obj
    bad = {**stored, "spec": {"api": {"effect": "Error", "code": 302}}}
    with pytest.raises(errors.ApiError, match=r"spec\.api\.code"):
        await cluster.update(frt, "", "f", bad, OPTS)
    labelled = {**stored, "metadata": {**stored["metadata"], "labels": {"a": "b"}}}
    assert (await cluster.update(frt, "", "f", labelled, OPTS)).obj["metadata"]["labels"]
    await cluster.delete(frt, "", "f")
    assert cluster.store.get(faults.STORAGE_KEY, "", "f") is None


async def test_dry_run_is_validated_too(cluster: Cluster) -> None:
    dry = WriteOptions(field_manager="test", dry_run=True)
    with pytest.raises(errors.ApiError):
        await cluster.create(faults_rt(cluster), "", pod(effect="Nope"), dry)


# -- matching -----------------------------------------------------------------------------------


def target(
    cluster: Cluster,
    plural: str,
    group: str = "",
    namespace: str | None = "ns",
    name: str = "",
    subresource: str = "",
    watch_path: bool = False,
) -> http.Target:
    return http.Target(rt(cluster, group, plural), namespace, name, subresource, watch_path)


@pytest.mark.parametrize(
    ("method", "name", "watch_path", "query", "verb"),
    [
        ("GET", "x", False, {}, "get"),
        ("GET", "", False, {}, "list"),
        ("GET", "", False, {"watch": "true"}, "watch"),
        ("GET", "", False, {"watch": "1"}, "watch"),
        ("GET", "", True, {}, "watch"),
        ("GET", "x", True, {}, "watch"),
        ("POST", "", False, {}, "create"),
        ("PUT", "x", False, {}, "update"),
        ("PATCH", "x", False, {}, "patch"),
        ("DELETE", "x", False, {}, "delete"),
        ("DELETE", "", False, {}, "deletecollection"),
    ],
)
async def test_request_verbs_are_rbac_verbs(
    cluster: Cluster, method: str, name: str, watch_path: bool, query: dict[str, str], verb: str
) -> None:
    info = faults.request_info(
        method, target(cluster, "pods", name=name, watch_path=watch_path), query
    )
    assert info is not None
    assert (info.verb, info.resource, info.namespace) == (verb, "pods", "ns")


async def test_requests_on_faults_are_exempt(cluster: Cluster) -> None:
    frt = http.Target(faults_rt(cluster), None, "", "", False)
    assert faults.request_info("DELETE", frt, {}) is None


async def test_a_namespace_request_is_in_that_namespace(cluster: Cluster) -> None:
    info = faults.request_info("GET", target(cluster, "namespaces", namespace=None, name="ns"), {})
    assert info is not None and info.namespace == "ns"


def info(
    verb: str = "get",
    resource: str = "pods",
    group: str = "",
    namespace: str | None = "ns",
    subresource: str = "",
) -> faults.RequestInfo:
    return faults.RequestInfo(verb, group, resource, subresource, namespace, "x")


def api_fault(**fields: Any) -> faults.ApiFault:
    parsed = faults.parse(api(**{"effect": "Error", **fields}))
    assert isinstance(parsed, faults.ApiFault)
    return parsed


@pytest.mark.parametrize(
    ("fields", "request_info", "matches"),
    [
        ({}, info(), True),
        ({}, info(namespace=None, resource="nodes"), True),
        ({"verbs": ["create", "get"]}, info(verb="get"), True),
        ({"verbs": ["create"]}, info(verb="get"), False),
        ({"resources": ["pods"]}, info(), True),
        ({"resources": ["pods"]}, info(subresource="status"), True),
        ({"resources": ["pods/status"]}, info(subresource="status"), True),
        ({"resources": ["pods/status"]}, info(), False),
        ({"resources": ["services", "configmaps"]}, info(), False),
        ({"resources": ["deployments.apps"]}, info(resource="deployments", group="apps"), True),
        ({"resources": ["deployments"]}, info(resource="deployments", group="apps"), True),
        ({"resources": ["deployments.batch"]}, info(resource="deployments", group="apps"), False),
        ({"namespaces": ["ns", "b"]}, info(), True),
        ({"namespaces": ["b"]}, info(), False),
        ({"namespaces": ["ns"]}, info(namespace=None), False),
        ({"effect": "DropWatch"}, info(verb="watch"), True),
        ({"effect": "DropWatch"}, info(verb="list"), False),
        ({"effect": "Latency", "latencyMs": 5, "verbs": ["watch"]}, info(verb="watch"), True),
    ],
)
def test_api_fault_matching(
    fields: dict[str, Any], request_info: faults.RequestInfo, matches: bool
) -> None:
    assert api_fault(**fields).matches(request_info) is matches


@pytest.mark.parametrize(
    ("code", "reason", "text"),
    [
        (500, "InternalError", 'Internal error occurred: injected fault "f"'),
        (409, "Conflict", 'Operation cannot be fulfilled on pods "x"'),
        (429, "TooManyRequests", "Too many requests, please try again later."),
    ],
)
def test_injected_errors_are_real_statuses(code: int, reason: str, text: str) -> None:
    error = api_fault(code=code).error(info())
    status = error.status()
    assert (status["code"], status["reason"], status["status"]) == (code, reason, "Failure")
    assert text in status["message"] and 'injected fault "f"' in status["message"]
    assert (error.details or {}).get("retryAfterSeconds") == (1 if code == 429 else None)


# -- the injector: fraction, combination, cache -------------------------------------------------


async def add_fault(cluster: Cluster, obj: dict[str, Any]) -> None:
    await cluster.create(faults_rt(cluster), "", obj, OPTS)


def draws(injector: faults.ApiFaultInjector, count: int) -> list[bool]:
    return [injector.decide(info()).error is not None for _ in range(count)]


async def test_the_fraction_is_drawn_per_request_from_a_seedable_rng(cluster: Cluster) -> None:
    await add_fault(cluster, api(effect="Error", fraction=0.25))
    first = faults.ApiFaultInjector(cluster.store, random.Random(7))
    again = faults.ApiFaultInjector(cluster.store, random.Random(7))
    hits = draws(first, 2000)
    assert hits == draws(again, 2000)
    assert 400 < sum(hits) < 600


async def test_a_whole_fraction_never_spends_random_numbers(cluster: Cluster) -> None:
    await add_fault(cluster, api(effect="Error"))
    rng = random.Random(3)
    state = rng.getstate()
    assert all(draws(faults.ApiFaultInjector(cluster.store, rng), 10))
    assert rng.getstate() == state


async def test_latencies_add_the_first_error_wins_the_shortest_cutoff_wins(
    cluster: Cluster,
) -> None:
    for name, body in [
        ("a-slow", {"effect": "Latency", "latencyMs": 100}),
        ("b-slow", {"effect": "Latency", "latencyMs": 50}),
        ("c-conflict", {"effect": "Error", "code": 409}),
        ("d-throttle", {"effect": "Error", "code": 429}),
        ("e-drop", {"effect": "DropWatch", "afterSeconds": 3}),
        ("f-drop", {"effect": "DropWatch", "afterSeconds": 0.5}),
    ]:
        await add_fault(cluster, fault(name, api=body))
    decision = faults.ApiFaultInjector(cluster.store).decide(info(verb="watch"))
    assert decision.delay_seconds == pytest.approx(0.15)
    assert decision.error is not None and decision.error.code == 409
    assert decision.watch_cutoff == 0.5


async def test_the_injector_sees_faults_come_and_go(cluster: Cluster) -> None:
    injector = faults.ApiFaultInjector(cluster.store)
    assert injector.decide(info()).error is None
    await add_fault(cluster, api(effect="Error"))
    assert injector.decide(info()).error is not None
    await cluster.delete(faults_rt(cluster), "", "f")
    assert injector.decide(info()).error is None
    injector.close()


async def test_stored_faults_apply_from_the_start(cluster: Cluster) -> None:
    await add_fault(cluster, api(effect="Error"))
    assert faults.ApiFaultInjector(cluster.store).decide(info()).error is not None


async def test_an_invalid_stored_fault_is_skipped(cluster: Cluster) -> None:
    cluster.admission.clear()
    await add_fault(cluster, fault("bad", api={"effect": "Error", "code": 1}))
    await add_fault(cluster, fault("good", pod={"effect": "CrashLoop"}))
    assert [f.name for f in faults.load(cluster.store)] == ["good"]


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = http.create_app(cluster, TOKEN)
    faults.install(cluster, app, random.Random(1))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


CONFIGMAPS = "/api/v1/namespaces/ns/configmaps"


async def test_exempt_paths_answer_under_a_catch_all_error(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, fault("all", api={"effect": "Error"}))
    for path in (
        "/healthz",
        "/livez",
        "/readyz",
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/sandbox.meshcanary.io/v1",
        "/openapi/v3",
        "/openapi/v3/api/v1",
        "/apis/sandbox.meshcanary.io/v1/faults",
        "/apis/sandbox.meshcanary.io/v1/faults/all",
    ):
        response = await client.get(path, headers=AUTH)
        assert response.status == 200, path
    assert (await client.get(CONFIGMAPS, headers=AUTH)).status == 500
    cleared = await client.delete("/apis/sandbox.meshcanary.io/v1/faults/all", headers=AUTH)
    assert cleared.status == 200
    assert (await client.get(CONFIGMAPS, headers=AUTH)).status == 200


async def test_an_unauthenticated_request_gets_401_not_a_fault(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="Error"))
    assert (await client.get(CONFIGMAPS)).status == 401


async def test_a_429_carries_retry_after(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="Error", code=429, verbs=["create"]))
    body = {"metadata": {"name": "cm"}}
    response = await client.post(CONFIGMAPS, json=body, headers=AUTH)
    status = await response.json()
    assert response.status == 429 and response.headers["Retry-After"] == "1"
    assert (status["kind"], status["reason"]) == ("Status", "TooManyRequests")
    assert status["details"]["retryAfterSeconds"] == 1
    assert (await client.get(CONFIGMAPS, headers=AUTH)).status == 200
    assert cluster.store.get("/configmaps", "ns", "cm") is None


async def test_an_error_on_a_watch_refuses_the_watch(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="Error", code=500, verbs=["watch"]))
    response = await client.get(CONFIGMAPS, params={"watch": "true"}, headers=AUTH)
    assert response.status == 500
    assert "injected fault" in (await response.json())["message"]


async def timed_get(client: TestClient[web.Request, web.Application], path: str) -> float:
    started = time.monotonic()
    response = await client.get(path, headers=AUTH)
    assert response.status == 200
    return time.monotonic() - started


async def test_latency_delays_matching_requests_only(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="Latency", latencyMs=300, resources=["configmaps"]))
    assert await timed_get(client, CONFIGMAPS) >= 0.3
    assert await timed_get(client, "/api/v1/namespaces/ns/secrets") < 0.3


async def test_drop_watch_ends_matching_streams_after_the_delay(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="DropWatch", afterSeconds=0.3, resources=["configmaps"]))
    started = time.monotonic()
    dropped = await client.get(CONFIGMAPS, params={"watch": "true"}, headers=AUTH)
    other = await client.get(
        "/api/v1/namespaces/ns/secrets", params={"watch": "true"}, headers=AUTH
    )
    assert dropped.status == other.status == 200
    await asyncio.wait_for(dropped.read(), 5)
    assert 0.3 <= time.monotonic() - started < 3
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(other.content.read(), 0.5)
    other.close()


async def test_a_dropped_watch_delivers_events_until_it_ends(
    cluster: Cluster, client: TestClient[web.Request, web.Application]
) -> None:
    await add_fault(cluster, api(effect="DropWatch", afterSeconds=0.5))
    response = await client.get(CONFIGMAPS, params={"watch": "true"}, headers=AUTH)
    configmaps = rt(cluster, "", "configmaps")
    await cluster.create(configmaps, "ns", {"metadata": {"name": "seen"}}, OPTS)
    body = await asyncio.wait_for(response.read(), 5)
    assert b'"ADDED"' in body and b'"seen"' in body


# -- selectors from kubectl's syntax -------------------------------------------------------------


def test_selector_strings_become_label_selector_objects() -> None:
    selector = faults.selector_from_string("team=payments,tier in (a,b),!legacy,canary,env!=dev")
    assert selector == {
        "matchLabels": {"team": "payments"},
        "matchExpressions": [
            {"key": "canary", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
        ],
    }
    assert faults.selector_from_string("") == {}


def test_numeric_selectors_have_no_object_form() -> None:
    with pytest.raises(ValueError, match="numeric"):
        faults.selector_from_string("replicas>3")


# -- the CLI, without a sandbox -----------------------------------------------------------------


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["sandbox", "fault", *args])


def test_dry_run_prints_the_fault_with_its_defaults() -> None:
    result = run_cli(
        "add",
        "bad-proxy",
        "--pod-never-ready",
        "--proxy-version",
        "1.15.*",
        "--namespace-selector",
        "team=payments",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == pod(
        effect="NeverReady",
        proxyVersion="1.15.*",
        namespaceSelector={"matchLabels": {"team": "payments"}},
    ) | {"metadata": {"name": "bad-proxy"}}


def test_dry_run_of_an_api_fault() -> None:
    result = run_cli(
        "add", "flaky", "--api-error", "500", "--fraction", "0.1", "--verbs", "create",
        "--resources", "pods", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["spec"] == {
        "api": {
            "effect": "Error",
            "code": 500,
            "fraction": 0.1,
            "verbs": ["create"],
            "resources": ["pods"],
        }
    }
    drop = yaml.safe_load(run_cli("add", "d", "--api-drop-watch", "2", "--dry-run").stdout)
    assert drop["spec"]["api"]["afterSeconds"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x"], "exactly one of"),
        (["add", "x", "--pod-crash-loop", "--api-error", "500"], "exactly one of"),
        (["add", "x", "--api-error", "500", "--proxy-version", "1.*"], "--proxy-version only"),
        (["add", "x", "--pod-never-ready", "--verbs", "get"], "--verbs only applies to API"),
        (["add", "x", "--api-error", "404"], "spec.api.code: Unsupported value: 404"),
        (["add", "x", "--pod-never-ready", "--pod-selector", "a in ("], "--pod-selector"),
        (["clear"], "give fault names or --all"),
        (["clear", "x", "--all"], "give fault names or --all"),
        (["list", "-o", "wide"], "unsupported output format"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_no_sandbox_is_a_clear_error(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCANARY_HOME", str(tmp_path))
    result = run_cli("list", "--name", "nowhere")
    assert result.exit_code == 2
    assert "meshcanary sandbox up --name nowhere" in result.stderr
