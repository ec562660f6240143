//! The identity store: partners, tenants, identities (users, service accounts, groups) and group
//! membership. Reads are the [`IdentityStore`] methods; mutations are [`IdentityOp`]s applied through
//! [`crate::Store::apply`] so each commits atomically with its audit entry. The SQL is written once and
//! instantiated for both backends, as in `sql.rs`.

use crate::model::{IdentityRow, PartnerRow, TenantRow};
use crate::ops::{OpError, OpOutcome};
use crate::sql::{PgStore, SqliteStore};
use crate::Result;
use async_trait::async_trait;
use scaivault_core::audit::GENESIS;
use sqlx::Row;

pub(crate) const PARTNER_COLS: &str = "id, name, wrapped_key, created_at, slug, region, status";
pub(crate) const TENANT_COLS: &str =
    "id, partner_id, name, wrapped_key, created_at, slug, status, kind, rate_limits";
const IDENTITY_COLS: &str =
    "tenant_id, id, identity_type, display_name, roles, groups_json, scopes, created_at, disabled_at";

/// Offset pagination, as the identity endpoints document (`page` + `page_size`, with `total`).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Default)]
pub struct IdentityQuery<'a> {
    pub tenant_id: &'a str,
    pub identity_type: Option<&'a str>,
    /// `ACTIVE` (not disabled) or `DISABLED`.
    pub status: Option<&'a str>,
    /// Case-insensitive substring of the id or display name.
    pub q: Option<&'a str>,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub member_id: String,
    pub added_at: i64,
    pub added_by: String,
}

/// Identity mutations, each applied in its own savepoint of a group commit.
#[derive(Debug)]
pub enum IdentityOp {
    /// A partner and the tenant row of kind `partner` that holds its shared secrets.
    InsertPartner {
        partner: PartnerRow,
        storage: TenantRow,
    },
    InsertTenant(TenantRow),
    /// `None` fields are left as they are; `rate_limits: Some(None)` removes the overrides.
    UpdateTenant {
        id: String,
        name: Option<String>,
        status: Option<String>,
        rate_limits: Option<Option<String>>,
    },
    InsertIdentity(IdentityRow),
    /// `None` fields are left as they are; `disabled_at: Some(None)` re-enables.
    UpdateIdentity {
        tenant_id: String,
        id: String,
        display_name: Option<Option<String>>,
        roles: Option<String>,
        scopes: Option<String>,
        disabled_at: Option<Option<i64>>,
    },
    /// Removes a group and its memberships.
    DeleteGroup {
        tenant_id: String,
        group_id: String,
    },
    AddMember {
        tenant_id: String,
        group_id: String,
        member_id: String,
        by: String,
        now: i64,
    },
    RemoveMember {
        tenant_id: String,
        group_id: String,
        member_id: String,
    },
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Partners (with `total`), by id.
    async fn list_partners(
        &self,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<PartnerRow>, i64)>;
    /// Tenants of kind `tenant` (with `total`), by id.
    async fn list_tenants(
        &self,
        partner_id: Option<&str>,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<TenantRow>, i64)>;
    async fn list_identities(&self, q: &IdentityQuery<'_>) -> Result<(Vec<IdentityRow>, i64)>;
    async fn group_members(&self, tenant_id: &str, group_id: &str) -> Result<Vec<MemberRow>>;
    /// The groups `member_id` belongs to, as group ids.
    async fn member_groups(&self, tenant_id: &str, member_id: &str) -> Result<Vec<String>>;
}

/// `%…%` LIKE pattern for a user's search text, with LIKE's wildcards escaped (ESCAPE '\').
fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

macro_rules! impl_identity_store {
    ($name:ident, $db:ty, $row:ty) => {
        impl $name {
            pub(crate) fn partner_from_row(r: &$row) -> std::result::Result<PartnerRow, sqlx::Error> {
                Ok(PartnerRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    wrapped_key: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    slug: r.try_get(4)?,
                    region: r.try_get(5)?,
                    status: r.try_get(6)?,
                })
            }

            pub(crate) fn tenant_from_row(r: &$row) -> std::result::Result<TenantRow, sqlx::Error> {
                Ok(TenantRow {
                    id: r.try_get(0)?,
                    partner_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    wrapped_key: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    slug: r.try_get(5)?,
                    status: r.try_get(6)?,
                    kind: r.try_get(7)?,
                    rate_limits: r.try_get(8)?,
                })
            }

            fn identity_from_row(r: &$row) -> std::result::Result<IdentityRow, sqlx::Error> {
                Ok(IdentityRow {
                    tenant_id: r.try_get(0)?,
                    id: r.try_get(1)?,
                    identity_type: r.try_get(2)?,
                    display_name: r.try_get(3)?,
                    roles: r.try_get(4)?,
                    groups: r.try_get(5)?,
                    scopes: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    disabled_at: r.try_get(8)?,
                })
            }

            /// A tenant and its audit chain head: the head row exists from the start, so nodes sharing a
            /// database lock it instead of racing to create it.
            pub(crate) async fn insert_tenant_row(
                c: &mut <$db as sqlx::Database>::Connection,
                t: &TenantRow,
            ) -> std::result::Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO tenants (id, partner_id, name, wrapped_key, created_at, slug, status, kind, rate_limits) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&t.id)
                .bind(&t.partner_id)
                .bind(&t.name)
                .bind(&t.wrapped_key)
                .bind(t.created_at)
                .bind(&t.slug)
                .bind(&t.status)
                .bind(&t.kind)
                .bind(&t.rate_limits)
                .execute(&mut *c)
                .await?;
                sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING")
                    .bind(&t.id)
                    .bind(GENESIS.as_slice())
                    .execute(&mut *c)
                    .await?;
                Ok(())
            }

            async fn exists(
                c: &mut <$db as sqlx::Database>::Connection,
                sql: &str,
                a: &str,
                b: Option<&str>,
            ) -> std::result::Result<bool, sqlx::Error> {
                let n: i64 = sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(&mut *c).await?;
                Ok(n > 0)
            }

            pub(crate) async fn apply_identity(
                c: &mut <$db as sqlx::Database>::Connection,
                op: &IdentityOp,
            ) -> std::result::Result<std::result::Result<OpOutcome, OpError>, sqlx::Error> {
                match op {
                    IdentityOp::InsertPartner { partner, storage } => {
                        if Self::exists(c, "SELECT COUNT(*) FROM partners WHERE id = $1 OR ($2 IS NOT NULL AND slug = $2)", &partner.id, partner.slug.as_deref()).await?
                            || Self::exists(c, "SELECT COUNT(*) FROM tenants WHERE id = $1 AND $2 IS NULL", &storage.id, None).await?
                        {
                            return Ok(Err(OpError::AlreadyExists));
                        }
                        sqlx::query("INSERT INTO partners (id, name, wrapped_key, created_at, slug, region, status) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                            .bind(&partner.id)
                            .bind(&partner.name)
                            .bind(&partner.wrapped_key)
                            .bind(partner.created_at)
                            .bind(&partner.slug)
                            .bind(&partner.region)
                            .bind(&partner.status)
                            .execute(&mut *c)
                            .await?;
                        Self::insert_tenant_row(c, storage).await?;
                    }
                    IdentityOp::InsertTenant(t) => {
                        if Self::exists(c, "SELECT COUNT(*) FROM tenants WHERE id = $1 OR ($2 IS NOT NULL AND slug = $2)", &t.id, t.slug.as_deref()).await? {
                            return Ok(Err(OpError::AlreadyExists));
                        }
                        Self::insert_tenant_row(c, t).await?;
                    }
                    IdentityOp::UpdateTenant { id, name, status, rate_limits } => {
                        let n = sqlx::query(
                            "UPDATE tenants SET name = COALESCE($2, name), status = COALESCE($3, status), \
                             rate_limits = CASE WHEN $4 THEN $5 ELSE rate_limits END \
                             WHERE id = $1 AND kind = 'tenant'",
                        )
                        .bind(id)
                        .bind(name)
                        .bind(status)
                        .bind(rate_limits.is_some())
                        .bind(rate_limits.clone().flatten())
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::IdentityNotFound));
                        }
                    }
                    IdentityOp::InsertIdentity(i) => {
                        if Self::exists(c, "SELECT COUNT(*) FROM identities WHERE tenant_id = $1 AND id = $2", &i.tenant_id, Some(&i.id)).await? {
                            return Ok(Err(OpError::AlreadyExists));
                        }
                        sqlx::query(&format!("INSERT INTO identities ({IDENTITY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                            .bind(&i.tenant_id)
                            .bind(&i.id)
                            .bind(&i.identity_type)
                            .bind(&i.display_name)
                            .bind(&i.roles)
                            .bind(&i.groups)
                            .bind(&i.scopes)
                            .bind(i.created_at)
                            .bind(i.disabled_at)
                            .execute(&mut *c)
                            .await?;
                    }
                    IdentityOp::UpdateIdentity { tenant_id, id, display_name, roles, scopes, disabled_at } => {
                        let n = sqlx::query(
                            "UPDATE identities SET \
                             display_name = CASE WHEN $3 THEN $4 ELSE display_name END, \
                             roles = COALESCE($5, roles), scopes = COALESCE($6, scopes), \
                             disabled_at = CASE WHEN $7 THEN $8 ELSE disabled_at END \
                             WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(tenant_id)
                        .bind(id)
                        .bind(display_name.is_some())
                        .bind(display_name.clone().flatten())
                        .bind(roles)
                        .bind(scopes)
                        .bind(disabled_at.is_some())
                        .bind(disabled_at.flatten())
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::IdentityNotFound));
                        }
                    }
                    IdentityOp::DeleteGroup { tenant_id, group_id } => {
                        sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2")
                            .bind(tenant_id)
                            .bind(group_id)
                            .execute(&mut *c)
                            .await?;
                        let n = sqlx::query("DELETE FROM identities WHERE tenant_id = $1 AND id = $2 AND identity_type = 'group'")
                            .bind(tenant_id)
                            .bind(group_id)
                            .execute(&mut *c)
                            .await?
                            .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::IdentityNotFound));
                        }
                    }
                    IdentityOp::AddMember { tenant_id, group_id, member_id, by, now } => {
                        let group = Self::exists(c, "SELECT COUNT(*) FROM identities WHERE tenant_id = $1 AND id = $2 AND identity_type = 'group'", tenant_id, Some(group_id)).await?;
                        let member = Self::exists(c, "SELECT COUNT(*) FROM identities WHERE tenant_id = $1 AND id = $2 AND identity_type <> 'group'", tenant_id, Some(member_id)).await?;
                        if !group || !member {
                            return Ok(Err(OpError::IdentityNotFound));
                        }
                        sqlx::query(
                            "INSERT INTO group_members (tenant_id, group_id, member_id, added_at, added_by) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING",
                        )
                        .bind(tenant_id)
                        .bind(group_id)
                        .bind(member_id)
                        .bind(now)
                        .bind(by)
                        .execute(&mut *c)
                        .await?;
                    }
                    IdentityOp::RemoveMember { tenant_id, group_id, member_id } => {
                        let n = sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3")
                            .bind(tenant_id)
                            .bind(group_id)
                            .bind(member_id)
                            .execute(&mut *c)
                            .await?
                            .rows_affected();
                        if n == 0 {
                            return Ok(Err(OpError::IdentityNotFound));
                        }
                    }
                }
                Ok(Ok(OpOutcome::Done))
            }
        }

        #[async_trait]
        impl IdentityStore for $name {
            async fn list_partners(&self, status: Option<&str>, page: Page) -> Result<(Vec<PartnerRow>, i64)> {
                let rows = sqlx::query(&format!(
                    "SELECT {PARTNER_COLS} FROM partners WHERE ($1 IS NULL OR status = $1) ORDER BY id LIMIT $2 OFFSET $3"
                ))
                .bind(status)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(&self.read)
                .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partners WHERE ($1 IS NULL OR status = $1)")
                    .bind(status)
                    .fetch_one(&self.read)
                    .await?;
                let rows = rows.iter().map(Self::partner_from_row).collect::<std::result::Result<_, _>>()?;
                Ok((rows, total))
            }

            async fn list_tenants(&self, partner_id: Option<&str>, status: Option<&str>, page: Page) -> Result<(Vec<TenantRow>, i64)> {
                const WHERE: &str = "kind = 'tenant' AND ($1 IS NULL OR partner_id = $1) AND ($2 IS NULL OR status = $2)";
                let rows = sqlx::query(&format!("SELECT {TENANT_COLS} FROM tenants WHERE {WHERE} ORDER BY id LIMIT $3 OFFSET $4"))
                    .bind(partner_id)
                    .bind(status)
                    .bind(page.limit)
                    .bind(page.offset)
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM tenants WHERE {WHERE}"))
                    .bind(partner_id)
                    .bind(status)
                    .fetch_one(&self.read)
                    .await?;
                let rows = rows.iter().map(Self::tenant_from_row).collect::<std::result::Result<_, _>>()?;
                Ok((rows, total))
            }

            async fn list_identities(&self, q: &IdentityQuery<'_>) -> Result<(Vec<IdentityRow>, i64)> {
                const WHERE: &str = "tenant_id = $1 AND ($2 IS NULL OR identity_type = $2) \
                    AND ($3 IS NULL OR ($3 = 'ACTIVE' AND disabled_at IS NULL) OR ($3 = 'DISABLED' AND disabled_at IS NOT NULL)) \
                    AND ($4 IS NULL OR LOWER(id) LIKE $4 ESCAPE '\\' OR LOWER(COALESCE(display_name, '')) LIKE $4 ESCAPE '\\')";
                let pattern = q.q.map(like_pattern);
                let rows = sqlx::query(&format!("SELECT {IDENTITY_COLS} FROM identities WHERE {WHERE} ORDER BY id LIMIT $5 OFFSET $6"))
                    .bind(q.tenant_id)
                    .bind(q.identity_type)
                    .bind(q.status)
                    .bind(&pattern)
                    .bind(q.limit)
                    .bind(q.offset)
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM identities WHERE {WHERE}"))
                    .bind(q.tenant_id)
                    .bind(q.identity_type)
                    .bind(q.status)
                    .bind(&pattern)
                    .fetch_one(&self.read)
                    .await?;
                let rows = rows.iter().map(Self::identity_from_row).collect::<std::result::Result<_, _>>()?;
                Ok((rows, total))
            }

            async fn group_members(&self, tenant_id: &str, group_id: &str) -> Result<Vec<MemberRow>> {
                let rows: Vec<(String, i64, String)> = sqlx::query_as(
                    "SELECT member_id, added_at, added_by FROM group_members WHERE tenant_id = $1 AND group_id = $2 ORDER BY member_id",
                )
                .bind(tenant_id)
                .bind(group_id)
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(member_id, added_at, added_by)| MemberRow { member_id, added_at, added_by })
                    .collect())
            }

            async fn member_groups(&self, tenant_id: &str, member_id: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2 ORDER BY group_id",
                )
                .bind(tenant_id)
                .bind(member_id)
                .fetch_all(&self.read)
                .await?)
            }
        }
    };
}

impl_identity_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_identity_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards_and_lowercase() {
        assert_eq!(like_pattern("Alice"), "%alice%");
        assert_eq!(like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
