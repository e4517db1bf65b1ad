//! HR attendance reports: per employee over a period, the totals (days due and present,
//! lateness, early leave, absences, missing punches, make-ups, out-of-area and suspicious
//! punches, worked hours and overtime) and a per-day detail with the reason for each status.
//!
//! Building a report is pure: [`build`] takes what the store loaded ([`AttendanceInputs`]) and
//! runs `fieldsync_sync::attendance` for each employee in their primary site's time zone.
//! [`to_csv`] and [`to_xlsx`] write it out. The HTTP route and the `fieldsync report attendance`
//! command both end here.

use crate::store::{AttendanceInputs, Person};
use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use fieldsync_sync::attendance::{self, DayRecord, PunchInput, Schedule, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Longest period one report covers.
pub const MAX_DAYS: i64 = 366;

/// One employee's part of a report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EmployeeReport {
    pub user_id: String,
    pub email: String,
    pub site: String,
    pub project: String,
    pub timezone: String,
    pub shift: String,
    pub summary: Summary,
    pub days: Vec<DayRecord>,
}

/// A whole report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttendanceReport {
    pub from: String,
    pub to: String,
    pub employees: Vec<EmployeeReport>,
    /// People in the selection who punched in the period but have no site assignment (so no
    /// schedule to report against).
    pub unscheduled: Vec<String>,
}

/// Why a report cannot be built as asked.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("'{0}' is not a date (YYYY-MM-DD).")]
    BadDate(String),
    #[error("The period ends before it starts.")]
    Reversed,
    #[error("A report covers at most {MAX_DAYS} days; ask for a shorter period.")]
    TooLong,
}

/// Parses and checks a report period.
pub fn period(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), PeriodError> {
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| PeriodError::BadDate(s.to_owned()))
    };
    let (f, t) = (parse(from)?, parse(to)?);
    if t < f {
        return Err(PeriodError::Reversed);
    }
    if (t - f).num_days() >= MAX_DAYS {
        return Err(PeriodError::TooLong);
    }
    Ok((f, t))
}

/// The UTC range of punches a report over `from..=to` must load: the local dates in any time
/// zone (UTC-12 to UTC+14) plus a night shift's spill into the next day.
pub fn load_range_ms(from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0)
    };
    (midnight(from) - 2 * DAY, midnight(to) + 3 * DAY)
}

/// Builds the report for every person in `inputs` over `from..=to`.
pub fn build(inputs: &AttendanceInputs, from: NaiveDate, to: NaiveDate) -> AttendanceReport {
    let no_leave = BTreeMap::new();
    let mut employees = Vec::new();
    let mut unscheduled = Vec::new();
    // Punches arrive sorted by user then time (the store sorts them): slice per user instead
    // of scanning. Input in another order is sorted here first rather than misread.
    let sorted;
    let all: &[crate::store::PunchRow] = if inputs
        .punches
        .is_sorted_by(|a, b| (a.user.as_str(), a.at_ms) <= (b.user.as_str(), b.at_ms))
    {
        &inputs.punches
    } else {
        let mut v = inputs.punches.clone();
        v.sort_by(|a, b| (a.user.as_str(), a.at_ms).cmp(&(b.user.as_str(), b.at_ms)));
        sorted = v;
        &sorted
    };
    let mut by_user: std::collections::HashMap<&str, &[crate::store::PunchRow]> =
        std::collections::HashMap::new();
    let mut start = 0;
    while start < all.len() {
        let user = all[start].user.as_str();
        let mut end = start;
        while end < all.len() && all[end].user == user {
            end += 1;
        }
        by_user.insert(user, &all[start..end]);
        start = end;
    }
    for person in &inputs.people {
        let Some(primary) = inputs.assignments.get(&person.id).and_then(|a| a.first()) else {
            // Punches with no schedule to judge them by: HR needs to assign this person.
            if person_has_punches(&by_user, person) {
                unscheduled.push(person.email.clone());
            }
            continue;
        };
        let (Some(shift), Some(calendar)) = (
            inputs.shifts.get(&primary.shift_id),
            inputs.calendars.get(&primary.calendar_id),
        ) else {
            unscheduled.push(person.email.clone());
            continue;
        };
        let tz: Tz = primary.timezone.parse().unwrap_or(Tz::UTC);
        let punches: Vec<PunchInput> = by_user
            .get(person.id.as_str())
            .into_iter()
            .flat_map(|rows| rows.iter())
            .map(|p| PunchInput {
                id: p.id.clone(),
                at_ms: p.at_ms,
                direction: p.direction,
                site_name: inputs
                    .site_names
                    .get(&(p.project.clone(), p.site.clone()))
                    .cloned()
                    .unwrap_or_else(|| p.site.clone()),
                trust: p.trust,
                makeup: p.makeup,
            })
            .collect();
        let schedule = Schedule {
            shift,
            calendar,
            tz,
            leave: inputs.leave.get(&person.id).unwrap_or(&no_leave),
        };
        // Before the assignment starts, no work is due: those days are left out.
        let first = primary.starts_on.map_or(from, |s| s.max(from));
        if first > to {
            continue;
        }
        let days = attendance::derive_days(first, to, &schedule, &punches);
        employees.push(EmployeeReport {
            user_id: person.id.clone(),
            email: person.email.clone(),
            site: primary.site_name.clone(),
            project: primary.project_name.clone(),
            timezone: primary.timezone.clone(),
            shift: shift.name.clone(),
            summary: attendance::summarize(&days),
            days,
        });
    }
    AttendanceReport {
        from: from.to_string(),
        to: to.to_string(),
        employees,
        unscheduled,
    }
}

fn person_has_punches(
    by_user: &std::collections::HashMap<&str, &[crate::store::PunchRow]>,
    p: &Person,
) -> bool {
    by_user.contains_key(p.id.as_str())
}

/// Hours as a decimal with two places, rounded as the XLSX shows them ("7.60"; 10 min is "0.17").
fn hours(min: u32) -> String {
    let hundredths = (u64::from(min) * 100 + 30) / 60;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// A local date and time ("2026-11-03 09:12") of a UTC instant in `tz`.
fn local(ms: Option<i64>, tz: Tz) -> String {
    ms.and_then(|ms| tz.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// One CSV field: quoted when needed; text that a spreadsheet would run as a formula is
/// prefixed with an apostrophe (CSV injection).
fn field(out: &mut String, value: &str, text: bool) {
    let guarded;
    let value = if text && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn row(out: &mut String, cells: &[(&str, bool)]) {
    for (i, (v, text)) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, v, *text);
    }
    out.push_str("\r\n");
}

/// The summary's counts, in the order of [`SUMMARY_HEADER`] from `days_due`.
fn summary_counts(s: &Summary) -> [u32; 12] {
    [
        s.days_due,
        s.days_present,
        s.late_count,
        s.late_min,
        s.early_leave_count,
        s.early_leave_min,
        s.absences,
        s.missing_punches,
        s.makeups,
        s.out_of_area,
        s.suspicious,
        s.leave_days,
    ]
}

/// A day's counts, in the order of [`DAYS_HEADER`] from `worked_minutes`.
fn day_counts(d: &DayRecord) -> [u32; 8] {
    [
        d.worked_min,
        d.overtime_min,
        d.late_min,
        d.early_leave_min,
        d.punches,
        d.makeups,
        d.out_of_area,
        d.suspicious,
    ]
}

/// The two sheets a report has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sheet {
    Summary,
    Days,
}

pub const SUMMARY_HEADER: [&str; 20] = [
    "employee_id",
    "email",
    "project",
    "site",
    "timezone",
    "shift",
    "days_due",
    "days_present",
    "late_count",
    "late_minutes",
    "early_leave_count",
    "early_leave_minutes",
    "absences",
    "missing_punches",
    "makeups",
    "out_of_area_punches",
    "suspicious_punches",
    "leave_days",
    "worked_hours",
    "overtime_hours",
];

pub const DAYS_HEADER: [&str; 21] = [
    "employee_id",
    "email",
    "date",
    "weekday",
    "site",
    "status",
    "flags",
    "due",
    "scheduled_start",
    "scheduled_end",
    "first_in",
    "last_out",
    "worked_minutes",
    "overtime_minutes",
    "late_minutes",
    "early_leave_minutes",
    "punches",
    "makeups",
    "out_of_area",
    "suspicious",
    "explanation",
];

/// The summary sheet as CSV (RFC 4180, CRLF line ends).
pub fn to_csv(report: &AttendanceReport, sheet: Sheet) -> String {
    let mut out = String::with_capacity(match sheet {
        Sheet::Summary => 200 * (report.employees.len() + 1),
        Sheet::Days => 260 * report.employees.len() * 32,
    });
    match sheet {
        Sheet::Summary => {
            row(&mut out, &SUMMARY_HEADER.map(|h| (h, false)));
            for e in &report.employees {
                let s = &e.summary;
                let n = summary_counts(s).map(|v| v.to_string());
                let (w, o) = (hours(s.worked_min), hours(s.overtime_min));
                let mut cells: Vec<(&str, bool)> = vec![
                    (&e.user_id, false),
                    (&e.email, true),
                    (&e.project, true),
                    (&e.site, true),
                    (&e.timezone, false),
                    (&e.shift, true),
                ];
                cells.extend(n.iter().map(|v| (v.as_str(), false)));
                cells.push((&w, false));
                cells.push((&o, false));
                row(&mut out, &cells);
            }
        }
        Sheet::Days => {
            row(&mut out, &DAYS_HEADER.map(|h| (h, false)));
            let mut line = String::new();
            for e in &report.employees {
                let tz: Tz = e.timezone.parse().unwrap_or(Tz::UTC);
                for d in &e.days {
                    line.clear();
                    let flags = d
                        .flags
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(";");
                    let date = d.date.to_string();
                    let weekday = d.date.weekday().to_string();
                    let due = if d.due { "yes" } else { "no" };
                    let times = [
                        local(d.scheduled_start_ms, tz),
                        local(d.scheduled_end_ms, tz),
                        local(d.first_in_ms, tz),
                        local(d.last_out_ms, tz),
                    ];
                    let nums = day_counts(d).map(|v| v.to_string());
                    let mut cells: Vec<(&str, bool)> = vec![
                        (&e.user_id, false),
                        (&e.email, true),
                        (&date, false),
                        (&weekday, false),
                        (&e.site, true),
                        (d.status.as_str(), false),
                        (&flags, false),
                        (due, false),
                    ];
                    cells.extend(times.iter().map(|v| (v.as_str(), false)));
                    cells.extend(nums.iter().map(|v| (v.as_str(), false)));
                    cells.push((&d.explanation, true));
                    row(&mut line, &cells);
                    out.push_str(&line);
                }
            }
        }
    }
    out
}

/// Why an XLSX could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write the spreadsheet: {0}")]
pub struct XlsxError(#[from] rust_xlsxwriter::XlsxError);

/// The report as an XLSX workbook with two sheets, "Summary" and "Days". `created` fixes the
/// document's creation time (so the same report gives the same bytes).
pub fn to_xlsx(report: &AttendanceReport, created_ms: i64) -> Result<Vec<u8>, XlsxError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook};
    let mut wb = Workbook::new();
    let when = chrono::DateTime::from_timestamp_millis(created_ms).unwrap_or_default();
    let created =
        ExcelDateTime::from_ymd(when.year() as u16, when.month() as u8, when.day() as u8)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!("Attendance {} to {}", report.from, report.to))
            .set_author("fieldsync")
            .set_creation_datetime(&created),
    );
    let bold = Format::new().set_bold();
    let hours_fmt = Format::new().set_num_format("0.00");
    let date_fmt = Format::new()
        .set_num_format("yyyy-mm-dd")
        .set_align(FormatAlign::Left);

    let summary = wb.add_worksheet_with_constant_memory()?;
    summary.set_name("Summary")?;
    for (c, h) in SUMMARY_HEADER.iter().enumerate() {
        summary.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, e) in report.employees.iter().enumerate() {
        let r = i as u32 + 1;
        let s = &e.summary;
        summary.write_string(r, 0, &e.user_id)?;
        summary.write_string(r, 1, &e.email)?;
        summary.write_string(r, 2, &e.project)?;
        summary.write_string(r, 3, &e.site)?;
        summary.write_string(r, 4, &e.timezone)?;
        summary.write_string(r, 5, &e.shift)?;
        let nums = summary_counts(s);
        for (k, v) in nums.iter().enumerate() {
            summary.write_number(r, 6 + k as u16, f64::from(*v))?;
        }
        summary.write_number_with_format(r, 18, f64::from(s.worked_min) / 60.0, &hours_fmt)?;
        summary.write_number_with_format(r, 19, f64::from(s.overtime_min) / 60.0, &hours_fmt)?;
    }
    summary.set_freeze_panes(1, 2)?;
    summary.set_column_width(0, 38)?;
    summary.set_column_width(1, 28)?;

    let days = wb.add_worksheet_with_constant_memory()?;
    days.set_name("Days")?;
    for (c, h) in DAYS_HEADER.iter().enumerate() {
        days.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    days.set_freeze_panes(1, 3)?;
    days.set_column_width(0, 38)?;
    days.set_column_width(1, 28)?;
    days.set_column_width(2, 11)?;
    days.set_column_width(20, 80)?;
    let mut r: u32 = 1;
    for e in &report.employees {
        let tz: Tz = e.timezone.parse().unwrap_or(Tz::UTC);
        for d in &e.days {
            days.write_string(r, 0, &e.user_id)?;
            days.write_string(r, 1, &e.email)?;
            let date = ExcelDateTime::from_ymd(
                d.date.year() as u16,
                d.date.month() as u8,
                d.date.day() as u8,
            )?;
            days.write_datetime_with_format(r, 2, &date, &date_fmt)?;
            days.write_string(r, 3, d.date.weekday().to_string())?;
            days.write_string(r, 4, &e.site)?;
            days.write_string(r, 5, d.status.as_str())?;
            let mut flags = String::new();
            for (i, f) in d.flags.iter().enumerate() {
                if i > 0 {
                    flags.push(';');
                }
                let _ = write!(flags, "{}", f.as_str());
            }
            days.write_string(r, 6, &flags)?;
            days.write_string(r, 7, if d.due { "yes" } else { "no" })?;
            for (k, t) in [
                d.scheduled_start_ms,
                d.scheduled_end_ms,
                d.first_in_ms,
                d.last_out_ms,
            ]
            .into_iter()
            .enumerate()
            {
                let text = local(t, tz);
                if !text.is_empty() {
                    days.write_string(r, 8 + k as u16, &text)?;
                }
            }
            for (k, v) in day_counts(d).into_iter().enumerate() {
                days.write_number(r, 12 + k as u16, f64::from(v))?;
            }
            days.write_string(r, 20, &d.explanation)?;
            r += 1;
        }
    }
    Ok(wb.save_to_buffer()?)
}
