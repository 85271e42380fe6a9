"""`meshcanary sandbox ...`: start, stop, inspect and reset local sandbox clusters."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

app = typer.Typer(
    help="A local Kubernetes API server to rehearse upgrades on.", no_args_is_help=True
)
DEBUG = [False]

NameOption = typer.Option("default", "--name", help="Which sandbox (several can run side by side).")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    from meshcanary.sandbox.runtime import SandboxError

    try:
        yield
    except SandboxError as exc:
        if DEBUG[0]:
            raise
        _fail(str(exc))
    except OSError as exc:
        if DEBUG[0]:
            raise
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


def _usage(sandbox_name: str, kubeconfig: str, port: int) -> str:
    return (
        f"sandbox {sandbox_name!r} is running on 127.0.0.1:{port}\n"
        f"kubeconfig: {kubeconfig}\n\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  kubectl get namespaces\n"
    )


def _check_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        _fail(f"--address must be an IP address, got {host!r}")
        return
    if not address.is_loopback:
        typer.echo(
            f"warning: listening on {host}, reachable from other machines"
            " (the token is still required)",
            err=True,
        )


@app.command()
def up(
    name: str = NameOption,
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0 picks a free one)."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on."),
    foreground: bool = typer.Option(False, "--foreground", help="Run in this terminal (debug)."),
    nodes: int | None = typer.Option(None, "--nodes", help="Simulated nodes (default 3)."),
    pod_ready_delay: float | None = typer.Option(
        None,
        "--pod-ready-delay",
        help="Seconds from Running to Ready (default 0.1).",
    ),
) -> None:
    """Start a sandbox (harmless when it already runs) and write its kubeconfig."""
    from meshcanary.sandbox import runtime

    _check_host(address)
    with _user_errors():
        sandbox = runtime.Sandbox.named(name)
        sandbox.update_settings(nodes=nodes, pod_ready_delay=pod_ready_delay)
        status = sandbox.status()
        if status.state is runtime.State.RUNNING and (nodes or pod_ready_delay is not None):
            typer.echo(
                "new settings apply at the next start: run `meshcanary sandbox down` then `up`",
                err=True,
            )
        if status.state is runtime.State.RUNNING:
            assert status.port is not None
            typer.echo(f"sandbox {name!r} is already running")
            typer.echo(_usage(name, str(sandbox.kubeconfig), status.port))
            return
        if status.state is not runtime.State.STOPPED:
            typer.echo(
                f"sandbox {name!r} was {status.state.value} ({status.detail}); restarting it",
                err=True,
            )
            sandbox.stop()
        if foreground:
            from meshcanary.sandbox.__main__ import run

            typer.echo(f"serving sandbox {name!r} in the foreground; Ctrl-C stops it", err=True)
            run(sandbox, address, port)
            return
        status = sandbox.start(address, port, _spinner("starting sandbox"))
        assert status.port is not None
        typer.echo(_usage(name, str(sandbox.kubeconfig), status.port))


def _spinner(label: str) -> Callable[[], None]:
    frames = "|/-\\"
    state = {"i": 0}
    interactive = sys.stderr.isatty()

    def tick() -> None:
        if interactive:
            state["i"] += 1
            sys.stderr.write(f"\r{frames[state['i'] % 4]} {label}...")
            sys.stderr.flush()

    return tick


@app.command()
def down(name: str = NameOption) -> None:
    """Stop a sandbox; its state is kept for the next `up`."""
    from meshcanary.sandbox import runtime

    with _user_errors():
        stopped = runtime.Sandbox.named(name).stop()
    typer.echo(f"sandbox {name!r} stopped" if stopped else f"sandbox {name!r} was not running")


@app.command()
def status(
    name: str = NameOption,
    output: str = typer.Option("text", "-o", "--output", help="text or json."),
) -> None:
    """Whether a sandbox runs, checked against the process and its /healthz (exit 1 if not)."""
    from meshcanary.sandbox import runtime

    if output not in ("text", "json"):
        _fail(f"unsupported output format {output!r}: use text or json")
    with _user_errors():
        sandbox = runtime.Sandbox.named(name)
        current = sandbox.status()
    report: dict[str, Any] = {
        "name": name,
        "state": current.state.value,
        "pid": current.pid,
        "port": current.port,
        "kubeconfig": str(sandbox.kubeconfig) if sandbox.kubeconfig.exists() else None,
        "detail": current.detail,
    }
    if output == "json":
        typer.echo(json.dumps(report, indent=2))
    else:
        line = f"sandbox {name!r}: {current.state.value}"
        if current.port:
            line += f" (pid {current.pid}, 127.0.0.1:{current.port})"
        if current.detail:
            line += f": {current.detail}"
        typer.echo(line)
        if current.state is runtime.State.CRASHED:
            typer.echo(f"see {sandbox.log}; `meshcanary sandbox up --name {name}` restarts it")
    if current.state is not runtime.State.RUNNING:
        raise typer.Exit(1)


@app.command()
def reset(name: str = NameOption) -> None:
    """Wipe a sandbox's cluster state; a running sandbox is restarted empty."""
    from meshcanary.sandbox import runtime

    with _user_errors():
        sandbox = runtime.Sandbox.named(name)
        info = sandbox.server_info()
        was_running = sandbox.status().state is runtime.State.RUNNING
        sandbox.stop()
        sandbox.wipe()
        if was_running and info:
            sandbox.start(str(info.get("host", "127.0.0.1")), int(info["port"]))
    typer.echo(f"sandbox {name!r} reset" + (" and restarted" if was_running else ""))


@app.command()
def kubeconfig(name: str = NameOption) -> None:
    """Print the path of a sandbox's kubeconfig."""
    from meshcanary.sandbox import runtime

    with _user_errors():
        sandbox = runtime.Sandbox.named(name)
    if not sandbox.kubeconfig.exists():
        _fail(f"sandbox {name!r} has no kubeconfig yet: run `meshcanary sandbox up --name {name}`")
    typer.echo(str(sandbox.kubeconfig))


# Last: `cli/faults.py` imports the helpers above.
from meshcanary.cli import faults  # noqa: E402

app.add_typer(faults.app, name="fault")
