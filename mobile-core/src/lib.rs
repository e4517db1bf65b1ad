//! fieldsync's phone library: an offline store of Automerge documents (one per customer or
//! project), typed offline edits validated by the same rules the server runs, an outbox that
//! survives crashes, and the sync client (push, pull, repair, live notifications).
//!
//! The API is blocking and FFI-friendly: one owned [`FieldsyncClient`] whose methods take
//! `&self` (state sits behind a mutex), plain data in and out ([`model`]), and one error enum
//! ([`ClientError`]) whose variants carry a stable `code` and a `message`.
//!
//! ```no_run
//! use fieldsync_mobile_core::{FieldsyncClient, NewCustomer};
//! let client = FieldsyncClient::open("/data/fieldsync".into())?;
//! client.login("http://localhost:8080".into(), "demo".into(), "rep@demo.example".into(), "pw".into())?;
//! let c = client.create_customer(NewCustomer { name: "Acme Ltd".into(), ..Default::default() })?;
//! let report = client.sync()?;
//! # Ok::<(), fieldsync_mobile_core::ClientError>(())
//! ```
//!
//! Field work: visits with check-in and check-out, attendance punches and make-up requests.
//! Each event carries location evidence dated so the server can place it even if it was made
//! offline on a phone whose clock was moved, and comes back with the location verdict the phone
//! computed offline:
//!
//! ```no_run
//! # use fieldsync_mobile_core::{FieldsyncClient, LocationFix};
//! # let client = FieldsyncClient::open("/data/fieldsync".into())?;
//! # let (customer_id, project_id) = (String::new(), String::new());
//! let visit = client.plan_visit(customer_id, Some("2026-11-24".into()), "Demo".into())?;
//! let ev = client.check_in(visit.visit.id.to_string(), LocationFix::gps(30.6587, 104.0649, 8.0))?;
//! println!("{}: {:?}", ev.verdict.level, ev.verdict.reasons);
//! client.punch(project_id, "hq".into(), "in".into(), LocationFix::gps(30.5703, 104.0639, 8.0), None)?;
//! # Ok::<(), fieldsync_mobile_core::ClientError>(())
//! ```
//!
//! Photos: the bytes are copied into the device's storage and queued; the record syncs at once,
//! the bytes follow after it at every sync (or [`FieldsyncClient::upload_photos`]), resumably:
//!
//! ```no_run
//! # use fieldsync_mobile_core::{AttachTo, FieldsyncClient, LocationFix, PhotoSource};
//! # let client = FieldsyncClient::open("/data/fieldsync".into())?;
//! # let visit_id = String::new();
//! let to = AttachTo { kind: "visit".into(), id: visit_id, ..Default::default() };
//! let fix = LocationFix::gps(30.6587, 104.0649, 8.0);
//! let p = client.attach_photo(PhotoSource::file("/sdcard/DCIM/IMG_0001.jpg"), to, Some(fix),
//!     "Storefront".into(), vec!["storefront".into()])?;
//! let report = client.sync()?; // the record, then the bytes
//! println!("{} queued, {} bytes to send", p.photo.sha256, client.upload_status()?.bytes_pending);
//! # Ok::<(), fieldsync_mobile_core::ClientError>(())
//! ```
//!
//! Modules: [`store`] (SQLite schema and queries), `client` (HTTP and tokens), `clock` (the
//! phone's clocks and how events are dated), `edit` (record edits), `field` (what every field
//! event shares: evidence, policy, recent events), `visits`, `attendance` (punches, make-up
//! requests, the worker's month), `photos` (taking, listing and reviewing photos, their files),
//! `upload` (the upload queue and the resumable blob protocol), `sync` (push, pull, repair),
//! `diaries` (site diary days: opening from the shared genesis, edits, sign-off, what a refusal
//! keeps), `timeline` (a customer's timeline from the local store), [`live`] (the WebSocket),
//! [`error`], [`model`].

mod attendance;
mod client;
mod clock;
mod diaries;
mod edit;
pub mod error;
mod field;
pub mod live;
pub mod model;
mod photos;
pub mod store;
mod sync;
mod timeline;
mod upload;
mod visits;

pub use error::ClientError;
pub use fieldsync_sync::attendance::{DayRecord, DayStatus, Shift, Summary};
pub use fieldsync_sync::evidence::{Evidence, Provider};
pub use fieldsync_sync::record::diary::{
    CrewEntry, DIARY_LISTS, Diary, DiaryAction, DiaryItem, IncidentSeverity, SignEvent,
};
pub use fieldsync_sync::record::photo::{
    AttachKind, Attachment, Photo, PhotoComment, PhotoDecision, PhotoReview,
};
pub use fieldsync_sync::record::punch::{Direction, Makeup, MakeupDecision, MakeupStatus, Punch};
pub use fieldsync_sync::record::visit::{CheckOut, Review, ReviewDecision, Visit, VisitOutcome};
pub use fieldsync_sync::trust::{Policy, Reason, Severity, TrustLevel, Verdict};
pub use fieldsync_sync::{
    Conflict, Contact, Customer, CustomerKind, GeoPoint, Geofence, Lifecycle, Member, Milestone,
    MilestoneStatus, Project, ProjectRole, ProjectStatus, Site, Tier,
};
pub use live::LiveConnection;
pub use model::*;

use client::{Http, Inner};
use error::Result;
use fieldsync_sync::DeviceId;
use std::sync::{Mutex, MutexGuard};

/// The phone's handle on its local data and the server. Open one per data directory.
pub struct FieldsyncClient {
    inner: Mutex<Inner>,
    /// Held by the upload run under way, which takes `inner` only between requests: one run at
    /// a time, while every other call stays answerable.
    uploading: Mutex<()>,
}

impl FieldsyncClient {
    /// Opens (creating if needed) the store in `dir` (`dir/fieldsync.db`). The device id is
    /// made on first open and kept from then on.
    pub fn open(dir: String) -> Result<FieldsyncClient> {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            ClientError::storage(format!(
                "Cannot create the data directory {}: {e}.",
                dir.display()
            ))
        })?;
        let store = store::Store::open(&dir.join("fieldsync.db"))?;
        let device_id = match store::meta_get(&store.conn, "device_id")? {
            Some(s) => s.parse::<DeviceId>().map_err(|_| {
                ClientError::storage(format!("The stored device id '{s}' is not a UUID."))
            })?,
            None => {
                let id = DeviceId::new();
                store::meta_set(&store.conn, "device_id", &id.to_string())?;
                id
            }
        };
        photos::remove_temp_files(&dir);
        Ok(FieldsyncClient {
            inner: Mutex::new(Inner {
                store,
                http: Http::new(),
                device_id,
                dir,
                upload_chunk_bytes: upload::CHUNK_BYTES,
            }),
            uploading: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This install's device id.
    pub fn device_id(&self) -> String {
        self.lock().device_id.to_string()
    }

    /// Logs in with the device's own id and stores the tokens. Logging in as another user or
    /// tenant than the owner of the local data first removes that data.
    pub fn login(
        &self,
        server_url: String,
        tenant: String,
        email: String,
        password: String,
    ) -> Result<Status> {
        self.lock().login(&server_url, &tenant, &email, &password)?;
        self.status()
    }

    /// Forgets the tokens. Local records and unsent edits stay until the next login.
    pub fn logout(&self) -> Result<()> {
        self.lock().logout()
    }

    /// The device's state at a glance.
    pub fn status(&self) -> Result<Status> {
        let inner = self.lock();
        let conn = &inner.store.conn;
        let session = store::session_get(conn)?;
        let pending_batches = store::batches_pending(conn)?.len() as u64;
        Ok(Status {
            logged_in: session.is_some(),
            server_url: session.as_ref().map(|s| s.server_url.clone()),
            tenant: session.as_ref().map(|s| s.tenant_slug.clone()),
            tenant_id: session.as_ref().map(|s| s.tenant_id.clone()),
            user_id: session.as_ref().map(|s| s.user_id.clone()),
            email: session.as_ref().map(|s| s.email.clone()),
            role: session.as_ref().map(|s| s.role.clone()),
            device_id: inner.device_id.to_string(),
            pending_docs: store::count_docs(conn, true)?,
            pending_batches,
            total_docs: store::count_docs(conn, false)?,
            last_sync_at_ms: store::meta_get(conn, "last_sync_at_ms")?.and_then(|s| s.parse().ok()),
            cursor: store::meta_get(conn, "cursor")?,
            last_rejections: store::rejections_recent(conn, 20)?
                .into_iter()
                .map(rejected_change)
                .collect(),
        })
    }

    /// Forgets the rejections shown in [`Status::last_rejections`].
    pub fn clear_rejections(&self) -> Result<()> {
        store::rejections_clear(&self.lock().store.conn)
    }

    /// Deletes every record, unsent edit, photo file and upload, the cursor and the session of
    /// this device (what happens automatically when the server revokes the device). The device
    /// id stays.
    pub fn purge(&self) -> Result<()> {
        let inner = self.lock();
        store::purge(&inner.store.conn)?;
        photos::remove_all(&inner.dir)
    }
}

fn rejected_change(r: store::RejectionRow) -> RejectedChange {
    RejectedChange {
        doc_id: r.doc_id,
        code: r.code,
        message: r.message,
        at_ms: r.at_ms,
        kept: r.kept,
    }
}

#[cfg(test)]
mod diary_tests;
#[cfg(test)]
mod fake_server;
#[cfg(test)]
mod field_tests;
#[cfg(test)]
mod photo_tests;
#[cfg(test)]
mod tests;
