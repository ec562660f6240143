//! The token issuer: `POST /v1/auth/token` (client credentials), `POST /v1/auth/exchange` (a trusted
//! external JWT for a service account's token), the JWKS (`GET /.well-known/jwks.json`,
//! `GET /v1/auth/jwks`), `POST /v1/auth/keys/rotate` and `POST /v1/auth/introspect`.
//!
//! The token, exchange and JWKS endpoints need no bearer token (the client authenticates itself); they
//! answer errors in the documented envelope (with `details.oauth_error` naming the RFC 6749 code), and
//! audit what they do themselves.

use super::ctx::{current_request_id, Ctx};
use super::error::{ApiError, ApiResult};
use super::extract::{serde_urlencoded_pairs, JsonObject};
use crate::jwt::{self, OwnClaims, TOKEN_TTL_SECS};
use crate::ratelimit::Category;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use scaivault_core::audit::AuditEntry;
use scaivault_core::time_fmt::{now_micros, opt_rfc3339};
use scaivault_core::{id, scope, Error, ErrorCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use subtle::ConstantTimeEq;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:access_token",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/token", post(token))
        .route("/v1/auth/exchange", post(exchange))
        .route("/v1/auth/jwks", get(jwks))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/auth/keys/rotate", post(rotate_keys))
        .route("/v1/auth/introspect", post(introspect))
}

/// Paths served without a bearer token (the pipeline lets them through).
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/v1/auth/token" | "/v1/auth/exchange" | "/v1/auth/jwks" | "/.well-known/jwks.json"
    )
}

fn oauth_error(code: ErrorCode, oauth: &str, message: &str) -> ApiError {
    ApiError(Error::new(code, message).with_details(json!({ "oauth_error": oauth })))
}

fn invalid_client() -> ApiError {
    oauth_error(
        ErrorCode::TokenInvalid,
        "invalid_client",
        "Invalid client credentials",
    )
}

/// Form-encoded (RFC 6749) or JSON parameters, as strings. A JSON `scope` may be an array.
fn params(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, ApiError> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut out = HashMap::new();
    if ct.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| ApiError(Error::invalid_request("Malformed JSON body")))?;
        let Value::Object(m) = v else {
            return Err(ApiError(Error::invalid_request(
                "Request body must be a JSON object",
            )));
        };
        for (k, v) in m {
            let s = match v {
                Value::String(s) => s,
                Value::Array(items) if k == "scope" => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::Null => continue,
                _ => {
                    return Err(ApiError(Error::field(&k, "must be a string")));
                }
            };
            out.insert(k, s);
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") || ct.is_empty() {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError(Error::invalid_request("Request body is not UTF-8")))?;
        for (k, v) in serde_urlencoded_pairs(text.trim())? {
            if out.insert(k.clone(), v).is_some() {
                return Err(oauth_error(
                    ErrorCode::InvalidRequest,
                    "invalid_request",
                    &format!("Parameter '{k}' is repeated"),
                ));
            }
        }
    } else {
        return Err(ApiError(Error::new(
            ErrorCode::UnsupportedMediaType,
            "Send application/x-www-form-urlencoded or application/json",
        )));
    }
    Ok(out)
}

/// `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1), if sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The scopes to grant: the requested ones (each allowed by `granted`), else all of `granted`.
fn grant_scopes(granted: &[String], requested: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(req) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_vec());
    };
    let mut out: Vec<String> = Vec::new();
    for s in req.split_whitespace() {
        if !scope::is_known(s) {
            return Err(ApiError(
                Error::new(ErrorCode::ValidationError, format!("Unknown scope '{s}'"))
                    .with_details(json!({ "oauth_error": "invalid_scope", "scope": s })),
            ));
        }
        if !scope::allows(granted, s) {
            return Err(ApiError(
                Error::new(
                    ErrorCode::InsufficientScope,
                    format!("Scope '{s}' is not granted to this client"),
                )
                .with_details(json!({ "oauth_error": "invalid_scope", "scope": s })),
            ));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

struct Audit<'a> {
    state: &'a AppState,
    started: Instant,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

impl Audit<'_> {
    async fn record(
        &self,
        action: &str,
        tenant: &str,
        identity: (&str, &str),
        result: Result<(), &Error>,
        extra: Value,
    ) -> Result<(), ApiError> {
        let (success, status, code) = match result {
            Ok(()) => (true, 200, None),
            Err(e) => (
                false,
                i32::from(e.code.status()),
                Some(e.code.as_str().to_owned()),
            ),
        };
        let entry = AuditEntry {
            id: id::audit_log_id(),
            tenant_id: tenant.to_owned(),
            timestamp: now_micros(),
            action: action.to_owned(),
            identity_type: identity.0.to_owned(),
            identity_id: identity.1.to_owned(),
            secret_path: None,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            success,
            status,
            error_code: code,
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            request_id: current_request_id(),
            extra_data: extra.to_string(),
        };
        self.state
            .committer
            .audit(vec![entry])
            .await
            .map_err(|e| ApiError::unavailable("OA0001", "Audit log", e))
    }
}

fn audit_ctx<'a>(state: &'a AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Audit<'a> {
    Audit {
        state,
        started: Instant::now(),
        source_ip: peer.map(|p| p.ip().to_string()),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

/// Unauthenticated endpoints draw from a bucket per source address.
fn throttle(state: &AppState, peer: Option<SocketAddr>) -> Result<(), ApiError> {
    let who = format!(
        "ip\u{0}{}",
        peer.map(|p| p.ip().to_string()).unwrap_or_default()
    );
    let d = state.rate.take(&who, Category::Admin, 1, false);
    if d.allowed {
        Ok(())
    } else {
        Err(ApiError(
            Error::new(
                ErrorCode::RateLimited,
                format!("Too many token requests; retry after {} s", d.retry_after),
            )
            .with_details(json!({ "retry_after": d.retry_after })),
        ))
    }
}

fn token_response(token: String, claims: &OwnClaims) -> Response {
    no_store(
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "scope": claims.scopes.join(" "),
        }))
        .into_response(),
    )
}

async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let peer = peer.map(|c| (c.0).0);
    throttle(&state, peer)?;
    let audit = audit_ctx(&state, &headers, peer);
    let p = params(&headers, &body)?;
    match p.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "unsupported_grant_type",
                &format!(
                    "grant_type '{}' is not supported; use client_credentials",
                    other.chars().take(80).collect::<String>()
                ),
            ))
        }
        None => {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "invalid_request",
                "grant_type is required (client_credentials)",
            ))
        }
    }
    let (client_id, secret) = match (p.get("client_id"), p.get("client_secret")) {
        (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => (i.clone(), s.clone()),
        _ => basic_credentials(&headers).ok_or_else(|| {
            oauth_error(
                ErrorCode::AuthenticationRequired,
                "invalid_client",
                "client_id and client_secret are required",
            )
        })?,
    };
    if client_id.len() > 200 || secret.len() > 500 {
        return Err(invalid_client());
    }
    let Some(sa) = state.store.service_account_by_client_id(&client_id).await? else {
        let e = invalid_client();
        audit
            .record(
                "token_issue",
                "",
                ("anonymous", ""),
                Err(&e.0),
                json!({ "client_id": client_id }),
            )
            .await?;
        return Err(e);
    };
    let tenant = sa.identity.tenant_id.clone();
    let who = ("service_account", sa.identity.id.as_str());
    let now = now_micros();
    let secrets = state
        .store
        .live_client_secrets(&tenant, &client_id, now)
        .await?;
    let hash = crate::auth::hash_token(&secret);
    let mut matched = subtle::Choice::from(0u8);
    for s in &secrets {
        matched |= s.secret_hash.as_slice().ct_eq(&hash);
    }
    let extra = json!({ "client_id": client_id });
    if !bool::from(matched) {
        let e = invalid_client();
        audit
            .record("token_issue", &tenant, who, Err(&e.0), extra)
            .await?;
        return Err(e);
    }
    if sa.identity.disabled_at.is_some() {
        let e = oauth_error(
            ErrorCode::TokenRevoked,
            "invalid_client",
            "This service account is disabled",
        );
        audit
            .record("token_issue", &tenant, who, Err(&e.0), extra)
            .await?;
        return Err(e);
    }
    let granted: Vec<String> = serde_json::from_str(&sa.identity.scopes).unwrap_or_default();
    let scopes = match grant_scopes(&granted, p.get("scope").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => {
            audit
                .record("token_issue", &tenant, who, Err(&e.0), extra)
                .await?;
            return Err(e);
        }
    };
    let (token, claims) = issue_for(&state, &sa.identity, scopes).await?;
    audit
        .record(
            "token_issue",
            &tenant,
            who,
            Ok(()),
            json!({ "client_id": client_id, "jti": claims.jti, "scopes": claims.scopes }),
        )
        .await?;
    Ok(token_response(token, &claims))
}

async fn issue_for(
    state: &AppState,
    identity: &scaivault_store::IdentityRow,
    scopes: Vec<String>,
) -> Result<(String, OwnClaims), ApiError> {
    let tenant = state
        .store
        .get_tenant(&identity.tenant_id)
        .await?
        .ok_or_else(|| ApiError::internal("OA0002", "service account's tenant is missing"))?;
    let claims = OwnClaims {
        iss: String::new(),
        sub: identity.id.clone(),
        aud: String::new(),
        exp: 0,
        iat: 0,
        nbf: 0,
        jti: String::new(),
        tenant: tenant.id,
        partner: tenant.partner_id,
        identity_type: identity.identity_type.clone(),
        scopes,
        groups: serde_json::from_str(&identity.groups).unwrap_or_default(),
    };
    Ok(state.issuer.issue(claims).await?)
}

async fn exchange(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let peer = peer.map(|c| (c.0).0);
    throttle(&state, peer)?;
    let audit = audit_ctx(&state, &headers, peer);
    let p = params(&headers, &body)?;
    if let Some(g) = p.get("grant_type") {
        if g != TOKEN_EXCHANGE_GRANT {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "unsupported_grant_type",
                &format!("grant_type must be {TOKEN_EXCHANGE_GRANT}"),
            ));
        }
    }
    if let Some(t) = p.get("subject_token_type") {
        if !JWT_TOKEN_TYPES.contains(&t.as_str()) {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "invalid_request",
                "subject_token_type must name a JWT (urn:ietf:params:oauth:token-type:jwt)",
            ));
        }
    }
    let subject = p
        .get("subject_token")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            oauth_error(
                ErrorCode::AuthenticationRequired,
                "invalid_request",
                "subject_token is required",
            )
        })?;
    let peeked = jwt::peek(subject).map_err(ApiError)?;
    let Some(remote) = state.external.get(&peeked.iss).cloned() else {
        return Err(oauth_error(
            ErrorCode::TokenInvalid,
            "invalid_grant",
            "The subject token's issuer is not trusted for exchange",
        ));
    };
    let claims = match remote.verify(&state.external.http, subject, &peeked).await {
        Ok(c) => c,
        Err(e) => {
            audit
                .record(
                    "token_exchange",
                    "",
                    ("anonymous", ""),
                    Err(&e),
                    json!({ "issuer": peeked.iss }),
                )
                .await?;
            return Err(ApiError(e).with_oauth("invalid_grant"));
        }
    };
    let subject_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let extra = json!({ "issuer": peeked.iss, "subject": subject_id });
    let Some(rule) = remote
        .config
        .exchange
        .iter()
        .find(|r| jwt::rule_matches(r, &claims))
    else {
        let e = Error::new(
            ErrorCode::AccessDenied,
            "No token-exchange mapping matches this subject token",
        )
        .with_details(json!({ "oauth_error": "invalid_grant" }));
        audit
            .record("token_exchange", "", ("anonymous", ""), Err(&e), extra)
            .await?;
        return Err(ApiError(e));
    };
    let sa = state
        .store
        .get_service_account(&rule.tenant, &rule.identity)
        .await?;
    let who = ("service_account", rule.identity.as_str());
    let sa = match sa {
        Some(sa) if sa.identity.disabled_at.is_none() => sa,
        _ => {
            let e = Error::new(
                ErrorCode::AccessDenied,
                "The mapped service account does not exist or is disabled",
            )
            .with_details(json!({ "oauth_error": "invalid_grant" }));
            audit
                .record("token_exchange", &rule.tenant, who, Err(&e), extra)
                .await?;
            return Err(ApiError(e));
        }
    };
    let sa_granted = sa_scopes(&sa);
    // The mapping may narrow the service account's scopes, never widen them.
    let granted: Vec<String> = match &rule.scopes {
        Some(narrow) => narrow
            .iter()
            .filter(|n| scope::allows(&sa_granted, n))
            .cloned()
            .collect(),
        None => sa_granted,
    };
    let scopes = match grant_scopes(&granted, p.get("scope").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => {
            audit
                .record("token_exchange", &rule.tenant, who, Err(&e.0), extra)
                .await?;
            return Err(e);
        }
    };
    let (token, claims) = issue_for(&state, &sa.identity, scopes).await?;
    audit
        .record(
            "token_exchange",
            &rule.tenant,
            who,
            Ok(()),
            json!({ "issuer": peeked.iss, "subject": subject_id, "jti": claims.jti }),
        )
        .await?;
    Ok(no_store(
        Json(json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "scope": claims.scopes.join(" "),
            "identity_id": claims.sub,
            "tenant_id": claims.tenant,
        }))
        .into_response(),
    ))
}

fn sa_scopes(sa: &scaivault_store::ServiceAccountRow) -> Vec<String> {
    serde_json::from_str(&sa.identity.scopes).unwrap_or_default()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.issuer.jwks()).into_response();
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    resp
}

async fn rotate_keys(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("signing_key_rotate", None);
    ctx.principal.require_scope(scope::ADMIN)?;
    let kid = state
        .issuer
        .rotate()
        .await
        .map_err(|e| ApiError::unavailable("OA0003", "Signing key rotation", e))?;
    ctx.audit_extra("kid", json!(kid));
    let keys = state.issuer.jwks();
    let kids: Vec<Value> = keys["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.get("kid").cloned()).collect())
        .unwrap_or_default();
    Ok(Json(json!({ "kid": kid, "published_kids": kids })).into_response())
}

async fn introspect(
    State(state): State<AppState>,
    ctx: Ctx,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("token_introspect", None);
    ctx.principal.require_scope(scope::ADMIN)?;
    let body = body.require()?;
    let token = match body.get("token") {
        Some(Value::String(t)) if !t.is_empty() => t.trim().to_owned(),
        _ => return Err(Error::field("token", "must be a non-empty string").into()),
    };
    let inactive = || Json(json!({ "active": false })).into_response();
    let p = match state.auth.authenticate_token(&token).await {
        Ok(p) => p,
        Err(e) if e.code == ErrorCode::ServiceUnavailable => return Err(e.into()),
        Err(_) => return Ok(inactive()),
    };
    // A tenant's admin learns nothing about other tenants' tokens.
    if p.tenant_id != ctx.tenant {
        return Ok(inactive());
    }
    Ok(Json(json!({
        "active": true,
        "identity_id": p.identity_id,
        "identity_type": p.identity_type,
        "tenant_id": p.tenant_id,
        "scopes": p.scopes,
        "expires_at": opt_rfc3339(p.token_expires_at),
        "issued_at": opt_rfc3339(p.token_issued_at),
    }))
    .into_response())
}

impl ApiError {
    /// Adds `details.oauth_error` for OAuth clients.
    fn with_oauth(mut self, oauth: &str) -> ApiError {
        let mut d = self.0.details.take().unwrap_or_else(|| json!({}));
        if let Some(m) = d.as_object_mut() {
            m.insert("oauth_error".into(), json!(oauth));
        }
        self.0.details = Some(d);
        self
    }
}
