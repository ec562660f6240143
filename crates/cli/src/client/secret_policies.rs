//! `scaivault secret-policies list|get|create|update|delete|attach|detach`: value recipes
//! (`/v1/secret-policies`) and which secrets they guard.

use clap::Subcommand;
use serde_json::{json, Value};

use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{cell, key_values, print_json, print_raw, value_cell, Table};
use super::policies::read_json_file;
use super::GlobalOpts;

#[derive(Subcommand, Debug)]
pub enum SecretPoliciesCommand {
    /// List the tenant's secret policies
    List,
    /// Show one secret policy with its fields
    Get {
        /// Secret policy id (sp_…)
        id: String,
    },
    /// Create a secret policy from a JSON file ({"name", "policy_type", "description", "fields": [...]}); - for stdin
    Create {
        #[arg(long, value_name = "FILE")]
        file: String,
    },
    /// Replace a secret policy with the JSON in a file (attachments are kept); - for stdin
    Update {
        /// Secret policy id (sp_…)
        id: String,
        #[arg(long, value_name = "FILE")]
        file: String,
    },
    /// Delete a secret policy (it is detached from every secret)
    Delete {
        /// Secret policy id (sp_…)
        id: String,
    },
    /// Attach a secret policy to a secret: later writes must satisfy its rules
    Attach {
        /// Secret policy id (sp_…)
        id: String,
        /// Secret path
        path: String,
    },
    /// Detach whatever secret policy guards a secret
    Detach {
        /// Secret path
        path: String,
    },
}

fn url(c: &ApiClient, rest: &[&str]) -> Result<reqwest::Url, ApiError> {
    let mut segs = vec!["v1", "secret-policies"];
    segs.extend_from_slice(rest);
    c.url(&segs, &[])
}

fn fields(p: &Value) -> impl Iterator<Item = &Value> {
    p.get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn print_policy(p: &Value) {
    print_raw(&key_values(&[
        ("id", value_cell(p.get("id"))),
        ("name", value_cell(p.get("name"))),
        ("type", value_cell(p.get("policy_type"))),
        ("description", value_cell(p.get("description"))),
        ("active", value_cell(p.get("is_active"))),
        ("updated", value_cell(p.get("updated_at"))),
    ]));
    let mut t = Table::new(&["FIELD", "GENERATOR", "CONFIG"]);
    for f in fields(p) {
        t.row(vec![
            value_cell(f.get("name")),
            value_cell(f.get("generator")),
            f.get("config")
                .map_or_else(|| "-".to_owned(), |c| cell(&c.to_string())),
        ]);
    }
    t.print();
}

pub async fn run(cmd: SecretPoliciesCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    // A bad file is a usage error (exit 5) before any request is made.
    let body = match &cmd {
        SecretPoliciesCommand::Create { file } | SecretPoliciesCommand::Update { file, .. } => {
            Some(read_json_file(file)?)
        }
        _ => None,
    };
    let c = ApiClient::new(&settings.authed_options()?)?;
    let (r, done) = match cmd {
        SecretPoliciesCommand::List => {
            let r = c.get(url(&c, &[])?).await?;
            let mut t = Table::new(&["ID", "NAME", "TYPE", "FIELDS", "ACTIVE", "UPDATED"]);
            for p in r.body["secret_policies"].as_array().into_iter().flatten() {
                let names: Vec<&str> = fields(p)
                    .filter_map(|f| f.get("name").and_then(Value::as_str))
                    .collect();
                t.row(vec![
                    value_cell(p.get("id")),
                    value_cell(p.get("name")),
                    value_cell(p.get("policy_type")),
                    cell(&names.join(",")),
                    value_cell(p.get("is_active")),
                    value_cell(p.get("updated_at")),
                ]);
            }
            (r, t.render())
        }
        SecretPoliciesCommand::Get { id } => {
            let r = c.get(url(&c, &[&id])?).await?;
            if !global.json {
                print_policy(&r.body);
                return Ok(());
            }
            (r, String::new())
        }
        SecretPoliciesCommand::Create { .. } => {
            let r = c
                .post(url(&c, &[])?, &body.unwrap_or_else(|| json!({})))
                .await?;
            let msg = format!("Created secret policy {}\n", value_cell(r.body.get("id")));
            (r, msg)
        }
        SecretPoliciesCommand::Update { id, .. } => {
            let r = c
                .put(url(&c, &[&id])?, &body.unwrap_or_else(|| json!({})))
                .await?;
            (r, format!("Updated secret policy {}\n", cell(&id)))
        }
        SecretPoliciesCommand::Delete { id } => {
            let r = c.delete(url(&c, &[&id])?).await?;
            (r, format!("Deleted secret policy {}\n", cell(&id)))
        }
        SecretPoliciesCommand::Attach { id, path } => {
            let r = c
                .post(url(&c, &[&id, "attach"])?, &json!({ "path": path }))
                .await?;
            (
                r,
                format!("Attached secret policy {} to {}\n", cell(&id), cell(&path)),
            )
        }
        SecretPoliciesCommand::Detach { path } => {
            let r = c
                .post(url(&c, &["detach"])?, &json!({ "path": path }))
                .await?;
            (
                r,
                format!("Detached the secret policy of {}\n", cell(&path)),
            )
        }
    };
    if global.json {
        print_json(&r.body);
    } else {
        print_raw(&done);
    }
    Ok(())
}
