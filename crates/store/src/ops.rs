//! Mutations. Each carries the audit entries that must become durable with it, in the same commit.

use crate::model::SecretRow;
use scaivault_core::audit::AuditEntry;
use scaivault_crypto::SealedValue;

#[derive(Debug)]
pub enum WriteOp {
    Audit(Vec<AuditEntry>),
    PutSecret(Box<PutSecret>),
    UpdateMetadata(Box<UpdateMetadata>),
    DeleteSecret {
        tenant_id: String,
        path: String,
        by: String,
        now: i64,
        recoverable_until: i64,
        audit: Vec<AuditEntry>,
    },
    DeleteVersion {
        tenant_id: String,
        path: String,
        version: i64,
        by: String,
        now: i64,
        audit: Vec<AuditEntry>,
    },
    HardDelete {
        tenant_id: String,
        path: String,
        audit: Vec<AuditEntry>,
    },
    Restore {
        tenant_id: String,
        path: String,
        version: Option<i64>,
        by: String,
        now: i64,
        audit: Vec<AuditEntry>,
    },
    InsertToken {
        row: crate::model::TokenRow,
        audit: Vec<AuditEntry>,
    },
    /// Revokes a live token of the tenant; with `owner`, only if that identity owns it.
    RevokeToken {
        tenant_id: String,
        token_id: String,
        owner: Option<String>,
        now: i64,
        audit: Vec<AuditEntry>,
    },
    Identity {
        op: crate::identity::IdentityOp,
        audit: Vec<AuditEntry>,
    },
    /// Inserts a policy, or with `replace` overwrites an existing one's mutable fields (bindings kept).
    PutPolicy {
        row: crate::model::PolicyRow,
        replace: bool,
        audit: Vec<AuditEntry>,
    },
    /// Deletes a policy; with `force` its bindings too, else fails with [`OpError::InUse`] if bound.
    DeletePolicy {
        tenant_id: String,
        id: String,
        force: bool,
        audit: Vec<AuditEntry>,
    },
    /// Inserts a binding of an existing policy of the same owner.
    InsertBinding {
        row: crate::model::BindingRow,
        audit: Vec<AuditEntry>,
    },
    DeleteBinding {
        tenant_id: String,
        policy_id: String,
        id: String,
        audit: Vec<AuditEntry>,
    },
    /// Inserts, or with `replace` overwrites, a secret policy.
    PutSecretPolicy {
        row: crate::model::SecretPolicyRow,
        replace: bool,
        audit: Vec<AuditEntry>,
    },
    DeleteSecretPolicy {
        tenant_id: String,
        id: String,
        audit: Vec<AuditEntry>,
    },
    /// Links a secret to a secret policy (or unlinks it with `None`).
    SetSecretPolicy {
        tenant_id: String,
        path: String,
        secret_policy_id: Option<String>,
        audit: Vec<AuditEntry>,
    },
    /// Creates a service account: its identity, its client id and its first secret. Fails with
    /// [`OpError::AlreadyExists`] when the tenant already has an identity with that id.
    CreateServiceAccount {
        account: Box<crate::model::ServiceAccountRow>,
        secret: crate::model::ClientSecretRow,
        audit: Vec<AuditEntry>,
    },
    /// Disables a live service account of the tenant (its secrets and tokens stop working).
    DisableServiceAccount {
        tenant_id: String,
        identity_id: String,
        now: i64,
        audit: Vec<AuditEntry>,
    },
    /// Adds a client secret to a live service account; its other secrets expire at `old_expire_at`
    /// (now, or the end of a grace period) unless they expire sooner already.
    RotateClientSecret {
        tenant_id: String,
        identity_id: String,
        secret: crate::model::ClientSecretRow,
        old_expire_at: i64,
        audit: Vec<AuditEntry>,
    },
}

#[derive(Debug)]
pub struct PutSecret {
    pub tenant_id: String,
    pub path: String,
    /// The current version observed when the value was sealed (0: the secret did not exist). The write
    /// fails with [`OpError::Conflict`] if another write got in between; the caller re-seals and retries.
    pub expected_version: i64,
    pub secret_type: String,
    /// `None` keeps the stored metadata.
    pub metadata: Option<String>,
    pub max_versions: Option<i64>,
    pub expires_at: Option<i64>,
    pub rotation_policy_id: Option<String>,
    pub sealed: SealedValue,
    pub by: String,
    pub now: i64,
    pub audit: Vec<AuditEntry>,
}

#[derive(Debug)]
pub struct UpdateMetadata {
    pub tenant_id: String,
    pub path: String,
    pub metadata: String,
    pub max_versions: Option<i64>,
    /// `Some(None)` clears the expiry.
    pub expires_at: Option<Option<i64>>,
    pub rotation_policy_id: Option<Option<String>>,
    pub by: String,
    pub now: i64,
    pub audit: Vec<AuditEntry>,
}

impl WriteOp {
    /// Does this change who a token stands for (so other nodes must drop cached principals)?
    pub fn changes_auth(&self) -> bool {
        matches!(
            self,
            WriteOp::RevokeToken { .. }
                | WriteOp::Identity { .. }
                | WriteOp::DisableServiceAccount { .. }
                | WriteOp::RotateClientSecret { .. }
        )
    }

    pub fn audit_entries(&self) -> &[AuditEntry] {
        match self {
            WriteOp::Audit(a) => a,
            WriteOp::PutSecret(p) => &p.audit,
            WriteOp::UpdateMetadata(u) => &u.audit,
            WriteOp::DeleteSecret { audit, .. }
            | WriteOp::DeleteVersion { audit, .. }
            | WriteOp::HardDelete { audit, .. }
            | WriteOp::Restore { audit, .. }
            | WriteOp::InsertToken { audit, .. }
            | WriteOp::RevokeToken { audit, .. }
            | WriteOp::Identity { audit, .. }
            | WriteOp::PutPolicy { audit, .. }
            | WriteOp::DeletePolicy { audit, .. }
            | WriteOp::InsertBinding { audit, .. }
            | WriteOp::DeleteBinding { audit, .. }
            | WriteOp::PutSecretPolicy { audit, .. }
            | WriteOp::DeleteSecretPolicy { audit, .. }
            | WriteOp::SetSecretPolicy { audit, .. }
            | WriteOp::CreateServiceAccount { audit, .. }
            | WriteOp::DisableServiceAccount { audit, .. }
            | WriteOp::RotateClientSecret { audit, .. } => audit,
        }
    }
}

#[derive(Debug)]
pub enum OpOutcome {
    Audited,
    Put {
        version: i64,
        created: bool,
        secret: SecretRow,
    },
    Updated(SecretRow),
    Deleted {
        version_count: i64,
    },
    Done,
}

/// Why one operation of a batch did not apply; the rest of the batch is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("secret not found")]
    NotFound,
    #[error("version not found")]
    VersionNotFound,
    #[error("version conflict (current {current})")]
    Conflict { current: i64 },
    #[error("secret is soft-deleted")]
    SoftDeleted { recoverable_until: Option<i64> },
    #[error("store: {0}")]
    Store(String),
    /// An identity, service account, client id, partner or tenant with that id already exists.
    #[error("already exists")]
    AlreadyExists,
    #[error("identity not found")]
    IdentityNotFound,
    /// A non-secret resource is missing; carries its API error code (e.g. `policy_not_found`).
    #[error("{0}")]
    Missing(&'static str),
    /// The policy still has bindings.
    #[error("policy in use")]
    InUse,
}

/// A new version of `path` (tenant `t`, by user `u`) written at version `expected_version`, for
/// tests across the crate.
#[cfg(test)]
pub(crate) fn test_put(path: &str, expected_version: i64) -> WriteOp {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    WriteOp::PutSecret(Box::new(PutSecret {
        tenant_id: "t".into(),
        path: path.into(),
        expected_version,
        secret_type: "generic".into(),
        metadata: None,
        max_versions: None,
        expires_at: None,
        rotation_policy_id: None,
        sealed: SealedValue {
            wrapped_dek: vec![1; 40],
            ciphertext: vec![2; 60],
        },
        by: "u".into(),
        now: 1_000,
        audit: vec![crate::audit_journal::test_entry(
            format!("log_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            1_000,
            "write",
            path,
        )],
    }))
}
