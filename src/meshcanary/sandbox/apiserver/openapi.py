"""The `/openapi/v3` discovery index and per-group-version OpenAPI 3.0 documents.

What these documents are for: kubectl 1.33 `create`/`apply`/`replace` download `/openapi/v3`
before sending anything. If the group-version's PATCH operation for the object's kind (matched by
`x-kubernetes-group-version-kind`) declares the `fieldValidation` query parameter, kubectl leaves
validation to the server and sends `fieldValidation=Strict`; without these documents it falls back
to `/openapi/v2` (protobuf only) and fails with "failed to download openapi". `kubectl explain`
reads the component schema carrying the kind's `x-kubernetes-group-version-kind`, so custom
resources publish their CRD's `openAPIV3Schema` there.

Why built-in kinds get a permissive schema and no `application/strategic-merge-patch+json`:
client-side `kubectl apply` (k8s.io/kubectl/pkg/cmd/apply/patcher.go) builds its patch from
OpenAPI v3 only when the kind's PATCH `requestBody.content` lists strategic merge patch; it then
takes list merge keys from the schema's `x-kubernetes-patch-merge-key`/`-strategy`. A permissive
schema carries none, so advertising SMP would make kubectl replace `containers`, `env`, `ports`...
wholesale, or warn "error calculating patch from openapi v3 spec". Not advertising it makes kubectl
skip v3, fail quietly on `/openapi/v2`, and compute the strategic merge patch from its compiled-in
Go types — the exact merge keys for every built-in kind served here. Custom resources get JSON
merge patches either way (kubectl has no types for them, and real servers refuse SMP on them).

Documents are cached per group-version, keyed on the tuple of `ResourceType`s serving it, so a
CRD added, changed or removed rebuilds that document and changes its `?hash=`, which is what
invalidates kubectl's HTTP cache of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from meshcanary.sandbox.apiserver.registry import Registry, ResourceType

OPENAPI_VERSION = "3.0.0"
INFO = {"title": "Kubernetes", "version": "v1.33.0"}
STATUS_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
GVK = "x-kubernetes-group-version-kind"

JSON = "application/json"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)


def _query(name: str, kind: str = "string", description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": True},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "description": f"{name} of the object",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


FIELD_VALIDATION = _query(
    "fieldValidation",
    description="How the server treats unknown or duplicate fields: Ignore, Warn or Strict.",
)
WRITE_PARAMS = (_query("dryRun"), _query("fieldManager"), FIELD_VALIDATION)
PATCH_PARAMS = (*WRITE_PARAMS, _query("force", "boolean"))
LIST_PARAMS = tuple(
    _query(name, kind)
    for name, kind in (
        ("labelSelector", "string"),
        ("fieldSelector", "string"),
        ("limit", "integer"),
        ("continue", "string"),
        ("resourceVersion", "string"),
        ("watch", "boolean"),
    )
)


# --------------------------------------------------------------------------- public API


def group_version_path(group: str, version: str) -> str:
    """`api/v1` for the core group, `apis/<group>/<version>` otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(registry: Registry) -> dict[str, Any]:
    """GET /openapi/v3: every served group-version and the URL of its document."""
    paths = {}
    for group, version in _group_versions(registry):
        path = group_version_path(group, version)
        built = _built(path, tuple(registry.in_group_version(group, version)))
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={built.digest}"}
    return {"paths": paths}


def document(registry: Registry, gv_path: str) -> dict[str, Any] | None:
    """GET /openapi/v3/<gv_path>, or None if that group-version is not served.

    The nested content is shared with the cache: serialize it, do not mutate it.
    """
    parsed = _parse_gv_path(gv_path)
    if parsed is None:
        return None
    types = tuple(registry.in_group_version(*parsed))
    if not types:
        return None
    return dict(_built(group_version_path(*parsed), types).document)


def component_name(rt: ResourceType) -> str:
    """The component schema name Kubernetes uses for a kind (`io.k8s.api.apps.v1.Deployment`)."""
    return f"{_schema_prefix(rt)}.{rt.version}.{rt.kind}"


# --------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class _Built:
    types: tuple[ResourceType, ...]
    document: dict[str, Any]
    digest: str


_CACHE: dict[str, _Built] = {}


def _built(path: str, types: tuple[ResourceType, ...]) -> _Built:
    """The document for a group-version, rebuilt only when its resource types changed.

    `ResourceType` holds a dict (the schema), so it cannot be hashed; the cache entry keeps the
    tuple and compares it, which is an identity check when the registry has not changed.
    """
    hit = _CACHE.get(path)
    if hit is not None and hit.types == types:
        return hit
    doc = _build(types)
    digest = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    built = _Built(types, doc, digest.upper())
    _CACHE[path] = built
    return built


def _group_versions(registry: Registry) -> list[tuple[str, str]]:
    """Served (group, version) pairs: the core group first, then groups in registry order."""
    seen: dict[tuple[str, str], None] = {}
    for rt in registry:
        seen.setdefault((rt.group, rt.version), None)
    return sorted(seen, key=lambda gv: gv[0] != "")


def _parse_gv_path(path: str) -> tuple[str, str] | None:
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis" and parts[1]:
        return parts[1], parts[2]
    return None


# --------------------------------------------------------------------------- documents


def _build(types: tuple[ResourceType, ...]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {STATUS_SCHEMA: _status_schema()}
    for rt in types:
        name = component_name(rt)
        schemas[name] = _kind_schema(rt)
        schemas[f"{name}List"] = _list_schema(rt, name)
        paths.update(_resource_paths(rt, name))
    return {
        "openapi": OPENAPI_VERSION,
        "info": dict(INFO),
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _schema_prefix(rt: ResourceType) -> str:
    if rt.is_custom:
        return ".".join(reversed(rt.group.split(".")))
    if not rt.group:
        return "io.k8s.api.core"
    if rt.group == "apiextensions.k8s.io":
        return "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    return f"io.k8s.api.{rt.group.split('.')[0]}"


def _gvk(rt: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": kind or rt.kind}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _kind_schema(rt: ResourceType) -> dict[str, Any]:
    """The CRD's own schema for custom resources (for `kubectl explain`), else a permissive one."""
    if rt.is_custom and rt.schema is not None:
        schema: dict[str, Any] = orjson.loads(orjson.dumps(rt.schema))
    else:
        schema = {
            "description": f"{rt.kind} ({rt.api_version}). The sandbox publishes no field schema "
            "for built-in kinds.",
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string", "description": "APIVersion of this object."},
                "kind": {"type": "string", "description": "Kind of this object."},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "x-kubernetes-preserve-unknown-fields": True,
        }
    schema[GVK] = [_gvk(rt)]
    return schema


def _list_schema(rt: ResourceType, item: str) -> dict[str, Any]:
    return {
        "description": f"A list of {rt.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "items": {"type": "array", "items": _ref(item)},
        },
        GVK: [_gvk(rt, rt.list_kind)],
    }


def _status_schema() -> dict[str, Any]:
    return {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        GVK: [{"group": "", "version": "v1", "kind": "Status"}],
    }


# --------------------------------------------------------------------------- paths


def _resource_paths(rt: ResourceType, name: str) -> dict[str, Any]:
    prefix = f"/{group_version_path(rt.group, rt.version)}"
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    collection = f"{prefix}{scope}/{rt.plural}"
    common = [_path_param("namespace")] if rt.namespaced else []
    ops = _Ops(rt, name)
    collection_item = {
        "get": ops.make("list", "list", name + "List", LIST_PARAMS),
        "post": ops.make("create", "post", name, WRITE_PARAMS, body=(JSON,)),
        "delete": ops.make("deletecollection", "deletecollection", STATUS_SCHEMA, ()),
    }
    item = {
        "get": ops.make("get", "get", name, ()),
        "put": ops.make("update", "put", name, WRITE_PARAMS, body=(JSON,)),
        "patch": ops.make("patch", "patch", name, PATCH_PARAMS, body=PATCH_TYPES),
        "delete": ops.make("delete", "delete", STATUS_SCHEMA, WRITE_PARAMS[:1]),
    }
    return {
        collection: _path_item(collection_item, common),
        f"{collection}/{{name}}": _path_item(item, [_path_param("name"), *common]),
    }


def _path_item(operations: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {k: op for k, op in operations.items() if op is not None}
    if params:
        item["parameters"] = params
    return item


@dataclass(frozen=True)
class _Ops:
    """Builds the operations of one resource, skipping verbs it does not serve."""

    rt: ResourceType
    name: str

    def make(
        self,
        verb: str,
        action: str,
        response: str,
        params: tuple[dict[str, Any], ...],
        body: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        if verb not in self.rt.verbs:
            return None
        op: dict[str, Any] = {
            "tags": [self._tag()],
            "description": f"{action} {self.rt.kind}",
            "operationId": self._operation_id(action),
            "parameters": list(params),
            "responses": {
                "200": {"description": "OK", "content": {JSON: {"schema": _ref(response)}}}
            },
            "x-kubernetes-action": action,
            GVK: _gvk(self.rt),
        }
        if body:
            schema = {"type": "object"} if action == "patch" else _ref(self.name)
            op["requestBody"] = {"content": {c: {"schema": schema} for c in body}, "required": True}
        return op

    def _tag(self) -> str:
        group = self.rt.group.split(".")[0] if self.rt.group else "core"
        return f"{group}_{self.rt.version}"

    def _operation_id(self, action: str) -> str:
        scope = "Namespaced" if self.rt.namespaced else ""
        words = [w.capitalize() for w in self.rt.group.replace("-", ".").split(".") if w]
        group = "".join(words) or "Core"
        return f"{action}{group}{self.rt.version.capitalize()}{scope}{self.rt.kind}"
