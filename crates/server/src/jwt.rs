//! JSON Web Tokens: the ones this server issues (client credentials, token exchange), signed with
//! Ed25519 keys kept in the database sealed by the root key and published as a JWKS, and the ones of
//! trusted external issuers (ScaiKey, Kubernetes, …) whose JWKS is fetched, cached and refetched on an
//! unknown `kid` at most once per [`REFETCH_INTERVAL`].
//!
//! Every key is pinned to one algorithm: a token whose header names another (`none`, `HS256` signed
//! with the public key bytes, …) is refused before any signature check.

use crate::keys::{KeyError, KeyRing};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::{Mutex, RwLock};
use scaivault_core::time_fmt::now_micros;
use scaivault_core::{id, Error, ErrorCode};
use scaivault_store::{DynStore, SigningKeyRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lifetime of the tokens this server issues.
pub const TOKEN_TTL_SECS: i64 = 3600;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// A retired signing key stays published (and accepted) this long after a newer key took over: every
/// token it signed has expired by then.
pub const RETIRED_KEY_PUBLISHED_SECS: i64 = TOKEN_TTL_SECS + 2 * LEEWAY_SECS as i64 + 600;
/// An external issuer's JWKS is refetched for an unknown `kid` at most this often.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Longest bearer token accepted (headers are bounded anyway; this bounds the work).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The audience of the tokens this server issues.
pub const OWN_AUDIENCE: &str = "scaivault";
const OWN_ALG: Algorithm = Algorithm::EdDSA;

fn invalid(msg: &str) -> Error {
    Error::new(ErrorCode::TokenInvalid, msg)
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> Error {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => Error::new(ErrorCode::TokenExpired, "Token has expired"),
        ErrorKind::ImmatureSignature => invalid("Token is not valid yet (nbf)"),
        ErrorKind::InvalidAudience => invalid("Token was issued for another audience"),
        ErrorKind::InvalidIssuer => invalid("Token has an untrusted issuer"),
        ErrorKind::InvalidSignature => invalid("Token signature does not verify"),
        ErrorKind::InvalidAlgorithm => invalid("Token algorithm does not match its key"),
        ErrorKind::MissingRequiredClaim(c) => invalid(&format!("Token lacks the '{c}' claim")),
        _ => invalid("Token is not valid"),
    }
}

/// The header and (unverified) issuer of a JWT, to pick the key that must verify it.
pub struct Peeked {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub iss: String,
}

/// Reads a JWT's header and issuer without trusting them. `alg: none` and unknown algorithms fail here.
pub fn peek(token: &str) -> Result<Peeked, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("Token is too long"));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("Token is not valid"))?;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("Token is not valid"))?;
    let bytes = B64
        .decode(payload)
        .map_err(|_| invalid("Token is not valid"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| invalid("Token is not valid"))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Token lacks the 'iss' claim"))?
        .to_owned();
    Ok(Peeked {
        kid: header.kid,
        alg: header.alg,
        iss,
    })
}

fn validation(alg: Algorithm, iss: &str, aud: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[iss]);
    v.set_audience(&[aud]);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// A verification key pinned to one algorithm.
#[derive(Clone)]
struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
}

fn verify_with(
    token: &str,
    peeked: &Peeked,
    key: &VerifyKey,
    iss: &str,
    aud: &str,
) -> Result<Map<String, Value>, Error> {
    if peeked.alg != key.alg {
        return Err(invalid("Token algorithm does not match its key"));
    }
    jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation(key.alg, iss, aud))
        .map(|d| d.claims)
        .map_err(|e| map_jwt_error(&e))
}

// ---- this server's issuer -----------------------------------------------------------------------

/// Claims of the tokens this server issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OwnClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub tenant: String,
    pub partner: String,
    pub identity_type: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Default)]
struct OwnKeys {
    /// kid and signing key of the current key.
    current: Option<(String, Arc<EncodingKey>)>,
    verify: HashMap<String, VerifyKey>,
    jwks: Vec<Value>,
    /// Unsealed private keys by kid (unsealing goes to the root key provider).
    unsealed: HashMap<String, Arc<EncodingKey>>,
}

pub struct Issuer {
    pub issuer: String,
    store: DynStore,
    ring: KeyRing,
    keys: RwLock<OwnKeys>,
    loaded: Mutex<Option<Instant>>,
    reload_lock: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] scaivault_store::StoreError),
    #[error("signing key: {0}")]
    Crypto(String),
}

fn signing_label(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl Issuer {
    pub fn new(issuer: String, store: DynStore, ring: KeyRing) -> Issuer {
        Issuer {
            issuer,
            store,
            ring,
            keys: RwLock::new(OwnKeys::default()),
            loaded: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the keys, creating the first one on a new database.
    pub async fn start(&self) -> Result<(), IssuerError> {
        self.reload().await?;
        if self.keys.read().current.is_none() {
            self.rotate().await?;
        }
        Ok(())
    }

    /// Makes a new current key; older keys stay published until their tokens have expired.
    pub async fn rotate(&self) -> Result<String, IssuerError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| IssuerError::Crypto("cannot generate an Ed25519 key".into()))?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| IssuerError::Crypto("generated key does not parse".into()))?;
        use ring::signature::KeyPair;
        let kid = id::random("sk_", 16);
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(pair.public_key().as_ref()),
            "kid": kid,
            "alg": "EdDSA",
            "use": "sig",
        });
        let sealed = self
            .ring
            .seal_with_root(pkcs8.as_ref(), &signing_label(&kid))
            .await?;
        self.store
            .rotate_signing_key(&SigningKeyRow {
                kid: kid.clone(),
                alg: "EdDSA".into(),
                public_jwk: jwk.to_string(),
                sealed_private: sealed,
                created_at: now_micros(),
                retired_at: None,
            })
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Rereads the keys from the database (another node may have rotated).
    pub async fn reload(&self) -> Result<(), IssuerError> {
        let _guard = self.reload_lock.lock().await;
        let rows = self.store.signing_keys().await?;
        let now = now_micros();
        let mut verify = HashMap::new();
        let mut jwks = Vec::new();
        let mut current = None;
        let mut unsealed = self.keys.read().unsealed.clone();
        for row in &rows {
            let published = row
                .retired_at
                .is_none_or(|r| r + RETIRED_KEY_PUBLISHED_SECS * 1_000_000 > now);
            if !published || row.alg != "EdDSA" {
                continue;
            }
            let jwk: Value = serde_json::from_str(&row.public_jwk)
                .map_err(|_| IssuerError::Crypto(format!("key {} has a bad JWK", row.kid)))?;
            let x = jwk.get("x").and_then(Value::as_str).unwrap_or_default();
            let key = DecodingKey::from_ed_components(x).map_err(|_| {
                IssuerError::Crypto(format!("key {} has a bad public key", row.kid))
            })?;
            verify.insert(row.kid.clone(), VerifyKey { alg: OWN_ALG, key });
            jwks.push(jwk);
            if row.retired_at.is_none() && current.is_none() {
                let enc = match unsealed.get(&row.kid) {
                    Some(k) => k.clone(),
                    None => {
                        let der = self
                            .ring
                            .open_with_root(&row.sealed_private, &signing_label(&row.kid))
                            .await?;
                        let k = Arc::new(EncodingKey::from_ed_der(&der));
                        unsealed.insert(row.kid.clone(), k.clone());
                        k
                    }
                };
                current = Some((row.kid.clone(), enc));
            }
        }
        unsealed.retain(|k, _| verify.contains_key(k));
        *self.keys.write() = OwnKeys {
            current,
            verify,
            jwks,
            unsealed,
        };
        *self.loaded.lock() = Some(Instant::now());
        Ok(())
    }

    fn loaded_within(&self, d: Duration) -> bool {
        self.loaded.lock().is_some_and(|t| t.elapsed() < d)
    }

    /// The public keys, as a JWKS document.
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": self.keys.read().jwks.clone() })
    }

    /// Signs a token for `claims` (its `iss`, `aud`, times and `jti` are filled in here).
    pub async fn issue(&self, mut claims: OwnClaims) -> Result<(String, OwnClaims), Error> {
        if !self.loaded_within(Duration::from_secs(30)) {
            if let Err(e) = self.reload().await {
                tracing::warn!(site = "JW0001", error = %e, "reloading signing keys failed; using the cached ones");
            }
        }
        let Some((kid, key)) = self.keys.read().current.clone() else {
            return Err(Error::unavailable("Token signing"));
        };
        let now = now_micros() / 1_000_000;
        claims.iss = self.issuer.clone();
        claims.aud = OWN_AUDIENCE.to_owned();
        claims.iat = now;
        claims.nbf = now;
        claims.exp = now + TOKEN_TTL_SECS;
        claims.jti = id::random("jti_", 20);
        let mut header = Header::new(OWN_ALG);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(&header, &claims, &key).map_err(|e| {
            tracing::error!(site = "JW0002", error = %e, "signing a token failed");
            Error::internal()
        })?;
        Ok((token, claims))
    }

    /// Verifies a token of this issuer. An unknown `kid` triggers one reload from the database (at
    /// most once a second), for keys another node created.
    pub async fn verify(&self, token: &str, peeked: &Peeked) -> Result<OwnClaims, Error> {
        let kid = peeked
            .kid
            .as_deref()
            .ok_or_else(|| invalid("Token has no key id"))?;
        let mut key = self.keys.read().verify.get(kid).cloned();
        if key.is_none() && !self.loaded_within(Duration::from_secs(1)) {
            if let Err(e) = self.reload().await {
                tracing::warn!(site = "JW0003", error = %e, "reloading signing keys failed");
            }
            key = self.keys.read().verify.get(kid).cloned();
        }
        let key = key.ok_or_else(|| invalid("Token was signed by an unknown key"))?;
        let claims = verify_with(token, peeked, &key, &self.issuer, OWN_AUDIENCE)?;
        serde_json::from_value(Value::Object(claims))
            .map_err(|_| invalid("Token claims are malformed"))
    }
}

// ---- external issuers -----------------------------------------------------------------------------

fn default_identity_claim() -> String {
    "sub".into()
}
fn default_tenant_claim() -> String {
    "tenant_id".into()
}
fn default_scopes_claim() -> String {
    "scope".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_mfa_claim() -> String {
    "mfa_verified_at".into()
}
fn default_type_claim() -> String {
    "identity_type".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn yes() -> bool {
    true
}

/// Which claims carry what (all optional in the token except the identity).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMap {
    #[serde(default = "default_identity_claim")]
    pub identity: String,
    #[serde(default = "default_type_claim")]
    pub identity_type: String,
    #[serde(default = "default_name_claim")]
    pub display_name: String,
    #[serde(default = "default_tenant_claim")]
    pub tenant: String,
    /// A space-separated string or an array.
    #[serde(default = "default_scopes_claim")]
    pub scopes: String,
    #[serde(default = "default_groups_claim")]
    pub groups: String,
    /// Unix seconds or RFC 3339.
    #[serde(default = "default_mfa_claim")]
    pub mfa_time: String,
}

impl Default for ClaimMap {
    fn default() -> Self {
        ClaimMap {
            identity: default_identity_claim(),
            identity_type: default_type_claim(),
            display_name: default_name_claim(),
            tenant: default_tenant_claim(),
            scopes: default_scopes_claim(),
            groups: default_groups_claim(),
            mfa_time: default_mfa_claim(),
        }
    }
}

/// One `POST /v1/auth/exchange` mapping: a foreign token whose claims equal every `match` entry
/// (for an array claim: contains it) is exchanged for a token of service account `identity`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRule {
    #[serde(rename = "match")]
    pub match_claims: Map<String, Value>,
    pub identity: String,
    pub tenant: String,
    /// Narrows the service account's scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A trusted external issuer (`SCAIKEY_URL`, or an entry of `SCAIVAULT_EXTERNAL_ISSUERS`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuerConfig {
    pub issuer: String,
    pub jwks_url: String,
    pub audience: String,
    #[serde(default)]
    pub claims: ClaimMap,
    /// The tenant of tokens that carry no tenant claim.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Accept this issuer's tokens as bearer tokens on every endpoint (else only for exchange).
    #[serde(default = "yes")]
    pub accept_bearer: bool,
    #[serde(default)]
    pub exchange: Vec<ExchangeRule>,
}

impl ExternalIssuerConfig {
    /// Parses `SCAIVAULT_EXTERNAL_ISSUERS` (a JSON array) plus `SCAIKEY_URL` / `SCAIKEY_JWKS_URL` /
    /// `SCAIKEY_AUDIENCE`.
    pub fn from_env_values(
        issuers_json: Option<&str>,
        scaikey_url: Option<&str>,
        scaikey_jwks_url: Option<&str>,
        scaikey_audience: Option<&str>,
    ) -> Result<Vec<ExternalIssuerConfig>, String> {
        let mut out: Vec<ExternalIssuerConfig> = match issuers_json.map(str::trim) {
            Some(s) if !s.is_empty() => serde_json::from_str(s).map_err(|e| {
                format!("SCAIVAULT_EXTERNAL_ISSUERS is not a valid issuer list: {e}")
            })?,
            _ => vec![],
        };
        if let Some(url) = scaikey_url.map(str::trim).filter(|s| !s.is_empty()) {
            let url = url.trim_end_matches('/').to_owned();
            let jwks_url = scaikey_jwks_url
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("{url}/.well-known/jwks.json"), str::to_owned);
            out.push(ExternalIssuerConfig {
                issuer: url,
                jwks_url,
                audience: scaikey_audience
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(OWN_AUDIENCE)
                    .to_owned(),
                claims: ClaimMap::default(),
                tenant: None,
                accept_bearer: true,
                exchange: vec![],
            });
        }
        for c in &out {
            if !(c.jwks_url.starts_with("https://") || c.jwks_url.starts_with("http://")) {
                return Err(format!(
                    "issuer {}: jwks_url must be an http(s) URL",
                    c.issuer
                ));
            }
            if c.issuer.is_empty() || c.audience.is_empty() {
                return Err("an external issuer needs a non-empty issuer and audience".into());
            }
        }
        Ok(out)
    }
}

pub struct RemoteIssuer {
    pub config: ExternalIssuerConfig,
    keys: RwLock<HashMap<String, VerifyKey>>,
    last_fetch: Mutex<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
    /// How many times the JWKS was fetched (for logs and tests).
    pub fetches: AtomicU64,
}

/// The algorithm a JWK is pinned to: its `alg`, else the only one its key type allows. Symmetric keys
/// are never accepted from a JWKS.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => return None,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => Algorithm::EdDSA,
            _ => return None,
        },
    };
    match &jwk.common.key_algorithm {
        None => Some(by_type),
        Some(a) => {
            let alg = Algorithm::from_str(&format!("{a:?}")).ok()?;
            let family_ok = matches!(
                (&jwk.algorithm, alg),
                (
                    AlgorithmParameters::RSA(_),
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ) | (
                    AlgorithmParameters::EllipticCurve(_),
                    Algorithm::ES256 | Algorithm::ES384
                ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
            );
            family_ok.then_some(alg)
        }
    }
}

impl RemoteIssuer {
    pub fn new(config: ExternalIssuerConfig) -> RemoteIssuer {
        RemoteIssuer {
            config,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        *self.last_fetch.lock() = Some(Instant::now());
        let resp = http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| format!("fetching {}: {e}", self.config.jwks_url))?;
        if !resp.status().is_success() {
            return Err(format!(
                "fetching {}: HTTP {}",
                self.config.jwks_url,
                resp.status()
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > 1024 * 1024 {
            return Err("JWKS larger than 1 MiB".into());
        }
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| format!("bad JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk_algorithm(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, VerifyKey { alg, key });
            }
        }
        tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "fetched JWKS");
        *self.keys.write() = keys;
        Ok(())
    }

    async fn key(&self, http: &reqwest::Client, kid: &str) -> Result<VerifyKey, Error> {
        if let Some(k) = self.keys.read().get(kid) {
            return Ok(k.clone());
        }
        let _guard = self.fetch_lock.lock().await;
        if let Some(k) = self.keys.read().get(kid) {
            return Ok(k.clone());
        }
        let recent = self
            .last_fetch
            .lock()
            .is_some_and(|t| t.elapsed() < REFETCH_INTERVAL);
        if !recent {
            if let Err(e) = self.fetch(http).await {
                tracing::warn!(site = "JW0004", issuer = %self.config.issuer, error = %e, "JWKS fetch failed");
                return Err(Error::unavailable("The token issuer's key set"));
            }
        }
        self.keys
            .read()
            .get(kid)
            .cloned()
            .ok_or_else(|| invalid("Token was signed by an unknown key"))
    }

    /// Verifies signature, algorithm, issuer, audience and times; returns the claims.
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        token: &str,
        peeked: &Peeked,
    ) -> Result<Map<String, Value>, Error> {
        let kid = peeked
            .kid
            .as_deref()
            .ok_or_else(|| invalid("Token has no key id"))?;
        let key = self.key(http, kid).await?;
        verify_with(
            token,
            peeked,
            &key,
            &self.config.issuer,
            &self.config.audience,
        )
    }
}

/// All trusted external issuers, by `iss`.
pub struct ExternalIssuers {
    pub issuers: HashMap<String, Arc<RemoteIssuer>>,
    pub http: reqwest::Client,
}

impl ExternalIssuers {
    pub fn new(configs: Vec<ExternalIssuerConfig>) -> ExternalIssuers {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        ExternalIssuers {
            issuers: configs
                .into_iter()
                .map(|c| (c.issuer.clone(), Arc::new(RemoteIssuer::new(c))))
                .collect(),
            http,
        }
    }

    pub fn get(&self, iss: &str) -> Option<&Arc<RemoteIssuer>> {
        self.issuers.get(iss)
    }
}

/// A claim as a list of strings: an array of strings, or a space-separated string.
pub fn claim_list(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec![],
    }
}

/// A time claim (Unix seconds or RFC 3339) in microseconds.
pub fn claim_time(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_i64().map(|s| s.saturating_mul(1_000_000)),
        Value::String(s) => scaivault_core::time_fmt::parse(s),
        _ => None,
    }
}

/// Does `rule` match these claims? Every `match` entry must equal the claim (or be contained in it,
/// for an array claim).
pub fn rule_matches(rule: &ExchangeRule, claims: &Map<String, Value>) -> bool {
    !rule.match_claims.is_empty()
        && rule
            .match_claims
            .iter()
            .all(|(k, want)| match claims.get(k) {
                Some(Value::Array(items)) if !want.is_array() => items.contains(want),
                Some(v) => v == want,
                None => false,
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peek_refuses_alg_none_and_garbage() {
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(br#"{"iss":"x","sub":"a"}"#)
        );
        assert!(peek(&none).is_err());
        assert!(peek("eyJ.eyJ.x").is_err());
        assert!(peek("").is_err());
        let ok = format!(
            "{}.{}.sig",
            B64.encode(br#"{"alg":"EdDSA","kid":"k1"}"#),
            B64.encode(br#"{"iss":"https://i","sub":"a"}"#)
        );
        let p = peek(&ok).unwrap();
        assert_eq!(
            (p.kid.as_deref(), p.alg, p.iss.as_str()),
            (Some("k1"), Algorithm::EdDSA, "https://i")
        );
    }

    #[test]
    fn jwk_algorithms_are_pinned_and_symmetric_keys_refused() {
        let okp: Jwk = serde_json::from_value(json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"})).unwrap();
        assert_eq!(jwk_algorithm(&okp), Some(Algorithm::EdDSA));
        let oct: Jwk =
            serde_json::from_value(json!({"kty":"oct","k":"c2VjcmV0","kid":"b","alg":"HS256"}))
                .unwrap();
        assert_eq!(jwk_algorithm(&oct), None);
        let wrong: Jwk = serde_json::from_value(json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"c","alg":"HS256"})).unwrap();
        assert_eq!(jwk_algorithm(&wrong), None);
    }

    #[test]
    fn exchange_rules_match_all_entries() {
        let rule: ExchangeRule = serde_json::from_value(json!({
            "match": {"sub": "system:serviceaccount:billing:api", "aud": "scaivault"},
            "identity": "sa:billing", "tenant": "tnt_a"
        }))
        .unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(rule_matches(
            &rule,
            &claims(json!({"sub": "system:serviceaccount:billing:api", "aud": ["x", "scaivault"]}))
        ));
        assert!(!rule_matches(
            &rule,
            &claims(json!({"sub": "system:serviceaccount:billing:api"}))
        ));
        assert!(!rule_matches(
            &rule,
            &claims(json!({"sub": "other", "aud": "scaivault"}))
        ));
    }

    #[test]
    fn issuer_config_from_env() {
        let v = ExternalIssuerConfig::from_env_values(
            None,
            Some("https://scaikey.example/"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(v[0].issuer, "https://scaikey.example");
        assert_eq!(
            v[0].jwks_url,
            "https://scaikey.example/.well-known/jwks.json"
        );
        assert!(ExternalIssuerConfig::from_env_values(Some("{"), None, None, None).is_err());
        assert!(ExternalIssuerConfig::from_env_values(
            Some(r#"[{"issuer":"a","jwks_url":"file:///x","audience":"b"}]"#),
            None,
            None,
            None
        )
        .is_err());
        assert!(ExternalIssuerConfig::from_env_values(
            Some(r#"[{"issuer":"a","jwks_url":"http://x","audience":"b","bogus":1}]"#),
            None,
            None,
            None
        )
        .is_err());
        let v = ExternalIssuerConfig::from_env_values(Some(r#"[{"issuer":"a","jwks_url":"http://x","audience":"b","claims":{"tenant":"tid"}}]"#), None, None, None).unwrap();
        assert_eq!(v[0].claims.tenant, "tid");
        assert_eq!(v[0].claims.identity, "sub");
    }

    #[test]
    fn claim_helpers() {
        let c = json!({"scope": "a b", "arr": ["x", 1, "y"], "t": 10, "r": "2026-01-01T00:00:00Z"});
        let c = c.as_object().unwrap();
        assert_eq!(claim_list(c, "scope"), vec!["a", "b"]);
        assert_eq!(claim_list(c, "arr"), vec!["x", "y"]);
        assert_eq!(claim_time(c, "t"), Some(10_000_000));
        assert!(claim_time(c, "r").is_some());
        assert_eq!(claim_time(c, "missing"), None);
    }
}
