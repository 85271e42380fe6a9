"""The injection decision: the API server over real webhook shapes, and Istio's label precedence.

Webhook fixtures follow the upstream istio-discovery chart (a revision, the default revision and
a revision tag) and istio-operator v2's golden dump (an SMM control plane). Every precedence trap
listed in MISSION.md "Facts" has a test of its own, at both levels.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import injection
from meshcanary.mesh.injection import InjectionWebhook

REV = "istio.io/rev"
INJ = "istio-injection"
INJECT = "sidecar.istio.io/inject"


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        entry["values"] = list(values)
    return entry


def hook(name: str, service: str, ns: list[dict[str, Any]], obj: list[dict[str, Any]]) -> Any:
    namespace, _, svc = service.partition("/")
    return {
        "name": name,
        "clientConfig": {"service": {"name": svc, "namespace": namespace, "path": "/inject"}},
        "namespaceSelector": {"matchExpressions": ns},
        "objectSelector": {"matchExpressions": obj},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "resources": ["pods"]}],
        "failurePolicy": "Fail",
    }


def upstream_rev_hooks(value: str, service: str) -> list[dict[str, Any]]:
    """`rev.namespace.` and `rev.object.`, as the upstream chart renders them."""
    return [
        hook(
            "rev.namespace.sidecar-injector.istio.io",
            service,
            [expr(REV, "In", value), expr(INJ, "DoesNotExist")],
            [expr(INJECT, "NotIn", "false")],
        ),
        hook(
            "rev.object.sidecar-injector.istio.io",
            service,
            [expr(REV, "DoesNotExist"), expr(INJ, "DoesNotExist")],
            [expr(INJECT, "NotIn", "false"), expr(REV, "In", value)],
        ),
    ]


def default_hooks(service: str) -> list[dict[str, Any]]:
    """`namespace.` and `object.`: only the default revision (or the `default` tag) has them."""
    return [
        hook(
            "namespace.sidecar-injector.istio.io",
            service,
            [expr(INJ, "In", "enabled")],
            [expr(INJECT, "NotIn", "false")],
        ),
        hook(
            "object.sidecar-injector.istio.io",
            service,
            [expr(INJ, "DoesNotExist"), expr(REV, "DoesNotExist")],
            [expr(INJECT, "In", "true"), expr(REV, "DoesNotExist")],
        ),
    ]


def mwc(name: str, labels: dict[str, str], webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": labels},
        "webhooks": webhooks,
    }


CANARY = mwc(
    "istio-sidecar-injector-1-15-0",
    {REV: "1-15-0", "app": "sidecar-injector"},
    upstream_rev_hooks("1-15-0", "istio-system/istiod-1-15-0"),
)
DEFAULT = mwc(
    "istio-sidecar-injector",
    {REV: "default", "app": "sidecar-injector"},
    upstream_rev_hooks("default", "istio-system/istiod")
    + default_hooks("istio-system/istiod")
    + [{"name": "other.example.com", "clientConfig": {"url": "https://x"}}],
)
TAG = mwc(
    "istio-revision-tag-prod-stable",
    {REV: "1-15-0", "istio.io/tag": "prod-stable"},
    upstream_rev_hooks("prod-stable", "istio-system/istiod-1-15-0"),
)
SMM = mwc(
    "istio-sidecar-injector-cp-v115x-istio-system",
    {REV: "cp-v115x.istio-system"},
    [
        hook(
            "rev.namespace.sidecar-injector.istio.io",
            "istio-system/istiod-cp-v115x",
            [expr(REV, "In", "cp-v115x.istio-system"), expr(INJ, "DoesNotExist")],
            [expr(INJECT, "NotIn", "false")],
        ),
        hook(
            "rev.object.sidecar-injector.istio.io",
            "istio-system/istiod-cp-v115x",
            [expr(REV, "DoesNotExist"), expr(INJ, "DoesNotExist")],
            [expr(REV, "In", "cp-v115x.istio-system")],
        ),
    ],
)
UPSTREAM = injection.webhooks_from_configurations([CANARY, DEFAULT])
ALL = injection.webhooks_from_configurations([CANARY, DEFAULT, TAG, SMM])


def revisions_for(
    webhooks: list[InjectionWebhook], ns: dict[str, str] | None, pod: dict[str, str] | None
) -> list[str]:
    return [w.revision for w in injection.injecting_webhooks(webhooks, ns, pod)]


# -- reading webhook configurations ----------------------------------------------------------------


def test_revision_webhooks_are_read() -> None:
    found = injection.webhooks_from_configuration(CANARY)
    assert [(w.configuration, w.name, w.revision, w.service, w.tag) for w in found] == [
        (
            "istio-sidecar-injector-1-15-0",
            "rev.namespace.sidecar-injector.istio.io",
            "1-15-0",
            "istio-system/istiod-1-15-0",
            None,
        ),
        (
            "istio-sidecar-injector-1-15-0",
            "rev.object.sidecar-injector.istio.io",
            "1-15-0",
            "istio-system/istiod-1-15-0",
            None,
        ),
    ]


def test_default_revision_webhooks_all_belong_to_default_and_others_are_skipped() -> None:
    found = injection.webhooks_from_configuration(DEFAULT)
    assert [w.name.split(".")[0] for w in found] == ["rev", "rev", "namespace", "object"]
    assert {w.revision for w in found} == {"default"}


def test_tag_webhooks_name_the_revision_they_forward_to() -> None:
    found = injection.webhooks_from_configuration(TAG)
    assert {(w.revision, w.tag) for w in found} == {("1-15-0", "prod-stable")}


def test_smm_webhooks() -> None:
    found = injection.webhooks_from_configuration(SMM)
    assert {w.revision for w in found} == {"cp-v115x.istio-system"}
    assert {w.service for w in found} == {"istio-system/istiod-cp-v115x"}


def test_revision_falls_back_to_configuration_label_then_default() -> None:
    bare = {"name": "sidecar-injector.istio.io", "clientConfig": {"url": "https://istiod:15017"}}
    labelled = injection.webhooks_from_configuration(mwc("old", {REV: "1-8"}, [bare]))
    assert [(w.revision, w.service, w.namespace_selector) for w in labelled] == [
        ("1-8", None, None)
    ]
    unlabelled = injection.webhooks_from_configuration(
        {"metadata": {"name": "x"}, "webhooks": [bare]}
    )
    assert [w.revision for w in unlabelled] == ["default"]


def test_revision_from_match_labels() -> None:
    webhook = {
        "name": "sidecar-injector.istio.io",
        "namespaceSelector": {"matchLabels": {REV: "r"}},
    }
    assert [w.revision for w in injection.webhooks_from_configuration(mwc("x", {}, [webhook]))] == [
        "r"
    ]


def test_configuration_without_webhooks() -> None:
    assert injection.webhooks_from_configuration({"metadata": {"name": "empty"}}) == []


@pytest.mark.parametrize(
    ("name", "istio"),
    [
        ("sidecar-injector.istio.io", True),
        ("rev.namespace.sidecar-injector.istio.io", True),
        ("rev.validation.istio.io", False),
        ("notsidecar-injector.istio.io", False),
    ],
)
def test_is_injection_webhook(name: str, istio: bool) -> None:
    assert injection.is_injection_webhook(name) is istio


def test_webhooks_are_hashable_values() -> None:
    assert len(set(ALL)) == len(ALL)


# -- the API server's decision: the traps from MISSION.md "Facts" ----------------------------


def test_namespace_rev_label_injects_that_revision() -> None:
    assert revisions_for(UPSTREAM, {REV: "1-15-0"}, {"app": "web"}) == ["1-15-0"]
    assert revisions_for(ALL, {REV: "cp-v115x.istio-system"}, {}) == ["cp-v115x.istio-system"]


def test_istio_injection_enabled_beats_istio_io_rev() -> None:
    assert revisions_for(UPSTREAM, {INJ: "enabled", REV: "1-15-0"}, {}) == ["default"]


def test_both_labels_without_a_default_revision_inject_nothing() -> None:
    canary_only = injection.webhooks_from_configuration(CANARY)
    assert revisions_for(canary_only, {INJ: "enabled", REV: "1-15-0"}, {}) == []


def test_namespace_label_beats_pod_label() -> None:
    assert revisions_for(UPSTREAM, {REV: "default"}, {REV: "1-15-0"}) == ["default"]
    assert revisions_for(ALL, {REV: "1-15-0"}, {REV: "cp-v115x.istio-system"}) == ["1-15-0"]


def test_injection_disabled_plus_pod_rev_injects_nothing() -> None:
    assert revisions_for(ALL, {INJ: "disabled"}, {REV: "1-15-0"}) == []
    assert revisions_for(ALL, {INJ: "disabled"}, {INJECT: "true"}) == []


def test_pod_rev_label_in_an_unlabelled_namespace() -> None:
    assert revisions_for(UPSTREAM, {}, {REV: "1-15-0"}) == ["1-15-0"]
    assert revisions_for(ALL, None, {REV: "cp-v115x.istio-system"}) == ["cp-v115x.istio-system"]


def test_pod_inject_true_selects_the_default_revision_only_without_rev() -> None:
    assert revisions_for(UPSTREAM, {}, {INJECT: "true"}) == ["default"]
    assert revisions_for(UPSTREAM, {}, {INJECT: "true", REV: "1-15-0"}) == ["1-15-0"]


def test_pod_inject_false_opts_out() -> None:
    assert revisions_for(UPSTREAM, {REV: "1-15-0"}, {INJECT: "false"}) == []
    assert revisions_for(UPSTREAM, {INJ: "enabled"}, {INJECT: "false"}) == []


def test_smm_object_webhook_lets_inject_false_through_to_istiod() -> None:
    smm = injection.webhooks_from_configuration(SMM)
    called = injection.injecting_webhooks(smm, {}, {REV: "cp-v115x.istio-system", INJECT: "false"})
    assert [w.name for w in called] == ["rev.object.sidecar-injector.istio.io"]
    assert (
        injection.pod_selection({}, {REV: "cp-v115x.istio-system", INJECT: "false"}).revision
        is None
    )


def test_unlabelled_namespace_and_pod_get_nothing() -> None:
    assert revisions_for(ALL, {}, {}) == []
    assert revisions_for(ALL, {"team": "a"}, {"app": "web"}) == []


def test_a_label_naming_a_missing_revision_gets_nothing() -> None:
    assert revisions_for(ALL, {REV: "1-99-0"}, {}) == []


def test_a_tag_injects_its_revision() -> None:
    called = injection.injecting_webhooks(ALL, {REV: "prod-stable"}, {})
    assert [(w.revision, w.tag, w.configuration) for w in called] == [
        ("1-15-0", "prod-stable", "istio-revision-tag-prod-stable")
    ]


def test_overlapping_webhooks_inject_twice_ist0139() -> None:
    duplicate = mwc(
        "istio-sidecar-injector-copy",
        {REV: "1-15-0"},
        upstream_rev_hooks("1-15-0", "istio-system/istiod-1-15-0"),
    )
    webhooks = injection.webhooks_from_configurations([CANARY, duplicate])
    called = injection.injecting_webhooks(webhooks, {REV: "1-15-0"}, {})
    assert len(called) == 2
    assert injection.injecting_revisions(webhooks, {REV: "1-15-0"}, {}) == ["1-15-0"]


def test_default_tag_and_default_revision_overlap() -> None:
    default_tag = mwc(
        "istio-revision-tag-default",
        {REV: "1-15-0", "istio.io/tag": "default"},
        upstream_rev_hooks("default", "istio-system/istiod-1-15-0")
        + default_hooks("istio-system/istiod-1-15-0"),
    )
    webhooks = injection.webhooks_from_configurations([DEFAULT, default_tag])
    assert injection.injecting_revisions(webhooks, {INJ: "enabled"}, {}) == ["1-15-0", "default"]


# -- the label-level view -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "revision", "conflict", "reason"),
    [
        (None, None, False, "no injection label"),
        ({}, None, False, "no injection label"),
        ({REV: "1-15-0"}, "1-15-0", False, "istio.io/rev=1-15-0"),
        ({INJ: "enabled"}, "default", False, "selects the default revision"),
        ({INJ: "enabled", REV: "1-15-0"}, "default", True, "istio.io/rev=1-15-0 is ignored"),
        ({INJ: "disabled"}, None, False, "istio-injection=disabled"),
        ({INJ: "disabled", REV: "1-15-0"}, None, True, "IST0123"),
        ({INJ: "true"}, None, False, "neither enabled nor disabled"),
        ({INJ: "", REV: "x"}, None, True, "neither enabled nor disabled"),
    ],
)
def test_namespace_selection(
    labels: dict[str, str] | None, revision: str | None, conflict: bool, reason: str
) -> None:
    selection = injection.namespace_selection(labels)
    assert (selection.revision, selection.conflict) == (revision, conflict)
    assert reason in selection.reason


@pytest.mark.parametrize(
    ("ns", "pod", "revision"),
    [
        ({REV: "a"}, {}, "a"),
        ({REV: "a"}, {REV: "b"}, "a"),  # namespace label beats pod label
        ({INJ: "enabled", REV: "a"}, {}, "default"),  # enabled beats rev
        ({INJ: "disabled"}, {REV: "b"}, None),  # disabled + pod rev: nothing
        ({INJ: "disabled"}, {INJECT: "true"}, None),
        ({}, {REV: "b"}, "b"),
        ({}, {INJECT: "true"}, "default"),
        ({}, {INJECT: "true", REV: "b"}, "b"),
        ({REV: "a"}, {INJECT: "false"}, None),
        ({}, {REV: "b", INJECT: "false"}, None),
        ({}, {}, None),
        (None, None, None),
    ],
)
def test_pod_selection(
    ns: dict[str, str] | None, pod: dict[str, str] | None, revision: str | None
) -> None:
    selection = injection.pod_selection(ns, pod)
    assert selection.revision == revision
    assert selection.namespace == injection.namespace_selection(ns)
    assert selection.reason


# -- both views agree over the standard upstream webhooks ----------------------------------------

NS_LABELS = st.fixed_dictionaries(
    {},
    optional={
        INJ: st.sampled_from(["enabled", "disabled", "true"]),
        REV: st.sampled_from(["1-15-0", "default"]),
        "team": st.just("a"),
    },
)
POD_LABELS = st.fixed_dictionaries(
    {},
    optional={
        INJECT: st.sampled_from(["true", "false"]),
        REV: st.sampled_from(["1-15-0", "default"]),
        "app": st.just("web"),
    },
)


@given(NS_LABELS, POD_LABELS)
def test_label_view_agrees_with_upstream_webhooks(ns: dict[str, str], pod: dict[str, str]) -> None:
    called = injection.injecting_webhooks(UPSTREAM, ns, pod)
    assert len(called) <= 1, "the upstream chart never double-injects"
    expected = injection.pod_selection(ns, pod).revision
    assert [w.revision for w in called] == ([expected] if expected else [])
