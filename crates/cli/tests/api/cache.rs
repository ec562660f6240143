//! Read-after-write coherence. The SQLite store serves reads from an in-process cache of the newest
//! sealed version (sqlite_writer.rs / secret_cache.rs), which its writer updates after each commit,
//! before the requests of that commit are answered. Whatever the backend, a read that starts after a
//! mutation was acknowledged must see it — even while other readers keep the path hot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::harness::{spawn, Backend};

async fn reads_see_every_acknowledged_mutation(backend: Backend) {
    let s = spawn(backend).await;
    let p = "cache/hot";
    let url = format!("/v1/secrets/{p}");
    s.write_kv(p, json!({"v": "0"})).await;

    // Readers keep the path hot (and keep filling the cache) while the writer goes on.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let client = s.client();
        let full = format!("{}{url}", s.base_url);
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let r = client.get(&full).send().await.expect("read");
                assert_eq!(r.status().as_u16(), 200);
                n += 1;
            }
            n
        }));
    }
    for i in 1..=40 {
        let w = s.write_kv(p, json!({"v": i.to_string()})).await;
        assert_eq!(w["version"], i + 1, "{w}");
        let got = s.read(p).await;
        assert_eq!(
            got["version"],
            i + 1,
            "a read after write {i} was acknowledged: {got}"
        );
        assert_eq!(got["data"]["v"], i.to_string(), "{got}");
        let b = s.post("/v1/secrets/batch", &json!({"paths": [p]})).await;
        b.expect(200);
        assert_eq!(
            b.body["secrets"][p]["version"],
            i + 1,
            "batch after write {i}: {b}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.await.expect("reader") > 0);
    }

    // Every other mutation is seen by the next read too.
    s.delete(&format!("{url}?version=41")).await.expect(200);
    assert_eq!(s.read(p).await["version"], 40);
    s.patch(
        &format!("{url}/metadata"),
        &json!({"metadata": {"description": "after"}}),
    )
    .await
    .expect(200);
    assert_eq!(s.read(p).await["metadata"]["description"], "after");
    s.delete(&url).await.expect(200);
    s.get(&url).await.expect_error(404, "secret_not_found");
    s.post(&format!("{url}/restore"), &json!({}))
        .await
        .expect(200);
    assert_eq!(s.read(p).await["data"]["v"], "39");
    s.delete(&format!("{url}?permanent=true")).await.expect(200);
    s.get(&url).await.expect_error(404, "secret_not_found");
    let w = s.write_kv(p, json!({"v": "fresh"})).await;
    assert_eq!(w["version"], 1, "{w}");
    assert_eq!(s.read(p).await["data"]["v"], "fresh");
}

both!(reads_see_every_acknowledged_mutation);
