//! `/v1/secret-policies` (designed: the reference lists the model but not the endpoints): value
//! recipes with per-field generators. Secrets attached to one have written values checked against
//! the recipe's rules (length, charset, required character classes) — `422 validation_error` naming
//! `data.<field>`, never echoing the value.

use super::ctx::Ctx;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonObject, PathParam};
use super::policies::{POLICIES_READ, POLICIES_WRITE};
use super::view;
use crate::authz::{ctx_admin_role, Permission};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scaivault_core::time_fmt::{now_micros, rfc3339};
use scaivault_core::{id, path as spath, Error, ErrorCode, FieldError};
use scaivault_store::{OpError, SecretPolicyRow, WriteOp};
use serde_json::{json, Map, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/secret-policies", get(list).post(create))
        .route("/v1/secret-policies/detach", post(detach))
        .route(
            "/v1/secret-policies/{id}",
            get(get_one).put(replace).delete(remove),
        )
        .route("/v1/secret-policies/{id}/attach", post(attach))
}

const TYPES: [&str; 5] = ["password", "api_key", "oauth_client", "ssh_key", "custom"];
const GENERATORS: [&str; 9] = [
    "random",
    "hex",
    "uuid",
    "template",
    "rsa_keypair",
    "ec_keypair",
    "ssh_keypair",
    "bcrypt_hash",
    "static",
];
const SYMBOLS: &str = "!@#$%^&*-_=+";

/// (config key, character test, what the message asks for)
type ClassRule = (&'static str, fn(char) -> bool, &'static str);

/// Characters of a named charset (designed where the reference is cut: `numeric`, `hex`, `safe`).
fn charset_allows(name: &str, c: char) -> Option<bool> {
    Some(match name {
        "alphanumeric" => c.is_ascii_alphanumeric(),
        "alpha" => c.is_ascii_alphabetic(),
        "numeric" => c.is_ascii_digit(),
        "hex" => c.is_ascii_digit() || ('a'..='f').contains(&c),
        "safe" => c.is_ascii_alphanumeric() || SYMBOLS.contains(c),
        "ascii" => c.is_ascii_graphic(),
        _ => return None,
    })
}

fn validate_fields(v: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    let Some(arr) = v
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= 20)
    else {
        errors.push(FieldError::new(
            "fields",
            "must be an array of 1 to 20 fields",
        ));
        return None;
    };
    for (i, f) in arr.iter().enumerate() {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || name.len() > 64 {
            errors.push(FieldError::new(
                &format!("fields[{i}].name"),
                "is required (1-64 characters)",
            ));
        }
        let generator = f.get("generator").and_then(Value::as_str).unwrap_or("");
        if !GENERATORS.contains(&generator) {
            errors.push(FieldError::new(
                &format!("fields[{i}].generator"),
                "unknown generator",
            ));
        }
        let config = f.get("config");
        if config.is_some_and(|c| !c.is_object()) {
            errors.push(FieldError::new(
                &format!("fields[{i}].config"),
                "must be an object",
            ));
        }
        if let Some(l) = config.and_then(|c| c.get("length")) {
            if !l.as_i64().is_some_and(|n| (1..=4096).contains(&n)) {
                errors.push(FieldError::new(
                    &format!("fields[{i}].config.length"),
                    "must be an integer 1-4096",
                ));
            }
        }
        if let Some(cs) = config.and_then(|c| c.get("charset")) {
            if cs.as_str().is_none_or(|n| charset_allows(n, 'a').is_none()) {
                errors.push(FieldError::new(
                    &format!("fields[{i}].config.charset"),
                    "must be alphanumeric, alpha, numeric, hex, safe or ascii",
                ));
            }
        }
    }
    (errors.is_empty()).then(|| Value::Array(arr.clone()).to_string())
}

/// Checks a written value (the secret's JSON data) against the policy's value rules.
pub fn check_value(sp: &SecretPolicyRow, data: &[u8]) -> Result<(), Error> {
    let fields: Vec<Value> = serde_json::from_str(&sp.fields).unwrap_or_default();
    let obj: Option<Map<String, Value>> = serde_json::from_slice(data).ok();
    let mut errors = Vec::new();
    for f in &fields {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        let generator = f.get("generator").and_then(Value::as_str).unwrap_or("");
        if !matches!(generator, "random" | "hex") {
            continue;
        }
        let field = format!("data.{name}");
        let Some(value) = obj
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
        else {
            errors.push(FieldError::new(
                &field,
                &format!("secret policy '{}' requires a string field '{name}'", sp.id),
            ));
            continue;
        };
        let cfg = f.get("config").cloned().unwrap_or_else(|| json!({}));
        if let Some(min) = cfg.get("length").and_then(Value::as_i64) {
            if i64::try_from(value.chars().count()).unwrap_or(i64::MAX) < min {
                errors.push(FieldError::new(
                    &field,
                    &format!("must be at least {min} characters"),
                ));
            }
        }
        let charset = if generator == "hex" {
            Some("hex")
        } else {
            cfg.get("charset").and_then(Value::as_str)
        };
        if let Some(cs) = charset {
            if !value.chars().all(|c| charset_allows(cs, c).unwrap_or(true)) {
                errors.push(FieldError::new(
                    &field,
                    &format!("may only contain characters of the '{cs}' charset"),
                ));
            }
        }
        let classes: [ClassRule; 4] = [
            (
                "require_upper",
                |c| c.is_ascii_uppercase(),
                "an uppercase letter",
            ),
            (
                "require_lower",
                |c| c.is_ascii_lowercase(),
                "a lowercase letter",
            ),
            ("require_digit", |c| c.is_ascii_digit(), "a digit"),
            ("require_symbol", |c| c.is_ascii_punctuation(), "a symbol"),
        ];
        for (key, test, what) in classes {
            if cfg.get(key) == Some(&json!(true)) && !value.chars().any(test) {
                errors.push(FieldError::new(&field, &format!("must contain {what}")));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(errors))
    }
}

fn sp_json(p: &SecretPolicyRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "policy_type": p.policy_type,
        "fields": serde_json::from_str::<Value>(&p.fields).unwrap_or_else(|_| json!([])),
        "is_active": p.is_active,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

fn require_manage(ctx: &Ctx) -> Result<(), Error> {
    ctx.principal.require_scope(POLICIES_WRITE)?;
    if ctx_admin_role(ctx).is_some() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AccessDenied,
            "Managing secret policies requires an admin role",
        ))
    }
}

fn parse_body(
    body: &Map<String, Value>,
    now: i64,
    ctx: &Ctx,
    id: String,
) -> Result<SecretPolicyRow, Error> {
    let mut errors = Vec::new();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.trim().is_empty() || name.len() > 128 {
        errors.push(FieldError::new("name", "is required (1-128 characters)"));
    }
    let policy_type = body
        .get("policy_type")
        .and_then(Value::as_str)
        .unwrap_or("custom")
        .to_owned();
    if !TYPES.contains(&policy_type.as_str()) {
        errors.push(FieldError::new(
            "policy_type",
            "must be password, api_key, oauth_client, ssh_key or custom",
        ));
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 1024 => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "description",
                "must be a string of at most 1024 characters",
            ));
            None
        }
    };
    let is_active = match body.get("is_active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("is_active", "must be a boolean"));
            true
        }
    };
    let fields = validate_fields(body.get("fields"), &mut errors);
    match fields {
        Some(fields) if errors.is_empty() => Ok(SecretPolicyRow {
            tenant_id: ctx.tenant.clone(),
            id,
            name,
            description,
            policy_type,
            fields,
            is_active,
            created_at: now,
            updated_at: now,
            created_by: ctx.principal.identity_id.clone(),
        }),
        _ => Err(Error::validation(errors)),
    }
}

async fn commit(state: &AppState, op: WriteOp, id: &str) -> ApiResult<()> {
    match state.committer.submit(op).await {
        Ok(_) => Ok(()),
        Err(e @ OpError::Missing(_)) => Err(ApiError::from_op(e, id, None)),
        Err(OpError::NotFound) => Err(Error::secret_not_found(id).into()),
        Err(e) => Err(ApiError::unavailable("SP0001", "Storage", e)),
    }
}

fn entry(
    ctx: &Ctx,
    action: &'static str,
    extra: &[(&str, Value)],
) -> scaivault_core::audit::AuditEntry {
    let mut e = ctx.entry_for_write(action, "", view::extra(extra));
    e.secret_path = None;
    e
}

fn not_found(id: &str) -> ApiError {
    Error::new(
        ErrorCode::SecretPolicyNotFound,
        format!("Secret policy '{id}' not found"),
    )
    .with_details(json!({ "secret_policy_id": id }))
    .into()
}

async fn list(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("secret_policy_list", None);
    ctx.principal.require_scope(POLICIES_READ)?;
    let rows = state.store.list_secret_policies(&ctx.tenant).await?;
    Ok(
        Json(json!({ "secret_policies": rows.iter().map(sp_json).collect::<Vec<_>>() }))
            .into_response(),
    )
}

async fn get_one(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("secret_policy_read", None);
    ctx.principal.require_scope(POLICIES_READ)?;
    let p = state
        .store
        .get_secret_policy(&ctx.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(sp_json(&p)).into_response())
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("secret_policy_create", None);
    require_manage(&ctx)?;
    let row = parse_body(&body.require()?, now_micros(), &ctx, id::random("sp_", 16))?;
    let e = entry(
        &ctx,
        "secret_policy_create",
        &[("secret_policy_id", json!(row.id))],
    );
    commit(
        &state,
        WriteOp::PutSecretPolicy {
            row: row.clone(),
            replace: false,
            audit: vec![e],
        },
        &row.id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(sp_json(&row))).into_response())
}

async fn replace(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("secret_policy_update", None);
    require_manage(&ctx)?;
    let old = state
        .store
        .get_secret_policy(&ctx.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut row = parse_body(&body.require()?, now_micros(), &ctx, id.clone())?;
    row.created_at = old.created_at;
    row.created_by = old.created_by;
    let e = entry(
        &ctx,
        "secret_policy_update",
        &[("secret_policy_id", json!(id))],
    );
    commit(
        &state,
        WriteOp::PutSecretPolicy {
            row: row.clone(),
            replace: true,
            audit: vec![e],
        },
        &id,
    )
    .await?;
    Ok(Json(sp_json(&row)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    ctx.audit("secret_policy_delete", None);
    require_manage(&ctx)?;
    let e = entry(
        &ctx,
        "secret_policy_delete",
        &[("secret_policy_id", json!(id))],
    );
    commit(
        &state,
        WriteOp::DeleteSecretPolicy {
            tenant_id: ctx.tenant.clone(),
            id: id.clone(),
            audit: vec![e],
        },
        &id,
    )
    .await?;
    Ok(Json(json!({ "id": id, "deleted": true })).into_response())
}

async fn set(
    state: &AppState,
    ctx: &Ctx,
    body: Map<String, Value>,
    sp: Option<String>,
) -> ApiResult<Response> {
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    spath::validate(&path)?;
    state.authz.check(ctx, Permission::Write, &path)?;
    let e = {
        let mut e = ctx.entry_for_write(
            "secret_policy_attach",
            &path,
            view::extra(&[("secret_policy_id", json!(sp))]),
        );
        e.action = if sp.is_some() {
            "secret_policy_attach"
        } else {
            "secret_policy_detach"
        }
        .into();
        e
    };
    let id = sp.clone().unwrap_or_default();
    let op = WriteOp::SetSecretPolicy {
        tenant_id: ctx.tenant.clone(),
        path: path.clone(),
        secret_policy_id: sp.clone(),
        audit: vec![e],
    };
    match state.committer.submit(op).await {
        Ok(_) => Ok(Json(json!({ "path": path, "secret_policy_id": sp })).into_response()),
        Err(e @ OpError::Missing(_)) => Err(ApiError::from_op(e, &id, None)),
        Err(OpError::NotFound) => Err(Error::secret_not_found(&path).into()),
        Err(e) => Err(ApiError::unavailable("SP0002", "Storage", e)),
    }
}

/// `POST /v1/secret-policies/{id}/attach {"path"}`: later writes of the secret must satisfy the policy.
async fn attach(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(id): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    ctx.audit("secret_policy_attach", None);
    set(&state, &ctx, body.require()?, Some(id)).await
}

/// `POST /v1/secret-policies/detach {"path"}`.
async fn detach(State(state): State<AppState>, ctx: Ctx, body: JsonObject) -> ApiResult<Response> {
    ctx.audit("secret_policy_detach", None);
    set(&state, &ctx, body.require()?, None).await
}
