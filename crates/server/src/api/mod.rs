//! The `/v1` router: one module per API area, merged here, wrapped in the request pipeline.

pub mod audit;
pub mod auth;
pub mod batch;
pub mod ctx;
pub mod cursor;
pub mod error;
pub mod extract;
pub mod oauth;
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
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(system::router())
        .merge(auth::router())
        .merge(audit::router())
        .merge(tokens::router())
        .merge(secrets::router())
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
