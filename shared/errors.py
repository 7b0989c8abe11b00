"""Errors that services raise and every entry point maps to the spec's error envelope."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure a caller can act on: carries the HTTP status and the envelope's fields."""

    status_code = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        if code:
            self.code = code


class ValidationFailed(AppError):
    status_code = 422
    code = "VALIDATION_ERROR"


class Forbidden(AppError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(AppError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(AppError):
    status_code = 409
    code = "CONFLICT"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class ServiceUnavailable(AppError):
    """The server cannot do it now (its disk is full or unwritable): retry later."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"


def field_error(field: str, message: str) -> list[dict[str, Any]]:
    return [{"field": field, "message": message}]
