"""Personal access tokens and the audit API against a real server, on both clients."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from conftest import Vault
from scaivault_sdk import (
    AuditEntry,
    AuditLogPage,
    AuditSummary,
    AuditVerification,
    AuthenticationError,
    CreatedToken,
    IdentityAuditTrail,
    NotFoundError,
    PermissionDeniedError,
    SecretAuditTrail,
    TokenInfo,
    ValidationError,
)

pytestmark = pytest.mark.integration

Factory = Callable[[str], Any]


@pytest.fixture
def api(connect: Factory, vault: Vault) -> Any:
    return connect(vault.token)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- personal access tokens -------------------------------------------------------------------


def test_token_lifecycle(api: Any, connect: Factory, prefix: str) -> None:
    path = f"{prefix}/db"
    api.secrets.write(path, {"password": "s3cret"})
    name = f"ci-{uuid.uuid4().hex[:8]}"

    created = api.auth.tokens.create(name=name, scopes=["secrets:read"], expires_in="1d")
    assert isinstance(created, CreatedToken)
    assert created.id.startswith("tok_") and created.token.startswith("skt_")
    assert (created.name, created.scopes, created.status) == (name, ["secrets:read"], "active")
    assert created.expires_at is not None
    assert timedelta(hours=23) < created.expires_at - _now() <= timedelta(days=1)
    assert created.token not in repr(created)

    listed = {t.id: t for t in api.auth.tokens.list()}
    assert isinstance(listed[created.id], TokenInfo)
    assert listed[created.id].status == "active" and listed[created.id].name == name
    assert "token" not in listed[created.id].raw
    assert created.id in {t.id for t in api.auth.tokens.list(all=True)}

    narrowed = connect(created.token)
    assert narrowed.secrets.read(path).data == {"password": "s3cret"}
    assert narrowed.auth.whoami().scopes == ["secrets:read"]
    with pytest.raises(PermissionDeniedError) as denied:
        narrowed.secrets.write(path, {"password": "other"})
    assert denied.value.status_code == 403
    with pytest.raises(PermissionDeniedError):  # audit needs audit:read
        narrowed.audit.logs(limit=1)
    with pytest.raises(ValidationError):  # no wider than the creator
        narrowed.auth.tokens.create(scopes=["admin"])

    revoked = api.auth.tokens.revoke(created.id)
    assert (revoked.id, revoked.revoked) == (created.id, True)
    assert revoked.revoked_at is not None
    with pytest.raises(AuthenticationError) as info:
        narrowed.secrets.read(path)
    assert (info.value.status_code, info.value.code) == (401, "token_revoked")

    after = {t.id: t for t in api.auth.tokens.list()}
    assert after[created.id].status == "revoked" and after[created.id].revoked_at is not None
    with pytest.raises(NotFoundError):
        api.auth.tokens.revoke(created.id)


def test_token_defaults(api: Any) -> None:
    created = api.auth.tokens.create()
    try:
        assert created.name is None
        assert "admin" in created.scopes
        assert timedelta(days=89) < created.expires_at - _now() <= timedelta(days=90)
    finally:
        api.auth.tokens.revoke(created.id)
    with pytest.raises(ValidationError):
        api.auth.tokens.create(expires_in="400d")


# -- audit ----------------------------------------------------------------------------------------


def test_audit_log_filters(api: Any, prefix: str) -> None:
    start = _now() - timedelta(seconds=1)
    api.secrets.write(f"{prefix}/a", {"k": "v"})
    api.secrets.write(f"{prefix}/b", {"k": "v"})
    api.secrets.read(f"{prefix}/a")
    with pytest.raises(NotFoundError):
        api.secrets.read(f"{prefix}/missing")

    page = api.audit.logs(path_prefix=prefix)
    assert isinstance(page, AuditLogPage) and not page.has_more and page.cursor is None
    assert len(page) == 4
    assert all(e.secret_path.startswith(prefix) for e in page)
    newest = page.logs[0]
    assert isinstance(newest, AuditEntry)
    assert newest.id.startswith("log_") and isinstance(newest.timestamp, datetime)
    assert re.fullmatch(r"[0-9a-f]{64}", newest.hash or "")
    assert [e.seq for e in page.logs] == sorted((e.seq for e in page.logs), reverse=True)

    writes = api.audit.logs(path_prefix=prefix, action="write")
    assert sorted(e.secret_path for e in writes) == [f"{prefix}/a", f"{prefix}/b"]
    assert all(e.action == "write" and e.success for e in writes)
    both = api.audit.logs(path_prefix=prefix, action=["read", "write"])
    assert len(both) == 4

    failed = api.audit.logs(path_prefix=prefix, success=False)
    assert [e.secret_path for e in failed] == [f"{prefix}/missing"]
    bad = failed.logs[0]
    assert (bad.action, bad.success, bad.status, bad.error_code) == (
        "read", False, 404, "secret_not_found")

    read = api.audit.logs(path_prefix=f"{prefix}/a", action="read", success=True)
    assert len(read) == 1 and read.logs[0].extra_data.get("version") == 1
    assert api.audit.logs(request_id=read.logs[0].request_id).logs[0].id == read.logs[0].id

    # time window: datetime and string forms
    assert len(api.audit.logs(path_prefix=prefix, from_=start, to=_now())) == 4
    assert len(api.audit.logs(path_prefix=prefix, from_=start.isoformat())) == 4
    assert len(api.audit.logs(path_prefix=prefix, to=start - timedelta(hours=1))) == 0

    with pytest.raises(ValidationError):
        api.audit.logs(limit=0)


def test_audit_paging(api: Any, prefix: str) -> None:
    for i in range(7):
        api.secrets.write(f"{prefix}/s{i}", {"i": i})
    first = api.audit.logs(path_prefix=prefix, action="write", limit=3)
    assert len(first) == 3 and first.has_more and first.cursor
    second = api.audit.logs(path_prefix=prefix, action="write", limit=3, cursor=first.cursor)
    assert {e.id for e in first}.isdisjoint(e.id for e in second)

    entries = api.audit.iter_logs(path_prefix=prefix, action="write", limit=3)
    assert len(entries) == 7 and len({e.id for e in entries}) == 7
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs, reverse=True)
    assert sorted(e.secret_path for e in entries) == sorted(f"{prefix}/s{i}" for i in range(7))


def test_audit_secret_and_identity_trails(api: Any, prefix: str) -> None:
    me = api.auth.whoami().identity_id
    start = _now() - timedelta(seconds=1)
    path = f"{prefix}/trail"
    api.secrets.write(path, {"k": "v"})
    api.secrets.read(path)
    api.secrets.read(path)
    api.secrets.read_metadata(path)

    trail = api.audit.secret(path)
    assert isinstance(trail, SecretAuditTrail) and trail.path == path
    assert len(trail) == 4 and all(e.secret_path == path for e in trail)
    summary = trail.summary
    assert isinstance(summary, AuditSummary)
    assert (summary.total_events, summary.reads, summary.writes) == (4, 2, 1)
    assert summary.events_by_action == {"read": 2, "write": 1, "read_metadata": 1}
    assert summary.period_days == 30 and summary["failed_events"] == 0
    assert [i.identity_id for i in summary.identities] == [me]
    assert summary.last_accessed_at is not None
    assert len(api.audit.secret(path, from_=start, to=_now())) == 4
    assert len(api.audit.secret(path, to=start - timedelta(hours=1))) == 0

    mine = api.audit.identity(me, from_=start)
    assert isinstance(mine, IdentityAuditTrail) and mine.identity_id == me
    assert mine.logs and all(e.identity_id == me for e in mine)
    assert path in mine.summary.resources_accessed
    assert {r.path: r.events for r in mine.summary.resources}[path] == 4

    other = api.audit.identity("user:nobody@example.test")
    assert len(other) == 0 and other.summary.resources_accessed == []


def test_audit_summary_and_verify(api: Any, prefix: str) -> None:
    start = _now()  # same host as the server: entries of earlier tests fall before it
    api.secrets.write(f"{prefix}/x", {"k": "v"})
    summary = api.audit.summary(from_=start)
    assert isinstance(summary, AuditSummary)
    assert summary.total_events >= 1 and summary.events_by_action.get("write", 0) >= 1
    assert summary.successful_events + summary.failed_events == summary.total_events
    assert summary.period["from"] is not None and summary.period["to"] is None
    assert len(summary.top_secrets) <= 10
    assert f"{prefix}/x" in {s.path for s in summary.top_secrets}
    assert summary.top_identities and summary.top_identities[0].events >= 1
    everything = api.audit.summary()
    assert everything.total_events >= summary.total_events

    result = api.audit.verify()
    assert isinstance(result, AuditVerification)
    assert result.valid is True and result.first_bad is None
    assert result.entries_checked > 0 and result.head_seq == result.entries_checked
