//! `/v1/identity/…`: partners, tenants, users, groups and admin roles. In the hosted product this is a
//! cache of ScaiKey; here the server is the identity store, so the documented read endpoints come with
//! write endpoints in the same style (docs/api.md, "Identity"). Reading needs `identity:read`, changing
//! needs `identity:admin` and an admin role over the target: `super_admin` anywhere, `partner_admin`
//! within its partner, `tenant_admin` within its tenant.

use super::ctx::Ctx;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam, PathParams, QueryMap};
use super::view;
use crate::auth::Principal;
use crate::ratelimit::TenantLimits;
use crate::state::AppState;
use crate::tenancy::{
    is_partner_admin_of, is_super_admin, is_tenant_admin_of, tenant_not_found, PARTNER_ADMIN,
    ROLES, SUPER_ADMIN, TENANT_ADMIN,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use scaivault_core::time_fmt::{now_micros, rfc3339};
use scaivault_core::{id, scope, Error, ErrorCode, FieldError};
use scaivault_store::{
    IdentityOp, IdentityQuery, IdentityRow, OpError, OpOutcome, Page, PartnerRow, TenantRow,
    WriteOp,
};
use serde_json::{json, Map, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/identity/partners",
            get(list_partners).post(create_partner),
        )
        .route("/v1/identity/partners/{partner_id}", get(get_partner))
        .route(
            "/v1/identity/tenants",
            get(list_tenants).post(create_tenant),
        )
        .route(
            "/v1/identity/tenants/{tenant_id}",
            get(get_tenant).patch(update_tenant),
        )
        .route(
            "/v1/identity/tenants/{tenant_id}/users",
            get(list_users).post(create_user),
        )
        .route(
            "/v1/identity/tenants/{tenant_id}/users/{user_id}",
            get(get_user).patch(update_user).delete(disable_user),
        )
        .route(
            "/v1/identity/tenants/{tenant_id}/groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/v1/identity/tenants/{tenant_id}/groups/{group_id}",
            delete(delete_group),
        )
        .route(
            "/v1/identity/groups/{group_id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/v1/identity/groups/{group_id}/members/{member_id}",
            delete(remove_member),
        )
        .route(
            "/v1/identity/resolve/{identity_type}/{identity_id}",
            get(resolve),
        )
        .route("/v1/identity/roles", get(roles))
        .route(
            "/v1/identity/users/{user_id}/roles",
            get(get_roles).put(put_roles),
        )
        .route("/v1/identity/sync", post(sync))
}

// ---- shared helpers ----

fn denied(msg: &str) -> ApiError {
    Error::new(ErrorCode::AccessDenied, msg).into()
}

fn list_of(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn page(q: &QueryMap) -> ApiResult<(Page, i64, i64)> {
    let page = q.int("page", 1, 1_000_000)?.unwrap_or(1);
    let size = q.int("page_size", 1, 1000)?.unwrap_or(50);
    Ok((
        Page {
            offset: (page - 1) * size,
            limit: size,
        },
        page,
        size,
    ))
}

fn status_filter(q: &QueryMap, allowed: &[&str]) -> ApiResult<Option<String>> {
    match q.text("status")? {
        None => Ok(None),
        Some(s) => {
            let up = s.to_ascii_uppercase();
            if allowed.contains(&up.as_str()) {
                Ok(Some(up))
            } else {
                Err(Error::invalid_request(format!(
                    "Query parameter 'status' must be one of {}",
                    allowed.join(", ")
                ))
                .into())
            }
        }
    }
}

/// `tnt_…`/`ptn_…` ids chosen by the caller: the prefix, then 1–60 of `a-z 0-9 _`.
fn valid_scoped_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (1..=60).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn valid_slug(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ',' | ';' | '<' | '>'))
}

fn valid_group_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

fn opt_string(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
            Some(s.trim().to_owned())
        }
        Some(_) => {
            errors.push(FieldError::new(
                key,
                &format!("must be a string of 1 to {max} characters"),
            ));
            None
        }
    }
}

fn string_list(
    body: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.len() <= 200 => {
            let mut out: Vec<String> = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(s) if !s.is_empty() && s.len() <= 200 => {
                        if !out.iter().any(|x| x == s) {
                            out.push(s.to_owned());
                        }
                    }
                    _ => errors.push(FieldError::new(
                        &format!("{key}[{i}]"),
                        "must be a non-empty string",
                    )),
                }
            }
            Some(out)
        }
        Some(_) => {
            errors.push(FieldError::new(key, "must be an array of strings"));
            None
        }
    }
}

fn reject_unknown(body: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for k in body.keys() {
        if !known.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                &format!("unknown field; expected {}", known.join(", ")),
            ));
        }
    }
}

fn check(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(errors).into())
    }
}

/// Submits an identity change with its audit entry; maps the outcome to the API's errors.
async fn apply(
    state: &AppState,
    ctx: &Ctx,
    action: &'static str,
    target: &str,
    op: IdentityOp,
) -> ApiResult<()> {
    let mut entry = ctx.entry_for_write(action, "", view::extra(&[("target", json!(target))]));
    entry.secret_path = None;
    match state
        .committer
        .submit(WriteOp::Identity {
            op,
            audit: vec![entry],
        })
        .await
    {
        Ok(OpOutcome::Done) => {
            // Roles, scopes, groups and status feed the cached principals of this node.
            state.auth.invalidate_all();
            Ok(())
        }
        Ok(_) => Err(ApiError::internal("ID0001", "unexpected identity outcome")),
        Err(OpError::AlreadyExists) => Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("'{target}' already exists"),
        )
        .with_details(json!({ "id": target }))
        .into()),
        Err(OpError::IdentityNotFound) => Err(identity_not_found(target)),
        Err(e) => Err(ApiError::unavailable("ID0002", "Storage", e)),
    }
}

fn identity_not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(300).collect();
    Error::new(
        ErrorCode::IdentityNotFound,
        format!("Identity '{shown}' not found"),
    )
    .with_details(json!({ "identity_id": shown }))
    .into()
}

/// The tenant named in a URL, if the caller may see it. Callers who are not partner admins learn
/// nothing about other tenants: they get `tenant_access_denied` whether or not the tenant exists.
async fn tenant_in_reach(state: &AppState, ctx: &Ctx, tenant_id: &str) -> ApiResult<TenantRow> {
    let p = &ctx.principal;
    let own = tenant_id == p.tenant_id || tenant_id == ctx.tenant;
    if !own && !is_super_admin(p) && !p.roles.iter().any(|r| r == PARTNER_ADMIN) {
        return Err(Error::new(
            ErrorCode::TenantAccessDenied,
            "Reading another tenant needs partner-admin privileges",
        )
        .into());
    }
    let t = state
        .store
        .get_tenant(tenant_id)
        .await?
        .filter(|t| t.kind == "tenant")
        .ok_or_else(|| ApiError(tenant_not_found(tenant_id)))?;
    if !own && !is_partner_admin_of(p, &t.partner_id) {
        return Err(denied("The tenant does not belong to your partner"));
    }
    Ok(t)
}

/// Like [`tenant_in_reach`], for changes: the caller must administer the tenant.
async fn tenant_to_admin(state: &AppState, ctx: &Ctx, tenant_id: &str) -> ApiResult<TenantRow> {
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let t = tenant_in_reach(state, ctx, tenant_id).await?;
    if !is_tenant_admin_of(&ctx.principal, &t.id, &t.partner_id) {
        return Err(denied(
            "Changing identities needs the tenant_admin, partner_admin or super_admin role",
        ));
    }
    Ok(t)
}

// ---- views ----

fn partner_json(p: &PartnerRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "slug": p.slug,
        "region": p.region,
        "status": p.status,
        "created_at": rfc3339(p.created_at),
        // This server is the identity store, so nothing is ever synced from elsewhere.
        "last_synced_at": null,
    })
}

fn tenant_json(t: &TenantRow) -> Value {
    json!({
        "id": t.id,
        "partner_id": t.partner_id,
        "name": t.name,
        "slug": t.slug,
        "status": t.status,
        "created_at": rfc3339(t.created_at),
        "rate_limits": crate::tenancy::tenant_limits(t).map(|l| l.to_json()),
    })
}

/// `rate_limits` of a tenant body: `Some(None)` for an explicit `null` (back to the node's limits),
/// `Some(Some(json))` for valid overrides. Only partner admins reach this: a tenant must not lift its own
/// limits.
fn rate_limits_field(
    body: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match body.get("rate_limits")? {
        Value::Null => Some(None),
        v => match TenantLimits::from_json(v) {
            Ok(l) if l.is_empty() => Some(None),
            Ok(l) => Some(Some(l.to_json().to_string())),
            Err(e) => {
                errors.push(FieldError::new("rate_limits", &e));
                None
            }
        },
    }
}

fn status_of(i: &IdentityRow) -> &'static str {
    if i.disabled_at.is_some() {
        "DISABLED"
    } else {
        "ACTIVE"
    }
}

async fn identity_json(state: &AppState, i: &IdentityRow) -> ApiResult<Value> {
    let mut groups = list_of(&i.groups);
    for g in state.store.member_groups(&i.tenant_id, &i.id).await? {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let kind = match i.identity_type.as_str() {
        "service_account" => "service_account",
        _ => "user",
    };
    let mut v = json!({
        "id": i.id,
        "type": kind,
        "tenant_id": i.tenant_id,
        "display_name": i.display_name,
        "status": status_of(i),
        "groups": groups,
        "roles": list_of(&i.roles),
        "scopes": list_of(&i.scopes),
        "created_at": rfc3339(i.created_at),
        "last_synced_at": null,
    });
    if let Some(email) = i.id.strip_prefix("user:") {
        v["email"] = json!(email);
        v["mfa_enabled"] = json!(false);
    }
    Ok(v)
}

async fn group_json(state: &AppState, g: &IdentityRow) -> ApiResult<Value> {
    let members = state.store.group_members(&g.tenant_id, &g.id).await?;
    Ok(json!({
        "id": g.id,
        "type": "group",
        "tenant_id": g.tenant_id,
        "name": g.id.strip_prefix("group:").unwrap_or(&g.id),
        "display_name": g.display_name,
        "member_count": members.len(),
        "created_at": rfc3339(g.created_at),
    }))
}

// ---- partners ----

async fn list_partners(
    State(state): State<AppState>,
    ctx: Ctx,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("identity_list", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let status = status_filter(&q, &["ACTIVE", "SUSPENDED"])?;
    let (pg, page, size) = page(&q)?;
    let (rows, total) = if is_super_admin(&ctx.principal) {
        state.store.list_partners(status.as_deref(), pg).await?
    } else {
        // Everyone else sees their own partner only.
        let own = state
            .store
            .get_partner(&ctx.principal.partner_id)
            .await?
            .filter(|p| status.as_deref().is_none_or(|s| p.status == s));
        let total = i64::from(own.is_some());
        let rows = own.into_iter().filter(|_| pg.offset == 0).collect();
        (rows, total)
    };
    Ok(Json(json!({
        "partners": rows.iter().map(partner_json).collect::<Vec<_>>(),
        "total": total, "page": page, "page_size": size,
    }))
    .into_response())
}

async fn get_partner(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let visible = is_super_admin(&ctx.principal) || id == ctx.principal.partner_id;
    let p = if visible {
        state.store.get_partner(&id).await?
    } else {
        None
    };
    let p =
        p.ok_or_else(|| ApiError(Error::new(ErrorCode::PartnerNotFound, "Partner not found")))?;
    Ok(Json(partner_json(&p)).into_response())
}

async fn create_partner(
    State(state): State<AppState>,
    ctx: Ctx,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_partner_create", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    if !is_super_admin(&ctx.principal) {
        return Err(denied("Only super admins create partners"));
    }
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["id", "name", "slug", "region"], &mut errors);
    let name = opt_string(&body, "name", 200, &mut errors);
    if name.is_none() && !errors.iter().any(|e| e.field == "name") {
        errors.push(FieldError::new("name", "is required"));
    }
    let slug = opt_string(&body, "slug", 63, &mut errors);
    if slug.as_deref().is_some_and(|s| !valid_slug(s)) {
        errors.push(FieldError::new("slug", "must be 1-63 of a-z, 0-9 and '-'"));
    }
    let region = opt_string(&body, "region", 64, &mut errors);
    let pid = opt_string(&body, "id", 64, &mut errors)
        .unwrap_or_else(|| id::random("ptn_", 12).to_ascii_lowercase());
    if !valid_scoped_id(&pid, "ptn_") {
        errors.push(FieldError::new(
            "id",
            "must be 'ptn_' then 1-60 of a-z, 0-9 and '_'",
        ));
    }
    check(errors)?;
    let (partner, storage) = state
        .keys
        .new_partner(&pid, name.as_deref().unwrap_or_default(), slug, region)
        .await?;
    let view = partner_json(&partner);
    apply(
        &state,
        &ctx,
        "identity_partner_create",
        &pid,
        IdentityOp::InsertPartner { partner, storage },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

// ---- tenants ----

async fn list_tenants(State(state): State<AppState>, ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("identity_list", None);
    let p = &ctx.principal;
    p.require_scope(scope::IDENTITY_READ)?;
    let status = status_filter(&q, &["ACTIVE", "SUSPENDED"])?;
    let (pg, page, size) = page(&q)?;
    let asked = q.text("partner_id")?;
    let (rows, total) = if is_super_admin(p) {
        state
            .store
            .list_tenants(asked.as_deref(), status.as_deref(), pg)
            .await?
    } else if p.roles.iter().any(|r| r == PARTNER_ADMIN) {
        if asked.as_deref().is_some_and(|a| a != p.partner_id) {
            return Err(denied("You can list only your own partner's tenants"));
        }
        state
            .store
            .list_tenants(Some(&p.partner_id), status.as_deref(), pg)
            .await?
    } else {
        let own = state
            .store
            .get_tenant(&p.tenant_id)
            .await?
            .filter(|t| status.as_deref().is_none_or(|s| t.status == s))
            .filter(|t| asked.as_deref().is_none_or(|a| a == t.partner_id));
        let total = i64::from(own.is_some());
        (own.into_iter().filter(|_| pg.offset == 0).collect(), total)
    };
    Ok(Json(json!({
        "tenants": rows.iter().map(tenant_json).collect::<Vec<_>>(),
        "total": total, "page": page, "page_size": size,
    }))
    .into_response())
}

async fn get_tenant(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let t = tenant_in_reach(&state, &ctx, &id).await?;
    Ok(Json(tenant_json(&t)).into_response())
}

async fn create_tenant(
    State(state): State<AppState>,
    ctx: Ctx,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_tenant_create", None);
    let p = &ctx.principal;
    p.require_scope(scope::IDENTITY_ADMIN)?;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(
        &body,
        &["id", "name", "slug", "partner_id", "rate_limits"],
        &mut errors,
    );
    let rate_limits = rate_limits_field(&body, &mut errors).flatten();
    let name = opt_string(&body, "name", 200, &mut errors);
    if name.is_none() && !errors.iter().any(|e| e.field == "name") {
        errors.push(FieldError::new("name", "is required"));
    }
    let slug = opt_string(&body, "slug", 63, &mut errors);
    if slug.as_deref().is_some_and(|s| !valid_slug(s)) {
        errors.push(FieldError::new("slug", "must be 1-63 of a-z, 0-9 and '-'"));
    }
    let partner_id =
        opt_string(&body, "partner_id", 64, &mut errors).unwrap_or_else(|| p.partner_id.clone());
    let tid = opt_string(&body, "id", 64, &mut errors)
        .unwrap_or_else(|| id::random("tnt_", 12).to_ascii_lowercase());
    if !valid_scoped_id(&tid, "tnt_") {
        errors.push(FieldError::new(
            "id",
            "must be 'tnt_' then 1-60 of a-z, 0-9 and '_'",
        ));
    }
    check(errors)?;
    if !is_partner_admin_of(p, &partner_id) {
        return Err(denied(
            "Creating a tenant needs partner_admin of that partner, or super_admin",
        ));
    }
    if state.store.get_partner(&partner_id).await?.is_none() {
        return Err(Error::new(ErrorCode::PartnerNotFound, "Partner not found")
            .with_details(json!({ "partner_id": partner_id }))
            .into());
    }
    let mut row = state
        .keys
        .new_tenant(&tid, &partner_id, name.as_deref().unwrap_or_default(), slug)
        .await?;
    row.rate_limits = rate_limits;
    let view = tenant_json(&row);
    apply(
        &state,
        &ctx,
        "identity_tenant_create",
        &tid,
        IdentityOp::InsertTenant(row),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn update_tenant(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_tenant_update", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let t = tenant_in_reach(&state, &ctx, &id).await?;
    if !is_partner_admin_of(&ctx.principal, &t.partner_id) {
        return Err(denied(
            "Changing a tenant needs partner_admin or super_admin",
        ));
    }
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["name", "status", "rate_limits"], &mut errors);
    let rate_limits = rate_limits_field(&body, &mut errors);
    let name = opt_string(&body, "name", 200, &mut errors);
    let status = opt_string(&body, "status", 20, &mut errors).map(|s| s.to_ascii_uppercase());
    if status
        .as_deref()
        .is_some_and(|s| s != "ACTIVE" && s != "SUSPENDED")
    {
        errors.push(FieldError::new("status", "must be ACTIVE or SUSPENDED"));
    }
    check(errors)?;
    apply(
        &state,
        &ctx,
        "identity_tenant_update",
        &id,
        IdentityOp::UpdateTenant {
            id: id.clone(),
            name,
            status,
            rate_limits,
        },
    )
    .await?;
    state.tenants.invalidate(&id);
    let t = state
        .store
        .get_tenant(&id)
        .await?
        .ok_or_else(|| ApiError(tenant_not_found(&id)))?;
    Ok(Json(tenant_json(&t)).into_response())
}

// ---- users ----

/// `user:<email>` from a URL segment: the full id or a bare email.
fn user_id(raw: &str) -> String {
    if raw.starts_with("user:") || raw.starts_with("sa:") {
        raw.to_owned()
    } else {
        format!("user:{}", raw.to_ascii_lowercase())
    }
}

async fn list_identities_of(
    state: &AppState,
    ctx: &Ctx,
    tenant_id: &str,
    kind: &str,
    q: &QueryMap,
) -> ApiResult<(Vec<IdentityRow>, i64, i64, i64)> {
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let t = tenant_in_reach(state, ctx, tenant_id).await?;
    let status = status_filter(q, &["ACTIVE", "DISABLED"])?;
    let search = q.text("q")?;
    let (pg, page, size) = page(q)?;
    let (rows, total) = state
        .store
        .list_identities(&IdentityQuery {
            tenant_id: &t.id,
            identity_type: Some(kind),
            status: status.as_deref(),
            q: search.as_deref(),
            offset: pg.offset,
            limit: pg.limit,
        })
        .await?;
    Ok((rows, total, page, size))
}

async fn list_users(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(tenant_id): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("identity_list", None);
    let (rows, total, page, size) =
        list_identities_of(&state, &ctx, &tenant_id, "user", &q).await?;
    let mut users = Vec::with_capacity(rows.len());
    for r in &rows {
        users.push(identity_json(&state, r).await?);
    }
    Ok(
        Json(json!({ "users": users, "total": total, "page": page, "page_size": size }))
            .into_response(),
    )
}

/// Checks a role change by `p` on `target` (whose current roles are `before`) to `after`.
fn role_change_allowed(
    p: &Principal,
    target: &str,
    target_tenant: &TenantRow,
    before: &[String],
    after: &[String],
) -> ApiResult<()> {
    for r in after {
        if !ROLES.contains(&r.as_str()) {
            return Err(Error::validation(vec![FieldError::new(
                "roles",
                &format!("unknown role '{r}'; expected one of {}", ROLES.join(", ")),
            )])
            .into());
        }
    }
    if before == after {
        return Ok(());
    }
    if !is_partner_admin_of(p, &target_tenant.partner_id) {
        return Err(denied("Only super_admin or partner_admin can change roles"));
    }
    let added: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    let removed: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
    if target == p.identity_id && target_tenant.id == p.tenant_id && !added.is_empty() {
        return Err(denied(
            "No self-elevation: you cannot grant roles to yourself",
        ));
    }
    let touches_super = added.iter().chain(&removed).any(|r| *r == SUPER_ADMIN);
    if touches_super && !is_super_admin(p) {
        return Err(denied("Only super_admin can grant or remove super_admin"));
    }
    Ok(())
}

fn scopes_field(
    body: &Map<String, Value>,
    p: &Principal,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    let scopes = string_list(body, "scopes", errors)?;
    for (i, s) in scopes.iter().enumerate() {
        if !scope::is_known(s) {
            errors.push(FieldError::new(&format!("scopes[{i}]"), "unknown scope"));
        } else if !p.has_scope(s) {
            errors.push(FieldError::new(
                &format!("scopes[{i}]"),
                "is wider than your own scopes",
            ));
        }
    }
    Some(scopes)
}

/// What a new user may do when the creator names no scopes: work with secrets, read identities.
/// Policies still decide which paths.
const DEFAULT_USER_SCOPES: &[&str] = &[
    scope::SECRETS_READ,
    scope::SECRETS_WRITE,
    scope::SECRETS_DELETE,
    scope::SECRETS_LIST,
    scope::SECRETS_ROTATE,
    scope::IDENTITY_READ,
];

async fn create_user(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(tenant_id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_user_create", None);
    let t = tenant_to_admin(&state, &ctx, &tenant_id).await?;
    let p = &ctx.principal;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(
        &body,
        &["email", "display_name", "scopes", "roles", "groups"],
        &mut errors,
    );
    let email = opt_string(&body, "email", 254, &mut errors).map(|e| e.to_ascii_lowercase());
    match &email {
        Some(e) if !valid_email(e) => {
            errors.push(FieldError::new("email", "is not a valid email address"))
        }
        None if !errors.iter().any(|e| e.field == "email") => {
            errors.push(FieldError::new("email", "is required"))
        }
        _ => {}
    }
    let display_name = opt_string(&body, "display_name", 200, &mut errors);
    let scopes = scopes_field(&body, p, &mut errors).unwrap_or_else(|| {
        DEFAULT_USER_SCOPES
            .iter()
            .filter(|s| p.has_scope(s))
            .map(|s| (*s).to_owned())
            .collect()
    });
    let roles = string_list(&body, "roles", &mut errors).unwrap_or_default();
    let groups = string_list(&body, "groups", &mut errors).unwrap_or_default();
    check(errors)?;
    let uid = format!("user:{}", email.unwrap_or_default());
    role_change_allowed(p, &uid, &t, &[], &roles)?;
    for g in &groups {
        let exists = state
            .store
            .get_identity(&t.id, g)
            .await?
            .is_some_and(|i| i.identity_type == "group");
        if !exists {
            return Err(identity_not_found(g));
        }
    }
    let now = now_micros();
    let row = IdentityRow {
        tenant_id: t.id.clone(),
        id: uid.clone(),
        identity_type: "user".into(),
        display_name,
        roles: json!(roles).to_string(),
        groups: "[]".into(),
        scopes: json!(scopes).to_string(),
        created_at: now,
        disabled_at: None,
    };
    apply(
        &state,
        &ctx,
        "identity_user_create",
        &uid,
        IdentityOp::InsertIdentity(row.clone()),
    )
    .await?;
    for g in groups {
        apply(
            &state,
            &ctx,
            "identity_member_add",
            &uid,
            IdentityOp::AddMember {
                tenant_id: t.id.clone(),
                group_id: g,
                member_id: uid.clone(),
                by: p.identity_id.clone(),
                now,
            },
        )
        .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(identity_json(&state, &row).await?),
    )
        .into_response())
}

async fn fetch_identity(
    state: &AppState,
    tenant: &str,
    id: &str,
    kind: &str,
) -> ApiResult<IdentityRow> {
    state
        .store
        .get_identity(tenant, id)
        .await?
        .filter(|i| i.identity_type == kind)
        .ok_or_else(|| identity_not_found(id))
}

async fn get_user(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let [tenant_id, raw] = two(params)?;
    let t = tenant_in_reach(&state, &ctx, &tenant_id).await?;
    let i = fetch_identity(&state, &t.id, &user_id(&raw), "user").await?;
    Ok(Json(identity_json(&state, &i).await?).into_response())
}

fn two(params: Vec<String>) -> ApiResult<[String; 2]> {
    <[String; 2]>::try_from(params)
        .map_err(|_| ApiError::internal("ID0003", "route with two parameters"))
}

async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_user_update", None);
    let [tenant_id, raw] = two(params)?;
    let t = tenant_to_admin(&state, &ctx, &tenant_id).await?;
    let uid = user_id(&raw);
    let current = fetch_identity(&state, &t.id, &uid, "user").await?;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["display_name", "scopes", "status"], &mut errors);
    let display_name = match body.get("display_name") {
        Some(Value::Null) => Some(None),
        Some(_) => opt_string(&body, "display_name", 200, &mut errors).map(Some),
        None => None,
    };
    let scopes = scopes_field(&body, &ctx.principal, &mut errors);
    let status = opt_string(&body, "status", 20, &mut errors).map(|s| s.to_ascii_uppercase());
    let disabled_at = match status.as_deref() {
        None => None,
        Some("ACTIVE") => Some(None),
        Some("DISABLED") => Some(Some(current.disabled_at.unwrap_or_else(now_micros))),
        Some(_) => {
            errors.push(FieldError::new("status", "must be ACTIVE or DISABLED"));
            None
        }
    };
    check(errors)?;
    if uid == ctx.principal.identity_id && disabled_at == Some(Some(now_micros())) {
        return Err(denied("You cannot disable yourself"));
    }
    apply(
        &state,
        &ctx,
        "identity_user_update",
        &uid,
        IdentityOp::UpdateIdentity {
            tenant_id: t.id.clone(),
            id: uid.clone(),
            display_name,
            roles: None,
            scopes: scopes.map(|s| json!(s).to_string()),
            disabled_at,
        },
    )
    .await?;
    let i = fetch_identity(&state, &t.id, &uid, "user").await?;
    Ok(Json(identity_json(&state, &i).await?).into_response())
}

/// Users are disabled, not erased: their audit history keeps naming them, and their tokens stop working.
async fn disable_user(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
) -> ApiResult<Response> {
    ctx.audit("identity_user_disable", None);
    let [tenant_id, raw] = two(params)?;
    let t = tenant_to_admin(&state, &ctx, &tenant_id).await?;
    let uid = user_id(&raw);
    if uid == ctx.principal.identity_id && t.id == ctx.principal.tenant_id {
        return Err(denied("You cannot disable yourself"));
    }
    let current = fetch_identity(&state, &t.id, &uid, "user").await?;
    apply(
        &state,
        &ctx,
        "identity_user_disable",
        &uid,
        IdentityOp::UpdateIdentity {
            tenant_id: t.id.clone(),
            id: uid.clone(),
            display_name: None,
            roles: None,
            scopes: None,
            disabled_at: Some(Some(current.disabled_at.unwrap_or_else(now_micros))),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- groups ----

async fn list_groups(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(tenant_id): PathParam,
    q: QueryMap,
) -> ApiResult<Response> {
    ctx.audit("identity_list", None);
    let (rows, total, page, size) =
        list_identities_of(&state, &ctx, &tenant_id, "group", &q).await?;
    let mut groups = Vec::with_capacity(rows.len());
    for r in &rows {
        groups.push(group_json(&state, r).await?);
    }
    Ok(
        Json(json!({ "groups": groups, "total": total, "page": page, "page_size": size }))
            .into_response(),
    )
}

fn group_id(raw: &str) -> String {
    if raw.starts_with("group:") {
        raw.to_owned()
    } else {
        format!("group:{raw}")
    }
}

async fn create_group(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(tenant_id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_group_create", None);
    let t = tenant_to_admin(&state, &ctx, &tenant_id).await?;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["name", "display_name"], &mut errors);
    let name = opt_string(&body, "name", 70, &mut errors);
    let bare = name
        .as_deref()
        .map(|n| n.strip_prefix("group:").unwrap_or(n).to_owned());
    match &bare {
        Some(n) if !valid_group_name(n) => errors.push(FieldError::new(
            "name",
            "must be 1-64 of a-z, 0-9, '-', '_' and '.'",
        )),
        None if !errors.iter().any(|e| e.field == "name") => {
            errors.push(FieldError::new("name", "is required"))
        }
        _ => {}
    }
    let display_name = opt_string(&body, "display_name", 200, &mut errors);
    check(errors)?;
    let gid = group_id(&bare.unwrap_or_default());
    let row = IdentityRow {
        tenant_id: t.id.clone(),
        id: gid.clone(),
        identity_type: "group".into(),
        display_name,
        roles: "[]".into(),
        groups: "[]".into(),
        scopes: "[]".into(),
        created_at: now_micros(),
        disabled_at: None,
    };
    apply(
        &state,
        &ctx,
        "identity_group_create",
        &gid,
        IdentityOp::InsertIdentity(row.clone()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(group_json(&state, &row).await?)).into_response())
}

async fn delete_group(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
) -> ApiResult<Response> {
    ctx.audit("identity_group_delete", None);
    let [tenant_id, raw] = two(params)?;
    let t = tenant_to_admin(&state, &ctx, &tenant_id).await?;
    let gid = group_id(&raw);
    apply(
        &state,
        &ctx,
        "identity_group_delete",
        &gid,
        IdentityOp::DeleteGroup {
            tenant_id: t.id,
            group_id: gid.clone(),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    ctx.audit("identity_list", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let gid = group_id(&raw);
    fetch_identity(&state, &ctx.tenant, &gid, "group").await?;
    let members = state.store.group_members(&ctx.tenant, &gid).await?;
    let out: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "user_id": m.member_id,
                "email": m.member_id.strip_prefix("user:"),
                "membership_type": "DIRECT",
                "added_at": rfc3339(m.added_at),
                "added_by": m.added_by,
            })
        })
        .collect();
    Ok(Json(json!({ "members": out, "total": out.len() })).into_response())
}

async fn add_member(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(raw): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_member_add", None);
    let t = tenant_to_admin(&state, &ctx, &ctx.tenant.clone()).await?;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["user_id", "member_id"], &mut errors);
    let member = opt_string(&body, "member_id", 300, &mut errors)
        .or_else(|| opt_string(&body, "user_id", 300, &mut errors));
    if member.is_none() && errors.is_empty() {
        errors.push(FieldError::new("user_id", "is required"));
    }
    check(errors)?;
    let member = user_id(&member.unwrap_or_default());
    let gid = group_id(&raw);
    apply(
        &state,
        &ctx,
        "identity_member_add",
        &gid,
        IdentityOp::AddMember {
            tenant_id: t.id,
            group_id: gid.clone(),
            member_id: member.clone(),
            by: ctx.principal.identity_id.clone(),
            now: now_micros(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "group_id": gid, "user_id": member, "membership_type": "DIRECT" })),
    )
        .into_response())
}

async fn remove_member(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
) -> ApiResult<Response> {
    ctx.audit("identity_member_remove", None);
    let [raw_group, raw_member] = two(params)?;
    let t = tenant_to_admin(&state, &ctx, &ctx.tenant.clone()).await?;
    let gid = group_id(&raw_group);
    apply(
        &state,
        &ctx,
        "identity_member_remove",
        &gid,
        IdentityOp::RemoveMember {
            tenant_id: t.id,
            group_id: gid.clone(),
            member_id: user_id(&raw_member),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- resolve, roles, sync ----

async fn resolve(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParams(params): PathParams,
) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let [kind, raw] = two(params)?;
    let (db_kind, id) = match kind.as_str() {
        "user" => ("user", user_id(&raw)),
        "service_account" | "sa" => (
            "service_account",
            if raw.starts_with("sa:") {
                raw.clone()
            } else {
                format!("sa:{raw}")
            },
        ),
        "group" => ("group", group_id(&raw)),
        _ => {
            return Err(Error::invalid_request(
                "identity_type must be user, service_account or group",
            )
            .into())
        }
    };
    let i = fetch_identity(&state, &ctx.tenant, &id, db_kind).await?;
    let v = if db_kind == "group" {
        group_json(&state, &i).await?
    } else {
        identity_json(&state, &i).await?
    };
    Ok(Json(v).into_response())
}

async fn roles(ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    Ok(Json(json!({ "roles": [
        { "name": SUPER_ADMIN, "description": "Administers every partner and tenant; only a super admin grants super_admin" },
        { "name": PARTNER_ADMIN, "description": "Administers the partner's tenants, their identities and roles, and partner-scoped secrets" },
        { "name": TENANT_ADMIN, "description": "Administers one tenant: its users, groups, service accounts, and every secret path in it" },
    ]}))
    .into_response())
}

async fn get_roles(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    ctx.audit("identity_read", None);
    ctx.principal.require_scope(scope::IDENTITY_READ)?;
    let uid = user_id(&raw);
    let i = state
        .store
        .get_identity(&ctx.tenant, &uid)
        .await?
        .filter(|i| i.identity_type != "group")
        .ok_or_else(|| identity_not_found(&uid))?;
    Ok(Json(json!({ "user_id": i.id, "roles": list_of(&i.roles) })).into_response())
}

async fn put_roles(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(raw): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("identity_roles_update", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let body = body.require()?;
    let mut errors = Vec::new();
    reject_unknown(&body, &["roles"], &mut errors);
    let roles = string_list(&body, "roles", &mut errors);
    if roles.is_none() && errors.is_empty() {
        errors.push(FieldError::new("roles", "is required"));
    }
    check(errors)?;
    let roles = roles.unwrap_or_default();
    let t = tenant_in_reach(&state, &ctx, &ctx.tenant.clone()).await?;
    let uid = user_id(&raw);
    let i = state
        .store
        .get_identity(&t.id, &uid)
        .await?
        .filter(|i| i.identity_type != "group")
        .ok_or_else(|| identity_not_found(&uid))?;
    role_change_allowed(&ctx.principal, &uid, &t, &list_of(&i.roles), &roles)?;
    apply(
        &state,
        &ctx,
        "identity_roles_update",
        &uid,
        IdentityOp::UpdateIdentity {
            tenant_id: t.id.clone(),
            id: uid.clone(),
            display_name: None,
            roles: Some(json!(roles).to_string()),
            scopes: None,
            disabled_at: None,
        },
    )
    .await?;
    Ok(Json(json!({ "user_id": uid, "roles": roles })).into_response())
}

/// There is no upstream identity provider to sync from: this server is the identity store, so a sync
/// completes at once with nothing to apply. Kept so clients written for the hosted API keep working.
async fn sync(ctx: Ctx, q: QueryMap) -> ApiResult<Response> {
    ctx.audit("identity_sync", None);
    ctx.principal.require_scope(scope::IDENTITY_ADMIN)?;
    let _ = (q.text("partner_id")?, q.text("tenant_id")?);
    let now = rfc3339(now_micros());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "sync_id": id::random("sync_", 12),
            "status": "completed",
            "started_at": now,
            "completed_at": now,
            "changes": 0,
            "source": "local",
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(valid_scoped_id("tnt_acme_prod", "tnt_"));
        assert!(!valid_scoped_id("tnt_", "tnt_"));
        assert!(!valid_scoped_id("tnt_Acme", "tnt_"));
        assert!(!valid_scoped_id("ptn_x", "tnt_"));
        assert!(valid_email("alice@acme.example"));
        for bad in [
            "alice",
            "@acme.example",
            "a@b",
            "a b@c.d",
            "a@b@c.d",
            "a@.b",
            "a@b.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(valid_group_name("sre.oncall-1"));
        assert!(!valid_group_name("SRE"));
        assert_eq!(user_id("Alice@Acme.Example"), "user:alice@acme.example");
        assert_eq!(user_id("sa:ci"), "sa:ci");
        assert_eq!(group_id("sre"), "group:sre");
        assert!(valid_slug("acme-corp") && !valid_slug("-x") && !valid_slug("A"));
    }
}
