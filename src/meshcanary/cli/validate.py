"""`meshcanary validate`: check the mesh's Istio config and state before migrating.

The seed tells users to "check the Validation UI and fix any errors" before migrating; this is
that check on the command line, the same `validate.engine.analyze` the upgrade pre-flight and the
dashboard call. The target version comes from `--to-version 1.x[.y]` or from a control plane
(`--to CP`: its IstioControlPlane `spec.version`, else its istiod image tag); without either,
only the schema and mesh-state checks run. Exit codes: 1 when there are errors (so CI and
scripts can gate on it), 2 on usage or connection errors, 0 otherwise (warnings do not fail).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from meshcanary.cli import common, namespaces

if TYPE_CHECKING:
    from meshcanary.mesh.versions import Version
    from meshcanary.validate.findings import Finding
    from meshcanary.validate.snapshot import ValidationSnapshot

COLUMNS = (
    common.Column("SEVERITY"),
    common.Column("CODE"),
    common.Column("TITLE", wide=True),
    common.Column("RESOURCE"),
    common.Column("MESSAGE"),
    common.Column("FIX"),
)


def validate(
    to: str | None = typer.Option(
        None, "--to", help="Target control plane (name, or name.namespace): use its version."
    ),
    to_version: str | None = typer.Option(
        None, "--to-version", help="Target Istio version, e.g. 1.17 or 1.17.2."
    ),
    in_place: bool = typer.Option(
        False, "--in-place", help="Apply the in-place jump rule (1 minor) instead of canary (2)."
    ),
    namespace: list[str] | None = common.NamespacesOption,
    all_namespaces: bool = common.AllNamespacesOption,
    output: common.Output = common.OutputOption,
    kubeconfig: str | None = common.KubeconfigOption,
    context: str | None = common.ContextOption,
) -> None:
    """Validate Istio configuration and mesh state against a target version: findings with a
    severity, a stable code (docs/validation.md), the resource, a message and the fix."""
    target = common.Target(kubeconfig, context)
    findings = common.run(
        _validate(target, to, to_version, in_place, namespace, all_namespaces, output)
    )
    if any(f.severity == "Error" for f in findings):
        raise typer.Exit(common.CHECK_FAILED)


async def _validate(
    target: common.Target,
    to: str | None,
    to_version: str | None,
    in_place: bool,
    names: list[str] | None,
    everywhere: bool,
    output: common.Output,
) -> list[Finding]:
    from meshcanary.validate import engine, gather

    if to and to_version:
        raise common.UserError("--to and --to-version cannot be used together")
    version = parse_version(to_version) if to_version else None
    scope = common.namespace_scope(names, everywhere)
    async with common.session(target) as client:
        snapshot = await gather.snapshot(client)
    namespaces.check_known(scope, [_name(ns) for ns in snapshot.mesh.namespaces])
    if to:
        version = resolve_control_plane(snapshot, to)
    findings = engine.analyze(snapshot, version, scope, in_place=in_place)
    print_findings(findings, version, snapshot, output)
    return findings


def _name(obj: Any) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def parse_version(text: str) -> Version:
    """`--to-version`, or a usage error saying what a version looks like."""
    from meshcanary.mesh import versions

    try:
        return versions.parse(text)
    except ValueError as error:
        raise common.UserError(str(error)) from None


def resolve_control_plane(snapshot: ValidationSnapshot, name: str) -> Version:
    """The version of the control plane `name` (`cp`, `cp.namespace` or a revision)."""
    rows = [
        row
        for row in snapshot.control_planes
        if name in _names(row.name, row.namespace) or name == row.revision
    ]
    if not rows:
        raise common.UserError(f"control plane {name} not found (see `meshcanary cp list`)")
    if len(rows) > 1:
        found = ", ".join(sorted(f"{row.name}.{row.namespace}" for row in rows))
        raise common.UserError(f"control plane {name} is ambiguous ({found}): use name.namespace")
    version = snapshot.versions_by_revision.get(rows[0].revision)
    if version is None:
        raise common.UserError(f"the version of control plane {name} is unknown; use --to-version")
    return version


def _names(name: str, namespace: str) -> set[str]:
    """How a user may name a control plane: `cp`, `cp.ns`; `istiod-cp` also as `cp`."""
    short = name.removeprefix("istiod-")
    return {name, short, f"{name}.{namespace}", f"{short}.{namespace}"}


def print_findings(
    findings: Sequence[Finding],
    version: Version | None,
    snapshot: ValidationSnapshot,
    output: common.Output,
) -> None:
    """The table (or JSON/YAML document) and the summary line."""
    from meshcanary.validate import engine

    summary = engine.summarize(findings)
    data = {
        "target": str(version) if version else None,
        "current": str(snapshot.current_version) if snapshot.current_version else None,
        "summary": {"errors": summary.errors, "warnings": summary.warnings, "infos": summary.infos},
        "findings": [as_data(f) for f in findings],
    }
    common.print_table(common.Table(COLUMNS, rows(findings), data), output)
    line = f"{summary}" + (f" (target {version})" if version else " (no target version)")
    if output in (common.Output.JSON, common.Output.YAML):
        typer.echo(line, err=True)
    else:
        typer.echo(line)


def rows(findings: Sequence[Finding]) -> list[tuple[object, ...]]:
    from meshcanary.validate import findings as registry

    return [
        (
            f.severity.value,
            f.code,
            registry.CODES[f.code].title,
            str(f.resource),
            f.message,
            f.fix,
        )
        for f in findings
    ]


def as_data(found: Finding) -> dict[str, Any]:
    """One finding as plain data for -o json|yaml."""
    return {
        "severity": found.severity.value,
        "code": found.code,
        "resource": {
            "kind": found.resource.kind,
            "namespace": found.resource.namespace,
            "name": found.resource.name,
        },
        "message": found.message,
        "fix": found.fix,
    }
