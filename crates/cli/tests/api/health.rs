//! System endpoints (`/v1/health`, `/v1/health/ready`, `/v1/health/detailed`, `/v1/version`) and
//! `/v1/auth/whoami`.

use serde_json::Value;

use crate::harness::{anon_client, parse_time, spawn, Backend, Resp};

async fn anon_get(url: String) -> Resp {
    Resp::from(anon_client().get(&url).send().await.unwrap()).await
}

fn assert_request_id(r: &Resp) {
    let rid = r
        .request_id
        .as_deref()
        .unwrap_or_else(|| panic!("no X-Request-ID header on {r}"));
    assert!(
        rid.starts_with("req_") && rid.len() > 4,
        "X-Request-ID {rid:?} is not req_…"
    );
}

async fn health_is_unauthenticated(backend: Backend) {
    let s = spawn(backend).await;
    let r = anon_get(s.url("/v1/health")).await;
    r.expect(200);
    assert_request_id(&r);
    assert_eq!(r.body["status"], "healthy", "{r}");
    parse_time(&r.body["timestamp"], "health timestamp");

    // The admin token does not change the answer.
    let r = s.get("/v1/health").await;
    r.expect(200);
    assert_eq!(r.body["status"], "healthy", "{r}");
}

async fn ready_is_unauthenticated(backend: Backend) {
    let s = spawn(backend).await;
    let r = anon_get(s.url("/v1/health/ready")).await;
    r.expect(200);
    assert_request_id(&r);
    assert_eq!(r.body["status"], "ready", "{r}");
    assert_eq!(r.body["checks"]["database"], "ok", "{r}");
    assert_eq!(r.body["checks"]["encryption"], "ok", "{r}");
    let redis = r.body["checks"]["redis"]
        .as_str()
        .unwrap_or_else(|| panic!("checks.redis missing: {r}"));
    assert!(
        redis == "ok" || redis == "disabled",
        "checks.redis = {redis:?}: {r}"
    );
}

async fn version_is_unauthenticated(backend: Backend) {
    let s = spawn(backend).await;
    let r = anon_get(s.url("/v1/version")).await;
    r.expect(200);
    assert_request_id(&r);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"), "{r}");
    assert_eq!(r.body["api_version"], "v1", "{r}");
    let build = r.body["build"]
        .as_object()
        .unwrap_or_else(|| panic!("build is not an object: {r}"));
    assert!(
        matches!(
            build.get("profile").and_then(|p| p.as_str()),
            Some("debug" | "release")
        ),
        "build.profile missing: {r}"
    );
    assert_eq!(r.body["storage"], backend.storage_name(), "{r}");
}

async fn detailed_needs_auth(backend: Backend) {
    let s = spawn(backend).await;
    anon_get(s.url("/v1/health/detailed"))
        .await
        .expect_error(401, "authentication_required");

    let r = s.get("/v1/health/detailed").await;
    r.expect(200);
    assert_request_id(&r);
    let b = &r.body;
    assert!(b["status"].is_string(), "status: {r}");
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"), "{r}");
    assert!(b["uptime_seconds"].is_u64(), "uptime_seconds: {r}");
    let db = &b["checks"]["database"];
    assert_eq!(db["status"], "ok", "{r}");
    for k in ["latency_ms", "pool_size", "pool_available"] {
        assert!(
            db[k].is_number(),
            "checks.database.{k} is not a number: {r}"
        );
    }
    let enc = &b["checks"]["encryption"];
    assert_eq!(enc["status"], "ok", "{r}");
    assert!(
        enc["key_status"].is_string(),
        "checks.encryption.key_status: {r}"
    );
    assert!(
        enc["provider"].is_string(),
        "checks.encryption.provider: {r}"
    );
    let audit = &b["checks"]["audit"];
    assert_eq!(audit["status"], "ok", "checks.audit.status: {r}");
    assert!(
        audit["queue_depth"].is_number(),
        "checks.audit.queue_depth: {r}"
    );
}

async fn whoami(backend: Backend) {
    let s = spawn(backend).await;
    anon_get(s.url("/v1/auth/whoami"))
        .await
        .expect_error(401, "authentication_required");

    let r = s.get("/v1/auth/whoami").await;
    r.expect(200);
    assert_request_id(&r);
    let b = &r.body;
    for k in [
        "identity_id",
        "identity_type",
        "display_name",
        "tenant_id",
        "partner_id",
    ] {
        assert!(b[k].is_string(), "whoami.{k} is not a string: {r}");
    }
    for k in ["scopes", "groups", "roles"] {
        assert!(b[k].is_array(), "whoami.{k} is not an array: {r}");
    }
    for k in ["mfa_verified_at", "token_expires_at"] {
        assert!(
            b.as_object().is_some_and(|o| o.contains_key(k)),
            "whoami.{k} missing: {r}"
        );
    }
    let scopes: Vec<&str> = b["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        scopes.contains(&"admin"),
        "the dev root token should carry `admin`: {r}"
    );
}

/// `SCAIVAULT_DEV_DISABLE_AUDIT=1` (dev mode, for measuring audit's cost) is loud: a warning at
/// start-up, `degraded` with `checks.audit.status = disabled`, and reads leave no audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_audit_in_dev_is_loud() {
    let s =
        crate::harness::spawn_with_env(Backend::Sqlite, &[("SCAIVAULT_DEV_DISABLE_AUDIT", "1")])
            .await;
    assert!(
        s.logs().contains("AUDIT IS DISABLED"),
        "no start-up warning:\n{}",
        s.logs()
    );
    s.write_kv("noaudit/a", serde_json::json!({"v": "1"})).await;
    s.read("noaudit/a").await;
    let r = s.get("/v1/health/detailed").await;
    r.expect(200);
    assert_eq!(r.body["status"], "degraded", "{r}");
    assert_eq!(r.body["checks"]["audit"]["status"], "disabled", "{r}");
    let logs = s.get("/v1/audit/logs?action=read").await;
    logs.expect(200);
    assert_eq!(
        logs.body["logs"].as_array().map(Vec::len),
        Some(0),
        "{logs}"
    );
}

both!(
    health_is_unauthenticated,
    ready_is_unauthenticated,
    version_is_unauthenticated,
    detailed_needs_auth,
    whoami
);
