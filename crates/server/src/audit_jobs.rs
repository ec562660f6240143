//! Background work of the audit trail: export jobs (stream the chain to object storage), the sweeper that
//! fails jobs whose runner died, and the retention pruner.
//!
//! An export reads the tenant's chain in pages up to the head it saw when it started, renders each page
//! (JSONL or CSV, every entry with its `prev_hash` and `hash`), feeds a SHA-256 and uploads with a
//! multipart upload in fixed-size parts, at most two in flight: memory stays flat whatever the size.
//! Exports do not resume: a job whose heartbeat stops (the server was killed or restarted) is marked
//! `failed` by the sweeper and the half-written multipart upload is left to the bucket's lifecycle rules.

use crate::api::audit::entry_json;
use crate::api::error::ApiError;
use crate::state::AppState;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, RetryConfig, WriteMultipart};
use scaivault_core::time_fmt::{now_micros, rfc3339};
use scaivault_core::{Error, FieldError};
use scaivault_store::{AuditQuery, ExportRecord, ExportRow};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Entries read from the store per page.
const PAGE: i64 = 2000;
/// Multipart part size (S3's minimum is 5 MiB for every part but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;
/// A running job refreshes its heartbeat this often...
const HEARTBEAT: Duration = Duration::from_secs(2);
/// ...and one whose heartbeat is older than this is failed by the sweeper.
const STALE_MICROS: i64 = 10_000_000;
/// How often a running job records its progress (`records_exported`).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Most entries the pruner deletes per transaction.
const PRUNE_BATCH: i64 = 5000;

pub const CSV_COLUMNS: [&str; 18] = [
    "seq",
    "id",
    "tenant_id",
    "timestamp",
    "action",
    "identity_type",
    "identity_id",
    "secret_path",
    "source_ip",
    "user_agent",
    "success",
    "status",
    "error_code",
    "duration_ms",
    "request_id",
    "extra_data",
    "prev_hash",
    "hash",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    S3,
    Gcs,
    AzureBlob,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::S3 => "s3",
            DestinationKind::Gcs => "gcs",
            DestinationKind::AzureBlob => "azure_blob",
        }
    }
}

/// Where an export goes. Holds the credentials' secret path, never the credentials.
#[derive(Debug, Clone)]
pub struct Destination {
    pub kind: DestinationKind,
    pub bucket: String,
    pub prefix: String,
    pub credentials_path: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl Destination {
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind.as_str(),
            "bucket": self.bucket,
            "prefix": self.prefix,
            "credentials_path": self.credentials_path,
            "endpoint": self.endpoint,
            "region": self.region,
        })
    }
}

/// The decrypted credentials secret: a flat JSON object of strings. Wiped from memory when dropped.
pub struct Credentials(Map<String, Value>);

impl Drop for Credentials {
    fn drop(&mut self) {
        for (_, v) in self.0.iter_mut() {
            if let Value::String(s) = v {
                let _ = Zeroizing::new(std::mem::take(s));
            }
        }
    }
}

impl Credentials {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Replaces every credential value in `text` (an error message) with `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in self.0.values() {
            if let Value::String(s) = v {
                if s.len() >= 4 {
                    out = out.replace(s.as_str(), "***");
                }
            }
        }
        out
    }
}

fn cred_error(path: &str, message: impl Into<String>) -> Error {
    let _ = path;
    Error::validation(vec![FieldError {
        field: "destination.credentials_path".to_owned(),
        message: message.into(),
    }])
}

/// Reads and decrypts the credentials secret in the tenant. A missing, deleted or expired secret, or one
/// that is not a JSON object, is a `validation_error` on `destination.credentials_path`.
pub async fn load_credentials(
    state: &AppState,
    tenant: &str,
    path: &str,
) -> Result<Credentials, ApiError> {
    let missing = || {
        cred_error(
            path,
            format!("no readable secret at '{path}' in this tenant (it must hold the upload credentials)"),
        )
    };
    let found = state
        .store
        .get_secret_value(tenant, path, None)
        .await?
        .ok_or_else(missing)?;
    let v = crate::api::secrets::readable_version(path, &found, None, now_micros())
        .map_err(|_| missing())?;
    match crate::api::secrets::decrypt(state, tenant, path, v).await? {
        Value::Object(m) => Ok(Credentials(m)),
        _ => Err(cred_error(path, "the credentials secret must hold a JSON object").into()),
    }
}

/// Builds the object store client for a destination from its credentials (no request is made yet).
pub fn build_target(d: &Destination, c: &Credentials) -> Result<Arc<dyn ObjectStore>, Error> {
    let path = &d.credentials_path;
    let need = |k: &str| {
        c.get(k).ok_or_else(|| {
            cred_error(
                path,
                format!(
                    "the credentials secret lacks '{k}' (needed for {})",
                    d.kind.as_str()
                ),
            )
        })
    };
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    };
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match d.kind {
        DestinationKind::S3 => {
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&d.bucket)
                .with_access_key_id(need("access_key_id")?)
                .with_secret_access_key(need("secret_access_key")?)
                .with_region(
                    d.region
                        .as_deref()
                        .or_else(|| c.get("region"))
                        .unwrap_or("us-east-1"),
                )
                .with_retry(retry);
            if let Some(t) = c.get("session_token") {
                b = b.with_token(t);
            }
            // An S3-compatible store (MinIO, Ceph, moto) is named in the request or, so that a
            // request can stay the documented one, next to its keys in the credentials secret.
            if let Some(e) = d.endpoint.as_deref().or_else(|| c.get("endpoint")) {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        DestinationKind::Gcs => {
            let key = match c.0.get("service_account_key") {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => {
                    return Err(cred_error(
                        path,
                        "the credentials secret lacks 'service_account_key' (needed for gcs)",
                    ))
                }
            };
            object_store::gcp::GoogleCloudStorageBuilder::new()
                .with_bucket_name(&d.bucket)
                .with_service_account_key(key)
                .with_retry(retry)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        DestinationKind::AzureBlob => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(need("account_name")?)
                .with_container_name(&d.bucket)
                .with_retry(retry);
            b = match (c.get("access_key"), c.get("sas_token")) {
                (Some(k), _) => b.with_access_key(k),
                (None, Some(sas)) => {
                    let pairs: Vec<(String, String)> = sas
                        .trim_start_matches('?')
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    b.with_sas_authorization(pairs)
                }
                (None, None) => {
                    return Err(cred_error(
                        path,
                        "the credentials secret lacks 'access_key' or 'sas_token' (needed for azure_blob)",
                    ))
                }
            };
            if let Some(e) = &d.endpoint {
                b = b
                    .with_endpoint(e.clone())
                    .with_allow_http(e.starts_with("http://"));
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
    };
    built.map_err(|e| {
        cred_error(
            path,
            c.scrub(&format!("cannot configure the destination: {e}")),
        )
    })
}

/// The object an export writes: `{prefix}{export_id}.{jsonl|csv}`.
pub fn object_key(prefix: &str, export_id: &str, format: ExportFormat) -> String {
    let sep = if prefix.is_empty() || prefix.ends_with('/') {
        ""
    } else {
        "/"
    };
    format!("{prefix}{sep}{export_id}.{}", format.as_str())
}

/// The manifest written next to the export.
pub fn manifest_key(data_key: &str) -> String {
    format!("{data_key}.manifest.json")
}

pub fn spawn_export(
    state: AppState,
    row: ExportRow,
    query: AuditQuery,
    target: Arc<dyn ObjectStore>,
    creds: Credentials,
) {
    tokio::spawn(async move {
        let mut row = row;
        let export_id = row.id.clone();
        let started = Instant::now();
        // The heartbeat beats on its own, so a slow upload is not mistaken for a dead server.
        let beat = {
            let (store, tenant, id) = (state.store.clone(), row.tenant_id.clone(), row.id.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if let Err(e) = store.touch_export(&tenant, &id, now_micros()).await {
                        tracing::warn!(export_id = %id, error = %e, "audit export heartbeat failed");
                    }
                }
            })
        };
        let outcome = run_export(&state, &mut row, &query, target).await;
        beat.abort();
        match outcome {
            Ok(()) => {
                tracing::info!(
                    export_id = %export_id,
                    records = row.record_count,
                    bytes = row.byte_size,
                    millis = started.elapsed().as_millis() as u64,
                    "audit export completed"
                );
            }
            Err(e) => {
                let msg: String = creds.scrub(&e).chars().take(1000).collect();
                tracing::warn!(export_id = %export_id, error = %msg, "audit export failed");
                row.status = "failed".into();
                row.error = Some(msg);
                row.completed_at = Some(now_micros());
                row.heartbeat_at = now_micros();
                if let Err(e) = state.store.update_export(&row).await {
                    tracing::error!(site = "EX0001", export_id = %export_id, error = %e, "cannot record a failed export");
                }
            }
        }
        drop(creds);
    });
}

/// One rendered line or row per entry.
fn render_page(
    format: ExportFormat,
    page: &[ExportRecord],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match format {
        ExportFormat::Jsonl => {
            for r in page {
                let mut v = entry_json(&r.record);
                v["prev_hash"] = json!(r.prev_hash.as_ref().map(hex::encode));
                serde_json::to_writer(&mut *out, &v).map_err(|e| e.to_string())?;
                out.push(b'\n');
            }
        }
        ExportFormat::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *out);
            for r in page {
                let e = &r.record.entry;
                let opt = |o: &Option<String>| o.clone().unwrap_or_default();
                w.write_record([
                    r.record.seq.to_string(),
                    e.id.clone(),
                    e.tenant_id.clone(),
                    rfc3339(e.timestamp),
                    e.action.clone(),
                    e.identity_type.clone(),
                    e.identity_id.clone(),
                    opt(&e.secret_path),
                    opt(&e.source_ip),
                    opt(&e.user_agent),
                    e.success.to_string(),
                    e.status.to_string(),
                    opt(&e.error_code),
                    e.duration_ms.to_string(),
                    e.request_id.clone(),
                    e.extra_data.clone(),
                    r.prev_hash.as_ref().map(hex::encode).unwrap_or_default(),
                    hex::encode(&r.record.hash),
                ])
                .map_err(|e| e.to_string())?;
            }
            w.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Upload sink: small exports go up in one PUT, larger ones as a multipart upload started once the first
/// part is full.
struct Sink {
    target: Arc<dyn ObjectStore>,
    path: ObjectPath,
    pending: Vec<u8>,
    upload: Option<WriteMultipart>,
}

impl Sink {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), object_store::Error> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() < PART_BYTES {
            return Ok(());
        }
        if self.upload.is_none() {
            let up = self.target.put_multipart(&self.path).await?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(up, PART_BYTES));
        }
        if let Some(w) = self.upload.as_mut() {
            w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            w.write(&self.pending);
            self.pending.clear();
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), object_store::Error> {
        match self.upload.take() {
            None => {
                let body = std::mem::take(&mut self.pending);
                self.target.put(&self.path, PutPayload::from(body)).await?;
            }
            Some(mut w) => {
                w.write(&self.pending);
                w.finish().await?;
            }
        }
        Ok(())
    }

    async fn abort(mut self) {
        if let Some(w) = self.upload.take() {
            let _ = w.abort().await;
        }
    }
}

async fn run_export(
    state: &AppState,
    row: &mut ExportRow,
    query: &AuditQuery,
    target: Arc<dyn ObjectStore>,
) -> Result<(), String> {
    let store = &state.store;
    let format = if row.format == "csv" {
        ExportFormat::Csv
    } else {
        ExportFormat::Jsonl
    };
    let dest: Value = serde_json::from_str(&row.destination).unwrap_or(Value::Null);
    let prefix = dest["prefix"].as_str().unwrap_or("");
    let key = object_key(prefix, &row.id, format);
    let path = ObjectPath::parse(&key).map_err(|e| format!("invalid object key '{key}': {e}"))?;
    row.status = "running".into();
    row.started_at = Some(now_micros());
    row.heartbeat_at = now_micros();
    store.update_export(row).await.map_err(|e| e.to_string())?;

    // A consistent snapshot: the chain up to the head as it is now.
    let head = store
        .audit_head(&row.tenant_id)
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |h| h.0);
    let mut sink = Sink {
        target: target.clone(),
        path: path.clone(),
        pending: Vec::with_capacity(PART_BYTES + 1024 * 1024),
        upload: None,
    };
    let mut sha = Sha256::new();
    let mut bytes: i64 = 0;
    let mut buf = Vec::with_capacity(2 * 1024 * 1024);
    if format == ExportFormat::Csv {
        let mut w = csv::Writer::from_writer(&mut buf);
        w.write_record(CSV_COLUMNS).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())?;
    }
    let mut after = 0i64;
    let mut last_progress = Instant::now();
    let result: Result<(), String> = async {
        loop {
            let page = store
                .audit_export_page(query, after, head, PAGE)
                .await
                .map_err(|e| format!("reading the audit log: {e}"))?;
            if let Some(first) = page.first().filter(|_| row.first_seq.is_none()) {
                row.first_seq = Some(first.record.seq);
                row.first_prev_hash = first.prev_hash.as_ref().map(hex::encode);
            }
            if let Some(last) = page.last() {
                after = last.record.seq;
                row.last_seq = Some(last.record.seq);
                row.last_hash = Some(hex::encode(&last.record.hash));
            }
            row.record_count += i64::try_from(page.len()).unwrap_or(0);
            render_page(format, &page, &mut buf)?;
            sha.update(&buf);
            bytes += i64::try_from(buf.len()).unwrap_or(0);
            sink.write(&buf)
                .await
                .map_err(|e| format!("uploading to {}: {e}", row_dest(row)))?;
            buf.clear();
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                row.heartbeat_at = now_micros();
                row.byte_size = bytes;
                store.update_export(row).await.map_err(|e| e.to_string())?;
            }
            if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        sink.abort().await;
        return Err(e);
    }
    sink.finish()
        .await
        .map_err(|e| format!("uploading to {}: {e}", row_dest(row)))?;
    row.byte_size = bytes;
    row.sha256 = Some(hex::encode(sha.finalize()));
    row.object_keys = json!([key]).to_string();
    row.status = "completed".into();
    row.completed_at = Some(now_micros());
    row.heartbeat_at = now_micros();
    // The manifest next to the data, so the bucket alone is enough for an auditor.
    let manifest = crate::api::audit_export::export_json(row);
    let mpath = ObjectPath::parse(manifest_key(&key)).map_err(|e| e.to_string())?;
    let mbody = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    target
        .put(&mpath, PutPayload::from(mbody))
        .await
        .map_err(|e| format!("uploading the manifest to {}: {e}", row_dest(row)))?;
    store.update_export(row).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn row_dest(row: &ExportRow) -> String {
    let d: Value = serde_json::from_str(&row.destination).unwrap_or(Value::Null);
    format!(
        "{} bucket '{}'",
        d["type"].as_str().unwrap_or("?"),
        d["bucket"].as_str().unwrap_or("?")
    )
}

/// Starts the sweeper and, when a retention is set, the pruner.
pub fn start(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            let now = now_micros();
            match s
                .store
                .fail_stale_exports(
                    now - STALE_MICROS,
                    now,
                    "the export was interrupted (its server stopped); create a new export",
                )
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(exports = n, "marked interrupted audit exports failed"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep audit exports"),
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
    if let Some(secs) = state.settings.audit_retention_secs {
        let s = state.clone();
        let every = Duration::from_secs(u64::try_from(secs / 4).unwrap_or(1).clamp(1, 300));
        tokio::spawn(async move {
            loop {
                prune_once(&s, secs).await;
                tokio::time::sleep(every).await;
            }
        });
    }
}

/// Deletes every tenant's entries older than the retention, oldest first, moving each chain's anchor.
pub async fn prune_once(state: &AppState, retention_secs: i64) {
    let tenants = match state.store.audit_tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "audit retention: cannot list tenants");
            return;
        }
    };
    let cutoff = now_micros() - retention_secs.saturating_mul(1_000_000);
    for t in tenants {
        let mut total = 0u64;
        loop {
            match state
                .store
                .audit_prune(&t, cutoff, PRUNE_BATCH, now_micros())
                .await
            {
                Ok(n) => {
                    total += n;
                    if n < u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant = %t, error = %e, "audit retention: prune failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(tenant = %t, deleted = total, "audit retention: pruned old entries");
        }
    }
}
