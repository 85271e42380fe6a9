"""Pure planning of one namespace's migration: labels, controllers, what cannot restart."""

from __future__ import annotations

from typing import Any

import pytest

from meshcanary.migrate import plan

A = "cp-a.istio-system"
B = "cp-b.istio-system"


def namespace(labels: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "labels": labels or {}, "annotations": annotations}}


def pod(
    name: str,
    revision: str | None,
    owner: tuple[str, str] | None = None,
    *,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}, "annotations": {}}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    containers = [{"name": "app", "image": "nginx"}]
    if revision:
        metadata["annotations"]["istio.io/rev"] = revision
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.15.3"})
    return {"metadata": metadata, "spec": {"containers": containers}, "status": {"phase": phase}}


def owned(name: str, owner: tuple[str, str] | None) -> dict[str, Any]:
    refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
    return {"metadata": {"name": name, "ownerReferences": refs}}


def test_each_controller_kind_is_restarted_once() -> None:
    work = plan.Workloads(
        pods=[
            pod("web-1", A, ("ReplicaSet", "web-abc")),
            pod("web-2", A, ("ReplicaSet", "web-abc")),
            pod("db-0", A, ("StatefulSet", "db")),
            pod("agent-x", A, ("DaemonSet", "agent")),
            pod("legacy-1", A, ("ReplicaSet", "legacy")),
        ],
        replicasets=[owned("web-abc", ("Deployment", "web")), owned("legacy", None)],
    )
    result = plan.plan_namespace(namespace({"istio.io/rev": A}), work, B)
    assert [str(c) for c in result.controllers] == [
        "daemonset/agent",
        "deployment/web",
        "replicaset/legacy",
        "statefulset/db",
    ]
    assert next(c for c in result.controllers if c.kind == "Deployment").pods == ("web-1", "web-2")
    assert result.unrestartable == ()
    assert result.previous_revision == A
    assert result.label_patch == {"istio.io/rev": B}


def test_bare_pods_jobs_and_cronjobs_cannot_be_restarted() -> None:
    work = plan.Workloads(
        pods=[
            pod("debug", A),
            pod("once-x", A, ("Job", "once")),
            pod("nightly-1-y", A, ("Job", "nightly-1")),
        ],
        jobs=[owned("once", None), owned("nightly-1", ("CronJob", "nightly"))],
    )
    result = plan.plan_namespace(namespace({"istio.io/rev": A}), work, B)
    assert result.controllers == ()
    assert [(u.pod, u.kind, u.owner) for u in result.unrestartable] == [
        ("debug", "Pod", None),
        ("nightly-1-y", "CronJob", "nightly"),
        ("once-x", "Job", "once"),
    ]
    assert all(u.advice for u in result.unrestartable)


def test_finished_and_opted_out_pods_do_not_count() -> None:
    work = plan.Workloads(
        pods=[
            pod("done", A, ("Job", "x"), phase="Succeeded"),
            pod("failed", A, phase="Failed"),
            pod("plain", None, labels={"sidecar.istio.io/inject": "false"}),
        ]
    )
    result = plan.plan_namespace(namespace({"istio.io/rev": B}), work, B)
    assert result.nothing_to_do


def test_pods_without_a_sidecar_need_a_restart() -> None:
    work = plan.Workloads(pods=[pod("web-1", None, ("StatefulSet", "web"))])
    result = plan.plan_namespace(namespace(), work, B)
    assert result.stragglers == ("web-1",)
    assert result.previous_revision is None
    assert result.labels_before == {}


@pytest.mark.parametrize(
    ("labels", "patch", "previous"),
    [
        ({"istio-injection": "enabled"}, {"istio-injection": None, "istio.io/rev": B}, "default"),
        (
            {"istio-injection": "enabled", "istio.io/rev": A},
            {"istio-injection": None, "istio.io/rev": B},
            "default",
        ),
        (
            {"istio-injection": "disabled", "istio.io/rev": A},
            {"istio-injection": None, "istio.io/rev": B},
            None,
        ),
        ({"istio.io/rev": A, "team": "x"}, {"istio.io/rev": B}, A),
    ],
)
def test_istio_injection_is_removed_and_previous_recorded(
    labels: dict[str, str], patch: dict[str, str | None], previous: str | None
) -> None:
    result = plan.plan_namespace(namespace(labels), plan.Workloads(), B)
    assert result.label_patch == patch
    assert result.previous_revision == previous
    assert result.relabel_needed and not result.nothing_to_do


def test_already_migrated_namespace_needs_nothing() -> None:
    work = plan.Workloads(pods=[pod("web-1", B, ("StatefulSet", "web"))])
    result = plan.plan_namespace(namespace({"istio.io/rev": B}), work, B)
    assert result.nothing_to_do
    assert result.label_patch == {}
    assert result.previous_revision is None


def test_labelled_but_not_restarted_still_needs_work() -> None:
    work = plan.Workloads(pods=[pod("web-1", A, ("StatefulSet", "web"))])
    result = plan.plan_namespace(namespace({"istio.io/rev": B}), work, B)
    assert not result.relabel_needed and not result.nothing_to_do
    assert [str(c) for c in result.controllers] == ["statefulset/web"]


def test_rollback_target_resolution() -> None:
    recorded = namespace({"istio.io/rev": B}, **{plan.PREVIOUS_ANNOTATION: A})
    assert plan.rollback_target(recorded, None) == A
    assert plan.rollback_target(recorded, "cp-c") == "cp-c"
    with pytest.raises(plan.NoPreviousRevision, match="--to"):
        plan.rollback_target(namespace({"istio.io/rev": B}), None)
