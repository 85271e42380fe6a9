"""Run one sandbox API server: storage, cluster semantics, controllers and HTTP, in one loop.

`run()` is what `meshcanary sandbox up` starts in a background process (and what `--foreground`
runs in the terminal). It binds 127.0.0.1 unless told otherwise, serves until SIGTERM/SIGINT, and
closes the database cleanly; a `kill -9` is survivable too, because every acknowledged write is
already committed (see `apiserver/store.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from meshcanary.sandbox import faults
from meshcanary.sandbox.admission.webhooks import AdmissionWebhooks
from meshcanary.sandbox.apiserver import bootstrap, http
from meshcanary.sandbox.apiserver.cluster import Cluster
from meshcanary.sandbox.apiserver.store import Store
from meshcanary.sandbox.clock import RealClock
from meshcanary.sandbox.controllers import manager
from meshcanary.sandbox.controllers.base import Context
from meshcanary.sandbox.istio.resolver import IstiodResolver
from meshcanary.sandbox.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen, where to keep state, and the token clients must present."""

    database: Path | None
    token: str
    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    settings: Settings = field(default_factory=Settings)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one (read it back with getsockname())."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve(
    config: ServerConfig,
    sock: socket.socket,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT when no event is given)."""
    store = Store(config.database)
    cluster = Cluster(store)
    await bootstrap.ensure_system_objects(cluster)
    app = http.create_app(cluster, config.token)
    faults.install(cluster, app)
    webhooks = AdmissionWebhooks(cluster, IstiodResolver(cluster))
    cluster.admission.append(webhooks)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=config.tls)
    await site.start()
    controllers = manager.start(cluster, Context(config.settings, RealClock()))
    stop = stop or _signal_event()
    port = sock.getsockname()[1]
    log.info("serving on %s:%d", config.host, port)
    if ready:
        ready(port)
    try:
        await stop.wait()
    finally:
        await manager.stop(controllers)
        await runner.cleanup()
        await webhooks.close()
        store.close()


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, event.set)
    return event
