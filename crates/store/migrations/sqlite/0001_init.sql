-- ScaiVault schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql (a parity test checks).
-- Times are microseconds since the Unix epoch. Every tenant-owned row carries tenant_id.
CREATE TABLE system_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    name TEXT NOT NULL,
    wrapped_key BLOB,
    created_at INTEGER NOT NULL
);

CREATE TABLE identities (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    identity_type TEXT NOT NULL,
    display_name TEXT,
    roles TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    identity_id TEXT NOT NULL,
    name TEXT,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_by TEXT
);

CREATE TABLE secrets (
    tenant_id TEXT NOT NULL,
    path TEXT NOT NULL,
    secret_type TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    max_versions INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    rotation_policy_id TEXT,
    secret_policy_id TEXT,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    deleted_at INTEGER,
    deleted_by TEXT,
    recoverable_until INTEGER,
    restored_at INTEGER,
    restored_by TEXT,
    PRIMARY KEY (tenant_id, path)
);
CREATE INDEX secrets_expiry ON secrets (tenant_id, expires_at);

CREATE TABLE secret_versions (
    tenant_id TEXT NOT NULL,
    path TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped_dek BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at INTEGER,
    deleted_by TEXT,
    restored_at INTEGER,
    restored_by TEXT,
    PRIMARY KEY (tenant_id, path, version)
);

CREATE TABLE secret_history (
    tenant_id TEXT NOT NULL,
    path TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    version INTEGER,
    identity_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, path, seq)
);

CREATE TABLE secret_access_daily (
    tenant_id TEXT NOT NULL,
    path TEXT NOT NULL,
    day INTEGER NOT NULL,
    reads INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, path, day)
);

CREATE TABLE audit_log (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    ts INTEGER NOT NULL,
    action TEXT NOT NULL,
    identity_type TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    secret_path TEXT,
    source_ip TEXT,
    user_agent TEXT,
    success BOOLEAN NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    duration_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_ts ON audit_log (tenant_id, ts);
CREATE INDEX audit_path ON audit_log (tenant_id, secret_path, ts);
CREATE INDEX audit_identity ON audit_log (tenant_id, identity_id, ts);

CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
