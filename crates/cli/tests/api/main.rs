//! Black-box tests of the `/v1` HTTP API: each test starts the real `scaivault` binary on a loopback port
//! against fresh storage (a temporary SQLite data directory, or a randomly named PostgreSQL database that
//! is dropped afterwards) and checks it against `docs/api.md`.
//!
//! Every test is written once as `async fn name(backend: Backend)`; `both!(name)` turns it into
//! `name::sqlite` and `name::postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `both!(a, b)` makes `#[tokio::test]`s `a::sqlite`, `a::postgres`, `b::sqlite`, `b::postgres`, each
/// calling `a(Backend::…)` / `b(Backend::…)` from the enclosing module.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::harness::Backend::Postgres).await;
                }
            }
        )+
    };
}

mod audit;
mod audit_export;
mod batch;
mod cache;
mod cli;
mod cli_coverage;
mod durability;
mod encryption;
mod errors;
mod harness;
mod health;
mod identity;
mod jwt;
mod policies;
mod ratelimit_redis;
mod recipes;
mod secrets;
mod serving;
mod tenancy;
