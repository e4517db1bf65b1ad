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
