//! fieldsync sync benchmark: the same three phases as the automerge-repo peer benchmark
//! (`shared/peers/automerge-repo/bench.mjs`), server and phones in one process on loopback.
//!
//! 1. upload: a phone creates N customers offline (not timed), then `sync()` is timed until
//!    the server holds all N (checked with the store's `count_documents`).
//! 2. download: a fresh phone (same user, login not timed) times its `sync()` until it holds N.
//! 3. resync: the first phone restarts (reopens its data directory, not timed) and times a
//!    `sync()` that confirms it is up to date.
//!
//! Requests and bytes on the wire (request + response bodies) come from the server's
//! `GET /metrics`, read before and after each phase (the metrics requests themselves are
//! subtracted). CPU time is split into the phone (the main thread, which runs the blocking
//! phone API) and the server (every other thread: tokio workers, SQLite connection threads).
//!
//!     cargo run --release -p fieldsync-tests --bin fieldsync-bench -- --n 1000,3000 --runs 3
//!
//! With more than one run (several N or `--runs`), each run is a child process of its own, so
//! its peak RSS (VmHWM) is its own; the medians are printed at the end as markdown rows.

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use fieldsync_mobile_core::{FieldsyncClient, NewCustomer};
use fieldsync_server::app;
use fieldsync_sync::Role;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "fieldsync-bench",
    about = "Upload / download / resync benchmark (same scenario as the automerge-repo peer)"
)]
struct Args {
    /// Record counts; repeat the flag or give a comma list.
    #[arg(long = "n", value_delimiter = ',', num_args = 1.., default_value = "10000")]
    n: Vec<usize>,
    /// Server store: a `postgres://` URL (a tenant with a fresh slug is made per run, so any
    /// database works). Default: SQLite in a new temp dir.
    #[arg(long, env = "FIELDSYNC_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Runs per N; the median of each figure is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Internal: run exactly one benchmark in this process and print a RESULT line.
    #[arg(long, hide = true)]
    child: bool,
}

/// Wire and CPU figures for one phase.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    ms: f64,
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    phone_cpu_ms: f64,
    server_cpu_ms: f64,
}

impl Phase {
    fn rate(&self, n: usize) -> f64 {
        n as f64 / (self.ms / 1000.0)
    }
    fn bytes(&self) -> u64 {
        self.bytes_in + self.bytes_out
    }
}

/// One run's results.
#[derive(Clone, Copy, Debug, Default)]
struct RunResult {
    n: usize,
    upload: Phase,
    download: Phase,
    resync: Phase,
    rss_kib: u64,
}

impl RunResult {
    fn line(&self) -> String {
        let p = |p: &Phase| {
            format!(
                "{:.3} {} {} {} {:.1} {:.1}",
                p.ms, p.requests, p.bytes_in, p.bytes_out, p.phone_cpu_ms, p.server_cpu_ms
            )
        };
        format!(
            "RESULT {} {} {} {} {}",
            self.n,
            p(&self.upload),
            p(&self.download),
            p(&self.resync),
            self.rss_kib
        )
    }

    fn from_line(line: &str) -> Option<RunResult> {
        let f: Vec<&str> = line.strip_prefix("RESULT ")?.split_whitespace().collect();
        if f.len() != 20 {
            return None;
        }
        let phase = |i: usize| -> Option<Phase> {
            Some(Phase {
                ms: f[i].parse().ok()?,
                requests: f[i + 1].parse().ok()?,
                bytes_in: f[i + 2].parse().ok()?,
                bytes_out: f[i + 3].parse().ok()?,
                phone_cpu_ms: f[i + 4].parse().ok()?,
                server_cpu_ms: f[i + 5].parse().ok()?,
            })
        };
        Some(RunResult {
            n: f[0].parse().ok()?,
            upload: phase(1)?,
            download: phase(7)?,
            resync: phase(13)?,
            rss_kib: f[19].parse().ok()?,
        })
    }
}

/// The server's cumulative counters.
#[derive(Clone, Copy, Debug)]
struct Metrics {
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Length of this metrics response's own body (counted as bytes_out only afterwards).
    own_len: u64,
}

fn metrics(base: &str) -> Result<Metrics> {
    let mut resp = ureq::get(&format!("{base}/metrics"))
        .call()
        .context("GET /metrics")?;
    let text = resp.body_mut().read_to_string().context("read /metrics")?;
    let v: serde_json::Value = serde_json::from_str(&text).context("parse /metrics")?;
    let get = |k: &str| {
        v[k].as_u64()
            .with_context(|| format!("/metrics has no '{k}': {text}"))
    };
    Ok(Metrics {
        requests: get("requests")?,
        bytes_in: get("bytes_in")?,
        bytes_out: get("bytes_out")?,
        own_len: text.len() as u64,
    })
}

/// CPU time in ms: (main thread, whole process). The main thread runs the phone.
fn cpu_ms() -> (f64, f64) {
    // schedstat: ns on CPU, for the main thread (tid == pid).
    let main = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", std::process::id()))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6);
    // /proc/self/stat utime + stime (clock ticks, 100 per second on Linux), includes threads
    // that already ended.
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat; `rest` starts at field 3.
            let u: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((u + st) * 10.0)
        })
        .unwrap_or(0.0);
    (main, total)
}

/// Peak resident set size of this process, KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Times `f`, with the wire figures from /metrics and the CPU split around it.
fn measure<T>(base: &str, f: impl FnOnce() -> Result<T>) -> Result<(Phase, T)> {
    let before = metrics(base)?;
    let (main0, total0) = cpu_ms();
    let t0 = Instant::now();
    let out = f()?;
    let elapsed = t0.elapsed();
    let (main1, total1) = cpu_ms();
    let after = metrics(base)?;
    let phone = main1 - main0;
    let phase = Phase {
        ms: elapsed.as_secs_f64() * 1000.0,
        // The "after" metrics request counted itself before answering.
        requests: after.requests - before.requests - 1,
        bytes_in: after.bytes_in - before.bytes_in,
        // The "before" metrics answer was counted after its snapshot was taken.
        bytes_out: after.bytes_out - before.bytes_out - before.own_len,
        phone_cpu_ms: phone,
        server_cpu_ms: ((total1 - total0) - phone).max(0.0),
    };
    Ok((phase, out))
}

fn customer(i: usize) -> NewCustomer {
    NewCustomer {
        name: format!("Customer {i}"),
        phone: Some(format!("+86 138 0000 {i:04}")),
        address: Some(format!("{i} Renmin Road, Chengdu")),
        lat: Some(30.65 + i as f64 * 1e-5),
        lon: Some(104.06 + i as f64 * 1e-5),
        tier: Some(["gold", "silver", "bronze"][i % 3].to_owned()),
        ..Default::default()
    }
}

fn dir_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn kib(b: u64) -> String {
    if b < 10 * 1024 {
        format!("{b} B")
    } else if b < 10 * 1024 * 1024 {
        format!("{:.0} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    }
}

fn print_phase(label: &str, n: usize, p: &Phase) {
    println!(
        "{label:<9} {:>9.0} ms  {:>9.0} records/s  {:>5} requests  {:>10} on the wire (in {}, out {})  cpu: phone {:.0} ms, server {:.0} ms",
        p.ms,
        p.rate(n),
        p.requests,
        kib(p.bytes()),
        kib(p.bytes_in),
        kib(p.bytes_out),
        p.phone_cpu_ms,
        p.server_cpu_ms
    );
}

/// One benchmark run with N records, in this process.
fn run(n: usize, database_url: Option<&str>) -> Result<RunResult> {
    let tmp = tempfile::Builder::new()
        .prefix("fieldsync-bench-")
        .tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let url = match database_url {
        Some(u) => u.to_owned(),
        None => dir_string(&tmp.path().join("server").join("fieldsync.db")),
    };
    if database_url.is_none() {
        std::fs::create_dir_all(tmp.path().join("server"))?;
    }
    // A fresh tenant per run, so a shared PostgreSQL database can be reused.
    let slug = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let (store, tenant, server) = rt.block_on(async {
        let store = fieldsync_server::store::open(&url)
            .await
            .with_context(|| format!("open the server store {url}"))?;
        let tenant = app::create_tenant(store.as_ref(), &slug, Some("Bench")).await?;
        app::create_user(
            store.as_ref(),
            tenant.id,
            "rep@bench.test",
            "password123",
            Role::FieldRep,
            None,
        )
        .await?;
        let state = app::AppState::new(store.clone()).await?;
        let server = app::Server::start(state, "127.0.0.1:0".parse()?).await?;
        anyhow::Ok((store, tenant, server))
    })?;
    let base = server.url();
    let backend = store.backend();
    println!("--- N = {n}, server store: {backend}, server at {base}");
    let login = |c: &FieldsyncClient| -> Result<()> {
        c.login(
            base.clone(),
            slug.clone(),
            "rep@bench.test".into(),
            "password123".into(),
        )?;
        Ok(())
    };

    // 1. upload
    let phone1_dir = dir_string(&tmp.path().join("phone1"));
    let phone1 = FieldsyncClient::open(phone1_dir.clone())?;
    login(&phone1)?;
    let t0 = Instant::now();
    for i in 0..n {
        phone1.create_customer(customer(i))?;
    }
    println!(
        "created {n} customers offline in {:.0} ms (not timed)",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let (upload, report) = measure(&base, || Ok(phone1.sync()?))?;
    let held = rt.block_on(store.count_documents(tenant.id))?;
    if held != n as i64 {
        bail!("upload: the server holds {held} documents, expected {n} (sync report: {report:?})");
    }
    ensure!(
        report.rejected.is_empty(),
        "upload: {} rejected, first: {:?}",
        report.rejected.len(),
        report.rejected.first()
    );
    println!(
        "upload report: pushed {}, accepted {}, pulled back {}",
        report.pushed, report.accepted, report.pulled
    );
    print_phase("upload", n, &upload);

    // 2. download to a fresh phone
    let phone2 = FieldsyncClient::open(dir_string(&tmp.path().join("phone2")))?;
    login(&phone2)?;
    let (download, report) = measure(&base, || Ok(phone2.sync()?))?;
    let total = phone2.status()?.total_docs;
    let listed = phone2.list_customers()?.len();
    if total != n as u64 || listed != n {
        bail!(
            "download: the fresh phone holds {total} documents ({listed} customers), expected {n} (sync report: pulled {})",
            report.pulled
        );
    }
    println!("download report: pulled {}", report.pulled);
    print_phase("download", n, &download);
    drop(phone2);

    // 3. resync: the first phone restarts, nothing changed
    drop(phone1);
    let phone1 = FieldsyncClient::open(phone1_dir)?;
    let (resync, report) = measure(&base, || Ok(phone1.sync()?))?;
    let status = phone1.status()?;
    if status.total_docs != n as u64 || status.pending_docs != 0 || report.pulled != 0 {
        bail!(
            "resync: phone holds {} documents, {} pending, pulled {} (expected {n}, 0, 0)",
            status.total_docs,
            status.pending_docs,
            report.pulled
        );
    }
    print_phase("resync", n, &resync);
    drop(phone1);

    rt.block_on(server.stop());
    drop(store);
    rt.shutdown_timeout(Duration::from_secs(5));
    let rss_kib = vm_hwm_kib();
    println!(
        "peak RSS (VmHWM, server and phones in one process): {:.0} MiB",
        rss_kib as f64 / 1024.0
    );
    Ok(RunResult {
        n,
        upload,
        download,
        resync,
        rss_kib,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Markdown row for BENCHMARKS.md: medians over `runs` (all with the same N).
fn table_row(runs: &[RunResult]) -> String {
    let n = runs[0].n;
    let med = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    let up_ms = med(&|r| r.upload.ms);
    let down_ms = med(&|r| r.download.ms);
    let re_ms = med(&|r| r.resync.ms);
    format!(
        "| {} | {} | {:.0} ms, {} rec/s, {} req, {} (cpu phone {:.0} / server {:.0} ms) | {:.0} ms, {} rec/s, {} req, {} (cpu phone {:.0} / server {:.0} ms) | {:.1} ms, {} req, {} | {:.0} MiB |",
        fmt_int(n as f64),
        runs.len(),
        up_ms,
        fmt_int(med(&|r| r.upload.rate(n))),
        med(&|r| r.upload.requests as f64),
        kib(med(&|r| r.upload.bytes() as f64) as u64),
        med(&|r| r.upload.phone_cpu_ms),
        med(&|r| r.upload.server_cpu_ms),
        down_ms,
        fmt_int(med(&|r| r.download.rate(n))),
        med(&|r| r.download.requests as f64),
        kib(med(&|r| r.download.bytes() as f64) as u64),
        med(&|r| r.download.phone_cpu_ms),
        med(&|r| r.download.server_cpu_ms),
        re_ms,
        med(&|r| r.resync.requests as f64),
        kib(med(&|r| r.resync.bytes() as f64) as u64),
        med(&|r| r.rss_kib as f64) / 1024.0,
    )
}

const TABLE_HEAD: &str = "| N | runs | upload (median) | download (median) | resync (median) | peak RSS |\n|---|---|---|---|---|---|";

fn main() -> Result<()> {
    // `RUST_LOG=fieldsync_server=debug` shows where each push's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = Args::parse();
    ensure!(!args.n.is_empty(), "give at least one --n");
    ensure!(args.n.iter().all(|&n| n > 0), "--n must be positive");
    ensure!(args.runs > 0, "--runs must be positive");
    let db = args.database_url.as_deref();

    if args.child || (args.n.len() == 1 && args.runs == 1) {
        let r = run(args.n[0], db)?;
        if args.child {
            println!("{}", r.line());
        } else {
            println!("\n{TABLE_HEAD}\n{}", table_row(&[r]));
        }
        return Ok(());
    }

    // Several runs: one child process each, so each peak RSS is its own.
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for &n in &args.n {
        let mut results = Vec::new();
        for k in 0..args.runs {
            println!("=== N = {n}, run {}/{}", k + 1, args.runs);
            let mut cmd = Command::new(&exe);
            cmd.arg("--child").arg("--n").arg(n.to_string());
            if let Some(u) = db {
                cmd.arg("--database-url").arg(u);
            }
            let out = cmd.stderr(Stdio::inherit()).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines().filter(|l| !l.starts_with("RESULT ")) {
                println!("{line}");
            }
            if !out.status.success() {
                bail!("run with N = {n} failed ({})", out.status);
            }
            let r = text
                .lines()
                .find_map(RunResult::from_line)
                .context("the child printed no RESULT line")?;
            results.push(r);
        }
        rows.push(table_row(&results));
    }
    println!("\n{TABLE_HEAD}");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
