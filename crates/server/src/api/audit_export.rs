//! `/v1/audit/export` and `/v1/audit/exports`: export jobs that stream a tenant's audit chain (optionally
//! filtered) as JSONL or CSV to S3, GCS or Azure Blob through `object_store`, with a manifest that anchors
//! the exported range in the chain (first/last seq and hashes) so an auditor can verify it offline.
//!
//! Creating an export needs `audit:export` and read access to the credentials secret; listing and
//! reading jobs need `audit:export` or `audit:read`. The job itself runs in [`crate::audit_jobs`].

use super::audit::parse_filters;
use super::ctx::Ctx;
use super::cursor;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam, QueryMap};
use crate::audit_jobs::{self, Destination, DestinationKind, ExportFormat};
use crate::authz::Permission;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scaivault_core::time_fmt::{now_micros, opt_rfc3339, rfc3339};
use scaivault_core::{id, path as spath, scope, Error, ErrorCode, FieldError};
use scaivault_store::{AuditQuery, ExportRow};
use serde_json::{json, Map, Value};

pub const AUDIT_EXPORT: &str = "audit:export";

/// Listing cursor kind: resumes after (created_at, id).
const EXPORTS_CURSOR: &str = "x1:";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/export", post(create))
        .route("/v1/audit/exports", get(list))
        .route("/v1/audit/exports/{id}", get(get_one))
}

/// The list filters an export accepts in `filters` (the same names as `GET /v1/audit/logs`).
const FILTER_KEYS: [&str; 7] = [
    "action",
    "identity_id",
    "identity_type",
    "path_prefix",
    "success",
    "source_ip",
    "request_id",
];

fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.into(),
    }
}

fn opt_text(
    o: &Map<String, Value>,
    key: &str,
    label: &str,
    max: usize,
    errs: &mut Vec<FieldError>,
) -> Option<String> {
    match o.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(_) => {
            errs.push(field(
                label,
                format!("must be a string of at most {max} characters"),
            ));
            None
        }
    }
}

/// A validated export request.
pub struct ExportSpec {
    pub format: ExportFormat,
    pub query: AuditQuery,
    /// `from`, `to` and `filters` as given, for the job's record.
    pub filters: Value,
    pub destination: Destination,
}

/// Validates the body of `POST /v1/audit/export`; every problem is reported at once as `validation_error`.
pub fn parse_spec(body: &Map<String, Value>, tenant: &str) -> Result<ExportSpec, Error> {
    let mut errs = Vec::new();
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "from" | "to" | "format" | "filters" | "destination"
        ) {
            errs.push(field(k, "unknown field"));
        }
    }
    let format = match body.get("format") {
        None | Some(Value::Null) => Some(ExportFormat::Jsonl),
        Some(Value::String(s)) if s == "jsonl" => Some(ExportFormat::Jsonl),
        Some(Value::String(s)) if s == "csv" => Some(ExportFormat::Csv),
        Some(_) => {
            errs.push(field("format", "must be jsonl or csv"));
            None
        }
    };
    // The filters become the query string of `GET /v1/audit/logs`, so both validate the same way.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for k in ["from", "to"] {
        match body.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => pairs.push((k.to_owned(), s.clone())),
            Some(_) => errs.push(field(k, "must be an RFC 3339 time or a date (YYYY-MM-DD)")),
        }
    }
    match body.get("filters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(f)) => {
            for (k, v) in f {
                let label = format!("filters.{k}");
                if !FILTER_KEYS.contains(&k.as_str()) {
                    errs.push(field(&label, "unknown filter"));
                    continue;
                }
                let text = match v {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(items) if k == "action" => {
                        let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                        match names {
                            Some(n) => n.join(","),
                            None => {
                                errs.push(field(&label, "must be action names"));
                                continue;
                            }
                        }
                    }
                    _ => {
                        errs.push(field(&label, "must be a string"));
                        continue;
                    }
                };
                pairs.push((k.clone(), text));
            }
        }
        Some(_) => errs.push(field("filters", "must be an object")),
    }
    let query = match parse_filters(&QueryMap(pairs), tenant) {
        Ok(mut q) => {
            q.limit = 0;
            Some(q)
        }
        Err(e) => {
            errs.push(field("filters", e.message));
            None
        }
    };
    let destination = match body.get("destination") {
        Some(Value::Object(d)) => parse_destination(d, &mut errs),
        _ => {
            errs.push(field(
                "destination",
                "is required (an object with type, bucket, credentials_path)",
            ));
            None
        }
    };
    match (format, query, destination) {
        (Some(format), Some(query), Some(destination)) if errs.is_empty() => {
            let mut filters = Map::new();
            for k in ["from", "to", "filters"] {
                if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                    filters.insert(k.to_owned(), v.clone());
                }
            }
            Ok(ExportSpec {
                format,
                query,
                filters: Value::Object(filters),
                destination,
            })
        }
        _ => Err(Error::validation(errs)),
    }
}

fn parse_destination(d: &Map<String, Value>, errs: &mut Vec<FieldError>) -> Option<Destination> {
    let before = errs.len();
    for k in d.keys() {
        if !matches!(
            k.as_str(),
            "type" | "bucket" | "prefix" | "credentials_path" | "endpoint" | "region"
        ) {
            errs.push(field(&format!("destination.{k}"), "unknown field"));
        }
    }
    let kind = match d.get("type").and_then(Value::as_str) {
        Some("s3") => Some(DestinationKind::S3),
        Some("gcs") => Some(DestinationKind::Gcs),
        Some("azure_blob") => Some(DestinationKind::AzureBlob),
        _ => {
            errs.push(field("destination.type", "must be s3, gcs or azure_blob"));
            None
        }
    };
    let bucket = opt_text(d, "bucket", "destination.bucket", 255, errs);
    if bucket.is_none() {
        errs.push(field("destination.bucket", "is required"));
    }
    if let Some(b) = &bucket {
        let ok = b.len() >= 3
            && b.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
            });
        if !ok {
            errs.push(field(
                "destination.bucket",
                "must be 3-255 characters of a-z 0-9 - . _",
            ));
        }
    }
    let prefix = opt_text(d, "prefix", "destination.prefix", 512, errs).unwrap_or_default();
    if prefix.starts_with('/') || prefix.split('/').any(|s| s == "." || s == "..") {
        errs.push(field(
            "destination.prefix",
            "must not start with / or contain . or .. segments",
        ));
    }
    let credentials_path = opt_text(
        d,
        "credentials_path",
        "destination.credentials_path",
        512,
        errs,
    );
    match &credentials_path {
        None => errs.push(field(
            "destination.credentials_path",
            "is required: the path of a secret holding the upload credentials",
        )),
        Some(p) => {
            if let Err(e) = spath::validate(p) {
                errs.push(field("destination.credentials_path", e.message));
            }
        }
    }
    let endpoint = opt_text(d, "endpoint", "destination.endpoint", 512, errs);
    if let Some(e) = &endpoint {
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            errs.push(field(
                "destination.endpoint",
                "must be an http:// or https:// URL",
            ));
        }
        if kind == Some(DestinationKind::Gcs) {
            errs.push(field(
                "destination.endpoint",
                "is only supported for s3 and azure_blob",
            ));
        }
    }
    let region = opt_text(d, "region", "destination.region", 64, errs);
    if errs.len() > before {
        return None;
    }
    Some(Destination {
        kind: kind?,
        bucket: bucket?,
        prefix,
        credentials_path: credentials_path?,
        endpoint,
        region,
    })
}

fn require_list_scope(ctx: &Ctx) -> Result<(), Error> {
    let granted = &ctx.principal.scopes;
    if scope::allows(granted, AUDIT_EXPORT) || scope::allows(granted, super::audit::AUDIT_READ) {
        Ok(())
    } else {
        Err(Error::insufficient_scope(AUDIT_EXPORT))
    }
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("export_created", None);
    ctx.principal.require_scope(AUDIT_EXPORT)?;
    let body = body.require()?;
    let spec = parse_spec(&body, &ctx.tenant)?;
    let dest = &spec.destination;
    ctx.audit_extra("format", json!(spec.format.as_str()));
    ctx.audit_extra("destination_type", json!(dest.kind.as_str()));
    ctx.audit_extra("bucket", json!(dest.bucket));
    ctx.audit_extra("credentials_path", json!(dest.credentials_path));
    // Using the credentials is reading them: the caller must be allowed to read that secret.
    state
        .authz
        .check(&ctx, Permission::Read, &dest.credentials_path)?;
    let creds = audit_jobs::load_credentials(&state, &ctx.tenant, &dest.credentials_path).await?;
    let target = audit_jobs::build_target(dest, &creds)?;
    let estimated = state.store.audit_count_matching(&spec.query).await?;
    let now = now_micros();
    let export_id = id::random("exp_", 20);
    ctx.audit_extra("export_id", json!(export_id));
    let row = ExportRow {
        tenant_id: ctx.tenant.clone(),
        id: export_id.clone(),
        status: "pending".into(),
        format: spec.format.as_str().into(),
        filters: spec.filters.to_string(),
        destination: dest.to_json().to_string(),
        created_by: ctx.principal.identity_id.clone(),
        created_at: now,
        heartbeat_at: now,
        estimated_records: estimated,
        object_keys: "[]".into(),
        ..ExportRow::default()
    };
    state.store.insert_export(&row).await?;
    audit_jobs::spawn_export(state.clone(), row, spec.query, target, creds);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "export_id": export_id,
            "status": "pending",
            "estimated_records": estimated,
            "format": spec.format.as_str(),
            "created_at": rfc3339(now),
        })),
    )
        .into_response())
}

/// The public view of an export job.
pub fn export_json(e: &ExportRow) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let keys = parse(&e.object_keys);
    let manifest = if e.status == "completed" {
        json!({
            "object_keys": keys,
            "manifest_key": keys.get(0).and_then(Value::as_str).map(audit_jobs::manifest_key),
            "record_count": e.record_count,
            "byte_size": e.byte_size,
            "sha256": e.sha256,
            "chain": {
                "first_seq": e.first_seq,
                "first_prev_hash": e.first_prev_hash,
                "last_seq": e.last_seq,
                "last_hash": e.last_hash,
            },
        })
    } else {
        Value::Null
    };
    json!({
        "export_id": e.id,
        "status": e.status,
        "format": e.format,
        "filters": parse(&e.filters),
        "destination": parse(&e.destination),
        "estimated_records": e.estimated_records,
        "records_exported": e.record_count,
        "created_by": e.created_by,
        "created_at": rfc3339(e.created_at),
        "started_at": opt_rfc3339(e.started_at),
        "completed_at": opt_rfc3339(e.completed_at),
        "manifest": manifest,
        "error": e.error,
    })
}

async fn get_one(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(export_id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("audit_query", None);
    ctx.audit_extra("export_id", json!(export_id));
    require_list_scope(&ctx)?;
    let found = if export_id.len() <= 64 {
        state.store.get_export(&ctx.tenant, &export_id).await?
    } else {
        None
    };
    let Some(e) = found else {
        let shown: String = export_id.chars().take(64).collect();
        return Err(ApiError(
            Error::new(ErrorCode::NotFound, format!("Export '{shown}' not found"))
                .with_details(json!({ "export_id": shown })),
        ));
    };
    Ok(Json(export_json(&e)).into_response())
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("audit_query", None);
    require_list_scope(&ctx)?;
    let limit = q.int("limit", 1, 1000)?.unwrap_or(100);
    let before = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let pos = cursor::decode(EXPORTS_CURSOR, c)?;
            let bad = || {
                Error::new(
                    ErrorCode::InvalidCursor,
                    "Cursor is malformed; pass back the cursor of the previous page",
                )
            };
            let (at, id) = pos.split_once(':').ok_or_else(bad)?;
            Some((at.parse::<i64>().map_err(|_| bad())?, id.to_owned()))
        }
    };
    let mut rows = state
        .store
        .list_exports(&ctx.tenant, before, limit + 1)
        .await?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if has_more {
        rows.last()
            .map(|r| cursor::encode(EXPORTS_CURSOR, &format!("{}:{}", r.created_at, r.id)))
    } else {
        None
    };
    Ok(Json(json!({
        "exports": rows.iter().map(export_json).collect::<Vec<_>>(),
        "cursor": next,
        "has_more": has_more,
    }))
    .into_response())
}
