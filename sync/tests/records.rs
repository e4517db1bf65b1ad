//! Round trips of the typed records through Automerge documents, the validation rules, and the
//! merge core, including a property test that offline edits on three phones always converge.

use automerge::{ActorId, Automerge, ReadDoc, transaction::Transactable};
use fieldsync_sync::access::Directory;
use fieldsync_sync::merge::{Incoming, Outcome, apply_incoming};
use fieldsync_sync::*;
use std::collections::HashMap;

struct Dir(HashMap<UserId, (Role, Option<UserId>)>);

impl Directory for Dir {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.0.get(&user).map(|u| u.0)
    }
    fn manager_of(&self, user: UserId) -> Option<UserId> {
        self.0.get(&user).and_then(|u| u.1)
    }
}

struct World {
    tenant: TenantId,
    admin: UserId,
    manager: UserId,
    rep: UserId,
    rep2: UserId,
    dir: Dir,
}

fn world() -> World {
    let (admin, manager, rep, rep2) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
    let mut m = HashMap::new();
    m.insert(admin, (Role::Admin, None));
    m.insert(manager, (Role::Manager, None));
    m.insert(rep, (Role::FieldRep, Some(manager)));
    m.insert(rep2, (Role::FieldRep, None));
    World {
        tenant: TenantId::new(),
        admin,
        manager,
        rep,
        rep2,
        dir: Dir(m),
    }
}

impl World {
    fn caller(&self, user: UserId) -> Caller {
        Caller {
            tenant: self.tenant,
            user,
            role: self.dir.0[&user].0,
        }
    }
}

fn full_customer(owner: UserId) -> Customer {
    let mut c = Customer::new("Acme Ltd", owner);
    c.customer_kind = CustomerKind::Company;
    c.phone = Some("+86 138 0000 0001".into());
    c.email = Some("buyer@acme.example".into());
    c.address = Some("1 Renmin Road, Chengdu".into());
    c.location = Some(GeoPoint {
        lat: 30.65,
        lon: 104.06,
    });
    c.tier = Some(Tier::Gold);
    c.lifecycle = Lifecycle::Active;
    c.contacts = vec![Contact {
        id: "c1".into(),
        name: "Li Wei".into(),
        title: Some("Purchasing".into()),
        phone: Some("+86 139 1111 2222".into()),
        email: None,
    }];
    c.tags = vec!["hvac".into(), "key-account".into()];
    c.notes = "Prefers calls in the morning.".into();
    c
}

fn full_project(creator: UserId, member: UserId) -> Project {
    let mut p = Project::new("Tower B fit-out", creator);
    p.code = Some("PRJ-042".into());
    p.status = ProjectStatus::Active;
    p.sites = vec![
        Site {
            id: "s1".into(),
            name: "Tower B".into(),
            address: Some("8 Tianfu Ave".into()),
            timezone: "Asia/Shanghai".into(),
            geofence: Some(Geofence::Circle {
                center: GeoPoint {
                    lat: 30.57,
                    lon: 104.06,
                },
                radius_m: 250.0,
            }),
        },
        Site {
            id: "s2".into(),
            name: "Berlin yard".into(),
            address: None,
            timezone: "Europe/Berlin".into(),
            geofence: Some(Geofence::Polygon {
                points: vec![
                    GeoPoint {
                        lat: 52.50,
                        lon: 13.40,
                    },
                    GeoPoint {
                        lat: 52.50,
                        lon: 13.41,
                    },
                    GeoPoint {
                        lat: 52.51,
                        lon: 13.41,
                    },
                    GeoPoint {
                        lat: 52.51,
                        lon: 13.40,
                    },
                ],
            }),
        },
    ];
    p.members = vec![Member {
        user: member,
        role: ProjectRole::SiteManager,
    }];
    p.milestones = vec![Milestone {
        id: "m1".into(),
        name: "Handover".into(),
        due: Some("2027-02-28".into()),
        status: MilestoneStatus::Pending,
    }];
    p
}

fn actor() -> ActorId {
    ActorId::random()
}

#[test]
fn customer_round_trips_through_a_document() {
    let c = full_customer(UserId::new());
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let loaded = Automerge::load(&doc.save()).expect("load");
    let (back, conflicts) = Record::read(&loaded).expect("read");
    assert_eq!(back, Record::Customer(c));
    assert!(conflicts.is_empty());
}

#[test]
fn project_round_trips_through_a_document() {
    let p = full_project(UserId::new(), UserId::new());
    let doc = Record::Project(p.clone())
        .to_new_doc(actor())
        .expect("write");
    let (back, _) = Record::read(&Automerge::load(&doc.save()).expect("load")).expect("read");
    assert_eq!(back, Record::Project(p));
}

#[test]
fn rewriting_an_unchanged_record_adds_no_operations() {
    let rec = Record::Customer(full_customer(UserId::new()));
    let mut doc = rec.to_new_doc(actor()).expect("write");
    let heads = doc.get_heads();
    let mut tx = doc.transaction();
    rec.write(&mut tx).expect("write");
    tx.commit();
    assert_eq!(
        doc.get_heads(),
        heads,
        "an empty transaction must not create a change"
    );
}

#[test]
fn newer_schema_version_is_refused() {
    let mut doc = Record::Customer(full_customer(UserId::new()))
        .to_new_doc(actor())
        .expect("write");
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, "schema", 99u64).expect("put");
    tx.commit();
    assert_eq!(
        Record::read(&doc).map_err(|e| e.code),
        Err("unsupported_schema_version".to_string())
    );
}

#[test]
fn wrong_field_type_names_the_field() {
    let mut doc = Record::Customer(full_customer(UserId::new()))
        .to_new_doc(actor())
        .expect("write");
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, "lat", "north").expect("put");
    tx.commit();
    let err = Record::read(&doc).expect_err("must fail");
    assert_eq!(err.code, "invalid_field_type");
    assert!(err.message.contains("'lat'"), "{}", err.message);
}

#[test]
fn concurrent_scalar_edits_are_shown_as_conflicts() {
    let c = full_customer(UserId::new());
    let base = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let mut a = base.fork().with_actor(actor());
    let mut b = base.fork().with_actor(actor());
    for (doc, phone) in [(&mut a, "+1 555 0101"), (&mut b, "+1 555 0202")] {
        let mut edited = c.clone();
        edited.phone = Some(phone.into());
        let mut tx = doc.transaction();
        Record::Customer(edited).write(&mut tx).expect("write");
        tx.commit();
    }
    a.merge(&mut b).expect("merge");
    let (_, conflicts) = Record::read(&a).expect("read");
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, "phone");
    let mut values = conflicts[0].values.clone();
    values.sort();
    assert_eq!(
        values,
        vec!["+1 555 0101".to_string(), "+1 555 0202".to_string()]
    );
}

#[test]
fn conflicts_inside_nested_objects_name_their_path() {
    let c = full_customer(UserId::new());
    let base = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let mut a = base.fork().with_actor(actor());
    let mut b = base.fork().with_actor(actor());
    for (doc, phone) in [(&mut a, "+1 555 0303"), (&mut b, "+1 555 0404")] {
        let mut edited = c.clone();
        edited.contacts[0].phone = Some(phone.into());
        let mut tx = doc.transaction();
        Record::Customer(edited).write(&mut tx).expect("write");
        tx.commit();
    }
    a.merge(&mut b).expect("merge");
    let (_, conflicts) = Record::read(&a).expect("read");
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].field, "contacts.c1.phone");
    assert_eq!(conflicts[0].values.len(), 2);
}

#[test]
fn concurrent_notes_edits_merge_text_wise() {
    let mut c = full_customer(UserId::new());
    c.notes = "Call before visiting.".into();
    let base = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let mut a = base.fork().with_actor(actor());
    let mut b = base.fork().with_actor(actor());
    let mut ca = c.clone();
    ca.notes = "Urgent: Call before visiting.".into();
    let mut cb = c.clone();
    cb.notes = "Call before visiting. Gate code 4711.".into();
    let mut tx = a.transaction();
    Record::Customer(ca).write(&mut tx).expect("write");
    tx.commit();
    let mut tx = b.transaction();
    Record::Customer(cb).write(&mut tx).expect("write");
    tx.commit();
    a.merge(&mut b).expect("merge");
    let (Record::Customer(m), _) = Record::read(&a).expect("read") else {
        panic!("kind")
    };
    assert_eq!(m.notes, "Urgent: Call before visiting. Gate code 4711.");
}

fn changes_of(doc: &Automerge, since: &[automerge::ChangeHash]) -> Vec<Vec<u8>> {
    doc.get_changes(since)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn push(
    w: &World,
    stored: Option<&[u8]>,
    user: UserId,
    doc: &Automerge,
    since: &[automerge::ChangeHash],
    id: DocId,
    kind: RecordKind,
) -> Outcome {
    let inc = Incoming {
        doc_id: id,
        kind,
        changes: changes_of(doc, since),
    };
    apply_incoming(stored, &inc, &w.caller(user), &w.dir)
}

#[test]
fn rep_creates_own_customer_and_cannot_assign_it_elsewhere() {
    let w = world();
    let c = Customer::new("Own", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    assert!(matches!(
        push(&w, None, w.rep, &doc, &[], c.id, RecordKind::Customer),
        Outcome::Accepted(_)
    ));

    let mut other = Customer::new("Someone else's", w.rep);
    other.owner = w.rep2;
    let doc = Record::Customer(other.clone())
        .to_new_doc(actor())
        .expect("write");
    match push(&w, None, w.rep, &doc, &[], other.id, RecordKind::Customer) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "owner_not_allowed"),
        o => panic!("expected rejection, got {o:?}"),
    }
}

#[test]
fn invalid_latitude_is_rejected_and_server_version_returned() {
    let w = world();
    let c = Customer::new("Acme", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let Outcome::Accepted(acc) = push(&w, None, w.rep, &doc, &[], c.id, RecordKind::Customer)
    else {
        panic!("accept")
    };

    let mut phone = Automerge::load(&acc.snapshot)
        .expect("load")
        .with_actor(actor());
    let heads = phone.get_heads();
    let mut bad = c.clone();
    bad.location = Some(GeoPoint {
        lat: 91.0,
        lon: 10.0,
    });
    let mut tx = phone.transaction();
    Record::Customer(bad).write(&mut tx).expect("write");
    tx.commit();
    match push(
        &w,
        Some(&acc.snapshot),
        w.rep,
        &phone,
        &heads,
        c.id,
        RecordKind::Customer,
    ) {
        Outcome::Rejected {
            error,
            heads: server_heads,
            doc,
        } => {
            assert_eq!(error.code, "invalid_latitude");
            assert_eq!(server_heads, acc.heads);
            assert!(doc.is_some());
        }
        o => panic!("expected rejection, got {o:?}"),
    }
}

#[test]
fn another_reps_customer_is_invisible_and_unwritable() {
    let w = world();
    let c = Customer::new("Rep one's", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let Outcome::Accepted(acc) = push(&w, None, w.rep, &doc, &[], c.id, RecordKind::Customer)
    else {
        panic!("accept")
    };
    let mut phone = Automerge::load(&acc.snapshot)
        .expect("load")
        .with_actor(actor());
    let heads = phone.get_heads();
    let mut edit = c.clone();
    edit.name = "Stolen".into();
    let mut tx = phone.transaction();
    Record::Customer(edit).write(&mut tx).expect("write");
    tx.commit();
    match push(
        &w,
        Some(&acc.snapshot),
        w.rep2,
        &phone,
        &heads,
        c.id,
        RecordKind::Customer,
    ) {
        Outcome::Rejected { error, doc, heads } => {
            assert_eq!(error.code, "forbidden");
            assert!(
                doc.is_none() && heads.is_empty(),
                "nothing of the record may leak"
            );
        }
        o => panic!("expected rejection, got {o:?}"),
    }
    // The rep's manager may edit it.
    assert!(matches!(
        push(
            &w,
            Some(&acc.snapshot),
            w.manager,
            &phone,
            &heads,
            c.id,
            RecordKind::Customer
        ),
        Outcome::Accepted(_)
    ));
}

#[test]
fn changes_with_unknown_dependencies_are_reported_missing() {
    let w = world();
    let c = Customer::new("Acme", w.rep);
    let mut doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let first = doc.get_heads();
    let mut e = c.clone();
    e.name = "Acme 2".into();
    let mut tx = doc.transaction();
    Record::Customer(e).write(&mut tx).expect("write");
    tx.commit();
    // Send only the second change to a server that has nothing.
    match push(&w, None, w.rep, &doc, &first, c.id, RecordKind::Customer) {
        Outcome::MissingDeps { missing, heads } => {
            assert_eq!(missing, first);
            assert!(heads.is_empty());
        }
        o => panic!("expected missing deps, got {o:?}"),
    }
}

#[test]
fn truncated_change_bytes_are_malformed() {
    let w = world();
    let c = Customer::new("Acme", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let mut bytes = changes_of(&doc, &[]);
    let n = bytes[0].len();
    bytes[0].truncate(n / 2);
    let inc = Incoming {
        doc_id: c.id,
        kind: RecordKind::Customer,
        changes: bytes,
    };
    match apply_incoming(None, &inc, &w.caller(w.rep), &w.dir) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "malformed_change"),
        o => panic!("expected rejection, got {o:?}"),
    }
}

#[test]
fn a_retried_push_adds_nothing() {
    let w = world();
    let c = Customer::new("Acme", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    let Outcome::Accepted(acc) = push(&w, None, w.rep, &doc, &[], c.id, RecordKind::Customer)
    else {
        panic!("accept")
    };
    let Outcome::Accepted(again) = push(
        &w,
        Some(&acc.snapshot),
        w.rep,
        &doc,
        &[],
        c.id,
        RecordKind::Customer,
    ) else {
        panic!("accept")
    };
    assert!(again.new_changes.is_empty());
    assert_eq!(again.heads, acc.heads);
}

#[test]
fn project_rules_catch_bad_timezone_and_fence() {
    let w = world();
    let mut p = full_project(w.manager, w.rep);
    p.sites[0].timezone = "Mars/Olympus".into();
    let doc = Record::Project(p.clone())
        .to_new_doc(actor())
        .expect("write");
    match push(&w, None, w.manager, &doc, &[], p.id, RecordKind::Project) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "invalid_timezone"),
        o => panic!("{o:?}"),
    }
    let mut p = full_project(w.manager, w.rep);
    p.sites[1].geofence = Some(Geofence::Polygon {
        // a bow tie crosses itself
        points: vec![
            GeoPoint { lat: 0.0, lon: 0.0 },
            GeoPoint { lat: 1.0, lon: 1.0 },
            GeoPoint { lat: 0.0, lon: 1.0 },
            GeoPoint { lat: 1.0, lon: 0.0 },
        ],
    });
    let doc = Record::Project(p.clone())
        .to_new_doc(actor())
        .expect("write");
    match push(&w, None, w.manager, &doc, &[], p.id, RecordKind::Project) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "invalid_geofence"),
        o => panic!("{o:?}"),
    }
    // A field rep cannot create projects; the code is fixed once set.
    let p = full_project(w.rep, w.rep);
    let doc = Record::Project(p.clone())
        .to_new_doc(actor())
        .expect("write");
    assert!(matches!(
        push(&w, None, w.rep, &doc, &[], p.id, RecordKind::Project),
        Outcome::Rejected { .. }
    ));
    let p = full_project(w.admin, w.rep);
    let mut doc = Record::Project(p.clone())
        .to_new_doc(actor())
        .expect("write");
    let Outcome::Accepted(acc) = push(&w, None, w.admin, &doc, &[], p.id, RecordKind::Project)
    else {
        panic!("accept")
    };
    let heads = doc.get_heads();
    let mut e = p.clone();
    e.code = Some("PRJ-999".into());
    let mut tx = doc.transaction();
    Record::Project(e).write(&mut tx).expect("write");
    tx.commit();
    match push(
        &w,
        Some(&acc.snapshot),
        w.admin,
        &doc,
        &heads,
        p.id,
        RecordKind::Project,
    ) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "immutable_field"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn kind_mismatch_is_rejected() {
    let w = world();
    let c = Customer::new("Acme", w.rep);
    let doc = Record::Customer(c.clone())
        .to_new_doc(actor())
        .expect("write");
    match push(&w, None, w.rep, &doc, &[], c.id, RecordKind::Project) {
        Outcome::Rejected { error, .. } => assert_eq!(error.code, "kind_mismatch"),
        o => panic!("{o:?}"),
    }
}

mod convergence {
    //! Random offline edits on three phones, synced with a simulated server (the real merge
    //! core) in random orders: every phone and the server end with the same document.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Edit { phone: usize, field: u8, value: u16 },
        Sync { phone: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..3usize, 0..6u8, any::<u16>()).prop_map(|(phone, field, value)| Op::Edit { phone, field, value }),
            1 => (0..3usize).prop_map(|phone| Op::Sync { phone }),
        ]
    }

    fn edit(c: &mut Customer, field: u8, value: u16) {
        match field {
            0 => c.name = format!("Customer {value}"),
            1 => c.phone = Some(format!("+86 {value:05}")),
            2 => c
                .notes
                .insert(usize::from(value) % (c.notes.chars().count() + 1), 'x'),
            3 => c.tags = vec![format!("t{}", value % 4)],
            4 => {
                c.location = Some(GeoPoint {
                    lat: f64::from(value % 90),
                    lon: f64::from(value % 180),
                })
            }
            _ => c.tier = Some([Tier::Gold, Tier::Silver, Tier::Bronze][usize::from(value) % 3]),
        }
    }

    /// One phone's sync: push what the server lacks, then pull what the phone lacks.
    fn sync(w: &World, server: &mut Vec<u8>, phone: &mut Automerge, id: DocId) {
        let server_doc = Automerge::load(server).expect("load");
        let since = server_doc
            .get_heads()
            .into_iter()
            .filter(|h| phone.get_change_by_hash(h).is_some())
            .collect::<Vec<_>>();
        match push(
            w,
            Some(server),
            w.rep,
            phone,
            &since,
            id,
            RecordKind::Customer,
        ) {
            Outcome::Accepted(a) => {
                if !a.snapshot.is_empty() {
                    *server = a.snapshot;
                }
            }
            o => panic!("valid edits must be accepted: {o:?}"),
        }
        let mut s = Automerge::load(server).expect("load");
        phone.merge(&mut s).expect("merge");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn three_phones_always_converge(ops in proptest::collection::vec(op(), 1..40)) {
            let w = world();
            let c = Customer::new("Start", w.rep);
            let origin = Record::Customer(c.clone()).to_new_doc(actor()).expect("write");
            let Outcome::Accepted(acc) = push(&w, None, w.rep, &origin, &[], c.id, RecordKind::Customer) else { panic!("accept") };
            let mut server = acc.snapshot;
            let mut phones: Vec<Automerge> = (0..3).map(|_| Automerge::load(&server).expect("load").with_actor(actor())).collect();
            for op in ops {
                match op {
                    Op::Edit { phone, field, value } => {
                        let (Record::Customer(mut cur), _) = Record::read(&phones[phone]).expect("read") else { panic!("kind") };
                        edit(&mut cur, field, value);
                        let mut tx = phones[phone].transaction();
                        Record::Customer(cur).write(&mut tx).expect("write");
                        tx.commit();
                    }
                    Op::Sync { phone } => sync(&w, &mut server, &mut phones[phone], c.id),
                }
            }
            for i in [0, 1, 2, 0, 1] {
                sync(&w, &mut server, &mut phones[i], c.id);
            }
            let server_doc = Automerge::load(&server).expect("load");
            let (expected, _) = Record::read(&server_doc).expect("read");
            for p in &phones {
                prop_assert_eq!(p.get_heads(), server_doc.get_heads());
                prop_assert_eq!(&Record::read(p).expect("read").0, &expected);
            }
        }
    }
}
