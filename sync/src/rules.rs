//! Whether a change is acceptable: the record it produces must be well-formed (types, ranges,
//! required fields), must not alter fields that are fixed once set, and the caller's role must
//! allow it. The server runs [`check_change`] on the merged result of every incoming change; the
//! phone runs the same function before it commits an edit locally.

use crate::access::{Caller, Directory, Role};
use crate::error::Rejection;
use crate::ids::DocId;
use crate::record::diary::{DIARY_LISTS, Diary, DiaryAction, SignEvent};
use crate::record::photo::{AttachKind, MAX_PHOTO_BYTES, PHOTO_MIME, Photo, PhotoDecision};
use crate::record::project::{Geofence, ProjectRole};
use crate::record::punch::{Makeup, Punch};
use crate::record::visit::{ReviewDecision, Visit};
use crate::record::{Customer, GeoPoint, Project, Record};

/// Geofence circles may be this small or this large (metres).
pub const FENCE_RADIUS_M: std::ops::RangeInclusive<f64> = 10.0..=10_000.0;
const MAX_NAME: usize = 200;
const MAX_SHORT: usize = 500;
const MAX_NOTES: usize = 100_000;
const MAX_TAGS: usize = 50;

fn reject(code: &str, message: impl Into<String>) -> Result<(), Rejection> {
    Err(Rejection::new(code, message))
}

/// Checks a coordinate pair, naming the field in the message.
pub fn check_point(p: &GeoPoint, field: &str) -> Result<(), Rejection> {
    if !p.lat.is_finite() || !(-90.0..=90.0).contains(&p.lat) {
        return reject(
            "invalid_latitude",
            format!("Latitude {} in '{field}' is outside -90..90.", p.lat),
        );
    }
    if !p.lon.is_finite() || !(-180.0..=180.0).contains(&p.lon) {
        return reject(
            "invalid_longitude",
            format!("Longitude {} in '{field}' is outside -180..180.", p.lon),
        );
    }
    Ok(())
}

fn check_text(value: &str, field: &str, max: usize, required: bool) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return reject(
            "missing_field",
            format!("Field '{field}' must not be empty."),
        );
    }
    if value.chars().count() > max {
        return reject(
            "field_too_long",
            format!("Field '{field}' is longer than {max} characters."),
        );
    }
    Ok(())
}

fn check_phone(value: &str, field: &str) -> Result<(), Rejection> {
    check_text(value, field, 40, false)?;
    let ok = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && value.chars().filter(char::is_ascii_digit).count() >= 3;
    if !ok {
        return reject(
            "invalid_phone",
            format!("'{value}' in '{field}' is not a phone number."),
        );
    }
    Ok(())
}

fn check_email(value: &str, field: &str) -> Result<(), Rejection> {
    check_text(value, field, 254, false)?;
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !value.contains(' ')
        }
        None => false,
    };
    if !ok {
        return reject(
            "invalid_email",
            format!("'{value}' in '{field}' is not an email address."),
        );
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn check_date(value: &str, field: &str) -> Result<(), Rejection> {
    let bad = || {
        Rejection::new(
            "invalid_date",
            format!("'{value}' in '{field}' is not a date (YYYY-MM-DD)."),
        )
    };
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (u32, u32, u32) = match (parts[0].parse(), parts[1].parse(), parts[2].parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err(bad()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok(())
}

/// Checks a customer's content.
pub fn check_customer(c: &Customer) -> Result<(), Rejection> {
    check_text(&c.name, "name", MAX_NAME, true)?;
    if let Some(p) = &c.phone {
        check_phone(p, "phone")?;
    }
    if let Some(e) = &c.email {
        check_email(e, "email")?;
    }
    if let Some(a) = &c.address {
        check_text(a, "address", MAX_SHORT, false)?;
    }
    if let Some(l) = &c.location {
        check_point(l, "location")?;
    }
    if let Some(r) = c.visit_radius_m
        && (!r.is_finite() || !crate::trust::RADIUS_RANGE_M.contains(&r))
    {
        return reject(
            "invalid_radius",
            format!("A customer's visit radius must be between 100 and 3000 metres, not {r}."),
        );
    }
    for k in &c.contacts {
        let path = format!("contacts.{}", k.id);
        check_text(&k.name, &format!("{path}.name"), MAX_NAME, true)?;
        if let Some(t) = &k.title {
            check_text(t, &format!("{path}.title"), MAX_NAME, false)?;
        }
        if let Some(p) = &k.phone {
            check_phone(p, &format!("{path}.phone"))?;
        }
        if let Some(e) = &k.email {
            check_email(e, &format!("{path}.email"))?;
        }
    }
    if c.tags.len() > MAX_TAGS {
        return reject(
            "too_many_tags",
            format!("A customer can have at most {MAX_TAGS} tags."),
        );
    }
    for t in &c.tags {
        check_text(t, "tags", 50, true)?;
    }
    check_text(&c.notes, "notes", MAX_NOTES, false)
}

fn check_fence(f: &Geofence, field: &str) -> Result<(), Rejection> {
    match f {
        Geofence::Circle { center, radius_m } => {
            check_point(center, field)?;
            if !radius_m.is_finite() || !FENCE_RADIUS_M.contains(radius_m) {
                return reject(
                    "invalid_geofence",
                    format!(
                        "The radius of '{field}' must be between 10 and 10000 metres, not {radius_m}."
                    ),
                );
            }
        }
        Geofence::Polygon { points } => {
            if points.len() < 3 || points.len() > 500 {
                return reject(
                    "invalid_geofence",
                    format!("The polygon '{field}' needs 3 to 500 points."),
                );
            }
            for p in points {
                check_point(p, field)?;
            }
            use geo::{Area, Validation};
            let poly = geo::Polygon::new(
                points
                    .iter()
                    .map(|p| geo::coord! { x: p.lon, y: p.lat })
                    .collect(),
                vec![],
            );
            if poly.unsigned_area() <= 0.0 || !poly.is_valid() {
                return reject(
                    "invalid_geofence",
                    format!("The polygon '{field}' crosses itself or encloses no area."),
                );
            }
        }
    }
    Ok(())
}

/// Checks a project's content.
pub fn check_project(p: &Project) -> Result<(), Rejection> {
    check_text(&p.name, "name", MAX_NAME, true)?;
    if let Some(code) = &p.code {
        check_text(code, "code", 50, true)?;
    }
    for s in &p.sites {
        let path = format!("sites.{}", s.id);
        check_text(&s.name, &format!("{path}.name"), MAX_NAME, true)?;
        if let Some(a) = &s.address {
            check_text(a, &format!("{path}.address"), MAX_SHORT, false)?;
        }
        if s.timezone.parse::<chrono_tz::Tz>().is_err() {
            return reject(
                "invalid_timezone",
                format!(
                    "'{}' in '{path}.timezone' is not an IANA time zone such as Europe/Berlin.",
                    s.timezone
                ),
            );
        }
        if let Some(f) = &s.geofence {
            check_fence(f, &format!("{path}.geofence"))?;
        }
    }
    for m in &p.milestones {
        let path = format!("milestones.{}", m.id);
        check_text(&m.name, &format!("{path}.name"), MAX_NAME, true)?;
        if let Some(d) = &m.due {
            check_date(d, &format!("{path}.due"))?;
        }
    }
    Ok(())
}

fn forbidden(message: impl Into<String>) -> Result<(), Rejection> {
    reject("forbidden", message)
}

/// Whether `caller` may change a customer currently owned by `owner`.
pub fn may_edit_customer(caller: &Caller, owner: crate::UserId, dir: &dyn Directory) -> bool {
    match caller.role {
        Role::Admin => true,
        // Managers keep the shared pool: they may edit and hand out pooled customers.
        Role::Manager => dir.is_self_or_report(caller.user, owner) || crate::access::is_pool(owner),
        Role::FieldRep | Role::SiteManager => owner == caller.user,
        Role::Hr => false,
    }
}

/// Whether `caller` may change the project (as it is before the change).
pub fn may_edit_project(caller: &Caller, p: &Project) -> bool {
    caller.role == Role::Admin
        || p.created_by == caller.user
        || p.role_of(caller.user) == Some(ProjectRole::SiteManager)
}

fn check_customer_change(
    before: Option<&Customer>,
    after: &Customer,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    check_customer(after)?;
    match before {
        None => {
            if caller.role == Role::Hr {
                return forbidden("HR accounts cannot create customers.");
            }
            if after.created_by != caller.user {
                return forbidden("A new customer's 'created_by' must be the person creating it.");
            }
        }
        Some(b) => {
            if !may_edit_customer(caller, b.owner, dir) {
                return forbidden(format!(
                    "You may not change the customer '{}': it is not assigned to you or your team.",
                    b.name
                ));
            }
            if after.created_by != b.created_by {
                return reject(
                    "immutable_field",
                    "Field 'created_by' cannot change once set.",
                );
            }
        }
    }
    let owner_changed = before.is_none_or(|b| b.owner != after.owner);
    if owner_changed && after.is_pooled() {
        // Into the shared pool: an admin's handover, nobody else's.
        if caller.role != Role::Admin {
            return reject(
                "pool_not_allowed",
                "Only an admin can put a customer into the shared pool (by a staff handover).",
            );
        }
        return Ok(());
    }
    if owner_changed {
        let allowed = match caller.role {
            Role::Admin => true,
            Role::Manager => dir.is_self_or_report(caller.user, after.owner),
            _ => after.owner == caller.user && before.is_none(),
        };
        if !allowed {
            return reject(
                "owner_not_allowed",
                "Only a manager (within their team) or an admin can assign a customer to someone else.",
            );
        }
        if dir.active_role(after.owner).is_none() {
            return reject(
                "unknown_owner",
                "The customer's owner is not an active user of this company.",
            );
        }
    }
    Ok(())
}

fn check_project_change(
    before: Option<&Project>,
    after: &Project,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    check_project(after)?;
    match before {
        None => {
            if !matches!(caller.role, Role::Admin | Role::Manager | Role::SiteManager) {
                return forbidden("Only managers, site managers and admins can create projects.");
            }
            if after.created_by != caller.user {
                return forbidden("A new project's 'created_by' must be the person creating it.");
            }
        }
        Some(b) => {
            if !may_edit_project(caller, b) {
                return forbidden(format!(
                    "You may not change the project '{}': only its site managers and admins can.",
                    b.name
                ));
            }
            if after.created_by != b.created_by {
                return reject(
                    "immutable_field",
                    "Field 'created_by' cannot change once set.",
                );
            }
            if b.code.is_some() && after.code != b.code {
                return reject(
                    "immutable_field",
                    "A project's code cannot change once set.",
                );
            }
        }
    }
    for m in &after.members {
        let is_new = before.is_none_or(|b| b.role_of(m.user).is_none());
        if is_new && dir.active_role(m.user).is_none() {
            return reject(
                "unknown_member",
                format!("Member {} is not an active user of this company.", m.user),
            );
        }
    }
    Ok(())
}

/// Checks that `after` (the merged record) is an acceptable successor of `before` (the stored
/// record, `None` for a new one) when written by `caller`.
pub fn check_change(
    doc_id: DocId,
    before: Option<&Record>,
    after: &Record,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    if after.id() != doc_id {
        return reject(
            "id_mismatch",
            "The record's 'id' field does not match its document id.",
        );
    }
    if before.is_some_and(|b| b.kind() != after.kind()) {
        return reject("immutable_field", "A record's kind cannot change.");
    }
    match (before, after) {
        (None, Record::Customer(a)) => check_customer_change(None, a, caller, dir),
        (Some(Record::Customer(b)), Record::Customer(a)) => {
            check_customer_change(Some(b), a, caller, dir)
        }
        (None, Record::Project(a)) => check_project_change(None, a, caller, dir),
        (Some(Record::Project(b)), Record::Project(a)) => {
            check_project_change(Some(b), a, caller, dir)
        }
        (None, Record::Visit(a)) => check_visit_change(None, a, caller, dir),
        (Some(Record::Visit(b)), Record::Visit(a)) => check_visit_change(Some(b), a, caller, dir),
        (None, Record::Punch(a)) => check_new_punch(a, caller),
        (Some(Record::Punch(b)), Record::Punch(a)) => {
            if a == b {
                Ok(())
            } else {
                reject(
                    "punch_immutable",
                    "Punches cannot be changed or deleted; a missed or wrong punch is fixed by a make-up request your manager approves.",
                )
            }
        }
        (None, Record::Photo(a)) => check_photo_change(None, a, caller),
        (Some(Record::Photo(b)), Record::Photo(a)) => check_photo_change(Some(b), a, caller),
        (None, Record::Diary(a)) => check_diary_change(None, a, caller, dir),
        (Some(Record::Diary(b)), Record::Diary(a)) => check_diary_change(Some(b), a, caller, dir),
        (None, Record::Makeup(a)) => check_makeup_change(None, a, caller, dir),
        (Some(Record::Makeup(b)), Record::Makeup(a)) => {
            check_makeup_change(Some(b), a, caller, dir)
        }
        _ => reject("immutable_field", "A record's kind cannot change."),
    }
}

/// Checks a visit's content.
pub fn check_visit(v: &Visit) -> Result<(), Rejection> {
    if let Some(d) = &v.planned_date {
        check_date(d, "planned_date")?;
    }
    check_text(&v.purpose, "purpose", MAX_SHORT, false)?;
    if let Some(ev) = &v.check_in {
        ev.check("check_in")?;
        if v.cancelled {
            return reject(
                "visit_already_made",
                "A visit that has been checked into cannot be cancelled.",
            );
        }
    }
    if let Some(co) = &v.check_out {
        let Some(ci) = &v.check_in else {
            return reject(
                "not_checked_in",
                "A visit must be checked into before it is checked out.",
            );
        };
        co.evidence.check("check_out.evidence")?;
        if co.evidence.event_time_ms() < ci.event_time_ms() {
            return reject(
                "check_out_before_check_in",
                "The check-out is dated before the check-in.",
            );
        }
        check_text(&co.notes, "check_out.notes", 20_000, false)?;
        if let Some(d) = &co.next_follow_up {
            check_date(d, "check_out.next_follow_up")?;
        }
    }
    for r in &v.reviews {
        let path = format!("reviews.{}", r.id);
        check_text(&r.comment, &format!("{path}.comment"), 5_000, false)?;
        if r.decision == ReviewDecision::Comment && r.comment.trim().is_empty() {
            return reject(
                "missing_field",
                format!("A review that comments needs a comment ('{path}.comment')."),
            );
        }
    }
    Ok(())
}

fn check_visit_change(
    before: Option<&Visit>,
    after: &Visit,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    check_visit(after)?;
    let plans = |rep| match caller.role {
        Role::Admin => true,
        Role::Manager => dir.is_self_or_report(caller.user, rep),
        Role::Hr => false,
        Role::FieldRep | Role::SiteManager => rep == caller.user,
    };
    match before {
        None => {
            if !plans(after.rep) {
                return forbidden(
                    "You may plan visits for yourself, or as a manager for your team.",
                );
            }
            if after.created_by != caller.user {
                return forbidden("A new visit's 'created_by' must be the person creating it.");
            }
            if dir.active_role(after.rep).is_none() {
                return reject(
                    "unknown_rep",
                    "The visit's rep is not an active user of this company.",
                );
            }
            if !after.reviews.is_empty() {
                return reject("not_reviewable", "A new visit cannot already have reviews.");
            }
        }
        Some(b) => {
            if after.rep != b.rep
                || after.customer != b.customer
                || after.created_by != b.created_by
            {
                return reject(
                    "immutable_field",
                    "A visit's rep, customer and creator cannot change; plan a new visit instead.",
                );
            }
            let in_changed = b.check_in.is_some() && after.check_in != b.check_in;
            let out_changed = b.check_out.is_some() && after.check_out != b.check_out;
            if in_changed || out_changed {
                return reject(
                    "immutable_field",
                    "A visit's check-in and check-out cannot change once made.",
                );
            }
            let plan_changed = after.planned_date != b.planned_date
                || after.purpose != b.purpose
                || after.cancelled != b.cancelled;
            if plan_changed && !plans(after.rep) {
                return forbidden("Only the rep or their manager can change a visit's plan.");
            }
            for r in &b.reviews {
                if !after.reviews.contains(r) {
                    return reject(
                        "immutable_field",
                        "Reviews are kept as written; add a new review instead.",
                    );
                }
            }
            for r in after.reviews.iter().filter(|r| !b.reviews.contains(r)) {
                let manager = caller.role == Role::Admin
                    || (caller.role == Role::Manager
                        && dir.manager_of(after.rep) == Some(caller.user));
                if !manager || r.by != caller.user || r.by == after.rep {
                    return forbidden(
                        "Only the rep's manager can review a visit report, and nobody their own.",
                    );
                }
                if after.check_out.is_none() {
                    return reject(
                        "not_reviewable",
                        "A visit can be reviewed once the rep has checked out and written the report.",
                    );
                }
            }
        }
    }
    let first = |a: bool, b: bool| a && !b;
    let checked_in = first(
        after.check_in.is_some(),
        before.is_some_and(|b| b.check_in.is_some()),
    );
    let checked_out = first(
        after.check_out.is_some(),
        before.is_some_and(|b| b.check_out.is_some()),
    );
    if (checked_in || checked_out) && after.rep != caller.user {
        return forbidden(
            "Only the rep making the visit can check in and out, from their own phone.",
        );
    }
    Ok(())
}

/// Checks a punch's content.
pub fn check_punch(p: &Punch) -> Result<(), Rejection> {
    check_text(&p.site, "site", MAX_NAME, true)?;
    p.evidence.check("evidence")?;
    if let Some(n) = &p.note {
        check_text(n, "note", MAX_SHORT, false)?;
    }
    Ok(())
}

fn check_new_punch(p: &Punch, caller: &Caller) -> Result<(), Rejection> {
    check_punch(p)?;
    if p.user != caller.user {
        return forbidden("A punch can only be made by the worker it is for, on their own phone.");
    }
    Ok(())
}

/// Checks a make-up request's content.
pub fn check_makeup(m: &Makeup) -> Result<(), Rejection> {
    check_text(&m.site, "site", MAX_NAME, true)?;
    check_text(&m.reason, "reason", MAX_SHORT, true)?;
    // 2000-01-01 .. 2200-01-01, as for evidence times.
    if !(946_684_800_000..7_258_118_400_000).contains(&m.at_ms) {
        return reject(
            "invalid_time",
            format!("'at_ms' ({}) is not a plausible time.", m.at_ms),
        );
    }
    if let Some(d) = &m.decision
        && let Some(c) = &d.comment
    {
        check_text(c, "decision.comment", MAX_SHORT, false)?;
    }
    Ok(())
}

fn check_makeup_change(
    before: Option<&Makeup>,
    after: &Makeup,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    check_makeup(after)?;
    match before {
        None => {
            if after.user != caller.user {
                return forbidden("A make-up request can only be made by the worker it is for.");
            }
            if after.decision.is_some() {
                return reject(
                    "not_decidable",
                    "A new make-up request cannot already be decided.",
                );
            }
        }
        Some(b) => {
            let mut request = b.clone();
            request.decision = after.decision.clone();
            if request != *after {
                return reject(
                    "immutable_field",
                    "A make-up request cannot change once made; make a new one instead.",
                );
            }
            if b.decision.is_some() && after.decision != b.decision {
                return reject(
                    "already_decided",
                    "This make-up request has already been decided.",
                );
            }
            if let Some(d) = after.decision.as_ref().filter(|_| b.decision.is_none()) {
                let manager = caller.role == Role::Admin
                    || (caller.role == Role::Manager
                        && dir.manager_of(after.user) == Some(caller.user));
                if !manager || d.by != caller.user || d.by == after.user {
                    return forbidden(
                        "Only the worker's manager can approve or refuse a make-up request, for their own team, and never their own.",
                    );
                }
            }
        }
    }
    Ok(())
}

/// Fields of evidence records that, once written, must never hold two values. A concurrent
/// write to one of them (a second phone, or a forged change built without the stored history)
/// would otherwise hide behind the old value as a conflict: it is refused instead. `before` is
/// the stored record; `conflicts` those of the merged result.
pub fn check_settled(
    before: &Record,
    conflicts: &[crate::record::Conflict],
) -> Result<(), Rejection> {
    let fixed: &[&str] = match before {
        Record::Punch(_) => &[""],
        Record::Visit(_) => &[
            "rep",
            "customer",
            "created_by",
            "check_in",
            "check_out",
            "reviews",
        ],
        Record::Makeup(_) => &[
            "user",
            "project",
            "site",
            "direction",
            "at_ms",
            "reason",
            "decision",
        ],
        _ => &[],
    };
    let hit = conflicts
        .iter()
        .find(|c| fixed.iter().any(|f| c.field.starts_with(f)));
    match (hit, before) {
        (None, _) => Ok(()),
        (Some(_), Record::Punch(_)) => reject(
            "punch_immutable",
            "Punches cannot be changed or deleted; a missed or wrong punch is fixed by a make-up request your manager approves.",
        ),
        (Some(c), Record::Makeup(_)) if c.field.starts_with("decision") => reject(
            "already_decided",
            "This make-up request has already been decided.",
        ),
        (Some(c), _) => reject(
            "immutable_field",
            format!(
                "Field '{}' was already written and cannot be written again.",
                c.field
            ),
        ),
    }
}

/// Checks a photo's content.
pub fn check_photo(p: &Photo) -> Result<(), Rejection> {
    if p.sha256.len() != 64
        || !p
            .sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return reject(
            "invalid_hash",
            "Field 'sha256' must be the photo's SHA-256 as 64 lower-case hex digits.",
        );
    }
    if p.size == 0 || p.size > MAX_PHOTO_BYTES {
        return reject(
            "invalid_size",
            format!("A photo must be 1 byte to {} MiB.", MAX_PHOTO_BYTES >> 20),
        );
    }
    if !PHOTO_MIME.contains(&p.mime.as_str()) {
        return reject(
            "unsupported_format",
            format!(
                "'{}' is not a supported photo type; send JPEG, PNG or WebP (export HEIC photos as JPEG).",
                p.mime
            ),
        );
    }
    let a = &p.attached_to;
    match a.kind {
        AttachKind::SiteDay => {
            let (Some(site), Some(day)) = (&a.site, &a.day) else {
                return reject(
                    "missing_field",
                    "A photo of a site diary day names the site ('attached_to.site') and the day ('attached_to.day').",
                );
            };
            check_text(site, "attached_to.site", MAX_NAME, true)?;
            check_date(day, "attached_to.day")?;
        }
        _ if a.site.is_some() || a.day.is_some() => {
            return reject(
                "invalid_attachment",
                "Only a photo of a site diary day names a site and a day.",
            );
        }
        _ => {}
    }
    if !(946_684_800_000..7_258_118_400_000).contains(&p.captured_at_ms) {
        return reject(
            "invalid_time",
            format!(
                "'captured_at_ms' ({}) is not a plausible time.",
                p.captured_at_ms
            ),
        );
    }
    if let Some(ev) = &p.evidence {
        ev.check("evidence")?;
    }
    check_text(&p.caption, "caption", 2_000, false)?;
    if p.tags.len() > 20 {
        return reject("too_many_tags", "A photo can have at most 20 tags.");
    }
    for t in &p.tags {
        check_text(t, "tags", 50, true)?;
    }
    for r in &p.reviews {
        let path = format!("reviews.{}", r.id);
        check_text(&r.reason, &format!("{path}.reason"), 1_000, false)?;
        if r.decision != PhotoDecision::Approved && r.reason.trim().is_empty() {
            return reject(
                "missing_field",
                format!(
                    "Rejecting a photo or asking for a retake needs a reason ('{path}.reason')."
                ),
            );
        }
    }
    for c in &p.comments {
        check_text(&c.text, &format!("comments.{}.text", c.id), 2_000, true)?;
    }
    Ok(())
}

fn check_photo_change(
    before: Option<&Photo>,
    after: &Photo,
    caller: &Caller,
) -> Result<(), Rejection> {
    check_photo(after)?;
    let Some(b) = before else {
        if after.author != caller.user {
            return forbidden("A photo's author must be the person taking it.");
        }
        if !after.reviews.is_empty() || !after.comments.is_empty() {
            return reject(
                "not_reviewable",
                "A new photo cannot already have reviews or comments.",
            );
        }
        return Ok(());
    };
    let fixed_changed = after.author != b.author
        || after.sha256 != b.sha256
        || after.size != b.size
        || after.mime != b.mime
        || after.attached_to != b.attached_to
        || after.captured_at_ms != b.captured_at_ms
        || after.evidence != b.evidence;
    if fixed_changed {
        return reject(
            "immutable_field",
            "A photo's bytes, author, attachment, capture time and evidence cannot change; take a new photo instead.",
        );
    }
    if (after.caption != b.caption || after.tags != b.tags) && caller.user != b.author {
        return forbidden("Only the photo's author can change its caption and tags.");
    }
    if b.reviews.iter().any(|r| !after.reviews.contains(r))
        || b.comments.iter().any(|c| !after.comments.contains(c))
    {
        return reject(
            "immutable_field",
            "Reviews and comments are kept as written; add a new one instead.",
        );
    }
    for r in after.reviews.iter().filter(|r| !b.reviews.contains(r)) {
        let reviewer = matches!(caller.role, Role::SiteManager | Role::Manager | Role::Admin);
        if !reviewer || r.by != caller.user || r.by == b.author {
            return forbidden(
                "Photos are reviewed by site managers, managers and admins, and nobody reviews their own.",
            );
        }
    }
    if after
        .comments
        .iter()
        .filter(|c| !b.comments.contains(c))
        .any(|c| c.by != caller.user)
    {
        return forbidden("A comment's author must be the person writing it.");
    }
    Ok(())
}

/// Checks a site diary's content.
pub fn check_diary(d: &Diary) -> Result<(), Rejection> {
    check_text(&d.site, "site", MAX_NAME, true)?;
    check_date(&d.day, "day")?;
    check_text(&d.weather, "weather", MAX_NAME, false)?;
    if let Some(t) = d.temperature_c
        && !(t.is_finite() && (-60.0..=60.0).contains(&t))
    {
        return reject(
            "invalid_temperature",
            format!("{t} °C is not a plausible temperature (-60 to 60)."),
        );
    }
    check_text(&d.work, "work", MAX_NOTES, false)?;
    if d.crew.len() > MAX_DIARY_ITEMS {
        return reject(
            "too_many_items",
            format!("A diary day lists at most {MAX_DIARY_ITEMS} crew entries."),
        );
    }
    for c in &d.crew {
        let path = format!("crew.{}", c.key);
        check_text(&c.name, &format!("{path}.name"), MAX_NAME, true)?;
        check_text(&c.note, &format!("{path}.note"), MAX_SHORT, false)?;
        if let Some(h) = c.hours
            && !(h.is_finite() && (0.0..=24.0).contains(&h))
        {
            return reject(
                "invalid_hours",
                format!("'{path}.hours' must be between 0 and 24 (got {h})."),
            );
        }
        if let Some(u) = c.user
            && c.key != u.as_string()
        {
            return reject(
                "invalid_crew_key",
                format!(
                    "A staff member's crew entry is keyed by their user id ('{u}'), so two phones adding them make one entry."
                ),
            );
        }
    }
    for name in DIARY_LISTS {
        let items = d.list(name).map(Vec::as_slice).unwrap_or_default();
        if items.len() > MAX_DIARY_ITEMS {
            return reject(
                "too_many_items",
                format!("A diary day lists at most {MAX_DIARY_ITEMS} {name}."),
            );
        }
        for i in items {
            let path = format!("{name}.{}", i.id);
            check_text(&i.text, &format!("{path}.text"), MAX_SHORT, true)?;
            check_text(&i.note, &format!("{path}.note"), 2_000, false)?;
            if let Some(u) = &i.unit {
                check_text(u, &format!("{path}.unit"), 20, false)?;
            }
            if let Some(q) = i.quantity
                && !(q.is_finite() && q >= 0.0)
            {
                return reject(
                    "invalid_quantity",
                    format!("'{path}.quantity' must be a number of 0 or more."),
                );
            }
            match (name, i.severity) {
                ("incidents", None) => {
                    return reject(
                        "missing_field",
                        format!(
                            "A safety incident needs its severity ('{path}.severity': near_miss, first_aid, injury or serious)."
                        ),
                    );
                }
                ("incidents", Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return reject(
                        "invalid_field",
                        format!("Only safety incidents have a severity ('{path}.severity')."),
                    );
                }
            }
        }
    }
    for e in &d.signoffs {
        check_text(
            &e.note,
            &format!("signoffs.{}.note", e.id),
            MAX_SHORT,
            false,
        )?;
    }
    Ok(())
}

/// Most entries in one diary list.
pub const MAX_DIARY_ITEMS: usize = 500;

/// Whether `caller` may sign a project's diary off or reopen it: its site managers and admins.
fn may_sign_diary(caller: &Caller, project: DocId, dir: &dyn Directory) -> bool {
    caller.role == Role::Admin
        || dir.project_role(project, caller.user) == Some(ProjectRole::SiteManager)
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn check_diary_change(
    before: Option<&Diary>,
    after: &Diary,
    caller: &Caller,
    dir: &dyn Directory,
) -> Result<(), Rejection> {
    check_diary(after)?;
    if after.id != Diary::doc_id_for(after.project, &after.site, &after.day) {
        return reject(
            "invalid_id",
            "A site diary's id is made from its project, site and day (one diary per site and day); this one does not match.",
        );
    }
    let signer = may_sign_diary(caller, after.project, dir);
    let writer = signer
        || matches!(
            dir.project_role(after.project, caller.user),
            Some(ProjectRole::Crew)
        );
    if !writer {
        return forbidden("Only the project's crew and site managers write its site diary.");
    }
    let empty;
    let b = match before {
        Some(b) => {
            if (&b.project, &b.site, &b.day) != (&after.project, &after.site, &after.day) {
                return reject(
                    "immutable_field",
                    "A site diary's project, site and day cannot change.",
                );
            }
            b
        }
        None => {
            empty = Diary::new(after.project, after.site.clone(), after.day.clone());
            &empty
        }
    };
    // The sign-off log: kept as written, extended one step at a time by site managers.
    if b.signoffs.iter().any(|e| !after.signoffs.contains(e)) {
        return reject(
            "immutable_field",
            "Sign-offs and reopenings are kept as written.",
        );
    }
    let added: Vec<&SignEvent> = after
        .signoffs
        .iter()
        .filter(|e| !b.signoffs.contains(e))
        .collect();
    let mut locked = b.is_locked();
    let mut reopened = false;
    for (seq, e) in (b.next_seq()..).zip(&added) {
        if !signer {
            return forbidden(
                "Only the project's site managers sign a diary day off or reopen it.",
            );
        }
        if e.by != caller.user {
            return forbidden("A sign-off's author must be the person signing.");
        }
        if e.seq != seq {
            return reject(
                "signoff_conflict",
                format!(
                    "The diary's sign-off log moved on while you were offline (expected step {seq}, got {}); look at the day again.",
                    e.seq
                ),
            );
        }
        match (e.action, locked) {
            (DiaryAction::SignOff, true) => {
                return reject(
                    "already_signed_off",
                    "This diary day is already signed off.",
                );
            }
            (DiaryAction::Reopen, false) => {
                return reject(
                    "not_signed_off",
                    "Only a signed-off diary day can be reopened.",
                );
            }
            (DiaryAction::SignOff, false) => locked = true,
            (DiaryAction::Reopen, true) => {
                locked = false;
                reopened = true;
            }
        }
    }
    if b.is_locked() && !reopened && !b.content_eq(after) {
        let e = b.last_event();
        return reject(
            "diary_locked",
            format!(
                "The diary of site {} on {} was signed off{}; a site manager must reopen it before it can change.",
                b.site,
                b.day,
                e.map(|e| format!(" at {}", when(e.at_ms)))
                    .unwrap_or_default()
            ),
        );
    }
    // Entries: added by their author; changed or removed by their author or a site manager.
    for name in DIARY_LISTS {
        let old = b.list(name).map(Vec::as_slice).unwrap_or_default();
        let new = after.list(name).map(Vec::as_slice).unwrap_or_default();
        for i in new {
            match old.iter().find(|o| o.id == i.id) {
                None if i.by != caller.user => {
                    return forbidden(format!(
                        "An entry's author must be the person adding it ('{name}.{}').",
                        i.id
                    ));
                }
                Some(o) if o != i && !(signer || o.by == caller.user) => {
                    return forbidden(format!(
                        "Only its author or a site manager changes an entry ('{name}.{}').",
                        i.id
                    ));
                }
                Some(o) if o.by != i.by => {
                    return reject(
                        "immutable_field",
                        format!("An entry's author cannot change ('{name}.{}.by').", i.id),
                    );
                }
                _ => {}
            }
        }
        for o in old {
            let kept = new.iter().any(|i| i.id == o.id);
            if !kept && !signer && o.by != caller.user {
                return forbidden(format!(
                    "Only its author or a site manager removes an entry ('{name}.{}').",
                    o.id
                ));
            }
        }
    }
    for c in &after.crew {
        if !b.crew.contains(c) && c.by != caller.user {
            return forbidden(format!(
                "A crew entry names who wrote it last ('crew.{}.by' must be you).",
                c.key
            ));
        }
    }
    Ok(())
}
