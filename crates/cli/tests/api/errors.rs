//! Path rules, authentication failures, unknown routes and methods, malformed and oversized bodies, the
//! error envelope everywhere, and a fuzz-ish sweep that must never produce a 5xx.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::harness::{anon_client, random_alnum, spawn, Backend, Resp};

async fn send(req: reqwest::RequestBuilder) -> Resp {
    Resp::from(req.send().await.expect("request completes")).await
}

// ---- path rules --------------------------------------------------------------------------------

async fn path_rules(backend: Backend) {
    let s = spawn(backend).await;
    let deep11 = (0..11)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join("/");
    let long513 = "a".repeat(513);
    // (why, the path as it appears in the URL after /v1/secrets/)
    let bad: Vec<(&str, String)> = vec![
        ("uppercase", "Apps/db".into()),
        ("uppercase inner", "apps/Db".into()),
        ("dot", "apps/db.password".into()),
        ("leading slash", "/apps/db".into()),
        ("trailing slash", "apps/db/".into()),
        ("empty segment", "apps//db".into()),
        ("depth 11", deep11),
        ("513 chars", long513),
        ("space", "apps/my%20db".into()),
        ("non-ascii", "apps/caf%C3%A9".into()),
        ("colon", "apps/db:1".into()),
        ("at sign", "apps/db@x".into()),
        ("plus", "apps/db+x".into()),
        ("tilde", "apps/db~x".into()),
    ];
    let body = json!({"data": {"v": "1"}});
    for (why, p) in &bad {
        let url = format!("/v1/secrets/{p}");
        let r = s.put(&url, &body).await;
        assert_eq!(
            r.status, 400,
            "PUT {url} ({why}) should be 400 invalid_path, got {r}"
        );
        r.expect_error(400, "invalid_path");
        let r = s.get(&url).await;
        assert_eq!(
            r.status, 400,
            "GET {url} ({why}) should be 400 invalid_path, got {r}"
        );
        r.expect_error(400, "invalid_path");
        s.delete(&url).await.expect_error(400, "invalid_path");
    }
    // The reserved last segments.
    for p in ["apps/versions", "apps/db/metadata", "versions", "metadata"] {
        let url = format!("/v1/secrets/{p}");
        let r = s.put(&url, &body).await;
        assert_eq!(
            r.status, 400,
            "PUT {url} (reserved last segment) should be 400 invalid_path, got {r}"
        );
        r.expect_error(400, "invalid_path");
    }
    // The limits themselves are fine.
    let deep10 = (0..10)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join("/");
    let long512 = format!("{}/{}", "a".repeat(255), "b".repeat(256));
    let ok = [
        deep10,
        long512,
        "a".into(),
        "a-b_c/0-9/x".into(),
        "versions/x".into(),
        "metadata/x".into(),
        "x/versions-2".into(),
    ];
    for p in &ok {
        s.put(&format!("/v1/secrets/{p}"), &body).await.expect(201);
        assert_eq!(s.read(p).await["path"], p.as_str());
    }
    // Paths are case-sensitive only in the sense that uppercase is rejected, not folded.
    s.get("/v1/secrets/A")
        .await
        .expect_error(400, "invalid_path");
}

// ---- authentication ----------------------------------------------------------------------------

fn protected_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/v1/auth/whoami", None),
        (Method::GET, "/v1/health/detailed", None),
        (Method::GET, "/v1/secrets", None),
        (Method::GET, "/v1/secrets/apps/db", None),
        (
            Method::PUT,
            "/v1/secrets/apps/db",
            Some(json!({"data": {"v": "1"}})),
        ),
        (Method::DELETE, "/v1/secrets/apps/db", None),
        (Method::GET, "/v1/secrets/apps/db/metadata", None),
        (
            Method::PATCH,
            "/v1/secrets/apps/db/metadata",
            Some(json!({"metadata": {}})),
        ),
        (Method::GET, "/v1/secrets/apps/db/versions", None),
        (Method::POST, "/v1/secrets/apps/db/restore", Some(json!({}))),
        (
            Method::POST,
            "/v1/secrets/batch",
            Some(json!({"paths": ["apps/db"]})),
        ),
        (
            Method::POST,
            "/v1/secrets/batch/metadata",
            Some(json!({"paths": ["apps/db"]})),
        ),
    ]
}

async fn auth_failures(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("apps/db", json!({"v": "kept"})).await;
    let anon = anon_client();
    let unknown_token = format!("skt_{}", random_alnum(40));
    for (method, path, body) in protected_routes() {
        let with_body = |req: reqwest::RequestBuilder| match &body {
            Some(b) => req.json(b),
            None => req,
        };
        let r = send(with_body(anon.request(method.clone(), s.url(path)))).await;
        assert_eq!(r.status, 401, "{method} {path} without a token: {r}");
        r.expect_error(401, "authentication_required");

        let r = send(with_body(
            anon.request(method.clone(), s.url(path))
                .header(AUTHORIZATION, "Basic YWRtaW46YWRtaW4="),
        ))
        .await;
        r.expect_error(401, "authentication_required");

        for garbage in ["Bearer garbage", "Bearer skt_", unknown_token.as_str()] {
            let value = if garbage.starts_with("Bearer ") {
                garbage.to_string()
            } else {
                format!("Bearer {garbage}")
            };
            let r = send(with_body(
                anon.request(method.clone(), s.url(path))
                    .header(AUTHORIZATION, value.as_str()),
            ))
            .await;
            assert_eq!(r.status, 401, "{method} {path} with {value:?}: {r}");
            r.expect_error(401, "token_invalid");
        }
        let r = send(with_body(
            anon.request(method.clone(), s.url(path))
                .header(AUTHORIZATION, "Bearer"),
        ))
        .await;
        r.expect_error_in(&[(401, "authentication_required"), (401, "token_invalid")]);
    }
    // A token that differs from the real one only in its last character.
    let mut near = s.admin_token.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'a' { 'b' } else { 'a' });
    let r = send(anon.get(s.url("/v1/secrets/apps/db")).bearer_auth(&near)).await;
    r.expect_error(401, "token_invalid");
    // Nothing above changed the secret.
    let got = s.read("apps/db").await;
    assert_eq!(got["data"]["v"], "kept");
    assert_eq!(got["version"], 1);
}

// ---- routes, methods, bodies -------------------------------------------------------------------

async fn unknown_routes_and_methods(backend: Backend) {
    let s = spawn(backend).await;
    for p in [
        "/v1/nope",
        "/v1/secretsx",
        "/v1/auth/nobody",
        "/v2/secrets/a",
        "/nope",
    ] {
        let r = s.get(p).await;
        assert_eq!(r.status, 404, "GET {p}: {r}");
        r.expect_error(404, "not_found");
    }
    // Unknown routes answer 404 only after authentication.
    let r = send(anon_client().get(s.url("/v1/nope"))).await;
    r.expect_error(401, "authentication_required");

    let wrong: Vec<(Method, &str)> = vec![
        (Method::DELETE, "/v1/health"),
        (Method::POST, "/v1/health/ready"),
        (Method::POST, "/v1/version"),
        (Method::PUT, "/v1/auth/whoami"),
        (Method::DELETE, "/v1/secrets"),
        (Method::PATCH, "/v1/secrets/apps/db"),
        (Method::POST, "/v1/secrets/apps/db"),
    ];
    let mut bad = Vec::new();
    for (m, p) in wrong {
        let r = s.call(m.clone(), p, None).await;
        if r.status != 405 || r.code() != "method_not_allowed" || r.envelope_problem().is_some() {
            bad.push(format!("{m} {p}: {r}"));
        }
    }
    assert!(
        bad.is_empty(),
        "expected 405 method_not_allowed for:\n{}",
        bad.join("\n")
    );
    // A wrong method on a sub-resource also names an invalid secret path (last segment reserved), so
    // either answer is consistent with docs/api.md.
    for p in ["/v1/secrets/apps/db/versions", "/v1/secrets/batch/metadata"] {
        let r = s.call(Method::DELETE, p, None).await;
        r.expect_error_in(&[(405, "method_not_allowed"), (400, "invalid_path")]);
    }
    // `restore` is not reserved: GET …/restore reads the secret named that way.
    s.get("/v1/secrets/apps/db/restore")
        .await
        .expect_error(404, "secret_not_found");
}

/// Bytes a path may never hold (NUL, invalid UTF-8, control characters) are the client's error: 400
/// `invalid_path` with the envelope — never a plain-text rejection, never a 5xx from storage or audit.
async fn hostile_bytes_are_client_errors(backend: Backend) {
    let s = spawn(backend).await;
    let mut bad = Vec::new();
    for p in ["a%00b", "a%FFb", "a/%C3%28", "a%0Ab", "a%7F", "%00"] {
        for m in [Method::GET, Method::DELETE] {
            let url = format!("/v1/secrets/{p}");
            let r = s.call(m.clone(), &url, None).await;
            if r.status != 400 || r.code() != "invalid_path" || r.envelope_problem().is_some() {
                bad.push(format!("{m} {url}: {r}"));
            }
        }
        let url = format!("/v1/secrets/{p}");
        let r = s.put(&url, &json!({"data": {"v": "1"}})).await;
        if r.status != 400 || r.code() != "invalid_path" || r.envelope_problem().is_some() {
            bad.push(format!("PUT {url}: {r}"));
        }
    }
    for path in ["a\u{0}b", "a\u{7f}", "\u{0}"] {
        let r = s
            .post("/v1/secrets/batch", &json!({"paths": [path, "ok/x"]}))
            .await;
        let fine = (r.status == 200 && r.body["errors"][path]["code"] == "invalid_path")
            || (r.status == 400 && r.code() == "invalid_path" && r.envelope_problem().is_none());
        if !fine {
            bad.push(format!("POST /v1/secrets/batch {path:?}: {r}"));
        }
        let r = s
            .post("/v1/secrets/batch/metadata", &json!({"paths": [path]}))
            .await;
        let fine = (r.status == 200 && r.body["errors"][path]["code"] == "invalid_path")
            || (r.status == 400 && r.code() == "invalid_path" && r.envelope_problem().is_none());
        if !fine {
            bad.push(format!("POST /v1/secrets/batch/metadata {path:?}: {r}"));
        }
    }
    let r = s.get("/v1/secrets?prefix=a%00").await;
    if r.status != 400 || r.code() != "invalid_path" || r.envelope_problem().is_some() {
        bad.push(format!("GET /v1/secrets?prefix=a%00: {r}"));
    }
    // NUL inside values and metadata is just data.
    for (p, body) in [
        ("nul/value", json!({"data": {"v": "x\u{0}y"}})),
        (
            "nul/meta",
            json!({"data": {"v": "1"}, "metadata": {"description": "x\u{0}y", "tags": ["t\u{0}"]}}),
        ),
    ] {
        let r = s.put(&format!("/v1/secrets/{p}"), &body).await;
        if r.status >= 500 || (r.status >= 400 && r.envelope_problem().is_some()) {
            bad.push(format!("PUT {p} {body}: {r}"));
        } else if r.status == 201 {
            let got = s.get(&format!("/v1/secrets/{p}")).await;
            if got.status != 200 || got.body["data"] != body["data"] {
                bad.push(format!("GET {p} after writing {body}: {got}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} bad answers:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// One request that storage or audit rejects must not fail the unrelated requests committed with it.
async fn poison_request_does_not_fail_neighbours(backend: Backend) {
    let s = spawn(backend).await;
    let client = s.client();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let client = client.clone();
        let base = s.base_url.clone();
        tasks.push(tokio::spawn(async move {
            let req = if i % 3 == 0 {
                client.get(format!("{base}/v1/secrets/poison%00{i}"))
            } else {
                client
                    .put(format!("{base}/v1/secrets/neighbour/n{i}"))
                    .json(&json!({"data": {"v": format!("v{i}")}}))
            };
            (
                i,
                Resp::from(req.send().await.expect("request completes")).await,
            )
        }));
    }
    let mut bad = Vec::new();
    for t in tasks {
        let (i, r) = t.await.expect("task");
        if i % 3 != 0 && r.status != 201 {
            bad.push(format!("PUT neighbour/n{i}: {r}"));
        }
        if i % 3 == 0 && r.status >= 500 {
            bad.push(format!("GET poison%00{i}: {r}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} bad answers:\n{}",
        bad.len(),
        bad.join("\n")
    );
    for i in (0..60).filter(|i| i % 3 != 0) {
        assert_eq!(
            s.read(&format!("neighbour/n{i}")).await["data"]["v"],
            format!("v{i}")
        );
    }
}

async fn malformed_bodies(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("apps/db", json!({"v": "1"})).await;
    let targets: Vec<(Method, &str)> = vec![
        (Method::PUT, "/v1/secrets/apps/new"),
        (Method::PATCH, "/v1/secrets/apps/db/metadata"),
        (Method::POST, "/v1/secrets/batch"),
        (Method::POST, "/v1/secrets/batch/metadata"),
    ];
    let client = s.client();
    for (m, p) in &targets {
        for raw in [
            "{not json",
            "",
            "{\"data\": {\"v\": \"1\"}",
            "[1,2",
            "\u{0}",
            "nul",
            "{\"data\": {\"v\": \"1\"}} trailing",
        ] {
            let r = send(
                client
                    .request(m.clone(), s.url(p))
                    .header(CONTENT_TYPE, "application/json")
                    .body(raw),
            )
            .await;
            assert_eq!(r.status, 400, "{m} {p} with body {raw:?}: {r}");
            r.expect_error(400, "invalid_request");
        }
        let r = send(
            client
                .request(m.clone(), s.url(p))
                .header(CONTENT_TYPE, "application/json")
                .body(vec![0xff, 0xfe, 0x7b]),
        )
        .await;
        r.expect_error(400, "invalid_request");
        // A JSON body that is not a JSON object.
        let r = send(
            client
                .request(m.clone(), s.url(p))
                .header(CONTENT_TYPE, "application/json")
                .body("[]"),
        )
        .await;
        r.expect_error_in(&[(400, "invalid_request"), (422, "validation_error")]);
        // Not application/json.
        let r = send(
            client
                .request(m.clone(), s.url(p))
                .header(CONTENT_TYPE, "text/plain")
                .body("{\"data\": {\"v\": \"1\"}}"),
        )
        .await;
        assert_eq!(r.status, 415, "{m} {p} with text/plain: {r}");
        r.expect_error(415, "invalid_request");
        // No Content-Type at all: docs/api.md says 415 for a body that is not application/json; the
        // server deliberately accepts a missing header (curl -d). Either way: no 5xx, and the envelope.
        let r = send(
            client
                .request(m.clone(), s.url(p))
                .body("{\"data\": {\"v\": \"1\"}}"),
        )
        .await;
        assert!(r.status < 500, "{m} {p} without Content-Type: {r}");
        if r.status == 415 {
            r.expect_error(415, "invalid_request");
        } else if r.status >= 400 {
            r.assert_envelope();
        }
    }
    // `application/json; charset=utf-8` is JSON.
    let r = send(
        client
            .put(s.url("/v1/secrets/apps/charset"))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body("{\"data\": {\"v\": \"1\"}}"),
    )
    .await;
    r.expect(201);
}

async fn oversized_body(backend: Backend) {
    let s = spawn(backend).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let body = format!("{{\"data\": {{\"blob\": \"{big}\"}}}}");
    for (m, p) in [
        (Method::PUT, "/v1/secrets/apps/big"),
        (Method::POST, "/v1/secrets/batch"),
    ] {
        let res = s
            .client()
            .request(m.clone(), s.url(p))
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let r = match res {
            Ok(r) => Resp::from(r).await,
            Err(e) => panic!(
                "{m} {p} with a 2 MiB body: no HTTP response ({e}); expected 413 payload_too_large"
            ),
        };
        assert_eq!(r.status, 413, "{m} {p} with a 2 MiB body: {r}");
        r.expect_error(413, "payload_too_large");
    }
    s.get("/v1/secrets/apps/big")
        .await
        .expect_error(404, "secret_not_found");
    // The server is still fine afterwards.
    s.write_kv("apps/small", json!({"v": "1"})).await;
}

async fn request_ids(backend: Backend) {
    let s = spawn(backend).await;
    let a = s.get("/v1/secrets/apps/missing").await;
    let b = s.get("/v1/secrets/apps/missing").await;
    a.expect_error(404, "secret_not_found");
    b.expect_error(404, "secret_not_found");
    assert_ne!(a.request_id, b.request_id, "each request gets its own id");
    let w = s
        .put("/v1/secrets/apps/rid", &json!({"data": {"v": "1"}}))
        .await;
    w.expect(201);
    assert!(
        w.request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req_")),
        "successful responses carry X-Request-ID: {w}"
    );
    let l = s.get("/v1/secrets").await;
    assert!(
        l.request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req_")),
        "{l}"
    );
}

// ---- fuzz --------------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "data",
    "secret_type",
    "metadata",
    "options",
    "tags",
    "description",
    "owner",
    "custom",
    "max_versions",
    "expires_in",
    "cas",
    "rotation_policy_id",
    "paths",
    "expand_wildcards",
    "include_metadata",
    "fail_fast",
    "version",
    "cert_pem",
    "key_pem",
    "private_key",
    "public_key",
];
const STRINGS: &[&str] = &[
    "",
    "kv",
    "json",
    "certificate",
    "ssh_key",
    "api_key",
    "1s",
    "90d",
    "0s",
    "-1h",
    "99999999999999999999d",
    "*",
    "**",
    "a/*",
    "a/**",
    "../..",
    "\u{0}",
    "é",
    "-----BEGIN CERTIFICATE-----",
    "null",
    "a/b",
    "A/B",
    "versions",
];

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth >= 4 {
        rng.gen_range(0..6)
    } else {
        rng.gen_range(0..9)
    };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => json!(rng.gen_range(-3i64..5)),
        3 => json!(rng.gen::<i64>()),
        4 => json!(rng.gen::<f64>() * 1e6),
        5 => {
            if rng.gen_bool(0.5) {
                json!(STRINGS[rng.gen_range(0..STRINGS.len())])
            } else {
                let n = rng.gen_range(0..20);
                Value::String(
                    (0..n)
                        .map(|_| char::from_u32(rng.gen_range(1..0x3000)).unwrap_or('x'))
                        .collect(),
                )
            }
        }
        6 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..6) {
                let k = if rng.gen_bool(0.8) {
                    KEYS[rng.gen_range(0..KEYS.len())].to_string()
                } else {
                    random_alnum(5)
                };
                m.insert(k, random_json(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// A mostly plausible path with random bytes sprinkled in, percent-encoded where the URL needs it.
fn random_path(rng: &mut StdRng) -> String {
    const SAFE: &[u8] = b"abcxyz0189-_/";
    let n = rng.gen_range(0..48);
    let mut out = String::new();
    for _ in 0..n {
        if rng.gen_bool(0.75) {
            out.push(char::from(SAFE[rng.gen_range(0..SAFE.len())]));
        } else {
            out.push_str(&format!("%{:02X}", rng.gen::<u8>()));
        }
    }
    out
}

fn random_query(rng: &mut StdRng) -> String {
    const NAMES: &[&str] = &[
        "version",
        "permanent",
        "prefix",
        "limit",
        "cursor",
        "include_metadata",
        "expiring_within",
    ];
    let mut parts = Vec::new();
    for _ in 0..rng.gen_range(0..4) {
        let name = NAMES[rng.gen_range(0..NAMES.len())];
        let value = match rng.gen_range(0..4) {
            0 => rng.gen_range(-2i64..2000).to_string(),
            1 => random_path(rng),
            2 => ["true", "false", "1", "yes", "", "30d"][rng.gen_range(0..6)].to_string(),
            _ => format!("%{:02X}%{:02X}", rng.gen::<u8>(), rng.gen::<u8>()),
        };
        parts.push(format!("{name}={value}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

async fn fuzz_never_500(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("abc/x", json!({"v": "1"})).await;
    let seed: u64 = rand::random();
    eprintln!("fuzz seed: {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let client = s.client();
    let mut failures = Vec::new();
    for i in 0..200 {
        let path = random_path(&mut rng);
        let url = match rng.gen_range(0..8) {
            0 => format!("/v1/secrets/{path}/metadata"),
            1 => format!("/v1/secrets/{path}/versions"),
            2 => format!("/v1/secrets/{path}/restore"),
            3 => "/v1/secrets/batch".to_string(),
            4 => "/v1/secrets/batch/metadata".to_string(),
            5 => format!("/v1/secrets{}", random_query(&mut rng)),
            _ => format!("/v1/secrets/{path}{}", random_query(&mut rng)),
        };
        let method = [
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ][rng.gen_range(0..5)]
        .clone();
        let mut req = client.request(method.clone(), s.url(&url));
        let shown_body;
        match rng.gen_range(0..4) {
            0 => {
                let bytes: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
                shown_body = format!("{bytes:?}");
                req = req.header(CONTENT_TYPE, "application/json").body(bytes);
            }
            1 => {
                let mut b = json!({"data": {"v": "1"}, "options": {}, "metadata": {}});
                let k = KEYS[rng.gen_range(0..KEYS.len())];
                let v = random_json(&mut rng, 1);
                match rng.gen_range(0..3) {
                    0 => b[k] = v,
                    1 => b["options"][k] = v,
                    _ => b["metadata"][k] = v,
                }
                shown_body = b.to_string();
                req = req.json(&b);
            }
            _ => {
                let b = random_json(&mut rng, 0);
                shown_body = b.to_string();
                req = req.json(&b);
            }
        }
        let r = send(req).await;
        let problem = if r.status >= 500 {
            Some("5xx".to_string())
        } else if r.status >= 400 {
            r.envelope_problem()
        } else if !r.text.is_empty() && r.body.is_null() {
            Some("2xx body is not JSON".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "#{i} {problem}: {method} {url} body {shown_body} → {r}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz (seed {seed}): {} of 200 requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The server is healthy afterwards.
    s.get("/v1/health/ready").await.expect(200);
    assert_eq!(s.read("abc/x").await["data"]["v"], "1");
}

async fn unauthenticated_probe_of_every_bad_input_is_401_not_500(backend: Backend) {
    // Bad inputs without a token still meet authentication first, never a 500.
    let s = spawn(backend).await;
    let anon = anon_client();
    for (m, p, body) in [
        (Method::PUT, "/v1/secrets/Bad/Path", "{\"data\": 1}"),
        (Method::POST, "/v1/secrets/batch", "{not json"),
        (Method::GET, "/v1/secrets/a?version=abc", ""),
    ] {
        let r = send(
            anon.request(m.clone(), s.url(p))
                .header(CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await;
        r.expect_error(401, "authentication_required");
    }
}

both!(
    path_rules,
    auth_failures,
    unknown_routes_and_methods,
    malformed_bodies,
    oversized_body,
    request_ids,
    fuzz_never_500,
    unauthenticated_probe_of_every_bad_input_is_401_not_500,
    hostile_bytes_are_client_errors,
    poison_request_does_not_fail_neighbours,
);
