//! A rep's field day played on a real phone store against the real server (SQLite and
//! PostgreSQL): punches and a customer visit made offline, synced two days later, dated by the
//! phone's monotonic clock (not by its wall clock, which was wrong) and graded on arrival.
//!
//! Time travel, honestly: the phone learns `server time - monotonic time` at a sync. Rewinding
//! its manual monotonic clock (same boot) to two days before that sync is, for the arithmetic,
//! exactly a phone that synced on the morning of that day and then stayed offline: its events
//! are dated `monotonic + offset`, two days in the server's past.

use chrono::TimeZone;
use fieldsync_mobile_core::{LocationFix, NewCustomer};
use fieldsync_sync::Role;
use fieldsync_tests::{Harness, on_both_stores};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

fn berlin_ms(date: chrono::NaiveDate, hh: u32, mm: u32) -> i64 {
    let naive = date.and_hms_opt(hh, mm, 0).expect("time");
    chrono_tz::Europe::Berlin
        .from_local_datetime(&naive)
        .earliest()
        .expect("local time")
        .timestamp_millis()
}

fn an_offline_day_synced_two_days_later_is_dated_and_graded(h: Harness) {
    let tenant = h.tenant("acme");
    h.user(tenant, "hr@acme.test", Role::Hr, None);
    h.user(tenant, "boss@acme.test", Role::Manager, None);
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let rep = h.user(
        tenant,
        "rep@acme.test",
        Role::FieldRep,
        Some("boss@acme.test"),
    );
    let hr = h.token("acme", "hr@acme.test");
    let boss = h.token("acme", "boss@acme.test");

    // The depot where the rep clocks in, and the shift and calendar (every day a workday, so
    // the test does not depend on today's weekday).
    let mut project = fieldsync_sync::Project::new("Depot", admin);
    project.sites = vec![fieldsync_sync::Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: Some(fieldsync_sync::Geofence::Circle {
            center: fieldsync_sync::GeoPoint {
                lat: 52.5100,
                lon: 13.4270,
            },
            radius_m: 150.0,
        }),
    }];
    project.members = vec![fieldsync_sync::Member {
        user: rep,
        role: fieldsync_sync::ProjectRole::Crew,
    }];
    let project_id = project.id;
    let answer = h.push_new(
        &h.token("acme", "admin@acme.test"),
        &[fieldsync_sync::Record::Project(project)],
    );
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    let (_, shift) = h.post(
        "/v1/attendance/shifts",
        Some(&hr),
        &json!({"name": "Day", "start": "09:00", "end": "17:00", "break_min": 30}),
    );
    let (_, cal) = h.post(
        "/v1/attendance/calendars",
        Some(&hr),
        &json!({"name": "Every day", "workdays": ["mon","tue","wed","thu","fri","sat","sun"]}),
    );
    let (s, body) = h.send(
        "PUT",
        "/v1/attendance/assignments",
        Some(&hr),
        &json!({"user": rep, "project": project_id, "site": "depot", "shift": shift["id"], "calendar": cal["id"], "from": null}),
    );
    assert_eq!(s, 200, "{body}");

    // The phone: a manual clock whose wall clock is an hour and a half fast.
    let phone = h.phone("acme", "rep@acme.test");
    let boot = "boot-1".to_string();
    let wall_now = fieldsync_server::store::now_ms();
    phone
        .set_manual_clock(wall_now + 90 * MIN, 50_000_000_000, boot.clone())
        .expect("clock");
    let customer = phone
        .create_customer(NewCustomer {
            name: "Alex Optik".into(),
            lat: Some(52.5219),
            lon: Some(13.4132),
            ..Default::default()
        })
        .expect("customer")
        .customer
        .id
        .as_string();
    phone.sync().expect("first sync");
    let offset = phone
        .clock_status()
        .expect("clock")
        .server_offset_ms
        .expect("the sync taught the phone the server's time");

    // Two days ago, in Berlin.
    let today = chrono::DateTime::from_timestamp_millis(wall_now)
        .expect("now")
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let day = today - chrono::Days::new(2);
    let at = |hh, mm| berlin_ms(day, hh, mm);
    // Set the phone's clocks for an event at server time `t`: monotonic from the offset, the
    // wall clock still 90 minutes fast.
    let at_time = |t: i64| {
        phone
            .set_manual_clock(t + 90 * MIN, t - offset, boot.clone())
            .expect("clock");
    };
    let depot = LocationFix::gps(52.5101, 13.4271, 12.0);

    at_time(at(8, 55));
    let p_in = phone
        .punch(
            project_id.as_string(),
            "depot".into(),
            "in".into(),
            depot.clone(),
            None,
        )
        .expect("punch in");
    assert_eq!(
        p_in.verdict.level.as_str(),
        "suspicious",
        "{:?}",
        p_in.verdict
    );
    assert!(
        p_in.verdict.reasons.iter().any(|r| r.code == "clock_off"),
        "the fast wall clock is noticed: {:?}",
        p_in.verdict
    );
    at_time(at(10, 0));
    let visit = phone
        .plan_visit(customer.clone(), Some(day.to_string()), "New frames".into())
        .expect("plan")
        .visit
        .id
        .as_string();
    let ci = phone
        .check_in(visit.clone(), LocationFix::gps(52.5221, 13.4135, 9.0))
        .expect("check in");
    assert!(
        ci.verdict.reasons.iter().all(|r| r.code != "out_of_range"),
        "{:?}",
        ci.verdict
    );
    at_time(at(10, 50));
    phone
        .check_out(
            visit.clone(),
            LocationFix::gps(52.5220, 13.4131, 9.0),
            "Ordered 40 frames".into(),
            "order".into(),
            Some((day + chrono::Days::new(7)).to_string()),
        )
        .expect("check out");
    at_time(at(17, 4));
    phone
        .punch(
            project_id.as_string(),
            "depot".into(),
            "out".into(),
            LocationFix::gps(52.5102, 13.4272, 10.0),
            None,
        )
        .expect("punch out");

    // Two days later, back to the present, the phone syncs.
    phone
        .set_manual_clock(wall_now + 90 * MIN, 50_000_000_000, boot.clone())
        .expect("clock");
    let report = phone.sync().expect("sync two days later");
    assert!(report.rejected.is_empty(), "{report:?}");

    // The server dated every event by the monotonic clock: exactly the Berlin times above.
    let (_, events) = h.get("/v1/field-events", Some(&boss));
    let events = events.as_array().expect("events").clone();
    let time_of = |event: &str| -> Vec<i64> {
        let mut v: Vec<i64> = events
            .iter()
            .filter(|e| e["event"] == event)
            .filter_map(|e| e["at_ms"].as_i64())
            .collect();
        v.sort();
        v
    };
    assert_eq!(time_of("punch"), [at(8, 55), at(17, 4)]);
    assert_eq!(time_of("visit_check_in"), [at(10, 0)]);
    assert_eq!(time_of("visit_check_out"), [at(10, 50)]);
    for e in &events {
        let reasons: Vec<&str> = e["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .filter_map(|r| r["code"].as_str())
            .collect();
        assert!(reasons.contains(&"clock_off"), "{e}");
        assert!(!reasons.contains(&"out_of_range"), "{e}");
        assert_eq!(e["trust"], "suspicious", "only the clock is off: {e}");
        assert_eq!(
            e["device_time_ms"].as_i64().expect("device time") - e["at_ms"].as_i64().expect("at"),
            90 * MIN
        );
    }

    // The day in the HR report and on the phone.
    let (s, rep_json) = h.get(
        &format!("/v1/reports/attendance?from={day}&to={day}"),
        Some(&hr),
    );
    assert_eq!(s, 200, "{rep_json}");
    let d: &Value = &rep_json["employees"][0]["days"][0];
    assert_eq!(d["status"], "normal", "{d}");
    assert_eq!(d["worked_min"], 8 * 60 + 9 - 30, "{d}");
    let month = day.format("%Y-%m").to_string();
    let mine = phone.my_attendance(month).expect("my month");
    let on_phone = mine
        .days
        .iter()
        .find(|x| x.date == day)
        .expect("the day on the phone");
    assert_eq!(on_phone.status.as_str(), "normal");
    assert!(mine.pending_punches.is_empty());

    // The visit, with the customer's follow-up a week on.
    let (_, visits) = h.get("/v1/visits", Some(&boss));
    assert_eq!(visits[0]["state"], "closed", "{visits}");
    assert_eq!(visits[0]["check_in_at"], at(10, 0));
    assert_eq!(
        visits[0]["next_follow_up"],
        (day + chrono::Days::new(7)).to_string()
    );

    // The manager approves from the web; the rep's phone sees the review after its next sync.
    let (s, body) = h.post(
        &format!("/v1/visits/{visit}/reviews"),
        Some(&boss),
        &json!({"decision": "approved", "comment": "Nice order."}),
    );
    assert_eq!(s, 201, "{body}");
    phone.sync().expect("sync");
    let seen = phone.get_visit(visit).expect("visit");
    assert_eq!(seen.visit.reviews.len(), 1);
    assert_eq!(seen.visit.reviews[0].comment, "Nice order.");
}

fn a_punch_made_before_the_worker_was_assigned_is_refused_and_reported(h: Harness) {
    let tenant = h.tenant("acme");
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    h.user(tenant, "crew@acme.test", Role::FieldRep, None);
    let mut project = fieldsync_sync::Project::new("Depot", admin);
    project.sites = vec![fieldsync_sync::Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: None,
    }];
    let crew =
        h.rt.block_on(h.store.user_by_email(tenant, "crew@acme.test"))
            .expect("store")
            .expect("user")
            .id;
    project.members = vec![fieldsync_sync::Member {
        user: crew,
        role: fieldsync_sync::ProjectRole::Crew,
    }];
    let project_id = project.id;
    h.push_new(
        &h.token("acme", "admin@acme.test"),
        &[fieldsync_sync::Record::Project(project)],
    );
    let phone = h.phone("acme", "crew@acme.test");
    phone.sync().expect("sync");
    let made = phone
        .punch(
            project_id.as_string(),
            "depot".into(),
            "in".into(),
            LocationFix::gps(52.51, 13.427, 10.0),
            None,
        )
        .expect("no assignments known: the phone lets the server decide");
    assert_eq!(
        made.verdict.level.as_str(),
        "unverifiable",
        "no geofence: {:?}",
        made.verdict
    );
    let report = phone.sync().expect("sync");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].code, "not_assigned", "{report:?}");
    assert!(
        phone.list_punches(None, None).expect("punches").is_empty(),
        "the refused punch is gone from the phone"
    );
}

on_both_stores!(
    an_offline_day_synced_two_days_later_is_dated_and_graded,
    a_punch_made_before_the_worker_was_assigned_is_refused_and_reported,
);
