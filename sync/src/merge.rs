//! The pure core of a push: apply one document's incoming changes to its stored state, and
//! decide. The server calls [`apply_incoming`] inside its transaction and stores what it returns;
//! the property tests call it to play a server without one.

use crate::access::{Caller, Directory, can_read};
use crate::error::Rejection;
use crate::ids::DocId;
use crate::record::{Conflict, Diary, Record, RecordKind, doc_kind};
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
///
/// A new document is stored as the change chunks that created it (they are its whole, short
/// history, and `Automerge::load` reads them like a saved document); an existing one is stored
/// compacted with `Automerge::save` after every accepted change.
pub fn apply_incoming(
    stored: Option<&[u8]>,
    incoming: &Incoming,
    caller: &Caller,
    dir: &dyn Directory,
) -> Outcome {
    let hidden = |error: Rejection| Outcome::Rejected {
        error,
        heads: Vec::new(),
        doc: None,
    };
    let doc = match stored.map(load).transpose() {
        Ok(d) => d,
        Err(e) => return hidden(e),
    };
    let before = match &doc {
        Some(d) => match Record::read(d) {
            Ok((r, _)) => Some(r),
            Err(e) => return hidden(e),
        },
        None => None,
    };
    if before
        .as_ref()
        .is_some_and(|b| !can_read(caller, &b.principals_in(dir), dir))
    {
        // Same answer as for a document that does not exist, so ids reveal nothing.
        return hidden(Rejection::new(
            "forbidden",
            "You may not change this record.",
        ));
    }
    let before_heads = doc.as_ref().map(|d| d.get_heads()).unwrap_or_default();
    // Refusals carry the stored version, so the phone can return to it.
    let refuse = |error: Rejection| Outcome::Rejected {
        error,
        heads: before_heads.clone(),
        doc: stored.map(<[u8]>::to_vec),
    };
    let changes = match parse_changes(&incoming.changes) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    let created = doc.is_none();
    let mut fresh: Vec<(ChangeHash, &[u8])> = Vec::new();
    if created {
        let mut seen = std::collections::HashSet::new();
        fresh = changes
            .iter()
            .zip(&incoming.changes)
            .filter(|(c, _)| seen.insert(c.hash()))
            .map(|(c, raw)| (c.hash(), raw.as_slice()))
            .collect();
    }
    // Every chunk parsed above, so loading them cannot stop half way. For a new document,
    // loading its change chunks is cheaper than applying them to an empty document.
    let fresh_bytes: Vec<u8> = fresh
        .iter()
        .flat_map(|(_, raw)| raw.iter().copied())
        .collect();
    let applied = match doc {
        Some(mut d) => d.apply_changes(changes).map(|()| d),
        // Loading refuses changes whose dependencies are missing; applying queues them, so
        // the missing ones can be reported.
        None => Automerge::load(&fresh_bytes).or_else(|_| {
            let mut d = Automerge::new();
            d.apply_changes(changes).map(|()| d)
        }),
    };
    let working = match applied {
        Ok(d) => d,
        Err(e) => {
            return refuse(Rejection::new(
                "malformed_change",
                format!("The changes cannot be applied: {e}."),
            ));
        }
    };
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
        return match before {
            Some(before) => Outcome::Accepted(Box::new(Accepted {
                principals_before: before.principals_in(dir),
                record: before,
                conflicts: Vec::new(),
                snapshot: Vec::new(),
                new_changes: Vec::new(),
                heads,
                created: false,
            })),
            None => hidden(Rejection::new(
                "empty_document",
                "A new record must contain changes.",
            )),
        };
    }
    let kind_field = doc_kind(&working);
    if kind_field.as_deref() != Some(incoming.kind.as_str()) {
        return refuse(Rejection::new(
            "kind_mismatch",
            format!(
                "The document is a {} but was sent as a {}.",
                kind_field.unwrap_or_else(|| "record of no kind".into()),
                incoming.kind
            ),
        ));
    }
    let (record, conflicts) = match Record::read(&working) {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    if let Err(e) = check_change(incoming.doc_id, before.as_ref(), &record, caller, dir) {
        return refuse(e);
    }
    if created
        && let Record::Diary(d) = &record
        && Diary::genesis_hash(d.project, &d.site, &d.day)
            .map_or(true, |h| working.get_change_by_hash(&h).is_none())
    {
        // Two phones that opened the day offline must share one document: both start from
        // the same first change, or their containers would be rivals and one's text lost.
        return refuse(Rejection::new(
            "diary_not_from_genesis",
            "A site diary must start from its shared first change (Diary::genesis), so every phone's copy of the day is one document.",
        ));
    }
    if let Some(Record::Punch(_)) = &before {
        // Append-only: a punch's document takes no change after the one that made it.
        return refuse(Rejection::new(
            "punch_immutable",
            "Punches cannot be changed or deleted; a missed or wrong punch is fixed by a make-up request your manager approves.",
        ));
    }
    if let Some(b) = &before
        && let Err(e) = crate::rules::check_settled(b, &conflicts)
    {
        return refuse(e);
    }
    let (new_changes, snapshot) = if created {
        let new_changes: Vec<Vec<u8>> = fresh.iter().map(|(_, raw)| raw.to_vec()).collect();
        (new_changes, fresh_bytes)
    } else {
        let new_changes = working
            .get_changes(&before_heads)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        (new_changes, working.save())
    };
    Outcome::Accepted(Box::new(Accepted {
        principals_before: before.map(|b| b.principals_in(dir)).unwrap_or_default(),
        snapshot,
        new_changes,
        heads,
        created,
        record,
        conflicts,
    }))
}
