"""Request building and parsing of ``secret_policies``, ``service_accounts``, ``system`` and the
issuer/identity extras (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from scaivault_sdk import (
    ClientSecretRotation,
    CreatedServiceAccount,
    SecretPolicy,
    SecretPolicyField,
    ServiceAccount,
)

from fakes import Recorder, async_client, sync_client


def ok(body: Any, status: int = 200) -> Recorder:
    return Recorder(lambda r: httpx.Response(status, json=body))


def sent(rec: Recorder) -> list[tuple[str, str, Any]]:
    return [
        (r.method, str(r.url).removeprefix("http://vault.test"),
         json.loads(r.content) if r.content else None)
        for r in rec.requests
    ]


SP = {
    "id": "sp_1", "name": "db", "policy_type": "password", "description": None,
    "fields": [{"name": "password", "generator": "random", "config": {"length": 12}}],
    "is_active": True, "created_at": "2026-04-23T18:00:00Z", "updated_at": "2026-04-23T18:00:00Z",
}


def test_secret_policy_requests() -> None:
    rec = ok(SP)
    field = SecretPolicyField(name="password", generator="random", config={"length": 12})
    with sync_client(rec) as client:
        created = client.secret_policies.create("db", [field], policy_type="password")
        client.secret_policies.get("sp_1")
        client.secret_policies.update("sp_1", "db", [{"name": "k", "generator": "uuid"}],
                                      is_active=False)
        client.secret_policies.delete("sp_1")
        client.secret_policies.attach("sp_1", "app/db")
        client.secret_policies.detach("app/db")
    assert isinstance(created, SecretPolicy) and created.fields == [field]
    assert sent(rec) == [
        ("POST", "/v1/secret-policies", {
            "name": "db", "policy_type": "password",
            "fields": [{"name": "password", "generator": "random", "config": {"length": 12}}],
        }),
        ("GET", "/v1/secret-policies/sp_1", None),
        ("PUT", "/v1/secret-policies/sp_1", {
            "name": "db", "fields": [{"name": "k", "generator": "uuid"}], "is_active": False,
        }),
        ("DELETE", "/v1/secret-policies/sp_1", None),
        ("POST", "/v1/secret-policies/sp_1/attach", {"path": "app/db"}),
        ("POST", "/v1/secret-policies/detach", {"path": "app/db"}),
    ]


def test_secret_policy_list_parses_items() -> None:
    rec = ok({"secret_policies": [SP, {**SP, "id": "sp_2"}]})
    with sync_client(rec) as client:
        items = client.secret_policies.list()
    assert [p.id for p in items] == ["sp_1", "sp_2"]
    assert items[0].fields[0].config == {"length": 12}


SA = {
    "id": "sa:ci", "identity_id": "sa:ci", "identity_type": "service_account", "name": "ci",
    "description": None, "client_id": "sac_x", "scopes": ["secrets:read"], "groups": [],
    "tenant_id": "tnt_default", "created_at": "2026-04-23T18:00:00Z", "created_by": "user:a",
    "disabled_at": None, "status": "active",
}


def test_service_account_requests_and_secret_never_in_repr() -> None:
    rec = ok({**SA, "client_secret": "svs_topsecret"}, status=201)
    with sync_client(rec) as client:
        created = client.service_accounts.create("ci", scopes=["secrets:read"])
        client.service_accounts.get("sa:ci")
        client.service_accounts.get("ci.bot")
        client.service_accounts.delete("ci")
        client.service_accounts.rotate_secret("sa:ci", grace="1h")
        client.service_accounts.rotate_secret("ci")
    assert isinstance(created, CreatedServiceAccount) and created.client_secret == "svs_topsecret"
    assert "svs_topsecret" not in repr(created)
    assert sent(rec) == [
        ("POST", "/v1/identity/service-accounts", {"name": "ci", "scopes": ["secrets:read"]}),
        ("GET", "/v1/identity/service-accounts/sa:ci", None),
        ("GET", "/v1/identity/service-accounts/ci%2Ebot", None),
        ("DELETE", "/v1/identity/service-accounts/ci", None),
        ("POST", "/v1/identity/service-accounts/sa:ci/secrets", {"grace": "1h"}),
        ("POST", "/v1/identity/service-accounts/ci/secrets", {}),
    ]
    rotated = ClientSecretRotation.from_dict({"id": "sa:ci", "client_secret": "svs_new"})
    assert "svs_new" not in repr(rotated)


def test_service_account_list_async() -> None:
    rec = ok({"service_accounts": [SA]})

    async def main() -> list[ServiceAccount]:
        async with async_client(rec) as client:
            return await client.service_accounts.list()

    items = asyncio.run(main())
    assert [(a.id, a.status, a.scopes) for a in items] == [("sa:ci", "active", ["secrets:read"])]


def test_system_issuer_and_identity_extras() -> None:
    rec = ok({})
    with sync_client(rec) as client:
        client.system.health()
        client.system.ready()
        client.system.detailed()
        client.system.version()
        client.auth.jwks()
        client.auth.rotate_keys()
        client.auth.exchange("eyJ.x.y", scope=["secrets:read", "secrets:list"])
        client.identity.get_partner("ptn_a")
        client.identity.roles()
        client.identity.sync(tenant_id="tnt_a")
    assert sent(rec) == [
        ("GET", "/v1/health", None),
        ("GET", "/v1/health/ready", None),
        ("GET", "/v1/health/detailed", None),
        ("GET", "/v1/version", None),
        ("GET", "/v1/auth/jwks", None),
        ("POST", "/v1/auth/keys/rotate", None),
        ("POST", "/v1/auth/exchange", {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": "eyJ.x.y",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "secrets:read secrets:list",
        }),
        ("GET", "/v1/identity/partners/ptn_a", None),
        ("GET", "/v1/identity/roles", None),
        ("POST", "/v1/identity/sync?tenant_id=tnt_a", None),
    ]
