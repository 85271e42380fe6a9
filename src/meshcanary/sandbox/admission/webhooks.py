"""Mutating and validating admission webhooks, called the way kube-apiserver 1.33 calls them.

Istio's sidecar injection and config validation are admission webhooks, and a canary upgrade
moves them from one istiod revision to the next (revision labels, tags, failure policies). To
rehearse that, the sandbox calls the webhooks its stored MutatingWebhookConfigurations and
ValidatingWebhookConfigurations describe, for the requests they select, in the real order and
with the real failure handling, so a misconfigured or unavailable webhook breaks exactly the
writes it would break on a real cluster.

`AdmissionWebhooks` is the plugin `server.py` appends to `Cluster.admission`; it runs after
defaulting and validation, before storage, for every create, update, patch, apply and delete:

- Selection per webhook: `rules` (operations, groups, versions, resources with `/subresource`
  and wildcards, scope), `namespaceSelector`, `objectSelector`, and `matchPolicy: Equivalent`
  (another served version of the same resource matches, and the webhook sees that version).
- Mutating webhooks first, configurations sorted by name, webhooks in order, one at a time; each
  JSON patch is applied and the result defaulted again (as decoding it does in Go). Webhooks with
  `reinvocationPolicy: IfNeeded` are called once more when a later webhook changed the object.
- Then the validating webhooks, concurrently; the first denial in configuration order wins.
- `failurePolicy`, `timeoutSeconds` (at most 30), and `sideEffects` on dry runs, with the real
  error wording. Webhook calls take time, so when the object was written meanwhile the request
  fails with a conflict (as etcd's compare-and-swap would) instead of overwriting that write.
- Requests on webhook configurations themselves, and on the sandbox's own API group, are never
  sent to webhooks, so no webhook can lock the sandbox out of fixing it.

Left out: `matchConditions` (CEL) always count as matching; only AdmissionReview v1 is sent;
warnings and audit annotations in answers are dropped; a mutated object is defaulted again but
not validated again; requests through `/scale` and `/finalize` are seen as writes to the object.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from meshcanary.sandbox.admission.calls import (
    REVIEW_API_VERSION,
    CallError,
    ServiceResolver,
    Verdict,
    WebhookCaller,
)
from meshcanary.sandbox.apiserver import defaults, errors, metadata, patching, schema
from meshcanary.sandbox.apiserver.cluster import NAMESPACES, AdmissionAttributes, Cluster
from meshcanary.sandbox.apiserver.registry import ResourceType
from meshcanary.sandbox.apiserver.selectors import (
    LabelSelector,
    SelectorError,
    label_selector_from_dict,
)
from meshcanary.sandbox.apiserver.store import Store, Subscription

log = logging.getLogger(__name__)

MUTATING = "admissionregistration.k8s.io/mutatingwebhookconfigurations"
VALIDATING = "admissionregistration.k8s.io/validatingwebhookconfigurations"
EXEMPT_GROUPS = frozenset({"admissionregistration.k8s.io", "sandbox.meshcanary.io"})
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0
USER_INFO = {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}
DRY_RUN_SAFE = ("None", "NoneOnDryRun")


@dataclass
class Request:
    """One write as admission sees it (Go's `admission.Attributes`)."""

    operation: str
    rt: ResourceType
    subresource: str
    namespace: str
    """The object's namespace; for a Namespace, its own name (as kube-apiserver sets it)."""
    name: str
    obj: dict[str, Any] | None
    """The new object; None on DELETE."""
    old: dict[str, Any] | None
    dry_run: bool
    options: dict[str, Any]
    equivalents: list[ResourceType] | None = None
    """The other served versions of the resource, once a webhook asked for them."""

    @property
    def on_namespace(self) -> bool:
        return self.rt.storage_key == NAMESPACES


@dataclass(frozen=True)
class Rule:
    """One `rules` entry: which operations on which group/version/resource[/subresource]."""

    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]
    scope: str

    @classmethod
    def parse(cls, rule: dict[str, Any]) -> Rule:
        resources = (r.partition("/") for r in _strings(rule.get("resources")))
        return cls(
            operations=frozenset(_strings(rule.get("operations"))),
            groups=frozenset(_strings(rule.get("apiGroups"))),
            versions=frozenset(_strings(rule.get("apiVersions"))),
            resources=tuple((res, sub) for res, _, sub in resources),
            scope=str(rule.get("scope") or "*"),
        )

    def matches(self, request: Request, rt: ResourceType) -> bool:
        """Whether the request, on `rt` (its own type or an equivalent one), is selected."""
        return self.selects(request) and self.covers(rt)

    def selects(self, request: Request) -> bool:
        """The version-independent half: operation, resource and subresource, scope."""
        return (
            _listed(self.operations, request.operation)
            and any(
                res in ("*", request.rt.plural) and sub in ("*", request.subresource)
                for res, sub in self.resources
            )
            and self._in_scope(request)
        )

    def covers(self, rt: ResourceType) -> bool:
        """The other half: the group and version the request is seen at."""
        return _listed(self.groups, rt.group) and _listed(self.versions, rt.version)

    def _in_scope(self, request: Request) -> bool:
        if self.scope == "*":
            return True
        if self.scope == "Namespaced":
            return not request.on_namespace and bool(request.namespace)
        if self.scope == "Cluster":
            return request.on_namespace or not request.namespace
        return False


@dataclass(frozen=True)
class Webhook:
    """One webhook of a stored configuration, parsed once per change of that configuration."""

    key: tuple[str, str, int]
    """(storage key, configuration name, index): identifies it across reinvocation."""
    name: str
    rules: tuple[Rule, ...]
    namespace_selector: LabelSelector
    object_selector: LabelSelector
    client_config: dict[str, Any] = field(compare=False)
    fail_open: bool = False
    equivalent: bool = True
    side_effects: str = "None"
    timeout: float = DEFAULT_TIMEOUT
    reinvoke: bool = False

    @classmethod
    def parse(cls, key: tuple[str, str, int], hook: dict[str, Any]) -> Webhook:
        """Raises SelectorError for a selector kube-apiserver would not have accepted."""
        timeout = hook.get("timeoutSeconds")
        return cls(
            key=key,
            name=str(hook.get("name", "")),
            rules=tuple(Rule.parse(r) for r in hook.get("rules") or () if isinstance(r, dict)),
            namespace_selector=label_selector_from_dict(hook.get("namespaceSelector")),
            object_selector=label_selector_from_dict(hook.get("objectSelector")),
            client_config=dict(hook.get("clientConfig") or {}),
            fail_open=hook.get("failurePolicy") == "Ignore",
            equivalent=hook.get("matchPolicy") != "Exact",
            side_effects=str(hook.get("sideEffects")),
            timeout=min(float(timeout), MAX_TIMEOUT) if timeout else DEFAULT_TIMEOUT,
            reinvoke=hook.get("reinvocationPolicy") == "IfNeeded",
        )


class _Configurations:
    """The stored webhooks, sorted as kube-apiserver calls them, parsed again only after a
    configuration changed: a request costs one look at a watch queue."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._watches: dict[str, Subscription] = {
            skey: store.subscribe(skey) for skey in (MUTATING, VALIDATING)
        }
        self._webhooks = {skey: self._parse(skey) for skey in self._watches}

    def webhooks(self, skey: str) -> tuple[Webhook, ...]:
        queue = self._watches[skey].queue
        if not queue.empty():
            while not queue.empty():
                queue.get_nowait()
            self._webhooks[skey] = self._parse(skey)
        return self._webhooks[skey]

    def _parse(self, skey: str) -> tuple[Webhook, ...]:
        webhooks = []
        for entry in self._store.list(skey):  # cluster-scoped: sorted by name
            name = entry.obj["metadata"]["name"]
            for index, hook in enumerate(entry.obj.get("webhooks") or ()):
                try:
                    webhooks.append(Webhook.parse((skey, name, index), hook))
                except (SelectorError, TypeError, ValueError) as exc:
                    log.warning("skipping webhook %d of %s %s: %s", index, skey, name, exc)
        return tuple(webhooks)

    def close(self) -> None:
        for subscription in self._watches.values():
            self._store.unsubscribe(subscription)


class AdmissionWebhooks:
    """The admission plugin calling the stored webhooks; `close()` it on shutdown.

    `resolver` finds the in-process handlers behind `clientConfig.service` (a simulated istiod
    answers its revision's webhooks); `max_timeout` caps every call (tests make it tiny).
    """

    def __init__(
        self,
        cluster: Cluster,
        resolver: ServiceResolver | None = None,
        *,
        max_timeout: float = MAX_TIMEOUT,
    ) -> None:
        self._cluster = cluster
        self._configurations = _Configurations(cluster.store)
        self._caller = WebhookCaller(resolver, self._service_exists)
        self._max_timeout = max_timeout

    async def __call__(
        self,
        operation: str,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        dry_run: bool,
        attributes: AdmissionAttributes,
    ) -> dict[str, Any]:
        if rt.group in EXEMPT_GROUPS:
            return obj
        mutating = self._configurations.webhooks(MUTATING)
        validating = self._configurations.webhooks(VALIDATING)
        if not mutating and not validating:
            return obj
        request = _request(operation, rt, obj, old, dry_run, attributes)
        called = await self._mutate(mutating, request)
        called = await self._validate(validating, request) or called
        if called:
            self._check_unchanged(request)
        return obj if request.obj is None else request.obj

    async def close(self) -> None:
        self._configurations.close()
        await self._caller.close()

    # -- selection ---------------------------------------------------------------------------

    def _match(self, hook: Webhook, request: Request) -> ResourceType | None:
        """The type the webhook sees the request as, or None when it is not to be called."""
        rt = self._matching_type(hook, request)
        if rt is None or not _object_selected(hook.object_selector, request):
            return None
        return rt if self._namespace_selected(hook.namespace_selector, request) else None

    def _matching_type(self, hook: Webhook, request: Request) -> ResourceType | None:
        rules = [rule for rule in hook.rules if rule.selects(request)]
        if not rules:
            return None
        if any(rule.covers(request.rt) for rule in rules):
            return request.rt
        if not hook.equivalent:
            return None
        if request.equivalents is None:
            rt = request.rt
            versions = self._cluster.registry.versions_of(rt.group, rt.plural)
            request.equivalents = [other for other in versions if other != rt]
        for rule in rules:  # earlier rules first, as kube-apiserver tries them
            for other in request.equivalents:
                if rule.covers(other):
                    return other
        return None

    def _namespace_selected(self, selector: LabelSelector, request: Request) -> bool:
        if selector.is_empty() or not (request.namespace or request.on_namespace):
            return True  # cluster-scoped objects other than namespaces always match
        if request.on_namespace and not request.subresource and request.obj is not None:
            return selector.matches(_labels(request.obj))  # the namespace being written
        entry = self._cluster.store.get(NAMESPACES, "", request.namespace)
        if entry is None:
            raise errors.not_found("namespaces", "", request.namespace)
        return selector.matches(_labels(entry.obj))

    # -- mutating and validating -------------------------------------------------------------

    async def _mutate(self, webhooks: tuple[Webhook, ...], request: Request) -> bool:
        """Call the matching mutating webhooks in order; whether any was called."""
        called = False
        reinvocable: list[Webhook] = []
        again: set[tuple[str, str, int]] = set()
        for hook in webhooks:
            rt = self._match(hook, request)
            if rt is None:
                continue
            called = True
            if await self._mutate_once(hook, rt, request):
                again.update(earlier.key for earlier in reinvocable)
            if hook.reinvoke:
                reinvocable.append(hook)
        for hook in webhooks:
            if hook.key in again and (rt := self._match(hook, request)) is not None:
                await self._mutate_once(hook, rt, request)
        return called

    async def _mutate_once(self, hook: Webhook, rt: ResourceType, request: Request) -> bool:
        """Call one mutating webhook and apply its patch; whether the object changed."""
        verdict = await self._call(hook, rt, request, mutating=True)
        if verdict is None or verdict.patch is None or request.obj is None:
            return False
        try:
            patched = patching.apply_json_patch(
                self._cluster.present(rt, request.obj), verdict.patch
            )
        except patching.PatchError as exc:
            raise errors.internal(f"Internal error occurred: {exc}") from None
        if not isinstance(patched, dict):
            raise errors.internal("Internal error occurred: the patch did not produce an object")
        patched["apiVersion"] = request.rt.api_version
        patched = _decoded(request.rt, patched)
        if patched == request.obj:
            return False
        request.obj = patched
        return True

    async def _validate(self, webhooks: tuple[Webhook, ...], request: Request) -> bool:
        """Call the matching validating webhooks at once; whether any was called."""
        matched = [
            (hook, rt) for hook in webhooks if (rt := self._match(hook, request)) is not None
        ]
        if not matched:
            return False
        outcomes = await asyncio.gather(
            *(self._call(hook, rt, request, mutating=False) for hook, rt in matched),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return True

    async def _call(
        self, hook: Webhook, rt: ResourceType, request: Request, mutating: bool
    ) -> Verdict | None:
        """The webhook's verdict, or None when it failed open; raises on a denial, on a failure
        under failurePolicy Fail, and on a dry run it may have side effects on."""
        if request.dry_run and hook.side_effects not in DRY_RUN_SAFE:
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        review = _review(self._cluster, rt, request)
        timeout = min(hook.timeout, self._max_timeout)
        try:
            verdict = await self._caller.call(hook.client_config, review, timeout, mutating)
        except CallError as exc:
            policy = "open" if hook.fail_open else "closed"
            log.warning("Failed calling webhook, failing %s %s: %s", policy, hook.name, exc)
            if hook.fail_open:
                return None
            raise errors.internal(
                f'Internal error occurred: failed calling webhook "{hook.name}": {exc}'
            ) from None
        if not verdict.allowed:
            raise _denied(hook.name, verdict.status)
        return verdict

    # -- helpers -----------------------------------------------------------------------------

    def _check_unchanged(self, request: Request) -> None:
        """After webhook calls: fail rather than overwrite a write that happened meanwhile."""
        rt, name = request.rt, request.name
        current = self._cluster.store.get(
            rt.storage_key, request.namespace if rt.namespaced else "", name
        )
        if request.operation == "CREATE":
            if current is not None:
                raise errors.already_exists(rt.plural, rt.group, name)
        elif current is None:
            raise errors.not_found(rt.plural, rt.group, name)
        elif current.obj is not request.old:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version"
                " and try again",
            )

    def _service_exists(self, namespace: str, name: str) -> bool:
        return self._cluster.store.get("/services", namespace, name) is not None


def _request(
    operation: str,
    rt: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    dry_run: bool,
    attributes: AdmissionAttributes,
) -> Request:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    on_namespace = rt.storage_key == NAMESPACES
    return Request(
        operation=operation,
        rt=rt,
        subresource=attributes.subresource,
        namespace=name if on_namespace else str(meta.get("namespace") or ""),
        name=name,
        obj=None if operation == "DELETE" else obj,
        old=old,
        dry_run=dry_run,
        options=attributes.options,
    )


def _review(cluster: Cluster, rt: ResourceType, request: Request) -> dict[str, Any]:
    """The AdmissionReview request for one call, with the objects as served at `rt`."""
    payload: dict[str, Any] = {
        "uid": metadata.new_uid(),
        "kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
        "requestKind": {
            "group": request.rt.group,
            "version": request.rt.version,
            "kind": request.rt.kind,
        },
        "requestResource": {
            "group": request.rt.group,
            "version": request.rt.version,
            "resource": request.rt.plural,
        },
        "name": request.name,
        "operation": request.operation,
        "userInfo": USER_INFO,
        "object": None if request.obj is None else cluster.present(rt, request.obj),
        "oldObject": None if request.old is None else cluster.present(rt, request.old),
        "dryRun": request.dry_run,
        "options": request.options,
    }
    if request.subresource:
        payload["subResource"] = payload["requestSubResource"] = request.subresource
    if request.namespace:
        payload["namespace"] = request.namespace
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "request": payload}


def _decoded(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A patched object as decoding it gives kube-apiserver: defaulted (custom: also pruned)."""
    if rt.is_custom:
        return schema.prepare(obj, rt.schema, preserve_unknown=rt.preserve_unknown_fields)[0]
    defaults.apply_defaults(obj, rt.api_version, rt.kind)
    return obj


def _denied(name: str, status: dict[str, Any]) -> errors.ApiError:
    """A denial as kube-apiserver reports it (`webhookerrors.ToStatusErr`)."""
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    why = status.get("message") or status.get("reason")
    message = f'admission webhook "{name}" denied the request'
    message += f": {why}" if why else " without explanation"
    details = status.get("details")
    return errors.ApiError(
        code,
        str(status.get("reason") or ""),
        message,
        details=details if isinstance(details, dict) else None,
    )


def _object_selected(selector: LabelSelector, request: Request) -> bool:
    """An empty selector takes all; otherwise the new or the old object must match."""
    if selector.is_empty():
        return True
    return any(
        obj is not None and selector.matches(_labels(obj)) for obj in (request.obj, request.old)
    )


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _listed(allowed: frozenset[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
