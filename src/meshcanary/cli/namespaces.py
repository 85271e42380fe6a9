"""`meshcanary ns list`: per namespace, the revision it selects and what its pods really run.

The answer to "which namespaces still need work?" during a canary upgrade, like `istioctl x
injector list` but right for SMM-style `<cp>.<ns>` revisions. One snapshot of the cluster (a
LIST per kind), so it costs the same for 10 namespaces or 1,000. An unknown `-n` namespace is a
usage error (exit 2), as a typo should not look like an empty namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from meshcanary.cli import common

if TYPE_CHECKING:
    from meshcanary.mesh import inventory

app = typer.Typer(help="Namespaces and the control plane each one selects.", no_args_is_help=True)

COLUMNS = (
    common.Column("NAMESPACE"),
    common.Column("REVISION"),
    common.Column("POD REVISIONS"),
    common.Column("NEEDS RESTART"),
    common.Column("WITHOUT SIDECAR"),
    common.Column("PODS", wide=True),
    common.Column("REASON", wide=True),
)


@app.command("list")
def list_namespaces(
    namespace: list[str] | None = common.NamespacesOption,
    all_namespaces: bool = common.AllNamespacesOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Each namespace: revision selected (MISSING/<rev> if it does not exist), pod revisions
    with proxy versions, pods that need a restart, pods without a sidecar."""
    target = common.Target(kubeconfig, context)
    common.run(_list(target, namespace, all_namespaces, output))


async def _list(
    target: common.Target, namespaces: list[str] | None, everywhere: bool, output: common.Output
) -> None:
    from meshcanary.mesh import inventory

    scope, snapshot = await common.scoped_snapshot(target, namespaces, everywhere)
    check_known(scope, [str((ns.get("metadata") or {}).get("name")) for ns in snapshot.namespaces])
    rows = inventory.namespaces(snapshot, scope)
    common.print_table(table(rows), output)


def check_known(scope: Sequence[str] | None, existing: Sequence[str]) -> None:
    """Refuse namespaces that do not exist (exit 2), naming them."""
    unknown = sorted(set(scope or ()) - set(existing))
    if unknown:
        noun = "namespace" if len(unknown) == 1 else "namespaces"
        raise common.UserError(f"{noun} not found: {', '.join(unknown)}")


def table(rows: Sequence[inventory.NamespaceRow]) -> common.Table:
    """The table (and -o json|yaml data) of namespace rows."""
    cells = [
        (
            row.namespace,
            row.revision or "-",
            pod_revisions(row.pod_revisions) or "-",
            row.needs_restart,
            row.without_sidecar,
            row.live_pods,
            row.reason,
        )
        for row in rows
    ]
    return common.Table(COLUMNS, cells, lambda: common.rows_as_data(rows))


def pod_revisions(counts: Sequence[inventory.RevisionCount]) -> str:
    """`cp-a.istio-system: 5 (1.13.9)`, several revisions separated by `; `."""
    parts = [f"{count.revision}: {count.pods} ({','.join(count.versions)})" for count in counts]
    return "; ".join(parts)
