"""Typed errors raised by the ScaiVault SDK.

Every error response of the API has the envelope
``{"error": {"code", "message", "details", "request_id"}}``; :func:`error_from_response`
turns it into the matching subclass of :class:`ScaiVaultError`. Branch on ``.code`` for
specific handling (``secret_not_found`` vs ``version_not_found``), on the class for broad
handling.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, Mapping

import httpx

__all__ = [
    "ScaiVaultError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ServiceUnavailableError",
    "ServerError",
    "APIConnectionError",
    "error_from_response",
    "parse_retry_after",
]


class ScaiVaultError(Exception):
    """Base class of every error the SDK raises.

    ``code`` is the stable machine-readable code (``secret_not_found``), ``message`` the
    human-readable text, ``details`` the code-specific context (``{"path": ...}``),
    ``request_id`` the server's ``req_…`` id (quote it in support tickets) and
    ``status_code`` the HTTP status (``None`` when no response was received).
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id
        self.status_code = status_code

    def __str__(self) -> str:
        parts = [f"{self.code}: {self.message}"]
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, request_id={self.request_id!r})"
        )


class AuthenticationError(ScaiVaultError):
    """401: missing, invalid, expired or revoked token."""


class PermissionDeniedError(ScaiVaultError):
    """403: the token lacks the scope, or no policy permits the action."""


class NotFoundError(ScaiVaultError):
    """404 (``secret_not_found``, ``version_not_found``, …) and 410 ``secret_expired``."""


class ConflictError(ScaiVaultError):
    """409: ``secret_exists`` (soft-deleted path in retention) or ``version_conflict`` (cas)."""


class ValidationError(ScaiVaultError):
    """400 / 422: the request was rejected; for 422 ``details["fields"]`` lists the fields."""

    @property
    def fields(self) -> list[dict[str, Any]]:
        fields = self.details.get("fields")
        return list(fields) if isinstance(fields, list) else []


class RateLimitError(ScaiVaultError):
    """429 ``rate_limited``. ``retry_after`` is the server's ``Retry-After`` in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Always a number so ``time.sleep(e.retry_after)`` works; 1 s when the header is absent.
        self.retry_after: float = 1.0 if retry_after is None else retry_after


class ServiceUnavailableError(ScaiVaultError):
    """503 ``service_unavailable``: transient, back off and retry."""


class ServerError(ScaiVaultError):
    """Any other 5xx (``internal_error``)."""


class APIConnectionError(ScaiVaultError):
    """No response was received (connection refused/reset, timeout)."""


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date; ``None`` if absent/garbled."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _class_for_status(status: int) -> type[ScaiVaultError]:
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status in (404, 410):
        return NotFoundError
    if status == 409:
        return ConflictError
    if status in (400, 422):
        return ValidationError
    if status == 429:
        return RateLimitError
    if status == 503:
        return ServiceUnavailableError
    if status >= 500:
        return ServerError
    return ScaiVaultError


def error_from_response(response: httpx.Response) -> ScaiVaultError:
    """Build the typed error for a non-2xx response, tolerating bodies that are not the envelope."""
    status = response.status_code
    code = f"http_{status}"
    message = response.reason_phrase or f"HTTP {status}"
    details: dict[str, Any] = {}
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        code = str(envelope.get("code") or code)
        message = str(envelope.get("message") or message)
        if isinstance(envelope.get("details"), dict):
            details = envelope["details"]
        request_id = envelope.get("request_id") or request_id
    cls = _class_for_status(status)
    kwargs: dict[str, Any] = {}
    if cls is RateLimitError:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    return cls(code, message, details, request_id, status, **kwargs)
