"""Reading a cluster at scale: paginated LISTs and a watch that waits for a condition.

A mesh has tens of thousands of pods. `pages` lists them `limit` objects per request (the API
server's `limit`/`continue` pagination) and hands over one page at a time, so memory stays
bounded and a caller can count or report progress as it goes. The `pods`, `namespaces`,
`mutating_webhook_configurations` and `deployments` helpers yield plain dicts (API JSON), which is
what `meshcanary.mesh` consumes.

`watch_until` waits for one object to satisfy a predicate. It reads the object first (a LIST
narrowed by `metadata.name`, whose resourceVersion is where the watch starts), so nothing that
happens in between is missed; it resumes from the last seen resourceVersion when the connection
drops or the server ends the watch, and relists when that version has expired (410 Gone), as
client-go's reflector does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final, TypeVar

from lightkube import AsyncClient, operators

from meshcanary.kube import errors, resources, retry

DEFAULT_LIMIT: Final = 1000
"""Items per page. kubectl uses 500; for a cluster-wide inventory 1000 halves the round trips
(`bench/inventory.py`: `ns list -A` on 20,000 pods 3.3 s -> 2.3 s) at ~2 MB per page."""
ALL_NAMESPACES: Final = "*"
DEFAULT_WAIT: Final = 300.0
WATCH_SECONDS: Final = 290
"""Server-side timeout of one watch request; the watch is then renewed from the last version."""

R = TypeVar("R")
Labels = Mapping[str, Any]
"""Label selector: `{"app": "web"}` equals, `{"k": None}` exists, `{"k": ["a", "b"]}` in, or an
operator from this module (`not_in`, `not_exists`, `not_equal`)."""
Fields = Mapping[str, Any]
"""Field selector: `{"status.phase": "Running"}`, or `not_equal`/`not_in`."""
Object = dict[str, Any]

not_in = operators.not_in
not_exists = operators.not_exists
not_equal = operators.not_equal


def labels_from_selector(selector: Mapping[str, Any] | None) -> dict[str, Any]:
    """A metav1.LabelSelector (a Deployment's `spec.selector`) as a `Labels` mapping.

    One requirement per key: a key in both matchLabels and matchExpressions keeps the latter.
    """
    labels: dict[str, Any] = dict((selector or {}).get("matchLabels") or {})
    for expression in (selector or {}).get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = list(expression.get("values") or [])
        labels[key] = _operator(operator, values)
    return labels


def _operator(operator: str, values: list[str]) -> Any:
    if operator == "In":
        return values
    if operator == "NotIn":
        return operators.not_in(values)
    if operator == "Exists":
        return None
    if operator == "DoesNotExist":
        return operators.not_exists()
    raise ValueError(f"unknown label selector operator {operator!r}")


async def pages(
    client: AsyncClient,
    resource: type[R],
    *,
    namespace: str | None = None,
    labels: Labels | None = None,
    fields: Fields | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AsyncIterator[list[R]]:
    """Objects of `resource`, `limit` per request, one list per page.

    `namespace` None lists a namespaced kind in all namespaces. Every request asks for `limit`
    objects, and every page holds `limit` objects except the last, so pages and requests
    coincide whenever the server fills its pages (a real one may return short pages when it
    filters by fields; they are then joined up to `limit`).
    Errors are KubeErrors, raised as they come: a page cannot be re-requested on its own (its
    continue token is lightkube's), so a caller that wants retries wraps the whole listing in
    `retry.call`. A continue token that expired mid-list raises `errors.Gone`.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    listing = _list(client, resource, namespace, labels, fields, limit)
    page: list[R] = []
    with errors.translated():
        async with contextlib.aclosing(aiter(listing)) as stream:
            async for item in stream:
                page.append(item)
                if len(page) == limit:
                    yield page
                    page = []
    if page:
        yield page


def _list(
    client: AsyncClient,
    resource: Any,
    namespace: str | None,
    labels: Labels | None,
    fields: Fields | None,
    limit: int,
) -> Any:
    if namespace is None and resources.is_namespaced(resource):
        namespace = ALL_NAMESPACES
    return client.list(
        resource,
        namespace=namespace,
        chunk_size=limit,
        labels=dict(labels) if labels else None,
        fields=dict(fields) if fields else None,
    )


async def items(client: AsyncClient, resource: type[R], **options: Any) -> AsyncIterator[R]:
    """The objects of `pages`, one at a time."""
    async for page in pages(client, resource, **options):
        for item in page:
            yield item


async def collect(client: AsyncClient, resource: type[R], **options: Any) -> list[R]:
    """Every object `pages` lists, in one list (for small kinds: namespaces, webhooks)."""
    return [item async for item in items(client, resource, **options)]


def pods(client: AsyncClient, **options: Any) -> AsyncIterator[list[Object]]:
    """Pages of pods as API JSON (all namespaces unless `namespace=`)."""
    return pages(client, resources.raw(resources.Pod), **options)


def namespaces(client: AsyncClient, **options: Any) -> AsyncIterator[list[Object]]:
    """Pages of namespaces as API JSON."""
    return pages(client, resources.raw(resources.Namespace), **options)


def mutating_webhook_configurations(
    client: AsyncClient, **options: Any
) -> AsyncIterator[list[Object]]:
    """Pages of MutatingWebhookConfigurations as API JSON."""
    resource = resources.raw(resources.MutatingWebhookConfiguration)
    return pages(client, resource, **options)


def deployments(client: AsyncClient, **options: Any) -> AsyncIterator[list[Object]]:
    """Pages of Deployments as API JSON (all namespaces unless `namespace=`)."""
    return pages(client, resources.raw(resources.Deployment), **options)


# -- waiting ------------------------------------------------------------------------------------


async def watch_until(
    client: AsyncClient,
    resource: type[R],
    namespace: str | None,
    name: str,
    predicate: Callable[[R | None], bool],
    timeout: float = DEFAULT_WAIT,
    *,
    backoff: retry.Backoff = retry.DEFAULT,
) -> R | None:
    """Wait until `predicate(object)` holds and return that object (None: it does not exist).

    `predicate` sees None while the object is absent, so `lambda o: o is None` waits for a
    deletion. Raises `errors.WaitTimeout` after `timeout` seconds; transient failures are
    retried with `backoff` for as long as the timeout allows.
    """
    try:
        async with asyncio.timeout(timeout):
            found: R | None = await _wait(client, resource, namespace, name, predicate, backoff)
            return found
    except TimeoutError as error:
        what = f"{resources.kind_of(resource)} {_display(namespace, name)}"
        raise errors.WaitTimeout(f"timed out after {timeout:g}s waiting for {what}") from error


async def _wait(
    client: AsyncClient,
    resource: Any,
    namespace: str | None,
    name: str,
    predicate: Callable[[Any], bool],
    backoff: retry.Backoff,
) -> Any:
    current, version = await _read(client, resource, namespace, name, backoff)
    failures = 0
    while not predicate(current):
        try:
            async with contextlib.aclosing(
                _watch(client, resource, namespace, name, version)
            ) as events:
                async for event, obj in events:
                    current = None if event == "DELETED" else obj
                    version = obj.metadata.resourceVersion or version
                    failures = 0
                    if predicate(current):
                        return current
        except Exception as error:
            failure = _recoverable(error)
            if isinstance(failure, errors.Gone):
                current, version = await _read(client, resource, namespace, name, backoff)
            else:
                failures += 1
                await asyncio.sleep(backoff.delay(failures, failure))
    return current


def _recoverable(error: Exception) -> errors.KubeError:
    """The translated error if the watch can go on after it (relist or retry); else raise."""
    failure = errors.translate(error)
    if failure is None:
        raise error
    if isinstance(failure, errors.Gone) or failure.transient:
        return failure
    raise failure from error


def _watch(
    client: AsyncClient, resource: Any, namespace: str | None, name: str, version: str
) -> Any:
    return client.watch(
        resource,
        namespace=namespace,
        fields={"metadata.name": name},
        resource_version=version,
        server_timeout=WATCH_SECONDS,
    )


async def _read(
    client: AsyncClient, resource: Any, namespace: str | None, name: str, backoff: retry.Backoff
) -> tuple[Any, str]:
    """The object (or None) and the resourceVersion to watch from."""

    async def read() -> tuple[Any, str]:
        listing = client.list(resource, namespace=namespace, fields={"metadata.name": name})
        found = [obj async for obj in listing]
        return (found[0] if found else None), listing.resourceVersion

    return await retry.call(read, backoff=backoff)


def _display(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


# -- reading one object -------------------------------------------------------------------------


async def get(
    client: AsyncClient,
    resource: type[Any],
    name: str,
    *,
    namespace: str | None = None,
    backoff: retry.Backoff = retry.DEFAULT,
) -> Object | None:
    """One object as API JSON, or None when it does not exist (transient failures retried)."""
    raw = resources.raw(resource)

    async def read() -> Any:
        return await client.get(raw, name, namespace=namespace)

    try:
        found = await retry.call(read, backoff=backoff)
    except errors.NotFound:
        return None
    return dict(found)
