"""The HTTP face of the sandbox API server (aiohttp).

Parses Kubernetes REST paths and query parameters, negotiates JSON vs. server-side printing
(`as=Table`), streams watches, checks the bearer token, and turns every failure into a `Status`
object. The semantics of each verb live in `cluster.py`; this module only translates.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from meshcanary.sandbox.apiserver import (
    bodies,
    discovery,
    errors,
    openapi,
    patching,
    tables,
)
from meshcanary.sandbox.apiserver import (
    cluster as verbs,
)
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.store import Entry, Event

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
BOOKMARK_INTERVAL = 5.0
DEFAULT_WATCH_TIMEOUT = 1800
JSON = "application/json"
LIST_CHUNK = 256 * 1024

CLUSTER_KEY = web.AppKey("cluster", verbs.Cluster)
TOKEN_KEY = web.AppKey("token", str)
HOOKS_KEY = web.AppKey("request_hooks", list)
TARGET_HOOKS_KEY = web.AppKey("target_hooks", list)
"""Awaited as `hook(request, target)` once a resource request is resolved (fault injection):
a hook may delay, raise an `ApiError`, or set `WATCH_CUTOFF_KEY`."""
WATCH_CUTOFF_KEY = web.RequestKey("watch_cutoff", float)
"""Seconds after which this request's watch stream ends, as when an apiserver restarts."""


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str
    watch_path: bool


def create_app(cluster: verbs.Cluster, token: str) -> web.Application:
    """The aiohttp application serving `cluster` to bearers of `token`."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors, _auth])
    app[CLUSTER_KEY] = cluster
    app[TOKEN_KEY] = token
    app[HOOKS_KEY] = []
    app[TARGET_HOOKS_KEY] = []
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


# -- middlewares -----------------------------------------------------------------------------


def _status_response(error: errors.ApiError) -> web.Response:
    response = web.Response(body=orjson.dumps(error.status()), status=error.code, content_type=JSON)
    retry_after = (error.details or {}).get("retryAfterSeconds")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        for hook in request.app[HOOKS_KEY]:
            await hook(request)
        return await handler(request)
    except errors.ApiError as exc:
        return _status_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return _status_response(
            errors.ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        )
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status_response(errors.internal(f"{type(exc).__name__}: {exc}"))


@web.middleware
async def _auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path not in PUBLIC_PATHS:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        expected = request.app[TOKEN_KEY]
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        ):
            raise errors.unauthorized()
    return await handler(request)


# -- dispatch --------------------------------------------------------------------------------


async def _dispatch(request: web.Request) -> web.StreamResponse:
    path = request.path.rstrip("/") or "/"
    cluster = request.app[CLUSTER_KEY]
    static = _static(cluster, path, request)
    if static is not None:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(request.method, path)
        return _json(static)
    target = _resolve(cluster, path)
    handler = _HANDLERS.get((request.method, bool(target.name)))
    if handler is None:
        raise errors.method_not_allowed(request.method, path)
    for hook in request.app[TARGET_HOOKS_KEY]:
        await hook(request, target)
    return await handler(request, cluster, target)


def _static(cluster: verbs.Cluster, path: str, request: web.Request) -> Any:
    """Discovery, version, health and OpenAPI documents (None when `path` is a resource)."""
    registry = cluster.registry
    if path in ("/healthz", "/livez", "/readyz") or path.startswith(
        ("/healthz/", "/livez/", "/readyz/")
    ):
        return "ok"
    if path == "/version":
        return discovery.version()
    if path == "/api":
        return discovery.core_versions(request.host)
    if path == "/apis":
        return discovery.group_list(registry)
    if path == "/openapi/v3":
        return openapi.index(registry)
    if path.startswith("/openapi/v3/"):
        document = openapi.document(registry, path.removeprefix("/openapi/v3/"))
        if document is None:
            raise errors.not_found_path(path)
        return document
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) == 2:
        return _or_404(discovery.resource_list(registry, "", parts[1]), path)
    if parts[0] == "apis" and len(parts) == 2:
        return _or_404(discovery.group(registry, parts[1]), path)
    if parts[0] == "apis" and len(parts) == 3:
        return _or_404(discovery.resource_list(registry, parts[1], parts[2]), path)
    if parts[0] not in ("api", "apis"):
        raise errors.not_found_path(path)
    return None


def _or_404(document: Any, path: str) -> Any:
    if document is None:
        raise errors.not_found_path(path)
    return document


def _resolve(cluster: verbs.Cluster, path: str) -> Target:
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    watch_path = bool(rest) and rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.not_found_path(path)
    rt = cluster.registry.get(group, version, rest[0])
    if rt is None:
        raise errors.not_found_path(path)
    if namespace is not None and not rt.namespaced:
        raise errors.not_found_path(path)
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if (
        subresource
        and subresource not in rt.subresources
        and not (subresource == "finalize" and rt.storage_key == verbs.NAMESPACES)
    ):
        raise errors.not_found_path(path)
    return Target(rt, namespace, name, subresource, watch_path)


def _ns(target: Target) -> str:
    return target.namespace or ""


# -- rendering -------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    if isinstance(body, str):
        return web.Response(text=body, content_type="text/plain")
    response = web.Response(body=orjson.dumps(body), status=status, content_type=JSON)
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - "{warning}"')
    return response


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def _partial_metadata(request: web.Request) -> bool:
    first = request.headers.get("Accept", "").split(",")[0]
    return "as=PartialObjectMetadata" in first


def _now() -> datetime:
    return datetime.now(UTC)


def _options(request: web.Request) -> verbs.WriteOptions:
    query = request.query
    dry_run = query.get("dryRun", "")
    if dry_run not in ("", "All"):
        raise errors.bad_request(f"unsupported dryRun value {dry_run!r}: only 'All' is supported")
    validation = query.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f"fieldValidation: Unsupported value: {validation!r}: supported values: "
            '"Ignore", "Warn", "Strict"'
        )
    manager = query.get("fieldManager") or request.headers.get("User-Agent", "").split("/")[0]
    if len(manager) > 128:
        raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
    return verbs.WriteOptions(
        dry_run=dry_run == "All",
        field_manager=manager,
        field_validation=validation,
        force=query.get("force", "") == "true",
    )


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    content_type = request.content_type
    if "protobuf" in content_type:
        return bodies.decode_protobuf(raw)
    if "yaml" in content_type:
        return bodies.decode_yaml(raw)
    return bodies.decode_json(raw)


def _object_response(
    request: web.Request,
    rt: ResourceType,
    obj: dict[str, Any],
    status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    if _wants_table(request):
        table = tables.build_table(
            rt,
            [obj],
            now=_now(),
            include_object=request.query.get("includeObject", "Metadata"),
            resource_version=obj["metadata"].get("resourceVersion", ""),
        )
        return _json(table, status, warnings)
    return _json(obj, status, warnings)


# -- read verbs ------------------------------------------------------------------------------


async def _get(request: web.Request, cluster: verbs.Cluster, target: Target) -> web.StreamResponse:
    if target.watch_path:
        return await _watch(request, cluster, target)
    obj = cluster.get(target.rt, _ns(target), target.name)
    if target.subresource == "scale":
        return _json(verbs.scale_of(target.rt, obj))
    return _object_response(request, target.rt, obj)


async def _list(request: web.Request, cluster: verbs.Cluster, target: Target) -> web.StreamResponse:
    query = request.query
    if target.watch_path or query.get("watch") in ("true", "1"):
        return await _watch(request, cluster, target)
    rt = target.rt
    # A continued LIST is served from the snapshot its first page was read at.
    snapshot = _continue_rv(query.get("continue"))
    entries = cluster.list(
        rt, target.namespace, query.get("labelSelector"), query.get("fieldSelector"), snapshot
    )
    rv = str(cluster.store.rv if snapshot is None else snapshot)
    entries, token, remaining = _paginate(entries, query.get("limit"), query.get("continue"), rv)
    if _wants_table(request):
        objects = [cluster.present(rt, e.obj) for e in entries]
        table = tables.build_table(
            rt,
            objects,
            now=_now(),
            include_object=query.get("includeObject", "Metadata"),
            resource_version=rv,
            continue_token=token,
        )
        if remaining:
            table["metadata"]["remainingItemCount"] = remaining
        return await _write_chunked(request, orjson.dumps(table))
    return await _stream_list(request, rt, entries, rv, token, remaining)


async def _stream_list(
    request: web.Request,
    rt: ResourceType,
    entries: list[Entry],
    rv: str,
    token: str,
    remaining: int,
) -> web.StreamResponse:
    """Write a list in chunks, so a 20 MB LIST never sits whole in memory or in a buffer."""
    meta: dict[str, Any] = {"resourceVersion": rv}
    if token:
        meta["continue"] = token
    if remaining:
        meta["remainingItemCount"] = remaining
    partial = _partial_metadata(request)
    if partial:
        head = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1"}
    else:
        head = {"kind": rt.list_kind, "apiVersion": rt.api_version}
    response = web.StreamResponse(headers={"Content-Type": JSON})
    await response.prepare(request)
    chunk = bytearray(orjson.dumps({**head, "metadata": meta})[:-1] + b',"items":[')
    for index, entry in enumerate(entries):
        if index:
            chunk += b","
        chunk += _partial_bytes(entry) if partial else _entry_bytes(rt, entry)
        if len(chunk) >= LIST_CHUNK:
            await response.write(bytes(chunk))
            chunk.clear()
    chunk += b"]}"
    await response.write(bytes(chunk))
    await response.write_eof()
    return response


async def _write_chunked(request: web.Request, body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": JSON})
    await response.prepare(request)
    for start in range(0, len(body), LIST_CHUNK):
        await response.write(body[start : start + LIST_CHUNK])
    await response.write_eof()
    return response


def _partial_bytes(entry: Entry) -> bytes:
    return orjson.dumps(
        {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": entry.obj["metadata"],
        }
    )


def _entry_bytes(rt: ResourceType, entry: Entry) -> bytes:
    if entry.obj.get("apiVersion") == rt.api_version:
        return entry.raw
    return orjson.dumps({**entry.obj, "apiVersion": rt.api_version})


def _paginate(
    entries: list[Entry], limit: str | None, token: str | None, rv: str
) -> tuple[list[Entry], str, int]:
    """One page of `entries` and the continue token for the next (keyed by namespace/name)."""
    start = 0
    if token:
        try:
            state = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            after = (str(state["ns"]), str(state["name"]))
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request("invalid continue token") from None
        start = bisect.bisect_right(entries, after, key=_position)
    if not limit:
        return entries[start:], "", 0
    try:
        size = int(limit)
    except ValueError:
        raise errors.bad_request(f"invalid limit {limit!r}") from None
    if size <= 0:
        return entries[start:], "", 0
    page = entries[start : start + size]
    remaining = len(entries) - start - len(page)
    if remaining <= 0:
        return page, "", 0
    ns, name = _position(page[-1])
    next_token = base64.urlsafe_b64encode(orjson.dumps({"ns": ns, "name": name, "rv": rv}))
    return page, next_token.decode(), remaining


def _continue_rv(token: str | None) -> int | None:
    """The resourceVersion a continue token was issued at (None: none, or let _paginate 400)."""
    if not token:
        return None
    try:
        return int(orjson.loads(base64.urlsafe_b64decode(token.encode()))["rv"])
    except (ValueError, KeyError, TypeError):
        return None


def _position(entry: Entry) -> tuple[str, str]:
    meta = entry.obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


# -- write verbs -----------------------------------------------------------------------------


async def _create(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    if target.rt.namespaced and target.namespace is None:
        raise errors.method_not_allowed("POST", f"cluster-wide {target.rt.plural}")
    result = await cluster.create(target.rt, _ns(target), await _body(request), _options(request))
    return _object_response(request, target.rt, result.obj, 201, result.warnings)


async def _update(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    rt, ns, name = target.rt, _ns(target), target.name
    body = await _body(request)
    if target.subresource == "scale":
        current = cluster.get(rt, ns, name)
        new = verbs.with_scale(rt, current, body)
        result = await cluster.update(rt, ns, name, new, _options(request))
        return _json(verbs.scale_of(rt, result.obj))
    if target.subresource == "finalize":
        result = await cluster.update(rt, ns, name, body, _options(request))
        return _json(result.obj)
    result = await cluster.update(rt, ns, name, body, _options(request), target.subresource)
    return _object_response(request, rt, result.obj, 200, result.warnings)


async def _patch(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    rt, ns, name = target.rt, _ns(target), target.name
    raw = await request.read()
    content_type = request.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip() in (
        verbs.PATCH_APPLY,
        verbs.PATCH_APPLY_CBOR,
    ) and not request.query.get("fieldManager"):
        # Only non-apply writes default their manager to the User-Agent (ValidatePatchOptions).
        raise errors.invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [("fieldManager", "Required value: is required for apply patch")],
        )
    if target.subresource == "scale":
        current = cluster.get(rt, ns, name)
        scale = _patched_scale(verbs.scale_of(rt, current), content_type, raw)
        result = await cluster.update(
            rt, ns, name, verbs.with_scale(rt, current, scale), _options(request)
        )
        return _json(verbs.scale_of(rt, result.obj))
    result = await cluster.patch(
        rt, ns, name, content_type, raw, _options(request), target.subresource
    )
    status = 201 if result.created else 200
    return _object_response(request, rt, result.obj, status, result.warnings)


def _patched_scale(scale: dict[str, Any], content_type: str, raw: bytes) -> Any:
    patch = orjson.loads(raw) if raw else {}
    kind = content_type.split(";")[0].strip()
    try:
        if kind == verbs.PATCH_JSON:
            return patching.apply_json_patch(scale, patch)
        return patching.apply_merge_patch(scale, patch)
    except patching.PatchError as exc:
        raise errors.ApiError(exc.code, "Invalid", str(exc)) from None


async def _delete(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    options = _delete_options(request, await _body(request))
    dry_run = request.query.get("dryRun") == "All"
    result = await cluster.delete(target.rt, _ns(target), target.name, options, dry_run)
    return _json(result.obj)


async def _delete_collection(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    rt = target.rt
    options = _delete_options(request, await _body(request))
    deleted = await cluster.delete_collection(
        rt,
        target.namespace,
        request.query.get("labelSelector"),
        request.query.get("fieldSelector"),
        options,
        request.query.get("dryRun") == "All",
    )
    return _json(
        {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(cluster.store.rv)},
            "items": deleted,
        }
    )


def _delete_options(request: web.Request, body: Any) -> dict[str, Any]:
    options: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if key in request.query and key not in options:
            value: Any = request.query[key]
            if key == "orphanDependents":
                value = value == "true"
            options[key] = value
    return options


# -- watch -----------------------------------------------------------------------------------


async def _watch(
    request: web.Request, cluster: verbs.Cluster, target: Target
) -> web.StreamResponse:
    """Stream events as JSON lines: replayed or synthetic first, then live, with bookmarks."""
    query = request.query
    rt = target.rt
    name_filter = target.name
    labels, fields = cluster.parse_selectors(
        rt, query.get("labelSelector"), query.get("fieldSelector")
    )
    timeout = min(_timeout(query.get("timeoutSeconds")), request.get(WATCH_CUTOFF_KEY, math.inf))
    bookmarks = query.get("allowWatchBookmarks") == "true"
    as_table = _wants_table(request)
    subscription = cluster.store.subscribe(rt.storage_key)
    try:
        initial, expired = _initial_events(cluster, target, query)
        response = web.StreamResponse(
            headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"}
        )
        await response.prepare(request)
        if expired:
            await response.write(
                _line(
                    "ERROR",
                    errors.gone(
                        f"too old resource version: {query.get('resourceVersion')} "
                        f"({cluster.store.rv})"
                    ).status(),
                )
            )
            return response

        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            meta = obj["metadata"]
            if target.namespace is not None and meta.get("namespace", "") != target.namespace:
                return False
            if name_filter and meta.get("name") != name_filter:
                return False
            return labels.matches(meta.get("labels")) and fields.matches(obj)

        writer = _EventWriter(response, rt, cluster, as_table)
        for kind, obj in initial:
            if visible(obj):
                await writer.send(kind, obj)
        if query.get("sendInitialEvents") == "true":
            await writer.bookmark(cluster.store.rv, initial_end=True)
        await _stream(subscription.queue, writer, visible, timeout, bookmarks, cluster)
        return response
    finally:
        cluster.store.unsubscribe(subscription)


def _timeout(value: str | None) -> float:
    if not value:
        return DEFAULT_WATCH_TIMEOUT
    try:
        return max(0.0, float(value))
    except ValueError:
        raise errors.bad_request(f"invalid timeoutSeconds {value!r}") from None


def _initial_events(
    cluster: verbs.Cluster, target: Target, query: Any
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The events to send before live ones, and whether the requested version is too old."""
    rv = query.get("resourceVersion", "")
    send_initial = query.get("sendInitialEvents")
    if send_initial == "true" or (send_initial != "false" and rv in ("", "0")):
        entries = cluster.store.list(target.rt.storage_key, target.namespace)
        return [("ADDED", e.obj) for e in entries], False
    if rv in ("", "0"):
        return [], False
    try:
        since = int(rv)
    except ValueError:
        raise errors.bad_request(f"invalid resourceVersion {rv!r}") from None
    events = cluster.store.events_since(target.rt.storage_key, since)
    if events is None:
        return [], True
    return [(e.type, e.entry.obj) for e in events], False


async def _stream(
    queue: asyncio.Queue[Event],
    writer: _EventWriter,
    visible: Callable[[dict[str, Any] | None], bool],
    timeout: float,
    bookmarks: bool,
    cluster: verbs.Cluster,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        wait = min(remaining, BOOKMARK_INTERVAL) if bookmarks else remaining
        try:
            event = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            if bookmarks and loop.time() < deadline:
                await writer.bookmark(cluster.store.rv)
            continue
        await _send_transition(writer, event, visible)


async def _send_transition(
    writer: _EventWriter, event: Event, visible: Callable[[dict[str, Any] | None], bool]
) -> None:
    """Filtered watches see an object enter (ADDED) and leave (DELETED) their selection."""
    now, before = visible(event.entry.obj), visible(event.old)
    if event.type == "DELETED":
        if before or now:
            await writer.send("DELETED", event.entry.obj)
    elif now and before:
        await writer.send("MODIFIED", event.entry.obj)
    elif now:
        await writer.send("ADDED", event.entry.obj)
    elif before:
        await writer.send("DELETED", event.entry.obj)


class _EventWriter:
    """Writes watch events as JSON lines, as objects or as single-row Tables."""

    def __init__(
        self, response: web.StreamResponse, rt: ResourceType, cluster: verbs.Cluster, as_table: bool
    ) -> None:
        self._response, self._rt, self._cluster = response, rt, cluster
        self._as_table = as_table
        self._definitions_sent = False

    async def send(self, kind: str, obj: dict[str, Any]) -> None:
        obj = self._cluster.present(self._rt, obj)
        if self._as_table:
            obj = tables.build_table(
                self._rt,
                [obj],
                now=_now(),
                resource_version=obj["metadata"].get("resourceVersion", ""),
                with_definitions=not self._definitions_sent,
            )
            self._definitions_sent = True
        await self._response.write(_line(kind, obj))

    async def bookmark(self, rv: int, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        await self._response.write(
            _line(
                "BOOKMARK",
                {"kind": self._rt.kind, "apiVersion": self._rt.api_version, "metadata": meta},
            )
        )


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


Handler = Callable[[web.Request, verbs.Cluster, Target], Awaitable[web.StreamResponse]]
_HANDLERS: dict[tuple[str, bool], Handler] = {
    ("GET", False): _list,
    ("GET", True): _get,
    ("POST", False): _create,
    ("PUT", True): _update,
    ("PATCH", True): _patch,
    ("DELETE", True): _delete,
    ("DELETE", False): _delete_collection,
}
