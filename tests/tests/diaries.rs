//! Site diaries from phones, end to end, on SQLite and PostgreSQL: three phones write the same
//! day offline (the same paragraph included) and converge with the server without losing a
//! word; a crew phone's offline edit after the site manager's sign-off is refused with
//! `diary_locked`, the phone returns to the server's version and keeps the words, which go in
//! after the reopening; viewers and outsiders are refused on the phone and on the server; and
//! a customer's timeline on the phone after a sync.

use fieldsync_mobile_core::{
    AttachTo, DiaryAction, DiaryView, LocationFix, NewCustomer, PhotoSource,
};
use fieldsync_sync::protocol::B64;
use fieldsync_sync::record::project::{Member, ProjectRole, Site};
use fieldsync_sync::{Diary, DocId, Project, Record, Role};
use fieldsync_tests::{Harness, Phone, on_both_stores};

const DAY: &str = "2026-11-24";
const JOLLA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/photos/mobile/jolla.jpg"
);

/// A tenant with a project "Depot" (site `depot`): two crew, a site manager and a viewer are
/// members; an outsider is not.
struct Day {
    h: Harness,
    project: DocId,
    admin_t: String,
}

fn setup(h: Harness) -> Day {
    let tenant = h.tenant("acme");
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let mut members = Vec::new();
    for (email, role, project_role) in [
        ("crew1@acme.test", Role::FieldRep, ProjectRole::Crew),
        ("crew2@acme.test", Role::FieldRep, ProjectRole::Crew),
        (
            "site@acme.test",
            Role::SiteManager,
            ProjectRole::SiteManager,
        ),
        ("viewer@acme.test", Role::FieldRep, ProjectRole::Viewer),
    ] {
        let user = h.user(tenant, email, role, None);
        members.push(Member {
            user,
            role: project_role,
        });
    }
    h.user(tenant, "outsider@acme.test", Role::FieldRep, None);
    let mut p = Project::new("Depot", admin);
    p.sites = vec![Site {
        id: "depot".into(),
        name: "Berlin depot".into(),
        address: None,
        timezone: "Europe/Berlin".into(),
        geofence: None,
    }];
    p.members = members;
    let project = p.id;
    let admin_t = h.token("acme", "admin@acme.test");
    let answer = h.push_new(&admin_t, &[Record::Project(p)]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    Day {
        h,
        project,
        admin_t,
    }
}

impl Day {
    /// A phone of `email`, synced once (it holds the project), then offline until it syncs.
    fn phone(&self, email: &str) -> Phone {
        let p = self.h.phone("acme", email);
        p.sync().expect("first sync");
        p
    }

    fn open(&self, p: &Phone) -> DiaryView {
        p.open_diary(self.project.to_string(), "depot".into(), DAY.into())
            .expect("open the day")
    }

    /// The server's diary and heads (sorted).
    fn server(&self, id: &str) -> (Diary, Vec<String>) {
        let (s, body) = self
            .h
            .get(&format!("/v1/records/{id}"), Some(&self.admin_t));
        assert_eq!(s, 200, "{body}");
        let Record::Diary(d) = serde_json::from_value(body["record"].clone()).expect("record")
        else {
            panic!("not a diary: {body}");
        };
        let mut heads: Vec<String> = serde_json::from_value(body["heads"].clone()).expect("heads");
        heads.sort();
        (d, heads)
    }
}

fn three_phones_write_the_same_day_offline_and_converge(h: Harness) {
    let day = setup(h);
    let phones = [
        day.phone("crew1@acme.test"),
        day.phone("crew2@acme.test"),
        day.phone("site@acme.test"),
    ];
    // Offline: each opens the day (the same document, from the same genesis change) and
    // writes the same paragraph its own way, plus an item of its own.
    let id = day.open(&phones[0]).diary.id.to_string();
    let words = [
        "Poured the east slab.",
        "Pump late, 40 min.",
        "Inspected rebar, fine.",
    ];
    for (i, p) in phones.iter().enumerate() {
        assert_eq!(day.open(p).diary.id.to_string(), id);
        p.set_diary_work(id.clone(), format!("Morning: {}", words[i]))
            .expect("work");
        p.add_diary_item(
            id.clone(),
            "materials".into(),
            format!("Delivery {i}"),
            Some(2.5),
            Some("t".into()),
            String::new(),
            None,
        )
        .expect("item");
    }
    // In turn, twice: everyone ends with everything.
    for _ in 0..2 {
        for p in &phones {
            let report = p.sync().expect("sync");
            assert!(report.rejected.is_empty(), "{report:?}");
        }
    }
    let (server, server_heads) = day.server(&id);
    for p in &phones {
        let v = p.get_diary(id.clone()).expect("diary");
        assert_eq!(v.diary, server);
        assert_eq!(v.heads, server_heads);
        assert!(!v.pending);
    }
    for w in words {
        assert_eq!(server.work.matches(w).count(), 1, "{}", server.work);
    }
    assert_eq!(server.materials.len(), 3);
}

fn a_sign_off_refuses_an_offline_edit_which_comes_back_after_the_reopening(h: Harness) {
    let day = setup(h);
    let crew = day.phone("crew1@acme.test");
    let sm = day.phone("site@acme.test");
    let id = day.open(&sm).diary.id.to_string();
    sm.set_diary_work(id.clone(), "Formwork east wall.".into())
        .expect("work");
    sm.sync().expect("sync");
    crew.sync().expect("sync");
    assert_eq!(day.open(&crew).diary.work, "Formwork east wall.");

    // The crew phone writes offline while the site manager signs the day off.
    crew.set_diary_work(
        id.clone(),
        "Formwork east wall.\nRebar delivered, 2.5 t.".into(),
    )
    .expect("work");
    crew.add_diary_item(
        id.clone(),
        "delays".into(),
        "Truck 2 h late".into(),
        None,
        None,
        String::new(),
        None,
    )
    .expect("delay");
    sm.sign_off_diary(id.clone(), "Day complete".into())
        .expect("sign off");
    assert!(sm.sync().expect("sync").rejected.is_empty());

    let report = crew.sync().expect("sync");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let r = &report.rejected[0];
    assert_eq!(
        (r.doc_id.as_str(), r.code.as_str()),
        (id.as_str(), "diary_locked")
    );
    assert!(r.message.contains("was signed off"), "{}", r.message);
    let (server, server_heads) = day.server(&id);
    let mine = crew.get_diary(id.clone()).expect("diary");
    assert_eq!(mine.diary, server);
    assert_eq!(mine.heads, server_heads);
    assert!(mine.locked && !mine.pending);
    assert_eq!(server.work, "Formwork east wall.");
    assert!(server.delays.is_empty());
    // The words are kept with the rejection.
    let kept = &crew.diary_rejections(id.clone()).expect("rejections")[0].kept;
    assert_eq!(kept.work, "Rebar delivered, 2.5 t.");
    assert_eq!(kept.items.len(), 1);
    assert_eq!(
        crew.restore_diary_kept(id.clone())
            .expect_err("still locked")
            .code(),
        "diary_locked"
    );

    // Reopened on the site manager's phone, the words go in.
    sm.reopen_diary(id.clone(), "Add the rebar".into())
        .expect("reopen");
    assert!(sm.sync().expect("sync").rejected.is_empty());
    crew.sync().expect("sync");
    crew.restore_diary_kept(id.clone()).expect("restore");
    let report = crew.sync().expect("sync");
    assert!(report.rejected.is_empty(), "{report:?}");
    let (server, _) = day.server(&id);
    assert_eq!(server.work, "Formwork east wall.\nRebar delivered, 2.5 t.");
    assert_eq!(server.delays.len(), 1);
    let log: Vec<DiaryAction> = server.signoffs.iter().map(|e| e.action).collect();
    assert_eq!(log, [DiaryAction::SignOff, DiaryAction::Reopen]);
    assert!(!server.is_locked());
}

/// The push entry of a diary day written by someone: its genesis change and a change setting
/// the weather, under an actor of the writer's own.
fn diary_push(project: DocId) -> serde_json::Value {
    let mut doc = Diary::genesis(project, "depot", DAY)
        .expect("genesis")
        .with_actor(automerge::ActorId::random());
    let (mut d, _) = match Record::read(&doc).expect("read") {
        (Record::Diary(d), c) => (d, c),
        _ => panic!("not a diary"),
    };
    d.weather = "rain".into();
    let mut tx = doc.transaction();
    Record::Diary(d).write(&mut tx).expect("write");
    tx.commit();
    let changes: Vec<B64> = doc
        .get_changes(&[])
        .iter()
        .map(|c| B64(c.raw_bytes().to_vec()))
        .collect();
    serde_json::json!([{
        "doc_id": Diary::doc_id_for(project, "depot", DAY),
        "kind": "diary",
        "changes": changes,
    }])
}

fn viewers_and_outsiders_are_refused_on_the_phone_and_on_the_server(h: Harness) {
    let day = setup(h);
    let viewer = day.phone("viewer@acme.test");
    let outsider = day.phone("outsider@acme.test");
    let e = viewer
        .open_diary(day.project.to_string(), "depot".into(), DAY.into())
        .expect_err("a viewer does not write");
    assert_eq!(e.code(), "forbidden", "{e:?}");
    // The outsider's phone does not even hold the project.
    let e = outsider
        .open_diary(day.project.to_string(), "depot".into(), DAY.into())
        .expect_err("an outsider does not write");
    assert_eq!(e.code(), "unknown_project", "{e:?}");
    for p in [&viewer, &outsider] {
        assert!(p.list_diaries(None).expect("list").is_empty());
    }
    // The server refuses the same writes sent by hand, new day or existing.
    for existing in [false, true] {
        if existing {
            let sm = day.phone("site@acme.test");
            day.open(&sm);
            assert!(sm.sync().expect("sync").rejected.is_empty());
        }
        for email in ["viewer@acme.test", "outsider@acme.test"] {
            let t = day.h.token("acme", email);
            let answer = day.h.push_docs(&t, &diary_push(day.project));
            let r = &answer["results"][0];
            assert_eq!(r["status"], "rejected", "{email}: {answer}");
            assert_eq!(r["error"]["code"], "forbidden", "{email}: {answer}");
        }
    }
    let id = Diary::doc_id_for(day.project, "depot", DAY);
    let (d, _) = day.server(&id.to_string());
    assert_eq!(d.weather, "", "nothing of theirs was stored");
}

fn the_customer_timeline_on_the_phone_has_visits_photos_projects_and_owners(h: Harness) {
    let tenant = h.tenant("acme");
    h.user(tenant, "boss@acme.test", Role::Manager, None);
    let rep = h.user(
        tenant,
        "rep@acme.test",
        Role::FieldRep,
        Some("boss@acme.test"),
    );
    let admin = h.user(tenant, "admin@acme.test", Role::Admin, None);
    let boss = h.phone("acme", "boss@acme.test");
    boss.sync().expect("sync");
    let customer = boss
        .create_customer(NewCustomer {
            name: "Acme Ltd".into(),
            lat: Some(52.5221),
            lon: Some(13.4135),
            notes: Some("Prefers mornings.".into()),
            ..Default::default()
        })
        .expect("customer")
        .customer
        .id;
    boss.sync().expect("sync");
    boss.edit_customer(
        customer.to_string(),
        vec![fieldsync_mobile_core::FieldEdit {
            field: "owner".into(),
            value: rep.to_string(),
        }],
    )
    .expect("hand to the rep");
    assert!(boss.sync().expect("sync").rejected.is_empty());
    // A project for the customer, with the rep on it.
    let mut p = Project::new("Acme warehouse", admin);
    p.customer = Some(customer);
    p.members = vec![Member {
        user: rep,
        role: ProjectRole::Crew,
    }];
    let answer = h.push_new(&h.token("acme", "admin@acme.test"), &[Record::Project(p)]);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");

    let phone = h.phone("acme", "rep@acme.test");
    phone.sync().expect("sync");
    let visit = phone
        .plan_visit(customer.to_string(), Some(DAY.into()), "New frames".into())
        .expect("plan")
        .visit
        .id
        .to_string();
    phone
        .check_in(visit.clone(), LocationFix::gps(52.5221, 13.4135, 9.0))
        .expect("check in");
    phone
        .attach_photo(
            PhotoSource::file(JOLLA),
            AttachTo {
                kind: "visit".into(),
                id: visit.clone(),
                ..Default::default()
            },
            None,
            "Storefront".into(),
            Vec::new(),
        )
        .expect("photo");
    phone
        .check_out(
            visit.clone(),
            LocationFix::gps(52.5221, 13.4135, 9.0),
            "Wants a quote.".into(),
            "follow_up".into(),
            Some("2026-12-01".into()),
        )
        .expect("check out");
    assert!(phone.sync().expect("sync").rejected.is_empty());

    let timeline = phone
        .customer_timeline(customer.to_string())
        .expect("timeline");
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "check_in",
        "check_out",
        "follow_up",
        "photo",
        "project",
        "note",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {timeline:#?}");
    }
    let owners: Vec<&str> = timeline
        .iter()
        .filter(|e| e.kind == "owner")
        .map(|e| e.detail.as_str())
        .collect();
    // Newest first: to the rep, then the manager who created it.
    let boss_id = phone
        .get_customer(customer.to_string())
        .expect("customer")
        .customer
        .created_by
        .to_string();
    assert_eq!(owners, [rep.to_string(), boss_id], "{timeline:#?}");
    // Sorted newest first where dated.
    let dated: Vec<i64> = timeline.iter().filter_map(|e| e.at_ms).collect();
    assert!(dated.windows(2).all(|w| w[0] >= w[1]), "{timeline:#?}");
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == "photo" && e.title == "Storefront")
    );
}

/// The `fieldsync-device` binary, built now (the build is a no-op when it is up to date, so a
/// binary older than this code is never used).
fn device_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = std::process::Command::new(cargo)
        .args([
            "build",
            "-p",
            "fieldsync-mobile-core",
            "--bin",
            "fieldsync-device",
        ])
        .status()
        .expect("cargo build")
        .success();
    let bin = dir.join("fieldsync-device");
    assert!(ok && bin.exists(), "could not build {}", bin.display());
    bin
}

/// Runs the device binary with `--json`; its exit code and its JSON output.
fn device(bin: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(bin)
        .arg("--dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .expect("run device");
    let text = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&text).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&text)
            )
        }),
    )
}

fn a_diary_day_from_the_terminal(h: Harness) {
    let day = setup(h);
    let bin = device_binary();
    let phone = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let (code, v) = device(&bin, phone.path(), args);
        assert_eq!(code, 0, "{args:?}: {v}");
        v
    };
    run(&[
        "login",
        "--server",
        &day.h.url,
        "--tenant",
        "acme",
        "--email",
        "site@acme.test",
        "--password",
        fieldsync_tests::PASSWORD,
    ]);
    run(&["sync"]);
    let project = day.project.to_string();
    let opened = run(&["diary", "open", &project, "depot", DAY]);
    let id = opened["diary"]["id"].as_str().expect("id").to_owned();
    run(&["diary", "weather", &id, "sunny", "--temp", "-2.5"]);
    run(&["diary", "work", &id, "Formwork east wall."]);
    run(&["diary", "work", &id, "Rebar delivered.", "--append"]);
    let item = run(&[
        "diary",
        "add",
        &id,
        "incidents",
        "Cut finger",
        "--severity",
        "first_aid",
    ]);
    assert!(item["item_id"].is_string(), "{item}");
    run(&["diary", "crew", &id, "--name", "Sub crew A", "--hours", "8"]);
    let signed = run(&["diary", "sign-off", &id, "--note", "Done"]);
    assert_eq!(signed["locked"], true, "{signed}");
    // A change to the signed-off day is refused, with the code and the sentence.
    let (code, err) = device(&bin, phone.path(), &["diary", "work", &id, "More."]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err["error"], "diary_locked", "{err}");
    run(&["diary", "reopen", &id, "--note", "One more line"]);
    let shown = run(&["diary", "show", &id]);
    assert_eq!(
        shown["diary"]["work"], "Formwork east wall.\nRebar delivered.",
        "{shown}"
    );
    assert_eq!(shown["diary"]["temperature_c"], -2.5, "{shown}");
    assert_eq!(shown["diary"]["signoffs"].as_array().map(Vec::len), Some(2));
    let list = run(&["diary", "list", "--project", &project]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let report = run(&["sync"]);
    assert_eq!(report["rejected"], serde_json::json!([]), "{report}");
    let (server, _) = day.server(&id);
    assert_eq!(server.incidents.len(), 1);
    assert_eq!(server.crew.len(), 1);

    let customer = run(&[
        "customer", "add", "--name", "Acme Ltd", "--notes", "Gate 3.",
    ]);
    let cid = customer["customer"]["id"].as_str().expect("id").to_owned();
    let timeline = run(&["customer", "timeline", &cid]);
    let kinds: Vec<&str> = timeline
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"owner") && kinds.contains(&"note"),
        "{timeline}"
    );
}

on_both_stores!(
    a_diary_day_from_the_terminal,
    three_phones_write_the_same_day_offline_and_converge,
    a_sign_off_refuses_an_offline_edit_which_comes_back_after_the_reopening,
    viewers_and_outsiders_are_refused_on_the_phone_and_on_the_server,
    the_customer_timeline_on_the_phone_has_visits_photos_projects_and_owners,
);
