//! Field check-in end to end, against the real server on SQLite and on PostgreSQL: visits
//! graded, reviewed and merged into the customer; attendance punches checked and graded;
//! make-ups decided by the right manager; the HR report across a DST change and two time zones,
//! as JSON, CSV and XLSX. Records are pushed as a phone pushes them (Automerge changes over
//! `/v1/sync/push`); the phone library's own field day is in `field_day.rs`.

use fieldsync_sync::record::project::{Geofence, Member, ProjectRole, Site};
use fieldsync_sync::{
    CheckOut, Customer, Direction, DocId, Evidence, GeoPoint, Makeup, Project, Punch, Record, Role,
    UserId, Visit, VisitOutcome,
};
use fieldsync_tests::{Harness, berlin, good_fix as ev, local_ms as local, on_both_stores};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

fn result(answer: &Value, i: usize) -> (&str, &str) {
    let r = &answer["results"][i];
    (
        r["status"].as_str().unwrap_or_default(),
        r["error"]["code"].as_str().unwrap_or_default(),
    )
}

fn accepted(answer: &Value) {
    for r in answer["results"].as_array().expect("results") {
        assert_eq!(r["status"], "accepted", "{answer}");
    }
}

struct Company {
    tenant: fieldsync_sync::TenantId,
    admin: String,
    hr: String,
    manager: String,
    other_manager: String,
    rep: String,
    rep_id: UserId,
    crew: String,
    crew_id: UserId,
    night: String,
    night_id: UserId,
    customer: DocId,
    project: DocId,
}

/// Berlin: a customer at Alexanderplatz, a depot (circle, 150 m) where a crew works a day
/// shift, and a Shanghai site where another works nights... (see each test).
fn company(h: &Harness) -> Company {
    let tenant = h.tenant("acme");
    h.user(tenant, "admin@acme.test", Role::Admin, None);
    h.user(tenant, "hr@acme.test", Role::Hr, None);
    h.user(tenant, "boss@acme.test", Role::Manager, None);
    h.user(tenant, "other@acme.test", Role::Manager, None);
    let rep_id = h.user(
        tenant,
        "rep@acme.test",
        Role::FieldRep,
        Some("boss@acme.test"),
    );
    let crew_id = h.user(
        tenant,
        "crew@acme.test",
        Role::FieldRep,
        Some("boss@acme.test"),
    );
    let night_id = h.user(
        tenant,
        "night@acme.test",
        Role::FieldRep,
        Some("other@acme.test"),
    );
    let token = |e: &str| h.token("acme", e);
    let (admin, rep) = (token("admin@acme.test"), token("rep@acme.test"));

    let mut c = Customer::new("Alex Optik", rep_id);
    c.location = Some(GeoPoint {
        lat: 52.5219,
        lon: 13.4132,
    });
    let customer = c.id;
    accepted(&h.push_new(&rep, &[Record::Customer(c)]));

    let admin_id: UserId = h.get("/v1/me", Some(&admin)).1["user_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let mut p = Project::new("Depots", admin_id);
    p.sites = vec![
        Site {
            id: "berlin".into(),
            name: "Berlin depot".into(),
            address: None,
            timezone: "Europe/Berlin".into(),
            geofence: Some(Geofence::Circle {
                center: GeoPoint {
                    lat: 52.5100,
                    lon: 13.4270,
                },
                radius_m: 150.0,
            }),
        },
        Site {
            id: "shanghai".into(),
            name: "Pudong yard".into(),
            address: None,
            timezone: "Asia/Shanghai".into(),
            geofence: Some(Geofence::Circle {
                center: GeoPoint {
                    lat: 31.2304,
                    lon: 121.4737,
                },
                radius_m: 300.0,
            }),
        },
    ];
    p.members = vec![
        Member {
            user: crew_id,
            role: ProjectRole::Crew,
        },
        Member {
            user: night_id,
            role: ProjectRole::Crew,
        },
    ];
    let project = p.id;
    accepted(&h.push_new(&admin, &[Record::Project(p)]));
    Company {
        tenant,
        hr: token("hr@acme.test"),
        manager: token("boss@acme.test"),
        other_manager: token("other@acme.test"),
        crew: token("crew@acme.test"),
        night: token("night@acme.test"),
        admin,
        rep,
        rep_id,
        crew_id,
        night_id,
        customer,
        project,
    }
}

/// A shift, a calendar, and the assignment of `user` to `site` on them.
fn assign(h: &Harness, c: &Company, user: UserId, site: &str, start: &str, end: &str) {
    assign_from(h, c, user, site, start, end, json!("2026-10-01"));
}

/// As [`assign`], with the assignment's first day (`null`: none; absent: today).
fn assign_from(
    h: &Harness,
    c: &Company,
    user: UserId,
    site: &str,
    start: &str,
    end: &str,
    from: Value,
) {
    let (s, shift) = h.post(
        "/v1/attendance/shifts",
        Some(&c.hr),
        &json!({"name": format!("{site} {start}-{end}"), "start": start, "end": end, "break_min": 30}),
    );
    assert_eq!(s, 201, "{shift}");
    let (s, cal) = h.post(
        "/v1/attendance/calendars",
        Some(&c.hr),
        &json!({"name": format!("{site} calendar"), "workdays": ["mon","tue","wed","thu","fri","sat"],
                "holidays": [{"date": "2026-10-03", "name": "Tag der Deutschen Einheit"}]}),
    );
    assert_eq!(s, 201, "{cal}");
    let (s, a) = h.send(
        "PUT",
        "/v1/attendance/assignments",
        Some(&c.hr),
        &json!({"user": user, "project": c.project, "site": site, "shift": shift["id"], "calendar": cal["id"], "from": from}),
    );
    assert_eq!(s, 200, "{a}");
}

fn punch(c: &Company, user: UserId, site: &str, dir: Direction, e: Evidence) -> Punch {
    Punch {
        id: DocId::new(),
        user,
        project: c.project,
        site: site.into(),
        direction: dir,
        evidence: e,
        note: None,
    }
}

fn visits_are_graded_reviewed_and_merged_into_the_customer(h: Harness) {
    let c = company(&h);
    let t0 = berlin("2026-11-16 10:00");
    let mut v = Visit::new(c.customer, c.rep_id, c.rep_id);
    v.planned_date = Some("2026-11-16".into());
    v.purpose = "Show the new frames".into();
    v.check_in = Some(ev(52.5221, 13.4135, t0));
    v.check_out = Some(CheckOut {
        evidence: ev(52.5220, 13.4130, t0 + HOUR),
        notes: "Ordered 40 frames; wants a display stand.".into(),
        outcome: VisitOutcome::Order,
        next_follow_up: Some("2026-11-20".into()),
    });
    let id = v.id;
    accepted(&h.push_new(&c.rep, &[Record::Visit(v)]));

    // The manager sees the report with both events graded.
    let (s, list) = h.get("/v1/visits", Some(&c.manager));
    assert_eq!(s, 200, "{list}");
    let visit = &list[0];
    assert_eq!(visit["state"], "closed");
    assert_eq!(visit["check_in_verdict"]["trust"], "verified", "{visit}");
    assert_eq!(visit["check_out_verdict"]["trust"], "verified", "{visit}");
    assert_eq!(visit["customer_name"], "Alex Optik");

    // Another team's manager may neither see nor review it; the rep may not review it.
    assert_eq!(h.get("/v1/visits", Some(&c.other_manager)).1, json!([]));
    let path = format!("/v1/visits/{id}/reviews");
    let (s, body) = h.post(
        &path,
        Some(&c.other_manager),
        &json!({"decision": "approved"}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (s, body) = h.post(&path, Some(&c.rep), &json!({"decision": "approved"}));
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (s, body) = h.post(&path, Some(&c.manager), &json!({"decision": "comment"}));
    assert_eq!(
        (s, body["error"].as_str()),
        (422, Some("missing_field")),
        "{body}"
    );

    // Their own manager approves; the review is in the record the rep's phone pulls.
    let (s, body) = h.post(
        &path,
        Some(&c.manager),
        &json!({"decision": "approved", "comment": "Good call on the stand."}),
    );
    assert_eq!(s, 201, "{body}");
    let (_, rec) = h.get(&format!("/v1/records/{id}"), Some(&c.rep));
    assert_eq!(rec["record"]["reviews"][0]["decision"], "approved", "{rec}");
    assert_eq!(
        h.get("/v1/visits", Some(&c.rep)).1[0]["review_status"],
        "approved"
    );

    // The customer's timeline and visit summary.
    let (s, tl) = h.get(
        &format!("/v1/customers/{}/timeline", c.customer),
        Some(&c.rep),
    );
    assert_eq!(s, 200, "{tl}");
    assert_eq!(tl["visits"]["visit_count"], 1);
    assert_eq!(tl["visits"]["last_visit_at"], t0);
    assert_eq!(tl["visits"]["next_follow_up"], "2026-11-20");
    let kinds: Vec<&str> = tl["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert_eq!(kinds, ["visit_review", "visit_check_out", "visit_check_in"]);

    // Follow-ups: due within the week on the 18th, overdue on the 21st.
    let (_, f) = h.get("/v1/visits/follow-ups?today=2026-11-18", Some(&c.manager));
    assert_eq!(f["due"][0]["customer_name"], "Alex Optik", "{f}");
    assert_eq!(f["overdue"], json!([]));
    let (_, f) = h.get(
        &format!("/v1/visits/follow-ups?today=2026-11-21&rep={}", c.rep_id),
        Some(&c.rep),
    );
    assert_eq!(f["overdue"][0]["follow_up"], "2026-11-20", "{f}");
}

fn a_check_in_far_from_the_customer_is_graded_rejected_with_the_distance(h: Harness) {
    let c = company(&h);
    let t0 = berlin("2026-11-17 09:00");
    let mut v = Visit::new(c.customer, c.rep_id, c.rep_id);
    // Potsdamer Platz: about 2.8 km from the customer.
    v.check_in = Some(ev(52.5096, 13.3759, t0));
    v.check_out = Some(CheckOut {
        evidence: ev(52.5096, 13.3760, t0 + HOUR),
        notes: String::new(),
        outcome: VisitOutcome::NotMet,
        next_follow_up: None,
    });
    accepted(&h.push_new(&c.rep, &[Record::Visit(v)]));
    let (_, list) = h.get("/v1/visits", Some(&c.rep));
    let verdict = &list[0]["check_in_verdict"];
    assert_eq!(verdict["trust"], "rejected", "{verdict}");
    let reason = &verdict["reasons"][0];
    assert_eq!(reason["code"], "out_of_range");
    let msg = reason["message"].as_str().expect("message");
    assert!(
        msg.starts_with("You are 2.")
            && msg.contains("km from Alex Optik; the check-in allows 300 m"),
        "{msg}"
    );
    // Mocked and inaccurate: both reasons are given.
    let mut e = ev(52.5219, 13.4132, t0 + 3 * HOUR);
    e.mock = true;
    e.accuracy_m = 450.0;
    let mut w = Visit::new(c.customer, c.rep_id, c.rep_id);
    w.check_in = Some(e);
    accepted(&h.push_new(&c.rep, &[Record::Visit(w)]));
    let (_, events) = h.get(
        "/v1/field-events?event=visit_check_in&trust=rejected",
        Some(&c.manager),
    );
    let codes: Vec<Vec<&str>> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            e["reasons"]
                .as_array()
                .expect("r")
                .iter()
                .filter_map(|r| r["code"].as_str())
                .collect()
        })
        .collect();
    assert!(
        codes
            .iter()
            .any(|c| c.contains(&"mock_location") && c.contains(&"poor_accuracy")),
        "{codes:?}"
    );
}

fn one_visit_is_open_at_a_time_and_an_open_visit_closes_by_itself(h: Harness) {
    let c = company(&h);
    let t0 = berlin("2026-11-18 09:00");
    let mut a = Visit::new(c.customer, c.rep_id, c.rep_id);
    a.check_in = Some(ev(52.5219, 13.4132, t0));
    let a_id = a.id;
    accepted(&h.push_new(&c.rep, &[Record::Visit(a.clone())]));
    let mut b = Visit::new(c.customer, c.rep_id, c.rep_id);
    b.check_in = Some(ev(52.5219, 13.4133, t0 + HOUR));
    let answer = h.push_new(&c.rep, &[Record::Visit(b)]);
    assert_eq!(
        result(&answer, 0),
        ("rejected", "visit_already_open"),
        "{answer}"
    );

    // Twelve hours on, the first visit has closed by itself and is flagged so.
    let (_, list) = h.get("/v1/visits?state=auto_closed", Some(&c.manager));
    assert_eq!(list[0]["id"], a_id.as_string(), "{list}");
    assert_eq!(list[0]["auto_closed_at"], t0 + 12 * HOUR);
    // A check-out dated after that is refused; one inside the window is not.
    let late = h.push_edit(&c.rep, a_id, |r| {
        if let Record::Visit(v) = r {
            v.check_out = Some(CheckOut {
                evidence: ev(52.5219, 13.4132, t0 + 13 * HOUR),
                notes: String::new(),
                outcome: VisitOutcome::NotMet,
                next_follow_up: None,
            });
        }
    });
    assert_eq!(
        result(&late, 0),
        ("rejected", "visit_auto_closed"),
        "{late}"
    );
    let ok = h.push_edit(&c.rep, a_id, |r| {
        if let Record::Visit(v) = r {
            v.check_out = Some(CheckOut {
                evidence: ev(52.5219, 13.4132, t0 + 2 * HOUR),
                notes: "Met the owner".into(),
                outcome: VisitOutcome::Interested,
                next_follow_up: None,
            });
        }
    });
    accepted(&ok);
    // A second visit after the first closed is fine.
    let mut d = Visit::new(c.customer, c.rep_id, c.rep_id);
    d.check_in = Some(ev(52.5219, 13.4134, t0 + 3 * HOUR));
    let d_id = d.id;
    accepted(&h.push_new(&c.rep, &[Record::Visit(d)]));
    // The phone synced between check-in and check-out: the check-out and the next visit's
    // check-in arrive in one push, the next visit listed first. Both are accepted.
    let mut e = Visit::new(c.customer, c.rep_id, c.rep_id);
    e.check_in = Some(ev(52.5219, 13.4135, t0 + 5 * HOUR));
    let next = Harness::new_docs(&[Record::Visit(e)]);
    let close_d = h.edit_doc(&c.rep, d_id, |r| {
        if let Record::Visit(v) = r {
            v.check_out = Some(CheckOut {
                evidence: ev(52.5219, 13.4134, t0 + 4 * HOUR),
                notes: String::new(),
                outcome: VisitOutcome::FollowUp,
                next_follow_up: None,
            });
        }
    });
    accepted(&h.push_docs(&c.rep, &json!([next[0], close_d])));
}

fn bad_punches_are_refused_with_reasons_and_punches_cannot_change(h: Harness) {
    let c = company(&h);
    let at = berlin("2026-11-19 08:55");
    let depot = (52.5101, 13.4271);

    // Not assigned yet.
    let p = punch(
        &c,
        c.crew_id,
        "berlin",
        Direction::In,
        ev(depot.0, depot.1, at),
    );
    let answer = h.push_new(&c.crew, &[Record::Punch(p.clone())]);
    assert_eq!(result(&answer, 0), ("rejected", "not_assigned"), "{answer}");
    let msg = answer["results"][0]["error"]["message"]
        .as_str()
        .expect("msg");
    assert!(msg.contains("Berlin depot"), "{msg}");

    assign(&h, &c, c.crew_id, "berlin", "09:00", "17:00");
    let before = h
        .get("/v1/field-events", Some(&c.hr))
        .1
        .as_array()
        .map(Vec::len);

    let mut bad_lat = p.clone();
    bad_lat.id = DocId::new();
    bad_lat.evidence.lat = 91.0;
    let mut future = p.clone();
    future.id = DocId::new();
    future.evidence = ev(
        depot.0,
        depot.1,
        fieldsync_server::store::now_ms() + 2 * HOUR,
    );
    let mut unknown_site = p.clone();
    unknown_site.id = DocId::new();
    unknown_site.site = "moon".into();
    let mut someone_else = p.clone();
    someone_else.id = DocId::new();
    someone_else.user = c.rep_id;
    let answer = h.push_new(
        &c.crew,
        &[
            Record::Punch(bad_lat),
            Record::Punch(future),
            Record::Punch(unknown_site),
            Record::Punch(someone_else),
        ],
    );
    assert_eq!(
        result(&answer, 0),
        ("rejected", "invalid_latitude"),
        "{answer}"
    );
    assert_eq!(result(&answer, 1), ("rejected", "future_time"), "{answer}");
    assert_eq!(result(&answer, 2), ("rejected", "unknown_site"), "{answer}");
    assert_eq!(result(&answer, 3), ("rejected", "forbidden"), "{answer}");
    assert_eq!(
        h.get("/v1/field-events", Some(&c.hr))
            .1
            .as_array()
            .map(Vec::len),
        before,
        "refused punches store nothing"
    );

    // A good punch; sending the same changes again (a retry) changes nothing.
    let docs = Harness::new_docs(&[Record::Punch(p.clone())]);
    accepted(&h.push_docs(&c.crew, &docs));
    accepted(&h.push_docs(&c.crew, &docs));
    let (_, events) = h.get("/v1/field-events?event=punch", Some(&c.crew));
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(events[0]["trust"], "verified", "{events}");
    let edit = h.push_edit(&c.crew, p.id, |r| {
        if let Record::Punch(p) = r {
            p.evidence.device_time_ms -= 10 * 60_000;
        }
    });
    assert_eq!(result(&edit, 0), ("rejected", "punch_immutable"), "{edit}");
    // The same id made afresh (even with the same content) is a duplicate: refused.
    let answer = h.push_new(&c.crew, &[Record::Punch(p.clone())]);
    assert_eq!(
        result(&answer, 0),
        ("rejected", "punch_immutable"),
        "{answer}"
    );
    let mut twin = p.clone();
    twin.direction = Direction::Out;
    let answer = h.push_new(&c.crew, &[Record::Punch(twin)]);
    assert_eq!(
        result(&answer, 0),
        ("rejected", "punch_immutable"),
        "{answer}"
    );

    // Out of the fence: stored, graded rejected, with the distance.
    let out = punch(
        &c,
        c.crew_id,
        "berlin",
        Direction::Out,
        ev(52.5200, 13.4050, at + 8 * HOUR),
    );
    accepted(&h.push_new(&c.crew, &[Record::Punch(out)]));
    let (_, events) = h.get(
        "/v1/field-events?event=punch&trust=rejected",
        Some(&c.manager),
    );
    let msg = events[0]["reasons"][0]["message"]
        .as_str()
        .expect("message");
    assert!(
        msg.contains("outside the area of site Berlin depot"),
        "{msg}"
    );
    assert!(h.healthy());
}

fn make_ups_are_decided_by_the_workers_own_manager(h: Harness) {
    let c = company(&h);
    assign(&h, &c, c.crew_id, "berlin", "09:00", "17:00");
    let m = Makeup {
        id: DocId::new(),
        user: c.crew_id,
        project: c.project,
        site: "berlin".into(),
        direction: Direction::Out,
        at_ms: berlin("2026-11-19 17:02"),
        reason: "Phone battery died at the end of the shift".into(),
        decision: None,
    };
    let id = m.id;
    accepted(&h.push_new(&c.crew, &[Record::Makeup(m)]));
    let path = format!("/v1/makeups/{id}/decision");
    // Not their manager, not HR, not the worker.
    let (s, body) = h.post(&path, Some(&c.other_manager), &json!({"approve": true}));
    assert_eq!(s, 404, "{body}");
    let (s, body) = h.post(&path, Some(&c.hr), &json!({"approve": true}));
    assert_eq!(
        s, 404,
        "HR reads attendance reports, not the request itself: {body}"
    );
    let own = h.push_edit(&c.crew, id, |r| {
        if let Record::Makeup(m) = r {
            m.decision = Some(fieldsync_sync::MakeupDecision {
                status: fieldsync_sync::MakeupStatus::Approved,
                by: m.user,
                at_ms: 0,
                comment: None,
            });
        }
    });
    assert_eq!(result(&own, 0), ("rejected", "forbidden"), "{own}");
    assert_eq!(
        h.get("/v1/makeups?status=pending", Some(&c.manager)).1[0]["id"],
        id.as_string()
    );

    let (s, body) = h.post(
        &path,
        Some(&c.manager),
        &json!({"approve": true, "comment": "ok"}),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = h.post(&path, Some(&c.manager), &json!({"approve": false}));
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("already_decided")),
        "{body}"
    );
    assert_eq!(
        h.get("/v1/makeups?status=approved", Some(&c.crew)).1[0]["id"],
        id.as_string()
    );

    // The approved make-up counts in the report, marked as such.
    let in_punch = punch(
        &c,
        c.crew_id,
        "berlin",
        Direction::In,
        ev(52.5101, 13.4271, berlin("2026-11-19 08:58")),
    );
    accepted(&h.push_new(&c.crew, &[Record::Punch(in_punch)]));
    let (_, rep) = h.get(
        &format!(
            "/v1/reports/attendance?from=2026-11-19&to=2026-11-19&users={}",
            c.crew_id
        ),
        Some(&c.hr),
    );
    let day = &rep["employees"][0]["days"][0];
    assert_eq!(day["status"], "normal", "{day}");
    assert_eq!(day["makeups"], 1);
    assert!(
        day["explanation"]
            .as_str()
            .expect("text")
            .contains("(make-up)"),
        "{day}"
    );
}

fn a_night_shift_across_dst_and_sites_in_two_time_zones_report_correctly(h: Harness) {
    let c = company(&h);
    // Berlin: 22:00-06:00 on the night clocks go back (Sat 24 Oct 2026): nine real hours.
    assign(&h, &c, c.night_id, "berlin", "22:00", "06:00");
    // Shanghai: a day shift, same wall-clock hours as a Berlin day, eight time zones away.
    assign(&h, &c, c.crew_id, "shanghai", "09:00", "17:00");
    let depot = (52.5101, 13.4271);
    let yard = (31.2305, 121.4738);
    let sh = |s: &str| local("Asia/Shanghai", s);
    accepted(&h.push_new(
        &c.night,
        &[
            Record::Punch(punch(
                &c,
                c.night_id,
                "berlin",
                Direction::In,
                ev(depot.0, depot.1, berlin("2026-10-24 21:58")),
            )),
            Record::Punch(punch(
                &c,
                c.night_id,
                "berlin",
                Direction::Out,
                ev(depot.0, depot.1 + 0.0001, berlin("2026-10-25 06:01")),
            )),
            // The next night starts 12 minutes late.
            Record::Punch(punch(
                &c,
                c.night_id,
                "berlin",
                Direction::In,
                ev(depot.0, depot.1 + 0.0002, berlin("2026-10-26 22:12")),
            )),
            Record::Punch(punch(
                &c,
                c.night_id,
                "berlin",
                Direction::Out,
                ev(depot.0, depot.1 + 0.0003, berlin("2026-10-27 06:00")),
            )),
        ],
    ));
    accepted(&h.push_new(
        &c.crew,
        &[
            Record::Punch(punch(
                &c,
                c.crew_id,
                "shanghai",
                Direction::In,
                ev(yard.0, yard.1, sh("2026-10-26 08:59")),
            )),
            Record::Punch(punch(
                &c,
                c.crew_id,
                "shanghai",
                Direction::Out,
                ev(yard.0, yard.1 + 0.0001, sh("2026-10-26 16:30")),
            )),
        ],
    ));
    let (s, rep) = h.get(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26",
        Some(&c.hr),
    );
    assert_eq!(s, 200, "{rep}");
    let emp = |email: &str| {
        rep["employees"]
            .as_array()
            .expect("employees")
            .iter()
            .find(|e| e["email"] == email)
            .cloned()
            .expect("employee in report")
    };
    let night = emp("night@acme.test");
    assert_eq!(night["timezone"], "Europe/Berlin");
    let d24 = &night["days"][0];
    assert_eq!(d24["date"], "2026-10-24");
    assert_eq!(d24["status"], "normal", "{d24}");
    // 21:58 CEST to 06:01 CET is 9 h 3 min; less the 30 min break.
    assert_eq!(d24["worked_min"], 9 * 60 + 3 - 30, "{d24}");
    assert_eq!(
        d24["scheduled_end_ms"].as_i64().expect("end")
            - d24["scheduled_start_ms"].as_i64().expect("start"),
        9 * HOUR
    );
    let d26 = &night["days"][2];
    assert_eq!(d26["status"], "late", "{d26}");
    assert_eq!(d26["late_min"], 7);
    assert!(
        d26["explanation"].as_str().expect("text").starts_with(
            "late 7 min: first in-punch 22:12 at Berlin depot, shift starts 22:00, grace 5 min"
        ),
        "{d26}"
    );
    let crew = emp("crew@acme.test");
    assert_eq!(crew["timezone"], "Asia/Shanghai");
    let d = &crew["days"][2];
    assert_eq!(d["status"], "early_leave", "{d}");
    assert_eq!(d["early_leave_min"], 25);
    // Sunday the 25th is a rest day for both.
    assert_eq!(crew["days"][1]["status"], "rest_day");

    // The same report as CSV (both sheets) and XLSX.
    let (s, ctype, csv) = h.get_bytes(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26&format=csv&sheet=days",
        &c.hr,
    );
    assert_eq!((s, ctype.as_str()), (200, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).expect("utf-8");
    assert!(
        csv.starts_with("employee_id,email,date,weekday,site,status"),
        "{csv}"
    );
    assert!(csv.contains("night@acme.test,2026-10-26,Mon,Berlin depot,late,late,yes,2026-10-26 22:00,2026-10-27 06:00,2026-10-26 22:12,2026-10-27 06:00"), "{csv}");
    let (s, ctype, xlsx) = h.get_bytes(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26&format=xlsx",
        &c.hr,
    );
    assert_eq!(s, 200);
    assert!(ctype.contains("spreadsheetml"), "{ctype}");
    assert_eq!(&xlsx[..2], b"PK", "an XLSX is a zip file");

    // Who may pull which report.
    let (s, body) = h.get(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26",
        Some(&c.night),
    );
    assert_eq!((s, body["error"].as_str()), (403, Some("forbidden")));
    let (_, mine) = h.get(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26",
        Some(&c.other_manager),
    );
    let emails: Vec<&str> = mine["employees"]
        .as_array()
        .expect("e")
        .iter()
        .filter_map(|e| e["email"].as_str())
        .collect();
    assert_eq!(
        emails,
        ["night@acme.test"],
        "a manager sees their team only"
    );
    let (s, body) = h.get(
        "/v1/reports/attendance?from=2026-10-26&to=2026-10-24",
        Some(&c.hr),
    );
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_period")));
    let (s, body) = h.get(
        "/v1/reports/attendance?from=2026-01-01&to=2027-06-01",
        Some(&c.hr),
    );
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_period")));
    let (s, body) = h.get(
        "/v1/reports/attendance?from=2026-10-24&to=2026-10-26&format=pdf",
        Some(&c.hr),
    );
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_format")));

    // The worker's own month.
    let (s, me) = h.get("/v1/attendance/me?month=2026-10", Some(&c.night));
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["days"].as_array().map(Vec::len), Some(31));
    assert_eq!(me["assignments"][0]["site_name"], "Berlin depot");
    let _ = (&c.admin, c.tenant);
}

on_both_stores!(
    visits_are_graded_reviewed_and_merged_into_the_customer,
    a_check_in_far_from_the_customer_is_graded_rejected_with_the_distance,
    one_visit_is_open_at_a_time_and_an_open_visit_closes_by_itself,
    bad_punches_are_refused_with_reasons_and_punches_cannot_change,
    make_ups_are_decided_by_the_workers_own_manager,
    a_night_shift_across_dst_and_sites_in_two_time_zones_report_correctly,
);
