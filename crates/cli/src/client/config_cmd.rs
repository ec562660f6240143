//! `scaivault config set|get|show`.

use serde_json::{json, Map, Value};

use super::config::{self, Settings, ENV_PARTNER, ENV_TENANT, ENV_URL, SETTABLE_KEYS};
use super::http::{validate_base_url, ApiError};
use super::output::{cell, print_json, println, Table};
use super::{ConfigCommand, GlobalOpts};

fn env_name(key: &str) -> &'static str {
    match key {
        "base_url" => ENV_URL,
        "tenant_id" => ENV_TENANT,
        _ => ENV_PARTNER,
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if SETTABLE_KEYS.contains(&key) {
        Ok(())
    } else {
        Err(config::unknown_key(key))
    }
}

pub fn run(cmd: ConfigCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    match cmd {
        ConfigCommand::Set { key, value } => set(&key, &value, global),
        ConfigCommand::Get { key } => get(&key, global),
        ConfigCommand::Show => show(global),
    }
}

fn set(key: &str, value: &str, global: &GlobalOpts) -> Result<(), ApiError> {
    check_key(key)?;
    let value = value.trim();
    let value = if value.is_empty() {
        None
    } else if key == "base_url" {
        validate_base_url(value)?;
        Some(value.trim_end_matches('/').to_owned())
    } else {
        if value.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "invalid_argument",
                format!("{key} may not contain control characters"),
            ));
        }
        Some(value.to_owned())
    };
    let path = config::config_path()?;
    let mut file = config::load(&path)?;
    file.set(key, value.clone())?;
    config::save(&path, &file)?;
    if config::env_var(env_name(key)).is_some() {
        eprintln!(
            "note: {} is set in the environment and overrides the stored {key}",
            env_name(key)
        );
    }
    if global.json {
        print_json(&json!({"key": key, "value": value, "config_file": path.display().to_string()}));
    } else {
        match &value {
            Some(v) => println(&format!(
                "{key} = {} (saved to {})",
                cell(v),
                path.display()
            )),
            None => println(&format!("{key} removed (saved to {})", path.display())),
        }
    }
    Ok(())
}

fn get(key: &str, global: &GlobalOpts) -> Result<(), ApiError> {
    check_key(key)?;
    let settings = Settings::resolve(global.url.as_deref())?;
    let setting = settings.get(key).ok_or_else(|| config::unknown_key(key))?;
    if global.json {
        print_json(&json!({"key": key, "value": setting.value, "source": setting.source.as_str()}));
    } else if let Some(v) = &setting.value {
        println(&cell(v));
    }
    Ok(())
}

fn show(global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    let token_source = settings.token.source;
    let token_set = settings.token.value.is_some();
    if global.json {
        let mut obj = Map::new();
        obj.insert(
            "config_file".into(),
            json!(settings.path.display().to_string()),
        );
        for key in SETTABLE_KEYS {
            if let Some(s) = settings.get(key) {
                obj.insert(
                    key.into(),
                    json!({"value": s.value, "source": s.source.as_str()}),
                );
            }
        }
        obj.insert(
            "token".into(),
            json!({"set": token_set, "source": token_source.as_str()}),
        );
        obj.insert("debug".into(), json!(settings.debug));
        print_json(&Value::Object(obj));
        return Ok(());
    }
    let mut t = Table::new(&["KEY", "VALUE", "SOURCE"]);
    for key in SETTABLE_KEYS {
        if let Some(s) = settings.get(key) {
            t.row(vec![
                key.to_owned(),
                s.value.as_deref().map(cell).unwrap_or_else(|| "-".into()),
                s.source.as_str().to_owned(),
            ]);
        }
    }
    t.row(vec![
        "token".into(),
        if token_set {
            "<set>".into()
        } else {
            "-".into()
        },
        token_source.as_str().into(),
    ]);
    println(&format!("config file: {}", settings.path.display()));
    t.print();
    Ok(())
}
