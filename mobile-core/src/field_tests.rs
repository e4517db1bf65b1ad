//! Offline behaviour of field events: how they are dated, graded and refused. The server's side
//! is played by [`crate::fake_server`] where a test needs one.

use crate::fake_server::{self, FakeServer};
use crate::store;
use crate::tests::{fake_login, open};
use crate::*;
use fieldsync_sync::{DocId, UserId};

/// 2026-11-24 08:00:00 UTC.
const T0: i64 = 1_795_507_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// A server that answers pulls with an empty page stamped `server_time_ms`, and 404 otherwise.
fn clock_server(server_time_ms: i64) -> FakeServer {
    FakeServer::start(move |req| match req.path.as_str() {
        "/v1/sync/pull" => (200, fake_server::empty_pull(server_time_ms)),
        _ => (404, fake_server::error("not_found", "No such route.")),
    })
}

#[test]
fn the_server_offset_is_learnt_at_a_pull_and_holds_only_in_that_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    // The phone's wall clock is 90 s behind the server's.
    let server = clock_server(T0 + 90_000);
    fake_login(&client, &server.url);
    client
        .set_manual_clock(T0, 5_000_000, "boot-a".into())
        .expect("clock");
    assert_eq!(
        client.clock_status().expect("status").server_offset_ms,
        None
    );
    client.sync().expect("sync");
    let s = client.clock_status().expect("status");
    assert_eq!(s.server_offset_ms, Some(T0 + 90_000 - 5_000_000));
    assert_eq!(s.server_time_ms, Some(T0 + 90_000));
    assert_eq!(
        s.offset_round_trip_ms,
        Some(0),
        "a manual clock stands still"
    );
    let pulls: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|r| r.path == "/v1/sync/pull")
        .collect();
    assert!(!pulls.is_empty());
    assert!(pulls.iter().all(|r| r.method == "POST"
        && r.authorization.as_deref() == Some("Bearer access")
        && !r.body.is_empty()));

    // Three days offline, and the owner sets the wall clock back a day: the server's time is
    // still known from the monotonic clock.
    client.advance_manual_clock(3 * DAY).expect("advance");
    let s = client.set_manual_wall_clock(T0 + 2 * DAY).expect("wall");
    assert_eq!(s.wall_ms, T0 + 2 * DAY);
    assert_eq!(s.monotonic_ms, 5_000_000 + 3 * DAY);
    assert_eq!(s.server_time_ms, Some(T0 + 90_000 + 3 * DAY));

    // Kept across a restart of the app.
    drop(client);
    let client = open(&dir);
    assert_eq!(
        client.clock_status().expect("status").server_time_ms,
        Some(T0 + 90_000 + 3 * DAY)
    );

    // A reboot: the monotonic clock starts again and the offset no longer holds.
    let s = client
        .set_manual_clock(T0 + 3 * DAY, 20_000, "boot-b".into())
        .expect("reboot");
    assert_eq!(s.server_offset_ms, None);
    assert_eq!(s.server_time_ms, None);
    assert_eq!(s.offset_boot_id.as_deref(), Some("boot-a"));
}

#[test]
fn the_manual_clock_refuses_impossible_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let code = |r: Result<ClockStatus, ClientError>| r.err().map(|e| e.code().to_owned());
    assert_eq!(
        code(client.advance_manual_clock(MIN)).as_deref(),
        Some("no_manual_clock")
    );
    assert_eq!(
        code(client.set_manual_wall_clock(T0)).as_deref(),
        Some("no_manual_clock")
    );
    assert_eq!(
        code(client.set_manual_clock(0, 0, "b".into())).as_deref(),
        Some("invalid_clock")
    );
    assert_eq!(
        code(client.set_manual_clock(T0, -1, "b".into())).as_deref(),
        Some("invalid_clock")
    );
    assert_eq!(
        code(client.set_manual_clock(T0, 0, " ".into())).as_deref(),
        Some("invalid_clock")
    );
    client
        .set_manual_clock(T0, 0, "b".into())
        .expect("manual clock");
    assert_eq!(
        code(client.advance_manual_clock(-MIN)).as_deref(),
        Some("invalid_clock")
    );
    let s = client.use_system_clock().expect("system");
    assert!(!s.manual);
    assert!(s.wall_ms > T0 - 365 * DAY, "the real clock");
}

#[test]
fn a_version_3_database_is_upgraded_and_keeps_its_records_and_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    let id = client
        .create_customer(crate::tests::acme())
        .expect("create")
        .customer
        .id
        .to_string();
    let device = client.device_id();
    drop(client);
    let path = dir.path().join("device").join("fieldsync.db");
    {
        // As version 3 left the file: no clock, no attendance setup.
        let c = rusqlite::Connection::open(&path).expect("open");
        c.execute_batch("DROP TABLE clock; DROP TABLE attendance_setup; PRAGMA user_version = 3;")
            .expect("v3");
    }
    let client = open(&dir);
    let version: i64 = client
        .lock()
        .store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, store::VERSION);
    assert_eq!(client.device_id(), device);
    let v = client.get_customer(id).expect("customer kept");
    assert_eq!(v.customer.name, "Acme Ltd");
    assert!(v.pending, "still to be sent");
    let s = client.status().expect("status");
    assert_eq!(s.user_id, Some(me.to_string()), "session kept");
    assert_eq!(s.pending_docs, 1);
    // The new tables work.
    let c = client.clock_status().expect("clock");
    assert!(!c.manual);
    assert_eq!(c.server_offset_ms, None);
    client
        .set_manual_clock(T0, 1, "b".into())
        .expect("manual clock");
    assert!(client.clock_status().expect("clock").manual);
}

/// Logs `client` in (offline) as `user` with `role`, talking to `server_url`.
fn login_as(client: &FieldsyncClient, server_url: &str, user: UserId, role: &str) {
    let inner = client.lock();
    store::session_put(
        &inner.store.conn,
        &store::SessionRow {
            server_url: server_url.into(),
            tenant_slug: "demo".into(),
            tenant_id: "01890a5d-ac96-774b-bcce-b302099a8000".into(),
            user_id: user.to_string(),
            role: role.into(),
            email: format!("{role}@demo.example"),
            access_token: "access".into(),
            refresh_token: "refresh".into(),
            access_expires_at_ms: store::now_ms() + 15 * MIN,
            clock_offset_ms: 0,
        },
    )
    .expect("session");
}

/// A rep's phone, offline, with the manual clock at [`T0`] in boot `boot-a` and the customer
/// Acme Ltd at 30.65,104.06 (visit radius: the policy's default, 300 m).
fn rep_phone(dir: &tempfile::TempDir) -> (FieldsyncClient, UserId, String) {
    let client = open(dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    client
        .set_manual_clock(T0, 10 * HOUR, "boot-a".into())
        .expect("clock");
    let acme = client
        .create_customer(crate::tests::acme())
        .expect("customer")
        .customer
        .id
        .to_string();
    (client, me, acme)
}

/// A GPS fix accurate to 8 m, `north_m` metres north of Acme Ltd.
fn near_acme(north_m: f64) -> LocationFix {
    LocationFix::gps(30.65 + north_m / 111_195.0, 104.06, 8.0)
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

fn err_code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    r.expect_err("must be refused").code().to_owned()
}

#[test]
fn a_check_in_near_the_customer_is_verified_and_one_far_away_is_rejected_with_the_distance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, acme) = rep_phone(&dir);
    let visit = client
        .plan_visit(acme.clone(), Some("2026-11-24".into()), "Demo".into())
        .expect("plan");
    assert_eq!(visit.state, "planned");
    assert_eq!(visit.customer_name.as_deref(), Some("Acme Ltd"));
    assert!(visit.pending);
    let id = visit.visit.id.to_string();

    let near = client
        .check_in(id.clone(), near_acme(40.0))
        .expect("check in");
    assert_eq!(
        near.verdict.level,
        TrustLevel::Verified,
        "{:?}",
        near.verdict
    );
    let d = near.verdict.distance_m.expect("distance");
    assert!((35.0..45.0).contains(&d), "{d}");
    assert_eq!(near.verdict.allowed_m, Some(300.0));
    // Never synced: dated by the phone's own clock, which the verdict says.
    assert_eq!(codes(&near.verdict), vec!["clock_unverified"]);
    assert_eq!(near.verdict.event_time_ms, T0);
    let v = near.visit.expect("visit");
    assert_eq!(v.state, "open");
    let ev = v.visit.check_in.expect("evidence");
    assert_eq!(
        (ev.device_time_ms, ev.monotonic_ms, ev.server_offset_ms),
        (T0, Some(10 * HOUR), None)
    );

    client.advance_manual_clock(40 * MIN).expect("time passes");
    let out = client
        .check_out(
            id.clone(),
            near_acme(20.0),
            "Met the buyer".into(),
            "follow_up".into(),
            Some("2026-12-01".into()),
        )
        .expect("check out");
    assert_eq!(out.verdict.level, TrustLevel::Verified, "{:?}", out.verdict);
    let v = out.visit.expect("visit");
    assert_eq!(v.state, "closed");
    let report = v.visit.check_out.expect("report");
    assert_eq!(report.outcome, VisitOutcome::FollowUp);
    assert_eq!(report.next_follow_up.as_deref(), Some("2026-12-01"));

    // The next visit, 1.2 km north, an hour later.
    client.advance_manual_clock(HOUR).expect("time passes");
    let far_visit = client
        .plan_visit(acme, None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    let far = client
        .check_in(far_visit, near_acme(1_200.0))
        .expect("a far check-in is stored, graded");
    assert_eq!(far.verdict.level, TrustLevel::Rejected);
    let reason = far
        .verdict
        .reasons
        .iter()
        .find(|r| r.code == "out_of_range")
        .expect("out of range");
    assert_eq!(
        reason.message,
        "You are 1.2 km from Acme Ltd; the check-in allows 300 m."
    );
    assert_eq!(far.visit.expect("visit").state, "open");
}

#[test]
fn the_preview_grades_against_the_recent_events_and_the_customers_own_radius() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, acme) = rep_phone(&dir);
    client
        .edit_customer(
            acme.clone(),
            vec![FieldEdit {
                field: "location".into(),
                value: "30.65,104.06".into(),
            }],
        )
        .expect("edit");
    // A customer with a 1.5 km radius: a check-in 1.2 km away is in range.
    {
        let mut c = client.get_customer(acme.clone()).expect("get").customer;
        c.visit_radius_m = Some(1_500.0);
        client.update_customer(c).expect("radius");
    }
    let a = client
        .plan_visit(acme.clone(), None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    let v = client.check_in(a.clone(), near_acme(1_200.0)).expect("in");
    assert_eq!(v.verdict.level, TrustLevel::Verified, "{:?}", v.verdict);
    assert_eq!(v.verdict.allowed_m, Some(1_500.0));
    // A check-out 50 km away a minute later: an impossible trip since the check-in.
    client.advance_manual_clock(MIN).expect("time passes");
    let out = client
        .check_out(a, near_acme(50_000.0), String::new(), "other".into(), None)
        .expect("out");
    assert!(
        codes(&out.verdict).contains(&"impossible_speed"),
        "{:?}",
        out.verdict
    );
    assert_eq!(out.verdict.level, TrustLevel::Rejected, "and out of range");
}

#[test]
fn a_rep_has_one_open_visit_at_a_time_until_it_is_closed_automatically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, acme) = rep_phone(&dir);
    let a = client
        .plan_visit(acme.clone(), None, "First".into())
        .expect("plan")
        .visit
        .id
        .to_string();
    let b = client
        .plan_visit(acme.clone(), None, "Second".into())
        .expect("plan")
        .visit
        .id
        .to_string();
    client.check_in(a.clone(), near_acme(10.0)).expect("in");
    client.advance_manual_clock(10 * MIN).expect("time passes");
    let err = client
        .check_in(b.clone(), near_acme(12.0))
        .expect_err("one at a time");
    assert_eq!(err.code(), "visit_already_open");
    assert!(err.message().contains("Acme Ltd"), "{}", err.message());

    // Twelve hours after the check-in the open visit no longer counts as open.
    client.advance_manual_clock(12 * HOUR).expect("night");
    assert_eq!(
        client.get_visit(a.clone()).expect("get").state,
        "auto_closed"
    );
    let late = client
        .check_out(
            a.clone(),
            near_acme(11.0),
            String::new(),
            "other".into(),
            None,
        )
        .expect_err("too late");
    assert_eq!(late.code(), "visit_auto_closed");
    client
        .check_in(b.clone(), near_acme(13.0))
        .expect("the next visit can start");
    let states: Vec<(String, String)> = client
        .list_visits()
        .expect("list")
        .into_iter()
        .map(|v| (v.visit.purpose, v.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("Second".to_string(), "open".to_string()),
            ("First".to_string(), "auto_closed".to_string())
        ],
        "newest first"
    );
}

#[test]
fn visits_refuse_what_the_rules_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, acme) = rep_phone(&dir);
    assert_eq!(
        err_code(client.plan_visit(DocId::new().to_string(), None, String::new())),
        "unknown_customer"
    );
    assert_eq!(
        err_code(client.plan_visit(acme.clone(), Some("2026-02-30".into()), String::new())),
        "invalid_date"
    );
    let a = client
        .plan_visit(acme.clone(), None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    assert_eq!(
        err_code(client.check_out(
            a.clone(),
            near_acme(5.0),
            String::new(),
            "order".into(),
            None
        )),
        "not_checked_in"
    );
    let mut bad = near_acme(5.0);
    bad.provider = "carrier pigeon".into();
    assert_eq!(
        err_code(client.check_in(a.clone(), bad)),
        "invalid_location_provider"
    );
    let mut bad = near_acme(5.0);
    bad.lat = 95.0;
    assert_eq!(
        err_code(client.check_in(a.clone(), bad)),
        "invalid_latitude"
    );
    let mut bad = near_acme(5.0);
    bad.wifi_bssid = Some("not-a-bssid".into());
    assert_eq!(err_code(client.check_in(a.clone(), bad)), "invalid_bssid");
    assert!(
        client
            .get_visit(a.clone())
            .expect("get")
            .visit
            .check_in
            .is_none(),
        "nothing stored"
    );

    client.check_in(a.clone(), near_acme(5.0)).expect("in");
    assert_eq!(
        err_code(client.check_in(a.clone(), near_acme(6.0))),
        "already_checked_in"
    );
    assert_eq!(
        err_code(client.cancel_visit(a.clone())),
        "visit_already_made"
    );
    assert_eq!(
        err_code(client.check_out(
            a.clone(),
            near_acme(7.0),
            String::new(),
            "sold".into(),
            None
        )),
        "invalid_visit_outcome"
    );
    // A rep cannot review; the report is the manager's to review.
    client.advance_manual_clock(MIN).expect("time");
    client
        .check_out(a.clone(), near_acme(7.0), "ok".into(), "order".into(), None)
        .expect("out");
    assert_eq!(
        err_code(client.review_visit(a.clone(), "approved".into(), String::new())),
        "forbidden"
    );

    let c = client
        .plan_visit(acme, None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    assert_eq!(
        client.cancel_visit(c.clone()).expect("cancel").state,
        "cancelled"
    );
    assert_eq!(
        err_code(client.check_in(c, near_acme(5.0))),
        "visit_cancelled"
    );
}

#[test]
fn a_manager_reviews_a_reps_visit_report_on_their_phone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, rep, acme) = rep_phone(&dir);
    let a = client
        .plan_visit(acme, None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    client.check_in(a.clone(), near_acme(5.0)).expect("in");
    // The manager's phone holds the rep's visit (here: the same store, another session).
    let manager = UserId::new();
    login_as(&client, "http://127.0.0.1:1", manager, "manager");
    assert_eq!(
        err_code(client.review_visit(a.clone(), "approved".into(), String::new())),
        "not_reviewable",
        "no report yet"
    );
    assert_eq!(
        err_code(client.check_out(
            a.clone(),
            near_acme(6.0),
            String::new(),
            "order".into(),
            None
        )),
        "forbidden",
        "only the rep checks out"
    );
    login_as(&client, "http://127.0.0.1:1", rep, "field_rep");
    client.advance_manual_clock(30 * MIN).expect("time");
    client
        .check_out(
            a.clone(),
            near_acme(6.0),
            "Signed".into(),
            "order".into(),
            None,
        )
        .expect("out");
    login_as(&client, "http://127.0.0.1:1", manager, "manager");
    assert_eq!(
        err_code(client.review_visit(a.clone(), "comment".into(), " ".into())),
        "missing_field"
    );
    assert_eq!(
        err_code(client.review_visit(a.clone(), "maybe".into(), String::new())),
        "invalid_review_decision"
    );
    client
        .review_visit(a.clone(), "comment".into(), "Send the quote today".into())
        .expect("comment");
    client.advance_manual_clock(MIN).expect("time");
    let v = client
        .review_visit(a.clone(), "approved".into(), String::new())
        .expect("approve");
    assert_eq!(v.visit.reviews.len(), 2);
    assert_eq!(v.visit.reviews[0].decision, ReviewDecision::Comment);
    assert_eq!(v.visit.reviews[1].decision, ReviewDecision::Approved);
    assert!(v.visit.reviews.iter().all(|r| r.by == manager));
    assert_eq!(
        v.visit.reviews[1].at_ms,
        T0 + 31 * MIN,
        "dated on the client's clock"
    );
}

#[test]
fn events_made_offline_days_later_are_dated_by_the_monotonic_clock_within_the_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    // The server's clock is 90 s ahead of the phone's wall clock at the last sync.
    let server = clock_server(T0 + 90_000);
    fake_login(&client, &server.url);
    client
        .set_manual_clock(T0, 10 * HOUR, "boot-a".into())
        .expect("clock");
    client.sync().expect("sync");
    let acme = client
        .create_customer(crate::tests::acme())
        .expect("customer")
        .customer
        .id
        .to_string();
    let offset = T0 + 90_000 - 10 * HOUR;
    assert_eq!(
        client.clock_status().expect("c").server_offset_ms,
        Some(offset)
    );

    // Three days offline; the owner sets the wall clock back a day.
    client.advance_manual_clock(3 * DAY).expect("offline");
    client.set_manual_wall_clock(T0 + 2 * DAY).expect("moved");
    let a = client
        .plan_visit(acme.clone(), None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    let v = client.check_in(a.clone(), near_acme(5.0)).expect("in");
    let ev = v.visit.expect("visit").visit.check_in.expect("evidence");
    assert_eq!(
        ev.device_time_ms,
        T0 + 2 * DAY,
        "what the phone's wall clock said"
    );
    assert_eq!(ev.monotonic_ms, Some(10 * HOUR + 3 * DAY));
    assert_eq!(ev.server_offset_ms, Some(offset));
    assert_eq!(ev.event_time_ms(), T0 + 90_000 + 3 * DAY, "the real time");
    assert_eq!(v.verdict.event_time_ms, T0 + 90_000 + 3 * DAY);
    assert!(codes(&v.verdict).contains(&"clock_off"), "{:?}", v.verdict);

    // The phone restarts: the offset no longer holds, the wall clock (set right again) is all
    // there is.
    client
        .set_manual_clock(T0 + 3 * DAY + HOUR, 60_000, "boot-b".into())
        .expect("reboot");
    let out = client
        .check_out(a, near_acme(8.0), String::new(), "order".into(), None)
        .expect("out");
    let ev = out
        .visit
        .expect("visit")
        .visit
        .check_out
        .expect("report")
        .evidence;
    assert_eq!(ev.server_offset_ms, None);
    assert_eq!(ev.monotonic_ms, Some(60_000));
    assert_eq!(ev.event_time_ms(), T0 + 3 * DAY + HOUR);
    assert!(codes(&out.verdict).contains(&"clock_unverified"));
}

/// A project with two sites: Yard in Chengdu (Asia/Shanghai, a 200 m circle) and Lab in
/// Berlin (Europe/Berlin, no geofence). Returns (project id, Yard id, Lab id).
fn project_with_sites(client: &FieldsyncClient) -> (String, String, String) {
    let p = client
        .create_project(NewProject {
            name: "Tower B".into(),
            ..Default::default()
        })
        .expect("project")
        .project
        .id
        .to_string();
    let yard = client
        .add_site(
            p.clone(),
            NewSite {
                name: "Yard".into(),
                address: None,
                timezone: "Asia/Shanghai".into(),
                geofence: Some(NewSite::circle(30.5, 104.0, 200.0)),
            },
        )
        .expect("yard")
        .id;
    let lab = client
        .add_site(
            p.clone(),
            NewSite {
                name: "Lab".into(),
                address: None,
                timezone: "Europe/Berlin".into(),
                geofence: None,
            },
        )
        .expect("lab")
        .id;
    (p, yard, lab)
}

/// A GPS fix `north_m` metres north of the Yard's centre.
fn at_yard(north_m: f64) -> LocationFix {
    LocationFix::gps(30.5 + north_m / 111_195.0, 104.0, 8.0)
}

#[test]
fn punches_are_graded_against_the_site_and_unknown_sites_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, me, _) = rep_phone(&dir);
    let (p, yard, lab) = project_with_sites(&client);

    let inside = client
        .punch(p.clone(), yard.clone(), "in".into(), at_yard(50.0), None)
        .expect("punch in");
    assert_eq!(
        inside.verdict.level,
        TrustLevel::Verified,
        "{:?}",
        inside.verdict
    );
    assert_eq!(inside.verdict.distance_m, Some(0.0));
    let view = inside.punch.expect("punch");
    assert_eq!(view.punch.user, me);
    assert_eq!(view.punch.direction, Direction::In);
    assert_eq!(view.site_name.as_deref(), Some("Yard"));
    assert_eq!(view.project_name.as_deref(), Some("Tower B"));
    assert_eq!(view.time_ms, T0);
    assert!(view.pending);

    client.advance_manual_clock(4 * HOUR).expect("time");
    let outside = client
        .punch(
            p.clone(),
            "Yard".into(),
            "out".into(),
            at_yard(1_400.0),
            Some("left early".into()),
        )
        .expect("a site may be named; the punch is kept, graded");
    assert_eq!(outside.verdict.level, TrustLevel::Rejected);
    let reason = outside
        .verdict
        .reasons
        .iter()
        .find(|r| r.code == "out_of_range")
        .expect("out of range");
    assert_eq!(
        reason.message,
        "You are 1.2 km outside the area of site Yard."
    );
    assert_eq!(
        outside.punch.expect("punch").punch.site,
        yard,
        "stored by id"
    );

    // A site without a geofence cannot be checked.
    client.advance_manual_clock(HOUR).expect("time");
    let lab_punch = client
        .punch(p.clone(), lab, "in".into(), at_yard(0.0), None)
        .expect("lab");
    assert_eq!(lab_punch.verdict.level, TrustLevel::Unverifiable);

    assert_eq!(
        err_code(client.punch(p.clone(), "Moon".into(), "in".into(), at_yard(0.0), None)),
        "unknown_site"
    );
    assert_eq!(
        err_code(client.punch(
            DocId::new().to_string(),
            yard.clone(),
            "in".into(),
            at_yard(0.0),
            None
        )),
        "unknown_site"
    );
    assert_eq!(
        err_code(client.punch(
            p.clone(),
            yard.clone(),
            "sideways".into(),
            at_yard(0.0),
            None
        )),
        "invalid_punch_direction"
    );

    let all = client.list_punches(None, None).expect("list");
    assert_eq!(all.len(), 3);
    assert!(
        all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms),
        "oldest first"
    );
    let morning = client
        .list_punches(Some(T0), Some(T0 + HOUR))
        .expect("list");
    assert_eq!(morning.len(), 1);
    assert_eq!(morning[0].punch.direction, Direction::In);
}

#[test]
fn a_punch_cannot_be_changed_through_any_edit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, _) = rep_phone(&dir);
    let (p, yard, _) = project_with_sites(&client);
    let punch = client
        .punch(p, yard, "in".into(), at_yard(10.0), None)
        .expect("punch")
        .punch
        .expect("punch")
        .punch;
    let err = client
        .lock()
        .edit(
            &punch.id.to_string(),
            fieldsync_sync::RecordKind::Punch,
            |r| {
                if let fieldsync_sync::Record::Punch(p) = r {
                    p.note = Some("actually 08:00".into());
                }
                Ok(())
            },
        )
        .expect_err("immutable");
    assert_eq!(err.code(), "punch_immutable");
    let listed = client.list_punches(None, None).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].punch, punch, "unchanged");
}

#[test]
fn a_make_up_time_is_read_in_the_sites_time_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, _) = rep_phone(&dir);
    let (p, yard, lab) = project_with_sites(&client);
    // 2026-11-20 09:00 local: 01:00 UTC in Shanghai (UTC+8), 08:00 UTC in Berlin (UTC+1).
    let shanghai = client
        .request_makeup(
            p.clone(),
            yard,
            "in".into(),
            "2026-11-20 09:00".into(),
            "Phone was flat".into(),
        )
        .expect("shanghai");
    assert_eq!(shanghai.makeup.at_ms, 1_795_136_400_000);
    assert_eq!(shanghai.local_time, "2026-11-20 09:00");
    assert_eq!(shanghai.timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(shanghai.state, "requested");
    let berlin = client
        .request_makeup(
            p.clone(),
            lab.clone(),
            "in".into(),
            "2026-11-20 09:00".into(),
            "Forgot".into(),
        )
        .expect("berlin");
    assert_eq!(berlin.makeup.at_ms, 1_795_161_600_000);
    assert_eq!(berlin.makeup.at_ms - shanghai.makeup.at_ms, 7 * HOUR);

    // Summer time in Berlin is UTC+2; 02:30 on the last Sunday of March never happens, and on
    // the last Sunday of October it happens twice (the earlier one is meant).
    let summer = client
        .request_makeup(
            p.clone(),
            lab.clone(),
            "out".into(),
            "2026-07-01 17:00".into(),
            "x".into(),
        )
        .expect("summer");
    assert_eq!(summer.makeup.at_ms, 1_782_918_000_000);
    let err = client
        .request_makeup(
            p.clone(),
            lab.clone(),
            "in".into(),
            "2026-03-29 02:30".into(),
            "x".into(),
        )
        .expect_err("skipped");
    assert_eq!(err.code(), "nonexistent_local_time");
    assert!(err.message().contains("Europe/Berlin"), "{}", err.message());
    let twice = client
        .request_makeup(
            p.clone(),
            lab.clone(),
            "in".into(),
            "2026-10-25 02:30".into(),
            "x".into(),
        )
        .expect("repeated hour");
    assert_eq!(
        twice.makeup.at_ms, 1_792_888_200_000,
        "00:30 UTC, still summer time"
    );

    for (bad, code) in [
        ("2026-11-20", "invalid_local_time"),
        ("20.11.2026 09:00", "invalid_local_time"),
        ("2026-12-20 09:00", "future_time"),
    ] {
        assert_eq!(
            err_code(client.request_makeup(
                p.clone(),
                lab.clone(),
                "in".into(),
                bad.into(),
                "x".into()
            )),
            code,
            "{bad}"
        );
    }
    assert_eq!(
        err_code(client.request_makeup(
            p.clone(),
            lab.clone(),
            "in".into(),
            "2026-11-20 09:00".into(),
            " ".into()
        )),
        "missing_field",
        "a reason is required"
    );
    let listed = client.list_makeups().expect("list");
    assert_eq!(listed.len(), 4);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].makeup.at_ms >= w[1].makeup.at_ms)
    );
}

#[test]
fn a_manager_decides_a_make_up_request_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, rep, _) = rep_phone(&dir);
    let (p, yard, _) = project_with_sites(&client);
    let m = client
        .request_makeup(
            p,
            yard,
            "in".into(),
            "2026-11-23 08:55".into(),
            "Flat battery".into(),
        )
        .expect("request")
        .makeup
        .id
        .to_string();
    assert_eq!(
        err_code(client.decide_makeup(m.clone(), true, None)),
        "forbidden",
        "not for the worker to decide"
    );
    let manager = UserId::new();
    login_as(&client, "http://127.0.0.1:1", manager, "manager");
    let v = client
        .decide_makeup(m.clone(), false, Some("Punch in on time".into()))
        .expect("decide");
    assert_eq!(v.state, "rejected");
    let d = v.makeup.decision.expect("decision");
    assert_eq!((d.by, d.at_ms), (manager, T0));
    assert_eq!(v.makeup.user, rep);
    assert_eq!(
        err_code(client.decide_makeup(m, true, None)),
        "already_decided"
    );
}

/// The answer to `GET /v1/attendance/me?month=2026-11` for `user`: assigned to the Yard only,
/// with a 1 km default radius; one normal day.
fn month_answer(user: UserId, project: &str, yard: &str) -> String {
    use chrono::NaiveDate;
    let policy = Policy {
        default_radius_m: 1_000.0,
        ..Policy::default()
    };
    let shift = Shift {
        name: "Day".into(),
        start_min: 9 * 60,
        end_min: 18 * 60,
        grace_late_min: 5,
        grace_early_min: 5,
        serious_late_min: 30,
        absent_late_min: 240,
        window_before_min: 120,
        window_after_min: 240,
        break_min: 60,
        required_min: 480,
    };
    let day = DayRecord {
        date: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
        status: DayStatus::Normal,
        flags: vec![DayStatus::Normal],
        explanation: "In 08:57, out 18:02.".into(),
        due: true,
        scheduled_start_ms: Some(1_795_395_600_000),
        scheduled_end_ms: Some(1_795_428_000_000),
        first_in_ms: Some(1_795_395_420_000),
        last_out_ms: Some(1_795_428_120_000),
        worked_min: 484,
        overtime_min: 4,
        late_min: 0,
        early_leave_min: 0,
        punches: 2,
        makeups: 0,
        out_of_area: 0,
        suspicious: 0,
    };
    serde_json::json!({
        "month": "2026-11",
        "user": user,
        "policy": policy,
        "assignments": [{
            "project": project, "project_name": "Tower B", "site": yard, "site_name": "Yard",
            "timezone": "Asia/Shanghai", "shift": shift
        }],
        "days": [day],
        "summary": fieldsync_sync::attendance::summarize(std::slice::from_ref(&day)),
    })
    .to_string()
}

#[test]
fn my_attendance_comes_from_the_server_and_caches_the_policy_and_assignments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, me, acme) = rep_phone(&dir);
    let (p, yard, lab) = project_with_sites(&client);
    // A punch made before the server is reachable, and one from last month.
    client
        .punch(p.clone(), lab.clone(), "in".into(), at_yard(0.0), None)
        .expect("lab punch while nothing is cached");
    client.set_manual_wall_clock(T0 - 30 * DAY).expect("wall");
    client.advance_manual_clock(MIN).expect("time");
    client
        .punch(p.clone(), yard.clone(), "in".into(), at_yard(0.0), None)
        .expect("dated last month by the wall clock");
    client.set_manual_wall_clock(T0 + 2 * MIN).expect("wall");

    let offline = client
        .my_attendance("2026-11".into())
        .expect_err("no server");
    assert_eq!(offline.code(), "offline");
    assert_eq!(client.list_punches(None, None).expect("list").len(), 2);
    assert_eq!(
        err_code(client.my_attendance("2026-13".into())),
        "invalid_month"
    );

    let answer = month_answer(me, &p, &yard);
    let server = FakeServer::start(move |req| match req.path.as_str() {
        "/v1/attendance/me?month=2026-11" => (200, answer.clone()),
        _ => (404, fake_server::error("not_found", "No such route.")),
    });
    login_as(&client, &server.url, me, "field_rep");
    let month = client.my_attendance("2026-11".into()).expect("month");
    assert_eq!(month.month, "2026-11");
    assert_eq!(month.user, me.to_string());
    assert_eq!(month.days.len(), 1);
    assert_eq!(month.days[0].status, DayStatus::Normal);
    assert_eq!(month.summary.days_present, 1);
    assert_eq!(month.assignments.len(), 1);
    assert_eq!(
        month.assignments[0].shift.as_ref().map(|s| s.start_min),
        Some(540)
    );
    assert_eq!(month.policy.default_radius_m, 1_000.0);
    let pending: Vec<&str> = month
        .pending_punches
        .iter()
        .map(|p| p.punch.site.as_str())
        .collect();
    assert_eq!(pending, vec![lab.as_str()], "this month's only");
    let seen = server.seen();
    assert_eq!(seen[0].method, "GET");
    // A server that answers something unreadable is not "offline".
    let garbled = FakeServer::start(|_| (200, "{\"month\": 7}".into()));
    login_as(&client, &garbled.url, me, "field_rep");
    assert_eq!(
        err_code(client.my_attendance("2026-11".into())),
        "network_error"
    );
    login_as(&client, &server.url, me, "field_rep");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer access"));

    // The cached assignments now refuse the Lab, and previews use the tenant's radius.
    assert_eq!(
        err_code(client.punch(p.clone(), lab.clone(), "out".into(), at_yard(0.0), None)),
        "not_assigned"
    );
    assert_eq!(
        err_code(client.request_makeup(
            p.clone(),
            lab,
            "out".into(),
            "2026-11-23 18:00".into(),
            "x".into()
        )),
        "not_assigned"
    );
    client.advance_manual_clock(HOUR).expect("time");
    client
        .punch(p, yard, "out".into(), at_yard(30.0), None)
        .expect("assigned");
    let v = client
        .plan_visit(acme, None, String::new())
        .expect("plan")
        .visit
        .id
        .to_string();
    client.advance_manual_clock(HOUR).expect("time");
    let ci = client.check_in(v, near_acme(800.0)).expect("in");
    assert_eq!(ci.verdict.allowed_m, Some(1_000.0));
    assert!(!codes(&ci.verdict).contains(&"out_of_range"));
}

#[test]
fn sync_refreshes_the_attendance_setup_but_does_not_fail_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = fake_login(&client, "http://127.0.0.1:1");
    client
        .set_manual_clock(T0, HOUR, "boot-a".into())
        .expect("clock");
    let project = DocId::new().to_string();
    let answer = month_answer(me, &project, "yard-1");
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let server = FakeServer::start(move |req| {
        if req.path == "/v1/sync/pull" {
            (200, fake_server::empty_pull(T0))
        } else if req.path == "/v1/attendance/setup"
            && flag.load(std::sync::atomic::Ordering::SeqCst)
        {
            (200, answer.clone())
        } else {
            (500, fake_server::error("internal", "Something broke."))
        }
    });
    login_as(&client, &server.url, me, "field_rep");
    client
        .sync()
        .expect("a broken attendance route does not fail the sync");
    assert!(
        store::attendance_setup_get(&client.lock().store.conn)
            .expect("get")
            .is_none()
    );
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    client.sync().expect("sync");
    let cached = store::attendance_setup_get(&client.lock().store.conn)
        .expect("get")
        .expect("cached");
    assert!(
        cached.assignments.contains("yard-1"),
        "{}",
        cached.assignments
    );
    assert_eq!(
        client.lock().policy().expect("policy").default_radius_m,
        1_000.0
    );
}
