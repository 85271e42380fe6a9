"""Errors of the Kubernetes layer: one-line messages, typed as transient (retry) or not.

Nothing outside `kube/` imports lightkube, so nothing outside can catch its exceptions either:
every function of this layer raises a `KubeError` instead, translated here in one place. Each
class says whether retrying can help (`transient`), so the retry policy (`kube.retry`) is
decided by type, never by string matching at call sites. Messages are single lines meant to be
shown as they are by the CLI (`error: ...`), without a traceback.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import ClassVar

import httpx2
from lightkube import ApiError, ConfigError


class KubeError(Exception):
    """Base of every error this layer raises; `str()` is a one-line message."""

    transient: ClassVar[bool] = False
    """Whether the same request may succeed if simply tried again later."""


# -- configuration and connection -------------------------------------------------------------


class ConfigurationError(KubeError):
    """The kubeconfig cannot be used as it is."""


class NoKubeconfig(ConfigurationError):
    """No kubeconfig file was found (and we do not run inside a cluster)."""


class UnknownContext(ConfigurationError):
    """The requested (or current) context is not in the kubeconfig."""


class InvalidKubeconfig(ConfigurationError):
    """The kubeconfig exists but is malformed or incomplete."""


class CannotConnect(KubeError):
    """The API server did not answer: refused, unreachable, timed out, TLS failure."""

    transient = True


class WaitTimeout(KubeError, TimeoutError):
    """A wait for a condition ran out of time."""


class UnknownKind(KubeError):
    """A manifest names an apiVersion/kind this layer has no resource definition for."""


class InvalidManifest(KubeError):
    """A manifest lacks apiVersion, kind or metadata.name."""


# -- API answers -------------------------------------------------------------------------------


class ApiFailure(KubeError):
    """The API server answered with an error Status."""

    def __init__(
        self, message: str, *, code: int, reason: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


class BadRequest(ApiFailure):
    """400: the request itself is wrong."""


class Unauthorized(ApiFailure):
    """401: the credentials were rejected."""


class Forbidden(ApiFailure):
    """403: RBAC denies the request."""


class NotFound(ApiFailure):
    """404: no such object (or resource type)."""


class AlreadyExists(ApiFailure):
    """409 AlreadyExists: create of an existing object."""


class Conflict(ApiFailure):
    """409 Conflict: a stale resourceVersion; re-read and try again."""

    transient = True


class Gone(ApiFailure):
    """410: a resourceVersion or continue token expired; relist."""


class UnsupportedMediaType(ApiFailure):
    """415: e.g. a strategic merge patch sent to a custom resource."""


class Invalid(ApiFailure):
    """422: the object fails validation (or a JSON patch test failed)."""


class TooManyRequests(ApiFailure):
    """429: throttled by API priority and fairness."""

    transient = True


class ServerError(ApiFailure):
    """5xx: the server (or a webhook it called) failed."""

    transient = True


_BY_CODE: dict[int, type[ApiFailure]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def failure_class(code: int, reason: str) -> type[ApiFailure]:
    """The ApiFailure subclass for an HTTP status code and a Status reason."""
    if code == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if code >= 500:
        return ServerError
    return _BY_CODE.get(code, ApiFailure)


def from_api_error(error: ApiError) -> ApiFailure:
    """Translate lightkube's ApiError (a Status answer) into our typed failure."""
    status = error.status
    response = error.response
    code = int(status.code or (response.status_code if response is not None else 0))
    reason = status.reason or ""
    message = _one_line(status.message or reason or f"HTTP {code}")
    retry_after = status.details.retryAfterSeconds if status.details else None
    cls = failure_class(code, reason)
    return cls(message, code=code, reason=reason, retry_after=retry_after)


def _from_status_error(error: httpx2.HTTPStatusError, server: str) -> ApiFailure:
    """An HTTP error whose body was not decoded (e.g. a watch): its Status if readable."""
    response = error.response
    try:
        status = response.json()
    except (httpx2.ResponseNotRead, ValueError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    code, reason = response.status_code, str(status.get("reason") or "")
    message = status.get("message") or f"{server} answered HTTP {code} {response.reason_phrase}"
    return failure_class(code, reason)(_one_line(str(message)), code=code, reason=reason)


def translate(error: BaseException, server: str = "the API server") -> KubeError | None:
    """Our KubeError for a lightkube/transport exception, or None if it is not one of those."""
    if isinstance(error, KubeError):
        return error
    if isinstance(error, ApiError):
        return from_api_error(error)
    if isinstance(error, httpx2.HTTPStatusError):
        return _from_status_error(error, server)
    if isinstance(error, httpx2.TransportError | ssl.SSLError | ConnectionError):
        return CannotConnect(f"cannot connect to {server}: {describe(error)}")
    if isinstance(error, ConfigError):
        return InvalidKubeconfig(_one_line(str(error)))
    return None


@contextlib.contextmanager
def translated(server: str = "the API server") -> Iterator[None]:
    """Raise our KubeError for any lightkube or transport error inside the block.

    Works around awaits too: `with errors.translated(): await client.get(...)`.
    """
    try:
        yield
    except Exception as error:
        ours = translate(error, server)
        if ours is None or ours is error:
            raise
        raise ours from error


def describe(error: BaseException) -> str:
    """The most specific one-line cause of a transport error (the innermost exception's text)."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = _one_line(str(cause)) or type(cause).__name__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS verification failed ({text})"
    if isinstance(cause, httpx2.TimeoutException | TimeoutError):
        return f"timed out ({text})" if str(cause) else "timed out"
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())
