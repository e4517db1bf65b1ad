//! Nothing acknowledged is lost: the real `fieldsync` binary is killed with SIGKILL right after
//! it answered a push, restarted on the same data directory, and still has every record.

use automerge::ActorId;
use base64::Engine;
use fieldsync_sync::{Customer, Record, UserId};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_fieldsync");

fn admin(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run admin");
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server on port 0 and returns it with its URL.
fn serve(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server said nothing")
            .expect("read line");
        if let Some(rest) = line.strip_prefix("fieldsync listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    (child, url)
}

fn post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req
        .send(serde_json::to_vec(body).expect("json").as_slice())
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("body");
    (status, serde_json::from_str(&text).expect("json answer"))
}

fn login(agent: &ureq::Agent, url: &str) -> (String, UserId) {
    let (status, body) = post(
        agent,
        &format!("{url}/v1/auth/login"),
        None,
        &json!({"tenant": "acme", "email": "rep@acme.test", "password": "password123"}),
    );
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().expect("token").to_owned(),
        body["user_id"]
            .as_str()
            .expect("user")
            .parse()
            .expect("uuid"),
    )
}

#[test]
fn sigkill_after_an_acknowledged_push_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    admin(dir.path(), &["create-tenant", "--name", "acme"]);
    admin(
        dir.path(),
        &[
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "rep@acme.test",
            "--password",
            "password123",
            "--role",
            "field_rep",
        ],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();

    let (mut server, url) = serve(dir.path());
    let (token, rep) = login(&agent, &url);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut docs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..200 {
        let c = Customer::new(format!("Customer {i}"), rep);
        ids.push(c.id.as_string());
        let doc = Record::Customer(c.clone())
            .to_new_doc(ActorId::random())
            .expect("doc");
        let changes: Vec<String> = doc
            .get_changes(&[])
            .iter()
            .map(|ch| b64.encode(ch.raw_bytes()))
            .collect();
        docs.push(json!({"doc_id": c.id, "kind": "customer", "changes": changes}));
    }
    let (status, body) = post(
        &agent,
        &format!("{url}/v1/sync/push"),
        Some(&token),
        &json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": docs}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == json!("accepted"))
    );
    // The answer is in hand: kill the server without any chance to flush.
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");

    let (mut server, url) = serve(dir.path());
    let (token, _) = login(&agent, &url);
    let mut cursor = Value::Null;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let (status, page) = post(
            &agent,
            &format!("{url}/v1/sync/pull"),
            Some(&token),
            &json!({"v": 1, "cursor": cursor}),
        );
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.insert(item["doc_id"].as_str().expect("id").to_owned());
        }
        cursor = page["cursor"].clone();
        if page["more"] != json!(true) {
            break;
        }
    }
    server.kill().expect("kill");
    let _ = server.wait();
    let expected: std::collections::BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(
        seen, expected,
        "every acknowledged record survived the crash"
    );
}
