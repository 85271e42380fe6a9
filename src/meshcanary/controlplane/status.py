"""The status of an `IstioControlPlane`, computed from what the cluster shows (pure).

istio-operator v2 reports `Available` as soon as its manifests are applied. Here the status tells
the truth about istiod, and it is computed apart from being written (the operator reads the
objects, calls `compute_status`, patches `.status` and emits one Event per `Transition`), so
every rule below is a unit test away.

The rules, first match wins:

1. `ReconcileFailed` when the spec is unusable (`spec.SpecError`: a bad name, a version outside
   the range meshcanary supports), when applying the rendered objects failed (`apply_error`), or
   when this revision's injection webhooks would overlap another revision's (see `overlaps`).
2. `Reconciling` while istiod's Deployment does not exist or its controller has not observed its
   latest generation; then `ReconcileFailed` when its rollout exceeded its progress deadline, or
   when it is scaled to 0 replicas on purpose. Decision: zero replicas is not "available"
   (nothing answers the injection webhook, whose `failurePolicy: Fail` then blocks pod creation
   in every namespace that selects the revision), and it is not "reconciling" either (nothing is
   in progress), so it fails with a message saying so.
3. `Reconciling` until at least one replica runs the current template, no replica runs an older
   one (a version change is a rollout, not yet the new control plane), and at least one replica
   is available (`availableReplicas >= 1`).
4. With mesh expansion, `Reconciling` while the gateway's LoadBalancer has no address (message
   "expansion gateway address is pending"). Decision: pending is the normal first minute of a
   LoadBalancer, so it is not a failure at first; after `GATEWAY_PENDING_TIMEOUT` (measured from
   the Service's creation with the caller's clock) it becomes `ReconcileFailed`, as
   istio-operator v2 reports it, because a cluster without a load-balancer controller never
   assigns one.
5. `Available` otherwise.

Whatever the state, `proxies` counts the live pods injected by this revision (`mesh.proxies`:
finished pods never count; terminating ones do until gone) and `namespaces` lists the namespaces
whose labels select it (`istio.io/rev=<cp>.<ns>` without `istio-injection`, which would win).

Overlap, precisely: two injection webhooks overlap when some namespace labels and some pod labels
satisfy both webhooks' `namespaceSelector` and `objectSelector` at once, so the API server would
call both for one pod (double injection, analyzer IST0139). Selectors are conjunctions of per-key
requirements, so this is decided exactly, key by key (`selectors_intersect`). Only Istio
injection webhooks count (`mesh.injection.is_injection_webhook`), and only other revisions':
webhooks of this revision's own configuration, or calling this revision's istiod Service, are
skipped. By construction the revision webhooks of two different revisions never overlap, nor do
they overlap upstream's default-revision webhooks; what does: an older install whose webhook
selects `istio.io/rev In [<cp>.<ns>]` without excluding `istio-injection`, a copy of this
revision's webhooks pointing at another istiod, or any webhook with no selectors at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypedDict

from meshcanary.controlplane import render, spec
from meshcanary.mesh import injection, proxies, revisions, selectors

GATEWAY_PENDING_TIMEOUT: Final = timedelta(minutes=5)
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
GATEWAY_PENDING: Final = "expansion gateway address is pending"


class State(StrEnum):
    RECONCILING = "Reconciling"
    AVAILABLE = "Available"
    FAILED = "ReconcileFailed"


class Status(TypedDict):
    """`.status` of an IstioControlPlane: every key always present, so a merge patch of it
    replaces the previous status entirely (an absent key would keep a stale value)."""

    status: str
    errorMessage: str
    gatewayAddress: list[str] | None
    """None when there is no address: written as null, a merge patch removes the field, and the
    EXPANSION GW IPS column stays blank as in the seed (an empty list would print `[]`)."""
    proxies: int
    namespaces: list[str]
    observedGeneration: int
    revision: str
    version: str


@dataclass(frozen=True)
class Observed:
    """What the operator read from the cluster for one control plane."""

    istiod: Mapping[str, Any] | None = None
    """istiod's Deployment as the API server returns it (None: not found)."""
    gateway_service: Mapping[str, Any] | None = None
    """The mesh expansion gateway's Service (None: not found)."""
    pods: Sequence[Mapping[str, Any]] = ()
    """Pods of every namespace (metadata, spec containers and status phase suffice)."""
    namespaces: Sequence[Mapping[str, Any]] = ()
    webhook_configurations: Sequence[Mapping[str, Any]] = ()
    """Every MutatingWebhookConfiguration in the cluster (this revision's own included)."""
    apply_error: str | None = None
    """Why applying the rendered objects failed, if it did."""
    now: datetime | None = None
    """The caller's clock; without it a pending gateway address never times out."""


@dataclass(frozen=True)
class Transition:
    """A change of state (or of the failure message) worth a Kubernetes Event."""

    type: str
    """`Normal` or `Warning`, as Events have it."""
    reason: str
    message: str
    previous: str | None


@dataclass(frozen=True)
class Overlap:
    """One of our injection webhooks and another revision's that would both inject a pod."""

    ours: injection.InjectionWebhook
    theirs: injection.InjectionWebhook

    @property
    def message(self) -> str:
        return (
            f"injection webhook {self.ours.name} overlaps {self.theirs.name} of "
            f"MutatingWebhookConfiguration {self.theirs.configuration} (revision "
            f"{self.theirs.revision}): pods would be injected twice ({injection.IST0139})"
        )


@dataclass(frozen=True)
class Result:
    status: Status
    transitions: tuple[Transition, ...] = field(default=())


@dataclass(frozen=True)
class _Verdict:
    state: State
    message: str = ""


def compute_status(resource: Mapping[str, Any], observed: Observed) -> Result:
    """The status `resource` (an IstioControlPlane as read) should have, and its transitions."""
    meta = resource.get("metadata") or {}
    raw_spec = resource.get("spec") or {}
    revision = _revision(str(meta.get("name", "")), str(meta.get("namespace", "")))
    try:
        cp: spec.ControlPlane | None = spec.parse(resource)
    except spec.SpecError as error:
        cp, verdict = None, _Verdict(State.FAILED, str(error))
    if cp is not None:
        verdict = _verdict(cp, observed)
    status = Status(
        status=verdict.state.value,
        errorMessage=verdict.message,
        gatewayAddress=(gateway_addresses(observed.gateway_service) if cp else []) or None,
        proxies=count_proxies(revision, observed.pods),
        namespaces=selecting_namespaces(revision, observed.namespaces),
        observedGeneration=int(meta.get("generation") or 0),
        revision=revision,
        version=str(raw_spec.get("version") or ""),
    )
    return Result(status, transitions(resource.get("status"), status))


def _verdict(cp: spec.ControlPlane, observed: Observed) -> _Verdict:
    if observed.apply_error:
        return _Verdict(State.FAILED, observed.apply_error)
    found = overlaps(cp, observed.webhook_configurations)
    if found:
        return _Verdict(State.FAILED, "; ".join(o.message for o in found))
    verdict = _istiod_verdict(cp, observed.istiod)
    if verdict.state is State.AVAILABLE and cp.mesh_expansion:
        return _gateway_verdict(cp, observed.gateway_service, observed.now)
    return verdict


# -- istiod ---------------------------------------------------------------------------------------


def _istiod_verdict(cp: spec.ControlPlane, deployment: Mapping[str, Any] | None) -> _Verdict:
    """Rules 2 and 3: what istiod's Deployment says about the control plane."""
    name = f"{cp.namespace}/{revisions.istiod_name(cp.ref)}"
    if deployment is None:
        return _Verdict(State.RECONCILING, f"istiod Deployment {name} does not exist yet")
    meta, body = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return _Verdict(State.RECONCILING, f"istiod Deployment {name} is being updated")
    stalled = _stalled(status)
    if stalled is not None:
        return _Verdict(State.FAILED, f"istiod Deployment {name}: {stalled}")
    desired = int(body.get("replicas", 1))
    if desired == 0:
        return _Verdict(State.FAILED, _scaled_to_zero(cp, name))
    return _rollout_verdict(name, desired, status)


def _rollout_verdict(name: str, desired: int, status: Mapping[str, Any]) -> _Verdict:
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < 1 or replicas > updated:
        message = f"istiod {name} rollout in progress: {updated} of {desired} replicas updated"
        return _Verdict(State.RECONCILING, message)
    if available < 1:
        message = f"waiting for istiod {name}: 0 of {desired} replicas available"
        return _Verdict(State.RECONCILING, message)
    return _Verdict(State.AVAILABLE)


def _stalled(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or ():
        if (condition.get("type"), condition.get("reason")) == (
            "Progressing",
            PROGRESS_DEADLINE_EXCEEDED,
        ) and condition.get("status") == "False":
            detail = condition.get("message") or "no progress"
            return f"rollout exceeded its progress deadline ({detail})"
    return None


def _scaled_to_zero(cp: spec.ControlPlane, name: str) -> str:
    return (
        f"istiod Deployment {name} is scaled to 0 replicas: nothing answers the injection "
        f"webhook, so pods cannot be created in namespaces that select {cp.revision}"
    )


# -- mesh expansion gateway -----------------------------------------------------------------------


def _gateway_verdict(
    cp: spec.ControlPlane, service: Mapping[str, Any] | None, now: datetime | None
) -> _Verdict:
    """Rule 4: Available once the gateway has an address; pending fails after a timeout."""
    name = f"{cp.namespace}/{render.expansion_gateway_name(cp)}"
    if service is None:
        return _Verdict(State.RECONCILING, f"expansion gateway Service {name} does not exist yet")
    if gateway_addresses(service):
        return _Verdict(State.AVAILABLE)
    waited = _age(service, now)
    if waited is not None and waited > GATEWAY_PENDING_TIMEOUT:
        minutes = int(waited.total_seconds() // 60)
        detail = f"no load balancer assigned an address to Service {name} in {minutes}m"
        return _Verdict(State.FAILED, f"{GATEWAY_PENDING}: {detail}")
    return _Verdict(State.RECONCILING, GATEWAY_PENDING)


def gateway_addresses(service: Mapping[str, Any] | None) -> list[str]:
    """The LoadBalancer's ingress IPs (or host names), in the order the Service lists them."""
    if service is None:
        return []
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    found = [str(item.get("ip") or item.get("hostname") or "") for item in ingress]
    return [address for address in found if address]


def _age(obj: Mapping[str, Any], now: datetime | None) -> timedelta | None:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if now is None or not isinstance(created, str):
        return None
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return now - moment


# -- proxies and namespaces -----------------------------------------------------------------------


def count_proxies(revision: str, pods: Iterable[Mapping[str, Any]]) -> int:
    """Live proxies (not Succeeded/Failed) whose pod annotations name `revision`."""
    found = proxies.proxies_from_pods(pods)
    return sum(1 for proxy in found if proxy.live and proxy.revision == revision)


def selecting_namespaces(revision: str, namespaces: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the namespaces whose labels select `revision` (Istio's precedence), sorted."""
    return sorted(
        str((ns.get("metadata") or {}).get("name", ""))
        for ns in namespaces
        if injection.namespace_selection(_labels(ns)).revision == revision
    )


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# -- webhook overlap ------------------------------------------------------------------------------


def overlaps(cp: spec.ControlPlane, configurations: Iterable[Mapping[str, Any]]) -> list[Overlap]:
    """Other revisions' injection webhooks that would inject the same pods as `cp`'s."""
    own_configuration = revisions.mutating_webhook_name(cp.ref)
    own_service = f"{cp.namespace}/{revisions.istiod_name(cp.ref)}"
    ours = injection.webhooks_from_configuration(render.injection_webhooks(cp))
    others = [
        webhook
        for webhook in _injection_webhooks(configurations)
        if webhook.configuration != own_configuration and webhook.service != own_service
    ]
    return [
        Overlap(mine, theirs)
        for mine in ours
        for theirs in others
        if webhooks_overlap(mine, theirs)
    ]


def _injection_webhooks(
    configurations: Iterable[Mapping[str, Any]],
) -> list[injection.InjectionWebhook]:
    found: list[injection.InjectionWebhook] = []
    for configuration in configurations:
        try:
            webhooks = injection.webhooks_from_configuration(configuration)
        except ValueError:
            continue  # a selector the API server would have rejected: it cannot match anything
        found.extend(w for w in webhooks if _valid(w.namespace_selector, w.object_selector))
    return found


def _valid(*selectors_: Mapping[str, Any] | None) -> bool:
    try:
        for selector in selectors_:
            selectors.requirements(selector)
    except ValueError:
        return False
    return True


def webhooks_overlap(a: injection.InjectionWebhook, b: injection.InjectionWebhook) -> bool:
    """Whether one pod in one namespace can match both webhooks."""
    return selectors_intersect(a.namespace_selector, b.namespace_selector) and selectors_intersect(
        a.object_selector, b.object_selector
    )


def selectors_intersect(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether some label set satisfies both label selectors (None matches everything)."""
    by_key: dict[str, list[selectors.Requirement]] = {}
    for requirement in [*selectors.requirements(a), *selectors.requirements(b)]:
        by_key.setdefault(requirement.key, []).append(requirement)
    return all(_satisfiable(found) for found in by_key.values())


def _satisfiable(requirements: Sequence[selectors.Requirement]) -> bool:
    """Whether one label key can meet all these requirements (absent, or some value)."""
    must_exist = must_not_exist = False
    allowed: set[str] | None = None  # None: any value
    excluded: set[str] = set()
    for requirement in requirements:
        operator, values = requirement.operator, set(requirement.values)
        if operator in (selectors.IN, selectors.EQUALS):
            must_exist = True
            allowed = values if allowed is None else allowed & values
        elif operator == selectors.NOT_IN:
            excluded |= values
        elif operator == selectors.EXISTS:
            must_exist = True
        else:
            must_not_exist = True
    if must_not_exist:
        return not must_exist
    return allowed is None or bool(allowed - excluded)


# -- transitions ----------------------------------------------------------------------------------


def transitions(previous: Mapping[str, Any] | None, current: Status) -> tuple[Transition, ...]:
    """The Events to emit: one when the state changes, or when a failure's message does."""
    before = previous or {}
    old_state = before.get("status") or None
    changed_state = old_state != current["status"]
    changed_failure = (
        current["status"] == State.FAILED and before.get("errorMessage") != current["errorMessage"]
    )
    if not (changed_state or changed_failure):
        return ()
    return (_transition(old_state, current),)


def _transition(previous: str | None, current: Status) -> Transition:
    state = State(current["status"])
    message = current["errorMessage"]
    if state is State.AVAILABLE:
        message = (
            f"revision {current['revision']} (Istio {current['version']}) is available, "
            f"serving {current['proxies']} proxies"
        )
    kind = "Warning" if state is State.FAILED else "Normal"
    return Transition(type=kind, reason=state.value, message=message, previous=previous)


def _revision(name: str, namespace: str) -> str:
    try:
        return revisions.RevisionRef.for_control_plane(name, namespace).value
    except ValueError:
        return f"{name}.{namespace}"
