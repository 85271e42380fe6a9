"""The sandbox behaves like a cluster: rollouts, scaling, cascading deletes, injection by the
revision a namespace selects (with Istio's precedence traps), and pod faults — all through the
real kubectl and the `meshcanary sandbox` CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import istio_manifests as istio
from tests.e2e.conftest import RunningSandbox, requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl]
ROLLOUT = "--timeout=60s"


def new_namespace(sandbox: RunningSandbox, **labels: str) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    if labels:
        sandbox.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
    return name


def pods(sandbox: RunningSandbox, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    items: list[dict[str, Any]] = json.loads(sandbox.kubectl(*args).stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def proxy_image(pod: dict[str, Any]) -> str | None:
    containers = pod["spec"]["containers"]
    images = [c["image"] for c in containers if c["name"] == "istio-proxy"]
    return images[0] if images else None


def deploy_app(
    sandbox: RunningSandbox, namespace: str, name: str = "web", replicas: int = 2, **pod_labels: str
) -> None:
    sandbox.kubectl(
        "apply", "-n", namespace, "-f", "-", input=istio.app(name, replicas, pod_labels or None)
    )
    sandbox.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, ROLLOUT)


@pytest.fixture(scope="module")
def revisions(sandbox: RunningSandbox) -> Iterator[None]:
    """cp-a (1.15.3) and cp-b (1.17.2) running side by side in istio-system."""
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        input='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"istio-system"}}',
    )
    for cp, version in (("cp-a", "1.15.3"), ("cp-b", "1.17.2")):
        sandbox.kubectl(
            "apply", "-f", "-", input=istio.as_manifest(istio.smm_revision(cp, version))
        )
        sandbox.kubectl(
            "rollout", "status", f"deployment/istiod-{cp}", "-n", "istio-system", ROLLOUT
        )
    yield


# -- controllers -------------------------------------------------------------------------------


def test_rollout_restart_then_status_replaces_every_pod(sandbox: RunningSandbox) -> None:
    namespace = new_namespace(sandbox)
    deploy_app(sandbox, namespace, replicas=3)
    before = {p["metadata"]["name"] for p in pods(sandbox, namespace)}
    assert len(before) == 3
    sandbox.kubectl("rollout", "restart", "deployment/web", "-n", namespace)
    status = sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, ROLLOUT)
    assert "successfully rolled out" in status.stdout
    after = pods(sandbox, namespace)
    assert len(after) == 3 and not before & {p["metadata"]["name"] for p in after}
    assert all(p["status"]["phase"] == "Running" for p in after)
    replicasets = json.loads(sandbox.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)
    assert sorted(rs["spec"]["replicas"] for rs in replicasets["items"]) == [0, 3]
    history = sandbox.kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout
    assert "2" in history.split()


def test_scale_up_and_down(sandbox: RunningSandbox) -> None:
    namespace = new_namespace(sandbox)
    deploy_app(sandbox, namespace, replicas=1)
    sandbox.kubectl("scale", "deployment/web", "--replicas=4", "-n", namespace)
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, ROLLOUT)
    assert len(pods(sandbox, namespace)) == 4
    sandbox.kubectl("scale", "deployment/web", "--replicas=2", "-n", namespace)
    sandbox.kubectl(
        "wait",
        "--for=jsonpath={.status.replicas}=2",
        "deployment/web",
        "-n",
        namespace,
        "--timeout=30s",
    )
    ready = sandbox.kubectl("get", "deployment", "web", "-n", namespace).stdout
    assert "2/2" in ready


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
def test_delete_deployment_with_each_propagation_policy(
    sandbox: RunningSandbox, cascade: str
) -> None:
    namespace = new_namespace(sandbox)
    deploy_app(sandbox, namespace, replicas=2)
    sandbox.kubectl(
        "delete", "deployment", "web", "-n", namespace, f"--cascade={cascade}", "--timeout=30s"
    )
    if cascade == "orphan":
        replicasets = json.loads(
            sandbox.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout
        )["items"]
        assert len(replicasets) == 1 and "ownerReferences" not in replicasets[0]["metadata"]
        assert len(pods(sandbox, namespace)) == 2
    else:
        sandbox.kubectl(
            "wait", "--for=delete", "pod", "-l", "app=web", "-n", namespace, "--timeout=30s"
        )
        assert "No resources" in sandbox.kubectl("get", "rs", "-n", namespace).stderr


def test_namespace_deletion_removes_running_pods(sandbox: RunningSandbox) -> None:
    namespace = new_namespace(sandbox)
    deploy_app(sandbox, namespace, replicas=2)
    sandbox.kubectl("delete", "namespace", namespace, "--timeout=60s")
    assert sandbox.kubectl("get", "namespace", namespace, check=False).returncode != 0


def test_nodes_and_load_balancer_addresses(sandbox: RunningSandbox) -> None:
    nodes = sandbox.kubectl("get", "nodes").stdout
    assert nodes.count(" Ready ") == 3
    namespace = new_namespace(sandbox)
    sandbox.kubectl("create", "service", "loadbalancer", "gw", "--tcp=443:8443", "-n", namespace)
    sandbox.kubectl(
        "wait",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
        "service/gw",
        "-n",
        namespace,
        "--timeout=30s",
    )
    address = sandbox.kubectl(
        "get",
        "service",
        "gw",
        "-n",
        namespace,
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ip}",
    ).stdout
    assert address.startswith("203.0.113.")


# -- injection ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("revisions")
def test_a_namespace_moves_from_one_revision_to_the_other(sandbox: RunningSandbox) -> None:
    """The seed's procedure: label, restart, every pod runs the new revision's proxy."""
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-a.istio-system"})
    deploy_app(sandbox, namespace, replicas=2)
    for pod in pods(sandbox, namespace):
        assert proxy_image(pod) == "docker.io/istio/proxyv2:1.15.3"
        assert pod["metadata"]["annotations"]["istio.io/rev"] == "cp-a.istio-system"
        assert pod["metadata"]["labels"]["istio.io/rev"] == "cp-a.istio-system"
        status = json.loads(pod["metadata"]["annotations"]["sidecar.istio.io/status"])
        assert status["revision"] == "cp-a.istio-system"
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init"]
    sandbox.kubectl(
        "label", "namespace", namespace, "istio.io/rev=cp-b.istio-system", "--overwrite"
    )
    sandbox.kubectl("rollout", "restart", "deployment/web", "-n", namespace)
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, ROLLOUT)
    migrated = pods(sandbox, namespace)
    assert len(migrated) == 2
    assert {proxy_image(p) for p in migrated} == {"docker.io/istio/proxyv2:1.17.2"}


@pytest.mark.usefixtures("revisions")
def test_istio_injection_label_beats_istio_rev(sandbox: RunningSandbox) -> None:
    """Both labels: the revision webhooks step aside and, with no default revision, no sidecar."""
    namespace = new_namespace(
        sandbox, **{"istio.io/rev": "cp-a.istio-system", "istio-injection": "enabled"}
    )
    deploy_app(sandbox, namespace, replicas=1)
    assert [proxy_image(p) for p in pods(sandbox, namespace)] == [None]


@pytest.mark.usefixtures("revisions")
def test_a_namespace_label_beats_a_pod_label(sandbox: RunningSandbox) -> None:
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-a.istio-system"})
    deploy_app(sandbox, namespace, replicas=1, **{"istio.io/rev": "cp-b.istio-system"})
    assert [proxy_image(p) for p in pods(sandbox, namespace)] == ["docker.io/istio/proxyv2:1.15.3"]


@pytest.mark.usefixtures("revisions")
def test_a_pod_label_selects_a_revision_in_an_unlabelled_namespace(sandbox: RunningSandbox) -> None:
    namespace = new_namespace(sandbox)
    deploy_app(sandbox, namespace, replicas=1, **{"istio.io/rev": "cp-b.istio-system"})
    assert [proxy_image(p) for p in pods(sandbox, namespace)] == ["docker.io/istio/proxyv2:1.17.2"]


@pytest.mark.usefixtures("revisions")
def test_overlapping_webhooks_inject_twice(sandbox: RunningSandbox) -> None:
    """A second configuration matching cp-a's namespaces re-injects: the last one wins."""
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-a.istio-system"})
    overlap = istio.injection_webhooks(
        "istio-sidecar-injector-zz-overlap", "cp-a.istio-system", "istiod-cp-b"
    )
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(overlap))
    try:
        deploy_app(sandbox, namespace, replicas=1)
        [pod] = pods(sandbox, namespace)
        assert proxy_image(pod) == "docker.io/istio/proxyv2:1.17.2"
        assert pod["metadata"]["annotations"]["istio.io/rev"] == "cp-b.istio-system"
        assert [c["name"] for c in pod["spec"]["containers"]].count("istio-proxy") == 1
    finally:
        sandbox.kubectl(
            "delete", "mutatingwebhookconfiguration", "istio-sidecar-injector-zz-overlap"
        )


def test_without_an_available_istiod_a_fail_policy_rejects_pods(sandbox: RunningSandbox) -> None:
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        input='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"istio-system"}}',
    )
    sandbox.kubectl(
        "apply", "-f", "-", input=istio.as_manifest(istio.smm_revision("cp-down", "1.16.0"))
    )
    sandbox.kubectl("scale", "deployment/istiod-cp-down", "--replicas=0", "-n", "istio-system")
    sandbox.kubectl(
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "istio.io/rev=cp-down.istio-system",
        "-n",
        "istio-system",
        "--timeout=30s",
    )
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-down.istio-system"})
    refused = sandbox.kubectl("run", "bare", "--image=nginx:1.27", "-n", namespace, check=False)
    assert refused.returncode != 0
    assert 'failed calling webhook "rev.namespace.sidecar-injector.istio.io"' in refused.stderr


# -- pod faults --------------------------------------------------------------------------------


def _fault(sandbox: RunningSandbox, name: str, *flags: str) -> None:
    sandbox.meshcanary("sandbox", "fault", "add", name, "--name", sandbox.name, *flags)


def _clear(sandbox: RunningSandbox, name: str) -> None:
    sandbox.meshcanary("sandbox", "fault", "clear", name, "--name", sandbox.name)


@pytest.mark.usefixtures("revisions")
def test_a_proxy_version_that_never_becomes_ready_stalls_a_rollout(sandbox: RunningSandbox) -> None:
    team = uuid.uuid4().hex[:8]
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-b.istio-system", "team": team})
    _fault(
        sandbox,
        f"never-{team}",
        "--pod-never-ready",
        "--proxy-version",
        "1.17.*",
        "--namespace-selector",
        f"team={team}",
    )
    try:
        sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=istio.app("web", 1))
        stalled = sandbox.kubectl(
            "rollout", "status", "deployment/web", "-n", namespace, "--timeout=3s", check=False
        )
        assert stalled.returncode != 0
        [pod] = pods(sandbox, namespace)
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert pod["status"]["phase"] == "Running" and ready["Ready"] == "False"
    finally:
        _clear(sandbox, f"never-{team}")
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, ROLLOUT)


@pytest.mark.usefixtures("revisions")
def test_a_crash_looping_proxy_restarts(sandbox: RunningSandbox) -> None:
    team = uuid.uuid4().hex[:8]
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-b.istio-system", "team": team})
    _fault(
        sandbox,
        f"crash-{team}",
        "--pod-crash-loop",
        "--proxy-version",
        "1.17.2",
        "--namespace-selector",
        f"team={team}",
    )
    try:
        sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=istio.app("web", 1))
        sandbox.kubectl(
            "wait",
            "pod",
            "-l",
            "app=web",
            "-n",
            namespace,
            "--timeout=30s",
            '--for=jsonpath={.status.containerStatuses[?(@.name=="istio-proxy")].restartCount}=2',
        )
        table = sandbox.kubectl("get", "pods", "-n", namespace).stdout
        assert "CrashLoopBackOff" in table or "Error" in table or "Running" in table
    finally:
        _clear(sandbox, f"crash-{team}")


@pytest.mark.usefixtures("revisions")
def test_a_slow_start_delays_readiness(sandbox: RunningSandbox) -> None:
    team = uuid.uuid4().hex[:8]
    namespace = new_namespace(sandbox, **{"istio.io/rev": "cp-a.istio-system", "team": team})
    _fault(sandbox, f"slow-{team}", "--pod-slow-start", "3", "--namespace-selector", f"team={team}")
    try:
        sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=istio.app("web", 1))
        early = sandbox.kubectl(
            "rollout", "status", "deployment/web", "-n", namespace, "--timeout=1s", check=False
        )
        assert early.returncode != 0
        sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, ROLLOUT)
    finally:
        _clear(sandbox, f"slow-{team}")
