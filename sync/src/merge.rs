//! The pure core of a push: apply one document's incoming changes to its stored state, and
//! decide. The server calls [`apply_incoming`] inside its transaction and stores what it returns;
//! the property tests call it to play a server without one.

use crate::access::{Caller, Directory, can_read};
use crate::error::Rejection;
use crate::ids::DocId;
use crate::record::{Conflict, Record, RecordKind, doc_kind};
use crate::rules::check_change;
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

/// One document's part of a push.
pub struct Incoming {
    pub doc_id: DocId,
    pub kind: RecordKind,
    pub changes: Vec<Vec<u8>>,
}

/// The decision for one document.
#[derive(Debug)]
pub enum Outcome {
    /// Store `snapshot` as the document and append `new_changes` to the change log.
    /// `new_changes` is empty when every change was already known (a retry): store nothing.
    Accepted(Box<Accepted>),
    /// Store nothing. `heads` and `doc` describe the stored version if the caller may see it.
    Rejected {
        error: Rejection,
        heads: Vec<ChangeHash>,
        doc: Option<Vec<u8>>,
    },
    /// Store nothing; the caller must send the changes these depend on.
    MissingDeps {
        missing: Vec<ChangeHash>,
        heads: Vec<ChangeHash>,
    },
}

#[derive(Debug)]
pub struct Accepted {
    pub record: Record,
    pub conflicts: Vec<Conflict>,
    pub snapshot: Vec<u8>,
    pub new_changes: Vec<Vec<u8>>,
    pub heads: Vec<ChangeHash>,
    pub created: bool,
    /// Principals before the change (empty for a new record), to notice access moving.
    pub principals_before: Vec<crate::UserId>,
}

/// Parses each change strictly: a truncated or corrupted chunk is an error, never half-applied.
pub fn parse_changes(raw: &[Vec<u8>]) -> Result<Vec<Change>, Rejection> {
    raw.iter()
        .enumerate()
        .map(|(i, b)| {
            Change::from_bytes(b.clone()).map_err(|e| {
                Rejection::new(
                    "malformed_change",
                    format!("Change {i} is not a valid Automerge change: {e}."),
                )
            })
        })
        .collect()
}

/// Loads a stored document.
pub fn load(stored: &[u8]) -> Result<Automerge, Rejection> {
    Automerge::load(stored).map_err(|e| {
        Rejection::new(
            "corrupt_document",
            format!("Stored document cannot be loaded: {e}."),
        )
    })
}

/// Applies `incoming` to `stored` (None for a document the server does not have) on behalf of `caller`.
pub fn apply_incoming(
    stored: Option<&[u8]>,
    incoming: &Incoming,
    caller: &Caller,
    dir: &dyn Directory,
) -> Outcome {
    let reject = |error: Rejection, doc: Option<&Automerge>, visible: bool| Outcome::Rejected {
        error,
        heads: doc
            .filter(|_| visible)
            .map(|d| d.get_heads())
            .unwrap_or_default(),
        doc: doc.filter(|_| visible).map(|d| d.save()),
    };
    let mut doc = match stored.map(load).transpose() {
        Ok(d) => d,
        Err(e) => return reject(e, None, false),
    };
    let before = match &doc {
        Some(d) => match Record::read(d) {
            Ok((r, _)) => Some(r),
            Err(e) => return reject(e, None, false),
        },
        None => None,
    };
    let visible = before
        .as_ref()
        .is_none_or(|b| can_read(caller, &b.principals(), dir));
    if !visible {
        // Same answer as for a document that does not exist, so ids reveal nothing.
        return reject(
            Rejection::new("forbidden", "You may not change this record."),
            None,
            false,
        );
    }
    let changes = match parse_changes(&incoming.changes) {
        Ok(c) => c,
        Err(e) => return reject(e, doc.as_ref(), true),
    };
    let created = doc.is_none();
    let mut working = doc.take().unwrap_or_default();
    let before_heads = working.get_heads();
    let pristine = if created { None } else { Some(working.fork()) };
    if let Err(e) = working.apply_changes(changes) {
        return reject(
            Rejection::new(
                "malformed_change",
                format!("The changes cannot be applied: {e}."),
            ),
            pristine.as_ref(),
            true,
        );
    }
    let missing = working.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Outcome::MissingDeps {
            missing,
            heads: before_heads,
        };
    }
    let heads = working.get_heads();
    if heads == before_heads {
        // Every change was already here: a retry. Accept, store nothing new.
        if let Some(before) = before {
            return Outcome::Accepted(Box::new(Accepted {
                principals_before: before.principals(),
                record: before,
                conflicts: Vec::new(),
                snapshot: Vec::new(),
                new_changes: Vec::new(),
                heads,
                created: false,
            }));
        }
        return reject(
            Rejection::new("empty_document", "A new record must contain changes."),
            None,
            false,
        );
    }
    let kind_field = doc_kind(&working);
    if kind_field.as_deref() != Some(incoming.kind.as_str()) {
        return reject(
            Rejection::new(
                "kind_mismatch",
                format!(
                    "The document is a {} but was sent as a {}.",
                    kind_field.unwrap_or_else(|| "record of no kind".into()),
                    incoming.kind
                ),
            ),
            pristine.as_ref(),
            true,
        );
    }
    let (record, conflicts) = match Record::read(&working) {
        Ok(r) => r,
        Err(e) => return reject(e, pristine.as_ref(), true),
    };
    if let Err(e) = check_change(incoming.doc_id, before.as_ref(), &record, caller, dir) {
        return reject(e, pristine.as_ref(), true);
    }
    let new_changes = working
        .get_changes(&before_heads)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    Outcome::Accepted(Box::new(Accepted {
        principals_before: before.map(|b| b.principals()).unwrap_or_default(),
        snapshot: working.save(),
        new_changes,
        heads,
        created,
        record,
        conflicts,
    }))
}
