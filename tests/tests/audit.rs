//! The audit end to end, on SQLite and on PostgreSQL: a customer edited offline on two phones
//! of two people and a visit reviewed over HTTP have histories that name the right people,
//! devices, fields and values, in causal order with the concurrent pair flagged; the change
//! search filters by person and period; reads of other people's attendance and location data
//! are in the access log, reads of one's own are not; who may ask is checked.

use fieldsync_mobile_core::{FieldEdit, NewCustomer};
use fieldsync_sync::{
    CheckOut, DocId, Evidence, Provider, Record, Role, UserId, Visit, VisitOutcome,
};
use fieldsync_tests::{Harness, Phone, on_both_stores};
use serde_json::{Value, json};

fn edit(field: &str, value: &str) -> FieldEdit {
    FieldEdit {
        field: field.into(),
        value: value.into(),
    }
}

fn now_ms() -> i64 {
    fieldsync_server::store::now_ms()
}

/// A good GPS fix at the customer, now.
fn fix(lat: f64, lon: f64) -> Evidence {
    let at = now_ms();
    Evidence {
        lat,
        lon,
        accuracy_m: 8.0,
        altitude_m: None,
        provider: Provider::Gps,
        fix_time_ms: at - 2_000,
        mock: false,
        wifi_bssid: None,
        device_time_ms: at,
        monotonic_ms: None,
        server_offset_ms: None,
    }
}

struct World {
    h: Harness,
    admin: String,
    boss: String,
    rep: String,
    hr: String,
    boss_id: UserId,
    rep_id: UserId,
    hr_id: UserId,
    rep_phone: Phone,
    boss_phone: Phone,
    customer: String,
    visit: DocId,
    /// Between the customer's creation and everything after it.
    after_create: i64,
}

/// Acme: an admin, HR, a manager with one rep, and a rep outside the team. The rep creates a
/// customer on their phone; rep and manager edit it offline on their phones at once; the rep
/// makes a visit there and the manager approves it over HTTP.
fn world(h: Harness) -> World {
    let t = h.tenant("acme");
    h.user(t, "admin@acme.test", Role::Admin, None);
    let hr_id = h.user(t, "hr@acme.test", Role::Hr, None);
    let boss_id = h.user(t, "boss@acme.test", Role::Manager, None);
    let rep_id = h.user(t, "rep@acme.test", Role::FieldRep, Some("boss@acme.test"));
    h.user(t, "other@acme.test", Role::FieldRep, None);
    let rep_phone = h.phone("acme", "rep@acme.test");
    let boss_phone = h.phone("acme", "boss@acme.test");
    let customer = rep_phone
        .create_customer(NewCustomer {
            name: "Acme Ltd".into(),
            phone: Some("+86 100".into()),
            lat: Some(30.65),
            lon: Some(104.06),
            notes: Some("Call before visiting.".into()),
            ..Default::default()
        })
        .expect("create")
        .customer
        .id
        .as_string();
    rep_phone.sync().expect("sync");
    boss_phone.sync().expect("sync");
    assert!(boss_phone.get_customer(customer.clone()).is_ok());
    // Entries from here on are received at or after `after_create`; the creation before it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let after_create = now_ms();

    // Both offline, neither knowing of the other's change.
    rep_phone
        .edit_customer(
            customer.clone(),
            vec![
                edit("phone", "+86 138 0000 0001"),
                edit("notes", "Urgent: Call before visiting."),
            ],
        )
        .expect("edit");
    boss_phone
        .edit_customer(customer.clone(), vec![edit("email", "buyer@acme.example")])
        .expect("edit");
    rep_phone.sync().expect("sync");
    boss_phone.sync().expect("sync");
    rep_phone.sync().expect("sync");

    let admin = h.token("acme", "admin@acme.test");
    let boss = h.token("acme", "boss@acme.test");
    let rep = h.token("acme", "rep@acme.test");
    let hr = h.token("acme", "hr@acme.test");

    let mut v = Visit::new(customer.parse().expect("id"), rep_id, rep_id);
    v.purpose = "Show the new frames".into();
    v.check_in = Some(fix(30.65, 104.06));
    v.check_out = Some(CheckOut {
        evidence: fix(30.65, 104.06),
        notes: "Ordered 40 frames.".into(),
        outcome: VisitOutcome::Order,
        next_follow_up: None,
    });
    let visit = v.id;
    let answer = h.push_new(&rep, &[Record::Visit(v)]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    let (s, body) = h.post(
        &format!("/v1/visits/{visit}/reviews"),
        Some(&boss),
        &json!({"decision": "approved", "comment": "Good."}),
    );
    assert_eq!(s, 201, "{body}");
    World {
        h,
        admin,
        boss,
        rep,
        hr,
        boss_id,
        rep_id,
        hr_id,
        rep_phone,
        boss_phone,
        customer,
        visit,
        after_create,
    }
}

fn fields(change: &Value) -> Vec<&str> {
    change["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect()
}

fn field<'a>(change: &'a Value, name: &str) -> &'a Value {
    change["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {change}"))
}

fn a_records_history_names_people_devices_fields_and_the_concurrent_pair(h: Harness) {
    let w = world(h);
    let h = &w.h;
    let (s, hist) = h.get(&format!("/v1/audit/records/{}", w.customer), Some(&w.admin));
    assert_eq!(s, 200, "{hist}");
    assert_eq!(hist["kind"], "customer");
    assert_eq!(hist["total"], 3, "{hist}");
    let changes = hist["changes"].as_array().expect("changes");

    // First the creation, by the rep on their phone, concurrent with nothing.
    let create = &changes[0];
    assert_eq!(create["by"]["user_id"], json!(w.rep_id), "{create}");
    assert_eq!(create["by"]["email"], "rep@acme.test");
    assert_eq!(create["by"]["device_id"], json!(w.rep_phone.device_id()));
    assert_eq!(create["by"]["by_server"], false);
    assert!(create["by"]["device_name"].is_string(), "{create}");
    assert_eq!(create["concurrent"], false);
    assert_eq!(field(create, "name")["new"], "Acme Ltd");
    assert_eq!(field(create, "notes")["op"], "text");

    // Then the two offline edits, each made without the other.
    let (mine, boss): (Vec<&Value>, Vec<&Value>) = changes[1..]
        .iter()
        .partition(|c| c["by"]["email"] == "rep@acme.test");
    let (mine, boss) = (mine[0], boss[0]);
    assert_eq!(mine["by"]["device_id"], json!(w.rep_phone.device_id()));
    assert_eq!(boss["by"]["user_id"], json!(w.boss_id));
    assert_eq!(boss["by"]["device_id"], json!(w.boss_phone.device_id()));
    for c in [mine, boss] {
        assert_eq!(c["concurrent"], true, "{c}");
        assert_eq!(c["deps"], json!([create["hash"]]), "{c}");
    }
    assert_eq!(mine["concurrent_with"], json!([boss["hash"]]));
    assert_eq!(boss["concurrent_with"], json!([mine["hash"]]));
    let phone = field(mine, "phone");
    assert_eq!(
        (&phone["op"], &phone["old"], &phone["new"]),
        (
            &json!("set"),
            &json!("+86 100"),
            &json!("+86 138 0000 0001")
        )
    );
    let notes = field(mine, "notes");
    assert_eq!(
        (&notes["op"], &notes["inserted"]),
        (&json!("text"), &json!(8))
    );
    assert_eq!(notes["excerpt"], "Urgent: ");
    assert_eq!(fields(boss), ["email"], "{boss}");
    assert_eq!(field(boss, "email")["new"], "buyer@acme.example");
    assert!(field(boss, "email").get("old").is_none(), "{boss}");

    // The visit: made by the rep, approved by the manager through the server.
    let (s, hist) = h.get(&format!("/v1/audit/records/{}", w.visit), Some(&w.boss));
    assert_eq!(s, 200, "{hist}");
    let changes = hist["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2, "{hist}");
    assert_eq!(changes[0]["by"]["email"], "rep@acme.test");
    let review = &changes[1];
    assert_eq!(review["by"]["by_server"], true, "{review}");
    assert_eq!(review["by"]["user_id"], json!(w.boss_id));
    assert_eq!(review["by"]["label"], "server on behalf of boss@acme.test");
    assert!(review["by"]["device_name"].is_null());
    assert!(
        fields(review).iter().any(|f| f.starts_with("reviews.")),
        "{review}"
    );
    assert!(
        review["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["new"] == "Good."),
        "{review}"
    );

    // Pages: one change at a time, in the same order.
    let (_, first) = h.get(
        &format!("/v1/audit/records/{}?limit=2", w.customer),
        Some(&w.admin),
    );
    assert_eq!(first["changes"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, rest) = h.get(
        &format!("/v1/audit/records/{}?limit=2&cursor={cursor}", w.customer),
        Some(&w.admin),
    );
    assert_eq!(rest["changes"].as_array().map(Vec::len), Some(1));
    assert!(rest["next_cursor"].is_null());

    // Who may not ask: a rep (even of their own record), HR, another team's manager, another
    // tenant's admin.
    let path = format!("/v1/audit/records/{}", w.customer);
    let (s, body) = h.get(&path, Some(&w.rep));
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (s, _) = h.get(&path, Some(&w.hr));
    assert_eq!(s, 403);
    let t = h.tenant_of(&w.admin);
    h.user(t, "boss2@acme.test", Role::Manager, None);
    let boss2 = h.token("acme", "boss2@acme.test");
    let (s, body) = h.get(&path, Some(&boss2));
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let g = h.tenant("globex");
    h.user(g, "admin@globex.test", Role::Admin, None);
    let globex = h.token("globex", "admin@globex.test");
    let (s, body) = h.get(&path, Some(&globex));
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (s, body) = h.get("/v1/audit/records/nope", Some(&w.admin));
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_id")),
        "{body}"
    );
    let (s, body) = h.get(&format!("{path}?limit=0"), Some(&w.admin));
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_limit")),
        "{body}"
    );
}

fn seqs(body: &Value) -> Vec<(String, String)> {
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["doc_id"].as_str().unwrap_or_default().to_owned(),
                e["by"]["email"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn the_change_search_filters_by_person_kind_and_period(h: Harness) {
    let w = world(h);
    let h = &w.h;
    let (s, all) = h.get("/v1/audit/changes", Some(&w.admin));
    assert_eq!(s, 200, "{all}");
    let visit = w.visit.as_string();
    // Newest first: the review, the visit, then the customer's entries (two edits, creation).
    let got = seqs(&all);
    assert_eq!(got.len(), 5, "{all}");
    assert_eq!(got[0], (visit.clone(), "boss@acme.test".into()));
    assert_eq!(got[1], (visit.clone(), "rep@acme.test".into()));
    assert_eq!(got[4], (w.customer.clone(), "rep@acme.test".into()));
    assert_eq!(all["entries"][0]["by"]["by_server"], true);
    let create = &all["entries"][4];
    assert_eq!(
        create["changes"].as_array().map(Vec::len),
        Some(1),
        "{create}"
    );
    assert_eq!(field(&create["changes"][0], "name")["new"], "Acme Ltd");

    // By person: the manager's edit of the customer and their review.
    let (_, boss) = h.get(
        &format!("/v1/audit/changes?user={}", w.boss_id),
        Some(&w.admin),
    );
    assert_eq!(
        seqs(&boss),
        [
            (visit.clone(), "boss@acme.test".to_owned()),
            (w.customer.clone(), "boss@acme.test".to_owned())
        ]
    );
    assert_eq!(fields(&boss["entries"][1]["changes"][0]), ["email"]);

    // By kind and by period: the creation is before `after_create`, the rest after.
    let (_, customers) = h.get("/v1/audit/changes?kind=customer", Some(&w.admin));
    assert_eq!(seqs(&customers).len(), 3);
    let (_, later) = h.get(
        &format!("/v1/audit/changes?kind=customer&from={}", w.after_create),
        Some(&w.admin),
    );
    assert_eq!(seqs(&later).len(), 2, "{later}");
    let (_, earlier) = h.get(
        &format!("/v1/audit/changes?user={}&to={}", w.rep_id, w.after_create),
        Some(&w.admin),
    );
    assert_eq!(
        seqs(&earlier),
        [(w.customer.clone(), "rep@acme.test".to_owned())]
    );

    // Pages.
    let (_, p1) = h.get("/v1/audit/changes?limit=3", Some(&w.admin));
    let cursor = p1["next_cursor"].as_str().expect("cursor");
    let (_, p2) = h.get(
        &format!("/v1/audit/changes?limit=3&cursor={cursor}"),
        Some(&w.admin),
    );
    let mut paged = seqs(&p1);
    paged.extend(seqs(&p2));
    assert_eq!(paged, got);
    assert!(p2["next_cursor"].is_null());

    // Refusals.
    for (q, code) in [
        ("kind=invoice", "unknown_record_kind"),
        ("from=yesterday", "invalid_time"),
        ("from=2026-11-03&to=2026-11-01", "invalid_period"),
        ("user=bob", "invalid_id"),
        ("limit=1000", "invalid_limit"),
        ("cursor=abc", "invalid_cursor"),
    ] {
        let (s, body) = h.get(&format!("/v1/audit/changes?{q}"), Some(&w.admin));
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some(code)),
            "{q}: {body}"
        );
    }
    for who in [&w.rep, &w.boss, &w.hr] {
        let (s, body) = h.get("/v1/audit/changes", Some(who));
        assert_eq!(
            (s, body["error"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
    }
}

/// `(viewer, subject, scope, what)` of access-log entries.
fn rows(body: &Value) -> Vec<(String, String, String, String)> {
    body["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("entries in {body}"))
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (s("viewer"), s("subject"), s("scope"), s("what"))
        })
        .collect()
}

fn reads_of_others_data_are_in_the_access_log_and_own_reads_are_not(h: Harness) {
    let w = world(h);
    let h = &w.h;
    let (rep, boss, hr) = (
        w.rep_id.to_string(),
        w.boss_id.to_string(),
        w.hr_id.to_string(),
    );

    // The rep reads their own attendance and location data: nothing is logged.
    let (s, body) = h.get("/v1/attendance/me?month=2026-11", Some(&w.rep));
    assert_eq!(s, 200, "{body}");
    let (s, own) = h.get("/v1/field-events", Some(&w.rep));
    assert_eq!((s, own.as_array().map(Vec::len)), (200, Some(2)), "{own}");
    let (s, body) = h.get("/v1/visits", Some(&w.rep));
    assert_eq!(s, 200, "{body}");
    let (_, log) = h.get("/v1/audit/access", Some(&w.admin));
    assert_eq!(rows(&log), [], "own reads are not logged");

    // HR reports on the rep, then on everyone; the manager reads the team's field events.
    let (s, body) = h.get(
        &format!("/v1/reports/attendance?from=2026-11-01&to=2026-11-30&users={rep}"),
        Some(&w.hr),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = h.get(
        "/v1/reports/attendance?from=2026-11-01&to=2026-11-30&format=csv",
        Some(&w.hr),
    );
    assert_eq!(s, 200, "{body}");
    let (s, events) = h.get("/v1/field-events", Some(&w.boss));
    assert_eq!(
        (s, events.as_array().map(Vec::len)),
        (200, Some(2)),
        "{events}"
    );

    let (s, log) = h.get("/v1/audit/access", Some(&w.admin));
    assert_eq!(s, 200, "{log}");
    let got = rows(&log);
    let field_read = (
        boss.clone(),
        rep.clone(),
        format!("team:{boss}"),
        "field_events".to_owned(),
    );
    assert_eq!(got[0], field_read, "newest first: {log}");
    let report_on_rep = (
        hr.clone(),
        rep.clone(),
        "users".to_owned(),
        "attendance_report".to_owned(),
    );
    assert!(got.contains(&report_on_rep), "{log}");
    // The whole-tenant report: everyone but HR themselves, as a tenant-wide read.
    let tenant_wide: Vec<_> = got
        .iter()
        .filter(|r| r.0 == hr && r.2 == "tenant" && r.3 == "attendance_report")
        .collect();
    assert_eq!(tenant_wide.len(), 4, "{log}");
    assert!(tenant_wide.iter().all(|r| r.1 != hr));
    assert!(
        got.iter().all(|r| r.0 != rep),
        "the rep read nothing of others: {log}"
    );
    let detail = &log["entries"][0]["detail"];
    assert_eq!(detail["rows"], 2, "{detail}");

    // Filters: by viewer, by subject; and each person may see who read their data.
    let (_, by_boss) = h.get(&format!("/v1/audit/access?viewer={boss}"), Some(&w.hr));
    assert_eq!(rows(&by_boss), std::slice::from_ref(&field_read));
    let (s, mine) = h.get("/v1/audit/access?subject=me", Some(&w.rep));
    assert_eq!(s, 200, "{mine}");
    let mine = rows(&mine);
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(mine.iter().all(|r| r.1 == rep));
    assert!(mine.contains(&field_read) && mine.contains(&report_on_rep));
    let (_, later) = h.get(
        &format!("/v1/audit/access?subject={rep}&from={}", now_ms() + 60_000),
        Some(&w.admin),
    );
    assert_eq!(rows(&later), []);
    let (_, p1) = h.get("/v1/audit/access?limit=2", Some(&w.admin));
    let cursor = p1["next_cursor"].as_str().expect("cursor");
    let (_, p2) = h.get(
        &format!("/v1/audit/access?limit=50&cursor={cursor}"),
        Some(&w.admin),
    );
    let mut paged = rows(&p1);
    paged.extend(rows(&p2));
    assert_eq!(paged, got);

    // The manager's other views of the rep's whereabouts: visits, the map, the customer's
    // timeline; each read is one row about the rep.
    for path in [
        "/v1/visits".to_owned(),
        "/v1/geojson".to_owned(),
        format!("/v1/customers/{}/timeline", w.customer),
    ] {
        let (s, body) = h.get(&path, Some(&w.boss));
        assert_eq!(s, 200, "{path}: {body}");
    }
    let (_, by_boss) = h.get(&format!("/v1/audit/access?viewer={boss}"), Some(&w.admin));
    let team = format!("team:{boss}");
    let record = format!("record:{}", w.customer);
    let expected = [
        (
            boss.clone(),
            rep.clone(),
            record,
            "customer_timeline".to_owned(),
        ),
        (
            boss.clone(),
            rep.clone(),
            team.clone(),
            "geojson".to_owned(),
        ),
        (boss.clone(), rep.clone(), team, "visits".to_owned()),
        field_read.clone(),
    ];
    assert_eq!(rows(&by_boss), expected);

    // Who may ask.
    for q in ["", "?subject={boss}", "?viewer=me"] {
        let (s, body) = h.get(
            &format!("/v1/audit/access{}", q.replace("{boss}", &boss)),
            Some(&w.rep),
        );
        assert_eq!(
            (s, body["error"].as_str()),
            (403, Some("forbidden")),
            "{q}: {body}"
        );
    }
    let (s, _) = h.get("/v1/audit/access", Some(&w.boss));
    assert_eq!(s, 403);
    for (q, code) in [
        ("from=soon", "invalid_time"),
        ("cursor=12", "invalid_cursor"),
        ("subject=x", "invalid_id"),
    ] {
        let (s, body) = h.get(&format!("/v1/audit/access?{q}"), Some(&w.admin));
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some(code)),
            "{q}: {body}"
        );
    }
}

fn the_audit_routes_are_described(h: Harness) {
    let (_, doc) = h.get("/openapi.json", None);
    for p in [
        "/v1/audit/records/{id}",
        "/v1/audit/changes",
        "/v1/audit/access",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p}");
    }
}

on_both_stores!(
    a_records_history_names_people_devices_fields_and_the_concurrent_pair,
    the_change_search_filters_by_person_kind_and_period,
    reads_of_others_data_are_in_the_access_log_and_own_reads_are_not,
    the_audit_routes_are_described,
);
