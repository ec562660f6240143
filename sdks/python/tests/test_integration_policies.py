"""Access policies against a real server, on both clients."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable, Iterator

import pytest

from conftest import Vault
from scaivault_sdk import (
    ConflictError,
    NotFoundError,
    Policy,
    PolicyBinding,
    PolicyPage,
    ScaiVaultClient,
    SyncScaiVaultClient,
    ValidationError,
)
from scaivault_sdk.errors import ScaiVaultError
from test_integration import Blocking

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, vault: Vault) -> Iterator[Any]:
    if request.param == "sync":
        sync = SyncScaiVaultClient(base_url=vault.url, token=vault.token)
        yield Blocking(sync, None)
        sync.close()
        return
    loop = asyncio.new_event_loop()
    aclient = ScaiVaultClient(base_url=vault.url, token=vault.token)
    yield Blocking(aclient, loop)
    loop.run_until_complete(aclient.aclose())
    loop.close()


def _name() -> str:
    return f"sdk-{uuid.uuid4().hex[:8]}"


def test_policy_lifecycle(client: Any) -> None:
    prefix = f"sdk{uuid.uuid4().hex[:8]}"
    rules = [
        {"path_pattern": f"{prefix}/prod/**", "permissions": ["read", "list"],
         "conditions": {"ip_ranges": ["10.0.0.0/8"]}},
        {"path_pattern": f"{prefix}/shared/*", "permissions": ["read"]},
    ]
    p = client.policies.create(_name(), rules, description="sdk test")
    assert isinstance(p, Policy) and p.id.startswith("pol_")
    assert p.rules[0]["path_pattern"] == f"{prefix}/prod/**" and p.is_active

    b = client.policies.bind(p.id, "group:sdk-devs")
    assert isinstance(b, PolicyBinding) and b.identity_type == "group"
    sa = client.policies.bind(p.id, "sa:sdk-bot", expires_at="2999-01-01T00:00:00Z")
    assert sa.identity_type == "service_account" and sa.expires_at is not None
    assert {x.identity_id for x in client.policies.bindings(p.id)} == {"group:sdk-devs", "sa:sdk-bot"}

    got = client.policies.get(p.id)
    assert got.binding_count == 2 and len(got.bindings) == 2

    allowed = client.policies.test("sa:sdk-bot", f"{prefix}/shared/x", "read")
    assert allowed.allowed and allowed.policy_id == p.id and allowed.rule_index == 1
    denied = client.policies.test("sa:sdk-bot", f"{prefix}/prod/db", "read", source_ip="192.168.1.1")
    assert not denied and denied.code == "ip_not_allowed"
    ok = client.policies.test("sa:sdk-bot", f"{prefix}/prod/db", "list", source_ip="10.1.1.1")
    assert ok.allowed
    nope = client.policies.test("sa:other", f"{prefix}/shared/x", "read")
    assert not nope.allowed and nope.code == "access_denied"

    found = client.policies.list_for_path(f"{prefix}/shared/key")
    assert [x.id for x in found] == [p.id] and found[0].matching_rules == [1]
    assert client.policies.list_for_path(f"{prefix}/shared/key", permission="write") == []

    upd = client.policies.update(p.id, is_active=False)
    assert not upd.is_active and len(upd.bindings) == 2
    page = client.policies.list(include_inactive=True, limit=1000)
    assert isinstance(page, PolicyPage) and p.id in {x.id for x in page}
    assert p.id not in {x.id for x in client.policies.list(limit=1000)}
    rep = client.policies.update(p.id, name="renamed", rules=rules[:1], replace=True)
    assert rep.name == "renamed" and rep.is_active and len(rep.rules) == 1

    with pytest.raises(ConflictError) as e:
        client.policies.delete(p.id)
    assert e.value.code == "policy_in_use"
    client.policies.unbind(p.id, b.id)
    assert [x.id for x in client.policies.bindings(p.id)] == [sa.id]
    assert client.policies.delete(p.id, force=True).deleted
    with pytest.raises(NotFoundError) as e2:
        client.policies.get(p.id)
    assert e2.value.code == "policy_not_found"


def test_policy_validation(client: Any) -> None:
    with pytest.raises(ScaiVaultError) as e:
        client.policies.create(_name(), [{"path_pattern": "/abs", "permissions": ["read"]}])
    assert e.value.code == "invalid_glob"
    with pytest.raises(ScaiVaultError) as e:
        client.policies.create(_name(), [{"path_pattern": "a", "permissions": ["fly"]}])
    assert e.value.code == "invalid_policy"
    with pytest.raises(ValidationError):
        client.policies.create("", [{"path_pattern": "a", "permissions": ["read"]}])


def test_policy_paging(client: Any) -> None:
    ids = {client.policies.create(_name(), [{"path_pattern": "pg/*", "permissions": ["list"]}]).id for _ in range(3)}
    seen: list[str] = []
    cursor = None
    while True:
        page = client.policies.list(limit=2, cursor=cursor)
        seen.extend(x.id for x in page)
        if not page.has_more:
            break
        cursor = page.cursor
    assert ids <= set(seen) and len(seen) == len(set(seen))
