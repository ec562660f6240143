//! The server process itself: HTTPS from TLS_CERT_FILE/TLS_KEY_FILE, one-line errors for bad
//! configuration, and SIGTERM draining in-flight requests without losing acknowledged writes.

use crate::harness::{random_alnum, spawn, Backend};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the spawned server however the test ends, so a failing run leaves no process behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scaivault"));
    for v in [
        "DATABASE_URL",
        "BIND_ADDRESS",
        "TLS_CERT_FILE",
        "TLS_KEY_FILE",
        "LOG_FORMAT",
        "SCAIVAULT_DATA_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A throwaway CA and a leaf for 127.0.0.1 signed by it.
    let ca_key = dir.path().join("ca.key");
    let ca = dir.path().join("ca.pem");
    let csr = dir.path().join("leaf.csr");
    let ext = dir.path().join("leaf.ext");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let ok = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed for the TLS test");
        assert!(ok.success(), "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ]
    .map(std::ffi::OsStr::new);
    let o = std::ffi::OsStr::new;
    let mut a = vec![
        o("req"),
        o("-x509"),
        o("-days"),
        o("1"),
        o("-subj"),
        o("/CN=scaivault-test-ca"),
    ];
    a.extend(ec);
    a.extend([o("-keyout"), ca_key.as_os_str(), o("-out"), ca.as_os_str()]);
    openssl(&a);
    let mut a = vec![o("req"), o("-subj"), o("/CN=localhost")];
    a.extend(ec);
    a.extend([o("-keyout"), key.as_os_str(), o("-out"), csr.as_os_str()]);
    openssl(&a);
    openssl(&[
        o("x509"),
        o("-req"),
        o("-days"),
        o("1"),
        o("-in"),
        csr.as_os_str(),
        o("-CA"),
        ca.as_os_str(),
        o("-CAkey"),
        ca_key.as_os_str(),
        o("-CAcreateserial"),
        o("-extfile"),
        ext.as_os_str(),
        o("-out"),
        cert.as_os_str(),
    ]);
    let token = format!("skt_{}", random_alnum(40));
    let mut child = KillOnDrop(
        bin()
            .args([
                "server",
                "--dev",
                "--bind",
                "127.0.0.1:0",
                "--dev-root-token",
                &token,
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("TLS_CERT_FILE", &cert)
            .env("TLS_KEY_FILE", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("server printed no listening line");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // The handshake is verified against the test CA by curl (the TLS stack a user would point at us).
    let health = Command::new("curl")
        .args(["-fsS", "--cacert"])
        .arg(&ca)
        .arg(format!("{url}/v1/health"))
        .output()
        .expect("curl must be installed for the TLS test");
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    assert!(String::from_utf8_lossy(&health.stdout).contains("healthy"));
    let write = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--cacert",
        ])
        .arg(&ca)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", r#"{"data": {"k": "v"}}"#])
        .arg(format!("{url}/v1/secrets/tls/check"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&write.stdout), "201");
    // Plain HTTP to the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("{}/v1/health", url.replace("https", "http")))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[test]
fn misconfiguration_is_one_clear_line_and_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let d = d.to_str().unwrap();
    let dev = |extra: &[&'static str]| {
        let mut v = vec!["server", "--dev", "--data-dir", d];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    type Case<'a> = (Vec<String>, Option<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["server".into()], None, "DATABASE_URL"),
        (dev(&[]), Some(("BIND_ADDRESS", "nonsense")), "BIND_ADDRESS"),
        (
            dev(&[]),
            Some(("TLS_CERT_FILE", "/nonexistent.pem")),
            "TLS_CERT_FILE",
        ),
        (dev(&[]), Some(("LOG_FORMAT", "xml")), "LOG_FORMAT"),
        (dev(&[]), Some(("KMS_PROVIDER", "pkcs11")), "KMS_PROVIDER"),
        (
            dev(&[]),
            Some(("DATABASE_URL", "mysql://x")),
            "DATABASE_URL",
        ),
        (
            dev(&["--dev-root-token", "short"]),
            None,
            "SCAIVAULT_DEV_ROOT_TOKEN",
        ),
        (
            dev(&[]),
            Some(("SCAIVAULT_RATE_LIMITS", "reads=1")),
            "SCAIVAULT_RATE_LIMITS",
        ),
        // Turning audit off is for benchmarks in dev mode only.
        (
            vec!["server".into(), "--data-dir".into(), d.to_owned()],
            Some(("SCAIVAULT_DEV_DISABLE_AUDIT", "1")),
            "SCAIVAULT_DEV_DISABLE_AUDIT is only accepted with --dev",
        ),
        (
            dev(&[]),
            Some(("SCAIVAULT_DEV_DISABLE_AUDIT", "yes")),
            "SCAIVAULT_DEV_DISABLE_AUDIT",
        ),
        (
            dev(&[]),
            Some(("SCAIVAULT_AUDIT_SYNC", "sometimes")),
            "SCAIVAULT_AUDIT_SYNC must be",
        ),
        (
            dev(&["--database-url", "postgres://127.0.0.1:5432/never_opened"]),
            Some(("SCAIVAULT_AUDIT_SYNC", "interval")),
            "SCAIVAULT_AUDIT_SYNC=interval is supported with SQLite only",
        ),
    ];
    for (args, env, needle) in cases {
        let mut c = bin();
        // Should a case start after all, it must not take a fixed port.
        c.args(&args).env("BIND_ADDRESS", "127.0.0.1:0");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} should fail");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?} {env:?}: expected one line, got:\n{err}"
        );
        assert!(
            lines[0].starts_with("scaivault: error:") && lines[0].contains(needle),
            "{args:?} {env:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_keeps_acknowledged_writes() {
    let mut s = spawn(Backend::Sqlite).await;
    let pid = s.pid().unwrap();
    let client = s.client();
    let base = s.base_url.clone();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(10);
                for i in 0.. {
                    if Instant::now() > deadline {
                        break;
                    }
                    let path = format!("drain/w{w}/s{i}");
                    let r = client
                        .put(format!("{base}/v1/secrets/{path}"))
                        .json(&json!({"data": {"v": format!("{w}-{i}")}}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.push((path, format!("{w}-{i}"))),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before SIGTERM"
    );
    // The process exits by itself after draining.
    let deadline = Instant::now() + Duration::from_secs(15);
    // Exited means gone or a zombie (the harness reaps its child only on drop).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    != Some("Z")
            })
            .unwrap_or(false)
    };
    while alive() {
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM:\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        s.logs().contains("stopped"),
        "no drain in the log:\n{}",
        s.logs()
    );
    s.restart().await;
    for (path, v) in &acked {
        let got = s.read(path).await;
        assert_eq!(got["data"]["v"], v.as_str(), "{path}");
    }
}
