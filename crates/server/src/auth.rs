//! Authentication: bearer token → [`Principal`]. Personal access tokens (`skt_…`) are stored only as
//! SHA-256 hashes (they carry ~238 bits of entropy, so a slow hash adds nothing); the hash is looked
//! up, compared in constant time, and the result cached briefly so the hot path skips the database.

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
}

fn err(code: ErrorCode, msg: &str) -> Error {
    Error::new(code, msg)
}

impl Authenticator {
    pub fn new(store: DynStore) -> Authenticator {
        Authenticator {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Drops cached principals, e.g. after a revocation on this node.
    pub fn invalidate_all(&self) {
        self.cache.write().clear();
    }

    #[tracing::instrument(skip_all)]
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
        if token.starts_with("skt_") {
            self.personal_access_token(token).await
        } else {
            Err(err(ErrorCode::TokenInvalid, "Token is not valid"))
        }
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
