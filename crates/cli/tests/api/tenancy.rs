//! Partners, tenants, users, groups and roles (`/v1/identity/…`), tenant resolution (`/v1/t/{tenant}/…`,
//! `X-Tenant-ID`), partner-scoped secrets, and the cross-tenant matrix: a token of one tenant reaches
//! nothing of another on any endpoint.

use crate::harness::{spawn, Backend, Resp, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

both!(
    identity_management,
    roles_and_self_elevation,
    tenant_resolution,
    partner_secrets,
    cross_tenant_matrix,
    tenant_rate_limits
);

/// Two partners: acme (prod and dev tenants) and other (one tenant), with users and tokens.
struct World {
    /// alice: partner_admin of acme, lives in tnt_acme_prod.
    alice: String,
    /// bob: tenant_admin of tnt_acme_prod.
    bob: String,
    /// carol: plain user of tnt_acme_dev.
    carol: String,
    /// dave: tenant_admin of tnt_other (partner other), every scope.
    dave: String,
}

async fn mint(s: &TestServer, tenant: &str, identity: &str, scopes: Value) -> String {
    let r = s
        .post(
            &format!("/v1/t/{tenant}/auth/tokens"),
            &json!({"identity_id": identity, "scopes": scopes, "name": "test"}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body["identity_id"], identity, "{r}");
    r.body["token"].as_str().unwrap().to_owned()
}

async fn world(s: &TestServer) -> World {
    s.post(
        "/v1/identity/partners",
        &json!({"id": "ptn_acme", "name": "Acme Corp", "slug": "acme-corp", "region": "eu-west-1"}),
    )
    .await
    .expect(201);
    s.post(
        "/v1/identity/partners",
        &json!({"id": "ptn_other", "name": "Other Inc"}),
    )
    .await
    .expect(201);
    for (id, partner) in [
        ("tnt_acme_prod", "ptn_acme"),
        ("tnt_acme_dev", "ptn_acme"),
        ("tnt_other", "ptn_other"),
    ] {
        s.post(
            "/v1/identity/tenants",
            &json!({"id": id, "partner_id": partner, "name": id}),
        )
        .await
        .expect(201);
    }
    let all = json!(["admin"]);
    for (tenant, email, roles, scopes) in [
        (
            "tnt_acme_prod",
            "alice@acme.example",
            json!(["partner_admin"]),
            all.clone(),
        ),
        (
            "tnt_acme_prod",
            "bob@acme.example",
            json!(["tenant_admin"]),
            all.clone(),
        ),
        (
            "tnt_acme_dev",
            "carol@acme.example",
            json!([]),
            json!([
                "secrets:read",
                "secrets:list",
                "secrets:write",
                "identity:read"
            ]),
        ),
        (
            "tnt_other",
            "dave@other.example",
            json!(["tenant_admin"]),
            all.clone(),
        ),
    ] {
        s.post(
            &format!("/v1/identity/tenants/{tenant}/users"),
            &json!({"email": email, "display_name": email, "roles": roles, "scopes": scopes}),
        )
        .await
        .expect(201);
    }
    // carol has no admin role: a policy lets her work with the secrets of her tenant.
    let r = s
        .post(
            "/v1/t/tnt_acme_dev/policies",
            &json!({"name": "dev-all", "rules": [{"path_pattern": "**", "permissions": ["read", "write", "list"]}]}),
        )
        .await;
    r.expect(201);
    let pol = r.body["id"].as_str().unwrap().to_owned();
    s.post(
        &format!("/v1/t/tnt_acme_dev/policies/{pol}/bindings"),
        &json!({"identity_type": "user", "identity_id": "user:carol@acme.example"}),
    )
    .await
    .expect(201);
    World {
        alice: mint(s, "tnt_acme_prod", "user:alice@acme.example", all.clone()).await,
        bob: mint(s, "tnt_acme_prod", "user:bob@acme.example", all.clone()).await,
        carol: mint(
            s,
            "tnt_acme_dev",
            "user:carol@acme.example",
            json!([
                "secrets:read",
                "secrets:list",
                "secrets:write",
                "identity:read"
            ]),
        )
        .await,
        dave: mint(s, "tnt_other", "user:dave@other.example", all).await,
    }
}

async fn identity_management(backend: Backend) {
    let s = spawn(backend).await;
    let w = world(&s).await;

    // Partners and tenants as the super admin sees them.
    let r = s.get("/v1/identity/partners?page_size=2").await;
    r.expect(200);
    assert_eq!(r.body["total"], 3, "{r}"); // default + acme + other
    assert_eq!(r.body["partners"].as_array().unwrap().len(), 2);
    let r = s.get("/v1/identity/partners?page=2&page_size=2").await;
    assert_eq!(r.body["partners"].as_array().unwrap().len(), 1, "{r}");
    let r = s.get("/v1/identity/partners/ptn_acme").await;
    r.expect(200);
    assert_eq!(r.body["slug"], "acme-corp");
    assert_eq!(r.body["status"], "ACTIVE");
    let r = s.get("/v1/identity/tenants?partner_id=ptn_acme").await;
    r.expect(200);
    let ids: Vec<&str> = r.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tnt_acme_dev", "tnt_acme_prod"], "{r}");
    assert_eq!(r.body["total"], 2);

    // A partner admin sees only its partner; a plain user only its own tenant.
    let r = s
        .as_token(&w.alice, Method::GET, "/v1/identity/tenants", None)
        .await;
    assert_eq!(r.body["total"], 2, "{r}");
    let r = s
        .as_token(&w.alice, Method::GET, "/v1/identity/partners", None)
        .await;
    assert_eq!(r.body["total"], 1, "{r}");
    assert_eq!(r.body["partners"][0]["id"], "ptn_acme");
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/identity/tenants", None)
        .await;
    assert_eq!(r.body["total"], 1, "{r}");
    assert_eq!(r.body["tenants"][0]["id"], "tnt_acme_dev");
    s.as_token(
        &w.alice,
        Method::GET,
        "/v1/identity/tenants?partner_id=ptn_other",
        None,
    )
    .await
    .expect_error(403, "access_denied");
    s.as_token(
        &w.carol,
        Method::GET,
        "/v1/identity/partners/ptn_other",
        None,
    )
    .await
    .expect_error(404, "partner_not_found");

    // Validation and duplicates.
    s.post(
        "/v1/identity/tenants",
        &json!({"id": "bad id", "name": "x"}),
    )
    .await
    .expect_validation("id");
    s.post("/v1/identity/tenants", &json!({"partner_id": "ptn_acme"}))
        .await
        .expect_validation("name");
    s.post(
        "/v1/identity/tenants",
        &json!({"name": "x", "partner_id": "ptn_nope"}),
    )
    .await
    .expect_error(404, "partner_not_found");
    s.post(
        "/v1/identity/tenants",
        &json!({"id": "tnt_acme_dev", "partner_id": "ptn_acme", "name": "again"}),
    )
    .await
    .expect_error(409, "already_exists");
    s.post(
        "/v1/identity/tenants/tnt_acme_dev/users",
        &json!({"email": "not-an-email"}),
    )
    .await
    .expect_validation("email");
    s.post(
        "/v1/identity/tenants/tnt_acme_dev/users",
        &json!({"email": "carol@acme.example"}),
    )
    .await
    .expect_error(409, "already_exists");
    s.post(
        "/v1/identity/tenants/tnt_nope/users",
        &json!({"email": "x@y.example"}),
    )
    .await
    .expect_error(404, "tenant_not_found");
    s.post(
        "/v1/identity/partners",
        &json!({"name": "x", "surprise": 1}),
    )
    .await
    .expect_validation("surprise");

    // Groups, membership, search; group membership shows in whoami of the member's token.
    s.post(
        "/v1/identity/tenants/tnt_acme_dev/groups",
        &json!({"name": "sre", "display_name": "Site reliability"}),
    )
    .await
    .expect(201);
    s.post(
        "/v1/t/tnt_acme_dev/identity/groups/sre/members",
        &json!({"user_id": "user:carol@acme.example"}),
    )
    .await
    .expect(201);
    let r = s
        .get("/v1/t/tnt_acme_dev/identity/groups/sre/members")
        .await;
    r.expect(200);
    assert_eq!(r.body["total"], 1, "{r}");
    assert_eq!(r.body["members"][0]["user_id"], "user:carol@acme.example");
    assert_eq!(r.body["members"][0]["email"], "carol@acme.example");
    assert_eq!(r.body["members"][0]["membership_type"], "DIRECT");
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/auth/whoami", None)
        .await;
    r.expect(200);
    assert_eq!(r.body["groups"], json!(["group:sre"]), "{r}");
    assert_eq!(r.body["tenant_id"], "tnt_acme_dev");
    assert_eq!(r.body["partner_id"], "ptn_acme");
    let r = s
        .get("/v1/identity/tenants/tnt_acme_dev/users?q=CAROL")
        .await;
    assert_eq!(r.body["total"], 1, "{r}");
    assert_eq!(r.body["users"][0]["groups"], json!(["group:sre"]));
    assert_eq!(r.body["users"][0]["email"], "carol@acme.example");
    let r = s.get("/v1/identity/tenants/tnt_acme_dev/users?q=%25").await;
    assert_eq!(
        r.body["total"], 0,
        "a LIKE wildcard is searched literally: {r}"
    );
    let r = s.get("/v1/identity/tenants/tnt_acme_dev/groups").await;
    assert_eq!(r.body["groups"][0]["member_count"], 1, "{r}");
    let r = s
        .get("/v1/t/tnt_acme_dev/identity/resolve/user/carol@acme.example")
        .await;
    r.expect(200);
    assert_eq!(r.body["type"], "user");
    s.get("/v1/t/tnt_acme_dev/identity/resolve/user/nobody@acme.example")
        .await
        .expect_error(404, "identity_not_found");

    // Removing carol from the group takes effect on her next request.
    s.delete("/v1/t/tnt_acme_dev/identity/groups/sre/members/user:carol@acme.example")
        .await
        .expect(204);
    // Another node's cache would need its TTL; this node drops cached principals at once.
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/auth/whoami", None)
        .await;
    assert_eq!(r.body["groups"], json!([]), "{r}");

    // Disabling a user stops her tokens; re-enabling restores them.
    s.patch(
        "/v1/identity/tenants/tnt_acme_dev/users/carol@acme.example",
        &json!({"status": "DISABLED"}),
    )
    .await
    .expect(200);
    s.as_token(&w.carol, Method::GET, "/v1/auth/whoami", None)
        .await
        .expect_error(401, "token_revoked");
    s.patch(
        "/v1/identity/tenants/tnt_acme_dev/users/carol@acme.example",
        &json!({"status": "ACTIVE", "scopes": ["secrets:read"]}),
    )
    .await
    .expect(200);
    // Narrowing the identity's scopes narrows its existing token.
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/auth/whoami", None)
        .await;
    assert_eq!(r.body["scopes"], json!(["secrets:read"]), "{r}");

    // Suspending a tenant refuses its tokens.
    s.patch(
        "/v1/identity/tenants/tnt_other",
        &json!({"status": "SUSPENDED"}),
    )
    .await
    .expect(200);
    s.as_token(&w.dave, Method::GET, "/v1/secrets", None)
        .await
        .expect_error(403, "access_denied");
    s.patch(
        "/v1/identity/tenants/tnt_other",
        &json!({"status": "ACTIVE"}),
    )
    .await
    .expect(200);
    s.as_token(&w.dave, Method::GET, "/v1/secrets", None)
        .await
        .expect(200);

    // Every change is in the audit trail.
    let r = s
        .get("/v1/audit/logs?action=identity_tenant_create&success=true")
        .await;
    assert_eq!(r.body["logs"].as_array().map(Vec::len), Some(3), "{r}");
}

async fn roles_and_self_elevation(backend: Backend) {
    let s = spawn(backend).await;
    let w = world(&s).await;
    let r = s.get("/v1/identity/roles").await;
    r.expect(200);
    assert_eq!(r.body["roles"].as_array().unwrap().len(), 3);

    // A tenant admin cannot change roles at all; a partner admin can, within its partner.
    s.as_token(
        &w.bob,
        Method::PUT,
        "/v1/identity/users/alice@acme.example/roles",
        Some(&json!({"roles": ["tenant_admin"]})),
    )
    .await
    .expect_error(403, "access_denied");
    let hdr = [("X-Tenant-ID", "tnt_acme_dev")];
    let r = s
        .call_as(
            &w.alice,
            Method::PUT,
            "/v1/identity/users/carol@acme.example/roles",
            Some(&json!({"roles": ["tenant_admin"]})),
            &hdr,
        )
        .await;
    r.expect(200);
    let r = s
        .call_as(
            &w.alice,
            Method::GET,
            "/v1/identity/users/carol@acme.example/roles",
            None,
            &hdr,
        )
        .await;
    assert_eq!(r.body["roles"], json!(["tenant_admin"]), "{r}");
    // Only a super admin grants super_admin; nobody elevates themselves.
    s.call_as(
        &w.alice,
        Method::PUT,
        "/v1/identity/users/carol@acme.example/roles",
        Some(&json!({"roles": ["super_admin"]})),
        &hdr,
    )
    .await
    .expect_error(403, "access_denied");
    s.as_token(
        &w.alice,
        Method::PUT,
        "/v1/identity/users/alice@acme.example/roles",
        Some(&json!({"roles": ["partner_admin", "tenant_admin"]})),
    )
    .await
    .expect_error(403, "access_denied");
    s.as_token(
        &w.alice,
        Method::PUT,
        "/v1/identity/users/bob@acme.example/roles",
        Some(&json!({"roles": ["wizard"]})),
    )
    .await
    .expect_validation("roles");
    // Outside its partner a partner admin is refused.
    s.call_as(
        &w.alice,
        Method::PUT,
        "/v1/identity/users/dave@other.example/roles",
        Some(&json!({"roles": []})),
        &[("X-Tenant-ID", "tnt_other")],
    )
    .await
    .expect_error(403, "access_denied");
    // The super admin may grant super_admin.
    s.call(
        Method::PUT,
        "/v1/t/tnt_acme_dev/identity/users/carol@acme.example/roles",
        Some(&json!({"roles": ["super_admin"]})),
    )
    .await
    .expect(200);
    // Partner creation is for super admins only.
    s.as_token(
        &w.alice,
        Method::POST,
        "/v1/identity/partners",
        Some(&json!({"name": "Mine"})),
    )
    .await
    .expect_error(403, "access_denied");
    // A token for someone else needs an admin role over their tenant.
    s.as_token(
        &w.bob,
        Method::POST,
        "/v1/auth/tokens",
        Some(&json!({"identity_id": "user:carol@acme.example"})),
    )
    .await
    .expect_error(404, "identity_not_found");
    let r = s
        .as_token(
            &w.bob,
            Method::POST,
            "/v1/auth/tokens",
            Some(&json!({"identity_id": "user:alice@acme.example", "scopes": ["secrets:read"]})),
        )
        .await;
    r.expect(201);
}

async fn tenant_resolution(backend: Backend) {
    let s = spawn(backend).await;
    let w = world(&s).await;
    // A partner admin acts in a sibling tenant through the path prefix and through the header.
    s.as_token(
        &w.alice,
        Method::PUT,
        "/v1/t/tnt_acme_dev/secrets/app/db",
        Some(&json!({"data": {"password": "dev-pass"}})),
    )
    .await
    .expect(201);
    let r = s
        .call_as(
            &w.alice,
            Method::GET,
            "/v1/secrets/app/db",
            None,
            &[("X-Tenant-ID", "tnt_acme_dev")],
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["data"]["password"], "dev-pass");
    // The same path in alice's own tenant is a different secret.
    s.as_token(&w.alice, Method::GET, "/v1/secrets/app/db", None)
        .await
        .expect_error(404, "secret_not_found");
    // carol (in dev) sees what alice wrote there.
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/secrets/app/db", None)
        .await;
    assert_eq!(r.body["data"]["password"], "dev-pass", "{r}");
    // The path prefix wins over the header.
    let r = s
        .call_as(
            &w.alice,
            Method::GET,
            "/v1/t/tnt_acme_dev/secrets/app/db",
            None,
            &[("X-Tenant-ID", "tnt_acme_prod")],
        )
        .await;
    r.expect(200);
    // The audit entry of a cross-tenant write lives in the target tenant, naming alice.
    let r = s
        .call_as(
            &w.alice,
            Method::GET,
            "/v1/audit/logs?path_prefix=app/db&action=write",
            None,
            &[("X-Tenant-ID", "tnt_acme_dev")],
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.body["logs"][0]["identity_id"], "user:alice@acme.example",
        "{r}"
    );
    assert_eq!(r.body["logs"][0]["tenant_id"], "tnt_acme_dev", "{r}");

    // Without partner-admin privileges: tenant_access_denied, whether the tenant exists or not.
    for t in ["tnt_acme_prod", "tnt_nope"] {
        s.as_token(&w.carol, Method::GET, &format!("/v1/t/{t}/secrets"), None)
            .await
            .expect_error(403, "tenant_access_denied");
        s.call_as(
            &w.carol,
            Method::GET,
            "/v1/secrets",
            None,
            &[("X-Tenant-ID", t)],
        )
        .await
        .expect_error(403, "tenant_access_denied");
    }
    // bob is tenant_admin, not partner_admin: same.
    s.as_token(&w.bob, Method::GET, "/v1/t/tnt_acme_dev/secrets", None)
        .await
        .expect_error(403, "tenant_access_denied");
    // A partner admin outside its partner: access_denied; an unknown tenant: tenant_not_found.
    s.as_token(&w.alice, Method::GET, "/v1/t/tnt_other/secrets", None)
        .await
        .expect_error(403, "access_denied");
    s.as_token(&w.alice, Method::GET, "/v1/t/tnt_nope/secrets", None)
        .await
        .expect_error(404, "tenant_not_found");
    // Naming one's own tenant is always fine.
    s.as_token(&w.carol, Method::GET, "/v1/t/tnt_acme_dev/secrets", None)
        .await
        .expect(200);
    // Refusals are audited in the caller's own tenant.
    let r = s
        .get("/v1/t/tnt_acme_dev/audit/logs?action=tenant_access&success=false")
        .await;
    r.expect(200);
    assert!(r.body["logs"].as_array().unwrap().len() >= 4, "{r}");
}

async fn partner_secrets(backend: Backend) {
    let s = spawn(backend).await;
    let w = world(&s).await;
    // Partner admins write partner-scoped secrets; every tenant of the partner reads them.
    s.as_token(
        &w.alice,
        Method::PUT,
        "/v1/partner/secrets/shared/webhook-signing-key",
        Some(&json!({"data": {"key": "whsec-partner"}})),
    )
    .await
    .expect(201);
    for token in [&w.alice, &w.bob, &w.carol] {
        let r = s
            .as_token(
                token,
                Method::GET,
                "/v1/partner/secrets/shared/webhook-signing-key",
                None,
            )
            .await;
        r.expect(200);
        assert_eq!(r.body["data"]["key"], "whsec-partner");
    }
    let r = s
        .as_token(
            &w.carol,
            Method::GET,
            "/v1/partner/secrets?prefix=shared",
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["secrets"].as_array().unwrap().len(), 1, "{r}");
    let r = s
        .as_token(
            &w.carol,
            Method::POST,
            "/v1/partner/secrets/batch",
            Some(&json!({"paths": ["shared/webhook-signing-key"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.body["secrets"]["shared/webhook-signing-key"]["data"]["key"], "whsec-partner",
        "{r}"
    );
    // Only partner admins change them (a tenant admin is not enough).
    for token in [&w.bob, &w.carol] {
        s.as_token(
            token,
            Method::PUT,
            "/v1/partner/secrets/shared/webhook-signing-key",
            Some(&json!({"data": {"key": "hijacked"}})),
        )
        .await
        .expect_error(403, "access_denied");
    }
    s.as_token(
        &w.bob,
        Method::DELETE,
        "/v1/partner/secrets/shared/webhook-signing-key",
        None,
    )
    .await
    .expect_error(403, "access_denied");
    // carol's token lacks secrets:delete: the scope check comes first.
    s.as_token(
        &w.carol,
        Method::DELETE,
        "/v1/partner/secrets/shared/webhook-signing-key",
        None,
    )
    .await
    .expect_error(403, "insufficient_scope");
    // The tenant path of the same name is separate.
    s.as_token(
        &w.carol,
        Method::GET,
        "/v1/secrets/shared/webhook-signing-key",
        None,
    )
    .await
    .expect_error(404, "secret_not_found");
    // Another partner's tenants do not see it.
    s.as_token(
        &w.dave,
        Method::GET,
        "/v1/partner/secrets/shared/webhook-signing-key",
        None,
    )
    .await
    .expect_error(404, "secret_not_found");
    let r = s
        .as_token(&w.dave, Method::GET, "/v1/partner/secrets", None)
        .await;
    assert_eq!(r.body["secrets"], json!([]), "{r}");
    let r = s
        .as_token(
            &w.carol,
            Method::GET,
            "/v1/partner/secrets/shared/webhook-signing-key",
            None,
        )
        .await;
    assert_eq!(
        r.body["data"]["key"], "whsec-partner",
        "the refused writes changed nothing"
    );
}

/// Tenant B's secrets, identities and audit trail, seeded with canary strings; then every endpoint
/// is called with a token of tenant A (an admin of A holding every scope) naming B's objects. No
/// response may carry a canary, and nothing of B may change.
async fn cross_tenant_matrix(backend: Backend) {
    let s = spawn(backend).await;
    let w = world(&s).await;
    // B = tnt_other (dave). A = tnt_acme_prod (bob, tenant admin, all scopes) — and also alice, the
    // partner admin of A's partner, which is not B's.
    let canary_value = "canary-value-9f2e7";
    let b_path = "canaryb/db/password";
    s.as_token(
        &w.dave,
        Method::PUT,
        &format!("/v1/secrets/{b_path}"),
        Some(&json!({"data": {"password": canary_value}, "metadata": {"tags": ["canaryteam"]}})),
    )
    .await
    .expect(201);
    s.as_token(
        &w.dave,
        Method::PUT,
        "/v1/secrets/canaryb/other",
        Some(&json!({"data": {"x": canary_value}})),
    )
    .await
    .expect(201);
    // Never named in any request of A: only a leak could show these.
    let mut b_request_ids = Vec::new();
    let r = s.as_token(&w.dave,
        Method::PUT,
        "/v1/secrets/hiddenb/zeta",
        Some(&json!({"data": {"x": canary_value}, "metadata": {"description": "canary-desc-b", "tags": ["canaryteam"]}})),
    )
    .await;
    r.expect(201);
    b_request_ids.push(r.request_id.clone().unwrap());
    let r = s
        .as_token(&w.dave, Method::GET, &format!("/v1/secrets/{b_path}"), None)
        .await;
    r.expect(200);
    b_request_ids.push(r.request_id.clone().unwrap());
    s.as_token(
        &w.dave,
        Method::PATCH,
        "/v1/identity/tenants/tnt_other/users/dave@other.example",
        Some(&json!({"display_name": "Dave Canary"})),
    )
    .await
    .expect(200);
    s.as_token(
        &w.dave,
        Method::POST,
        "/v1/identity/tenants/tnt_other/groups",
        Some(&json!({"name": "canarygroup", "display_name": "Canary Group Display"})),
    )
    .await
    .expect(201);
    let dave_token = s
        .as_token(
            &w.dave,
            Method::POST,
            "/v1/auth/tokens",
            Some(&json!({"name": "canary-token-name"})),
        )
        .await;
    dave_token.expect(201);
    let b_token_id = dave_token.body["id"].as_str().unwrap().to_owned();
    let r = s.as_token(&w.dave,
        Method::POST,
        "/v1/policies",
        Some(&json!({"name": "canary-policy-name", "rules": [{"path_pattern": "hiddenb/**", "permissions": ["read"]}]})),
    )
    .await;
    r.expect(201);
    let b_policy = r.body["id"].as_str().unwrap().to_owned();
    s.as_token(
        &w.dave,
        Method::POST,
        &format!("/v1/policies/{b_policy}/bindings"),
        Some(&json!({"identity_type": "group", "identity_id": "group:canarygroup"})),
    )
    .await
    .expect(201);
    let mut canaries: Vec<String> = [
        "canary-policy-name",
        canary_value,
        "canaryteam",
        "canary-desc-b",
        "Dave Canary",
        "Canary Group Display",
        "canary-token-name",
        "hiddenb",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    canaries.extend(b_request_ids);

    let p = b_path;
    let body_secret = json!({"data": {"password": "overwritten"}});
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/secrets/{p}"), None),
        (Method::GET, format!("/v1/secrets/{p}?version=1"), None),
        (Method::GET, format!("/v1/secrets/{p}/metadata"), None),
        (Method::GET, format!("/v1/secrets/{p}/versions"), None),
        (Method::GET, "/v1/secrets".into(), None),
        (
            Method::GET,
            "/v1/secrets?prefix=canaryb&include_metadata=true".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/secrets?expiring_within=3650d".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/secrets/batch".into(),
            Some(json!({"paths": [p, "canaryb/other"]})),
        ),
        (
            Method::POST,
            "/v1/secrets/batch/metadata".into(),
            Some(json!({"paths": ["canaryb/**"]})),
        ),
        (
            Method::PUT,
            format!("/v1/secrets/{p}"),
            Some(body_secret.clone()),
        ),
        (
            Method::PATCH,
            format!("/v1/secrets/{p}/metadata"),
            Some(json!({"description": "x"})),
        ),
        (Method::DELETE, format!("/v1/secrets/{p}"), None),
        (
            Method::DELETE,
            format!("/v1/secrets/{p}?permanent=true"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/secrets/{p}/restore"),
            Some(json!({})),
        ),
        (Method::GET, "/v1/audit/logs".into(), None),
        (
            Method::GET,
            "/v1/audit/logs?path_prefix=canaryb".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/audit/logs?identity_id=user:dave@other.example".into(),
            None,
        ),
        (Method::GET, format!("/v1/audit/secrets/{p}"), None),
        (
            Method::GET,
            "/v1/audit/identities/user:dave@other.example".into(),
            None,
        ),
        (Method::GET, "/v1/audit/summary".into(), None),
        (Method::GET, "/v1/audit/verify".into(), None),
        (Method::GET, "/v1/auth/tokens?all=true".into(), None),
        (
            Method::GET,
            "/v1/auth/tokens?identity_id=user:dave@other.example".into(),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/auth/tokens/{b_token_id}"),
            None,
        ),
        (
            Method::POST,
            "/v1/auth/tokens".into(),
            Some(json!({"identity_id": "user:dave@other.example"})),
        ),
        (Method::GET, "/v1/identity/tenants/tnt_other".into(), None),
        (
            Method::PATCH,
            "/v1/identity/tenants/tnt_other".into(),
            Some(json!({"status": "SUSPENDED"})),
        ),
        (
            Method::GET,
            "/v1/identity/tenants/tnt_other/users".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/identity/tenants/tnt_other/users".into(),
            Some(json!({"email": "evil@acme.example"})),
        ),
        (
            Method::GET,
            "/v1/identity/tenants/tnt_other/users/dave@other.example".into(),
            None,
        ),
        (
            Method::PATCH,
            "/v1/identity/tenants/tnt_other/users/dave@other.example".into(),
            Some(json!({"status": "DISABLED"})),
        ),
        (
            Method::DELETE,
            "/v1/identity/tenants/tnt_other/users/dave@other.example".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/identity/tenants/tnt_other/groups".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/identity/tenants/tnt_other/groups/canarygroup".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/identity/groups/canarygroup/members".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/identity/groups/canarygroup/members".into(),
            Some(json!({"user_id": "user:bob@acme.example"})),
        ),
        (
            Method::GET,
            "/v1/identity/resolve/user/dave@other.example".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/identity/resolve/group/canarygroup".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/identity/users/dave@other.example/roles".into(),
            None,
        ),
        (
            Method::PUT,
            "/v1/identity/users/dave@other.example/roles".into(),
            Some(json!({"roles": []})),
        ),
        (Method::GET, "/v1/identity/partners/ptn_other".into(), None),
        (
            Method::GET,
            "/v1/identity/tenants?partner_id=ptn_other".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/partner/secrets?prefix=canaryb".into(),
            None,
        ),
        (Method::GET, "/v1/policies".into(), None),
        (
            Method::GET,
            "/v1/policies?path=canaryb/x&permission=read".into(),
            None,
        ),
        (Method::GET, format!("/v1/policies/{b_policy}"), None),
        (
            Method::PUT,
            format!("/v1/policies/{b_policy}"),
            Some(json!({"name": "x", "rules": [{"path_pattern": "**", "permissions": ["admin"]}]})),
        ),
        (
            Method::DELETE,
            format!("/v1/policies/{b_policy}?force=true"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/policies/{b_policy}/bindings"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/policies/{b_policy}/bindings"),
            Some(json!({"identity_type": "user", "identity_id": "user:bob@acme.example"})),
        ),
        (
            Method::POST,
            "/v1/policies/test".into(),
            Some(
                json!({"identity_id": "user:dave@other.example", "path": "canaryb/zeta", "permission": "read"}),
            ),
        ),
        (Method::GET, "/v1/secret-policies".into(), None),
        (Method::GET, "/v1/audit/exports".into(), None),
    ];
    let mut checked = 0;
    let mut leaks = Vec::new();
    for token in [&w.bob, &w.alice] {
        for (m, path, body) in &calls {
            // Directly, through the tenant prefix, and through the header.
            let variants = [
                (path.clone(), None),
                (format!("/v1/t/tnt_other{}", &path[3..]), None),
                (path.clone(), Some("tnt_other")),
            ];
            for (url, header) in variants {
                let headers: Vec<(&str, &str)> =
                    header.map(|h| ("X-Tenant-ID", h)).into_iter().collect();
                let r = s
                    .call_as(token, m.clone(), &url, body.as_ref(), &headers)
                    .await;
                checked += 1;
                assert!(r.status < 500, "{m} {url}: {r}");
                for c in &canaries {
                    if r.text.contains(c.as_str()) {
                        leaks.push(format!(
                            "{m} {url} (X-Tenant-ID {header:?}) → {} leaks {c}: {}",
                            r.status, r.text
                        ));
                    }
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks of {checked} calls:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    assert!(checked >= 250, "{checked}");

    // Nothing of B changed.
    let r = s
        .as_token(&w.dave, Method::GET, &format!("/v1/secrets/{b_path}"), None)
        .await;
    r.expect(200);
    assert_eq!(r.body["data"]["password"], canary_value);
    assert_eq!(r.body["version"], 1);
    let r = s
        .as_token(&w.dave, Method::GET, "/v1/auth/whoami", None)
        .await;
    r.expect(200);
    assert_eq!(r.body["roles"], json!(["tenant_admin"]));
    let r = s
        .as_token(
            &w.dave,
            Method::GET,
            "/v1/identity/tenants/tnt_other/users",
            None,
        )
        .await;
    assert_eq!(r.body["total"], 1, "no user was added to B: {r}");
    let r = s
        .as_token(
            &w.dave,
            Method::GET,
            "/v1/identity/groups/canarygroup/members",
            None,
        )
        .await;
    assert_eq!(r.body["total"], 0, "{r}");
    let r = s
        .as_token(&w.dave, Method::GET, "/v1/auth/tokens", None)
        .await;
    assert!(
        r.body["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "active"),
        "{r}"
    );
    let r = s
        .as_token(
            &w.dave,
            Method::GET,
            &format!("/v1/policies/{b_policy}"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["name"], "canary-policy-name", "{r}");
    let r = s
        .as_token(
            &w.dave,
            Method::GET,
            &format!("/v1/policies/{b_policy}/bindings"),
            None,
        )
        .await;
    assert_eq!(r.body["bindings"].as_array().map(Vec::len), Some(1), "{r}");
    let r = s
        .as_token(&w.dave, Method::GET, "/v1/audit/verify", None)
        .await;
    r.expect(200);
}

fn limit_header(r: &Resp) -> Option<u64> {
    r.headers
        .get("x-ratelimit-limit")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// Rate limits configurable per tenant: partner admins set overrides on a tenant, its identities' buckets
/// follow them at once, other tenants keep the node's limits, and a tenant cannot lift its own.
async fn tenant_rate_limits(backend: Backend) {
    let mut s = spawn(backend).await;
    // The node's own limits apply wherever a tenant has no override.
    s.rate_limits = "read=1000,list=100".into();
    s.restart().await;
    let w = world(&s).await;
    let dev = "/v1/identity/tenants/tnt_acme_dev";

    // A tenant admin cannot raise (or set) its tenant's limits; nor can anyone outside the partner.
    s.as_token(
        &w.bob,
        Method::PATCH,
        "/v1/identity/tenants/tnt_acme_prod",
        Some(&json!({"rate_limits": {"read": 0}})),
    )
    .await
    .expect_error(403, "access_denied");
    s.as_token(
        &w.dave,
        Method::PATCH,
        dev,
        Some(&json!({"rate_limits": {"read": 0}})),
    )
    .await
    .expect_error_in(&[(403, "tenant_access_denied"), (403, "access_denied")]);
    for bad in [
        json!({"rate_limits": {"reads": 5}}),
        json!({"rate_limits": {"read": -1}}),
        json!({"rate_limits": {"read": "5"}}),
        json!({"rate_limits": [5]}),
    ] {
        s.as_token(&w.alice, Method::PATCH, dev, Some(&bad))
            .await
            .expect_validation("rate_limits");
    }

    let r = s
        .as_token(
            &w.alice,
            Method::PATCH,
            dev,
            Some(&json!({"rate_limits": {"read": 2, "list": 0}})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["rate_limits"], json!({"list": 0, "read": 2}), "{r}");
    let r = s.as_token(&w.alice, Method::GET, dev, None).await;
    assert_eq!(r.body["rate_limits"], json!({"list": 0, "read": 2}), "{r}");

    s.as_token(
        &w.carol,
        Method::PUT,
        "/v1/secrets/app/x",
        Some(&json!({"data": {"k": "v"}})),
    )
    .await
    .expect(201);
    for left in [1, 0] {
        let r = s
            .as_token(&w.carol, Method::GET, "/v1/secrets/app/x", None)
            .await;
        r.expect(200);
        assert_eq!(limit_header(&r), Some(2), "{r}");
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            left.to_string().as_str(),
            "{r}"
        );
    }
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/secrets/app/x", None)
        .await;
    r.expect_error(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"), "{r}");
    assert_eq!(r.details()["limit"], 2, "{r}");
    // `0` lifts the category's limit for the tenant: no bucket, so no headers.
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/secrets?limit=1", None)
        .await;
    r.expect(200);
    assert_eq!(limit_header(&r), None, "{r}");

    // Another tenant keeps the node's limits.
    s.as_token(
        &w.dave,
        Method::PUT,
        "/v1/secrets/app/x",
        Some(&json!({"data": {"k": "v"}})),
    )
    .await
    .expect(201);
    let r = s
        .as_token(&w.dave, Method::GET, "/v1/secrets/app/x", None)
        .await;
    r.expect(200);
    assert_eq!(limit_header(&r), Some(1000), "{r}");

    // `null` returns the tenant to the node's limits, at once on this node.
    let r = s
        .as_token(
            &w.alice,
            Method::PATCH,
            dev,
            Some(&json!({"rate_limits": null})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["rate_limits"], Value::Null, "{r}");
    let r = s
        .as_token(&w.carol, Method::GET, "/v1/secrets?limit=1", None)
        .await;
    r.expect(200);
    assert_eq!(limit_header(&r), Some(100), "{r}");

    // Overrides can be given when the tenant is created, and survive a restart.
    let r = s.as_token(&w.alice,
        Method::POST,
        "/v1/identity/tenants",
        Some(&json!({"id": "tnt_acme_bench", "partner_id": "ptn_acme", "name": "bench", "rate_limits": {"all_reads_please": 1}})),
    )
    .await;
    r.expect_validation("rate_limits");
    s.as_token(&w.alice,
        Method::POST,
        "/v1/identity/tenants",
        Some(&json!({"id": "tnt_acme_bench", "partner_id": "ptn_acme", "name": "bench", "rate_limits": {"read": 0, "write": 0}})),
    )
    .await
    .expect(201);
    s.restart().await;
    let r = s.get("/v1/identity/tenants/tnt_acme_bench").await;
    r.expect(200);
    assert_eq!(r.body["rate_limits"], json!({"read": 0, "write": 0}), "{r}");
}
