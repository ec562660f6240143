//! Persistence for ScaiVault: the [`Store`] trait, its SQLite and PostgreSQL implementations (one
//! body of SQL shared by both through `impl_store!`), embedded migrations, and the group-commit
//! [`Committer`] that makes many requests' writes and audit entries durable in one transaction.
//! Every query filters on `tenant_id`. No HTTP and no crypto decisions live here: values arrive sealed.

mod audit_journal;
mod committer;
mod identity;
mod model;
mod ops;
mod pg_pool;
mod secret_cache;
mod sql;
mod sqlite_writer;
mod syncer;

pub use audit_journal::AuditSync;
pub use committer::Committer;
pub use identity::{IdentityOp, IdentityQuery, IdentityStore, MemberRow, Page};
pub use model::*;
pub use ops::{OpError, OpOutcome, PutSecret, UpdateMetadata, WriteOp};

use async_trait::async_trait;
use scaivault_core::audit::AuditEntry;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store is shutting down")]
    Closed,
    #[error("{0}")]
    Config(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Reads go straight to a connection pool; every mutation goes through [`Store::apply`], which runs a
/// batch of operations in one transaction (each in its own savepoint) and commits once.
#[async_trait]
pub trait Store: IdentityStore + Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    /// Whether the store groups concurrent operations like `op` into shared durable writes by itself
    /// (the SQLite writer thread does, for what it applies), so the [`Committer`] hands them over
    /// directly instead of batching them in its own task first: one thread hop fewer per request, and
    /// the store can start the next batch while the last one is still being synced.
    fn groups(&self, _op: &WriteOp) -> bool {
        false
    }
    /// (pool size, idle connections)
    fn pool_stats(&self) -> (u32, u32);
    async fn ping(&self) -> Result<()>;
    async fn close(&self);

    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    async fn insert_partner(&self, p: &PartnerRow) -> Result<()>;
    async fn get_partner(&self, id: &str) -> Result<Option<PartnerRow>>;
    async fn insert_tenant(&self, t: &TenantRow) -> Result<()>;
    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRow>>;
    async fn insert_identity(&self, i: &IdentityRow) -> Result<()>;
    async fn get_identity(&self, tenant_id: &str, id: &str) -> Result<Option<IdentityRow>>;
    async fn insert_token(&self, t: &TokenRow) -> Result<()>;
    async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>>;
    /// The tenant's tokens, newest first; only `identity_id`'s when given. Hashes are returned empty.
    async fn list_tokens(
        &self,
        tenant_id: &str,
        identity_id: Option<&str>,
    ) -> Result<Vec<TokenRow>>;

    async fn get_secret(&self, tenant_id: &str, path: &str) -> Result<Option<SecretRow>>;
    /// The secret and one version's sealed value: `version` or, when `None`, the newest active version.
    async fn get_secret_value(
        &self,
        tenant_id: &str,
        path: &str,
        version: Option<i64>,
    ) -> Result<Option<(SecretRow, Option<VersionRow>)>>;
    /// [`Store::get_secret_value`] for many paths in one query (batch reads); missing paths are absent.
    async fn get_secret_values(
        &self,
        tenant_id: &str,
        paths: &[String],
        version: Option<i64>,
    ) -> Result<Vec<(SecretRow, Option<VersionRow>)>>;
    async fn list_versions(&self, tenant_id: &str, path: &str) -> Result<Vec<VersionRow>>;
    async fn history(&self, tenant_id: &str, path: &str) -> Result<Vec<HistoryRow>>;
    async fn list_secrets(&self, q: &ListQuery<'_>) -> Result<Vec<SecretRow>>;
    async fn version_counts(&self, tenant_id: &str, paths: &[String])
        -> Result<Vec<(String, i64)>>;
    /// (path, last_accessed_at, reads since `since_day`) for the given paths.
    async fn access_stats(
        &self,
        tenant_id: &str,
        paths: &[String],
        since_day: i64,
    ) -> Result<Vec<AccessStats>>;

    async fn audit_count(&self, tenant_id: &str) -> Result<i64>;
    async fn audit_tail(&self, tenant_id: &str, limit: i64) -> Result<Vec<AuditEntry>>;
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// Aggregates over the entries matching `q` (its cursor and limit are ignored).
    async fn audit_stats(&self, q: &AuditQuery) -> Result<AuditStats>;
    /// The tenant's chain in order, from `after_seq` (exclusive), for verification and export.
    async fn audit_chain(
        &self,
        tenant_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>>;
    /// The chain head (last seq and hash) recorded for a tenant.
    async fn audit_head(&self, tenant_id: &str) -> Result<Option<(i64, Vec<u8>)>>;

    async fn apply(
        &self,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<std::result::Result<OpOutcome, OpError>>>;

    // ---- audit export and retention (0002_audit_exports.sql)

    /// How many entries match `q` (its cursor and limit are ignored).
    async fn audit_count_matching(&self, q: &AuditQuery) -> Result<i64>;
    /// Entries matching `q` in chain order with `after_seq < seq <= max_seq`, each with its predecessor's
    /// hash (the retention anchor's or the genesis hash where the predecessor is gone).
    async fn audit_export_page(
        &self,
        q: &AuditQuery,
        after_seq: i64,
        max_seq: i64,
        limit: i64,
    ) -> Result<Vec<ExportRecord>>;
    async fn insert_export(&self, e: &ExportRow) -> Result<()>;
    /// Writes every mutable column of the job (status, times, counts, manifest, error).
    async fn update_export(&self, e: &ExportRow) -> Result<()>;
    async fn get_export(&self, tenant_id: &str, id: &str) -> Result<Option<ExportRow>>;
    /// The tenant's exports, newest first, strictly after the cursor `(created_at, id)`.
    async fn list_exports(
        &self,
        tenant_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<ExportRow>>;
    /// Marks pending or running exports whose heartbeat is older than `stale_before` failed; returns how
    /// many.
    async fn fail_stale_exports(&self, stale_before: i64, now: i64, error: &str) -> Result<u64>;
    /// Refreshes a pending or running export's heartbeat; false when the job is no longer live.
    async fn touch_export(&self, tenant_id: &str, id: &str, now: i64) -> Result<bool>;
    /// Tenants that have an audit chain.
    async fn audit_tenants(&self) -> Result<Vec<String>>;
    /// The retention anchor: (seq, hash) of the last pruned entry, where verification resumes.
    async fn audit_anchor(&self, tenant_id: &str) -> Result<Option<(i64, Vec<u8>)>>;
    /// Deletes, in chain order and in one transaction, up to `max_rows` of the tenant's oldest entries
    /// that are older than `before_ts`, stopping at the first newer one, and moves the anchor to the last
    /// deleted entry. Returns how many were deleted.
    async fn audit_prune(
        &self,
        tenant_id: &str,
        before_ts: i64,
        max_rows: i64,
        now: i64,
    ) -> Result<u64>;
    /// A page of the policies owned by `q.owners` (a tenant and its partner), ordered by id.
    async fn list_policies(&self, q: &PolicyQuery<'_>) -> Result<Vec<PolicyRow>>;
    /// One policy owned by one of `owners`.
    async fn get_policy(&self, owners: &[String], id: &str) -> Result<Option<PolicyRow>>;
    /// A policy's bindings, oldest first.
    async fn list_bindings(&self, tenant_id: &str, policy_id: &str) -> Result<Vec<BindingRow>>;
    /// Every policy and binding of every owner, for compiling the decision index.
    async fn all_policies(&self) -> Result<(Vec<PolicyRow>, Vec<BindingRow>)>;
    /// Bumped by every policy or binding change (in the same transaction).
    async fn policy_version(&self) -> Result<i64>;
    /// Bumped by every committed change for which [`WriteOp::changes_auth`] holds, wherever nodes share
    /// the database. (A SQLite file serves one node, which drops its own caches as it makes the change, so
    /// the writer thread's fast path does not bump it.)
    async fn auth_epoch(&self) -> Result<i64>;
    async fn list_secret_policies(&self, tenant_id: &str) -> Result<Vec<SecretPolicyRow>>;
    async fn get_secret_policy(&self, tenant_id: &str, id: &str)
        -> Result<Option<SecretPolicyRow>>;
    // ---- service accounts and the token issuer's signing keys ----
    async fn get_service_account(
        &self,
        tenant_id: &str,
        identity_id: &str,
    ) -> Result<Option<ServiceAccountRow>>;
    /// Client ids are unique across tenants: the token endpoint has no tenant context.
    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccountRow>>;
    /// The tenant's service accounts, by identity id.
    async fn list_service_accounts(&self, tenant_id: &str) -> Result<Vec<ServiceAccountRow>>;
    /// The client's secrets not expired at `now`.
    async fn live_client_secrets(
        &self,
        tenant_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Vec<ClientSecretRow>>;
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    /// Inserts `key` as the current key and retires every other current key at `key.created_at`.
    async fn rotate_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
}

pub type DynStore = Arc<dyn Store>;

/// Tuning of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bound of the SQLite store's sealed-secret cache, in bytes (0 disables it).
    pub secret_cache_bytes: usize,
    /// When the audit entries of requests that write nothing else reach the disk (see [`AuditSync`]);
    /// the only option here that changes a guarantee.
    pub audit_sync: AuditSync,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            secret_cache_bytes: secret_cache::DEFAULT_MAX_BYTES,
            audit_sync: AuditSync::Always,
        }
    }
}

/// Opens the store named by a URL: `sqlite:PATH` / `sqlite://PATH` or `postgres://…`, running migrations.
pub async fn connect(url: &str) -> Result<DynStore> {
    connect_with(url, &StoreOptions::default()).await
}

/// [`connect`] with options.
pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<DynStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(sql::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqliteStore::connect(url, opts).await?))
    } else {
        Err(StoreError::Config(
            "DATABASE_URL must start with sqlite: or postgres://".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    /// Tables and columns of a migration file, in order, with types normalised away.
    fn shape(sql: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for stmt in sql.split(';') {
            let stmt: String = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(rest) = stmt.trim().strip_prefix("ALTER TABLE ") {
                // `ALTER TABLE t ADD COLUMN c type`: the column must be added in both dialects too.
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [table, "ADD", "COLUMN", col, ..] = words[..] {
                    out.push((format!("{table} +"), vec![col.to_owned()]));
                }
                continue;
            }
            let Some(rest) = stmt.trim().strip_prefix("CREATE TABLE ") else {
                continue;
            };
            let (name, body) = rest.split_once('(').unwrap_or((rest, ""));
            let cols = body
                .split(",\n")
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "PRIMARY" && *c != ")")
                .map(str::to_owned)
                .collect();
            out.push((name.trim().to_owned(), cols));
        }
        out
    }

    #[test]
    fn sqlite_and_postgres_migrations_have_the_same_tables_and_columns() {
        let dirs = |d: &str| -> Vec<(String, String)> {
            let mut files: Vec<_> =
                std::fs::read_dir(format!("{}/migrations/{d}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
            files.sort();
            files
                .iter()
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().into_owned(),
                        std::fs::read_to_string(p).unwrap(),
                    )
                })
                .collect()
        };
        let (lite, pg) = (dirs("sqlite"), dirs("postgres"));
        assert_eq!(
            lite.iter().map(|f| &f.0).collect::<Vec<_>>(),
            pg.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        for ((name, a), (_, b)) in lite.iter().zip(&pg) {
            assert!(!shape(a).is_empty(), "{name} declares no tables");
            assert_eq!(shape(a), shape(b), "{name} differs between dialects");
        }
    }
}
