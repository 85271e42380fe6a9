"""Entry point of the `meshcanary` command.

Sub-command modules are imported by typer at start-up, but each keeps its heavy imports inside
the command bodies so that `meshcanary --help` stays fast. Errors the user can act on are printed
as one line and mapped to exit codes: 0 ok, 1 a check failed, 2 usage or connection error.
"""

from __future__ import annotations

import sys

import typer

from meshcanary.cli import (
    common,
    controlplanes,
    dashboard,
    demo,
    migrate,
    namespaces,
    operator,
    proxies,
    sandbox,
    validate,
)

app = typer.Typer(
    name="meshcanary",
    help="Canary upgrades of Istio control planes, verifiable and reversible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(sandbox.app, name="sandbox")
app.command("operator")(operator.operator)
app.command("migrate")(migrate.migrate)
app.command("rollback")(migrate.rollback)
app.add_typer(controlplanes.app, name="cp")
app.add_typer(namespaces.app, name="ns")
app.command("proxies")(proxies.proxies)
app.command("demo")(demo.demo)
app.command("validate")(validate.validate)
app.command("dashboard")(dashboard.dashboard)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
) -> None:
    """Canary upgrades of Istio control planes, verifiable and reversible."""
    sandbox.DEBUG[0] = debug
    common.DEBUG[0] = debug


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
