//! Offline behaviour of the client: edits, validation, persistence, dirty tracking, purge.
//! Sync against the real server is tested end to end in `tests/` (the workspace's `tests` crate).

use crate::store::{self, SessionRow};
use crate::*;
use fieldsync_sync::UserId;

pub(crate) fn fake_login(client: &FieldsyncClient, server_url: &str) -> UserId {
    let user = UserId::new();
    let inner = client.lock();
    store::session_put(
        &inner.store.conn,
        &SessionRow {
            server_url: server_url.into(),
            tenant_slug: "demo".into(),
            tenant_id: fieldsync_sync::TenantId::new().to_string(),
            user_id: user.to_string(),
            role: "field_rep".into(),
            email: "rep@demo.example".into(),
            access_token: "access".into(),
            refresh_token: "refresh".into(),
            access_expires_at_ms: store::now_ms() + 15 * 60_000,
            clock_offset_ms: 0,
        },
    )
    .expect("session");
    user
}

pub(crate) fn open(dir: &tempfile::TempDir) -> FieldsyncClient {
    FieldsyncClient::open(dir.path().join("device").to_string_lossy().into_owned()).expect("open")
}

pub(crate) fn acme() -> NewCustomer {
    NewCustomer {
        name: "Acme Ltd".into(),
        phone: Some("+86 138 0000 0001".into()),
        lat: Some(30.65),
        lon: Some(104.06),
        tier: Some("gold".into()),
        tags: vec!["hvac".into(), " key ".into(), "hvac".into()],
        ..Default::default()
    }
}

fn set(field: &str, value: &str) -> FieldEdit {
    FieldEdit {
        field: field.into(),
        value: value.into(),
    }
}

#[test]
fn edits_need_a_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let err = client.create_customer(acme()).expect_err("must fail");
    assert_eq!(err.code(), "not_logged_in");
}

#[test]
fn created_customer_is_owned_by_me_listed_and_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let v = client.create_customer(acme()).expect("create");
    assert_eq!(v.customer.owner, me);
    assert_eq!(v.customer.created_by, me);
    assert_eq!(v.customer.tags, vec!["hvac".to_string(), "key".to_string()]);
    assert_eq!(v.customer.tier, Some(Tier::Gold));
    assert!(v.pending);
    assert_eq!(v.customer.id.0.get_version_num(), 7);
    let list = client.list_customers().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(client.status().expect("status").pending_docs, 1);
}

#[test]
fn customers_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, device) = {
        let client = open(&dir);
        fake_login(&client, "http://127.0.0.1:1");
        let v = client.create_customer(acme()).expect("create");
        client
            .edit_customer(
                v.customer.id.to_string(),
                vec![set("notes", "Call before noon")],
            )
            .expect("edit");
        (v.customer.id.to_string(), client.device_id())
    };
    let client = open(&dir);
    assert_eq!(client.device_id(), device, "device id is made once");
    let v = client.get_customer(id).expect("get");
    assert_eq!(v.customer.notes, "Call before noon");
    assert!(v.pending);
    assert!(client.status().expect("status").logged_in);
}

#[test]
fn latitude_91_is_refused_locally_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    let err = client
        .create_customer(NewCustomer {
            lat: Some(91.0),
            ..acme()
        })
        .expect_err("must fail");
    assert_eq!(err.code(), "invalid_latitude");
    assert!(matches!(err, ClientError::Invalid { .. }));
    assert!(client.list_customers().expect("list").is_empty());
    assert_eq!(client.status().expect("status").total_docs, 0);

    let v = client.create_customer(acme()).expect("create");
    let id = v.customer.id.to_string();
    let err = client
        .edit_customer(id.clone(), vec![set("lat", "91")])
        .expect_err("must fail");
    assert_eq!(err.code(), "invalid_latitude");
    let after = client.get_customer(id).expect("get");
    assert_eq!(
        after.customer.location, v.customer.location,
        "the refused edit left no trace"
    );
}

#[test]
fn bad_field_names_and_values_have_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    let id = client
        .create_customer(acme())
        .expect("create")
        .customer
        .id
        .to_string();
    let code = |edits: Vec<FieldEdit>| {
        client
            .edit_customer(id.clone(), edits)
            .err()
            .map(|e| e.code().to_owned())
    };
    assert_eq!(
        code(vec![set("colour", "red")]).as_deref(),
        Some("unknown_field")
    );
    assert_eq!(
        code(vec![set("tier", "platinum")]).as_deref(),
        Some("invalid_tier")
    );
    assert_eq!(
        code(vec![set("lat", "north")]).as_deref(),
        Some("invalid_number")
    );
    assert_eq!(
        code(vec![set("owner", "me")]).as_deref(),
        Some("invalid_id")
    );
    assert_eq!(
        code(vec![set("email", "nope")]).as_deref(),
        Some("invalid_email")
    );
    let missing = client
        .get_customer(fieldsync_sync::DocId::new().to_string())
        .expect_err("missing");
    assert_eq!(missing.code(), "not_found");
    assert_eq!(
        client
            .get_customer("garbage".into())
            .err()
            .map(|e| e.code().to_owned())
            .as_deref(),
        Some("invalid_id")
    );
}

#[test]
fn edits_change_fields_tags_and_contacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    let id = client
        .create_customer(acme())
        .expect("create")
        .customer
        .id
        .to_string();
    let v = client
        .edit_customer(
            id.clone(),
            vec![
                set("name", "Acme Group"),
                set("tags", "b, a"),
                set("lifecycle", "active"),
                set("phone", ""),
            ],
        )
        .expect("edit");
    assert_eq!(v.customer.name, "Acme Group");
    assert_eq!(v.customer.tags, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(v.customer.lifecycle, Lifecycle::Active);
    assert_eq!(v.customer.phone, None);
    let k = client
        .add_contact(
            id.clone(),
            NewContact {
                name: "Li Wei".into(),
                ..Default::default()
            },
        )
        .expect("contact");
    assert_eq!(
        client
            .get_customer(id.clone())
            .expect("get")
            .customer
            .contacts
            .len(),
        1
    );
    let v = client.remove_contact(id.clone(), k.id).expect("remove");
    assert!(v.customer.contacts.is_empty());
}

#[test]
fn projects_with_sites_members_and_milestones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let cust = client
        .create_customer(acme())
        .expect("create")
        .customer
        .id
        .to_string();
    let p = client
        .create_project(NewProject {
            name: "Tower B".into(),
            code: Some("PRJ-1".into()),
            customer_id: Some(cust),
            status: None,
        })
        .expect("project");
    let id = p.project.id.to_string();
    assert_eq!(p.project.created_by, me);
    client
        .add_site(
            id.clone(),
            NewSite {
                name: "Yard".into(),
                address: None,
                timezone: "Asia/Shanghai".into(),
                geofence: Some(NewSite::circle(30.5, 104.0, 250.0)),
            },
        )
        .expect("site");
    let bad = client
        .add_site(
            id.clone(),
            NewSite {
                name: "Moon".into(),
                address: None,
                timezone: "Mars/Base".into(),
                geofence: None,
            },
        )
        .expect_err("bad tz");
    assert_eq!(bad.code(), "invalid_timezone");
    let crew = UserId::new().to_string();
    client
        .add_member(id.clone(), crew.clone(), "crew".into())
        .expect("member");
    // The code comes from the sync crate's choice parser (currently `invalid_project role`,
    // with a space: reported upstream); the variant is what matters here.
    let bad_role = client
        .add_member(id.clone(), crew, "boss".into())
        .expect_err("bad role");
    assert!(
        matches!(bad_role, ClientError::Invalid { .. })
            && bad_role.code().starts_with("invalid_project")
    );
    client
        .add_milestone(id.clone(), "Handover".into(), Some("2027-02-28".into()))
        .expect("milestone");
    assert_eq!(
        client
            .add_milestone(id.clone(), "Bad".into(), Some("2027-02-30".into()))
            .err()
            .map(|e| e.code().to_owned())
            .as_deref(),
        Some("invalid_date")
    );
    let v = client
        .edit_project(id.clone(), vec![set("status", "active")])
        .expect("edit");
    assert_eq!(v.project.sites.len(), 1);
    assert_eq!(v.project.members.len(), 1);
    assert_eq!(v.project.milestones.len(), 1);
    assert_eq!(v.project.status, ProjectStatus::Active);
    assert_eq!(client.list_projects().expect("list").len(), 1);
    assert_eq!(
        client.list_customers().expect("list").len(),
        1,
        "kinds are listed separately"
    );
}

#[test]
fn purge_removes_everything_but_the_device_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    client.create_customer(acme()).expect("create");
    let device = client.device_id();
    client.purge().expect("purge");
    let s = client.status().expect("status");
    assert!(!s.logged_in);
    assert_eq!((s.total_docs, s.pending_docs), (0, 0));
    assert_eq!(s.device_id, device);
}

#[test]
fn sync_without_server_is_a_network_error_and_keeps_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    // A device that has synced before (a first sync pulls before it builds any batch).
    store::meta_set(&client.lock().store.conn, "cursor", "s1").expect("cursor");
    client.create_customer(acme()).expect("create");
    let err = client.sync().expect_err("no server");
    assert_eq!(err.code(), "network_error");
    let s = client.status().expect("status");
    assert_eq!(s.pending_docs, 1);
    assert_eq!(
        s.pending_batches, 1,
        "the batch is kept to be resent with the same id"
    );
}

/// A customer document made on "another device", and the same document with a later edit.
fn server_customer(name: &str, owner: UserId) -> (fieldsync_sync::DocId, automerge::Automerge) {
    let c = Customer::new(name, owner);
    let id = c.id;
    let doc = fieldsync_sync::Record::Customer(c)
        .to_new_doc(automerge::ActorId::random())
        .expect("doc");
    (id, doc)
}

fn snapshot(
    id: fieldsync_sync::DocId,
    bytes: Vec<u8>,
    heads: Vec<String>,
) -> fieldsync_sync::protocol::PullItem {
    fieldsync_sync::protocol::PullItem::Snapshot {
        doc_id: id,
        kind: fieldsync_sync::RecordKind::Customer,
        doc: fieldsync_sync::protocol::B64(bytes),
        heads,
    }
}

#[test]
fn snapshots_without_a_local_copy_are_stored_as_sent_and_read_back() {
    use fieldsync_sync::protocol::{PullItem, heads_to_strings};
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let device = fieldsync_sync::DeviceId::new();

    // Change chunks only (a new document), with heads.
    let (a, doc_a) = server_customer("Zeta", me);
    let chunks: Vec<u8> = doc_a
        .get_changes(&[])
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    // A compacted document followed by a change chunk, without heads (an older server).
    let (b, mut doc_b) = server_customer("Alpha", me);
    let saved = doc_b.save();
    let before = doc_b.get_heads();
    {
        let mut c = match fieldsync_sync::Record::read(&doc_b).expect("read").0 {
            fieldsync_sync::Record::Customer(c) => c,
            _ => unreachable!(),
        };
        c.notes = "late edit".into();
        let mut tx = doc_b.transaction();
        fieldsync_sync::Record::Customer(c)
            .write(&mut tx)
            .expect("write");
        tx.commit();
    }
    let mut mixed = saved;
    for ch in doc_b.get_changes(&before) {
        mixed.extend_from_slice(ch.raw_bytes());
    }
    // Changes of a document this device lacks, missing their first change: not stored.
    let (c, mut doc_c) = server_customer("Gamma", me);
    let first = doc_c.get_heads();
    {
        use automerge::transaction::Transactable;
        let mut tx = doc_c.transaction();
        tx.put(automerge::ROOT, "x", 1).expect("put");
        tx.commit();
    }
    let tail = PullItem::Changes {
        doc_id: c,
        kind: fieldsync_sync::RecordKind::Customer,
        changes: doc_c
            .get_changes(&first)
            .iter()
            .map(|ch| fieldsync_sync::protocol::B64(ch.raw_bytes().to_vec()))
            .collect(),
    };
    let garbage = PullItem::Changes {
        doc_id: fieldsync_sync::DocId::new(),
        kind: fieldsync_sync::RecordKind::Customer,
        changes: vec![fieldsync_sync::protocol::B64(vec![1, 2, 3])],
    };
    {
        let inner = client.lock();
        let conn = &inner.store.conn;
        let items = [
            snapshot(a, chunks, heads_to_strings(&doc_a.get_heads())),
            snapshot(b, mixed, vec![]),
            tail,
            garbage,
        ];
        for item in items {
            crate::sync::apply_pull_item(conn, device, item).expect("apply");
        }
        let row = store::doc_get(conn, &b.to_string())
            .expect("get")
            .expect("b");
        assert_eq!(row.heads, Some(heads_to_strings(&doc_b.get_heads())));
        assert_eq!(row.server_heads, heads_to_strings(&doc_b.get_heads()));
        assert!(!row.dirty);
        assert!(store::doc_get(conn, &c.to_string()).expect("get").is_none());
    }
    let names: Vec<String> = client
        .list_customers()
        .expect("list")
        .into_iter()
        .map(|v| v.customer.name)
        .collect();
    assert_eq!(names, vec!["Alpha".to_string(), "Zeta".to_string()]);
    let got = client.get_customer(b.to_string()).expect("get");
    assert_eq!(got.customer.notes, "late edit");
    assert!(!got.pending);
    assert_eq!(client.status().expect("status").pending_docs, 0);

    // An edit of a document stored as it came works and makes it dirty.
    let v = client
        .edit_customer(a.to_string(), vec![set("notes", "mine")])
        .expect("edit");
    assert!(v.pending);
    // The same snapshot again leaves the local edit in place.
    {
        let inner = client.lock();
        let snap = snapshot(a, doc_a.save(), heads_to_strings(&doc_a.get_heads()));
        crate::sync::apply_pull_item(&inner.store.conn, device, snap).expect("apply");
    }
    let v = client.get_customer(a.to_string()).expect("get");
    assert_eq!(v.customer.notes, "mine");
    assert!(v.pending);
}

#[test]
fn a_version_1_database_is_upgraded_and_its_documents_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let (id, doc) = server_customer("Old", me);
    drop(client);
    let path = dir.path().join("device").join("fieldsync.db");
    {
        // Rebuild the file as version 1 held it.
        let c = rusqlite::Connection::open(&path).expect("open");
        c.execute_batch(
            "DROP TABLE docs;
             DROP TABLE pending_changes;
             CREATE TABLE docs (doc_id TEXT PRIMARY KEY, kind TEXT NOT NULL, bytes BLOB NOT NULL,
                 server_heads TEXT NOT NULL DEFAULT '[]', dirty INTEGER NOT NULL DEFAULT 0,
                 name TEXT NOT NULL DEFAULT '', summary TEXT NOT NULL DEFAULT '',
                 updated_at_ms INTEGER NOT NULL);
             PRAGMA user_version = 1;",
        )
        .expect("v1");
        c.execute(
            "INSERT INTO docs (doc_id, kind, bytes, dirty, name, updated_at_ms) VALUES (?1, 'customer', ?2, 1, 'Old', 0)",
            rusqlite::params![id.to_string(), doc.save()],
        )
        .expect("row");
    }
    let client = open(&dir);
    let v = client.get_customer(id.to_string()).expect("get");
    assert_eq!(v.customer.name, "Old");
    assert!(v.pending);
    let row = store::doc_get(&client.lock().store.conn, &id.to_string())
        .expect("get")
        .expect("row");
    assert_eq!(row.heads, None, "learnt on the next push");
}

/// The kept changes of a document and whether a push would send them as they are.
fn pending_of(client: &FieldsyncClient, id: &str) -> (Vec<Vec<u8>>, Option<Vec<Vec<u8>>>) {
    let inner = client.lock();
    let conn = &inner.store.conn;
    let pending = store::pending_for(conn, id).expect("pending");
    let bytes = pending.iter().map(|p| p.bytes.clone()).collect();
    let state = store::doc_state(conn, id).expect("state").expect("doc");
    let fast = crate::sync::pending_push(
        pending,
        &state.server_heads,
        state.heads.as_deref().expect("heads known"),
    );
    (bytes, fast)
}

#[test]
fn local_changes_are_kept_as_made_and_rebuild_the_document() {
    use fieldsync_sync::protocol::heads_to_strings;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    fake_login(&client, "http://127.0.0.1:1");
    let id = client
        .create_customer(acme())
        .expect("create")
        .customer
        .id
        .to_string();
    client
        .edit_customer(id.clone(), vec![set("phone", "+86 138 0000 0002")])
        .expect("edit 1");
    client
        .edit_customer(id.clone(), vec![set("notes", "gate code 1234")])
        .expect("edit 2");
    // An edit that changes nothing keeps nothing.
    client
        .edit_customer(id.clone(), vec![set("notes", "gate code 1234")])
        .expect("edit 3");

    let (kept, fast) = pending_of(&client, &id);
    assert_eq!(kept.len(), 3, "create + two edits");
    assert_eq!(fast.as_ref(), Some(&kept), "sent as they are, in order");
    let mut rebuilt = automerge::Automerge::new();
    for bytes in &kept {
        let change = automerge::Change::from_bytes(bytes.clone()).expect("a change");
        rebuilt.apply_changes([change]).expect("applies in order");
    }
    let mut incremental = automerge::Automerge::new();
    incremental
        .load_incremental(&kept.concat())
        .expect("load_incremental");
    let row = store::doc_get(&client.lock().store.conn, &id)
        .expect("get")
        .expect("row");
    let stored = automerge::Automerge::load(&row.bytes).expect("load");
    assert_eq!(rebuilt.get_heads(), stored.get_heads());
    assert_eq!(incremental.get_heads(), stored.get_heads());
    assert_eq!(row.heads, Some(heads_to_strings(&stored.get_heads())));
    assert!(row.server_heads.is_empty());

    // New server heads (an answer, a pull) drop them; an edit after that starts again from
    // those heads.
    {
        let inner = client.lock();
        let heads = row.heads.clone().expect("heads");
        store::doc_set_sync_state(&inner.store.conn, &id, &heads, false).expect("state");
        assert!(
            store::pending_for(&inner.store.conn, &id)
                .expect("pending")
                .is_empty()
        );
    }
    client
        .edit_customer(id.clone(), vec![set("notes", "after sync")])
        .expect("edit 4");
    let (kept, fast) = pending_of(&client, &id);
    assert_eq!(kept.len(), 1);
    assert_eq!(fast, Some(kept.clone()));
    let change = automerge::Change::from_bytes(kept[0].clone()).expect("a change");
    assert_eq!(
        heads_to_strings(change.deps()),
        row.heads.clone().expect("heads"),
        "built on what the server has"
    );

    // Kept changes that do not reach back to the server heads are not used.
    {
        let inner = client.lock();
        let conn = &inner.store.conn;
        let state = store::doc_state(conn, &id).expect("state").expect("doc");
        let pending = store::pending_for(conn, &id).expect("pending");
        assert!(
            crate::sync::pending_push(pending.clone(), &[], state.heads.as_deref().expect("h"))
                .is_none()
        );
        // ...nor ones that do not reach the document's heads.
        let other = vec!["00".repeat(32)];
        assert!(crate::sync::pending_push(pending, &state.server_heads, &other).is_none());
    }

    // Gone with the document.
    store::purge(&client.lock().store.conn).expect("purge");
    let n: i64 = client
        .lock()
        .store
        .conn
        .query_row("SELECT COUNT(*) FROM pending_changes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
}

#[test]
fn a_version_2_database_is_upgraded_and_its_dirty_documents_take_the_decoding_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let id = client
        .create_customer(acme())
        .expect("create")
        .customer
        .id
        .to_string();
    let (old, old_doc) = server_customer("Old", me);
    drop(client);
    let path = dir.path().join("device").join("fieldsync.db");
    {
        // As version 2 left the file: no kept changes.
        let c = rusqlite::Connection::open(&path).expect("open");
        c.execute_batch("DROP TABLE pending_changes; PRAGMA user_version = 2;")
            .expect("v2");
        c.execute(
            "INSERT INTO docs (doc_id, kind, bytes, server_heads, heads, dirty, name, summary, updated_at_ms)
             VALUES (?1, 'customer', ?2, '[]', NULL, 1, 'Old', '', 0)",
            rusqlite::params![old.to_string(), old_doc.save()],
        )
        .expect("row");
    }
    let client = open(&dir);
    {
        let inner = client.lock();
        let conn = &inner.store.conn;
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, store::VERSION);
        assert!(store::pending_for(conn, &id).expect("pending").is_empty());
    }
    let v = client.get_customer(id.clone()).expect("get");
    assert_eq!(v.customer.name, "Acme Ltd");
    assert!(v.pending);
    assert_eq!(
        client
            .get_customer(old.to_string())
            .expect("get")
            .customer
            .name,
        "Old"
    );

    // An edit keeps its change, but the create from before the upgrade is not kept, so the
    // push must decode the document.
    client
        .edit_customer(id.clone(), vec![set("notes", "after the upgrade")])
        .expect("edit");
    let (kept, fast) = pending_of(&client, &id);
    assert_eq!(kept.len(), 1);
    assert!(fast.is_none());
}
