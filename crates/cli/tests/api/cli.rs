//! The `scaivault` command-line client, black-box: every test runs the real binary (with its own
//! `SCAIVAULT_CONFIG` file, `HOME` and working directory) against a real server from the harness, or —
//! for request shapes and the status → exit-code mapping — against a tiny canned HTTP responder.
//!
//! Exit codes: 0 ok, 1 general, 2 auth, 3 authz, 4 not found, 5 validation.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{random_segment, spawn, Backend, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_scaivault");

/// Environment variables the client reads; removed from every child so the caller's shell cannot leak in.
const CLIENT_ENV: [&str; 6] = [
    "SCAIVAULT_URL",
    "SCAIVAULT_TOKEN",
    "SCAIVAULT_TENANT_ID",
    "SCAIVAULT_PARTNER_ID",
    "SCAIVAULT_DEBUG",
    "SCAIVAULT_CONFIG",
];

/// One isolated client: its own config file, `HOME` and working directory.
pub(crate) struct Cli {
    dir: tempfile::TempDir,
    config: PathBuf,
    vars: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    args: Vec<String>,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`scaivault {}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Out {
    pub(crate) fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "expected exit {expected}: {self}");
        self
    }

    pub(crate) fn ok(&self) -> &Self {
        self.code(0)
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// Asserts the documented error line `error: <code>: <message>[ (request req_…)]` on stderr.
    pub(crate) fn error(&self, exit: i32, code: &str) -> &Self {
        self.code(exit);
        let prefix = format!("error: {code}: ");
        assert!(
            self.stderr.lines().any(|l| l.starts_with(&prefix)),
            "expected a stderr line starting with {prefix:?}: {self}"
        );
        self
    }

    /// Like [`Out::error`], for a failure the server reported: the line ends with its request id.
    pub(crate) fn server_error(&self, exit: i32, code: &str) -> &Self {
        self.error(exit, code);
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default();
        assert!(
            line.contains(" (request req_") && line.ends_with(')'),
            "no request id in {line:?}: {self}"
        );
        self
    }
}

impl Cli {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scaivault-cli-")
            .tempdir()
            .expect("temp dir");
        let config = dir
            .path()
            .join("home")
            .join(".scaivault")
            .join("config.json");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        Cli {
            dir,
            config,
            vars: Vec::new(),
        }
    }

    /// A client whose config file points at `srv` with its admin token.
    pub(crate) fn logged_in(srv: &TestServer) -> Self {
        let cli = Cli::new();
        cli.write_config(&json!({"base_url": srv.base_url, "token": srv.admin_token}));
        cli
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The working directory the binary runs in.
    pub(crate) fn cwd(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.vars.push((k.to_string(), v.to_string()));
        self
    }

    pub(crate) fn write_config(&self, v: &Value) {
        std::fs::create_dir_all(self.config.parent().unwrap()).unwrap();
        std::fs::write(&self.config, serde_json::to_string_pretty(v).unwrap()).unwrap();
    }

    pub(crate) fn read_config(&self) -> Value {
        let text = std::fs::read_to_string(&self.config).expect("config file exists");
        serde_json::from_str(&text).expect("config file is JSON")
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None, &[]).await
    }

    pub(crate) async fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.run_with(args, Some(stdin), &[]).await
    }

    pub(crate) async fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        self.run_with(args, None, extra).await
    }

    async fn run_with(&self, args: &[&str], stdin: Option<&str>, extra: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.cwd());
        for k in CLIENT_ENV {
            cmd.env_remove(k);
        }
        cmd.env("HOME", self.home())
            .env("SCAIVAULT_CONFIG", &self.config)
            .env("NO_COLOR", "1");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let input = stdin.map(str::to_string);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let output = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("spawn scaivault");
            if let Some(text) = input {
                let mut pipe = child.stdin.take().expect("stdin piped");
                pipe.write_all(text.as_bytes()).expect("write stdin");
            }
            child.wait_with_output().expect("wait for scaivault")
        })
        .await
        .expect("join");
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            args,
        }
    }
}

fn paths(v: &Value) -> BTreeSet<String> {
    v["secrets"]
        .as_array()
        .unwrap_or_else(|| panic!("no `secrets` array in {v}"))
        .iter()
        .map(|s| {
            s["path"]
                .as_str()
                .unwrap_or_else(|| panic!("item without path: {s}"))
                .to_string()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(unix)]
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .expect("config file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode,
        0o600,
        "{} has mode {mode:o}, want 600",
        path.display()
    );
}

#[cfg(not(unix))]
fn assert_private(_path: &Path) {}

/// A loopback URL nothing listens on.
pub(crate) fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

// ---- config ------------------------------------------------------------------------------------

#[tokio::test]
async fn config_set_get_show() {
    let cli = Cli::new();

    // Nothing stored: the default base URL.
    let o = cli.run(&["config", "get", "base_url"]).await;
    o.ok();
    assert_eq!(o.stdout, "http://127.0.0.1:8443\n", "{o}");
    let o = cli.run(&["config", "get", "base_url", "--json"]).await;
    assert_eq!(
        o.ok().json(),
        json!({"key": "base_url", "value": "http://127.0.0.1:8443", "source": "default"})
    );

    cli.run(&[
        "config",
        "set",
        "base_url",
        "http://vault.example.test:9999/",
    ])
    .await
    .ok();
    assert_private(&cli.config);
    assert_eq!(
        cli.read_config()["base_url"],
        "http://vault.example.test:9999",
        "trailing slash trimmed"
    );
    let o = cli.run(&["config", "get", "base_url"]).await;
    assert_eq!(o.ok().stdout, "http://vault.example.test:9999\n", "{o}");

    cli.run(&["config", "set", "tenant_id", "ten_abc"])
        .await
        .ok();
    cli.run(&["config", "set", "partner_id", "par_xyz"])
        .await
        .ok();
    assert_eq!(
        cli.run(&["config", "get", "tenant_id"]).await.ok().stdout,
        "ten_abc\n"
    );
    assert_eq!(
        cli.run(&["config", "get", "partner_id"]).await.ok().stdout,
        "par_xyz\n"
    );

    // An empty value removes the key.
    cli.run(&["config", "set", "partner_id", ""]).await.ok();
    assert!(
        cli.read_config().get("partner_id").is_none(),
        "{}",
        cli.read_config()
    );
    let o = cli.run(&["config", "get", "partner_id"]).await;
    assert_eq!(o.ok().stdout, "", "{o}");

    // Unknown keys and bad values are validation errors (exit 5) and change nothing.
    let before = cli.read_config();
    cli.run(&["config", "set", "colour", "blue"])
        .await
        .error(5, "unknown_config_key");
    cli.run(&["config", "get", "colour"])
        .await
        .error(5, "unknown_config_key");
    cli.run(&["config", "set", "token", "skt_x"])
        .await
        .error(5, "unknown_config_key");
    cli.run(&["config", "set", "base_url", "not a url"])
        .await
        .error(5, "invalid_base_url");
    cli.run(&["config", "set", "base_url", "ftp://vault.example.test"])
        .await
        .error(5, "invalid_base_url");
    assert_eq!(cli.read_config(), before);

    // show: every key with its source; the token is never shown.
    let o = cli.run(&["config", "show", "--json"]).await;
    let v = o.ok().json();
    assert_eq!(v["config_file"], cli.config.display().to_string(), "{o}");
    assert_eq!(
        v["base_url"],
        json!({"value": "http://vault.example.test:9999", "source": "config"}),
        "{o}"
    );
    assert_eq!(
        v["tenant_id"],
        json!({"value": "ten_abc", "source": "config"}),
        "{o}"
    );
    assert_eq!(
        v["partner_id"],
        json!({"value": null, "source": "unset"}),
        "{o}"
    );
    assert_eq!(v["token"], json!({"set": false, "source": "unset"}), "{o}");

    let o = cli.run(&["config", "show"]).await;
    o.ok();
    for needle in [
        "KEY",
        "VALUE",
        "SOURCE",
        "base_url",
        "http://vault.example.test:9999",
        "ten_abc",
        "token",
    ] {
        assert!(o.stdout.contains(needle), "missing {needle:?}: {o}");
    }
}

#[tokio::test]
async fn config_keeps_unknown_keys_and_secrets_out_of_show() {
    let cli = Cli::new();
    cli.write_config(
        &json!({"base_url": "http://a.test:1", "token": "skt_do_not_print", "x_extra": {"k": 1}}),
    );
    cli.run(&["config", "set", "tenant_id", "ten_1"]).await.ok();
    let cfg = cli.read_config();
    assert_eq!(
        cfg["x_extra"],
        json!({"k": 1}),
        "unknown keys survive a rewrite: {cfg}"
    );
    assert_eq!(cfg["token"], "skt_do_not_print");
    assert_private(&cli.config);

    for args in [&["config", "show"][..], &["config", "show", "--json"][..]] {
        let o = cli.run(args).await;
        o.ok();
        assert!(
            !o.stdout.contains("skt_do_not_print") && !o.stderr.contains("skt_do_not_print"),
            "{o}"
        );
    }
    let v = cli.run(&["config", "show", "--json"]).await.json();
    assert_eq!(v["token"], json!({"set": true, "source": "config"}));

    // A config file that is not JSON is a general error, not a crash.
    std::fs::write(&cli.config, "{not json").unwrap();
    cli.run(&["config", "show"])
        .await
        .error(1, "config_invalid");
}

#[tokio::test]
async fn config_env_and_flag_precedence() {
    let cli = Cli::new()
        .env("SCAIVAULT_URL", "http://env.example.test:2")
        .env("SCAIVAULT_TENANT_ID", "ten_env");
    cli.write_config(&json!({"base_url": "http://file.example.test:1", "tenant_id": "ten_file"}));

    let o = cli.run(&["config", "get", "base_url"]).await;
    assert_eq!(
        o.ok().stdout,
        "http://env.example.test:2\n",
        "env overrides the file: {o}"
    );
    let v = cli.run(&["config", "show", "--json"]).await.json();
    assert_eq!(
        v["base_url"],
        json!({"value": "http://env.example.test:2", "source": "env"})
    );
    assert_eq!(v["tenant_id"], json!({"value": "ten_env", "source": "env"}));

    let v = cli
        .run(&[
            "config",
            "show",
            "--json",
            "--url",
            "http://flag.example.test:3",
        ])
        .await
        .json();
    assert_eq!(
        v["base_url"],
        json!({"value": "http://flag.example.test:3", "source": "flag"}),
        "--url beats env"
    );

    // `config set` still writes the file (and says the environment wins).
    let o = cli
        .run(&["config", "set", "base_url", "http://file2.example.test:1"])
        .await;
    o.ok();
    assert!(o.stderr.contains("SCAIVAULT_URL"), "{o}");
    assert_eq!(cli.read_config()["base_url"], "http://file2.example.test:1");

    // Without SCAIVAULT_CONFIG the file lives under $HOME/.scaivault/config.json.
    let plain = Cli::new();
    let o = plain
        .run_with(
            &["config", "set", "tenant_id", "ten_home"],
            None,
            &[("SCAIVAULT_CONFIG", "")],
        )
        .await;
    o.ok();
    let home_cfg = plain.home().join(".scaivault").join("config.json");
    assert_eq!(
        plain.config, home_cfg,
        "the test's SCAIVAULT_CONFIG is the $HOME default location"
    );
    assert_eq!(plain.read_config()["tenant_id"], "ten_home");
    assert_private(&home_cfg);
}

// ---- auth --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_whoami_logout() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::new();
    cli.run(&["config", "set", "base_url", &srv.base_url])
        .await
        .ok();

    // No token yet: auth error without a request.
    cli.run(&["auth", "whoami"])
        .await
        .error(2, "authentication_required");
    cli.run(&["secrets", "list"])
        .await
        .error(2, "authentication_required");

    // A wrong token is rejected by the server and not stored.
    let o = cli
        .run(&["auth", "login", "--token", "skt_definitely_not_valid"])
        .await;
    o.code(2);
    assert!(
        o.stderr.starts_with("error: ") && o.stderr.contains("(request req_"),
        "{o}"
    );
    assert!(
        cli.read_config().get("token").is_none(),
        "a rejected token must not be stored"
    );

    let o = cli
        .run(&["auth", "login", "--token", &srv.admin_token])
        .await;
    o.ok();
    assert!(o.stdout.contains("Logged in"), "{o}");
    assert!(
        !o.stdout.contains(&srv.admin_token) && !o.stderr.contains(&srv.admin_token),
        "token echoed: {o}"
    );
    assert_eq!(cli.read_config()["token"], srv.admin_token.as_str());
    assert_eq!(
        cli.read_config()["base_url"],
        srv.base_url.as_str(),
        "login keeps the other keys"
    );
    assert_private(&cli.config);

    let expected = srv.get("/v1/auth/whoami").await;
    expected.expect(200);
    let o = cli.run(&["auth", "whoami"]).await;
    o.ok();
    let id = expected.body["identity_id"].as_str().unwrap();
    assert!(
        o.stdout.contains("identity_id:") && o.stdout.contains(id),
        "{o}"
    );
    assert!(o.stdout.contains("scopes:"), "{o}");
    let v = cli.run(&["auth", "whoami", "--json"]).await.json();
    for key in [
        "identity_id",
        "identity_type",
        "tenant_id",
        "partner_id",
        "scopes",
    ] {
        assert_eq!(v[key], expected.body[key], "whoami --json {key}: {v}");
    }
    assert!(v["scopes"].is_array(), "{v}");

    cli.run(&["secrets", "list"]).await.ok();

    let o = cli.run(&["auth", "logout"]).await;
    o.ok();
    assert!(
        cli.read_config().get("token").is_none(),
        "{}",
        cli.read_config()
    );
    assert_eq!(
        cli.read_config()["base_url"],
        srv.base_url.as_str(),
        "logout keeps the other keys"
    );
    assert_private(&cli.config);
    cli.run(&["auth", "whoami"])
        .await
        .error(2, "authentication_required");
    cli.run(&["auth", "logout"]).await.ok();

    // The token may come on stdin instead of the command line.
    let o = cli
        .run_stdin(&["auth", "login"], &format!("{}\n", srv.admin_token))
        .await;
    o.ok();
    assert_eq!(cli.read_config()["token"], srv.admin_token.as_str());
    let o = cli.run_stdin(&["auth", "login"], "\n").await;
    o.error(5, "invalid_argument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_overrides_config_for_requests() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::new();
    cli.write_config(&json!({"base_url": dead_url(), "token": "skt_bogus_from_file"}));

    // The file points nowhere: connection refused is a general error.
    cli.run(&["auth", "whoami"])
        .await
        .error(1, "connection_failed");
    // SCAIVAULT_URL wins over the file; the file's token is then rejected.
    let o = cli
        .run_env(&["auth", "whoami"], &[("SCAIVAULT_URL", &srv.base_url)])
        .await;
    o.code(2);
    assert!(
        o.stderr.starts_with("error: ") && o.stderr.contains("(request req_"),
        "{o}"
    );
    // ... and SCAIVAULT_TOKEN over the file's token.
    let both = [
        ("SCAIVAULT_URL", srv.base_url.as_str()),
        ("SCAIVAULT_TOKEN", srv.admin_token.as_str()),
    ];
    cli.run_env(&["auth", "whoami"], &both).await.ok();
    cli.run_env(&["secrets", "list", "--json"], &both)
        .await
        .ok();
    // --url beats SCAIVAULT_URL.
    let dead = dead_url();
    cli.run_env(&["auth", "whoami", "--url", &dead], &both)
        .await
        .error(1, "connection_failed");

    // A valid token in the file, a bad one in the environment: the environment wins.
    cli.write_config(&json!({"base_url": srv.base_url, "token": srv.admin_token}));
    cli.run(&["auth", "whoami"]).await.ok();
    cli.run_env(
        &["auth", "whoami"],
        &[("SCAIVAULT_TOKEN", "skt_bogus_from_env")],
    )
    .await
    .code(2);
    cli.run_env(
        &["secrets", "list"],
        &[("SCAIVAULT_TOKEN", "skt_bogus_from_env")],
    )
    .await
    .code(2);
}

/// `SCAIVAULT_TENANT_ID` (or `tenant_id` in the config) makes every request act in that tenant; the server
/// allows it for partner and super admins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_context_from_env_and_config() {
    let srv = spawn(Backend::Sqlite).await;
    srv.post(
        "/v1/identity/tenants",
        &json!({"id": "tnt_cli_other", "name": "CLI other"}),
    )
    .await
    .expect(201);
    let cli = Cli::logged_in(&srv);
    let other = [("SCAIVAULT_TENANT_ID", "tnt_cli_other")];
    cli.run_env(&["secrets", "write", "app/ctx", "k=in-other"], &other)
        .await
        .ok();
    let o = cli
        .run_env(&["secrets", "read", "app/ctx", "--json"], &other)
        .await;
    o.ok();
    assert_eq!(o.json()["data"]["k"], "in-other", "{o}");
    // Without the context the admin's own tenant has no such secret.
    cli.run(&["secrets", "read", "app/ctx"])
        .await
        .server_error(4, "secret_not_found");
    // The config file's tenant_id does the same; an unknown tenant is a 404.
    cli.run(&["config", "set", "tenant_id", "tnt_cli_other"])
        .await
        .ok();
    cli.run(&["secrets", "read", "app/ctx", "--field", "k"])
        .await
        .ok();
    cli.run_env(
        &["secrets", "list"],
        &[("SCAIVAULT_TENANT_ID", "tnt_nowhere")],
    )
    .await
    .server_error(4, "tenant_not_found");
}

// ---- secrets: write / read ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_write_read_field_json() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let p = format!("app/{}/credentials", random_segment(8));

    let o = cli
        .run(&["secrets", "write", &p, "username=admin", "password=s3cret"])
        .await;
    o.ok();
    assert!(
        o.stdout.contains("Created") && o.stdout.contains("version 1"),
        "{o}"
    );
    assert!(
        !o.stdout.contains("s3cret"),
        "write output shows the value: {o}"
    );

    // Human read: a header and a KEY/VALUE table.
    let o = cli.run(&["secrets", "read", &p]).await;
    o.ok();
    for needle in [
        "path:", &p, "version:", "KEY", "VALUE", "username", "admin", "password", "s3cret",
    ] {
        assert!(o.stdout.contains(needle), "missing {needle:?}: {o}");
    }

    // --field prints just the value, raw (no newline added when stdout is not a terminal).
    let o = cli
        .run(&["secrets", "read", &p, "--field", "password"])
        .await;
    assert_eq!(o.ok().stdout, "s3cret", "{o}");
    let o = cli
        .run(&["secrets", "read", &p, "--field", "password", "--json"])
        .await;
    assert_eq!(o.ok().json(), json!("s3cret"), "{o}");
    let o = cli.run(&["secrets", "read", &p, "--field", "nope"]).await;
    o.error(4, "field_not_found");
    assert!(!o.stderr.contains("s3cret"), "{o}");

    // --json is the server's read response.
    let v = cli.run(&["secrets", "read", &p, "--json"]).await.json();
    assert_eq!(v["path"], p.as_str(), "{v}");
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["secret_type"], "kv", "{v}");
    assert_eq!(
        v["data"],
        json!({"username": "admin", "password": "s3cret"}),
        "{v}"
    );
    assert_eq!(
        v["data"]["password"],
        srv.read(&p).await["data"]["password"]
    );

    // A second write is an update; --version reads an older one.
    let o = cli
        .run(&[
            "secrets",
            "write",
            &p,
            "username=admin",
            "password=n3w=pass",
        ])
        .await;
    assert!(
        o.ok().stdout.contains("Updated") && o.stdout.contains("version 2"),
        "{o}"
    );
    assert_eq!(
        cli.run(&["secrets", "read", &p, "--field", "password"])
            .await
            .ok()
            .stdout,
        "n3w=pass"
    );
    let o = cli
        .run(&[
            "secrets",
            "read",
            &p,
            "--version",
            "1",
            "--field",
            "password",
        ])
        .await;
    assert_eq!(o.ok().stdout, "s3cret", "{o}");
    let v = cli
        .run(&["secrets", "read", &p, "--version", "1", "--json"])
        .await
        .json();
    assert_eq!(v["version"], 1, "{v}");

    // write --json is the server's write response (no data).
    let v = cli
        .run(&["secrets", "write", &p, "k=v", "--json"])
        .await
        .json();
    assert_eq!(v["path"], p.as_str(), "{v}");
    assert_eq!(v["version"], 3, "{v}");
    assert!(v.get("data").is_none(), "{v}");

    // Not found → 4 with the server's code and request id.
    cli.run(&["secrets", "read", &p, "--version", "99"])
        .await
        .server_error(4, "version_not_found");
    cli.run(&["secrets", "read", "app/does-not-exist"])
        .await
        .server_error(4, "secret_not_found");

    // Validation → 5, locally or from the server.
    cli.run(&["secrets", "write", &p, "novalue"])
        .await
        .error(5, "invalid_argument");
    cli.run(&["secrets", "write", &p, "=x"])
        .await
        .error(5, "invalid_argument");
    cli.run(&["secrets", "write", &p])
        .await
        .error(5, "invalid_argument");
    cli.run(&["secrets", "read", "app/../etc"])
        .await
        .error(5, "invalid_path");
    cli.run(&["secrets", "read", "App/Upper"])
        .await
        .server_error(5, "invalid_path");
    cli.run(&["secrets", "write", "app//x", "k=v"])
        .await
        .server_error(5, "invalid_path");
    cli.run(&["secrets", "write", &p, "k=v", "--type", "bogus"])
        .await
        .server_error(5, "invalid_secret_type");
    assert_eq!(
        srv.read(&p).await["version"],
        3,
        "failed writes created no version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_write_json_file_cookbook() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let data = json!({"service": "billing", "max_connections": 50, "features": {"beta": true, "regions": ["eu", "us"]}});
    std::fs::write(
        cli.cwd().join("config.json"),
        serde_json::to_string_pretty(&data).unwrap(),
    )
    .unwrap();

    // Verbatim from the cookbook, run in the directory that holds ./config.json.
    let line = "scaivault secrets write app/config --type json --json-file ./config.json";
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    cli.run(&args).await.ok();
    let v = cli
        .run(&["secrets", "read", "app/config", "--json"])
        .await
        .json();
    assert_eq!(v["secret_type"], "json", "{v}");
    assert_eq!(v["data"], data, "{v}");
    let o = cli
        .run(&["secrets", "read", "app/config", "--field", "features"])
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&o.ok().stdout).unwrap(),
        data["features"],
        "{o}"
    );

    // --json-file - reads stdin.
    let o = cli
        .run_stdin(
            &[
                "secrets",
                "write",
                "app/config",
                "--type",
                "json",
                "--json-file",
                "-",
            ],
            r#"{"a": {"b": 1}}"#,
        )
        .await;
    o.ok();
    let v = srv.read("app/config").await;
    assert_eq!(
        (v["version"].clone(), v["data"].clone()),
        (json!(2), json!({"a": {"b": 1}}))
    );

    // key=value pairs apply on top of the file.
    cli.run(&[
        "secrets",
        "write",
        "app/config",
        "--type",
        "json",
        "--json-file",
        "./config.json",
        "service=payments",
    ])
    .await
    .ok();
    let v = srv.read("app/config").await;
    assert_eq!(v["data"]["service"], "payments");
    assert_eq!(v["data"]["max_connections"], 50);

    // Unreadable, non-JSON and non-object files are local validation errors (exit 5).
    std::fs::write(cli.cwd().join("bad.json"), "{not json").unwrap();
    std::fs::write(cli.cwd().join("list.json"), "[1, 2]").unwrap();
    for file in ["./missing.json", "./bad.json", "./list.json"] {
        cli.run(&[
            "secrets",
            "write",
            "app/config",
            "--type",
            "json",
            "--json-file",
            file,
        ])
        .await
        .error(5, "invalid_json_file");
    }
    cli.run_stdin(
        &["secrets", "write", "app/config", "--json-file", "-"],
        "nope",
    )
    .await
    .error(5, "invalid_json_file");

    // Nested data is not a valid kv secret: the server's validation error, exit 5. (Without --type the
    // server infers `json` for nested data.)
    let o = cli
        .run(&[
            "secrets",
            "write",
            "app/nested",
            "--type",
            "kv",
            "--json-file",
            "./config.json",
        ])
        .await;
    o.server_error(5, "validation_error");
    assert!(
        o.stderr.starts_with("error: ") && o.stderr.contains("(request req_"),
        "{o}"
    );
    assert_eq!(
        srv.read("app/config").await["version"],
        3,
        "failed writes created no version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_write_options_and_metadata() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let p = format!("app/{}/api-key", random_segment(8));

    let args = [
        "secrets",
        "write",
        p.as_str(),
        "key=abc",
        "--type",
        "api_key",
        "--expires-in",
        "30d",
        "--max-versions",
        "3",
        "--description",
        "Partner API key",
        "--tag",
        "partner",
        "--tag",
        "billing",
    ];
    let o = cli.run(&args).await;
    assert!(o.ok().stdout.contains("expires"), "{o}");

    let expected = srv.get(&format!("/v1/secrets/{p}/metadata")).await;
    expected.expect(200);
    let v = cli.run(&["secrets", "metadata", &p, "--json"]).await.json();
    assert_eq!(v["path"], p.as_str(), "{v}");
    assert_eq!(v["secret_type"], "api_key", "{v}");
    assert_eq!(v["max_versions"], 3, "{v}");
    assert_eq!(v["version_count"], 1, "{v}");
    assert_eq!(v["metadata"]["description"], "Partner API key", "{v}");
    assert_eq!(v["metadata"]["tags"], json!(["partner", "billing"]), "{v}");
    assert!(v["expires_at"].is_string(), "{v}");
    assert!(
        v.get("data").is_none(),
        "metadata never carries the value: {v}"
    );
    for key in [
        "path",
        "version",
        "version_count",
        "max_versions",
        "metadata",
        "expires_at",
        "created_at",
    ] {
        assert_eq!(
            v[key], expected.body[key],
            "metadata --json {key} differs from the API: {v}"
        );
    }

    let o = cli.run(&["secrets", "metadata", &p]).await;
    o.ok();
    for needle in [
        "path:",
        "type:",
        "api_key",
        "max_versions:",
        "description:",
        "Partner API key",
        "partner,billing",
    ] {
        assert!(o.stdout.contains(needle), "missing {needle:?}: {o}");
    }

    // max_versions prunes.
    for i in 0..3 {
        cli.run(&[
            "secrets",
            "write",
            &p,
            &format!("key=v{i}"),
            "--type",
            "api_key",
        ])
        .await
        .ok();
    }
    let v = cli.run(&["secrets", "versions", &p, "--json"]).await.json();
    assert_eq!(v["current_version"], 4, "{v}");
    assert_eq!(
        v["versions"].as_array().map(Vec::len),
        Some(3),
        "max_versions 3 keeps 3: {v}"
    );

    cli.run(&["secrets", "write", &p, "k=v", "--expires-in", "soon"])
        .await
        .server_error(5, "invalid_duration");
    cli.run(&["secrets", "write", &p, "k=v", "--max-versions", "0"])
        .await
        .server_error(5, "validation_error");
    cli.run(&["secrets", "metadata", "app/none/such"])
        .await
        .server_error(4, "secret_not_found");
}

// ---- secrets: list / expiring ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_list() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let pre = format!("env/{}/", random_segment(8));
    for name in ["a", "b", "c"] {
        srv.write_kv(&format!("{pre}{name}"), json!({"k": name}))
            .await;
    }
    srv.write_kv("other/x", json!({"k": "x"})).await;
    let want = set(&[&format!("{pre}a"), &format!("{pre}b"), &format!("{pre}c")]);

    // --json is exactly the server's list response; `.secrets[].path` as in the CLI docs.
    let v = cli
        .run(&["secrets", "list", "--prefix", &pre, "--json"])
        .await
        .json();
    let api = srv.get(&format!("/v1/secrets?prefix={pre}")).await;
    api.expect(200);
    assert_eq!(v, api.body, "list --json differs from GET /v1/secrets");
    assert_eq!(paths(&v), want);
    let all = cli.run(&["secrets", "list", "--json"]).await.json();
    assert!(
        paths(&all).contains("other/x") && paths(&all).is_superset(&want),
        "{all}"
    );

    // Pagination.
    let page1 = cli
        .run(&[
            "secrets", "list", "--prefix", &pre, "--limit", "2", "--json",
        ])
        .await
        .json();
    assert_eq!(
        page1["secrets"].as_array().map(Vec::len),
        Some(2),
        "{page1}"
    );
    assert_eq!(page1["has_more"], true, "{page1}");
    let cursor = page1["cursor"].as_str().expect("cursor").to_string();
    let page2 = cli
        .run(&[
            "secrets", "list", "--prefix", &pre, "--limit", "2", "--cursor", &cursor, "--json",
        ])
        .await
        .json();
    assert_eq!(page2["has_more"], false, "{page2}");
    let mut seen = paths(&page1);
    seen.extend(paths(&page2));
    assert_eq!(seen, want);

    // Human: an aligned table, and a hint on stderr when there are more.
    let o = cli
        .run(&["secrets", "list", "--prefix", &pre, "--limit", "2"])
        .await;
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header + 2 rows: {o}");
    assert!(
        lines[0].starts_with("PATH") && lines[0].contains("TYPE") && lines[0].contains("VERSION"),
        "{o}"
    );
    let col = lines[0].find("TYPE").unwrap();
    for l in &lines[1..] {
        assert!(l.starts_with(&pre), "{o}");
        assert_eq!(&l[col..col + 2], "kv", "TYPE column aligned: {o}");
    }
    assert!(o.stderr.contains("--cursor"), "{o}");

    // --include-metadata.
    let v = cli
        .run(&[
            "secrets",
            "list",
            "--prefix",
            &pre,
            "--include-metadata",
            "--json",
        ])
        .await
        .json();
    for item in v["secrets"].as_array().unwrap() {
        assert_eq!(item["version_count"], 1, "{v}");
    }
    let o = cli
        .run(&["secrets", "list", "--prefix", &pre, "--include-metadata"])
        .await;
    assert!(
        o.ok()
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .contains("VERSIONS"),
        "{o}"
    );

    let o = cli
        .run(&["secrets", "list", "--prefix", "nothing/here/"])
        .await;
    assert_eq!(o.ok().stdout, "No secrets found.\n", "{o}");
    let v = cli
        .run(&["secrets", "list", "--prefix", "nothing/here/", "--json"])
        .await
        .json();
    assert_eq!(v["secrets"], json!([]), "{v}");

    cli.run(&["secrets", "list", "--limit", "0"]).await.code(5);
    cli.run(&["secrets", "list", "--cursor", "@@not-a-cursor@@"])
        .await
        .server_error(5, "invalid_cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_expiring() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let pre = format!("exp/{}/", random_segment(8));
    let (soon, later, never) = (
        format!("{pre}soon"),
        format!("{pre}later"),
        format!("{pre}never"),
    );
    cli.run(&["secrets", "write", &soon, "k=v", "--expires-in", "2d"])
        .await
        .ok();
    cli.run(&["secrets", "write", &later, "k=v", "--expires-in", "60d"])
        .await
        .ok();
    cli.run(&["secrets", "write", &never, "k=v"]).await.ok();
    srv.write_kv("elsewhere/soon", json!({"k": "v"})).await;

    let v = cli
        .run(&[
            "secrets", "expiring", "--days", "7", "--prefix", &pre, "--json",
        ])
        .await
        .json();
    assert_eq!(paths(&v), set(&[&soon]), "{v}");
    let api = srv
        .get(&format!("/v1/secrets?expiring_within=7d&prefix={pre}"))
        .await;
    api.expect(200);
    assert_eq!(
        v, api.body,
        "expiring --json differs from GET /v1/secrets?expiring_within=7d"
    );
    let v = cli
        .run(&[
            "secrets", "expiring", "--days", "90", "--prefix", &pre, "--json",
        ])
        .await
        .json();
    assert_eq!(paths(&v), set(&[&soon, &later]), "{v}");

    let o = cli
        .run(&["secrets", "expiring", "--days", "7", "--prefix", &pre])
        .await;
    o.ok();
    assert!(
        o.stdout.lines().next().unwrap_or("").contains("EXPIRES_IN"),
        "{o}"
    );
    assert!(
        o.stdout.contains(&soon) && o.stdout.contains("1d 23h"),
        "{o}"
    );
    let o = cli
        .run(&["secrets", "expiring", "--days", "1", "--prefix", &pre])
        .await;
    assert_eq!(o.ok().stdout, "No secrets expire within 1d.\n", "{o}");
}

// ---- secrets: versions / delete / restore ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_versions_delete_restore() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);
    let p = format!("app/{}/db", random_segment(8));
    cli.run(&["secrets", "write", &p, "password=one"])
        .await
        .ok();
    cli.run(&["secrets", "write", &p, "password=two"])
        .await
        .ok();

    let v = cli.run(&["secrets", "versions", &p, "--json"]).await.json();
    let api = srv.get(&format!("/v1/secrets/{p}/versions")).await;
    assert_eq!(v, api.body, "versions --json differs from the API");
    assert_eq!(v["current_version"], 2, "{v}");
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(2), "{v}");
    let o = cli.run(&["secrets", "versions", &p]).await;
    o.ok();
    for needle in ["current_version:", "VERSION", "STATE", "active"] {
        assert!(o.stdout.contains(needle), "missing {needle:?}: {o}");
    }

    // One version.
    let o = cli.run(&["secrets", "delete", &p, "--version", "1"]).await;
    assert!(o.ok().stdout.contains("Deleted version 1"), "{o}");
    cli.run(&["secrets", "read", &p, "--version", "1"])
        .await
        .server_error(4, "version_not_found");
    let v = cli.run(&["secrets", "versions", &p, "--json"]).await.json();
    let states: Vec<(Value, Value)> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["version"].clone(), x["state"].clone()))
        .collect();
    assert!(states.contains(&(json!(1), json!("deleted"))), "{v}");
    cli.run(&["secrets", "restore", &p, "--version", "1"])
        .await
        .ok();
    assert_eq!(
        cli.run(&[
            "secrets",
            "read",
            &p,
            "--version",
            "1",
            "--field",
            "password"
        ])
        .await
        .ok()
        .stdout,
        "one"
    );

    // The whole secret, soft.
    let o = cli.run(&["secrets", "delete", &p]).await;
    assert!(o.ok().stdout.contains("recoverable until"), "{o}");
    cli.run(&["secrets", "read", &p])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secrets", "write", &p, "password=three"])
        .await
        .server_error(5, "secret_exists");
    let o = cli.run(&["secrets", "restore", &p]).await;
    assert!(o.ok().stdout.contains("Restored"), "{o}");
    assert_eq!(
        cli.run(&["secrets", "read", &p, "--field", "password"])
            .await
            .ok()
            .stdout,
        "two"
    );

    let v = cli.run(&["secrets", "delete", &p, "--json"]).await.json();
    assert_eq!(
        (v["deleted"].clone(), v["permanent"].clone()),
        (json!(true), json!(false)),
        "{v}"
    );
    assert!(v["recoverable_until"].is_string(), "{v}");
    let v = cli.run(&["secrets", "restore", &p, "--json"]).await.json();
    assert_eq!(
        v["path"],
        p.as_str(),
        "restore --json is the metadata view: {v}"
    );

    // --hard → ?permanent=true: gone for good.
    cli.run(&["secrets", "delete", &p, "--hard", "--version", "1"])
        .await
        .error(5, "invalid_argument");
    let v = cli
        .run(&["secrets", "delete", &p, "--hard", "--json"])
        .await
        .json();
    assert_eq!(
        (v["deleted"].clone(), v["permanent"].clone()),
        (json!(true), json!(true)),
        "{v}"
    );
    cli.run(&["secrets", "read", &p])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secrets", "restore", &p])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secrets", "versions", &p])
        .await
        .server_error(4, "secret_not_found");
    cli.run(&["secrets", "delete", &p])
        .await
        .server_error(4, "secret_not_found");

    let q = format!("app/{}/gone", random_segment(8));
    cli.run(&["secrets", "write", &q, "k=v"]).await.ok();
    let o = cli.run(&["secrets", "delete", &q, "--hard"]).await;
    assert!(o.ok().stdout.contains("Permanently deleted"), "{o}");
    cli.run(&["secrets", "write", &q, "k=again"]).await.ok();
}

// ---- auth errors, debug output -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_exits_2_and_debug_never_leaks() {
    let srv = spawn(Backend::Sqlite).await;
    let bad = Cli::new();
    bad.write_config(&json!({"base_url": srv.base_url, "token": "skt_not_a_real_token_0000"}));
    for args in [
        &["secrets", "list"][..],
        &["secrets", "read", "a/b"][..],
        &["secrets", "write", "a/b", "k=v"][..],
    ] {
        let o = bad.run(args).await;
        o.code(2);
        assert!(
            o.stderr.starts_with("error: ") && o.stderr.contains("(request req_"),
            "{o}"
        );
    }

    let cli = Cli::logged_in(&srv).env("SCAIVAULT_DEBUG", "1");
    let p = format!("app/{}/debug", random_segment(8));
    let o = cli
        .run(&["secrets", "write", &p, "password=sup3r-s3cret-value"])
        .await;
    o.ok();
    assert!(
        o.stderr.contains("debug: PUT ") && o.stderr.contains(&format!("/v1/secrets/{p}")),
        "{o}"
    );
    assert!(
        o.stderr.contains("-> 201") && o.stderr.contains("(request req_"),
        "{o}"
    );
    let o = cli
        .run(&["secrets", "read", &p, "--field", "password"])
        .await;
    assert_eq!(o.ok().stdout, "sup3r-s3cret-value");
    assert!(
        o.stderr.contains("debug: GET ") && o.stderr.contains("-> 200"),
        "{o}"
    );
    for o in [
        &o,
        &cli.run(&["secrets", "read", &p]).await,
        &cli.run(&["auth", "whoami"]).await,
    ] {
        assert!(
            !o.stderr.contains(&srv.admin_token),
            "debug output shows the token: {o}"
        );
        assert!(
            !o.stderr.contains("sup3r-s3cret-value"),
            "debug output shows the value: {o}"
        );
    }
}

// ---- request shapes and exit codes against a canned responder ----------------------------------

/// What the canned responder received.
struct Captured {
    /// Request line and headers, lowercased.
    head: String,
    body: String,
}

/// Serves `responses` in order, one connection each; returns the base URL and the captured requests.
fn canned(responses: Vec<(u16, String)>) -> (String, mpsc::Receiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, (status, body)) in responses.into_iter().enumerate() {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let head = head.to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut buf = vec![0; len];
            reader.read_exact(&mut buf).ok();
            let rid = format!("req_canned{i}");
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-request-id: {rid}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut stream = stream;
            let _ = stream.write_all(resp.as_bytes());
            let _ = stream.flush();
            let _ = tx.send(Captured {
                head,
                body: String::from_utf8_lossy(&buf).into_owned(),
            });
        }
    });
    (url, rx)
}

fn envelope(code: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": message, "request_id": "req_from_body"}}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_to_exit_code_mapping() {
    let cases: Vec<(u16, String, i32, &str)> = vec![
        (
            400,
            envelope("invalid_request", "bad"),
            5,
            "invalid_request",
        ),
        (
            401,
            envelope("token_expired", "expired"),
            2,
            "token_expired",
        ),
        (
            403,
            envelope("insufficient_scope", "needs secrets:read"),
            3,
            "insufficient_scope",
        ),
        (
            403,
            envelope("access_denied", "no policy"),
            3,
            "access_denied",
        ),
        (
            404,
            envelope("secret_not_found", "nope"),
            4,
            "secret_not_found",
        ),
        (
            409,
            envelope("version_conflict", "cas"),
            5,
            "version_conflict",
        ),
        (
            410,
            envelope("secret_expired", "expired"),
            4,
            "secret_expired",
        ),
        (
            413,
            envelope("payload_too_large", "big"),
            5,
            "payload_too_large",
        ),
        (
            422,
            envelope("validation_error", "bad field"),
            5,
            "validation_error",
        ),
        (
            429,
            envelope("rate_limited", "slow down"),
            1,
            "rate_limited",
        ),
        (500, envelope("internal_error", "boom"), 1, "internal_error"),
        (
            503,
            envelope("service_unavailable", "down"),
            1,
            "service_unavailable",
        ),
        (502, "<html>bad gateway</html>".to_string(), 1, "http_502"),
    ];
    let (url, rx) = canned(cases.iter().map(|(s, b, _, _)| (*s, b.clone())).collect());
    let cli = Cli::new()
        .env("SCAIVAULT_URL", &url)
        .env("SCAIVAULT_TOKEN", "skt_canned");
    for (i, (status, _, exit, code)) in cases.iter().enumerate() {
        let o = cli.run(&["secrets", "read", "app/x"]).await;
        o.error(*exit, code);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let want = if *status == 502 {
            format!("(request req_canned{i})")
        } else {
            "(request req_from_body)".to_string()
        };
        assert!(
            o.stderr.lines().next().unwrap_or("").ends_with(&want),
            "status {status}: {o}"
        );
    }

    // 2xx with a body that is not JSON is a general error.
    let (url, _rx) = canned(vec![(200, "not json".to_string())]);
    Cli::new()
        .env("SCAIVAULT_URL", &url)
        .env("SCAIVAULT_TOKEN", "t")
        .run(&["secrets", "read", "app/x"])
        .await
        .error(1, "invalid_response");

    // validation_error field details are listed under the error line.
    let body = json!({"error": {"code": "validation_error", "message": "invalid fields", "request_id": "req_v",
        "details": {"fields": [{"field": "options.max_versions", "message": "must be 1-1000"}]}}});
    let (url, _rx) = canned(vec![(422, body.to_string())]);
    let o = Cli::new()
        .env("SCAIVAULT_URL", &url)
        .env("SCAIVAULT_TOKEN", "t")
        .run(&["secrets", "write", "app/x", "k=v", "--max-versions", "5000"])
        .await;
    o.error(5, "validation_error");
    assert!(
        o.stderr.contains("options.max_versions: must be 1-1000"),
        "{o}"
    );

    // Nothing listening: general error.
    Cli::new()
        .env("SCAIVAULT_URL", &dead_url())
        .env("SCAIVAULT_TOKEN", "t")
        .run(&["secrets", "list"])
        .await
        .error(1, "connection_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_shapes_and_context_headers() {
    let ok = json!({"path": "p", "version": 1, "secrets": [], "has_more": false, "cursor": null})
        .to_string();
    let (url, rx) = canned(vec![(200, ok); 9]);
    let cli = Cli::new()
        .env("SCAIVAULT_TOKEN", "skt_canned_token")
        .env("SCAIVAULT_PARTNER_ID", "par_env");
    cli.write_config(&json!({"base_url": url, "tenant_id": "ten_file", "partner_id": "par_file"}));
    let next = || rx.recv_timeout(Duration::from_secs(10)).expect("a request");

    cli.run(&["secrets", "read", "app/db", "--version", "2"])
        .await
        .ok();
    let c = next();
    assert!(
        c.head
            .starts_with("get /v1/secrets/app/db?version=2 http/1.1\r\n"),
        "{}",
        c.head
    );
    assert!(
        c.head
            .contains("\r\nauthorization: bearer skt_canned_token\r\n"),
        "{}",
        c.head
    );
    assert!(
        c.head.contains("\r\nx-tenant-id: ten_file\r\n"),
        "tenant from the file: {}",
        c.head
    );
    assert!(
        c.head.contains("\r\nx-partner-id: par_env\r\n"),
        "partner from the env: {}",
        c.head
    );

    cli.run(&[
        "secrets",
        "expiring",
        "--days",
        "30",
        "--prefix",
        "env/prod/",
    ])
    .await
    .ok();
    let c = next();
    assert!(
        c.head
            .starts_with("get /v1/secrets?expiring_within=30d&prefix=env%2fprod%2f http/1.1"),
        "{}",
        c.head
    );

    cli.run(&[
        "secrets",
        "list",
        "--prefix",
        "a/",
        "--limit",
        "5",
        "--include-metadata",
    ])
    .await
    .ok();
    let c = next();
    assert!(
        c.head
            .starts_with("get /v1/secrets?prefix=a%2f&limit=5&include_metadata=true http/1.1"),
        "{}",
        c.head
    );

    cli.run(&["secrets", "delete", "app/old", "--hard"])
        .await
        .ok();
    assert!(next()
        .head
        .starts_with("delete /v1/secrets/app/old?permanent=true http/1.1"));
    cli.run(&["secrets", "delete", "app/old", "--version", "3"])
        .await
        .ok();
    assert!(next()
        .head
        .starts_with("delete /v1/secrets/app/old?version=3 http/1.1"));

    cli.run(&["secrets", "restore", "app/old", "--version", "3"])
        .await
        .ok();
    let c = next();
    assert!(
        c.head
            .starts_with("post /v1/secrets/app/old/restore http/1.1"),
        "{}",
        c.head
    );
    assert_eq!(
        serde_json::from_str::<Value>(&c.body).unwrap(),
        json!({"version": 3})
    );

    let args = [
        "secrets",
        "write",
        "app/key",
        "key=abc",
        "other=x=y",
        "--type",
        "api_key",
        "--expires-in",
        "30d",
        "--max-versions",
        "4",
        "--description",
        "d",
        "--tag",
        "t1",
        "--tag",
        "t2",
        "--cas",
        "0",
    ];
    cli.run(&args).await.ok();
    let c = next();
    assert!(
        c.head.starts_with("put /v1/secrets/app/key http/1.1"),
        "{}",
        c.head
    );
    assert!(
        c.head.contains("\r\ncontent-type: application/json\r\n"),
        "{}",
        c.head
    );
    assert_eq!(
        serde_json::from_str::<Value>(&c.body).unwrap(),
        json!({"data": {"key": "abc", "other": "x=y"}, "secret_type": "api_key",
               "metadata": {"description": "d", "tags": ["t1", "t2"]},
               "options": {"expires_in": "30d", "max_versions": 4, "cas": 0}})
    );

    // Path segments are percent-encoded: a `?` in a path cannot smuggle in a query.
    cli.run(&["secrets", "metadata", "app/we?ird#x"]).await.ok();
    assert!(next()
        .head
        .starts_with("get /v1/secrets/app/we%3fird%23x/metadata http/1.1"));
    cli.run(&["secrets", "versions", "app/db"]).await.ok();
    assert!(next()
        .head
        .starts_with("get /v1/secrets/app/db/versions http/1.1"));
}

// ---- authorisation: a token without the scope ---------------------------------------------------

/// Mints a personal access token with only `scopes` for the admin identity, by inserting it into the
/// SQLite store of `srv` (there is no token-issuing endpoint in this API version).
async fn mint_scoped_token(srv: &TestServer, scopes: &[&str]) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    let who = srv.get("/v1/auth/whoami").await;
    who.expect(200);
    let db = crate::harness::files_under(&srv.data_dir)
        .into_iter()
        .find(|p| {
            p.extension()
                .is_some_and(|e| e == "db" || e == "sqlite" || e == "sqlite3")
        })
        .unwrap_or_else(|| panic!("no SQLite database file under {}", srv.data_dir.display()));
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))
        .unwrap()
        .busy_timeout(Duration::from_secs(10));
    let mut conn = opts.connect().await.unwrap();
    let token = format!("skt_{}", crate::harness::random_alnum(40));
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    sqlx::query(
        "INSERT INTO tokens (id, token_hash, tenant_id, identity_id, name, scopes, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(format!("tok_cli{}", random_segment(12)))
    .bind(scaivault_server::auth::hash_token(&token).to_vec())
    .bind(who.body["tenant_id"].as_str().unwrap())
    .bind(who.body["identity_id"].as_str().unwrap())
    .bind("cli test (scoped)")
    .bind(serde_json::to_string(scopes).unwrap())
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scope_exits_3() {
    let srv = spawn(Backend::Sqlite).await;
    srv.write_kv("app/scoped/x", json!({"k": "v"})).await;
    let token = mint_scoped_token(&srv, &["secrets:list"]).await;
    let cli = Cli::new();
    cli.run(&["config", "set", "base_url", &srv.base_url])
        .await
        .ok();
    cli.run(&["auth", "login", "--token", &token]).await.ok();

    cli.run(&["auth", "whoami"]).await.ok();
    let v = cli.run(&["secrets", "list", "--json"]).await.json();
    assert!(paths(&v).contains("app/scoped/x"), "{v}");
    cli.run(&["secrets", "metadata", "app/scoped/x"]).await.ok();
    cli.run(&["secrets", "read", "app/scoped/x"])
        .await
        .server_error(3, "insufficient_scope");
    cli.run(&["secrets", "read", "app/scoped/x", "--field", "k"])
        .await
        .server_error(3, "insufficient_scope");
    cli.run(&["secrets", "write", "app/scoped/x", "k=w"])
        .await
        .server_error(3, "insufficient_scope");
    cli.run(&["secrets", "delete", "app/scoped/x", "--hard"])
        .await
        .server_error(3, "insufficient_scope");
    assert_eq!(srv.read("app/scoped/x").await["data"], json!({"k": "v"}));
}

/// `scaivault tokens …`, `scaivault service-accounts …` and `auth login --client-id/--client-secret`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_service_accounts_commands() {
    let srv = spawn(Backend::Sqlite).await;
    let cli = Cli::logged_in(&srv);

    // Tokens: create (value once), list, revoke; the revoked token is refused (exit 2).
    let out = cli
        .run(&[
            "--json",
            "tokens",
            "create",
            "--name",
            "ci",
            "--scope",
            "secrets:read",
            "--expires-in",
            "7d",
        ])
        .await;
    let created = out.ok().json();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("skt_"));
    let out = cli.run(&["tokens", "list"]).await;
    out.ok();
    assert!(
        out.stdout.contains(&id) && out.stdout.contains("ci") && !out.stdout.contains(&token),
        "{out}"
    );
    cli.run(&["tokens", "revoke", &id]).await.ok();
    cli.run_env(&["auth", "whoami"], &[("SCAIVAULT_TOKEN", &token)])
        .await
        .error(2, "token_revoked");
    cli.run(&["tokens", "revoke", "tok_nope"])
        .await
        .error(4, "not_found");

    // Service accounts: create (secret once), list, get, rotate, delete.
    let out = cli
        .run(&[
            "--json",
            "service-accounts",
            "create",
            "deployer",
            "--scope",
            "secrets:read",
            "--group",
            "group:ci",
            "--description",
            "deploys",
        ])
        .await;
    let sa = out.ok().json();
    let client_id = sa["client_id"].as_str().unwrap().to_owned();
    let secret = sa["client_secret"].as_str().unwrap().to_owned();
    let out = cli.run(&["service-accounts", "list"]).await;
    out.ok();
    assert!(
        out.stdout.contains("sa:deployer")
            && out.stdout.contains(&client_id)
            && !out.stdout.contains(&secret),
        "{out}"
    );
    let got = cli
        .run(&["--json", "service-accounts", "get", "deployer"])
        .await
        .ok()
        .json();
    assert_eq!(got["scopes"], json!(["secrets:read"]));
    cli.run(&["service-accounts", "get", "nobody"])
        .await
        .error(4, "not_found");
    cli.run(&["service-accounts", "create", "Bad Name"])
        .await
        .error(5, "validation_error");

    // Log in with client credentials in a fresh client: the stored token is the service account's.
    let other = Cli::new();
    let out = other
        .run(&[
            "--url",
            &srv.base_url,
            "auth",
            "login",
            "--client-id",
            &client_id,
            "--client-secret",
            &secret,
        ])
        .await;
    out.ok();
    assert!(out.stdout.contains("sa:deployer"), "{out}");
    let stored = other.read_config()["token"].as_str().unwrap().to_owned();
    assert!(stored.starts_with("eyJ"));
    let me = other
        .run(&["--url", &srv.base_url, "--json", "auth", "whoami"])
        .await
        .ok()
        .json();
    assert_eq!(me["identity_type"], "service_account");
    Cli::new()
        .run(&[
            "--url",
            &srv.base_url,
            "auth",
            "login",
            "--client-id",
            &client_id,
            "--client-secret",
            "wrong",
        ])
        .await
        .error(2, "token_invalid");

    // Rotation without grace retires the old secret; delete disables the account and its token.
    let rotated = cli
        .run(&["--json", "service-accounts", "rotate-secret", "sa:deployer"])
        .await
        .ok()
        .json();
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    Cli::new()
        .run(&[
            "--url",
            &srv.base_url,
            "auth",
            "login",
            "--client-id",
            &client_id,
            "--client-secret",
            &secret,
        ])
        .await
        .error(2, "token_invalid");
    cli.run(&["service-accounts", "delete", "deployer"])
        .await
        .ok();
    other
        .run(&["--url", &srv.base_url, "auth", "whoami"])
        .await
        .error(2, "token_revoked");
}
