"""Status computation: Reconciling / Available / ReconcileFailed, counts, overlaps, transitions."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.controlplane.cases import MINIMAL

from meshcanary.controlplane import render, spec, status
from meshcanary.controlplane.status import Observed, State
from meshcanary.mesh import selectors

REV = "cp-v113x.istio-system"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def resource(**spec_fields: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MINIMAL)
    obj["metadata"]["generation"] = 3
    obj["spec"].update(spec_fields)
    return obj


def istiod(
    *,
    replicas: int = 1,
    generation: int = 2,
    observed: int = 2,
    updated: int = 1,
    current: int = 1,
    available: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "istiod-cp-v113x",
            "namespace": "istio-system",
            "generation": generation,
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": current,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


def gateway(
    ingress: list[dict[str, str]] | None = None, age: timedelta = timedelta()
) -> dict[str, Any]:
    created = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": "istio-meshexpansion-cp-v113x", "creationTimestamp": created},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": ingress} if ingress else {}},
    }


def pod(
    name: str,
    revision: str | None = REV,
    phase: str = "Running",
    via_status: bool = False,
    proxy: bool = True,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if revision and via_status:
        annotations["sidecar.istio.io/status"] = json.dumps({"revision": revision})
    elif revision:
        annotations["istio.io/rev"] = revision
    containers = [{"name": "app", "image": "nginx"}]
    if proxy:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.13.9"})
    return {
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations},
        "spec": {"containers": containers},
        "status": {"phase": phase},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def compute(obj: dict[str, Any] | None = None, **observed: Any) -> status.Result:
    observed.setdefault("istiod", istiod())
    observed.setdefault("now", NOW)
    return status.compute_status(obj or resource(), Observed(**observed))


def test_available_when_istiod_is_available() -> None:
    result = compute()
    assert result.status == {
        "status": "Available",
        "errorMessage": "",
        "gatewayAddress": None,
        "proxies": 0,
        "namespaces": [],
        "observedGeneration": 3,
        "revision": REV,
        "version": "1.13.9",
    }


# -- istiod ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (None, "istiod Deployment istio-system/istiod-cp-v113x does not exist yet"),
        (
            istiod(generation=3, observed=2),
            "istiod Deployment istio-system/istiod-cp-v113x is being updated",
        ),
        (istiod(updated=0, current=1), "rollout in progress: 0 of 1 replicas updated"),
        (istiod(replicas=2, updated=2, current=3), "rollout in progress: 2 of 2 replicas updated"),
        (
            istiod(available=0),
            "waiting for istiod istio-system/istiod-cp-v113x: 0 of 1 replicas available",
        ),
    ],
)
def test_reconciling_until_istiod_is_really_available(
    deployment: dict[str, Any] | None, message: str
) -> None:
    result = compute(istiod=deployment)
    assert result.status["status"] == "Reconciling"
    assert message in result.status["errorMessage"]


def test_available_with_one_of_several_replicas_available() -> None:
    assert (
        compute(istiod=istiod(replicas=3, updated=3, current=3, available=1)).status["status"]
        == "Available"
    )


def test_zero_replicas_is_a_failure_that_says_why() -> None:
    result = compute(istiod=istiod(replicas=0, updated=0, current=0, available=0))
    assert result.status["status"] == "ReconcileFailed"
    assert "scaled to 0 replicas" in result.status["errorMessage"]
    assert REV in result.status["errorMessage"]


def test_a_stalled_rollout_fails() -> None:
    stalled = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "istiod-cp-v113x-5d" has timed out progressing.',
    }
    result = compute(istiod=istiod(available=0, conditions=[stalled]))
    assert result.status["status"] == "ReconcileFailed"
    assert "progress deadline" in result.status["errorMessage"]
    assert "timed out progressing" in result.status["errorMessage"]


# -- failures -------------------------------------------------------------------------------------


def test_an_unsupported_version_fails_and_still_counts_proxies() -> None:
    obj = resource(version="1.12.0")
    result = compute(obj, pods=[pod("a")], namespaces=[namespace("demo", **{"istio.io/rev": REV})])
    assert result.status["status"] == "ReconcileFailed"
    assert result.status["errorMessage"] == (
        "spec.version: Istio 1.12.0 is not supported (supported: 1.13-1.30)"
    )
    assert result.status["proxies"] == 1
    assert result.status["namespaces"] == ["demo"]
    assert result.status["version"] == "1.12.0"
    assert result.status["revision"] == REV


def test_an_apply_error_fails() -> None:
    result = compute(apply_error="Deployment istiod-cp-v113x: forbidden")
    assert result.status["status"] == "ReconcileFailed"
    assert result.status["errorMessage"] == "Deployment istiod-cp-v113x: forbidden"


# -- mesh expansion gateway -----------------------------------------------------------------------


def test_gateway_address_from_the_load_balancer() -> None:
    ingress = [{"ip": "3.122.28.53"}, {"ip": "3.122.43.249"}, {"hostname": "gw.example.com"}]
    result = compute(resource(meshExpansion={"enabled": True}), gateway_service=gateway(ingress))
    assert result.status["status"] == "Available"
    assert result.status["gatewayAddress"] == ["3.122.28.53", "3.122.43.249", "gw.example.com"]


def test_a_pending_gateway_address_is_reconciling_at_first() -> None:
    result = compute(resource(meshExpansion={"enabled": True}), gateway_service=gateway())
    assert result.status["status"] == "Reconciling"
    assert result.status["errorMessage"] == "expansion gateway address is pending"


def test_a_gateway_address_pending_too_long_fails() -> None:
    late = gateway(age=status.GATEWAY_PENDING_TIMEOUT + timedelta(minutes=1))
    result = compute(resource(meshExpansion={"enabled": True}), gateway_service=late)
    assert result.status["status"] == "ReconcileFailed"
    assert result.status["errorMessage"].startswith("expansion gateway address is pending: ")
    assert "in 6m" in result.status["errorMessage"]


def test_without_a_clock_a_pending_address_never_times_out() -> None:
    late = gateway(age=timedelta(days=1))
    result = compute(resource(meshExpansion={"enabled": True}), gateway_service=late, now=None)
    assert result.status["status"] == "Reconciling"


def test_a_missing_gateway_service_is_reconciling() -> None:
    result = compute(resource(meshExpansion={"enabled": True}))
    assert result.status["status"] == "Reconciling"
    assert "expansion gateway Service" in result.status["errorMessage"]


def test_istiod_comes_before_the_gateway() -> None:
    result = compute(
        resource(meshExpansion={"enabled": True}),
        istiod=istiod(available=0),
        gateway_service=gateway([{"ip": "1.2.3.4"}]),
    )
    assert result.status["status"] == "Reconciling"
    assert "istiod" in result.status["errorMessage"]
    assert result.status["gatewayAddress"] == ["1.2.3.4"]


# -- proxies and namespaces -----------------------------------------------------------------------


def test_proxies_are_live_pods_injected_by_this_revision() -> None:
    pods = [
        pod("annotated"),
        pod("status-only", via_status=True),
        pod("pending", phase="Pending"),
        pod("completed", phase="Succeeded"),
        pod("failed", phase="Failed"),
        pod("other", revision="cp-v115x.istio-system"),
        pod("no-sidecar", proxy=False),
        pod("unknown", revision=None),
    ]
    assert compute(pods=pods).status["proxies"] == 3


def test_namespaces_that_select_this_revision() -> None:
    namespaces = [
        namespace("b", **{"istio.io/rev": REV}),
        namespace("a", **{"istio.io/rev": REV}),
        namespace("legacy-wins", **{"istio.io/rev": REV, "istio-injection": "enabled"}),
        namespace("other", **{"istio.io/rev": "cp-v115x.istio-system"}),
        namespace("plain"),
    ]
    assert compute(namespaces=namespaces).status["namespaces"] == ["a", "b"]


# -- webhook overlap ------------------------------------------------------------------------------


def configuration(name: str, *webhooks: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "webhooks": list(webhooks)}


def webhook(
    name: str,
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    service: str = "istiod-old",
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": name,
        "clientConfig": {"service": {"name": service, "namespace": "istio-system"}},
    }
    if namespace_selector is not None:
        hook["namespaceSelector"] = namespace_selector
    if object_selector is not None:
        hook["objectSelector"] = object_selector
    return hook


def expressions(*items: tuple[str, str, list[str] | None]) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": k, "operator": op, **({"values": v} if v is not None else {})}
            for k, op, v in items
        ]
    }


def rendered_webhooks(name: str, namespace_: str = "istio-system") -> dict[str, Any]:
    cp = spec.parse(
        {"metadata": {"name": name, "namespace": namespace_}, "spec": {"version": "1.15.3"}}
    )
    return render.injection_webhooks(cp)


UPSTREAM_DEFAULT = configuration(
    "istio-sidecar-injector",
    webhook(
        "namespace.sidecar-injector.istio.io",
        expressions(("istio-injection", "In", ["enabled"])),
        expressions(("sidecar.istio.io/inject", "NotIn", ["false"])),
        service="istiod",
    ),
    webhook(
        "object.sidecar-injector.istio.io",
        expressions(
            ("istio-injection", "DoesNotExist", None), ("istio.io/rev", "DoesNotExist", None)
        ),
        expressions(
            ("sidecar.istio.io/inject", "In", ["true"]), ("istio.io/rev", "DoesNotExist", None)
        ),
        service="istiod",
    ),
)
UPSTREAM_REVISION = configuration(
    "istio-sidecar-injector-1-15-0",
    webhook(
        "rev.namespace.sidecar-injector.istio.io",
        expressions(("istio.io/rev", "In", ["1-15-0"]), ("istio-injection", "DoesNotExist", None)),
        expressions(("sidecar.istio.io/inject", "NotIn", ["false"])),
        service="istiod-1-15-0",
    ),
)


@pytest.mark.parametrize(
    "others",
    [
        [],
        [rendered_webhooks("cp-v115x")],
        [rendered_webhooks("cp-v113x", "other-ns")],
        [UPSTREAM_DEFAULT, UPSTREAM_REVISION],
        [rendered_webhooks("cp-v113x")],  # our own configuration, already applied
        [configuration("vault-agent", webhook("vault.hashicorp.com"))],  # not Istio's
    ],
)
def test_no_overlap(others: list[dict[str, Any]]) -> None:
    result = compute(webhook_configurations=others)
    assert result.status["status"] == "Available", result.status["errorMessage"]


def test_a_legacy_webhook_selecting_our_revision_overlaps() -> None:
    """An older install whose webhook selects `istio.io/rev` but ignores `istio-injection`."""
    legacy = configuration(
        "istio-sidecar-injector-legacy",
        webhook("sidecar-injector.istio.io", expressions(("istio.io/rev", "In", [REV]))),
    )
    result = compute(webhook_configurations=[legacy])
    assert result.status["status"] == "ReconcileFailed"
    assert result.status["errorMessage"] == (
        "injection webhook rev.namespace.sidecar-injector.istio.io overlaps "
        "sidecar-injector.istio.io of MutatingWebhookConfiguration istio-sidecar-injector-legacy "
        f"(revision {REV}): pods would be injected twice (IST0139)"
    )


def test_a_selectorless_injection_webhook_overlaps_both_of_ours() -> None:
    everything = configuration("istio-sidecar-injector", webhook("sidecar-injector.istio.io"))
    cp = spec.parse(MINIMAL)
    found = status.overlaps(cp, [everything])
    assert [o.ours.name for o in found] == [
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
    ]


def test_a_copy_of_our_webhooks_calling_another_istiod_overlaps() -> None:
    copied = copy.deepcopy(rendered_webhooks("cp-v113x"))
    copied["metadata"]["name"] = "leftover"
    for hook in copied["webhooks"]:
        hook["clientConfig"]["service"]["name"] = "istiod-gone"
    assert len(status.overlaps(spec.parse(MINIMAL), [copied])) == 2


def test_a_webhook_calling_our_own_istiod_is_not_another_revision() -> None:
    copied = copy.deepcopy(rendered_webhooks("cp-v113x"))
    copied["metadata"]["name"] = "duplicate"
    assert status.overlaps(spec.parse(MINIMAL), [copied]) == []


def test_invalid_selectors_are_ignored() -> None:
    broken = configuration(
        "broken",
        webhook(
            "sidecar-injector.istio.io", {"matchExpressions": [{"key": "a", "operator": "Maybe"}]}
        ),
    )
    assert status.overlaps(spec.parse(MINIMAL), [broken]) == []


KEYS = ("a", "b")
VALUES = ("x", "y", "z")
requirement: st.SearchStrategy[tuple[str, str, set[str]]] = st.one_of(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(["In", "NotIn"]),
        st.sets(st.sampled_from(VALUES), min_size=1),
    ),
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["Exists", "DoesNotExist"]), st.just(set())),
)
selector = st.lists(requirement, max_size=4).map(
    lambda items: {
        "matchExpressions": [
            {"key": k, "operator": op, **({"values": sorted(v)} if v else {})} for k, op, v in items
        ]
    }
)


def label_sets() -> list[dict[str, str]]:
    """Every label set over KEYS that matters: absent, each value, and one value outside."""
    choices = [None, *VALUES, "other"]
    return [
        {k: v for k, v in zip(KEYS, combo, strict=True) if v is not None}
        for combo in itertools.product(choices, repeat=len(KEYS))
    ]


@given(selector, selector)
def test_selectors_intersect_exactly_when_some_labels_match_both(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    brute = any(
        selectors.matches(a, labels) and selectors.matches(b, labels) for labels in label_sets()
    )
    assert status.selectors_intersect(a, b) is brute


def test_none_selectors_intersect_with_anything_satisfiable() -> None:
    assert status.selectors_intersect(None, None)
    assert status.selectors_intersect(None, expressions(("a", "In", ["x"])))
    assert not status.selectors_intersect(
        expressions(("a", "Exists", None)), expressions(("a", "DoesNotExist", None))
    )
    assert status.selectors_intersect(
        {"matchLabels": {"a": "x"}}, expressions(("a", "NotIn", ["y"]))
    )


# -- transitions ----------------------------------------------------------------------------------


def test_first_status_is_a_transition() -> None:
    (transition,) = compute(istiod=None).transitions
    assert transition == status.Transition(
        type="Normal",
        reason="Reconciling",
        message="istiod Deployment istio-system/istiod-cp-v113x does not exist yet",
        previous=None,
    )


def test_becoming_available_is_a_normal_event() -> None:
    obj = resource()
    obj["status"] = {"status": "Reconciling", "errorMessage": "waiting"}
    (transition,) = compute(obj, pods=[pod("a"), pod("b")]).transitions
    assert transition.type == "Normal"
    assert transition.reason == "Available"
    assert transition.previous == "Reconciling"
    assert transition.message == f"revision {REV} (Istio 1.13.9) is available, serving 2 proxies"


def test_failing_is_a_warning_event() -> None:
    obj = resource()
    obj["status"] = compute().status
    (transition,) = compute(obj, apply_error="boom").transitions
    assert (transition.type, transition.reason, transition.message) == (
        "Warning",
        "ReconcileFailed",
        "boom",
    )
    assert transition.previous == "Available"


def test_a_new_failure_message_is_a_new_event_but_the_same_one_is_not() -> None:
    obj = resource()
    obj["status"] = compute(apply_error="first").status
    assert compute(obj, apply_error="first").transitions == ()
    assert [t.message for t in compute(obj, apply_error="second").transitions] == ["second"]


def test_staying_available_is_not_an_event() -> None:
    obj = resource()
    obj["status"] = compute().status
    assert compute(obj, pods=[pod("new")]).transitions == ()


def test_states_match_the_crd_enum() -> None:
    from meshcanary.controlplane import crd

    assert [s.value for s in State] == list(crd.STATUSES)
