"""`analyze`: the one function every caller uses (CLI, upgrade pre-flight, dashboard).

It runs the schema, config and state analyzers over one snapshot and returns findings in a
deterministic order (errors first, then by code, resource and message), so two runs over the
same cluster print the same thing and tests compare lists. Config checks against a version need a
target; without one only the schema and state checks run (what `validate` does with no `--to`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meshcanary.mesh.versions import Version
from meshcanary.validate import config, schemas, state
from meshcanary.validate.findings import Finding, Severity
from meshcanary.validate.snapshot import ValidationSnapshot


def analyze(
    snapshot: ValidationSnapshot,
    target: Version | None = None,
    namespaces: Iterable[str] | None = None,
    *,
    in_place: bool = False,
) -> list[Finding]:
    """Every finding for moving the mesh to `target` (None: no version checks).

    `namespaces` limits config findings to resources in those namespaces and state findings to
    those namespaces and the control planes serving them; `in_place` applies the in-place jump
    rule (one minor) instead of the revision-based one (two).
    """
    scope = frozenset(namespaces) if namespaces is not None else None
    objects = [obj for obj in snapshot.config if scope is None or _namespace(obj) in scope]
    found = schemas.analyze(objects)
    if target is not None:
        found += config.analyze(objects, snapshot.current_version, target)
    found += state.analyze(snapshot, state.Context(target, in_place, scope))
    return sorted(set(found), key=Finding.sort_key)


def _namespace(obj: config.Object) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


@dataclass(frozen=True)
class Summary:
    """How many findings of each severity: what a status line or a gate needs."""

    errors: int
    warnings: int
    infos: int

    @property
    def blocking(self) -> bool:
        """Whether an automated upgrade must stop."""
        return self.errors > 0

    def __str__(self) -> str:
        return f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}" + (
            f", {self.infos} info" if self.infos else ""
        )


def summarize(findings: Iterable[Finding]) -> Summary:
    """Counts per severity."""
    severities = [f.severity for f in findings]
    return Summary(
        severities.count(Severity.ERROR),
        severities.count(Severity.WARNING),
        severities.count(Severity.INFO),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
