"""Discovery documents: `/api`, `/apis`, per group/version resource lists, and `/version`.

kubectl and kopf find every resource through these (kubectl caches them for hours, which is why
tests point `KUBECACHEDIR` at a fresh folder); kopf watches only what lists `list` and `watch`
verbs and patches status only where a `<plural>/status` entry exists.
"""

from __future__ import annotations

from typing import Any

from meshcanary.sandbox.apiserver.registry import Registry, ResourceType

KUBERNETES_VERSION = {"major": "1", "minor": "33", "patch": "4"}
SUBRESOURCE_VERBS = ["get", "patch", "update"]


def version() -> dict[str, Any]:
    major, minor, patch = (KUBERNETES_VERSION[k] for k in ("major", "minor", "patch"))
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.{patch}",
        "gitCommit": "meshcanary-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for name, versions in sorted(registry.groups().items()):
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.groups().get(name)
    if not versions:
        return None
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def resource_list(registry: Registry, group_name: str, version_name: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group_name, version_name)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in sorted(types, key=lambda t: t.plural):
        resources.append(_resource(rt))
        resources.extend(_subresource(rt, sub) for sub in sorted(rt.subresources))
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _subresource(rt: ResourceType, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{rt.plural}/{sub}",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": SUBRESOURCE_VERBS,
    }
    if sub == "scale":
        entry.update(kind="Scale", group="autoscaling", version="v1")
    return entry
