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

pub mod audit;
mod field;
pub mod handover;
pub mod postgres;
mod sql;
pub mod sqlite;

use chrono::NaiveDate;
use fieldsync_sync::access::{Caller, Directory, Role};
use fieldsync_sync::attendance::{Calendar, Shift};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::{Cursor, PullResponse, PushResponse, PushResult, RepairResponse};
use fieldsync_sync::{DeviceId, DocId, TenantId, UserId};
use fieldsync_sync::{Direction, Policy, TrustLevel};
use std::collections::{BTreeMap, HashMap};
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

// ---- Field work: visits, attendance ----

/// A shift as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShiftRow {
    pub id: String,
    #[serde(flatten)]
    pub shift: Shift,
}

/// A work calendar as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CalendarRow {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub calendar: Calendar,
}

/// Who works where, on which shift and calendar.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AssignmentRow {
    pub user: String,
    pub email: String,
    pub project: String,
    pub project_name: String,
    pub site: String,
    pub site_name: String,
    pub timezone: String,
    pub shift_id: String,
    pub calendar_id: String,
    /// The first day work is due under this assignment (`None`: no start).
    pub starts_on: Option<NaiveDate>,
    pub created_at: i64,
}

/// A punch (or an approved make-up) as attendance reads it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PunchRow {
    pub id: String,
    pub user: String,
    pub at_ms: i64,
    pub direction: Direction,
    pub project: String,
    pub site: String,
    pub trust: TrustLevel,
    pub makeup: bool,
}

/// A person, briefly.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub manager: Option<String>,
    pub disabled: bool,
}

/// Everything an attendance report over a period needs, for a set of people.
#[derive(Clone, Debug, Default)]
pub struct AttendanceInputs {
    pub people: Vec<Person>,
    /// Per user, oldest first (the first is their primary assignment).
    pub assignments: HashMap<String, Vec<AssignmentRow>>,
    pub shifts: HashMap<String, Shift>,
    pub calendars: HashMap<String, Calendar>,
    /// user → date → kind of leave.
    pub leave: HashMap<String, BTreeMap<NaiveDate, String>>,
    /// (project, site) → site name.
    pub site_names: HashMap<(String, String), String>,
    /// Punches and approved make-ups in the period (with a day's margin each side), by time.
    pub punches: Vec<PunchRow>,
}

/// A visit from the projection, with its graded check-in and check-out.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VisitRow {
    pub id: String,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub rep_id: String,
    pub planned_date: Option<String>,
    pub purpose: String,
    /// planned, open, closed, auto_closed or cancelled.
    pub state: String,
    pub check_in_at: Option<i64>,
    pub check_out_at: Option<i64>,
    /// For an auto-closed visit: when it was closed.
    pub auto_closed_at: Option<i64>,
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub next_follow_up: Option<String>,
    pub review_status: String,
    pub reviews: serde_json::Value,
    pub check_in_verdict: Option<serde_json::Value>,
    pub check_out_verdict: Option<serde_json::Value>,
}

/// Which visits to list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct VisitFilter {
    pub rep: Option<String>,
    pub customer: Option<String>,
    /// planned, open, closed, auto_closed, cancelled.
    pub state: Option<String>,
    /// Check-in (or, for planned visits, planned date) from / to, ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// none, approved, commented.
    pub review: Option<String>,
}

/// A graded field event.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldEventRow {
    pub doc_id: String,
    pub event: String,
    pub user_id: String,
    pub at_ms: i64,
    pub device_time_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub provider: String,
    pub mock: bool,
    pub customer_id: Option<String>,
    pub project_id: Option<String>,
    pub site_id: Option<String>,
    pub direction: Option<String>,
    pub target_name: Option<String>,
    pub trust: String,
    pub reasons: serde_json::Value,
    pub distance_m: Option<f64>,
    pub allowed_m: Option<f64>,
    pub received_at: i64,
}

/// Which field events to list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct EventFilter {
    pub user: Option<String>,
    pub event: Option<String>,
    pub trust: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// A photo from the projection, with the grade of its location evidence.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhotoRow {
    pub id: String,
    pub author_id: String,
    pub sha256: String,
    pub size: i64,
    pub mime: String,
    pub attach_kind: String,
    pub attach_id: String,
    pub project_id: Option<String>,
    pub site_id: Option<String>,
    pub day: Option<String>,
    pub captured_at: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub caption: String,
    pub tags: serde_json::Value,
    /// pending, approved, rejected or retake: the latest review's decision.
    pub status: String,
    pub reviews: serde_json::Value,
    pub comments: serde_json::Value,
    pub trust: Option<String>,
    pub reasons: Option<serde_json::Value>,
    /// Where the photo claims to be: its site's area, or the customer it (or its visit) is for.
    #[serde(skip)]
    pub place: Option<PhotoPlace>,
}

/// The place a photo's attachment puts it, to check the camera's own GPS against.
#[derive(Clone, Debug, PartialEq)]
pub enum PhotoPlace {
    Site {
        name: String,
        fence: fieldsync_sync::record::project::Geofence,
    },
    /// `radius_m` is the customer's own visit radius, if it has one (else the tenant's default).
    Customer {
        name: String,
        location: fieldsync_sync::GeoPoint,
        radius_m: Option<f64>,
    },
}

/// What the server learnt from a photo's bytes (see `crate::photo_media`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MediaRow {
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// The camera's capture time: UTC when `exif_time_zoned`, else its local clock read as UTC.
    pub exif_time_ms: Option<i64>,
    pub exif_time_zoned: bool,
    pub exif_lat: Option<f64>,
    pub exif_lon: Option<f64>,
    pub make: Option<String>,
    pub model: Option<String>,
    /// 16 hex digits.
    pub phash: Option<String>,
    pub damaged: bool,
    /// Why the bytes could not be read, if they could not.
    pub error: Option<String>,
}

/// A file attached to a project (its bytes are a blob).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProjectFile {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub sha256: String,
    pub size: i64,
    pub mime: String,
    pub note: String,
    pub added_by: String,
    pub added_at: i64,
}

/// Which site diaries to list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct DiaryFilter {
    pub project: Option<String>,
    pub site: Option<String>,
    /// First and last day, `YYYY-MM-DD`, inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    pub locked: Option<bool>,
}

/// A site diary day as listed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DiaryRow {
    pub id: String,
    pub project_id: String,
    pub site_id: String,
    pub day: String,
    pub locked: bool,
    pub signed_by: Option<String>,
    pub signed_at: Option<i64>,
    /// The whole diary.
    pub record: fieldsync_sync::Diary,
}

/// A punch at a site, for a diary's crew.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SitePunch {
    pub user_id: String,
    pub direction: String,
    pub at_ms: i64,
    pub trust: String,
}

/// Which photos to list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct PhotoFilter {
    pub project: Option<String>,
    pub site: Option<String>,
    /// `YYYY-MM-DD`.
    pub day: Option<String>,
    pub author: Option<String>,
    pub status: Option<String>,
    /// Capture time from / to, ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Photos of this customer: attached to it or to one of its visits.
    pub customer: Option<String>,
}

/// A make-up request from the projection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MakeupRow {
    pub id: String,
    pub user_id: String,
    pub project_id: String,
    pub site_id: String,
    pub direction: String,
    pub at_ms: i64,
    pub reason: String,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
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

/// The tenant's people (and project members), loaded once per push, answering the rules'
/// questions.
pub struct UserDirectory {
    pub users: HashMap<UserId, (Role, Option<UserId>, bool)>,
    /// Each project's members with their role in it.
    pub projects: HashMap<DocId, Vec<(UserId, fieldsync_sync::ProjectRole)>>,
}

impl Directory for UserDirectory {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.users.get(&user).filter(|u| !u.2).map(|u| u.0)
    }
    fn manager_of(&self, user: UserId) -> Option<UserId> {
        self.users.get(&user).and_then(|u| u.1)
    }
    fn project_members(&self, project: DocId) -> Vec<UserId> {
        self.projects
            .get(&project)
            .map(|m| m.iter().map(|(u, _)| *u).collect())
            .unwrap_or_default()
    }
    fn project_role(&self, project: DocId, user: UserId) -> Option<fieldsync_sync::ProjectRole> {
        self.projects
            .get(&project)?
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, r)| *r)
    }
    fn pool_readers(&self) -> Vec<UserId> {
        let mut v: Vec<UserId> = self
            .users
            .iter()
            .filter(|(_, u)| u.0 == Role::Manager && !u.2)
            .map(|(id, _)| *id)
            .collect();
        v.sort();
        v
    }
}

/// Everything the server stores.
#[async_trait::async_trait]
pub trait Store: audit::AuditStore + handover::HandoverStore + Send + Sync + 'static {
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
    // Field work: configuration (admin and HR routes check the role).
    async fn field_policy(&self, tenant: TenantId) -> Result<Policy>;
    async fn set_field_policy(&self, tenant: TenantId, policy: &Policy) -> Result<()>;
    /// Stores a validated shift; a name already used is `Conflict`.
    async fn create_shift(&self, tenant: TenantId, shift: &Shift) -> Result<ShiftRow>;
    async fn list_shifts(&self, tenant: TenantId) -> Result<Vec<ShiftRow>>;
    async fn create_calendar(
        &self,
        tenant: TenantId,
        name: &str,
        calendar: &Calendar,
    ) -> Result<CalendarRow>;
    async fn list_calendars(&self, tenant: TenantId) -> Result<Vec<CalendarRow>>;
    /// Assigns a user to a project site on a shift and calendar from `starts_on` (replacing the
    /// shift, calendar and start of an existing assignment). Unknown user, site, shift or calendar: `NotFound`.
    // One whole operation, each argument a different key of it.
    #[allow(clippy::too_many_arguments)]
    async fn assign_site(
        &self,
        tenant: TenantId,
        user: UserId,
        project: DocId,
        site: &str,
        shift_id: &str,
        calendar_id: &str,
        starts_on: Option<NaiveDate>,
    ) -> Result<AssignmentRow>;
    /// Removes an assignment; false if there was none.
    async fn unassign_site(
        &self,
        tenant: TenantId,
        user: UserId,
        project: DocId,
        site: &str,
    ) -> Result<bool>;
    async fn assignments(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
    ) -> Result<Vec<AssignmentRow>>;
    /// Records leave for the given days (replacing what was there), or removes it (`kind` None).
    async fn set_leave(
        &self,
        tenant: TenantId,
        user: UserId,
        days: &[NaiveDate],
        kind: Option<&str>,
    ) -> Result<()>;

    // Field work: reads.
    /// What an attendance report over `[from_ms, to_ms)` needs, for `users` (all if None).
    async fn attendance_inputs(
        &self,
        tenant: TenantId,
        users: Option<&[UserId]>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<AttendanceInputs>;
    /// Visits `caller` may read (their own, their team's; admins all), newest first.
    async fn list_visits(
        &self,
        caller: &Caller,
        filter: &VisitFilter,
        now: i64,
    ) -> Result<Vec<VisitRow>>;
    /// Graded field events `caller` may read (own, team's; admins and HR all), newest first.
    async fn field_events(
        &self,
        caller: &Caller,
        filter: &EventFilter,
    ) -> Result<Vec<FieldEventRow>>;
    /// Records what the bytes of a blob showed (once per blob; a second call replaces it).
    async fn record_photo_media(&self, tenant: TenantId, media: &MediaRow) -> Result<()>;
    /// What the bytes of these blobs showed, for those processed.
    async fn photo_media(&self, tenant: TenantId, sha256: &[String]) -> Result<Vec<MediaRow>>;
    /// Every photo of the tenant with a perceptual hash: (photo id, sha256, hash).
    async fn photo_hashes(&self, tenant: TenantId) -> Result<Vec<(String, String, u64)>>;
    /// Photos `caller` may read (as the records), newest first.
    async fn list_photos(&self, caller: &Caller, filter: &PhotoFilter) -> Result<Vec<PhotoRow>>;
    /// Records a file of a project (the caller checked the project and the bytes).
    async fn add_project_file(&self, tenant: TenantId, file: &ProjectFile) -> Result<()>;
    /// A project's files, oldest first (removed ones left out).
    async fn project_files(&self, tenant: TenantId, project: &str) -> Result<Vec<ProjectFile>>;
    /// Marks a file removed (kept for the record); false if there was no such file.
    async fn remove_project_file(
        &self,
        tenant: TenantId,
        project: &str,
        id: &str,
        by: UserId,
        at: i64,
    ) -> Result<bool>;
    /// Site diary days `caller` may read, by day.
    async fn list_diaries(&self, caller: &Caller, filter: &DiaryFilter) -> Result<Vec<DiaryRow>>;
    /// The in-punches at any site of a project between two times (not those graded
    /// `rejected`): (site, user, time), for headcounts.
    async fn project_in_punches(
        &self,
        tenant: TenantId,
        project: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, String, i64)>>;
    /// The punches at a project site between two times (not those graded `rejected`), by user
    /// and time.
    async fn site_punches(
        &self,
        tenant: TenantId,
        project: &str,
        site: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SitePunch>>;
    /// Make-up requests `caller` may read (own, team's; admins and HR all), newest first.
    async fn list_makeups(&self, caller: &Caller, status: Option<&str>) -> Result<Vec<MakeupRow>>;

    /// Number of stored documents in a tenant (for status pages and benchmarks).
    async fn count_documents(&self, tenant: TenantId) -> Result<i64>;

    // Customer import (issue 5).
    /// The customers earlier imports made for these keys: key → customer id.
    async fn import_keys(
        &self,
        tenant: TenantId,
        keys: &[String],
    ) -> Result<HashMap<String, DocId>>;
    /// Records each key → customer id not recorded yet (an id already recorded for a key is
    /// kept), and answers what is recorded for every one of them afterwards.
    async fn reserve_import_keys(
        &self,
        tenant: TenantId,
        keys: &[(String, DocId)],
    ) -> Result<HashMap<String, DocId>>;
    /// The stored documents of these customers (id → compacted bytes), whoever owns them: the
    /// import decides on them and the push's rules decide whether the caller may change them.
    async fn customer_docs(
        &self,
        tenant: TenantId,
        ids: &[DocId],
    ) -> Result<HashMap<DocId, Vec<u8>>>;
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
