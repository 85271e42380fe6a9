"""lightkube and transport exceptions become typed, one-line KubeErrors."""

from __future__ import annotations

import ssl

import httpx2
import pytest
from lightkube import ApiError, ConfigError

from meshcanary.kube import errors

from .fakeapi import status

REQUEST = httpx2.Request("GET", "https://api.example/api/v1/pods")


def api_error(
    code: int, reason: str, message: str = "", retry_after: int | None = None
) -> ApiError:
    response = status(code, reason, message, retry_after)
    response.request = REQUEST
    return ApiError(request=REQUEST, response=response)


@pytest.mark.parametrize(
    ("code", "reason", "cls", "transient"),
    [
        (400, "BadRequest", errors.BadRequest, False),
        (401, "Unauthorized", errors.Unauthorized, False),
        (403, "Forbidden", errors.Forbidden, False),
        (404, "NotFound", errors.NotFound, False),
        (409, "AlreadyExists", errors.AlreadyExists, False),
        (409, "Conflict", errors.Conflict, True),
        (410, "Expired", errors.Gone, False),
        (415, "UnsupportedMediaType", errors.UnsupportedMediaType, False),
        (422, "Invalid", errors.Invalid, False),
        (429, "TooManyRequests", errors.TooManyRequests, True),
        (500, "InternalError", errors.ServerError, True),
        (503, "ServiceUnavailable", errors.ServerError, True),
        (418, "Teapot", errors.ApiFailure, False),
    ],
)
def test_status_codes_map_to_types(
    code: int, reason: str, cls: type[errors.ApiFailure], transient: bool
) -> None:
    failure = errors.translate(api_error(code, reason, 'pods "x"\n  not found'))
    assert type(failure) is cls
    assert isinstance(failure, errors.ApiFailure)
    assert (failure.code, failure.reason, failure.transient) == (code, reason, transient)
    assert str(failure) == 'pods "x" not found'


def test_retry_after_is_kept() -> None:
    failure = errors.translate(api_error(429, "TooManyRequests", retry_after=7))
    assert isinstance(failure, errors.TooManyRequests) and failure.retry_after == 7


def test_watch_error_events_without_a_response() -> None:
    from lightkube.models.meta_v1 import Status

    error = ApiError(status=Status(code=410, reason="Expired", message="too old"))
    failure = errors.translate(error)
    assert isinstance(failure, errors.Gone) and str(failure) == "too old"


def test_non_json_status_errors() -> None:
    response = httpx2.Response(502, text="bad gateway", request=REQUEST)
    error = httpx2.HTTPStatusError("bad", request=REQUEST, response=response)
    failure = errors.translate(error, "https://api.example")
    assert isinstance(failure, errors.ServerError)
    assert str(failure) == "https://api.example answered HTTP 502 Bad Gateway"
    body = {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}
    response = httpx2.Response(409, json=body, request=REQUEST)
    error = httpx2.HTTPStatusError("x", request=REQUEST, response=response)
    failure = errors.translate(error)
    assert isinstance(failure, errors.AlreadyExists) and str(failure) == "exists"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (httpx2.ConnectError("refused", request=REQUEST), "refused"),
        (httpx2.ReadTimeout("", request=REQUEST), "timed out"),
        (ConnectionResetError("reset by peer"), "reset by peer"),
        (
            ssl.SSLCertVerificationError(1, "verify failed"),
            "TLS verification failed (verify failed)",
        ),
    ],
)
def test_transport_errors_cannot_connect(error: Exception, text: str) -> None:
    failure = errors.translate(error, "https://api.example")
    assert isinstance(failure, errors.CannotConnect) and failure.transient
    assert str(failure).startswith("cannot connect to https://api.example: ")
    assert text in str(failure)


def test_describe_finds_the_innermost_cause() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
        except ssl.SSLError as inner:
            raise httpx2.ConnectError("wrapped", request=REQUEST) from inner
    except httpx2.ConnectError as outer:
        expected = "TLS verification failed (certificate verify failed: self-signed)"
        assert errors.describe(outer) == expected


def test_config_errors_and_others() -> None:
    assert isinstance(errors.translate(ConfigError("bad")), errors.InvalidKubeconfig)
    assert errors.translate(KeyError("x")) is None
    mine = errors.NotFound("gone", code=404)
    assert errors.translate(mine) is mine


def test_translated_context_manager() -> None:
    with pytest.raises(errors.NotFound) as caught, errors.translated():
        raise api_error(404, "NotFound", "missing")
    assert isinstance(caught.value.__cause__, ApiError)
    with pytest.raises(KeyError), errors.translated():
        raise KeyError("untouched")
    with pytest.raises(errors.Conflict), errors.translated():
        raise errors.Conflict("ours", code=409)


def test_wait_timeout_is_a_timeout_error() -> None:
    assert issubclass(errors.WaitTimeout, TimeoutError)
    assert issubclass(errors.WaitTimeout, errors.KubeError)
