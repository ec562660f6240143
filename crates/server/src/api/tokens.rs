//! `/v1/auth/tokens`: personal access tokens (`skt_…`). The value is shown once at creation and stored
//! only as its SHA-256; scopes can be no wider than the creator's; revocation takes effect at once on
//! this node (other nodes drop their cached principal within the auth cache TTL of 5 s).

use super::ctx::Ctx;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam, QueryMap};
use super::view;
use crate::auth::hash_token;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use scaivault_core::time_fmt::{now_micros, opt_rfc3339, rfc3339};
use scaivault_core::{duration, id, scope, Error, ErrorCode, FieldError};
use scaivault_store::{IdentityRow, OpError, OpOutcome, TokenRow, WriteOp};
use serde_json::{json, Value};

const DEFAULT_TTL_SECS: i64 = 90 * 86_400;
const MAX_TTL_SECS: i64 = 366 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/tokens", get(list).post(create))
        .route("/v1/auth/tokens/{id}", delete(revoke))
}

fn token_json(t: &TokenRow, now: i64) -> Value {
    let status = if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": t.id,
        "name": t.name,
        "identity_id": t.identity_id,
        "scopes": serde_json::from_str::<Value>(&t.scopes).unwrap_or_else(|_| json!([])),
        "created_at": rfc3339(t.created_at),
        "expires_at": opt_rfc3339(t.expires_at),
        "revoked_at": opt_rfc3339(t.revoked_at),
        "status": status,
    })
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("token_create", None);
    let body = body.0.unwrap_or_default();
    let p = &ctx.principal;
    // Admins may mint a token for another identity of the tenant they act in (how a new user or
    // service account gets its first credential); the token is then bound by both parties' scopes.
    let subject = match body.get("identity_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if *id == p.identity_id && ctx.tenant == p.tenant_id => None,
        Some(Value::String(id)) => Some(token_subject(&state, &ctx, id).await?),
        Some(_) => {
            return Err(
                Error::validation(vec![FieldError::new("identity_id", "must be a string")]).into(),
            )
        }
    };
    let held: Vec<String> = match &subject {
        None => p.scopes.clone(),
        Some(i) => serde_json::from_str::<Vec<String>>(&i.scopes)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| p.has_scope(s))
            .collect(),
    };
    let holds = |s: &str| scope::allows(&held, s);
    let mut errors = Vec::new();
    let mut name = None;
    let mut scopes: Vec<String> = held.clone();
    let mut ttl = DEFAULT_TTL_SECS;
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("name", Value::String(s)) if !s.is_empty() && s.len() <= 100 => name = Some(s.clone()),
            ("name", _) => errors.push(FieldError::new(
                "name",
                "must be a string of 1 to 100 characters",
            )),
            ("scopes", Value::Array(items)) if !items.is_empty() => {
                scopes.clear();
                for (i, s) in items.iter().enumerate() {
                    match s.as_str() {
                        Some(s) if !scope::is_known(s) => {
                            errors.push(FieldError::new(&format!("scopes[{i}]"), "unknown scope"))
                        }
                        Some(s) if !holds(s) => errors.push(FieldError::new(
                            &format!("scopes[{i}]"),
                            "is wider than the creating token's scopes (or the identity's)",
                        )),
                        Some(s) if !scopes.iter().any(|x| x == s) => scopes.push(s.to_owned()),
                        Some(_) => {}
                        None => errors
                            .push(FieldError::new(&format!("scopes[{i}]"), "must be a string")),
                    }
                }
            }
            ("scopes", _) => errors.push(FieldError::new(
                "scopes",
                "must be a non-empty array of scopes",
            )),
            ("expires_in", Value::String(d)) => {
                ttl = duration::parse_seconds(d)?;
                if ttl > MAX_TTL_SECS {
                    errors.push(FieldError::new("expires_in", "must be at most 366d"));
                }
            }
            ("expires_in", _) => errors.push(FieldError::new(
                "expires_in",
                "must be a duration such as \"90d\"",
            )),
            ("identity_id", _) => {}
            (other, _) => errors.push(FieldError::new(
                other,
                "unknown field; expected name, scopes, expires_in, identity_id",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let now = now_micros();
    let token = id::personal_access_token();
    let row = TokenRow {
        id: id::random("tok_", 16),
        token_hash: hash_token(&token).to_vec(),
        tenant_id: subject
            .as_ref()
            .map_or_else(|| p.tenant_id.clone(), |i| i.tenant_id.clone()),
        identity_id: subject
            .as_ref()
            .map_or_else(|| p.identity_id.clone(), |i| i.id.clone()),
        name,
        scopes: serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()),
        created_at: now,
        expires_at: Some(now + ttl * 1_000_000),
        revoked_at: None,
        created_by: Some(p.identity_id.clone()),
    };
    let mut entry = ctx.entry_for_write(
        "token_create",
        "",
        view::extra(&[("token_id", json!(row.id))]),
    );
    entry.secret_path = None;
    match state
        .committer
        .submit(WriteOp::InsertToken {
            row: row.clone(),
            audit: vec![entry],
        })
        .await
    {
        Ok(_) => {
            let mut body = token_json(&row, now);
            body["token"] = json!(token);
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => Err(ApiError::unavailable("TK0001", "Storage", e)),
    }
}

/// The identity an admin mints a token for: an enabled user or service account of the tenant the
/// request acts in, which the caller administers.
async fn token_subject(state: &AppState, ctx: &Ctx, id: &str) -> ApiResult<IdentityRow> {
    let p = &ctx.principal;
    p.require_scope(scope::IDENTITY_ADMIN)?;
    if !crate::tenancy::is_tenant_admin_of(p, &ctx.tenant, &ctx.partner) {
        return Err(Error::new(
            ErrorCode::AccessDenied,
            "Minting a token for another identity needs an admin role over its tenant",
        )
        .into());
    }
    let shown: String = id.chars().take(300).collect();
    let i = state
        .store
        .get_identity(&ctx.tenant, id)
        .await?
        .filter(|i| i.identity_type != "group")
        .ok_or_else(|| {
            ApiError(
                Error::new(
                    ErrorCode::IdentityNotFound,
                    format!("Identity '{shown}' not found"),
                )
                .with_details(json!({ "identity_id": shown })),
            )
        })?;
    if i.disabled_at.is_some() {
        return Err(Error::new(ErrorCode::AccessDenied, "The identity is disabled").into());
    }
    Ok(i)
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("token_list", None);
    let p = &ctx.principal;
    let who = match q.text("identity_id")? {
        Some(id) if id != p.identity_id => {
            p.require_scope(scope::ADMIN)?;
            Some(id)
        }
        _ if q.bool("all")? => {
            p.require_scope(scope::ADMIN)?;
            None
        }
        _ => Some(p.identity_id.clone()),
    };
    let now = now_micros();
    let rows = state
        .store
        .list_tokens(&p.tenant_id, who.as_deref())
        .await?;
    Ok(
        Json(json!({ "tokens": rows.iter().map(|t| token_json(t, now)).collect::<Vec<_>>() }))
            .into_response(),
    )
}

async fn revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(token_id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("token_revoke", None);
    let p = &ctx.principal;
    // Admins revoke any token of their tenant; everyone else only their own.
    let owner = if p.has_scope(scope::ADMIN) {
        None
    } else {
        Some(p.identity_id.clone())
    };
    let now = now_micros();
    let mut entry = ctx.entry_for_write(
        "token_revoke",
        "",
        view::extra(&[("token_id", json!(token_id))]),
    );
    entry.secret_path = None;
    let op = WriteOp::RevokeToken {
        tenant_id: p.tenant_id.clone(),
        token_id: token_id.clone(),
        owner,
        now,
        audit: vec![entry],
    };
    match state.committer.submit(op).await {
        Ok(OpOutcome::Done) => {
            state.auth.invalidate_all();
            Ok(
                Json(json!({ "id": token_id, "revoked": true, "revoked_at": rfc3339(now) }))
                    .into_response(),
            )
        }
        Ok(_) => Err(ApiError::internal(
            "TK0002",
            "unexpected outcome for a revocation",
        )),
        Err(OpError::NotFound) => Err(Error::new(
            ErrorCode::NotFound,
            "No live token with this id",
        )
        .with_details(json!({ "token_id": token_id }))
        .into()),
        Err(e) => Err(ApiError::unavailable("TK0003", "Storage", e)),
    }
}
