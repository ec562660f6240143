//! The `scaivault` commands not covered in `cli.rs`, `policies.rs`, `audit.rs` and `audit_export.rs`,
//! black-box against a real server: `secret-policies …`, `policies update|bindings`, and the `--json`
//! output (plus an error exit code) of every command whose tests only looked at tables so far.

use serde_json::{json, Value};

use crate::cli::Cli;
use crate::harness::{spawn, Backend, TestServer};

/// A personal access token of the admin identity with only `scopes`, minted through the API.
async fn token_with(srv: &TestServer, scopes: &[&str]) -> String {
    let r = srv
        .post(
            "/v1/auth/tokens",
            &json!({"name": "cli coverage", "scopes": scopes}),
        )
        .await;
    r.expect(201);
    r.body["token"].as_str().unwrap().to_owned()
}

/// Writes `v` as `name` in the client's working directory and returns its path.
fn file(cli: &Cli, name: &str, v: &Value) -> String {
    let p = cli.cwd().join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_owned()
}

fn strong_policy() -> Value {
    json!({
        "name": "db-passwords",
        "policy_type": "password",
        "description": "strong",
        "fields": [{"name": "password", "generator": "random",
                    "config": {"length": 12, "require_upper": true, "require_digit": true}}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_policies_commands() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let f = file(&cli, "sp.json", &strong_policy());

    // create: --json is the server's object; the table form names the new id.
    let created = cli
        .run(&["--json", "secret-policies", "create", "--file", &f])
        .await
        .ok()
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sp_"), "{created}");
    assert_eq!(created["fields"][0]["config"]["length"], 12);
    let out = cli
        .run_stdin(
            &["secret-policies", "create", "--file", "-"],
            &json!({"name": "keys", "fields": [{"name": "key", "generator": "hex"}]}).to_string(),
        )
        .await;
    out.ok();
    assert!(out.stdout.starts_with("Created secret policy sp_"), "{out}");
    let other = out.stdout.trim().rsplit(' ').next().unwrap().to_owned();

    // list / get, as tables and as JSON.
    let out = cli.run(&["secret-policies", "list"]).await;
    out.ok();
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("FIELDS"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&id) && out.stdout.contains("db-passwords"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&other) && out.stdout.contains("password"),
        "{out}"
    );
    let listed = cli
        .run(&["--json", "secret-policies", "list"])
        .await
        .ok()
        .json();
    let ids: Vec<&str> = listed["secret_policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&other.as_str()));
    let out = cli.run(&["secret-policies", "get", &id]).await;
    out.ok();
    assert!(
        out.stdout.contains("type:") && out.stdout.contains("password"),
        "{out}"
    );
    assert!(
        out.stdout.contains("random") && out.stdout.contains("\"length\":12"),
        "{out}"
    );
    let got = cli
        .run(&["secret-policies", "get", &id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(got["name"], "db-passwords");
    assert_eq!(got["policy_type"], "password");

    // attach: writes of the secret must then follow the rules (the value is never echoed).
    srv.write_kv("db/main", json!({"password": "weak"})).await;
    let att = cli
        .run(&["--json", "secret-policies", "attach", &id, "db/main"])
        .await
        .ok()
        .json();
    assert_eq!(att, json!({"path": "db/main", "secret_policy_id": id}));
    let out = cli
        .run(&["secrets", "write", "db/main", "password=short1A"])
        .await;
    out.server_error(5, "validation_error");
    assert!(
        out.stderr.contains("data.password") && !out.stderr.contains("short1A"),
        "{out}"
    );
    cli.run(&["secrets", "write", "db/main", "password=Long-enough-1"])
        .await
        .ok();
    let out = cli
        .run(&["secret-policies", "attach", &other, "db/main"])
        .await;
    out.ok();
    assert!(out.stdout.contains("Attached secret policy"), "{out}");
    assert_eq!(
        srv.get("/v1/secrets/db/main/metadata").await.body["secret_policy_id"],
        json!(other)
    );
    cli.run(&["secret-policies", "attach", &id, "db/main"])
        .await
        .ok();

    // update replaces the recipe; the attachment stays.
    let mut relaxed = strong_policy();
    relaxed["fields"][0]["config"] = json!({"length": 4});
    relaxed["name"] = json!("relaxed");
    let rf = file(&cli, "relaxed.json", &relaxed);
    let upd = cli
        .run(&["--json", "secret-policies", "update", &id, "--file", &rf])
        .await
        .ok()
        .json();
    assert_eq!(upd["name"], "relaxed");
    assert_eq!(upd["fields"][0]["config"], json!({"length": 4}));
    assert_eq!(upd["created_at"], created["created_at"]);
    let out = cli
        .run(&["secret-policies", "update", &id, "--file", &f])
        .await;
    out.ok();
    assert_eq!(out.stdout.trim(), format!("Updated secret policy {id}"));
    cli.run(&["secret-policies", "update", &id, "--file", &rf])
        .await
        .ok();
    cli.run(&["secrets", "write", "db/main", "password=abcd"])
        .await
        .ok();

    // detach, as JSON and as text.
    let det = cli
        .run(&["--json", "secret-policies", "detach", "db/main"])
        .await
        .ok()
        .json();
    assert_eq!(det, json!({"path": "db/main", "secret_policy_id": null}));
    let out = cli.run(&["secret-policies", "detach", "db/main"]).await;
    out.ok();
    assert!(out.stdout.starts_with("Detached"), "{out}");
    cli.run(&["secrets", "write", "db/main", "password=a"])
        .await
        .ok();

    // Errors: validation (5) with the field named, not found (4), bad file (5, no request).
    let bad = file(
        &cli,
        "bad.json",
        &json!({"name": "x", "fields": [{"name": "a", "generator": "magic"}]}),
    );
    let out = cli
        .run(&["secret-policies", "create", "--file", &bad])
        .await;
    out.server_error(5, "validation_error");
    assert!(out.stderr.contains("fields[0].generator"), "{out}");
    cli.run(&["secret-policies", "update", &id, "--file", &bad])
        .await
        .server_error(5, "validation_error");
    std::fs::write(cli.cwd().join("broken.json"), "{not json").unwrap();
    cli.run(&["secret-policies", "create", "--file", "broken.json"])
        .await
        .error(5, "invalid_argument");
    cli.run(&["secret-policies", "create", "--file", "missing.json"])
        .await
        .error(5, "invalid_argument");
    cli.run(&["secret-policies", "get", "sp_nope"])
        .await
        .server_error(4, "secret_policy_not_found");
    cli.run(&["secret-policies", "update", "sp_nope", "--file", &f])
        .await
        .server_error(4, "secret_policy_not_found");
    cli.run(&["secret-policies", "attach", "sp_nope", "db/main"])
        .await
        .server_error(4, "secret_policy_not_found");
    cli.run(&["secret-policies", "attach", &id, "db/none"])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secret-policies", "detach", "/bad/"])
        .await
        .server_error(5, "invalid_path");
    let out = cli
        .run(&["--json", "secret-policies", "get", "sp_nope"])
        .await;
    out.code(4);
    assert!(out.stdout.is_empty(), "errors go to stderr only: {out}");

    // Authorisation: 3 without the scope, 2 with a bad token.
    let reader = token_with(&srv, &["policies:read"]).await;
    let as_reader = [("SCAIVAULT_TOKEN", reader.as_str())];
    cli.run_env(&["secret-policies", "get", &id], &as_reader)
        .await
        .ok();
    cli.run_env(&["secret-policies", "create", "--file", &f], &as_reader)
        .await
        .server_error(3, "insufficient_scope");
    cli.run_env(&["secret-policies", "delete", &id], &as_reader)
        .await
        .server_error(3, "insufficient_scope");
    cli.run_env(
        &["secret-policies", "list"],
        &[("SCAIVAULT_TOKEN", "skt_not_a_valid_token_000000000000")],
    )
    .await
    .server_error(2, "token_invalid");

    // delete, as JSON and as text; then it is gone.
    let del = cli
        .run(&["--json", "secret-policies", "delete", &id])
        .await
        .ok()
        .json();
    assert_eq!(del, json!({"id": id, "deleted": true}));
    let out = cli.run(&["secret-policies", "delete", &other]).await;
    out.ok();
    assert_eq!(out.stdout.trim(), format!("Deleted secret policy {other}"));
    cli.run(&["secret-policies", "get", &id])
        .await
        .server_error(4, "secret_policy_not_found");
    cli.run(&["secret-policies", "delete", &id])
        .await
        .server_error(4, "secret_policy_not_found");
    let listed = cli
        .run(&["--json", "secret-policies", "list"])
        .await
        .ok()
        .json();
    assert_eq!(listed, json!({"secret_policies": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_update_bindings_and_json_output() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let r = srv
        .post(
            "/v1/policies",
            &json!({"name": "cli-pol", "rules": [{"path_pattern": "app/*", "permissions": ["read"]}]}),
        )
        .await;
    r.expect(201);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // list / get --json
    let listed = cli.run(&["--json", "policies", "list"]).await.ok().json();
    assert!(
        listed["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str()),
        "{listed}"
    );
    let got = cli
        .run(&["--json", "policies", "get", &id])
        .await
        .ok()
        .json();
    assert_eq!(got["rules"][0]["path_pattern"], "app/*");

    // update: PATCH by default (only the given keys), PUT with --replace.
    let patch = file(&cli, "patch.json", &json!({"description": "patched"}));
    let upd = cli
        .run(&["--json", "policies", "update", &id, "--file", &patch])
        .await
        .ok()
        .json();
    assert_eq!(upd["description"], "patched");
    assert_eq!(upd["name"], "cli-pol");
    let replace = file(
        &cli,
        "replace.json",
        &json!({"name": "cli-pol-2", "rules": [{"path_pattern": "svc/**", "permissions": ["read", "list"]}]}),
    );
    let out = cli
        .run(&["policies", "update", &id, "--file", &replace, "--replace"])
        .await;
    out.ok();
    assert_eq!(out.stdout.trim(), format!("Updated policy {id}"));
    let now = srv.get(&format!("/v1/policies/{id}")).await;
    assert_eq!(now.body["name"], "cli-pol-2");
    assert_eq!(now.body["rules"][0]["path_pattern"], "svc/**");
    assert_eq!(
        now.body["description"],
        Value::Null,
        "PUT replaces: {now:?}"
    );
    cli.run(&["policies", "update", &id, "--file", &patch, "--replace"])
        .await
        .server_error(5, "validation_error");
    cli.run(&["policies", "update", "pol_nope", "--file", &patch])
        .await
        .server_error(4, "policy_not_found");
    cli.run(&["policies", "update", &id, "--file", "nope.json"])
        .await
        .error(5, "invalid_argument");

    // bindings: table and JSON; bind / unbind --json.
    let bound = cli
        .run(&["--json", "policies", "bind", &id, "group:devs"])
        .await
        .ok()
        .json();
    let bid = bound["id"].as_str().unwrap().to_owned();
    let out = cli.run(&["policies", "bindings", &id]).await;
    out.ok();
    assert!(
        out.stdout.starts_with("BINDING") && out.stdout.contains(&bid),
        "{out}"
    );
    assert!(out.stdout.contains("group:devs"), "{out}");
    let bindings = cli
        .run(&["--json", "policies", "bindings", &id])
        .await
        .ok()
        .json();
    assert_eq!(bindings["bindings"][0]["identity_id"], "group:devs");
    assert_eq!(bindings["bindings"].as_array().unwrap().len(), 1);
    cli.run(&["policies", "bindings", "pol_nope"])
        .await
        .server_error(4, "policy_not_found");

    // test --json: allowed → 0, denied → 3 with the decision still on stdout.
    let allowed = cli
        .run(&["--json", "policies", "test", "group:devs", "svc/a/b"])
        .await;
    assert_eq!(allowed.ok().json()["allowed"], true);
    let denied = cli
        .run(&[
            "--json",
            "policies",
            "test",
            "group:devs",
            "svc/a",
            "--permission",
            "write",
        ])
        .await;
    denied.code(3);
    assert_eq!(denied.json()["allowed"], false, "{denied}");

    let unbound = cli.run(&["--json", "policies", "unbind", &id, &bid]).await;
    unbound.ok();
    assert!(unbound.stdout.trim().is_empty() || unbound.json().is_object());
    assert_eq!(
        srv.get(&format!("/v1/policies/{id}/bindings")).await.body["bindings"],
        json!([])
    );
    cli.run(&["policies", "unbind", &id, &bid])
        .await
        .server_error(4, "binding_not_found");
    let del = cli
        .run(&["--json", "policies", "delete", &id, "--force"])
        .await
        .ok()
        .json();
    assert_eq!(del["id"], id.as_str());
    assert_eq!(del["deleted"], true);
    cli.run(&["--json", "policies", "delete", &id])
        .await
        .server_error(4, "policy_not_found");
}

/// `--json` of the commands whose tests only read tables: config set, auth login/logout,
/// tokens list/revoke, service-accounts list/delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_of_the_remaining_commands() {
    let srv = spawn(Backend::Sqlite).await;

    let cli = Cli::new();
    let set = cli
        .run(&["--json", "config", "set", "base_url", &srv.base_url])
        .await
        .ok()
        .json();
    assert_eq!(set["key"], "base_url");
    assert_eq!(set["value"], srv.base_url.as_str());
    cli.run(&["--json", "config", "set", "colour", "x"])
        .await
        .error(5, "unknown_config_key");
    let login = cli
        .run(&["--json", "auth", "login", "--token", &srv.admin_token])
        .await
        .ok()
        .json();
    assert!(login["identity_id"].is_string(), "{login}");
    assert_eq!(cli.read_config()["token"], srv.admin_token.as_str());
    cli.run(&[
        "--json",
        "auth",
        "login",
        "--token",
        "skt_not_a_valid_token_000000000000",
    ])
    .await
    .server_error(2, "token_invalid");

    // tokens list / revoke --json
    let made = srv
        .post(
            "/v1/auth/tokens",
            &json!({"name": "listed", "scopes": ["secrets:read"]}),
        )
        .await;
    made.expect(201);
    let tid = made.body["id"].as_str().unwrap().to_owned();
    let tokens = cli.run(&["--json", "tokens", "list"]).await.ok().json();
    let item = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tid.as_str())
        .unwrap_or_else(|| panic!("{tid} not in {tokens}"))
        .clone();
    assert_eq!(item["name"], "listed");
    assert!(
        item.get("token").is_none(),
        "a listed token has no value: {item}"
    );
    let revoked = cli
        .run(&["--json", "tokens", "revoke", &tid])
        .await
        .ok()
        .json();
    assert_eq!(revoked["id"], tid.as_str());
    assert_eq!(revoked["revoked"], true);
    cli.run(&[
        "--json",
        "tokens",
        "list",
        "--identity",
        "user:nobody@x.example",
    ])
    .await
    .ok();
    let reader = token_with(&srv, &["secrets:read"]).await;
    cli.run_env(
        &["tokens", "create", "--scope", "admin"],
        &[("SCAIVAULT_TOKEN", reader.as_str())],
    )
    .await
    .code(5);

    // service-accounts list / delete --json
    let sa = srv
        .post(
            "/v1/identity/service-accounts",
            &json!({"name": "lister", "scopes": ["secrets:read"]}),
        )
        .await;
    sa.expect(201);
    let accounts = cli
        .run(&["--json", "service-accounts", "list"])
        .await
        .ok()
        .json();
    let listed = &accounts["service_accounts"];
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "sa:lister" && a.get("client_secret").is_none()),
        "{accounts}"
    );
    let off = cli
        .run(&["--json", "service-accounts", "delete", "lister"])
        .await
        .ok()
        .json();
    assert_eq!(off["id"], "sa:lister");
    assert_eq!(off["disabled"], true);
    cli.run(&["--json", "service-accounts", "delete", "nobody"])
        .await
        .server_error(4, "not_found");
    cli.run(&["--json", "service-accounts", "rotate-secret", "nobody"])
        .await
        .server_error(4, "not_found");
    cli.run_env(
        &["service-accounts", "list"],
        &[("SCAIVAULT_TOKEN", reader.as_str())],
    )
    .await
    .server_error(3, "insufficient_scope");

    let out = cli.run(&["--json", "auth", "logout"]).await.ok().json();
    assert_eq!(out["logged_out"], true);
    assert!(cli.read_config().get("token").is_none());
    cli.run(&["auth", "whoami"])
        .await
        .error(2, "authentication_required");
}

/// `scaivault identity …`: partners, tenants, users, groups, members, roles, resolve, sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_commands() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let who = srv.get("/v1/auth/whoami").await;
    let tenant = who.body["tenant_id"].as_str().unwrap().to_owned();
    let partner = who.body["partner_id"].as_str().unwrap().to_owned();

    // partners
    let p = cli
        .run(&[
            "--json", "identity", "partners", "create", "Acme", "--id", "ptn_acme", "--slug",
            "acme", "--region", "eu",
        ])
        .await
        .ok()
        .json();
    assert_eq!(p["id"], "ptn_acme");
    assert_eq!(p["region"], "eu");
    let out = cli.run(&["identity", "partners", "list"]).await;
    out.ok();
    assert!(
        out.stdout.starts_with("ID") && out.stdout.contains("ptn_acme"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&partner) && out.stdout.contains("total: 2"),
        "{out}"
    );
    let listed = cli
        .run(&["--json", "identity", "partners", "list", "--page-size", "1"])
        .await
        .ok()
        .json();
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["partners"].as_array().unwrap().len(), 1);
    let out = cli.run(&["identity", "partners", "get", "ptn_acme"]).await;
    out.ok();
    assert!(
        out.stdout.contains("name:") && out.stdout.contains("Acme"),
        "{out}"
    );
    let got = cli
        .run(&["--json", "identity", "partners", "get", "ptn_acme"])
        .await
        .ok()
        .json();
    assert_eq!(got["slug"], "acme");
    cli.run(&["identity", "partners", "get", "ptn_nope"])
        .await
        .server_error(4, "partner_not_found");
    cli.run(&["identity", "partners", "create", "Acme", "--id", "ptn_acme"])
        .await
        .server_error(5, "already_exists");

    // tenants
    let t = cli
        .run(&[
            "--json",
            "identity",
            "tenants",
            "create",
            "prod",
            "--id",
            "tnt_prod",
            "--partner",
            "ptn_acme",
        ])
        .await
        .ok()
        .json();
    assert_eq!(t["partner_id"], "ptn_acme");
    let t = cli
        .run(&[
            "--json",
            "identity",
            "tenants",
            "list",
            "--partner",
            "ptn_acme",
        ])
        .await
        .ok()
        .json();
    assert_eq!(t["total"], 1);
    assert_eq!(t["tenants"][0]["id"], "tnt_prod");
    let out = cli
        .run(&["identity", "tenants", "list", "--partner", "ptn_acme"])
        .await;
    out.ok();
    assert!(
        out.stdout.contains("tnt_prod") && out.stdout.contains("total: 1"),
        "{out}"
    );
    let t = cli
        .run(&["--json", "identity", "tenants", "get", "tnt_prod"])
        .await
        .ok()
        .json();
    assert_eq!(t["name"], "prod");
    let t = cli
        .run(&[
            "--json",
            "identity",
            "tenants",
            "update",
            "tnt_prod",
            "--status",
            "SUSPENDED",
        ])
        .await
        .ok()
        .json();
    assert_eq!(t["status"], "SUSPENDED");
    cli.run(&[
        "identity", "tenants", "update", "tnt_prod", "--status", "sleepy",
    ])
    .await
    .server_error(5, "validation_error");
    cli.run(&[
        "identity",
        "tenants",
        "create",
        "bad",
        "--id",
        "not a tenant id",
    ])
    .await
    .server_error(5, "validation_error");
    cli.run(&["identity", "tenants", "get", "tnt_nope"])
        .await
        .server_error(4, "tenant_not_found");
    // Per-tenant rate limits: set, shown, refused when malformed, cleared.
    let t = cli
        .run(&[
            "--json",
            "identity",
            "tenants",
            "update",
            "tnt_prod",
            "--rate-limit",
            "read=5000",
            "--rate-limit",
            "write=0",
        ])
        .await
        .ok()
        .json();
    assert_eq!(t["rate_limits"], json!({"read": 5000, "write": 0}));
    cli.run(&[
        "identity",
        "tenants",
        "update",
        "tnt_prod",
        "--rate-limit",
        "read",
    ])
    .await
    .error(5, "invalid_argument");
    cli.run(&[
        "identity",
        "tenants",
        "update",
        "tnt_prod",
        "--rate-limit",
        "reads=5",
    ])
    .await
    .server_error(5, "validation_error");
    let t = cli
        .run(&[
            "--json",
            "identity",
            "tenants",
            "update",
            "tnt_prod",
            "--clear-rate-limits",
        ])
        .await
        .ok()
        .json();
    assert_eq!(t["rate_limits"], Value::Null);

    // groups and users in the token's own tenant (no --tenant: found through whoami)
    let g = cli
        .run(&[
            "--json",
            "identity",
            "groups",
            "create",
            "sre",
            "--display-name",
            "SRE",
        ])
        .await
        .ok()
        .json();
    assert_eq!(g["id"], "group:sre");
    let u = cli
        .run(&[
            "--json",
            "identity",
            "users",
            "create",
            "alice@acme.example",
            "--display-name",
            "Alice",
            "--scope",
            "secrets:read",
            "--role",
            "tenant_admin",
            "--group",
            "group:sre",
        ])
        .await
        .ok()
        .json();
    assert_eq!(u["id"], "user:alice@acme.example");
    assert_eq!(u["groups"], json!(["group:sre"]));
    let users = cli
        .run(&[
            "--json", "identity", "users", "list", "--tenant", &tenant, "--query", "ALICE",
        ])
        .await
        .ok()
        .json();
    assert_eq!(users["total"], 1);
    let out = cli.run(&["identity", "users", "list"]).await;
    out.ok();
    assert!(out.stdout.contains("user:alice@acme.example"), "{out}");
    let out = cli
        .run(&["identity", "users", "get", "alice@acme.example"])
        .await;
    out.ok();
    assert!(
        out.stdout.contains("display_name:") && out.stdout.contains("Alice"),
        "{out}"
    );
    let u = cli
        .run(&[
            "--json",
            "identity",
            "users",
            "update",
            "user:alice@acme.example",
            "--display-name",
            "Alice A.",
        ])
        .await
        .ok()
        .json();
    assert_eq!(u["display_name"], "Alice A.");
    let u = cli
        .run(&["--json", "identity", "users", "get", "alice@acme.example"])
        .await
        .ok()
        .json();
    assert_eq!(u["display_name"], "Alice A.");
    assert_eq!(u["roles"], json!(["tenant_admin"]));
    cli.run(&[
        "identity",
        "users",
        "update",
        "bob@acme.example",
        "--display-name",
        "B",
    ])
    .await
    .server_error(4, "identity_not_found");
    cli.run(&["identity", "groups", "create", "sre"])
        .await
        .server_error(5, "already_exists");
    cli.run(&["identity", "users", "create", "not-an-email"])
        .await
        .server_error(5, "validation_error");
    cli.run(&["identity", "users", "get", "bob@acme.example"])
        .await
        .server_error(4, "identity_not_found");
    let out = cli.run(&["identity", "groups", "list"]).await;
    out.ok();
    assert!(
        out.stdout.contains("group:sre") && out.stdout.contains("SRE"),
        "{out}"
    );
    let groups = cli
        .run(&["--json", "identity", "groups", "list", "--tenant", &tenant])
        .await
        .ok()
        .json();
    assert_eq!(groups["groups"][0]["member_count"], 1);

    // members
    let m = cli
        .run(&["--json", "identity", "members", "list", "sre"])
        .await
        .ok()
        .json();
    assert_eq!(m["members"][0]["user_id"], "user:alice@acme.example");
    let out = cli
        .run(&["identity", "members", "remove", "sre", "alice@acme.example"])
        .await;
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "Removed user:alice@acme.example from group:sre"
    );
    let added = cli
        .run(&[
            "--json",
            "identity",
            "members",
            "add",
            "group:sre",
            "alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(added["added"], true);
    let out = cli.run(&["identity", "members", "list", "sre"]).await;
    out.ok();
    assert!(out.stdout.contains("user:alice@acme.example"), "{out}");
    let removed = cli
        .run(&[
            "--json",
            "identity",
            "members",
            "remove",
            "sre",
            "alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(removed["removed"], true);
    cli.run(&["identity", "members", "list", "nogroup"])
        .await
        .server_error(4, "identity_not_found");
    cli.run(&[
        "identity",
        "members",
        "add",
        "nogroup",
        "alice@acme.example",
    ])
    .await
    .server_error(4, "identity_not_found");

    // roles, user-roles, resolve, sync
    let out = cli.run(&["identity", "roles"]).await;
    out.ok();
    assert!(
        out.stdout.contains("tenant_admin") && out.stdout.contains("super_admin"),
        "{out}"
    );
    let roles = cli.run(&["--json", "identity", "roles"]).await.ok().json();
    cli.run_env(
        &["identity", "roles"],
        &[("SCAIVAULT_TOKEN", "skt_not_a_valid_token_000000000000")],
    )
    .await
    .server_error(2, "token_invalid");
    cli.run(&["identity", "user-roles", "get", "nobody@acme.example"])
        .await
        .server_error(4, "identity_not_found");
    assert_eq!(roles["roles"].as_array().unwrap().len(), 3);
    let r = cli
        .run(&[
            "--json",
            "identity",
            "user-roles",
            "get",
            "alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(r["roles"], json!(["tenant_admin"]));
    let r = cli
        .run(&[
            "--json",
            "identity",
            "user-roles",
            "set",
            "alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(r["roles"], json!([]));
    let out = cli
        .run(&[
            "identity",
            "user-roles",
            "set",
            "alice@acme.example",
            "tenant_admin",
        ])
        .await;
    out.ok();
    assert!(out.stdout.contains("tenant_admin"), "{out}");
    cli.run(&[
        "identity",
        "user-roles",
        "set",
        "alice@acme.example",
        "emperor",
    ])
    .await
    .server_error(5, "validation_error");
    let res = cli
        .run(&[
            "--json",
            "identity",
            "resolve",
            "user",
            "user:alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(res["email"], "alice@acme.example");
    cli.run(&["identity", "resolve", "user", "user:nobody@acme.example"])
        .await
        .server_error(4, "identity_not_found");
    let s = cli
        .run(&["--json", "identity", "sync", "--tenant", &tenant])
        .await
        .ok()
        .json();
    assert_eq!(s["status"], "completed");
    let out = cli.run(&["identity", "sync"]).await;
    out.ok();
    assert!(out.stdout.contains("sync_id:"), "{out}");

    // disable / delete, and authorisation
    let reader = token_with(&srv, &["identity:read"]).await;
    let as_reader = [("SCAIVAULT_TOKEN", reader.as_str())];
    cli.run_env(&["identity", "users", "list"], &as_reader)
        .await
        .ok();
    cli.run_env(
        &["identity", "users", "disable", "alice@acme.example"],
        &as_reader,
    )
    .await
    .server_error(3, "insufficient_scope");
    cli.run_env(&["identity", "sync"], &as_reader)
        .await
        .server_error(3, "insufficient_scope");
    let off = cli
        .run(&[
            "--json",
            "identity",
            "users",
            "disable",
            "alice@acme.example",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        off,
        json!({"id": "user:alice@acme.example", "disabled": true})
    );
    let u = srv
        .get(&format!(
            "/v1/identity/tenants/{tenant}/users/user:alice@acme.example"
        ))
        .await;
    assert_eq!(u.body["status"], "DISABLED");
    let out = cli.run(&["identity", "groups", "delete", "sre"]).await;
    out.ok();
    assert_eq!(out.stdout.trim(), "Deleted group:sre");
    cli.run(&["--json", "identity", "groups", "delete", "sre"])
        .await
        .server_error(4, "identity_not_found");
    cli.run(&["identity", "users", "disable", "carol@acme.example"])
        .await
        .server_error(4, "identity_not_found");
}

/// `scaivault system …` and `scaivault auth introspect|jwks|rotate-keys`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_and_issuer_commands() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let anon = Cli::new().env("SCAIVAULT_URL", &srv.base_url);

    let h = anon.run(&["--json", "system", "health"]).await.ok().json();
    assert_eq!(h["status"], "healthy");
    let out = anon.run(&["system", "health"]).await;
    out.ok();
    assert!(
        out.stdout.contains("status:") && out.stdout.contains("healthy"),
        "{out}"
    );
    let r = anon.run(&["--json", "system", "ready"]).await.ok().json();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["database"], "ok");
    anon.run(&["system", "detailed"])
        .await
        .error(2, "authentication_required");
    let d = cli.run(&["--json", "system", "detailed"]).await.ok().json();
    assert_eq!(d["checks"]["database"]["backend"], "sqlite");
    let out = cli.run(&["system", "detailed"]).await;
    out.ok();
    assert!(out.stdout.contains("uptime_seconds:"), "{out}");
    let v = cli.run(&["--json", "system", "version"]).await.ok().json();
    assert_eq!(v["api_version"], "v1");
    assert_eq!(v["version"], d["version"]);
    let out = cli.run(&["system", "version"]).await;
    out.ok();
    assert!(
        out.stdout.contains("api_version:") && out.stdout.contains("v1"),
        "{out}"
    );
    let dead = Cli::new().env("SCAIVAULT_URL", &crate::cli::dead_url());
    dead.run(&["system", "health"])
        .await
        .error(1, "connection_failed");
    dead.run(&["--json", "auth", "jwks"])
        .await
        .error(1, "connection_failed");
    let reader = token_with(&srv, &["secrets:read"]).await;
    let as_reader = [("SCAIVAULT_TOKEN", reader.as_str())];
    cli.run_env(
        &["system", "detailed"],
        &[("SCAIVAULT_TOKEN", "skt_not_a_valid_token_000000000000")],
    )
    .await
    .server_error(2, "token_invalid");

    // introspect: active → 0 with the identity; inactive → 2; needs admin (3 without).
    let i = cli
        .run(&["--json", "auth", "introspect", &reader])
        .await
        .ok()
        .json();
    assert_eq!(i["active"], true);
    assert_eq!(i["scopes"], json!(["secrets:read"]));
    let out = cli.run_stdin(&["auth", "introspect"], &reader).await;
    out.ok();
    assert!(out.stdout.contains("identity_id:"), "{out}");
    let out = cli
        .run(&[
            "--json",
            "auth",
            "introspect",
            "skt_not_a_valid_token_000000000000",
        ])
        .await;
    out.error(2, "token_inactive");
    assert_eq!(out.json(), json!({"active": false}));
    cli.run_env(&["auth", "introspect", &reader], &as_reader)
        .await
        .server_error(3, "insufficient_scope");

    // jwks (no token needed) and rotate-keys (admin)
    let before = anon.run(&["--json", "auth", "jwks"]).await.ok().json();
    let kids = |v: &Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old = kids(&before);
    assert!(!old.is_empty(), "{before}");
    let rotated = cli
        .run(&["--json", "auth", "rotate-keys"])
        .await
        .ok()
        .json();
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    assert!(!old.contains(&kid));
    let out = anon.run(&["auth", "jwks"]).await;
    out.ok();
    assert!(
        out.stdout.starts_with("KID") && out.stdout.contains(&kid),
        "{out}"
    );
    assert!(old.iter().all(|k| out.stdout.contains(k.as_str())), "{out}");
    let out = cli.run(&["auth", "rotate-keys"]).await;
    out.ok();
    assert!(
        out.stdout.contains("kid:") && out.stdout.contains(&kid),
        "{out}"
    );
    cli.run_env(&["auth", "rotate-keys"], &as_reader)
        .await
        .server_error(3, "insufficient_scope");
}

/// `scaivault secrets update-metadata|batch-read|batch-metadata`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_metadata_and_batch_commands() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    srv.write_kv("app/db", json!({"user": "app", "password": "pw-db-1"}))
        .await;
    srv.write_kv("app/api", json!({"key": "k-api-1"})).await;
    srv.write_kv("other/x", json!({"v": "1"})).await;

    // update-metadata: no new version; --json is the metadata view.
    let m = cli
        .run(&[
            "--json",
            "secrets",
            "update-metadata",
            "app/db",
            "--description",
            "primary",
            "--tag",
            "db",
            "--tag",
            "prod",
            "--owner",
            "team:db",
            "--max-versions",
            "5",
        ])
        .await
        .ok()
        .json();
    assert_eq!(m["metadata"]["description"], "primary");
    assert_eq!(m["metadata"]["tags"], json!(["db", "prod"]));
    assert_eq!(m["max_versions"], 5);
    assert_eq!(m["version"], 1, "metadata changes make no version: {m}");
    let out = cli
        .run(&[
            "secrets",
            "update-metadata",
            "app/db",
            "--owner",
            "team:platform",
        ])
        .await;
    out.ok();
    assert!(
        out.stdout.contains("owner:") && out.stdout.contains("team:platform"),
        "{out}"
    );
    let now = srv.get("/v1/secrets/app/db/metadata").await;
    assert_eq!(now.body["metadata"]["owner"], "team:platform");
    assert_eq!(now.body["version"], 1);
    cli.run(&["secrets", "update-metadata", "app/none", "--tag", "x"])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&[
        "secrets",
        "update-metadata",
        "app/db",
        "--max-versions",
        "0",
    ])
    .await
    .server_error(5, "validation_error");

    // batch-read: partial success (exit 0) with the failures listed; values only in --json.
    let out = cli
        .run(&["secrets", "batch-read", "app/db", "app/api", "app/none"])
        .await;
    out.ok();
    assert!(out.stdout.starts_with("PATH"), "{out}");
    assert!(
        out.stdout.contains("app/db") && out.stdout.contains("password,user"),
        "{out}"
    );
    assert!(
        out.stdout.contains("app/none") && out.stdout.contains("secret_not_found"),
        "{out}"
    );
    assert!(
        !out.stdout.contains("pw-db-1") && !out.stdout.contains("k-api-1"),
        "{out}"
    );
    let b = cli
        .run(&["--json", "secrets", "batch-read", "app/db", "app/none"])
        .await
        .ok()
        .json();
    assert_eq!(b["secrets"]["app/db"]["data"]["password"], "pw-db-1");
    assert_eq!(b["errors"]["app/none"]["code"], "secret_not_found");
    assert_eq!(
        (b["retrieved"].clone(), b["failed"].clone()),
        (json!(1), json!(1))
    );
    let b = cli
        .run(&[
            "--json",
            "secrets",
            "batch-read",
            "app/api",
            "--include-metadata",
        ])
        .await
        .ok()
        .json();
    assert!(b["secrets"]["app/api"]["metadata"].is_object(), "{b}");
    cli.run(&["secrets", "batch-read", "app/db", "app/none", "--fail-fast"])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secrets", "batch-read", "app/db", "--version", "9"])
        .await
        .ok();
    cli.run(&["secrets", "batch-read"]).await.code(5);

    // batch-metadata: wildcards expanded on request.
    let bm = cli
        .run(&[
            "--json",
            "secrets",
            "batch-metadata",
            "app/*",
            "--expand-wildcards",
        ])
        .await
        .ok()
        .json();
    let mut keys: Vec<&String> = bm["metadata"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["app/api", "app/db"], "{bm}");
    assert_eq!(bm["metadata"]["app/db"]["tags"], json!(["db", "prod"]));
    let out = cli
        .run(&["secrets", "batch-metadata", "app/db", "other/none"])
        .await;
    out.ok();
    assert!(
        out.stdout.contains("app/db") && out.stdout.contains("db,prod"),
        "{out}"
    );
    assert!(
        out.stdout.contains("other/none") && out.stdout.contains("secret_not_found"),
        "{out}"
    );
    let reader = token_with(&srv, &["secrets:read"]).await;
    cli.run_env(
        &["secrets", "batch-metadata", "app/db"],
        &[("SCAIVAULT_TOKEN", reader.as_str())],
    )
    .await
    .server_error(3, "insufficient_scope");
    let paths: Vec<String> = (0..101).map(|i| format!("p/{i}")).collect();
    let mut args = vec!["secrets", "batch-metadata"];
    args.extend(paths.iter().map(String::as_str));
    cli.run(&args).await.server_error(5, "validation_error");
}
