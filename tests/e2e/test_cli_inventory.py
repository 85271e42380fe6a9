"""`meshcanary cp list`, `ns list`, `proxies` and `cp delete` against the sandbox, run as a user
runs them (`python -m meshcanary.cli`), next to the real kubectl.

Each test installs its own two SMM-style revisions, `cp-a` (1.13.9) and `cp-b` (1.15.3), in a
namespace of its own (`tests/e2e/istio_manifests.py`: hand-written istiod Deployments whose
pods become Ready, so the sandbox's simulated istiod injects for their webhooks), so tests
sharing the session sandbox never see each other's proxies. `-n` filters keep the output to
the test's namespaces. Decision tested here: an unknown `-n` namespace is a usage error (exit 2).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.e2e import istio_manifests
from tests.e2e.conftest import RunningSandbox, requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl, pytest.mark.timeout(180)]

T = TypeVar("T")
CRD = Path(__file__).parents[2] / "deploy" / "crds" / "istiocontrolplanes.yaml"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def eventually(check: Callable[[], T], timeout: float = 20.0) -> T:
    """`check()` once it stops raising AssertionError (pods terminate asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Mesh:
    """Two revisions installed in a private istio namespace, and helpers around them."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.istio = unique("istio")
        self.rev_a = f"cp-a.{self.istio}"
        self.rev_b = f"cp-b.{self.istio}"

    def install(self, *cps: tuple[str, str]) -> None:
        self.sandbox.kubectl("create", "namespace", self.istio)
        objects = [o for cp, v in cps for o in istio_manifests.smm_revision(cp, v, self.istio)]
        self.sandbox.kubectl("apply", "-f", "-", input=istio_manifests.as_manifest(objects))
        for cp, _ in cps:
            self.rollout(f"istiod-{cp}", self.istio)

    def rollout(self, deployment: str, namespace: str) -> None:
        self.sandbox.kubectl(
            "rollout", "status", f"deployment/{deployment}", "-n", namespace, "--timeout=60s"
        )

    def app_namespace(self, revision: str, apps: dict[str, int]) -> str:
        """A namespace attached to `revision` with Deployments of `apps` (name: replicas)."""
        name = unique("app")
        self.sandbox.kubectl("create", "namespace", name)
        self.sandbox.kubectl("label", "namespace", name, f"istio.io/rev={revision}")
        for app, replicas in apps.items():
            manifest = istio_manifests.app(app, replicas)
            self.sandbox.kubectl("apply", "-n", name, "-f", "-", input=manifest)
        for app in apps:
            self.rollout(app, name)
        return name

    def json(self, *args: str) -> Any:
        return json.loads(self.sandbox.meshcanary(*args, "-o", "json").stdout)

    def namespace_row(self, namespace: str) -> dict[str, Any]:
        (row,) = self.json("ns", "list", "-n", namespace)
        return dict(row)

    def control_planes(self) -> dict[str, dict[str, Any]]:
        rows = self.json("cp", "list", "-n", self.istio)
        return {row["name"]: row for row in rows}


@pytest.fixture
def mesh(sandbox: RunningSandbox) -> Iterator[Mesh]:
    installed = Mesh(sandbox)
    installed.install(("cp-a", "1.13.9"), ("cp-b", "1.15.3"))
    yield installed


# -- listing ----------------------------------------------------------------------------------


def test_cp_list_shows_both_revisions(mesh: Mesh) -> None:
    shop = mesh.app_namespace(mesh.rev_a, {"web": 2})
    rows = mesh.control_planes()
    a, b = rows["istiod-cp-a"], rows["istiod-cp-b"]
    assert (a["namespace"], a["version"], a["status"], a["revision"]) == (
        mesh.istio,
        "1.13.9",
        "Available",
        mesh.rev_a,
    )
    assert a["proxies"] == 2 and a["namespaces"] == [shop]
    assert (b["version"], b["proxies"], b["namespaces"]) == ("1.15.3", 0, [])
    table = mesh.sandbox.meshcanary("cp", "list", "-n", mesh.istio).stdout.splitlines()
    assert table[0].split() == [
        "NAME", "NAMESPACE", "VERSION", "STATUS", "REVISION", "PROXIES", "NAMESPACES", "TAGS"
    ]  # fmt: skip
    assert table[1].split() == ["istiod-cp-a", mesh.istio, "1.13.9", "Available", mesh.rev_a,
                                "2", "1", "-"]  # fmt: skip
    wide = mesh.sandbox.meshcanary("cp", "list", "-n", mesh.istio, "-o", "wide").stdout
    assert wide.splitlines()[1].split()[-2:] == ["Deployment", shop]
    as_yaml = yaml.safe_load(mesh.sandbox.meshcanary("cp", "list", "-o", "yaml").stdout)
    assert {row["revision"] for row in as_yaml} >= {mesh.rev_a, mesh.rev_b}


def test_ns_list_and_proxies(mesh: Mesh) -> None:
    shop = mesh.app_namespace(mesh.rev_a, {"web": 2, "api": 1})
    row = mesh.namespace_row(shop)
    assert row["revision"] == mesh.rev_a
    assert row["pod_revisions"] == [{"revision": mesh.rev_a, "pods": 3, "versions": ["1.13.9"]}]
    assert (row["needs_restart"], row["without_sidecar"], row["live_pods"]) == (0, 0, 3)
    table = mesh.sandbox.meshcanary("ns", "list", "-n", shop).stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "REVISION", "POD", "REVISIONS", "NEEDS", "RESTART",
                                "WITHOUT", "SIDECAR"]  # fmt: skip
    assert table[1].split() == [shop, mesh.rev_a, f"{mesh.rev_a}:", "3", "(1.13.9)", "0", "0"]
    everywhere = mesh.sandbox.meshcanary("ns", "list", "-A").stdout
    assert shop in everywhere and "kube-system" in everywhere

    proxies = mesh.json("proxies", "-n", shop)
    assert len(proxies) == 3
    assert {p["owner"] for p in proxies} == {"deployment/web", "deployment/api"}
    assert all(p["revision"] == mesh.rev_a and p["version"] == "1.13.9" for p in proxies)
    assert all(p["ready"] and p["matches"] for p in proxies)
    assert shop in mesh.sandbox.meshcanary("proxies", "-A").stdout
    plain = mesh.sandbox.meshcanary("proxies", "-n", shop).stdout.splitlines()
    assert plain[0].split() == ["NAMESPACE", "POD", "OWNER", "REVISION", "VERSION", "READY",
                                "MATCHES"]  # fmt: skip


def test_missing_revision_and_pods_without_sidecar(mesh: Mesh, sandbox: RunningSandbox) -> None:
    ghost = unique("ghost")
    sandbox.kubectl("create", "namespace", ghost)
    sandbox.kubectl("apply", "-n", ghost, "-f", "-", input=istio_manifests.app("web", 2))
    mesh.rollout("web", ghost)
    sandbox.kubectl("label", "namespace", ghost, f"istio.io/rev=cp-z.{mesh.istio}")
    row = mesh.namespace_row(ghost)
    assert row["revision"] == f"MISSING/cp-z.{mesh.istio}"
    assert (row["without_sidecar"], row["needs_restart"]) == (2, 0)
    sandbox.kubectl("label", "namespace", ghost, f"istio.io/rev={mesh.rev_b}", "--overwrite")
    row = mesh.namespace_row(ghost)
    assert (row["revision"], row["needs_restart"]) == (mesh.rev_b, 2)


# -- bad input --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line_error(result: Any, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ") and text in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_bad_input(sandbox: RunningSandbox, tmp_path: Path) -> None:
    run = sandbox.meshcanary
    one_line_error(run("ns", "list", "-n", "no-such-ns", check=False), 2, "no-such-ns")
    one_line_error(run("proxies", "-n", "no-such-ns", check=False), 2, "not found")
    one_line_error(run("ns", "list", "--context", "nope", check=False), 2, "context 'nope'")
    one_line_error(run("ns", "list", "-A", "-n", "default", check=False), 2, "together")
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(yaml.safe_dump(config))
    result = run("cp", "list", "--kubeconfig", str(unreachable), check=False)
    one_line_error(result, 2, "cannot connect to https://127.0.0.1:")
    result = run("cp", "delete", "no-such-cp", "-n", "default", check=False)
    one_line_error(result, 2, "istiocontrolplane default/no-such-cp not found")
    assert run("ns", "list", "-o", "xml", check=False).returncode == 2


# -- cp delete --------------------------------------------------------------------------------


def control_plane(name: str, namespace: str, version: str) -> str:
    return json.dumps(
        {
            "apiVersion": "meshcanary.io/v1alpha1",
            "kind": "IstioControlPlane",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"version": version},
        }
    )


def test_cp_delete_refused_then_allowed(mesh: Mesh, sandbox: RunningSandbox) -> None:
    sandbox.kubectl("apply", "-f", str(CRD))
    sandbox.kubectl("wait", "--for=condition=Established", "crd/istiocontrolplanes.meshcanary.io")
    sandbox.kubectl("apply", "-f", "-", input=control_plane("cp-a", mesh.istio, "1.13.9"))
    shop = mesh.app_namespace(mesh.rev_a, {"web": 2})
    rows = mesh.control_planes()
    assert rows["cp-a"]["source"] == "IstioControlPlane" and rows["cp-a"]["proxies"] == 2

    refused = sandbox.meshcanary("cp", "delete", "cp-a", "-n", mesh.istio, check=False)
    one_line_error(refused, 1, f"still serves 2 live proxies ({shop}: 2)")
    assert f"selected by namespace {shop}" in refused.stderr
    upstream = sandbox.meshcanary("cp", "delete", "cp-b", "-n", mesh.istio, check=False)
    one_line_error(upstream, 2, "installed by istioctl or Helm")
    dry = sandbox.meshcanary("cp", "delete", f"cp-a.{mesh.istio}", "--dry-run", "--force")
    assert f"would delete Deployment {mesh.istio}/istiod-cp-a" in dry.stdout
    assert sandbox.kubectl("get", "deployment", "istiod-cp-a", "-n", mesh.istio).returncode == 0

    sandbox.kubectl("label", "namespace", shop, f"istio.io/rev={mesh.rev_b}", "--overwrite")
    sandbox.kubectl("rollout", "restart", "deployment", "-n", shop)
    mesh.rollout("web", shop)
    eventually(lambda: _assert_proxies(mesh, "cp-a", 0))
    deleted = sandbox.meshcanary("cp", "delete", "cp-a", "-n", mesh.istio, "--timeout", "60")
    assert f"istiocontrolplane {mesh.istio}/cp-a deleted" in deleted.stdout
    assert "MutatingWebhookConfiguration" in deleted.stderr  # one progress line per object
    for kind in ("deployment", "service"):
        gone = sandbox.kubectl("get", kind, "-n", mesh.istio, "-l", f"istio.io/rev={mesh.rev_a}")
        assert gone.stdout.strip() == "", gone.stdout
    webhooks = sandbox.kubectl("get", "mutatingwebhookconfigurations", "-o", "name").stdout
    assert f"istio-sidecar-injector-cp-a-{mesh.istio}" not in webhooks
    assert "cp-a" not in mesh.control_planes()


def _assert_proxies(mesh: Mesh, name: str, count: int) -> None:
    assert mesh.control_planes()[name]["proxies"] == count


# -- the seed's manual procedure, stage by stage ----------------------------------------------


def test_seed_procedure_reported_at_each_stage(mesh: Mesh, sandbox: RunningSandbox) -> None:
    ns = mesh.app_namespace(mesh.rev_a, {"web": 2, "api": 2})

    # before the relabel: on cp-a, nothing to restart
    row = mesh.namespace_row(ns)
    assert row["revision"] == mesh.rev_a and row["needs_restart"] == 0
    cps = mesh.control_planes()
    assert cps["istiod-cp-a"]["proxies"] == 4 and cps["istiod-cp-a"]["namespaces"] == [ns]
    assert cps["istiod-cp-b"]["proxies"] == 0

    # kubectl label ns X istio.io/rev=cp-b... --overwrite: selects cp-b, every pod needs a restart
    sandbox.kubectl("label", "ns", ns, f"istio.io/rev={mesh.rev_b}", "--overwrite")
    row = mesh.namespace_row(ns)
    assert row["revision"] == mesh.rev_b and row["needs_restart"] == 4
    assert row["pod_revisions"] == [{"revision": mesh.rev_a, "pods": 4, "versions": ["1.13.9"]}]
    cps = mesh.control_planes()
    assert cps["istiod-cp-a"]["namespaces"] == [] and cps["istiod-cp-b"]["namespaces"] == [ns]
    assert cps["istiod-cp-a"]["proxies"] == 4
    assert {p["matches"] for p in mesh.json("proxies", "-n", ns)} == {False}

    # kubectl rollout restart deployment -n X; rollout status: all on cp-b, cp-a serves 0
    sandbox.kubectl("rollout", "restart", "deployment", "-n", ns)
    for app in ("web", "api"):
        mesh.rollout(app, ns)

    def migrated() -> None:
        row = mesh.namespace_row(ns)
        assert row["needs_restart"] == 0
        assert row["pod_revisions"] == [{"revision": mesh.rev_b, "pods": 4, "versions": ["1.15.3"]}]
        cps = mesh.control_planes()
        assert cps["istiod-cp-a"]["proxies"] == 0 and cps["istiod-cp-b"]["proxies"] == 4

    eventually(migrated)
