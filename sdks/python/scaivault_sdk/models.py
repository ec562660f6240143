"""Typed result objects.

Every model is a dataclass built by ``Model.from_dict(json)``: known fields are converted
(timestamps to aware ``datetime``, nested objects to their model), missing fields take their
default, and fields this SDK does not know yet are ignored for attributes but kept, like the
whole payload, in ``.raw``. A newer server therefore never breaks an older SDK.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator, Mapping, TypeVar

__all__ = [
    "SecretType",
    "SecretMetadata",
    "Secret",
    "SecretInfo",
    "RotationStatus",
    "WriteResult",
    "DeleteResult",
    "SecretListItem",
    "SecretList",
    "BatchError",
    "BatchResult",
    "BatchMetadataItem",
    "BatchMetadataResult",
    "VersionInfo",
    "HistoryEntry",
    "VersionHistory",
    "WhoAmI",
    "TokenIntrospection",
    "Lease",
    "TokenInfo",
    "CreatedToken",
    "TokenRevocation",
    "AuditEntry",
    "AuditLogPage",
    "AuditCount",
    "AuditSummary",
    "SecretAuditTrail",
    "IdentityAuditTrail",
    "AuditChainBreak",
    "AuditVerification",
    "Partner",
    "Tenant",
    "Identity",
    "Group",
    "GroupMember",
    "PartnerPage",
    "TenantPage",
    "UserPage",
    "GroupPage",
    "MemberList",
    "RoleAssignment",
]

M = TypeVar("M", bound="Model")


class SecretType(str, Enum):
    """The type of a secret's value. Compares equal to its string (``SecretType.JSON == "json"``)."""

    KV = "kv"
    JSON = "json"
    CERTIFICATE = "certificate"
    SSH_KEY = "ssh_key"
    API_KEY = "api_key"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: Any) -> "SecretType | str":
        """The enum member, or the plain string for a type this SDK does not know yet."""
        try:
            return cls(value)
        except ValueError:
            return str(value)


_FRACTION = re.compile(r"\.(\d+)")


def parse_datetime(value: Any) -> Any:
    """RFC 3339 → aware ``datetime``; anything unparseable is returned unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 only accepts exactly 3 or 6 fractional digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return value


def _meta(parse: Callable[[Any], Any]) -> dict[str, Any]:
    return {"parse": parse}


def _ts() -> Any:
    """A timestamp field: optional, parsed to ``datetime``."""
    return field(default=None, metadata=_meta(parse_datetime))


def _list_of(model: type["Model"]) -> Callable[[Any], list[Any]]:
    return lambda items: [model.from_dict(i) for i in (items or [])]


def _dict_of(model: type["Model"]) -> Callable[[Any], dict[str, Any]]:
    return lambda items: {k: model.from_dict(v, key=k) for k, v in (items or {}).items()}


@dataclass
class Model:
    """Base of every result object; ``raw`` is the JSON it was built from."""

    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    # For models that live under a key of a JSON object (batch results): the attribute that
    # receives that key when the payload itself lacks it.
    _key_field: ClassVar[str | None] = None

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any] | None, *, key: str | None = None) -> M:
        data = dict(data or {})
        if key is not None and cls._key_field and cls._key_field not in data:
            data[cls._key_field] = key
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw" or f.name not in data:
                continue
            value = data[f.name]
            parse = f.metadata.get("parse")
            kwargs[f.name] = parse(value) if parse is not None and value is not None else value
        return cls(raw=data, **kwargs)


@dataclass
class SecretMetadata(Model):
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    owner: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The request form: only the keys that are set."""
        out: dict[str, Any] = {}
        if self.description is not None:
            out["description"] = self.description
        if self.tags:
            out["tags"] = list(self.tags)
        if self.owner is not None:
            out["owner"] = self.owner
        if self.custom:
            out["custom"] = dict(self.custom)
        return out


def _metadata() -> Any:
    return field(default_factory=SecretMetadata, metadata=_meta(SecretMetadata.from_dict))


def _secret_type() -> Any:
    return field(default=SecretType.KV, metadata=_meta(SecretType.parse))


@dataclass
class Secret(Model):
    """A secret's value at one version (``secrets.read``, items of ``batch_read``)."""

    _key_field: ClassVar[str | None] = "path"

    path: str = ""
    version: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    secret_type: SecretType | str = _secret_type()
    metadata: SecretMetadata = _metadata()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    rotation_policy_id: str | None = None
    secret_policy_id: str | None = None
    last_accessed_at: datetime | None = _ts()

    def __repr__(self) -> str:  # never print the value
        return (
            f"Secret(path={self.path!r}, version={self.version!r}, "
            f"secret_type={str(self.secret_type)!r}, data=<{len(self.data)} keys hidden>)"
        )


@dataclass
class WriteResult(Model):
    """The secret as written, without its value (``secrets.write``)."""

    path: str = ""
    version: int = 0
    secret_type: SecretType | str = _secret_type()
    metadata: SecretMetadata = _metadata()
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    rotation_policy_id: str | None = None
    secret_policy_id: str | None = None

    @property
    def created(self) -> bool:
        """True when this write created the secret (the server answered 201)."""
        return self.version == 1


@dataclass
class RotationStatus(Model):
    policy_id: str | None = None
    last_rotated_at: datetime | None = _ts()
    next_rotation_at: datetime | None = _ts()


@dataclass
class SecretInfo(Model):
    """Metadata view of a secret, no value (``read_metadata``, ``update_metadata``, ``restore``)."""

    path: str = ""
    secret_type: SecretType | str = _secret_type()
    version: int = 0
    version_count: int = 0
    max_versions: int | None = None
    metadata: SecretMetadata = _metadata()
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    rotation_policy_id: str | None = None
    secret_policy_id: str | None = None
    rotation: RotationStatus = field(
        default_factory=RotationStatus, metadata=_meta(RotationStatus.from_dict)
    )
    last_accessed_at: datetime | None = _ts()
    access_count_30d: int = 0
    created_by: str | None = None
    updated_by: str | None = None


@dataclass
class DeleteResult(Model):
    path: str = ""
    deleted: bool = True
    permanent: bool = False
    version: int | None = None  # set when one version was deleted
    version_count: int | None = None
    recoverable_until: datetime | None = _ts()


@dataclass
class SecretListItem(Model):
    path: str = ""
    secret_type: SecretType | str = _secret_type()
    version: int = 0
    tags: list[str] = field(default_factory=list)
    updated_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    # Only with include_metadata=True:
    metadata: SecretMetadata | None = field(
        default=None, metadata=_meta(SecretMetadata.from_dict)
    )
    created_at: datetime | None = _ts()
    version_count: int | None = None
    rotation_policy_id: str | None = None
    last_accessed_at: datetime | None = _ts()
    access_count_30d: int | None = None


@dataclass
class SecretList(Model):
    """One page of ``secrets.list``. ``.data`` and ``.secrets`` are the same list."""

    secrets: list[SecretListItem] = field(
        default_factory=list, metadata=_meta(_list_of(SecretListItem))
    )
    cursor: str | None = None
    has_more: bool = False

    @property
    def data(self) -> list[SecretListItem]:
        return self.secrets

    def __iter__(self) -> Iterator[SecretListItem]:
        return iter(self.secrets)

    def __len__(self) -> int:
        return len(self.secrets)


@dataclass
class BatchError(Model):
    code: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult(Model):
    """``batch_read``: ``secrets`` path → :class:`Secret`, ``errors`` path → :class:`BatchError`."""

    secrets: dict[str, Secret] = field(default_factory=dict, metadata=_meta(_dict_of(Secret)))
    errors: dict[str, BatchError] = field(
        default_factory=dict, metadata=_meta(_dict_of(BatchError))
    )
    retrieved: int = 0
    failed: int = 0


@dataclass
class BatchMetadataItem(Model):
    _key_field: ClassVar[str | None] = "path"

    path: str = ""
    version: int = 0
    updated_at: datetime | None = _ts()
    tags: list[str] = field(default_factory=list)
    secret_type: SecretType | str = _secret_type()
    created_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    description: str | None = None
    owner: str | None = None


@dataclass
class BatchMetadataResult(Model):
    metadata: dict[str, BatchMetadataItem] = field(
        default_factory=dict, metadata=_meta(_dict_of(BatchMetadataItem))
    )
    errors: dict[str, BatchError] = field(
        default_factory=dict, metadata=_meta(_dict_of(BatchError))
    )
    retrieved: int = 0
    failed: int = 0


@dataclass
class VersionInfo(Model):
    version: int = 0
    state: str = "active"
    created_at: datetime | None = _ts()
    created_by: str | None = None
    deleted_at: datetime | None = _ts()
    deleted_by: str | None = None
    restored_at: datetime | None = _ts()
    restored_by: str | None = None


@dataclass
class HistoryEntry(Model):
    action: str = ""
    version: int | None = None
    identity_id: str | None = None
    at: datetime | None = _ts()


@dataclass
class VersionHistory(Model):
    path: str = ""
    current_version: int = 0
    max_versions: int | None = None
    deleted: bool = False
    versions: list[VersionInfo] = field(default_factory=list, metadata=_meta(_list_of(VersionInfo)))
    history: list[HistoryEntry] = field(
        default_factory=list, metadata=_meta(_list_of(HistoryEntry))
    )


@dataclass
class WhoAmI(Model):
    identity_id: str = ""
    identity_type: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    partner_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    mfa_verified_at: datetime | None = _ts()
    token_expires_at: datetime | None = _ts()


@dataclass
class TokenIntrospection(Model):
    """``POST /v1/auth/introspect``: ``active`` is False (and nothing else set) for any bad token."""

    active: bool = False
    identity_id: str | None = None
    identity_type: str | None = None
    tenant_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    expires_at: datetime | None = _ts()
    issued_at: datetime | None = _ts()


@dataclass
class Lease(Model):
    """Dynamic credentials: ``data`` holds the generated credential."""

    lease_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    lease_duration: Any = None
    renewable: bool | None = None
    expires_at: datetime | None = _ts()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __repr__(self) -> str:
        return f"Lease(lease_id={self.lease_id!r}, data=<{len(self.data)} keys hidden>)"


# -- personal access tokens ------------------------------------------------------------------


@dataclass
class TokenInfo(Model):
    """A personal access token without its value (``auth.tokens.list``).

    ``status`` is ``active``, ``expired`` or ``revoked``.
    """

    id: str = ""
    name: str | None = None
    identity_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    created_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()
    status: str = "active"


@dataclass
class CreatedToken(TokenInfo):
    """``auth.tokens.create``: the only time the token value (``.token``) is returned."""

    token: str = field(default="", repr=False)

    def __repr__(self) -> str:  # never print the value
        return (
            f"CreatedToken(id={self.id!r}, name={self.name!r}, scopes={self.scopes!r}, "
            f"expires_at={self.expires_at!r}, status={self.status!r}, token=<hidden>)"
        )


@dataclass
class TokenRevocation(Model):
    id: str = ""
    revoked: bool = True
    revoked_at: datetime | None = _ts()


# -- audit -------------------------------------------------------------------------------------


@dataclass
class AuditEntry(Model):
    """One audit log entry; ``seq``/``hash`` place it in the tenant's hash chain."""

    id: str = ""
    tenant_id: str | None = None
    timestamp: datetime | None = _ts()
    action: str = ""
    identity_type: str | None = None
    identity_id: str | None = None
    secret_path: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    success: bool = True
    status: int | None = None
    error_code: str | None = None
    duration_ms: int | None = None
    request_id: str | None = None
    extra_data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    hash: str | None = None


@dataclass
class AuditLogPage(Model):
    """One page of ``audit.logs`` (newest first); iterate it for its entries."""

    logs: list[AuditEntry] = field(default_factory=list, metadata=_meta(_list_of(AuditEntry)))
    cursor: str | None = None
    has_more: bool = False

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(self.logs)

    def __len__(self) -> int:
        return len(self.logs)


@dataclass
class AuditCount(Model):
    """``{"identity_id"|"path": …, "events": n}`` items of summaries."""

    identity_id: str | None = None
    path: str | None = None
    events: int = 0


def _counts() -> Any:
    return field(default_factory=list, metadata=_meta(_list_of(AuditCount)))


@dataclass
class AuditSummary(Model):
    """Statistics of a trail or of ``audit.summary``. Fields a given endpoint does not send
    stay at their default; ``summary["key"]`` reads the raw JSON."""

    total_events: int = 0
    successful_events: int = 0
    failed_events: int = 0
    unique_identities: int = 0
    unique_secrets: int = 0
    events_by_action: dict[str, int] = field(default_factory=dict)
    first_event_at: datetime | None = _ts()
    last_event_at: datetime | None = _ts()
    # per-secret trail
    period_days: int | None = None
    reads: int | None = None
    writes: int | None = None
    identities: list[AuditCount] = _counts()
    last_accessed_at: datetime | None = _ts()
    # per-identity trail
    resources_accessed: list[str] = field(default_factory=list)
    resources: list[AuditCount] = _counts()
    source_ips: list[str] = field(default_factory=list)
    # audit.summary
    top_identities: list[AuditCount] = _counts()
    top_secrets: list[AuditCount] = _counts()
    period: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def _summary() -> Any:
    return field(default_factory=AuditSummary, metadata=_meta(AuditSummary.from_dict))


@dataclass
class SecretAuditTrail(AuditLogPage):
    """``audit.secret``: the entries of one path plus a 30-day ``summary``."""

    path: str = ""
    summary: AuditSummary = _summary()


@dataclass
class IdentityAuditTrail(AuditLogPage):
    """``audit.identity``: the entries of one identity plus ``summary.resources_accessed``."""

    identity_id: str = ""
    summary: AuditSummary = _summary()


@dataclass
class AuditChainBreak(Model):
    seq: int = 0
    id: str = ""
    reason: str = ""


@dataclass
class AuditVerification(Model):
    """``audit.verify``: ``valid`` is False when ``first_bad`` names an entry off the chain."""

    valid: bool = False
    entries_checked: int = 0
    head_seq: int | None = None
    first_bad: AuditChainBreak | None = field(
        default=None, metadata=_meta(AuditChainBreak.from_dict)
    )


# -- identity and tenancy ------------------------------------------------------------------------


@dataclass
class Partner(Model):
    id: str = ""
    name: str = ""
    slug: str | None = None
    region: str | None = None
    status: str = "ACTIVE"
    created_at: datetime | None = _ts()


@dataclass
class Tenant(Model):
    id: str = ""
    partner_id: str = ""
    name: str = ""
    slug: str | None = None
    status: str = "ACTIVE"
    created_at: datetime | None = _ts()
    #: Per-minute rate-limit overrides by category (``{"read": 5000}``); ``None`` keeps the server's.
    rate_limits: dict[str, int] | None = None


@dataclass
class Identity(Model):
    """A user (``user:<email>``) or service account (``sa:<name>``) of a tenant."""

    id: str = ""
    type: str = "user"
    tenant_id: str | None = None
    email: str | None = None
    display_name: str | None = None
    status: str = "ACTIVE"
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    created_at: datetime | None = _ts()


@dataclass
class Group(Model):
    id: str = ""
    name: str = ""
    tenant_id: str | None = None
    display_name: str | None = None
    member_count: int = 0
    created_at: datetime | None = _ts()


@dataclass
class GroupMember(Model):
    user_id: str = ""
    email: str | None = None
    membership_type: str = "DIRECT"
    added_at: datetime | None = _ts()


@dataclass
class _IdentityPage(Model):
    total: int = 0
    page: int = 1
    page_size: int = 50


@dataclass
class PartnerPage(_IdentityPage):
    partners: list[Partner] = field(default_factory=list, metadata=_meta(_list_of(Partner)))

    def __iter__(self) -> Iterator[Partner]:
        return iter(self.partners)


@dataclass
class TenantPage(_IdentityPage):
    tenants: list[Tenant] = field(default_factory=list, metadata=_meta(_list_of(Tenant)))

    def __iter__(self) -> Iterator[Tenant]:
        return iter(self.tenants)


@dataclass
class UserPage(_IdentityPage):
    users: list[Identity] = field(default_factory=list, metadata=_meta(_list_of(Identity)))

    def __iter__(self) -> Iterator[Identity]:
        return iter(self.users)


@dataclass
class GroupPage(_IdentityPage):
    groups: list[Group] = field(default_factory=list, metadata=_meta(_list_of(Group)))

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)


@dataclass
class MemberList(Model):
    members: list[GroupMember] = field(
        default_factory=list, metadata=_meta(_list_of(GroupMember))
    )
    total: int = 0

    def __iter__(self) -> Iterator[GroupMember]:
        return iter(self.members)


@dataclass
class RoleAssignment(Model):
    user_id: str = ""
    roles: list[str] = field(default_factory=list)
    #: Set once retention pruned old entries: the chain is verified from here.
    anchor: Any = field(
        default=None, metadata=_meta(lambda v: AuditAnchor.from_dict(v) if v else None)
    )


@dataclass
class AuditAnchor(Model):
    """Where a pruned chain starts: the last removed entry's ``seq`` and ``hash``."""

    seq: int = 0
    hash: str = ""


@dataclass
class AuditExportChain(Model):
    """The exported range's place in the chain, to verify the file offline."""

    first_seq: int | None = None
    first_prev_hash: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None


@dataclass
class AuditExportManifest(Model):
    """What a completed export wrote: object key(s), size, SHA-256 of the data and the chain anchor."""

    object_keys: list[str] = field(default_factory=list)
    manifest_key: str | None = None
    record_count: int = 0
    byte_size: int = 0
    sha256: str | None = None
    chain: AuditExportChain = field(
        default_factory=AuditExportChain, metadata=_meta(AuditExportChain.from_dict)
    )


@dataclass
class AuditExport(Model):
    """An export job (``audit.export``, ``audit.get_export``): ``status`` is ``pending``,
    ``running``, ``completed`` (``manifest`` set) or ``failed`` (``error`` set)."""

    export_id: str = ""
    status: str = ""
    format: str | None = None
    estimated_records: int = 0
    records_exported: int = 0
    filters: dict[str, Any] = field(default_factory=dict)
    destination: dict[str, Any] = field(default_factory=dict)
    created_by: str | None = None
    created_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    manifest: AuditExportManifest | None = field(
        default=None,
        metadata=_meta(lambda v: AuditExportManifest.from_dict(v) if v else None),
    )
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass
class AuditExportPage(Model):
    """One page of ``audit.exports`` (newest first); iterate it for its jobs."""

    exports: list[AuditExport] = field(
        default_factory=list, metadata=_meta(_list_of(AuditExport))
    )
    cursor: str | None = None
    has_more: bool = False

    def __iter__(self) -> Iterator[AuditExport]:
        return iter(self.exports)

    def __len__(self) -> int:
        return len(self.exports)


__all__ += [
    "AuditAnchor",
    "AuditExportChain",
    "AuditExportManifest",
    "AuditExport",
    "AuditExportPage",
]


# -- policies ----------------------------------------------------------------------------------


@dataclass
class PolicyBinding(Model):
    """A binding of a policy to a user (``user:…``), service account (``sa:…``) or group."""

    id: str = ""
    policy_id: str = ""
    identity_type: str = ""
    identity_id: str = ""
    expires_at: datetime | None = _ts()
    expired: bool = False
    created_at: datetime | None = _ts()
    created_by: str | None = None


@dataclass
class Policy(Model):
    """An access policy. ``rules`` are dicts (``path_pattern``, ``permissions``, ``conditions``).

    List items carry ``rule_count`` instead of ``rules``; ``bindings`` is set on ``get``,
    ``create`` and ``update``; ``matching_rules`` on ``list_for_path``.
    """

    id: str = ""
    name: str = ""
    description: str | None = None
    scope: str = "tenant"
    rules: list[dict[str, Any]] = field(default_factory=list)
    rule_count: int | None = None
    is_active: bool = True
    binding_count: int = 0
    bindings: list[PolicyBinding] = field(
        default_factory=list, metadata=_meta(_list_of(PolicyBinding))
    )
    matching_rules: list[int] = field(default_factory=list)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    created_by: str | None = None
    updated_by: str | None = None


@dataclass
class PolicyPage(Model):
    """One page of ``policies.list``; iterate it for its policies."""

    policies: list[Policy] = field(default_factory=list, metadata=_meta(_list_of(Policy)))
    cursor: str | None = None
    has_more: bool = False

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)


@dataclass
class PolicyTestResult(Model):
    """``policies.test``: whether the identity would be allowed, and which rule decided or why not.

    ``code`` is set on a denial: ``access_denied``, ``ip_not_allowed``, ``mfa_required`` or
    ``time_window_violation``.
    """

    allowed: bool = False
    identity_id: str = ""
    path: str = ""
    permission: str = ""
    reason: str | None = None
    code: str | None = None
    policy_id: str | None = None
    policy_name: str | None = None
    rule_index: int | None = None
    path_pattern: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass
class PolicyDeletion(Model):
    id: str = ""
    deleted: bool = True
    bindings_removed: int = 0


# -- secret policies ---------------------------------------------------------------------------


@dataclass
class SecretPolicyField(Model):
    """One field of a secret policy's recipe: ``generator`` is ``random``, ``hex``, ``uuid``,
    ``template``, ``rsa_keypair``, ``ec_keypair``, ``ssh_keypair``, ``bcrypt_hash`` or ``static``;
    ``config`` holds its rules (``length``, ``charset``, ``require_upper``, ``require_lower``,
    ``require_digit``, ``require_symbol``)."""

    name: str = ""
    generator: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The request form."""
        out: dict[str, Any] = {"name": self.name, "generator": self.generator}
        if self.config:
            out["config"] = dict(self.config)
        return out


@dataclass
class SecretPolicy(Model):
    """A value recipe (``sp_…``); secrets attached to it have written values checked against it."""

    id: str = ""
    name: str = ""
    description: str | None = None
    policy_type: str = "custom"
    fields: list[SecretPolicyField] = field(
        default_factory=list, metadata=_meta(_list_of(SecretPolicyField))
    )
    is_active: bool = True
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


@dataclass
class SecretPolicyAttachment(Model):
    """``secret_policies.attach`` / ``detach``: ``secret_policy_id`` is None after a detach."""

    path: str = ""
    secret_policy_id: str | None = None


@dataclass
class SecretPolicyDeletion(Model):
    id: str = ""
    deleted: bool = True


# -- service accounts --------------------------------------------------------------------------


@dataclass
class ServiceAccount(Model):
    """A service account (``sa:<name>``) with client credentials for ``POST /v1/auth/token``.

    ``status`` is ``active`` or ``disabled``.
    """

    id: str = ""
    identity_id: str = ""
    identity_type: str = "service_account"
    name: str = ""
    description: str | None = None
    client_id: str = ""
    scopes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    tenant_id: str | None = None
    created_at: datetime | None = _ts()
    created_by: str | None = None
    disabled_at: datetime | None = _ts()
    status: str = "active"


@dataclass
class CreatedServiceAccount(ServiceAccount):
    """``service_accounts.create``: the only time ``client_secret`` is returned."""

    client_secret: str = field(default="", repr=False)


@dataclass
class ClientSecretRotation(Model):
    """``service_accounts.rotate_secret``: the new secret (shown once) and when the old ones
    stop working."""

    id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    previous_secrets_expire_at: datetime | None = _ts()


@dataclass
class ServiceAccountDisable(Model):
    id: str = ""
    disabled: bool = True
    disabled_at: datetime | None = _ts()


# -- auth: JWT issuer --------------------------------------------------------------------------


@dataclass
class Jwks(Model):
    """The issuer's public signing keys (JWK dicts with ``kid``, ``kty``, ``alg``, …)."""

    keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kids(self) -> list[str]:
        return [str(k.get("kid")) for k in self.keys]


@dataclass
class KeyRotation(Model):
    """``auth.rotate_keys``: the new signing key id and every key id the JWKS now publishes."""

    kid: str = ""
    published_kids: list[str] = field(default_factory=list)


@dataclass
class TokenExchange(Model):
    """``auth.exchange``: a ScaiVault access token for an external issuer's JWT."""

    access_token: str = field(default="", repr=False)
    token_type: str = "Bearer"
    issued_token_type: str | None = None
    expires_in: int = 0
    scope: str = ""
    identity_id: str | None = None
    tenant_id: str | None = None


# -- identity extras and system ----------------------------------------------------------------


@dataclass
class RoleDefinition(Model):
    """An admin role (``super_admin``, ``partner_admin``, ``tenant_admin``) and what it may do."""

    name: str = ""
    description: str = ""


@dataclass
class IdentitySync(Model):
    """``identity.sync``: this server is its own identity store, so a sync completes at once."""

    sync_id: str = ""
    status: str = ""
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    changes: int = 0
    source: str | None = None


@dataclass
class Health(Model):
    """``/v1/health`` (liveness) and ``/v1/health/ready`` (``checks``: component → ``ok`` or
    ``error``)."""

    status: str = ""
    timestamp: datetime | None = _ts()
    checks: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthDetail(Model):
    """``/v1/health/detailed`` (authenticated): per-component ``checks`` with their numbers."""

    status: str = ""
    version: str | None = None
    uptime_seconds: int = 0
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerVersion(Model):
    version: str = ""
    api_version: str = ""
    storage: str | None = None
    build: dict[str, Any] = field(default_factory=dict)


__all__ += [
    "SecretPolicyField",
    "SecretPolicy",
    "SecretPolicyAttachment",
    "SecretPolicyDeletion",
    "ServiceAccount",
    "CreatedServiceAccount",
    "ClientSecretRotation",
    "ServiceAccountDisable",
    "Jwks",
    "KeyRotation",
    "TokenExchange",
    "RoleDefinition",
    "IdentitySync",
    "Health",
    "HealthDetail",
    "ServerVersion",
]
