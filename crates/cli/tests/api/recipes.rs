//! The cookbook's recipes, run verbatim with curl and jq against a real server: the policy recipes, the
//! audit recipes (the export going to a moto S3 server) and the health and observability recipes. The files in
//! `docs/recipes/` are copied from the cookbook; only the host is substituted (and the export's dates,
//! which the cookbook pins to April 2026, are moved to around now).

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::audit_export::Moto;
use crate::harness::{eventually, spawn, Backend, TestServer};

both!(policies_recipes, audit_recipes, observability_recipes);

const COOKBOOK_HOST: &str = "https://scaivault.scailabs.ai";

/// The recipes of `docs/recipes/<file>`: blocks separated by a blank line, comment-only blocks dropped.
fn recipes(file: &str) -> Vec<String> {
    let path = format!("{}/../../docs/recipes/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split("\n\n")
        .filter(|b| {
            b.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(str::to_owned)
        .collect()
}

/// Runs one recipe with bash (`set -euo pipefail`) and `$TOKEN`; returns its standard output.
fn run(s: &TestServer, recipe: &str, token: &str) -> String {
    let script = recipe.replace(COOKBOOK_HOST, &s.base_url);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .env("TOKEN", token)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "recipe failed ({}):\n{script}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// "Policies and access": create a policy, bind it (the cookbook's `pol_abc` is the one just created),
/// and test the decision.
async fn policies_recipes(backend: Backend) {
    let s = spawn(backend).await;
    let [create, bind, test] =
        <[String; 3]>::try_from(recipes("policies.sh")).expect("three policy recipes");
    let out = run(&s, &create, &s.admin_token);
    let created: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created:#}"));
    let out = run(&s, &bind.replace("pol_abc", id), &s.admin_token);
    assert!(out.contains("\"identity_id\":\"sa:billing-prod\""), "{out}");
    let out = run(&s, &test, &s.admin_token);
    assert_eq!(out.trim(), "true", "{out}");
}

async fn audit_recipes(backend: Backend) {
    let (s, moto) = tokio::join!(spawn(backend), Moto::start());
    moto.create_bucket("acme-audit").await;
    // The export's credentials; the endpoint rides along in the secret so the request stays verbatim.
    s.write_kv(
        "infra/aws/audit-uploader",
        json!({"access_key_id": "AKIARECIPE", "secret_access_key": "moto-secret-key-do-not-log", "endpoint": moto.url}),
    )
    .await;
    s.write_kv(
        "environments/production/billing/stripe",
        json!({"api_key": "sk_live_recipe_canary"}),
    )
    .await;
    // alice (a tenant admin of the default tenant) reads the secret.
    s.post(
        "/v1/identity/tenants/tnt_default/users",
        &json!({"email": "alice@acme.example", "roles": ["tenant_admin"], "scopes": ["admin"]}),
    )
    .await
    .expect(201);
    let r = s
        .post(
            "/v1/auth/tokens",
            &json!({"name": "alice", "identity_id": "user:alice@acme.example", "scopes": ["secrets:read"]}),
        )
        .await;
    r.expect(201);
    let alice = r.body["token"].as_str().unwrap().to_owned();
    s.as_token(
        &alice,
        reqwest::Method::GET,
        "/v1/secrets/environments/production/billing/stripe",
        None,
    )
    .await
    .expect(200);

    let [who_read, ex_employee, export] =
        <[String; 3]>::try_from(recipes("audit.sh")).expect("three audit recipes");

    // Who read this secret in the last 24 hours? — "<timestamp> <identity_id> <source_ip>" lines.
    let out = run(&s, &who_read, &s.admin_token);
    let alice_line = out
        .lines()
        .find(|l| l.contains(" user:alice@acme.example "))
        .unwrap_or_else(|| panic!("no line for alice in:\n{out}"));
    let fields: Vec<&str> = alice_line.split(' ').collect();
    assert_eq!(fields.len(), 3, "{alice_line}");
    time::OffsetDateTime::parse(fields[0], &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {:?}: {e}", fields[0]));
    assert_eq!(fields[2], "127.0.0.1", "{alice_line}");

    // Every action by an ex-employee, and the resources to rotate.
    let out = run(&s, &ex_employee, &s.admin_token);
    let body: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let accessed: Vec<&str> = body["summary"]["resources_accessed"]
        .as_array()
        .unwrap_or_else(|| panic!("no summary.resources_accessed in {body:#}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        accessed.contains(&"environments/production/billing/stripe"),
        "{body:#}"
    );
    let logs = body["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    assert!(
        logs.iter()
            .all(|l| l["identity_id"] == "user:alice@acme.example"),
        "{body:#}"
    );

    // Export last month for compliance — "last month" being now.
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let export = export
        .replace(
            "2026-04-01T00:00:00Z",
            &rfc3339(now - time::Duration::days(1)),
        )
        .replace(
            "2026-04-30T23:59:59Z",
            &rfc3339(now + time::Duration::days(1)),
        );
    let out = run(&s, &export, &s.admin_token);
    let created: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let id = created["export_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created:#}"));
    assert!(id.starts_with("exp_"), "{created:#}");
    assert!(
        matches!(created["status"].as_str(), Some("pending" | "running")),
        "{created:#}"
    );
    assert!(
        created["estimated_records"].as_i64().unwrap() > 0,
        "{created:#}"
    );
    let job = eventually(Duration::from_secs(60), "the export to finish", || async {
        let r = s.get(&format!("/v1/audit/exports/{id}")).await;
        r.expect(200);
        matches!(r.body["status"].as_str(), Some("completed" | "failed")).then(|| r.body.clone())
    })
    .await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let key = job["manifest"]["object_keys"][0].as_str().unwrap();
    assert!(key.starts_with("scaivault/2026-04/"), "{job:#}");
    let data = moto.download("acme-audit", key).await;
    let text = String::from_utf8(data.clone()).unwrap();
    assert!(text.contains("user:alice@acme.example"));
    assert!(
        !text.contains("sk_live_recipe_canary") && !text.contains("moto-secret-key-do-not-log")
    );
    // An auditor verifies the downloaded file without the server.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scaivault"))
        .args(["audit", "verify", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn observability_recipes(backend: Backend) {
    let mut s = spawn(backend).await;
    // The documented default limits, so the headroom recipe has headers to show.
    s.rate_limits = String::new();
    s.restart().await;
    let [smoke, detailed, whoami, headroom] =
        <[String; 4]>::try_from(recipes("observability.sh")).expect("four observability recipes");

    let health: Value = serde_json::from_str(&run(&s, &smoke, "")).unwrap();
    assert_eq!(health["status"], "healthy", "{health:#}");

    let out = run(&s, &detailed, &s.admin_token);
    let detail: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(detail["status"].is_string(), "{detail:#}");
    assert!(
        detail["checks"]["database"]["status"].is_string(),
        "{detail:#}"
    );

    let out = run(&s, &whoami, &s.admin_token);
    let me: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(me["identity_id"].is_string(), "{me:#}");
    assert_eq!(me["tenant_id"], "tnt_default", "{me:#}");

    // The three headers, as the cookbook shows them (its example values are the managed service's).
    let out = run(&s, &headroom, &s.admin_token);
    let mut names: Vec<String> = Vec::new();
    for line in out.lines() {
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("{out}"));
        value
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("not a number in {line:?}"));
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset"
        ],
        "{out}"
    );
}
