//! fieldsync attendance-report benchmark: the monthly HR report for 1,000 employees, 31 days,
//! four punches a day (about 124,000 punches), on the real server.
//!
//! Set-up (not timed): a tenant with an admin, HR, 10 managers and 1,000 workers (each reporting
//! to one manager); a project with four sites in Europe/Berlin and Asia/Shanghai; four shifts
//! (two of them night shifts, one across the night the clocks go back) and four calendars; every
//! worker assigned to a site; a week of leave for 2 % of them. Then each worker's phone pushes
//! the month's punches through `POST /v1/sync/push` as Automerge punch records, one push per
//! worker (about 124 documents), several phones at a time, graded by the server as they arrive.
//! The month is made realistic by a fixed pseudo-random draw (`--seed`): some days late (a few
//! seriously), some early leave, some absent, some with the last out-punch missing (half of those
//! with a make-up request the worker's manager approves over HTTP), some with an out-of-area
//! punch first, some with a poor GPS fix (suspicious). Workers punch every day of the month, so
//! on their rest days and holidays that is overtime.
//!
//! Measured (`--runs`, default 5; medians, with min and max):
//! - **HTTP, end to end**: `GET /v1/reports/attendance?from=..&to=..&format=csv&sheet=summary`,
//!   `...&sheet=days` and `...&format=xlsx` as HR, until the last byte is read: the database
//!   read, the derivation and the writing. Each format is served by a fresh server *process*
//!   (this binary with `--serve`, which starts `fieldsync_server::app::Server` on the same
//!   database), so its peak RSS (`VmHWM` in `/proc/PID/status`) is that of a server that did
//!   nothing but serve that report, once untimed to warm up and then `--runs` times.
//! - **In-process**, on inputs loaded once with `Store::attendance_inputs`: that load alone, then
//!   `report::build`, `report::to_csv` (both sheets) and `report::to_xlsx` alone. For each, the
//!   peak RSS of this process while it ran: the high-water mark is reset first (by writing 5 to
//!   `/proc/self/clear_refs`), so the figure is the RSS it started from plus what the step added.
//!
//! ```text
//! cargo build --release -p fieldsync-tests --bin fieldsync-report-bench
//! ./target/release/fieldsync-report-bench                 # SQLite in a temp dir
//! ./target/release/fieldsync-report-bench --database-url postgres://postgres@127.0.0.1:5432/fieldsync_bench
//! ```
//!
//! With PostgreSQL a tenant with a fresh slug is made per run, so a database can be reused.

use anyhow::{Context, Result, bail, ensure};
use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use clap::Parser;
use fieldsync_server::app::{self, AppState};
use fieldsync_server::report::{self, Sheet};
use fieldsync_server::store::{self, Store};
use fieldsync_sync::attendance::DayStatus;
use fieldsync_sync::record::project::{Geofence, Site};
use fieldsync_sync::{
    DeviceId, Direction, DocId, Evidence, GeoPoint, Makeup, Project, Provider, Punch, Record, Role,
    TenantId, UserId,
};
use fieldsync_tests::Harness;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "fieldsync-report-bench",
    about = "Monthly attendance report for 1,000 employees: HTTP end to end, and each step in-process"
)]
struct Args {
    /// Workers in the report.
    #[arg(long, default_value_t = 1000)]
    employees: usize,
    /// Managers the workers report to.
    #[arg(long, default_value_t = 10)]
    managers: usize,
    /// The month reported on (YYYY-MM); it must be over (punches cannot be in the future).
    #[arg(long, default_value = "2026-10")]
    month: String,
    /// Timed runs of each measurement; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Phones pushing at the same time while seeding.
    #[arg(long, default_value_t = 2)]
    phones: usize,
    /// Seed of the draw that makes days late, absent, out of area...
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Server store: a `postgres://` URL (a tenant with a fresh slug is made, so any database
    /// works). Default: SQLite in a new temp dir.
    #[arg(long, env = "FIELDSYNC_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Keep the SQLite database at this path (default: a temp dir, removed at the end), to look
    /// into it afterwards with `sqlite3` or `--serve`.
    #[arg(long)]
    sqlite_path: Option<std::path::PathBuf>,
    /// Measure again on a tenant an earlier run seeded (with `--sqlite-path`), by its slug.
    #[arg(long)]
    reuse: Option<String>,
    /// Internal: serve this store on 127.0.0.1:0, print `LISTENING <url>`, stop at EOF on stdin.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

const PASSWORD: &str = "password123";

/// A site, its shift and its calendar.
struct SiteSpec {
    id: &'static str,
    name: &'static str,
    tz: &'static str,
    lat: f64,
    lon: f64,
    radius_m: f64,
    shift: &'static str,
    start: (u32, u32),
    end: (u32, u32),
    break_min: u32,
    calendar: &'static str,
    /// Out of ten workers, how many work here.
    share: usize,
}

const SITES: [SiteSpec; 4] = [
    SiteSpec {
        id: "berlin-depot",
        name: "Berlin depot",
        tz: "Europe/Berlin",
        lat: 52.5100,
        lon: 13.4270,
        radius_m: 150.0,
        shift: "Berlin early 06:00-14:30",
        start: (6, 0),
        end: (14, 30),
        break_min: 30,
        calendar: "Berlin Mon-Sat",
        share: 4,
    },
    SiteSpec {
        id: "berlin-hub",
        name: "Berlin night hub",
        tz: "Europe/Berlin",
        lat: 52.4480,
        lon: 13.3820,
        radius_m: 200.0,
        shift: "Berlin night 22:00-06:00",
        start: (22, 0),
        end: (6, 0),
        break_min: 30,
        calendar: "Berlin 7-day rota",
        share: 2,
    },
    SiteSpec {
        id: "pudong-yard",
        name: "Pudong yard",
        tz: "Asia/Shanghai",
        lat: 31.2304,
        lon: 121.4737,
        radius_m: 300.0,
        shift: "Shanghai day 09:00-18:00",
        start: (9, 0),
        end: (18, 0),
        break_min: 60,
        calendar: "Shanghai Mon-Fri",
        share: 3,
    },
    SiteSpec {
        id: "jiading-plant",
        name: "Jiading plant",
        tz: "Asia/Shanghai",
        lat: 31.3760,
        lon: 121.2650,
        radius_m: 300.0,
        shift: "Shanghai night 20:00-05:00",
        start: (20, 0),
        end: (5, 0),
        break_min: 60,
        calendar: "Shanghai 7-day rota",
        share: 1,
    },
];

/// The site of worker `i`: 40 % Berlin depot, 20 % Berlin night hub, 30 % Pudong, 10 % Jiading.
fn site_of(i: usize) -> usize {
    let mut k = i % 10;
    for (s, spec) in SITES.iter().enumerate() {
        if k < spec.share {
            return s;
        }
        k -= spec.share;
    }
    0
}

/// splitmix64: a small, fixed pseudo-random draw, so every run seeds the same month.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// What was seeded, to check the report against.
#[derive(Default, Debug)]
struct Seeded {
    punches: usize,
    out_of_area: usize,
    suspicious: usize,
    late_days: usize,
    absent_days: usize,
    missing_days: usize,
    early_days: usize,
    makeups: usize,
    leave_days: usize,
    pushes: usize,
}

struct Worker {
    id: UserId,
    device: DeviceId,
    site: usize,
    manager: usize,
    on_leave: bool,
}

struct Company {
    slug: String,
    tenant: TenantId,
    project: DocId,
    hr: (UserId, DeviceId),
    managers: Vec<(UserId, DeviceId)>,
    workers: Vec<Worker>,
}

/// A blocking HTTP client for the routes.
struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    fn new(base: String) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Http { base, agent }
    }

    fn send(&self, method: &str, path: &str, token: &str, body: &Value) -> Result<(u16, Value)> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {token}"))
            .body(serde_json::to_vec(body)?)?;
        let mut resp = self
            .agent
            .run(req)
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn expect(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
        want: u16,
    ) -> Result<Value> {
        let (status, answer) = self.send(method, path, token, body)?;
        ensure!(status == want, "{method} {path}: {status} {answer}");
        Ok(answer)
    }

    /// A GET read to its last byte: (status, content type, body).
    fn get_bytes(&self, path: &str, token: &str) -> Result<(u16, String, Vec<u8>)> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .with_context(|| format!("GET {path}"))?;
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec()?;
        Ok((resp.status().as_u16(), ctype, body))
    }

    /// Pushes new records as one batch; every one must be accepted.
    fn push_new(&self, token: &str, records: &[Record]) -> Result<()> {
        let docs = Harness::new_docs(records);
        let answer = self.expect(
            "POST",
            "/v1/sync/push",
            token,
            &json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": docs}),
            200,
        )?;
        let results = answer["results"].as_array().context("push results")?;
        ensure!(results.len() == records.len(), "push answered {answer}");
        if let Some(r) = results.iter().find(|r| r["status"] != "accepted") {
            bail!("a record was not accepted: {r}");
        }
        Ok(())
    }
}

/// Peak and current resident set of a process, KiB (`VmHWM`, `VmRSS`).
fn rss_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets this process's RSS high-water mark to its current RSS (Linux 4.0+).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Times of one measurement, ms.
struct Timing {
    label: String,
    ms: Vec<f64>,
    /// Peak RSS while it ran (KiB) and the RSS it started from.
    peak_kib: u64,
    base_kib: u64,
    note: String,
}

impl Timing {
    fn row(&self) -> String {
        let min = self.ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.ms.iter().copied().fold(0.0, f64::max);
        format!(
            "| {} | **{:.0} ms** | {:.0}–{:.0} ms | {:.0} MiB (from {:.0}) | {} |",
            self.label,
            median(self.ms.clone()),
            min,
            max,
            self.peak_kib as f64 / 1024.0,
            self.base_kib as f64 / 1024.0,
            self.note
        )
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn local_ms(tz: Tz, d: NaiveDate, minute: i64) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    let naive = midnight + chrono::Duration::minutes(minute);
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| naive.and_utc().timestamp_millis())
}

/// Evidence of a fix at `at` near (lat, lon), dated by the monotonic clock as a synced phone's.
fn evidence(lat: f64, lon: f64, at: i64, accuracy_m: f64) -> Evidence {
    Evidence {
        lat,
        lon,
        accuracy_m,
        altitude_m: None,
        provider: Provider::Gps,
        fix_time_ms: at - 4_000,
        mock: false,
        wifi_bssid: None,
        device_time_ms: at,
        monotonic_ms: Some(5_000_000),
        server_offset_ms: Some(at - 5_000_000),
    }
}

/// One worker's month: punch and make-up records, and the make-ups to approve.
fn month_of(
    c: &Company,
    w: &Worker,
    days: &[NaiveDate],
    leave: &[NaiveDate],
    draw: &mut Draw,
    seeded: &mut Seeded,
) -> (Vec<Record>, Vec<DocId>) {
    let s = &SITES[w.site];
    let tz: Tz = s.tz.parse().unwrap_or(Tz::UTC);
    let start = i64::from(s.start.0 * 60 + s.start.1);
    let mut len = i64::from(s.end.0 * 60 + s.end.1) - start;
    if len <= 0 {
        len += 1440;
    }
    let brk = i64::from(s.break_min);
    let mut records = Vec::new();
    let mut approve = Vec::new();
    let punch =
        |draw: &mut Draw, at_min: i64, d: NaiveDate, dir: Direction, far: bool, poor: bool| {
            // Each fix a little elsewhere inside the fence: real fixes never repeat to the digit.
            let jitter = s.radius_m * 0.4 / 111_000.0;
            let (mut lat, lon) = (
                s.lat + (draw.unit() - 0.5) * jitter,
                s.lon + (draw.unit() - 0.5) * jitter,
            );
            if far {
                lat += 0.018; // about 2 km north
            }
            let at = local_ms(tz, d, at_min) + draw.int(0, 59) * 1000;
            Punch {
                id: DocId::new(),
                user: w.id,
                project: c.project,
                site: s.id.into(),
                direction: dir,
                evidence: evidence(lat, lon, at, if poor { 150.0 } else { 8.0 }),
                note: None,
            }
        };
    for &d in days {
        if w.on_leave && leave.contains(&d) {
            seeded.leave_days += 1;
            continue;
        }
        if draw.chance(0.015) {
            seeded.absent_days += 1;
            continue;
        }
        let mut first_in = start + draw.int(-10, 2);
        let roll = draw.unit();
        if roll < 0.05 {
            first_in = start + draw.int(7, 28);
            seeded.late_days += 1;
        } else if roll < 0.06 {
            first_in = start + draw.int(31, 110);
            seeded.late_days += 1;
        }
        let lunch_out = start + len / 2 - brk / 2 + draw.int(-3, 3);
        let lunch_in = lunch_out + brk + draw.int(-2, 5);
        let mut last_out = start + len + draw.int(0, 12);
        if draw.chance(0.03) {
            last_out = start + len - draw.int(10, 60);
            seeded.early_days += 1;
        }
        let mut day = Vec::with_capacity(5);
        if draw.chance(0.01) {
            // Punched from the car park two kilometres away, then again at the gate.
            day.push(punch(draw, first_in - 4, d, Direction::In, true, false));
            seeded.out_of_area += 1;
        }
        let poor = draw.chance(0.01);
        seeded.suspicious += usize::from(poor);
        day.push(punch(draw, first_in, d, Direction::In, false, poor));
        day.push(punch(draw, lunch_out, d, Direction::Out, false, false));
        day.push(punch(draw, lunch_in, d, Direction::In, false, false));
        if draw.chance(0.02) {
            seeded.missing_days += 1;
            if draw.chance(0.5) {
                let m = Makeup {
                    id: DocId::new(),
                    user: w.id,
                    project: c.project,
                    site: s.id.into(),
                    direction: Direction::Out,
                    at_ms: local_ms(tz, d, start + len),
                    reason: "Phone battery died before the end of the shift".into(),
                    decision: None,
                };
                approve.push(m.id);
                records.push(Record::Makeup(m));
                seeded.makeups += 1;
            }
        } else {
            day.push(punch(draw, last_out, d, Direction::Out, false, false));
        }
        seeded.punches += day.len();
        records.extend(day.into_iter().map(Record::Punch));
    }
    (records, approve)
}

/// Users, devices, the project, shifts, calendars, assignments and leave.
fn set_up(
    rt: &tokio::runtime::Runtime,
    st: &dyn Store,
    http: &Http,
    tokens: &fieldsync_server::auth::Tokens,
    args: &Args,
    leave: &[NaiveDate],
) -> Result<Company> {
    let slug = format!("report-bench-{}", uuid::Uuid::now_v7().simple());
    let hash = fieldsync_server::auth::hash_password(PASSWORD)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?;
    // Users straight into the store with one password hash: 1,012 argon2 hashes are not what
    // this measures.
    let (tenant, admin, hr, managers, workers) = rt.block_on(async {
        let tenant = app::create_tenant(st, &slug, Some("Report bench")).await?;
        let t = tenant.id;
        let device = |user: UserId| async move {
            let d = DeviceId::new();
            st.register_device(t, d, user, "bench phone").await?;
            anyhow::Ok((user, d))
        };
        let admin = st
            .create_user(t, "admin@bench.test", &hash, Role::Admin, None)
            .await?;
        let admin = device(admin.id).await?;
        let hr = st
            .create_user(t, "hr@bench.test", &hash, Role::Hr, None)
            .await?;
        let hr = device(hr.id).await?;
        let mut managers = Vec::new();
        for m in 0..args.managers {
            let u = st
                .create_user(
                    t,
                    &format!("manager{m:02}@bench.test"),
                    &hash,
                    Role::Manager,
                    None,
                )
                .await?;
            managers.push(device(u.id).await?);
        }
        let mut workers = Vec::new();
        for i in 0..args.employees {
            let manager = i % args.managers.max(1);
            let u = st
                .create_user(
                    t,
                    &format!("worker{i:04}@bench.test"),
                    &hash,
                    Role::FieldRep,
                    managers.get(manager).map(|m| m.0),
                )
                .await?;
            let (id, device) = device(u.id).await?;
            workers.push(Worker {
                id,
                device,
                site: site_of(i),
                manager,
                on_leave: i % 50 == 7,
            });
        }
        anyhow::Ok((t, admin, hr, managers, workers))
    })?;
    let token = |(user, device): (UserId, DeviceId), role: Role| {
        tokens
            .issue(tenant, user, device, role)
            .map_err(|e| anyhow::anyhow!("token: {e}"))
    };
    let admin_token = token(admin, Role::Admin)?;
    let hr_token = token(hr, Role::Hr)?;

    let mut p = Project::new("Depots and plants", admin.0);
    p.sites = SITES
        .iter()
        .map(|s| Site {
            id: s.id.into(),
            name: s.name.into(),
            address: None,
            timezone: s.tz.into(),
            geofence: Some(Geofence::Circle {
                center: GeoPoint {
                    lat: s.lat,
                    lon: s.lon,
                },
                radius_m: s.radius_m,
            }),
        })
        .collect();
    let project = p.id;
    http.push_new(&admin_token, &[Record::Project(p)])?;

    let mut shift_ids = BTreeMap::new();
    let mut calendar_ids = BTreeMap::new();
    let all_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    for s in &SITES {
        if !shift_ids.contains_key(s.shift) {
            let row = http.expect(
                "POST",
                "/v1/attendance/shifts",
                &hr_token,
                &json!({"name": s.shift,
                        "start": format!("{:02}:{:02}", s.start.0, s.start.1),
                        "end": format!("{:02}:{:02}", s.end.0, s.end.1),
                        "break_min": s.break_min}),
                201,
            )?;
            shift_ids.insert(s.shift, row["id"].clone());
        }
        if !calendar_ids.contains_key(s.calendar) {
            let body = match s.calendar {
                "Berlin Mon-Sat" => json!({"name": s.calendar, "workdays": &all_days[..6],
                    "holidays": [{"date": "2026-10-03", "name": "Tag der Deutschen Einheit"},
                                 {"date": "2026-12-25", "name": "1. Weihnachtstag"}]}),
                "Shanghai Mon-Fri" => json!({"name": s.calendar, "workdays": &all_days[..5],
                    "holidays": (1..=7).map(|d| json!({"date": format!("2026-10-{d:02}"), "name": "National Day"})).collect::<Vec<_>>(),
                    "extra_workdays": ["2026-09-27", "2026-10-10"]}),
                _ => json!({"name": s.calendar, "workdays": all_days}),
            };
            let row = http.expect("POST", "/v1/attendance/calendars", &hr_token, &body, 201)?;
            calendar_ids.insert(s.calendar, row["id"].clone());
        }
    }
    let (first, last) = (leave.first(), leave.last());
    // Assigned well before the month reported on.
    let assigned_from = first
        .and_then(|d| d.checked_sub_months(chrono::Months::new(2)))
        .context("a leave week")?;
    for w in &workers {
        let s = &SITES[w.site];
        http.expect(
            "PUT",
            "/v1/attendance/assignments",
            &hr_token,
            &json!({"user": w.id, "project": project, "site": s.id,
                    "shift": shift_ids[s.shift], "calendar": calendar_ids[s.calendar],
                    "from": assigned_from.to_string()}),
            200,
        )?;
        if w.on_leave
            && let (Some(f), Some(l)) = (first, last)
        {
            http.expect(
                "PUT",
                "/v1/attendance/leave",
                &hr_token,
                &json!({"user": w.id, "from": f.to_string(), "to": l.to_string(), "kind": "annual"}),
                204,
            )?;
        }
    }
    Ok(Company {
        slug,
        tenant,
        project,
        hr,
        managers,
        workers,
    })
}

/// Every worker's phone pushes its month; managers approve the make-ups.
fn seed(
    c: &Company,
    http: &Http,
    tokens: &fieldsync_server::auth::Tokens,
    args: &Args,
    days: &[NaiveDate],
    leave: &[NaiveDate],
) -> Result<Seeded> {
    let mut seeded = Seeded::default();
    let mut months = Vec::with_capacity(c.workers.len());
    let mut draw = Draw(args.seed);
    for w in &c.workers {
        months.push(month_of(c, w, days, leave, &mut draw, &mut seeded));
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut phones = Vec::new();
        for _ in 0..args.phones.max(1) {
            phones.push(scope.spawn(|| -> Result<usize> {
                let mut pushes = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(w), Some((records, _))) = (c.workers.get(i), months.get(i)) else {
                        return Ok(pushes);
                    };
                    let token = tokens
                        .issue(c.tenant, w.id, w.device, Role::FieldRep)
                        .map_err(|e| anyhow::anyhow!("token: {e}"))?;
                    for batch in records.chunks(1000) {
                        http.push_new(&token, batch)?;
                        pushes += 1;
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(100) {
                        eprintln!(
                            "  {n} phones pushed their month ({:.0} s)",
                            t0.elapsed().as_secs_f64()
                        );
                    }
                }
            }));
        }
        for p in phones {
            seeded.pushes += p
                .join()
                .map_err(|_| anyhow::anyhow!("a phone thread panicked"))??;
        }
        Ok(())
    })?;
    for (w, (_, approve)) in c.workers.iter().zip(&months) {
        let Some(&(manager, device)) = c.managers.get(w.manager) else {
            continue;
        };
        let token = tokens
            .issue(c.tenant, manager, device, Role::Manager)
            .map_err(|e| anyhow::anyhow!("token: {e}"))?;
        for id in approve {
            http.expect(
                "POST",
                &format!("/v1/makeups/{id}/decision"),
                &token,
                &json!({"approve": true, "comment": "OK, battery"}),
                200,
            )?;
        }
    }
    Ok(seeded)
}

/// A server process of our own (this binary with `--serve`) on the same store.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(store_url: &str) -> Result<ServerProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(store_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .strip_prefix("LISTENING ")
            .map(|u| u.trim().to_owned())
            .with_context(|| format!("the server process said {line:?}"))?;
        Ok(ServerProcess { child, url })
    }

    fn rss_kib(&self) -> (u64, u64) {
        rss_kib(&self.child.id().to_string())
    }

    fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        ensure!(status.success(), "the server process ended with {status}");
        Ok(())
    }
}

/// `--serve`: the server on the store, until stdin closes.
fn serve(store_url: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = store::open(store_url).await?;
        let state = AppState::new(store).await?;
        let server = app::Server::start(state, "127.0.0.1:0".parse()?).await?;
        println!("LISTENING {}", server.url());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        server.stop().await;
        anyhow::Ok(())
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(url) = &args.serve {
        return serve(url);
    }
    ensure!(args.runs > 0, "--runs must be positive");
    ensure!(
        args.employees > 0 && args.managers > 0,
        "need workers and managers"
    );
    let first = NaiveDate::parse_from_str(&format!("{}-01", args.month), "%Y-%m-%d")
        .with_context(|| format!("'{}' is not a month (YYYY-MM)", args.month))?;
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .context("month out of range")?;
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    ensure!(
        last.succ_opt()
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .is_some_and(|t| t.and_utc() < chrono::Utc::now()),
        "the month must be over: punches cannot be dated in the future"
    );
    // A week of annual leave in the middle of the month for 2 % of the workers.
    let leave: Vec<NaiveDate> = days
        .iter()
        .copied()
        .filter(|d| (12..=16).contains(&d.day()))
        .collect();

    let tmp = tempfile::Builder::new()
        .prefix("fieldsync-report-bench-")
        .tempdir()?;
    let store_url = match (&args.database_url, &args.sqlite_path) {
        (Some(u), _) => u.clone(),
        (None, Some(p)) => p.to_string_lossy().into_owned(),
        (None, None) => tmp
            .path()
            .join("fieldsync.db")
            .to_string_lossy()
            .into_owned(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (st, state, server) = rt.block_on(async {
        let st = store::open(&store_url)
            .await
            .with_context(|| format!("open the store {store_url}"))?;
        let state = AppState::new(st.clone()).await?;
        let server = app::Server::start(state.clone(), "127.0.0.1:0".parse()?).await?;
        anyhow::Ok((st, state, server))
    })?;
    let backend = st.backend();
    let http = Http::new(server.url());
    println!(
        "fieldsync-report-bench: {} workers, {} managers, {} ({} days), store {backend}, {} runs",
        args.employees,
        args.managers,
        args.month,
        days.len(),
        args.runs
    );

    // ---- Set-up and seeding (not timed) ----
    let (tenant, hr, seeded) = match &args.reuse {
        Some(slug) => {
            let (tenant, hr, device) = rt.block_on(async {
                let t = app::tenant(st.as_ref(), slug).await?;
                let hr = st
                    .user_by_email(t.id, "hr@bench.test")
                    .await?
                    .context("hr@bench.test")?;
                let device = st
                    .list_devices(t.id, Some(hr.id))
                    .await?
                    .first()
                    .map(|d| d.id)
                    .context("HR's device")?;
                anyhow::Ok((t.id, hr.id, device))
            })?;
            println!("measuring tenant {slug} ({tenant}) as seeded before");
            (tenant, (hr, device), None)
        }
        None => {
            let t0 = Instant::now();
            let c = set_up(&rt, st.as_ref(), &http, &state.tokens, &args, &leave)?;
            println!(
                "set-up: users, devices, project, shifts, calendars, assignments, leave in {:.1} s (not timed)",
                t0.elapsed().as_secs_f64()
            );
            let t0 = Instant::now();
            let seeded = seed(&c, &http, &state.tokens, &args, &days, &leave)?;
            println!(
                "seeded {} punches and {} approved make-ups in {} pushes from {} phones at a time, in {:.1} s (not timed)",
                seeded.punches,
                seeded.makeups,
                seeded.pushes,
                args.phones,
                t0.elapsed().as_secs_f64()
            );
            println!("  drawn: {seeded:?}; tenant {} ({})", c.slug, c.tenant);
            (c.tenant, c.hr, Some(seeded))
        }
    };
    rt.block_on(server.stop());

    let (from_ms, to_ms) = report::load_range_ms(first, last);
    let query = format!("/v1/reports/attendance?from={first}&to={last}");
    let mut rows: Vec<Timing> = Vec::new();

    // ---- HTTP, end to end: a fresh server process per format ----
    for (label, path, target) in [
        (
            "GET csv summary (HTTP)",
            format!("{query}&format=csv&sheet=summary"),
            "< 1 s",
        ),
        (
            "GET csv days (HTTP)",
            format!("{query}&format=csv&sheet=days"),
            "< 1 s",
        ),
        ("GET xlsx (HTTP)", format!("{query}&format=xlsx"), "< 3 s"),
    ] {
        let server = ServerProcess::start(&store_url)?;
        let http = Http::new(server.url.clone());
        let (_, base_kib) = server.rss_kib();
        let token = state
            .tokens
            .issue(tenant, hr.0, hr.1, Role::Hr)
            .map_err(|e| anyhow::anyhow!("token: {e}"))?;
        let mut ms = Vec::new();
        let mut size = 0;
        let mut first_ms = 0.0;
        let mut first_peak_kib = 0;
        for run in 0..=args.runs {
            let t = Instant::now();
            let (status, ctype, body) = http.get_bytes(&path, &token)?;
            let elapsed = ms_since(t);
            ensure!(
                status == 200,
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            check_download(&ctype, &body, args.employees, days.len())?;
            size = body.len();
            if run == 0 {
                first_ms = elapsed;
                first_peak_kib = server.rss_kib().0;
            } else {
                ms.push(elapsed);
            }
        }
        let (peak_kib, _) = server.rss_kib();
        server.stop()?;
        rows.push(Timing {
            label: label.into(),
            ms,
            peak_kib,
            base_kib,
            note: format!(
                "{:.1} MiB; first request {first_ms:.0} ms, peak RSS after it {:.0} MiB; target {target}",
                size as f64 / 1_048_576.0,
                first_peak_kib as f64 / 1024.0
            ),
        });
        println!("{}", rows.last().map(Timing::row).unwrap_or_default());
    }

    // ---- In-process, each step alone on the same inputs ----
    let can_reset = reset_peak();
    let mut step = |label: &str, note: String, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        reset_peak();
        let (_, base_kib) = rss_kib("self");
        let mut ms = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            f()?;
            ms.push(ms_since(t));
        }
        let (peak_kib, _) = rss_kib("self");
        rows.push(Timing {
            label: label.into(),
            ms,
            peak_kib,
            base_kib,
            note,
        });
        println!("{}", rows.last().map(Timing::row).unwrap_or_default());
        Ok(())
    };
    let mut inputs = None;
    step(
        "Store::attendance_inputs (DB read)",
        String::new(),
        &mut || {
            inputs = Some(rt.block_on(st.attendance_inputs(tenant, None, from_ms, to_ms))?);
            Ok(())
        },
    )?;
    let inputs = inputs.context("inputs loaded")?;
    let mut rep = None;
    step(
        "report::build",
        format!(
            "{} people, {} punches in",
            inputs.people.len(),
            inputs.punches.len()
        ),
        &mut || {
            rep = Some(report::build(&inputs, first, last));
            Ok(())
        },
    )?;
    let rep = rep.context("report built")?;
    let mut len = 0;
    step("report::to_csv summary", String::new(), &mut || {
        len = report::to_csv(&rep, Sheet::Summary).len();
        Ok(())
    })?;
    step("report::to_csv days", String::new(), &mut || {
        len = report::to_csv(&rep, Sheet::Days).len();
        Ok(())
    })?;
    step("report::to_xlsx", String::new(), &mut || {
        len = report::to_xlsx(&rep, store::now_ms())?.len();
        Ok(())
    })?;
    let _ = len;
    if !can_reset {
        println!(
            "(could not reset the RSS high-water mark: in-process peaks include earlier steps)"
        );
    }

    // ---- What the report says, against what was seeded ----
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    let mut punches = 0u64;
    for e in &rep.employees {
        for d in &e.days {
            *statuses.entry(d.status.as_str()).or_default() += 1;
            punches += u64::from(d.punches);
        }
    }
    let sum = |f: &dyn Fn(&fieldsync_sync::attendance::Summary) -> u32| -> u64 {
        rep.employees.iter().map(|e| u64::from(f(&e.summary))).sum()
    };
    println!(
        "report: {} employees, {} unscheduled, {} days; statuses {:?}",
        rep.employees.len(),
        rep.unscheduled.len(),
        rep.employees.iter().map(|e| e.days.len()).sum::<usize>(),
        statuses
    );
    println!(
        "  punches attributed {punches}; late days {}; absences {}; missing-punch days {}; out of area {}; suspicious {}; make-ups {}; leave days {}",
        sum(&|s| s.late_count),
        sum(&|s| s.absences),
        sum(&|s| s.missing_punches),
        sum(&|s| s.out_of_area),
        sum(&|s| s.suspicious),
        sum(&|s| s.makeups),
        sum(&|s| s.leave_days),
    );
    if let Some(seeded) = &seeded {
        // Attributed punches are every seeded one (each falls in its shift's window or on its
        // date) plus the approved make-ups; the report's out-of-area, suspicious and leave
        // figures are the drawn ones. Late days and absences are fewer than drawn: a late
        // arrival or an absence on a rest day or holiday is neither.
        ensure!(
            punches == (seeded.punches + seeded.makeups) as u64,
            "punches attributed {punches}, seeded {} + {} make-ups",
            seeded.punches,
            seeded.makeups
        );
        ensure!(sum(&|s| s.out_of_area) == seeded.out_of_area as u64);
        ensure!(sum(&|s| s.suspicious) == seeded.suspicious as u64);
        ensure!(sum(&|s| s.makeups) == seeded.makeups as u64);
        ensure!(sum(&|s| s.leave_days) == seeded.leave_days as u64);
    }
    ensure!(rep.employees.len() == args.employees);
    ensure!(
        statuses
            .get(DayStatus::Absent.as_str())
            .copied()
            .unwrap_or(0)
            > 0,
        "no absence in the report"
    );

    println!(
        "\n| step ({} employees × {} days, {backend}) | median of {} | min–max | peak RSS | notes |\n|---|---|---|---|---|",
        args.employees,
        days.len(),
        args.runs
    );
    for r in &rows {
        println!("{}", r.row());
    }
    drop(st);
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// The download is what was asked for: a CSV with a row per employee (summary) or per employee
/// and day (days), or a zip file.
fn check_download(ctype: &str, body: &[u8], employees: usize, days: usize) -> Result<()> {
    if ctype.starts_with("text/csv") {
        let text = std::str::from_utf8(body).context("CSV is UTF-8")?;
        // Explanations never hold a line break, so lines are rows.
        let lines = text.matches("\r\n").count();
        ensure!(
            lines == employees + 1 || lines == employees * days + 1,
            "CSV with {lines} lines"
        );
    } else {
        ensure!(ctype.contains("spreadsheetml"), "content type {ctype}");
        ensure!(body.starts_with(b"PK"), "an XLSX is a zip file");
    }
    Ok(())
}
