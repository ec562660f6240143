//! Body and query parsing that answers with the documented errors instead of axum's plain-text ones.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use scaivault_core::{Error, ErrorCode};
use serde_json::{Map, Value};

/// A JSON object body. Empty bodies are allowed where the handler says so (`Option`).
pub struct JsonObject(pub Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct.starts_with("application/json") || ct.contains("+json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::new(
                    ErrorCode::PayloadTooLarge,
                    "Request body is too large",
                ))
            } else {
                ApiError(Error::invalid_request("Could not read the request body"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(None));
        }
        // curl -d without -H sends form encoding; accept a missing header but refuse a different type.
        if has_json_type == Some(false) {
            return Err(ApiError(Error::new(
                ErrorCode::UnsupportedMediaType,
                "Request body must be JSON (Content-Type: application/json)",
            )));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(JsonObject(Some(m))),
            Ok(_) => Err(ApiError(Error::invalid_request(
                "Request body must be a JSON object",
            ))),
            Err(e) => Err(ApiError(Error::invalid_request(format!(
                "Malformed JSON at line {} column {}",
                e.line(),
                e.column()
            )))),
        }
    }
}

impl JsonObject {
    pub fn require(self) -> Result<Map<String, Value>, ApiError> {
        self.0
            .ok_or_else(|| ApiError(Error::invalid_request("A JSON body is required")))
    }
}

/// Raw query pairs; values are validated by the handler so each gets a precise error.
pub struct QueryMap(pub Vec<(String, String)>);

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A free-text parameter (an id, an IP): at most 600 characters, no control characters.
    pub fn text(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.len() <= 600 && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
            Some(_) => Err(ApiError(Error::invalid_request(format!(
                "Query parameter '{key}' must be at most 600 characters without control characters"
            )))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no" | "") => Ok(false),
            Some(_) => Err(ApiError(Error::invalid_request(format!(
                "Query parameter '{key}' must be true or false"
            )))),
        }
    }

    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError(Error::invalid_request(format!(
                    "Query parameter '{key}' must be an integer between {min} and {max}"
                )))),
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_pairs(q).map(QueryMap)
    }
}

pub(crate) fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                match v {
                    Some(v) => out.push(v),
                    None => {
                        return Err(ApiError(Error::invalid_request(
                            "Malformed percent-encoding in query string",
                        )))
                    }
                }
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError(Error::invalid_request("Query string is not UTF-8")))
}

/// A path parameter that is valid UTF-8 without NUL; anything else is an `invalid_path` in the envelope.
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let bad = || {
            ApiError(Error::new(
                ErrorCode::InvalidPath,
                "Path is not valid UTF-8 text",
            ))
        };
        let axum::extract::Path(p) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| bad())?;
        if p.contains('\0') {
            return Err(bad());
        }
        Ok(PathParam(p))
    }
}

/// All path parameters of a route, in order, each valid UTF-8 without NUL.
pub struct PathParams(pub Vec<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let bad = || {
            ApiError(Error::new(
                ErrorCode::InvalidPath,
                "Path is not valid UTF-8 text",
            ))
        };
        let axum::extract::Path(p) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|_| bad())?;
        if p.iter().any(|(_, v)| v.contains('\0')) {
            return Err(bad());
        }
        Ok(PathParams(p.into_iter().map(|(_, v)| v).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = serde_urlencoded_pairs("prefix=a%2Fb&limit=10&x").unwrap();
        assert_eq!(q[0], ("prefix".into(), "a/b".into()));
        assert_eq!(q[2], ("x".into(), "".into()));
        assert!(serde_urlencoded_pairs("a=%zz").is_err());
        assert!(serde_urlencoded_pairs("a=%ff").is_err());
    }
}
