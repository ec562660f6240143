//! Service accounts, the client-credentials token endpoint, our own JWTs (JWKS, key rotation,
//! introspection), external issuers (a JWKS served by this test) and token exchange.

use crate::harness::{anon_client, eventually, spawn, Backend, Resp, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(
    service_account_lifecycle,
    own_jwts_jwks_rotation_introspection
);

async fn whoami(s: &TestServer, token: &str) -> Resp {
    s.as_token(token, reqwest::Method::GET, "/v1/auth/whoami", None)
        .await
}

async fn token_form(s: &TestServer, form: &[(&str, &str)]) -> Resp {
    Resp::from(
        anon_client()
            .post(s.url("/v1/auth/token"))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn client_credentials(s: &TestServer, id: &str, secret: &str) -> Resp {
    token_form(
        s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await
}

async fn create_sa(s: &TestServer, name: &str, scopes: Value) -> (String, String) {
    let r = s
        .post(
            "/v1/identity/service-accounts",
            &json!({"name": name, "description": "test", "scopes": scopes, "groups": ["group:ci"]}),
        )
        .await;
    r.expect(201);
    (
        r.body["client_id"].as_str().unwrap().to_owned(),
        r.body["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = B64.decode(it.next().unwrap()).unwrap();
    let p = B64.decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&p).unwrap(),
    )
}

/// Non-admin identities need a policy: read and list on `app/**` for `identity`.
async fn grant_app_read(s: &TestServer, identity: &str, identity_type: &str) {
    let r = s
        .post(
            "/v1/policies",
            &json!({"name": format!("app-read-{}", identity.replace([':', '@', '.'], "-")),
                    "rules": [{"path_pattern": "app/**", "permissions": ["read", "list"]}]}),
        )
        .await;
    r.expect(201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    s.post(
        &format!("/v1/policies/{id}/bindings"),
        &json!({"identity_type": identity_type, "identity_id": identity}),
    )
    .await
    .expect(201);
}

async fn service_account_lifecycle(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("app/one", json!({"k": "v"})).await;
    grant_app_read(&s, "sa:reporting", "service_account").await;
    grant_app_read(&s, "user:alice@example.test", "user").await;
    grant_app_read(&s, "sa:billing", "service_account").await;
    let r = s
        .post(
            "/v1/identity/service-accounts",
            &json!({"name": "reporting", "description": "nightly reports", "scopes": ["secrets:read", "secrets:list"], "groups": ["group:ci"]}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["id"], "sa:reporting");
    assert_eq!(r.body["identity_type"], "service_account");
    assert_eq!(r.body["scopes"], json!(["secrets:read", "secrets:list"]));
    let client_id = r.body["client_id"].as_str().unwrap().to_owned();
    let secret = r.body["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 40, "{r}");

    // Secrets are shown once: never in reads or listings.
    let got = s.get("/v1/identity/service-accounts/sa:reporting").await;
    got.expect(200);
    assert!(got.body.get("client_secret").is_none() && !got.text.contains(&secret));
    assert_eq!(got.body["client_id"], client_id.as_str());
    let listed = s.get("/v1/identity/service-accounts").await;
    listed.expect(200);
    assert_eq!(listed.body["service_accounts"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(&secret));
    s.get("/v1/identity/service-accounts/nobody")
        .await
        .expect_error(404, "not_found");

    // Duplicates, bad names, unknown or wider scopes are refused.
    s.post(
        "/v1/identity/service-accounts",
        &json!({"name": "reporting"}),
    )
    .await
    .expect_error(409, "already_exists");
    s.post(
        "/v1/identity/service-accounts",
        &json!({"name": "Bad Name"}),
    )
    .await
    .expect_error(422, "validation_error");
    s.post(
        "/v1/identity/service-accounts",
        &json!({"name": "x", "scopes": ["secrets:*"]}),
    )
    .await
    .expect_error(422, "validation_error");

    // Client credentials, form-encoded: an EdDSA JWT for 1 h with the account's scopes.
    let r = client_credentials(&s, &client_id, &secret).await;
    r.expect(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "secrets:read secrets:list");
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let jwt = r.body["access_token"].as_str().unwrap().to_owned();
    assert!(jwt.starts_with("eyJ"));
    let (header, claims) = jwt_parts(&jwt);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    assert_eq!(claims["sub"], "sa:reporting");
    assert_eq!(claims["iss"], s.base_url.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    for c in ["aud", "nbf", "jti", "tenant", "scopes"] {
        assert!(!claims[c].is_null(), "claim {c} missing: {claims}");
    }

    // The JWT works within its scopes only; whoami keeps the documented shape.
    s.as_token(&jwt, reqwest::Method::GET, "/v1/secrets/app/one", None)
        .await
        .expect(200);
    s.as_token(
        &jwt,
        reqwest::Method::PUT,
        "/v1/secrets/app/one",
        Some(&json!({"data": {"k": "x"}})),
    )
    .await
    .expect_error(403, "insufficient_scope");
    let me = whoami(&s, &jwt).await;
    me.expect(200);
    assert_eq!(me.body["identity_id"], "sa:reporting");
    assert_eq!(me.body["identity_type"], "service_account");
    assert_eq!(me.body["groups"], json!(["group:ci"]));
    assert!(
        me.body["token_expires_at"].is_string()
            && me.body["tenant_id"].is_string()
            && me.body["partner_id"].is_string()
    );
    // A JWT cannot manage service accounts without identity:admin.
    s.as_token(
        &jwt,
        reqwest::Method::GET,
        "/v1/identity/service-accounts",
        None,
    )
    .await
    .expect_error(403, "insufficient_scope");

    // JSON body and a narrower scope; wider scopes and bad credentials are refused.
    let r = Resp::from(
        anon_client()
            .post(s.url("/v1/auth/token"))
            .json(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "secrets:read"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(200);
    assert_eq!(r.body["scope"], "secrets:read");
    let narrow = r.body["access_token"].as_str().unwrap().to_owned();
    s.as_token(&narrow, reqwest::Method::GET, "/v1/secrets?limit=1", None)
        .await
        .expect_error(403, "insufficient_scope");
    let r = token_form(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "secrets:write"),
        ],
    )
    .await;
    r.expect_error(403, "insufficient_scope");
    assert_eq!(r.body["error"]["details"]["oauth_error"], "invalid_scope");
    let r = client_credentials(&s, &client_id, "svs_wrong").await;
    r.expect_error(401, "token_invalid");
    assert_eq!(r.body["error"]["details"]["oauth_error"], "invalid_client");
    client_credentials(&s, "sac_nobody", &secret)
        .await
        .expect_error(401, "token_invalid");
    token_form(
        &s,
        &[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await
    .expect_error(400, "invalid_request");
    // HTTP Basic client authentication (RFC 6749 §2.3.1) works too.
    let r = Resp::from(
        anon_client()
            .post(s.url("/v1/auth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(200);

    // Rotation with a grace period: old and new secrets both work; without grace the old one stops.
    let r = s
        .post(
            "/v1/identity/service-accounts/sa:reporting/secrets",
            &json!({"grace": "1h"}),
        )
        .await;
    r.expect(201);
    let secret2 = r.body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(secret2, secret);
    client_credentials(&s, &client_id, &secret)
        .await
        .expect(200);
    client_credentials(&s, &client_id, &secret2)
        .await
        .expect(200);
    let r = s
        .post(
            "/v1/identity/service-accounts/reporting/secrets",
            &json!({}),
        )
        .await;
    r.expect(201);
    let secret3 = r.body["client_secret"].as_str().unwrap().to_owned();
    client_credentials(&s, &client_id, &secret)
        .await
        .expect_error(401, "token_invalid");
    client_credentials(&s, &client_id, &secret2)
        .await
        .expect_error(401, "token_invalid");
    client_credentials(&s, &client_id, &secret3)
        .await
        .expect(200);

    // Issuance is audited under the account.
    let audit = s.get("/v1/audit/logs?action=token_issue&limit=50").await;
    audit.expect(200);
    let entries = audit.body["entries"]
        .as_array()
        .or_else(|| audit.body["logs"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["identity_id"] == "sa:reporting" && e["success"] == true),
        "{audit}"
    );

    // Deleting disables: the live JWT and the secrets stop working at once.
    let r = s.delete("/v1/identity/service-accounts/sa:reporting").await;
    r.expect(200);
    assert_eq!(r.body["disabled"], true);
    whoami(&s, &jwt).await.expect_error(401, "token_revoked");
    client_credentials(&s, &client_id, &secret3)
        .await
        .expect_error(401, "token_revoked");
    let got = s.get("/v1/identity/service-accounts/sa:reporting").await;
    assert_eq!(got.body["status"], "disabled");
    s.delete("/v1/identity/service-accounts/sa:reporting")
        .await
        .expect_error(404, "not_found");
}

async fn own_jwts_jwks_rotation_introspection(backend: Backend) {
    let mut s = spawn(backend).await;
    let (id, secret) = create_sa(&s, "svc", json!(["secrets:read"])).await;
    // The JWKS is public.
    let jwks = Resp::from(
        anon_client()
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    jwks.expect(200);
    let keys = jwks.body["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["alg"], "EdDSA");
    let same = Resp::from(
        anon_client()
            .get(s.url("/v1/auth/jwks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(same.body, jwks.body);
    let old = client_credentials(&s, &id, &secret).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwt_parts(&old).0["kid"], keys[0]["kid"]);

    // Rotation: a new current key, the old one stays published and its tokens keep working.
    let sa_token = old.clone();
    s.as_token(
        &sa_token,
        reqwest::Method::POST,
        "/v1/auth/keys/rotate",
        None,
    )
    .await
    .expect_error(403, "insufficient_scope");
    let r = s
        .call(reqwest::Method::POST, "/v1/auth/keys/rotate", None)
        .await;
    r.expect(200);
    let new_kid = r.body["kid"].as_str().unwrap().to_owned();
    let jwks = Resp::from(
        anon_client()
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 2);
    let new = client_credentials(&s, &id, &secret).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwt_parts(&new).0["kid"], new_kid.as_str());
    whoami(&s, &old).await.expect(200);
    whoami(&s, &new).await.expect(200);

    // Forgeries: tampered payload, alg none, HS256 keyed with the public key bytes, bad signature.
    let parts: Vec<&str> = new.split('.').collect();
    let (_, mut claims) = jwt_parts(&new);
    claims["scopes"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    whoami(&s, &tampered)
        .await
        .expect_error(401, "token_invalid");
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        B64.encode(claims.to_string())
    );
    whoami(&s, &none).await.expect_error(401, "token_invalid");
    let x = B64
        .decode(jwks.body["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(jwks.body["keys"][0]["kid"].as_str().unwrap().to_owned());
    let hs = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&x)).unwrap();
    whoami(&s, &hs).await.expect_error(401, "token_invalid");
    let badsig = format!("{}.{}.{}", parts[0], parts[1], B64.encode([7u8; 64]));
    whoami(&s, &badsig).await.expect_error(401, "token_invalid");

    // Introspection (admin): active shape for JWTs and PATs, {"active": false} with 200 otherwise.
    let r = s.post("/v1/auth/introspect", &json!({"token": new})).await;
    r.expect(200);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["identity_id"], "sa:svc");
    assert_eq!(r.body["identity_type"], "service_account");
    assert_eq!(r.body["scopes"], json!(["secrets:read"]));
    assert!(
        r.body["expires_at"].is_string()
            && r.body["issued_at"].is_string()
            && r.body["tenant_id"].is_string()
    );
    let r = s
        .post("/v1/auth/introspect", &json!({"token": s.admin_token}))
        .await;
    assert_eq!(r.body["active"], true, "{r}");
    for bad in [tampered.as_str(), "skt_nope", "garbage", none.as_str()] {
        let r = s.post("/v1/auth/introspect", &json!({"token": bad})).await;
        r.expect(200);
        assert_eq!(r.body, json!({"active": false}), "{bad}");
    }
    s.as_token(
        &new,
        reqwest::Method::POST,
        "/v1/auth/introspect",
        Some(&json!({"token": new})),
    )
    .await
    .expect_error(403, "insufficient_scope");

    // Keys survive a restart (persisted, sealed by the root key): old tokens still verify. The
    // issuer is the base URL, which changes with the port here, so mint a fresh one afterwards.
    s.restart().await;
    let after = client_credentials(&s, &id, &secret).await;
    after.expect(200);
    let t = after.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_parts(t).0["kid"], new_kid.as_str());
    whoami(&s, t).await.expect(200);
}

// ---- external issuers -------------------------------------------------------------------------

struct Idp {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicU64>,
}

/// A JWKS endpoint on 127.0.0.1 in this test process, counting fetches.
async fn serve_jwks(initial: Value) -> Idp {
    let jwks = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(AtomicU64::new(0));
    let (j, f) = (jwks.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (j, f) = (j.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(j.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Idp {
        url: format!("http://{addr}/jwks"),
        jwks,
        fetches,
    }
}

struct TestKey {
    kid: String,
    pkcs8: Vec<u8>,
    x: String,
}

fn ed_key(kid: &str) -> TestKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        kid: kid.to_owned(),
        pkcs8: pkcs8.as_ref().to_vec(),
        x: B64.encode(pair.public_key().as_ref()),
    }
}

impl TestKey {
    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig"})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

const IDP: &str = "https://idp.example.test";
const AUD: &str = "scaivault-test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(sub: &str, tenant: &str) -> Value {
    let n = now();
    json!({
        "iss": IDP, "aud": AUD, "sub": sub, "iat": n, "nbf": n - 5, "exp": n + 600,
        "tenant_id": tenant, "scope": "secrets:read audit:read", "groups": ["group:sre"],
        "mfa_verified_at": n - 60, "name": "Alice"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_tokens_and_exchange() {
    let key = ed_key("idp-1");
    let idp = serve_jwks(json!({"keys": [key.jwk()]})).await;
    let mut s = spawn(Backend::Sqlite).await;
    let tenant = s.get("/v1/auth/whoami").await.body["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_sa(&s, "billing", json!(["secrets:read", "secrets:list"])).await;
    s.write_kv("app/one", json!({"k": "v"})).await;
    grant_app_read(&s, "sa:reporting", "service_account").await;
    grant_app_read(&s, "user:alice@example.test", "user").await;
    grant_app_read(&s, "sa:billing", "service_account").await;
    let config = json!([{
        "issuer": IDP, "jwks_url": idp.url, "audience": AUD,
        "exchange": [{"match": {"sub": "system:serviceaccount:billing:api"}, "identity": "sa:billing", "tenant": tenant, "scopes": ["secrets:read"]}]
    }]);
    s.env = vec![("SCAIVAULT_EXTERNAL_ISSUERS".into(), config.to_string())];
    s.restart().await;
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        0,
        "the JWKS is fetched lazily"
    );

    // Accepted, mapped by the claim mapping.
    let good = key.sign(&claims("user:alice@example.test", &tenant));
    let me = whoami(&s, &good).await;
    me.expect(200);
    assert_eq!(me.body["identity_id"], "user:alice@example.test");
    assert_eq!(me.body["identity_type"], "user");
    assert_eq!(me.body["display_name"], "Alice");
    assert_eq!(me.body["tenant_id"], tenant.as_str());
    assert_eq!(me.body["scopes"], json!(["secrets:read", "audit:read"]));
    assert_eq!(me.body["groups"], json!(["group:sre"]));
    assert!(me.body["mfa_verified_at"].is_string() && me.body["token_expires_at"].is_string());
    s.as_token(&good, reqwest::Method::GET, "/v1/secrets/app/one", None)
        .await
        .expect(200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    whoami(&s, &good).await.expect(200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "the JWKS is cached");

    // Refused: wrong audience, expired, not yet valid, wrong issuer, tampered, alg none, HS256
    // keyed with the public key bytes, unknown tenant.
    let mut c = claims("user:a", &tenant);
    c["aud"] = json!("someone-else");
    whoami(&s, &key.sign(&c))
        .await
        .expect_error(401, "token_invalid");
    let mut c = claims("user:a", &tenant);
    c["exp"] = json!(now() - 300);
    whoami(&s, &key.sign(&c))
        .await
        .expect_error(401, "token_expired");
    let mut c = claims("user:a", &tenant);
    c["nbf"] = json!(now() + 600);
    whoami(&s, &key.sign(&c))
        .await
        .expect_error(401, "token_invalid");
    let mut c = claims("user:a", &tenant);
    c["iss"] = json!("https://evil.example.test");
    whoami(&s, &key.sign(&c))
        .await
        .expect_error(401, "token_invalid");
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims("user:alice@example.test", &tenant);
    c["scope"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(c.to_string()), parts[2]);
    whoami(&s, &tampered)
        .await
        .expect_error(401, "token_invalid");
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "kid": "idp-1"}).to_string()),
        parts[1]
    );
    whoami(&s, &none).await.expect_error(401, "token_invalid");
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("idp-1".into());
    let x = B64.decode(&key.x).unwrap();
    let hs = jsonwebtoken::encode(
        &h,
        &claims("user:a", &tenant),
        &EncodingKey::from_secret(&x),
    )
    .unwrap();
    whoami(&s, &hs).await.expect_error(401, "token_invalid");
    whoami(&s, &key.sign(&claims("user:a", "tnt_nowhere")))
        .await
        .expect_error(401, "token_invalid");

    // Unknown kid: refused; a refetch happens at most once per 10 s per issuer.
    let before = idp.fetches.load(Ordering::SeqCst);
    let stranger = ed_key("idp-unknown");
    for _ in 0..3 {
        whoami(&s, &stranger.sign(&claims("user:a", &tenant)))
            .await
            .expect_error(401, "token_invalid");
    }
    let after = idp.fetches.load(Ordering::SeqCst);
    assert!(
        after - before <= 1,
        "refetch is rate-limited: {before} -> {after}"
    );
    // Key rotation at the issuer: the new kid is accepted once the rate limit lets a refetch through.
    let key2 = ed_key("idp-2");
    *idp.jwks.lock().unwrap() = json!({"keys": [key.jwk(), key2.jwk()]});
    let rotated = key2.sign(&claims("user:bob@example.test", &tenant));
    eventually(
        Duration::from_secs(25),
        "the rotated key to be fetched",
        || {
            let (s, t) = (&s, rotated.clone());
            async move { (whoami(s, &t).await.status == 200).then_some(()) }
        },
    )
    .await;
    assert!(
        idp.fetches.load(Ordering::SeqCst) <= after + 3,
        "refetches stay rate-limited"
    );

    // Token exchange: a matching subject token becomes a token of sa:billing, narrowed by the mapping.
    let k8s = key.sign(&claims("system:serviceaccount:billing:api", &tenant));
    let r = Resp::from(
        anon_client()
            .post(s.url("/v1/auth/exchange"))
            .json(&json!({"subject_token": k8s, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.expect(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "secrets:read");
    assert_eq!(r.body["identity_id"], "sa:billing");
    let exchanged = r.body["access_token"].as_str().unwrap().to_owned();
    let me = whoami(&s, &exchanged).await;
    me.expect(200);
    assert_eq!(me.body["identity_id"], "sa:billing");
    s.as_token(
        &exchanged,
        reqwest::Method::GET,
        "/v1/secrets/app/one",
        None,
    )
    .await
    .expect(200);
    s.as_token(
        &exchanged,
        reqwest::Method::GET,
        "/v1/secrets?limit=1",
        None,
    )
    .await
    .expect_error(403, "insufficient_scope");
    // No mapping for this subject; an invalid subject token; no subject token.
    let other = key.sign(&claims("system:serviceaccount:other:api", &tenant));
    Resp::from(
        anon_client()
            .post(s.url("/v1/auth/exchange"))
            .json(&json!({"subject_token": other}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect_error(403, "access_denied");
    Resp::from(
        anon_client()
            .post(s.url("/v1/auth/exchange"))
            .json(&json!({"subject_token": tampered}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect_error(401, "token_invalid");
    Resp::from(
        anon_client()
            .post(s.url("/v1/auth/exchange"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect_error(401, "authentication_required");
    // A disabled account can no longer be exchanged into.
    s.delete("/v1/identity/service-accounts/sa:billing")
        .await
        .expect(200);
    whoami(&s, &exchanged)
        .await
        .expect_error(401, "token_revoked");
    Resp::from(
        anon_client()
            .post(s.url("/v1/auth/exchange"))
            .json(&json!({"subject_token": k8s}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect_error(403, "access_denied");
}
