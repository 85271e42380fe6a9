"""Config analyzers: will the mesh's Istio configuration still work on the target version?

Each analyzer is a pure function `(objects, current, target) -> findings`, where `current` is the
oldest running control plane's version (None when unknown) and `target` the version being
upgraded to. The version-specific knowledge is data: `facts` (fields, defaults, Envoy filter
names) and `controlplane.istio_crds` (API versions served per minor). The EnvoyFilter checks
follow upstream's IST0155 (relative patch + proxyVersion) and IST0133 (deprecated names and
types), plus one upstream lacks: a proxyVersion regex that matches today's proxies but not the
target's, which makes a patch silently vanish mid-migration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from meshcanary.controlplane import istio_crds
from meshcanary.mesh import versions
from meshcanary.mesh.versions import Version
from meshcanary.validate import facts
from meshcanary.validate.findings import Finding, Resource, finding, of

Object = Mapping[str, Any]
Analyzer = Callable[[Sequence[Object], Version | None, Version], Iterable[Finding]]
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
_KINDS: Final = {(kind.group, kind.kind): kind for kind in istio_crds.KINDS}
_RENAMES: Final = facts.renames_by_name()
_NAME_KEYS: Final = frozenset({"name", "listenerFilter"})
_TYPE_KEYS: Final = frozenset({"@type", "type_url", "typeUrl"})


def analyze(objects: Sequence[Object], current: Version | None, target: Version) -> list[Finding]:
    """Every config finding for an upgrade from `current` to `target`."""
    found: list[Finding] = []
    if not versions.is_supported(target):
        found.append(unknown_target(target))
    for analyzer in ANALYZERS:
        found.extend(analyzer(objects, current, target))
    return found


def unknown_target(target: Version) -> Finding:
    return finding(
        "MC0001",
        Resource("Version", "", str(target)),
        f"meshcanary has no upgrade facts for Istio {target.major}.{target.minor}",
    )


# -- field facts ----------------------------------------------------------------------------------


def field_facts(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """Removed, deprecated and changed-default fields (facts.FIELD_FACTS)."""
    by_kind: dict[str, list[facts.FieldFact]] = {}
    for fact in facts.FIELD_FACTS:
        if fact.applies(current, target):
            by_kind.setdefault(fact.kind, []).append(fact)
    for obj in objects:
        for fact in by_kind.get(str(obj.get("kind")), ()):
            if _fact_holds(obj, fact):
                yield _fact_finding(obj, fact)


def _fact_holds(obj: Object, fact: facts.FieldFact) -> bool:
    return any(
        facts.holds(value, fact.when) for path in fact.paths for value in facts.lookup(obj, path)
    )


_FACT_CODES: Final = {
    facts.Effect.REMOVED: "MC0101",
    facts.Effect.DEPRECATED: "MC0102",
    facts.Effect.DEFAULT_CHANGED: "MC0104",
}


def _fact_finding(obj: Object, fact: facts.FieldFact) -> Finding:
    where = " or ".join(fact.paths)
    message = f"{where}: {fact.message} from Istio {_minor(fact.since)} ({fact.source})"
    return finding(_FACT_CODES[fact.effect], of(obj), message, fact.fix)


def _minor(version: Version) -> str:
    return f"{version.major}.{version.minor}"


# -- API versions ---------------------------------------------------------------------------------


def api_versions(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """Resources written with an API version the target's CRDs do not serve.

    A LIST returns every object at the version asked for, so the version a user wrote is read
    from `last-applied-configuration` and `managedFields` (what GitOps will apply again).
    """
    if not versions.is_supported(target):
        return
    for obj in objects:
        for api_version in sorted(authored_api_versions(obj)):
            group, _, version = api_version.rpartition("/")
            kind = _KINDS.get((group, str(obj.get("kind"))))
            served = kind.served(target) if kind is not None else None
            if kind is not None and (served is None or version not in served.versions):
                yield _not_served(obj, api_version, served, target)


def _not_served(
    obj: Object, api_version: str, served: istio_crds.Served | None, target: Version
) -> Finding:
    offered = ", ".join(served.versions) if served else "none"
    message = f"written as {api_version}, which Istio {_minor(target)} does not serve ({offered})"
    return finding("MC0103", of(obj), message)


def authored_api_versions(obj: Object) -> set[str]:
    """The apiVersions a resource was written with (last-applied, managedFields)."""
    meta = obj.get("metadata") or {}
    found = {
        str(entry["apiVersion"])
        for entry in meta.get("managedFields") or []
        if isinstance(entry, Mapping) and entry.get("apiVersion")
    }
    last = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if isinstance(last, str):
        try:
            applied = json.loads(last)
        except ValueError:
            applied = None
        if isinstance(applied, dict) and isinstance(applied.get("apiVersion"), str):
            found.add(applied["apiVersion"])
    return found


# -- EnvoyFilters ---------------------------------------------------------------------------------


def _envoy_filters(objects: Sequence[Object]) -> Iterator[tuple[Object, list[Object]]]:
    for obj in objects:
        if obj.get("kind") == "EnvoyFilter":
            spec = obj.get("spec") or {}
            patches = spec.get("configPatches") if isinstance(spec, Mapping) else None
            if isinstance(patches, list):
                yield obj, [p for p in patches if isinstance(p, Mapping)]


def _proxy_version(patch: Object) -> str | None:
    value = facts.lookup(patch, "match.proxy.proxyVersion")
    return str(value[0]) if value and isinstance(value[0], str) else None


def relative_patches(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """IST0155: no priority, a relative operation and a proxyVersion match."""
    for obj, patches in _envoy_filters(objects):
        if (obj.get("spec") or {}).get("priority"):
            continue
        risky = [
            index
            for index, patch in enumerate(patches)
            if _is_relative(patch) and _proxy_version(patch) is not None
        ]
        if risky:
            where = ", ".join(f"configPatches[{i}]" for i in risky)
            message = f"{where}: relative patch with a proxyVersion match and no priority"
            yield finding("MC0105", of(obj), message)


def _is_relative(patch: Object) -> bool:
    return any(op in facts.RELATIVE_OPERATIONS for op in facts.lookup(patch, "patch.operation"))


def proxy_version_targets(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """proxyVersion regexes that match the current version but not the target."""
    if current is None:
        return
    for obj, patches in _envoy_filters(objects):
        for index, patch in enumerate(patches):
            pattern = _proxy_version(patch)
            if pattern is not None and _misses_target(pattern, current, target):
                message = (
                    f"configPatches[{index}]: proxyVersion {pattern!r} matches {current} "
                    f"but not {target}"
                )
                yield finding("MC0106", of(obj), message)


def _misses_target(pattern: str, current: Version, target: Version) -> bool:
    try:
        regex = re.compile(pattern)
    except re.error:
        return False
    return bool(regex.search(str(current))) and not regex.search(str(target))


def filter_names(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """Envoy filter names the target no longer matches (renamed) or knows (removed)."""
    for obj, patches in _envoy_filters(objects):
        for index, patch in enumerate(patches):
            for name in sorted(set(_strings(patch, _NAME_KEYS))):
                rename = _RENAMES.get(name)
                if rename is not None and target.minor_line >= rename.since:
                    yield _rename_finding(obj, index, rename)


def _rename_finding(obj: Object, index: int, rename: facts.FilterRename) -> Finding:
    since = _minor(rename.since)
    if rename.new is None:
        message = f"configPatches[{index}]: filter {rename.old} was removed in {since}"
        fix = "Remove the patch; the filter no longer exists."
    else:
        message = f"configPatches[{index}]: filter name {rename.old} is not matched from {since}"
        fix = f"Use {rename.new}."
    return finding("MC0107", of(obj), f"{message} ({rename.source})", fix)


def xds_v2_types(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """xDS v2 type URLs, rejected from 1.19."""
    if target.minor_line < facts.XDS_V2_SINCE:
        return
    for obj, patches in _envoy_filters(objects):
        for index, patch in enumerate(patches):
            for url in sorted(set(_strings(patch, _TYPE_KEYS))):
                if any(marker in url for marker in facts.XDS_V2_MARKERS):
                    message = f"configPatches[{index}]: xDS v2 type {url} ({facts.XDS_V2_SOURCE})"
                    yield finding("MC0108", of(obj), message)


def untyped_configs(
    objects: Sequence[Object], current: Version | None, target: Version
) -> Iterator[Finding]:
    """Extensions configured with `config` instead of `typed_config`, gone from 1.19."""
    if target.minor_line < facts.UNTYPED_CONFIG_SINCE:
        return
    for obj, patches in _envoy_filters(objects):
        for index, patch in enumerate(patches):
            if any(_untyped(item) for item in _mappings(patch.get("patch"))):
                message = (
                    f"configPatches[{index}]: `config` without `typed_config` "
                    f"({facts.UNTYPED_CONFIG_SOURCE})"
                )
                yield finding("MC0109", of(obj), message)


def _untyped(item: Object) -> bool:
    return "name" in item and "config" in item and "typed_config" not in item


def _mappings(value: Any) -> Iterator[Object]:
    """Every mapping nested in `value`, itself included."""
    if isinstance(value, Mapping):
        yield value
        for child in value.values():
            yield from _mappings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _mappings(child)


def _strings(value: Any, keys: frozenset[str]) -> Iterator[str]:
    """String values under any of `keys`, anywhere in `value`."""
    for item in _mappings(value):
        for key in keys:
            found = item.get(key)
            if isinstance(found, str):
                yield found


ANALYZERS: Final[tuple[Analyzer, ...]] = (
    field_facts,
    api_versions,
    relative_patches,
    proxy_version_targets,
    filter_names,
    xds_v2_types,
    untyped_configs,
)
