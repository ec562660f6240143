//! Start-up and serving: open the store, load the root key, bootstrap, then serve HTTP or HTTPS until
//! SIGTERM/SIGINT, draining in-flight requests (each of which has already committed its audit entry).

use crate::api;
use crate::auth::Authenticator;
use crate::authz::Authorizer;
use crate::bootstrap;
use crate::config::Settings;
use crate::keys::KeyRing;
use crate::state::{AppState, Inner};
use anyhow::{bail, Context};
use axum::extract::ConnectInfo;
use scaivault_crypto::{LocalKeyFile, RootKeyProvider};
use scaivault_store::Committer;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let store_opts = scaivault_store::StoreOptions {
        secret_cache_bytes: settings.secret_cache_bytes,
        audit_sync: settings.audit_sync,
    };
    let store = scaivault_store::connect_with(&settings.database_url, &store_opts)
        .await
        .with_context(|| {
            format!(
                "cannot open the database ({})",
                settings.database_url.split(':').next().unwrap_or("")
            )
        })?;
    if settings.dev_disable_audit {
        tracing::warn!(
            site = "SV0010",
            "AUDIT IS DISABLED (SCAIVAULT_DEV_DISABLE_AUDIT=1, --dev): requests are answered without a durable audit entry. \
             For measuring audit's cost only; never run a real deployment like this."
        );
    }
    let initialized = bootstrap::is_initialized(&store).await?;
    let create_key = settings.create_root_key && !initialized;
    let root = LocalKeyFile::open(&settings.root_key_file, create_key).map_err(|e| {
        if initialized {
            anyhow::anyhow!(
                "{e}; the database is already initialised, so its root key file must be restored (without it the data cannot be decrypted)"
            )
        } else {
            anyhow::anyhow!("{e}")
        }
    })?;
    let root: Arc<dyn RootKeyProvider> = Arc::new(root);
    let keys = KeyRing::new(root.clone(), store.clone());
    let dev_dir = if settings.dev {
        settings.data_dir.as_deref()
    } else {
        None
    };
    let token =
        bootstrap::bootstrap(&store, &keys, settings.dev_root_token.as_deref(), dev_dir).await?;

    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot bind {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let committer = Committer::start(store.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let issuer_name = settings
        .base_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let issuer = Arc::new(crate::jwt::Issuer::new(
        issuer_name,
        store.clone(),
        KeyRing::new(root, store.clone()),
    ));
    issuer
        .start()
        .await
        .context("cannot load or create the token signing key")?;
    let external = Arc::new(crate::jwt::ExternalIssuers::new(
        settings.external_issuers.clone(),
    ));
    let mut rate = crate::ratelimit::RateLimiter::new(settings.rate_limits.clone());
    if let Some(url) = &settings.redis_url {
        rate = rate
            .with_redis(url, &settings.redis_prefix)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let state = AppState(Arc::new(Inner {
        auth: Authenticator::new(store.clone()).with_issuers(issuer.clone(), external.clone()),
        issuer,
        external,
        authz: Authorizer::new(store.clone()),
        rate,
        tenants: crate::tenancy::Tenants::new(store.clone()),
        committer,
        keys,
        store: store.clone(),
        settings: settings.clone(),
        started: Instant::now(),
    }));
    crate::audit_jobs::start(&state);
    state.authz.reload().await?;
    tokio::spawn(crate::authz::refresh_loop(state.clone()));
    let app = api::router(state);

    {
        let mut out = std::io::stdout().lock();
        if let Some(t) = &token {
            let what = if initialized {
                "admin token"
            } else {
                "admin token (new; store it safely)"
            };
            writeln!(out, "{what}: {t}")?;
            writeln!(
                out,
                "  export SCAIVAULT_URL={scheme}://{addr} SCAIVAULT_TOKEN={t}"
            )?;
        }
        writeln!(out, "listening on {scheme}://{addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, backend = store.backend(), tls = tls.is_some(), "serving");

    match tls {
        None => {
            // Small JSON answers on keep-alive connections must not wait for Nagle's algorithm.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        }
        Some(cfg) => serve_tls(listener, app, cfg).await?,
    }
    tracing::info!("drained; closing the store");
    // Every acknowledged request has committed already; closing only tidies connections up.
    if tokio::time::timeout(std::time::Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("store connections did not close within 5 s; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    use tokio_rustls::rustls;
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("TLS_CERT_FILE {}", cert.display()))?,
    ))
    .collect::<Result<_, _>>()
    .with_context(|| format!("TLS_CERT_FILE {} is not PEM certificates", cert.display()))?;
    if certs.is_empty() {
        bail!("TLS_CERT_FILE {} holds no certificate", cert.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("TLS_KEY_FILE {}", key.display()))?,
    ))
    .with_context(|| format!("TLS_KEY_FILE {} is not a PEM private key", key.display()))?
    .with_context(|| format!("TLS_KEY_FILE {} holds no private key", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    cfg: Arc<tokio_rustls::rustls::ServerConfig>,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(req)
                },
            );
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}
