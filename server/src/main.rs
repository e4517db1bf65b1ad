//! `fieldsync`: the server's command line. This file only parses arguments and starts things.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fieldsync_server::app::{self, AppState, Server};
use fieldsync_server::{demo, handover, import, report, store};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "fieldsync", version, about = "fieldsync sync server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Directory for the embedded SQLite database (used unless --database-url is given).
    #[arg(long, env = "FIELDSYNC_DATA_DIR", default_value = "./fieldsync-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...) to use instead of the embedded SQLite file.
    #[arg(long, env = "FIELDSYNC_DATABASE_URL")]
    database_url: Option<String>,
}

impl DbArgs {
    fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            self.data_dir
                .join("fieldsync.db")
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on.
        #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seed a demo tenant (if absent) and print how to log in.
        #[arg(long)]
        demo: bool,
        /// Directory for photo bytes [default: <data-dir>/blobs]. With --blob-store, only the
        /// uploads in progress are kept here.
        #[arg(long, env = "FIELDSYNC_BLOB_DIR")]
        blob_dir: Option<PathBuf>,
        /// Keep finished photo bytes and thumbnails in S3-compatible object storage:
        /// s3://bucket/prefix. Endpoint, credentials and region come from the usual AWS_*
        /// variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION);
        /// an http:// endpoint (a local server) is allowed. Default: local files.
        #[arg(long, env = "FIELDSYNC_BLOB_STORE")]
        blob_store: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write reports.
    Report {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Import records from files (customers from CSV).
    Import {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Administer tenants, users and devices.
    Admin {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Customers from a CSV file: every row validated and reported; re-running a file updates
    /// the customers it made instead of duplicating them.
    Customers {
        /// The CSV file (UTF-8; `,`, `;` or tab separated; header row first).
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        /// Owner (email) of new customers whose row names none [default: the importer].
        #[arg(long)]
        owner: Option<String>,
        /// Read a field from a column: --map name=Company --map phone=Tel (repeatable;
        /// `--map phone=` ignores a column the defaults would read).
        #[arg(long = "map", value_name = "FIELD=HEADER")]
        map: Vec<String>,
        /// Validate and report only; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the rows with errors here as CSV (row, column, code, message).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Import as this admin or manager (email) [default: the tenant's first admin].
        #[arg(long = "as", value_name = "EMAIL")]
        as_user: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Attendance per employee over a period (summary) or per day (--sheet days).
    Attendance {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day (included), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// csv, xlsx or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// For CSV: summary or days.
        #[arg(long, default_value = "summary")]
        sheet: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Only this manager's team (their email).
        #[arg(long)]
        team: Option<String>,
        /// Only people assigned to this site: PROJECT_ID:SITE_ID.
        #[arg(long)]
        site: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    CreateTenant {
        /// The slug people type at login (lower-case letters, digits, '-').
        #[arg(long)]
        name: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    CreateUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "FIELDSYNC_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        /// field_rep, manager, site_manager, hr or admin.
        #[arg(long)]
        role: String,
        /// Email of the manager this user reports to.
        #[arg(long)]
        manager: Option<String>,
    },
    DisableUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    RevokeDevice {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        device: String,
    },
    /// Move every customer a user owns to another rep or manager (--to) or to the shared pool
    /// (--pool); with --disable, disable the user in the same step. Recorded as a handover.
    Handover {
        #[arg(long)]
        tenant: String,
        /// Email of the user whose customers move.
        #[arg(long)]
        from: String,
        /// Email of the rep or manager who receives them.
        #[arg(long, required_unless_present = "pool", conflicts_with = "pool")]
        to: Option<String>,
        /// Put them into the shared pool that managers hand out.
        #[arg(long)]
        pool: bool,
        #[arg(long)]
        disable: bool,
    },
    ListUsers {
        #[arg(long)]
        tenant: String,
    },
    ListDevices {
        #[arg(long)]
        tenant: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve {
            db,
            listen,
            demo: seed_demo,
            blob_dir,
            blob_store,
        } => {
            let store = store::open(&db.url())
                .await
                .context("opening the database")?;
            let seeded = if seed_demo {
                demo::seed(store.as_ref())
                    .await
                    .context("seeding the demo tenant")?
            } else {
                false
            };
            let blob_dir = blob_dir.unwrap_or_else(|| db.data_dir.join("blobs"));
            let blobs = match blob_store.as_deref().filter(|u| !u.is_empty()) {
                None => fieldsync_server::blobs::BlobStore::new(&blob_dir),
                Some(url) => {
                    fieldsync_server::blobs::BlobStore::s3(&blob_dir, url, std::env::vars())?
                }
            };
            blobs.check().await.with_context(|| {
                format!("the photo store {} cannot be reached", blobs.location())
            })?;
            tracing::info!(blobs = %blobs.location(), uploads = %blob_dir.display(), "photo bytes");
            let state = AppState::with_blob_store(store.clone(), blobs).await?;
            let swept = state
                .blobs
                .sweep_stale(fieldsync_server::blobs::STALE_AFTER)
                .await
                .with_context(|| format!("sweeping abandoned uploads in {}", blob_dir.display()))?;
            if swept > 0 {
                tracing::info!(swept, "removed uploads abandoned for a week");
            }
            let server = Server::start(state, listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            tracing::info!(addr = %server.addr, backend = store.backend(), "fieldsync serving");
            println!(
                "fieldsync listening on {} ({})",
                server.url(),
                store.backend()
            );
            if seed_demo {
                if seeded {
                    println!("Seeded the demo tenant.");
                }
                println!("{}", demo::instructions(&server.url()));
            }
            tokio::select! {
                r = server.wait() => r?,
                _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
            }
        }
        Command::Migrate { db } => {
            let store = store::open(&db.url())
                .await
                .context("opening the database")?;
            println!("Migrations applied ({}).", store.backend());
        }
        Command::Report { db, report } => {
            let store = store::open(&db.url())
                .await
                .context("opening the database")?;
            match report {
                ReportCommand::Attendance {
                    tenant,
                    from,
                    to,
                    format,
                    sheet,
                    output,
                    team,
                    site,
                } => {
                    let s = store.as_ref();
                    let t = app::tenant(s, &tenant).await?;
                    let (from, to) = report::period(&from, &to)?;
                    let sheet = match sheet.as_str() {
                        "summary" => report::Sheet::Summary,
                        "days" => report::Sheet::Days,
                        other => anyhow::bail!("'{other}' is not a sheet; use summary or days"),
                    };
                    let users = s.list_users(t.id).await?;
                    let mut people: Option<Vec<fieldsync_sync::UserId>> = None;
                    if let Some(email) = team {
                        let lead = users
                            .iter()
                            .find(|u| u.email == email.to_lowercase())
                            .ok_or_else(|| anyhow::anyhow!("no user '{email}' in '{tenant}'"))?
                            .id;
                        people = Some(
                            users
                                .iter()
                                .filter(|u| u.id == lead || u.manager == Some(lead))
                                .map(|u| u.id)
                                .collect(),
                        );
                    }
                    if let Some(site) = site {
                        let (p, sid) = site.split_once(':').ok_or_else(|| {
                            anyhow::anyhow!("write the site as PROJECT_ID:SITE_ID")
                        })?;
                        let at: Vec<String> = s
                            .assignments(t.id, None)
                            .await?
                            .into_iter()
                            .filter(|a| a.project == p && a.site == sid)
                            .map(|a| a.user)
                            .collect();
                        let base = people.unwrap_or_else(|| users.iter().map(|u| u.id).collect());
                        people = Some(
                            base.into_iter()
                                .filter(|u| at.contains(&u.as_string()))
                                .collect(),
                        );
                    }
                    let (from_ms, to_ms) = report::load_range_ms(from, to);
                    let inputs = s
                        .attendance_inputs(t.id, people.as_deref(), from_ms, to_ms)
                        .await?;
                    let rep = report::build(&inputs, from, to);
                    let bytes = match format.as_str() {
                        "csv" => report::to_csv(&rep, sheet).into_bytes(),
                        "json" => serde_json::to_vec_pretty(&rep)?,
                        "xlsx" => report::to_xlsx(&rep, store::now_ms())?,
                        other => anyhow::bail!("'{other}' is not a format; use csv, xlsx or json"),
                    };
                    match output {
                        Some(path) => {
                            std::fs::write(&path, &bytes)
                                .with_context(|| format!("writing {}", path.display()))?;
                            eprintln!(
                                "Wrote {} ({} employees, {} bytes).",
                                path.display(),
                                rep.employees.len(),
                                bytes.len()
                            );
                        }
                        None => {
                            use std::io::Write;
                            std::io::stdout().write_all(&bytes)?;
                        }
                    }
                }
            }
        }
        Command::Admin { db, action } => {
            let store = store::open(&db.url())
                .await
                .context("opening the database")?;
            let s = store.as_ref();
            match action {
                AdminCommand::CreateTenant { name, display_name } => {
                    let t = app::create_tenant(s, &name, display_name.as_deref()).await?;
                    println!("Created tenant '{}' ({}).", t.slug, t.id);
                }
                AdminCommand::CreateUser {
                    tenant,
                    email,
                    password,
                    role,
                    manager,
                } => {
                    let t = app::tenant(s, &tenant).await?;
                    let role = role
                        .parse()
                        .map_err(|e: fieldsync_sync::Rejection| anyhow::anyhow!(e.message))?;
                    let u = app::create_user(s, t.id, &email, &password, role, manager.as_deref())
                        .await?;
                    println!("Created {} {} ({}).", u.role, u.email, u.id);
                }
                AdminCommand::DisableUser { tenant, email } => {
                    let t = app::tenant(s, &tenant).await?;
                    let u = s
                        .user_by_email(t.id, &email.to_lowercase())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user '{email}' in '{tenant}'"))?;
                    s.set_user_disabled(t.id, u.id, true).await?;
                    println!("Disabled {email}; their devices are revoked and stop syncing now.");
                }
                AdminCommand::Handover {
                    tenant,
                    from,
                    to,
                    pool,
                    disable,
                } => {
                    let t = app::tenant(s, &tenant).await?;
                    let source = user_by_email(s, &t, &from).await?;
                    let target = match (to, pool) {
                        (Some(email), false) => {
                            handover::Target::User(user_by_email(s, &t, &email).await?.id)
                        }
                        _ => handover::Target::Pool,
                    };
                    let caller = handover::operator(t.id);
                    let out = handover::handover(s, &caller, source.id, target, disable)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!("{}", out.message);
                    for r in &out.refused {
                        println!("not moved: {}\t{}\t{}", r.customer_id, r.error, r.message);
                    }
                    if let Some(h) = &out.handover {
                        println!(
                            "Handover {} (undo: POST /v1/admin/handovers/{}/undo).",
                            h.id, h.id
                        );
                    }
                    if out.disabled {
                        println!(
                            "{} is disabled; their devices purge at their next contact.",
                            source.email
                        );
                    }
                }
                AdminCommand::RevokeDevice { tenant, device } => {
                    let t = app::tenant(s, &tenant).await?;
                    let d = device
                        .parse()
                        .map_err(|_| anyhow::anyhow!("'{device}' is not a device id"))?;
                    s.revoke_device(t.id, d).await?;
                    println!("Revoked device {device}.");
                }
                AdminCommand::ListUsers { tenant } => {
                    let t = app::tenant(s, &tenant).await?;
                    for u in s.list_users(t.id).await? {
                        println!(
                            "{}\t{}\t{}\t{}",
                            u.id,
                            u.email,
                            u.role,
                            if u.disabled { "disabled" } else { "active" }
                        );
                    }
                }
                AdminCommand::ListDevices { tenant } => {
                    let t = app::tenant(s, &tenant).await?;
                    for d in s.list_devices(t.id, None).await? {
                        println!(
                            "{}\t{}\t{}\t{}",
                            d.id,
                            d.user,
                            d.name,
                            if d.revoked { "revoked" } else { "active" }
                        );
                    }
                }
            }
        }
        Command::Import { db, what } => {
            let store = store::open(&db.url())
                .await
                .context("opening the database")?;
            match what {
                ImportCommand::Customers {
                    file,
                    tenant,
                    owner,
                    map,
                    dry_run,
                    report,
                    as_user,
                } => {
                    let all_good = import::run_cli(
                        store.as_ref(),
                        import::CliArgs {
                            file,
                            tenant,
                            owner,
                            map,
                            dry_run,
                            report,
                            as_user,
                        },
                    )
                    .await?;
                    if !all_good {
                        std::process::exit(2);
                    }
                }
            }
        }
    }
    Ok(())
}

/// A user of the tenant by email, or an error naming both.
async fn user_by_email(
    s: &dyn store::Store,
    t: &store::Tenant,
    email: &str,
) -> anyhow::Result<store::User> {
    s.user_by_email(t.id, &email.to_lowercase())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user '{email}' in '{}'", t.slug))
}
