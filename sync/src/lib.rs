//! fieldsync's shared core: the record model, the wire protocol and the rules that decide
//! whether a change is acceptable.
//!
//! Both the server and the phone library depend on this crate, and nothing else: it is the one
//! place the two sides agree on. It does no I/O — bytes and typed values in, bytes and typed
//! values out — so the same validation runs on the phone (before a person presses a button)
//! and on the server (before a change is stored).
//!
//! * [`ids`] — UUID newtypes for every kind of id.
//! * [`record`] — the typed records ([`Customer`], [`Project`]) and how they live inside an
//!   Automerge document, one document per record.
//! * [`rules`] — validation and permission rules for a change.
//! * [`evidence`] and [`trust`] — the location evidence of field events (visit check-in and
//!   check-out, attendance punches) and its grading, with reasons.
//! * [`attendance`] — a worker's day (normal, late, absent, …) from shifts, calendars and punches.
//! * [`merge`] — applying a batch of incoming changes to a stored document: the pure core of a push.
//! * [`protocol`] — the wire messages, versioned (see `PROTOCOL.md`).

#[macro_use]
pub mod record;
pub mod access;
pub mod attendance;
pub mod docio;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod merge;
pub mod protocol;
pub mod rules;
pub mod trust;

pub use access::{Caller, Role};
pub use error::Rejection;
pub use evidence::{Evidence, Provider};
pub use ids::{DeviceId, DocId, TenantId, UserId};
pub use record::customer::{Contact, Customer, CustomerKind, Lifecycle, Tier};
pub use record::diary::{CrewEntry, DiaryAction, DiaryItem, IncidentSeverity, SignEvent};
pub use record::project::{
    Geofence, Member, Milestone, MilestoneStatus, Project, ProjectRole, ProjectStatus, Site,
};
pub use record::punch::{Direction, MakeupDecision, MakeupStatus};
pub use record::visit::{CheckOut, Review, ReviewDecision, VisitOutcome};
pub use record::{
    Conflict, Diary, GeoPoint, Makeup, Photo, Punch, Record, RecordKind, SCHEMA_VERSION, Visit,
};
pub use trust::{Policy, TrustLevel, Verdict};
