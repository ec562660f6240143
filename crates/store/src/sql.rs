//! The SQL of the store, written once and instantiated for SQLite and PostgreSQL by `impl_store!`.
//! Both dialects take `$N` placeholders, `ON CONFLICT … DO UPDATE` and `RETURNING`; the only
//! differences are the pool set-up and row locking, passed to the macro.

use crate::model::*;
use crate::ops::{OpError, OpOutcome, PutSecret, UpdateMetadata, WriteOp};
use crate::syncer::OpResult;
use crate::{Result, Store};
use async_trait::async_trait;
use scaivault_core::audit::{AuditEntry, GENESIS};
use scaivault_crypto::SealedValue;
use sqlx::{Acquire, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

const SA_SELECT: &str = "SELECT i.tenant_id, i.id, i.identity_type, i.display_name, i.roles, i.groups_json, i.scopes, \
     i.created_at, i.disabled_at, s.client_id, s.description, s.created_by \
     FROM service_accounts s JOIN identities i ON i.tenant_id = s.tenant_id AND i.id = s.identity_id";

const SECRET_COLS: &str = "tenant_id, path, secret_type, current_version, max_versions, metadata, created_at, \
    updated_at, expires_at, rotation_policy_id, secret_policy_id, created_by, updated_by, deleted_at, deleted_by, \
    recoverable_until, restored_at, restored_by";
const N_SECRET_COLS: usize = 18;
/// Most rows a per-value breakdown of audit stats returns (exact totals are counted separately).
const AUDIT_GROUP_LIMIT: usize = 100_000;
const POLICY_COLS: &str = "tenant_id, id, name, description, scope, rules, is_active, created_at, updated_at, \
    created_by, updated_by, (SELECT COUNT(*) FROM policy_bindings b WHERE b.tenant_id = p.tenant_id AND b.policy_id = p.id)";
const BINDING_COLS: &str =
    "tenant_id, id, policy_id, identity_type, identity_id, expires_at, created_at, created_by";
const SECRET_POLICY_COLS: &str =
    "tenant_id, id, name, description, policy_type, fields, is_active, created_at, updated_at, created_by";
const VERSION_COLS: &str =
    "version, wrapped_dek, ciphertext, created_at, created_by, deleted_at, deleted_by, restored_at, restored_by";
const EXPORT_COLS: &str = "tenant_id, id, status, format, filters, destination, created_by, created_at, started_at, \
    completed_at, heartbeat_at, estimated_records, record_count, byte_size, sha256, object_keys, first_seq, \
    first_prev_hash, last_seq, last_hash, error";
const AUDIT_COLS: &str =
    "id, tenant_id, ts, action, identity_type, identity_id, secret_path, source_ip, \
    user_agent, success, status, error_code, duration_ms, request_id, extra_data";

impl OpError {
    /// The API error code recorded in the audit entry of a failed operation.
    pub fn code(&self) -> (&'static str, i32) {
        match self {
            OpError::NotFound => ("secret_not_found", 404),
            OpError::VersionNotFound => ("version_not_found", 404),
            OpError::Conflict { .. } => ("version_conflict", 409),
            OpError::SoftDeleted { .. } => ("secret_exists", 409),
            OpError::Store(_) => ("internal_error", 500),
            OpError::AlreadyExists => ("already_exists", 409),
            OpError::IdentityNotFound => ("identity_not_found", 404),
            OpError::Missing(code) => (code, 404),
            OpError::InUse => ("policy_in_use", 409),
        }
    }
}

/// `cols` ("a, b, …") qualified by `table`.
fn prefixed(table: &str, cols: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{table}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A bind value for dynamically built audit queries.
enum Arg {
    S(String),
    I(i64),
    B(bool),
}

/// WHERE clause (numbered from $1) and its arguments for an audit query.
fn audit_where(q: &crate::model::AuditQuery, with_cursor: bool) -> (String, Vec<Arg>) {
    let mut conds = vec!["tenant_id = $1".to_owned()];
    let mut args = vec![Arg::S(q.tenant_id.clone())];
    fn push(conds: &mut Vec<String>, args: &mut Vec<Arg>, cond: &str, arg: Arg) {
        args.push(arg);
        conds.push(cond.replace('?', &format!("${}", args.len())));
    }
    if let Some(v) = q.from {
        push(&mut conds, &mut args, "ts >= ?", Arg::I(v));
    }
    if let Some(v) = q.to {
        push(&mut conds, &mut args, "ts <= ?", Arg::I(v));
    }
    if !q.actions.is_empty() {
        let mut ph = Vec::new();
        for a in &q.actions {
            args.push(Arg::S(a.clone()));
            ph.push(format!("${}", args.len()));
        }
        conds.push(format!("action IN ({})", ph.join(", ")));
    }
    let strings = [
        ("identity_id = ?", &q.identity_id),
        ("identity_type = ?", &q.identity_type),
        ("secret_path = ?", &q.secret_path),
        ("source_ip = ?", &q.source_ip),
        ("request_id = ?", &q.request_id),
    ];
    for (cond, v) in strings {
        if let Some(v) = v {
            push(&mut conds, &mut args, cond, Arg::S(v.clone()));
        }
    }
    if let Some(v) = &q.path_prefix {
        push(&mut conds, &mut args, "secret_path >= ?", Arg::S(v.clone()));
        push(
            &mut conds,
            &mut args,
            "secret_path < ?",
            Arg::S(scaivault_core::path::prefix_upper_bound(v)),
        );
    }
    if let Some(v) = q.success {
        push(&mut conds, &mut args, "success = ?", Arg::B(v));
    }
    if with_cursor {
        if let Some(v) = q.before_seq {
            push(&mut conds, &mut args, "seq < ?", Arg::I(v));
        }
    }
    (conds.join(" AND "), args)
}

/// PostgreSQL text cannot hold NUL; an entry must never fail its whole commit batch over one, so NULs in
/// client-supplied fields are replaced before the entry is hashed and stored.
pub(crate) fn sanitize(e: &AuditEntry) -> AuditEntry {
    let fix = |s: &str| {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s.to_owned()
        }
    };
    let fix_opt = |s: &Option<String>| s.as_deref().map(fix);
    AuditEntry {
        id: fix(&e.id),
        tenant_id: fix(&e.tenant_id),
        action: fix(&e.action),
        identity_type: fix(&e.identity_type),
        identity_id: fix(&e.identity_id),
        secret_path: fix_opt(&e.secret_path),
        source_ip: fix_opt(&e.source_ip),
        user_agent: fix_opt(&e.user_agent),
        error_code: fix_opt(&e.error_code),
        request_id: fix(&e.request_id),
        extra_data: fix(&e.extra_data),
        ..e.clone()
    }
}

type Head = (i64, Vec<u8>);

/// What one commit accumulates for the audit log: chain heads of the tenants it touches, the chained
/// rows, and the daily read counters.
#[derive(Default)]
struct AuditBatch {
    heads: HashMap<String, Head>,
    rows: Vec<(AuditEntry, i64, [u8; 32])>,
    access: HashMap<(String, String, i64), (i64, i64)>,
}

macro_rules! impl_store {
    ($name:ident, $db:ty, $row:ty, $backend:literal, $for_update:literal, $leases:ty) => {
        pub struct $name {
            pub(crate) read: sqlx::Pool<$db>,
            pub(crate) write: sqlx::Pool<$db>,
            /// Audit chain heads as last committed, when this process is the database's only writer
            /// (SQLite). PostgreSQL nodes share the database: they lock the head row, or move it only
            /// from the head they chained from (`head_hints`).
            heads: Option<parking_lot::Mutex<HashMap<String, Head>>>,
            /// PostgreSQL: each tenant's chain head as this node last committed it. Only a hint: another
            /// node may have moved the head since, which [`PgStore::commit_audit_only`] detects.
            head_hints: parking_lot::Mutex<HashMap<String, Head>>,
            /// SQLite only: the writer thread and the secret cache (see sqlite_writer.rs).
            fast: Option<crate::sqlite_writer::SqliteWriter>,
            /// PostgreSQL only: connections for secret reads and the committer (see pg_pool.rs).
            leases: $leases,
        }

        impl $name {
            /// SQLite: waits until every acknowledged audit entry (journaled by the writer thread) is
            /// in `audit_log` and the read counters, so audit queries see it.
            async fn audit_settled(&self) -> Result<()> {
                match &self.fast {
                    Some(fast) => fast.sync_audit().await,
                    None => Ok(()),
                }
            }

            fn secret_from_row(r: &$row, o: usize) -> std::result::Result<SecretRow, sqlx::Error> {
                Ok(SecretRow {
                    tenant_id: r.try_get(o)?,
                    path: r.try_get(o + 1)?,
                    secret_type: r.try_get(o + 2)?,
                    current_version: r.try_get(o + 3)?,
                    max_versions: r.try_get(o + 4)?,
                    metadata: r.try_get(o + 5)?,
                    created_at: r.try_get(o + 6)?,
                    updated_at: r.try_get(o + 7)?,
                    expires_at: r.try_get(o + 8)?,
                    rotation_policy_id: r.try_get(o + 9)?,
                    secret_policy_id: r.try_get(o + 10)?,
                    created_by: r.try_get(o + 11)?,
                    updated_by: r.try_get(o + 12)?,
                    deleted_at: r.try_get(o + 13)?,
                    deleted_by: r.try_get(o + 14)?,
                    recoverable_until: r.try_get(o + 15)?,
                    restored_at: r.try_get(o + 16)?,
                    restored_by: r.try_get(o + 17)?,
                })
            }

            fn version_from_row(r: &$row, o: usize) -> std::result::Result<VersionRow, sqlx::Error> {
                Ok(VersionRow {
                    version: r.try_get(o)?,
                    sealed: SealedValue { wrapped_dek: r.try_get(o + 1)?, ciphertext: r.try_get(o + 2)? },
                    created_at: r.try_get(o + 3)?,
                    created_by: r.try_get(o + 4)?,
                    deleted_at: r.try_get(o + 5)?,
                    deleted_by: r.try_get(o + 6)?,
                    restored_at: r.try_get(o + 7)?,
                    restored_by: r.try_get(o + 8)?,
                })
            }

            fn export_from_row(r: &$row) -> std::result::Result<ExportRow, sqlx::Error> {
                Ok(ExportRow {
                    tenant_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    status: r.try_get(2)?,
                    format: r.try_get(3)?,
                    filters: r.try_get(4)?,
                    destination: r.try_get(5)?,
                    created_by: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    started_at: r.try_get(8)?,
                    completed_at: r.try_get(9)?,
                    heartbeat_at: r.try_get(10)?,
                    estimated_records: r.try_get(11)?,
                    record_count: r.try_get(12)?,
                    byte_size: r.try_get(13)?,
                    sha256: r.try_get(14)?,
                    object_keys: r.try_get(15)?,
                    first_seq: r.try_get(16)?,
                    first_prev_hash: r.try_get(17)?,
                    last_seq: r.try_get(18)?,
                    last_hash: r.try_get(19)?,
                    error: r.try_get(20)?,
                })
            }

            fn audit_from_row(r: &$row) -> std::result::Result<AuditEntry, sqlx::Error> {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    tenant_id: r.try_get(1)?,
                    timestamp: r.try_get(2)?,
                    action: r.try_get(3)?,
                    identity_type: r.try_get(4)?,
                    identity_id: r.try_get(5)?,
                    secret_path: r.try_get(6)?,
                    source_ip: r.try_get(7)?,
                    user_agent: r.try_get(8)?,
                    success: r.try_get(9)?,
                    status: i32::try_from(r.try_get::<i64, _>(10)?).unwrap_or(0),
                    error_code: r.try_get(11)?,
                    duration_ms: r.try_get(12)?,
                    request_id: r.try_get(13)?,
                    extra_data: r.try_get(14)?,
                })
            }

            async fn lock_secret(
                c: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                path: &str,
            ) -> std::result::Result<Option<SecretRow>, sqlx::Error> {
                let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE tenant_id = $1 AND path = $2 {}", $for_update);
                let row = sqlx::query(&sql).bind(tenant).bind(path).fetch_optional(&mut *c).await?;
                row.map(|r| Self::secret_from_row(&r, 0)).transpose()
            }

            async fn history_push(
                c: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                path: &str,
                action: &str,
                version: Option<i64>,
                by: &str,
                at: i64,
            ) -> std::result::Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO secret_history (tenant_id, path, seq, action, version, identity_id, at) \
                     SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6 FROM secret_history \
                     WHERE tenant_id = $1 AND path = $2",
                )
                .bind(tenant)
                .bind(path)
                .bind(action)
                .bind(version)
                .bind(by)
                .bind(at)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            /// Drops versions that fall out of the `max_versions` window; their history stays.
            async fn prune(
                c: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                path: &str,
                newest: i64,
                max_versions: i64,
                by: &str,
                at: i64,
            ) -> std::result::Result<(), sqlx::Error> {
                let cutoff = newest - max_versions;
                if cutoff < 1 {
                    return Ok(());
                }
                let pruned: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM secret_versions WHERE tenant_id = $1 AND path = $2 AND version <= $3 RETURNING version",
                )
                .bind(tenant)
                .bind(path)
                .bind(cutoff)
                .fetch_all(&mut *c)
                .await?;
                let mut pruned = pruned;
                pruned.sort_unstable();
                for v in pruned {
                    Self::history_push(c, tenant, path, "prune", Some(v), by, at).await?;
                }
                Ok(())
            }

            /// The writes of a batch that go in together through `put_in_place`: new versions of
            /// existing secrets, each to a path no other write of the batch touches, in a batch of secret
            /// writes and audit entries only (so applying them first changes no outcome), by index.
            fn in_place_candidates(ops: &[WriteOp]) -> Vec<(usize, &PutSecret)> {
                let mut puts = Vec::new();
                let mut writes: HashMap<(&str, &str), usize> = HashMap::new();
                for (i, op) in ops.iter().enumerate() {
                    match op {
                        WriteOp::Audit(_) => {}
                        WriteOp::PutSecret(p) => {
                            *writes.entry((&p.tenant_id, &p.path)).or_default() += 1;
                            if p.expected_version > 0 {
                                puts.push((i, &**p));
                            }
                        }
                        _ => return Vec::new(),
                    }
                }
                puts.retain(|(_, p)| writes[&(p.tenant_id.as_str(), p.path.as_str())] == 1);
                puts
            }

            async fn put_secret(
                c: &mut <$db as sqlx::Database>::Connection,
                p: &PutSecret,
            ) -> std::result::Result<std::result::Result<OpOutcome, OpError>, sqlx::Error> {
                if p.expected_version > 0 {
                    if let Some(secret) = Self::put_in_place(c, &[p]).await?.remove(&0) {
                        return Ok(Ok(OpOutcome::Put { version: p.expected_version + 1, created: false, secret }));
                    }
                }
                // Every refusal comes before the first change: PostgreSQL applies secret writes without
                // a savepoint of their own (see `apply`).
                let mut existing = Self::lock_secret(c, &p.tenant_id, &p.path).await?;
                let mut expired = false;
                if let Some(s) = existing.as_ref().filter(|s| s.deleted_at.is_some()) {
                    if s.recoverable_until.is_some_and(|u| u > p.now) {
                        return Ok(Err(OpError::SoftDeleted { recoverable_until: s.recoverable_until }));
                    }
                    expired = true;
                }
                let current = match &existing {
                    Some(s) if !expired => s.current_version,
                    _ => 0,
                };
                if current != p.expected_version {
                    return Ok(Err(OpError::Conflict { current }));
                }
                if expired {
                    // Retention is over: the old secret is purged and this write starts it afresh.
                    Self::purge(c, &p.tenant_id, &p.path).await?;
                    existing = None;
                }
                let version = current + 1;
                sqlx::query(
                    "INSERT INTO secret_versions (tenant_id, path, version, wrapped_dek, ciphertext, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&p.tenant_id)
                .bind(&p.path)
                .bind(version)
                .bind(&p.sealed.wrapped_dek)
                .bind(&p.sealed.ciphertext)
                .bind(p.now)
                .bind(&p.by)
                .execute(&mut *c)
                .await?;
                let max_versions = match &existing {
                    Some(s) => {
                        let max_versions = p.max_versions.unwrap_or(s.max_versions);
                        sqlx::query(
                            "UPDATE secrets SET secret_type = $3, current_version = $4, max_versions = $5, \
                             metadata = COALESCE($6, metadata), updated_at = $7, expires_at = $8, \
                             rotation_policy_id = COALESCE($9, rotation_policy_id), updated_by = $10 \
                             WHERE tenant_id = $1 AND path = $2",
                        )
                        .bind(&p.tenant_id)
                        .bind(&p.path)
                        .bind(&p.secret_type)
                        .bind(version)
                        .bind(max_versions)
                        .bind(&p.metadata)
                        .bind(p.now)
                        .bind(p.expires_at)
                        .bind(&p.rotation_policy_id)
                        .bind(&p.by)
                        .execute(&mut *c)
                        .await?;
                        max_versions
                    }
                    None => {
                        let max_versions = p.max_versions.unwrap_or(scaivault_core::secret::DEFAULT_MAX_VERSIONS);
                        sqlx::query(
                            "INSERT INTO secrets (tenant_id, path, secret_type, current_version, max_versions, metadata, \
                             created_at, updated_at, expires_at, rotation_policy_id, created_by, updated_by) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $10)",
                        )
                        .bind(&p.tenant_id)
                        .bind(&p.path)
                        .bind(&p.secret_type)
                        .bind(version)
                        .bind(max_versions)
                        .bind(p.metadata.as_deref().unwrap_or("{}"))
                        .bind(p.now)
                        .bind(p.expires_at)
                        .bind(&p.rotation_policy_id)
                        .bind(&p.by)
                        .execute(&mut *c)
                        .await?;
                        max_versions
                    }
                };
                Self::history_push(c, &p.tenant_id, &p.path, "write", Some(version), &p.by, p.now).await?;
                Self::prune(c, &p.tenant_id, &p.path, version, max_versions, &p.by, p.now).await?;
                match Self::lock_secret(c, &p.tenant_id, &p.path).await? {
                    Some(secret) => Ok(Ok(OpOutcome::Put { version, created: existing.is_none(), secret })),
                    None => Ok(Err(OpError::Store("secret vanished inside its transaction".into()))),
                }
            }

            async fn update_metadata(
                c: &mut <$db as sqlx::Database>::Connection,
                u: &UpdateMetadata,
            ) -> std::result::Result<std::result::Result<OpOutcome, OpError>, sqlx::Error> {
                let Some(s) = Self::lock_secret(c, &u.tenant_id, &u.path).await? else {
                    return Ok(Err(OpError::NotFound));
                };
                if s.deleted_at.is_some() {
                    return Ok(Err(OpError::NotFound));
                }
                let max_versions = u.max_versions.unwrap_or(s.max_versions);
                let expires_at = u.expires_at.unwrap_or(s.expires_at);
                let rotation = u.rotation_policy_id.clone().unwrap_or(s.rotation_policy_id.clone());
                sqlx::query(
                    "UPDATE secrets SET metadata = $3, max_versions = $4, expires_at = $5, rotation_policy_id = $6, \
                     updated_by = $7 WHERE tenant_id = $1 AND path = $2",
                )
                .bind(&u.tenant_id)
                .bind(&u.path)
                .bind(&u.metadata)
                .bind(max_versions)
                .bind(expires_at)
                .bind(&rotation)
                .bind(&u.by)
                .execute(&mut *c)
                .await?;
                Self::history_push(c, &u.tenant_id, &u.path, "update_metadata", None, &u.by, u.now).await?;
                Self::prune(c, &u.tenant_id, &u.path, s.current_version, max_versions, &u.by, u.now).await?;
                match Self::lock_secret(c, &u.tenant_id, &u.path).await? {
                    Some(secret) => Ok(Ok(OpOutcome::Updated(secret))),
                    None => Ok(Err(OpError::NotFound)),
                }
            }

            async fn insert_token_row(
                c: &mut <$db as sqlx::Database>::Connection,
                t: &TokenRow,
            ) -> std::result::Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO tokens (id, token_hash, tenant_id, identity_id, name, scopes, created_at, expires_at, revoked_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&t.id)
                .bind(&t.token_hash)
                .bind(&t.tenant_id)
                .bind(&t.identity_id)
                .bind(&t.name)
                .bind(&t.scopes)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .bind(&t.created_by)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            async fn insert_client_secret(
                c: &mut <$db as sqlx::Database>::Connection,
                t: &ClientSecretRow,
            ) -> std::result::Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO client_secrets (id, tenant_id, client_id, secret_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&t.id)
                .bind(&t.tenant_id)
                .bind(&t.client_id)
                .bind(&t.secret_hash)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            fn service_account_from_row(r: &$row) -> std::result::Result<ServiceAccountRow, sqlx::Error> {
                Ok(ServiceAccountRow {
                    identity: IdentityRow {
                        tenant_id: r.try_get(0)?,
                        id: r.try_get(1)?,
                        identity_type: r.try_get(2)?,
                        display_name: r.try_get(3)?,
                        roles: r.try_get(4)?,
                        groups: r.try_get(5)?,
                        scopes: r.try_get(6)?,
                        created_at: r.try_get(7)?,
                        disabled_at: r.try_get(8)?,
                    },
                    client_id: r.try_get(9)?,
                    description: r.try_get(10)?,
                    created_by: r.try_get(11)?,
                })
            }

            /// Removes a secret with every version, its history and access counters.
            async fn purge(
                c: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                path: &str,
            ) -> std::result::Result<(), sqlx::Error> {
                for table in ["secret_versions", "secret_history", "secret_access_daily", "secrets"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND path = $2"))
                        .bind(tenant)
                        .bind(path)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            }

            async fn count_versions(
                c: &mut <$db as sqlx::Database>::Connection,
                tenant: &str,
                path: &str,
            ) -> std::result::Result<i64, sqlx::Error> {
                sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions WHERE tenant_id = $1 AND path = $2")
                    .bind(tenant)
                    .bind(path)
                    .fetch_one(&mut *c)
                    .await
            }

            fn policy_from_row(r: &$row) -> std::result::Result<PolicyRow, sqlx::Error> {
                Ok(PolicyRow {
                    tenant_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    description: r.try_get(3)?,
                    scope: r.try_get(4)?,
                    rules: r.try_get(5)?,
                    is_active: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    updated_at: r.try_get(8)?,
                    created_by: r.try_get(9)?,
                    updated_by: r.try_get(10)?,
                    binding_count: r.try_get(11)?,
                })
            }

            fn binding_from_row(r: &$row) -> std::result::Result<BindingRow, sqlx::Error> {
                Ok(BindingRow {
                    tenant_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    policy_id: r.try_get(2)?,
                    identity_type: r.try_get(3)?,
                    identity_id: r.try_get(4)?,
                    expires_at: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                    created_by: r.try_get(7)?,
                })
            }

            fn secret_policy_from_row(r: &$row) -> std::result::Result<SecretPolicyRow, sqlx::Error> {
                Ok(SecretPolicyRow {
                    tenant_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    description: r.try_get(3)?,
                    policy_type: r.try_get(4)?,
                    fields: r.try_get(5)?,
                    is_active: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    updated_at: r.try_get(8)?,
                    created_by: r.try_get(9)?,
                })
            }

            async fn bump_policy_version(
                c: &mut <$db as sqlx::Database>::Connection,
            ) -> std::result::Result<(), sqlx::Error> {
                sqlx::query("UPDATE policy_version SET version = version + 1 WHERE id = 1").execute(&mut *c).await?;
                Ok(())
            }

            async fn apply_policy_op(
                c: &mut <$db as sqlx::Database>::Connection,
                op: &WriteOp,
            ) -> std::result::Result<std::result::Result<OpOutcome, OpError>, sqlx::Error> {
                match op {
                    WriteOp::PutPolicy { row, replace: false, .. } => {
                        sqlx::query(
                            "INSERT INTO policies (tenant_id, id, name, description, scope, rules, is_active, created_at, \
                             updated_at, created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        )
                        .bind(&row.tenant_id).bind(&row.id).bind(&row.name).bind(&row.description).bind(&row.scope)
                        .bind(&row.rules).bind(row.is_active).bind(row.created_at).bind(row.updated_at)
                        .bind(&row.created_by).bind(&row.updated_by)
                        .execute(&mut *c).await?;
                    }
                    WriteOp::PutPolicy { row, replace: true, .. } => {
                        let n = sqlx::query(
                            "UPDATE policies SET name = $3, description = $4, rules = $5, is_active = $6, updated_at = $7, \
                             updated_by = $8 WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(&row.tenant_id).bind(&row.id).bind(&row.name).bind(&row.description).bind(&row.rules)
                        .bind(row.is_active).bind(row.updated_at).bind(&row.updated_by)
                        .execute(&mut *c).await?.rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::Missing("policy_not_found")));
                        }
                    }
                    WriteOp::DeletePolicy { tenant_id, id, force, .. } => {
                        let bound: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM policy_bindings WHERE tenant_id = $1 AND policy_id = $2",
                        )
                        .bind(tenant_id).bind(id).fetch_one(&mut *c).await?;
                        if bound > 0 && !force {
                            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM policies WHERE tenant_id = $1 AND id = $2")
                                .bind(tenant_id).bind(id).fetch_optional(&mut *c).await?;
                            return Ok(Err(if exists.is_some() { OpError::InUse } else { OpError::Missing("policy_not_found") }));
                        }
                        let n = sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant_id).bind(id).execute(&mut *c).await?.rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::Missing("policy_not_found")));
                        }
                        sqlx::query("DELETE FROM policy_bindings WHERE tenant_id = $1 AND policy_id = $2")
                            .bind(tenant_id).bind(id).execute(&mut *c).await?;
                    }
                    WriteOp::InsertBinding { row, .. } => {
                        let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM policies WHERE tenant_id = $1 AND id = $2")
                            .bind(&row.tenant_id).bind(&row.policy_id).fetch_optional(&mut *c).await?;
                        if exists.is_none() {
                            return Ok(Err(OpError::Missing("policy_not_found")));
                        }
                        sqlx::query(
                            "INSERT INTO policy_bindings (tenant_id, id, policy_id, identity_type, identity_id, expires_at, \
                             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&row.tenant_id).bind(&row.id).bind(&row.policy_id).bind(&row.identity_type)
                        .bind(&row.identity_id).bind(row.expires_at).bind(row.created_at).bind(&row.created_by)
                        .execute(&mut *c).await?;
                    }
                    WriteOp::DeleteBinding { tenant_id, policy_id, id, .. } => {
                        let n = sqlx::query("DELETE FROM policy_bindings WHERE tenant_id = $1 AND policy_id = $2 AND id = $3")
                            .bind(tenant_id).bind(policy_id).bind(id).execute(&mut *c).await?.rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::Missing("binding_not_found")));
                        }
                    }
                    WriteOp::PutSecretPolicy { row, replace: false, .. } => {
                        sqlx::query(
                            "INSERT INTO secret_policies (tenant_id, id, name, description, policy_type, fields, is_active, \
                             created_at, updated_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .bind(&row.tenant_id).bind(&row.id).bind(&row.name).bind(&row.description).bind(&row.policy_type)
                        .bind(&row.fields).bind(row.is_active).bind(row.created_at).bind(row.updated_at).bind(&row.created_by)
                        .execute(&mut *c).await?;
                        return Ok(Ok(OpOutcome::Done));
                    }
                    WriteOp::PutSecretPolicy { row, replace: true, .. } => {
                        let n = sqlx::query(
                            "UPDATE secret_policies SET name = $3, description = $4, policy_type = $5, fields = $6, \
                             is_active = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(&row.tenant_id).bind(&row.id).bind(&row.name).bind(&row.description).bind(&row.policy_type)
                        .bind(&row.fields).bind(row.is_active).bind(row.updated_at)
                        .execute(&mut *c).await?.rows_affected();
                        return Ok(if n == 0 { Err(OpError::Missing("secret_policy_not_found")) } else { Ok(OpOutcome::Done) });
                    }
                    WriteOp::DeleteSecretPolicy { tenant_id, id, .. } => {
                        let n = sqlx::query("DELETE FROM secret_policies WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant_id).bind(id).execute(&mut *c).await?.rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::Missing("secret_policy_not_found")));
                        }
                        sqlx::query("UPDATE secrets SET secret_policy_id = NULL WHERE tenant_id = $1 AND secret_policy_id = $2")
                            .bind(tenant_id).bind(id).execute(&mut *c).await?;
                        return Ok(Ok(OpOutcome::Done));
                    }
                    WriteOp::SetSecretPolicy { tenant_id, path, secret_policy_id, .. } => {
                        if let Some(sp) = secret_policy_id {
                            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM secret_policies WHERE tenant_id = $1 AND id = $2")
                                .bind(tenant_id).bind(sp).fetch_optional(&mut *c).await?;
                            if exists.is_none() {
                                return Ok(Err(OpError::Missing("secret_policy_not_found")));
                            }
                        }
                        let n = sqlx::query(
                            "UPDATE secrets SET secret_policy_id = $3 WHERE tenant_id = $1 AND path = $2 AND deleted_at IS NULL",
                        )
                        .bind(tenant_id).bind(path).bind(secret_policy_id).execute(&mut *c).await?.rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::NotFound));
                        }
                        return Ok(Ok(OpOutcome::Done));
                    }
                    _ => return Ok(Err(OpError::Store("not a policy operation".into()))),
                }
                Self::bump_policy_version(c).await?;
                Ok(Ok(OpOutcome::Done))
            }

            async fn apply_one(
                c: &mut <$db as sqlx::Database>::Connection,
                op: &WriteOp,
            ) -> std::result::Result<std::result::Result<OpOutcome, OpError>, sqlx::Error> {
                match op {
                    WriteOp::Audit(_) => Ok(Ok(OpOutcome::Audited)),
                    WriteOp::PutSecret(p) => Self::put_secret(c, p).await,
                    WriteOp::UpdateMetadata(u) => Self::update_metadata(c, u).await,
                    WriteOp::DeleteSecret { tenant_id, path, by, now, recoverable_until, .. } => {
                        match Self::lock_secret(c, tenant_id, path).await? {
                            Some(s) if s.deleted_at.is_none() => {}
                            _ => return Ok(Err(OpError::NotFound)),
                        }
                        sqlx::query(
                            "UPDATE secrets SET deleted_at = $3, deleted_by = $4, recoverable_until = $5 \
                             WHERE tenant_id = $1 AND path = $2",
                        )
                        .bind(tenant_id)
                        .bind(path)
                        .bind(now)
                        .bind(by)
                        .bind(recoverable_until)
                        .execute(&mut *c)
                        .await?;
                        Self::history_push(c, tenant_id, path, "delete", None, by, *now).await?;
                        let version_count = Self::count_versions(c, tenant_id, path).await?;
                        Ok(Ok(OpOutcome::Deleted { version_count }))
                    }
                    WriteOp::DeleteVersion { tenant_id, path, version, by, now, .. } => {
                        match Self::lock_secret(c, tenant_id, path).await? {
                            Some(s) if s.deleted_at.is_none() => {}
                            _ => return Ok(Err(OpError::NotFound)),
                        }
                        let n = sqlx::query(
                            "UPDATE secret_versions SET deleted_at = $4, deleted_by = $5 \
                             WHERE tenant_id = $1 AND path = $2 AND version = $3 AND deleted_at IS NULL",
                        )
                        .bind(tenant_id)
                        .bind(path)
                        .bind(version)
                        .bind(now)
                        .bind(by)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::VersionNotFound));
                        }
                        Self::history_push(c, tenant_id, path, "delete_version", Some(*version), by, *now).await?;
                        let version_count = Self::count_versions(c, tenant_id, path).await?;
                        Ok(Ok(OpOutcome::Deleted { version_count }))
                    }
                    WriteOp::HardDelete { tenant_id, path, .. } => {
                        if Self::lock_secret(c, tenant_id, path).await?.is_none() {
                            return Ok(Err(OpError::NotFound));
                        }
                        let version_count = Self::count_versions(c, tenant_id, path).await?;
                        Self::purge(c, tenant_id, path).await?;
                        Ok(Ok(OpOutcome::Deleted { version_count }))
                    }
                    WriteOp::Identity { op, .. } => Self::apply_identity(c, op).await,
                    WriteOp::PutPolicy { .. }
                    | WriteOp::DeletePolicy { .. }
                    | WriteOp::InsertBinding { .. }
                    | WriteOp::DeleteBinding { .. }
                    | WriteOp::PutSecretPolicy { .. }
                    | WriteOp::DeleteSecretPolicy { .. }
                    | WriteOp::SetSecretPolicy { .. } => Self::apply_policy_op(c, op).await,
                    WriteOp::InsertToken { row, .. } => {
                        Self::insert_token_row(c, row).await?;
                        Ok(Ok(OpOutcome::Done))
                    }
                    WriteOp::RevokeToken { tenant_id, token_id, owner, now, .. } => {
                        let n = sqlx::query(
                            "UPDATE tokens SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL \
                             AND ($4 IS NULL OR identity_id = $4)",
                        )
                        .bind(tenant_id)
                        .bind(token_id)
                        .bind(now)
                        .bind(owner)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::NotFound));
                        }
                        Ok(Ok(OpOutcome::Done))
                    }
                    WriteOp::CreateServiceAccount { account, secret, .. } => {
                        let i = &account.identity;
                        let exists: Option<String> = sqlx::query_scalar(
                            "SELECT id FROM identities WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(&i.tenant_id)
                        .bind(&i.id)
                        .fetch_optional(&mut *c)
                        .await?;
                        if exists.is_some() {
                            return Ok(Err(OpError::AlreadyExists));
                        }
                        sqlx::query(
                            "INSERT INTO identities (tenant_id, id, identity_type, display_name, roles, groups_json, scopes, created_at, disabled_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(&i.tenant_id)
                        .bind(&i.id)
                        .bind(&i.identity_type)
                        .bind(&i.display_name)
                        .bind(&i.roles)
                        .bind(&i.groups)
                        .bind(&i.scopes)
                        .bind(i.created_at)
                        .bind(i.disabled_at)
                        .execute(&mut *c)
                        .await?;
                        sqlx::query(
                            "INSERT INTO service_accounts (tenant_id, identity_id, client_id, description, created_at, created_by) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(&i.tenant_id)
                        .bind(&i.id)
                        .bind(&account.client_id)
                        .bind(&account.description)
                        .bind(i.created_at)
                        .bind(&account.created_by)
                        .execute(&mut *c)
                        .await?;
                        Self::insert_client_secret(c, secret).await?;
                        Ok(Ok(OpOutcome::Done))
                    }
                    WriteOp::DisableServiceAccount { tenant_id, identity_id, now, .. } => {
                        let n = sqlx::query(
                            "UPDATE identities SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2 \
                             AND identity_type = 'service_account' AND disabled_at IS NULL",
                        )
                        .bind(tenant_id)
                        .bind(identity_id)
                        .bind(now)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::NotFound));
                        }
                        Ok(Ok(OpOutcome::Done))
                    }
                    WriteOp::RotateClientSecret { tenant_id, identity_id, secret, old_expire_at, .. } => {
                        let live: Option<String> = sqlx::query_scalar(
                            "SELECT s.client_id FROM service_accounts s JOIN identities i \
                             ON i.tenant_id = s.tenant_id AND i.id = s.identity_id \
                             WHERE s.tenant_id = $1 AND s.identity_id = $2 AND s.client_id = $3 AND i.disabled_at IS NULL",
                        )
                        .bind(tenant_id)
                        .bind(identity_id)
                        .bind(&secret.client_id)
                        .fetch_optional(&mut *c)
                        .await?;
                        if live.is_none() {
                            return Ok(Err(OpError::NotFound));
                        }
                        sqlx::query(
                            "UPDATE client_secrets SET expires_at = $3 WHERE tenant_id = $1 AND client_id = $2 \
                             AND (expires_at IS NULL OR expires_at > $3)",
                        )
                        .bind(tenant_id)
                        .bind(&secret.client_id)
                        .bind(old_expire_at)
                        .execute(&mut *c)
                        .await?;
                        Self::insert_client_secret(c, secret).await?;
                        Ok(Ok(OpOutcome::Done))
                    }
                    WriteOp::Restore { tenant_id, path, version, by, now, .. } => {
                        let Some(s) = Self::lock_secret(c, tenant_id, path).await? else {
                            return Ok(Err(OpError::NotFound));
                        };
                        match version {
                            None => {
                                if s.deleted_at.is_none() {
                                    return Ok(Ok(OpOutcome::Updated(s)));
                                }
                                if s.recoverable_until.is_some_and(|u| u < *now) {
                                    return Ok(Err(OpError::NotFound));
                                }
                                sqlx::query(
                                    "UPDATE secrets SET deleted_at = NULL, deleted_by = NULL, recoverable_until = NULL, \
                                     restored_at = $3, restored_by = $4 WHERE tenant_id = $1 AND path = $2",
                                )
                                .bind(tenant_id)
                                .bind(path)
                                .bind(now)
                                .bind(by)
                                .execute(&mut *c)
                                .await?;
                                Self::history_push(c, tenant_id, path, "restore", None, by, *now).await?;
                            }
                            Some(v) => {
                                if s.deleted_at.is_some() {
                                    return Ok(Err(OpError::NotFound));
                                }
                                let exists: Option<Option<i64>> = sqlx::query_scalar(
                                    "SELECT deleted_at FROM secret_versions WHERE tenant_id = $1 AND path = $2 AND version = $3",
                                )
                                .bind(tenant_id)
                                .bind(path)
                                .bind(v)
                                .fetch_optional(&mut *c)
                                .await?;
                                match exists {
                                    None => return Ok(Err(OpError::VersionNotFound)),
                                    Some(None) => {}
                                    Some(Some(_)) => {
                                        sqlx::query(
                                            "UPDATE secret_versions SET deleted_at = NULL, deleted_by = NULL, restored_at = $4, \
                                             restored_by = $5 WHERE tenant_id = $1 AND path = $2 AND version = $3",
                                        )
                                        .bind(tenant_id)
                                        .bind(path)
                                        .bind(v)
                                        .bind(now)
                                        .bind(by)
                                        .execute(&mut *c)
                                        .await?;
                                        Self::history_push(c, tenant_id, path, "restore_version", Some(*v), by, *now).await?;
                                    }
                                }
                            }
                        }
                        match Self::lock_secret(c, tenant_id, path).await? {
                            Some(s) => Ok(Ok(OpOutcome::Updated(s))),
                            None => Ok(Err(OpError::NotFound)),
                        }
                    }
                }
            }

            /// Appends entries to each tenant's hash chain. `heads` caches chain heads for the batch; the
            /// rows go in with multi-row INSERTs so a commit costs a few statements, not one per entry.
            async fn append_audit(
                c: &mut <$db as sqlx::Database>::Connection,
                entries: &[AuditEntry],
                failure: Option<&OpError>,
                batch: &mut AuditBatch,
                cache: Option<&parking_lot::Mutex<HashMap<String, Head>>>,
            ) -> std::result::Result<(), sqlx::Error> {
                let AuditBatch { heads, rows, access } = batch;
                for e in entries {
                    let mut e = sanitize(e);
                    if let Some(err) = failure {
                        let (code, status) = err.code();
                        e.success = false;
                        e.status = status;
                        e.error_code = Some(code.to_owned());
                    }
                    if !heads.contains_key(&e.tenant_id) {
                        if let Some(h) = cache.and_then(|c| c.lock().get(&e.tenant_id).cloned()) {
                            heads.insert(e.tenant_id.clone(), h);
                        }
                    }
                    if !heads.contains_key(&e.tenant_id) {
                        let sql = format!("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 {}", $for_update);
                        let head: Option<(i64, Vec<u8>)> =
                            sqlx::query_as(&sql).bind(&e.tenant_id).fetch_optional(&mut *c).await?;
                        heads.insert(e.tenant_id.clone(), head.unwrap_or((0, GENESIS.to_vec())));
                    }
                    let Some(head) = heads.get_mut(&e.tenant_id) else { continue };
                    let seq = head.0 + 1;
                    let hash = e.chain_hash(seq, &head.1);
                    *head = (seq, hash.to_vec());
                    if e.success && e.action == "read" {
                        if let Some(p) = &e.secret_path {
                            let slot = access.entry((e.tenant_id.clone(), p.clone(), day_of(e.timestamp))).or_insert((0, 0));
                            slot.0 += 1;
                            slot.1 = slot.1.max(e.timestamp);
                        }
                    }
                    rows.push((e, seq, hash));
                }
                Ok(())
            }

            /// Inserts the batch's chained audit rows.
            async fn flush_audit(
                c: &mut <$db as sqlx::Database>::Connection,
                rows: &[(AuditEntry, i64, [u8; 32])],
            ) -> std::result::Result<(), sqlx::Error> {
                const COLS: usize = 17;
                const PER_STATEMENT: usize = 64;
                for chunk in rows.chunks(PER_STATEMENT) {
                    let values: Vec<String> = (0..chunk.len())
                        .map(|r| format!("({})", placeholders(r * COLS + 1, COLS)))
                        .collect();
                    let sql = format!("INSERT INTO audit_log ({AUDIT_COLS}, seq, hash) VALUES {}", values.join(", "));
                    let mut q = sqlx::query(&sql);
                    for (e, seq, hash) in chunk {
                        q = q
                            .bind(&e.id)
                            .bind(&e.tenant_id)
                            .bind(e.timestamp)
                            .bind(&e.action)
                            .bind(&e.identity_type)
                            .bind(&e.identity_id)
                            .bind(&e.secret_path)
                            .bind(&e.source_ip)
                            .bind(&e.user_agent)
                            .bind(e.success)
                            .bind(i64::from(e.status))
                            .bind(&e.error_code)
                            .bind(e.duration_ms)
                            .bind(&e.request_id)
                            .bind(&e.extra_data)
                            .bind(*seq)
                            .bind(hash.as_slice());
                    }
                    q.execute(&mut *c).await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $name {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn groups(&self, op: &WriteOp) -> bool {
                self.fast.is_some() && crate::sqlite_writer::SqliteWriter::supports(op)
            }

            fn pool_stats(&self) -> (u32, u32) {
                let (leased, leased_idle) = self.leases.stats();
                let size = self.read.size() + self.write.size() + leased;
                let idle = self.read.num_idle() + self.write.num_idle() + leased_idle;
                (size, u32::try_from(idle).unwrap_or(u32::MAX))
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn close(&self) {
                self.leases.close().await;
                self.write.close().await;
                self.read.close().await;
            }

            async fn get_meta(&self, key: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM system_meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.write)
                    .await?)
            }

            async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO system_meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn insert_partner(&self, p: &PartnerRow) -> Result<()> {
                sqlx::query("INSERT INTO partners (id, name, wrapped_key, created_at, slug, region, status) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&p.id)
                    .bind(&p.name)
                    .bind(&p.wrapped_key)
                    .bind(p.created_at)
                    .bind(&p.slug)
                    .bind(&p.region)
                    .bind(&p.status)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn get_partner(&self, id: &str) -> Result<Option<PartnerRow>> {
                let r = sqlx::query(&format!("SELECT {} FROM partners WHERE id = $1", crate::identity::PARTNER_COLS))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(match r {
                    Some(r) => Some(Self::partner_from_row(&r)?),
                    None => None,
                })
            }

            async fn insert_tenant(&self, t: &TenantRow) -> Result<()> {
                let mut tx = self.write.begin().await?;
                Self::insert_tenant_row(&mut *tx, t).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_tenant(&self, id: &str) -> Result<Option<TenantRow>> {
                let r = sqlx::query(&format!("SELECT {} FROM tenants WHERE id = $1", crate::identity::TENANT_COLS))
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(match r {
                    Some(r) => Some(Self::tenant_from_row(&r)?),
                    None => None,
                })
            }

            async fn insert_identity(&self, i: &IdentityRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO identities (tenant_id, id, identity_type, display_name, roles, groups_json, scopes, created_at, disabled_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&i.tenant_id)
                .bind(&i.id)
                .bind(&i.identity_type)
                .bind(&i.display_name)
                .bind(&i.roles)
                .bind(&i.groups)
                .bind(&i.scopes)
                .bind(i.created_at)
                .bind(i.disabled_at)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn get_identity(&self, tenant_id: &str, id: &str) -> Result<Option<IdentityRow>> {
                let r = sqlx::query(
                    "SELECT tenant_id, id, identity_type, display_name, roles, groups_json, scopes, created_at, disabled_at \
                     FROM identities WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
                Ok(match r {
                    Some(r) => Some(IdentityRow {
                        tenant_id: r.try_get(0)?,
                        id: r.try_get(1)?,
                        identity_type: r.try_get(2)?,
                        display_name: r.try_get(3)?,
                        roles: r.try_get(4)?,
                        groups: r.try_get(5)?,
                        scopes: r.try_get(6)?,
                        created_at: r.try_get(7)?,
                        disabled_at: r.try_get(8)?,
                    }),
                    None => None,
                })
            }

            async fn insert_token(&self, t: &TokenRow) -> Result<()> {
                let mut c = self.write.acquire().await?;
                Self::insert_token_row(&mut c, t).await?;
                Ok(())
            }

            async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>> {
                let r = sqlx::query(
                    "SELECT id, token_hash, tenant_id, identity_id, name, scopes, created_at, expires_at, revoked_at, created_by \
                     FROM tokens WHERE token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.read)
                .await?;
                Ok(match r {
                    Some(r) => Some(TokenRow {
                        id: r.try_get(0)?,
                        token_hash: r.try_get(1)?,
                        tenant_id: r.try_get(2)?,
                        identity_id: r.try_get(3)?,
                        name: r.try_get(4)?,
                        scopes: r.try_get(5)?,
                        created_at: r.try_get(6)?,
                        expires_at: r.try_get(7)?,
                        revoked_at: r.try_get(8)?,
                        created_by: r.try_get(9)?,
                    }),
                    None => None,
                })
            }

            async fn list_tokens(&self, tenant_id: &str, identity_id: Option<&str>) -> Result<Vec<TokenRow>> {
                let rows = sqlx::query(
                    "SELECT id, tenant_id, identity_id, name, scopes, created_at, expires_at, revoked_at, created_by \
                     FROM tokens WHERE tenant_id = $1 AND ($2 IS NULL OR identity_id = $2) ORDER BY created_at DESC LIMIT 1000",
                )
                .bind(tenant_id)
                .bind(identity_id)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(TokenRow {
                        id: r.try_get(0)?,
                        token_hash: vec![],
                        tenant_id: r.try_get(1)?,
                        identity_id: r.try_get(2)?,
                        name: r.try_get(3)?,
                        scopes: r.try_get(4)?,
                        created_at: r.try_get(5)?,
                        expires_at: r.try_get(6)?,
                        revoked_at: r.try_get(7)?,
                        created_by: r.try_get(8)?,
                    });
                }
                Ok(out)
            }

            async fn get_secret(&self, tenant_id: &str, path: &str) -> Result<Option<SecretRow>> {
                if self.fast.is_some() {
                    // Through the secret cache (a write checks the current version here).
                    return Ok(self.get_secret_value(tenant_id, path, None).await?.map(|(s, _)| s));
                }
                let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE tenant_id = $1 AND path = $2");
                let q = sqlx::query(&sql).bind(tenant_id).bind(path);
                let r = self.fetch_rows(q).await?.into_iter().next();
                Ok(r.map(|r| Self::secret_from_row(&r, 0)).transpose()?)
            }

            async fn get_secret_value(
                &self,
                tenant_id: &str,
                path: &str,
                version: Option<i64>,
            ) -> Result<Option<(SecretRow, Option<VersionRow>)>> {
                let mut rows = self.get_secret_values(tenant_id, std::slice::from_ref(&path.to_owned()), version).await?;
                Ok(rows.pop())
            }

            async fn get_secret_values(
                &self,
                tenant_id: &str,
                paths: &[String],
                version: Option<i64>,
            ) -> Result<Vec<(SecretRow, Option<VersionRow>)>> {
                // SQLite: the newest versions come from the cache where they are there; only misses are read.
                let (mut hits, mut misses, mut epoch) = (Vec::new(), Vec::new(), None);
                let paths = match (&self.fast, version) {
                    (Some(fast), None) => {
                        epoch = Some(fast.cache().epoch());
                        for p in paths {
                            match fast.cache().get(tenant_id, p) {
                                Some(hit) => hits.push(hit),
                                None => misses.push(p.clone()),
                            }
                        }
                        &misses[..]
                    }
                    _ => paths,
                };
                if paths.is_empty() {
                    return Ok(hits);
                }
                let rows = self.secret_value_rows(tenant_id, paths, version).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let secret = Self::secret_from_row(&r, 0)?;
                    let has_version: Option<i64> = r.try_get(N_SECRET_COLS)?;
                    let v = match has_version {
                        Some(_) => Some(Self::version_from_row(&r, N_SECRET_COLS)?),
                        None => None,
                    };
                    out.push((secret, v));
                }
                if let (Some(fast), Some(epoch)) = (&self.fast, epoch) {
                    fast.cache().fill(epoch, out.iter().cloned());
                }
                out.append(&mut hits);
                Ok(out)
            }

            async fn list_versions(&self, tenant_id: &str, path: &str) -> Result<Vec<VersionRow>> {
                let rows = sqlx::query(
                    "SELECT version, created_at, created_by, deleted_at, deleted_by, restored_at, restored_by \
                     FROM secret_versions WHERE tenant_id = $1 AND path = $2 ORDER BY version DESC",
                )
                .bind(tenant_id)
                .bind(path)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(VersionRow {
                        version: r.try_get(0)?,
                        sealed: SealedValue { wrapped_dek: vec![], ciphertext: vec![] },
                        created_at: r.try_get(1)?,
                        created_by: r.try_get(2)?,
                        deleted_at: r.try_get(3)?,
                        deleted_by: r.try_get(4)?,
                        restored_at: r.try_get(5)?,
                        restored_by: r.try_get(6)?,
                    });
                }
                Ok(out)
            }

            async fn history(&self, tenant_id: &str, path: &str) -> Result<Vec<HistoryRow>> {
                let rows = sqlx::query(
                    "SELECT seq, action, version, identity_id, at FROM secret_history \
                     WHERE tenant_id = $1 AND path = $2 ORDER BY seq",
                )
                .bind(tenant_id)
                .bind(path)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(HistoryRow {
                        seq: r.try_get(0)?,
                        action: r.try_get(1)?,
                        version: r.try_get(2)?,
                        identity_id: r.try_get(3)?,
                        at: r.try_get(4)?,
                    });
                }
                Ok(out)
            }

            async fn list_secrets(&self, q: &ListQuery<'_>) -> Result<Vec<SecretRow>> {
                if let Some(fast) = &self.fast {
                    return fast
                        .list_secrets(crate::sqlite_writer::OwnedList {
                            tenant_id: q.tenant_id.to_owned(),
                            prefix: q.prefix.to_owned(),
                            upper: scaivault_core::path::prefix_upper_bound(q.prefix),
                            after: q.after.unwrap_or("").to_owned(),
                            limit: q.limit,
                            expiring_before: q.expiring_before,
                            include_deleted: q.include_deleted,
                        })
                        .await;
                }
                let mut sql = format!(
                    "SELECT {SECRET_COLS} FROM secrets WHERE tenant_id = $1 AND path >= $2 AND path < $3 AND path > $4"
                );
                if !q.include_deleted {
                    sql.push_str(" AND deleted_at IS NULL");
                }
                if q.expiring_before.is_some() {
                    sql.push_str(" AND expires_at IS NOT NULL AND expires_at <= $6");
                }
                sql.push_str(" ORDER BY path LIMIT $5");
                let upper = scaivault_core::path::prefix_upper_bound(q.prefix);
                let mut query = sqlx::query(&sql)
                    .bind(q.tenant_id)
                    .bind(q.prefix)
                    .bind(upper)
                    .bind(q.after.unwrap_or(""))
                    .bind(q.limit);
                if let Some(e) = q.expiring_before {
                    query = query.bind(e);
                }
                let rows = query.fetch_all(&self.read).await?;
                rows.iter().map(|r| Self::secret_from_row(r, 0).map_err(Into::into)).collect()
            }

            async fn version_counts(&self, tenant_id: &str, paths: &[String]) -> Result<Vec<(String, i64)>> {
                if paths.is_empty() {
                    return Ok(vec![]);
                }
                let sql = format!(
                    "SELECT path, COUNT(*) FROM secret_versions WHERE tenant_id = $1 AND deleted_at IS NULL \
                     AND path IN ({}) GROUP BY path",
                    placeholders(2, paths.len())
                );
                let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(tenant_id);
                for p in paths {
                    q = q.bind(p);
                }
                Ok(q.fetch_all(&self.read).await?)
            }

            async fn access_stats(&self, tenant_id: &str, paths: &[String], since_day: i64) -> Result<Vec<AccessStats>> {
                self.audit_settled().await?;
                if paths.is_empty() {
                    return Ok(vec![]);
                }
                let sql = format!(
                    "SELECT path, MAX(last_at), CAST(SUM(CASE WHEN day >= $2 THEN reads ELSE 0 END) AS BIGINT) FROM secret_access_daily \
                     WHERE tenant_id = $1 AND path IN ({}) GROUP BY path",
                    placeholders(3, paths.len())
                );
                let mut q = sqlx::query(&sql).bind(tenant_id).bind(since_day);
                for p in paths {
                    q = q.bind(p);
                }
                let rows = q.fetch_all(&self.read).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let reads: Option<i64> = r.try_get(2)?;
                    out.push(AccessStats { path: r.try_get(0)?, last_accessed_at: r.try_get(1)?, reads: reads.unwrap_or(0) });
                }
                Ok(out)
            }

            async fn audit_count(&self, tenant_id: &str) -> Result<i64> {
                self.audit_settled().await?;
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_one(&self.read)
                    .await?)
            }

            async fn audit_tail(&self, tenant_id: &str, limit: i64) -> Result<Vec<AuditEntry>> {
                self.audit_settled().await?;
                let sql = format!("SELECT {AUDIT_COLS} FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT $2");
                let rows = sqlx::query(&sql).bind(tenant_id).bind(limit).fetch_all(&self.read).await?;
                rows.iter().map(|r| Self::audit_from_row(r).map_err(Into::into)).collect()
            }


            async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
                self.audit_settled().await?;
                let (cond, args) = audit_where(q, true);
                let sql = format!(
                    "SELECT {AUDIT_COLS}, seq, hash FROM audit_log WHERE {cond} ORDER BY seq DESC LIMIT {}",
                    q.limit.clamp(1, 10_000)
                );
                let mut query = sqlx::query(&sql);
                for a in args {
                    query = match a {
                        Arg::S(v) => query.bind(v),
                        Arg::I(v) => query.bind(v),
                        Arg::B(v) => query.bind(v),
                    };
                }
                let rows = query.fetch_all(&self.read).await?;
                rows.iter()
                    .map(|r| Ok(AuditRecord { entry: Self::audit_from_row(r)?, seq: r.try_get(15)?, hash: r.try_get(16)? }))
                    .collect()
            }

            async fn audit_stats(&self, q: &AuditQuery) -> Result<AuditStats> {
                self.audit_settled().await?;
                let (cond, args) = audit_where(q, false);
                let mut stats = AuditStats::default();
                let totals = format!(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN success THEN 1 ELSE 0 END), 0) AS BIGINT), MIN(ts), MAX(ts), \
                     COUNT(DISTINCT CASE WHEN identity_id <> '' THEN identity_id END), \
                     COUNT(DISTINCT CASE WHEN secret_path <> '' THEN secret_path END) FROM audit_log WHERE {cond}"
                );
                let groups = [
                    ("action", &mut stats.by_action),
                    ("identity_id", &mut stats.by_identity),
                    ("secret_path", &mut stats.by_path),
                    ("source_ip", &mut stats.by_source_ip),
                ];
                fn bind_all<'q>(sql: &'q str, args: &[Arg]) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                    let mut query = sqlx::query(sql);
                    for a in args {
                        query = match a {
                            Arg::S(v) => query.bind(v.clone()),
                            Arg::I(v) => query.bind(*v),
                            Arg::B(v) => query.bind(*v),
                        };
                    }
                    query
                }
                let r = bind_all(&totals, &args).fetch_one(&self.read).await?;
                stats.total = r.try_get(0)?;
                stats.successful = r.try_get(1)?;
                stats.first_at = r.try_get(2)?;
                stats.last_at = r.try_get(3)?;
                stats.unique_identities = r.try_get(4)?;
                stats.unique_paths = r.try_get(5)?;
                for (col, out) in groups {
                    let sql = format!(
                        "SELECT {col}, COUNT(*) FROM audit_log WHERE {cond} AND {col} IS NOT NULL AND {col} <> '' \
                         GROUP BY {col} ORDER BY COUNT(*) DESC, {col} LIMIT {AUDIT_GROUP_LIMIT}"
                    );
                    for r in bind_all(&sql, &args).fetch_all(&self.read).await? {
                        out.push((r.try_get(0)?, r.try_get(1)?));
                    }
                }
                Ok(stats)
            }

            async fn audit_chain(&self, tenant_id: &str, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
                self.audit_settled().await?;
                let sql = format!(
                    "SELECT {AUDIT_COLS}, seq, hash FROM audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                );
                let rows = sqlx::query(&sql).bind(tenant_id).bind(after_seq).bind(limit).fetch_all(&self.read).await?;
                rows.iter()
                    .map(|r| Ok(AuditRecord { entry: Self::audit_from_row(r)?, seq: r.try_get(15)?, hash: r.try_get(16)? }))
                    .collect()
            }

            async fn audit_head(&self, tenant_id: &str) -> Result<Option<(i64, Vec<u8>)>> {
                self.audit_settled().await?;
                Ok(sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(&self.read)
                    .await?)
            }

            async fn list_policies(&self, q: &PolicyQuery<'_>) -> Result<Vec<PolicyRow>> {
                let first = q.owners.first().map(String::as_str).unwrap_or("");
                let second = q.owners.get(1).map(String::as_str).unwrap_or(first);
                let sql = format!(
                    "SELECT {POLICY_COLS} FROM policies p WHERE tenant_id IN ($1, $2) AND id > $3 {} ORDER BY id LIMIT $4",
                    if q.include_inactive { "" } else { "AND is_active" }
                );
                let rows = sqlx::query(&sql)
                    .bind(first).bind(second).bind(q.after.unwrap_or("")).bind(q.limit)
                    .fetch_all(&self.read).await?;
                rows.iter().map(|r| Self::policy_from_row(r).map_err(Into::into)).collect()
            }

            async fn get_policy(&self, owners: &[String], id: &str) -> Result<Option<PolicyRow>> {
                let first = owners.first().map(String::as_str).unwrap_or("");
                let second = owners.get(1).map(String::as_str).unwrap_or(first);
                let sql = format!("SELECT {POLICY_COLS} FROM policies p WHERE tenant_id IN ($1, $2) AND id = $3");
                let r = sqlx::query(&sql).bind(first).bind(second).bind(id).fetch_optional(&self.read).await?;
                Ok(r.map(|r| Self::policy_from_row(&r)).transpose()?)
            }

            async fn list_bindings(&self, tenant_id: &str, policy_id: &str) -> Result<Vec<BindingRow>> {
                let sql = format!("SELECT {BINDING_COLS} FROM policy_bindings WHERE tenant_id = $1 AND policy_id = $2 ORDER BY created_at, id");
                let rows = sqlx::query(&sql).bind(tenant_id).bind(policy_id).fetch_all(&self.read).await?;
                rows.iter().map(|r| Self::binding_from_row(r).map_err(Into::into)).collect()
            }

            async fn all_policies(&self) -> Result<(Vec<PolicyRow>, Vec<BindingRow>)> {
                // One snapshot for both, so a binding never refers to a policy version the index lacks.
                let mut tx = self.read.begin().await?;
                let sql = format!("SELECT {POLICY_COLS} FROM policies p WHERE is_active");
                let prows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
                let sql = format!("SELECT {BINDING_COLS} FROM policy_bindings");
                let brows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let p = prows.iter().map(Self::policy_from_row).collect::<std::result::Result<Vec<_>, _>>()?;
                let b = brows.iter().map(Self::binding_from_row).collect::<std::result::Result<Vec<_>, _>>()?;
                Ok((p, b))
            }

            async fn policy_version(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT version FROM policy_version WHERE id = 1")
                    .fetch_optional(&self.read).await?.unwrap_or(0))
            }

            async fn auth_epoch(&self) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT epoch FROM auth_epoch WHERE id = 1")
                    .fetch_optional(&self.read).await?.unwrap_or(0))
            }

            async fn list_secret_policies(&self, tenant_id: &str) -> Result<Vec<SecretPolicyRow>> {
                let sql = format!("SELECT {SECRET_POLICY_COLS} FROM secret_policies WHERE tenant_id = $1 ORDER BY id LIMIT 1000");
                let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.read).await?;
                rows.iter().map(|r| Self::secret_policy_from_row(r).map_err(Into::into)).collect()
            }

            async fn get_secret_policy(&self, tenant_id: &str, id: &str) -> Result<Option<SecretPolicyRow>> {
                let sql = format!("SELECT {SECRET_POLICY_COLS} FROM secret_policies WHERE tenant_id = $1 AND id = $2");
                let r = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(&self.read).await?;
                Ok(r.map(|r| Self::secret_policy_from_row(&r)).transpose()?)
            }

            async fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<std::result::Result<OpOutcome, OpError>>> {
                // SQLite: the writer thread is parked (its journal indexed) while this path commits.
                let mut _parked = None;
                if let Some(fast) = &self.fast {
                    if ops.iter().all(crate::sqlite_writer::SqliteWriter::supports) {
                        return fast.apply(ops).await;
                    }
                    _parked = Some(fast.exclusive().await?);
                }
                if let Some(results) = self.commit_audit_only(&ops).await? {
                    return Ok(results);
                }
                // PostgreSQL: secret writes go without a savepoint of their own (two round trips each),
                // new versions of existing secrets together in one statement where they can
                // (`in_place_candidates`): `put_secret` refuses before its first change, and if a write
                // fails halfway (which aborts the transaction) the batch runs again with a savepoint
                // around every operation, so that write alone fails.
                let mut guarded = $backend != "postgres";
                // PostgreSQL: one tenant's entries chain from the head this node last committed, without
                // locking the head row; the rows and the head then go in as one statement that moves the
                // head only from there. If another node moved it, the batch runs again under the lock.
                let mut hint = self.hinted_head(&ops);
                let mut conn = self.write_conn().await?;
                let (mut tx, batch, results) = loop {
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    // Heads are filled from the cache (SQLite), the hint or the database as tenants come up.
                    let mut batch = AuditBatch::default();
                    if let Some((tenant, head)) = &hint {
                        batch.heads.insert(tenant.clone(), head.clone());
                    }
                    let mut results = Vec::with_capacity(ops.len());
                    let mut failed_unguarded = false;
                    let mut in_place = HashMap::new();
                    let puts = if guarded { Vec::new() } else { Self::in_place_candidates(&ops) };
                    if !puts.is_empty() {
                        let refs: Vec<&PutSecret> = puts.iter().map(|(_, p)| *p).collect();
                        match Self::put_in_place(&mut *tx, &refs).await {
                            Ok(done) => {
                                in_place = done.into_iter().filter_map(|(n, secret)| Some((puts.get(n)?.0, secret))).collect()
                            }
                            Err(_) => failed_unguarded = true,
                        }
                    }
                    for (i, op) in ops.iter().enumerate() {
                        if failed_unguarded {
                            break;
                        }
                        if let WriteOp::Audit(entries) = op {
                            Self::append_audit(&mut *tx, entries, None, &mut batch, self.heads.as_ref()).await?;
                            results.push(Ok(OpOutcome::Audited));
                            continue;
                        }
                        let outcome = if let (WriteOp::PutSecret(p), Some(secret)) = (op, in_place.remove(&i)) {
                            Ok(OpOutcome::Put { version: p.expected_version + 1, created: false, secret })
                        } else if !guarded && matches!(op, WriteOp::PutSecret(_)) {
                            match Self::apply_one(&mut *tx, op).await {
                                Ok(Err(OpError::Store(_))) | Err(_) => {
                                    failed_unguarded = true;
                                    break;
                                }
                                Ok(outcome) => outcome,
                            }
                        } else {
                            let mut sp = tx.begin().await?;
                            match Self::apply_one(&mut *sp, op).await {
                                Ok(Ok(o)) => {
                                    sp.commit().await?;
                                    Ok(o)
                                }
                                Ok(Err(e)) => {
                                    sp.rollback().await?;
                                    Err(e)
                                }
                                Err(db) => {
                                    sp.rollback().await?;
                                    tracing::error!(site = "ST0001", error = %db, "store operation failed");
                                    Err(OpError::Store(db.to_string()))
                                }
                            }
                        };
                        Self::append_audit(
                            &mut *tx,
                            op.audit_entries(),
                            outcome.as_ref().err(),
                            &mut batch,
                            self.heads.as_ref(),
                        )
                        .await?;
                        results.push(outcome);
                    }
                    if failed_unguarded {
                        tracing::warn!(
                            site = "ST0005",
                            "a secret write failed inside a batch; running the batch again with a savepoint around every operation"
                        );
                        tx.rollback().await?;
                        guarded = true;
                        continue;
                    }
                    let Some((tenant, from)) = &hint else {
                        break (tx, batch, results);
                    };
                    if Self::commit_from_hint(&mut *tx, tenant, from, &mut batch).await? {
                        break (tx, batch, results);
                    }
                    tx.rollback().await?;
                    self.head_hints.lock().remove(tenant);
                    hint = None;
                };
                if ops.iter().zip(&results).any(|(op, r)| r.is_ok() && op.changes_auth()) {
                    sqlx::query("UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1").execute(&mut *tx).await?;
                }
                let AuditBatch { heads, rows, access } = batch;
                Self::flush_audit(&mut *tx, &rows).await?;
                // A hinted batch moved its head with its rows.
                let moved: Vec<(&String, &Head)> = if hint.is_some() { Vec::new() } else { heads.iter().collect() };
                if !moved.is_empty() {
                    let values: Vec<String> = (0..moved.len()).map(|r| format!("({})", placeholders(r * 3 + 1, 3))).collect();
                    let sql = format!(
                        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES {} \
                         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for (tenant, (seq, hash)) in &moved {
                        q = q.bind(*tenant).bind(*seq).bind(hash);
                    }
                    q.execute(&mut *tx).await?;
                }
                let access: Vec<_> = access.into_iter().collect();
                for chunk in access.chunks(200) {
                    let values: Vec<String> = (0..chunk.len()).map(|r| format!("({})", placeholders(r * 5 + 1, 5))).collect();
                    let sql = format!(
                        "INSERT INTO secret_access_daily (tenant_id, path, day, reads, last_at) VALUES {} \
                         ON CONFLICT (tenant_id, path, day) DO UPDATE SET reads = secret_access_daily.reads + excluded.reads, \
                         last_at = CASE WHEN excluded.last_at > secret_access_daily.last_at THEN excluded.last_at \
                         ELSE secret_access_daily.last_at END",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for ((tenant, path, day), (reads, last)) in chunk {
                        q = q.bind(tenant).bind(path).bind(*day).bind(*reads).bind(*last);
                    }
                    q.execute(&mut *tx).await?;
                }
                let done = tx.commit().await;
                conn.settle(done)?;
                if let Some(fast) = &self.fast {
                    fast.cache().clear();
                }
                if $backend == "postgres" {
                    self.head_hints.lock().extend(heads.iter().map(|(t, h)| (t.clone(), h.clone())));
                }
                if let Some(cache) = &self.heads {
                    cache.lock().extend(heads);
                }
                Ok(results)
            }

            async fn audit_count_matching(&self, q: &AuditQuery) -> Result<i64> {
                self.audit_settled().await?;
                let (cond, args) = audit_where(q, false);
                let sql = format!("SELECT COUNT(*) FROM audit_log WHERE {cond}");
                let mut query = sqlx::query_scalar::<_, i64>(&sql);
                for a in args {
                    query = match a {
                        Arg::S(v) => query.bind(v),
                        Arg::I(v) => query.bind(v),
                        Arg::B(v) => query.bind(v),
                    };
                }
                Ok(query.fetch_one(&self.read).await?)
            }

            async fn audit_export_page(
                &self,
                q: &AuditQuery,
                after_seq: i64,
                max_seq: i64,
                limit: i64,
            ) -> Result<Vec<ExportRecord>> {
                self.audit_settled().await?;
                let (cond, mut args) = audit_where(q, false);
                args.push(Arg::I(after_seq));
                let a = args.len();
                args.push(Arg::I(max_seq));
                let m = args.len();
                let sql = format!(
                    "SELECT {AUDIT_COLS}, seq, hash, \
                     (SELECT p.hash FROM audit_log p WHERE p.tenant_id = audit_log.tenant_id AND p.seq = audit_log.seq - 1) \
                     FROM audit_log WHERE {cond} AND seq > ${a} AND seq <= ${m} ORDER BY seq LIMIT {}",
                    limit.clamp(1, 100_000)
                );
                let mut query = sqlx::query(&sql);
                for a in args {
                    query = match a {
                        Arg::S(v) => query.bind(v),
                        Arg::I(v) => query.bind(v),
                        Arg::B(v) => query.bind(v),
                    };
                }
                let rows = query.fetch_all(&self.read).await?;
                let anchor = if rows.first().is_some() { self.audit_anchor(&q.tenant_id).await? } else { None };
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let record = AuditRecord { entry: Self::audit_from_row(r)?, seq: r.try_get(15)?, hash: r.try_get(16)? };
                    let prev: Option<Vec<u8>> = r.try_get(17)?;
                    let prev = prev.or_else(|| {
                        if record.seq == 1 {
                            Some(GENESIS.to_vec())
                        } else {
                            anchor.as_ref().filter(|a| a.0 == record.seq - 1).map(|a| a.1.clone())
                        }
                    });
                    out.push(ExportRecord { record, prev_hash: prev });
                }
                Ok(out)
            }

            async fn insert_export(&self, e: &ExportRow) -> Result<()> {
                sqlx::query(
                    "INSERT INTO audit_exports (tenant_id, id, status, format, filters, destination, created_by, created_at, \
                     started_at, completed_at, heartbeat_at, estimated_records, record_count, byte_size, sha256, object_keys, \
                     first_seq, first_prev_hash, last_seq, last_hash, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
                )
                .bind(&e.tenant_id)
                .bind(&e.id)
                .bind(&e.status)
                .bind(&e.format)
                .bind(&e.filters)
                .bind(&e.destination)
                .bind(&e.created_by)
                .bind(e.created_at)
                .bind(e.started_at)
                .bind(e.completed_at)
                .bind(e.heartbeat_at)
                .bind(e.estimated_records)
                .bind(e.record_count)
                .bind(e.byte_size)
                .bind(&e.sha256)
                .bind(&e.object_keys)
                .bind(e.first_seq)
                .bind(&e.first_prev_hash)
                .bind(e.last_seq)
                .bind(&e.last_hash)
                .bind(&e.error)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn update_export(&self, e: &ExportRow) -> Result<()> {
                sqlx::query(
                    "UPDATE audit_exports SET status = $3, started_at = $4, completed_at = $5, heartbeat_at = $6, \
                     record_count = $7, byte_size = $8, sha256 = $9, object_keys = $10, first_seq = $11, \
                     first_prev_hash = $12, last_seq = $13, last_hash = $14, error = $15 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&e.tenant_id)
                .bind(&e.id)
                .bind(&e.status)
                .bind(e.started_at)
                .bind(e.completed_at)
                .bind(e.heartbeat_at)
                .bind(e.record_count)
                .bind(e.byte_size)
                .bind(&e.sha256)
                .bind(&e.object_keys)
                .bind(e.first_seq)
                .bind(&e.first_prev_hash)
                .bind(e.last_seq)
                .bind(&e.last_hash)
                .bind(&e.error)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn get_export(&self, tenant_id: &str, id: &str) -> Result<Option<ExportRow>> {
                let sql = format!("SELECT {EXPORT_COLS} FROM audit_exports WHERE tenant_id = $1 AND id = $2");
                let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(&self.read).await?;
                row.as_ref().map(|r| Self::export_from_row(r).map_err(Into::into)).transpose()
            }

            async fn list_exports(&self, tenant_id: &str, before: Option<(i64, String)>, limit: i64) -> Result<Vec<ExportRow>> {
                let limit = limit.clamp(1, 1001);
                let rows = match before {
                    None => {
                        let sql = format!(
                            "SELECT {EXPORT_COLS} FROM audit_exports WHERE tenant_id = $1 \
                             ORDER BY created_at DESC, id DESC LIMIT {limit}"
                        );
                        sqlx::query(&sql).bind(tenant_id).fetch_all(&self.read).await?
                    }
                    Some((at, id)) => {
                        let sql = format!(
                            "SELECT {EXPORT_COLS} FROM audit_exports WHERE tenant_id = $1 \
                             AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                             ORDER BY created_at DESC, id DESC LIMIT {limit}"
                        );
                        sqlx::query(&sql).bind(tenant_id).bind(at).bind(id).fetch_all(&self.read).await?
                    }
                };
                rows.iter().map(|r| Self::export_from_row(r).map_err(Into::into)).collect()
            }

            async fn fail_stale_exports(&self, stale_before: i64, now: i64, error: &str) -> Result<u64> {
                let r = sqlx::query(
                    "UPDATE audit_exports SET status = 'failed', completed_at = $1, error = $2 \
                     WHERE status IN ('pending', 'running') AND heartbeat_at < $3",
                )
                .bind(now)
                .bind(error)
                .bind(stale_before)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected())
            }

            async fn touch_export(&self, tenant_id: &str, id: &str, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE audit_exports SET heartbeat_at = $3 \
                     WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'running')",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn audit_tenants(&self) -> Result<Vec<String>> {
                self.audit_settled().await?;
                Ok(sqlx::query_scalar("SELECT tenant_id FROM audit_heads ORDER BY tenant_id")
                    .fetch_all(&self.read)
                    .await?)
            }

            async fn audit_anchor(&self, tenant_id: &str) -> Result<Option<(i64, Vec<u8>)>> {
                self.audit_settled().await?;
                Ok(sqlx::query_as("SELECT seq, hash FROM audit_anchors WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(&self.read)
                    .await?)
            }

            async fn audit_prune(&self, tenant_id: &str, before_ts: i64, max_rows: i64, now: i64) -> Result<u64> {
                self.audit_settled().await?;
                let oldest: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT seq, ts FROM audit_log WHERE tenant_id = $1 ORDER BY seq LIMIT $2",
                )
                .bind(tenant_id)
                .bind(max_rows.max(1))
                .fetch_all(&self.read)
                .await?;
                // The longest run from the chain's start that is older than the cutoff: never leave a hole.
                let Some(last) = oldest.iter().take_while(|(_, ts)| *ts < before_ts).last().map(|r| r.0) else {
                    return Ok(0);
                };
                let mut tx = self.write.begin().await?;
                let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE tenant_id = $1 AND seq = $2")
                    .bind(tenant_id)
                    .bind(last)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(hash) = hash else {
                    // Another node pruned it meanwhile.
                    return Ok(0);
                };
                let deleted = sqlx::query("DELETE FROM audit_log WHERE tenant_id = $1 AND seq <= $2")
                    .bind(tenant_id)
                    .bind(last)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(
                    "INSERT INTO audit_anchors (tenant_id, seq, hash, pruned_at, pruned_total) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id) DO UPDATE SET \
                     hash = CASE WHEN excluded.seq > audit_anchors.seq THEN excluded.hash ELSE audit_anchors.hash END, \
                     seq = CASE WHEN excluded.seq > audit_anchors.seq THEN excluded.seq ELSE audit_anchors.seq END, \
                     pruned_at = excluded.pruned_at, pruned_total = audit_anchors.pruned_total + excluded.pruned_total",
                )
                .bind(tenant_id)
                .bind(last)
                .bind(&hash)
                .bind(now)
                .bind(i64::try_from(deleted).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(deleted)
            }

            async fn get_service_account(&self, tenant_id: &str, identity_id: &str) -> Result<Option<ServiceAccountRow>> {
                let sql = format!("{SA_SELECT} WHERE s.tenant_id = $1 AND s.identity_id = $2");
                let r = sqlx::query(&sql).bind(tenant_id).bind(identity_id).fetch_optional(&self.read).await?;
                Ok(match r {
                    Some(r) => Some(Self::service_account_from_row(&r)?),
                    None => None,
                })
            }

            async fn service_account_by_client_id(&self, client_id: &str) -> Result<Option<ServiceAccountRow>> {
                let sql = format!("{SA_SELECT} WHERE s.client_id = $1");
                let r = sqlx::query(&sql).bind(client_id).fetch_optional(&self.read).await?;
                Ok(match r {
                    Some(r) => Some(Self::service_account_from_row(&r)?),
                    None => None,
                })
            }

            async fn list_service_accounts(&self, tenant_id: &str) -> Result<Vec<ServiceAccountRow>> {
                let sql = format!("{SA_SELECT} WHERE s.tenant_id = $1 ORDER BY s.identity_id LIMIT 10000");
                let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.read).await?;
                rows.iter().map(|r| Ok(Self::service_account_from_row(r)?)).collect()
            }

            async fn live_client_secrets(&self, tenant_id: &str, client_id: &str, now: i64) -> Result<Vec<ClientSecretRow>> {
                let rows = sqlx::query(
                    "SELECT id, tenant_id, client_id, secret_hash, created_at, expires_at FROM client_secrets \
                     WHERE tenant_id = $1 AND client_id = $2 AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(tenant_id)
                .bind(client_id)
                .bind(now)
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(ClientSecretRow {
                        id: r.try_get(0)?,
                        tenant_id: r.try_get(1)?,
                        client_id: r.try_get(2)?,
                        secret_hash: r.try_get(3)?,
                        created_at: r.try_get(4)?,
                        expires_at: r.try_get(5)?,
                    });
                }
                Ok(out)
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
                // From the writer pool: a key another node just created must be visible at once.
                let rows = sqlx::query(
                    "SELECT kid, alg, public_jwk, sealed_private, created_at, retired_at FROM signing_keys \
                     ORDER BY created_at DESC, kid DESC",
                )
                .fetch_all(&self.write)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(SigningKeyRow {
                        kid: r.try_get(0)?,
                        alg: r.try_get(1)?,
                        public_jwk: r.try_get(2)?,
                        sealed_private: r.try_get(3)?,
                        created_at: r.try_get(4)?,
                        retired_at: r.try_get(5)?,
                    });
                }
                Ok(out)
            }

            async fn rotate_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                    .bind(key.created_at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private, created_at, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.public_jwk)
                .bind(&key.sealed_private)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    "sqlite",
    "",
    crate::pg_pool::NoLeases
);
impl_store!(
    PgStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "postgres",
    "FOR UPDATE",
    crate::pg_pool::Leases
);

impl SqliteStore {
    pub async fn connect(url: &str, o: &crate::StoreOptions) -> Result<SqliteStore> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        // synchronous=FULL: a commit is on disk before it returns, so an acknowledged write survives kill -9
        // and power loss alike.
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-16000");
        // One writer connection: SQLite serialises writers anyway, and the committer batches.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(2)
            // Rows cross from sqlx's worker thread in a bounded channel: a list of 1,000 rows should
            // not ping-pong between the threads every 50 rows.
            // Readers share the hot pages through the OS page cache; a smaller private cache each
            // keeps the resident size down when the database grows.
            .connect_with(
                opts.clone()
                    .read_only(true)
                    .row_buffer_size(1024)
                    .pragma("cache_size", "-4000"),
            )
            .await?;
        // Commit batches run on a writer thread of their own (sqlite_writer.rs), which serves a secret
        // cache; an in-memory database cannot be opened twice, so it keeps the sqlx path only.
        let file = opts.get_filename();
        let fast = if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
            None
        } else {
            let cache = std::sync::Arc::new(crate::secret_cache::SecretCache::with_capacity(
                o.secret_cache_bytes,
            ));
            Some(crate::sqlite_writer::SqliteWriter::open(
                file,
                cache,
                8_000,
                o.audit_sync,
            )?)
        };
        Ok(SqliteStore {
            read,
            write,
            // With the writer thread, both paths read the committed head inside their transaction.
            heads: fast
                .is_none()
                .then(|| parking_lot::Mutex::new(HashMap::new())),
            head_hints: parking_lot::Mutex::new(HashMap::new()),
            fast,
            leases: crate::pg_pool::NoLeases,
        })
    }

    /// A secret read's rows. SQLite reads through sqlx's pool: its ping on release stays in-process.
    async fn fetch_rows<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> std::result::Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
        q.fetch_all(&self.read).await
    }

    /// Secrets by path, each with its newest live version or `version` (cache misses only).
    async fn secret_value_rows(
        &self,
        tenant_id: &str,
        paths: &[String],
        version: Option<i64>,
    ) -> std::result::Result<Vec<sqlx::sqlite::SqliteRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {}, {} FROM secrets s LEFT JOIN secret_versions v \
             ON v.tenant_id = s.tenant_id AND v.path = s.path AND v.version = COALESCE($2, \
                (SELECT MAX(x.version) FROM secret_versions x WHERE x.tenant_id = s.tenant_id \
                 AND x.path = s.path AND x.deleted_at IS NULL)) \
             WHERE s.tenant_id = $1 AND s.path IN ({})",
            prefixed("s", SECRET_COLS),
            prefixed("v", VERSION_COLS),
            placeholders(3, paths.len())
        );
        let mut q = sqlx::query(&sql).bind(tenant_id).bind(version);
        for p in paths {
            q = q.bind(p);
        }
        self.fetch_rows(q).await
    }

    /// The connection for a batch that the writer thread leaves to sqlx.
    async fn write_conn(
        &self,
    ) -> std::result::Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
        self.write.acquire().await
    }
}

/// sqlx's pooled SQLite connections need no word on how their use ended (see pg_pool.rs).
trait Settle {
    fn settle<T>(
        &mut self,
        r: std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<T, sqlx::Error>;
}

impl Settle for sqlx::pool::PoolConnection<sqlx::Sqlite> {
    fn settle<T>(
        &mut self,
        r: std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<T, sqlx::Error> {
        r
    }
}

/// [`PgStore::put_in_place`]'s statement, for any number of writes to distinct paths: each secret row
/// moves on only from the version its writer saw and only while it is live; the version, its history
/// row and the versions (with their history rows) falling out of the `max_versions` window hang off
/// that update, so nothing else happens for a write whose row it did not match. `n` numbers the writes.
/// [`PgStore::secret_value_rows`]'s statements, for one path and for an array of them: `$2` NULL
/// takes the newest version not deleted, as the cache and SQLite do; otherwise version `$2`, deleted
/// or not.
fn secret_values_sql(path_cond: &str) -> String {
    format!(
        "SELECT {}, {} FROM secrets s LEFT JOIN LATERAL (\
           SELECT * FROM secret_versions v WHERE v.tenant_id = s.tenant_id AND v.path = s.path \
             AND ($2::int8 IS NULL OR v.version = $2) AND ($2::int8 IS NOT NULL OR v.deleted_at IS NULL) \
           ORDER BY v.version DESC LIMIT 1) v ON true \
         WHERE s.tenant_id = $1 AND {path_cond}",
        prefixed("s", SECRET_COLS),
        prefixed("v", VERSION_COLS)
    )
}
static SECRET_VALUE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| secret_values_sql("s.path = $3::text"));
static SECRET_VALUES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| secret_values_sql("s.path = ANY($3::text[])"));

static PUT_IN_PLACE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH x AS (\
           SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
             $7::text[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::bytea[], $13::bytea[]) \
           AS x(n, n_tenant, n_path, n_type, n_version, n_max_versions, n_metadata, n_now, n_expires_at, \
             n_rotation, n_by, n_dek, n_ciphertext)), \
         u AS (\
           UPDATE secrets SET secret_type = n_type, current_version = n_version, \
             max_versions = COALESCE(n_max_versions, max_versions), metadata = COALESCE(n_metadata, metadata), \
             updated_at = n_now, expires_at = n_expires_at, rotation_policy_id = COALESCE(n_rotation, rotation_policy_id), \
             updated_by = n_by \
           FROM x \
           WHERE tenant_id = n_tenant AND path = n_path AND current_version = n_version - 1 AND deleted_at IS NULL \
           RETURNING n, {SECRET_COLS}), \
         v AS (\
           INSERT INTO secret_versions (tenant_id, path, version, wrapped_dek, ciphertext, created_at, created_by) \
           SELECT n_tenant, n_path, n_version, n_dek, n_ciphertext, n_now, n_by FROM x WHERE n IN (SELECT n FROM u)), \
         pruned AS (\
           DELETE FROM secret_versions sv USING u \
           WHERE sv.tenant_id = u.tenant_id AND sv.path = u.path AND sv.version <= u.current_version - u.max_versions \
           RETURNING u.n, sv.version), \
         hist AS (\
           SELECT n, tenant_id, path, current_version, updated_by, updated_at, \
             (SELECT COALESCE(MAX(h.seq), 0) FROM secret_history h \
              WHERE h.tenant_id = u.tenant_id AND h.path = u.path) AS seq \
           FROM u), \
         h AS (\
           INSERT INTO secret_history (tenant_id, path, seq, action, version, identity_id, at) \
           SELECT tenant_id, path, seq + 1, 'write', current_version, updated_by, updated_at FROM hist \
           UNION ALL \
           SELECT hist.tenant_id, hist.path, hist.seq + 1 + row_number() OVER (PARTITION BY n ORDER BY pruned.version), \
             'prune', pruned.version, hist.updated_by, hist.updated_at \
           FROM pruned JOIN hist USING (n)) \
         SELECT n, {SECRET_COLS} FROM u"
    )
});

impl PgStore {
    pub async fn connect(url: &str) -> Result<PgStore> {
        use sqlx::postgres::PgPoolOptions;
        // No ping before handing a connection out (sqlx's default): it is one more round trip in
        // front of every query, and sqlx already pings each connection as it comes back to the
        // pool, dropping it if it has died. The per-request paths lease theirs (pg_pool.rs).
        let pool = |max, min| {
            PgPoolOptions::new()
                .max_connections(max)
                .min_connections(min)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect(url)
        };
        // Commits get connections of their own: the committer is serial, so a commit waiting for a
        // connection behind a burst of reads would hold up every request in its batch.
        let write = pool(4, 1).await?;
        sqlx::migrate!("./migrations/postgres").run(&write).await?;
        let read = pool(16, 2).await?;
        let opts = sqlx::postgres::PgConnectOptions::from_str(url)?;
        let leases = crate::pg_pool::Leases {
            read: crate::pg_pool::LeasePool::new(opts.clone(), 16)?,
            // The committer's: it is serial, so these are not shared with reads either.
            write: crate::pg_pool::LeasePool::new(opts, 4)?,
        };
        Ok(PgStore {
            read,
            write,
            heads: None,
            head_hints: parking_lot::Mutex::new(HashMap::new()),
            fast: None,
            leases,
        })
    }

    /// A secret read's rows, on a leased connection: one round trip.
    async fn fetch_rows(
        &self,
        q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> std::result::Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
        let mut conn = self.leases.read.get().await?;
        let rows = q.fetch_all(&mut *conn).await;
        conn.settle(rows)
    }

    /// Secrets by path, each with its newest live version or `version`: each secret a primary-key
    /// lookup and its version one backward probe of the versions' primary key. Two statements, one
    /// path or an array of them, so that neither's cached plan depends on how many paths come.
    async fn secret_value_rows(
        &self,
        tenant_id: &str,
        paths: &[String],
        version: Option<i64>,
    ) -> std::result::Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
        let q = match paths {
            [path] => sqlx::query(&SECRET_VALUE)
                .bind(tenant_id)
                .bind(version)
                .bind(path),
            _ => sqlx::query(&SECRET_VALUES)
                .bind(tenant_id)
                .bind(version)
                .bind(paths),
        };
        self.fetch_rows(q).await
    }

    /// The committer's connection for a batch's transaction.
    async fn write_conn(&self) -> std::result::Result<crate::pg_pool::Lease, sqlx::Error> {
        self.leases.write.get().await
    }

    /// New versions of live secrets at the versions their writers saw, in one round trip (the general
    /// way costs eight per write: lock, version, row, history, prune, read back). The paths must be
    /// distinct. Returns the rows of the writes that went in, by their index in `puts`; a write that is
    /// missing changed nothing (its secret is absent, deleted or at another version), and the general
    /// way finds out which.
    async fn put_in_place(
        c: &mut sqlx::PgConnection,
        puts: &[&PutSecret],
    ) -> std::result::Result<HashMap<usize, SecretRow>, sqlx::Error> {
        let mut cols = PutColumns::default();
        for (n, p) in puts.iter().enumerate() {
            cols.push(n, p);
        }
        let PutColumns {
            n,
            tenant_id,
            path,
            secret_type,
            version,
            max_versions,
            metadata,
            now,
            expires_at,
            rotation_policy_id,
            by,
            wrapped_dek,
            ciphertext,
        } = cols;
        let rows = sqlx::query(&PUT_IN_PLACE)
            .bind(n)
            .bind(tenant_id)
            .bind(path)
            .bind(secret_type)
            .bind(version)
            .bind(max_versions)
            .bind(metadata)
            .bind(now)
            .bind(expires_at)
            .bind(rotation_policy_id)
            .bind(by)
            .bind(wrapped_dek)
            .bind(ciphertext)
            .fetch_all(&mut *c)
            .await?;
        let mut done = HashMap::with_capacity(rows.len());
        for r in rows {
            let n: i64 = r.try_get(0)?;
            done.insert(n as usize, Self::secret_from_row(&r, 1)?);
        }
        Ok(done)
    }

    /// Commits a batch of audit entries of one tenant, and nothing else, in one statement (one round
    /// trip, its own transaction): the rows, the daily read counters and the tenant's new chain head,
    /// which moves only from the head the entries were chained from. The locking way (`BEGIN`, the
    /// head `FOR UPDATE`, three inserts, `COMMIT`) costs six round trips, and the committer waits for
    /// each batch before taking the next. `None` when the batch is not such a batch, or another node
    /// moved the head since this one last committed (nothing was written then): the caller commits it
    /// the locking way.
    async fn commit_audit_only(&self, ops: &[WriteOp]) -> Result<Option<Vec<OpResult>>> {
        if !ops.iter().all(|op| matches!(op, WriteOp::Audit(_))) {
            return Ok(None);
        }
        let Some((tenant, from)) = self.hinted_head(ops) else {
            return Ok(None);
        };
        let mut batch = AuditBatch::default();
        batch.heads.insert(tenant.clone(), from.clone());
        let mut conn = self.leases.write.get().await?;
        for op in ops {
            // Heads come from `batch`, so this queries nothing.
            Self::append_audit(&mut conn, op.audit_entries(), None, &mut batch, None).await?;
        }
        let moved = Self::commit_from_hint(&mut conn, &tenant, &from, &mut batch).await;
        let moved = conn.settle(moved)?;
        let mut hints = self.head_hints.lock();
        match batch.heads.remove(&tenant) {
            Some(to) if moved => hints.insert(tenant, to),
            _ => {
                hints.remove(&tenant);
                return Ok(None);
            }
        };
        Ok(Some(ops.iter().map(|_| Ok(OpOutcome::Audited)).collect()))
    }

    /// The tenant all of a batch's audit entries belong to and the head this node last committed for
    /// it, if it has one and the entries fit one statement.
    fn hinted_head(&self, ops: &[WriteOp]) -> Option<(String, Head)> {
        let mut entries = ops.iter().flat_map(|op| op.audit_entries());
        let tenant = &entries.next()?.tenant_id;
        let mut n = 1;
        for e in entries {
            if &e.tenant_id != tenant {
                return None;
            }
            n += 1;
        }
        if n > MAX_ONE_STATEMENT_AUDIT {
            return None;
        }
        let head = self.head_hints.lock().get(tenant).cloned()?;
        Some((tenant.clone(), head))
    }

    /// Writes `batch`'s audit rows and read counters and moves `tenant`'s chain head from `from` to
    /// where the rows end, in one statement, if the head is still at `from` (another node may have
    /// moved it since). Returns whether it was; if not, nothing was written. Takes the rows and
    /// counters out of `batch`, leaving its heads.
    async fn commit_from_hint(
        c: &mut sqlx::PgConnection,
        tenant: &str,
        from: &Head,
        batch: &mut AuditBatch,
    ) -> std::result::Result<bool, sqlx::Error> {
        // One head moved, the tenant's (a tenant id that sanitizing changed would chain elsewhere).
        let (Some(to), 1) = (batch.heads.get(tenant), batch.heads.len()) else {
            return Ok(false);
        };
        let mut cols = AuditColumns::default();
        for (e, seq, hash) in std::mem::take(&mut batch.rows) {
            cols.push(e, seq, hash);
        }
        let (mut a_tenant, mut a_path, mut a_day, mut a_reads, mut a_last) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((t, p, day), (reads, last)) in std::mem::take(&mut batch.access) {
            a_tenant.push(t);
            a_path.push(p);
            a_day.push(day);
            a_reads.push(reads);
            a_last.push(last);
        }
        sqlx::query_scalar::<_, bool>(AUDIT_ONLY_COMMIT)
            .bind(tenant)
            .bind(from.0)
            .bind(&from.1)
            .bind(to.0)
            .bind(&to.1)
            .bind(cols.id)
            .bind(cols.tenant_id)
            .bind(cols.ts)
            .bind(cols.action)
            .bind(cols.identity_type)
            .bind(cols.identity_id)
            .bind(cols.secret_path)
            .bind(cols.source_ip)
            .bind(cols.user_agent)
            .bind(cols.success)
            .bind(cols.status)
            .bind(cols.error_code)
            .bind(cols.duration_ms)
            .bind(cols.request_id)
            .bind(cols.extra_data)
            .bind(cols.seq)
            .bind(cols.hash)
            .bind(a_tenant)
            .bind(a_path)
            .bind(a_day)
            .bind(a_reads)
            .bind(a_last)
            .fetch_one(c)
            .await
    }
}

/// Entries [`PgStore::commit_audit_only`] takes in one statement (17 arrays of this many).
const MAX_ONE_STATEMENT_AUDIT: usize = 4096;

/// `$1`–`$5`: the tenant, the head the rows were chained from and the head they end at; `$6`–`$22`:
/// the rows, a column each; `$23`–`$27`: the daily read counters. Nothing is written unless the head
/// was still the one chained from; the statement answers whether it was.
const AUDIT_ONLY_COMMIT: &str = "WITH moved AS (
    UPDATE audit_heads SET seq = $4, hash = $5 WHERE tenant_id = $1 AND seq = $2 AND hash = $3
    RETURNING 1
), logged AS (
    INSERT INTO audit_log (id, tenant_id, ts, action, identity_type, identity_id, secret_path, source_ip,
        user_agent, success, status, error_code, duration_ms, request_id, extra_data, seq, hash)
    SELECT * FROM UNNEST($6::text[], $7::text[], $8::int8[], $9::text[], $10::text[], $11::text[],
        $12::text[], $13::text[], $14::text[], $15::bool[], $16::int8[], $17::text[], $18::int8[],
        $19::text[], $20::text[], $21::int8[], $22::bytea[])
    WHERE EXISTS (SELECT 1 FROM moved)
), counted AS (
    INSERT INTO secret_access_daily (tenant_id, path, day, reads, last_at)
    SELECT * FROM UNNEST($23::text[], $24::text[], $25::int8[], $26::int8[], $27::int8[])
    WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (tenant_id, path, day) DO UPDATE SET reads = secret_access_daily.reads + excluded.reads,
        last_at = GREATEST(secret_access_daily.last_at, excluded.last_at)
)
SELECT EXISTS (SELECT 1 FROM moved)";

/// Secret writes as one array per column, for [`PUT_IN_PLACE`].
#[derive(Default)]
struct PutColumns<'a> {
    n: Vec<i64>,
    tenant_id: Vec<&'a str>,
    path: Vec<&'a str>,
    secret_type: Vec<&'a str>,
    version: Vec<i64>,
    max_versions: Vec<Option<i64>>,
    metadata: Vec<Option<&'a str>>,
    now: Vec<i64>,
    expires_at: Vec<Option<i64>>,
    rotation_policy_id: Vec<Option<&'a str>>,
    by: Vec<&'a str>,
    wrapped_dek: Vec<&'a [u8]>,
    ciphertext: Vec<&'a [u8]>,
}

impl<'a> PutColumns<'a> {
    fn push(&mut self, n: usize, p: &'a PutSecret) {
        self.n.push(n as i64);
        self.tenant_id.push(&p.tenant_id);
        self.path.push(&p.path);
        self.secret_type.push(&p.secret_type);
        self.version.push(p.expected_version + 1);
        self.max_versions.push(p.max_versions);
        self.metadata.push(p.metadata.as_deref());
        self.now.push(p.now);
        self.expires_at.push(p.expires_at);
        self.rotation_policy_id
            .push(p.rotation_policy_id.as_deref());
        self.by.push(&p.by);
        self.wrapped_dek.push(&p.sealed.wrapped_dek);
        self.ciphertext.push(&p.sealed.ciphertext);
    }
}

/// Audit rows as one array per column, for `UNNEST`.
#[derive(Default)]
struct AuditColumns {
    id: Vec<String>,
    tenant_id: Vec<String>,
    ts: Vec<i64>,
    action: Vec<String>,
    identity_type: Vec<String>,
    identity_id: Vec<String>,
    secret_path: Vec<Option<String>>,
    source_ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    success: Vec<bool>,
    status: Vec<i64>,
    error_code: Vec<Option<String>>,
    duration_ms: Vec<i64>,
    request_id: Vec<String>,
    extra_data: Vec<String>,
    seq: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

impl AuditColumns {
    fn push(&mut self, e: AuditEntry, seq: i64, hash: [u8; 32]) {
        self.id.push(e.id);
        self.tenant_id.push(e.tenant_id);
        self.ts.push(e.timestamp);
        self.action.push(e.action);
        self.identity_type.push(e.identity_type);
        self.identity_id.push(e.identity_id);
        self.secret_path.push(e.secret_path);
        self.source_ip.push(e.source_ip);
        self.user_agent.push(e.user_agent);
        self.success.push(e.success);
        self.status.push(i64::from(e.status));
        self.error_code.push(e.error_code);
        self.duration_ms.push(e.duration_ms);
        self.request_id.push(e.request_id);
        self.extra_data.push(e.extra_data);
        self.seq.push(seq);
        self.hash.push(hash.to_vec());
    }
}

impl SqliteStore {
    /// SQLite's writer thread has its own secret writes (sqlite_writer.rs); this way serves only
    /// batches it leaves to sqlx, which take the general way.
    async fn put_in_place(
        _c: &mut sqlx::SqliteConnection,
        _puts: &[&PutSecret],
    ) -> std::result::Result<HashMap<usize, SecretRow>, sqlx::Error> {
        Ok(HashMap::new())
    }

    /// SQLite commits audit-only batches through its writer thread (sqlite_writer.rs), or, without
    /// one (an in-memory database), the locking way: it is the database's only writer.
    async fn commit_audit_only(&self, _ops: &[WriteOp]) -> Result<Option<Vec<OpResult>>> {
        Ok(None)
    }

    /// The writer thread, or the cache of committed heads, chains SQLite's entries.
    fn hinted_head(&self, _ops: &[WriteOp]) -> Option<(String, Head)> {
        None
    }

    async fn commit_from_hint(
        _c: &mut sqlx::SqliteConnection,
        _tenant: &str,
        _from: &Head,
        _batch: &mut AuditBatch,
    ) -> std::result::Result<bool, sqlx::Error> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_put as put;
    use sqlx::Connection;

    /// A store on a database of its own on the machine's PostgreSQL (scripts/services.sh starts it);
    /// the database's name, to drop it with [`drop_database`].
    async fn fresh_pg(tag: &str) -> (PgStore, String) {
        let name = format!("store_{tag}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/services.sh starts it)");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(&sql).execute(&mut admin).await.unwrap();
        }
        let store = PgStore::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
            .await
            .unwrap();
        (store, name)
    }

    async fn drop_database(store: PgStore, name: &str) {
        store.close().await;
        let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    async fn column(store: &PgStore, sql: &str) -> Vec<String> {
        sqlx::query_scalar(sql)
            .fetch_all(&store.read)
            .await
            .unwrap()
    }

    /// PostgreSQL applies secret writes without a savepoint each, so every refusal must come before
    /// the write's first change: refused writes in a batch leave nothing behind, and a write to a
    /// soft-deleted secret whose retention is over purges it only once the write's version checks out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refused_write_changes_nothing() {
        let (store, db) = fresh_pg("refusals").await;
        let results = store.apply(vec![put("gone", 0)]).await.unwrap();
        assert!(matches!(results[0], Ok(OpOutcome::Put { version: 1, .. })));
        // Deleted, recoverable until after the writes below (at 1,000): a write is refused.
        sqlx::query(
            "UPDATE secrets SET deleted_at = 1, deleted_by = 'u', recoverable_until = 5000",
        )
        .execute(&store.write)
        .await
        .unwrap();
        let ops = vec![put("x", 0), put("y", 3), put("gone", 1), put("z", 0)];
        let results = store.apply(ops).await.unwrap();
        assert!(
            matches!(results[1], Err(OpError::Conflict { current: 0 })),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Err(OpError::SoftDeleted { .. })),
            "{results:?}"
        );
        assert_eq!(
            column(&store, "SELECT path FROM secret_versions ORDER BY path").await,
            ["gone", "x", "z"]
        );
        // Once retention is over, a write expecting the old version conflicts and purges nothing;
        // one expecting 0 starts the secret afresh.
        sqlx::query("UPDATE secrets SET recoverable_until = 1")
            .execute(&store.write)
            .await
            .unwrap();
        let results = store.apply(vec![put("gone", 1)]).await.unwrap();
        assert!(
            matches!(results[0], Err(OpError::Conflict { current: 0 })),
            "{results:?}"
        );
        assert_eq!(
            column(
                &store,
                "SELECT path FROM secret_history WHERE path = 'gone'"
            )
            .await,
            ["gone"]
        );
        // New versions of x and z go in together; y is created; the purged secret starts afresh.
        let ops = vec![put("x", 1), put("gone", 0), put("z", 1), put("y", 0)];
        let results = store.apply(ops).await.unwrap();
        let versions: Vec<_> = results
            .iter()
            .map(|r| match r {
                Ok(OpOutcome::Put {
                    version, created, ..
                }) => (*version, *created),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(versions, [(2, false), (1, true), (2, false), (1, true)]);
        assert_eq!(
            column(
                &store,
                "SELECT path || ' ' || version FROM secret_versions ORDER BY path, version"
            )
            .await,
            ["gone 1", "x 1", "x 2", "y 1", "z 1", "z 2"]
        );
        let chain: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq")
            .fetch_all(&store.read)
            .await
            .unwrap();
        assert_eq!(
            chain,
            (1..=10).collect::<Vec<i64>>(),
            "every write and refusal logged once"
        );
        drop_database(store, &db).await;
    }
}
