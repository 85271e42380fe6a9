"""Faults against a running sandbox: added with the CLI or kubectl, felt by kubectl and raw
HTTPS clients (injected errors, latency, dropped watches), cleared, and kept across a restart."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import RunningSandbox, requires_kubectl, start_sandbox, stop_sandbox

pytestmark = pytest.mark.e2e


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def call(sandbox: RunningSandbox, path: str, timeout: float = 30) -> Answer:
    """GET `path` with the kubeconfig's CA and token; errors are answers too."""
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    request = urllib.request.Request(
        cluster["server"] + path,
        headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"},
    )
    context = ssl.create_default_context(cadata=ca)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            body = response.read()
            status, headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        body, status, headers = error.read(), error.code, dict(error.headers)
    return Answer(status, headers, body, time.monotonic() - started)


def fault(sandbox: RunningSandbox, *args: str, check: bool = True) -> str:
    return sandbox.meshcanary("sandbox", "fault", *args, "--name", sandbox.name, check=check).stdout


@pytest.fixture
def faults_cleared(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The shared sandbox, left with no faults whatever the test does."""
    yield sandbox
    fault(sandbox, "clear", "--all")


@requires_kubectl
def test_an_injected_error_fails_kubectl_until_cleared(
    faults_cleared: RunningSandbox, namespace: str
) -> None:
    sandbox = faults_cleared
    fault(sandbox, "add", "boom", "--api-error", "500", "--resources", "configmaps",
          "--namespaces", namespace)  # fmt: skip
    failed = sandbox.kubectl("get", "configmaps", "-n", namespace, check=False)
    assert failed.returncode != 0
    assert 'Error from server (InternalError): Internal error occurred: injected fault "boom"' in (
        failed.stderr
    )
    sandbox.kubectl("get", "configmaps", "-n", "default")  # out of the fault's scope
    sandbox.kubectl("get", "secrets", "-n", namespace)
    assert "boom" in fault(sandbox, "list")
    assert 'fault "boom" cleared' in fault(sandbox, "clear", "boom")
    sandbox.kubectl("get", "configmaps", "-n", namespace)


def test_injected_statuses_over_raw_https(faults_cleared: RunningSandbox, namespace: str) -> None:
    sandbox = faults_cleared
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    fault(sandbox, "add", "throttle", "--api-error", "429", "--namespaces", namespace)
    answer = call(sandbox, path)
    status = json.loads(answer.body)
    assert (answer.status, answer.headers.get("Retry-After")) == (429, "1")
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
    assert 'injected fault "throttle"' in status["message"]
    assert call(sandbox, "/healthz").status == 200
    assert call(sandbox, "/apis/sandbox.meshcanary.io/v1/faults").status == 200
    fault(sandbox, "clear", "throttle")
    fault(sandbox, "add", "conflict", "--api-error", "409", "--namespaces", namespace)
    answer = call(sandbox, f"{path}/cfg")
    assert (answer.status, json.loads(answer.body)["reason"]) == (409, "Conflict")


def test_latency_is_added_to_matching_requests(
    faults_cleared: RunningSandbox, namespace: str
) -> None:
    sandbox = faults_cleared
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    baseline = call(sandbox, path).seconds
    fault(sandbox, "add", "slow", "--api-latency", "800", "--verbs", "list", "--resources",
          "configmaps", "--namespaces", namespace)  # fmt: skip
    slowed = call(sandbox, path)
    assert slowed.status == 200
    assert slowed.seconds >= 0.8 > baseline
    assert call(sandbox, f"/api/v1/namespaces/{namespace}/secrets").seconds < 0.8
    fault(sandbox, "clear", "slow")
    assert call(sandbox, path).seconds < 0.8


def test_a_raw_watch_is_dropped_after_the_delay(
    faults_cleared: RunningSandbox, namespace: str
) -> None:
    sandbox = faults_cleared
    fault(sandbox, "add", "drop", "--api-drop-watch", "1", "--namespaces", namespace)
    answer = call(sandbox, f"/api/v1/namespaces/{namespace}/configmaps?watch=true")
    assert answer.status == 200
    assert 1 <= answer.seconds < 10


@requires_kubectl
def test_kubectl_get_watch_sees_its_stream_close(
    faults_cleared: RunningSandbox, namespace: str
) -> None:
    sandbox = faults_cleared
    fault(sandbox, "add", "drop", "--api-drop-watch", "2", "--resources", "configmaps",
          "--namespaces", namespace)  # fmt: skip
    started = time.monotonic()
    watched = subprocess.run(
        ["kubectl", "get", "configmaps", "-n", namespace, "-w"],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert watched.returncode == 0, watched.stderr
    assert 2 <= time.monotonic() - started < 15


@requires_kubectl
def test_kubectl_manages_faults(faults_cleared: RunningSandbox) -> None:
    sandbox = faults_cleared
    manifest = """
apiVersion: sandbox.meshcanary.io/v1
kind: Fault
metadata: {name: flaky-creates}
spec:
  api: {effect: Error, fraction: 0.1, verbs: [create], resources: [pods]}
"""
    sandbox.kubectl("apply", "-f", "-", input=manifest)
    table = sandbox.kubectl("get", "faults").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "EFFECT", "DETAIL", "SCOPE", "AGE"]
    assert table[1].split()[:5] == ["flaky-creates", "api", "Error", "500,", "10%"]
    stored = json.loads(sandbox.kubectl("get", "fault", "flaky-creates", "-o", "json").stdout)
    assert stored["spec"]["api"]["code"] == 500
    sandbox.kubectl("apply", "-f", "-", input=manifest.replace("0.1", "0.5"))
    assert "0.5" in sandbox.kubectl("get", "fault", "flaky-creates", "-o", "yaml").stdout
    refused = sandbox.kubectl(
        "apply", "-f", "-", input=manifest.replace("effect: Error", "effect: Oops"), check=False
    )
    assert refused.returncode != 0
    assert 'spec.api.effect: Unsupported value: "Oops"' in refused.stderr
    sandbox.kubectl("delete", "fault", "flaky-creates")
    assert "flaky-creates" not in sandbox.kubectl("get", "faults").stdout


def test_cli_conflicts_exit_1(faults_cleared: RunningSandbox) -> None:
    sandbox = faults_cleared
    fault(sandbox, "add", "once", "--pod-crash-loop", "--pod-selector", "e2e-fault=unused")
    again = sandbox.meshcanary(
        "sandbox", "fault", "add", "once", "--pod-crash-loop", "--name", sandbox.name, check=False
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    missing = sandbox.meshcanary(
        "sandbox", "fault", "clear", "once", "never", "--name", sandbox.name, check=False
    )
    assert missing.returncode == 1 and 'fault "never" not found' in missing.stderr
    assert 'fault "once" cleared' in missing.stdout


@requires_kubectl
def test_faults_survive_a_restart(tmp_path: Path) -> None:
    sandbox = start_sandbox(tmp_path, "faults")
    try:
        fault(sandbox, "add", "boom", "--api-error", "500", "--resources", "configmaps")
        fault(sandbox, "add", "bad-proxy", "--pod-never-ready", "--proxy-version", "1.15.*")
        stop_sandbox(sandbox)
        sandbox = start_sandbox(tmp_path, "faults")
        listed = json.loads(fault(sandbox, "list", "-o", "json"))
        assert [item["metadata"]["name"] for item in listed["items"]] == ["bad-proxy", "boom"]
        failed = sandbox.kubectl("get", "configmaps", check=False)
        assert failed.returncode != 0 and 'injected fault "boom"' in failed.stderr
        assert "2 fault(s) cleared" in fault(sandbox, "clear", "--all")
        sandbox.kubectl("get", "configmaps")
    finally:
        stop_sandbox(sandbox)
