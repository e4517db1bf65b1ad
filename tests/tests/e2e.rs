//! End to end: the real server on port 0, phones as real `mobile-core` stores in temp dirs.

use fieldsync_mobile_core::{ClientError, FieldEdit, NewCustomer};
use fieldsync_sync::Role;
use fieldsync_tests::Harness;
use serde_json::json;

fn edit(field: &str, value: &str) -> FieldEdit {
    FieldEdit {
        field: field.into(),
        value: value.into(),
    }
}

fn new_customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: name.into(),
        lat: Some(30.65),
        lon: Some(104.06),
        notes: Some("Call before visiting.".into()),
        ..Default::default()
    }
}

struct Acme {
    h: Harness,
}

/// A tenant `acme` with a manager, two reps in the manager's team and one outside it, and an admin.
fn acme(h: Harness) -> Acme {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    h.user(t, "boss@acme.test", Role::Manager, None);
    h.user(t, "rep1@acme.test", Role::FieldRep, Some("boss@acme.test"));
    h.user(t, "rep2@acme.test", Role::FieldRep, None);
    Acme { h }
}

fn converge_in_order(h: Harness, first_a: bool) {
    let Acme { h } = acme(h);
    let a = h.phone("acme", "rep1@acme.test");
    let b = h.phone("acme", "rep1@acme.test");
    let id = a
        .create_customer(new_customer("Acme Ltd"))
        .expect("create")
        .customer
        .id
        .as_string();
    a.sync().expect("sync a");
    b.sync().expect("sync b");
    assert_eq!(
        b.get_customer(id.clone()).expect("b has it").customer.name,
        "Acme Ltd"
    );

    // Both offline: different fields, and the same text field at different places.
    a.edit_customer(
        id.clone(),
        vec![
            edit("phone", "+86 138 0000 0001"),
            edit("notes", "Urgent: Call before visiting."),
        ],
    )
    .expect("edit a");
    b.edit_customer(
        id.clone(),
        vec![
            edit("email", "buyer@acme.example"),
            edit("notes", "Call before visiting. Gate code 4711."),
        ],
    )
    .expect("edit b");
    let (x, y) = if first_a { (&a, &b) } else { (&b, &a) };
    x.sync().expect("sync");
    y.sync().expect("sync");
    x.sync().expect("sync");

    let va = a.get_customer(id.clone()).expect("a");
    let vb = b.get_customer(id.clone()).expect("b");
    assert_eq!(va.customer, vb.customer, "phones converge");
    assert!(!va.pending && !vb.pending);
    assert_eq!(va.customer.phone.as_deref(), Some("+86 138 0000 0001"));
    assert_eq!(va.customer.email.as_deref(), Some("buyer@acme.example"));
    assert_eq!(
        va.customer.notes, "Urgent: Call before visiting. Gate code 4711.",
        "text merges, nobody's words are lost"
    );

    // The server's projection holds the same.
    let tok = h.token("acme", "rep1@acme.test");
    let (status, row) = h.get(&format!("/v1/customers/{id}"), Some(&tok));
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["phone"], json!("+86 138 0000 0001"));
    assert_eq!(row["email"], json!("buyer@acme.example"));
    assert_eq!(row["notes"], json!(va.customer.notes));
    assert_eq!(row["name"], json!("Acme Ltd"));
}

fn two_phones_edit_offline_and_converge_a_first(h: Harness) {
    converge_in_order(h, true);
}

fn two_phones_edit_offline_and_converge_b_first(h: Harness) {
    converge_in_order(h, false);
}

fn same_field_edited_twice_is_shown_as_a_conflict(h: Harness) {
    let Acme { h } = acme(h);
    let a = h.phone("acme", "rep1@acme.test");
    let b = h.phone("acme", "rep1@acme.test");
    let id = a
        .create_customer(new_customer("Acme"))
        .expect("create")
        .customer
        .id
        .as_string();
    a.sync().expect("sync");
    b.sync().expect("sync");
    a.edit_customer(id.clone(), vec![edit("tier", "gold")])
        .expect("edit");
    b.edit_customer(id.clone(), vec![edit("tier", "bronze")])
        .expect("edit");
    a.sync().expect("sync");
    b.sync().expect("sync");
    a.sync().expect("sync");
    let va = a.get_customer(id.clone()).expect("a");
    assert_eq!(va.customer, b.get_customer(id.clone()).expect("b").customer);
    assert_eq!(va.conflicts.len(), 1, "{:?}", va.conflicts);
    assert_eq!(va.conflicts[0].field, "tier");
    // Settling it: set the field again, and the conflict is gone everywhere.
    a.edit_customer(id.clone(), vec![edit("tier", "silver")])
        .expect("edit");
    a.sync().expect("sync");
    b.sync().expect("sync");
    assert!(b.get_customer(id).expect("b").conflicts.is_empty());
}

fn a_rep_cannot_reach_another_reps_or_another_tenants_records(h: Harness) {
    let Acme { h } = acme(h);
    let other = h.tenant("globex");
    h.user(other, "admin@globex.test", Role::Admin, None);

    let rep1 = h.phone("acme", "rep1@acme.test");
    let id = rep1
        .create_customer(new_customer("Rep one's customer"))
        .expect("create")
        .customer
        .id
        .as_string();
    rep1.sync().expect("sync");

    // Through sync: rep2 and globex's admin receive nothing.
    let rep2 = h.phone("acme", "rep2@acme.test");
    rep2.sync().expect("sync");
    assert!(rep2.list_customers().expect("list").is_empty());
    let globex = h.phone("globex", "admin@globex.test");
    globex.sync().expect("sync");
    assert!(globex.list_customers().expect("list").is_empty());
    // The manager of rep1's team does.
    let boss = h.phone("acme", "boss@acme.test");
    boss.sync().expect("sync");
    assert_eq!(boss.list_customers().expect("list").len(), 1);

    // Through every read route.
    for (tenant, email) in [("acme", "rep2@acme.test"), ("globex", "admin@globex.test")] {
        let tok = h.token(tenant, email);
        for path in [
            format!("/v1/customers/{id}"),
            format!("/v1/records/{id}"),
            format!("/v1/projects/{id}"),
        ] {
            let (status, body) = h.get(&path, Some(&tok));
            assert_eq!(status, 404, "{email} {path}: {body}");
            assert_eq!(body["error"], json!("not_found"));
        }
        let (status, body) = h.get("/v1/customers", Some(&tok));
        assert_eq!((status, body), (200, json!([])));
        let (status, body) = h.post("/v1/sync/pull", Some(&tok), &json!({"v": 1}));
        assert_eq!(status, 200);
        assert_eq!(body["items"], json!([]));
        let (status, body) = h.post(
            "/v1/sync/repair",
            Some(&tok),
            &json!({"v": 1, "docs": [{"doc_id": id, "heads": []}]}),
        );
        assert_eq!(status, 200);
        assert!(
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|i| i["op"] != json!("snapshot")),
            "{body}"
        );
        let (status, _) = h.post(
            "/v1/sync/repair/sync",
            Some(&tok),
            &json!({"v": 1, "docs": [{"doc_id": id, "message": null}]}),
        );
        assert_eq!(status, 404);
        // Admin routes are for admins of the caller's own tenant only.
        let (status, body) = h.get("/v1/admin/users", Some(&tok));
        if email.starts_with("admin") {
            assert!(body.as_array().expect("users").iter().all(|u| {
                u["email"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("globex.test"))
            }));
        } else {
            assert_eq!(status, 403);
        }
    }

    // Through push: rep2 writing rep1's customer is refused and nothing changes.
    let stolen = h.phone("acme", "rep1@acme.test");
    stolen.sync().expect("sync");
    let doc = rep1.get_customer(id.clone()).expect("get");
    let rep1_tok = h.token("acme", "rep1@acme.test");
    let (_, before) = h.get(&format!("/v1/records/{id}"), Some(&rep1_tok));
    let _ = doc;
    let rep2_tok = h.token("acme", "rep2@acme.test");
    let (_, rec) = h.get(&format!("/v1/records/{id}"), Some(&rep1_tok));
    assert_eq!(rec["record"]["name"], json!("Rep one's customer"));
    let change = fieldsync_tests_support::rename_change(&h, &rep1_tok, &id, "Stolen");
    let (status, body) = h.post(
        "/v1/sync/push",
        Some(&rep2_tok),
        &json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": [{"doc_id": id, "kind": "customer", "changes": [change]}]}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], json!("rejected"));
    assert_eq!(body["results"][0]["error"]["code"], json!("forbidden"));
    assert_eq!(
        body["results"][0]["doc"],
        json!(null),
        "nothing of the record leaks"
    );
    let (_, after) = h.get(&format!("/v1/records/{id}"), Some(&rep1_tok));
    assert_eq!(before, after);
}

fn a_rejected_change_is_reported_and_the_phone_recovers(h: Harness) {
    let Acme { h } = acme(h);
    let rep1 = h.phone("acme", "rep1@acme.test");
    let rep2_id =
        h.rt.block_on(
            h.store.user_by_email(
                h.rt.block_on(h.store.tenant_by_slug("acme"))
                    .expect("q")
                    .expect("t")
                    .id,
                "rep2@acme.test",
            ),
        )
        .expect("q")
        .expect("rep2")
        .id;
    let id = rep1
        .create_customer(new_customer("Keep me"))
        .expect("create")
        .customer
        .id
        .as_string();
    rep1.sync().expect("sync");
    // A rep may not hand a customer to someone else: the phone cannot know, the server refuses.
    rep1.edit_customer(
        id.clone(),
        vec![edit("owner", &rep2_id.as_string()), edit("name", "Renamed")],
    )
    .expect("local edit");
    let report = rep1.sync().expect("sync");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].code, "owner_not_allowed");
    assert!(!report.rejected[0].message.is_empty());
    let v = rep1.get_customer(id.clone()).expect("still there");
    assert_eq!(v.customer.name, "Keep me", "back to the server's version");
    assert!(!v.pending);
    let status = rep1.status().expect("status");
    assert_eq!(status.pending_docs, 0, "nothing stuck in the outbox");
    // And the phone keeps working.
    rep1.edit_customer(id.clone(), vec![edit("name", "Keep me, renamed")])
        .expect("edit");
    assert!(rep1.sync().expect("sync").rejected.is_empty());
    let tok = h.token("acme", "rep1@acme.test");
    assert_eq!(
        h.get(&format!("/v1/customers/{id}"), Some(&tok)).1["name"],
        json!("Keep me, renamed")
    );
}

fn an_edit_reaches_an_online_phone_through_the_live_socket(h: Harness) {
    let Acme { h } = acme(h);
    let a = h.phone("acme", "rep1@acme.test");
    let b = h.phone("acme", "rep1@acme.test");
    let live = b.connect_live().expect("connect");
    let outsider = h.phone("acme", "rep2@acme.test");
    let outsider_live = outsider.connect_live().expect("connect");
    let boss = h.phone("acme", "boss@acme.test");
    let boss_live = boss.connect_live().expect("connect");
    let id = a
        .create_customer(new_customer("Live Ltd"))
        .expect("create")
        .customer
        .id
        .as_string();
    let started = std::time::Instant::now();
    a.sync().expect("sync");
    let report = b
        .sync_on_change(&live, 10_000)
        .expect("wait")
        .expect("a change was announced");
    eprintln!(
        "edit on phone A visible on phone B after {:?}",
        started.elapsed()
    );
    assert!(report.pulled >= 1);
    assert_eq!(
        b.get_customer(id).expect("b has it").customer.name,
        "Live Ltd"
    );
    assert!(
        boss.wait_for_change(&boss_live, 10_000).expect("wait"),
        "the rep's manager is told too"
    );
    // A rep outside the team is not woken for a customer they may not read.
    assert!(
        !outsider.wait_for_change(&outsider_live, 300).expect("wait"),
        "no notice for someone else's customer"
    );
    live.close();
    boss_live.close();
    outsider_live.close();
}

fn disabling_a_user_stops_sync_at_once_and_the_phone_purges(h: Harness) {
    let Acme { h } = acme(h);
    let rep1 = h.phone("acme", "rep1@acme.test");
    rep1.create_customer(new_customer("Company data"))
        .expect("create");
    rep1.sync().expect("sync");
    let admin = h.token("acme", "admin@acme.test");
    let (_, users) = h.get("/v1/admin/users", Some(&admin));
    let rep1_id = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == json!("rep1@acme.test"))
        .expect("rep1")["id"]
        .clone();
    let (status, _) = h.post(
        &format!("/v1/admin/users/{}/disable", rep1_id.as_str().expect("id")),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 204);
    match rep1.sync() {
        Err(ClientError::Revoked { code, .. }) => assert_eq!(code, "account_disabled"),
        other => panic!("expected the phone to be told it lost access, got {other:?}"),
    }
    assert!(
        rep1.list_customers().map(|l| l.is_empty()).unwrap_or(true),
        "the phone purged the company's data"
    );
    // The account cannot log in again.
    let (status, body) = h.post("/v1/auth/login", None, &json!({"tenant": "acme", "email": "rep1@acme.test", "password": fieldsync_tests::PASSWORD}));
    assert_eq!(
        (status, body["error"].clone()),
        (403, json!("account_disabled"))
    );
    // The data stays with the company.
    let boss = h.phone("acme", "boss@acme.test");
    boss.sync().expect("sync");
    assert_eq!(boss.list_customers().expect("list").len(), 1);
}

fn reassignment_moves_the_customer_between_phones(h: Harness) {
    let Acme { h } = acme(h);
    let rep1 = h.phone("acme", "rep1@acme.test");
    let admin = h.phone("acme", "admin@acme.test");
    let rep2 = h.phone("acme", "rep2@acme.test");
    let id = rep1
        .create_customer(new_customer("Moving Co"))
        .expect("create")
        .customer
        .id
        .as_string();
    rep1.sync().expect("sync");
    rep2.sync().expect("sync");
    admin.sync().expect("sync");
    let rep2_id = rep2.status().expect("status").user_id.expect("user");
    admin
        .edit_customer(id.clone(), vec![edit("owner", &rep2_id)])
        .expect("reassign");
    assert!(admin.sync().expect("sync").rejected.is_empty());
    let r = rep1.sync().expect("sync");
    assert_eq!(r.revoked, 1, "{r:?}");
    assert!(
        rep1.get_customer(id.clone()).is_err(),
        "the old owner's phone dropped it"
    );
    rep2.sync().expect("sync");
    assert_eq!(
        rep2.get_customer(id)
            .expect("new owner has it")
            .customer
            .name,
        "Moving Co"
    );
}

fn a_diverged_phone_repairs_by_heads(h: Harness) {
    let Acme { h } = acme(h);
    let a = h.phone("acme", "rep1@acme.test");
    let ids: Vec<String> = (0..5)
        .map(|i| {
            a.create_customer(new_customer(&format!("C{i}")))
                .expect("create")
                .customer
                .id
                .as_string()
        })
        .collect();
    a.sync().expect("sync");
    // Phone B was restored from a backup taken before a's latest edits, and lost its cursor.
    let b = h.phone("acme", "rep1@acme.test");
    b.sync().expect("sync");
    let backup = tempfile::tempdir().expect("tempdir");
    copy_dir(b.dir.path(), backup.path());
    a.edit_customer(
        ids[0].clone(),
        vec![edit("name", "Edited after the backup")],
    )
    .expect("edit");
    a.create_customer(new_customer("Created after the backup"))
        .expect("create");
    a.sync().expect("sync");
    drop(b);
    let restored =
        fieldsync_mobile_core::FieldsyncClient::open(backup.path().to_string_lossy().into_owned())
            .expect("open");
    // Offline edit on the restored phone that the server has never seen.
    restored
        .edit_customer(ids[1].clone(), vec![edit("phone", "+86 100 200 300")])
        .expect("edit");
    let report = restored.repair().expect("repair");
    assert!(report.added >= 1 && report.reconciled >= 1, "{report:?}");
    a.sync().expect("sync");
    let mut on_a: Vec<_> = a
        .list_customers()
        .expect("list")
        .into_iter()
        .map(|v| v.customer)
        .collect();
    let mut on_r: Vec<_> = restored
        .list_customers()
        .expect("list")
        .into_iter()
        .map(|v| v.customer)
        .collect();
    on_a.sort_by_key(|c| c.id);
    on_r.sort_by_key(|c| c.id);
    assert_eq!(on_a, on_r);
    assert_eq!(on_a.len(), 6);
    assert!(
        on_a.iter()
            .any(|c| c.phone.as_deref() == Some("+86 100 200 300"))
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

mod fieldsync_tests_support {
    use super::*;
    use automerge::Automerge;
    use base64::Engine;

    /// A base64 change renaming the record, made on top of the server's version.
    pub fn rename_change(h: &Harness, token: &str, id: &str, name: &str) -> String {
        let (_, pulled) = h.post("/v1/sync/pull", Some(token), &json!({"v": 1}));
        let item = pulled["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["doc_id"] == json!(id))
            .expect("doc")
            .clone();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["doc"].as_str().expect("doc"))
            .expect("b64");
        let mut doc = Automerge::load(&bytes)
            .expect("load")
            .with_actor(automerge::ActorId::random());
        let heads = doc.get_heads();
        let (mut rec, _) = fieldsync_sync::Record::read(&doc).expect("read");
        if let fieldsync_sync::Record::Customer(c) = &mut rec {
            c.name = name.into();
        }
        let mut tx = doc.transaction();
        rec.write(&mut tx).expect("write");
        tx.commit();
        let change = doc.get_changes(&heads).pop().expect("one change");
        base64::engine::general_purpose::STANDARD.encode(change.raw_bytes())
    }
}

fn a_revoked_device_purges_and_can_sign_in_again_as_a_new_device(h: Harness) {
    let Acme { h } = acme(h);
    let phone = h.phone("acme", "rep1@acme.test");
    phone
        .create_customer(new_customer("Kept by the company"))
        .expect("create");
    phone.sync().expect("sync");
    let old_device = phone.device_id();
    let admin = h.token("acme", "admin@acme.test");
    let (status, _) = h.post(
        &format!("/v1/admin/devices/{old_device}/revoke"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 204);
    match phone.sync() {
        Err(ClientError::Revoked { code, .. }) => assert_eq!(code, "device_revoked"),
        other => panic!("expected revocation, got {other:?}"),
    }
    assert!(phone.list_customers().map(|l| l.is_empty()).unwrap_or(true));
    assert_ne!(
        phone.device_id(),
        old_device,
        "a revoked device id is never reused"
    );
    phone
        .login(
            h.url.clone(),
            "acme".into(),
            "rep1@acme.test".into(),
            fieldsync_tests::PASSWORD.into(),
        )
        .expect("login again");
    phone.sync().expect("sync");
    assert_eq!(
        phone.list_customers().expect("list").len(),
        1,
        "the company's record comes back from the server"
    );
}

fn project_members_gain_and_lose_the_project(h: Harness) {
    let Acme { h } = acme(h);
    let t =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant")
            .id;
    h.user(t, "site@acme.test", Role::SiteManager, None);
    let site = h.phone("acme", "site@acme.test");
    let rep2 = h.phone("acme", "rep2@acme.test");
    let rep2_id = rep2.status().expect("status").user_id.expect("user");
    let project = site
        .create_project(fieldsync_mobile_core::NewProject {
            name: "Tower B fit-out".into(),
            code: Some("TB-01".into()),
            ..Default::default()
        })
        .expect("create")
        .project
        .id
        .as_string();
    site.sync().expect("sync");
    rep2.sync().expect("sync");
    assert!(
        rep2.list_projects().expect("list").is_empty(),
        "not a member yet"
    );

    site.add_member(project.clone(), rep2_id.clone(), "crew".into())
        .expect("add member");
    site.sync().expect("sync");
    rep2.sync().expect("sync");
    assert_eq!(
        rep2.get_project(project.clone())
            .expect("member sees it")
            .project
            .name,
        "Tower B fit-out"
    );
    // A crew member may read the project but not change it.
    rep2.edit_project(project.clone(), vec![edit("name", "Renamed by crew")])
        .expect("local edit");
    let r = rep2.sync().expect("sync");
    assert_eq!(
        r.rejected.first().map(|x| x.code.as_str()),
        Some("forbidden"),
        "{r:?}"
    );
    assert_eq!(
        rep2.get_project(project.clone())
            .expect("still there")
            .project
            .name,
        "Tower B fit-out"
    );

    site.remove_member(project.clone(), rep2_id)
        .expect("remove member");
    site.sync().expect("sync");
    let r = rep2.sync().expect("sync");
    assert_eq!(r.revoked, 1, "{r:?}");
    assert!(
        rep2.get_project(project).is_err(),
        "a removed member's phone drops the project"
    );
}

fn a_push_of_several_batches_arrives_whole(h: Harness) {
    let Acme { h } = acme(h);
    let a = h.phone("acme", "rep1@acme.test");
    // More than two of the phone's 1,000-document batches, so the pipelined path runs.
    let n = 2_100;
    for i in 0..n {
        a.create_customer(NewCustomer {
            name: format!("Customer {i}"),
            ..Default::default()
        })
        .expect("create");
    }
    let report = a.sync().expect("sync");
    assert_eq!(report.accepted, n, "{report:?}");
    assert_eq!(a.status().expect("status").pending_docs, 0);
    let t =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant")
            .id;
    assert_eq!(
        h.rt.block_on(h.store.count_documents(t)).expect("count"),
        n as i64
    );
    let b = h.phone("acme", "rep1@acme.test");
    b.sync().expect("sync");
    assert_eq!(b.list_customers().expect("list").len(), n as usize);
}

fn the_api_describes_itself_and_reports_health(h: Harness) {
    let (status, health) = h.get("/healthz", None);
    assert_eq!(status, 200);
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(health["backend"], json!(h.store.backend()));
    let (status, spec) = h.get("/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], json!("3.1.0"));
    for path in [
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/me",
        "/v1/sync/push",
        "/v1/sync/pull",
        "/v1/sync/repair",
        "/v1/sync/repair/sync",
        "/v1/sync/live",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/projects",
        "/v1/projects/{id}",
        "/v1/records/{id}",
        "/v1/admin/users",
        "/v1/admin/users/{id}/disable",
        "/v1/admin/devices",
        "/v1/admin/devices/{id}/revoke",
        "/metrics",
        "/v1/visits",
        "/v1/visits/{id}/reviews",
        "/v1/field-events",
        "/v1/makeups/{id}/decision",
        "/v1/attendance/shifts",
        "/v1/attendance/setup",
        "/v1/reports/attendance",
        "/v1/photos",
        "/v1/photos/{id}/reviews",
        "/v1/geojson",
        "/v1/blobs",
        "/v1/blobs/{sha256}",
        "/v1/photos/{id}/file/{variant}",
        "/v1/diaries",
        "/v1/diaries/{id}",
        "/v1/diaries/{id}/sign-off",
        "/v1/diaries/{id}/reopen",
        "/v1/diaries/export",
        "/v1/customers/{id}/360",
        "/v1/projects/{id}/360",
        "/v1/projects/{id}/files",
        "/v1/projects/{id}/files/{file}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} is not described");
    }
}

/// Every scenario runs against the server on its embedded SQLite store and on PostgreSQL (a
/// fresh database each time; skipped with a message when no PostgreSQL answers, unless
/// `FIELDSYNC_REQUIRE_PG=1`).
use fieldsync_tests::on_both_stores;

on_both_stores!(
    same_field_edited_twice_is_shown_as_a_conflict,
    a_rep_cannot_reach_another_reps_or_another_tenants_records,
    a_rejected_change_is_reported_and_the_phone_recovers,
    an_edit_reaches_an_online_phone_through_the_live_socket,
    disabling_a_user_stops_sync_at_once_and_the_phone_purges,
    reassignment_moves_the_customer_between_phones,
    a_diverged_phone_repairs_by_heads,
    a_revoked_device_purges_and_can_sign_in_again_as_a_new_device,
    project_members_gain_and_lose_the_project,
    a_push_of_several_batches_arrives_whole,
    two_phones_edit_offline_and_converge_a_first,
    two_phones_edit_offline_and_converge_b_first,
    the_api_describes_itself_and_reports_health,
);
