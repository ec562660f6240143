-- Service accounts (identities of type service_account) with client credentials, and the signing keys
-- of this server's token issuer. (0002 is left to the tenancy/identity management migration.)

CREATE TABLE service_accounts (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    identity_id TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, identity_id)
);

-- Several live secrets per client during a rotation's grace period; only SHA-256 hashes are kept.
CREATE TABLE client_secrets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    client_id TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

CREATE INDEX client_secrets_by_client ON client_secrets (client_id);

-- Issuer-wide (not tenant-owned). The private key is sealed by the root key; retired keys stay
-- published in the JWKS until every token they signed has expired.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
