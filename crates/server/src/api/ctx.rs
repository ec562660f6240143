//! Per-request context and the pipeline middleware every `/v1` request passes through:
//! request id → authenticate → handler → audit entry made durable → response.

use super::error::{ApiError, ErrorCodeTag};
use crate::auth::Principal;
use crate::ratelimit::{Category, Decision};
use crate::state::AppState;
use crate::tenancy::{PartnerScope, TenantPrefix};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use scaivault_core::audit::AuditEntry;
use scaivault_core::{id, time_fmt::now_micros, Error};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, for error bodies and log lines.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// What the handler wants recorded. Batch handlers add one item per path.
#[derive(Default)]
pub struct AuditDraft {
    action: Option<&'static str>,
    path: Option<String>,
    extra: Map<String, Value>,
    items: Vec<AuditItem>,
    /// The handler committed its entries atomically with its write.
    recorded: bool,
}

pub struct AuditItem {
    pub action: &'static str,
    pub path: String,
    pub error: Option<(&'static str, i32)>,
}

#[derive(Clone)]
pub struct Ctx {
    pub request_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub started: Instant,
    pub principal: Arc<Principal>,
    /// The tenant this request acts in: the token's own, or one a partner admin selected with
    /// `/v1/t/{tenant}/…` or `X-Tenant-ID`. Every store call of a handler uses this, never the token's.
    pub tenant: String,
    /// The partner owning [`Ctx::tenant`].
    pub partner: String,
    /// The request addresses the partner's shared secrets (`/v1/partner/secrets/…`); `tenant` is then
    /// the partner's shared-secrets tenant.
    pub partner_scope: bool,
    draft: Arc<Mutex<AuditDraft>>,
}

impl Ctx {
    /// The rate-limit bucket owner: the identity within its tenant.
    pub fn rate_key(&self) -> String {
        format!(
            "{}\u{0}{}",
            self.principal.tenant_id, self.principal.identity_id
        )
    }

    /// Names what this request does, for its audit entry.
    pub fn audit(&self, action: &'static str, path: Option<&str>) {
        let mut d = self.draft.lock();
        d.action = Some(action);
        d.path = path.map(str::to_owned);
    }

    pub fn audit_extra(&self, key: &str, value: Value) {
        self.draft.lock().extra.insert(key.to_owned(), value);
    }

    pub fn audit_item(&self, item: AuditItem) {
        self.draft.lock().items.push(item);
    }

    /// This request writes no audit entry (documented dry runs such as `POST /v1/policies/test`).
    pub fn skip_audit(&self) {
        self.draft.lock().recorded = true;
    }

    /// The entry for this request, to commit atomically with a write. Marks the request as recorded.
    pub fn entry_for_write(
        &self,
        action: &'static str,
        path: &str,
        extra: Map<String, Value>,
    ) -> AuditEntry {
        self.draft.lock().recorded = true;
        self.make_entry(action, Some(path.to_owned()), true, 200, None, extra)
    }

    fn make_entry(
        &self,
        action: &str,
        path: Option<String>,
        success: bool,
        status: i32,
        error_code: Option<String>,
        extra: Map<String, Value>,
    ) -> AuditEntry {
        AuditEntry {
            id: id::audit_log_id(),
            tenant_id: self.tenant.clone(),
            timestamp: now_micros(),
            action: action.to_owned(),
            identity_type: self.principal.identity_type.clone(),
            identity_id: self.principal.identity_id.clone(),
            secret_path: path,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            success,
            status,
            error_code,
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            request_id: self.request_id.clone(),
            extra_data: Value::Object(extra).to_string(),
        }
    }

    fn entries_after(
        &self,
        status: u16,
        error: Option<ErrorCodeTag>,
        method: &Method,
    ) -> Vec<AuditEntry> {
        let d = std::mem::take(&mut *self.draft.lock());
        if d.recorded {
            return vec![];
        }
        let status = i32::from(status);
        if !d.items.is_empty() {
            return d
                .items
                .into_iter()
                .map(|it| {
                    let (ok, st, code) = match it.error {
                        None => (true, status, None),
                        Some((code, st)) => (false, st, Some(code.to_owned())),
                    };
                    self.make_entry(it.action, Some(it.path), ok, st, code, d.extra.clone())
                })
                .collect();
        }
        let action = d.action.unwrap_or(match *method {
            Method::GET | Method::HEAD => "read",
            Method::DELETE => "delete",
            _ => "write",
        });
        let error_code = error.map(|e| e.0.as_str().to_owned());
        vec![self.make_entry(action, d.path, status < 400, status, error_code, d.extra)]
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| ApiError::internal("RQ0001", "request context missing"))
    }
}

fn rate_limited(category: Category, d: &Decision) -> Response {
    let e = Error::new(
        scaivault_core::ErrorCode::RateLimited,
        format!("Rate limit of {} {} requests per minute exceeded; retry after {} s", d.limit, category.name(), d.retry_after),
    )
    .with_details(serde_json::json!({ "category": category.name(), "limit": d.limit, "retry_after": d.retry_after }));
    let mut resp = ApiError(e).into_response();
    if let Ok(v) = HeaderValue::from_str(&d.retry_after.to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// Takes `n` tokens from the caller's bucket of `category`, under its home tenant's overrides if it has
/// any. A failed tenant lookup keeps the node's limits (the request itself fails elsewhere if it matters).
pub async fn take_rate(
    state: &AppState,
    ctx: &Ctx,
    category: Category,
    n: u32,
    force: bool,
) -> Decision {
    let home = state
        .tenants
        .get(&ctx.principal.tenant_id)
        .await
        .ok()
        .flatten();
    let overrides = home.as_ref().and_then(|t| t.rate_limits.as_ref());
    state
        .rate
        .take_shared(&ctx.rate_key(), category, n, force, overrides)
        .await
}

pub fn set_rate_headers(resp: &mut Response, d: &Decision) {
    if d.limit == 0 {
        return;
    }
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset_unix.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

fn is_public(path: &str) -> bool {
    matches!(path, "/v1/health" | "/v1/health/ready" | "/v1/version")
        || super::oauth::is_public(path)
}

fn header_str(req: &Request, name: axum::http::HeaderName, max: usize) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(max).collect())
}

pub async fn pipeline(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = id::request_id();
    let rid_header = HeaderValue::from_str(&request_id).ok();
    let scoped_id = request_id.clone();
    let fut = async move {
        let started = Instant::now();
        if is_public(req.uri().path()) {
            return next.run(req).await;
        }
        let source_ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = header_str(&req, axum::http::header::USER_AGENT, 256);
        let method = req.method().clone();
        let principal = match state.auth.authenticate(req.headers()).await {
            Ok(p) => p,
            Err(e) => return refused(&state, e, &request_id, source_ip, user_agent, started).await,
        };
        let requested = req
            .extensions()
            .get::<TenantPrefix>()
            .map(|t| t.0.clone())
            .or_else(|| header_str(&req, HeaderName::from_static("x-tenant-id"), 200));
        let partner_scope = req.extensions().get::<PartnerScope>().is_some();
        let resolved = state
            .tenants
            .resolve(&principal, requested.as_deref(), partner_scope)
            .await;
        let (tenant, partner, refusal) = match resolved {
            Ok((t, p)) => (t, p, None),
            // Refused requests are audited in the caller's own tenant.
            Err(e) => (
                principal.tenant_id.clone(),
                principal.partner_id.clone(),
                Some(e),
            ),
        };
        let ctx = Ctx {
            request_id: request_id.clone(),
            source_ip,
            user_agent,
            started,
            tenant,
            partner,
            partner_scope,
            principal,
            draft: Arc::new(Mutex::new(AuditDraft::default())),
        };
        req.extensions_mut().insert(ctx.clone());
        let category = Category::of(&method, req.uri().path());
        let decision = take_rate(&state, &ctx, category, 1, false).await;
        let mut resp = if !decision.allowed {
            rate_limited(category, &decision)
        } else if let Some(e) = refusal {
            ctx.audit("tenant_access", None);
            if let Some(t) = &requested {
                ctx.audit_extra(
                    "requested_tenant",
                    Value::String(t.chars().take(200).collect()),
                );
            }
            ApiError(e).into_response()
        } else {
            next.run(req).await
        };
        set_rate_headers(&mut resp, &decision);
        let tag = resp.extensions().get::<ErrorCodeTag>().copied();
        let entries = ctx.entries_after(resp.status().as_u16(), tag, &method);
        if state.settings.dev_disable_audit {
            // `SCAIVAULT_DEV_DISABLE_AUDIT=1` (refused without --dev): measuring audit's cost only.
            return resp;
        }
        // The entry must be durable before the response leaves; if it cannot be, the request fails.
        if let Err(e) = state.committer.audit(entries).await {
            return ApiError::unavailable("AD0001", "Audit log", e).into_response();
        }
        resp
    };
    let mut resp = REQUEST_ID.scope(scoped_id, fut).await;
    if let Some(v) = rid_header {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// A request refused at authentication is audited too (under the system tenant), then answered.
async fn refused(
    state: &AppState,
    e: Error,
    request_id: &str,
    source_ip: Option<String>,
    user_agent: Option<String>,
    started: Instant,
) -> Response {
    let entry = AuditEntry {
        id: id::audit_log_id(),
        tenant_id: String::new(),
        timestamp: now_micros(),
        action: "authenticate".into(),
        identity_type: "anonymous".into(),
        identity_id: String::new(),
        secret_path: None,
        source_ip,
        user_agent,
        success: false,
        status: i32::from(e.code.status()),
        error_code: Some(e.code.as_str().to_owned()),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(0),
        request_id: request_id.to_owned(),
        extra_data: "{}".into(),
    };
    if state.settings.dev_disable_audit {
        return ApiError(e).into_response();
    }
    if let Err(err) = state.committer.audit(vec![entry]).await {
        return ApiError::unavailable("AD0002", "Audit log", err).into_response();
    }
    ApiError(e).into_response()
}
