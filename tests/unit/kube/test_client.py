"""Kubeconfig resolution follows kubectl, and every failure is a one-line KubeError."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import pytest

from meshcanary.kube import client, errors

from .fakeapi import FakeApi, status, write_kubeconfig


def test_explicit_kubeconfig(kubeconfig: Path) -> None:
    config = client.load_config(str(kubeconfig))
    assert (config.context_name, config.cluster.server) == ("fake", "https://fake.example:6443")
    assert config.namespace == "ns-fake"


def test_explicit_kubeconfig_must_exist(tmp_path: Path) -> None:
    with pytest.raises(errors.NoKubeconfig, match="does not exist"):
        client.load_config(str(tmp_path / "missing"))


def test_kubeconfig_env_list_is_merged_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_kubeconfig(tmp_path / "a", "one", "shared")
    second = write_kubeconfig(tmp_path / "b", "two", "shared", current="two")
    (tmp_path / "c").write_text("")  # an empty file merges as nothing
    missing = tmp_path / "missing"
    paths = [missing, first, tmp_path / "c", second]
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, paths)))
    assert client.load_config().context_name == "two"  # the first current-context set
    assert client.load_config(context="one").cluster.server == "https://one.example:6443"
    shared = client.load_config(context="shared")
    assert shared.fname == first  # relative paths resolve against the first file
    assert shared.user is not None and shared.user.token == "token-shared"


def test_default_kubeconfig_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", "home", current="home")
    assert client.kubeconfig_paths() == [tmp_path / ".kube" / "config"]
    assert client.load_config().context_name == "home"


def test_no_kubeconfig_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(errors.NoKubeconfig, match=r"no kubeconfig found .*set KUBECONFIG"):
        client.load_config()


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "c", "b", "a", current="a")
    with pytest.raises(errors.UnknownContext, match=r"'zzz' not found .*available: a, b"):
        client.load_config(str(path), "zzz")


def test_no_current_context(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "c", "a")
    with pytest.raises(errors.InvalidKubeconfig, match="no current-context; pass --context"):
        client.load_config(str(path))
    assert client.load_config(str(path), "a").context_name == "a"


def test_context_naming_a_missing_cluster_or_user(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_text(
        "clusters: []\nusers: []\ncontexts:\n"
        "- {name: a, context: {cluster: nowhere, user: u}}\n"
        "- {name: b, context: {cluster: nowhere}}\n"
    )
    with pytest.raises(errors.InvalidKubeconfig, match="cluster 'nowhere', which is not defined"):
        client.load_config(str(path), "a")
    path.write_text(
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\ncontexts:\n"
        "- {name: a, context: {cluster: c, user: ghost}}\n"
        "- {name: b, context: {cluster: c}}\n"
    )
    with pytest.raises(errors.InvalidKubeconfig, match="user 'ghost', which is not defined"):
        client.load_config(str(path), "a")
    anonymous = client.load_config(str(path), "b")
    assert anonymous.user is not None and anonymous.user.token is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("foo: [", "kubeconfig|expected"), ("- a\n- b\n", "must be a YAML mapping")],
)
def test_unreadable_kubeconfig(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c"
    path.write_text(text)
    with pytest.raises(errors.InvalidKubeconfig, match=message) as caught:
        client.load_config(str(path))
    assert "\n" not in str(caught.value)


def test_malformed_entries(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_text("clusters: [{name: a, cluster: {server: 3}}]\ncontexts: []\n")
    with pytest.raises(errors.InvalidKubeconfig, match="malformed kubeconfig"):
        client.load_config(str(path))


def test_merge_kubeconfigs() -> None:
    merged = client.merge_kubeconfigs(
        [
            {"clusters": [{"name": "a", "cluster": {"server": "1"}}]},
            {
                "clusters": [{"name": "a", "cluster": {"server": "2"}}, {"name": "b"}],
                "current-context": "b",
            },
            {"current-context": "c"},
        ]
    )
    assert merged == {
        "clusters": [{"name": "a", "cluster": {"server": "1"}}, {"name": "b"}],
        "contexts": [],
        "users": [],
        "current-context": "b",
    }


# -- connecting, through the transport seam --------------------------------------------------


async def test_connect_checks_the_server(kubeconfig: Path, api: FakeApi) -> None:
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        assert client.server_of(kube) == "https://fake.example:6443"
        assert kube.namespace == "ns-fake"
    assert [r.url.path for r in api.requests] == ["/api/v1/namespaces/kube-system"]
    assert api.requests[0].headers["authorization"] == "Bearer token-fake"


async def test_connect_without_check_sends_nothing(kubeconfig: Path, api: FakeApi) -> None:
    kube = await client.connect(str(kubeconfig), check=False, transport=api.transport)
    await kube.close()
    assert api.requests == []


@pytest.mark.parametrize("code", [403, 404])
async def test_forbidden_or_missing_still_proves_the_connection(
    kubeconfig: Path, api: FakeApi, code: int
) -> None:
    api.on("GET", "/api/v1/namespaces/kube-system", lambda _: status(code, "Forbidden"))
    kube = await client.connect(str(kubeconfig), transport=api.transport)
    await kube.close()


async def test_rejected_credentials(kubeconfig: Path, api: FakeApi) -> None:
    api.on("GET", "/api/v1/namespaces/kube-system", lambda _: status(401, "Unauthorized"))
    with pytest.raises(errors.Unauthorized, match=r"fake\.example:6443 rejected the credentials"):
        await client.connect(str(kubeconfig), transport=api.transport)


async def test_unreachable_server(kubeconfig: Path, api: FakeApi) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)

    api.on("GET", "/api/v1/namespaces/kube-system", refuse)
    with pytest.raises(errors.CannotConnect) as caught:
        await client.connect(str(kubeconfig), transport=api.transport)
    assert str(caught.value) == (
        "cannot connect to https://fake.example:6443: [Errno 111] Connection refused"
    )
    assert caught.value.transient


async def test_writes_carry_the_meshcanary_field_manager(kubeconfig: Path, api: FakeApi) -> None:
    from meshcanary.kube import apply

    api.on(
        "PATCH",
        "/api/v1/namespaces/ns-fake/configmaps/c",
        lambda r: httpx2.Response(200, json={"metadata": {"name": "c"}}),
    )
    async with client.session(str(kubeconfig), transport=api.transport) as kube:
        await apply.merge_patch(kube, apply.resources.ConfigMap, "c", {"data": {"a": "b"}})
    patch = api.requests[-1]
    assert patch.url.params["fieldManager"] == "meshcanary"
    assert patch.headers["content-type"] == "application/merge-patch+json"
