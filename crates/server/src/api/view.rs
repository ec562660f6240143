//! JSON shapes of secrets, shared by the single-secret, list and batch endpoints.

use scaivault_core::secret::Metadata;
use scaivault_core::time_fmt::{opt_rfc3339, rfc3339};
use scaivault_store::{AccessStats, SecretRow};
use serde_json::{json, Map, Value};

pub fn metadata_of(s: &SecretRow) -> Metadata {
    serde_json::from_str(&s.metadata).unwrap_or_default()
}

fn metadata_json(m: &Metadata) -> Value {
    json!({ "description": m.description, "tags": m.tags, "owner": m.owner, "custom": m.custom })
}

/// The secret without its value (write response).
pub fn secret_summary(s: &SecretRow) -> Value {
    json!({
        "path": s.path,
        "version": s.current_version,
        "secret_type": s.secret_type,
        "metadata": metadata_json(&metadata_of(s)),
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "expires_at": opt_rfc3339(s.expires_at),
        "rotation_policy_id": s.rotation_policy_id,
        "secret_policy_id": s.secret_policy_id,
    })
}

/// A read: the value of one version plus the secret's descriptive fields.
pub fn secret_with_data(
    s: &SecretRow,
    version: i64,
    version_created_at: i64,
    data: Value,
) -> Value {
    json!({
        "path": s.path,
        "secret_type": s.secret_type,
        "version": version,
        "data": data,
        "metadata": metadata_json(&metadata_of(s)),
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(version_created_at),
        "expires_at": opt_rfc3339(s.expires_at),
        "rotation_policy_id": s.rotation_policy_id,
        "secret_policy_id": s.secret_policy_id,
    })
}

/// Metadata view (`GET …/metadata`, batch metadata, list with `include_metadata`).
pub fn metadata_view(s: &SecretRow, version_count: i64, access: Option<&AccessStats>) -> Value {
    let m = metadata_of(s);
    json!({
        "path": s.path,
        "secret_type": s.secret_type,
        "version": s.current_version,
        "version_count": version_count,
        "max_versions": s.max_versions,
        "metadata": metadata_json(&m),
        "tags": m.tags,
        "description": m.description,
        "owner": m.owner,
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "expires_at": opt_rfc3339(s.expires_at),
        "rotation_policy_id": s.rotation_policy_id,
        "secret_policy_id": s.secret_policy_id,
        "rotation": { "policy_id": s.rotation_policy_id, "last_rotated_at": null, "next_rotation_at": null },
        "last_accessed_at": opt_rfc3339(access.map(|a| a.last_accessed_at)),
        "access_count_30d": access.map_or(0, |a| a.reads),
        "created_by": s.created_by,
        "updated_by": s.updated_by,
        "deleted": s.deleted_at.is_some(),
    })
}

/// One list item: the short form, widened to the metadata view on request.
pub fn list_item(s: &SecretRow, full: Option<(i64, Option<&AccessStats>)>) -> Value {
    match full {
        Some((count, access)) => metadata_view(s, count, access),
        None => {
            let m = metadata_of(s);
            json!({
                "path": s.path,
                "secret_type": s.secret_type,
                "version": s.current_version,
                "tags": m.tags,
                "updated_at": rfc3339(s.updated_at),
                "expires_at": opt_rfc3339(s.expires_at),
            })
        }
    }
}

pub fn extra(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}
