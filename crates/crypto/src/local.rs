//! Root key held in a local file (dev and small single-node installs). The file holds 64 hex chars,
//! is created with mode 0600, and the key never leaves this process.

use crate::aead::{open, seal, Key};
use crate::{CryptoError, RootKeyProvider};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub struct LocalKeyFile {
    key: Key,
    path: PathBuf,
}

impl LocalKeyFile {
    /// Loads the key file; with `create`, makes a new random key when the file does not exist.
    pub fn open(path: &Path, create: bool) -> Result<LocalKeyFile, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let raw =
                    Zeroizing::new(hex::decode(text.trim()).map_err(|_| CryptoError::Malformed)?);
                Ok(LocalKeyFile {
                    key: Key::from_slice(&raw)?,
                    path: path.to_owned(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = Key::generate();
                write_private(path, &hex::encode(key.as_bytes())).map_err(|e| {
                    CryptoError::Provider(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(LocalKeyFile {
                    key,
                    path: path.to_owned(),
                })
            }
            Err(e) => Err(CryptoError::Provider(format!(
                "cannot read root key file {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[async_trait]
impl RootKeyProvider for LocalKeyFile {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(seal(&self.key, aad, plaintext))
    }

    async fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.key, aad, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        assert!(LocalKeyFile::open(&p, false).is_err());
        let a = LocalKeyFile::open(&p, true).unwrap();
        let b = LocalKeyFile::open(&p, false).unwrap();
        assert_eq!(a.key.as_bytes(), b.key.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(dir.path().join("bad.key"), "zz").unwrap();
        assert!(LocalKeyFile::open(&dir.path().join("bad.key"), false).is_err());
    }
}
