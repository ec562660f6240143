"""Client credentials against a real server: the SDK fetches a JWT from POST /v1/auth/token,
uses it, and refreshes it when refused; plus auth.introspect."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from conftest import Vault
from scaivault_sdk import (
    AuthenticationError,
    PermissionDeniedError,
    ScaiVaultClient,
    SyncScaiVaultClient,
    TokenIntrospection,
)

pytestmark = pytest.mark.integration


def _service_account(vault: Vault, scopes: list[str]) -> tuple[str, str, str]:
    name = f"sdk-{uuid.uuid4().hex[:10]}"
    r = httpx.post(
        f"{vault.url}/v1/identity/service-accounts",
        headers={"Authorization": f"Bearer {vault.token}"},
        json={"name": name, "scopes": scopes},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return f"sa:{name}", body["client_id"], body["client_secret"]


def test_sync_client_credentials_flow(vault: Vault, client: SyncScaiVaultClient) -> None:
    sa, client_id, secret = _service_account(vault, ["secrets:read"])
    client.secrets.write("sdk/cc/one", data={"k": "v"})
    # A service account has no admin role: a policy lets it read sdk/cc/**.
    policy = client.policies.create(
        name=f"cc-{sa.split(':')[1]}",
        rules=[{"path_pattern": "sdk/cc/**", "permissions": ["read"]}],
    )
    client.policies.bind(policy.id, identity_type="service_account", identity_id=sa)
    with SyncScaiVaultClient(base_url=vault.url, client_id=client_id,
                             client_secret=secret) as svc:
        me = svc.auth.whoami()
        assert me.identity_id == sa
        assert me.identity_type == "service_account"
        assert me.token_expires_at is not None
        assert svc.secrets.read("sdk/cc/one").data == {"k": "v"}
        with pytest.raises(PermissionDeniedError) as info:
            svc.secrets.write("sdk/cc/one", data={"k": "x"})
        assert info.value.code == "insufficient_scope"


def test_async_client_credentials_flow(vault: Vault) -> None:
    sa, client_id, secret = _service_account(vault, ["secrets:read"])

    async def main() -> str:
        async with ScaiVaultClient(base_url=vault.url, client_id=client_id,
                                   client_secret=secret) as svc:
            return (await svc.auth.whoami()).identity_id

    assert asyncio.run(main()) == sa


def test_bad_client_credentials_are_refused(vault: Vault) -> None:
    _, client_id, _ = _service_account(vault, ["secrets:read"])
    with SyncScaiVaultClient(base_url=vault.url, client_id=client_id,
                             client_secret="svs_wrong") as svc:
        with pytest.raises(AuthenticationError) as info:
            svc.auth.whoami()
    assert info.value.code == "token_invalid"
    assert info.value.details.get("oauth_error") == "invalid_client"


def test_introspect(vault: Vault, client: SyncScaiVaultClient) -> None:
    sa, client_id, secret = _service_account(vault, ["secrets:read"])
    token = httpx.post(
        f"{vault.url}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id,
              "client_secret": secret},
    ).json()["access_token"]
    info = client.auth.introspect(token)
    assert isinstance(info, TokenIntrospection)
    assert info.active and info.identity_id == sa and info.scopes == ["secrets:read"]
    assert info.expires_at is not None and info.issued_at is not None
    assert client.auth.introspect("not-a-token") == TokenIntrospection(active=False)
    assert not client.auth.introspect(token + "x").active
