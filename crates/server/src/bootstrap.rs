//! First start: record the root-key check, create the default partner, tenant and an admin identity
//! holding every scope, and mint its token. Later starts verify the root key and change nothing
//! (except ensuring a fixed dev token exists).

use crate::auth::hash_token;
use crate::keys::{KeyError, KeyRing};
use scaivault_core::time_fmt::now_micros;
use scaivault_core::{id, scope};
use scaivault_store::{DynStore, IdentityRow, TokenRow};
use std::path::Path;

pub const DEFAULT_PARTNER: &str = "ptn_default";
pub const DEFAULT_TENANT: &str = "tnt_default";
pub const ADMIN_IDENTITY: &str = "user:admin@scaivault.local";
const INITIALIZED: &str = "initialized_at";
const DEV_TOKEN_FILE: &str = "dev-token";

pub async fn is_initialized(store: &DynStore) -> Result<bool, KeyError> {
    Ok(store.get_meta(INITIALIZED).await?.is_some())
}

/// Checks a caller-chosen admin token: `skt_` and 20–200 characters of `[A-Za-z0-9_-]`.
pub fn valid_fixed_token(t: &str) -> bool {
    t.starts_with("skt_")
        && (20..=200).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Returns the admin token to print, if there is one to show.
pub async fn bootstrap(
    store: &DynStore,
    keys: &KeyRing,
    fixed_token: Option<&str>,
    dev_data_dir: Option<&Path>,
) -> Result<Option<String>, KeyError> {
    keys.verify_or_record_root().await?;
    if !is_initialized(store).await? {
        keys.create_partner(DEFAULT_PARTNER, "Default partner")
            .await?;
        keys.create_tenant(DEFAULT_TENANT, DEFAULT_PARTNER, "Default tenant")
            .await?;
        store
            .insert_identity(&IdentityRow {
                tenant_id: DEFAULT_TENANT.into(),
                id: ADMIN_IDENTITY.into(),
                identity_type: "user".into(),
                display_name: Some("Administrator".into()),
                roles: serde_json::json!(["super_admin"]).to_string(),
                groups: "[]".into(),
                scopes: serde_json::to_string(scope::ALL).unwrap_or_else(|_| "[]".into()),
                created_at: now_micros(),
                disabled_at: None,
            })
            .await?;
        let token = fixed_token.map_or_else(id::personal_access_token, str::to_owned);
        insert_admin_token(store, &token).await?;
        store
            .set_meta(INITIALIZED, &now_micros().to_string())
            .await?;
        if let (Some(dir), None) = (dev_data_dir, fixed_token) {
            write_dev_token(dir, &token);
        }
        return Ok(Some(token));
    }
    keys.ensure_partner_storage(DEFAULT_PARTNER).await?;
    if let Some(t) = fixed_token {
        if store.token_by_hash(&hash_token(t)).await?.is_none() {
            insert_admin_token(store, t).await?;
        }
        return Ok(Some(t.to_owned()));
    }
    Ok(dev_data_dir
        .and_then(|d| std::fs::read_to_string(d.join(DEV_TOKEN_FILE)).ok())
        .map(|s| s.trim().to_owned()))
}

async fn insert_admin_token(store: &DynStore, token: &str) -> Result<(), KeyError> {
    store
        .insert_token(&TokenRow {
            id: id::random("tok_", 16),
            token_hash: hash_token(token).to_vec(),
            tenant_id: DEFAULT_TENANT.into(),
            identity_id: ADMIN_IDENTITY.into(),
            name: Some("bootstrap admin".into()),
            scopes: serde_json::to_string(scope::ALL).unwrap_or_else(|_| "[]".into()),
            created_at: now_micros(),
            expires_at: None,
            revoked_at: None,
            created_by: None,
        })
        .await?;
    Ok(())
}

/// Dev mode keeps the generated admin token beside the data (mode 0600) so a restart can show it again.
fn write_dev_token(dir: &Path, token: &str) {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    if let Ok(mut f) = opts.open(dir.join(DEV_TOKEN_FILE)) {
        let _ = f.write_all(token.as_bytes());
    }
}
