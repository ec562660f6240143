"""Authentication: static token, env defaults, client-credentials exchange and refresh."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from scaivault_sdk import AuthenticationError, ScaiVaultClient, SyncScaiVaultClient

from fakes import BASE, SECRET, Recorder, async_client, envelope, sync_client


class TokenServer:
    """Issues tok-1, tok-2, … at /v1/auth/token; other routes accept only the newest token."""

    def __init__(self, expires_in: int = 3600, reject_first_with: str | None = None) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.forms: list[dict[str, list[str]]] = []
        self.reject_first_with = reject_first_with

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            assert "authorization" not in request.headers
            form = parse_qs(request.content.decode())
            self.forms.append(form)
            if form["client_secret"] != ["s3cret"]:
                return envelope(401, "invalid_client", "bad client credentials")
            self.issued += 1
            return httpx.Response(
                200,
                json={"access_token": f"tok-{self.issued}", "token_type": "Bearer",
                      "expires_in": self.expires_in},
            )
        if self.reject_first_with and self.issued == 1:
            return envelope(401, self.reject_first_with)
        if request.headers.get("authorization") != f"Bearer tok-{self.issued}":
            return envelope(401, "token_invalid")
        return httpx.Response(200, json=SECRET)


def creds(**extra: Any) -> dict[str, Any]:
    return {"client_id": "sa:billing", "client_secret": "s3cret", **extra}


def test_static_token_sent_as_bearer() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json=SECRET))
    with sync_client(rec, token="skt_abc") as client:
        client.secrets.read("app/db/password")
    assert rec.requests[0].headers["authorization"] == "Bearer skt_abc"
    assert rec.requests[0].headers["user-agent"].startswith("scaivault-sdk-python/")


def test_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAIVAULT_URL", "http://env.test:9999/")
    monkeypatch.setenv("SCAIVAULT_TOKEN", "skt_env")
    monkeypatch.setenv("SCAIVAULT_TENANT_ID", "tnt_env")
    rec = Recorder(lambda r: httpx.Response(200, json=SECRET))
    # `...` (as the docs write it) means "not given" as well.
    for client in (
        SyncScaiVaultClient(transport=httpx.MockTransport(rec)),
        SyncScaiVaultClient(..., transport=httpx.MockTransport(rec)),
        SyncScaiVaultClient(base_url=..., token=..., transport=httpx.MockTransport(rec)),
    ):
        with client:
            client.secrets.read("a/b")
    for request in rec.requests:
        assert str(request.url) == "http://env.test:9999/v1/secrets/a/b"
        assert request.headers["authorization"] == "Bearer skt_env"
        assert request.headers["x-tenant-id"] == "tnt_env"


def test_explicit_arguments_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAIVAULT_URL", "http://env.test")
    monkeypatch.setenv("SCAIVAULT_TOKEN", "skt_env")
    rec = Recorder(lambda r: httpx.Response(200, json=SECRET))
    with SyncScaiVaultClient(
        base_url=BASE, token="skt_arg", tenant_id="tnt_arg", partner_id="ptn_arg",
        transport=httpx.MockTransport(rec),
    ) as client:
        client.secrets.read("a/b")
    request = rec.requests[0]
    assert str(request.url).startswith(BASE)
    assert request.headers["authorization"] == "Bearer skt_arg"
    assert request.headers["x-tenant-id"] == "tnt_arg"
    assert request.headers["x-partner-id"] == "ptn_arg"


def test_client_credentials_exchanged_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAIVAULT_TOKEN", "skt_env_must_not_win")
    server = TokenServer()
    rec = Recorder(server)
    with sync_client(rec, **creds()) as client:
        client.secrets.read("a/b")
        client.secrets.read("a/b")
    assert rec.paths() == ["POST /v1/auth/token", "GET /v1/secrets/a/b", "GET /v1/secrets/a/b"]
    assert server.forms[0] == {
        "grant_type": ["client_credentials"], "client_id": ["sa:billing"], "client_secret": ["s3cret"],
    }
    assert rec.requests[1].headers["authorization"] == "Bearer tok-1"


def test_token_refreshed_shortly_before_expiry() -> None:
    server = TokenServer(expires_in=300)
    rec = Recorder(server)
    now = [1000.0]
    with sync_client(rec, **creds()) as client:
        client._core.clock = lambda: now[0]
        client.secrets.read("a/b")
        now[0] += 250  # still 50 s left: no refresh yet (refresh margin is 30 s for 300 s)
        client.secrets.read("a/b")
        assert server.issued == 1
        now[0] += 25  # 25 s left: inside the margin
        client.secrets.read("a/b")
    assert server.issued == 2
    assert rec.requests[-1].headers["authorization"] == "Bearer tok-2"


def test_401_token_expired_refreshes_and_retries_once() -> None:
    server = TokenServer(reject_first_with="token_expired")
    rec = Recorder(server)
    with sync_client(rec, **creds()) as client:
        secret = client.secrets.read("a/b")
    assert secret.version == 2
    assert rec.paths() == [
        "POST /v1/auth/token", "GET /v1/secrets/a/b", "POST /v1/auth/token", "GET /v1/secrets/a/b",
    ]


def test_persistent_401_raises_after_one_refresh() -> None:
    rec = Recorder(
        lambda r: httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        if r.url.path == "/v1/auth/token"
        else envelope(401, "token_expired")
    )
    with sync_client(rec, **creds()) as client:
        with pytest.raises(AuthenticationError) as info:
            client.secrets.read("a/b")
    assert info.value.code == "token_expired"
    assert [p for p in rec.paths() if "token" in p] == ["POST /v1/auth/token"] * 2


def test_static_token_401_is_not_refreshed() -> None:
    rec = Recorder(lambda r: envelope(401, "token_expired"))
    with sync_client(rec, token="skt_old") as client:
        with pytest.raises(AuthenticationError):
            client.secrets.read("a/b")
    assert rec.paths() == ["GET /v1/secrets/a/b"]


def test_bad_client_secret_raises_authentication_error() -> None:
    rec = Recorder(TokenServer())
    with sync_client(rec, client_id="sa:billing", client_secret="wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            client.auth.whoami()
    assert info.value.code == "invalid_client"
    assert rec.paths() == ["POST /v1/auth/token"]


def test_token_endpoint_without_access_token() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"token_type": "Bearer"}))
    with sync_client(rec, **creds()) as client:
        with pytest.raises(AuthenticationError):
            client.secrets.read("a/b")


def test_token_endpoint_retried_on_503() -> None:
    calls = {"n": 0}
    server = TokenServer()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token" and calls["n"] == 0:
            calls["n"] += 1
            return envelope(503, "service_unavailable")
        return server(request)

    rec = Recorder(handler)
    with sync_client(rec, **creds()) as client:
        assert client.secrets.read("a/b").version == 2
    assert len(rec.sleeps) == 1


async def test_async_client_credentials_refresh_on_401() -> None:
    server = TokenServer(reject_first_with="token_expired")
    rec = Recorder(server)
    async with async_client(rec, **creds()) as client:
        assert isinstance(client, ScaiVaultClient)
        secret = await client.secrets.read("a/b")
        await client.secrets.read("a/b")
    assert secret.data["password"] == "hunter2"
    assert server.issued == 2
    assert rec.paths().count("POST /v1/auth/token") == 2
