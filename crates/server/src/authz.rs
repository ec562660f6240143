//! Authorisation: every handler asks [`Authorizer::check`] before touching a path. Today the decision is
//! the token's scopes (each permission needs its `secrets:*` scope). The policy engine plugs in here:
//! decision = scopes ∩ policies, deny by default.

use crate::api::ctx::Ctx;
use scaivault_core::{scope, Error, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    Delete,
    List,
    Rotate,
}

impl Permission {
    pub fn scope(self) -> &'static str {
        match self {
            Permission::Read => scope::SECRETS_READ,
            Permission::Write => scope::SECRETS_WRITE,
            Permission::Delete => scope::SECRETS_DELETE,
            Permission::List => scope::SECRETS_LIST,
            Permission::Rotate => scope::SECRETS_ROTATE,
        }
    }
}

#[derive(Default)]
pub struct Authorizer;

impl Authorizer {
    /// May the caller of `ctx` exercise `perm` on `path` within `ctx.tenant`?
    pub fn check(&self, ctx: &Ctx, perm: Permission, _path: &str) -> Result<(), Error> {
        ctx.principal.require_scope(perm.scope())?;
        if ctx.partner_scope {
            return partner_scope(ctx, perm);
        }
        Ok(())
    }
}

/// Partner-scoped secrets: every tenant of the partner may read and list them (with the scope); only
/// the partner's admins may change them.
fn partner_scope(ctx: &Ctx, perm: Permission) -> Result<(), Error> {
    match perm {
        Permission::Read | Permission::List => Ok(()),
        _ if crate::tenancy::is_partner_admin_of(&ctx.principal, &ctx.partner) => Ok(()),
        _ => Err(Error::new(
            ErrorCode::AccessDenied,
            "Only partner admins may change partner-scoped secrets",
        )),
    }
}
