//! `POST /v1/secrets/batch` and `POST /v1/secrets/batch/metadata`, following the batch-operations guide.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::harness::{spawn, Backend, Resp, TestServer};

const SALESFORCE: &str = "integrations/salesforce/oauth";
const SCAISEND: &str = "integrations/scaisend/api-key";
const STRIPE: &str = "integrations/stripe/secret-key";

/// The guide's fixture: salesforce/oauth at version 3 (json), scaisend/api-key at version 1 (api_key).
async fn seed(s: &TestServer) {
    for i in 1..=3 {
        s.write(
            SALESFORCE,
            &json!({"data": {"client_id": format!("cid-{i}"), "client_secret": format!("cs-{i}")}, "secret_type": "json",
                    "metadata": {"tags": ["salesforce", "production"], "description": "sf oauth", "owner": "team:crm"}}),
        )
        .await;
    }
    s.write(
        SCAISEND,
        &json!({"data": {"key": "sk_send_abc"}, "secret_type": "api_key"}),
    )
    .await;
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

async fn batch_read_partial_success(backend: Backend) {
    let s = spawn(backend).await;
    seed(&s).await;
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND, STRIPE], "options": {"include_metadata": false, "fail_fast": false}}),
        )
        .await;
    r.expect(200);
    let b = &r.body;
    assert_eq!(keys(&b["secrets"]), set(&[SALESFORCE, SCAISEND]), "{r}");
    let sf = &b["secrets"][SALESFORCE];
    assert_eq!(
        sf["data"],
        json!({"client_id": "cid-3", "client_secret": "cs-3"}),
        "{r}"
    );
    assert_eq!(sf["version"], 3, "{r}");
    assert_eq!(sf["secret_type"], "json", "{r}");
    let ss = &b["secrets"][SCAISEND];
    assert_eq!(ss["data"], json!({"key": "sk_send_abc"}), "{r}");
    assert_eq!(ss["version"], 1, "{r}");
    assert_eq!(ss["secret_type"], "api_key", "{r}");
    assert!(
        sf.get("metadata").is_none(),
        "no metadata unless asked: {r}"
    );
    assert_eq!(keys(&b["errors"]), set(&[STRIPE]), "{r}");
    assert_eq!(b["errors"][STRIPE]["code"], "secret_not_found", "{r}");
    assert!(b["errors"][STRIPE]["message"].is_string(), "{r}");
    assert_eq!(b["retrieved"], 2, "{r}");
    assert_eq!(b["failed"], 1, "{r}");

    // The guide's minimal form: just `paths`, no options.
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND]}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["retrieved"], 2, "{r}");
    assert_eq!(r.body["failed"], 0, "{r}");
    assert!(
        r.body["errors"].as_object().is_some_and(|o| o.is_empty()),
        "{r}"
    );
}

async fn batch_read_fail_fast(backend: Backend) {
    let s = spawn(backend).await;
    seed(&s).await;
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, STRIPE, SCAISEND], "options": {"fail_fast": true}}),
        )
        .await;
    r.expect_error(404, "secret_not_found");
    assert_eq!(r.details()["path"], STRIPE, "{r}");
    assert!(
        !r.text.contains("cs-3"),
        "a failed batch must not leak the values it did read: {r}"
    );

    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND], "options": {"fail_fast": true}}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["retrieved"], 2, "{r}");
}

async fn batch_read_version_and_metadata(backend: Backend) {
    let s = spawn(backend).await;
    seed(&s).await;
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND], "options": {"version": 1}}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["secrets"][SALESFORCE]["version"], 1, "{r}");
    assert_eq!(
        r.body["secrets"][SALESFORCE]["data"]["client_id"], "cid-1",
        "{r}"
    );
    assert_eq!(r.body["secrets"][SCAISEND]["version"], 1, "{r}");

    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND], "options": {"version": 2}}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.body["secrets"][SALESFORCE]["data"]["client_id"], "cid-2",
        "{r}"
    );
    assert_eq!(
        r.body["errors"][SCAISEND]["code"], "version_not_found",
        "{r}"
    );
    assert_eq!(r.body["retrieved"], 1, "{r}");
    assert_eq!(r.body["failed"], 1, "{r}");

    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE], "options": {"include_metadata": true}}),
        )
        .await;
    r.expect(200);
    let sf = &r.body["secrets"][SALESFORCE];
    assert_eq!(sf["version"], 3, "{r}");
    assert_eq!(
        sf["metadata"]["description"], "sf oauth",
        "include_metadata adds the metadata: {r}"
    );
    assert_eq!(
        sf["metadata"]["tags"],
        json!(["salesforce", "production"]),
        "{r}"
    );

    // Without a version, each path gives its newest version that is not deleted.
    s.delete(&format!("/v1/secrets/{SALESFORCE}?version=3"))
        .await
        .expect(200);
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": [SALESFORCE, SCAISEND]}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.body["secrets"][SALESFORCE]["version"], 2, "{r}");
    assert_eq!(
        r.body["secrets"][SALESFORCE]["data"]["client_id"], "cid-2",
        "{r}"
    );
    assert_eq!(r.body["secrets"][SCAISEND]["version"], 1, "{r}");
}

async fn batch_read_limits(backend: Backend) {
    let s = spawn(backend).await;
    let hundred: Vec<String> = (0..100).map(|i| format!("many/p{i}")).collect();
    let r = s
        .post("/v1/secrets/batch", &json!({"paths": hundred}))
        .await;
    r.expect(200);
    assert_eq!(r.body["failed"], 100, "{r}");
    assert_eq!(r.body["retrieved"], 0, "{r}");

    let too_many: Vec<String> = (0..101).map(|i| format!("many/p{i}")).collect();
    let r = s
        .post("/v1/secrets/batch", &json!({"paths": too_many}))
        .await;
    r.expect_error_in(&[(422, "validation_error"), (400, "invalid_request")]);
    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": (0..101).map(|i| format!("m/p{i}")).collect::<Vec<_>>()}),
        )
        .await;
    r.expect_error_in(&[(422, "validation_error"), (400, "invalid_request")]);

    for body in [
        json!({}),
        json!({"paths": "a/b"}),
        json!({"paths": [1, 2]}),
        json!({"paths": ["a"], "options": {"version": "x"}}),
    ] {
        let r = s.post("/v1/secrets/batch", &body).await;
        r.expect_error_in(&[(422, "validation_error"), (400, "invalid_request")]);
    }

    // A malformed path fails on its own, not the batch.
    s.write_kv("ok/path", json!({"v": "1"})).await;
    let r = s
        .post(
            "/v1/secrets/batch",
            &json!({"paths": ["ok/path", "Bad/Path"]}),
        )
        .await;
    assert!(r.status < 500, "{r}");
    if r.status == 200 {
        assert_eq!(r.body["errors"]["Bad/Path"]["code"], "invalid_path", "{r}");
        assert_eq!(r.body["retrieved"], 1, "{r}");
    } else {
        r.expect_error(400, "invalid_path");
    }
}

async fn seed_wildcards(s: &TestServer) {
    seed(s).await;
    s.write_kv(
        "integrations/salesforce/webhook-secret",
        json!({"secret": "whsec"}),
    )
    .await;
    s.write_kv("integrations/salesforce/deep/nested", json!({"v": "1"}))
        .await;
    s.write_kv(STRIPE, json!({"key": "sk_live"})).await;
    s.write_kv("integrationsx/other", json!({"v": "1"})).await;
}

fn metadata_paths(r: &Resp) -> BTreeSet<String> {
    keys(&r.body["metadata"])
}

async fn batch_metadata_wildcards(backend: Backend) {
    let s = spawn(backend).await;
    seed_wildcards(&s).await;
    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": ["integrations/salesforce/*"], "expand_wildcards": true}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        metadata_paths(&r),
        set(&[SALESFORCE, "integrations/salesforce/webhook-secret"]),
        "`*` stays within one segment: {r}"
    );
    assert_eq!(r.body["retrieved"], 2, "{r}");
    assert_eq!(r.body["failed"], 0, "{r}");
    let sf = &r.body["metadata"][SALESFORCE];
    assert_eq!(sf["version"], 3, "{r}");
    assert_eq!(sf["tags"], json!(["salesforce", "production"]), "{r}");
    assert_eq!(sf["secret_type"], "json", "{r}");
    assert_eq!(sf["description"], "sf oauth", "{r}");
    assert_eq!(sf["owner"], "team:crm", "{r}");
    for k in ["updated_at", "created_at", "expires_at"] {
        assert!(
            sf.as_object().is_some_and(|o| o.contains_key(k)),
            "metadata item lacks {k}: {r}"
        );
    }
    assert!(
        !r.text.contains("cs-3") && !r.text.contains("whsec"),
        "batch metadata must not carry values: {r}"
    );

    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": ["integrations/salesforce/*", "integrations/stripe/*"], "expand_wildcards": true}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        metadata_paths(&r),
        set(&[SALESFORCE, "integrations/salesforce/webhook-secret", STRIPE]),
        "{r}"
    );

    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": ["integrations/**"], "expand_wildcards": true}),
        )
        .await;
    r.expect(200);
    assert_eq!(
        metadata_paths(&r),
        set(&[
            SALESFORCE,
            "integrations/salesforce/webhook-secret",
            "integrations/salesforce/deep/nested",
            SCAISEND,
            STRIPE
        ]),
        "`**` crosses segments: {r}"
    );

    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": ["integrations/*/oauth"], "expand_wildcards": true}),
        )
        .await;
    r.expect(200);
    assert_eq!(metadata_paths(&r), set(&[SALESFORCE]), "{r}");
}

async fn batch_metadata_plain(backend: Backend) {
    let s = spawn(backend).await;
    seed_wildcards(&s).await;
    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": [SALESFORCE, "integrations/missing/one"]}),
        )
        .await;
    r.expect(200);
    assert_eq!(metadata_paths(&r), set(&[SALESFORCE]), "{r}");
    assert_eq!(
        r.body["errors"]["integrations/missing/one"]["code"], "secret_not_found",
        "{r}"
    );
    assert_eq!(r.body["retrieved"], 1, "{r}");
    assert_eq!(r.body["failed"], 1, "{r}");

    // Without expand_wildcards a pattern is not expanded.
    let r = s
        .post(
            "/v1/secrets/batch/metadata",
            &json!({"paths": ["integrations/salesforce/*"]}),
        )
        .await;
    assert!(r.status < 500, "{r}");
    if r.status == 200 {
        assert!(
            metadata_paths(&r).is_empty(),
            "patterns are literal without expand_wildcards: {r}"
        );
        assert_eq!(r.body["failed"], 1, "{r}");
    } else {
        r.expect_error(400, "invalid_path");
    }
}

both!(
    batch_read_partial_success,
    batch_read_fail_fast,
    batch_read_version_and_metadata,
    batch_read_limits,
    batch_metadata_wildcards,
    batch_metadata_plain,
);
