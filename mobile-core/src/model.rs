//! The plain data types of the public API: what callers pass in to create and edit records
//! and what they get back (records with their conflicts, field events with their location
//! verdict, sync reports, status). Records themselves are the shared [`fieldsync_sync`] types,
//! so the phone and the server agree on every field.

use fieldsync_sync::attendance::{DayRecord, Shift, Summary};
use fieldsync_sync::record::punch::{Makeup, Punch};
use fieldsync_sync::record::visit::Visit;
use fieldsync_sync::trust::{Policy, Verdict};
use fieldsync_sync::{
    Conflict, CrewEntry, Customer, Diary, DiaryItem, GeoPoint, Geofence, Photo, Project,
};
use serde::{Deserialize, Serialize};

/// Fields of a new customer. Choices (`kind`, `tier`, `lifecycle`) are their snake_case names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewCustomer {
    pub name: String,
    /// `company` (default) or `person`.
    pub kind: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// Latitude and longitude must be given together.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// `key`, `ordinary`, `gold`, `silver`, `bronze`.
    pub tier: Option<String>,
    /// `prospect` (default), `active`, `churned`.
    pub lifecycle: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
}

/// A new contact person at a customer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewContact {
    pub name: String,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// One field set to one value, as text. An empty value clears an optional field.
///
/// Customer fields: `name`, `kind`, `phone`, `email`, `address`, `lat`, `lon`, `location`
/// (`lat,lon`), `tier`, `lifecycle`, `owner` (user id), `notes`, `tags` (comma-separated).
/// Project fields: `name`, `code`, `status`, `customer` (customer id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldEdit {
    pub field: String,
    pub value: String,
}

/// Fields of a new project.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewProject {
    pub name: String,
    pub code: Option<String>,
    /// The customer's record id.
    pub customer_id: Option<String>,
    /// `planned` (default), `active`, `on_hold`, `completed`, `cancelled`.
    pub status: Option<String>,
}

/// A new site of a project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSite {
    pub name: String,
    pub address: Option<String>,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub timezone: String,
    pub geofence: Option<Geofence>,
}

impl NewSite {
    /// A circle geofence around `lat`,`lon`.
    pub fn circle(lat: f64, lon: f64, radius_m: f64) -> Geofence {
        Geofence::Circle {
            center: GeoPoint { lat, lon },
            radius_m,
        }
    }
}

/// A customer as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerView {
    pub customer: Customer,
    /// Fields two people changed at once; shown until someone sets the field again.
    pub conflicts: Vec<Conflict>,
    /// Holds edits the server has not accepted yet.
    pub pending: bool,
}

/// A project as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectView {
    pub project: Project,
    pub conflicts: Vec<Conflict>,
    pub pending: bool,
}

/// A change the server refused. The device's copy was reset to the server's version (or
/// deleted if the server has none the user may see).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedChange {
    pub doc_id: String,
    pub code: String,
    pub message: String,
    /// When it was recorded (ms since the epoch, local clock).
    pub at_ms: i64,
    /// What the person wrote that the refusal took off this phone, as JSON, so it is not lost:
    /// for a site diary a [`DiaryKept`] (see [`crate::FieldsyncClient::diary_rejections`]).
    pub kept: Option<String>,
}

/// What one [`crate::FieldsyncClient::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Documents sent (a document sent twice counts twice).
    pub pushed: u64,
    pub accepted: u64,
    pub rejected: Vec<RejectedChange>,
    /// Pull items applied (changes and snapshots).
    pub pulled: u64,
    /// Documents deleted because the user may no longer read them.
    pub revoked: u64,
    /// The pull cursor afterwards.
    pub cursor: Option<String>,
    /// The photo bytes sent after the records (an upload failure does not fail the sync: it is
    /// recorded on the item and retried at the next one).
    #[serde(default)]
    pub uploads: UploadReport,
}

/// What one [`crate::FieldsyncClient::repair`] did, before the sync it ends with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Documents the device lacked and received whole.
    pub added: u64,
    /// Documents deleted.
    pub revoked: u64,
    /// Documents that differed and were reconciled with Automerge sync.
    pub reconciled: u64,
    /// The sync that followed.
    pub sync: SyncReport,
}

/// The device's state at a glance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub logged_in: bool,
    pub server_url: Option<String>,
    pub tenant: Option<String>,
    pub tenant_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub device_id: String,
    /// Documents with edits the server has not accepted yet.
    pub pending_docs: u64,
    /// Push batches built but not answered yet.
    pub pending_batches: u64,
    pub total_docs: u64,
    pub last_sync_at_ms: Option<i64>,
    pub cursor: Option<String>,
    /// Newest first, at most 20.
    pub last_rejections: Vec<RejectedChange>,
}

/// What the live connection reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The server said hello (first frame after connecting).
    Hello,
    /// Something changed on the server; pull.
    Changed { seq: i64 },
    /// The server closed the connection; reconnect later.
    Closed,
    /// The server revoked this device or disabled the account. [`crate::FieldsyncClient::wait_for_change`]
    /// purges the local data when it sees this.
    Revoked { reason: String },
}

/// The phone's clocks and what it knows of the server's (see the `clock` module).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStatus {
    /// A manual clock is set (simulator, test, CLI); the system's clocks otherwise.
    pub manual: bool,
    /// The wall clock, ms since the Unix epoch.
    pub wall_ms: i64,
    /// The monotonic clock, ms since boot.
    pub monotonic_ms: i64,
    pub boot_id: String,
    /// `server time - monotonic time`, if learnt in this boot (events are dated with it).
    pub server_offset_ms: Option<i64>,
    /// The server's time now as the phone reckons it, if the offset holds in this boot.
    pub server_time_ms: Option<i64>,
    /// The boot the stored offset was learnt in (it may be an earlier one).
    pub offset_boot_id: Option<String>,
    /// When the offset was learnt (wall clock) and the round trip of that pull (half of it is
    /// the uncertainty).
    pub offset_learned_at_ms: Option<i64>,
    pub offset_round_trip_ms: Option<i64>,
}

/// A location fix from the phone's location provider, as the app hands it over for a field
/// event. The library adds the clocks and turns it into the record's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocationFix {
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f64,
    pub altitude_m: Option<f64>,
    /// `gps`, `network` or `fused`.
    pub provider: String,
    /// When the fix was taken (ms since the epoch, the phone's wall clock); `None`: now, on the
    /// client's clock.
    pub fix_time_ms: Option<i64>,
    /// The OS flagged the location as mocked.
    pub mock: bool,
    /// The BSSID of the connected Wi-Fi network, e.g. `00:11:22:aa:bb:cc`.
    pub wifi_bssid: Option<String>,
}

impl LocationFix {
    /// A fresh GPS fix at `lat`,`lon`, accurate to `accuracy_m`.
    pub fn gps(lat: f64, lon: f64, accuracy_m: f64) -> LocationFix {
        LocationFix {
            lat,
            lon,
            accuracy_m,
            altitude_m: None,
            provider: "gps".into(),
            fix_time_ms: None,
            mock: false,
            wifi_bssid: None,
        }
    }
}

/// A visit as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisitView {
    pub visit: Visit,
    /// `planned`, `open` (checked in), `closed` (checked out), `cancelled`, or `auto_closed`
    /// (checked in longer ago than the policy's `visit_auto_close_ms`, never checked out).
    pub state: String,
    /// The customer's name, if the customer is on this device.
    pub customer_name: Option<String>,
    /// Holds changes the server has not accepted yet.
    pub pending: bool,
    pub conflicts: Vec<Conflict>,
}

/// A punch as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PunchView {
    pub punch: Punch,
    /// The project's and site's names, if the project is on this device.
    pub project_name: Option<String>,
    pub site_name: Option<String>,
    /// When the punch happened, as the server will date it (ms since the epoch): the monotonic
    /// clock plus the server offset when the phone had one, its wall clock otherwise.
    pub time_ms: i64,
    /// Not yet accepted by the server.
    pub pending: bool,
}

/// A field event just made (a check-in, a check-out, a punch) and its location verdict as the
/// phone grades it offline, with the same rules and the cached tenant policy. The server grades
/// the event again when it arrives, with its own clock; that verdict is the one that counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldEventView {
    /// The visit, after a check-in or check-out.
    pub visit: Option<VisitView>,
    /// The punch, after a punch.
    pub punch: Option<PunchView>,
    pub verdict: Verdict,
}

/// A make-up request as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MakeupView {
    pub makeup: Makeup,
    /// The project's and site's names and the site's time zone, if the project is on this device.
    pub project_name: Option<String>,
    pub site_name: Option<String>,
    pub timezone: Option<String>,
    /// `at_ms` in the site's time zone, `YYYY-MM-DD HH:MM` (followed by ` UTC` when the site is
    /// not on this device).
    pub local_time: String,
    /// `requested`, `approved` or `rejected`.
    pub state: String,
    /// Holds changes the server has not accepted yet.
    pub pending: bool,
    pub conflicts: Vec<Conflict>,
}

/// A project site the worker is assigned to, with the shift they work there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The project's record id.
    pub project: String,
    pub project_name: String,
    /// The site's id within the project.
    pub site: String,
    pub site_name: String,
    /// The site's IANA time zone.
    pub timezone: String,
    /// `None` if the server could not name the shift.
    pub shift: Option<Shift>,
}

/// The worker's own month, as the server computes it (`GET /v1/attendance/me`), plus the
/// punches of that month still waiting on this phone to be sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MyAttendance {
    /// `YYYY-MM`.
    pub month: String,
    pub user: String,
    /// The tenant's trust policy (also cached for verdict previews).
    pub policy: Policy,
    /// Also cached: a punch at a site not among them is refused with `not_assigned`.
    pub assignments: Vec<Assignment>,
    /// One record per day of the month, as far as the server knows.
    pub days: Vec<DayRecord>,
    pub summary: Summary,
    /// This month's punches made on this phone that the server has not accepted yet: the days
    /// above do not count them.
    pub pending_punches: Vec<PunchView>,
}

/// Where a new photo's bytes come from: a file (read once and copied into the device's own
/// storage, so the photo survives the file being deleted from the gallery) or bytes in memory.
/// Exactly one is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoSource {
    pub path: Option<String>,
    pub bytes: Option<Vec<u8>>,
}

impl PhotoSource {
    /// The photo in the file at `path`.
    pub fn file(path: impl Into<String>) -> PhotoSource {
        PhotoSource {
            path: Some(path.into()),
            bytes: None,
        }
    }

    /// The photo in `bytes`.
    pub fn bytes(bytes: Vec<u8>) -> PhotoSource {
        PhotoSource {
            path: None,
            bytes: Some(bytes),
        }
    }
}

/// What a new photo documents: `kind` is `visit`, `project`, `site_day` or `customer`, `id`
/// the record's id. A site diary day (`site_day`) is a day of a project (`id`) at one of its
/// sites: `site` (the site's id, or its name if no other site of the project has it) and `day`
/// (`YYYY-MM-DD`); the other kinds take neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachTo {
    pub kind: String,
    pub id: String,
    pub site: Option<String>,
    pub day: Option<String>,
}

/// A photo as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoView {
    /// The record: bytes' identity, attachment, capture time and evidence, caption, tags, and
    /// every review and comment (oldest first).
    pub photo: Photo,
    /// The latest review's decision: `approved`, `rejected` or `retake`; `pending` before any.
    pub status: String,
    /// The server holds the bytes, as far as this phone knows (it uploaded them, or found them
    /// there). False for a photo taken on another phone: its bytes never were in this queue.
    pub uploaded: bool,
    /// Where this phone's upload of the bytes stands (`queued`, `uploading`, `done`,
    /// `failed`); `None` if they were never queued here.
    pub upload_state: Option<String>,
    /// The device's copy of the bytes, if it has one.
    pub local_path: Option<String>,
    /// Holds changes the server has not accepted yet.
    pub pending: bool,
    pub conflicts: Vec<Conflict>,
}

/// One photo's bytes in the upload queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadItem {
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    /// The device's copy of the bytes.
    pub local_path: String,
    /// `queued` (nothing sent yet), `uploading` (part sent), `done` (the server holds them
    /// whole) or `failed` (given up: see `last_error`; attaching the photo again retries).
    pub state: String,
    /// Bytes the server was last known to hold.
    pub bytes_sent: u64,
    /// Upload runs that worked on it.
    pub attempts: u64,
    /// The latest error: its code and its sentence. Kept until the upload is done.
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    /// When it was queued and last changed (ms since the epoch, local clock).
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The upload queue of photo bytes at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadQueueStatus {
    pub queued: u64,
    pub uploading: u64,
    pub done: u64,
    pub failed: u64,
    /// Bytes still to send for the queued and part-sent items.
    pub bytes_pending: u64,
    /// Every item, oldest first.
    pub items: Vec<UploadItem>,
}

/// What one upload run did (on its own, or at the end of a sync).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReport {
    /// Photos whose bytes the server now holds whole: sent in this run, or found there already.
    pub completed: u64,
    /// Photo bytes the server acknowledged in this run.
    pub bytes_sent: u64,
    /// Uploads given up in this run (a damaged copy, a refused format...): see their
    /// `last_error`.
    pub failed: u64,
    /// Uploads that met an error worth retrying (server trouble): tried again next run.
    pub errors: u64,
    /// Uploads still to send after this run, and their bytes.
    pub remaining: u64,
    pub bytes_pending: u64,
    /// Why the run stopped before the end of the queue, if it did (`network_error` when
    /// offline, `max_bytes_reached`, `upload_in_progress`...): the code and the sentence. What
    /// is left waits for the next run.
    pub stopped_code: Option<String>,
    pub stopped_message: Option<String>,
}

/// A site diary day as stored on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiaryView {
    pub diary: Diary,
    /// Signed off and not reopened since: no change but a site manager's reopening is accepted.
    pub locked: bool,
    /// The project's name and the site's name, if the project is on this device.
    pub project_name: Option<String>,
    pub site_name: Option<String>,
    /// Holds edits the server has not accepted yet.
    pub pending: bool,
    pub conflicts: Vec<Conflict>,
    /// The document's heads (change hashes, sorted): two copies with the same heads hold the
    /// same document.
    pub heads: Vec<String>,
}

/// A crew entry to set on a diary day. Staff are named by `user_id` (their entry is keyed by
/// it, so two phones adding the same person make one entry); others (a subcontractor's crew) by
/// `key`, or a new key when both are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrewInput {
    pub user_id: Option<String>,
    pub key: Option<String>,
    pub name: String,
    /// False records that someone who punched in at the site did not in fact work on it.
    pub present: bool,
    pub hours: Option<f64>,
    pub note: String,
}

/// An item of a diary list as it was on the phone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptItem {
    /// `materials`, `equipment`, `delays`, `incidents` or `visitors`.
    pub list: String,
    pub item: DiaryItem,
}

/// What a person wrote in a diary day that the server refused (a change made offline after
/// the day was signed off, say): the refusal returns the phone's diary to the server's
/// version, and this keeps the words so they can be added again after a reopening.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiaryKept {
    /// The paragraphs (lines) of the phone's work text that the server's text lacks.
    pub work: String,
    /// The weather and temperature, if the phone's differed from the server's.
    pub weather: Option<String>,
    pub temperature_c: Option<f64>,
    /// Items the phone had that the server lacks or holds differently.
    pub items: Vec<KeptItem>,
    /// Crew entries the phone had that the server lacks or holds differently.
    pub crew: Vec<CrewEntry>,
}

impl DiaryKept {
    /// Nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.work.is_empty()
            && self.weather.is_none()
            && self.temperature_c.is_none()
            && self.items.is_empty()
            && self.crew.is_empty()
    }
}

/// A refused change of a diary day, with what it would have written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiaryRejection {
    pub diary_id: String,
    pub code: String,
    pub message: String,
    pub at_ms: i64,
    pub kept: DiaryKept,
}

/// One entry of a customer's timeline (see [`crate::FieldsyncClient::customer_timeline`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `visit` (planned or made), `check_in`, `check_out` (the visit report), `review`,
    /// `follow_up` (a next visit due, from a report), `photo`, `note` (the customer's notes),
    /// `project`, `contact`, `owner` (the customer's owner was set).
    pub kind: String,
    /// When (ms since the epoch); for a day-only entry (a planned visit, a follow-up) the day's
    /// start in UTC; `None` when this device cannot tell (a change written without a time).
    pub at_ms: Option<i64>,
    /// `YYYY-MM-DD` for day-only entries.
    pub day: Option<String>,
    pub title: String,
    pub detail: String,
    /// The record the entry is about (a visit, photo, project; the customer for its own
    /// fields), and the contact's id for a contact.
    pub record_id: String,
    pub item_id: Option<String>,
    /// Who: a user id for field events and reviews; for entries read from the customer's
    /// history (owner, notes, contacts) the Automerge actor (the device) that wrote them.
    pub by: Option<String>,
}
