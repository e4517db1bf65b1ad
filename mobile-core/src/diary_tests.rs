//! Site diaries on the phone, offline: three phones opening the same day from the same genesis
//! change and merging their edits (documents handed between phones as a pull would), the
//! project roles the phone enforces itself, the lock after a sign-off, bad input, and a server
//! refusal that resets the diary but keeps the person's words to write again; and a customer's
//! timeline from the local store.

use crate::fake_server::{self, FakeServer};
use crate::store;
use crate::tests::open;
use crate::*;
use fieldsync_sync::protocol::{B64, PullItem, PushResponse, PushResult};
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::{Rejection, UserId};

/// 2026-11-24 08:00:00 UTC.
const T0: i64 = 1_795_507_200_000;
const DAY: &str = "2026-11-24";

/// A phone logged in (offline) as a new user with tenant role `role`.
fn phone(server_url: &str, role: &str) -> (tempfile::TempDir, FieldsyncClient, UserId) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = open(&dir);
    let me = UserId::new();
    {
        let inner = client.lock();
        store::session_put(
            &inner.store.conn,
            &store::SessionRow {
                server_url: server_url.into(),
                tenant_slug: "demo".into(),
                tenant_id: "01890a5d-ac96-774b-bcce-b302099a8000".into(),
                user_id: me.to_string(),
                role: role.into(),
                email: format!("{me}@demo.example"),
                access_token: "access".into(),
                refresh_token: "refresh".into(),
                access_expires_at_ms: store::now_ms() + 15 * 60_000,
                clock_offset_ms: 0,
            },
        )
        .expect("session");
        store::meta_set(&inner.store.conn, "cursor", "c0").expect("cursor");
    }
    client
        .set_manual_clock(T0, 3_600_000, "boot-a".into())
        .expect("clock");
    (dir, client, me)
}

/// Hands the document `doc_id` from one phone to another, as a pull's snapshot would (merged
/// with the receiver's copy if it has one).
fn hand(from: &FieldsyncClient, to: &FieldsyncClient, doc_id: &str) {
    let row = store::doc_get(&from.lock().store.conn, doc_id)
        .expect("read")
        .expect("held");
    let kind: RecordKind = row.kind.parse().expect("kind");
    let inner = to.lock();
    crate::sync::apply_pull_item(
        &inner.store.conn,
        inner.device_id,
        PullItem::Snapshot {
            doc_id: doc_id.parse().expect("id"),
            kind,
            doc: B64(row.bytes),
            heads: Vec::new(),
        },
    )
    .expect("hand over");
}

fn err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ClientError {
    r.expect_err("must be refused")
}

/// A site manager's phone with project "Tower B" (site "Depot"); the crew and a viewer are
/// members. Returns the manager's phone, the project id and the site's id.
struct Site {
    _dir: tempfile::TempDir,
    sm: FieldsyncClient,
    project: String,
    site: String,
}

fn site(url: &str, members: &[(UserId, &str)]) -> Site {
    let (dir, sm, me) = phone(url, "site_manager");
    let project = sm
        .create_project(NewProject {
            name: "Tower B".into(),
            ..Default::default()
        })
        .expect("project")
        .project
        .id
        .to_string();
    let site = sm
        .add_site(
            project.clone(),
            NewSite {
                name: "Depot".into(),
                address: None,
                timezone: "Europe/Berlin".into(),
                geofence: None,
            },
        )
        .expect("site")
        .id;
    sm.add_member(project.clone(), me.to_string(), "site_manager".into())
        .expect("member");
    for (user, role) in members {
        sm.add_member(project.clone(), user.to_string(), (*role).into())
            .expect("member");
    }
    Site {
        _dir: dir,
        sm,
        project,
        site,
    }
}

#[test]
fn three_phones_open_the_same_day_offline_and_every_word_survives_the_merge() {
    let (_d1, c1, u1) = phone("http://127.0.0.1:9", "field_rep");
    let (_d2, c2, u2) = phone("http://127.0.0.1:9", "field_rep");
    let s = site("http://127.0.0.1:9", &[(u1, "crew"), (u2, "crew")]);
    for c in [&c1, &c2] {
        hand(&s.sm, c, &s.project);
    }
    // By the site's id on two phones, by its name on the third: one diary.
    let a =
        s.sm.open_diary(s.project.clone(), s.site.clone(), DAY.into())
            .expect("open");
    let b = c1
        .open_diary(s.project.clone(), "Depot".into(), DAY.into())
        .expect("open");
    let c = c2
        .open_diary(s.project.clone(), s.site.clone(), DAY.into())
        .expect("open");
    let id = a.diary.id.to_string();
    assert_eq!(b.diary.id, a.diary.id);
    assert_eq!(c.diary.id, a.diary.id);
    assert!(a.pending && !a.locked);
    assert_eq!(a.site_name.as_deref(), Some("Depot"));
    // Opening again returns the same document, not a new one.
    let again = c1
        .open_diary(s.project.clone(), s.site.clone(), DAY.into())
        .expect("open again");
    assert_eq!(again.diary, b.diary);

    // The same paragraph, three ways, and an item each.
    let base = "Slab pour: ";
    for (phone, words) in [
        (&s.sm, "east bay done."),
        (&c1, "pump arrived 7:40."),
        (&c2, "rain stopped at noon."),
    ] {
        phone
            .set_diary_work(id.clone(), format!("{base}{words}"))
            .expect("work");
        phone
            .add_diary_item(
                id.clone(),
                "materials".into(),
                format!("Concrete C30/37 for {words}"),
                Some(12.5),
                Some("m3".into()),
                String::new(),
                None,
            )
            .expect("item");
    }
    // Everyone hands their copy to everyone, twice round.
    let phones = [&s.sm, &c1, &c2];
    for _ in 0..2 {
        for from in phones {
            for to in phones {
                if !std::ptr::eq(from, to) {
                    hand(from, to, &id);
                }
            }
        }
    }
    let views: Vec<DiaryView> = phones
        .iter()
        .map(|p| p.get_diary(id.clone()).expect("diary"))
        .collect();
    assert_eq!(views[0].diary, views[1].diary);
    assert_eq!(views[0].diary, views[2].diary);
    let work = &views[0].diary.work;
    for words in [
        "east bay done.",
        "pump arrived 7:40.",
        "rain stopped at noon.",
    ] {
        assert_eq!(work.matches(words).count(), 1, "{work}");
    }
    assert_eq!(views[0].diary.materials.len(), 3);
    assert_eq!(
        c1.list_diaries(Some(s.project.clone()))
            .expect("list")
            .len(),
        1
    );
}

#[test]
fn project_roles_decide_who_writes_and_signs_and_a_signed_off_day_is_locked() {
    let (_d1, crew, u1) = phone("http://127.0.0.1:9", "field_rep");
    let (_d2, viewer, u2) = phone("http://127.0.0.1:9", "field_rep");
    let (_d3, outsider, _) = phone("http://127.0.0.1:9", "field_rep");
    let s = site("http://127.0.0.1:9", &[(u1, "crew"), (u2, "viewer")]);
    for p in [&crew, &viewer, &outsider] {
        hand(&s.sm, p, &s.project);
    }
    for p in [&viewer, &outsider] {
        let e = err(p.open_diary(s.project.clone(), s.site.clone(), DAY.into()));
        assert_eq!(e.code(), "forbidden", "{e:?}");
        assert!(e.message().contains("crew and site managers"), "{e:?}");
        assert!(p.list_diaries(None).expect("list").is_empty());
    }
    let id = crew
        .open_diary(s.project.clone(), s.site.clone(), DAY.into())
        .expect("open")
        .diary
        .id
        .to_string();
    crew.set_diary_weather(id.clone(), "sunny, light wind".into(), Some(8.5))
        .expect("weather");
    let e = err(crew.sign_off_diary(id.clone(), "done".into()));
    assert_eq!(e.code(), "forbidden", "{e:?}");
    hand(&crew, &s.sm, &id);
    let signed =
        s.sm.sign_off_diary(id.clone(), "All good".into())
            .expect("sign off");
    assert!(signed.locked);
    assert_eq!(signed.diary.weather, "sunny, light wind");
    let e = err(s.sm.set_diary_work(id.clone(), "late addition".into()));
    assert_eq!(e.code(), "diary_locked", "{e:?}");
    assert!(e.message().contains("was signed off"), "{e:?}");
    let e = err(s.sm.sign_off_diary(id.clone(), "again".into()));
    assert_eq!(e.code(), "already_signed_off", "{e:?}");
    hand(&s.sm, &crew, &id);
    let e = err(crew.add_diary_item(
        id.clone(),
        "delays".into(),
        "Crane down".into(),
        None,
        None,
        String::new(),
        None,
    ));
    assert_eq!(e.code(), "diary_locked", "{e:?}");
    assert!(crew.get_diary(id.clone()).expect("diary").locked);
    let e = err(crew.reopen_diary(id.clone(), "please".into()));
    assert_eq!(e.code(), "forbidden", "{e:?}");

    let reopened =
        s.sm.reopen_diary(id.clone(), "Crane hours missing".into())
            .expect("reopen");
    assert!(!reopened.locked);
    let log: Vec<(u64, DiaryAction)> = reopened
        .diary
        .signoffs
        .iter()
        .map(|e| (e.seq, e.action))
        .collect();
    assert_eq!(log, [(1, DiaryAction::SignOff), (2, DiaryAction::Reopen)]);
    hand(&s.sm, &crew, &id);
    let crane = crew
        .add_diary_item(
            id.clone(),
            "equipment".into(),
            "Crane".into(),
            Some(6.0),
            Some("h".into()),
            String::new(),
            None,
        )
        .expect("after the reopening");
    crew.update_diary_item(
        id.clone(),
        "equipment".into(),
        crane.clone(),
        "Crane, 50 t".into(),
        Some(6.5),
        Some("h".into()),
        "incl. setup".into(),
        None,
    )
    .expect("its author changes it");

    // Entries belong to their authors; site managers may change anyone's.
    let sm_item =
        s.sm.add_diary_item(
            id.clone(),
            "visitors".into(),
            "J. Weber, structural engineer".into(),
            None,
            None,
            String::new(),
            None,
        )
        .expect("visitor");
    hand(&s.sm, &crew, &id);
    hand(&crew, &s.sm, &id);
    let e = err(crew.remove_diary_item(id.clone(), "visitors".into(), sm_item.clone()));
    assert_eq!(e.code(), "forbidden", "{e:?}");
    let v =
        s.sm.remove_diary_item(id.clone(), "equipment".into(), crane)
            .expect("a site manager removes anyone's entry");
    assert!(v.diary.equipment.is_empty());
    assert_eq!(v.diary.visitors.len(), 1);
}

#[test]
fn the_customer_timeline_has_the_owner_history_visits_and_contacts_newest_first() {
    let (_d, rep, me) = phone("http://127.0.0.1:9", "manager");
    let c = rep
        .create_customer(NewCustomer {
            name: "Acme Ltd".into(),
            notes: Some("Gate 3.".into()),
            ..Default::default()
        })
        .expect("customer")
        .customer
        .id
        .to_string();
    let other = UserId::new();
    let set_owner = |u: UserId| {
        rep.edit_customer(
            c.clone(),
            vec![FieldEdit {
                field: "owner".into(),
                value: u.to_string(),
            }],
        )
        .expect("owner")
    };
    let third = UserId::new();
    set_owner(other);
    set_owner(third);
    rep.add_contact(
        c.clone(),
        NewContact {
            name: "Ms Li".into(),
            title: Some("Buyer".into()),
            ..Default::default()
        },
    )
    .expect("contact");
    rep.plan_visit(c.clone(), Some("2026-11-30".into()), "Quote".into())
        .expect("visit");
    let t = rep.customer_timeline(c.clone()).expect("timeline");
    let owners: Vec<String> = t
        .iter()
        .filter(|e| e.kind == "owner")
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(
        owners,
        [third.to_string(), other.to_string(), me.to_string()],
        "{t:#?}"
    );
    assert!(
        t.iter()
            .filter(|e| e.kind == "owner")
            .all(|e| e.at_ms.is_some() && e.by.is_some())
    );
    let kinds: Vec<&str> = t.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["contact", "note", "visit"] {
        assert!(kinds.contains(&kind), "{kind}: {t:#?}");
    }
    let visit = t.iter().find(|e| e.kind == "visit").expect("visit");
    assert_eq!(visit.day.as_deref(), Some("2026-11-30"));
    // The planned day is after every edit: it comes first.
    assert_eq!(t[0].kind, "visit", "{t:#?}");
    let dated: Vec<i64> = t.iter().filter_map(|e| e.at_ms).collect();
    assert!(dated.windows(2).all(|w| w[0] >= w[1]), "{t:#?}");
    assert_eq!(
        err(rep.customer_timeline(fieldsync_sync::DocId::new().to_string())).code(),
        "not_found"
    );
}

#[test]
fn bad_diary_input_is_refused_with_a_code_and_nothing_is_stored() {
    let (_d, crew, u) = phone("http://127.0.0.1:9", "field_rep");
    let s = site("http://127.0.0.1:9", &[(u, "crew")]);
    let e = err(crew.open_diary(s.project.clone(), s.site.clone(), DAY.into()));
    assert_eq!(e.code(), "unknown_project", "{e:?}");
    hand(&s.sm, &crew, &s.project);
    for (site, day, code) in [
        ("Nowhere", DAY, "unknown_site"),
        (s.site.as_str(), "2026-13-40", "invalid_date"),
        (s.site.as_str(), "yesterday", "invalid_date"),
    ] {
        let e = err(crew.open_diary(s.project.clone(), site.into(), day.into()));
        assert_eq!(e.code(), code, "{site} {day}: {e:?}");
    }
    assert!(crew.list_diaries(None).expect("list").is_empty());
    let id = crew
        .open_diary(s.project.clone(), s.site.clone(), DAY.into())
        .expect("open")
        .diary
        .id
        .to_string();
    let before = crew.get_diary(id.clone()).expect("diary");
    let add = |list: &str, text: &str, q: Option<f64>, sev: Option<&str>| {
        crew.add_diary_item(
            id.clone(),
            list.into(),
            text.into(),
            q,
            None,
            String::new(),
            sev.map(str::to_owned),
        )
    };
    assert_eq!(err(add("snacks", "Tea", None, None)).code(), "unknown_list");
    assert_eq!(
        err(add("incidents", "Cut finger", None, None)).code(),
        "missing_field"
    );
    assert_eq!(
        err(add("incidents", "Cut finger", None, Some("ouch"))).code(),
        "invalid_incident_severity"
    );
    assert_eq!(
        err(add("materials", "Sand", Some(-1.0), None)).code(),
        "invalid_quantity"
    );
    assert_eq!(
        err(add("materials", "", None, None)).code(),
        "missing_field"
    );
    assert_eq!(
        err(crew.set_diary_weather(id.clone(), "hot".into(), Some(99.0))).code(),
        "invalid_temperature"
    );
    assert_eq!(
        err(crew.remove_diary_item(id.clone(), "materials".into(), "nope".into())).code(),
        "not_found"
    );
    assert_eq!(crew.get_diary(id.clone()).expect("diary"), before);
    add("incidents", "Cut finger", None, Some("first_aid")).expect("a good incident");
}

/// A fake server that refuses every pushed diary change with `diary_locked`, answering with
/// `server_doc` as its version.
fn refusing_server(server_doc: Vec<u8>, heads: Vec<String>) -> FakeServer {
    FakeServer::start(move |req| {
        let path = req.path.split('?').next().unwrap_or_default().to_owned();
        match path.as_str() {
            "/v1/sync/pull" => (200, fake_server::empty_pull(T0)),
            "/v1/sync/push" => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                let results = body["docs"]
                    .as_array()
                    .map(|docs| {
                        docs.iter()
                            .filter_map(|d| d["doc_id"].as_str()?.parse().ok())
                            .map(|doc_id| PushResult::Rejected {
                                doc_id,
                                error: Rejection::new(
                                    "diary_locked",
                                    "The diary of site depot on 2026-11-24 was signed off; a site manager must reopen it before it can change.",
                                ),
                                heads: heads.clone(),
                                doc: Some(B64(server_doc.clone())),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let batch_id = body["batch_id"]
                    .as_str()
                    .and_then(|b| b.parse().ok())
                    .unwrap_or_default();
                let resp = PushResponse {
                    v: 1,
                    batch_id,
                    results,
                };
                (200, serde_json::to_string(&resp).expect("json"))
            }
            _ => (404, fake_server::error("not_found", "No such route.")),
        }
    })
}

#[test]
fn a_refused_offline_edit_resets_the_diary_and_keeps_the_words_to_write_again() {
    let (_d, crew, u) = phone("http://127.0.0.1:9", "field_rep");
    let s = site("http://127.0.0.1:9", &[(u, "crew")]);
    hand(&s.sm, &crew, &s.project);
    let id =
        s.sm.open_diary(s.project.clone(), s.site.clone(), DAY.into())
            .expect("open")
            .diary
            .id
            .to_string();
    s.sm.set_diary_work(id.clone(), "Formwork east wall.".into())
        .expect("work");
    hand(&s.sm, &crew, &id);
    // An item of the crew's, which the site manager then corrects: the crew phone does not
    // hear of it before its own edits are refused, and must not take its older copy for an
    // edit of the person's.
    let sand = crew
        .add_diary_item(
            id.clone(),
            "materials".into(),
            "Sand".into(),
            Some(2.0),
            Some("t".into()),
            String::new(),
            None,
        )
        .expect("sand");
    hand(&crew, &s.sm, &id);
    hand(&s.sm, &crew, &id);
    assert!(!crew.get_diary(id.clone()).expect("diary").pending);
    s.sm.update_diary_item(
        id.clone(),
        "materials".into(),
        sand,
        "Sand, washed".into(),
        Some(2.0),
        Some("t".into()),
        "wet".into(),
        None,
    )
    .expect("corrected");
    // Offline on the crew phone...
    crew.set_diary_work(
        id.clone(),
        "Formwork east wall.\nRebar delivered, 2.5 t.".into(),
    )
    .expect("work");
    let item = crew
        .add_diary_item(
            id.clone(),
            "delays".into(),
            "Truck 2 h late".into(),
            None,
            None,
            String::new(),
            None,
        )
        .expect("delay");
    // ...while the site manager signs off: that is the server's version.
    let locked =
        s.sm.sign_off_diary(id.clone(), "Done".into())
            .expect("sign");
    let (server_doc, heads) = {
        let inner = s.sm.lock();
        let row = store::doc_get(&inner.store.conn, &id)
            .expect("read")
            .expect("held");
        let doc = crate::edit::load_doc(&row.bytes, inner.device_id).expect("doc");
        (row.bytes, crate::edit::doc_heads(&doc))
    };
    let server = refusing_server(server_doc, heads);
    crew.lock()
        .store
        .conn
        .execute("UPDATE session SET server_url = ?1", [server.url.as_str()])
        .expect("server url");

    let report = crew.sync().expect("sync");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].code, "diary_locked");
    let now = crew.get_diary(id.clone()).expect("diary");
    assert_eq!(
        now.diary, locked.diary,
        "the phone returned to the server's version"
    );
    assert!(now.locked && !now.pending);
    assert_eq!(now.diary.work, "Formwork east wall.");

    // The words are kept with the rejection, in the status too.
    let rejections = crew.diary_rejections(id.clone()).expect("rejections");
    assert_eq!(rejections.len(), 1);
    let kept = &rejections[0].kept;
    assert_eq!(kept.work, "Rebar delivered, 2.5 t.");
    assert_eq!(kept.items.len(), 1);
    assert_eq!(
        (kept.items[0].list.as_str(), kept.items[0].item.id.as_str()),
        ("delays", item.as_str())
    );
    let status = crew.status().expect("status");
    assert!(
        status.last_rejections[0]
            .kept
            .as_deref()
            .is_some_and(|k| k.contains("Rebar delivered")),
        "{status:?}"
    );
    // Writing it again waits for the reopening.
    let e = err(crew.restore_diary_kept(id.clone()));
    assert_eq!(e.code(), "diary_locked", "{e:?}");
    s.sm.reopen_diary(id.clone(), "Add the rebar".into())
        .expect("reopen");
    hand(&s.sm, &crew, &id);
    let restored = crew.restore_diary_kept(id.clone()).expect("restore");
    assert_eq!(
        restored.diary.work,
        "Formwork east wall.\nRebar delivered, 2.5 t."
    );
    assert_eq!(restored.diary.delays.len(), 1);
    assert!(restored.pending);
}

#[test]
fn a_version_5_database_gains_kept_rejections() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(&dir));
    let path = dir.path().join("device").join("fieldsync.db");
    {
        let c = rusqlite::Connection::open(&path).expect("db");
        c.execute_batch(
            "ALTER TABLE rejections DROP COLUMN kept; PRAGMA user_version = 5;
             INSERT INTO rejections (doc_id, code, message, at_ms) VALUES ('d', 'forbidden', 'No.', 1);",
        )
        .expect("downgrade");
    }
    let client = open(&dir);
    let status = client.status().expect("status");
    assert_eq!(status.last_rejections.len(), 1);
    assert_eq!(status.last_rejections[0].kept, None);
}
