"""Istio's shared CRDs and the deploy/ manifests, against a real sandbox API server.

`istio_crds_sync.ensure` as the operator calls it: CRDs for 1.15 are installed, a 1.17 control
plane upgrades them, a 1.15 one alone changes nothing. Objects stored before an upgrade stay
readable, and kubectl prints Istio's columns. Then the manifests a user applies
(`kubectl apply --dry-run=server -f deploy/operator/`).

Each test gets its own sandbox: the CRDs are cluster-scoped, and the shared sandbox's other
tests must not see (or race) them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshcanary.controlplane import istio_crds, istio_crds_sync
from meshcanary.kube import apply, client, errors, listing, resources
from meshcanary.kube.client import Client
from meshcanary.mesh.versions import Version
from tests.e2e.conftest import RunningSandbox, requires_kubectl, start_sandbox, stop_sandbox

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
V1_15, V1_17, V1_22, V1_28 = Version(1, 15, 3), Version(1, 17, 2), Version(1, 22, 1), Version(1, 28)
AP = "authorizationpolicies.security.istio.io"
RA = "requestauthentications.security.istio.io"
VS = "virtualservices.networking.istio.io"


@pytest.fixture
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    home = tmp_path_factory.mktemp("istio-crds-home")
    running = start_sandbox(home, f"crds-{uuid.uuid4().hex[:6]}")
    try:
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture
async def kube(private: RunningSandbox) -> AsyncIterator[Client]:
    async with client.session(str(private.kubeconfig)) as connected:
        yield connected


async def crds(kube: Client) -> dict[str, dict[str, Any]]:
    return {crd["metadata"]["name"]: crd for crd in await istio_crds_sync.installed(kube)}


def served(crd: dict[str, Any]) -> list[str]:
    return sorted(v["name"] for v in crd["spec"]["versions"] if v["served"])


def storage(crd: dict[str, Any]) -> str:
    (name,) = [v["name"] for v in crd["spec"]["versions"] if v["storage"]]
    return str(name)


def label(crd: dict[str, Any]) -> str:
    return str(crd["metadata"]["labels"][istio_crds.VERSION_LABEL])


async def established(kube: Client, name: str) -> None:
    def ready(obj: Any) -> bool:
        conditions = ((obj or {}).get("status") or {}).get("conditions") or ()
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    crd = resources.raw(resources.CustomResourceDefinition)
    await listing.watch_until(kube, crd, None, name, ready, 10)


def policy(api_version: str, name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["evil"]}}]}]},
    }


async def test_install_upgrade_and_never_downgrade(kube: Client, private: RunningSandbox) -> None:
    # A 1.15 control plane: all fourteen kinds, as Istio 1.15 serves them.
    installed = await istio_crds_sync.ensure(kube, [V1_15])
    assert len(installed) == 14 and all(line.startswith("installed ") for line in installed)
    first = await crds(kube)
    assert served(first[AP]) == ["v1beta1"] and label(first[AP]) == "1.15.3"
    assert served(first[VS]) == ["v1alpha3", "v1beta1"] and storage(first[VS]) == "v1alpha3"
    await established(kube, AP)

    private.kubectl("create", "namespace", "mesh")
    private.kubectl(
        "apply", "-f", "-", input=json.dumps(policy("security.istio.io/v1beta1", "deny", "mesh"))
    )
    vs = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "mesh"},
        "spec": {"hosts": ["reviews"], "gateways": ["mesh"], "http": [{"route": []}]},
    }
    private.kubectl("apply", "-f", "-", input=json.dumps(vs))
    table = private.kubectl("get", "vs", "-n", "mesh").stdout
    assert table.split("\n")[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert '["mesh"]' in table and '["reviews"]' in table

    # A 1.17 control plane joins: only the kinds that gain security/v1 change.
    upgraded = await istio_crds_sync.ensure(kube, [V1_15, V1_17])
    assert upgraded == [
        f"upgraded {AP}: Istio 1.17.2 adds serves v1",
        f"upgraded {RA}: Istio 1.17.2 adds serves v1",
    ]
    second = await crds(kube)
    assert served(second[AP]) == ["v1", "v1beta1"] and storage(second[AP]) == "v1beta1"
    assert label(second[AP]) == "1.17.2" and label(second[VS]) == "1.15.3"
    assert second[VS]["metadata"]["resourceVersion"] == first[VS]["metadata"]["resourceVersion"]
    await established(kube, AP)
    read = private.kubectl("get", f"{AP.replace('.security', '.v1.security')}", "-n", "mesh")
    assert "deny" in read.stdout  # the v1beta1 object, read at v1

    # Only the 1.15 control plane is left (or a stale caller): nothing moves back.
    assert await istio_crds_sync.ensure(kube, [V1_15]) == []
    third = await crds(kube)
    assert served(third[AP]) == ["v1", "v1beta1"] and label(third[AP]) == "1.17.2"
    assert {n: c["metadata"]["resourceVersion"] for n, c in third.items()} == {
        n: c["metadata"]["resourceVersion"] for n, c in second.items()
    }

    # 1.28 moves security storage to v1; v1beta1 stays served and recorded as stored.
    await istio_crds_sync.ensure(kube, [V1_28])
    fourth = await crds(kube)
    assert storage(fourth[AP]) == "v1" and served(fourth[AP]) == ["v1", "v1beta1"]
    assert set(fourth[AP]["status"]["storedVersions"]) == {"v1", "v1beta1"}
    assert await istio_crds_sync.ensure(kube, [V1_15, V1_22]) == []
    assert storage((await crds(kube))[AP]) == "v1"


async def test_dry_run_changes_nothing(kube: Client) -> None:
    would = await istio_crds_sync.ensure(kube, [V1_22], dry_run=True)
    assert len(would) == 14
    assert await crds(kube) == {}


async def test_a_crd_installed_by_someone_else_is_upgraded_in_place(kube: Client) -> None:
    """Helm or istioctl installed 1.15's CRD (no meshcanary label, another field manager)."""
    helm = istio_crds.definitions(V1_15)[0]
    helm["metadata"]["labels"] = {"app": "istio-pilot", "release": "istio"}
    await apply.apply_manifest(kube, helm, field_manager="helm")
    changed = await istio_crds_sync.ensure(kube, [V1_22])
    assert f"upgraded {VS}: Istio 1.22.1 adds serves v1, stores v1beta1" in changed
    vs = (await crds(kube))[VS]
    assert served(vs) == ["v1", "v1alpha3", "v1beta1"] and storage(vs) == "v1beta1"
    assert vs["metadata"]["labels"]["release"] == "istio"  # Helm's fields stay Helm's
    assert vs["status"]["storedVersions"] == ["v1alpha3", "v1beta1"]


async def test_stale_resource_version_is_refused_by_the_server(kube: Client) -> None:
    """The precondition `ensure` relies on for upgrades: SSA with a stale resourceVersion: 409."""
    await istio_crds_sync.ensure(kube, [V1_15])
    (decision,) = [
        d for d in istio_crds.decide(await istio_crds_sync.installed(kube), V1_17) if d.name == AP
    ]
    stale = dict(decision.manifest or {})
    stale["metadata"] = {**stale["metadata"], "resourceVersion": "1"}
    with pytest.raises(errors.Conflict):
        await apply.apply_manifest(kube, stale)


# -- deploy/ --------------------------------------------------------------------------------------


@requires_kubectl
def test_deploy_operator_applies_with_server_dry_run(private: RunningSandbox) -> None:
    """The documented order: CRDs, then everything in deploy/operator (here checked, not run)."""
    private.kubectl("apply", "-f", str(DEPLOY / "crds"))
    private.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=20s")
    private.kubectl("apply", "-f", str(DEPLOY / "operator" / "namespace.yaml"))
    result = private.kubectl("apply", "--dry-run=server", "-f", str(DEPLOY / "operator"))
    created = result.stdout
    for kind_name in (
        "clusterrole.rbac.authorization.k8s.io/meshcanary-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/meshcanary-operator",
        "deployment.apps/meshcanary-operator",
        "service/meshcanary-operator-webhook",
        "serviceaccount/meshcanary-operator",
        "clusterkopfpeering.kopf.dev/meshcanary",
    ):
        assert kind_name in created
    assert "(server dry run)" in created
    assert private.kubectl("get", "deployments", "-A", "-o", "name").stdout.strip() == ""


@requires_kubectl
def test_kustomization_builds_everything(private: RunningSandbox) -> None:
    built = private.kubectl("kustomize", str(DEPLOY)).stdout
    kinds = sorted(
        line.split(": ", 1)[1] for line in built.splitlines() if line.startswith("kind:")
    )
    assert kinds == sorted(
        [
            "ClusterKopfPeering",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "Service",
            "ServiceAccount",
        ]
    )
