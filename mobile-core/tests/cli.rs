//! The `fieldsync-device` binary without a server: usage errors and offline refusals are clear
//! and machine-readable. (Against a real server it is driven in the workspace's `tests/`.)

use std::process::Command;

fn device(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldsync-device"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn editing_before_login_is_refused_with_a_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = device(dir.path(), &["--json", "customer", "add", "--name", "Acme"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&err).expect("json error on stderr");
    assert_eq!(v["error"], "not_logged_in");
    let (code, _, err) = device(dir.path(), &["customer", "add", "--name", "Acme"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error:") && err.contains("(not_logged_in)"),
        "{err}"
    );
}

#[test]
fn status_works_offline_and_an_unreachable_server_is_a_network_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, _) = device(dir.path(), &["--json", "status"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["logged_in"], false);
    let (code, _, err) = device(
        dir.path(),
        &[
            "--json",
            "login",
            "--server",
            "http://127.0.0.1:1",
            "--tenant",
            "t",
            "--email",
            "a@b.test",
            "--password",
            "x",
        ],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&err).expect("json error on stderr");
    assert_eq!(v["error"], "network_error", "{v}");
}

/// Runs a command that must succeed with `--json` and returns its output.
fn ok(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = device(dir, &all);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Runs a command that must fail with `--json` and returns its error code.
fn refused(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = device(dir, &all);
    assert_eq!(code, 1, "{args:?} should fail: {out}");
    let v: serde_json::Value =
        serde_json::from_str(&err).unwrap_or_else(|e| panic!("{args:?}: {e}: {err}"));
    v["error"].as_str().unwrap_or_default().to_owned()
}

fn id(v: &serde_json::Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("no {pointer} in {v}"))
        .to_owned()
}

/// 2026-11-24 08:00 UTC.
const T0: i64 = 1_795_507_200_000;

#[test]
fn a_field_day_played_offline_from_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // A phone that logged in before (the session as a login leaves it), now offline.
    ok(d, &["status"]);
    {
        let store = fieldsync_mobile_core::store::Store::open(&d.join("fieldsync.db")).expect("db");
        fieldsync_mobile_core::store::session_put(
            &store.conn,
            &fieldsync_mobile_core::store::SessionRow {
                server_url: "http://127.0.0.1:1".into(),
                tenant_slug: "demo".into(),
                tenant_id: fieldsync_sync::TenantId::new().to_string(),
                user_id: fieldsync_sync::UserId::new().to_string(),
                role: "field_rep".into(),
                email: "rep@demo.example".into(),
                access_token: "a".into(),
                refresh_token: "r".into(),
                access_expires_at_ms: fieldsync_mobile_core::store::now_ms() + 3_600_000,
                clock_offset_ms: 0,
            },
        )
        .expect("session");
    }
    let t0 = T0.to_string();
    let c = ok(
        d,
        &[
            "clock",
            "set",
            "--wall-ms",
            &t0,
            "--monotonic-ms",
            "36000000",
            "--boot-id",
            "boot-a",
        ],
    );
    assert_eq!(c["manual"], true);
    assert_eq!(c["server_offset_ms"], serde_json::Value::Null);

    // Morning: a visit to Acme Ltd.
    let acme = id(
        &ok(
            d,
            &[
                "customer", "add", "--name", "Acme Ltd", "--lat", "30.65", "--lon", "104.06",
            ],
        ),
        "/customer/id",
    );
    let v1 = id(
        &ok(
            d,
            &[
                "visit",
                "plan",
                "--customer",
                &acme,
                "--date",
                "2026-11-24",
                "--purpose",
                "Demo",
            ],
        ),
        "/visit/id",
    );
    let e = ok(
        d,
        &[
            "visit",
            "check-in",
            &v1,
            "--lat",
            "30.6503",
            "--lon",
            "104.0601",
            "--accuracy",
            "8",
        ],
    );
    assert_eq!(e["verdict"]["level"], "verified", "{e}");
    assert_eq!(e["visit"]["state"], "open");
    assert_eq!(e["visit"]["visit"]["check_in"]["device_time_ms"], T0);
    assert_eq!(e["verdict"]["event_time_ms"], T0);
    let v2 = id(&ok(d, &["visit", "plan", "--customer", &acme]), "/visit/id");
    assert_eq!(
        refused(
            d,
            &[
                "visit", "check-in", &v2, "--lat", "30.65", "--lon", "104.06"
            ]
        ),
        "visit_already_open"
    );
    ok(d, &["clock", "advance", "--minutes", "45"]);
    let e = ok(
        d,
        &[
            "visit",
            "check-out",
            &v1,
            "--lat",
            "30.661",
            "--lon",
            "104.0602",
            "--outcome",
            "order",
            "--notes",
            "Signed",
            "--follow-up",
            "2026-12-01",
        ],
    );
    assert_eq!(e["verdict"]["level"], "rejected", "1.2 km away: {e}");
    assert!(
        e["verdict"]["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["code"] == "out_of_range")),
        "{e}"
    );
    assert_eq!(e["visit"]["state"], "closed");
    assert_eq!(e["verdict"]["event_time_ms"], T0 + 45 * 60_000);
    // The human output says why.
    let (code, human, _) = device(d, &["visit", "show", &v1]);
    assert_eq!(code, 0);
    assert!(
        human.contains("[closed]") && human.contains("order: Signed"),
        "{human}"
    );

    // Noon: clock in at the Yard.
    let p = id(
        &ok(d, &["project", "add", "--name", "Tower B"]),
        "/project/id",
    );
    let (code, _, err) = device(
        d,
        &[
            "project",
            "site-add",
            &p,
            "--name",
            "Yard",
            "--timezone",
            "Asia/Shanghai",
            "--lat",
            "30.5",
            "--lon",
            "104.0",
            "--radius",
            "200",
        ],
    );
    assert_eq!(code, 0, "{err}");
    ok(d, &["clock", "advance", "--minutes", "60"]);
    let e = ok(
        d,
        &[
            "punch",
            "--project",
            &p,
            "--site",
            "Yard",
            "--in",
            "--lat",
            "30.5004",
            "--lon",
            "104.0003",
        ],
    );
    assert_eq!(e["verdict"]["level"], "verified", "{e}");
    assert_eq!(e["punch"]["site_name"], "Yard");
    assert_eq!(e["punch"]["punch"]["direction"], "in");
    assert_eq!(
        refused(
            d,
            &[
                "punch",
                "--project",
                &p,
                "--site",
                "Moon",
                "--out",
                "--lat",
                "30.5",
                "--lon",
                "104.0"
            ]
        ),
        "unknown_site"
    );
    let (code, human, _) = device(
        d,
        &[
            "punch",
            "--project",
            &p,
            "--site",
            "Yard",
            "--out",
            "--lat",
            "30.5",
            "--lon",
            "104.0",
            "--accuracy",
            "150",
            "--fix-age-s",
            "600",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        human.contains(
            "suspicious: inside the area of site Yard; the location fix was only accurate to 150 m"
        ),
        "{human}"
    );
    let list = ok(
        d,
        &[
            "punch",
            "list",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-25",
        ],
    );
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(
        ok(d, &["punch", "list", "--to", "2026-11-24"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    // A missed punch from yesterday, 18:00 in Chengdu = 10:00 UTC.
    let m = ok(
        d,
        &[
            "makeup",
            "request",
            "--project",
            &p,
            "--site",
            "Yard",
            "--out",
            "--at",
            "2026-11-23 18:00",
            "--reason",
            "Battery died",
        ],
    );
    assert_eq!(m["makeup"]["at_ms"], T0 - 22 * 3_600_000);
    assert_eq!(m["state"], "requested");
    assert_eq!(
        refused(d, &["makeup", "approve", &id(&m, "/makeup/id")]),
        "forbidden"
    );
    assert_eq!(ok(d, &["makeup", "list"]).as_array().map(Vec::len), Some(1));

    // The second visit: checked into, never out. The night passes and the owner sets the
    // wall clock half an hour back: the monotonic clock moves on regardless. (Never synced, the
    // phone has no server offset, so its wall clock dates the events: 12.5 h after the
    // check-in, the visit has closed itself.)
    ok(
        d,
        &[
            "visit", "check-in", &v2, "--lat", "30.6502", "--lon", "104.0604",
        ],
    );
    ok(d, &["clock", "advance", "--minutes", "780"]);
    let wall = T0 + (45 + 60 + 780 - 30) * 60_000;
    let c = ok(d, &["clock", "set-wall", "--wall-ms", &wall.to_string()]);
    assert_eq!(c["wall_ms"], wall);
    assert_eq!(c["monotonic_ms"], 36_000_000 + (45 + 60 + 780) * 60_000);
    let visits = ok(d, &["visit", "list"]);
    assert_eq!(visits[0]["visit"]["id"], v2.as_str(), "newest first");
    assert_eq!(visits[0]["state"], "auto_closed");
    assert_eq!(visits[1]["state"], "closed");
    assert_eq!(
        refused(
            d,
            &[
                "visit",
                "check-out",
                &v2,
                "--lat",
                "30.65",
                "--lon",
                "104.06",
                "--outcome",
                "other"
            ]
        ),
        "visit_auto_closed"
    );

    // The month needs the server.
    assert_eq!(refused(d, &["attendance", "--month", "2026-11"]), "offline");
    assert_eq!(
        ok(d, &["status"])["pending_docs"],
        7,
        "customer, project, 2 visits, 2 punches, 1 make-up"
    );
    let c = ok(d, &["clock", "system"]);
    assert_eq!(c["manual"], false);
}

/// Logs the device in `d` in without a server, as a login leaves it, as `role`.
fn offline_login(d: &std::path::Path, role: &str) -> String {
    ok(d, &["status"]);
    let store = fieldsync_mobile_core::store::Store::open(&d.join("fieldsync.db")).expect("db");
    let user = fieldsync_sync::UserId::new().to_string();
    fieldsync_mobile_core::store::session_put(
        &store.conn,
        &fieldsync_mobile_core::store::SessionRow {
            server_url: "http://127.0.0.1:1".into(),
            tenant_slug: "demo".into(),
            tenant_id: fieldsync_sync::TenantId::new().to_string(),
            user_id: user.clone(),
            role: role.into(),
            email: format!("{role}@demo.example"),
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at_ms: fieldsync_mobile_core::store::now_ms() + 3_600_000,
            clock_offset_ms: 0,
        },
    )
    .expect("session");
    user
}

fn fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/photos")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn photos_are_taken_queued_and_reviewed_offline_from_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    offline_login(d, "field_rep");
    ok(
        d,
        &[
            "clock",
            "set",
            "--wall-ms",
            &T0.to_string(),
            "--monotonic-ms",
            "1000",
            "--boot-id",
            "b",
        ],
    );
    let p = id(
        &ok(d, &["project", "add", "--name", "Tower B"]),
        "/project/id",
    );
    let (code, _, err) = device(
        d,
        &[
            "project",
            "site-add",
            &p,
            "--name",
            "Yard",
            "--timezone",
            "Asia/Shanghai",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let jolla = fixture("mobile/jolla.jpg");
    let to = format!("site-day:{p}:Yard:2026-11-24");
    let v = ok(
        d,
        &[
            "photo",
            "add",
            &jolla,
            "--to",
            &to,
            "--caption",
            "Rebar",
            "--tag",
            "rebar",
            "--tag",
            "pour",
            "--lat",
            "30.5",
            "--lon",
            "104.0",
            "--accuracy",
            "6",
        ],
    );
    assert_eq!(v["photo"]["mime"], "image/jpeg");
    assert_eq!(v["photo"]["size"], 811_904);
    assert_eq!(
        v["photo"]["sha256"],
        "ee6bc1200cf8b1b26f5b60d8294d9617e8099f6dfdd7a4757a424f332360f5e3"
    );
    assert_eq!(v["photo"]["attached_to"]["kind"], "site_day");
    assert_eq!(v["photo"]["attached_to"]["day"], "2026-11-24");
    assert_eq!(v["photo"]["tags"], serde_json::json!(["pour", "rebar"]));
    assert_eq!(v["photo"]["captured_at_ms"], T0);
    assert_eq!(v["photo"]["evidence"]["accuracy_m"], 6.0);
    assert_eq!(v["status"], "pending");
    assert_eq!(v["upload_state"], "queued");
    let photo_id = id(&v, "/photo/id");
    // Without a fix, to the project; the same bytes are queued once.
    let v = ok(
        d,
        &["photo", "add", &jolla, "--to", &format!("project:{p}")],
    );
    assert_eq!(v["photo"]["evidence"], serde_json::Value::Null);

    let s = ok(d, &["photo", "status"]);
    assert_eq!(s["queued"], 1, "{s}");
    assert_eq!(s["bytes_pending"], 811_904);
    assert_eq!(s["items"][0]["state"], "queued");
    let copy = s["items"][0]["local_path"]
        .as_str()
        .expect("path")
        .to_owned();
    assert!(
        copy.starts_with(&d.to_string_lossy().into_owned()),
        "{copy}"
    );
    assert_eq!(std::fs::read(&copy).expect("copy").len(), 811_904);
    let (code, human, _) = device(d, &["photo", "status"]);
    assert_eq!(code, 0);
    assert!(
        human.contains("1 queued, 0 uploading, 0 done, 0 failed"),
        "{human}"
    );

    // Refused: HEIC, a bad target, a review by a field rep.
    let heic = d.join("IMG_0002.HEIC");
    let mut bytes = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    bytes.resize(1024, 0);
    std::fs::write(&heic, bytes).expect("heic");
    assert_eq!(
        refused(
            d,
            &[
                "photo",
                "add",
                &heic.to_string_lossy(),
                "--to",
                &format!("project:{p}")
            ]
        ),
        "unsupported_format"
    );
    assert_eq!(
        refused(d, &["photo", "add", &jolla, "--to", "invoice:1"]),
        "invalid_attachment_kind"
    );
    assert_eq!(
        refused(d, &["photo", "review", &photo_id, "--approve"]),
        "forbidden"
    );
    let c = ok(d, &["photo", "comment", &photo_id, "Before the pour"]);
    assert_eq!(c["photo"]["comments"][0]["text"], "Before the pour");
    assert_eq!(ok(d, &["photo", "list"]).as_array().map(Vec::len), Some(2));
    let (code, human, _) = device(d, &["photo", "show", &photo_id]);
    assert_eq!(code, 0);
    assert!(
        human.contains("[pending] [not synced]") && human.contains("caption   Rebar"),
        "{human}"
    );

    // Offline, an upload run stops at once and keeps the queue.
    let r = ok(d, &["photo", "upload"]);
    assert_eq!(r["stopped_code"], "network_error", "{r}");
    assert_eq!(r["remaining"], 1);
    let s = ok(d, &["photo", "status"]);
    assert_eq!(s["items"][0]["attempts"], 1);
    assert_eq!(s["items"][0]["last_error_code"], "network_error");

    // A site manager on this phone asks for a retake.
    offline_login(d, "site_manager");
    let r = ok(d, &["photo", "review", &photo_id, "--retake", "Too dark"]);
    assert_eq!(r["status"], "retake");
    assert_eq!(r["photo"]["reviews"][0]["reason"], "Too dark");
}
