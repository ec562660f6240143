//! `scaivault secrets ...`

use std::io::{IsTerminal, Read};

use clap::Args;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::config::Settings;
use super::http::{exit, ApiClient, ApiError, ApiResponse};
use super::output::{cell, key_values, print_json, print_raw, println, value_cell, Table};
use super::{GlobalOpts, SecretsCommand};

#[derive(Args, Debug)]
pub struct PathArg {
    /// Secret path, e.g. app/db/credentials
    pub path: String,
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Secret path, e.g. app/db/credentials
    pub path: String,
    /// Read this version instead of the current one
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Print only this field of the value, raw
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    /// Secret path, e.g. app/db/credentials
    pub path: String,
    /// Data as key=value pairs (applied on top of --json-file)
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
    /// Secret type: kv (default), json, certificate, ssh_key, api_key
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// Read the data object from a JSON file ("-" for stdin)
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<String>,
    #[command(flatten)]
    pub options: OptionArgs,
    #[command(flatten)]
    pub metadata: MetadataArgs,
    /// Write only if the current version is N (0: only if the secret does not exist)
    #[arg(long, value_name = "N")]
    pub cas: Option<u64>,
}

/// The metadata flags of `write` and `update-metadata`.
#[derive(Args, Debug, Default)]
pub struct MetadataArgs {
    /// Description (a write replaces the stored metadata with --description/--tag/--owner)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Owner, e.g. team:payments
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
}

impl MetadataArgs {
    /// The `metadata` object of a request: the flags that were given.
    fn to_json(&self) -> Map<String, Value> {
        let mut metadata = Map::new();
        if let Some(d) = &self.description {
            metadata.insert("description".into(), json!(d));
        }
        if !self.tags.is_empty() {
            metadata.insert("tags".into(), json!(self.tags));
        }
        if let Some(o) = &self.owner {
            metadata.insert("owner".into(), json!(o));
        }
        metadata
    }
}

/// The option flags of `write` and `update-metadata`.
#[derive(Args, Debug, Default)]
pub struct OptionArgs {
    /// Expire the secret after this duration from now (30s, 1h, 90d, 2w)
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Number of versions to keep (1-1000)
    #[arg(long, value_name = "N")]
    pub max_versions: Option<u32>,
}

impl OptionArgs {
    /// The `options` object of a request: the flags that were given.
    fn to_json(&self) -> Map<String, Value> {
        let mut options = Map::new();
        if let Some(e) = &self.expires_in {
            options.insert("expires_in".into(), json!(e));
        }
        if let Some(m) = self.max_versions {
            options.insert("max_versions".into(), json!(m));
        }
        options
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only paths starting with this prefix
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Page size (1-1000, server default 100)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue from the cursor of a previous page
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Include metadata, version count and access statistics
    #[arg(long)]
    pub include_metadata: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Secret path
    pub path: String,
    /// Remove the secret and all its versions permanently
    #[arg(long)]
    pub hard: bool,
    /// Soft-delete only this version
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Secret path
    pub path: String,
    /// Restore only this soft-deleted version
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ExpiringArgs {
    /// Window in days
    #[arg(long, value_name = "N")]
    pub days: u32,
    /// Only paths starting with this prefix
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Page size (1-1000, server default 100)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Args, Debug)]
pub struct UpdateMetadataArgs {
    /// Secret path
    pub path: String,
    #[command(flatten)]
    pub metadata: MetadataArgs,
    #[command(flatten)]
    pub options: OptionArgs,
}

#[derive(Args, Debug)]
pub struct BatchReadArgs {
    /// Secret paths (1-100)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Include each secret's metadata
    #[arg(long)]
    pub include_metadata: bool,
    /// Fail the whole request on the first path that cannot be read
    #[arg(long)]
    pub fail_fast: bool,
    /// Read this version of every path
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

#[derive(Args, Debug)]
pub struct BatchMetadataArgs {
    /// Paths or, with --expand-wildcards, patterns such as app/* or app/** (1-100)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Expand * and ** patterns
    #[arg(long)]
    pub expand_wildcards: bool,
}

pub async fn run(cmd: SecretsCommand, global: &GlobalOpts) -> Result<(), ApiError> {
    let settings = Settings::resolve(global.url.as_deref())?;
    // Local argument checks come before the token check, so that they are reported even
    // without a login.
    let prepared = prepare(&cmd)?;
    let client = ApiClient::new(&settings.authed_options()?)?;
    match cmd {
        SecretsCommand::Read(a) => read(&client, *a, global).await,
        SecretsCommand::Write(a) => {
            let body = prepared.unwrap_or(Value::Null);
            write(&client, *a, body, global).await
        }
        SecretsCommand::List(a) => list(&client, *a, global).await,
        SecretsCommand::Metadata(a) => metadata(&client, &a.path, global).await,
        SecretsCommand::Delete(a) => delete(&client, *a, global).await,
        SecretsCommand::Restore(a) => restore(&client, *a, global).await,
        SecretsCommand::Versions(a) => versions(&client, &a.path, global).await,
        SecretsCommand::Expiring(a) => expiring(&client, *a, global).await,
        SecretsCommand::UpdateMetadata(a) => update_metadata(&client, *a, global).await,
        SecretsCommand::BatchRead(a) => batch_read(&client, *a, global).await,
        SecretsCommand::BatchMetadata(a) => batch_metadata(&client, *a, global).await,
    }
}

/// Validates arguments that need no server; for `write` returns the request body.
fn prepare(cmd: &SecretsCommand) -> Result<Option<Value>, ApiError> {
    match cmd {
        SecretsCommand::Write(a) => write_body(a).map(Some),
        SecretsCommand::Delete(a) if a.hard && a.version.is_some() => Err(ApiError::validation(
            "invalid_argument",
            "--hard removes the whole secret; it cannot be combined with --version",
        )),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------- read

async fn read(client: &ApiClient, a: ReadArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let query: Vec<(&str, String)> = a
        .version
        .map(|v| ("version", v.to_string()))
        .into_iter()
        .collect();
    let url = client.secret_url(&a.path, None, &query)?;
    let resp = client.get(url).await?;
    let body = resp.body;
    let data = body.get("data").and_then(Value::as_object);

    if let Some(field) = &a.field {
        let value = data.and_then(|d| d.get(field)).ok_or_else(|| {
            let names: Vec<&str> = data
                .map(|d| d.keys().map(String::as_str).collect())
                .unwrap_or_default();
            ApiError::local(
                exit::NOT_FOUND,
                "field_not_found",
                format!(
                    "secret '{}' has no field '{field}' (fields: {})",
                    a.path,
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?;
        let mut text = match value {
            Value::String(s) if !global.json => s.clone(),
            other if global.json => serde_json::to_string_pretty(other).unwrap_or_default(),
            other => other.to_string(),
        };
        // Raw for pipes (no added newline, like `vault kv get -field`); a newline on a terminal.
        if std::io::stdout().is_terminal() && !text.ends_with('\n') {
            text.push('\n');
        }
        print_raw(&text);
        return Ok(());
    }

    if global.json {
        print_json(&body);
        return Ok(());
    }
    print_raw(&key_values(&[
        ("path", value_cell(body.get("path"))),
        ("version", value_cell(body.get("version"))),
        ("type", value_cell(body.get("secret_type"))),
        ("created_at", value_cell(body.get("created_at"))),
        ("updated_at", value_cell(body.get("updated_at"))),
        ("expires_at", value_cell(body.get("expires_at"))),
    ]));
    println("");
    let mut t = Table::new(&["KEY", "VALUE"]);
    if let Some(d) = data {
        for (k, v) in d {
            t.row(vec![cell(k), value_cell(Some(v))]);
        }
    }
    t.print();
    Ok(())
}

// ---------------------------------------------------------------- write

fn read_json_file(name: &str) -> Result<Map<String, Value>, ApiError> {
    let (text, shown) = if name == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            ApiError::validation(
                "invalid_json_file",
                format!("cannot read JSON from stdin: {e}"),
            )
        })?;
        (s, "stdin".to_owned())
    } else {
        let s = std::fs::read_to_string(name).map_err(|e| {
            ApiError::validation("invalid_json_file", format!("cannot read {name}: {e}"))
        })?;
        (s, name.to_owned())
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        ApiError::validation(
            "invalid_json_file",
            format!("{shown} is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::validation(
            "invalid_json_file",
            format!("{shown} must contain a JSON object"),
        )),
    }
}

fn write_body(a: &WriteArgs) -> Result<Value, ApiError> {
    let mut data = match &a.json_file {
        Some(f) => read_json_file(f)?,
        None => Map::new(),
    };
    for pair in &a.pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ApiError::validation(
                "invalid_argument",
                format!("'{}' is not a key=value pair", cell(pair)),
            ));
        };
        if k.is_empty() {
            return Err(ApiError::validation(
                "invalid_argument",
                format!("'{}' has an empty key", cell(pair)),
            ));
        }
        data.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    if data.is_empty() && a.json_file.is_none() {
        return Err(ApiError::validation(
            "invalid_argument",
            "no data given: pass key=value pairs or --json-file FILE",
        ));
    }

    let mut body = Map::new();
    body.insert("data".into(), Value::Object(data));
    if let Some(t) = &a.secret_type {
        body.insert("secret_type".into(), json!(t));
    }
    let metadata = a.metadata.to_json();
    if !metadata.is_empty() {
        body.insert("metadata".into(), Value::Object(metadata));
    }
    let mut options = a.options.to_json();
    if let Some(c) = a.cas {
        options.insert("cas".into(), json!(c));
    }
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Ok(Value::Object(body))
}

async fn write(
    client: &ApiClient,
    a: WriteArgs,
    body: Value,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let url = client.secret_url(&a.path, None, &[])?;
    let resp = client.put(url, &body).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let b = &resp.body;
    let mut line = format!(
        "{} {} (version {}, type {})",
        if resp.status == 201 {
            "Created"
        } else {
            "Updated"
        },
        cell(&a.path),
        value_cell(b.get("version")),
        value_cell(b.get("secret_type")),
    );
    if let Some(e) = b.get("expires_at").and_then(Value::as_str) {
        line.push_str(&format!(", expires {}", cell(e)));
    }
    println(&line);
    Ok(())
}

// ---------------------------------------------------------------- list / expiring

fn list_query(prefix: Option<&String>, limit: Option<u32>) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(p) = prefix {
        q.push(("prefix", p.clone()));
    }
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    q
}

fn items(body: &Value) -> &[Value] {
    body.get("secrets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn more_hint(body: &Value) {
    if body.get("has_more").and_then(Value::as_bool) == Some(true) {
        if let Some(c) = body.get("cursor").and_then(Value::as_str) {
            eprintln!("(more results: continue with --cursor {})", cell(c));
        }
    }
}

async fn list(client: &ApiClient, a: ListArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let mut q = list_query(a.prefix.as_ref(), a.limit);
    if let Some(c) = &a.cursor {
        q.push(("cursor", c.clone()));
    }
    if a.include_metadata {
        q.push(("include_metadata", "true".into()));
    }
    let url = client.url(&["v1", "secrets"], &q)?;
    let resp = client.get(url).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let secrets = items(&resp.body);
    if secrets.is_empty() {
        println("No secrets found.");
        return Ok(());
    }
    let mut headers = vec![
        "PATH",
        "TYPE",
        "VERSION",
        "TAGS",
        "UPDATED_AT",
        "EXPIRES_AT",
    ];
    if a.include_metadata {
        headers.extend([
            "VERSIONS",
            "ACCESSES_30D",
            "LAST_ACCESSED_AT",
            "DESCRIPTION",
        ]);
    }
    let mut t = Table::new(&headers);
    for s in secrets {
        let mut row = vec![
            value_cell(s.get("path")),
            value_cell(s.get("secret_type")),
            value_cell(s.get("version")),
            value_cell(s.get("tags")),
            value_cell(s.get("updated_at")),
            value_cell(s.get("expires_at")),
        ];
        if a.include_metadata {
            row.push(value_cell(s.get("version_count")));
            row.push(value_cell(s.get("access_count_30d")));
            row.push(value_cell(s.get("last_accessed_at")));
            row.push(value_cell(
                s.get("metadata").and_then(|m| m.get("description")),
            ));
        }
        t.row(row);
    }
    t.print();
    more_hint(&resp.body);
    Ok(())
}

/// "3d 4h", "45m", or "expired".
fn time_left(expires_at: Option<&Value>, now: OffsetDateTime) -> String {
    let Some(at) = expires_at
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    else {
        return "-".into();
    };
    let secs = (at - now).whole_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{}m", m.max(1))
    }
}

async fn expiring(
    client: &ApiClient,
    a: ExpiringArgs,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let mut q = vec![("expiring_within", format!("{}d", a.days))];
    q.extend(list_query(a.prefix.as_ref(), a.limit));
    let url = client.url(&["v1", "secrets"], &q)?;
    let resp = client.get(url).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let secrets = items(&resp.body);
    if secrets.is_empty() {
        println(&format!("No secrets expire within {}d.", a.days));
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let mut t = Table::new(&["PATH", "TYPE", "VERSION", "EXPIRES_AT", "EXPIRES_IN"]);
    for s in secrets {
        t.row(vec![
            value_cell(s.get("path")),
            value_cell(s.get("secret_type")),
            value_cell(s.get("version")),
            value_cell(s.get("expires_at")),
            time_left(s.get("expires_at"), now),
        ]);
    }
    t.print();
    more_hint(&resp.body);
    Ok(())
}

// ---------------------------------------------------------------- metadata / versions

fn print_metadata_view(b: &Value) {
    let meta = b.get("metadata");
    let tags = b
        .get("tags")
        .filter(|t| !t.is_null())
        .or_else(|| meta.and_then(|m| m.get("tags")));
    let rotation = b.get("rotation");
    print_raw(&key_values(&[
        ("path", value_cell(b.get("path"))),
        ("type", value_cell(b.get("secret_type"))),
        ("version", value_cell(b.get("version"))),
        ("version_count", value_cell(b.get("version_count"))),
        ("max_versions", value_cell(b.get("max_versions"))),
        (
            "description",
            value_cell(meta.and_then(|m| m.get("description"))),
        ),
        ("owner", value_cell(meta.and_then(|m| m.get("owner")))),
        ("tags", value_cell(tags)),
        ("created_at", value_cell(b.get("created_at"))),
        ("created_by", value_cell(b.get("created_by"))),
        ("updated_at", value_cell(b.get("updated_at"))),
        ("updated_by", value_cell(b.get("updated_by"))),
        ("expires_at", value_cell(b.get("expires_at"))),
        (
            "rotation_policy_id",
            value_cell(b.get("rotation_policy_id")),
        ),
        (
            "next_rotation_at",
            value_cell(rotation.and_then(|r| r.get("next_rotation_at"))),
        ),
        ("last_accessed_at", value_cell(b.get("last_accessed_at"))),
        ("access_count_30d", value_cell(b.get("access_count_30d"))),
    ]));
}

async fn metadata(client: &ApiClient, path: &str, global: &GlobalOpts) -> Result<(), ApiError> {
    let url = client.secret_url(path, Some("metadata"), &[])?;
    let resp = client.get(url).await?;
    if global.json {
        print_json(&resp.body);
    } else {
        print_metadata_view(&resp.body);
    }
    Ok(())
}

async fn update_metadata(
    client: &ApiClient,
    a: UpdateMetadataArgs,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let mut body = Map::new();
    body.insert("metadata".into(), Value::Object(a.metadata.to_json()));
    let options = a.options.to_json();
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    let url = client.secret_url(&a.path, Some("metadata"), &[])?;
    let resp = client.patch(url, &Value::Object(body)).await?;
    if global.json {
        print_json(&resp.body);
    } else {
        print_metadata_view(&resp.body);
    }
    Ok(())
}

/// Rows of the per-path errors of a batch answer: PATH, `error`, CODE: MESSAGE.
fn batch_error_rows(t: &mut Table, body: &Value, width: usize) {
    for (path, e) in body["errors"].as_object().into_iter().flatten() {
        let mut row = vec![
            cell(path),
            "error".to_owned(),
            format!(
                "{}: {}",
                value_cell(e.get("code")),
                value_cell(e.get("message"))
            ),
        ];
        row.resize(width, String::new());
        t.row(row);
    }
}

async fn batch_read(
    client: &ApiClient,
    a: BatchReadArgs,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let mut options = json!({"include_metadata": a.include_metadata, "fail_fast": a.fail_fast});
    if let Some(v) = a.version {
        options["version"] = json!(v);
    }
    let url = client.url(&["v1", "secrets", "batch"], &[])?;
    let resp = client
        .post(url, &json!({"paths": a.paths, "options": options}))
        .await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    // The table names the keys of each value, never the values (use --json for those).
    let mut t = Table::new(&["PATH", "VERSION", "KEYS"]);
    for (path, s) in resp.body["secrets"].as_object().into_iter().flatten() {
        let keys: Vec<&str> = s["data"]
            .as_object()
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        t.row(vec![
            cell(path),
            value_cell(s.get("version")),
            cell(&keys.join(",")),
        ]);
    }
    batch_error_rows(&mut t, &resp.body, 3);
    t.print();
    Ok(())
}

async fn batch_metadata(
    client: &ApiClient,
    a: BatchMetadataArgs,
    global: &GlobalOpts,
) -> Result<(), ApiError> {
    let url = client.url(&["v1", "secrets", "batch", "metadata"], &[])?;
    let body = json!({"paths": a.paths, "expand_wildcards": a.expand_wildcards});
    let resp = client.post(url, &body).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let mut t = Table::new(&["PATH", "VERSION", "TYPE", "TAGS", "UPDATED"]);
    for (path, m) in resp.body["metadata"].as_object().into_iter().flatten() {
        t.row(vec![
            cell(path),
            value_cell(m.get("version")),
            value_cell(m.get("secret_type")),
            value_cell(m.get("tags")),
            value_cell(m.get("updated_at")),
        ]);
    }
    batch_error_rows(&mut t, &resp.body, 5);
    t.print();
    Ok(())
}

async fn versions(client: &ApiClient, path: &str, global: &GlobalOpts) -> Result<(), ApiError> {
    let url = client.secret_url(path, Some("versions"), &[])?;
    let resp = client.get(url).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let b = &resp.body;
    print_raw(&key_values(&[
        ("path", value_cell(b.get("path"))),
        ("current_version", value_cell(b.get("current_version"))),
        ("max_versions", value_cell(b.get("max_versions"))),
        ("deleted", value_cell(b.get("deleted"))),
    ]));
    println("");
    let mut t = Table::new(&[
        "VERSION",
        "STATE",
        "CREATED_AT",
        "CREATED_BY",
        "DELETED_AT",
        "RESTORED_AT",
    ]);
    for v in b
        .get("versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        t.row(vec![
            value_cell(v.get("version")),
            value_cell(v.get("state")),
            value_cell(v.get("created_at")),
            value_cell(v.get("created_by")),
            value_cell(v.get("deleted_at")),
            value_cell(v.get("restored_at")),
        ]);
    }
    t.print();
    Ok(())
}

// ---------------------------------------------------------------- delete / restore

async fn delete(client: &ApiClient, a: DeleteArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let mut q = Vec::new();
    if a.hard {
        q.push(("permanent", "true".to_owned()));
    }
    if let Some(v) = a.version {
        q.push(("version", v.to_string()));
    }
    let url = client.secret_url(&a.path, None, &q)?;
    let resp: ApiResponse = client.delete(url).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let b = &resp.body;
    let path = cell(&a.path);
    let line = if a.hard {
        format!(
            "Permanently deleted {path} ({} versions)",
            value_cell(b.get("version_count"))
        )
    } else if let Some(v) = a.version {
        format!("Deleted version {v} of {path}")
    } else {
        format!(
            "Deleted {path} ({} versions); recoverable until {}",
            value_cell(b.get("version_count")),
            value_cell(b.get("recoverable_until"))
        )
    };
    println(&line);
    Ok(())
}

async fn restore(client: &ApiClient, a: RestoreArgs, global: &GlobalOpts) -> Result<(), ApiError> {
    let url = client.secret_url(&a.path, Some("restore"), &[])?;
    let body = match a.version {
        Some(v) => json!({"version": v}),
        None => json!({}),
    };
    let resp = client.post(url, &body).await?;
    if global.json {
        print_json(&resp.body);
        return Ok(());
    }
    let path = cell(&a.path);
    match a.version {
        Some(v) => println(&format!("Restored version {v} of {path}")),
        None => println(&format!(
            "Restored {path} (current version {})",
            value_cell(resp.body.get("version"))
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn args(pairs: &[&str]) -> WriteArgs {
        WriteArgs {
            path: "a/b".into(),
            pairs: pairs.iter().map(|s| s.to_string()).collect(),
            secret_type: None,
            json_file: None,
            options: OptionArgs::default(),
            metadata: MetadataArgs::default(),
            cas: None,
        }
    }

    #[test]
    fn pairs_build_data() {
        let b = write_body(&args(&["username=admin", "password=a=b="])).unwrap();
        assert_eq!(
            b,
            json!({"data": {"username": "admin", "password": "a=b="}})
        );
        assert_eq!(write_body(&args(&["novalue"])).unwrap_err().exit, 5);
        assert_eq!(write_body(&args(&["=x"])).unwrap_err().exit, 5);
        assert_eq!(write_body(&args(&[])).unwrap_err().exit, 5);
    }

    #[test]
    fn options_and_metadata() {
        let mut a = args(&["k=v"]);
        a.secret_type = Some("api_key".into());
        a.options.expires_in = Some("30d".into());
        a.options.max_versions = Some(3);
        a.metadata.tags = vec!["x".into(), "y".into()];
        a.metadata.description = Some("d".into());
        let b = write_body(&a).unwrap();
        assert_eq!(
            b,
            json!({"data": {"k": "v"}, "secret_type": "api_key",
                   "metadata": {"description": "d", "tags": ["x", "y"]},
                   "options": {"expires_in": "30d", "max_versions": 3}})
        );
    }

    #[test]
    fn time_left_formats() {
        let now = datetime!(2026-01-01 00:00:00 UTC);
        assert_eq!(
            time_left(Some(&json!("2026-01-03T05:00:00Z")), now),
            "2d 5h"
        );
        assert_eq!(
            time_left(Some(&json!("2026-01-01T02:30:00Z")), now),
            "2h 30m"
        );
        assert_eq!(
            time_left(Some(&json!("2025-12-31T00:00:00Z")), now),
            "expired"
        );
        assert_eq!(time_left(None, now), "-");
    }
}
