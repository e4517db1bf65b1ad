//! Attendance records: the punch (a clock-in or clock-out at a project site, with its location
//! evidence; append-only, nobody edits one) and the make-up request (a missed punch, asked for by
//! the worker and approved or refused by their manager).

use super::parse_user;
use crate::docio::{self, Obj, Reader};
use crate::error::Rejection;
use crate::evidence::Evidence;
use crate::ids::{DocId, UserId};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};

choice_enum!(
    /// Clocking in or out.
    Direction, "punch direction" { In => "in", Out => "out" }
);
choice_enum!(
    /// A manager's answer to a make-up request.
    MakeupStatus, "makeup decision" { Approved => "approved", Rejected => "rejected" }
);

/// A clock-in or clock-out. Written once by the worker's phone; any later change is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Punch {
    pub id: DocId,
    pub user: UserId,
    pub project: DocId,
    /// The site's id within the project.
    pub site: String,
    pub direction: Direction,
    pub evidence: Evidence,
    pub note: Option<String>,
}

/// The manager's decision on a make-up request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MakeupDecision {
    pub status: MakeupStatus,
    pub by: UserId,
    pub at_ms: i64,
    pub comment: Option<String>,
}

/// A request to record a punch that was missed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Makeup {
    pub id: DocId,
    pub user: UserId,
    pub project: DocId,
    pub site: String,
    pub direction: Direction,
    /// When the missed punch should have been, ms since the Unix epoch (UTC).
    pub at_ms: i64,
    pub reason: String,
    pub decision: Option<MakeupDecision>,
}

fn req_doc<D: ReadDoc>(r: &Reader<'_, D>, o: &Obj<'_>, key: &str) -> Result<DocId, Rejection> {
    r.req_str(o, key, key)?.parse().map_err(|_| {
        Rejection::new(
            "invalid_id",
            format!("Field '{key}' must be a record id (UUID)."),
        )
    })
}

impl Punch {
    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let ev = r
            .opt_obj(root, "evidence", "evidence", ObjType::Map)?
            .ok_or_else(|| {
                Rejection::new("missing_evidence", "A punch needs its location evidence.")
            })?;
        Ok(Punch {
            id,
            user: parse_user(&r.req_str(root, "user", "user")?, "user")?,
            project: req_doc(r, root, "project")?,
            site: r.req_str(root, "site", "site")?,
            direction: r.req_str(root, "direction", "direction")?.parse()?,
            evidence: Evidence::read_fields(r, &ev, "evidence")?,
            note: r.opt_str(root, "note", "note")?,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "user", self.user.as_string())?;
        docio::put(tx, &ROOT, "project", self.project.as_string())?;
        docio::put(tx, &ROOT, "site", self.site.as_str())?;
        docio::put(tx, &ROOT, "direction", self.direction.as_str())?;
        self.evidence.write_at(tx, &ROOT, "evidence")?;
        docio::put_opt(tx, &ROOT, "note", self.note.as_deref())
    }
}

impl Makeup {
    pub(crate) fn read_fields<D: ReadDoc>(
        r: &Reader<'_, D>,
        root: &Obj<'_>,
        id: DocId,
    ) -> Result<Self, Rejection> {
        let decision = match r.opt_obj(root, "decision", "decision", ObjType::Map)? {
            None => None,
            Some(o) => Some(MakeupDecision {
                status: r.req_str(&o, "status", "decision.status")?.parse()?,
                by: parse_user(&r.req_str(&o, "by", "decision.by")?, "decision.by")?,
                at_ms: r.opt_i64(&o, "at_ms", "decision.at_ms")?.ok_or_else(|| {
                    Rejection::new("missing_field", "Field 'decision.at_ms' is required.")
                })?,
                comment: r.opt_str(&o, "comment", "decision.comment")?,
            }),
        };
        Ok(Makeup {
            id,
            user: parse_user(&r.req_str(root, "user", "user")?, "user")?,
            project: req_doc(r, root, "project")?,
            site: r.req_str(root, "site", "site")?,
            direction: r.req_str(root, "direction", "direction")?.parse()?,
            at_ms: r
                .opt_i64(root, "at_ms", "at_ms")?
                .ok_or_else(|| Rejection::new("missing_field", "Field 'at_ms' is required."))?,
            reason: r.opt_str(root, "reason", "reason")?.unwrap_or_default(),
            decision,
        })
    }

    pub(crate) fn write_fields<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        docio::put(tx, &ROOT, "user", self.user.as_string())?;
        docio::put(tx, &ROOT, "project", self.project.as_string())?;
        docio::put(tx, &ROOT, "site", self.site.as_str())?;
        docio::put(tx, &ROOT, "direction", self.direction.as_str())?;
        docio::put(tx, &ROOT, "at_ms", self.at_ms)?;
        docio::put(tx, &ROOT, "reason", self.reason.as_str())?;
        if let Some(d) = &self.decision {
            let o = docio::ensure_map(tx, &ROOT, "decision")?;
            docio::put(tx, &o, "status", d.status.as_str())?;
            docio::put(tx, &o, "by", d.by.as_string())?;
            docio::put(tx, &o, "at_ms", d.at_ms)?;
            docio::put_opt(tx, &o, "comment", d.comment.as_deref())?;
        }
        Ok(())
    }
}
