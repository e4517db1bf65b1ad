//! A photo's whole trip, on SQLite and PostgreSQL: taken on a crew member's phone offline, its
//! record synced and its bytes uploaded from the phone's queue, reviewed by the site manager
//! over HTTP, and the outcome (a retake, with the reason, and the comments) read on the
//! author's phone after its next sync.

use fieldsync_mobile_core::{AttachTo, LocationFix, PhotoSource};
use fieldsync_sync::record::project::{Member, ProjectRole, Site};
use fieldsync_sync::{Project, Record, Role};
use fieldsync_tests::{Harness, on_both_stores};
use serde_json::json;

fn fixture(name: &str) -> String {
    format!(
        "{}/../../shared/fixtures/photos/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn the_author_sees_the_review_on_the_phone(h: Harness) {
    let t = h.tenant("acme");
    let admin = h.user(t, "admin@acme.test", Role::Admin, None);
    let crew = h.user(t, "crew@acme.test", Role::FieldRep, None);
    let sm = h.user(t, "sm@acme.test", Role::SiteManager, None);
    let admin_t = h.token("acme", "admin@acme.test");
    let sm_t = h.token("acme", "sm@acme.test");
    let mut p = Project::new("Depot", admin);
    p.sites = vec![Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: None,
    }];
    p.members = vec![
        Member {
            user: crew,
            role: ProjectRole::Crew,
        },
        Member {
            user: sm,
            role: ProjectRole::SiteManager,
        },
    ];
    let project = p.id;
    let a = h.push_new(&admin_t, &[Record::Project(p)]);
    assert_eq!(a["results"][0]["status"], "accepted", "{a}");

    let phone = h.phone("acme", "crew@acme.test");
    phone.sync().expect("first sync: the project");
    let taken = phone
        .attach_photo(
            PhotoSource::file(fixture("mobile/jolla.jpg")),
            AttachTo {
                kind: "site_day".into(),
                id: project.to_string(),
                site: Some("depot".into()),
                day: Some("2026-11-18".into()),
            },
            Some(LocationFix {
                lat: 52.5101,
                lon: 13.4271,
                accuracy_m: 6.0,
                altitude_m: None,
                provider: "gps".into(),
                fix_time_ms: None,
                mock: false,
                wifi_bssid: None,
            }),
            "Formwork, east wall".into(),
            vec!["progress".into()],
        )
        .expect("attached offline");
    let id = taken.photo.id.to_string();
    assert_eq!(taken.status, "pending");

    assert_eq!(taken.upload_state.as_deref(), Some("queued"));

    // Back online: a sync sends the record, then the bytes from the queue.
    phone.sync().expect("sync");
    let sent = phone.get_photo(id.clone()).expect("photo");
    assert!(sent.uploaded, "{sent:?}");
    assert_eq!(sent.upload_state.as_deref(), Some("done"));
    // Nothing is left to send, and asking again costs nothing.
    let up = phone.upload_photos(None).expect("upload");
    assert_eq!(
        (up.remaining, up.bytes_sent, up.failed),
        (0, 0, 0),
        "{up:?}"
    );

    // The site manager sees it (with its bytes) and asks for a retake.
    let mut listed = json!(null);
    for _ in 0..200 {
        let (_, list) = h.get(&format!("/v1/photos?project={project}"), Some(&sm_t));
        if list[0]["uploaded"] == json!(true) {
            listed = list[0].clone();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(listed["id"], json!(id), "{listed}");
    assert_eq!(listed["caption"], "Formwork, east wall");
    let (s, body) = h.post(
        &format!("/v1/photos/{id}/reviews"),
        Some(&sm_t),
        &json!({"decision": "retake", "reason": "Too dark; take it again at noon"}),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = h.post(
        &format!("/v1/photos/{id}/comments"),
        Some(&sm_t),
        &json!({"text": "Show the whole wall, please"}),
    );
    assert_eq!(s, 201, "{body}");
    let (s, bytes) = {
        let (s, _, b) = h.get_bytes(&format!("/v1/photos/{id}/file/320"), &sm_t);
        (s, b)
    };
    assert_eq!((s, &bytes[..2]), (200, &[0xFF, 0xD8][..]));

    // The author's phone, at its next sync, shows the outcome with its reason.
    phone.sync().expect("sync");
    let seen = phone.get_photo(id).expect("photo");
    assert_eq!(seen.status, "retake");
    let review = seen.photo.reviews.last().expect("review");
    assert_eq!(review.reason, "Too dark; take it again at noon");
    assert_eq!(review.by, sm);
    assert_eq!(
        seen.photo
            .comments
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>(),
        ["Show the whole wall, please"]
    );
}

on_both_stores!(the_author_sees_the_review_on_the_phone);
