"""`meshcanary migrate` and `meshcanary rollback`: thin wiring from flags to `migrate.engine`.

Both print one report row per namespace and exit 0 only when every namespace is migrated and
verified (or had nothing to do); 1 when a check failed (stragglers, a failed rollout, a target
that is not Available); 2 for usage or connection errors (unknown namespace or control plane).
`--dry-run` prints the plan: the injection labels before and after, every controller to
restart and every pod that cannot be restarted, and changes nothing.

Decision: a bare pod (or a Job's pod) still on the old revision fails verification (exit 1).
It is named with advice; deleting the old control plane would break it, so "done" would lie.
Ctrl-C: the engine leaves every namespace at a step boundary with its record marked
`interrupted`; re-running the same command resumes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import typer

from meshcanary.cli import common

if TYPE_CHECKING:
    from meshcanary.migrate import engine, steps

INTERRUPT_HINT: Final = (
    "interrupted: every namespace was left at a step boundary (labels are written in one "
    "request); re-run the same command to resume"
)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")

COLUMNS = (
    common.Column("NAMESPACE"),
    common.Column("FROM"),
    common.Column("TO"),
    common.Column("RESULT"),
    common.Column("RESTARTED"),
    common.Column("CANNOT RESTART"),
    common.Column("STRAGGLERS"),
    common.Column("TIME", wide=True),
    common.Column("MESSAGE", wide=True),
)

MigrateNamespacesArgument: Any = typer.Argument(..., help="Namespaces to migrate.")
RollbackNamespacesArgument: Any = typer.Argument(..., help="Namespaces to roll back.")
ToOption: Any = typer.Option(
    ..., "--to", help="Target control plane: <name>, <name>.<ns> or an upstream revision."
)
RollbackToOption: Any = typer.Option(
    None, "--to", help="Roll back to this control plane instead of the recorded previous one."
)
CpNamespaceOption: Any = typer.Option(
    "istio-system", "--cp-namespace", help="Namespace of control planes named without one."
)
DryRunOption: Any = typer.Option(
    False, "--dry-run", help="Print what would change; change nothing."
)
TimeoutOption: Any = typer.Option(
    "5m", "--timeout", help="Longest wait for rollouts (e.g. 90s, 5m)."
)
ParallelOption: Any = typer.Option(4, "--parallel", min=1, help="Namespaces migrated at once.")
NoWaitOption: Any = typer.Option(
    False, "--no-wait", help="Restart and return; do not wait or verify."
)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1h30m` as seconds; UserError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise common.UserError(f"invalid duration {text!r}: use e.g. 90s, 5m or 1h")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def migrate(
    namespaces: list[str] = MigrateNamespacesArgument,
    to: str = ToOption,
    cp_namespace: str = CpNamespaceOption,
    dry_run: bool = DryRunOption,
    timeout: str = TimeoutOption,
    parallel: int = ParallelOption,
    no_wait: bool = NoWaitOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Move namespaces to a control plane: relabel, restart, wait, verify."""
    request = _Request(
        namespaces, to, cp_namespace, dry_run, timeout, parallel, not no_wait, output
    )
    _run(common.Target(kubeconfig, context), request, rollback=False)


def rollback(
    namespaces: list[str] = RollbackNamespacesArgument,
    to: str | None = RollbackToOption,
    cp_namespace: str = CpNamespaceOption,
    dry_run: bool = DryRunOption,
    timeout: str = TimeoutOption,
    parallel: int = ParallelOption,
    no_wait: bool = NoWaitOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Move namespaces back to their recorded previous control plane (or --to)."""
    request = _Request(
        namespaces, to, cp_namespace, dry_run, timeout, parallel, not no_wait, output
    )
    _run(common.Target(kubeconfig, context), request, rollback=True)


class _Request:
    """The flags of one invocation, validated."""

    def __init__(
        self,
        namespaces: Sequence[str],
        to: str | None,
        cp_namespace: str,
        dry_run: bool,
        timeout: str,
        parallel: int,
        wait: bool,
        output: common.Output,
    ) -> None:
        self.namespaces = list(dict.fromkeys(namespaces))
        self.to = to
        self.cp_namespace = cp_namespace
        self.dry_run = dry_run
        self.timeout_text = timeout
        self.parallel = parallel
        self.wait = wait
        self.output = output


def _run(target: common.Target, request: _Request, *, rollback: bool) -> None:
    try:
        common.run(_command(target, request, rollback))
    except typer.Exit as leaving:
        if leaving.exit_code == common.INTERRUPTED:
            typer.echo(INTERRUPT_HINT, err=True)
        raise


async def _command(target: common.Target, request: _Request, rollback: bool) -> None:
    from meshcanary.migrate import engine

    timeout = parse_duration(request.timeout_text)
    with NamespaceBars(request.namespaces, quiet=request.dry_run) as bars:
        async with common.session(target) as client:
            try:
                results = await _call(client, request, rollback, timeout, bars)
            except engine.MigrationError as error:
                code = common.USAGE if error.usage else common.CHECK_FAILED
                raise common.UserError(str(error), code) from None
    report(results, request)


async def _call(
    client: Any, request: _Request, rollback: bool, timeout: float, bars: NamespaceBars
) -> list[engine.NamespaceResult]:
    from meshcanary.migrate import engine

    options: dict[str, Any] = {
        "dry_run": request.dry_run,
        "timeout": timeout,
        "parallel": request.parallel,
        "wait": request.wait,
        "progress": bars,
        "cp_namespace": request.cp_namespace,
    }
    if rollback:
        return await engine.rollback(client, request.namespaces, to=request.to, **options)
    assert request.to is not None
    return await engine.migrate(client, request.namespaces, request.to, **options)


# -- progress ------------------------------------------------------------------------------------


class NamespaceBars:
    """A progress bar per namespace on a terminal; one line per event otherwise (CI logs)."""

    def __init__(self, namespaces: Sequence[str], *, quiet: bool = False) -> None:
        self._namespaces = list(namespaces)
        self._quiet = quiet
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> NamespaceBars:
        if not self._quiet and common.is_terminal(sys.stderr):
            from rich.console import Console
            from rich.progress import Progress

            console = Console(file=sys.stderr, no_color=not common.color_allowed())
            self._bars = Progress(console=console, transient=False)
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, event: steps.StepProgress) -> None:
        if self._quiet:
            return
        if self._bars is None:
            self._line(event)
            return
        task = self._tasks.get(event.namespace)
        if task is None:
            task = self._bars.add_task(event.namespace, total=None)
            self._tasks[event.namespace] = task
        description = f"{event.namespace}: {event.step}" + (
            f" {event.message}" if event.message else ""
        )
        total = event.total or None
        self._bars.update(task, description=description, completed=event.done, total=total)
        if event.step == "done":
            self._bars.update(task, completed=1, total=1)

    def _line(self, event: steps.StepProgress) -> None:
        counter = f" [{event.done}/{event.total}]" if event.total else ""
        message = f" {event.message}" if event.message else ""
        sys.stderr.write(f"{event.namespace}: {event.step}{counter}{message}\n")
        sys.stderr.flush()


# -- report --------------------------------------------------------------------------------------


def report(results: Sequence[engine.NamespaceResult], request: _Request) -> None:
    """Print the plan (dry run) or the table, then fail with exit 1 if a namespace did."""
    if request.output in (common.Output.JSON, common.Output.YAML):
        sys.stdout.write(common.dump([as_data(r) for r in results], request.output))
    elif request.dry_run:
        sys.stdout.write(describe_plans(results))
    else:
        common.print_table(table(results), request.output)
        sys.stdout.write(advice(results))
    failed = [r.namespace for r in results if not r.ok]
    if failed:
        raise common.CheckFailed(f"not migrated: {', '.join(failed)}")


def table(results: Sequence[engine.NamespaceResult]) -> common.Table:
    rows = [
        [
            r.namespace,
            r.previous or "-",
            r.target,
            str(r.outcome),
            [str(c) for c in r.plan.controllers] or "-",
            [f"pod/{u.pod}" for u in r.plan.unrestartable] or "-",
            list(r.stragglers) or "-",
            f"{r.seconds:.1f}s",
            r.message or "-",
        ]
        for r in results
    ]
    return common.Table(COLUMNS, rows, [as_data(r) for r in results])


def advice(results: Sequence[engine.NamespaceResult]) -> str:
    """Lines naming each pod that could not be restarted and what to do about it."""
    lines = [
        f"{r.namespace}: cannot restart pod/{u.pod} ({_owner(u)}): {u.advice}"
        for r in results
        for u in r.plan.unrestartable
    ]
    lines += [f"{r.namespace}: {r.message}" for r in results if not r.ok and r.message]
    return "".join(line + "\n" for line in lines)


def _owner(pod: Any) -> str:
    return f"{pod.kind} {pod.owner}" if pod.owner else str(pod.kind)


def describe_plans(results: Sequence[engine.NamespaceResult]) -> str:
    """Exactly what a real run would change, namespace by namespace."""
    lines: list[str] = []
    for r in results:
        plan = r.plan
        if plan.nothing_to_do:
            lines.append(f"namespace {r.namespace}: nothing to do (already on {r.target})")
            continue
        lines.append(f"namespace {r.namespace}: would migrate to {r.target}")
        for key, value in sorted(plan.label_patch.items()):
            before = plan.labels_before.get(key, "(none)")
            lines.append(
                f"  label {key}: {before} -> {value if value is not None else '(removed)'}"
            )
        if plan.previous_revision:
            lines.append(f"  record previous revision: {plan.previous_revision}")
        lines += [f"  restart {c}" for c in plan.controllers]
        lines += [
            f"  cannot restart pod/{u.pod} ({u.kind}): {u.advice}" for u in plan.unrestartable
        ]
    lines.append("dry run: nothing was changed")
    return "".join(line + "\n" for line in lines)


def as_data(result: engine.NamespaceResult) -> dict[str, Any]:
    """One namespace's report as plain data for `-o json|yaml`."""
    plan = result.plan
    return {
        "namespace": result.namespace,
        "from": result.previous,
        "to": result.target,
        "result": str(result.outcome),
        "labelsBefore": dict(plan.labels_before),
        "labelsAfter": dict(plan.labels_after),
        "restart": [str(c) for c in plan.controllers],
        "cannotRestart": [
            {"pod": u.pod, "kind": u.kind, "owner": u.owner, "advice": u.advice}
            for u in plan.unrestartable
        ],
        "stragglers": list(result.stragglers),
        "message": result.message,
        "seconds": round(result.seconds, 3),
    }
