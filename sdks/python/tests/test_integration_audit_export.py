"""Audit exports against a real server and a real S3 API (moto, installed by scripts/moto.sh),
on both clients: export, poll to completion, download, check the manifest, verify offline."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, Vault, _server_binary
from scaivault_sdk import (
    AuditExport,
    AuditExportPage,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from test_integration_tokens_audit import Factory, api  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

ACCESS_KEY, SECRET_KEY = "AKIASDKEXPORT", "sdk-moto-secret-do-not-log"


class Moto:
    def __init__(self, url: str, python: Path) -> None:
        self.url, self.python = url, python

    def s3(self, code: str, *args: str) -> str:
        """Runs boto3 (moto's own dependency, in moto's venv) against the server."""
        prelude = (
            "import sys, boto3\n"
            f"s3 = boto3.client('s3', endpoint_url={self.url!r}, region_name='us-east-1', "
            f"aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r})\n"
        )
        out = subprocess.run(
            [str(self.python), "-c", prelude + code, *args],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return out.stdout

    def create_bucket(self, name: str) -> None:
        self.s3("s3.create_bucket(Bucket=sys.argv[1])", name)

    def download(self, bucket: str, key: str, dest: Path) -> bytes:
        self.s3("s3.download_file(sys.argv[1], sys.argv[2], sys.argv[3])", bucket, key, str(dest))
        return dest.read_bytes()


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    script = REPO_ROOT / "scripts" / "moto.sh"
    installed = subprocess.run(["bash", str(script), "install"], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.fail(f"{script} install failed (moto[server] is required):\n{installed.stderr}")
    server = Path(installed.stdout.strip())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"moto_server did not answer at {url}")
                time.sleep(0.1)
        yield Moto(url, server.parent / "python")
    finally:
        proc.kill()
        proc.wait()


def _wait(api: Any, export_id: str) -> AuditExport:
    deadline = time.monotonic() + 60
    while True:
        job = api.audit.get_export(export_id)
        if job.done or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_export_to_s3_and_verify(
    api: Any, moto: Moto, prefix: str, tmp_path: Path
) -> None:
    bucket = f"sdk-{uuid.uuid4().hex[:10]}"
    moto.create_bucket(bucket)
    creds = f"{prefix}/aws/uploader"
    api.secrets.write(creds, {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
    canary = f"cnry{uuid.uuid4().hex}"
    api.secrets.write(f"{prefix}/db", {"password": canary})
    api.secrets.read(f"{prefix}/db")

    created = api.audit.export(
        type="s3", bucket=bucket, prefix="sdk/", credentials_path=creds,
        endpoint=moto.url, region="us-east-1", format="jsonl",
    )
    assert isinstance(created, AuditExport)
    assert created.export_id.startswith("exp_")
    assert created.status in ("pending", "running")
    assert created.estimated_records > 0

    job = _wait(api, created.export_id)
    assert job.status == "completed", job.raw
    m = job.manifest
    assert m is not None and m.object_keys[0].startswith("sdk/exp_")
    data = moto.download(bucket, m.object_keys[0], tmp_path / "export.jsonl")
    assert hashlib.sha256(data).hexdigest() == m.sha256
    assert len(data) == m.byte_size
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert len(lines) == m.record_count == job.records_exported
    assert m.chain.first_seq == 1 and m.chain.first_prev_hash == "0" * 64
    assert m.chain.last_hash == lines[-1]["hash"]
    assert canary.encode() not in data and SECRET_KEY.encode() not in data

    # The CLI verifies the downloaded file offline.
    out = subprocess.run(
        [str(_server_binary()), "audit", "verify", "--file", str(tmp_path / "export.jsonl")],
        capture_output=True, text=True, env={**os.environ, "SCAIVAULT_URL": "http://127.0.0.1:9"},
    )
    assert out.returncode == 0, out.stdout + out.stderr

    page = api.audit.exports(limit=100)
    assert isinstance(page, AuditExportPage)
    assert created.export_id in [e.export_id for e in page]


def test_export_errors(api: Any, connect: Factory, vault: Vault, prefix: str) -> None:
    dest = {"type": "s3", "bucket": "sdk-bucket", "credentials_path": f"{prefix}/none"}
    with pytest.raises(ValidationError) as err:
        api.audit.export(destination=dest)
    assert err.value.code == "validation_error"
    assert [f["field"] for f in err.value.details["fields"]] == ["destination.credentials_path"]
    with pytest.raises(ValidationError):
        api.audit.export(destination={**dest, "type": "ftp"}, format="xml")
    with pytest.raises(NotFoundError):
        api.audit.get_export("exp_doesnotexist")
    reader = api.auth.tokens.create(name=f"r-{uuid.uuid4().hex[:6]}", scopes=["audit:read"]).token
    as_reader = connect(reader)
    with pytest.raises(PermissionDeniedError) as denied:
        as_reader.audit.export(destination=dest)
    assert denied.value.code == "insufficient_scope"
    assert isinstance(as_reader.audit.exports(), AuditExportPage)
