//! Sealing one secret version: a fresh DEK encrypts the value; the tenant key wraps the DEK.

use crate::aead::{open, seal, Key};
use crate::CryptoError;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The DEK wrapped by the tenant key.
    pub wrapped_dek: Vec<u8>,
    /// The value sealed by the DEK.
    pub ciphertext: Vec<u8>,
}

/// Associated data for a version's value: tenant, path and version, NUL-separated (none may hold NUL).
fn value_aad(tenant: &str, path: &str, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant.len() + path.len() + 32);
    aad.extend_from_slice(b"value\0");
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(path.as_bytes());
    aad.push(0);
    aad.extend_from_slice(version.to_string().as_bytes());
    aad
}

fn dek_aad(tenant: &str, path: &str, version: i64) -> Vec<u8> {
    let mut aad = value_aad(tenant, path, version);
    aad.splice(0..5, b"dek".iter().copied());
    aad
}

pub fn seal_value(
    tenant_key: &Key,
    tenant: &str,
    path: &str,
    version: i64,
    plaintext: &[u8],
) -> SealedValue {
    let dek = Key::generate();
    SealedValue {
        wrapped_dek: seal(tenant_key, &dek_aad(tenant, path, version), dek.as_bytes()),
        ciphertext: seal(&dek, &value_aad(tenant, path, version), plaintext),
    }
}

pub fn open_value(
    tenant_key: &Key,
    tenant: &str,
    path: &str,
    version: i64,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let dek = open(
        tenant_key,
        &dek_aad(tenant, path, version),
        &sealed.wrapped_dek,
    )?;
    let dek = Key::from_slice(&dek)?;
    open(&dek, &value_aad(tenant, path, version), &sealed.ciphertext)
}

/// Wraps a child key (tenant key under a partner key) with AAD naming the child.
pub fn wrap_key(parent: &Key, child_label: &str, child: &Key) -> Vec<u8> {
    seal(parent, child_label.as_bytes(), child.as_bytes())
}

pub fn unwrap_key(parent: &Key, child_label: &str, wrapped: &[u8]) -> Result<Key, CryptoError> {
    let raw = open(parent, child_label.as_bytes(), wrapped)?;
    Key::from_slice(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_tenant_path_and_version() {
        let tk = Key::generate();
        let s = seal_value(&tk, "tnt_a", "a/b", 3, b"{\"k\":\"v\"}");
        assert_eq!(
            open_value(&tk, "tnt_a", "a/b", 3, &s).unwrap().as_slice(),
            b"{\"k\":\"v\"}"
        );
        assert!(open_value(&tk, "tnt_b", "a/b", 3, &s).is_err());
        assert!(open_value(&tk, "tnt_a", "a/c", 3, &s).is_err());
        assert!(open_value(&tk, "tnt_a", "a/b", 4, &s).is_err());
        assert!(open_value(&Key::generate(), "tnt_a", "a/b", 3, &s).is_err());
        // A DEK wrapped for one row cannot be paired with another row's ciphertext.
        let s2 = seal_value(&tk, "tnt_a", "a/b", 3, b"x");
        let mixed = SealedValue {
            wrapped_dek: s2.wrapped_dek,
            ciphertext: s.ciphertext,
        };
        assert!(open_value(&tk, "tnt_a", "a/b", 3, &mixed).is_err());
    }

    #[test]
    fn key_wrapping() {
        let parent = Key::generate();
        let child = Key::generate();
        let w = wrap_key(&parent, "tenant:tnt_a", &child);
        assert_eq!(
            unwrap_key(&parent, "tenant:tnt_a", &w).unwrap().as_bytes(),
            child.as_bytes()
        );
        assert!(unwrap_key(&parent, "tenant:tnt_b", &w).is_err());
    }
}
