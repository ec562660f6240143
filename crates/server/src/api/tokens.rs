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
use scaivault_store::{OpError, OpOutcome, TokenRow, WriteOp};
use serde_json::{json, Value};

const DEFAULT_TTL_SECS: i64 = 90 * 86_400;
const MAX_TTL_SECS: i64 = 366 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/tokens", get(list).post(create))
        .route("/v1/auth/tokens/{id}", delete(revoke))
}

fn fe(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
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
    let mut errors = Vec::new();
    let mut name = None;
    let mut scopes: Vec<String> = p.scopes.clone();
    let mut ttl = DEFAULT_TTL_SECS;
    for (k, v) in &body {
        match (k.as_str(), v) {
            ("name", Value::String(s)) if !s.is_empty() && s.len() <= 100 => name = Some(s.clone()),
            ("name", _) => errors.push(fe("name", "must be a string of 1 to 100 characters")),
            ("scopes", Value::Array(items)) if !items.is_empty() => {
                scopes.clear();
                for (i, s) in items.iter().enumerate() {
                    match s.as_str() {
                        Some(s) if !scope::is_known(s) => {
                            errors.push(fe(&format!("scopes[{i}]"), "unknown scope"))
                        }
                        Some(s) if !p.has_scope(s) => errors.push(fe(
                            &format!("scopes[{i}]"),
                            "is wider than the creating token's scopes",
                        )),
                        Some(s) if !scopes.iter().any(|x| x == s) => scopes.push(s.to_owned()),
                        Some(_) => {}
                        None => errors.push(fe(&format!("scopes[{i}]"), "must be a string")),
                    }
                }
            }
            ("scopes", _) => errors.push(fe("scopes", "must be a non-empty array of scopes")),
            ("expires_in", Value::String(d)) => {
                ttl = duration::parse_seconds(d)?;
                if ttl > MAX_TTL_SECS {
                    errors.push(fe("expires_in", "must be at most 366d"));
                }
            }
            ("expires_in", _) => {
                errors.push(fe("expires_in", "must be a duration such as \"90d\""))
            }
            (other, _) => errors.push(fe(
                other,
                "unknown field; expected name, scopes, expires_in",
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
        tenant_id: p.tenant_id.clone(),
        identity_id: p.identity_id.clone(),
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
