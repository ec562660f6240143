//! The SQLite store's audit journal: an append-only file of checksummed records that is the
//! durability point of audit entries of requests that write nothing else (reads, lists, refusals).
//!
//! Writing such an entry into `audit_log` inside a SQLite transaction costs a b-tree insert into the
//! table and each of its indexes, a WAL frame for every page touched and an fsync per commit. The
//! journal costs one `write` + `fdatasync` per group-committed batch, whatever its size; the entries
//! reach `audit_log` shortly after, in large batches, through the indexer thread
//! (sqlite_writer.rs). Nothing about the entries changes: their chain sequence number and hash are
//! computed, in order, before they are journaled.
//!
//! Layout: `<database>.audit/` holds segments `NNNNNNNNNNNNNNNNNNNN.journal`, written in order. A
//! record is `len: u32 LE | crc32(payload): u32 LE | payload` with the payload the JSON of
//! [`JournalRecord`]. A segment is rotated once it passes [`SEGMENT_BYTES`]; the new file is created
//! and the directory fsynced before anything is written into it. Records are written at their offset
//! into room zero-filled ahead ([`GROW_BYTES`] at a time), and the zeros after the last record end a
//! segment cleanly.
//!
//! Crash safety: with [`AuditSync::Always`] (the default) a batch is acknowledged only after its
//! `fdatasync` returned; with [`AuditSync::Interval`] after its `write` returned, the `fdatasync`
//! following within the interval. The indexer records, in
//! the same transaction as the rows it inserts, the journal position it has indexed up to
//! (`system_meta` key [`PROGRESS_KEY`]), and deletes a segment only once a later position is committed.
//! At start-up [`recover`] replays every record after that position (a torn record at the tail of the
//! last segment — never acknowledged — ends the replay), commits, then removes the segments.

use crate::{day_of, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use scaivault_core::audit::AuditEntry;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A segment is closed once it holds this many bytes (a batch is never split across segments).
pub const SEGMENT_BYTES: u64 = 16 << 20;
/// `system_meta` key holding the last indexed position, `"<segment>:<offset>"`.
pub const PROGRESS_KEY: &str = "audit_journal_indexed";

/// One journaled entry, with its place in the tenant's chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalRecord {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub entry: AuditEntry,
}

/// A position in the journal: just after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

impl Pos {
    fn parse(s: &str) -> Option<Pos> {
        let (a, b) = s.split_once(':')?;
        Some(Pos {
            segment: a.parse().ok()?,
            offset: b.parse().ok()?,
        })
    }

    fn text(self) -> String {
        format!("{}:{}", self.segment, self.offset)
    }
}

/// CRC-32 (IEEE), as zlib computes it.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Appends one record to `buf`.
pub fn encode(buf: &mut Vec<u8>, rec: &JournalRecord) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    serde_json::to_writer(&mut *buf, rec)
        .map_err(|e| StoreError::Config(format!("audit journal record: {e}")))?;
    let payload = &buf[start + 8..];
    let len = u32::try_from(payload.len())
        .map_err(|_| StoreError::Config("audit journal record too large".into()))?;
    let crc = crc32(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The records of one segment's bytes with the offset just after each, up to the first torn or
/// corrupt record (or the end). The second value tells whether the bytes ended cleanly.
pub fn decode(bytes: &[u8]) -> (Vec<(JournalRecord, u64)>, bool) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        if bytes[at..].iter().all(|b| *b == 0) {
            // The zero-filled room a segment grows by (see `GROW_BYTES`): the records end here.
            return (out, true);
        }
        let Some(head) = bytes.get(at..at + 8) else {
            return (out, false);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            return (out, false);
        };
        if len == 0 || crc32(payload) != crc {
            return (out, false);
        }
        let Ok(rec) = serde_json::from_slice::<JournalRecord>(payload) else {
            return (out, false);
        };
        at += 8 + len;
        out.push((rec, at as u64));
    }
    (out, true)
}

/// The journal directory of a database file.
pub fn dir_of(db_file: &Path) -> PathBuf {
    let mut name = db_file.file_name().unwrap_or_default().to_os_string();
    name.push(".audit");
    db_file.with_file_name(name)
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.journal"))
}

/// Segment numbers present in `dir`, ascending.
fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err("read", dir, &e))? {
        let e = e.map_err(|e| io_err("read", dir, &e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".journal")
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn io_err(what: &str, p: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Config(format!("audit journal: cannot {what} {}: {e}", p.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync", dir, &e))
}

/// When a journaled batch reaches the disk, relative to the answers of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditSync {
    /// `fdatasync` before any request of the batch is answered: an acknowledged entry survives a
    /// crash of the server and a power loss alike.
    #[default]
    Always,
    /// `write` before the answers — the entry is in the kernel, so it survives a crash or `kill -9` of
    /// the server — and `fdatasync` by a background thread within this interval, so a power loss or
    /// kernel crash can lose at most the entries of that window. The guarantee of OpenBao's and
    /// Vault's file audit device (which never fsyncs), bounded. Writes are unaffected: they commit
    /// with their audit entry in one fsynced transaction.
    Interval(std::time::Duration),
}

/// The background `fdatasync` of [`AuditSync::Interval`].
///
/// Its thread parks while the journal is clean and [`Journal::append`] unparks it when a write makes
/// the journal dirty, so an idle server does not wake it every interval. Dropping the [`Journal`]
/// unparks it to exit.
struct Flusher {
    file: parking_lot::Mutex<Arc<File>>,
    dirty: AtomicBool,
    failed: AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
    /// Times the thread woke up, and `fdatasync`s it made (for tests).
    wakes: AtomicU64,
    syncs: AtomicU64,
}

impl Flusher {
    fn start(file: Arc<File>, every: std::time::Duration) -> Result<Arc<Flusher>> {
        let me = Arc::new(Flusher {
            file: parking_lot::Mutex::new(file),
            dirty: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
            wakes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&me);
        let handle = std::thread::Builder::new()
            .name("audit-journal-sync".into())
            .spawn(move || loop {
                let dirty = match weak.upgrade() {
                    Some(f) => {
                        f.wakes.fetch_add(1, Ordering::Relaxed);
                        f.dirty.load(Ordering::Acquire)
                    }
                    None => return,
                };
                if !dirty {
                    // Unparked by the next write, or by the journal's drop (then `upgrade` fails).
                    std::thread::park();
                    continue;
                }
                // The writes of the next interval share this sync.
                std::thread::sleep(every);
                let Some(f) = weak.upgrade() else { return };
                if f.dirty.swap(false, Ordering::AcqRel) {
                    let file = f.file.lock().clone();
                    if let Err(e) = file.sync_data() {
                        tracing::error!(site = "ST0115", error = %e, "background fdatasync of the audit journal failed; audit (and so every request) is refused until a restart");
                        f.failed.store(true, Ordering::Release);
                        return;
                    }
                    f.syncs.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the audit journal sync thread: {e}")))?;
        let _ = me.thread.set(handle.thread().clone());
        Ok(me)
    }

    /// Marks the journal dirty; wakes the thread if it was clean (and so the thread may be parked).
    fn dirtied(&self) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

/// Segments grow in zero-filled steps of this size, so an `fdatasync` finds the file size unchanged
/// and writes only the data, not the inode too (a second synchronous write per batch on ext4).
const GROW_BYTES: u64 = 1 << 20;

/// The writer's side: appends batches durably.
pub struct Journal {
    dir: PathBuf,
    file: Arc<File>,
    segment: u64,
    /// End of the last record.
    len: u64,
    /// File size: records, then zeros.
    allocated: u64,
    flusher: Option<Arc<Flusher>>,
}

fn create_segment(dir: &Path, segment: u64) -> Result<File> {
    let path = segment_path(dir, segment);
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("create", &path, &e))?;
    // The new file's directory entry must be durable before a record in it is acknowledged.
    sync_dir(dir)?;
    Ok(file)
}

impl Journal {
    /// Starts a new, empty segment numbered after every existing one (call after [`recover`]).
    pub fn create(dir: &Path, segment: u64, sync: AuditSync) -> Result<Journal> {
        let file = Arc::new(create_segment(dir, segment)?);
        let flusher = match sync {
            AuditSync::Always => None,
            AuditSync::Interval(every) => Some(Flusher::start(file.clone(), every)?),
        };
        Ok(Journal {
            dir: dir.to_owned(),
            file,
            segment,
            len: 0,
            allocated: 0,
            flusher,
        })
    }

    /// Writes `buf` (whole records) and, with [`AuditSync::Always`], waits until it is on disk;
    /// returns the position after it.
    pub fn append(&mut self, buf: &[u8]) -> std::io::Result<Pos> {
        if let Some(f) = &self.flusher {
            if f.failed.load(Ordering::Acquire) {
                return Err(std::io::Error::other(
                    "a background fdatasync of the audit journal failed",
                ));
            }
        }
        if self.len > 0 && self.len + buf.len() as u64 > SEGMENT_BYTES {
            // Everything in the old segment is on disk before the first record of the next one.
            self.file.sync_data()?;
            let file = Arc::new(
                create_segment(&self.dir, self.segment + 1)
                    .map_err(|e| std::io::Error::other(e.to_string()))?,
            );
            if let Some(f) = &self.flusher {
                *f.file.lock() = file.clone();
            }
            self.file = file;
            self.segment += 1;
            self.len = 0;
            self.allocated = 0;
        }
        let end = self.len + buf.len() as u64;
        if end > self.allocated {
            let target = end.div_ceil(GROW_BYTES) * GROW_BYTES;
            let zeros = vec![0u8; 64 * 1024];
            let mut at = self.allocated;
            while at < target {
                let n = (target - at).min(zeros.len() as u64);
                self.file.write_all_at(&zeros[..n as usize], at)?;
                at += n;
            }
            self.allocated = target;
        }
        self.file.write_all_at(buf, self.len)?;
        match &self.flusher {
            None => self.file.sync_data()?,
            Some(f) => f.dirtied(),
        }
        self.len = end;
        Ok(Pos {
            segment: self.segment,
            offset: self.len,
        })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(f) = self.flusher.take() {
            let thread = f.thread.get().cloned();
            drop(f);
            if let Some(t) = thread {
                t.unpark();
            }
        }
    }
}

/// Deletes the segments before `pos.segment` (all fully indexed once `pos` is committed).
pub fn remove_before(dir: &Path, pos: Pos) {
    let Ok(list) = segments(dir) else { return };
    for n in list.into_iter().filter(|n| *n < pos.segment) {
        let p = segment_path(dir, n);
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(site = "ST0110", error = %e, file = %p.display(), "cannot remove an indexed audit journal segment");
        }
    }
}

macro_rules! audit_insert {
    ($verb:literal) => {
        concat!(
            $verb,
            " INTO audit_log (id, tenant_id, ts, action, identity_type, identity_id, secret_path, \
             source_ip, user_agent, success, status, error_code, duration_ms, request_id, extra_data, seq, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        )
    };
}
/// One audit row, bound by [`insert_audit_row`]: the writer's (a duplicate id is an error) and the
/// indexer's (a replayed record already indexed is skipped).
pub(crate) const AUDIT_INSERT: &str = audit_insert!("INSERT");
const AUDIT_INSERT_OR_IGNORE: &str = audit_insert!("INSERT OR IGNORE");

/// Runs an [`AUDIT_INSERT`] statement for one entry at its place in the chain; returns rows inserted.
pub(crate) fn insert_audit_row(
    st: &mut rusqlite::CachedStatement<'_>,
    e: &AuditEntry,
    seq: i64,
    hash: &[u8],
) -> rusqlite::Result<usize> {
    st.execute(params![
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
        hash,
    ])
}

/// Inserts records into `audit_log` (ignoring those already there), counts reads, moves chain heads
/// forward and records `pos` as indexed — all inside the caller's transaction.
pub fn index(c: &Connection, records: &[JournalRecord], pos: Pos) -> rusqlite::Result<()> {
    let mut insert = c.prepare_cached(AUDIT_INSERT_OR_IGNORE)?;
    let mut heads: HashMap<&str, (i64, &[u8])> = HashMap::new();
    let mut access: HashMap<(&str, &str, i64), (i64, i64)> = HashMap::new();
    for r in records {
        let e = &r.entry;
        let n = insert_audit_row(&mut insert, e, r.seq, &r.hash)?;
        let head = heads
            .entry(e.tenant_id.as_str())
            .or_insert((0, [].as_slice()));
        if r.seq > head.0 {
            *head = (r.seq, r.hash.as_slice());
        }
        if n == 1 && e.success && e.action == "read" {
            if let Some(p) = &e.secret_path {
                let slot = access
                    .entry((e.tenant_id.as_str(), p.as_str(), day_of(e.timestamp)))
                    .or_insert((0, 0));
                slot.0 += 1;
                slot.1 = slot.1.max(e.timestamp);
            }
        }
    }
    let mut st = c.prepare_cached(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash \
         WHERE excluded.seq > audit_heads.seq",
    )?;
    for (tenant, (seq, hash)) in &heads {
        st.execute(params![tenant, seq, hash])?;
    }
    let mut st = c.prepare_cached(
        "INSERT INTO secret_access_daily (tenant_id, path, day, reads, last_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant_id, path, day) DO UPDATE SET reads = secret_access_daily.reads + excluded.reads, \
         last_at = CASE WHEN excluded.last_at > secret_access_daily.last_at THEN excluded.last_at \
         ELSE secret_access_daily.last_at END",
    )?;
    for ((tenant, path, day), (reads, last)) in &access {
        st.execute(params![tenant, path, day, reads, last])?;
    }
    c.prepare_cached(
        "INSERT INTO system_meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![PROGRESS_KEY, pos.text()])?;
    Ok(())
}

/// Replays every journaled record not indexed yet into `audit_log`, then removes the segments.
/// Returns the number for the next segment and how many records were replayed.
pub fn recover(c: &mut Connection, dir: &Path) -> Result<(u64, usize)> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, &e))?;
        // The directory's own entry must survive a crash as well as the files in it.
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    let list = segments(dir)?;
    let done: Option<Pos> = c
        .query_row(
            "SELECT value FROM system_meta WHERE key = ?1",
            params![PROGRESS_KEY],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| Pos::parse(&v));
    let done = done.unwrap_or_default();
    let mut records = Vec::new();
    let mut last = done;
    for (i, n) in list.iter().enumerate() {
        if *n < done.segment {
            continue;
        }
        let p = segment_path(dir, *n);
        let bytes = std::fs::read(&p).map_err(|e| io_err("read", &p, &e))?;
        let (recs, clean) = decode(&bytes);
        if !clean {
            // Only the tail of the newest segment can be torn (a batch that was never acknowledged).
            if i + 1 == list.len() {
                tracing::warn!(site = "ST0111", file = %p.display(), "audit journal ends in an incomplete record (a batch interrupted before it was acknowledged); ignored");
            } else {
                tracing::error!(site = "ST0112", file = %p.display(), "audit journal segment is damaged before its end; replaying what precedes the damage");
            }
        }
        for (rec, end) in recs {
            let pos = Pos {
                segment: *n,
                offset: end,
            };
            if pos > done {
                records.push(rec);
                last = pos;
            }
        }
    }
    let replayed = records.len();
    if replayed > 0 {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for chunk in records.chunks(10_000) {
            index(&tx, chunk, last)?;
        }
        tx.commit()?;
        tracing::info!(
            records = replayed,
            "audit journal replayed into the audit log"
        );
    }
    let next = list.last().map_or(0, |n| n + 1).max(last.segment + 1);
    remove_before(
        dir,
        Pos {
            segment: next,
            offset: 0,
        },
    );
    Ok((next, replayed))
}

/// A successful entry of tenant `t` by user `u`, for tests across the crate.
#[cfg(test)]
pub(crate) fn test_entry(id: String, timestamp: i64, action: &str, path: &str) -> AuditEntry {
    AuditEntry {
        id,
        tenant_id: "t".into(),
        timestamp,
        action: action.into(),
        identity_type: "user".into(),
        identity_id: "u".into(),
        secret_path: Some(path.into()),
        source_ip: None,
        user_agent: None,
        success: true,
        status: 200,
        error_code: None,
        duration_ms: 0,
        request_id: "r".into(),
        extra_data: "{}".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64) -> JournalRecord {
        JournalRecord {
            seq,
            hash: vec![seq as u8; 32],
            entry: test_entry(format!("log_{seq}"), 1, "read", "a/b"),
        }
    }

    /// Records written through [`Journal`] read back cleanly from the file, across growth steps and a
    /// segment change, in both sync modes; the file grows by whole zero-filled steps.
    #[test]
    fn appended_segments_decode_cleanly() {
        for sync in [
            AuditSync::Always,
            AuditSync::Interval(std::time::Duration::from_millis(1)),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut j = Journal::create(dir.path(), 7, sync).unwrap();
            let mut seq = 0;
            let mut last = Pos::default();
            // ~5 MiB of records in 64 KiB-ish batches: several growth steps in segment 7.
            while last.offset < 5 << 20 {
                let mut buf = Vec::new();
                for _ in 0..200 {
                    seq += 1;
                    encode(&mut buf, &rec(seq)).unwrap();
                }
                last = j.append(&buf).unwrap();
            }
            let bytes = std::fs::read(segment_path(dir.path(), 7)).unwrap();
            assert_eq!(bytes.len() as u64 % GROW_BYTES, 0);
            assert!(bytes.len() as u64 >= last.offset);
            let (recs, clean) = decode(&bytes);
            assert!(clean, "{sync:?}");
            assert_eq!(recs.len() as i64, seq);
            assert_eq!(recs.last().unwrap().1, last.offset);
            // Past SEGMENT_BYTES the next batch opens segment 8.
            j.len = SEGMENT_BYTES;
            let mut buf = Vec::new();
            encode(&mut buf, &rec(seq + 1)).unwrap();
            let p = j.append(&buf).unwrap();
            assert_eq!((p.segment, p.offset), (8, buf.len() as u64));
            assert_eq!(segments(dir.path()).unwrap(), [7, 8]);
        }
    }

    /// The interval flusher sleeps while nothing is written, and syncs within its interval once
    /// something is.
    #[test]
    fn the_interval_flusher_parks_while_idle_and_syncs_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(
            dir.path(),
            1,
            AuditSync::Interval(std::time::Duration::from_millis(1)),
        )
        .unwrap();
        let f = j.flusher.clone().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let wakes = f.wakes.load(Ordering::Relaxed);
        assert!(wakes <= 3, "an idle flusher woke {wakes} times in 300 ms");
        assert_eq!(f.syncs.load(Ordering::Relaxed), 0);

        let mut buf = Vec::new();
        encode(&mut buf, &rec(1)).unwrap();
        j.append(&buf).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while f.syncs.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no fdatasync after a write"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!f.dirty.load(Ordering::Acquire));
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let mut buf = Vec::new();
        for s in 1..=3 {
            encode(&mut buf, &rec(s)).unwrap();
        }
        let (recs, clean) = decode(&buf);
        assert!(clean);
        assert_eq!(recs.iter().map(|r| r.0.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(recs[2].1, buf.len() as u64);
        // A torn last record, a flipped byte and zero padding all end the replay before them.
        let (recs, clean) = decode(&buf[..buf.len() - 3]);
        assert!(!clean);
        assert_eq!(recs.len(), 2);
        let mut bad = buf.clone();
        let at = recs[0].1 as usize + 20;
        bad[at] ^= 1;
        let (recs, clean) = decode(&bad);
        assert!(!clean);
        assert_eq!(recs.len(), 1);
        // The zeros a segment grows by end it cleanly; anything else after them does not.
        let mut padded = buf.clone();
        padded.extend_from_slice(&[0u8; 64]);
        let (recs, clean) = decode(&padded);
        assert!(clean);
        assert_eq!(recs.len(), 3);
        let (recs, clean) = decode(&padded[..buf.len() + 3]);
        assert!(clean);
        assert_eq!(recs.len(), 3);
        padded.push(1);
        let (recs, clean) = decode(&padded);
        assert!(!clean);
        assert_eq!(recs.len(), 3);
    }
}
