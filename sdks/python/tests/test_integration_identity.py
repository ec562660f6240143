"""Tenancy and identity management (``client.identity``) against a real server, on both clients."""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest

from conftest import Vault
from scaivault_sdk import (
    ConflictError,
    Identity,
    NotFoundError,
    PermissionDeniedError,
    Tenant,
    ValidationError,
)

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def test_partner_tenant_user_group_lifecycle(vault: Vault, connect: Factory) -> None:
    admin = connect(vault.token)
    sfx = _suffix()
    partner = admin.identity.create_partner(name=f"Acme {sfx}", id=f"ptn_acme_{sfx}", slug=f"acme-{sfx}")
    assert partner.id == f"ptn_acme_{sfx}" and partner.status == "ACTIVE"
    tenant = admin.identity.create_tenant(name="prod", id=f"tnt_prod_{sfx}", partner_id=partner.id)
    assert isinstance(tenant, Tenant) and tenant.partner_id == partner.id
    page = admin.identity.tenants(partner_id=partner.id)
    assert page.total == 1 and [t.id for t in page] == [tenant.id]
    with pytest.raises(ConflictError) as err:
        admin.identity.create_tenant(name="again", id=tenant.id, partner_id=partner.id)
    assert err.value.code == "already_exists"
    with pytest.raises(ValidationError):
        admin.identity.create_tenant(name="bad", id="not a tenant id")

    group = admin.identity.create_group(tenant.id, "sre", display_name="SRE")
    assert group.id == "group:sre" and group.member_count == 0
    user = admin.identity.create_user(
        tenant.id,
        "alice@acme.example",
        display_name="Alice",
        scopes=["secrets:read", "secrets:write", "secrets:list"],
        roles=["tenant_admin"],
        groups=["group:sre"],
    )
    assert isinstance(user, Identity)
    assert user.id == "user:alice@acme.example" and user.groups == ["group:sre"]
    assert user.roles == ["tenant_admin"] and user.email == "alice@acme.example"
    assert admin.identity.users(tenant.id, q="ALICE").total == 1
    assert admin.identity.get_user(tenant.id, "alice@acme.example").display_name == "Alice"

    # A token for alice, minted by the admin acting in her tenant.
    in_tenant = connect(vault.token, tenant_id=tenant.id)
    token = in_tenant.auth.tokens.create(identity_id=user.id, scopes=["secrets:read", "secrets:write"])
    alice = connect(token.token)
    me = alice.auth.whoami()
    assert me.identity_id == user.id and me.tenant_id == tenant.id and me.groups == ["group:sre"]
    alice.secrets.write("app/x", {"k": "v"})
    assert in_tenant.secrets.read("app/x").data == {"k": "v"}
    with pytest.raises(NotFoundError):
        admin.secrets.read("app/x")  # the admin's own tenant is another world

    members = in_tenant.identity.members("sre")
    assert [m.user_id for m in members] == [user.id] and members.total == 1
    in_tenant.identity.remove_member("sre", user.id)
    assert in_tenant.identity.members("sre").total == 0
    assert in_tenant.identity.resolve("user", user.id).id == user.id
    assert in_tenant.identity.user_roles(user.id).roles == ["tenant_admin"]
    assert in_tenant.identity.set_user_roles(user.id, []).roles == []

    # alice (no admin role now, no identity scopes) may not manage identities or act elsewhere.
    with pytest.raises(PermissionDeniedError):
        alice.identity.create_group(tenant.id, "ops")
    with pytest.raises(PermissionDeniedError) as denied:
        connect(token.token, tenant_id="tnt_default").secrets.list()
    assert denied.value.code == "tenant_access_denied"

    admin.identity.disable_user(tenant.id, user.id)
    assert admin.identity.get_user(tenant.id, user.id).status == "DISABLED"
    admin.identity.delete_group(tenant.id, "sre")
    assert admin.identity.groups(tenant.id).total == 0
    suspended = admin.identity.update_tenant(tenant.id, status="SUSPENDED")
    assert suspended.status == "SUSPENDED"
