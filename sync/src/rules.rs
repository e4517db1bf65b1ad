//! Whether a change is acceptable: the record it produces must be well-formed (types, ranges,
//! required fields), must not alter fields that are fixed once set, and the caller's role must
//! allow it. The server runs [`check_change`] on the merged result of every incoming change; the
//! phone runs the same function before it commits an edit locally.

use crate::access::{Caller, Directory, Role};
use crate::error::Rejection;
use crate::ids::DocId;
use crate::record::project::{Geofence, ProjectRole};
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
        Role::Manager => dir.is_self_or_report(caller.user, owner),
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
        _ => reject("immutable_field", "A record's kind cannot change."),
    }
}
