"""Retries, backoff and Retry-After (no server; httpx.MockTransport, recorded sleeps)."""

from __future__ import annotations

import httpx
import pytest

from scaivault_sdk import (
    APIConnectionError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)

from fakes import SECRET, Recorder, async_client, envelope, sequence, sync_client

OK = httpx.Response(200, json=SECRET)


def test_429_honours_retry_after_then_succeeds() -> None:
    rec = Recorder(sequence(envelope(429, "rate_limited", headers={"Retry-After": "2"}), OK))
    with sync_client(rec) as client:
        secret = client.secrets.read("app/db/password")
    assert secret.data == {"password": "hunter2"}
    assert len(rec.requests) == 2
    assert len(rec.sleeps) == 1 and 2.0 <= rec.sleeps[0] <= 2.2


def test_503_backs_off_exponentially_with_jitter() -> None:
    rec = Recorder(sequence(*[envelope(503, "service_unavailable")] * 3, OK))
    with sync_client(rec, backoff_base=1.0, backoff_max=100.0) as client:
        client.secrets.read("app/db/password")
    assert len(rec.requests) == 4
    # attempt n sleeps in [0.5, 1) · 2^(n-1)
    for n, slept in enumerate(rec.sleeps, start=1):
        assert 0.5 * 2 ** (n - 1) <= slept <= 2 ** (n - 1)


def test_backoff_is_capped() -> None:
    rec = Recorder(sequence(*[envelope(503, "service_unavailable")] * 6, OK))
    with sync_client(rec, backoff_base=1.0, backoff_max=2.0, max_retries=6) as client:
        client.secrets.read("app/db/password")
    assert max(rec.sleeps) <= 2.0


def test_429_exhausted_raises_rate_limit_error() -> None:
    rec = Recorder(sequence(envelope(429, "rate_limited", headers={"Retry-After": "1.5"})))
    with sync_client(rec, max_retries=2) as client:
        with pytest.raises(RateLimitError) as info:
            client.secrets.read("app/db/password")
    assert len(rec.requests) == 3
    assert info.value.retry_after == 1.5
    assert info.value.status_code == 429


def test_503_exhausted_raises_service_unavailable() -> None:
    rec = Recorder(sequence(envelope(503, "service_unavailable")))
    with sync_client(rec, max_retries=3) as client:
        with pytest.raises(ServiceUnavailableError):
            client.secrets.list()
    assert len(rec.requests) == 4


def test_retry_after_longer_than_cap_is_not_slept() -> None:
    rec = Recorder(sequence(envelope(429, "rate_limited", headers={"Retry-After": "3600"})))
    with sync_client(rec) as client:
        with pytest.raises(RateLimitError) as info:
            client.secrets.read("a/b")
    assert len(rec.requests) == 1 and rec.sleeps == []
    assert info.value.retry_after == 3600


def test_max_retries_zero_disables_retries() -> None:
    rec = Recorder(sequence(envelope(503, "service_unavailable"), OK))
    with sync_client(rec, max_retries=0) as client:
        with pytest.raises(ServiceUnavailableError):
            client.secrets.read("a/b")
    assert len(rec.requests) == 1


def test_500_is_not_retried() -> None:
    rec = Recorder(sequence(envelope(500, "internal_error"), OK))
    with sync_client(rec) as client:
        with pytest.raises(ServerError):
            client.secrets.read("a/b")
    assert len(rec.requests) == 1


def test_429_is_retried_for_non_idempotent_calls_too() -> None:
    written = httpx.Response(201, json={"path": "a/b", "version": 1})
    rec = Recorder(sequence(envelope(429, "rate_limited", headers={"Retry-After": "0"}), written))
    with sync_client(rec) as client:
        result = client.secrets.write("a/b", data={"k": "v"})
    assert result.version == 1 and result.created
    assert len(rec.requests) == 2


def test_connection_error_retried_for_idempotent_get() -> None:
    rec = Recorder(sequence(httpx.ReadError("reset"), httpx.ReadTimeout("slow"), OK))
    with sync_client(rec) as client:
        assert client.secrets.read("app/db/password").version == 2
    assert len(rec.requests) == 3 and len(rec.sleeps) == 2


def test_connection_error_exhausted_raises_api_connection_error() -> None:
    rec = Recorder(sequence(httpx.ConnectError("refused")))
    with sync_client(rec, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as info:
            client.secrets.read("a/b")
    assert len(rec.requests) == 3
    assert info.value.code == "connection_error" and info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_ambiguous_failure_not_replayed_for_write_without_cas() -> None:
    rec = Recorder(sequence(httpx.ReadTimeout("slow"), httpx.Response(200, json={"version": 2})))
    with sync_client(rec) as client:
        with pytest.raises(APIConnectionError):
            client.secrets.write("a/b", data={"k": "v"})
    assert len(rec.requests) == 1


def test_ambiguous_failure_replayed_for_write_with_cas() -> None:
    rec = Recorder(sequence(httpx.ReadTimeout("slow"), httpx.Response(200, json={"version": 4})))
    with sync_client(rec) as client:
        assert client.secrets.write("a/b", data={"k": "v"}, cas=3).version == 4
    assert len(rec.requests) == 2


def test_unsent_request_replayed_even_for_non_idempotent_post() -> None:
    restored = httpx.Response(200, json={"path": "a/b", "version": 1})
    rec = Recorder(sequence(httpx.ConnectError("refused"), restored))
    with sync_client(rec) as client:
        assert client.secrets.restore("a/b").path == "a/b"
    assert len(rec.requests) == 2


async def test_async_retry_after_and_backoff() -> None:
    rec = Recorder(
        sequence(
            envelope(429, "rate_limited", headers={"Retry-After": "1"}),
            httpx.ConnectError("refused"),
            OK,
        )
    )
    async with async_client(rec) as client:
        secret = await client.secrets.read("app/db/password")
    assert secret.version == 2
    assert len(rec.requests) == 3
    assert 1.0 <= rec.sleeps[0] <= 1.1 and len(rec.sleeps) == 2


async def test_async_exhausted_raises_typed_error() -> None:
    rec = Recorder(sequence(envelope(429, "rate_limited", headers={"Retry-After": "0.5"})))
    async with async_client(rec, max_retries=1) as client:
        with pytest.raises(RateLimitError) as info:
            await client.secrets.read("a/b")
    assert info.value.retry_after == 0.5
    assert len(rec.requests) == 2
