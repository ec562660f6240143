use crate::CryptoError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// A 256-bit symmetric key, zeroised on drop. Holds the expanded cipher so hot paths skip key setup.
pub struct Key {
    raw: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl Key {
    pub fn generate() -> Key {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(raw.as_mut());
        Key::from_raw(raw)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Key, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Key::from_raw(Zeroizing::new(arr)))
    }

    fn from_raw(raw: Zeroizing<[u8; 32]>) -> Key {
        let cipher = Aes256Gcm::new(raw.as_ref().into());
        Key { raw, cipher }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_ref()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

/// AES-256-GCM with a fresh random nonce; output is `nonce || ciphertext || tag`.
pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    // Encryption with a valid key and in-memory buffers cannot fail; an empty result would fail to open.
    if let Ok(ct) = key.cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        out.extend_from_slice(&ct);
    }
    out
}

pub fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Unauthentic);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    key.cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = Key::generate();
        let s = seal(&k, b"aad", b"hello");
        assert_eq!(open(&k, b"aad", &s).unwrap().as_slice(), b"hello");
        assert!(open(&k, b"other", &s).is_err());
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(open(&k, b"aad", &t).is_err());
        assert!(open(&Key::generate(), b"aad", &s).is_err());
        assert!(open(&k, b"aad", &s[..10]).is_err());
        assert_ne!(seal(&k, b"aad", b"hello"), s, "nonces must differ");
        assert_eq!(format!("{k:?}"), "Key(***)");
    }
}
