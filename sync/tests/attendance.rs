//! Attendance day status: one day's rules, night shifts across DST changes, sites in different
//! zones, period summaries, and a property test that any punches give one record per date.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use fieldsync_sync::attendance::*;
use fieldsync_sync::trust::TrustLevel;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const BERLIN: Tz = chrono_tz::Europe::Berlin;
const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
const HOUR_MS: i64 = 3_600_000;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// UTC ms of a local wall-clock time in `tz` (the earlier instant if it is ambiguous).
fn at(tz: Tz, day: &str, time: &str) -> i64 {
    let naive = NaiveDateTime::parse_from_str(&format!("{day} {time}"), "%Y-%m-%d %H:%M")
        .expect("test date-time");
    tz.from_local_datetime(&naive)
        .earliest()
        .expect("test time exists in the zone")
        .timestamp_millis()
}

fn utc(s: &str) -> i64 {
    at(chrono_tz::UTC, &s[..10], &s[11..16])
}

fn punch(ms: i64, direction: Direction) -> PunchInput {
    PunchInput {
        id: format!("p{ms}-{}", direction.as_str()),
        at_ms: ms,
        direction,
        site_name: "Site A".to_owned(),
        trust: TrustLevel::Verified,
        makeup: false,
    }
}

fn p_in(tz: Tz, day: &str, time: &str) -> PunchInput {
    punch(at(tz, day, time), Direction::In)
}

fn p_out(tz: Tz, day: &str, time: &str) -> PunchInput {
    punch(at(tz, day, time), Direction::Out)
}

/// 09:00-17:00, 30 min unpaid break, 7 h 30 min due.
fn day_shift() -> Shift {
    Shift {
        name: "Day".to_owned(),
        start_min: 9 * 60,
        end_min: 17 * 60,
        grace_late_min: 5,
        grace_early_min: 5,
        serious_late_min: 30,
        absent_late_min: 120,
        window_before_min: 120,
        window_after_min: 240,
        break_min: 30,
        required_min: 450,
    }
}

/// 22:00-06:00 the next morning, same rules as the day shift.
fn night_shift() -> Shift {
    Shift {
        name: "Night".to_owned(),
        start_min: 22 * 60,
        end_min: 6 * 60,
        ..day_shift()
    }
}

fn every_day() -> Calendar {
    Calendar {
        workdays: [true; 7],
        ..Calendar::default()
    }
}

fn days_with(
    shift: &Shift,
    calendar: &Calendar,
    leave: &BTreeMap<NaiveDate, String>,
    tz: Tz,
    from: &str,
    to: &str,
    punches: &[PunchInput],
) -> Vec<DayRecord> {
    let schedule = Schedule {
        shift,
        calendar,
        tz,
        leave,
    };
    derive_days(date(from), date(to), &schedule, punches)
}

/// The one record for `day` on the Berlin day shift, Monday to Friday, no leave.
fn berlin_day(day: &str, punches: &[PunchInput]) -> DayRecord {
    one_day(
        &day_shift(),
        &Calendar::monday_to_friday(),
        BERLIN,
        day,
        punches,
    )
}

fn one_day(
    shift: &Shift,
    calendar: &Calendar,
    tz: Tz,
    day: &str,
    punches: &[PunchInput],
) -> DayRecord {
    let mut days = days_with(shift, calendar, &BTreeMap::new(), tz, day, day, punches);
    assert_eq!(days.len(), 1);
    days.remove(0)
}

// 2026-03-02 is a Monday, in winter time (CET, UTC+1).
const MON: &str = "2026-03-02";

#[test]
fn normal_day_reports_times_and_worked_time() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "08:57"), p_out(BERLIN, MON, "17:03")],
    );
    assert_eq!(d.status, DayStatus::Normal);
    assert_eq!(d.flags, vec![DayStatus::Normal]);
    assert_eq!(
        d.explanation,
        "normal: in 08:57, out 17:03 at Site A, worked 7 h 36 min"
    );
    assert!(d.due);
    assert_eq!(d.scheduled_start_ms, Some(utc("2026-03-02T08:00")));
    assert_eq!(d.scheduled_end_ms, Some(utc("2026-03-02T16:00")));
    assert_eq!(d.first_in_ms, Some(at(BERLIN, MON, "08:57")));
    assert_eq!(d.last_out_ms, Some(at(BERLIN, MON, "17:03")));
    // 8 h 6 min paired, less the 30 min break.
    assert_eq!(d.worked_min, 456);
    assert_eq!(d.overtime_min, 6);
    assert_eq!((d.late_min, d.early_leave_min, d.punches), (0, 0, 2));
}

#[test]
fn in_punch_within_grace_is_not_late() {
    let within = punch(at(BERLIN, MON, "09:05") + 59_000, Direction::In);
    let d = berlin_day(MON, &[within, p_out(BERLIN, MON, "17:00")]);
    assert_eq!(d.status, DayStatus::Normal);
    assert_eq!(d.late_min, 0);

    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:06"), p_out(BERLIN, MON, "17:00")],
    );
    assert_eq!(d.status, DayStatus::Late);
    assert_eq!(d.late_min, 1);
}

#[test]
fn late_seven_minutes_is_explained_against_the_shift_start() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:12"), p_out(BERLIN, MON, "17:00")],
    );
    assert_eq!(d.status, DayStatus::Late);
    assert_eq!(d.flags, vec![DayStatus::Late]);
    assert_eq!(d.late_min, 7);
    assert_eq!(
        d.explanation,
        "late 7 min: first in-punch 09:12 at Site A, shift starts 09:00, grace 5 min"
    );
}

#[test]
fn late_beyond_the_serious_threshold_is_serious_late() {
    let at_threshold = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:30"), p_out(BERLIN, MON, "17:00")],
    );
    assert_eq!(at_threshold.status, DayStatus::Late);

    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:31"), p_out(BERLIN, MON, "17:00")],
    );
    assert_eq!(d.status, DayStatus::SeriousLate);
    assert_eq!(d.flags, vec![DayStatus::SeriousLate]);
    assert_eq!(d.late_min, 26);
    assert!(
        d.explanation
            .starts_with("serious late 26 min: first in-punch 09:31 at Site A, shift starts 09:00"),
        "{}",
        d.explanation
    );
}

#[test]
fn first_in_punch_past_the_absence_threshold_counts_as_absent() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "11:40"), p_out(BERLIN, MON, "17:00")],
    );
    assert_eq!(d.status, DayStatus::Absent);
    assert_eq!(d.flags, vec![DayStatus::Absent]);
    assert_eq!(
        d.explanation,
        "absent: first in-punch 11:40 at Site A is 160 min after the 09:00 start; more than 120 min counts as absent"
    );
    // The work done still counts.
    assert_eq!(d.worked_min, 320 - 30);
    let s = summarize(&[d]);
    assert_eq!((s.absences, s.days_present, s.late_count), (1, 0, 0));
}

#[test]
fn no_punches_on_a_working_day_is_absent() {
    let d = berlin_day(MON, &[]);
    assert_eq!(d.status, DayStatus::Absent);
    assert!(d.due);
    assert_eq!(
        d.explanation,
        "absent: no punches for shift Day (09:00-17:00)"
    );
    assert_eq!((d.worked_min, d.punches), (0, 0));
}

#[test]
fn only_rejected_punches_is_absent_and_out_of_area() {
    let mut a = p_in(BERLIN, MON, "09:00");
    let mut b = p_out(BERLIN, MON, "17:00");
    a.trust = TrustLevel::Rejected;
    b.trust = TrustLevel::Rejected;
    let d = berlin_day(MON, &[a, b]);
    assert_eq!(d.status, DayStatus::Absent);
    assert_eq!(d.flags, vec![DayStatus::Absent, DayStatus::OutOfArea]);
    assert_eq!(
        d.explanation,
        "absent: 2 punches at Site A were out of area"
    );
    assert_eq!((d.out_of_area, d.punches, d.worked_min), (2, 2, 0));
    assert_eq!(d.first_in_ms, None);
}

#[test]
fn rejected_punch_among_counted_ones_is_out_of_area_and_not_counted() {
    let mut stray = p_out(BERLIN, MON, "12:00");
    stray.trust = TrustLevel::Rejected;
    stray.site_name = "Site B".to_owned();
    let d = berlin_day(
        MON,
        &[
            p_in(BERLIN, MON, "09:00"),
            stray,
            p_out(BERLIN, MON, "17:00"),
        ],
    );
    assert_eq!(d.status, DayStatus::OutOfArea);
    assert_eq!(d.flags, vec![DayStatus::OutOfArea]);
    assert_eq!(
        d.explanation,
        "out of area: 1 punch not counted (12:00 at Site B)"
    );
    // Had the 12:00 out counted, the 17:00 out would have replaced it anyway; with it not
    // counted the day is one 8 h pair.
    assert_eq!(d.worked_min, 450);
    assert_eq!(d.out_of_area, 1);
}

#[test]
fn suspicious_punches_count_and_are_tallied() {
    let mut a = p_in(BERLIN, MON, "09:00");
    a.trust = TrustLevel::Suspicious;
    let d = berlin_day(MON, &[a, p_out(BERLIN, MON, "17:00")]);
    assert_eq!(d.status, DayStatus::Normal);
    assert_eq!(d.suspicious, 1);
    assert_eq!(d.worked_min, 450);
    assert_eq!(
        d.explanation,
        "normal: in 09:00 (suspicious), out 17:00 at Site A, worked 7 h 30 min"
    );
}

#[test]
fn make_up_punch_counts_as_trusted_and_is_marked() {
    let mut b = p_out(BERLIN, MON, "17:00");
    b.makeup = true;
    // Its location grade does not matter once a manager approved it.
    b.trust = TrustLevel::Rejected;
    let d = berlin_day(MON, &[p_in(BERLIN, MON, "09:00"), b]);
    assert_eq!(d.status, DayStatus::Normal);
    assert_eq!((d.makeups, d.out_of_area), (1, 0));
    assert_eq!(
        d.explanation,
        "normal: in 09:00, out 17:00 (make-up) at Site A, worked 7 h 30 min"
    );
}

#[test]
fn in_punch_without_out_punch_is_missing_punch() {
    let d = berlin_day(MON, &[p_in(BERLIN, MON, "09:02")]);
    assert_eq!(d.status, DayStatus::MissingPunch);
    assert_eq!(d.flags, vec![DayStatus::MissingPunch]);
    assert_eq!(
        d.explanation,
        "missing punch: in-punch 09:02 at Site A has no out-punch"
    );
    assert_eq!((d.worked_min, d.early_leave_min), (0, 0));

    // Lateness is still judged from a day that begins with an in-punch.
    let d = berlin_day(MON, &[p_in(BERLIN, MON, "09:12")]);
    assert_eq!(d.flags, vec![DayStatus::MissingPunch, DayStatus::Late]);
}

#[test]
fn out_punch_without_in_punch_is_missing_punch() {
    let d = berlin_day(MON, &[p_out(BERLIN, MON, "17:01")]);
    assert_eq!(d.status, DayStatus::MissingPunch);
    assert_eq!(d.flags, vec![DayStatus::MissingPunch]);
    assert_eq!(
        d.explanation,
        "missing punch: out-punch 17:01 at Site A has no in-punch"
    );
    assert_eq!(d.last_out_ms, Some(at(BERLIN, MON, "17:01")));
    assert_eq!(d.worked_min, 0);

    // Repeated out-punches with no in-punch: the last one is named.
    let d = berlin_day(
        MON,
        &[p_out(BERLIN, MON, "12:00"), p_out(BERLIN, MON, "17:01")],
    );
    assert_eq!(
        d.explanation,
        "missing punch: out-punch 17:01 at Site A has no in-punch"
    );
}

#[test]
fn duplicate_in_punches_keep_the_first_and_repeated_outs_keep_the_last() {
    let d = berlin_day(
        MON,
        &[
            p_in(BERLIN, MON, "08:55"),
            p_in(BERLIN, MON, "09:10"),
            p_out(BERLIN, MON, "16:00"),
            p_out(BERLIN, MON, "17:05"),
        ],
    );
    assert_eq!(d.status, DayStatus::Normal, "{}", d.explanation);
    assert_eq!(d.first_in_ms, Some(at(BERLIN, MON, "08:55")));
    assert_eq!(d.last_out_ms, Some(at(BERLIN, MON, "17:05")));
    // 08:55-17:05 is 8 h 10 min, less the break.
    assert_eq!(d.worked_min, 460);
    assert_eq!(d.punches, 4);
}

#[test]
fn early_leave_is_explained_against_the_shift_end() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:00"), p_out(BERLIN, MON, "16:30")],
    );
    assert_eq!(d.status, DayStatus::EarlyLeave);
    assert_eq!(d.early_leave_min, 25);
    assert_eq!(
        d.explanation,
        "early leave 25 min: last out-punch 16:30 at Site A, shift ends 17:00, grace 5 min"
    );
    let within = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:00"), p_out(BERLIN, MON, "16:55")],
    );
    assert_eq!(within.status, DayStatus::Normal);
}

#[test]
fn late_and_early_leave_are_both_flagged_late_first() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:12"), p_out(BERLIN, MON, "16:30")],
    );
    assert_eq!(d.status, DayStatus::Late);
    assert_eq!(d.flags, vec![DayStatus::Late, DayStatus::EarlyLeave]);
    assert_eq!(
        d.explanation,
        "late 7 min: first in-punch 09:12 at Site A, shift starts 09:00, grace 5 min; \
         early leave 25 min: last out-punch 16:30 at Site A, shift ends 17:00, grace 5 min"
    );
}

#[test]
fn work_beyond_the_required_minutes_is_overtime() {
    let d = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "08:00"), p_out(BERLIN, MON, "19:00")],
    );
    assert_eq!(d.status, DayStatus::Normal);
    assert_eq!(d.worked_min, 660 - 30);
    assert_eq!(d.overtime_min, 630 - 450);
}

#[test]
fn break_is_deducted_only_when_work_exceeds_it_by_more_than_two_hours() {
    let exactly = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:00"), p_out(BERLIN, MON, "11:30")],
    );
    assert_eq!(exactly.worked_min, 150);
    let more = berlin_day(
        MON,
        &[p_in(BERLIN, MON, "09:00"), p_out(BERLIN, MON, "11:31")],
    );
    assert_eq!(more.worked_min, 151 - 30);
    // A lunch punched out for the whole break: the break was taken, nothing more comes off.
    let split = berlin_day(
        MON,
        &[
            p_in(BERLIN, MON, "09:00"),
            p_out(BERLIN, MON, "12:00"),
            p_in(BERLIN, MON, "12:30"),
            p_out(BERLIN, MON, "17:00"),
        ],
    );
    assert_eq!(split.worked_min, 450);
    // A 10-minute dash out: the rest of the 30-minute break still comes off.
    let dash = berlin_day(
        MON,
        &[
            p_in(BERLIN, MON, "09:00"),
            p_out(BERLIN, MON, "12:00"),
            p_in(BERLIN, MON, "12:10"),
            p_out(BERLIN, MON, "17:00"),
        ],
    );
    assert_eq!(dash.worked_min, 470 - 20);
}

#[test]
fn holiday_is_not_due_and_work_on_it_is_overtime() {
    let mut calendar = Calendar::monday_to_friday();
    calendar
        .holidays
        .insert(date("2026-05-01"), "Labour Day".to_owned());
    let quiet = one_day(&day_shift(), &calendar, BERLIN, "2026-05-01", &[]);
    assert_eq!(quiet.status, DayStatus::Holiday);
    assert!(!quiet.due);
    assert_eq!(quiet.explanation, "holiday (Labour Day)");
    assert_eq!(quiet.scheduled_start_ms, None);

    let worked = one_day(
        &day_shift(),
        &calendar,
        BERLIN,
        "2026-05-01",
        &[
            p_in(BERLIN, "2026-05-01", "10:00"),
            p_out(BERLIN, "2026-05-01", "14:00"),
        ],
    );
    assert_eq!(worked.status, DayStatus::Holiday);
    assert_eq!(worked.flags, vec![DayStatus::Holiday]);
    assert_eq!(worked.worked_min, 240 - 30);
    assert_eq!(worked.overtime_min, 240 - 30);
    assert_eq!(
        worked.explanation,
        "holiday (Labour Day): worked 3 h 30 min on a holiday"
    );
}

#[test]
fn weekend_is_a_rest_day_unless_it_is_an_extra_workday() {
    let mut calendar = Calendar::monday_to_friday();
    calendar.extra_workdays.insert(date("2026-03-14"));
    let shift = day_shift();
    let days = days_with(
        &shift,
        &calendar,
        &BTreeMap::new(),
        BERLIN,
        "2026-03-07",
        "2026-03-15",
        &[
            p_in(BERLIN, "2026-03-07", "10:00"),
            p_out(BERLIN, "2026-03-07", "12:00"),
        ],
    );
    let sat = &days[0];
    assert_eq!(sat.status, DayStatus::RestDay);
    assert!(!sat.due);
    assert_eq!(sat.scheduled_start_ms, None);
    assert_eq!((sat.worked_min, sat.overtime_min), (120, 120));
    assert_eq!(sat.explanation, "rest day: worked 2 h 0 min on a rest day");

    let sun = &days[1];
    assert_eq!(
        (sun.status, sun.explanation.as_str()),
        (DayStatus::RestDay, "rest day")
    );

    let extra = &days[7];
    assert_eq!(extra.date, date("2026-03-14"));
    assert_eq!(extra.status, DayStatus::Absent);
    assert!(extra.due);
    assert_eq!(days[8].status, DayStatus::RestDay);
}

#[test]
fn leave_day_is_not_absent_and_still_counts_work() {
    let mut leave = BTreeMap::new();
    leave.insert(date("2026-03-03"), "annual".to_owned());
    leave.insert(date("2026-03-04"), "half day".to_owned());
    let shift = day_shift();
    let days = days_with(
        &shift,
        &Calendar::monday_to_friday(),
        &leave,
        BERLIN,
        "2026-03-03",
        "2026-03-04",
        &[
            p_in(BERLIN, "2026-03-04", "09:00"),
            p_out(BERLIN, "2026-03-04", "11:00"),
        ],
    );
    assert_eq!(days[0].status, DayStatus::OnLeave);
    assert!(!days[0].due);
    assert_eq!(days[0].explanation, "on leave (annual)");
    assert_eq!(days[1].status, DayStatus::OnLeave);
    assert_eq!(days[1].worked_min, 120);
    assert_eq!(days[1].overtime_min, 0);
    assert_eq!(days[1].explanation, "on leave (half day): worked 2 h 0 min");
    let s = summarize(&days);
    assert_eq!((s.leave_days, s.days_due, s.absences), (2, 0, 0));
}

#[test]
fn night_shift_on_the_fall_back_night_lasts_nine_hours() {
    let (start, end) = shift_bounds(&night_shift(), date("2026-10-24"), BERLIN);
    assert_eq!(start, utc("2026-10-24T20:00"));
    assert_eq!(end, utc("2026-10-25T05:00"));
    assert_eq!(end - start, 9 * HOUR_MS);

    let d = one_day(
        &night_shift(),
        &every_day(),
        BERLIN,
        "2026-10-24",
        &[
            p_in(BERLIN, "2026-10-24", "21:58"),
            p_out(BERLIN, "2026-10-25", "06:02"),
        ],
    );
    assert_eq!(d.status, DayStatus::Normal);
    // 9 h 4 min on the clock-wall's 8 h 4 min, less the break.
    assert_eq!(d.worked_min, 544 - 30);
    assert_eq!(d.overtime_min, 514 - 450);
    assert_eq!(
        d.explanation,
        "normal: in 21:58, out 06:02 (+1 day) at Site A, worked 8 h 34 min"
    );
}

#[test]
fn night_shift_on_the_spring_forward_night_lasts_seven_hours() {
    let (start, end) = shift_bounds(&night_shift(), date("2026-03-28"), BERLIN);
    assert_eq!(start, utc("2026-03-28T21:00"));
    assert_eq!(end, utc("2026-03-29T04:00"));
    assert_eq!(end - start, 7 * HOUR_MS);

    let d = one_day(
        &night_shift(),
        &every_day(),
        BERLIN,
        "2026-03-28",
        &[
            p_in(BERLIN, "2026-03-28", "22:00"),
            p_out(BERLIN, "2026-03-29", "06:00"),
        ],
    );
    assert_eq!(d.status, DayStatus::Normal, "{}", d.explanation);
    assert_eq!(d.worked_min, 420 - 30);
    assert_eq!((d.early_leave_min, d.overtime_min), (0, 0));
}

#[test]
fn shift_times_in_a_dst_gap_or_overlap_resolve_to_the_first_valid_and_earlier_instant() {
    let shift = Shift {
        start_min: 2 * 60 + 30,
        end_min: 10 * 60,
        ..day_shift()
    };
    // 02:30 does not exist on 2026-03-29: the clocks jump from 02:00 CET to 03:00 CEST.
    let (start, _) = shift_bounds(&shift, date("2026-03-29"), BERLIN);
    assert_eq!(start, utc("2026-03-29T01:00"));
    // 02:30 happens twice on 2026-10-25: first in CEST.
    let (start, end) = shift_bounds(&shift, date("2026-10-25"), BERLIN);
    assert_eq!(start, utc("2026-10-25T00:30"));
    assert_eq!(end, utc("2026-10-25T09:00"));
}

#[test]
fn night_punches_before_and_after_midnight_belong_to_the_same_shift() {
    let days = days_with(
        &night_shift(),
        &every_day(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-10",
        "2026-03-11",
        &[
            p_in(BERLIN, "2026-03-10", "23:30"),
            p_out(BERLIN, "2026-03-11", "05:55"),
        ],
    );
    let night = &days[0];
    assert_eq!(night.punches, 2);
    assert_eq!(night.first_in_ms, Some(at(BERLIN, "2026-03-10", "23:30")));
    assert_eq!(night.last_out_ms, Some(at(BERLIN, "2026-03-11", "05:55")));
    assert_eq!(night.status, DayStatus::SeriousLate);
    assert_eq!(night.early_leave_min, 0);
    assert_eq!(night.worked_min, 385 - 30);
    assert_eq!((days[1].punches, days[1].status), (0, DayStatus::Absent));
}

#[test]
fn night_shift_from_the_day_before_the_period_keeps_its_morning_out_punch() {
    // The caller passes the evening before as margin; the period starts the morning after.
    let days = days_with(
        &night_shift(),
        &every_day(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-11",
        "2026-03-11",
        &[
            p_in(BERLIN, "2026-03-10", "22:00"),
            p_out(BERLIN, "2026-03-11", "06:00"),
        ],
    );
    assert_eq!(days[0].punches, 0);
    assert_eq!(
        days[0].explanation,
        "absent: no punches for shift Night (22:00-06:00 (+1 day))"
    );
}

#[test]
fn in_punch_the_evening_before_an_early_shift_belongs_to_the_next_day() {
    let early = Shift {
        name: "Early".to_owned(),
        start_min: 30,
        end_min: 8 * 60 + 30,
        ..day_shift()
    };
    let evening = [p_in(BERLIN, "2026-03-10", "23:00")];
    let both = days_with(
        &early,
        &every_day(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-10",
        "2026-03-11",
        &evening,
    );
    assert_eq!((both[0].punches, both[1].punches), (0, 1));
    assert_eq!(
        both[1].explanation,
        "missing punch: in-punch 23:00 (-1 day) at Site A has no out-punch"
    );
    // Deriving only the earlier day, the punch is still the next day's, not a stray.
    let alone = days_with(
        &early,
        &every_day(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-10",
        "2026-03-10",
        &evening,
    );
    assert_eq!(
        alone[0].explanation,
        "absent: no punches for shift Early (00:30-08:30)"
    );
}

#[test]
fn punch_equally_far_from_two_shifts_starts_the_later_or_ends_the_earlier() {
    // 06:00-18:00 with 12 h windows: midnight is 6 h from both Monday's end and Tuesday's start.
    let shift = Shift {
        start_min: 6 * 60,
        end_min: 18 * 60,
        window_before_min: 720,
        window_after_min: 720,
        ..day_shift()
    };
    let midnight = at(BERLIN, "2026-03-03", "00:00");
    let derive = |p: PunchInput| {
        days_with(
            &shift,
            &every_day(),
            &BTreeMap::new(),
            BERLIN,
            MON,
            "2026-03-03",
            &[p],
        )
    };
    let days = derive(punch(midnight, Direction::In));
    assert_eq!((days[0].punches, days[1].punches), (0, 1));
    let days = derive(punch(midnight, Direction::Out));
    assert_eq!((days[0].punches, days[1].punches), (1, 0));
}

#[test]
fn friday_night_shift_out_punch_on_saturday_is_not_rest_day_work() {
    let days = days_with(
        &night_shift(),
        &Calendar::monday_to_friday(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-13",
        "2026-03-14",
        &[
            p_in(BERLIN, "2026-03-13", "22:00"),
            p_out(BERLIN, "2026-03-14", "06:00"),
        ],
    );
    assert_eq!(days[0].status, DayStatus::Normal);
    assert_eq!(days[0].worked_min, 450);
    assert_eq!(days[1].status, DayStatus::RestDay);
    assert_eq!((days[1].punches, days[1].worked_min), (0, 0));
}

#[test]
fn overlapping_windows_give_a_punch_to_the_nearest_shift() {
    // 06:00-20:00 with 12 h windows: Monday's window runs to Tuesday 08:00 and Tuesday's opens
    // on Monday 18:00.
    let long = Shift {
        name: "Long".to_owned(),
        start_min: 6 * 60,
        end_min: 20 * 60,
        window_before_min: 720,
        window_after_min: 720,
        break_min: 60,
        required_min: 780,
        ..day_shift()
    };
    long.validate().expect("valid shift");
    let days = days_with(
        &long,
        &every_day(),
        &BTreeMap::new(),
        BERLIN,
        MON,
        "2026-03-03",
        &[
            p_in(BERLIN, MON, "06:00"),
            p_out(BERLIN, MON, "20:30"),
            p_in(BERLIN, "2026-03-03", "05:00"),
            p_out(BERLIN, "2026-03-03", "20:00"),
        ],
    );
    assert_eq!(days[0].last_out_ms, Some(at(BERLIN, MON, "20:30")));
    assert_eq!(days[0].status, DayStatus::Normal);
    assert_eq!(days[1].first_in_ms, Some(at(BERLIN, "2026-03-03", "05:00")));
    assert_eq!(days[1].status, DayStatus::Normal);
}

#[test]
fn punch_outside_every_window_on_a_working_day_is_mentioned_not_counted() {
    let d = berlin_day(MON, &[p_in(BERLIN, MON, "03:00")]);
    assert_eq!(d.status, DayStatus::Absent);
    assert_eq!(d.punches, 0);
    assert_eq!(
        d.explanation,
        "absent: no punches for shift Day (09:00-17:00); \
         not counted: 1 punch outside the shift's punch window (03:00 at Site A)"
    );
}

#[test]
fn same_wall_clock_shift_in_shanghai_and_berlin_differs_in_utc_not_in_status() {
    let day = "2026-01-12";
    let (berlin_start, berlin_end) = shift_bounds(&day_shift(), date(day), BERLIN);
    let (shanghai_start, shanghai_end) = shift_bounds(&day_shift(), date(day), SHANGHAI);
    assert_eq!(berlin_start, utc("2026-01-12T08:00"));
    assert_eq!(shanghai_start, utc("2026-01-12T01:00"));
    assert_eq!(berlin_end - shanghai_end, 7 * HOUR_MS);

    let record = |tz: Tz| {
        one_day(
            &day_shift(),
            &Calendar::monday_to_friday(),
            tz,
            day,
            &[p_in(tz, day, "09:12"), p_out(tz, day, "16:30")],
        )
    };
    let (b, s) = (record(BERLIN), record(SHANGHAI));
    assert_eq!(b.flags, vec![DayStatus::Late, DayStatus::EarlyLeave]);
    assert_eq!(
        (
            &b.flags,
            &b.explanation,
            b.worked_min,
            b.late_min,
            b.early_leave_min
        ),
        (
            &s.flags,
            &s.explanation,
            s.worked_min,
            s.late_min,
            s.early_leave_min
        )
    );
    assert_ne!(b.first_in_ms, s.first_in_ms);

    // Berlin's 09:12 is Shanghai's 16:12: on Shanghai's shift it is serious lateness.
    let berlin_punches = [p_in(BERLIN, day, "09:12"), p_out(BERLIN, day, "16:30")];
    let off = one_day(
        &day_shift(),
        &Calendar::monday_to_friday(),
        SHANGHAI,
        day,
        &berlin_punches,
    );
    assert_ne!(off.flags, b.flags);
}

/// A week on the day shift, Monday 2026-03-02 to Sunday 2026-03-08, leave on Wednesday.
fn mixed_week() -> (BTreeMap<NaiveDate, String>, Vec<PunchInput>) {
    let mut leave = BTreeMap::new();
    leave.insert(date("2026-03-04"), "annual".to_owned());
    let mut makeup_in = p_in(BERLIN, "2026-03-06", "09:00");
    makeup_in.makeup = true;
    let mut rejected = p_out(BERLIN, "2026-03-06", "12:00");
    rejected.trust = TrustLevel::Rejected;
    let mut suspicious = p_in(BERLIN, "2026-03-07", "10:00");
    suspicious.trust = TrustLevel::Suspicious;
    let punches = vec![
        p_in(BERLIN, MON, "08:57"),
        p_out(BERLIN, MON, "17:03"),
        p_in(BERLIN, "2026-03-03", "09:12"),
        p_out(BERLIN, "2026-03-03", "16:30"),
        // Thursday: nothing.
        makeup_in,
        rejected,
        suspicious,
        p_out(BERLIN, "2026-03-07", "12:00"),
    ];
    (leave, punches)
}

#[test]
fn summary_totals_a_mixed_week() {
    let (leave, punches) = mixed_week();
    let shift = day_shift();
    let calendar = Calendar::monday_to_friday();
    let days = days_with(
        &shift,
        &calendar,
        &leave,
        BERLIN,
        MON,
        "2026-03-08",
        &punches,
    );
    let statuses: Vec<DayStatus> = days.iter().map(|d| d.status).collect();
    assert_eq!(
        statuses,
        vec![
            DayStatus::Normal,
            DayStatus::Late,
            DayStatus::OnLeave,
            DayStatus::Absent,
            DayStatus::MissingPunch,
            DayStatus::RestDay,
            DayStatus::RestDay,
        ]
    );
    assert_eq!(
        days[4].flags,
        vec![DayStatus::MissingPunch, DayStatus::OutOfArea]
    );
    assert_eq!(
        summarize(&days),
        Summary {
            days_due: 4,
            days_present: 3,
            late_count: 1,
            late_min: 7,
            early_leave_count: 1,
            early_leave_min: 25,
            absences: 1,
            missing_punches: 1,
            makeups: 1,
            out_of_area: 1,
            suspicious: 1,
            leave_days: 1,
            // Monday 456, Tuesday 09:12-16:30 less the break 408, Saturday 120.
            worked_min: 456 + 408 + 120,
            overtime_min: 6 + 120,
        }
    );
}

#[test]
fn unsorted_punches_and_margin_days_give_the_same_records() {
    let (leave, punches) = mixed_week();
    let shift = day_shift();
    let calendar = Calendar::monday_to_friday();
    let sorted = days_with(
        &shift,
        &calendar,
        &leave,
        BERLIN,
        MON,
        "2026-03-08",
        &punches,
    );

    let mut messy = punches.clone();
    // The caller's margin: work on the Sunday before and the Monday after.
    messy.push(p_in(BERLIN, "2026-03-01", "10:00"));
    messy.push(p_out(BERLIN, "2026-03-01", "23:50"));
    messy.push(p_in(BERLIN, "2026-03-09", "00:10"));
    messy.push(p_out(BERLIN, "2026-03-09", "17:00"));
    messy.reverse();
    messy.rotate_left(3);
    // The same punch passed twice is one punch.
    messy.push(punches[0].clone());
    let days = days_with(&shift, &calendar, &leave, BERLIN, MON, "2026-03-08", &messy);
    assert_eq!(days, sorted);
    assert_eq!(days.first().map(|d| d.date), Some(date(MON)));
    assert_eq!(days.last().map(|d| d.date), Some(date("2026-03-08")));
}

#[test]
fn empty_period_gives_no_records() {
    let days = days_with(
        &day_shift(),
        &Calendar::monday_to_friday(),
        &BTreeMap::new(),
        BERLIN,
        "2026-03-08",
        "2026-03-07",
        &[],
    );
    assert!(days.is_empty());
}

#[test]
fn shift_validation_rejects_bad_shifts_with_reasons() {
    day_shift().validate().expect("day shift is valid");
    night_shift().validate().expect("night shift is valid");
    let cases: Vec<(Shift, &str)> = vec![
        (
            Shift {
                name: " ".to_owned(),
                ..day_shift()
            },
            "needs a name",
        ),
        (
            Shift {
                start_min: 1440,
                ..day_shift()
            },
            "start_min is 1440",
        ),
        (
            Shift {
                end_min: 2000,
                ..day_shift()
            },
            "end_min is 2000",
        ),
        (
            Shift {
                end_min: 9 * 60,
                ..day_shift()
            },
            "24-hour shifts",
        ),
        (
            Shift {
                required_min: 0,
                ..day_shift()
            },
            "at least 1 minute",
        ),
        (
            Shift {
                required_min: 480,
                ..day_shift()
            },
            "do not fit",
        ),
        (
            Shift {
                grace_late_min: 31,
                ..day_shift()
            },
            "late grace",
        ),
        (
            Shift {
                serious_late_min: 121,
                ..day_shift()
            },
            "absence threshold",
        ),
        (
            Shift {
                absent_late_min: 481,
                ..day_shift()
            },
            "longer than the shift",
        ),
        (
            Shift {
                grace_early_min: 481,
                ..day_shift()
            },
            "early-leave grace",
        ),
        (
            Shift {
                window_before_min: 721,
                ..day_shift()
            },
            "at most 720 min",
        ),
        (
            Shift {
                window_after_min: 721,
                ..day_shift()
            },
            "window after the end",
        ),
    ];
    for (shift, reason) in cases {
        let err = shift.validate().expect_err(reason);
        assert_eq!(err.code, "invalid_shift", "{reason}");
        assert!(err.message.contains(reason), "{reason}: {}", err.message);
    }
}

#[test]
fn direction_and_status_use_their_wire_names() {
    assert_eq!("in".parse::<Direction>(), Ok(Direction::In));
    assert_eq!(Direction::Out.as_str(), "out");
    let err = "sideways"
        .parse::<Direction>()
        .expect_err("not a direction");
    assert_eq!(err.code, "invalid_punch_direction");
    assert_eq!(DayStatus::SeriousLate.as_str(), "serious_late");
    assert_eq!(
        serde_json::to_string(&DayStatus::MissingPunch).expect("serialises"),
        "\"missing_punch\""
    );
}

#[test]
fn calendar_and_day_record_serialise_dates_as_iso_strings() {
    let mut calendar = Calendar::monday_to_friday();
    calendar
        .holidays
        .insert(date("2026-05-01"), "Labour Day".to_owned());
    calendar.extra_workdays.insert(date("2026-03-14"));
    let json = serde_json::to_value(&calendar).expect("serialises");
    assert_eq!(json["holidays"]["2026-05-01"], "Labour Day");
    assert_eq!(json["extra_workdays"][0], "2026-03-14");
    let back: Calendar = serde_json::from_value(json).expect("deserialises");
    assert_eq!(back, calendar);

    let day = berlin_day(MON, &[]);
    let json = serde_json::to_value(&day).expect("serialises");
    assert_eq!(json["date"], MON);
    assert_eq!(json["status"], "absent");
    let back: DayRecord = serde_json::from_value(json).expect("deserialises");
    assert_eq!(back, day);

    let bad = serde_json::json!({"workdays": [true, true, true, true, true, false, false], "holidays": {"1 May": "x"}, "extra_workdays": []});
    assert!(serde_json::from_value::<Calendar>(bad).is_err());
}

const ZONES: [Tz; 5] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Shanghai,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Pacific::Apia,
];

fn any_shift() -> impl Strategy<Value = Shift> {
    (
        prop_oneof![0u16..1440, any::<u16>()],
        prop_oneof![0u16..1440, any::<u16>()],
        prop::array::uniform4(any::<u16>()),
        prop_oneof![0u16..=720, any::<u16>()],
        prop_oneof![0u16..=720, any::<u16>()],
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(
            |(
                start_min,
                end_min,
                th,
                window_before_min,
                window_after_min,
                break_min,
                required_min,
            )| Shift {
                name: "P".to_owned(),
                start_min,
                end_min,
                grace_late_min: th[0],
                grace_early_min: th[1],
                serious_late_min: th[2],
                absent_late_min: th[3],
                window_before_min,
                window_after_min,
                break_min,
                required_min,
            },
        )
}

fn any_punch(base_ms: i64) -> impl Strategy<Value = PunchInput> {
    (
        prop_oneof![
            9 => (-3 * 24 * HOUR_MS..45 * 24 * HOUR_MS).prop_map(move |o| base_ms + o),
            1 => any::<i64>(),
        ],
        any::<bool>(),
        0u8..4,
        any::<bool>(),
        0u8..20,
    )
        .prop_map(|(at_ms, is_in, trust, makeup, id)| PunchInput {
            id: format!("p{id}"),
            at_ms,
            direction: if is_in { Direction::In } else { Direction::Out },
            site_name: "Site".to_owned(),
            trust: [
                TrustLevel::Verified,
                TrustLevel::Unverifiable,
                TrustLevel::Suspicious,
                TrustLevel::Rejected,
            ][usize::from(trust)],
            makeup,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn derive_days_gives_one_record_per_date_for_any_input(
        start_day in 0u64..900,
        len in 0u64..40,
        zone in 0usize..ZONES.len(),
        shift in any_shift(),
        workdays in prop::array::uniform7(any::<bool>()),
        holiday_offsets in prop::collection::btree_set(0u64..40, 0..4),
        leave_offsets in prop::collection::btree_set(0u64..40, 0..4),
        offsets in prop::collection::vec(-3i64 * 24 * HOUR_MS..45 * 24 * HOUR_MS, 0..40),
        extra in prop::collection::vec(any_punch(0), 0..10),
    ) {
        let tz = ZONES[zone];
        let from = date("2025-06-01") + chrono::Days::new(start_day);
        let to = from + chrono::Days::new(len);
        let base = at(chrono_tz::UTC, &from.format("%Y-%m-%d").to_string(), "00:00");
        let calendar = Calendar {
            workdays,
            holidays: holiday_offsets.iter().map(|o| (from + chrono::Days::new(*o), "H".to_owned())).collect(),
            extra_workdays: BTreeSet::new(),
        };
        let leave: BTreeMap<NaiveDate, String> =
            leave_offsets.iter().map(|o| (from + chrono::Days::new(*o), "annual".to_owned())).collect();
        let mut punches: Vec<PunchInput> = offsets
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let dir = if i % 2 == 0 { Direction::In } else { Direction::Out };
                punch(base + o, dir)
            })
            .collect();
        punches.extend(extra);
        let schedule = Schedule { shift: &shift, calendar: &calendar, tz, leave: &leave };

        let days = derive_days(from, to, &schedule, &punches);

        prop_assert_eq!(days.len() as u64, len + 1);
        for (d, expected) in days.iter().zip(from.iter_days()) {
            prop_assert_eq!(d.date, expected);
            prop_assert_eq!(d.flags.first().copied(), Some(d.status));
            let off = matches!(d.status, DayStatus::OnLeave | DayStatus::Holiday | DayStatus::RestDay);
            prop_assert_eq!(d.due, !off);
            prop_assert!(d.out_of_area <= d.punches);
        }
        let attributed: u32 = days.iter().map(|d| d.punches).sum();
        prop_assert!(attributed as usize <= punches.len());
        let s = summarize(&days);
        prop_assert_eq!(s.days_present + s.absences, s.days_due);
    }
}
