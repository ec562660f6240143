//! `POST /v1/secrets/batch` and `POST /v1/secrets/batch/metadata`: many paths in one request, each
//! authorised and audited on its own, fetched from the store in one query. Also routes the POST
//! sub-resources of single secrets (`…/restore`).

use super::ctx::{AuditItem, Ctx};
use super::error::ApiResult;
use super::extract::{JsonObject, PathParam};
use super::secrets::{open, readable_version, restore, valid_json};
use super::view;
use crate::authz::Permission;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use scaivault_core::path::{self as spath, Pattern};
use scaivault_core::time_fmt::now_micros;
use scaivault_core::{Error, ErrorCode, FieldError};
use scaivault_store::{day_of, ListQuery};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

pub const MAX_BATCH_PATHS: usize = 100;
const MAX_EXPANSION: usize = 1000;

pub async fn post_any(
    State(state): State<AppState>,
    ctx: Ctx,
    PathParam(rest): PathParam,
    body: JsonObject,
) -> ApiResult<Response> {
    match rest.as_str() {
        "batch" => batch_read(&state, &ctx, body.require()?).await,
        "batch/metadata" => batch_metadata(&state, &ctx, body.require()?).await,
        _ => match rest.strip_suffix("/restore") {
            Some(path) => restore(&state, &ctx, path, body).await,
            None => Err(Error::new(
                ErrorCode::MethodNotAllowed,
                "POST on a secret path is only for /restore; write with PUT",
            )
            .into()),
        },
    }
}

/// The `paths` array: 1–100 strings, duplicates dropped, order kept.
fn parse_paths(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let Some(Value::Array(items)) = body.get("paths") else {
        errors.push(FieldError::new(
            "paths",
            "is required: an array of 1 to 100 paths",
        ));
        return vec![];
    };
    if items.is_empty() || items.len() > MAX_BATCH_PATHS {
        errors.push(FieldError::new("paths", "must hold 1 to 100 paths"));
        return vec![];
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, p) in items.iter().enumerate() {
        match p.as_str() {
            Some(s) if !out.iter().any(|o| o == s) => out.push(s.to_owned()),
            Some(_) => {}
            None => errors.push(FieldError::new(&format!("paths[{i}]"), "must be a string")),
        }
    }
    out
}

fn error_json(e: &Error) -> Value {
    json!({ "code": e.code.as_str(), "message": e.message })
}

fn item(action: &'static str, path: &str, err: Option<&Error>) -> AuditItem {
    AuditItem {
        action,
        path: path.chars().take(600).collect(),
        error: err.map(|e| (e.code.as_str(), i32::from(e.code.status()))),
    }
}

async fn batch_read(state: &AppState, ctx: &Ctx, body: Map<String, Value>) -> ApiResult<Response> {
    ctx.audit("read", None);
    ctx.audit_extra("batch", json!(true));
    ctx.principal.require_scope(Permission::Read.scope())?;
    let mut errors = Vec::new();
    for k in body.keys() {
        if !matches!(k.as_str(), "paths" | "options") {
            errors.push(FieldError::new(k, "unknown field; expected paths, options"));
        }
    }
    let paths = parse_paths(&body, &mut errors);
    let (mut include_metadata, mut fail_fast, mut version) = (false, false, None);
    match body.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("include_metadata", Value::Bool(b)) => include_metadata = *b,
                    ("fail_fast", Value::Bool(b)) => fail_fast = *b,
                    ("version", Value::Null) => {}
                    ("version", v) => match v.as_i64() {
                        Some(n) if n >= 1 => version = Some(n),
                        _ => errors.push(FieldError::new(
                            "options.version",
                            "must be a positive integer",
                        )),
                    },
                    ("include_metadata" | "fail_fast", _) => errors.push(FieldError::new(
                        &format!("options.{k}"),
                        "must be a boolean",
                    )),
                    (other, _) => errors.push(FieldError::new(
                        &format!("options.{other}"),
                        "unknown option",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new("options", "must be an object")),
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }

    let tenant = &ctx.tenant;
    // Authorise every path first; only permitted ones are fetched.
    let mut outcome: Vec<(String, Result<(), Error>)> = Vec::with_capacity(paths.len());
    for p in &paths {
        let r = spath::validate(p).and_then(|()| state.authz.check(ctx, Permission::Read, p));
        if fail_fast {
            if let Err(e) = r {
                ctx.audit_item(item("read", p, Some(&e)));
                return Err(e.with_details(json!({ "path": p })).into());
            }
        }
        outcome.push((p.clone(), r));
    }
    let wanted: Vec<String> = outcome
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    let rows = state
        .store
        .get_secret_values(tenant, &wanted, version)
        .await?;
    let mut by_path: HashMap<
        &str,
        &(
            scaivault_store::SecretRow,
            Option<scaivault_store::VersionRow>,
        ),
    > = rows.iter().map(|r| (r.0.path.as_str(), r)).collect();
    let (counts, access) = if include_metadata {
        let counts: HashMap<String, i64> = state
            .store
            .version_counts(tenant, &wanted)
            .await?
            .into_iter()
            .collect();
        let access = state
            .store
            .access_stats(tenant, &wanted, day_of(now_micros()) - 29)
            .await?;
        (counts, access)
    } else {
        (HashMap::new(), vec![])
    };
    let now = now_micros();
    // The decrypted values are kept (zeroised on drop) until the answer is serialised from them.
    let mut opened = Vec::with_capacity(wanted.len());
    let mut errs = Map::new();
    for (p, auth) in outcome {
        let result = match auth {
            Err(e) => Err(e),
            Ok(()) => match by_path.remove(p.as_str()) {
                None => Err(Error::secret_not_found(&p)),
                Some(found) => readable_version(&p, found, version, now).map(|v| (found, v)),
            },
        };
        match result {
            Ok((found, v)) => {
                let plain = open(state, tenant, &p, v).await?;
                // Checked here, so a value that is not JSON fails the batch before the reads after it
                // are audited; borrowed again below for the answer.
                valid_json(&plain)?;
                let metadata = include_metadata.then(|| {
                    let a = access.iter().find(|a| a.path == p);
                    view::metadata_view(&found.0, counts.get(&p).copied().unwrap_or(0), a)
                });
                ctx.audit_item(item("read", &p, None));
                opened.push((p, found, v.version, metadata, plain));
            }
            Err(e) => {
                ctx.audit_item(item("read", &p, Some(&e)));
                if fail_fast {
                    return Err(e.with_details(json!({ "path": p })).into());
                }
                errs.insert(p, error_json(&e));
            }
        }
    }
    let mut secrets = BTreeMap::new();
    for (p, found, version, metadata, plain) in opened.iter_mut() {
        let data = valid_json(plain)?;
        let secret = BatchSecret {
            data,
            metadata: metadata.take(),
            secret_type: &found.0.secret_type,
            version: *version,
        };
        secrets.insert(p.as_str(), secret);
    }
    let (retrieved, failed) = (secrets.len(), errs.len());
    // A batch is one batch call (taken by the pipeline) plus one read per secret returned.
    let n = u32::try_from(retrieved).unwrap_or(u32::MAX);
    super::ctx::take_rate(state, ctx, crate::ratelimit::Category::Read, n, true).await;
    Ok(Json(BatchRead {
        errors: errs,
        failed,
        retrieved,
        secrets,
    })
    .into_response())
}

/// A batch read's answer, serialised straight from the decrypted values; fields in the sorted order a
/// `serde_json` tree of the same answer has, so the bytes are the same.
#[derive(serde::Serialize)]
struct BatchRead<'a> {
    errors: Map<String, Value>,
    failed: usize,
    retrieved: usize,
    secrets: BTreeMap<&'a str, BatchSecret<'a>>,
}

#[derive(serde::Serialize)]
struct BatchSecret<'a> {
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    secret_type: &'a str,
    version: i64,
}

async fn batch_metadata(
    state: &AppState,
    ctx: &Ctx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    ctx.audit("read_metadata", None);
    ctx.audit_extra("batch", json!(true));
    ctx.principal.require_scope(Permission::List.scope())?;
    let mut errors = Vec::new();
    for k in body.keys() {
        if !matches!(k.as_str(), "paths" | "expand_wildcards") {
            errors.push(FieldError::new(
                k,
                "unknown field; expected paths, expand_wildcards",
            ));
        }
    }
    let patterns = parse_paths(&body, &mut errors);
    let expand = match body.get("expand_wildcards") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("expand_wildcards", "must be a boolean"));
            false
        }
    };
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let tenant = &ctx.tenant;
    let mut errs = Map::new();
    let mut rows = Vec::new();
    for p in &patterns {
        let parsed = match Pattern::parse(p) {
            Ok(parsed) if parsed.has_wildcard() && !expand => Err(Error::invalid_path(
                p,
                "wildcards need \"expand_wildcards\": true",
            )),
            Ok(parsed) => Ok(parsed),
            Err(e) => Err(e),
        };
        let parsed = match parsed {
            Ok(x) => x,
            Err(e) => {
                ctx.audit_item(item("read_metadata", p, Some(&e)));
                errs.insert(p.clone(), error_json(&e));
                continue;
            }
        };
        if !parsed.has_wildcard() {
            if let Err(e) =
                spath::validate(p).and_then(|()| state.authz.check(ctx, Permission::List, p))
            {
                ctx.audit_item(item("read_metadata", p, Some(&e)));
                errs.insert(p.clone(), error_json(&e));
                continue;
            }
            match state.store.get_secret(tenant, p).await? {
                Some(s) if s.deleted_at.is_none() => rows.push(s),
                _ => {
                    let e = Error::secret_not_found(p);
                    ctx.audit_item(item("read_metadata", p, Some(&e)));
                    errs.insert(p.clone(), error_json(&e));
                }
            }
            continue;
        }
        // Expand: scan the literal prefix in pages, keep matches the caller may list.
        let prefix = parsed.literal_prefix();
        let mut after: Option<String> = None;
        let mut matched = 0usize;
        'scan: loop {
            let page = state
                .store
                .list_secrets(&ListQuery {
                    tenant_id: tenant,
                    prefix: &prefix,
                    after: after.as_deref(),
                    limit: 1000,
                    expiring_before: None,
                    include_deleted: false,
                })
                .await?;
            let done = page.len() < 1000;
            after = page.last().map(|s| s.path.clone());
            for s in page {
                if parsed.matches(&s.path)
                    && state.authz.check(ctx, Permission::List, &s.path).is_ok()
                {
                    rows.push(s);
                    matched += 1;
                    if matched >= MAX_EXPANSION {
                        break 'scan;
                    }
                }
            }
            if done {
                break;
            }
        }
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    rows.dedup_by(|a, b| a.path == b.path);
    let paths: Vec<String> = rows.iter().map(|r| r.path.clone()).collect();
    let counts: HashMap<String, i64> = state
        .store
        .version_counts(tenant, &paths)
        .await?
        .into_iter()
        .collect();
    let mut metadata = Map::new();
    for s in &rows {
        ctx.audit_item(item("read_metadata", &s.path, None));
        let m = view::metadata_of(s);
        metadata.insert(
            s.path.clone(),
            json!({
                "version": s.current_version,
                "version_count": counts.get(&s.path).copied().unwrap_or(0),
                "updated_at": scaivault_core::time_fmt::rfc3339(s.updated_at),
                "created_at": scaivault_core::time_fmt::rfc3339(s.created_at),
                "expires_at": scaivault_core::time_fmt::opt_rfc3339(s.expires_at),
                "secret_type": s.secret_type,
                "tags": m.tags,
                "description": m.description,
                "owner": m.owner,
                "rotation_policy_id": s.rotation_policy_id,
            }),
        );
    }
    let (retrieved, failed) = (metadata.len(), errs.len());
    Ok(Json(
        json!({ "metadata": metadata, "errors": errs, "retrieved": retrieved, "failed": failed }),
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::{BatchRead, BatchSecret};
    use serde_json::value::RawValue;
    use serde_json::{json, Map, Value};
    use std::collections::BTreeMap;

    /// The answer serialised from the decrypted values is byte for byte the tree it replaced: secrets
    /// by path, each with `data`, `metadata` only when asked for, `secret_type` and `version`.
    #[test]
    fn a_batch_answer_is_the_same_json_as_the_tree() {
        let values = [
            json!({"user": "u", "password": "p\"w\u{1}", "nested": {"k": [1, 2.5, true, null]}}),
            json!({"value": "x"}),
            json!({}),
        ];
        let sealed: Vec<Vec<u8>> = values
            .iter()
            .map(|v| serde_json::to_vec(v).unwrap())
            .collect();
        let raw: Vec<&RawValue> = sealed
            .iter()
            .map(|s| serde_json::from_slice(s).unwrap())
            .collect();
        let metadata = json!({"description": "d", "tags": ["a"], "version_count": 3});
        let mut errors = Map::new();
        errors.insert(
            "app/z".into(),
            json!({"code": "SECRET_NOT_FOUND", "message": "m"}),
        );
        for with_metadata in [false, true] {
            let m = || with_metadata.then(|| metadata.clone());
            // Inserted out of order: the answer lists secrets by path, as the tree's map does.
            let items = [("b/2", "kv", 7), ("a/1", "password", 1), ("a/10", "kv", 2)];
            let mut secrets = BTreeMap::new();
            let mut tree = Map::new();
            for ((path, secret_type, version), (data, value)) in
                items.into_iter().zip(raw.iter().zip(&values))
            {
                secrets.insert(
                    path,
                    BatchSecret {
                        data,
                        metadata: m(),
                        secret_type,
                        version,
                    },
                );
                let mut entry =
                    json!({ "data": value, "version": version, "secret_type": secret_type });
                if let Some(m) = m() {
                    entry["metadata"] = m;
                }
                tree.insert(path.to_owned(), entry);
            }
            let answer = BatchRead {
                errors: errors.clone(),
                failed: 1,
                retrieved: 3,
                secrets,
            };
            let tree: Value =
                json!({ "secrets": tree, "errors": errors, "retrieved": 3, "failed": 1 });
            assert_eq!(
                serde_json::to_string(&answer).unwrap(),
                serde_json::to_string(&tree).unwrap()
            );
        }
    }
}
