//! Opaque pagination cursors: base64url of a kind tag and the position, so a cursor from one listing is
//! refused by another and clients cannot come to depend on its contents.

use base64::Engine;
use scaivault_core::{Error, ErrorCode};

/// Secret listings resume after a path.
pub const SECRETS: &str = "c1:";
/// Audit trails resume before a sequence number.
pub const AUDIT: &str = "a1:";

pub fn encode(kind: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}{position}"))
}

pub fn decode(kind: &str, cursor: &str) -> Result<String, Error> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "Cursor is malformed; pass back the cursor of the previous page",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    s.strip_prefix(kind).map(str::to_owned).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kind_check() {
        let c = encode(SECRETS, "a/b");
        assert_eq!(decode(SECRETS, &c).unwrap(), "a/b");
        assert_eq!(
            decode(AUDIT, &c).unwrap_err().code,
            ErrorCode::InvalidCursor
        );
        assert_eq!(
            decode(SECRETS, "!!").unwrap_err().code,
            ErrorCode::InvalidCursor
        );
        assert_eq!(
            decode(SECRETS, "YWJj").unwrap_err().code,
            ErrorCode::InvalidCursor
        );
    }
}
