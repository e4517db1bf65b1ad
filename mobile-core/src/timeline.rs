//! A customer's timeline, offline: everything this phone holds about one customer, as one
//! list of plain entries, newest first (see [`TimelineEntry`] for the kinds).
//!
//! Visits (planned, check-in, report, reviews, the follow-up they set), photos of the customer
//! or of its visits and the projects for it come from their own records. Owner history,
//! contacts and notes come from the customer document's Automerge history: each change is
//! compared with the state before it, so an entry says when (the change's time, when it was
//! written with one) and by which actor (device) a field was set.

use crate::client::Inner;
use crate::edit::{load_doc, parse_doc_id};
use crate::error::{ClientError, Result};
use crate::model::TimelineEntry;
use crate::store;
use automerge::Automerge;
use fieldsync_sync::access::POOL;
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::record::photo::AttachKind;
use fieldsync_sync::{Customer, DocId, Record};
use std::collections::{HashMap, HashSet};

/// The most changes of a customer's history read for its timeline (the oldest are skipped
/// beyond it; each is replayed, so this bounds the work).
const MAX_HISTORY: usize = 2_000;

/// A day's start in UTC, for day-only entries.
fn day_start_ms(day: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

fn entry(kind: &str, at_ms: Option<i64>, record_id: String, title: String) -> TimelineEntry {
    TimelineEntry {
        kind: kind.to_owned(),
        at_ms,
        day: None,
        title,
        detail: String::new(),
        record_id,
        item_id: None,
        by: None,
    }
}

/// The customer at the state `heads` name, if readable.
fn customer_at(doc: &Automerge, heads: &[automerge::ChangeHash]) -> Option<Customer> {
    let fork = doc.fork_at(heads).ok()?;
    match Record::read(&fork) {
        Ok((Record::Customer(c), _)) => Some(c),
        _ => None,
    }
}

/// Entries read from the customer document's history: every change that set the owner,
/// when each current contact was added, and the notes as last written.
fn history_entries(doc: &Automerge, now: &Customer) -> Vec<TimelineEntry> {
    let id = now.id.to_string();
    let changes = doc.get_changes(&[]);
    let skip = changes.len().saturating_sub(MAX_HISTORY);
    let mut out = Vec::new();
    let mut contact_added: HashMap<String, (Option<i64>, String)> = HashMap::new();
    let mut notes_at: Option<(Option<i64>, String)> = None;
    for c in changes.iter().skip(skip) {
        let Some(after) = customer_at(doc, &[c.hash()]) else {
            continue;
        };
        let before = if c.deps().is_empty() {
            None
        } else {
            customer_at(doc, c.deps())
        };
        let at = Some(c.timestamp()).filter(|t| *t > 0);
        let actor = c.actor_id().to_hex_string();
        if before.as_ref().is_none_or(|b| b.owner != after.owner) {
            let mut e = entry(
                "owner",
                at,
                id.clone(),
                if after.owner == POOL {
                    "Moved to the shared pool".to_owned()
                } else {
                    format!("Owner set to {}", after.owner)
                },
            );
            e.detail = after.owner.to_string();
            e.by = Some(actor.clone());
            out.push(e);
        }
        let had: HashSet<&str> = before
            .as_ref()
            .map(|b| b.contacts.iter().map(|k| k.id.as_str()).collect())
            .unwrap_or_default();
        for k in after
            .contacts
            .iter()
            .filter(|k| !had.contains(k.id.as_str()))
        {
            contact_added
                .entry(k.id.clone())
                .or_insert((at, actor.clone()));
        }
        if before
            .as_ref()
            .map_or(!after.notes.is_empty(), |b| b.notes != after.notes)
        {
            notes_at = Some((at, actor));
        }
    }
    for k in &now.contacts {
        let (at, by) = contact_added
            .get(&k.id)
            .cloned()
            .unwrap_or((None, String::new()));
        let mut e = entry("contact", at, id.clone(), k.name.clone());
        e.detail = [k.title.clone(), k.phone.clone(), k.email.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
        e.item_id = Some(k.id.clone());
        e.by = Some(by).filter(|b| !b.is_empty());
        out.push(e);
    }
    if !now.notes.trim().is_empty() {
        let (at, by) = notes_at.unwrap_or((None, String::new()));
        let mut e = entry("note", at, id, "Notes".to_owned());
        e.detail = now.notes.clone();
        e.by = Some(by).filter(|b| !b.is_empty());
        out.push(e);
    }
    out
}

/// When a document was first written, if its first change carries a time.
fn created_at(doc: &Automerge) -> Option<i64> {
    doc.get_changes(&[])
        .iter()
        .map(|c| c.timestamp())
        .find(|t| *t > 0)
}

impl Inner {
    fn customer_timeline(&self, customer_id: &str) -> Result<Vec<TimelineEntry>> {
        let cid: DocId = parse_doc_id(customer_id, "customer")?;
        let id = cid.to_string();
        let row = store::doc_get(&self.store.conn, &id)?
            .filter(|r| r.kind == RecordKind::Customer.as_str())
            .ok_or_else(|| ClientError::not_found("customer", customer_id))?;
        let doc = load_doc(&row.bytes, self.device_id)?;
        let Record::Customer(customer) = Record::read(&doc)?.0 else {
            return Err(ClientError::not_found("customer", customer_id));
        };
        let mut out = history_entries(&doc, &customer);

        let mut visits = HashSet::new();
        for (r, _, _) in self.list(RecordKind::Visit)? {
            let Record::Visit(v) = r else { continue };
            if v.customer != cid {
                continue;
            }
            visits.insert(v.id);
            let vid = v.id.to_string();
            if v.check_in.is_none() {
                let mut e = entry(
                    "visit",
                    v.planned_date.as_deref().and_then(day_start_ms),
                    vid.clone(),
                    format!("Visit: {}", v.purpose),
                );
                e.day = v.planned_date.clone();
                e.detail = v.state().to_owned();
                e.by = Some(v.rep.to_string());
                out.push(e);
            }
            if let Some(ev) = &v.check_in {
                let mut e = entry(
                    "check_in",
                    Some(ev.event_time_ms()),
                    vid.clone(),
                    format!("Checked in: {}", v.purpose),
                );
                e.detail = format!("{:.5}, {:.5} (±{} m)", ev.lat, ev.lon, ev.accuracy_m);
                e.by = Some(v.rep.to_string());
                out.push(e);
            }
            if let Some(co) = &v.check_out {
                let mut e = entry(
                    "check_out",
                    Some(co.evidence.event_time_ms()),
                    vid.clone(),
                    format!("Visit report: {}", co.outcome),
                );
                e.detail = co.notes.clone();
                e.by = Some(v.rep.to_string());
                out.push(e);
                if let Some(day) = &co.next_follow_up {
                    let mut e = entry(
                        "follow_up",
                        day_start_ms(day),
                        vid.clone(),
                        format!("Follow-up due {day}"),
                    );
                    e.day = Some(day.clone());
                    e.detail = format!("Set in the report of the visit '{}'", v.purpose);
                    e.by = Some(v.rep.to_string());
                    out.push(e);
                }
            }
            for r in &v.reviews {
                let mut e = entry(
                    "review",
                    Some(r.at_ms),
                    vid.clone(),
                    format!("Visit report review: {}", r.decision),
                );
                e.detail = r.comment.clone();
                e.item_id = Some(r.id.clone());
                e.by = Some(r.by.to_string());
                out.push(e);
            }
        }

        for (r, _, _) in self.list(RecordKind::Photo)? {
            let Record::Photo(p) = r else { continue };
            let a = &p.attached_to;
            let ours = match a.kind {
                AttachKind::Customer => a.id == cid,
                AttachKind::Visit => visits.contains(&a.id),
                AttachKind::Project | AttachKind::SiteDay => false,
            };
            if !ours {
                continue;
            }
            let mut e = entry(
                "photo",
                Some(p.captured_at_ms),
                p.id.to_string(),
                if p.caption.is_empty() {
                    "Photo".to_owned()
                } else {
                    p.caption.clone()
                },
            );
            e.detail = format!("{} of {}", a.kind, a.id);
            e.by = Some(p.author.to_string());
            out.push(e);
        }

        for row in store::docs_all(&self.store.conn, Some(RecordKind::Project.as_str()))? {
            let Ok(doc) = load_doc(&row.bytes, self.device_id) else {
                continue;
            };
            let Ok((Record::Project(p), _)) = Record::read(&doc) else {
                continue;
            };
            if p.customer != Some(cid) {
                continue;
            }
            let mut e = entry(
                "project",
                created_at(&doc),
                p.id.to_string(),
                format!("Project {}", p.name),
            );
            e.detail = [p.code.clone(), Some(p.status.to_string())]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
            e.by = Some(p.created_by.to_string());
            out.push(e);
        }

        // Newest first; entries this phone cannot date go last. Ties (changes written in the
        // same millisecond) keep the reverse of the order they were added in, which for the
        // history is the order the changes were made.
        let mut order: Vec<(usize, TimelineEntry)> = out.into_iter().enumerate().collect();
        order.sort_by(|(i, a), (j, b)| {
            (b.at_ms.is_some(), b.at_ms, j).cmp(&(a.at_ms.is_some(), a.at_ms, i))
        });
        let out: Vec<TimelineEntry> = order.into_iter().map(|(_, e)| e).collect();
        Ok(out)
    }
}

impl crate::FieldsyncClient {
    /// Everything this phone holds about a customer, newest first, from the local store (works
    /// offline): its visits with check-in and check-out, report, reviews and the follow-ups
    /// they set, photos of the customer or its visits, notes, projects for it, contacts, and
    /// every change of its owner.
    pub fn customer_timeline(&self, customer_id: String) -> Result<Vec<TimelineEntry>> {
        self.lock().customer_timeline(&customer_id)
    }
}
