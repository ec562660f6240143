-- Access policies, their bindings, and secret (value) policies. Keep in step with the other dialect.
-- tenant_id is the owner: the tenant id for scope 'tenant', the partner id for scope 'partner'
-- (a partner-scope policy applies in every tenant of its partner).
CREATE TABLE policies (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    scope TEXT NOT NULL,
    rules TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE policy_bindings (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    identity_type TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX policy_bindings_policy ON policy_bindings (tenant_id, policy_id);

-- Bumped in the transaction of every policy or binding change; nodes poll it to recompile.
CREATE TABLE policy_version (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO policy_version (id, version) VALUES (1, 1);

CREATE TABLE secret_policies (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    policy_type TEXT NOT NULL,
    fields TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
