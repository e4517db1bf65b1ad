//! The site diary: one record per project site per day, written by several people on their
//! phones, offline, at the same time.
//!
//! Two phones that open the same day offline must end up with one document, not two rival ones.
//! So a diary's id is derived from its project, site and day ([`Diary::doc_id_for`]), and every
//! phone starts the document from the same first change ([`Diary::genesis`]): written by an actor
//! derived from the id, at time 0, with every container the diary has (the work text, the crew
//! and the lists of materials, equipment, delays, incidents and visitors, the sign-off log). The
//! change is byte-identical on every phone, so Automerge sees one change, and later edits land in
//! shared containers: the work text merges character by character, list items (keyed by id) are
//! added side by side.
//!
//! A site manager signs the day off; from then on the diary is locked and the server refuses
//! every change but a site manager's reopening. Sign-offs and reopenings are kept in an ordered
//! log (`signoffs`, by `seq`), never edited, so both stay in the record.

use super::parse_user;
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::ids::{DocId, UserId};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

choice_enum!(
    /// A step in a diary's sign-off log.
    DiaryAction, "diary action" { SignOff => "sign_off", Reopen => "reopen" }
);
choice_enum!(
    /// How serious a safety incident was.
    IncidentSeverity, "incident severity" {
        NearMiss => "near_miss", FirstAid => "first_aid", Injury => "injury", Serious => "serious"
    }
);

/// The lists of a diary whose items are added side by side.
pub const DIARY_LISTS: [&str; 5] = ["materials", "equipment", "delays", "incidents", "visitors"];

/// Someone on site that day. Keyed by the user's id for staff, by a made-up key for others
/// (a subcontractor's crew). `present: false` records that a person who punched in at the site
/// did not in fact work on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewEntry {
    pub key: String,
    pub user: Option<UserId>,
    pub name: String,
    pub present: bool,
    pub hours: Option<f64>,
    pub note: String,
    pub by: UserId,
}

/// One item of a diary list: a material delivered or used ("Rebar 12 mm", 2.5, "t"), a piece
/// of equipment ("Crane", 6, "h"), a delay ("Concrete truck 2 h late"), a safety incident (with
/// its severity) or a visitor ("J. Weber, structural engineer").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiaryItem {
    pub id: String,
    pub by: UserId,
    pub at_ms: i64,
    pub text: String,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub note: String,
    /// Incidents only.
    pub severity: Option<IncidentSeverity>,
}

/// A sign-off or a reopening.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignEvent {
    pub id: String,
    /// 1 for the first event, then one more than the last: the log's order, whatever the
    /// phones' clocks say.
    pub seq: u64,
    pub action: DiaryAction,
    pub by: UserId,
    pub at_ms: i64,
    pub note: String,
}

/// A site diary day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diary {
    pub id: DocId,
    pub project: DocId,
    pub site: String,
    /// `YYYY-MM-DD`, in the site's time zone.
    pub day: String,
    /// Entered by hand: "sunny, light wind".
    pub weather: String,
    pub temperature_c: Option<f64>,
    /// Work performed: free text several people write at once.
    pub work: String,
    pub crew: Vec<CrewEntry>,
    pub materials: Vec<DiaryItem>,
    pub equipment: Vec<DiaryItem>,
    pub delays: Vec<DiaryItem>,
    pub incidents: Vec<DiaryItem>,
    pub visitors: Vec<DiaryItem>,
    /// In `seq` order.
    pub signoffs: Vec<SignEvent>,
}

/// A 32-byte digest of the diary's identity, from which its id and genesis actor are drawn.
fn identity_digest(label: &str, project: DocId, site: &str, day: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(project.as_string().as_bytes());
    h.update([0]);
    h.update(site.as_bytes());
    h.update([0]);
    h.update(day.as_bytes());
    h.finalize().into()
}

impl Diary {
    /// The id of the diary of `site` of `project` on `day`: the same on every phone.
    pub fn doc_id_for(project: DocId, site: &str, day: &str) -> DocId {
        let d = identity_digest("fieldsync diary id v1", project, site, day);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        // A version 8 (custom) UUID.
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        DocId(uuid::Uuid::from_bytes(b))
    }

    /// An empty diary of `site` of `project` on `day`.
    pub fn new(project: DocId, site: impl Into<String>, day: impl Into<String>) -> Self {
        let (site, day) = (site.into(), day.into());
        Diary {
            id: Self::doc_id_for(project, &site, &day),
            project,
            site,
            day,
            weather: String::new(),
            temperature_c: None,
            work: String::new(),
            crew: Vec::new(),
            materials: Vec::new(),
            equipment: Vec::new(),
            delays: Vec::new(),
            incidents: Vec::new(),
            visitors: Vec::new(),
            signoffs: Vec::new(),
        }
    }

    /// The diary's first document: byte-identical wherever it is made (see the module docs).
    /// Edits go on top with the phone's own actor.
    pub fn genesis(project: DocId, site: &str, day: &str) -> Result<Automerge, AutomergeError> {
        let d = identity_digest("fieldsync diary genesis v1", project, site, day);
        let mut doc = Automerge::new().with_actor(ActorId::from(&d[..16]));
        let id = Self::doc_id_for(project, site, day);
        let mut tx = doc.transaction();
        tx.put(ROOT, "schema", super::SCHEMA_VERSION)?;
        tx.put(ROOT, "kind", "diary")?;
        tx.put(ROOT, "id", id.as_string())?;
        tx.put(ROOT, "project", project.as_string())?;
        tx.put(ROOT, "site", site)?;
        tx.put(ROOT, "day", day)?;
        tx.put_object(ROOT, "work", ObjType::Text)?;
        tx.put_object(ROOT, "crew", ObjType::Map)?;
        for list in DIARY_LISTS {
            tx.put_object(ROOT, list, ObjType::Map)?;
        }
        tx.put_object(ROOT, "signoffs", ObjType::Map)?;
        tx.commit_with(CommitOptions::default().with_time(0));
        Ok(doc)
    }

    /// The genesis change's hash: a diary document must contain it.
    pub fn genesis_hash(
        project: DocId,
        site: &str,
        day: &str,
    ) -> Result<automerge::ChangeHash, AutomergeError> {
        let doc = Self::genesis(project, site, day)?;
        doc.get_heads()
            .first()
            .copied()
            .ok_or(AutomergeError::InvalidOp(ObjType::Map))
    }

    /// The latest sign-off or reopening.
    pub fn last_event(&self) -> Option<&SignEvent> {
        self.signoffs.last()
    }

    /// Whether the day is signed off (and not reopened since).
    pub fn is_locked(&self) -> bool {
        self.last_event()
            .is_some_and(|e| e.action == DiaryAction::SignOff)
    }

    /// The `seq` the next sign-off or reopening takes.
    pub fn next_seq(&self) -> u64 {
        self.last_event().map_or(1, |e| e.seq + 1)
    }

    /// The list named `name` (one of [`DIARY_LISTS`]).
    pub fn list(&self, name: &str) -> Option<&Vec<DiaryItem>> {
        match name {
            "materials" => Some(&self.materials),
            "equipment" => Some(&self.equipment),
            "delays" => Some(&self.delays),
            "incidents" => Some(&self.incidents),
            "visitors" => Some(&self.visitors),
            _ => None,
        }
    }

    /// The list named `name`, to change.
    pub fn list_mut(&mut self, name: &str) -> Option<&mut Vec<DiaryItem>> {
        match name {
            "materials" => Some(&mut self.materials),
            "equipment" => Some(&mut self.equipment),
            "delays" => Some(&mut self.delays),
            "incidents" => Some(&mut self.incidents),
            "visitors" => Some(&mut self.visitors),
            _ => None,
        }
    }

    /// Everything but the sign-off log: what a locked diary keeps as it is.
    pub fn content_eq(&self, other: &Diary) -> bool {
        let strip = |d: &Diary| Diary {
            signoffs: Vec::new(),
            ..d.clone()
        };
        strip(self) == strip(other)
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let project: DocId = r
            .req_str(root, "project", "project")?
            .parse()
            .map_err(|_| {
                Rejection::new("invalid_id", "Field 'project' must be a project id (UUID).")
            })?;
        let mut crew = Vec::new();
        for (key, path, o) in r.items(root, "crew", "crew")? {
            let user = r
                .opt_str(&o, "user", &format!("{path}.user"))?
                .map(|u| parse_user(&u, &format!("{path}.user")))
                .transpose()?;
            crew.push(CrewEntry {
                user,
                name: r
                    .opt_str(&o, "name", &format!("{path}.name"))?
                    .unwrap_or_default(),
                present: r
                    .opt_bool(&o, "present", &format!("{path}.present"))?
                    .unwrap_or(true),
                hours: r.opt_f64(&o, "hours", &format!("{path}.hours"))?,
                note: r
                    .opt_str(&o, "note", &format!("{path}.note"))?
                    .unwrap_or_default(),
                by: r.req_user(&o, "by", &format!("{path}.by"))?,
                key,
            });
        }
        let mut lists: Vec<Vec<DiaryItem>> = Vec::with_capacity(DIARY_LISTS.len());
        for name in DIARY_LISTS {
            let mut items = Vec::new();
            for (id, path, o) in r.items(root, name, name)? {
                items.push(DiaryItem {
                    by: r.req_user(&o, "by", &format!("{path}.by"))?,
                    at_ms: r.req_i64(&o, "at_ms", &format!("{path}.at_ms"))?,
                    text: r
                        .opt_str(&o, "text", &format!("{path}.text"))?
                        .unwrap_or_default(),
                    quantity: r.opt_f64(&o, "quantity", &format!("{path}.quantity"))?,
                    unit: r.opt_str(&o, "unit", &format!("{path}.unit"))?,
                    note: r
                        .opt_str(&o, "note", &format!("{path}.note"))?
                        .unwrap_or_default(),
                    severity: r
                        .opt_str(&o, "severity", &format!("{path}.severity"))?
                        .map(|s| s.parse())
                        .transpose()?,
                    id,
                });
            }
            items.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
            lists.push(items);
        }
        let mut signoffs = Vec::new();
        for (id, path, o) in r.items(root, "signoffs", "signoffs")? {
            signoffs.push(SignEvent {
                seq: r
                    .opt_u64(&o, "seq", &format!("{path}.seq"))?
                    .ok_or_else(|| {
                        Rejection::new("missing_field", format!("Field '{path}.seq' is required."))
                    })?,
                action: r
                    .req_str(&o, "action", &format!("{path}.action"))?
                    .parse()?,
                by: r.req_user(&o, "by", &format!("{path}.by"))?,
                at_ms: r.req_i64(&o, "at_ms", &format!("{path}.at_ms"))?,
                note: r
                    .opt_str(&o, "note", &format!("{path}.note"))?
                    .unwrap_or_default(),
                id,
            });
        }
        // Concurrent events with one seq are ordered by id, the same way everywhere.
        signoffs.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        let mut lists = lists.into_iter();
        let mut next = || lists.next().unwrap_or_default();
        Ok(Diary {
            id,
            project,
            site: r.req_str(root, "site", "site")?,
            day: r.req_str(root, "day", "day")?,
            weather: r.opt_str(root, "weather", "weather")?.unwrap_or_default(),
            temperature_c: r.opt_f64(root, "temperature_c", "temperature_c")?,
            work: r.opt_str(root, "work", "work")?.unwrap_or_default(),
            crew,
            materials: next(),
            equipment: next(),
            delays: next(),
            incidents: next(),
            visitors: next(),
            signoffs,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "project", self.project.as_string())?;
        docio::put(tx, &ROOT, "site", self.site.as_str())?;
        docio::put(tx, &ROOT, "day", self.day.as_str())?;
        docio::put(tx, &ROOT, "weather", self.weather.as_str())?;
        docio::put_opt(tx, &ROOT, "temperature_c", self.temperature_c)?;
        docio::put_text(tx, &ROOT, "work", &self.work)?;
        let crew = docio::ensure_map(tx, &ROOT, "crew")?;
        let keys: Vec<String> = self.crew.iter().map(|c| c.key.clone()).collect();
        docio::retain_keys(tx, &crew, &keys)?;
        for c in &self.crew {
            let o = docio::ensure_map(tx, &crew, &c.key)?;
            docio::put_opt(tx, &o, "user", c.user.map(|u| u.as_string()))?;
            docio::put(tx, &o, "name", c.name.as_str())?;
            docio::put(tx, &o, "present", c.present)?;
            docio::put_opt(tx, &o, "hours", c.hours)?;
            docio::put(tx, &o, "note", c.note.as_str())?;
            docio::put(tx, &o, "by", c.by.as_string())?;
        }
        for name in DIARY_LISTS {
            let items = self.list(name).map(Vec::as_slice).unwrap_or_default();
            let map = docio::ensure_map(tx, &ROOT, name)?;
            let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
            docio::retain_keys(tx, &map, &ids)?;
            for i in items {
                let o = docio::ensure_map(tx, &map, &i.id)?;
                docio::put(tx, &o, "by", i.by.as_string())?;
                docio::put(tx, &o, "at_ms", i.at_ms)?;
                docio::put(tx, &o, "text", i.text.as_str())?;
                docio::put_opt(tx, &o, "quantity", i.quantity)?;
                docio::put_opt(tx, &o, "unit", i.unit.as_deref())?;
                docio::put(tx, &o, "note", i.note.as_str())?;
                docio::put_opt(tx, &o, "severity", i.severity.map(|s| s.as_str()))?;
            }
        }
        let log = docio::ensure_map(tx, &ROOT, "signoffs")?;
        for e in &self.signoffs {
            let o = docio::ensure_map(tx, &log, &e.id)?;
            docio::put(tx, &o, "seq", e.seq)?;
            docio::put(tx, &o, "action", e.action.as_str())?;
            docio::put(tx, &o, "by", e.by.as_string())?;
            docio::put(tx, &o, "at_ms", e.at_ms)?;
            docio::put(tx, &o, "note", e.note.as_str())?;
        }
        Ok(())
    }
}
