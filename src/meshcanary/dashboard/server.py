"""The dashboard's web server: JSON API, a live SSE stream, static pages, and guarded actions.

Security model, for a tool that can restart every workload of a mesh:

- Binds 127.0.0.1 by default. On loopback the `Host` header must name the loopback address the
  server is on (`127.0.0.1`, `localhost`, `[::1]`), which defeats DNS rebinding: a web page on
  another origin cannot reach the API through a name that resolves to 127.0.0.1.
- A random token, printed in the URL at start (`/?token=...`), is exchanged once for an
  HttpOnly, SameSite=Strict cookie (and the address bar is cleaned by a redirect). Every API
  call needs that cookie: another local user, or a page in the same browser, cannot read the
  cluster through the dashboard.
- Actions (POST) are refused unless the server runs with `--allow-actions`, and also need a
  CSRF token in the `X-CSRF-Token` header, derived from the session token and handed out only
  by `GET /api/session` (which a cross-origin page cannot read), plus a same-origin `Origin`.
- Every response carries a strict CSP (`default-src 'self'`, no inline script, no framing),
  `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (the token must not leak
  through a Referer). Cluster strings are only ever JSON-encoded here and inserted with
  `textContent` by the page.

Liveness: a `Source` (the cluster, or a fake in tests) signals changes; `Dashboard` debounces
them (`DEBOUNCE` seconds, so a rollout's burst of pod events costs one re-read) and pushes one
fresh model of every page to every `/api/events` subscriber. A full model rather than a diff:
it is a few kB to a few hundred kB, and a page that missed a message can never drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from aiohttp import web

from meshcanary.dashboard import state
from meshcanary.mesh import inventory
from meshcanary.migrate import steps

STATIC: Final = Path(__file__).parent / "static"
COOKIE: Final = "meshcanary_session"
CSRF_HEADER: Final = "X-CSRF-Token"
DEBOUNCE: Final = 0.25
HEARTBEAT: Final = 15.0
QUEUE_SIZE: Final = 16
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

log = logging.getLogger(__name__)


class Source(Protocol):
    """What the dashboard needs from a cluster (`cluster.ClusterSource`, or a test fake)."""

    async def read(self) -> tuple[inventory.MeshSnapshot, list[dict[str, Any]], state.Model]:
        """The mesh, its Events and the Validation page's model, at one moment."""
        ...

    async def watch(self, changed: Callable[[], None]) -> None: ...

    async def migrate(self, namespace: str, to: str, progress: steps.Progress) -> str: ...

    async def rollback(self, namespace: str, to: str | None, progress: steps.Progress) -> str: ...


@dataclass
class Settings:
    """How a dashboard runs: actions allowed or not, its secret token, where it listens."""

    allow_actions: bool = False
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    address: str = "127.0.0.1"
    port: int = 0

    @property
    def csrf(self) -> str:
        """The CSRF token: derived from the session token, so it is valid only with it."""
        return hmac.new(self.token.encode(), b"csrf", hashlib.sha256).hexdigest()


def is_loopback(address: str) -> bool:
    """Whether `address` only accepts connections from this machine."""
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


# -- the live model -------------------------------------------------------------------------------


class Dashboard:
    """The current page models, the subscribers to push them to, and running actions."""

    def __init__(self, source: Source, settings: Settings, debounce: float = DEBOUNCE) -> None:
        self.source = source
        self.settings = settings
        self.debounce = debounce
        self.models: dict[str, state.Model] = {}
        self.version = 0
        self.error = ""
        self.actions: dict[str, state.Model] = {}
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Read once, then keep the models fresh from the source's change signals."""
        self._tasks = [
            asyncio.create_task(self._refresh_loop(), name="dashboard-refresh"),
            asyncio.create_task(self._watch(), name="dashboard-watch"),
        ]
        self._dirty.set()

    async def stop(self) -> None:
        """Cancel background work (watches, refreshes, running actions)."""
        tasks = [*self._tasks, *self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def wait_ready(self, timeout: float) -> None:
        """Until the first read finished (or failed)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    def changed(self) -> None:
        """Something in the cluster changed: refresh soon (debounced)."""
        self._dirty.set()

    async def _watch(self) -> None:
        try:
            await self.source.watch(self.changed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watching the cluster failed; the page will not update live")

    async def _refresh_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            await self.refresh()

    async def refresh(self) -> None:
        """Re-read the cluster, rebuild every page model, and push it to every subscriber."""
        try:
            snapshot, events, validation = await self.source.read()
            self.models = build_models(snapshot, events, validation)
            self.error = ""
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("reading the cluster failed: %s", error)
            self.error = f"reading the cluster failed: {error}"
        self.version += 1
        self._ready.set()
        self.publish("snapshot", self.payload())

    def payload(self) -> state.Model:
        """Everything a page needs, as one JSON document."""
        return {
            "version": self.version,
            "error": self.error,
            "allowActions": self.settings.allow_actions,
            "actions": self.actions,
            **self.models,
        }

    def publish(self, event: str, data: state.Model) -> None:
        """Queue one SSE message for every subscriber; a slow one loses its oldest messages."""
        message = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    @contextlib.contextmanager
    def subscription(self) -> Any:
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    # -- actions ----------------------------------------------------------------------------------

    def busy(self, namespace: str) -> bool:
        task = self._running.get(namespace)
        return task is not None and not task.done()

    def start_action(self, namespace: str, kind: str, to: str | None) -> None:
        """Run a migration or rollback in the background; progress goes to the live stream."""
        self.actions[namespace] = {
            "namespace": namespace,
            "kind": kind,
            "to": to,
            "state": "running",
            "step": "check",
            "message": "",
        }
        self._announce(namespace)
        self._running[namespace] = asyncio.create_task(self._act(namespace, kind, to))

    async def _act(self, namespace: str, kind: str, to: str | None) -> None:
        def progress(event: steps.StepProgress) -> None:
            self.actions[namespace].update(step=str(event.step), message=event.message)
            self._announce(namespace)

        try:
            if kind == "migrate":
                assert to is not None
                outcome = await self.source.migrate(namespace, to, progress)
            else:
                outcome = await self.source.rollback(namespace, to, progress)
            failed = "failed" in outcome or "interrupted" in outcome
            self.actions[namespace].update(
                state="failed" if failed else "succeeded", message=outcome
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a refused migration is reported, not raised
            self.actions[namespace].update(state="failed", message=str(error))
        self._announce(namespace)
        self.changed()

    def _announce(self, namespace: str) -> None:
        self.publish("action", dict(self.actions[namespace]))


def build_models(
    snapshot: inventory.MeshSnapshot, events: list[dict[str, Any]], validation: state.Model
) -> dict[str, state.Model]:
    """Every page's model from one reading of the cluster."""
    return {
        "mesh": state.mesh(snapshot),
        "namespaces": state.namespaces(snapshot),
        "validation": validation,
        "timeline": state.timeline(snapshot, events),
    }


# -- HTTP -----------------------------------------------------------------------------------------

DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(dashboard: Dashboard) -> web.Application:
    """The aiohttp application: middlewares first (headers, host, auth), then routes."""
    app = web.Application(middlewares=[security_headers, host_check, authentication])
    app[DASHBOARD] = dashboard
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/mesh", page("mesh"))
    app.router.add_get("/api/namespaces", page("namespaces"))
    app.router.add_get("/api/validation", page("validation"))
    app.router.add_get("/api/timeline", page("timeline"))
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/namespaces/{namespace}/migrate", action("migrate"))
    app.router.add_post("/api/namespaces/{namespace}/rollback", action("rollback"))
    app.on_startup.append(_started)
    app.on_cleanup.append(_stopped)
    return app


async def _started(app: web.Application) -> None:
    await app[DASHBOARD].start()


async def _stopped(app: web.Application) -> None:
    await app[DASHBOARD].stop()


def _settings(request: web.Request) -> Settings:
    return request.app[DASHBOARD].settings


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Strict headers on every answer, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On loopback, refuse a Host that is not a loopback name (DNS rebinding)."""
    if is_loopback(_settings(request).address):
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        if host.strip("[]") not in LOOPBACK_NAMES:
            return _error(421, "this dashboard only answers on a loopback host name")
    return await handler(request)


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API calls need the session cookie; POSTs also the CSRF header and a same origin."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    settings = _settings(request)
    if not hmac.compare_digest(request.cookies.get(COOKIE, ""), settings.token):
        return _error(401, "open the dashboard with the URL (and token) it printed at start")
    if request.method != "GET":
        if not settings.allow_actions:
            return _error(403, "read-only dashboard: start it with --allow-actions")
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), settings.csrf):
            return _error(403, "missing or wrong CSRF token")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _error(403, "cross-origin request refused")
    return await handler(request)


async def index(request: web.Request) -> web.StreamResponse:
    """The page; `?token=` is exchanged for the session cookie and removed from the URL."""
    token = request.query.get("token")
    settings = _settings(request)
    if token is not None:
        if not hmac.compare_digest(token, settings.token):
            return web.Response(status=403, text="wrong token: use the URL the dashboard printed")
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(COOKIE, settings.token, httponly=True, samesite="Strict", path="/")
        return response
    return web.FileResponse(STATIC / "index.html")


async def session(request: web.Request) -> web.Response:
    """The CSRF token and whether actions are allowed (only readable same-origin)."""
    settings = _settings(request)
    return web.json_response({"csrf": settings.csrf, "allowActions": settings.allow_actions})


def page(name: str) -> Handler:
    """`GET /api/<name>`: one page's current model."""

    async def handler(request: web.Request) -> web.StreamResponse:
        dashboard = request.app[DASHBOARD]
        if name not in dashboard.models:
            return _error(503, dashboard.error or "the first reading of the cluster is not done")
        return web.json_response(dashboard.models[name])

    return handler


async def events(request: web.Request) -> web.StreamResponse:
    """`GET /api/events`: Server-Sent Events; the current models at once, then every change."""
    dashboard = request.app[DASHBOARD]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    response.headers.update(SECURITY_HEADERS)
    await response.prepare(request)
    with dashboard.subscription() as queue:
        if dashboard.models or dashboard.error:
            payload = json.dumps(dashboard.payload(), separators=(",", ":"))
            await response.write(f"event: snapshot\ndata: {payload}\n\n".encode())
        async for message in _messages(queue):
            await response.write(message.encode())
    return response


async def _messages(queue: asyncio.Queue[str]) -> AsyncIterator[str]:
    """Queued messages, with a comment line as heartbeat so proxies keep the stream open."""
    while True:
        try:
            yield await asyncio.wait_for(queue.get(), HEARTBEAT)
        except TimeoutError:
            yield ": keep-alive\n\n"


def action(kind: str) -> Handler:
    """`POST /api/namespaces/{ns}/migrate` {"to"} or `/rollback` {"to"?}: start it, 202."""

    async def handler(request: web.Request) -> web.StreamResponse:
        dashboard = request.app[DASHBOARD]
        namespace = request.match_info["namespace"]
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(400, "the body must be JSON")
        to = body.get("to") if isinstance(body, dict) else None
        problem = _refusal(dashboard, namespace, kind, to)
        if problem is not None:
            return _error(*problem)
        dashboard.start_action(namespace, kind, to)
        return web.json_response({"accepted": True, "namespace": namespace}, status=202)

    return handler


def _refusal(dashboard: Dashboard, namespace: str, kind: str, to: Any) -> tuple[int, str] | None:
    """Why an action cannot start, as (status, message); None when it can."""
    model = dashboard.models.get("namespaces") or {"namespaces": [], "targets": []}
    if namespace not in {row["name"] for row in model["namespaces"]}:
        return 404, f"namespace {namespace!r} not found"
    if to is not None and not isinstance(to, str):
        return 400, '"to" must be a string'
    if (kind == "migrate" or to is not None) and to not in model["targets"]:
        return 400, f"unknown control plane {to!r}: use one of {', '.join(model['targets'])}"
    if dashboard.busy(namespace):
        return 409, f"an action on {namespace} is already running"
    return None


# -- running --------------------------------------------------------------------------------------


@dataclass
class Running:
    """A started server: its URL (with the token) and how to stop it."""

    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(source: Source, settings: Settings) -> Running:
    """Serve the dashboard on `settings.address:port` (port 0: any free port)."""
    dashboard = Dashboard(source, settings)
    runner = web.AppRunner(create_app(dashboard), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.address, settings.port)
    await site.start()
    port = _bound_port(runner, settings.port)
    host = f"[{settings.address}]" if ":" in settings.address else settings.address
    return Running(f"http://{host}:{port}/?token={settings.token}", runner)


def _bound_port(runner: web.AppRunner, wanted: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return wanted
