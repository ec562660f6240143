//! An acknowledged write survives `kill -9`: a writer PUTs as fast as it can, the server is killed
//! mid-stream, and after a restart on the same data every write that got a 2xx reads back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::harness::{spawn, spawn_with_env, Backend, TestServer};

async fn acknowledged_writes_survive_kill9(backend: Backend) {
    let mut s = spawn(backend).await;
    let client = s.client();
    let base = s.base_url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        let mut acked: Vec<u64> = Vec::new();
        let mut i: u64 = 0;
        while !writer_stop.load(Ordering::Relaxed) {
            let res = client
                .put(format!("{base}/v1/secrets/dur/k{i}"))
                .json(&json!({"data": {"value": format!("v{i}")}}))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => acked.push(i),
                Ok(r) => panic!("write {i} failed before the kill: {}", r.status()),
                // The server is gone: whatever was in flight is unacknowledged.
                Err(_) => break,
            }
            i += 1;
        }
        (acked, i)
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    s.kill9().await;
    stop.store(true, Ordering::Relaxed);
    let (acked, attempted) = writer.await.expect("writer task");
    eprintln!(
        "{} acknowledged writes out of {attempted} attempted before kill -9",
        acked.len()
    );
    assert!(
        acked.len() >= 5,
        "the writer got only {} writes acknowledged in 2 s",
        acked.len()
    );

    s.restart().await;
    let mut lost = Vec::new();
    for i in &acked {
        let r = s.get(&format!("/v1/secrets/dur/k{i}")).await;
        if r.status != 200 || r.body["data"]["value"] != format!("v{i}") {
            lost.push(format!("dur/k{i}: {r}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost after kill -9:\n{}",
        lost.len(),
        acked.len(),
        lost.join("\n")
    );

    // The restarted server keeps working on the same data.
    let w = s.write_kv("dur/after", json!({"value": "after"})).await;
    assert_eq!(w["version"], 1, "{w}");
    if let Some(first) = acked.first() {
        let w = s
            .write_kv(&format!("dur/k{first}"), json!({"value": "again"}))
            .await;
        assert_eq!(
            w["version"], 2,
            "version numbering continues after the crash: {w}"
        );
    }
}

async fn restart_keeps_everything(backend: Backend) {
    let mut s = spawn(backend).await;
    s.write(
        "keep/a",
        &json!({"data": {"v": "1"}, "metadata": {"description": "d", "tags": ["t"]}}),
    )
    .await;
    s.write_kv("keep/a", json!({"v": "2"})).await;
    s.write_kv("keep/gone", json!({"v": "1"})).await;
    s.delete("/v1/secrets/keep/gone").await.expect(200);
    let before = s.get("/v1/secrets/keep/a/versions").await;
    before.expect(200);

    s.restart().await;
    let got = s.read("keep/a").await;
    assert_eq!(got["version"], 2);
    assert_eq!(got["data"]["v"], "2");
    assert_eq!(got["metadata"]["description"], "d");
    assert_eq!(s.read("keep/a?version=1").await["data"]["v"], "1");
    s.get("/v1/secrets/keep/gone")
        .await
        .expect_error(404, "secret_not_found");
    let after = s.get("/v1/secrets/keep/a/versions").await;
    after.expect(200);
    assert_eq!(
        before.body["history"], after.body["history"],
        "history survives a restart"
    );
    // The same admin token still works (whoami), and the gone secret can still be restored.
    s.get("/v1/auth/whoami").await.expect(200);
    s.post("/v1/secrets/keep/gone/restore", &json!({}))
        .await
        .expect(200);
    assert_eq!(s.read("keep/gone").await["data"]["v"], "1");
}

/// Every acknowledged read has its audit entry on disk: concurrent readers run until `kill -9`, and
/// after a restart each acknowledged read's entry is found (by request id) and the chain verifies.
/// On SQLite these entries live in the audit journal until the indexer moves them, so this covers its
/// replay at start-up.
async fn acknowledged_reads_are_audited_after_kill9(backend: Backend) {
    reads_audited_after_kill9(spawn(backend).await).await;
}

/// The same with `SCAIVAULT_AUDIT_SYNC=interval`: a read is answered once its entry is written to the
/// journal file, before any fsync, and a crash of the server process loses none of them (the kernel
/// still has the pages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reads_are_audited_after_kill9_with_interval_sync() {
    let s = spawn_with_env(Backend::Sqlite, &[("SCAIVAULT_AUDIT_SYNC", "interval")]).await;
    reads_audited_after_kill9(s).await;
}

async fn reads_audited_after_kill9(mut s: TestServer) {
    s.write_kv("durread/a", json!({"value": "x"})).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, stop) = (s.client(), s.base_url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked: Vec<String> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let res = client
                        .get(format!("{base}/v1/secrets/durread/a"))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            let id = r
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .expect("x-request-id")
                                .to_owned();
                            acked.push(id);
                        }
                        Ok(r) => panic!("read failed before the kill: {}", r.status()),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9().await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for r in readers {
        acked.extend(r.await.expect("reader task"));
    }
    assert!(acked.len() >= 5, "only {} reads acknowledged", acked.len());

    s.restart().await;
    let mut found = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/audit/logs?action=read&limit=1000&cursor={c}"),
            None => "/v1/audit/logs?action=read&limit=1000".to_owned(),
        };
        let page = s.get(&url).await;
        page.expect(200);
        for e in page.body["logs"].as_array().unwrap() {
            if let Some(id) = e["request_id"].as_str() {
                found.insert(id.to_owned());
            }
        }
        match page.body["cursor"].as_str() {
            Some(c) if page.body["has_more"] == true => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged reads have no audit entry after kill -9: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let v = s.get("/v1/audit/verify").await;
    v.expect(200);
    assert_eq!(v.body["valid"], true, "{v}");
    // The chain goes on from the replayed head.
    s.read("durread/a").await;
    s.write_kv("durread/a", json!({"value": "y"})).await;
    let v = s.get("/v1/audit/verify").await;
    assert_eq!(v.body["valid"], true, "{v}");
    // Read counters include the replayed reads.
    let m = s.get("/v1/secrets/durread/a/metadata").await;
    m.expect(200);
    let count = m.body["access_count_30d"].as_i64().unwrap_or(-1);
    assert!(
        count > i64::try_from(acked.len()).unwrap(),
        "access_count_30d {count} should count the {} acknowledged reads and the one after restart: {m}",
        acked.len()
    );
}

/// PostgreSQL ends every session of the server's database (as a restart or a failover does): each
/// connection the server held fails at most one request, with `503`, and is then replaced, for reads,
/// their audit commits and writes alike. A dead connection put back for reuse would fail request after
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_ended_by_the_database_fail_one_request_each() {
    let s = spawn(Backend::Postgres).await;
    let paths: Vec<String> = (0..16).map(|i| format!("sessions/p{i:02}")).collect();
    for p in &paths {
        s.write_kv(p, json!({"v": "1"})).await;
    }
    // Concurrent reads and writes open several connections of each kind.
    for round in 0..3 {
        let mut set = tokio::task::JoinSet::new();
        for p in &paths {
            let (client, url) = (s.client(), s.url(&format!("/v1/secrets/{p}")));
            let body = json!({"data": {"v": format!("w{round}")}});
            set.spawn(async move {
                let read = client.get(&url).send().await.expect("send").status();
                let write = client
                    .put(&url)
                    .json(&body)
                    .send()
                    .await
                    .expect("send")
                    .status();
                (read.as_u16(), write.as_u16())
            });
        }
        while let Some(done) = set.join_next().await {
            assert_eq!(done.expect("join"), (200, 200));
        }
    }
    let mut pg = crate::harness::pg_connection(&s).await;
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&mut pg)
    .await
    .expect("end the server's sessions");
    assert!(ended >= 4, "only {ended} sessions to end");

    // One request at a time, so every connection that died is met in turn.
    let mut failures = 0;
    for (what, wanted) in [("read", 20), ("write", 5)] {
        let mut streak = 0;
        let mut tries = 0;
        while streak < wanted {
            tries += 1;
            assert!(
                tries <= ended + wanted,
                "{what}s still failing after {tries} tries ({failures} failures, {ended} sessions ended)"
            );
            let url = s.url(&format!("/v1/secrets/{}", paths[0]));
            let r = match what {
                "read" => s.client().get(&url).send().await,
                _ => {
                    s.client()
                        .put(&url)
                        .json(&json!({"data": {"v": "after"}}))
                        .send()
                        .await
                }
            }
            .expect("send");
            match r.status().as_u16() {
                200 => streak += 1,
                503 => {
                    failures += 1;
                    streak = 0;
                }
                other => panic!("{what}: unexpected status {other}"),
            }
        }
    }
    assert!(
        failures <= ended,
        "{failures} requests failed for {ended} ended sessions"
    );
    assert_eq!(s.read(&paths[0]).await["data"]["v"], "after");
}

both!(
    acknowledged_writes_survive_kill9,
    restart_keeps_everything,
    acknowledged_reads_are_audited_after_kill9
);
