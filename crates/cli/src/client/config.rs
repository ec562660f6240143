//! The client configuration file (`~/.scaivault/config.json`, or `$SCAIVAULT_CONFIG`)
//! and the resolution of effective settings: flag > environment > file > default.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::http::{exit, ApiError, ClientOptions};

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8443";

pub const ENV_CONFIG: &str = "SCAIVAULT_CONFIG";
pub const ENV_URL: &str = "SCAIVAULT_URL";
pub const ENV_TOKEN: &str = "SCAIVAULT_TOKEN";
pub const ENV_TENANT: &str = "SCAIVAULT_TENANT_ID";
pub const ENV_PARTNER: &str = "SCAIVAULT_PARTNER_ID";
pub const ENV_DEBUG: &str = "SCAIVAULT_DEBUG";

/// Keys settable with `scaivault config set`.
pub const SETTABLE_KEYS: [&str; 3] = ["base_url", "tenant_id", "partner_id"];

/// The on-disk configuration. Unknown keys are kept as they were.
#[derive(Default, Serialize, Deserialize, Clone)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tenant_id", &self.tenant_id)
            .field("partner_id", &self.partner_id)
            .finish_non_exhaustive()
    }
}

impl ConfigFile {
    pub fn set(&mut self, key: &str, value: Option<String>) -> Result<(), ApiError> {
        match key {
            "base_url" => self.base_url = value,
            "tenant_id" => self.tenant_id = value,
            "partner_id" => self.partner_id = value,
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

pub fn unknown_key(key: &str) -> ApiError {
    ApiError::validation(
        "unknown_config_key",
        format!(
            "unknown config key '{key}' (known keys: {})",
            SETTABLE_KEYS.join(", ")
        ),
    )
}

/// Reads an environment variable, treating an empty value as unset.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn debug_enabled() -> bool {
    matches!(
        env_var(ENV_DEBUG).as_deref().map(str::trim),
        Some("1" | "true" | "yes" | "on")
    )
}

/// Where the config file lives: `$SCAIVAULT_CONFIG`, else `$HOME/.scaivault/config.json`.
pub fn config_path() -> Result<PathBuf, ApiError> {
    if let Some(p) = env_var(ENV_CONFIG) {
        return Ok(PathBuf::from(p));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".scaivault").join("config.json")),
        None => Err(ApiError::general(
            "config_unavailable",
            format!("cannot locate the config file: neither ${ENV_CONFIG} nor $HOME is set"),
        )),
    }
}

/// Loads the config file; a missing file is an empty configuration.
pub fn load(path: &Path) -> Result<ConfigFile, ApiError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(ApiError::general(
                "config_unreadable",
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    };
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_json::from_str(&text).map_err(|e| {
        ApiError::general(
            "config_invalid",
            format!("{} is not a valid config file: {e}", path.display()),
        )
    })
}

/// Writes the config file atomically with mode 0600 (its directory 0700 when created).
pub fn save(path: &Path, cfg: &ConfigFile) -> Result<(), ApiError> {
    let fail = |what: &str, e: std::io::Error| {
        ApiError::general(
            "config_unwritable",
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        create_private_dir(&dir).map_err(|e| fail("create the directory for", e))?;
    }
    let mut text = serde_json::to_string_pretty(cfg).map_err(|e| {
        ApiError::general("config_unwritable", format!("cannot serialise config: {e}"))
    })?;
    text.push('\n');
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".to_owned());
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = open_private(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Where an effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Config,
    Default,
    Unset,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Config => "config",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }
}

#[derive(Clone)]
pub struct Setting {
    pub value: Option<String>,
    pub source: Source,
}

/// The effective settings for one invocation.
#[derive(Clone)]
pub struct Settings {
    pub path: PathBuf,
    pub base_url: Setting,
    pub token: Setting,
    pub tenant_id: Setting,
    pub partner_id: Setting,
    pub debug: bool,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("path", &self.path)
            .field("base_url", &self.base_url.value)
            .field("token", &self.token.value.as_ref().map(|_| "<redacted>"))
            .field("tenant_id", &self.tenant_id.value)
            .field("partner_id", &self.partner_id.value)
            .finish_non_exhaustive()
    }
}

fn resolve_one(
    flag: Option<&str>,
    env: &str,
    file: Option<&String>,
    default: Option<&str>,
) -> Setting {
    if let Some(v) = flag.filter(|v| !v.trim().is_empty()) {
        return Setting {
            value: Some(v.trim().to_owned()),
            source: Source::Flag,
        };
    }
    if let Some(v) = env_var(env) {
        return Setting {
            value: Some(v.trim().to_owned()),
            source: Source::Env,
        };
    }
    if let Some(v) = file.filter(|v| !v.trim().is_empty()) {
        return Setting {
            value: Some(v.trim().to_owned()),
            source: Source::Config,
        };
    }
    match default {
        Some(d) => Setting {
            value: Some(d.to_owned()),
            source: Source::Default,
        },
        None => Setting {
            value: None,
            source: Source::Unset,
        },
    }
}

impl Settings {
    pub fn resolve(url_flag: Option<&str>) -> Result<Self, ApiError> {
        let path = config_path()?;
        let file = load(&path)?;
        Ok(Self::from_file(path, file, url_flag))
    }

    pub fn from_file(path: PathBuf, file: ConfigFile, url_flag: Option<&str>) -> Self {
        let base_url = resolve_one(
            url_flag,
            ENV_URL,
            file.base_url.as_ref(),
            Some(DEFAULT_BASE_URL),
        );
        let token = resolve_one(None, ENV_TOKEN, file.token.as_ref(), None);
        let tenant_id = resolve_one(None, ENV_TENANT, file.tenant_id.as_ref(), None);
        let partner_id = resolve_one(None, ENV_PARTNER, file.partner_id.as_ref(), None);
        Self {
            path,
            base_url,
            token,
            tenant_id,
            partner_id,
            debug: debug_enabled(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Setting> {
        match key {
            "base_url" => Some(&self.base_url),
            "tenant_id" => Some(&self.tenant_id),
            "partner_id" => Some(&self.partner_id),
            _ => None,
        }
    }

    /// Options for the HTTP client, optionally with a different token.
    pub fn client_options(&self, token_override: Option<&str>) -> ClientOptions {
        ClientOptions {
            base_url: self
                .base_url
                .value
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            token: token_override
                .map(str::to_owned)
                .or_else(|| self.token.value.clone()),
            tenant_id: self.tenant_id.value.clone(),
            partner_id: self.partner_id.value.clone(),
            debug: self.debug,
        }
    }

    /// Client options for a call that needs a token; no token → exit 2 without a request.
    pub fn authed_options(&self) -> Result<ClientOptions, ApiError> {
        if self.token.value.is_none() {
            return Err(ApiError::local(
                exit::AUTH,
                "authentication_required",
                format!("no token configured; run `scaivault auth login --token <token>` or set {ENV_TOKEN}"),
            ));
        }
        Ok(self.client_options(None))
    }
}
