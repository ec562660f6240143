//! Authentication: bearer token → [`Principal`]. Personal access tokens (`skt_…`) are stored only as
//! SHA-256 hashes (they carry ~238 bits of entropy, so a slow hash adds nothing); the hash is looked
//! up, compared in constant time, and the result cached briefly so the hot path skips the database.

use crate::jwt::{self, ExternalIssuers, Issuer};
use crate::state::AppState;
use axum::http::HeaderMap;
use parking_lot::RwLock;
use scaivault_core::time_fmt::now_micros;
use scaivault_core::{Error, ErrorCode};
use scaivault_store::DynStore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Who is calling, resolved from the token. Never holds the token itself.
#[derive(Debug, Clone)]
pub struct Principal {
    pub identity_id: String,
    pub identity_type: String,
    pub display_name: Option<String>,
    pub tenant_id: String,
    pub partner_id: String,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub token_id: String,
    pub token_expires_at: Option<i64>,
    pub mfa_verified_at: Option<i64>,
    /// When the token was issued (introspection's `issued_at`).
    pub token_issued_at: Option<i64>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        scaivault_core::scope::allows(&self.scopes, scope)
    }

    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::insufficient_scope(scope))
        }
    }
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 100_000;

struct Cached {
    principal: Arc<Principal>,
    fetched: Instant,
}

pub struct Authenticator {
    store: DynStore,
    cache: RwLock<HashMap<[u8; 32], Cached>>,
    /// This server's token issuer and the trusted external issuers (JWT bearer tokens).
    issuers: Option<(Arc<Issuer>, Arc<ExternalIssuers>)>,
    /// Identities behind our own JWTs and tenants of external JWTs, checked at most every [`CACHE_TTL`].
    identities: RwLock<HashMap<(String, String), CachedIdentity>>,
    tenants: RwLock<HashMap<String, (Option<String>, Instant)>>,
}

/// An identity lookup (absent identities too) and when it was made.
type CachedIdentity = (Option<Arc<IdentityInfo>>, Instant);

/// What a JWT's principal takes from the identity store.
pub struct IdentityInfo {
    pub identity_type: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
}

fn err(code: ErrorCode, msg: &str) -> Error {
    Error::new(code, msg)
}

impl Authenticator {
    pub fn new(store: DynStore) -> Authenticator {
        Authenticator {
            store,
            cache: RwLock::new(HashMap::new()),
            issuers: None,
            identities: RwLock::new(HashMap::new()),
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// Accepts JWTs: this server's own and those of trusted external issuers.
    pub fn with_issuers(
        mut self,
        own: Arc<Issuer>,
        external: Arc<ExternalIssuers>,
    ) -> Authenticator {
        self.issuers = Some((own, external));
        self
    }

    /// Drops cached principals, e.g. after a revocation on this node.
    pub fn invalidate_all(&self) {
        self.cache.write().clear();
        self.identities.write().clear();
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, Error> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(err(
                ErrorCode::AuthenticationRequired,
                "Missing Authorization header; send 'Authorization: Bearer <token>'",
            ));
        };
        let value = value.to_str().map_err(|_| {
            err(
                ErrorCode::AuthenticationRequired,
                "Malformed Authorization header",
            )
        })?;
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => {
                return Err(err(
                    ErrorCode::AuthenticationRequired,
                    "Authorization header must be 'Bearer <token>'",
                ))
            }
        };
        self.authenticate_token(token).await
    }

    /// Validates a bearer token (PAT or JWT) and resolves its principal.
    pub async fn authenticate_token(&self, token: &str) -> Result<Arc<Principal>, Error> {
        if token.starts_with("skt_") {
            self.personal_access_token(token).await
        } else {
            self.jwt(token).await
        }
    }

    async fn jwt(&self, token: &str) -> Result<Arc<Principal>, Error> {
        let Some((own, external)) = &self.issuers else {
            return Err(err(ErrorCode::TokenInvalid, "Token is not valid"));
        };
        let peeked = jwt::peek(token)?;
        if peeked.iss == own.issuer {
            let c = own.verify(token, &peeked).await?;
            let info = self
                .identity_info(&c.tenant, &c.sub)
                .await?
                .ok_or_else(|| err(ErrorCode::TokenInvalid, "Token's identity no longer exists"))?;
            if info.disabled {
                return Err(err(ErrorCode::TokenRevoked, "Token's identity is disabled"));
            }
            return Ok(Arc::new(Principal {
                identity_id: c.sub,
                identity_type: info.identity_type.clone(),
                display_name: info.display_name.clone(),
                tenant_id: c.tenant,
                partner_id: c.partner,
                scopes: c.scopes,
                groups: c.groups,
                roles: info.roles.clone(),
                token_id: c.jti,
                token_expires_at: Some(c.exp.saturating_mul(1_000_000)),
                mfa_verified_at: None,
                token_issued_at: Some(c.iat.saturating_mul(1_000_000)),
            }));
        }
        let Some(remote) = external.get(&peeked.iss).filter(|r| r.config.accept_bearer) else {
            return Err(err(
                ErrorCode::TokenInvalid,
                "Token has an untrusted issuer",
            ));
        };
        let claims = remote.verify(&external.http, token, &peeked).await?;
        self.external_principal(&remote.config, &claims).await
    }

    /// The principal of a verified external token, by the issuer's claim mapping.
    pub async fn external_principal(
        &self,
        cfg: &jwt::ExternalIssuerConfig,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<Principal>, Error> {
        let m = &cfg.claims;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let identity_id = text(&m.identity)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| err(ErrorCode::TokenInvalid, "Token lacks its identity claim"))?;
        // An issuer configured for one tenant cannot name another.
        let tenant_id = match (text(&m.tenant), &cfg.tenant) {
            (Some(t), Some(fixed)) if &t != fixed => {
                return Err(err(
                    ErrorCode::TokenInvalid,
                    "Token names a tenant its issuer may not issue for",
                ))
            }
            (Some(t), _) => t,
            (None, Some(fixed)) => fixed.clone(),
            (None, None) => return Err(err(ErrorCode::TokenInvalid, "Token names no tenant")),
        };
        let partner_id = self.tenant_partner(&tenant_id).await?.ok_or_else(|| {
            err(
                ErrorCode::TokenInvalid,
                "Token's tenant does not exist here",
            )
        })?;
        let identity_type = text(&m.identity_type).unwrap_or_else(|| {
            if identity_id.starts_with("sa:") {
                "service_account".into()
            } else {
                "user".into()
            }
        });
        let scopes = jwt::claim_list(claims, &m.scopes)
            .into_iter()
            .filter(|s| scaivault_core::scope::is_known(s))
            .collect();
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64);
        let iat = claims.get("iat").and_then(serde_json::Value::as_i64);
        Ok(Arc::new(Principal {
            identity_id,
            identity_type,
            display_name: text(&m.display_name),
            tenant_id,
            partner_id,
            scopes,
            groups: jwt::claim_list(claims, &m.groups),
            roles: vec![],
            token_id: text("jti").unwrap_or_default(),
            token_expires_at: exp.map(|e| e.saturating_mul(1_000_000)),
            mfa_verified_at: jwt::claim_time(claims, &m.mfa_time),
            token_issued_at: iat.map(|e| e.saturating_mul(1_000_000)),
        }))
    }

    /// The identity behind one of our JWTs, from a short-lived cache.
    pub async fn identity_info(
        &self,
        tenant_id: &str,
        identity_id: &str,
    ) -> Result<Option<Arc<IdentityInfo>>, Error> {
        let key = (tenant_id.to_owned(), identity_id.to_owned());
        if let Some((info, at)) = self.identities.read().get(&key) {
            if at.elapsed() < CACHE_TTL {
                return Ok(info.clone());
            }
        }
        let row = self
            .store
            .get_identity(tenant_id, identity_id)
            .await
            .map_err(|_| Error::unavailable("Identity lookup"))?;
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        let info = row.map(|r| {
            Arc::new(IdentityInfo {
                identity_type: r.identity_type,
                display_name: r.display_name,
                roles: list(&r.roles),
                disabled: r.disabled_at.is_some(),
            })
        });
        let mut cache = self.identities.write();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (info.clone(), Instant::now()));
        Ok(info)
    }

    async fn tenant_partner(&self, tenant_id: &str) -> Result<Option<String>, Error> {
        if let Some((p, at)) = self.tenants.read().get(tenant_id) {
            if at.elapsed() < CACHE_TTL {
                return Ok(p.clone());
            }
        }
        let partner = self
            .store
            .get_tenant(tenant_id)
            .await
            .map_err(|_| Error::unavailable("Tenant lookup"))?
            .map(|t| t.partner_id);
        let mut cache = self.tenants.write();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(tenant_id.to_owned(), (partner.clone(), Instant::now()));
        Ok(partner)
    }

    async fn personal_access_token(&self, token: &str) -> Result<Arc<Principal>, Error> {
        let hash = hash_token(token);
        let now = now_micros();
        if let Some(c) = self.cache.read().get(&hash) {
            if c.fetched.elapsed() < CACHE_TTL {
                if c.principal.token_expires_at.is_some_and(|e| e <= now) {
                    return Err(err(ErrorCode::TokenExpired, "Token has expired"));
                }
                return Ok(c.principal.clone());
            }
        }
        let row = self
            .store
            .token_by_hash(&hash)
            .await
            .map_err(|e| {
                tracing::error!(site = "AU0001", error = %e, "token lookup failed");
                Error::unavailable("Token validation")
            })?
            .ok_or_else(|| err(ErrorCode::TokenInvalid, "Token is not valid"))?;
        if !bool::from(row.token_hash.as_slice().ct_eq(&hash)) {
            return Err(err(ErrorCode::TokenInvalid, "Token is not valid"));
        }
        if row.revoked_at.is_some() {
            return Err(err(ErrorCode::TokenRevoked, "Token has been revoked"));
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(err(ErrorCode::TokenExpired, "Token has expired"));
        }
        let identity = self
            .store
            .get_identity(&row.tenant_id, &row.identity_id)
            .await
            .map_err(|_| Error::unavailable("Identity lookup"))?
            .ok_or_else(|| err(ErrorCode::TokenInvalid, "Token's identity no longer exists"))?;
        if identity.disabled_at.is_some() {
            return Err(err(ErrorCode::TokenRevoked, "Token's identity is disabled"));
        }
        let tenant = self
            .store
            .get_tenant(&row.tenant_id)
            .await
            .map_err(|_| Error::unavailable("Tenant lookup"))?
            .ok_or_else(|| err(ErrorCode::TokenInvalid, "Token's tenant no longer exists"))?;
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        // A token never carries more than its identity holds now: narrowing an identity's scopes
        // narrows its existing tokens too.
        let held = list(&identity.scopes);
        let scopes = list(&row.scopes)
            .into_iter()
            .filter(|s| scaivault_core::scope::allows(&held, s))
            .collect();
        let mut groups = list(&identity.groups);
        let member_of = self
            .store
            .member_groups(&tenant.id, &identity.id)
            .await
            .map_err(|_| Error::unavailable("Identity lookup"))?;
        for g in member_of {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let principal = Arc::new(Principal {
            identity_id: identity.id,
            identity_type: identity.identity_type,
            display_name: identity.display_name,
            tenant_id: tenant.id,
            partner_id: tenant.partner_id,
            scopes,
            groups,
            roles: list(&identity.roles),
            token_id: row.id,
            token_expires_at: row.expires_at,
            mfa_verified_at: None,
            token_issued_at: Some(row.created_at),
        });
        let mut cache = self.cache.write();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            hash,
            Cached {
                principal: principal.clone(),
                fetched: Instant::now(),
            },
        );
        Ok(principal)
    }
}

/// Convenience for handlers that only have the state.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<Principal>, Error> {
    state.auth.authenticate(headers).await
}
