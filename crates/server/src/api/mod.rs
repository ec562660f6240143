//! The `/v1` router: one module per API area, merged here, wrapped in the request pipeline.

pub mod audit;
pub mod audit_export;
pub mod auth;
pub mod batch;
pub mod ctx;
pub mod cursor;
pub mod error;
pub mod extract;
pub mod identity;
pub mod oauth;
pub mod policies;
pub mod secret_policies;
pub mod secrets;
pub mod service_accounts;
pub mod system;
pub mod tokens;
pub mod view;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::ApiError;
use scaivault_core::{Error, ErrorCode};

pub fn router(state: AppState) -> Router {
    // Tenant prefixes and partner scope are taken off the URI before routing, so one set of routes
    // serves `/v1/…`, `/v1/t/{tenant}/…` and `/v1/partner/secrets/…`.
    let routes = routes(state);
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(crate::tenancy::rewrite)
            .service(routes),
    )
}

fn routes(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(system::router())
        .merge(auth::router())
        .merge(audit::router())
        .merge(audit_export::router())
        .merge(tokens::router())
        .merge(identity::router())
        .merge(secrets::router())
        .merge(policies::router())
        .merge(secret_policies::router())
        .merge(oauth::router())
        .merge(service_accounts::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ctx::pipeline,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    Error::new(ErrorCode::NotFound, "No such endpoint").into()
}

async fn method_not_allowed() -> ApiError {
    Error::new(
        ErrorCode::MethodNotAllowed,
        "Method not allowed on this endpoint",
    )
    .into()
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("PN0001", "handler panicked").into_response()
}
