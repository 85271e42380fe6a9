"""`meshcanary dashboard`: serve the web dashboard until Ctrl-C.

It prints one URL carrying a fresh token (`http://127.0.0.1:PORT/?token=...`); opening it logs
the browser in. Read-only unless `--allow-actions`. Binding anything but a loopback address
exposes the mesh's inventory to the network (still behind the token), so it warns.
Ctrl-C and SIGTERM stop it cleanly (exit 0): stopping a server is not an interruption.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import typer

from meshcanary.cli import common

AddressOption: Any = typer.Option(
    "127.0.0.1", "--address", help="Address to listen on (loopback by default)."
)
PortOption: Any = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port).")
AllowActionsOption: Any = typer.Option(
    False, "--allow-actions", help="Allow migrate and rollback from the page."
)
OpenOption: Any = typer.Option(False, "--open", help="Open the dashboard in a web browser.")


def dashboard(
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
    address: str = AddressOption,
    port: int = PortOption,
    allow_actions: bool = AllowActionsOption,
    open_browser: bool = OpenOption,
) -> None:
    """Serve the web dashboard (MESH, namespaces, validation, timeline) and print its URL."""
    from meshcanary.dashboard import server

    if not server.is_loopback(address):
        common.echo_warning(
            f"listening on {address}, not a loopback address: anyone who can reach it and "
            "has the token can see the mesh" + (" and migrate namespaces" if allow_actions else "")
        )
    settings = server.Settings(allow_actions=allow_actions, address=address, port=port)
    common.run(_serve(common.Target(kubeconfig, context), settings, open_browser))


async def _serve(target: common.Target, settings: Any, open_browser: bool) -> None:
    from meshcanary.dashboard import cluster, server

    async with common.session(target) as client:
        running = await server.start(cluster.ClusterSource(client), settings)
        try:
            mode = "actions allowed" if settings.allow_actions else "read-only"
            sys.stdout.write(f"dashboard ({mode}): {running.url}\n")
            sys.stdout.flush()
            if open_browser:
                _open(running.url)
            await _until_stopped()
        finally:
            await running.stop()
    typer.echo("dashboard stopped", err=True)


async def _until_stopped() -> None:
    """Until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


def _open(url: str) -> None:
    import webbrowser

    if not webbrowser.open(url):
        common.echo_warning("could not open a browser; open the URL above")
