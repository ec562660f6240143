"""API resources, written once for both clients.

Each method builds a :class:`~scaivault_sdk._core.Call` and hands it to the client's runner.
On :class:`~scaivault_sdk.SyncScaiVaultClient` the runner blocks and returns the result; on
:class:`~scaivault_sdk.ScaiVaultClient` it returns an awaitable (``iter`` an async iterator,
``dynamic.credentials`` an async context manager). Return types below are the awaited ones.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Mapping, TypeVar, Union
from urllib.parse import quote

from ._core import Call
from .models import (
    Policy,
    PolicyBinding,
    PolicyDeletion,
    PolicyPage,
    PolicyTestResult,
    Group,
    GroupPage,
    Identity,
    MemberList,
    Partner,
    PartnerPage,
    RoleAssignment,
    Tenant,
    TenantPage,
    UserPage,
    AuditExport,
    AuditExportPage,
    AuditLogPage,
    AuditSummary,
    AuditVerification,
    BatchMetadataResult,
    CreatedToken,
    IdentityAuditTrail,
    SecretAuditTrail,
    TokenInfo,
    TokenRevocation,
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
    TokenIntrospection,
    WriteResult,
    ClientSecretRotation,
    CreatedServiceAccount,
    Health,
    HealthDetail,
    IdentitySync,
    Jwks,
    KeyRotation,
    RoleDefinition,
    SecretPolicy,
    SecretPolicyAttachment,
    SecretPolicyDeletion,
    SecretPolicyField,
    ServerVersion,
    ServiceAccount,
    ServiceAccountDisable,
    TokenExchange,
)

__all__ = [
    "SecretsResource",
    "AuthResource",
    "TokensResource",
    "AuditResource",
    "DynamicResource",
    "IdentityResource",
    "PoliciesResource",
    "SecretPoliciesResource",
    "ServiceAccountsResource",
    "SystemResource",
]

T = TypeVar("T")
MetadataArg = Union[SecretMetadata, Mapping[str, Any], None]
TimeArg = Union[datetime, date, str, None]


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


def _tristate(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _time(value: TimeArg) -> str | None:
    """datetime (naive = UTC) → RFC 3339; date → ``YYYY-MM-DD``; strings pass through."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"expected datetime, date or str, got {type(value).__name__}")


def _actions(value: str | Iterable[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(a) for a in value)


def _nothing(_body: Any) -> None:
    """Parser of calls whose answer carries nothing the caller needs."""
    return None


def _items(key: str, model: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    """Parser of ``{key: [...]}``: each item through ``model`` (a ``from_dict``)."""
    return lambda body: [model(item) for item in (body or {}).get(key, [])]


def _opt_list(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _tenant_url(tenant_id: str, suffix: str = "") -> str:
    return f"/v1/identity/tenants/{_escape(tenant_id)}{suffix}"


def _user_url(tenant_id: str, user_id: str) -> str:
    return _tenant_url(tenant_id, f"/users/{_escape(user_id, safe=':@')}")


def _members_url(group: str, user_id: str | None = None) -> str:
    url = f"/v1/identity/groups/{_escape(group, safe=':')}/members"
    return url if user_id is None else f"{url}/{_escape(user_id, safe=':@')}"


def _roles_url(user_id: str) -> str:
    return f"/v1/identity/users/{_escape(user_id, safe=':@')}/roles"


def _policy_url(policy_id: str, suffix: str = "") -> str:
    return f"/v1/policies/{_escape(policy_id)}{suffix}"


class _Resource:
    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def _run(self, call: Call[T]) -> T:
        # T itself on the sync client; an awaitable of T on the async client.
        return self._runner.run(call)  # type: ignore[no-any-return]

    # One call each: ``self._get(url, Model.from_dict, params=…)`` instead of
    # ``self._run(Call("GET", url, Model.from_dict, params=…))``.

    def _get(self, path: str, parse: Callable[[Any], T], params: dict[str, Any] | None = None) -> T:
        return self._run(Call("GET", path, parse, params=params))

    def _post(
        self,
        path: str,
        parse: Callable[[Any], T],
        json: Any = None,
        idempotent: bool | None = None,
    ) -> T:
        return self._run(Call("POST", path, parse, json=json, idempotent=idempotent))

    def _put(self, path: str, parse: Callable[[Any], T], json: Any = None) -> T:
        return self._run(Call("PUT", path, parse, json=json))

    def _patch(self, path: str, parse: Callable[[Any], T], json: Any = None) -> T:
        return self._run(Call("PATCH", path, parse, json=json))

    def _delete(
        self,
        path: str,
        parse: Callable[[Any], T] = _nothing,
        params: dict[str, Any] | None = None,
    ) -> T:
        return self._run(Call("DELETE", path, parse, params=params))


class SecretsResource(_Resource):
    """``client.secrets``: the secrets API (``/v1/secrets``)."""

    def read(self, path: str, version: int | None = None) -> Secret:
        """The value of ``path`` (its current version, or ``version``)."""
        return self._get(_secret_url(path), Secret.from_dict, params={"version": version})

    def read_metadata(self, path: str) -> SecretInfo:
        """Metadata only (no value); needs ``secrets:list``, not ``secrets:read``."""
        return self._get(_secret_url(path, "/metadata"), SecretInfo.from_dict)

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
        return self._patch(_secret_url(path, "/metadata"), SecretInfo.from_dict, json=body)

    def delete(
        self, path: str, version: int | None = None, permanent: bool = False
    ) -> DeleteResult:
        """Soft-delete the secret (or one ``version``); ``permanent=True`` removes it now."""
        params = {"version": version, "permanent": _bool(permanent)}
        return self._delete(_secret_url(path), DeleteResult.from_dict, params=params)

    def restore(self, path: str, version: int | None = None) -> SecretInfo:
        """Undo a soft delete of the secret (or of one ``version``)."""
        body = {"version": version} if version is not None else None
        return self._post(_secret_url(path, "/restore"), SecretInfo.from_dict, json=body)

    def versions(self, path: str) -> VersionHistory:
        """Every version's state plus the secret's action history."""
        return self._get(_secret_url(path, "/versions"), VersionHistory.from_dict)

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
        body = {"paths": list(paths), "options": options}
        return self._post("/v1/secrets/batch", BatchResult.from_dict, json=body, idempotent=True)

    def batch_metadata(
        self, paths: Iterable[str], expand_wildcards: bool = False
    ) -> BatchMetadataResult:
        """Metadata for up to 100 paths or (with ``expand_wildcards``) ``*``/``**`` patterns."""
        body = {"paths": list(paths), "expand_wildcards": expand_wildcards}
        return self._post(
            "/v1/secrets/batch/metadata", BatchMetadataResult.from_dict, json=body, idempotent=True
        )


class TokensResource(_Resource):
    """``client.auth.tokens``: personal access tokens (``/v1/auth/tokens``)."""

    def create(
        self,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        expires_in: str | None = None,
        identity_id: str | None = None,
    ) -> CreatedToken:
        """A new ``skt_…`` token; ``.token`` is its value, shown only here.

        ``scopes`` default to the caller's and may not be wider; ``expires_in`` defaults
        to ``90d`` (at most ``366d``). Admins may mint a token for another identity of the
        tenant they act in with ``identity_id=``.
        """
        body = _drop_none(
            identity_id=identity_id, name=name, scopes=_opt_list(scopes), expires_in=expires_in
        )
        return self._post("/v1/auth/tokens", CreatedToken.from_dict, json=body)

    def list(self, identity_id: str | None = None, all: bool = False) -> list[TokenInfo]:
        """The caller's tokens; ``identity_id=`` or ``all=True`` need ``admin``."""
        params = {"identity_id": identity_id, "all": _bool(all)}
        return self._get("/v1/auth/tokens", _items("tokens", TokenInfo.from_dict), params=params)

    def revoke(self, token_id: str) -> TokenRevocation:
        """Revoke a token (own, or any of the tenant's with ``admin``); effective at once."""
        return self._delete(f"/v1/auth/tokens/{_escape(token_id)}", TokenRevocation.from_dict)


class AuthResource(_Resource):
    """``client.auth``."""

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        self.tokens = TokensResource(runner)

    def whoami(self) -> WhoAmI:
        """The identity, tenant and scopes of the token in use."""
        return self._get("/v1/auth/whoami", WhoAmI.from_dict)

    def introspect(self, token: str) -> TokenIntrospection:
        """Validate ``token`` without using it (needs the ``admin`` scope); a bad, expired or
        revoked token gives ``active=False``, not an error."""
        body = {"token": token}
        return self._post(
            "/v1/auth/introspect", TokenIntrospection.from_dict, json=body, idempotent=True
        )

    def jwks(self) -> Jwks:
        """The built-in issuer's public keys (also at ``/.well-known/jwks.json``); needs no
        scope."""
        return self._get("/v1/auth/jwks", Jwks.from_dict)

    def rotate_keys(self) -> KeyRotation:
        """Start signing with a new key (needs ``admin``); the old key stays published so tokens
        it signed keep verifying until they expire."""
        return self._post("/v1/auth/keys/rotate", KeyRotation.from_dict)

    def exchange(
        self, subject_token: str, scope: str | Iterable[str] | None = None
    ) -> TokenExchange:
        """RFC 8693 token exchange: a JWT of a trusted external issuer for a ScaiVault token."""
        body = _drop_none(
            grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token=subject_token,
            subject_token_type="urn:ietf:params:oauth:token-type:jwt",
            scope=scope if scope is None or isinstance(scope, str) else " ".join(scope),
        )
        return self._post("/v1/auth/exchange", TokenExchange.from_dict, json=body)


class AuditResource(_Resource):
    """``client.audit``: the audit trail (``/v1/audit``, scope ``audit:read``).

    Time arguments (``from_``, ``to``) take a ``datetime`` (naive = UTC), a ``date`` or an
    RFC 3339 / ``YYYY-MM-DD`` string; both ends are inclusive. ``action`` is one action or a
    list of them. Pages are newest first; pass ``.cursor`` back while ``.has_more``.
    """

    @staticmethod
    def _filters(
        from_: TimeArg = None,
        to: TimeArg = None,
        action: str | Iterable[str] | None = None,
        identity_id: str | None = None,
        identity_type: str | None = None,
        path_prefix: str | None = None,
        success: bool | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        return {
            "from": _time(from_),
            "to": _time(to),
            "action": _actions(action),
            "identity_id": identity_id,
            "identity_type": identity_type,
            "path_prefix": path_prefix,
            "success": _tristate(success),
            "source_ip": source_ip,
            "request_id": request_id,
            "limit": limit,
            "cursor": cursor,
        }

    def _logs_call(self, **filters: Any) -> Call[AuditLogPage]:
        return Call("GET", "/v1/audit/logs", AuditLogPage.from_dict, params=self._filters(**filters))

    def logs(
        self,
        from_: TimeArg = None,
        to: TimeArg = None,
        action: str | Iterable[str] | None = None,
        identity_id: str | None = None,
        identity_type: str | None = None,
        path_prefix: str | None = None,
        success: bool | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AuditLogPage:
        """One page of entries matching every given filter."""
        return self._run(
            self._logs_call(
                from_=from_, to=to, action=action, identity_id=identity_id,
                identity_type=identity_type, path_prefix=path_prefix, success=success,
                source_ip=source_ip, request_id=request_id, limit=limit, cursor=cursor,
            )
        )

    def iter_logs(
        self,
        from_: TimeArg = None,
        to: TimeArg = None,
        action: str | Iterable[str] | None = None,
        identity_id: str | None = None,
        identity_type: str | None = None,
        path_prefix: str | None = None,
        success: bool | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
    ) -> Any:
        """Every matching :class:`AuditEntry`, following cursors (``limit`` = page size).

        A generator on the sync client, an async generator (``async for``) on the async one.
        """
        return self._runner.paginate(
            lambda cursor: self._logs_call(
                from_=from_, to=to, action=action, identity_id=identity_id,
                identity_type=identity_type, path_prefix=path_prefix, success=success,
                source_ip=source_ip, request_id=request_id, limit=limit, cursor=cursor,
            )
        )

    def secret(
        self,
        path: str,
        from_: TimeArg = None,
        to: TimeArg = None,
        *,
        action: str | Iterable[str] | None = None,
        identity_id: str | None = None,
        success: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SecretAuditTrail:
        """The entries on exactly ``path`` plus a 30-day ``summary``."""
        params = self._filters(from_=from_, to=to, action=action, identity_id=identity_id,
                               success=success, limit=limit, cursor=cursor)
        url = f"/v1/audit/secrets/{_escape(path, safe='/')}"
        return self._get(url, SecretAuditTrail.from_dict, params=params)

    def identity(
        self,
        identity_id: str,
        from_: TimeArg = None,
        to: TimeArg = None,
        *,
        action: str | Iterable[str] | None = None,
        path_prefix: str | None = None,
        success: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> IdentityAuditTrail:
        """The entries of one identity; ``summary.resources_accessed`` lists every path it touched."""
        params = self._filters(from_=from_, to=to, action=action, path_prefix=path_prefix,
                               success=success, limit=limit, cursor=cursor)
        url = f"/v1/audit/identities/{_escape(identity_id)}"
        return self._get(url, IdentityAuditTrail.from_dict, params=params)

    def summary(self, from_: TimeArg = None, to: TimeArg = None) -> AuditSummary:
        """Tenant-wide statistics (``top_identities``, ``top_secrets``, …) for the period."""
        params = {"from": _time(from_), "to": _time(to)}
        return self._get("/v1/audit/summary", AuditSummary.from_dict, params=params)

    def verify(self) -> AuditVerification:
        """Re-compute the tenant's hash chain on the server."""
        return self._get("/v1/audit/verify", AuditVerification.from_dict)

    def export(
        self,
        *,
        destination: Mapping[str, Any] | None = None,
        type: str | None = None,
        bucket: str | None = None,
        credentials_path: str | None = None,
        prefix: str | None = None,
        endpoint: str | None = None,
        region: str | None = None,
        format: str = "jsonl",
        from_: TimeArg = None,
        to: TimeArg = None,
        action: str | Iterable[str] | None = None,
        identity_id: str | None = None,
        identity_type: str | None = None,
        path_prefix: str | None = None,
        success: bool | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
    ) -> AuditExport:
        """Start an export job (scope ``audit:export``); poll :meth:`get_export` until ``.done``.

        The destination is either ``destination={"type": "s3", "bucket": …, "credentials_path": …}``
        or the flat ``type``/``bucket``/``credentials_path``/``prefix``/``endpoint``/``region``
        arguments (those win). ``format`` is ``jsonl`` (verifiable offline) or ``csv``.
        """
        dest = _merge_options(
            destination, type=type, bucket=bucket, credentials_path=credentials_path,
            prefix=prefix, endpoint=endpoint, region=region,
        )
        filters = _drop_none(
            action=_actions(action), identity_id=identity_id, identity_type=identity_type,
            path_prefix=path_prefix, success=success, source_ip=source_ip, request_id=request_id,
        )
        body: dict[str, Any] = {"format": format, "destination": dest or {}}
        if from_ is not None:
            body["from"] = _time(from_)
        if to is not None:
            body["to"] = _time(to)
        if filters:
            body["filters"] = filters
        return self._post("/v1/audit/export", AuditExport.from_dict, json=body)

    def exports(self, limit: int | None = None, cursor: str | None = None) -> AuditExportPage:
        """One page of the tenant's export jobs, newest first (``audit:export`` or ``audit:read``)."""
        params = {"limit": limit, "cursor": cursor}
        return self._get("/v1/audit/exports", AuditExportPage.from_dict, params=params)

    def get_export(self, export_id: str) -> AuditExport:
        """One export job: its status and, once completed, its manifest."""
        return self._get(f"/v1/audit/exports/{_escape(export_id)}", AuditExport.from_dict)


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
        return Call("DELETE", f"/v1/dynamic/leases/{_escape(lease_id)}", _nothing)


class IdentityResource(_Resource):
    """``client.identity``: partners, tenants, users, groups and admin roles (``/v1/identity``).

    Reading needs ``identity:read``; changes need ``identity:admin`` and an admin role over
    the target. Lists page with ``page``/``page_size`` and carry ``.total``.
    """

    def partners(
        self, status: str | None = None, page: int | None = None, page_size: int | None = None
    ) -> PartnerPage:
        params = {"status": status, "page": page, "page_size": page_size}
        return self._get("/v1/identity/partners", PartnerPage.from_dict, params=params)

    def create_partner(
        self,
        name: str,
        id: str | None = None,
        slug: str | None = None,
        region: str | None = None,
    ) -> Partner:
        body = _drop_none(name=name, id=id, slug=slug, region=region)
        return self._post("/v1/identity/partners", Partner.from_dict, json=body)

    def get_partner(self, partner_id: str) -> Partner:
        return self._get(f"/v1/identity/partners/{_escape(partner_id)}", Partner.from_dict)

    def roles(self) -> list[RoleDefinition]:
        """The admin roles this server knows, with what each may administer."""
        return self._get("/v1/identity/roles", _items("roles", RoleDefinition.from_dict))

    def sync(self, partner_id: str | None = None, tenant_id: str | None = None) -> IdentitySync:
        """Kept for clients of the hosted API: completes at once with ``changes == 0``."""
        params = {"partner_id": partner_id, "tenant_id": tenant_id}
        return self._run(Call("POST", "/v1/identity/sync", IdentitySync.from_dict, params=params))

    def tenants(
        self,
        partner_id: str | None = None,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> TenantPage:
        params = {"partner_id": partner_id, "status": status, "page": page, "page_size": page_size}
        return self._get("/v1/identity/tenants", TenantPage.from_dict, params=params)

    def get_tenant(self, tenant_id: str) -> Tenant:
        return self._get(_tenant_url(tenant_id), Tenant.from_dict)

    def create_tenant(
        self,
        name: str,
        id: str | None = None,
        partner_id: str | None = None,
        slug: str | None = None,
        rate_limits: Mapping[str, int] | None = None,
    ) -> Tenant:
        """``rate_limits``: per-minute overrides by category for the tenant's identities."""
        body = _drop_none(
            name=name,
            id=id,
            partner_id=partner_id,
            slug=slug,
            rate_limits=dict(rate_limits) if rate_limits is not None else None,
        )
        return self._post("/v1/identity/tenants", Tenant.from_dict, json=body)

    def update_tenant(
        self,
        tenant_id: str,
        name: str | None = None,
        status: str | None = None,
        rate_limits: Mapping[str, int] | None = None,
        clear_rate_limits: bool = False,
    ) -> Tenant:
        """Rename, suspend or reactivate a tenant, or replace (``rate_limits``) or remove
        (``clear_rate_limits=True``) its rate-limit overrides. Needs partner admin."""
        if clear_rate_limits and rate_limits is not None:
            raise ValueError("pass rate_limits or clear_rate_limits, not both")
        body: dict[str, Any] = _drop_none(
            name=name,
            status=status,
            rate_limits=dict(rate_limits) if rate_limits is not None else None,
        )
        if clear_rate_limits:
            body["rate_limits"] = None
        return self._patch(_tenant_url(tenant_id), Tenant.from_dict, json=body)

    def users(
        self,
        tenant_id: str,
        q: str | None = None,
        status: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> UserPage:
        params = {"q": q, "status": status, "page": page, "page_size": page_size}
        return self._get(_tenant_url(tenant_id, "/users"), UserPage.from_dict, params=params)

    def create_user(
        self,
        tenant_id: str,
        email: str,
        display_name: str | None = None,
        scopes: Iterable[str] | None = None,
        roles: Iterable[str] | None = None,
        groups: Iterable[str] | None = None,
    ) -> Identity:
        body = _drop_none(
            email=email,
            display_name=display_name,
            scopes=_opt_list(scopes),
            roles=_opt_list(roles),
            groups=_opt_list(groups),
        )
        return self._post(_tenant_url(tenant_id, "/users"), Identity.from_dict, json=body)

    def get_user(self, tenant_id: str, user_id: str) -> Identity:
        return self._get(_user_url(tenant_id, user_id), Identity.from_dict)

    def update_user(
        self,
        tenant_id: str,
        user_id: str,
        display_name: str | None = None,
        scopes: Iterable[str] | None = None,
        status: str | None = None,
    ) -> Identity:
        body = _drop_none(
            display_name=display_name,
            scopes=_opt_list(scopes),
            status=status,
        )
        return self._patch(_user_url(tenant_id, user_id), Identity.from_dict, json=body)

    def disable_user(self, tenant_id: str, user_id: str) -> None:
        return self._delete(_user_url(tenant_id, user_id))

    def groups(
        self, tenant_id: str, page: int | None = None, page_size: int | None = None
    ) -> GroupPage:
        params = {"page": page, "page_size": page_size}
        return self._get(_tenant_url(tenant_id, "/groups"), GroupPage.from_dict, params=params)

    def create_group(self, tenant_id: str, name: str, display_name: str | None = None) -> Group:
        body = _drop_none(name=name, display_name=display_name)
        return self._post(_tenant_url(tenant_id, "/groups"), Group.from_dict, json=body)

    def delete_group(self, tenant_id: str, group: str) -> None:
        return self._delete(_tenant_url(tenant_id, f"/groups/{_escape(group, safe=':')}"))

    def members(self, group: str) -> MemberList:
        """Members of a group of the tenant the client acts in."""
        return self._get(_members_url(group), MemberList.from_dict)

    def add_member(self, group: str, user_id: str) -> None:
        return self._post(_members_url(group), _nothing, json={"user_id": user_id})

    def remove_member(self, group: str, user_id: str) -> None:
        return self._delete(_members_url(group, user_id))

    def resolve(self, identity_type: str, identity_id: str) -> Identity:
        url = f"/v1/identity/resolve/{_escape(identity_type)}/{_escape(identity_id, safe=':@')}"
        return self._get(url, Identity.from_dict)

    def user_roles(self, user_id: str) -> RoleAssignment:
        return self._get(_roles_url(user_id), RoleAssignment.from_dict)

    def set_user_roles(self, user_id: str, roles: Iterable[str]) -> RoleAssignment:
        return self._put(_roles_url(user_id), RoleAssignment.from_dict, json={"roles": list(roles)})


def _policy_body(
    name: str | None,
    rules: Iterable[Mapping[str, Any]] | None,
    description: str | None,
    scope: str | None,
    is_active: bool | None,
) -> dict[str, Any]:
    return _drop_none(
        name=name,
        rules=None if rules is None else [dict(r) for r in rules],
        description=description,
        scope=scope,
        is_active=is_active,
    )


class PoliciesResource(_Resource):
    """``client.policies``: access policies and their bindings (``/v1/policies``).

    Reading needs ``policies:read``; changes need ``policies:write`` and an admin role.
    """

    def create(
        self,
        name: str,
        rules: Iterable[Mapping[str, Any]],
        description: str | None = None,
        scope: str | None = None,
        is_active: bool | None = None,
    ) -> Policy:
        """A new policy; ``rules`` are dicts with ``path_pattern``, ``permissions``, ``conditions``."""
        body = _policy_body(name, rules, description, scope, is_active)
        return self._post("/v1/policies", Policy.from_dict, json=body)

    def get(self, policy_id: str) -> Policy:
        """One policy with its rules and bindings."""
        return self._get(_policy_url(policy_id), Policy.from_dict)

    def list(
        self,
        scope: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PolicyPage:
        """One page of policies (ordered by id); pass ``cursor=page.cursor`` for the next."""
        params = {
            "scope": scope,
            "include_inactive": _bool(include_inactive),
            "limit": limit,
            "cursor": cursor,
        }
        return self._get("/v1/policies", PolicyPage.from_dict, params=params)

    def list_for_path(self, path: str, permission: str | None = None) -> list[Policy]:
        """The policies with a rule matching ``path`` (and granting ``permission``, if given)."""
        params = {"path": path, "permission": permission}
        return self._get("/v1/policies", _items("policies", Policy.from_dict), params=params)

    def update(
        self,
        policy_id: str,
        name: str | None = None,
        rules: Iterable[Mapping[str, Any]] | None = None,
        description: str | None = None,
        is_active: bool | None = None,
        replace: bool = False,
    ) -> Policy:
        """Changes the given fields (``PATCH``), or with ``replace=True`` replaces the policy
        (``PUT``: name and rules required). Bindings are kept either way."""
        body = _policy_body(name, rules, description, None, is_active)
        method = "PUT" if replace else "PATCH"
        return self._run(Call(method, _policy_url(policy_id), Policy.from_dict, json=body))

    def delete(self, policy_id: str, force: bool = False) -> PolicyDeletion:
        """Deletes a policy; a bound one only with ``force=True`` (else ``policy_in_use``)."""
        params = {"force": _bool(force)}
        return self._delete(_policy_url(policy_id), PolicyDeletion.from_dict, params=params)

    def bind(
        self,
        policy_id: str,
        identity_id: str,
        identity_type: str | None = None,
        expires_at: TimeArg = None,
    ) -> PolicyBinding:
        """Binds the policy to ``user:…``, ``sa:…`` or ``group:…`` (type inferred from the prefix)."""
        if identity_type is None:
            prefix = identity_id.split(":", 1)[0]
            identity_type = {"sa": "service_account", "group": "group"}.get(prefix, "user")
        body: dict[str, Any] = {"identity_type": identity_type, "identity_id": identity_id}
        if expires_at is not None:
            body["expires_at"] = _time(expires_at)
        return self._post(_policy_url(policy_id, "/bindings"), PolicyBinding.from_dict, json=body)

    def unbind(self, policy_id: str, binding_id: str) -> None:
        """Removes a binding."""
        return self._delete(_policy_url(policy_id, f"/bindings/{_escape(binding_id)}"))

    def bindings(self, policy_id: str) -> list[PolicyBinding]:
        """The policy's bindings."""
        return self._get(
            _policy_url(policy_id, "/bindings"), _items("bindings", PolicyBinding.from_dict)
        )

    def test(
        self,
        identity_id: str,
        path: str,
        permission: str = "read",
        source_ip: str | None = None,
        mfa_verified: bool | None = None,
        timestamp: TimeArg = None,
    ) -> PolicyTestResult:
        """Dry run: would ``identity_id`` be allowed ``permission`` on ``path``? Not audited."""
        context = _drop_none(
            source_ip=source_ip, mfa_verified=mfa_verified, timestamp=_time(timestamp)
        )
        body: dict[str, Any] = {"identity_id": identity_id, "path": path, "permission": permission}
        if context:
            body["context"] = context
        return self._post(
            "/v1/policies/test", PolicyTestResult.from_dict, json=body, idempotent=True
        )


FieldArg = Union[SecretPolicyField, Mapping[str, Any]]


def _secret_policy_body(
    name: str,
    fields: Iterable[FieldArg],
    policy_type: str | None,
    description: str | None,
    is_active: bool | None,
) -> dict[str, Any]:
    return _drop_none(
        name=name,
        policy_type=policy_type,
        description=description,
        fields=[f.to_dict() if isinstance(f, SecretPolicyField) else dict(f) for f in fields],
        is_active=is_active,
    )


class SecretPoliciesResource(_Resource):
    """``client.secret_policies``: value recipes (``/v1/secret-policies``).

    Reading needs ``policies:read``; creating, replacing and deleting need ``policies:write``
    and an admin role. Attaching to a secret needs write permission on its path; later writes
    of that secret are then checked against the policy's rules (``422`` naming ``data.<field>``).
    """

    def list(self) -> list[SecretPolicy]:
        return self._get("/v1/secret-policies", _items("secret_policies", SecretPolicy.from_dict))

    def get(self, policy_id: str) -> SecretPolicy:
        return self._get(_secret_policy_url(policy_id), SecretPolicy.from_dict)

    def create(
        self,
        name: str,
        fields: Iterable[FieldArg],
        policy_type: str | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> SecretPolicy:
        """A new policy; ``policy_type`` is ``password``, ``api_key``, ``oauth_client``,
        ``ssh_key`` or ``custom`` (the default)."""
        body = _secret_policy_body(name, fields, policy_type, description, is_active)
        return self._post("/v1/secret-policies", SecretPolicy.from_dict, json=body)

    def update(
        self,
        policy_id: str,
        name: str,
        fields: Iterable[FieldArg],
        policy_type: str | None = None,
        description: str | None = None,
        is_active: bool | None = None,
    ) -> SecretPolicy:
        """Replaces the policy (``PUT``: what is left out takes its default); attachments stay."""
        body = _secret_policy_body(name, fields, policy_type, description, is_active)
        return self._put(_secret_policy_url(policy_id), SecretPolicy.from_dict, json=body)

    def delete(self, policy_id: str) -> SecretPolicyDeletion:
        """Deletes the policy and detaches it from every secret."""
        return self._delete(_secret_policy_url(policy_id), SecretPolicyDeletion.from_dict)

    def attach(self, policy_id: str, path: str) -> SecretPolicyAttachment:
        """Later writes of the secret at ``path`` must satisfy the policy."""
        url = _secret_policy_url(policy_id, "/attach")
        return self._post(url, SecretPolicyAttachment.from_dict, json={"path": path})

    def detach(self, path: str) -> SecretPolicyAttachment:
        """Lifts the secret policy of the secret at ``path``."""
        return self._post(
            "/v1/secret-policies/detach", SecretPolicyAttachment.from_dict, json={"path": path}
        )


def _secret_policy_url(policy_id: str, suffix: str = "") -> str:
    return f"/v1/secret-policies/{_escape(policy_id)}{suffix}"


def _service_account_url(account: str, suffix: str = "") -> str:
    # ``sa:<name>`` or the bare name; names use [a-z0-9-_.], "." escaped like everywhere else.
    return f"/v1/identity/service-accounts/{_escape(account, safe=':')}{suffix}"


class ServiceAccountsResource(_Resource):
    """``client.service_accounts``: service accounts with client credentials
    (``/v1/identity/service-accounts``).

    Reading needs ``identity:read`` (or ``identity:admin``); changes need ``identity:admin``.
    Accounts are named ``sa:<name>``; every method takes the id or the bare name. Use the
    client id and secret as ``ScaiVaultClient(client_id=…, client_secret=…)``.
    """

    def create(
        self,
        name: str,
        scopes: Iterable[str] | None = None,
        groups: Iterable[str] | None = None,
        description: str | None = None,
    ) -> CreatedServiceAccount:
        """A new account; ``.client_secret`` is shown only here. ``scopes`` may not be wider
        than the caller's; ``groups`` are ``group:<name>``."""
        body = _drop_none(
            name=name, description=description, scopes=_opt_list(scopes), groups=_opt_list(groups)
        )
        return self._post(
            "/v1/identity/service-accounts", CreatedServiceAccount.from_dict, json=body
        )

    def list(self) -> list[ServiceAccount]:
        return self._get(
            "/v1/identity/service-accounts",
            _items("service_accounts", ServiceAccount.from_dict),
        )

    def get(self, account: str) -> ServiceAccount:
        return self._get(_service_account_url(account), ServiceAccount.from_dict)

    def delete(self, account: str) -> ServiceAccountDisable:
        """Disables the account: its secrets and every token it holds stop working at once."""
        return self._delete(_service_account_url(account), ServiceAccountDisable.from_dict)

    def rotate_secret(self, account: str, grace: str | None = None) -> ClientSecretRotation:
        """A new client secret (shown only here); the previous ones stay valid for ``grace``
        (a duration such as ``"1h"``, at most ``30d``; default: they stop at once)."""
        return self._post(
            _service_account_url(account, "/secrets"),
            ClientSecretRotation.from_dict,
            json=_drop_none(grace=grace),
        )


class SystemResource(_Resource):
    """``client.system``: health and version (``/v1/health…``, ``/v1/version``)."""

    def health(self) -> Health:
        """Liveness; needs no token."""
        return self._get("/v1/health", Health.from_dict)

    def ready(self) -> Health:
        """Readiness (database, encryption); a server that is not ready answers 503, raised as
        :class:`~scaivault_sdk.errors.ServiceUnavailableError`. Needs no token."""
        return self._get("/v1/health/ready", Health.from_dict)

    def detailed(self) -> HealthDetail:
        """Per-component health with numbers (storage backend, pool, audit queue)."""
        return self._get("/v1/health/detailed", HealthDetail.from_dict)

    def version(self) -> ServerVersion:
        return self._get("/v1/version", ServerVersion.from_dict)
