//! The rules of field records (visits, punches, make-up requests) and the customer's visit
//! radius: who may write what, and what can never change once written. Most cases go through
//! `rules::check_change` (what the phone runs before committing and the server after merging);
//! the ones about document history (a concurrent rewrite, an extra key, a retry) go through
//! `merge::apply_incoming` with real Automerge documents.

use automerge::{ActorId, Automerge, ChangeHash, ROOT, transaction::Transactable};
use fieldsync_sync::access::Directory;
use fieldsync_sync::merge::{Accepted, Incoming, Outcome, apply_incoming};
use fieldsync_sync::rules::check_change;
use fieldsync_sync::*;
use std::collections::HashMap;

const T: i64 = 1_750_000_000_000;
const MIN: i64 = 60_000;

struct Dir(HashMap<UserId, (Role, Option<UserId>)>);

impl Directory for Dir {
    fn active_role(&self, user: UserId) -> Option<Role> {
        self.0.get(&user).map(|u| u.0)
    }
    fn manager_of(&self, user: UserId) -> Option<UserId> {
        self.0.get(&user).and_then(|u| u.1)
    }
}

/// Two teams: `manager` leads `rep`, `manager2` leads `rep2`; an admin and an HR account.
struct World {
    tenant: TenantId,
    admin: UserId,
    manager: UserId,
    manager2: UserId,
    rep: UserId,
    rep2: UserId,
    hr: UserId,
    dir: Dir,
}

fn world() -> World {
    let [admin, manager, manager2, rep, rep2, hr] = [(); 6].map(|()| UserId::new());
    let mut m = HashMap::new();
    m.insert(admin, (Role::Admin, None));
    m.insert(manager, (Role::Manager, None));
    m.insert(manager2, (Role::Manager, None));
    m.insert(rep, (Role::FieldRep, Some(manager)));
    m.insert(rep2, (Role::FieldRep, Some(manager2)));
    m.insert(hr, (Role::Hr, None));
    World {
        tenant: TenantId::new(),
        admin,
        manager,
        manager2,
        rep,
        rep2,
        hr,
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

    /// `check_change` of `after` over `before`, written by `user`.
    fn check(
        &self,
        user: UserId,
        before: Option<&Record>,
        after: &Record,
    ) -> Result<(), Rejection> {
        check_change(after.id(), before, after, &self.caller(user), &self.dir)
    }
}

/// The change was refused with `code`; the rejection, for its message.
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

/// A complete fix, the event dated `t` by the phone's monotonic clock.
fn fix(t: i64) -> Evidence {
    Evidence {
        lat: 52.52,
        lon: 13.405,
        accuracy_m: 12.5,
        altitude_m: Some(34.5),
        provider: Provider::Gps,
        fix_time_ms: t - 4_000,
        mock: false,
        wifi_bssid: Some("00:11:22:aa:bb:cc".into()),
        device_time_ms: t + 1_500,
        monotonic_ms: Some(7_200_000),
        server_offset_ms: Some(t - 7_200_000),
    }
}

// ---------------------------------------------------------------------------------------------
// Documents and pushes
// ---------------------------------------------------------------------------------------------

fn actor(byte: u8) -> ActorId {
    ActorId::from([byte; 16])
}

/// A phone holding the stored document `snapshot`, writing as actor `byte`.
fn phone(snapshot: &[u8], byte: u8) -> Automerge {
    Automerge::load(snapshot)
        .expect("load")
        .with_actor(actor(byte))
}

fn send(
    w: &World,
    stored: Option<&[u8]>,
    user: UserId,
    id: DocId,
    k: RecordKind,
    changes: Vec<Vec<u8>>,
) -> Outcome {
    let inc = Incoming {
        doc_id: id,
        kind: k,
        changes,
    };
    apply_incoming(stored, &inc, &w.caller(user), &w.dir)
}

fn changes_since(doc: &Automerge, since: &[ChangeHash]) -> Vec<Vec<u8>> {
    doc.get_changes(since)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

#[track_caller]
fn accepted(o: Outcome) -> Box<Accepted> {
    match o {
        Outcome::Accepted(a) => a,
        o => panic!("expected acceptance, got {o:?}"),
    }
}

#[track_caller]
fn rejected(o: Outcome) -> Rejection {
    match o {
        Outcome::Rejected { error, .. } => error,
        o => panic!("expected a rejection, got {o:?}"),
    }
}

/// Creates `rec` in a new document by `user`; the document and what the server stored.
#[track_caller]
fn create(w: &World, user: UserId, rec: &Record, by: ActorId) -> (Automerge, Vec<u8>) {
    let doc = rec.to_new_doc(by).expect("write");
    let a = accepted(send(
        w,
        None,
        user,
        rec.id(),
        rec.kind(),
        changes_since(&doc, &[]),
    ));
    assert!(a.created);
    (doc, a.snapshot)
}

/// Writes `rec` on `doc` and pushes what `doc` has beyond `base` to the server holding `stored`.
fn push(
    w: &World,
    stored: &[u8],
    user: UserId,
    doc: &mut Automerge,
    rec: &Record,
    base: &[ChangeHash],
) -> Outcome {
    let mut tx = doc.transaction();
    rec.write(&mut tx).expect("write");
    tx.commit();
    send(
        w,
        Some(stored),
        user,
        rec.id(),
        rec.kind(),
        changes_since(doc, base),
    )
}

// ---------------------------------------------------------------------------------------------
// Visits
// ---------------------------------------------------------------------------------------------

fn planned(rep: UserId, creator: UserId) -> Visit {
    let mut v = Visit::new(DocId::new(), rep, creator);
    v.planned_date = Some("2025-06-16".into());
    v.purpose = "Quarterly review".into();
    v
}

fn checked_in(v: &Visit) -> Visit {
    let mut v = v.clone();
    v.check_in = Some(fix(T));
    v
}

fn checked_out(v: &Visit) -> Visit {
    let mut v = checked_in(v);
    v.check_out = Some(CheckOut {
        evidence: fix(T + 45 * MIN),
        notes: "Met the buyer; order for 40 units.".into(),
        outcome: VisitOutcome::Order,
        next_follow_up: Some("2025-07-01".into()),
    });
    v
}

fn reviewed(v: &Visit, id: &str, by: UserId, decision: ReviewDecision, comment: &str) -> Visit {
    let mut v = v.clone();
    v.reviews.push(Review {
        id: id.into(),
        by,
        at_ms: T + 3 * 60 * MIN + i64::try_from(v.reviews.len()).expect("few reviews"),
        decision,
        comment: comment.into(),
    });
    v
}

fn visit(v: &Visit) -> Record {
    Record::Visit(v.clone())
}

#[test]
fn rep_may_plan_a_visit_for_themselves_but_not_for_another_rep() {
    let w = world();
    assert_eq!(w.check(w.rep, None, &visit(&planned(w.rep, w.rep))), Ok(()));
    let e = refused(
        w.check(w.rep, None, &visit(&planned(w.rep2, w.rep))),
        "forbidden",
    );
    assert_eq!(
        e.message,
        "You may plan visits for yourself, or as a manager for your team."
    );
}

#[test]
fn manager_may_plan_visits_for_their_team_only() {
    let w = world();
    assert_eq!(
        w.check(w.manager, None, &visit(&planned(w.rep, w.manager))),
        Ok(())
    );
    assert_eq!(
        w.check(w.manager, None, &visit(&planned(w.manager, w.manager))),
        Ok(())
    );
    refused(
        w.check(w.manager, None, &visit(&planned(w.rep2, w.manager))),
        "forbidden",
    );
    // An admin plans for anyone.
    assert_eq!(
        w.check(w.admin, None, &visit(&planned(w.rep2, w.admin))),
        Ok(())
    );
}

#[test]
fn the_planner_must_be_named_as_creator_and_the_rep_must_exist() {
    let w = world();
    let e = refused(
        w.check(w.manager, None, &visit(&planned(w.rep, w.rep))),
        "forbidden",
    );
    assert!(e.message.contains("'created_by'"), "{}", e.message);
    refused(
        w.check(w.admin, None, &visit(&planned(UserId::new(), w.admin))),
        "unknown_rep",
    );
}

#[test]
fn hr_may_not_plan_visits() {
    let w = world();
    refused(
        w.check(w.hr, None, &visit(&planned(w.hr, w.hr))),
        "forbidden",
    );
    refused(
        w.check(w.hr, None, &visit(&planned(w.rep, w.hr))),
        "forbidden",
    );
}

#[test]
fn another_manager_may_not_change_the_plan() {
    let w = world();
    let v = planned(w.rep, w.manager);
    let mut moved = v.clone();
    moved.planned_date = Some("2025-06-17".into());
    assert_eq!(w.check(w.rep, Some(&visit(&v)), &visit(&moved)), Ok(()));
    assert_eq!(w.check(w.manager, Some(&visit(&v)), &visit(&moved)), Ok(()));
    let e = refused(
        w.check(w.manager2, Some(&visit(&v)), &visit(&moved)),
        "forbidden",
    );
    assert_eq!(
        e.message,
        "Only the rep or their manager can change a visit's plan."
    );
}

#[test]
fn only_the_rep_can_check_in_and_out() {
    let w = world();
    let v = planned(w.rep, w.manager);
    let ci = checked_in(&v);
    let co = checked_out(&v);
    for other in [w.manager, w.admin] {
        let e = refused(w.check(other, Some(&visit(&v)), &visit(&ci)), "forbidden");
        assert_eq!(
            e.message,
            "Only the rep making the visit can check in and out, from their own phone."
        );
        refused(w.check(other, Some(&visit(&ci)), &visit(&co)), "forbidden");
    }
    // Nor by creating the visit already checked in for someone else.
    refused(w.check(w.manager, None, &visit(&ci)), "forbidden");

    assert_eq!(w.check(w.rep, Some(&visit(&v)), &visit(&ci)), Ok(()));
    assert_eq!(w.check(w.rep, Some(&visit(&ci)), &visit(&co)), Ok(()));
    // An unplanned visit: created at the door, already checked in.
    assert_eq!(
        w.check(w.rep, None, &visit(&checked_in(&planned(w.rep, w.rep)))),
        Ok(())
    );
}

#[test]
fn check_in_and_check_out_cannot_change_once_made() {
    let w = world();
    let ci = checked_in(&planned(w.rep, w.rep));
    let co = checked_out(&ci);

    let mut moved_in = ci.clone();
    if let Some(ev) = moved_in.check_in.as_mut() {
        ev.lat += 0.001;
    }
    let e = refused(
        w.check(w.rep, Some(&visit(&ci)), &visit(&moved_in)),
        "immutable_field",
    );
    assert_eq!(
        e.message,
        "A visit's check-in and check-out cannot change once made."
    );
    let mut undone = ci.clone();
    undone.check_in = None;
    refused(
        w.check(w.rep, Some(&visit(&ci)), &visit(&undone)),
        "immutable_field",
    );

    let mut rewritten = co.clone();
    if let Some(out) = rewritten.check_out.as_mut() {
        out.notes = "No order after all.".into();
        out.outcome = VisitOutcome::NoInterest;
    }
    refused(
        w.check(w.rep, Some(&visit(&co)), &visit(&rewritten)),
        "immutable_field",
    );
    let mut reopened = co.clone();
    reopened.check_out = None;
    refused(
        w.check(w.rep, Some(&visit(&co)), &visit(&reopened)),
        "immutable_field",
    );
}

#[test]
fn check_out_before_check_in_is_refused() {
    let w = world();
    let ci = checked_in(&planned(w.rep, w.rep));
    let mut early = checked_out(&ci);
    if let Some(out) = early.check_out.as_mut() {
        out.evidence = fix(T - MIN);
    }
    let e = refused(
        w.check(w.rep, Some(&visit(&ci)), &visit(&early)),
        "check_out_before_check_in",
    );
    assert_eq!(e.message, "The check-out is dated before the check-in.");

    // Without any check-in at all.
    let v = planned(w.rep, w.rep);
    let mut out_only = checked_out(&v);
    out_only.check_in = None;
    refused(
        w.check(w.rep, Some(&visit(&v)), &visit(&out_only)),
        "not_checked_in",
    );
}

#[test]
fn a_checked_in_visit_cannot_be_cancelled() {
    let w = world();
    let v = planned(w.rep, w.manager);
    let mut called_off = v.clone();
    called_off.cancelled = true;
    assert_eq!(
        w.check(w.manager, Some(&visit(&v)), &visit(&called_off)),
        Ok(()),
        "a planned visit can be called off"
    );

    let ci = checked_in(&v);
    let mut cancelled = ci.clone();
    cancelled.cancelled = true;
    for who in [w.rep, w.manager] {
        let e = refused(
            w.check(who, Some(&visit(&ci)), &visit(&cancelled)),
            "visit_already_made",
        );
        assert_eq!(
            e.message,
            "A visit that has been checked into cannot be cancelled."
        );
    }
}

#[test]
fn nobody_reviews_their_own_visit_or_decides_their_own_make_up() {
    let w = world();
    let co = checked_out(&planned(w.admin, w.admin));
    let after = visit(&reviewed(&co, "r1", w.admin, ReviewDecision::Approved, ""));
    refused(w.check(w.admin, Some(&visit(&co)), &after), "forbidden");
    let m = makeup(w.admin);
    refused(
        w.check(
            w.admin,
            Some(&mk(&m)),
            &mk(&decided(&m, w.admin, MakeupStatus::Approved)),
        ),
        "forbidden",
    );
}

#[test]
fn a_make_up_at_an_implausible_time_is_refused() {
    let w = world();
    let mut m = makeup(w.rep);
    m.at_ms = 0;
    refused(w.check(w.rep, None, &mk(&m)), "invalid_time");
}

#[test]
fn only_the_reps_manager_or_an_admin_can_review_a_visit() {
    let w = world();
    let co = checked_out(&planned(w.rep, w.rep));
    let before = visit(&co);
    for ok in [w.manager, w.admin] {
        let after = visit(&reviewed(&co, "r1", ok, ReviewDecision::Approved, ""));
        assert_eq!(w.check(ok, Some(&before), &after), Ok(()), "{ok}");
    }
    for not in [w.manager2, w.rep, w.hr] {
        let after = visit(&reviewed(&co, "r1", not, ReviewDecision::Approved, ""));
        let e = refused(w.check(not, Some(&before), &after), "forbidden");
        assert_eq!(
            e.message,
            "Only the rep's manager can review a visit report, and nobody their own."
        );
    }
}

#[test]
fn a_reviews_author_must_be_the_reviewer() {
    let w = world();
    let co = checked_out(&planned(w.rep, w.rep));
    let in_admins_name = visit(&reviewed(&co, "r1", w.admin, ReviewDecision::Approved, ""));
    refused(
        w.check(w.manager, Some(&visit(&co)), &in_admins_name),
        "forbidden",
    );
}

#[test]
fn reviews_cannot_be_edited_or_removed() {
    let w = world();
    let co = checked_out(&planned(w.rep, w.rep));
    let rv = reviewed(
        &co,
        "r1",
        w.manager,
        ReviewDecision::Comment,
        "Ask about delivery.",
    );

    let mut edited = rv.clone();
    edited.reviews[0].comment = "Fine.".into();
    let e = refused(
        w.check(w.manager, Some(&visit(&rv)), &visit(&edited)),
        "immutable_field",
    );
    assert_eq!(
        e.message,
        "Reviews are kept as written; add a new review instead."
    );
    let mut removed = rv.clone();
    removed.reviews.clear();
    refused(
        w.check(w.admin, Some(&visit(&rv)), &visit(&removed)),
        "immutable_field",
    );
    // A second opinion is a second review.
    let second = reviewed(&rv, "r2", w.admin, ReviewDecision::Approved, "");
    assert_eq!(w.check(w.admin, Some(&visit(&rv)), &visit(&second)), Ok(()));
}

#[test]
fn a_visit_without_a_check_out_cannot_be_reviewed() {
    let w = world();
    let ci = checked_in(&planned(w.rep, w.rep));
    let after = visit(&reviewed(
        &ci,
        "r1",
        w.manager,
        ReviewDecision::Approved,
        "",
    ));
    let e = refused(
        w.check(w.manager, Some(&visit(&ci)), &after),
        "not_reviewable",
    );
    assert!(
        e.message.contains("once the rep has checked out"),
        "{}",
        e.message
    );
    // Nor can a new visit arrive with reviews.
    let born_reviewed = reviewed(
        &checked_out(&planned(w.rep, w.rep)),
        "r1",
        w.rep,
        ReviewDecision::Approved,
        "",
    );
    refused(
        w.check(w.rep, None, &visit(&born_reviewed)),
        "not_reviewable",
    );
}

#[test]
fn a_comment_review_needs_text() {
    let w = world();
    let co = checked_out(&planned(w.rep, w.rep));
    for blank in ["", "   "] {
        let after = visit(&reviewed(
            &co,
            "r1",
            w.manager,
            ReviewDecision::Comment,
            blank,
        ));
        let e = refused(
            w.check(w.manager, Some(&visit(&co)), &after),
            "missing_field",
        );
        assert_eq!(
            e.message,
            "A review that comments needs a comment ('reviews.r1.comment')."
        );
    }
}

#[test]
fn a_second_phones_concurrent_check_in_is_refused_not_hidden() {
    // The rep's two phones both check in offline; the first is stored. The second's check-in
    // loses the merge (or wins it): either way it is refused, never kept as a hidden value.
    for second_wins in [false, true] {
        let w = world();
        let v = planned(w.rep, w.rep);
        let (_, s0) = create(&w, w.rep, &visit(&v), actor(0x80));
        let mut first = phone(&s0, if second_wins { 0x01 } else { 0xfe });
        let mut second = phone(&s0, if second_wins { 0xfe } else { 0x01 });
        let base = first.get_heads();

        let s1 = accepted(push(
            &w,
            &s0,
            w.rep,
            &mut first,
            &visit(&checked_in(&v)),
            &base,
        ))
        .snapshot;
        let mut other = v.clone();
        other.check_in = Some(fix(T + 2 * MIN));
        let e = rejected(push(&w, &s1, w.rep, &mut second, &visit(&other), &base));
        assert_eq!(e.code, "immutable_field", "{}", e.message);
        let expected = if second_wins {
            // the merged record shows a different check-in: `check_change`
            "A visit's check-in and check-out cannot change once made."
        } else {
            // the merged record looks unchanged, the conflict gives it away: `check_settled`
            "Field 'check_in' was already written and cannot be written again."
        };
        assert_eq!(e.message, expected);
    }
}

#[test]
fn two_reviewers_first_reviews_made_at_once_are_both_kept() {
    // The manager and an admin review the same report on copies from before either review.
    // Reviews live in one map keyed by review id, so both are kept; neither may hide the other.
    for admin_wins in [false, true] {
        let w = world();
        let co = checked_out(&planned(w.rep, w.rep));
        let (_, s0) = create(&w, w.rep, &visit(&co), actor(0x80));
        let (manager_actor, admin_actor) = if admin_wins {
            (0x01, 0xfe)
        } else {
            (0xfe, 0x01)
        };
        let mut managers = phone(&s0, manager_actor);
        let mut admins = phone(&s0, admin_actor);
        let base = managers.get_heads();

        let by_manager = reviewed(&co, "r1", w.manager, ReviewDecision::Approved, "");
        let s1 = accepted(push(
            &w,
            &s0,
            w.manager,
            &mut managers,
            &visit(&by_manager),
            &base,
        ))
        .snapshot;
        let by_admin = reviewed(
            &co,
            "r2",
            w.admin,
            ReviewDecision::Comment,
            "Second opinion.",
        );
        let both = accepted(push(
            &w,
            &s1,
            w.admin,
            &mut admins,
            &visit(&by_admin),
            &base,
        ));
        let Record::Visit(v) = &both.record else {
            panic!("a visit")
        };
        let ids: Vec<&str> = v.reviews.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["r1", "r2"]);
        assert!(both.conflicts.is_empty(), "{:?}", both.conflicts);
    }
}

// ---------------------------------------------------------------------------------------------
// Punches
// ---------------------------------------------------------------------------------------------

fn punch(user: UserId) -> Punch {
    Punch {
        id: DocId::new(),
        user,
        project: DocId::new(),
        site: "s1".into(),
        direction: Direction::In,
        evidence: fix(T),
        note: Some("Gate 3".into()),
    }
}

#[test]
fn a_punch_by_someone_else_than_its_user_is_refused() {
    let w = world();
    let p = Record::Punch(punch(w.rep));
    assert_eq!(w.check(w.rep, None, &p), Ok(()));
    for other in [w.manager, w.admin, w.rep2] {
        let e = refused(w.check(other, None, &p), "forbidden");
        assert_eq!(
            e.message,
            "A punch can only be made by the worker it is for, on their own phone."
        );
    }
    let doc = p.to_new_doc(actor(1)).expect("write");
    let e = rejected(send(
        &w,
        None,
        w.manager,
        p.id(),
        RecordKind::Punch,
        changes_since(&doc, &[]),
    ));
    assert_eq!(e.code, "forbidden");
}

#[track_caller]
fn assert_punch_immutable(o: Outcome) {
    let e = rejected(o);
    assert_eq!(e.code, "punch_immutable");
    assert_eq!(
        e.message,
        "Punches cannot be changed or deleted; a missed or wrong punch is fixed by a make-up request your manager approves."
    );
}

#[test]
fn any_change_to_a_stored_punch_is_refused() {
    let w = world();
    let p = punch(w.rep);
    let (_, stored) = create(&w, w.rep, &Record::Punch(p.clone()), actor(0x80));
    let edits: [fn(&mut Punch); 4] = [
        |p| p.direction = Direction::Out,
        |p| p.note = None,
        |p| p.evidence.lat += 0.0001,
        |p| p.evidence.wifi_bssid = None,
    ];
    for edit in edits {
        for user in [w.rep, w.manager, w.admin] {
            let mut doc = phone(&stored, 0x42);
            let base = doc.get_heads();
            let mut changed = p.clone();
            edit(&mut changed);
            assert_punch_immutable(push(
                &w,
                &stored,
                user,
                &mut doc,
                &Record::Punch(changed),
                &base,
            ));
        }
    }
}

#[test]
fn a_concurrent_rewrite_of_a_punch_is_refused_even_when_the_old_value_wins() {
    // A forged punch document with the same id, built without the stored history: on merge
    // every field conflicts, and with a lower actor id the stored values win, so the merged
    // record looks unchanged. It must still be refused.
    let w = world();
    let p = punch(w.rep);
    let (_, stored) = create(&w, w.rep, &Record::Punch(p.clone()), actor(0xfe));
    let mut forged = p.clone();
    forged.direction = Direction::Out;
    forged.evidence.device_time_ms -= 60 * MIN;
    let rogue = Record::Punch(forged)
        .to_new_doc(actor(0x01))
        .expect("write");
    let changes = changes_since(&rogue, &[]);

    let mut merged = phone(&stored, 0x99);
    merged
        .apply_changes(
            changes
                .iter()
                .map(|c| automerge::Change::from_bytes(c.clone()).expect("change")),
        )
        .expect("apply");
    let (shown, conflicts) = Record::read(&merged).expect("read");
    assert_eq!(
        shown,
        Record::Punch(p.clone()),
        "the old values win the merge"
    );
    assert!(!conflicts.is_empty());
    assert_eq!(
        w.check(w.rep, Some(&Record::Punch(p.clone())), &shown),
        Ok(()),
        "the merged record alone looks unchanged"
    );

    assert_punch_immutable(send(
        &w,
        Some(&stored),
        w.rep,
        p.id,
        RecordKind::Punch,
        changes,
    ));
}

#[test]
fn an_unknown_key_or_a_no_op_rewrite_of_a_punch_is_refused() {
    let w = world();
    let p = punch(w.rep);
    let (_, stored) = create(&w, w.rep, &Record::Punch(p.clone()), actor(0x80));

    let mut doc = phone(&stored, 0x42);
    let base = doc.get_heads();
    let mut tx = doc.transaction();
    tx.put(ROOT, "approved_by_manager", true).expect("put");
    tx.commit();
    assert_eq!(
        Record::read(&doc).expect("read").0,
        Record::Punch(p.clone())
    );
    assert_punch_immutable(send(
        &w,
        Some(&stored),
        w.rep,
        p.id,
        RecordKind::Punch,
        changes_since(&doc, &base),
    ));

    let mut doc = phone(&stored, 0x43);
    let base = doc.get_heads();
    let mut tx = doc.transaction();
    // Away and back in one change: the record reads the same, the history does not.
    tx.put(ROOT, "site", "s2").expect("put");
    tx.put(ROOT, "site", "s1").expect("put");
    tx.commit();
    assert_eq!(
        Record::read(&doc).expect("read").0,
        Record::Punch(p.clone())
    );
    assert_ne!(doc.get_heads(), base);
    assert_punch_immutable(send(
        &w,
        Some(&stored),
        w.rep,
        p.id,
        RecordKind::Punch,
        changes_since(&doc, &base),
    ));
}

#[test]
fn an_identical_punch_retry_is_accepted_with_nothing_new() {
    let w = world();
    let p = Record::Punch(punch(w.rep));
    let (doc, stored) = create(&w, w.rep, &p, actor(0x80));
    let again = accepted(send(
        &w,
        Some(&stored),
        w.rep,
        p.id(),
        RecordKind::Punch,
        changes_since(&doc, &[]),
    ));
    assert!(again.new_changes.is_empty());
    assert!(again.snapshot.is_empty(), "nothing to store");
    assert!(!again.created);
    assert_eq!(again.heads, doc.get_heads());
    assert_eq!(again.record, p);
}

// ---------------------------------------------------------------------------------------------
// Make-up requests
// ---------------------------------------------------------------------------------------------

fn makeup(user: UserId) -> Makeup {
    Makeup {
        id: DocId::new(),
        user,
        project: DocId::new(),
        site: "s1".into(),
        direction: Direction::In,
        at_ms: T - 24 * 60 * MIN,
        reason: "Phone battery was dead at the gate.".into(),
        decision: None,
    }
}

fn decided(m: &Makeup, by: UserId, status: MakeupStatus) -> Makeup {
    let mut m = m.clone();
    m.decision = Some(MakeupDecision {
        status,
        by,
        at_ms: T,
        comment: Some("Seen on the gate log.".into()),
    });
    m
}

fn mk(m: &Makeup) -> Record {
    Record::Makeup(m.clone())
}

#[test]
fn only_the_worker_can_ask_for_a_make_up() {
    let w = world();
    let m = makeup(w.rep);
    assert_eq!(w.check(w.rep, None, &mk(&m)), Ok(()));
    for other in [w.manager, w.admin, w.hr] {
        let e = refused(w.check(other, None, &mk(&m)), "forbidden");
        assert_eq!(
            e.message,
            "A make-up request can only be made by the worker it is for."
        );
    }
}

#[test]
fn a_new_make_up_request_cannot_already_be_decided() {
    let w = world();
    let m = decided(&makeup(w.rep), w.manager, MakeupStatus::Approved);
    let e = refused(w.check(w.rep, None, &mk(&m)), "not_decidable");
    assert_eq!(
        e.message,
        "A new make-up request cannot already be decided."
    );
}

#[test]
fn only_the_workers_manager_or_an_admin_decides_a_make_up() {
    let w = world();
    let m = makeup(w.rep);
    for ok in [w.manager, w.admin] {
        for status in [MakeupStatus::Approved, MakeupStatus::Rejected] {
            assert_eq!(
                w.check(ok, Some(&mk(&m)), &mk(&decided(&m, ok, status))),
                Ok(())
            );
        }
    }
    for not in [w.manager2, w.rep, w.hr] {
        let e = refused(
            w.check(
                not,
                Some(&mk(&m)),
                &mk(&decided(&m, not, MakeupStatus::Approved)),
            ),
            "forbidden",
        );
        assert_eq!(
            e.message,
            "Only the worker's manager can approve or refuse a make-up request, for their own team, and never their own."
        );
    }
}

#[test]
fn a_make_up_decision_must_be_in_the_deciders_name() {
    let w = world();
    let m = makeup(w.rep);
    refused(
        w.check(
            w.manager,
            Some(&mk(&m)),
            &mk(&decided(&m, w.admin, MakeupStatus::Approved)),
        ),
        "forbidden",
    );
    refused(
        w.check(
            w.admin,
            Some(&mk(&m)),
            &mk(&decided(&m, w.manager, MakeupStatus::Approved)),
        ),
        "forbidden",
    );
}

#[test]
fn a_decided_make_up_cannot_be_decided_again() {
    let w = world();
    let approved = decided(&makeup(w.rep), w.manager, MakeupStatus::Approved);
    let overruled = decided(&approved, w.admin, MakeupStatus::Rejected);
    let e = refused(
        w.check(w.admin, Some(&mk(&approved)), &mk(&overruled)),
        "already_decided",
    );
    assert_eq!(e.message, "This make-up request has already been decided.");
    let mut withdrawn = approved.clone();
    withdrawn.decision = None;
    refused(
        w.check(w.manager, Some(&mk(&approved)), &mk(&withdrawn)),
        "already_decided",
    );
    let mut recommented = approved.clone();
    if let Some(d) = recommented.decision.as_mut() {
        d.comment = None;
    }
    refused(
        w.check(w.manager, Some(&mk(&approved)), &mk(&recommented)),
        "already_decided",
    );
}

#[test]
fn a_concurrent_decision_from_a_stale_copy_is_already_decided() {
    // The manager approves; the admin, on a copy from before, refuses. Whichever decision wins
    // the merge, the admin's push is refused: by `check_change` when it wins, by
    // `check_settled` (the conflict on 'decision') when the stored one does.
    for admin_wins in [false, true] {
        let w = world();
        let m = makeup(w.rep);
        let (_, s0) = create(&w, w.rep, &mk(&m), actor(0x80));
        let (manager_actor, admin_actor) = if admin_wins {
            (0x01, 0xfe)
        } else {
            (0xfe, 0x01)
        };
        let mut managers = phone(&s0, manager_actor);
        let mut admins = phone(&s0, admin_actor);
        let base = managers.get_heads();

        let approved = decided(&m, w.manager, MakeupStatus::Approved);
        let s1 = accepted(push(
            &w,
            &s0,
            w.manager,
            &mut managers,
            &mk(&approved),
            &base,
        ))
        .snapshot;

        let refused_by_admin = decided(&m, w.admin, MakeupStatus::Rejected);
        let mut tx = admins.transaction();
        mk(&refused_by_admin).write(&mut tx).expect("write");
        tx.commit();
        let changes = changes_since(&admins, &base);

        // Which rule catches it, to know both are exercised.
        let mut merged = phone(&s1, 0x99);
        merged
            .apply_changes(
                changes
                    .iter()
                    .map(|c| automerge::Change::from_bytes(c.clone()).expect("change")),
            )
            .expect("apply");
        let (shown, conflicts) = Record::read(&merged).expect("read");
        assert!(
            conflicts.iter().any(|c| c.field == "decision"),
            "{conflicts:?}"
        );
        let winner = if admin_wins {
            &refused_by_admin
        } else {
            &approved
        };
        assert_eq!(shown, mk(winner));
        let by_check_change = w.check(w.admin, Some(&mk(&approved)), &shown);
        assert_eq!(by_check_change.is_ok(), !admin_wins);

        let e = rejected(send(
            &w,
            Some(&s1),
            w.admin,
            m.id,
            RecordKind::Makeup,
            changes,
        ));
        assert_eq!(
            e.code, "already_decided",
            "admin wins: {admin_wins}: {}",
            e.message
        );
        assert_eq!(e.message, "This make-up request has already been decided.");
    }
}

#[test]
fn a_make_up_requests_fields_cannot_change() {
    let w = world();
    let m = makeup(w.rep);
    let edits: [fn(&mut Makeup); 5] = [
        |m| m.reason = "Forgot.".into(),
        |m| m.at_ms += 30 * MIN,
        |m| m.direction = Direction::Out,
        |m| m.site = "s2".into(),
        |m| m.project = DocId::new(),
    ];
    for edit in edits {
        let mut changed = m.clone();
        edit(&mut changed);
        let e = refused(
            w.check(w.rep, Some(&mk(&m)), &mk(&changed)),
            "immutable_field",
        );
        assert_eq!(
            e.message,
            "A make-up request cannot change once made; make a new one instead."
        );
        // Nor while deciding it.
        let both = decided(&changed, w.manager, MakeupStatus::Approved);
        refused(
            w.check(w.manager, Some(&mk(&m)), &mk(&both)),
            "immutable_field",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Customers' visit radius
// ---------------------------------------------------------------------------------------------

#[test]
fn a_customer_visit_radius_outside_100_to_3000_m_is_refused() {
    let w = world();
    for ok in [100.0, 1_500.0, 3_000.0] {
        let mut c = Customer::new("Acme Ltd", w.rep);
        c.visit_radius_m = Some(ok);
        assert_eq!(w.check(w.rep, None, &Record::Customer(c)), Ok(()), "{ok}");
    }
    for (bad, shown) in [
        (99.0, "99"),
        (3_000.5, "3000.5"),
        (0.0, "0"),
        (-300.0, "-300"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        let mut c = Customer::new("Acme Ltd", w.rep);
        c.visit_radius_m = Some(bad);
        let e = refused(w.check(w.rep, None, &Record::Customer(c)), "invalid_radius");
        assert_eq!(
            e.message,
            format!("A customer's visit radius must be between 100 and 3000 metres, not {shown}.")
        );
    }
    // Also when an existing customer is edited.
    let c = Customer::new("Acme Ltd", w.rep);
    let mut wide = c.clone();
    wide.visit_radius_m = Some(5_000.0);
    refused(
        w.check(w.rep, Some(&Record::Customer(c)), &Record::Customer(wide)),
        "invalid_radius",
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

fn full_visit(w: &World) -> Visit {
    let co = checked_out(&planned(w.rep, w.manager));
    let rv = reviewed(
        &co,
        "r-b",
        w.manager,
        ReviewDecision::Comment,
        "Ask about delivery dates.",
    );
    reviewed(&rv, "r-a", w.admin, ReviewDecision::Approved, "")
}

#[track_caller]
fn assert_round_trips(rec: &Record) {
    let doc = rec.to_new_doc(actor(7)).expect("write");
    let loaded = Automerge::load(&doc.save()).expect("load");
    let (back, conflicts) = Record::read(&loaded).expect("read");
    assert_eq!(&back, rec);
    assert!(conflicts.is_empty(), "{conflicts:?}");

    let json = serde_json::to_string(rec).expect("to json");
    let from_json: Record = serde_json::from_str(&json).expect("from json");
    assert_eq!(&from_json, rec, "{json}");

    // Writing the same record again adds nothing.
    let mut doc = doc;
    let heads = doc.get_heads();
    let mut tx = doc.transaction();
    rec.write(&mut tx).expect("write");
    tx.commit();
    assert_eq!(doc.get_heads(), heads);
}

#[test]
fn a_full_visit_round_trips_through_a_document_and_json() {
    let w = world();
    let v = full_visit(&w);
    assert_eq!(v.reviews.len(), 2);
    assert_round_trips(&Record::Visit(v));
}

#[test]
fn a_punch_round_trips_through_a_document_and_json() {
    let w = world();
    let mut p = punch(w.rep);
    p.direction = Direction::Out;
    p.evidence.provider = Provider::Fused;
    p.evidence.mock = true;
    assert_round_trips(&Record::Punch(p.clone()));
    // The optional parts absent.
    p.note = None;
    p.evidence.altitude_m = None;
    p.evidence.wifi_bssid = None;
    p.evidence.monotonic_ms = None;
    p.evidence.server_offset_ms = None;
    assert_round_trips(&Record::Punch(p));
}

#[test]
fn a_decided_make_up_round_trips_through_a_document_and_json() {
    let w = world();
    let m = makeup(w.rep);
    assert_round_trips(&mk(&m));
    assert_round_trips(&mk(&decided(&m, w.manager, MakeupStatus::Rejected)));
    let mut silent = decided(&m, w.admin, MakeupStatus::Approved);
    if let Some(d) = silent.decision.as_mut() {
        d.comment = None;
    }
    assert_round_trips(&mk(&silent));
}
