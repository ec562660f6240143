//! Per-request cost of token validation (run in release mode):
//!
//!     cargo test --release -p scaivault-server --test auth_cost -- --ignored --nocapture
//!
//! A PAT on the cache hit path (SHA-256 + map lookup) and one of our EdDSA JWTs (header/payload
//! decode + Ed25519 verify + cached identity check).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{HeaderMap, HeaderValue};
use scaivault_crypto::{LocalKeyFile, RootKeyProvider};
use scaivault_server::auth::Authenticator;
use scaivault_server::jwt::{ExternalIssuers, Issuer, OwnClaims};
use scaivault_server::keys::KeyRing;
use std::sync::Arc;
use std::time::Instant;

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "timing measurement; run explicitly in release mode"]
async fn token_validation_cost() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = scaivault_store::connect(&url).await.unwrap();
    let root: Arc<dyn RootKeyProvider> =
        Arc::new(LocalKeyFile::open(&dir.path().join("root.key"), true).unwrap());
    let keys = KeyRing::new(root.clone(), store.clone());
    let pat = "skt_benchmarkbenchmarkbenchmark0123456789";
    scaivault_server::bootstrap::bootstrap(&store, &keys, Some(pat), None)
        .await
        .unwrap();
    let issuer = Arc::new(Issuer::new(
        "https://vault.example".into(),
        store.clone(),
        KeyRing::new(root, store.clone()),
    ));
    issuer.start().await.unwrap();
    let auth = Authenticator::new(store.clone())
        .with_issuers(issuer.clone(), Arc::new(ExternalIssuers::new(vec![])));

    let admin = auth.authenticate(&bearer(pat)).await.unwrap();
    let (jwt, _) = issuer
        .issue(OwnClaims {
            iss: String::new(),
            sub: admin.identity_id.clone(),
            aud: String::new(),
            exp: 0,
            iat: 0,
            nbf: 0,
            jti: String::new(),
            tenant: admin.tenant_id.clone(),
            partner: admin.partner_id.clone(),
            identity_type: admin.identity_type.clone(),
            scopes: vec!["secrets:read".into()],
            groups: vec![],
        })
        .await
        .unwrap();

    for (name, headers) in [
        ("PAT (cache hit)", bearer(pat)),
        ("JWT (EdDSA verify)", bearer(&jwt)),
    ] {
        // Warm the caches, then time.
        for _ in 0..1000 {
            auth.authenticate(&headers).await.unwrap();
        }
        let n = 100_000u32;
        let t = Instant::now();
        for _ in 0..n {
            let p = auth.authenticate(&headers).await.unwrap();
            std::hint::black_box(p);
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("{name}: {per:.2} µs per validation ({n} iterations)");
    }
}
