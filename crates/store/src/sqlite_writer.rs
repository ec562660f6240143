//! The SQLite write path on one dedicated OS thread that owns its own connection (rusqlite, linked
//! against the same `libsqlite3-sys` as sqlx). A commit batch runs as plain synchronous calls on that
//! thread — no hop to sqlx's per-connection worker thread and back for every statement — so a
//! group-commit cycle costs the statements' CPU plus one fsync, and the async side waits once per
//! batch.
//!
//! It applies the same SQL as `impl_store!`'s `apply` (sql.rs) for the operations it knows
//! ([`SqliteWriter::supports`]); a batch holding any other operation goes to the sqlx path, which stays
//! complete. Both paths commit one batch at a time (the committer awaits each); before the sqlx path
//! runs, [`SqliteWriter::exclusive`] waits until every journaled audit entry is indexed and parks the
//! writer thread, so the two never interleave and the sqlx path chains from the committed head.
//!
//! Audit entries: the writer thread owns the chain heads of every tenant (loaded from `audit_heads`
//! when first needed) and assigns each entry its sequence number and hash, in order.
//! - A batch holding mutations runs in one transaction; the entries of its operations (and any
//!   standalone audit entries of the batch) are inserted into `audit_log` inside it, so a write commits
//!   atomically with its audit entry. Each operation runs in a savepoint of its own, so a failing one
//!   fails alone — except secret writes, which refuse before they change anything: they go without
//!   (a savepoint copies every page it changes that the batch changed before), and if one fails
//!   halfway the batch is rolled back and run again with a savepoint around everything.
//! - A batch of standalone audit entries only (reads, lists, refusals…) is appended to the audit journal
//!   (audit_journal.rs): one `write` + `fdatasync`, no b-tree work. The indexer thread then moves
//!   journaled entries into `audit_log` in large transactions. Audit queries call
//!   [`SqliteWriter::sync_audit`] first, so they see every acknowledged entry.
//!
//! Requests hand their operations straight to this thread ([`crate::Store::groups`]); it groups every
//! mutation queued by then into one transaction, and every standalone audit entry into one journal
//! write.
//!
//! Durability: each request is answered only after its batch is on disk. A journaled batch is
//! `fdatasync`ed by this thread before its answers. A mutating batch commits with
//! `synchronous=NORMAL` (WAL written, not yet synced) and its answers go to the [`Syncer`] thread,
//! which `fdatasync`s the WAL and then answers, while this thread runs the next batch (syncer.rs).
//!
//! After every commit the writer invalidates the [`SecretCache`] entries of the paths the batch
//! touched, before the batch's requests are answered.

use crate::audit_journal::{self, Journal, JournalRecord, Pos};
use crate::model::{SecretRow, TokenRow, VersionRow};
use crate::ops::{OpError, OpOutcome, PutSecret, UpdateMetadata, WriteOp};
use crate::secret_cache::SecretCache;
use crate::sql::sanitize;
use crate::syncer::{OpResult, Reply, Syncer};
use crate::{day_of, Result, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use scaivault_core::audit::{AuditEntry, GENESIS};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Done = oneshot::Sender<Result<()>>;

const SECRET_COLS: &str = "tenant_id, path, secret_type, current_version, max_versions, metadata, created_at, \
    updated_at, expires_at, rotation_policy_id, secret_policy_id, created_by, updated_by, deleted_at, deleted_by, \
    recoverable_until, restored_at, restored_by";

enum Msg {
    Apply(Vec<WriteOp>, Reply),
    /// Answer once every entry acknowledged so far is in `audit_log`.
    Sync(Done),
    /// [`Msg::Sync`], forget the chain heads, answer, then wait until the receiver yields (the sqlx
    /// path runs meanwhile).
    Exclusive(Done, mpsc::Receiver<()>),
}

/// Most operations one journal write groups.
const MAX_AUDIT_GROUP: usize = 1024;
/// Most operations one transaction groups.
const MAX_WRITE_GROUP: usize = 1024;

fn audit_only(ops: &[WriteOp]) -> bool {
    ops.iter().all(|o| matches!(o, WriteOp::Audit(_)))
}

/// `first` and the requests queued behind it of the same kind (audit entries only, or not), up to
/// `max` operations; the first message of another kind is left in `stash`, to be handled next.
fn gather(
    rx: &mpsc::Receiver<Msg>,
    first: (Vec<WriteOp>, Reply),
    max: usize,
    stash: &mut Option<Msg>,
) -> Vec<(Vec<WriteOp>, Reply)> {
    let audit = audit_only(&first.0);
    let mut n = first.0.len();
    let mut group = vec![first];
    while n < max {
        match rx.try_recv() {
            Ok(Msg::Apply(ops, reply)) if audit_only(&ops) == audit => {
                n += ops.len();
                group.push((ops, reply));
            }
            Ok(other) => {
                *stash = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    group
}

enum IndexMsg {
    /// Records are waiting in the [`Handoff`] (see there for when this is sent).
    Wake,
    Sync(Done),
}

pub struct SqliteWriter {
    tx: mpsc::Sender<Msg>,
    /// Shared with the writer and indexer threads (kept here for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    handoff: Arc<Handoff>,
    cache: Arc<SecretCache>,
    /// Read-only rusqlite connections for reads of many rows (listing), which sqlx-sqlite would copy
    /// value by value across its worker thread.
    readers: Arc<parking_lot::Mutex<Vec<Connection>>>,
    file: std::path::PathBuf,
}

/// A listing query, owned so it can run on a blocking thread.
pub struct OwnedList {
    pub tenant_id: String,
    pub prefix: String,
    pub upper: String,
    pub after: String,
    pub limit: i64,
    pub expiring_before: Option<i64>,
    pub include_deleted: bool,
}

/// Held while the sqlx path commits a batch; the writer thread resumes when it is dropped.
pub struct ExclusiveGuard {
    _resume: mpsc::SyncSender<()>,
}

/// How a connection's commits reach the disk.
#[derive(Clone, Copy)]
enum Durability {
    /// `synchronous=FULL`: the commit fsyncs the WAL before it returns.
    Full,
    /// `synchronous=NORMAL`: the commit writes the WAL and returns; the caller makes it durable (the
    /// writer thread hands that to its [`Syncer`]) before acknowledging anything. Checkpoints and WAL
    /// restarts still sync as with FULL, so the database can never be torn.
    CallerSyncs,
}

fn open_conn(file: &Path, cache_kib: u32, durability: Durability) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL, as the sqlx connections; an acknowledged write survives kill -9 and power loss alike,
    // whether the commit itself fsyncs (FULL) or the writer's fsync thread does before the answer.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "SQLite journal_mode is {mode}, expected wal"
        )));
    }
    // Checkpoints run on a thread of their own (below), not inside a commit: copying WAL pages back
    // into the database file and fsyncing it would stall every request waiting on that commit.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{cache_kib}; \
         PRAGMA wal_autocheckpoint = 0;",
        match durability {
            Durability::Full => "FULL",
            Durability::CallerSyncs => "NORMAL",
        }
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteWriter {
    /// Opens a second read-write connection to the database file (migrations have run), replays the
    /// audit journal, and starts the writer, indexer and checkpoint threads. `cache_kib` bounds the
    /// writer's page cache.
    pub fn open(
        file: &Path,
        cache: Arc<SecretCache>,
        cache_kib: u32,
        sync: audit_journal::AuditSync,
    ) -> Result<SqliteWriter> {
        let mut conn = open_conn(file, cache_kib, Durability::CallerSyncs)?;
        let dir = audit_journal::dir_of(file);
        let (next_segment, _) = audit_journal::recover(&mut conn, &dir)?;
        let journal = Journal::create(&dir, next_segment, sync)?;
        // Audit ids and chain positions grow with time, so the indexer's inserts land on the right
        // edges of `audit_log`'s b-trees, except the per-path index: its hot pages (one per path read
        // recently) are what this cache holds.
        // FULL: the indexer deletes journal segments once their records are committed here.
        let indexer_conn = open_conn(file, 16_000, Durability::Full)?;
        let syncer = Syncer::start(wal_path(file))?;
        let checkpointer = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        checkpointer.busy_timeout(Duration::from_secs(10))?;
        checkpointer.execute_batch("PRAGMA cache_size = -1000;")?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let flush = Arc::new(Flush {
            db: file.to_owned(),
            asked: AtomicBool::new(false),
            failed: syncer.failure_flag(),
        });
        let ckpt_flush = flush.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &nudged, &ckpt_flush))
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite checkpoint thread: {e}"))
            })?;
        let (itx, irx) = mpsc::channel::<IndexMsg>();
        let inudge = nudge.clone();
        let handoff = Arc::new(Handoff::default());
        let ihandoff = handoff.clone();
        let whandoff = handoff.clone();
        std::thread::Builder::new()
            .name("sqlite-audit-indexer".into())
            .spawn(move || index_loop(indexer_conn, &irx, &dir, &inudge, &ihandoff))
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite audit indexer thread: {e}"))
            })?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let mut w = Writer {
            conn,
            cache: cache.clone(),
            heads: HashMap::new(),
            journal: Some(journal),
            indexer: itx,
            handoff: whandoff,
            buf: Vec::with_capacity(64 * 1024),
            syncer,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut commits = 0u32;
                // A message taken while grouping audit entries that is not one; handled next.
                let mut stash: Option<Msg> = None;
                loop {
                    let msg = match stash.take() {
                        Some(m) => m,
                        None => match rx.recv() {
                            Ok(m) => m,
                            Err(_) => break,
                        },
                    };
                    match msg {
                        Msg::Apply(ops, reply) => {
                            if audit_only(&ops) && w.journal.is_some() {
                                // Requests hand their entries straight to this thread (the committer
                                // does not batch them): everything queued by now shares one journal
                                // write and fsync.
                                let group = gather(&rx, (ops, reply), MAX_AUDIT_GROUP, &mut stash);
                                w.journal_batch(group);
                                continue;
                            }
                            // Mutations queued behind this one share its transaction and fsync.
                            let group = gather(&rx, (ops, reply), MAX_WRITE_GROUP, &mut stash);
                            w.apply_group(group);
                        }
                        Msg::Sync(done) => {
                            let _ = w.indexer.send(IndexMsg::Sync(done));
                            continue;
                        }
                        Msg::Exclusive(ready, resume) => {
                            let (done, synced) = oneshot::channel();
                            let _ = w.indexer.send(IndexMsg::Sync(done));
                            let synced = synced.blocking_recv().unwrap_or(Err(StoreError::Closed));
                            // The sqlx path moves heads on; reload them from `audit_heads` afterwards.
                            w.heads.clear();
                            let ok = synced.is_ok();
                            let _ = ready.send(synced);
                            if ok {
                                let _ = resume.recv();
                            }
                            continue;
                        }
                    }
                    commits = commits.wrapping_add(1);
                    if commits & (CHECKPOINT_EVERY - 1) == 0 {
                        if commits & (FINISH_CHECKPOINT_EVERY - 1) == FLUSH_AT {
                            flush.asked.store(true, Ordering::Release);
                        }
                        // Full means a checkpoint is pending already.
                        let _ = nudge.try_send(());
                    }
                    if commits & (FINISH_CHECKPOINT_EVERY - 1) == 0 {
                        // The checkpoint thread copies the bulk of the WAL while commits go on, but
                        // SQLite only restarts the WAL from its beginning when a write transaction
                        // starts on a fully checkpointed WAL. Finishing the copy here, between two
                        // transactions and after the batch was answered, costs the few frames
                        // written since, and keeps the WAL short.
                        finish_checkpoint(&w.conn);
                    }
                }
            })
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite writer thread: {e}"))
            })?;
        Ok(SqliteWriter {
            tx,
            handoff,
            cache,
            readers: Arc::new(parking_lot::Mutex::new(Vec::new())),
            file: file.to_owned(),
        })
    }

    /// `list_secrets` on a pooled read-only rusqlite connection (same SQL as sql.rs).
    pub async fn list_secrets(&self, q: OwnedList) -> Result<Vec<SecretRow>> {
        let readers = self.readers.clone();
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().pop();
            let conn = match conn {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &file,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    c.busy_timeout(Duration::from_secs(10))?;
                    c.execute_batch("PRAGMA cache_size = -2000;")?;
                    c
                }
            };
            let rows = list_rows(&conn, &q);
            let mut pool = readers.lock();
            if pool.len() < 4 {
                pool.push(conn);
            }
            Ok(rows?)
        })
        .await
        .map_err(|e| StoreError::Config(format!("list task failed: {e}")))?
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

    /// Runs the batch on the writer thread; returns once it is durable (or failed).
    pub async fn apply(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Apply(ops, reply))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Returns once every audit entry acknowledged before the call is in `audit_log` (and the read
    /// counters), so a query sees it.
    pub async fn sync_audit(&self) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Sync(done))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Indexes the journal and parks the writer thread until the guard is dropped, so another
    /// connection can commit a batch with audit entries chained from the committed head.
    pub async fn exclusive(&self) -> Result<ExclusiveGuard> {
        let (ready, rx) = oneshot::channel();
        let (resume, resumed) = mpsc::sync_channel(1);
        self.tx
            .send(Msg::Exclusive(ready, resumed))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)??;
        Ok(ExclusiveGuard { _resume: resume })
    }
}

/// Commits between two checkpoint nudges (a commit adds a few pages to the WAL); a power of two.
const CHECKPOINT_EVERY: u32 = 32;
/// Commits between two checkpoints the writer finishes itself (see the writer loop); a power of two.
const FINISH_CHECKPOINT_EVERY: u32 = 128;

/// Where in a [`FINISH_CHECKPOINT_EVERY`] cycle the checkpoint thread also flushes the database file.
///
/// SQLite syncs the database file only when a checkpoint reaches the end of the WAL, which under
/// steady writes is only the one the writer finishes; that `fsync` then wrote back every page the
/// checkpoint thread had copied since the last one (~7 ms, stalling the writer and setting the write
/// p99). Flushing them on the checkpoint thread one nudge earlier leaves the finishing checkpoint the
/// pages of the last few commits. Flushing after every checkpoint instead cost writes/s (bench/README.md).
const FLUSH_AT: u32 = FINISH_CHECKPOINT_EVERY - CHECKPOINT_EVERY;

/// The checkpoint thread's flush of the database file, asked for by the writer.
struct Flush {
    db: std::path::PathBuf,
    asked: AtomicBool,
    /// The [`Syncer`]'s: a failed flush stops acknowledgements as a failed WAL sync does.
    failed: Arc<AtomicBool>,
}

impl Flush {
    fn run_if_asked(&self) {
        if !self.asked.swap(false, Ordering::AcqRel) || self.failed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = std::fs::File::open(&self.db).and_then(|f| f.sync_data()) {
            tracing::error!(site = "ST0117", error = %e, "fdatasync of the SQLite database failed; nothing more is acknowledged until a restart");
            self.failed.store(true, Ordering::Release);
        }
    }
}

fn finish_checkpoint(conn: &Connection) {
    let r: rusqlite::Result<(i64, i64, i64)> =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        });
    if let Err(e) = r {
        tracing::warn!(site = "ST0103", error = %e, "WAL checkpoint failed");
    }
}

/// Copies committed WAL pages back into the database when nudged by the writer (and at least every
/// few seconds), so no commit pays for the bulk of a checkpoint. PASSIVE never blocks the writer or
/// readers. The writer finishes the job now and then so the WAL can restart from its beginning.
fn checkpoint_loop(conn: &Connection, nudged: &mpsc::Receiver<()>, flush: &Flush) {
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
        flush.run_if_asked();
        if last {
            return;
        }
    }
}

/// Journaled entries wait at most this long before the indexer moves them into `audit_log`, unless a
/// query asks for them sooner or [`INDEX_BATCH`] of them are waiting.
const INDEX_DELAY: Duration = Duration::from_secs(1);
const INDEX_BATCH: usize = 16_384;
/// Records the indexer may hold in memory before the writer waits for it (see [`Handoff`]).
const MAX_BACKLOG: usize = 2 * INDEX_BATCH;

/// Journaled records on their way from the writer to the indexer, and how many records handed over
/// are not committed to `audit_log` yet.
///
/// The writer adds each journaled batch here without waking the indexer, which moves entries at
/// most every [`INDEX_DELAY`] unless asked sooner: waking it for every batch (a thousand a second
/// under reads) only cost both threads a futex round trip each. The writer sends
/// [`IndexMsg::Wake`] for the records that start a delay (the first after the indexer emptied the
/// inbox) and for the one that fills a batch of [`INDEX_BATCH`]; a query's sync wakes it as well, and
/// the indexer then takes everything added before.
///
/// The records wait in memory, so a sustained load the indexer cannot keep up with (a stream of
/// 100-path batch reads, say) must slow the writer down instead of growing the inbox without bound:
/// past [`MAX_BACKLOG`] the writer waits until a commit of the indexer drains it.
#[derive(Default)]
struct Handoff {
    state: parking_lot::Mutex<Inbox>,
    drained: parking_lot::Condvar,
    /// Messages the indexer woke up for (read by tests).
    wakes: AtomicU64,
}

#[derive(Default)]
struct Inbox {
    records: Vec<JournalRecord>,
    /// The journal position after the last record added.
    pos: Option<Pos>,
    /// Records added and not committed yet: in the inbox, or taken and being indexed.
    uncommitted: usize,
}

impl Handoff {
    /// Adds a journaled batch, once the backlog is within its bound; returns whether the indexer
    /// must be woken for it.
    fn add(&self, records: Vec<JournalRecord>, pos: Pos) -> bool {
        let mut inbox = self.state.lock();
        while inbox.uncommitted > MAX_BACKLOG {
            self.drained.wait(&mut inbox);
        }
        let before = inbox.records.len();
        inbox.uncommitted += records.len();
        if before == 0 {
            inbox.records = records;
        } else {
            inbox.records.extend(records);
        }
        inbox.pos = Some(pos);
        before == 0 || (before < INDEX_BATCH && inbox.records.len() >= INDEX_BATCH)
    }

    fn waiting(&self) -> usize {
        self.state.lock().records.len()
    }

    /// Everything added so far, with the position after it.
    fn take(&self) -> (Vec<JournalRecord>, Option<Pos>) {
        let mut inbox = self.state.lock();
        (std::mem::take(&mut inbox.records), inbox.pos)
    }

    /// `n` records taken are committed (or dropped after a failure).
    fn done(&self, n: usize) {
        let mut inbox = self.state.lock();
        inbox.uncommitted = inbox.uncommitted.saturating_sub(n);
        self.drained.notify_all();
    }
}

/// Moves journaled entries into `audit_log` in large transactions (one fsync each), records how far
/// it got in the same transaction, then deletes the journal segments fully indexed.
fn index_loop(
    mut conn: Connection,
    rx: &mpsc::Receiver<IndexMsg>,
    dir: &Path,
    nudge: &mpsc::SyncSender<()>,
    handoff: &Handoff,
) {
    let mut waiters: Vec<Done> = Vec::new();
    // When the records waiting now started to wait (roughly: when the writer woke this thread).
    let mut since: Option<Instant> = None;
    let mut failed = false;
    loop {
        let msg = match since {
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
            Some(t) => match rx.recv_timeout(INDEX_DELAY.saturating_sub(t.elapsed())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        for m in msg
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            handoff.wakes.fetch_add(1, Ordering::Relaxed);
            match m {
                IndexMsg::Wake => {
                    since.get_or_insert_with(Instant::now);
                }
                IndexMsg::Sync(d) => waiters.push(d),
            }
        }
        let due = since.is_some_and(|t| t.elapsed() >= INDEX_DELAY);
        if !(due || !waiters.is_empty() || handoff.waiting() >= INDEX_BATCH) {
            continue;
        }
        let (records, pos) = handoff.take();
        since = None;
        let result = match pos {
            Some(p) if !records.is_empty() && !failed => {
                let started = Instant::now();
                let r = index_tx(&mut conn, &records, p);
                match &r {
                    Ok(()) => {
                        tracing::debug!(
                            entries = records.len(),
                            micros = started.elapsed().as_micros() as u64,
                            "audit journal indexed"
                        );
                        audit_journal::remove_before(dir, p);
                        let _ = nudge.try_send(());
                    }
                    Err(e) => {
                        // The entries stay journaled (and are replayed at the next start); queries
                        // are refused rather than answered without them.
                        tracing::error!(site = "ST0113", error = %e, "indexing the audit journal failed");
                        failed = true;
                    }
                }
                r
            }
            _ if failed => Err(StoreError::Config(
                "the audit journal could not be indexed; restart the server to replay it".into(),
            )),
            _ => Ok(()),
        };
        handoff.done(records.len());
        for w in waiters.drain(..) {
            let _ = w.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Config(e.to_string())),
            });
        }
    }
}

fn index_tx(conn: &mut Connection, records: &[JournalRecord], pos: Pos) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    audit_journal::index(&tx, records, pos)?;
    tx.commit()?;
    Ok(())
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

type Head = (i64, Vec<u8>);

struct Writer {
    conn: Connection,
    cache: Arc<SecretCache>,
    /// Every tenant's chain head as this thread last moved it (journaled entries included); a tenant
    /// missing here is loaded from `audit_heads`.
    heads: HashMap<String, Head>,
    /// `None` once an append failed: what reached the disk is unknown, so no entry may be chained
    /// after it until a restart replays the journal.
    journal: Option<Journal>,
    indexer: mpsc::Sender<IndexMsg>,
    handoff: Arc<Handoff>,
    buf: Vec<u8>,
    /// Makes each commit durable, then answers its requests.
    syncer: Syncer,
}

/// The WAL SQLite keeps beside `db` (`<db>-wal`).
fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

fn load_head(c: &Connection, tenant: &str) -> rusqlite::Result<Head> {
    let head: Option<Head> = c
        .prepare_cached("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1")?
        .query_row(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(head.unwrap_or((0, GENESIS.to_vec())))
}

impl Writer {
    /// Chains and journals the standalone audit entries of a group of requests in one write; answers
    /// each once they are durable (see [`audit_journal::AuditSync`]).
    fn journal_batch(&mut self, group: Vec<(Vec<WriteOp>, Reply)>) {
        let started = Instant::now();
        self.buf.clear();
        let mut moved: HashMap<String, Head> = HashMap::new();
        let mut records = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
        let mut fail: Option<StoreError> = None;
        for (ops, reply) in group {
            replies.push((ops.len(), reply));
            if fail.is_some() {
                continue;
            }
            for op in ops {
                let WriteOp::Audit(entries) = op else {
                    continue;
                };
                for e in entries {
                    let e = sanitize_owned(e);
                    if !moved.contains_key(&e.tenant_id) {
                        let h = match self.heads.get(&e.tenant_id) {
                            Some(h) => h.clone(),
                            None => match load_head(&self.conn, &e.tenant_id) {
                                Ok(h) => h,
                                Err(err) => {
                                    fail = Some(err.into());
                                    break;
                                }
                            },
                        };
                        moved.insert(e.tenant_id.clone(), h);
                    }
                    let Some(head) = moved.get_mut(&e.tenant_id) else {
                        continue;
                    };
                    let seq = head.0 + 1;
                    let hash = e.chain_hash(seq, &head.1).to_vec();
                    head.0 = seq;
                    head.1.clone_from(&hash);
                    let rec = JournalRecord {
                        seq,
                        hash,
                        entry: e,
                    };
                    if let Err(err) = audit_journal::encode(&mut self.buf, &rec) {
                        fail = Some(err);
                        break;
                    }
                    records.push(rec);
                }
            }
        }
        let refuse = |replies: Vec<(usize, Reply)>, why: String| {
            for (_, reply) in replies {
                let _ = reply.send(Err(StoreError::Config(why.clone())));
            }
        };
        if let Some(e) = fail {
            refuse(replies, e.to_string());
            return;
        }
        let Some(journal) = self.journal.as_mut().filter(|_| !self.syncer.failed()) else {
            refuse(
                replies,
                "the audit journal failed; restart the server".into(),
            );
            return;
        };
        // The batch chains from entries of commits still being synced: they reach the disk first.
        self.syncer.wait_synced();
        match journal.append(&self.buf) {
            Ok(pos) => {
                self.heads.extend(moved);
                let n_records = records.len();
                // Queued for the indexer before the answers, so a query made after an answer finds
                // these entries when it syncs.
                if self.handoff.add(records, pos) {
                    let _ = self.indexer.send(IndexMsg::Wake);
                }
                let requests = replies.len();
                for (n_ops, reply) in replies {
                    let _ = reply.send(Ok((0..n_ops).map(|_| Ok(OpOutcome::Audited)).collect()));
                }
                tracing::debug!(
                    requests,
                    records = n_records,
                    bytes = self.buf.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "audit journal appended"
                );
            }
            Err(e) => {
                tracing::error!(site = "ST0114", error = %e, "audit journal append failed; audit (and so every request) is refused until a restart");
                self.journal = None;
                refuse(replies, format!("audit journal append failed: {e}"));
            }
        }
        if self.buf.capacity() > (1 << 20) {
            self.buf = Vec::with_capacity(64 * 1024);
        }
    }

    /// Applies the mutations of a group of requests in one transaction; once it is durable, answers
    /// each request with its operations' results.
    fn apply_group(&mut self, group: Vec<(Vec<WriteOp>, Reply)>) {
        let mut counts = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut ops = Vec::new();
        for (o, reply) in group {
            counts.push(o.len());
            replies.push(reply);
            ops.extend(o);
        }
        match self.apply(&ops) {
            Ok(results) => {
                let mut results = results.into_iter();
                let answers = replies
                    .into_iter()
                    .zip(counts)
                    .map(|(reply, n)| (reply, results.by_ref().take(n).collect()))
                    .collect();
                self.syncer.submit(answers);
            }
            Err(e) => {
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Config(why.clone())));
                }
            }
        }
    }

    fn apply(&mut self, ops: &[WriteOp]) -> Result<Vec<OpResult>> {
        if self.syncer.failed() {
            return Err(StoreError::Config(
                "an fdatasync failed; restart the server".into(),
            ));
        }
        if self.journal.is_none() {
            return Err(StoreError::Config(
                "the audit journal failed; restart the server".into(),
            ));
        }
        let result = apply_batch(&mut self.conn, ops, &mut self.heads);
        let cache = &self.cache;
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
            Err(_) => {
                // Nothing committed (and the heads went back): forgetting every cached secret is
                // cheap insurance.
                cache.clear();
            }
        }
        result
    }
}

/// [`sanitize`] for an entry the caller owns.
fn sanitize_owned(e: AuditEntry) -> AuditEntry {
    let clean = |s: &String| !s.contains('\0');
    let clean_opt = |s: &Option<String>| s.as_ref().is_none_or(clean);
    if clean(&e.id)
        && clean(&e.tenant_id)
        && clean(&e.action)
        && clean(&e.identity_type)
        && clean(&e.identity_id)
        && clean_opt(&e.secret_path)
        && clean_opt(&e.source_ip)
        && clean_opt(&e.user_agent)
        && clean_opt(&e.error_code)
        && clean(&e.request_id)
        && clean(&e.extra_data)
    {
        e
    } else {
        sanitize(&e)
    }
}

struct AuditState<'a> {
    heads: &'a mut HashMap<String, Head>,
    touched: HashSet<String>,
    access: HashMap<(String, String, i64), (i64, i64)>,
}

/// Which operations of a batch run inside a savepoint of their own.
#[derive(Clone, Copy, PartialEq)]
enum Guard {
    /// Every operation but [`unguarded`] ones. A savepoint costs a copy of every page it changes
    /// that the batch changed before (~7% of the writer thread's time at 16 connections), so the
    /// hot write goes without.
    Needed,
    /// Every operation: the fallback once an unguarded one failed halfway.
    Every,
}

/// Operations that refuse (conflict, soft-deleted) before they change anything, so that without a
/// savepoint only a database error halfway through needs one — and then the batch runs again with
/// [`Guard::Every`].
fn unguarded(op: &WriteOp) -> bool {
    matches!(op, WriteOp::PutSecret(_))
}

/// Applies a batch in one transaction; on error nothing is committed and `heads` are as before.
fn apply_batch(
    conn: &mut Connection,
    ops: &[WriteOp],
    heads: &mut HashMap<String, Head>,
) -> Result<Vec<OpResult>> {
    let before = heads.clone();
    let result = match apply_tx(conn, ops, heads, Guard::Needed) {
        Ok(Some(results)) => Ok(results),
        // An unguarded write failed halfway and the transaction was rolled back: run the batch
        // again with a savepoint around every operation, so only that one fails.
        Ok(None) => {
            heads.clone_from(&before);
            apply_tx(conn, ops, heads, Guard::Every).and_then(|r| {
                r.ok_or_else(|| StoreError::Config("a guarded batch asked to be run again".into()))
            })
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        *heads = before;
    }
    result
}

/// Applies a batch in one transaction. `Ok(None)`: an unguarded operation failed after it changed
/// something; nothing was committed, and the caller runs the batch again with [`Guard::Every`].
fn apply_tx(
    conn: &mut Connection,
    ops: &[WriteOp],
    heads: &mut HashMap<String, Head>,
    guard: Guard,
) -> Result<Option<Vec<OpResult>>> {
    let started = std::time::Instant::now();
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut audit = AuditState {
        heads,
        touched: HashSet::new(),
        access: HashMap::new(),
    };
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        if let WriteOp::Audit(entries) = op {
            append_audit(&tx, entries, None, &mut audit)?;
            results.push(Ok(OpOutcome::Audited));
            continue;
        }
        if guard == Guard::Needed && unguarded(op) {
            let outcome = match apply_one(&tx, op) {
                Ok(Ok(o)) => Ok(o),
                Ok(Err(e @ (OpError::Conflict { .. } | OpError::SoftDeleted { .. }))) => Err(e),
                // Dropping the transaction rolls it back.
                Ok(Err(_)) | Err(_) => return Ok(None),
            };
            append_audit(&tx, op.audit_entries(), outcome.as_ref().err(), &mut audit)?;
            results.push(outcome);
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
             ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash \
             WHERE excluded.seq > audit_heads.seq",
        )?;
        for tenant in &audit.touched {
            if let Some((seq, hash)) = audit.heads.get(tenant) {
                st.execute(params![tenant, seq, hash])?;
            }
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
    Ok(Some(results))
}

/// Appends entries to each tenant's hash chain, as `impl_store!`'s `append_audit` does.
fn append_audit(
    c: &Connection,
    entries: &[AuditEntry],
    failure: Option<&OpError>,
    st: &mut AuditState<'_>,
) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = c.prepare_cached(audit_journal::AUDIT_INSERT)?;
    for e in entries {
        let mut e = sanitize(e);
        if let Some(err) = failure {
            let (code, status) = err.code();
            e.success = false;
            e.status = status;
            e.error_code = Some(code.to_owned());
        }
        if !st.heads.contains_key(&e.tenant_id) {
            let head = load_head(c, &e.tenant_id)?;
            st.heads.insert(e.tenant_id.clone(), head);
        }
        if !st.touched.contains(&e.tenant_id) {
            st.touched.insert(e.tenant_id.clone());
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
        audit_journal::insert_audit_row(&mut insert, &e, seq, hash.as_slice())?;
    }
    Ok(())
}

fn list_rows(c: &Connection, q: &OwnedList) -> rusqlite::Result<Vec<SecretRow>> {
    let mut sql = format!(
        "SELECT {SECRET_COLS} FROM secrets WHERE tenant_id = ?1 AND path >= ?2 AND path < ?3 AND path > ?4"
    );
    if !q.include_deleted {
        sql.push_str(" AND deleted_at IS NULL");
    }
    if q.expiring_before.is_some() {
        sql.push_str(" AND expires_at IS NOT NULL AND expires_at <= ?6");
    } else {
        sql.push_str(" AND ?6 IS NULL");
    }
    sql.push_str(" ORDER BY path LIMIT ?5");
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(
        params![
            q.tenant_id,
            q.prefix,
            q.upper,
            q.after,
            q.limit,
            q.expiring_before
        ],
        secret_from_row,
    )?;
    rows.collect()
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

/// The statements a secret write runs on `secret_history` and `secret_versions` besides its insert.
///
/// None reads and writes a table in one statement: SQLite runs `INSERT … SELECT` from its own target,
/// and `DELETE … RETURNING`, through an ephemeral b-tree, which opens and tears down a temporary pager
/// and page cache each time. Three of those per write (its history row, the pruned version, that
/// version's history row) cost 4–10% of the writer thread's CPU per write at 16 connections.
const HISTORY_LAST: &str =
    "SELECT COALESCE(MAX(seq), 0) FROM secret_history WHERE tenant_id = ?1 AND path = ?2";
const HISTORY_INSERT: &str =
    "INSERT INTO secret_history (tenant_id, path, seq, action, version, identity_id, at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const PRUNED_VERSIONS: &str = "SELECT version FROM secret_versions \
     WHERE tenant_id = ?1 AND path = ?2 AND version <= ?3 ORDER BY version";
const PRUNE_VERSIONS: &str =
    "DELETE FROM secret_versions WHERE tenant_id = ?1 AND path = ?2 AND version <= ?3";

/// Appends a history row numbered after the path's last one.
fn history_push(
    c: &Connection,
    tenant: &str,
    path: &str,
    action: &str,
    version: Option<i64>,
    by: &str,
    at: i64,
) -> rusqlite::Result<()> {
    let last: i64 = c
        .prepare_cached(HISTORY_LAST)?
        .query_row(params![tenant, path], |r| r.get(0))?;
    c.prepare_cached(HISTORY_INSERT)?.execute(params![
        tenant,
        path,
        last + 1,
        action,
        version,
        by,
        at
    ])?;
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
    let pruned: Vec<i64> = c
        .prepare_cached(PRUNED_VERSIONS)?
        .query_map(params![tenant, path, cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if pruned.is_empty() {
        return Ok(());
    }
    c.prepare_cached(PRUNE_VERSIONS)?
        .execute(params![tenant, path, cutoff])?;
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
    // Every refusal comes before the first change (see `unguarded`).
    let mut existing = lock_secret(c, &p.tenant_id, &p.path)?;
    let mut expired = false;
    if let Some(s) = existing.as_ref().filter(|s| s.deleted_at.is_some()) {
        if s.recoverable_until.is_some_and(|u| u > p.now) {
            return Ok(Err(OpError::SoftDeleted {
                recoverable_until: s.recoverable_until,
            }));
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
        purge(c, &p.tenant_id, &p.path)?;
        existing = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_put as put;

    /// A connection to a fresh database with every SQLite migration applied.
    fn migrated(dir: &Path) -> Connection {
        let file = dir.join("db");
        std::fs::File::create(&file).unwrap();
        let conn = open_conn(&file, 2_000, Durability::Full).unwrap();
        let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(migrations)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            conn.execute_batch(&std::fs::read_to_string(f).unwrap())
                .unwrap();
        }
        conn
    }

    fn column(conn: &Connection, sql: &str) -> Vec<String> {
        let mut st = conn.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// Writes run without a savepoint of their own; one that fails halfway (here a trigger refuses
    /// its history row, after its version and secret rows were written) makes the batch run again
    /// guarded, so it alone fails, leaves nothing behind, and the audit chain has no gap.
    #[test]
    fn a_write_failing_halfway_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = migrated(dir.path());
        conn.execute_batch(
            "CREATE TRIGGER refuse AFTER INSERT ON secret_history WHEN NEW.path = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let mut heads = HashMap::new();
        let ops = [put("a", 0), put("bad", 0), put("c", 0)];
        let results = apply_batch(&mut conn, &ops, &mut heads).unwrap();
        assert!(matches!(results[0], Ok(OpOutcome::Put { version: 1, .. })));
        assert!(
            matches!(results[1], Err(OpError::Store(_))),
            "{:?}",
            results[1]
        );
        assert!(matches!(results[2], Ok(OpOutcome::Put { version: 1, .. })));
        for table in ["secrets", "secret_versions", "secret_history"] {
            assert_eq!(
                column(&conn, &format!("SELECT path FROM {table} ORDER BY path")),
                ["a", "c"],
                "{table}"
            );
        }
        // One entry per operation, the refused one marked failed, chained 1, 2, 3.
        assert_eq!(
            column(
                &conn,
                "SELECT seq || ':' || secret_path || ':' || success FROM audit_log ORDER BY seq"
            ),
            ["1:a:1", "2:bad:0", "3:c:1"]
        );
        assert_eq!(heads["t"].0, 3);
    }

    /// A refused write (version conflict, soft-deleted secret) changes nothing, guarded or not, and
    /// the batch around it commits.
    #[test]
    fn a_refused_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = migrated(dir.path());
        let mut heads = HashMap::new();
        apply_batch(&mut conn, &[put("gone", 0)], &mut heads).unwrap();
        // Deleted, recoverable until after the writes below: a write is refused.
        conn.execute(
            "UPDATE secrets SET deleted_at = 1, deleted_by = 'u', recoverable_until = 5000",
            [],
        )
        .unwrap();
        let ops = [put("x", 0), put("y", 3), put("gone", 1), put("z", 0)];
        let results = apply_batch(&mut conn, &ops, &mut heads).unwrap();
        assert!(matches!(results[1], Err(OpError::Conflict { current: 0 })));
        assert!(matches!(results[2], Err(OpError::SoftDeleted { .. })));
        assert_eq!(
            column(&conn, "SELECT path FROM secret_versions ORDER BY path"),
            ["gone", "x", "z"]
        );
        // Once retention is over, a write expecting the old version conflicts and purges nothing;
        // one expecting 0 starts the secret afresh.
        conn.execute("UPDATE secrets SET recoverable_until = 1", [])
            .unwrap();
        let results = apply_batch(&mut conn, &[put("gone", 1)], &mut heads).unwrap();
        assert!(matches!(results[0], Err(OpError::Conflict { current: 0 })));
        assert_eq!(
            column(&conn, "SELECT path FROM secret_history WHERE path = 'gone'"),
            ["gone"]
        );
        let results = apply_batch(&mut conn, &[put("gone", 0)], &mut heads).unwrap();
        assert!(matches!(
            results[0],
            Ok(OpOutcome::Put {
                version: 1,
                created: true,
                ..
            })
        ));
    }

    /// A write's history and prune statements stay plain: an ephemeral b-tree per statement (see
    /// [`HISTORY_LAST`]) costs the writer a temporary pager each time.
    #[test]
    fn history_and_prune_statements_need_no_ephemeral_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = migrated(dir.path());
        for sql in [
            HISTORY_LAST,
            HISTORY_INSERT,
            PRUNED_VERSIONS,
            PRUNE_VERSIONS,
        ] {
            let mut st = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; st.parameter_count()];
            let opcodes: Vec<String> = st
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(1))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                !opcodes.iter().any(|o| o == "OpenEphemeral"),
                "{sql}: {opcodes:?}"
            );
        }
    }

    #[test]
    fn a_write_past_max_versions_prunes_in_order_and_numbers_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let conn = migrated(dir.path());
        for v in 1..=4 {
            history_push(&conn, "t", "p", "write", Some(v), "u", v).unwrap();
            conn.execute(
                "INSERT INTO secret_versions (tenant_id, path, version, wrapped_dek, ciphertext, created_at, created_by) \
                 VALUES ('t', 'p', ?1, x'00', x'00', 0, 'u')",
                [v],
            )
            .unwrap();
        }
        history_push(&conn, "t", "other", "write", Some(1), "u", 1).unwrap();
        prune(&conn, "t", "p", 4, 1, "u", 9).unwrap();
        let left: Vec<i64> = conn
            .prepare("SELECT version FROM secret_versions WHERE path = 'p' ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(left, vec![4]);
        let history: Vec<(i64, String, i64)> = conn
            .prepare(
                "SELECT seq, action, version FROM secret_history WHERE path = 'p' ORDER BY seq",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let want: Vec<(i64, String, i64)> = [
            (1, "write", 1),
            (2, "write", 2),
            (3, "write", 3),
            (4, "write", 4),
            (5, "prune", 1),
            (6, "prune", 2),
            (7, "prune", 3),
        ]
        .into_iter()
        .map(|(s, a, v)| (s, a.to_owned(), v))
        .collect();
        assert_eq!(history, want);
    }

    #[test]
    fn the_database_flush_runs_only_when_asked_and_a_failure_stops_acknowledgements() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::write(&db, b"pages").unwrap();
        let flush = Flush {
            db: db.clone(),
            asked: AtomicBool::new(false),
            failed: Arc::new(AtomicBool::new(false)),
        };
        flush.asked.store(true, Ordering::Release);
        flush.run_if_asked();
        assert!(!flush.asked.load(Ordering::Acquire), "the request is taken");
        assert!(!flush.failed.load(Ordering::Acquire));

        std::fs::remove_file(&db).unwrap();
        flush.run_if_asked();
        assert!(
            !flush.failed.load(Ordering::Acquire),
            "nothing runs unless the writer asked"
        );
        flush.asked.store(true, Ordering::Release);
        flush.run_if_asked();
        assert!(
            flush.failed.load(Ordering::Acquire),
            "a flush that fails poisons the store"
        );
    }

    fn records(from: i64, n: usize) -> Vec<JournalRecord> {
        (from..from + n as i64)
            .map(|seq| JournalRecord {
                seq,
                hash: vec![0; 32],
                entry: crate::audit_journal::test_entry(format!("log_{seq}"), seq, "read", "a/b"),
            })
            .collect()
    }

    #[test]
    fn backlog_waits_past_its_bound_until_the_indexer_drains_it() {
        let handoff = Arc::new(Handoff::default());
        handoff.add(records(1, MAX_BACKLOG + 1), Pos::default());
        let (added, was_added) = mpsc::channel();
        let writer = {
            let handoff = handoff.clone();
            std::thread::spawn(move || {
                handoff.add(records(0, 1), Pos::default());
                added.send(()).unwrap();
            })
        };
        assert!(
            was_added.recv_timeout(Duration::from_millis(200)).is_err(),
            "add() past the bound must wait for the indexer"
        );
        let (taken, _) = handoff.take();
        handoff.done(taken.len());
        was_added
            .recv_timeout(Duration::from_secs(10))
            .expect("add() goes on once a commit drained the backlog");
        writer.join().unwrap();
        assert_eq!(handoff.state.lock().uncommitted, 1);
    }

    /// The writer wakes the indexer for the records that start a wait and for the one that fills a
    /// batch, not for every journaled batch.
    #[test]
    fn the_writer_wakes_the_indexer_to_start_a_wait_and_for_a_full_batch() {
        let h = Handoff::default();
        let p = |offset| Pos { segment: 1, offset };
        assert!(
            h.add(records(1, 3), p(10)),
            "the first records start a wait"
        );
        assert!(!h.add(records(4, 3), p(20)));
        assert!(!h.add(records(7, INDEX_BATCH - 8), p(30)));
        assert!(
            h.add(records(1_000_000, 5), p(40)),
            "this one fills a batch"
        );
        assert!(!h.add(records(2_000_000, 1), p(50)));
        let (taken, pos) = h.take();
        assert_eq!(taken.len(), INDEX_BATCH + 4);
        assert_eq!(
            taken[..3].iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(pos, Some(p(50)));
        assert!(
            h.add(records(3_000_000, 1), p(60)),
            "the inbox was emptied: a new wait"
        );
        assert_eq!(h.state.lock().uncommitted, INDEX_BATCH + 5);
        h.done(INDEX_BATCH + 4);
        assert_eq!(h.state.lock().uncommitted, 1);
    }

    /// Under a stream of journaled batches the indexer thread wakes once per delay, not once per
    /// batch, and a sync still finds every entry acknowledged before it.
    #[tokio::test]
    async fn the_indexer_sleeps_through_a_stream_of_journaled_batches() {
        let dir = tempfile::tempdir().unwrap();
        drop(migrated(dir.path()));
        let file = dir.path().join("db");
        let w = SqliteWriter::open(
            &file,
            Arc::new(SecretCache::with_capacity(1 << 20)),
            2_000,
            audit_journal::AuditSync::Interval(Duration::from_millis(1)),
        )
        .unwrap();
        let started = Instant::now();
        for i in 0..40 {
            let e = crate::audit_journal::test_entry(format!("log_{i:03}"), i, "read", "a/b");
            w.apply(vec![WriteOp::Audit(vec![e])]).await.unwrap();
        }
        let wakes = w.handoff.wakes.load(Ordering::Relaxed);
        if started.elapsed() < INDEX_DELAY {
            assert!(
                wakes <= 2,
                "the indexer woke {wakes} times for 40 journaled batches"
            );
        }
        w.sync_audit().await.unwrap();
        let conn = Connection::open(&file).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 40);
    }
}
