//! Random, prefixed identifiers (`req_…`, `log_…`, `skt_…`).

use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};

/// `prefix` + `n` random alphanumeric characters from the OS-seeded CSPRNG.
pub fn random(prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    s.extend(
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(n)
            .map(char::from),
    );
    s
}

pub fn request_id() -> String {
    random("req_", 20)
}

pub fn audit_log_id() -> String {
    random("log_", 20)
}

/// A personal access token: 40 alphanumeric characters ≈ 238 bits of entropy.
pub fn personal_access_token() -> String {
    random("skt_", 40)
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let t = super::personal_access_token();
        assert!(t.starts_with("skt_") && t.len() == 44);
        assert_ne!(super::request_id(), super::request_id());
    }
}
