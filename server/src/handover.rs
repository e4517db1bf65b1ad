//! Staff handover (issue 5): when someone leaves, an admin moves every customer they own, in
//! one step, to another rep or manager or to the tenant's shared pool, and may disable the
//! account in the same step (its devices are revoked and purge the tenant's data at their next
//! contact). Managers hand pooled customers out to their team.
//!
//! A move is an ordinary change of the customer's `owner` field, made by the server on the
//! caller's behalf and pushed through the same path (and rules) as a phone's change, many
//! customers per push. So the history stays in each customer's document, the projections and
//! access rows follow, and the new owner's phone is granted the whole document at its next
//! pull. Every handover is recorded (`handovers`, migration 0007) before its customers move,
//! and can be undone once: the customers still where it put them go back.

use crate::store::handover::Handover;
use crate::store::{PushItem, PushOutcome, Store, StoreError, now_ms};
use fieldsync_sync::access::{Caller, POOL, Role};
use fieldsync_sync::merge::Incoming;
use fieldsync_sync::protocol::PushResult;
use fieldsync_sync::record::RecordKind;
use fieldsync_sync::{DeviceId, DocId, Record, UserId};
use serde::Serialize;

/// Customers per push: a handover of thousands of customers is a few pushes, not thousands.
pub const BATCH: usize = 500;

/// Who the command line acts as: an admin of the tenant whose id is the max UUID, which no
/// user (UUIDv7) has. Its moves are logged under that id, so the audit tells them apart.
pub fn operator(tenant: fieldsync_sync::TenantId) -> Caller {
    Caller {
        tenant,
        user: UserId(uuid::Uuid::max()),
        role: Role::Admin,
    }
}

/// Where a handover moves the customers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    User(UserId),
    Pool,
}

impl Target {
    /// The owner the customers get.
    pub fn owner(self) -> UserId {
        match self {
            Target::User(u) => u,
            Target::Pool => POOL,
        }
    }
}

/// Why a handover, an undo or an assignment was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// No such user, customer or handover in the caller's tenant.
    #[error("no {0} with that id")]
    NotFound(&'static str),
    /// The request cannot be carried out; `code` is stable, `message` for people.
    #[error("{message}")]
    Refused { code: String, message: String },
}

fn refused(code: &'static str, message: impl Into<String>) -> HandoverError {
    HandoverError::Refused {
        code: code.to_owned(),
        message: message.into(),
    }
}

/// A customer a push refused to move, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Refusal {
    pub customer_id: String,
    pub error: String,
    pub message: String,
}

/// A customer an undo left where it is, because it moved again after the handover.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skipped {
    pub customer_id: String,
    /// Who owns it now (the nil id for the pool).
    pub owner: String,
}

/// What a handover did.
#[derive(Serialize)]
pub struct HandoverOutcome {
    /// The recorded handover; `None` when there was nothing to move.
    pub handover: Option<Handover>,
    pub moved: Vec<String>,
    pub refused: Vec<Refusal>,
    /// Whether the user is now disabled by this request.
    pub disabled: bool,
    pub message: String,
    /// The pushes made, for the caller to announce to live phones.
    #[serde(skip)]
    pub pushes: Vec<PushOutcome>,
}

/// What an undo did.
#[derive(Serialize)]
pub struct UndoOutcome {
    pub handover: Handover,
    pub moved_back: Vec<String>,
    /// Already with the original owner (an earlier, interrupted undo moved them).
    pub already_back: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub refused: Vec<Refusal>,
    pub message: String,
    #[serde(skip)]
    pub pushes: Vec<PushOutcome>,
}

/// The result of moving a set of customers.
#[derive(Default)]
struct Moves {
    moved: Vec<DocId>,
    refused: Vec<Refusal>,
    /// Customers left alone (their owner was not the one to move from), with that owner.
    left: Vec<(DocId, UserId)>,
    pushes: Vec<PushOutcome>,
}

/// Which customers to move where: those owned by `from` (any owner but `to` when `None`).
#[derive(Clone, Copy)]
struct Move {
    from: Option<UserId>,
    to: UserId,
}

/// One batch's owner changes, as push items, and the customers left alone.
struct Batch {
    items: Vec<PushItem>,
    left: Vec<(DocId, UserId)>,
}

/// The owner changes for one batch. Pure and CPU-bound (every document is loaded and read):
/// run off the async runtime.
fn owner_changes(
    ids: &[DocId],
    docs: &std::collections::HashMap<DocId, Vec<u8>>,
    mv: Move,
) -> Result<Batch, StoreError> {
    let mut items = Vec::new();
    let mut left = Vec::new();
    for id in ids {
        // A customer deleted since cannot have moved: nothing to do for it.
        let Some(bytes) = docs.get(id) else { continue };
        let corrupt = |what: &str| StoreError::Corrupt(format!("customer {id}: {what}"));
        let mut doc = automerge::Automerge::load(bytes).map_err(|_| corrupt("unreadable"))?;
        let (mut record, _) = Record::read(&doc).map_err(|e| corrupt(&e.message))?;
        let Record::Customer(c) = &mut record else {
            return Err(corrupt("not a customer"));
        };
        let moves = match mv.from {
            Some(from) => c.owner == from,
            None => c.owner != mv.to,
        };
        if !moves {
            left.push((*id, c.owner));
            continue;
        }
        c.owner = mv.to;
        // A fresh actor per edit, as for every server edit (see `http::field::edit_record`).
        doc.set_actor(automerge::ActorId::random());
        let heads = doc.get_heads();
        let mut tx = doc.transaction();
        record.write(&mut tx).map_err(|_| corrupt("unwritable"))?;
        tx.commit();
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&heads)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        if !changes.is_empty() {
            items.push(PushItem::Apply(Incoming {
                doc_id: *id,
                kind: RecordKind::Customer,
                changes,
            }));
        }
    }
    Ok(Batch { items, left })
}

/// Moves the customers `mv` selects through the push path as `caller`, [`BATCH`] per push.
async fn move_customers(
    store: &dyn Store,
    caller: &Caller,
    ids: &[DocId],
    mv: Move,
) -> Result<Moves, HandoverError> {
    let mut out = Moves::default();
    for chunk in ids.chunks(BATCH) {
        let docs = store.customer_snapshots(caller.tenant, chunk).await?;
        let chunk = chunk.to_vec();
        let Batch { items, left } =
            tokio::task::spawn_blocking(move || owner_changes(&chunk, &docs, mv))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??;
        out.left.extend(left);
        if items.is_empty() {
            continue;
        }
        // Not any phone's device: every device of every reader gets the changes at its next pull.
        let pushed = store
            .push(caller, DeviceId::new(), uuid::Uuid::now_v7(), items)
            .await?;
        for r in &pushed.response.results {
            match r {
                PushResult::Accepted { doc_id, .. } => out.moved.push(*doc_id),
                PushResult::Rejected { doc_id, error, .. } => out.refused.push(Refusal {
                    customer_id: doc_id.as_string(),
                    error: error.code.clone(),
                    message: error.message.clone(),
                }),
                PushResult::MissingDeps { doc_id, .. } => out.refused.push(Refusal {
                    customer_id: doc_id.as_string(),
                    error: "changed_meanwhile".into(),
                    message:
                        "The customer changed while it was being moved; run the handover again."
                            .into(),
                }),
            }
        }
        out.pushes.push(pushed);
    }
    Ok(out)
}

fn strings(ids: &[DocId]) -> Vec<String> {
    ids.iter().map(DocId::as_string).collect()
}

/// Checks that `to` may receive customers: an active rep or manager of the caller's tenant.
async fn check_receiver(
    store: &dyn Store,
    caller: &Caller,
    to: UserId,
) -> Result<(), HandoverError> {
    let user = store
        .user(caller.tenant, to)
        .await?
        .ok_or(HandoverError::NotFound("user"))?;
    if user.disabled {
        return Err(refused(
            "receiver_disabled",
            format!("{} is disabled and cannot receive customers.", user.email),
        ));
    }
    if !matches!(user.role, Role::FieldRep | Role::Manager) {
        return Err(refused(
            "receiver_not_allowed",
            format!(
                "{} is {}; customers go to a field rep or a manager (or the shared pool).",
                user.email, user.role
            ),
        ));
    }
    Ok(())
}

/// Moves every customer `from` owns to `to`, disabling `from` first when `disable` is set.
/// The caller must be an admin (the HTTP layer and the CLI check). A retry after everything
/// moved moves nothing, records nothing and says so.
pub async fn handover(
    store: &dyn Store,
    caller: &Caller,
    from: UserId,
    to: Target,
    disable: bool,
) -> Result<HandoverOutcome, HandoverError> {
    let source = store
        .user(caller.tenant, from)
        .await?
        .ok_or(HandoverError::NotFound("user"))?;
    if let Target::User(u) = to {
        if u == from {
            return Err(refused(
                "same_user",
                "A handover moves customers to someone else; 'to' names the same user as 'from'.",
            ));
        }
        check_receiver(store, caller, u).await?;
    }
    if disable && from == caller.user {
        return Err(refused(
            "cannot_disable_self",
            "You cannot disable your own account.",
        ));
    }
    // Disabled first: the departing user's phones stop syncing before their customers move.
    if disable {
        store.set_user_disabled(caller.tenant, from, true).await?;
    }
    let ids = store.owned_customers(caller.tenant, from).await?;
    let whom = match to {
        Target::User(_) => "the new owner",
        Target::Pool => "the shared pool",
    };
    if ids.is_empty() {
        return Ok(HandoverOutcome {
            handover: None,
            moved: Vec::new(),
            refused: Vec::new(),
            disabled: disable,
            message: format!(
                "{} owns no customers: nothing was moved (a repeated handover moves nothing).",
                source.email
            ),
            pushes: Vec::new(),
        });
    }
    // Recorded before anything moves, naming what is about to move; corrected below.
    let mut record = Handover {
        id: uuid::Uuid::now_v7().to_string(),
        from_user_id: from.as_string(),
        to_user_id: match to {
            Target::User(u) => Some(u.as_string()),
            Target::Pool => None,
        },
        by_user_id: caller.user.as_string(),
        at: now_ms(),
        disabled: disable,
        customer_ids: strings(&ids),
        undone_at: None,
        undone_by: None,
        undo_report: None,
    };
    store.insert_handover(caller.tenant, &record).await?;
    let target = to.owner();
    let moves = move_customers(
        store,
        caller,
        &ids,
        Move {
            from: Some(from),
            to: target,
        },
    )
    .await?;
    let moved = strings(&moves.moved);
    if moved != record.customer_ids {
        store
            .set_handover_customers(caller.tenant, &record.id, &moved)
            .await?;
        record.customer_ids = moved.clone();
    }
    let message = if moves.refused.is_empty() {
        format!(
            "Moved {} customers of {} to {whom}.",
            moved.len(),
            source.email
        )
    } else {
        format!(
            "Moved {} customers of {} to {whom}; {} could not be moved (see 'refused').",
            moved.len(),
            source.email,
            moves.refused.len()
        )
    };
    Ok(HandoverOutcome {
        handover: Some(record),
        moved,
        refused: moves.refused,
        disabled: disable,
        message,
        pushes: moves.pushes,
    })
}

/// Undoes a handover: the customers still where it put them go back to the user it took them
/// from; those moved again since stay and are reported. A handover is undone once.
pub async fn undo(
    store: &dyn Store,
    caller: &Caller,
    id: &str,
) -> Result<UndoOutcome, HandoverError> {
    let h = store
        .handover(caller.tenant, id)
        .await?
        .ok_or(HandoverError::NotFound("handover"))?;
    if h.undone_at.is_some() {
        return Err(refused(
            "already_undone",
            "This handover has already been undone; it can be undone only once.",
        ));
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("handover {id}: {what}"));
    let from: UserId = h.from_user_id.parse().map_err(|_| corrupt("from"))?;
    let to: UserId = match &h.to_user_id {
        Some(u) => u.parse().map_err(|_| corrupt("to"))?,
        None => POOL,
    };
    let source = store
        .user(caller.tenant, from)
        .await?
        .ok_or_else(|| corrupt("its user is gone"))?;
    if source.disabled {
        return Err(refused(
            "user_disabled",
            format!(
                "{} is disabled: enable the account first (POST /v1/admin/users/{from}/enable), then undo.",
                source.email
            ),
        ));
    }
    let ids: Vec<DocId> = h
        .customer_ids
        .iter()
        .map(|c| c.parse().map_err(|_| corrupt("customer id")))
        .collect::<Result<_, _>>()?;
    let moves = move_customers(
        store,
        caller,
        &ids,
        Move {
            from: Some(to),
            to: from,
        },
    )
    .await?;
    let (already, skipped): (Vec<_>, Vec<_>) = moves.left.iter().partition(|(_, o)| *o == from);
    let moved_back = strings(&moves.moved);
    let already_back: Vec<String> = already.iter().map(|(d, _)| d.as_string()).collect();
    let skipped: Vec<Skipped> = skipped
        .iter()
        .map(|(d, o)| Skipped {
            customer_id: d.as_string(),
            owner: o.as_string(),
        })
        .collect();
    let report = serde_json::json!({
        "moved_back": moved_back,
        "already_back": already_back,
        "skipped": skipped,
        "refused": moves.refused,
    });
    if !store
        .mark_handover_undone(caller.tenant, id, caller.user, now_ms(), &report)
        .await?
    {
        return Err(refused(
            "already_undone",
            "This handover has already been undone; it can be undone only once.",
        ));
    }
    let handover = store
        .handover(caller.tenant, id)
        .await?
        .ok_or(HandoverError::NotFound("handover"))?;
    let message = format!(
        "Moved {} customers back to {}; {} had moved again since and stay where they are.",
        moved_back.len(),
        source.email,
        skipped.len()
    );
    Ok(UndoOutcome {
        handover,
        moved_back,
        already_back,
        skipped,
        refused: moves.refused,
        message,
        pushes: moves.pushes,
    })
}

/// Gives one customer to `owner` as `caller` (a manager handing out from the pool to their
/// team, or an admin to anyone). The rules of the push path decide; the refusals come back
/// as [`HandoverError::Refused`] with the rule's code.
pub async fn assign(
    store: &dyn Store,
    caller: &Caller,
    customer: DocId,
    owner: UserId,
) -> Result<(Record, Vec<PushOutcome>), HandoverError> {
    if !matches!(caller.role, Role::Manager | Role::Admin) {
        return Err(refused(
            "forbidden",
            "Only managers and admins can assign customers.",
        ));
    }
    // Only what the caller may read (a manager: the pool and their team's customers).
    let (kind, _) = store
        .readable_doc(caller, customer)
        .await?
        .ok_or(HandoverError::NotFound("customer"))?;
    if kind != RecordKind::Customer.as_str() {
        return Err(HandoverError::NotFound("customer"));
    }
    check_receiver(store, caller, owner).await?;
    let moves = move_customers(
        store,
        caller,
        &[customer],
        Move {
            from: None,
            to: owner,
        },
    )
    .await?;
    if let Some(r) = moves.refused.into_iter().next() {
        return Err(HandoverError::Refused {
            code: r.error,
            message: r.message,
        });
    }
    let bytes = store
        .customer_snapshots(caller.tenant, &[customer])
        .await?
        .remove(&customer)
        .ok_or(HandoverError::NotFound("customer"))?;
    let doc = automerge::Automerge::load(&bytes)
        .map_err(|_| StoreError::Corrupt(format!("customer {customer}")))?;
    let (record, _) =
        Record::read(&doc).map_err(|_| StoreError::Corrupt(format!("customer {customer}")))?;
    Ok((record, moves.pushes))
}
