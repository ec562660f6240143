"""Rate limits against a real server: per-tenant overrides set through ``client.identity``, and a
burst past the limit surfacing as :class:`RateLimitError` with the server's ``Retry-After``, on both
clients."""

from __future__ import annotations

import uuid

import pytest

from conftest import Connect, Vault
from scaivault_sdk import PermissionDeniedError, RateLimitError, Tenant, ValidationError

pytestmark = pytest.mark.integration


def test_tenant_rate_limits_and_rate_limit_error(vault: Vault, connect: Connect) -> None:
    admin = connect(vault.token)
    tenant_id = f"tnt_sdk_rl_{uuid.uuid4().hex[:8]}"
    tenant = admin.identity.create_tenant(
        "rate-limited", id=tenant_id, partner_id="ptn_default", rate_limits={"read": 2}
    )
    assert isinstance(tenant, Tenant)
    assert tenant.rate_limits == {"read": 2}
    with pytest.raises(ValidationError) as bad:
        admin.identity.update_tenant(tenant_id, rate_limits={"reads": 5})
    assert "rate_limits" in str(bad.value.details)

    admin.identity.create_user(
        tenant_id, "rl@example.com", scopes=["admin"], roles=["tenant_admin"]
    )
    in_tenant = connect(vault.token, tenant_id=tenant_id)
    token = in_tenant.auth.tokens.create(name="rl", identity_id="user:rl@example.com").token
    user = connect(token, max_retries=0)
    user.secrets.write("rl/one", {"k": "v"})
    # A tenant admin may not lift its own tenant's limits.
    with pytest.raises(PermissionDeniedError):
        user.identity.update_tenant(tenant_id, rate_limits={"read": 0})

    user.secrets.read("rl/one")
    user.secrets.read("rl/one")
    with pytest.raises(RateLimitError) as limited:
        user.secrets.read("rl/one")
    err = limited.value
    assert err.code == "rate_limited"
    assert err.retry_after is not None and err.retry_after >= 1
    assert err.request_id and err.request_id.startswith("req_")
    assert err.details["limit"] == 2

    cleared = admin.identity.update_tenant(tenant_id, clear_rate_limits=True)
    assert cleared.rate_limits is None
    assert admin.identity.get_tenant(tenant_id).rate_limits is None
