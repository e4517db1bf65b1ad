//! Attendance: each employee's status for each day, with a sentence that explains it, derived from
//! their shift, the work calendar, the site's time zone, their leave and their punches; and the
//! totals over a period.
//!
//! HR downloads these as reports, the server computes them for the reports and the phone for the
//! worker's own view, so both call these pure functions: punches (UTC instants) in, day records
//! out. Shifts are written in local wall-clock minutes and turned into UTC instants per day with
//! the site's IANA zone, so a 22:00–06:00 shift lasts 9 real hours on the night clocks go back
//! and 7 on the night they go forward, and the same 09:00 shift starts at different instants in
//! Shanghai and Berlin.
//!
//! How a punch finds its day: every working day has one shift *instance* (the shift starting on
//! that local date). A punch belongs to the instance whose window
//! `[start - window_before, end + window_after]` contains it; where two windows overlap, to the
//! instance whose shift is nearest (0 inside it), so an out-punch just after a long shift stays
//! with it rather than going to the next day's. Punches in no window fall on their local date: on a rest day, holiday
//! or a day of leave without a shift they are that day's (voluntary) work; on a working day they
//! are outside the shift's window and only mentioned.
//!
//! All minute counts are whole minutes rounded down, in the worker's favour for lateness and
//! early leave.

use crate::error::Rejection;
use crate::trust::TrustLevel;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The punch direction is the record model's: the server passes a stored punch's direction
/// through unchanged.
pub use crate::record::punch::Direction;

const MINUTE_MS: i64 = 60_000;
const DAY_MIN: u16 = 1440;
/// Punch windows may reach this far before a shift's start or after its end (minutes).
pub const MAX_WINDOW_MIN: u16 = 720;
/// The unpaid break is deducted only when paired time exceeds it by more than this (minutes).
pub const BREAK_THRESHOLD_MIN: u32 = 120;

choice_enum!(
    /// An attendance status. A day has one primary status and may carry several (see
    /// [`DayRecord::flags`]); listed here from highest precedence to lowest.
    DayStatus, "day status" {
        OnLeave => "on_leave", Holiday => "holiday", RestDay => "rest_day", Absent => "absent",
        MissingPunch => "missing_punch", OutOfArea => "out_of_area", SeriousLate => "serious_late",
        Late => "late", EarlyLeave => "early_leave", Normal => "normal"
    }
);

impl DayStatus {
    /// Lower wins when choosing a day's primary status.
    fn rank(self) -> u8 {
        match self {
            DayStatus::OnLeave => 0,
            DayStatus::Holiday => 1,
            DayStatus::RestDay => 2,
            DayStatus::Absent => 3,
            DayStatus::MissingPunch => 4,
            DayStatus::OutOfArea => 5,
            DayStatus::SeriousLate => 6,
            DayStatus::Late => 7,
            DayStatus::EarlyLeave => 8,
            DayStatus::Normal => 9,
        }
    }
}

/// A shift in local wall-clock minutes; the same shift applies on every working day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub name: String,
    /// Minutes after local midnight the shift starts, `0..1440`.
    pub start_min: u16,
    /// Minutes after local midnight the shift ends, `0..1440`; at or before `start_min` means
    /// the next day (a night shift such as 22:00–06:00).
    pub end_min: u16,
    /// A first in-punch up to this many minutes after the start is not late.
    pub grace_late_min: u16,
    /// A last out-punch up to this many minutes before the end is not early leave.
    pub grace_early_min: u16,
    /// A first in-punch more than this many minutes after the start is serious lateness.
    pub serious_late_min: u16,
    /// A first in-punch more than this many minutes after the start counts as absence.
    pub absent_late_min: u16,
    /// Punches count for a shift instance from this many minutes before its start ...
    pub window_before_min: u16,
    /// ... until this many minutes after its end.
    pub window_after_min: u16,
    /// Unpaid break, deducted once from worked time when that exceeds it by more than
    /// [`BREAK_THRESHOLD_MIN`].
    pub break_min: u16,
    /// Minutes of work due; work beyond this is overtime.
    pub required_min: u16,
}

impl Shift {
    /// The shift's nominal length in wall-clock minutes (a DST change on the night can make the
    /// real length an hour longer or shorter; see [`shift_bounds`]).
    pub fn length_min(&self) -> u16 {
        let len = (i32::from(self.end_min) - i32::from(self.start_min)).rem_euclid(1440);
        if len == 0 {
            DAY_MIN
        } else {
            u16::try_from(len).unwrap_or(DAY_MIN)
        }
    }

    /// Checks that the shift makes sense before it is saved; [`derive_days`] never panics on a
    /// bad shift, but its records would be meaningless.
    pub fn validate(&self) -> Result<(), Rejection> {
        let name = self.name.trim();
        let fail = |message: String| Err(Rejection::new("invalid_shift", message));
        if name.is_empty() {
            return fail("A shift needs a name.".to_owned());
        }
        for (field, value) in [("start_min", self.start_min), ("end_min", self.end_min)] {
            if value >= DAY_MIN {
                return fail(format!(
                    "Shift '{name}': {field} is {value}; it must be minutes after midnight, 0 to 1439."
                ));
            }
        }
        if self.start_min == self.end_min {
            return fail(format!(
                "Shift '{name}' starts and ends at {}; 24-hour shifts are not supported.",
                hh_mm(self.start_min)
            ));
        }
        let len = self.length_min();
        if self.required_min == 0 {
            return fail(format!(
                "Shift '{name}': required_min must be at least 1 minute."
            ));
        }
        if u32::from(self.required_min) + u32::from(self.break_min) > u32::from(len) {
            return fail(format!(
                "Shift '{name}' lasts {len} min ({}-{}); {} min of work plus a {} min break do not fit.",
                hh_mm(self.start_min),
                hh_mm(self.end_min),
                self.required_min,
                self.break_min
            ));
        }
        if self.grace_late_min > self.serious_late_min {
            return fail(format!(
                "Shift '{name}': the late grace ({} min) is longer than the serious-lateness threshold ({} min).",
                self.grace_late_min, self.serious_late_min
            ));
        }
        if self.serious_late_min > self.absent_late_min {
            return fail(format!(
                "Shift '{name}': the serious-lateness threshold ({} min) is longer than the absence threshold ({} min).",
                self.serious_late_min, self.absent_late_min
            ));
        }
        for (what, value) in [
            ("absence threshold", self.absent_late_min),
            ("early-leave grace", self.grace_early_min),
        ] {
            if value > len {
                return fail(format!(
                    "Shift '{name}': the {what} ({value} min) is longer than the shift ({len} min)."
                ));
            }
        }
        for (what, value) in [
            ("window before the start", self.window_before_min),
            ("window after the end", self.window_after_min),
        ] {
            if value > MAX_WINDOW_MIN {
                return fail(format!(
                    "Shift '{name}': the punch {what} is {value} min; at most {MAX_WINDOW_MIN} min (12 h) is allowed."
                ));
            }
        }
        Ok(())
    }
}

/// Which dates are working days.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    /// Monday to Sunday.
    pub workdays: [bool; 7],
    /// Date → holiday name. No work is due on a holiday, even on a make-up working day.
    #[serde(with = "iso_date_map")]
    pub holidays: BTreeMap<NaiveDate, String>,
    /// Days off by `workdays` that are working days (make-up working days).
    #[serde(with = "iso_date_set")]
    pub extra_workdays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Monday to Friday, no holidays.
    pub fn monday_to_friday() -> Self {
        Calendar {
            workdays: [true, true, true, true, true, false, false],
            ..Calendar::default()
        }
    }

    /// Whether a shift is due on `date` (before leave is considered).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.holidays.contains_key(&date) {
            return false;
        }
        self.extra_workdays.contains(&date)
            || self.workdays[date.weekday().num_days_from_monday() as usize]
    }
}

/// One punch as attendance sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PunchInput {
    pub id: String,
    /// UTC, ms since the Unix epoch, as dated by the server.
    pub at_ms: i64,
    pub direction: Direction,
    /// Shown in explanations.
    pub site_name: String,
    pub trust: TrustLevel,
    /// An approved make-up punch: counted as trusted whatever its location grade, and marked.
    pub makeup: bool,
}

impl PunchInput {
    /// Rejected punches are not counted unless a manager approved them as a make-up.
    fn counts(&self) -> bool {
        self.makeup || self.trust != TrustLevel::Rejected
    }
}

/// One employee's schedule. Not serialisable (it borrows); the caller assembles it from the
/// stored shift, calendar, site and leave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule<'a> {
    pub shift: &'a Shift,
    pub calendar: &'a Calendar,
    /// The site's zone: shift times and day boundaries are local to it.
    pub tz: Tz,
    /// Date → kind of leave, e.g. "annual".
    pub leave: &'a BTreeMap<NaiveDate, String>,
}

/// One employee's attendance on one local date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayRecord {
    #[serde(with = "iso_date")]
    pub date: NaiveDate,
    /// The primary status, by precedence: on leave, holiday, rest day, absent, missing punch,
    /// out of area, serious late, late, early leave, normal.
    pub status: DayStatus,
    /// Every status that applies, primary first, then by precedence.
    pub flags: Vec<DayStatus>,
    /// One part per finding, joined with "; ", times local to the site.
    pub explanation: String,
    /// Work was due: a working day without leave.
    pub due: bool,
    /// UTC instants of the shift instance starting on this date, if it is a working day.
    pub scheduled_start_ms: Option<i64>,
    pub scheduled_end_ms: Option<i64>,
    /// The first counted in-punch and the last counted out-punch.
    pub first_in_ms: Option<i64>,
    pub last_out_ms: Option<i64>,
    /// Paired in/out time, less the break where it applies.
    pub worked_min: u32,
    /// Worked time beyond `required_min` on a day with a shift (leave included); all of it on a
    /// rest day or holiday.
    pub overtime_min: u32,
    /// Minutes late beyond the grace, measured when the day's first counted punch is an
    /// in-punch (kept when lateness makes the day absent, but then not flagged late).
    pub late_min: u32,
    /// Minutes left before the end less the grace, measured when the day's last counted punch
    /// is an out-punch.
    pub early_leave_min: u32,
    /// Punches attributed to this day, counted or not (punches outside the shift window are
    /// only mentioned in the explanation).
    pub punches: u32,
    pub makeups: u32,
    /// Rejected (out of area) punches: not counted.
    pub out_of_area: u32,
    /// Suspicious punches: counted.
    pub suspicious: u32,
}

/// Totals over a period of [`DayRecord`]s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub days_due: u32,
    /// Due days not absent; `days_present + absences == days_due`.
    pub days_present: u32,
    /// Days flagged late or seriously late, and their minutes.
    pub late_count: u32,
    pub late_min: u32,
    pub early_leave_count: u32,
    pub early_leave_min: u32,
    pub absences: u32,
    /// Days with at least one unpaired punch.
    pub missing_punches: u32,
    pub makeups: u32,
    pub out_of_area: u32,
    pub suspicious: u32,
    pub leave_days: u32,
    pub worked_min: u32,
    pub overtime_min: u32,
}

/// UTC ms of the start and end of the shift instance that starts on local `date` in `tz`; it
/// ends on the next local day if it crosses midnight. A local time skipped by a spring-forward
/// change resolves to the first instant after the gap; one repeated by a fall-back change
/// resolves to the earlier instant.
pub fn shift_bounds(shift: &Shift, date: NaiveDate, tz: Tz) -> (i64, i64) {
    let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    let start_local = midnight + i64::from(shift.start_min) * MINUTE_MS;
    let end_local = start_local + i64::from(shift.length_min()) * MINUTE_MS;
    (resolve_local(tz, start_local), resolve_local(tz, end_local))
}

/// One record per local date `from..=to` (none if `to < from`). `punches` may be in any order
/// and may include punches outside the period; those are used only to keep them from being
/// mistaken for the period's.
pub fn derive_days(
    from: NaiveDate,
    to: NaiveDate,
    schedule: &Schedule,
    punches: &[PunchInput],
) -> Vec<DayRecord> {
    if to < from {
        return Vec::new();
    }
    let shift = schedule.shift;
    let n_days = usize::try_from(to.signed_duration_since(from).num_days()).unwrap_or(0) + 1;
    let index_of = |date: NaiveDate| {
        usize::try_from(date.signed_duration_since(from).num_days())
            .ok()
            .filter(|&i| i < n_days)
    };

    // Instances starting up to `back` days before `from` or `fwd` days after `to` can have
    // windows reaching into the period: they are built too, so that they claim their own punches
    // (which are then dropped) instead of those passing for the period's.
    let back =
        (u64::from(shift.start_min) + u64::from(DAY_MIN) + u64::from(shift.window_after_min))
            / u64::from(DAY_MIN)
            + 1;
    let fwd = u64::from(shift.window_before_min) / u64::from(DAY_MIN) + 2;
    let first = from
        .checked_sub_days(Days::new(back))
        .unwrap_or(NaiveDate::MIN);
    let last = to
        .checked_add_days(Days::new(fwd))
        .unwrap_or(NaiveDate::MAX);
    let instances = instances(schedule, first, last);

    let mut sorted: Vec<&PunchInput> = punches
        .iter()
        .filter(|p| DateTime::from_timestamp_millis(p.at_ms).is_some())
        .collect();
    sorted.sort_by(|a, b| {
        (a.at_ms, direction_order(a.direction), &a.id).cmp(&(
            b.at_ms,
            direction_order(b.direction),
            &b.id,
        ))
    });
    // The same punch passed twice is one punch.
    sorted.dedup_by(|a, b| a.id == b.id && a.at_ms == b.at_ms && a.direction == b.direction);

    let mut attributed: Vec<Vec<&PunchInput>> = vec![Vec::new(); n_days];
    let mut outside: Vec<Vec<&PunchInput>> = vec![Vec::new(); n_days];
    // Windows' starts and ends both grow with the date, so one pointer walks them: every
    // instance before `lo` has closed its window before the current punch.
    let mut lo = 0;
    for p in sorted {
        let t = p.at_ms;
        while instances.get(lo).is_some_and(|i| i.win_end < t) {
            lo += 1;
        }
        let mut best: Option<(&Instance, i64)> = None;
        for inst in instances[lo..].iter().take_while(|i| i.win_start <= t) {
            if inst.win_end < t {
                continue;
            }
            let dist = inst.distance(t);
            // On a tie an in-punch starts the later instance, an out-punch ends the earlier.
            let better =
                best.is_none_or(|(_, d)| dist < d || (dist == d && p.direction == Direction::In));
            if better {
                best = Some((inst, dist));
            }
        }
        match best {
            Some((inst, _)) => {
                if let Some(i) = index_of(inst.date) {
                    attributed[i].push(p);
                }
            }
            None => {
                let Some(date) = local_naive(schedule.tz, t).map(|l| l.date()) else {
                    continue;
                };
                if let Some(i) = index_of(date) {
                    if schedule.calendar.is_working_day(date) {
                        outside[i].push(p);
                    } else {
                        attributed[i].push(p);
                    }
                }
            }
        }
    }

    let mut inst_iter = instances.iter().peekable();
    from.iter_days()
        .take(n_days)
        .zip(attributed.iter().zip(&outside))
        .map(|(date, (punches, outside))| {
            while inst_iter.next_if(|i| i.date < date).is_some() {}
            let instance = inst_iter.next_if(|i| i.date == date);
            evaluate(date, schedule, instance, punches, outside)
        })
        .collect()
}

/// Totals over `days`.
pub fn summarize(days: &[DayRecord]) -> Summary {
    let mut s = Summary::default();
    for d in days {
        let has = |f: DayStatus| d.flags.contains(&f);
        if d.due {
            s.days_due += 1;
            if d.status == DayStatus::Absent {
                s.absences += 1;
            } else {
                s.days_present += 1;
            }
        }
        if has(DayStatus::Late) || has(DayStatus::SeriousLate) {
            s.late_count += 1;
            s.late_min = s.late_min.saturating_add(d.late_min);
        }
        if has(DayStatus::EarlyLeave) {
            s.early_leave_count += 1;
            s.early_leave_min = s.early_leave_min.saturating_add(d.early_leave_min);
        }
        if has(DayStatus::MissingPunch) {
            s.missing_punches += 1;
        }
        if d.status == DayStatus::OnLeave {
            s.leave_days += 1;
        }
        s.makeups = s.makeups.saturating_add(d.makeups);
        s.out_of_area = s.out_of_area.saturating_add(d.out_of_area);
        s.suspicious = s.suspicious.saturating_add(d.suspicious);
        s.worked_min = s.worked_min.saturating_add(d.worked_min);
        s.overtime_min = s.overtime_min.saturating_add(d.overtime_min);
    }
    s
}

/// The shift instance starting on `date`, with its punch window.
struct Instance {
    date: NaiveDate,
    start: i64,
    end: i64,
    win_start: i64,
    win_end: i64,
}

impl Instance {
    /// How far `t` is from the shift itself (0 inside it).
    fn distance(&self, t: i64) -> i64 {
        if t < self.start {
            self.start.saturating_sub(t)
        } else {
            t.saturating_sub(self.end).max(0)
        }
    }
}

fn instances(schedule: &Schedule, first: NaiveDate, last: NaiveDate) -> Vec<Instance> {
    let shift = schedule.shift;
    let before = i64::from(shift.window_before_min) * MINUTE_MS;
    let after = i64::from(shift.window_after_min) * MINUTE_MS;
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| schedule.calendar.is_working_day(*d))
        .map(|date| {
            let (start, end) = shift_bounds(shift, date, schedule.tz);
            Instance {
                date,
                start,
                end,
                win_start: start.saturating_sub(before),
                win_end: end.saturating_add(after),
            }
        })
        .collect()
}

fn direction_order(d: Direction) -> u8 {
    match d {
        Direction::In => 0,
        Direction::Out => 1,
    }
}

/// What kind of day a date is for this employee.
enum Kind<'a> {
    Leave(&'a str),
    Holiday(&'a str),
    Rest,
    Work(&'a Instance),
}

/// Counted punches paired in time order.
struct Pairing<'p> {
    worked_ms: i64,
    /// Time between consecutive pairs (a lunch punched out): break already taken.
    gaps_ms: i64,
    orphan_ins: Vec<&'p PunchInput>,
    orphan_outs: Vec<&'p PunchInput>,
}

/// Pairs in-punches with the following out-punch. A second in-punch while one is open is a
/// duplicate and ignored (the first counts); a second out-punch right after a pair moves the
/// pair's end (the last counts). What is left unpaired is a missing punch.
fn pair<'p>(counted: &[&'p PunchInput]) -> Pairing<'p> {
    enum Prev {
        Start,
        In,
        ClosedOut,
        OrphanOut,
    }
    let mut open: Option<&PunchInput> = None;
    let mut pairs: Vec<(i64, i64)> = Vec::new();
    let mut orphan_outs: Vec<&PunchInput> = Vec::new();
    let mut prev = Prev::Start;
    for &p in counted {
        prev = match (p.direction, open) {
            (Direction::In, None) => {
                open = Some(p);
                Prev::In
            }
            (Direction::In, Some(_)) => Prev::In,
            (Direction::Out, Some(i)) => {
                open = None;
                pairs.push((i.at_ms, p.at_ms));
                Prev::ClosedOut
            }
            (Direction::Out, None) => match prev {
                Prev::ClosedOut => {
                    if let Some(last) = pairs.last_mut() {
                        last.1 = p.at_ms;
                    }
                    Prev::ClosedOut
                }
                Prev::OrphanOut => {
                    if let Some(last) = orphan_outs.last_mut() {
                        *last = p;
                    }
                    Prev::OrphanOut
                }
                Prev::Start | Prev::In => {
                    orphan_outs.push(p);
                    Prev::OrphanOut
                }
            },
        };
    }
    Pairing {
        worked_ms: pairs
            .iter()
            .fold(0i64, |sum, (i, o)| sum.saturating_add(o.saturating_sub(*i))),
        gaps_ms: pairs.windows(2).fold(0i64, |sum, w| {
            sum.saturating_add(w[1].0.saturating_sub(w[0].1).max(0))
        }),
        orphan_ins: open.into_iter().collect(),
        orphan_outs,
    }
}

/// Paired time less the unpaid break, where it applies; time punched out between pairs counts
/// towards the break, so a worker who clocks out for lunch is not charged it twice.
fn worked_minutes(worked_ms: i64, gaps_ms: i64, break_min: u16) -> u32 {
    let total = to_u32(worked_ms.div_euclid(MINUTE_MS));
    let brk = u32::from(break_min);
    if total > brk.saturating_add(BREAK_THRESHOLD_MIN) {
        let taken = to_u32(gaps_ms.div_euclid(MINUTE_MS));
        total - brk.saturating_sub(taken)
    } else {
        total
    }
}

/// A finding: the status it flags (none for a plain note) and its sentence (empty when another
/// part already says it).
struct Part {
    flag: Option<DayStatus>,
    text: String,
}

fn part(flag: DayStatus, text: String) -> Part {
    Part {
        flag: Some(flag),
        text,
    }
}

fn evaluate(
    date: NaiveDate,
    schedule: &Schedule,
    instance: Option<&Instance>,
    punches: &[&PunchInput],
    outside: &[&PunchInput],
) -> DayRecord {
    let shift = schedule.shift;
    let clock = Clock {
        tz: schedule.tz,
        date,
    };
    let counted: Vec<&PunchInput> = punches.iter().copied().filter(|p| p.counts()).collect();
    let rejected: Vec<&PunchInput> = punches.iter().copied().filter(|p| !p.counts()).collect();
    let pairing = pair(&counted);
    let worked_min = worked_minutes(pairing.worked_ms, pairing.gaps_ms, shift.break_min);
    let first_in = counted.iter().find(|p| p.direction == Direction::In);
    let last_out = counted.iter().rev().find(|p| p.direction == Direction::Out);
    // Work beyond the shift's due minutes on a day with a shift (also on leave); all work on a
    // day without one.
    let overtime_min = match instance {
        Some(_) => worked_min.saturating_sub(u32::from(shift.required_min)),
        None => worked_min,
    };

    let kind = if let Some(leave) = schedule.leave.get(&date) {
        Kind::Leave(leave)
    } else if let Some(name) = schedule.calendar.holidays.get(&date) {
        Kind::Holiday(name)
    } else if let Some(inst) = instance {
        Kind::Work(inst)
    } else {
        Kind::Rest
    };
    let due = matches!(kind, Kind::Work(_));

    let mut parts: Vec<Part> = Vec::new();
    let (late_min, early_leave_min) = match kind {
        Kind::Work(inst) => judge_shift(&clock, shift, inst, &counted, &rejected, &mut parts),
        off => {
            let worked = if counted.is_empty() {
                String::new()
            } else {
                format!(": worked {}", hours(worked_min))
            };
            let on_a = |what: &str| {
                if counted.is_empty() {
                    String::new()
                } else {
                    format!(" on a {what}")
                }
            };
            parts.push(match off {
                Kind::Leave(leave) => {
                    part(DayStatus::OnLeave, format!("on leave ({leave}){worked}"))
                }
                Kind::Holiday(name) => part(
                    DayStatus::Holiday,
                    format!("holiday ({name}){worked}{}", on_a("holiday")),
                ),
                Kind::Rest | Kind::Work(_) => part(
                    DayStatus::RestDay,
                    format!("rest day{worked}{}", on_a("rest day")),
                ),
            });
            (0, 0)
        }
    };

    for p in &pairing.orphan_ins {
        parts.push(part(
            DayStatus::MissingPunch,
            format!(
                "missing punch: in-punch {} has no out-punch",
                clock.punch_at(p)
            ),
        ));
    }
    for p in &pairing.orphan_outs {
        parts.push(part(
            DayStatus::MissingPunch,
            format!(
                "missing punch: out-punch {} has no in-punch",
                clock.punch_at(p)
            ),
        ));
    }
    if !rejected.is_empty() {
        // An absence for out-of-area punches alone already says so.
        let text = if due && counted.is_empty() {
            String::new()
        } else {
            format!(
                "out of area: {} not counted ({})",
                count_noun(rejected.len(), "punch", "punches"),
                list(&clock, &rejected)
            )
        };
        parts.push(part(DayStatus::OutOfArea, text));
    }
    if parts.iter().all(|p| p.flag.is_none()) {
        parts.push(part(
            DayStatus::Normal,
            normal_text(&clock, first_in, last_out, worked_min),
        ));
    }
    if !outside.is_empty() {
        parts.push(Part {
            flag: None,
            text: format!(
                "not counted: {} outside the shift's punch window ({})",
                count_noun(outside.len(), "punch", "punches"),
                list(&clock, outside)
            ),
        });
    }

    // Stable: parts of one status keep their order; notes go last.
    parts.sort_by_key(|p| p.flag.map_or(u8::MAX, DayStatus::rank));
    let mut flags: Vec<DayStatus> = Vec::new();
    for f in parts.iter().filter_map(|p| p.flag) {
        if !flags.contains(&f) {
            flags.push(f);
        }
    }
    let explanation = parts
        .iter()
        .map(|p| p.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("; ");

    DayRecord {
        date,
        status: flags.first().copied().unwrap_or(DayStatus::Normal),
        flags,
        explanation,
        due,
        scheduled_start_ms: instance.map(|i| i.start),
        scheduled_end_ms: instance.map(|i| i.end),
        first_in_ms: first_in.map(|p| p.at_ms),
        last_out_ms: last_out.map(|p| p.at_ms),
        worked_min,
        overtime_min,
        late_min,
        early_leave_min,
        punches: len_u32(punches.len()),
        makeups: count(punches, |p| p.makeup),
        out_of_area: len_u32(rejected.len()),
        suspicious: count(punches, |p| !p.makeup && p.trust == TrustLevel::Suspicious),
    }
}

/// Absence, lateness and early leave on a working day; returns the minutes late and left early.
fn judge_shift(
    clock: &Clock,
    shift: &Shift,
    inst: &Instance,
    counted: &[&PunchInput],
    rejected: &[&PunchInput],
    parts: &mut Vec<Part>,
) -> (u32, u32) {
    if counted.is_empty() {
        let text = if rejected.is_empty() {
            format!(
                "absent: no punches for shift {} ({}-{})",
                shift.name,
                clock.time(inst.start),
                clock.time(inst.end)
            )
        } else {
            format!(
                "absent: {} at {} {} out of area",
                count_noun(rejected.len(), "punch", "punches"),
                sites(rejected),
                if rejected.len() == 1 { "was" } else { "were" }
            )
        };
        parts.push(part(DayStatus::Absent, text));
        return (0, 0);
    }
    let (mut late_min, mut early_leave_min) = (0, 0);
    let mut absent_by_lateness = false;
    // Lateness and early leave are judged only when the day begins with an in-punch and ends
    // with an out-punch; otherwise the missing punch is the finding.
    if let Some(&first) = counted.first().filter(|p| p.direction == Direction::In) {
        let delta = first.at_ms.saturating_sub(inst.start).div_euclid(MINUTE_MS);
        late_min = to_u32(delta - i64::from(shift.grace_late_min));
        let first_text = format!("first in-punch {}", clock.punch_at(first));
        let start = clock.time(inst.start);
        if delta > i64::from(shift.absent_late_min) {
            absent_by_lateness = true;
            parts.push(part(
                DayStatus::Absent,
                format!(
                    "absent: {first_text} is {delta} min after the {start} start; more than {} min counts as absent",
                    shift.absent_late_min
                ),
            ));
        } else if delta > i64::from(shift.serious_late_min) {
            parts.push(part(
                DayStatus::SeriousLate,
                format!(
                    "serious late {late_min} min: {first_text}, shift starts {start}, grace {} min (more than {} min after the start is serious)",
                    shift.grace_late_min, shift.serious_late_min
                ),
            ));
        } else if late_min > 0 {
            parts.push(part(
                DayStatus::Late,
                format!(
                    "late {late_min} min: {first_text}, shift starts {start}, grace {} min",
                    shift.grace_late_min
                ),
            ));
        }
    }
    if let Some(&last) = counted.last().filter(|p| p.direction == Direction::Out) {
        let until = inst.end - i64::from(shift.grace_early_min) * MINUTE_MS;
        early_leave_min = to_u32(until.saturating_sub(last.at_ms).div_euclid(MINUTE_MS));
        // A day that counts as absent is not also an early leave.
        if early_leave_min > 0 && !absent_by_lateness {
            parts.push(part(
                DayStatus::EarlyLeave,
                format!(
                    "early leave {early_leave_min} min: last out-punch {}, shift ends {}, grace {} min",
                    clock.punch_at(last),
                    clock.time(inst.end),
                    shift.grace_early_min
                ),
            ));
        }
    }
    (late_min, early_leave_min)
}

fn normal_text(
    clock: &Clock,
    first_in: Option<&&PunchInput>,
    last_out: Option<&&PunchInput>,
    worked_min: u32,
) -> String {
    match (first_in, last_out) {
        (Some(i), Some(o)) => {
            let times = if i.site_name == o.site_name {
                format!(
                    "in {}, out {} at {}",
                    clock.punch_time(i),
                    clock.punch_time(o),
                    o.site_name
                )
            } else {
                format!("in {}, out {}", clock.punch_at(i), clock.punch_at(o))
            };
            format!("normal: {times}, worked {}", hours(worked_min))
        }
        _ => "normal".to_owned(),
    }
}

fn count(punches: &[&PunchInput], f: impl Fn(&PunchInput) -> bool) -> u32 {
    len_u32(punches.iter().filter(|p| f(p)).count())
}

fn to_u32(x: i64) -> u32 {
    u32::try_from(x.max(0)).unwrap_or(u32::MAX)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn count_noun(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Distinct site names in order of first appearance.
fn sites(punches: &[&PunchInput]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for p in punches {
        if !names.contains(&p.site_name.as_str()) {
            names.push(&p.site_name);
        }
    }
    names.join(", ")
}

fn list(clock: &Clock, punches: &[&PunchInput]) -> String {
    punches
        .iter()
        .map(|p| clock.punch_at(p))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hours(min: u32) -> String {
    format!("{} h {} min", min / 60, min % 60)
}

fn hh_mm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// Formats instants as the site's local wall-clock time, relative to the record's date.
struct Clock {
    tz: Tz,
    date: NaiveDate,
}

impl Clock {
    /// "09:12", or "06:02 (+1 day)" when the instant falls on another local date.
    fn time(&self, ms: i64) -> String {
        let Some(local) = local_naive(self.tz, ms) else {
            return format!("{ms} ms");
        };
        let days = local.date().signed_duration_since(self.date).num_days();
        let day = match days {
            0 => String::new(),
            1 => " (+1 day)".to_owned(),
            -1 => " (-1 day)".to_owned(),
            n if n > 0 => format!(" (+{n} days)"),
            n => format!(" ({n} days)"),
        };
        format!("{}{day}", local.format("%H:%M"))
    }

    /// The time with the punch's markers.
    fn punch_time(&self, p: &PunchInput) -> String {
        let mark = if p.makeup {
            " (make-up)"
        } else if p.trust == TrustLevel::Suspicious {
            " (suspicious)"
        } else {
            ""
        };
        format!("{}{mark}", self.time(p.at_ms))
    }

    fn punch_at(&self, p: &PunchInput) -> String {
        format!("{} at {}", self.punch_time(p), p.site_name)
    }
}

fn local_naive(tz: Tz, ms: i64) -> Option<NaiveDateTime> {
    Some(
        DateTime::from_timestamp_millis(ms)?
            .with_timezone(&tz)
            .naive_local(),
    )
}

fn offset_ms(tz: Tz, utc_ms: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp_millis(utc_ms)?.naive_utc();
    Some(i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1000)
}

/// The UTC instant of a local wall-clock time given as ms since the local epoch. Outside
/// chrono's range (hundreds of thousands of years away) it is taken as UTC.
fn resolve_local(tz: Tz, local_ms: i64) -> i64 {
    let Some(naive) = DateTime::from_timestamp_millis(local_ms).map(|d| d.naive_utc()) else {
        return local_ms;
    };
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.timestamp_millis(),
        chrono::LocalResult::Ambiguous(a, b) => a.timestamp_millis().min(b.timestamp_millis()),
        chrono::LocalResult::None => gap_end(tz, local_ms),
    }
}

/// The first instant whose local time is at or after `local_ms`, for a local time in a gap: the
/// instant the clocks jumped. Offsets stay within ±1 day, and a gap is the only transition near
/// it, so local time grows with UTC on the interval searched.
fn gap_end(tz: Tz, local_ms: i64) -> i64 {
    const SPAN_MS: i64 = 30 * 3_600_000;
    let reaches = |u: i64| offset_ms(tz, u).is_some_and(|off| u.saturating_add(off) >= local_ms);
    let (mut lo, mut hi) = (
        local_ms.saturating_sub(SPAN_MS),
        local_ms.saturating_add(SPAN_MS),
    );
    if !reaches(hi) {
        return local_ms;
    }
    // Invariant: reaches(hi), and lo < hi.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Dates as "YYYY-MM-DD", the format chrono's own serde support uses (not enabled here).
mod iso_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    const FORMAT: &str = "%Y-%m-%d";

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&date.format(FORMAT))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub fn format(date: &NaiveDate) -> String {
        date.format(FORMAT).to_string()
    }

    pub fn parse(s: &str) -> Result<NaiveDate, String> {
        NaiveDate::parse_from_str(s, FORMAT)
            .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD)"))
    }
}

mod iso_date_map {
    use super::iso_date;
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<NaiveDate, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter().map(|(k, v)| (iso_date::format(k), v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<NaiveDate, String>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| Ok((iso_date::parse(&k).map_err(D::Error::custom)?, v)))
            .collect()
    }
}

mod iso_date_set {
    use super::iso_date;
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::collections::BTreeSet;

    pub fn serialize<S: Serializer>(set: &BTreeSet<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.iter().map(iso_date::format))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<NaiveDate>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| iso_date::parse(s).map_err(D::Error::custom))
            .collect()
    }
}
