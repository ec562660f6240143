//! A small HTTP client for the ScaiVault API, plus the one place that turns an error
//! response into a process exit code.
//!
//! This file depends only on `reqwest`, `serde_json` and `std` so that test code can
//! include it with `#[path = "../../src/client/http.rs"] mod http;`.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Exit codes of the `scaivault` client (documented in the CLI reference).
pub mod exit {
    pub const OK: u8 = 0;
    pub const GENERAL: u8 = 1;
    pub const AUTH: u8 = 2;
    pub const AUTHZ: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const VALIDATION: u8 = 5;
}

/// The single mapping from an HTTP status to a client exit code.
pub fn exit_code_for_status(status: u16) -> u8 {
    match status {
        200..=299 => exit::OK,
        401 => exit::AUTH,
        403 => exit::AUTHZ,
        404 | 410 => exit::NOT_FOUND,
        400 | 409 | 413 | 415 | 422 => exit::VALIDATION,
        _ => exit::GENERAL,
    }
}

/// A failure of a client command: an error response from the server, a transport
/// failure, or a local problem (bad argument, unreadable file, ...).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub details: Option<Value>,
    /// Process exit code for this failure.
    pub exit: u8,
}

impl ApiError {
    pub fn local(exit: u8, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: code.into(),
            message: message.into(),
            request_id: None,
            details: None,
            exit,
        }
    }

    /// A local argument / input error (exit 5).
    pub fn validation(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::local(exit::VALIDATION, code, message)
    }

    /// A general failure (exit 1).
    pub fn general(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::local(exit::GENERAL, code, message)
    }

    /// Builds the error for a non-2xx response from its status, body and `X-Request-ID`.
    pub fn from_response(status: u16, body: &[u8], header_request_id: Option<String>) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let envelope = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .filter(|e| e.is_object());
        let (code, message, body_request_id, details) = match envelope {
            Some(e) => (
                e.get("code").and_then(Value::as_str).map(str::to_owned),
                e.get("message").and_then(Value::as_str).map(str::to_owned),
                e.get("request_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                e.get("details").filter(|d| !d.is_null()).cloned(),
            ),
            None => (None, None, None, None),
        };
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("unexpected response");
        Self {
            status: Some(status),
            code: code.unwrap_or_else(|| format!("http_{status}")),
            message: message.unwrap_or_else(|| format!("HTTP {status} {reason}")),
            request_id: body_request_id.or(header_request_id),
            details,
            exit: exit_code_for_status(status),
        }
    }

    /// `field: message` lines from a `validation_error`'s `details.fields`.
    pub fn field_errors(&self) -> Vec<String> {
        let Some(fields) = self
            .details
            .as_ref()
            .and_then(|d| d.get("fields"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        fields
            .iter()
            .map(|f| {
                let name = f.get("field").and_then(Value::as_str).unwrap_or("?");
                let msg = f
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid");
                format!("{name}: {msg}")
            })
            .collect()
    }
}

impl fmt::Display for ApiError {
    /// `<code>: <message> (request <request_id>)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A successful (2xx) response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    #[allow(dead_code)] // for callers that log it (tests reuse this file)
    pub request_id: Option<String>,
    /// The JSON body (`Value::Null` when the body was empty).
    pub body: Value,
}

/// Connection settings for [`ApiClient`].
#[derive(Clone, Default)]
pub struct ClientOptions {
    pub base_url: String,
    pub token: Option<String>,
    pub tenant_id: Option<String>,
    pub partner_id: Option<String>,
    /// Print method, URL, status and request id to stderr (never headers or bodies).
    pub debug: bool,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tenant_id", &self.tenant_id)
            .field("partner_id", &self.partner_id)
            .field("debug", &self.debug)
            .finish()
    }
}

/// A thin JSON client for `/v1`.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    debug: bool,
}

impl ApiClient {
    pub fn new(opts: &ClientOptions) -> Result<Self, ApiError> {
        let base = parse_base_url(&opts.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = opts.token.as_deref() {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ApiError::local(
                    exit::AUTH,
                    "token_invalid",
                    "the token contains characters that cannot be sent in a header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in [
            ("x-tenant-id", &opts.tenant_id),
            ("x-partner-id", &opts.partner_id),
        ] {
            if let Some(v) = value.as_deref() {
                let hv = HeaderValue::from_str(v).map_err(|_| {
                    ApiError::validation(
                        "invalid_argument",
                        format!("{name} contains invalid characters"),
                    )
                })?;
                headers.insert(name, hv);
            }
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("scaivault-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                ApiError::general("client_error", format!("cannot build HTTP client: {e}"))
            })?;
        Ok(Self {
            http,
            base,
            headers,
            debug: opts.debug,
        })
    }

    /// `base` + `/v1/...` built from already-split path segments (each one is
    /// percent-encoded, so `?`, `#` or `%` in a segment cannot change the URL's meaning)
    /// and query pairs.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ApiError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                ApiError::validation("invalid_argument", "base URL cannot be a base")
            })?;
            path.pop_if_empty();
            for seg in segments {
                path.push(seg);
            }
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// URL of a secret (sub-)resource: `/v1/secrets/{path}[/suffix]`.
    pub fn secret_url(
        &self,
        path: &str,
        suffix: Option<&str>,
        query: &[(&str, String)],
    ) -> Result<Url, ApiError> {
        if path.is_empty() {
            return Err(ApiError::validation(
                "invalid_path",
                "the secret path is empty",
            ));
        }
        let mut segments = vec!["v1", "secrets"];
        for seg in path.split('/') {
            // `Url` silently drops "." and ".." segments; never let that retarget a request.
            if seg == "." || seg == ".." {
                return Err(ApiError::validation(
                    "invalid_path",
                    format!("path '{path}' may not contain '.' or '..' segments"),
                ));
            }
            segments.push(seg);
        }
        if let Some(s) = suffix {
            segments.push(s);
        }
        self.url(&segments, query)
    }

    pub async fn get(&self, url: Url) -> Result<ApiResponse, ApiError> {
        self.send(Method::GET, url, None).await
    }

    pub async fn put(&self, url: Url, body: &Value) -> Result<ApiResponse, ApiError> {
        self.send(Method::PUT, url, Some(body)).await
    }

    pub async fn post(&self, url: Url, body: &Value) -> Result<ApiResponse, ApiError> {
        self.send(Method::POST, url, Some(body)).await
    }

    pub async fn patch(&self, url: Url, body: &Value) -> Result<ApiResponse, ApiError> {
        self.send(Method::PATCH, url, Some(body)).await
    }

    pub async fn delete(&self, url: Url) -> Result<ApiResponse, ApiError> {
        self.send(Method::DELETE, url, None).await
    }

    /// Sends one request. 2xx → `Ok` with the parsed JSON body; anything else → `Err`
    /// with the server's error envelope (or a synthesized one) and the mapped exit code.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<ApiResponse, ApiError> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .headers(self.headers.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                if self.debug {
                    eprintln!("debug: {method} {url} -> failed");
                }
                return Err(transport_error(&e, &self.base));
            }
        };
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if self.debug {
            eprintln!(
                "debug: {method} {url} -> {status} (request {})",
                request_id.as_deref().unwrap_or("-")
            );
        }
        let bytes = resp.bytes().await.map_err(|e| {
            ApiError::general(
                "connection_failed",
                format!("reading the response failed: {e}"),
            )
        })?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_response(status, &bytes, request_id));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                let mut err = ApiError::general(
                    "invalid_response",
                    format!("the server returned a body that is not JSON: {e}"),
                );
                err.status = Some(status);
                err.request_id = request_id.clone();
                err
            })?
        };
        Ok(ApiResponse {
            status,
            request_id,
            body,
        })
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ApiError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ApiError::validation(
            "invalid_base_url",
            format!("base URL '{raw}' is not a URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::validation(
            "invalid_base_url",
            format!("base URL '{raw}' must be an http:// or https:// URL"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::validation(
            "invalid_base_url",
            format!("base URL '{raw}' may not carry a query or fragment"),
        ));
    }
    Ok(url)
}

/// Checks a base URL the way [`ApiClient::new`] will use it.
pub fn validate_base_url(raw: &str) -> Result<(), ApiError> {
    parse_base_url(raw).map(|_| ())
}

fn transport_error(e: &reqwest::Error, base: &Url) -> ApiError {
    // reqwest's own message repeats the full URL (with the query); print the cause instead.
    let detail = std::error::Error::source(e)
        .map(error_chain)
        .unwrap_or_else(|| e.to_string());
    let kind = if e.is_timeout() {
        "timed out talking"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    ApiError::general("connection_failed", format!("{kind} to {base}: {detail}"))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(exit_code_for_status(200), 0);
        assert_eq!(exit_code_for_status(201), 0);
        assert_eq!(exit_code_for_status(401), 2);
        assert_eq!(exit_code_for_status(403), 3);
        assert_eq!(exit_code_for_status(404), 4);
        assert_eq!(exit_code_for_status(410), 4);
        for s in [400, 409, 413, 415, 422] {
            assert_eq!(exit_code_for_status(s), 5);
        }
        for s in [405, 429, 500, 502, 503] {
            assert_eq!(exit_code_for_status(s), 1);
        }
    }

    #[test]
    fn envelope_parsing() {
        let body = br#"{"error":{"code":"secret_not_found","message":"Secret 'a/b' not found","details":{"path":"a/b"},"request_id":"req_1"}}"#;
        let e = ApiError::from_response(404, body, Some("req_header".into()));
        assert_eq!(e.exit, 4);
        assert_eq!(
            e.to_string(),
            "secret_not_found: Secret 'a/b' not found (request req_1)"
        );
        let e = ApiError::from_response(502, b"<html>bad gateway</html>", Some("req_h".into()));
        assert_eq!(e.exit, 1);
        assert_eq!(
            e.to_string(),
            "http_502: HTTP 502 Bad Gateway (request req_h)"
        );
    }

    #[test]
    fn secret_urls_are_encoded() {
        let c = ApiClient::new(&ClientOptions {
            base_url: "http://127.0.0.1:8443/".into(),
            ..Default::default()
        })
        .unwrap();
        let u = c.secret_url("app/db?x=1#y", Some("versions"), &[]).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8443/v1/secrets/app/db%3Fx=1%23y/versions"
        );
        assert!(c.secret_url("a/../b", None, &[]).is_err());
        let u = c
            .url(
                &["v1", "secrets"],
                &[("prefix", "env/prod/".into()), ("limit", "5".into())],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8443/v1/secrets?prefix=env%2Fprod%2F&limit=5"
        );
        let c = ApiClient::new(&ClientOptions {
            base_url: "https://vault.example/prefix".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.secret_url("a", None, &[]).unwrap().as_str(),
            "https://vault.example/prefix/v1/secrets/a"
        );
    }
}
