"""Helpers for unit tests: SDK clients wired to an ``httpx.MockTransport``."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx

from scaivault_sdk import ScaiVaultClient, SyncScaiVaultClient

BASE = "http://vault.test"


def envelope(status: int, code: str, message: str = "", headers: dict[str, str] | None = None,
             **details: Any) -> httpx.Response:
    body = {"error": {"code": code, "message": message or code, "details": details,
                      "request_id": "req_test"}}
    return httpx.Response(status, json=body, headers=headers)


class Recorder:
    """Route table + log of every request the client sent."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def sync_client(rec: Recorder, **kwargs: Any) -> SyncScaiVaultClient:
    kwargs.setdefault("base_url", BASE)
    if "client_id" not in kwargs:
        kwargs.setdefault("token", "skt_test")
    client = SyncScaiVaultClient(transport=httpx.MockTransport(rec), **kwargs)
    client.secrets._runner.sleep = rec.sleeps.append
    return client


def async_client(rec: Recorder, **kwargs: Any) -> ScaiVaultClient:
    kwargs.setdefault("base_url", BASE)
    if "client_id" not in kwargs:
        kwargs.setdefault("token", "skt_test")
    client = ScaiVaultClient(transport=httpx.MockTransport(rec), **kwargs)

    async def fake_sleep(seconds: float) -> None:
        rec.sleeps.append(seconds)

    client.secrets._runner.sleep = fake_sleep
    return client


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering with ``responses`` in turn (exceptions are raised), then the last."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        # a fresh copy each time: a Response object must not be sent twice
        return httpx.Response(item.status_code, headers=item.headers, content=item.content)

    return handler


SECRET = {
    "path": "app/db/password",
    "secret_type": "json",
    "version": 2,
    "data": {"password": "hunter2"},
    "metadata": {"description": "db", "tags": ["a"], "owner": "team:x", "custom": {"k": "v"}},
    "created_at": "2026-04-23T18:00:00.123456Z",
    "updated_at": "2026-04-23T18:00:01Z",
    "expires_at": None,
    "rotation_policy_id": None,
    "secret_policy_id": None,
    "last_accessed_at": None,
}
