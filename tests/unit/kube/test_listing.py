"""Pagination and watch_until against a scripted API server: tokens, drops, expiry, timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import AsyncClient

from meshcanary.kube import client, errors, listing, resources, retry

from .fakeapi import FakeApi, configmap, event, status, stream

FAST = retry.Backoff(initial=0.0, jitter=0.0)
PATH = "/api/v1/namespaces/ns/configmaps"


def paginated(total: int, prefix: str = "cm") -> Any:
    """A LIST handler serving `total` objects with limit/continue, like the API server."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        limit = int(request.url.params.get("limit", total))
        start = int(request.url.params.get("continue", "0"))
        end = min(start + limit, total)
        metadata = {"resourceVersion": "100"}
        if end < total:
            metadata["continue"] = str(end)
        items = [configmap(f"{prefix}-{i:04d}", str(i)) for i in range(start, end)]
        return httpx2.Response(200, json={"kind": "List", "metadata": metadata, "items": items})

    return handle


async def connected(kubeconfig: Path, api: FakeApi) -> AsyncClient:
    return await client.connect(str(kubeconfig), check=False, transport=api.transport)


async def test_pages_follow_continue_tokens(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", PATH, paginated(1200))
    kube = await connected(kubeconfig, api)
    sizes = [
        len(page)
        async for page in listing.pages(kube, resources.ConfigMap, namespace="ns", limit=500)
    ]
    await kube.close()
    assert sizes == [500, 500, 200]
    params = api.params(PATH)
    assert [p.get("continue") for p in params] == [None, "500", "1000"]
    assert {p["limit"] for p in params} == {"500"}


async def test_pages_of_dicts_and_selectors(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", "/api/v1/pods", paginated(5))
    kube = await connected(kubeconfig, api)
    pages = [
        page
        async for page in listing.pods(
            kube,
            labels={"app": "web", "tier": ["a", "b"], "canary": None, "x": listing.not_exists()},
            fields={"status.phase": "Running", "spec.nodeName": listing.not_equal("n1")},
            limit=2,
        )
    ]
    await kube.close()
    assert [len(p) for p in pages] == [2, 2, 1]
    assert all(type(obj) is not dict and isinstance(obj, dict) for p in pages for obj in p)
    assert pages[0][0]["metadata"]["name"] == "cm-0000"
    params = api.params("/api/v1/pods")[0]
    assert params["labelSelector"] == "app=web,tier in (a,b),canary,!x"
    assert params["fieldSelector"] == "status.phase=Running,spec.nodeName!=n1"


async def test_exact_multiple_has_no_empty_page(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", "/api/v1/namespaces", paginated(4))
    kube = await connected(kubeconfig, api)
    sizes = [len(page) async for page in listing.namespaces(kube, limit=2)]
    assert sizes == [2, 2]
    assert len(await listing.collect(kube, resources.Namespace, limit=3)) == 4
    await kube.close()


async def test_empty_list_yields_nothing(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", "/apis/apps/v1/deployments", paginated(0))
    api.on(
        "GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", paginated(1)
    )
    kube = await connected(kubeconfig, api)
    assert [page async for page in listing.deployments(kube)] == []
    hooks = [page async for page in listing.mutating_webhook_configurations(kube)]
    await kube.close()
    assert len(hooks) == 1


async def test_expired_continue_token_is_gone(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", PATH, paginated(10), lambda _: status(410, "Expired", "continue expired"))
    kube = await connected(kubeconfig, api)
    seen = []
    with pytest.raises(errors.Gone, match="continue expired"):
        async for page in listing.pages(kube, resources.ConfigMap, namespace="ns", limit=5):
            seen.append(page)
    await kube.close()
    assert len(seen) == 1


async def test_limit_must_be_positive(kubeconfig: Path, api: FakeApi) -> None:
    kube = await connected(kubeconfig, api)
    with pytest.raises(ValueError, match="at least 1"):
        await listing.collect(kube, resources.ConfigMap, limit=0)
    await kube.close()


def test_labels_from_a_label_selector() -> None:
    labels = listing.labels_from_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": ["x"]},
                {"key": "b", "operator": "NotIn", "values": ["y"]},
                {"key": "c", "operator": "Exists"},
                {"key": "d", "operator": "DoesNotExist"},
            ],
        }
    )
    assert labels["app"] == "web" and labels["a"] == ["x"] and labels["c"] is None
    from lightkube.core.selector import build_selector

    assert build_selector(labels) == "app=web,a in (x),b notin (y),c,!d"
    assert listing.labels_from_selector(None) == {}
    with pytest.raises(ValueError, match="unknown label selector operator"):
        listing.labels_from_selector({"matchExpressions": [{"key": "a", "operator": "Gt"}]})


# -- watch_until ------------------------------------------------------------------------------


def one(obj: dict[str, Any] | None, rv: str = "10") -> Any:
    """A LIST narrowed by metadata.name: the object (or none) at list resourceVersion `rv`."""
    items = [obj] if obj else []
    return lambda _: httpx2.Response(
        200, json={"metadata": {"resourceVersion": rv}, "items": items}
    )


def watch(*chunks: bytes, then: Exception | None = None) -> Any:
    return lambda request: httpx2.Response(200, content=stream(list(chunks), then))


def has(key: str) -> Any:
    return lambda obj: obj is not None and key in (obj.get("data") or {})


def watch_params(api: FakeApi) -> list[dict[str, str]]:
    return [p for p in api.params(PATH) if p.get("watch") == "true"]


async def test_already_true_needs_no_watch(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", PATH, one(configmap("c", "5", ready="1")))
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube, resources.raw(resources.ConfigMap), "ns", "c", has("ready")
    )
    await kube.close()
    assert found is not None and found["data"] == {"ready": "1"}
    assert api.params(PATH) == [{"fieldSelector": "metadata.name=c"}]


async def test_waits_for_a_watch_event(kubeconfig: Path, api: FakeApi) -> None:
    api.on(
        "GET",
        PATH,
        one(configmap("c", "5")),
        watch(
            event("MODIFIED", configmap("c", "11", other="x")),
            event("MODIFIED", configmap("c", "12", ready="1")),
        ),
    )
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube,
        resources.ConfigMap,
        "ns",
        "c",
        lambda o: o is not None and bool(o.data and "ready" in o.data),
    )
    await kube.close()
    assert found is not None and found.metadata.resourceVersion == "12"
    first = watch_params(api)[0]
    assert (first["resourceVersion"], first["fieldSelector"]) == ("10", "metadata.name=c")
    assert first["timeoutSeconds"] == str(listing.WATCH_SECONDS)


async def test_waits_for_a_deletion(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", PATH, one(configmap("c", "5")), watch(event("DELETED", configmap("c", "13"))))
    kube = await connected(kubeconfig, api)
    assert (
        await listing.watch_until(kube, resources.ConfigMap, "ns", "c", lambda o: o is None) is None
    )
    await kube.close()


async def test_resumes_after_a_dropped_connection(kubeconfig: Path, api: FakeApi) -> None:
    dropped = httpx2.RemoteProtocolError("peer closed connection")
    api.on(
        "GET",
        PATH,
        one(None),
        watch(event("ADDED", configmap("c", "11")), then=dropped),
        watch(event("MODIFIED", configmap("c", "14", ready="1"))),
    )
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube, resources.raw(resources.ConfigMap), "ns", "c", has("ready"), backoff=FAST
    )
    await kube.close()
    assert found is not None and found["metadata"]["resourceVersion"] == "14"
    assert [p["resourceVersion"] for p in watch_params(api)] == ["10", "11"]


async def test_relists_when_the_version_expired(kubeconfig: Path, api: FakeApi) -> None:
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.on(
        "GET",
        PATH,
        one(configmap("c", "5")),
        watch(event("ERROR", expired)),
        one(configmap("c", "40"), rv="50"),
        watch(event("MODIFIED", configmap("c", "51", ready="1"))),
    )
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube, resources.raw(resources.ConfigMap), "ns", "c", has("ready"), backoff=FAST
    )
    await kube.close()
    assert found is not None
    assert [p["resourceVersion"] for p in watch_params(api)] == ["10", "50"]


async def test_relist_itself_may_satisfy_the_predicate(kubeconfig: Path, api: FakeApi) -> None:
    api.on(
        "GET",
        PATH,
        one(configmap("c", "5")),
        lambda _: status(410, "Expired", "too old"),
        one(configmap("c", "60", ready="1"), rv="61"),
    )
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube, resources.raw(resources.ConfigMap), "ns", "c", has("ready")
    )
    await kube.close()
    assert found is not None and found["metadata"]["resourceVersion"] == "60"


async def test_permanent_errors_end_the_wait(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", PATH, one(None), lambda _: status(403, "Forbidden", "no watch for you"))
    kube = await connected(kubeconfig, api)
    with pytest.raises(errors.Forbidden, match="no watch for you"):
        await listing.watch_until(kube, resources.ConfigMap, "ns", "c", lambda o: o is not None)
    await kube.close()


async def test_timeout(kubeconfig: Path, api: FakeApi) -> None:
    never = httpx2.RemoteProtocolError("dropped")
    api.on("GET", PATH, one(None), watch(then=never))
    kube = await connected(kubeconfig, api)
    slow = retry.Backoff(initial=0.05, jitter=0.0)
    with pytest.raises(
        errors.WaitTimeout, match=r"timed out after 0\.3s waiting for ConfigMap ns/c"
    ):
        await listing.watch_until(
            kube, resources.ConfigMap, "ns", "c", lambda o: o is not None, 0.3, backoff=slow
        )
    await kube.close()
    assert len(watch_params(api)) >= 2


async def test_cluster_scoped_objects(kubeconfig: Path, api: FakeApi) -> None:
    namespace = {
        "metadata": {"name": "mesh", "resourceVersion": "3"},
        "status": {"phase": "Active"},
    }
    api.on("GET", "/api/v1/namespaces", one(namespace))
    kube = await connected(kubeconfig, api)
    found = await listing.watch_until(
        kube, resources.raw(resources.Namespace), None, "mesh", lambda o: o is not None
    )
    await kube.close()
    assert found is not None and found["status"]["phase"] == "Active"
