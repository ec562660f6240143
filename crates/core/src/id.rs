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

/// `log_` + 20 characters that sort by creation time: 9 base62 digits of the microsecond clock, then
/// 11 random ones (65 bits). Audit rows are indexed by id; ids that grow with time are appended at the
/// right edge of that index instead of landing on a random page of it, which keeps the audit indexer's
/// page cache and WAL traffic small.
pub fn audit_log_id() -> String {
    time_ordered("log_", 20)
}

const BASE62_ASCENDING: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` + `n` (> 9) characters: the microseconds since the Unix epoch in 9 base62 digits (until
/// the year 2398), then random alphanumerics.
pub fn time_ordered(prefix: &str, n: usize) -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let mut digits = [0u8; 9];
    let mut v = micros;
    for d in digits.iter_mut().rev() {
        *d = BASE62_ASCENDING[(v % 62) as usize];
        v /= 62;
    }
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    s.extend(digits.iter().map(|&b| char::from(b)));
    s.extend(
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(n.saturating_sub(digits.len()))
            .map(char::from),
    );
    s
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
    fn audit_ids_sort_by_time() {
        let a = super::audit_log_id();
        std::thread::sleep(std::time::Duration::from_micros(5));
        let b = super::audit_log_id();
        assert!(a.starts_with("log_") && a.len() == 24, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert!(a[..13] < b[..13], "{a} {b}");
    }

    #[test]
    fn shapes() {
        let t = super::personal_access_token();
        assert!(t.starts_with("skt_") && t.len() == 44);
        assert_ne!(super::request_id(), super::request_id());
    }
}
