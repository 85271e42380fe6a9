"""The dashboard's HTTP API against a fake cluster: auth, CSRF, read-only mode, headers, SSE."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.dashboard import fakes

from meshcanary.dashboard import server

Client = TestClient[web.Request, web.Application]
Make = Callable[..., Awaitable[tuple[Client, fakes.FakeSource, server.Settings]]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    clients: list[Client] = []

    async def build(
        allow_actions: bool = False, login: bool = True
    ) -> tuple[Client, fakes.FakeSource, server.Settings]:
        source = fakes.FakeSource()
        settings = server.Settings(allow_actions=allow_actions)
        dashboard = server.Dashboard(source, settings, debounce=0.01)
        client: Client = TestClient(TestServer(server.create_app(dashboard)))
        await client.start_server()
        clients.append(client)
        await dashboard.wait_ready(5)
        if login:
            response = await client.get(f"/?token={settings.token}", allow_redirects=False)
            assert response.status == 303
        return client, source, settings

    yield build
    for client in clients:
        await client.close()


async def post(client: Client, path: str, settings: server.Settings, **extra: Any) -> Any:
    headers = {server.CSRF_HEADER: settings.csrf, **extra.pop("headers", {})}
    return await client.post(path, json=extra.pop("json", {}), headers=headers)


async def test_the_token_is_exchanged_for_a_strict_http_only_cookie(make: Make) -> None:
    client, _, settings = await make(login=False)
    response = await client.get(f"/?token={settings.token}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert (await client.get("/api/mesh")).status == 200


async def test_the_api_refuses_without_the_session(make: Make) -> None:
    client, _, _ = await make(login=False)
    for path in ("/api/mesh", "/api/namespaces", "/api/timeline", "/api/events", "/api/session"):
        assert (await client.get(path)).status == 401, path
    wrong = await client.get("/?token=guess", allow_redirects=False)
    assert wrong.status == 403 and "Set-Cookie" not in wrong.headers
    assert (await client.get("/api/mesh")).status == 401


async def test_read_only_refuses_actions_even_with_csrf(make: Make) -> None:
    client, source, settings = await make(allow_actions=False)
    session = await (await client.get("/api/session")).json()
    assert session["allowActions"] is False
    response = await post(
        client, "/api/namespaces/shop/migrate", settings, json={"to": "cp-b.istio-system"}
    )
    assert response.status == 403
    assert "read-only" in (await response.json())["error"]
    assert source.calls == []


async def test_actions_need_the_csrf_token_and_the_same_origin(make: Make) -> None:
    client, source, settings = await make(allow_actions=True)
    body = {"to": "cp-b.istio-system"}
    missing = await client.post("/api/namespaces/shop/migrate", json=body)
    wrong = await client.post(
        "/api/namespaces/shop/migrate", json=body, headers={server.CSRF_HEADER: "x" * 64}
    )
    foreign = await post(
        client,
        "/api/namespaces/shop/migrate",
        settings,
        json=body,
        headers={"Origin": "http://evil.example"},
    )
    assert [missing.status, wrong.status, foreign.status] == [403, 403, 403]
    assert source.calls == []


async def test_an_action_runs_in_the_background_and_reports_on_the_stream(make: Make) -> None:
    client, source, settings = await make(allow_actions=True)
    stream = await client.get("/api/events")
    assert (await _next_event(stream))[0] == "snapshot"
    response = await post(
        client, "/api/namespaces/shop/migrate", settings, json={"to": "cp-b.istio-system"}
    )
    assert response.status == 202
    again = await post(
        client, "/api/namespaces/shop/migrate", settings, json={"to": "cp-b.istio-system"}
    )
    assert again.status == 409
    seen = [await _next_event(stream) for _ in range(2)]
    assert [name for name, _ in seen] == ["action", "action"]
    assert '"step":"restart"' in seen[1][1]
    source.release.set()
    while True:
        name, data = await _next_event(stream)
        if name == "action" and '"state":"succeeded"' in data:
            break
    assert source.calls == [("migrate", "shop", "cp-b.istio-system")]
    stream.close()


async def test_actions_are_checked_before_they_start(make: Make) -> None:
    client, source, settings = await make(allow_actions=True)
    unknown_ns = await post(
        client, "/api/namespaces/nope/migrate", settings, json={"to": "cp-b.istio-system"}
    )
    unknown_cp = await post(client, "/api/namespaces/shop/migrate", settings, json={"to": "cp-zz"})
    no_target = await post(client, "/api/namespaces/shop/migrate", settings, json={})
    assert [unknown_ns.status, unknown_cp.status, no_target.status] == [404, 400, 400]
    rollback = await post(client, "/api/namespaces/shop/rollback", settings, json={})
    assert rollback.status == 202
    await asyncio.sleep(0.05)
    assert source.calls == [("rollback", "shop", None)]


async def test_security_headers_everywhere(make: Make) -> None:
    client, _, _ = await make()
    for path in ("/", "/static/app.js", "/api/mesh", "/static/missing.js"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_a_foreign_host_name_is_refused_on_loopback(make: Make) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the API."""
    client, _, _ = await make()
    response = await client.get("/api/mesh", headers={"Host": "evil.example:80"})
    assert response.status == 421
    assert (await client.get("/api/mesh", headers={"Host": "localhost:1"})).status == 200


async def test_cluster_text_stays_inert_json(make: Make) -> None:
    client, _, _ = await make()
    response = await client.get("/api/namespaces")
    assert response.content_type == "application/json"
    rows = {row["name"]: row for row in (await response.json())["namespaces"]}
    assert rows["odd"]["labels"]["team"] == fakes.SCRIPT
    assert rows["odd"]["migration"]["message"] == fakes.SCRIPT


def test_the_page_has_no_inline_script_and_never_parses_html() -> None:
    """CSP forbids inline script; and cluster text must go in with textContent, not innerHTML."""
    static = Path(server.STATIC)
    html = (static / "index.html").read_text()
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"https?://", html.replace("http://www.w3.org", ""))
    for script in static.rglob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"
        assert not re.search(r"(import|from)\s+[\"']https?:", text), script.name


async def test_a_cluster_change_is_pushed_within_two_seconds(make: Make) -> None:
    client, source, _ = await make()
    stream = await client.get("/api/events")
    name, first = await _next_event(stream)
    assert name == "snapshot" and '"billing"' in first
    changed = replace(
        source.snapshot, namespaces=[*source.snapshot.namespaces, fakes.namespace("new-ns", None)]
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    source.change(changed)
    name, data = await asyncio.wait_for(_next_event(stream), 2)
    assert name == "snapshot" and '"new-ns"' in data
    assert loop.time() - started < 2
    stream.close()


async def test_pages_answer_503_until_the_first_reading() -> None:
    source = fakes.FakeSource()
    dashboard = server.Dashboard(source, server.Settings())
    app = server.create_app(dashboard)
    app.on_startup.clear()
    async with TestClient(TestServer(app)) as client:
        login = await client.get(f"/?token={dashboard.settings.token}", allow_redirects=False)
        assert login.status == 303
        assert (await client.get("/api/mesh")).status == 503


def test_loopback_detection() -> None:
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost") and server.is_loopback("127.0.0.2")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("10.1.2.3")


async def _next_event(stream: Any) -> tuple[str, str]:
    """The next SSE message's event name and data (keep-alive comments skipped)."""
    name, data = "message", ""
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            return name, data
