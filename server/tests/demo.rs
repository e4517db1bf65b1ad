//! `fieldsync serve --demo`: the demo tenant is seeded through the real push path, with a user
//! of every role, and seeding again changes nothing.

use fieldsync_server::{app, demo, store};
use fieldsync_sync::{Caller, Role};

#[tokio::test]
async fn the_demo_tenant_has_every_role_and_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store::open(&dir.path().join("fieldsync.db").to_string_lossy())
        .await
        .expect("open");
    assert!(demo::seed(s.as_ref()).await.expect("seed"));
    assert!(
        !demo::seed(s.as_ref()).await.expect("seed again"),
        "a second seed does nothing"
    );
    let t = app::tenant(s.as_ref(), demo::DEMO_TENANT)
        .await
        .expect("tenant");
    let users = s.list_users(t.id).await.expect("users");
    for role in Role::ALL {
        assert!(
            users.iter().any(|u| u.role == role),
            "no {role} in the demo"
        );
    }
    let admin = users.iter().find(|u| u.role == Role::Admin).expect("admin");
    let caller = Caller {
        tenant: t.id,
        user: admin.id,
        role: Role::Admin,
    };
    assert_eq!(s.list_customers(&caller).await.expect("customers").len(), 3);
    assert_eq!(s.list_projects(&caller).await.expect("projects").len(), 2);
    assert_eq!(s.count_documents(t.id).await.expect("count"), 6);
    let days = s
        .list_diaries(&caller, &store::DiaryFilter::default())
        .await
        .expect("diaries");
    assert_eq!(days.len(), 1, "today's diary in Chengdu");
    assert_eq!(days[0].site_id, "hq");
    assert!(days[0].record.work.contains("Ceiling grid"));
}

/// `fieldsync report attendance` on the demo data directory: the real binary writes a CSV to
/// standard output and an XLSX to a file, and refuses a bad period with a clear message.
#[tokio::test]
async fn the_report_command_writes_csv_and_xlsx_for_the_demo_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = store::open(&dir.path().join("fieldsync.db").to_string_lossy())
            .await
            .expect("open");
        demo::seed(s.as_ref()).await.expect("seed");
        let t = app::tenant(s.as_ref(), demo::DEMO_TENANT)
            .await
            .expect("tenant");
        assert_eq!(
            s.assignments(t.id, None).await.expect("assignments").len(),
            3
        );
    }
    let bin = env!("CARGO_BIN_EXE_fieldsync");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(["report", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run fieldsync")
    };
    let out = run(&["attendance", "--from", "2026-11-02", "--to", "2026-11-06"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("employee_id,email,project,site,timezone,shift,days_due"));
    // The three assigned demo users, each due five days and absent on all (no punches yet).
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines.iter().any(|l| l.contains("rep2@demo.test")
            && l.contains("Europe/Berlin")
            && l.contains(",5,0,0,0,0,0,5,")),
        "{csv}"
    );
    let xlsx = dir.path().join("month.xlsx");
    let out = run(&[
        "attendance",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "xlsx",
        "--output",
    ]);
    assert!(!out.status.success(), "--output needs a path");
    let out = std::process::Command::new(bin)
        .args(["report", "--data-dir"])
        .arg(dir.path())
        .args([
            "attendance",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "xlsx",
            "--output",
        ])
        .arg(&xlsx)
        .output()
        .expect("run fieldsync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&xlsx).expect("xlsx written");
    assert_eq!(&bytes[..2], b"PK");
    let out = run(&["attendance", "--from", "2026-11-30", "--to", "2026-11-01"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("The period ends before it starts."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
