"""`meshcanary migrate` and `rollback` end to end: the real CLI against a sandbox.

Revisions are hand-written SMM-style istiod installs (istio_manifests.smm_revision); the
sandbox's simulated istiod injects once its Deployment's pod is Ready, so every check below is
on what pods really run. Names are private to this module (cp-m1/cp-m2/cp-mdown) so other
modules' revisions in the shared sandbox do not interfere.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import istio_manifests as istio
from tests.e2e.conftest import RunningSandbox, requires_kubectl
from tests.e2e.istio_manifests import workload

pytestmark = [pytest.mark.e2e, requires_kubectl]

OLD, NEW, DOWN = "cp-m1", "cp-m2", "cp-mdown"
REV = "{}.istio-system"
ROLLOUT = "--timeout=60s"


def install(sandbox: RunningSandbox, cp: str, version: str) -> None:
    """istiod first, its webhooks once it is Ready (its own pod would match them)."""
    objects = istio.smm_revision(cp, version)
    webhooks = [o for o in objects if o["kind"] == "MutatingWebhookConfiguration"]
    rest = [o for o in objects if o not in webhooks]
    sandbox.kubectl("apply", "-f", "-", input=istio.as_manifest(rest))
    sandbox.kubectl("rollout", "status", f"deployment/istiod-{cp}", "-n", "istio-system", ROLLOUT)
    sandbox.kubectl("apply", "-f", "-", input=istio.as_manifest(webhooks))


@pytest.fixture(scope="module")
def revisions(sandbox: RunningSandbox) -> Iterator[None]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    for cp, version in ((OLD, "1.15.3"), (NEW, "1.17.2"), (DOWN, "1.17.2")):
        install(sandbox, cp, version)
    yield


def meshed_namespace(
    sandbox: RunningSandbox, cp: str, objects: list[dict[str, Any]], *, bare_pod: bool = False
) -> str:
    """A fresh namespace on `cp` with `objects` rolled out (and optionally a bare pod)."""
    name = f"m-{uuid.uuid4().hex[:8]}"
    labels = {"istio.io/rev": REV.format(cp)}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(ns))
    sandbox.kubectl("apply", "-n", name, "-f", "-", input=istio.as_manifest(objects))
    if bare_pod:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "debug"},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
        }
        sandbox.kubectl("apply", "-n", name, "-f", "-", input=json.dumps(pod))
        sandbox.kubectl("wait", "--for=condition=Ready", "pod/debug", "-n", name, ROLLOUT)
    for obj in objects:
        kind = obj["kind"].lower()
        sandbox.kubectl(
            "rollout", "status", f"{kind}/{obj['metadata']['name']}", "-n", name, ROLLOUT
        )
    return name


def pod_revisions(sandbox: RunningSandbox, namespace: str) -> dict[str, str | None]:
    pods = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
    return {
        p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get("istio.io/rev")
        for p in pods["items"]
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    }


def resource_versions(sandbox: RunningSandbox, namespace: str) -> dict[str, str]:
    found = json.loads(
        sandbox.kubectl(
            "get", "deployments,statefulsets,daemonsets,pods", "-n", namespace, "-o", "json"
        ).stdout
    )
    ns = json.loads(sandbox.kubectl("get", "namespace", namespace, "-o", "json").stdout)
    versions = {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
        for o in found["items"]
    }
    return {**versions, "Namespace": ns["metadata"]["resourceVersion"]}


STACK = [
    workload("Deployment", "web", 2),
    workload("StatefulSet", "db"),
    workload("DaemonSet", "agent"),
]


def test_migrate_then_nothing_to_do_then_rollback(sandbox: RunningSandbox, revisions: None) -> None:
    ns = meshed_namespace(sandbox, OLD, STACK)

    done = sandbox.meshcanary("migrate", ns, "--to", NEW, "--timeout", "60s")

    assert "migrated" in done.stdout
    for name in ("deployment/web", "statefulset/db", "daemonset/agent"):
        assert name in done.stdout
    assert set(pod_revisions(sandbox, ns).values()) == {REV.format(NEW)}

    again = sandbox.meshcanary("migrate", ns, "--to", NEW, "--dry-run")
    assert f"namespace {ns}: nothing to do" in again.stdout
    second = sandbox.meshcanary("migrate", ns, "--to", NEW)
    assert "nothing to do" in second.stdout

    back = sandbox.meshcanary("rollback", ns, "--timeout", "60s")
    assert "migrated" in back.stdout
    assert set(pod_revisions(sandbox, ns).values()) == {REV.format(OLD)}


def test_dry_run_prints_the_plan_and_changes_nothing(
    sandbox: RunningSandbox, revisions: None
) -> None:
    ns = meshed_namespace(sandbox, OLD, [workload("Deployment", "web")])
    sandbox.kubectl("label", "namespace", ns, "istio-injection=disabled")
    before = resource_versions(sandbox, ns)

    result = sandbox.meshcanary("migrate", ns, "--to", NEW, "--dry-run")

    assert "label istio-injection: disabled -> (removed)" in result.stdout
    assert f"label istio.io/rev: {REV.format(OLD)} -> {REV.format(NEW)}" in result.stdout
    assert "restart deployment/web" in result.stdout
    assert "nothing was changed" in result.stdout
    assert resource_versions(sandbox, ns) == before


def test_bad_input_fails_before_changing_anything(sandbox: RunningSandbox, revisions: None) -> None:
    ns = meshed_namespace(sandbox, OLD, [workload("Deployment", "web")])
    before = resource_versions(sandbox, ns)

    unknown_ns = sandbox.meshcanary("migrate", ns, "no-such-ns", "--to", NEW, check=False)
    assert unknown_ns.returncode == 2 and "no-such-ns" in unknown_ns.stderr
    unknown_cp = sandbox.meshcanary("migrate", ns, "--to", "cp-nope", check=False)
    assert unknown_cp.returncode == 2 and "cp-nope" in unknown_cp.stderr
    no_record = sandbox.meshcanary("rollback", ns, check=False)
    assert no_record.returncode == 2 and "--to" in no_record.stderr

    sandbox.kubectl("scale", f"deployment/istiod-{DOWN}", "-n", "istio-system", "--replicas=0")
    down = unavailable(sandbox, ns)
    assert down.returncode == 1 and "not Available" in down.stderr
    assert "Traceback" not in down.stderr
    assert resource_versions(sandbox, ns) == before


def unavailable(sandbox: RunningSandbox, ns: str) -> Any:
    """Migrate to DOWN once its Deployment status shows no available replica (it lags)."""
    for _ in range(100):
        result = sandbox.meshcanary("migrate", ns, "--to", DOWN, "--dry-run", check=False)
        if result.returncode == 1:
            return sandbox.meshcanary("migrate", ns, "--to", DOWN, check=False)
        time.sleep(0.1)
    raise AssertionError(f"istiod-{DOWN} never became unavailable")


def test_bare_pod_is_named_with_advice_and_fails(sandbox: RunningSandbox, revisions: None) -> None:
    ns = meshed_namespace(sandbox, OLD, [workload("Deployment", "web")], bare_pod=True)

    result = sandbox.meshcanary("migrate", ns, "--to", NEW, "--timeout", "60s", check=False)

    assert result.returncode == 1
    assert "cannot restart pod/debug" in result.stdout and "delete and recreate" in result.stdout
    revisions_now = pod_revisions(sandbox, ns)
    assert revisions_now.pop("debug") == REV.format(OLD)
    assert set(revisions_now.values()) == {REV.format(NEW)}


def test_migration_back_to_an_older_control_plane(sandbox: RunningSandbox, revisions: None) -> None:
    ns = meshed_namespace(sandbox, NEW, [workload("StatefulSet", "db", 2)])

    result = sandbox.meshcanary("migrate", ns, "--to", f"{OLD}.istio-system", "--timeout", "60s")

    assert "migrated" in result.stdout
    assert set(pod_revisions(sandbox, ns).values()) == {REV.format(OLD)}


def test_parallel_namespaces_report_as_json(sandbox: RunningSandbox, revisions: None) -> None:
    names = [meshed_namespace(sandbox, OLD, [workload("Deployment", "web")]) for _ in range(3)]

    result = sandbox.meshcanary("migrate", *names, "--to", NEW, "--parallel", "2", "-o", "json")

    report = json.loads(result.stdout)
    assert [r["namespace"] for r in report] == names
    assert {r["result"] for r in report} == {"migrated"}
    assert all(r["restart"] == ["deployment/web"] for r in report)
    for name in names:
        assert set(pod_revisions(sandbox, name).values()) == {REV.format(NEW)}
