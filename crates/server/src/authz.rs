//! Authorisation: every handler asks [`Authorizer::check`] before touching a path.
//!
//! Decision = token scopes ∩ policies, deny by default:
//! 1. the token must hold the permission's `secrets:*` scope (else `insufficient_scope`);
//! 2. admin roles: `super_admin` is allowed everything, `tenant_admin` everything in its own tenant,
//!    `partner_admin` everything in its partner's tenants;
//! 3. everyone else needs a rule of an active policy bound to them (directly or through a group) that
//!    matches the path, grants the permission and whose conditions hold (see `scaivault_core::policy`).
//!
//! Policies are compiled into one [`Index`] held behind a lock-free-to-read `Arc`; a decision only reads
//! it. Every policy or binding change bumps a version counter in the store (same transaction); this node
//! recompiles right after its own change, and a background task polls the counter every
//! [`REFRESH_INTERVAL`] so other nodes sharing the database pick up a change within that bound.

use crate::api::ctx::Ctx;
use parking_lot::RwLock;
use scaivault_core::policy::{self, BindingDef, Decision, Env, Index, Perm, PolicyDef, Subject};
use scaivault_core::time_fmt::now_micros;
use scaivault_core::{scope, Error, ErrorCode};
use scaivault_store::{DynStore, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

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

    pub fn perm(self) -> Perm {
        match self {
            Permission::Read => Perm::Read,
            Permission::Write => Perm::Write,
            Permission::Delete => Perm::Delete,
            Permission::List => Perm::List,
            Permission::Rotate => Perm::Rotate,
        }
    }
}

pub use crate::tenancy::{admin_role_over, PARTNER_ADMIN, SUPER_ADMIN, TENANT_ADMIN};

/// The caller's admin role over the tenant the request acts in.
pub fn ctx_admin_role(ctx: &Ctx) -> Option<&'static str> {
    let p = &ctx.principal;
    admin_role_over(
        &p.roles,
        &p.tenant_id,
        &p.partner_id,
        &ctx.tenant,
        &ctx.partner,
    )
}

struct Compiled {
    version: i64,
    index: Index,
}

pub struct Authorizer {
    store: Option<DynStore>,
    compiled: RwLock<Arc<Compiled>>,
    reload: tokio::sync::Mutex<()>,
}

impl Default for Authorizer {
    /// No store: only admins (and nobody through policies) are allowed.
    fn default() -> Self {
        Authorizer {
            store: None,
            compiled: RwLock::new(Arc::new(Compiled {
                version: -1,
                index: Index::default(),
            })),
            reload: tokio::sync::Mutex::new(()),
        }
    }
}

/// Converts stored policies into the engine's definitions; a row whose rules no longer parse is skipped
/// (and logged) rather than failing the whole index: deny by default.
pub fn definitions(
    rows: Vec<scaivault_store::PolicyRow>,
    bindings: Vec<scaivault_store::BindingRow>,
) -> (Vec<PolicyDef>, Vec<BindingDef>) {
    let mut defs = Vec::with_capacity(rows.len());
    for r in rows {
        let rules = serde_json::from_str(&r.rules)
            .map_err(|e| e.to_string())
            .and_then(|v| policy::parse_rules(&v).map_err(|e| e.to_string()));
        match rules {
            Ok(rules) => defs.push(PolicyDef {
                id: r.id,
                name: r.name,
                owner: r.tenant_id,
                is_active: r.is_active,
                rules,
            }),
            Err(e) => {
                tracing::error!(site = "AZ0001", policy = %r.id, error = %e, "stored policy does not compile; ignored")
            }
        }
    }
    let binds = bindings
        .into_iter()
        .map(|b| BindingDef {
            policy_id: b.policy_id,
            owner: b.tenant_id,
            subject: b.identity_id,
            expires_at: b.expires_at,
        })
        .collect();
    (defs, binds)
}

impl Authorizer {
    pub fn new(store: DynStore) -> Authorizer {
        Authorizer {
            store: Some(store),
            ..Authorizer::default()
        }
    }

    /// Recompiles from the store (after a change on this node, and at start).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let _guard = self.reload.lock().await;
        let version = store.policy_version().await?;
        let (rows, bindings) = store.all_policies().await?;
        let (defs, binds) = definitions(rows, bindings);
        let index = Index::build(defs, binds);
        *self.compiled.write() = Arc::new(Compiled { version, index });
        Ok(())
    }

    /// Recompiles if another node changed policies since the last compile.
    pub async fn refresh_if_changed(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let version = store.policy_version().await?;
        if version != self.compiled.read().version {
            self.reload().await?;
        }
        Ok(())
    }

    /// The policy decision alone (no scopes, no admin roles), for `POST /v1/policies/test`.
    pub fn decide(&self, subject: &Subject<'_>, perm: Perm, path: &str, env: &Env) -> Decision {
        let c = self.compiled.read().clone();
        c.index.decide(subject, perm, path, env)
    }

    /// May the caller of `ctx` exercise `perm` on `path` within `ctx.tenant`?
    pub fn check(&self, ctx: &Ctx, perm: Permission, path: &str) -> Result<(), Error> {
        let p = &ctx.principal;
        p.require_scope(perm.scope())?;
        if ctx.partner_scope {
            return partner_scope(ctx, perm);
        }
        if ctx_admin_role(ctx).is_some() {
            return Ok(());
        }
        let (subject, env) = subject_and_env(ctx);
        let d = self.decide(&subject, perm.perm(), path, &env);
        match d.error(perm.perm(), path) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

impl Authorizer {
    /// Keeps the rows whose path [`Authorizer::check`] allows, resolving the scope, admin role,
    /// environment and compiled index once for the whole list instead of once per row.
    pub fn retain_allowed<T>(
        &self,
        ctx: &Ctx,
        perm: Permission,
        rows: &mut Vec<T>,
        path: impl Fn(&T) -> &str,
    ) {
        let p = &ctx.principal;
        if p.require_scope(perm.scope()).is_err() {
            rows.clear();
            return;
        }
        if ctx.partner_scope {
            if partner_scope(ctx, perm).is_err() {
                rows.clear();
            }
            return;
        }
        if ctx_admin_role(ctx).is_some() {
            return;
        }
        let (subject, env) = subject_and_env(ctx);
        let c = self.compiled.read().clone();
        rows.retain(|r| {
            let path = path(r);
            c.index
                .decide(&subject, perm.perm(), path, &env)
                .error(perm.perm(), path)
                .is_none()
        });
    }
}

/// Runs forever: polls the policy version every [`REFRESH_INTERVAL`] and recompiles on a change.
pub async fn refresh_loop(state: crate::state::AppState) {
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut epoch = None;
    loop {
        tick.tick().await;
        if let Err(e) = state.authz.refresh_if_changed().await {
            tracing::warn!(site = "AZ0002", error = %e, "policy refresh failed; keeping the compiled policies");
        }
        // Another node revoked a token or changed an identity or tenant: what this node cached of
        // principals and tenants may now grant too much.
        match state.store.auth_epoch().await {
            Ok(now) => {
                if epoch.is_some_and(|seen| seen != now) {
                    state.auth.invalidate_all();
                    state.tenants.clear();
                }
                epoch = Some(now);
            }
            Err(e) => {
                tracing::warn!(site = "AZ0003", error = %e, "auth epoch poll failed; cached principals expire on their own");
            }
        }
    }
}

/// Who asks and in what circumstances, as the policy index sees it.
fn subject_and_env(ctx: &Ctx) -> (Subject<'_>, Env) {
    let p = &ctx.principal;
    let subject = Subject {
        identity_id: &p.identity_id,
        groups: &p.groups,
        tenant: &ctx.tenant,
        partner: &ctx.partner,
    };
    let env = Env {
        source_ip: ctx
            .source_ip
            .as_deref()
            .and_then(|s| s.parse::<IpAddr>().ok()),
        mfa_verified_at: p.mfa_verified_at,
        now: now_micros(),
    };
    (subject, env)
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
