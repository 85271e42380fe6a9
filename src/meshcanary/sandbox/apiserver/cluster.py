"""The API verbs with Kubernetes semantics, over the store.

Everything a real kube-apiserver decides about a write happens here: name and namespace checks,
uid and timestamps, resourceVersion preconditions (409 on a stale one), generation bumped only on
spec changes, the status subresource split, defaulting and validation, finalizers and
deletionTimestamp, deletion propagation, and CRDs becoming served resources. The HTTP layer
(`http.py`) only parses requests and renders answers; in-process controllers call these methods
directly, so they see exactly what clients see.
"""

from __future__ import annotations

import builtins
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from meshcanary.sandbox.apiserver import (
    bodies,
    defaults,
    errors,
    metadata,
    patching,
    schema,
    selectors,
    validation,
)
from meshcanary.sandbox.apiserver.registry import Registry, ResourceType
from meshcanary.sandbox.apiserver.store import Entry, Store

NAMESPACES = "/namespaces"
CRDS = "apiextensions.k8s.io/customresourcedefinitions"
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")

PATCH_MERGE = "application/merge-patch+json"
PATCH_JSON = "application/json-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_APPLY_CBOR = "application/apply-patch+cbor"


@dataclass(frozen=True)
class AdmissionAttributes:
    """What admission sees of a request besides the objects: the subresource written (rules
    match `pods/status` apart from `pods`) and the request's options as an AdmissionReview
    carries them (`CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`)."""

    subresource: str = ""
    options: dict[str, Any] = field(default_factory=dict)


Admission = Callable[
    [str, ResourceType, dict[str, Any], dict[str, Any] | None, bool, AdmissionAttributes],
    Awaitable[dict[str, Any]],
]
"""(operation, type, new object, old object, dry run, attributes) -> the object, maybe mutated."""


@dataclass
class WriteResult:
    """The object a write produced, the warnings to send back, and whether it was created."""

    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass(frozen=True)
class WriteOptions:
    """Query parameters shared by the write verbs."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy (orjson round trip: several times faster than copy.deepcopy)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return copied


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


class Cluster:
    """The verbs of the Kubernetes API, over a `Store`, for every type in a `Registry`."""

    def __init__(self, store: Store, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry or Registry.with_builtins()
        self.admission: list[Admission] = []
        self.on_removed: list[Callable[[ResourceType, dict[str, Any]], None]] = []
        self._allocated_ips = self._used_cluster_ips()
        for entry in store.list(CRDS):
            self._serve_crd(entry.obj)

    # -- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        entry = self.store.get(rt.storage_key, namespace, name)
        if entry is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self.present(rt, entry.obj)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        at: int | None = None,
    ) -> builtins.list[Entry]:
        """Matching entries, sorted by namespace and name (raises 400 on a bad selector).

        With `at`, the entries as they were at that resourceVersion (410 when it is older than
        the event log): what a continued LIST must return to stay a consistent snapshot.
        """
        labels, fields = self.parse_selectors(rt, label_selector, field_selector)
        if at is None:
            entries = self.store.list(rt.storage_key, namespace)
        else:
            entries = self._list_at(rt, namespace, at)
        if labels.is_empty() and not field_selector:
            return entries
        return [
            e
            for e in entries
            if labels.matches(e.obj["metadata"].get("labels")) and fields.matches(e.obj)
        ]

    def _list_at(self, rt: ResourceType, namespace: str | None, rv: int) -> builtins.list[Entry]:
        """The stored entries as of `rv`: today's, with every later event undone."""
        events = self.store.events_since(rt.storage_key, rv)
        if events is None:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result."
                " You can start a new list without the continue parameter."
            )
        if namespace is not None:
            events = [event for event in events if event.namespace == namespace]
        if not events:
            # Nothing changed since: today's list is that snapshot (the common case while a
            # client pages through a large list).
            return self.store.list(rt.storage_key, namespace)
        current = {
            (e.obj["metadata"].get("namespace", ""), e.obj["metadata"]["name"]): e
            for e in self.store.list(rt.storage_key, namespace)
        }
        for event in reversed(events):
            key = (event.namespace, event.entry.obj["metadata"]["name"])
            if event.previous is None:
                current.pop(key, None)
            else:
                current[key] = event.previous
        return [current[key] for key in sorted(current)]

    @staticmethod
    def parse_selectors(
        rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[selectors.LabelSelector, selectors.FieldSelector]:
        try:
            return (
                selectors.parse_label_selector(label_selector),
                selectors.parse_field_selector(field_selector, rt.field_selectors),
            )
        except selectors.SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    def present(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as served at `rt`'s version (CRD conversion strategy None)."""
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}

    # -- create ------------------------------------------------------------------------------

    async def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        operation: str = "Update",
    ) -> WriteResult:
        """Create an object; `operation` names the managedFields entry ("Apply" for SSA)."""
        obj = self._check_body(rt, namespace, body)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = metadata.generate_name(str(meta["generateName"]))
        name = str(meta.get("name") or "")
        self._check_name(rt, name)
        if rt.namespaced:
            self._check_namespace_open(namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if self.store.get(rt.storage_key, namespace, name) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        meta["uid"] = metadata.new_uid()
        meta["creationTimestamp"] = metadata.now_rfc3339()
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(key, None)
        if metadata.keeps_generation(rt.group, rt.is_custom):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status and rt.storage_key != "/nodes":
            obj.pop("status", None)
        warnings = self._prepare(rt, obj, None, opts)
        self._initialize(rt, obj)
        metadata.record_manager(
            obj, opts.field_manager or "unknown", operation, body, rt.api_version
        )
        kind = "PatchOptions" if operation == "Apply" else "CreateOptions"
        obj = await self._admit("CREATE", rt, obj, None, opts.dry_run, _attributes(kind, opts))
        if opts.dry_run:
            return WriteResult(self.present(rt, obj), warnings, created=True)
        entry = self._put(rt, namespace, name, obj)
        return WriteResult(self.present(rt, entry.obj), warnings, created=True)

    def _check_body(self, rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = _copy(body)
        api_version = obj.get("apiVersion") or rt.api_version
        kind = obj.get("kind") or rt.kind
        if (api_version, kind) != (rt.api_version, rt.kind):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API"
                f" version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = api_version, kind
        body_ns = _meta(obj).get("namespace")
        if rt.namespaced and body_ns and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the"
                " request"
            )
        return obj

    def _check_name(self, rt: ResourceType, name: str) -> None:
        problem = metadata.name_problem(name, rt.plural, rt.is_custom)
        if problem:
            raise errors.invalid(rt.kind, rt.group, name, [("metadata.name", problem)])

    def _check_namespace_open(self, namespace: str) -> None:
        if not namespace:
            raise errors.bad_request("a namespace is required for a namespaced resource")
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being"
                " terminated"
            )

    def _initialize(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Fields the server sets on create: pod phase, service IPs, CRD status."""
        if rt.storage_key == "/pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
            obj["status"].setdefault("qosClass", "BestEffort")
        elif rt.storage_key == "/services":
            self._allocate_cluster_ip(obj)
        elif rt.storage_key == CRDS:
            _meta(obj).setdefault("finalizers", [])
            if CRD_CLEANUP_FINALIZER not in obj["metadata"]["finalizers"]:
                obj["metadata"]["finalizers"].append(CRD_CLEANUP_FINALIZER)
            obj["status"] = _crd_status(obj)

    def _allocate_cluster_ip(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        if not spec.get("clusterIP"):
            for host in SERVICE_CIDR.hosts():
                address = str(host)
                if host.packed[-1] > 1 and address not in self._allocated_ips:
                    spec["clusterIP"] = address
                    break
        spec["clusterIPs"] = [spec["clusterIP"]]
        self._allocated_ips.add(spec["clusterIP"])
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            used = {p.get("nodePort") for p in spec.get("ports") or []}
            next_port = 30000 + len(self._allocated_ips) % 2000
            for port in spec.get("ports") or []:
                while not port.get("nodePort"):
                    if next_port not in used:
                        port["nodePort"] = next_port
                        used.add(next_port)
                    next_port += 1

    def _used_cluster_ips(self) -> set[str]:
        return {e.obj.get("spec", {}).get("clusterIP", "") for e in self.store.list("/services")}

    # -- update, patch, apply ----------------------------------------------------------------

    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        subresource: str = "",
    ) -> WriteResult:
        new = self._check_body(rt, namespace, body)
        body_name = _meta(new).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        current = self.store.get(rt.storage_key, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, rt.group, name)
        wanted_rv = _meta(new).get("resourceVersion")
        if not wanted_rv and rt.is_custom:
            raise errors.invalid(
                rt.kind,
                rt.group,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        manager = opts.field_manager or "unknown"
        metadata.record_manager(new, manager, "Update", body, rt.api_version, subresource)
        return await self._write(rt, current.obj, new, opts, subresource, wanted_rv)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str = "",
    ) -> WriteResult:
        content_type = content_type.split(";")[0].strip()
        current = self.store.get(rt.storage_key, namespace, name)
        if content_type in (PATCH_APPLY, PATCH_APPLY_CBOR):
            return await self._apply(rt, namespace, name, raw, current, opts, subresource)
        if current is None:
            raise errors.not_found(rt.plural, rt.group, name)
        patch = _decode_patch(raw)
        base = self.present(rt, current.obj)
        try:
            new = self._apply_patch(rt, content_type, base, patch)
        except patching.PatchTestFailed as exc:
            raise errors.unprocessable(
                f"the server rejected our request due to an error in our request: {exc}"
            ) from None
        except patching.PatchError as exc:
            raise errors.ApiError(
                exc.code, "Invalid" if exc.code == 422 else "BadRequest", str(exc)
            ) from None
        if not isinstance(new, dict):
            raise errors.bad_request("the patch did not produce an object")
        wanted_rv = _patch_rv(patch)
        manager = opts.field_manager or "unknown"
        metadata.record_manager(new, manager, "Update", patch, rt.api_version, subresource)
        return await self._write(rt, current.obj, new, opts, subresource, wanted_rv)

    def _apply_patch(
        self, rt: ResourceType, content_type: str, base: dict[str, Any], patch: Any
    ) -> Any:
        if content_type == PATCH_MERGE:
            return patching.apply_merge_patch(base, patch)
        if content_type == PATCH_JSON:
            return patching.apply_json_patch(base, patch)
        if content_type == PATCH_STRATEGIC:
            if rt.is_custom or not patching.strategic_merge_supported(rt.api_version, rt.kind):
                raise errors.unsupported_media_type(content_type)
            if not isinstance(patch, dict):
                raise errors.bad_request("a strategic merge patch must be a JSON object")
            return patching.apply_strategic_merge_patch(base, patch, rt.api_version, rt.kind)
        raise errors.unsupported_media_type(content_type)

    async def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        current: Entry | None,
        opts: WriteOptions,
        subresource: str,
    ) -> WriteResult:
        """Server-side apply: create when absent, else merge the applied config in."""
        if not opts.field_manager:
            raise errors.bad_request(
                "PATCH, fieldManager: Required value: is required for apply patch"
            )
        applied = bodies.decode_yaml(raw)
        if not isinstance(applied, dict):
            raise errors.bad_request("an apply patch must be an object")
        if current is None:
            _meta(applied).setdefault("name", name)
            result = await self.create(rt, namespace, applied, opts, operation="Apply")
            return result
        base = self.present(rt, current.obj)
        if rt.is_custom or not patching.strategic_merge_supported(rt.api_version, rt.kind):
            new = patching.apply_merge_patch(base, applied)
        else:
            new = patching.apply_strategic_merge_patch(base, applied, rt.api_version, rt.kind)
        metadata.record_manager(
            new, opts.field_manager, "Apply", applied, rt.api_version, subresource
        )
        # An applied configuration that names a resourceVersion is a precondition, as for
        # any other write (kubernetes/website#40179).
        return await self._write(rt, current.obj, new, opts, subresource, _patch_rv(applied))

    async def _write(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        opts: WriteOptions,
        subresource: str,
        wanted_rv: Any,
    ) -> WriteResult:
        """The common tail of update, patch and apply."""
        old_meta = old["metadata"]
        name, namespace = old_meta["name"], old_meta.get("namespace", "")
        if wanted_rv and str(wanted_rv) != old_meta["resourceVersion"]:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version"
                " and try again",
            )
        new = self._merge_subresource(rt, old, new, subresource)
        new_meta = _meta(new)
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
        ):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        _check_no_new_finalizers(rt, old_meta, new_meta)
        warnings: list[str] = []
        if subresource != "status":
            warnings = self._prepare(rt, new, old, opts)
            new_meta = _meta(new)  # custom resources are re-built by pruning and defaulting
        if metadata.keeps_generation(rt.group, rt.is_custom):
            generation = int(old_meta.get("generation", 1))
            new_meta["generation"] = generation + (1 if metadata.spec_changed(old, new) else 0)
        if rt.storage_key == CRDS:
            new["status"] = _crd_status(new)
        attributes = _attributes("UpdateOptions", opts, subresource)
        new = await self._admit("UPDATE", rt, new, old, opts.dry_run, attributes)
        if _same(old, new):
            return WriteResult(self.present(rt, old), warnings)
        if opts.dry_run:
            return WriteResult(self.present(rt, new), warnings)
        if (
            new_meta.get("deletionTimestamp")
            and not new_meta.get("finalizers")
            and not _spec_finalizers(rt, new)
        ):
            entry = self._remove(rt, namespace, name, new)
            return WriteResult(self.present(rt, entry.obj), warnings)
        entry = self._put(rt, namespace, name, new)
        return WriteResult(self.present(rt, entry.obj), warnings)

    @staticmethod
    def _merge_subresource(
        rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """Main-resource writes keep the old status; status writes keep everything else."""
        if subresource == "status":
            merged = _copy(old)
            merged["metadata"]["managedFields"] = new["metadata"].get("managedFields", [])
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if rt.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    def _prepare(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        opts: WriteOptions,
    ) -> builtins.list[str]:
        """Default, prune and validate an object about to be written; the warnings."""
        name = str(obj["metadata"].get("name", ""))
        warnings: list[str] = []
        if rt.is_custom:
            pruned_obj, pruned = schema.prepare(
                obj, rt.schema, preserve_unknown=rt.preserve_unknown_fields
            )
            if pruned and opts.field_validation == "Strict":
                raise errors.bad_request(
                    "strict decoding error: "
                    + ", ".join(f'unknown field "{path}"' for path in pruned)
                )
            if opts.field_validation == "Warn":
                warnings = [f'unknown field "{path}"' for path in pruned]
            obj.clear()
            obj.update(pruned_obj)
            issues = [(i.path, i.message) for i in schema.validate(obj, rt.schema)]
        elif (
            old is not None and rt.storage_key != NAMESPACES and not metadata.spec_changed(old, obj)
        ):
            # A metadata-only write (label, annotation, finalizer): the stored spec was
            # defaulted and validated when it was written, and defaulting is idempotent.
            issues = []
        else:
            defaults.apply_defaults(obj, rt.api_version, rt.kind)
            issues = validation.validate_builtin(obj, rt.api_version, rt.kind, old)
            if rt.storage_key == CRDS:
                issues += [(i.path, i.message) for i in schema.validate_crd(obj)]
        if issues:
            raise errors.invalid(rt.kind, rt.group, name, issues)
        return warnings

    async def _admit(
        self,
        operation: str,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        dry_run: bool,
        attributes: AdmissionAttributes,
    ) -> dict[str, Any]:
        for plugin in self.admission:
            obj = await plugin(operation, rt, obj, old, dry_run, attributes)
        return obj

    # -- delete ------------------------------------------------------------------------------

    async def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """Delete now, or mark with deletionTimestamp while finalizers remain."""
        options = options or {}
        current = self.store.get(rt.storage_key, namespace, name)
        if current is None:
            raise errors.not_found(rt.plural, rt.group, name)
        _check_preconditions(rt, current.obj, options.get("preconditions") or {})
        obj = _copy(current.obj)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background"
        )
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unsupported propagationPolicy: {policy!r}")
        if not meta.get("deletionTimestamp"):
            if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
                finalizers.append(ORPHAN_FINALIZER)
            if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
                finalizers.append(FOREGROUND_FINALIZER)
        if rt.storage_key == NAMESPACES:
            obj.setdefault("status", {})["phase"] = "Terminating"
        attributes = AdmissionAttributes(options=_review_options("DeleteOptions", dry_run, options))
        await self._admit("DELETE", rt, obj, current.obj, dry_run, attributes)
        if dry_run:
            return WriteResult(self.present(rt, obj))
        grace = _graceful_seconds(rt, current.obj, options)
        if grace:
            return self._terminate_gracefully(rt, obj, current.obj, grace)
        if not finalizers and not _spec_finalizers(rt, obj):
            entry = self._remove(rt, namespace, name, obj)
            return WriteResult(self.present(rt, entry.obj))
        if meta.get("deletionTimestamp") and finalizers == (meta.get("finalizers") or []):
            return WriteResult(self.present(rt, current.obj))
        meta["finalizers"] = finalizers
        meta.setdefault("deletionTimestamp", metadata.now_rfc3339())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        if not finalizers:
            meta.pop("finalizers", None)
        entry = self._put(rt, namespace, name, obj)
        return WriteResult(self.present(rt, entry.obj))

    def _terminate_gracefully(
        self, rt: ResourceType, obj: dict[str, Any], current: dict[str, Any], grace: int
    ) -> WriteResult:
        """A running pod is marked and left to its kubelet, which removes it when stopped."""
        meta = obj["metadata"]
        marked = current["metadata"].get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and marked is not None and marked <= grace:
            return WriteResult(self.present(rt, current))
        deadline = datetime.now(UTC) + timedelta(seconds=grace)
        meta["deletionTimestamp"] = metadata.now_rfc3339(deadline)
        meta["deletionGracePeriodSeconds"] = grace
        entry = self._put(rt, meta.get("namespace", ""), meta["name"], obj)
        return WriteResult(self.present(rt, entry.obj))

    async def finalize_namespace(self, name: str) -> None:
        """What the namespace controller's `/finalize` call does once a namespace is empty."""
        current = self.store.get(NAMESPACES, "", name)
        if current is None or not current.obj["metadata"].get("deletionTimestamp"):
            return
        obj = _copy(current.obj)
        obj.setdefault("spec", {})["finalizers"] = []
        rt = self.types_for(NAMESPACES)
        assert rt is not None
        if obj["metadata"].get("finalizers"):
            self._put(rt, "", name, obj)
        else:
            self._remove(rt, "", name, obj)

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        options: dict[str, Any] | None,
        dry_run: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        deleted = []
        for entry in self.list(rt, namespace, label_selector, field_selector):
            meta = entry.obj["metadata"]
            try:
                result = await self.delete(
                    rt, meta.get("namespace", ""), meta["name"], options, dry_run
                )
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            deleted.append(result.obj)
        return deleted

    # -- low-level writes --------------------------------------------------------------------

    def _put(self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any]) -> Entry:
        obj["metadata"]["resourceVersion"] = str(self.store.next_rv())
        entry = self.store.put(rt.storage_key, namespace, name, obj)
        if rt.storage_key == CRDS:
            self._serve_crd(obj)
        return entry

    def _remove(self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any]) -> Entry:
        obj["metadata"]["resourceVersion"] = str(self.store.next_rv())
        entry = self.store.remove(rt.storage_key, namespace, name, obj)
        if rt.storage_key == CRDS:
            self.registry.remove_crd(name)
        if rt.storage_key == "/services":
            self._allocated_ips.discard((obj.get("spec") or {}).get("clusterIP", ""))
        for callback in self.on_removed:
            callback(rt, entry.obj)
        return entry

    def _serve_crd(self, crd: dict[str, Any]) -> None:
        if crd["metadata"].get("deletionTimestamp"):
            return
        self.registry.set_crd(crd)

    def types_for(self, skey: str) -> ResourceType | None:
        """Any served type stored under `skey` (for controllers that hold only a key)."""
        group, _, plural = skey.partition("/")
        versions = self.registry.versions_of(group, plural)
        return versions[0] if versions else None

    def namespaced_types(self) -> Iterable[ResourceType]:
        seen = set()
        for rt in self.registry:
            if rt.namespaced and rt.storage_key not in seen:
                seen.add(rt.storage_key)
                yield rt


def _attributes(kind: str, opts: WriteOptions, subresource: str = "") -> AdmissionAttributes:
    fields = {"fieldManager": opts.field_manager} if opts.field_manager else {}
    return AdmissionAttributes(subresource, _review_options(kind, opts.dry_run, fields))


def _review_options(kind: str, dry_run: bool, fields: dict[str, Any]) -> dict[str, Any]:
    """A request's options as an AdmissionReview carries them: `kind` of meta.k8s.io/v1."""
    options = {**fields, "kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if dry_run:
        options["dryRun"] = ["All"]
    return options


def _graceful_seconds(rt: ResourceType, pod: dict[str, Any], options: dict[str, Any]) -> int:
    """The grace period of a pod deletion; 0 when the pod can go at once (unscheduled,
    finished, or deleted with gracePeriodSeconds=0)."""
    if rt.storage_key != "/pods":
        return 0
    if not (pod.get("spec") or {}).get("nodeName"):
        return 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    requested = options.get("gracePeriodSeconds")
    if requested is None:
        requested = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    try:
        return max(0, int(requested))
    except (TypeError, ValueError):
        raise errors.bad_request(f"invalid gracePeriodSeconds {requested!r}") from None


def _spec_finalizers(rt: ResourceType, obj: dict[str, Any]) -> builtins.list[Any]:
    """A namespace's `spec.finalizers`: it stays Terminating until its contents are gone."""
    if rt.storage_key != NAMESPACES:
        return []
    return list((obj.get("spec") or {}).get("finalizers") or [])


def _check_no_new_finalizers(
    rt: ResourceType, old_meta: dict[str, Any], new_meta: dict[str, Any]
) -> None:
    """An object being deleted may lose finalizers but gain none (ValidateNoNewFinalizers)."""
    if not old_meta.get("deletionTimestamp"):
        return
    added = sorted(set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or []))
    if added:
        found = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
        raise errors.invalid(
            rt.kind,
            rt.group,
            str(old_meta.get("name", "")),
            [
                (
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted,"
                    f" found new finalizers {found}",
                )
            ],
        )


def _crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    now = metadata.now_rfc3339()
    storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": sorted(set(previous) | set(storage)),
    }


def _decode_patch(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from None


def _patch_rv(patch: Any) -> Any:
    if isinstance(patch, dict):
        return (patch.get("metadata") or {}).get("resourceVersion")
    return None


def _check_preconditions(rt: ResourceType, obj: dict[str, Any], pre: dict[str, Any]) -> None:
    meta = obj["metadata"]
    for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        if pre.get(key) and pre[key] != meta.get(key):
            raise errors.conflict(
                rt.plural,
                rt.group,
                meta["name"],
                f"Precondition failed: {label} in precondition: {pre[key]}, {label} in object"
                f" meta: {meta.get(key)}",
            )


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a write changes nothing but bookkeeping (such writes are not stored)."""

    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in obj.get("metadata", {}).items()
            if k not in ("resourceVersion", "managedFields")
        }
        return {**obj, "metadata": meta}

    return strip(old) == strip(new)


# -- the /scale subresource ------------------------------------------------------------------


def _dotted_get(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _dotted_set(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    target = obj
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 `Scale` view of a scalable object."""
    paths = rt.scale
    assert paths is not None
    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": int(_dotted_get(obj, paths.status_replicas) or 0)}
    if paths.label_selector and rt.is_custom:
        selector = _dotted_get(obj, paths.label_selector)
        if selector:
            status["selector"] = selector
    elif not rt.is_custom:
        selector = (obj.get("spec") or {}).get("selector")
        if selector:
            status["selector"] = selectors.label_selector_to_string(selector)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int(_dotted_get(obj, paths.spec_replicas) or 0)},
        "status": status,
    }


def with_scale(rt: ResourceType, obj: dict[str, Any], scale: Any) -> dict[str, Any]:
    """`obj` with the replicas a written `Scale` asks for (400 when it is not a Scale)."""
    if not isinstance(scale, dict) or not isinstance(
        (scale.get("spec") or {}).get("replicas"), int
    ):
        raise errors.bad_request("a Scale with an integer spec.replicas is required")
    assert rt.scale is not None
    new = _copy(obj)
    _dotted_set(new, rt.scale.spec_replicas, scale["spec"]["replicas"])
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        new["metadata"]["resourceVersion"] = rv
    return new
