"""The whole SDK surface and its error cases against a real server, on both clients.

The ``api`` fixture runs every test twice: with ``SyncScaiVaultClient`` and with
``ScaiVaultClient`` driven on a private event loop, so one test body covers both.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from conftest import Blocking, Vault  # Blocking: re-exported for the other test modules
from scaivault_sdk import (
    AuthenticationError,
    BatchMetadataResult,
    BatchResult,
    ConflictError,
    DeleteResult,
    NotFoundError,
    ScaiVaultClient,
    ScaiVaultError,
    SecretInfo,
    SecretList,
    SecretMetadata,
    SecretType,
    SyncScaiVaultClient,
    ValidationError,
    VersionHistory,
    WhoAmI,
    WriteResult,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, vault: Vault) -> Iterator[Any]:
    if request.param == "sync":
        with SyncScaiVaultClient(base_url=vault.url, token=vault.token) as client:
            yield Blocking(client, None)
        return
    loop = asyncio.new_event_loop()
    aclient = ScaiVaultClient(base_url=vault.url, token=vault.token)
    try:
        yield Blocking(aclient, loop)
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()


def test_write_then_read_versions(api: Any, prefix: str) -> None:
    path = f"{prefix}/db"
    first = api.secrets.write(path, data={"user": "app", "password": "one"})
    assert isinstance(first, WriteResult)
    assert (first.path, first.version, first.created) == (path, 1, True)
    assert first.secret_type is SecretType.KV
    assert "data" not in first.raw

    second = api.secrets.write(
        path, {"user": "app", "password": "two"},
        metadata={"description": "primary db", "tags": ["db", "prod"], "owner": "team:db",
                  "custom": {"cost_center": "42"}},
        max_versions=5,
    )
    assert (second.version, second.created) == (2, False)
    assert second.metadata.tags == ["db", "prod"]

    current = api.secrets.read(path)
    assert (current.path, current.version, current.data) == (path, 2, {"user": "app",
                                                                      "password": "two"})
    assert current.metadata == SecretMetadata(description="primary db", tags=["db", "prod"],
                                              owner="team:db", custom={"cost_center": "42"})
    assert isinstance(current.created_at, datetime) and isinstance(current.updated_at, datetime)
    assert current.created_at <= current.updated_at
    assert current.expires_at is None and current.rotation_policy_id is None

    old = api.secrets.read(path, version=1)
    assert (old.version, old.data["password"]) == (1, "one")

    # metadata omitted on write keeps the previous metadata
    api.secrets.write(path, {"user": "app", "password": "three"})
    assert api.secrets.read(path).metadata.owner == "team:db"


def test_secret_types_round_trip(api: Any, prefix: str) -> None:
    path = f"{prefix}/config"
    api.secrets.write(path, {"nested": {"a": [1, 2]}, "flag": True}, secret_type="json")
    secret = api.secrets.read(path)
    assert secret.secret_type is SecretType.JSON and secret.data["nested"] == {"a": [1, 2]}
    api.secrets.write(f"{prefix}/key", {"key": "sk_1"}, secret_type=SecretType.API_KEY)
    assert api.secrets.read(f"{prefix}/key").secret_type is SecretType.API_KEY


def test_read_metadata_and_update_metadata(api: Any, prefix: str) -> None:
    path = f"{prefix}/svc"
    api.secrets.write(path, {"k": "v"}, metadata={"description": "d", "tags": ["a"]})
    api.secrets.write(path, {"k": "v2"})

    info = api.secrets.read_metadata(path)
    assert isinstance(info, SecretInfo)
    assert (info.path, info.version, info.version_count, info.max_versions) == (path, 2, 2, 10)
    assert info.tags == ["a"] and info.metadata.description == "d"
    assert info.rotation.policy_id is None and isinstance(info.access_count_30d, int)
    assert "data" not in info.raw

    updated = api.secrets.update_metadata(path, {"tags": ["b", "c"], "owner": "team:x"},
                                          options={"max_versions": 3})
    assert isinstance(updated, SecretInfo)
    assert updated.version == 2 and updated.max_versions == 3  # no new version
    assert updated.metadata.tags == ["b", "c"] and updated.metadata.description == "d"
    assert api.secrets.read_metadata(path).metadata.owner == "team:x"


def test_versions_delete_and_restore(api: Any, prefix: str) -> None:
    path = f"{prefix}/rotating"
    for i in range(3):
        api.secrets.write(path, {"v": str(i)})

    deleted = api.secrets.delete(path, version=3)
    assert isinstance(deleted, DeleteResult) and deleted.deleted
    with pytest.raises(NotFoundError) as info:
        api.secrets.read(path, version=3)
    assert info.value.code == "version_not_found"
    assert api.secrets.read(path).version == 2  # newest active version

    history = api.secrets.versions(path)
    assert isinstance(history, VersionHistory)
    assert history.current_version == 3 or history.current_version == 2
    states = {v.version: v.state for v in history.versions}
    assert states[3] == "deleted" and states[1] == "active"
    actions = [h.action for h in history.history]
    assert actions.count("write") == 3 and "delete_version" in actions

    api.secrets.restore(path, version=3)
    assert api.secrets.read(path).data == {"v": "2"}
    assert "restore_version" in [h.action for h in api.secrets.versions(path).history]


def test_soft_delete_restore_and_permanent_delete(api: Any, prefix: str) -> None:
    path = f"{prefix}/old"
    api.secrets.write(path, {"k": "v"})
    result = api.secrets.delete(path)
    assert (result.deleted, result.permanent, result.version_count) == (True, False, 1)
    assert isinstance(result.recoverable_until, datetime)
    assert result.recoverable_until > datetime.now(timezone.utc) + timedelta(days=29)

    with pytest.raises(NotFoundError) as info:
        api.secrets.read(path)
    assert info.value.code == "secret_not_found"
    with pytest.raises(ConflictError) as conflict:
        api.secrets.write(path, {"k": "new"})
    assert conflict.value.code == "secret_exists"

    restored = api.secrets.restore(path)
    assert isinstance(restored, SecretInfo) and restored.path == path
    assert api.secrets.read(path).data == {"k": "v"}

    gone = api.secrets.delete(path, permanent=True)
    assert (gone.deleted, gone.permanent) == (True, True)
    with pytest.raises(NotFoundError):
        api.secrets.read_metadata(path)
    assert api.secrets.write(path, {"k": "fresh"}).version == 1  # the path is free again


def test_cas(api: Any, prefix: str) -> None:
    path = f"{prefix}/cas"
    assert api.secrets.write(path, {"k": "1"}, cas=0).version == 1
    with pytest.raises(ConflictError) as info:
        api.secrets.write(path, {"k": "x"}, cas=0)
    assert info.value.code == "version_conflict"
    assert api.secrets.write(path, {"k": "2"}, options={"cas": 1}).version == 2
    with pytest.raises(ConflictError):
        api.secrets.write(path, {"k": "3"}, cas=1)


def test_list_pagination_and_iter(api: Any, prefix: str) -> None:
    paths = [f"{prefix}/list/{name}" for name in ("a", "b", "c", "d/e")]
    for p in paths:
        api.secrets.write(p, {"k": "v"}, metadata={"tags": ["listed"]})
    api.secrets.write(f"{prefix}/other", {"k": "v"})

    page = api.secrets.list(prefix=f"{prefix}/list/", limit=3)
    assert isinstance(page, SecretList)
    assert len(page.data) == 3 and page.data is page.secrets
    assert page.has_more and page.cursor
    rest = api.secrets.list(prefix=f"{prefix}/list/", limit=3, cursor=page.cursor)
    assert not rest.has_more
    seen = [i.path for i in page.data] + [i.path for i in rest.data]
    assert sorted(seen) == sorted(paths)
    assert all(i.tags == ["listed"] and i.version == 1 for i in page.data)

    assert sorted(i.path for i in api.secrets.iter(prefix=f"{prefix}/list/", limit=2)) == \
        sorted(paths)

    detailed = api.secrets.list(prefix=f"{prefix}/list/", include_metadata=True)
    item = detailed.data[0]
    assert item.metadata is not None and item.metadata.tags == ["listed"]
    assert item.version_count == 1 and isinstance(item.access_count_30d, int)


def test_list_expiring_within(api: Any, prefix: str) -> None:
    api.secrets.write(f"{prefix}/exp/soon", {"k": "v"}, expires_in="1h")
    api.secrets.write(f"{prefix}/exp/later", {"k": "v"}, expires_in="90d")
    api.secrets.write(f"{prefix}/exp/never", {"k": "v"})
    page = api.secrets.list(prefix=f"{prefix}/exp/", expiring_within="2h")
    assert [i.path for i in page.data] == [f"{prefix}/exp/soon"]
    assert isinstance(page.data[0].expires_at, datetime)


def test_batch_read(api: Any, prefix: str) -> None:
    a, b, missing = f"{prefix}/b/a", f"{prefix}/b/b", f"{prefix}/b/missing"
    api.secrets.write(a, {"k": "a1"}, metadata={"tags": ["t"]})
    api.secrets.write(a, {"k": "a2"})
    api.secrets.write(b, {"k": "b1"}, secret_type="json")

    batch = api.secrets.batch_read([a, b, missing])
    assert isinstance(batch, BatchResult)
    assert (batch.retrieved, batch.failed) == (2, 1)
    assert batch.secrets[a].data == {"k": "a2"} and batch.secrets[a].version == 2
    assert batch.secrets[b].secret_type is SecretType.JSON
    assert batch.errors[missing].code == "secret_not_found" and batch.errors[missing].message

    with_meta = api.secrets.batch_read([a], include_metadata=True)
    assert with_meta.secrets[a].metadata.tags == ["t"]

    v1 = api.secrets.batch_read([a, b], version=1)
    assert v1.secrets[a].data == {"k": "a1"} and v1.secrets[b].version == 1

    with pytest.raises(NotFoundError) as info:
        api.secrets.batch_read([a, missing], fail_fast=True)
    assert info.value.details.get("path") == missing


def test_batch_metadata(api: Any, prefix: str) -> None:
    paths = [f"{prefix}/m/x/one", f"{prefix}/m/x/two", f"{prefix}/m/y/deep/three"]
    for p in paths:
        api.secrets.write(p, {"k": "v"}, metadata={"tags": ["inv"], "description": "d",
                                                   "owner": "team:inv"})

    result = api.secrets.batch_metadata([paths[0], f"{prefix}/m/nope"])
    assert isinstance(result, BatchMetadataResult)
    item = result.metadata[paths[0]]
    assert (item.version, item.tags, item.description, item.owner) == (1, ["inv"], "d",
                                                                      "team:inv")
    assert "data" not in item.raw
    assert result.errors[f"{prefix}/m/nope"].code == "secret_not_found"

    one_segment = api.secrets.batch_metadata([f"{prefix}/m/*/one", f"{prefix}/m/x/*"],
                                             expand_wildcards=True)
    assert sorted(one_segment.metadata) == sorted(paths[:2])
    every = api.secrets.batch_metadata([f"{prefix}/m/**"], expand_wildcards=True)
    assert sorted(every.metadata) == sorted(paths)


def test_whoami(api: Any) -> None:
    me = api.auth.whoami()
    assert isinstance(me, WhoAmI)
    assert me.identity_id and me.tenant_id
    assert "admin" in me.scopes


# -- error cases ---------------------------------------------------------------------------


def test_not_found(api: Any, prefix: str) -> None:
    with pytest.raises(NotFoundError) as info:
        api.secrets.read(f"{prefix}/absent")
    err = info.value
    assert (err.status_code, err.code) == (404, "secret_not_found")
    assert err.details.get("path") == f"{prefix}/absent"
    assert err.request_id and err.request_id.startswith("req_")
    with pytest.raises(NotFoundError):
        api.secrets.read_metadata(f"{prefix}/absent")
    with pytest.raises(NotFoundError):
        api.secrets.versions(f"{prefix}/absent")
    with pytest.raises(NotFoundError):
        api.secrets.delete(f"{prefix}/absent")
    api.secrets.write(f"{prefix}/present", {"k": "v"})
    with pytest.raises(NotFoundError) as info:
        api.secrets.read(f"{prefix}/present", version=7)
    assert info.value.code == "version_not_found"


@pytest.mark.parametrize("bad", ["Upper/Case", "a//b", "trailing/", "/leading", "sp ace/x",
                                 "x/versions", "x/metadata", "/".join(["d"] * 11), "a" * 513])
def test_invalid_path(api: Any, bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        api.secrets.write(bad, {"k": "v"})
    assert (info.value.status_code, info.value.code) == (400, "invalid_path")


def test_invalid_path_on_read(api: Any) -> None:
    with pytest.raises(ValidationError) as info:
        api.secrets.read("Bad/Path")
    assert info.value.code == "invalid_path"


def test_validation_errors(api: Any, prefix: str) -> None:
    path = f"{prefix}/invalid"
    with pytest.raises(ValidationError) as info:
        api.secrets.write(path, {"k": "v"}, secret_type="bogus")
    assert (info.value.status_code, info.value.code) == (400, "invalid_secret_type")
    with pytest.raises(ValidationError) as info:
        api.secrets.write(path, {"k": "v"}, expires_in="soon")
    assert (info.value.status_code, info.value.code) == (400, "invalid_duration")
    with pytest.raises(ValidationError) as info:
        api.secrets.write(path, {"k": "v"}, max_versions=0)
    assert (info.value.status_code, info.value.code) == (422, "validation_error")
    assert any("max_versions" in f.get("field", "") for f in info.value.fields)
    with pytest.raises(ValidationError):
        api.secrets.write(path, {"nested": {"no": "kv"}}, secret_type="kv")
    with pytest.raises(ValidationError) as info:
        api.secrets.list(cursor="not-a-cursor!")
    assert info.value.code == "invalid_cursor"
    with pytest.raises(ValidationError) as info:
        api.secrets.batch_read([f"{prefix}/x"] * 101)


def test_bad_token_is_authentication_error(vault: Vault) -> None:
    with SyncScaiVaultClient(base_url=vault.url, token="skt_" + "0" * 48) as client:
        with pytest.raises(AuthenticationError) as info:
            client.secrets.read("app/db/password")
    assert info.value.status_code == 401
    assert info.value.code in {"token_invalid", "authentication_required"}
    with SyncScaiVaultClient(base_url=vault.url, token="") as client:
        with pytest.raises(AuthenticationError) as info:
            client.auth.whoami()
    assert info.value.code == "authentication_required"


async def test_bad_token_is_authentication_error_async(vault: Vault) -> None:
    async with ScaiVaultClient(base_url=vault.url, token="skt_invalid") as client:
        with pytest.raises(AuthenticationError):
            await client.auth.whoami()


def test_expired_secret_is_not_found_but_metadata_stays(api: Any, prefix: str) -> None:
    path = f"{prefix}/ephemeral"
    api.secrets.write(path, {"k": "v"}, expires_in="1s")
    deadline = time.monotonic() + 10
    while True:
        try:
            api.secrets.read(path)
        except NotFoundError as err:
            assert (err.status_code, err.code) == (410, "secret_expired")
            break
        assert time.monotonic() < deadline, "secret did not expire"
        time.sleep(0.2)
    assert api.secrets.read_metadata(path).expires_at is not None


def test_unknown_route_is_typed(vault: Vault) -> None:
    with SyncScaiVaultClient(base_url=vault.url, token=vault.token) as client:
        with pytest.raises(ScaiVaultError) as info:
            client.dynamic.revoke("lease_does_not_exist")
    assert info.value.status_code == 404
