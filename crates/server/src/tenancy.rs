//! Tenant resolution and admin roles. Every request acts in exactly one tenant, chosen in priority
//! order by the `/v1/t/{tenant_id}/…` path prefix, the `X-Tenant-ID` header, or the token's own tenant;
//! the first two only for partner admins within their partner (super admins anywhere). Partner-scoped
//! secrets (`/v1/partner/secrets/…`) act in the partner's shared-secrets tenant, whose id is the partner id.

use crate::auth::Principal;
use crate::ratelimit::TenantLimits;
use axum::extract::Request;
use axum::http::Uri;
use parking_lot::RwLock;
use scaivault_core::{Error, ErrorCode};
use scaivault_store::{DynStore, TenantRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SUPER_ADMIN: &str = "super_admin";
pub const PARTNER_ADMIN: &str = "partner_admin";
pub const TENANT_ADMIN: &str = "tenant_admin";
pub const ROLES: [&str; 3] = [SUPER_ADMIN, PARTNER_ADMIN, TENANT_ADMIN];

/// The tenant named by a `/v1/t/{tenant_id}/…` prefix, taken off the URI before routing.
#[derive(Clone, Debug)]
pub struct TenantPrefix(pub String);

/// The request came in under `/v1/partner/secrets/…`.
#[derive(Clone, Copy, Debug)]
pub struct PartnerScope;

/// Rewrites `/v1/t/{tenant}/rest` to `/v1/rest` and `/v1/partner/secrets…` to `/v1/secrets…`, recording
/// what was taken off as request extensions, so one set of routes serves every scope.
pub fn rewrite(mut req: Request) -> Request {
    let path = req.uri().path();
    let mut new_path: Option<String> = None;
    if let Some(rest) = path.strip_prefix("/v1/t/") {
        let (tenant, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !tenant.is_empty() {
            let tenant = tenant.to_owned();
            new_path = Some(format!("/v1/{tail}"));
            req.extensions_mut().insert(TenantPrefix(tenant));
        }
    }
    let current = new_path.as_deref().unwrap_or(req.uri().path()).to_owned();
    if let Some(tail) = current.strip_prefix("/v1/partner/secrets") {
        if tail.is_empty() || tail.starts_with('/') {
            new_path = Some(format!("/v1/secrets{tail}"));
            req.extensions_mut().insert(PartnerScope);
        }
    }
    if let Some(p) = new_path {
        let pq = match req.uri().query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

pub fn is_super_admin(p: &Principal) -> bool {
    p.roles.iter().any(|r| r == SUPER_ADMIN)
}

/// Which admin role, if any, lets an identity (of `own_tenant` / `own_partner`) do everything in
/// `tenant` of `partner`.
pub fn admin_role_over(
    roles: &[String],
    own_tenant: &str,
    own_partner: &str,
    tenant: &str,
    partner: &str,
) -> Option<&'static str> {
    let has = |r: &str| roles.iter().any(|x| x == r);
    if has(SUPER_ADMIN) {
        Some(SUPER_ADMIN)
    } else if has(PARTNER_ADMIN) && own_partner == partner {
        Some(PARTNER_ADMIN)
    } else if has(TENANT_ADMIN) && own_tenant == tenant {
        Some(TENANT_ADMIN)
    } else {
        None
    }
}

/// May `p` administer the partner `partner_id` (its tenants, their users and roles)?
pub fn is_partner_admin_of(p: &Principal, partner_id: &str) -> bool {
    // No tenant is named, so only the partner-wide roles can match.
    matches!(
        admin_role_over(&p.roles, &p.tenant_id, &p.partner_id, "", partner_id),
        Some(SUPER_ADMIN | PARTNER_ADMIN)
    )
}

/// May `p` administer the tenant `tenant_id` of `partner_id`?
pub fn is_tenant_admin_of(p: &Principal, tenant_id: &str, partner_id: &str) -> bool {
    admin_role_over(&p.roles, &p.tenant_id, &p.partner_id, tenant_id, partner_id).is_some()
}

/// What the pipeline needs to know of a tenant, cached briefly (tenants rarely change).
#[derive(Clone, Debug)]
pub struct TenantInfo {
    pub id: String,
    pub partner_id: String,
    pub kind: String,
    pub status: String,
    /// Overrides of the node's rate limits for this tenant's identities.
    pub rate_limits: Option<TenantLimits>,
}

impl From<&TenantRow> for TenantInfo {
    fn from(t: &TenantRow) -> Self {
        TenantInfo {
            id: t.id.clone(),
            partner_id: t.partner_id.clone(),
            kind: t.kind.clone(),
            status: t.status.clone(),
            rate_limits: tenant_limits(t),
        }
    }
}

/// The tenant's stored overrides. They were validated when written; a row that does not parse (edited
/// by hand) keeps the node's limits and says so.
pub fn tenant_limits(t: &TenantRow) -> Option<TenantLimits> {
    let raw = t.rate_limits.as_deref()?;
    match serde_json::from_str(raw)
        .map_err(|e| e.to_string())
        .and_then(|v| TenantLimits::from_json(&v))
    {
        Ok(l) if !l.is_empty() => Some(l),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(site = "TN0002", tenant_id = %t.id, error = %e, "ignoring unreadable tenant rate limits");
            None
        }
    }
}

const TTL: Duration = Duration::from_secs(5);

/// A lookup result (including "no such tenant") and when it was made.
type CacheEntry = (Option<Arc<TenantInfo>>, Instant);

pub struct Tenants {
    store: DynStore,
    cache: RwLock<HashMap<String, CacheEntry>>,
}

impl Tenants {
    pub fn new(store: DynStore) -> Tenants {
        Tenants {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn invalidate(&self, id: &str) {
        self.cache.write().remove(id);
    }

    pub fn clear(&self) {
        self.cache.write().clear();
    }

    pub async fn get(&self, id: &str) -> Result<Option<Arc<TenantInfo>>, Error> {
        if let Some((t, at)) = self.cache.read().get(id) {
            if at.elapsed() < TTL {
                return Ok(t.clone());
            }
        }
        let t = self
            .store
            .get_tenant(id)
            .await
            .map_err(|e| {
                tracing::error!(site = "TN0001", error = %e, "tenant lookup failed");
                Error::unavailable("Tenant lookup")
            })?
            .map(|t| Arc::new(TenantInfo::from(&t)));
        let mut cache = self.cache.write();
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id.to_owned(), (t.clone(), Instant::now()));
        Ok(t)
    }

    /// The (tenant, partner) a request of `p` acts in. `requested` is the prefix or header value.
    pub async fn resolve(
        &self,
        p: &Principal,
        requested: Option<&str>,
        partner_scope: bool,
    ) -> Result<(String, String), Error> {
        let (tenant, partner) = match requested {
            Some(t) if t != p.tenant_id => {
                // Only partner admins may pick a tenant; others learn nothing about which tenants exist.
                if !is_super_admin(p) && !p.roles.iter().any(|r| r == PARTNER_ADMIN) {
                    return Err(Error::new(
                        ErrorCode::TenantAccessDenied,
                        "Acting in another tenant needs partner-admin privileges",
                    ));
                }
                let Some(info) = self.get(t).await? else {
                    return Err(tenant_not_found(t));
                };
                if !is_partner_admin_of(p, &info.partner_id) {
                    return Err(Error::new(
                        ErrorCode::AccessDenied,
                        "The requested tenant does not belong to your partner",
                    ));
                }
                if info.status != "ACTIVE" {
                    return Err(suspended(&info.id));
                }
                (info.id.clone(), info.partner_id.clone())
            }
            _ => {
                if let Some(own) = self.get(&p.tenant_id).await? {
                    if own.status != "ACTIVE" {
                        return Err(suspended(&own.id));
                    }
                }
                (p.tenant_id.clone(), p.partner_id.clone())
            }
        };
        if partner_scope {
            // The partner's shared secrets live in the tenant row whose id is the partner id.
            return Ok((partner.clone(), partner));
        }
        Ok((tenant, partner))
    }
}

pub fn tenant_not_found(id: &str) -> Error {
    let shown: String = id.chars().take(100).collect();
    Error::new(
        ErrorCode::TenantNotFound,
        format!("Tenant '{shown}' not found"),
    )
    .with_details(serde_json::json!({ "tenant_id": shown }))
}

pub fn suspended(id: &str) -> Error {
    Error::new(
        ErrorCode::AccessDenied,
        format!("Tenant '{id}' is suspended"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn tenant_prefix_is_taken_off_the_path_and_query_kept() {
        let r = rewrite(req("/v1/t/tnt_b/secrets/app/db?version=2"));
        assert_eq!(r.uri().path(), "/v1/secrets/app/db");
        assert_eq!(r.uri().query(), Some("version=2"));
        assert_eq!(r.extensions().get::<TenantPrefix>().unwrap().0, "tnt_b");
    }

    #[test]
    fn partner_secrets_map_onto_secrets_with_a_marker() {
        let r = rewrite(req("/v1/partner/secrets/shared/key"));
        assert_eq!(r.uri().path(), "/v1/secrets/shared/key");
        assert!(r.extensions().get::<PartnerScope>().is_some());
        let r = rewrite(req("/v1/t/tnt_b/partner/secrets?prefix=x"));
        assert_eq!(r.uri().path(), "/v1/secrets");
        assert_eq!(r.uri().query(), Some("prefix=x"));
        assert!(r.extensions().get::<PartnerScope>().is_some());
        assert!(r.extensions().get::<TenantPrefix>().is_some());
    }

    #[test]
    fn other_paths_are_untouched() {
        for p in [
            "/v1/secrets/a",
            "/v1/partner/secretsx",
            "/v1/t/",
            "/v1/tokens",
        ] {
            let r = rewrite(req(p));
            assert_eq!(r.uri().path(), p);
            assert!(r.extensions().get::<PartnerScope>().is_none());
        }
    }

    fn principal(roles: &[&str], tenant: &str, partner: &str) -> Principal {
        Principal {
            identity_id: "user:x@y".into(),
            identity_type: "user".into(),
            display_name: None,
            tenant_id: tenant.into(),
            partner_id: partner.into(),
            scopes: vec![],
            groups: vec![],
            roles: roles.iter().map(|s| s.to_string()).collect(),
            token_id: "tok".into(),
            token_expires_at: None,
            mfa_verified_at: None,
            token_issued_at: None,
        }
    }

    #[test]
    fn role_checks() {
        let pa = principal(&[PARTNER_ADMIN], "tnt_a", "ptn_a");
        assert!(is_partner_admin_of(&pa, "ptn_a"));
        assert!(!is_partner_admin_of(&pa, "ptn_b"));
        assert!(is_tenant_admin_of(&pa, "tnt_other", "ptn_a"));
        let ta = principal(&[TENANT_ADMIN], "tnt_a", "ptn_a");
        assert!(is_tenant_admin_of(&ta, "tnt_a", "ptn_a"));
        assert!(!is_tenant_admin_of(&ta, "tnt_a2", "ptn_a"));
        assert!(!is_partner_admin_of(&ta, "ptn_a"));
        let sa = principal(&[SUPER_ADMIN], "tnt_a", "ptn_a");
        assert!(is_tenant_admin_of(&sa, "tnt_z", "ptn_z"));
        let nobody = principal(&[], "tnt_a", "ptn_a");
        assert!(!is_tenant_admin_of(&nobody, "tnt_a", "ptn_a"));
    }
}
