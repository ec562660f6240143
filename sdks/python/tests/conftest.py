"""Fixtures for the integration tests: a real ScaiVault server.

If ``SCAIVAULT_URL`` and ``SCAIVAULT_TOKEN`` are set, the tests use that server. Otherwise the
session starts the binary (``SCAIVAULT_BIN``, default ``<repo>/target/debug/scaivault``) as
``scaivault server --dev --data-dir <tmp> --bind 127.0.0.1:0 --dev-root-token <random>``, waits
for its ``listening on http://…`` line and stops it at the end. Unit tests need none of this.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest

from scaivault_sdk import NotFoundError, ScaiVaultClient, SyncScaiVaultClient

REPO_ROOT = Path(__file__).resolve().parents[3]
START_DEADLINE_S = 30.0
LISTENING = re.compile(r"listening on (https?://[A-Za-z0-9.\-\[\]:]+)")

# Server areas that do not exist yet, with the issue that will bring each. A test marked
# with pending(area) is a strict xfail: it must start passing (and then fail the suite as
# XPASS) when the area lands, so the mark gets removed.
AREA_ISSUES = {
    "dynamic": "dynamic secrets (not filed yet)",
    "rotation": "rotation (not filed yet)",
    "audit": "#6 audit query API",
    "pki": "pki (not filed yet)",
}


def pending(area: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(
        strict=True, reason=f"area not implemented: issue {AREA_ISSUES[area]}"
    )


@dataclass
class Vault:
    url: str
    token: str


class _ServerProcess:
    """The spawned server: stdout drained by a thread into a queue (and a tail for errors)."""

    def __init__(self, binary: Path, data_dir: str, token: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(binary), "server", "--dev", "--data-dir", data_dir,
             "--bind", "127.0.0.1:0", "--dev-root-token", token],
            env={**os.environ, "SCAIVAULT_RATE_LIMITS": os.environ.get("SCAIVAULT_RATE_LIMITS", "all=0")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=50)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.tail.append(line.rstrip())
            self.lines.put(line)
        self.lines.put(None)  # EOF

    def wait_listening(self) -> str:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"no 'listening on' line within {START_DEADLINE_S:.0f} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail(f"server exited with status {self.proc.returncode} before listening")
            match = LISTENING.search(line)
            if match:
                return match.group(1)

    def _fail(self, why: str) -> None:
        self.stop()
        stderr_tail = self.log_path.read_text(errors="replace")[-4000:]
        stdout_tail = "\n".join(self.tail)
        raise RuntimeError(
            f"ScaiVault server did not start: {why}\n"
            f"--- stdout (tail) ---\n{stdout_tail}\n--- stderr (tail) ---\n{stderr_tail}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def _server_binary() -> Path:
    binary = Path(os.environ.get("SCAIVAULT_BIN") or REPO_ROOT / "target" / "debug" / "scaivault")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise RuntimeError(
            f"ScaiVault server binary not found at {binary}: build it first "
            "(cargo build -p scaivault-cli) or set SCAIVAULT_BIN / SCAIVAULT_URL+SCAIVAULT_TOKEN"
        )
    return binary


@pytest.fixture(scope="session")
def vault() -> Iterator[Vault]:
    url, token = os.environ.get("SCAIVAULT_URL"), os.environ.get("SCAIVAULT_TOKEN")
    if url and token:
        yield Vault(url=url.rstrip("/"), token=token)
        return
    binary = _server_binary()
    workdir = tempfile.mkdtemp(prefix="scaivault-sdk-tests-")
    token = "skt_" + secrets.token_hex(24)
    server = _ServerProcess(binary, os.path.join(workdir, "data"), token,
                            Path(workdir) / "server.stderr.log")
    try:
        url = server.wait_listening()
        yield Vault(url=url, token=token)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def vault_env(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Vault:
    """The documented snippets read SCAIVAULT_URL / SCAIVAULT_TOKEN from the environment."""
    monkeypatch.setenv("SCAIVAULT_URL", vault.url)
    monkeypatch.setenv("SCAIVAULT_TOKEN", vault.token)
    monkeypatch.delenv("SCAIVAULT_TENANT_ID", raising=False)
    return vault


@pytest.fixture
def client(vault: Vault) -> Iterator[SyncScaiVaultClient]:
    with SyncScaiVaultClient(base_url=vault.url, token=vault.token) as c:
        yield c


@pytest.fixture
def prefix() -> str:
    """A path prefix no other test uses."""
    return f"sdk-tests/{uuid.uuid4().hex[:12]}"


def purge(client: SyncScaiVaultClient, paths: Iterable[str]) -> None:
    """Permanently remove ``paths`` (live or soft-deleted) so a snippet starts from scratch."""
    for path in paths:
        try:
            client.secrets.delete(path, permanent=True)
        except NotFoundError:
            pass


class Blocking:
    """Either client behind one blocking face: awaitables are run, iterators collected."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return Blocking(attr, self._loop)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                assert self._loop is not None
                return self._loop.run_until_complete(result)  # type: ignore[arg-type]
            if inspect.isasyncgen(result):
                assert self._loop is not None
                return self._loop.run_until_complete(_collect(result))
            if inspect.isgenerator(result):
                return list(result)
            return result

        return call


async def _collect(agen: Any) -> list[Any]:
    return [item async for item in agen]


Connect = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, vault: Vault) -> Iterator[Connect]:
    """``connect(token, **client_kwargs)`` → a blocking face over a sync or async client.

    ``token`` may be None with ``client_id=…, client_secret=…``; every client made is closed
    at the end of the test. Runs each test twice, once per client.
    """
    closers: list[Callable[[], None]] = []
    loop = asyncio.new_event_loop() if request.param == "async" else None

    def make(token: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", vault.url)
        if loop is None:
            sync = SyncScaiVaultClient(token=token, **kwargs)
            closers.append(sync.close)
            return Blocking(sync, None)
        aclient = ScaiVaultClient(token=token, **kwargs)
        closers.append(lambda: loop.run_until_complete(aclient.aclose()))
        return Blocking(aclient, loop)

    try:
        yield make
    finally:
        for close in closers:
            close()
        if loop is not None:
            loop.close()
