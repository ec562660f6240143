//! Starts the real `scaivault` binary against fresh storage and talks to it over loopback HTTP.
//!
//! `spawn(backend)` gives a [`TestServer`] with its own data directory (and, for PostgreSQL, its own
//! randomly named database, dropped on `Drop`). The server is found by the `listening on http://…` line it
//! prints on stdout; its stdout and stderr are drained for its whole life and kept for [`TestServer::logs`].

// A shared testkit: the CLI tests use parts the API tests do not, and vice versa.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

const SERVER_START_DEADLINE: Duration = Duration::from_secs(30);
const POSTGRES_DEADLINE: Duration = Duration::from_secs(30);
const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const POSTGRES_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The value `/v1/version` reports in `storage`.
    pub fn storage_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub struct TestServer {
    pub base_url: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub backend: Backend,
    /// `SCAIVAULT_RATE_LIMITS` for the server; off by default so suites can write freely. Change it and
    /// `restart()` to test limits.
    pub rate_limits: String,
    /// More environment for the server process (e.g. `AUDIT_RETENTION`), applied on every (re)start.
    pub extra_env: Vec<(String, String)>,
    child: Option<Child>,
    pg_db: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
    /// Extra environment for the server process (e.g. `REDIS_URL`, `SCAIVAULT_EXTERNAL_ISSUERS`);
    /// change it and `restart()` to apply.
    pub env: Vec<(String, String)>,
    // Dropped last: the data directory outlives the child that writes into it.
    _tmp: tempfile::TempDir,
}

/// Starts a server on fresh storage: a new temporary data directory and, for PostgreSQL, a new database.
pub async fn spawn(backend: Backend) -> TestServer {
    spawn_with_env(backend, &[]).await
}

/// [`spawn`] with more environment for the server process.
pub async fn spawn_with_env(backend: Backend, env: &[(&str, &str)]) -> TestServer {
    let tmp = tempfile::Builder::new()
        .prefix("scaivault-api-")
        .tempdir()
        .expect("create temp data dir");
    let admin_token = format!("skt_{}", random_alnum(40));
    let (database_url, pg_db) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let name = format!("scaivault_api_{}", random_alnum(16).to_lowercase());
            create_database(&name).await;
            (Some(format!("{POSTGRES_BASE_URL}/{name}")), Some(name))
        }
    };
    let client = authed_client(&admin_token);
    let mut server = TestServer {
        base_url: String::new(),
        admin_token,
        data_dir: tmp.path().to_path_buf(),
        database_url,
        backend,
        rate_limits: "all=0".to_owned(),
        extra_env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        child: None,
        pg_db,
        logs: Arc::new(Mutex::new(Vec::new())),
        client,
        env: Vec::new(),
        _tmp: tmp,
    };
    server.start().await;
    server
}

/// A second node on the same database and root key as `first` (PostgreSQL), with its own `env` and
/// `rate_limits`. The database stays owned by `first`.
pub async fn spawn_peer(first: &TestServer, env: Vec<(String, String)>) -> TestServer {
    let tmp = tempfile::Builder::new()
        .prefix("scaivault-peer-")
        .tempdir()
        .expect("create temp dir");
    let mut server = TestServer {
        base_url: String::new(),
        admin_token: first.admin_token.clone(),
        data_dir: first.data_dir.clone(),
        database_url: first.database_url.clone(),
        backend: first.backend,
        rate_limits: first.rate_limits.clone(),
        extra_env: first.extra_env.clone(),
        child: None,
        pg_db: None,
        logs: Arc::new(Mutex::new(Vec::new())),
        client: authed_client(&first.admin_token),
        env,
        _tmp: tmp,
    };
    server.start().await;
    server
}

impl TestServer {
    /// A client that sends `Authorization: Bearer <admin token>` on every request (a per-request
    /// `.header(AUTHORIZATION, …)` or `.bearer_auth(…)` replaces it). Use [`anon_client`] for none.
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// `base_url` + `p`, where `p` starts with `/` (e.g. `/v1/health`).
    pub fn url(&self, p: &str) -> String {
        format!("{}{}", self.base_url, p)
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server printed on stdout and stderr so far, one line per line.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL the server (no shutdown handlers run) and reap it.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // std's Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }

    /// Starts the same binary on the same data directory and database, on a new port. A server that is
    /// still running is killed (SIGKILL) first.
    pub async fn restart(&mut self) {
        self.kill9().await;
        self.start().await;
    }

    async fn start(&mut self) {
        assert!(self.child.is_none(), "start() with a server still running");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaivault"));
        cmd.arg("server")
            .arg("--dev")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--dev-root-token")
            .arg(&self.admin_token)
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("BIND_ADDRESS")
            .env_remove("SCAIKEY_URL")
            .env_remove("SCAIKEY_JWKS_URL")
            .env_remove("SCAIVAULT_EXTERNAL_ISSUERS")
            .env_remove("SCAIVAULT_REDIS_PREFIX")
            .env("SCAIVAULT_RATE_LIMITS", &self.rate_limits)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = &self.database_url {
            cmd.env("DATABASE_URL", url);
        }
        for (k, v) in self.extra_env.iter().chain(&self.env) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the scaivault binary");
        let stdout = child.stdout.take().expect("child stdout is piped");
        let stderr = child.stderr.take().expect("child stderr is piped");

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        drain(stdout, "stdout", self.logs.clone(), Some(tx));
        drain(stderr, "stderr", self.logs.clone(), None);
        self.child = Some(child);

        let found = tokio::time::timeout(SERVER_START_DEADLINE, rx.recv()).await;
        match found {
            Ok(Some(url)) => self.base_url = url,
            Ok(None) => {
                let status = self.reap_after_failed_start().await;
                panic!(
                    "scaivault server exited ({status}) before printing 'listening on http://…'\n--- server output ---\n{}",
                    self.logs()
                );
            }
            Err(_) => {
                self.kill9().await;
                panic!(
                    "scaivault server did not print 'listening on http://…' within {SERVER_START_DEADLINE:?}\n--- server output ---\n{}",
                    self.logs()
                );
            }
        }
    }

    async fn reap_after_failed_start(&mut self) -> String {
        match self.child.take() {
            Some(mut child) => {
                let waited = tokio::task::spawn_blocking(move || child.wait()).await;
                match waited {
                    Ok(Ok(status)) => status.to_string(),
                    other => format!("{other:?}"),
                }
            }
            None => "not running".to_string(),
        }
    }

    // ---- request helpers -------------------------------------------------------------------------

    /// Sends a request with the admin token and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        Resp::from(
            req.send()
                .await
                .unwrap_or_else(|e| panic!("request to {path} failed: {e}")),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    /// Sends a request with another bearer token and extra headers.
    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = anon_client()
            .request(method, self.url(path))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Resp::from(
            req.send()
                .await
                .unwrap_or_else(|e| panic!("request to {path} failed: {e}")),
        )
        .await
    }

    /// Sends a request with another bearer token.
    pub async fn as_token(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Resp {
        self.call_as(token, method, path, body, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// `PUT /v1/secrets/{path}` with `body`, asserting 200 or 201; returns the response body.
    pub async fn write(&self, path: &str, body: &Value) -> Value {
        let r = self.put(&format!("/v1/secrets/{path}"), body).await;
        assert!(
            r.status == 200 || r.status == 201,
            "PUT /v1/secrets/{path} {body}: expected 200/201, got {r}"
        );
        r.body
    }

    /// Writes `data` (a flat kv object) to `path`.
    pub async fn write_kv(&self, path: &str, data: Value) -> Value {
        self.write(path, &serde_json::json!({ "data": data })).await
    }

    /// `GET /v1/secrets/{path}`, asserting 200; returns the body.
    pub async fn read(&self, path: &str) -> Value {
        let r = self.get(&format!("/v1/secrets/{path}")).await;
        r.expect(200);
        r.body
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(name) = self.pg_db.take() {
            // Best effort, on a thread with its own runtime: Drop may run inside a tokio runtime.
            let joined = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        if let Ok(mut conn) = PgConnection::connect(POSTGRES_ADMIN_URL).await {
                            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                            let _ = sqlx::query(&sql).execute(&mut conn).await;
                            let _ = conn.close().await;
                        }
                    });
                }
            })
            .join();
            drop(joined);
        }
    }
}

/// A client without credentials.
pub fn anon_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build reqwest client")
}

fn authed_client(token: &str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    let value =
        HeaderValue::from_str(&format!("Bearer {token}")).expect("token is a valid header value");
    headers.insert(AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build reqwest client")
}

pub fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Random lowercase letters and digits: safe inside a secret path segment.
pub fn random_segment(n: usize) -> String {
    random_alnum(n).to_lowercase()
}

/// Reads `src` line by line into `logs` (and onto the test's stderr, which nextest shows for failing
/// tests); the first `listening on http://…` line on stdout sends the URL to `notify`.
fn drain<R: Read + Send + 'static>(
    src: R,
    name: &'static str,
    logs: Arc<Mutex<Vec<String>>>,
    mut notify: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            eprintln!("[server {name}] {line}");
            if let Some(url) = listening_url(&line) {
                if let Some(tx) = notify.take() {
                    let _ = tx.send(url);
                }
            }
            if let Ok(mut l) = logs.lock() {
                l.push(line);
            }
        }
        // Dropping `notify` here (EOF before the line) tells the waiter the server went away.
    });
}

fn listening_url(line: &str) -> Option<String> {
    let at = line.find("listening on http://")?;
    let rest = &line[at + "listening on ".len()..];
    let url: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | '}'))
        .collect();
    Some(url.trim_end_matches('/').to_string())
}

// ---- PostgreSQL --------------------------------------------------------------------------------

static PG_START: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Connects to the maintenance database, starting the local cluster once if it is down.
pub async fn pg_admin_connection() -> PgConnection {
    if let Ok(conn) = PgConnection::connect(POSTGRES_ADMIN_URL).await {
        return conn;
    }
    PG_START
        .get_or_init(|| async { start_postgres_cluster() })
        .await;
    let deadline = Instant::now() + POSTGRES_DEADLINE;
    loop {
        match PgConnection::connect(POSTGRES_ADMIN_URL).await {
            Ok(conn) => return conn,
            Err(e) if Instant::now() >= deadline => panic!(
                "\n\n*** PostgreSQL at 127.0.0.1:5432 is unreachable ({e}) even after \
                 `pg_ctlcluster --skip-systemctl-redirect <version> main start`. \
                 The Postgres API tests cannot run; start PostgreSQL and retry. ***\n\n"
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn start_postgres_cluster() {
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for v in versions {
        let out = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &v, "main", "start"])
            .output();
        eprintln!("[harness] pg_ctlcluster {v} main start: {out:?}");
    }
}

async fn create_database(name: &str) {
    let mut conn = pg_admin_connection().await;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
}

/// A connection to the server's own database (PostgreSQL backend only).
pub async fn pg_connection(server: &TestServer) -> PgConnection {
    let url = server
        .database_url
        .as_deref()
        .expect("a PostgreSQL-backed server");
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

// ---- responses ---------------------------------------------------------------------------------

/// A response read to the end: status, `X-Request-ID`, the body as JSON (`Null` when it is not JSON)
/// and as text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub request_id: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            request_id,
            headers,
            body,
            text,
        }
    }

    /// Asserts the status (and, for errors, the envelope).
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "expected status {status}, got {self}");
        if status >= 400 {
            self.assert_envelope();
        }
        self
    }

    /// Asserts an error response with this status and `error.code`.
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "expected {status} {code}, got {self}");
        self.assert_envelope();
        assert_eq!(self.code(), code, "expected code {code}, got {self}");
        self
    }

    /// Asserts one of several acceptable (status, code) pairs, for places where the contract allows either.
    pub fn expect_error_in(&self, allowed: &[(u16, &str)]) -> &Self {
        self.assert_envelope();
        assert!(
            allowed
                .iter()
                .any(|(s, c)| *s == self.status && *c == self.code()),
            "expected one of {allowed:?}, got {self}"
        );
        self
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn details(&self) -> &Value {
        &self.body["error"]["details"]
    }

    /// `{"error": {"code", "message", "details"?, "request_id"}}` with `request_id` equal to the header.
    pub fn assert_envelope(&self) {
        if let Some(problem) = self.envelope_problem() {
            panic!("{problem} in {self}");
        }
    }

    /// What is wrong with the error envelope, if anything (for tests that collect failures).
    pub fn envelope_problem(&self) -> Option<String> {
        let err = &self.body["error"];
        if !err.is_object() {
            return Some("no error envelope".into());
        }
        let Some(code) = err["code"].as_str() else {
            return Some("error.code is not a string".into());
        };
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Some(format!("error.code {code:?} is not lower snake_case"));
        }
        if !err["message"].is_string() {
            return Some("error.message is not a string".into());
        }
        let Some(rid) = err["request_id"].as_str() else {
            return Some("error.request_id missing".into());
        };
        if !rid.starts_with("req_") {
            return Some(format!("request_id {rid:?} lacks the req_ prefix"));
        }
        if self.request_id.as_deref() != Some(rid) {
            return Some("X-Request-ID header differs from error.request_id".into());
        }
        if self.body.as_object().is_some_and(|o| o.len() != 1) {
            return Some("error body has keys besides `error`".into());
        }
        None
    }

    /// `details.fields[].field` of a 422 `validation_error`.
    pub fn fields(&self) -> Vec<String> {
        self.details()["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts a 422 `validation_error` naming a field that contains `field`.
    pub fn expect_validation(&self, field: &str) -> &Self {
        self.expect_error(422, "validation_error");
        let fields = self.fields();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "expected details.fields to name {field:?}, got {fields:?} in {self}"
        );
        for f in self.details()["fields"].as_array().into_iter().flatten() {
            assert!(
                f["message"].is_string(),
                "details.fields entry without message: {f} in {self}"
            );
        }
        self
    }
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut text = self.text.clone();
        if text.len() > 2000 {
            let mut cut = 2000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        write!(
            f,
            "{} {} (X-Request-ID {:?}) body: {}",
            self.status, reason, self.request_id, text
        )
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Parses an RFC 3339 timestamp, panicking with context.
pub fn parse_time(v: &Value, what: &str) -> time::OffsetDateTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected an RFC 3339 string, got {v}"));
    assert!(s.ends_with('Z'), "{what}: {s:?} is not UTC (no trailing Z)");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what}: {s:?} is not RFC 3339: {e}"))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
