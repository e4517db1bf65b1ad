//! Sync: push the outbox, pull what changed, and repair.
//!
//! * **Push.** Dirty documents are sent as the changes the server lacks (everything since the
//!   heads it is known to have). Each batch is stored in `outbox_batches` *before* it is sent,
//!   so after a crash or timeout the same batch — same `batch_id`, same body — is sent again
//!   and the server answers it from its idempotency record instead of storing twice. A batch
//!   row is deleted in the same SQLite transaction that applies its answer. When a push has
//!   several batches they are pipelined: batch k is sent from a scoped thread (HTTP only)
//!   while this thread, which owns the database, applies the answer to batch k-1 and builds
//!   and stores batch k+1; at most one batch is in flight.
//! * **Pull.** Pages of changes, snapshots and revocations are applied and the new cursor is
//!   stored in one transaction per page, so a crash never skips items.
//! * **Repair.** The device lists the heads of every document; the server answers with what the
//!   device lacks, what it must delete, and what differs; differing documents are reconciled
//!   with Automerge's own sync protocol, and the device's extra changes then go through an
//!   ordinary push so the server validates them like any other.

use crate::client::{HttpError, Inner, parse_answer};
use crate::edit::{doc_heads, load_doc, save_doc};
use crate::error::{ClientError, Result};
use crate::model::{RejectedChange, RepairReport, SyncReport};
use crate::store::{self, BatchRow, now_ms};
use automerge::sync::{Message, State, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use fieldsync_sync::protocol::{
    B64, DocHeads, PROTOCOL_VERSION, PullItem, PullRequest, PullResponse, PushDoc, PushRequest,
    PushResponse, PushResult, RepairItem, RepairRequest, RepairResponse, RepairSyncRequest,
    RepairSyncResponse, SyncMessage, heads_from_strings, heads_to_strings,
};
use fieldsync_sync::record::RecordKind;
use std::collections::{HashMap, HashSet};
use std::thread::{Scope, ScopedJoinHandle};

/// Most documents in one push batch.
const MAX_BATCH_DOCS: usize = 1000;
/// A batch is closed once its changes reach this many bytes (one document may exceed it alone).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most Automerge sync rounds per repair.
const MAX_REPAIR_ROUNDS: usize = 5;
/// Where push batches go.
const PUSH_PATH: &str = "/v1/sync/push";

/// A push batch being sent on a thread of its own: the batch, the server it went to, and the
/// undecoded answer.
type InFlight<'scope> =
    ScopedJoinHandle<'scope, (BatchRow, String, std::result::Result<Vec<u8>, HttpError>)>;

/// The number of documents in a stored batch body, checked and counted without decoding it;
/// `None` if it is not a push request.
fn batch_doc_count(body: &str) -> Option<usize> {
    /// Only the shape of a stored body.
    #[derive(serde::Deserialize)]
    struct Peek {
        #[allow(dead_code)]
        batch_id: uuid::Uuid,
        docs: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Peek>(body)
        .ok()
        .map(|p| p.docs.len())
}

/// `heads` parsed, if every one of them is a change `doc` holds.
fn known_heads(doc: &Automerge, heads: &[String]) -> Option<Vec<ChangeHash>> {
    let parsed = heads_from_strings(heads).ok()?;
    parsed
        .iter()
        .all(|h| doc.get_change_by_hash(h).is_some())
        .then_some(parsed)
}

/// The changes of `doc` the server lacks, given the heads it is known to have; all changes if
/// those heads are not all known here.
fn changes_since(doc: &Automerge, server_heads: &[String]) -> Vec<Vec<u8>> {
    let since = known_heads(doc, server_heads).unwrap_or_default();
    doc.get_changes(&since)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// Stores a document whose server heads come from the server (a pull, a snapshot, a rejection,
/// a repair): the kept local changes were counted from the old heads, so they are dropped and a
/// later push of the document decodes it.
fn save_synced_doc(
    conn: &rusqlite::Connection,
    doc_id: &str,
    kind: &str,
    doc: &Automerge,
    server_heads: &[String],
    dirty: bool,
) -> Result<()> {
    save_doc(conn, doc_id, kind, doc, server_heads, dirty)?;
    store::pending_clear(conn, doc_id)
}

/// The kept local changes of a document, if they are exactly what the server lacks given
/// `server_heads` and the document's heads `local`: every dependency of a kept change is kept
/// or one of the server heads, and every local head is kept or one of the server heads (so
/// the kept changes and what the server has cover the whole document). They are in the order
/// they were made, dependencies first. `None`: decode the document instead.
pub(crate) fn pending_push(
    pending: Vec<store::PendingChange>,
    server_heads: &[String],
    local: &[String],
) -> Option<Vec<Vec<u8>>> {
    if pending.is_empty() {
        return None;
    }
    let mut known: HashSet<&str> = server_heads.iter().map(String::as_str).collect();
    for p in &pending {
        // Each change's dependencies come before it.
        if !p.deps.as_ref()?.iter().all(|d| known.contains(d.as_str())) {
            return None;
        }
        if !known.insert(p.hash.as_str()) {
            return None; // kept twice, or one the server has: not the simple case
        }
    }
    if !local.iter().all(|h| known.contains(h.as_str())) {
        return None;
    }
    Some(pending.into_iter().map(|p| p.bytes).collect())
}

/// Whether two lists of heads name the same changes (order aside).
fn same_heads(a: &[String], b: &[String]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Whether every change in `changes` is already in a document whose heads are `local`: true
/// when each change no other change in the list depends on is one of those heads (its
/// ancestors, and so the rest of the list, are then in the document too).
fn all_known(changes: &[Change], local: &[String]) -> bool {
    let deps: HashSet<ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .collect();
    let local: HashSet<&str> = local.iter().map(String::as_str).collect();
    changes
        .iter()
        .map(Change::hash)
        .filter(|h| !deps.contains(h))
        .all(|h| local.contains(h.to_string().as_str()))
}

/// Stores a snapshot from the server (`heads`: its heads, empty if the server did not say).
/// Without a local copy the bytes are stored as they came, not decoded (unless the heads must
/// be learnt from them). A local copy is merged with the snapshot (local edits the snapshot
/// lacks are kept and stay queued for push), unless it already is exactly the snapshot.
/// Returns whether the document was new.
fn store_snapshot(
    conn: &rusqlite::Connection,
    device: fieldsync_sync::DeviceId,
    doc_id: &str,
    kind: RecordKind,
    bytes: &[u8],
    heads: &[String],
) -> Result<bool> {
    let Some(state) = store::doc_state(conn, doc_id)? else {
        let heads = if heads.is_empty() {
            doc_heads(&load_doc(bytes, device)?)
        } else {
            heads.to_vec()
        };
        store::doc_put(
            conn,
            doc_id,
            kind.as_str(),
            bytes,
            &heads,
            &heads,
            false,
            None,
        )?;
        return Ok(true);
    };
    if !heads.is_empty() && state.heads.as_deref().is_some_and(|h| same_heads(h, heads)) {
        store::doc_set_sync_state(conn, doc_id, heads, false)?;
        return Ok(false);
    }
    let Some(row) = store::doc_get(conn, doc_id)? else {
        return Ok(false); // cannot happen inside the page's transaction
    };
    let mut snap = load_doc(bytes, device)?;
    let snap_heads = snap.get_heads();
    let mut local = load_doc(&row.bytes, device)?;
    local.merge(&mut snap)?;
    let dirty = !local.get_changes(&snap_heads).is_empty();
    save_synced_doc(
        conn,
        doc_id,
        kind.as_str(),
        &local,
        &heads_to_strings(&snap_heads),
        dirty,
    )?;
    Ok(false)
}

/// Applies one pull item. Returns (applied, revoked) counts.
pub(crate) fn apply_pull_item(
    conn: &rusqlite::Connection,
    device: fieldsync_sync::DeviceId,
    item: PullItem,
) -> Result<(u64, u64)> {
    match item {
        PullItem::Changes {
            doc_id,
            kind,
            changes,
        } => {
            let doc_id = doc_id.to_string();
            let parsed: std::result::Result<Vec<Change>, _> = changes
                .into_iter()
                .map(|c| Change::from_bytes(c.0))
                .collect();
            let Ok(parsed) = parsed else {
                // A damaged item must not block every later sync; repair fetches the document whole.
                return Ok((0, 0));
            };
            let state = store::doc_state(conn, &doc_id)?;
            if let Some(local) = state.as_ref().and_then(|s| s.heads.as_deref())
                && all_known(&parsed, local)
            {
                // Nothing new (this device's own changes, or ones it already has).
                return Ok((1, 0));
            }
            let row = match state {
                Some(_) => store::doc_get(conn, &doc_id)?,
                None => None,
            };
            let mut doc = match &row {
                Some(r) => load_doc(&r.bytes, device)?,
                None => Automerge::new().with_actor(crate::edit::actor_for(device)),
            };
            if doc.apply_changes(parsed).is_err() {
                // As above: skip what cannot be applied; repair reconciles the document.
                return Ok((0, 0));
            }
            if row.is_none() && doc.get_heads().is_empty() {
                // Changes of a document this device lacks that build on changes it lacks too:
                // nothing to store (repair fetches the document whole).
                return Ok((0, 0));
            }
            match row {
                // Local edits wait for push; what the server has is still at least the old heads.
                Some(r) if r.dirty => {
                    save_synced_doc(conn, &doc_id, kind.as_str(), &doc, &r.server_heads, true)?
                }
                _ => save_synced_doc(conn, &doc_id, kind.as_str(), &doc, &doc_heads(&doc), false)?,
            }
            Ok((1, 0))
        }
        PullItem::Snapshot {
            doc_id,
            kind,
            doc,
            heads,
        } => {
            store_snapshot(conn, device, &doc_id.to_string(), kind, &doc.0, &heads)?;
            Ok((1, 0))
        }
        PullItem::Revoke { doc_id, .. } => {
            store::doc_delete(conn, &doc_id.to_string())?;
            Ok((0, 1))
        }
    }
}

impl Inner {
    /// Push, then pull. A device without a cursor pulls first: the first pull brings whole
    /// documents, and pushing before it would only have them come back in it.
    pub fn sync(&mut self) -> Result<SyncReport> {
        self.session()?;
        let mut report = SyncReport::default();
        if store::meta_get(&self.store.conn, "cursor")?.is_none() {
            self.pull(&mut report)?;
        }
        self.push(&mut report)?;
        self.pull(&mut report)?;
        store::meta_set(&self.store.conn, "last_sync_at_ms", &now_ms().to_string())?;
        // Best effort: the policy previews grade with and the sites the worker may punch at.
        self.refresh_attendance_setup()?;
        report.cursor = store::meta_get(&self.store.conn, "cursor")?;
        Ok(report)
    }

    /// Sends one stored batch and applies the answer. A batch the server refuses as a whole
    /// (malformed, too large) is dropped so it cannot block the outbox forever; its documents
    /// stay dirty. `docs` is the number of documents in it, if the caller knows.
    fn send_batch(
        &mut self,
        batch: &BatchRow,
        docs: Option<usize>,
        report: &mut SyncReport,
        retry: &mut HashSet<String>,
    ) -> Result<()> {
        let Some(docs) = docs.or_else(|| batch_doc_count(&batch.body)) else {
            return store::batch_delete(&self.store.conn, &batch.batch_id);
        };
        report.pushed += docs as u64;
        let outcome = self.call_json(PUSH_PATH, batch.body.as_bytes());
        let resp = self.push_answer(batch, outcome)?;
        self.apply_push_answer(batch, resp, report, retry)
    }

    /// The answer to a push of `batch`; a batch the server refuses as a whole (malformed, too
    /// large) is dropped so it cannot block the outbox forever (its documents stay dirty).
    fn push_answer(
        &mut self,
        batch: &BatchRow,
        outcome: Result<PushResponse>,
    ) -> Result<PushResponse> {
        match outcome {
            Ok(r) => Ok(r),
            Err(e @ (ClientError::Invalid { .. } | ClientError::Server { status: 413, .. })) => {
                store::batch_delete(&self.store.conn, &batch.batch_id)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts sending a stored batch of `docs` documents on a thread of `scope`, with an access
    /// token good for at least a minute (refreshed first if need be). The thread only talks
    /// HTTP; the answer is decoded and applied on this thread by [`Inner::land`].
    fn launch<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        batch: BatchRow,
        docs: usize,
        report: &mut SyncReport,
    ) -> Result<InFlight<'scope>> {
        let s = self.fresh_session()?;
        report.pushed += docs as u64;
        let http = self.http.clone();
        Ok(scope.spawn(move || {
            let raw = http.post_bytes(
                &s.server_url,
                PUSH_PATH,
                Some(&s.access_token),
                batch.body.as_bytes(),
            );
            (batch, s.server_url, raw)
        }))
    }

    /// Waits for a launched batch and returns it with its answer. `token_expired` is handled
    /// here as [`Inner::call_json`] does (refresh, then one more try, on this thread), as are
    /// revocation (purge) and a batch refused as a whole (dropped).
    fn land(&mut self, handle: InFlight<'_>) -> Result<(BatchRow, PushResponse)> {
        let (batch, url, raw) = match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let first = raw.and_then(|bytes| parse_answer(&url, PUSH_PATH, &bytes));
        let outcome = self.settle_call(PUSH_PATH, batch.body.as_bytes(), first);
        let resp = self.push_answer(&batch, outcome)?;
        Ok((batch, resp))
    }

    /// Applies the server's answer to a batch, and deletes the batch, in one transaction.
    fn apply_push_answer(
        &mut self,
        batch: &BatchRow,
        resp: PushResponse,
        report: &mut SyncReport,
        retry: &mut HashSet<String>,
    ) -> Result<()> {
        let sent: HashMap<String, Vec<String>> =
            serde_json::from_str(&batch.sent_heads).unwrap_or_default();
        let device = self.device_id;
        let tx = self.store.conn.unchecked_transaction()?;
        for result in resp.results {
            let doc_id = result.doc_id().to_string();
            let Some(state) = store::doc_state(&tx, &doc_id)? else {
                continue;
            };
            match result {
                PushResult::Accepted { heads, .. } => {
                    report.accepted += 1;
                    let sent_heads = sent.get(&doc_id).cloned().unwrap_or_default();
                    let (server_heads, dirty) = match state.heads.as_deref() {
                        // Nothing changed here since: the server has exactly this document...
                        Some(local) if same_heads(local, &heads) => (heads, false),
                        // ...or this document and changes this device has not pulled yet.
                        Some(local) if !sent_heads.is_empty() && same_heads(local, &sent_heads) => {
                            (sent_heads, false)
                        }
                        _ => {
                            let Some(row) = store::doc_get(&tx, &doc_id)? else {
                                continue;
                            };
                            let doc = load_doc(&row.bytes, device)?;
                            match known_heads(&doc, &heads) {
                                Some(h) => (heads, !doc.get_changes(&h).is_empty()),
                                // The server holds changes this device has not pulled yet; it
                                // certainly has everything that was sent.
                                None => {
                                    let dirty = doc_heads(&doc) != sent_heads;
                                    (sent_heads, dirty)
                                }
                            }
                        }
                    };
                    store::doc_set_sync_state(&tx, &doc_id, &server_heads, dirty)?;
                }
                PushResult::Rejected {
                    error, heads, doc, ..
                } => {
                    let server_doc = match doc {
                        Some(bytes) => Some(load_doc(&bytes.0, device)?),
                        None => None,
                    };
                    // What the person wrote is kept with the rejection before the reset drops
                    // it (site diaries: see `diaries::kept_of`).
                    let kept = if state.kind == RecordKind::Diary.as_str() {
                        match store::doc_get(&tx, &doc_id)? {
                            Some(row) => crate::diaries::kept_of(
                                &load_doc(&row.bytes, device)?,
                                &row.server_heads,
                                server_doc.as_ref(),
                            ),
                            None => None,
                        }
                    } else {
                        None
                    };
                    match server_doc {
                        Some(server_doc) => {
                            // Replace, not merge: the refused changes must disappear.
                            save_synced_doc(&tx, &doc_id, &state.kind, &server_doc, &heads, false)?;
                        }
                        None => store::doc_delete(&tx, &doc_id)?,
                    }
                    store::rejection_add_kept(
                        &tx,
                        &doc_id,
                        &error.code,
                        &error.message,
                        kept.as_deref(),
                    )?;
                    report.rejected.push(RejectedChange {
                        doc_id,
                        code: error.code,
                        message: error.message,
                        at_ms: now_ms(),
                        kept,
                    });
                }
                PushResult::MissingDeps { heads, .. } => {
                    let Some(row) = store::doc_get(&tx, &doc_id)? else {
                        continue;
                    };
                    let doc = load_doc(&row.bytes, device)?;
                    let server_heads = if known_heads(&doc, &heads).is_some() {
                        heads
                    } else {
                        Vec::new()
                    };
                    store::doc_set_sync_state(&tx, &doc_id, &server_heads, true)?;
                    retry.insert(doc_id);
                }
            }
        }
        store::batch_delete(&tx, &batch.batch_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a new batch in the outbox (before it is ever sent).
    fn store_new_batch(
        &mut self,
        docs: Vec<PushDoc>,
        sent: &HashMap<String, Vec<String>>,
    ) -> Result<BatchRow> {
        let req = PushRequest {
            v: PROTOCOL_VERSION,
            batch_id: uuid::Uuid::now_v7(),
            docs,
        };
        let batch = BatchRow {
            batch_id: req.batch_id.to_string(),
            body: serde_json::to_string(&req).expect("BUG: a push request always serializes"),
            sent_heads: serde_json::to_string(sent)
                .expect("BUG: a map of strings always serializes"),
        };
        drop(req);
        store::batch_insert(&self.store.conn, &batch)?;
        Ok(batch)
    }

    /// Stores a new batch in the outbox and sends it, pipelined: the batch in flight (if any)
    /// is waited for first, then this one is sent on a thread while the answer to the previous
    /// one is applied here (and, back in [`Inner::push`], the next batch is built and stored).
    /// At most one batch is in flight. A batch that is the only one of its round (`last` and
    /// nothing in flight) is sent on this thread. Batches hold disjoint documents, so applying
    /// one answer while another batch is out changes nothing that batch was built from.
    #[allow(clippy::too_many_arguments)]
    fn queue_batch<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        inflight: &mut Option<InFlight<'scope>>,
        docs: Vec<PushDoc>,
        sent: &HashMap<String, Vec<String>>,
        last: bool,
        report: &mut SyncReport,
        retry: &mut HashSet<String>,
    ) -> Result<()> {
        let n = docs.len();
        let batch = self.store_new_batch(docs, sent)?;
        match inflight.take() {
            None if last => self.send_batch(&batch, Some(n), report, retry),
            None => {
                *inflight = Some(self.launch(scope, batch, n, report)?);
                Ok(())
            }
            Some(prev) => {
                // An error here (network, auth, revocation) stops the pipeline before `batch`
                // is sent: it stays in the outbox for the next sync (or is purged with the rest).
                let (prev, resp) = self.land(prev)?;
                match self.launch(scope, batch, n, report) {
                    Ok(next) => {
                        *inflight = Some(next);
                        self.apply_push_answer(&prev, resp, report, retry)
                    }
                    Err(e @ ClientError::Revoked { .. }) => Err(e),
                    Err(e) => {
                        // Keep what the server answered; `batch` waits for the next sync.
                        self.apply_push_answer(&prev, resp, report, retry)?;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Waits for the batch in flight, if any, and applies its answer.
    fn drain(
        &mut self,
        inflight: &mut Option<InFlight<'_>>,
        report: &mut SyncReport,
        retry: &mut HashSet<String>,
    ) -> Result<()> {
        match inflight.take() {
            Some(h) => {
                let (batch, resp) = self.land(h)?;
                self.apply_push_answer(&batch, resp, report, retry)
            }
            None => Ok(()),
        }
    }

    fn push(&mut self, report: &mut SyncReport) -> Result<()> {
        let mut retry = HashSet::new();
        // First whatever was built before and never answered, unchanged.
        for batch in store::batches_pending(&self.store.conn)? {
            self.send_batch(&batch, None, report, &mut retry)?;
        }
        // Returning from the scope waits for a batch still in flight (after an error: its
        // answer is not applied and the batch is sent again, same id, next sync).
        std::thread::scope(|scope| self.push_dirty(scope, report, retry))
    }

    /// Pushes the dirty documents, in batches sent while the next one is built.
    fn push_dirty<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        report: &mut SyncReport,
        mut retry: HashSet<String>,
    ) -> Result<()> {
        let mut inflight: Option<InFlight<'scope>> = None;
        let mut done: HashSet<String> = HashSet::new();
        let mut retried: HashSet<String> = HashSet::new();
        loop {
            // Documents that hit missing dependencies get one more try, with all their changes.
            for id in retry.drain() {
                if retried.insert(id.clone()) {
                    done.remove(&id);
                }
            }
            let todo: Vec<String> = store::dirty_doc_ids(&self.store.conn)?
                .into_iter()
                .filter(|id| !done.contains(id))
                .collect();
            if todo.is_empty() {
                break;
            }
            let mut docs = Vec::new();
            let mut sent: HashMap<String, Vec<String>> = HashMap::new();
            let mut bytes = 0usize;
            let mut todo = todo.into_iter().peekable();
            while let Some(id) = todo.next() {
                if !done.insert(id.clone()) {
                    continue;
                }
                let Some((state, pending)) = store::push_candidate(&self.store.conn, &id)? else {
                    continue;
                };
                if !state.dirty {
                    continue; // cleaned by an answer applied meanwhile
                }
                if state
                    .heads
                    .as_deref()
                    .is_some_and(|h| same_heads(h, &state.server_heads))
                {
                    // The server already has exactly this document.
                    store::doc_set_sync_state(&self.store.conn, &id, &state.server_heads, false)?;
                    continue;
                }
                // The common case: the changes kept as they were made are all the server lacks,
                // sent as they are without decoding the document.
                let fast = match state.heads {
                    Some(local) if !retried.contains(&id) => {
                        pending_push(pending, &state.server_heads, &local).map(|c| (c, local))
                    }
                    _ => None,
                };
                let (changes, local_heads) = match fast {
                    Some(f) => f,
                    None => {
                        let Some(row) = store::doc_get(&self.store.conn, &id)? else {
                            continue;
                        };
                        // The only decode of the document on the way out.
                        let doc = load_doc(&row.bytes, self.device_id)?;
                        let local_heads = doc_heads(&doc);
                        if row.heads.is_none() {
                            store::doc_set_heads(&self.store.conn, &id, &local_heads)?;
                        }
                        let changes = changes_since(&doc, &row.server_heads);
                        if changes.is_empty() {
                            store::doc_set_sync_state(
                                &self.store.conn,
                                &id,
                                &row.server_heads,
                                false,
                            )?;
                            continue;
                        }
                        (changes, local_heads)
                    }
                };
                let Ok(doc_id) = id.parse() else { continue };
                bytes += changes.iter().map(Vec::len).sum::<usize>();
                sent.insert(id, local_heads);
                docs.push(PushDoc {
                    doc_id,
                    kind: state.kind,
                    changes: changes.into_iter().map(B64).collect(),
                });
                if docs.len() >= MAX_BATCH_DOCS || bytes >= MAX_BATCH_BYTES {
                    let last = todo.peek().is_none();
                    let batch = std::mem::take(&mut docs);
                    self.queue_batch(scope, &mut inflight, batch, &sent, last, report, &mut retry)?;
                    sent.clear();
                    bytes = 0;
                }
            }
            if !docs.is_empty() {
                self.queue_batch(scope, &mut inflight, docs, &sent, true, report, &mut retry)?;
            }
            // The answers decide which documents get another try.
            self.drain(&mut inflight, report, &mut retry)?;
        }
        Ok(())
    }

    fn pull(&mut self, report: &mut SyncReport) -> Result<()> {
        let mut restarted = false;
        loop {
            let cursor = store::meta_get(&self.store.conn, "cursor")?;
            let req = PullRequest {
                v: PROTOCOL_VERSION,
                cursor: cursor.clone(),
                max_bytes: None,
            };
            // A token refresh first, so the send and receive times below frame the pull alone.
            self.fresh_session()?;
            let sent = self.reading()?;
            let resp: PullResponse = match self.call("/v1/sync/pull", &req) {
                Ok(r) => r,
                Err(ClientError::Invalid { code, .. })
                    if code == "invalid_cursor" && !restarted =>
                {
                    // A cursor the server no longer knows: start over (snapshots merge safely).
                    restarted = true;
                    store::meta_delete(&self.store.conn, "cursor")?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Read before the page is applied: applying can take a while.
            let received = self.reading()?;
            let empty = resp.items.is_empty();
            let device = self.device_id;
            let tx = self.store.conn.unchecked_transaction()?;
            for item in resp.items {
                let (applied, revoked) = apply_pull_item(&tx, device, item)?;
                report.pulled += applied;
                report.revoked += revoked;
            }
            store::meta_set(&tx, "cursor", &resp.cursor)?;
            tx.commit()?;
            self.learn_server_offset(&sent, &received, resp.server_time_ms)?;
            let stuck = empty && cursor.as_deref() == Some(resp.cursor.as_str());
            if !resp.more || stuck {
                return Ok(());
            }
        }
    }

    /// Full reconciliation with the server, then a sync.
    pub fn repair(&mut self) -> Result<RepairReport> {
        self.session()?;
        let device = self.device_id;
        let mut report = RepairReport::default();
        let mut heads = Vec::new();
        for row in store::docs_all(&self.store.conn, None)? {
            let Ok(doc_id) = row.doc_id.parse() else {
                continue;
            };
            let doc_heads = match row.heads {
                Some(h) => h,
                None => match load_doc(&row.bytes, device) {
                    Ok(doc) => doc_heads(&doc),
                    Err(_) => continue,
                },
            };
            heads.push(DocHeads {
                doc_id,
                heads: doc_heads,
            });
        }
        let resp: RepairResponse = self.call(
            "/v1/sync/repair",
            &RepairRequest {
                v: PROTOCOL_VERSION,
                docs: heads,
            },
        )?;

        // Snapshots and revocations first.
        let mut differs = Vec::new();
        let tx = self.store.conn.unchecked_transaction()?;
        for item in resp.items {
            match item {
                RepairItem::Snapshot { doc_id, kind, doc } => {
                    store_snapshot(&tx, device, &doc_id.to_string(), kind, &doc.0, &[])?;
                    report.added += 1;
                }
                RepairItem::Revoke { doc_id, .. } => {
                    store::doc_delete(&tx, &doc_id.to_string())?;
                    report.revoked += 1;
                }
                RepairItem::Differs {
                    doc_id,
                    kind,
                    heads,
                } => differs.push((doc_id, kind, heads)),
            }
        }
        tx.commit()?;

        // Then Automerge sync rounds for the documents that differ.
        struct Peer {
            doc: Automerge,
            state: State,
            kind: RecordKind,
            server_heads: Vec<String>,
            active: bool,
        }
        let mut peers: HashMap<fieldsync_sync::DocId, Peer> = HashMap::new();
        for (doc_id, kind, server_heads) in differs {
            let Some(row) = store::doc_get(&self.store.conn, &doc_id.to_string())? else {
                continue;
            };
            let doc = load_doc(&row.bytes, device)?;
            peers.insert(
                doc_id,
                Peer {
                    doc,
                    state: State::new(),
                    kind,
                    server_heads,
                    active: true,
                },
            );
        }
        for _ in 0..MAX_REPAIR_ROUNDS {
            let mut messages = Vec::new();
            for (id, p) in peers.iter_mut().filter(|(_, p)| p.active) {
                match p.doc.generate_sync_message(&mut p.state) {
                    Some(m) => messages.push(SyncMessage {
                        doc_id: *id,
                        message: Some(B64(m.encode())),
                    }),
                    None => p.active = false,
                }
            }
            if messages.is_empty() {
                break;
            }
            let answer: RepairSyncResponse = self.call(
                "/v1/sync/repair/sync",
                &RepairSyncRequest {
                    v: PROTOCOL_VERSION,
                    docs: messages,
                },
            )?;
            let mut answered = HashSet::new();
            for m in answer.docs {
                let Some(p) = peers.get_mut(&m.doc_id) else {
                    continue;
                };
                answered.insert(m.doc_id);
                let Some(msg) = m.message.and_then(|b| Message::decode(&b.0).ok()) else {
                    p.active = false;
                    continue;
                };
                p.server_heads = heads_to_strings(&msg.heads);
                p.doc.receive_sync_message(&mut p.state, msg)?;
            }
            for (id, p) in peers.iter_mut() {
                if !answered.contains(id) {
                    p.active = false;
                }
            }
        }
        let tx = self.store.conn.unchecked_transaction()?;
        for (doc_id, p) in &peers {
            let (server_heads, dirty) = match known_heads(&p.doc, &p.server_heads) {
                Some(h) => (p.server_heads.clone(), !p.doc.get_changes(&h).is_empty()),
                None => (Vec::new(), true),
            };
            save_synced_doc(
                &tx,
                &doc_id.to_string(),
                p.kind.as_str(),
                &p.doc,
                &server_heads,
                dirty,
            )?;
            report.reconciled += 1;
        }
        store::meta_set(&tx, "cursor", &resp.cursor)?;
        tx.commit()?;

        report.sync = self.sync()?;
        Ok(report)
    }
}

impl crate::FieldsyncClient {
    /// Pushes every local edit, then pulls everything new. On `device_revoked` or
    /// `account_disabled` the tenant's local data is purged and [`ClientError::Revoked`] returned.
    ///
    /// Then the queued photo bytes are sent ([`Self::upload_photos`]): the records first, so
    /// they reach the server at once, the bytes after them. An upload failure does not fail the
    /// sync: it is recorded on the item (retried at the next sync) and in
    /// [`SyncReport::uploads`].
    pub fn sync(&self) -> Result<SyncReport> {
        let mut report = self.lock().sync()?;
        report.uploads = self.uploads_after_sync()?;
        Ok(report)
    }

    /// Compares every local document with the server's and fixes what differs (missing,
    /// revoked, diverged documents), then syncs (photo bytes included). For after a restore, a
    /// lost cursor, or doubt.
    pub fn repair(&self) -> Result<RepairReport> {
        let mut report = self.lock().repair()?;
        report.sync.uploads = self.uploads_after_sync()?;
        Ok(report)
    }

    /// The upload run that ends a sync: only a revocation fails the sync; anything else is
    /// reported.
    fn uploads_after_sync(&self) -> Result<crate::model::UploadReport> {
        match self.run_uploads(None) {
            Ok(r) => Ok(r),
            Err(e @ ClientError::Revoked { .. }) => Err(e),
            Err(e) => Ok(crate::model::UploadReport {
                stopped_code: Some(e.code().to_owned()),
                stopped_message: Some(e.message().to_owned()),
                ..Default::default()
            }),
        }
    }
}
