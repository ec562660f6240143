//! Envelope encryption for ScaiVault.
//!
//! Key chain: each secret version's value is sealed with AES-256-GCM under its own random data key
//! (DEK); the DEK is wrapped by the tenant key, the tenant key by the partner key, the partner key by
//! the root key, which a [`RootKeyProvider`] holds (a local key file, a KMS, an HSM). Associated data
//! binds every ciphertext to where it belongs (tenant, path, version), so a ciphertext copied to
//! another row does not open. Destroying a tenant's wrapped key makes its data unreadable.
//! This crate does no storage I/O; the root-key file provider is the one exception.

mod aead;
mod chain;
mod local;

pub use aead::{open, seal, Key, NONCE_LEN, TAG_LEN};
pub use chain::{open_value, seal_value, unwrap_key, wrap_key, SealedValue};
pub use local::LocalKeyFile;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong associated data, or tampered ciphertext.
    #[error("ciphertext did not authenticate")]
    Unauthentic,
    #[error("malformed key material")]
    Malformed,
    #[error("root key provider: {0}")]
    Provider(String),
}

/// Holds the root key and wraps/unwraps partner keys with it. Implementations never hand out the root
/// key itself, so a KMS or HSM can keep it unextractable.
#[async_trait]
pub trait RootKeyProvider: Send + Sync {
    /// Short name for health output (`local`, `vault-transit`, `aws-kms`).
    fn name(&self) -> &'static str;
    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError>;
    async fn unwrap(
        &self,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
}
