//! Customer visits on the phone: plan, check in, check out with the report, cancel, review.
//!
//! Before anything is stored the phone applies what it can know of the server's visit rules,
//! with the server's codes: the customer must be on this device (`unknown_customer`); a rep has
//! one open visit at a time (`visit_already_open`); a visit checked into longer ago than the
//! policy's `visit_auto_close_ms` counts as `auto_closed` and takes no check-out
//! (`visit_auto_closed`); a check-out needs a check-in (`not_checked_in`). Check-in and
//! check-out return the location verdict computed offline against the customer's location.

use crate::client::Inner;
use crate::edit::{new_item_id, opt, parse_doc_id};
use crate::error::{ClientError, Result};
use crate::model::{FieldEventView, LocationFix, VisitView};
use fieldsync_sync::evidence::Evidence;
use fieldsync_sync::record::visit::{CheckOut, Review, ReviewDecision, Visit, VisitOutcome};
use fieldsync_sync::trust::{self, Policy, Target, human_duration};
use fieldsync_sync::{Conflict, Customer, DocId, Record, RecordKind, UserId};

/// The visit's state at `now_ms` (server time as the phone reckons it): the record's own
/// state, except that a visit still open `visit_auto_close_ms` after its check-in is
/// `auto_closed`.
pub(crate) fn visit_state(v: &Visit, now_ms: i64, policy: &Policy) -> &'static str {
    match (&v.check_in, &v.check_out) {
        (Some(ci), None) if !v.cancelled && now_ms > auto_close_at(ci, policy) => "auto_closed",
        _ => v.state(),
    }
}

/// When a visit checked in with `check_in` is closed automatically.
fn auto_close_at(check_in: &Evidence, policy: &Policy) -> i64 {
    check_in
        .event_time_ms()
        .saturating_add(policy.visit_auto_close_ms)
}

fn unknown_customer(id: &str) -> ClientError {
    ClientError::invalid(
        "unknown_customer",
        format!("The customer {id} is not on this device; sync, or pick another customer."),
    )
}

fn with_visit(
    change: impl FnOnce(&mut Visit) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Visit(v) => change(v),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a visit.",
        )),
    }
}

impl Inner {
    /// A customer on this device, if it is here and readable.
    pub(crate) fn local_customer(&self, id: DocId) -> Result<Option<Customer>> {
        match self.load(&id.to_string(), RecordKind::Customer) {
            Ok((Record::Customer(c), _, _)) => Ok(Some(c)),
            Ok(_) | Err(ClientError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn visit(&self, id: &str) -> Result<(Visit, Vec<Conflict>, bool)> {
        match self.load(id, RecordKind::Visit)? {
            (Record::Visit(v), conflicts, pending) => Ok((v, conflicts, pending)),
            _ => Err(ClientError::not_found("visit", id)),
        }
    }

    fn visit_view_of(
        &self,
        visit: Visit,
        conflicts: Vec<Conflict>,
        pending: bool,
        now_ms: i64,
        policy: &Policy,
    ) -> Result<VisitView> {
        Ok(VisitView {
            state: visit_state(&visit, now_ms, policy).to_owned(),
            customer_name: self.local_customer(visit.customer)?.map(|c| c.name),
            visit,
            pending,
            conflicts,
        })
    }

    pub(crate) fn visit_view(&self, id: &str) -> Result<VisitView> {
        let (visit, conflicts, pending) = self.visit(id)?;
        let now = self.stamp()?.time_ms();
        self.visit_view_of(visit, conflicts, pending, now, &self.policy()?)
    }

    /// Every visit on this device.
    fn visits(&self) -> Result<Vec<(Visit, Vec<Conflict>, bool)>> {
        Ok(self
            .list(RecordKind::Visit)?
            .into_iter()
            .filter_map(|(r, c, p)| match r {
                Record::Visit(v) => Some((v, c, p)),
                _ => None,
            })
            .collect())
    }

    /// `rep`'s visit other than `except` that is open at `at_ms`, if any.
    fn open_visit_of(
        &self,
        rep: UserId,
        except: DocId,
        at_ms: i64,
        policy: &Policy,
    ) -> Result<Option<Visit>> {
        Ok(self
            .visits()?
            .into_iter()
            .map(|(v, _, _)| v)
            .find(|v| v.rep == rep && v.id != except && visit_state(v, at_ms, policy) == "open"))
    }

    fn check_in(&mut self, visit_id: &str, fix: LocationFix) -> Result<FieldEventView> {
        let me = self.user_id()?;
        let policy = self.policy()?;
        let (visit, _, _) = self.visit(visit_id)?;
        if visit.cancelled {
            return Err(ClientError::invalid(
                "visit_cancelled",
                "This visit was cancelled; plan a new one.",
            ));
        }
        if visit.check_in.is_some() {
            return Err(ClientError::invalid(
                "already_checked_in",
                "You have already checked in to this visit.",
            ));
        }
        let customer = self
            .local_customer(visit.customer)?
            .ok_or_else(|| unknown_customer(&visit.customer.to_string()))?;
        let ev = self.evidence(fix, "check_in")?;
        let at = ev.event_time_ms();
        if let Some(open) = self.open_visit_of(me, visit.id, at, &policy)? {
            let name = self
                .local_customer(open.customer)?
                .map(|c| c.name)
                .unwrap_or_else(|| "another customer".into());
            return Err(ClientError::invalid(
                "visit_already_open",
                format!("You are still checked in at {name}; check out there first."),
            ));
        }
        let verdict = trust::grade(
            "check-in",
            &ev,
            &Target::Customer {
                name: &customer.name,
                location: customer.location,
                radius_m: customer.visit_radius_m.unwrap_or(policy.default_radius_m),
            },
            &self.recent_events(me)?,
            &policy,
        );
        self.edit(
            visit_id,
            RecordKind::Visit,
            with_visit(|v| {
                v.check_in = Some(ev);
                Ok(())
            }),
        )?;
        let (visit, conflicts, pending) = self.visit(visit_id)?;
        Ok(FieldEventView {
            visit: Some(self.visit_view_of(visit, conflicts, pending, at, &policy)?),
            punch: None,
            verdict,
        })
    }

    fn check_out(
        &mut self,
        visit_id: &str,
        fix: LocationFix,
        notes: String,
        outcome: &str,
        next_follow_up: Option<String>,
    ) -> Result<FieldEventView> {
        let me = self.user_id()?;
        let policy = self.policy()?;
        let (visit, _, _) = self.visit(visit_id)?;
        let Some(check_in) = visit.check_in.clone() else {
            return Err(ClientError::invalid(
                "not_checked_in",
                "Check in to this visit before checking out.",
            ));
        };
        if visit.check_out.is_some() {
            return Err(ClientError::invalid(
                "already_checked_out",
                "You have already checked out of this visit.",
            ));
        }
        let outcome: VisitOutcome = outcome.trim().parse()?;
        let ev = self.evidence(fix, "check_out.evidence")?;
        let at = ev.event_time_ms();
        if at > auto_close_at(&check_in, &policy) {
            return Err(ClientError::invalid(
                "visit_auto_closed",
                format!(
                    "This visit was closed automatically {} after the check-in; a check-out {} after it is not accepted. Tell your manager what happened.",
                    human_duration(policy.visit_auto_close_ms),
                    human_duration(at - check_in.event_time_ms())
                ),
            ));
        }
        // The customer may have left this device since the check-in (reassigned): the
        // check-out is still the rep's to make, graded without a location to compare with.
        let customer = self.local_customer(visit.customer)?;
        let verdict = trust::grade(
            "check-out",
            &ev,
            &Target::Customer {
                name: customer
                    .as_ref()
                    .map_or("the customer", |c| c.name.as_str()),
                location: customer.as_ref().and_then(|c| c.location),
                radius_m: customer
                    .as_ref()
                    .and_then(|c| c.visit_radius_m)
                    .unwrap_or(policy.default_radius_m),
            },
            &self.recent_events(me)?,
            &policy,
        );
        self.edit(
            visit_id,
            RecordKind::Visit,
            with_visit(|v| {
                v.check_out = Some(CheckOut {
                    evidence: ev,
                    notes: notes.trim().to_owned(),
                    outcome,
                    next_follow_up: opt(next_follow_up),
                });
                Ok(())
            }),
        )?;
        let (visit, conflicts, pending) = self.visit(visit_id)?;
        Ok(FieldEventView {
            visit: Some(self.visit_view_of(visit, conflicts, pending, at, &policy)?),
            punch: None,
            verdict,
        })
    }
}

impl crate::FieldsyncClient {
    /// Plans a visit of the logged-in rep to a customer on this device (`planned_date` as
    /// `YYYY-MM-DD`).
    pub fn plan_visit(
        &self,
        customer_id: String,
        planned_date: Option<String>,
        purpose: String,
    ) -> Result<VisitView> {
        let mut inner = self.lock();
        let me = inner.user_id()?;
        let customer = parse_doc_id(&customer_id, "customer")?;
        if inner.local_customer(customer)?.is_none() {
            return Err(unknown_customer(&customer_id));
        }
        let mut v = Visit::new(customer, me, me);
        v.planned_date = opt(planned_date);
        v.purpose = purpose.trim().to_owned();
        let id = v.id.to_string();
        inner.create(Record::Visit(v))?;
        inner.visit_view(&id)
    }

    /// Checks in to a visit at `fix`, now. Returns the visit and the location verdict against
    /// the customer's location (within the customer's visit radius, or the policy's default).
    pub fn check_in(&self, visit_id: String, fix: LocationFix) -> Result<FieldEventView> {
        self.lock().check_in(&visit_id, fix)
    }

    /// Checks out of a visit at `fix`, now, with the report: `outcome` is `order`,
    /// `interested`, `follow_up`, `no_interest`, `not_met` or `other`; `next_follow_up` is
    /// `YYYY-MM-DD`.
    pub fn check_out(
        &self,
        visit_id: String,
        fix: LocationFix,
        notes: String,
        outcome: String,
        next_follow_up: Option<String>,
    ) -> Result<FieldEventView> {
        self.lock()
            .check_out(&visit_id, fix, notes, &outcome, next_follow_up)
    }

    /// Calls off a visit that has not been checked into.
    pub fn cancel_visit(&self, visit_id: String) -> Result<VisitView> {
        let mut inner = self.lock();
        inner.edit(
            &visit_id,
            RecordKind::Visit,
            with_visit(|v| {
                v.cancelled = true;
                Ok(())
            }),
        )?;
        inner.visit_view(&visit_id)
    }

    /// A manager's review of a visit report: `decision` is `approved` or `comment` (which
    /// needs a comment). Reviews are added, never changed.
    pub fn review_visit(
        &self,
        visit_id: String,
        decision: String,
        comment: String,
    ) -> Result<VisitView> {
        let decision: ReviewDecision = decision.trim().parse()?;
        let mut inner = self.lock();
        let review = Review {
            id: new_item_id(),
            by: inner.user_id()?,
            at_ms: inner.stamp()?.time_ms(),
            decision,
            comment: comment.trim().to_owned(),
        };
        inner.edit(
            &visit_id,
            RecordKind::Visit,
            with_visit(|v| {
                v.reviews.push(review);
                Ok(())
            }),
        )?;
        inner.visit_view(&visit_id)
    }

    /// One visit.
    pub fn get_visit(&self, visit_id: String) -> Result<VisitView> {
        self.lock().visit_view(&visit_id)
    }

    /// Every visit on this device (a manager's phone holds the team's), newest first.
    pub fn list_visits(&self) -> Result<Vec<VisitView>> {
        let inner = self.lock();
        let now = inner.stamp()?.time_ms();
        let policy = inner.policy()?;
        let mut visits = inner.visits()?;
        // Visit ids are UUIDv7: by creation time.
        visits.sort_by_key(|(v, _, _)| std::cmp::Reverse(v.id.to_string()));
        visits
            .into_iter()
            .map(|(v, c, p)| inner.visit_view_of(v, c, p, now, &policy))
            .collect()
    }
}
