//! `/v1/policies`: access policies (CRUD, list with cursor, list-for-path), their bindings, and the
//! dry-run `POST /v1/policies/test`. Reading needs `policies:read`; changing needs `policies:write` and
//! an admin role over the tenant (partner-scope policies: `partner_admin` of the partner or
//! `super_admin`). Every change is audited atomically with it and recompiles the decision index.

use super::ctx::Ctx;
use super::cursor;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam, QueryMap};
use super::view;
use crate::authz::{admin_role_over, ctx_admin_role, PARTNER_ADMIN, SUPER_ADMIN};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use scaivault_core::policy::{parse_rules, Decision, Env, Perm, Subject};
use scaivault_core::time_fmt::{self, now_micros, opt_rfc3339, rfc3339};
use scaivault_core::{id, path as spath, Error, ErrorCode, FieldError};
use scaivault_store::{BindingRow, OpError, PolicyQuery, PolicyRow, WriteOp};
use serde_json::{json, Map, Value};

pub const POLICIES_READ: &str = "policies:read";
pub const POLICIES_WRITE: &str = "policies:write";
const CURSOR_KIND: &str = "p1:";
const MAX_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 1024;
const MAX_IDENTITY_ID: usize = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(list).post(create))
        .route("/v1/policies/test", post(test))
        .route(
            "/v1/policies/{id}",
            get(get_one).put(replace).patch(patch).delete(remove),
        )
        .route("/v1/policies/{id}/bindings", get(list_bindings).post(bind))
        .route("/v1/policies/{id}/bindings/{binding_id}", delete(unbind))
}

fn rules_value(p: &PolicyRow) -> Value {
    serde_json::from_str(&p.rules).unwrap_or_else(|_| json!([]))
}

fn policy_json(p: &PolicyRow, bindings: Option<&[BindingRow]>) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "scope": p.scope,
        "rules": rules_value(p),
        "is_active": p.is_active,
        "binding_count": p.binding_count,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
        "created_by": p.created_by,
        "updated_by": p.updated_by,
    });
    if let (Some(b), Some(o)) = (bindings, v.as_object_mut()) {
        o.insert(
            "bindings".into(),
            Value::Array(b.iter().map(binding_json).collect()),
        );
    }
    v
}

fn list_item(p: &PolicyRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "scope": p.scope,
        "rule_count": rules_value(p).as_array().map_or(0, Vec::len),
        "binding_count": p.binding_count,
        "is_active": p.is_active,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

fn binding_json(b: &BindingRow) -> Value {
    json!({
        "id": b.id,
        "policy_id": b.policy_id,
        "identity_type": b.identity_type,
        "identity_id": b.identity_id,
        "expires_at": opt_rfc3339(b.expires_at),
        "expired": b.expires_at.is_some_and(|e| e <= now_micros()),
        "created_at": rfc3339(b.created_at),
        "created_by": b.created_by,
    })
}

fn owners(ctx: &Ctx) -> Vec<String> {
    vec![ctx.tenant.clone(), ctx.partner.clone()]
}

fn owner_of(ctx: &Ctx, scope: &str) -> String {
    if scope == "partner" {
        ctx.partner.clone()
    } else {
        ctx.tenant.clone()
    }
}

/// `policies:write` plus an admin role able to manage policies of that scope here.
fn require_manage(ctx: &Ctx, scope: &str) -> Result<(), Error> {
    ctx.principal.require_scope(POLICIES_WRITE)?;
    let role = ctx_admin_role(ctx);
    let ok = match scope {
        "partner" => matches!(role, Some(SUPER_ADMIN | PARTNER_ADMIN)),
        _ => role.is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AccessDenied,
            format!(
                "Managing {scope}-scope policies requires an admin role ({})",
                if scope == "partner" {
                    "partner_admin or super_admin"
                } else {
                    "tenant_admin, partner_admin or super_admin"
                }
            ),
        ))
    }
}

fn text_field(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match body.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.contains('\0') => {
            Some(Some(s.clone()))
        }
        Some(_) => {
            errors.push(FieldError::new(
                key,
                &format!("must be a string of at most {max} characters"),
            ));
            None
        }
    }
}

/// Validated fields of a create / replace / patch body; `None` = absent.
struct PolicyInput {
    name: Option<String>,
    description: Option<Option<String>>,
    rules: Option<String>,
    is_active: Option<bool>,
    scope: Option<String>,
}

fn parse_input(body: &Map<String, Value>) -> Result<PolicyInput, Error> {
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "name" | "description" | "rules" | "scope" | "is_active" | "id" | "bindings"
        ) {
            return Err(Error::field(k, "unknown field"));
        }
    }
    let mut errors = Vec::new();
    let name = match text_field(body, "name", MAX_NAME, &mut errors) {
        Some(Some(n)) if !n.trim().is_empty() => Some(n),
        Some(_) => {
            errors.push(FieldError::new("name", "must be a non-empty string"));
            None
        }
        None => None,
    };
    let description = text_field(body, "description", MAX_DESCRIPTION, &mut errors);
    let is_active = match body.get("is_active") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(FieldError::new("is_active", "must be a boolean"));
            None
        }
    };
    let scope = match body.get("scope") {
        None => None,
        Some(Value::String(s)) if s == "tenant" || s == "partner" => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("scope", "must be 'tenant' or 'partner'"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let rules = match body.get("rules") {
        None => None,
        Some(v) => {
            let parsed = parse_rules(v)?;
            let arr: Vec<Value> = parsed.into_iter().map(|r| r.json).collect();
            Some(Value::Array(arr).to_string())
        }
    };
    Ok(PolicyInput {
        name,
        description,
        rules,
        is_active,
        scope,
    })
}

fn policy_not_found(id: &str) -> ApiError {
    Error::new(
        ErrorCode::PolicyNotFound,
        format!("Policy '{id}' not found"),
    )
    .with_details(json!({ "policy_id": id }))
    .into()
}

async fn load(state: &AppState, ctx: &Ctx, id: &str) -> ApiResult<PolicyRow> {
    state
        .store
        .get_policy(&owners(ctx), id)
        .await?
        .ok_or_else(|| policy_not_found(id))
}

fn audit_entry(
    ctx: &Ctx,
    action: &'static str,
    extra: &[(&str, Value)],
) -> scaivault_core::audit::AuditEntry {
    let mut e = ctx.entry_for_write(action, "", view::extra(extra));
    e.secret_path = None;
    e
}

/// Commits a policy change and recompiles the index on this node.
async fn commit(state: &AppState, op: WriteOp, id: &str) -> ApiResult<()> {
    match state.committer.submit(op).await {
        Ok(_) => {
            if let Err(e) = state.authz.reload().await {
                tracing::warn!(site = "PO0001", error = %e, "policy recompile failed; the refresh loop retries");
            }
            Ok(())
        }
        Err(e @ (OpError::Missing(_) | OpError::InUse)) => Err(ApiError::from_op(e, id, None)),
        Err(e) => Err(ApiError::unavailable("PO0002", "Storage", e)),
    }
}

async fn list(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("policy_list", None);
    ctx.principal.require_scope(POLICIES_READ)?;
    let scope = q.get("scope").filter(|s| !s.is_empty());
    let owners = match scope {
        None => owners(&ctx),
        Some("tenant") => vec![ctx.tenant.clone()],
        Some("partner") => vec![ctx.partner.clone()],
        Some(_) => {
            return Err(Error::invalid_request("scope must be 'tenant' or 'partner'").into())
        }
    };
    let include_inactive = q.bool("include_inactive")?;
    if let Some(path) = q.text("path")? {
        return list_for_path(&state, &ctx, &q, owners, include_inactive, &path).await;
    }
    let limit = q.int("limit", 1, 1000)?.unwrap_or(100);
    let after = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| cursor::decode(CURSOR_KIND, c))
        .transpose()?;
    let mut rows = state
        .store
        .list_policies(&PolicyQuery {
            owners: &owners,
            include_inactive,
            after: after.as_deref(),
            limit: limit + 1,
        })
        .await?;
    let limit = usize::try_from(limit).unwrap_or(100);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = if has_more {
        rows.last().map(|r| cursor::encode(CURSOR_KIND, &r.id))
    } else {
        None
    };
    Ok(Json(json!({
        "policies": rows.iter().map(list_item).collect::<Vec<_>>(),
        "cursor": cursor,
        "has_more": has_more,
    }))
    .into_response())
}

/// `GET /v1/policies?path=…[&permission=…]` (designed): the policies with a rule matching the path
/// (and granting the permission, when given), each with the indexes of its matching rules.
async fn list_for_path(
    state: &AppState,
    ctx: &Ctx,
    q: &QueryMap,
    owners: Vec<String>,
    include_inactive: bool,
    path: &str,
) -> ApiResult<Response> {
    spath::validate(path)?;
    let perm = match q.get("permission").filter(|s| !s.is_empty()) {
        None => None,
        Some(p) => Some(Perm::parse(p).ok_or_else(|| {
            Error::invalid_request(
                "permission must be one of read, write, delete, list, rotate, admin",
            )
        })?),
    };
    ctx.audit_extra("path", json!(path));
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = state
            .store
            .list_policies(&PolicyQuery {
                owners: &owners,
                include_inactive,
                after: after.as_deref(),
                limit: 1000,
            })
            .await?;
        let done = rows.len() < 1000;
        after = rows.last().map(|r| r.id.clone());
        for p in rows {
            let Ok(rules) = parse_rules(&rules_value(&p)) else {
                continue;
            };
            let matching: Vec<usize> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.matches(path) && perm.is_none_or(|pm| r.grants(pm)))
                .map(|(i, _)| i)
                .collect();
            if !matching.is_empty() {
                let mut v = policy_json(&p, None);
                if let Some(o) = v.as_object_mut() {
                    o.insert("matching_rules".into(), json!(matching));
                }
                out.push(v);
            }
        }
        if done {
            break;
        }
    }
    Ok(
        Json(json!({ "path": path, "policies": out, "cursor": null, "has_more": false }))
            .into_response(),
    )
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("policy_create", None);
    let body = body.require()?;
    let input = parse_input(&body)?;
    let scope = input.scope.unwrap_or_else(|| "tenant".into());
    require_manage(&ctx, &scope)?;
    let mut missing = Vec::new();
    if input.name.is_none() {
        missing.push(FieldError::new("name", "is required"));
    }
    if !missing.is_empty() {
        return Err(Error::validation(missing).into());
    }
    let Some(rules) = input.rules else {
        return Err(Error::new(
            ErrorCode::InvalidPolicy,
            "Invalid policy: rules: is required",
        )
        .with_details(json!({ "field": "rules", "reason": "is required" }))
        .into());
    };
    let now = now_micros();
    let row = PolicyRow {
        tenant_id: owner_of(&ctx, &scope),
        id: id::random("pol_", 16),
        name: input.name.unwrap_or_default(),
        description: input.description.flatten(),
        scope,
        rules,
        is_active: input.is_active.unwrap_or(true),
        created_at: now,
        updated_at: now,
        created_by: ctx.principal.identity_id.clone(),
        updated_by: ctx.principal.identity_id.clone(),
        binding_count: 0,
    };
    let entry = audit_entry(
        &ctx,
        "policy_create",
        &[("policy_id", json!(row.id)), ("scope", json!(row.scope))],
    );
    commit(
        &state,
        WriteOp::PutPolicy {
            row: row.clone(),
            replace: false,
            audit: vec![entry],
        },
        &row.id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(policy_json(&row, Some(&[])))).into_response())
}

async fn get_one(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("policy_read", None);
    ctx.audit_extra("policy_id", json!(id));
    ctx.principal.require_scope(POLICIES_READ)?;
    let p = load(&state, &ctx, &id).await?;
    let b = state.store.list_bindings(&p.tenant_id, &p.id).await?;
    Ok(Json(policy_json(&p, Some(&b))).into_response())
}

async fn update(
    state: AppState,
    ctx: Ctx,
    id: String,
    body: JsonObject,
    full: bool,
) -> ApiResult<Response> {
    ctx.audit("policy_update", None);
    ctx.audit_extra("policy_id", json!(id));
    let body = body.require()?;
    let input = parse_input(&body)?;
    ctx.principal.require_scope(POLICIES_WRITE)?;
    let mut p = load(&state, &ctx, &id).await?;
    require_manage(&ctx, &p.scope)?;
    if input.scope.as_ref().is_some_and(|s| *s != p.scope) {
        return Err(Error::field("scope", "cannot change; create a new policy instead").into());
    }
    if full {
        let mut missing = Vec::new();
        if input.name.is_none() {
            missing.push(FieldError::new("name", "is required"));
        }
        if !missing.is_empty() {
            return Err(Error::validation(missing).into());
        }
        if input.rules.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidPolicy,
                "Invalid policy: rules: is required",
            )
            .with_details(json!({ "field": "rules", "reason": "is required" }))
            .into());
        }
        p.description = input.description.flatten();
        p.is_active = input.is_active.unwrap_or(true);
    } else {
        if let Some(d) = input.description {
            p.description = d;
        }
        if let Some(a) = input.is_active {
            p.is_active = a;
        }
    }
    if let Some(n) = input.name {
        p.name = n;
    }
    if let Some(r) = input.rules {
        p.rules = r;
    }
    p.updated_at = now_micros();
    p.updated_by = ctx.principal.identity_id.clone();
    let entry = audit_entry(&ctx, "policy_update", &[("policy_id", json!(p.id))]);
    commit(
        &state,
        WriteOp::PutPolicy {
            row: p.clone(),
            replace: true,
            audit: vec![entry],
        },
        &id,
    )
    .await?;
    let b = state.store.list_bindings(&p.tenant_id, &p.id).await?;
    p.binding_count = i64::try_from(b.len()).unwrap_or(0);
    Ok(Json(policy_json(&p, Some(&b))).into_response())
}

async fn replace(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    update(state, ctx, id, body, true).await
}

async fn patch(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    update(state, ctx, id, body, false).await
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("policy_delete", None);
    ctx.audit_extra("policy_id", json!(id));
    ctx.principal.require_scope(POLICIES_WRITE)?;
    let force = q.bool("force")?;
    let p = load(&state, &ctx, &id).await?;
    require_manage(&ctx, &p.scope)?;
    let entry = audit_entry(
        &ctx,
        "policy_delete",
        &[("policy_id", json!(id)), ("force", json!(force))],
    );
    commit(
        &state,
        WriteOp::DeletePolicy {
            tenant_id: p.tenant_id.clone(),
            id: id.clone(),
            force,
            audit: vec![entry],
        },
        &id,
    )
    .await?;
    Ok(Json(json!({ "id": id, "deleted": true, "bindings_removed": if force { p.binding_count } else { 0 } })).into_response())
}

async fn list_bindings(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("policy_bindings_list", None);
    ctx.audit_extra("policy_id", json!(id));
    ctx.principal.require_scope(POLICIES_READ)?;
    let p = load(&state, &ctx, &id).await?;
    let b = state.store.list_bindings(&p.tenant_id, &p.id).await?;
    Ok(
        Json(
            json!({ "policy_id": id, "bindings": b.iter().map(binding_json).collect::<Vec<_>>() }),
        )
        .into_response(),
    )
}

fn identity_prefix(identity_type: &str) -> Option<&'static str> {
    match identity_type {
        "user" => Some("user:"),
        "service_account" => Some("sa:"),
        "group" => Some("group:"),
        _ => None,
    }
}

async fn bind(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("policy_bind", None);
    ctx.audit_extra("policy_id", json!(id));
    let body = body.require()?;
    ctx.principal.require_scope(POLICIES_WRITE)?;
    let invalid = |field: &str, why: &str| -> ApiError {
        Error::new(
            ErrorCode::InvalidPolicy,
            format!("Invalid binding: {field}: {why}"),
        )
        .with_details(json!({ "field": field, "reason": why }))
        .into()
    };
    for k in body.keys() {
        if !matches!(k.as_str(), "identity_type" | "identity_id" | "expires_at") {
            return Err(invalid(k, "unknown field"));
        }
    }
    let identity_type = body
        .get("identity_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(prefix) = identity_prefix(identity_type) else {
        return Err(invalid(
            "identity_type",
            "must be user, service_account or group",
        ));
    };
    let identity_id = body
        .get("identity_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    if identity_id.len() <= prefix.len()
        || identity_id.len() > MAX_IDENTITY_ID
        || !identity_id.starts_with(prefix)
        || identity_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(
            "identity_id",
            &format!("must be '{prefix}<name>' (at most {MAX_IDENTITY_ID} characters, no spaces) for identity_type {identity_type}"),
        ));
    }
    let now = now_micros();
    let expires_at = match body.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match time_fmt::parse(s) {
            Some(t) if t > now => Some(t),
            Some(_) => return Err(invalid("expires_at", "must be in the future")),
            None => return Err(invalid("expires_at", "must be an RFC 3339 timestamp")),
        },
        Some(_) => return Err(invalid("expires_at", "must be an RFC 3339 timestamp")),
    };
    let p = load(&state, &ctx, &id).await?;
    require_manage(&ctx, &p.scope)?;
    let row = BindingRow {
        tenant_id: p.tenant_id.clone(),
        id: id::random("bnd_", 16),
        policy_id: p.id.clone(),
        identity_type: identity_type.to_owned(),
        identity_id: identity_id.to_owned(),
        expires_at,
        created_at: now,
        created_by: ctx.principal.identity_id.clone(),
    };
    let entry = audit_entry(
        &ctx,
        "policy_bind",
        &[
            ("policy_id", json!(p.id)),
            ("binding_id", json!(row.id)),
            ("bound_identity", json!(identity_id)),
        ],
    );
    commit(
        &state,
        WriteOp::InsertBinding {
            row: row.clone(),
            audit: vec![entry],
        },
        &id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(binding_json(&row))).into_response())
}

async fn unbind(
    State(state): State<AppState>,
    ctx: Ctx,
    axum::extract::Path((id, binding_id)): axum::extract::Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.audit("policy_unbind", None);
    ctx.audit_extra("policy_id", json!(id));
    ctx.principal.require_scope(POLICIES_WRITE)?;
    let p = load(&state, &ctx, &id).await?;
    require_manage(&ctx, &p.scope)?;
    let entry = audit_entry(
        &ctx,
        "policy_unbind",
        &[("policy_id", json!(id)), ("binding_id", json!(binding_id))],
    );
    let op = WriteOp::DeleteBinding {
        tenant_id: p.tenant_id.clone(),
        policy_id: id.clone(),
        id: binding_id.clone(),
        audit: vec![entry],
    };
    match commit(&state, op, &binding_id).await {
        Err(e) if e.code() == ErrorCode::NotFound || e.code() == ErrorCode::BindingNotFound => {
            Err(Error::new(
                ErrorCode::BindingNotFound,
                format!("Binding '{binding_id}' not found on policy '{id}'"),
            )
            .with_details(json!({ "policy_id": id, "binding_id": binding_id }))
            .into())
        }
        Err(e) => Err(e),
        Ok(()) => {
            Ok(Json(json!({ "id": binding_id, "policy_id": id, "deleted": true })).into_response())
        }
    }
}

/// `POST /v1/policies/test`: would `identity_id` be allowed `permission` on `path` in this tenant?
/// Evaluates the identity's admin roles and the policies (not token scopes: there is no token).
/// Writes no audit entry.
async fn test(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.skip_audit();
    ctx.principal.require_scope(POLICIES_READ)?;
    let body = body.require()?;
    let mut errors = Vec::new();
    let identity_id = match body.get("identity_id").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= MAX_IDENTITY_ID && !s.contains('\0') => s.to_owned(),
        _ => {
            errors.push(FieldError::new(
                "identity_id",
                "is required: a string such as user:ann@example.com or sa:billing",
            ));
            String::new()
        }
    };
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let perm = match body
        .get("permission")
        .and_then(Value::as_str)
        .and_then(Perm::parse)
    {
        Some(p) => Some(p),
        None => {
            errors.push(FieldError::new(
                "permission",
                "must be one of read, write, delete, list, rotate, admin",
            ));
            None
        }
    };
    let ctx_obj = match body.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => {
            errors.push(FieldError::new("context", "must be an object"));
            Map::new()
        }
    };
    let source_ip = match ctx_obj.get("source_ip") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(|s| s.parse::<std::net::IpAddr>().ok()) {
            Some(ip) => Some(ip),
            None => {
                errors.push(FieldError::new(
                    "context.source_ip",
                    "must be an IPv4 or IPv6 address",
                ));
                None
            }
        },
    };
    let mfa = match ctx_obj.get("mfa_verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("context.mfa_verified", "must be a boolean"));
            false
        }
    };
    let now = match ctx_obj.get("timestamp") {
        None | Some(Value::Null) => now_micros(),
        Some(v) => match v.as_str().and_then(time_fmt::parse) {
            Some(t) => t,
            None => {
                errors.push(FieldError::new(
                    "context.timestamp",
                    "must be an RFC 3339 timestamp",
                ));
                0
            }
        },
    };
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    spath::validate(&path)?;
    let perm = perm.unwrap_or(Perm::Read);
    let identity = state.store.get_identity(&ctx.tenant, &identity_id).await?;
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    let (groups, roles) = identity
        .as_ref()
        .map(|i| (list(&i.groups), list(&i.roles)))
        .unwrap_or_default();
    if let Some(role) =
        admin_role_over(&roles, &ctx.tenant, &ctx.partner, &ctx.tenant, &ctx.partner)
    {
        return Ok(Json(json!({
            "allowed": true,
            "identity_id": identity_id,
            "path": path,
            "permission": perm.as_str(),
            "reason": format!("admin role {role}"),
            "policy_id": null,
            "policy_name": null,
            "rule_index": null,
            "path_pattern": null,
        }))
        .into_response());
    }
    let subject = Subject {
        identity_id: &identity_id,
        groups: &groups,
        tenant: &ctx.tenant,
        partner: &ctx.partner,
    };
    let env = Env {
        source_ip,
        mfa_verified_at: mfa.then_some(now),
        now,
    };
    let v = match state.authz.decide(&subject, perm, &path, &env) {
        Decision::Allowed {
            policy_id,
            policy_name,
            rule_index,
            path_pattern,
        } => json!({
            "allowed": true,
            "identity_id": identity_id,
            "path": path,
            "permission": perm.as_str(),
            "reason": "allowed by policy rule",
            "policy_id": policy_id,
            "policy_name": policy_name,
            "rule_index": rule_index,
            "path_pattern": path_pattern,
        }),
        Decision::Denied {
            code,
            reason,
            policy_id,
            rule_index,
        } => json!({
            "allowed": false,
            "identity_id": identity_id,
            "path": path,
            "permission": perm.as_str(),
            "code": code.as_str(),
            "reason": reason,
            "policy_id": policy_id,
            "rule_index": rule_index,
        }),
    };
    Ok(Json(v).into_response())
}
