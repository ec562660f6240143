"""Error envelope parsing and status → exception mapping (no server)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

import scaivault_sdk
from scaivault_sdk import errors
from scaivault_sdk.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ScaiVaultError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
    error_from_response,
    parse_retry_after,
)

from fakes import Recorder, envelope, sequence, sync_client


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_path", ValidationError),
        (400, "invalid_request", ValidationError),
        (401, "token_invalid", AuthenticationError),
        (403, "access_denied", PermissionDeniedError),
        (403, "insufficient_scope", PermissionDeniedError),
        (404, "secret_not_found", NotFoundError),
        (404, "version_not_found", NotFoundError),
        (409, "secret_exists", ConflictError),
        (409, "version_conflict", ConflictError),
        (410, "secret_expired", NotFoundError),
        (422, "validation_error", ValidationError),
        (429, "rate_limited", RateLimitError),
        (500, "internal_error", ServerError),
        (502, "bad_gateway", ServerError),
        (503, "service_unavailable", ServiceUnavailableError),
        (405, "method_not_allowed", ScaiVaultError),
        (413, "payload_too_large", ScaiVaultError),
    ],
)
def test_status_maps_to_class(status: int, code: str, cls: type[ScaiVaultError]) -> None:
    err = error_from_response(envelope(status, code, "boom", path="a/b"))
    assert type(err) is cls
    assert isinstance(err, ScaiVaultError)
    assert (err.code, err.message, err.status_code) == (code, "boom", status)
    assert err.details == {"path": "a/b"}
    assert err.request_id == "req_test"
    assert code in str(err) and "req_test" in str(err)


def test_non_envelope_body_still_typed() -> None:
    resp = httpx.Response(502, text="<html>bad gateway</html>", headers={"X-Request-ID": "req_hdr"})
    err = error_from_response(resp)
    assert isinstance(err, ServerError)
    assert err.code == "http_502"
    assert err.request_id == "req_hdr"
    assert err.details == {}


def test_validation_error_fields() -> None:
    fields = [{"field": "options.max_versions", "message": "must be 1-1000"}]
    err = error_from_response(envelope(422, "validation_error", fields=fields))
    assert isinstance(err, ValidationError)
    assert err.fields == fields


def test_rate_limit_retry_after_seconds() -> None:
    err = error_from_response(envelope(429, "rate_limited", headers={"Retry-After": "7"}))
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 7.0
    # absent header: still a number, so time.sleep(e.retry_after) works
    assert error_from_response(envelope(429, "rate_limited")).retry_after == 1.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(future) or 0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_errors_importable_from_top_level() -> None:
    for name in errors.__all__:
        if name[0].isupper():
            assert getattr(scaivault_sdk, name) is getattr(errors, name)


def test_client_raises_typed_error_with_envelope() -> None:
    rec = Recorder(sequence(envelope(404, "secret_not_found", "Secret 'x/y' not found", path="x/y")))
    with sync_client(rec) as client:
        with pytest.raises(NotFoundError) as info:
            client.secrets.read("x/y")
    assert info.value.code == "secret_not_found"
    assert info.value.details == {"path": "x/y"}
    assert info.value.status_code == 404
