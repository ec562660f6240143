//! Resolved server settings (the CLI parses flags and environment into this).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Clone)]
pub struct Settings {
    pub dev: bool,
    pub bind: SocketAddr,
    pub database_url: String,
    pub base_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub root_key_file: PathBuf,
    /// Create the root key file when it is missing and the database is new.
    pub create_root_key: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub dev_root_token: Option<String>,
    pub max_body_bytes: usize,
    pub soft_delete_retention_secs: i64,
    pub rate_limits: crate::ratelimit::Limits,
    /// AUDIT_RETENTION: audit entries older than this many seconds are pruned; `None` keeps them forever.
    pub audit_retention_secs: Option<i64>,
    /// Trusted external token issuers (`SCAIKEY_URL`, `SCAIVAULT_EXTERNAL_ISSUERS`).
    pub external_issuers: Vec<crate::jwt::ExternalIssuerConfig>,
    /// Shared rate-limit buckets (`REDIS_URL`) and the key prefix (`SCAIVAULT_REDIS_PREFIX`).
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    /// Bound of the SQLite store's sealed-secret cache (`SCAIVAULT_SECRET_CACHE_MB`).
    pub secret_cache_bytes: usize,
    /// When audit entries of requests that change nothing reach the disk (`SCAIVAULT_AUDIT_SYNC`).
    pub audit_sync: scaivault_store::AuditSync,
    /// `SCAIVAULT_DEV_DISABLE_AUDIT=1` with `--dev` only: requests write no standalone audit entry.
    /// For measuring audit's cost; never for real use.
    pub dev_disable_audit: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password and the dev token is a credential: never print them.
        f.debug_struct("Settings")
            .field("dev", &self.dev)
            .field("bind", &self.bind)
            .field(
                "database",
                &self.database_url.split(':').next().unwrap_or(""),
            )
            .field("base_url", &self.base_url)
            .field("data_dir", &self.data_dir)
            .field("root_key_file", &self.root_key_file)
            .field("tls", &self.tls.is_some())
            .field(
                "dev_root_token",
                &self.dev_root_token.as_ref().map(|_| "***"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "external_issuers",
                &self
                    .external_issuers
                    .iter()
                    .map(|i| i.issuer.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("redis", &self.redis_url.is_some())
            .field("secret_cache_bytes", &self.secret_cache_bytes)
            .field("audit_sync", &self.audit_sync)
            .field("dev_disable_audit", &self.dev_disable_audit)
            .finish()
    }
}
