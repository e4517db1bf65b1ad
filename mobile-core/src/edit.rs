//! Offline edits of typed records. Every edit loads the record's document, changes the typed
//! record, runs the shared rules (so the person hears about a bad latitude or a changed punch at
//! once, not after a sync; see [`Inner::check`] for which), writes only what differs in one
//! Automerge transaction, and stores the document marked dirty, all under one SQLite
//! transaction. Also the document helpers the sync code shares.

use crate::client::Inner;
use crate::error::{ClientError, Result};
use crate::model::*;
use crate::store;
use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, ReadDoc};
use fieldsync_sync::access::{Caller, Directory, Role};
use fieldsync_sync::protocol::heads_to_strings;
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::{
    Contact, Customer, CustomerKind, DeviceId, DocId, GeoPoint, Lifecycle, Member, Milestone,
    MilestoneStatus, Project, ProjectRole, ProjectStatus, Record, Site, Tier, UserId, rules,
};

/// The device's Automerge actor: its device id's bytes. A data directory is opened by one
/// client at a time, so the actor's sequence numbers never fork.
pub(crate) fn actor_for(device: DeviceId) -> ActorId {
    ActorId::from(device.0.as_bytes().as_slice())
}

/// Loads stored document bytes.
pub(crate) fn load_doc(bytes: &[u8], device: DeviceId) -> Result<Automerge> {
    Automerge::load(bytes)
        .map(|d| d.with_actor(actor_for(device)))
        .map_err(|e| ClientError::Storage {
            code: "corrupt_document".into(),
            message: format!("A stored document cannot be loaded: {e}."),
        })
}

/// The name and one-line summary stored next to a document for listing.
pub(crate) fn listing(doc: &Automerge) -> (String, String) {
    match Record::read(doc) {
        Ok((Record::Customer(c), _)) => {
            let summary = [
                c.address.clone(),
                c.phone.clone(),
                c.tier.map(|t| t.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
            (c.name, summary)
        }
        Ok((Record::Project(p), _)) => (
            p.name,
            [p.code.clone(), Some(p.status.to_string())]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
        ),
        Ok((Record::Diary(d), _)) => (
            format!("Site diary {} {}", d.site, d.day),
            if d.is_locked() {
                "signed off".to_owned()
            } else {
                format!("{} on the crew list", d.crew.len())
            },
        ),
        Ok((Record::Visit(v), _)) => (
            format!("Visit {}", v.planned_date.clone().unwrap_or_default()),
            v.state().to_owned(),
        ),
        Ok((Record::Punch(p), _)) => (format!("Punch {}", p.direction), p.site.clone()),
        Ok((Record::Makeup(m), _)) => (format!("Make-up {}", m.direction), m.reason.clone()),
        Ok((Record::Photo(p), _)) => (
            format!("Photo {}", &p.sha256[..p.sha256.len().min(12)]),
            p.caption.clone(),
        ),
        Err(e) => (String::new(), format!("unreadable: {e}")),
    }
}

/// The heads of a document as they are stored and sent.
pub(crate) fn doc_heads(doc: &Automerge) -> Vec<String> {
    heads_to_strings(&doc.get_heads())
}

/// Stores a whole document, refreshing its heads and listing columns.
pub(crate) fn save_doc(
    conn: &rusqlite::Connection,
    doc_id: &str,
    kind: &str,
    doc: &Automerge,
    server_heads: &[String],
    dirty: bool,
) -> Result<()> {
    let (name, summary) = listing(doc);
    store::doc_put(
        conn,
        doc_id,
        kind,
        &doc.save(),
        server_heads,
        &doc_heads(doc),
        dirty,
        Some((&name, &summary)),
    )
}

pub(crate) fn opt(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_f64(value: &str, field: &str) -> Result<f64> {
    value.trim().parse::<f64>().map_err(|_| {
        ClientError::invalid(
            "invalid_number",
            format!("'{value}' in '{field}' is not a number."),
        )
    })
}

pub(crate) fn parse_doc_id(id: &str, what: &str) -> Result<DocId> {
    id.trim().parse().map_err(|_| {
        ClientError::invalid("invalid_id", format!("'{id}' is not a {what} id (UUID)."))
    })
}

fn parse_user_id(id: &str) -> Result<UserId> {
    id.trim()
        .parse()
        .map_err(|_| ClientError::invalid("invalid_id", format!("'{id}' is not a user id (UUID).")))
}

fn parse_tags(value: &str) -> Vec<String> {
    clean_tags(value.split(','))
}

/// Tags trimmed, without empty ones, sorted and without repeats.
pub(crate) fn clean_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

pub(crate) fn new_item_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Sets one customer field from text.
fn set_customer_field(c: &mut Customer, field: &str, value: &str) -> Result<()> {
    let v = value.trim();
    let o = || opt(Some(v.to_owned()));
    match field {
        "name" => c.name = v.to_owned(),
        "kind" | "customer_kind" => c.customer_kind = v.parse::<CustomerKind>()?,
        "phone" => c.phone = o(),
        "email" => c.email = o(),
        "address" => c.address = o(),
        "lat" | "lon" => {
            let Some(mut p) = c.location else {
                return Err(ClientError::invalid(
                    "incomplete_location",
                    "A location needs both latitude and longitude; set 'location' to 'lat,lon'.",
                ));
            };
            if field == "lat" {
                p.lat = parse_f64(v, field)?;
            } else {
                p.lon = parse_f64(v, field)?;
            }
            c.location = Some(p);
        }
        "location" => {
            c.location = if v.is_empty() {
                None
            } else {
                let (lat, lon) = v.split_once(',').ok_or_else(|| {
                    ClientError::invalid("incomplete_location", format!("'{v}' is not 'lat,lon'."))
                })?;
                Some(GeoPoint {
                    lat: parse_f64(lat, "lat")?,
                    lon: parse_f64(lon, "lon")?,
                })
            }
        }
        "tier" => c.tier = o().map(|t| t.parse::<Tier>()).transpose()?,
        "lifecycle" => c.lifecycle = v.parse::<Lifecycle>()?,
        "owner" => c.owner = parse_user_id(v)?,
        "notes" => c.notes = value.to_owned(),
        "tags" => c.tags = parse_tags(v),
        other => {
            return Err(ClientError::invalid(
                "unknown_field",
                format!(
                    "'{other}' is not a customer field; use name, kind, phone, email, address, lat, lon, location, tier, lifecycle, owner, notes or tags."
                ),
            ));
        }
    }
    Ok(())
}

/// Sets one project field from text.
fn set_project_field(p: &mut Project, field: &str, value: &str) -> Result<()> {
    let v = value.trim();
    match field {
        "name" => p.name = v.to_owned(),
        "code" => p.code = opt(Some(v.to_owned())),
        "status" => p.status = v.parse::<ProjectStatus>()?,
        "customer" | "customer_id" => {
            p.customer = if v.is_empty() {
                None
            } else {
                Some(parse_doc_id(v, "customer")?)
            }
        }
        other => {
            return Err(ClientError::invalid(
                "unknown_field",
                format!("'{other}' is not a project field; use name, code, status or customer."),
            ));
        }
    }
    Ok(())
}

/// The phone's stand-in for the server's directory of people, for the rules of field events.
/// The phone cannot know who is active or who reports to whom, so it assumes what the records
/// the server let it hold imply: everyone named in them is active, and a manager manages
/// everyone but themselves (a manager's phone holds only their own and their team's records).
/// The server runs the same rules with the real directory and has the last word.
///
/// For a site diary it also knows the roles of one project, read from the project record on
/// this phone: so a viewer cannot write the diary and a crew member cannot sign it off, even
/// offline.
struct PhoneDirectory {
    me: UserId,
    manager: bool,
    /// The project whose roles are known, and its members.
    project: Option<(DocId, Vec<Member>)>,
}

impl Directory for PhoneDirectory {
    fn active_role(&self, _user: UserId) -> Option<Role> {
        Some(Role::FieldRep)
    }

    fn manager_of(&self, user: UserId) -> Option<UserId> {
        (self.manager && user != self.me).then_some(self.me)
    }

    fn project_members(&self, project: DocId) -> Vec<UserId> {
        match &self.project {
            Some((id, members)) if *id == project => members.iter().map(|m| m.user).collect(),
            _ => Vec::new(),
        }
    }

    fn project_role(&self, project: DocId, user: UserId) -> Option<ProjectRole> {
        match &self.project {
            Some((id, members)) if *id == project => {
                members.iter().find(|m| m.user == user).map(|m| m.role)
            }
            _ => None,
        }
    }
}

impl Inner {
    pub(crate) fn user_id(&self) -> Result<UserId> {
        let s = self.session()?;
        s.user_id
            .parse()
            .map_err(|_| ClientError::storage("The stored user id is not a UUID."))
    }

    /// The logged-in user as the rules see them.
    pub(crate) fn caller(&self) -> Result<Caller> {
        let s = self.session()?;
        let bad = |what: &str| ClientError::storage(format!("The stored {what} is not valid."));
        Ok(Caller {
            tenant: s.tenant_id.parse().map_err(|_| bad("tenant id"))?,
            user: s.user_id.parse().map_err(|_| bad("user id"))?,
            role: s.role.parse().map_err(|_| bad("role"))?,
        })
    }

    /// The rules a local change must pass before it is stored. Customers and projects get the
    /// content rules only: who may change them depends on the team, which the phone does not
    /// know, so the server decides and a refused change comes back as a rejection. Field events
    /// (visits, punches, make-up requests) are the person's own, so the whole shared rule runs
    /// here, with [`PhoneDirectory`]: a change the server would refuse (altering a punch, a
    /// check-out of someone else's visit, deciding a request twice) never leaves the phone.
    /// Site diaries too, with the project's roles from the phone's copy of the project: a
    /// viewer's edit, a crew member's sign-off or a change to a signed-off day is refused here.
    pub(crate) fn check(&self, before: Option<&Record>, after: &Record) -> Result<()> {
        match after {
            Record::Customer(c) => rules::check_customer(c)?,
            Record::Project(p) => rules::check_project(p)?,
            // Who may write or sign depends on the project's roles: read from the project
            // record on this phone (the server checks again with its own).
            Record::Diary(d) => {
                let caller = self.caller()?;
                let members = match self.load(&d.project.to_string(), RecordKind::Project) {
                    Ok((Record::Project(p), _, _)) => p.members,
                    Ok(_) | Err(ClientError::NotFound { .. }) => {
                        return Err(ClientError::invalid(
                            "unknown_project",
                            format!(
                                "The project {} of this site diary is not on this phone; sync first.",
                                d.project
                            ),
                        ));
                    }
                    Err(e) => return Err(e),
                };
                let dir = PhoneDirectory {
                    me: caller.user,
                    manager: caller.role == Role::Manager,
                    project: Some((d.project, members)),
                };
                rules::check_change(after.id(), before, after, &caller, &dir)?
            }
            Record::Visit(_) | Record::Punch(_) | Record::Makeup(_) | Record::Photo(_) => {
                let caller = self.caller()?;
                let dir = PhoneDirectory {
                    me: caller.user,
                    manager: caller.role == Role::Manager,
                    project: None,
                };
                rules::check_change(after.id(), before, after, &caller, &dir)?
            }
        }
        Ok(())
    }

    /// Validates and stores a brand-new record.
    pub(crate) fn create(&mut self, record: Record) -> Result<()> {
        self.create_with(record, |_| Ok(()))
    }

    /// [`Inner::create`], with `also` run in the same SQLite transaction (what must be stored
    /// together with the record, like the upload of a photo's bytes).
    pub(crate) fn create_with(
        &mut self,
        record: Record,
        also: impl FnOnce(&rusqlite::Connection) -> Result<()>,
    ) -> Result<()> {
        self.check(None, &record)?;
        let mut doc = Automerge::new().with_actor(actor_for(self.device_id));
        let mut tx = doc.transaction();
        record.write(&mut tx)?;
        tx.commit_with(CommitOptions::default().with_time(store::now_ms()));
        let doc_id = record.id().to_string();
        // Its changes, kept for the push: normally the one change that made it.
        let heads = doc.get_heads();
        let changes = match doc.get_last_local_change() {
            Some(c) if c.deps().is_empty() && heads == [c.hash()] => vec![c],
            _ => doc.get_changes(&[]),
        };
        let tx = self.store.conn.unchecked_transaction()?;
        save_doc(&tx, &doc_id, record.kind().as_str(), &doc, &[], true)?;
        store::pending_clear(&tx, &doc_id)?;
        for c in &changes {
            store::pending_add(&tx, &doc_id, c)?;
        }
        also(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Loads a record of `kind`.
    pub(crate) fn load(
        &self,
        id: &str,
        kind: RecordKind,
    ) -> Result<(Record, Vec<fieldsync_sync::Conflict>, bool)> {
        let doc_id = parse_doc_id(id, kind.as_str())?.to_string();
        let row = store::doc_get(&self.store.conn, &doc_id)?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| ClientError::not_found(kind.as_str(), id))?;
        let doc = load_doc(&row.bytes, self.device_id)?;
        let (record, conflicts) = Record::read(&doc)?;
        Ok((record, conflicts, row.dirty))
    }

    /// Applies `change` to a stored record of `kind`, validates, writes the minimal diff.
    pub(crate) fn edit(
        &mut self,
        id: &str,
        kind: RecordKind,
        change: impl FnOnce(&mut Record) -> Result<()>,
    ) -> Result<()> {
        let doc_id = parse_doc_id(id, kind.as_str())?.to_string();
        let row = store::doc_get(&self.store.conn, &doc_id)?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| ClientError::not_found(kind.as_str(), id))?;
        let mut doc = load_doc(&row.bytes, self.device_id)?;
        let (mut record, _) = Record::read(&doc)?;
        let before = record.clone();
        change(&mut record)?;
        self.check(Some(&before), &record)?;
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        record.write(&mut tx)?;
        // Dated (wall clock, ms), so a record's history can say when (see `timeline`).
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(store::now_ms()));
        if doc.get_heads() == before {
            return Ok(()); // nothing changed: nothing to store or send
        }
        // The new change, kept for the push (whether the kept changes are all the server lacks
        // is checked when the push is built).
        let change = hash.and_then(|h| doc.get_change_by_hash(&h));
        let tx = self.store.conn.unchecked_transaction()?;
        save_doc(&tx, &doc_id, kind.as_str(), &doc, &row.server_heads, true)?;
        if heads_to_strings(&before) == row.server_heads {
            // The server had everything before this change: anything still kept is stale.
            store::pending_clear(&tx, &doc_id)?;
        }
        match change {
            Some(c) => store::pending_add(&tx, &doc_id, &c)?,
            // Cannot happen; without it the push must decode the document.
            None => store::pending_clear(&tx, &doc_id)?,
        }
        tx.commit()?;
        Ok(())
    }

    fn customer_view(&self, id: &str) -> Result<CustomerView> {
        match self.load(id, RecordKind::Customer)? {
            (Record::Customer(customer), conflicts, pending) => Ok(CustomerView {
                customer,
                conflicts,
                pending,
            }),
            _ => Err(ClientError::not_found("customer", id)),
        }
    }

    fn project_view(&self, id: &str) -> Result<ProjectView> {
        match self.load(id, RecordKind::Project)? {
            (Record::Project(project), conflicts, pending) => Ok(ProjectView {
                project,
                conflicts,
                pending,
            }),
            _ => Err(ClientError::not_found("project", id)),
        }
    }

    pub(crate) fn list(
        &self,
        kind: RecordKind,
    ) -> Result<Vec<(Record, Vec<fieldsync_sync::Conflict>, bool)>> {
        let mut out = Vec::new();
        for row in store::docs_all(&self.store.conn, Some(kind.as_str()))? {
            // A document this build cannot read (newer schema, damaged) is left out of lists
            // rather than failing the whole list.
            let Ok(doc) = load_doc(&row.bytes, self.device_id) else {
                continue;
            };
            if let Ok((r, c)) = Record::read(&doc) {
                out.push((r, c, row.dirty));
            }
        }
        // By name: the name column is not filled for documents stored straight from a snapshot.
        out.sort_by_cached_key(|(r, _, _)| (record_name(r).to_owned(), r.id().to_string()));
        Ok(out)
    }
}

fn record_name(r: &Record) -> &str {
    match r {
        Record::Customer(c) => &c.name,
        Record::Project(p) => &p.name,
        Record::Visit(v) => &v.purpose,
        Record::Punch(p) => &p.site,
        Record::Makeup(m) => &m.reason,
        Record::Photo(p) => &p.caption,
        Record::Diary(d) => &d.day,
    }
}

fn with_customer(
    change: impl FnOnce(&mut Customer) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Customer(c) => change(c),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a customer.",
        )),
    }
}

fn with_project(
    change: impl FnOnce(&mut Project) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Project(p) => change(p),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a project.",
        )),
    }
}

impl crate::FieldsyncClient {
    /// Creates a customer owned and created by the logged-in user. Validated locally first:
    /// an invalid customer is refused with [`ClientError::Invalid`] and nothing is stored.
    pub fn create_customer(&self, new: NewCustomer) -> Result<CustomerView> {
        let mut inner = self.lock();
        let me = inner.user_id()?;
        let mut c = Customer::new(new.name.trim(), me);
        if let Some(k) = opt(new.kind) {
            c.customer_kind = k.parse()?;
        }
        c.phone = opt(new.phone);
        c.email = opt(new.email);
        c.address = opt(new.address);
        c.location = match (new.lat, new.lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
            (None, None) => None,
            _ => {
                return Err(ClientError::invalid(
                    "incomplete_location",
                    "A location needs both latitude and longitude.",
                ));
            }
        };
        c.tier = opt(new.tier).map(|t| t.parse()).transpose()?;
        if let Some(l) = opt(new.lifecycle) {
            c.lifecycle = l.parse()?;
        }
        c.tags = parse_tags(&new.tags.join(","));
        c.notes = new.notes.unwrap_or_default();
        let id = c.id.to_string();
        inner.create(Record::Customer(c))?;
        inner.customer_view(&id)
    }

    /// Sets fields of a customer (see [`FieldEdit`] for the names), all in one change.
    pub fn edit_customer(&self, id: String, edits: Vec<FieldEdit>) -> Result<CustomerView> {
        let mut inner = self.lock();
        inner.edit(
            &id,
            RecordKind::Customer,
            with_customer(|c| {
                for e in &edits {
                    set_customer_field(c, e.field.trim(), &e.value)?;
                }
                Ok(())
            }),
        )?;
        inner.customer_view(&id)
    }

    /// Replaces a customer with `customer` (same id), writing only the fields that differ.
    pub fn update_customer(&self, customer: Customer) -> Result<CustomerView> {
        let id = customer.id.to_string();
        let mut inner = self.lock();
        inner.edit(
            &id,
            RecordKind::Customer,
            with_customer(|c| {
                *c = customer;
                Ok(())
            }),
        )?;
        inner.customer_view(&id)
    }

    /// Adds a contact person to a customer; returns the contact with its new id.
    pub fn add_contact(&self, customer_id: String, new: NewContact) -> Result<Contact> {
        let contact = Contact {
            id: new_item_id(),
            name: new.name.trim().to_owned(),
            title: opt(new.title),
            phone: opt(new.phone),
            email: opt(new.email),
        };
        let mut inner = self.lock();
        let added = contact.clone();
        inner.edit(
            &customer_id,
            RecordKind::Customer,
            with_customer(move |c| {
                c.contacts.push(added);
                Ok(())
            }),
        )?;
        Ok(contact)
    }

    /// Removes a contact person from a customer.
    pub fn remove_contact(&self, customer_id: String, contact_id: String) -> Result<CustomerView> {
        let mut inner = self.lock();
        inner.edit(
            &customer_id,
            RecordKind::Customer,
            with_customer(|c| {
                let before = c.contacts.len();
                c.contacts.retain(|k| k.id != contact_id);
                if c.contacts.len() == before {
                    return Err(ClientError::not_found("contact", &contact_id));
                }
                Ok(())
            }),
        )?;
        inner.customer_view(&customer_id)
    }

    /// One customer with its conflicts.
    pub fn get_customer(&self, id: String) -> Result<CustomerView> {
        self.lock().customer_view(&id)
    }

    /// Every customer on this device, by name.
    pub fn list_customers(&self) -> Result<Vec<CustomerView>> {
        Ok(self
            .lock()
            .list(RecordKind::Customer)?
            .into_iter()
            .filter_map(|(r, conflicts, pending)| match r {
                Record::Customer(customer) => Some(CustomerView {
                    customer,
                    conflicts,
                    pending,
                }),
                _ => None,
            })
            .collect())
    }

    /// Creates a project created by the logged-in user.
    pub fn create_project(&self, new: NewProject) -> Result<ProjectView> {
        let mut inner = self.lock();
        let me = inner.user_id()?;
        let mut p = Project::new(new.name.trim(), me);
        p.code = opt(new.code);
        p.customer = opt(new.customer_id)
            .map(|c| parse_doc_id(&c, "customer"))
            .transpose()?;
        if let Some(s) = opt(new.status) {
            p.status = s.parse()?;
        }
        let id = p.id.to_string();
        inner.create(Record::Project(p))?;
        inner.project_view(&id)
    }

    /// Sets fields of a project (`name`, `code`, `status`, `customer`).
    pub fn edit_project(&self, id: String, edits: Vec<FieldEdit>) -> Result<ProjectView> {
        let mut inner = self.lock();
        inner.edit(
            &id,
            RecordKind::Project,
            with_project(|p| {
                for e in &edits {
                    set_project_field(p, e.field.trim(), &e.value)?;
                }
                Ok(())
            }),
        )?;
        inner.project_view(&id)
    }

    /// Replaces a project with `project` (same id), writing only what differs.
    pub fn update_project(&self, project: Project) -> Result<ProjectView> {
        let id = project.id.to_string();
        let mut inner = self.lock();
        inner.edit(
            &id,
            RecordKind::Project,
            with_project(|p| {
                *p = project;
                Ok(())
            }),
        )?;
        inner.project_view(&id)
    }

    /// Adds a site to a project; returns it with its new id.
    pub fn add_site(&self, project_id: String, new: NewSite) -> Result<Site> {
        let site = Site {
            id: new_item_id(),
            name: new.name.trim().to_owned(),
            address: opt(new.address),
            timezone: new.timezone.trim().to_owned(),
            geofence: new.geofence,
        };
        let added = site.clone();
        self.lock().edit(
            &project_id,
            RecordKind::Project,
            with_project(move |p| {
                p.sites.push(added);
                Ok(())
            }),
        )?;
        Ok(site)
    }

    /// Adds a member (or changes their role): `role` is `site_manager`, `crew` or `viewer`.
    pub fn add_member(
        &self,
        project_id: String,
        user_id: String,
        role: String,
    ) -> Result<ProjectView> {
        let user = parse_user_id(&user_id)?;
        let role: ProjectRole = role.trim().parse()?;
        let mut inner = self.lock();
        inner.edit(
            &project_id,
            RecordKind::Project,
            with_project(move |p| {
                p.members.retain(|m| m.user != user);
                p.members.push(Member { user, role });
                Ok(())
            }),
        )?;
        inner.project_view(&project_id)
    }

    /// Removes a member from a project.
    pub fn remove_member(&self, project_id: String, user_id: String) -> Result<ProjectView> {
        let user = parse_user_id(&user_id)?;
        let mut inner = self.lock();
        inner.edit(
            &project_id,
            RecordKind::Project,
            with_project(move |p| {
                p.members.retain(|m| m.user != user);
                Ok(())
            }),
        )?;
        inner.project_view(&project_id)
    }

    /// Adds a milestone (`due` as `YYYY-MM-DD`); returns it with its new id.
    pub fn add_milestone(
        &self,
        project_id: String,
        name: String,
        due: Option<String>,
    ) -> Result<Milestone> {
        let m = Milestone {
            id: new_item_id(),
            name: name.trim().to_owned(),
            due: opt(due),
            status: MilestoneStatus::Pending,
        };
        let added = m.clone();
        self.lock().edit(
            &project_id,
            RecordKind::Project,
            with_project(move |p| {
                p.milestones.push(added);
                Ok(())
            }),
        )?;
        Ok(m)
    }

    /// One project with its conflicts.
    pub fn get_project(&self, id: String) -> Result<ProjectView> {
        self.lock().project_view(&id)
    }

    /// Every project on this device, by name.
    pub fn list_projects(&self) -> Result<Vec<ProjectView>> {
        Ok(self
            .lock()
            .list(RecordKind::Project)?
            .into_iter()
            .filter_map(|(r, conflicts, pending)| match r {
                Record::Project(project) => Some(ProjectView {
                    project,
                    conflicts,
                    pending,
                }),
                _ => None,
            })
            .collect())
    }
}
