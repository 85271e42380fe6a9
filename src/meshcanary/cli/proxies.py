"""`meshcanary proxies`: every live sidecar, its workload, revision and version.

MATCHES says whether the pod already runs the revision its namespace now selects: during a
migration the `no` rows are exactly the pods a restart still has to move. Finished pods
(Succeeded/Failed) are never listed: they hold no live proxy. One snapshot plus one LIST of
ReplicaSets (to name each pod's Deployment exactly), whatever the number of namespaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from meshcanary.cli import common, namespaces

if TYPE_CHECKING:
    from meshcanary.mesh import inventory

COLUMNS = (
    common.Column("NAMESPACE"),
    common.Column("POD"),
    common.Column("OWNER"),
    common.Column("REVISION"),
    common.Column("VERSION"),
    common.Column("READY"),
    common.Column("MATCHES"),
)


def proxies(
    namespace: list[str] | None = common.NamespacesOption,
    all_namespaces: bool = common.AllNamespacesOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Each live pod with a sidecar: owner, revision, proxy version, ready, and whether it
    matches its namespace's current revision."""
    target = common.Target(kubeconfig, context)
    common.run(_list(target, namespace, all_namespaces, output))


async def _list(
    target: common.Target, scope_names: list[str] | None, everywhere: bool, output: common.Output
) -> None:
    from meshcanary.mesh import inventory

    scope, snapshot = await common.scoped_snapshot(
        target, scope_names, everywhere, replicasets=True
    )
    names = [str((ns.get("metadata") or {}).get("name")) for ns in snapshot.namespaces]
    namespaces.check_known(scope, names)
    common.print_table(table(inventory.proxies_view(snapshot, scope)), output)


def table(rows: Sequence[inventory.ProxyRow]) -> common.Table:
    """The table (and -o json|yaml data) of proxy rows."""
    cells = [
        (
            row.namespace,
            row.pod,
            row.owner,
            row.revision,
            row.version,
            "true" if row.ready else "false",
            "-" if row.matches is None else ("yes" if row.matches else "no"),
        )
        for row in rows
    ]
    return common.Table(COLUMNS, cells, lambda: common.rows_as_data(rows))
