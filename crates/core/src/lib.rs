//! Domain types of ScaiVault: secret paths, durations, IDs, scopes, secret types, the error vocabulary
//! and the audit hash chain. This crate does no I/O; everything here is pure and unit-tested.

pub mod audit;
pub mod duration;
pub mod error;
pub mod id;
pub mod path;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod time_fmt;

pub use error::{Error, ErrorCode, FieldError};
