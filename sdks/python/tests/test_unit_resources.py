"""Request building and response parsing of the resources (no server)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from scaivault_sdk import (
    BatchResult,
    NotFoundError,
    Secret,
    SecretInfo,
    SecretList,
    SecretMetadata,
    SecretType,
    ValidationError,
    WhoAmI,
)

from fakes import SECRET, Recorder, async_client, envelope, sync_client


def ok(body: object, status: int = 200) -> Recorder:
    return Recorder(lambda r: httpx.Response(status, json=body))


def test_read_parses_secret_and_hides_value_in_repr() -> None:
    rec = ok({**SECRET, "brand_new_field": {"x": 1}})
    with sync_client(rec) as client:
        secret = client.secrets.read("app/db/password", version=2)
    assert str(rec.requests[0].url).endswith("/v1/secrets/app/db/password?version=2")
    assert isinstance(secret, Secret)
    assert secret.secret_type is SecretType.JSON and secret.secret_type == "json"
    assert secret.metadata == SecretMetadata(description="db", tags=["a"], owner="team:x",
                                             custom={"k": "v"})
    assert secret.created_at == datetime(2026, 4, 23, 18, 0, 0, 123456, tzinfo=timezone.utc)
    assert secret.expires_at is None
    assert secret.raw["brand_new_field"] == {"x": 1}
    assert "hunter2" not in repr(secret)


def test_timestamps_with_nanoseconds_and_unknown_type() -> None:
    secret = Secret.from_dict({"path": "a", "secret_type": "quantum", "version": 1,
                               "updated_at": "2026-04-23T18:00:00.123456789Z",
                               "created_at": "not a date"})
    assert secret.secret_type == "quantum"
    assert secret.updated_at == datetime(2026, 4, 23, 18, 0, 0, 123456, tzinfo=timezone.utc)
    assert secret.created_at == "not a date"


def test_write_body_merges_flat_options() -> None:
    rec = ok({"path": "a/b", "version": 1, "secret_type": "json"}, status=201)
    with sync_client(rec) as client:
        result = client.secrets.write(
            path="a/b",
            data={"k": "v"},
            secret_type=SecretType.JSON,
            metadata=SecretMetadata(tags=["x"], owner="team:y"),
            options={"expires_in": "1h", "max_versions": 3},
            max_versions=10,
            rotation_policy_id="rot_q",
            cas=0,
        )
    request = rec.requests[0]
    assert (request.method, request.url.path) == ("PUT", "/v1/secrets/a/b")
    assert rec.body() == {
        "data": {"k": "v"},
        "secret_type": "json",
        "metadata": {"tags": ["x"], "owner": "team:y"},
        "options": {"expires_in": "1h", "max_versions": 10, "rotation_policy_id": "rot_q", "cas": 0},
    }
    assert result.created and result.secret_type is SecretType.JSON


def test_write_minimal_body() -> None:
    rec = ok({"path": "a/b", "version": 2})
    with sync_client(rec) as client:
        client.secrets.write("a/b", {"k": "v"})
    assert rec.body() == {"data": {"k": "v"}}


def test_paths_are_escaped_not_reinterpreted() -> None:
    rec = Recorder(lambda r: envelope(400, "invalid_path"))
    with sync_client(rec) as client:
        with pytest.raises(ValidationError):
            client.secrets.read("Bad Path?x=1#frag")
        with pytest.raises(ValidationError):
            client.secrets.read("a/../b")
    assert rec.requests[0].url.raw_path == b"/v1/secrets/Bad%20Path%3Fx%3D1%23frag"
    assert rec.requests[1].url.raw_path == b"/v1/secrets/a/%2E%2E/b"


def test_metadata_update_restore_delete_versions() -> None:
    rec = ok({"path": "a/b", "version": 3, "version_count": 3, "tags": ["t"],
              "rotation": {"policy_id": None, "last_rotated_at": None, "next_rotation_at": None},
              "access_count_30d": 4})
    with sync_client(rec) as client:
        info = client.secrets.update_metadata(path="a/b", metadata={"tags": ["t"]},
                                              options={"max_versions": 5})
        client.secrets.restore("a/b")
        client.secrets.restore("a/b", version=2)
        client.secrets.delete("a/b")
        client.secrets.delete("a/b", version=2)
        client.secrets.delete("a/b", permanent=True)
        client.secrets.versions("a/b")
        client.secrets.read_metadata("a/b")
    assert isinstance(info, SecretInfo) and info.version_count == 3 and info.access_count_30d == 4
    sent = [(r.method, str(r.url).removeprefix("http://vault.test"), r.content) for r in rec.requests]
    assert sent == [
        ("PATCH", "/v1/secrets/a/b/metadata",
         b'{"metadata":{"tags":["t"]},"options":{"max_versions":5}}'),
        ("POST", "/v1/secrets/a/b/restore", b""),
        ("POST", "/v1/secrets/a/b/restore", b'{"version":2}'),
        ("DELETE", "/v1/secrets/a/b", b""),
        ("DELETE", "/v1/secrets/a/b?version=2", b""),
        ("DELETE", "/v1/secrets/a/b?permanent=true", b""),
        ("GET", "/v1/secrets/a/b/versions", b""),
        ("GET", "/v1/secrets/a/b/metadata", b""),
    ]


def test_list_params_and_data_alias() -> None:
    rec = ok({"secrets": [{"path": "x/a", "tags": ["t"], "version": 1, "secret_type": "kv",
                           "access_count_30d": 0, "metadata": {"owner": "o"}}],
              "cursor": None, "has_more": False})
    with sync_client(rec) as client:
        listing = client.secrets.list(prefix="x/", limit=200, include_metadata=True,
                                      expiring_within="30d")
        client.secrets.list()
    assert rec.requests[0].url.params == httpx.QueryParams(
        {"prefix": "x/", "limit": "200", "include_metadata": "true", "expiring_within": "30d"})
    assert rec.requests[1].url.query == b""
    assert isinstance(listing, SecretList)
    assert listing.data is listing.secrets and len(listing) == 1
    item = listing.data[0]
    assert (item.path, item.tags, item.access_count_30d) == ("x/a", ["t"], 0)
    assert item.metadata is not None and item.metadata.owner == "o"


def _paged_handler(request: httpx.Request) -> httpx.Response:
    cursor = request.url.params.get("cursor")
    pages = {None: (["p/1", "p/2"], "c1"), "c1": (["p/3"], "c2"), "c2": (["p/4"], None)}
    paths, nxt = pages[cursor]
    return httpx.Response(200, json={"secrets": [{"path": p} for p in paths],
                                     "cursor": nxt, "has_more": nxt is not None})


def test_iter_follows_cursors() -> None:
    rec = Recorder(_paged_handler)
    with sync_client(rec) as client:
        paths = [item.path for item in client.secrets.iter(prefix="p/", limit=2)]
    assert paths == ["p/1", "p/2", "p/3", "p/4"]
    assert [r.url.params.get("cursor") for r in rec.requests] == [None, "c1", "c2"]
    assert all(r.url.params["limit"] == "2" for r in rec.requests)


async def test_async_iter_follows_cursors() -> None:
    rec = Recorder(_paged_handler)
    async with async_client(rec) as client:
        paths = [item.path async for item in client.secrets.iter(prefix="p/")]
    assert paths == ["p/1", "p/2", "p/3", "p/4"]


def test_batch_read_body_and_result() -> None:
    rec = ok({
        "secrets": {"a/b": {"data": {"k": "v"}, "version": 3, "secret_type": "json"}},
        "errors": {"c/d": {"code": "access_denied", "message": "No policy permits read"}},
        "retrieved": 1, "failed": 1,
    })
    with sync_client(rec) as client:
        batch = client.secrets.batch_read(["a/b", "c/d"], fail_fast=True, version=3)
    assert rec.body() == {"paths": ["a/b", "c/d"],
                          "options": {"include_metadata": False, "fail_fast": True, "version": 3}}
    assert isinstance(batch, BatchResult)
    assert batch.secrets["a/b"].path == "a/b" and batch.secrets["a/b"].data == {"k": "v"}
    assert batch.secrets["a/b"].secret_type is SecretType.JSON
    assert batch.errors["c/d"].code == "access_denied"
    assert (batch.retrieved, batch.failed) == (1, 1)


def test_batch_metadata() -> None:
    rec = ok({"metadata": {"i/s/oauth": {"version": 3, "tags": ["s"],
                                         "updated_at": "2026-04-20T00:00:00Z"}}})
    with sync_client(rec) as client:
        result = client.secrets.batch_metadata(["i/s/*"], expand_wildcards=True)
    assert rec.body() == {"paths": ["i/s/*"], "expand_wildcards": True}
    item = result.metadata["i/s/oauth"]
    assert (item.path, item.version, item.tags) == ("i/s/oauth", 3, ["s"])
    assert result.errors == {} and result.retrieved == 0  # absent fields default


def test_whoami() -> None:
    rec = ok({"identity_id": "user:root", "scopes": ["admin"], "tenant_id": "tnt_1",
              "token_expires_at": None, "extra": True})
    with sync_client(rec) as client:
        me = client.auth.whoami()
    assert isinstance(me, WhoAmI) and me.identity_id == "user:root" and me.scopes == ["admin"]


def _lease_handler(log: list[str]) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        log.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(200, json={"lease_id": "lease_1",
                                             "data": {"connection_url": "postgres://u:p@h/db"}})
        return httpx.Response(204)
    return Recorder(handler)


def test_dynamic_credentials_revoked_on_exit() -> None:
    log: list[str] = []
    rec = _lease_handler(log)
    with sync_client(rec) as client:
        with client.dynamic.credentials("postgres-prod", "readonly", ttl="30m") as creds:
            assert creds["connection_url"].startswith("postgres://")
        with pytest.raises(RuntimeError):
            with client.dynamic.credentials("postgres-prod", "readonly"):
                raise RuntimeError("app failure")
    assert log == ["POST /v1/dynamic/engines/postgres-prod/creds/readonly",
                   "DELETE /v1/dynamic/leases/lease_1"] * 2
    assert rec.body(0) == {"ttl": "30m"}


async def test_async_dynamic_credentials() -> None:
    log: list[str] = []
    async with async_client(_lease_handler(log)) as client:
        async with client.dynamic.credentials("aws-prod", "deploy", ttl="15m") as creds:
            assert "connection_url" in creds
    assert log[-1] == "DELETE /v1/dynamic/leases/lease_1"


async def test_async_methods_match_sync_methods() -> None:
    rec = ok(SECRET)
    async with async_client(rec) as client:
        secret = await client.secrets.read("app/db/password")
    assert secret.data["password"] == "hunter2"
    rec404 = Recorder(lambda r: envelope(404, "secret_not_found"))
    async with async_client(rec404) as client:
        with pytest.raises(NotFoundError):
            await client.secrets.read_metadata("nope")
