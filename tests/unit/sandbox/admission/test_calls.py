"""Calling one webhook: real HTTPS to a local server (caBundle checked), in-process Services,
timeouts, and the checks on the answer, with kube-apiserver's wording for each failure."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from meshcanary.sandbox.admission.calls import (
    CallError,
    ServiceHandler,
    WebhookCaller,
    go_duration,
)
from meshcanary.sandbox.server import bind
from meshcanary.sandbox.tls import Certificates

UID = "0d1e3c6a-4c52-4c5e-9d7b-1f3a6b3e2a11"
REVIEW: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {"uid": UID, "operation": "CREATE", "object": {"metadata": {"name": "a"}}},
}


def answer(uid: str = UID, **response: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": True, **response},
    }


def encoded(ops: list[dict[str, Any]]) -> str:
    return base64.b64encode(orjson.dumps(ops)).decode()


class Services:
    """A resolver with one Service, `hooks/injector`, whose handler a test sets."""

    def __init__(self) -> None:
        self.handler: ServiceHandler | None = None
        self.asked: list[tuple[str, str, int, str]] = []

    def resolve(self, namespace: str, name: str, port: int, path: str) -> ServiceHandler | None:
        self.asked.append((namespace, name, port, path))
        return self.handler if (namespace, name) == ("hooks", "injector") else None


SERVICE = {"service": {"namespace": "hooks", "name": "injector", "port": 443, "path": "/inject"}}
SERVICE_URL = "https://injector.hooks.svc:443/inject"


@pytest.fixture
async def caller() -> AsyncIterator[WebhookCaller]:
    caller = WebhookCaller(Services(), service_exists=lambda ns, name: name == "exists")
    yield caller
    await caller.close()


def services(caller: WebhookCaller) -> Services:
    assert isinstance(caller.resolver, Services)
    return caller.resolver


async def call_error(awaitable: Awaitable[Any]) -> str:
    with pytest.raises(CallError) as caught:
        await awaitable
    return str(caught.value)


# -- HTTPS ---------------------------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    certificates = Certificates(tmp_path / "webhook")
    certificates.ensure("127.0.0.1")
    return certificates


@pytest.fixture
async def https(
    certificates: Certificates,
) -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a local HTTPS webhook server for a handler; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/{path:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        sock = bind("127.0.0.1", 0)
        await web.SockSite(runner, sock, ssl_context=certificates.server_context()).start()
        return f"https://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def ca_bundle(certificates: Certificates) -> str:
    return base64.b64encode(certificates.ca.read_bytes()).decode()


async def test_a_url_webhook_is_posted_to_over_verified_https(
    caller: WebhookCaller,
    https: Callable[[Handler], Awaitable[str]],
    certificates: Certificates,
) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.path_qs, await request.json()))
        return web.json_response(
            answer(patch=encoded([{"op": "add", "path": "/x", "value": 1}]), patchType="JSONPatch")
        )

    url = await https(handler)
    config = {"url": f"{url}/mutate", "caBundle": ca_bundle(certificates)}
    verdict = await caller.call(config, REVIEW, 5, mutating=True)
    assert verdict.allowed
    assert verdict.patch == [{"op": "add", "path": "/x", "value": 1}]
    assert seen == [("/mutate?timeout=5s", REVIEW)]


@pytest.mark.parametrize("trusted", ["another CA", "system roots"])
async def test_a_server_certificate_the_ca_bundle_does_not_vouch_for_fails(
    caller: WebhookCaller,
    https: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
    trusted: str,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise AssertionError("the request must not get through")

    url = await https(handler)
    config: dict[str, Any] = {"url": f"{url}/validate"}
    if trusted == "another CA":
        other = Certificates(tmp_path / "other")
        other.ensure("127.0.0.1")
        config["caBundle"] = ca_bundle(other)
    message = await call_error(caller.call(config, REVIEW, 10, mutating=False))
    assert message == (
        f'failed to call webhook: Post "{url}/validate?timeout=10s": tls: failed to verify'
        " certificate: x509: certificate signed by unknown authority"
    )


async def test_an_error_status_from_the_server_is_a_call_error(
    caller: WebhookCaller,
    https: Callable[[Handler], Awaitable[str]],
    certificates: Certificates,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(reason="no such handler")

    url = await https(handler)
    config = {"url": f"{url}/x", "caBundle": ca_bundle(certificates)}
    message = await call_error(caller.call(config, REVIEW, 10, mutating=False))
    assert message.endswith(
        ": the server responded with the status code 400 but did not return more information"
    )


async def test_nothing_listening_is_connection_refused(caller: WebhookCaller) -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    message = await call_error(
        caller.call({"url": f"https://127.0.0.1:{port}/v"}, REVIEW, 10, False)
    )
    assert message == (
        f'failed to call webhook: Post "https://127.0.0.1:{port}/v?timeout=10s":'
        f" dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


async def test_only_https_is_spoken(caller: WebhookCaller) -> None:
    message = await call_error(caller.call({"url": "http://127.0.0.1:1/v"}, REVIEW, 10, False))
    assert message.endswith(': unsupported protocol scheme "http"')


# -- Services ------------------------------------------------------------------------------------


async def test_a_service_webhook_is_answered_in_process_with_its_own_copy(
    caller: WebhookCaller,
) -> None:
    async def handler(body: dict[str, Any]) -> dict[str, Any]:
        body["request"]["object"]["metadata"]["name"] = "changed"
        return answer(body["request"]["uid"])

    services(caller).handler = handler
    verdict = await caller.call(SERVICE, REVIEW, 10, mutating=True)
    assert verdict.allowed and verdict.patch is None
    assert services(caller).asked == [("hooks", "injector", 443, "/inject")]
    assert REVIEW["request"]["object"]["metadata"]["name"] == "a"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("exists", 'no endpoints available for service "exists"'),
        ("missing", 'service "missing" not found'),
    ],
)
async def test_a_service_nothing_serves_fails_like_the_real_one(
    caller: WebhookCaller, name: str, reason: str
) -> None:
    config = {"service": {"namespace": "hooks", "name": name, "port": 443, "path": "/v"}}
    message = await call_error(caller.call(config, REVIEW, 10, mutating=False))
    assert message == (
        f'failed to call webhook: Post "https://{name}.hooks.svc:443/v?timeout=10s": {reason}'
    )


async def test_a_handler_past_its_timeout_is_a_deadline_exceeded(caller: WebhookCaller) -> None:
    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(10)
        return answer(body["request"]["uid"])

    services(caller).handler = slow
    message = await call_error(caller.call(SERVICE, REVIEW, 0.05, mutating=False))
    assert message == (
        f'failed to call webhook: Post "{SERVICE_URL}?timeout=50ms": context deadline exceeded'
    )


async def test_a_failing_handler_is_a_server_error(caller: WebhookCaller) -> None:
    async def broken(body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    services(caller).handler = broken
    message = await call_error(caller.call(SERVICE, REVIEW, 10, mutating=False))
    assert message.endswith(
        ": an error on the server ('boom') has prevented the request from succeeding"
    )


# -- checking the answer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "mutating", "reason"),
    [
        (answer("other"), False, f'expected response.uid="{UID}", got "other"'),
        (
            {"kind": "AdmissionReview"},
            False,
            "expected webhook response of admission.k8s.io/v1,"
            " Kind=AdmissionReview, got None, Kind=AdmissionReview",
        ),
        ({**answer(), "response": None}, False, "webhook response was absent"),
        (
            answer(patch=encoded([])),
            True,
            "webhook returned response.patch but not response.patchType",
        ),
        (
            answer(patchType="JSONPatch"),
            True,
            "webhook returned response.patchType but not response.patch",
        ),
        (
            answer(patch=encoded([]), patchType="Merge"),
            True,
            'webhook returned invalid response.patchType of "Merge"',
        ),
    ],
)
async def test_an_invalid_answer_is_a_call_error(
    caller: WebhookCaller, response: dict[str, Any], mutating: bool, reason: str
) -> None:
    async def handler(body: dict[str, Any]) -> dict[str, Any]:
        return response

    services(caller).handler = handler
    message = await call_error(caller.call(SERVICE, REVIEW, 10, mutating))
    assert message == f"received invalid webhook response: {reason}"


async def test_a_validating_webhooks_patch_is_ignored(caller: WebhookCaller) -> None:
    async def handler(body: dict[str, Any]) -> dict[str, Any]:
        return answer(allowed=False, status={"message": "no"}, patch="bm9wZQ==", patchType="X")

    services(caller).handler = handler
    verdict = await caller.call(SERVICE, REVIEW, 10, mutating=False)
    assert not verdict.allowed
    assert verdict.status == {"message": "no"}
    assert verdict.patch is None


@pytest.mark.parametrize(
    ("seconds", "printed"), [(10, "10s"), (30.0, "30s"), (1.5, "1.5s"), (0.05, "50ms")]
)
def test_timeouts_are_printed_as_go_durations(seconds: float, printed: str) -> None:
    assert go_duration(seconds) == printed
