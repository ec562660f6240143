//! `scaivault auth login|whoami|logout|introspect|jwks|rotate-keys`.

use std::io::Read;

use serde_json::{json, Value};

use super::config::{self, Settings, Source, ENV_TOKEN};
use super::http::{ApiClient, ApiError};
use super::output::{cell, key_values, print_json, print_raw, println, value_cell, Table};
use super::{AuthCommand, GlobalOpts};

pub async fn run(cmd: AuthCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    match cmd {
        AuthCommand::Login {
            client_id: Some(id),
            client_secret: Some(secret),
            ..
        } => {
            let token = client_credentials(&id, &secret.0, global).await?;
            login(Some(token), global).await
        }
        AuthCommand::Login { token, .. } => login(token.map(|t| t.0), global).await,
        AuthCommand::Whoami => whoami(global).await,
        AuthCommand::Logout => logout(global),
        AuthCommand::Introspect { token } => introspect(token.map(|t| t.0), global).await,
        AuthCommand::Jwks => jwks(global).await,
        AuthCommand::RotateKeys => rotate_keys(global).await,
    }
}

async fn introspect(token: Option<String>, global: &GlobalOpts) -> Result<(), ApiError> {
    let token = match token {
        Some(t) => t,
        None => read_token_from_stdin()?,
    };
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    let url = client.url(&["v1", "auth", "introspect"], &[])?;
    let r = client.post(url, &json!({ "token": token })).await?;
    let active = r.body.get("active") == Some(&Value::Bool(true));
    if global.json {
        print_json(&r.body);
    } else {
        let fields = [
            "active",
            "identity_id",
            "identity_type",
            "tenant_id",
            "scopes",
            "issued_at",
            "expires_at",
        ];
        let pairs: Vec<(&str, String)> = fields
            .iter()
            .filter(|f| active || **f == "active")
            .map(|f| (*f, value_cell(r.body.get(*f))))
            .collect();
        print_raw(&key_values(&pairs));
    }
    if active {
        Ok(())
    } else {
        // Exit 2 (auth) so scripts can branch on the answer; already printed.
        Err(ApiError::local(
            2,
            "token_inactive",
            "the token is not active",
        ))
    }
}

async fn jwks(global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.client_options(None))?;
    let r = client
        .get(client.url(&["v1", "auth", "jwks"], &[])?)
        .await?;
    if global.json {
        print_json(&r.body);
        return Ok(());
    }
    let mut t = Table::new(&["KID", "KTY", "ALG", "USE"]);
    for k in r.body["keys"].as_array().into_iter().flatten() {
        t.row(vec![
            value_cell(k.get("kid")),
            value_cell(k.get("kty")),
            value_cell(k.get("alg")),
            value_cell(k.get("use")),
        ]);
    }
    t.print();
    Ok(())
}

async fn rotate_keys(global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    let url = client.url(&["v1", "auth", "keys", "rotate"], &[])?;
    let r = client.post(url, &json!({})).await?;
    if global.json {
        print_json(&r.body);
    } else {
        print_raw(&key_values(&[
            ("kid", value_cell(r.body.get("kid"))),
            ("published_kids", value_cell(r.body.get("published_kids"))),
        ]));
    }
    Ok(())
}

/// `POST /v1/auth/token` with client credentials; the access token (valid 1 h).
async fn client_credentials(
    id: &str,
    secret: &str,
    global: &GlobalOpts,
) -> Result<String, ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let mut opts = settings.client_options(None);
    opts.token = None;
    let client = ApiClient::new(&opts)?;
    let url = client.url(&["v1", "auth", "token"], &[])?;
    let r = client
        .post(
            url,
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .await?;
    r.body
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::general("token_invalid", "the token endpoint sent no access_token")
        })
}

fn read_token_from_stdin() -> Result<String, ApiError> {
    let mut s = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut s)
        .map_err(|e| {
            ApiError::validation(
                "invalid_argument",
                format!("cannot read the token from stdin: {e}"),
            )
        })?;
    Ok(s)
}

async fn login(token: Option<String>, global: &GlobalOpts) -> Result<(), ApiError> {
    let token = match token {
        Some(t) => t,
        None => read_token_from_stdin()?,
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(ApiError::validation(
            "invalid_argument",
            "no token given; use `scaivault auth login --token <token>` or pipe it on stdin",
        ));
    }
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.client_options(Some(&token)))?;
    let url = client.url(&["v1", "auth", "whoami"], &[])?;
    let who = client.get(url).await?;

    // Verified: store it (re-read the file so that concurrent edits of other keys survive).
    let mut file = config::load(&settings.path)?;
    file.token = Some(token);
    config::save(&settings.path, &file)?;
    if settings.token.source == Source::Env {
        eprintln!("note: {ENV_TOKEN} is set in the environment and overrides the stored token");
    }
    if global.json {
        print_json(&who.body);
    } else {
        let id = who
            .body
            .get("identity_id")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = who
            .body
            .get("display_name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(id);
        println(&format!(
            "Logged in to {} as {} ({}, tenant {}). Token saved to {}",
            settings.client_options(None).base_url,
            cell(name),
            cell(id),
            value_cell(who.body.get("tenant_id")),
            settings.path.display()
        ));
    }
    Ok(())
}

async fn whoami(global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    let url = client.url(&["v1", "auth", "whoami"], &[])?;
    let who = client.get(url).await?;
    if global.json {
        print_json(&who.body);
        return Ok(());
    }
    let b = &who.body;
    let fields = [
        "identity_id",
        "identity_type",
        "display_name",
        "tenant_id",
        "partner_id",
        "scopes",
        "groups",
        "roles",
        "mfa_verified_at",
        "token_expires_at",
    ];
    let pairs: Vec<(&str, String)> = fields.iter().map(|f| (*f, value_cell(b.get(*f)))).collect();
    print_raw(&key_values(&pairs));
    Ok(())
}

fn logout(global: &GlobalOpts) -> Result<(), ApiError> {
    let path = config::config_path()?;
    let mut file = config::load(&path)?;
    let had = file.token.take().is_some();
    if had {
        config::save(&path, &file)?;
    }
    if config::env_var(ENV_TOKEN).is_some() {
        eprintln!("note: {ENV_TOKEN} is still set in the environment");
    }
    if global.json {
        print_json(&json!({"logged_out": had, "config_file": path.display().to_string()}));
    } else if had {
        println(&format!(
            "Logged out: token removed from {}",
            path.display()
        ));
    } else {
        println("Not logged in: no token stored");
    }
    Ok(())
}
