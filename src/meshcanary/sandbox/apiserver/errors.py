"""Kubernetes `Status` errors.

Every failure a handler can hit is raised as an `ApiError` and rendered as a `Status` object with
the code and reason a real kube-apiserver would use, because clients branch on both (kubectl prints
`message`; kopf retries on 409 and relists on 410; client-go maps `reason` to typed errors).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client as a `Status` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The `Status` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str, group: str, name: str) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": kind}


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def not_found(resource: str, group: str, name: str) -> ApiError:
    message = f'{_qualified(resource, group)} "{name}" not found'
    return ApiError(404, "NotFound", message, details=_details(resource, group, name))


def not_found_path(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def method_not_allowed(method: str, what: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{method} is not supported on {what}")


def already_exists(resource: str, group: str, name: str) -> ApiError:
    message = f'{_qualified(resource, group)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", message, details=_details(resource, group, name))


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}'
    return ApiError(409, "Conflict", message, details=_details(resource, group, name))


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


ACCEPTED_PATCH_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include:"
        f" {ACCEPTED_PATCH_TYPES}; got {content_type!r}",
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid with one cause per (field, message), as kube-apiserver reports validation."""
    summary = ", ".join(f"{field}: {msg}" if field else msg for field, msg in causes)
    message = f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}'
    details = _details(kind, group, name)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": msg, "field": field} for field, msg in causes
    ]
    return ApiError(422, "Invalid", message, details=details)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def too_many_requests(message: str) -> ApiError:
    return ApiError(429, "TooManyRequests", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", message)
