"""The inventory views: every column, Istio's precedence against its documented table, MISSING
revisions, finished pods, and revisions installed by other means (istioctl/Helm) with tags."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcanary.mesh import inventory

ISTIO = "istio-system"
CP_A = "cp-a.istio-system"
CP_B = "cp-b.istio-system"
CANARY = "canary"

# -- builders -------------------------------------------------------------------------------------

NOT_OPTED_OUT = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
NO_LEGACY = {"key": "istio-injection", "operator": "DoesNotExist"}
NO_REV = {"key": "istio.io/rev", "operator": "DoesNotExist"}


def rev_webhooks(value: str, service: str) -> list[dict[str, Any]]:
    """`rev.namespace` and `rev.object`, selecting `istio.io/rev=value` (revision or tag)."""
    client = {"service": {"name": service, "namespace": ISTIO}}
    selected = {"key": "istio.io/rev", "operator": "In", "values": [value]}
    return [
        {
            "name": "rev.namespace.sidecar-injector.istio.io",
            "clientConfig": client,
            "namespaceSelector": {"matchExpressions": [selected, NO_LEGACY]},
            "objectSelector": {"matchExpressions": [NOT_OPTED_OUT]},
        },
        {
            "name": "rev.object.sidecar-injector.istio.io",
            "clientConfig": client,
            "namespaceSelector": {"matchExpressions": [NO_REV, NO_LEGACY]},
            "objectSelector": {"matchExpressions": [NOT_OPTED_OUT, selected]},
        },
    ]


def default_webhooks(service: str) -> list[dict[str, Any]]:
    """The default revision's `namespace.` and `object.` webhooks (upstream's default tag)."""
    client = {"service": {"name": service, "namespace": ISTIO}}
    return [
        {
            "name": "namespace.sidecar-injector.istio.io",
            "clientConfig": client,
            "namespaceSelector": {"matchLabels": {"istio-injection": "enabled"}},
            "objectSelector": {"matchExpressions": [NOT_OPTED_OUT]},
        },
        {
            "name": "object.sidecar-injector.istio.io",
            "clientConfig": client,
            "namespaceSelector": {"matchExpressions": [NO_REV, NO_LEGACY]},
            "objectSelector": {
                "matchExpressions": [
                    {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
                    NO_REV,
                ]
            },
        },
    ]


def mwc(
    name: str, rev: str, webhooks: list[dict[str, Any]], tag: str | None = None
) -> dict[str, Any]:
    labels = {"istio.io/rev": rev, **({"istio.io/tag": tag} if tag else {})}
    return {"metadata": {"name": name, "labels": labels}, "webhooks": webhooks}


def smm_mwc(cp: str) -> dict[str, Any]:
    return mwc(
        f"istio-sidecar-injector-{cp}-{ISTIO}",
        f"{cp}.{ISTIO}",
        rev_webhooks(f"{cp}.{ISTIO}", f"istiod-{cp}"),
    )


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {k.replace("_", "-"): v for k, v in labels.items()}}
    }


def ns(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}}


def pod(
    name: str,
    namespace_name: str,
    revision: str | None = None,
    version: str = "1.13.9",
    *,
    phase: str = "Running",
    ready: bool = True,
    owner: tuple[str, str] | None = ("ReplicaSet", "web-5d4f8"),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    status_only: bool = False,
) -> dict[str, Any]:
    """A pod; with `revision`, as the injector leaves it (annotation, status, istio-proxy)."""
    notes = dict(annotations or {})
    containers: list[dict[str, Any]] = [{"name": "app", "image": "nginx:1.27"}]
    if revision is not None:
        if not status_only:
            notes["istio.io/rev"] = revision
        notes["sidecar.istio.io/status"] = json.dumps({"revision": revision})
        containers.append({"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{version}"})
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace_name,
        "labels": {"pod-template-hash": "5d4f8", **(labels or {})},
        "annotations": notes,
    }
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": meta,
        "spec": {"containers": containers},
        "status": {"phase": phase, "conditions": [condition]},
    }


def istiod(name: str, version: str, rev: str | None = None, available: int = 1) -> dict[str, Any]:
    labels = {"app": "istiod", **({"istio.io/rev": rev} if rev else {})}
    return {
        "metadata": {"name": name, "namespace": ISTIO, "labels": labels},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "discovery", "image": f"docker.io/istio/pilot:{version}"}
                    ]
                }
            }
        },
        "status": {"availableReplicas": available},
    }


def icp(name: str, version: str, status: str | None = "Available") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ISTIO},
        "spec": {"version": version},
        "status": {"status": status} if status else {},
    }


# The mesh of most tests: two SMM revisions (cp-a, cp-b), an upstream revision `canary`, the
# `default` tag pointing at canary, and the `prod` tag pointing at cp-b.
WEBHOOKS = [
    smm_mwc("cp-a"),
    smm_mwc("cp-b"),
    mwc("istio-sidecar-injector-canary", CANARY, rev_webhooks(CANARY, "istiod-canary")),
    mwc(
        "istio-revision-tag-default",
        CANARY,
        rev_webhooks("default", "istiod-canary") + default_webhooks("istiod-canary"),
        tag="default",
    ),
    mwc("istio-revision-tag-prod", CP_B, rev_webhooks("prod", "istiod-cp-b"), tag="prod"),
]


def snapshot(**parts: Any) -> inventory.MeshSnapshot:
    parts.setdefault("webhook_configurations", WEBHOOKS)
    return inventory.MeshSnapshot(**parts)


# -- precedence -----------------------------------------------------------------------------------

INJECTION = st.sampled_from([None, "enabled", "disabled", "garbage"])
REVISION = st.sampled_from([None, CP_A, CP_B, CANARY, "prod", "default", "gone.istio-system", "x"])
TAGS = {"prod": CP_B, "default": CANARY}


def documented(injection: str | None, rev: str | None) -> str | None:
    """Istio's documented behaviour (istio/istio manifests/charts/.../mutatingwebhook.yaml):
    `istio-injection=enabled` selects the default revision and beats `istio.io/rev`; any other
    `istio-injection` value selects nothing; otherwise `istio.io/rev` selects its revision, a
    tag resolves to the revision it points to, and a value with no webhook is MISSING."""
    if injection == "enabled":
        return CANARY
    if injection is not None or rev is None:
        return None
    if rev in (CP_A, CP_B, CANARY):
        return rev
    return TAGS.get(rev, f"MISSING/{rev}")


@given(injection=INJECTION, rev=REVISION)
def test_namespace_revision_follows_istio_precedence(
    injection: str | None, rev: str | None
) -> None:
    labels = {
        key: value
        for key, value in (("istio-injection", injection), ("istio.io/rev", rev))
        if value is not None
    }
    rows = inventory.namespaces(snapshot(namespaces=[ns("n", labels)]))
    assert rows[0].revision == documented(injection, rev)
    assert rows[0].conflict == (injection is not None and rev is not None)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, None),
        ({"istio.io/rev": CP_A}, CP_A),
        ({"istio-injection": "enabled"}, CANARY),
        ({"istio-injection": "enabled", "istio.io/rev": CP_A}, CANARY),
        ({"istio-injection": "disabled", "istio.io/rev": CP_A}, None),
        ({"istio.io/rev": "prod"}, CP_B),
        ({"istio.io/rev": "cp-z.istio-system"}, "MISSING/cp-z.istio-system"),
    ],
)
def test_documented_table(labels: dict[str, str], expected: str | None) -> None:
    rows = inventory.namespaces(snapshot(namespaces=[ns("n", labels)]))
    assert rows[0].revision == expected


def test_injection_enabled_without_a_default_revision_is_missing() -> None:
    only_smm = [smm_mwc("cp-a")]
    rows = inventory.namespaces(
        inventory.MeshSnapshot(
            webhook_configurations=only_smm, namespaces=[ns("n", {"istio-injection": "enabled"})]
        )
    )
    assert rows[0].revision == "MISSING/default"
    assert "no injection webhook" in rows[0].reason


def test_two_revisions_injecting_one_namespace_are_both_shown() -> None:
    twice = [smm_mwc("cp-a"), mwc("dup", CP_B, rev_webhooks(CP_A, "istiod-cp-b"), tag="stale")]
    rows = inventory.namespaces(
        inventory.MeshSnapshot(
            webhook_configurations=twice, namespaces=[ns("n", {"istio.io/rev": CP_A})]
        )
    )
    assert rows[0].revision == f"{CP_A},{CP_B}"
    assert "IST0139" in rows[0].reason


# -- namespaces: every column ---------------------------------------------------------------------


def test_namespace_columns() -> None:
    pods = [
        pod("a1", "shop", CP_A, "1.13.9"),
        pod("a2", "shop", CP_A, "1.13.8"),
        pod("b1", "shop", CP_B, "1.15.3"),
        pod("plain", "shop"),
        pod("optout", "shop", labels={"sidecar.istio.io/inject": "false"}),
        pod("done", "shop", CP_A, phase="Succeeded"),
        pod("failed", "shop", phase="Failed"),
    ]
    rows = inventory.namespaces(
        snapshot(namespaces=[ns("shop", {"istio.io/rev": CP_B})], pods=pods)
    )
    (row,) = rows
    assert row.namespace == "shop"
    assert row.revision == CP_B
    assert row.pod_revisions == [
        inventory.RevisionCount(CP_A, 2, ["1.13.8", "1.13.9"]),
        inventory.RevisionCount(CP_B, 1, ["1.15.3"]),
    ]
    assert row.needs_restart == 3  # a1, a2 on cp-a; `plain` has no sidecar; optout declines
    assert row.without_sidecar == 2
    assert row.live_pods == 5


def test_nothing_needs_restart_when_nothing_or_a_missing_revision_is_selected() -> None:
    pods = [pod("a", "off", CP_A), pod("b", "off"), pod("c", "ghost", CP_A), pod("d", "ghost")]
    namespaces = [ns("off"), ns("ghost", {"istio.io/rev": "cp-z.istio-system"})]
    rows = {
        r.namespace: r for r in inventory.namespaces(snapshot(namespaces=namespaces, pods=pods))
    }
    assert rows["off"].needs_restart == 0 and rows["off"].revision is None
    assert rows["ghost"].needs_restart == 0
    assert rows["ghost"].revision == "MISSING/cp-z.istio-system"


def test_pod_revision_from_the_status_annotation_when_the_rev_annotation_is_absent() -> None:
    pods = [pod("a", "shop", CANARY, "1.20.1", status_only=True)]
    rows = inventory.namespaces(
        snapshot(namespaces=[ns("shop", {"istio.io/rev": "default"})], pods=pods)
    )
    assert rows[0].revision == CANARY
    assert rows[0].pod_revisions == [inventory.RevisionCount(CANARY, 1, ["1.20.1"])]
    assert rows[0].needs_restart == 0


def test_namespace_filter_and_order() -> None:
    namespaces = [ns("b"), ns("a"), ns("c")]
    rows = inventory.namespaces(snapshot(namespaces=namespaces), ["c", "a"])
    assert [r.namespace for r in rows] == ["a", "c"]


# -- control planes -------------------------------------------------------------------------------


def test_control_planes_of_every_origin() -> None:
    snap = snapshot(
        control_planes=[icp("cp-a", "1.13.9"), icp("cp-b", "1.15.3", status=None)],
        istiods=[
            istiod("istiod-cp-a", "1.13.9", CP_A),
            istiod("istiod-cp-b", "1.15.3", CP_B),
            istiod("istiod-canary", "1.20.1", available=0),
            istiod("istiod", "1.19.0"),
        ],
        namespaces=[
            ns("shop", {"istio.io/rev": CP_A}),
            ns("web", {"istio.io/rev": "prod"}),
            ns("legacy", {"istio-injection": "enabled"}),
            ns("ghost", {"istio.io/rev": "cp-z.istio-system"}),
        ],
        pods=[
            pod("a", "shop", CP_A),
            pod("a-done", "shop", CP_A, phase="Succeeded"),
            pod("b", "web", CP_B),
            pod("b2", "web", CP_B),
        ],
    )
    rows = {r.revision: r for r in inventory.control_planes(snap)}
    assert set(rows) == {CP_A, CP_B, CANARY, "default"}
    a, b, canary, default = rows[CP_A], rows[CP_B], rows[CANARY], rows["default"]
    assert (a.name, a.namespace, a.version, a.status, a.source) == (
        "cp-a",
        ISTIO,
        "1.13.9",
        "Available",
        inventory.OPERATOR,
    )
    assert a.proxies == 1 and a.namespaces == ["shop"] and a.tags == []
    # no status written yet (no operator): the istiod Deployment tells
    assert b.status == "Available" and b.proxies == 2 and b.namespaces == ["web"]
    assert b.tags == ["prod"]
    assert (canary.name, canary.version, canary.status) == (
        "istiod-canary",
        "1.20.1",
        "Unavailable",
    )
    assert canary.source == inventory.DEPLOYMENT
    assert canary.tags == ["default"] and canary.namespaces == ["legacy"]
    assert (default.name, default.version, default.source) == (
        "istiod",
        "1.19.0",
        inventory.DEPLOYMENT,
    )


def test_a_revision_known_only_by_its_webhooks_has_no_istiod() -> None:
    rows = inventory.control_planes(inventory.MeshSnapshot(webhook_configurations=[smm_mwc("old")]))
    (row,) = rows
    assert row.revision == "old.istio-system"
    assert row.status == inventory.NO_ISTIOD
    assert row.source == inventory.WEBHOOK
    assert row.namespace == ISTIO
    assert row.version == "<unknown>"


def test_istiod_revision_from_label_or_name() -> None:
    assert inventory.istiod_revision(istiod("istiod-x", "1.2.3", "x.ns")) == "x.ns"
    assert inventory.istiod_revision(istiod("istiod-1-20", "1.20.0")) == "1-20"
    assert inventory.istiod_revision(istiod("istiod", "1.20.0")) == "default"


# -- proxies --------------------------------------------------------------------------------------


def test_proxy_rows() -> None:
    pods = [
        pod("web-5d4f8-x", "shop", CP_A, owner=("ReplicaSet", "web-5d4f8")),
        pod("db-0", "shop", CP_B, "1.15.3", owner=("StatefulSet", "db"), ready=False),
        pod("bare", "shop", CP_B, "1.15.3", owner=None),
        pod("job-x", "shop", CP_A, owner=("Job", "migrate"), phase="Succeeded"),
        pod("plain", "shop"),
        pod("other", "free", CP_A),
    ]
    snap = snapshot(namespaces=[ns("shop", {"istio.io/rev": CP_B}), ns("free")], pods=pods)
    rows = inventory.proxies_view(snap)
    assert [(r.namespace, r.pod) for r in rows] == [
        ("free", "other"),
        ("shop", "bare"),
        ("shop", "db-0"),
        ("shop", "web-5d4f8-x"),
    ]
    by_pod = {r.pod: r for r in rows}
    web = by_pod["web-5d4f8-x"]
    assert (web.owner, web.revision, web.version, web.ready, web.matches) == (
        "deployment/web",
        CP_A,
        "1.13.9",
        True,
        False,
    )
    assert by_pod["db-0"].owner == "statefulset/db"
    assert by_pod["db-0"].ready is False and by_pod["db-0"].matches is True
    assert by_pod["bare"].owner == "<none>"
    assert by_pod["other"].matches is None
    assert [r.pod for r in inventory.proxies_view(snap, ["free"])] == ["other"]


def test_owner_resolution_prefers_listed_replicasets() -> None:
    orphan = {"metadata": {"name": "web-5d4f8", "namespace": "shop"}}
    owned = {
        "metadata": {
            "name": "api-5d4f8",
            "namespace": "shop",
            "ownerReferences": [{"kind": "Deployment", "name": "api-v2", "controller": True}],
        }
    }
    p_orphan = pod("w", "shop", CP_A, owner=("ReplicaSet", "web-5d4f8"))
    p_owned = pod("a", "shop", CP_A, owner=("ReplicaSet", "api-5d4f8"))
    p_other = pod("o", "shop", CP_A, owner=("ReplicaSet", "custom"))
    rows = {
        r.pod: r.owner
        for r in inventory.proxies_view(
            snapshot(
                namespaces=[ns("shop")],
                pods=[p_orphan, p_owned, p_other],
                replicasets=[orphan, owned],
            )
        )
    }
    assert rows == {"w": "replicaset/web-5d4f8", "a": "deployment/api-v2", "o": "replicaset/custom"}
