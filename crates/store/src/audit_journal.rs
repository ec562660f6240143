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
//! and the directory fsynced before anything is written into it.
//!
//! Crash safety: a batch is acknowledged only after its `fdatasync` returned. The indexer records, in
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
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The writer's side: appends batches durably.
pub struct Journal {
    dir: PathBuf,
    file: File,
    segment: u64,
    len: u64,
}

impl Journal {
    /// Starts a new, empty segment numbered after every existing one (call after [`recover`]).
    pub fn create(dir: &Path, segment: u64) -> Result<Journal> {
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("create", &path, &e))?;
        // The new file's directory entry must be durable before a record in it is acknowledged.
        sync_dir(dir)?;
        Ok(Journal {
            dir: dir.to_owned(),
            file,
            segment,
            len: 0,
        })
    }

    /// Writes `buf` (whole records) and waits until it is on disk; returns the position after it.
    pub fn append(&mut self, buf: &[u8]) -> std::io::Result<Pos> {
        if self.len > 0 && self.len + buf.len() as u64 > SEGMENT_BYTES {
            let next = Journal::create(&self.dir, self.segment + 1)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            *self = next;
        }
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.len += buf.len() as u64;
        Ok(Pos {
            segment: self.segment,
            offset: self.len,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64) -> JournalRecord {
        JournalRecord {
            seq,
            hash: vec![seq as u8; 32],
            entry: AuditEntry {
                id: format!("log_{seq}"),
                tenant_id: "t".into(),
                timestamp: 1,
                action: "read".into(),
                identity_type: "user".into(),
                identity_id: "u".into(),
                secret_path: Some("a/b".into()),
                source_ip: None,
                user_agent: None,
                success: true,
                status: 200,
                error_code: None,
                duration_ms: 0,
                request_id: "r".into(),
                extra_data: "{}".into(),
            },
        }
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
        let mut padded = buf.clone();
        padded.extend_from_slice(&[0u8; 64]);
        let (recs, clean) = decode(&padded);
        assert!(!clean);
        assert_eq!(recs.len(), 3);
    }
}
