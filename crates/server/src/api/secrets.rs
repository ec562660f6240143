//! `/v1/secrets`: write, read, metadata, versions, delete, restore, list.
//! Sub-resources are path suffixes (`…/metadata`, `…/versions`, `…/restore`), so one wildcard route
//! per method dispatches on the suffix.

use super::ctx::Ctx;
use super::cursor;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam, QueryMap};
use super::view;
use crate::authz::Permission;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use scaivault_core::secret::{self, Metadata, SecretType};
use scaivault_core::time_fmt::{now_micros, rfc3339};
use scaivault_core::{duration, path as spath, Error, ErrorCode, FieldError};
use scaivault_crypto::{open_value, seal_value};
use scaivault_store::{
    day_of, ListQuery, OpOutcome, PutSecret, SecretRow, UpdateMetadata, VersionRow, WriteOp,
};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/secrets", get(list)).route(
        "/v1/secrets/{*rest}",
        get(get_any)
            .put(write)
            .delete(delete)
            .patch(patch_any)
            .post(super::batch::post_any),
    )
}

fn split_suffix<'a>(rest: &'a str, suffix: &str) -> Option<&'a str> {
    rest.strip_suffix(suffix).and_then(|p| p.strip_suffix('/'))
}

async fn get_any(
    state: State<AppState>,
    ctx: Ctx,
    PathParam(rest): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    if let Some(path) = split_suffix(&rest, "versions") {
        return versions(state, ctx, path).await;
    }
    if let Some(path) = split_suffix(&rest, "metadata") {
        return read_metadata(state, ctx, path).await;
    }
    read(state, ctx, &rest, q).await
}

async fn patch_any(
    state: State<AppState>,
    ctx: Ctx,
    PathParam(rest): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    match split_suffix(&rest, "metadata") {
        Some(path) => update_metadata(state, ctx, path, body).await,
        None => Err(Error::new(
            ErrorCode::MethodNotAllowed,
            "PATCH is only allowed on /v1/secrets/{path}/metadata",
        )
        .into()),
    }
}

/// Validates the path and asks the authoriser; every single-secret handler starts here.
pub fn authorize(state: &AppState, ctx: &Ctx, perm: Permission, path: &str) -> Result<(), Error> {
    spath::validate(path)?;
    state.authz.check(ctx, perm, path)
}

pub async fn decrypt(
    state: &AppState,
    tenant: &str,
    path: &str,
    v: &VersionRow,
) -> ApiResult<Value> {
    let plain = open(state, tenant, path, v).await?;
    serde_json::from_slice(&plain).map_err(|e| ApiError::internal("CR0002", e))
}

/// The decrypted value of a version: JSON text, as it was sealed.
pub async fn open(
    state: &AppState,
    tenant: &str,
    path: &str,
    v: &VersionRow,
) -> ApiResult<Zeroizing<Vec<u8>>> {
    let key = state.keys.tenant_key(tenant).await?;
    open_value(&key, tenant, path, v.version, &v.sealed)
        .map_err(|e| ApiError::internal("CR0001", e))
}

/// Validated, not parsed: a decrypted value goes out as the JSON text it was sealed as.
pub fn valid_json(plain: &[u8]) -> Result<&RawValue, ApiError> {
    serde_json::from_slice(plain).map_err(|e| ApiError::internal("CR0002", e))
}

/// Decides which version a read gets, or why it gets none.
pub fn readable_version<'a>(
    path: &str,
    found: &'a (SecretRow, Option<VersionRow>),
    requested: Option<i64>,
    now: i64,
) -> Result<&'a VersionRow, Error> {
    let (s, v) = found;
    if s.deleted_at.is_some() {
        return Err(Error::secret_not_found(path));
    }
    if let Some(exp) = s.expires_at.filter(|e| *e <= now) {
        return Err(Error::new(
            ErrorCode::SecretExpired,
            format!("Secret '{path}' expired at {}", rfc3339(exp)),
        )
        .with_details(json!({ "path": path, "expired_at": rfc3339(exp) })));
    }
    match (v, requested) {
        (Some(v), _) if v.deleted_at.is_none() => Ok(v),
        (_, Some(n)) => Err(Error::version_not_found(path, n)),
        (_, None) => Err(Error::secret_not_found(path)
            .with_details(json!({ "path": path, "reason": "no active version" }))),
    }
}

async fn read(
    State(state): State<AppState>,
    ctx: Ctx,
    path: &str,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("read", Some(path));
    authorize(&state, &ctx, Permission::Read, path)?;
    let requested = q.int("version", 1, i64::MAX)?;
    let found = state
        .store
        .get_secret_value(&ctx.tenant, path, requested)
        .await?
        .ok_or_else(|| Error::secret_not_found(path))?;
    let v = readable_version(path, &found, requested, now_micros())?;
    let plain = open(&state, &ctx.tenant, path, v).await?;
    let data = valid_json(&plain)?;
    ctx.audit_extra("version", json!(v.version));
    Ok(Json(view::secret_read(&found.0, v.version, v.created_at, data)).into_response())
}

async fn live_secret(state: &AppState, tenant: &str, path: &str) -> ApiResult<SecretRow> {
    match state.store.get_secret(tenant, path).await? {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        _ => Err(Error::secret_not_found(path).into()),
    }
}

async fn metadata_json(state: &AppState, tenant: &str, s: &SecretRow) -> ApiResult<Value> {
    let paths = [s.path.clone()];
    let count = state
        .store
        .version_counts(tenant, &paths)
        .await?
        .first()
        .map_or(0, |c| c.1);
    let access = state
        .store
        .access_stats(tenant, &paths, day_of(now_micros()) - 29)
        .await?;
    Ok(view::metadata_view(s, count, access.first()))
}

async fn read_metadata(State(state): State<AppState>, ctx: Ctx, path: &str) -> ApiResult<Response> {
    ctx.audit("read_metadata", Some(path));
    authorize(&state, &ctx, Permission::List, path)?;
    let s = live_secret(&state, &ctx.tenant, path).await?;
    Ok(Json(metadata_json(&state, &ctx.tenant, &s).await?).into_response())
}

async fn versions(State(state): State<AppState>, ctx: Ctx, path: &str) -> ApiResult<Response> {
    ctx.audit("read_versions", Some(path));
    authorize(&state, &ctx, Permission::List, path)?;
    let tenant = &ctx.tenant;
    let s = state
        .store
        .get_secret(tenant, path)
        .await?
        .ok_or_else(|| Error::secret_not_found(path))?;
    let versions = state.store.list_versions(tenant, path).await?;
    let history = state.store.history(tenant, path).await?;
    let opt = scaivault_core::time_fmt::opt_rfc3339;
    Ok(Json(json!({
        "path": path,
        "current_version": s.current_version,
        "max_versions": s.max_versions,
        "deleted": s.deleted_at.is_some(),
        "deleted_at": opt(s.deleted_at),
        "deleted_by": s.deleted_by,
        "recoverable_until": opt(s.recoverable_until),
        "restored_at": opt(s.restored_at),
        "restored_by": s.restored_by,
        "versions": versions.iter().map(|v| json!({
            "version": v.version,
            "state": if v.deleted_at.is_some() { "deleted" } else { "active" },
            "created_at": rfc3339(v.created_at),
            "created_by": v.created_by,
            "deleted_at": opt(v.deleted_at),
            "deleted_by": v.deleted_by,
            "restored_at": opt(v.restored_at),
            "restored_by": v.restored_by,
        })).collect::<Vec<_>>(),
        "history": history.iter().map(|h| json!({
            "action": h.action,
            "version": h.version,
            "identity_id": h.identity_id,
            "at": rfc3339(h.at),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// A validated write request.
#[derive(Debug)]
pub struct WriteRequest {
    pub data: Vec<u8>,
    pub secret_type: SecretType,
    pub metadata: Option<Metadata>,
    pub max_versions: Option<i64>,
    pub expires_in: Option<i64>,
    pub rotation_policy_id: Option<String>,
    pub cas: Option<i64>,
}

/// Parses and checks every field of a write, collecting all field errors at once. Invalid secret types
/// and durations get their own error codes, as documented.
pub fn parse_write(body: &Map<String, Value>) -> Result<WriteRequest, Error> {
    let mut errors = Vec::new();
    for k in body.keys() {
        if !matches!(k.as_str(), "data" | "secret_type" | "metadata" | "options") {
            errors.push(FieldError::new(
                k,
                "unknown field; expected data, secret_type, metadata, options",
            ));
        }
    }
    let data = match body.get("data") {
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            errors.push(FieldError::new("data", "must be a JSON object"));
            None
        }
        None => {
            errors.push(FieldError::new("data", "is required"));
            None
        }
    };
    let secret_type = match body.get("secret_type") {
        None | Some(Value::Null) => {
            // Without a type hint: flat data is kv, anything nested is json.
            let nested = data.is_some_and(|d| d.values().any(|v| v.is_object() || v.is_array()));
            if nested {
                SecretType::Json
            } else {
                SecretType::Kv
            }
        }
        Some(Value::String(s)) => SecretType::parse(s)?,
        Some(_) => {
            return Err(SecretType::parse("")
                .err()
                .unwrap_or_else(|| Error::field("secret_type", "must be a string")))
        }
    };
    if let Some(d) = data {
        secret::validate_data(secret_type, d, &mut errors);
        if secret_type == SecretType::Certificate {
            if let Some(Value::String(pem)) = d.get("cert_pem") {
                if secret::is_pem_certificate(pem) && !parses_as_x509(pem) {
                    errors.push(FieldError::new(
                        "data.cert_pem",
                        "is not a parseable X.509 certificate",
                    ));
                }
            }
        }
    }
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Metadata::from_json(v, None, &mut errors)),
    };
    let mut max_versions = None;
    let mut expires_in = None;
    let mut rotation_policy_id = None;
    let mut cas = None;
    match body.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    (_, Value::Null) => {}
                    ("max_versions", v) => match v.as_i64() {
                        Some(n) if (1..=secret::MAX_MAX_VERSIONS).contains(&n) => max_versions = Some(n),
                        _ => errors.push(FieldError::new("options.max_versions", "must be an integer from 1 to 1000")),
                    },
                    ("expires_in", Value::String(s)) => expires_in = Some(duration::parse_seconds(s)?),
                    ("expires_in", _) => errors.push(FieldError::new("options.expires_in", "must be a duration string such as \"90d\"")),
                    ("rotation_policy_id", Value::String(s)) if !s.is_empty() && s.len() <= 128 => {
                        rotation_policy_id = Some(s.clone())
                    }
                    ("rotation_policy_id", _) => errors.push(FieldError::new("options.rotation_policy_id", "must be a policy id string")),
                    ("cas", v) => match v.as_i64() {
                        Some(n) if n >= 0 => cas = Some(n),
                        _ => errors.push(FieldError::new("options.cas", "must be a non-negative integer")),
                    },
                    (other, _) => errors.push(FieldError::new(
                        &format!("options.{other}"),
                        "unknown option; expected max_versions, expires_in, rotation_policy_id, cas",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new("options", "must be an object")),
    }
    let bytes = data
        .map(|d| serde_json::to_vec(d).unwrap_or_default())
        .unwrap_or_default();
    if bytes.len() > secret::MAX_DATA_BYTES {
        errors.push(FieldError::new(
            "data",
            "must be at most 512 KiB when serialised",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    Ok(WriteRequest {
        data: bytes,
        secret_type,
        metadata,
        max_versions,
        expires_in,
        rotation_policy_id,
        cas,
    })
}

fn parses_as_x509(pem_text: &str) -> bool {
    pem::parse_many(pem_text.as_bytes())
        .ok()
        .and_then(|blocks| blocks.into_iter().find(|b| b.tag() == "CERTIFICATE"))
        .is_some_and(|b| x509_parser::parse_x509_certificate(b.contents()).is_ok())
}

fn conflict(path: &str, current: i64) -> ApiError {
    ApiError::from_op(scaivault_store::OpError::Conflict { current }, path, None)
}

async fn write(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(path): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("write", Some(&path));
    authorize(&state, &ctx, Permission::Write, &path)?;
    let req = parse_write(&body.require()?)?;
    let tenant = ctx.tenant.clone();
    let key = state.keys.tenant_key(&tenant).await?;
    let metadata = req
        .metadata
        .as_ref()
        .map(|m| serde_json::to_string(m).unwrap_or_else(|_| "{}".into()));
    // Optimistic: seal for the next version, and retry if another write took that number first.
    for _attempt in 0..8 {
        let now = now_micros();
        let existing = state.store.get_secret(&tenant, &path).await?;
        // A live secret attached to an active secret policy: the value must satisfy its rules.
        if let Some(sp_id) = existing
            .as_ref()
            .filter(|s| s.deleted_at.is_none())
            .and_then(|s| s.secret_policy_id.clone())
        {
            if let Some(sp) = state.store.get_secret_policy(&tenant, &sp_id).await? {
                if sp.is_active {
                    super::secret_policies::check_value(&sp, &req.data)?;
                }
            }
        }
        let current = match existing {
            // A soft-deleted secret past its retention is purged by the write itself.
            Some(s) if s.deleted_at.is_some() && s.recoverable_until.is_some_and(|u| u <= now) => 0,
            Some(s) if s.deleted_at.is_some() => {
                return Err(ApiError::from_op(
                    scaivault_store::OpError::SoftDeleted {
                        recoverable_until: s.recoverable_until,
                    },
                    &path,
                    None,
                ))
            }
            Some(s) => s.current_version,
            None => 0,
        };
        if req.cas.is_some_and(|c| c != current) {
            return Err(conflict(&path, current));
        }
        let sealed = seal_value(&key, &tenant, &path, current + 1, &req.data);
        let extra = view::extra(&[
            ("version", json!(current + 1)),
            ("secret_type", json!(req.secret_type.as_str())),
        ]);
        let op = WriteOp::PutSecret(Box::new(PutSecret {
            tenant_id: tenant.clone(),
            path: path.clone(),
            expected_version: current,
            secret_type: req.secret_type.as_str().to_owned(),
            metadata: metadata.clone(),
            max_versions: req.max_versions,
            expires_at: req.expires_in.map(|s| now + s * 1_000_000),
            rotation_policy_id: req.rotation_policy_id.clone(),
            sealed,
            by: ctx.principal.identity_id.clone(),
            now,
            audit: vec![ctx.entry_for_write("write", &path, extra)],
        }));
        match state.committer.submit(op).await {
            Ok(OpOutcome::Put {
                created, secret, ..
            }) => {
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok((status, Json(view::secret_summary(&secret))).into_response());
            }
            Ok(_) => {
                return Err(ApiError::internal(
                    "SE0001",
                    "unexpected outcome for a write",
                ))
            }
            Err(scaivault_store::OpError::Conflict { current }) if req.cas.is_some() => {
                return Err(conflict(&path, current))
            }
            Err(scaivault_store::OpError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_op(e, &path, None)),
        }
    }
    Err(Error::new(
        ErrorCode::VersionConflict,
        "Too many concurrent writes to this secret; retry",
    )
    .into())
}

async fn update_metadata(
    State(state): State<AppState>,
    ctx: Ctx,
    path: &str,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("update_metadata", Some(path));
    authorize(&state, &ctx, Permission::Write, path)?;
    let body = body.require()?;
    let tenant = ctx.tenant.clone();
    let s = live_secret(&state, &tenant, path).await?;
    let mut errors = Vec::new();
    for k in body.keys() {
        if !matches!(k.as_str(), "metadata" | "options") {
            errors.push(FieldError::new(
                k,
                "unknown field; expected metadata, options",
            ));
        }
    }
    let base = view::metadata_of(&s);
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => base,
        Some(v) => Metadata::from_json(v, Some(&base), &mut errors),
    };
    let (mut max_versions, mut expires_at, mut rotation) = (None, None, None);
    let now = now_micros();
    match body.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("max_versions", v) => match v.as_i64() {
                        Some(n) if (1..=secret::MAX_MAX_VERSIONS).contains(&n) => {
                            max_versions = Some(n)
                        }
                        _ => errors.push(FieldError::new(
                            "options.max_versions",
                            "must be an integer from 1 to 1000",
                        )),
                    },
                    ("expires_in", Value::Null) => expires_at = Some(None),
                    ("expires_in", Value::String(d)) => {
                        expires_at = Some(Some(now + duration::parse_seconds(d)? * 1_000_000))
                    }
                    ("expires_in", _) => errors.push(FieldError::new(
                        "options.expires_in",
                        "must be a duration string or null",
                    )),
                    ("rotation_policy_id", Value::Null) => rotation = Some(None),
                    ("rotation_policy_id", Value::String(r)) if !r.is_empty() && r.len() <= 128 => {
                        rotation = Some(Some(r.clone()))
                    }
                    ("rotation_policy_id", _) => errors.push(FieldError::new(
                        "options.rotation_policy_id",
                        "must be a policy id string or null",
                    )),
                    (other, _) => errors.push(FieldError::new(
                        &format!("options.{other}"),
                        "unknown option",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new("options", "must be an object")),
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let op = WriteOp::UpdateMetadata(Box::new(UpdateMetadata {
        tenant_id: tenant.clone(),
        path: path.to_owned(),
        metadata: serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into()),
        max_versions,
        expires_at,
        rotation_policy_id: rotation,
        by: ctx.principal.identity_id.clone(),
        now,
        audit: vec![ctx.entry_for_write(
            "write",
            path,
            view::extra(&[("operation", json!("update_metadata"))]),
        )],
    }));
    match state.committer.submit(op).await {
        Ok(OpOutcome::Updated(s)) => {
            Ok(Json(metadata_json(&state, &tenant, &s).await?).into_response())
        }
        Ok(_) => Err(ApiError::internal(
            "SE0002",
            "unexpected outcome for a metadata update",
        )),
        Err(e) => Err(ApiError::from_op(e, path, None)),
    }
}

async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(path): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("delete", Some(&path));
    authorize(&state, &ctx, Permission::Delete, &path)?;
    let permanent = q.bool("permanent")? || q.bool("hard")?;
    let version = q.int("version", 1, i64::MAX)?;
    if permanent && version.is_some() {
        return Err(Error::field("permanent", "cannot be combined with version").into());
    }
    let tenant = ctx.tenant.clone();
    let by = ctx.principal.identity_id.clone();
    let now = now_micros();
    let recoverable_until = now + state.settings.soft_delete_retention_secs * 1_000_000;
    let (op, operation) = match (permanent, version) {
        (true, _) => {
            let audit = vec![ctx.entry_for_write(
                "delete",
                &path,
                view::extra(&[("permanent", json!(true))]),
            )];
            (
                WriteOp::HardDelete {
                    tenant_id: tenant,
                    path: path.clone(),
                    audit,
                },
                "hard_delete",
            )
        }
        (false, Some(v)) => {
            let audit =
                vec![ctx.entry_for_write("delete", &path, view::extra(&[("version", json!(v))]))];
            (
                WriteOp::DeleteVersion {
                    tenant_id: tenant,
                    path: path.clone(),
                    version: v,
                    by,
                    now,
                    audit,
                },
                "delete_version",
            )
        }
        (false, None) => {
            let audit = vec![ctx.entry_for_write("delete", &path, Map::new())];
            (
                WriteOp::DeleteSecret {
                    tenant_id: tenant,
                    path: path.clone(),
                    by,
                    now,
                    recoverable_until,
                    audit,
                },
                "delete",
            )
        }
    };
    match state.committer.submit(op).await {
        Ok(OpOutcome::Deleted { version_count }) => {
            let mut body = json!({
                "path": path,
                "deleted": true,
                "permanent": permanent,
                "version_count": version_count,
            });
            if operation == "delete" {
                body["recoverable_until"] = json!(rfc3339(recoverable_until));
            }
            if let Some(v) = version {
                body["version"] = json!(v);
            }
            Ok(Json(body).into_response())
        }
        Ok(_) => Err(ApiError::internal(
            "SE0003",
            "unexpected outcome for a delete",
        )),
        Err(e) => Err(ApiError::from_op(e, &path, version)),
    }
}

pub async fn restore(
    state: &AppState,
    ctx: &Ctx,
    path: &str,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("restore", Some(path));
    authorize(state, ctx, Permission::Write, path)?;
    let version = match body.0 {
        None => None,
        Some(m) => {
            let mut v = None;
            for (k, val) in &m {
                match (k.as_str(), val.as_i64()) {
                    ("version", Some(n)) if n >= 1 => v = Some(n),
                    ("version", _) if val.is_null() => {}
                    ("version", _) => {
                        return Err(Error::field("version", "must be a positive integer").into())
                    }
                    (other, _) => {
                        return Err(Error::field(other, "unknown field; expected version").into())
                    }
                }
            }
            v
        }
    };
    let tenant = ctx.tenant.clone();
    let extra = view::extra(&[("operation", json!("restore")), ("version", json!(version))]);
    let op = WriteOp::Restore {
        tenant_id: tenant.clone(),
        path: path.to_owned(),
        version,
        by: ctx.principal.identity_id.clone(),
        now: now_micros(),
        audit: vec![ctx.entry_for_write("write", path, extra)],
    };
    match state.committer.submit(op).await {
        Ok(OpOutcome::Updated(s)) => {
            Ok(Json(metadata_json(state, &tenant, &s).await?).into_response())
        }
        Ok(_) => Err(ApiError::internal(
            "SE0004",
            "unexpected outcome for a restore",
        )),
        Err(e) => Err(ApiError::from_op(e, path, version)),
    }
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    let prefix = q.get("prefix").unwrap_or("").to_owned();
    // The prefix goes in extra_data: a listing is not an access of a secret at that path.
    ctx.audit("list", None);
    ctx.audit_extra("prefix", json!(prefix));
    spath::validate_prefix(&prefix)?;
    ctx.principal.require_scope(Permission::List.scope())?;
    let limit = q.int("limit", 1, 1000)?.unwrap_or(100);
    let include_metadata = q.bool("include_metadata")?;
    let after = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| cursor::decode(cursor::SECRETS, c))
        .transpose()?;
    let now = now_micros();
    let expiring_before = match q.get("expiring_within") {
        Some(d) => Some(now + duration::parse_seconds(d)? * 1_000_000),
        None => None,
    };
    let tenant = ctx.tenant.clone();
    let mut rows = state
        .store
        .list_secrets(&ListQuery {
            tenant_id: &tenant,
            prefix: &prefix,
            after: after.as_deref(),
            limit: limit + 1,
            expiring_before,
            include_deleted: false,
        })
        .await?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let cursor = if has_more {
        rows.last()
            .map(|r| cursor::encode(cursor::SECRETS, &r.path))
    } else {
        None
    };
    state
        .authz
        .retain_allowed(&ctx, Permission::List, &mut rows, |r| &r.path);
    if !include_metadata {
        let page = view::ListPage {
            secrets: rows.iter().map(view::list_item_short).collect(),
            cursor,
            has_more,
        };
        return Ok(Json(page).into_response());
    }
    let items: Vec<Value> = if include_metadata {
        let paths: Vec<String> = rows.iter().map(|r| r.path.clone()).collect();
        let counts: std::collections::HashMap<String, i64> = state
            .store
            .version_counts(&tenant, &paths)
            .await?
            .into_iter()
            .collect();
        let access = state
            .store
            .access_stats(&tenant, &paths, day_of(now) - 29)
            .await?;
        rows.iter()
            .map(|r| {
                let a = access.iter().find(|a| a.path == r.path);
                view::list_item(r, Some((counts.get(&r.path).copied().unwrap_or(0), a)))
            })
            .collect()
    } else {
        rows.iter().map(|r| view::list_item(r, None)).collect()
    };
    Ok(Json(json!({ "secrets": items, "cursor": cursor, "has_more": has_more })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn write_parsing() {
        let r = parse_write(&obj(json!({"data": {"a": "b"}}))).unwrap();
        assert_eq!(r.secret_type, SecretType::Kv);
        let r = parse_write(&obj(json!({"data": {"a": {"b": 1}}}))).unwrap();
        assert_eq!(r.secret_type, SecretType::Json);
        assert_eq!(
            parse_write(&obj(json!({"data": 1}))).unwrap_err().code,
            ErrorCode::ValidationError
        );
        assert_eq!(
            parse_write(&obj(json!({}))).unwrap_err().code,
            ErrorCode::ValidationError
        );
        assert_eq!(
            parse_write(&obj(json!({"data": {}, "secret_type": "x"})))
                .unwrap_err()
                .code,
            ErrorCode::InvalidSecretType
        );
        assert_eq!(
            parse_write(&obj(json!({"data": {}, "options": {"expires_in": "soon"}})))
                .unwrap_err()
                .code,
            ErrorCode::InvalidDuration
        );
        let e = parse_write(&obj(
            json!({"data": {}, "options": {"max_versions": 0, "cas": -1}, "x": 1}),
        ))
        .unwrap_err();
        assert_eq!(e.details.unwrap()["fields"].as_array().unwrap().len(), 3);
        let e = parse_write(&obj(json!({"data": {"cert_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, "secret_type": "certificate"}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationError);
        let r = parse_write(&obj(json!({"data": {"k": "v"}, "options": {"max_versions": 3, "expires_in": "1h", "cas": 0}}))).unwrap();
        assert_eq!(
            (r.max_versions, r.expires_in, r.cas),
            (Some(3), Some(3600), Some(0))
        );
    }
}
