//! Personal access tokens and per-identity rate limits.

use crate::harness::{eventually, spawn, spawn_peer, Backend, Resp};
use serde_json::json;
use std::time::Duration;

both!(
    token_lifecycle,
    rate_limits_headers_and_429,
    batch_counts_reads
);

async fn token_lifecycle(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("app/one", json!({"k": "v"})).await;
    let r = s
        .post(
            "/v1/auth/tokens",
            &json!({"name": "ci", "scopes": ["secrets:read"], "expires_in": "30d"}),
        )
        .await;
    r.expect(201);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("skt_") && token.len() >= 40, "{r}");
    assert_eq!(r.body["scopes"], json!(["secrets:read"]));
    assert_eq!(r.body["status"], "active");

    // The new token reads but may not write, and cannot mint wider tokens.
    s.as_token(&token, reqwest::Method::GET, "/v1/secrets/app/one", None)
        .await
        .expect(200);
    s.as_token(
        &token,
        reqwest::Method::PUT,
        "/v1/secrets/app/one",
        Some(&json!({"data": {"k": "x"}})),
    )
    .await
    .expect_error(403, "insufficient_scope");
    s.as_token(
        &token,
        reqwest::Method::POST,
        "/v1/auth/tokens",
        Some(&json!({"scopes": ["secrets:write"]})),
    )
    .await
    .expect_validation("scopes[0]");
    let who = s
        .as_token(&token, reqwest::Method::GET, "/v1/auth/whoami", None)
        .await;
    who.expect(200);
    assert!(who.body["token_expires_at"].is_string(), "{who}");

    // Listing never shows a value or hash; the stored form is not the token.
    let list = s.get("/v1/auth/tokens").await;
    list.expect(200);
    assert!(!list.text.contains(&token), "token value listed: {list}");
    assert!(list.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id.as_str()));

    // Bad input.
    s.post("/v1/auth/tokens", &json!({"scopes": ["nope:x"]}))
        .await
        .expect_validation("scopes[0]");
    s.post("/v1/auth/tokens", &json!({"expires_in": "soon"}))
        .await
        .expect_error(400, "invalid_duration");
    s.post("/v1/auth/tokens", &json!({"expires_in": "400d"}))
        .await
        .expect_validation("expires_in");
    s.post("/v1/auth/tokens", &json!({"bogus": 1}))
        .await
        .expect_validation("bogus");

    // Revocation is effective at once, also for a token that was just used (and cached).
    s.delete(&format!("/v1/auth/tokens/{id}")).await.expect(200);
    s.as_token(&token, reqwest::Method::GET, "/v1/secrets/app/one", None)
        .await
        .expect_error(401, "token_revoked");
    s.delete(&format!("/v1/auth/tokens/{id}"))
        .await
        .expect_error(404, "not_found");
    let list = s.get("/v1/auth/tokens").await;
    let t = list.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(t["status"], "revoked", "{t}");
}

fn header_u64(r: &Resp, name: &str) -> u64 {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}: {r}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn rate_limits_headers_and_429(backend: Backend) {
    let mut s = spawn(backend).await;
    s.rate_limits = "list=3".into();
    s.restart().await;
    // The cookbook's headroom recipe: the three headers on a list call.
    let first = s.get("/v1/secrets?limit=1").await;
    first.expect(200);
    assert_eq!(header_u64(&first, "x-ratelimit-limit"), 3);
    assert_eq!(header_u64(&first, "x-ratelimit-remaining"), 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(header_u64(&first, "x-ratelimit-reset") >= now, "{first}");
    s.get("/v1/secrets?limit=1").await.expect(200);
    s.get("/v1/secrets?limit=1").await.expect(200);
    let limited = s.get("/v1/secrets?limit=1").await;
    limited.expect_error(429, "rate_limited");
    assert!(header_u64(&limited, "retry-after") >= 1, "{limited}");
    assert_eq!(limited.details()["category"], "list");
    // Other categories have their own buckets. (Tokens share their identity's buckets: limits are per
    // identity, not per token.)
    s.write_kv("a/b", json!({"k": "v"})).await;
    s.get("/v1/secrets/a/b").await.expect(200);
    // The refusal itself is audited.
    let audit = s.get("/v1/audit/logs?success=false&limit=10").await;
    audit.expect(200);
    assert!(
        audit.body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["error_code"] == "rate_limited"),
        "{audit}"
    );
}

async fn batch_counts_reads(backend: Backend) {
    let mut s = spawn(backend).await;
    s.rate_limits = "read=5".into();
    s.restart().await;
    let paths: Vec<String> = (0..4).map(|i| format!("b/s{i}")).collect();
    for p in &paths {
        s.write_kv(p, json!({"k": "v"})).await;
    }
    // One batch of 4 takes 4 read tokens; a single read is still allowed (1 left), the next is not.
    s.post("/v1/secrets/batch", &json!({"paths": paths}))
        .await
        .expect(200);
    s.get("/v1/secrets/b/s0").await.expect(200);
    s.get("/v1/secrets/b/s0")
        .await
        .expect_error(429, "rate_limited");
}

/// Two nodes on one PostgreSQL database: a token revoked (or an identity disabled) on one node is refused
/// by the other within about a second, well before the other node's 5 s principal cache would expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_node() {
    let a = spawn(Backend::Postgres).await;
    let b = spawn_peer(&a, Vec::new()).await;
    a.post(
        "/v1/identity/tenants/tnt_default/users",
        &json!({"email": "eve@example.com", "scopes": ["secrets:read"]}),
    )
    .await
    .expect(201);
    let mint = |name: &'static str| {
        let a = &a;
        async move {
            let r = a
                .post(
                    "/v1/auth/tokens",
                    &json!({"name": name, "identity_id": "user:eve@example.com", "scopes": ["secrets:read"]}),
                )
                .await;
            r.expect(201);
            (
                r.body["id"].as_str().unwrap().to_owned(),
                r.body["token"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (revoked_id, revoked) = mint("revoked").await;
    let (_, disabled) = mint("disabled").await;
    // Node B has both tokens' principals cached.
    for t in [&revoked, &disabled] {
        b.as_token(t, reqwest::Method::GET, "/v1/auth/whoami", None)
            .await
            .expect(200);
    }

    a.delete(&format!("/v1/auth/tokens/{revoked_id}"))
        .await
        .expect(200);
    let r = eventually(
        Duration::from_millis(3500),
        "node B refuses the revoked token",
        || async {
            let r = b
                .as_token(&revoked, reqwest::Method::GET, "/v1/auth/whoami", None)
                .await;
            (r.status == 401).then_some(r)
        },
    )
    .await;
    r.expect_error(401, "token_revoked");

    b.as_token(&disabled, reqwest::Method::GET, "/v1/auth/whoami", None)
        .await
        .expect(200);
    a.patch(
        "/v1/identity/tenants/tnt_default/users/eve@example.com",
        &json!({"status": "DISABLED"}),
    )
    .await
    .expect(200);
    eventually(
        Duration::from_millis(3500),
        "node B refuses the disabled identity's token",
        || async {
            let r = b
                .as_token(&disabled, reqwest::Method::GET, "/v1/auth/whoami", None)
                .await;
            (r.status == 401 || r.status == 403).then_some(())
        },
    )
    .await;
}
