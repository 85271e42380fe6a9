"""`meshcanary cp list` and `meshcanary cp delete`: the control planes, and removing one safely.

`cp list` shows every revision however it was installed: IstioControlPlane resources and the
istiod Deployments / injection webhooks of istioctl or Helm installs, with the tags pointing at
each, its live proxies and the namespaces that select it.

`cp delete` is the last step of a canary upgrade and the dangerous one: it refuses (exit 1,
naming them) while live proxies or namespace labels still reference the revision, using the
same rules as the operator's admission webhook (`controlplane.deletion`). `--force` sets the
force annotation first, so the operator lets it go. It then waits, with a progress display,
until the resource and every object labelled with its revision are gone, and deletes leftovers
itself (a cluster where no operator runs). A revision installed by other means is explained,
not deleted: meshcanary did not install it and cannot know everything the installer created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from meshcanary.cli import common

if TYPE_CHECKING:
    from meshcanary.mesh import inventory

app = typer.Typer(help="Istio control planes (revisions).", no_args_is_help=True)

DEFAULT_NAMESPACE = "istio-system"
COLUMNS = (
    common.Column("NAME"),
    common.Column("NAMESPACE"),
    common.Column("VERSION"),
    common.Column("STATUS"),
    common.Column("REVISION"),
    common.Column("PROXIES"),
    common.Column("NAMESPACES"),
    common.Column("TAGS"),
    common.Column("SOURCE", wide=True),
    common.Column("ATTACHED", wide=True),
)


@app.command("list")
def list_control_planes(
    namespace: list[str] | None = common.NamespacesOption,
    all_namespaces: bool = common.AllNamespacesOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Every control plane: IstioControlPlanes and revisions installed by istioctl or Helm."""
    target = common.Target(kubeconfig, context)
    common.run(_list(target, namespace, all_namespaces, output))


async def _list(
    target: common.Target, scope_names: list[str] | None, everywhere: bool, output: common.Output
) -> None:
    from meshcanary.mesh import inventory

    scope, snapshot = await common.scoped_snapshot(target, scope_names, everywhere)
    rows = inventory.control_planes(snapshot)
    if scope is not None:
        rows = [row for row in rows if row.namespace in scope]
    common.print_table(table(rows), output)


def table(rows: Sequence[inventory.ControlPlaneRow]) -> common.Table:
    """The table (and -o json|yaml data) of control plane rows."""
    cells = [
        (
            row.name,
            row.namespace,
            row.version,
            row.status,
            row.revision,
            row.proxies,
            len(row.namespaces),
            ",".join(row.tags) or "-",
            row.source,
            ",".join(row.namespaces) or "-",
        )
        for row in rows
    ]
    return common.Table(COLUMNS, cells, lambda: common.rows_as_data(rows))


# -- delete -----------------------------------------------------------------------------------


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The IstioControlPlane (NAME, or NAME.NAMESPACE)."),
    namespace: str | None = typer.Option(
        None, "-n", "--namespace", help=f"Its namespace (default {DEFAULT_NAMESPACE})."
    ),
    force: bool = typer.Option(
        False, "--force", help="Delete even though proxies or namespaces still use it."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    timeout: float = typer.Option(
        120.0, "--timeout", min=1.0, help="Seconds to wait until everything is gone."
    ),
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Delete a control plane once nothing uses it, and wait until all of it is gone."""
    cp_name, cp_namespace = split_name(name, namespace)
    request = Request(cp_name, cp_namespace, force, dry_run, timeout)
    common.run(_delete(common.Target(kubeconfig, context), request))


def split_name(name: str, namespace: str | None) -> tuple[str, str]:
    """`cp-a` + `-n ns`, or the revision form `cp-a.ns` (then `-n` must agree)."""
    base, dot, suffix = name.partition(".")
    if not dot:
        return name, namespace or DEFAULT_NAMESPACE
    if namespace and namespace != suffix:
        raise typer.BadParameter(f"{name!r} names namespace {suffix!r} but -n says {namespace!r}")
    return base, suffix


@dataclass(frozen=True)
class Request:
    """What `cp delete` was asked to do."""

    name: str
    namespace: str
    force: bool
    dry_run: bool
    timeout: float

    @property
    def display(self) -> str:
        return f"istiocontrolplane {self.namespace}/{self.name}"


async def _delete(target: common.Target, request: Request) -> None:
    from meshcanary.controlplane import deletion
    from meshcanary.kube import listing, resources

    async with common.session(target) as client:
        found = await listing.get(
            client, resources.IstioControlPlane, request.name, namespace=request.namespace
        )
        if found is None:
            raise common.UserError(await _not_found(client, request))
        cp = deletion.target(found)
        if cp is None:
            raise common.UserError(f"{request.display} names no valid revision")
        blockers = await deletion.find_blockers(client, cp)
        if blockers and not request.force:
            raise common.CheckFailed(deletion.refusal_message(blockers) + " (or pass --force)")
        if blockers:
            common.echo_warning(f"--force: {deletion.refusal_message(blockers)}")
        if request.dry_run:
            await _dry_run(client, request, cp.revision)
            return
        await _remove(client, request, cp.revision)


async def _not_found(client: Any, request: Request) -> str:
    """Why there is nothing to delete, explaining revisions installed by other means."""
    from meshcanary.controlplane import inventory as gather
    from meshcanary.mesh import inventory

    rows = inventory.control_planes(await gather.snapshot(client))
    wanted = {request.name, f"{request.name}.{request.namespace}"}
    for row in rows:
        if row.source != inventory.OPERATOR and (row.revision in wanted or row.name in wanted):
            return upstream_message(row)
    known = ", ".join(f"{r.namespace}/{r.name}" for r in rows if r.source == inventory.OPERATOR)
    return f"{request.display} not found (istiocontrolplanes: {known or 'none'})"


def upstream_message(row: inventory.ControlPlaneRow) -> str:
    """How to remove a revision meshcanary did not install."""
    return (
        f"revision {row.revision} was installed by istioctl or Helm ({row.source} "
        f"{row.namespace}/{row.name}), not by an IstioControlPlane, so meshcanary cannot delete "
        f"it; once `meshcanary ns list -A` shows no namespace on it and `cp list` shows 0 proxies, "
        f"run `istioctl uninstall --revision {row.revision}` (or `helm uninstall` its release)"
    )


async def _dry_run(client: Any, request: Request, revision: str) -> None:
    from meshcanary.controlplane import deletion
    from meshcanary.controlplane import inventory as gather

    objects = await gather.revision_objects(client, revision, request.namespace)
    if request.force:
        typer.echo(f"would annotate {request.display} {deletion.FORCE_ANNOTATION}=true")
    typer.echo(f"would delete {request.display}")
    for found in objects:
        typer.echo(f"would delete {found.ref}")


async def _remove(client: Any, request: Request, revision: str) -> None:
    import asyncio

    from meshcanary.controlplane import deletion
    from meshcanary.controlplane import inventory as gather
    from meshcanary.kube import apply, resources

    if request.force:
        patch = {"metadata": {"annotations": {deletion.FORCE_ANNOTATION: "true"}}}
        await apply.merge_patch(
            client, resources.IstioControlPlane, request.name, patch, namespace=request.namespace
        )
    await apply.delete(
        client, resources.IstioControlPlane, request.name, namespace=request.namespace
    )
    objects = await gather.revision_objects(client, revision, request.namespace)
    with common.progress(f"deleting {request.name}", total=1 + len(objects)) as bar:
        try:
            async with asyncio.timeout(request.timeout):
                await _wait_all_gone(client, request, revision, bar)
        except TimeoutError:
            raise common.CheckFailed(_timeout_message(request)) from None
    typer.echo(f"{request.display} deleted, and every object of revision {revision}")


async def _wait_all_gone(
    client: Any, request: Request, revision: str, bar: common.Progress
) -> None:
    """The resource first (its finalizer cleans up), then any leftover is deleted and awaited."""
    import asyncio

    from meshcanary.controlplane import inventory as gather
    from meshcanary.kube import listing, resources

    await listing.watch_until(
        client,
        resources.IstioControlPlane,
        request.namespace,
        request.name,
        _gone,
        timeout=request.timeout,
    )
    bar.step(f"istiocontrolplane/{request.name} gone")
    leftovers = await gather.revision_objects(client, revision, request.namespace)
    await asyncio.gather(*(_delete_and_wait(client, found, request, bar) for found in leftovers))
    if bar.total is not None and bar.done < bar.total:
        bar.step("the rest was already gone", advance=bar.total - bar.done)


async def _delete_and_wait(client: Any, found: Any, request: Request, bar: common.Progress) -> None:
    from meshcanary.kube import apply, listing

    ref = found.ref
    await apply.delete(client, found.resource, ref.name, namespace=ref.namespace)
    await listing.watch_until(
        client, found.resource, ref.namespace, ref.name, _gone, timeout=request.timeout
    )
    bar.step(f"{ref} gone")


def _gone(obj: object) -> bool:
    return obj is None


def _timeout_message(request: Request) -> str:
    return (
        f"{request.display} is not gone after {request.timeout:g}s; if it is Terminating, its "
        "finalizer waits for the meshcanary operator (is it running?)"
    )
