//! Health, readiness, detailed health and version.

use super::ctx::Ctx;
use super::error::ApiResult;
use crate::keys::KeyRing;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use scaivault_core::scope;
use scaivault_core::time_fmt::{now_micros, rfc3339};
use serde_json::json;
use std::time::Instant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/health/ready", get(ready))
        .route("/v1/health/detailed", get(detailed))
        .route("/v1/version", get(version))
}

async fn health() -> Response {
    Json(json!({ "status": "healthy", "timestamp": rfc3339(now_micros()) })).into_response()
}

async fn encryption_ok(state: &AppState) -> Result<(), String> {
    state.keys.check_root().await.map_err(|e| e.to_string())?;
    let key = state
        .keys
        .tenant_key(crate::bootstrap::DEFAULT_TENANT)
        .await;
    match key {
        Ok(k) if KeyRing::self_test(&k) => Ok(()),
        Ok(_) => Err("key self-test failed".into()),
        // A deployment without the default tenant still has a working root key.
        Err(crate::keys::KeyError::Unknown(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    let db = state.store.ping().await.map_err(|e| e.to_string());
    let enc = encryption_ok(&state).await;
    let mut errors = serde_json::Map::new();
    if let Err(e) = &db {
        tracing::warn!(site = "HL0001", error = %e, "readiness: database");
        errors.insert("database".into(), json!("unreachable"));
    }
    if let Err(e) = &enc {
        tracing::warn!(site = "HL0002", error = %e, "readiness: encryption");
        errors.insert("encryption".into(), json!("key provider failed"));
    }
    let ok = |r: bool| if r { "ok" } else { "error" };
    let checks =
        json!({ "database": ok(db.is_ok()), "redis": "disabled", "encryption": ok(enc.is_ok()) });
    if errors.is_empty() {
        Json(json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "checks": checks, "errors": errors })),
        )
            .into_response()
    }
}

async fn detailed(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.audit("system", None);
    ctx.principal.require_scope(scope::ADMIN)?;
    let t = Instant::now();
    let db = state.store.ping().await;
    let db_ms = t.elapsed().as_millis();
    let enc = encryption_ok(&state).await;
    let (size, idle) = state.store.pool_stats();
    let healthy = db.is_ok() && enc.is_ok() && !state.settings.dev_disable_audit;
    Ok(Json(json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "checks": {
            "database": {
                "status": if db.is_ok() { "ok" } else { "error" },
                "backend": state.store.backend(),
                "latency_ms": db_ms,
                "pool_size": size,
                "pool_available": idle,
            },
            "redis": { "status": "disabled" },
            "encryption": {
                "status": if enc.is_ok() { "ok" } else { "error" },
                "provider": state.keys.provider_name(),
                "key_status": if enc.is_ok() { "active" } else { "unavailable" },
                "last_rotation": null,
            },
            "audit": if state.settings.dev_disable_audit {
                json!({ "status": "disabled", "disabled_by": "SCAIVAULT_DEV_DISABLE_AUDIT (dev mode, benchmarks only)", "queue_depth": state.committer.queue_depth() })
            } else {
                json!({ "status": "ok", "queue_depth": state.committer.queue_depth() })
            },
        }
    }))
    .into_response())
}

async fn version(State(state): State<AppState>) -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": "v1",
        "storage": state.store.backend(),
        "build": { "profile": if cfg!(debug_assertions) { "debug" } else { "release" } },
    }))
    .into_response()
}
