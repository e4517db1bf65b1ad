//! The field-work commands of `fieldsync-device`: visits, punches, make-up requests, the
//! worker's month and the phone's clock, so a whole field day can be played from a terminal
//! (set a manual clock, move it between events, read each verdict).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use fieldsync_mobile_core::{
    ClientError, ClockStatus, FieldEventView, FieldsyncClient, LocationFix, MakeupView,
    MyAttendance, PunchView, TrustLevel, Verdict, VisitView,
};
use serde::Serialize;

/// Where the phone is: the location fix of a check-in, check-out or punch.
#[derive(Args)]
pub struct FixArgs {
    #[arg(long, allow_hyphen_values = true, required = true)]
    lat: Option<f64>,
    #[arg(long, allow_hyphen_values = true, required = true)]
    lon: Option<f64>,
    #[command(flatten)]
    details: FixDetails,
}

/// A location fix that may be left out (a photo): `--lat` and `--lon` together, or neither.
#[derive(Args)]
pub struct OptionalFixArgs {
    #[arg(long, allow_hyphen_values = true, requires = "lon")]
    lat: Option<f64>,
    #[arg(long, allow_hyphen_values = true, requires = "lat")]
    lon: Option<f64>,
    #[command(flatten)]
    details: FixDetails,
}

/// What a location fix says besides the coordinates.
#[derive(Args)]
pub struct FixDetails {
    /// Accuracy radius, metres.
    #[arg(long, default_value_t = 10.0)]
    accuracy: f64,
    /// Metres.
    #[arg(long, allow_hyphen_values = true)]
    altitude: Option<f64>,
    /// gps, network or fused.
    #[arg(long, default_value = "gps")]
    provider: String,
    /// How old the fix is, seconds (on the phone's wall clock).
    #[arg(long, default_value_t = 0)]
    fix_age_s: i64,
    /// The OS says the location is mocked.
    #[arg(long)]
    mock: bool,
    /// The connected Wi-Fi network's BSSID.
    #[arg(long)]
    bssid: Option<String>,
}

impl FixDetails {
    fn fix(
        &self,
        client: &FieldsyncClient,
        lat: f64,
        lon: f64,
    ) -> Result<LocationFix, ClientError> {
        let fix_time_ms = if self.fix_age_s == 0 {
            None
        } else {
            Some(client.clock_status()?.wall_ms - self.fix_age_s.saturating_mul(1000))
        };
        Ok(LocationFix {
            lat,
            lon,
            accuracy_m: self.accuracy,
            altitude_m: self.altitude,
            provider: self.provider.clone(),
            fix_time_ms,
            mock: self.mock,
            wifi_bssid: self.bssid.clone(),
        })
    }
}

impl FixArgs {
    fn fix(&self, client: &FieldsyncClient) -> Result<LocationFix, ClientError> {
        let missing = |what: &str| ClientError::Invalid {
            code: "invalid_argument".into(),
            message: format!("--{what} is required."),
        };
        self.details.fix(
            client,
            self.lat.ok_or_else(|| missing("lat"))?,
            self.lon.ok_or_else(|| missing("lon"))?,
        )
    }
}

impl OptionalFixArgs {
    /// The fix, if `--lat` and `--lon` were given.
    pub fn fix(&self, client: &FieldsyncClient) -> Result<Option<LocationFix>, ClientError> {
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => self.details.fix(client, lat, lon).map(Some),
            _ => Ok(None),
        }
    }
}

#[derive(Subcommand)]
pub enum VisitCmd {
    /// Plan a visit to a customer.
    Plan {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// YYYY-MM-DD
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Check in to a visit, here and now.
    CheckIn {
        id: String,
        #[command(flatten)]
        fix: FixArgs,
    },
    /// Check out of a visit with the report.
    CheckOut {
        id: String,
        #[command(flatten)]
        fix: FixArgs,
        /// order, interested, follow_up, no_interest, not_met or other.
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        notes: Option<String>,
        /// Next follow-up, YYYY-MM-DD.
        #[arg(long)]
        follow_up: Option<String>,
    },
    /// Call off a visit not checked into.
    Cancel { id: String },
    /// Review a visit report (managers): --approve or --comment TEXT.
    #[command(group(ArgGroup::new("decision").required(true).args(["approve", "comment"])))]
    Review {
        id: String,
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        comment: Option<String>,
    },
    /// One visit.
    Show { id: String },
    /// All visits on this phone, newest first.
    List,
}

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group(ArgGroup::new("direction").required(true).args(["punch_in", "punch_out"]))
)]
pub struct PunchArgs {
    #[command(subcommand)]
    cmd: Option<PunchCmd>,
    /// The project's id.
    #[arg(long, required = true)]
    project: Option<String>,
    /// The site's id (or its name, if no other site of the project has it).
    #[arg(long, required = true)]
    site: Option<String>,
    /// Clock in.
    #[arg(long = "in")]
    punch_in: bool,
    /// Clock out.
    #[arg(long = "out")]
    punch_out: bool,
    #[command(flatten)]
    fix: FixArgs,
    #[arg(long)]
    note: Option<String>,
}

#[derive(Subcommand)]
pub enum PunchCmd {
    /// Your punches on this phone, oldest first.
    List {
        /// From (inclusive): ms since the epoch, or a UTC `YYYY-MM-DD` or `YYYY-MM-DD HH:MM`.
        #[arg(long)]
        from: Option<String>,
        /// To (exclusive), like --from.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MakeupCmd {
    /// Ask for a missed punch to be recorded.
    #[command(group(ArgGroup::new("direction").required(true).args(["punch_in", "punch_out"])))]
    Request {
        #[arg(long)]
        project: String,
        #[arg(long)]
        site: String,
        #[arg(long = "in")]
        punch_in: bool,
        #[arg(long = "out")]
        punch_out: bool,
        /// When the punch should have been, `YYYY-MM-DD HH:MM` in the site's time zone.
        #[arg(long)]
        at: String,
        #[arg(long)]
        reason: String,
    },
    /// Approve a make-up request (managers).
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Refuse a make-up request (managers).
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// All make-up requests on this phone.
    List,
}

#[derive(Subcommand)]
pub enum ClockCmd {
    /// Use a manual clock: it stands still until moved.
    Set {
        #[arg(long)]
        wall_ms: i64,
        #[arg(long)]
        monotonic_ms: i64,
        /// A new boot id simulates a reboot.
        #[arg(long)]
        boot_id: String,
    },
    /// Let time pass on the manual clock (wall and monotonic).
    Advance {
        #[arg(long)]
        minutes: i64,
    },
    /// Move only the manual wall clock, as a person changing the phone's time does.
    SetWall {
        #[arg(long, allow_hyphen_values = true)]
        wall_ms: i64,
    },
    /// Go back to the system's clocks.
    System,
    /// The clocks and the server offset.
    Show,
}

pub fn out<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot print JSON: {e}"),
        }
    } else {
        human(value)
    }
}

/// `ms` as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A time argument: ms since the epoch, or a UTC date or date and time.
fn parse_time(s: &str) -> Result<i64, ClientError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M") {
        return Ok(t.and_utc().timestamp_millis());
    }
    if let Some(t) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(ClientError::Invalid {
        code: "invalid_argument".into(),
        message: format!("'{s}' is not ms since the epoch, YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)."),
    })
}

/// The verdict for a person, e.g. "verified: 45 m from Acme Ltd (allowed 300 m); the phone
/// restarted since it last synced, so the check-in is dated by its own clock." or "rejected:
/// You are 1.2 km from Acme Ltd; the check-in allows 300 m." `target` names what the event was
/// compared with.
pub fn verdict_line(v: &Verdict, target: &str) -> String {
    use fieldsync_sync::trust::human_distance;
    let mut parts: Vec<String> = Vec::new();
    let ranged = v
        .reasons
        .iter()
        .any(|r| r.code == "out_of_range" || r.code == "near_boundary");
    if let (Some(d), Some(a), false) = (v.distance_m, v.allowed_m, ranged) {
        parts.push(if d == 0.0 {
            format!("inside {target}")
        } else {
            format!(
                "{} from {target} (allowed {})",
                human_distance(d),
                human_distance(a)
            )
        });
    }
    parts.extend(
        v.reasons
            .iter()
            .map(|r| r.message.trim_end_matches('.').to_owned()),
    );
    // One sentence: later parts start in lower case.
    for p in parts.iter_mut().skip(1) {
        let mut c = p.chars();
        if let Some(first) = c.next() {
            *p = first.to_lowercase().chain(c).collect();
        }
    }
    if parts.is_empty() {
        parts.push("nothing to compare with".into());
    }
    format!("{}: {}.", v.level, parts.join("; "))
}

fn show_event(e: &FieldEventView) {
    let mut target = String::from("the target");
    if let Some(v) = &e.visit {
        show_visit(v);
        if let Some(n) = &v.customer_name {
            target = n.clone();
        }
    }
    if let Some(p) = &e.punch {
        show_punch(p);
        target = format!(
            "the area of site {}",
            p.site_name.as_deref().unwrap_or(&p.punch.site)
        );
    }
    println!("  {}", verdict_line(&e.verdict, &target));
    let marker = match e.verdict.level {
        TrustLevel::Verified => "",
        _ => " (the server grades it again when it arrives)",
    };
    println!("  dated {}{marker}", utc(e.verdict.event_time_ms));
}

pub fn pending(p: bool) -> &'static str {
    if p { " [not synced]" } else { "" }
}

fn show_visit(v: &VisitView) {
    let x = &v.visit;
    println!(
        "{} — visit to {} [{}]{}",
        x.id,
        v.customer_name.as_deref().unwrap_or("an unknown customer"),
        v.state,
        pending(v.pending)
    );
    if let Some(d) = &x.planned_date {
        println!("  {:<10} {d}", "planned");
    }
    if !x.purpose.is_empty() {
        println!("  {:<10} {}", "purpose", x.purpose);
    }
    if let Some(ci) = &x.check_in {
        println!("  {:<10} {}", "check-in", utc(ci.event_time_ms()));
    }
    if let Some(co) = &x.check_out {
        println!(
            "  {:<10} {} — {}{}",
            "check-out",
            utc(co.evidence.event_time_ms()),
            co.outcome,
            if co.notes.is_empty() {
                String::new()
            } else {
                format!(": {}", co.notes)
            }
        );
        if let Some(f) = &co.next_follow_up {
            println!("  {:<10} {f}", "follow-up");
        }
    }
    for r in &x.reviews {
        println!(
            "  review     {} by {} at {}{}",
            r.decision,
            r.by,
            utc(r.at_ms),
            if r.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", r.comment)
            }
        );
    }
    for c in &v.conflicts {
        println!("  CONFLICT   {}: {}", c.field, c.values.join(" | "));
    }
}

fn show_punch(p: &PunchView) {
    println!(
        "{} — punch {} at {} / {} — {}{}{}",
        p.punch.id,
        p.punch.direction,
        p.project_name.as_deref().unwrap_or("?"),
        p.site_name.as_deref().unwrap_or(&p.punch.site),
        utc(p.time_ms),
        p.punch
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        pending(p.pending)
    );
}

fn show_makeup(m: &MakeupView) {
    println!(
        "{} — make-up {} at {} / {}, {} {} [{}]{}",
        m.makeup.id,
        m.makeup.direction,
        m.project_name.as_deref().unwrap_or("?"),
        m.site_name.as_deref().unwrap_or(&m.makeup.site),
        m.local_time,
        m.timezone.as_deref().unwrap_or(""),
        m.state,
        pending(m.pending)
    );
    println!("  reason     {}", m.makeup.reason);
    if let Some(d) = &m.makeup.decision {
        println!(
            "  decision   {} by {} at {}{}",
            d.status,
            d.by,
            utc(d.at_ms),
            d.comment
                .as_ref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        );
    }
}

fn show_clock(c: &ClockStatus) {
    println!(
        "{} clock: wall {} ({} ms), monotonic {} ms, boot {}",
        if c.manual { "manual" } else { "system" },
        utc(c.wall_ms),
        c.wall_ms,
        c.monotonic_ms,
        c.boot_id
    );
    match (c.server_time_ms, c.server_offset_ms) {
        (Some(t), Some(o)) => println!(
            "server time {} (offset {o} ms, learnt with a {} ms round trip)",
            utc(t),
            c.offset_round_trip_ms.unwrap_or(0)
        ),
        _ => println!(
            "server time unknown in this boot{}: events are dated by the wall clock until the next sync",
            c.offset_boot_id
                .as_ref()
                .map(|b| format!(" (last learnt in boot {b})"))
                .unwrap_or_default()
        ),
    }
}

fn show_attendance(a: &MyAttendance) {
    println!("{} for user {}", a.month, a.user);
    for s in &a.assignments {
        println!(
            "  assigned   {} / {} ({}){}",
            s.project_name,
            s.site_name,
            s.timezone,
            s.shift
                .as_ref()
                .map(|sh| format!(
                    ", shift {} ({:02}:{:02}-{:02}:{:02})",
                    sh.name,
                    sh.start_min / 60,
                    sh.start_min % 60,
                    sh.end_min / 60,
                    sh.end_min % 60
                ))
                .unwrap_or_default()
        );
    }
    for d in &a.days {
        println!(
            "  {}  {:<14} {:>4} min  {}",
            d.date,
            d.status.to_string(),
            d.worked_min,
            d.explanation
        );
    }
    let s = &a.summary;
    println!(
        "present {}/{} days, late {} ({} min), early leave {}, absent {}, missing punches {}, out of area {}, worked {} min, overtime {} min",
        s.days_present,
        s.days_due,
        s.late_count,
        s.late_min,
        s.early_leave_count,
        s.absences,
        s.missing_punches,
        s.out_of_area,
        s.worked_min,
        s.overtime_min
    );
    if !a.pending_punches.is_empty() {
        println!("not yet sent (not counted above):");
        for p in &a.pending_punches {
            show_punch(p);
        }
    }
}

fn direction(punch_in: bool) -> String {
    if punch_in { "in" } else { "out" }.into()
}

pub fn visit(client: &FieldsyncClient, cmd: VisitCmd, json: bool) -> Result<(), ClientError> {
    match cmd {
        VisitCmd::Plan {
            customer,
            date,
            purpose,
        } => out(
            json,
            &client.plan_visit(customer, date, purpose.unwrap_or_default())?,
            show_visit,
        ),
        VisitCmd::CheckIn { id, fix } => {
            let fix = fix.fix(client)?;
            out(json, &client.check_in(id, fix)?, show_event)
        }
        VisitCmd::CheckOut {
            id,
            fix,
            outcome,
            notes,
            follow_up,
        } => {
            let fix = fix.fix(client)?;
            out(
                json,
                &client.check_out(id, fix, notes.unwrap_or_default(), outcome, follow_up)?,
                show_event,
            )
        }
        VisitCmd::Cancel { id } => out(json, &client.cancel_visit(id)?, show_visit),
        VisitCmd::Review {
            id,
            approve,
            comment,
        } => {
            let decision = if approve { "approved" } else { "comment" };
            out(
                json,
                &client.review_visit(id, decision.into(), comment.unwrap_or_default())?,
                show_visit,
            )
        }
        VisitCmd::Show { id } => out(json, &client.get_visit(id)?, show_visit),
        VisitCmd::List => out(json, &client.list_visits()?, |v: &Vec<VisitView>| {
            for x in v {
                show_visit(x)
            }
        }),
    }
    Ok(())
}

pub fn punch(client: &FieldsyncClient, args: PunchArgs, json: bool) -> Result<(), ClientError> {
    match args.cmd {
        Some(PunchCmd::List { from, to }) => {
            let from = from.as_deref().map(parse_time).transpose()?;
            let to = to.as_deref().map(parse_time).transpose()?;
            out(
                json,
                &client.list_punches(from, to)?,
                |v: &Vec<PunchView>| {
                    for p in v {
                        show_punch(p)
                    }
                },
            )
        }
        None => {
            let missing = |what: &str| ClientError::Invalid {
                code: "invalid_argument".into(),
                message: format!("--{what} is required."),
            };
            let fix = args.fix.fix(client)?;
            let event = client.punch(
                args.project.ok_or_else(|| missing("project"))?,
                args.site.ok_or_else(|| missing("site"))?,
                direction(args.punch_in),
                fix,
                args.note,
            )?;
            out(json, &event, show_event)
        }
    }
    Ok(())
}

pub fn makeup(client: &FieldsyncClient, cmd: MakeupCmd, json: bool) -> Result<(), ClientError> {
    match cmd {
        MakeupCmd::Request {
            project,
            site,
            punch_in,
            punch_out: _,
            at,
            reason,
        } => out(
            json,
            &client.request_makeup(project, site, direction(punch_in), at, reason)?,
            show_makeup,
        ),
        MakeupCmd::Approve { id, comment } => {
            out(json, &client.decide_makeup(id, true, comment)?, show_makeup)
        }
        MakeupCmd::Reject { id, comment } => out(
            json,
            &client.decide_makeup(id, false, comment)?,
            show_makeup,
        ),
        MakeupCmd::List => out(json, &client.list_makeups()?, |v: &Vec<MakeupView>| {
            for m in v {
                show_makeup(m)
            }
        }),
    }
    Ok(())
}

pub fn attendance(client: &FieldsyncClient, month: String, json: bool) -> Result<(), ClientError> {
    out(json, &client.my_attendance(month)?, show_attendance);
    Ok(())
}

pub fn clock(client: &FieldsyncClient, cmd: ClockCmd, json: bool) -> Result<(), ClientError> {
    let status = match cmd {
        ClockCmd::Set {
            wall_ms,
            monotonic_ms,
            boot_id,
        } => client.set_manual_clock(wall_ms, monotonic_ms, boot_id)?,
        ClockCmd::Advance { minutes } => {
            client.advance_manual_clock(minutes.saturating_mul(60_000))?
        }
        ClockCmd::SetWall { wall_ms } => client.set_manual_wall_clock(wall_ms)?,
        ClockCmd::System => client.use_system_clock()?,
        ClockCmd::Show => client.clock_status()?,
    };
    out(json, &status, show_clock);
    Ok(())
}
