//! The key chain at run time: root provider → partner keys → tenant keys (cached unwrapped in memory)
//! → per-version data keys (in the crypto crate).

use parking_lot::RwLock;
use scaivault_core::time_fmt::now_micros;
use scaivault_crypto::{seal, unwrap_key, wrap_key, CryptoError, Key, RootKeyProvider};
use scaivault_store::{DynStore, PartnerRow, StoreError, TenantRow};
use std::collections::HashMap;
use std::sync::Arc;

const ROOT_CHECK_KEY: &str = "root_key_check";
const ROOT_CHECK_AAD: &[u8] = b"scaivault-root-check";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tenant {0} has no key (destroyed or never created)")]
    NoTenantKey(String),
    #[error("unknown tenant or partner {0}")]
    Unknown(String),
    #[error(
        "the root key does not open this database's key check: wrong root key file or KMS key"
    )]
    WrongRootKey,
}

pub struct KeyRing {
    root: Arc<dyn RootKeyProvider>,
    store: DynStore,
    tenants: RwLock<HashMap<String, Arc<Key>>>,
}

fn partner_label(id: &str) -> String {
    format!("partner:{id}")
}

fn tenant_label(id: &str) -> String {
    format!("tenant:{id}")
}

impl KeyRing {
    pub fn new(root: Arc<dyn RootKeyProvider>, store: DynStore) -> KeyRing {
        KeyRing {
            root,
            store,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    pub fn provider_name(&self) -> &'static str {
        self.root.name()
    }

    /// On a new database records a check value sealed by the root key; on an existing one verifies it,
    /// so starting with the wrong root key fails loudly instead of failing every read.
    pub async fn verify_or_record_root(&self) -> Result<(), KeyError> {
        match self.store.get_meta(ROOT_CHECK_KEY).await? {
            Some(hexed) => {
                let wrapped = hex::decode(hexed).map_err(|_| KeyError::WrongRootKey)?;
                self.root
                    .unwrap(&wrapped, ROOT_CHECK_AAD)
                    .await
                    .map_err(|_| KeyError::WrongRootKey)?;
                Ok(())
            }
            None => {
                let wrapped = self.root.wrap(b"scaivault", ROOT_CHECK_AAD).await?;
                self.store
                    .set_meta(ROOT_CHECK_KEY, &hex::encode(wrapped))
                    .await?;
                Ok(())
            }
        }
    }

    pub async fn check_root(&self) -> Result<(), KeyError> {
        let probe = self.root.wrap(b"probe", b"probe").await?;
        self.root.unwrap(&probe, b"probe").await?;
        Ok(())
    }

    /// A new partner with a fresh key wrapped by the root key, and the tenant row of kind `partner` (id =
    /// the partner's) that holds its shared secrets. Nothing is stored yet.
    pub async fn new_partner(
        &self,
        id: &str,
        name: &str,
        slug: Option<String>,
        region: Option<String>,
    ) -> Result<(PartnerRow, TenantRow), KeyError> {
        let key = Key::generate();
        let wrapped_key = self
            .root
            .wrap(key.as_bytes(), partner_label(id).as_bytes())
            .await?;
        let now = now_micros();
        let storage_key = Key::generate();
        let partner = PartnerRow {
            id: id.into(),
            name: name.into(),
            wrapped_key,
            created_at: now,
            slug,
            region,
            status: "ACTIVE".into(),
        };
        let storage = TenantRow {
            id: id.into(),
            partner_id: id.into(),
            name: format!("{name} (shared)"),
            wrapped_key: Some(wrap_key(&key, &tenant_label(id), &storage_key)),
            created_at: now,
            slug: None,
            status: "ACTIVE".into(),
            kind: "partner".into(),
            rate_limits: None,
        };
        Ok((partner, storage))
    }

    /// A new tenant row with a fresh key wrapped by its partner's key. Nothing is stored yet.
    pub async fn new_tenant(
        &self,
        id: &str,
        partner_id: &str,
        name: &str,
        slug: Option<String>,
    ) -> Result<TenantRow, KeyError> {
        let partner_key = self.partner_key(partner_id).await?;
        let key = Key::generate();
        Ok(TenantRow {
            id: id.into(),
            partner_id: partner_id.into(),
            name: name.into(),
            wrapped_key: Some(wrap_key(&partner_key, &tenant_label(id), &key)),
            created_at: now_micros(),
            slug,
            status: "ACTIVE".into(),
            rate_limits: None,
            kind: "tenant".into(),
        })
    }

    pub async fn create_partner(&self, id: &str, name: &str) -> Result<(), KeyError> {
        let (partner, storage) = self.new_partner(id, name, None, None).await?;
        self.store.insert_partner(&partner).await?;
        self.store.insert_tenant(&storage).await?;
        Ok(())
    }

    /// Creates the shared-secrets tenant of a partner made before partners had one.
    pub async fn ensure_partner_storage(&self, partner_id: &str) -> Result<(), KeyError> {
        if self.store.get_tenant(partner_id).await?.is_some() {
            return Ok(());
        }
        let p = self
            .store
            .get_partner(partner_id)
            .await?
            .ok_or_else(|| KeyError::Unknown(partner_id.into()))?;
        let mut t = self
            .new_tenant(partner_id, partner_id, &p.name, None)
            .await?;
        t.name = format!("{} (shared)", p.name);
        t.kind = "partner".into();
        self.store.insert_tenant(&t).await?;
        Ok(())
    }

    pub async fn create_tenant(
        &self,
        id: &str,
        partner_id: &str,
        name: &str,
    ) -> Result<(), KeyError> {
        let t = self.new_tenant(id, partner_id, name, None).await?;
        self.store.insert_tenant(&t).await?;
        Ok(())
    }

    async fn partner_key(&self, partner_id: &str) -> Result<Key, KeyError> {
        let p = self
            .store
            .get_partner(partner_id)
            .await?
            .ok_or_else(|| KeyError::Unknown(partner_id.into()))?;
        let raw = self
            .root
            .unwrap(&p.wrapped_key, partner_label(partner_id).as_bytes())
            .await?;
        Ok(Key::from_slice(&raw)?)
    }

    /// The tenant's key, unwrapped once and then served from memory.
    pub async fn tenant_key(&self, tenant_id: &str) -> Result<Arc<Key>, KeyError> {
        if let Some(k) = self.tenants.read().get(tenant_id) {
            return Ok(k.clone());
        }
        let t = self
            .store
            .get_tenant(tenant_id)
            .await?
            .ok_or_else(|| KeyError::Unknown(tenant_id.into()))?;
        let wrapped = t
            .wrapped_key
            .ok_or_else(|| KeyError::NoTenantKey(tenant_id.into()))?;
        let partner_key = self.partner_key(&t.partner_id).await?;
        let key = Arc::new(unwrap_key(
            &partner_key,
            &tenant_label(tenant_id),
            &wrapped,
        )?);
        self.tenants
            .write()
            .insert(tenant_id.to_owned(), key.clone());
        Ok(key)
    }

    /// A sealed probe for readiness checks: proves the cached chain still works without touching data.
    pub fn self_test(key: &Key) -> bool {
        let s = seal(key, b"probe", b"probe");
        scaivault_crypto::open(key, b"probe", &s).is_ok()
    }

    /// Seals issuer-wide material (a signing key) directly under the root key, bound to `label`.
    pub async fn seal_with_root(&self, plaintext: &[u8], label: &str) -> Result<Vec<u8>, KeyError> {
        Ok(self.root.wrap(plaintext, label.as_bytes()).await?)
    }

    /// Opens what [`KeyRing::seal_with_root`] sealed under the same label.
    pub async fn open_with_root(&self, sealed: &[u8], label: &str) -> Result<Vec<u8>, KeyError> {
        Ok(self.root.unwrap(sealed, label.as_bytes()).await?.to_vec())
    }
}
