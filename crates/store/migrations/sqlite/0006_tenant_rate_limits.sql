-- Per-tenant rate-limit overrides: a JSON object {category: per-minute limit}; NULL keeps the node's
-- limits. Keep in step with the other dialect (a parity test checks).
ALTER TABLE tenants ADD COLUMN rate_limits TEXT;

-- Bumped in the transaction of every change to who a token stands for (a token revoked, an identity, its
-- roles, scopes, groups or tenant changed, a client secret rotated). Nodes sharing the database poll it and
-- drop their cached principals and tenants, so such a change reaches every node within a second.
CREATE TABLE auth_epoch (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 1);
