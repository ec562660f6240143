-- Audit exports and the retention anchor (sqlite dialect). Keep in step with the other dialect (a parity test checks).
-- Times are microseconds since the Unix epoch.

-- One row per export job. destination holds type/bucket/prefix/endpoint/region and the credentials_path,
-- never the credentials themselves. Manifest columns are filled as the job runs.
CREATE TABLE audit_exports (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    format TEXT NOT NULL,
    filters TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    heartbeat_at INTEGER NOT NULL,
    estimated_records INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    byte_size INTEGER NOT NULL,
    sha256 TEXT,
    object_keys TEXT NOT NULL,
    first_seq INTEGER,
    first_prev_hash TEXT,
    last_seq INTEGER,
    last_hash TEXT,
    error TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_exports_created ON audit_exports (tenant_id, created_at);
CREATE INDEX audit_exports_status ON audit_exports (status, heartbeat_at);

-- Where a tenant's chain starts after the retention pruner removed its oldest entries: the seq and hash
-- of the last removed entry. Verification resumes from here instead of the genesis hash.
CREATE TABLE audit_anchors (
    tenant_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    pruned_at INTEGER NOT NULL,
    pruned_total INTEGER NOT NULL
);
