//! The site diary: one document per site and day however many phones open it offline, work
//! text that merges character by character, and the sign-off lock the server enforces.

use automerge::{ActorId, Automerge};
use fieldsync_sync::access::Directory;
use fieldsync_sync::merge::{Incoming, Outcome, apply_incoming};
use fieldsync_sync::record::diary::DIARY_LISTS;
use fieldsync_sync::rules::check_diary;
use fieldsync_sync::*;
use std::collections::HashMap;

const T: i64 = 1_795_000_000_000;

struct Dir {
    roles: HashMap<UserId, Role>,
    members: HashMap<DocId, Vec<(UserId, ProjectRole)>>,
}

impl Directory for Dir {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.roles.get(&user).copied()
    }
    fn manager_of(&self, _user: UserId) -> Option<UserId> {
        None
    }
    fn project_members(&self, project: DocId) -> Vec<UserId> {
        self.members
            .get(&project)
            .map(|m| m.iter().map(|(u, _)| *u).collect())
            .unwrap_or_default()
    }
    fn project_role(&self, project: DocId, user: UserId) -> Option<ProjectRole> {
        self.members
            .get(&project)?
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, r)| *r)
    }
}

struct World {
    tenant: TenantId,
    project: DocId,
    crew: [UserId; 2],
    site_manager: UserId,
    viewer: UserId,
    outsider: UserId,
    admin: UserId,
    dir: Dir,
}

fn world() -> World {
    let [c1, c2, sm, viewer, outsider, admin] = [(); 6].map(|()| UserId::new());
    let project = DocId::new();
    let roles = HashMap::from([
        (c1, Role::FieldRep),
        (c2, Role::FieldRep),
        (sm, Role::SiteManager),
        (viewer, Role::FieldRep),
        (outsider, Role::SiteManager),
        (admin, Role::Admin),
    ]);
    let members = HashMap::from([(
        project,
        vec![
            (c1, ProjectRole::Crew),
            (c2, ProjectRole::Crew),
            (sm, ProjectRole::SiteManager),
            (viewer, ProjectRole::Viewer),
        ],
    )]);
    World {
        tenant: TenantId::new(),
        project,
        crew: [c1, c2],
        site_manager: sm,
        viewer,
        outsider,
        admin,
        dir: Dir { roles, members },
    }
}

impl World {
    fn caller(&self, user: UserId) -> Caller {
        Caller {
            tenant: self.tenant,
            user,
            role: self.dir.roles[&user],
        }
    }
}

/// A phone's copy of the day: the shared genesis plus its own edits under its own actor.
fn open_day(w: &World, actor: u8) -> Automerge {
    let mut doc = Diary::genesis(w.project, "depot", "2026-11-18").expect("genesis");
    doc.set_actor(ActorId::from(vec![actor; 16]));
    doc
}

fn read(doc: &Automerge) -> Diary {
    match Record::read(doc).expect("readable").0 {
        Record::Diary(d) => d,
        other => panic!("not a diary: {other:?}"),
    }
}

fn edit(doc: &mut Automerge, change: impl FnOnce(&mut Diary)) {
    let mut d = read(doc);
    change(&mut d);
    let mut tx = doc.transaction();
    Record::Diary(d).write(&mut tx).expect("write");
    tx.commit();
}

fn all_changes(doc: &Automerge) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn item(by: UserId, id: &str, text: &str) -> DiaryItem {
    DiaryItem {
        id: id.into(),
        by,
        at_ms: T,
        text: text.into(),
        quantity: None,
        unit: None,
        note: String::new(),
        severity: None,
    }
}

/// Pushes a phone's whole document to a "server" holding `stored`; the new stored bytes, or
/// the rejection.
fn push(
    w: &World,
    stored: Option<&[u8]>,
    doc: &Automerge,
    by: UserId,
) -> Result<Vec<u8>, Rejection> {
    let d = read(doc);
    let inc = Incoming {
        doc_id: d.id,
        kind: RecordKind::Diary,
        changes: all_changes(doc),
    };
    match apply_incoming(stored, &inc, &w.caller(by), &w.dir) {
        Outcome::Accepted(a) => {
            if a.created {
                let m = Automerge::load(&a.snapshot).expect("load");
                Ok(m.save())
            } else if a.new_changes.is_empty() {
                Ok(stored.expect("stored").to_vec())
            } else {
                Ok(a.snapshot)
            }
        }
        Outcome::Rejected { error, .. } => Err(error),
        Outcome::MissingDeps { missing, .. } => panic!("missing deps {missing:?}"),
    }
}

#[test]
fn every_phone_makes_the_same_id_and_first_change() {
    let project = DocId::new();
    let a = Diary::genesis(project, "depot", "2026-11-18").expect("genesis");
    let b = Diary::genesis(project, "depot", "2026-11-18").expect("genesis");
    assert_eq!(a.get_heads(), b.get_heads());
    assert_eq!(
        Diary::doc_id_for(project, "depot", "2026-11-18"),
        read(&a).id
    );
    // Another day, site or project is another diary.
    for (p, s, d) in [
        (project, "depot", "2026-11-19"),
        (project, "yard", "2026-11-18"),
        (DocId::new(), "depot", "2026-11-18"),
    ] {
        assert_ne!(Diary::doc_id_for(p, s, d), read(&a).id);
        let other = Diary::genesis(p, s, d).expect("genesis");
        assert_ne!(other.get_heads(), a.get_heads());
    }
    let empty = read(&a);
    assert_eq!(empty, Diary::new(project, "depot", "2026-11-18"));
    assert!(!empty.is_locked());
}

#[test]
fn three_phones_writing_the_same_paragraph_offline_all_keep_their_words() {
    let w = world();
    let base = "Poured the east wall footing.";
    let mut first = open_day(&w, 1);
    edit(&mut first, |d| d.work = base.into());
    // Everyone has synced the first version, then goes offline.
    let mut phones: Vec<Automerge> = (2..=4)
        .map(|actor| {
            let mut p = open_day(&w, actor);
            p.merge(&mut first.clone()).expect("merge");
            p
        })
        .collect();
    let inserts = [
        "Poured the east wall footing, 14 m3.",
        "Poured the east wall footing. Rebar inspected by J. Weber.",
        "Crew: poured the east wall footing.",
    ];
    for (p, text) in phones.iter_mut().zip(inserts) {
        edit(p, |d| d.work = text.into());
    }
    // Each adds a material of its own, and two add the same person to the crew.
    let [a, b] = w.crew;
    edit(&mut phones[0], |d| {
        d.materials.push(item(a, "m-a", "Concrete C30/37"))
    });
    edit(&mut phones[1], |d| {
        d.materials.push(item(b, "m-b", "Rebar 12 mm"))
    });
    for (i, by) in [(0, a), (1, b)] {
        edit(&mut phones[i], |d| {
            d.crew.push(CrewEntry {
                key: a.as_string(),
                user: Some(a),
                name: "Ana".into(),
                present: true,
                hours: Some(8.0),
                note: String::new(),
                by,
            })
        });
    }
    // Merged in every order, the phones agree, and nobody's words are lost.
    let mut merged: Vec<Diary> = Vec::new();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut m = first.clone();
        for i in order {
            m.merge(&mut phones[i].clone()).expect("merge");
        }
        merged.push(read(&m));
    }
    assert!(merged.windows(2).all(|p| p[0] == p[1]), "{merged:#?}");
    let d = &merged[0];
    for words in [
        "14 m3",
        "Rebar inspected by J. Weber",
        "Crew:",
        "east wall footing",
    ] {
        assert!(d.work.contains(words), "{words:?} lost from {:?}", d.work);
    }
    assert_eq!(
        d.work.matches("east wall footing").count(),
        1,
        "{:?}",
        d.work
    );
    assert_eq!(d.materials.len(), 2);
    assert_eq!(d.crew.len(), 1, "one entry for one person: {:?}", d.crew);
    check_diary(d).expect("the merged day is a valid diary");
}

#[test]
fn the_first_push_must_start_from_the_shared_genesis() {
    let w = world();
    let [a, _] = w.crew;
    // A diary written from scratch (not from the genesis) would have rival containers.
    let mut d = Diary::new(w.project, "depot", "2026-11-18");
    d.work = "Scaffolding up.".into();
    let doc = Record::Diary(d)
        .to_new_doc(ActorId::from(vec![9; 16]))
        .expect("doc");
    let err = push(&w, None, &doc, a).expect_err("refused");
    assert_eq!(err.code, "diary_not_from_genesis");

    // A diary whose id is not its day's.
    let mut doc = open_day(&w, 1);
    let mut tx = doc.transaction();
    automerge::transaction::Transactable::put(
        &mut tx,
        automerge::ROOT,
        "id",
        DocId::new().as_string(),
    )
    .expect("put");
    tx.commit();
    let d = read(&doc);
    let inc = Incoming {
        doc_id: d.id,
        kind: RecordKind::Diary,
        changes: all_changes(&doc),
    };
    match apply_incoming(None, &inc, &w.caller(a), &w.dir) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "invalid_id"),
        other => panic!("{other:?}"),
    }

    // From the genesis, it is accepted.
    let mut doc = open_day(&w, 1);
    edit(&mut doc, |d| d.work = "Scaffolding up.".into());
    push(&w, None, &doc, a).expect("accepted");
}

#[test]
fn only_the_crew_and_site_managers_write_and_only_site_managers_sign() {
    let w = world();
    let [a, _] = w.crew;
    let mut doc = open_day(&w, 1);
    edit(&mut doc, |d| d.weather = "Sunny, 4 °C".into());
    for (who, ok) in [
        (a, true),
        (w.site_manager, true),
        (w.admin, true),
        (w.viewer, false),
        (w.outsider, false),
    ] {
        let r = push(&w, None, &doc, who);
        assert_eq!(r.is_ok(), ok, "{who} {r:?}");
        if let Err(e) = r {
            assert_eq!(e.code, "forbidden");
        }
    }
    // A crew member cannot sign off.
    let stored = push(&w, None, &doc, a).expect("stored");
    let mut crew_phone = doc.clone();
    edit(&mut crew_phone, |d| {
        d.signoffs.push(SignEvent {
            id: "s1".into(),
            seq: 1,
            action: DiaryAction::SignOff,
            by: a,
            at_ms: T,
            note: String::new(),
        })
    });
    let err = push(&w, Some(&stored), &crew_phone, a).expect_err("refused");
    assert_eq!(err.code, "forbidden");
    assert!(err.message.contains("site managers"), "{}", err.message);
}

#[test]
fn a_signed_off_day_refuses_changes_until_a_site_manager_reopens_it() {
    let w = world();
    let [a, b] = w.crew;
    let mut sm_phone = open_day(&w, 1);
    edit(&mut sm_phone, |d| d.work = "Formwork east wall.".into());
    let stored = push(&w, None, &sm_phone, w.site_manager).expect("created");

    // The crew member's phone syncs, then goes offline and keeps writing.
    let mut crew_phone = open_day(&w, 2);
    crew_phone
        .merge(&mut Automerge::load(&stored).expect("load"))
        .expect("merge");
    edit(&mut crew_phone, |d| {
        d.work.push_str(" Stripped formwork at 16:00.");
        d.delays.push(item(a, "d1", "Crane down 2 h"));
    });

    // Meanwhile the site manager signs the day off.
    edit(&mut sm_phone, |d| {
        d.signoffs.push(SignEvent {
            id: "s1".into(),
            seq: 1,
            action: DiaryAction::SignOff,
            by: w.site_manager,
            at_ms: T,
            note: "Checked with the foreman".into(),
        })
    });
    let stored = push(&w, Some(&stored), &sm_phone, w.site_manager).expect("signed off");
    assert!(read(&Automerge::load(&stored).expect("load")).is_locked());

    // The crew phone syncs after the sign-off: refused, with the reason.
    let err = push(&w, Some(&stored), &crew_phone, a).expect_err("locked");
    assert_eq!(err.code, "diary_locked");
    assert!(
        err.message.contains("depot") && err.message.contains("2026-11-18"),
        "{}",
        err.message
    );
    // Even a site manager edits a locked day only by reopening it first.
    let mut sm_edit = Automerge::load(&stored).expect("load");
    sm_edit.set_actor(ActorId::from(vec![1; 16]));
    edit(&mut sm_edit, |d| d.weather = "Rain".into());
    assert_eq!(
        push(&w, Some(&stored), &sm_edit, w.site_manager)
            .expect_err("locked")
            .code,
        "diary_locked"
    );
    // Signing off twice is refused, and so is reopening by the crew.
    let mut twice = Automerge::load(&stored).expect("load");
    twice.set_actor(ActorId::from(vec![1; 16]));
    edit(&mut twice, |d| {
        d.signoffs.push(SignEvent {
            id: "s2".into(),
            seq: 2,
            action: DiaryAction::SignOff,
            by: w.site_manager,
            at_ms: T + 1,
            note: String::new(),
        })
    });
    assert_eq!(
        push(&w, Some(&stored), &twice, w.site_manager)
            .expect_err("twice")
            .code,
        "already_signed_off"
    );
    let reopen = |by: UserId, actor: u8| {
        let mut d = Automerge::load(&stored).expect("load");
        d.set_actor(ActorId::from(vec![actor; 16]));
        edit(&mut d, |d| {
            d.signoffs.push(SignEvent {
                id: format!("r-{actor}"),
                seq: 2,
                action: DiaryAction::Reopen,
                by,
                at_ms: T + 60_000,
                note: "Crane delay missing".into(),
            })
        });
        d
    };
    assert_eq!(
        push(&w, Some(&stored), &reopen(b, 3), b)
            .expect_err("crew")
            .code,
        "forbidden"
    );
    // The site manager reopens: both steps stay in the log, and the crew phone's text, written
    // again on top of the reopened day, is accepted.
    let reopened = push(
        &w,
        Some(&stored),
        &reopen(w.site_manager, 1),
        w.site_manager,
    )
    .expect("reopened");
    let day = read(&Automerge::load(&reopened).expect("load"));
    assert!(!day.is_locked());
    assert_eq!(
        day.signoffs
            .iter()
            .map(|e| (e.seq, e.action))
            .collect::<Vec<_>>(),
        vec![(1, DiaryAction::SignOff), (2, DiaryAction::Reopen)]
    );
    let mut again = Automerge::load(&reopened).expect("load");
    again.set_actor(ActorId::from(vec![2; 16]));
    edit(&mut again, |d| {
        d.work.push_str(" Stripped formwork at 16:00.");
        d.delays.push(item(a, "d1", "Crane down 2 h"));
    });
    let after = push(&w, Some(&reopened), &again, a).expect("accepted after reopening");
    let day = read(&Automerge::load(&after).expect("load"));
    assert!(
        day.work.ends_with("Stripped formwork at 16:00."),
        "{}",
        day.work
    );
    // Rewriting the log is refused.
    let mut rewrite = Automerge::load(&after).expect("load");
    rewrite.set_actor(ActorId::from(vec![1; 16]));
    edit(&mut rewrite, |d| d.signoffs[0].note = "edited".into());
    assert_eq!(
        push(&w, Some(&after), &rewrite, w.site_manager)
            .expect_err("log")
            .code,
        "immutable_field"
    );
}

#[test]
fn entries_belong_to_their_authors() {
    let w = world();
    let [a, b] = w.crew;
    let mut doc = open_day(&w, 1);
    edit(&mut doc, |d| d.visitors.push(item(a, "v1", "J. Weber")));
    let stored = push(&w, None, &doc, a).expect("created");
    // b cannot add an entry in a's name, nor change or remove a's.
    for change in [
        Box::new(|d: &mut Diary| d.visitors.push(item(a, "v2", "K. Braun")))
            as Box<dyn Fn(&mut Diary)>,
        Box::new(|d: &mut Diary| d.visitors[0].text = "Someone else".into()),
        Box::new(|d: &mut Diary| d.visitors.clear()),
    ] {
        let mut p = Automerge::load(&stored).expect("load");
        p.set_actor(ActorId::from(vec![2; 16]));
        edit(&mut p, |d| change(d));
        assert_eq!(
            push(&w, Some(&stored), &p, b).expect_err("b").code,
            "forbidden"
        );
    }
    // The site manager tidies it up.
    let mut p = Automerge::load(&stored).expect("load");
    p.set_actor(ActorId::from(vec![3; 16]));
    edit(&mut p, |d| {
        d.visitors[0].text = "J. Weber, structural engineer".into()
    });
    push(&w, Some(&stored), &p, w.site_manager).expect("site manager");
}

#[test]
fn content_checks_name_the_field() {
    let w = world();
    let [a, _] = w.crew;
    let base = Diary::new(w.project, "depot", "2026-11-18");
    type Change = Box<dyn Fn(&mut Diary)>;
    let cases: Vec<(&str, Change)> = vec![
        ("invalid_date", Box::new(|d| d.day = "2026-02-30".into())),
        (
            "invalid_temperature",
            Box::new(|d| d.temperature_c = Some(85.0)),
        ),
        (
            "missing_field",
            Box::new(move |d| d.incidents.push(item(a, "i1", "Slipped on ice"))),
        ),
        (
            "invalid_field",
            Box::new(move |d| {
                let mut i = item(a, "m1", "Sand");
                i.severity = Some(IncidentSeverity::Injury);
                d.materials.push(i)
            }),
        ),
        (
            "invalid_quantity",
            Box::new(move |d| {
                let mut i = item(a, "m1", "Sand");
                i.quantity = Some(-2.0);
                d.materials.push(i)
            }),
        ),
        (
            "invalid_hours",
            Box::new(move |d| {
                d.crew.push(CrewEntry {
                    key: a.as_string(),
                    user: Some(a),
                    name: "Ana".into(),
                    present: true,
                    hours: Some(30.0),
                    note: String::new(),
                    by: a,
                })
            }),
        ),
        (
            "invalid_crew_key",
            Box::new(move |d| {
                d.crew.push(CrewEntry {
                    key: "ana".into(),
                    user: Some(a),
                    name: "Ana".into(),
                    present: true,
                    hours: None,
                    note: String::new(),
                    by: a,
                })
            }),
        ),
        (
            "missing_field",
            Box::new(move |d| d.delays.push(item(a, "d1", " "))),
        ),
    ];
    for (code, change) in cases {
        let mut d = base.clone();
        change(&mut d);
        let e = check_diary(&d).expect_err(code);
        assert_eq!(e.code, code, "{}", e.message);
    }
    assert_eq!(DIARY_LISTS.len(), 5);
}
