//! PostgreSQL connections for the paths every request takes (secret reads and the committer's
//! transactions), pooled without a round trip on their way back.
//!
//! sqlx's pool tests each connection as it comes back with a ping (a Sync message and its
//! ReadyForQuery), and cannot be told not to: one more round trip, PostgreSQL wake-up and spawned task
//! per query. Here, as in deadpool-postgres' fast recycling, a connection goes back as it is when its
//! last use ended with an answer from PostgreSQL (a result or an SQL error). One whose use failed below
//! SQL (I/O, protocol) or was cancelled halfway is closed instead, so a connection that died fails
//! one request at most.

use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgSeverity};
use sqlx::Connection;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

pub(crate) struct LeasePool(managed::Pool<Manager>);

pub(crate) struct Manager(PgConnectOptions);

pub(crate) struct Pooled {
    conn: PgConnection,
    /// Its last use ended with an answer from PostgreSQL; false while leased out.
    clean: bool,
}

impl managed::Manager for Manager {
    type Type = Pooled;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Pooled, sqlx::Error> {
        Ok(Pooled {
            conn: PgConnection::connect_with(&self.0).await?,
            clean: true,
        })
    }

    async fn recycle(&self, p: &mut Pooled, _: &Metrics) -> RecycleResult<sqlx::Error> {
        if p.clean {
            Ok(())
        } else {
            Err(RecycleError::message(
                "its last use did not end with an answer",
            ))
        }
    }
}

impl LeasePool {
    pub(crate) fn new(opts: PgConnectOptions, max: usize) -> Result<LeasePool, sqlx::Error> {
        let wait = Some(Duration::from_secs(10));
        managed::Pool::builder(Manager(opts))
            .max_size(max)
            .wait_timeout(wait)
            .create_timeout(wait)
            .recycle_timeout(wait)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map(LeasePool)
            .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
    }

    pub(crate) async fn get(&self) -> Result<Lease, sqlx::Error> {
        let mut p = self.0.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
            PoolError::Closed => sqlx::Error::PoolClosed,
            e @ (PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_)) => {
                sqlx::Error::Configuration(e.to_string().into())
            }
        })?;
        p.clean = false;
        Ok(Lease(p))
    }

    /// Connections open, and of those idle.
    pub(crate) fn stats(&self) -> (u32, usize) {
        let s = self.0.status();
        (u32::try_from(s.size).unwrap_or(u32::MAX), s.available)
    }

    /// Closes idle connections politely and refuses new leases; leased ones close as they come back.
    pub(crate) async fn close(&self) {
        let idle = self.0.retain(|_, _| false).removed;
        self.0.close();
        for p in idle {
            let _ = p.conn.close().await;
        }
    }
}

/// A leased connection. Dropped without [`Lease::settle`], it is closed, not reused.
pub(crate) struct Lease(managed::Object<Manager>);

impl Lease {
    /// Records how a use ended and passes its result on: the connection is reused only if PostgreSQL
    /// answered and kept the session (it is then between commands; a transaction left open is rolled
    /// back by sqlx first). A FATAL error, such as a backend being terminated, ends the session.
    pub(crate) fn settle<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.0.clean = match &r {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(e)) => e
                .try_downcast_ref::<PgDatabaseError>()
                .is_some_and(|e| !matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
            Err(_) => false,
        };
        r
    }
}

impl Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0.conn
    }
}

/// A PostgreSQL store's leased connections.
pub(crate) struct Leases {
    pub(crate) read: LeasePool,
    pub(crate) write: LeasePool,
}

impl Leases {
    /// Connections open, and of those idle.
    pub(crate) fn stats(&self) -> (u32, usize) {
        let (r, ri) = self.read.stats();
        let (w, wi) = self.write.stats();
        (r + w, ri + wi)
    }

    pub(crate) async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// SQLite leases nothing: its reads are in-process and its committer is the writer thread.
pub(crate) struct NoLeases;

impl NoLeases {
    pub(crate) fn stats(&self) -> (u32, usize) {
        (0, 0)
    }

    pub(crate) async fn close(&self) {}
}
