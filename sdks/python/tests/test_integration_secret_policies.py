"""Secret policies (``client.secret_policies``) against a real server, on both clients."""

from __future__ import annotations

import uuid
import pytest

from conftest import Connect, Vault
from scaivault_sdk import (
    NotFoundError,
    PermissionDeniedError,
    SecretPolicy,
    SecretPolicyAttachment,
    SecretPolicyDeletion,
    SecretPolicyField,
    ValidationError,
)

pytestmark = pytest.mark.integration

STRONG = SecretPolicyField(
    name="password",
    generator="random",
    config={"length": 12, "charset": "safe", "require_upper": True, "require_digit": True},
)


def _name() -> str:
    return f"sdk-sp-{uuid.uuid4().hex[:8]}"


def _field_names(err: ValidationError) -> set[str]:
    return {f.get("field") for f in err.fields}


def test_secret_policy_lifecycle(vault: Vault, connect: Connect, prefix: str) -> None:
    api = connect(vault.token)
    name = _name()
    sp = api.secret_policies.create(name, [STRONG], policy_type="password", description="db")
    assert isinstance(sp, SecretPolicy) and sp.id.startswith("sp_")
    assert (sp.name, sp.policy_type, sp.description, sp.is_active) == (name, "password", "db", True)
    assert sp.fields == [STRONG] and isinstance(sp.fields[0], SecretPolicyField)
    assert sp.created_at is not None and sp.updated_at == sp.created_at

    got = api.secret_policies.get(sp.id)
    assert (got.id, got.name, got.fields) == (sp.id, name, [STRONG])
    listed = api.secret_policies.list()
    assert all(isinstance(p, SecretPolicy) for p in listed)
    assert sp.id in {p.id for p in listed}

    # Attached, the secret's writes must follow the rules; the value is never echoed.
    path = f"{prefix}/db"
    api.secrets.write(path, {"password": "weak"})
    att = api.secret_policies.attach(sp.id, path)
    assert isinstance(att, SecretPolicyAttachment)
    assert (att.path, att.secret_policy_id) == (path, sp.id)
    assert api.secrets.read_metadata(path).secret_policy_id == sp.id
    with pytest.raises(ValidationError) as e:
        api.secrets.write(path, {"password": "short1A"})
    assert e.value.status_code == 422 and e.value.code == "validation_error"
    assert _field_names(e.value) == {"data.password"}
    assert "short1A" not in str(e.value.details)
    assert api.secrets.write(path, {"password": "Long-enough-1"}).version == 2

    # Replacing (PUT) changes the rules and keeps the attachment and created_at.
    relaxed = {"name": "password", "generator": "random", "config": {"length": 4}}
    upd = api.secret_policies.update(sp.id, name + "-v2", [relaxed], is_active=False)
    assert (upd.id, upd.name, upd.is_active) == (sp.id, name + "-v2", False)
    assert upd.policy_type == "custom"  # PUT replaces: left out, it takes its default
    assert upd.fields[0].config == {"length": 4} and upd.created_at == sp.created_at
    assert api.secrets.write(path, {"password": "abcd"}).version == 3

    # Detached, anything goes again.
    det = api.secret_policies.detach(path)
    assert (det.path, det.secret_policy_id) == (path, None)
    assert api.secrets.read_metadata(path).secret_policy_id is None
    assert api.secrets.write(path, {"password": "a"}).version == 4

    gone = api.secret_policies.delete(sp.id)
    assert isinstance(gone, SecretPolicyDeletion) and (gone.id, gone.deleted) == (sp.id, True)
    with pytest.raises(NotFoundError) as nf:
        api.secret_policies.get(sp.id)
    assert nf.value.code == "secret_policy_not_found"
    assert nf.value.details == {"secret_policy_id": sp.id} and nf.value.request_id
    assert sp.id not in {p.id for p in api.secret_policies.list()}


def test_secret_policy_errors(vault: Vault, connect: Connect, prefix: str) -> None:
    api = connect(vault.token)
    with pytest.raises(ValidationError) as e:
        api.secret_policies.create(_name(), [{"name": "a", "generator": "magic"}])
    assert e.value.status_code == 422 and _field_names(e.value) == {"fields[0].generator"}
    with pytest.raises(ValidationError) as e:
        api.secret_policies.create("", [], policy_type="nope")
    assert _field_names(e.value) == {"name", "policy_type", "fields"}
    with pytest.raises(ValidationError) as e:
        api.secret_policies.create(_name(), [STRONG], is_active="yes")  # type: ignore[arg-type]
    assert _field_names(e.value) == {"is_active"}

    for call in (
        lambda: api.secret_policies.get("sp_nope"),
        lambda: api.secret_policies.update("sp_nope", "x", [STRONG]),
        lambda: api.secret_policies.attach("sp_nope", f"{prefix}/x"),
    ):
        with pytest.raises(NotFoundError) as nf:
            call()
        assert nf.value.status_code == 404 and nf.value.code == "secret_policy_not_found"
    with pytest.raises(NotFoundError) as gone:
        api.secret_policies.delete("sp_nope")
    assert gone.value.code == "secret_policy_not_found"

    sp = api.secret_policies.create(_name(), [STRONG])
    with pytest.raises(NotFoundError) as nf:
        api.secret_policies.attach(sp.id, f"{prefix}/missing")
    assert nf.value.code == "secret_not_found"
    with pytest.raises(ValidationError) as bad:
        api.secret_policies.attach(sp.id, "/not/a/path")
    assert bad.value.status_code == 400 and bad.value.code == "invalid_path"
    api.secret_policies.delete(sp.id)


def test_secret_policy_needs_scope_and_admin_role(vault: Vault, connect: Connect) -> None:
    admin = connect(vault.token)
    sp = admin.secret_policies.create(_name(), [STRONG])
    reader = connect(admin.auth.tokens.create(name="sp-reader", scopes=["policies:read"]).token)
    assert reader.secret_policies.get(sp.id).id == sp.id
    with pytest.raises(PermissionDeniedError) as e:
        reader.secret_policies.create(_name(), [STRONG])
    assert e.value.status_code == 403 and e.value.code == "insufficient_scope"
    with pytest.raises(PermissionDeniedError):
        reader.secret_policies.delete(sp.id)
    nobody = connect(admin.auth.tokens.create(name="sp-none", scopes=["secrets:read"]).token)
    with pytest.raises(PermissionDeniedError) as e:
        nobody.secret_policies.list()
    assert e.value.code == "insufficient_scope"

    # The scope alone is not enough: managing needs an admin role, which a service account lacks.
    sa = admin.service_accounts.create(f"sdk-sp-{uuid.uuid4().hex[:8]}", scopes=["policies:write"])
    bot = connect(client_id=sa.client_id, client_secret=sa.client_secret)
    with pytest.raises(PermissionDeniedError) as e:
        bot.secret_policies.create(_name(), [STRONG])
    assert e.value.code == "access_denied"
    assert admin.secret_policies.get(sp.id).name == sp.name
    admin.secret_policies.delete(sp.id)


def test_secret_policy_fields_accept_models_and_dicts(vault: Vault, connect: Connect) -> None:
    api = connect(vault.token)
    sp = api.secret_policies.create(
        _name(),
        [STRONG, {"name": "id", "generator": "uuid"}],
        policy_type="api_key",
    )
    assert [(f.name, f.generator) for f in sp.fields] == [("password", "random"), ("id", "uuid")]
    assert sp.fields[1].config == {} and sp.raw["fields"][1] == {"name": "id", "generator": "uuid"}
    api.secret_policies.delete(sp.id)
