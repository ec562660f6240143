//! `/v1/audit`: the query API over the audit trail, per-secret and per-identity views, a summary, and a
//! live check of the tenant's hash chain. Scope `audit:read`.

use super::ctx::Ctx;
use super::cursor;
use super::error::ApiResult;
use super::extract::{PathParam, QueryMap};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use scaivault_core::audit::ChainVerifier;
use scaivault_core::time_fmt::{now_micros, opt_rfc3339, rfc3339};
use scaivault_core::{path as spath, Error, ErrorCode};
use scaivault_store::{AuditQuery, AuditRecord, AuditStats};
use serde_json::{json, Map, Value};

pub const AUDIT_READ: &str = "audit:read";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/logs", get(logs))
        .route("/v1/audit/secrets/{*path}", get(for_secret))
        .route("/v1/audit/identities/{identity_id}", get(for_identity))
        .route("/v1/audit/summary", get(summary))
        .route("/v1/audit/verify", get(verify))
}

fn decode_cursor(c: &str) -> Result<i64, Error> {
    let seq = cursor::decode(cursor::AUDIT, c)?;
    seq.parse().map_err(|_| {
        Error::new(
            ErrorCode::InvalidCursor,
            "Cursor is malformed; pass back the cursor of the previous page",
        )
    })
}

fn time_param(q: &QueryMap, key: &str) -> Result<Option<i64>, Error> {
    match q.get(key) {
        None | Some("") => Ok(None),
        Some(v) => scaivault_core::time_fmt::parse(v).map(Some).ok_or_else(|| {
            Error::invalid_request(format!(
                "Query parameter '{key}' must be an RFC 3339 time or a date (YYYY-MM-DD)"
            ))
        }),
    }
}

fn text_param(q: &QueryMap, key: &str) -> Result<Option<String>, Error> {
    q.text(key).map_err(|e| e.0)
}

/// The documented filters, shared by every trail endpoint.
pub fn parse_filters(q: &QueryMap, tenant: &str) -> Result<AuditQuery, Error> {
    let actions: Vec<String> = q
        .get("action")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if actions
        .iter()
        .any(|a| a.len() > 64 || !a.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    {
        return Err(Error::invalid_request(
            "Query parameter 'action' must be action names, comma-separated",
        ));
    }
    let identity_type = text_param(q, "identity_type")?;
    if let Some(t) = &identity_type {
        if !matches!(
            t.as_str(),
            "user" | "service_account" | "group" | "anonymous"
        ) {
            return Err(Error::invalid_request(
                "identity_type must be user, service_account or group",
            ));
        }
    }
    let path_prefix = text_param(q, "path_prefix")?;
    if let Some(p) = &path_prefix {
        spath::validate_prefix(p)?;
    }
    let success = match q.get("success") {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => {
            return Err(Error::invalid_request(
                "Query parameter 'success' must be true or false",
            ))
        }
    };
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(Error::invalid_request(
                    "Query parameter 'limit' must be between 1 and 1000",
                ))
            }
        },
    };
    let before_seq = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    Ok(AuditQuery {
        tenant_id: tenant.to_owned(),
        from: time_param(q, "from")?,
        to: time_param(q, "to")?,
        actions,
        identity_id: text_param(q, "identity_id")?,
        identity_type,
        path_prefix,
        secret_path: None,
        success,
        source_ip: text_param(q, "source_ip")?,
        request_id: text_param(q, "request_id")?,
        before_seq,
        limit,
    })
}

pub fn entry_json(r: &AuditRecord) -> Value {
    let e = &r.entry;
    let extra: Value = serde_json::from_str(&e.extra_data).unwrap_or_else(|_| json!({}));
    json!({
        "id": e.id,
        "tenant_id": e.tenant_id,
        "timestamp": rfc3339(e.timestamp),
        "action": e.action,
        "identity_type": e.identity_type,
        "identity_id": e.identity_id,
        "secret_path": e.secret_path,
        "source_ip": e.source_ip,
        "user_agent": e.user_agent,
        "success": e.success,
        "status": e.status,
        "error_code": e.error_code,
        "duration_ms": e.duration_ms,
        "request_id": e.request_id,
        "extra_data": extra,
        "seq": r.seq,
        "hash": hex::encode(&r.hash),
    })
}

/// Runs a trail query and renders `{logs, cursor, has_more}`.
async fn trail(state: &AppState, mut q: AuditQuery) -> ApiResult<Map<String, Value>> {
    let limit = q.limit;
    q.limit = limit + 1;
    let mut rows = state.store.query_audit(&q).await?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let cursor = if has_more {
        rows.last()
            .map(|r| cursor::encode(cursor::AUDIT, &r.seq.to_string()))
    } else {
        None
    };
    let mut out = Map::new();
    out.insert(
        "logs".into(),
        Value::Array(rows.iter().map(entry_json).collect()),
    );
    out.insert("cursor".into(), json!(cursor));
    out.insert("has_more".into(), json!(has_more));
    Ok(out)
}

fn counts(v: &[(String, i64)]) -> Value {
    Value::Object(v.iter().map(|(k, n)| (k.clone(), json!(n))).collect())
}

fn stats_json(s: &AuditStats) -> Value {
    json!({
        "total_events": s.total,
        "successful_events": s.successful,
        "failed_events": s.total - s.successful,
        "unique_identities": s.unique_identities,
        "unique_secrets": s.unique_paths,
        "events_by_action": counts(&s.by_action),
        "first_event_at": opt_rfc3339(s.first_at),
        "last_event_at": opt_rfc3339(s.last_at),
    })
}

async fn logs(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("audit_query", None);
    ctx.principal.require_scope(AUDIT_READ)?;
    let filters = parse_filters(&q, &ctx.tenant)?;
    Ok(Json(Value::Object(trail(&state, filters).await?)).into_response())
}

async fn for_secret(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(path): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    // The queried path goes in extra_data: an audit query is not an access of the secret.
    ctx.audit("audit_query", None);
    ctx.audit_extra("secret_path", json!(path));
    ctx.principal.require_scope(AUDIT_READ)?;
    spath::validate(&path)?;
    let mut filters = parse_filters(&q, &ctx.tenant)?;
    filters.secret_path = Some(path.clone());
    let mut out = trail(&state, filters.clone()).await?;
    let since = now_micros() - 30 * 86_400 * 1_000_000;
    let window = AuditQuery {
        from: Some(since),
        to: None,
        actions: vec![],
        before_seq: None,
        ..filters
    };
    let s = state.store.audit_stats(&window).await?;
    let mut summary = stats_json(&s);
    let action = |a: &str| s.by_action.iter().find(|x| x.0 == a).map_or(0, |x| x.1);
    summary["period_days"] = json!(30);
    summary["reads"] = json!(action("read"));
    summary["writes"] = json!(action("write"));
    summary["identities"] = json!(s
        .by_identity
        .iter()
        .map(|(id, n)| json!({"identity_id": id, "events": n}))
        .collect::<Vec<_>>());
    summary["source_ips"] = json!(s.by_source_ip.iter().map(|x| &x.0).collect::<Vec<_>>());
    summary["last_accessed_at"] = json!(opt_rfc3339(s.last_at));
    out.insert("path".into(), json!(path));
    out.insert("summary".into(), summary);
    Ok(Json(Value::Object(out)).into_response())
}

async fn for_identity(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(identity): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("audit_query", None);
    ctx.audit_extra("identity_id", json!(identity));
    ctx.principal.require_scope(AUDIT_READ)?;
    if identity.is_empty() || identity.len() > 320 || identity.chars().any(char::is_control) {
        return Err(Error::invalid_request("identity id must be 1 to 320 characters").into());
    }
    let mut filters = parse_filters(&q, &ctx.tenant)?;
    filters.identity_id = Some(identity.clone());
    let mut out = trail(&state, filters.clone()).await?;
    let window = AuditQuery {
        before_seq: None,
        ..filters
    };
    let s = state.store.audit_stats(&window).await?;
    let mut summary = stats_json(&s);
    summary["resources_accessed"] = json!(s.by_path.iter().map(|x| &x.0).collect::<Vec<_>>());
    summary["resources"] = json!(s
        .by_path
        .iter()
        .map(|(p, n)| json!({"path": p, "events": n}))
        .collect::<Vec<_>>());
    summary["source_ips"] = json!(s.by_source_ip.iter().map(|x| &x.0).collect::<Vec<_>>());
    out.insert("identity_id".into(), json!(identity));
    out.insert("summary".into(), summary);
    Ok(Json(Value::Object(out)).into_response())
}

async fn summary(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("audit_query", None);
    ctx.principal.require_scope(AUDIT_READ)?;
    let filters = AuditQuery {
        tenant_id: ctx.tenant.clone(),
        from: time_param(&q, "from")?,
        to: time_param(&q, "to")?,
        limit: 1,
        ..AuditQuery::default()
    };
    let s = state.store.audit_stats(&filters).await?;
    let mut body = stats_json(&s);
    let top = |v: &[(String, i64)], key: &str| {
        v.iter()
            .take(10)
            .map(|(k, n)| json!({ key: k, "events": n }))
            .collect::<Vec<_>>()
    };
    body["top_identities"] = json!(top(&s.by_identity, "identity_id"));
    body["top_secrets"] = json!(top(&s.by_path, "path"));
    body["period"] = json!({ "from": opt_rfc3339(filters.from), "to": opt_rfc3339(filters.to) });
    Ok(Json(body).into_response())
}

/// Recomputes the tenant's chain from the database (from the retention anchor, where old entries were
/// pruned, else from the genesis hash) and compares it with the recorded head.
async fn verify(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("audit_verify", None);
    ctx.principal.require_scope(AUDIT_READ)?;
    let tenant = &ctx.tenant;
    // The pruner may move the anchor while we read; a check that started before the move is repeated.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let anchor = state.store.audit_anchor(tenant).await?;
        let (v, broken, head) = verify_chain(&state, tenant, anchor.clone()).await?;
        if broken.is_some() && attempt < 3 && state.store.audit_anchor(tenant).await? != anchor {
            continue;
        }
        return Ok(Json(json!({
            "valid": broken.is_none(),
            "entries_checked": v.checked,
            "head_seq": head.map(|h| h.0),
            "anchor": anchor.map(|(seq, hash)| json!({ "seq": seq, "hash": hex::encode(hash) })),
            "first_bad": broken.map(|b| json!({ "seq": b.seq, "id": b.id, "reason": b.reason })),
        }))
        .into_response());
    }
}

type Verified = (
    ChainVerifier,
    Option<scaivault_core::audit::ChainBreak>,
    Option<(i64, Vec<u8>)>,
);

async fn verify_chain(
    state: &AppState,
    tenant: &str,
    anchor: Option<(i64, Vec<u8>)>,
) -> ApiResult<Verified> {
    // Verify up to the head as it is now; entries appended meanwhile are left for the next check.
    let head = state.store.audit_head(tenant).await?;
    let head_seq = head.as_ref().map_or(0, |h| h.0);
    let mut v = match anchor {
        Some((seq, hash)) => ChainVerifier::resume(seq, hash),
        None => ChainVerifier::default(),
    };
    let mut broken = None;
    'pages: while v.last_seq() < head_seq {
        let page = state.store.audit_chain(tenant, v.last_seq(), 5000).await?;
        if page.is_empty() {
            break;
        }
        for r in page.iter().take_while(|r| r.seq <= head_seq) {
            if let Err(b) = v.push(r.seq, &r.entry, &r.hash) {
                broken = Some(b);
                break 'pages;
            }
        }
        if page.len() < 5000 {
            break;
        }
    }
    if broken.is_none() {
        if let Some((seq, hash)) = &head {
            if *seq != v.last_seq() || (*seq > 0 && hash.as_slice() != v.last_hash()) {
                broken = Some(scaivault_core::audit::ChainBreak {
                    seq: v.last_seq() + 1,
                    id: String::new(),
                    reason:
                        "entries are missing at the end of the chain (before its recorded head)",
                });
            }
        }
    }
    Ok((v, broken, head))
}
