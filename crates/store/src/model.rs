//! Rows as stored. Times are microseconds since the Unix epoch.

use scaivault_crypto::SealedValue;

#[derive(Debug, Clone)]
pub struct PartnerRow {
    pub id: String,
    pub name: String,
    pub wrapped_key: Vec<u8>,
    pub created_at: i64,
    pub slug: Option<String>,
    pub region: Option<String>,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub wrapped_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub slug: Option<String>,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: String,
    /// `tenant`, or `partner` for the row holding a partner's shared secrets (its id is the partner's).
    pub kind: String,
    /// Rate-limit overrides for the tenant's identities, a JSON object `{category: per-minute}`.
    pub rate_limits: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdentityRow {
    pub tenant_id: String,
    pub id: String,
    pub identity_type: String,
    pub display_name: Option<String>,
    /// JSON arrays of strings.
    pub roles: String,
    pub groups: String,
    pub scopes: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub tenant_id: String,
    pub identity_id: String,
    pub name: Option<String>,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub tenant_id: String,
    pub path: String,
    pub secret_type: String,
    pub current_version: i64,
    pub max_versions: i64,
    /// JSON object (description, tags, owner, custom).
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub rotation_policy_id: Option<String>,
    pub secret_policy_id: Option<String>,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub recoverable_until: Option<i64>,
    pub restored_at: Option<i64>,
    pub restored_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub version: i64,
    /// Empty when listed without values.
    pub sealed: SealedValue,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub restored_at: Option<i64>,
    pub restored_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub seq: i64,
    pub action: String,
    pub version: Option<i64>,
    pub identity_id: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessStats {
    pub path: String,
    pub last_accessed_at: i64,
    pub reads: i64,
}

pub struct ListQuery<'a> {
    pub tenant_id: &'a str,
    pub prefix: &'a str,
    /// Exclusive lower bound (the cursor).
    pub after: Option<&'a str>,
    pub limit: i64,
    /// Only secrets expiring at or before this time (and not yet expired before `now`).
    pub expiring_before: Option<i64>,
    pub include_deleted: bool,
}

/// Day number (UTC) of a timestamp, for the daily access counters.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(86_400_000_000)
}

/// Filters of the audit query API. Results come newest first; `before_seq` is the cursor.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub tenant_id: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub actions: Vec<String>,
    pub identity_id: Option<String>,
    pub identity_type: Option<String>,
    pub path_prefix: Option<String>,
    pub secret_path: Option<String>,
    pub success: Option<bool>,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// An audit entry as stored: its place in the tenant's chain and its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: scaivault_core::audit::AuditEntry,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditStats {
    pub total: i64,
    pub successful: i64,
    pub unique_identities: i64,
    pub unique_paths: i64,
    pub by_action: Vec<(String, i64)>,
    pub by_identity: Vec<(String, i64)>,
    pub by_path: Vec<(String, i64)>,
    pub by_source_ip: Vec<(String, i64)>,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
}

/// An audit export job and, once it ran, its manifest. `filters` and `destination` are JSON objects
/// (the destination names the credentials secret's path, never the credentials); `object_keys` a JSON array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportRow {
    pub tenant_id: String,
    pub id: String,
    /// pending, running, completed or failed.
    pub status: String,
    pub format: String,
    pub filters: String,
    pub destination: String,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// Refreshed while the job runs; a pending or running job whose heartbeat stops is failed.
    pub heartbeat_at: i64,
    pub estimated_records: i64,
    pub record_count: i64,
    pub byte_size: i64,
    pub sha256: Option<String>,
    pub object_keys: String,
    pub first_seq: Option<i64>,
    pub first_prev_hash: Option<String>,
    pub last_seq: Option<i64>,
    pub last_hash: Option<String>,
    pub error: Option<String>,
}

/// One exported entry with the hash of its predecessor in the chain (`None` when that entry was pruned
/// and is not the retention anchor, or the chain is broken there).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    pub record: AuditRecord,
    pub prev_hash: Option<Vec<u8>>,
}

/// An access policy. `tenant_id` is its owner: a tenant, or a partner for scope `partner`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `tenant` or `partner`.
    pub scope: String,
    /// JSON array of rules, as validated by `scaivault_core::policy::parse_rules`.
    pub rules: String,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    /// Read-only: bindings of the policy (filled by reads, ignored by writes).
    pub binding_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindingRow {
    pub tenant_id: String,
    pub id: String,
    pub policy_id: String,
    /// `user`, `service_account` or `group`.
    pub identity_type: String,
    pub identity_id: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

/// A page of one owner set's policies, ordered by id.
pub struct PolicyQuery<'a> {
    pub owners: &'a [String],
    pub include_inactive: bool,
    /// Exclusive lower bound on id (the cursor).
    pub after: Option<&'a str>,
    pub limit: i64,
}

/// A secret (value) policy: recipe fields used to generate and validate values.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretPolicyRow {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub policy_type: String,
    /// JSON array of fields.
    pub fields: String,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
}

/// A service account: its identity row plus its client credentials' public part.
#[derive(Debug, Clone)]
pub struct ServiceAccountRow {
    pub identity: IdentityRow,
    pub client_id: String,
    pub description: Option<String>,
    pub created_by: String,
}

/// One client secret of a service account, as its SHA-256 hash.
#[derive(Debug, Clone)]
pub struct ClientSecretRow {
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    /// `None`: valid until rotated away.
    pub expires_at: Option<i64>,
}

/// A signing key of this server's token issuer (issuer-wide, not tenant-owned).
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// The public key as a JWK (JSON object).
    pub public_jwk: String,
    /// The private key (PKCS#8), sealed by the root key.
    pub sealed_private: Vec<u8>,
    pub created_at: i64,
    /// When a newer key became current; `None` for the current key.
    pub retired_at: Option<i64>,
}
