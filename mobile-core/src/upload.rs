//! The upload queue of photo bytes and the resumable blob protocol (`sync/PROTOCOL.md`, "Photo
//! bytes: resumable upload").
//!
//! For each queued item, oldest first: `POST /v1/blobs {sha256, size, mime}` says how many bytes
//! the server already holds (`received`), or that it has the whole blob (`complete`: nothing is
//! sent, the same photo twice costs one small request). Then `PUT /v1/blobs/{sha256}?offset=N`
//! sends chunks of at most [`CHUNK_BYTES`] from `received` on, read from the device's copy, each
//! answer saying the new `received`, until `complete`. Always asking first makes resuming after
//! a restart, a cut connection or a lost answer the ordinary path.
//!
//! Refusals: `409 offset_mismatch` carries `received`: continue from there; `404 no_upload`
//! (the server dropped the session): start again with `POST`; `422 hash_mismatch`: the item
//! fails with that error. A network error stops the run (the rest waits for the next one);
//! a server error (5xx) is recorded on the item and the run moves on; a refusal no retry can
//! cure (format, size) fails the item. An item's progress, attempts and last error are stored
//! as they happen, so nothing is lost by a crash or a kill. A failed item is not retried by
//! itself; attaching the photo again queues it anew.
//!
//! A run holds the client's lock only between requests: the app stays usable (photos can be
//! taken, records synced) while megabytes go out. One run at a time.

use crate::FieldsyncClient;
use crate::client::{Http, HttpError};
use crate::error::{ClientError, Result};
use crate::model::{UploadItem, UploadQueueStatus, UploadReport};
use crate::photos::{local_file, sha256_file};
use crate::store::{self, SessionRow, UploadRow, UploadState};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::TryLockError;

/// The most bytes sent in one request. The protocol allows 8 MiB; 1 MiB keeps what a cut
/// connection costs small on a mobile network and a request well inside its timeout.
pub(crate) const CHUNK_BYTES: usize = 1024 * 1024;
/// How many times one item may start over (`no_upload`, a server that holds every byte but has
/// not said `complete`) or be told another offset without progress, per run.
const MAX_RESTARTS: u32 = 3;

const BLOBS_PATH: &str = "/v1/blobs";

/// Why a run with a byte budget ended.
const MAX_BYTES_REACHED: (&str, &str) = (
    "max_bytes_reached",
    "The bytes allowed for this run are sent; the rest waits for the next one.",
);

/// `POST /v1/blobs`.
#[derive(Serialize)]
struct Begin<'a> {
    sha256: &'a str,
    size: u64,
    mime: &'a str,
}

/// What the server says of an upload (every answer of the blob routes).
#[derive(Deserialize)]
struct BlobState {
    received: u64,
    complete: bool,
}

/// What to do after an item.
enum Next {
    /// Go on with the next item.
    Continue,
    /// End the run (offline, out of budget): the rest waits for the next run.
    Stop,
}

/// A run in progress.
struct Run {
    /// Bytes still allowed, if limited.
    budget: Option<u64>,
    report: UploadReport,
}

impl Run {
    fn stop(&mut self, code: &str, message: &str) -> Next {
        self.report.stopped_code = Some(code.to_owned());
        self.report.stopped_message = Some(message.to_owned());
        Next::Stop
    }
}

fn item_of(dir: &std::path::Path, u: UploadRow) -> UploadItem {
    UploadItem {
        local_path: local_file(dir, &u.local_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(u.local_path),
        sha256: u.sha256,
        size: u.size,
        mime: u.mime,
        state: u.state.as_str().to_owned(),
        bytes_sent: u.bytes_sent,
        attempts: u.attempts,
        last_error_code: u.last_error_code,
        last_error: u.last_error,
        created_at_ms: u.created_at_ms,
        updated_at_ms: u.updated_at_ms,
    }
}

/// Whether an error is worth retrying later (the network, the server's trouble, a session to
/// renew) rather than a refusal of this upload no retry can cure.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Network { .. }
        | ClientError::Auth { .. }
        | ClientError::NotLoggedIn { .. }
        | ClientError::Storage { .. } => true,
        ClientError::Server { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        ClientError::Invalid { .. }
        | ClientError::NotFound { .. }
        | ClientError::Revoked { .. } => false,
    }
}

/// Why the device's copy at `path` cannot be sent as a blob of `size` bytes, if it cannot.
fn copy_problem(path: &Path, size: u64) -> Option<(&'static str, String)> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => None,
        Ok(m) => Some((
            "local_file_changed",
            format!(
                "The copy of this photo on this phone has {} bytes instead of {size}; take the photo again.",
                m.len()
            ),
        )),
        Err(_) => Some((
            "local_file_missing",
            "The copy of this photo on this phone is gone; take the photo again.".to_owned(),
        )),
    }
}

/// Reads `len` bytes of `file` from `offset`.
fn read_chunk(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

impl FieldsyncClient {
    /// One authenticated request made without holding the lock: the session is taken (and
    /// refreshed if about to expire) under it, the request sent outside it, and the answer
    /// settled under it again (a refresh and one more try on `token_expired`, the purge on a
    /// revocation). Other refusals come back as answered.
    fn blob_call<Resp>(
        &self,
        send: impl Fn(&Http, &SessionRow) -> std::result::Result<Resp, HttpError>,
    ) -> Result<std::result::Result<Resp, HttpError>> {
        let (http, session) = {
            let mut inner = self.lock();
            (inner.http.clone(), inner.fresh_session()?)
        };
        let first = send(&http, &session);
        self.lock().settle_http(first, send)
    }

    fn blob_begin(&self, row: &UploadRow) -> Result<std::result::Result<BlobState, HttpError>> {
        let body = serde_json::to_vec(&Begin {
            sha256: &row.sha256,
            size: row.size,
            mime: &row.mime,
        })
        .expect("BUG: a blob request always serializes");
        self.blob_call(|http, s| {
            http.post_json(&s.server_url, BLOBS_PATH, Some(&s.access_token), &body)
        })
    }

    fn blob_put(
        &self,
        sha256: &str,
        offset: u64,
        chunk: &[u8],
    ) -> Result<std::result::Result<BlobState, HttpError>> {
        let path = format!("{BLOBS_PATH}/{sha256}?offset={offset}");
        self.blob_call(|http, s| {
            http.put_octets(&s.server_url, &path, Some(&s.access_token), chunk)
        })
    }

    /// Records where an item stands; `false` if it is no longer queued (purged meanwhile).
    fn progress(&self, sha256: &str, state: UploadState, received: u64) -> Result<bool> {
        store::upload_progress(&self.lock().store.conn, sha256, state, received)
    }

    /// Records an error on an item: it fails for good unless `retry`.
    fn record_error(&self, row: &UploadRow, retry: bool, code: &str, message: &str) -> Result<()> {
        let inner = self.lock();
        let state = if retry {
            // As it stood before this run's error.
            store::upload_get(&inner.store.conn, &row.sha256)?.map_or(row.state, |u| u.state)
        } else {
            UploadState::Failed
        };
        store::upload_error(&inner.store.conn, &row.sha256, state, code, message)
    }

    fn give_up(&self, row: &UploadRow, run: &mut Run, code: &str, message: &str) -> Result<Next> {
        self.record_error(row, false, code, message)?;
        run.report.failed += 1;
        Ok(Next::Continue)
    }

    /// Records a server anomaly on an item (a session that keeps vanishing, an upload that does
    /// not move): it is tried again at the next run; this run goes on with the next item.
    fn retry_later(
        &self,
        row: &UploadRow,
        run: &mut Run,
        code: &str,
        message: &str,
    ) -> Result<Next> {
        self.record_error(row, true, code, message)?;
        run.report.errors += 1;
        Ok(Next::Continue)
    }

    /// Acts on an error met while uploading `row`: a revocation ends everything, an error worth
    /// retrying is recorded on the item (and a network or session error ends the run), anything
    /// else fails the item.
    fn upload_error(&self, row: &UploadRow, run: &mut Run, e: ClientError) -> Result<Next> {
        if let ClientError::Revoked { .. } = e {
            return Err(e);
        }
        if !retryable(&e) {
            return self.give_up(row, run, e.code(), e.message());
        }
        match e {
            ClientError::Server { .. } => self.retry_later(row, run, e.code(), e.message()),
            _ => {
                self.record_error(row, true, e.code(), e.message())?;
                Ok(run.stop(e.code(), e.message()))
            }
        }
    }

    /// The server's `hash_mismatch`: the item fails. The device's copy is hashed again to say
    /// whether it is damaged (take the photo again) or intact (the bytes were damaged on the
    /// way: attaching the photo again retries).
    fn hash_mismatch(&self, row: &UploadRow, path: &Path, run: &mut Run) -> Result<Next> {
        let message = match sha256_file(path) {
            Ok(h) if h == row.sha256 => {
                "The server received bytes that do not match this photo's SHA-256, though the copy on this phone is intact; attach the photo again to send it again."
            }
            _ => {
                "The copy of this photo on this phone is damaged: its bytes no longer match their SHA-256, and the server refused them. Take the photo again."
            }
        };
        self.give_up(row, run, "hash_mismatch", message)
    }

    /// Uploads one item as far as the budget allows.
    fn upload_item(&self, row: &UploadRow, run: &mut Run) -> Result<Next> {
        let path = {
            let inner = self.lock();
            local_file(&inner.dir, &row.local_path)
        };
        let Some(path) = path else {
            return self.give_up(
                row,
                run,
                "local_file_missing",
                "The queued photo's path is not in the app's storage.",
            );
        };
        store::upload_attempt(&self.lock().store.conn, &row.sha256)?;
        let chunk_bytes = self.lock().upload_chunk_bytes.max(1) as u64;
        let mut restarts = 0u32;
        'begin: loop {
            let state = match self.blob_begin(row)? {
                Ok(st) => st,
                Err(e) => return self.upload_error(row, run, e.into_client_error()),
            };
            if state.complete {
                return self.done(row, run);
            }
            // Only now is the device's copy needed (the server may have had the bytes already).
            if let Some(problem) = copy_problem(&path, row.size) {
                return self.give_up(row, run, problem.0, &problem.1);
            }
            let mut received = state.received.min(row.size);
            if !self.progress(&row.sha256, UploadState::Uploading, received)? {
                return Ok(Next::Continue);
            }
            let mut stalls = 0u32;
            loop {
                if received >= row.size {
                    // Every byte is there but the server has not said `complete`: ask again.
                    restarts += 1;
                    if restarts > MAX_RESTARTS {
                        return self.retry_later(
                            row,
                            run,
                            "upload_unconfirmed",
                            "The server holds every byte of this photo but has not confirmed it; it is tried again at the next upload.",
                        );
                    }
                    continue 'begin;
                }
                let mut len = chunk_bytes.min(row.size - received);
                if let Some(budget) = run.budget {
                    if budget == 0 {
                        return Ok(run.stop(MAX_BYTES_REACHED.0, MAX_BYTES_REACHED.1));
                    }
                    len = len.min(budget);
                }
                let chunk = match read_chunk(&path, received, len as usize) {
                    Ok(c) => c,
                    Err(e) => {
                        let message = format!(
                            "The copy of this photo on this phone cannot be read: {e}; take the photo again."
                        );
                        return self.give_up(row, run, "local_file_unreadable", &message);
                    }
                };
                run.budget = run.budget.map(|b| b.saturating_sub(len));
                match self.blob_put(&row.sha256, received, &chunk)? {
                    Ok(st) => {
                        run.report.bytes_sent += len;
                        if st.complete {
                            return self.done(row, run);
                        }
                        if st.received > received {
                            stalls = 0;
                        } else {
                            stalls += 1;
                        }
                        received = st.received.min(row.size);
                    }
                    Err(e) if e.code() == Some("offset_mismatch") => {
                        match e.detail_u64("received") {
                            Some(r) => {
                                stalls += 1;
                                received = r.min(row.size);
                            }
                            None => {
                                restarts += 1;
                                if restarts > MAX_RESTARTS {
                                    let e = e.into_client_error();
                                    return self.retry_later(row, run, e.code(), e.message());
                                }
                                continue 'begin;
                            }
                        }
                    }
                    Err(e) if e.code() == Some("no_upload") => {
                        restarts += 1;
                        if restarts > MAX_RESTARTS {
                            let e = e.into_client_error();
                            return self.retry_later(row, run, e.code(), e.message());
                        }
                        continue 'begin;
                    }
                    Err(e) if e.code() == Some("hash_mismatch") => {
                        return self.hash_mismatch(row, &path, run);
                    }
                    Err(e) => return self.upload_error(row, run, e.into_client_error()),
                }
                if stalls > MAX_RESTARTS {
                    let message = format!(
                        "The server's upload of this photo does not move past byte {received}; it is tried again at the next upload."
                    );
                    return self.retry_later(row, run, "upload_stalled", &message);
                }
                if !self.progress(&row.sha256, UploadState::Uploading, received)? {
                    return Ok(Next::Continue);
                }
            }
        }
    }

    fn done(&self, row: &UploadRow, run: &mut Run) -> Result<Next> {
        self.progress(&row.sha256, UploadState::Done, row.size)?;
        run.report.completed += 1;
        Ok(Next::Continue)
    }

    /// Works through the queue, oldest first, sending at most `max_bytes` of photo bytes.
    /// Errors are recorded on the items and in the report; only a revocation (the data is
    /// purged) and a failing database are returned as errors.
    pub(crate) fn run_uploads(&self, max_bytes: Option<u64>) -> Result<UploadReport> {
        let mut run = Run {
            budget: max_bytes,
            report: UploadReport::default(),
        };
        let _running = match self.uploading.try_lock() {
            Ok(g) => g,
            // A run that panicked left nothing half-done that the next run does not redo.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                run.stop(
                    "upload_in_progress",
                    "Photos are being uploaded already; the queue is sent by that run.",
                );
                return self.finish(run);
            }
        };
        let todo = store::uploads_all(&self.lock().store.conn, true)?;
        for row in todo {
            if run.budget == Some(0) {
                run.stop(MAX_BYTES_REACHED.0, MAX_BYTES_REACHED.1);
                break;
            }
            let next = match self.upload_item(&row, &mut run) {
                Ok(n) => n,
                Err(e @ (ClientError::Revoked { .. } | ClientError::Storage { .. })) => {
                    return Err(e);
                }
                // A session that could not be renewed: recorded on the item, the run ends.
                Err(e) => {
                    self.record_error(&row, true, e.code(), e.message())?;
                    run.stop(e.code(), e.message())
                }
            };
            if let Next::Stop = next {
                break;
            }
        }
        self.finish(run)
    }

    fn finish(&self, mut run: Run) -> Result<UploadReport> {
        let left = store::uploads_all(&self.lock().store.conn, true)?;
        run.report.remaining = left.len() as u64;
        run.report.bytes_pending = left
            .iter()
            .map(|u| u.size.saturating_sub(u.bytes_sent))
            .sum();
        Ok(run.report)
    }

    /// Sends queued photo bytes now, at most `max_bytes` of them (all if `None`), oldest photo
    /// first; [`Self::sync`] does the same after the records. Resumes where the server stopped
    /// receiving. Errors are recorded on the items ([`Self::upload_status`]) and summed up in
    /// the report (offline: `stopped_code` is `network_error`); the call itself fails only
    /// without a session, on a revocation, or when the database fails.
    pub fn upload_photos(&self, max_bytes: Option<u64>) -> Result<UploadReport> {
        self.lock().session()?;
        self.run_uploads(max_bytes)
    }

    /// The upload queue: counts per state, bytes still to send, every item.
    pub fn upload_status(&self) -> Result<UploadQueueStatus> {
        let inner = self.lock();
        let rows = store::uploads_all(&inner.store.conn, false)?;
        let mut s = UploadQueueStatus::default();
        for u in rows {
            match u.state {
                UploadState::Queued => s.queued += 1,
                UploadState::Uploading => s.uploading += 1,
                UploadState::Done => s.done += 1,
                UploadState::Failed => s.failed += 1,
            }
            if matches!(u.state, UploadState::Queued | UploadState::Uploading) {
                s.bytes_pending += u.size.saturating_sub(u.bytes_sent);
            }
            s.items.push(item_of(&inner.dir, u));
        }
        Ok(s)
    }
}
