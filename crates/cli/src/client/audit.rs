//! `scaivault audit ...`: query the audit trail (`/v1/audit/...`) and verify its hash chain, either on the
//! server (`audit verify`) or offline from a JSONL file written by `audit logs --all --json`
//! (`audit verify --file F.jsonl`).

use clap::Args;
use scaivault_core::audit::{AuditEntry, ChainVerifier};
use scaivault_core::time_fmt;
use serde_json::{json, Map, Value};

use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{cell, key_values, print_json, print_raw, println, value_cell, Table};
use super::{AuditCommand, GlobalOpts};

/// Time window options shared by the trail commands.
#[derive(Args, Debug, Clone, Default)]
pub struct TimeArgs {
    /// Start time: RFC 3339, a date (YYYY-MM-DD), or a duration ago (24h, 7d)
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End time: RFC 3339, a date (YYYY-MM-DD), or a duration ago (1h)
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

/// Paging options shared by the trail commands.
#[derive(Args, Debug, Clone, Default)]
pub struct PageArgs {
    /// Page size (1-1000; server default 100, 1000 with --all)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue from the cursor of a previous page
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Follow the cursors and fetch every page (with --json: one JSON object per line, JSONL)
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct LogsArgs {
    #[command(flatten)]
    pub time: TimeArgs,
    /// Only these actions (comma-separated or repeated), e.g. read,write
    #[arg(long, value_name = "ACTION", value_delimiter = ',')]
    pub action: Vec<String>,
    /// Only this identity, e.g. user:alice@acme.example
    #[arg(long, value_name = "ID")]
    pub identity_id: Option<String>,
    /// Only this identity type: user, service_account or group
    #[arg(long, value_name = "TYPE")]
    pub identity_type: Option<String>,
    /// Only secret paths starting with this prefix
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// Only successful (true) or failed (false) requests
    #[arg(long, value_name = "BOOL")]
    pub success: Option<bool>,
    /// Only requests from this source IP
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<String>,
    /// Only the entries of this request id (req_…)
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SecretArgs {
    /// Secret path, e.g. environments/production/billing/stripe
    pub path: String,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Args, Debug, Clone)]
pub struct IdentityArgs {
    /// Identity id, e.g. user:alice@acme.example
    pub identity_id: String,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub time: TimeArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct VerifyArgs {
    /// Verify this JSONL file (from `scaivault audit logs --all --json`) offline, without a server
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// Tenant of the entries in --file, for lines that do not carry `tenant_id` (default: the configured
    /// tenant_id)
    #[arg(long, value_name = "ID", requires = "file")]
    pub tenant_id: Option<String>,
    /// The file is a filtered export: entries need not be consecutive, each one after a gap is checked
    /// against its own prev_hash (removals inside the filtered set are then not detectable)
    #[arg(long, requires = "file")]
    pub allow_gaps: bool,
}

pub async fn run(cmd: AuditCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    match &cmd {
        AuditCommand::Export(a) => return super::audit_export::export(a, global).await,
        AuditCommand::Exports(a) => return super::audit_export::exports(a, global).await,
        _ => {}
    }
    if let AuditCommand::Verify(a) = &cmd {
        if let Some(file) = &a.file {
            return verify_file(file, a.tenant_id.as_deref(), a.allow_gaps, global);
        }
    }
    let settings = Settings::resolve(global.url.as_deref())?;
    // Local argument checks come before the token check, so that they are reported even without a login.
    let query = prepare(&cmd)?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    match cmd {
        AuditCommand::Logs(a) => {
            let url = client.url(&["v1", "audit", "logs"], &query)?;
            trail(&client, url, &a.page, global, |_| {}).await
        }
        AuditCommand::Secret(a) => {
            let segments = secret_segments(&a.path)?;
            let url = client.url(&segments, &query)?;
            trail(&client, url, &a.page, global, print_secret_summary).await
        }
        AuditCommand::Identity(a) => {
            let url = client.url(&["v1", "audit", "identities", &a.identity_id], &query)?;
            trail(&client, url, &a.page, global, print_identity_summary).await
        }
        AuditCommand::Summary(_) => summary(&client, &query, global).await,
        AuditCommand::Verify(_) => verify_live(&client, global).await,
        AuditCommand::Export(_) | AuditCommand::Exports(_) => Ok(()),
    }
}

// ---------------------------------------------------------------- arguments

/// A `--from` / `--to` value as sent to the server: RFC 3339 and dates go as given, a duration (`24h`)
/// is turned into that long before now.
pub fn time_value(flag: &str, raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if time_fmt::parse(raw).is_some() {
        return Ok(raw.to_owned());
    }
    if let Ok(secs) = scaivault_core::duration::parse_seconds(raw) {
        return Ok(time_fmt::rfc3339(
            time_fmt::now_micros() - secs.saturating_mul(1_000_000),
        ));
    }
    Err(ApiError::validation(
        "invalid_argument",
        format!(
            "{flag} '{}' is not an RFC 3339 time, a date (YYYY-MM-DD) or a duration ago (24h, 7d)",
            cell(raw)
        ),
    ))
}

fn time_query(t: &TimeArgs, q: &mut Vec<(&'static str, String)>) -> Result<(), ApiError> {
    if let Some(f) = &t.from {
        q.push(("from", time_value("--from", f)?));
    }
    if let Some(f) = &t.to {
        q.push(("to", time_value("--to", f)?));
    }
    Ok(())
}

fn page_query(p: &PageArgs, q: &mut Vec<(&'static str, String)>) {
    if let Some(l) = p.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(c) = &p.cursor {
        q.push(("cursor", c.clone()));
    }
}

/// The query string of a command, checked locally.
fn prepare(cmd: &AuditCommand) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut q = Vec::new();
    match cmd {
        AuditCommand::Logs(a) => {
            time_query(&a.time, &mut q)?;
            let actions: Vec<&str> = a
                .action
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect();
            if !actions.is_empty() {
                q.push(("action", actions.join(",")));
            }
            let text = [
                ("identity_id", &a.identity_id),
                ("identity_type", &a.identity_type),
                ("path_prefix", &a.path_prefix),
                ("source_ip", &a.source_ip),
                ("request_id", &a.request_id),
            ];
            for (k, v) in text {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            if let Some(s) = a.success {
                q.push(("success", s.to_string()));
            }
            page_query(&a.page, &mut q);
        }
        AuditCommand::Secret(a) => {
            secret_segments(&a.path)?;
            time_query(&a.time, &mut q)?;
            page_query(&a.page, &mut q);
        }
        AuditCommand::Identity(a) => {
            if a.identity_id.is_empty() {
                return Err(ApiError::validation(
                    "invalid_argument",
                    "the identity id is empty",
                ));
            }
            time_query(&a.time, &mut q)?;
            page_query(&a.page, &mut q);
        }
        AuditCommand::Summary(a) => time_query(&a.time, &mut q)?,
        AuditCommand::Verify(_) | AuditCommand::Export(_) | AuditCommand::Exports(_) => {}
    }
    Ok(q)
}

/// `/v1/audit/secrets/{path}` as URL segments (each one percent-encoded by the client).
fn secret_segments(path: &str) -> Result<Vec<&str>, ApiError> {
    if path.is_empty() {
        return Err(ApiError::validation(
            "invalid_path",
            "the secret path is empty",
        ));
    }
    let mut segments = vec!["v1", "audit", "secrets"];
    for seg in path.split('/') {
        // `Url` silently drops "." and ".." segments; never let that retarget a request.
        if seg == "." || seg == ".." {
            return Err(ApiError::validation(
                "invalid_path",
                format!("path '{}' may not contain '.' or '..' segments", cell(path)),
            ));
        }
        segments.push(seg);
    }
    Ok(segments)
}

// ---------------------------------------------------------------- trails

fn logs_of(body: &Value) -> &[Value] {
    body.get("logs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn next_cursor(body: &Value) -> Option<String> {
    if body.get("has_more").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    body.get("cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// `--cursor` replaced by `cursor` in `url`'s query.
fn with_cursor(url: &reqwest::Url, cursor: &str) -> reqwest::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "cursor")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut next = url.clone();
    next.set_query(None);
    {
        let mut q = next.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("cursor", cursor);
    }
    next
}

/// Fetches one page, or every page with `--all`, and prints them. `head` prints what precedes the table
/// (the summary of a per-secret or per-identity trail, from the first page).
async fn trail(
    client: &ApiClient,
    url: reqwest::Url,
    page: &PageArgs,
    global: &GlobalOpts,
    head: fn(&Value),
) -> Result<(), ApiError> {
    if !page.all {
        let first = client.get(url).await?.body;
        if global.json {
            print_json(&first);
            return Ok(());
        }
        head(&first);
        print_logs_table(logs_of(&first));
        if let Some(c) = next_cursor(&first) {
            eprintln!("(more results: continue with --cursor {})", cell(&c));
        }
        return Ok(());
    }
    // --all: with --json every entry goes out as one line as soon as its page arrives (JSONL, the format
    // `audit verify --file` reads); a table needs every row first. Pages are 1000 entries unless --limit
    // says otherwise, and a rate-limited page is retried after the server's Retry-After.
    let url = if page.limit.is_none() {
        let mut u = url;
        u.query_pairs_mut().append_pair("limit", "1000");
        u
    } else {
        url
    };
    let mut rows: Vec<Value> = Vec::new();
    let mut body = get_patiently(client, &url).await?;
    let mut first = true;
    loop {
        if global.json {
            let mut text = String::new();
            for entry in logs_of(&body) {
                text.push_str(&entry.to_string());
                text.push('\n');
            }
            print_raw(&text);
        } else {
            if first {
                head(&body);
            }
            rows.extend(logs_of(&body).iter().cloned());
        }
        first = false;
        let Some(cursor) = next_cursor(&body) else {
            break;
        };
        body = get_patiently(client, &with_cursor(&url, &cursor)).await?;
    }
    if !global.json {
        print_logs_table(&rows);
    }
    Ok(())
}

/// GET that waits out `429 rate_limited` (the audit_query bucket is small: 50 a minute by default) for
/// a multi-page fetch, up to a few minutes in all.
async fn get_patiently(client: &ApiClient, url: &reqwest::Url) -> Result<Value, ApiError> {
    let mut waited = 0u64;
    loop {
        match client.get(url.clone()).await {
            Ok(r) => return Ok(r.body),
            Err(e) if e.status == Some(429) && waited < 300 => {
                let secs = e
                    .details
                    .as_ref()
                    .and_then(|d| d.get("retry_after"))
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .clamp(1, 60);
                eprintln!("note: rate limited; retrying in {secs} s");
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                waited += secs;
            }
            Err(e) => return Err(e),
        }
    }
}

fn status_cell(e: &Value) -> String {
    let status = value_cell(e.get("status"));
    match e.get("error_code").and_then(Value::as_str) {
        Some(code) => format!("{status} {}", cell(code)),
        None => status,
    }
}

fn print_logs_table(logs: &[Value]) {
    if logs.is_empty() {
        println("No audit entries found.");
        return;
    }
    let mut t = Table::new(&[
        "SEQ",
        "TIMESTAMP",
        "ACTION",
        "IDENTITY",
        "PATH",
        "STATUS",
        "SOURCE_IP",
        "REQUEST_ID",
    ]);
    for e in logs {
        t.row(vec![
            value_cell(e.get("seq")),
            value_cell(e.get("timestamp")),
            value_cell(e.get("action")),
            value_cell(e.get("identity_id")),
            value_cell(e.get("secret_path")),
            status_cell(e),
            value_cell(e.get("source_ip")),
            value_cell(e.get("request_id")),
        ]);
    }
    t.print();
}

/// `a (3), b (1)` from `[{key: a, "events": 3}, …]`.
fn counted(list: Option<&Value>, key: &str) -> String {
    let items: Vec<String> = list
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    format!(
                        "{} ({})",
                        value_cell(x.get(key)),
                        value_cell(x.get("events"))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn print_secret_summary(body: &Value) {
    let s = body.get("summary").unwrap_or(&Value::Null);
    let days = value_cell(s.get("period_days"));
    print_raw(&key_values(&[
        ("path", value_cell(body.get("path"))),
        ("period", format!("last {days} days")),
        ("events", value_cell(s.get("total_events"))),
        ("reads", value_cell(s.get("reads"))),
        ("writes", value_cell(s.get("writes"))),
        ("failed", value_cell(s.get("failed_events"))),
        ("identities", counted(s.get("identities"), "identity_id")),
        ("source_ips", value_cell(s.get("source_ips"))),
        ("last_accessed_at", value_cell(s.get("last_accessed_at"))),
    ]));
    println("");
}

fn print_identity_summary(body: &Value) {
    let s = body.get("summary").unwrap_or(&Value::Null);
    print_raw(&key_values(&[
        ("identity_id", value_cell(body.get("identity_id"))),
        ("events", value_cell(s.get("total_events"))),
        ("failed", value_cell(s.get("failed_events"))),
        (
            "resources_accessed",
            value_cell(s.get("resources_accessed")),
        ),
        ("source_ips", value_cell(s.get("source_ips"))),
        ("first_event_at", value_cell(s.get("first_event_at"))),
        ("last_event_at", value_cell(s.get("last_event_at"))),
    ]));
    println("");
}

// ---------------------------------------------------------------- summary

async fn summary(
    client: &ApiClient,
    query: &[(&'static str, String)],
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let url = client.url(&["v1", "audit", "summary"], query)?;
    let b = client.get(url).await?.body;
    if global.json {
        print_json(&b);
        return Ok(());
    }
    let period = b.get("period");
    print_raw(&key_values(&[
        ("from", value_cell(period.and_then(|p| p.get("from")))),
        ("to", value_cell(period.and_then(|p| p.get("to")))),
        ("total_events", value_cell(b.get("total_events"))),
        ("successful_events", value_cell(b.get("successful_events"))),
        ("failed_events", value_cell(b.get("failed_events"))),
        ("unique_identities", value_cell(b.get("unique_identities"))),
        ("unique_secrets", value_cell(b.get("unique_secrets"))),
        ("first_event_at", value_cell(b.get("first_event_at"))),
        ("last_event_at", value_cell(b.get("last_event_at"))),
    ]));
    let mut by_action: Vec<(String, String)> = b
        .get("events_by_action")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (cell(k), value_cell(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    by_action.sort();
    if !by_action.is_empty() {
        println("");
        let mut t = Table::new(&["ACTION", "EVENTS"]);
        for (a, n) in by_action {
            t.row(vec![a, n]);
        }
        t.print();
    }
    for (list, key, header) in [
        ("top_identities", "identity_id", "IDENTITY"),
        ("top_secrets", "path", "PATH"),
    ] {
        let items = b.get(list).and_then(Value::as_array);
        if let Some(items) = items.filter(|i| !i.is_empty()) {
            println("");
            let mut t = Table::new(&[header, "EVENTS"]);
            for x in items {
                t.row(vec![value_cell(x.get(key)), value_cell(x.get("events"))]);
            }
            t.print();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- verify (live)

fn chain_broken(seq: &str, id: &str, reason: &str) -> ApiError {
    ApiError::general(
        "audit_chain_invalid",
        format!(
            "the audit chain is broken at seq {seq} ({}): {}",
            if id.is_empty() { "-" } else { id },
            reason
        ),
    )
}

async fn verify_live(client: &ApiClient, global: &GlobalOpts) -> Result<(), ApiError> {
    let url = client.url(&["v1", "audit", "verify"], &[])?;
    let b = client.get(url).await?.body;
    let valid = b.get("valid").and_then(Value::as_bool) == Some(true);
    let bad = b.get("first_bad").filter(|v| v.is_object());
    if global.json {
        print_json(&b);
    } else {
        let mut pairs = vec![
            ("valid", value_cell(b.get("valid"))),
            ("entries_checked", value_cell(b.get("entries_checked"))),
            ("head_seq", value_cell(b.get("head_seq"))),
        ];
        if let Some(bad) = bad {
            pairs.push(("first_bad.seq", value_cell(bad.get("seq"))));
            pairs.push(("first_bad.id", value_cell(bad.get("id"))));
            pairs.push(("first_bad.reason", value_cell(bad.get("reason"))));
        }
        print_raw(&key_values(&pairs));
    }
    if valid {
        return Ok(());
    }
    let field = |k: &str| bad.and_then(|b| b.get(k));
    Err(chain_broken(
        &value_cell(field("seq")),
        field("id").and_then(Value::as_str).unwrap_or(""),
        &value_cell(field("reason")),
    ))
}

// ---------------------------------------------------------------- verify --file (offline)

/// One line of an export: the entry as the server hashed it, its place in the chain and its stored hash.
#[derive(Debug, Clone)]
struct FileEntry {
    line: usize,
    seq: i64,
    entry: AuditEntry,
    hash: Vec<u8>,
    raw: String,
    /// The predecessor's hash, as exports (`POST /v1/audit/export`) record it.
    prev: Option<Vec<u8>>,
}

fn prev_hash_of(v: &Value) -> Result<Option<Vec<u8>>, String> {
    match v.get("prev_hash") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => decode_hex(s)
            .filter(|h| h.len() == 32)
            .map(Some)
            .ok_or_else(|| "field 'prev_hash' is not 64 hex digits".to_owned()),
        Some(_) => Err("field 'prev_hash' is not a string".to_owned()),
    }
}

/// The header of a CSV export.
const CSV_HEADER: &str = "seq,id,tenant_id,timestamp,action,identity_type,identity_id,";

fn looks_like_csv(text: &str) -> bool {
    text.trim_start().starts_with(CSV_HEADER)
}

/// Reads a CSV export: each row becomes the JSON object the JSONL form carries, then is checked the same way.
fn parse_csv(text: &str, default_tenant: Option<&str>) -> Result<Vec<FileEntry>, ApiError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ApiError::validation("invalid_audit_file", format!("CSV header: {e}")))?
        .clone();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec =
            rec.map_err(|e| ApiError::validation("invalid_audit_file", format!("CSV: {e}")))?;
        let line_no = rec
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        let bad = |why: String| {
            ApiError::validation("invalid_audit_file", format!("line {line_no}: {why}"))
        };
        let mut o = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            let val = match h {
                "seq" | "status" | "duration_ms" => match v.parse::<i64>() {
                    Ok(n) => json!(n),
                    Err(_) => return Err(bad(format!("column '{h}' is not an integer"))),
                },
                "success" => match v {
                    "true" => json!(true),
                    "false" => json!(false),
                    _ => return Err(bad("column 'success' is not true or false".to_owned())),
                },
                "extra_data" => serde_json::from_str::<Value>(v).unwrap_or_else(|_| json!(v)),
                "secret_path" | "source_ip" | "user_agent" | "error_code" | "prev_hash"
                    if v.is_empty() =>
                {
                    Value::Null
                }
                _ => json!(v),
            };
            o.insert(h.to_owned(), val);
        }
        let v = Value::Object(o);
        let (seq, entry, hash) = entry_from_json(&v, default_tenant).map_err(bad)?;
        let prev = prev_hash_of(&v).map_err(bad)?;
        out.push(FileEntry {
            line: line_no,
            seq,
            entry,
            hash,
            raw: v.to_string(),
            prev,
        });
    }
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Turns one log entry, as `GET /v1/audit/logs` renders it, back into the entry the server hashed.
fn entry_from_json(
    v: &Value,
    default_tenant: Option<&str>,
) -> Result<(i64, AuditEntry, Vec<u8>), String> {
    let o = v
        .as_object()
        .ok_or_else(|| "the line is not a JSON object".to_owned())?;
    let string = |k: &str| -> Result<String, String> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("field '{k}' is missing or not a string"))
    };
    let opt_string = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field '{k}' is not a string or null")),
        }
    };
    let int = |k: &str| -> Result<i64, String> {
        o.get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("field '{k}' is missing or not an integer"))
    };
    let ts_text = string("timestamp")?;
    let timestamp = time_fmt::parse(&ts_text)
        .ok_or_else(|| format!("field 'timestamp' ({ts_text}) is not an RFC 3339 time"))?;
    let tenant_id = match opt_string("tenant_id")? {
        Some(t) => t,
        None => default_tenant.map(str::to_owned).ok_or_else(|| {
            "the line carries no tenant_id; pass --tenant-id (see `scaivault auth whoami`)"
                .to_owned()
        })?,
    };
    let status =
        i32::try_from(int("status")?).map_err(|_| "field 'status' is out of range".to_owned())?;
    // The server stores extra_data as the JSON text of an object (`Value::Object(map).to_string()`) and
    // renders it parsed; serialising the parsed object again gives back the stored text.
    let extra_data = match o.get("extra_data") {
        Some(Value::Object(m)) => Value::Object(m.clone()).to_string(),
        Some(other) => other.to_string(),
        None => return Err("field 'extra_data' is missing".to_owned()),
    };
    let hash_text = string("hash")?;
    let hash = decode_hex(&hash_text)
        .filter(|h| h.len() == 32)
        .ok_or_else(|| "field 'hash' is not 64 hex digits".to_owned())?;
    let entry = AuditEntry {
        id: string("id")?,
        tenant_id,
        timestamp,
        action: string("action")?,
        identity_type: string("identity_type")?,
        identity_id: string("identity_id")?,
        secret_path: opt_string("secret_path")?,
        source_ip: opt_string("source_ip")?,
        user_agent: opt_string("user_agent")?,
        success: o
            .get("success")
            .and_then(Value::as_bool)
            .ok_or_else(|| "field 'success' is missing or not a boolean".to_owned())?,
        status,
        error_code: opt_string("error_code")?,
        duration_ms: int("duration_ms")?,
        request_id: string("request_id")?,
        extra_data,
    };
    Ok((int("seq")?, entry, hash))
}

fn parse_file(text: &str, default_tenant: Option<&str>) -> Result<Vec<FileEntry>, ApiError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| {
            ApiError::validation("invalid_audit_file", format!("line {line_no}: {why}"))
        };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let (seq, entry, hash) = entry_from_json(&v, default_tenant).map_err(bad)?;
        let prev = prev_hash_of(&v).map_err(bad)?;
        out.push(FileEntry {
            line: line_no,
            seq,
            entry,
            hash,
            raw: line.to_owned(),
            prev,
        });
    }
    Ok(out)
}

/// The outcome of checking a file's entries.
#[derive(Debug, Clone, PartialEq)]
struct FileReport {
    checked: u64,
    first_seq: i64,
    last_seq: i64,
    /// The file starts at seq 1, so even its first entry was checked (against the genesis hash).
    from_genesis: bool,
    first_bad: Option<BadEntry>,
}

#[derive(Debug, Clone, PartialEq)]
struct BadEntry {
    seq: i64,
    id: String,
    reason: &'static str,
    line: usize,
    raw: String,
    /// For a gap: the sequence numbers that are missing.
    missing: Option<(i64, i64)>,
}

/// Sorts the entries by `seq` and walks the chain. A file that does not start at seq 1 cannot prove its
/// first entry (the predecessor's hash is not in it): that entry is taken as given and the chain is checked
/// from the next one.
#[cfg(test)]
fn check_entries(entries: Vec<FileEntry>) -> Option<FileReport> {
    check_entries_opts(entries, false)
}

/// [`check_entries`]; an export's first entry carries its predecessor's hash (`prev_hash`) and is checked
/// against it, and with `allow_gaps` (a filtered export) so is every entry that follows a gap.
fn check_entries_opts(mut entries: Vec<FileEntry>, allow_gaps: bool) -> Option<FileReport> {
    entries.sort_by_key(|e| e.seq);
    let first = entries.first()?;
    let from_genesis = first.seq == 1;
    let (mut v, rest) = if from_genesis {
        (ChainVerifier::default(), &entries[..])
    } else if let Some(prev) = &first.prev {
        (
            ChainVerifier::resume(first.seq - 1, prev.clone()),
            &entries[..],
        )
    } else {
        (
            ChainVerifier::resume(first.seq, first.hash.clone()),
            &entries[1..],
        )
    };
    let mut first_bad = None;
    let first_checked = !from_genesis && first.prev.is_some();
    for e in rest {
        let expected = v.last_seq() + 1;
        if allow_gaps && e.seq > expected {
            if let Some(prev) = &e.prev {
                let checked = v.checked;
                v = ChainVerifier::resume(e.seq - 1, prev.clone());
                v.checked = checked;
            }
        }
        if let Err(b) = v.push(e.seq, &e.entry, &e.hash) {
            first_bad = Some(BadEntry {
                seq: b.seq,
                id: b.id,
                reason: b.reason,
                line: e.line,
                raw: e.raw.clone(),
                missing: (e.seq > expected).then_some((expected, e.seq - 1)),
            });
            break;
        }
    }
    Some(FileReport {
        checked: v.checked,
        first_seq: first.seq,
        last_seq: entries.last().map_or(first.seq, |e| e.seq),
        from_genesis: from_genesis || first_checked,
        first_bad,
    })
}

fn verify_file(
    file: &str,
    tenant_flag: Option<&str>,
    allow_gaps: bool,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            ApiError::validation("invalid_audit_file", format!("cannot read stdin: {e}"))
        })?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            ApiError::validation("invalid_audit_file", format!("cannot read {file}: {e}"))
        })?
    };
    // Offline: the configured tenant is only a fallback for lines without tenant_id; a broken config file
    // must not stop a verification that does not need it.
    let configured = if tenant_flag.is_none() {
        Settings::resolve(None)
            .ok()
            .and_then(|s| s.tenant_id.value.clone())
    } else {
        None
    };
    let tenant = tenant_flag.map(str::to_owned).or(configured);
    let entries = if looks_like_csv(&text) {
        parse_csv(&text, tenant.as_deref())?
    } else {
        parse_file(&text, tenant.as_deref())?
    };
    let Some(report) = check_entries_opts(entries, allow_gaps) else {
        return Err(ApiError::validation(
            "invalid_audit_file",
            format!("{file} holds no audit entries"),
        ));
    };
    let note = (!report.from_genesis).then(|| {
        format!(
            "the file starts at seq {0}, not 1: entry {0} cannot be checked against its predecessor \
             (not in the file) and is taken as given; the chain is verified from seq {1} on",
            report.first_seq,
            report.first_seq + 1
        )
    });
    // Every hash covers the tenant id; a wrong --tenant-id fails the very first checked entry.
    let hint = report
        .first_bad
        .as_ref()
        .filter(|b| {
            report.checked == 0
                && serde_json::from_str::<Value>(&b.raw)
                    .is_ok_and(|v| !v.get("tenant_id").is_some_and(Value::is_string))
        })
        .map(|_| {
            format!(
                "the lines carry no tenant_id and every hash covers it: check that tenant '{}' is right \
                 (--tenant-id)",
                tenant.as_deref().unwrap_or("")
            )
        });
    if global.json {
        let mut out = Map::new();
        out.insert("valid".into(), json!(report.first_bad.is_none()));
        out.insert("entries_checked".into(), json!(report.checked));
        out.insert("first_seq".into(), json!(report.first_seq));
        out.insert("last_seq".into(), json!(report.last_seq));
        out.insert("from_genesis".into(), json!(report.from_genesis));
        out.insert(
            "first_bad".into(),
            report.first_bad.as_ref().map_or(Value::Null, |b| {
                let entry: Value = serde_json::from_str(&b.raw).unwrap_or(Value::Null);
                json!({
                    "seq": b.seq,
                    "id": b.id,
                    "reason": b.reason,
                    "line": b.line,
                    "missing": b.missing.map(|(a, z)| json!({"from_seq": a, "to_seq": z})),
                    "entry": entry,
                })
            }),
        );
        out.insert("note".into(), json!(note));
        if let Some(h) = &hint {
            out.insert("hint".into(), json!(h));
        }
        print_json(&Value::Object(out));
    } else {
        let mut pairs = vec![
            ("file", cell(file)),
            ("valid", report.first_bad.is_none().to_string()),
            ("entries_checked", report.checked.to_string()),
            (
                "seq_range",
                format!("{}-{}", report.first_seq, report.last_seq),
            ),
        ];
        if let Some(b) = &report.first_bad {
            pairs.push(("first_bad.seq", b.seq.to_string()));
            pairs.push(("first_bad.id", cell(&b.id)));
            pairs.push(("first_bad.line", b.line.to_string()));
            pairs.push(("first_bad.reason", b.reason.to_owned()));
            if let Some((a, z)) = b.missing {
                let range = if a == z {
                    format!("seq {a}")
                } else {
                    format!("seq {a}-{z}")
                };
                pairs.push(("first_bad.missing", range));
            }
        }
        let mut text = key_values(&pairs);
        if let Some(b) = &report.first_bad {
            text.push_str(&format!("first_bad.entry: {}\n", cell(&b.raw)));
        }
        if let Some(n) = &note {
            text.push_str(&format!("note: {n}\n"));
        }
        if let Some(h) = &hint {
            text.push_str(&format!("hint: {h}\n"));
        }
        print_raw(&text);
    }
    match &report.first_bad {
        None => Ok(()),
        Some(b) => Err(chain_broken(&b.seq.to_string(), &b.id, b.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaivault_core::audit::GENESIS;

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            id: format!("log_{i}"),
            tenant_id: "tnt_default".into(),
            timestamp: 1_776_967_200_123_456 + i,
            action: "read".into(),
            identity_type: "user".into(),
            identity_id: "user:a@b".into(),
            secret_path: Some(format!("a/{i}")),
            source_ip: Some("127.0.0.1".into()),
            user_agent: None,
            success: true,
            status: 200,
            error_code: None,
            duration_ms: 3,
            request_id: format!("req_{i}"),
            extra_data: json!({"version": i, "z": "é\"\\\u{1}", "a": [1, true, null]}).to_string(),
        }
    }

    /// The entry as `GET /v1/audit/logs` renders it (see `entry_json` in the server).
    fn render(seq: i64, e: &AuditEntry, hash: &[u8]) -> Value {
        let extra: Value = serde_json::from_str(&e.extra_data).unwrap_or_else(|_| json!({}));
        json!({
            "id": e.id, "timestamp": time_fmt::rfc3339(e.timestamp), "action": e.action,
            "identity_type": e.identity_type, "identity_id": e.identity_id, "secret_path": e.secret_path,
            "source_ip": e.source_ip, "user_agent": e.user_agent, "success": e.success, "status": e.status,
            "error_code": e.error_code, "duration_ms": e.duration_ms, "request_id": e.request_id,
            "extra_data": extra, "seq": seq,
            "hash": hash.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        })
    }

    fn file(n: i64) -> Vec<String> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|i| {
                let e = entry(i);
                let h = e.chain_hash(i, &prev);
                prev = h.to_vec();
                render(i, &e, &h).to_string()
            })
            .collect()
    }

    fn check(lines: &[String]) -> FileReport {
        let entries = parse_file(&lines.join("\n"), Some("tnt_default")).unwrap();
        check_entries(entries).unwrap()
    }

    #[test]
    fn round_trip_is_exact() {
        let lines = file(1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let (seq, e, _) = entry_from_json(&v, Some("tnt_default")).unwrap();
        assert_eq!(seq, 1);
        assert_eq!(e, entry(1));
    }

    #[test]
    fn detects_edit_removal_swap() {
        let lines = file(6);
        let r = check(&lines);
        assert_eq!(r.first_bad, None);
        assert_eq!(r.checked, 6);
        assert!(r.from_genesis);

        let mut edited = lines.clone();
        edited[2] = edited[2].replace("user:a@b", "user:mallory");
        assert_eq!(check(&edited).first_bad.unwrap().seq, 3);

        let mut removed = lines.clone();
        removed.remove(3);
        let b = check(&removed).first_bad.unwrap();
        assert_eq!((b.seq, b.missing), (5, Some((4, 4))));

        // Swap the contents of lines 2 and 4 but keep their seq.
        let mut swapped = lines.clone();
        let mut a: Value = serde_json::from_str(&lines[1]).unwrap();
        let mut c: Value = serde_json::from_str(&lines[3]).unwrap();
        std::mem::swap(&mut a, &mut c);
        a["seq"] = json!(2);
        c["seq"] = json!(4);
        swapped[1] = a.to_string();
        swapped[3] = c.to_string();
        assert_eq!(check(&swapped).first_bad.unwrap().seq, 2);

        // File order does not matter; seq does.
        let mut reversed = lines.clone();
        reversed.reverse();
        assert_eq!(check(&reversed).first_bad, None);
    }

    #[test]
    fn partial_file_trusts_its_first_entry() {
        let lines = file(6);
        let r = check(&lines[2..]);
        assert_eq!(r.first_bad, None);
        assert!(!r.from_genesis);
        assert_eq!((r.first_seq, r.last_seq, r.checked), (3, 6, 3));
        let mut edited = lines[2..].to_vec();
        edited[1] = edited[1].replace("user:a@b", "user:mallory");
        assert_eq!(check(&edited).first_bad.unwrap().seq, 4);
    }

    #[test]
    fn wrong_tenant_fails_first_entry() {
        let lines = file(2);
        let entries = parse_file(&lines.join("\n"), Some("tnt_other")).unwrap();
        assert_eq!(check_entries(entries).unwrap().first_bad.unwrap().seq, 1);
        assert!(parse_file(&lines[0], None).is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn times() {
        assert_eq!(time_value("--from", "2026-01-01").unwrap(), "2026-01-01");
        assert!(time_value("--from", "24h").unwrap().ends_with('Z'));
        assert_eq!(time_value("--from", "yesterday").unwrap_err().exit, 5);
    }
}
