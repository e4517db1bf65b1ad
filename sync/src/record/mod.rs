//! Records and their Automerge layout. One Automerge document holds one record; its root map has
//! `schema` (the layout version), `kind` (`customer`, `project`), `id` (the document id) and the
//! record's fields. Lists whose items two phones may edit at once (contacts, sites, members,
//! milestones) are maps keyed by the item's id, and tags are a map used as a set, so concurrent
//! additions merge instead of fighting over list positions.

use crate::docio::Reader;
use crate::error::Rejection;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use customer::Customer;
pub use diary::Diary;
pub use photo::Photo;
pub use project::Project;
pub use punch::{Makeup, Punch};
pub use visit::Visit;

/// The document layout version this build reads and writes. A document whose `schema` is newer
/// is refused with `unsupported_schema_version` rather than misread.
pub const SCHEMA_VERSION: u64 = 1;

/// The kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Customer,
    Project,
    Visit,
    Punch,
    Makeup,
    Photo,
    Diary,
}

impl RecordKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Customer => "customer",
            RecordKind::Project => "project",
            RecordKind::Visit => "visit",
            RecordKind::Punch => "punch",
            RecordKind::Makeup => "makeup",
            RecordKind::Photo => "photo",
            RecordKind::Diary => "diary",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = Rejection;
    fn from_str(s: &str) -> Result<Self, Rejection> {
        match s {
            "customer" => Ok(RecordKind::Customer),
            "project" => Ok(RecordKind::Project),
            "visit" => Ok(RecordKind::Visit),
            "punch" => Ok(RecordKind::Punch),
            "makeup" => Ok(RecordKind::Makeup),
            "photo" => Ok(RecordKind::Photo),
            "diary" => Ok(RecordKind::Diary),
            other => Err(Rejection::new(
                "unknown_record_kind",
                format!(
                    "'{other}' is not a record kind; this server knows customer, project, visit, punch, makeup, photo and diary."
                ),
            )),
        }
    }
}

/// A point on the earth (WGS84 degrees).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// A field two phones set to different values concurrently. `values` lists every value kept;
/// the record shows the first-listed winner until a person settles it by setting the field again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    pub values: Vec<String>,
}

/// Any record, as read from its document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Customer(Customer),
    Project(Project),
    Visit(Visit),
    Punch(Punch),
    Makeup(Makeup),
    Photo(Photo),
    Diary(Diary),
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Customer(_) => RecordKind::Customer,
            Record::Project(_) => RecordKind::Project,
            Record::Visit(_) => RecordKind::Visit,
            Record::Punch(_) => RecordKind::Punch,
            Record::Makeup(_) => RecordKind::Makeup,
            Record::Photo(_) => RecordKind::Photo,
            Record::Diary(_) => RecordKind::Diary,
        }
    }

    pub fn id(&self) -> DocId {
        match self {
            Record::Customer(c) => c.id,
            Record::Project(p) => p.id,
            Record::Visit(v) => v.id,
            Record::Punch(p) => p.id,
            Record::Makeup(m) => m.id,
            Record::Photo(p) => p.id,
            Record::Diary(d) => d.id,
        }
    }

    /// The users whose access decides who may read this record: a customer's owner; a project's
    /// creator and members; a visit's rep; the worker a punch or make-up request is about.
    /// (Managers read their team's records through [`crate::access::can_read`].)
    pub fn principals(&self) -> Vec<UserId> {
        match self {
            Record::Customer(c) => vec![c.owner],
            Record::Project(p) => {
                let mut v = vec![p.created_by];
                v.extend(p.members.iter().map(|m| m.user));
                v.sort();
                v.dedup();
                v
            }
            Record::Visit(v) => vec![v.rep],
            Record::Punch(p) => vec![p.user],
            Record::Makeup(m) => vec![m.user],
            Record::Photo(p) => vec![p.author],
            // A diary belongs to its project: see `principals_in`.
            Record::Diary(_) => Vec::new(),
        }
    }

    /// [`Record::principals`], plus those only a directory knows: a photo of a project or of a
    /// site diary day, and a site diary, are also read by the project's members.
    pub fn principals_in(&self, dir: &dyn crate::access::Directory) -> Vec<UserId> {
        let mut v = self.principals();
        if let Some(project) = self.project_of() {
            v.extend(dir.project_members(project));
            v.sort();
            v.dedup();
        }
        v
    }

    /// The project whose members read this record too: a photo of a project or of a site
    /// diary day, and a site diary.
    pub fn project_of(&self) -> Option<DocId> {
        match self {
            Record::Photo(p)
                if matches!(
                    p.attached_to.kind,
                    photo::AttachKind::Project | photo::AttachKind::SiteDay
                ) =>
            {
                Some(p.attached_to.id)
            }
            Record::Diary(d) => Some(d.project),
            _ => None,
        }
    }

    /// Reads the record a document holds, with the conflicts found along the way.
    pub fn read(doc: &Automerge) -> Result<(Record, Vec<Conflict>), Rejection> {
        let r = Reader::new(doc);
        let tree = r.hydrate(&ROOT)?;
        let root = r.obj(&ROOT, &tree);
        let schema = r.opt_u64(&root, "schema", "schema")?.ok_or_else(|| {
            Rejection::new(
                "missing_field",
                "The document has no schema version; it is not a fieldsync record.",
            )
        })?;
        if schema > SCHEMA_VERSION {
            return Err(Rejection::new(
                "unsupported_schema_version",
                format!(
                    "The record uses schema version {schema}; this server understands up to {SCHEMA_VERSION}."
                ),
            ));
        }
        let kind: RecordKind = r.req_str(&root, "kind", "kind")?.parse()?;
        let id: DocId = r
            .req_str(&root, "id", "id")?
            .parse()
            .map_err(|_| Rejection::new("invalid_id", "Field 'id' must be a UUID."))?;
        let rec = match kind {
            RecordKind::Customer => Record::Customer(Customer::read_fields(&r, &root, id)?),
            RecordKind::Project => Record::Project(Project::read_fields(&r, &root, id)?),
            RecordKind::Visit => Record::Visit(Visit::read_fields(&r, &root, id)?),
            RecordKind::Punch => Record::Punch(Punch::read_fields(&r, &root, id)?),
            RecordKind::Makeup => Record::Makeup(Makeup::read_fields(&r, &root, id)?),
            RecordKind::Photo => Record::Photo(Photo::read_fields(&r, &root, id)?),
            RecordKind::Diary => Record::Diary(Diary::read_fields(&r, &root, id)?),
        };
        Ok((rec, r.into_conflicts()))
    }

    /// Writes the record into a document transaction, touching only what differs.
    pub fn write<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        crate::docio::put(tx, &ROOT, "schema", SCHEMA_VERSION)?;
        crate::docio::put(tx, &ROOT, "kind", self.kind().as_str())?;
        crate::docio::put(tx, &ROOT, "id", self.id().as_string())?;
        match self {
            Record::Customer(c) => c.write_fields(tx),
            Record::Project(p) => p.write_fields(tx),
            Record::Visit(v) => v.write_fields(tx),
            Record::Punch(p) => p.write_fields(tx),
            Record::Makeup(m) => m.write_fields(tx),
            Record::Photo(p) => p.write_fields(tx),
            Record::Diary(d) => d.write_fields(tx),
        }
    }

    /// A new document holding this record, written by `actor`.
    pub fn to_new_doc(&self, actor: automerge::ActorId) -> Result<Automerge, AutomergeError> {
        let mut doc = Automerge::new().with_actor(actor);
        let mut tx = doc.transaction();
        self.write(&mut tx)?;
        tx.commit();
        Ok(doc)
    }
}

/// The record kind a document claims to be, if it says.
pub fn doc_kind(doc: &Automerge) -> Option<String> {
    match doc.get(ROOT, "kind") {
        Ok(Some((automerge::Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Parses an enum from its snake_case name, or a clear rejection listing the choices.
pub(crate) fn parse_choice<T: Copy>(
    value: &str,
    field: &str,
    choices: &[(&str, T)],
) -> Result<T, Rejection> {
    choices
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            Rejection::new(
                &format!("invalid_{}", field.replace(['.', ' '], "_")),
                format!(
                    "'{value}' is not a valid {field}; use one of: {}.",
                    names.join(", ")
                ),
            )
        })
}

pub(crate) fn parse_user(value: &str, path: &str) -> Result<UserId, Rejection> {
    value.parse().map_err(|_| {
        Rejection::new(
            "invalid_id",
            format!("Field '{path}' must be a user id (UUID)."),
        )
    })
}

/// A closed set of names stored as strings in documents and on the wire.
macro_rules! choice_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const CHOICES: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Rejection;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::record::parse_choice(s, $field, Self::CHOICES)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod customer;
pub mod diary;
pub mod photo;
pub mod project;
pub mod punch;
pub mod visit;
