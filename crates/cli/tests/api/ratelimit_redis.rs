//! Rate-limit buckets shared through Redis: two nodes on one PostgreSQL database enforce one budget;
//! with Redis unreachable a node falls back to its own buckets (never fails closed).

use crate::harness::{random_alnum, spawn, spawn_peer, Backend, TestServer};

const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

fn redis_env(prefix: &str) -> Vec<(String, String)> {
    vec![
        ("REDIS_URL".into(), REDIS_URL.into()),
        ("SCAIVAULT_REDIS_PREFIX".into(), prefix.into()),
    ]
}

async fn whoami_status(s: &TestServer) -> (u16, Option<String>) {
    let r = s.get("/v1/auth/whoami").await;
    let remaining = r
        .headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status, remaining)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_budget_through_redis() {
    // A unique key prefix per run: parallel and repeated runs never share buckets.
    let prefix = format!("scaivault-test-{}:", random_alnum(12));
    let mut a = spawn(Backend::Postgres).await;
    a.rate_limits = "all=0,whoami=6".into();
    a.env = redis_env(&prefix);
    a.restart().await;
    let b = spawn_peer(&a, redis_env(&prefix)).await;

    // 3 + 3 requests spread over both nodes use up the one budget of 6 per minute …
    for i in 0..3 {
        let (st, _) = whoami_status(&a).await;
        assert_eq!(st, 200, "node A request {i}");
        let (st, rem) = whoami_status(&b).await;
        assert_eq!(st, 200, "node B request {i}");
        assert_eq!(
            rem.as_deref(),
            Some((6 - 2 * (i + 1)).to_string().as_str()),
            "remaining counts both nodes"
        );
    }
    // … so the next one is refused on either node (each alone would still allow 3 more).
    let r = a.get("/v1/auth/whoami").await;
    r.expect_error(429, "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    b.get("/v1/auth/whoami")
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_falls_back_to_local_buckets() {
    let mut s = spawn(Backend::Sqlite).await;
    s.rate_limits = "all=0,whoami=3".into();
    // Nothing listens on port 1: every Redis call fails fast.
    s.env = vec![("REDIS_URL".into(), "redis://127.0.0.1:1/0".into())];
    s.restart().await;
    for i in 0..3 {
        let (st, _) = whoami_status(&s).await;
        assert_eq!(st, 200, "request {i} is served without Redis");
    }
    s.get("/v1/auth/whoami")
        .await
        .expect_error(429, "rate_limited");
    assert!(
        s.logs().contains("RL0001"),
        "the fallback is logged:\n{}",
        s.logs()
    );
}
