"""Service accounts (``client.service_accounts``), the system endpoints (``client.system``), the
JWT issuer's endpoints on ``client.auth`` and the identity extras, against a real server, on both
clients."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conftest import Connect, Vault
from scaivault_sdk import (
    AuthenticationError,
    ClientSecretRotation,
    ConflictError,
    CreatedServiceAccount,
    Health,
    HealthDetail,
    IdentitySync,
    Jwks,
    KeyRotation,
    NotFoundError,
    Partner,
    PermissionDeniedError,
    RoleDefinition,
    ServerVersion,
    ServiceAccount,
    ServiceAccountDisable,
    ValidationError,
)

pytestmark = pytest.mark.integration


def _name() -> str:
    return f"sdk-sa-{uuid.uuid4().hex[:8]}"


def _token_status(vault: Vault, client_id: str, secret: str) -> int:
    """The status of a client-credentials exchange (200 when the secret is accepted)."""
    r = httpx.post(
        f"{vault.url}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    return r.status_code


def test_service_account_lifecycle(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    name = _name()
    sa = api.service_accounts.create(
        name, scopes=["secrets:read"], groups=["group:ci"], description="deploys"
    )
    assert isinstance(sa, CreatedServiceAccount)
    assert (sa.id, sa.identity_id, sa.name, sa.identity_type) == (
        f"sa:{name}", f"sa:{name}", name, "service_account",
    )
    assert (sa.scopes, sa.groups, sa.description, sa.status) == (
        ["secrets:read"], ["group:ci"], "deploys", "active",
    )
    assert sa.client_id.startswith("sac_") and sa.client_secret.startswith("svs_")
    assert sa.client_secret not in repr(sa) and sa.created_at is not None

    listed = api.service_accounts.list()
    assert all(isinstance(a, ServiceAccount) for a in listed)
    mine = [a for a in listed if a.id == sa.id]
    assert len(mine) == 1 and mine[0].client_id == sa.client_id
    assert "client_secret" not in mine[0].raw
    by_name, by_id = api.service_accounts.get(name), api.service_accounts.get(sa.id)
    assert by_name.id == by_id.id == sa.id and by_name.scopes == ["secrets:read"]

    # The secret works with the SDK's client-credentials mode.
    bot = connect(client_id=sa.client_id, client_secret=sa.client_secret)
    me = bot.auth.whoami()
    assert (me.identity_id, me.identity_type) == (sa.id, "service_account")

    # Rotation with a grace period keeps the old secret working; without, it stops at once.
    graced = api.service_accounts.rotate_secret(name, grace="1h")
    assert isinstance(graced, ClientSecretRotation)
    assert graced.client_id == sa.client_id and graced.client_secret != sa.client_secret
    assert graced.previous_secrets_expire_at is not None
    assert graced.client_secret not in repr(graced)
    assert _token_status(vault, sa.client_id, sa.client_secret) == 200
    assert _token_status(vault, sa.client_id, graced.client_secret) == 200
    now = api.service_accounts.rotate_secret(sa.id)
    assert _token_status(vault, sa.client_id, graced.client_secret) == 401
    assert _token_status(vault, sa.client_id, now.client_secret) == 200

    # Deleting disables: the account shows it, its secrets and tokens stop working.
    off = api.service_accounts.delete(name)
    assert isinstance(off, ServiceAccountDisable)
    assert (off.id, off.disabled) == (sa.id, True) and off.disabled_at is not None
    after = api.service_accounts.get(sa.id)
    assert after.status == "disabled" and after.disabled_at is not None
    assert _token_status(vault, sa.client_id, now.client_secret) == 401
    with pytest.raises(AuthenticationError):
        connect(client_id=sa.client_id, client_secret=now.client_secret).auth.whoami()


def test_service_account_errors(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    for call in (
        lambda: api.service_accounts.get("nobody-here"),
        lambda: api.service_accounts.get("Bad Name"),
        lambda: api.service_accounts.delete("nobody-here"),
        lambda: api.service_accounts.rotate_secret("sa:nobody-here"),
    ):
        with pytest.raises(NotFoundError) as nf:
            call()
        assert nf.value.status_code == 404 and nf.value.code == "not_found"
        assert nf.value.request_id

    with pytest.raises(ValidationError) as e:
        api.service_accounts.create("Bad Name", scopes=["no:such"], groups=["ci"])
    assert e.value.status_code == 422
    assert {f["field"] for f in e.value.fields} == {"name", "scopes[0]", "groups[0]"}
    name = _name()
    api.service_accounts.create(name)
    with pytest.raises(ConflictError) as c:
        api.service_accounts.create(name)
    assert c.value.code == "already_exists" and c.value.details == {"id": f"sa:{name}"}
    with pytest.raises(ValidationError) as g:
        api.service_accounts.rotate_secret(name, grace="31d")
    assert {f["field"] for f in g.value.fields} == {"grace"}

    reader = connect(api.auth.tokens.create(name="sa-reader", scopes=["identity:read"]).token)
    assert reader.service_accounts.get(name).id == f"sa:{name}"
    for call in (
        lambda: reader.service_accounts.create(_name()),
        lambda: reader.service_accounts.rotate_secret(name),
        lambda: reader.service_accounts.delete(name),
    ):
        with pytest.raises(PermissionDeniedError) as d:
            call()
        assert d.value.status_code == 403 and d.value.code == "insufficient_scope"
    assert api.service_accounts.get(name).status == "active"
    # A creator cannot hand out scopes it does not hold.
    narrow = connect(
        api.auth.tokens.create(name="sa-admin", scopes=["identity:admin", "secrets:read"]).token
    )
    with pytest.raises(ValidationError) as w:
        narrow.service_accounts.create(_name(), scopes=["secrets:write"])
    assert [f["field"] for f in w.value.fields] == ["scopes[0]"]


def test_system_endpoints(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    h = api.system.health()
    assert isinstance(h, Health) and h.status == "healthy" and h.timestamp is not None
    r = api.system.ready()
    assert r.status == "ready" and r.checks["database"] == "ok" and r.checks["encryption"] == "ok"
    d = api.system.detailed()
    assert isinstance(d, HealthDetail) and d.status == "healthy"
    assert d.checks["database"]["backend"] == "sqlite" and d.version
    v = api.system.version()
    assert isinstance(v, ServerVersion) and v.api_version == "v1" and v.version == d.version
    # Health needs no token; the detailed view does.
    assert connect("skt_not_a_real_token_at_all").system.health().status == "healthy"
    with pytest.raises(AuthenticationError):
        connect("skt_not_a_real_token_at_all").system.detailed()


def test_issuer_keys_and_exchange(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    before = api.auth.jwks()
    assert isinstance(before, Jwks) and before.keys and all(k.get("kid") for k in before.keys)
    rotated = api.auth.rotate_keys()
    assert isinstance(rotated, KeyRotation) and rotated.kid not in before.kids
    after = api.auth.jwks()
    assert rotated.kid in after.kids and set(before.kids) <= set(after.kids)
    assert set(rotated.published_kids) == set(after.kids)

    reader = connect(api.auth.tokens.create(name="no-admin", scopes=["secrets:read"]).token)
    with pytest.raises(PermissionDeniedError) as e:
        reader.auth.rotate_keys()
    assert e.value.code == "insufficient_scope"
    # No external issuer is configured: a subject token is refused, never exchanged.
    with pytest.raises(AuthenticationError) as x:
        api.auth.exchange("not-a-jwt")
    assert x.value.status_code == 401


def test_identity_extras(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    me = api.auth.whoami()
    partner = api.identity.get_partner(me.partner_id)
    assert isinstance(partner, Partner) and partner.id == me.partner_id
    with pytest.raises(NotFoundError):
        api.identity.get_partner("ptn_does_not_exist")
    roles = api.identity.roles()
    assert all(isinstance(r, RoleDefinition) for r in roles)
    assert {r.name for r in roles} == {"super_admin", "partner_admin", "tenant_admin"}
    assert all(r.description for r in roles)
    sync = api.identity.sync(tenant_id=me.tenant_id)
    assert isinstance(sync, IdentitySync)
    assert sync.sync_id.startswith("sync_") and (sync.status, sync.changes) == ("completed", 0)
    reader = connect(api.auth.tokens.create(name="id-reader", scopes=["identity:read"]).token)
    with pytest.raises(PermissionDeniedError):
        reader.identity.sync()
