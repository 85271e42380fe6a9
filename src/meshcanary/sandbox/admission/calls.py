"""Calling one admission webhook, the way kube-apiserver's webhook client does.

A webhook configuration names its endpoint either by `url` (a real HTTPS server, such as a kopf
operator's on 127.0.0.1) or by `service` (in the sandbox: an in-process handler, such as the
injector of a simulated istiod revision, found through a `ServiceResolver`). Both go through
`WebhookCaller.call`, which enforces the timeout and checks the answer as the real client does.
A canary upgrade has to survive exactly these failures (istiod down or slow, a wrong CA, a broken
answer), so each one surfaces as a `CallError` worded like kube-apiserver's, and the webhook's
`failurePolicy` (applied in `webhooks.py`) decides whether the request fails or goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

REVIEW_API_VERSION = "admission.k8s.io/v1"

ServiceHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Takes an AdmissionReview request body, returns the AdmissionReview response body."""


class ServiceResolver(Protocol):
    def resolve(self, namespace: str, name: str, port: int, path: str) -> ServiceHandler | None:
        """The handler behind this Service port and path; None when there is no such Service
        or nothing ready serves it."""


class NoServices:
    """The resolver when nothing in the sandbox serves webhooks: every Service call fails."""

    def resolve(self, namespace: str, name: str, port: int, path: str) -> ServiceHandler | None:
        return None


class CallError(Exception):
    """The webhook could not be called, or did not answer with a valid review.

    The message is what kube-apiserver puts after `failed calling webhook "<name>": `.
    """


@dataclass(frozen=True)
class Verdict:
    """A webhook's answer: allowed or not, its `status`, and its JSON patch (mutating only)."""

    allowed: bool
    status: dict[str, Any]
    patch: list[Any] | None = None


class WebhookCaller:
    """Posts AdmissionReviews to URL and Service endpoints; `close()` it when done."""

    def __init__(
        self,
        resolver: ServiceResolver | None = None,
        service_exists: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.resolver: ServiceResolver = resolver or NoServices()
        self._service_exists = service_exists
        self._https = _HttpsClient()

    async def call(
        self, client_config: dict[str, Any], review: dict[str, Any], timeout: float, mutating: bool
    ) -> Verdict:
        """Send `review` and check the answer; raises `CallError` on any failure."""
        url = f"{endpoint_url(client_config)}?timeout={go_duration(timeout)}"
        try:
            async with asyncio.timeout(timeout):
                body = await self._send(client_config, url, review)
        except TimeoutError:
            raise _failed(url, "context deadline exceeded") from None
        return _verdict(body, str(review["request"]["uid"]), mutating)

    async def close(self) -> None:
        await self._https.close()

    async def _send(self, client_config: dict[str, Any], url: str, review: dict[str, Any]) -> Any:
        if client_config.get("url"):
            return await self._https.post(url, review, client_config.get("caBundle"))
        service = client_config.get("service") or {}
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port, path = int(service.get("port") or 443), str(service.get("path") or "/")
        handler = self.resolver.resolve(namespace, name, port, path)
        if handler is None:
            if self._service_exists is not None and self._service_exists(namespace, name):
                raise _failed(url, f'no endpoints available for service "{name}"')
            raise _failed(url, f'service "{name}" not found')
        try:
            # The handler gets its own copy, as it would over the wire.
            return await handler(orjson.loads(orjson.dumps(review)))
        except Exception as exc:
            raise _failed(url, _server_error(500, str(exc))) from None


def endpoint_url(client_config: dict[str, Any]) -> str:
    """The URL kube-apiserver posts to (and names in its errors), without the query."""
    if client_config.get("url"):
        return str(client_config["url"])
    service = client_config.get("service") or {}
    host = f"{service.get('name', '')}.{service.get('namespace', '')}.svc"
    return f"https://{host}:{service.get('port') or 443}{service.get('path') or ''}"


def go_duration(seconds: float) -> str:
    """A duration as Go prints it in the `?timeout=` parameter: 10s, 1.5s, 50ms."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def _failed(url: str, reason: str) -> CallError:
    return CallError(f'failed to call webhook: Post "{url}": {reason}')


def _invalid(reason: str) -> CallError:
    return CallError(f"received invalid webhook response: {reason}")


def _server_error(status: int, body: str) -> str:
    """What client-go says of an answer that is not 200 and not a Status."""
    if status >= 500:
        return f"an error on the server ({body!r}) has prevented the request from succeeding"
    return f"the server responded with the status code {status} but did not return more information"


def _verdict(body: Any, uid: str, mutating: bool) -> Verdict:
    """Check an AdmissionReview answer as `VerifyAdmissionResponse` does."""
    if not isinstance(body, dict):
        raise _invalid("the response is not an AdmissionReview object")
    got = (body.get("apiVersion"), body.get("kind"))
    if got != (REVIEW_API_VERSION, "AdmissionReview"):
        raise _invalid(
            f"expected webhook response of {REVIEW_API_VERSION}, Kind=AdmissionReview,"
            f" got {got[0]}, Kind={got[1]}"
        )
    response = body.get("response")
    if not isinstance(response, dict):
        raise _invalid("webhook response was absent")
    if response.get("uid") != uid:
        raise _invalid(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
    status = response.get("status")
    return Verdict(
        allowed=response.get("allowed") is True,
        status=status if isinstance(status, dict) else {},
        # A validating webhook's patch is ignored, as kube-apiserver ignores it.
        patch=_patch(response) if mutating else None,
    )


def _patch(response: dict[str, Any]) -> list[Any] | None:
    """The decoded JSON patch of a mutating webhook's answer, or None."""
    patch, patch_type = response.get("patch"), response.get("patchType")
    if not patch and not patch_type:
        return None
    if not patch_type:
        raise _invalid("webhook returned response.patch but not response.patchType")
    if not patch:
        raise _invalid("webhook returned response.patchType but not response.patch")
    if patch_type != "JSONPatch":
        raise _invalid(f'webhook returned invalid response.patchType of "{patch_type}"')
    try:
        ops = orjson.loads(base64.b64decode(str(patch), validate=True))
    except (binascii.Error, orjson.JSONDecodeError) as exc:
        raise _invalid(f"the patch is not base64-encoded JSON: {exc}") from None
    if not isinstance(ops, list):
        raise _invalid("the patch is not a list of JSON patch operations")
    return ops


class _HttpsClient:
    """One aiohttp session for every URL webhook; the server certificate is verified against
    the webhook's `caBundle` (system roots without one)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def post(self, url: str, review: dict[str, Any], ca_bundle: Any) -> Any:
        scheme = url.partition(":")[0]
        if scheme != "https":
            raise _failed(url, f'unsupported protocol scheme "{scheme}"')
        context = self._context(url, ca_bundle)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url,
                data=orjson.dumps(review),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                ssl=context,
            ) as answer:
                text = await answer.read()
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _failed(url, _tls_reason(exc.certificate_error)) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error)
            if isinstance(exc.os_error, ConnectionRefusedError):
                reason = "connection refused"
            raise _failed(url, f"dial tcp {exc.host}:{exc.port}: connect: {reason}") from None
        except aiohttp.ClientError as exc:
            raise _failed(url, str(exc) or type(exc).__name__) from None
        if answer.status != 200:
            raise _failed(url, _server_error(answer.status, text.decode(errors="replace")))
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _failed(url, f"invalid JSON in the response: {exc}") from None

    def _context(self, url: str, ca_bundle: Any) -> ssl.SSLContext:
        key = str(ca_bundle or "")
        if key not in self._contexts:
            try:
                cadata = base64.b64decode(key, validate=True).decode() if key else None
                self._contexts[key] = ssl.create_default_context(cadata=cadata)
            except (binascii.Error, UnicodeDecodeError, ssl.SSLError) as exc:
                raise _failed(url, f"unable to load the caBundle: {exc}") from None
        return self._contexts[key]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _tls_reason(error: Exception) -> str:
    """Go's wording for a certificate the caBundle does not vouch for."""
    detail = getattr(error, "verify_message", "") or str(error)
    if any(word in detail for word in ("issuer", "self-signed", "self signed", "signature")):
        detail = "certificate signed by unknown authority"
    return f"tls: failed to verify certificate: x509: {detail}"
