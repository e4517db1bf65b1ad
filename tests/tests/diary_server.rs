//! Site diaries on the server, on SQLite and PostgreSQL: a day reads with its crew pre-filled
//! from that day's punches at the site and the photos taken there, a site manager signs it off
//! over HTTP (the lock holds against a late phone) and reopens it, the range exports as a
//! printable document, and a project's new and departing members gain and lose its diaries and
//! photos.

use automerge::{ActorId, Automerge, ChangeHash};
use fieldsync_sync::record::photo::{AttachKind, Attachment};
use fieldsync_sync::record::project::{Geofence, Member, ProjectRole, Site};
use fieldsync_sync::{
    CrewEntry, Diary, DiaryItem, DocId, Photo, Project, Punch, Record, Role, UserId,
};
use fieldsync_tests::{Harness, berlin, good_fix as ev, on_both_stores};
use serde_json::{Value, json};

const DAY: &str = "2026-11-18";
const DEPOT: (f64, f64) = (52.5100, 13.4270);

struct Company {
    project: DocId,
    admin: String,
    sm: String,
    crew: String,
    crew_id: UserId,
    mate: String,
    mate_id: UserId,
    sm_id: UserId,
    hr: String,
    outsider: String,
}

fn company(h: &Harness) -> Company {
    let t = h.tenant("acme");
    let admin = h.user(t, "admin@acme.test", Role::Admin, None);
    let sm_id = h.user(t, "sm@acme.test", Role::SiteManager, None);
    let crew_id = h.user(t, "ana@acme.test", Role::FieldRep, None);
    let mate_id = h.user(t, "ben@acme.test", Role::FieldRep, None);
    h.user(t, "hr@acme.test", Role::Hr, None);
    h.user(t, "other-sm@acme.test", Role::SiteManager, None);
    let admin_t = h.token("acme", "admin@acme.test");
    let mut p = Project::new("Depot extension", admin);
    p.sites = vec![Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: Some(Geofence::Circle {
            center: fieldsync_sync::GeoPoint {
                lat: DEPOT.0,
                lon: DEPOT.1,
            },
            radius_m: 150.0,
        }),
    }];
    p.members = vec![
        Member {
            user: sm_id,
            role: ProjectRole::SiteManager,
        },
        Member {
            user: crew_id,
            role: ProjectRole::Crew,
        },
        Member {
            user: mate_id,
            role: ProjectRole::Crew,
        },
    ];
    let project = p.id;
    let answer = h.push_new(&admin_t, &[Record::Project(p)]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    Company {
        project,
        admin: admin_t,
        sm: h.token("acme", "sm@acme.test"),
        crew: h.token("acme", "ana@acme.test"),
        crew_id,
        mate: h.token("acme", "ben@acme.test"),
        mate_id,
        sm_id,
        hr: h.token("acme", "hr@acme.test"),
        outsider: h.token("acme", "other-sm@acme.test"),
    }
}

/// A phone's copy of a diary day: the shared genesis, under the phone's own actor.
fn open_day(project: DocId, site: &str, day: &str) -> Automerge {
    let mut doc = Diary::genesis(project, site, day).expect("genesis");
    doc.set_actor(ActorId::random());
    doc
}

fn edit(doc: &mut Automerge, change: impl FnOnce(&mut Diary)) {
    let Ok((Record::Diary(mut d), _)) = Record::read(doc) else {
        panic!("not a diary")
    };
    change(&mut d);
    let mut tx = doc.transaction();
    Record::Diary(d).write(&mut tx).expect("write");
    tx.commit();
}

/// The push entry of a diary's changes since `since` (all of them for `&[]`).
fn entry(doc: &Automerge, since: &[ChangeHash]) -> Value {
    let Ok((record, _)) = Record::read(doc) else {
        panic!("unreadable")
    };
    let changes: Vec<Value> = doc
        .get_changes(since)
        .iter()
        .map(|c| {
            serde_json::to_value(fieldsync_sync::protocol::B64(c.raw_bytes().to_vec()))
                .expect("b64")
        })
        .collect();
    json!({"doc_id": record.id(), "kind": "diary", "changes": changes})
}

fn item(by: UserId, id: &str, text: &str) -> DiaryItem {
    DiaryItem {
        id: id.into(),
        by,
        at_ms: berlin("2026-11-18 09:00"),
        text: text.into(),
        quantity: Some(12.5),
        unit: Some("m3".into()),
        note: String::new(),
        severity: None,
    }
}

fn photo(author: UserId, project: DocId, kind: AttachKind, at: i64, fix: (f64, f64)) -> Photo {
    Photo {
        id: DocId::new(),
        author,
        sha256: format!("{:064x}", at),
        size: 1234,
        mime: "image/jpeg".into(),
        attached_to: Attachment {
            kind,
            id: project,
            site: (kind == AttachKind::SiteDay).then(|| "depot".into()),
            day: (kind == AttachKind::SiteDay).then(|| DAY.into()),
        },
        captured_at_ms: at,
        evidence: Some(ev(fix.0, fix.1, at)),
        caption: "East wall".into(),
        tags: Vec::new(),
        reviews: Vec::new(),
        comments: Vec::new(),
    }
}

fn assign(h: &Harness, c: &Company, user: UserId) {
    let (s, shift) = h.post(
        "/v1/attendance/shifts",
        Some(&c.hr),
        &json!({"name": format!("day {user}"), "start": "07:00", "end": "16:00", "break_min": 30}),
    );
    assert_eq!(s, 201, "{shift}");
    let (s, cal) = h.post(
        "/v1/attendance/calendars",
        Some(&c.hr),
        &json!({"name": format!("cal {user}"), "workdays": ["mon","tue","wed","thu","fri"]}),
    );
    assert_eq!(s, 201, "{cal}");
    let (s, a) = h.send(
        "PUT",
        "/v1/attendance/assignments",
        Some(&c.hr),
        &json!({"user": user, "project": c.project, "site": "depot", "shift": shift["id"], "calendar": cal["id"], "from": "2026-11-01"}),
    );
    assert_eq!(s, 200, "{a}");
}

fn punch(c: &Company, user: UserId, dir: fieldsync_sync::Direction, at: i64) -> Record {
    Record::Punch(Punch {
        id: DocId::new(),
        user,
        project: c.project,
        site: "depot".into(),
        direction: dir,
        evidence: ev(DEPOT.0, DEPOT.1 + 0.0003, at),
        note: None,
    })
}

fn status(answer: &Value) -> (&str, &str) {
    (
        answer["results"][0]["status"].as_str().unwrap_or(""),
        answer["results"][0]["error"]["code"].as_str().unwrap_or(""),
    )
}

fn a_day_reads_with_its_crew_and_photos_signs_off_and_exports(h: Harness) {
    use fieldsync_sync::Direction::{In, Out};
    let c = company(&h);
    assign(&h, &c, c.crew_id);
    assign(&h, &c, c.mate_id);
    for (tok, rec) in [
        (
            &c.crew,
            punch(&c, c.crew_id, In, berlin("2026-11-18 07:58")),
        ),
        (
            &c.crew,
            punch(&c, c.crew_id, Out, berlin("2026-11-18 16:05")),
        ),
        (
            &c.mate,
            punch(&c, c.mate_id, In, berlin("2026-11-18 08:10")),
        ),
        // The day before does not count.
        (
            &c.crew,
            punch(&c, c.crew_id, In, berlin("2026-11-17 08:00")),
        ),
    ] {
        let a = h.push_new(tok, &[rec]);
        assert_eq!(status(&a).0, "accepted", "{a}");
    }

    // Ana's phone writes the day.
    let mut phone = open_day(c.project, "depot", DAY);
    edit(&mut phone, |d| {
        d.weather = "Rain, wind from the west".into();
        d.temperature_c = Some(4.0);
        d.work = "Formwork east wall <level 2>.".into();
        d.materials.push(item(c.crew_id, "m1", "Concrete C30/37"));
        d.crew.push(CrewEntry {
            key: "mueller".into(),
            user: None,
            name: "Müller GmbH scaffolders (3)".into(),
            present: true,
            hours: Some(6.0),
            note: String::new(),
            by: c.crew_id,
        });
    });
    let a = h.push_docs(&c.crew, &json!([entry(&phone, &[])]));
    assert_eq!(status(&a), ("accepted", ""), "{a}");
    let id = Diary::doc_id_for(c.project, "depot", DAY);

    // Photos: one of the site and day, one of the project taken on site that day, one taken
    // far away, one the day before.
    let on_day = photo(
        c.crew_id,
        c.project,
        AttachKind::SiteDay,
        berlin("2026-11-18 09:30"),
        DEPOT,
    );
    let on_site = photo(
        c.crew_id,
        c.project,
        AttachKind::Project,
        berlin("2026-11-18 11:00"),
        (DEPOT.0 + 0.0005, DEPOT.1),
    );
    let elsewhere = photo(
        c.crew_id,
        c.project,
        AttachKind::Project,
        berlin("2026-11-18 12:00"),
        (52.3906, 13.0645),
    );
    let yesterday = photo(
        c.crew_id,
        c.project,
        AttachKind::Project,
        berlin("2026-11-17 12:00"),
        DEPOT,
    );
    let a = h.push_new(
        &c.crew,
        &[
            Record::Photo(on_day.clone()),
            Record::Photo(on_site.clone()),
            Record::Photo(elsewhere),
            Record::Photo(yesterday),
        ],
    );
    assert!(
        a["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{a}"
    );

    let (s, list) = h.get(&format!("/v1/diaries?project={}", c.project), Some(&c.sm));
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["counts"]["materials"], 1);

    let (s, day) = h.get(&format!("/v1/diaries/{id}"), Some(&c.sm));
    assert_eq!(s, 200, "{day}");
    assert_eq!(day["site_name"], "Berlin depot");
    assert_eq!(day["locked"], false);
    let crew = day["crew"].as_array().expect("crew");
    let line = |name: &str| {
        crew.iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {crew:?}"))
    };
    // 07:58 to 16:05.
    assert_eq!(line("ana@acme.test")["punched_hours"], 8.12);
    assert_eq!(line("ana@acme.test")["source"], "punches");
    assert_eq!(line("ben@acme.test")["on_site"], true);
    assert_eq!(line("Müller GmbH scaffolders (3)")["source"], "diary");
    assert_eq!(crew.len(), 3, "{crew:?}");
    let mut photo_ids: Vec<&str> = day["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    photo_ids.sort();
    let mut want = vec![on_day.id.to_string(), on_site.id.to_string()];
    want.sort();
    assert_eq!(photo_ids, want);

    // Who looked at whose punches and photos is in the access log: Ana can see that the site
    // manager read her day, and her photo's record.
    let (s, _) = h.get(&format!("/v1/records/{}", on_day.id), Some(&c.sm));
    assert_eq!(s, 200);
    let (s, log) = h.get("/v1/audit/access?subject=me", Some(&c.crew));
    assert_eq!(s, 200, "{log}");
    let reads: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["viewer"] == json!(c.sm_id))
        .filter_map(|e| Some((e["what"].as_str()?, e["scope"].as_str()?)))
        .collect();
    let day_scope = format!("record:{id}");
    let photo_scope = format!("record:{}", on_day.id);
    assert!(reads.contains(&("diary_day", day_scope.as_str())), "{log}");
    assert!(reads.contains(&("record", photo_scope.as_str())), "{log}");

    // The site manager's phone pre-fills the crew from the punches the server has: Ana and Ben
    // become ordinary crew entries (Ana with her punched hours), the subcontractor stays.
    let sm_phone = h.phone("acme", "sm@acme.test");
    sm_phone.sync().expect("sync");
    let filled = sm_phone
        .prefill_diary_crew(id.to_string())
        .expect("prefill");
    let mut crew: Vec<(String, Option<f64>)> = filled
        .diary
        .crew
        .iter()
        .map(|c| (c.name.clone(), c.hours))
        .collect();
    crew.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        crew,
        vec![
            ("Müller GmbH scaffolders (3)".to_owned(), Some(6.0)),
            ("ana@acme.test".to_owned(), Some(8.12)),
            ("ben@acme.test".to_owned(), None),
        ]
    );
    // Offline, the phone links the same photos to the day as the server does.
    let linked: Vec<String> = sm_phone
        .diary_photos(id.to_string())
        .expect("photos")
        .into_iter()
        .map(|v| v.photo.id.to_string())
        .collect();
    assert_eq!(linked, vec![on_day.id.to_string(), on_site.id.to_string()]);
    // Twice adds nothing; after a sync the server's view shows them as the diary's entries.
    let again = sm_phone
        .prefill_diary_crew(id.to_string())
        .expect("prefill");
    assert_eq!(again.diary.crew.len(), 3);
    sm_phone.sync().expect("sync");
    let (_, day) = h.get(&format!("/v1/diaries/{id}"), Some(&c.sm));
    let sources: Vec<&str> = day["crew"]
        .as_array()
        .expect("crew")
        .iter()
        .filter_map(|l| l["source"].as_str())
        .collect();
    assert_eq!(
        sources.iter().filter(|s| **s == "punches+diary").count(),
        2,
        "{day}"
    );

    // Only a site manager of the project signs off.
    for tok in [&c.crew, &c.outsider] {
        let (s, body) = h.post(&format!("/v1/diaries/{id}/sign-off"), Some(tok), &json!({}));
        assert!(s == 403 || s == 404, "{s} {body}");
    }
    let (s, body) = h.post(
        &format!("/v1/diaries/{id}/sign-off"),
        Some(&c.sm),
        &json!({"note": "Checked on site"}),
    );
    assert_eq!((s, &body["locked"]), (200, &json!(true)), "{body}");

    // Ana's phone, offline meanwhile, syncs its late edit: refused with the reason.
    let before = phone.get_heads();
    edit(&mut phone, |d| d.work.push_str(" Stripped at 16:00."));
    let a = h.push_docs(&c.crew, &json!([entry(&phone, &before)]));
    assert_eq!(status(&a), ("rejected", "diary_locked"), "{a}");
    assert!(
        a["results"][0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("signed off")),
        "{a}"
    );
    let (_, day) = h.get(&format!("/v1/diaries/{id}"), Some(&c.sm));
    assert_eq!(day["work"], "Formwork east wall <level 2>.");

    // The printable export of the locked day.
    let (s, ctype, html) = h.get_bytes(
        &format!("/v1/diaries/export?project={}&from={DAY}", c.project),
        &c.sm,
    );
    assert_eq!((s, ctype.as_str()), (200, "text/html; charset=utf-8"));
    let html = String::from_utf8(html).expect("utf-8");
    for words in [
        "Formwork east wall &lt;level 2&gt;.",
        "Signed off by sm@acme.test",
        "Müller GmbH scaffolders (3)",
        "Concrete C30/37",
        "12.5 m3",
        "Photos (2)",
        "Rain, wind from the west, 4 °C",
    ] {
        assert!(html.contains(words), "{words:?} not in the export");
    }

    // Reopened: both steps are in the log, and the crew can write again.
    let (s, body) = h.post(
        &format!("/v1/diaries/{id}/reopen"),
        Some(&c.sm),
        &json!({"note": "Crane delay missing"}),
    );
    assert_eq!((s, &body["locked"]), (200, &json!(false)), "{body}");
    let actions: Vec<&str> = body["signoffs"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["sign_off", "reopen"]);
    let (s, body) = h.post(&format!("/v1/diaries/{id}/reopen"), Some(&c.sm), &json!({}));
    assert_eq!(
        (s, body["error"].as_str()),
        (422, Some("not_signed_off")),
        "{body}"
    );

    // Bad requests.
    for (q, code) in [
        (
            format!("project={}&from=2026-11-20&to={DAY}", c.project),
            "invalid_period",
        ),
        (
            format!("project={}&from=2026-01-01&to=2026-12-31", c.project),
            "period_too_long",
        ),
        (
            format!("project={}&from=18.11.2026", c.project),
            "invalid_date",
        ),
        (
            format!("project={}&from={DAY}&format=pdf", c.project),
            "invalid_format",
        ),
        (format!("project=nope&from={DAY}"), "invalid_id"),
    ] {
        let (s, body) = h.get(&format!("/v1/diaries/export?{q}"), Some(&c.sm));
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some(code)),
            "{q}: {body}"
        );
    }
    for (path, code) in [
        ("/v1/diaries/nope".to_owned(), "invalid_id"),
        ("/v1/diaries?from=18.11.2026".to_owned(), "invalid_date"),
        ("/v1/diaries?project=nope".to_owned(), "invalid_id"),
    ] {
        let (s, body) = h.get(&path, Some(&c.sm));
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some(code)),
            "{path}: {body}"
        );
    }
    // Nobody outside the project sees the day.
    let (s, _) = h.get(&format!("/v1/diaries/{id}"), Some(&c.outsider));
    assert_eq!(s, 404);
    let (_, list) = h.get("/v1/diaries", Some(&c.outsider));
    assert_eq!(list, json!([]));

    // A diary of a site the project does not have.
    let nowhere = open_day(c.project, "nowhere", DAY);
    let a = h.push_docs(&c.crew, &json!([entry(&nowhere, &[])]));
    assert_eq!(status(&a), ("rejected", "unknown_site"), "{a}");
    let _ = (&c.admin, c.sm_id);
}

fn members_joining_and_leaving_take_the_projects_diaries_and_photos_with_them(h: Harness) {
    let c = company(&h);
    let t = h.tenant_of(&c.admin);
    let newcomer = h.user(t, "cem@acme.test", Role::FieldRep, None);
    let newcomer_t = h.token("acme", "cem@acme.test");
    let mut day = open_day(c.project, "depot", DAY);
    edit(&mut day, |d| d.work = "Rebar, level 1.".into());
    assert_eq!(
        status(&h.push_docs(&c.crew, &json!([entry(&day, &[])]))).0,
        "accepted"
    );
    let ph = photo(
        c.crew_id,
        c.project,
        AttachKind::SiteDay,
        berlin("2026-11-18 10:00"),
        DEPOT,
    );
    assert_eq!(
        status(&h.push_new(&c.crew, &[Record::Photo(ph.clone())])).0,
        "accepted"
    );
    let id = Diary::doc_id_for(c.project, "depot", DAY);

    let newcomer_phone = h.phone("acme", "cem@acme.test");
    newcomer_phone.sync().expect("sync");
    assert!(newcomer_phone.list_photos().expect("photos").is_empty());
    let (s, _) = h.get(&format!("/v1/diaries/{id}"), Some(&newcomer_t));
    assert_eq!(s, 404);

    // The newcomer joins the project; Ben leaves it.
    let mate = c.mate_id;
    let a = h.push_edit(&c.admin, c.project, |r| {
        if let Record::Project(p) = r {
            p.members.retain(|m| m.user != mate);
            p.members.push(Member {
                user: newcomer,
                role: ProjectRole::Crew,
            });
        }
    });
    assert_eq!(status(&a).0, "accepted", "{a}");
    let (s, body) = h.get(&format!("/v1/diaries/{id}"), Some(&newcomer_t));
    assert_eq!(
        (s, &body["work"]),
        (200, &json!("Rebar, level 1.")),
        "{body}"
    );
    newcomer_phone.sync().expect("sync");
    let ids: Vec<String> = newcomer_phone
        .list_photos()
        .expect("photos")
        .into_iter()
        .map(|p| p.photo.id.to_string())
        .collect();
    assert_eq!(
        ids,
        vec![ph.id.to_string()],
        "the newcomer's phone gets the photo"
    );

    let (s, _) = h.get(&format!("/v1/diaries/{id}"), Some(&c.mate));
    assert_eq!(s, 404, "Ben left the project");
    let (_, list) = h.get(&format!("/v1/photos?project={}", c.project), Some(&c.mate));
    assert_eq!(list, json!([]));
    // The author keeps their own photo.
    let (_, list) = h.get(&format!("/v1/photos?project={}", c.project), Some(&c.crew));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // A diary written by someone who left is refused.
    let mut late = open_day(c.project, "depot", "2026-11-19");
    edit(&mut late, |d| d.work = "Late".into());
    assert_eq!(
        status(&h.push_docs(&c.mate, &json!([entry(&late, &[])]))),
        ("rejected", "forbidden")
    );
}

on_both_stores!(
    a_day_reads_with_its_crew_and_photos_signs_off_and_exports,
    members_joining_and_leaving_take_the_projects_diaries_and_photos_with_them,
);
