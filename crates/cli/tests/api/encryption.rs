//! Values are encrypted at rest and never logged: distinctive canary values are written through the API,
//! then every byte the server stored (SQLite files, or every text/bytea/json column of every table in the
//! PostgreSQL database) and everything it printed is searched for them.

use serde_json::json;
use sqlx::Row;

use crate::harness::{
    contains_bytes, files_under, pg_connection, random_alnum, spawn, Backend, TestServer,
};

struct Canaries {
    values: Vec<String>,
}

async fn write_canaries(s: &TestServer) -> Canaries {
    let tag = random_alnum(12);
    let mut values = Vec::new();
    for i in 0..5 {
        let v = format!("plaintext-canary-{tag}-{i}");
        s.write(&format!("enc/c{i}"), &json!({"data": {"password": v}}))
            .await;
        values.push(v);
    }
    // A second version, a json secret and a batch read exercise the other write and read paths.
    let v = format!("plaintext-canary-{tag}-v2");
    s.write("enc/c0", &json!({"data": {"password": v}})).await;
    values.push(v);
    let v = format!("plaintext-canary-{tag}-json");
    s.write(
        "enc/json",
        &json!({"data": {"deep": {"list": [v]}}, "secret_type": "json"}),
    )
    .await;
    values.push(v);
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": ["enc/c1", "enc/json"]}),
        )
        .await;
    r.expect(200);
    for i in 0..5 {
        s.read(&format!("enc/c{i}")).await;
    }
    Canaries { values }
}

fn assert_absent(what: &str, hay: &[u8], canaries: &Canaries) {
    for c in &canaries.values {
        assert!(
            !contains_bytes(hay, c.as_bytes()),
            "plaintext {c:?} found in {what}"
        );
    }
}

fn assert_logs_clean(s: &TestServer, canaries: &Canaries) {
    let logs = s.logs();
    assert!(!logs.is_empty(), "no server output captured at all");
    assert_absent("the server's stdout/stderr", logs.as_bytes(), canaries);
}

fn assert_data_dir_clean(s: &TestServer, canaries: &Canaries) -> usize {
    let files = files_under(&s.data_dir);
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        assert_absent(&f.display().to_string(), &bytes, canaries);
    }
    files.len()
}

async fn values_encrypted_at_rest(backend: Backend) {
    let mut s = spawn(backend).await;
    let canaries = write_canaries(&s).await;

    // While running (SQLite: main file and -wal), then after a kill -9 (nothing checkpointed away).
    let n = assert_data_dir_clean(&s, &canaries);
    if backend == Backend::Sqlite {
        assert!(
            n > 0,
            "no files under the SQLite data dir {}",
            s.data_dir.display()
        );
    }
    if backend == Backend::Postgres {
        assert_postgres_clean(&s, &canaries).await;
    }
    assert_logs_clean(&s, &canaries);
    s.kill9().await;
    assert_data_dir_clean(&s, &canaries);

    // And the values are still there, decryptable, after a restart.
    s.restart().await;
    let got = s.read("enc/c0").await;
    assert_eq!(got["data"]["password"], canaries.values[5].as_str());
    assert_eq!(
        s.read("enc/c0?version=1").await["data"]["password"],
        canaries.values[0].as_str()
    );
    assert_logs_clean(&s, &canaries);
}

/// The design stores tokens hashed: the admin token must not appear in storage.
async fn tokens_hashed_at_rest(backend: Backend) {
    let s = spawn(backend).await;
    s.write_kv("enc/any", json!({"v": "1"})).await;
    let token = Canaries {
        values: vec![s.admin_token.clone()],
    };
    assert_data_dir_clean(&s, &token);
    if backend == Backend::Postgres {
        assert_postgres_clean(&s, &token).await;
    }
}

/// Every text-like and bytea column of every table outside the system schemas.
async fn assert_postgres_clean(s: &TestServer, canaries: &Canaries) {
    let mut conn = pg_connection(s).await;
    let cols = sqlx::query(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
         AND data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', 'USER-DEFINED', 'ARRAY')",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list columns");
    assert!(!cols.is_empty(), "no columns found in {:?}", s.database_url);
    let mut scanned = 0usize;
    for c in cols {
        let schema: String = c.get(0);
        let table: String = c.get(1);
        let column: String = c.get(2);
        let ty: String = c.get(3);
        let expr = if ty == "bytea" {
            format!("\"{column}\"")
        } else {
            format!("convert_to(\"{column}\"::text, 'UTF8')")
        };
        let sql =
            format!("SELECT {expr} FROM \"{schema}\".\"{table}\" WHERE \"{column}\" IS NOT NULL");
        let rows = sqlx::query(&sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        for row in rows {
            let bytes: Vec<u8> = row.get(0);
            scanned += 1;
            assert_absent(
                &format!("postgres {schema}.{table}.{column}"),
                &bytes,
                canaries,
            );
        }
    }
    assert!(scanned > 0, "no stored values scanned in PostgreSQL");
}

both!(values_encrypted_at_rest, tokens_hashed_at_rest);
