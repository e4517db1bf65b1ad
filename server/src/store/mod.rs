//! Storage behind one trait, [`Store`], with two backends: SQLite (the default: one file, no
//! setup) and PostgreSQL (for tenants that outgrow one machine). Every method is a whole
//! operation that opens and commits its own transaction; handlers never see a pool.
//!
//! The SQL both databases accept lives once, in [`sql`], expanded for each backend by a macro;
//! what differs (connecting, how a write transaction takes its lock) lives in [`sqlite`] and
//! [`postgres`]. One conformance suite (`server/tests/store.rs`) runs against both.
//!
//! No Automerge document stays in memory after the operation that needed it: pushes load the
//! documents they touch from their compacted snapshot and drop them when the transaction ends,
//! so memory does not grow with the number of records stored.

pub mod postgres;
mod sql;
pub mod sqlite;

use fieldsync_sync::access::{Caller, Directory, Role};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::{Cursor, PullResponse, PushResponse, PushResult, RepairResponse};
use fieldsync_sync::{DeviceId, DocId, TenantId, UserId};
use std::collections::HashMap;
use std::sync::Arc;

/// A failure of the storage layer. None of these are the client's fault; the HTTP layer logs
/// them and answers 500 (or 409 for `Conflict`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("background task failed: {0}")]
    Task(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A tenant row.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
}

/// A user row.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub tenant: TenantId,
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub manager: Option<UserId>,
    pub disabled: bool,
}

/// A device row.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub tenant: TenantId,
    pub id: DeviceId,
    pub user: UserId,
    pub name: String,
    pub revoked: bool,
}

/// The answer to presenting a refresh token.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshUse {
    /// Valid and now spent.
    Fresh {
        tenant: TenantId,
        device: DeviceId,
        user: UserId,
    },
    /// Already spent once: whoever holds it copied it. The device has been revoked.
    Reused { tenant: TenantId, device: DeviceId },
    /// Unknown or expired.
    Invalid,
}

/// How long a push's answer is kept for retries with the same batch id.
pub const PUSH_ANSWER_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a spent refresh token is kept to recognise its reuse.
pub const SPENT_REFRESH_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// How long after a refresh token was spent a retry with it is taken as a lost answer rather
/// than theft. Short, because within it a thief with the same token would be let in too.
pub const REFRESH_GRACE_MS: i64 = 30_000;

/// Whether a token's subject may still act: checked on every request.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionState {
    Active { role: Role },
    UserDisabled,
    DeviceRevoked,
    Unknown,
}

/// A customer row from the projection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub customer_kind: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub tier: Option<String>,
    pub lifecycle: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    pub notes: String,
    pub conflicts: serde_json::Value,
    pub contacts: Vec<ContactRow>,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ContactRow {
    pub id: String,
    pub name: String,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A project row from the projection, with its sites and members.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProjectRow {
    pub id: String,
    pub customer_id: Option<String>,
    pub name: String,
    pub code: Option<String>,
    pub status: String,
    pub created_by: String,
    pub sites: Vec<serde_json::Value>,
    pub members: Vec<serde_json::Value>,
    pub milestones: Vec<serde_json::Value>,
    pub updated_at: i64,
}

/// What a push produced, besides its answer: the log position to announce to live phones.
pub struct PushOutcome {
    pub response: PushResponse,
    /// The tenant's newest log entry, if this push appended any.
    pub new_seq: Option<i64>,
    /// Who should hear about it: the principals of every written record, their managers, and
    /// anyone whose access moved. (Admins read everything and hear about everything.)
    pub audience: Vec<UserId>,
}

/// One document of a push: either parsed and ready for the merge core, or already refused at
/// the edge (unknown kind) with its result.
pub enum PushItem {
    Apply(Incoming),
    Refused(PushResult),
}

/// The tenant's people, loaded once per push, answering the rules' questions.
pub struct UserDirectory(pub HashMap<UserId, (Role, Option<UserId>, bool)>);

impl Directory for UserDirectory {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.0.get(&user).filter(|u| !u.2).map(|u| u.0)
    }
    fn manager_of(&self, user: UserId) -> Option<UserId> {
        self.0.get(&user).and_then(|u| u.1)
    }
}

/// Everything the server stores.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is ("sqlite", "postgres").
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// The JWT signing secret, made and stored on first use.
    async fn signing_secret(&self) -> Result<Vec<u8>>;

    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant>;
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    async fn create_user(
        &self,
        tenant: TenantId,
        email: &str,
        password_hash: &str,
        role: Role,
        manager: Option<UserId>,
    ) -> Result<User>;
    async fn user_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<User>>;
    async fn user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>>;
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>>;
    /// Disables (or enables) a user; disabling also revokes all their devices and refresh tokens.
    async fn set_user_disabled(&self, tenant: TenantId, user: UserId, disabled: bool)
    -> Result<()>;

    /// Registers the device for the user (or re-binds it at a new login), un-revoking nothing:
    /// a revoked device id stays revoked.
    async fn register_device(
        &self,
        tenant: TenantId,
        device: DeviceId,
        user: UserId,
        name: &str,
    ) -> Result<Device>;
    async fn device(&self, tenant: TenantId, device: DeviceId) -> Result<Option<Device>>;
    async fn list_devices(&self, tenant: TenantId, user: Option<UserId>) -> Result<Vec<Device>>;
    async fn revoke_device(&self, tenant: TenantId, device: DeviceId) -> Result<()>;
    async fn store_refresh_token(
        &self,
        tenant: TenantId,
        device: DeviceId,
        user: UserId,
        token_hash: &str,
        expires_at: i64,
        replaces: Option<&str>,
    ) -> Result<()>;
    /// Spends a refresh token (single use). A reuse revokes the device, unless it comes within
    /// [`REFRESH_GRACE_MS`] of the first use and the successor was never used: then the phone
    /// lost the answer, the successor is dropped and the token counts as fresh once more.
    async fn use_refresh_token(&self, token_hash: &str, now: i64) -> Result<RefreshUse>;
    async fn session_state(
        &self,
        tenant: TenantId,
        user: UserId,
        device: DeviceId,
    ) -> Result<SessionState>;

    /// Applies a push in one transaction and answers it; a retried batch gets the stored answer.
    async fn push(
        &self,
        caller: &Caller,
        device: DeviceId,
        batch_id: uuid::Uuid,
        items: Vec<PushItem>,
    ) -> Result<PushOutcome>;
    /// One page of what changed since `cursor`, filtered to what `caller` may read.
    /// Changes that `device` pushed itself are left out: it has them.
    async fn pull(
        &self,
        caller: &Caller,
        device: Option<DeviceId>,
        cursor: Cursor,
        max_bytes: u64,
    ) -> Result<PullResponse>;
    /// Compares the phone's heads with the server's and lists what differs.
    async fn repair(
        &self,
        caller: &Caller,
        heads: Vec<(DocId, Vec<String>)>,
    ) -> Result<RepairResponse>;
    /// The compacted document, if `caller` may read it.
    async fn readable_doc(&self, caller: &Caller, doc: DocId) -> Result<Option<(String, Vec<u8>)>>;

    async fn list_customers(&self, caller: &Caller) -> Result<Vec<CustomerRow>>;
    async fn customer(&self, caller: &Caller, id: DocId) -> Result<Option<CustomerRow>>;
    async fn list_projects(&self, caller: &Caller) -> Result<Vec<ProjectRow>>;
    async fn project(&self, caller: &Caller, id: DocId) -> Result<Option<ProjectRow>>;
    /// Number of stored documents in a tenant (for status pages and benchmarks).
    async fn count_documents(&self, tenant: TenantId) -> Result<i64>;
}

/// Opens the store a URL names: `postgres://…` for PostgreSQL, `sqlite://path` or a plain path
/// for SQLite. Migrations are applied.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(postgres::PgStore::connect(url).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Arc::new(sqlite::SqliteStore::open(std::path::Path::new(path)).await?)
        };
    store.migrate().await?;
    Ok(store)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Frames changes for the change log: each as a little-endian u32 length and its bytes.
pub fn frame_changes(changes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(changes.iter().map(|c| c.len() + 4).sum());
    for c in changes {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// Splits what [`frame_changes`] made.
pub fn unframe_changes(mut data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(StoreError::Corrupt("truncated change frame".into()));
        }
        let (len, rest) = data.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if rest.len() < len {
            return Err(StoreError::Corrupt("truncated change frame".into()));
        }
        let (c, rest) = rest.split_at(len);
        out.push(c.to_vec());
        data = rest;
    }
    Ok(out)
}
