//! Photo records end to end, on SQLite and PostgreSQL: a crew member's site photo is graded
//! against the site's geofence, seen by the project's members and nobody else, reviewed by the
//! site manager (the review reaches the author's record), commented on, and exported as GeoJSON.
//! (The photo's bytes travel separately; see `blobs.rs`.)

use fieldsync_sync::record::photo::{AttachKind, Attachment};
use fieldsync_sync::record::project::{Geofence, Member, ProjectRole, Site};
use fieldsync_sync::{DocId, Evidence, GeoPoint, Photo, Project, Provider, Record, Role, UserId};
use fieldsync_tests::{Harness, on_both_stores};
use serde_json::json;

const T: i64 = 1_795_000_000_000;

fn ev(lat: f64, lon: f64) -> Evidence {
    Evidence {
        lat,
        lon,
        accuracy_m: 7.0,
        altitude_m: None,
        provider: Provider::Gps,
        fix_time_ms: T - 3_000,
        mock: false,
        wifi_bssid: None,
        device_time_ms: T,
        monotonic_ms: Some(9_000_000),
        server_offset_ms: Some(T - 9_000_000),
    }
}

fn photo(author: UserId, project: DocId, at: (f64, f64)) -> Photo {
    Photo {
        id: DocId::new(),
        author,
        sha256: "3f".repeat(32),
        size: 812_345,
        mime: "image/jpeg".into(),
        attached_to: Attachment {
            kind: AttachKind::SiteDay,
            id: project,
            site: Some("depot".into()),
            day: Some("2026-11-18".into()),
        },
        captured_at_ms: T,
        evidence: Some(ev(at.0, at.1)),
        caption: "Formwork, east wall".into(),
        tags: vec!["progress".into()],
        reviews: Vec::new(),
        comments: Vec::new(),
    }
}

fn site_photos_are_graded_shared_with_the_project_and_reviewed(h: Harness) {
    let tenant = h.tenant("acme");
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let crew = h.user(tenant, "crew@acme.test", Role::FieldRep, None);
    let sm = h.user(tenant, "site@acme.test", Role::SiteManager, None);
    h.user(tenant, "outsider@acme.test", Role::FieldRep, None);
    let tok = |e: &str| h.token("acme", e);
    let (crew_t, sm_t, out_t) = (
        tok("crew@acme.test"),
        tok("site@acme.test"),
        tok("outsider@acme.test"),
    );

    let mut p = Project::new("Depot", admin);
    p.sites = vec![Site {
        id: "depot".into(),
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
    let answer = h.push_new(&tok("admin@acme.test"), &[Record::Project(p)]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");

    // On site, and 5 km away; one attached to a project that does not exist.
    let good = photo(crew, project, (52.5101, 13.4271));
    let far = photo(crew, project, (52.5550, 13.4270));
    let nowhere = photo(crew, DocId::new(), (52.5101, 13.4271));
    let answer = h.push_new(
        &crew_t,
        &[
            Record::Photo(good.clone()),
            Record::Photo(far.clone()),
            Record::Photo(nowhere),
        ],
    );
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    assert_eq!(answer["results"][1]["status"], "accepted", "{answer}");
    assert_eq!(
        answer["results"][2]["error"]["code"], "unknown_attachment",
        "{answer}"
    );

    // The site manager (a project member) sees both, graded; an outsider sees nothing.
    let (s, list) = h.get(
        &format!("/v1/photos?project={project}&day=2026-11-18"),
        Some(&sm_t),
    );
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().expect("photos").clone();
    assert_eq!(list.len(), 2);
    let trust_of = |id: DocId| {
        list.iter()
            .find(|p| p["id"] == id.as_string())
            .map(|p| (p["trust"].clone(), p["reasons"].clone()))
            .expect("listed")
    };
    assert_eq!(trust_of(good.id).0, "verified");
    let (t, reasons) = trust_of(far.id);
    assert_eq!(t, "rejected", "{reasons}");
    assert!(
        reasons[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outside the area of site Berlin depot")),
        "{reasons}"
    );
    assert_eq!(h.get("/v1/photos", Some(&out_t)).1, json!([]));
    assert_eq!(
        h.get(&format!("/v1/records/{}", good.id), Some(&out_t)).0,
        404
    );

    // Reviews: the site manager asks for a retake (a reason is required); the author cannot
    // review their own photo; the review is in the author's record.
    let path = format!("/v1/photos/{}/reviews", good.id);
    let (s, body) = h.post(&path, Some(&sm_t), &json!({"decision": "retake"}));
    assert_eq!(
        (s, body["error"].as_str()),
        (422, Some("missing_field")),
        "{body}"
    );
    let (s, body) = h.post(&path, Some(&crew_t), &json!({"decision": "approved"}));
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (s, body) = h.post(
        &path,
        Some(&sm_t),
        &json!({"decision": "retake", "reason": "Show the whole wall"}),
    );
    assert_eq!(s, 201, "{body}");
    let (s, body) = h.post(
        &format!("/v1/photos/{}/comments", good.id),
        Some(&crew_t),
        &json!({"text": "Retaking at noon"}),
    );
    assert_eq!(s, 201, "{body}");
    let (_, rec) = h.get(&format!("/v1/records/{}", good.id), Some(&crew_t));
    assert_eq!(rec["record"]["reviews"][0]["decision"], "retake", "{rec}");
    assert_eq!(rec["record"]["comments"][0]["text"], "Retaking at noon");
    let (_, retakes) = h.get("/v1/photos?status=retake", Some(&crew_t));
    assert_eq!(retakes.as_array().map(Vec::len), Some(1), "{retakes}");
    let (s, body) = h.get("/v1/photos?status=lost", Some(&crew_t));
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_status")));

    // GeoJSON: longitude first.
    let (s, geo) = h.get(&format!("/v1/geojson?project={project}"), Some(&sm_t));
    assert_eq!(s, 200, "{geo}");
    assert_eq!(geo["type"], "FeatureCollection");
    let f = geo["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["properties"]["id"] == good.id.as_string())
        .cloned()
        .expect("the photo");
    assert_eq!(f["geometry"]["coordinates"], json!([13.4271, 52.5101]));
    assert_eq!(f["properties"]["status"], "retake");
}

/// A real camera photo (GPS in its EXIF) uploaded as bytes: the server reads the EXIF, makes
/// the thumbnails, grades the bytes against the record, and serves each file to the project's
/// members only.
/// Returns the harness, for a look at where the files went.
fn uploaded_bytes_are_read_thumbnailed_checked_and_served(h: Harness) -> Harness {
    let tenant = h.tenant("acme");
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let crew = h.user(tenant, "crew@acme.test", Role::FieldRep, None);
    h.user(tenant, "outsider@acme.test", Role::FieldRep, None);
    let (crew_t, admin_t, out_t) = (
        h.token("acme", "crew@acme.test"),
        h.token("acme", "admin@acme.test"),
        h.token("acme", "outsider@acme.test"),
    );
    let mut p = Project::new("Depot", admin);
    p.sites = vec![Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: None,
    }];
    p.members = vec![Member {
        user: crew,
        role: ProjectRole::Crew,
    }];
    let project = p.id;
    h.push_new(&admin_t, &[Record::Project(p)]);

    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/photos/gps/DSCN0010.jpg"
    ))
    .expect("fixture");
    let sha = fieldsync_server::blobs::BlobHash::of(&bytes)
        .as_str()
        .to_owned();
    let mut ph = photo(crew, project, (52.5101, 13.4271));
    ph.sha256 = sha.clone();
    ph.size = bytes.len() as u64;
    let answer = h.push_new(&crew_t, &[Record::Photo(ph.clone())]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    // Before the bytes: the record is there, the files are not yet.
    let (s, body) = h.get(&format!("/v1/photos/{}/file/320", ph.id), Some(&crew_t));
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("not_uploaded")),
        "{body}"
    );

    let (s, body) = h.post(
        "/v1/blobs",
        Some(&crew_t),
        &json!({"sha256": sha, "size": bytes.len(), "mime": "image/jpeg"}),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = h.put_chunk(&crew_t, &sha, 0, &bytes);
    assert_eq!((s, body["complete"].as_bool()), (200, Some(true)), "{body}");

    // Processing runs in the background: wait for it (bounded).
    let mut listed = json!(null);
    for _ in 0..200 {
        let (_, list) = h.get(&format!("/v1/photos?project={project}"), Some(&crew_t));
        if list[0]["uploaded"] == json!(true) {
            listed = list[0].clone();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let media = &listed["media"];
    assert_eq!(media["width"], 640, "{listed}");
    assert_eq!(media["height"], 480, "{listed}");
    assert!(media["exif_lat"].as_f64().is_some(), "{listed}");
    assert!(
        media["make"].as_str().is_some_and(|m| m.contains("NIKON")),
        "{listed}"
    );
    // The camera's GPS is far from the phone's fix in Berlin: said so, with the distance.
    let codes: Vec<&str> = listed["bytes_check"]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&"exif_gps_mismatch"), "{listed}");
    assert!(codes.contains(&"exif_time_mismatch"), "{listed}");

    // The files: the original as uploaded, upright thumbnails without EXIF, a stamped copy.
    let (s, ctype, original) = h.get_bytes(&format!("/v1/photos/{}/file/original", ph.id), &crew_t);
    assert_eq!((s, ctype.as_str()), (200, "image/jpeg"));
    assert_eq!(original, bytes);
    for variant in ["320", "1600", "stamped"] {
        let (s, ctype, jpeg) =
            h.get_bytes(&format!("/v1/photos/{}/file/{variant}", ph.id), &crew_t);
        assert_eq!((s, ctype.as_str()), (200, "image/jpeg"), "{variant}");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "{variant} is a JPEG");
        assert!(
            !jpeg.windows(6).any(|w| w == b"Exif\0\0"),
            "{variant} carries no EXIF"
        );
    }
    let (s, _, _) = h.get_bytes(&format!("/v1/photos/{}/file/original", ph.id), &out_t);
    assert_eq!(
        s, 404,
        "an outsider cannot fetch a photo of a project they are not on"
    );
    let (s, body) = h.get(&format!("/v1/photos/{}/file/huge", ph.id), Some(&crew_t));
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_variant")));
    // The original and its two thumbnails are kept, under the tenant, and nothing else.
    assert_eq!(
        h.stored_files(tenant),
        vec![
            format!("{}/{sha}", &sha[..2]),
            format!("derived/{sha}-1600.jpg"),
            format!("derived/{sha}-320.jpg"),
        ]
    );
    h
}

on_both_stores!(
    site_photos_are_graded_shared_with_the_project_and_reviewed,
    uploaded_bytes_are_read_thumbnailed_checked_and_served,
);

/// The photo's bytes, thumbnails and stamped copy in S3-compatible storage (on SQLite).
mod on_s3 {
    #[test]
    fn uploaded_bytes_are_read_thumbnailed_checked_and_served() {
        if let Some(h) = fieldsync_tests::Harness::start_s3() {
            let h = super::uploaded_bytes_are_read_thumbnailed_checked_and_served(h);
            // The original and both thumbnails are objects under the prefix; no local file
            // is left (the upload session is gone too).
            let s3 = h.s3.as_ref().expect("an S3 harness");
            assert_eq!(s3.keys("photos/").len(), 3, "{:?}", s3.keys(""));
            assert_eq!(s3.keys("").len(), 3, "{:?}", s3.keys(""));
            assert_eq!(
                fieldsync_tests::files_under(&h.blob_dir),
                Vec::<std::path::PathBuf>::new()
            );
        }
    }
}
