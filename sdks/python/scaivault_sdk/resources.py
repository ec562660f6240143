"""API resources, written once for both clients.

Each method builds a :class:`~scaivault_sdk._core.Call` and hands it to the client's runner.
On :class:`~scaivault_sdk.SyncScaiVaultClient` the runner blocks and returns the result; on
:class:`~scaivault_sdk.ScaiVaultClient` it returns an awaitable (``iter`` an async iterator,
``dynamic.credentials`` an async context manager). Return types below are the awaited ones.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, TypeVar, Union
from urllib.parse import quote

from ._core import Call
from .models import (
    BatchMetadataResult,
    BatchResult,
    DeleteResult,
    Lease,
    Secret,
    SecretInfo,
    SecretList,
    SecretMetadata,
    SecretType,
    VersionHistory,
    WhoAmI,
    WriteResult,
)

__all__ = ["SecretsResource", "AuthResource", "DynamicResource"]

T = TypeVar("T")
MetadataArg = Union[SecretMetadata, Mapping[str, Any], None]


def _escape(segment: str, safe: str = "") -> str:
    # Valid names only use [a-z0-9-_/]; anything else is escaped so the server sees it
    # verbatim and answers invalid_path, instead of the URL being reinterpreted ("?", "#",
    # and "." which URL normalisation would fold away in "a/../b").
    return quote(segment, safe=safe).replace(".", "%2E")


def _secret_url(path: str, suffix: str = "") -> str:
    return f"/v1/secrets/{_escape(path, safe='/')}{suffix}"


def _metadata_body(metadata: MetadataArg) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if isinstance(metadata, SecretMetadata):
        return metadata.to_dict()
    return dict(metadata)


def _merge_options(options: Mapping[str, Any] | None, **flat: Any) -> dict[str, Any] | None:
    """``options`` plus the flat keyword arguments that were given (those win)."""
    merged = dict(options or {})
    merged.update({k: v for k, v in flat.items() if v is not None})
    return merged or None


def _bool(value: bool) -> str | None:
    return "true" if value else None


class _Resource:
    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def _run(self, call: Call[T]) -> T:
        # T itself on the sync client; an awaitable of T on the async client.
        return self._runner.run(call)  # type: ignore[no-any-return]


class SecretsResource(_Resource):
    """``client.secrets``: the secrets API (``/v1/secrets``)."""

    def read(self, path: str, version: int | None = None) -> Secret:
        """The value of ``path`` (its current version, or ``version``)."""
        return self._run(
            Call("GET", _secret_url(path), Secret.from_dict, params={"version": version})
        )

    def read_metadata(self, path: str) -> SecretInfo:
        """Metadata only (no value); needs ``secrets:list``, not ``secrets:read``."""
        return self._run(Call("GET", _secret_url(path, "/metadata"), SecretInfo.from_dict))

    def write(
        self,
        path: str,
        data: Mapping[str, Any],
        secret_type: SecretType | str | None = None,
        metadata: MetadataArg = None,
        options: Mapping[str, Any] | None = None,
        *,
        max_versions: int | None = None,
        expires_in: str | None = None,
        rotation_policy_id: str | None = None,
        cas: int | None = None,
    ) -> WriteResult:
        """Write a new version. Flat keyword options are merged into ``options``."""
        body: dict[str, Any] = {"data": dict(data)}
        if secret_type is not None:
            body["secret_type"] = str(secret_type)  # SecretType's str() is its value
        if metadata is not None:
            body["metadata"] = _metadata_body(metadata)
        merged = _merge_options(
            options,
            max_versions=max_versions,
            expires_in=expires_in,
            rotation_policy_id=rotation_policy_id,
            cas=cas,
        )
        if merged:
            body["options"] = merged
        # Replaying a write after an ambiguous failure would add a version; with cas it is safe.
        replayable = merged is not None and merged.get("cas") is not None
        return self._run(
            Call("PUT", _secret_url(path), WriteResult.from_dict, json=body, idempotent=replayable)
        )

    def update_metadata(
        self,
        path: str,
        metadata: MetadataArg,
        options: Mapping[str, Any] | None = None,
    ) -> SecretInfo:
        """Replace the given metadata keys; creates no new version."""
        body: dict[str, Any] = {"metadata": _metadata_body(metadata) or {}}
        if options:
            body["options"] = dict(options)
        return self._run(
            Call("PATCH", _secret_url(path, "/metadata"), SecretInfo.from_dict, json=body)
        )

    def delete(
        self, path: str, version: int | None = None, permanent: bool = False
    ) -> DeleteResult:
        """Soft-delete the secret (or one ``version``); ``permanent=True`` removes it now."""
        return self._run(
            Call(
                "DELETE",
                _secret_url(path),
                DeleteResult.from_dict,
                params={"version": version, "permanent": _bool(permanent)},
            )
        )

    def restore(self, path: str, version: int | None = None) -> SecretInfo:
        """Undo a soft delete of the secret (or of one ``version``)."""
        body = {"version": version} if version is not None else None
        return self._run(
            Call("POST", _secret_url(path, "/restore"), SecretInfo.from_dict, json=body)
        )

    def versions(self, path: str) -> VersionHistory:
        """Every version's state plus the secret's action history."""
        return self._run(Call("GET", _secret_url(path, "/versions"), VersionHistory.from_dict))

    def _list_call(
        self,
        prefix: str | None,
        limit: int | None,
        cursor: str | None,
        include_metadata: bool,
        expiring_within: str | None,
    ) -> Call[SecretList]:
        return Call(
            "GET",
            "/v1/secrets",
            SecretList.from_dict,
            params={
                "prefix": prefix,
                "limit": limit,
                "cursor": cursor,
                "include_metadata": _bool(include_metadata),
                "expiring_within": expiring_within,
            },
        )

    def list(
        self,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_metadata: bool = False,
        expiring_within: str | None = None,
    ) -> SecretList:
        """One page of secrets; pass ``.cursor`` back while ``.has_more``."""
        return self._run(self._list_call(prefix, limit, cursor, include_metadata, expiring_within))

    def iter(
        self,
        prefix: str | None = None,
        limit: int | None = None,
        include_metadata: bool = False,
        expiring_within: str | None = None,
    ) -> Any:
        """Every matching :class:`SecretListItem`, following cursors (``limit`` = page size).

        A generator on the sync client, an async generator (``async for``) on the async one.
        """
        return self._runner.paginate(
            lambda cursor: self._list_call(
                prefix, limit, cursor, include_metadata, expiring_within
            )
        )

    def batch_read(
        self,
        paths: Iterable[str],
        include_metadata: bool = False,
        fail_fast: bool = False,
        version: int | None = None,
    ) -> BatchResult:
        """Read up to 100 secrets; per-path failures land in ``.errors`` unless ``fail_fast``."""
        options: dict[str, Any] = {"include_metadata": include_metadata, "fail_fast": fail_fast}
        if version is not None:
            options["version"] = version
        return self._run(
            Call(
                "POST",
                "/v1/secrets/batch",
                BatchResult.from_dict,
                json={"paths": list(paths), "options": options},
                idempotent=True,
            )
        )

    def batch_metadata(
        self, paths: Iterable[str], expand_wildcards: bool = False
    ) -> BatchMetadataResult:
        """Metadata for up to 100 paths or (with ``expand_wildcards``) ``*``/``**`` patterns."""
        return self._run(
            Call(
                "POST",
                "/v1/secrets/batch/metadata",
                BatchMetadataResult.from_dict,
                json={"paths": list(paths), "expand_wildcards": expand_wildcards},
                idempotent=True,
            )
        )


class AuthResource(_Resource):
    """``client.auth``."""

    def whoami(self) -> WhoAmI:
        """The identity, tenant and scopes of the token in use."""
        return self._run(Call("GET", "/v1/auth/whoami", WhoAmI.from_dict))


class DynamicResource(_Resource):
    """``client.dynamic``: short-lived generated credentials."""

    def credentials(self, engine: str, role: str, ttl: str | None = None) -> Any:
        """Generate credentials; a context manager that revokes the lease on exit.

        ``with client.dynamic.credentials("pg", "readonly", ttl="30m") as creds:`` —
        ``creds`` is a :class:`Lease` (``creds["connection_url"]`` reads its data).
        Use ``async with`` on the async client.
        """
        acquire = Call(
            "POST",
            f"/v1/dynamic/engines/{_escape(engine)}/creds/{_escape(role)}",
            Lease.from_dict,
            json={"ttl": ttl} if ttl is not None else {},
        )
        return self._runner.scoped(acquire, self._revoke_call)

    def revoke(self, lease_id: str) -> None:
        """Revoke a lease before its TTL runs out."""
        return self._run(self._revoke_call(lease_id))

    @staticmethod
    def _revoke_call(lease: Lease | str) -> Call[None]:
        lease_id = lease.lease_id if isinstance(lease, Lease) else lease
        return Call("DELETE", f"/v1/dynamic/leases/{_escape(lease_id)}", lambda _: None)
