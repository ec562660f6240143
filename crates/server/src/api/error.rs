//! The one place errors become HTTP: `{"error": {"code", "message", "details", "request_id"}}` with the
//! documented status. Internal failures are logged with a site tag and the request id, and the client
//! sees only a generic message.

use super::ctx::current_request_id;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use scaivault_core::{Error, ErrorCode};
use scaivault_store::{OpError, StoreError};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn internal(site: &'static str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(site, request_id = %current_request_id(), error = %detail, "internal error");
        ApiError(Error::internal())
    }

    pub fn unavailable(site: &'static str, what: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(site, request_id = %current_request_id(), error = %detail, "dependency unavailable");
        ApiError(Error::unavailable(what))
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// Maps a failed store operation on `path` to its API error.
    pub fn from_op(e: OpError, path: &str, version: Option<i64>) -> ApiError {
        match e {
            OpError::NotFound => Error::secret_not_found(path).into(),
            OpError::VersionNotFound => Error::version_not_found(path, version.unwrap_or(0)).into(),
            OpError::Conflict { current } => Error::new(
                ErrorCode::VersionConflict,
                format!("Secret '{path}' is at version {current}; fetch the current state and retry"),
            )
            .with_details(json!({ "path": path, "current_version": current }))
            .into(),
            OpError::SoftDeleted { recoverable_until } => Error::new(
                ErrorCode::SecretExists,
                format!("Secret '{path}' is soft-deleted and still recoverable; restore it or delete it permanently first"),
            )
            .with_details(json!({
                "path": path,
                "recoverable_until": scaivault_core::time_fmt::opt_rfc3339(recoverable_until),
            }))
            .into(),
            OpError::Store(detail) => ApiError::unavailable("ST0003", "Storage", detail),
            OpError::AlreadyExists => {
                Error::new(ErrorCode::AlreadyExists, format!("'{path}' already exists")).into()
            }
            OpError::IdentityNotFound => Error::new(
                ErrorCode::IdentityNotFound,
                format!("Identity '{path}' not found"),
            )
            .into(),
            OpError::Missing(code) => {
                // The same message and details as the resource's own GET answers.
                let (code, what, key) = match code {
                    "policy_not_found" => (ErrorCode::PolicyNotFound, "Policy", "policy_id"),
                    "binding_not_found" => (ErrorCode::BindingNotFound, "Binding", "binding_id"),
                    "secret_policy_not_found" => {
                        (ErrorCode::SecretPolicyNotFound, "Secret policy", "secret_policy_id")
                    }
                    "secret_not_found" => return Error::secret_not_found(path).into(),
                    _ => (ErrorCode::NotFound, "Resource", "id"),
                };
                Error::new(code, format!("{what} '{path}' not found"))
                    .with_details(json!({ key: path }))
                    .into()
            }
            OpError::InUse => Error::new(
                ErrorCode::PolicyInUse,
                format!("Policy '{path}' has bindings; remove them first or delete with ?force=true"),
            )
            .with_details(json!({ "id": path }))
            .into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::unavailable("ST0004", "Storage", e)
    }
}

impl From<crate::keys::KeyError> for ApiError {
    fn from(e: crate::keys::KeyError) -> Self {
        ApiError::unavailable("KY0001", "Encryption", e)
    }
}

/// Marks a response with the error code it carries, for the audit entry.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCodeTag(pub ErrorCode);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "error": {
                "code": code.as_str(),
                "message": self.0.message,
                "request_id": current_request_id(),
            }
        });
        if let (Some(d), Some(obj)) = (self.0.details, body["error"].as_object_mut()) {
            obj.insert("details".into(), d);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(ErrorCodeTag(code));
        resp
    }
}
