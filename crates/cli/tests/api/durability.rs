//! An acknowledged write survives `kill -9`: a writer PUTs as fast as it can, the server is killed
//! mid-stream, and after a restart on the same data every write that got a 2xx reads back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::harness::{spawn, Backend};

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

both!(acknowledged_writes_survive_kill9, restart_keeps_everything);
