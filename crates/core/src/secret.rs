//! Secret types and the validation of a write's fields. `secret_type` is a hint that does not change
//! storage, but where a type implies a format (PEM for certificates, an OpenSSH/PEM key for ssh_key)
//! the value must have it.

use crate::error::{Error, ErrorCode, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretType {
    Kv,
    Json,
    Certificate,
    SshKey,
    ApiKey,
}

impl SecretType {
    pub fn parse(s: &str) -> Result<SecretType, Error> {
        match s {
            "kv" => Ok(SecretType::Kv),
            "json" => Ok(SecretType::Json),
            "certificate" => Ok(SecretType::Certificate),
            "ssh_key" => Ok(SecretType::SshKey),
            "api_key" => Ok(SecretType::ApiKey),
            other => {
                let shown: String = other.chars().take(64).collect();
                Err(Error::new(
                    ErrorCode::InvalidSecretType,
                    format!("Unknown secret_type '{shown}'; use kv, json, certificate, ssh_key or api_key"),
                )
                .with_details(json!({ "secret_type": shown, "allowed": ["kv", "json", "certificate", "ssh_key", "api_key"] })))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Kv => "kv",
            SecretType::Json => "json",
            SecretType::Certificate => "certificate",
            SecretType::SshKey => "ssh_key",
            SecretType::ApiKey => "api_key",
        }
    }
}

/// Non-secret, searchable metadata of a secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub custom: Map<String, Value>,
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_DESCRIPTION_LEN: usize = 4096;
pub const MAX_DATA_BYTES: usize = 512 * 1024;
pub const DEFAULT_MAX_VERSIONS: i64 = 10;
pub const MAX_MAX_VERSIONS: i64 = 1000;

impl Metadata {
    /// Builds metadata from client JSON, collecting every field error. When `base` is given, only the
    /// keys present in `v` replace the base's (metadata PATCH); unknown top-level keys go to `custom`.
    pub fn from_json(v: &Value, base: Option<&Metadata>, errors: &mut Vec<FieldError>) -> Metadata {
        let mut m = base.cloned().unwrap_or_default();
        let Some(obj) = v.as_object() else {
            errors.push(FieldError::new("metadata", "must be an object"));
            return m;
        };
        for (k, val) in obj {
            match k.as_str() {
                "description" => match val {
                    Value::Null => m.description = None,
                    Value::String(s) if s.len() <= MAX_DESCRIPTION_LEN => {
                        m.description = Some(s.clone())
                    }
                    Value::String(_) => errors.push(FieldError::new(
                        "metadata.description",
                        "must be at most 4096 characters",
                    )),
                    _ => errors.push(FieldError::new("metadata.description", "must be a string")),
                },
                "owner" => match val {
                    Value::Null => m.owner = None,
                    Value::String(s) if s.len() <= 256 => m.owner = Some(s.clone()),
                    _ => errors.push(FieldError::new(
                        "metadata.owner",
                        "must be a string of at most 256 characters",
                    )),
                },
                "tags" => match val {
                    Value::Null => m.tags.clear(),
                    Value::Array(items) => {
                        let mut tags = Vec::with_capacity(items.len());
                        for (i, t) in items.iter().enumerate() {
                            match t.as_str() {
                                Some(s) if !s.is_empty() && s.len() <= MAX_TAG_LEN => {
                                    if !tags.iter().any(|x: &String| x == s) {
                                        tags.push(s.to_owned());
                                    }
                                }
                                _ => errors.push(FieldError::new(
                                    &format!("metadata.tags[{i}]"),
                                    "must be a non-empty string of at most 64 characters",
                                )),
                            }
                        }
                        if items.len() > MAX_TAGS {
                            errors.push(FieldError::new("metadata.tags", "at most 50 tags"));
                        }
                        m.tags = tags;
                    }
                    _ => errors.push(FieldError::new(
                        "metadata.tags",
                        "must be an array of strings",
                    )),
                },
                "custom" => match val {
                    Value::Null => m.custom.clear(),
                    Value::Object(o) => m.custom = o.clone(),
                    _ => errors.push(FieldError::new("metadata.custom", "must be an object")),
                },
                other => {
                    m.custom.insert(other.to_owned(), val.clone());
                }
            }
        }
        if serde_json::to_vec(&m).map(|b| b.len()).unwrap_or(0) > 64 * 1024 {
            errors.push(FieldError::new("metadata", "must be at most 64 KiB"));
        }
        m
    }
}

/// Checks `data` against the type's format; field errors name `data.<key>`. Never echoes values.
pub fn validate_data(ty: SecretType, data: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    match ty {
        SecretType::Json => {}
        SecretType::Kv | SecretType::ApiKey => {
            for (k, v) in data {
                if v.is_object() || v.is_array() {
                    errors.push(FieldError::new(
                        &format!("data.{k}"),
                        "kv values must be strings, numbers or booleans",
                    ));
                }
            }
        }
        SecretType::Certificate => {
            match data.get("cert_pem") {
                Some(Value::String(s)) if is_pem_certificate(s) => {}
                Some(_) => errors.push(FieldError::new(
                    "data.cert_pem",
                    "must be a PEM-encoded X.509 certificate",
                )),
                None => errors.push(FieldError::new(
                    "data.cert_pem",
                    "is required for secret_type certificate",
                )),
            }
            for key in ["key_pem", "chain_pem"] {
                match data.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) if looks_like_pem(s) => {}
                    Some(_) => errors.push(FieldError::new(
                        &format!("data.{key}"),
                        "must be PEM-encoded",
                    )),
                }
            }
        }
        SecretType::SshKey => {
            let private = data.get("private_key");
            let public = data.get("public_key");
            if private.is_none() && public.is_none() {
                errors.push(FieldError::new(
                    "data.private_key",
                    "ssh_key needs private_key or public_key",
                ));
            }
            if let Some(v) = private {
                if !v
                    .as_str()
                    .is_some_and(|s| looks_like_pem(s) && s.contains("PRIVATE KEY"))
                {
                    errors.push(FieldError::new(
                        "data.private_key",
                        "must be an OpenSSH or PEM private key",
                    ));
                }
            }
            if let Some(v) = public {
                if !v.as_str().is_some_and(is_ssh_public_key) {
                    errors.push(FieldError::new(
                        "data.public_key",
                        "must be an OpenSSH public key (e.g. 'ssh-ed25519 AAAA…')",
                    ));
                }
            }
        }
    }
}

fn looks_like_pem(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("-----BEGIN ") && t.contains("-----END ")
}

/// A structural PEM check that needs no X.509 parser: BEGIN/END CERTIFICATE armour around base64 that
/// decodes to a DER SEQUENCE. The server crate runs the full X.509 parse on top of this.
pub fn is_pem_certificate(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("-----BEGIN CERTIFICATE-----") && t.contains("-----END CERTIFICATE-----")
}

fn is_ssh_public_key(s: &str) -> bool {
    let mut parts = s.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    matches!(
        kind,
        "ssh-ed25519"
            | "ssh-rsa"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ssh-ed25519@openssh.com"
    ) && body.starts_with("AAAA")
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(SecretType::parse("ssh_key").unwrap(), SecretType::SshKey);
        assert_eq!(
            SecretType::parse("nope").unwrap_err().code,
            ErrorCode::InvalidSecretType
        );
    }

    #[test]
    fn metadata_patch_merges_keys() {
        let mut errs = vec![];
        let base = Metadata::from_json(
            &json!({"description": "d", "tags": ["a"], "team": "x"}),
            None,
            &mut errs,
        );
        assert!(errs.is_empty());
        assert_eq!(base.custom["team"], "x");
        let m = Metadata::from_json(&json!({"tags": ["b", "b"]}), Some(&base), &mut errs);
        assert_eq!(m.description.as_deref(), Some("d"));
        assert_eq!(m.tags, vec!["b"]);
        Metadata::from_json(&json!({"tags": [1], "owner": 3}), None, &mut errs);
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn data_formats() {
        let mut errs = vec![];
        let kv = json!({"a": "b", "n": 1}).as_object().cloned().unwrap();
        validate_data(SecretType::Kv, &kv, &mut errs);
        assert!(errs.is_empty());
        let nested = json!({"a": {"b": 1}}).as_object().cloned().unwrap();
        validate_data(SecretType::Kv, &nested, &mut errs);
        assert_eq!(errs.len(), 1);
        errs.clear();
        let cert = json!({"cert_pem": "hello"}).as_object().cloned().unwrap();
        validate_data(SecretType::Certificate, &cert, &mut errs);
        assert_eq!(errs[0].field, "data.cert_pem");
        errs.clear();
        let ssh = json!({"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA user@host"})
            .as_object()
            .cloned()
            .unwrap();
        validate_data(SecretType::SshKey, &ssh, &mut errs);
        assert!(errs.is_empty());
    }
}
