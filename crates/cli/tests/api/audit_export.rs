//! Audit exports against a real S3 API (moto in server mode on loopback, installed by `scripts/moto.sh`;
//! a missing moto fails these tests, it never skips them): JSONL and CSV exports verified offline with
//! `scaivault audit verify --file`, tampering named, errors and scopes, tenant isolation, no secret
//! values, interrupted jobs, the CLI, and audit retention with verification from the chain's anchor.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::Digest;

use crate::audit::{Arg, Db};
use crate::harness::{eventually, random_alnum, spawn, spawn_with_env, Backend, Resp, TestServer};

both!(
    export_to_moto_and_verify_offline,
    export_errors_and_scopes,
    export_is_tenant_scoped_without_secret_values,
    interrupted_export_is_failed,
    retention_prunes_and_chain_still_verifies,
);

const BIN: &str = env!("CARGO_BIN_EXE_scaivault");
const CREDS: &str = "infra/aws/audit-uploader";

// ---- moto ---------------------------------------------------------------------------------------

/// A moto S3 server on a free loopback port, killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static MOTO_BIN: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

async fn moto_bin() -> PathBuf {
    MOTO_BIN
        .get_or_init(|| async {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/moto.sh");
            let out = tokio::task::spawn_blocking(move || {
                Command::new("bash").arg(script).arg("install").output()
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
            assert!(
                out.status.success(),
                "\n\n*** {script} install failed: moto[server] is needed for the audit export tests ***\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            assert!(path.exists(), "moto_server not found at {}", path.display());
            path
        })
        .await
        .clone()
}

impl Moto {
    pub(crate) async fn start() -> Moto {
        let bin = moto_bin().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let url = moto.url.clone();
        eventually(Duration::from_secs(60), "moto_server to answer", || {
            let (c, u) = (client.clone(), url.clone());
            async move { c.get(format!("{u}/")).send().await.ok().map(|_| ()) }
        })
        .await;
        moto
    }

    pub(crate) async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.url))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "create bucket {name}: {}",
            r.status()
        );
    }

    /// A signed S3 client for `bucket` with the credentials the tests store in ScaiVault.
    fn s3(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_access_key_id("AKIAEXPORTTEST")
            .with_secret_access_key("moto-secret-key-do-not-log")
            .with_region("us-east-1")
            .with_endpoint(&self.url)
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    pub(crate) async fn download(&self, bucket: &str, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        let path = object_store::path::Path::parse(key).unwrap();
        let got = self
            .s3(bucket)
            .get(&path)
            .await
            .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e}"));
        got.bytes().await.unwrap().to_vec()
    }

    pub(crate) async fn keys(&self, bucket: &str) -> Vec<String> {
        use object_store::ObjectStore;
        let store = self.s3(bucket);
        let mut out = Vec::new();
        let mut todo = vec![None];
        while let Some(prefix) = todo.pop() {
            let listed = store.list_with_delimiter(prefix.as_ref()).await.unwrap();
            out.extend(listed.objects.iter().map(|o| o.location.to_string()));
            todo.extend(listed.common_prefixes.into_iter().map(Some));
        }
        out
    }
}

// ---- helpers ------------------------------------------------------------------------------------

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The value of a `key: value` line of the output.
    fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

async fn run_cli(s: Option<(&TestServer, &str)>, args: &[&str]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir.path());
    for k in ["SCAIVAULT_URL", "SCAIVAULT_TOKEN", "SCAIVAULT_TENANT_ID"] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", dir.path())
        .env("SCAIVAULT_CONFIG", dir.path().join("config.json"))
        .env("NO_COLOR", "1");
    match s {
        Some((s, token)) => {
            cmd.env("SCAIVAULT_URL", &s.base_url)
                .env("SCAIVAULT_TOKEN", token);
        }
        None => {
            cmd.env("SCAIVAULT_URL", "http://127.0.0.1:9");
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `scaivault audit verify --file` on `bytes` (offline).
async fn verify_bytes(bytes: &[u8], name: &str, extra: &[&str]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(name);
    std::fs::write(&f, bytes).unwrap();
    let path = f.to_string_lossy().into_owned();
    let mut args = vec!["audit", "verify", "--file", &path];
    args.extend_from_slice(extra);
    let out = run_cli(None, &args).await;
    drop(dir);
    out
}

fn export_body(moto: &Moto, bucket: &str, format: &str, extra: Value) -> Value {
    let mut b = json!({
        "format": format,
        "destination": {
            "type": "s3",
            "bucket": bucket,
            "prefix": "scaivault/2026-04/",
            "credentials_path": CREDS,
            "endpoint": moto.url,
            "region": "us-east-1",
        }
    });
    if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

async fn write_creds(s: &TestServer) {
    s.write_kv(
        CREDS,
        json!({"access_key_id": "AKIAEXPORTTEST", "secret_access_key": "moto-secret-key-do-not-log"}),
    )
    .await;
}

async fn post_as(s: &TestServer, token: &str, path: &str, body: &Value) -> Resp {
    Resp::from(
        s.client()
            .post(s.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get_as(s: &TestServer, token: &str, path: &str) -> Resp {
    Resp::from(
        s.client()
            .get(s.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn token_with(s: &TestServer, scopes: &[&str]) -> String {
    let r = s
        .post(
            "/v1/auth/tokens",
            &json!({"name": format!("export-test-{}", random_alnum(6)), "scopes": scopes}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "create token: {r}");
    r.body["token"].as_str().unwrap().to_owned()
}

/// Creates an export and waits until it reaches `completed` (or fails the test on `failed`).
async fn export_and_wait(s: &TestServer, body: &Value) -> Value {
    let r = s.post("/v1/audit/export", body).await;
    r.expect(202);
    let id = r.body["export_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("exp_"), "{r}");
    assert!(
        matches!(r.body["status"].as_str(), Some("pending" | "running")),
        "{r}"
    );
    assert!(r.body["estimated_records"].as_i64().unwrap() > 0, "{r}");
    wait_done(s, &id, "completed").await
}

async fn wait_done(s: &TestServer, id: &str, want: &str) -> Value {
    let job = eventually(Duration::from_secs(60), "the export to finish", || async {
        let r = s.get(&format!("/v1/audit/exports/{id}")).await;
        r.expect(200);
        match r.body["status"].as_str() {
            Some("completed" | "failed") => Some(r.body.clone()),
            _ => None,
        }
    })
    .await;
    assert_eq!(job["status"], want, "{job:#}");
    job
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

async fn traffic(s: &TestServer, canary: &str) {
    write_creds(s).await;
    for i in 0..5 {
        s.write_kv(
            &format!("app/svc{i}/db"),
            json!({"password": format!("{canary}{i}")}),
        )
        .await;
        s.read(&format!("app/svc{i}/db")).await;
    }
    s.get("/v1/secrets/app/missing").await.expect(404);
}

// ---- tests --------------------------------------------------------------------------------------

async fn export_to_moto_and_verify_offline(backend: Backend) {
    let (s, moto) = tokio::join!(spawn(backend), Moto::start());
    let bucket = format!("audit-{}", random_alnum(8).to_lowercase());
    moto.create_bucket(&bucket).await;
    let canary = format!("cnry{}", random_alnum(20));
    traffic(&s, &canary).await;

    // JSONL through the API.
    let job = export_and_wait(&s, &export_body(&moto, &bucket, "jsonl", json!({}))).await;
    let m = &job["manifest"];
    let key = m["object_keys"][0].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("scaivault/2026-04/exp_") && key.ends_with(".jsonl"),
        "{job:#}"
    );
    let data = moto.download(&bucket, &key).await;
    assert_eq!(m["byte_size"].as_u64().unwrap() as usize, data.len());
    assert_eq!(m["sha256"].as_str().unwrap(), sha256_hex(&data));
    let text = String::from_utf8(data.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(m["record_count"].as_u64().unwrap() as usize, lines.len());
    assert_eq!(job["records_exported"], m["record_count"]);
    assert!(lines.len() >= 11, "{} lines", lines.len());
    // The chain anchor of the manifest matches the file.
    assert_eq!(m["chain"]["first_seq"], 1);
    assert_eq!(m["chain"]["first_prev_hash"], "0".repeat(64));
    assert_eq!(m["chain"]["last_seq"], lines.last().unwrap()["seq"]);
    assert_eq!(m["chain"]["last_hash"], lines.last().unwrap()["hash"]);
    for w in lines.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
        assert_eq!(
            w[1]["seq"].as_i64().unwrap(),
            w[0]["seq"].as_i64().unwrap() + 1
        );
    }
    assert!(!text.contains(&canary), "a secret value is in the export");
    assert!(!text.contains("moto-secret-key-do-not-log"));
    // The manifest object sits next to the data.
    let manifest: Value = serde_json::from_slice(
        &moto
            .download(&bucket, &format!("{key}.manifest.json"))
            .await,
    )
    .unwrap();
    assert_eq!(manifest["manifest"]["sha256"], m["sha256"]);

    let ok = verify_bytes(&data, "export.jsonl", &[]).await;
    assert_eq!(ok.code, 0, "{ok}");
    assert_eq!(ok.field("valid"), "true", "{ok}");

    // Edit one line: verify names that entry.
    let victim = 4usize;
    let mut edited: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut v: Value = serde_json::from_str(&edited[victim]).unwrap();
    let (vseq, vid) = (
        v["seq"].as_i64().unwrap(),
        v["id"].as_str().unwrap().to_owned(),
    );
    v["identity_id"] = json!("user:mallory@evil.example");
    edited[victim] = v.to_string();
    let bad = verify_bytes(edited.join("\n").as_bytes(), "edited.jsonl", &[]).await;
    assert_eq!(bad.code, 1, "{bad}");
    assert_eq!(bad.field("first_bad.seq"), vseq.to_string(), "{bad}");
    assert!(
        bad.stdout.contains(&vid) && bad.stderr.contains(&vid),
        "{bad}"
    );

    // CSV through the CLI, waiting for the job.
    let out = run_cli(
        Some((&s, &s.admin_token)),
        &[
            "--json",
            "audit",
            "export",
            "--format",
            "csv",
            "--destination",
            "s3",
            "--bucket",
            &bucket,
            "--prefix",
            "csv/",
            "--endpoint",
            &moto.url,
            "--region",
            "us-east-1",
            "--credentials-path",
            CREDS,
            "--wait",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    let cjob: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(cjob["status"], "completed", "{cjob:#}");
    assert_eq!(cjob["format"], "csv");
    let ckey = cjob["manifest"]["object_keys"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ckey.starts_with("csv/exp_") && ckey.ends_with(".csv"),
        "{ckey}"
    );
    let csv = moto.download(&bucket, &ckey).await;
    assert_eq!(
        cjob["manifest"]["sha256"].as_str().unwrap(),
        sha256_hex(&csv)
    );
    let ctext = String::from_utf8(csv.clone()).unwrap();
    assert!(
        ctext.starts_with("seq,id,tenant_id,timestamp,action,"),
        "{ctext}"
    );
    assert!(!ctext.contains(&canary));
    let ok = verify_bytes(&csv, "export.csv", &[]).await;
    assert_eq!(ok.code, 0, "{ok}");
    // Flip one row's success flag: verify names that row's entry.
    let mut rows: Vec<String> = ctext.lines().map(str::to_owned).collect();
    let row = rows
        .iter()
        .position(|r| r.contains(",true,") && r.starts_with("6,"))
        .expect("row with seq 6");
    rows[row] = rows[row].replacen(",true,", ",false,", 1);
    let bad = verify_bytes(rows.join("\n").as_bytes(), "edited.csv", &[]).await;
    assert_eq!(bad.code, 1, "{bad}");
    assert_eq!(bad.field("first_bad.seq"), "6", "{bad}");

    // Listing and getting through the CLI.
    let list = run_cli(Some((&s, &s.admin_token)), &["--json", "audit", "exports"]).await;
    assert_eq!(list.code, 0, "{list}");
    let l: Value = serde_json::from_str(&list.stdout).unwrap();
    let ids: Vec<&str> = l["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["export_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            cjob["export_id"].as_str().unwrap(),
            job["export_id"].as_str().unwrap()
        ]
    );
    let one = run_cli(
        Some((&s, &s.admin_token)),
        &[
            "audit",
            "exports",
            "get",
            job["export_id"].as_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(one.code, 0, "{one}");
    assert_eq!(one.field("status"), "completed", "{one}");
    assert_eq!(one.field("object_keys"), key, "{one}");
    // Paging the list.
    let p1 = s.get("/v1/audit/exports?limit=1").await;
    p1.expect(200);
    assert_eq!(p1.body["has_more"], true);
    let c = p1.body["cursor"].as_str().unwrap();
    let p2 = s
        .get(&format!("/v1/audit/exports?limit=1&cursor={c}"))
        .await;
    p2.expect(200);
    assert_eq!(p2.body["exports"][0]["export_id"], job["export_id"]);
    assert_eq!(p2.body["has_more"], false);
    // The creation is in the audit trail.
    let r = s.get("/v1/audit/logs?action=export_created").await;
    r.expect(200);
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(
        r.body["logs"][1]["extra_data"]["export_id"],
        job["export_id"]
    );
}

async fn export_errors_and_scopes(backend: Backend) {
    let s = spawn(backend).await;
    let dest = json!({"type": "s3", "bucket": "audit-bucket", "credentials_path": CREDS,
                      "endpoint": "http://127.0.0.1:9"});
    // No credentials secret yet.
    let r = s
        .post(
            "/v1/audit/export",
            &json!({"format": "jsonl", "destination": dest}),
        )
        .await;
    r.expect_validation("destination.credentials_path");
    // Credentials without the keys S3 needs.
    s.write_kv(CREDS, json!({"user": "x"})).await;
    let r = s
        .post("/v1/audit/export", &json!({"destination": dest}))
        .await;
    r.expect_validation("destination.credentials_path");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access_key_id"),
        "{r}"
    );
    write_creds(&s).await;
    // Body validation, every problem at once.
    let r = s
        .post(
            "/v1/audit/export",
            &json!({"format": "xml", "from": "yesterday", "filters": {"colour": "red"},
                    "destination": {"type": "ftp", "bucket": "B!"}}),
        )
        .await;
    r.expect(422);
    let fields = r.fields();
    for f in [
        "format",
        "filters.colour",
        "destination.type",
        "destination.bucket",
        "destination.credentials_path",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} not in {fields:?}: {r}");
    }
    s.post("/v1/audit/export", &json!({"format": "jsonl"}))
        .await
        .expect_validation("destination");
    // Scopes: audit:export creates; audit:read or audit:export lists and reads.
    let reader = token_with(&s, &["audit:read", "secrets:read"]).await;
    let exporter_no_read = token_with(&s, &["audit:export"]).await;
    let nobody = token_with(&s, &["secrets:read"]).await;
    post_as(
        &s,
        &reader,
        "/v1/audit/export",
        &json!({"destination": dest}),
    )
    .await
    .expect_error(403, "insufficient_scope");
    // Using the credentials is reading them.
    post_as(
        &s,
        &exporter_no_read,
        "/v1/audit/export",
        &json!({"destination": dest}),
    )
    .await
    .expect_error(403, "insufficient_scope");
    get_as(&s, &reader, "/v1/audit/exports").await.expect(200);
    get_as(&s, &exporter_no_read, "/v1/audit/exports")
        .await
        .expect(200);
    get_as(&s, &nobody, "/v1/audit/exports")
        .await
        .expect_error(403, "insufficient_scope");
    get_as(&s, &nobody, "/v1/audit/exports/exp_nope")
        .await
        .expect_error(403, "insufficient_scope");
    s.get("/v1/audit/exports/exp_nope")
        .await
        .expect_error(404, "not_found");
    s.get("/v1/audit/exports?cursor=zzz")
        .await
        .expect_error(400, "invalid_cursor");
    // The CLI maps the refusal to exit 3.
    let out = run_cli(
        Some((&s, &reader)),
        &[
            "audit",
            "export",
            "--destination",
            "s3",
            "--bucket",
            "audit-bucket",
            "--credentials-path",
            CREDS,
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("insufficient_scope"), "{out}");
    // An upload that fails (nothing listens at the endpoint) ends `failed`, with no credential in the error.
    let r = s
        .post("/v1/audit/export", &json!({"destination": dest}))
        .await;
    r.expect(202);
    let id = r.body["export_id"].as_str().unwrap();
    let job = wait_done(&s, id, "failed").await;
    let err = job["error"].as_str().unwrap();
    assert!(err.contains("audit-bucket"), "{err}");
    assert!(!err.contains("moto-secret-key-do-not-log"), "{err}");
    assert!(!s.logs().contains("moto-secret-key-do-not-log"));
    assert!(job["manifest"].is_null());
}

async fn export_is_tenant_scoped_without_secret_values(backend: Backend) {
    let (s, moto) = tokio::join!(spawn(backend), Moto::start());
    let bucket = format!("audit-{}", random_alnum(8).to_lowercase());
    moto.create_bucket(&bucket).await;
    let canary = format!("cnry{}", random_alnum(20));
    traffic(&s, &canary).await;
    let tenant_a = s.get("/v1/auth/whoami").await.body["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Tenant B, next to A in the same partner, with its own token and traffic.
    let tenant_b = format!("tnt_b{}", random_alnum(10));
    let token_b = format!("skt_{}", random_alnum(40));
    let mut db = Db::open(&s).await;
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    db.exec(
        "INSERT INTO tenants (id, partner_id, name, created_at) \
         SELECT $1, partner_id, 'tenant b', $2 FROM tenants WHERE id = $3",
        &[
            Arg::S(tenant_b.clone()),
            Arg::I(now),
            Arg::S(tenant_a.clone()),
        ],
    )
    .await;
    db.exec(
        "INSERT INTO identities (tenant_id, id, identity_type, roles, groups_json, scopes, created_at) \
         VALUES ($1, 'user:bob@b.example', 'user', '[\"tenant_admin\"]', '[]', '[\"audit:read\",\"audit:export\",\"secrets:read\"]', $2)",
        &[Arg::S(tenant_b.clone()), Arg::I(now)],
    )
    .await;
    db.exec(
        "INSERT INTO tokens (id, token_hash, tenant_id, identity_id, name, scopes, created_at) \
         VALUES ($1, $2, $3, 'user:bob@b.example', 'b', $4, $5)",
        &[
            Arg::S(format!("tok_b{}", random_alnum(10))),
            Arg::B(scaivault_server::auth::hash_token(&token_b).to_vec()),
            Arg::S(tenant_b.clone()),
            Arg::S(r#"["audit:read","audit:export","secrets:read"]"#.to_owned()),
            Arg::I(now),
        ],
    )
    .await;
    db.close().await;
    for i in 0..3 {
        get_as(&s, &token_b, &format!("/v1/secrets/tenantb-only/p{i}"))
            .await
            .expect(404);
    }
    let b_logs = get_as(&s, &token_b, "/v1/audit/logs").await;
    b_logs.expect(200);
    assert!(b_logs.body["logs"].as_array().unwrap().len() >= 3);

    let job = export_and_wait(&s, &export_body(&moto, &bucket, "jsonl", json!({}))).await;
    let key = job["manifest"]["object_keys"][0].as_str().unwrap();
    let data = moto.download(&bucket, key).await;
    let text = String::from_utf8(data.clone()).unwrap();
    assert!(
        !text.contains("tenantb-only") && !text.contains(&tenant_b),
        "B's entries in A's export"
    );
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["tenant_id"], tenant_a.as_str());
    }
    assert!(!text.contains(&canary));
    // B sees none of A's exports.
    let bl = get_as(&s, &token_b, "/v1/audit/exports").await;
    bl.expect(200);
    assert_eq!(bl.body["exports"], json!([]));
    get_as(
        &s,
        &token_b,
        &format!("/v1/audit/exports/{}", job["export_id"].as_str().unwrap()),
    )
    .await
    .expect_error(404, "not_found");
    // B cannot use A's credentials secret: in B's tenant there is no such secret.
    post_as(
        &s,
        &token_b,
        "/v1/audit/export",
        &export_body(&moto, &bucket, "jsonl", json!({})),
    )
    .await
    .expect_validation("destination.credentials_path");

    // A filtered export (reads only) holds only reads; its chain has gaps, each entry is checked against
    // its own prev_hash with --allow-gaps.
    let fjob = export_and_wait(
        &s,
        &export_body(
            &moto,
            &bucket,
            "jsonl",
            json!({"filters": {"action": ["read"], "success": true}}),
        ),
    )
    .await;
    let fdata = moto
        .download(
            &bucket,
            fjob["manifest"]["object_keys"][0].as_str().unwrap(),
        )
        .await;
    let flines: Vec<Value> = String::from_utf8(fdata.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(flines.len(), 5, "{flines:?}");
    assert!(flines
        .iter()
        .all(|l| l["action"] == "read" && l["success"] == true));
    let strict = verify_bytes(&fdata, "reads.jsonl", &[]).await;
    assert_eq!(strict.code, 1, "a filtered export has gaps: {strict}");
    let gaps = verify_bytes(&fdata, "reads.jsonl", &["--allow-gaps"]).await;
    assert_eq!(gaps.code, 0, "{gaps}");
    assert_eq!(gaps.field("entries_checked"), "5", "{gaps}");
    // ...and a changed entry in it is still named.
    let mut edited = flines.clone();
    edited[2]["secret_path"] = json!("app/svc9/db");
    let body: Vec<String> = edited.iter().map(Value::to_string).collect();
    let bad = verify_bytes(body.join("\n").as_bytes(), "reads.jsonl", &["--allow-gaps"]).await;
    assert_eq!(bad.code, 1, "{bad}");
    assert_eq!(
        bad.field("first_bad.seq"),
        flines[2]["seq"].to_string(),
        "{bad}"
    );

    // No secret value anywhere in any object of the bucket.
    let keys = moto.keys(&bucket).await;
    assert!(keys.len() >= 4, "{keys:?}");
    for k in &keys {
        let body = moto.download(&bucket, k).await;
        assert!(
            !crate::harness::contains_bytes(&body, canary.as_bytes()),
            "{k}"
        );
        assert!(
            !crate::harness::contains_bytes(&body, b"moto-secret-key-do-not-log"),
            "{k}"
        );
    }
}

async fn interrupted_export_is_failed(backend: Backend) {
    let mut s = spawn(backend).await;
    let tenant = s.get("/v1/auth/whoami").await.body["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.kill9().await;
    // A job that was running when its server died (its heartbeat stopped a minute ago).
    let mut db = Db::open(&s).await;
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    let then = now - 60_000_000;
    db.exec(
        "INSERT INTO audit_exports (tenant_id, id, status, format, filters, destination, created_by, created_at, \
         started_at, heartbeat_at, estimated_records, record_count, byte_size, object_keys) \
         VALUES ($1, 'exp_interrupted', 'running', 'jsonl', '{}', '{\"type\":\"s3\",\"bucket\":\"b\"}', 'user:x', $2, $2, $2, 10, 3, 100, '[]')",
        &[Arg::S(tenant), Arg::I(then)],
    )
    .await;
    db.close().await;
    s.restart().await;
    let job = wait_done(&s, "exp_interrupted", "failed").await;
    assert!(
        job["error"].as_str().unwrap().contains("interrupted"),
        "{job:#}"
    );
    assert!(job["manifest"].is_null());
}

async fn retention_prunes_and_chain_still_verifies(backend: Backend) {
    let s = spawn_with_env(backend, &[("AUDIT_RETENTION", "2s")]).await;
    let first = s.get("/v1/secrets/early/missing").await;
    first.expect(404);
    let rid = first.request_id.clone().unwrap();
    for i in 0..5 {
        s.write_kv(&format!("ret/k{i}"), json!({"v": i})).await;
    }
    let first_seq = {
        let r = s.get(&format!("/v1/audit/logs?request_id={rid}")).await;
        r.expect(200);
        r.body["logs"][0]["seq"].as_i64().unwrap_or(1)
    };
    // Old entries go, oldest first; the chain still verifies from its new anchor.
    let v = eventually(
        Duration::from_secs(30),
        "the early entries to be pruned",
        || async {
            let r = s.get(&format!("/v1/audit/logs?request_id={rid}")).await;
            r.expect(200);
            if !r.body["logs"].as_array().unwrap().is_empty() {
                return None;
            }
            let v = s.get("/v1/audit/verify").await;
            v.expect(200);
            Some(v.body.clone())
        },
    )
    .await;
    assert_eq!(v["valid"], true, "{v:#}");
    let anchor = v["anchor"]["seq"].as_i64().unwrap();
    assert!(anchor >= first_seq, "{v:#}");
    assert_eq!(v["anchor"]["hash"].as_str().unwrap().len(), 64);
    // What remains starts right after the anchor.
    let all = s.get("/v1/audit/logs?limit=1000").await;
    all.expect(200);
    let seqs: Vec<i64> = all.body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.iter().all(|q| *q > first_seq), "{seqs:?}");
    // The CLI agrees.
    let out = run_cli(Some((&s, &s.admin_token)), &["audit", "verify"]).await;
    assert_eq!(out.code, 0, "{out}");
    // Tampering with what remains is still detected.
    let mut db = Db::open(&s).await;
    let tenant = s.get("/v1/auth/whoami").await.body["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Stop the pruner from racing the check: use an entry newer than the retention.
    let newest = s.get("/v1/audit/logs?limit=5").await.body["logs"][4]["seq"]
        .as_i64()
        .unwrap();
    db.exec(
        "UPDATE audit_log SET identity_id = 'user:mallory@evil.example' WHERE tenant_id = $1 AND seq = $2",
        &[Arg::S(tenant), Arg::I(newest)],
    )
    .await;
    db.close().await;
    let v = s.get("/v1/audit/verify").await;
    v.expect(200);
    // Either the changed entry is named, or it was pruned meanwhile (then the chain is valid again).
    if v.body["valid"] == false {
        assert_eq!(v.body["first_bad"]["seq"], newest, "{v}");
    } else {
        assert!(v.body["anchor"]["seq"].as_i64().unwrap() >= newest, "{v}");
    }
}
