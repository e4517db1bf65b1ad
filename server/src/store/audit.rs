//! What the audit (`crate::audit`) reads and writes: a record's change-log entries and stored
//! document, the change log searched by user, kind and period, and the access log of who
//! looked at whose location or attendance data.
//!
//! A trait of its own, [`AuditStore`], which every [`super::Store`] also is; its SQL is written
//! once, in [`impl_audit_store!`], and expanded for each backend like the main store's.

use super::Result;
use fieldsync_sync::TenantId;

/// One row of the access log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccessEntry {
    /// A UUIDv7: ordered by time; the page cursor.
    pub id: String,
    pub at: i64,
    pub viewer: String,
    /// The person whose data was read; `None` when `scope` names a large set instead.
    pub subject: Option<String>,
    /// How the people read were chosen: `tenant`, `team:<manager id>`, `user`, `users`,
    /// `site:<project>:<site>`, `record:<id>` or `readable` (whatever the viewer may read).
    pub scope: String,
    /// The route read: `attendance_report`, `field_events`, `visits`, `photos`, `geojson`,
    /// `customer_timeline`, `makeups`, `photo_file`.
    pub what: String,
    /// The request's filters and how many rows it showed.
    pub detail: serde_json::Value,
}

/// Which access-log rows to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct AccessFilter {
    pub viewer: Option<String>,
    /// Rows about this person: their own rows, and rows over a set that holds them.
    pub subject: Option<String>,
    /// With `subject`: the scopes that hold the subject without naming them (`tenant` is always
    /// one; `team:<their manager>` and `team:<them>`).
    pub subject_scopes: Vec<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Rows older than this id.
    pub before: Option<String>,
    pub limit: i64,
}

/// A `changes` entry of the change log.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct LogRow {
    pub seq: i64,
    pub doc_id: String,
    pub kind: String,
    /// Who pushed it (NULL only for server edits from before the audit existed).
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// The framed changes; `None` for the entry that created the document (its changes are
    /// those of the stored document that no later entry holds).
    pub data: Option<Vec<u8>>,
    pub created_at: i64,
}

/// Which change-log entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct ChangeFilter {
    pub user: Option<String>,
    pub kind: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Entries before this sequence number.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// A stored document with its `changes` entries, oldest first, and its principals.
#[derive(Clone, Debug)]
pub struct DocHistory {
    pub kind: String,
    pub snapshot: Vec<u8>,
    pub rows: Vec<LogRow>,
    pub principals: Vec<String>,
}

/// A device as the audit names it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DeviceName {
    pub id: String,
    pub user_id: String,
    pub name: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct AccessRow {
    pub id: String,
    pub at: i64,
    pub viewer_user_id: String,
    pub subject_user_id: Option<String>,
    pub scope: String,
    pub what: String,
    pub detail: String,
}

impl From<AccessRow> for AccessEntry {
    fn from(r: AccessRow) -> Self {
        AccessEntry {
            id: r.id,
            at: r.at,
            viewer: r.viewer_user_id,
            subject: r.subject_user_id,
            scope: r.scope,
            what: r.what,
            // Written by us as JSON; a row that is not stays readable as its text.
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DocRow {
    pub kind: String,
    pub snapshot: Vec<u8>,
}

/// The audit's storage.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends access-log rows in one transaction.
    async fn record_access(&self, tenant: TenantId, entries: &[AccessEntry]) -> Result<()>;
    /// One page of the access log, newest first.
    async fn access_log(&self, tenant: TenantId, filter: &AccessFilter)
    -> Result<Vec<AccessEntry>>;
    /// A document of the tenant with its `changes` entries; `None` if there is no such document.
    async fn doc_history(&self, tenant: TenantId, doc: &str) -> Result<Option<DocHistory>>;
    /// One page of `changes` entries (without their data), newest first.
    async fn change_rows(&self, tenant: TenantId, filter: &ChangeFilter) -> Result<Vec<LogRow>>;
    /// The named devices of the tenant that exist (server edits name none).
    async fn device_names(&self, tenant: TenantId, ids: &[String]) -> Result<Vec<DeviceName>>;
}

/// Expands the audit's SQL into `impl AuditStore for $store` over the database `$db`.
macro_rules! impl_audit_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::audit::AuditStore for $store {
            async fn record_access(
                &self,
                tenant: fieldsync_sync::TenantId,
                entries: &[$crate::store::audit::AccessEntry],
            ) -> $crate::store::Result<()> {
                if entries.is_empty() {
                    return Ok(());
                }
                let tenant = tenant.as_string();
                let mut tx = self.pool.begin().await?;
                for chunk in entries.chunks(200) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO access_log (tenant_id, id, at, viewer_user_id, subject_user_id, scope, what, detail) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(tenant.clone())
                            .push_bind(e.id.clone())
                            .push_bind(e.at)
                            .push_bind(e.viewer.clone())
                            .push_bind(e.subject.clone())
                            .push_bind(e.scope.clone())
                            .push_bind(e.what.clone())
                            .push_bind(e.detail.to_string());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn access_log(
                &self,
                tenant: fieldsync_sync::TenantId,
                f: &$crate::store::audit::AccessFilter,
            ) -> $crate::store::Result<Vec<$crate::store::audit::AccessEntry>> {
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                let scope = |i: usize| f.subject_scopes.get(i).cloned().unwrap_or_default();
                // A subject's rows: those naming them, and those over a set that holds them
                // (read by someone else: nobody is told they looked at themselves).
                let rows: Vec<$crate::store::audit::AccessRow> = sqlx::query_as(
                    "SELECT id, at, viewer_user_id, subject_user_id, scope, what, detail FROM access_log \
                     WHERE tenant_id = $1 AND ($2 = '' OR viewer_user_id = $2) \
                     AND ($3 = '' OR subject_user_id = $3 OR (subject_user_id IS NULL AND viewer_user_id <> $3 \
                          AND (scope = 'tenant' OR scope = $4 OR scope = $5))) \
                     AND at >= $6 AND at < $7 AND ($8 = '' OR id < $8) \
                     ORDER BY id DESC LIMIT $9",
                )
                .bind(tenant.as_string())
                .bind(opt(&f.viewer))
                .bind(opt(&f.subject))
                .bind(scope(0))
                .bind(scope(1))
                .bind(f.from.unwrap_or(i64::MIN))
                .bind(f.to.unwrap_or(i64::MAX))
                .bind(opt(&f.before))
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn doc_history(
                &self,
                tenant: fieldsync_sync::TenantId,
                doc: &str,
            ) -> $crate::store::Result<Option<$crate::store::audit::DocHistory>> {
                let tenant = tenant.as_string();
                // One read transaction: the document and its entries agree.
                let mut tx = self.pool.begin().await?;
                let Some(d): Option<$crate::store::audit::DocRow> =
                    sqlx::query_as("SELECT kind, snapshot FROM documents WHERE tenant_id = $1 AND doc_id = $2")
                        .bind(&tenant)
                        .bind(doc)
                        .fetch_optional(&mut *tx)
                        .await?
                else {
                    return Ok(None);
                };
                let rows: Vec<$crate::store::audit::LogRow> = sqlx::query_as(
                    "SELECT seq, doc_id, kind, user_id, device_id, data, created_at FROM change_log \
                     WHERE tenant_id = $1 AND doc_id = $2 AND entry = 'changes' ORDER BY seq",
                )
                .bind(&tenant)
                .bind(doc)
                .fetch_all(&mut *tx)
                .await?;
                let principals: Vec<(String,)> =
                    sqlx::query_as("SELECT user_id FROM doc_access WHERE tenant_id = $1 AND doc_id = $2")
                        .bind(&tenant)
                        .bind(doc)
                        .fetch_all(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(Some($crate::store::audit::DocHistory {
                    kind: d.kind,
                    snapshot: d.snapshot,
                    rows,
                    principals: principals.into_iter().map(|(u,)| u).collect(),
                }))
            }

            async fn change_rows(
                &self,
                tenant: fieldsync_sync::TenantId,
                f: &$crate::store::audit::ChangeFilter,
            ) -> $crate::store::Result<Vec<$crate::store::audit::LogRow>> {
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                let rows = sqlx::query_as(
                    "SELECT seq, doc_id, kind, user_id, device_id, NULL AS data, created_at FROM change_log \
                     WHERE tenant_id = $1 AND entry = 'changes' AND ($2 = '' OR user_id = $2) AND ($3 = '' OR kind = $3) \
                     AND created_at >= $4 AND created_at < $5 AND seq < $6 \
                     ORDER BY seq DESC LIMIT $7",
                )
                .bind(tenant.as_string())
                .bind(opt(&f.user))
                .bind(opt(&f.kind))
                .bind(f.from.unwrap_or(i64::MIN))
                .bind(f.to.unwrap_or(i64::MAX))
                .bind(f.before_seq.unwrap_or(i64::MAX))
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn device_names(
                &self,
                tenant: fieldsync_sync::TenantId,
                ids: &[String],
            ) -> $crate::store::Result<Vec<$crate::store::audit::DeviceName>> {
                let mut out = Vec::new();
                for chunk in ids.chunks($crate::store::audit::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id, user_id, name FROM devices WHERE tenant_id = ");
                    qb.push_bind(tenant.as_string()).push(" AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id.clone());
                    }
                    qb.push(")");
                    out.extend(qb.build_query_as::<$crate::store::audit::DeviceName>().fetch_all(&self.pool).await?);
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use impl_audit_store;

/// Ids per `IN (...)` lookup.
pub(super) const CHUNK: usize = 400;
