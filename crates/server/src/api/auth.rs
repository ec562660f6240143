//! `/v1/auth`: who am I.

use super::ctx::Ctx;
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use scaivault_core::time_fmt::opt_rfc3339;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/whoami", get(whoami))
}

async fn whoami(ctx: Ctx) -> Response {
    ctx.audit("auth", None);
    let p = &ctx.principal;
    Json(json!({
        "identity_id": p.identity_id,
        "identity_type": p.identity_type,
        "display_name": p.display_name,
        "tenant_id": p.tenant_id,
        "partner_id": p.partner_id,
        "scopes": p.scopes,
        "groups": p.groups,
        "roles": p.roles,
        "mfa_verified_at": opt_rfc3339(p.mfa_verified_at),
        "token_expires_at": opt_rfc3339(p.token_expires_at),
    }))
    .into_response()
}
