//! `fieldsync-device`: a phone in a terminal. Wraps [`fieldsync_mobile_core::FieldsyncClient`]
//! one command per call, for scripts, demos and end-to-end tests. `--json` prints
//! machine-readable output; errors go to stderr as `error: <message> (<code>)` (or a JSON
//! `{"error","message"}`) with exit code 1.
//!
//! Field work (visits, punches, make-up requests, the worker's month, the manual clock) lives in
//! `device/field.rs`, photos and their upload queue in `device/photo.rs`, site diaries and the
//! customer timeline in `device/diary.rs`.

#[path = "device/diary.rs"]
mod diary;
#[path = "device/field.rs"]
mod field;
#[path = "device/photo.rs"]
mod photo;

use clap::{Args, Parser, Subcommand};
use fieldsync_mobile_core::{
    ClientError, CustomerView, FieldEdit, FieldsyncClient, NewContact, NewCustomer, NewProject,
    NewSite, ProjectView, Status, SyncReport,
};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fieldsync-device",
    about = "A fieldsync phone in a terminal: offline records and sync."
)]
struct Cli {
    /// The device's data directory.
    #[arg(
        long,
        env = "FIELDSYNC_DEVICE_DIR",
        global = true,
        default_value = ".fieldsync-device"
    )]
    dir: String,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Log in to a server.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "FIELDSYNC_PASSWORD")]
        password: String,
    },
    /// Forget the tokens (records stay).
    Logout,
    /// Customers.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Push local edits and pull what changed.
    Sync,
    /// Compare everything with the server, fix differences, then sync.
    Repair,
    /// Session, pending edits, last sync, rejections.
    Status,
    /// Stay connected and sync whenever the server announces a change.
    Live {
        /// How long to stay connected.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Delete all local data of this device (keeps the device id).
    Purge,
    /// Customer visits: plan, check in and out, review.
    #[command(subcommand)]
    Visit(field::VisitCmd),
    /// Clock in or out at a project site (--in|--out), or `punch list`.
    Punch(field::PunchArgs),
    /// Requests for missed punches.
    #[command(subcommand)]
    Makeup(field::MakeupCmd),
    /// Your month of attendance, from the server.
    Attendance {
        /// YYYY-MM
        #[arg(long)]
        month: String,
    },
    /// The phone's clocks: a manual clock to play a field day, or the system's.
    #[command(subcommand)]
    Clock(field::ClockCmd),
    /// Photos: take, list, review, comment; the upload queue of their bytes.
    #[command(subcommand)]
    Photo(photo::PhotoCmd),
    /// Site diaries: open a site's day, write it, sign it off, reopen it.
    #[command(subcommand)]
    Diary(diary::DiaryCmd),
}

#[derive(Args)]
struct CustomerFields {
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    phone: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    lat: Option<f64>,
    #[arg(long, allow_hyphen_values = true)]
    lon: Option<f64>,
    #[arg(long)]
    tier: Option<String>,
    #[arg(long)]
    lifecycle: Option<String>,
    /// Comma-separated.
    #[arg(long)]
    tags: Option<String>,
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Subcommand)]
enum CustomerCmd {
    /// Create a customer.
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        fields: CustomerFields,
    },
    /// Set fields: --set name=Acme --set tags=a,b --set lat=30.6 (empty value clears).
    Edit {
        id: String,
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Add a contact person.
    ContactAdd {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Remove a contact person.
    ContactRemove { id: String, contact: String },
    /// One customer, with conflicts.
    Show { id: String },
    /// All customers.
    List,
    /// Everything this phone holds about a customer, newest first (works offline).
    Timeline { id: String },
}

#[derive(Subcommand)]
enum ProjectCmd {
    /// Create a project.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        code: Option<String>,
        /// The customer's id.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Set fields: --set status=active (name, code, status, customer).
    Edit {
        id: String,
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Add a site, optionally with a circle geofence.
    SiteAdd {
        project: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        timezone: String,
        #[arg(long)]
        address: Option<String>,
        #[arg(long, allow_hyphen_values = true, requires_all = ["lon", "radius"])]
        lat: Option<f64>,
        #[arg(long, allow_hyphen_values = true, requires_all = ["lat", "radius"])]
        lon: Option<f64>,
        /// Geofence radius in metres.
        #[arg(long, requires_all = ["lat", "lon"])]
        radius: Option<f64>,
    },
    /// Add a member: --role site_manager|crew|viewer.
    MemberAdd {
        project: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        role: String,
    },
    /// Add a milestone.
    MilestoneAdd {
        project: String,
        #[arg(long)]
        name: String,
        /// YYYY-MM-DD
        #[arg(long)]
        due: Option<String>,
    },
    /// One project, with conflicts.
    Show { id: String },
    /// All projects.
    List,
}

fn edits(set: &[String]) -> Result<Vec<FieldEdit>, ClientError> {
    set.iter()
        .map(|s| match s.split_once('=') {
            Some((f, v)) => Ok(FieldEdit {
                field: f.trim().to_owned(),
                value: v.to_owned(),
            }),
            None => Err(ClientError::Invalid {
                code: "invalid_argument".into(),
                message: format!("'{s}' is not FIELD=VALUE."),
            }),
        })
        .collect()
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

fn show_customer(v: &CustomerView) {
    let c = &v.customer;
    println!(
        "{} — {} ({}){}",
        c.id,
        c.name,
        c.customer_kind,
        if v.pending { " [not synced]" } else { "" }
    );
    let opt = |label: &str, value: &Option<String>| {
        if let Some(x) = value {
            println!("  {label:<10} {x}");
        }
    };
    opt("phone", &c.phone);
    opt("email", &c.email);
    opt("address", &c.address);
    if let Some(l) = c.location {
        println!("  {:<10} {}, {}", "location", l.lat, l.lon);
    }
    opt("tier", &c.tier.map(|t| t.to_string()));
    println!("  {:<10} {}", "lifecycle", c.lifecycle);
    println!("  {:<10} {}", "owner", c.owner);
    if !c.tags.is_empty() {
        println!("  {:<10} {}", "tags", c.tags.join(", "));
    }
    for k in &c.contacts {
        println!(
            "  contact    {} {} ({})",
            k.name,
            k.title.as_deref().unwrap_or(""),
            k.id
        );
    }
    if !c.notes.is_empty() {
        println!("  {:<10} {}", "notes", c.notes);
    }
    for x in &v.conflicts {
        println!("  CONFLICT   {}: {}", x.field, x.values.join(" | "));
    }
}

fn show_project(v: &ProjectView) {
    let p = &v.project;
    println!(
        "{} — {}{} [{}]{}",
        p.id,
        p.name,
        p.code
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        p.status,
        if v.pending { " [not synced]" } else { "" }
    );
    if let Some(c) = p.customer {
        println!("  customer   {c}");
    }
    for s in &p.sites {
        println!(
            "  site       {} {} {} ({})",
            s.name,
            s.timezone,
            s.address.as_deref().unwrap_or(""),
            s.id
        );
    }
    for m in &p.members {
        println!("  member     {} {}", m.user, m.role);
    }
    for m in &p.milestones {
        println!(
            "  milestone  {} {} {}",
            m.name,
            m.due.as_deref().unwrap_or("-"),
            m.status
        );
    }
    for x in &v.conflicts {
        println!("  CONFLICT   {}: {}", x.field, x.values.join(" | "));
    }
}

fn show_report(r: &SyncReport) {
    println!(
        "pushed {} (accepted {}, rejected {}), pulled {}, revoked {}",
        r.pushed,
        r.accepted,
        r.rejected.len(),
        r.pulled,
        r.revoked
    );
    for x in &r.rejected {
        println!("  rejected {}: {} ({})", x.doc_id, x.message, x.code);
    }
    let u = &r.uploads;
    if u.completed + u.failed + u.errors + u.remaining > 0 || u.stopped_code.is_some() {
        println!("{}", photo::upload_line(u));
    }
}

fn show_status(s: &Status) {
    if s.logged_in {
        println!(
            "logged in as {} ({}) in {} at {}",
            s.email.as_deref().unwrap_or("?"),
            s.role.as_deref().unwrap_or("?"),
            s.tenant.as_deref().unwrap_or("?"),
            s.server_url.as_deref().unwrap_or("?")
        );
    } else {
        println!("not logged in");
    }
    println!("device {}", s.device_id);
    println!(
        "{} records, {} not synced, {} batches in flight",
        s.total_docs, s.pending_docs, s.pending_batches
    );
    match s.last_sync_at_ms {
        Some(t) => println!(
            "last sync {}, cursor {}",
            ago(t),
            s.cursor.as_deref().unwrap_or("-")
        ),
        None => println!("never synced"),
    }
    for x in &s.last_rejections {
        println!("  rejected {}: {} ({})", x.doc_id, x.message, x.code);
    }
}

/// "12 s ago", "5 min ago", "3 h ago", "2 days ago" for a time in ms since the epoch.
fn ago(t_ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(t_ms);
    let s = (now - t_ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    let json = cli.json;
    let client = FieldsyncClient::open(cli.dir)?;
    macro_rules! out {
        ($value:expr, $human:expr) => {{
            let v = $value;
            if json { print_json(&v) } else { $human(&v) }
        }};
    }
    match cli.cmd {
        Cmd::Login {
            server,
            tenant,
            email,
            password,
        } => out!(client.login(server, tenant, email, password)?, show_status),
        Cmd::Logout => {
            client.logout()?;
            out!(
                serde_json::json!({"logged_out": true}),
                |_: &serde_json::Value| println!("logged out")
            )
        }
        Cmd::Status => out!(client.status()?, show_status),
        Cmd::Sync => out!(client.sync()?, show_report),
        Cmd::Repair => out!(
            client.repair()?,
            |r: &fieldsync_mobile_core::RepairReport| {
                println!(
                    "added {}, revoked {}, reconciled {}",
                    r.added, r.revoked, r.reconciled
                );
                show_report(&r.sync);
            }
        ),
        Cmd::Purge => {
            client.purge()?;
            out!(
                serde_json::json!({"purged": true}),
                |_: &serde_json::Value| println!("all local data removed")
            )
        }
        Cmd::Live { seconds } => {
            let conn = client.connect_live()?;
            // Catch up first, then follow.
            let r = client.sync()?;
            out!(r, show_report);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
            loop {
                let left = deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis() as u64;
                if left == 0 {
                    break;
                }
                match client.sync_on_change(&conn, left)? {
                    Some(r) => out!(r, show_report),
                    None => break,
                }
            }
            conn.close();
        }
        Cmd::Visit(c) => field::visit(&client, c, json)?,
        Cmd::Punch(a) => field::punch(&client, a, json)?,
        Cmd::Makeup(c) => field::makeup(&client, c, json)?,
        Cmd::Attendance { month } => field::attendance(&client, month, json)?,
        Cmd::Clock(c) => field::clock(&client, c, json)?,
        Cmd::Photo(c) => photo::photo(&client, c, json)?,
        Cmd::Diary(c) => diary::diary(&client, c, json)?,
        Cmd::Customer(c) => match c {
            CustomerCmd::Add { name, fields: f } => {
                let new = NewCustomer {
                    name,
                    kind: f.kind,
                    phone: f.phone,
                    email: f.email,
                    address: f.address,
                    lat: f.lat,
                    lon: f.lon,
                    tier: f.tier,
                    lifecycle: f.lifecycle,
                    tags: f
                        .tags
                        .map(|t| t.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                    notes: f.notes,
                };
                out!(client.create_customer(new)?, show_customer)
            }
            CustomerCmd::Edit { id, set } => {
                out!(client.edit_customer(id, edits(&set)?)?, show_customer)
            }
            CustomerCmd::ContactAdd {
                id,
                name,
                title,
                phone,
                email,
            } => {
                out!(
                    client.add_contact(
                        id,
                        NewContact {
                            name,
                            title,
                            phone,
                            email
                        }
                    )?,
                    |k: &fieldsync_mobile_core::Contact| {
                        println!("added contact {} ({})", k.name, k.id)
                    }
                )
            }
            CustomerCmd::ContactRemove { id, contact } => {
                out!(client.remove_contact(id, contact)?, show_customer)
            }
            CustomerCmd::Show { id } => out!(client.get_customer(id)?, show_customer),
            CustomerCmd::Timeline { id } => diary::timeline(&client, id, json)?,
            CustomerCmd::List => out!(client.list_customers()?, |v: &Vec<CustomerView>| {
                for c in v {
                    println!(
                        "{}  {}{}{}",
                        c.customer.id,
                        c.customer.name,
                        if c.pending { "  [not synced]" } else { "" },
                        if c.conflicts.is_empty() {
                            String::new()
                        } else {
                            format!("  [{} conflicts]", c.conflicts.len())
                        }
                    );
                }
            }),
        },
        Cmd::Project(p) => match p {
            ProjectCmd::Add {
                name,
                code,
                customer,
                status,
            } => {
                out!(
                    client.create_project(NewProject {
                        name,
                        code,
                        customer_id: customer,
                        status
                    })?,
                    show_project
                )
            }
            ProjectCmd::Edit { id, set } => {
                out!(client.edit_project(id, edits(&set)?)?, show_project)
            }
            ProjectCmd::SiteAdd {
                project,
                name,
                timezone,
                address,
                lat,
                lon,
                radius,
            } => {
                let geofence = match (lat, lon, radius) {
                    (Some(lat), Some(lon), Some(r)) => Some(NewSite::circle(lat, lon, r)),
                    _ => None,
                };
                out!(
                    client.add_site(
                        project,
                        NewSite {
                            name,
                            address,
                            timezone,
                            geofence
                        }
                    )?,
                    |s: &fieldsync_mobile_core::Site| {
                        println!("added site {} ({})", s.name, s.id)
                    }
                )
            }
            ProjectCmd::MemberAdd {
                project,
                user,
                role,
            } => out!(client.add_member(project, user, role)?, show_project),
            ProjectCmd::MilestoneAdd { project, name, due } => {
                out!(
                    client.add_milestone(project, name, due)?,
                    |m: &fieldsync_mobile_core::Milestone| {
                        println!("added milestone {} ({})", m.name, m.id)
                    }
                )
            }
            ProjectCmd::Show { id } => out!(client.get_project(id)?, show_project),
            ProjectCmd::List => out!(client.list_projects()?, |v: &Vec<ProjectView>| {
                for p in v {
                    println!(
                        "{}  {}  [{}]{}",
                        p.project.id,
                        p.project.name,
                        p.project.status,
                        if p.pending { "  [not synced]" } else { "" }
                    );
                }
            }),
        },
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"error": e.code(), "message": e.message()})
                );
            } else {
                eprintln!("error: {} ({})", e.message(), e.code());
            }
            ExitCode::FAILURE
        }
    }
}
