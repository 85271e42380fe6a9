"""The IstioControlPlane operator end to end: `meshcanary operator` against its own sandbox, driven
by the real kubectl exactly as the seed's procedure drives Service Mesh Manager.

One scenario, in the seed's order: two control planes side by side (1.13.9 and 1.15.3), a
namespace attached to each, pods injected by the right revision, a refused delete while proxies
remain, migration (relabel, `rollout restart`, `rollout status`), the delete that then succeeds
and leaves nothing of the revision, a spec change that rolls istiod, bad specs, an operator
restart that does no duplicate work, and drift corrected. The sandbox is private: the operator
watches every namespace and would otherwise reconcile other tests' control planes.

Every wait is a `kubectl wait` on a condition with a bound, or a bounded read of the operator's
log for one line; nothing sleeps.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.controlplane import render
from tests.e2e.conftest import RunningSandbox, requires_kubectl, start_sandbox, stop_sandbox

pytestmark = [pytest.mark.e2e, requires_kubectl, pytest.mark.timeout(150)]

NS = "istio-system"
OLD, NEW = "cp-v113x", "cp-v115x"
OLD_REV, NEW_REV = f"{OLD}.{NS}", f"{NEW}.{NS}"
SEED_COLUMNS = ["NAME", "MODE", "NETWORK", "STATUS", "MESH EXPANSION", "EXPANSION GW IPS",
                "ERROR", "AGE"]  # fmt: skip
WEBHOOK_CONFIGURATION = "meshcanary-operator.meshcanary.io"
WEBHOOK = f"deletion-guard.{WEBHOOK_CONFIGURATION}"
RESOURCE_KINDS = {
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Service": "services",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
}
WAIT = "--timeout=30s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Operator:
    """`python -m meshcanary.cli operator ...` as a subprocess, its log in a file."""

    sandbox: RunningSandbox
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "meshcanary.cli", "operator",
            "--kubeconfig", str(self.sandbox.kubeconfig),
            "--standalone", "--webhook-port", str(free_port()),
            "--resync-seconds", "1", "--verbose",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.sandbox.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_for_webhook()

    def wait_for_webhook(self, timeout: float = 30) -> None:
        """Until kopf has registered the deletion guard (it empties the list when it stops)."""
        configuration = f"validatingwebhookconfiguration/{WEBHOOK_CONFIGURATION}"
        self.sandbox.kubectl("wait", "--for=create", configuration, WAIT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            webhooks = read(self.sandbox, configuration).get("webhooks") or []
            if [webhook["name"] for webhook in webhooks] == [WEBHOOK]:
                return
            time.sleep(0.1)
        raise AssertionError(f"the operator did not register {WEBHOOK}:\n{self.tail()}")

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C or a Deployment's rollout; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def wait_for_line(self, pattern: str, after: int, timeout: float = 20) -> str:
        """The first log line matching `pattern` written past offset `after` (bounded poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[after:].decode(errors="replace")
            for line in text.splitlines():
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.tail()}")

    def offset(self) -> int:
        return self.log.stat().st_size

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "home", "operator")
    try:
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture
def operator(cluster: RunningSandbox, tmp_path: Path) -> Iterator[Operator]:
    running = Operator(cluster, tmp_path / "operator.log")
    running.start()
    try:
        yield running
    finally:
        if running.process is not None:
            running.process.kill()
            running.process.wait(timeout=10)
        print(running.tail(60))


# -- helpers ----------------------------------------------------------------------------------


def icp(name: str, **fields: Any) -> str:
    body = {"apiVersion": "meshcanary.io/v1alpha1", "kind": "IstioControlPlane"}
    return yaml.safe_dump({**body, "metadata": {"name": name, "namespace": NS}, "spec": fields})


def columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def read(sandbox: RunningSandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def wait_status(sandbox: RunningSandbox, name: str, path: str, value: str) -> None:
    sandbox.kubectl(
        "wait", f"--for=jsonpath={{.status.{path}}}={value}", f"icp/{name}", "-n", NS, WAIT
    )


def workload(sandbox: RunningSandbox, namespace: str, revision: str, replicas: int) -> None:
    sandbox.kubectl("create", "namespace", namespace)
    sandbox.kubectl("label", "namespace", namespace, f"istio.io/rev={revision}")
    sandbox.kubectl(
        "create", "deployment", "web", "--image=nginx", f"--replicas={replicas}", "-n", namespace
    )
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, WAIT)


def proxy_images(sandbox: RunningSandbox, namespace: str) -> set[str]:
    pods = read(sandbox, "pods", "-n", namespace)["items"]
    return {
        container["image"]
        for pod in pods
        for container in pod["spec"]["containers"]
        if container["name"] == "istio-proxy"
    }


def objects_of(sandbox: RunningSandbox, revision: str) -> dict[str, list[str]]:
    """Every object labelled for `revision`, by kind of `render.KINDS` (all namespaces)."""
    found = {}
    for _, kind, namespaced in render.KINDS:
        args = [RESOURCE_KINDS[kind], "-l", f"istio.io/rev={revision}", "-o", "name"]
        names = sandbox.kubectl("get", *args, *(["-A"] if namespaced else [])).stdout.split()
        if names:
            found[kind] = names
    return found


def versions_of(sandbox: RunningSandbox, revision: str) -> dict[str, str]:
    """resourceVersion of every object labelled for `revision`."""
    result = {}
    for _, kind, _ in render.KINDS:
        listing = read(sandbox, RESOURCE_KINDS[kind], "-A", "-l", f"istio.io/rev={revision}")
        for item in listing["items"]:
            meta = item["metadata"]
            key = f"{kind}/{meta.get('namespace', '')}/{meta['name']}"
            result[key] = meta["resourceVersion"]
    return result


def events_of(sandbox: RunningSandbox, name: str) -> list[tuple[str, str, str]]:
    """(name, type, reason) of the Events about `name`, oldest first (timestamps are seconds)."""
    listing = read(sandbox, "events", "-n", NS, "--field-selector", f"involvedObject.name={name}")
    items = sorted(listing["items"], key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(event["metadata"]["name"], event["type"], event["reason"]) for event in items]


# -- the scenario -----------------------------------------------------------------------------


def test_control_planes_side_by_side_migration_and_guarded_deletion(
    cluster: RunningSandbox, operator: Operator
) -> None:
    kubectl = cluster.kubectl
    kubectl("wait", "--for=condition=Established", "crd/istiocontrolplanes.meshcanary.io", WAIT)
    kubectl("create", "namespace", NS)

    # Two control planes side by side; Available only once istiod is.
    kubectl("apply", "-f", "-", input=icp(OLD, version="1.13.9"))
    wait_status(cluster, OLD, "status", "Available")
    kubectl("apply", "-f", "-", input=icp(NEW, version="1.15.3", meshExpansion={"enabled": True}))
    wait_status(cluster, NEW, "status", "Available")

    # A namespace attached to each revision; the right proxies.
    workload(cluster, "shop", OLD_REV, replicas=2)
    workload(cluster, "cart", NEW_REV, replicas=1)
    assert proxy_images(cluster, "shop") == {"docker.io/istio/proxyv2:1.13.9"}
    assert proxy_images(cluster, "cart") == {"docker.io/istio/proxyv2:1.15.3"}
    wait_status(cluster, OLD, "proxies", "2")
    wait_status(cluster, NEW, "proxies", "1")

    table = kubectl("get", "istiocontrolplanes", "-n", NS).stdout
    wide = kubectl("get", "istiocontrolplanes", "-n", NS, "-o", "wide").stdout
    print(table, wide, sep="\n")
    header, old_row, new_row = table.splitlines()
    assert columns(header) == SEED_COLUMNS
    assert old_row.split()[:5] == [OLD, "ACTIVE", "network1", "Available", "false"]
    gateway = read(cluster, "icp", NEW, "-n", NS)["status"]["gatewayAddress"]
    assert new_row.split()[:6] == [
        NEW, "ACTIVE", "network1", "Available", "true", json.dumps(gateway, separators=(",", ":"))
    ]  # fmt: skip
    header, old_row, new_row = wide.splitlines()
    assert columns(header) == [*SEED_COLUMNS, "VERSION", "PROXIES"]
    assert old_row.split()[-2:] == ["1.13.9", "2"]
    assert new_row.split()[-2:] == ["1.15.3", "1"]

    # Events for the transitions.
    print(
        kubectl("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={OLD}").stdout
    )
    assert [(t, r) for _, t, r in events_of(cluster, OLD)] == [
        ("Normal", "Reconciling"), ("Normal", "Available")
    ]  # fmt: skip

    # A plain delete is refused while proxies remain.
    refused = kubectl("delete", "istiocontrolplanes", "-n", NS, OLD, check=False)
    print(refused.stderr)
    assert refused.returncode != 0
    assert f'admission webhook "{WEBHOOK}" denied the request' in refused.stderr
    assert (
        f"istiocontrolplane {OLD} still serves 2 live proxies (shop: 2) and is selected by "
        "namespace shop; migrate them first, or annotate meshcanary.io/force-delete=true"
    ) in refused.stderr
    assert read(cluster, "icp", OLD, "-n", NS)["metadata"].get("deletionTimestamp") is None

    # Migration as the seed describes it, then the delete succeeds.
    kubectl("label", "ns", "shop", f"istio.io/rev={NEW_REV}", "--overwrite")
    kubectl("rollout", "restart", "deployment", "-n", "shop")
    kubectl("rollout", "status", "deployment/web", "-n", "shop", WAIT)
    wait_status(cluster, OLD, "proxies", "0")
    wait_status(cluster, NEW, "proxies", "3")
    assert proxy_images(cluster, "shop") == {"docker.io/istio/proxyv2:1.15.3"}
    kubectl("delete", "istiocontrolplanes", "-n", NS, OLD, WAIT)
    assert objects_of(cluster, OLD_REV) == {}
    assert objects_of(cluster, NEW_REV), "the other revision is untouched"

    # A spec change rolls istiod: Reconciling, then Available on the new image.
    before = {name for name, _, _ in events_of(cluster, NEW)}
    kubectl("patch", "icp", NEW, "-n", NS, "--type=merge", "-p", '{"spec":{"version":"1.15.4"}}')
    wait_status(cluster, NEW, "observedGeneration", "2")
    kubectl("rollout", "status", f"deployment/istiod-{NEW}", "-n", NS, WAIT)
    wait_status(cluster, NEW, "status", "Available")
    istiod = read(cluster, "deployment", f"istiod-{NEW}", "-n", NS)
    assert istiod["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "docker.io/istio/pilot:1.15.4"
    )
    new_events = [e for e in events_of(cluster, NEW) if e[0] not in before]
    assert [reason for _, _, reason in new_events] == ["Reconciling", "Available"]

    # Bad specs: rejected by the schema, or ReconcileFailed with the reason.
    rejected = kubectl("apply", "-f", "-", input=icp("cp-bad", version="1.15"), check=False)
    assert rejected.returncode != 0
    assert "spec.version in body should match" in rejected.stderr
    kubectl("apply", "-f", "-", input=icp("cp-bad", version="1.99.0"))
    wait_status(cluster, "cp-bad", "status", "ReconcileFailed")
    message = "spec.version: Istio 1.99.0 is not supported (supported: 1.13-1.30)"
    assert read(cluster, "icp", "cp-bad", "-n", NS)["status"]["errorMessage"] == message
    assert message in kubectl("get", "icp", "cp-bad", "-n", NS).stdout
    assert objects_of(cluster, f"cp-bad.{NS}") == {}
    assert [(t, r) for _, t, r in events_of(cluster, "cp-bad")] == [("Warning", "ReconcileFailed")]
    kubectl("delete", "icp", "cp-bad", "-n", NS, WAIT)

    # An operator restart does no duplicate work.
    wait_status(cluster, NEW, "status", "Available")
    assert operator.stop() == 0
    versions, events = versions_of(cluster, NEW_REV), events_of(cluster, NEW)
    offset = operator.offset()
    operator.start()
    operator.wait_for_line(rf"\[{NS}/{NEW}\] reconciled: Available, \d+ objects applied", offset)
    operator.wait_for_line(rf"\[{NS}/{NEW}\] reconciled: .*status unchanged", offset)
    assert versions_of(cluster, NEW_REV) == versions
    assert events_of(cluster, NEW) == events

    # Drift is corrected: a deleted webhook configuration comes back.
    webhook = f"mutatingwebhookconfiguration/istio-sidecar-injector-{NEW}-{NS}"
    kubectl("delete", webhook)
    kubectl("wait", "--for=create", webhook, WAIT)
