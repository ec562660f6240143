//! Audit entries and their per-tenant hash chain: each entry's hash covers the previous entry's hash and
//! every field of the entry, so an edited, removed or reordered entry breaks the chain from that point on.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The chain starts from 32 zero bytes.
pub const GENESIS: [u8; 32] = [0u8; 32];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub tenant_id: String,
    pub timestamp: i64,
    pub action: String,
    pub identity_type: String,
    pub identity_id: String,
    pub secret_path: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    pub status: i32,
    pub error_code: Option<String>,
    pub duration_ms: i64,
    pub request_id: String,
    pub extra_data: String,
}

impl AuditEntry {
    /// Hash of this entry chained to `prev`. Fields are length-prefixed so no two entries collide by
    /// shifting bytes between fields.
    pub fn chain_hash(&self, seq: i64, prev: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"scaivault-audit-v1");
        h.update(prev);
        h.update(seq.to_be_bytes());
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        for f in [
            self.id.as_str(),
            self.tenant_id.as_str(),
            self.action.as_str(),
            self.identity_type.as_str(),
            self.identity_id.as_str(),
            opt(&self.secret_path).as_str(),
            opt(&self.source_ip).as_str(),
            opt(&self.user_agent).as_str(),
            opt(&self.error_code).as_str(),
            self.request_id.as_str(),
            self.extra_data.as_str(),
        ] {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f.as_bytes());
        }
        h.update(self.timestamp.to_be_bytes());
        h.update([u8::from(self.success)]);
        h.update(self.status.to_be_bytes());
        h.update(self.duration_ms.to_be_bytes());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            id: "log_1".into(),
            tenant_id: "tnt_a".into(),
            timestamp: 1,
            action: "read".into(),
            identity_type: "user".into(),
            identity_id: "user:a@b".into(),
            secret_path: Some("a/b".into()),
            source_ip: None,
            user_agent: None,
            success: true,
            status: 200,
            error_code: None,
            duration_ms: 1,
            request_id: "req_1".into(),
            extra_data: "{}".into(),
        }
    }

    #[test]
    fn any_change_changes_the_hash() {
        let e = entry();
        let h = e.chain_hash(1, &GENESIS);
        assert_eq!(h, e.chain_hash(1, &GENESIS));
        assert_ne!(h, e.chain_hash(2, &GENESIS));
        assert_ne!(h, e.chain_hash(1, &h));
        let mut e2 = e.clone();
        e2.success = false;
        assert_ne!(h, e2.chain_hash(1, &GENESIS));
        let mut e3 = e.clone();
        e3.secret_path = Some("a/bb".into());
        assert_ne!(h, e3.chain_hash(1, &GENESIS));
    }
}
