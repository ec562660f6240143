//! `scaivault tokens create|list|revoke` (personal access tokens) and
//! `scaivault service-accounts create|list|get|delete|rotate-secret`.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::config::Settings;
use super::http::{ApiClient, ApiError};
use super::output::{key_values, print_json, print_raw, println, value_cell, Table};
use super::GlobalOpts;

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a personal access token (the value is printed once)
    Create(TokenCreateArgs),
    /// List tokens (your own; --all or --identity for an admin)
    List(TokenListArgs),
    /// Revoke a token by id (tok_…)
    Revoke {
        /// Token id
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// A name to recognise the token by
    #[arg(long)]
    pub name: Option<String>,
    /// Scope to grant (repeatable; default: the creating token's scopes)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Lifetime, e.g. 30d (default 90d)
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
}

#[derive(Args, Debug)]
pub struct TokenListArgs {
    /// Every token of the tenant (admin)
    #[arg(long)]
    pub all: bool,
    /// The tokens of one identity (admin)
    #[arg(long, value_name = "IDENTITY_ID")]
    pub identity: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ServiceAccountsCommand {
    /// Create a service account; prints its client id and secret (shown once)
    Create(SaCreateArgs),
    /// List the tenant's service accounts
    List,
    /// Show one service account
    Get {
        /// sa:<name> or <name>
        id: String,
    },
    /// Disable a service account (its secrets and tokens stop working)
    Delete {
        /// sa:<name> or <name>
        id: String,
    },
    /// Issue a new client secret (printed once); --grace keeps the old ones valid for a while
    RotateSecret {
        /// sa:<name> or <name>
        id: String,
        /// How long the previous secrets stay valid, e.g. 1h (default: none)
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct SaCreateArgs {
    /// Name (the identity becomes sa:<name>)
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// Scope to grant (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Group membership, group:<name> (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

fn client(global: &GlobalOpts) -> Result<ApiClient, ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    ApiClient::new(&settings.authed_options()?)
}

fn strings(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => value_cell(other),
    }
}

pub async fn run_tokens(cmd: TokensCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let c = client(global)?;
    match cmd {
        TokensCommand::Create(a) => {
            let mut body = Map::new();
            if let Some(n) = a.name {
                body.insert("name".into(), json!(n));
            }
            if !a.scopes.is_empty() {
                body.insert("scopes".into(), json!(a.scopes));
            }
            if let Some(e) = a.expires_in {
                body.insert("expires_in".into(), json!(e));
            }
            let r = c
                .post(c.url(&["v1", "auth", "tokens"], &[])?, &Value::Object(body))
                .await?;
            if global.json {
                print_json(&r.body);
            } else {
                let b = &r.body;
                print_raw(&key_values(&[
                    ("id", value_cell(b.get("id"))),
                    ("token", value_cell(b.get("token"))),
                    ("scopes", strings(b.get("scopes"))),
                    ("expires_at", value_cell(b.get("expires_at"))),
                ]));
                eprintln!("note: the token is shown only now; store it safely");
            }
        }
        TokensCommand::List(a) => {
            let mut q = Vec::new();
            if a.all {
                q.push(("all", "true".to_owned()));
            }
            if let Some(i) = a.identity {
                q.push(("identity_id", i));
            }
            let r = c.get(c.url(&["v1", "auth", "tokens"], &q)?).await?;
            if global.json {
                print_json(&r.body);
                return Ok(());
            }
            let mut t = Table::new(&["ID", "NAME", "IDENTITY", "SCOPES", "STATUS", "EXPIRES_AT"]);
            for tok in r.body["tokens"].as_array().into_iter().flatten() {
                t.row(vec![
                    value_cell(tok.get("id")),
                    value_cell(tok.get("name")),
                    value_cell(tok.get("identity_id")),
                    strings(tok.get("scopes")),
                    value_cell(tok.get("status")),
                    value_cell(tok.get("expires_at")),
                ]);
            }
            t.print();
        }
        TokensCommand::Revoke { id } => {
            let r = c
                .delete(c.url(&["v1", "auth", "tokens", &id], &[])?)
                .await?;
            if global.json {
                print_json(&r.body);
            } else {
                println(&format!("Revoked {id}"));
            }
        }
    }
    Ok(())
}

fn sa_url(c: &ApiClient, rest: &[&str]) -> Result<reqwest::Url, ApiError> {
    let mut segs = vec!["v1", "identity", "service-accounts"];
    segs.extend_from_slice(rest);
    c.url(&segs, &[])
}

fn print_account(b: &Value) {
    let mut pairs = vec![
        ("id", value_cell(b.get("id"))),
        ("client_id", value_cell(b.get("client_id"))),
    ];
    if b.get("client_secret").is_some() {
        pairs.push(("client_secret", value_cell(b.get("client_secret"))));
    }
    pairs.extend([
        ("description", value_cell(b.get("description"))),
        ("scopes", strings(b.get("scopes"))),
        ("groups", strings(b.get("groups"))),
        ("status", value_cell(b.get("status"))),
        ("created_at", value_cell(b.get("created_at"))),
    ]);
    print_raw(&key_values(&pairs));
}

pub async fn run_service_accounts(
    cmd: ServiceAccountsCommand,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let c = client(global)?;
    let r = match cmd {
        ServiceAccountsCommand::Create(a) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(a.name));
            if let Some(d) = a.description {
                body.insert("description".into(), json!(d));
            }
            body.insert("scopes".into(), json!(a.scopes));
            body.insert("groups".into(), json!(a.groups));
            let r = c.post(sa_url(&c, &[])?, &Value::Object(body)).await?;
            if !global.json {
                print_account(&r.body);
                eprintln!("note: the client secret is shown only now; store it safely");
                return Ok(());
            }
            r
        }
        ServiceAccountsCommand::List => {
            let r = c.get(sa_url(&c, &[])?).await?;
            if !global.json {
                let mut t = Table::new(&["ID", "CLIENT_ID", "SCOPES", "STATUS", "CREATED_AT"]);
                for a in r.body["service_accounts"].as_array().into_iter().flatten() {
                    t.row(vec![
                        value_cell(a.get("id")),
                        value_cell(a.get("client_id")),
                        strings(a.get("scopes")),
                        value_cell(a.get("status")),
                        value_cell(a.get("created_at")),
                    ]);
                }
                t.print();
                return Ok(());
            }
            r
        }
        ServiceAccountsCommand::Get { id } => {
            let r = c.get(sa_url(&c, &[&id])?).await?;
            if !global.json {
                print_account(&r.body);
                return Ok(());
            }
            r
        }
        ServiceAccountsCommand::Delete { id } => {
            let r = c.delete(sa_url(&c, &[&id])?).await?;
            if !global.json {
                println(&format!("Disabled {}", value_cell(r.body.get("id"))));
                return Ok(());
            }
            r
        }
        ServiceAccountsCommand::RotateSecret { id, grace } => {
            let body = match grace {
                Some(g) => json!({ "grace": g }),
                None => json!({}),
            };
            let r = c.post(sa_url(&c, &[&id, "secrets"])?, &body).await?;
            if !global.json {
                print_raw(&key_values(&[
                    ("client_id", value_cell(r.body.get("client_id"))),
                    ("client_secret", value_cell(r.body.get("client_secret"))),
                    (
                        "previous_secrets_expire_at",
                        value_cell(r.body.get("previous_secrets_expire_at")),
                    ),
                ]));
                eprintln!("note: the client secret is shown only now; store it safely");
                return Ok(());
            }
            r
        }
    };
    print_json(&r.body);
    Ok(())
}
