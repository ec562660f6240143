//! The SQLite writer's fsync thread: pipelined group commit.
//!
//! The writer connection commits with `synchronous=NORMAL`: a commit writes its WAL frames (into the
//! kernel) and returns without waiting for the disk. The writer thread hands the batch's answers here
//! and starts on the next batch at once, while this thread `fdatasync`s the WAL and only then answers
//! the batch's requests. No request is answered before its change and its audit entry are on disk,
//! exactly as with `synchronous=FULL`, but the writer no longer sits idle through every fsync: while
//! one batch syncs, the next one runs its statements.
//!
//! Each batch is queued after its commit returned, and each `fdatasync` starts after the batches it
//! answers were taken off the queue, so it covers them; one `fdatasync` answers every batch queued by
//! then. Other connections see a committed batch a moment before it is on disk (between its commit
//! and this thread's `fdatasync`): only a power loss or kernel crash in that window could take back
//! something a reader saw, never something a writer was told is stored. A crash or `kill -9` of the
//! server loses nothing the kernel already has.
//!
//! The audit chain runs through both files: a read's journal entry may chain from a write's entry
//! committed to the WAL just before. The writer therefore calls [`Syncer::wait_synced`] before each
//! journal append, so a journaled entry never reaches the disk ahead of the entries it chains from
//! (a power loss then leaves no hole in the chain).

use crate::ops::{OpError, OpOutcome};
use crate::{Result, StoreError};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

pub(crate) type OpResult = std::result::Result<OpOutcome, OpError>;
pub(crate) type Reply = oneshot::Sender<Result<Vec<OpResult>>>;
/// A committed batch: each request's results, sent once the WAL is on disk.
pub(crate) type Answers = Vec<(Reply, Vec<OpResult>)>;

pub(crate) struct Syncer {
    tx: mpsc::Sender<(u64, Answers)>,
    failed: Arc<AtomicBool>,
    /// Batches submitted so far (the writer thread's count).
    submitted: u64,
    /// The last batch synced and answered (the fsync thread's count), with its waiters.
    synced: Arc<(parking_lot::Mutex<u64>, parking_lot::Condvar)>,
}

impl Syncer {
    /// Starts the thread for the database whose WAL is `wal`. The file must exist and stay: the
    /// writer connection holds it open, so SQLite never deletes it while the writer runs.
    pub fn start(wal: PathBuf) -> Result<Syncer> {
        let (tx, rx) = mpsc::channel::<(u64, Answers)>();
        let failed = Arc::new(AtomicBool::new(false));
        let synced = Arc::new((parking_lot::Mutex::new(0), parking_lot::Condvar::new()));
        let (flag, progress) = (failed.clone(), synced.clone());
        std::thread::Builder::new()
            .name("sqlite-fsync".into())
            .spawn(move || run(&wal, &rx, &flag, &progress))
            .map_err(|e| {
                StoreError::Config(format!("cannot start the SQLite fsync thread: {e}"))
            })?;
        Ok(Syncer {
            tx,
            failed,
            submitted: 0,
            synced,
        })
    }

    /// Whether an `fdatasync` failed: what reached the disk is unknown, so nothing more may be
    /// acknowledged until a restart (SQLite then recovers from what the WAL holds).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The flag [`Syncer::failed`] reads, for another thread whose sync of the database's files
    /// failed: after a failed `fsync` the kernel may have dropped the pages, and a later one can
    /// succeed without them, so nothing more may be acknowledged either.
    pub fn failure_flag(&self) -> Arc<AtomicBool> {
        self.failed.clone()
    }

    /// Answers a committed batch once the WAL is on disk.
    pub fn submit(&mut self, answers: Answers) {
        match self.tx.send((self.submitted + 1, answers)) {
            Ok(()) => self.submitted += 1,
            Err(mpsc::SendError((_, answers))) => refuse(answers, "the fsync thread stopped"),
        }
    }

    /// Returns once every batch submitted so far is synced (or refused) and answered.
    pub fn wait_synced(&self) {
        let (done, cv) = &*self.synced;
        let mut done = done.lock();
        while *done < self.submitted {
            cv.wait(&mut done);
        }
    }
}

fn refuse(answers: Answers, why: &str) {
    for (reply, _) in answers {
        let _ = reply.send(Err(StoreError::Config(why.to_owned())));
    }
}

fn run(
    wal_path: &Path,
    rx: &mpsc::Receiver<(u64, Answers)>,
    failed: &AtomicBool,
    synced: &(parking_lot::Mutex<u64>, parking_lot::Condvar),
) {
    let mut wal: Option<File> = None;
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        if !failed.load(Ordering::Acquire) {
            if let Err(e) = sync_wal(wal_path, &mut wal) {
                tracing::error!(site = "ST0116", error = %e, "fdatasync of the SQLite WAL failed; nothing more is acknowledged until a restart");
                failed.store(true, Ordering::Release);
            }
        }
        // Once a sync failed, no later batch is acknowledged either: Linux may report a lost
        // write-back only once, so a later successful fdatasync proves nothing.
        let ok = !failed.load(Ordering::Acquire);
        let mut last = 0;
        for (n, answers) in batches {
            last = n;
            if !ok {
                refuse(answers, "an fdatasync failed; restart the server");
                continue;
            }
            for (reply, results) in answers {
                let _ = reply.send(Ok(results));
            }
        }
        *synced.0.lock() = last;
        synced.1.notify_all();
    }
}

/// `fdatasync` of the WAL through a handle of our own (any descriptor of a file syncs its pages),
/// reopened if the path no longer names the file it holds.
fn sync_wal(path: &Path, wal: &mut Option<File>) -> std::io::Result<()> {
    let on_disk = std::fs::metadata(path)?;
    if let Some(f) = wal {
        let held = f.metadata()?;
        if (held.dev(), held.ino()) != (on_disk.dev(), on_disk.ino()) {
            *wal = None;
        }
    }
    let f = match wal {
        Some(f) => f,
        None => wal.insert(File::open(path)?),
    };
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> (Answers, Vec<oneshot::Receiver<Result<Vec<OpResult>>>>) {
        (0..n)
            .map(|i| {
                let (tx, rx) = oneshot::channel();
                (
                    (
                        tx,
                        vec![Ok(OpOutcome::Deleted {
                            version_count: i as i64,
                        })],
                    ),
                    rx,
                )
            })
            .unzip()
    }

    /// A syncer for a WAL that exists in `dir`.
    fn started(dir: &Path) -> Syncer {
        let wal = dir.join("db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        Syncer::start(wal).unwrap()
    }

    #[test]
    fn answers_each_request_with_its_results_once_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = started(dir.path());
        let (answers, rxs) = batch(3);
        s.submit(answers);
        for (i, rx) in rxs.into_iter().enumerate() {
            let got = rx.blocking_recv().unwrap().unwrap();
            assert!(
                matches!(got[..], [Ok(OpOutcome::Deleted { version_count })] if version_count == i as i64)
            );
        }
        assert!(!s.failed());
    }

    #[test]
    fn a_failed_sync_refuses_the_batch_and_everything_after() {
        let dir = tempfile::tempdir().unwrap();
        // No WAL where the writer said it would be: the sync fails, nothing is acknowledged.
        let mut s = Syncer::start(dir.path().join("missing-wal")).unwrap();
        let (answers, rxs) = batch(2);
        s.submit(answers);
        for rx in rxs {
            assert!(rx.blocking_recv().unwrap().is_err());
        }
        assert!(s.failed());
        std::fs::write(dir.path().join("missing-wal"), b"frames").unwrap();
        let (answers, rxs) = batch(1);
        s.submit(answers);
        assert!(rxs
            .into_iter()
            .next()
            .unwrap()
            .blocking_recv()
            .unwrap()
            .is_err());
        s.wait_synced();
    }

    #[test]
    fn wait_synced_returns_once_every_submitted_batch_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = started(dir.path());
        s.wait_synced(); // nothing submitted: returns at once
        let mut rxs = Vec::new();
        for _ in 0..20 {
            let (answers, r) = batch(2);
            s.submit(answers);
            rxs.extend(r);
        }
        s.wait_synced();
        for mut rx in rxs {
            assert!(matches!(rx.try_recv(), Ok(Ok(_))));
        }
    }
}
