"""The two public clients: :class:`ScaiVaultClient` (async) and :class:`SyncScaiVaultClient`.

They differ only in the httpx client they pool connections in and in the runner that
performs I/O; configuration, resources and behaviour are shared.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._core import AsyncRunner, Core, Settings, SyncRunner
from .resources import (
    AuditResource,
    AuthResource,
    DynamicResource,
    IdentityResource,
    PoliciesResource,
    SecretPoliciesResource,
    SecretsResource,
    ServiceAccountsResource,
    SystemResource,
)

__all__ = ["ScaiVaultClient", "SyncScaiVaultClient", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://scaivault.scailabs.ai"

_Self = TypeVar("_Self", bound="_ClientBase")


def _given(value: Any) -> Any:
    """``...`` (as in ``SyncScaiVaultClient(...)``) means "not given": use the default."""
    return None if value is Ellipsis else value


class _ClientBase:
    """Configuration shared by both clients.

    Arguments left out (or passed as ``...``) fall back to the environment:
    ``SCAIVAULT_URL``, ``SCAIVAULT_TOKEN``, ``SCAIVAULT_TENANT_ID``. With ``client_id`` and
    ``client_secret`` (and no ``token``) the client exchanges them at ``/v1/auth/token`` and
    refreshes the token before it expires. ``transport`` (an httpx transport) is for tests.
    """

    secrets: SecretsResource
    auth: AuthResource
    audit: AuditResource
    identity: IdentityResource
    dynamic: DynamicResource
    policies: PoliciesResource
    secret_policies: SecretPoliciesResource
    service_accounts: ServiceAccountsResource
    system: SystemResource

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        tenant_id: str | None = None,
        partner_id: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        transport: Any = None,
    ) -> None:
        client_id = _given(client_id)
        token = _given(token)
        if token is None and not client_id:
            token = os.environ.get("SCAIVAULT_TOKEN") or None
        self._settings = Settings(
            base_url=_given(base_url) or os.environ.get("SCAIVAULT_URL") or DEFAULT_BASE_URL,
            token=token,
            client_id=client_id,
            client_secret=_given(client_secret),
            tenant_id=_given(tenant_id) or os.environ.get("SCAIVAULT_TENANT_ID") or None,
            partner_id=_given(partner_id),
            timeout=float(_given(timeout) or 10.0),
            max_retries=max(0, int(3 if _given(max_retries) is None else max_retries)),
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self._core = Core(self._settings)
        self._transport = transport

    def _attach(self, runner: Any) -> None:
        self.secrets = SecretsResource(runner)
        self.auth = AuthResource(runner)
        self.audit = AuditResource(runner)
        self.identity = IdentityResource(runner)
        self.dynamic = DynamicResource(runner)
        self.policies = PoliciesResource(runner)
        self.secret_policies = SecretPoliciesResource(runner)
        self.service_accounts = ServiceAccountsResource(runner)
        self.system = SystemResource(runner)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class SyncScaiVaultClient(_ClientBase):
    """Blocking client; use as ``with SyncScaiVaultClient(...) as client:`` or call ``close()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = httpx.Client(
            timeout=self._settings.timeout, transport=self._transport, follow_redirects=False
        )
        self._attach(SyncRunner(self._core, self._http))

    def close(self) -> None:
        self._http.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ScaiVaultClient(_ClientBase):
    """Async client; use as ``async with ScaiVaultClient(...) as client:`` or ``await aclose()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = httpx.AsyncClient(
            timeout=self._settings.timeout, transport=self._transport, follow_redirects=False
        )
        self._attach(AsyncRunner(self._core, self._http))

    async def aclose(self) -> None:
        await self._http.aclose()

    close = aclose

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
