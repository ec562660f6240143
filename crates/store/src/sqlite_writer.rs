//! The SQLite write path on one dedicated OS thread that owns its own connection (rusqlite, linked
//! against the same `libsqlite3-sys` as sqlx). A commit batch runs as plain synchronous calls on that
//! thread — no hop to sqlx's per-connection worker thread and back for every statement — so a
//! group-commit cycle costs the statements' CPU plus one fsync, and the async side waits once per
//! batch.
//!
//! It applies the same SQL as `impl_store!`'s `apply` (sql.rs) for the operations it knows
//! ([`SqliteWriter::supports`]); a batch holding any other operation goes to the sqlx path, which stays
//! complete. Both paths commit one batch at a time (the committer awaits each), and any other write on
//! the sqlx connection waits on SQLite's lock (`busy_timeout`), so the two connections never interleave
//! inside a transaction. Audit chain heads are read from `audit_heads` inside each transaction, never
//! cached across batches, so both paths always chain from the committed head.
//!
//! Durability is unchanged: WAL with `synchronous=FULL`, one transaction per batch, and each request is
//! answered only after its batch committed.
//!
//! After every commit the writer invalidates the [`SecretCache`] entries of the paths the batch
//! touched, before the batch's requests are answered.

use crate::model::{SecretRow, TokenRow, VersionRow};
use crate::ops::{OpError, OpOutcome, PutSecret, UpdateMetadata, WriteOp};
use crate::secret_cache::SecretCache;
use crate::sql::sanitize;
use crate::{day_of, Result, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use scaivault_core::audit::{AuditEntry, GENESIS};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::oneshot;

type OpResult = std::result::Result<OpOutcome, OpError>;
type Reply = oneshot::Sender<Result<Vec<OpResult>>>;

const SECRET_COLS: &str = "tenant_id, path, secret_type, current_version, max_versions, metadata, created_at, \
    updated_at, expires_at, rotation_policy_id, secret_policy_id, created_by, updated_by, deleted_at, deleted_by, \
    recoverable_until, restored_at, restored_by";

pub struct SqliteWriter {
    tx: mpsc::Sender<(Vec<WriteOp>, Reply)>,
    cache: Arc<SecretCache>,
}

impl SqliteWriter {
    /// Opens a second read-write connection to the database file (migrations have run) and starts the
    /// writer thread. `cache_kib` bounds its page cache.
    pub fn open(file: &Path, cache: Arc<SecretCache>, cache_kib: u32) -> Result<SqliteWriter> {
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The same settings as the sqlx connections: WAL, and a commit is on disk before it returns
        // (synchronous=FULL), so an acknowledged write survives kill -9 and power loss alike.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Config(format!(
                "SQLite journal_mode is {mode}, expected wal"
            )));
        }
        // Checkpoints run on a thread of their own (below), not inside a commit: copying WAL pages back
        // into the database file and fsyncing it would stall every request waiting on that commit.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{cache_kib}; \
             PRAGMA wal_autocheckpoint = 0;"
        ))?;
        conn.set_prepared_statement_cache_capacity(64);
        let checkpointer = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        checkpointer.busy_timeout(Duration::from_secs(10))?;
        checkpointer.execute_batch("PRAGMA cache_size = -1000;")?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &nudged))
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite checkpoint thread: {e}"))
            })?;
        let (tx, rx) = mpsc::channel::<(Vec<WriteOp>, Reply)>();
        let thread_cache = cache.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                let mut commits = 0u32;
                while let Ok((ops, reply)) = rx.recv() {
                    let result = apply(&mut conn, &ops, &thread_cache);
                    // Answer only after the cache forgot what the batch changed.
                    let _ = reply.send(result);
                    commits = commits.wrapping_add(1);
                    if commits & (CHECKPOINT_EVERY - 1) == 0 {
                        // Full means a checkpoint is pending already.
                        let _ = nudge.try_send(());
                    }
                    if commits & (FINISH_CHECKPOINT_EVERY - 1) == 0 {
                        // The checkpoint thread copies the bulk of the WAL while commits go on, but
                        // SQLite only restarts the WAL from its beginning when a write transaction
                        // starts on a fully checkpointed WAL. Finishing the copy here, between two
                        // transactions and after the batch was answered, costs the few frames
                        // written since, and keeps the WAL short.
                        let r: rusqlite::Result<(i64, i64, i64)> =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            });
                        if let Err(e) = r {
                            tracing::warn!(site = "ST0103", error = %e, "WAL checkpoint failed");
                        }
                    }
                }
            })
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite writer thread: {e}"))
            })?;
        Ok(SqliteWriter { tx, cache })
    }

    pub fn cache(&self) -> &SecretCache {
        &self.cache
    }

    /// Operations this writer applies itself; a batch with any other goes to the sqlx path.
    pub fn supports(op: &WriteOp) -> bool {
        matches!(
            op,
            WriteOp::Audit(_)
                | WriteOp::PutSecret(_)
                | WriteOp::UpdateMetadata(_)
                | WriteOp::DeleteSecret { .. }
                | WriteOp::DeleteVersion { .. }
                | WriteOp::HardDelete { .. }
                | WriteOp::Restore { .. }
                | WriteOp::InsertToken { .. }
                | WriteOp::RevokeToken { .. }
        )
    }

    /// Runs the batch in one transaction on the writer thread; returns once it committed (or failed).
    pub async fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((ops, reply)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Commits between two checkpoint nudges (a commit adds a few pages to the WAL); a power of two.
const CHECKPOINT_EVERY: u32 = 32;
/// Commits between two checkpoints the writer finishes itself (see the writer loop); a power of two.
const FINISH_CHECKPOINT_EVERY: u32 = 128;

/// Copies committed WAL pages back into the database when nudged by the writer (and at least every
/// few seconds), so no commit pays for the bulk of a checkpoint. PASSIVE never blocks the writer or
/// readers. The writer finishes the job now and then so the WAL can restart from its beginning.
fn checkpoint_loop(conn: &Connection, nudged: &mpsc::Receiver<()>) {
    loop {
        let last = match nudged.recv_timeout(Duration::from_secs(5)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let r: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match r {
            Ok((_, wal, done)) => tracing::trace!(wal, done, "wal checkpoint"),
            Err(e) => tracing::warn!(site = "ST0102", error = %e, "WAL checkpoint failed"),
        }
        if last {
            return;
        }
    }
}

/// The (tenant, path) a mutation touches, for cache invalidation; `None` for those touching no secret.
fn touched(op: &WriteOp) -> Option<(&str, &str)> {
    match op {
        WriteOp::PutSecret(p) => Some((&p.tenant_id, &p.path)),
        WriteOp::UpdateMetadata(u) => Some((&u.tenant_id, &u.path)),
        WriteOp::DeleteSecret {
            tenant_id, path, ..
        }
        | WriteOp::DeleteVersion {
            tenant_id, path, ..
        }
        | WriteOp::HardDelete {
            tenant_id, path, ..
        }
        | WriteOp::Restore {
            tenant_id, path, ..
        } => Some((tenant_id, path)),
        _ => None,
    }
}

fn apply(conn: &mut Connection, ops: &[WriteOp], cache: &SecretCache) -> Result<Vec<OpResult>> {
    let result = apply_tx(conn, ops);
    match &result {
        Ok(results) => {
            cache.invalidate(ops.iter().filter_map(touched));
            // Write-through: a committed write's new version is the newest active one, so the next
            // read (and the next write's version check) needs no database round trip.
            cache.put(ops.iter().zip(results).filter_map(|(op, r)| match (op, r) {
                (
                    WriteOp::PutSecret(p),
                    Ok(OpOutcome::Put {
                        version, secret, ..
                    }),
                ) => Some((
                    secret.clone(),
                    Some(VersionRow {
                        version: *version,
                        sealed: p.sealed.clone(),
                        created_at: p.now,
                        created_by: p.by.clone(),
                        deleted_at: None,
                        deleted_by: None,
                        restored_at: None,
                        restored_by: None,
                    }),
                )),
                _ => None,
            }));
        }
        // Nothing committed; forgetting everything is cheap insurance.
        Err(_) => cache.clear(),
    }
    result
}

type Head = (i64, Vec<u8>);

#[derive(Default)]
struct AuditState {
    heads: HashMap<String, Head>,
    access: HashMap<(String, String, i64), (i64, i64)>,
}

fn apply_tx(conn: &mut Connection, ops: &[WriteOp]) -> Result<Vec<OpResult>> {
    let started = std::time::Instant::now();
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut audit = AuditState::default();
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        if let WriteOp::Audit(entries) = op {
            append_audit(&tx, entries, None, &mut audit)?;
            results.push(Ok(OpOutcome::Audited));
            continue;
        }
        let sp = tx.savepoint()?;
        let outcome = match apply_one(&sp, op) {
            Ok(Ok(o)) => {
                sp.commit()?;
                Ok(o)
            }
            Ok(Err(e)) => {
                drop(sp); // rolls back
                Err(e)
            }
            Err(db) => {
                drop(sp);
                tracing::error!(site = "ST0101", error = %db, "store operation failed");
                Err(OpError::Store(db.to_string()))
            }
        };
        append_audit(&tx, op.audit_entries(), outcome.as_ref().err(), &mut audit)?;
        results.push(outcome);
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )?;
        for (tenant, (seq, hash)) in &audit.heads {
            st.execute(params![tenant, seq, hash])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT INTO secret_access_daily (tenant_id, path, day, reads, last_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant_id, path, day) DO UPDATE SET reads = secret_access_daily.reads + excluded.reads, \
             last_at = CASE WHEN excluded.last_at > secret_access_daily.last_at THEN excluded.last_at \
             ELSE secret_access_daily.last_at END",
        )?;
        for ((tenant, path, day), (reads, last)) in &audit.access {
            st.execute(params![tenant, path, day, reads, last])?;
        }
    }
    let statements = started.elapsed();
    tx.commit()?;
    tracing::debug!(
        batch = ops.len(),
        statements_micros = statements.as_micros() as u64,
        total_micros = started.elapsed().as_micros() as u64,
        "sqlite writer committed"
    );
    Ok(results)
}

/// Appends entries to each tenant's hash chain, as `impl_store!`'s `append_audit` does.
fn append_audit(
    c: &Connection,
    entries: &[AuditEntry],
    failure: Option<&OpError>,
    st: &mut AuditState,
) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO audit_log (id, tenant_id, ts, action, identity_type, identity_id, secret_path, source_ip, \
         user_agent, success, status, error_code, duration_ms, request_id, extra_data, seq, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    for e in entries {
        let mut e = sanitize(e);
        if let Some(err) = failure {
            let (code, status) = err.code();
            e.success = false;
            e.status = status;
            e.error_code = Some(code.to_owned());
        }
        if !st.heads.contains_key(&e.tenant_id) {
            let head: Option<Head> = c
                .prepare_cached("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1")?
                .query_row(params![e.tenant_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            st.heads
                .insert(e.tenant_id.clone(), head.unwrap_or((0, GENESIS.to_vec())));
        }
        let Some(head) = st.heads.get_mut(&e.tenant_id) else {
            continue;
        };
        let seq = head.0 + 1;
        let hash = e.chain_hash(seq, &head.1);
        *head = (seq, hash.to_vec());
        if e.success && e.action == "read" {
            if let Some(p) = &e.secret_path {
                let slot = st
                    .access
                    .entry((e.tenant_id.clone(), p.clone(), day_of(e.timestamp)))
                    .or_insert((0, 0));
                slot.0 += 1;
                slot.1 = slot.1.max(e.timestamp);
            }
        }
        insert.execute(params![
            e.id,
            e.tenant_id,
            e.timestamp,
            e.action,
            e.identity_type,
            e.identity_id,
            e.secret_path,
            e.source_ip,
            e.user_agent,
            e.success,
            i64::from(e.status),
            e.error_code,
            e.duration_ms,
            e.request_id,
            e.extra_data,
            seq,
            hash.as_slice(),
        ])?;
    }
    Ok(())
}

fn secret_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        tenant_id: r.get(0)?,
        path: r.get(1)?,
        secret_type: r.get(2)?,
        current_version: r.get(3)?,
        max_versions: r.get(4)?,
        metadata: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        expires_at: r.get(8)?,
        rotation_policy_id: r.get(9)?,
        secret_policy_id: r.get(10)?,
        created_by: r.get(11)?,
        updated_by: r.get(12)?,
        deleted_at: r.get(13)?,
        deleted_by: r.get(14)?,
        recoverable_until: r.get(15)?,
        restored_at: r.get(16)?,
        restored_by: r.get(17)?,
    })
}

fn lock_secret(c: &Connection, tenant: &str, path: &str) -> rusqlite::Result<Option<SecretRow>> {
    let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE tenant_id = ?1 AND path = ?2");
    c.prepare_cached(&sql)?
        .query_row(params![tenant, path], secret_from_row)
        .optional()
}

fn history_push(
    c: &Connection,
    tenant: &str,
    path: &str,
    action: &str,
    version: Option<i64>,
    by: &str,
    at: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO secret_history (tenant_id, path, seq, action, version, identity_id, at) \
         SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, ?6 FROM secret_history \
         WHERE tenant_id = ?1 AND path = ?2",
    )?
    .execute(params![tenant, path, action, version, by, at])?;
    Ok(())
}

/// Drops versions that fall out of the `max_versions` window; their history stays.
fn prune(
    c: &Connection,
    tenant: &str,
    path: &str,
    newest: i64,
    max_versions: i64,
    by: &str,
    at: i64,
) -> rusqlite::Result<()> {
    let cutoff = newest - max_versions;
    if cutoff < 1 {
        return Ok(());
    }
    let mut pruned: Vec<i64> = c
        .prepare_cached(
            "DELETE FROM secret_versions WHERE tenant_id = ?1 AND path = ?2 AND version <= ?3 RETURNING version",
        )?
        .query_map(params![tenant, path, cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    pruned.sort_unstable();
    for v in pruned {
        history_push(c, tenant, path, "prune", Some(v), by, at)?;
    }
    Ok(())
}

/// Removes a secret with every version, its history and access counters.
fn purge(c: &Connection, tenant: &str, path: &str) -> rusqlite::Result<()> {
    for table in [
        "secret_versions",
        "secret_history",
        "secret_access_daily",
        "secrets",
    ] {
        c.prepare_cached(&format!(
            "DELETE FROM {table} WHERE tenant_id = ?1 AND path = ?2"
        ))?
        .execute(params![tenant, path])?;
    }
    Ok(())
}

fn count_versions(c: &Connection, tenant: &str, path: &str) -> rusqlite::Result<i64> {
    c.prepare_cached("SELECT COUNT(*) FROM secret_versions WHERE tenant_id = ?1 AND path = ?2")?
        .query_row(params![tenant, path], |r| r.get(0))
}

fn put_secret(c: &Connection, p: &PutSecret) -> rusqlite::Result<OpResult> {
    let mut existing = lock_secret(c, &p.tenant_id, &p.path)?;
    if let Some(s) = existing.as_ref().filter(|s| s.deleted_at.is_some()) {
        if s.recoverable_until.is_some_and(|u| u > p.now) {
            return Ok(Err(OpError::SoftDeleted {
                recoverable_until: s.recoverable_until,
            }));
        }
        // Retention is over: the old secret is purged and this write starts it afresh.
        purge(c, &p.tenant_id, &p.path)?;
        existing = None;
    }
    let current = existing.as_ref().map_or(0, |s| s.current_version);
    if current != p.expected_version {
        return Ok(Err(OpError::Conflict { current }));
    }
    let version = current + 1;
    c.prepare_cached(
        "INSERT INTO secret_versions (tenant_id, path, version, wrapped_dek, ciphertext, created_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        p.tenant_id,
        p.path,
        version,
        p.sealed.wrapped_dek,
        p.sealed.ciphertext,
        p.now,
        p.by
    ])?;
    let max_versions = match &existing {
        Some(s) => {
            let max_versions = p.max_versions.unwrap_or(s.max_versions);
            c.prepare_cached(
                "UPDATE secrets SET secret_type = ?3, current_version = ?4, max_versions = ?5, \
                 metadata = COALESCE(?6, metadata), updated_at = ?7, expires_at = ?8, \
                 rotation_policy_id = COALESCE(?9, rotation_policy_id), updated_by = ?10 \
                 WHERE tenant_id = ?1 AND path = ?2",
            )?
            .execute(params![
                p.tenant_id,
                p.path,
                p.secret_type,
                version,
                max_versions,
                p.metadata,
                p.now,
                p.expires_at,
                p.rotation_policy_id,
                p.by
            ])?;
            max_versions
        }
        None => {
            let max_versions = p
                .max_versions
                .unwrap_or(scaivault_core::secret::DEFAULT_MAX_VERSIONS);
            c.prepare_cached(
                "INSERT INTO secrets (tenant_id, path, secret_type, current_version, max_versions, metadata, \
                 created_at, updated_at, expires_at, rotation_policy_id, created_by, updated_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params![
                p.tenant_id,
                p.path,
                p.secret_type,
                version,
                max_versions,
                p.metadata.as_deref().unwrap_or("{}"),
                p.now,
                p.expires_at,
                p.rotation_policy_id,
                p.by
            ])?;
            max_versions
        }
    };
    history_push(
        c,
        &p.tenant_id,
        &p.path,
        "write",
        Some(version),
        &p.by,
        p.now,
    )?;
    prune(
        c,
        &p.tenant_id,
        &p.path,
        version,
        max_versions,
        &p.by,
        p.now,
    )?;
    match lock_secret(c, &p.tenant_id, &p.path)? {
        Some(secret) => Ok(Ok(OpOutcome::Put {
            version,
            created: existing.is_none(),
            secret,
        })),
        None => Ok(Err(OpError::Store(
            "secret vanished inside its transaction".into(),
        ))),
    }
}

fn update_metadata(c: &Connection, u: &UpdateMetadata) -> rusqlite::Result<OpResult> {
    let Some(s) = lock_secret(c, &u.tenant_id, &u.path)? else {
        return Ok(Err(OpError::NotFound));
    };
    if s.deleted_at.is_some() {
        return Ok(Err(OpError::NotFound));
    }
    let max_versions = u.max_versions.unwrap_or(s.max_versions);
    let expires_at = u.expires_at.unwrap_or(s.expires_at);
    let rotation = u
        .rotation_policy_id
        .clone()
        .unwrap_or(s.rotation_policy_id.clone());
    c.prepare_cached(
        "UPDATE secrets SET metadata = ?3, max_versions = ?4, expires_at = ?5, rotation_policy_id = ?6, \
         updated_by = ?7 WHERE tenant_id = ?1 AND path = ?2",
    )?
    .execute(params![
        u.tenant_id,
        u.path,
        u.metadata,
        max_versions,
        expires_at,
        rotation,
        u.by
    ])?;
    history_push(
        c,
        &u.tenant_id,
        &u.path,
        "update_metadata",
        None,
        &u.by,
        u.now,
    )?;
    prune(
        c,
        &u.tenant_id,
        &u.path,
        s.current_version,
        max_versions,
        &u.by,
        u.now,
    )?;
    match lock_secret(c, &u.tenant_id, &u.path)? {
        Some(secret) => Ok(Ok(OpOutcome::Updated(secret))),
        None => Ok(Err(OpError::NotFound)),
    }
}

fn insert_token_row(c: &Connection, t: &TokenRow) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO tokens (id, token_hash, tenant_id, identity_id, name, scopes, created_at, expires_at, revoked_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        t.id,
        t.token_hash,
        t.tenant_id,
        t.identity_id,
        t.name,
        t.scopes,
        t.created_at,
        t.expires_at,
        t.revoked_at,
        t.created_by
    ])?;
    Ok(())
}

fn restore(
    c: &Connection,
    tenant_id: &str,
    path: &str,
    version: Option<i64>,
    by: &str,
    now: i64,
) -> rusqlite::Result<OpResult> {
    let Some(s) = lock_secret(c, tenant_id, path)? else {
        return Ok(Err(OpError::NotFound));
    };
    match version {
        None => {
            if s.deleted_at.is_none() {
                return Ok(Ok(OpOutcome::Updated(s)));
            }
            if s.recoverable_until.is_some_and(|u| u < now) {
                return Ok(Err(OpError::NotFound));
            }
            c.prepare_cached(
                "UPDATE secrets SET deleted_at = NULL, deleted_by = NULL, recoverable_until = NULL, \
                 restored_at = ?3, restored_by = ?4 WHERE tenant_id = ?1 AND path = ?2",
            )?
            .execute(params![tenant_id, path, now, by])?;
            history_push(c, tenant_id, path, "restore", None, by, now)?;
        }
        Some(v) => {
            if s.deleted_at.is_some() {
                return Ok(Err(OpError::NotFound));
            }
            let exists: Option<Option<i64>> = c
                .prepare_cached(
                    "SELECT deleted_at FROM secret_versions WHERE tenant_id = ?1 AND path = ?2 AND version = ?3",
                )?
                .query_row(params![tenant_id, path, v], |r| r.get(0))
                .optional()?;
            match exists {
                None => return Ok(Err(OpError::VersionNotFound)),
                Some(None) => {}
                Some(Some(_)) => {
                    c.prepare_cached(
                        "UPDATE secret_versions SET deleted_at = NULL, deleted_by = NULL, restored_at = ?4, \
                         restored_by = ?5 WHERE tenant_id = ?1 AND path = ?2 AND version = ?3",
                    )?
                    .execute(params![tenant_id, path, v, now, by])?;
                    history_push(c, tenant_id, path, "restore_version", Some(v), by, now)?;
                }
            }
        }
    }
    match lock_secret(c, tenant_id, path)? {
        Some(s) => Ok(Ok(OpOutcome::Updated(s))),
        None => Ok(Err(OpError::NotFound)),
    }
}

fn apply_one(c: &Connection, op: &WriteOp) -> rusqlite::Result<OpResult> {
    match op {
        WriteOp::Audit(_) => Ok(Ok(OpOutcome::Audited)),
        WriteOp::PutSecret(p) => put_secret(c, p),
        WriteOp::UpdateMetadata(u) => update_metadata(c, u),
        WriteOp::DeleteSecret {
            tenant_id,
            path,
            by,
            now,
            recoverable_until,
            ..
        } => {
            match lock_secret(c, tenant_id, path)? {
                Some(s) if s.deleted_at.is_none() => {}
                _ => return Ok(Err(OpError::NotFound)),
            }
            c.prepare_cached(
                "UPDATE secrets SET deleted_at = ?3, deleted_by = ?4, recoverable_until = ?5 \
                 WHERE tenant_id = ?1 AND path = ?2",
            )?
            .execute(params![tenant_id, path, now, by, recoverable_until])?;
            history_push(c, tenant_id, path, "delete", None, by, *now)?;
            let version_count = count_versions(c, tenant_id, path)?;
            Ok(Ok(OpOutcome::Deleted { version_count }))
        }
        WriteOp::DeleteVersion {
            tenant_id,
            path,
            version,
            by,
            now,
            ..
        } => {
            match lock_secret(c, tenant_id, path)? {
                Some(s) if s.deleted_at.is_none() => {}
                _ => return Ok(Err(OpError::NotFound)),
            }
            let n = c
                .prepare_cached(
                    "UPDATE secret_versions SET deleted_at = ?4, deleted_by = ?5 \
                     WHERE tenant_id = ?1 AND path = ?2 AND version = ?3 AND deleted_at IS NULL",
                )?
                .execute(params![tenant_id, path, version, now, by])?;
            if n == 0 {
                return Ok(Err(OpError::VersionNotFound));
            }
            history_push(
                c,
                tenant_id,
                path,
                "delete_version",
                Some(*version),
                by,
                *now,
            )?;
            let version_count = count_versions(c, tenant_id, path)?;
            Ok(Ok(OpOutcome::Deleted { version_count }))
        }
        WriteOp::HardDelete {
            tenant_id, path, ..
        } => {
            if lock_secret(c, tenant_id, path)?.is_none() {
                return Ok(Err(OpError::NotFound));
            }
            let version_count = count_versions(c, tenant_id, path)?;
            purge(c, tenant_id, path)?;
            Ok(Ok(OpOutcome::Deleted { version_count }))
        }
        WriteOp::InsertToken { row, .. } => {
            insert_token_row(c, row)?;
            Ok(Ok(OpOutcome::Done))
        }
        WriteOp::RevokeToken {
            tenant_id,
            token_id,
            owner,
            now,
            ..
        } => {
            let n = c
                .prepare_cached(
                    "UPDATE tokens SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL \
                     AND (?4 IS NULL OR identity_id = ?4)",
                )?
                .execute(params![tenant_id, token_id, now, owner])?;
            if n == 0 {
                return Ok(Err(OpError::NotFound));
            }
            Ok(Ok(OpOutcome::Done))
        }
        WriteOp::Restore {
            tenant_id,
            path,
            version,
            by,
            now,
            ..
        } => restore(c, tenant_id, path, *version, by, *now),
        // Operations added later go to the sqlx path until ported here (see `SqliteWriter::supports`).
        #[allow(unreachable_patterns)]
        _ => Ok(Err(OpError::Store(
            "operation not supported by the SQLite writer".into(),
        ))),
    }
}
