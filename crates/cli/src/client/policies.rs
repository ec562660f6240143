//! `scaivault policies list|get|create|update|delete|bindings|bind|unbind|test`: access policies
//! (`/v1/policies`).

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{cell, key_values, print_json, println, value_cell, Table};
use super::GlobalOpts;

#[derive(Subcommand, Debug)]
pub enum PoliciesCommand {
    /// List policies (ordered by id), or with --path those with a rule matching a path
    List(ListArgs),
    /// Show one policy with its rules and bindings
    Get {
        /// Policy id (pol_…)
        id: String,
    },
    /// Create a policy from a JSON file ({"name", "description", "rules": [...], "scope"}); - for stdin
    Create {
        #[arg(long, value_name = "FILE")]
        file: String,
    },
    /// Change a policy from a JSON file (PATCH: only the keys given); --replace replaces it
    /// (PUT: name and rules required). Bindings are kept either way; - reads stdin
    Update {
        /// Policy id (pol_…)
        id: String,
        #[arg(long, value_name = "FILE")]
        file: String,
        /// Replace the whole policy instead of changing the given keys
        #[arg(long)]
        replace: bool,
    },
    /// List a policy's bindings
    Bindings {
        /// Policy id (pol_…)
        id: String,
    },
    /// Delete a policy; --force also removes its bindings
    Delete {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Bind a policy to user:…, sa:… or group:…
    Bind(BindArgs),
    /// Remove a binding
    Unbind {
        /// Policy id
        id: String,
        /// Binding id (bnd_…)
        binding_id: String,
    },
    /// Would an identity be allowed a permission on a path? (dry run, not audited; exit 3 if denied)
    Test(TestArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only policies with a rule matching this secret path
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// With --path: only rules granting this permission
    #[arg(long, value_name = "PERM")]
    pub permission: Option<String>,
    /// tenant or partner
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Include inactive policies
    #[arg(long)]
    pub include_inactive: bool,
    /// Page size (1-1000)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue from a previous page's cursor
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

#[derive(Args, Debug)]
pub struct BindArgs {
    /// Policy id
    pub id: String,
    /// user:<email>, sa:<name> or group:<name>
    pub identity_id: String,
    /// user, service_account or group (default: from the identity id's prefix)
    #[arg(long, value_name = "TYPE")]
    pub identity_type: Option<String>,
    /// Binding expiry (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// user:<email>, sa:<name>
    pub identity_id: String,
    /// Secret path
    pub path: String,
    /// read, write, delete, list, rotate or admin
    #[arg(long, default_value = "read")]
    pub permission: String,
    /// Caller IP for ip_ranges conditions
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<String>,
    /// Treat the caller as MFA-verified
    #[arg(long)]
    pub mfa: bool,
    /// Evaluate at this time (RFC 3339) for time windows
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// A JSON object from a file (`-`: stdin); anything else is a usage error (exit 5).
pub(super) fn read_json_file(file: &str) -> Result<Value, ApiError> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            ApiError::validation("invalid_argument", format!("cannot read stdin: {e}"))
        })?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            ApiError::validation("invalid_argument", format!("cannot read {file}: {e}"))
        })?
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        ApiError::validation("invalid_argument", format!("{file} is not JSON: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::validation(
            "invalid_argument",
            format!("{file} must hold a JSON object"),
        ));
    }
    Ok(v)
}

fn print_policy(p: &Value) {
    println(&key_values(&[
        ("id", value_cell(p.get("id"))),
        ("name", value_cell(p.get("name"))),
        ("description", value_cell(p.get("description"))),
        ("scope", value_cell(p.get("scope"))),
        ("active", value_cell(p.get("is_active"))),
        ("updated", value_cell(p.get("updated_at"))),
    ]));
    let mut t = Table::new(&["#", "PATH PATTERN", "PERMISSIONS", "CONDITIONS"]);
    for (i, r) in p
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let perms: Vec<&str> = r
            .get("permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        t.row(vec![
            i.to_string(),
            value_cell(r.get("path_pattern")),
            cell(&perms.join(",")),
            r.get("conditions")
                .map_or_else(String::new, |c| cell(&c.to_string())),
        ]);
    }
    t.print();
    if let Some(b) = p.get("bindings").and_then(Value::as_array) {
        let mut t = Table::new(&["BINDING", "TYPE", "IDENTITY", "EXPIRES"]);
        for x in b {
            t.row(vec![
                value_cell(x.get("id")),
                value_cell(x.get("identity_type")),
                value_cell(x.get("identity_id")),
                value_cell(x.get("expires_at")),
            ]);
        }
        t.print();
    }
}

pub async fn run(cmd: PoliciesCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let body = match &cmd {
        PoliciesCommand::Create { file } | PoliciesCommand::Update { file, .. } => {
            Some(read_json_file(file)?)
        }
        _ => None,
    };
    let client = ApiClient::new(&settings.authed_options()?)?;
    match cmd {
        PoliciesCommand::List(a) => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(p) = a.path {
                q.push(("path", p));
            }
            if let Some(p) = a.permission {
                q.push(("permission", p));
            }
            if let Some(s) = a.scope {
                q.push(("scope", s));
            }
            if a.include_inactive {
                q.push(("include_inactive", "true".into()));
            }
            if let Some(l) = a.limit {
                q.push(("limit", l.to_string()));
            }
            if let Some(c) = a.cursor {
                q.push(("cursor", c));
            }
            let r = client.get(client.url(&["v1", "policies"], &q)?).await?;
            if global.json {
                print_json(&r.body);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "SCOPE", "RULES", "BINDINGS", "ACTIVE"]);
            for p in r
                .body
                .get("policies")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let rules = p.get("rule_count").cloned().or_else(|| {
                    p.get("rules")
                        .and_then(Value::as_array)
                        .map(|a| json!(a.len()))
                });
                t.row(vec![
                    value_cell(p.get("id")),
                    value_cell(p.get("name")),
                    value_cell(p.get("scope")),
                    value_cell(rules.as_ref()),
                    value_cell(p.get("binding_count")),
                    value_cell(p.get("is_active")),
                ]);
            }
            t.print();
            if let Some(c) = r.body.get("cursor").and_then(Value::as_str) {
                println(&format!("more: --cursor {c}"));
            }
            Ok(())
        }
        PoliciesCommand::Get { id } => {
            let r = client
                .get(client.url(&["v1", "policies", &id], &[])?)
                .await?;
            if global.json {
                print_json(&r.body);
            } else {
                print_policy(&r.body);
            }
            Ok(())
        }
        PoliciesCommand::Create { .. } => {
            let body = body.unwrap_or_else(|| json!({}));
            let r = client
                .post(client.url(&["v1", "policies"], &[])?, &body)
                .await?;
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Created policy {}", value_cell(r.body.get("id"))));
            }
            Ok(())
        }
        PoliciesCommand::Update { id, replace, .. } => {
            let body = body.unwrap_or_else(|| json!({}));
            let url = client.url(&["v1", "policies", &id], &[])?;
            let r = if replace {
                client.put(url, &body).await?
            } else {
                client.patch(url, &body).await?
            };
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Updated policy {}", cell(&id)));
            }
            Ok(())
        }
        PoliciesCommand::Bindings { id } => {
            let url = client.url(&["v1", "policies", &id, "bindings"], &[])?;
            let r = client.get(url).await?;
            if global.json {
                print_json(&r.body);
                return Ok(());
            }
            let mut t = Table::new(&["BINDING", "TYPE", "IDENTITY", "EXPIRES", "EXPIRED"]);
            for b in r.body["bindings"].as_array().into_iter().flatten() {
                t.row(vec![
                    value_cell(b.get("id")),
                    value_cell(b.get("identity_type")),
                    value_cell(b.get("identity_id")),
                    value_cell(b.get("expires_at")),
                    value_cell(b.get("expired")),
                ]);
            }
            t.print();
            Ok(())
        }
        PoliciesCommand::Delete { id, force } => {
            let q: Vec<(&str, String)> = if force {
                vec![("force", "true".into())]
            } else {
                vec![]
            };
            let r = client
                .delete(client.url(&["v1", "policies", &id], &q)?)
                .await?;
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Deleted policy {}", cell(&id)));
            }
            Ok(())
        }
        PoliciesCommand::Bind(a) => {
            let kind = a.identity_type.unwrap_or_else(|| {
                match a.identity_id.split(':').next() {
                    Some("sa") => "service_account",
                    Some("group") => "group",
                    _ => "user",
                }
                .to_owned()
            });
            let mut body = json!({"identity_type": kind, "identity_id": a.identity_id});
            if let Some(e) = a.expires_at {
                body["expires_at"] = json!(e);
            }
            let url = client.url(&["v1", "policies", &a.id, "bindings"], &[])?;
            let r = client.post(url, &body).await?;
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Created binding {}", value_cell(r.body.get("id"))));
            }
            Ok(())
        }
        PoliciesCommand::Unbind { id, binding_id } => {
            let url = client.url(&["v1", "policies", &id, "bindings", &binding_id], &[])?;
            let r = client.delete(url).await?;
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Removed binding {}", cell(&binding_id)));
            }
            Ok(())
        }
        PoliciesCommand::Test(a) => {
            let mut context = serde_json::Map::new();
            if let Some(ip) = a.source_ip {
                context.insert("source_ip".into(), json!(ip));
            }
            if a.mfa {
                context.insert("mfa_verified".into(), json!(true));
            }
            if let Some(t) = a.at {
                context.insert("timestamp".into(), json!(t));
            }
            let body = json!({"identity_id": a.identity_id, "path": a.path, "permission": a.permission,
                              "context": context});
            let r = client
                .post(client.url(&["v1", "policies", "test"], &[])?, &body)
                .await?;
            let allowed = r.body.get("allowed") == Some(&json!(true));
            if global.json {
                print_json(&r.body);
            } else if allowed {
                println(&format!(
                    "allowed: policy {} rule {} ({})",
                    value_cell(r.body.get("policy_id")),
                    value_cell(r.body.get("rule_index")),
                    value_cell(r.body.get("reason"))
                ));
            } else {
                println(&format!(
                    "denied: {}: {}",
                    value_cell(r.body.get("code")),
                    value_cell(r.body.get("reason"))
                ));
            }
            if allowed {
                Ok(())
            } else {
                // Exit 3 (authorisation) so scripts can branch on the answer; already printed.
                Err(ApiError::local(
                    3,
                    "access_denied",
                    "the identity would be denied",
                ))
            }
        }
    }
}
