//! What staff handover (`crate::handover`) reads and writes: the customers a user owns, their
//! stored documents, the shared pool, and the `handovers` audit table (migration 0007).
//!
//! A trait of its own, [`HandoverStore`], which every [`super::Store`] also is; its SQL is
//! written once, in [`impl_handover_store!`], and expanded for each backend. The customers
//! themselves only ever move through the push path: nothing here writes a document.

use super::Result;
use fieldsync_sync::{DocId, TenantId, UserId};
use std::collections::HashMap;

/// One handover, as the audit shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Handover {
    /// A UUIDv7: handovers list newest first by it.
    pub id: String,
    pub from_user_id: String,
    /// The new owner; `None` for the shared pool.
    pub to_user_id: Option<String>,
    pub by_user_id: String,
    pub at: i64,
    /// Whether the same step disabled `from_user_id`.
    pub disabled: bool,
    /// The customers the handover moved.
    pub customer_ids: Vec<String>,
    pub undone_at: Option<i64>,
    pub undone_by: Option<String>,
    /// What the undo did: `{"moved_back": [...], "already_back": [...], "skipped": [...]}`.
    pub undo_report: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
pub(super) struct HandoverRow {
    pub id: String,
    pub from_user_id: String,
    pub to_user_id: Option<String>,
    pub by_user_id: String,
    pub at: i64,
    pub disabled: bool,
    pub customer_ids: String,
    pub undone_at: Option<i64>,
    pub undone_by: Option<String>,
    pub undo_report: Option<String>,
}

impl TryFrom<HandoverRow> for Handover {
    type Error = super::StoreError;
    fn try_from(r: HandoverRow) -> Result<Self> {
        let corrupt =
            |e: serde_json::Error| super::StoreError::Corrupt(format!("handover {}: {e}", r.id));
        Ok(Handover {
            customer_ids: serde_json::from_str(&r.customer_ids).map_err(corrupt)?,
            undo_report: r
                .undo_report
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(corrupt)?,
            id: r.id,
            from_user_id: r.from_user_id,
            to_user_id: r.to_user_id,
            by_user_id: r.by_user_id,
            at: r.at,
            disabled: r.disabled,
            undone_at: r.undone_at,
            undone_by: r.undone_by,
        })
    }
}

/// A customer waiting in the shared pool.
#[derive(Clone, Debug, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct PoolCustomer {
    pub id: String,
    pub name: String,
    pub lifecycle: String,
    pub tier: Option<String>,
    pub address: Option<String>,
    pub created_by: String,
    pub updated_at: i64,
}

/// Staff handover's storage.
#[async_trait::async_trait]
pub trait HandoverStore: Send + Sync {
    /// The customers `owner` owns now (from the projection, which every push keeps current).
    async fn owned_customers(&self, tenant: TenantId, owner: UserId) -> Result<Vec<DocId>>;
    /// The stored documents of these customers (id → compacted bytes); unknown ids are left out.
    async fn customer_snapshots(
        &self,
        tenant: TenantId,
        ids: &[DocId],
    ) -> Result<HashMap<DocId, Vec<u8>>>;
    /// The customers in the shared pool, by name.
    async fn pool_customers(&self, tenant: TenantId) -> Result<Vec<PoolCustomer>>;
    /// Records a handover (before its customers move).
    async fn insert_handover(&self, tenant: TenantId, h: &Handover) -> Result<()>;
    /// Corrects a handover's customers to those that did move.
    async fn set_handover_customers(
        &self,
        tenant: TenantId,
        id: &str,
        ids: &[String],
    ) -> Result<()>;
    /// The tenant's handovers, newest first.
    async fn handovers(&self, tenant: TenantId, limit: i64) -> Result<Vec<Handover>>;
    async fn handover(&self, tenant: TenantId, id: &str) -> Result<Option<Handover>>;
    /// Marks a handover undone with what the undo did; false if it already was.
    async fn mark_handover_undone(
        &self,
        tenant: TenantId,
        id: &str,
        by: UserId,
        at: i64,
        report: &serde_json::Value,
    ) -> Result<bool>;
}

/// Expands the handover SQL into `impl HandoverStore for $store` over the database `$db`.
macro_rules! impl_handover_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::handover::HandoverStore for $store {
            async fn owned_customers(
                &self,
                tenant: fieldsync_sync::TenantId,
                owner: fieldsync_sync::UserId,
            ) -> $crate::store::Result<Vec<fieldsync_sync::DocId>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT id FROM customers WHERE tenant_id = $1 AND owner_id = $2 ORDER BY id",
                )
                .bind(tenant.as_string())
                .bind(owner.as_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id,)| {
                        id.parse().map_err(|_| {
                            $crate::store::StoreError::Corrupt(format!("customer id '{id}'"))
                        })
                    })
                    .collect()
            }

            async fn customer_snapshots(
                &self,
                tenant: fieldsync_sync::TenantId,
                ids: &[fieldsync_sync::DocId],
            ) -> $crate::store::Result<
                std::collections::HashMap<fieldsync_sync::DocId, Vec<u8>>,
            > {
                let mut out = std::collections::HashMap::with_capacity(ids.len());
                for chunk in ids.chunks($crate::store::handover::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT doc_id, snapshot FROM documents WHERE kind = 'customer' AND tenant_id = ",
                    );
                    qb.push_bind(tenant.as_string()).push(" AND doc_id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.as_string());
                    }
                    qb.push(")");
                    let rows: Vec<(String, Vec<u8>)> =
                        qb.build_query_as().fetch_all(&self.pool).await?;
                    for (id, bytes) in rows {
                        let id = id.parse().map_err(|_| {
                            $crate::store::StoreError::Corrupt(format!("document id '{id}'"))
                        })?;
                        out.insert(id, bytes);
                    }
                }
                Ok(out)
            }

            async fn pool_customers(
                &self,
                tenant: fieldsync_sync::TenantId,
            ) -> $crate::store::Result<Vec<$crate::store::handover::PoolCustomer>> {
                Ok(sqlx::query_as(
                    "SELECT id, name, lifecycle, tier, address, created_by, updated_at FROM customers \
                     WHERE tenant_id = $1 AND owner_id = $2 ORDER BY name, id",
                )
                .bind(tenant.as_string())
                .bind(fieldsync_sync::access::POOL.as_string())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn insert_handover(
                &self,
                tenant: fieldsync_sync::TenantId,
                h: &$crate::store::handover::Handover,
            ) -> $crate::store::Result<()> {
                let ids = serde_json::to_string(&h.customer_ids)
                    .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO handovers (tenant_id, id, from_user_id, to_user_id, by_user_id, at, disabled, customer_ids) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(tenant.as_string())
                .bind(&h.id)
                .bind(&h.from_user_id)
                .bind(&h.to_user_id)
                .bind(&h.by_user_id)
                .bind(h.at)
                .bind(h.disabled)
                .bind(ids)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_handover_customers(
                &self,
                tenant: fieldsync_sync::TenantId,
                id: &str,
                ids: &[String],
            ) -> $crate::store::Result<()> {
                let ids = serde_json::to_string(ids)
                    .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
                sqlx::query("UPDATE handovers SET customer_ids = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_string())
                    .bind(id)
                    .bind(ids)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn handovers(
                &self,
                tenant: fieldsync_sync::TenantId,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::handover::Handover>> {
                let rows: Vec<$crate::store::handover::HandoverRow> = sqlx::query_as(
                    "SELECT id, from_user_id, to_user_id, by_user_id, at, disabled, customer_ids, undone_at, undone_by, undo_report \
                     FROM handovers WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(tenant.as_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn handover(
                &self,
                tenant: fieldsync_sync::TenantId,
                id: &str,
            ) -> $crate::store::Result<Option<$crate::store::handover::Handover>> {
                let row: Option<$crate::store::handover::HandoverRow> = sqlx::query_as(
                    "SELECT id, from_user_id, to_user_id, by_user_id, at, disabled, customer_ids, undone_at, undone_by, undo_report \
                     FROM handovers WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_string())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn mark_handover_undone(
                &self,
                tenant: fieldsync_sync::TenantId,
                id: &str,
                by: fieldsync_sync::UserId,
                at: i64,
                report: &serde_json::Value,
            ) -> $crate::store::Result<bool> {
                // Only the first undo sets it: a second (or concurrent) one changes no row.
                let res = sqlx::query(
                    "UPDATE handovers SET undone_at = $3, undone_by = $4, undo_report = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND undone_at IS NULL",
                )
                .bind(tenant.as_string())
                .bind(id)
                .bind(at)
                .bind(by.as_string())
                .bind(report.to_string())
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use impl_handover_store;

/// Ids per `IN (...)` lookup.
pub(super) const CHUNK: usize = 400;
