//! The audit: who changed what and when, and who looked at whose location or attendance data.
//!
//! **Changes.** Every record is an Automerge document, and every change in it came to the
//! server in one `changes` entry of the change log, which names the device that pushed it and
//! (since migration 0006) the user who did. A record's history is its document's changes in
//! causal order, each attributed through its entry: a phone's device (and the device's name),
//! or, for an edit the server made on someone's behalf (a review, a make-up decision, pushed
//! under a fresh device id that is no phone's), "server on behalf of" that user. What a change
//! did is the Automerge diff between its dependencies and itself: the fields it set (old → new
//! for plain values), removed, or, for text, how many characters it inserted and deleted with
//! an excerpt. Two changes are concurrent when neither was made knowing the other (neither is
//! an ancestor of the other); each change lists the changes it was concurrent with.
//!
//! **Access.** Reads of other people's location or attendance data (attendance reports, field
//! events, visit lists, photos and their map, a customer's timeline, make-up requests) write
//! access-log rows before the answer leaves: one per person read about, or, past
//! [`MANY_SUBJECTS`] people, one naming the set (`tenant`, `team:<manager>`). Reading one's own
//! data writes nothing. A failure to write is logged as an error and does not fail the read.

use crate::app::AppState;
use crate::http::attendance::ReportQuery;
use crate::store::audit::{AccessEntry, DocHistory, LogRow};
use crate::store::{
    EventFilter, FieldEventRow, MakeupRow, Person, PhotoFilter, PhotoRow, VisitFilter, VisitRow,
};
use crate::store::{Store, StoreError, unframe_changes};
use automerge::{Automerge, Change, ChangeHash, ObjType, Prop, ReadDoc, Value};
use fieldsync_sync::record::Photo;
use fieldsync_sync::{Caller, DocId, Role};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Past this many people read about in one request, the access log keeps one row naming the
/// set instead of one row per person.
pub const MANY_SUBJECTS: usize = 100;

/// At most this many changes of one record are described per page.
pub const MAX_PAGE: usize = 500;

/// Longest excerpt of inserted text shown, in characters.
const EXCERPT_CHARS: usize = 60;

/// At most this many concurrent changes are named per change (all are counted).
const MAX_CONCURRENT_NAMED: usize = 20;

// ---- Access log ----

/// The set a read over everyone the viewer may see covers: the whole tenant for admins and HR,
/// a manager's team, or just what the viewer may read.
pub fn wide_scope(viewer: &Caller) -> String {
    match viewer.role {
        Role::Admin | Role::Hr => "tenant".into(),
        Role::Manager => format!("team:{}", viewer.user),
        _ => "readable".into(),
    }
}

/// The access-log rows for one read: one per other person in `subjects`, or a single row for
/// the set when there are more than [`MANY_SUBJECTS`]. Empty when the viewer read only their
/// own data.
pub fn access_entries<'a>(
    viewer: &Caller,
    what: &str,
    scope: &str,
    subjects: impl IntoIterator<Item = &'a str>,
    detail: serde_json::Value,
    now: i64,
) -> Vec<AccessEntry> {
    let me = viewer.user.as_string();
    let others: BTreeSet<&str> = subjects
        .into_iter()
        .filter(|s| !s.is_empty() && *s != me)
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    let entry = |subject: Option<&str>, scope: String, detail: serde_json::Value| AccessEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: now,
        viewer: me.clone(),
        subject: subject.map(str::to_owned),
        scope,
        what: what.to_owned(),
        detail,
    };
    if others.len() > MANY_SUBJECTS {
        // A set too large to list: named, so that anyone in it finds the read.
        let set = if scope == "tenant" || scope.starts_with("team:") {
            scope.to_owned()
        } else {
            wide_scope(viewer)
        };
        let mut detail = detail;
        detail["subjects"] = others.len().into();
        return vec![entry(None, set, detail)];
    }
    others
        .into_iter()
        .map(|s| entry(Some(s), scope.to_owned(), detail.clone()))
        .collect()
}

/// Writes the access-log rows of one read (see [`access_entries`]) before the answer goes out.
/// A failure is logged, never returned: the read itself must not fail because its log did.
pub async fn log_access<'a>(
    state: &AppState,
    viewer: &Caller,
    what: &str,
    scope: &str,
    subjects: impl IntoIterator<Item = &'a str>,
    detail: serde_json::Value,
) {
    let entries = access_entries(
        viewer,
        what,
        scope,
        subjects,
        detail,
        crate::store::now_ms(),
    );
    if entries.is_empty() {
        return;
    }
    if let Err(e) = state.store.record_access(viewer.tenant, &entries).await {
        tracing::error!(error = %e, what, rows = entries.len(), "access log write failed");
    }
}

/// The scope of a read narrowed by the request: by one user (`user`), else the viewer's wide
/// scope.
pub fn user_or_wide(viewer: &Caller, user: Option<&str>) -> String {
    match user {
        Some(u) if !u.is_empty() => "user".into(),
        _ => wide_scope(viewer),
    }
}

/// The scope of an attendance report: the set its filters chose (`team:<id>`, `site:<p>:<s>`,
/// `users`), else everyone the viewer may report on.
pub fn report_scope(
    viewer: &Caller,
    team: Option<&str>,
    site: Option<&str>,
    users: Option<&str>,
) -> String {
    match (team, site, users) {
        (_, _, Some(_)) => "users".into(),
        (_, Some(s), None) => format!("site:{s}"),
        (Some(t), None, None) => format!("team:{t}"),
        (None, None, None) => wide_scope(viewer),
    }
}

/// The detail of an access-log row: the request's filters and how many rows it showed.
pub fn detail(filters: serde_json::Value, rows: usize) -> serde_json::Value {
    let mut d = filters;
    d["rows"] = rows.into();
    d
}

// What each read route logs: called by its handler once it has the rows, before it answers.

/// `GET /v1/visits`: the reps of the visits shown (check-in times and location verdicts).
pub async fn viewed_visits(state: &AppState, viewer: &Caller, f: &VisitFilter, rows: &[VisitRow]) {
    let filters =
        serde_json::json!({ "rep": f.rep, "customer": f.customer, "from": f.from, "to": f.to });
    let scope = user_or_wide(viewer, f.rep.as_deref());
    let subjects = rows.iter().map(|v| v.rep_id.as_str());
    log_access(
        state,
        viewer,
        "visits",
        &scope,
        subjects,
        detail(filters, rows.len()),
    )
    .await;
}

/// `GET /v1/customers/{id}/timeline`: the reps of the customer's visits.
pub async fn viewed_timeline(
    state: &AppState,
    viewer: &Caller,
    customer: DocId,
    rows: &[VisitRow],
) {
    let filters = serde_json::json!({ "customer": customer });
    let subjects = rows.iter().map(|v| v.rep_id.as_str());
    let scope = format!("record:{customer}");
    log_access(
        state,
        viewer,
        "customer_timeline",
        &scope,
        subjects,
        detail(filters, rows.len()),
    )
    .await;
}

/// `GET /v1/field-events`: the people whose events (positions and grades) were shown.
pub async fn viewed_events(
    state: &AppState,
    viewer: &Caller,
    f: &EventFilter,
    rows: &[FieldEventRow],
) {
    let filters = serde_json::json!({ "user": f.user, "event": f.event, "trust": f.trust, "from": f.from, "to": f.to });
    let scope = user_or_wide(viewer, f.user.as_deref());
    let subjects = rows.iter().map(|e| e.user_id.as_str());
    log_access(
        state,
        viewer,
        "field_events",
        &scope,
        subjects,
        detail(filters, rows.len()),
    )
    .await;
}

/// `GET /v1/makeups`: the workers whose make-up punches were shown.
pub async fn viewed_makeups(
    state: &AppState,
    viewer: &Caller,
    status: Option<&str>,
    rows: &[MakeupRow],
) {
    let filters = serde_json::json!({ "status": status });
    let subjects = rows.iter().map(|m| m.user_id.as_str());
    log_access(
        state,
        viewer,
        "makeups",
        &wide_scope(viewer),
        subjects,
        detail(filters, rows.len()),
    )
    .await;
}

/// `GET /v1/reports/attendance`: everyone the report covers.
pub async fn viewed_report(state: &AppState, viewer: &Caller, q: &ReportQuery, people: &[Person]) {
    let filters = serde_json::json!({ "from": q.from, "to": q.to, "format": q.format, "team": q.team, "site": q.site, "users": q.users });
    let scope = report_scope(
        viewer,
        q.team.as_deref(),
        q.site.as_deref(),
        q.users.as_deref(),
    );
    let subjects = people.iter().map(|p| p.id.as_str());
    log_access(
        state,
        viewer,
        "attendance_report",
        &scope,
        subjects,
        detail(filters, people.len()),
    )
    .await;
}

/// `GET /v1/photos`: the authors of the photos shown (with their positions).
pub async fn viewed_photos(state: &AppState, viewer: &Caller, f: &PhotoFilter, rows: &[PhotoRow]) {
    let filters = serde_json::json!({ "project": f.project, "site": f.site, "day": f.day, "author": f.author, "from": f.from, "to": f.to });
    let scope = user_or_wide(viewer, f.author.as_deref());
    let subjects = rows.iter().map(|p| p.author_id.as_str());
    log_access(
        state,
        viewer,
        "photos",
        &scope,
        subjects,
        detail(filters, rows.len()),
    )
    .await;
}

/// `GET /v1/geojson`: the authors and reps of the points exported (GeoJSON features).
pub async fn viewed_map(
    state: &AppState,
    viewer: &Caller,
    project: Option<&str>,
    features: &[serde_json::Value],
) {
    let filters = serde_json::json!({ "project": project });
    let scope = project.map_or_else(|| wide_scope(viewer), |p| format!("project:{p}"));
    let subjects = features.iter().filter_map(|f| {
        let p = &f["properties"];
        p["author"].as_str().or(p["rep"].as_str())
    });
    log_access(
        state,
        viewer,
        "geojson",
        &scope,
        subjects,
        detail(filters, features.len()),
    )
    .await;
}

/// `GET /v1/photos/{id}/file/{variant}`: the original (its EXIF may hold the camera's
/// position) or the stamped copy (printed with the phone's position) of someone's photo.
/// Thumbnails carry no position and are not logged.
pub async fn viewed_photo_file(state: &AppState, viewer: &Caller, photo: &Photo, variant: &str) {
    if !matches!(variant, "original" | "stamped") {
        return;
    }
    let filters = serde_json::json!({ "photo": photo.id, "variant": variant });
    let scope = format!("record:{}", photo.id);
    let author = photo.author.as_string();
    log_access(
        state,
        viewer,
        "photo_file",
        &scope,
        [author.as_str()],
        detail(filters, 1),
    )
    .await;
}

// ---- Record history ----

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Author {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub device_id: Option<String>,
    /// The phone's name; `None` for the server's own edits.
    pub device_name: Option<String>,
    /// The server made the change on `user_id`'s behalf (a review, a decision over HTTP).
    pub by_server: bool,
    /// For people: "Anna (anna@acme.test) on Pixel 8", "server on behalf of boss@acme.test".
    pub label: String,
}

/// What a change did to one field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Dotted path: `phone`, `contacts.<id>.phone`, `tags.<tag>`, `reviews.0.comment`.
    pub field: String,
    /// `set`, `removed`, `text`, `inserted` (list items), `incremented`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    /// Text: characters inserted and deleted; lists: items inserted and removed.
    #[serde(skip_serializing_if = "is_zero")]
    pub inserted: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One change of a record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangeEntry {
    pub hash: String,
    /// The Automerge actor (a phone's is its device id's bytes, in hex).
    pub actor: String,
    /// The change's own timestamp (ms), if its author set one; advisory.
    pub time_ms: Option<i64>,
    /// When the server received it (ms), from its log entry.
    pub received_at: Option<i64>,
    /// Its log entry's sequence number.
    pub log_seq: Option<i64>,
    pub message: Option<String>,
    pub deps: Vec<String>,
    pub by: Author,
    pub fields: Vec<FieldChange>,
    /// Made without knowing of some other change of the record (and that one without it).
    pub concurrent: bool,
    /// Those changes (at most 20 named).
    pub concurrent_with: Vec<String>,
}

/// A page of a record's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordHistory {
    pub doc_id: String,
    pub kind: String,
    /// Changes in the document.
    pub total: usize,
    /// Oldest first, causes before effects.
    pub changes: Vec<ChangeEntry>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// The log entry each change of a document came in.
pub struct Attribution<'a> {
    by_hash: HashMap<ChangeHash, &'a LogRow>,
}

impl<'a> Attribution<'a> {
    /// Maps every change of `doc` to the entry that brought it: entries with data hold their
    /// changes; the entry that created the document (no data) brought whatever no other holds.
    pub fn new(doc: &Automerge, rows: &'a [LogRow]) -> Result<Self, StoreError> {
        let mut by_hash = HashMap::new();
        for row in rows {
            if let Some(data) = &row.data {
                for bytes in unframe_changes(data)? {
                    let change = Change::from_bytes(bytes)
                        .map_err(|e| StoreError::Corrupt(format!("logged change: {e}")))?;
                    by_hash.entry(change.hash()).or_insert(row);
                }
            }
        }
        if let Some(created) = rows.iter().find(|r| r.data.is_none()) {
            for c in doc.get_changes(&[]) {
                by_hash.entry(c.hash()).or_insert(created);
            }
        }
        Ok(Attribution { by_hash })
    }

    pub fn row(&self, hash: &ChangeHash) -> Option<&'a LogRow> {
        self.by_hash.get(hash).copied()
    }
}

/// Names the people and devices of a set of log entries.
pub struct Names {
    emails: HashMap<String, String>,
    devices: HashMap<String, (String, String)>,
}

impl Names {
    /// Loads the tenant's users and the devices `rows` name.
    pub async fn load(
        store: &dyn Store,
        tenant: fieldsync_sync::TenantId,
        rows: &[&LogRow],
    ) -> Result<Self, StoreError> {
        let emails = store
            .list_users(tenant)
            .await?
            .into_iter()
            .map(|u| (u.id.as_string(), u.email))
            .collect();
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.device_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let devices = store
            .device_names(tenant, &ids)
            .await?
            .into_iter()
            .map(|d| (d.id, (d.user_id, d.name)))
            .collect();
        Ok(Names { emails, devices })
    }

    /// Who made the changes of `row` (`None`: a change no entry holds).
    pub fn author(&self, row: Option<&LogRow>) -> Author {
        let Some(row) = row else {
            return Author {
                user_id: None,
                email: None,
                device_id: None,
                device_name: None,
                by_server: false,
                label: "unknown".into(),
            };
        };
        let device = row.device_id.as_ref().and_then(|d| self.devices.get(d));
        // The entry names its pusher; entries from before the audit fall back on the device.
        let user_id = row
            .user_id
            .clone()
            .or_else(|| device.map(|(u, _)| u.clone()));
        let email = user_id.as_ref().and_then(|u| self.emails.get(u)).cloned();
        let who = email
            .clone()
            .or_else(|| user_id.clone())
            .unwrap_or_else(|| "an unknown user".into());
        let (label, by_server) = match device {
            Some((_, name)) => (format!("{who} on {name}"), false),
            None => (format!("server on behalf of {who}"), true),
        };
        Author {
            user_id,
            email,
            device_id: row.device_id.clone(),
            device_name: device.map(|(_, n)| n.clone()),
            by_server,
            label,
        }
    }
}

fn scalar_json(v: &Value<'_>) -> Option<serde_json::Value> {
    use automerge::ScalarValue as S;
    match v {
        Value::Object(_) => None,
        Value::Scalar(s) => Some(match s.as_ref() {
            S::Str(t) => serde_json::Value::String(t.to_string()),
            S::Int(i) => (*i).into(),
            S::Uint(u) => (*u).into(),
            S::F64(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            S::Boolean(b) => (*b).into(),
            S::Timestamp(t) => (*t).into(),
            S::Null => serde_json::Value::Null,
            other => serde_json::Value::String(other.to_string()),
        }),
    }
}

fn prop_text(p: &Prop) -> String {
    match p {
        Prop::Map(k) => k.clone(),
        Prop::Seq(i) => i.to_string(),
    }
}

/// What `change` did: the diff from its dependencies to itself, one entry per field.
pub fn describe(doc: &Automerge, change: &Change) -> Vec<FieldChange> {
    use automerge::PatchAction as A;
    let before = change.deps().to_vec();
    let after = [change.hash()];
    let mut out: Vec<FieldChange> = Vec::new();
    for patch in doc.diff(&before, &after) {
        let base: Vec<String> = patch.path.iter().map(|(_, p)| prop_text(p)).collect();
        let at = |key: &str| {
            let mut p = base.clone();
            p.push(key.to_owned());
            p.join(".")
        };
        let obj_type = doc.object_type(&patch.obj).ok();
        let old_of = |key: &str| {
            doc.get_at(&patch.obj, key, &before)
                .ok()
                .flatten()
                .and_then(|(v, _)| scalar_json(&v))
        };
        match patch.action {
            A::PutMap { key, value, .. } => {
                if let Some(new) = scalar_json(&value.0) {
                    out.push(field(at(&key), "set", old_of(&key), Some(new)));
                }
            }
            A::PutSeq { index, value, .. } => {
                if let Some(new) = scalar_json(&value.0) {
                    let old = doc
                        .get_at(&patch.obj, index, &before)
                        .ok()
                        .flatten()
                        .and_then(|(v, _)| scalar_json(&v));
                    out.push(field(at(&index.to_string()), "set", old, Some(new)));
                }
            }
            A::DeleteMap { key } => {
                out.push(field(at(&key), "removed", old_of(&key), None));
            }
            A::SpliceText { value, .. } => {
                let text = value.make_string();
                let f = text_field(&mut out, base.join("."));
                f.inserted += text.chars().count();
                let have = f.excerpt.get_or_insert_with(String::new);
                let room = EXCERPT_CHARS.saturating_sub(have.chars().count());
                if room > 0 {
                    if !have.is_empty() {
                        have.push('…');
                    }
                    have.extend(text.chars().take(room));
                }
            }
            A::DeleteSeq { length, .. } if obj_type == Some(ObjType::Text) => {
                text_field(&mut out, base.join(".")).deleted += length;
            }
            A::DeleteSeq { length, .. } => {
                let mut f = field(base.join("."), "removed", None, None);
                f.deleted = length;
                out.push(f);
            }
            A::Insert { values, .. } => {
                let mut f = field(base.join("."), "inserted", None, None);
                f.inserted = values.len();
                out.push(f);
            }
            A::Increment { prop, value } => {
                out.push(field(
                    at(&prop_text(&prop)),
                    "incremented",
                    None,
                    Some(value.into()),
                ));
            }
            A::Conflict { .. } | A::Mark { .. } => {}
        }
    }
    out
}

fn field(
    path: String,
    op: &'static str,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) -> FieldChange {
    FieldChange {
        field: path,
        op,
        old,
        new,
        inserted: 0,
        deleted: 0,
        excerpt: None,
    }
}

fn text_field(out: &mut Vec<FieldChange>, path: String) -> &mut FieldChange {
    let i = match out.iter().position(|f| f.op == "text" && f.field == path) {
        Some(i) => i,
        None => {
            out.push(field(path, "text", None, None));
            out.len() - 1
        }
    };
    &mut out[i]
}

/// For each change (by index in `changes`, which is in causal order): the indices of the
/// changes that are neither its ancestors nor its descendants.
pub fn concurrent_with(changes: &[Change], wanted: &[usize]) -> HashMap<usize, Vec<usize>> {
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    let parents: Vec<Vec<usize>> = changes
        .iter()
        .map(|c| {
            c.deps()
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, ps) in parents.iter().enumerate() {
        for p in ps {
            children[*p].push(i);
        }
    }
    let reach = |start: usize, edges: &[Vec<usize>], seen: &mut Vec<bool>| {
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in &edges[n] {
                if !seen[m] {
                    seen[m] = true;
                    stack.push(m);
                }
            }
        }
    };
    wanted
        .iter()
        .map(|&i| {
            let mut related = vec![false; changes.len()];
            related[i] = true;
            reach(i, &parents, &mut related);
            reach(i, &children, &mut related);
            let others = related
                .iter()
                .enumerate()
                .filter(|(_, r)| !**r)
                .map(|(j, _)| j)
                .collect();
            (i, others)
        })
        .collect()
}

/// A change as the audit shows it (without concurrency, which needs the whole history).
pub fn entry(doc: &Automerge, change: &Change, row: Option<&LogRow>, names: &Names) -> ChangeEntry {
    ChangeEntry {
        hash: change.hash().to_string(),
        actor: change.actor_id().to_hex_string(),
        time_ms: Some(change.timestamp()).filter(|t| *t != 0),
        received_at: row.map(|r| r.created_at),
        log_seq: row.map(|r| r.seq),
        message: change.message().map(str::to_owned),
        deps: change.deps().iter().map(|d| d.to_string()).collect(),
        by: names.author(row),
        fields: describe(doc, change),
        concurrent: false,
        concurrent_with: Vec::new(),
    }
}

/// One page of a record's history: `offset` changes in, at most `limit`. CPU work: call it off
/// the async runtime.
pub fn record_history(
    doc_id: &str,
    history: &DocHistory,
    names: &Names,
    offset: usize,
    limit: usize,
) -> Result<RecordHistory, StoreError> {
    let doc = Automerge::load(&history.snapshot)
        .map_err(|e| StoreError::Corrupt(format!("stored document {doc_id}: {e}")))?;
    let attribution = Attribution::new(&doc, &history.rows)?;
    let changes = doc.get_changes(&[]);
    let page: Vec<usize> = (offset..changes.len()).take(limit).collect();
    let concurrent = concurrent_with(&changes, &page);
    let mut out = Vec::with_capacity(page.len());
    for &i in &page {
        let c = &changes[i];
        let mut e = entry(&doc, c, attribution.row(&c.hash()), names);
        let others = concurrent.get(&i).map(Vec::as_slice).unwrap_or_default();
        e.concurrent = !others.is_empty();
        e.concurrent_with = others
            .iter()
            .take(MAX_CONCURRENT_NAMED)
            .map(|j| changes[*j].hash().to_string())
            .collect();
        out.push(e);
    }
    let end = offset + out.len();
    Ok(RecordHistory {
        doc_id: doc_id.to_owned(),
        kind: history.kind.clone(),
        total: changes.len(),
        changes: out,
        next_cursor: (end < changes.len()).then(|| end.to_string()),
    })
}

/// One entry of the change search: what one push did to one record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedChange {
    pub seq: i64,
    pub doc_id: String,
    pub kind: String,
    pub received_at: i64,
    pub by: Author,
    pub changes: Vec<ChangeEntry>,
}

/// Describes the changes of `rows` (all entries of one document), given that document's
/// history. CPU work: call it off the async runtime.
pub fn describe_rows(
    history: &DocHistory,
    rows: &[LogRow],
    names: &Names,
) -> Result<Vec<LoggedChange>, StoreError> {
    let doc = Automerge::load(&history.snapshot)
        .map_err(|e| StoreError::Corrupt(format!("stored document: {e}")))?;
    let attribution = Attribution::new(&doc, &history.rows)?;
    let wanted: HashSet<i64> = rows.iter().map(|r| r.seq).collect();
    let mut by_seq: HashMap<i64, Vec<ChangeEntry>> = HashMap::new();
    for c in doc.get_changes(&[]) {
        if let Some(row) = attribution.row(&c.hash())
            && wanted.contains(&row.seq)
        {
            by_seq
                .entry(row.seq)
                .or_default()
                .push(entry(&doc, &c, Some(row), names));
        }
    }
    Ok(rows
        .iter()
        .map(|r| LoggedChange {
            seq: r.seq,
            doc_id: r.doc_id.clone(),
            kind: r.kind.clone(),
            received_at: r.created_at,
            by: names.author(Some(r)),
            changes: by_seq.remove(&r.seq).unwrap_or_default(),
        })
        .collect())
}

/// Whether `caller` may read a record's history: admins, and managers of someone the record
/// belongs to (or of their own records). Reps, site managers and HR may not.
pub fn may_audit_record(
    caller: &Caller,
    principals: &[String],
    manager_of: &HashMap<String, Option<String>>,
) -> bool {
    let me = caller.user.as_string();
    match caller.role {
        Role::Admin => true,
        Role::Manager => principals
            .iter()
            .any(|p| *p == me || manager_of.get(p).and_then(|m| m.as_deref()) == Some(&me)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT};
    use fieldsync_sync::{TenantId, UserId};

    fn caller(role: Role) -> Caller {
        Caller {
            tenant: TenantId::new(),
            user: UserId::new(),
            role,
        }
    }

    #[test]
    fn own_data_is_not_logged_and_many_people_are_one_row() {
        let c = caller(Role::Hr);
        let me = c.user.as_string();
        assert!(
            access_entries(&c, "x", "user", [me.as_str()], serde_json::json!({}), 1).is_empty()
        );
        let few = access_entries(
            &c,
            "x",
            "users",
            [me.as_str(), "a", "b", "a"],
            serde_json::json!({}),
            1,
        );
        assert_eq!(few.len(), 2);
        assert!(
            few.iter()
                .all(|e| e.scope == "users" && e.subject.is_some())
        );
        let ids: Vec<String> = (0..=MANY_SUBJECTS).map(|i| format!("u{i}")).collect();
        let many = access_entries(
            &c,
            "x",
            "readable",
            ids.iter().map(String::as_str),
            serde_json::json!({}),
            1,
        );
        assert_eq!(many.len(), 1);
        assert_eq!(many[0].scope, "tenant");
        assert_eq!(many[0].subject, None);
        assert_eq!(many[0].detail["subjects"], MANY_SUBJECTS + 1);
    }

    #[test]
    fn a_change_is_described_by_field_with_old_and_new_values() {
        let mut doc = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        let mut tx = doc.transaction();
        tx.put(ROOT, "phone", "111").expect("put");
        let notes = tx.put_object(ROOT, "notes", ObjType::Text).expect("text");
        tx.splice_text(&notes, 0, 0, "Call first.").expect("splice");
        tx.commit();
        let mut tx = doc.transaction();
        tx.put(ROOT, "phone", "222").expect("put");
        tx.splice_text(&notes, 0, 0, "Urgent: ").expect("splice");
        tx.splice_text(&notes, 18, 1, "!").expect("splice");
        tx.commit();
        let changes = doc.get_changes(&[]);
        let fields = describe(&doc, &changes[1]);
        let phone = fields.iter().find(|f| f.field == "phone").expect("phone");
        assert_eq!(
            (phone.old.clone(), phone.new.clone()),
            (Some("111".into()), Some("222".into()))
        );
        let text = fields.iter().find(|f| f.field == "notes").expect("notes");
        assert_eq!((text.op, text.inserted, text.deleted), ("text", 9, 1));
        assert!(
            text.excerpt
                .as_deref()
                .is_some_and(|e| e.contains("Urgent")),
            "{text:?}"
        );
    }

    #[test]
    fn concurrent_changes_are_those_neither_knew_of() {
        let mut base = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        let mut tx = base.transaction();
        tx.put(ROOT, "a", 1).expect("put");
        tx.commit();
        let mut x = base.fork().with_actor(ActorId::from([2u8; 16]));
        let mut y = base.fork().with_actor(ActorId::from([3u8; 16]));
        for (d, k) in [(&mut x, "x"), (&mut y, "y")] {
            let mut tx = d.transaction();
            tx.put(ROOT, k, 1).expect("put");
            tx.commit();
        }
        x.merge(&mut y).expect("merge");
        let mut tx = x.transaction();
        tx.put(ROOT, "after", 1).expect("put");
        tx.commit();
        let changes = x.get_changes(&[]);
        let all: Vec<usize> = (0..changes.len()).collect();
        let c = concurrent_with(&changes, &all);
        let n: Vec<usize> = all.iter().map(|i| c[i].len()).collect();
        assert_eq!(n.iter().filter(|k| **k == 1).count(), 2, "{n:?}");
        assert_eq!(n.iter().filter(|k| **k == 0).count(), 2, "{n:?}");
    }
}
