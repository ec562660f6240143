//! The `scaivault` command-line client: `config`, `auth`, `secrets`, `audit`, `policies`,
//! `secret-policies`, `tokens`, `service-accounts` and `identity` commands.
//!
//! Exit codes: 0 ok, 1 general, 2 auth, 3 authz, 4 not found, 5 validation
//! (see [`http::exit_code_for_status`], the one place that maps responses to codes).

mod audit;
mod audit_export;
mod auth;
mod config;
mod config_cmd;
mod directory;
pub mod http;
mod identity;
mod output;
mod policies;
mod secret_policies;
mod secrets;

use std::fmt;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use self::http::ApiError;

/// A string that never shows up in `Debug` output (tokens).
#[derive(Clone)]
pub struct Sensitive(pub String);

impl From<String> for Sensitive {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// Options shared by every client command. (A plain comment: a doc comment here would become the
// `about` text of the command that flattens this struct.)
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// Print machine-readable JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    /// Server base URL (overrides $SCAIVAULT_URL and the config file)
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Show and change the client configuration (~/.scaivault/config.json)
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Log in, inspect and forget the stored token
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Read, write, list and delete secrets
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Query the audit trail and verify its hash chain (live, or offline from a JSONL file)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage access policies and bindings, and test decisions
    #[command(subcommand)]
    Policies(policies::PoliciesCommand),
    /// Secret policies: value recipes whose rules the attached secrets' writes must follow
    #[command(subcommand, name = "secret-policies")]
    SecretPolicies(secret_policies::SecretPoliciesCommand),
    /// Personal access tokens: create (shown once), list, revoke
    #[command(subcommand)]
    Tokens(identity::TokensCommand),
    /// Service accounts with client credentials
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(identity::ServiceAccountsCommand),
    /// Partners, tenants, users, groups, members and admin roles
    #[command(subcommand)]
    Identity(directory::IdentityCommand),
    /// Server health, readiness and version
    #[command(subcommand)]
    System(directory::SystemCommand),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Set a config key (base_url, tenant_id, partner_id); an empty value removes it
    Set {
        /// base_url, tenant_id or partner_id
        key: String,
        value: String,
    },
    /// Print the effective value of a key (environment overrides the file)
    Get {
        /// base_url, tenant_id or partner_id
        key: String,
    },
    /// Show the effective configuration and where each value comes from
    Show,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Verify a token with the server and store it in the config file; with --client-id and
    /// --client-secret, obtain a 1 h token by client credentials and store that
    Login {
        /// Bearer token; read from stdin when omitted
        #[arg(long, value_name = "TOKEN", conflicts_with = "client_id")]
        token: Option<Sensitive>,
        /// Service-account client id (sac_…)
        #[arg(long, value_name = "ID", requires = "client_secret")]
        client_id: Option<String>,
        /// Service-account client secret
        #[arg(long, value_name = "SECRET", requires = "client_id")]
        client_secret: Option<Sensitive>,
    },
    /// Show the identity behind the current token
    Whoami,
    /// Remove the stored token from the config file
    Logout,
    /// Check a token without using it (admin): exit 0 if active, 2 if not
    Introspect {
        /// The token to check; read from stdin when omitted
        #[arg(value_name = "TOKEN")]
        token: Option<Sensitive>,
    },
    /// The built-in JWT issuer's public keys (JWKS)
    Jwks,
    /// Sign new JWTs with a fresh key (admin); the old key stays published
    RotateKeys,
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Read a secret's value
    Read(Box<secrets::ReadArgs>),
    /// Write a new version of a secret
    Write(Box<secrets::WriteArgs>),
    /// List secrets
    List(Box<secrets::ListArgs>),
    /// Show a secret's metadata (no value)
    Metadata(secrets::PathArg),
    /// Delete a secret (soft by default), or one version of it
    Delete(Box<secrets::DeleteArgs>),
    /// Restore a soft-deleted secret or version
    Restore(Box<secrets::RestoreArgs>),
    /// List a secret's versions and history
    Versions(secrets::PathArg),
    /// List secrets that expire within a number of days
    Expiring(Box<secrets::ExpiringArgs>),
    /// Change a secret's metadata or options without writing a new version
    UpdateMetadata(Box<secrets::UpdateMetadataArgs>),
    /// Read up to 100 secrets in one request (partial success unless --fail-fast)
    BatchRead(Box<secrets::BatchReadArgs>),
    /// Metadata of up to 100 paths, or of `*`/`**` patterns with --expand-wildcards
    BatchMetadata(Box<secrets::BatchMetadataArgs>),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Query the audit log (newest first); --all follows the cursors, --all --json writes JSONL
    Logs(Box<audit::LogsArgs>),
    /// The audit trail of one secret, with a 30-day summary
    Secret(Box<audit::SecretArgs>),
    /// Everything one identity did, with the resources it accessed
    Identity(Box<audit::IdentityArgs>),
    /// Aggregate statistics over a time range
    Summary(audit::SummaryArgs),
    /// Verify the tenant's hash chain on the server, or a JSONL file offline with --file (exit 1 if broken)
    Verify(audit::VerifyArgs),
    /// Export the audit log (JSONL or CSV) to S3, GCS or Azure Blob; --wait follows the job to the end
    Export(Box<audit_export::ExportArgs>),
    /// List export jobs, or show one with `exports get ID`
    Exports(audit_export::ExportsArgs),
}

/// Runs one client command and returns the process exit code. Errors are printed as
/// `error: <code>: <message> (request <request_id>)` on stderr.
pub async fn run(cmd: ClientCommand, global: GlobalOpts) -> ExitCode {
    match dispatch(cmd, &global).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit)
        }
    }
}

async fn dispatch(cmd: ClientCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    match cmd {
        ClientCommand::Config(c) => config_cmd::run(c, global),
        ClientCommand::Auth(c) => auth::run(c, global).await,
        ClientCommand::Secrets(c) => secrets::run(c, global).await,
        ClientCommand::Audit(c) => audit::run(c, global).await,
        ClientCommand::Policies(c) => policies::run(c, global).await,
        ClientCommand::SecretPolicies(c) => secret_policies::run(c, global).await,
        ClientCommand::Tokens(c) => identity::run_tokens(c, global).await,
        ClientCommand::ServiceAccounts(c) => identity::run_service_accounts(c, global).await,
        ClientCommand::Identity(c) => directory::run_identity(c, global).await,
        ClientCommand::System(c) => directory::run_system(c, global).await,
    }
}

fn report(e: &ApiError) {
    let mut msg = format!("error: {e}\n");
    for line in e.field_errors() {
        msg.push_str("  ");
        msg.push_str(&output::cell(&line));
        msg.push('\n');
    }
    eprint!("{msg}");
}
