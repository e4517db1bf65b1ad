//! Bad input gets a 4xx with a stable code and a sentence, stores nothing, and the server keeps
//! serving everyone else. Tokens: expired, forged, `alg: none`, reused refresh tokens.

use automerge::ActorId;
use base64::Engine;
use fieldsync_server::auth::Tokens;
use fieldsync_sync::{Customer, DeviceId, GeoPoint, Record, Role, UserId};
use fieldsync_tests::Harness;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn setup() -> (Harness, String, UserId) {
    let h = Harness::start();
    let t = h.tenant("acme");
    let rep = h.user(t, "rep@acme.test", Role::FieldRep, None);
    let tok = h.token("acme", "rep@acme.test");
    (h, tok, rep)
}

fn customer_changes(c: &Customer) -> Vec<String> {
    let doc = Record::Customer(c.clone())
        .to_new_doc(ActorId::random())
        .expect("doc");
    doc.get_changes(&[])
        .iter()
        .map(|ch| B64.encode(ch.raw_bytes()))
        .collect()
}

fn push_body(doc_id: &str, kind: &str, changes: Vec<String>) -> Value {
    json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": [{"doc_id": doc_id, "kind": kind, "changes": changes}]})
}

fn assert_error(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], json!(code), "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| m.len() > 10),
        "a sentence for people: {}",
        got.1
    );
}

fn stored(h: &Harness) -> i64 {
    let t =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant");
    h.rt.block_on(h.store.count_documents(t.id)).expect("count")
}

#[test]
fn malformed_requests_are_refused_with_codes_and_store_nothing() {
    let (h, tok, rep) = setup();
    let t = Some(tok.as_str());
    assert_error(
        h.post_raw("/v1/sync/push", t, b"{not json".to_vec()),
        400,
        "invalid_json",
    );
    assert_error(
        h.post("/v1/sync/push", t, &json!({"v": 1, "docs": "nope"})),
        400,
        "invalid_request",
    );
    assert_error(h.post("/v1/sync/push", t, &json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": [{"doc_id": "x", "kind": "customer", "changes": []}]})), 400, "invalid_request");
    assert_error(
        h.post(
            "/v1/sync/push",
            t,
            &push_body(
                &uuid::Uuid::now_v7().to_string(),
                "customer",
                vec!["!!not base64!!".into()],
            ),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        h.post(
            "/v1/sync/push",
            t,
            &json!({"v": 9, "batch_id": uuid::Uuid::now_v7(), "docs": []}),
        ),
        400,
        "unsupported_protocol_version",
    );
    assert_error(
        h.post("/v1/sync/pull", t, &json!({"v": 1, "cursor": "garbage"})),
        400,
        "invalid_cursor",
    );
    assert_error(
        h.post("/v1/sync/pull", t, &json!({"v": 1, "cursor": "s999999"})),
        400,
        "invalid_cursor",
    );
    assert_error(h.get("/v1/customers/not-a-uuid", t), 400, "invalid_id");
    assert_error(h.get("/v1/nothing-here", t), 404, "no_such_route");

    // Oversized request.
    let big = vec![b' '; fieldsync_sync::protocol::MAX_REQUEST_BYTES + 1024];
    assert_error(
        h.post_raw("/v1/sync/push", t, big),
        413,
        "payload_too_large",
    );

    // Per-document problems are per-document rejections.
    let c = Customer::new("Acme", rep);
    let mut truncated = B64.decode(&customer_changes(&c)[0]).expect("b64");
    truncated.truncate(truncated.len() / 2);
    let cases = [
        (
            push_body(&c.id.as_string(), "customer", vec![B64.encode(&truncated)]),
            "malformed_change",
        ),
        (
            push_body(
                &c.id.as_string(),
                "customer",
                vec![B64.encode(b"definitely not automerge")],
            ),
            "malformed_change",
        ),
        (
            push_body(&c.id.as_string(), "spaceship", customer_changes(&c)),
            "unknown_record_kind",
        ),
        (
            push_body(&c.id.as_string(), "project", customer_changes(&c)),
            "kind_mismatch",
        ),
        (
            push_body(
                &uuid::Uuid::now_v7().to_string(),
                "customer",
                customer_changes(&c),
            ),
            "id_mismatch",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = h.post("/v1/sync/push", t, &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["results"][0]["status"],
            json!("rejected"),
            "{answer}"
        );
        assert_eq!(
            answer["results"][0]["error"]["code"],
            json!(code),
            "{answer}"
        );
    }
    let mut bad = Customer::new("Nowhere", rep);
    bad.location = Some(GeoPoint {
        lat: 91.0,
        lon: 10.0,
    });
    let (_, answer) = h.post(
        "/v1/sync/push",
        t,
        &push_body(&bad.id.as_string(), "customer", customer_changes(&bad)),
    );
    assert_eq!(
        answer["results"][0]["error"]["code"],
        json!("invalid_latitude"),
        "{answer}"
    );
    let mut bad = Customer::new("Far east", rep);
    bad.location = Some(GeoPoint {
        lat: 10.0,
        lon: 181.0,
    });
    let (_, answer) = h.post(
        "/v1/sync/push",
        t,
        &push_body(&bad.id.as_string(), "customer", customer_changes(&bad)),
    );
    assert_eq!(
        answer["results"][0]["error"]["code"],
        json!("invalid_longitude"),
        "{answer}"
    );
    assert_eq!(stored(&h), 0, "nothing stored");

    // Everyone else is still served, and a good push still works.
    assert!(h.healthy());
    let (_, answer) = h.post(
        "/v1/sync/push",
        t,
        &push_body(&c.id.as_string(), "customer", customer_changes(&c)),
    );
    assert_eq!(
        answer["results"][0]["status"],
        json!("accepted"),
        "{answer}"
    );
    assert_eq!(stored(&h), 1);
}

#[test]
fn a_retried_push_returns_the_same_answer_and_duplicates_nothing() {
    let (h, tok, rep) = setup();
    let c = Customer::new("Once", rep);
    let body = push_body(&c.id.as_string(), "customer", customer_changes(&c));
    let first = h.post("/v1/sync/push", Some(&tok), &body);
    let second = h.post("/v1/sync/push", Some(&tok), &body);
    assert_eq!(first, second);
    assert_eq!(stored(&h), 1);
    // Another device of the same user (a new login) sees exactly one log entry.
    let other_device = h.token("acme", "rep@acme.test");
    let (_, pulled) = h.post(
        "/v1/sync/pull",
        Some(&other_device),
        &json!({"v": 1, "cursor": "s0"}),
    );
    assert_eq!(
        pulled["items"].as_array().expect("items").len(),
        1,
        "one log entry: {pulled}"
    );
}

#[test]
fn bad_tokens_are_refused() {
    let (h, tok, rep) = setup();
    let pull = json!({"v": 1});
    assert_error(h.post("/v1/sync/pull", None, &pull), 401, "missing_token");
    assert_error(
        h.post("/v1/sync/pull", Some("not.a.jwt"), &pull),
        401,
        "invalid_token",
    );
    // Signed by someone else.
    let t =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant");
    let forged = Tokens::new(b"attacker's secret", 900)
        .issue(t.id, rep, DeviceId::new(), Role::Admin)
        .expect("sign");
    assert_error(
        h.post("/v1/sync/pull", Some(&forged), &pull),
        401,
        "invalid_token",
    );
    // alg: none, with claims copied from a real token and the role raised.
    let claims = tok.split('.').nth(1).expect("claims");
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut c: Value = serde_json::from_slice(&url.decode(claims).expect("b64")).expect("json");
    c["role"] = json!("admin");
    let none = format!(
        "{}.{}.",
        url.encode(br#"{"alg":"none","typ":"JWT"}"#),
        url.encode(c.to_string())
    );
    assert_error(
        h.post("/v1/sync/pull", Some(&none), &pull),
        401,
        "invalid_token",
    );
    // Expired, though correctly signed.
    let secret = h.rt.block_on(h.store.signing_secret()).expect("secret");
    let device: DeviceId = c["did"].as_str().expect("did").parse().expect("uuid");
    let expired = Tokens::new(&secret, 900)
        .issue_at(
            t.id,
            rep,
            device,
            Role::FieldRep,
            fieldsync_server::auth::unix_secs() - 3600,
        )
        .expect("sign");
    assert_error(
        h.post("/v1/sync/pull", Some(&expired), &pull),
        401,
        "token_expired",
    );
    assert_eq!(h.post("/v1/sync/pull", Some(&tok), &pull).0, 200);
}

#[test]
fn refresh_tokens_rotate_and_a_reused_one_revokes_the_device() {
    let (h, _, _) = setup();
    let refresh =
        |token: &Value| h.post("/v1/auth/refresh", None, &json!({"refresh_token": token}));
    let (_, first) = h.post(
        "/v1/auth/login",
        None,
        &json!({"tenant": "acme", "email": "rep@acme.test", "password": fieldsync_tests::PASSWORD}),
    );
    let (status, second) = refresh(&first["refresh_token"]);
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The phone never got `second` (the answer was lost) and retries with the first token at
    // once: that is not theft, it gets a new pair and the lost one stops working.
    let (status, retried) = refresh(&first["refresh_token"]);
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        refresh(&second["refresh_token"]).0,
        401,
        "the lost token is dead"
    );
    let (status, third) = refresh(&retried["refresh_token"]);
    assert_eq!(status, 200, "{third}");
    let access = third["access_token"].as_str().expect("access").to_owned();
    assert_eq!(
        h.post("/v1/sync/pull", Some(&access), &json!({"v": 1})).0,
        200
    );
    // Someone replays an old token whose successor was used: the device is signed out at once.
    assert_error(
        refresh(&first["refresh_token"]),
        401,
        "refresh_token_reused",
    );
    assert_error(
        h.post("/v1/sync/pull", Some(&access), &json!({"v": 1})),
        403,
        "device_revoked",
    );
    assert_eq!(refresh(&third["refresh_token"]).0, 401);
    assert_error(
        h.post(
            "/v1/auth/login",
            None,
            &json!({"tenant": "acme", "email": "rep@acme.test", "password": "wrong"}),
        ),
        401,
        "invalid_credentials",
    );
    assert_error(
        h.post(
            "/v1/auth/login",
            None,
            &json!({"tenant": "nope", "email": "rep@acme.test", "password": "wrong"}),
        ),
        401,
        "invalid_credentials",
    );
}

#[test]
fn repeated_wrong_passwords_lock_the_account_for_a_while() {
    let (h, _, _) = setup();
    let wrong = json!({"tenant": "acme", "email": "rep@acme.test", "password": "guess"});
    for _ in 0..5 {
        assert_error(
            h.post("/v1/auth/login", None, &wrong),
            401,
            "invalid_credentials",
        );
    }
    assert_error(
        h.post("/v1/auth/login", None, &wrong),
        429,
        "too_many_attempts",
    );
    // Even the right password waits out the window; other accounts are not affected.
    let right =
        json!({"tenant": "acme", "email": "REP@acme.test", "password": fieldsync_tests::PASSWORD});
    assert_error(
        h.post("/v1/auth/login", None, &right),
        429,
        "too_many_attempts",
    );
    let t =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant")
            .id;
    h.user(t, "other@acme.test", Role::FieldRep, None);
    h.token("acme", "other@acme.test"); // logs in (asserts 200)
}

#[test]
fn repair_batch_size_media_type_and_admin_refusals_have_codes() {
    let (h, tok, rep) = setup();
    let t = Some(tok.as_str());
    let c = Customer::new("Acme", rep);
    let (_, answer) = h.post(
        "/v1/sync/push",
        t,
        &push_body(&c.id.as_string(), "customer", customer_changes(&c)),
    );
    assert_eq!(
        answer["results"][0]["status"],
        json!("accepted"),
        "{answer}"
    );
    let id = c.id.as_string();
    assert_error(
        h.post(
            "/v1/sync/repair",
            t,
            &json!({"v": 1, "docs": [{"doc_id": id, "heads": ["not-a-hash"]}]}),
        ),
        400,
        "invalid_heads",
    );
    assert_error(
        h.post(
            "/v1/sync/repair/sync",
            t,
            &json!({"v": 1, "docs": [{"doc_id": id, "message": B64.encode(b"garbage")}]}),
        ),
        400,
        "invalid_sync_message",
    );
    let many: Vec<Value> = (0..fieldsync_sync::protocol::MAX_PUSH_DOCS + 1)
        .map(|_| json!({"doc_id": uuid::Uuid::now_v7(), "kind": "customer", "changes": []}))
        .collect();
    assert_error(
        h.post(
            "/v1/sync/push",
            t,
            &json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": many}),
        ),
        413,
        "too_many_documents",
    );
    // A JSON body without the JSON content type.
    let (status, body) = {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(format!("{}/v1/sync/pull", h.url))
            .header("Authorization", format!("Bearer {tok}"))
            .header("Content-Type", "text/plain")
            .send(&br#"{"v":1}"#[..])
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str::<Value>(&text).expect("json"))
    };
    assert_error((status, body), 415, "unsupported_media_type");
    // An admin cannot lock themselves out.
    let tenant =
        h.rt.block_on(h.store.tenant_by_slug("acme"))
            .expect("q")
            .expect("tenant")
            .id;
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let admin_tok = h.token("acme", "admin@acme.test");
    assert_error(
        h.post(
            &format!("/v1/admin/users/{admin}/disable"),
            Some(&admin_tok),
            &json!({}),
        ),
        400,
        "cannot_disable_self",
    );
    assert!(h.healthy());
}
