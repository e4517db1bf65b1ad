//! `fieldsync import customers` through the real binary on a real data directory: progress on
//! stderr, the summary on stdout, the error report as CSV, exit code 2 when a row failed, and
//! re-running the file adding nothing.

use fieldsync_server::store;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_fieldsync");

fn fieldsync(dir: &Path, args: &[&str]) -> Output {
    let (group, rest) = args.split_at(1);
    Command::new(BIN)
        .args(group)
        .arg("--data-dir")
        .arg(dir)
        .args(rest)
        .env("RUST_LOG", "warn")
        .env("FIELDSYNC_NEW_PASSWORD", "password123")
        .output()
        .expect("run fieldsync")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn customers(dir: &Path) -> (i64, Vec<(String, String)>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = store::open(&dir.join("fieldsync.db").to_string_lossy())
            .await
            .expect("open");
        let t = s
            .tenant_by_slug("acme")
            .await
            .expect("tenant")
            .expect("acme");
        let admin = s
            .user_by_email(t.id, "admin@acme.test")
            .await
            .expect("user")
            .expect("admin");
        let caller = fieldsync_sync::Caller {
            tenant: t.id,
            user: admin.id,
            role: admin.role,
        };
        let list = s.list_customers(&caller).await.expect("list");
        (
            s.count_documents(t.id).await.expect("count"),
            list.into_iter().map(|c| (c.name, c.owner_id)).collect(),
        )
    })
}

#[test]
fn import_customers_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for args in [
        &["admin", "create-tenant", "--name", "acme"][..],
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "admin@acme.test",
            "--role",
            "admin",
        ],
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "rep@acme.test",
            "--role",
            "field_rep",
        ],
    ] {
        let out = fieldsync(dir, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }

    // 1,200 good rows and one bad one (row 3).
    let mut csv = String::from(
        "External ID,Company,Phone\nK0,Customer 0,+49 30 0000\nK-bad,Bad Phone,call me\n",
    );
    for i in 1..1200 {
        csv.push_str(&format!("K{i},Customer {i},+49 30 {i:04}\n"));
    }
    let file = dir.join("customers.csv");
    std::fs::write(&file, &csv).expect("write csv");
    let errors = dir.join("errors.csv");
    let file_arg = file.to_string_lossy().into_owned();
    let errors_arg = errors.to_string_lossy().into_owned();
    let args = [
        "import",
        "customers",
        &file_arg,
        "--tenant",
        "acme",
        "--report",
        &errors_arg,
    ];

    let out = fieldsync(dir, &args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "a failed row exits 2: {stdout}{stderr}"
    );
    assert!(stdout.contains("1200 customers created"), "{stdout}");
    assert!(stdout.contains("1 rows have errors"), "{stdout}");
    assert!(
        stderr.contains("1201 / 1201 rows (100%)"),
        "progress: {stderr}"
    );
    assert!(
        stderr.contains("row 3, column 'Phone'") && stderr.contains("(invalid_phone)"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(&errors).expect("error report");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "row,column,code,message");
    assert!(lines[1].starts_with("3,Phone,invalid_phone,"), "{report}");
    assert_eq!(lines.len(), 2, "{report}");
    let (docs, list) = customers(dir);
    assert_eq!(docs, 1200);
    assert!(list.iter().all(|(name, _)| name != "Bad Phone"));

    // The same file again: nothing new. A dry run says so too and stores nothing.
    let out = fieldsync(dir, &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("0 customers created, 0 updated, 1200 unchanged"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(customers(dir).0, 1200);

    // A good file with an explicit mapping and a default owner: exit 0.
    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        "Kunde;Telefon\nSpree Bau;+49 30 1111\nHavel Holz;+49 30 2222\n",
    )
    .expect("write");
    let good_arg = good.to_string_lossy().into_owned();
    let base = [
        "import",
        "customers",
        &good_arg,
        "--tenant",
        "acme",
        "--map",
        "name=Kunde",
        "--map",
        "phone=Telefon",
        "--owner",
        "rep@acme.test",
    ];
    let out = fieldsync(dir, &[&base[..], &["--dry-run"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Dry run, nothing was stored"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(customers(dir).0, 1200, "a dry run stored customers");
    let out = fieldsync(dir, &base);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (docs, list) = customers(dir);
    assert_eq!(docs, 1202);
    let (_, rep_id) = list
        .iter()
        .find(|(n, _)| n == "Spree Bau")
        .expect("imported");
    let rep_line = text(&fieldsync(dir, &["admin", "list-users", "--tenant", "acme"]).stdout);
    assert!(
        rep_line
            .lines()
            .any(|l| l.starts_with(rep_id.as_str()) && l.contains("rep@acme.test")),
        "{rep_line}"
    );

    // Refusals of the whole file exit 1 with the reason.
    let out = fieldsync(dir, &["import", "customers", &good_arg, "--tenant", "acme"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no_name_column"),
        "{}",
        text(&out.stderr)
    );
    let out = fieldsync(dir, &["import", "customers", &good_arg, "--tenant", "nope"]);
    assert_eq!(out.status.code(), Some(1));
}
