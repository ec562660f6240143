use crate::auth::Authenticator;
use crate::authz::Authorizer;
use crate::config::Settings;
use crate::keys::KeyRing;
use crate::ratelimit::RateLimiter;
use scaivault_store::{Committer, DynStore};
use std::sync::Arc;
use std::time::Instant;

/// Everything a handler needs, shared by reference; no globals.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub store: DynStore,
    pub committer: Committer,
    pub keys: KeyRing,
    pub auth: Authenticator,
    pub authz: Authorizer,
    pub rate: RateLimiter,
    pub tenants: crate::tenancy::Tenants,
    pub started: Instant,
    /// This server's token issuer (client credentials, exchange) and the trusted external issuers.
    pub issuer: Arc<crate::jwt::Issuer>,
    pub external: Arc<crate::jwt::ExternalIssuers>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
