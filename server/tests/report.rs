//! The HR attendance report's exported formats, pinned by snapshots: the summary and days
//! sheets as CSV, and the XLSX workbook read back (its parts and a grid of every cell), from
//! inputs built by hand with fixed ids so that every status the report knows turns up once:
//! a Berlin night shift across the 2026-10-25 change back to winter time, a Shanghai day shift,
//! a holiday, leave, lateness, early leave, a missing punch, an out-of-area punch, a suspicious
//! punch, an approved make-up and people without an assignment. Then the edges of the format:
//! CSV quoting and the formula-injection guard, hours, refused periods, and the UTC range a
//! report loads.
//!
//! Review a changed snapshot with `cargo insta review`, or accept all with
//! `INSTA_UPDATE=always cargo test -p fieldsync-server --test report`.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use fieldsync_server::report::{self, AttendanceReport, EmployeeReport, PeriodError, Sheet};
use fieldsync_server::store::{AssignmentRow, AttendanceInputs, Person, PunchRow};
use fieldsync_sync::attendance::{Calendar, DayRecord, DayStatus, Shift, Summary};
use fieldsync_sync::{Direction, Role, TrustLevel};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

const NIGHT: &str = "00000000-0000-7000-8000-00000000000a";
const DAY: &str = "00000000-0000-7000-8000-00000000000b";
const FLOAT: &str = "00000000-0000-7000-8000-00000000000c";
const GONE: &str = "00000000-0000-7000-8000-00000000000d";
const HR: &str = "00000000-0000-7000-8000-00000000000e";
const PROJECT: &str = "00000000-0000-7000-8000-0000000000f1";
/// 2026-11-02 10:00 UTC: when the workbook says it was made.
const CREATED_MS: i64 = 1_793_613_600_000;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// A local wall-clock time in `tz` as UTC ms (the earlier instant of a repeated hour).
fn at(tz: &str, s: &str) -> i64 {
    let tz: Tz = tz.parse().expect("tz");
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
    tz.from_local_datetime(&naive)
        .earliest()
        .expect("local time exists")
        .timestamp_millis()
}

fn berlin(s: &str) -> i64 {
    at("Europe/Berlin", s)
}

fn shanghai(s: &str) -> i64 {
    at("Asia/Shanghai", s)
}

fn person(id: &str, email: &str, role: Role, disabled: bool) -> Person {
    Person {
        id: id.into(),
        email: email.into(),
        role,
        manager: None,
        disabled,
    }
}

fn assignment(user: &str, email: &str, site: &str, site_name: &str, tz: &str) -> AssignmentRow {
    AssignmentRow {
        user: user.into(),
        email: email.into(),
        project: PROJECT.into(),
        project_name: "Depots".into(),
        site: site.into(),
        site_name: site_name.into(),
        timezone: tz.into(),
        shift_id: format!("shift-{site}"),
        calendar_id: format!("calendar-{site}"),
        starts_on: None,
        created_at: 0,
    }
}

/// A punch with the graded trust level as the store keeps it; `n` makes the id.
fn punch(
    n: u32,
    user: &str,
    site: &str,
    at_ms: i64,
    dir: Direction,
    trust: TrustLevel,
) -> PunchRow {
    PunchRow {
        id: format!("00000000-0000-7000-8000-{n:012}"),
        user: user.into(),
        at_ms,
        direction: dir,
        project: PROJECT.into(),
        site: site.into(),
        trust,
        makeup: false,
    }
}

/// An approved make-up, as the store adds it to the punches.
fn makeup(n: u32, user: &str, site: &str, at_ms: i64, dir: Direction) -> PunchRow {
    PunchRow {
        makeup: true,
        trust: TrustLevel::Verified,
        ..punch(n, user, site, at_ms, dir, TrustLevel::Verified)
    }
}

fn night_shift() -> Shift {
    Shift {
        name: "Night 22-06".into(),
        start_min: 22 * 60,
        end_min: 6 * 60,
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

fn day_shift() -> Shift {
    Shift {
        name: "Day 09-17".into(),
        start_min: 9 * 60,
        end_min: 17 * 60,
        grace_late_min: 5,
        grace_early_min: 5,
        serious_late_min: 30,
        absent_late_min: 120,
        window_before_min: 120,
        window_after_min: 240,
        break_min: 60,
        required_min: 420,
    }
}

/// The report's inputs, as `Store::attendance_inputs` would load them for 2026-10-23..27.
///
/// Berlin depot, night shift 22:00-06:00, Monday to Saturday:
/// - Thu 22 (before the period): in 21:59, out Fri 06:00. Belongs to Thursday's shift, so it
///   must not show on Friday.
/// - Fri 23: annual leave.
/// - Sat 24: in 21:58 CEST, out Sun 06:01 CET: the clocks went back in between, so that is
///   9 h 3 min, less the 30 min break = 513 min, 63 over the 450 due.
/// - Sun 25: rest day.
/// - Mon 26: in 22:12 (late 7 min past the 5 min grace); the out-punch was missed and a
///   make-up at Tue 06:00 approved. 7 h 48 min - 30 = 438 min.
/// - Tue 27: an in-punch at 21:50 graded out of area (not counted), a good one at 21:57, and a
///   suspicious out at Wed 06:03 (after the period, but Tuesday's shift). 8 h 6 min - 30 = 456.
///
/// Pudong yard (Shanghai), day shift 09:00-17:00, Monday to Friday, Fri 23 a holiday:
/// - Fri 23: holiday. Sat 24: came in 10:00-12:00 on a rest day (2 h, all overtime).
/// - Sun 25: rest day.
/// - Mon 26: in 08:59, lunch 12:00-13:00, a suspicious out at 16:30: early leave 25 min (17:00
///   less the 5 min grace); paired 3 h 1 min + 3 h 30 min = 391, less the 60 min break = 331.
/// - Tue 27: in 09:03, out 12:02, in 13:01 and no out: a missing punch. 179 min paired, not
///   more than break + 120, so no break is taken off.
///
/// No assignment: float@ (active: unscheduled), hr@ (active: unscheduled), gone@ (disabled
/// and no punches: left out).
fn inputs() -> AttendanceInputs {
    use Direction::{In, Out};
    use TrustLevel::{Rejected, Suspicious, Verified};
    let mut punches = vec![
        punch(1, NIGHT, "berlin", berlin("2026-10-22 21:59"), In, Verified),
        punch(
            2,
            NIGHT,
            "berlin",
            berlin("2026-10-23 06:00"),
            Out,
            Verified,
        ),
        punch(3, NIGHT, "berlin", berlin("2026-10-24 21:58"), In, Verified),
        punch(
            4,
            NIGHT,
            "berlin",
            berlin("2026-10-25 06:01"),
            Out,
            Verified,
        ),
        punch(5, NIGHT, "berlin", berlin("2026-10-26 22:12"), In, Verified),
        makeup(6, NIGHT, "berlin", berlin("2026-10-27 06:00"), Out),
        punch(7, NIGHT, "berlin", berlin("2026-10-27 21:50"), In, Rejected),
        punch(8, NIGHT, "berlin", berlin("2026-10-27 21:57"), In, Verified),
        punch(
            9,
            NIGHT,
            "berlin",
            berlin("2026-10-28 06:03"),
            Out,
            Suspicious,
        ),
        punch(
            10,
            DAY,
            "shanghai",
            shanghai("2026-10-24 10:00"),
            In,
            Verified,
        ),
        punch(
            11,
            DAY,
            "shanghai",
            shanghai("2026-10-24 12:00"),
            Out,
            Verified,
        ),
        punch(
            12,
            DAY,
            "shanghai",
            shanghai("2026-10-26 08:59"),
            In,
            Verified,
        ),
        punch(
            13,
            DAY,
            "shanghai",
            shanghai("2026-10-26 12:00"),
            Out,
            Verified,
        ),
        punch(
            14,
            DAY,
            "shanghai",
            shanghai("2026-10-26 13:00"),
            In,
            Verified,
        ),
        punch(
            15,
            DAY,
            "shanghai",
            shanghai("2026-10-26 16:30"),
            Out,
            Suspicious,
        ),
        punch(
            16,
            DAY,
            "shanghai",
            shanghai("2026-10-27 09:03"),
            In,
            Verified,
        ),
        punch(
            17,
            DAY,
            "shanghai",
            shanghai("2026-10-27 12:02"),
            Out,
            Verified,
        ),
        punch(
            18,
            DAY,
            "shanghai",
            shanghai("2026-10-27 13:01"),
            In,
            Verified,
        ),
    ];
    // The store's order: by user, then time. `report::build` relies on it.
    punches.sort_by(|a, b| (a.user.as_str(), a.at_ms).cmp(&(b.user.as_str(), b.at_ms)));

    let mut berlin_days = Calendar {
        workdays: [true, true, true, true, true, true, false],
        ..Calendar::default()
    };
    berlin_days
        .holidays
        .insert(date("2026-10-03"), "Tag der Deutschen Einheit".into());
    let mut shanghai_days = Calendar::monday_to_friday();
    shanghai_days
        .holidays
        .insert(date("2026-10-23"), "Company day".into());

    AttendanceInputs {
        // The store lists people by email.
        people: vec![
            person(DAY, "day@acme.test", Role::FieldRep, false),
            person(FLOAT, "float@acme.test", Role::FieldRep, false),
            person(GONE, "gone@acme.test", Role::FieldRep, true),
            person(HR, "hr@acme.test", Role::Hr, false),
            person(NIGHT, "night@acme.test", Role::FieldRep, false),
        ],
        assignments: HashMap::from([
            (
                NIGHT.to_owned(),
                vec![assignment(
                    NIGHT,
                    "night@acme.test",
                    "berlin",
                    "Berlin depot",
                    "Europe/Berlin",
                )],
            ),
            (
                DAY.to_owned(),
                vec![assignment(
                    DAY,
                    "day@acme.test",
                    "shanghai",
                    "Pudong yard",
                    "Asia/Shanghai",
                )],
            ),
        ]),
        shifts: HashMap::from([
            ("shift-berlin".to_owned(), night_shift()),
            ("shift-shanghai".to_owned(), day_shift()),
        ]),
        calendars: HashMap::from([
            ("calendar-berlin".to_owned(), berlin_days),
            ("calendar-shanghai".to_owned(), shanghai_days),
        ]),
        leave: HashMap::from([(
            NIGHT.to_owned(),
            BTreeMap::from([(date("2026-10-23"), "annual".to_owned())]),
        )]),
        site_names: HashMap::from([
            (
                (PROJECT.to_owned(), "berlin".to_owned()),
                "Berlin depot".to_owned(),
            ),
            (
                (PROJECT.to_owned(), "shanghai".to_owned()),
                "Pudong yard".to_owned(),
            ),
        ]),
        punches,
    }
}

fn the_report() -> AttendanceReport {
    report::build(&inputs(), date("2026-10-23"), date("2026-10-27"))
}

fn employee<'r>(rep: &'r AttendanceReport, email: &str) -> &'r EmployeeReport {
    rep.employees
        .iter()
        .find(|e| e.email == email)
        .expect("employee in the report")
}

#[test]
fn every_status_is_derived_as_the_rules_say() {
    use DayStatus::*;
    let rep = the_report();
    // Only people who punched without a schedule are listed: float@ and hr@ did not punch.
    assert!(rep.unscheduled.is_empty(), "{:?}", rep.unscheduled);
    let emails: Vec<&str> = rep.employees.iter().map(|e| e.email.as_str()).collect();
    assert_eq!(emails, ["day@acme.test", "night@acme.test"]);

    let night = employee(&rep, "night@acme.test");
    let row = |d: &DayRecord| {
        (
            d.date.to_string(),
            d.status,
            d.flags.clone(),
            d.worked_min,
            d.overtime_min,
            d.late_min,
            d.early_leave_min,
            d.punches,
        )
    };
    let got: Vec<_> = night.days.iter().map(row).collect();
    let want = [
        ("2026-10-23", OnLeave, vec![OnLeave], 0, 0, 0, 0, 0),
        ("2026-10-24", Normal, vec![Normal], 513, 63, 0, 0, 2),
        ("2026-10-25", RestDay, vec![RestDay], 0, 0, 0, 0, 0),
        ("2026-10-26", Late, vec![Late], 438, 0, 7, 0, 2),
        ("2026-10-27", OutOfArea, vec![OutOfArea], 456, 6, 0, 0, 3),
    ]
    .map(|(d, s, f, w, o, l, e, p)| (d.to_owned(), s, f, w, o, l, e, p));
    assert_eq!(got, want);
    let sat = &night.days[1];
    assert_eq!(
        sat.scheduled_end_ms.expect("end") - sat.scheduled_start_ms.expect("start"),
        9 * 3_600_000,
        "the night the clocks go back is nine real hours"
    );
    assert_eq!((night.days[3].makeups, night.days[4].out_of_area), (1, 1));
    assert_eq!(night.days[4].suspicious, 1);

    let day = employee(&rep, "day@acme.test");
    let got: Vec<_> = day.days.iter().map(row).collect();
    let want = [
        ("2026-10-23", Holiday, vec![Holiday], 0, 0, 0, 0, 0),
        ("2026-10-24", RestDay, vec![RestDay], 120, 120, 0, 0, 2),
        ("2026-10-25", RestDay, vec![RestDay], 0, 0, 0, 0, 0),
        // Lunch punched out for the whole hour: the break is not taken off again.
        ("2026-10-26", EarlyLeave, vec![EarlyLeave], 391, 0, 0, 25, 4),
        (
            "2026-10-27",
            MissingPunch,
            vec![MissingPunch],
            179,
            0,
            0,
            0,
            3,
        ),
    ]
    .map(|(d, s, f, w, o, l, e, p)| (d.to_owned(), s, f, w, o, l, e, p));
    assert_eq!(got, want);

    assert_eq!(
        night.summary,
        Summary {
            days_due: 3,
            days_present: 3,
            late_count: 1,
            late_min: 7,
            early_leave_count: 0,
            early_leave_min: 0,
            absences: 0,
            missing_punches: 0,
            makeups: 1,
            out_of_area: 1,
            suspicious: 1,
            leave_days: 1,
            worked_min: 513 + 438 + 456,
            overtime_min: 63 + 6,
        }
    );
    assert_eq!(
        day.summary,
        Summary {
            days_due: 2,
            days_present: 2,
            late_count: 0,
            late_min: 0,
            early_leave_count: 1,
            early_leave_min: 25,
            absences: 0,
            missing_punches: 1,
            makeups: 0,
            out_of_area: 0,
            suspicious: 1,
            leave_days: 0,
            worked_min: 120 + 391 + 179,
            overtime_min: 120,
        }
    );
}

#[test]
fn summary_csv_is_stable() {
    insta::assert_snapshot!(report::to_csv(&the_report(), Sheet::Summary));
}

#[test]
fn days_csv_is_stable() {
    insta::assert_snapshot!(report::to_csv(&the_report(), Sheet::Days));
}

/// The parts of a zip file, by name, uncompressed.
fn unzip(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    let mut parts = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("zip entry");
        // No clock in the file: every part is dated the zip epoch (1980-01-01), so the bytes
        // depend on the report and `created_ms` alone.
        assert_eq!(f.last_modified(), Some(zip::DateTime::default()));
        let mut text = String::new();
        f.read_to_string(&mut text).expect("a text part");
        let name = f.name().expect("a part name").into_owned();
        parts.insert(name, text);
    }
    parts
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text between `<open...>` and `</close>` of the first element `name` in `xml`.
fn inner<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = xml.find(&format!("<{name}"))?;
    let body = open + xml[open..].find('>')? + 1;
    if xml[..body].ends_with("/>") {
        return Some("");
    }
    let end = body + xml[body..].find(&format!("</{name}>"))?;
    Some(&xml[body..end])
}

/// Every cell of a worksheet, one line each: reference, type, style and value (shared strings
/// resolved, formulas shown as `=...`).
fn cell_grid(sheet: &str, shared: &[String]) -> String {
    let mut out = String::new();
    let data = inner(sheet, "sheetData").expect("sheetData");
    for cell in data.split("<c ").skip(1) {
        let tag = format!(" {}", &cell[..cell.find('>').expect("cell tag")]);
        let r = attr(&tag, "r").unwrap_or("?");
        let t = attr(&tag, "t").unwrap_or("n");
        let s = attr(&tag, "s").unwrap_or("0");
        let value = if let Some(f) = inner(cell, "f") {
            format!("={}", unescape(f))
        } else {
            match t {
                "s" => {
                    let i: usize = inner(cell, "v")
                        .and_then(|v| v.parse().ok())
                        .expect("index");
                    format!("{:?}", shared[i])
                }
                "inlineStr" => format!("{:?}", unescape(inner(cell, "t").unwrap_or(""))),
                _ => inner(cell, "v").unwrap_or("").to_owned(),
            }
        };
        out.push_str(&format!("{r:<5} {t:<9} s{s:<2} {value}\n"));
    }
    out
}

fn shared_strings(parts: &BTreeMap<String, String>) -> Vec<String> {
    let Some(xml) = parts.get("xl/sharedStrings.xml") else {
        return Vec::new();
    };
    xml.split("<si>")
        .skip(1)
        .map(|si| unescape(inner(si, "t").unwrap_or("")))
        .collect()
}

/// A worksheet without its cells: views (frozen panes), column widths and the rest.
fn sheet_frame(sheet: &str) -> String {
    let data = inner(sheet, "sheetData").unwrap_or("");
    sheet.replace(data, "…").replace("><", ">\n<")
}

#[test]
fn xlsx_reads_back_as_the_same_report() {
    let rep = the_report();
    let bytes = report::to_xlsx(&rep, CREATED_MS).expect("xlsx");
    assert_eq!(
        report::to_xlsx(&rep, CREATED_MS).expect("xlsx"),
        bytes,
        "the same report and creation time give the same bytes"
    );
    let parts = unzip(&bytes);
    let names: Vec<&str> = parts.keys().map(String::as_str).collect();
    insta::assert_snapshot!("xlsx_parts", names.join("\n"));
    let workbook = &parts["xl/workbook.xml"];
    assert!(
        workbook.contains(r#"name="Summary" sheetId="1""#)
            && workbook.contains(r#"name="Days" sheetId="2""#),
        "{workbook}"
    );
    insta::assert_snapshot!(
        "xlsx_core",
        parts["docProps/core.xml"].replace("><", ">\n<")
    );
    // Constant-memory worksheets write their strings inline, so there is usually no
    // sharedStrings part; the grid resolves it if there is one.
    let shared = shared_strings(&parts);
    // The cell styles the grids refer to by number (s1 bold, s2 hours, s3 dates).
    let styles = &parts["xl/styles.xml"];
    let formats = [
        inner(styles, "numFmts").unwrap_or(""),
        inner(styles, "fonts").unwrap_or(""),
        inner(styles, "cellXfs").unwrap_or(""),
    ]
    .join("\n")
    .replace("><", ">\n<");
    insta::assert_snapshot!("xlsx_styles", formats);
    let summary = &parts["xl/worksheets/sheet1.xml"];
    let days = &parts["xl/worksheets/sheet2.xml"];
    insta::assert_snapshot!("xlsx_summary_frame", sheet_frame(summary));
    insta::assert_snapshot!("xlsx_summary_cells", cell_grid(summary, &shared));
    insta::assert_snapshot!("xlsx_days_frame", sheet_frame(days));
    insta::assert_snapshot!("xlsx_days_cells", cell_grid(days, &shared));
}

// ---- The edges of the formats ----

/// A minimal RFC 4180 reader: rows of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "the CSV ends with CRLF");
    rows
}

fn employee_with(email: &str, project: &str, site: &str, shift: &str) -> EmployeeReport {
    EmployeeReport {
        user_id: DAY.into(),
        email: email.into(),
        site: site.into(),
        project: project.into(),
        timezone: "Asia/Shanghai".into(),
        shift: shift.into(),
        summary: Summary::default(),
        days: vec![DayRecord {
            date: date("2026-10-26"),
            status: DayStatus::OnLeave,
            flags: vec![DayStatus::OnLeave],
            explanation: "=on leave (sick, \"flu\")\nback Tuesday".into(),
            due: false,
            scheduled_start_ms: None,
            scheduled_end_ms: None,
            first_in_ms: None,
            last_out_ms: None,
            worked_min: 0,
            overtime_min: 0,
            late_min: 0,
            early_leave_min: 0,
            punches: 0,
            makeups: 0,
            out_of_area: 0,
            suspicious: 0,
        }],
    }
}

fn report_of(employees: Vec<EmployeeReport>) -> AttendanceReport {
    AttendanceReport {
        from: "2026-10-26".into(),
        to: "2026-10-26".into(),
        employees,
        unscheduled: Vec::new(),
    }
}

#[test]
fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
    let rep = report_of(vec![
        employee_with(
            "=HYPERLINK(\"http://evil.test\",\"x\")@acme.test",
            "+SUM(A1:A9)",
            "Depot, \"North\"\nGate 2",
            "-night",
        ),
        employee_with("@risk@acme.test", "\tTabbed", "\rCarriage", "plain"),
        employee_with("a,b@acme.test", "Quote \"q\"", "Line\nbreak", "ok"),
    ]);
    let summary = report::to_csv(&rep, Sheet::Summary);
    let lines: Vec<&str> = summary.split("\r\n").collect();
    assert_eq!(
        lines[1],
        format!(
            "{DAY},\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")@acme.test\",'+SUM(A1:A9),\"Depot, \"\"North\"\"\nGate 2\",Asia/Shanghai,'-night,0,0,0,0,0,0,0,0,0,0,0,0,0.00,0.00"
        )
    );
    let rows = parse_csv(&summary);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.len() == 20), "{rows:?}");
    let cells = |i: usize| {
        (
            &rows[i][1][..],
            &rows[i][2][..],
            &rows[i][3][..],
            &rows[i][5][..],
        )
    };
    assert_eq!(
        cells(1),
        (
            "'=HYPERLINK(\"http://evil.test\",\"x\")@acme.test",
            "'+SUM(A1:A9)",
            "Depot, \"North\"\nGate 2",
            "'-night"
        )
    );
    assert_eq!(
        cells(2),
        ("'@risk@acme.test", "'\tTabbed", "'\rCarriage", "plain")
    );
    assert_eq!(
        cells(3),
        ("a,b@acme.test", "Quote \"q\"", "Line\nbreak", "ok")
    );

    let days = report::to_csv(&rep, Sheet::Days);
    let rows = parse_csv(&days);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.len() == 21), "{rows:?}");
    assert_eq!(rows[1][4], "Depot, \"North\"\nGate 2");
    assert_eq!(rows[1][20], "'=on leave (sick, \"flu\")\nback Tuesday");
    assert_eq!(
        &rows[1][2..8],
        [
            "2026-10-26",
            "Mon",
            "Depot, \"North\"\nGate 2",
            "on_leave",
            "on_leave",
            "no"
        ]
    );

    // In the workbook every such text is a string cell, never a formula.
    let parts = unzip(&report::to_xlsx(&rep, CREATED_MS).expect("xlsx"));
    let shared = shared_strings(&parts);
    for sheet in ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"] {
        let grid = cell_grid(&parts[sheet], &shared);
        assert!(!parts[sheet].contains("<f>"), "{grid}");
        assert!(
            grid.contains("\"=HYPERLINK(\\\"http://evil.test\\\",\\\"x\\\")@acme.test\""),
            "{grid}"
        );
    }
}

#[test]
fn summary_hours_are_decimal_hours_with_two_places() {
    let with = |worked_min: u32, overtime_min: u32| {
        let mut e = employee_with("h@acme.test", "P", "S", "X");
        e.summary = Summary {
            worked_min,
            overtime_min,
            ..Summary::default()
        };
        e
    };
    let rep = report_of(vec![
        with(0, 0),
        with(30, 6),
        with(45, 3),
        with(60, 12),
        with(90, 24),
        with(513, 63),
        with(7 * 60 + 36, 59),
        with(176 * 60, 0),
    ]);
    let rows = parse_csv(&report::to_csv(&rep, Sheet::Summary));
    assert_eq!(rows[0][18..], ["worked_hours", "overtime_hours"]);
    let hours: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[18].as_str(), r[19].as_str()))
        .collect();
    assert_eq!(
        hours,
        [
            ("0.00", "0.00"),
            ("0.50", "0.10"),
            ("0.75", "0.05"),
            ("1.00", "0.20"),
            ("1.50", "0.40"),
            ("8.55", "1.05"),
            ("7.60", "0.98"),
            ("176.00", "0.00"),
        ]
    );
}

/// The CSV says what the XLSX shows: the XLSX cell holds `minutes / 60` with the number format
/// `0.00`, which rounds (10 min is 0.17), and so does the CSV.
#[test]
fn csv_hours_round_as_the_xlsx_shows_them() {
    let with = |worked_min: u32| {
        let mut e = employee_with("h@acme.test", "P", "S", "X");
        e.summary.worked_min = worked_min;
        e
    };
    let rep = report_of(vec![with(1), with(10), with(40), with(100), with(479)]);
    let rows = parse_csv(&report::to_csv(&rep, Sheet::Summary));
    let hours: Vec<&str> = rows[1..].iter().map(|r| r[18].as_str()).collect();
    assert_eq!(hours, ["0.02", "0.17", "0.67", "1.67", "7.98"]);
}

#[test]
fn periods_that_are_reversed_too_long_or_not_dates_are_refused() {
    let ok = |f: &str, t: &str| report::period(f, t).expect("a good period");
    assert_eq!(
        ok("2026-10-23", "2026-10-23"),
        (date("2026-10-23"), date("2026-10-23"))
    );
    // 366 days, first and last included: a leap year is one report.
    assert_eq!(ok("2028-01-01", "2028-12-31").1, date("2028-12-31"));
    assert_eq!(ok("2026-01-01", "2027-01-01").1, date("2027-01-01"));

    assert!(matches!(
        report::period("2026-10-27", "2026-10-23"),
        Err(PeriodError::Reversed)
    ));
    assert!(matches!(
        report::period("2026-01-01", "2027-01-02"),
        Err(PeriodError::TooLong)
    ));
    assert!(matches!(
        report::period("2000-01-01", "2099-12-31"),
        Err(PeriodError::TooLong)
    ));
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "yesterday",
        "",
        "2026-10-23T00:00",
        "23.10.2026",
    ] {
        match report::period(bad, "2026-10-27") {
            Err(PeriodError::BadDate(s)) => assert_eq!(s, bad),
            other => panic!("{bad:?} as a start gave {other:?}"),
        }
        assert!(
            matches!(
                report::period("2026-10-23", bad),
                Err(PeriodError::BadDate(_))
            ),
            "{bad:?} as an end"
        );
    }
    // The messages a person reads.
    assert_eq!(
        report::period("x", "2026-10-27")
            .err()
            .map(|e| e.to_string()),
        Some("'x' is not a date (YYYY-MM-DD).".to_owned())
    );
    assert_eq!(
        report::period("2026-01-01", "2027-06-01")
            .err()
            .map(|e| e.to_string()),
        Some("A report covers at most 366 days; ask for a shorter period.".to_owned())
    );
}

/// Every punch that can count for a day of the period, in any zone from UTC-12 to UTC+14, is
/// inside the range the report loads: from the earliest window opening before the first local
/// midnight to the latest window closing after a night shift that starts on the last day.
#[test]
fn the_load_range_covers_every_zone_from_utc_minus_12_to_plus_14() {
    const H: i64 = 3_600_000;
    let max_window = i64::from(fieldsync_sync::attendance::MAX_WINDOW_MIN) * 60_000;
    let zones = [
        "Etc/GMT+12",
        "Pacific/Pago_Pago",
        "America/Los_Angeles",
        "UTC",
        "Europe/Berlin",
        "Asia/Shanghai",
        "Pacific/Auckland",
        "Pacific/Kiritimati",
        "Etc/GMT-14",
    ];
    for (from, to) in [
        ("2026-10-23", "2026-10-27"),
        ("2026-10-25", "2026-10-25"),
        ("2026-03-29", "2026-03-29"),
        ("2026-01-01", "2026-12-31"),
    ] {
        let (from, to) = (date(from), date(to));
        let (lo, hi) = report::load_range_ms(from, to);
        for zone in zones {
            let tz: Tz = zone.parse().expect("zone");
            let midnight = |d: NaiveDate| {
                tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
                    .earliest()
                    .expect("midnight exists")
                    .timestamp_millis()
            };
            // A shift starting at 00:00 on the first day opens its window up to 12 h before.
            let earliest = midnight(from) - max_window;
            // A shift starting at 23:59 on the last day, lasting up to 24 h, closes its window
            // up to 12 h after it ends.
            let next = to.succ_opt().expect("next day");
            let latest = midnight(next) - 60_000 + 24 * H + max_window;
            assert!(
                lo <= earliest,
                "{zone} {from}: loads from {lo}, needs {earliest}"
            );
            assert!(latest < hi, "{zone} {to}: loads to {hi}, needs {latest}");
        }
        // The range is exact UTC midnights, two days before and three after.
        let utc = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_millis()
        };
        assert_eq!((lo, hi), (utc(from) - 48 * H, utc(to) + 72 * H));
    }
}

/// The report built from only what the load range holds is the report built from everything.
#[test]
fn punches_outside_the_load_range_do_not_change_the_report() {
    let (from, to) = (date("2026-10-23"), date("2026-10-27"));
    let mut all = inputs();
    // Far outside on both sides.
    all.punches.push(punch(
        90,
        NIGHT,
        "berlin",
        berlin("2026-10-01 22:00"),
        Direction::In,
        TrustLevel::Verified,
    ));
    all.punches.push(punch(
        91,
        NIGHT,
        "berlin",
        berlin("2026-11-20 06:00"),
        Direction::Out,
        TrustLevel::Verified,
    ));
    all.punches
        .sort_by(|a, b| (a.user.as_str(), a.at_ms).cmp(&(b.user.as_str(), b.at_ms)));
    let (lo, hi) = report::load_range_ms(from, to);
    let mut loaded = all.clone();
    loaded.punches.retain(|p| lo <= p.at_ms && p.at_ms < hi);
    assert_eq!(loaded.punches.len(), inputs().punches.len());
    let a = serde_json::to_value(report::build(&all, from, to)).expect("json");
    let b = serde_json::to_value(report::build(&loaded, from, to)).expect("json");
    assert_eq!(a, b);
}

#[test]
fn a_person_whose_shift_or_calendar_is_gone_is_unscheduled() {
    let mut i = inputs();
    i.calendars.remove("calendar-shanghai");
    let rep = report::build(&i, date("2026-10-23"), date("2026-10-27"));
    assert_eq!(rep.unscheduled, ["day@acme.test"]);
    assert_eq!(rep.employees.len(), 1);
}
