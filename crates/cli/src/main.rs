//! `scaivault`: the server (`scaivault server`) and the command-line client, in one static binary.

mod client;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use scaivault_server::config::{LogFormat, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: allocation-heavy request paths (rows, JSON) and frees across threads cost less than
/// with glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "scaivault",
    version,
    about = "ScaiVault secrets manager: server and client"
)]
struct Cli {
    #[command(flatten)]
    global: client::GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the ScaiVault server
    Server(Box<ServerArgs>),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Development mode: embedded SQLite in --data-dir, auto-initialised, prints an admin token
    #[arg(long)]
    dev: bool,
    /// Where dev mode keeps its database, root key and token
    #[arg(long, env = "SCAIVAULT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443 with --dev, else 0.0.0.0:8443); port 0 picks a free port
    #[arg(long, env = "BIND_ADDRESS", value_name = "ADDR")]
    bind: Option<String>,
    /// sqlite:PATH or postgres://USER@HOST:PORT/DB
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Public base URL of this server (for links in responses)
    #[arg(long, env = "BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// Log level filter (error, warn, info, debug, trace, or a tracing filter)
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// json or text (default json; text with --dev)
    #[arg(long, env = "LOG_FORMAT")]
    log_format: Option<String>,
    /// PEM certificate chain for HTTPS
    #[arg(long, env = "TLS_CERT_FILE", value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, env = "TLS_KEY_FILE", value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// Root-key provider: local (a key file)
    #[arg(long, env = "KMS_PROVIDER", default_value = "local")]
    kms_provider: String,
    /// The local root key file (default DATA_DIR/root.key); created on first start
    #[arg(long, env = "SCAIVAULT_ROOT_KEY_FILE", value_name = "FILE")]
    root_key_file: Option<PathBuf>,
    /// Fix the bootstrap admin token (skt_…) so scripts can use it
    #[arg(
        long,
        env = "SCAIVAULT_DEV_ROOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    dev_root_token: Option<String>,
    /// Largest accepted request body in bytes
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// How long a soft-deleted secret stays restorable
    #[arg(long, env = "SOFT_DELETE_RETENTION", default_value = "30d")]
    soft_delete_retention: String,
    /// Per-identity limits per minute overriding the defaults, e.g. "read=5000,write=500" ("all=0": off)
    #[arg(long, env = "SCAIVAULT_RATE_LIMITS", value_name = "SPEC")]
    rate_limits: Option<String>,
    /// Memory bound of the SQLite store's cache of sealed secrets, in MiB (0 disables it)
    #[arg(
        long,
        env = "SCAIVAULT_SECRET_CACHE_MB",
        value_name = "MIB",
        default_value_t = 8
    )]
    secret_cache_mb: usize,
    /// When the audit entry of a request that changes nothing (a read, a list, a refusal) reaches the
    /// disk: "always" — fdatasync before the response; "interval" — written to the OS before the
    /// response (survives a crash or kill -9 of the server) and fdatasync'd within 10 ms (a power loss
    /// can lose that window). SQLite only. Writes always commit with their audit entry, fsynced.
    #[arg(
        long,
        env = "SCAIVAULT_AUDIT_SYNC",
        value_name = "MODE",
        default_value = "always"
    )]
    audit_sync: String,
    /// Keep audit entries this long (e.g. 365d), then prune them oldest first; unset or "forever": keep all
    #[arg(long, env = "AUDIT_RETENTION", value_name = "DURATION")]
    audit_retention: Option<String>,
}

fn resolve(a: &ServerArgs) -> anyhow::Result<(Settings, LogFormat)> {
    let data_dir = match (&a.data_dir, a.dev) {
        (Some(d), _) => Some(d.clone()),
        (None, true) => Some(PathBuf::from("./scaivault-data")),
        (None, false) => None,
    };
    if let Some(d) = &data_dir {
        create_private_dir(d)?;
    }
    let database_url = match (&a.database_url, &data_dir) {
        (Some(u), _) if !u.is_empty() => u.clone(),
        (_, Some(d)) => format!("sqlite://{}", d.join("scaivault.db").display()),
        _ => bail!("DATABASE_URL is not set: give sqlite:PATH or postgres://…, or --data-dir DIR, or run with --dev"),
    };
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        bail!("DATABASE_URL must start with sqlite: or postgres://");
    }
    if a.kms_provider != "local" {
        bail!(
            "KMS_PROVIDER={} is not available in this build; supported: local",
            a.kms_provider
        );
    }
    let root_key_file = match (&a.root_key_file, &data_dir) {
        (Some(f), _) => f.clone(),
        (None, Some(d)) => d.join("root.key"),
        (None, None) => bail!("no root key: set SCAIVAULT_ROOT_KEY_FILE (or --data-dir, which keeps it at DIR/root.key)"),
    };
    let default_bind = if a.dev {
        "127.0.0.1:8443"
    } else {
        "0.0.0.0:8443"
    };
    let bind_text = a.bind.as_deref().unwrap_or(default_bind);
    let bind: SocketAddr = bind_text
        .parse()
        .with_context(|| format!("BIND_ADDRESS '{bind_text}' is not HOST:PORT"))?;
    let tls = match (&a.tls_cert_file, &a.tls_key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => bail!("TLS_CERT_FILE and TLS_KEY_FILE must be set together"),
    };
    if let Some(t) = &a.dev_root_token {
        if !scaivault_server::bootstrap::valid_fixed_token(t) {
            bail!("SCAIVAULT_DEV_ROOT_TOKEN must start with skt_ and hold 20–200 characters of A-Z a-z 0-9 _ -");
        }
    }
    let log_format = match a.log_format.as_deref() {
        None if a.dev => LogFormat::Text,
        None | Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => bail!("LOG_FORMAT '{other}' is not json or text"),
    };
    if a.max_body_bytes < 1024 {
        bail!("MAX_BODY_BYTES must be at least 1024");
    }
    let retention = scaivault_core::duration::parse_seconds(&a.soft_delete_retention)
        .map_err(|e| anyhow::anyhow!("SOFT_DELETE_RETENTION: {}", e.message))?;
    let audit_retention_secs = match a.audit_retention.as_deref().map(str::trim) {
        None | Some("" | "forever") => None,
        Some(d) => {
            let secs = scaivault_core::duration::parse_seconds(d)
                .map_err(|e| anyhow::anyhow!("AUDIT_RETENTION: {}", e.message))?;
            if secs <= 0 {
                bail!("AUDIT_RETENTION must be a positive duration (e.g. 365d) or \"forever\"");
            }
            Some(secs)
        }
    };
    let dev_disable_audit = match std::env::var("SCAIVAULT_DEV_DISABLE_AUDIT").ok().as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") if a.dev => true,
        Some("1" | "true") => bail!("SCAIVAULT_DEV_DISABLE_AUDIT is only accepted with --dev (it turns the audit log off, for benchmarks)"),
        Some(other) => bail!("SCAIVAULT_DEV_DISABLE_AUDIT must be 1 or 0, not {other:?}"),
    };
    let audit_sync = match a.audit_sync.trim() {
        "always" => scaivault_store::AuditSync::Always,
        "interval" if database_url.starts_with("sqlite:") => {
            scaivault_store::AuditSync::Interval(std::time::Duration::from_millis(10))
        }
        "interval" => bail!("SCAIVAULT_AUDIT_SYNC=interval is supported with SQLite only (PostgreSQL commits every audit entry synchronously)"),
        other => bail!("SCAIVAULT_AUDIT_SYNC must be \"always\" or \"interval\", not {other:?}"),
    };
    if a.secret_cache_mb > 64 * 1024 {
        bail!("SCAIVAULT_SECRET_CACHE_MB must be at most 65536");
    }
    let rate_limits = scaivault_server::ratelimit::Limits::parse(a.rate_limits.as_deref())
        .map_err(|e| anyhow::anyhow!("SCAIVAULT_RATE_LIMITS: {e}"))?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let external_issuers = scaivault_server::jwt::ExternalIssuerConfig::from_env_values(
        env("SCAIVAULT_EXTERNAL_ISSUERS").as_deref(),
        env("SCAIKEY_URL").as_deref(),
        env("SCAIKEY_JWKS_URL").as_deref(),
        env("SCAIKEY_AUDIENCE").as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let redis_url = env("REDIS_URL");
    if let Some(u) = &redis_url {
        if !(u.starts_with("redis://")
            || u.starts_with("rediss://")
            || u.starts_with("redis+unix://"))
        {
            bail!("REDIS_URL must start with redis:// or rediss://");
        }
    }
    Ok((
        Settings {
            dev: a.dev,
            bind,
            database_url,
            base_url: a.base_url.clone(),
            data_dir,
            root_key_file,
            create_root_key: true,
            tls,
            dev_root_token: a.dev_root_token.clone(),
            max_body_bytes: a.max_body_bytes,
            soft_delete_retention_secs: retention,
            rate_limits,
            audit_retention_secs,
            external_issuers,
            redis_url,
            redis_prefix: env("SCAIVAULT_REDIS_PREFIX").unwrap_or_else(|| "scaivault:".into()),
            secret_cache_bytes: a.secret_cache_mb << 20,
            audit_sync,
            dev_disable_audit,
        },
        log_format,
    ))
}

fn create_private_dir(d: &std::path::Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(d)
        .with_context(|| format!("cannot create data dir {}", d.display()))
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},sqlx=warn,hyper=warn"))
        .map_err(|e| anyhow::anyhow!("LOG_LEVEL '{level}': {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let (settings, format) = resolve(&args)?;
    init_logging(&args.log_level, format)?;
    tracing::info!(?settings, "starting");
    scaivault_server::run(settings).await
}

fn main() -> ExitCode {
    // Usage errors are validation errors (exit 5); clap's default 2 is the documented "auth" code.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(5)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scaivault: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command {
        Command::Server(args) => match rt.block_on(server(*args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scaivault: error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Client(cmd) => rt.block_on(client::run(cmd, cli.global)),
    };
    // Leftover tasks (idle connections, the committer waiting for work) must not hold up the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
