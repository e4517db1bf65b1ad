//! A field day played from the terminal: the real `fieldsync-device` binary against the real
//! server, with `--json` output read back as a script would.

use fieldsync_sync::Role;
use fieldsync_tests::{Harness, PASSWORD};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `fieldsync-device` binary next to this test's target directory, built if missing.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("fieldsync-device");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args([
                "build",
                "-p",
                "fieldsync-mobile-core",
                "--bin",
                "fieldsync-device",
            ])
            .status()
            .expect("cargo build")
            .success();
        assert!(ok && bin.exists(), "could not build {}", bin.display());
    }
    bin
}

fn run(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(binary())
        .arg("--dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .expect("run device");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn a_field_day_from_the_terminal() {
    let h = Harness::start();
    let t = h.tenant("acme");
    h.user(t, "rep@acme.test", Role::FieldRep, None);
    let phone = tempfile::tempdir().expect("tempdir");
    let login = [
        "login",
        "--server",
        &h.url,
        "--tenant",
        "acme",
        "--email",
        "rep@acme.test",
        "--password",
        PASSWORD,
    ];
    run(phone.path(), &login);
    let added = run(
        phone.path(),
        &[
            "customer",
            "add",
            "--name",
            "Chengdu Tea House",
            "--lat",
            "30.65",
            "--lon",
            "104.06",
        ],
    );
    let id = added["customer"]["id"].as_str().expect("id").to_owned();
    run(
        phone.path(),
        &[
            "customer",
            "edit",
            &id,
            "--set",
            "phone=+86 28 1234 5678",
            "--set",
            "tags=tea,vip",
        ],
    );
    assert_eq!(run(phone.path(), &["status"])["pending_docs"], 1);
    let report = run(phone.path(), &["sync"]);
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(run(phone.path(), &["status"])["pending_docs"], 0);

    let other = tempfile::tempdir().expect("tempdir");
    run(other.path(), &login);
    run(other.path(), &["sync"]);
    let shown = run(other.path(), &["customer", "show", &id]);
    assert_eq!(shown["customer"]["phone"], "+86 28 1234 5678", "{shown}");
    assert_eq!(shown["customer"]["tags"], serde_json::json!(["tea", "vip"]));
    let list = run(other.path(), &["customer", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // A bad value is refused before anything is stored.
    let out = Command::new(binary())
        .arg("--dir")
        .arg(phone.path())
        .args(["--json", "customer", "edit", &id, "--set", "lat=91"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("json error");
    assert_eq!(err["error"], "invalid_latitude", "{err}");
    assert_eq!(run(phone.path(), &["status"])["pending_docs"], 0);
}
