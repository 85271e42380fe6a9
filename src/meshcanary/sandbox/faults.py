"""Fault injection: the `Fault` resource, its validation, and the faults the API server applies.

Why: a canary upgrade has to be rehearsed against the failures that break real ones (a proxy
version whose pods never become ready, an API server that answers 500, throttles, stalls, or
drops watch streams), not only against a cluster that always works. Faults are ordinary stored
objects of a built-in, cluster-scoped type (`sandbox.meshcanary.io/v1` `Fault`), so the CLI,
kubectl and tests all manage them the same way, and they survive a sandbox restart.

A fault is one of two families (`docs/faults.md` documents every field):

- `spec.pod` (NeverReady, CrashLoop, SlowStart) is applied by the simulated kubelet
  (`controllers/kubelet.py`), which reads the stored faults. This module only defines and
  validates them.
- `spec.api` (Error, Latency, DropWatch) is applied here, to HTTP requests, by
  `ApiFaultInjector`, which the server installs as a request hook (`install`). In-process
  controllers call `Cluster` directly and are never affected: a fault disturbs clients, not the
  cluster's own behaviour. Requests on `faults` themselves, health, version, discovery and OpenAPI
  documents are exempt, so a fault can always be cleared.

Writes of Faults are validated by an admission plugin (`admit`), which answers 422 Invalid
naming each bad field, and stores the defaults (`code: 500`, `fraction: 1`, `afterSeconds: 1`,
`startDelaySeconds: 30`) so `kubectl get fault -o yaml` shows what is in force.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import orjson

from meshcanary.sandbox.apiserver import errors, http, metadata, selectors
from meshcanary.sandbox.apiserver.cluster import NAMESPACES, AdmissionAttributes, Cluster
from meshcanary.sandbox.apiserver.registry import STANDARD_VERBS, ResourceType
from meshcanary.sandbox.apiserver.store import Store

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

GROUP: Final = "sandbox.meshcanary.io"
VERSION: Final = "v1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "Fault"
PLURAL: Final = "faults"
STORAGE_KEY: Final = f"{GROUP}/{PLURAL}"

NEVER_READY, CRASH_LOOP, SLOW_START = "NeverReady", "CrashLoop", "SlowStart"
ERROR, LATENCY, DROP_WATCH = "Error", "Latency", "DropWatch"
POD_EFFECTS: Final = (NEVER_READY, CRASH_LOOP, SLOW_START)
API_EFFECTS: Final = (ERROR, LATENCY, DROP_WATCH)
ERROR_CODES: Final = (500, 409, 429)
VERBS: Final = STANDARD_VERBS

DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    SLOW_START: {"startDelaySeconds": 30},
    ERROR: {"code": 500, "fraction": 1},
    LATENCY: {"fraction": 1},
    DROP_WATCH: {"fraction": 1, "afterSeconds": 1},
}
"""What an omitted field means, per effect (stored into the object on write)."""

_POD_FIELDS: Final = (
    "effect",
    "proxyVersion",
    "namespaceSelector",
    "podSelector",
    "startDelaySeconds",
)
_API_FIELDS: Final = (
    "effect",
    "code",
    "fraction",
    "latencyMs",
    "afterSeconds",
    "verbs",
    "resources",
    "namespaces",
)
_ONLY_FOR: Final[Mapping[str, str]] = {
    "startDelaySeconds": SLOW_START,
    "code": ERROR,
    "latencyMs": LATENCY,
    "afterSeconds": DROP_WATCH,
}
"""Fields that belong to one effect: anywhere else they are rejected, not silently ignored."""

MAX_LATENCY_MS: Final = 600_000
MAX_SECONDS: Final = 86_400
_TAG_GLOB = re.compile(r"[A-Za-z0-9_.*?!\[\]-]{1,128}")
_RESOURCE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[a-z]+)?")

Cause: TypeAlias = tuple[str, str]
"""(field path, message), as `errors.invalid` reports a 422."""


class InvalidFault(ValueError):
    """A Fault object that breaks the rules; `causes` name each bad field."""

    def __init__(self, causes: list[Cause]) -> None:
        super().__init__(", ".join(f"{path}: {message}" for path, message in causes))
        self.causes = causes


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodFault:
    """A validated `spec.pod` fault (the simulated kubelet, `controllers/kubelet.py`, applies
    these: with `proxyVersion`, to pods whose `istio-proxy` image tag matches the glob)."""

    name: str
    effect: str
    proxy_version: str | None
    namespace_selector: selectors.LabelSelector
    pod_selector: selectors.LabelSelector
    start_delay_seconds: int


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What an API request does, in RBAC's terms: the verb, resource and namespace."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class ApiFault:
    """A `spec.api` fault, applied by the HTTP layer to the requests it matches."""

    name: str
    effect: str
    fraction: float
    code: int = 0
    latency_ms: int = 0
    after_seconds: float = 0.0
    verbs: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None

    def matches(self, info: RequestInfo) -> bool:
        """Whether a request is in scope (before the `fraction` draw)."""
        if self.effect == DROP_WATCH and info.verb != "watch":
            return False
        if self.verbs is not None and info.verb not in self.verbs:
            return False
        if self.namespaces is not None and info.namespace not in self.namespaces:
            return False
        return self.resources is None or any(_names_resource(r, info) for r in self.resources)

    def error(self, info: RequestInfo) -> errors.ApiError:
        """The `Status` an Error fault answers: shaped like the real server's, marked injected."""
        note = f'injected fault "{self.name}"'
        if self.code == 409:
            why = "the object has been modified; please apply your changes to the latest version"
            return errors.conflict(
                info.resource, info.group, info.name, f"{why} and try again ({note})"
            )
        if self.code == 429:
            error = errors.too_many_requests(f"Too many requests, please try again later. ({note})")
            error.details = {"retryAfterSeconds": 1}
            return error
        return errors.internal(f"Internal error occurred: {note}")


Fault: TypeAlias = PodFault | ApiFault


def _names_resource(entry: str, info: RequestInfo) -> bool:
    """`pods` names pods and their subresources, `pods/status` only that subresource;
    `deployments.apps` is accepted for `deployments`."""
    base, _, sub = entry.partition("/")
    if sub and sub != info.subresource:
        return False
    return base == info.resource or base == f"{info.resource}.{info.group}"


# -- validation and parsing -------------------------------------------------------------------


def _show(value: Any) -> str:
    """A bad value as field errors print it: strings quoted, numbers bare."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


class _Reader:
    """Reads one object of a fault's spec, recording a cause for every bad field."""

    def __init__(self, data: Mapping[str, Any], path: str, causes: list[Cause]) -> None:
        self.data, self.path, self.causes = data, path, causes

    def fail(self, key: str, message: str) -> None:
        self.causes.append((f"{self.path}.{key}" if key else self.path, message))

    def unknown_fields(self, allowed: Iterable[str]) -> None:
        known = sorted(allowed)
        for key in self.data:
            if key not in known:
                supported = ", ".join(f'"{k}"' for k in known)
                self.fail(key, f"Forbidden: unknown field; supported fields: {supported}")

    def effect_fields(self, effect: str | None) -> None:
        """Reject fields that belong to another effect (when the effect itself is valid)."""
        if effect is None:
            return
        for key, owner in _ONLY_FOR.items():
            if key in self.data and owner != effect:
                self.fail(key, f"Forbidden: only valid when effect is {owner}")

    def enum(self, key: str, allowed: Iterable[Any], default: Any = None) -> Any:
        value = self.data.get(key, default)
        choices = tuple(allowed)
        supported = ", ".join(f'"{c}"' for c in choices)
        if value is None:
            self.fail(key, f"Required value: supported values: {supported}")
        elif (
            isinstance(value, bool)
            or not isinstance(value, type(choices[0]))
            or value not in choices
        ):
            self.fail(key, f"Unsupported value: {_show(value)}: supported values: {supported}")
        else:
            return value
        return None

    def number(
        self, key: str, effect: str, low: float, high: float, *, integer: bool, low_open: bool
    ) -> Any:
        """A number in [low, high] (or (low, high]); the effect's default when absent."""
        value = self.data.get(key, DEFAULTS.get(effect, {}).get(key))
        if value is None:
            self.fail(key, "Required value")
            return None
        if not (_is_int(value) if integer else _is_number(value)):
            kind = "an integer" if integer else "a number"
            self.fail(key, f"Invalid value: {_show(value)}: must be {kind}")
            return None
        if value < low or (low_open and value == low) or value > high:
            bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
            self.fail(key, f"Invalid value: {_show(value)}: must be {bound} and at most {high:g}")
            return None
        return value

    def string_set(self, key: str, problem: Callable[[str], str | None]) -> frozenset[str] | None:
        """A non-empty list of distinct strings, each checked by `problem` (None: omitted)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            self.fail(
                key,
                f"Invalid value: {_show(value)}: must be a non-empty list (omit the"
                " field to match everything)",
            )
            return None
        seen: set[str] = set()
        for index, item in enumerate(value):
            path = f"{key}[{index}]"
            issue = problem(item) if isinstance(item, str) else "must be a string"
            if issue is not None:
                self.fail(path, f"Invalid value: {_show(item)}: {issue}")
            elif item in seen:
                self.fail(path, f"Duplicate value: {_show(item)}")
            seen.add(str(item))
        return frozenset(seen)

    def selector(self, key: str) -> selectors.LabelSelector:
        value = self.data.get(key)
        try:
            return selectors.label_selector_from_dict(value)
        except selectors.SelectorError as exc:
            self.fail(key, f"Invalid value: {exc}")
            return selectors.LabelSelector()

    def tag_glob(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not _TAG_GLOB.fullmatch(value):
            self.fail(
                key,
                f"Invalid value: {_show(value)}: must be a glob on an image tag (up to 128"
                ' letters, digits, ".", "_", "-" and the wildcards "*", "?", "[...]")',
            )
            return None
        return value


def _verb_problem(verb: str) -> str | None:
    if verb in VERBS:
        return None
    return "supported values: " + ", ".join(f'"{v}"' for v in VERBS)


def _resource_problem(resource: str) -> str | None:
    if not _RESOURCE.fullmatch(resource):
        return 'must be a resource plural, optionally with a group or "/subresource"'
    if resource.partition("/")[0] in (PLURAL, f"{PLURAL}.{GROUP}"):
        return "faults are exempt from API faults (so they can always be cleared)"
    return None


def _namespace_problem(namespace: str) -> str | None:
    return metadata.name_problem(namespace, "namespaces", False)


def _read_pod(name: str, data: Mapping[str, Any], causes: list[Cause]) -> PodFault | None:
    reader = _Reader(data, "spec.pod", causes)
    reader.unknown_fields(_POD_FIELDS)
    effect = reader.enum("effect", POD_EFFECTS)
    reader.effect_fields(effect)
    delay = 0
    if effect == SLOW_START:
        delay = reader.number(
            "startDelaySeconds", effect, 1, MAX_SECONDS, integer=True, low_open=False
        )
    proxy_version = reader.tag_glob("proxyVersion")
    namespace_selector = reader.selector("namespaceSelector")
    pod_selector = reader.selector("podSelector")
    if effect is None:
        return None
    return PodFault(name, effect, proxy_version, namespace_selector, pod_selector, delay or 0)


def _read_api(name: str, data: Mapping[str, Any], causes: list[Cause]) -> ApiFault | None:
    reader = _Reader(data, "spec.api", causes)
    reader.unknown_fields(_API_FIELDS)
    effect = reader.enum("effect", API_EFFECTS)
    reader.effect_fields(effect)
    specific: dict[str, Any] = {}
    if effect == ERROR:
        specific["code"] = reader.enum("code", ERROR_CODES, DEFAULTS[ERROR]["code"])
    elif effect == LATENCY:
        specific["latency_ms"] = reader.number(
            "latencyMs", effect, 1, MAX_LATENCY_MS, integer=True, low_open=False
        )
    elif effect == DROP_WATCH:
        specific["after_seconds"] = reader.number(
            "afterSeconds", effect, 0, MAX_SECONDS, integer=False, low_open=True
        )
    fraction = reader.number("fraction", ERROR, 0, 1, integer=False, low_open=True)
    verbs = reader.string_set("verbs", _verb_problem)
    if effect == DROP_WATCH and verbs is not None and "watch" not in verbs:
        reader.fail("verbs", 'Invalid value: must include "watch" for a DropWatch fault')
    resources = reader.string_set("resources", _resource_problem)
    namespaces = reader.string_set("namespaces", _namespace_problem)
    if effect is None:
        return None
    return ApiFault(
        name,
        effect,
        float(fraction or 1),
        verbs=verbs,
        resources=resources,
        namespaces=namespaces,
        **{k: v for k, v in specific.items() if v is not None},
    )


def parse(obj: Mapping[str, Any]) -> Fault:
    """The fault a stored or submitted object describes; InvalidFault names every bad field."""
    causes: list[Cause] = []
    name = str((obj.get("metadata") or {}).get("name", ""))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidFault([("spec", "Required value: a fault needs spec.pod or spec.api")])
    _Reader(spec, "spec", causes).unknown_fields(["pod", "api"])
    family = "pod" if "pod" in spec else "api"
    body = spec.get(family)
    fault: Fault | None = None
    if "pod" not in spec and "api" not in spec:
        causes.append(("spec", "Required value: exactly one of spec.pod or spec.api must be set"))
    elif "pod" in spec and "api" in spec:
        causes.append(("spec.api", "Forbidden: may not be set together with spec.pod"))
    elif not isinstance(body, Mapping):
        causes.append((f"spec.{family}", f"Invalid value: {_show(body)}: must be an object"))
    else:
        fault = (_read_pod if family == "pod" else _read_api)(name, body, causes)
    if causes or fault is None:
        raise InvalidFault(causes)
    return fault


def validate(obj: Mapping[str, Any]) -> list[Cause]:
    """(field, message) for each problem of a Fault object; [] when it is valid."""
    try:
        parse(obj)
    except InvalidFault as exc:
        return exc.causes
    return []


def with_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` (valid) with the omitted fields of its effect filled in, in place."""
    spec = obj["spec"]
    family = spec.get("pod") or spec.get("api")
    for key, value in DEFAULTS.get(family["effect"], {}).items():
        family.setdefault(key, value)
    return obj


def load(store: Store) -> list[Fault]:
    """Every valid stored fault, by name (invalid ones, stored before a rule existed, skipped)."""
    faults: list[Fault] = []
    for entry in store.list(STORAGE_KEY):
        try:
            faults.append(parse(entry.obj))
        except InvalidFault as exc:
            log.warning("ignoring invalid fault %s: %s", entry.obj["metadata"]["name"], exc)
    return faults


async def admit(
    operation: str,
    rt: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    dry_run: bool,
    attributes: AdmissionAttributes,
) -> dict[str, Any]:
    """Admission plugin: 422 for an invalid Fault, defaults stored for a valid one."""
    if rt.storage_key != STORAGE_KEY or operation == "DELETE" or attributes.subresource:
        return obj
    if old is not None and old.get("spec") == obj.get("spec"):
        return obj  # a metadata-only write: the stored spec was checked when it was written
    causes = validate(obj)
    if causes:
        raise errors.invalid(KIND, GROUP, str(obj["metadata"].get("name", "")), causes)
    return with_defaults(obj)


# -- label selectors from kubectl's string syntax ---------------------------------------------

_AS_EXPRESSION: Final = {
    "in": "In",
    "notin": "NotIn",
    "!=": "NotIn",
    "exists": "Exists",
    "!": "DoesNotExist",
}


def selector_from_string(text: str) -> dict[str, Any]:
    """`team=payments,tier in (a,b)` as a `metav1.LabelSelector` (SelectorError if invalid)."""
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for requirement in selectors.parse_label_selector(text).requirements:
        operator = requirement.operator
        if operator in ("=", "=="):
            match_labels[requirement.key] = requirement.values[0]
        elif operator in _AS_EXPRESSION:
            expression: dict[str, Any] = {
                "key": requirement.key,
                "operator": _AS_EXPRESSION[operator],
            }
            if requirement.values:
                expression["values"] = list(requirement.values)
            expressions.append(expression)
        else:
            raise selectors.SelectorError(
                f"{requirement}: numeric comparisons cannot be written as a label selector object"
            )
    selector: dict[str, Any] = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


# -- API faults at the HTTP layer -------------------------------------------------------------

_WRITE_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def request_info(method: str, target: http.Target, query: Mapping[str, str]) -> RequestInfo | None:
    """The RBAC-style view of a resolved request; None when faults never apply to it."""
    rt = target.rt
    if rt.storage_key == STORAGE_KEY:
        return None
    if method in _WRITE_VERBS:
        verb = _WRITE_VERBS[method]
    elif method == "DELETE":
        verb = "delete" if target.name else "deletecollection"
    elif target.watch_path or (not target.name and query.get("watch") in ("true", "1")):
        verb = "watch"
    else:
        verb = "get" if target.name else "list"
    namespace = target.namespace
    if rt.storage_key == NAMESPACES and target.name:
        namespace = target.name  # as kube-apiserver's RequestInfo has it
    return RequestInfo(verb, rt.group, rt.plural, target.subresource, namespace, target.name)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the faults that fired do to one request."""

    delay_seconds: float = 0.0
    error: errors.ApiError | None = None
    watch_cutoff: float | None = None


class ApiFaultInjector:
    """Applies the stored API faults to requests: the server's target hook.

    The parsed faults are cached and re-read only when the store reports a change to `faults`
    (a subscription whose queue is checked per request), so a request costs a queue check and a
    match against the few faults in force.
    """

    def __init__(self, store: Store, rng: random.Random | None = None) -> None:
        self._store = store
        self._rng = rng or random.Random()
        self._subscription = store.subscribe(STORAGE_KEY)
        self._faults = self._read()

    def close(self) -> None:
        self._store.unsubscribe(self._subscription)

    def faults(self) -> tuple[ApiFault, ...]:
        """The API faults in force (re-read after any change to a Fault)."""
        queue = self._subscription.queue
        if not queue.empty():
            while not queue.empty():
                queue.get_nowait()
            self._faults = self._read()
        return self._faults

    def _read(self) -> tuple[ApiFault, ...]:
        return tuple(f for f in load(self._store) if isinstance(f, ApiFault))

    def decide(self, info: RequestInfo) -> Decision:
        """Draw each matching fault against its fraction: latencies add, the first error wins,
        the shortest watch cutoff wins."""
        delay, error, cutoff = 0.0, None, None
        for fault in self.faults():
            if not fault.matches(info) or not self._fires(fault):
                continue
            if fault.effect == LATENCY:
                delay += fault.latency_ms / 1000
            elif fault.effect == ERROR and error is None:
                error = fault.error(info)
            elif fault.effect == DROP_WATCH:
                cutoff = min(cutoff or fault.after_seconds, fault.after_seconds)
            log.debug("fault %s fired on %s %s", fault.name, info.verb, info.resource)
        return Decision(delay, error, cutoff)

    def _fires(self, fault: ApiFault) -> bool:
        return fault.fraction >= 1 or self._rng.random() < fault.fraction

    async def __call__(self, request: web.Request, target: http.Target) -> None:
        """The hook: delay, then answer the injected error, or mark a watch to be cut short."""
        info = request_info(request.method, target, request.query)
        if info is None:
            return
        decision = self.decide(info)
        if decision.delay_seconds:
            await asyncio.sleep(decision.delay_seconds)
        if decision.error is not None:
            raise decision.error
        if decision.watch_cutoff is not None:
            request[http.WATCH_CUTOFF_KEY] = decision.watch_cutoff


def install(
    cluster: Cluster, app: web.Application, rng: random.Random | None = None
) -> ApiFaultInjector:
    """Validate Faults on write and apply API faults to `app`'s requests."""
    cluster.admission.append(admit)
    injector = ApiFaultInjector(cluster.store, rng)
    app[http.TARGET_HOOKS_KEY].append(injector)
    return injector
