//! The audit query API (`/v1/audit/logs`, `/secrets/{path}`, `/identities/{id}`, `/summary`, `/verify`),
//! its hash chain's tamper evidence (in the database, checked live; in a JSONL export, checked offline with
//! `scaivault audit verify --file`), the absence of secret values from every audit row, and the
//! `scaivault audit …` client commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;

use crate::harness::{anon_client, random_alnum, random_segment, spawn, Backend, Resp, TestServer};

both!(
    entries_and_every_filter,
    cursor_paging,
    bad_parameters_answer_400,
    secret_trail_cookbook,
    identity_trail_cookbook,
    summary_totals,
    scope_is_required,
    no_secret_value_in_any_audit_row,
    tamper_edit_detected_live,
    tamper_delete_detected_live,
    tamper_swap_detected_live,
    tampered_export_detected_offline,
    cli_commands,
);

const BIN: &str = env!("CARGO_BIN_EXE_scaivault");

/// Every key of a rendered log entry.
const ENTRY_KEYS: [&str; 17] = [
    "action",
    "duration_ms",
    "error_code",
    "extra_data",
    "hash",
    "id",
    "identity_id",
    "identity_type",
    "request_id",
    "secret_path",
    "seq",
    "source_ip",
    "status",
    "success",
    "tenant_id",
    "timestamp",
    "user_agent",
];

// ---- helpers ------------------------------------------------------------------------------------

/// GET `path` with query `pairs` (percent-encoded) as the admin.
async fn get_q(s: &TestServer, path: &str, pairs: &[(&str, &str)]) -> Resp {
    let url = reqwest::Url::parse_with_params(&s.url(path), pairs).unwrap();
    Resp::from(s.client().get(url).send().await.unwrap()).await
}

async fn get_as(s: &TestServer, token: &str, path: &str) -> Resp {
    let r = anon_client()
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    Resp::from(r).await
}

fn logs(body: &Value) -> &Vec<Value> {
    body["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no `logs` array in {body}"))
}

fn seq(e: &Value) -> i64 {
    e["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("entry without seq: {e}"))
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(seq).collect()
}

fn micros(e: &Value) -> i64 {
    let t = e["timestamp"].as_str().unwrap();
    scaivault_core::time_fmt::parse(t).unwrap_or_else(|| panic!("bad timestamp {t}"))
}

fn path_of(e: &Value) -> Option<&str> {
    e["secret_path"].as_str()
}

/// Follows the cursors of `path` with `pairs` (page size `limit`) and returns every entry, checking that
/// pages are newest first, without duplicates and that only the last page has no cursor.
async fn pages(s: &TestServer, path: &str, pairs: &[(&str, &str)], limit: usize) -> Vec<Value> {
    let limit_s = limit.to_string();
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut q: Vec<(&str, &str)> = pairs.to_vec();
        q.push(("limit", &limit_s));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = get_q(s, path, &q).await;
        r.expect(200);
        let page = logs(&r.body);
        assert!(page.len() <= limit, "page over limit {limit}: {r}");
        let more = r.body["has_more"].as_bool().unwrap();
        out.extend(page.iter().cloned());
        if !more {
            assert!(r.body["cursor"].is_null(), "last page with a cursor: {r}");
            break;
        }
        assert_eq!(page.len(), limit, "a page before the last is short: {r}");
        cursor = Some(r.body["cursor"].as_str().unwrap().to_owned());
    }
    let s = seqs(&out);
    assert!(
        s.windows(2).all(|w| w[0] > w[1]),
        "not newest first or duplicated: {s:?}"
    );
    out
}

/// Every entry of the tenant's log, newest first (one request while there are at most 1000).
async fn all_logs(s: &TestServer) -> Vec<Value> {
    pages(s, "/v1/audit/logs", &[], 1000).await
}

struct Who {
    identity_id: String,
    identity_type: String,
    tenant_id: String,
}

async fn whoami(s: &TestServer) -> Who {
    let r = s.get("/v1/auth/whoami").await;
    r.expect(200);
    Who {
        identity_id: r.body["identity_id"].as_str().unwrap().to_owned(),
        identity_type: r.body["identity_type"].as_str().unwrap().to_owned(),
        tenant_id: r.body["tenant_id"].as_str().unwrap().to_owned(),
    }
}

/// Runs `query` on /v1/audit/logs and checks it against `pred` over the snapshot: every returned entry
/// satisfies `pred`, and among the entries of the snapshot (seq ≤ its newest) exactly those that satisfy
/// it come back. Later entries (the test's own queries) are only checked against `pred`.
async fn check_filter(
    s: &TestServer,
    pairs: &[(&str, &str)],
    snapshot: &[Value],
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let got = pages(s, "/v1/audit/logs", pairs, 1000).await;
    for e in &got {
        assert!(pred(e), "{pairs:?} returned a non-matching entry {e}");
    }
    let top = seq(&snapshot[0]);
    let got_old: Vec<i64> = got.iter().map(seq).filter(|q| *q <= top).collect();
    let want: Vec<i64> = snapshot.iter().filter(|e| pred(e)).map(seq).collect();
    assert_eq!(got_old, want, "{pairs:?}: wrong set of entries");
    got
}

/// Some activity: writes, reads, a failed read, a metadata read, a delete, whoami. Returns the request id
/// of the first write.
async fn activity(s: &TestServer) -> String {
    let r = s
        .put("/v1/secrets/app/audit/a", &json!({"data": {"k": "1"}}))
        .await;
    r.expect(201);
    let first_write = r.request_id.clone().unwrap();
    s.write_kv("app/audit/b", json!({"k": "2"})).await;
    s.write_kv("other/x", json!({"k": "3"})).await;
    s.read("app/audit/a").await;
    s.read("app/audit/a").await;
    s.read("other/x").await;
    s.get("/v1/secrets/app/audit/missing")
        .await
        .expect_error(404, "secret_not_found");
    s.get("/v1/secrets/app/audit/b/metadata").await.expect(200);
    s.delete("/v1/secrets/other/x").await.expect(200);
    s.get("/v1/auth/whoami").await.expect(200);
    first_write
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn micros_format(t: &str) -> bool {
    // 2026-04-23T18:00:00.123456Z
    let b = t.as_bytes();
    b.len() == 27 && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z'
}

fn rfc3339(m: i64) -> String {
    scaivault_core::time_fmt::rfc3339(m)
}

// ---- the client binary --------------------------------------------------------------------------

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    args: Vec<String>,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`scaivault {}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Out {
    fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "expected exit {expected}: {self}");
        self
    }

    fn ok(&self) -> &Self {
        self.code(0)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// Asserts `error: <code>: …` on stderr and the exit code.
    fn error(&self, exit: i32, code: &str) -> &Self {
        self.code(exit);
        let prefix = format!("error: {code}: ");
        assert!(
            self.stderr.lines().any(|l| l.starts_with(&prefix)),
            "expected a stderr line starting with {prefix:?}: {self}"
        );
        self
    }
}

/// The value of a `key:  value` line of the client's output.
fn kv(out: &Out, key: &str) -> String {
    let prefix = format!("{key}:");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no `{key}:` line: {out}"))
}

/// Runs the client with its own empty config and `env` (e.g. the server URL and token).
async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir.path());
    for k in [
        "SCAIVAULT_URL",
        "SCAIVAULT_TOKEN",
        "SCAIVAULT_TENANT_ID",
        "SCAIVAULT_PARTNER_ID",
        "SCAIVAULT_DEBUG",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", dir.path())
        .env("SCAIVAULT_CONFIG", dir.path().join("config.json"))
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("run scaivault"))
        .await
        .unwrap();
    drop(dir);
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        args,
    }
}

/// The client logged in to `s` as the admin.
async fn cli(s: &TestServer, args: &[&str]) -> Out {
    cli_token(s, &s.admin_token, args).await
}

async fn cli_token(s: &TestServer, token: &str, args: &[&str]) -> Out {
    run_cli(
        args,
        &[("SCAIVAULT_URL", &s.base_url), ("SCAIVAULT_TOKEN", token)],
    )
    .await
}

/// The client with no server: a URL nothing listens on and no token.
async fn cli_offline(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut all = vec![("SCAIVAULT_URL", "http://127.0.0.1:9")];
    all.extend_from_slice(env);
    run_cli(args, &all).await
}

// ---- direct database access ---------------------------------------------------------------------

fn sqlite_file(s: &TestServer) -> PathBuf {
    s.data_dir.join("scaivault.db")
}

pub(crate) enum Db {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

pub(crate) enum Arg {
    I(i64),
    S(String),
    B(Vec<u8>),
}

impl Db {
    pub(crate) async fn open(s: &TestServer) -> Db {
        match s.backend {
            Backend::Sqlite => {
                use sqlx::sqlite::SqliteConnectOptions;
                use sqlx::ConnectOptions;
                use std::str::FromStr;
                let f = sqlite_file(s);
                assert!(f.exists(), "no SQLite database at {}", f.display());
                let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", f.display()))
                    .unwrap()
                    .busy_timeout(Duration::from_secs(10));
                Db::Sqlite(opts.connect().await.unwrap())
            }
            Backend::Postgres => Db::Pg(crate::harness::pg_connection(s).await),
        }
    }

    pub(crate) async fn exec(&mut self, sql: &str, args: &[Arg]) -> u64 {
        macro_rules! run {
            ($conn:expr) => {{
                let mut q = sqlx::query(sql);
                for a in args {
                    q = match a {
                        Arg::I(v) => q.bind(*v),
                        Arg::S(v) => q.bind(v.clone()),
                        Arg::B(v) => q.bind(v.clone()),
                    };
                }
                q.execute(&mut *$conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .rows_affected()
            }};
        }
        match self {
            Db::Sqlite(c) => run!(c),
            Db::Pg(c) => run!(c),
        }
    }

    /// Every value of every column of `audit_log`, as text (BLOB/BYTEA as hex).
    async fn audit_log_text(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Db::Sqlite(c) => {
                let cols: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info('audit_log')")
                        .fetch_all(&mut *c)
                        .await
                        .unwrap();
                assert!(cols.len() >= 17, "audit_log columns: {cols:?}");
                for col in cols {
                    let sql = format!(
                        "SELECT CASE WHEN typeof(\"{col}\") = 'blob' THEN hex(\"{col}\") \
                         ELSE CAST(\"{col}\" AS TEXT) END FROM audit_log"
                    );
                    let vals: Vec<Option<String>> =
                        sqlx::query_scalar(&sql).fetch_all(&mut *c).await.unwrap();
                    out.extend(vals.into_iter().flatten());
                }
            }
            Db::Pg(c) => {
                let cols: Vec<String> = sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'audit_log'",
                )
                .fetch_all(&mut *c)
                .await
                .unwrap();
                assert!(cols.len() >= 17, "audit_log columns: {cols:?}");
                for col in cols {
                    let sql = format!("SELECT CAST(\"{col}\" AS TEXT) FROM audit_log");
                    let vals: Vec<Option<String>> =
                        sqlx::query_scalar(&sql).fetch_all(&mut *c).await.unwrap();
                    out.extend(vals.into_iter().flatten());
                }
            }
        }
        out
    }

    pub(crate) async fn close(self) {
        match self {
            Db::Sqlite(c) => c.close().await.unwrap(),
            Db::Pg(c) => c.close().await.unwrap(),
        }
    }
}

/// Columns of an audit row other than its place (`tenant_id`, `seq`).
const CONTENT_COLS: &str =
    "id, ts, action, identity_type, identity_id, secret_path, source_ip, user_agent, \
    success, status, error_code, duration_ms, request_id, extra_data, hash";

enum Tamper {
    /// Change `identity_id` of one entry.
    Edit(i64),
    /// Remove one entry.
    Delete(i64),
    /// Exchange the contents (every column but `tenant_id` and `seq`) of two entries.
    Swap(i64, i64),
}

async fn tamper(db: &mut Db, tenant: &str, how: &Tamper) {
    let t = || Arg::S(tenant.to_owned());
    match how {
        Tamper::Edit(q) => {
            let n = db
                .exec(
                    "UPDATE audit_log SET identity_id = 'user:mallory@evil.example' WHERE tenant_id = $1 AND seq = $2",
                    &[t(), Arg::I(*q)],
                )
                .await;
            assert_eq!(n, 1);
        }
        Tamper::Delete(q) => {
            let n = db
                .exec(
                    "DELETE FROM audit_log WHERE tenant_id = $1 AND seq = $2",
                    &[t(), Arg::I(*q)],
                )
                .await;
            assert_eq!(n, 1);
        }
        Tamper::Swap(a, b) => {
            // CREATE TABLE AS takes no bind parameters on PostgreSQL: inline the (checked) values.
            assert!(tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'));
            db.exec(
                &format!(
                    "CREATE TEMP TABLE swap_src AS SELECT seq, {CONTENT_COLS} FROM audit_log \
                     WHERE tenant_id = '{tenant}' AND seq IN ({a}, {b})"
                ),
                &[],
            )
            .await;
            // `id` is UNIQUE: move both out of the way first.
            db.exec(
                "UPDATE audit_log SET id = id || '~' WHERE tenant_id = $1 AND seq IN ($2, $3)",
                &[t(), Arg::I(*a), Arg::I(*b)],
            )
            .await;
            for (dst, src) in [(*a, *b), (*b, *a)] {
                let n = db
                    .exec(
                        &format!(
                            "UPDATE audit_log SET ({CONTENT_COLS}) = (SELECT {CONTENT_COLS} FROM swap_src WHERE seq = $3) \
                             WHERE tenant_id = $1 AND seq = $2"
                        ),
                        &[t(), Arg::I(dst), Arg::I(src)],
                    )
                    .await;
                assert_eq!(n, 1);
            }
            db.exec("DROP TABLE swap_src", &[]).await;
        }
    }
}

// ---- entries and filters ------------------------------------------------------------------------

async fn entries_and_every_filter(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    let first_write = activity(&s).await;
    let snapshot = all_logs(&s).await;
    let n = snapshot.len() as i64;
    assert!(
        n >= 11,
        "expected the activity in the log, got {snapshot:?}"
    );

    // Shape: documented fields (+ seq, hash), newest first, contiguous from 1.
    assert_eq!(seqs(&snapshot), (1..=n).rev().collect::<Vec<_>>());
    for e in &snapshot {
        let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ENTRY_KEYS.into_iter().collect(), "{e}");
        assert!(e["id"].as_str().unwrap().starts_with("log_"), "{e}");
        assert!(e["request_id"].as_str().unwrap().starts_with("req_"), "{e}");
        let t = e["timestamp"].as_str().unwrap();
        crate::harness::parse_time(&e["timestamp"], "timestamp");
        assert!(micros_format(t), "timestamp {t} lacks microseconds");
        assert!(is_hex64(e["hash"].as_str().unwrap()), "{e}");
        assert!(e["extra_data"].is_object(), "{e}");
        assert!(e["success"].is_boolean() && e["status"].is_i64(), "{e}");
        assert!(e["duration_ms"].as_i64().unwrap() >= 0, "{e}");
        assert_eq!(e["identity_id"], who.identity_id.as_str(), "{e}");
        assert_eq!(e["identity_type"], who.identity_type.as_str(), "{e}");
        assert_eq!(e["source_ip"], "127.0.0.1", "{e}");
        assert_eq!(e["success"], e["status"].as_i64().unwrap() < 400, "{e}");
    }
    let hashes: BTreeSet<&str> = snapshot
        .iter()
        .map(|e| e["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), snapshot.len(), "hashes repeat");
    let find = |action: &str, path: &str| -> Vec<&Value> {
        snapshot
            .iter()
            .filter(|e| e["action"] == action && path_of(e) == Some(path))
            .collect()
    };
    assert_eq!(find("write", "app/audit/a").len(), 1);
    assert_eq!(find("read", "app/audit/a").len(), 2);
    for r in find("read", "app/audit/a") {
        assert_eq!(r["extra_data"], json!({"version": 1}), "{r}");
        assert_eq!(r["status"], 200);
    }
    let missing = find("read", "app/audit/missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["success"], false);
    assert_eq!(missing[0]["status"], 404);
    assert_eq!(missing[0]["error_code"], "secret_not_found");
    assert_eq!(find("read_metadata", "app/audit/b").len(), 1);
    assert_eq!(find("delete", "other/x").len(), 1);
    assert_eq!(
        find("write", "app/audit/a")[0]["request_id"],
        first_write.as_str()
    );

    // action: one, a comma list (spaces allowed), an unknown one.
    let action_is = |set: &'static [&'static str]| {
        move |e: &Value| set.contains(&e["action"].as_str().unwrap())
    };
    let reads = check_filter(&s, &[("action", "read")], &snapshot, action_is(&["read"])).await;
    assert_eq!(reads.len(), 4);
    check_filter(
        &s,
        &[("action", "read,write")],
        &snapshot,
        action_is(&["read", "write"]),
    )
    .await;
    check_filter(
        &s,
        &[("action", " read , delete ")],
        &snapshot,
        action_is(&["read", "delete"]),
    )
    .await;
    check_filter(&s, &[("action", "rotate")], &snapshot, |_| false).await;
    let queries = check_filter(
        &s,
        &[("action", "audit_query")],
        &snapshot,
        action_is(&["audit_query"]),
    )
    .await;
    assert!(!queries.is_empty(), "the audit queries are audited too");

    // identity_id / identity_type.
    let me = who.identity_id.clone();
    check_filter(&s, &[("identity_id", &me)], &snapshot, |e| {
        e["identity_id"] == me.as_str()
    })
    .await;
    check_filter(
        &s,
        &[("identity_id", "user:nobody@example.com")],
        &snapshot,
        |_| false,
    )
    .await;
    let ty = who.identity_type.clone();
    check_filter(&s, &[("identity_type", &ty)], &snapshot, |e| {
        e["identity_type"] == ty.as_str()
    })
    .await;
    check_filter(
        &s,
        &[("identity_type", "service_account")],
        &snapshot,
        |_| false,
    )
    .await;
    check_filter(&s, &[("identity_type", "group")], &snapshot, |_| false).await;

    // path_prefix: a plain string prefix of secret_path.
    for prefix in ["app/audit/", "app/audit/a", "other/", "app/", "zzz/"] {
        let got = check_filter(&s, &[("path_prefix", prefix)], &snapshot, |e| {
            path_of(e).is_some_and(|p| p.starts_with(prefix))
        })
        .await;
        if prefix == "app/audit/" {
            assert_eq!(got.len(), 6, "{got:?}");
        }
    }

    // success.
    check_filter(&s, &[("success", "false")], &snapshot, |e| {
        e["success"] == false
    })
    .await;
    check_filter(&s, &[("success", "true")], &snapshot, |e| {
        e["success"] == true
    })
    .await;
    check_filter(&s, &[("success", "0")], &snapshot, |e| {
        e["success"] == false
    })
    .await;

    // source_ip.
    check_filter(&s, &[("source_ip", "127.0.0.1")], &snapshot, |e| {
        e["source_ip"] == "127.0.0.1"
    })
    .await;
    check_filter(&s, &[("source_ip", "10.9.9.9")], &snapshot, |_| false).await;

    // request_id: exactly the entry of that request.
    let got = check_filter(&s, &[("request_id", &first_write)], &snapshot, |e| {
        e["request_id"] == first_write.as_str()
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["action"], "write");
    check_filter(
        &s,
        &[("request_id", "req_doesnotexist0000000")],
        &snapshot,
        |_| false,
    )
    .await;

    // from / to (inclusive), on the entries' own timestamps.
    let mut times: Vec<i64> = snapshot.iter().map(micros).collect();
    times.sort_unstable();
    let (t1, t2) = (times[times.len() / 3], times[2 * times.len() / 3]);
    let (f1, f2) = (rfc3339(t1), rfc3339(t2));
    check_filter(&s, &[("from", &f1)], &snapshot, |e| micros(e) >= t1).await;
    check_filter(&s, &[("to", &f1)], &snapshot, |e| micros(e) <= t1).await;
    let window = check_filter(&s, &[("from", &f1), ("to", &f2)], &snapshot, |e| {
        (t1..=t2).contains(&micros(e))
    })
    .await;
    assert!(window.len() >= 2, "{window:?}");
    // Other RFC 3339 spellings and bare dates.
    let offset = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t1) * 1000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    check_filter(&s, &[("from", &offset)], &snapshot, |e| micros(e) >= t1).await;
    check_filter(&s, &[("from", "2000-01-01")], &snapshot, |_| true).await;
    check_filter(&s, &[("to", "2000-01-01")], &snapshot, |_| false).await;

    // Filters combine with AND.
    check_filter(
        &s,
        &[
            ("action", "read"),
            ("path_prefix", "app/audit/"),
            ("success", "true"),
        ],
        &snapshot,
        |e| {
            e["action"] == "read"
                && path_of(e).is_some_and(|p| p.starts_with("app/audit/"))
                && e["success"] == true
        },
    )
    .await;
}

async fn cursor_paging(backend: Backend) {
    let s = spawn(backend).await;
    for i in 0..12 {
        s.write_kv(&format!("page/s{i:02}"), json!({"k": "v"}))
            .await;
        s.read(&format!("page/s{i:02}")).await;
    }
    // limit=1 … 1000: the pages together are the whole log, contiguous, no duplicates, no gaps.
    for limit in [1usize, 7, 24, 1000] {
        let all = pages(&s, "/v1/audit/logs", &[], limit).await;
        let got = seqs(&all);
        let top = got[0];
        assert!(top >= 24, "{got:?}");
        assert_eq!(got, (1..=top).rev().collect::<Vec<_>>(), "limit {limit}");
    }
    // limit 3: three entries, has_more, an opaque cursor.
    let r = get_q(&s, "/v1/audit/logs", &[("limit", "3")]).await;
    r.expect(200);
    assert_eq!(logs(&r.body).len(), 3);
    assert_eq!(r.body["has_more"], true);
    assert!(r.body["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    // Default page size is 100.
    let r = s.get("/v1/audit/logs").await;
    r.expect(200);
    let n = logs(&r.body).len();
    assert!(n <= 100, "{n}");
    // Paging with a filter: the 12 successful reads, 5 at a time.
    let reads = pages(&s, "/v1/audit/logs", &[("action", "read")], 5).await;
    assert_eq!(reads.len(), 12);
    let paths: BTreeSet<&str> = reads.iter().filter_map(path_of).collect();
    assert_eq!(paths.len(), 12);
    // Entries appended while paging do not shift the pages.
    let r1 = get_q(&s, "/v1/audit/logs", &[("limit", "4")]).await;
    let c = r1.body["cursor"].as_str().unwrap().to_owned();
    s.write_kv("page/late", json!({"k": "v"})).await;
    let r2 = get_q(&s, "/v1/audit/logs", &[("limit", "4"), ("cursor", &c)]).await;
    r2.expect(200);
    assert_eq!(
        seq(&logs(&r2.body)[0]),
        seq(logs(&r1.body).last().unwrap()) - 1
    );
}

async fn bad_parameters_answer_400(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("app/x", json!({"k": "v"})).await;
    let bad: &[(&str, &str, &str)] = &[
        ("limit", "0", "invalid_request"),
        ("limit", "1001", "invalid_request"),
        ("limit", "-1", "invalid_request"),
        ("limit", "ten", "invalid_request"),
        ("limit", "", "invalid_request"),
        ("cursor", "not a cursor", "invalid_cursor"),
        ("cursor", "YWJj", "invalid_cursor"),
        ("cursor", "YTE6eA", "invalid_cursor"), // "a1:x"
        ("from", "yesterday", "invalid_request"),
        ("from", "2026-13-45", "invalid_request"),
        ("to", "12345", "invalid_request"),
        ("success", "maybe", "invalid_request"),
        ("identity_type", "robot", "invalid_request"),
        ("action", "READ", "invalid_request"),
        ("action", "read;drop", "invalid_request"),
        ("path_prefix", "/app", "invalid_path"),
        ("path_prefix", "App/", "invalid_path"),
        ("source_ip", "1.2.3.4\u{1}", "invalid_request"),
    ];
    for (k, v, code) in bad {
        for path in [
            "/v1/audit/logs",
            "/v1/audit/secrets/app/x",
            "/v1/audit/identities/user:x@y",
        ] {
            get_q(&s, path, &[(k, v)]).await.expect_error(400, code);
        }
    }
    for (k, v) in [("from", "soon"), ("to", "2026-02-30")] {
        get_q(&s, "/v1/audit/summary", &[(k, v)])
            .await
            .expect_error(400, "invalid_request");
    }
    for (k, v) in [
        ("limit", "1"),
        ("limit", "1000"),
        ("from", "2026-01-01"),
        ("to", "2026-01-01T00:00:00Z"),
        ("success", "1"),
    ] {
        get_q(&s, "/v1/audit/logs", &[(k, v)]).await.expect(200);
    }
    s.get("/v1/audit/secrets/App/X")
        .await
        .expect_error(400, "invalid_path");
    s.get("/v1/audit/identities/user:%01x")
        .await
        .expect_error(400, "invalid_request");
    let long = format!("user:{}", "a".repeat(330));
    s.get(&format!("/v1/audit/identities/{long}"))
        .await
        .expect_error(400, "invalid_request");
    // Refused queries are audited as failed audit_query entries.
    let failed = pages(
        &s,
        "/v1/audit/logs",
        &[("action", "audit_query"), ("success", "false")],
        1000,
    )
    .await;
    assert!(failed.len() >= bad.len() * 3, "{}", failed.len());
    assert!(failed.iter().all(|e| e["status"] == 400), "{failed:?}");
}

/// Rejected requests are recorded with the path as given, and `path_prefix` must find them too (an
/// auditor looks for probes under a prefix), whatever characters follow the prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_prefix_finds_rejected_paths() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let s = spawn(backend).await;
        for p in ["app/probe/Upper", "app/probe/~x", "app/probe/%C3%A9vil"] {
            s.get(&format!("/v1/secrets/{p}"))
                .await
                .expect_error(400, "invalid_path");
        }
        let got = pages(&s, "/v1/audit/logs", &[("path_prefix", "app/probe/")], 1000).await;
        let paths: BTreeSet<&str> = got.iter().filter_map(path_of).collect();
        assert_eq!(
            paths,
            BTreeSet::from(["app/probe/Upper", "app/probe/~x", "app/probe/\u{e9}vil"]),
            "{backend:?}"
        );
    }
}

/// Two nodes on one PostgreSQL database take turns appending to one tenant's chain: each commits its
/// reads' entries in one statement chained from the head it last committed, which the other node has
/// moved since. Every read is answered, every entry is in the log once, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_chain() {
    let a = spawn(Backend::Postgres).await;
    let b = crate::harness::spawn_peer(&a, Vec::new()).await;
    let path = "shared/chain";
    a.write_kv(path, json!({"k": "v"})).await;
    let mut reads = 0;
    for round in 0..6 {
        let mut set = tokio::task::JoinSet::new();
        for node in [&a, &b] {
            for _ in 0..(8 + round * 4) {
                let (client, url) = (node.client(), node.url(&format!("/v1/secrets/{path}")));
                set.spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) });
                reads += 1;
            }
        }
        while let Some(done) = set.join_next().await {
            assert_eq!(
                done.unwrap().unwrap(),
                200,
                "a read on either node is answered"
            );
        }
    }
    let logged = pages(
        &a,
        "/v1/audit/logs",
        &[("action", "read"), ("path_prefix", path)],
        1000,
    )
    .await;
    assert_eq!(logged.len(), reads, "every read logged once");
    for node in [&a, &b] {
        let r = node.get("/v1/audit/verify").await;
        r.expect(200);
        assert_eq!(r.body["valid"], true, "{r}");
        assert_eq!(r.body["entries_checked"], r.body["head_seq"], "{r}");
    }
}

/// The same for writes: two nodes write distinct secrets at once, each committing its batches chained
/// from the head it last committed, which the other node keeps moving. Every write is answered and
/// lands once, each with its entry in the log, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_write_on_one_chain() {
    let a = spawn(Backend::Postgres).await;
    let b = crate::harness::spawn_peer(&a, Vec::new()).await;
    let paths: Vec<String> = (0..8).map(|i| format!("shared/w{i}")).collect();
    for p in &paths {
        a.write_kv(&format!("{p}a"), json!({"v": "0"})).await;
        b.write_kv(&format!("{p}b"), json!({"v": "0"})).await;
    }
    let rounds = 5;
    for round in 1..=rounds {
        let mut set = tokio::task::JoinSet::new();
        for (node, suffix) in [(&a, "a"), (&b, "b")] {
            for p in &paths {
                let (client, url) = (node.client(), node.url(&format!("/v1/secrets/{p}{suffix}")));
                let body = json!({"data": {"v": round.to_string()}});
                set.spawn(async move {
                    client
                        .put(url)
                        .json(&body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                });
            }
        }
        while let Some(done) = set.join_next().await {
            assert_eq!(
                done.unwrap().unwrap(),
                200,
                "a write on either node is answered"
            );
        }
    }
    for p in &paths {
        for name in [format!("{p}a"), format!("{p}b")] {
            let got = b.read(&name).await;
            assert_eq!(got["version"], rounds + 1, "{name}: {got}");
            assert_eq!(got["data"]["v"], rounds.to_string(), "{name}: {got}");
        }
    }
    let logged = pages(
        &a,
        "/v1/audit/logs",
        &[("action", "write"), ("path_prefix", "shared/w")],
        1000,
    )
    .await;
    assert_eq!(
        logged.len(),
        paths.len() * 2 * (rounds + 1),
        "every write logged once"
    );
    for node in [&a, &b] {
        let r = node.get("/v1/audit/verify").await;
        r.expect(200);
        assert_eq!(r.body["valid"], true, "{r}");
        assert_eq!(r.body["entries_checked"], r.body["head_seq"], "{r}");
    }
}

/// `summary.unique_secrets`, `unique_identities` and an identity's `resources_accessed` count every
/// path: `resources_accessed` is the cookbook's "rotate everything in it" list, so it must not be cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_1000_resources_are_all_counted() {
    let s = spawn(Backend::Sqlite).await;
    let who = whoami(&s).await;
    for i in 0..1005 {
        s.write_kv(&format!("bulk/s{i:04}"), json!({"k": "v"}))
            .await;
    }
    let r = s.get("/v1/audit/summary").await;
    r.expect(200);
    assert_eq!(r.body["unique_secrets"], 1005, "{r}");
    let r = get_q(
        &s,
        &format!("/v1/audit/identities/{}", who.identity_id),
        &[("limit", "1")],
    )
    .await;
    r.expect(200);
    let n = r.body["summary"]["resources_accessed"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 1005);
    assert_eq!(r.body["summary"]["unique_secrets"], 1005);
}

// ---- per-secret trail ---------------------------------------------------------------------------

const STRIPE: &str = "environments/production/billing/stripe";

async fn secret_trail_cookbook(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    s.write_kv(STRIPE, json!({"api_key": "sk_live_1"})).await;
    s.write_kv(STRIPE, json!({"api_key": "sk_live_2"})).await;
    s.read(STRIPE).await;
    s.read(STRIPE).await;
    s.get(&format!("/v1/secrets/{STRIPE}?version=1"))
        .await
        .expect(200);
    s.get(&format!("/v1/secrets/{STRIPE}?version=99"))
        .await
        .expect_error(404, "version_not_found");
    s.get(&format!("/v1/secrets/{STRIPE}/metadata"))
        .await
        .expect(200);
    s.get(&format!("/v1/secrets/{STRIPE}/versions"))
        .await
        .expect(200);
    s.write_kv("environments/production/billing/other", json!({"k": "v"}))
        .await;
    s.read("environments/production/billing/other").await;

    // The recipe: ?from=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ) | jq '.logs[] | timestamp identity_id source_ip'
    let day_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap();
    let url = format!("/v1/audit/secrets/{STRIPE}?from={day_ago}");
    let r = s.get(&url).await;
    r.expect(200);
    let b = &r.body;
    assert_eq!(b["path"], STRIPE);
    assert_eq!(b["has_more"], false);
    assert!(b["cursor"].is_null());
    let trail = logs(b);
    assert_eq!(trail.len(), 8, "{r}");
    let lines: Vec<String> = trail
        .iter()
        .map(|e| {
            for k in ["timestamp", "identity_id", "source_ip"] {
                assert!(e[k].is_string(), "{k} missing in {e}");
            }
            format!(
                "{} {} {}",
                e["timestamp"].as_str().unwrap(),
                e["identity_id"].as_str().unwrap(),
                e["source_ip"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with(&format!(" {} 127.0.0.1", who.identity_id))),
        "{lines:?}"
    );
    assert!(trail.iter().all(|e| e["secret_path"] == STRIPE), "{r}");
    assert!(seqs(trail).windows(2).all(|w| w[0] > w[1]));
    let mut actions: BTreeMap<&str, i64> = BTreeMap::new();
    for e in trail {
        *actions.entry(e["action"].as_str().unwrap()).or_default() += 1;
    }
    let expected_actions = json!({"read": 4, "write": 2, "read_metadata": 1, "read_versions": 1});
    assert_eq!(json!(actions), expected_actions);

    // The 30-day summary.
    let sum = &b["summary"];
    assert_eq!(sum["period_days"], 30);
    assert_eq!(sum["reads"], 4, "{sum}");
    assert_eq!(sum["writes"], 2, "{sum}");
    assert_eq!(sum["total_events"], 8);
    assert_eq!(sum["successful_events"], 7);
    assert_eq!(sum["failed_events"], 1);
    assert_eq!(sum["unique_identities"], 1);
    assert_eq!(sum["unique_secrets"], 1);
    assert_eq!(sum["events_by_action"], expected_actions);
    assert_eq!(
        sum["identities"],
        json!([{"identity_id": who.identity_id, "events": 8}])
    );
    assert_eq!(sum["source_ips"], json!(["127.0.0.1"]));
    let newest = trail[0]["timestamp"].clone();
    let oldest = trail.last().unwrap()["timestamp"].clone();
    assert_eq!(sum["last_event_at"], newest);
    assert_eq!(sum["first_event_at"], oldest);
    assert_eq!(sum["last_accessed_at"], newest);

    // Filters narrow the trail, not the 30-day summary; paging works on the trail.
    let r = get_q(
        &s,
        &format!("/v1/audit/secrets/{STRIPE}"),
        &[("action", "write")],
    )
    .await;
    r.expect(200);
    assert_eq!(logs(&r.body).len(), 2);
    assert!(logs(&r.body).iter().all(|e| e["action"] == "write"));
    assert_eq!(r.body["summary"]["reads"], 4);
    let r = get_q(
        &s,
        &format!("/v1/audit/secrets/{STRIPE}"),
        &[("success", "false")],
    )
    .await;
    assert_eq!(logs(&r.body).len(), 1);
    assert_eq!(logs(&r.body)[0]["error_code"], "version_not_found");
    let paged = pages(&s, &format!("/v1/audit/secrets/{STRIPE}"), &[], 3).await;
    assert!(paged.iter().all(|e| e["secret_path"] == STRIPE));
    assert!(paged.len() >= 8);
    // A trail that starts after everything is empty, with the summary still covering 30 days.
    let r = get_q(
        &s,
        &format!("/v1/audit/secrets/{STRIPE}"),
        &[("from", "2999-01-01")],
    )
    .await;
    r.expect(200);
    assert!(logs(&r.body).is_empty());
    assert_eq!(r.body["summary"]["writes"], 2);

    // A path never touched: an empty trail and a zero summary.
    let r = s.get("/v1/audit/secrets/never/touched").await;
    r.expect(200);
    assert!(logs(&r.body).is_empty());
    let z = &r.body["summary"];
    assert_eq!(
        (
            z["total_events"].as_i64(),
            z["reads"].as_i64(),
            z["writes"].as_i64()
        ),
        (Some(0), Some(0), Some(0)),
        "{z}"
    );
    assert!(
        z["last_accessed_at"].is_null() && z["first_event_at"].is_null(),
        "{z}"
    );
    assert_eq!(z["identities"], json!([]));
}

// ---- per-identity trail -------------------------------------------------------------------------

async fn identity_trail_cookbook(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    activity(&s).await;
    s.write_kv("team/payments/db", json!({"pw": "x"})).await;
    let snapshot = all_logs(&s).await;

    // The recipe: /v1/audit/identities/user:…?from=2026-01-01 → rotate summary.resources_accessed.
    let r = s
        .get(&format!(
            "/v1/audit/identities/{}?from=2026-01-01",
            who.identity_id
        ))
        .await;
    r.expect(200);
    let b = &r.body;
    assert_eq!(b["identity_id"], who.identity_id.as_str());
    let trail = logs(b);
    assert!(trail
        .iter()
        .all(|e| e["identity_id"] == who.identity_id.as_str()));
    // The trail is the snapshot plus the snapshot query's own entry.
    assert_eq!(trail.len(), snapshot.len() + 1);
    assert_eq!(seqs(&trail[1..]), seqs(&snapshot));
    let sum = &b["summary"];
    let resources: BTreeSet<&str> = sum["resources_accessed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let mut per_path: BTreeMap<&str, i64> = BTreeMap::new();
    for e in &snapshot {
        if let Some(p) = path_of(e).filter(|p| !p.is_empty()) {
            *per_path.entry(p).or_default() += 1;
        }
    }
    assert_eq!(resources, per_path.keys().copied().collect(), "{sum}");
    for p in [
        "app/audit/a",
        "app/audit/b",
        "app/audit/missing",
        "other/x",
        "team/payments/db",
    ] {
        assert!(resources.contains(p), "{p} not in {sum}");
    }
    let listed: BTreeMap<&str, i64> = sum["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["path"].as_str().unwrap(), x["events"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, per_path);
    assert_eq!(sum["total_events"], snapshot.len() as i64 + 1);
    assert_eq!(
        sum["failed_events"],
        snapshot.iter().filter(|e| e["success"] == false).count() as i64
    );
    assert_eq!(sum["unique_identities"], 1);
    assert_eq!(sum["source_ips"], json!(["127.0.0.1"]));

    // Someone who did nothing (the ex-employee with no activity in this tenant).
    let r = s
        .get("/v1/audit/identities/user:alice@acme.example?from=2026-01-01")
        .await;
    r.expect(200);
    assert!(logs(&r.body).is_empty());
    assert_eq!(r.body["summary"]["total_events"], 0);
    assert_eq!(r.body["summary"]["resources_accessed"], json!([]));
    // The query is recorded with the identity looked up.
    let q = get_q(
        &s,
        "/v1/audit/logs",
        &[("request_id", r.request_id.as_deref().unwrap())],
    )
    .await;
    let e = &logs(&q.body)[0];
    assert_eq!(e["action"], "audit_query");
    assert_eq!(
        e["extra_data"],
        json!({"identity_id": "user:alice@acme.example"})
    );

    // Filters apply to trail and summary.
    let r = get_q(
        &s,
        &format!("/v1/audit/identities/{}", who.identity_id),
        &[("action", "write")],
    )
    .await;
    r.expect(200);
    assert!(logs(&r.body).iter().all(|e| e["action"] == "write"));
    assert_eq!(logs(&r.body).len(), 4);
    assert_eq!(r.body["summary"]["total_events"], 4);
    let r = get_q(
        &s,
        &format!("/v1/audit/identities/{}", who.identity_id),
        &[("from", "2999-01-01")],
    )
    .await;
    assert!(logs(&r.body).is_empty());
    assert_eq!(r.body["summary"]["total_events"], 0);
}

// ---- summary ------------------------------------------------------------------------------------

async fn summary_totals(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    activity(&s).await;
    for i in 0..12 {
        s.write_kv(&format!("sum/s{i:02}"), json!({"k": "v"})).await;
    }
    for _ in 0..3 {
        s.read("sum/s03").await;
    }
    let snapshot = all_logs(&s).await;
    let r = s.get("/v1/audit/summary").await;
    r.expect(200);
    let b = &r.body;
    // Everything up to and including the snapshot query.
    let total = snapshot.len() as i64 + 1;
    assert_eq!(b["total_events"], total, "{b}");
    let failed = snapshot.iter().filter(|e| e["success"] == false).count() as i64;
    assert_eq!(b["failed_events"], failed);
    assert_eq!(b["successful_events"], total - failed);
    let mut by_action: BTreeMap<String, i64> = BTreeMap::new();
    for e in &snapshot {
        *by_action
            .entry(e["action"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    *by_action.entry("audit_query".into()).or_default() += 1;
    assert_eq!(b["events_by_action"], json!(by_action));
    assert_eq!(b["unique_identities"], 1);
    let paths: BTreeSet<&str> = snapshot.iter().filter_map(path_of).collect();
    assert_eq!(b["unique_secrets"], paths.len() as i64);
    assert_eq!(
        b["top_identities"],
        json!([{"identity_id": who.identity_id, "events": total}])
    );
    let top = b["top_secrets"].as_array().unwrap();
    assert_eq!(top.len(), 10, "{b}");
    // sum/s03: a write and three reads, the most of any path.
    assert_eq!(top[0], json!({"path": "sum/s03", "events": 4}));
    let counts: Vec<i64> = top.iter().map(|x| x["events"].as_i64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let oldest = snapshot.last().unwrap();
    assert_eq!(b["first_event_at"], oldest["timestamp"]);
    assert!(
        crate::harness::parse_time(&b["last_event_at"], "last")
            >= crate::harness::parse_time(&snapshot[0]["timestamp"], "t")
    );
    assert_eq!(b["period"], json!({"from": null, "to": null}));

    // A window: to = a snapshot entry's time.
    let mut times: Vec<i64> = snapshot.iter().map(micros).collect();
    times.sort_unstable();
    let cut = times[times.len() / 2];
    let r = get_q(
        &s,
        "/v1/audit/summary",
        &[("from", "2000-01-01"), ("to", &rfc3339(cut))],
    )
    .await;
    r.expect(200);
    let in_window = times.iter().filter(|t| **t <= cut).count() as i64;
    assert_eq!(r.body["total_events"], in_window);
    assert_eq!(
        r.body["period"],
        json!({"from": "2000-01-01T00:00:00.000000Z", "to": rfc3339(cut)})
    );
    // An empty window.
    let r = get_q(
        &s,
        "/v1/audit/summary",
        &[("from", "2000-01-01"), ("to", "2000-01-02")],
    )
    .await;
    r.expect(200);
    assert_eq!(r.body["total_events"], 0);
    assert_eq!(r.body["failed_events"], 0);
    assert_eq!(r.body["events_by_action"], json!({}));
    assert!(r.body["first_event_at"].is_null() && r.body["last_event_at"].is_null());
    assert_eq!(r.body["top_secrets"], json!([]));
}

// ---- scope --------------------------------------------------------------------------------------

/// A token of the admin identity with only `scopes`: inserted into the `tokens` table on SQLite (as the
/// CLI suite's `missing_scope_exits_3` does), issued by `POST /v1/auth/tokens` on PostgreSQL.
async fn scoped_token(s: &TestServer, scopes: &[&str]) -> String {
    match s.backend {
        Backend::Sqlite => {
            let who = whoami(s).await;
            let Db::Sqlite(mut conn) = Db::open(s).await else {
                unreachable!()
            };
            let token = format!("skt_{}", random_alnum(40));
            let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
            sqlx::query(
                "INSERT INTO tokens (id, token_hash, tenant_id, identity_id, name, scopes, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(format!("tok_audit{}", random_segment(12)))
            .bind(scaivault_server::auth::hash_token(&token).to_vec())
            .bind(&who.tenant_id)
            .bind(&who.identity_id)
            .bind("audit test (scoped)")
            .bind(serde_json::to_string(scopes).unwrap())
            .bind(now)
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            token
        }
        Backend::Postgres => {
            let r = s
                .post(
                    "/v1/auth/tokens",
                    &json!({"name": "audit test", "scopes": scopes}),
                )
                .await;
            r.expect(201);
            r.body["token"].as_str().unwrap().to_owned()
        }
    }
}

async fn scope_is_required(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("app/scoped", json!({"k": "v"})).await;
    let who = whoami(&s).await;
    let endpoints = [
        "/v1/audit/logs".to_owned(),
        "/v1/audit/secrets/app/scoped".to_owned(),
        format!("/v1/audit/identities/{}", who.identity_id),
        "/v1/audit/summary".to_owned(),
        "/v1/audit/verify".to_owned(),
    ];
    let without = scoped_token(&s, &["secrets:read", "secrets:list", "audit:export"]).await;
    let with = scoped_token(&s, &["audit:read"]).await;
    for p in &endpoints {
        get_as(&s, &without, p)
            .await
            .expect_error(403, "insufficient_scope");
        get_as(&s, &with, p).await.expect(200);
        // No token at all.
        let r = Resp::from(anon_client().get(s.url(p)).send().await.unwrap()).await;
        r.expect_error(401, "authentication_required");
    }
    // The refused queries are in the trail, failed with 403.
    let refused = pages(&s, "/v1/audit/logs", &[("success", "false")], 1000).await;
    let forbidden: Vec<&Value> = refused
        .iter()
        .filter(|e| e["error_code"] == "insufficient_scope")
        .collect();
    assert_eq!(forbidden.len(), endpoints.len(), "{refused:?}");
    assert!(forbidden
        .iter()
        .all(|e| e["status"] == 403 && e["action"].as_str().unwrap().starts_with("audit_")));
    // The client maps it to exit 3.
    for args in [
        vec!["audit", "logs"],
        vec!["audit", "summary"],
        vec!["audit", "verify"],
        vec!["audit", "secret", "app/scoped"],
    ] {
        cli_token(&s, &without, &args)
            .await
            .error(3, "insufficient_scope");
    }
    cli_token(&s, &with, &["audit", "verify"]).await.ok();
}

// ---- no secret values ---------------------------------------------------------------------------

async fn no_secret_value_in_any_audit_row(backend: Backend) {
    let s = spawn(backend).await;
    let canary = |n: &str| format!("cnry{n}{}", random_alnum(24));
    let canaries: Vec<String> = (0..6).map(|i| canary(&i.to_string())).collect();
    let paths = ["vals/kv", "vals/json", "vals/api"];
    s.write_kv(
        paths[0],
        json!({"password": canaries[0], "user": canaries[1]}),
    )
    .await;
    s.write(
        paths[1],
        &json!({"data": {"nested": {"deep": [canaries[2]]}}, "secret_type": "json"}),
    )
    .await;
    s.write(
        paths[2],
        &json!({"data": {"api_key": canaries[3]}, "secret_type": "api_key"}),
    )
    .await;
    // Failed writes carrying values: a version conflict and a validation error.
    s.put(
        &format!("/v1/secrets/{}", paths[0]),
        &json!({"data": {"password": canaries[4]}, "options": {"cas": 7}}),
    )
    .await
    .expect_error(409, "version_conflict");
    s.put(
        "/v1/secrets/vals/bad",
        &json!({"data": {"x": {"y": canaries[5]}}, "secret_type": "kv"}),
    )
    .await
    .expect(422);
    for p in paths {
        let v = s.read(p).await;
        assert!(v["data"].to_string().contains("cnry"), "{v}");
    }
    s.get(&format!("/v1/secrets/{}?version=1", paths[0]))
        .await
        .expect(200);
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": paths, "options": {"include_metadata": true}}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["retrieved"], 3, "{r}");
    cli(&s, &["secrets", "read", paths[0], "--field", "password"])
        .await
        .ok();

    // Every column of every audit row.
    let mut db = Db::open(&s).await;
    let cells = db.audit_log_text().await;
    db.close().await;
    assert!(
        cells.iter().any(|c| c == "vals/kv"),
        "the scan does not see the audit rows"
    );
    for c in &canaries {
        let hex_c: String = c.bytes().map(|b| format!("{b:02x}")).collect();
        for cell in &cells {
            assert!(
                !cell.contains(c.as_str()),
                "secret value {c} in audit_log: {cell}"
            );
            assert!(
                !cell.to_ascii_lowercase().contains(&hex_c),
                "secret value {c} (hex) in audit_log: {cell}"
            );
        }
    }

    // Every response of the query API.
    let mut texts = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", "7")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = get_q(&s, "/v1/audit/logs", &q).await;
        r.expect(200);
        texts.push(r.text.clone());
        match r.body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(texts.len() >= 2);
    let who = whoami(&s).await;
    for p in [
        "/v1/audit/secrets/vals/kv".to_owned(),
        "/v1/audit/secrets/vals/json".to_owned(),
        "/v1/audit/secrets/vals/api".to_owned(),
        "/v1/audit/secrets/vals/bad".to_owned(),
        format!("/v1/audit/identities/{}", who.identity_id),
        "/v1/audit/summary".to_owned(),
    ] {
        let r = s.get(&p).await;
        r.expect(200);
        texts.push(r.text.clone());
    }
    let export = cli(&s, &["audit", "logs", "--all", "--json"]).await;
    export.ok();
    texts.push(export.stdout.clone());
    for c in &canaries {
        for t in &texts {
            assert!(
                !t.contains(c.as_str()),
                "secret value {c} in an audit response: {t}"
            );
        }
    }
}

// ---- tamper evidence, live ----------------------------------------------------------------------

/// Activity, a clean verification, then `how` applied to the stopped server's database; after a restart
/// `GET /v1/audit/verify` (and `scaivault audit verify`) must name `bad_seq` as the first bad entry.
async fn tampered_live(backend: Backend, how: Tamper, bad_seq: i64, reason_has: &str) {
    let mut s = spawn(backend).await;
    let who = whoami(&s).await;
    activity(&s).await;
    let r = s.get("/v1/audit/verify").await;
    r.expect(200);
    assert_eq!(r.body["valid"], true, "{r}");
    assert!(r.body["first_bad"].is_null());
    let head = r.body["head_seq"].as_i64().unwrap();
    assert_eq!(r.body["entries_checked"], head);
    assert!(head >= 10, "{r}");
    let out = cli(&s, &["audit", "verify"]).await;
    out.ok();
    assert_eq!(kv(&out, "valid"), "true", "{out}");
    let before = all_logs(&s).await;
    let id_at = |q: i64| -> String {
        before
            .iter()
            .find(|e| seq(e) == q)
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let expected_id = match how {
        Tamper::Edit(q) => id_at(q),
        Tamper::Delete(q) => id_at(q + 1),
        // The entry now at the lower seq is the one that was at the higher.
        Tamper::Swap(_, b) => id_at(b),
    };

    s.kill9().await;
    let mut db = Db::open(&s).await;
    tamper(&mut db, &who.tenant_id, &how).await;
    db.close().await;
    s.restart().await;

    let r = s.get("/v1/audit/verify").await;
    r.expect(200);
    assert_eq!(r.body["valid"], false, "{r}");
    let bad = &r.body["first_bad"];
    assert_eq!(bad["seq"], bad_seq, "{r}");
    assert_eq!(bad["id"], expected_id.as_str(), "{r}");
    assert!(bad["reason"].as_str().unwrap().contains(reason_has), "{r}");
    let checked = match how {
        Tamper::Edit(q) | Tamper::Delete(q) | Tamper::Swap(q, _) => q - 1,
    };
    assert_eq!(r.body["entries_checked"], checked, "{r}");
    assert!(r.body["head_seq"].as_i64().unwrap() > head);
    // The server keeps serving and appending.
    s.write_kv("after/tamper", json!({"k": "v"})).await;
    let out = cli(&s, &["audit", "verify"]).await;
    out.error(1, "audit_chain_invalid");
    assert_eq!(kv(&out, "valid"), "false", "{out}");
    assert_eq!(kv(&out, "first_bad.seq"), bad_seq.to_string(), "{out}");
    assert_eq!(kv(&out, "first_bad.id"), expected_id, "{out}");
    let out = cli(&s, &["audit", "verify", "--json"]).await;
    out.code(1);
    assert_eq!(out.json()["first_bad"]["seq"], bad_seq);
}

async fn tamper_edit_detected_live(backend: Backend) {
    tampered_live(backend, Tamper::Edit(4), 4, "does not match its hash").await;
}

async fn tamper_delete_detected_live(backend: Backend) {
    tampered_live(backend, Tamper::Delete(4), 5, "missing").await;
}

async fn tamper_swap_detected_live(backend: Backend) {
    tampered_live(backend, Tamper::Swap(3, 6), 3, "does not match its hash").await;
}

/// `audit logs --all` against a small audit_query bucket: the client waits out each 429 and the export
/// is still complete and verifiable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_waits_out_rate_limits() {
    let mut s = spawn(Backend::Sqlite).await;
    s.rate_limits = "all=0,audit_query=30".to_owned();
    s.restart().await;
    let who = whoami(&s).await;
    // 32 entries, one per page: 32 requests against a bucket of 30 (refilled one per 2 s).
    for i in 0..31 {
        s.write_kv(&format!("rl/s{i:02}"), json!({"k": "v"})).await;
    }
    let out = cli(&s, &["audit", "logs", "--all", "--json", "--limit", "1"]).await;
    out.ok();
    assert!(out.stderr.contains("rate limited; retrying"), "{out}");
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = parsed.len() as i64;
    assert_eq!(n, 32, "{out}");
    assert_eq!(seqs(&parsed), (1..=n).rev().collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let f = write_lines(dir.path(), "rl.jsonl", &lines);
    cli_offline(
        &[
            "audit",
            "verify",
            "--file",
            &f,
            "--tenant-id",
            &who.tenant_id,
        ],
        &[],
    )
    .await
    .ok();
}

// ---- tamper evidence, offline -------------------------------------------------------------------

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn by_seq(lines: &[String], q: i64) -> usize {
    lines
        .iter()
        .position(|l| serde_json::from_str::<Value>(l).unwrap()["seq"] == q)
        .unwrap()
}

fn edit_line(lines: &mut [String], q: i64, f: impl FnOnce(&mut Value)) {
    let i = by_seq(lines, q);
    let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
    f(&mut v);
    lines[i] = v.to_string();
}

async fn tampered_export_detected_offline(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    activity(&s).await;
    // Entries whose extra_data and fields need exact round trips: batch markers, escapes, non-ASCII,
    // control characters, a rejected path recorded as given.
    s.post(
        "/v1/secrets/batch",
        &json!({"paths": ["app/audit/a", "app/audit/nope"]}),
    )
    .await
    .expect(200);
    s.get("/v1/audit/identities/user:Zo%C3%AB%20%22q%22%20%5C%20%E2%80%A8x@example.com")
        .await
        .expect(200);
    s.get("/v1/audit/identities/user:tab%09nl%0Ax")
        .await
        .expect_error(400, "invalid_request");
    s.get("/v1/audit/identities/user:nul%00x").await.expect(400);
    s.get("/v1/secrets/app/a%00b").await.expect(400);
    s.get("/v1/secrets/App/%C3%A9x")
        .await
        .expect_error(400, "invalid_path");
    let r = s
        .client()
        .get(s.url("/v1/secrets/app/audit/a"))
        .header("user-agent", "ua \"quoted\" \\ {json} <x>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    // The export: every entry, following cursors 5 at a time, as JSONL.
    let out = cli(&s, &["audit", "logs", "--all", "--json", "--limit", "5"]).await;
    out.ok();
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let n = lines.len() as i64;
    assert!(n >= 15, "{out}");
    assert_eq!(seqs(&parsed), (1..=n).rev().collect::<Vec<_>>());
    // Each line is the entry exactly as the server returns it.
    let api = all_logs(&s).await;
    let api_by_seq: BTreeMap<i64, &Value> = api.iter().map(|e| (seq(e), e)).collect();
    for v in &parsed {
        assert_eq!(
            Some(&v),
            api_by_seq.get(&seq(v)),
            "export line differs from the API"
        );
    }
    assert!(parsed
        .iter()
        .any(|e| e["extra_data"] == json!({"batch": true})));
    assert!(parsed.iter().any(|e| e["secret_path"] == "App/\u{e9}x"));
    assert!(parsed
        .iter()
        .any(|e| e["extra_data"]["identity_id"] == "user:tab\tnl\nx"));
    assert!(parsed
        .iter()
        .any(|e| e["extra_data"]["identity_id"] == "user:Zo\u{eb} \"q\" \\ \u{2028}x@example.com"));
    assert!(parsed
        .iter()
        .any(|e| e["user_agent"] == "ua \"quoted\" \\ {json} <x>"));
    let good = write_lines(dir.path(), "good.jsonl", &lines);
    let tenant = who.tenant_id.as_str();
    let tflag = ["--tenant-id", tenant];
    let verify = |file: String, json: bool| {
        let mut args = vec![
            "audit".to_owned(),
            "verify".to_owned(),
            "--file".to_owned(),
            file,
        ];
        args.extend(tflag.iter().map(|s| s.to_string()));
        if json {
            args.push("--json".into());
        }
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cli_offline(&a, &[]).await
        }
    };

    // The untouched export verifies offline (no server, no token), from genesis.
    let ok = verify(good.clone(), false).await;
    ok.ok();
    assert_eq!(kv(&ok, "valid"), "true", "{ok}");
    assert_eq!(kv(&ok, "entries_checked"), n.to_string(), "{ok}");
    assert_eq!(kv(&ok, "seq_range"), format!("1-{n}"), "{ok}");
    assert!(!ok.stdout.contains("note:"), "{ok}");
    let j = verify(good.clone(), true).await;
    j.ok();
    let j = j.json();
    assert_eq!(
        (
            j["valid"].clone(),
            j["entries_checked"].clone(),
            j["from_genesis"].clone()
        ),
        (json!(true), json!(n), json!(true))
    );
    assert!(j["first_bad"].is_null());
    // The tenant: from the lines if they carry it, else --tenant-id or the configured tenant_id.
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    if first.get("tenant_id").is_none() {
        cli_offline(&["audit", "verify", "--file", &good], &[])
            .await
            .error(5, "invalid_audit_file");
        cli_offline(
            &["audit", "verify", "--file", &good],
            &[("SCAIVAULT_TENANT_ID", tenant)],
        )
        .await
        .ok();
        let wrong = cli_offline(
            &[
                "audit",
                "verify",
                "--file",
                &good,
                "--tenant-id",
                "tnt_other",
            ],
            &[],
        )
        .await;
        wrong.error(1, "audit_chain_invalid");
        assert!(wrong.stdout.contains("hint:"), "{wrong}");
    }
    // File order does not matter: entries are sorted by seq.
    let mut reversed = lines.clone();
    reversed.reverse();
    verify(write_lines(dir.path(), "rev.jsonl", &reversed), false)
        .await
        .ok();

    // A file that does not start at seq 1: verified from its second entry, which the output says.
    let tail: Vec<String> = lines[..lines.len() - 3].to_vec(); // newest first: drop seq 1..3
    let out = verify(write_lines(dir.path(), "tail.jsonl", &tail), false).await;
    out.ok();
    assert!(
        out.stdout.contains("note: the file starts at seq 4, not 1"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("cannot be checked against its predecessor"),
        "{out}"
    );
    let j = verify(write_lines(dir.path(), "tail2.jsonl", &tail), true).await;
    assert_eq!(j.json()["from_genesis"], false);
    assert_eq!(j.json()["entries_checked"], n - 4);

    // (a) one entry's identity_id edited.
    let k = n / 2;
    let mut edited = lines.clone();
    edit_identity(&mut edited, k);
    let out = verify(write_lines(dir.path(), "edit.jsonl", &edited), false).await;
    expect_bad(&out, k, &id_of(&lines, k));
    // (b) one entry removed: the next one is named, with the gap.
    let mut removed = lines.clone();
    removed.remove(by_seq(&lines, k));
    let out = verify(write_lines(dir.path(), "del.jsonl", &removed), false).await;
    expect_bad(&out, k + 1, &id_of(&lines, k + 1));
    assert_eq!(kv(&out, "first_bad.missing"), format!("seq {k}"), "{out}");
    let j = verify(write_lines(dir.path(), "del2.jsonl", &removed), true).await;
    assert_eq!(
        j.json()["first_bad"]["missing"],
        json!({"from_seq": k, "to_seq": k})
    );
    // (c) two entries' contents swapped, seq kept: the lower one is named.
    let (a, b) = (3, n - 2);
    let mut swapped = lines.clone();
    let (ia, ib) = (by_seq(&lines, a), by_seq(&lines, b));
    let mut va: Value = serde_json::from_str(&lines[ia]).unwrap();
    let mut vb: Value = serde_json::from_str(&lines[ib]).unwrap();
    std::mem::swap(&mut va, &mut vb);
    va["seq"] = json!(a);
    vb["seq"] = json!(b);
    swapped[ia] = va.to_string();
    swapped[ib] = vb.to_string();
    let out = verify(write_lines(dir.path(), "swap.jsonl", &swapped), false).await;
    expect_bad(&out, a, &id_of(&lines, b));
    let j = verify(write_lines(dir.path(), "swap2.jsonl", &swapped), true).await;
    j.code(1);
    let j = j.json();
    assert_eq!(j["valid"], false);
    assert_eq!(j["first_bad"]["seq"], a);
    assert_eq!(j["first_bad"]["entry"]["seq"], a);

    // Every other field is covered too.
    for what in [
        "timestamp",
        "success",
        "status",
        "duration_ms",
        "extra_data",
        "secret_path",
        "source_ip",
        "user_agent",
        "error_code",
        "action",
        "identity_type",
        "request_id",
        "id",
        "hash",
    ] {
        let mut t = lines.clone();
        edit_line(&mut t, k, |v| edit_field(what, v));
        let out = verify(write_lines(dir.path(), "field.jsonl", &t), false).await;
        assert_eq!(out.code, 1, "editing {what} was not detected: {out}");
        assert_eq!(kv(&out, "first_bad.seq"), k.to_string(), "{what}: {out}");
    }
    // The newest entry's hash changed: caught at the end.
    let mut t = lines.clone();
    edit_line(&mut t, n, |v| v["hash"] = json!("00".repeat(32)));
    let out = verify(write_lines(dir.path(), "last.jsonl", &t), false).await;
    expect_bad(&out, n, &id_of(&lines, n));
    // A duplicated line.
    let mut t = lines.clone();
    t.push(lines[by_seq(&lines, 5)].clone());
    let out = verify(write_lines(dir.path(), "dup.jsonl", &t), false).await;
    out.error(1, "audit_chain_invalid");
    assert!(out.stdout.contains("duplicated"), "{out}");

    // Not an export at all.
    let mut t = lines.clone();
    t.insert(2, "{not json".into());
    verify(write_lines(dir.path(), "garbage.jsonl", &t), false)
        .await
        .error(5, "invalid_audit_file");
    let mut t = lines.clone();
    edit_line(&mut t, 2, |v| {
        v.as_object_mut().unwrap().remove("hash");
    });
    let out = verify(write_lines(dir.path(), "nohash.jsonl", &t), false).await;
    out.error(5, "invalid_audit_file");
    verify(write_lines(dir.path(), "empty.jsonl", &[]), false)
        .await
        .error(5, "invalid_audit_file");
    verify(dir.path().join("absent.jsonl").display().to_string(), false)
        .await
        .error(5, "invalid_audit_file");
}

/// A small change to one field of a rendered entry.
fn edit_field(what: &str, v: &mut Value) {
    v[what] = match what {
        "timestamp" => json!(rfc3339(micros(v) + 1)),
        "success" => json!(!v["success"].as_bool().unwrap()),
        "status" => json!(v["status"].as_i64().unwrap() + 1),
        "duration_ms" => json!(v["duration_ms"].as_i64().unwrap() + 1),
        "extra_data" => {
            let mut x = v["extra_data"].clone();
            x["x"] = json!(1);
            x
        }
        "hash" => {
            let h = v["hash"].as_str().unwrap();
            let first = if h.starts_with('0') { '1' } else { '0' };
            json!(format!("{first}{}", &h[1..]))
        }
        _ => match v[what].as_str() {
            Some(s) => json!(format!("{s}x")),
            None => json!("x"),
        },
    };
}

fn id_of(lines: &[String], q: i64) -> String {
    let v: Value = serde_json::from_str(&lines[by_seq(lines, q)]).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn edit_identity(lines: &mut [String], q: i64) {
    edit_line(lines, q, |v| {
        v["identity_id"] = json!("user:mallory@evil.example")
    });
}

fn expect_bad(out: &Out, bad_seq: i64, id: &str) {
    out.error(1, "audit_chain_invalid");
    assert_eq!(kv(out, "valid"), "false", "{out}");
    assert_eq!(kv(out, "first_bad.seq"), bad_seq.to_string(), "{out}");
    assert_eq!(kv(out, "first_bad.id"), id, "{out}");
    assert!(
        out.stderr
            .contains(&format!("broken at seq {bad_seq} ({id})")),
        "{out}"
    );
}

// ---- the client commands ------------------------------------------------------------------------

async fn cli_commands(backend: Backend) {
    let s = spawn(backend).await;
    let who = whoami(&s).await;
    let first_write = activity(&s).await;
    s.write_kv(STRIPE, json!({"api_key": "x"})).await;
    s.read(STRIPE).await;

    // logs: a table by default.
    let out = cli(&s, &["audit", "logs", "--limit", "5"]).await;
    out.ok();
    let mut rows = out.stdout.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "SEQ",
            "TIMESTAMP",
            "ACTION",
            "IDENTITY",
            "PATH",
            "STATUS",
            "SOURCE_IP",
            "REQUEST_ID"
        ]
    );
    assert_eq!(rows.count(), 5, "{out}");
    assert!(out.stderr.contains("continue with --cursor"), "{out}");
    // --json: the response as is.
    let j = cli(&s, &["audit", "logs", "--limit", "2", "--json"]).await;
    j.ok();
    let j = j.json();
    assert_eq!(logs(&j).len(), 2);
    assert_eq!(j["has_more"], true);
    // --cursor continues.
    let c = j["cursor"].as_str().unwrap();
    let next = cli(
        &s,
        &["audit", "logs", "--limit", "2", "--cursor", c, "--json"],
    )
    .await;
    assert_eq!(seq(&logs(&next.json())[0]), seq(&logs(&j)[1]) - 1);
    // Every filter is passed through.
    let out = cli(
        &s,
        &[
            "audit",
            "logs",
            "--json",
            "--limit",
            "1000",
            "--from",
            "1h",
            "--to",
            "2999-01-01",
            "--action",
            "read,write",
            "--action",
            "delete",
            "--identity-id",
            &who.identity_id,
            "--identity-type",
            &who.identity_type,
            "--path-prefix",
            "app/audit/",
            "--success",
            "true",
            "--source-ip",
            "127.0.0.1",
        ],
    )
    .await;
    out.ok();
    let got = out.json();
    let got = logs(&got);
    // write a, write b, read a ×2 (the missing read failed, metadata is another action).
    assert_eq!(got.len(), 4, "{out}");
    assert!(got.iter().all(
        |e| ["read", "write"].contains(&e["action"].as_str().unwrap())
            && path_of(e).unwrap().starts_with("app/audit/")
            && e["success"] == true
    ));
    let out = cli(
        &s,
        &["audit", "logs", "--json", "--request-id", &first_write],
    )
    .await;
    assert_eq!(logs(&out.json()).len(), 1);
    let out = cli(&s, &["audit", "logs", "--json", "--success", "false"]).await;
    assert!(logs(&out.json()).iter().all(|e| e["success"] == false));
    // --all: the table has every entry; with --json it is JSONL.
    let total = all_logs(&s).await.len();
    let out = cli(&s, &["audit", "logs", "--all", "--limit", "3"]).await;
    out.ok();
    assert!(out.stdout.lines().count() > total, "{out}");
    let out = cli(
        &s,
        &[
            "audit", "logs", "--all", "--json", "--limit", "4", "--action", "read",
        ],
    )
    .await;
    out.ok();
    let reads: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reads.len(), 5);
    assert!(reads.iter().all(|e| e["action"] == "read"));

    // Errors: local argument checks (exit 5, no request), the server's 400s (exit 5), no token (exit 2).
    cli(&s, &["audit", "logs", "--from", "yesterday"])
        .await
        .error(5, "invalid_argument");
    cli(&s, &["audit", "logs", "--success", "maybe"])
        .await
        .code(5);
    cli(&s, &["audit", "logs", "--limit", "0"])
        .await
        .error(5, "invalid_request");
    cli(&s, &["audit", "logs", "--cursor", "garbage"])
        .await
        .error(5, "invalid_cursor");
    cli(&s, &["audit", "logs", "--identity-type", "robot"])
        .await
        .error(5, "invalid_request");
    cli(&s, &["audit", "secret", "Bad/Path"])
        .await
        .error(5, "invalid_path");
    cli(&s, &["audit", "secret", "a/../b"])
        .await
        .error(5, "invalid_path");
    run_cli(&["audit", "logs"], &[("SCAIVAULT_URL", &s.base_url)])
        .await
        .error(2, "authentication_required");

    // secret: the summary block, then the trail.
    let out = cli(&s, &["audit", "secret", STRIPE, "--from", "24h"]).await;
    out.ok();
    assert_eq!(kv(&out, "path"), STRIPE, "{out}");
    assert_eq!(kv(&out, "reads"), "1", "{out}");
    assert_eq!(kv(&out, "writes"), "1", "{out}");
    assert_eq!(kv(&out, "source_ips"), "127.0.0.1", "{out}");
    assert!(out.stdout.contains("SEQ  TIMESTAMP"), "{out}");
    let j = cli(&s, &["audit", "secret", STRIPE, "--json"]).await.json();
    assert_eq!(j["path"], STRIPE);
    assert_eq!(j["summary"]["writes"], 1);
    // identity: resources accessed.
    let out = cli(
        &s,
        &[
            "audit",
            "identity",
            &who.identity_id,
            "--from",
            "2026-01-01",
        ],
    )
    .await;
    out.ok();
    let line = kv(&out, "resources_accessed");
    for p in ["app/audit/a", "other/x", STRIPE] {
        assert!(line.contains(p), "{out}");
    }
    let j = cli(&s, &["audit", "identity", &who.identity_id, "--json"])
        .await
        .json();
    assert!(j["summary"]["resources_accessed"]
        .as_array()
        .unwrap()
        .contains(&json!(STRIPE)));
    // summary.
    let out = cli(
        &s,
        &[
            "audit",
            "summary",
            "--from",
            "2000-01-01",
            "--to",
            "2999-01-01",
        ],
    )
    .await;
    out.ok();
    assert!(
        kv(&out, "total_events").parse::<i64>().unwrap() > 10,
        "{out}"
    );
    assert!(
        out.stdout.contains("ACTION") && out.stdout.contains("audit_query"),
        "{out}"
    );
    let j = cli(&s, &["audit", "summary", "--json"]).await.json();
    assert!(j["total_events"].as_i64().unwrap() > 10);
    // verify (live).
    let out = cli(&s, &["audit", "verify"]).await;
    out.ok();
    assert_eq!(kv(&out, "valid"), "true", "{out}");
    let j = cli(&s, &["audit", "verify", "--json"]).await;
    j.ok();
    assert_eq!(j.json()["valid"], true);
}
