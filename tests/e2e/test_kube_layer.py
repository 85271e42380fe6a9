"""The kube layer against a real sandbox over HTTPS: connect, CRUD, pagination, apply, prune, watch.

Everything goes through `meshcanary.kube` as the product will use it; lightkube is imported here
only to count requests and to show why custom resources take merge patches. A private sandbox
(started through the CLI like the shared one) hosts the tests that restart the server or
install a CRD, so they cannot disturb other tests.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from lightkube import AsyncClient
from lightkube.types import PatchType

from meshcanary.kube import apply, client, errors, listing, resources
from tests.e2e.conftest import RunningSandbox, running_sandbox

pytestmark = pytest.mark.e2e

LABEL = "e2e.meshcanary.io/owner"


@pytest.fixture
async def kube(sandbox: RunningSandbox) -> AsyncIterator[AsyncClient]:
    async with client.session(str(sandbox.kubeconfig)) as connected:
        yield connected


@pytest.fixture
async def ns(kube: AsyncClient) -> AsyncIterator[str]:
    """A fresh namespace, deleted afterwards (without waiting) so the shared sandbox stays lean."""
    name = f"kube-{uuid.uuid4().hex[:8]}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    await apply.apply_manifests(kube, [namespace])
    yield name
    await apply.delete(kube, resources.Namespace, name)


def configmap(name: str, namespace: str, labels: dict[str, str] | None = None, **data: str) -> Any:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def count_requests(kube: AsyncClient) -> list[httpx2.Request]:
    """Record every HTTP request the client sends (lightkube keeps its httpx2 client private)."""
    sent: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request)

    kube._client._client.event_hooks["request"].append(record)
    return sent


def variant(sandbox: RunningSandbox, tmp_path: Path, change: Any) -> str:
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    change(config)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- connecting ------------------------------------------------------------------------------------


async def test_connect_through_kubeconfig_env_and_context(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    async with client.session(context=f"meshcanary-{sandbox.name}") as kube:
        config = yaml.safe_load(sandbox.kubeconfig.read_text())
        assert client.server_of(kube) == config["clusters"][0]["cluster"]["server"]
        assert kube.namespace == "default"
        assert await listing.collect(kube, resources.Namespace) != []


async def test_connection_errors_are_one_line(sandbox: RunningSandbox, tmp_path: Path) -> None:
    def cluster(config: Any) -> Any:
        return config["clusters"][0]["cluster"]

    cases: list[tuple[Any, type[errors.KubeError], str]] = [
        (lambda c: c["users"][0]["user"].update(token="wrong"), errors.Unauthorized, "rejected"),
        (
            lambda c: cluster(c).update(server=f"https://127.0.0.1:{free_port()}"),
            errors.CannotConnect,
            "cannot connect to https://127.0.0.1:",
        ),
        (
            lambda c: cluster(c).pop("certificate-authority-data"),
            errors.CannotConnect,
            "TLS verification failed",
        ),
    ]
    for change, expected, text in cases:
        with pytest.raises(expected) as caught:
            await client.connect(variant(sandbox, tmp_path, change), timeout=5)
        assert text in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(errors.UnknownContext, match="available: meshcanary-"):
        await client.connect(str(sandbox.kubeconfig), "nope")


# -- reading and writing ---------------------------------------------------------------------------


async def test_namespace_and_configmap_lifecycle(kube: AsyncClient, ns: str) -> None:
    labels = {LABEL: "lifecycle"}
    await apply.apply_manifests(
        kube, [configmap("a", ns, labels, k="1"), configmap("b", ns, labels, k="2")]
    )
    listed = await listing.collect(
        kube, resources.raw(resources.ConfigMap), namespace=ns, labels=labels
    )
    assert sorted(cm["metadata"]["name"] for cm in listed) == ["a", "b"]

    patched = await apply.merge_patch(
        kube, resources.ConfigMap, "a", {"data": {"k": "9"}}, namespace=ns
    )
    assert patched["data"] == {"k": "9"}
    typed = await kube.get(resources.ConfigMap, "a", namespace=ns)
    assert typed.data == {"k": "9"}

    assert await apply.delete(kube, resources.ConfigMap, "b", namespace=ns)
    assert not await apply.delete(kube, resources.ConfigMap, "b", namespace=ns)
    with pytest.raises(errors.NotFound):
        await kube_get(kube, resources.ConfigMap, "b", ns)

    namespaces = [n["metadata"]["name"] async for page in listing.namespaces(kube) for n in page]
    assert ns in namespaces
    assert await apply.delete(kube, resources.Namespace, ns)
    gone = await listing.watch_until(kube, resources.Namespace, None, ns, lambda o: o is None, 30)
    assert gone is None


async def kube_get(kube: AsyncClient, resource: Any, name: str, namespace: str) -> Any:
    with errors.translated():
        return await kube.get(resource, name, namespace=namespace)


async def test_pagination_of_1200_configmaps(kube: AsyncClient, ns: str) -> None:
    labels = {LABEL: "pages"}
    gate = asyncio.Semaphore(24)

    async def create(i: int) -> None:
        async with gate:
            await apply.apply_manifest(kube, configmap(f"cm-{i:04d}", ns, labels, i=str(i)))

    await asyncio.gather(*(create(i) for i in range(1200)))

    sent = count_requests(kube)
    sizes, names = [], set()
    async for page in listing.pages(
        kube, resources.raw(resources.ConfigMap), namespace=ns, limit=500
    ):
        sizes.append(len(page))
        names.update(cm["metadata"]["name"] for cm in page)
    assert sizes == [500, 500, 200]
    assert len(names) == 1200
    lists = [r for r in sent if r.url.path == f"/api/v1/namespaces/{ns}/configmaps"]
    assert len(lists) == 3
    assert [r.url.params.get("limit") for r in lists] == ["500"] * 3
    assert lists[0].url.params.get("continue") is None and lists[1].url.params.get("continue")

    everywhere = [len(p) async for p in listing.pages(kube, resources.ConfigMap, labels=labels)]
    assert everywhere == [listing.DEFAULT_LIMIT, 1200 - listing.DEFAULT_LIMIT]


async def test_server_side_apply_twice_is_a_noop(kube: AsyncClient, ns: str) -> None:
    manifests = [
        configmap("mesh", ns, {LABEL: "ssa"}, mesh="defaultConfig: {}"),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "istiod", "namespace": ns},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "istiod", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    ]
    first = await apply.apply_manifests(kube, copy.deepcopy(manifests))
    second = await apply.apply_manifests(kube, copy.deepcopy(manifests))
    versions = [(o["kind"], o["metadata"]["resourceVersion"]) for o in first]
    assert [(o["kind"], o["metadata"]["resourceVersion"]) for o in second] == versions
    managers = {m["manager"]: m["operation"] for m in second[0]["metadata"]["managedFields"]}
    assert managers == {"meshcanary": "Apply"}

    changed = copy.deepcopy(manifests[0])
    changed["data"]["mesh"] = "defaultConfig: {holdApplicationUntilProxyStarts: true}"
    third = await apply.apply_manifest(kube, changed)
    assert third["metadata"]["resourceVersion"] != first[1]["metadata"]["resourceVersion"]


async def test_dry_run_apply_persists_nothing(kube: AsyncClient, ns: str) -> None:
    answered = await apply.apply_manifest(kube, configmap("ghost", ns, k="v"), dry_run=True)
    assert answered["data"] == {"k": "v"}
    with pytest.raises(errors.NotFound):
        await kube_get(kube, resources.ConfigMap, "ghost", ns)


async def test_prune_by_label(kube: AsyncClient, ns: str) -> None:
    labels = {LABEL: "prune"}
    others = {LABEL: "someone-else"}
    await apply.apply_manifests(
        kube,
        [configmap(n, ns, labels) for n in ("keep-1", "keep-2", "stale")]
        + [configmap("foreign", ns, others)],
    )
    applied = await apply.apply_manifests(
        kube, [configmap(n, ns, labels) for n in ("keep-1", "keep-2")]
    )
    keep = [apply.ref_of(obj) for obj in applied]

    would = await apply.prune(
        kube, [resources.ConfigMap, resources.Secret], labels, keep=keep, namespace=ns, dry_run=True
    )
    assert [str(ref) for ref in would] == [f"ConfigMap {ns}/stale"]
    assert await kube_get(kube, resources.ConfigMap, "stale", ns)

    pruned = await apply.prune(kube, [resources.ConfigMap], labels, keep=keep)
    assert [str(ref) for ref in pruned] == [f"ConfigMap {ns}/stale"]
    left = await listing.collect(
        kube, resources.raw(resources.ConfigMap), namespace=ns, labels={LABEL: None}
    )
    assert sorted(cm["metadata"]["name"] for cm in left) == ["foreign", "keep-1", "keep-2"]


async def test_watch_until_a_condition(kube: AsyncClient, ns: str) -> None:
    await apply.apply_manifest(kube, configmap("flag", ns, state="waiting"))

    async def flip() -> None:
        await asyncio.sleep(0.3)
        await apply.merge_patch(
            kube, resources.ConfigMap, "flag", {"data": {"state": "ready"}}, namespace=ns
        )

    flipper = asyncio.create_task(flip())
    found = await listing.watch_until(
        kube,
        resources.raw(resources.ConfigMap),
        ns,
        "flag",
        lambda cm: cm is not None and cm["data"]["state"] == "ready",
        10,
    )
    await flipper
    assert found is not None and found["data"]["state"] == "ready"

    appears = asyncio.create_task(
        listing.watch_until(kube, resources.ConfigMap, ns, "late", lambda cm: cm is not None, 10)
    )
    await asyncio.sleep(0.2)
    await apply.apply_manifest(kube, configmap("late", ns))
    late = await appears
    assert late is not None and late.metadata.name == "late"

    with pytest.raises(errors.WaitTimeout, match=f"ConfigMap {ns}/flag"):
        await listing.watch_until(kube, resources.ConfigMap, ns, "flag", lambda cm: False, 0.5)


# -- a private sandbox: our CRD, and a server restart under a watch ------------------------------


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("kube-layer-home"), "kube-layer") as running:
        yield running


def sandbox_cli(sandbox: RunningSandbox, *args: str) -> None:
    env = {**os.environ, "MESHCANARY_HOME": str(sandbox.home)}
    subprocess.run(
        [sys.executable, "-m", "meshcanary.cli", "sandbox", *args, "--name", sandbox.name],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


ICP_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "istiocontrolplanes.meshcanary.io"},
    "spec": {
        "group": "meshcanary.io",
        "scope": "Namespaced",
        "names": {
            "plural": "istiocontrolplanes",
            "singular": "istiocontrolplane",
            "kind": "IstioControlPlane",
            "listKind": "IstioControlPlaneList",
            "shortNames": ["icp"],
        },
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def established(crd: Any) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


async def test_istio_control_plane_custom_resource(private: RunningSandbox) -> None:
    async with client.session(str(private.kubeconfig)) as kube:
        await apply.apply_manifests(kube, [ICP_CRD])
        crd = resources.raw(resources.CustomResourceDefinition)
        await listing.watch_until(kube, crd, None, ICP_CRD["metadata"]["name"], established, 10)

        icp = {
            "apiVersion": "meshcanary.io/v1alpha1",
            "kind": "IstioControlPlane",
            "metadata": {"name": "cp-v115x", "namespace": "default", "labels": {LABEL: "icp"}},
            "spec": {"version": "1.15.3", "mode": "ACTIVE"},
        }
        created = await apply.apply_manifest(kube, icp)
        assert created["spec"] == {"version": "1.15.3", "mode": "ACTIVE"}
        status = await apply.merge_patch(
            kube,
            resources.IstioControlPlane,
            "cp-v115x",
            {"status": {"status": "Available", "proxies": 3}},
            namespace="default",
            status=True,
        )
        assert status["status"] == {"status": "Available", "proxies": 3}
        read = await kube.get(resources.IstioControlPlane, "cp-v115x", namespace="default")
        assert read["spec"]["version"] == "1.15.3" and read.status["status"] == "Available"

        again = await apply.apply_manifest(kube, icp)  # SSA leaves the status alone
        assert again["status"]["proxies"] == 3

        with pytest.raises(errors.UnsupportedMediaType), errors.translated():
            await kube.patch(
                resources.IstioControlPlane,
                "cp-v115x",
                {"spec": {"mode": "PASSIVE"}},
                namespace="default",
                patch_type=PatchType.STRATEGIC,
            )
        listed = await listing.collect(kube, resources.IstioControlPlane, labels={LABEL: "icp"})
        assert [o["metadata"]["name"] for o in listed] == ["cp-v115x"]


async def test_watch_resumes_across_a_server_restart(private: RunningSandbox) -> None:
    """The watch outlives the server: it backs off while down and resumes from its version.

    (A resumed version the restarted server no longer knows answers 410 and the watch relists;
    that path is pinned down in tests/unit/kube/test_listing.py.)
    """
    async with client.session(str(private.kubeconfig)) as kube:
        await apply.apply_manifest(kube, configmap("restart", "default", state="before"))
        sent = count_requests(kube)
        waiting = asyncio.create_task(
            listing.watch_until(
                kube,
                resources.raw(resources.ConfigMap),
                "default",
                "restart",
                lambda cm: cm is not None and cm["data"]["state"] == "after",
                60,
            )
        )
        await asyncio.sleep(0.3)
        port = client.server_of(kube).rsplit(":", 1)[1]
        sandbox_cli(private, "down")
        await asyncio.sleep(0.5)  # the watch now fails to reconnect and backs off
        assert not waiting.done()
        sandbox_cli(private, "up", "--port", port)
        async with client.session(str(private.kubeconfig)) as other:
            await apply.merge_patch(
                other,
                resources.ConfigMap,
                "restart",
                {"data": {"state": "after"}},
                namespace="default",
            )
        found = await waiting
        assert found is not None and found["data"]["state"] == "after"
        watches = [r for r in sent if r.url.params.get("watch") == "true"]
        assert len(watches) >= 2, "watched before and after the restart"
        assert all(r.url.params.get("resourceVersion") for r in watches), "resumed, not restarted"
