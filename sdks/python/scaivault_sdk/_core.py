"""Transport-agnostic core shared by the sync and async clients.

Everything that decides *what* to send and *what a response means* lives here, once:
request building, authentication (static token or client-credentials exchange with
refresh), retries with backoff, error mapping and result parsing. It is written as a
"sans-I/O" generator: :meth:`Core.execute` yields :class:`Send` and :class:`Sleep`
operations and receives their outcome. :class:`SyncRunner` and :class:`AsyncRunner` are the
only places that perform I/O — a blocking and an ``await``-ing loop over the same generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Generator,
    Generic,
    Iterator,
    TypeVar,
    Union,
)

import httpx

from .errors import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    ScaiVaultError,
    error_from_response,
    parse_retry_after,
)

__version__ = "0.1.0"

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
# 401 codes after which a client-credentials client fetches a new token and tries once more.
REFRESH_CODES = frozenset({"token_expired", "token_invalid"})
# Errors where the request provably never reached the server: safe to retry for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to make and how to turn the JSON answer into ``T``."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    # None → decided by the HTTP method. Set False for calls whose replay has a visible
    # side effect, True for POSTs that only read.
    idempotent: bool | None = None

    @property
    def replayable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS


@dataclass(frozen=True)
class Send:
    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    seconds: float


Op = Union[Send, Sleep]
Flow = Generator[Op, Any, T]


@dataclass
class Settings:
    base_url: str
    token: str | None
    client_id: str | None
    client_secret: str | None
    tenant_id: str | None
    partner_id: str | None
    timeout: float
    max_retries: int
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After longer than this is not slept through: the RateLimitError is raised.
    max_retry_after: float = 60.0


class Core:
    """State and logic of one SDK client, independent of sync/async I/O."""

    clock = staticmethod(time.monotonic)  # replaceable in tests

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._base = settings.base_url.rstrip("/")
        self._token = settings.token
        self._token_deadline: float | None = None  # monotonic time to refresh at
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"scaivault-sdk-python/{__version__}",
        }
        if settings.tenant_id:
            self._headers["X-Tenant-ID"] = settings.tenant_id
        if settings.partner_id:
            self._headers["X-Partner-ID"] = settings.partner_id

    # -- authentication -------------------------------------------------------------------

    @property
    def uses_client_credentials(self) -> bool:
        return self.settings.token is None and bool(self.settings.client_id)

    def _token_is_stale(self) -> bool:
        if not self.uses_client_credentials:
            return False
        if self._token is None:
            return True
        return self._token_deadline is not None and self.clock() >= self._token_deadline

    def _fetch_token(self) -> Flow[None]:
        request = httpx.Request(
            "POST",
            f"{self._base}/v1/auth/token",
            headers=self._headers,
            data={
                "grant_type": "client_credentials",
                "client_id": self.settings.client_id or "",
                "client_secret": self.settings.client_secret or "",
            },
        )
        response = yield from self._send(lambda: request, replayable=True)
        if not response.is_success:
            raise error_from_response(response)
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError(
                "token_invalid",
                "token endpoint answered without an access_token",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
        self._token = str(token)
        expires_in = body.get("expires_in")
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            # Refresh shortly before expiry: 10 % of the lifetime early, at most one minute.
            self._token_deadline = self.clock() + expires_in - min(60.0, expires_in * 0.1)
        else:
            self._token_deadline = None

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    # -- the request flow ----------------------------------------------------------------

    def build_request(self, call: Call[Any]) -> httpx.Request:
        params = {k: v for k, v in (call.params or {}).items() if v is not None}
        return httpx.Request(
            call.method,
            f"{self._base}{call.path}",
            params=params or None,
            json=call.json,
            headers=self._request_headers(),
        )

    def execute(self, call: Call[T]) -> Flow[T]:
        """Run ``call`` to its parsed result, or raise the typed error."""
        refreshed = False
        while True:
            if self._token_is_stale():
                yield from self._fetch_token()
            response = yield from self._send(lambda: self.build_request(call), call.replayable)
            if response.is_success:
                body = response.json() if response.content else None
                return call.parse(body)
            error = error_from_response(response)
            if (
                isinstance(error, AuthenticationError)
                and error.code in REFRESH_CODES
                and self.uses_client_credentials
                and not refreshed
            ):
                self._token = None
                refreshed = True
                continue
            raise error

    def _send(self, build: Callable[[], httpx.Request], replayable: bool) -> Flow[httpx.Response]:
        """Send with retries: 429/503 (honouring Retry-After) and connection errors."""
        attempt = 0
        while True:
            try:
                response: httpx.Response = yield Send(build())
            except httpx.TransportError as exc:
                if attempt < self.settings.max_retries and (
                    replayable or isinstance(exc, _NOT_SENT)
                ):
                    attempt += 1
                    yield Sleep(self.backoff(attempt))
                    continue
                raise APIConnectionError(
                    "connection_error", f"{type(exc).__name__}: {exc}"
                ) from exc
            if response.status_code not in RETRY_STATUSES or attempt >= self.settings.max_retries:
                return response
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None and retry_after > self.settings.max_retry_after:
                return response
            attempt += 1
            if retry_after is None:
                delay = self.backoff(attempt)
            else:  # never earlier than asked; a little jitter so clients do not stampede
                delay = retry_after + random.uniform(0, min(1.0, retry_after * 0.1))
            yield Sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base·2^(attempt-1), capped, scaled by [0.5, 1)."""
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


# -- the two I/O shells -------------------------------------------------------------------


class SyncRunner:
    """Drives :class:`Core` flows with a blocking ``httpx.Client``."""

    sleep = staticmethod(time.sleep)  # replaceable in tests

    def __init__(self, core: Core, http: httpx.Client) -> None:
        self.core = core
        self.http = http

    def run(self, call: Call[T]) -> T:
        flow = self.core.execute(call)
        try:
            op = next(flow)
            while True:
                if isinstance(op, Sleep):
                    self.sleep(op.seconds)
                    op = flow.send(None)
                    continue
                try:
                    response = self.http.send(op.request)
                except httpx.TransportError as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def paginate(self, page: Callable[[str | None], Call[Any]]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            result = self.run(page(cursor))
            yield from result
            if not result.has_more or not result.cursor:
                return
            cursor = result.cursor

    @contextlib.contextmanager
    def scoped(self, acquire: Call[T], release: Callable[[T], Call[Any]]) -> Iterator[T]:
        resource = self.run(acquire)
        try:
            yield resource
        except BaseException:
            with contextlib.suppress(ScaiVaultError):
                self.run(release(resource))
            raise
        with contextlib.suppress(NotFoundError):
            self.run(release(resource))


class AsyncRunner:
    """Drives :class:`Core` flows with an ``httpx.AsyncClient``."""

    sleep = staticmethod(asyncio.sleep)  # replaceable in tests

    def __init__(self, core: Core, http: httpx.AsyncClient) -> None:
        self.core = core
        self.http = http

    async def run(self, call: Call[T]) -> T:
        flow = self.core.execute(call)
        try:
            op = next(flow)
            while True:
                if isinstance(op, Sleep):
                    await self.sleep(op.seconds)
                    op = flow.send(None)
                    continue
                try:
                    response = await self.http.send(op.request)
                except httpx.TransportError as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def paginate(self, page: Callable[[str | None], Call[Any]]) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            result = await self.run(page(cursor))
            for item in result:
                yield item
            if not result.has_more or not result.cursor:
                return
            cursor = result.cursor

    @contextlib.asynccontextmanager
    async def scoped(
        self, acquire: Call[T], release: Callable[[T], Call[Any]]
    ) -> AsyncIterator[T]:
        resource = await self.run(acquire)
        try:
            yield resource
        except BaseException:
            with contextlib.suppress(ScaiVaultError):
                await self.run(release(resource))
            raise
        with contextlib.suppress(NotFoundError):
            await self.run(release(resource))
