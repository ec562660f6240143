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

/// Why a chain fails verification, naming the first entry that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub id: String,
    pub reason: &'static str,
}

/// Checks entries of one tenant's chain fed in sequence order: a changed entry fails its hash, a removed
/// one leaves a gap in `seq`, reordered ones fail both.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: Vec<u8>,
    next_seq: i64,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            prev: GENESIS.to_vec(),
            next_seq: 1,
            checked: 0,
        }
    }
}

impl ChainVerifier {
    /// Starts after a known (seq, hash), e.g. to verify the tail of a chain or a later export.
    pub fn resume(seq: i64, hash: Vec<u8>) -> ChainVerifier {
        ChainVerifier {
            prev: hash,
            next_seq: seq + 1,
            checked: 0,
        }
    }

    pub fn push(
        &mut self,
        seq: i64,
        entry: &AuditEntry,
        stored_hash: &[u8],
    ) -> Result<(), ChainBreak> {
        let brk = |reason| ChainBreak {
            seq,
            id: entry.id.clone(),
            reason,
        };
        if seq != self.next_seq {
            return Err(brk(if seq > self.next_seq {
                "entries are missing before this one (sequence gap)"
            } else {
                "entry is out of order or duplicated"
            }));
        }
        let h = entry.chain_hash(seq, &self.prev);
        if h.as_slice() != stored_hash {
            return Err(brk(
                "entry does not match its hash (changed, or the chain was reordered)",
            ));
        }
        self.prev = h.to_vec();
        self.next_seq += 1;
        self.checked += 1;
        Ok(())
    }

    /// The last verified sequence number.
    pub fn last_seq(&self) -> i64 {
        self.next_seq - 1
    }

    pub fn last_hash(&self) -> &[u8] {
        &self.prev
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    fn chain(n: usize) -> Vec<(i64, AuditEntry, Vec<u8>)> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|i| {
                let e = AuditEntry {
                    id: format!("log_{i}"),
                    tenant_id: "t".into(),
                    timestamp: i as i64,
                    action: "read".into(),
                    identity_type: "user".into(),
                    identity_id: "u".into(),
                    secret_path: Some(format!("p/{i}")),
                    source_ip: None,
                    user_agent: None,
                    success: true,
                    status: 200,
                    error_code: None,
                    duration_ms: 0,
                    request_id: "r".into(),
                    extra_data: "{}".into(),
                };
                let h = e.chain_hash(i as i64, &prev).to_vec();
                prev = h.clone();
                (i as i64, e, h)
            })
            .collect()
    }

    fn verify(c: &[(i64, AuditEntry, Vec<u8>)]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for (s, e, h) in c {
            v.push(*s, e, h)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn detects_edit_removal_and_swap() {
        let c = chain(5);
        assert_eq!(verify(&c), Ok(5));
        let mut edited = c.clone();
        edited[2].1.identity_id = "mallory".into();
        assert_eq!(verify(&edited).unwrap_err().seq, 3);
        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 3);
        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped).unwrap_err().seq, 3);
        // Swapping the rows but keeping the seq column in order still breaks at the first moved entry.
        let mut reseq = c.clone();
        reseq.swap(1, 2);
        reseq[1].0 = 2;
        reseq[2].0 = 3;
        assert_eq!(verify(&reseq).unwrap_err().seq, 2);
    }
}
