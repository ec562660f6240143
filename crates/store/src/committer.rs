//! Group commit: requests hand their mutations and audit entries to one task that applies everything
//! queued so far in a single transaction and fsync, then answers each request. Under load a commit
//! carries many requests, so durability costs one fsync per batch instead of one per request.
//! Operations the store groups itself ([`crate::Store::groups`]: on SQLite everything its writer thread
//! applies) skip the task and go to the store directly.

use crate::ops::{OpError, OpOutcome, WriteOp};
use crate::DynStore;
use scaivault_core::audit::AuditEntry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 1024;

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<OpOutcome, OpError>>,
}

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Job>,
    depth: Arc<AtomicUsize>,
    /// The store, which groups some operations itself ([`crate::Store::groups`]).
    direct: DynStore,
}

impl Committer {
    pub fn start(store: DynStore) -> Committer {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let direct = store.clone();
        tokio::spawn(run(store, rx, depth.clone()));
        Committer { tx, depth, direct }
    }

    /// Applies `op` durably; returns once its transaction has committed.
    pub async fn submit(&self, op: WriteOp) -> Result<OpOutcome, OpError> {
        if self.direct.groups(&op) {
            return self.direct_apply(op).await;
        }
        let (reply, rx) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Job { op, reply }).is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(OpError::Store("committer stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(OpError::Store("committer dropped the request".into())))
    }

    pub async fn audit(&self, entries: Vec<AuditEntry>) -> Result<(), OpError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.submit(WriteOp::Audit(entries)).await.map(|_| ())
    }

    /// [`Committer::submit`] for an operation the store groups itself.
    async fn direct_apply(&self, op: WriteOp) -> Result<OpOutcome, OpError> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        let applied = self.direct.apply(vec![op]).await;
        self.depth.fetch_sub(1, Ordering::Relaxed);
        match applied {
            Ok(mut results) => results
                .pop()
                .unwrap_or(Err(OpError::Store("no result".into()))),
            Err(e) => {
                tracing::error!(site = "ST0003", error = %e, "commit failed; the request is refused");
                Err(OpError::Store("commit failed".into()))
            }
        }
    }

    /// Requests waiting for a commit.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

async fn run(store: DynStore, mut rx: mpsc::UnboundedReceiver<Job>, depth: Arc<AtomicUsize>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<WriteOp>, Vec<_>) =
            batch.drain(..).map(|j| (j.op, j.reply)).unzip();
        let n = replies.len();
        let started = std::time::Instant::now();
        let applied = store.apply(ops).await;
        tracing::debug!(
            batch = n,
            micros = started.elapsed().as_micros() as u64,
            "committed"
        );
        match applied {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(site = "ST0002", error = %e, batch = n, "commit failed; the whole batch is refused");
                for reply in replies {
                    let _ = reply.send(Err(OpError::Store("commit failed".into())));
                }
            }
        }
        depth.fetch_sub(n, Ordering::Relaxed);
    }
}
