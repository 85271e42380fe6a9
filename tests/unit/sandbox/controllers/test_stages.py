"""The stage table as pure functions: which stage a pod is in, what its next status is, and
which fault (if any) hits it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshcanary.sandbox.controllers.stages import (
    STAGES,
    Condition,
    Delay,
    PodFault,
    StatusContext,
    crash_backoff,
    next_status,
    parse_faults,
    pod_fault_effect,
    select_stage,
    set_condition,
)
from meshcanary.sandbox.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROXY_115 = "docker.io/istio/proxyv2:1.15.3"
Pod = dict[str, Any]


def pod(
    *,
    phase: str = "Pending",
    node: str | None = "node-1",
    proxy: str | None = None,
    labels: dict[str, str] | None = None,
    owner: str | None = None,
    restart: str = "Always",
    deleting: bool = False,
) -> Pod:
    containers = [{"name": "app", "image": "nginx:1.27"}]
    if proxy:
        containers.append({"name": "istio-proxy", "image": proxy})
    meta: dict[str, Any] = {
        "name": "web-1",
        "namespace": "shop",
        "uid": "uid-1",
        "labels": labels or {"app": "web"},
    }
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "uid": "o", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:30Z"
    spec: dict[str, Any] = {"containers": containers, "restartPolicy": restart}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def advanced(p: Pod, fault: PodFault | None = None, at: float = 0) -> Pod:
    """`p` after the stage it is in has been applied at T0 + `at` seconds."""
    stage = select_stage(p, fault)
    assert stage is not None
    ctx = StatusContext(T0 + timedelta(seconds=at), "10.244.0.2", "172.18.0.2", fault)
    return {**p, "status": next_status(p, stage.next, ctx)}


def condition(p: Pod, kind: str) -> dict[str, Any]:
    return next(c for c in p["status"]["conditions"] if c["type"] == kind)


def stage_name(p: Pod, fault: PodFault | None = None) -> str | None:
    stage = select_stage(p, fault)
    return stage.name if stage else None


# -- selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (pod(node=None), None),
        (pod(), "pod-running"),
        (pod(deleting=True), "pod-delete"),
        (pod(node=None, deleting=True), None),
        (pod(phase="Succeeded"), None),
        (pod(phase="Running"), None),  # Running but no container statuses: nothing to do
    ],
)
def test_stage_of_each_pod_state(state: Pod, expected: str | None) -> None:
    assert stage_name(state) == expected


def test_default_lifecycle_walks_running_then_ready_then_rests() -> None:
    p = pod()
    names = []
    while (stage := select_stage(p)) is not None:
        names.append(stage.name)
        p = advanced(p)
    assert names == ["pod-running", "pod-ready"]
    assert condition(p, "Ready")["status"] == "True"


def test_job_pods_complete_after_ready() -> None:
    p = pod(owner="Job", restart="Never")
    names = []
    while (stage := select_stage(p)) is not None:
        names.append(stage.name)
        p = advanced(p)
    assert names == ["pod-running", "pod-ready", "pod-complete"]
    assert p["status"]["phase"] == "Succeeded"
    assert condition(p, "Ready")["reason"] == "PodCompleted"
    terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


def test_pods_of_other_owners_never_complete() -> None:
    ready = advanced(advanced(pod(owner="ReplicaSet")))
    assert stage_name(ready) is None


def test_deletion_wins_over_every_other_stage() -> None:
    running = advanced(pod())
    assert stage_name(
        {**running, "metadata": {**running["metadata"], "deletionTimestamp": "x"}}
    ) == ("pod-delete")


def test_the_table_is_exported_data() -> None:
    assert [s.name for s in STAGES][:2] == ["pod-delete", "pod-running"]
    assert all(s.delay.source for s in STAGES)


# -- the statuses ----------------------------------------------------------------------------


def test_running_status_has_every_field_a_kubelet_reports() -> None:
    p = pod(proxy=PROXY_115)
    p["spec"]["initContainers"] = [{"name": "istio-init", "image": PROXY_115}]
    status = advanced(p, at=2)["status"]
    stamp = "2026-01-01T00:00:02Z"
    assert status["phase"] == "Running"
    assert status["startTime"] == stamp
    assert (status["podIP"], status["podIPs"]) == ("10.244.0.2", [{"ip": "10.244.0.2"}])
    assert (status["hostIP"], status["hostIPs"]) == ("172.18.0.2", [{"ip": "172.18.0.2"}])
    app, proxy = status["containerStatuses"]
    assert app["image"] == "docker.io/library/nginx:1.27"
    assert app["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert app["containerID"].startswith("containerd://")
    assert (app["ready"], app["started"], app["restartCount"]) == (False, True, 0)
    assert app["state"] == {"running": {"startedAt": stamp}}
    assert proxy["image"] == PROXY_115
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert (init["ready"], init["started"]) == (True, False)
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
        "PodScheduled": "True",
    }
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert condition({"status": status}, "Ready")["message"] == (
        "containers with unready status: [app istio-proxy]"
    )


def test_ready_stamps_the_transition_time() -> None:
    ready = advanced(advanced(pod(), at=2), at=5)
    assert condition(ready, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:05Z"
    assert condition(ready, "Initialized")["lastTransitionTime"] == "2026-01-01T00:00:02Z"
    assert all(c["ready"] for c in ready["status"]["containerStatuses"])


def test_set_condition_moves_the_transition_time_only_on_a_change() -> None:
    first = set_condition([], Condition("Ready", "False", "ContainersNotReady"), T0)
    later = T0 + timedelta(seconds=9)
    same = set_condition(first, Condition("Ready", "False", "Other"), later)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "Other"
    flipped = set_condition(same, Condition("Ready", "True"), later)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:00:09Z"
    assert "reason" not in flipped[0]


def test_next_status_leaves_the_stored_pod_alone() -> None:
    p = pod()
    advanced(p)
    assert p["status"] == {"phase": "Pending"}


# -- delays ----------------------------------------------------------------------------------


def test_jitter_stays_within_the_fraction_and_is_seedable() -> None:
    settings = Settings(pod_start_delay=10, jitter=0.2)
    delay = Delay("pod_start_delay")
    draws = [delay.seconds(settings, pod(), None, random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(1)
    assert all(8 <= delay.seconds(settings, pod(), None, rng) <= 12 for _ in range(200))
    assert Delay("pod_start_delay", jitter=False).seconds(settings, pod(), None, rng) == 10


def test_crash_backoff_doubles_and_is_capped() -> None:
    settings = Settings(pod_ready_delay=0.5)
    assert [crash_backoff(settings, n) for n in (1, 2, 3, 5, 20)] == [0.5, 1, 2, 5, 5]
    assert crash_backoff(Settings(pod_ready_delay=0), 1) == 0.05


def test_slow_start_waits_for_the_fault_delay() -> None:
    fault = PodFault("slow", "SlowStart", None, 42)
    running = advanced(pod(), fault)
    stage = select_stage(running, fault)
    assert stage is not None and stage.name == "pod-ready-slow"
    assert stage.delay.seconds(Settings(), running, fault, random.Random()) == 42


# -- faults ----------------------------------------------------------------------------------


def fault_object(name: str, **pod_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"pod": pod_spec}}


def test_parse_faults_skips_api_faults_and_malformed_ones() -> None:
    specs = parse_faults(
        [
            fault_object("b", effect="CrashLoop"),
            fault_object("a", effect="SlowStart", startDelaySeconds=5),
            fault_object("bad-effect", effect="Explode"),
            fault_object("bad-selector", effect="NeverReady", podSelector={"matchLabels": 3}),
            {"metadata": {"name": "api"}, "spec": {"api": {"effect": "Error"}}},
        ]
    )
    assert [(s.name, s.effect, s.start_delay) for s in specs] == [
        ("a", "SlowStart", 5.0),
        ("b", "CrashLoop", 30.0),
    ]


@pytest.mark.parametrize(
    ("glob", "image", "hit"),
    [
        ("1.15.*", PROXY_115, True),
        ("1.15.*", "docker.io/istio/proxyv2:1.16.0", False),
        ("1.15.3", "registry:5000/istio/proxyv2:1.15.3", True),
        ("1.15.*", "docker.io/istio/proxyv2:1.15.3-distroless", True),
        ("1.15.*", "docker.io/istio/proxyv2@sha256:abc", False),
        ("1.1?.*", PROXY_115, True),
    ],
)
def test_proxy_version_is_a_glob_on_the_proxy_image_tag(glob: str, image: str, hit: bool) -> None:
    specs = parse_faults([fault_object("f", effect="NeverReady", proxyVersion=glob)])
    assert (pod_fault_effect(pod(proxy=image), {}, specs) is not None) == hit


def test_a_proxy_version_never_matches_a_pod_without_proxy() -> None:
    specs = parse_faults([fault_object("f", effect="NeverReady", proxyVersion="*")])
    assert pod_fault_effect(pod(), {}, specs) is None


def test_namespace_and_pod_selectors() -> None:
    specs = parse_faults(
        [
            fault_object(
                "f",
                effect="CrashLoop",
                namespaceSelector={"matchLabels": {"team": "payments"}},
                podSelector={
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]
                },
            )
        ]
    )
    assert pod_fault_effect(pod(), {"team": "payments"}, specs) is not None
    assert pod_fault_effect(pod(), {"team": "search"}, specs) is None
    assert pod_fault_effect(pod(), None, specs) is None
    assert pod_fault_effect(pod(labels={"app": "db"}), {"team": "payments"}, specs) is None


def test_omitted_selectors_select_every_pod_and_the_first_fault_by_name_wins() -> None:
    specs = parse_faults(
        [fault_object("z", effect="CrashLoop"), fault_object("a", effect="SlowStart")]
    )
    effect = pod_fault_effect(pod(), None, specs)
    assert effect == PodFault("a", "SlowStart", None, 30.0)


@pytest.mark.parametrize(
    ("effect", "proxy", "target"),
    [
        ("NeverReady", PROXY_115, "istio-proxy"),
        ("NeverReady", None, None),
        ("CrashLoop", PROXY_115, "istio-proxy"),
        ("CrashLoop", None, "app"),
        ("SlowStart", PROXY_115, None),
    ],
)
def test_fault_targets(effect: str, proxy: str | None, target: str | None) -> None:
    specs = parse_faults([fault_object("f", effect=effect)])
    hit = pod_fault_effect(pod(proxy=proxy), {}, specs)
    assert hit is not None and hit.container == target


def test_never_ready_keeps_only_the_proxy_unready() -> None:
    fault = PodFault("f", "NeverReady", "istio-proxy")
    p = advanced(pod(proxy=PROXY_115), fault)
    assert stage_name(p, fault) == "pod-ready"
    p = advanced(p, fault)
    assert stage_name(p, fault) is None
    ready = {c["name"]: c["ready"] for c in p["status"]["containerStatuses"]}
    assert ready == {"app": True, "istio-proxy": False}
    assert condition(p, "Ready")["status"] == "False"
    assert condition(p, "Ready")["reason"] == "ContainersNotReady"
    assert condition(p, "Ready")["message"] == "containers with unready status: [istio-proxy]"


def test_never_ready_without_proxy_keeps_every_container_unready() -> None:
    fault = PodFault("f", "NeverReady", None)
    p = advanced(pod(), fault)
    assert stage_name(p, fault) is None
    assert condition(p, "Ready")["status"] == "False"


def test_crash_loop_crashes_restarts_and_counts() -> None:
    fault = PodFault("f", "CrashLoop", "istio-proxy")
    p = advanced(pod(proxy=PROXY_115), fault, at=1)
    for restarts in (1, 2, 3):
        assert stage_name(p, fault) == "pod-crash"
        p = advanced(p, fault, at=restarts * 10)
        proxy = p["status"]["containerStatuses"][1]
        assert proxy["restartCount"] == restarts
        assert proxy["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert proxy["lastState"]["terminated"]["exitCode"] == 1
        assert proxy["lastState"]["terminated"]["reason"] == "Error"
        assert condition(p, "Ready")["status"] == "False"
        assert stage_name(p, fault) == "pod-restart"
        before = proxy["containerID"]
        p = advanced(p, fault, at=restarts * 10 + 5)
        proxy = p["status"]["containerStatuses"][1]
        assert "running" in proxy["state"] and proxy["containerID"] != before


def test_crash_loop_without_restarts_leaves_the_container_terminated() -> None:
    fault = PodFault("f", "CrashLoop", "istio-proxy")
    p = advanced(pod(proxy=PROXY_115, owner="Job", restart="Never"), fault)
    assert stage_name(p, fault) == "pod-container-fail"
    p = advanced(p, fault)
    proxy = p["status"]["containerStatuses"][1]
    assert proxy["state"]["terminated"]["exitCode"] == 1
    assert proxy["restartCount"] == 0
    assert stage_name(p, fault) == "pod-ready"  # the app container still becomes ready
    p = advanced(p, fault)
    assert stage_name(p, fault) is None
    assert p["status"]["phase"] == "Running"
    assert condition(p, "Ready")["message"] == "containers with unready status: [istio-proxy]"


def test_crash_loop_pod_recovers_once_the_fault_is_gone() -> None:
    fault = PodFault("f", "CrashLoop", "app")
    crashed = advanced(advanced(pod(), fault), fault)
    restarted = advanced(crashed, None)
    assert stage_name(restarted) == "pod-ready"
    assert condition(advanced(restarted), "Ready")["status"] == "True"


@pytest.mark.parametrize("effect", ["NeverReady", "CrashLoop", "SlowStart"])
def test_a_pod_already_ready_is_left_alone_by_a_new_fault(effect: str) -> None:
    ready = advanced(advanced(pod(proxy=PROXY_115)))
    specs = parse_faults([fault_object("f", effect=effect)])
    assert stage_name(ready, pod_fault_effect(ready, {}, specs)) is None
