"""Request building and parsing of audit.export / exports / get_export (no server)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import httpx

from scaivault_sdk import AuditExport, AuditExportPage

from fakes import Recorder, async_client, sync_client

JOB = {"export_id": "exp_1", "status": "completed", "format": "jsonl",
       "estimated_records": 3, "records_exported": 3, "created_at": "2026-04-23T18:00:00Z",
       "completed_at": "2026-04-23T18:00:01.5Z", "error": None,
       "manifest": {"object_keys": ["p/exp_1.jsonl"], "manifest_key": "p/exp_1.jsonl.manifest.json",
                    "record_count": 3, "byte_size": 900, "sha256": "ab" * 32,
                    "chain": {"first_seq": 1, "first_prev_hash": "00" * 32, "last_seq": 3,
                              "last_hash": "cd" * 32}}}


def test_export_body_flat_and_nested() -> None:
    rec = Recorder(lambda r: httpx.Response(202, json={"export_id": "exp_1", "status": "pending",
                                                       "estimated_records": 3}))
    with sync_client(rec) as client:
        job = client.audit.export(type="s3", bucket="b", credentials_path="infra/aws/up",
                                  prefix="p/", endpoint="http://127.0.0.1:9000",
                                  from_=date(2026, 4, 1), to=datetime(2026, 4, 30, tzinfo=timezone.utc),
                                  action=["read", "write"], success=True)
        client.audit.export(destination={"type": "gcs", "bucket": "g", "credentials_path": "c"},
                            bucket="override", format="csv")
    assert rec.paths() == ["POST /v1/audit/export"] * 2
    assert rec.body(0) == {
        "format": "jsonl", "from": "2026-04-01", "to": "2026-04-30T00:00:00Z",
        "filters": {"action": "read,write", "success": True},
        "destination": {"type": "s3", "bucket": "b", "credentials_path": "infra/aws/up",
                        "prefix": "p/", "endpoint": "http://127.0.0.1:9000"},
    }
    assert rec.body(1) == {"format": "csv", "destination": {"type": "gcs", "bucket": "override",
                                                            "credentials_path": "c"}}
    assert isinstance(job, AuditExport) and job.status == "pending" and not job.done
    assert job.manifest is None


async def test_exports_and_get_export_parse() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/audit/exports":
            return httpx.Response(200, json={"exports": [JOB], "cursor": None, "has_more": False})
        return httpx.Response(200, json=JOB)

    rec = Recorder(handler)
    async with async_client(rec) as client:
        page = await client.audit.exports(limit=5)
        job = await client.audit.get_export("exp_1")
    assert rec.requests[0].url.params["limit"] == "5"
    assert rec.paths()[1] == "GET /v1/audit/exports/exp_1"
    assert isinstance(page, AuditExportPage) and [j.export_id for j in page] == ["exp_1"]
    assert job.done and job.manifest is not None
    assert job.manifest.object_keys == ["p/exp_1.jsonl"] and job.manifest.chain.last_seq == 3
    assert job.completed_at == datetime(2026, 4, 23, 18, 0, 1, 500000, tzinfo=timezone.utc)
