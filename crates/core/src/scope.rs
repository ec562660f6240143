//! Token scopes. `admin` implies every scope.

pub const SECRETS_READ: &str = "secrets:read";
pub const SECRETS_WRITE: &str = "secrets:write";
pub const SECRETS_DELETE: &str = "secrets:delete";
pub const SECRETS_LIST: &str = "secrets:list";
pub const SECRETS_ROTATE: &str = "secrets:rotate";
pub const ADMIN: &str = "admin";
pub const IDENTITY_READ: &str = "identity:read";
pub const IDENTITY_ADMIN: &str = "identity:admin";

pub const ALL: &[&str] = &[
    SECRETS_READ,
    SECRETS_WRITE,
    SECRETS_DELETE,
    SECRETS_LIST,
    SECRETS_ROTATE,
    "policies:read",
    "policies:write",
    "audit:read",
    "audit:export",
    "pki:issue",
    "pki:admin",
    "dynamic:read",
    "dynamic:write",
    "webhooks:read",
    "webhooks:write",
    IDENTITY_READ,
    IDENTITY_ADMIN,
    ADMIN,
];

pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}

/// Whether a granted scope set allows `needed`.
pub fn allows<S: AsRef<str>>(granted: &[S], needed: &str) -> bool {
    granted
        .iter()
        .any(|g| g.as_ref() == needed || g.as_ref() == ADMIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_all() {
        assert!(allows(&["admin"], SECRETS_READ));
        assert!(allows(&["secrets:read"], SECRETS_READ));
        assert!(!allows(&["secrets:read"], SECRETS_WRITE));
        assert!(!allows::<&str>(&[], SECRETS_READ));
        assert!(is_known("audit:read") && !is_known("secrets:*"));
    }
}
