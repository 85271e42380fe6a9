"""Connecting to a cluster the way kubectl does, with errors a user can act on.

Users come with kubectl habits: `--kubeconfig`, `$KUBECONFIG` (a list of files, merged),
`~/.kube/config`, `--context`, and in-cluster service accounts for the operator. `connect`
resolves those in kubectl's order and returns a lightkube `AsyncClient` whose writes are recorded
under the field manager `meshcanary`. Every failure is a one-line `KubeError`: no kubeconfig,
unknown context (listing the ones that exist), an unusable kubeconfig, or a server that cannot be
reached (checked up front, so a wrong port fails here rather than deep inside a migration).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import ssl
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import httpx2
import msgspec
import yaml
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import User
from lightkube.resources.core_v1 import Namespace

from meshcanary.kube import errors

Client: TypeAlias = AsyncClient
"""The client every other layer passes around (they name it without importing lightkube)."""

FIELD_MANAGER: Final = "meshcanary"
DEFAULT_KUBECONFIG: Final = "~/.kube/config"
SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TIMEOUT: Final = 10.0
_NAMED_LISTS: Final = ("clusters", "contexts", "users")


async def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    field_manager: str = FIELD_MANAGER,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncClient:
    """A client for the cluster `kubeconfig`/`context` point at (kubectl's resolution order).

    With `check`, one cheap request proves the server answers and accepts the credentials
    (a 403/404 still proves that); otherwise `CannotConnect` or `Unauthorized` is raised.
    `transport` replaces the HTTP transport (tests serve a fake API server in process).
    """
    config = load_config(kubeconfig, context)
    client = _client(config, timeout, field_manager, transport)
    if check:
        try:
            await check_connection(client)
        except BaseException:
            await client.close()
            raise
    return client


@contextlib.asynccontextmanager
async def session(
    kubeconfig: str | None = None, context: str | None = None, **options: Any
) -> AsyncIterator[AsyncClient]:
    """`connect`, then close the client when the block ends."""
    client = await connect(kubeconfig, context, **options)
    try:
        yield client
    finally:
        await client.close()


async def check_connection(client: AsyncClient) -> None:
    """Raise CannotConnect or Unauthorized unless the API server answers this client."""
    server = server_of(client)
    try:
        await client.get(Namespace, "kube-system")
    except Exception as error:
        translated = errors.translate(error, server)
        if isinstance(translated, errors.Unauthorized):
            raise errors.Unauthorized(
                f"{server} rejected the credentials: {translated}", code=401
            ) from error
        if isinstance(translated, errors.ApiFailure) and translated.code in (403, 404):
            return
        if translated is None:
            raise
        raise translated from error


def server_of(client: AsyncClient) -> str:
    """The API server's URL, for messages."""
    return str(client.config.cluster.server)


def _client(
    config: SingleConfig,
    timeout: float,
    field_manager: str,
    transport: httpx2.AsyncBaseTransport | None,
) -> AsyncClient:
    try:
        client = AsyncClient(
            config,
            timeout=httpx2.Timeout(timeout),
            field_manager=field_manager,
            transport=transport,
        )
        if os.environ.get(COUNT_REQUESTS_ENV):
            _count_requests(client)
        return client
    except (ConfigError, ssl.SSLError, OSError, ValueError, msgspec.MsgspecError) as error:
        where = f" ({config.fname})" if config.fname else ""
        raise errors.InvalidKubeconfig(
            f"cannot use context {config.context_name!r}{where}: {errors.describe(error)}"
        ) from error


COUNT_REQUESTS_ENV: Final = "MESHCANARY_COUNT_REQUESTS"
"""Set to count API requests (benchmarks, efficiency tests): the total goes to stderr at exit."""
_COUNTED: dict[str, int] = {"requests": 0, "clients": 0}


def _count_requests(client: AsyncClient) -> None:
    """Count every HTTP request `client` sends; print `meshcanary: N API requests` at exit."""

    async def count(request: httpx2.Request) -> None:
        _COUNTED["requests"] += 1

    http = client._client._client  # lightkube's GenericAsyncClient -> its httpx client
    hooks = dict(http.event_hooks)
    hooks["request"] = [*hooks.get("request", []), count]
    http.event_hooks = hooks
    _COUNTED["clients"] += 1
    if _COUNTED["clients"] == 1:
        atexit.register(_report_requests)


def _report_requests() -> None:
    print(f"meshcanary: {_COUNTED['requests']} API requests", file=sys.stderr)


# -- kubeconfig resolution --------------------------------------------------------------------


def load_config(kubeconfig: str | None = None, context: str | None = None) -> SingleConfig:
    """The cluster, user and namespace of one context, resolved as kubectl resolves them.

    Files: `kubeconfig` if given (it must exist), else every existing file of `$KUBECONFIG`
    (merged: the first file to define a name or the current context wins), else
    `~/.kube/config`; with none of them, the in-cluster service account if there is one.
    """
    paths = kubeconfig_paths(kubeconfig)
    if kubeconfig and not paths[0].is_file():
        raise errors.NoKubeconfig(f"kubeconfig {kubeconfig} does not exist")
    existing = [path for path in paths if path.is_file()]
    if not existing:
        return _in_cluster(paths, context)
    merged = merge_kubeconfigs([_read(path) for path in existing])
    return select_context(merged, context, existing)


def kubeconfig_paths(kubeconfig: str | None = None) -> list[Path]:
    """The files to read, in precedence order (not all need exist)."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    listed = [item for item in os.environ.get("KUBECONFIG", "").split(os.pathsep) if item]
    return [Path(item).expanduser() for item in listed or [DEFAULT_KUBECONFIG]]


def merge_kubeconfigs(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """kubectl's merge: named entries and `current-context` from the first file that has them."""
    merged: dict[str, Any] = {name: [] for name in _NAMED_LISTS}
    current = None
    for document in documents:
        for key in _NAMED_LISTS:
            known = {entry.get("name") for entry in merged[key]}
            merged[key].extend(e for e in document.get(key) or [] if e.get("name") not in known)
        current = current or document.get("current-context") or None
    merged["current-context"] = current
    return merged


def select_context(
    merged: Mapping[str, Any], context: str | None, paths: Sequence[Path]
) -> SingleConfig:
    """One context of a merged kubeconfig, or a one-line error naming what is wrong."""
    where = ", ".join(str(path) for path in paths)
    try:
        config = KubeConfig.from_dict(dict(merged), fname=paths[0])
    except (KeyError, TypeError, ValueError, msgspec.MsgspecError) as error:
        raise errors.InvalidKubeconfig(f"{where}: malformed kubeconfig ({error})") from error
    name = context or config.current_context
    if not name:
        raise errors.InvalidKubeconfig(
            f"{where} sets no current-context; pass --context ({_available(config)})"
        )
    if name not in config.contexts:
        raise errors.UnknownContext(f"context {name!r} not found in {where} ({_available(config)})")
    return _single(config, name, where)


def _single(config: KubeConfig, name: str, where: str) -> SingleConfig:
    ctx = config.contexts[name]
    cluster = config.clusters.get(ctx.cluster) if ctx.cluster else None
    if cluster is None:
        raise errors.InvalidKubeconfig(
            f"context {name!r} in {where} names cluster {ctx.cluster!r}, which is not defined"
        )
    user = config.users.get(ctx.user) if ctx.user else User()
    if user is None:
        raise errors.InvalidKubeconfig(
            f"context {name!r} in {where} names user {ctx.user!r}, which is not defined"
        )
    return SingleConfig(name, ctx, cluster, user, config.fname)


def _available(config: KubeConfig) -> str:
    names = sorted(config.contexts)
    return f"available: {', '.join(names)}" if names else "it defines no context"


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise errors.InvalidKubeconfig(f"{path}: {errors.describe(error)}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise errors.InvalidKubeconfig(f"{path}: a kubeconfig must be a YAML mapping")
    return document


def _in_cluster(paths: Sequence[Path], context: str | None) -> SingleConfig:
    token = Path(SERVICE_ACCOUNT_DIR) / "token"
    if context is None and os.environ.get("KUBERNETES_SERVICE_HOST") and token.is_file():
        try:
            return KubeConfig.from_service_account(SERVICE_ACCOUNT_DIR).get()  # type: ignore[return-value]
        except (ConfigError, KeyError, OSError) as error:
            raise errors.InvalidKubeconfig(f"in-cluster configuration unusable: {error}") from error
    tried = ", ".join(str(path) for path in paths)
    raise errors.NoKubeconfig(
        f"no kubeconfig found (tried {tried}); set KUBECONFIG or pass --kubeconfig"
    )


# -- credentials for other clients ------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Where and how to connect, as plain values, for clients other than lightkube (kopf).

    Field names follow kubeconfig's meaning: `*_data` are base64 as in the file, paths are
    absolute. `namespace` is the context's default namespace.
    """

    server: str
    ca_path: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    token: str | None = None
    username: str | None = None
    password: str | None = None
    certificate_path: str | None = None
    certificate_data: str | None = None
    private_key_path: str | None = None
    private_key_data: str | None = None
    namespace: str | None = None


def credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials | None:
    """The credentials of a kubeconfig context, resolved as `connect` resolves them.

    None inside a cluster with no kubeconfig (use the service account). A user that needs an
    exec plugin or an auth provider cannot be expressed as static credentials: InvalidKubeconfig.
    """
    no_files = not any(path.is_file() for path in kubeconfig_paths(kubeconfig))
    if no_files and not kubeconfig and context is None and _in_cluster_available():
        return None
    config = load_config(kubeconfig, context)
    user = config.user or User()
    if user.exec is not None or user.auth_provider is not None:
        raise errors.InvalidKubeconfig(
            f"context {config.context_name!r} authenticates with an exec plugin or auth provider;"
            " the operator needs a token, a client certificate or an in-cluster service account"
        )
    return Credentials(
        server=str(config.cluster.server),
        ca_path=_path(config, config.cluster.certificate_auth),
        ca_data=config.cluster.certificate_auth_data,
        insecure=bool(config.cluster.insecure),
        token=user.token or _read_token(config, user.token_file),
        username=user.username,
        password=user.password,
        certificate_path=_path(config, user.client_cert),
        certificate_data=user.client_cert_data,
        private_key_path=_path(config, user.client_key),
        private_key_data=user.client_key_data,
        namespace=config.context.namespace,
    )


def _in_cluster_available() -> bool:
    token = Path(SERVICE_ACCOUNT_DIR) / "token"
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and token.is_file()


def _path(config: SingleConfig, name: str | None) -> str | None:
    return str(config.abs_file(name)) if name else None


def _read_token(config: SingleConfig, token_file: str | None) -> str | None:
    if not token_file:
        return None
    try:
        return Path(config.abs_file(token_file)).read_text().strip()
    except OSError as error:
        raise errors.InvalidKubeconfig(f"cannot read token file {token_file}: {error}") from error
