//! Policies and authorisation: CRUD, bindings, the dry-run test endpoint, list-for-path, and a generated
//! authorisation matrix (identities incl. group members × permissions × glob edge-case paths × IP / MFA
//! conditions × two tenants) checked against an independent model of the documented rules.

use crate::harness::{random_alnum, spawn, Backend, Resp, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;

const TENANT_A: &str = "tnt_default";
const TENANT_B: &str = "tnt_policy_b";
const PARTNER: &str = "ptn_default";

// ---- test-only identity set-up ---------------------------------------------------------------
// The identity API is built elsewhere; until then tests create identities, tenants and tokens by
// writing rows straight into the server's own database (never through a public endpoint).

async fn exec(s: &TestServer, sql: &str, args: &[Option<&str>], blob: Option<&[u8]>) {
    macro_rules! run {
        ($conn:expr) => {{
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(a.map(str::to_owned));
            }
            if let Some(b) = blob {
                q = q.bind(b.to_vec());
            }
            q.execute(&mut $conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            $conn.close().await.ok();
        }};
    }
    match s.backend {
        Backend::Postgres => {
            let mut c = crate::harness::pg_connection(s).await;
            run!(c)
        }
        Backend::Sqlite => {
            let url = format!("sqlite://{}", s.data_dir.join("scaivault.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            run!(c)
        }
    }
}

/// A second tenant of the default partner (no data key: tests use it for decisions only).
pub async fn add_tenant(s: &TestServer, id: &str) {
    exec(
        s,
        "INSERT INTO tenants (id, partner_id, name, wrapped_key, created_at) VALUES ($1, $2, $3, NULL, 0)",
        &[Some(id), Some(PARTNER), Some(id)],
        None,
    )
    .await;
}

/// Inserts an identity and a token for it; returns the token.
pub async fn add_identity(
    s: &TestServer,
    tenant: &str,
    id: &str,
    groups: &[&str],
    roles: &[&str],
    scopes: &[&str],
) -> String {
    let kind = if id.starts_with("sa:") {
        "service_account"
    } else {
        "user"
    };
    let groups = json!(groups).to_string();
    let roles = json!(roles).to_string();
    let scopes = json!(scopes).to_string();
    exec(
        s,
        "INSERT INTO identities (tenant_id, id, identity_type, display_name, roles, groups_json, scopes, created_at) \
         VALUES ($1, $2, $3, NULL, $4, $5, $6, 0)",
        &[Some(tenant), Some(id), Some(kind), Some(&roles), Some(&groups), Some(&scopes)],
        None,
    )
    .await;
    let token = format!("skt_{}", random_alnum(40));
    let hash = scaivault_server::auth::hash_token(&token);
    let tok_id = format!("tok_{}", random_alnum(16));
    exec(
        s,
        "INSERT INTO tokens (id, tenant_id, identity_id, name, scopes, created_at, token_hash) \
         VALUES ($1, $2, $3, 'test', $4, 0, $5)",
        &[Some(&tok_id), Some(tenant), Some(id), Some(&scopes)],
        Some(&hash),
    )
    .await;
    token
}

pub async fn call_as(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let mut req = s.client().request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    Resp::from(req.send().await.unwrap()).await
}

pub const SECRET_SCOPES: &[&str] = &[
    "secrets:read",
    "secrets:write",
    "secrets:delete",
    "secrets:list",
    "policies:read",
];

/// Creates a policy with the admin token and binds it; returns its id.
async fn policy_as(s: &TestServer, token: &str, body: Value, subjects: &[&str]) -> String {
    let r = call_as(s, token, Method::POST, "/v1/policies", Some(&body)).await;
    r.expect(201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for subj in subjects {
        let kind = if subj.starts_with("group:") {
            "group"
        } else if subj.starts_with("sa:") {
            "service_account"
        } else {
            "user"
        };
        call_as(
            s,
            token,
            Method::POST,
            &format!("/v1/policies/{id}/bindings"),
            Some(&json!({"identity_type": kind, "identity_id": subj})),
        )
        .await
        .expect(201);
    }
    id
}

// ---- the independent model -------------------------------------------------------------------

/// Glob semantics as documented, by dynamic programming (the server backtracks; this is a separate
/// implementation): `*` one segment or a run within one, `?` one character, `**` zero or more
/// segments (at least one when the pattern starts with it).
fn model_match(pattern: &str, path: &str) -> bool {
    let ps: Vec<&str> = pattern.split('/').collect();
    let xs: Vec<&str> = path.split('/').collect();
    // dp[i][j]: ps[i..] matches xs[j..]
    let mut dp = vec![vec![false; xs.len() + 1]; ps.len() + 1];
    dp[ps.len()][xs.len()] = true;
    for i in (0..ps.len()).rev() {
        for j in (0..=xs.len()).rev() {
            dp[i][j] = if ps[i] == "**" {
                let min = usize::from(i == 0);
                (j + min..=xs.len()).any(|k| dp[i + 1][k])
            } else {
                j < xs.len() && seg_dp(ps[i].as_bytes(), xs[j].as_bytes()) && dp[i + 1][j + 1]
            };
        }
    }
    dp[0][0]
}

fn seg_dp(p: &[u8], s: &[u8]) -> bool {
    let mut dp = vec![vec![false; s.len() + 1]; p.len() + 1];
    dp[p.len()][s.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=s.len()).rev() {
            dp[i][j] = match p[i] {
                b'*' => dp[i + 1][j] || (j < s.len() && dp[i][j + 1]),
                b'?' => j < s.len() && dp[i + 1][j + 1],
                c => j < s.len() && s[j] == c && dp[i + 1][j + 1],
            };
        }
    }
    dp[0][0]
}

#[derive(Clone)]
struct MRule {
    pattern: &'static str,
    perms: &'static [&'static str],
    ip: Option<&'static str>, // a /8 prefix such as "10." or "127."
    mfa: bool,
}

struct MPolicy {
    /// "A", "B" or "P" (partner scope: both tenants).
    owner: &'static str,
    active: bool,
    subjects: &'static [&'static str],
    rules: Vec<MRule>,
}

struct MIdent {
    id: &'static str,
    groups_a: &'static [&'static str],
    scopes: &'static [&'static str],
}

/// Expected answer: Ok(()) or the error code.
#[allow(clippy::too_many_arguments)]
fn model_decide(
    policies: &[MPolicy],
    who: &MIdent,
    tenant: &str,
    perm: &str,
    path: &str,
    ip: &str,
    mfa: bool,
    check_scope: bool,
) -> Result<(), &'static str> {
    if check_scope && !who.scopes.contains(&format!("secrets:{perm}").as_str()) {
        return Err("insufficient_scope");
    }
    let groups: &[&str] = if tenant == "A" { who.groups_a } else { &[] };
    let mut best: Option<(u8, &'static str)> = None;
    for p in policies {
        if !p.active || !(p.owner == tenant || p.owner == "P") {
            continue;
        }
        if !p
            .subjects
            .iter()
            .any(|s| *s == who.id || groups.contains(s))
        {
            continue;
        }
        for r in &p.rules {
            if !(r.perms.contains(&perm) || r.perms.contains(&"admin"))
                || !model_match(r.pattern, path)
            {
                continue;
            }
            let fail = if r.ip.is_some_and(|pre| !ip.starts_with(pre)) {
                Some((1, "ip_not_allowed"))
            } else if r.mfa && !mfa {
                Some((3, "mfa_required"))
            } else {
                None
            };
            match fail {
                None => return Ok(()),
                Some(f) => {
                    if best.is_none_or(|b| f.0 > b.0) {
                        best = Some(f);
                    }
                }
            }
        }
    }
    Err(best.map_or("access_denied", |b| b.1))
}

fn rule(pattern: &'static str, perms: &'static [&'static str]) -> MRule {
    MRule {
        pattern,
        perms,
        ip: None,
        mfa: false,
    }
}

fn rule_json(r: &MRule) -> Value {
    let mut v = json!({"path_pattern": r.pattern, "permissions": r.perms});
    let mut cond = serde_json::Map::new();
    if let Some(pre) = r.ip {
        cond.insert("ip_ranges".into(), json!([format!("{pre}0.0.0/8")]));
    }
    if r.mfa {
        cond.insert("require_mfa".into(), json!(true));
    }
    if !cond.is_empty() {
        v["conditions"] = Value::Object(cond);
    }
    v
}

fn model_policies() -> Vec<MPolicy> {
    vec![
        MPolicy {
            owner: "A",
            active: true,
            subjects: &["group:dev"],
            rules: vec![
                rule("app/**", &["read", "list"]),
                rule("app/db/*", &["write"]),
            ],
        },
        MPolicy {
            owner: "A",
            active: true,
            subjects: &["sa:bot"],
            rules: vec![
                rule("**/ssl/*", &["read"]),
                rule("svc/?x/*", &["delete"]),
                rule("svc/*x/**", &["list"]),
            ],
        },
        MPolicy {
            owner: "A",
            active: true,
            subjects: &["user:carl@x.io"],
            rules: vec![
                MRule {
                    pattern: "prod/**",
                    perms: &["admin"],
                    ip: Some("10."),
                    mfa: false,
                },
                MRule {
                    pattern: "local/*",
                    perms: &["read", "write", "delete", "list"],
                    ip: Some("127."),
                    mfa: false,
                },
            ],
        },
        MPolicy {
            owner: "A",
            active: true,
            subjects: &["group:ops"],
            rules: vec![MRule {
                pattern: "prod/**",
                perms: &["read"],
                ip: None,
                mfa: true,
            }],
        },
        MPolicy {
            owner: "A",
            active: false,
            subjects: &["user:ann@x.io"],
            rules: vec![rule("**", &["admin"])],
        },
        MPolicy {
            owner: "A",
            active: true,
            subjects: &["user:limited@x.io"],
            rules: vec![rule("**", &["admin"])],
        },
        MPolicy {
            owner: "P",
            active: true,
            subjects: &["user:ann@x.io"],
            rules: vec![rule("partner/*", &["read"])],
        },
        MPolicy {
            owner: "B",
            active: true,
            subjects: &["user:ann@x.io", "group:dev"],
            rules: vec![rule("b/**", &["admin"]), rule("app/x", &["delete"])],
        },
    ]
}

const IDENTS: &[MIdent] = &[
    MIdent {
        id: "user:ann@x.io",
        groups_a: &["group:dev"],
        scopes: &[
            "secrets:read",
            "secrets:write",
            "secrets:delete",
            "secrets:list",
        ],
    },
    MIdent {
        id: "sa:bot",
        groups_a: &[],
        scopes: &[
            "secrets:read",
            "secrets:write",
            "secrets:delete",
            "secrets:list",
        ],
    },
    MIdent {
        id: "user:carl@x.io",
        groups_a: &["group:ops"],
        scopes: &[
            "secrets:read",
            "secrets:write",
            "secrets:delete",
            "secrets:list",
        ],
    },
    MIdent {
        id: "user:limited@x.io",
        groups_a: &[],
        scopes: &["secrets:read"],
    },
    MIdent {
        id: "user:nobody@x.io",
        groups_a: &["group:nothing"],
        scopes: &[
            "secrets:read",
            "secrets:write",
            "secrets:delete",
            "secrets:list",
        ],
    },
];

const PATHS: &[&str] = &[
    "app",
    "app/db",
    "app/db/pw",
    "app/db/x/y",
    "app/x",
    "apps/x",
    "ssl/cert",
    "a/ssl/cert",
    "a/b/ssl/key",
    "a/ssl/cert/x",
    "svc/ax/k",
    "svc/abx/k",
    "svc/x/k",
    "svc/ax/k/l",
    "prod",
    "prod/db",
    "prod/a/b",
    "local/k",
    "local/a/b",
    "partner/k",
    "partner/a/b",
    "b/k",
    "b",
    "other",
];

async fn authorization_matrix(backend: Backend) {
    let s = spawn(backend).await;
    add_tenant(&s, TENANT_B).await;
    // Admin of tenant B, to create B's policies (the dev admin acts in tenant A).
    let b_admin = add_identity(
        &s,
        TENANT_B,
        "user:admin@b.io",
        &[],
        &["tenant_admin"],
        &["policies:read", "policies:write"],
    )
    .await;
    let mut tokens = Vec::new();
    for who in IDENTS {
        let ta = add_identity(
            &s,
            TENANT_A,
            who.id,
            who.groups_a,
            &[],
            &[who.scopes, &["policies:read"]].concat(),
        )
        .await;
        let tb = add_identity(&s, TENANT_B, who.id, &[], &[], who.scopes).await;
        tokens.push((ta, tb));
    }
    let policies = model_policies();
    for p in &policies {
        let mut body = json!({
            "name": format!("m-{}", random_alnum(6)),
            "rules": p.rules.iter().map(rule_json).collect::<Vec<_>>(),
            "is_active": p.active,
        });
        let token = match p.owner {
            "B" => b_admin.clone(),
            "P" => {
                body["scope"] = json!("partner");
                s.admin_token.clone()
            }
            _ => s.admin_token.clone(),
        };
        policy_as(&s, &token, body, p.subjects).await;
    }
    // A tenant admin cannot create partner-scope policies.
    call_as(
        &s,
        &b_admin,
        Method::POST,
        "/v1/policies",
        Some(
            &json!({"name": "x", "scope": "partner", "rules": [rule_json(&rule("x", &["read"]))]}),
        ),
    )
    .await
    .expect_error(403, "access_denied");

    let mut checked = 0;
    let mut wrong = Vec::new();
    for (wi, who) in IDENTS.iter().enumerate() {
        for (tenant, token) in [("A", &tokens[wi].0), ("B", &tokens[wi].1)] {
            for path in PATHS {
                for perm in ["read", "list", "write", "delete"] {
                    let expected =
                        model_decide(&policies, who, tenant, perm, path, "127.0.0.1", false, true);
                    let (method, url, body) = match perm {
                        "read" => (Method::GET, format!("/v1/secrets/{path}"), None),
                        "list" => (Method::GET, format!("/v1/secrets/{path}/metadata"), None),
                        "write" => (
                            Method::PATCH,
                            format!("/v1/secrets/{path}/metadata"),
                            Some(json!({"metadata": {}})),
                        ),
                        _ => (Method::DELETE, format!("/v1/secrets/{path}"), None),
                    };
                    let r = call_as(&s, token, method, &url, body.as_ref()).await;
                    // Allowed requests reach the (empty) store: 404 secret_not_found.
                    let got: Result<(), String> = match (r.status, r.code()) {
                        (404, "secret_not_found") => Ok(()),
                        (403, code) => Err(code.to_owned()),
                        _ => Err(format!("unexpected {r}")),
                    };
                    checked += 1;
                    if got.as_ref().map(|_| ()).map_err(String::as_str) != expected {
                        wrong.push(format!(
                            "{} in {tenant}: {perm} {path}: expected {expected:?}, got {got:?}",
                            who.id
                        ));
                    }
                }
            }
        }
    }
    // The dry run covers what live requests cannot vary here: source IP, MFA, and rotate/admin.
    for who in IDENTS {
        for (tenant, token) in [("A", &s.admin_token), ("B", &b_admin)] {
            for path in PATHS {
                for perm in ["read", "list", "write", "delete", "rotate", "admin"] {
                    for (ip, mfa) in [
                        ("10.1.2.3", true),
                        ("10.1.2.3", false),
                        ("127.0.0.1", true),
                        ("192.168.0.1", false),
                    ] {
                        let expected =
                            model_decide(&policies, who, tenant, perm, path, ip, mfa, false);
                        let r = call_as(
                            &s,
                            token,
                            Method::POST,
                            "/v1/policies/test",
                            Some(
                                &json!({"identity_id": who.id, "path": path, "permission": perm,
                                          "context": {"source_ip": ip, "mfa_verified": mfa}}),
                            ),
                        )
                        .await;
                        r.expect(200);
                        let got: Result<(), String> = if r.body["allowed"] == json!(true) {
                            Ok(())
                        } else {
                            Err(r.body["code"].as_str().unwrap_or("?").to_owned())
                        };
                        checked += 1;
                        if got.as_ref().map(|_| ()).map_err(String::as_str) != expected {
                            wrong.push(format!("test {} in {tenant}: {perm} {path} ip={ip} mfa={mfa}: expected {expected:?}, got {got:?}", who.id));
                        }
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong decisions of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 3000, "{checked}");
    // The dev admin (super_admin) is allowed everywhere regardless of policies.
    s.get("/v1/secrets/other")
        .await
        .expect_error(404, "secret_not_found");
}

both!(authorization_matrix);

async fn crud_and_bindings(backend: Backend) {
    let s = spawn(backend).await;
    let r = s
        .post(
            "/v1/policies",
            &json!({
                "name": "production-read-only",
                "description": "Read access to production secrets for developers",
                "rules": [
                    {"path_pattern": "environments/production/**", "permissions": ["read", "list"],
                     "conditions": {"ip_ranges": ["10.0.0.0/8"], "require_mfa": true}},
                    {"path_pattern": "shared/certificates/*", "permissions": ["read"]}
                ]
            }),
        )
        .await;
    r.expect(201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pol_"));
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["scope"], "tenant");
    assert_eq!(
        r.body["rules"][0]["conditions"]["ip_ranges"][0],
        "10.0.0.0/8"
    );
    // Validation.
    s.post(
        "/v1/policies",
        &json!({"name": "x", "rules": [{"path_pattern": "/a", "permissions": ["read"]}]}),
    )
    .await
    .expect_error(400, "invalid_glob");
    s.post(
        "/v1/policies",
        &json!({"name": "x", "rules": [{"path_pattern": "a", "permissions": ["fly"]}]}),
    )
    .await
    .expect_error(400, "invalid_policy");
    s.post("/v1/policies", &json!({"name": "x"}))
        .await
        .expect_error(400, "invalid_policy");
    s.post(
        "/v1/policies",
        &json!({"rules": [{"path_pattern": "a", "permissions": ["read"]}]}),
    )
    .await
    .expect_validation("name");
    s.post("/v1/policies", &json!({"name": "x", "rules": [{"path_pattern": "a", "permissions": ["read"], "conditions": {"ip_ranges": ["10.0.0.0/33"]}}]}))
        .await
        .expect_error(400, "invalid_policy");
    // Bindings.
    let b = s
        .post(
            &format!("/v1/policies/{id}/bindings"),
            &json!({"identity_type": "group", "identity_id": "group:developers"}),
        )
        .await;
    b.expect(201);
    let bid = b.body["id"].as_str().unwrap().to_owned();
    s.post(
        &format!("/v1/policies/{id}/bindings"),
        &json!({"identity_type": "robot", "identity_id": "x"}),
    )
    .await
    .expect_error(400, "invalid_policy");
    s.post(
        &format!("/v1/policies/{id}/bindings"),
        &json!({"identity_type": "user", "identity_id": "sa:x"}),
    )
    .await
    .expect_error(400, "invalid_policy");
    s.post(&format!("/v1/policies/{id}/bindings"), &json!({"identity_type": "user", "identity_id": "user:a@b.c", "expires_at": "2001-01-01T00:00:00Z"}))
        .await
        .expect_error(400, "invalid_policy");
    s.post(
        "/v1/policies/pol_nope/bindings",
        &json!({"identity_type": "user", "identity_id": "user:a@b.c"}),
    )
    .await
    .expect_error(404, "policy_not_found");
    let g = s.get(&format!("/v1/policies/{id}")).await;
    g.expect(200);
    assert_eq!(g.body["bindings"][0]["identity_id"], "group:developers");
    assert_eq!(g.body["binding_count"], 1);
    // PUT keeps bindings; PATCH changes only what it names.
    let p = s
        .put(&format!("/v1/policies/{id}"), &json!({"name": "renamed", "rules": [{"path_pattern": "x/*", "permissions": ["list"]}]}))
        .await;
    p.expect(200);
    assert_eq!(p.body["bindings"].as_array().unwrap().len(), 1);
    assert_eq!(p.body["description"], Value::Null);
    let p = s
        .patch(&format!("/v1/policies/{id}"), &json!({"is_active": false}))
        .await;
    p.expect(200);
    assert_eq!(p.body["name"], "renamed");
    assert_eq!(p.body["is_active"], false);
    s.patch(&format!("/v1/policies/{id}"), &json!({"scope": "partner"}))
        .await
        .expect(422);
    // Listing: inactive hidden unless asked; cursor paging.
    let l = s.get("/v1/policies").await;
    l.expect(200);
    assert!(l.body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != json!(id)));
    let l = s.get("/v1/policies?include_inactive=true").await;
    let item = l.body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(id))
        .unwrap()
        .clone();
    assert_eq!(item["rule_count"], 1);
    assert_eq!(item["binding_count"], 1);
    for i in 0..5 {
        s.post("/v1/policies", &json!({"name": format!("p{i}"), "rules": [{"path_pattern": format!("p{i}/**"), "permissions": ["read"]}]}))
            .await
            .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/policies?limit=2&include_inactive=true&cursor={c}"),
            None => "/v1/policies?limit=2&include_inactive=true".to_owned(),
        };
        let r = s.get(&url).await;
        r.expect(200);
        for p in r.body["policies"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        if r.body["has_more"] != json!(true) {
            break;
        }
        cursor = r.body["cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen);
    s.get("/v1/policies?cursor=zzz")
        .await
        .expect_error(400, "invalid_cursor");
    // List for path.
    let r = s.get("/v1/policies?path=p3/a/b").await;
    r.expect(200);
    let ids: Vec<&str> = r.body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["p3"]);
    assert_eq!(r.body["policies"][0]["matching_rules"], json!([0]));
    let r = s.get("/v1/policies?path=p3/a/b&permission=write").await;
    assert_eq!(r.body["policies"].as_array().unwrap().len(), 0);
    // Delete: 409 while bound, force removes bindings too.
    s.delete(&format!("/v1/policies/{id}"))
        .await
        .expect_error(409, "policy_in_use");
    s.delete(&format!("/v1/policies/{id}/bindings/bnd_nope"))
        .await
        .expect_error(404, "binding_not_found");
    s.delete(&format!("/v1/policies/{id}/bindings/{bid}"))
        .await
        .expect(200);
    let r = s.get(&format!("/v1/policies/{id}/bindings")).await;
    assert_eq!(r.body["bindings"], json!([]));
    s.post(&format!("/v1/policies/{id}/bindings"), &json!({"identity_type": "user", "identity_id": "user:a@b.c", "expires_at": "2999-01-01T00:00:00Z"}))
        .await
        .expect(201);
    s.delete(&format!("/v1/policies/{id}?force=true"))
        .await
        .expect(200);
    s.get(&format!("/v1/policies/{id}"))
        .await
        .expect_error(404, "policy_not_found");
    s.delete(&format!("/v1/policies/{id}"))
        .await
        .expect_error(404, "policy_not_found");
    // Every change is audited; the dry run is not.
    let before = s
        .get("/v1/audit/logs?action=policy_create&success=true&limit=100")
        .await;
    before.expect(200);
    assert_eq!(
        before.body["logs"].as_array().map_or(0, Vec::len),
        6,
        "{}",
        before.body
    );
    for a in [
        "policy_update",
        "policy_bind",
        "policy_unbind",
        "policy_delete",
    ] {
        let r = s.get(&format!("/v1/audit/logs?action={a}")).await;
        assert!(
            !r.body["logs"].as_array().unwrap().is_empty(),
            "{a}: {}",
            r.body
        );
    }
    let r = s
        .post(
            "/v1/policies/test",
            &json!({"identity_id": "user:z@z.z", "path": "a", "permission": "read"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["allowed"], false);
    assert_eq!(r.body["code"], "access_denied");
    let r = s.get("/v1/audit/logs?limit=1000").await;
    assert!(r.text.contains("policy_create") && !r.text.contains("policies/test"));
}

both!(crud_and_bindings);

async fn scopes_and_roles(backend: Backend) {
    let s = spawn(backend).await;
    let reader = add_identity(
        &s,
        TENANT_A,
        "user:reader@x.io",
        &[],
        &[],
        &["policies:read"],
    )
    .await;
    let writer = add_identity(
        &s,
        TENANT_A,
        "user:writer@x.io",
        &[],
        &[],
        &["policies:write", "policies:read"],
    )
    .await;
    let none = add_identity(&s, TENANT_A, "user:none@x.io", &[], &[], &["secrets:read"]).await;
    let body = json!({"name": "x", "rules": [{"path_pattern": "x", "permissions": ["read"]}]});
    call_as(&s, &none, Method::GET, "/v1/policies", None)
        .await
        .expect_error(403, "insufficient_scope");
    call_as(&s, &reader, Method::GET, "/v1/policies", None)
        .await
        .expect(200);
    call_as(&s, &reader, Method::POST, "/v1/policies", Some(&body))
        .await
        .expect_error(403, "insufficient_scope");
    // A policies:write scope without an admin role cannot grant itself access.
    call_as(&s, &writer, Method::POST, "/v1/policies", Some(&body))
        .await
        .expect_error(403, "access_denied");
    call_as(
        &s,
        &none,
        Method::POST,
        "/v1/policies/test",
        Some(&json!({"identity_id": "user:a", "path": "a", "permission": "read"})),
    )
    .await
    .expect_error(403, "insufficient_scope");
    // Audit endpoints still require their scope; policies do not replace scopes.
    call_as(&s, &none, Method::GET, "/v1/audit/logs", None)
        .await
        .expect_error(403, "insufficient_scope");
    // A tenant admin manages its own tenant's policies.
    let tadmin = add_identity(
        &s,
        TENANT_A,
        "user:tadmin@x.io",
        &[],
        &["tenant_admin"],
        &["policies:write", "policies:read", "secrets:read"],
    )
    .await;
    call_as(&s, &tadmin, Method::POST, "/v1/policies", Some(&body))
        .await
        .expect(201);
    call_as(&s, &tadmin, Method::GET, "/v1/secrets/any/where", None)
        .await
        .expect_error(404, "secret_not_found");
}

both!(scopes_and_roles);

/// Batch reads are checked per path, batch metadata needs only `list`, listings drop what the caller
/// may not list.
async fn batch_and_list_enforcement(backend: Backend) {
    let s = spawn(backend).await;
    for p in ["team/a", "team/b", "team/c/d", "other/x"] {
        s.write_kv(p, json!({"v": p})).await;
    }
    let ann = add_identity(&s, TENANT_A, "user:ann@x.io", &[], &[], SECRET_SCOPES).await;
    policy_as(
        &s,
        &s.admin_token,
        json!({"name": "t", "rules": [{"path_pattern": "team/*", "permissions": ["read"]}, {"path_pattern": "team/**", "permissions": ["list"]}]}),
        &["user:ann@x.io"],
    )
    .await;
    let r = call_as(
        &s,
        &ann,
        Method::POST,
        "/v1/secrets/batch",
        Some(&json!({"paths": ["team/a", "team/c/d", "other/x"]})),
    )
    .await;
    r.expect(200);
    assert_eq!(r.body["secrets"]["team/a"]["data"]["v"], "team/a");
    assert_eq!(r.body["errors"]["team/c/d"]["code"], "access_denied");
    assert_eq!(r.body["errors"]["other/x"]["code"], "access_denied");
    let r = call_as(
        &s,
        &ann,
        Method::POST,
        "/v1/secrets/batch/metadata",
        Some(&json!({"paths": ["team/c/d", "other/x"]})),
    )
    .await;
    r.expect(200);
    assert!(r.body["metadata"]["team/c/d"].is_object(), "{}", r.body);
    assert!(r.body["metadata"].get("other/x").is_none(), "{}", r.body);
    let r = call_as(&s, &ann, Method::GET, "/v1/secrets", None).await;
    r.expect(200);
    let paths: Vec<&str> = r.body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["team/a", "team/b", "team/c/d"]);
    // Revoking the binding takes effect at once.
    let pid = s.get("/v1/policies").await.body["policies"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.delete(&format!("/v1/policies/{pid}?force=true"))
        .await
        .expect(200);
    call_as(&s, &ann, Method::GET, "/v1/secrets/team/a", None)
        .await
        .expect_error(403, "access_denied");
}

both!(batch_and_list_enforcement);

fn cli(s: &TestServer, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaivault"))
        .args(args)
        .env("HOME", dir)
        .env("SCAIVAULT_CONFIG", dir.join("config.json"))
        .env("SCAIVAULT_URL", &s.base_url)
        .env("SCAIVAULT_TOKEN", &s.admin_token)
        .env_remove("SCAIVAULT_TENANT_ID")
        .env_remove("SCAIVAULT_PARTNER_ID")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `scaivault policies list|get|create --file|delete|bind|unbind|test`.
async fn cli_policies(backend: Backend) {
    let s = spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        json!({"name": "cli-read", "rules": [{"path_pattern": "billing/*", "permissions": ["read"]}]}).to_string(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = cli(
        &s,
        dir.path(),
        &["policies", "create", "--file", f, "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, _) = cli(
        &s,
        dir.path(),
        &["policies", "bind", &id, "sa:billing", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let bid = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["identity_type"],
        "service_account"
    );
    let (code, out, _) = cli(&s, dir.path(), &["policies", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains(&id) && out.contains("cli-read"), "{out}");
    let (code, out, _) = cli(&s, dir.path(), &["policies", "get", &id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("billing/*") && out.contains("sa:billing"),
        "{out}"
    );
    let (code, out, _) = cli(
        &s,
        dir.path(),
        &["policies", "test", "sa:billing", "billing/stripe"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("allowed") && out.contains(&id), "{out}");
    let (code, out, _) = cli(
        &s,
        dir.path(),
        &[
            "policies",
            "test",
            "sa:billing",
            "billing/stripe",
            "--permission",
            "write",
        ],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("access_denied"), "{out}");
    let (code, _, err) = cli(&s, dir.path(), &["policies", "delete", &id]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("policy_in_use"), "{err}");
    let (code, _, _) = cli(&s, dir.path(), &["policies", "unbind", &id, &bid]);
    assert_eq!(code, 0);
    let (code, _, _) = cli(&s, dir.path(), &["policies", "delete", &id]);
    assert_eq!(code, 0);
    let (code, _, err) = cli(&s, dir.path(), &["policies", "get", &id]);
    assert_eq!(code, 4, "{err}");
    std::fs::write(
        &file,
        "{\"name\": \"x\", \"rules\": [{\"path_pattern\": \"/x\", \"permissions\": [\"read\"]}]}",
    )
    .unwrap();
    let (code, _, err) = cli(&s, dir.path(), &["policies", "create", "--file", f]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("invalid_glob"), "{err}");
}

both!(cli_policies);

/// Secret policies: CRUD, attach to a secret, value rules checked on write.
async fn secret_policies(backend: Backend) {
    let s = spawn(backend).await;
    let body = json!({
        "name": "Database Passwords",
        "policy_type": "password",
        "description": "Strong passwords",
        "fields": [{"name": "password", "generator": "random",
                    "config": {"length": 12, "charset": "safe", "require_upper": true, "require_lower": true,
                               "require_digit": true, "require_symbol": true}}]
    });
    let r = s.post("/v1/secret-policies", &body).await;
    r.expect(201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sp_"));
    assert_eq!(r.body["fields"][0]["config"]["length"], 12);
    s.post(
        "/v1/secret-policies",
        &json!({"name": "x", "fields": [{"name": "a", "generator": "magic"}]}),
    )
    .await
    .expect_validation("fields[0].generator");
    s.get(&format!("/v1/secret-policies/{id}"))
        .await
        .expect(200);
    s.get("/v1/secret-policies/sp_nope")
        .await
        .expect_error(404, "secret_policy_not_found");
    let l = s.get("/v1/secret-policies").await;
    assert_eq!(l.body["secret_policies"].as_array().unwrap().len(), 1);

    s.write_kv("db/main", json!({"password": "weak"})).await;
    s.post(
        &format!("/v1/secret-policies/{id}/attach"),
        &json!({"path": "db/main"}),
    )
    .await
    .expect(200);
    s.post(
        "/v1/secret-policies/sp_nope/attach",
        &json!({"path": "db/main"}),
    )
    .await
    .expect_error(404, "secret_policy_not_found");
    s.post(
        &format!("/v1/secret-policies/{id}/attach"),
        &json!({"path": "db/none"}),
    )
    .await
    .expect_error(404, "secret_not_found");
    assert_eq!(
        s.get("/v1/secrets/db/main/metadata").await.body["secret_policy_id"],
        json!(id)
    );
    for (bad, why) in [
        ("Short1!", "at least 12"),
        ("alllowercase1!x", "uppercase"),
        ("ALLUPPERCASE1!X", "lowercase"),
        ("NoDigitsHere!!", "digit"),
        ("NoSymbols12345", "symbol"),
        ("Has Space1!abc", "charset"),
    ] {
        let r = s
            .put("/v1/secrets/db/main", &json!({"data": {"password": bad}}))
            .await;
        r.expect_validation("data.password");
        assert!(r.text.contains(why), "{bad}: {}", r.text);
        assert!(!r.text.contains(bad), "the value must not be echoed");
    }
    s.put("/v1/secrets/db/main", &json!({"data": {"user": "x"}}))
        .await
        .expect_validation("data.password");
    s.put(
        "/v1/secrets/db/main",
        &json!({"data": {"password": "Str0ng-Passw0rd!"}}),
    )
    .await
    .expect(200);
    // Replacing the policy changes the rules; detaching lifts them.
    let mut relaxed = body.clone();
    relaxed["fields"][0]["config"] = json!({"length": 4});
    s.put(&format!("/v1/secret-policies/{id}"), &relaxed)
        .await
        .expect(200);
    s.put(
        "/v1/secrets/db/main",
        &json!({"data": {"password": "abcd"}}),
    )
    .await
    .expect(200);
    s.post("/v1/secret-policies/detach", &json!({"path": "db/main"}))
        .await
        .expect(200);
    s.put("/v1/secrets/db/main", &json!({"data": {"password": "a"}}))
        .await
        .expect(200);
    s.post(
        &format!("/v1/secret-policies/{id}/attach"),
        &json!({"path": "db/main"}),
    )
    .await
    .expect(200);
    s.delete(&format!("/v1/secret-policies/{id}"))
        .await
        .expect(200);
    assert_eq!(
        s.get("/v1/secrets/db/main/metadata").await.body["secret_policy_id"],
        Value::Null
    );
    s.put("/v1/secrets/db/main", &json!({"data": {"password": "b"}}))
        .await
        .expect(200);
}

both!(secret_policies);
