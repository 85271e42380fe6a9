"""The IstioControlPlane CRD and a rendered revision in the sandbox, through the real kubectl.

The CRD is applied from `deploy/crds/` as a user would; `kubectl get` must print the seed's
columns; the API server must reject bad specs with its own wording. Then a revision rendered by
`controlplane.render` is applied as is: the sandbox's simulated istiod must pick it up and inject
pods of a namespace labelled for it with the proxy image the injector ConfigMap names, and
`controlplane.status` must call the result Available with one proxy.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcanary.controlplane import render, spec, status
from tests.e2e.conftest import RunningSandbox, requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl]

CRD_FILE = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "istiocontrolplanes.yaml"
SEED_COLUMNS = [
    "NAME",
    "MODE",
    "NETWORK",
    "STATUS",
    "MESH EXPANSION",
    "EXPANSION GW IPS",
    "ERROR",
    "AGE",
]


def icp(name: str, **fields: Any) -> str:
    body = {"apiVersion": "meshcanary.io/v1alpha1", "kind": "IstioControlPlane"}
    return yaml.safe_dump({**body, "metadata": {"name": name}, "spec": fields})


def columns(header: str) -> list[str]:
    """Column titles of a kubectl table: separated by two spaces or more."""
    return re.split(r"\s{2,}", header.strip())


@pytest.fixture
def crd(sandbox: RunningSandbox) -> RunningSandbox:
    sandbox.kubectl("apply", "-f", str(CRD_FILE))
    sandbox.kubectl("wait", "--for=condition=Established", "crd/istiocontrolplanes.meshcanary.io")
    return sandbox


def test_get_prints_the_seed_columns(crd: RunningSandbox, namespace: str) -> None:
    crd.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=icp("cp-v113x", version="1.13.9", meshExpansion={"enabled": True}),
    )
    crd.kubectl("apply", "-n", namespace, "-f", "-", input=icp("cp-v115x", version="1.15.3"))
    patch = {
        "status": {
            "status": "Available",
            "gatewayAddress": ["3.122.28.53", "3.122.43.249"],
            "proxies": 3,
        }
    }
    crd.kubectl(
        "patch", "istiocontrolplane", "cp-v113x", "-n", namespace,
        "--subresource=status", "--type=merge", "-p", json.dumps(patch),
    )  # fmt: skip
    table = crd.kubectl("get", "istiocontrolplanes", "-n", namespace).stdout
    header, *rows = table.splitlines()
    print(table)
    assert columns(header) == SEED_COLUMNS
    assert rows[0].split()[:6] == [
        "cp-v113x", "ACTIVE", "network1", "Available", "true", '["3.122.28.53","3.122.43.249"]'
    ]  # fmt: skip
    assert rows[1].split()[:4] == ["cp-v115x", "ACTIVE", "network1", "false"]

    wide = crd.kubectl("get", "istiocontrolplanes", "-n", namespace, "-o", "wide").stdout
    print(wide)
    header, first, second = wide.splitlines()
    assert columns(header) == [*SEED_COLUMNS, "VERSION", "PROXIES"]
    assert first.split()[-2:] == ["1.13.9", "3"]
    assert second.split()[-1] == "1.15.3"


@pytest.mark.parametrize("short_name", ["icp", "istiocp"])
def test_short_names(crd: RunningSandbox, namespace: str, short_name: str) -> None:
    crd.kubectl("apply", "-n", namespace, "-f", "-", input=icp("cp", version="1.15.3"))
    assert crd.kubectl("get", short_name, "cp", "-n", namespace, "-o", "name").stdout.strip() == (
        "istiocontrolplane.meshcanary.io/cp"
    )


def test_the_api_server_applies_the_defaults(crd: RunningSandbox, namespace: str) -> None:
    crd.kubectl("apply", "-n", namespace, "-f", "-", input=icp("cp", version="1.15.3"))
    stored = json.loads(crd.kubectl("get", "icp", "cp", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"] == {
        "version": "1.15.3",
        "mode": "ACTIVE",
        "networkName": "network1",
        "meshExpansion": {"enabled": False},
        "containerImageConfiguration": {"hub": "docker.io/istio"},
        "istiod": {"deployment": {"replicas": 1}},
        "proxy": {"logLevel": "warning"},
        "clusterID": "Kubernetes",
    }
    assert spec.parse(stored).images.tag == "1.15.3"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "ACTIVE"}, "spec.version: Required value"),
        ({"version": "1.15"}, "spec.version in body should match '^1\\.[0-9]+\\.[0-9]+$'"),
        (
            {"version": "1.15.3", "mode": "FOO"},
            'spec.mode: Unsupported value: "FOO": supported values: "ACTIVE", "PASSIVE"',
        ),
        (
            {"version": "1.15.3", "istiod": {"deployment": {"replicas": -1}}},
            "spec.istiod.deployment.replicas in body should be greater than or equal to 0",
        ),
        (
            {"version": "1.15.3", "proxy": {"logLevel": "loud"}},
            'spec.proxy.logLevel: Unsupported value: "loud"',
        ),
        ({"version": "1.15.3", "unknownField": 1}, 'unknown field "spec.unknownField"'),
    ],
)
def test_bad_specs_are_rejected_with_a_clear_message(
    crd: RunningSandbox, namespace: str, fields: dict[str, Any], message: str
) -> None:
    result = crd.kubectl(
        "apply", "-n", namespace, "-f", "-", input=icp("bad", **fields), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert crd.kubectl("get", "icp", "-n", namespace, "-o", "name").stdout == ""


# -- a rendered revision in the sandbox -----------------------------------------------------------


@pytest.fixture
def workload_namespace(sandbox: RunningSandbox) -> Iterator[str]:
    name = f"w-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    yield name
    sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)


def read(sandbox: RunningSandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def test_a_rendered_revision_runs_injects_and_is_available(
    crd: RunningSandbox, namespace: str, workload_namespace: str
) -> None:
    crd.kubectl("apply", "-n", namespace, "-f", "-", input=icp("cp-v113x", version="1.13.9"))
    cp = spec.parse(read(crd, "icp", "cp-v113x", "-n", namespace))
    manifests = yaml.safe_dump_all(render.render(cp))
    try:
        crd.kubectl("apply", "--server-side", "-f", "-", input=manifests)
        crd.kubectl(
            "rollout", "status", "deployment/istiod-cp-v113x", "-n", namespace, "--timeout=60s"
        )
        crd.kubectl("label", "namespace", workload_namespace, f"istio.io/rev={cp.revision}")
        crd.kubectl("run", "web", "--image=nginx", "-n", workload_namespace)

        pod = read(crd, "pod", "web", "-n", workload_namespace)
        images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
        assert images["istio-proxy"] == "docker.io/istio/proxyv2:1.13.9"
        assert pod["metadata"]["annotations"]["istio.io/rev"] == cp.revision

        result = status.compute_status(
            read(crd, "icp", "cp-v113x", "-n", namespace),
            status.Observed(
                istiod=read(crd, "deployment", "istiod-cp-v113x", "-n", namespace),
                pods=read(crd, "pods", "-A")["items"],
                namespaces=read(crd, "namespaces")["items"],
                webhook_configurations=read(crd, "mutatingwebhookconfigurations")["items"],
            ),
        )
        assert result.status["status"] == "Available", result.status["errorMessage"]
        assert result.status["proxies"] == 1
        assert result.status["namespaces"] == [workload_namespace]
        assert [t.reason for t in result.transitions] == ["Available"]

        crd.kubectl(
            "patch", "icp", "cp-v113x", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": result.status}),
        )  # fmt: skip
        wide = crd.kubectl("get", "icp", "-n", namespace, "-o", "wide").stdout
        print(wide)
        header, row = wide.splitlines()
        assert row.split()[:5] == ["cp-v113x", "ACTIVE", "network1", "Available", "false"]
        assert row.split()[-2:] == ["1.13.9", "1"]
        gw_ips = header.index("EXPANSION GW IPS")
        assert row[gw_ips : header.index("ERROR")].strip() == "", "no address: a blank cell"
    finally:
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                     "clusterrolebindings", "clusterroles"):  # fmt: skip
            crd.kubectl("delete", kind, "-l", render.selector(cp), "--wait=false", check=False)


def test_the_expansion_gateway_address_reaches_the_status(
    crd: RunningSandbox, namespace: str
) -> None:
    crd.kubectl(
        "apply", "-n", namespace, "-f", "-",
        input=icp("cp-v115x", version="1.15.3", meshExpansion={"enabled": True}),
    )  # fmt: skip
    cp = spec.parse(read(crd, "icp", "cp-v115x", "-n", namespace))
    try:
        crd.kubectl(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(render.render(cp))
        )
        crd.kubectl(
            "rollout", "status", "deployment/istiod-cp-v115x", "-n", namespace, "--timeout=60s"
        )
        gateway = wait_for_address(crd, namespace, render.expansion_gateway_name(cp))
        result = status.compute_status(
            read(crd, "icp", "cp-v115x", "-n", namespace),
            status.Observed(
                istiod=read(crd, "deployment", "istiod-cp-v115x", "-n", namespace),
                gateway_service=gateway,
            ),
        )
        assert result.status["status"] == "Available", result.status["errorMessage"]
        (address,) = result.status["gatewayAddress"] or []
        crd.kubectl(
            "patch", "icp", "cp-v115x", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": result.status}),
        )  # fmt: skip
        table = crd.kubectl("get", "icp", "-n", namespace).stdout
        print(table)
        assert table.splitlines()[1].split()[:6] == [
            "cp-v115x", "ACTIVE", "network1", "Available", "true", f'["{address}"]'
        ]  # fmt: skip
    finally:
        for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                     "clusterrolebindings", "clusterroles"):  # fmt: skip
            crd.kubectl("delete", kind, "-l", render.selector(cp), "--wait=false", check=False)


def wait_for_address(sandbox: RunningSandbox, namespace: str, name: str) -> Any:
    """The gateway Service once the sandbox's load-balancer controller gave it an address."""
    deadline = time.monotonic() + 30
    while True:
        service = read(sandbox, "service", name, "-n", namespace)
        if status.gateway_addresses(service) or time.monotonic() > deadline:
            return service
        time.sleep(0.2)
