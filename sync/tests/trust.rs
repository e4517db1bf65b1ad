//! Location trust: every grading rule of `trust::grade` and its helpers, one test each, with the
//! exact codes, levels and the sentences a rep or manager reads; the well-formedness checks of
//! `Evidence::check`; and a property test that grading never panics and never grades better than
//! its worst reason.
//!
//! Distances are built by moving due north from a known point: along a meridian the haversine
//! distance `trust::distance_m` computes is exactly `radius × Δlat`, so the messages ("1.2 km")
//! can be asserted to the character.

use fieldsync_sync::trust::{
    self, PriorEvent, Reason, Severity, Target, TrustLevel, Verdict, human_distance, human_duration,
};
use fieldsync_sync::{Evidence, GeoPoint, Geofence, Policy, Provider};

/// An instant in June 2025 (ms since the Unix epoch): the server's clock at the event.
const T: i64 = 1_750_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// The mean earth radius the haversine distance uses (GRS80, metres).
const EARTH_M: f64 = 6_371_008.8;
/// Acme Ltd, in Berlin.
const ACME: GeoPoint = GeoPoint {
    lat: 52.52,
    lon: 13.405,
};

/// `p` moved `m` metres due north.
fn north(p: GeoPoint, m: f64) -> GeoPoint {
    GeoPoint {
        lat: p.lat + (m / EARTH_M).to_degrees(),
        lon: p.lon,
    }
}

/// A good GPS fix at `p`, taken 5 s before an event the phone dated by its monotonic clock at
/// exactly `T`, with the wall clock right.
fn fix_at(p: GeoPoint) -> Evidence {
    Evidence {
        lat: p.lat,
        lon: p.lon,
        accuracy_m: 10.0,
        altitude_m: None,
        provider: Provider::Gps,
        fix_time_ms: T - 5_000,
        mock: false,
        wifi_bssid: None,
        device_time_ms: T,
        monotonic_ms: Some(2 * HOUR),
        server_offset_ms: Some(T - 2 * HOUR),
    }
}

fn acme(radius_m: f64) -> Target<'static> {
    Target::Customer {
        name: "Acme Ltd",
        location: Some(ACME),
        radius_m,
    }
}

fn check_in(ev: &Evidence, target: &Target<'_>) -> Verdict {
    trust::grade("check-in", ev, target, &[], &Policy::default())
}

fn check_in_after(ev: &Evidence, recent: &[PriorEvent]) -> Verdict {
    trust::grade("check-in", ev, &acme(300.0), recent, &Policy::default())
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

/// The one reason of the verdict, which must have `code`.
#[track_caller]
fn sole_reason<'v>(v: &'v Verdict, code: &str) -> &'v Reason {
    assert_eq!(codes(v), vec![code], "{v:#?}");
    &v.reasons[0]
}

fn prior(p: GeoPoint, time_ms: i64, accuracy_m: f64) -> PriorEvent {
    PriorEvent {
        time_ms,
        lat: p.lat,
        lon: p.lon,
        accuracy_m,
    }
}

/// A square of about 1.1 km × 0.68 km in Berlin (the "Berlin yard" site).
fn berlin_square() -> Geofence {
    let corner = |lat, lon| GeoPoint { lat, lon };
    Geofence::Polygon {
        points: vec![
            corner(52.50, 13.40),
            corner(52.50, 13.41),
            corner(52.51, 13.41),
            corner(52.51, 13.40),
        ],
    }
}

fn site<'a>(fence: &'a Geofence) -> Target<'a> {
    Target::Site {
        name: "Berlin yard",
        fence: Some(fence),
        margin_m: 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// Where, against a customer
// ---------------------------------------------------------------------------------------------

#[test]
fn check_in_within_the_radius_is_verified_without_reasons() {
    let v = check_in(&fix_at(north(ACME, 50.0)), &acme(300.0));
    assert_eq!(v.level, TrustLevel::Verified);
    assert!(v.reasons.is_empty(), "{:#?}", v.reasons);
    let d = v.distance_m.expect("a distance to the customer");
    assert!((d - 50.0).abs() < 0.01, "{d}");
    assert_eq!(v.allowed_m, Some(300.0));
    assert_eq!(v.event_time_ms, T);
}

#[test]
fn check_in_just_outside_the_radius_but_within_accuracy_is_suspicious_near_boundary() {
    let mut ev = fix_at(north(ACME, 320.0));
    ev.accuracy_m = 40.0;
    let v = check_in(&ev, &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    let r = sole_reason(&v, "near_boundary");
    assert_eq!(r.severity, Severity::Suspicious);
    assert_eq!(
        r.message,
        "You are 320 m from Acme Ltd, but the fix is only accurate to 40 m."
    );
}

#[test]
fn check_in_clearly_out_of_range_is_rejected_with_the_distance_and_the_allowance() {
    let v = check_in(&fix_at(north(ACME, 1_200.0)), &acme(300.0));
    assert_eq!(v.level, TrustLevel::Rejected);
    let r = sole_reason(&v, "out_of_range");
    assert_eq!(r.severity, Severity::Rejected);
    assert_eq!(
        r.message,
        "You are 1.2 km from Acme Ltd; the check-in allows 300 m."
    );
    let d = v.distance_m.expect("distance");
    assert!((d - 1_200.0).abs() < 0.01, "{d}");
}

#[test]
fn out_of_range_is_decided_by_distance_minus_accuracy() {
    // 340 m away with 40 m accuracy could be 300 m away: near. With 39 m it could not.
    let mut ev = fix_at(north(ACME, 340.0));
    ev.accuracy_m = 40.5;
    assert_eq!(codes(&check_in(&ev, &acme(300.0))), vec!["near_boundary"]);
    ev.accuracy_m = 39.0;
    assert_eq!(codes(&check_in(&ev, &acme(300.0))), vec!["out_of_range"]);
}

#[test]
fn human_distance_is_metres_below_a_kilometre_then_tenths_then_whole_kilometres() {
    assert_eq!(human_distance(0.0), "0 m");
    assert_eq!(human_distance(85.0), "85 m");
    assert_eq!(human_distance(84.6), "85 m");
    assert_eq!(human_distance(999.0), "999 m");
    assert_eq!(human_distance(1_000.0), "1.0 km");
    assert_eq!(human_distance(1_200.0), "1.2 km");
    assert_eq!(human_distance(1_249.0), "1.2 km");
    assert_eq!(human_distance(99_000.0), "99.0 km");
    assert_eq!(human_distance(100_000.0), "100 km");
    assert_eq!(human_distance(120_000.0), "120 km");
    assert_eq!(human_distance(120_400.0), "120 km");
}

#[test]
fn a_customers_own_visit_radius_replaces_the_default() {
    // The caller passes the customer's `visit_radius_m` when it has one, the policy's default
    // otherwise; 1.2 km is out of range by default and in range of a 1.5 km customer.
    let ev = fix_at(north(ACME, 1_200.0));
    let default = check_in(&ev, &acme(Policy::default().default_radius_m));
    assert_eq!(default.level, TrustLevel::Rejected);
    assert_eq!(default.allowed_m, Some(300.0));

    let wide = check_in(&ev, &acme(1_500.0));
    assert_eq!(wide.level, TrustLevel::Verified, "{:#?}", wide.reasons);
    assert!(wide.reasons.is_empty());
    assert_eq!(wide.allowed_m, Some(1_500.0));

    let far = check_in(&fix_at(north(ACME, 2_000.0)), &acme(1_500.0));
    assert_eq!(
        sole_reason(&far, "out_of_range").message,
        "You are 2.0 km from Acme Ltd; the check-in allows 1.5 km."
    );
}

#[test]
fn customer_without_a_location_leaves_the_event_unverifiable() {
    let target = Target::Customer {
        name: "Acme Ltd",
        location: None,
        radius_m: 300.0,
    };
    let v = check_in(&fix_at(ACME), &target);
    assert_eq!(v.level, TrustLevel::Unverifiable);
    let r = sole_reason(&v, "no_target_location");
    assert_eq!(r.severity, Severity::Info);
    assert_eq!(
        r.message,
        "Acme Ltd has no location on record, so the check-in could not be compared with it."
    );
    assert_eq!(v.distance_m, None);
    assert_eq!(v.allowed_m, None);
}

#[test]
fn site_without_a_geofence_leaves_the_punch_unverifiable() {
    let target = Target::Site {
        name: "Berlin yard",
        fence: None,
        margin_m: 0.0,
    };
    let v = trust::grade("punch", &fix_at(ACME), &target, &[], &Policy::default());
    assert_eq!(v.level, TrustLevel::Unverifiable);
    assert_eq!(
        sole_reason(&v, "no_target_location").message,
        "Site Berlin yard has no geofence, so the punch could not be compared with it."
    );
    assert_eq!(v.distance_m, None);
}

// ---------------------------------------------------------------------------------------------
// Where, against a site's geofence
// ---------------------------------------------------------------------------------------------

#[test]
fn punch_inside_a_circle_fence_is_verified_at_distance_zero() {
    let fence = Geofence::Circle {
        center: ACME,
        radius_m: 200.0,
    };
    let v = trust::grade(
        "punch",
        &fix_at(north(ACME, 150.0)),
        &site(&fence),
        &[],
        &Policy::default(),
    );
    assert_eq!(v.level, TrustLevel::Verified);
    assert!(v.reasons.is_empty(), "{:#?}", v.reasons);
    assert_eq!(v.distance_m, Some(0.0));
    assert_eq!(v.allowed_m, Some(0.0));
}

#[test]
fn punch_outside_a_circle_fence_is_rejected_with_the_distance_to_its_edge() {
    let fence = Geofence::Circle {
        center: ACME,
        radius_m: 200.0,
    };
    let v = trust::grade(
        "punch",
        &fix_at(north(ACME, 500.0)),
        &site(&fence),
        &[],
        &Policy::default(),
    );
    assert_eq!(v.level, TrustLevel::Rejected);
    let r = sole_reason(&v, "out_of_range");
    // No margin: nothing is "allowed" outside the area, and the message does not say so.
    assert_eq!(
        r.message,
        "You are 300 m outside the area of site Berlin yard."
    );
    assert!(!r.message.contains("allows"));
    let d = v.distance_m.expect("distance");
    assert!((d - 300.0).abs() < 0.01, "{d}");
}

#[test]
fn a_site_margin_is_allowed_and_named_in_the_message() {
    let fence = Geofence::Circle {
        center: ACME,
        radius_m: 200.0,
    };
    let target = Target::Site {
        name: "Berlin yard",
        fence: Some(&fence),
        margin_m: 50.0,
    };
    let policy = Policy::default();
    let near = trust::grade("punch", &fix_at(north(ACME, 240.0)), &target, &[], &policy);
    assert_eq!(near.level, TrustLevel::Verified, "{:#?}", near.reasons);
    let far = trust::grade("punch", &fix_at(north(ACME, 500.0)), &target, &[], &policy);
    assert_eq!(
        sole_reason(&far, "out_of_range").message,
        "You are 300 m outside the area of site Berlin yard; the punch allows 50 m."
    );
}

#[test]
fn punch_inside_a_polygon_fence_is_verified_at_distance_zero() {
    let fence = berlin_square();
    for p in [
        GeoPoint {
            lat: 52.505,
            lon: 13.405,
        },
        // a few metres inside the north-east corner
        GeoPoint {
            lat: 52.50995,
            lon: 13.40995,
        },
    ] {
        let v = trust::grade("punch", &fix_at(p), &site(&fence), &[], &Policy::default());
        assert_eq!(v.level, TrustLevel::Verified, "{p:?}: {:#?}", v.reasons);
        assert_eq!(v.distance_m, Some(0.0), "{p:?}");
    }
}

#[test]
fn distance_to_a_polygon_fence_is_the_distance_to_its_nearest_edge_or_corner() {
    let fence = berlin_square();
    // (point outside, nearest point of the square): the true distance is the great-circle
    // distance between them.
    let cases = [
        // north of the top edge
        (
            GeoPoint {
                lat: 52.515,
                lon: 13.405,
            },
            GeoPoint {
                lat: 52.51,
                lon: 13.405,
            },
            556.0,
        ),
        // east of the right edge
        (
            GeoPoint {
                lat: 52.505,
                lon: 13.42,
            },
            GeoPoint {
                lat: 52.505,
                lon: 13.41,
            },
            677.0,
        ),
        // south-west of the bottom-left corner
        (
            GeoPoint {
                lat: 52.495,
                lon: 13.39,
            },
            GeoPoint {
                lat: 52.50,
                lon: 13.40,
            },
            875.0,
        ),
    ];
    for (p, nearest, about) in cases {
        let truth = trust::distance_m(p, nearest);
        assert!((truth - about).abs() < 1.0, "geometry of the case: {truth}");
        let d = trust::distance_to_fence_m(p, &fence);
        assert!((d - truth).abs() < 3.0, "{p:?}: {d} m, expected {truth} m");
    }
}

#[test]
fn punch_outside_a_polygon_fence_is_rejected_with_the_distance() {
    let fence = berlin_square();
    let v = trust::grade(
        "punch",
        &fix_at(GeoPoint {
            lat: 52.515,
            lon: 13.405,
        }),
        &site(&fence),
        &[],
        &Policy::default(),
    );
    assert_eq!(v.level, TrustLevel::Rejected);
    let r = sole_reason(&v, "out_of_range");
    assert!(
        r.message == "You are 556 m outside the area of site Berlin yard."
            || r.message == "You are 557 m outside the area of site Berlin yard.",
        "{}",
        r.message
    );
    let d = v.distance_m.expect("distance");
    assert!((d - 556.0).abs() < 3.0, "{d}");
}

#[test]
fn punch_just_outside_a_polygon_within_accuracy_is_near_boundary() {
    let fence = berlin_square();
    let mut ev = fix_at(north(
        GeoPoint {
            lat: 52.51,
            lon: 13.405,
        },
        30.0,
    ));
    ev.accuracy_m = 50.0;
    let v = trust::grade("punch", &ev, &site(&fence), &[], &Policy::default());
    assert_eq!(v.level, TrustLevel::Suspicious);
    assert_eq!(
        sole_reason(&v, "near_boundary").message,
        "You are 30 m outside the area of site Berlin yard, but the fix is only accurate to 50 m."
    );
}

// ---------------------------------------------------------------------------------------------
// The fix itself
// ---------------------------------------------------------------------------------------------

#[test]
fn mocked_location_is_rejected_even_on_target() {
    let mut ev = fix_at(ACME);
    ev.mock = true;
    let v = check_in(&ev, &acme(300.0));
    assert_eq!(v.level, TrustLevel::Rejected);
    let r = sole_reason(&v, "mock_location");
    assert_eq!(r.severity, Severity::Rejected);
    assert_eq!(
        r.message,
        "The phone reported this location as mocked or simulated."
    );
}

#[test]
fn poor_accuracy_is_suspicious_with_the_accuracy_and_the_limit() {
    let mut ev = fix_at(ACME);
    ev.accuracy_m = 100.0;
    assert!(
        check_in(&ev, &acme(300.0)).reasons.is_empty(),
        "the limit itself is fine"
    );
    ev.accuracy_m = 180.0;
    let v = check_in(&ev, &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    let r = sole_reason(&v, "poor_accuracy");
    assert_eq!(r.severity, Severity::Suspicious);
    assert_eq!(
        r.message,
        "The location fix was only accurate to 180 m (limit 100 m)."
    );
}

#[test]
fn stale_fix_is_suspicious_with_its_age_and_the_limit() {
    let mut ev = fix_at(ACME);
    ev.fix_time_ms = T - 5 * MIN;
    assert!(
        check_in(&ev, &acme(300.0)).reasons.is_empty(),
        "the limit itself is fine"
    );
    ev.fix_time_ms = T - 10 * MIN;
    let v = check_in(&ev, &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    assert_eq!(
        sole_reason(&v, "stale_fix").message,
        "The location fix was 10 min old at the check-in (limit 5 min)."
    );
}

#[test]
fn fix_dated_after_the_event_is_suspicious_beyond_a_minute() {
    let mut ev = fix_at(ACME);
    ev.fix_time_ms = T + 30_000;
    assert!(
        check_in(&ev, &acme(300.0)).reasons.is_empty(),
        "30 s is clock jitter"
    );
    ev.fix_time_ms = T + 2 * MIN;
    let v = check_in(&ev, &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    assert_eq!(
        sole_reason(&v, "fix_after_event").message,
        "The location fix is dated 2 min after the check-in."
    );
}

// ---------------------------------------------------------------------------------------------
// When
// ---------------------------------------------------------------------------------------------

/// The fix of `fix_at(ACME)`, with the phone's wall clock `skew` ms off server time (the fix is
/// dated by the same wrong wall clock, 5 s before the event).
fn with_wall_clock_off(skew: i64) -> Evidence {
    let mut ev = fix_at(ACME);
    ev.device_time_ms = T + skew;
    ev.fix_time_ms = T + skew - 5_000;
    ev
}

#[test]
fn phone_clock_ahead_of_server_time_is_suspicious_and_says_ahead() {
    let at_limit = check_in(&with_wall_clock_off(2 * MIN), &acme(300.0));
    assert!(at_limit.reasons.is_empty(), "{:#?}", at_limit.reasons);
    let v = check_in(&with_wall_clock_off(10 * MIN), &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    let r = sole_reason(&v, "clock_off");
    assert_eq!(r.severity, Severity::Suspicious);
    assert_eq!(
        r.message,
        "The phone's clock was 10 min ahead of server time; the check-in is dated by server time."
    );
    assert_eq!(
        v.event_time_ms, T,
        "dated by the monotonic clock, not the wall clock"
    );
}

#[test]
fn phone_clock_behind_server_time_is_suspicious_and_says_behind() {
    let v = check_in(&with_wall_clock_off(-(3 * HOUR + 10 * MIN)), &acme(300.0));
    assert_eq!(v.level, TrustLevel::Suspicious);
    assert_eq!(
        sole_reason(&v, "clock_off").message,
        "The phone's clock was 3 h 10 min behind server time; the check-in is dated by server time."
    );
    assert_eq!(v.event_time_ms, T);
}

#[test]
fn monotonic_dating_gives_server_time_even_when_the_wall_clock_is_days_off() {
    for skew in [-3 * DAY, 3 * DAY] {
        let ev = with_wall_clock_off(skew);
        assert_eq!(ev.event_time_ms(), T);
        let v = check_in(&ev, &acme(300.0));
        assert_eq!(v.event_time_ms, T, "skew {skew}");
        let r = sole_reason(&v, "clock_off");
        assert!(r.message.contains("3 d "), "{}", r.message);
    }
}

#[test]
fn without_monotonic_dating_the_event_is_dated_by_the_phone_and_says_so() {
    // After a reboot the offset is unknown (or the phone never had a monotonic reading).
    for (monotonic, offset) in [(None, None), (Some(5_000), None), (None, Some(T))] {
        let mut ev = with_wall_clock_off(3 * DAY);
        ev.monotonic_ms = monotonic;
        ev.server_offset_ms = offset;
        let v = check_in(&ev, &acme(300.0));
        assert_eq!(
            v.level,
            TrustLevel::Verified,
            "info reasons do not lower the grade"
        );
        let r = sole_reason(&v, "clock_unverified");
        assert_eq!(r.severity, Severity::Info);
        assert_eq!(
            r.message,
            "The phone has not synced since it last started, so the check-in is dated by its own clock."
        );
        assert_eq!(v.event_time_ms, T + 3 * DAY, "the phone's own clock");
    }
}

#[test]
fn human_duration_picks_the_two_largest_units() {
    assert_eq!(human_duration(0), "0 s");
    assert_eq!(human_duration(45_000), "45 s");
    assert_eq!(human_duration(59_999), "59 s");
    assert_eq!(human_duration(60_000), "1 min");
    assert_eq!(human_duration(7 * MIN + 30_000), "7 min");
    assert_eq!(human_duration(HOUR), "1 h");
    assert_eq!(human_duration(3 * HOUR + 10 * MIN), "3 h 10 min");
    assert_eq!(human_duration(2 * DAY), "2 d");
    assert_eq!(human_duration(2 * DAY + 4 * HOUR + 59 * MIN), "2 d 4 h");
    // Sign is for the sentence to say ("ahead", "behind", "after"), not the number.
    assert_eq!(human_duration(-90_000), "1 min");
    assert_eq!(human_duration(i64::MIN), "106751991167 d 7 h");
}

// ---------------------------------------------------------------------------------------------
// Against the user's other events
// ---------------------------------------------------------------------------------------------

#[test]
fn impossible_speed_from_the_nearest_earlier_event_is_suspicious() {
    let ev = fix_at(ACME);
    let recent = [
        // yesterday, next door: irrelevant, a later event is nearer in time
        prior(north(ACME, 20.0), T - DAY, 10.0),
        // ten minutes ago, 100 km away
        prior(north(ACME, 100_000.0), T - 10 * MIN, 10.0),
    ];
    let v = check_in_after(&ev, &recent);
    assert_eq!(v.level, TrustLevel::Suspicious);
    let r = sole_reason(&v, "impossible_speed");
    assert_eq!(r.severity, Severity::Suspicious);
    // (100 km - 10 m - 10 m) in 10 min = 599.88 km/h
    assert_eq!(
        r.message,
        "Reaching here from the previous event (100 km away, 10 min earlier) needs 600 km/h."
    );
}

#[test]
fn speed_is_not_measured_from_a_later_event_or_an_older_one_than_the_nearest() {
    let ev = fix_at(ACME);
    let far_older = prior(north(ACME, 100_000.0), T - 10 * MIN, 10.0);
    // Alone, the older event makes the check-in impossible (the test can fail)...
    assert_eq!(
        codes(&check_in_after(&ev, &[far_older])),
        vec!["impossible_speed"]
    );
    let recent = [
        // ...but a nearer earlier one, 1 km away five minutes ago (12 km/h), is what counts,
        prior(north(ACME, 1_000.0), T - 5 * MIN, 10.0),
        far_older,
        // and an event dated after this one is not "previous" at all.
        prior(north(ACME, 100_000.0), T + MIN, 10.0),
    ];
    let v = check_in_after(&ev, &recent);
    assert_eq!(v.level, TrustLevel::Verified, "{:#?}", v.reasons);
    assert!(v.reasons.is_empty());
    assert_eq!(
        codes(&check_in_after(&ev, &[recent[2]])),
        Vec::<&str>::new(),
        "a later event alone is ignored"
    );
}

#[test]
fn nearby_fixes_a_second_apart_are_not_a_speed_once_accuracies_are_subtracted() {
    // 100 m in 1 s is 360 km/h, but two fixes accurate to 60 m may be the same spot.
    let mut ev = fix_at(ACME);
    ev.accuracy_m = 60.0;
    let v = check_in_after(&ev, &[prior(north(ACME, 100.0), T - 1_000, 60.0)]);
    assert!(v.reasons.is_empty(), "{:#?}", v.reasons);
    // With precise fixes the same jump is impossible.
    ev.accuracy_m = 5.0;
    let v = check_in_after(&ev, &[prior(north(ACME, 100.0), T - 1_000, 5.0)]);
    assert_eq!(
        sole_reason(&v, "impossible_speed").message,
        "Reaching here from the previous event (100 m away, 1 s earlier) needs 324 km/h."
    );
}

#[test]
fn a_distant_event_at_the_same_instant_needs_infinite_speed() {
    let v = check_in_after(&fix_at(ACME), &[prior(north(ACME, 5_000.0), T, 10.0)]);
    assert_eq!(
        sole_reason(&v, "impossible_speed").message,
        "Reaching here from the previous event (5.0 km away, 0 s earlier) needs infinite km/h."
    );
}

#[test]
fn coordinates_repeating_another_events_exactly_are_suspicious() {
    let ev = fix_at(ACME);
    let v = check_in_after(&ev, &[prior(ACME, T - DAY, 10.0)]);
    assert_eq!(v.level, TrustLevel::Suspicious);
    let r = sole_reason(&v, "repeated_coordinates");
    assert_eq!(r.severity, Severity::Suspicious);
    assert!(
        r.message
            .starts_with("The coordinates repeat an earlier event's to the last digit"),
        "{}",
        r.message
    );
    // The last digit differing is a real fix.
    let nudged = GeoPoint {
        lat: ACME.lat + 1e-9,
        lon: ACME.lon,
    };
    assert!(
        check_in_after(&ev, &[prior(nudged, T - DAY, 10.0)])
            .reasons
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Several at once
// ---------------------------------------------------------------------------------------------

#[test]
fn the_worst_reason_sets_the_level_and_every_reason_is_listed() {
    let mut ev = fix_at(north(ACME, 1_200.0));
    ev.accuracy_m = 180.0;
    ev.mock = true;
    ev.fix_time_ms = T - 10 * MIN;
    ev.monotonic_ms = None;
    let v = check_in_after(&ev, &[prior(north(ACME, 1_200.0), T - DAY, 10.0)]);
    assert_eq!(v.level, TrustLevel::Rejected);
    let listed: Vec<(&str, Severity)> = v
        .reasons
        .iter()
        .map(|r| (r.code.as_str(), r.severity))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("out_of_range", Severity::Rejected),
            ("mock_location", Severity::Rejected),
            ("poor_accuracy", Severity::Suspicious),
            ("stale_fix", Severity::Suspicious),
            ("clock_unverified", Severity::Info),
            ("repeated_coordinates", Severity::Suspicious),
        ]
    );
}

#[test]
fn a_suspicious_reason_outranks_an_unverifiable_target() {
    let mut ev = fix_at(ACME);
    ev.accuracy_m = 180.0;
    let target = Target::Customer {
        name: "Acme Ltd",
        location: None,
        radius_m: 300.0,
    };
    let v = check_in(&ev, &target);
    assert_eq!(v.level, TrustLevel::Suspicious);
    assert_eq!(codes(&v), vec!["no_target_location", "poor_accuracy"]);
}

// ---------------------------------------------------------------------------------------------
// Evidence::check: well-formed, not believable
// ---------------------------------------------------------------------------------------------

fn complete_fix() -> Evidence {
    let mut ev = fix_at(ACME);
    ev.altitude_m = Some(34.5);
    ev.wifi_bssid = Some("00:11:22:aA:bB:cc".into());
    ev
}

#[test]
fn well_formed_evidence_passes_the_check() {
    assert_eq!(complete_fix().check("check_in"), Ok(()));
    let mut bare = fix_at(ACME);
    bare.monotonic_ms = None;
    bare.server_offset_ms = None;
    bare.accuracy_m = 0.0;
    assert_eq!(bare.check("check_in"), Ok(()));
}

/// `complete_fix()` edited by `edit` is refused with `code`, in a message containing `fragment`.
#[track_caller]
fn assert_refused(edit: impl FnOnce(&mut Evidence), code: &str, fragment: &str) {
    let mut ev = complete_fix();
    edit(&mut ev);
    let err = ev
        .check("check_in")
        .expect_err("malformed evidence must be refused");
    assert_eq!(err.code, code, "{}", err.message);
    assert!(
        err.message.contains(fragment),
        "{:?} lacks {fragment:?}",
        err.message
    );
}

#[test]
fn out_of_range_coordinates_are_refused() {
    assert_refused(
        |e| e.lat = 91.0,
        "invalid_latitude",
        "Latitude 91 in 'check_in'",
    );
    assert_refused(|e| e.lat = -90.5, "invalid_latitude", "'check_in'");
    assert_refused(|e| e.lat = f64::NAN, "invalid_latitude", "'check_in'");
    assert_refused(
        |e| e.lon = -181.0,
        "invalid_longitude",
        "Longitude -181 in 'check_in'",
    );
    assert_refused(|e| e.lon = f64::INFINITY, "invalid_longitude", "'check_in'");
}

#[test]
fn impossible_accuracy_or_altitude_is_refused() {
    assert_refused(|e| e.accuracy_m = -1.0, "invalid_accuracy", "not -1.");
    assert_refused(
        |e| e.accuracy_m = f64::NAN,
        "invalid_accuracy",
        "'check_in'",
    );
    assert_refused(
        |e| e.accuracy_m = 100_001.0,
        "invalid_accuracy",
        "not 100001.",
    );
    assert_refused(
        |e| e.altitude_m = Some(20_000.0),
        "invalid_altitude",
        "not 20000.",
    );
    assert_refused(
        |e| e.altitude_m = Some(f64::NAN),
        "invalid_altitude",
        "'check_in'",
    );
}

#[test]
fn implausible_times_are_refused() {
    assert_refused(
        |e| e.fix_time_ms = 0,
        "invalid_time",
        "'check_in.fix_time_ms' (0)",
    );
    assert_refused(
        |e| e.device_time_ms = -1,
        "invalid_time",
        "'check_in.device_time_ms' (-1)",
    );
    // 2300-01-01
    let late = 10_413_792_000_000;
    assert_refused(
        |e| e.device_time_ms = late,
        "invalid_time",
        "'check_in.device_time_ms'",
    );
    assert_refused(
        |e| e.monotonic_ms = Some(-1),
        "invalid_time",
        "cannot be negative",
    );
    // monotonic + offset in 1970
    assert_refused(
        |e| e.server_offset_ms = Some(0),
        "invalid_time",
        "impossible time",
    );
    // monotonic + offset beyond i64: as impossible, not "no dating"
    assert_refused(
        |e| e.server_offset_ms = Some(i64::MAX),
        "invalid_time",
        "impossible time",
    );
}

#[test]
fn malformed_bssid_is_refused() {
    for bad in [
        "00:11:22:aa:bb",
        "00:11:22:aa:bb:zz",
        "00-11-22-aa-bb-cc",
        "001:1:22:aa:bb:cc",
    ] {
        assert_refused(
            |e| e.wifi_bssid = Some(bad.into()),
            "invalid_bssid",
            &format!("'{bad}' in 'check_in.wifi_bssid'"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property: grading never panics and never grades better than its worst reason
// ---------------------------------------------------------------------------------------------

mod never_better_than_its_worst_reason {
    use super::*;
    use proptest::prelude::*;

    fn rank(l: TrustLevel) -> u8 {
        match l {
            TrustLevel::Verified => 0,
            TrustLevel::Unverifiable => 1,
            TrustLevel::Suspicious => 2,
            TrustLevel::Rejected => 3,
        }
    }

    fn level_of(s: Severity) -> Option<TrustLevel> {
        match s {
            Severity::Info => None,
            Severity::Suspicious => Some(TrustLevel::Suspicious),
            Severity::Rejected => Some(TrustLevel::Rejected),
        }
    }

    /// Any finite number, mostly small, sometimes anything.
    fn finite(small: std::ops::RangeInclusive<f64>) -> impl Strategy<Value = f64> {
        use proptest::num::f64 as f;
        prop_oneof![
            4 => small,
            1 => f::NORMAL | f::SUBNORMAL | f::ZERO,
        ]
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (finite(-90.0..=90.0), finite(-180.0..=180.0)).prop_map(|(lat, lon)| GeoPoint { lat, lon })
    }

    /// Times as `Evidence::check` lets through (2000..2200): the server grades only evidence
    /// that passed it, and the phone only fixes its own sensors produced.
    fn time() -> impl Strategy<Value = i64> {
        946_684_800_000i64..7_258_118_400_000
    }

    prop_compose! {
        fn evidence()(
            p in point(),
            accuracy_m in finite(0.0..=500.0),
            fix_shift in -2 * DAY..2 * DAY,
            device_time_ms in time(),
            mock in any::<bool>(),
            monotonic in proptest::option::of(0i64..1_000_000_000_000),
            skew in proptest::option::of(-5 * DAY..5 * DAY),
        ) -> Evidence {
            Evidence {
                lat: p.lat,
                lon: p.lon,
                accuracy_m,
                altitude_m: None,
                provider: Provider::Fused,
                fix_time_ms: device_time_ms + fix_shift,
                mock,
                wifi_bssid: None,
                device_time_ms,
                monotonic_ms: monotonic,
                server_offset_ms: skew.map(|s| device_time_ms + s - monotonic.unwrap_or(0)),
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Shape {
        Customer(Option<GeoPoint>, f64),
        Circle(GeoPoint, f64, f64),
        Square(GeoPoint, f64, f64),
        NoFence,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            (proptest::option::of(point()), 100.0..=3_000.0f64)
                .prop_map(|(p, r)| Shape::Customer(p, r)),
            (point(), 10.0..=10_000.0f64, 0.0..=500.0f64)
                .prop_map(|(c, r, m)| Shape::Circle(c, r, m)),
            (point(), 0.0001..=0.05f64, 0.0..=500.0f64)
                .prop_map(|(c, s, m)| Shape::Square(c, s, m)),
            Just(Shape::NoFence),
        ]
    }

    prop_compose! {
        fn prior_event()(p in point(), shift in -3 * DAY..DAY, accuracy_m in finite(0.0..=500.0))
            -> (i64, GeoPoint, f64) {
            (shift, p, accuracy_m)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn grade_never_panics_and_its_level_covers_every_reason(
            ev in evidence(),
            shape in shape(),
            priors in proptest::collection::vec(prior_event(), 0..4),
            repeat in any::<bool>(),
        ) {
            let mut recent: Vec<PriorEvent> = priors
                .iter()
                .map(|(shift, p, a)| prior(*p, ev.event_time_ms().saturating_add(*shift), *a))
                .collect();
            if repeat {
                recent.push(prior(ev.point(), ev.event_time_ms() - HOUR, 5.0));
            }
            let fence;
            let target = match &shape {
                Shape::Customer(location, r) => Target::Customer { name: "Acme Ltd", location: *location, radius_m: *r },
                Shape::Circle(center, radius_m, margin_m) => {
                    fence = Geofence::Circle { center: *center, radius_m: *radius_m };
                    Target::Site { name: "Yard", fence: Some(&fence), margin_m: *margin_m }
                }
                Shape::Square(c, s, margin_m) => {
                    let corner = |dlat: f64, dlon: f64| GeoPoint { lat: c.lat + dlat, lon: c.lon + dlon };
                    fence = Geofence::Polygon { points: vec![corner(0.0, 0.0), corner(0.0, *s), corner(*s, *s), corner(*s, 0.0)] };
                    Target::Site { name: "Yard", fence: Some(&fence), margin_m: *margin_m }
                }
                Shape::NoFence => Target::Site { name: "Yard", fence: None, margin_m: 0.0 },
            };
            let v = trust::grade("punch", &ev, &target, &recent, &Policy::default());

            let base = if v.distance_m.is_some() { TrustLevel::Verified } else { TrustLevel::Unverifiable };
            let mut worst = base;
            for r in &v.reasons {
                prop_assert!(!r.code.is_empty() && !r.message.is_empty());
                if let Some(l) = level_of(r.severity) {
                    prop_assert!(rank(v.level) >= rank(l), "{:?} below {:?} ({})", v.level, l, r.code);
                    worst = if rank(l) > rank(worst) { l } else { worst };
                }
            }
            prop_assert_eq!(v.level, worst, "the level is exactly the worst of its reasons");
            prop_assert_eq!(v.event_time_ms, ev.event_time_ms());
            prop_assert_eq!(v.distance_m.is_some(), !matches!(shape, Shape::Customer(None, _) | Shape::NoFence));
            prop_assert_eq!(v.reasons.iter().any(|r| r.code == "mock_location"), ev.mock);
            if repeat {
                prop_assert!(v.reasons.iter().any(|r| r.code == "repeated_coordinates"));
            }
        }
    }
}
