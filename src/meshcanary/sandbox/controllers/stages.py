"""The simulated kubelet's behaviour as data: the kwok-style stages a pod moves through.

A pod's life in the sandbox is a small state machine: bound to a node -> Running -> Ready, Job
pods -> Succeeded, terminating pods -> gone, plus the broken variants a `Fault` asks for. Writing
it as a table of frozen `Stage`s (kwok's Stage API: a selector on the pod's current state, a
delay, the next status) keeps every transition in one readable place and makes the choice a pure
function (`select_stage`) that tests probe without a cluster; the kubelet controller
(`kubelet.py`) is then a thin loop that waits and writes. A pod's status only ever changes by
applying a stage's `NextStatus` through `next_status`, so it can be resumed from wherever it is
after a restart: the stored status *is* the state.

Faults (`sandbox.meshcanary.io/v1` `Fault` objects with a `spec.pod`) are resolved per pod by
`pod_fault_effect` and only steer which stage comes next. A pod that is already Ready when a
fault appears stays Ready, because no fault stage selects a Ready pod: like a real broken
rollout, only pods that start afterwards are hit (pods still on their way to Ready included).
Clearing a fault lets the pods it held back carry on: NeverReady pods become Ready, crash-looping
ones come up after their current back-off. CrashLoop under restartPolicy Never leaves the
container terminated with exit code 1 instead, as a kubelet does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args

import orjson

from meshcanary.sandbox.apiserver import selectors
from meshcanary.sandbox.apiserver.metadata import now_rfc3339
from meshcanary.sandbox.settings import Settings

Pod = dict[str, Any]
FaultEffect = Literal["NeverReady", "CrashLoop", "SlowStart"]
FAULT_EFFECTS: Final = frozenset(get_args(FaultEffect))
FAULTS: Final = "sandbox.meshcanary.io/faults"
"""Storage key of the Fault resource (read from the store; an unknown key lists nothing)."""
PROXY_CONTAINER: Final = "istio-proxy"
DEFAULT_SLOW_START: Final = 30.0
MAX_CRASH_BACKOFF: Final = 5.0
CONDITION_ORDER: Final = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


# -- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultSpec:
    """The pod part of one Fault object, with its selectors compiled."""

    name: str
    effect: FaultEffect
    proxy_version: str | None = None
    namespace_selector: selectors.LabelSelector = field(default_factory=selectors.LabelSelector)
    pod_selector: selectors.LabelSelector = field(default_factory=selectors.LabelSelector)
    start_delay: float = DEFAULT_SLOW_START

    def matches(self, pod: Pod, namespace_labels: Mapping[str, str] | None) -> bool:
        if not self.namespace_selector.matches(namespace_labels or {}):
            return False
        if not self.pod_selector.matches(pod["metadata"].get("labels") or {}):
            return False
        if self.proxy_version is None:
            return True
        tag = _image_tag(_proxy_image(pod) or "")
        return tag is not None and fnmatch.fnmatchcase(tag, self.proxy_version)


def parse_faults(objects: Iterable[Mapping[str, Any]]) -> tuple[FaultSpec, ...]:
    """The pod faults among stored Fault objects, in name order; malformed ones are skipped
    (the API server validates Faults; a skipped one must not break the kubelet)."""
    specs = (_parse_fault(obj) for obj in objects)
    return tuple(sorted((s for s in specs if s is not None), key=lambda s: s.name))


def _parse_fault(obj: Mapping[str, Any]) -> FaultSpec | None:
    pod = (obj.get("spec") or {}).get("pod")
    if not isinstance(pod, Mapping) or pod.get("effect") not in FAULT_EFFECTS:
        return None
    try:
        return FaultSpec(
            name=str((obj.get("metadata") or {}).get("name", "")),
            effect=pod["effect"],
            proxy_version=str(pod["proxyVersion"]) if pod.get("proxyVersion") else None,
            namespace_selector=selectors.label_selector_from_dict(pod.get("namespaceSelector")),
            pod_selector=selectors.label_selector_from_dict(pod.get("podSelector")),
            start_delay=float(pod.get("startDelaySeconds", DEFAULT_SLOW_START)),
        )
    except (selectors.SelectorError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PodFault:
    """What a fault does to one pod: its effect and the container it hits (None: all)."""

    fault: str
    effect: FaultEffect
    container: str | None = None
    start_delay: float = DEFAULT_SLOW_START


def pod_fault_effect(
    pod: Pod, namespace_labels: Mapping[str, str] | None, faults: Sequence[FaultSpec]
) -> PodFault | None:
    """The first fault (by name) that selects `pod`, resolved to the container it breaks.

    NeverReady and CrashLoop hit the istio-proxy container when the pod has one as a regular
    container, otherwise every container (NeverReady) or the first one (CrashLoop).
    """
    for spec in faults:
        if spec.matches(pod, namespace_labels):
            names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
            return PodFault(spec.name, spec.effect, _target(spec.effect, names), spec.start_delay)
    return None


def _target(effect: FaultEffect, names: Sequence[str]) -> str | None:
    if effect == "SlowStart":
        return None
    if PROXY_CONTAINER in names:
        return PROXY_CONTAINER
    return names[0] if effect == "CrashLoop" and names else None


def _proxy_image(pod: Pod) -> str | None:
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if container.get("name") == PROXY_CONTAINER:
                return str(container.get("image") or "")
    return None


def _image_tag(image: str) -> str | None:
    """The tag of an image reference ("docker.io/istio/proxyv2:1.15.3" -> "1.15.3")."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


# -- reading a pod ------------------------------------------------------------------------------


def _statuses(pod: Pod) -> list[dict[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def _state(container_status: Mapping[str, Any]) -> str:
    state = container_status.get("state") or {}
    return next(iter(state), "waiting")


def _excluded(fault: PodFault | None, name: str) -> bool:
    """Whether `fault` keeps container `name` from ever becoming ready."""
    if fault is None or fault.effect == "SlowStart":
        return False
    return fault.container is None or fault.container == name


def _some_waiting(pod: Pod, fault: PodFault | None) -> bool:
    return any(_state(s) == "waiting" for s in _statuses(pod))


def _target_running(pod: Pod, fault: PodFault | None) -> bool:
    return fault is not None and any(
        s.get("name") == fault.container and _state(s) == "running" and not s.get("ready")
        for s in _statuses(pod)
    )


def _some_becoming_ready(pod: Pod, fault: PodFault | None) -> bool:
    return any(
        _state(s) == "running" and not s.get("ready") and not _excluded(fault, s.get("name", ""))
        for s in _statuses(pod)
    )


def _all_ready(pod: Pod, fault: PodFault | None) -> bool:
    statuses = _statuses(pod)
    return bool(statuses) and all(s.get("ready") for s in statuses)


ContainerTest = Literal["some-waiting", "target-running", "some-becoming-ready", "all-ready"]
_CONTAINER_TESTS: Final[dict[ContainerTest, Callable[[Pod, PodFault | None], bool]]] = {
    "some-waiting": _some_waiting,
    "target-running": _target_running,
    "some-becoming-ready": _some_becoming_ready,
    "all-ready": _all_ready,
}


def owner_kind(pod: Pod) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", ""))
    return None


def is_ready(pod: Pod) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


# -- the stage model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSelector:
    """Which pods a stage applies to; every field left at its default matches anything."""

    phases: frozenset[str] = frozenset()
    scheduled: bool | None = None
    deleting: bool | None = None
    owner_kinds: frozenset[str] = frozenset()
    restart_policies: frozenset[str] = frozenset()
    effects: frozenset[FaultEffect] | None = None
    containers: ContainerTest | None = None

    def matches(self, pod: Pod, fault: PodFault | None) -> bool:
        spec, meta = pod.get("spec") or {}, pod["metadata"]
        checks = (
            not self.phases or (pod.get("status") or {}).get("phase") in self.phases,
            self.scheduled is None or bool(spec.get("nodeName")) == self.scheduled,
            self.deleting is None or bool(meta.get("deletionTimestamp")) == self.deleting,
            not self.owner_kinds or owner_kind(pod) in self.owner_kinds,
            not self.restart_policies or spec.get("restartPolicy") in self.restart_policies,
            self.effects is None or (fault is not None and fault.effect in self.effects),
        )
        if not all(checks):
            return False
        return self.containers is None or _CONTAINER_TESTS[self.containers](pod, fault)


DelaySource = Literal[
    "pod_start_delay",
    "pod_ready_delay",
    "pod_termination_delay",
    "job_duration",
    "fault_start_delay",
    "crash_backoff",
]


def crash_backoff(settings: Settings, restart_count: int) -> float:
    """CrashLoopBackOff's doubling back-off (10 s, 20 s, ... on a node), scaled to the sandbox:
    base = max(pod_ready_delay, 0.05), doubled per restart, capped at MAX_CRASH_BACKOFF."""
    base = max(settings.pod_ready_delay, 0.05)
    return float(min(base * 2 ** max(0, restart_count - 1), MAX_CRASH_BACKOFF))


def _base_seconds(
    source: DelaySource, settings: Settings, pod: Pod, fault: PodFault | None
) -> float:
    if source == "fault_start_delay":
        return fault.start_delay if fault is not None else settings.pod_ready_delay
    if source == "crash_backoff":
        restarts = max((int(s.get("restartCount") or 0) for s in _statuses(pod)), default=0)
        return crash_backoff(settings, restarts)
    return float(getattr(settings, source))


@dataclass(frozen=True)
class Delay:
    """How long a stage waits: a settings knob (or a fault's own duration), with jitter:
    uniformly within +-`settings.jitter` of it unless `jitter` is off."""

    source: DelaySource
    jitter: bool = True

    def seconds(
        self, settings: Settings, pod: Pod, fault: PodFault | None, rng: random.Random
    ) -> float:
        base = _base_seconds(self.source, settings, pod, fault)
        if not self.jitter or not settings.jitter or base <= 0:
            return base
        return base * (1 + rng.uniform(-settings.jitter, settings.jitter))


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class EventSpec:
    """The Event a stage records; `message` is formatted with containers, target, pod,
    namespace and uid."""

    reason: str
    message: str
    type: str = "Normal"


ContainerChange = Literal["start", "ready", "complete", "fail", "crash", "restart"]


@dataclass(frozen=True)
class NextStatus:
    """What a stage does: a new phase, container states, conditions, or deleting the pod.

    When `containers` changes and the pod is Running, ContainersReady and Ready are derived from
    the containers' readiness, as the kubelet does; `conditions` are applied after that.
    """

    phase: str | None = None
    containers: ContainerChange | None = None
    conditions: tuple[Condition, ...] = ()
    start: bool = False
    delete: bool = False
    event: EventSpec | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    selector: StageSelector
    delay: Delay
    next: NextStatus


_RUNNING = frozenset({"Running"})
_LIVE_RUNNING = StageSelector(phases=_RUNNING, deleting=False)
_COMPLETED = "PodCompleted"

STAGES: Final[tuple[Stage, ...]] = (
    Stage(
        "pod-delete",
        StageSelector(scheduled=True, deleting=True),
        Delay("pod_termination_delay"),
        NextStatus(delete=True, event=EventSpec("Killing", "Stopping container {containers}")),
    ),
    Stage(
        "pod-running",
        StageSelector(phases=frozenset({"Pending"}), scheduled=True, deleting=False),
        Delay("pod_start_delay"),
        NextStatus(
            phase="Running",
            start=True,
            containers="start",
            conditions=(
                Condition("PodReadyToStartContainers", "True"),
                Condition("Initialized", "True"),
                Condition("PodScheduled", "True"),
            ),
            event=EventSpec("Started", "Started container {containers}"),
        ),
    ),
    Stage(
        "pod-restart",
        StageSelector(phases=_RUNNING, deleting=False, containers="some-waiting"),
        Delay("crash_backoff", jitter=False),
        NextStatus(containers="restart"),
    ),
    Stage(
        "pod-container-fail",  # restartPolicy Never: the container stays terminated
        StageSelector(
            phases=_RUNNING,
            deleting=False,
            restart_policies=frozenset({"Never"}),
            effects=frozenset({"CrashLoop"}),
            containers="target-running",
        ),
        Delay("pod_ready_delay"),
        NextStatus(containers="fail"),
    ),
    Stage(
        "pod-crash",
        StageSelector(
            phases=_RUNNING,
            deleting=False,
            effects=frozenset({"CrashLoop"}),
            containers="target-running",
        ),
        Delay("pod_ready_delay"),
        NextStatus(
            containers="crash",
            event=EventSpec(
                "BackOff",
                "Back-off restarting failed container {target} in pod {pod}_{namespace}({uid})",
                "Warning",
            ),
        ),
    ),
    Stage(
        "pod-ready-slow",
        StageSelector(
            phases=_RUNNING,
            deleting=False,
            effects=frozenset({"SlowStart"}),
            containers="some-becoming-ready",
        ),
        Delay("fault_start_delay", jitter=False),
        NextStatus(containers="ready"),
    ),
    Stage(
        "pod-ready",
        StageSelector(phases=_RUNNING, deleting=False, containers="some-becoming-ready"),
        Delay("pod_ready_delay"),
        NextStatus(containers="ready"),
    ),
    Stage(
        "pod-complete",
        StageSelector(
            phases=_RUNNING,
            deleting=False,
            owner_kinds=frozenset({"Job"}),
            restart_policies=frozenset({"Never", "OnFailure"}),
            containers="all-ready",
        ),
        Delay("job_duration"),
        NextStatus(
            phase="Succeeded",
            containers="complete",
            conditions=(
                Condition("Ready", "False", _COMPLETED),
                Condition("ContainersReady", "False", _COMPLETED),
            ),
        ),
    ),
)
"""The default stages, in priority order: the first whose selector matches applies."""


def select_stage(
    pod: Pod, fault: PodFault | None = None, stages: Sequence[Stage] = STAGES
) -> Stage | None:
    """The stage `pod` is in (None: nothing more happens to it until something changes).

    Selection is a pure function of the stored pod and its fault, as in kwok; time only enters
    through the stage's delay.
    """
    for stage in stages:
        if stage.selector.matches(pod, fault):
            return stage
    return None


# -- building the next status ------------------------------------------------------------------


@dataclass(frozen=True)
class StatusContext:
    """What a status change needs besides the pod: the clock's time, the addresses, the fault."""

    now: datetime
    pod_ip: str = ""
    host_ip: str = ""
    fault: PodFault | None = None

    @property
    def stamp(self) -> str:
        return now_rfc3339(self.now)


def next_status(pod: Pod, change: NextStatus, ctx: StatusContext) -> dict[str, Any]:
    """The pod's status after `change` (a new dict; the stored pod is left untouched)."""
    status: dict[str, Any] = orjson.loads(orjson.dumps(pod.get("status") or {}))
    if change.phase:
        status["phase"] = change.phase
    if change.start:
        status["startTime"] = status.get("startTime") or ctx.stamp
        status["podIP"], status["podIPs"] = ctx.pod_ip, [{"ip": ctx.pod_ip}]
        status["hostIP"], status["hostIPs"] = ctx.host_ip, [{"ip": ctx.host_ip}]
    conditions = list(status.get("conditions") or [])
    if change.containers is not None:
        _CONTAINER_CHANGES[change.containers](pod, status, ctx)
        if status.get("phase") == "Running":
            for kind in ("ContainersReady", "Ready"):
                conditions = set_condition(conditions, _readiness(status, kind), ctx.now)
    for condition in change.conditions:
        conditions = set_condition(conditions, condition, ctx.now)
    status["conditions"] = conditions
    return status


def set_condition(
    conditions: Sequence[Mapping[str, Any]], wanted: Condition, now: datetime
) -> list[dict[str, Any]]:
    """`conditions` with `wanted` set; lastTransitionTime moves only when the status does."""
    out = [dict(c) for c in conditions if c.get("type") != wanted.type]
    old = next((c for c in conditions if c.get("type") == wanted.type), None)
    since = now_rfc3339(now)
    if old is not None and old.get("status") == wanted.status:
        since = old.get("lastTransitionTime") or since
    condition: dict[str, Any] = {
        "type": wanted.type,
        "status": wanted.status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if wanted.reason:
        condition["reason"] = wanted.reason
    if wanted.message:
        condition["message"] = wanted.message
    out.append(condition)
    rank = {kind: i for i, kind in enumerate(CONDITION_ORDER)}
    return sorted(out, key=lambda c: rank.get(str(c.get("type")), len(rank)))


def _readiness(status: Mapping[str, Any], kind: str) -> Condition:
    unready = [
        s.get("name", "") for s in status.get("containerStatuses") or [] if not s.get("ready")
    ]
    if not unready:
        return Condition(kind, "True")
    names = " ".join(unready)
    return Condition(
        kind, "False", "ContainersNotReady", f"containers with unready status: [{names}]"
    )


def _normalized_image(image: str) -> tuple[str, str]:
    """(repository, reference) as containerd reports them: docker.io/library/nginx, 1.25."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    repo, tag = name.rsplit(":", 1) if ":" in last else (name, "latest")
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in first and ":" not in first and first != "localhost":
        repo = f"docker.io/{repo}"
    return repo, (f"@{digest}" if digest else f":{tag}")


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _container_status(
    pod: Pod, container: Mapping[str, Any], state: dict[str, Any]
) -> dict[str, Any]:
    name, image = str(container.get("name", "")), str(container.get("image", ""))
    repo, ref = _normalized_image(image)
    uid = str(pod["metadata"].get("uid", ""))
    return {
        "name": name,
        "image": repo + ref,
        "imageID": f"{repo}@sha256:{_digest(image)}",
        "containerID": f"containerd://{_digest(uid, name, '0')}",
        "ready": False,
        "started": True,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }


def _start(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    spec = pod.get("spec") or {}
    running = {"running": {"startedAt": ctx.stamp}}
    status["containerStatuses"] = [
        _container_status(pod, c, dict(running)) for c in spec.get("containers") or []
    ]
    inits = []
    for container in spec.get("initContainers") or []:
        if container.get("restartPolicy") == "Always":  # a native sidecar keeps running
            inits.append({**_container_status(pod, container, dict(running)), "ready": True})
            continue
        done = {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": ctx.stamp,
            "finishedAt": ctx.stamp,
        }
        entry = _container_status(pod, container, {"terminated": done})
        done["containerID"] = entry["containerID"]
        inits.append({**entry, "ready": True, "started": False})
    if inits:
        status["initContainerStatuses"] = inits


def _ready(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    for entry in status.get("containerStatuses") or []:
        if _state(entry) == "running" and not _excluded(ctx.fault, entry.get("name", "")):
            entry["ready"] = True


def _terminated(entry: Mapping[str, Any], code: int, reason: str, stamp: str) -> dict[str, Any]:
    running = (entry.get("state") or {}).get("running") or {}
    return {
        "exitCode": code,
        "reason": reason,
        "startedAt": running.get("startedAt", stamp),
        "finishedAt": stamp,
        "containerID": entry.get("containerID", ""),
    }


def _complete(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    for entry in status.get("containerStatuses") or []:
        entry["state"] = {"terminated": _terminated(entry, 0, "Completed", ctx.stamp)}
        entry["ready"], entry["started"] = False, False


def _targets(status: dict[str, Any], ctx: StatusContext) -> list[dict[str, Any]]:
    """The container statuses of the container the fault breaks."""
    name = ctx.fault.container if ctx.fault is not None else None
    return [e for e in status.get("containerStatuses") or [] if name and e.get("name") == name]


def _fail(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    for entry in _targets(status, ctx):
        entry["state"] = {"terminated": _terminated(entry, 1, "Error", ctx.stamp)}
        entry["ready"], entry["started"] = False, False


def _crash(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    meta = pod["metadata"]
    for entry in _targets(status, ctx):
        entry["lastState"] = {"terminated": _terminated(entry, 1, "Error", ctx.stamp)}
        entry["restartCount"] = int(entry.get("restartCount") or 0) + 1
        entry["ready"], entry["started"] = False, False
        message = (
            f"back-off restarting failed container={entry.get('name')}"
            f" pod={meta['name']}_{meta.get('namespace', '')}({meta.get('uid', '')})"
        )
        entry["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}


def _restart(pod: Pod, status: dict[str, Any], ctx: StatusContext) -> None:
    uid = str(pod["metadata"].get("uid", ""))
    for entry in status.get("containerStatuses") or []:
        if _state(entry) != "waiting":
            continue
        restarts = str(entry.get("restartCount") or 0)
        entry["containerID"] = f"containerd://{_digest(uid, entry.get('name', ''), restarts)}"
        entry["state"] = {"running": {"startedAt": ctx.stamp}}
        entry["ready"], entry["started"] = False, True


_CONTAINER_CHANGES: Final[
    dict[ContainerChange, Callable[[Pod, dict[str, Any], StatusContext], None]]
] = {
    "start": _start,
    "ready": _ready,
    "complete": _complete,
    "fail": _fail,
    "crash": _crash,
    "restart": _restart,
}


def event_message(spec: EventSpec, pod: Pod, fault: PodFault | None) -> str:
    meta = pod["metadata"]
    names = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or []]
    return spec.message.format(
        containers=", ".join(names),
        target=fault.container if fault is not None else "",
        pod=meta["name"],
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
    )
