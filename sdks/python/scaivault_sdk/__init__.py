"""ScaiVault Python SDK.

Async-first client with a sync twin, typed models, automatic token refresh, retries with
exponential backoff and connection pooling::

    from scaivault_sdk import SyncScaiVaultClient

    with SyncScaiVaultClient(base_url="http://127.0.0.1:8200", token="skt_...") as client:
        secret = client.secrets.read("app/db/password")
        print(secret.data["password"])
"""

from ._core import __version__
from .client import DEFAULT_BASE_URL, ScaiVaultClient, SyncScaiVaultClient
from .errors import (
    APIConnectionError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ScaiVaultError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from .models import (
    AuditChainBreak,
    AuditCount,
    AuditEntry,
    AuditLogPage,
    AuditSummary,
    AuditVerification,
    CreatedToken,
    IdentityAuditTrail,
    SecretAuditTrail,
    TokenInfo,
    TokenRevocation,
    BatchError,
    BatchMetadataItem,
    BatchMetadataResult,
    BatchResult,
    DeleteResult,
    HistoryEntry,
    Lease,
    RotationStatus,
    Secret,
    SecretInfo,
    SecretList,
    SecretListItem,
    SecretMetadata,
    SecretType,
    VersionHistory,
    VersionInfo,
    WhoAmI,
    TokenIntrospection,
    WriteResult,
)

__all__ = [
    "__version__",
    "DEFAULT_BASE_URL",
    "ScaiVaultClient",
    "SyncScaiVaultClient",
    # errors
    "ScaiVaultError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ServiceUnavailableError",
    "ServerError",
    "APIConnectionError",
    # models
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
    "AuditChainBreak",
    "AuditCount",
    "AuditEntry",
    "AuditLogPage",
    "AuditSummary",
    "AuditVerification",
    "CreatedToken",
    "IdentityAuditTrail",
    "SecretAuditTrail",
    "TokenInfo",
    "TokenRevocation",
]
