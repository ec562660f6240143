//! The ScaiVault server: the `/v1` HTTP API (axum), authentication, authorisation, the audit pipeline,
//! key management and start-up. Handlers stay thin: context → authorise → store → audit → response.

pub mod api;
pub mod audit_jobs;
pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod config;
pub mod jwt;
pub mod keys;
pub mod ratelimit;
pub mod serve;
pub mod state;
pub mod tenancy;

pub use config::Settings;
pub use serve::run;
