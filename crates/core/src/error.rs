//! The stable error vocabulary of the API. Each code has exactly one HTTP status, mapped in one place.

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidPath,
    InvalidSecretType,
    InvalidDuration,
    InvalidCursor,
    ValidationError,
    AuthenticationRequired,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    AccessDenied,
    InsufficientScope,
    TenantAccessDenied,
    SecretNotFound,
    VersionNotFound,
    NotFound,
    MethodNotAllowed,
    SecretExists,
    VersionConflict,
    SecretExpired,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    InternalError,
    ServiceUnavailable,
    IdentityNotFound,
    TenantNotFound,
    PartnerNotFound,
    AlreadyExists,
    MfaRequired,
    IpNotAllowed,
    TimeWindowViolation,
    InvalidPolicy,
    InvalidGlob,
    PolicyNotFound,
    BindingNotFound,
    PolicyInUse,
    SecretPolicyNotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::UnsupportedMediaType => "invalid_request",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::InvalidSecretType => "invalid_secret_type",
            ErrorCode::InvalidDuration => "invalid_duration",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::AuthenticationRequired => "authentication_required",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenRevoked => "token_revoked",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::TenantAccessDenied => "tenant_access_denied",
            ErrorCode::SecretNotFound => "secret_not_found",
            ErrorCode::VersionNotFound => "version_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::SecretExists => "secret_exists",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::SecretExpired => "secret_expired",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::IdentityNotFound => "identity_not_found",
            ErrorCode::TenantNotFound => "tenant_not_found",
            ErrorCode::PartnerNotFound => "partner_not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::IpNotAllowed => "ip_not_allowed",
            ErrorCode::TimeWindowViolation => "time_window_violation",
            ErrorCode::InvalidPolicy => "invalid_policy",
            ErrorCode::InvalidGlob => "invalid_glob",
            ErrorCode::PolicyNotFound => "policy_not_found",
            ErrorCode::BindingNotFound => "binding_not_found",
            ErrorCode::PolicyInUse => "policy_in_use",
            ErrorCode::SecretPolicyNotFound => "secret_policy_not_found",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidPath
            | ErrorCode::InvalidSecretType
            | ErrorCode::InvalidDuration
            | ErrorCode::InvalidCursor => 400,
            ErrorCode::AuthenticationRequired
            | ErrorCode::TokenExpired
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenRevoked => 401,
            ErrorCode::AccessDenied
            | ErrorCode::InsufficientScope
            | ErrorCode::TenantAccessDenied => 403,
            ErrorCode::SecretNotFound
            | ErrorCode::VersionNotFound
            | ErrorCode::NotFound
            | ErrorCode::IdentityNotFound
            | ErrorCode::TenantNotFound
            | ErrorCode::PartnerNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::SecretExists | ErrorCode::VersionConflict | ErrorCode::AlreadyExists => 409,
            ErrorCode::SecretExpired => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ValidationError => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::MfaRequired | ErrorCode::IpNotAllowed | ErrorCode::TimeWindowViolation => {
                403
            }
            ErrorCode::InvalidPolicy | ErrorCode::InvalidGlob => 400,
            ErrorCode::PolicyNotFound
            | ErrorCode::BindingNotFound
            | ErrorCode::SecretPolicyNotFound => 404,
            ErrorCode::PolicyInUse => 409,
        }
    }
}

/// One field that failed validation (`details.fields[]`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// A client-facing error: code, human message, optional details. Never carries secret values.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Error {
        self.details = Some(details);
        self
    }

    pub fn invalid_path(path: &str, why: &str) -> Error {
        // Paths are user input; cap what we echo back.
        let shown: String = path.chars().take(600).collect();
        Error::new(ErrorCode::InvalidPath, format!("Invalid path: {why}"))
            .with_details(json!({ "path": shown, "reason": why }))
    }

    pub fn invalid_duration(input: &str) -> Error {
        let shown: String = input.chars().take(64).collect();
        Error::new(
            ErrorCode::InvalidDuration,
            format!("Duration '{shown}' did not parse; use forms like 30m, 1h, 168h, 90d"),
        )
        .with_details(json!({ "value": shown }))
    }

    pub fn validation(fields: Vec<FieldError>) -> Error {
        let msg = match fields.first() {
            Some(f) if fields.len() == 1 => format!("Invalid field '{}': {}", f.field, f.message),
            _ => format!("{} fields failed validation", fields.len()),
        };
        Error::new(ErrorCode::ValidationError, msg).with_details(json!({ "fields": fields }))
    }

    pub fn field(field: &str, message: impl Into<String>) -> Error {
        Error::validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    pub fn invalid_request(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidRequest, message)
    }

    pub fn secret_not_found(path: &str) -> Error {
        Error::new(
            ErrorCode::SecretNotFound,
            format!("Secret '{path}' not found"),
        )
        .with_details(json!({ "path": path }))
    }

    pub fn version_not_found(path: &str, version: i64) -> Error {
        Error::new(
            ErrorCode::VersionNotFound,
            format!("Version {version} of secret '{path}' not found"),
        )
        .with_details(json!({ "path": path, "version": version }))
    }

    pub fn insufficient_scope(needed: &str) -> Error {
        Error::new(
            ErrorCode::InsufficientScope,
            format!("This token lacks the '{needed}' scope"),
        )
        .with_details(json!({ "required_scope": needed }))
    }

    pub fn internal() -> Error {
        Error::new(
            ErrorCode::InternalError,
            "Internal error; see the server log for this request id",
        )
    }

    pub fn unavailable(what: &str) -> Error {
        Error::new(
            ErrorCode::ServiceUnavailable,
            format!("{what} is unavailable; retry with backoff"),
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_catalogue() {
        assert_eq!(ErrorCode::ValidationError.status(), 422);
        assert_eq!(ErrorCode::InvalidPath.status(), 400);
        assert_eq!(ErrorCode::TokenRevoked.status(), 401);
        assert_eq!(ErrorCode::SecretExists.status(), 409);
        assert_eq!(ErrorCode::RateLimited.status(), 429);
        assert_eq!(ErrorCode::ValidationError.as_str(), "validation_error");
    }

    #[test]
    fn validation_message_names_the_field() {
        let e = Error::field("data", "must be an object");
        assert!(e.message.contains("data"));
        assert_eq!(e.details.unwrap()["fields"][0]["field"], "data");
    }
}
