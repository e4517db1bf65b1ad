//! Staff handover end to end, on SQLite and on PostgreSQL: an admin hands a departing rep's
//! customers to another rep and disables the account in one step (the old phone purges at its
//! next contact, the new owner's phone receives the customers with their whole history); a
//! handover to the shared pool, which managers list and hand out to their own team only; undo
//! moves back only the customers nobody touched since, once; who may call these routes.

use fieldsync_mobile_core::{ClientError, FieldEdit, NewCustomer};
use fieldsync_sync::{Role, UserId};
use fieldsync_tests::{Harness, Phone, on_both_stores};
use serde_json::{Value, json};

fn new_customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: name.into(),
        lat: Some(52.52),
        lon: Some(13.40),
        ..Default::default()
    }
}

/// Tenant `acme`: an admin, two managers (`boss1`, `boss2`), reps `a` and `c` in boss1's team,
/// rep `b` in boss2's, and an HR account. Tenant `other` with one rep.
struct Acme {
    h: Harness,
    a: UserId,
    b: UserId,
    c: UserId,
    hr: UserId,
    outsider: UserId,
}

fn acme(h: Harness) -> Acme {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    h.user(t, "boss1@acme.test", Role::Manager, None);
    h.user(t, "boss2@acme.test", Role::Manager, None);
    let a = h.user(t, "a@acme.test", Role::FieldRep, Some("boss1@acme.test"));
    let b = h.user(t, "b@acme.test", Role::FieldRep, Some("boss2@acme.test"));
    let c = h.user(t, "c@acme.test", Role::FieldRep, Some("boss1@acme.test"));
    let hr = h.user(t, "hr@acme.test", Role::Hr, None);
    let o = h.tenant("other");
    let outsider = h.user(o, "rep@other.test", Role::FieldRep, None);
    Acme {
        h,
        a,
        b,
        c,
        hr,
        outsider,
    }
}

/// Rep `a`'s phone with three customers, one with a note `a` wrote, all synced. Answers the
/// phone and the ids, the noted one first.
fn a_with_customers(h: &Harness) -> (Phone, Vec<String>) {
    let phone = h.phone("acme", "a@acme.test");
    let mut ids = Vec::new();
    for name in ["Noted GmbH", "Second AG", "Third KG"] {
        ids.push(
            phone
                .create_customer(new_customer(name))
                .expect("create")
                .customer
                .id
                .as_string(),
        );
    }
    phone
        .edit_customer(
            ids[0].clone(),
            vec![FieldEdit {
                field: "notes".into(),
                value: "Gate code 4711; ask for Ms Weber.".into(),
            }],
        )
        .expect("edit");
    let report = phone.sync().expect("sync");
    assert!(report.rejected.is_empty(), "{report:?}");
    (phone, ids)
}

fn owner_on_server(h: &Harness, admin: &str, id: &str) -> Value {
    let (status, body) = h.get(&format!("/v1/customers/{id}"), Some(admin));
    assert_eq!(status, 200, "{body}");
    body["owner_id"].clone()
}

fn ids_of(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| x["id"].as_str().expect("id").to_owned())
        })
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The Automerge actors of every change in the document a phone stores for `id`.
fn actors_on_phone(h: &Harness, phone: &Phone, id: &str) -> Vec<String> {
    let path = phone.dir.path().join("fieldsync.db");
    let bytes: Vec<u8> = h.rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .expect("open the phone's store");
        let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM docs WHERE doc_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("the phone holds the customer");
        pool.close().await;
        bytes
    });
    let doc = automerge::Automerge::load(&bytes).expect("load");
    doc.get_changes(&[])
        .iter()
        .map(|c| c.actor_id().to_hex_string())
        .collect()
}

fn handover_to_a_rep_with_disable(h: Harness) {
    let Acme { h, a, b, .. } = acme(h);
    let (phone_a, ids) = a_with_customers(&h);
    let a_actor = uuid::Uuid::parse_str(&phone_a.device_id())
        .expect("device id")
        .simple()
        .to_string();
    let phone_b = h.phone("acme", "b@acme.test");
    phone_b.sync().expect("sync");
    assert!(phone_b.list_customers().expect("list").is_empty());
    let admin = h.token("acme", "admin@acme.test");

    let (status, body) = h.post(
        &format!("/v1/admin/users/{a}/handover"),
        Some(&admin),
        &json!({"to": b.to_string(), "disable": true}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(&body["moved"]), sorted(ids.clone()));
    assert_eq!(body["refused"], json!([]));
    assert_eq!(body["disabled"], json!(true));
    let handover_id = body["handover"]["id"]
        .as_str()
        .expect("recorded")
        .to_owned();

    // The old phone, at its next contact, is told and purges the tenant's data.
    match phone_a.sync() {
        Err(ClientError::Revoked { code, .. }) => assert_eq!(code, "account_disabled"),
        other => panic!("expected the old phone to lose access, got {other:?}"),
    }
    assert!(
        phone_a
            .list_customers()
            .map(|l| l.is_empty())
            .unwrap_or(true),
        "the old phone purged the customers"
    );

    // The new owner's phone receives them at its next sync, whole.
    let report = phone_b.sync().expect("sync");
    assert!(report.rejected.is_empty(), "{report:?}");
    let got = phone_b.list_customers().expect("list");
    assert_eq!(
        sorted(got.iter().map(|v| v.customer.id.as_string()).collect()),
        sorted(ids.clone())
    );
    assert!(got.iter().all(|v| v.customer.owner == b));
    let noted = phone_b.get_customer(ids[0].clone()).expect("noted");
    assert_eq!(noted.customer.notes, "Gate code 4711; ask for Ms Weber.");
    assert_eq!(noted.customer.created_by, a);
    let actors = actors_on_phone(&h, &phone_b, &ids[0]);
    assert!(
        actors.contains(&a_actor),
        "the history on the new phone holds the old phone's changes: {actors:?} vs {a_actor}"
    );
    assert!(
        actors.len() >= 3,
        "creation, A's note and the move: {actors:?}"
    );
    for id in &ids {
        assert_eq!(owner_on_server(&h, &admin, id), json!(b.to_string()));
    }

    // Retried: nothing left to move, nothing recorded, and it says so.
    let (status, again) = h.post(
        &format!("/v1/admin/users/{a}/handover"),
        Some(&admin),
        &json!({"to": b.to_string(), "disable": true}),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["moved"], json!([]));
    assert_eq!(again["handover"], Value::Null);
    assert!(
        again["message"]
            .as_str()
            .expect("message")
            .contains("nothing was moved"),
        "{again}"
    );

    // The audit: one handover, who, to whom, what.
    let (status, list) = h.get("/v1/admin/handovers", Some(&admin));
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(handover_id));
    assert_eq!(list[0]["from_user_id"], json!(a.to_string()));
    assert_eq!(list[0]["to_user_id"], json!(b.to_string()));
    assert_eq!(list[0]["disabled"], json!(true));
    assert_eq!(ids_of(&list[0]["customer_ids"]), sorted(ids.clone()));
    assert_eq!(list[0]["undone_at"], Value::Null);

    // Undoing needs the user back: refused clearly while they are disabled.
    let (status, body) = h.post(
        &format!("/v1/admin/handovers/{handover_id}/undo"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("user_disabled")),
        "{body}"
    );
    assert_eq!(owner_on_server(&h, &admin, &ids[0]), json!(b.to_string()));
}

fn pool_hand_out_and_undo(h: Harness) {
    let Acme { h, a, b, c, .. } = acme(h);
    let (phone_a, ids) = a_with_customers(&h);
    let admin = h.token("acme", "admin@acme.test");
    let boss1 = h.token("acme", "boss1@acme.test");
    let boss2_phone = h.phone("acme", "boss2@acme.test");
    boss2_phone.sync().expect("sync");
    assert!(
        boss2_phone.list_customers().expect("list").is_empty(),
        "another team's customers are not boss2's"
    );

    let (status, body) = h.post(
        &format!("/v1/admin/users/{a}/handover"),
        Some(&admin),
        &json!({"to": "pool"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(&body["moved"]), sorted(ids.clone()));
    assert_eq!(body["disabled"], json!(false));
    let handover_id = body["handover"]["id"]
        .as_str()
        .expect("recorded")
        .to_owned();
    assert_eq!(body["handover"]["to_user_id"], Value::Null);

    // The rep no longer reads them; every manager does.
    phone_a.sync().expect("sync");
    assert!(phone_a.list_customers().expect("list").is_empty());
    boss2_phone.sync().expect("sync");
    assert_eq!(boss2_phone.list_customers().expect("list").len(), 3);
    let (status, pool) = h.get("/v1/customers/pool", Some(&boss1));
    assert_eq!(status, 200, "{pool}");
    assert_eq!(ids_of(&pool), sorted(ids.clone()));
    let rep_c = h.token("acme", "c@acme.test");
    let (status, body) = h.get("/v1/customers/pool", Some(&rep_c));
    assert_eq!((status, body["error"].clone()), (403, json!("forbidden")));
    let (status, _) = h.get(&format!("/v1/customers/{}", ids[1]), Some(&rep_c));
    assert_eq!(status, 404, "a rep does not read the pool");

    // boss1 hands one to c (their team): c's phone receives it with its history.
    let phone_c = h.phone("acme", "c@acme.test");
    phone_c.sync().expect("sync");
    let (status, body) = h.post(
        &format!("/v1/customers/{}/assign", ids[0]),
        Some(&boss1),
        &json!({"owner": c.to_string()}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["owner"], json!(c.to_string()));
    phone_c.sync().expect("sync");
    let got = phone_c.get_customer(ids[0].clone()).expect("c has it");
    assert_eq!(got.customer.notes, "Gate code 4711; ask for Ms Weber.");
    // ...and the other manager's phone drops it: it left the pool for boss1's team.
    boss2_phone.sync().expect("sync");
    assert!(boss2_phone.get_customer(ids[0].clone()).is_err());
    assert_eq!(boss2_phone.list_customers().expect("list").len(), 2);

    // boss1 may not hand one to b, who is in boss2's team; nothing moves.
    let (status, body) = h.post(
        &format!("/v1/customers/{}/assign", ids[1]),
        Some(&boss1),
        &json!({"owner": b.to_string()}),
    );
    assert_eq!(
        (status, body["error"].clone()),
        (403, json!("owner_not_allowed")),
        "{body}"
    );
    let (_, pool) = h.get("/v1/customers/pool", Some(&boss1));
    assert_eq!(ids_of(&pool), sorted(ids[1..].to_vec()));
    // A rep cannot hand out at all.
    let (status, body) = h.post(
        &format!("/v1/customers/{}/assign", ids[1]),
        Some(&rep_c),
        &json!({"owner": c.to_string()}),
    );
    assert_eq!((status, body["error"].clone()), (403, json!("forbidden")));

    // Undo: the two still in the pool go back to a; the one c has now stays with c.
    let (status, body) = h.post(
        &format!("/v1/admin/handovers/{handover_id}/undo"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(&body["moved_back"]), sorted(ids[1..].to_vec()));
    assert_eq!(
        body["skipped"],
        json!([{"customer_id": ids[0], "owner": c.to_string()}])
    );
    assert!(body["handover"]["undone_at"].is_i64());
    assert_eq!(owner_on_server(&h, &admin, &ids[0]), json!(c.to_string()));
    assert_eq!(owner_on_server(&h, &admin, &ids[1]), json!(a.to_string()));
    phone_a.sync().expect("sync");
    assert_eq!(
        sorted(
            phone_a
                .list_customers()
                .expect("list")
                .iter()
                .map(|v| v.customer.id.as_string())
                .collect()
        ),
        sorted(ids[1..].to_vec())
    );
    let (_, pool) = h.get("/v1/customers/pool", Some(&boss1));
    assert_eq!(pool, json!([]));

    // Once only.
    let (status, again) = h.post(
        &format!("/v1/admin/handovers/{handover_id}/undo"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(
        (status, again["error"].clone()),
        (409, json!("already_undone")),
        "{again}"
    );
    let (_, list) = h.get("/v1/admin/handovers", Some(&admin));
    assert_eq!(
        list[0]["undo_report"]["skipped"],
        json!([{"customer_id": ids[0], "owner": c.to_string()}])
    );
}

fn who_may_hand_over(h: Harness) {
    let Acme {
        h,
        a,
        b,
        hr,
        outsider,
        ..
    } = acme(h);
    let (_phone_a, ids) = a_with_customers(&h);
    let admin = h.token("acme", "admin@acme.test");
    let rep = h.token("acme", "c@acme.test");
    let boss = h.token("acme", "boss1@acme.test");
    let path = format!("/v1/admin/users/{a}/handover");
    let to_b = json!({"to": b.to_string()});

    for token in [&rep, &boss] {
        let (status, body) = h.post(&path, Some(token), &to_b);
        assert_eq!(
            (status, body["error"].clone()),
            (403, json!("forbidden")),
            "{body}"
        );
        let (status, _) = h.get("/v1/admin/handovers", Some(token));
        assert_eq!(status, 403);
    }
    let (status, _) = h.post(
        &format!("/v1/admin/handovers/{}/undo", uuid::Uuid::now_v7()),
        Some(&rep),
        &json!({}),
    );
    assert_eq!(status, 403);

    // Another tenant's user is not found, as the one handed from or to.
    let (status, body) = h.post(
        &format!("/v1/admin/users/{outsider}/handover"),
        Some(&admin),
        &to_b,
    );
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("not_found")),
        "{body}"
    );
    let (status, body) = h.post(&path, Some(&admin), &json!({"to": outsider.to_string()}));
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("not_found")),
        "{body}"
    );
    let (status, body) = h.post(
        &format!("/v1/customers/{}/assign", ids[0]),
        Some(&admin),
        &json!({"owner": outsider.to_string()}),
    );
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("not_found")),
        "{body}"
    );

    // Bad targets, each with its own code.
    let cases = [
        (json!({"to": a.to_string()}), 400, "same_user"),
        (json!({"to": hr.to_string()}), 422, "receiver_not_allowed"),
        (json!({"to": "everyone"}), 400, "invalid_target"),
        (json!({"from": "x"}), 400, "invalid_request"),
    ];
    for (req, want_status, want_code) in cases {
        let (status, body) = h.post(&path, Some(&admin), &req);
        assert_eq!(status, want_status, "{req}: {body}");
        assert_eq!(body["error"], json!(want_code), "{req}: {body}");
    }
    let (status, body) = h.post(
        &format!("/v1/admin/handovers/{}/undo", uuid::Uuid::now_v7()),
        Some(&admin),
        &json!({}),
    );
    assert_eq!((status, body["error"].clone()), (404, json!("not_found")));

    // The routes are described.
    let (_, spec) = h.get("/openapi.json", None);
    for route in [
        "/v1/admin/users/{id}/handover",
        "/v1/admin/users/{id}/enable",
        "/v1/admin/handovers",
        "/v1/admin/handovers/{id}/undo",
        "/v1/customers/pool",
        "/v1/customers/{id}/assign",
    ] {
        assert!(
            spec["paths"].get(route).is_some(),
            "{route} is not described"
        );
    }
    assert!(
        spec["components"]["schemas"]
            .get("HandoverRequest")
            .is_some()
    );

    // None of it stored anything.
    let (_, list) = h.get("/v1/admin/handovers", Some(&admin));
    assert_eq!(list, json!([]));
    for id in &ids {
        assert_eq!(owner_on_server(&h, &admin, id), json!(a.to_string()));
    }
}

on_both_stores!(
    handover_to_a_rep_with_disable,
    pool_hand_out_and_undo,
    who_may_hand_over
);
