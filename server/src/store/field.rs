//! The field-work part of a push, pure: checks that need what the server knows beyond the record
//! itself (is the worker assigned to the site, does the customer exist, is another visit open,
//! is the event dated in the future) and the grading of every new field event's location
//! evidence. The SQL that loads the [`FieldContext`] and writes the rows lives in `sql.rs`.

use super::sql::Decision;
use fieldsync_sync::Record;
use fieldsync_sync::Rejection;
use fieldsync_sync::evidence::Evidence;
use fieldsync_sync::record::GeoPoint;
use fieldsync_sync::record::photo::AttachKind;
use fieldsync_sync::record::project::Geofence;
use fieldsync_sync::record::punch::MakeupStatus;
use fieldsync_sync::record::visit::ReviewDecision;
use fieldsync_sync::trust::{self, Policy, PriorEvent, Target, Verdict};
use std::collections::{HashMap, HashSet};

/// How far ahead of the server's clock an event may be dated (phones' clocks drift).
pub const FUTURE_TOLERANCE_MS: i64 = 5 * 60_000;

/// A project site, as the checks need it.
#[derive(Clone, Debug)]
pub struct SiteInfo {
    pub project_name: String,
    pub name: String,
    pub fence: Option<Geofence>,
}

/// A customer, as the checks need it.
#[derive(Clone, Debug)]
pub struct CustomerInfo {
    pub name: String,
    pub location: Option<GeoPoint>,
    pub radius_m: Option<f64>,
}

/// A visit's open interval: from check-in to check-out (or auto-close).
#[derive(Clone, Debug)]
pub struct OpenSpan {
    pub visit: String,
    pub customer: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What the checks need to know, loaded for the documents of one push.
#[derive(Debug, Default)]
pub struct FieldContext {
    pub policy: Policy,
    pub now_ms: i64,
    /// (project, site) → site.
    pub sites: HashMap<(String, String), SiteInfo>,
    /// (user, project, site) the user is assigned to.
    pub assignments: HashSet<(String, String, String)>,
    pub customers: HashMap<String, CustomerInfo>,
    /// rep → visits of theirs that were open around the pushed check-ins.
    pub visit_spans: HashMap<String, Vec<OpenSpan>>,
    /// user → their recent graded events.
    pub recent: HashMap<String, Vec<PriorEvent>>,
    /// (doc, event) already graded.
    pub graded: HashSet<(String, &'static str)>,
    /// visit → its customer, for photos attached to visits.
    pub visit_customers: HashMap<String, String>,
    /// Projects that exist (a project may have no sites yet).
    pub projects: HashSet<String>,
}

/// What the context must be loaded for.
#[derive(Debug, Default)]
pub struct Needs {
    pub sites: HashSet<(String, String)>,
    pub users: HashSet<String>,
    pub customers: HashSet<String>,
    pub docs: Vec<String>,
    /// Visits photos are attached to.
    pub visits: HashSet<String>,
    /// Earliest and latest event time in the push.
    pub span_ms: Option<(i64, i64)>,
}

/// One field event to record with its verdict.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub doc_id: String,
    pub event: &'static str,
    pub user: String,
    pub evidence: Evidence,
    pub customer: Option<String>,
    pub project: Option<String>,
    pub site: Option<String>,
    pub direction: Option<&'static str>,
    pub target_name: Option<String>,
    pub verdict: Verdict,
}

/// A visit's projection row.
#[derive(Clone, Debug)]
pub struct VisitRow {
    pub id: String,
    pub customer: String,
    pub rep: String,
    pub planned_date: Option<String>,
    pub purpose: String,
    pub cancelled: bool,
    pub check_in_at: Option<i64>,
    pub check_out_at: Option<i64>,
    pub auto_close_at: Option<i64>,
    pub outcome: Option<&'static str>,
    pub notes: Option<String>,
    pub next_follow_up: Option<String>,
    pub review_status: &'static str,
    pub reviews: String,
}

/// A make-up request's projection row.
#[derive(Clone, Debug)]
pub struct MakeupRow {
    pub id: String,
    pub user: String,
    pub project: String,
    pub site: String,
    pub direction: &'static str,
    pub at_ms: i64,
    pub reason: String,
    pub status: &'static str,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
}

/// A photo's projection row.
#[derive(Clone, Debug)]
pub struct PhotoRow {
    pub id: String,
    pub author: String,
    pub sha256: String,
    pub size: i64,
    pub mime: String,
    pub attach_kind: &'static str,
    pub attach_id: String,
    pub project: Option<String>,
    pub site: Option<String>,
    pub day: Option<String>,
    pub captured_at: i64,
    pub point: Option<(f64, f64, f64)>,
    pub caption: String,
    pub tags: String,
    pub status: &'static str,
    pub reviews: String,
    pub comments: String,
}

/// Everything field-related one push writes.
#[derive(Debug, Default)]
pub struct FieldWrites {
    pub events: Vec<EventRow>,
    pub visits: Vec<VisitRow>,
    pub makeups: Vec<MakeupRow>,
    pub photos: Vec<PhotoRow>,
    pub diaries: Vec<DiaryRow>,
}

/// A site diary's projection row.
#[derive(Clone, Debug)]
pub struct DiaryRow {
    pub id: String,
    pub project: String,
    pub site: String,
    pub day: String,
    pub locked: bool,
    pub signed_by: Option<String>,
    pub signed_at: Option<i64>,
    pub record: String,
}

fn accepted_record(d: &Decision) -> Option<&Record> {
    d.write.as_ref().map(|w| &w.record)
}

/// Whether any decision writes a field record (so the context is worth loading).
pub fn touches_field(decisions: &[Decision]) -> bool {
    decisions.iter().any(|d| {
        matches!(
            accepted_record(d),
            Some(
                Record::Visit(_)
                    | Record::Punch(_)
                    | Record::Makeup(_)
                    | Record::Photo(_)
                    | Record::Diary(_)
            )
        )
    })
}

/// What to load for these decisions.
pub fn needs(decisions: &[Decision]) -> Needs {
    let mut n = Needs::default();
    let mut widen = |t: i64| {
        n.span_ms = Some(match n.span_ms {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        })
    };
    let mut sites = HashSet::new();
    let mut users = HashSet::new();
    let mut customers = HashSet::new();
    let mut docs = Vec::new();
    let mut visits = HashSet::new();
    for d in decisions {
        match accepted_record(d) {
            Some(Record::Visit(v)) => {
                users.insert(v.rep.as_string());
                customers.insert(v.customer.as_string());
                docs.push(v.id.as_string());
                if let Some(ci) = &v.check_in {
                    widen(ci.event_time_ms());
                }
                if let Some(co) = &v.check_out {
                    widen(co.evidence.event_time_ms());
                }
            }
            Some(Record::Punch(p)) => {
                users.insert(p.user.as_string());
                sites.insert((p.project.as_string(), p.site.clone()));
                docs.push(p.id.as_string());
                widen(p.evidence.event_time_ms());
            }
            Some(Record::Makeup(m)) => {
                users.insert(m.user.as_string());
                sites.insert((m.project.as_string(), m.site.clone()));
            }
            Some(Record::Photo(p)) => {
                users.insert(p.author.as_string());
                docs.push(p.id.as_string());
                let target = p.attached_to.id.as_string();
                match p.attached_to.kind {
                    AttachKind::Customer => {
                        customers.insert(target);
                    }
                    AttachKind::Visit => {
                        visits.insert(target);
                    }
                    // Loading any site of a project loads all of them.
                    AttachKind::Project => {
                        sites.insert((target, String::new()));
                    }
                    AttachKind::SiteDay => {
                        sites.insert((target, p.attached_to.site.clone().unwrap_or_default()));
                    }
                }
                if let Some(e) = &p.evidence {
                    widen(e.event_time_ms());
                }
            }
            Some(Record::Diary(d)) => {
                sites.insert((d.project.as_string(), d.site.clone()));
            }
            _ => {}
        }
    }
    n.sites = sites;
    n.users = users;
    n.customers = customers;
    n.docs = docs;
    n.visits = visits;
    n
}

/// Checks the field records of a push against the context, turning unacceptable ones into
/// rejections, and grades every new event. Events are graded in time order per user, each
/// against the ones before it, so a day made offline and pushed at once is graded as it happened.
pub fn check(
    decisions: &mut [Decision],
    stored: &HashMap<String, Vec<u8>>,
    ctx: &mut FieldContext,
) -> FieldWrites {
    let mut out = FieldWrites::default();
    let mut pending: Vec<(usize, EventRow)> = Vec::new();
    // A visit checked into before and checked out in this push is open only until that
    // check-out, whatever order the push lists it in (the next visit's check-in may come first).
    for d in decisions.iter() {
        if let Some(Record::Visit(v)) = accepted_record(d)
            && let Some(co) = &v.check_out
            && let Some(spans) = ctx.visit_spans.get_mut(&v.rep.as_string())
        {
            let id = v.id.as_string();
            for s in spans.iter_mut().filter(|s| s.visit == id) {
                s.to_ms = co.evidence.event_time_ms().max(s.from_ms + 1);
            }
        }
    }
    for (i, d) in decisions.iter_mut().enumerate() {
        let verdict = match accepted_record(d) {
            Some(Record::Visit(v)) => check_visit(v, ctx, &mut pending, i).map(|span| {
                if let Some(span) = span {
                    ctx.visit_spans
                        .entry(v.rep.as_string())
                        .or_default()
                        .push(span);
                }
            }),
            Some(Record::Punch(p)) => check_punch(p, ctx, &mut pending, i),
            Some(Record::Makeup(m)) => check_makeup(m, ctx),
            Some(Record::Photo(p)) => check_photo(p, ctx, &mut pending, i),
            Some(Record::Diary(d)) => check_diary(d, ctx),
            _ => Ok(()),
        };
        if let Err(e) = verdict {
            let id = d.result.doc_id().as_string();
            super::sql::reject_decision(d, stored.get(&id), e);
            pending.retain(|(j, _)| *j != i);
        }
    }
    pending.sort_by_key(|(_, e)| e.evidence.event_time_ms());
    for (_, mut e) in pending {
        let recent = ctx.recent.entry(e.user.clone()).or_default();
        let target = match (&e.customer, &e.project, &e.site) {
            (Some(c), _, _) => {
                let info = ctx.customers.get(c);
                Target::Customer {
                    name: info.map(|i| i.name.as_str()).unwrap_or("the customer"),
                    location: info.and_then(|i| i.location),
                    radius_m: info
                        .and_then(|i| i.radius_m)
                        .unwrap_or(ctx.policy.default_radius_m),
                }
            }
            (None, Some(p), Some(s)) => {
                let info = ctx.sites.get(&(p.clone(), s.clone()));
                Target::Site {
                    name: info.map(|i| i.name.as_str()).unwrap_or(s.as_str()),
                    fence: info.and_then(|i| i.fence.as_ref()),
                    margin_m: 0.0,
                }
            }
            // A photo of a whole project: the nearest of its sites.
            (None, Some(p), None) => {
                let here = e.evidence.point();
                let nearest = ctx
                    .sites
                    .iter()
                    .filter(|((proj, _), i)| proj == p && i.fence.is_some())
                    .filter_map(|(_, i)| {
                        i.fence
                            .as_ref()
                            .map(|f| (trust::distance_to_fence_m(here, f), i))
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, i)| i);
                Target::Site {
                    name: nearest.map(|i| i.name.as_str()).unwrap_or("the project"),
                    fence: nearest.and_then(|i| i.fence.as_ref()),
                    margin_m: 0.0,
                }
            }
            _ => Target::Site {
                name: "unknown",
                fence: None,
                margin_m: 0.0,
            },
        };
        let what = match e.event {
            "visit_check_in" => "check-in",
            "visit_check_out" => "check-out",
            "photo" => "photo",
            _ => "punch",
        };
        e.target_name = Some(match &target {
            Target::Customer { name, .. } | Target::Site { name, .. } => (*name).to_owned(),
        });
        e.verdict = trust::grade(what, &e.evidence, &target, recent, &ctx.policy);
        recent.push(PriorEvent {
            time_ms: e.evidence.event_time_ms(),
            lat: e.evidence.lat,
            lon: e.evidence.lon,
            accuracy_m: e.evidence.accuracy_m,
        });
        ctx.graded.insert((e.doc_id.clone(), e.event));
        out.events.push(e);
    }
    for d in decisions.iter() {
        match accepted_record(d) {
            Some(Record::Visit(v)) => out.visits.push(visit_row(v, &ctx.policy)),
            Some(Record::Photo(p)) => out.photos.push(photo_row(p)),
            Some(Record::Diary(d)) => out.diaries.push(diary_row(d)),
            Some(Record::Makeup(m)) => out.makeups.push(MakeupRow {
                id: m.id.as_string(),
                user: m.user.as_string(),
                project: m.project.as_string(),
                site: m.site.clone(),
                direction: m.direction.as_str(),
                at_ms: m.at_ms,
                reason: m.reason.clone(),
                status: match m.decision.as_ref().map(|d| d.status) {
                    None => "pending",
                    Some(MakeupStatus::Approved) => "approved",
                    Some(MakeupStatus::Rejected) => "rejected",
                },
                decided_by: m.decision.as_ref().map(|d| d.by.as_string()),
                decided_at: m.decision.as_ref().map(|d| d.at_ms),
                comment: m.decision.as_ref().and_then(|d| d.comment.clone()),
            }),
            _ => {}
        }
    }
    out
}

fn visit_row(v: &fieldsync_sync::Visit, policy: &Policy) -> VisitRow {
    let check_in_at = v.check_in.as_ref().map(Evidence::event_time_ms);
    VisitRow {
        id: v.id.as_string(),
        customer: v.customer.as_string(),
        rep: v.rep.as_string(),
        planned_date: v.planned_date.clone(),
        purpose: v.purpose.clone(),
        cancelled: v.cancelled,
        check_in_at,
        check_out_at: v.check_out.as_ref().map(|c| c.evidence.event_time_ms()),
        auto_close_at: check_in_at.map(|t| t.saturating_add(policy.visit_auto_close_ms)),
        outcome: v.check_out.as_ref().map(|c| c.outcome.as_str()),
        notes: v.check_out.as_ref().map(|c| c.notes.clone()),
        next_follow_up: v.check_out.as_ref().and_then(|c| c.next_follow_up.clone()),
        review_status: if v
            .reviews
            .iter()
            .any(|r| r.decision == ReviewDecision::Approved)
        {
            "approved"
        } else if v.reviews.is_empty() {
            "none"
        } else {
            "commented"
        },
        reviews: serde_json::to_string(&v.reviews).unwrap_or_else(|_| "[]".into()),
    }
}

fn not_future(t: i64, what: &str, ctx: &FieldContext) -> Result<(), Rejection> {
    if t > ctx.now_ms + FUTURE_TOLERANCE_MS {
        return Err(Rejection::new(
            "future_time",
            format!(
                "The {what} is dated {} in the future; check the phone's clock.",
                trust::human_duration(t - ctx.now_ms)
            ),
        ));
    }
    Ok(())
}

fn site_for<'c>(
    ctx: &'c FieldContext,
    user: &str,
    project: &str,
    site: &str,
) -> Result<&'c SiteInfo, Rejection> {
    let info = ctx
        .sites
        .get(&(project.to_owned(), site.to_owned()))
        .ok_or_else(|| {
            Rejection::new(
                "unknown_site",
                format!("Project {project} has no site '{site}'."),
            )
        })?;
    if !ctx
        .assignments
        .contains(&(user.to_owned(), project.to_owned(), site.to_owned()))
    {
        return Err(Rejection::new(
            "not_assigned",
            format!(
                "You are not assigned to site {} of {}; ask your manager to assign you.",
                info.name, info.project_name
            ),
        ));
    }
    Ok(info)
}

fn event_row(doc: String, event: &'static str, user: String, evidence: &Evidence) -> EventRow {
    EventRow {
        doc_id: doc,
        event,
        user,
        evidence: evidence.clone(),
        customer: None,
        project: None,
        site: None,
        direction: None,
        target_name: None,
        verdict: Verdict {
            level: trust::TrustLevel::Unverifiable,
            reasons: Vec::new(),
            distance_m: None,
            allowed_m: None,
            event_time_ms: evidence.event_time_ms(),
        },
    }
}

fn check_punch(
    p: &fieldsync_sync::Punch,
    ctx: &FieldContext,
    pending: &mut Vec<(usize, EventRow)>,
    i: usize,
) -> Result<(), Rejection> {
    let id = p.id.as_string();
    if ctx.graded.contains(&(id.clone(), "punch")) {
        return Ok(());
    }
    not_future(p.evidence.event_time_ms(), "punch", ctx)?;
    let user = p.user.as_string();
    let project = p.project.as_string();
    site_for(ctx, &user, &project, &p.site)?;
    let mut row = event_row(id, "punch", user, &p.evidence);
    row.project = Some(project);
    row.site = Some(p.site.clone());
    row.direction = Some(p.direction.as_str());
    pending.push((i, row));
    Ok(())
}

fn check_makeup(m: &fieldsync_sync::Makeup, ctx: &FieldContext) -> Result<(), Rejection> {
    if m.decision.is_some() {
        // Deciding is checked by the shared rules; the request itself was checked when made.
        return Ok(());
    }
    not_future(m.at_ms, "make-up punch", ctx)?;
    site_for(ctx, &m.user.as_string(), &m.project.as_string(), &m.site)?;
    Ok(())
}

fn check_visit(
    v: &fieldsync_sync::Visit,
    ctx: &FieldContext,
    pending: &mut Vec<(usize, EventRow)>,
    i: usize,
) -> Result<Option<OpenSpan>, Rejection> {
    let id = v.id.as_string();
    let customer = v.customer.as_string();
    if !ctx.customers.contains_key(&customer) {
        return Err(Rejection::new(
            "unknown_customer",
            "The visit's customer does not exist in this company.",
        ));
    }
    let rep = v.rep.as_string();
    let mut span = None;
    if let Some(ci) = &v.check_in
        && !ctx.graded.contains(&(id.clone(), "visit_check_in"))
    {
        let t = ci.event_time_ms();
        not_future(t, "check-in", ctx)?;
        let end = v
            .check_out
            .as_ref()
            .map(|c| c.evidence.event_time_ms())
            .unwrap_or_else(|| t.saturating_add(ctx.policy.visit_auto_close_ms));
        let overlapping = ctx
            .visit_spans
            .get(&rep)
            .into_iter()
            .flatten()
            .find(|s| s.visit != id && s.from_ms < end.max(t + 1) && t < s.to_ms);
        if let Some(s) = overlapping {
            let name = ctx
                .customers
                .get(&s.customer)
                .map(|c| c.name.as_str())
                .unwrap_or("another customer");
            return Err(Rejection::new(
                "visit_already_open",
                format!("Your visit to {name} was open at the same time; check out of it first."),
            ));
        }
        span = Some(OpenSpan {
            visit: id.clone(),
            customer: customer.clone(),
            from_ms: t,
            to_ms: end.max(t + 1),
        });
        let mut row = event_row(id.clone(), "visit_check_in", rep.clone(), ci);
        row.customer = Some(customer.clone());
        pending.push((i, row));
    }
    if let (Some(ci), Some(co)) = (&v.check_in, &v.check_out)
        && !ctx.graded.contains(&(id.clone(), "visit_check_out"))
    {
        let t = co.evidence.event_time_ms();
        not_future(t, "check-out", ctx)?;
        let deadline = ci
            .event_time_ms()
            .saturating_add(ctx.policy.visit_auto_close_ms);
        if t > deadline {
            return Err(Rejection::new(
                "visit_auto_closed",
                format!(
                    "The visit was closed automatically {} after its check-in; plan a new visit to report on it.",
                    trust::human_duration(ctx.policy.visit_auto_close_ms)
                ),
            ));
        }
        let mut row = event_row(id, "visit_check_out", rep, &co.evidence);
        row.customer = Some(customer);
        pending.push((i, row));
    }
    Ok(span)
}

fn check_photo(
    p: &fieldsync_sync::Photo,
    ctx: &FieldContext,
    pending: &mut Vec<(usize, EventRow)>,
    i: usize,
) -> Result<(), Rejection> {
    let id = p.id.as_string();
    let target = p.attached_to.id.as_string();
    let missing = |what: &str| {
        Rejection::new(
            "unknown_attachment",
            format!("The photo is attached to a {what} that does not exist in this company."),
        )
    };
    let (customer, project, site) = match p.attached_to.kind {
        AttachKind::Customer => {
            if !ctx.customers.contains_key(&target) {
                return Err(missing("customer"));
            }
            (Some(target), None, None)
        }
        AttachKind::Visit => {
            let c = ctx
                .visit_customers
                .get(&target)
                .ok_or_else(|| missing("visit"))?;
            (Some(c.clone()), None, None)
        }
        AttachKind::Project => {
            if !ctx.sites.keys().any(|(proj, _)| *proj == target) && !ctx.projects.contains(&target)
            {
                return Err(missing("project"));
            }
            (None, Some(target), None)
        }
        AttachKind::SiteDay => {
            let s = p.attached_to.site.clone().unwrap_or_default();
            if !ctx.sites.contains_key(&(target.clone(), s.clone())) {
                return Err(missing("project site"));
            }
            (None, Some(target), Some(s))
        }
    };
    let Some(ev) = &p.evidence else {
        return Ok(());
    };
    if ctx.graded.contains(&(id.clone(), "photo")) {
        return Ok(());
    }
    not_future(ev.event_time_ms(), "photo", ctx)?;
    let mut row = event_row(id, "photo", p.author.as_string(), ev);
    row.customer = customer;
    row.project = project;
    row.site = site;
    pending.push((i, row));
    Ok(())
}

/// A diary is of a site its project has.
fn check_diary(d: &fieldsync_sync::Diary, ctx: &FieldContext) -> Result<(), Rejection> {
    if ctx
        .sites
        .contains_key(&(d.project.as_string(), d.site.clone()))
    {
        Ok(())
    } else {
        Err(Rejection::new(
            "unknown_site",
            format!(
                "The project has no site '{}'; a site diary is kept for one of the project's sites.",
                d.site
            ),
        ))
    }
}

fn diary_row(d: &fieldsync_sync::Diary) -> DiaryRow {
    let signed = d.last_event().filter(|_| d.is_locked());
    DiaryRow {
        id: d.id.as_string(),
        project: d.project.as_string(),
        site: d.site.clone(),
        day: d.day.clone(),
        locked: d.is_locked(),
        signed_by: signed.map(|e| e.by.as_string()),
        signed_at: signed.map(|e| e.at_ms),
        record: serde_json::to_string(d).unwrap_or_else(|_| "{}".into()),
    }
}

fn photo_row(p: &fieldsync_sync::Photo) -> PhotoRow {
    let on_project = matches!(
        p.attached_to.kind,
        AttachKind::Project | AttachKind::SiteDay
    );
    PhotoRow {
        id: p.id.as_string(),
        author: p.author.as_string(),
        sha256: p.sha256.clone(),
        size: i64::try_from(p.size).unwrap_or(i64::MAX),
        mime: p.mime.clone(),
        attach_kind: p.attached_to.kind.as_str(),
        attach_id: p.attached_to.id.as_string(),
        project: on_project.then(|| p.attached_to.id.as_string()),
        site: p.attached_to.site.clone(),
        day: p.attached_to.day.clone(),
        captured_at: p.captured_at_ms,
        point: p.evidence.as_ref().map(|e| (e.lat, e.lon, e.accuracy_m)),
        caption: p.caption.clone(),
        tags: serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()),
        status: p.status().map_or("pending", |d| d.as_str()),
        reviews: serde_json::to_string(&p.reviews).unwrap_or_else(|_| "[]".into()),
        comments: serde_json::to_string(&p.comments).unwrap_or_else(|_| "[]".into()),
    }
}
