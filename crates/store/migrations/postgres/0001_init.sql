-- ScaiVault schema, PostgreSQL dialect. Keep in step with ../sqlite/0001_init.sql (a parity test checks).
-- Times are microseconds since the Unix epoch. Every tenant-owned row carries tenant_id.
CREATE TABLE system_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    name TEXT NOT NULL,
    wrapped_key BYTEA,
    created_at BIGINT NOT NULL
);

CREATE TABLE identities (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    identity_type TEXT NOT NULL,
    display_name TEXT,
    roles TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    identity_id TEXT NOT NULL,
    name TEXT,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT
);

CREATE TABLE secrets (
    tenant_id TEXT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    secret_type TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    max_versions BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    rotation_policy_id TEXT,
    secret_policy_id TEXT,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    deleted_at BIGINT,
    deleted_by TEXT,
    recoverable_until BIGINT,
    restored_at BIGINT,
    restored_by TEXT,
    PRIMARY KEY (tenant_id, path)
);
CREATE INDEX secrets_expiry ON secrets (tenant_id, expires_at);

CREATE TABLE secret_versions (
    tenant_id TEXT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    wrapped_dek BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at BIGINT,
    deleted_by TEXT,
    restored_at BIGINT,
    restored_by TEXT,
    PRIMARY KEY (tenant_id, path, version)
);

CREATE TABLE secret_history (
    tenant_id TEXT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    action TEXT NOT NULL,
    version BIGINT,
    identity_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, path, seq)
);

CREATE TABLE secret_access_daily (
    tenant_id TEXT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    day BIGINT NOT NULL,
    reads BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, path, day)
);

CREATE TABLE audit_log (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    ts BIGINT NOT NULL,
    action TEXT NOT NULL,
    identity_type TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    secret_path TEXT COLLATE "C",
    source_ip TEXT,
    user_agent TEXT,
    success BOOLEAN NOT NULL,
    status BIGINT NOT NULL,
    error_code TEXT,
    duration_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_ts ON audit_log (tenant_id, ts);
CREATE INDEX audit_path ON audit_log (tenant_id, secret_path, ts);
CREATE INDEX audit_identity ON audit_log (tenant_id, identity_id, ts);

CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
