"""The in-process istiod answers webhooks only while a Ready istiod pod backs the Service."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from istio_mesh_builder import ISTIO_NS, OPTS, Mesh

from meshcanary.sandbox.admission.webhooks import AdmissionWebhooks
from meshcanary.sandbox.apiserver import errors
from meshcanary.sandbox.apiserver.patching import apply_json_patch
from meshcanary.sandbox.istio.resolver import IstiodResolver, config_problem

SMM_SERVICE = "istiod-cp-v115x"


def pod_review() -> dict[str, Any]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "app", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
    }
    return review("CREATE", pod)


def review(operation: str, obj: Any) -> dict[str, Any]:
    request = {"uid": "u-1", "namespace": "app", "operation": operation, "object": obj}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def patch_ops(answer: dict[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(answer["response"]["patch"]))
    return ops


def config(kind: str, api_version: str = "networking.istio.io/v1beta1", spec: Any = None) -> Any:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec or {}}


@pytest.fixture
async def smm(mesh: Mesh) -> IstiodResolver:
    await mesh.istiod(SMM_SERVICE, "cp-v115x.istio-system")
    return IstiodResolver(mesh.cluster)


async def test_inject_path_resolves_to_the_revisions_injector(smm: IstiodResolver) -> None:
    handler = smm.resolve(ISTIO_NS, SMM_SERVICE, 443, "/inject")
    assert handler is not None
    answer = await handler(pod_review())
    response = answer["response"]
    assert (response["uid"], response["allowed"]) == ("u-1", True)
    pod = apply_json_patch(pod_review()["request"]["object"], patch_ops(answer))
    assert pod["metadata"]["labels"]["istio.io/rev"] == "cp-v115x.istio-system"
    assert pod["spec"]["containers"][-1]["image"] == "docker.io/istio/proxyv2:1.15.3"


async def test_inject_subpaths_carry_cluster_and_network(smm: IstiodResolver) -> None:
    handler = smm.resolve(ISTIO_NS, SMM_SERVICE, 443, "/inject/cluster/east/net/net1")
    assert handler is not None
    ops = patch_ops(await handler(pod_review()))
    [proxy] = [op["value"] for op in ops if op["path"] == "/spec/containers/1"]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert (env["ISTIO_META_CLUSTER_ID"], env["ISTIO_META_NETWORK"]) == ("east", "net1")


@pytest.mark.parametrize(
    ("namespace", "name", "port", "path"),
    [
        (ISTIO_NS, SMM_SERVICE, 443, "/metrics"),
        (ISTIO_NS, SMM_SERVICE, 443, "/injector"),
        (ISTIO_NS, SMM_SERVICE, 8443, "/inject"),
        (ISTIO_NS, "istiod-cp-v116x", 443, "/inject"),
        ("default", SMM_SERVICE, 443, "/inject"),
    ],
)
async def test_unknown_services_ports_and_paths_do_not_resolve(
    smm: IstiodResolver, namespace: str, name: str, port: int, path: str
) -> None:
    assert smm.resolve(namespace, name, port, path) is None


async def test_no_ready_istiod_pod_no_handler(mesh: Mesh) -> None:
    pod = await mesh.istiod("istiod", "default", ready=False)
    resolver = IstiodResolver(mesh.cluster)
    assert resolver.resolve(ISTIO_NS, "istiod", 443, "/inject") is None
    assert resolver.resolve(ISTIO_NS, "istiod", 443, "/validate") is None
    await mesh.set_ready(pod, True)
    assert resolver.resolve(ISTIO_NS, "istiod", 443, "/inject") is not None
    await mesh.set_ready(pod, False)
    assert resolver.resolve(ISTIO_NS, "istiod", 443, "/inject") is None


async def test_a_tag_service_answers_with_its_revision(mesh: Mesh) -> None:
    """A revision tag's webhook points at the revision's Service: pods name the revision."""
    await mesh.istiod("istiod-1-17-2", "1-17-2", image="gcr.io/istio-release/pilot:1.17.2")
    handler = IstiodResolver(mesh.cluster).resolve(ISTIO_NS, "istiod-1-17-2", 443, "/inject")
    assert handler is not None
    ops = patch_ops(await handler(pod_review()))
    [annotations] = [op["value"] for op in ops if op["path"] == "/metadata/annotations"]
    assert annotations["istio.io/rev"] == "1-17-2"


async def test_validate_accepts_istio_config_and_rejects_the_rest(smm: IstiodResolver) -> None:
    handler = smm.resolve(ISTIO_NS, SMM_SERVICE, 443, "/validate")
    assert handler is not None
    ok = (await handler(review("CREATE", config("VirtualService"))))["response"]
    assert ok == {"uid": "u-1", "allowed": True}
    bad = (await handler(review("UPDATE", config("Frobnicator"))))["response"]
    assert bad["allowed"] is False
    assert bad["status"]["message"] == "unrecognized type Frobnicator"
    deleted = (await handler(review("DELETE", None)))["response"]
    assert deleted["allowed"] is True


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (config("AuthorizationPolicy", "security.istio.io/v1"), None),
        (config("Telemetry", "telemetry.istio.io/v1alpha1"), None),
        (config("VirtualService", "apps/v1"), "unrecognized type VirtualService"),
        (config("Gateway", spec=["not", "a", "map"]), "spec must be an object"),
        ("text", "not a JSON object"),
    ],
)
def test_config_problem(obj: Any, problem: str | None) -> None:
    found = config_problem(obj)
    assert found == problem if problem is None else (found is not None and problem in found)


# -- through the admission chain -----------------------------------------------------------------


async def install_injector(mesh: Mesh, name: str, service: str, rev: str) -> None:
    """istio-operator v2's namespace-selected injection webhook for `rev`, calling `service`."""
    hook = {
        "name": "rev.namespace.sidecar-injector.istio.io",
        "clientConfig": {
            "service": {"name": service, "namespace": ISTIO_NS, "path": "/inject", "port": 443}
        },
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "namespaceSelector": {
            "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [rev]}]
        },
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    configs = mesh.cluster.registry.get(
        "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"
    )
    assert configs is not None
    body = {"metadata": {"name": name}, "webhooks": [hook]}
    await mesh.cluster.create(configs, "", body, OPTS)


async def create_app_pod(mesh: Mesh) -> dict[str, Any]:
    pod = pod_review()["request"]["object"]
    created = await mesh.cluster.create(mesh.rt("", "pods"), "app", pod, OPTS)
    return created.obj


@pytest.fixture
async def chain(mesh: Mesh) -> AsyncIterator[Mesh]:
    webhooks = AdmissionWebhooks(mesh.cluster, IstiodResolver(mesh.cluster))
    mesh.cluster.admission.append(webhooks)
    body = {"metadata": {"name": "app", "labels": {"istio.io/rev": "cp-v115x.istio-system"}}}
    await mesh.cluster.create(mesh.rt("", "namespaces"), "", body, OPTS)
    yield mesh
    await webhooks.close()


async def test_a_pod_created_in_a_labelled_namespace_is_stored_injected(chain: Mesh) -> None:
    await chain.istiod(SMM_SERVICE, "cp-v115x.istio-system")
    await install_injector(
        chain, "istio-sidecar-injector-cp-v115x-istio-system", SMM_SERVICE, "cp-v115x.istio-system"
    )
    pod = await create_app_pod(chain)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "cp-v115x.istio-system"
    # The API server defaults what the webhook added.
    assert pod["spec"]["containers"][1]["terminationMessagePath"] == "/dev/termination-log"


async def test_the_last_of_two_overlapping_injectors_wins(chain: Mesh) -> None:
    await chain.istiod(SMM_SERVICE, "cp-v115x.istio-system")
    await chain.istiod("istiod-cp-v117x", "cp-v117x.istio-system", image="hub/pilot:1.17.1")
    # Both select the namespace (a misconfiguration: IST0139); configurations run by name.
    for name, service in (("a-old", SMM_SERVICE), ("b-new", "istiod-cp-v117x")):
        await install_injector(chain, name, service, "cp-v115x.istio-system")
    pod = await create_app_pod(chain)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["web", "istio-proxy"]
    assert pod["spec"]["containers"][1]["image"] == "hub/proxyv2:1.17.1"
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "cp-v117x.istio-system"
    assert pod["metadata"]["labels"]["istio.io/rev"] == "cp-v117x.istio-system"


async def test_an_injector_without_ready_istiod_fails_the_pod_create(chain: Mesh) -> None:
    await chain.istiod(SMM_SERVICE, "cp-v115x.istio-system", ready=False)
    await install_injector(chain, "istio-sidecar-injector", SMM_SERVICE, "cp-v115x.istio-system")
    with pytest.raises(errors.ApiError) as caught:
        await create_app_pod(chain)
    assert "no endpoints available" in caught.value.message
