//! The photo record: its content checks, who may change what, and that its history is its
//! review history (reviews and comments are added, never edited, and two reviewers at once are
//! both kept).

use automerge::{ActorId, Automerge};
use fieldsync_sync::access::Directory;
use fieldsync_sync::merge::{Incoming, Outcome, apply_incoming};
use fieldsync_sync::record::photo::{
    AttachKind, Attachment, PhotoComment, PhotoDecision, PhotoReview,
};
use fieldsync_sync::rules::{check_change, check_photo};
use fieldsync_sync::*;
use std::collections::HashMap;

const T: i64 = 1_790_000_000_000;

struct Dir(
    HashMap<UserId, (Role, Option<UserId>)>,
    HashMap<DocId, Vec<UserId>>,
);

impl Directory for Dir {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.0.get(&user).map(|u| u.0)
    }
    fn manager_of(&self, user: UserId) -> Option<UserId> {
        self.0.get(&user).and_then(|u| u.1)
    }
    fn project_members(&self, project: DocId) -> Vec<UserId> {
        self.1.get(&project).cloned().unwrap_or_default()
    }
}

struct World {
    tenant: TenantId,
    /// The project the photos are of: the crew and the site manager are its members.
    project: DocId,
    crew: UserId,
    site_manager: UserId,
    manager: UserId,
    other_crew: UserId,
    hr: UserId,
    dir: Dir,
}

fn world() -> World {
    let [crew, site_manager, manager, other_crew, hr] = [(); 5].map(|()| UserId::new());
    let mut m = HashMap::new();
    m.insert(crew, (Role::FieldRep, Some(manager)));
    m.insert(site_manager, (Role::SiteManager, None));
    m.insert(manager, (Role::Manager, None));
    m.insert(other_crew, (Role::FieldRep, Some(manager)));
    m.insert(hr, (Role::Hr, None));
    let project = DocId::new();
    let members = HashMap::from([(project, vec![crew, site_manager])]);
    World {
        tenant: TenantId::new(),
        project,
        crew,
        site_manager,
        manager,
        other_crew,
        hr,
        dir: Dir(m, members),
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
    fn check(&self, user: UserId, before: Option<&Photo>, after: &Photo) -> Result<(), Rejection> {
        let b = before.cloned().map(Record::Photo);
        check_change(
            after.id,
            b.as_ref(),
            &Record::Photo(after.clone()),
            &self.caller(user),
            &self.dir,
        )
    }
}

#[track_caller]
fn refused(result: Result<(), Rejection>, code: &str) -> Rejection {
    match result {
        Err(e) => {
            assert_eq!(e.code, code, "{}", e.message);
            e
        }
        Ok(()) => panic!("expected a '{code}' refusal, the change was accepted"),
    }
}

fn photo(w: &World, author: UserId) -> Photo {
    Photo {
        id: DocId::new(),
        author,
        sha256: "ab".repeat(32),
        size: 2_345_678,
        mime: "image/jpeg".into(),
        attached_to: Attachment {
            kind: AttachKind::SiteDay,
            id: w.project,
            site: Some("depot".into()),
            day: Some("2026-11-23".into()),
        },
        captured_at_ms: T,
        evidence: Some(Evidence {
            lat: 52.51,
            lon: 13.427,
            accuracy_m: 6.0,
            altitude_m: None,
            provider: Provider::Gps,
            fix_time_ms: T - 2_000,
            mock: false,
            wifi_bssid: None,
            device_time_ms: T,
            monotonic_ms: Some(1_000_000),
            server_offset_ms: Some(T - 1_000_000),
        }),
        caption: "Rebar before the pour".into(),
        tags: vec!["progress".into(), "slab".into()],
        reviews: Vec::new(),
        comments: Vec::new(),
    }
}

fn review(by: UserId, decision: PhotoDecision, reason: &str) -> PhotoReview {
    PhotoReview {
        id: uuid_like(),
        by,
        at_ms: T + 3_600_000,
        decision,
        reason: reason.into(),
    }
}

fn uuid_like() -> String {
    DocId::new().as_string()
}

#[test]
fn a_photo_round_trips_through_its_document() {
    let w = world();
    let mut p = photo(&w, w.crew);
    p.reviews
        .push(review(w.site_manager, PhotoDecision::Retake, "Too dark"));
    p.comments.push(PhotoComment {
        id: "c1".into(),
        by: w.crew,
        at_ms: T + 7_200_000,
        text: "Retaken at noon".into(),
    });
    let doc = Record::Photo(p.clone())
        .to_new_doc(ActorId::random())
        .expect("doc");
    let (read, conflicts) = Record::read(&doc).expect("read");
    assert_eq!(read, Record::Photo(p.clone()));
    assert!(conflicts.is_empty());
    assert_eq!(p.status(), Some(PhotoDecision::Retake));
}

#[test]
fn photo_content_is_checked() {
    let w = world();
    let ok = photo(&w, w.crew);
    assert_eq!(check_photo(&ok), Ok(()));
    let bad = |f: &dyn Fn(&mut Photo)| {
        let mut p = ok.clone();
        f(&mut p);
        check_photo(&p).expect_err("refused").code
    };
    assert_eq!(bad(&|p| p.sha256 = "AB".repeat(32)), "invalid_hash");
    assert_eq!(
        bad(&|p| p.sha256 = "../../etc/passwd".into()),
        "invalid_hash"
    );
    assert_eq!(bad(&|p| p.size = 0), "invalid_size");
    assert_eq!(bad(&|p| p.size = 41 << 20), "invalid_size");
    assert_eq!(bad(&|p| p.mime = "image/heic".into()), "unsupported_format");
    assert_eq!(bad(&|p| p.attached_to.day = None), "missing_field");
    assert_eq!(
        bad(&|p| p.attached_to.day = Some("2026-02-30".into())),
        "invalid_date"
    );
    assert_eq!(
        bad(&|p| p.attached_to.kind = AttachKind::Customer),
        "invalid_attachment"
    );
    assert_eq!(bad(&|p| p.captured_at_ms = 0), "invalid_time");
    assert_eq!(
        bad(&|p| {
            if let Some(e) = p.evidence.as_mut() {
                e.lat = 91.0;
            }
        }),
        "invalid_latitude"
    );
    assert_eq!(
        bad(&|p| p.tags = (0..21).map(|i| format!("t{i}")).collect()),
        "too_many_tags"
    );
    let e = refused(
        check_photo(&Photo {
            reviews: vec![review(w.site_manager, PhotoDecision::Rejected, " ")],
            ..ok.clone()
        }),
        "missing_field",
    );
    assert!(e.message.contains("needs a reason"), "{}", e.message);
}

#[test]
fn only_the_author_takes_a_photo_and_it_starts_unreviewed() {
    let w = world();
    let p = photo(&w, w.crew);
    assert_eq!(w.check(w.crew, None, &p), Ok(()));
    refused(w.check(w.other_crew, None, &p), "forbidden");
    let mut reviewed = p.clone();
    reviewed
        .reviews
        .push(review(w.site_manager, PhotoDecision::Approved, ""));
    refused(w.check(w.crew, None, &reviewed), "not_reviewable");
}

#[test]
fn what_the_photo_is_cannot_change_but_the_author_may_recaption_it() {
    let w = world();
    let p = photo(&w, w.crew);
    let mut recaptioned = p.clone();
    recaptioned.caption = "Rebar, east bay, before the pour".into();
    recaptioned.tags.push("east".into());
    assert_eq!(w.check(w.crew, Some(&p), &recaptioned), Ok(()));
    refused(w.check(w.site_manager, Some(&p), &recaptioned), "forbidden");
    for change in [
        &(|p: &mut Photo| p.sha256 = "cd".repeat(32)) as &dyn Fn(&mut Photo),
        &|p| p.size += 1,
        &|p| p.attached_to.day = Some("2026-11-24".into()),
        &|p| p.captured_at_ms += 60_000,
        &|p| p.evidence = None,
    ] {
        let mut after = p.clone();
        change(&mut after);
        refused(w.check(w.crew, Some(&p), &after), "immutable_field");
    }
}

#[test]
fn reviewers_review_others_photos_and_reviews_are_kept() {
    let w = world();
    let p = photo(&w, w.crew);
    for reviewer in [w.site_manager, w.manager] {
        let mut after = p.clone();
        after
            .reviews
            .push(review(reviewer, PhotoDecision::Retake, "Blurred"));
        assert_eq!(w.check(reviewer, Some(&p), &after), Ok(()), "{reviewer}");
    }
    for not in [w.crew, w.other_crew, w.hr] {
        let mut after = p.clone();
        after.reviews.push(review(not, PhotoDecision::Approved, ""));
        refused(w.check(not, Some(&p), &after), "forbidden");
    }
    // Signed as someone else.
    let mut forged = p.clone();
    forged
        .reviews
        .push(review(w.manager, PhotoDecision::Approved, ""));
    refused(w.check(w.site_manager, Some(&p), &forged), "forbidden");
    // A review once made stays as made.
    let mut reviewed = p.clone();
    reviewed.reviews.push(review(
        w.site_manager,
        PhotoDecision::Rejected,
        "Wrong site",
    ));
    let mut rewritten = reviewed.clone();
    rewritten.reviews[0].decision = PhotoDecision::Approved;
    refused(
        w.check(w.site_manager, Some(&reviewed), &rewritten),
        "immutable_field",
    );
    let mut dropped = reviewed.clone();
    dropped.reviews.clear();
    refused(
        w.check(w.site_manager, Some(&reviewed), &dropped),
        "immutable_field",
    );
}

#[test]
fn anyone_who_sees_the_photo_comments_in_their_own_name() {
    let w = world();
    let p = photo(&w, w.crew);
    let comment = |by| PhotoComment {
        id: uuid_like(),
        by,
        at_ms: T + 1,
        text: "Where is the north arrow?".into(),
    };
    for by in [w.crew, w.site_manager, w.other_crew] {
        let mut after = p.clone();
        after.comments.push(comment(by));
        assert_eq!(w.check(by, Some(&p), &after), Ok(()));
    }
    let mut forged = p.clone();
    forged.comments.push(comment(w.site_manager));
    refused(w.check(w.crew, Some(&p), &forged), "forbidden");
}

/// Applies `edit` of `base` by `actor`; the change bytes.
fn edit(base: &Automerge, actor: u8, change: impl FnOnce(&mut Photo)) -> Vec<Vec<u8>> {
    let mut doc = base.fork().with_actor(ActorId::from(vec![actor; 16]));
    let (Record::Photo(mut p), _) = Record::read(&doc).expect("read") else {
        panic!("not a photo");
    };
    change(&mut p);
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    Record::Photo(p).write(&mut tx).expect("write");
    tx.commit();
    doc.get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

#[test]
fn two_reviewers_at_once_are_both_kept() {
    let w = world();
    let p = photo(&w, w.crew);
    let base = Record::Photo(p.clone())
        .to_new_doc(ActorId::from(vec![1u8; 16]))
        .expect("doc");
    let stored = base.save();
    let a = edit(&base, 2, |p| {
        p.reviews
            .push(review(w.site_manager, PhotoDecision::Approved, ""))
    });
    let b = edit(&base, 3, |p| {
        p.reviews.push(review(
            w.manager,
            PhotoDecision::Retake,
            "Show the whole wall",
        ))
    });
    let push = |stored: &[u8], by: UserId, changes: Vec<Vec<u8>>| {
        apply_incoming(
            Some(stored),
            &Incoming {
                doc_id: p.id,
                kind: RecordKind::Photo,
                changes,
            },
            &w.caller(by),
            &w.dir,
        )
    };
    let Outcome::Accepted(first) = push(&stored, w.site_manager, a) else {
        panic!("first review refused");
    };
    let Outcome::Accepted(second) = push(&first.snapshot, w.manager, b) else {
        panic!("second review refused");
    };
    let Record::Photo(merged) = second.record else {
        panic!("not a photo");
    };
    assert_eq!(merged.reviews.len(), 2);
    assert!(second.conflicts.is_empty(), "{:?}", second.conflicts);
}

#[test]
fn a_concurrent_rewrite_of_the_bytes_is_refused() {
    let w = world();
    let p = photo(&w, w.crew);
    let base = Record::Photo(p.clone())
        .to_new_doc(ActorId::from(vec![1u8; 16]))
        .expect("doc");
    // A second copy made from nothing with the same id: its 'sha256' competes with the stored one.
    let mut twin = p.clone();
    twin.sha256 = "cd".repeat(32);
    let rival = Record::Photo(twin)
        .to_new_doc(ActorId::from(vec![9u8; 16]))
        .expect("doc");
    let out = apply_incoming(
        Some(&base.save()),
        &Incoming {
            doc_id: p.id,
            kind: RecordKind::Photo,
            changes: rival
                .get_changes(&[])
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect(),
        },
        &w.caller(w.crew),
        &w.dir,
    );
    match out {
        Outcome::Rejected { error, .. } => {
            assert_eq!(error.code, "immutable_field", "{}", error.message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn project_members_read_a_site_photo_and_outsiders_do_not() {
    let w = world();
    let p = photo(&w, w.crew);
    let who = Record::Photo(p.clone()).principals_in(&w.dir);
    assert!(
        who.contains(&w.crew) && who.contains(&w.site_manager),
        "{who:?}"
    );
    assert!(!who.contains(&w.other_crew));
    // A photo of a customer is its author's (and their manager's) only.
    let mut c = p.clone();
    c.attached_to = Attachment {
        kind: AttachKind::Customer,
        id: DocId::new(),
        site: None,
        day: None,
    };
    assert_eq!(Record::Photo(c).principals_in(&w.dir), vec![w.crew]);
    let base = Record::Photo(p.clone())
        .to_new_doc(ActorId::from(vec![1u8; 16]))
        .expect("doc");
    // The other crew member is no member: their comment is refused as if the photo did not exist.
    let changes = edit(&base, 4, |x| {
        x.comments.push(PhotoComment {
            id: "c".into(),
            by: w.other_crew,
            at_ms: T,
            text: "Nice".into(),
        })
    });
    match apply_incoming(
        Some(&base.save()),
        &Incoming {
            doc_id: p.id,
            kind: RecordKind::Photo,
            changes,
        },
        &w.caller(w.other_crew),
        &w.dir,
    ) {
        Outcome::Rejected { error, doc, .. } => {
            assert_eq!(error.code, "forbidden");
            assert!(doc.is_none(), "nothing of the photo is revealed");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
