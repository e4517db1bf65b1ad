//! One conformance suite for the [`Store`] trait, run against SQLite (a temp file) and against
//! a real PostgreSQL (a fresh database per test on the server named by `FIELDSYNC_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). Without a reachable PostgreSQL the
//! PostgreSQL cases say so and skip, unless `FIELDSYNC_REQUIRE_PG=1` (CI), where they fail.

use automerge::{ActorId, Automerge};
use fieldsync_server::store::{self, PushItem, RefreshUse, SessionState, Store, StoreError};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::{Cursor, PullItem, PushResult};
use fieldsync_sync::{
    Caller, Customer, DeviceId, GeoPoint, Project, Record, Role, TenantId, UserId,
};
use std::sync::Arc;

type S = Arc<dyn Store>;

struct Backend {
    store: S,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL server's admin pool and this test's database, dropped when the case ends.
    pg: Option<(sqlx::PgPool, String)>,
}

impl Backend {
    async fn finish(self) {
        if let Some((admin, name)) = self.pg {
            drop(self.store);
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
    }
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store::open(&dir.path().join("fieldsync.db").to_string_lossy())
        .await
        .expect("open sqlite");
    Backend {
        store,
        _dir: Some(dir),
        pg: None,
    }
}

async fn postgres() -> Option<Backend> {
    let url = std::env::var("FIELDSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let required = std::env::var("FIELDSYNC_REQUIRE_PG").is_ok_and(|v| v == "1");
    let admin = match sqlx::PgPool::connect(&url).await {
        Ok(p) => p,
        Err(e) if !required => {
            eprintln!(
                "SKIPPED: PostgreSQL store suite: no PostgreSQL at {url} ({e}). Set FIELDSYNC_TEST_PG_URL to run it."
            );
            return None;
        }
        Err(e) => panic!("FIELDSYNC_REQUIRE_PG=1 but PostgreSQL at {url} is unreachable: {e}"),
    };
    let name = format!("fieldsync_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(url.clone());
    let store = store::open(&format!("{base}/{name}"))
        .await
        .expect("open postgres");
    Some(Backend {
        store,
        _dir: None,
        pg: Some((admin, name)),
    })
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let b = super::sqlite().await;
                super::$case(b.store.clone()).await;
                b.finish().await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(b) = super::postgres().await else { return };
                super::$case(b.store.clone()).await;
                b.finish().await;
            })*
        }
    };
}

conformance!(
    tenants_and_users,
    refresh_tokens_rotate_and_reuse_revokes,
    push_then_pull_respects_readers,
    retried_batch_returns_same_answer_and_stores_once,
    up_to_date_pull_is_empty,
    reassignment_revokes_and_grants,
    pull_pages_by_size_without_loss,
    projections_follow_the_documents,
    project_needs_existing_customer,
    tenants_are_isolated,
    a_device_is_not_sent_its_own_changes,
    concurrent_pushes_to_one_document_lose_nothing,
    a_reader_pulling_during_pushes_misses_nothing,
);

struct Org {
    tenant: TenantId,
    admin: Caller,
    manager: Caller,
    rep1: Caller,
    rep2: Caller,
}

async fn org(s: &S, slug: &str) -> Org {
    let t = s.create_tenant(slug, slug).await.expect("tenant");
    let mk = async |email: &str, role: Role, manager: Option<UserId>| {
        let u = s
            .create_user(t.id, email, "x", role, manager)
            .await
            .expect("user");
        Caller {
            tenant: t.id,
            user: u.id,
            role,
        }
    };
    let admin = mk("admin@x.test", Role::Admin, None).await;
    let manager = mk("manager@x.test", Role::Manager, None).await;
    let rep1 = mk("rep1@x.test", Role::FieldRep, Some(manager.user)).await;
    let rep2 = mk("rep2@x.test", Role::FieldRep, None).await;
    Org {
        tenant: t.id,
        admin,
        manager,
        rep1,
        rep2,
    }
}

fn changes_since(doc: &Automerge, since: &[automerge::ChangeHash]) -> Vec<Vec<u8>> {
    doc.get_changes(since)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn item(r: &Record, doc: &Automerge, since: &[automerge::ChangeHash]) -> PushItem {
    PushItem::Apply(Incoming {
        doc_id: r.id(),
        kind: r.kind(),
        changes: changes_since(doc, since),
    })
}

async fn push_new(
    s: &S,
    caller: &Caller,
    records: &[Record],
) -> Vec<(Record, Automerge, PushResult)> {
    let docs: Vec<Automerge> = records
        .iter()
        .map(|r| r.to_new_doc(ActorId::random()).expect("doc"))
        .collect();
    let items = records
        .iter()
        .zip(&docs)
        .map(|(r, d)| item(r, d, &[]))
        .collect();
    let out = s
        .push(caller, DeviceId::new(), uuid::Uuid::now_v7(), items)
        .await
        .expect("push");
    records
        .iter()
        .cloned()
        .zip(docs)
        .zip(out.response.results)
        .map(|((r, d), res)| (r, d, res))
        .collect()
}

async fn pull_all(
    s: &S,
    caller: &Caller,
    mut cursor: Cursor,
    max: u64,
) -> (Vec<PullItem>, Cursor, usize) {
    let mut items = Vec::new();
    let mut requests = 0;
    loop {
        let page = s
            .pull(caller, None, cursor.clone(), max)
            .await
            .expect("pull");
        requests += 1;
        items.extend(page.items);
        cursor = Cursor::parse(Some(&page.cursor)).expect("cursor");
        if !page.more {
            return (items, cursor, requests);
        }
    }
}

fn doc_ids(items: &[PullItem]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| match i {
            PullItem::Changes { doc_id, .. }
            | PullItem::Snapshot { doc_id, .. }
            | PullItem::Revoke { doc_id, .. } => doc_id.as_string(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

async fn tenants_and_users(s: S) {
    let o = org(&s, "acme").await;
    assert!(matches!(
        s.create_tenant("acme", "again").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_user(o.tenant, "rep1@x.test", "x", Role::FieldRep, None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let u = s
        .user_by_email(o.tenant, "rep1@x.test")
        .await
        .expect("q")
        .expect("user");
    assert_eq!((u.role, u.manager), (Role::FieldRep, Some(o.manager.user)));
    let dev = DeviceId::new();
    s.register_device(o.tenant, dev, u.id, "pixel")
        .await
        .expect("device");
    assert_eq!(
        s.session_state(o.tenant, u.id, dev).await.expect("q"),
        SessionState::Active {
            role: Role::FieldRep
        }
    );
    // Another user's device is not this user's session.
    assert_eq!(
        s.session_state(o.tenant, o.rep2.user, dev)
            .await
            .expect("q"),
        SessionState::DeviceRevoked
    );
    s.set_user_disabled(o.tenant, u.id, true)
        .await
        .expect("disable");
    assert_eq!(
        s.session_state(o.tenant, u.id, dev).await.expect("q"),
        SessionState::UserDisabled
    );
    let dev2 = DeviceId::new();
    s.register_device(o.tenant, dev2, o.rep2.user, "iphone")
        .await
        .expect("device");
    s.revoke_device(o.tenant, dev2).await.expect("revoke");
    assert_eq!(
        s.session_state(o.tenant, o.rep2.user, dev2)
            .await
            .expect("q"),
        SessionState::DeviceRevoked
    );
    assert!(s.signing_secret().await.expect("secret").len() >= 32);
    assert_eq!(
        s.signing_secret().await.expect("secret"),
        s.signing_secret().await.expect("secret"),
        "secret is stable"
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes(s: S) {
    let o = org(&s, "acme").await;
    let dev = DeviceId::new();
    s.register_device(o.tenant, dev, o.rep1.user, "pixel")
        .await
        .expect("device");
    let now = store::now_ms();
    s.store_refresh_token(o.tenant, dev, o.rep1.user, "h1", now + 60_000, None)
        .await
        .expect("store");
    assert_eq!(
        s.use_refresh_token("h1", now).await.expect("use"),
        RefreshUse::Fresh {
            tenant: o.tenant,
            device: dev,
            user: o.rep1.user
        }
    );
    s.store_refresh_token(o.tenant, dev, o.rep1.user, "h2", now + 60_000, Some("h1"))
        .await
        .expect("store");
    // The answer carrying h2 was lost: retrying h1 at once is not theft; h2 is dropped.
    assert_eq!(
        s.use_refresh_token("h1", now + 1_000).await.expect("use"),
        RefreshUse::Fresh {
            tenant: o.tenant,
            device: dev,
            user: o.rep1.user
        }
    );
    assert_eq!(
        s.use_refresh_token("h2", now + 1_000).await.expect("use"),
        RefreshUse::Invalid,
        "the lost successor is gone"
    );
    s.store_refresh_token(o.tenant, dev, o.rep1.user, "h2b", now + 60_000, Some("h1"))
        .await
        .expect("store");
    assert!(matches!(
        s.use_refresh_token("h2b", now + 2_000).await.expect("use"),
        RefreshUse::Fresh { .. }
    ));
    s.store_refresh_token(o.tenant, dev, o.rep1.user, "h2", now + 60_000, Some("h2b"))
        .await
        .expect("store");
    // h1 again: its successor was used, so this is a copy being replayed.
    assert_eq!(
        s.use_refresh_token("h1", now + 3_000).await.expect("use"),
        RefreshUse::Reused {
            tenant: o.tenant,
            device: dev
        }
    );
    assert_eq!(
        s.session_state(o.tenant, o.rep1.user, dev)
            .await
            .expect("q"),
        SessionState::DeviceRevoked
    );
    assert_eq!(
        s.use_refresh_token("h2", now).await.expect("use"),
        RefreshUse::Invalid,
        "the newer token died with the device"
    );
    assert_eq!(
        s.use_refresh_token("nope", now).await.expect("use"),
        RefreshUse::Invalid
    );
    s.store_refresh_token(o.tenant, dev, o.rep1.user, "old", now - 1, None)
        .await
        .expect("store");
    assert_eq!(
        s.use_refresh_token("old", now).await.expect("use"),
        RefreshUse::Invalid,
        "expired"
    );
}

async fn push_then_pull_respects_readers(s: S) {
    let o = org(&s, "acme").await;
    let c = Customer::new("Acme", o.rep1.user);
    let res = push_new(&s, &o.rep1, &[Record::Customer(c.clone())]).await;
    assert!(
        matches!(res[0].2, PushResult::Accepted { .. }),
        "{:?}",
        res[0].2
    );
    for (who, sees) in [
        (&o.rep1, true),
        (&o.manager, true),
        (&o.admin, true),
        (&o.rep2, false),
    ] {
        let (items, _, _) = pull_all(&s, who, Cursor::Start, 1 << 20).await;
        assert_eq!(items.len(), usize::from(sees), "{:?}", who.role);
        if sees {
            let PullItem::Snapshot { doc, .. } = &items[0] else {
                panic!("bootstrap sends snapshots")
            };
            let (r, _) = Record::read(&Automerge::load(&doc.0).expect("load")).expect("read");
            assert_eq!(r, Record::Customer(c.clone()));
        }
        assert_eq!(s.readable_doc(who, c.id).await.expect("q").is_some(), sees);
    }
}

async fn retried_batch_returns_same_answer_and_stores_once(s: S) {
    let o = org(&s, "acme").await;
    let c = Record::Customer(Customer::new("Acme", o.rep1.user));
    let doc = c.to_new_doc(ActorId::random()).expect("doc");
    let dev = DeviceId::new();
    let batch = uuid::Uuid::now_v7();
    let first = s
        .push(&o.rep1, dev, batch, vec![item(&c, &doc, &[])])
        .await
        .expect("push");
    let again = s
        .push(&o.rep1, dev, batch, vec![item(&c, &doc, &[])])
        .await
        .expect("push");
    assert_eq!(first.response, again.response);
    assert!(first.new_seq.is_some() && again.new_seq.is_none());
    // A new batch with the same changes is accepted and adds nothing either.
    let third = s
        .push(
            &o.rep1,
            dev,
            uuid::Uuid::now_v7(),
            vec![item(&c, &doc, &[])],
        )
        .await
        .expect("push");
    assert!(third.new_seq.is_none());
    let (items, _, _) = pull_all(&s, &o.admin, Cursor::Log { seq: 0 }, 1 << 20).await;
    assert_eq!(items.len(), 1, "one log entry, not three");
    assert_eq!(s.count_documents(o.tenant).await.expect("count"), 1);
}

async fn up_to_date_pull_is_empty(s: S) {
    let o = org(&s, "acme").await;
    let recs: Vec<Record> = (0..20)
        .map(|i| Record::Customer(Customer::new(format!("C{i}"), o.rep1.user)))
        .collect();
    push_new(&s, &o.rep1, &recs).await;
    let (_, cursor, _) = pull_all(&s, &o.rep1, Cursor::Start, 1 << 20).await;
    let page = s
        .pull(&o.rep1, None, cursor.clone(), 1 << 20)
        .await
        .expect("pull");
    assert!(page.items.is_empty() && !page.more);
    assert_eq!(Cursor::parse(Some(&page.cursor)).expect("cursor"), cursor);
    // Another rep's activity does not reach this rep, and the cursor still advances.
    push_new(
        &s,
        &o.rep2,
        &[Record::Customer(Customer::new("Other", o.rep2.user))],
    )
    .await;
    let page = s
        .pull(&o.rep1, None, cursor.clone(), 1 << 20)
        .await
        .expect("pull");
    assert!(page.items.is_empty() && !page.more);
    assert_ne!(Cursor::parse(Some(&page.cursor)).expect("cursor"), cursor);
}

async fn reassignment_revokes_and_grants(s: S) {
    let o = org(&s, "acme").await;
    let c = Customer::new("Acme", o.rep1.user);
    let res = push_new(&s, &o.rep1, &[Record::Customer(c.clone())]).await;
    let mut doc = res[0].1.clone();
    let (_, rep1_cursor, _) = pull_all(&s, &o.rep1, Cursor::Start, 1 << 20).await;
    let (_, rep2_cursor, _) = pull_all(&s, &o.rep2, Cursor::Start, 1 << 20).await;
    // A rep cannot give the customer away...
    let heads = doc.get_heads();
    let mut moved = c.clone();
    moved.owner = o.rep2.user;
    let mut tx = doc.transaction();
    Record::Customer(moved.clone())
        .write(&mut tx)
        .expect("write");
    tx.commit();
    let out = s
        .push(
            &o.rep1,
            DeviceId::new(),
            uuid::Uuid::now_v7(),
            vec![item(&Record::Customer(moved.clone()), &doc, &heads)],
        )
        .await
        .expect("push");
    assert!(
        matches!(&out.response.results[0], PushResult::Rejected { error, .. } if error.code == "owner_not_allowed")
    );
    // ...an admin can.
    let out = s
        .push(
            &o.admin,
            DeviceId::new(),
            uuid::Uuid::now_v7(),
            vec![item(&Record::Customer(moved), &doc, &heads)],
        )
        .await
        .expect("push");
    assert!(
        matches!(&out.response.results[0], PushResult::Accepted { .. }),
        "{:?}",
        out.response.results[0]
    );
    let (items, _, _) = pull_all(&s, &o.rep1, rep1_cursor, 1 << 20).await;
    assert!(
        matches!(items.as_slice(), [PullItem::Revoke { .. }]),
        "{items:?}"
    );
    let (items, _, _) = pull_all(&s, &o.rep2, rep2_cursor, 1 << 20).await;
    assert!(
        items.iter().any(|i| matches!(i, PullItem::Snapshot { .. })),
        "the new owner gets the compacted document: {items:?}"
    );
}

async fn pull_pages_by_size_without_loss(s: S) {
    let o = org(&s, "acme").await;
    let recs: Vec<Record> = (0..300)
        .map(|i| Record::Customer(Customer::new(format!("Customer {i}"), o.rep1.user)))
        .collect();
    push_new(&s, &o.rep1, &recs[..150]).await;
    let (items, cursor, requests) = pull_all(&s, &o.rep1, Cursor::Start, 4096).await;
    assert_eq!(doc_ids(&items).len(), 150);
    assert!(
        requests > 3,
        "small pages take several requests: {requests}"
    );
    push_new(&s, &o.rep1, &recs[150..]).await;
    let (items, _, requests) = pull_all(&s, &o.rep1, cursor, 4096).await;
    assert_eq!(doc_ids(&items).len(), 150);
    assert!(requests > 3);
}

async fn projections_follow_the_documents(s: S) {
    let o = org(&s, "acme").await;
    let mut c = Customer::new("Acme", o.rep1.user);
    c.location = Some(GeoPoint {
        lat: 30.65,
        lon: 104.06,
    });
    c.tags = vec!["key".into()];
    let res = push_new(&s, &o.rep1, &[Record::Customer(c.clone())]).await;
    let row = s.customer(&o.rep1, c.id).await.expect("q").expect("row");
    assert_eq!(
        (row.name.as_str(), row.lat, row.tags.clone()),
        ("Acme", Some(30.65), vec!["key".to_string()])
    );
    assert!(s.customer(&o.rep2, c.id).await.expect("q").is_none());
    let mut doc = res[0].1.clone();
    let heads = doc.get_heads();
    c.name = "Acme Ltd".into();
    let mut tx = doc.transaction();
    Record::Customer(c.clone()).write(&mut tx).expect("write");
    tx.commit();
    s.push(
        &o.rep1,
        DeviceId::new(),
        uuid::Uuid::now_v7(),
        vec![item(&Record::Customer(c.clone()), &doc, &heads)],
    )
    .await
    .expect("push");
    assert_eq!(
        s.customer(&o.manager, c.id)
            .await
            .expect("q")
            .expect("row")
            .name,
        "Acme Ltd"
    );
    assert_eq!(s.list_customers(&o.rep1).await.expect("q").len(), 1);
    assert_eq!(s.list_customers(&o.rep2).await.expect("q").len(), 0);
}

async fn project_needs_existing_customer(s: S) {
    let o = org(&s, "acme").await;
    let mut p = Project::new("Tower", o.manager.user);
    p.customer = Some(fieldsync_sync::DocId::new());
    let res = push_new(&s, &o.manager, &[Record::Project(p.clone())]).await;
    assert!(
        matches!(&res[0].2, PushResult::Rejected { error, .. } if error.code == "unknown_customer"),
        "{:?}",
        res[0].2
    );
    // Customer and project in the same push are fine.
    let c = Customer::new("Acme", o.manager.user);
    let mut p = Project::new("Tower", o.manager.user);
    p.customer = Some(c.id);
    let res = push_new(
        &s,
        &o.manager,
        &[Record::Customer(c), Record::Project(p.clone())],
    )
    .await;
    assert!(
        res.iter()
            .all(|r| matches!(r.2, PushResult::Accepted { .. }))
    );
    let row = s.project(&o.manager, p.id).await.expect("q").expect("row");
    assert_eq!(row.name, "Tower");
    // Re-pointing a stored project at an unknown customer is refused, and the refusal carries
    // the stored version so the phone goes back to it rather than losing the project.
    let mut doc = res[1].1.clone();
    let heads = doc.get_heads();
    let mut moved = p.clone();
    moved.customer = Some(fieldsync_sync::DocId::new());
    let mut tx = doc.transaction();
    Record::Project(moved.clone())
        .write(&mut tx)
        .expect("write");
    tx.commit();
    let out = s
        .push(
            &o.manager,
            DeviceId::new(),
            uuid::Uuid::now_v7(),
            vec![item(&Record::Project(moved), &doc, &heads)],
        )
        .await
        .expect("push");
    match &out.response.results[0] {
        PushResult::Rejected {
            error,
            doc: Some(server_doc),
            heads: server_heads,
            ..
        } => {
            assert_eq!(error.code, "unknown_customer");
            let server = Automerge::load(&server_doc.0).expect("load");
            assert_eq!(
                fieldsync_sync::protocol::heads_to_strings(&server.get_heads()),
                *server_heads
            );
            assert_eq!(Record::read(&server).expect("read").0, Record::Project(p));
        }
        other => panic!("expected a rejection with the stored version, got {other:?}"),
    }
}

async fn tenants_are_isolated(s: S) {
    let a = org(&s, "alpha").await;
    let b = org(&s, "beta").await;
    let c = Customer::new("Alpha's customer", a.rep1.user);
    push_new(&s, &a.rep1, &[Record::Customer(c.clone())]).await;
    assert!(s.readable_doc(&b.admin, c.id).await.expect("q").is_none());
    assert!(s.customer(&b.admin, c.id).await.expect("q").is_none());
    let (items, _, _) = pull_all(&s, &b.admin, Cursor::Start, 1 << 20).await;
    assert!(items.is_empty());
    // Beta's admin pushing a change to alpha's document id cannot reach alpha's record.
    let doc = Record::Customer(c.clone())
        .to_new_doc(ActorId::random())
        .expect("doc");
    let out = s
        .push(
            &b.admin,
            DeviceId::new(),
            uuid::Uuid::now_v7(),
            vec![item(&Record::Customer(c.clone()), &doc, &[])],
        )
        .await
        .expect("push");
    // Whatever the answer, alpha's record is untouched and beta sees nothing of alpha's.
    let _ = out;
    let (_, bytes) = s
        .readable_doc(&a.admin, c.id)
        .await
        .expect("q")
        .expect("alpha still has it");
    let (r, _) = Record::read(&Automerge::load(&bytes).expect("load")).expect("read");
    assert_eq!(r, Record::Customer(c));
    assert_eq!(s.count_documents(a.tenant).await.expect("count"), 1);
}

async fn a_device_is_not_sent_its_own_changes(s: S) {
    let o = org(&s, "acme").await;
    let (_, start, _) = pull_all(&s, &o.rep1, Cursor::Start, 1 << 20).await;
    let mine = DeviceId::new();
    let c = Record::Customer(Customer::new("Mine", o.rep1.user));
    let doc = c.to_new_doc(ActorId::random()).expect("doc");
    s.push(
        &o.rep1,
        mine,
        uuid::Uuid::now_v7(),
        vec![item(&c, &doc, &[])],
    )
    .await
    .expect("push");
    let page = s
        .pull(&o.rep1, Some(mine), start.clone(), 1 << 20)
        .await
        .expect("pull");
    assert!(
        page.items.is_empty(),
        "the pushing device has these changes already"
    );
    assert_ne!(
        Cursor::parse(Some(&page.cursor)).expect("cursor"),
        start,
        "but its cursor moves past them"
    );
    let other = s
        .pull(&o.rep1, Some(DeviceId::new()), start, 1 << 20)
        .await
        .expect("pull");
    assert_eq!(
        other.items.len(),
        1,
        "another phone of the same user gets them"
    );
}

async fn concurrent_pushes_to_one_document_lose_nothing(s: S) {
    let o = org(&s, "acme").await;
    let c = Customer::new("Shared", o.rep1.user);
    let res = push_new(&s, &o.rep1, &[Record::Customer(c.clone())]).await;
    let base = res[0].1.clone();
    let heads = base.get_heads();
    // Eight phones edit different tags offline and push at the same time.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        let caller = o.rep1.clone();
        let mut doc = base.fork().with_actor(ActorId::random());
        let mut edited = c.clone();
        edited.tags = vec![format!("tag{i}")];
        let mut tx = doc.transaction();
        Record::Customer(edited.clone())
            .write(&mut tx)
            .expect("write");
        tx.commit();
        let it = item(&Record::Customer(edited), &doc, &heads);
        tasks.push(tokio::spawn(async move {
            s.push(&caller, DeviceId::new(), uuid::Uuid::now_v7(), vec![it])
                .await
                .expect("push")
        }));
    }
    for t in tasks {
        let out = t.await.expect("task");
        assert!(
            matches!(out.response.results[0], PushResult::Accepted { .. }),
            "{:?}",
            out.response.results[0]
        );
    }
    let (_, bytes) = s
        .readable_doc(&o.rep1, c.id)
        .await
        .expect("q")
        .expect("doc");
    let merged = Automerge::load(&bytes).expect("load");
    let (Record::Customer(m), _) = Record::read(&merged).expect("read") else {
        panic!("kind")
    };
    let mut tags = m.tags.clone();
    tags.sort();
    // Each phone replaced the (empty) tag set with its own tag; the merge keeps every addition.
    assert_eq!(
        tags,
        (0..8).map(|i| format!("tag{i}")).collect::<Vec<_>>(),
        "every acknowledged edit is in the stored document"
    );
    // And every one of them reaches another phone through the log.
    let (items, _, _) = pull_all(&s, &o.manager, Cursor::Log { seq: 0 }, 1 << 20).await;
    assert_eq!(
        items.len(),
        9,
        "one entry for the creation and one per edit: {items:?}"
    );
}

async fn a_reader_pulling_during_pushes_misses_nothing(s: S) {
    let o = org(&s, "acme").await;
    let (_, start, _) = pull_all(&s, &o.manager, Cursor::Start, 1 << 20).await;
    // Four writers push 25 small batches between them while the manager keeps pulling.
    let mut writers = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        let caller = o.rep1.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for b in 0..6 {
                let recs: Vec<Record> = (0..5)
                    .map(|i| {
                        Record::Customer(Customer::new(format!("W{w} B{b} C{i}"), caller.user))
                    })
                    .collect();
                ids.extend(recs.iter().map(|r| r.id().as_string()));
                push_new(&s, &caller, &recs).await;
            }
            ids
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = start;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let (items, next, _) = pull_all(&s, &o.manager, cursor, 2048).await;
        seen.extend(doc_ids(&items));
        cursor = next;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    let mut expected = std::collections::BTreeSet::new();
    for w in writers {
        expected.extend(w.await.expect("writer"));
    }
    let (items, _, _) = pull_all(&s, &o.manager, cursor, 2048).await;
    seen.extend(doc_ids(&items));
    assert_eq!(
        seen, expected,
        "a cursor never skips an entry committed around it"
    );
}
