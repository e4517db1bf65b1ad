//! The visit record: a field rep's planned or made visit to a customer, with the location
//! evidence of its check-in and check-out, the report written at check-out, and the reviews of
//! the rep's manager.

use super::parse_user;
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::evidence::Evidence;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// What came of a visit.
    VisitOutcome, "visit outcome" {
        Order => "order", Interested => "interested", FollowUp => "follow_up",
        NoInterest => "no_interest", NotMet => "not_met", Other => "other"
    }
);
choice_enum!(
    /// A manager's review of a visit report.
    ReviewDecision, "review decision" { Approved => "approved", Comment => "comment" }
);

/// The report a rep writes when leaving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckOut {
    pub evidence: Evidence,
    pub notes: String,
    pub outcome: VisitOutcome,
    /// `YYYY-MM-DD`: when to see the customer next.
    pub next_follow_up: Option<String>,
}

/// One review of a visit report. Reviews are kept, never edited: a second opinion is a second
/// review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub by: UserId,
    pub at_ms: i64,
    pub decision: ReviewDecision,
    pub comment: String,
}

/// A visit record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: DocId,
    pub customer: DocId,
    /// The rep who makes the visit.
    pub rep: UserId,
    pub created_by: UserId,
    /// `YYYY-MM-DD`, for a planned visit.
    pub planned_date: Option<String>,
    pub purpose: String,
    /// Called off before it happened.
    pub cancelled: bool,
    pub check_in: Option<Evidence>,
    pub check_out: Option<CheckOut>,
    pub reviews: Vec<Review>,
}

impl Visit {
    pub fn new(customer: DocId, rep: UserId, creator: UserId) -> Self {
        Visit {
            id: DocId::new(),
            customer,
            rep,
            created_by: creator,
            planned_date: None,
            purpose: String::new(),
            cancelled: false,
            check_in: None,
            check_out: None,
            reviews: Vec::new(),
        }
    }

    /// `planned`, `open` (checked in), `closed` (checked out) or `cancelled`.
    pub fn state(&self) -> &'static str {
        if self.cancelled {
            "cancelled"
        } else if self.check_out.is_some() {
            "closed"
        } else if self.check_in.is_some() {
            "open"
        } else {
            "planned"
        }
    }

    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let customer = r
            .req_str(root, "customer", "customer")?
            .parse::<DocId>()
            .map_err(|_| {
                Rejection::new("invalid_id", "Field 'customer' must be a record id (UUID).")
            })?;
        let check_in = r
            .opt_obj(root, "check_in", "check_in", ObjType::Map)?
            .map(|o| Evidence::read_fields(r, &o, "check_in"))
            .transpose()?;
        let check_out = match r.opt_obj(root, "check_out", "check_out", ObjType::Map)? {
            None => None,
            Some(o) => {
                let ev = r
                    .opt_obj(&o, "evidence", "check_out.evidence", ObjType::Map)?
                    .ok_or_else(|| {
                        Rejection::new("missing_field", "Field 'check_out.evidence' is required.")
                    })?;
                Some(CheckOut {
                    evidence: Evidence::read_fields(r, &ev, "check_out.evidence")?,
                    notes: r
                        .opt_str(&o, "notes", "check_out.notes")?
                        .unwrap_or_default(),
                    outcome: r.req_str(&o, "outcome", "check_out.outcome")?.parse()?,
                    next_follow_up: r.opt_str(&o, "next_follow_up", "check_out.next_follow_up")?,
                })
            }
        };
        let mut reviews = Vec::new();
        for (id, path, o) in r.items(root, "reviews", "reviews")? {
            reviews.push(Review {
                by: r.req_user(&o, "by", &format!("{path}.by"))?,
                at_ms: r.req_i64(&o, "at_ms", &format!("{path}.at_ms"))?,
                decision: r
                    .req_str(&o, "decision", &format!("{path}.decision"))?
                    .parse()?,
                comment: r
                    .opt_str(&o, "comment", &format!("{path}.comment"))?
                    .unwrap_or_default(),
                id,
            });
        }
        reviews.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ok(Visit {
            id,
            customer,
            rep: parse_user(&r.req_str(root, "rep", "rep")?, "rep")?,
            created_by: parse_user(&r.req_str(root, "created_by", "created_by")?, "created_by")?,
            planned_date: r.opt_str(root, "planned_date", "planned_date")?,
            purpose: r.opt_str(root, "purpose", "purpose")?.unwrap_or_default(),
            cancelled: r.opt_bool(root, "cancelled", "cancelled")?.unwrap_or(false),
            check_in,
            check_out,
            reviews,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "customer", self.customer.as_string())?;
        docio::put(tx, &ROOT, "rep", self.rep.as_string())?;
        docio::put(tx, &ROOT, "created_by", self.created_by.as_string())?;
        docio::put_opt(tx, &ROOT, "planned_date", self.planned_date.as_deref())?;
        docio::put(tx, &ROOT, "purpose", self.purpose.as_str())?;
        docio::put(tx, &ROOT, "cancelled", self.cancelled)?;
        if let Some(ev) = &self.check_in {
            ev.write_at(tx, &ROOT, "check_in")?;
        }
        if let Some(co) = &self.check_out {
            let o = docio::ensure_map(tx, &ROOT, "check_out")?;
            co.evidence.write_at(tx, &o, "evidence")?;
            docio::put(tx, &o, "notes", co.notes.as_str())?;
            docio::put(tx, &o, "outcome", co.outcome.as_str())?;
            docio::put_opt(tx, &o, "next_follow_up", co.next_follow_up.as_deref())?;
        }
        // The map exists from the visit's first change, even empty, like a customer's contacts:
        // two reviewers who each created it with their first review would write two rival
        // maps, and the second review would be refused as a rewrite of 'reviews'.
        let map = docio::ensure_map(tx, &ROOT, "reviews")?;
        for rv in &self.reviews {
            let o = docio::ensure_map(tx, &map, &rv.id)?;
            docio::put(tx, &o, "by", rv.by.as_string())?;
            docio::put(tx, &o, "at_ms", rv.at_ms)?;
            docio::put(tx, &o, "decision", rv.decision.as_str())?;
            docio::put(tx, &o, "comment", rv.comment.as_str())?;
        }
        Ok(())
    }
}
