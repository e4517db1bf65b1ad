//! The plain data types of the public API: what callers pass in to create and edit records
//! and what they get back (records with their conflicts, sync reports, status). Records
//! themselves are the shared [`fieldsync_sync`] types, so the phone and the server agree on
//! every field.

use fieldsync_sync::{Conflict, Customer, GeoPoint, Geofence, Project};
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
