"""The kopf handlers' own logic: wake-ups, retry mapping, login, and the cleanup finalizer.

kopf itself is not started here (the e2e test runs the real operator); the handler bodies are
plain functions over a `handlers.Context`, called against the in-process sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from tests.unit.controlplane.test_reconcile import (
    NS,
    cluster,
    control_plane,
    create,
    labelled,
    until,
)

from meshcanary.controlplane import deletion, reconcile
from meshcanary.kube import apply, listing, resources
from meshcanary.kube.client import Client
from meshcanary.operator import handlers

__all__ = ["cluster"]  # the in-process sandbox fixture

LOG = logging.getLogger("test.handlers")


def context_for(kube: Client, resync: float = 10.0) -> handlers.Context:
    context = handlers.Context(resync=resync)
    context._client = kube
    return context


# -- wake-ups ---------------------------------------------------------------------------------


async def test_a_wake_up_ends_the_wait_and_wake_ups_coalesce() -> None:
    wakeups = handlers.Wakeups()
    wakeups.wake("a")
    wakeups.wake("a")
    assert await wakeups.wait("a", timeout=5)
    assert not await wakeups.wait("a", timeout=0.01), "both wake-ups were consumed by one wait"


async def test_a_wait_times_out_or_ends_when_stopped() -> None:
    wakeups = handlers.Wakeups()
    assert not await wakeups.wait("a", timeout=0.01)
    stop: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    stop.set_result(None)
    async with asyncio.timeout(5):
        assert not await wakeups.wait("a", timeout=60, stop=stop)
    wakeups.wake("b")
    wakeups.forget("b")
    assert not await wakeups.wait("b", timeout=0.01), "a forgotten wake-up is gone"


@pytest.mark.parametrize(
    ("retry", "ceiling", "delay"),
    [(0, 10.0, 1.0), (1, 10.0, 2.0), (3, 10.0, 8.0), (4, 10.0, 10.0), (9, 300.0, 60.0)],
)
def test_backoff_doubles_up_to_the_resync(retry: int, ceiling: float, delay: float) -> None:
    assert handlers.backoff(retry, ceiling) == delay


def test_a_spec_change_is_a_generation_the_status_has_not_observed() -> None:
    body: dict[str, Any] = {"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}
    assert handlers.needs_reconcile(body)
    body["status"]["observedGeneration"] = 2
    assert not handlers.needs_reconcile(body)
    assert handlers.needs_reconcile({"metadata": {"generation": 1}})
    deleting = {"metadata": {"generation": 3, "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert not handlers.needs_reconcile(deleting)


@pytest.mark.parametrize(
    ("labels", "key"),
    [
        ({"istio.io/rev": "cp-v113x.istio-system"}, (NS, "cp-v113x")),
        ({"istio.io/rev": "1-15-0"}, None),
        ({"istio.io/rev": "Not Valid"}, None),
        ({}, None),
    ],
)
def test_owned_objects_wake_their_control_plane(
    labels: dict[str, str], key: tuple[str, str] | None
) -> None:
    webhook = {
        "metadata": {"name": "istio-sidecar-injector-cp-v113x-istio-system", "labels": labels}
    }
    assert handlers.owner_key(webhook) == key
    assert handlers.key_of(control_plane()) == (NS, "cp-v113x")


# -- errors -----------------------------------------------------------------------------------


async def test_transient_errors_become_temporary_errors_with_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unreachable(*_: Any, **__: Any) -> Any:
        raise reconcile.TransientError("reading the cluster: cannot connect")

    monkeypatch.setattr(reconcile, "reconcile", unreachable)
    context = handlers.Context(resync=30)
    context._client = object()  # type: ignore[assignment]
    with pytest.raises(kopf.TemporaryError, match="cannot connect") as raised:
        await handlers.reconcile_once(context, control_plane(), 2, LOG)
    assert raised.value.delay == 4.0


async def test_other_errors_are_logged_and_retried_at_the_next_resync(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def forbidden(*_: Any, **__: Any) -> Any:
        raise reconcile.ReconcileError("reading the cluster: pods is forbidden")

    monkeypatch.setattr(reconcile, "reconcile", forbidden)
    context = handlers.Context(resync=30)
    context._client = object()  # type: ignore[assignment]
    await handlers.reconcile_once(context, control_plane(), 0, LOG)
    assert (
        "reconcile failed, retrying in 30s: reading the cluster: pods is forbidden" in caplog.text
    )


def test_the_client_must_be_connected_first() -> None:
    with pytest.raises(RuntimeError, match="not connected"):
        _ = handlers.Context().client


# -- login ------------------------------------------------------------------------------------


def kubeconfig(path: Path, **user: Any) -> Path:
    ca = base64.b64encode(b"ca").decode()
    config = {
        "clusters": [
            {
                "name": "a",
                "cluster": {"server": "https://a.example:6443", "certificate-authority-data": ca},
            },
            {
                "name": "b",
                "cluster": {"server": "https://b.example", "certificate-authority": "ca.crt"},
            },
        ],
        "users": [{"name": "u", "user": user or {"token": "secret"}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "a", "user": "u", "namespace": "mesh"}},
            {"name": "two", "context": {"cluster": "b", "user": "u"}},
        ],
        "current-context": "one",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_login_uses_the_given_kubeconfig_and_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    info = handlers.connection_info(handlers.Context(kubeconfig=str(path)))
    assert info is not None
    assert (info.server, info.token, info.default_namespace) == (
        "https://a.example:6443", "secret", "mesh"
    )  # fmt: skip
    assert info.ca_data == base64.b64encode(b"ca").decode()

    other = handlers.connection_info(handlers.Context(kubeconfig=str(path), context="two"))
    assert other is not None and other.server == "https://b.example"
    assert other.ca_path == str(tmp_path / "ca.crt"), "relative to the kubeconfig, as kubectl"


def test_login_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}
    path = kubeconfig(tmp_path / "config", **exec_user)
    with pytest.raises(kopf.LoginError, match="exec plugin"):
        handlers.connection_info(handlers.Context(kubeconfig=str(path)))
    with pytest.raises(kopf.LoginError, match="context 'three' not found"):
        handlers.connection_info(handlers.Context(kubeconfig=str(path), context="three"))


# -- the cleanup finalizer --------------------------------------------------------------------


async def shop_with_a_proxy(kube: Client) -> None:
    shop = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio.io/rev": "cp-v113x.istio-system"}},
    }
    web = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    await apply.apply_manifests(kube, [shop, web])


async def test_the_finalizer_holds_a_deletion_that_would_strand_proxies(cluster: Client) -> None:
    resource = await create(cluster, control_plane())
    await until(cluster, resource, "Available")
    await shop_with_a_proxy(cluster)
    context = context_for(cluster, resync=7)

    with pytest.raises(kopf.TemporaryError, match=r"deletion held: .* 1 live proxy") as held:
        await handlers.clean_up_once(context, resource, 0, LOG)
    assert held.value.delay == 7
    assert await listing.get(cluster, resources.Deployment, "istiod-cp-v113x", namespace=NS)

    resource["metadata"]["annotations"] = {deletion.FORCE_ANNOTATION: "true"}
    await handlers.clean_up_once(context, resource, 0, LOG)
    assert await labelled(cluster, "cp-v113x.istio-system") == {}
