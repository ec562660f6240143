//! `/v1/identity/service-accounts`: service accounts (`sa:<name>`, identity type `service_account`)
//! with client credentials for `POST /v1/auth/token`. The client secret is shown once (at creation and
//! at each rotation) and stored only as its SHA-256 (it carries ~285 bits of entropy); a rotation may
//! keep the old secrets valid for a grace period. Deleting disables: the account's secrets and every
//! token it holds stop working at once on this node (other nodes within the auth cache TTL of 5 s).

use super::ctx::Ctx;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam};
use super::view;
use crate::auth::hash_token;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scaivault_core::time_fmt::{now_micros, opt_rfc3339, rfc3339};
use scaivault_core::{duration, id, scope, Error, ErrorCode, FieldError};
use scaivault_store::{ClientSecretRow, IdentityRow, OpError, ServiceAccountRow, WriteOp};
use serde_json::{json, Value};

/// Longest grace period for the previous secrets at a rotation.
const MAX_GRACE_SECS: i64 = 30 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/identity/service-accounts", get(list).post(create))
        .route(
            "/v1/identity/service-accounts/{id}",
            get(read).delete(disable),
        )
        .route("/v1/identity/service-accounts/{id}/secrets", post(rotate))
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

/// `sa:<name>` from a path segment that is either the identity id or the bare name.
fn identity_id(segment: &str) -> Result<String, ApiError> {
    let name = segment.strip_prefix("sa:").unwrap_or(segment);
    if !valid_name(name) {
        return Err(not_found(segment));
    }
    Ok(format!("sa:{name}"))
}

fn not_found(id: &str) -> ApiError {
    Error::new(ErrorCode::NotFound, "No such service account")
        .with_details(json!({ "id": id }))
        .into()
}

fn list_of(s: &str) -> Value {
    serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!([]))
}

fn account_json(a: &ServiceAccountRow) -> Value {
    let i = &a.identity;
    json!({
        "id": i.id,
        "identity_id": i.id,
        "identity_type": i.identity_type,
        "name": i.id.strip_prefix("sa:").unwrap_or(&i.id),
        "description": a.description,
        "client_id": a.client_id,
        "scopes": list_of(&i.scopes),
        "groups": list_of(&i.groups),
        "tenant_id": i.tenant_id,
        "created_at": rfc3339(i.created_at),
        "created_by": a.created_by,
        "disabled_at": opt_rfc3339(i.disabled_at),
        "status": if i.disabled_at.is_some() { "disabled" } else { "active" },
    })
}

fn new_secret(tenant: &str, client_id: &str, now: i64) -> (String, ClientSecretRow) {
    let secret = id::random("svs_", 48);
    let row = ClientSecretRow {
        id: id::random("cs_", 16),
        tenant_id: tenant.to_owned(),
        client_id: client_id.to_owned(),
        secret_hash: hash_token(&secret).to_vec(),
        created_at: now,
        expires_at: None,
    };
    (secret, row)
}

fn string_list(
    v: &Value,
    field: &str,
    errors: &mut Vec<FieldError>,
    check: impl Fn(&str) -> Option<&'static str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Value::Array(items) = v else {
        errors.push(FieldError::new(field, "must be an array of strings"));
        return out;
    };
    for (i, s) in items.iter().enumerate() {
        match s.as_str() {
            Some(s) => match check(s) {
                Some(msg) => errors.push(FieldError::new(&format!("{field}[{i}]"), msg)),
                None if !out.iter().any(|x| x == s) => out.push(s.to_owned()),
                None => {}
            },
            None => errors.push(FieldError::new(
                &format!("{field}[{i}]"),
                "must be a string",
            )),
        }
    }
    out
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("service_account_create", None);
    let p = &ctx.principal;
    p.require_scope(scope::IDENTITY_ADMIN)?;
    let body = body.require()?;
    let mut errors = Vec::new();
    let mut name = None;
    let mut description = None;
    let mut scopes = Vec::new();
    let mut groups = Vec::new();
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("name", Value::String(s)) if valid_name(s) => name = Some(s.clone()),
            ("name", _) => errors.push(FieldError::new(
                "name",
                "must be 1 to 63 characters of a-z 0-9 - _ . starting with a letter or digit",
            )),
            ("description", Value::String(s)) if s.chars().count() <= 500 => {
                description = Some(s.clone())
            }
            ("description", Value::Null) => {}
            ("description", _) => errors.push(FieldError::new(
                "description",
                "must be a string of at most 500 characters",
            )),
            ("scopes", v) => {
                scopes = string_list(v, "scopes", &mut errors, |s| {
                    if !scope::is_known(s) {
                        Some("unknown scope")
                    } else if !p.has_scope(s) {
                        Some("is wider than the creating token's scopes")
                    } else {
                        None
                    }
                })
            }
            ("groups", v) => {
                groups = string_list(v, "groups", &mut errors, |s| {
                    let ok = s.strip_prefix("group:").is_some_and(|g| {
                        !g.is_empty() && g.len() <= 100 && !g.chars().any(char::is_control)
                    });
                    (!ok).then_some("must be group:<name>")
                })
            }
            (other, _) => errors.push(FieldError::new(
                other,
                "unknown field; expected name, description, scopes, groups",
            )),
        }
    }
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.push(FieldError::new("name", "is required"));
        }
        return Err(Error::validation(errors).into());
    };
    let now = now_micros();
    let sa_id = format!("sa:{name}");
    let client_id = id::random("sac_", 24);
    let (secret, secret_row) = new_secret(&ctx.tenant, &client_id, now);
    let account = ServiceAccountRow {
        identity: IdentityRow {
            tenant_id: ctx.tenant.clone(),
            id: sa_id.clone(),
            identity_type: "service_account".into(),
            display_name: Some(name.clone()),
            roles: "[]".into(),
            groups: serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into()),
            scopes: serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()),
            created_at: now,
            disabled_at: None,
        },
        client_id: client_id.clone(),
        description,
        created_by: p.identity_id.clone(),
    };
    let mut entry = ctx.entry_for_write(
        "service_account_create",
        "",
        view::extra(&[
            ("service_account", json!(sa_id)),
            ("client_id", json!(client_id)),
        ]),
    );
    entry.secret_path = None;
    let op = WriteOp::CreateServiceAccount {
        account: Box::new(account.clone()),
        secret: secret_row,
        audit: vec![entry],
    };
    match state.committer.submit(op).await {
        Ok(_) => {
            let mut body = account_json(&account);
            body["client_secret"] = json!(secret);
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(OpError::AlreadyExists) => Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("Identity '{sa_id}' already exists in this tenant"),
        )
        .with_details(json!({ "id": sa_id }))
        .into()),
        Err(e) => Err(ApiError::unavailable("SA0001", "Storage", e)),
    }
}

/// Reading needs `identity:read` (or `identity:admin`, which manages and so may read).
fn require_read(ctx: &Ctx) -> Result<(), Error> {
    if ctx.principal.has_scope(scope::IDENTITY_ADMIN) {
        return Ok(());
    }
    ctx.principal.require_scope(scope::IDENTITY_READ)
}

async fn list(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("service_account_list", None);
    require_read(&ctx)?;
    let rows = state.store.list_service_accounts(&ctx.tenant).await?;
    Ok(Json(json!({
        "service_accounts": rows.iter().map(account_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn read(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(seg): PathParam,
) -> ApiResult<Response> {
    ctx.audit("service_account_read", None);
    require_read(&ctx)?;
    let id = identity_id(&seg)?;
    let sa = state
        .store
        .get_service_account(&ctx.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(account_json(&sa)).into_response())
}

async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(seg): PathParam,
) -> ApiResult<Response> {
    ctx.audit("service_account_disable", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let id = identity_id(&seg)?;
    let now = now_micros();
    let mut entry = ctx.entry_for_write(
        "service_account_disable",
        "",
        view::extra(&[("service_account", json!(id))]),
    );
    entry.secret_path = None;
    let op = WriteOp::DisableServiceAccount {
        tenant_id: ctx.tenant.clone(),
        identity_id: id.clone(),
        now,
        audit: vec![entry],
    };
    match state.committer.submit(op).await {
        Ok(_) => {
            state.auth.invalidate_all();
            Ok(
                Json(json!({ "id": id, "disabled": true, "disabled_at": rfc3339(now) }))
                    .into_response(),
            )
        }
        Err(OpError::NotFound) => Err(not_found(&id)),
        Err(e) => Err(ApiError::unavailable("SA0002", "Storage", e)),
    }
}

async fn rotate(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(seg): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("service_account_rotate_secret", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let id = identity_id(&seg)?;
    let mut grace = 0i64;
    for (k, v) in &body.0.unwrap_or_default() {
        match (k.as_str(), v) {
            ("grace", Value::String(d)) | ("grace_period", Value::String(d)) => {
                grace = duration::parse_seconds(d)?;
                if grace > MAX_GRACE_SECS {
                    return Err(Error::field(k, "must be at most 30d").into());
                }
            }
            (other, _) => {
                return Err(Error::field(
                    other,
                    "unknown field; expected grace (a duration such as \"1h\")",
                )
                .into())
            }
        }
    }
    let sa = state
        .store
        .get_service_account(&ctx.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let now = now_micros();
    let (secret, row) = new_secret(&ctx.tenant, &sa.client_id, now);
    let old_expire_at = now + grace * 1_000_000;
    let mut entry = ctx.entry_for_write(
        "service_account_rotate_secret",
        "",
        view::extra(&[
            ("service_account", json!(id)),
            ("grace_seconds", json!(grace)),
        ]),
    );
    entry.secret_path = None;
    let op = WriteOp::RotateClientSecret {
        tenant_id: ctx.tenant.clone(),
        identity_id: id.clone(),
        secret: row,
        old_expire_at,
        audit: vec![entry],
    };
    match state.committer.submit(op).await {
        Ok(_) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": id,
                "client_id": sa.client_id,
                "client_secret": secret,
                "previous_secrets_expire_at": rfc3339(old_expire_at),
            })),
        )
            .into_response()),
        Err(OpError::NotFound) => Err(not_found(&id)),
        Err(e) => Err(ApiError::unavailable("SA0003", "Storage", e)),
    }
}
