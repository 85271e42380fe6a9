"""Conventions every `meshcanary` command shares, so users meet kubectl habits everywhere.

- Options: `--kubeconfig`, `--context`, `-n/--namespace`, `-A/--all-namespaces`,
  `-o/--output table|wide|json|yaml`, declared once here and reused as parameter defaults.
- Exit codes: `OK` 0, `CHECK_FAILED` 1 (the command ran but found something wrong),
  `USAGE` 2 (bad flags, bad kubeconfig, unreachable cluster), `INTERRUPTED` 130 (Ctrl-C).
- `run(coro)`: runs an async command body and turns every error a user can act on into one line
  on stderr (`error: ...`), with no traceback unless `meshcanary --debug` set `DEBUG`.
- `print_table`: a rich table on a terminal, plain kubectl-style text otherwise (uppercase
  headers, two-space gaps; scripts and `grep` see stable columns), JSON or YAML of the
  underlying data with `-o json|yaml`.
- `progress`: a rich progress bar on a terminal, one line per step otherwise (CI logs).

Heavy modules (rich, yaml, asyncio, the kube layer) are imported inside functions, so that
`meshcanary --help` and shell completion stay fast.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from meshcanary.mesh.inventory import MeshSnapshot

T = TypeVar("T")

OK: Final = 0
CHECK_FAILED: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130

DEBUG = [False]
"""Set by `meshcanary --debug` (the root callback in `cli/app.py`): show tracebacks."""


class Output(enum.StrEnum):
    """Values of `-o/--output`; typer turns the enum into a validated choice (exit 2 if wrong)."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


# -- options (reused as parameter defaults) ---------------------------------------------------

KubeconfigOption: Any = typer.Option(
    None, "--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
)
ContextOption: Any = typer.Option(None, "--context", help="The kubeconfig context to use.")
NamespaceOption: Any = typer.Option(None, "-n", "--namespace", help="The namespace to use.")
NamespacesOption: Any = typer.Option(
    None, "-n", "--namespace", help="Only these namespaces (repeatable)."
)
AllNamespacesOption: Any = typer.Option(
    False, "-A", "--all-namespaces", help="Every namespace (the default when -n is not given)."
)
OutputOption: Any = typer.Option(
    Output.TABLE, "-o", "--output", help="Output format.", case_sensitive=False
)


@dataclass(frozen=True)
class Target:
    """Which cluster to talk to, as the user named it (`--kubeconfig`, `--context`)."""

    kubeconfig: str | None = None
    context: str | None = None


def session(target: Target) -> AbstractAsyncContextManager[Any]:
    """`async with common.session(target) as client:` a connected client, closed afterwards.

    Connection problems (no kubeconfig, unknown context, unreachable server) raise KubeErrors
    that `run` prints as one line with exit code 2.
    """
    from meshcanary.kube import client

    return client.session(target.kubeconfig, target.context)


def namespace_scope(namespaces: Sequence[str] | None, all_namespaces: bool) -> list[str] | None:
    """The namespaces a listing is limited to (None: all), refusing `-n` together with `-A`."""
    if namespaces and all_namespaces:
        raise UserError("-n/--namespace and -A/--all-namespaces cannot be used together")
    return list(dict.fromkeys(namespaces)) if namespaces else None


async def scoped_snapshot(
    target: Target,
    namespaces: Sequence[str] | None,
    all_namespaces: bool,
    *,
    replicasets: bool = False,
) -> tuple[list[str] | None, MeshSnapshot]:
    """The listing's `namespace_scope`, and one snapshot of the mesh (a LIST per kind)."""
    from meshcanary.controlplane import inventory

    scope = namespace_scope(namespaces, all_namespaces)
    async with session(target) as client:
        snapshot = await inventory.snapshot(client, replicasets=replicasets)
    return scope, snapshot


# -- errors and exit codes --------------------------------------------------------------------


class UserError(Exception):
    """An error the user can act on: printed as one line, exit `code` (usage error by default)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CheckFailed(UserError):
    """The command ran and found something wrong (exit 1), e.g. a refused deletion."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CHECK_FAILED)


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run an async command body; map errors to one line and an exit code.

    `UserError` keeps its code; a `KubeError` is a usage/connection problem (2) except a
    timed-out wait (1: the cluster did not reach the state we checked for); anything else is
    a bug, reported in one line (1) unless `--debug` asks for the traceback. Ctrl-C exits 130.
    """
    import asyncio

    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(INTERRUPTED) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # every other error becomes one line, by design
        if DEBUG[0]:
            raise
        message, code = describe_error(error)
        fail(message, code)


def describe_error(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit code `run` uses for `error`."""
    from meshcanary.kube import errors

    if isinstance(error, UserError):
        return error.message, error.code
    if isinstance(error, errors.WaitTimeout):
        return str(error), CHECK_FAILED
    if isinstance(error, errors.KubeError):
        return str(error) or type(error).__name__, USAGE
    translated = errors.translate(error)
    if translated is not None and translated is not error:
        return str(translated), USAGE
    text = " ".join(str(error).split()) or type(error).__name__
    return f"unexpected {type(error).__name__}: {text} (run with --debug for details)", 1


# -- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: its header and whether it appears only with `-o wide`."""

    header: str
    wide: bool = False


@dataclass(frozen=True)
class Table:
    """Rows of cell values under `columns`, plus the data `-o json|yaml` dumps instead."""

    columns: Sequence[Column]
    rows: Sequence[Sequence[object]]
    data: Any = field(default=None)
    """What -o json|yaml prints; a callable is called only then (building it can be costly)."""


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (stdout by default) is an interactive terminal."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def color_allowed() -> bool:
    """False when NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def print_table(
    table: Table, output: Output = Output.TABLE, *, file: IO[str] | None = None
) -> None:
    """Print `table` the way `output` asks, to `file` (stdout by default)."""
    stream = file or sys.stdout
    if output in (Output.JSON, Output.YAML):
        data = table.data() if callable(table.data) else table.data
        stream.write(dump(data, output))
        return
    wide = output is Output.WIDE
    if is_terminal(stream):
        _rich_table(table, wide, stream)
    else:
        stream.write(format_plain(table, wide))


def dump(data: Any, output: Output) -> str:
    """`data` as indented JSON or block-style YAML, ending with a newline."""
    if output is Output.JSON:
        import json

        return json.dumps(data, indent=2, default=str) + "\n"
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _visible(table: Table, wide: bool) -> tuple[list[str], list[list[str]]]:
    keep = [i for i, column in enumerate(table.columns) if wide or not column.wide]
    headers = [table.columns[i].header.upper() for i in keep]
    rows = [[_cell(row[i]) for i in keep] for row in table.rows]
    return headers, rows


def _cell(value: object) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "<none>"
    return str(value)


def format_plain(table: Table, wide: bool = False) -> str:
    """kubectl's plain layout: uppercase headers, columns padded, two spaces between them."""
    headers, rows = _visible(table, wide)
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for line in [headers, *rows]:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(line)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def _rich_table(table: Table, wide: bool, stream: IO[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    headers, rows = _visible(table, wide)
    plain = not color_allowed()
    console = Console(file=stream, no_color=plain, highlight=False)
    # Never squeeze or fold cells (kubectl does not): widen the console to the table's width.
    natural = max(len(line) for line in format_plain(table, wide).splitlines()) + 2 * len(headers)
    console.width = max(console.width, natural)
    rich_table = RichTable(
        box=box.SIMPLE_HEAD, header_style="" if plain else "bold", pad_edge=False
    )
    for header in headers:
        rich_table.add_column(header, no_wrap=True)
    for row in rows:
        rich_table.add_row(*row)
    console.print(rich_table)


def echo_error(message: str) -> None:
    """A one-line message on stderr, prefixed like every other error."""
    typer.echo(f"error: {message}", err=True)


def echo_warning(message: str) -> None:
    """A one-line warning on stderr."""
    typer.echo(f"warning: {message}", err=True)


def rows_as_data(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Frozen dataclass rows as plain dicts for `-o json|yaml` (nested values kept)."""
    import dataclasses

    return [_plain(dataclasses.asdict(row)) for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# -- progress ---------------------------------------------------------------------------------


class Progress:
    """Progress of a multi-step operation: `step(message)` after each unit of work.

    On a terminal a rich progress bar on stderr; otherwise one line per step (`[3/10] message`),
    which reads well in CI logs. `total` may be None when the number of steps is unknown.
    """

    def __init__(
        self, label: str, total: int | None = None, *, stream: IO[str] | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if is_terminal(self._stream):
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            console = Console(file=self._stream, no_color=not color_allowed())
            self._bar = RichProgress(console=console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def step(self, message: str = "", advance: int = 1) -> None:
        """Record `advance` finished units, with a line saying what just finished."""
        self.done += advance
        if self._bar is not None:
            description = f"{self.label}: {message}" if message else self.label
            self._bar.update(self._task, advance=advance, description=description)
            return
        counter = f"[{self.done}/{self.total}]" if self.total is not None else f"[{self.done}]"
        self._stream.write(f"{counter} {message or self.label}\n")
        self._stream.flush()

    def note(self, message: str) -> None:
        """A line of information that does not advance the bar (printed above it on a TTY)."""
        if self._bar is not None:
            self._bar.console.print(message, highlight=False, markup=False)
            return
        self._stream.write(message + "\n")
        self._stream.flush()


@contextmanager
def progress(
    label: str, total: int | None = None, *, stream: IO[str] | None = None
) -> Iterator[Progress]:
    """`with progress("restarting", total=3) as bar: ... bar.step("deployment/web")`."""
    with Progress(label, total, stream=stream) as bar:
        yield bar
