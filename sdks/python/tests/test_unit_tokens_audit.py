"""Request building and parsing of auth.tokens and audit (no server)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import httpx

from scaivault_sdk import AuditVerification, CreatedToken, TokenInfo

from fakes import Recorder, async_client, sync_client

TOKEN = {"id": "tok_1", "token": "skt_supersecretvalue", "name": "ci", "identity_id": "user:a",
         "scopes": ["secrets:read"], "created_at": "2026-04-23T18:00:00.123456Z",
         "expires_at": "2026-07-22T18:00:00.123456Z", "revoked_at": None, "status": "active"}
ENTRY = {"id": "log_1", "timestamp": "2026-04-23T18:00:00.123456Z", "action": "read",
         "identity_type": "user", "identity_id": "user:a", "secret_path": "app/db",
         "success": True, "status": 200, "error_code": None, "extra_data": {"version": 3},
         "seq": 12, "hash": "ab" * 32}


def test_token_create_body_and_hidden_value() -> None:
    rec = Recorder(lambda r: httpx.Response(201, json=TOKEN))
    with sync_client(rec) as client:
        created = client.auth.tokens.create(name="ci", scopes=("secrets:read",),
                                            expires_in="90d")
    assert rec.paths() == ["POST /v1/auth/tokens"]
    assert rec.body() == {"name": "ci", "scopes": ["secrets:read"], "expires_in": "90d"}
    assert isinstance(created, CreatedToken) and created.token == "skt_supersecretvalue"
    assert created.expires_at == datetime(2026, 7, 22, 18, 0, 0, 123456, tzinfo=timezone.utc)
    assert "skt_supersecretvalue" not in repr(created) and "tok_1" in repr(created)
    with sync_client(rec) as client:
        client.auth.tokens.create()
    assert rec.body() == {}


def test_token_list_and_revoke() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"tokens": [{**TOKEN, "token": None}]})
        return httpx.Response(200, json={"id": "tok_1", "revoked": True,
                                         "revoked_at": "2026-04-23T18:00:00Z"})

    rec = Recorder(handler)
    with sync_client(rec) as client:
        tokens = client.auth.tokens.list(all=True)
        client.auth.tokens.list(identity_id="user:b")
        revoked = client.auth.tokens.revoke("tok_1")
    assert [type(t) for t in tokens] == [TokenInfo] and tokens[0].status == "active"
    assert rec.requests[0].url.params["all"] == "true"
    assert dict(rec.requests[1].url.params) == {"identity_id": "user:b"}
    assert rec.paths()[2] == "DELETE /v1/auth/tokens/tok_1" and revoked.revoked


def test_audit_logs_params() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"logs": [ENTRY], "cursor": None,
                                                       "has_more": False}))
    est = timezone(timedelta(hours=-5))
    with sync_client(rec) as client:
        page = client.audit.logs(from_=datetime(2026, 4, 23, 13, 0, tzinfo=est),
                                 to=date(2026, 4, 24), action=["read", "write"],
                                 success=False, path_prefix="app/", limit=5, cursor="c1")
        client.audit.logs(from_=datetime(2026, 1, 1), to="2026-02-01T00:00:00Z", success=True)
    assert dict(rec.requests[0].url.params) == {
        "from": "2026-04-23T18:00:00Z", "to": "2026-04-24", "action": "read,write",
        "success": "false", "path_prefix": "app/", "limit": "5", "cursor": "c1"}
    assert dict(rec.requests[1].url.params) == {
        "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "success": "true"}
    entry = page.logs[0]
    assert (entry.action, entry.seq, entry.extra_data, entry.status) == ("read", 12,
                                                                         {"version": 3}, 200)
    assert list(page) == page.logs and len(page) == 1


def _paged(request: httpx.Request) -> httpx.Response:
    if request.url.params.get("cursor") == "c2":
        return httpx.Response(200, json={"logs": [{**ENTRY, "id": "log_3", "seq": 10}],
                                         "cursor": None, "has_more": False})
    return httpx.Response(200, json={"logs": [ENTRY, {**ENTRY, "id": "log_2", "seq": 11}],
                                     "cursor": "c2", "has_more": True})


def test_iter_logs_follows_cursors() -> None:
    with sync_client(Recorder(_paged)) as client:
        ids = [e.id for e in client.audit.iter_logs(action="read", limit=2)]
    assert ids == ["log_1", "log_2", "log_3"]


async def test_async_iter_logs_and_trails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/audit/logs":
            return _paged(request)
        if request.url.path == "/v1/audit/verify":
            return httpx.Response(200, json={"valid": False, "entries_checked": 4, "head_seq": 9,
                                             "first_bad": {"seq": 5, "id": "log_5",
                                                           "reason": "hash"}})
        return httpx.Response(200, json={"identity_id": "user:a@x.example", "logs": [ENTRY],
                                         "cursor": None, "has_more": False,
                                         "summary": {"resources_accessed": ["app/db"],
                                                     "resources": [{"path": "app/db",
                                                                    "events": 1}],
                                                     "total_events": 1}})

    rec = Recorder(handler)
    async with async_client(rec) as client:
        ids = [e.id async for e in client.audit.iter_logs()]
        trail = await client.audit.identity("user:a@x.example", from_="2026-04-01")
        verdict = await client.audit.verify()
    assert ids == ["log_1", "log_2", "log_3"]
    assert rec.requests[2].url.raw_path.startswith(b"/v1/audit/identities/user%3Aa%40x%2Eexample")
    assert trail.summary.resources_accessed == ["app/db"]
    assert trail.summary["total_events"] == 1 and trail.summary.resources[0].events == 1
    assert isinstance(verdict, AuditVerification) and not verdict.valid
    assert verdict.first_bad is not None and verdict.first_bad.seq == 5


def test_secret_trail_path_and_summary() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"path": "app/db", "logs": [],
                                                       "cursor": None, "has_more": False,
                                                       "summary": {"reads": 4, "writes": 2}}))
    with sync_client(rec) as client:
        trail = client.audit.secret("app/db", from_="2026-04-01", to="2026-04-30")
        summary = client.audit.summary(from_="2026-04-01")
    assert rec.paths() == ["GET /v1/audit/secrets/app/db", "GET /v1/audit/summary"]
    assert dict(rec.requests[0].url.params) == {"from": "2026-04-01", "to": "2026-04-30"}
    assert (trail.path, trail.summary.reads, trail.summary.writes) == ("app/db", 4, 2)
    assert summary.reads is None and summary.total_events == 0  # fields it lacks: defaults
