"""`meshcanary validate` against the sandbox: known problems in, exactly those findings out.

The test installs Istio 1.15's CRDs (created only where missing, so other tests' CRDs in the
shared sandbox are left alone), one SMM-style 1.15.3 revision in a private istio namespace, and
sample configuration with known problems: an EnvoyFilter with a relative patch and a proxyVersion
match (MC0105), a VirtualService whose `hosts` is a string (MC0301), a bare pod in a meshed
namespace (MC0209), a namespace with both injection labels (MC0201) and a namespace label naming
a revision that does not exist (MC0203). The sandbox is shared by the session's tests, so
findings are compared on this test's own namespaces.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from meshcanary.controlplane import istio_crds
from meshcanary.mesh.versions import Version
from tests.e2e import istio_manifests
from tests.e2e.conftest import RunningSandbox, requires_kubectl

pytestmark = [pytest.mark.e2e, requires_kubectl, pytest.mark.timeout(180)]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def apply(sandbox: RunningSandbox, *objects: dict[str, Any]) -> None:
    sandbox.kubectl("apply", "-f", "-", input=istio_manifests.as_manifest(list(objects)))


def install_crds(sandbox: RunningSandbox) -> None:
    crds = istio_crds.definitions(Version(1, 15, 3))
    sandbox.kubectl("create", "-f", "-", input=istio_manifests.as_manifest(crds), check=False)
    sandbox.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def envoy_filter(ns: str) -> dict[str, Any]:
    patch = {
        "applyTo": "HTTP_FILTER",
        "match": {"context": "SIDECAR_INBOUND", "proxy": {"proxyVersion": "^1\\.1[5-9].*"}},
        "patch": {"operation": "INSERT_BEFORE", "value": {"name": "envoy.filters.http.lua"}},
    }
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "lua", "namespace": ns},
        "spec": {"configPatches": [patch]},
    }


def bad_virtual_service(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": ns},
        "spec": {"hosts": "reviews", "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
    }


def bare_pod(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": ns},
        "spec": {"containers": [{"name": "debug", "image": "busybox:1.36"}]},
    }


def findings(result: Any, namespaces: set[str]) -> set[tuple[str, str]]:
    """(code, resource) of the findings about `namespaces` (or those Namespaces themselves)."""
    document = json.loads(result.stdout)
    found = set()
    for item in document["findings"]:
        resource = item["resource"]
        ours = resource["namespace"] in namespaces or (
            resource["kind"] == "Namespace" and resource["name"] in namespaces
        )
        if ours:
            where = f"{resource['namespace']}/" if resource["namespace"] else ""
            found.add((item["code"], f"{resource['kind']}/{where}{resource['name']}"))
    return found


def test_validate_reports_exactly_the_known_problems(sandbox: RunningSandbox) -> None:
    install_crds(sandbox)
    istio, app, both, missing, clean = (
        unique(p) for p in ("istio", "app", "both", "missing", "clean")
    )
    rev = f"cp-v115x.{istio}"
    sandbox.kubectl("create", "namespace", istio)
    apply(sandbox, *istio_manifests.smm_revision("cp-v115x", "1.15.3", istio))
    sandbox.kubectl("rollout", "status", "deployment/istiod-cp-v115x", "-n", istio, "--timeout=60s")
    apply(
        sandbox,
        namespace(app, **{"istio.io/rev": rev}),
        namespace(both, **{"istio.io/rev": rev, "istio-injection": "disabled"}),
        namespace(missing, **{"istio.io/rev": f"gone.{istio}"}),
        namespace(clean),
    )
    apply(sandbox, envoy_filter(app), bad_virtual_service(app), bare_pod(app))

    result = sandbox.meshcanary("validate", "--to-version", "1.17", "-A", "-o", "json", check=False)

    assert result.returncode == 1, result.stderr
    assert findings(result, {istio, app, both, missing, clean}) == {
        ("MC0105", f"EnvoyFilter/{app}/lua"),
        ("MC0301", f"VirtualService/{app}/reviews"),
        ("MC0209", f"Pod/{app}/debug"),
        ("MC0201", f"Namespace/{both}"),
        ("MC0203", f"Namespace/{missing}"),
    }
    assert json.loads(result.stdout)["target"] == "1.17.0"
    assert "error" in result.stderr  # the summary line

    fine = sandbox.meshcanary("validate", "--to", rev, "-n", clean, check=False)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "0 errors, 0 warnings (target 1.15.3)" in fine.stdout

    table = sandbox.meshcanary("validate", "--to-version", "1.17", "-n", app, check=False)
    assert table.returncode == 1
    assert table.stdout.splitlines()[0].split() == [
        "SEVERITY",
        "CODE",
        "RESOURCE",
        "MESSAGE",
        "FIX",
    ]

    usage = sandbox.meshcanary("validate", "--to", "nope", "-n", clean, check=False)
    assert usage.returncode == 2 and "not found" in usage.stderr
