//! `fieldsync admin handover` through the real binary on a real data directory: a departing
//! rep's customers go to another rep and the account is disabled in one step, the handover is
//! recorded under the operator's id, a repeat moves nothing, the pool variant works, and
//! `--to` with `--pool` is refused.

use fieldsync_server::store::{self, PushItem, Store};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::{Caller, Customer, DeviceId, Record, TenantId, UserId};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

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

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = fieldsync(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

async fn open(dir: &Path) -> (Arc<dyn Store>, TenantId) {
    let s = store::open(&dir.join("fieldsync.db").to_string_lossy())
        .await
        .expect("open");
    let t = s
        .tenant_by_slug("acme")
        .await
        .expect("tenant")
        .expect("acme");
    (s, t.id)
}

async fn user(s: &dyn Store, t: TenantId, email: &str) -> store::User {
    s.user_by_email(t, email)
        .await
        .expect("user")
        .expect("exists")
}

/// Who owns each customer now, by name.
async fn owners(s: &dyn Store, t: TenantId) -> Vec<(String, String)> {
    let admin = user(s, t, "admin@acme.test").await;
    let caller = Caller {
        tenant: t,
        user: admin.id,
        role: admin.role,
    };
    let mut v: Vec<(String, String)> = s
        .list_customers(&caller)
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.name, c.owner_id))
        .collect();
    v.sort();
    v
}

#[test]
fn hand_over_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["admin", "create-tenant", "--name", "acme"]);
    for (email, role) in [
        ("admin@acme.test", "admin"),
        ("a@acme.test", "field_rep"),
        ("b@acme.test", "field_rep"),
    ] {
        ok(
            dir,
            &[
                "admin",
                "create-user",
                "--tenant",
                "acme",
                "--email",
                email,
                "--role",
                role,
            ],
        );
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (a, b) = rt.block_on(async {
        let (s, t) = open(dir).await;
        let a = user(s.as_ref(), t, "a@acme.test").await;
        let b = user(s.as_ref(), t, "b@acme.test").await;
        // Rep a's two customers, pushed as a phone would.
        let caller = Caller {
            tenant: t,
            user: a.id,
            role: a.role,
        };
        let items = ["Alpha", "Beta"]
            .into_iter()
            .map(|name| {
                let rec = Record::Customer(Customer::new(name, a.id));
                let doc = rec.to_new_doc(automerge::ActorId::random()).expect("doc");
                PushItem::Apply(Incoming {
                    doc_id: rec.id(),
                    kind: RecordKind::Customer,
                    changes: doc
                        .get_changes(&[])
                        .iter()
                        .map(|c| c.raw_bytes().to_vec())
                        .collect(),
                })
            })
            .collect();
        s.push(&caller, DeviceId::new(), uuid::Uuid::now_v7(), items)
            .await
            .expect("push");
        (a.id, b.id)
    });

    let out = ok(
        dir,
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "a@acme.test",
            "--to",
            "b@acme.test",
            "--disable",
        ],
    );
    assert!(out.contains("Moved 2 customers of a@acme.test"), "{out}");
    assert!(out.contains("a@acme.test is disabled"), "{out}");
    rt.block_on(async {
        let (s, t) = open(dir).await;
        assert_eq!(
            owners(s.as_ref(), t).await,
            vec![
                ("Alpha".into(), b.as_string()),
                ("Beta".into(), b.as_string())
            ]
        );
        assert!(user(s.as_ref(), t, "a@acme.test").await.disabled);
        let list = s.handovers(t, 10).await.expect("handovers");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].from_user_id, a.as_string());
        assert_eq!(list[0].to_user_id, Some(b.as_string()));
        assert_eq!(list[0].by_user_id, UserId(uuid::Uuid::max()).as_string());
        assert!(list[0].disabled);
    });

    // Again: nothing left, nothing recorded.
    let out = ok(
        dir,
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "a@acme.test",
            "--to",
            "b@acme.test",
        ],
    );
    assert!(out.contains("nothing was moved"), "{out}");

    // b's customers to the pool.
    let out = ok(
        dir,
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "b@acme.test",
            "--pool",
        ],
    );
    assert!(
        out.contains("Moved 2 customers of b@acme.test to the shared pool"),
        "{out}"
    );
    rt.block_on(async {
        let (s, t) = open(dir).await;
        assert_eq!(s.pool_customers(t).await.expect("pool").len(), 2);
        assert_eq!(s.handovers(t, 10).await.expect("handovers").len(), 2);
    });

    // Both targets, or neither: refused by the command line before anything runs.
    for args in [
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "b@acme.test",
            "--to",
            "a@acme.test",
            "--pool",
        ][..],
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "b@acme.test",
        ],
    ] {
        let out = fieldsync(dir, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // An unknown user is named.
    let out = fieldsync(
        dir,
        &[
            "admin",
            "handover",
            "--tenant",
            "acme",
            "--from",
            "nobody@acme.test",
            "--pool",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no user 'nobody@acme.test'"),
        "{}",
        text(&out.stderr)
    );
}
