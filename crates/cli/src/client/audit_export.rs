//! `scaivault audit export …` (create an export job, optionally waiting for it) and
//! `scaivault audit exports [list|get ID]`.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

use super::audit::{time_value, TimeArgs};
use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{key_values, print_json, print_raw, value_cell, Table};
use super::GlobalOpts;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// File format: jsonl (verifiable with `audit verify --file`) or csv
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
    pub format: String,
    /// Destination type
    #[arg(long, value_name = "TYPE", value_parser = ["s3", "gcs", "azure_blob"])]
    pub destination: String,
    /// Bucket (S3, GCS) or container (Azure Blob)
    #[arg(long)]
    pub bucket: String,
    /// Key prefix inside the bucket, e.g. scaivault/2026-04/
    #[arg(long)]
    pub prefix: Option<String>,
    /// Service endpoint URL (S3-compatible stores such as MinIO, or an Azure Blob endpoint)
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Region (S3)
    #[arg(long)]
    pub region: Option<String>,
    /// Path of the ScaiVault secret holding the upload credentials
    #[arg(long, value_name = "PATH")]
    pub credentials_path: String,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Only these actions (comma-separated or repeated)
    #[arg(long, value_name = "ACTION", value_delimiter = ',')]
    pub action: Vec<String>,
    /// Only this identity
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
    /// Only the entries of this request id
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Wait until the export completes (exit 1 if it fails) and print its manifest
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 3600, requires = "wait")]
    pub wait_timeout: u64,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ExportsArgs {
    #[command(subcommand)]
    pub cmd: Option<ExportsCommand>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ExportsCommand {
    /// List export jobs, newest first (the default)
    List {
        /// Page size (1-1000)
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Continue from the cursor of a previous page
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one export job: status and manifest
    Get {
        /// Export id (exp_…)
        id: String,
    },
}

fn body_of(a: &ExportArgs) -> Result<Value, ApiError> {
    let mut dest = Map::new();
    dest.insert("type".into(), json!(a.destination));
    dest.insert("bucket".into(), json!(a.bucket));
    dest.insert("credentials_path".into(), json!(a.credentials_path));
    for (k, v) in [
        ("prefix", &a.prefix),
        ("endpoint", &a.endpoint),
        ("region", &a.region),
    ] {
        if let Some(v) = v {
            dest.insert(k.into(), json!(v));
        }
    }
    let mut filters = Map::new();
    let actions: Vec<&str> = a
        .action
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if !actions.is_empty() {
        filters.insert("action".into(), json!(actions.join(",")));
    }
    for (k, v) in [
        ("identity_id", &a.identity_id),
        ("identity_type", &a.identity_type),
        ("path_prefix", &a.path_prefix),
        ("source_ip", &a.source_ip),
        ("request_id", &a.request_id),
    ] {
        if let Some(v) = v {
            filters.insert(k.into(), json!(v));
        }
    }
    if let Some(s) = a.success {
        filters.insert("success".into(), json!(s));
    }
    let mut body = Map::new();
    body.insert("format".into(), json!(a.format));
    if let Some(f) = &a.time.from {
        body.insert("from".into(), json!(time_value("--from", f)?));
    }
    if let Some(t) = &a.time.to {
        body.insert("to".into(), json!(time_value("--to", t)?));
    }
    if !filters.is_empty() {
        body.insert("filters".into(), Value::Object(filters));
    }
    body.insert("destination".into(), Value::Object(dest));
    Ok(Value::Object(body))
}

pub async fn export(a: &ExportArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let body = body_of(a)?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    let url = client.url(&["v1", "audit", "export"], &[])?;
    let created = client.post(url, &body).await?.body;
    if !a.wait {
        if global.json {
            print_json(&created);
        } else {
            print_raw(&key_values(&[
                ("export_id", value_cell(created.get("export_id"))),
                ("status", value_cell(created.get("status"))),
                (
                    "estimated_records",
                    value_cell(created.get("estimated_records")),
                ),
            ]));
        }
        return Ok(());
    }
    let id = created
        .get("export_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(a.wait_timeout);
    let mut pause = Duration::from_millis(100);
    loop {
        let url = client.url(&["v1", "audit", "exports", &id], &[])?;
        let job = client.get(url).await?.body;
        match job.get("status").and_then(Value::as_str) {
            Some("completed") => {
                show(&job, global);
                return Ok(());
            }
            Some("failed") => {
                show(&job, global);
                return Err(ApiError::general(
                    "export_failed",
                    format!(
                        "export {id} failed: {}",
                        job.get("error").and_then(Value::as_str).unwrap_or("")
                    ),
                ));
            }
            _ if Instant::now() >= deadline => {
                return Err(ApiError::general(
                    "export_timeout",
                    format!(
                        "export {id} did not finish within {} s (still {})",
                        a.wait_timeout,
                        value_cell(job.get("status"))
                    ),
                ));
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn show(job: &Value, global: &GlobalOpts) {
    if global.json {
        print_json(job);
        return;
    }
    let m = job.get("manifest").filter(|m| m.is_object());
    let chain = m.and_then(|m| m.get("chain"));
    let mut pairs = vec![
        ("export_id", value_cell(job.get("export_id"))),
        ("status", value_cell(job.get("status"))),
        ("format", value_cell(job.get("format"))),
        ("created_at", value_cell(job.get("created_at"))),
        ("completed_at", value_cell(job.get("completed_at"))),
        (
            "estimated_records",
            value_cell(job.get("estimated_records")),
        ),
        ("records_exported", value_cell(job.get("records_exported"))),
    ];
    if let Some(m) = m {
        let keys = m
            .get("object_keys")
            .and_then(Value::as_array)
            .map(|k| {
                k.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        pairs.push(("object_keys", keys));
        pairs.push(("manifest_key", value_cell(m.get("manifest_key"))));
        pairs.push(("byte_size", value_cell(m.get("byte_size"))));
        pairs.push(("sha256", value_cell(m.get("sha256"))));
        for k in ["first_seq", "first_prev_hash", "last_seq", "last_hash"] {
            let label = match k {
                "first_seq" => "chain.first_seq",
                "first_prev_hash" => "chain.first_prev_hash",
                "last_seq" => "chain.last_seq",
                _ => "chain.last_hash",
            };
            pairs.push((label, value_cell(chain.and_then(|c| c.get(k)))));
        }
    }
    if let Some(e) = job.get("error").filter(|e| !e.is_null()) {
        pairs.push(("error", value_cell(Some(e))));
    }
    print_raw(&key_values(&pairs));
}

pub async fn exports(a: &ExportsArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    match &a.cmd {
        Some(ExportsCommand::Get { id }) => {
            if id.is_empty() {
                return Err(ApiError::validation(
                    "invalid_argument",
                    "the export id is empty",
                ));
            }
            let url = client.url(&["v1", "audit", "exports", id], &[])?;
            let job = client.get(url).await?.body;
            show(&job, global);
            Ok(())
        }
        None | Some(ExportsCommand::List { .. }) => {
            let mut q = Vec::new();
            if let Some(ExportsCommand::List { limit, cursor }) = &a.cmd {
                if let Some(l) = limit {
                    q.push(("limit", l.to_string()));
                }
                if let Some(c) = cursor {
                    q.push(("cursor", c.clone()));
                }
            }
            let url = client.url(&["v1", "audit", "exports"], &q)?;
            let b = client.get(url).await?.body;
            if global.json {
                print_json(&b);
                return Ok(());
            }
            let mut t = Table::new(&["EXPORT_ID", "STATUS", "FORMAT", "RECORDS", "CREATED_AT"]);
            for e in b
                .get("exports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                t.row(vec![
                    value_cell(e.get("export_id")),
                    value_cell(e.get("status")),
                    value_cell(e.get("format")),
                    value_cell(e.get("records_exported")),
                    value_cell(e.get("created_at")),
                ]);
            }
            t.print();
            if let Some(c) = b.get("cursor").and_then(Value::as_str) {
                print_raw(&format!("next cursor: {c}\n"));
            }
            Ok(())
        }
    }
}
