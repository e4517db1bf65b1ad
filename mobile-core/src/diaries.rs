//! Site diaries on the phone: one document per project site and day, written offline by
//! several people at once.
//!
//! * **Opening a day.** [`crate::FieldsyncClient::open_diary`] returns the day's diary; a phone
//!   that lacks it starts the document from [`Diary::genesis`], the first change every phone
//!   makes byte for byte the same, and queues that change for push like a new record's. The
//!   server (or a pull) holding the same day already merges: it is the same change, so there is
//!   one document, never two rival ones.
//! * **Edits.** Each edit is an Automerge change under the phone's own actor, made through the
//!   common edit path (`edit.rs`): the typed diary is changed, the shared rules run in full
//!   (the phone knows the project's roles from the project record it holds, so a viewer cannot
//!   write, a crew member cannot sign off, and nobody changes a signed-off day: `diary_locked`,
//!   the server's own sentence), and only what differs is written. The work text is written with
//!   `update_text`, so concurrent edits merge character by character.
//! * **Refusals.** When the server refuses a diary change (typically `diary_locked`: the phone
//!   edited offline while a site manager signed the day off), the phone returns to the server's
//!   version like for any record, and [`kept_of`] keeps what the refusal removed (work
//!   paragraphs, items, crew, weather) with the rejection. [`crate::FieldsyncClient::diary_rejections`]
//!   lists it, and [`crate::FieldsyncClient::restore_diary_kept`] writes it again once the day is
//!   reopened.

use crate::client::Inner;
use crate::edit::{actor_for, new_item_id, opt, parse_doc_id, save_doc};
use crate::error::{ClientError, Result};
use crate::model::{CrewInput, DiaryKept, DiaryRejection, DiaryView, KeptItem};
use crate::store;
use automerge::{Automerge, ReadDoc};
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::record::diary::{DIARY_LISTS, Diary, DiaryAction, DiaryItem, SignEvent};
use fieldsync_sync::{Conflict, CrewEntry, DocId, Project, Record, UserId, rules};

/// How many of a diary's rejections [`crate::FieldsyncClient::diary_rejections`] reads.
const MAX_REJECTIONS: u32 = 50;

/// `name` if it is one of the diary's lists.
fn list_name(name: &str) -> Result<&'static str> {
    let name = name.trim();
    DIARY_LISTS.into_iter().find(|l| *l == name).ok_or_else(|| {
        ClientError::invalid(
            "unknown_list",
            format!(
                "'{name}' is not a diary list; the lists are {}.",
                DIARY_LISTS.join(", ")
            ),
        )
    })
}

fn not_found_item(list: &str, item: &str) -> ClientError {
    ClientError::NotFound {
        code: "not_found".into(),
        message: format!("The diary has no entry '{item}' in {list}."),
    }
}

fn with_diary(
    change: impl FnOnce(&mut Diary) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Diary(d) => change(d),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a site diary.",
        )),
    }
}

/// A quantity as written: finite and not negative (the shared rules say so again).
fn optional_severity(severity: Option<String>) -> Result<Option<fieldsync_sync::IncidentSeverity>> {
    Ok(opt(severity).map(|s| s.parse()).transpose()?)
}

/// The paragraphs (lines) of `mine` that `theirs` lacks, in order.
fn missing_paragraphs(mine: &str, theirs: &str) -> String {
    let have: std::collections::HashSet<&str> = theirs.lines().map(str::trim).collect();
    mine.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !have.contains(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The diary of `doc`, if it reads as one.
fn diary_of(doc: &Automerge) -> Option<Diary> {
    match Record::read(doc) {
        Ok((Record::Diary(d), _)) => Some(d),
        _ => None,
    }
}

/// What the person wrote on this phone that a refusal is about to drop, as the JSON of a
/// [`DiaryKept`]; `None` when nothing. `local` is the phone's diary, `server_heads` the heads the
/// server was known to have (the person's own edits are what `local` changed since them), and
/// `server` the version the server answered with. Only the person's edits are kept, not
/// differences that come from changes the phone had not pulled yet, and nothing the server
/// already holds.
pub(crate) fn kept_of(
    local: &Automerge,
    server_heads: &[String],
    server: Option<&Automerge>,
) -> Option<String> {
    let mine = diary_of(local)?;
    let empty = || Diary::new(mine.project, mine.site.clone(), mine.day.clone());
    let theirs = server.and_then(diary_of).unwrap_or_else(empty);
    // The phone's diary as the server last had it: the base of the person's edits.
    let base = fieldsync_sync::protocol::heads_from_strings(server_heads)
        .ok()
        .filter(|h| !h.is_empty() && h.iter().all(|h| local.get_change_by_hash(h).is_some()))
        .and_then(|h| local.fork_at(&h).ok())
        .and_then(|d| diary_of(&d))
        .unwrap_or_else(empty);
    let mut kept = DiaryKept {
        work: missing_paragraphs(&missing_paragraphs(&mine.work, &base.work), &theirs.work),
        ..Default::default()
    };
    if mine.weather != base.weather && mine.weather != theirs.weather && !mine.weather.is_empty() {
        kept.weather = Some(mine.weather.clone());
    }
    if mine.temperature_c != base.temperature_c && mine.temperature_c != theirs.temperature_c {
        kept.temperature_c = mine.temperature_c;
    }
    for list in DIARY_LISTS {
        let before = base.list(list).map(Vec::as_slice).unwrap_or_default();
        let now = theirs.list(list).map(Vec::as_slice).unwrap_or_default();
        for item in mine.list(list).map(Vec::as_slice).unwrap_or_default() {
            if !before.contains(item) && !now.contains(item) {
                kept.items.push(KeptItem {
                    list: list.to_owned(),
                    item: item.clone(),
                });
            }
        }
    }
    kept.crew = mine
        .crew
        .iter()
        .filter(|c| !base.crew.contains(c) && !theirs.crew.contains(c))
        .cloned()
        .collect();
    if kept.is_empty() {
        return None;
    }
    serde_json::to_string(&kept).ok()
}

impl Inner {
    fn local_project(&self, id: DocId) -> Result<Option<Project>> {
        match self.load(&id.to_string(), RecordKind::Project) {
            Ok((Record::Project(p), _, _)) => Ok(Some(p)),
            Ok(_) | Err(ClientError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn diary_view_of(&self, diary: Diary, conflicts: Vec<Conflict>, pending: bool) -> DiaryView {
        let project = self.local_project(diary.project).ok().flatten();
        let site_name = project.as_ref().and_then(|p| {
            p.sites
                .iter()
                .find(|s| s.id == diary.site)
                .map(|s| s.name.clone())
        });
        let mut heads = store::doc_state(&self.store.conn, &diary.id.to_string())
            .ok()
            .flatten()
            .and_then(|s| s.heads)
            .unwrap_or_default();
        heads.sort();
        DiaryView {
            heads,
            locked: diary.is_locked(),
            project_name: project.map(|p| p.name),
            site_name,
            diary,
            pending,
            conflicts,
        }
    }

    fn diary_view(&self, id: &str) -> Result<DiaryView> {
        match self.load(id, RecordKind::Diary)? {
            (Record::Diary(d), conflicts, pending) => Ok(self.diary_view_of(d, conflicts, pending)),
            _ => Err(ClientError::not_found("diary", id)),
        }
    }

    /// The day's diary, made from its genesis change if this phone does not have it.
    fn open_diary(&mut self, project_id: &str, site: &str, day: &str) -> Result<DiaryView> {
        let project_id = parse_doc_id(project_id, "project")?;
        let day = day.trim();
        rules::check_date(day, "day")?;
        let project = self.local_project(project_id)?.ok_or_else(|| {
            ClientError::invalid(
                "unknown_project",
                format!("The project {project_id} is not on this phone; sync first."),
            )
        })?;
        // The site's id, also when it is named by its (unique) name: the diary's id is made
        // from the id, so every phone must use the same.
        let wanted = site.trim();
        let by_name: Vec<&str> = project
            .sites
            .iter()
            .filter(|s| s.name == wanted)
            .map(|s| s.id.as_str())
            .collect();
        let site = match project.sites.iter().find(|s| s.id == wanted) {
            Some(s) => s.id.clone(),
            None if by_name.len() == 1 => by_name[0].to_owned(),
            None => {
                return Err(ClientError::invalid(
                    "unknown_site",
                    format!("Project {} has no site '{wanted}'.", project.name),
                ));
            }
        };
        let doc_id = Diary::doc_id_for(project_id, &site, day).to_string();
        if store::doc_state(&self.store.conn, &doc_id)?.is_some() {
            return self.diary_view(&doc_id);
        }
        let genesis = Diary::genesis(project_id, &site, day)?;
        let (record, _) = Record::read(&genesis)?;
        self.check(None, &record)?;
        let changes = genesis.get_changes(&[]);
        let doc = genesis.clone().with_actor(actor_for(self.device_id));
        let tx = self.store.conn.unchecked_transaction()?;
        save_doc(&tx, &doc_id, RecordKind::Diary.as_str(), &doc, &[], true)?;
        store::pending_clear(&tx, &doc_id)?;
        for c in &changes {
            store::pending_add(&tx, &doc_id, c)?;
        }
        tx.commit()?;
        self.diary_view(&doc_id)
    }

    /// Changes a stored diary with `change`, given who is writing and when.
    fn edit_diary(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Diary, UserId, i64) -> Result<()>,
    ) -> Result<DiaryView> {
        let me = self.user_id()?;
        let now = self.stamp()?.time_ms();
        self.edit(id, RecordKind::Diary, with_diary(|d| change(d, me, now)))?;
        self.diary_view(id)
    }

    fn sign(&mut self, id: &str, action: DiaryAction, note: String) -> Result<DiaryView> {
        self.edit_diary(id, |d, me, now| {
            d.signoffs.push(SignEvent {
                id: new_item_id(),
                seq: d.next_seq(),
                action,
                by: me,
                at_ms: now,
                note: note.trim().to_owned(),
            });
            Ok(())
        })
    }
}

impl crate::FieldsyncClient {
    /// The diary of `site_id` (the site's id, or its name if no other site of the project has
    /// it) of a project on `day` (`YYYY-MM-DD`). If this phone does not have it, it is started
    /// from the day's genesis change (the same on every phone) and queued for push; the project
    /// must be on the phone and the user one of its crew or site managers (or an admin).
    pub fn open_diary(
        &self,
        project_id: String,
        site_id: String,
        day: String,
    ) -> Result<DiaryView> {
        self.lock().open_diary(&project_id, &site_id, &day)
    }

    /// One diary day.
    pub fn get_diary(&self, diary_id: String) -> Result<DiaryView> {
        self.lock().diary_view(&diary_id)
    }

    /// The diary days on this phone, newest day first; only those of `project_id` if given.
    pub fn list_diaries(&self, project_id: Option<String>) -> Result<Vec<DiaryView>> {
        let project = opt(project_id)
            .map(|p| parse_doc_id(&p, "project"))
            .transpose()?;
        let inner = self.lock();
        let mut out: Vec<DiaryView> = inner
            .list(RecordKind::Diary)?
            .into_iter()
            .filter_map(|(r, c, pending)| match r {
                Record::Diary(d) if project.is_none_or(|p| p == d.project) => {
                    Some(inner.diary_view_of(d, c, pending))
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| {
            (&b.diary.day, &a.diary.project.to_string(), &a.diary.site).cmp(&(
                &a.diary.day,
                &b.diary.project.to_string(),
                &b.diary.site,
            ))
        });
        Ok(out)
    }

    /// Sets the weather ("sunny, light wind") and the temperature (°C).
    pub fn set_diary_weather(
        &self,
        diary_id: String,
        weather: String,
        temperature_c: Option<f64>,
    ) -> Result<DiaryView> {
        self.lock().edit_diary(&diary_id, |d, _, _| {
            d.weather = weather.trim().to_owned();
            d.temperature_c = temperature_c;
            Ok(())
        })
    }

    /// Replaces the work performed with `text`, the whole new text. It is written as the
    /// character edits from the current text, so what others write at the same time merges in.
    pub fn set_diary_work(&self, diary_id: String, text: String) -> Result<DiaryView> {
        self.lock().edit_diary(&diary_id, |d, _, _| {
            d.work = text;
            Ok(())
        })
    }

    /// Adds an item to a list (`materials`, `equipment`, `delays`, `incidents`, `visitors`);
    /// incidents need a `severity` (`near_miss`, `first_aid`, `injury`, `serious`), the other
    /// lists take none. Returns the new item's id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_diary_item(
        &self,
        diary_id: String,
        list: String,
        text: String,
        quantity: Option<f64>,
        unit: Option<String>,
        note: String,
        severity: Option<String>,
    ) -> Result<String> {
        let list = list_name(&list)?;
        let severity = optional_severity(severity)?;
        let id = new_item_id();
        let item_id = id.clone();
        self.lock().edit_diary(&diary_id, |d, me, now| {
            let items = d
                .list_mut(list)
                .expect("BUG: list_name returns a diary list");
            items.push(DiaryItem {
                id: item_id,
                by: me,
                at_ms: now,
                text: text.trim().to_owned(),
                quantity,
                unit: opt(unit),
                note: note.trim().to_owned(),
                severity,
            });
            Ok(())
        })?;
        Ok(id)
    }

    /// Rewrites an item (its author or a site manager).
    #[allow(clippy::too_many_arguments)]
    pub fn update_diary_item(
        &self,
        diary_id: String,
        list: String,
        item_id: String,
        text: String,
        quantity: Option<f64>,
        unit: Option<String>,
        note: String,
        severity: Option<String>,
    ) -> Result<DiaryView> {
        let list = list_name(&list)?;
        let severity = optional_severity(severity)?;
        self.lock().edit_diary(&diary_id, |d, _, _| {
            let items = d
                .list_mut(list)
                .expect("BUG: list_name returns a diary list");
            let item = items
                .iter_mut()
                .find(|i| i.id == item_id.trim())
                .ok_or_else(|| not_found_item(list, &item_id))?;
            item.text = text.trim().to_owned();
            item.quantity = quantity;
            item.unit = opt(unit);
            item.note = note.trim().to_owned();
            item.severity = severity;
            Ok(())
        })
    }

    /// Removes an item (its author or a site manager).
    pub fn remove_diary_item(
        &self,
        diary_id: String,
        list: String,
        item_id: String,
    ) -> Result<DiaryView> {
        let list = list_name(&list)?;
        self.lock().edit_diary(&diary_id, |d, _, _| {
            let items = d
                .list_mut(list)
                .expect("BUG: list_name returns a diary list");
            let before = items.len();
            items.retain(|i| i.id != item_id.trim());
            if items.len() == before {
                return Err(not_found_item(list, &item_id));
            }
            Ok(())
        })
    }

    /// Adds or rewrites a crew entry (see [`CrewInput`]); the writer is recorded in its `by`.
    pub fn set_diary_crew(&self, diary_id: String, entry: CrewInput) -> Result<DiaryView> {
        let user = opt(entry.user_id.clone())
            .map(|u| {
                u.parse::<UserId>().map_err(|_| {
                    ClientError::invalid("invalid_id", format!("'{u}' is not a user id (UUID)."))
                })
            })
            .transpose()?;
        let key = match (user, opt(entry.key.clone())) {
            (Some(u), _) => u.to_string(),
            (None, Some(k)) => k,
            (None, None) => new_item_id(),
        };
        self.lock().edit_diary(&diary_id, |d, me, _| {
            let new = CrewEntry {
                key: key.clone(),
                user,
                name: entry.name.trim().to_owned(),
                present: entry.present,
                hours: entry.hours,
                note: entry.note.trim().to_owned(),
                by: me,
            };
            match d.crew.iter_mut().find(|c| c.key == key) {
                Some(c) => *c = new,
                None => d.crew.push(new),
            }
            Ok(())
        })
    }

    /// The photos on this phone that belong to a diary day, oldest first: those attached to the
    /// day, and those of its project taken that day (in the site's time zone) with a fix inside
    /// the site's area (within the 100 m the server allows a camera). Offline, from the store;
    /// the server links the same way (`GET /v1/diaries/{id}`) over every photo it has.
    pub fn diary_photos(&self, diary_id: String) -> Result<Vec<crate::model::PhotoView>> {
        let inner = self.lock();
        let d = inner.diary_view(diary_id.trim())?.diary;
        let site = inner
            .local_project(d.project)?
            .and_then(|p| p.sites.into_iter().find(|s| s.id == d.site));
        let bounds = site.as_ref().and_then(|s| {
            use chrono::TimeZone;
            let tz: chrono_tz::Tz = s.timezone.parse().ok()?;
            let day = chrono::NaiveDate::parse_from_str(&d.day, "%Y-%m-%d").ok()?;
            let start = |day: chrono::NaiveDate| {
                tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
                    .earliest()
                    .map(|t| t.timestamp_millis())
            };
            Some((start(day)?, start(day.succ_opt()?)?))
        });
        let mut out: Vec<crate::model::PhotoView> = inner
            .photos()?
            .into_iter()
            .filter(|v| {
                let a = &v.photo.attached_to;
                if a.id != d.project {
                    return false;
                }
                match a.kind {
                    fieldsync_sync::record::photo::AttachKind::SiteDay => {
                        a.site.as_deref() == Some(d.site.as_str())
                            && a.day.as_deref() == Some(d.day.as_str())
                    }
                    fieldsync_sync::record::photo::AttachKind::Project => {
                        let (Some((from, to)), Some(fence), Some(ev)) = (
                            bounds,
                            site.as_ref().and_then(|s| s.geofence.as_ref()),
                            v.photo.evidence.as_ref(),
                        ) else {
                            return false;
                        };
                        let at = v.photo.captured_at_ms;
                        let here = fieldsync_sync::GeoPoint {
                            lat: ev.lat,
                            lon: ev.lon,
                        };
                        (from..to).contains(&at)
                            && fieldsync_sync::trust::distance_to_fence_m(here, fence)
                                <= 100.0 + ev.accuracy_m
                    }
                    _ => false,
                }
            })
            .collect();
        out.sort_by_key(|v| (v.photo.captured_at_ms, v.photo.id.to_string()));
        Ok(out)
    }

    /// Pre-fills the day's crew from the attendance punches at the site that day, as the server
    /// has them (`GET /v1/diaries/{id}`; online, and the day must have reached the server):
    /// everyone who punched in and is not on the crew yet is added, present, with their punched
    /// hours, named as the server names them. The entries are ordinary crew entries by this
    /// user, to edit or remove like any other; people already on the crew are left as they are.
    pub fn prefill_diary_crew(&self, diary_id: String) -> Result<DiaryView> {
        let id = parse_doc_id(diary_id.trim(), "diary")?.to_string();
        let mut inner = self.lock();
        let answer: serde_json::Value = inner.call_get(&format!("/v1/diaries/{id}"))?;
        let punched: Vec<(UserId, String, Option<f64>)> = answer["crew"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|l| l["source"] == "punches")
            .filter_map(|l| {
                let user: UserId = l["user_id"].as_str()?.parse().ok()?;
                let name = l["name"].as_str().unwrap_or_default().to_owned();
                Some((user, name, l["punched_hours"].as_f64()))
            })
            .collect();
        inner.edit_diary(&id, |d, me, _| {
            for (user, name, hours) in punched {
                let key = user.to_string();
                if d.crew.iter().any(|c| c.key == key) {
                    continue;
                }
                d.crew.push(CrewEntry {
                    key,
                    user: Some(user),
                    name,
                    present: true,
                    hours,
                    note: String::new(),
                    by: me,
                });
            }
            Ok(())
        })
    }

    /// Removes a crew entry by its key (a staff member's user id).
    pub fn remove_diary_crew(&self, diary_id: String, key: String) -> Result<DiaryView> {
        self.lock().edit_diary(&diary_id, |d, _, _| {
            let before = d.crew.len();
            d.crew.retain(|c| c.key != key.trim());
            if d.crew.len() == before {
                return Err(ClientError::NotFound {
                    code: "not_found".into(),
                    message: format!("The diary's crew has no entry '{key}'."),
                });
            }
            Ok(())
        })
    }

    /// Signs the day off (site managers and admins): from then on the diary is locked.
    pub fn sign_off_diary(&self, diary_id: String, note: String) -> Result<DiaryView> {
        self.lock().sign(&diary_id, DiaryAction::SignOff, note)
    }

    /// Reopens a signed-off day (site managers and admins); both steps stay in the log.
    pub fn reopen_diary(&self, diary_id: String, note: String) -> Result<DiaryView> {
        self.lock().sign(&diary_id, DiaryAction::Reopen, note)
    }

    /// The server's refusals of this phone's changes to a diary day, newest first, each with
    /// what it took off the phone (see [`DiaryKept`]).
    pub fn diary_rejections(&self, diary_id: String) -> Result<Vec<DiaryRejection>> {
        let id = parse_doc_id(&diary_id, "diary")?.to_string();
        let inner = self.lock();
        Ok(
            store::rejections_of(&inner.store.conn, &id, MAX_REJECTIONS)?
                .into_iter()
                .map(|r| DiaryRejection {
                    kept: r
                        .kept
                        .as_deref()
                        .and_then(|k| serde_json::from_str(k).ok())
                        .unwrap_or_default(),
                    diary_id: r.doc_id,
                    code: r.code,
                    message: r.message,
                    at_ms: r.at_ms,
                })
                .collect(),
        )
    }

    /// Writes again what the latest refusal of a change to this diary took off the phone: its
    /// work paragraphs are added at the end of the text (those not in it already), its items
    /// and crew entries are put back, its weather set. One change, checked like any edit (so
    /// refused with `diary_locked` while the day is still signed off). Returns the diary.
    pub fn restore_diary_kept(&self, diary_id: String) -> Result<DiaryView> {
        let latest = self
            .diary_rejections(diary_id.clone())?
            .into_iter()
            .find(|r| !r.kept.is_empty())
            .ok_or_else(|| ClientError::NotFound {
                code: "not_found".into(),
                message: "Nothing refused of this diary day is kept on this phone.".into(),
            })?;
        let kept = latest.kept;
        self.lock().edit_diary(&diary_id, |d, me, _| {
            let add = missing_paragraphs(&kept.work, &d.work);
            if !add.is_empty() {
                if !d.work.is_empty() && !d.work.ends_with('\n') {
                    d.work.push('\n');
                }
                d.work.push_str(&add);
            }
            if let Some(w) = kept.weather {
                d.weather = w;
            }
            if kept.temperature_c.is_some() {
                d.temperature_c = kept.temperature_c;
            }
            for k in kept.items {
                let list = list_name(&k.list)?;
                let items = d
                    .list_mut(list)
                    .expect("BUG: list_name returns a diary list");
                match items.iter_mut().find(|i| i.id == k.item.id) {
                    Some(i) => *i = k.item,
                    None => items.push(k.item),
                }
            }
            for mut c in kept.crew {
                // Whoever writes an entry is its `by`: now that is this person again.
                c.by = me;
                match d.crew.iter_mut().find(|x| x.key == c.key) {
                    Some(x) => *x = c,
                    None => d.crew.push(c),
                }
            }
            Ok(())
        })
    }
}
