-- Tenancy management: partner and tenant attributes, and group membership. Keep in step with the other
-- dialect (a parity test checks). A partner's shared secrets live in a tenant row of kind 'partner' whose id
-- is the partner's id, so they reuse the secrets tables, the key chain and the audit chain unchanged.
ALTER TABLE partners ADD COLUMN slug TEXT;
ALTER TABLE partners ADD COLUMN region TEXT;
ALTER TABLE partners ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE tenants ADD COLUMN slug TEXT;
ALTER TABLE tenants ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE tenants ADD COLUMN kind TEXT NOT NULL DEFAULT 'tenant';
CREATE INDEX tenants_partner ON tenants (partner_id, id);
CREATE INDEX identities_type ON identities (tenant_id, identity_type, id);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);
