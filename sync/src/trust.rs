//! Location trust: how far a field event's evidence can be believed, graded with the reasons
//! behind the grade. Never a bare yes/no: a manager sees "suspicious: fix accuracy 180 m (limit
//! 100 m)", a rep sees "you are 1.2 km from Acme Ltd" before pressing the button.
//!
//! The server grades every new event once, when it arrives (against the user's events around
//! it); the phone runs the same [`grade`] offline for the preview. Nothing here decides
//! whether an event is *stored*: events are evidence and are kept, graded.

use crate::evidence::Evidence;
use crate::record::GeoPoint;
use crate::record::project::Geofence;
use serde::{Deserialize, Serialize};

choice_enum!(
    /// The overall grade of an event's location evidence, from best to worst.
    TrustLevel, "trust level" {
        Verified => "verified", Unverifiable => "unverifiable", Suspicious => "suspicious", Rejected => "rejected"
    }
);

impl TrustLevel {
    fn rank(self) -> u8 {
        match self {
            TrustLevel::Verified => 0,
            TrustLevel::Unverifiable => 1,
            TrustLevel::Suspicious => 2,
            TrustLevel::Rejected => 3,
        }
    }
}

choice_enum!(
    /// How much one reason weighs.
    Severity, "severity" { Info => "info", Suspicious => "suspicious", Rejected => "rejected" }
);

/// One finding about an event's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code, e.g. `out_of_range`, `mock_location`.
    pub code: String,
    pub severity: Severity,
    /// One sentence for a person.
    pub message: String,
}

/// The grade of one event and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub level: TrustLevel,
    pub reasons: Vec<Reason>,
    /// Metres from the target (customer location, or outside the site's area; 0 inside).
    pub distance_m: Option<f64>,
    /// The distance the target allows, metres.
    pub allowed_m: Option<f64>,
    /// The time the event is dated at, ms since the Unix epoch (see [`Evidence::event_time_ms`]).
    pub event_time_ms: i64,
}

/// What an event is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Target<'a> {
    /// A customer's location; within `radius_m` is in range.
    Customer {
        name: &'a str,
        location: Option<GeoPoint>,
        radius_m: f64,
    },
    /// A project site; inside its geofence is in range, and so is within `radius_m` of its
    /// boundary when the site allows a margin.
    Site {
        name: &'a str,
        fence: Option<&'a Geofence>,
        margin_m: f64,
    },
}

/// An earlier event of the same user, for speed and repetition checks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorEvent {
    pub time_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
}

/// The thresholds a tenant grades with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Allowed distance from a customer when the customer sets none (metres).
    pub default_radius_m: f64,
    /// A fix less accurate than this is suspicious (metres).
    pub max_accuracy_m: f64,
    /// A fix older than this at the event is suspicious (ms).
    pub max_fix_age_ms: i64,
    /// A phone clock further than this from server time is suspicious (ms).
    pub max_clock_skew_ms: i64,
    /// Travel faster than this between two events is suspicious (km/h).
    pub max_speed_kmh: f64,
    /// A visit still open this long after its check-in is closed automatically and flagged (ms).
    pub visit_auto_close_ms: i64,
}

/// Allowed radius overrides must lie in this range (metres).
pub const RADIUS_RANGE_M: std::ops::RangeInclusive<f64> = 100.0..=3000.0;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_radius_m: 300.0,
            max_accuracy_m: 100.0,
            max_fix_age_ms: 5 * 60_000,
            max_clock_skew_ms: 2 * 60_000,
            max_speed_kmh: 250.0,
            visit_auto_close_ms: 12 * 3_600_000,
        }
    }
}

/// Metres, written for a person: "85 m", "1.2 km".
pub fn human_distance(m: f64) -> String {
    if m < 1000.0 {
        format!("{} m", m.round() as i64)
    } else if m < 100_000.0 {
        format!("{:.1} km", m / 1000.0)
    } else {
        format!("{} km", (m / 1000.0).round() as i64)
    }
}

/// A duration, written for a person: "45 s", "7 min", "3 h 10 min", "2 d 4 h".
pub fn human_duration(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        let (d, h) = (s / 86_400, (s % 86_400) / 3600);
        if h == 0 {
            format!("{d} d")
        } else {
            format!("{d} d {h} h")
        }
    }
}

/// Great-circle distance in metres.
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    use geo::{Distance, Haversine};
    Haversine.distance(geo::Point::new(a.lon, a.lat), geo::Point::new(b.lon, b.lat))
}

/// Metres from `p` to the area `fence` covers: 0 inside.
pub fn distance_to_fence_m(p: GeoPoint, fence: &Geofence) -> f64 {
    match fence {
        Geofence::Circle { center, radius_m } => (distance_m(p, *center) - radius_m).max(0.0),
        Geofence::Polygon { points } => {
            use geo::{Contains, Distance, Euclidean};
            // A local flat projection around `p` (metres east and north): exact enough for a
            // site, which is at most a few kilometres across.
            const M_PER_DEG: f64 = 111_320.0;
            let k = p.lat.to_radians().cos().max(1e-6);
            let project = |q: &GeoPoint| {
                let mut dlon = q.lon - p.lon;
                if dlon > 180.0 {
                    dlon -= 360.0;
                } else if dlon < -180.0 {
                    dlon += 360.0;
                }
                geo::coord! { x: dlon * M_PER_DEG * k, y: (q.lat - p.lat) * M_PER_DEG }
            };
            let poly = geo::Polygon::new(points.iter().map(project).collect(), vec![]);
            let origin = geo::Point::new(0.0, 0.0);
            if poly.contains(&origin) {
                0.0
            } else {
                Euclidean.distance(&origin, &poly)
            }
        }
    }
}

fn reason(code: &str, severity: Severity, message: String) -> Reason {
    Reason {
        code: code.to_owned(),
        severity,
        message,
    }
}

/// Grades one event.
///
/// * `what` names the event for messages ("check-in", "punch").
/// * `recent` are the same user's other events (any order); the nearest earlier one is used for
///   the speed check and all of them for the repetition check.
pub fn grade(
    what: &str,
    ev: &Evidence,
    target: &Target<'_>,
    recent: &[PriorEvent],
    policy: &Policy,
) -> Verdict {
    let mut reasons = Vec::new();
    let event_time = ev.event_time_ms();
    let here = ev.point();

    // Where, against the target.
    let (distance, allowed) = match target {
        Target::Customer {
            name,
            location: Some(loc),
            radius_m,
        } => {
            let d = distance_m(here, *loc);
            range_reasons(
                &mut reasons,
                what,
                name,
                d,
                *radius_m,
                ev.accuracy_m,
                "from",
            );
            (Some(d), Some(*radius_m))
        }
        Target::Site {
            name,
            fence: Some(fence),
            margin_m,
        } => {
            let d = distance_to_fence_m(here, fence);
            range_reasons(
                &mut reasons,
                what,
                name,
                d,
                *margin_m,
                ev.accuracy_m,
                "outside",
            );
            (Some(d), Some(*margin_m))
        }
        Target::Customer {
            name,
            location: None,
            ..
        } => {
            reasons.push(reason(
                "no_target_location",
                Severity::Info,
                format!(
                    "{name} has no location on record, so the {what} could not be compared with it."
                ),
            ));
            (None, None)
        }
        Target::Site {
            name, fence: None, ..
        } => {
            reasons.push(reason(
                "no_target_location",
                Severity::Info,
                format!(
                    "Site {name} has no geofence, so the {what} could not be compared with it."
                ),
            ));
            (None, None)
        }
    };

    if ev.mock {
        reasons.push(reason(
            "mock_location",
            Severity::Rejected,
            "The phone reported this location as mocked or simulated.".into(),
        ));
    }
    if ev.accuracy_m > policy.max_accuracy_m {
        reasons.push(reason(
            "poor_accuracy",
            Severity::Suspicious,
            format!(
                "The location fix was only accurate to {} (limit {}).",
                human_distance(ev.accuracy_m),
                human_distance(policy.max_accuracy_m)
            ),
        ));
    }
    let fix_age = ev.device_time_ms - ev.fix_time_ms;
    if fix_age > policy.max_fix_age_ms {
        reasons.push(reason(
            "stale_fix",
            Severity::Suspicious,
            format!(
                "The location fix was {} old at the {what} (limit {}).",
                human_duration(fix_age),
                human_duration(policy.max_fix_age_ms)
            ),
        ));
    } else if fix_age < -60_000 {
        reasons.push(reason(
            "fix_after_event",
            Severity::Suspicious,
            format!(
                "The location fix is dated {} after the {what}.",
                human_duration(fix_age)
            ),
        ));
    }
    match ev.server_dated_ms() {
        Some(dated) => {
            let skew = ev.device_time_ms - dated;
            if skew.abs() > policy.max_clock_skew_ms {
                reasons.push(reason(
                    "clock_off",
                    Severity::Suspicious,
                    format!(
                        "The phone's clock was {} {} server time; the {what} is dated by server time.",
                        human_duration(skew),
                        if skew > 0 { "ahead of" } else { "behind" }
                    ),
                ));
            }
        }
        None => reasons.push(reason(
            "clock_unverified",
            Severity::Info,
            format!(
                "The phone has not synced since it last started, so the {what} is dated by its own clock."
            ),
        )),
    }

    // Against the user's other events.
    let previous = recent
        .iter()
        .filter(|p| p.time_ms <= event_time)
        .max_by_key(|p| p.time_ms);
    if let Some(p) = previous {
        let from = GeoPoint {
            lat: p.lat,
            lon: p.lon,
        };
        let moved = (distance_m(from, here) - p.accuracy_m - ev.accuracy_m).max(0.0);
        let hours = (event_time - p.time_ms) as f64 / 3_600_000.0;
        let kmh = if hours > 0.0 {
            moved / 1000.0 / hours
        } else if moved > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        if kmh > policy.max_speed_kmh {
            reasons.push(reason(
                "impossible_speed",
                Severity::Suspicious,
                format!(
                    "Reaching here from the previous event ({} away, {} earlier) needs {} km/h.",
                    human_distance(distance_m(from, here)),
                    human_duration(event_time - p.time_ms),
                    if kmh.is_finite() {
                        format!("{}", kmh.round() as i64)
                    } else {
                        "infinite".into()
                    }
                ),
            ));
        }
    }
    if recent.iter().any(|p| p.lat == ev.lat && p.lon == ev.lon) {
        reasons.push(reason(
            "repeated_coordinates",
            Severity::Suspicious,
            "The coordinates repeat an earlier event's to the last digit, which real fixes practically never do.".into(),
        ));
    }

    let mut level = if distance.is_some() {
        TrustLevel::Verified
    } else {
        TrustLevel::Unverifiable
    };
    for r in &reasons {
        let l = match r.severity {
            Severity::Info => continue,
            Severity::Suspicious => TrustLevel::Suspicious,
            Severity::Rejected => TrustLevel::Rejected,
        };
        if l.rank() > level.rank() {
            level = l;
        }
    }
    Verdict {
        level,
        reasons,
        distance_m: distance,
        allowed_m: allowed,
        event_time_ms: event_time,
    }
}

/// The in-range / near / out-of-range reasons for a distance `d` against `allowed`.
fn range_reasons(
    reasons: &mut Vec<Reason>,
    what: &str,
    name: &str,
    d: f64,
    allowed: f64,
    accuracy: f64,
    preposition: &str,
) {
    let place = if preposition == "outside" {
        format!("the area of site {name}")
    } else {
        name.to_owned()
    };
    if d <= allowed {
        return;
    }
    if d - accuracy <= allowed {
        reasons.push(reason(
            "near_boundary",
            Severity::Suspicious,
            format!(
                "You are {} {preposition} {place}, but the fix is only accurate to {}.",
                human_distance(d),
                human_distance(accuracy)
            ),
        ));
    } else {
        let limit = if allowed > 0.0 {
            format!("; the {what} allows {}", human_distance(allowed))
        } else {
            String::new()
        };
        reasons.push(reason(
            "out_of_range",
            Severity::Rejected,
            format!(
                "You are {} {preposition} {place}{limit}.",
                human_distance(d)
            ),
        ));
    }
}
