"""Every Python snippet of the batch-operations (000) and cookbook (002) seeds, run verbatim
against a real server — plus an async variant of each SDK snippet, and the snippets of the
sdks/python reference page.

Only two things differ from the documentation: the hosted URL is replaced by the test
server's, and names the snippet leaves to the application (``apply_config``, ``run_query``,
``path``, ``value``, ``initial_value``, the ``client`` of a previous snippet, the
``NotFoundError`` import) are supplied in its namespace.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import seed_snippets as S
from conftest import REPO_ROOT, Vault, pending, purge
from scaivault_sdk import (
    AuthenticationError,
    ScaiVaultClient,
    Secret,
    SecretType,
    SyncScaiVaultClient,
)
from scaivault_sdk.errors import NotFoundError

HOSTED = "https://scaivault.scailabs.ai"


def _compile(src: str, vault: Vault) -> Any:
    return compile(src.replace(HOSTED, vault.url), "<doc snippet>", "exec",
                   flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def run(src: str, vault: Vault, **names: Any) -> dict[str, Any]:
    """Execute a synchronous snippet; returns its namespace."""
    namespace: dict[str, Any] = {"__name__": "__snippet__", **names}
    result = eval(_compile(src, vault), namespace)  # noqa: S307 - documentation snippet
    assert not inspect.iscoroutine(result), "snippet needs `await`: use run_async"
    return namespace


async def run_async(src: str, vault: Vault, **names: Any) -> dict[str, Any]:
    """Execute a snippet that uses top-level ``await``; returns its namespace."""
    namespace: dict[str, Any] = {"__name__": "__snippet__", **names}
    result = eval(_compile(src, vault), namespace)  # noqa: S307 - documentation snippet
    if inspect.iscoroutine(result):
        await result
    return namespace


class Recorder:
    """Stands in for an application function the snippet calls (apply_config, run_query)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


pytestmark = pytest.mark.integration

# -- seed 000: batch operations ----------------------------------------------------------

INTEGRATIONS = ["integrations/salesforce/oauth", "integrations/scaisend/api-key",
                "integrations/stripe/secret-key"]
STARTUP = INTEGRATIONS + ["infra/db/primary/credentials", "infra/redis/primary/credentials"]


def _seed_integrations(client: SyncScaiVaultClient, paths: list[str]) -> None:
    purge(client, STARTUP)
    values = {
        "integrations/salesforce/oauth": ({"client_id": "cid", "client_secret": "cs"}, "json"),
        "integrations/scaisend/api-key": ({"key": "sk_send_123"}, "api_key"),
        "integrations/stripe/secret-key": ({"key": "sk_live_123"}, "api_key"),
        "infra/db/primary/credentials": ({"username": "app", "password": "pw"}, "kv"),
        "infra/redis/primary/credentials": ({"password": "redis-pw"}, "kv"),
    }
    for path in paths:
        data, secret_type = values[path]
        client.secrets.write(path, data=data, secret_type=secret_type)


def test_seed000_batch_read_httpx(vault_env: Vault, client: SyncScaiVaultClient,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    # stripe is left missing: partial success is the default behaviour
    _seed_integrations(client, INTEGRATIONS[:2])
    ns = run(S.SEED_000_BATCH_READ_HTTPX, vault_env, httpx=httpx, os=os)
    assert ns["resp"].status_code == 200
    printed = sorted(capsys.readouterr().out.splitlines())
    assert printed == ["integrations/salesforce/oauth 1", "integrations/scaisend/api-key 1"]
    result = ns["result"]
    assert result["errors"]["integrations/stripe/secret-key"]["code"] == "secret_not_found"
    assert (result["retrieved"], result["failed"]) == (2, 1)
    assert result["secrets"]["integrations/scaisend/api-key"] == {
        "data": {"key": "sk_send_123"}, "version": 1, "secret_type": "api_key"}


def test_seed000_startup_pattern(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_integrations(client, STARTUP)
    ns = run(S.SEED_000_STARTUP_PATTERN_HTTPX, vault_env)
    assert sorted(ns["secrets"]) == sorted(STARTUP)
    assert ns["secrets"]["infra/redis/primary/credentials"]["data"] == {"password": "redis-pw"}


def test_seed000_startup_pattern_fails_loudly(vault_env: Vault,
                                              client: SyncScaiVaultClient) -> None:
    _seed_integrations(client, STARTUP[:-1])
    with pytest.raises(httpx.HTTPStatusError) as info:
        run(S.SEED_000_STARTUP_PATTERN_HTTPX, vault_env)
    response = info.value.response
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "secret_not_found"
    assert error["details"]["path"] == "infra/redis/primary/credentials"


# -- seed 002: cookbook, sync as written and async equivalents -----------------------------

BILLING = ["environments/production/billing/database", "environments/production/billing/stripe",
           "environments/production/billing/sendgrid"]
DB_URL = "postgresql://billing:pw@db.internal:5432/billing"


def _seed_billing(client: SyncScaiVaultClient) -> None:
    purge(client, BILLING)
    client.secrets.write(BILLING[0], data={"url": DB_URL}, secret_type="json")
    client.secrets.write(BILLING[1], data={"key": "sk_live_1"}, secret_type="api_key")
    client.secrets.write(BILLING[2], data={"key": "SG.1"}, secret_type="api_key")


def test_seed002_read_one_field(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    ns = run(S.SEED_002_READ_ONE_FIELD, vault_env)
    with ns["client"]:
        assert isinstance(ns["client"], SyncScaiVaultClient)
        assert ns["conn_str"] == DB_URL
        assert ns["db"].secret_type is SecretType.JSON


async def test_seed002_read_one_field_async(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    async with ScaiVaultClient(...) as aclient:
        db = await aclient.secrets.read("environments/production/billing/database")
        conn_str = db.data["url"]
    assert conn_str == DB_URL


def test_seed002_read_many_at_startup(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    apply_config = Recorder()
    ns = run(S.SEED_002_READ_MANY_AT_STARTUP, vault_env, client=client, apply_config=apply_config)
    assert sorted(path for path, _ in apply_config.calls) == sorted(BILLING)
    for path, secret in apply_config.calls:
        assert isinstance(secret, Secret) and secret.path == path and secret.version == 1
    assert dict(apply_config.calls)[BILLING[0]].data == {"url": DB_URL}
    assert ns["batch"].errors == {} and ns["batch"].retrieved == 3


async def test_seed002_read_many_at_startup_async(vault_env: Vault,
                                                  client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    apply_config = Recorder()
    async with ScaiVaultClient() as aclient:
        batch = await aclient.secrets.batch_read([
            "environments/production/billing/database",
            "environments/production/billing/stripe",
            "environments/production/billing/sendgrid",
        ])
        for path, secret in batch.secrets.items():
            apply_config(path, secret)
    assert sorted(p for p, _ in apply_config.calls) == sorted(BILLING)


def test_seed002_read_with_retry(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    ns = run(S.SEED_002_READ_WITH_RETRY, vault_env, client=client, path=BILLING[0])
    assert ns["secret"].data == {"url": DB_URL}
    assert ns["attempt"] == 0


async def test_seed002_read_with_retry_async(vault_env: Vault,
                                             client: SyncScaiVaultClient) -> None:
    from scaivault_sdk.errors import RateLimitError, ServiceUnavailableError

    _seed_billing(client)
    path = BILLING[0]
    async with ScaiVaultClient() as aclient:
        for attempt in range(5):
            try:
                secret = await aclient.secrets.read(path)
                break
            except RateLimitError as e:
                await asyncio.sleep(e.retry_after)
            except ServiceUnavailableError:
                await asyncio.sleep(2 ** attempt)
        else:
            raise RuntimeError("max retries exceeded")
    assert secret.data["url"] == DB_URL


def test_seed002_check_exists(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)
    ns = run(S.SEED_002_CHECK_EXISTS, vault_env, client=client, path=BILLING[1],
             NotFoundError=NotFoundError)
    assert ns["exists"] is True
    ns = run(S.SEED_002_CHECK_EXISTS, vault_env, client=client,
             path="environments/production/billing/missing", NotFoundError=NotFoundError)
    assert ns["exists"] is False


async def test_seed002_check_exists_async(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_billing(client)

    async def exists(aclient: ScaiVaultClient, path: str) -> bool:
        try:
            await aclient.secrets.read_metadata(path)
            return True
        except NotFoundError:
            return False

    async with ScaiVaultClient() as aclient:
        assert await exists(aclient, BILLING[1]) is True
        assert await exists(aclient, "environments/production/billing/missing") is False


def test_seed002_idempotent_initial_write(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    path = "environments/production/billing/initial-key"
    purge(client, [path])
    for initial_value in ("first", "second"):
        run(S.SEED_002_IDEMPOTENT_INITIAL_WRITE, vault_env, client=client, path=path,
            initial_value=initial_value, NotFoundError=NotFoundError)
    secret = client.secrets.read(path)
    assert (secret.version, secret.data, secret.secret_type) == (1, {"key": "first"},
                                                                 SecretType.API_KEY)


async def test_seed002_idempotent_initial_write_async(vault_env: Vault,
                                                      client: SyncScaiVaultClient) -> None:
    path = "environments/production/billing/initial-key"
    purge(client, [path])
    async with ScaiVaultClient() as aclient:
        for initial_value in ("first", "second"):
            try:
                await aclient.secrets.read_metadata(path)
            except NotFoundError:
                await aclient.secrets.write(path, data={"key": initial_value},
                                            secret_type="api_key")
        info = await aclient.secrets.read_metadata(path)
    assert info.version == 1 and info.version_count == 1


def _seed_app_config(client: SyncScaiVaultClient) -> None:
    purge(client, ["app/config"])
    client.secrets.write("app/config", data={"log_level": "info", "retries": 3},
                         secret_type="json")


def test_seed002_update_one_field(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_app_config(client)
    run(S.SEED_002_UPDATE_ONE_FIELD, vault_env, client=client)
    secret = client.secrets.read("app/config")
    assert secret.version == 2
    assert secret.data == {"log_level": "info", "retries": 3, "feature_flag_x": True}
    assert secret.secret_type is SecretType.JSON


async def test_seed002_update_one_field_async(vault_env: Vault,
                                              client: SyncScaiVaultClient) -> None:
    _seed_app_config(client)
    async with ScaiVaultClient() as aclient:
        secret = await aclient.secrets.read("app/config")
        new_data = {**secret.data, "feature_flag_x": True}
        await aclient.secrets.write("app/config", data=new_data, secret_type=secret.secret_type)
    assert client.secrets.read("app/config").data["feature_flag_x"] is True


def _assert_expires_in_about_an_hour(client: SyncScaiVaultClient, path: str) -> None:
    info = client.secrets.read_metadata(path)
    assert isinstance(info.expires_at, datetime)
    remaining = info.expires_at - datetime.now(timezone.utc)
    assert timedelta(minutes=58) < remaining <= timedelta(hours=1, seconds=5)
    assert client.secrets.read(path).data == {"token": "tok-123"}


def test_seed002_write_with_expiration(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    purge(client, ["test/oauth-token"])
    run(S.SEED_002_WRITE_WITH_EXPIRATION, vault_env, client=client, value="tok-123")
    _assert_expires_in_about_an_hour(client, "test/oauth-token")


async def test_seed002_write_with_expiration_async(vault_env: Vault,
                                                   client: SyncScaiVaultClient) -> None:
    purge(client, ["test/oauth-token"])
    async with ScaiVaultClient() as aclient:
        await aclient.secrets.write(path="test/oauth-token", data={"token": "tok-123"},
                                    options={"expires_in": "1h"})
    _assert_expires_in_about_an_hour(client, "test/oauth-token")


def _setup_postgres_engine(vault: Vault) -> None:
    """Engine ``postgres-prod`` / role ``readonly`` on the local PostgreSQL (db ``test``).

    Request bodies follow api-guides/dynamic-secrets; the role endpoint is inferred there.
    """
    headers = {"Authorization": f"Bearer {vault.token}"}
    with httpx.Client(base_url=vault.url, headers=headers) as http:
        http.put("/v1/secrets/infra/postgres/test/root",
                 json={"data": {"username": "postgres", "password": ""}}).raise_for_status()
        resp = http.post("/v1/dynamic/engines", json={
            "name": "postgres-prod", "type": "database",
            "config": {"plugin": "postgresql",
                       "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/test",
                       "root_credentials_path": "infra/postgres/test/root"},
            "default_ttl": "1h", "max_ttl": "24h"})
        if resp.status_code != 409:
            resp.raise_for_status()
        resp = http.post("/v1/dynamic/engines/postgres-prod/roles", json={
            "name": "readonly",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                "VALID UNTIL '{{expiration}}';",
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";"],
            "revocation_statements": ["DROP ROLE IF EXISTS \"{{name}}\";"],
            "default_ttl": "1h", "max_ttl": "8h"})
        if resp.status_code != 409:
            resp.raise_for_status()


@pending("dynamic")
def test_seed002_dynamic_one_shot_postgres(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _setup_postgres_engine(vault_env)
    run_query = Recorder()
    run(S.SEED_002_DYNAMIC_ONE_SHOT_POSTGRES, vault_env, client=client, run_query=run_query)
    (url,), = run_query.calls
    assert url.startswith("postgres")


@pending("dynamic")
async def test_seed002_dynamic_one_shot_postgres_async(vault_env: Vault) -> None:
    _setup_postgres_engine(vault_env)
    run_query = Recorder()
    async with ScaiVaultClient() as aclient:
        async with aclient.dynamic.credentials("postgres-prod", "readonly", ttl="30m") as creds:
            run_query(creds["connection_url"])
    assert len(run_query.calls) == 1


STAGING = {"environments/staging/api/key": ["api"], "environments/staging/db/password": [],
           "environments/staging/cache/url": ["cache", "needs-rotation"]}


def _seed_staging(client: SyncScaiVaultClient) -> None:
    purge(client, [item.path for item in client.secrets.iter(prefix="environments/staging/")])
    purge(client, STAGING)
    for path, tags in STAGING.items():
        client.secrets.write(path, data={"v": "1"}, metadata={"tags": tags, "owner": "team:ops"})


def _assert_staging_tagged(client: SyncScaiVaultClient) -> None:
    for path, tags in STAGING.items():
        info = client.secrets.read_metadata(path)
        assert sorted(info.metadata.tags) == sorted(set(tags) | {"needs-rotation"})
        assert info.metadata.owner == "team:ops"  # other metadata keys untouched
        assert info.version == 1  # metadata updates create no version


def test_seed002_bulk_tag(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_staging(client)
    ns = run(S.SEED_002_BULK_TAG, vault_env, client=client)
    assert len(ns["listing"].data) == len(STAGING)
    _assert_staging_tagged(client)


async def test_seed002_bulk_tag_async(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_staging(client)
    async with ScaiVaultClient() as aclient:
        listing = await aclient.secrets.list(prefix="environments/staging/", limit=200)
        for item in listing.data:
            await aclient.secrets.update_metadata(
                path=item.path,
                metadata={"tags": list(set(item.tags + ["needs-rotation"]))},
            )
    _assert_staging_tagged(client)


# -- sdks/python reference page ----------------------------------------------------------


def _seed_password(client: SyncScaiVaultClient) -> None:
    purge(client, ["app/db/password"])
    client.secrets.write("app/db/password", data={"password": "correct-horse"})


async def test_reference_authenticate(vault_env: Vault) -> None:
    ns = run(S.REFERENCE_AUTHENTICATE, vault_env)
    async with ns["client"] as aclient:
        me = await aclient.auth.whoami()
    assert me.identity_id and "admin" in me.scopes


async def test_reference_client_credentials(vault_env: Vault,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # An unknown service account must be refused by the server's token endpoint.
    monkeypatch.setenv("SCAIKEY_CLIENT_ID", "sa:does-not-exist")
    monkeypatch.setenv("SCAIKEY_CLIENT_SECRET", "wrong")
    ns = run(S.REFERENCE_CLIENT_CREDENTIALS, vault_env, os=os, ScaiVaultClient=ScaiVaultClient)
    async with ns["client"] as aclient:
        with pytest.raises(AuthenticationError) as info:
            await aclient.auth.whoami()
    # Without the endpoint the auth layer answers authentication_required for any unknown
    # route; a real token endpoint rejects the client itself (OAuth: invalid_client).
    assert info.value.code != "authentication_required"


def test_reference_async_usage(vault_env: Vault, client: SyncScaiVaultClient,
                               capsys: pytest.CaptureFixture[str]) -> None:
    _seed_password(client)
    run(S.REFERENCE_ASYNC_VS_SYNC_ASYNC, vault_env, ScaiVaultClient=ScaiVaultClient)
    assert capsys.readouterr().out == "correct-horse\n"


def test_reference_sync_usage(vault_env: Vault, client: SyncScaiVaultClient,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _seed_password(client)
    ns = run(S.REFERENCE_ASYNC_VS_SYNC_SYNC, vault_env)
    ns["client"].close()
    assert capsys.readouterr().out == "correct-horse\n"


async def test_reference_secrets_block(vault_env: Vault, client: SyncScaiVaultClient) -> None:
    _seed_password(client)
    path = "environments/production/salesforce/oauth"
    purge(client, [path])
    client.secrets.write(path, data={"client_id": "old", "client_secret": "old"},
                         secret_type="json")
    async with ScaiVaultClient() as aclient:
        ns = await run_async(S.REFERENCE_SECRETS_BLOCK, vault_env, client=aclient)
    assert ns["secret"].version == 1 and isinstance(ns["secret"].version, int)
    assert ns["secret"].secret_type is SecretType.JSON
    assert ns["result"].version == 2 and ns["result"].path == path
    assert client.secrets.read_metadata(path).metadata.tags == ["salesforce"]
    assert client.secrets.read_metadata(path).max_versions == 10
    assert client.secrets.read_metadata("app/db/password").metadata.tags == ["critical"]


# -- the snippets above are exactly the seeds' -------------------------------------------


def _seed_dir() -> Path | None:
    configured = os.environ.get("SCAIVAULT_SEEDS_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "seeds"
    return candidate if candidate.is_dir() else None


@pytest.mark.parametrize(("prefix", "snippets"), [("000_", S.SEED_000), ("002_", S.SEED_002)])
def test_snippets_match_seeds(prefix: str, snippets: list[str]) -> None:
    seeds = _seed_dir()
    if seeds is None:
        pytest.skip("shared/seeds not present beside the repository")
    (seed,) = seeds.glob(f"{prefix}*.txt")
    blocks = re.findall(r"```python\n(.*?)```", seed.read_text(), re.S)
    assert blocks == snippets, f"{seed.name} changed: update tests/seed_snippets.py"
