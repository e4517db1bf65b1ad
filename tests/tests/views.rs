//! The 360 views and project files, on SQLite and PostgreSQL: a customer's one timeline (visits
//! and their reports, photos, projects, contacts, follow-ups and every change of owner from the
//! record's history), and a project's sites, members, milestones, diary days, photos, files and
//! headcount per day. Files go up like photos' bytes and come back to the project's readers only.

use fieldsync_sync::record::photo::{AttachKind, Attachment};
use fieldsync_sync::record::project::{Member, Milestone, MilestoneStatus, ProjectRole, Site};
use fieldsync_sync::{
    CheckOut, Contact, Customer, Diary, DocId, Photo, Project, Punch, Record, Role, Visit,
    VisitOutcome,
};
use fieldsync_tests::{Harness, berlin, good_fix as ev, on_both_stores};
use serde_json::{Value, json};

fn accepted(a: &Value) {
    assert!(
        a["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{a}"
    );
}

fn a_customers_360_gathers_everything_about_them(h: Harness) {
    let t = h.tenant("acme");
    let boss = h.user(t, "boss@acme.test", Role::Manager, None);
    let rep = h.user(t, "rep@acme.test", Role::FieldRep, Some("boss@acme.test"));
    let heir = h.user(t, "heir@acme.test", Role::FieldRep, Some("boss@acme.test"));
    h.user(t, "other@acme.test", Role::FieldRep, None);
    let rep_t = h.token("acme", "rep@acme.test");
    let boss_t = h.token("acme", "boss@acme.test");
    let heir_t = h.token("acme", "heir@acme.test");

    let mut c = Customer::new("Alex Optik", rep);
    c.location = Some(fieldsync_sync::GeoPoint {
        lat: 52.5221,
        lon: 13.4135,
    });
    c.notes = "Prefers visits before noon.".into();
    c.contacts = vec![Contact {
        id: "c1".into(),
        name: "Alex Brandt".into(),
        title: Some("Owner".into()),
        phone: Some("+49 30 1234567".into()),
        email: None,
    }];
    let customer = c.id;
    accepted(&h.push_new(&rep_t, &[Record::Customer(c)]));

    let t0 = berlin("2026-11-16 10:00");
    let mut v = Visit::new(customer, rep, rep);
    v.purpose = "Show the new frames".into();
    v.check_in = Some(ev(52.5221, 13.4135, t0));
    v.check_out = Some(CheckOut {
        evidence: ev(52.5220, 13.4130, t0 + 3_600_000),
        notes: "Ordered 40 frames.".into(),
        outcome: VisitOutcome::Order,
        next_follow_up: Some("2026-11-20".into()),
    });
    let visit = v.id;
    accepted(&h.push_new(&rep_t, &[Record::Visit(v)]));
    let photo = Photo {
        id: DocId::new(),
        author: rep,
        sha256: "ab".repeat(32),
        size: 1000,
        mime: "image/jpeg".into(),
        attached_to: Attachment {
            kind: AttachKind::Visit,
            id: visit,
            site: None,
            day: None,
        },
        captured_at_ms: t0 + 600_000,
        evidence: Some(ev(52.5221, 13.4135, t0 + 600_000)),
        caption: "The display stand".into(),
        tags: Vec::new(),
        reviews: Vec::new(),
        comments: Vec::new(),
    };
    accepted(&h.push_new(&rep_t, &[Record::Photo(photo.clone())]));
    let mut p = Project::new("Shop fit-out", boss);
    p.customer = Some(customer);
    let project = p.id;
    accepted(&h.push_new(&boss_t, &[Record::Project(p)]));

    // The manager hands the customer to another rep.
    let a = h.post(
        &format!("/v1/customers/{customer}/assign"),
        Some(&boss_t),
        &json!({"owner": heir}),
    );
    assert!(a.0 == 200 || a.0 == 201, "{a:?}");

    // The new owner sees everything the relationship holds, including the old rep's work.
    let (s, view) = h.get(&format!("/v1/customers/{customer}/360"), Some(&heir_t));
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["customer"]["name"], "Alex Optik");
    assert_eq!(view["customer"]["notes"], "Prefers visits before noon.");
    assert_eq!(view["customer"]["contacts"][0]["name"], "Alex Brandt");
    assert_eq!(view["counts"]["visits"], 1);
    assert_eq!(view["counts"]["photos"], 1);
    assert_eq!(view["follow_ups"][0]["due"], "2026-11-20");
    assert_eq!(view["follow_ups"][0]["overdue"], true);
    let kinds: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in ["visit", "photo", "owner_change"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    // Newest first: the handover came last.
    assert_eq!(kinds[0], "owner_change", "{kinds:?}");
    let owners = view["owner_history"].as_array().expect("owners");
    let last = owners.last().expect("an owner change");
    assert_eq!(last["from_email"], "rep@acme.test", "{owners:?}");
    assert_eq!(last["to_email"], "heir@acme.test", "{owners:?}");
    // The customer's projects the reader may see.
    let (_, view_rep) = h.get(&format!("/v1/customers/{customer}/360"), Some(&boss_t));
    assert_eq!(view_rep["projects"][0]["id"], json!(project));
    // Someone outside the team sees nothing of it.
    let (s, _) = h.get(
        &format!("/v1/customers/{customer}/360"),
        Some(&h.token("acme", "other@acme.test")),
    );
    assert_eq!(s, 404);
    let (s, body) = h.get("/v1/customers/nope/360", Some(&boss_t));
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_id")));
}

fn a_projects_360_and_its_files(h: Harness) {
    let t = h.tenant("acme");
    let admin = h.user(t, "admin@acme.test", Role::Admin, None);
    let sm = h.user(t, "sm@acme.test", Role::SiteManager, None);
    let crew = h.user(t, "crew@acme.test", Role::FieldRep, None);
    h.user(t, "hr@acme.test", Role::Hr, None);
    h.user(t, "outsider@acme.test", Role::FieldRep, None);
    let (admin_t, sm_t, crew_t, hr_t, out_t) = (
        h.token("acme", "admin@acme.test"),
        h.token("acme", "sm@acme.test"),
        h.token("acme", "crew@acme.test"),
        h.token("acme", "hr@acme.test"),
        h.token("acme", "outsider@acme.test"),
    );
    let mut p = Project::new("Depot extension", admin);
    p.sites = vec![Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: None,
    }];
    p.members = vec![
        Member {
            user: sm,
            role: ProjectRole::SiteManager,
        },
        Member {
            user: crew,
            role: ProjectRole::Crew,
        },
    ];
    p.milestones = vec![
        Milestone {
            id: "m1".into(),
            name: "Foundations".into(),
            due: Some("2026-11-10".into()),
            status: MilestoneStatus::Done,
        },
        Milestone {
            id: "m2".into(),
            name: "Walls".into(),
            due: Some("2026-12-01".into()),
            status: MilestoneStatus::Pending,
        },
    ];
    let project = p.id;
    accepted(&h.push_new(&admin_t, &[Record::Project(p)]));

    // Two days of punches, a diary day.
    let (s, shift) = h.post(
        "/v1/attendance/shifts",
        Some(&hr_t),
        &json!({"name": "day", "start": "07:00", "end": "16:00", "break_min": 30}),
    );
    assert_eq!(s, 201, "{shift}");
    let (s, cal) = h.post(
        "/v1/attendance/calendars",
        Some(&hr_t),
        &json!({"name": "cal", "workdays": ["mon","tue","wed","thu","fri"]}),
    );
    assert_eq!(s, 201, "{cal}");
    let (s, a) = h.send(
        "PUT",
        "/v1/attendance/assignments",
        Some(&hr_t),
        &json!({"user": crew, "project": project, "site": "depot", "shift": shift["id"], "calendar": cal["id"], "from": "2026-11-01"}),
    );
    assert_eq!(s, 200, "{a}");
    for at in ["2026-11-17 07:55", "2026-11-18 00:30", "2026-11-18 08:02"] {
        accepted(&h.push_new(
            &crew_t,
            &[Record::Punch(Punch {
                id: DocId::new(),
                user: crew,
                project,
                site: "depot".into(),
                direction: fieldsync_sync::Direction::In,
                evidence: ev(52.51, 13.427, berlin(at)),
                note: None,
            })],
        ));
    }
    let mut day = Diary::genesis(project, "depot", "2026-11-18").expect("genesis");
    day.set_actor(automerge::ActorId::random());
    let Ok((Record::Diary(mut d), _)) = Record::read(&day) else {
        panic!("diary")
    };
    d.work = "Walls, east side.".into();
    let mut tx = day.transaction();
    Record::Diary(d).write(&mut tx).expect("write");
    tx.commit();
    let changes: Vec<Value> = day
        .get_changes(&[])
        .iter()
        .map(|c| {
            serde_json::to_value(fieldsync_sync::protocol::B64(c.raw_bytes().to_vec()))
                .expect("b64")
        })
        .collect();
    let a = h.push_docs(
        &crew_t,
        &json!([{"doc_id": Diary::doc_id_for(project, "depot", "2026-11-18"), "kind": "diary", "changes": changes}]),
    );
    accepted(&a);

    // A drawing goes up like a photo's bytes, then is attached by the site manager.
    let pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".repeat(50);
    let sha = fieldsync_server::blobs::BlobHash::of(&pdf)
        .as_str()
        .to_owned();
    let attach = json!({"name": "Drawing A-101 rev C.pdf", "sha256": sha, "mime": "application/pdf", "note": "Issued for construction"});
    let (s, body) = h.post(
        &format!("/v1/projects/{project}/files"),
        Some(&sm_t),
        &attach,
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("not_uploaded")),
        "{body}"
    );
    // As a photo, a PDF is refused; as a file, it is taken.
    let (s, body) = h.post(
        "/v1/blobs",
        Some(&sm_t),
        &json!({"sha256": sha, "size": pdf.len(), "mime": "application/pdf"}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (415, Some("unsupported_format")),
        "{body}"
    );
    let (s, body) = h.post(
        "/v1/blobs",
        Some(&sm_t),
        &json!({"sha256": sha, "size": pdf.len(), "mime": "application/pdf", "purpose": "file"}),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = h.put_chunk(&sm_t, &sha, 0, &pdf);
    assert_eq!((s, body["complete"].as_bool()), (200, Some(true)), "{body}");
    let (s, body) = h.post(
        &format!("/v1/projects/{project}/files"),
        Some(&crew_t),
        &attach,
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // Bad requests store nothing and say why.
    for (body, status, code) in [
        (
            json!({"name": " ", "sha256": sha, "mime": "application/pdf"}),
            400,
            "invalid_name",
        ),
        (
            json!({"name": "a.pdf", "sha256": "nope", "mime": "application/pdf"}),
            400,
            "invalid_hash",
        ),
        (
            json!({"name": "a.pdf", "sha256": sha, "mime": "application/pdf", "note": "x".repeat(2_001)}),
            400,
            "field_too_long",
        ),
    ] {
        let (s, b) = h.post(&format!("/v1/projects/{project}/files"), Some(&sm_t), &body);
        assert_eq!((s, b["error"].as_str()), (status, Some(code)), "{b}");
    }
    let (s, b) = h.post(
        "/v1/blobs",
        Some(&sm_t),
        &json!({"sha256": sha, "size": pdf.len(), "mime": "application/pdf", "purpose": "drawing"}),
    );
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_purpose")),
        "{b}"
    );
    let (_, files) = h.get(&format!("/v1/projects/{project}/files"), Some(&sm_t));
    assert_eq!(files, json!([]));
    let (s, file) = h.post(
        &format!("/v1/projects/{project}/files"),
        Some(&sm_t),
        &attach,
    );
    assert_eq!(s, 201, "{file}");
    let fid = file["id"].as_str().expect("id").to_owned();
    let (s, ctype, bytes) = h.get_bytes(&format!("/v1/projects/{project}/files/{fid}"), &crew_t);
    assert_eq!(
        (s, ctype.as_str(), bytes == pdf),
        (200, "application/pdf", true)
    );
    let (s, _, _) = h.get_bytes(&format!("/v1/projects/{project}/files/{fid}"), &out_t);
    assert_eq!(s, 404, "an outsider cannot fetch the project's files");
    let (s, body) = h.post(
        &format!("/v1/projects/{project}/files"),
        Some(&sm_t),
        &json!({"name": "x.exe", "sha256": sha, "mime": "application/x-msdownload"}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (415, Some("unsupported_format")),
        "{body}"
    );

    let (s, view) = h.get(
        &format!("/v1/projects/{project}/360?from=2026-11-16&to=2026-11-18"),
        Some(&sm_t),
    );
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["project"]["name"], "Depot extension");
    assert_eq!(view["project"]["sites"][0]["id"], "depot");
    assert_eq!(view["project"]["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(view["milestones_summary"], json!({"total": 2, "done": 1}));
    assert_eq!(view["diaries"][0]["day"], "2026-11-18");
    assert_eq!(view["diaries"][0]["work_excerpt"], "Walls, east side.");
    assert_eq!(view["files"][0]["name"], "Drawing A-101 rev C.pdf");
    // One person a day: 00:30 Berlin on the 18th is the 18th there (the 17th in UTC).
    assert_eq!(
        view["headcount"]["days"],
        json!([
            {"day": "2026-11-17", "site_id": "depot", "people": 1},
            {"day": "2026-11-18", "site_id": "depot", "people": 1},
        ])
    );
    let (s, body) = h.get(
        &format!("/v1/projects/{project}/360?from=2026-11-18&to=2026-11-01"),
        Some(&sm_t),
    );
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_period")));
    let (s, _) = h.get(&format!("/v1/projects/{project}/360"), Some(&out_t));
    assert_eq!(s, 404);
    let (s, body) = h.get(
        &format!("/v1/projects/{project}/360?from=1.11.2026"),
        Some(&sm_t),
    );
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_date")));

    // Removing a file: the site manager may; then it is gone from the list.
    let (s, _) = h.send(
        "DELETE",
        &format!("/v1/projects/{project}/files/{fid}"),
        Some(&crew_t),
        &json!(null),
    );
    assert_eq!(s, 403);
    let (s, _) = h.send(
        "DELETE",
        &format!("/v1/projects/{project}/files/{fid}"),
        Some(&sm_t),
        &json!(null),
    );
    assert_eq!(s, 204);
    let (_, files) = h.get(&format!("/v1/projects/{project}/files"), Some(&sm_t));
    assert_eq!(files, json!([]));
    let (s, _) = h.send(
        "DELETE",
        &format!("/v1/projects/{project}/files/{fid}"),
        Some(&sm_t),
        &json!(null),
    );
    assert_eq!(s, 404);
}

on_both_stores!(
    a_customers_360_gathers_everything_about_them,
    a_projects_360_and_its_files,
);
