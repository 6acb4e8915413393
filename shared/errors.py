"""Errors that reach callers.

Every failure a caller can cause or observe is an ``AppError``: it carries the HTTP status, a stable
machine-readable ``code`` and a human message. ``shared.http`` renders it as
``{"code", "message", "requestId"}``. Messages never contain secrets.
"""

from __future__ import annotations

from typing import ClassVar


class AppError(Exception):
    """Base class: an error with an HTTP status and a stable code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BadRequest"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class BadRequest(AppError):
    status = 400
    code = "BadRequest"


class InvalidParameter(AppError):
    status = 400
    code = "InvalidParameter"


class Unauthorized(AppError):
    status = 401
    code = "Unauthorized"


class Forbidden(AppError):
    status = 403
    code = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(AppError):
    status = 405
    code = "MethodNotAllowed"


class PayloadTooLarge(AppError):
    status = 413
    code = "PayloadTooLarge"


class UpstreamError(AppError):
    """A dependency (OSS, STS, a webhook) failed; details stay in the log, not in the answer."""

    status = 502
    code = "UpstreamError"


class ServiceUnavailable(AppError):
    """A dependency throttled us; the caller may retry after ``Retry-After`` seconds."""

    status = 503
    code = "ServiceUnavailable"


class ConfigError(AppError):
    """A missing or invalid environment variable, raised at start-up."""

    status = 500
    code = "MisconfiguredFunction"
