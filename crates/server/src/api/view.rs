//! JSON shapes of secrets, shared by the single-secret, list and batch endpoints.

use scaivault_core::secret::Metadata;
use scaivault_core::time_fmt::{opt_rfc3339, rfc3339};
use scaivault_store::{AccessStats, SecretRow};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

pub fn metadata_of(s: &SecretRow) -> Metadata {
    // Most secrets carry no metadata: no parse for them.
    if s.metadata == "{}" {
        return Metadata::default();
    }
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

/// A read (`GET /v1/secrets/{path}`): the value of one version plus the secret's descriptive
/// fields, serialised straight from the row and the decrypted bytes, with no JSON tree of either.
/// Fields in the sorted order serde_json gives an object, so the bytes are those of the tree (a
/// test checks they agree).
#[derive(serde::Serialize)]
pub struct SecretRead<'a> {
    created_at: String,
    data: &'a RawValue,
    expires_at: Option<String>,
    metadata: MetadataOut,
    path: &'a str,
    rotation_policy_id: Option<&'a str>,
    secret_policy_id: Option<&'a str>,
    secret_type: &'a str,
    updated_at: String,
    version: i64,
}

/// [`metadata_json`]'s object, in its sorted field order.
#[derive(serde::Serialize)]
struct MetadataOut {
    custom: Map<String, Value>,
    description: Option<String>,
    owner: Option<String>,
    tags: Vec<String>,
}

/// `data` is the decrypted value (JSON text, as sealed), validated but not parsed into a tree.
pub fn secret_read<'a>(
    s: &'a SecretRow,
    version: i64,
    version_created_at: i64,
    data: &'a RawValue,
) -> SecretRead<'a> {
    let m = metadata_of(s);
    SecretRead {
        created_at: rfc3339(s.created_at),
        data,
        expires_at: opt_rfc3339(s.expires_at),
        metadata: MetadataOut {
            custom: m.custom,
            description: m.description,
            owner: m.owner,
            tags: m.tags,
        },
        path: &s.path,
        rotation_policy_id: s.rotation_policy_id.as_deref(),
        secret_policy_id: s.secret_policy_id.as_deref(),
        secret_type: &s.secret_type,
        updated_at: rfc3339(version_created_at),
        version,
    }
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

/// The short list item of [`list_item`], serialised straight from the row: no JSON tree per row and
/// only the tags read from the stored metadata. Same bytes as `list_item(s, None)` (fields in the
/// sorted order serde_json gives an object; a test checks they agree).
#[derive(serde::Serialize)]
pub struct ListItem<'a> {
    expires_at: Option<String>,
    path: &'a str,
    secret_type: &'a str,
    tags: Vec<String>,
    updated_at: String,
    version: i64,
}

#[derive(serde::Deserialize)]
struct TagsOnly {
    #[serde(default)]
    tags: Vec<String>,
}

pub fn list_item_short(s: &SecretRow) -> ListItem<'_> {
    let tags = if s.metadata == "{}" {
        Vec::new()
    } else {
        serde_json::from_str::<TagsOnly>(&s.metadata)
            .map(|t| t.tags)
            .unwrap_or_default()
    };
    ListItem {
        expires_at: opt_rfc3339(s.expires_at),
        path: &s.path,
        secret_type: &s.secret_type,
        tags,
        updated_at: rfc3339(s.updated_at),
        version: s.current_version,
    }
}

/// A page of `GET /v1/secrets` (keys in serde_json's sorted order).
#[derive(serde::Serialize)]
pub struct ListPage<T> {
    pub cursor: Option<String>,
    pub has_more: bool,
    pub secrets: Vec<T>,
}

pub fn extra(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metadata: &str, expires_at: Option<i64>) -> SecretRow {
        SecretRow {
            tenant_id: "t".into(),
            path: "a/b\"c".into(),
            secret_type: "kv".into(),
            current_version: 3,
            max_versions: 10,
            metadata: metadata.into(),
            created_at: 1,
            updated_at: 1_776_967_200_123_456,
            expires_at,
            rotation_policy_id: None,
            secret_policy_id: None,
            created_by: "x".into(),
            updated_by: "x".into(),
            deleted_at: None,
            deleted_by: None,
            recoverable_until: None,
            restored_at: None,
            restored_by: None,
        }
    }

    /// The tree a read's body was built as before [`SecretRead`].
    fn secret_with_data(
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

    #[test]
    fn a_read_is_the_same_json_as_the_tree() {
        let mut with_ids = row(
            r#"{"tags":["x"],"owner":"o","description":"d\"q","custom":{"b":[1,{"z":null,"a":2}],"a":"\u00e9"}}"#,
            Some(1_800_000_000_000_000),
        );
        with_ids.rotation_policy_id = Some("rp_1".into());
        with_ids.secret_policy_id = Some("sp_\"2".into());
        let data =
            json!({"user": "u", "password": "p\"w\u{1}", "nested": {"k": [1, 2.5, true, null]}});
        let sealed = serde_json::to_vec(&data).unwrap();
        for r in [row("{}", None), row("not json", Some(5)), with_ids] {
            let raw: &RawValue = serde_json::from_slice(&sealed).unwrap();
            assert_eq!(
                serde_json::to_string(&secret_read(&r, 7, 1_776_967_200_000_001, raw)).unwrap(),
                serde_json::to_string(&secret_with_data(
                    &r,
                    7,
                    1_776_967_200_000_001,
                    data.clone()
                ))
                .unwrap()
            );
        }
    }

    #[test]
    fn short_list_item_is_the_same_json_as_the_tree() {
        for r in [
            row("{}", None),
            row(
                r#"{"tags":["x","y"],"description":"d","custom":{"k":1}}"#,
                Some(5),
            ),
            row("not json", None),
        ] {
            assert_eq!(
                serde_json::to_string(&list_item_short(&r)).unwrap(),
                serde_json::to_string(&list_item(&r, None)).unwrap()
            );
        }
        let empty = row("{}", None);
        let page = ListPage {
            cursor: None,
            has_more: false,
            secrets: vec![list_item_short(&empty)],
        };
        let tree = json!({ "secrets": [list_item(&row("{}", None), None)], "cursor": null, "has_more": false });
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            serde_json::to_string(&tree).unwrap()
        );
    }
}
